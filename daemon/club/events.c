/*
 * events.c - event input rules (type, money, currency) and the club
 * messages that follow events and points changes (events.h).
 *
 * Owns: the rendered strings until store_msg_create() copied them, and the
 * small context of one pending create.  Never touches key names (the store
 * does), never decides consent for good (the dispatcher checks again at
 * send time), never logs texts or addresses.
 * Limits: amounts 1e12 units, type names 40 bytes, rendered text as the
 * template engine bounds it.
 */
#include "club/events.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "app.h"
#include "club/notify_msg.h"
#include "club/points.h"
#include "log.h"
#include "prefs.h"
#include "store.h"
#include "store_club.h"
#include "tplset.h"
#include "util.h"

#define MSG_IDEM_TTL_S 86400

int events_type_valid(const char *s, size_t len)
{
	if (!s || len == 0 || len > EVENTS_TYPE_MAX || strlen(s) != len)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

int events_currency_valid(const char *s)
{
	return s && strlen(s) == 3 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' &&
	       s[2] >= 'A' && s[2] <= 'Z';
}

/* "123", "123.4", "123.45" (ASCII digits, at most 13 before the point). */
static int money_text(const char *s, int64_t *cents, const char **why)
{
	size_t ip = strspn(s, "0123456789");
	const char *p = s + ip;
	size_t fp = 0;
	if (ip == 0) {
		*why = "must be a decimal number such as 125000 or 12.50";
		return -EINVAL;
	}
	if (*p == '.') {
		fp = strspn(p + 1, "0123456789");
		if (fp == 0) {
			*why = "must be a decimal number such as 125000 or 12.50";
			return -EINVAL;
		}
		if (p[1 + fp] == '\0' && fp > 2) {
			*why = "at most 2 decimal places";
			return -EINVAL;
		}
		p += 1 + fp;
	}
	if (*p != '\0') {
		*why = "must be a decimal number such as 125000 or 12.50";
		return -EINVAL;
	}
	/* skip leading zeros, then at most 13 integer digits (1e12) */
	size_t z = 0;
	while (z + 1 < ip && s[z] == '0')
		z++;
	if (ip - z > 13) {
		*why = "at most 1000000000000";
		return -EINVAL;
	}
	int64_t v = 0;
	for (size_t i = z; i < ip; i++)
		v = v * 10 + (s[i] - '0');
	int64_t f = 0;
	for (size_t i = 0; i < 2; i++)
		f = f * 10 + (i < fp ? s[ip + 1 + i] - '0' : 0);
	v = v * 100 + f;
	if (v > EVENTS_AMOUNT_MAX_C) {
		*why = "at most 1000000000000";
		return -EINVAL;
	}
	if (v <= 0) {
		*why = "must be greater than 0";
		return -EINVAL;
	}
	*cents = v;
	return 0;
}

int events_money_parse(const json_t *v, int64_t *cents, const char **why)
{
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i <= 0) {
			*why = "must be greater than 0";
			return -EINVAL;
		}
		if (i > EVENTS_AMOUNT_MAX_C / 100) {
			*why = "at most 1000000000000";
			return -EINVAL;
		}
		*cents = (int64_t)i * 100;
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (!isfinite(d) || d <= 0) {
			*why = "must be greater than 0";
			return -EINVAL;
		}
		if (d > (double)EVENTS_AMOUNT_MAX_C / 100) {
			*why = "at most 1000000000000";
			return -EINVAL;
		}
		/* At most two decimals: the number must survive a round trip
		 * through its two-decimal text (exact for amounts <= 1e12,
		 * where doubles are finer than 0.001). */
		char t[64];
		snprintf(t, sizeof t, "%.2f", d);
		if (strtod(t, NULL) != d) {
			*why = "at most 2 decimal places";
			return -EINVAL;
		}
		return money_text(t, cents, why);
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (strlen(s) != json_string_length(v) || json_string_length(v) > 32) {
			*why = "must be a decimal number such as 125000 or 12.50";
			return -EINVAL;
		}
		return money_text(s, cents, why);
	}
	*why = "must be a number or a decimal string";
	return -EINVAL;
}

void events_money_format(int64_t cents, char out[EVENTS_MONEY_TEXT])
{
	snprintf(out, EVENTS_MONEY_TEXT, "%lld.%02lld", (long long)(cents / 100),
	         (long long)(cents % 100));
}

