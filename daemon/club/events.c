/*
 * events.c - event input rules (type, money, currency) and the club
 * messages that follow events and points changes (events.h).
 *
 * Owns nothing between calls: rendering and queueing a message is
 * notify_msg.c's (kinds in the contact's preferred order).  Never touches
 * key names (the store does), never logs texts or addresses.
 * Limits: amounts 1e12 units, type names 40 bytes, rendered text as the
 * template engine bounds it.
 */
#include "club/events.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "club/notify_msg.h"
#include "club/points.h"
#include "prefs.h"
#include "store_club.h"
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

json_t *events_msg_queue(struct app *app, const struct events_msg *m, events_msg_cb cb, void *arg)
{
	json_t *res = json_pack("{s:s, s:s, s:s}", "kind", m->what, "contact_id", m->contact_id,
	                        "template", m->tpl_id ? m->tpl_id : "");
	struct notify_msg n = {.sub = "club",
	                       .log_key = "kind",
	                       .log_val = m->what,
	                       .contact_id = m->contact_id,
	                       .contact = m->contact,
	                       .tpl_id = m->tpl_id,
	                       .tpl_json = m->tpl_json,
	                       .event = m->event,
	                       .category = m->category,
	                       .cat_dflt = CAT_PROMOTIONAL,
	                       .pick = NOTIFY_MSG_ALLOWED,
	                       .requested = -1,
	                       .idem = m->idem,
	                       .idem_ttl_s = MSG_IDEM_TTL_S,
	                       .now = m->now,
	                       .due = m->due};
	return notify_msg_queue(app, &n, res, cb, arg);
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
