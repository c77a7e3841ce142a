/*
 * api_events.c - POST /v1/events: a business event (purchase, signup or a
 * custom type) for a contact given by id or by address (an unknown address
 * becomes a contact: a lead, except for a signup).  Validates the input
 * (club/events.c has the rules), records everything the event changes in
 * one atomic script (store_club.c: timeline, last purchase, points, tier,
 * referral credit, campaign attribution), then queues the follow-up
 * messages (thank-you, tier message) and answers 201, or 200 with the
 * original answer for a replayed Idempotency-Key.  Knows no key names;
 * never logs addresses or properties.
 *
 * Limits: type 40 bytes, properties 4 KiB of compact JSON, amounts 1e12,
 * Idempotency-Key 200 bytes of printable ASCII kept 24 hours per token,
 * "at" from 2000-01-01 to one hour ahead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "app.h"
#include "campaign.h"
#include "club/raffle.h"
#include "club/events.h"
#include "club/points.h"
#include "club/referral.h"
#include "log.h"
#include "store_club.h"
#include "text.h"
#include "util.h"

#define EVENT_IDEM_MAX   200
#define EVENT_IDEM_TTL_S 86400
#define EVENT_AHEAD_MS   (3600LL * 1000) /* "at" may be this far in the future */
#define EVENT_EPOCH_MS   946684800000LL  /* 2000-01-01: nothing older */
#define EVENT_CODE_MAX   64              /* referral_code as typed */

struct ev_req {
	struct api_req *rq;
	json_t *answer;
	json_t *msgs;    /* follow-up messages, while raffle entries are made */
	json_t *entries; /* raffle entries of a purchase */
	int replay;
};

static void ev_free(void *p)
{
	struct ev_req *e = p;
	json_decref(e->answer);
	json_decref(e->msgs);
	json_decref(e->entries);
	free(e);
}

/* A string field without control characters; absent -> *out NULL. */
static int get_str(struct api_req *rq, const json_t *o, const char *name, const char *field,
                   size_t max, const char **out)
{
	const json_t *v = json_object_get(o, name);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		api_reply_error(rq, 400, "invalid_field", field, "must be a string");
		return -1;
	}
	const char *s = json_string_value(v);
	if (json_string_length(v) > max) {
		api_reply_error(rq, 400, "invalid_field", field, "longer than %zu bytes", max);
		return -1;
	}
	if (strlen(s) != json_string_length(v) || text_has_ctl(s, 0)) {
		api_reply_error(rq, 400, "invalid_field", field,
		                "control characters (including CR/LF) are not allowed");
		return -1;
	}
	*out = s;
	return 0;
}

static void finish(struct ev_req *e, json_t *msgs)
{
	struct api_req *rq = e->rq;
	json_t *o = e->answer;
	e->answer = NULL;
	json_object_set_new(o, "messages", msgs);
	if (e->entries)
		json_object_set_new(o, "raffle_entries", e->entries);
	e->entries = NULL;
	if (e->replay)
		json_object_set_new(o, "replayed", json_true());
	api_reply_json(rq, e->replay ? 200 : 201, o);
}

/* A purchase enters every open raffle that takes purchases (idempotent per
 * event, so a replay with the same Idempotency-Key repeats it harmlessly
 * and completes what a lost answer left undone). */
static void on_raffles(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct ev_req *e = arg;
	struct api_req *rq = e->rq;
	if (!rep || rep->type != REDIS_REPLY_ARRAY) {
		json_decref(e->msgs);
		e->msgs = NULL;
		api_reply_error(rq, 503, "unavailable", NULL,
		                "the event is recorded but its raffle entries were not confirmed; "
		                "retry with the same Idempotency-Key");
		api_release(rq);
		return;
	}
	e->entries = json_array();
	for (size_t i = 0; i < rep->elements; i++) {
		const redisReply *x = rep->element[i];
		if (x->type != REDIS_REPLY_ARRAY || x->elements < 2)
			continue;
		const char *id = reply_str(x->element[0]), *st = reply_str(x->element[1]);
		const char *detail = x->elements > 2 ? reply_str(x->element[2]) : NULL;
		json_t *je = json_pack("{s:s?, s:s?}", "raffle", id, "status", st);
		if (st && strcmp(st, "refused") == 0 && detail)
			json_object_set_new(je, "reason", json_string(detail));
		json_array_append_new(e->entries, je);
	}
	json_t *msgs = e->msgs;
	e->msgs = NULL;
	finish(e, msgs);
	api_release(rq);
}