void events_rules(const struct config *cfg, struct store_club_rules *r, char *tiers_text)
{
	struct points_tiers t;
	char why[128];
	if (points_tiers_parse(cfg->points_tiers, &t, why, sizeof why) < 0)
		t.n = 0; /* config_load validated it */
	points_tiers_format(&t, tiers_text, EVENTS_TIERS_TEXT);
	r->timeline_max = cfg->contacts_timeline_max;
	r->ledger_max = EVENTS_LEDGER_MAX;
	r->expire_after_ms = cfg->points_expire_after_ms;
	r->tiers = tiers_text;
}

/* Club messages ------------------------------------------------------------ */

struct pending {
	events_msg_cb cb;
	void *arg;
	json_t *res;
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
	if (st && strcmp(st, "ok") == 0) {
		json_object_set_new(res, "message_id", json_string(q->id));
	} else if (st && strcmp(st, "dup") == 0 && rep->elements >= 2 &&
	           reply_str(rep->element[1])) {
		json_object_set_new(res, "message_id", json_string(reply_str(rep->element[1])));
	} else if (st && strcmp(st, "no_contact") == 0) {
		json_object_set_new(res, "skipped", json_string("no_contact"));
	} else {
		log_warnx("club", "message create not confirmed kind=%s",
		          json_string_value(json_object_get(res, "kind")));
		json_decref(res);
		res = NULL;
	}
	if (res && json_object_get(res, "message_id"))
		log_info("club", "msg=%s queued kind=%s contact=%s",
		         json_string_value(json_object_get(res, "message_id")),
		         json_string_value(json_object_get(res, "kind")),
		         json_string_value(json_object_get(res, "contact_id")));
	q->cb(q->arg, res);
	free(q);
}

/* The kinds preferences allow for category, best first; 0 with the reason
 * in why when none. */
static size_t allowed_kinds(const struct app *app, const redisReply *c, enum category cat,
                            int64_t now, int kinds[ADDR_KINDS], char *why, size_t whylen)
{
	struct prefs p;
	notify_msg_prefs(c, &p);

	int enabled[ADDR_KINDS];
	struct prefs_input in = {.prefs = &p,
	                         .tz = hash_get(c, "tz") ? hash_get(c, "tz")
	                                                 : app->cfg->contacts_default_tz,
	                         .requested = -1,
	                         .category = cat,
	                         .now_ms = now,
	                         .channel_enabled = enabled};
	for (int k = 0; k < ADDR_KINDS; k++) {
		char f[16];
		snprintf(f, sizeof f, "a:%s", addr_kind_name((enum addr_kind)k));
		in.addr[k] = hash_get(c, f);
		enabled[k] =
		    chan_find(app->chans, app->nchans, addr_kind_name((enum addr_kind)k)) != NULL;
	}
	int order[ADDR_KINDS], n = 0, seen[ADDR_KINDS] = {0};
	for (int i = 0; i < p.norder && n < ADDR_KINDS; i++)
		if (p.order[i] >= 0 && p.order[i] < ADDR_KINDS && !seen[p.order[i]]) {
			seen[p.order[i]] = 1;
			order[n++] = p.order[i];
		}
	for (int k = 0; k < ADDR_KINDS; k++)
		if (!seen[k])
			order[n++] = k;
	size_t cnt = 0;
	struct prefs_decision d;
	for (int i = 0; i < n; i++) {
		in.requested = order[i];
		prefs_decide(&in, &d);
		if (d.action != PREFS_SUPPRESS)
			kinds[cnt++] = order[i];
	}
	if (cnt == 0) {
		in.requested = -1;
		prefs_decide(&in, &d);
		snprintf(why, whylen, "%s", d.action == PREFS_SUPPRESS ? d.reason : "no_channel");
	}
	return cnt;
}

