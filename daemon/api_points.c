/*
 * api_points.c - a contact's loyalty account:
 *   GET  /v1/contacts/{id}/points          balance, lifetime, tier, next tier,
 *        points expiring soonest, the ledger newest first (limit, cursor)
 *   POST /v1/contacts/{id}/points/spend    {points, reason, ref} (marketer);
 *        409 insufficient_points when the balance is short
 *   POST /v1/contacts/{id}/points/adjust   {points (+/-), reason, ref} (admin)
 *   GET  /v1/contacts/{id}/referral        the contact's referral code,
 *        created on first use
 * Every read and write applies the lazy expiry first (club/points.h has the
 * rules, lua/points_ledger.lua applies them).  Spend and adjust take an
 * Idempotency-Key header (or "idempotency_key" in the body): per token, 24
 * hours, a replay answers the original result with "replayed": true.  A
 * promotion through an adjustment queues the tier message (club/events.c).
 * Knows no key names; never logs reasons.
 *
 * Limits: points 1..1e9 per call, reason 200 bytes, ref 128 bytes,
 * history pages of 1..200 entries, 10 expiry dates listed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "club/events.h"
#include "club/points.h"
#include "club/referral.h"
#include "log.h"
#include "store_club.h"
#include "store_timeline.h"
#include "text.h"
#include "util.h"

#define POINTS_IDEM_MAX     200
#define POINTS_IDEM_TTL_S   86400
#define POINTS_REASON_MAX   200
#define POINTS_REF_MAX      128
#define POINTS_PAGE_MAX     200
#define POINTS_EXPIRING_MAX 10
#define POINTS_LOTS_READ    500 /* open lots read for the expiry summary */
#define REFCODE_CANDIDATES  4

static int contact_id_ok(struct api_req *rq)
{
	if (!id_valid(api_param(rq, "id"))) {
		api_reply_error(rq, 404, "not_found", NULL, "no such contact");
		return 0;
	}
	return 1;
}

static void rfc3339_field(json_t *o, const char *key, const char *ms_text)
{
	int64_t ms;
	if (!ms_text || parse_i64(ms_text, 0, INT64_MAX, &ms) < 0)
		return;
	char t[40];
	fmt_time(ms, t, sizeof t);
	json_object_set_new(o, key, json_string(t));
}

/* One ledger stream entry as the API shows it. */
static json_t *entry_json(const redisReply *e)
{
	if (!e || e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[1]->type != REDIS_REPLY_ARRAY)
		return NULL;
	const redisReply *f = e->element[1];
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(reply_str(e->element[0])));
	for (size_t i = 0; i + 1 < f->elements; i += 2) {
		const char *k = reply_str(f->element[i]), *v = reply_str(f->element[i + 1]);
		int64_t n;
		if (!k || !v)
			continue;
		if (strcmp(k, "at") == 0 || strcmp(k, "expires_at") == 0) {
			rfc3339_field(o, k, v);
		} else if (strcmp(k, "delta") == 0 || strcmp(k, "balance") == 0) {
			if (parse_i64(v, INT64_MIN + 1, INT64_MAX, &n) == 0)
				json_object_set_new(o, k, json_integer(n));
		} else {
			json_t *s = json_stringn(v, f->element[i + 1]->len);
			if (s)
				json_object_set_new(o, k, s);
		}
	}
	return o;
}

/* The open lots [member, score, ...] as the next expiry dates. */
static json_t *expiring_json(const redisReply *lots, int64_t now)
{
	size_t n = lots && lots->type == REDIS_REPLY_ARRAY ? lots->elements / 2 : 0;
	struct points_lot *l = xcalloc(n ? n : 1, sizeof *l);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *m = reply_str(lots->element[2 * i]);
		const char *sc = reply_str(lots->element[2 * i + 1]);
		const char *bar = m ? strrchr(m, '|') : NULL;
		if (!bar || !sc || parse_i64(bar + 1, 0, INT64_MAX, &l[k].remaining) < 0 ||
		    parse_i64(sc, 0, INT64_MAX, &l[k].expires) < 0)
			continue;
		l[k].seq = (int64_t)i;
		k++;
	}
	int64_t gone = 0;
	points_lots_sort(l, k);
	k = points_lots_expire(l, k, now, &gone);
	json_t *a = json_array();
	for (size_t i = 0; i < k && json_array_size(a) < POINTS_EXPIRING_MAX; i++) {
		if (l[i].expires >= POINTS_NEVER)
			break;
		int64_t sum = l[i].remaining;
		while (i + 1 < k && l[i + 1].expires == l[i].expires)
			sum += l[++i].remaining;
		char t[40];
		fmt_time(l[i].expires, t, sizeof t);
		json_array_append_new(a,
		                      json_pack("{s:s, s:I}", "at", t, "points", (json_int_t)sum));
	}
	free(l);
	return a;
}

