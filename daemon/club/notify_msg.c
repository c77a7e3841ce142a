/*
 * notify_msg.c - club messages that events.c and raffle.c queue (see
 * notify_msg.h): the contact, the stored template set, the kinds the
 * contact's preferences allow now, the first of them with a usable
 * rendered variant, the message created with store_msg_create(), and the
 * result the callers report.
 *
 * Owns the small context of one pending create (freed when the store
 * answers) and the rendering until store_msg_create() copied it.  Never
 * decides consent for good (the dispatcher checks again at send time),
 * never touches key names, never logs texts or addresses (log lines carry
 * the caller's subsystem and key).  Limits: as the template engine bounds
 * the rendered text; at most ADDR_KINDS kinds.
 */
#include "club/notify_msg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "app.h"
#include "log.h"
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

void notify_msg_input(const struct app *app, const redisReply *contact, struct prefs *p,
                      int enabled[ADDR_KINDS], struct prefs_input *in)
{
	notify_msg_prefs(contact, p);
	const char *tz = hash_get(contact, "tz");
	*in = (struct prefs_input){.prefs = p,
	                           .tz = tz ? tz : app->cfg->contacts_default_tz,
	                           .requested = -1,
	                           .channel_enabled = enabled};
	for (int k = 0; k < ADDR_KINDS; k++) {
		char f[16];
		snprintf(f, sizeof f, "a:%s", addr_kind_name((enum addr_kind)k));
		in->addr[k] = hash_get(contact, f);
		enabled[k] =
		    chan_find(app->chans, app->nchans, addr_kind_name((enum addr_kind)k)) != NULL;
	}
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

/* ---- queueing ---------------------------------------------------------------- */

struct pending {
	notify_msg_cb cb;
	void *arg;
	json_t *res;
	const char *sub; /* static */
	int with_lane;
	char id[ID_LEN + 1];
};

static void on_created(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct pending *q = arg;
	const char *st = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0
	                     ? reply_str(rep->element[0])
	                     : NULL;
	json_t *res = q->res;
	const char *cid = json_string_value(json_object_get(res, "contact_id"));
	if (st && strcmp(st, "ok") == 0) {
		json_object_set_new(res, "message_id", json_string(q->id));
	} else if (st && strcmp(st, "dup") == 0 && rep->elements >= 2 &&
	           reply_str(rep->element[1])) {
		json_object_set_new(res, "message_id", json_string(reply_str(rep->element[1])));
	} else if (st && strcmp(st, "no_contact") == 0) {
		if (q->with_lane)
			json_object_del(res, "channel");
		json_object_set_new(res, "skipped", json_string("no_contact"));
	} else {
		log_warnx(q->sub, "message create not confirmed contact=%s", cid);
		json_decref(res);
		res = NULL;
	}
	if (res && json_object_get(res, "message_id"))
		log_info(q->sub, "msg=%s queued contact=%s",
		         json_string_value(json_object_get(res, "message_id")), cid);
	q->cb(q->arg, res);
	free(q);
}

/* NOTIFY_MSG_ALLOWED: every kind the preferences allow, the contact's
 * order first; 0 with the reason in why when none. */
static size_t pick_allowed(struct prefs_input *in, int kinds[ADDR_KINDS], char *why, size_t whylen)
{
	const struct prefs *p = in->prefs;
	int order[ADDR_KINDS], n = 0, seen[ADDR_KINDS] = {0};
	for (int i = 0; i < p->norder && n < ADDR_KINDS; i++)
		if (p->order[i] >= 0 && p->order[i] < ADDR_KINDS && !seen[p->order[i]]) {
			seen[p->order[i]] = 1;
			order[n++] = p->order[i];
		}
	for (int k = 0; k < ADDR_KINDS; k++)
		if (!seen[k])
			order[n++] = k;
	size_t cnt = 0;
	struct prefs_decision d;
	for (int i = 0; i < n; i++) {
		in->requested = order[i];
		prefs_decide(in, &d);
		if (d.action != PREFS_SUPPRESS)
			kinds[cnt++] = order[i];
	}
	if (cnt == 0) {
		in->requested = -1;
		prefs_decide(in, &d);
		snprintf(why, whylen, "%s", d.action == PREFS_SUPPRESS ? d.reason : "no_channel");
	}
	return cnt;
}

/* NOTIFY_MSG_PREFERRED: the kind chosen for requested (*first), then with
 * requested -1 the other kinds allowed; 0 with the reason when suppressed. */
static size_t pick_preferred(struct prefs_input *in, int requested, int kinds[ADDR_KINDS],
                             int *first, char *why, size_t whylen)
{
	struct prefs_decision dec;
	in->requested = requested;
	prefs_decide(in, &dec);
	if (dec.action == PREFS_SUPPRESS) {
		snprintf(why, whylen, "%s", dec.reason);
		return 0;
	}
	size_t n = 0;
	*first = dec.channel;
	kinds[n++] = *first;
	for (int k = 0; requested < 0 && k < ADDR_KINDS; k++) {
		if (k == *first)
			continue;
		in->requested = k;
		prefs_decide(in, &dec);
		if (dec.action != PREFS_SUPPRESS)
			kinds[n++] = k;
	}
	return n;
}

/* The kinds to render for, best first; 0 with the reason in why.  *first:
 * the kind the dispatcher would choose itself, or -1. */
static size_t pick_kinds(const struct app *app, const struct notify_msg *m, int kinds[ADDR_KINDS],
                         int *first, char *why, size_t whylen)
{
	struct prefs p;
	int enabled[ADDR_KINDS];
	struct prefs_input in;
	notify_msg_input(app, m->contact, &p, enabled, &in);
	int cat = category_parse(m->category);
	in.category = cat < 0 ? m->cat_dflt : (enum category)cat;
	in.now_ms = m->due;
	*first = -1;
	if (m->pick == NOTIFY_MSG_PREFERRED) {
		size_t n = pick_preferred(&in, m->requested, kinds, first, why, whylen);
		if (m->requested >= 0)
			*first = -1;
		return n;
	}
	return pick_allowed(&in, kinds, why, whylen);
}

json_t *notify_msg_queue(struct app *app, const struct notify_msg *m, json_t *res, notify_msg_cb cb,
                         void *arg)
{
	const struct config *cfg = app->cfg;
	char why[96] = "";
	struct tplset *ts = NULL;
	struct tpl_rendered out;
	memset(&out, 0, sizeof out);

	if (!m->contact || m->contact->type != REDIS_REPLY_ARRAY || m->contact->elements == 0) {
		snprintf(why, sizeof why, "no_contact");
		goto skip;
	}
	if (!m->tpl_json || !*m->tpl_json) {
		snprintf(why, sizeof why, "template_missing");
		goto skip;
	}
	const char *field;
	if (notify_msg_tplset(m->tpl_json, &ts, &field) < 0) {
		log_warnx(m->sub, "%s=%s template=%s unusable field=%s", m->log_key,
		          log_q(m->log_val), log_q(m->tpl_id ? m->tpl_id : ""),
		          log_q(field ? field : ""));
		snprintf(why, sizeof why, "template_invalid");
		goto skip;
	}
	int kinds[ADDR_KINDS], first;
	size_t nk = pick_kinds(app, m, kinds, &first, why, sizeof why);
	if (nk == 0)
		goto skip;
	const char *lang = hash_get(m->contact, "lang") ? hash_get(m->contact, "lang")
	                                                : cfg->contacts_default_lang;
	const char *zone =
	    hash_get(m->contact, "tz") ? hash_get(m->contact, "tz") : cfg->contacts_default_tz;
	json_t *ctx = tpl_context(m->contact, m->event, NULL);
	const char *failed = "";
	struct tmpl_error terr;
	memset(&terr, 0, sizeof terr);
	int kind = notify_msg_render(ts, kinds, (int)nk, lang, ctx, zone, &out, &terr, &failed);
	json_decref(ctx);
	if (kind < 0 && kind != -ENOENT) {
		log_warnx(m->sub, "%s=%s template=%s render failed channel=%s reason=%s",
		          m->log_key, log_q(m->log_val), log_q(m->tpl_id ? m->tpl_id : ""), failed,
		          log_q(terr.reason));
		snprintf(why, sizeof why, "render_failed");
	}
	if (kind < 0) {
		if (!*why)
			snprintf(why, sizeof why, "no_variant");
		goto skip;
	}

	const char *fields[8];
	size_t nf = 0;
	if (m->field) {
		fields[nf++] = m->field;
		fields[nf++] = m->value;
	}
	nf = notify_msg_fields(&out, kind, fields, nf);
	const char *kn = addr_kind_name((enum addr_kind)kind);
	const char *lane = kind == first ? "preferred" : kn;
	int64_t due = m->due > m->now ? m->due : m->now;
	struct msg_new mn = {.contact_id = m->contact_id,
	                     .addr_kind = "",
	                     .addr = "",
	                     .lane = lane,
	                     .channel = lane,
	                     .category = m->category,
	                     .idem = m->idem,
	                     .idem_ttl_s = m->idem_ttl_s,
	                     .now = m->now,
	                     .due = due,
	                     .expires = due + cfg->sched_message_ttl_ms,
	                     .fields = fields,
	                     .nfields = nf};
	struct pending *q = xcalloc(1, sizeof *q);
	q->cb = cb;
	q->arg = arg;
	q->res = res;
	q->sub = m->sub;
	q->with_lane = m->with_lane;
	json_object_set_new(res, "channel", json_string(kn));
	if (m->with_lane)
		json_object_set_new(res, "lane", json_string(lane));
	store_msg_create(app->st, &mn, q->id, on_created, q);
	tpl_rendered_free(&out);
	tplset_free(ts);
	return NULL;

skip:
	if (ts)
		tplset_free(ts);
	json_object_set_new(res, "skipped", json_string(why));
	log_info(m->sub, "%s=%s no message contact=%s reason=%s", m->log_key, log_q(m->log_val),
	         m->contact_id, log_q(why));
	return res;
}