json_t *events_msg_queue(struct app *app, const struct events_msg *m, events_msg_cb cb, void *arg)
{
	json_t *res = json_pack("{s:s, s:s, s:s}", "kind", m->what, "contact_id", m->contact_id,
	                        "template", m->tpl_id ? m->tpl_id : "");
	char why[96] = "";
	struct tplset *ts = NULL;
	struct tpl_rendered out;
	memset(&out, 0, sizeof out);
	int kind = -1;
	const struct config *cfg = app->cfg;
	int cat = category_parse(m->category);

	if (!m->contact || m->contact->type != REDIS_REPLY_ARRAY || m->contact->elements == 0) {
		snprintf(why, sizeof why, "no_contact");
		goto skip;
	}
	if (!m->tpl_json || !*m->tpl_json) {
		snprintf(why, sizeof why, "template_missing");
		goto skip;
	}
	const char *field;
	struct tmpl_error terr;
	int rc = notify_msg_tplset(m->tpl_json, &ts, &field);
	if (rc < 0) {
		log_warnx("club", "template=%s unusable field=%s", log_q(m->tpl_id),
		          log_q(field ? field : ""));
		snprintf(why, sizeof why, "template_invalid");
		goto skip;
	}
	int kinds[ADDR_KINDS];
	size_t nk = allowed_kinds(app, m->contact, cat < 0 ? CAT_PROMOTIONAL : (enum category)cat,
	                          m->due, kinds, why, sizeof why);
	if (nk == 0)
		goto skip;
	const char *lang = hash_get(m->contact, "lang") ? hash_get(m->contact, "lang")
	                                                : cfg->contacts_default_lang;
	const char *zone =
	    hash_get(m->contact, "tz") ? hash_get(m->contact, "tz") : cfg->contacts_default_tz;
	json_t *ctx = tpl_context(m->contact, m->event, NULL);
	const char *failed = "";
	memset(&terr, 0, sizeof terr);
	kind = notify_msg_render(ts, kinds, (int)nk, lang, ctx, zone, &out, &terr, &failed);
	json_decref(ctx);
	if (kind < 0 && kind != -ENOENT) {
		log_warnx("club", "template=%s render failed kind=%s reason=%s", log_q(m->tpl_id),
		          failed, log_q(terr.reason));
		snprintf(why, sizeof why, "render_failed");
	}
	if (kind < 0) {
		if (!*why)
			snprintf(why, sizeof why, "no_variant");
		goto skip;
	}

	const char *fields[6];
	size_t nf = notify_msg_fields(&out, kind, fields, 0);
	const char *kn = addr_kind_name((enum addr_kind)kind);
	int64_t due = m->due > m->now ? m->due : m->now;
	struct msg_new mn = {.contact_id = m->contact_id,
	                     .addr_kind = "",
	                     .addr = "",
	                     .lane = kn,
	                     .channel = kn,
	                     .category = m->category,
	                     .idem = m->idem,
	                     .idem_ttl_s = MSG_IDEM_TTL_S,
	                     .now = m->now,
	                     .due = due,
	                     .expires = due + cfg->sched_message_ttl_ms,
	                     .fields = fields,
	                     .nfields = nf};
	struct pending *q = xcalloc(1, sizeof *q);
	q->cb = cb;
	q->arg = arg;
	q->res = res;
	json_object_set_new(res, "channel", json_string(kn));
	store_msg_create(app->st, &mn, q->id, on_created, q);
	tpl_rendered_free(&out);
	tplset_free(ts);
	return NULL;

skip:
	if (ts)
		tplset_free(ts);
	json_object_set_new(res, "skipped", json_string(why));
	log_info("club", "no message kind=%s contact=%s reason=%s", m->what, m->contact_id,
	         log_q(why));
	return res;
}

/* Follow-up messages of an answer ------------------------------------------ */

static json_t *or_null(json_t *j)
{
	return j ? j : json_null();
}

struct followups {
	json_t *msgs;
	int pending, failed;
	void (*done)(void *arg, json_t *msgs);
	void *arg;
};

static void followup_one(void *arg, json_t *result)
{
	struct followups *fu = arg;
	if (result)
		json_array_append_new(fu->msgs, result);
	else
		fu->failed = 1;
	if (--fu->pending > 0)
		return;
	if (fu->failed) {
		json_decref(fu->msgs);
		fu->msgs = NULL;
	}
	fu->done(fu->arg, fu->msgs);
	free(fu);
}

static void followup_add(struct followups *fu, struct app *app, const struct events_msg *m)
{
	json_t *r = events_msg_queue(app, m, followup_one, fu);
	if (r)
		json_array_append_new(fu->msgs, r);
	else
		fu->pending++;
}

