/*
 * dispatch_camp.h - what the dispatcher needs to send a campaign message:
 * the campaign's frozen templates by arm, cached per (campaign, version),
 * rendered at dispatch time for the channel the preferences chose.
 */
#ifndef CLUBD_DISPATCH_CAMP_H
#define CLUBD_DISPATCH_CAMP_H

#include <jansson.h>
#include <stddef.h>

#include "store.h"
#include "tplset.h"

struct camp_cache;

struct camp_cache *camp_cache_new(struct store *st);
void camp_cache_free(struct camp_cache *cc);

/* Make sure campaign camp at version v is loaded.  1 when it already is
 * (cb is not called); else 0 and cb(arg, ok) once it loaded (ok 1) or
 * could not be (ok 0: Redis trouble or an unusable snapshot). */
int camp_cache_want(struct camp_cache *cc, const char *camp, const char *v,
                    void (*cb)(void *arg, int ok), void *arg);

/* Render arm's template of a loaded campaign for kind and lang with base's
 * zone and link hook (tracked links).  0, -ENOENT
 * (no variant for that channel), or another negative errno with why. */
int camp_cache_render(struct camp_cache *cc, const char *camp, const char *arm, const char *kind,
                      const char *lang, const json_t *ctx, const struct tmpl_opts *base,
                      struct tpl_rendered *out, char *why, size_t whylen);

#endif
