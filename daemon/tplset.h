/*
 * tplset.h - a template resource: one message in several channel kinds
 * (sms, email, chat) and languages ("fa", "en", ...), with a default
 * language to fall back to, each variant compiled once with template.c.
 * Also the render context every sender uses (contact + event), so a
 * campaign, an occasion and a thank-you message see the same variables.
 *
 * Definition (JSON, as stored and as the API takes it):
 *   {"id":"welcome","name":"...","default_lang":"fa",
 *    "variants":[{"channel":"sms","lang":"fa","text":"..."},
 *                {"channel":"email","lang":"en","subject":"...","text":"...","html":"..."}]}
 * channel "any" is a variant for every kind that has no specific one.
 */
#ifndef CLUBD_TPLSET_H
#define CLUBD_TPLSET_H

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "template.h"

#define TPLSET_MAX_VARIANTS 32
#define TPLSET_ID_MAX       64           /* bytes of an id, [a-z0-9_-] */
#define TPLSET_NAME_MAX     200          /* bytes of name (and description: 1000) */
#define TPLSET_LANG_MAX     8            /* bytes of a variant's lang, [a-z-] */
#define TPLSET_MAX_OUTPUT   (256 * 1024) /* bytes of one rendered part */

struct tplset;

/* One rendered message; strings are owned (free with tpl_rendered_free). */
struct tpl_rendered {
	char *subject; /* email only, else NULL */
	char *text;
	char *html;    /* email only, NULL when the variant has none */
	char lang[16]; /* the variant's language actually used */
};

/* Parse and compile a definition.  0, or -EINVAL with *field (static or
 * pointing into def, e.g. "variants[1].text") and err (position inside that
 * field's template, reason). */
int tplset_parse(const json_t *def, struct tplset **out, const char **field,
                 struct tmpl_error *err);
/* (The field text lives in thread-local storage of tplset.c, valid until the
 * next tplset_parse/tplset_check on the thread.  err->line is 0 when the
 * error is not inside a template: a wrong type, a missing key, ...  "id" is
 * optional in a definition (tplset_id gives "" then); unknown keys are
 * errors.) */

/* Every error of a definition, not just the first: report is called once per
 * error (field as for tplset_parse, valid during the call only).  Returns
 * the number of errors (0 = the definition is valid). */
int tplset_check(const json_t *def,
                 void (*report)(void *arg, const char *field, const struct tmpl_error *err),
                 void *arg);
/* 1 when s is a valid template id: 1..TPLSET_ID_MAX of [a-z0-9_-]. */
int tplset_id_valid(const char *s);
void tplset_free(struct tplset *ts);
const char *tplset_id(const struct tplset *ts);

/* Render the variant for kind ("sms"|"email"|"chat") and lang (the
 * contact's; NULL or unknown -> default_lang -> any language present).
 * In detail: only variants of that channel, or the "any" ones when the
 * template has none for it; among them lang itself ("fa-IR" matches a
 * "fa-ir" variant), then its base ("fa-IR" -> "fa"), then a variant of the
 * same base ("fa" -> "fa-af"), then default_lang, then the first one.
 * Each part's output is capped at TPLSET_MAX_OUTPUT (-ENOSPC beyond); an
 * "any" variant without a subject gives "" as an email's subject.
 * The html part is rendered with HTML escaping, subject and text without.
 * 0; -ENOENT when no variant fits the kind; other negative errno on render
 * errors with err filled. */
int tplset_render(const struct tplset *ts, const char *kind, const char *lang, const json_t *ctx,
                  const char *zone, struct tpl_rendered *out, struct tmpl_error *err);
/* The same with options: base's zone, link and link_arg (and whatever else
 * template.h adds) are used; html and lang are set per part and variant as
 * above.  base NULL = tplset_render with zone NULL. */
int tplset_render_opts(const struct tplset *ts, const char *kind, const char *lang,
                       const json_t *ctx, const struct tmpl_opts *base, struct tpl_rendered *out,
                       struct tmpl_error *err);
void tpl_rendered_free(struct tpl_rendered *r);

/* The render context for a contact from its HGETALL reply: id, name,
 * first_name, last_name, lang, tz, tier, points, attrs{...} (x:* fields
 * decoded as JSON), tags[...], plus "event" (borrowed event object, may be
 * NULL) and "vars" (extra variables, may be NULL).  New reference. */
json_t *tpl_context(const redisReply *contact, const json_t *event, const json_t *vars);
/* (Also ref (the contact's referral code), created and last_purchase (ms)
 * when present; points is 0 when absent.  The keys of vars are merged in at
 * the top level as well (they win over contact fields), so {{code}} and
 * {{vars.code}} both work; "event" and "vars" themselves always win.) */

/* The same from the API form of a contact (as GET /v1/contacts/{id} gives
 * it, or an inline contact in a preview): id, name, first_name, last_name,
 * lang, tz, tier, ref (strings), points (integer), attrs (object), tags
 * (array); other keys are ignored.  contact may be NULL.  New reference. */
json_t *tpl_context_json(const json_t *contact, const json_t *event, const json_t *vars);

/* A small cache of compiled sets keyed by (id, v), for senders that render
 * the same template many times (the campaign dispatcher).  It owns the sets
 * put into it and evicts the least recently used beyond max entries; a put
 * also drops every other version of the same id.  A pointer from
 * tplset_cache_get is borrowed: valid until the next put or free.  Loop
 * thread only. */
struct tplset_cache;
struct tplset_cache *tplset_cache_new(size_t max); /* max 0 is taken as 1 */
/* The set for (id, v), or NULL when not cached. */
const struct tplset *tplset_cache_get(struct tplset_cache *c, const char *id, long long v);
/* Takes ownership of ts (keyed by tplset_id(ts)); replaces an entry with the
 * same (id, v). */
void tplset_cache_put(struct tplset_cache *c, struct tplset *ts, long long v);
void tplset_cache_free(struct tplset_cache *c);

#endif