/* GET /v1/contacts/{id}/points ---------------------------------------------- */

static void on_points(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	struct app *app = api_app(rq);
	if (api_reply_redis_failure(rq, rep))
		goto out;
	const char *st =
	    rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 ? reply_str(rep->element[0]) : NULL;
	if (st && strcmp(st, "no_contact") == 0) {
		api_reply_error(rq, 404, "not_found", NULL, "no such contact");
		goto out;
	}
	if (!st || strcmp(st, "ok") != 0 || rep->elements < 6) {
		api_reply_error(rq, 503, "unavailable", NULL, "unexpected store answer");
		goto out;
	}
	int64_t bal = 0, life = 0, limit = 50;
	parse_i64(reply_str(rep->element[1]), INT64_MIN + 1, INT64_MAX, &bal);
	parse_i64(reply_str(rep->element[2]), INT64_MIN + 1, INT64_MAX, &life);
	const char *l = api_query(rq, "limit");
	if (l)
		parse_i64(l, 1, POINTS_PAGE_MAX, &limit);
	const char *tier = reply_str(rep->element[3]);
	json_t *o = json_object();
	json_object_set_new(o, "contact_id", json_string(api_param(rq, "id")));
	json_object_set_new(o, "balance", json_integer(bal));
	json_object_set_new(o, "lifetime", json_integer(life));
	json_object_set_new(o, "tier", tier && *tier ? json_string(tier) : json_null());

	struct points_tiers t;
	char why[128];
	if (points_tiers_parse(app->cfg->points_tiers, &t, why, sizeof why) < 0)
		t.n = 0;
	int idx = points_tier_index(&t, life);
	if (idx + 1 < (int)t.n) {
		const struct points_tier *nx = &t.t[idx + 1];
		json_object_set_new(o, "next_tier",
		                    json_pack("{s:s, s:I, s:I}", "name", nx->name, "threshold",
		                              (json_int_t)nx->threshold, "points_needed",
		                              (json_int_t)(nx->threshold - life)));
	} else {
		json_object_set_new(o, "next_tier", json_null());
	}
	json_object_set_new(o, "expiring", expiring_json(rep->element[4], now_ms()));

	const redisReply *page = rep->element[5];
	json_t *hist = json_array();
	const char *last = NULL;
	size_t n = page->type == REDIS_REPLY_ARRAY ? page->elements : 0;
	for (size_t i = 0; i < n; i++) {
		json_t *e = entry_json(page->element[i]);
		if (e)
			json_array_append_new(hist, e);
		if (page->element[i]->type == REDIS_REPLY_ARRAY && page->element[i]->elements > 0)
			last = reply_str(page->element[i]->element[0]);
	}
	json_object_set_new(o, "history", hist);
	json_object_set_new(o, "next_cursor",
	                    (int64_t)n == limit && last ? json_string(last) : json_null());
	api_reply_json(rq, 200, o);
out:
	api_release(rq);
}

static void h_points(struct api_req *rq)
{
	struct app *app = api_app(rq);
	if (!contact_id_ok(rq))
		return;
	int64_t limit = 50;
	const char *l = api_query(rq, "limit");
	if (l && parse_i64(l, 1, POINTS_PAGE_MAX, &limit) < 0) {
		api_reply_error(rq, 400, "invalid_field", "limit", "limit is 1..200");
		return;
	}
	const char *cursor = api_query(rq, "cursor");
	if (cursor && *cursor && !store_timeline_cursor_valid(cursor)) {
		api_reply_error(rq, 400, "invalid_field", "cursor", "not a cursor from this API");
		return;
	}
	if (!api_store_ready(rq))
		return;
	char tiers[EVENTS_TIERS_TEXT];
	struct store_club_rules rules;
	events_rules(app->cfg, &rules, tiers);
	api_hold(rq);
	store_club_points_get(app->st, &rules, api_param(rq, "id"), cursor, (int)limit,
	                      POINTS_LOTS_READ, on_points, rq);
}

/* spend / adjust ------------------------------------------------------------ */

struct change_req {
	struct api_req *rq;
	json_t *answer;
	int replay;
};

static void change_free(void *p)
{
	struct change_req *c = p;
	json_decref(c->answer);
	free(c);
}