/* Answer now, or after the raffle entries of a purchase.  Returns 1 when
 * the answer was deferred (the caller must not release). */
static int finish_or_enter(struct ev_req *e, json_t *msgs)
{
	struct api_req *rq = e->rq;
	struct app *app = api_app(rq);
	const char *type = json_string_value(json_object_get(e->answer, "type"));
	const char *cid = json_string_value(json_object_get(e->answer, "contact_id"));
	const char *id = json_string_value(json_object_get(e->answer, "id"));
	const char *cur = json_string_value(json_object_get(e->answer, "currency"));
	int64_t amount_c = 0;
	if (type && strcmp(type, "purchase") == 0 && cid && id && cur &&
	    money_parse(json_object_get(e->answer, "amount"), &amount_c) == 0) {
		e->msgs = msgs;
		raffle_enter_by_purchase(app->st, cid, amount_c, cur, id, now_ms(), on_raffles, e);
		return 1;
	}
	finish(e, msgs);
	return 0;
}

static void on_followups(void *arg, json_t *msgs)
{
	struct ev_req *e = arg;
	struct api_req *rq = e->rq;
	if (msgs) {
		if (finish_or_enter(e, msgs))
			return; /* on_raffles answers and releases */
	} else {
		api_reply_error(rq, 503, "unavailable", NULL,
		                "the event is recorded but a message was not confirmed; retry with "
		                "the same Idempotency-Key");
	}
	api_release(rq);
}

static void on_recorded(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct ev_req *e = arg;
	struct api_req *rq = e->rq;
	struct app *app = api_app(rq);
	if (api_reply_redis_failure(rq, rep))
		goto out;
	const char *st =
	    rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 ? reply_str(rep->element[0]) : NULL;
	if (st && strcmp(st, "no_contact") == 0) {
		api_reply_error(rq, 404, "not_found", "contact_id", "no such contact");
		goto out;
	}
	if (st && strcmp(st, "bad_ref") == 0 && rep->elements >= 2) {
		const char *why = reply_str(rep->element[1]);
		api_reply_error(rq, 400, "invalid_field", "referral_code", "%s",
		                why && strcmp(why, "self") == 0
		                    ? "a contact cannot use its own referral code"
		                    : "unknown referral code");
		goto out;
	}
	if (!st || (strcmp(st, "ok") != 0 && strcmp(st, "dup") != 0) || rep->elements < 6) {
		api_reply_error(rq, 503, "unavailable", NULL, "unexpected store answer");
		goto out;
	}
	const char *text = reply_str(rep->element[1]);
	e->answer = text ? json_loads(text, 0, NULL) : NULL;
	if (!json_is_object(e->answer)) {
		log_err("club", "unreadable event answer from the store");
		api_reply_error(rq, 500, "internal", NULL, "unreadable stored answer");
		goto out;
	}
	e->replay = strcmp(st, "dup") == 0;
	char base[ID_LEN + 16];
	snprintf(base, sizeof base, "club/ev:%s",
	         json_string_value(json_object_get(e->answer, "id"))
	             ? json_string_value(json_object_get(e->answer, "id"))
	             : "");
	log_info("club", "event=%s type=%s contact=%s replay=%d", base + 8,
	         log_q(json_string_value(json_object_get(e->answer, "type"))),
	         json_string_value(json_object_get(e->answer, "contact_id")), e->replay);
	struct events_followup f = {.answer = e->answer,
	                            .contact = rep->element[2],
	                            .referrer = rep->element[3],
	                            .thank_you_tpl_json = reply_str(rep->element[4]),
	                            .tier_tpl_json = reply_str(rep->element[5]),
	                            .idem_base = base,
	                            .now = now_ms()};
	json_t *msgs = events_followups(app, &f, on_followups, e);
	if (!msgs)
		return; /* on_followups answers and releases */
	if (finish_or_enter(e, msgs))
		return; /* on_raffles answers and releases */
out:
	api_release(rq);
}

