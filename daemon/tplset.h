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
void tplset_free(struct tplset *ts);
const char *tplset_id(const struct tplset *ts);

/* Render the variant for kind ("sms"|"email"|"chat") and lang (the
 * contact's; NULL or unknown -> default_lang -> any language present).
 * The html part is rendered with HTML escaping, subject and text without.
 * 0; -ENOENT when no variant fits the kind; other negative errno on render
 * errors with err filled. */
int tplset_render(const struct tplset *ts, const char *kind, const char *lang, const json_t *ctx,
                  const char *zone, struct tpl_rendered *out, struct tmpl_error *err);
void tpl_rendered_free(struct tpl_rendered *r);

/* The render context for a contact from its HGETALL reply: id, name,
 * first_name, last_name, lang, tz, tier, points, attrs{...} (x:* fields
 * decoded as JSON), tags[...], plus "event" (borrowed event object, may be
 * NULL) and "vars" (extra variables, may be NULL).  New reference. */
json_t *tpl_context(const redisReply *contact, const json_t *event, const json_t *vars);

#endif