static void change_finish(struct change_req *c, json_t *msgs)
{
	json_t *o = c->answer;
	c->answer = NULL;
	json_object_set_new(o, "messages", msgs);
	if (c->replay)
		json_object_set_new(o, "replayed", json_true());
	api_reply_json(c->rq, 200, o);
}

static void on_change_msgs(void *arg, json_t *msgs)
{
	struct change_req *c = arg;
	if (msgs)
		change_finish(c, msgs);
	else
		api_reply_error(c->rq, 503, "unavailable", NULL,
		                "the points changed but the tier message was not confirmed; retry "
		                "with the same Idempotency-Key");
	api_release(c->rq);
}

static void on_changed(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct change_req *c = arg;
	struct api_req *rq = c->rq;
	struct app *app = api_app(rq);
	if (api_reply_redis_failure(rq, rep))
		goto out;
	const char *st =
	    rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 ? reply_str(rep->element[0]) : NULL;
	if (st && strcmp(st, "no_contact") == 0) {
		api_reply_error(rq, 404, "not_found", NULL, "no such contact");
		goto out;
	}
	if (st && strcmp(st, "insufficient") == 0 && rep->elements >= 2) {
		api_reply_error(rq, 409, "insufficient_points", "points",
		                "the balance is %s points",
		                reply_str(rep->element[1]) ? reply_str(rep->element[1]) : "0");
		goto out;
	}
	if (!st || (strcmp(st, "ok") != 0 && strcmp(st, "dup") != 0) || rep->elements < 4) {
		api_reply_error(rq, 503, "unavailable", NULL, "unexpected store answer");
		goto out;
	}
	const char *text = reply_str(rep->element[1]);
	c->answer = text ? json_loads(text, 0, NULL) : NULL;
	if (!json_is_object(c->answer)) {
		log_err("club", "unreadable points answer from the store");
		api_reply_error(rq, 500, "internal", NULL, "unreadable stored answer");
		goto out;
	}
	c->replay = strcmp(st, "dup") == 0;
	const char *cid = json_string_value(json_object_get(c->answer, "contact_id"));
	const char *entry = json_string_value(json_object_get(c->answer, "entry"));
	char *base = xasprintf("club/pl:%s:%s", cid ? cid : "", entry ? entry : "");
	log_info("club", "points contact=%s kind=%s delta=%lld replay=%d", cid ? cid : "",
	         log_q(json_string_value(json_object_get(c->answer, "kind"))),
	         (long long)json_integer_value(json_object_get(c->answer, "delta")), c->replay);
	struct events_followup f = {.answer = c->answer,
	                            .contact = rep->element[2],
	                            .tier_tpl_json = reply_str(rep->element[3]),
	                            .idem_base = base,
	                            .now = now_ms()};
	json_t *msgs = events_followups(app, &f, on_change_msgs, c);
	free(base);
	if (!msgs)
		return;
	change_finish(c, msgs);
out:
	api_release(rq);
}