/* contact: {"phone"|"email"|"chat": address}, exactly one. */
static int get_contact(struct api_req *rq, const json_t *c, const char *country, int *kind,
                       char addr[ADDR_MAX + 1])
{
	if (!json_is_object(c) || json_object_size(c) != 1) {
		api_reply_error(rq, 400, "invalid_field", "contact",
		                "an object with exactly one of phone, email or chat");
		return -1;
	}
	static const struct {
		const char *key;
		enum addr_kind kind;
	} keys[] = {{"phone", ADDR_SMS}, {"email", ADDR_EMAIL}, {"chat", ADDR_CHAT}};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		json_t *v = json_object_get(c, keys[i].key);
		if (!v)
			continue;
		char field[16];
		snprintf(field, sizeof field, "contact.%s", keys[i].key);
		if (!json_is_string(v)) {
			api_reply_error(rq, 400, "invalid_field", field, "must be a string");
			return -1;
		}
		const char *why = "invalid";
		if (addr_normalize_n(keys[i].kind, json_string_value(v), json_string_length(v),
		                     country, addr, &why) < 0) {
			api_reply_error(rq, 400, "invalid_field", field, "%s", why);
			return -1;
		}
		*kind = (int)keys[i].kind;
		return 0;
	}
	api_reply_error(rq, 400, "invalid_field", "contact",
	                "an object with exactly one of phone, email or chat");
	return -1;
}

