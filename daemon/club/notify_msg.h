/*
 * notify_msg.h - the steps club messages (events.c: points and tier
 * messages; raffle.c: entry and winner messages) share before they are
 * queued with store_msg_create(): the contact's stored preferences, the
 * template set from its stored JSON, the first channel kind with a usable
 * rendered variant, and the message fields of that rendering.
 */
#ifndef CLUBD_CLUB_NOTIFY_MSG_H
#define CLUBD_CLUB_NOTIFY_MSG_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stddef.h>

#include "prefs.h"
#include "template.h"
#include "tplset.h"

/* The preferences in a contact's HGETALL reply ("prefs" field); the
 * defaults when absent or unreadable (stored prefs were validated). */
void notify_msg_prefs(const redisReply *contact, struct prefs *p);

/* Parse a stored template definition (JSON text) into *ts (caller frees
 * with tplset_free).  0, or -EINVAL with *field naming the bad part (may
 * stay NULL). */
int notify_msg_tplset(const char *tpl_json, struct tplset **ts, const char **field);

/*
 * Render ts for the first of kinds[0..n) (enum addr_kind) that has a
 * usable variant: e-mail needs a subject and a text or html body, the other
 * kinds a text.  Returns that kind with *out filled (free it with
 * tpl_rendered_free), -ENOENT when no kind has one, or the render error
 * with *failed naming the kind it failed for and terr saying why (then
 * nothing to free).
 */
int notify_msg_render(const struct tplset *ts, const int *kinds, int n, const char *lang,
                      const json_t *ctx, const char *zone, struct tpl_rendered *out,
                      struct tmpl_error *terr, const char **failed);

/* Append the message fields of out rendered for kind ("text"; for e-mail
 * also "subject" and "html") as name, value pairs to fields[nf..] (room
 * for 6 more); the new count.  The values borrow out. */
size_t notify_msg_fields(const struct tpl_rendered *out, int kind, const char **fields, size_t nf);

#endif