static int opt_text(struct api_req *rq, const json_t *o, const char *name, size_t max,
                    const char **out)
{
	const json_t *v = json_object_get(o, name);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
	    text_has_ctl(json_string_value(v), 0)) {
		api_reply_error(rq, 400, "invalid_field", name,
		                "a string without control characters (including CR/LF)");
		return -1;
	}
	if (json_string_length(v) > max) {
		api_reply_error(rq, 400, "invalid_field", name, "longer than %zu bytes", max);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

static void change(struct api_req *rq, const char *kind)
{
	struct app *app = api_app(rq);
	if (!contact_id_ok(rq))
		return;
	json_t *o = api_json(rq);
	static const char *const known[] = {"points", "reason", "ref", "idempotency_key"};
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
	int spend = strcmp(kind, "spend") == 0;
	const json_t *pv = json_object_get(o, "points");
	if (!pv || json_is_null(pv)) {
		api_reply_error(rq, 400, "missing_field", "points", "points is required");
		return;
	}
	json_int_t pts = json_is_integer(pv) ? json_integer_value(pv) : 0;
	if (!json_is_integer(pv) || pts == 0 || pts > POINTS_MAX || pts < -POINTS_MAX ||
	    (spend && pts < 0)) {
		api_reply_error(rq, 400, "invalid_field", "points",
		                spend ? "an integer from 1 to 1000000000"
		                      : "a non-zero integer from -1000000000 to 1000000000");
		return;
	}
	const char *reason, *ref, *body_idem;
	if (opt_text(rq, o, "reason", POINTS_REASON_MAX, &reason) < 0 ||
	    opt_text(rq, o, "ref", POINTS_REF_MAX, &ref) < 0 ||
	    opt_text(rq, o, "idempotency_key", POINTS_IDEM_MAX, &body_idem) < 0)
		return;
	if (!spend && (!reason || !*reason)) {
		api_reply_error(rq, 400, "missing_field", "reason", "an adjustment needs a reason");
		return;
	}
	const char *idem = api_header(rq, "Idempotency-Key");
	if (idem && body_idem && strcmp(idem, body_idem) != 0) {
		api_reply_error(rq, 400, "invalid_field", "idempotency_key",
		                "differs from the Idempotency-Key header");
		return;
	}
	if (!idem)
		idem = body_idem;
	char idem_key[POINTS_IDEM_MAX + 80] = "";
	if (idem) {
		size_t n = strlen(idem);
		int ok = n > 0 && n <= POINTS_IDEM_MAX;
		for (size_t i = 0; ok && i < n; i++)
			ok = idem[i] > 0x20 && idem[i] < 0x7f;
		if (!ok) {
			api_reply_error(rq, 400, "invalid_field",
			                body_idem == idem ? "idempotency_key" : "Idempotency-Key",
			                "1..200 printable ASCII characters");
			return;
		}
		snprintf(idem_key, sizeof idem_key, "%s:%s", api_token_name(rq), idem);
	}
	if (!api_store_ready(rq))
		return;
	char tiers[EVENTS_TIERS_TEXT];
	struct store_club_rules rules;
	events_rules(app->cfg, &rules, tiers);
	struct change_req *c = xcalloc(1, sizeof *c);
	c->rq = rq;
	api_set_data(rq, c, change_free);
	api_hold(rq);
	store_club_points_change(app->st, &rules, now_ms(), api_param(rq, "id"), kind,
	                         spend ? -(int64_t)pts : (int64_t)pts, reason, ref,
	                         api_token_name(rq), idem ? idem_key : NULL, POINTS_IDEM_TTL_S,
	                         app->cfg->points_tier_template, on_changed, c);
}

static void h_spend(struct api_req *rq)
{
	change(rq, "spend");
}

static void h_adjust(struct api_req *rq)
{
	change(rq, "adjust");
}

/* GET /v1/contacts/{id}/referral ------------------------------------------- */

static void on_refcode(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (api_reply_redis_failure(rq, rep))
		goto out;
	const char *st =
	    rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 ? reply_str(rep->element[0]) : NULL;
	if (st && strcmp(st, "no_contact") == 0) {
		api_reply_error(rq, 404, "not_found", NULL, "no such contact");
	} else if (st && strcmp(st, "ok") == 0 && rep->elements >= 3 &&
	           reply_str(rep->element[1])) {
		int created =
		    rep->element[2]->type == REDIS_REPLY_INTEGER && rep->element[2]->integer;
		if (created)
			log_info("club", "contact=%s referral code created", api_param(rq, "id"));
		api_reply_json(rq, 200,
		               json_pack("{s:s, s:s, s:b}", "contact_id", api_param(rq, "id"),
		                         "code", reply_str(rep->element[1]), "created", created));
	} else {
		api_reply_error(rq, 503, "unavailable", NULL, "no free referral code; retry");
	}
out:
	api_release(rq);
}

static void h_referral(struct api_req *rq)
{
	struct app *app = api_app(rq);
	if (!contact_id_ok(rq))
		return;
	if (!api_store_ready(rq))
		return;
	char codes[REFCODE_CANDIDATES][REFERRAL_CODE_LEN + 1];
	const char *cand[REFCODE_CANDIDATES];
	for (size_t i = 0; i < REFCODE_CANDIDATES; i++) {
		referral_code_new(codes[i]);
		cand[i] = codes[i];
	}
	api_hold(rq);
	store_club_refcode(app->st, api_param(rq, "id"), cand, REFCODE_CANDIDATES, on_refcode, rq);
}

const struct api_route api_points_routes[] = {
    {"GET", "/v1/contacts/{id}/points", ROLE_VIEWER, API_BODY_NONE, h_points, NULL, NULL},
    {"POST", "/v1/contacts/{id}/points/spend", ROLE_MARKETER, API_BODY_JSON, h_spend, NULL, NULL},
    {"POST", "/v1/contacts/{id}/points/adjust", ROLE_ADMIN, API_BODY_JSON, h_adjust, NULL, NULL},
    {"GET", "/v1/contacts/{id}/referral", ROLE_VIEWER, API_BODY_NONE, h_referral, NULL, NULL},
};
const size_t api_points_nroutes = ARRAY_SIZE(api_points_routes);