static void h_event(struct api_req *rq)
{
	struct app *app = api_app(rq);
	const struct config *cfg = app->cfg;
	json_t *o = api_json(rq);
	static const char *const known[] = {"type",   "contact_id", "contact",    "at",
	                                    "amount", "currency",   "properties", "referral_code"};
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		int ok = 0;
		for (size_t i = 0; i < ARRAY_SIZE(known); i++)
			ok |= strcmp(k, known[i]) == 0;
		if (!ok) {
			char field[64];
			snprintf(field, sizeof field, "%.60s", k);
			api_reply_error(rq, 400, "invalid_field", field, "unknown field");
			return;
		}
	}

	/* type */
	const json_t *tv = json_object_get(o, "type");
	if (!tv || json_is_null(tv)) {
		api_reply_error(rq, 400, "missing_field", "type", "type is required");
		return;
	}
	if (!json_is_string(tv) ||
	    !events_type_valid(json_string_value(tv), json_string_length(tv))) {
		api_reply_error(rq, 400, "invalid_field", "type",
		                "purchase, signup or a custom type of 1..40 of a-z 0-9 _ . -");
		return;
	}
	const char *type = json_string_value(tv);
	int purchase = strcmp(type, "purchase") == 0, signup = strcmp(type, "signup") == 0;

	/* who */
	const char *cid;
	if (get_str(rq, o, "contact_id", "contact_id", 64, &cid) < 0)
		return;
	const json_t *cobj = json_object_get(o, "contact");
	if (cobj && json_is_null(cobj))
		cobj = NULL;
	if (!!cid == !!cobj) {
		api_reply_error(rq, 400, "missing_field", cid ? "contact" : "contact_id",
		                "give exactly one of contact_id or contact");
		return;
	}
	if (cid && !id_valid(cid)) {
		api_reply_error(rq, 404, "not_found", "contact_id", "no such contact");
		return;
	}
	int kind = -1;
	char addr[ADDR_MAX + 1] = "";
	if (cobj && get_contact(rq, cobj, cfg->contacts_default_country, &kind, addr) < 0)
		return;

	/* when */
	int64_t now = now_ms(), at = now;
	const json_t *atv = json_object_get(o, "at");
	if (atv && !json_is_null(atv)) {
		if (!json_is_string(atv) || parse_time(json_string_value(atv), &at) < 0) {
			api_reply_error(rq, 400, "invalid_field", "at",
			                "an RFC 3339 time such as 2026-11-23T18:30:00+03:30");
			return;
		}
		if (at < EVENT_EPOCH_MS || at > now + EVENT_AHEAD_MS) {
			api_reply_error(rq, 400, "invalid_field", "at",
			                "must lie between 2000-01-01 and one hour from now");
			return;
		}
	}
	char at_text[40];
	fmt_time(at, at_text, sizeof at_text);

	/* money */
	int64_t cents = -1;
	char amount_text[EVENTS_MONEY_TEXT] = "";
	const char *currency;
	const json_t *amv = json_object_get(o, "amount");
	if (amv && json_is_null(amv))
		amv = NULL;
	if (get_str(rq, o, "currency", "currency", 16, &currency) < 0)
		return;
	if (purchase && !amv) {
		api_reply_error(rq, 400, "missing_field", "amount", "a purchase needs an amount");
		return;
	}
	if (amv) {
		const char *why = NULL;
		if (events_money_parse(amv, &cents, &why) < 0) {
			api_reply_error(rq, 400, "invalid_field", "amount", "%s", why);
			return;
		}
		events_money_format(cents, amount_text);
		if (!currency) {
			api_reply_error(rq, 400, "missing_field", "currency",
			                "an amount needs a currency (ISO 4217, e.g. IRR)");
			return;
		}
	}
	if (currency && !events_currency_valid(currency)) {
		api_reply_error(rq, 400, "invalid_field", "currency",
		                "three capital letters (ISO 4217), e.g. IRR");
		return;
	}
	if (currency && !amv) {
		api_reply_error(rq, 400, "missing_field", "amount", "a currency needs an amount");
		return;
	}

	/* properties */
	char *props = NULL;
	const json_t *pv = json_object_get(o, "properties");
	if (pv && !json_is_null(pv)) {
		if (!json_is_object(pv)) {
			api_reply_error(rq, 400, "invalid_field", "properties",
			                "must be an object");
			return;
		}
		props = json_dumps(pv, JSON_COMPACT);
		if (!props || strlen(props) > EVENTS_PROPS_MAX) {
			free(props);
			api_reply_error(rq, 400, "invalid_field", "properties",
			                "at most %d bytes as compact JSON", EVENTS_PROPS_MAX);
			return;
		}
	}

	/* referral */
	const char *code_in;
	char code[REFERRAL_CODE_LEN + 1] = "";
	if (get_str(rq, o, "referral_code", "referral_code", EVENT_CODE_MAX, &code_in) < 0)
		goto out;
	if (code_in && !signup) {
		api_reply_error(rq, 400, "invalid_field", "referral_code",
		                "a referral code goes with a signup event");
		goto out;
	}
	if (code_in && referral_code_normalize(code_in, code) < 0) {
		api_reply_error(rq, 400, "invalid_field", "referral_code", "unknown referral code");
		goto out;
	}

	/* idempotency */
	const char *idem = api_header(rq, "Idempotency-Key");
	char idem_key[EVENT_IDEM_MAX + 80] = "";
	if (idem) {
		size_t n = strlen(idem);
		int ok = n > 0 && n <= EVENT_IDEM_MAX;
		for (size_t i = 0; ok && i < n; i++)
			ok = idem[i] > 0x20 && idem[i] < 0x7f;
		if (!ok) {
			api_reply_error(rq, 400, "invalid_field", "Idempotency-Key",
			                "1..200 printable ASCII characters");
			goto out;
		}
		snprintf(idem_key, sizeof idem_key, "%s:%s", api_token_name(rq), idem);
	}
	if (!api_store_ready(rq))
		goto out;

	int64_t earn = 0;
	if (purchase && cents > 0 &&
	    (!*cfg->points_currency || strcmp(cfg->points_currency, currency) == 0))
		earn = points_earn(cents, cfg->points_earn_points, cfg->points_earn_amount);
	if (earn > POINTS_MAX)
		earn = POINTS_MAX;

	char eid[ID_LEN + 1];
	id_new(eid, now);
	char tiers[EVENTS_TIERS_TEXT];
	struct store_club_rules rules;
	events_rules(cfg, &rules, tiers);
	struct store_club_event ev = {.id = eid,
	                              .now = now,
	                              .at = at,
	                              .at_text = at_text,
	                              .type = type,
	                              .contact_id = cid,
	                              .addr_kind =
	                                  kind >= 0 ? addr_kind_name((enum addr_kind)kind) : NULL,
	                              .addr = addr,
	                              .lead = !signup,
	                              .idem = idem ? idem_key : NULL,
	                              .idem_ttl_s = EVENT_IDEM_TTL_S,
	                              .amount_c = cents,
	                              .amount_text = amount_text,
	                              .currency = currency,
	                              .properties = props,
	                              .purchase_points = earn,
	                              .signup_points = signup ? cfg->points_signup_points : 0,
	                              .referral_code = code_in ? code : NULL,
	                              .referrer_points = cfg->referrals_referrer_points,
	                              .referee_points = cfg->referrals_referee_points,
	                              .thank_you_tpl = cfg->events_thank_you_template,
	                              .tier_tpl = cfg->points_tier_template};
	struct ev_req *e = xcalloc(1, sizeof *e);
	e->rq = rq;
	api_set_data(rq, e, ev_free);
	api_hold(rq);
	store_club_event(app->st, &rules, &ev, on_recorded, e);
out:
	free(props);
}

const struct api_route api_event_routes[] = {
    {"POST", "/v1/events", ROLE_MARKETER, API_BODY_JSON, h_event, NULL, NULL},
};
const size_t api_event_nroutes = ARRAY_SIZE(api_event_routes);