/* A tier promotion of contact c (tc: the answer's tier change object). */
static void followup_tier(struct followups *fu, struct app *app, const struct events_followup *f,
                          const json_t *tc, const char *cid, const redisReply *c,
                          const json_t *points)
{
	const struct config *cfg = app->cfg;
	const char *dir = json_string_value(json_object_get(tc, "direction"));
	if (!json_is_object(tc) || !*cfg->points_tier_template || !dir || strcmp(dir, "up") != 0)
		return;
	json_t *ev = json_pack("{s:s, s:O, s:O, s:s}", "type", "tier", "from",
	                       or_null(json_object_get(tc, "from")), "to",
	                       or_null(json_object_get(tc, "to")), "direction", "up");
	if (points) {
		json_object_set(ev, "points", json_object_get(points, "balance"));
		json_object_set(ev, "lifetime", json_object_get(points, "lifetime"));
	}
	char *idem = xasprintf("%s:tier:%s", f->idem_base, cid);
	struct events_msg m = {.what = "tier",
	                       .contact_id = cid,
	                       .contact = c,
	                       .tpl_id = cfg->points_tier_template,
	                       .tpl_json = f->tier_tpl_json,
	                       .event = ev,
	                       .category = cfg->points_tier_category,
	                       .idem = idem,
	                       .now = f->now,
	                       .due = f->now};
	followup_add(fu, app, &m);
	free(idem);
	json_decref(ev);
}

static void followup_thanks(struct followups *fu, struct app *app, const struct events_followup *f)
{
	const struct config *cfg = app->cfg;
	const json_t *a = f->answer;
	const char *type = json_string_value(json_object_get(a, "type"));
	const char *cid = json_string_value(json_object_get(a, "contact_id"));
	if (!*cfg->events_thank_you_template || !type || strcmp(type, "purchase") != 0 || !cid)
		return;
	int64_t at = f->now, cents = 0;
	const char *at_text = json_string_value(json_object_get(a, "at"));
	if (at_text)
		parse_time(at_text, &at);
	const char *why = NULL;
	json_t *amount = json_object_get(a, "amount");
	if (amount)
		events_money_parse(amount, &cents, &why);
	json_t *ev = json_pack("{s:O, s:s, s:O}", "id", or_null(json_object_get(a, "id")), "type",
	                       type, "at", or_null(json_object_get(a, "at")));
	if (amount) {
		json_object_set_new(ev, "amount",
		                    cents % 100 ? json_real((double)cents / 100)
		                                : json_integer(cents / 100));
		json_object_set_new(ev, "amount_c", json_integer(cents));
		json_object_set(ev, "currency", json_object_get(a, "currency"));
	}
	if (json_object_get(a, "properties"))
		json_object_set(ev, "properties", json_object_get(a, "properties"));
	int64_t due = at + cfg->events_thank_you_delay_ms;
	if (due + cfg->sched_message_ttl_ms <= f->now) {
		json_array_append_new(
		    fu->msgs,
		    json_pack("{s:s, s:s, s:s, s:s}", "kind", "thank_you", "contact_id", cid,
		              "template", cfg->events_thank_you_template, "skipped", "too_old"));
		json_decref(ev);
		return;
	}
	char *idem = xasprintf("%s:thanks", f->idem_base);
	struct events_msg m = {.what = "thank_you",
	                       .contact_id = cid,
	                       .contact = f->contact,
	                       .tpl_id = cfg->events_thank_you_template,
	                       .tpl_json = f->thank_you_tpl_json,
	                       .event = ev,
	                       .category = cfg->events_thank_you_category,
	                       .idem = idem,
	                       .now = f->now,
	                       .due = due};
	followup_add(fu, app, &m);
	free(idem);
	json_decref(ev);
}

json_t *events_followups(struct app *app, const struct events_followup *f,
                         void (*done)(void *arg, json_t *msgs), void *arg)
{
	struct followups *fu = xcalloc(1, sizeof *fu);
	fu->msgs = json_array();
	fu->done = done;
	fu->arg = arg;
	fu->pending = 1; /* held while issuing */
	const json_t *a = f->answer;
	const char *cid = json_string_value(json_object_get(a, "contact_id"));
	json_t *points = json_object_get(a, "points");
	followup_thanks(fu, app, f);
	if (cid) {
		/* an event answer has points.tier_change, a change answer tier_change */
		const json_t *tc = points ? json_object_get(points, "tier_change")
		                          : json_object_get(a, "tier_change");
		followup_tier(fu, app, f, tc, cid, f->contact, points ? points : a);
	}
	json_t *ref = json_object_get(a, "referral");
	const char *rid = json_string_value(json_object_get(ref, "referrer_id"));
	if (rid && json_is_true(json_object_get(ref, "credited")))
		followup_tier(fu, app, f, json_object_get(ref, "referrer_tier_change"), rid,
		              f->referrer, NULL);
	if (--fu->pending > 0)
		return NULL;
	json_t *msgs = fu->msgs;
	free(fu);
	return msgs;
}
