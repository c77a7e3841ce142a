/*
 * notify_msg.c - the steps of building a club message that events.c and
 * raffle.c share (see notify_msg.h): stored preferences, the stored
 * template set, choosing the first channel kind with a usable variant, and
 * the message fields of the rendering.
 *
 * Owns nothing between calls: the rendering and template set belong to
 * the caller.  Never queues, logs or decides consent itself (the callers
 * do, with their own log keys).  Limits: as the template engine bounds the
 * rendered text; at most ADDR_KINDS kinds.
 */
#include "club/notify_msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "store.h"
#include "util.h"

void notify_msg_prefs(const redisReply *contact, struct prefs *p)
{
	const char *field, *reason;
	const char *t = hash_get(contact, "prefs");
	json_t *pj = t ? json_loads(t, 0, NULL) : NULL;
	if (prefs_parse(pj, p, &field, &reason) < 0)
		prefs_parse(NULL, p, &field, &reason); /* stored prefs were validated */
	json_decref(pj);
}

int notify_msg_tplset(const char *tpl_json, struct tplset **ts, const char **field)
{
	struct tmpl_error terr;
	memset(&terr, 0, sizeof terr);
	*field = NULL;
	json_t *def = json_loads(tpl_json, 0, NULL);
	int rc = def ? tplset_parse(def, ts, field, &terr) : -EINVAL;
	json_decref(def);
	return rc;
}

int notify_msg_render(const struct tplset *ts, const int *kinds, int n, const char *lang,
                      const json_t *ctx, const char *zone, struct tpl_rendered *out,
                      struct tmpl_error *terr, const char **failed)
{
	for (int i = 0; i < n; i++) {
		const char *kn = addr_kind_name((enum addr_kind)kinds[i]);
		int rc = tplset_render(ts, kn, lang, ctx, zone, out, terr);
		if (rc == -ENOENT)
			continue;
		if (rc < 0) {
			*failed = kn;
			return rc;
		}
		int usable = kinds[i] == ADDR_EMAIL ? out->subject && *out->subject &&
		                                          ((out->text && *out->text) || out->html)
		                                    : out->text && *out->text;
		if (usable)
			return kinds[i];
		tpl_rendered_free(out);
	}
	return -ENOENT;
}

size_t notify_msg_fields(const struct tpl_rendered *out, int kind, const char **fields, size_t nf)
{
	if (out->text) {
		fields[nf++] = "text";
		fields[nf++] = out->text;
	}
	if (kind == ADDR_EMAIL && out->subject) {
		fields[nf++] = "subject";
		fields[nf++] = out->subject;
	}
	if (kind == ADDR_EMAIL && out->html) {
		fields[nf++] = "html";
		fields[nf++] = out->html;
	}
	return nf;
}
