/*
 * api_raffles.c - /v1/raffles:
 *   POST   /v1/raffles                   create (marketer): the secret seed is
 *          drawn here, only its SHA-256 commitment is ever shown before the draw
 *   GET    /v1/raffles, /v1/raffles/{id} list and read (viewer)
 *   DELETE /v1/raffles/{id}              (admin) only while nobody entered
 *   POST   /v1/raffles/{id}/entries      enter a contact (marketer), idempotent
 *          on (raffle, contact, method, ref)
 *   GET    /v1/raffles/{id}/entries      the entry log, oldest first (viewer)
 *   POST   /v1/raffles/{id}/draw         the draw (admin), once, after ends_at
 *          or with ?force=true; winners notified through their preferred channel
 *   GET    /v1/raffles/{id}/draw         the draw record (viewer), JSON or, with
 *          ?format=entries, the verifier's ENTRIES_FILE as text/plain
 * Validation is raffle.c's; storage store_raffles.c's; the get, list and
 * delete handling api_crud.c's; the draw is draw.c's,
 * fed by raffle_draw_run().  Knows no key names.  Never logs a seed, a code
 * or a text.
 *
 * The draw, with several instances: lock (state drawing under a lease; a
 * second caller gets 409) -> draw.c over the stored weights -> finish (kept
 * only while the lease is ours) -> the winners' messages (idempotency key
 * raffle:{id}:win:{contact}) -> notified.  A lease left by a crashed
 * instance is taken over after RAFFLE_LEASE_MS; the same seed and entries
 * give the same winners.
 *
 * Limits: list pages 1..200, entry pages 1..500, ref 200 bytes; the draw
 * runs on the loop (one struct draw_entry per contact).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_crud.h"
#include "app.h"
#include "club/events.h"
#include "club/raffle.h"
#include "draw.h"
#include "log.h"
#include "store_club.h"
#include "store_raffles.h"
#include "store_timeline.h"
#include "text.h"
#include "util.h"

#define RAFFLE_LIST_DEFAULT    50
#define RAFFLE_LIST_MAX        200
#define RAFFLE_ENTRIES_DEFAULT 100
#define RAFFLE_ENTRIES_PAGE    500
#define RAFFLE_LEASE_MS        60000

/* ---------------------------------------------------------------- output */

/* The API form of a raffle from its stored hash (new reference), NULL when
 * the hash is empty or its definition unreadable. */
static json_t *raffle_json(const redisReply *h)
{
	const char *txt = hash_get(h, "json");
	json_t *o = txt ? json_loads(txt, 0, NULL) : NULL;
	if (!json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	const char *state = hash_get(h, "state");
	json_object_set_new(o, "state", json_string(state ? state : "open"));
	json_object_set_new(o, "commit",
	                    json_string(hash_get(h, "commit") ? hash_get(h, "commit") : ""));
	const char *seed = hash_get(h, "seed");
	json_object_set_new(o, "seed",
	                    state && strcmp(state, "drawn") == 0 && seed ? json_string(seed)
	                                                                 : json_null());
	api_crud_time(o, "created_at", hash_get(h, "created"));
	api_crud_time(o, "drawn_at", hash_get(h, "drawn"));
	json_object_set_new(o, "entries",
	                    json_pack("{s:I, s:I, s:I}", "count",
	                              (json_int_t)hash_get_i64(h, "entries", 0), "contacts",
	                              (json_int_t)hash_get_i64(h, "contacts", 0), "weight",
	                              (json_int_t)hash_get_i64(h, "weight", 0)));
	json_object_set_new(o, "codes_used",
	                    json_is_null(json_object_get(o, "codes_total"))
	                        ? json_null()
	                        : json_integer(hash_get_i64(h, "codes_used", 0)));
	int64_t now = now_ms(), starts = hash_get_i64(h, "starts", 0),
	        ends = hash_get_i64(h, "ends", 0);
	json_object_set_new(
	    o, "open_now",
	    json_boolean(state && strcmp(state, "open") == 0 && now >= starts && now < ends));
	return o;
}

static void reply_raffle(struct api_req *rq, unsigned status, const redisReply *h)
{
	if (!h || h->type != REDIS_REPLY_ARRAY || h->elements == 0) {
		api_reply_error(rq, 404, "not_found", NULL, "no such raffle");
		return;
	}
	json_t *o = raffle_json(h);
	if (!o) {
		api_reply_error(rq, 500, "internal", NULL, "the stored raffle is unreadable");
		return;
	}
	api_reply_json(rq, status, o);
}

/* ---------------------------------------------------------------- create */

struct create_ctx {
	struct api_req *rq;
	struct raffle_def *d;
	int step; /* 0: notify template, 1: reply template, 2: create, 3: read back */
};

static void create_next(struct create_ctx *c);

static void create_done(struct create_ctx *c)
{
	raffle_def_free(c->d);
	api_release(c->rq);
	free(c);
}

static void on_create_step(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct create_ctx *c = arg;
	struct api_req *rq = c->rq;
	if (api_reply_redis_failure(rq, rep)) {
		create_done(c);
		return;
	}
	switch (c->step) {
	case 0:
	case 1: {
		/* HMGET tpl json v: nil when the template does not exist */
		const redisReply *j =
		    rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 ? rep->element[0] : NULL;
		if (!reply_str(j)) {
			const char *f = c->step == 0 ? "notify_template" : "reply_template";
			api_reply_error(rq, 400, "invalid_field", f, "no such template");
			create_done(c);
			return;
		}
		break;
	}
	case 2: {
		const char *st = api_crud_str(rep, 0);
		if (st && strcmp(st, "exists") == 0) {
			api_reply_error(rq, 409, "conflict", "id", "a raffle with this id exists");
			create_done(c);
			return;
		}
		if (!st || strcmp(st, "ok") != 0) {
			api_reply_error(rq, 503, "unavailable", NULL,
			                "the store refused the raffle");
			create_done(c);
			return;
		}
		log_info("raffle", "raffle=%s created by=%s", log_q(c->d->id), api_token_name(rq));
		break;
	}
	default:
		reply_raffle(rq, 201, rep);
		create_done(c);
		return;
	}
	c->step++;
	create_next(c);
}

static void create_next(struct create_ctx *c)
{
	struct app *app = api_app(c->rq);
	if (c->step == 0 && !*c->d->notify_tpl)
		c->step = 1;
	if (c->step == 1 && !*c->d->reply_tpl)
		c->step = 2;
	switch (c->step) {
	case 0:
		store_template_get(app->st, c->d->notify_tpl, on_create_step, c);
		return;
	case 1:
		store_template_get(app->st, c->d->reply_tpl, on_create_step, c);
		return;
	case 2: {
		unsigned char seed[DRAW_SEED_LEN];
		char seed_hex[DRAW_HEX_LEN + 1], commit[DRAW_HEX_LEN + 1];
		draw_new_seed(seed);
		draw_commit(seed, commit);
		hex_encode(seed, sizeof seed, seed_hex);
		json_t *pub = raffle_def_json(c->d);
		char *json = json_dumps(pub, JSON_COMPACT);
		json_decref(pub);
		store_raffle_create(app->st, c->d, json, seed_hex, commit, now_ms(), on_create_step,
		                    c);
		free(json);
		explicit_bzero(seed, sizeof seed);
		explicit_bzero(seed_hex, sizeof seed_hex);
		return;
	}
	default:
		store_raffle_get(app->st, c->d->id, on_create_step, c);
		return;
	}
}

static void h_create(struct api_req *rq)
{
	const char *field = NULL;
	char reason[160];
	struct raffle_def *d;
	if (raffle_parse(api_json(rq), 0, &d, &field, reason, sizeof reason) < 0) {
		api_reply_error(rq, 400,
		                strcmp(reason, "required") == 0 ? "missing_field" : "invalid_field",
		                field && *field ? field : NULL, "%s", reason);
		return;
	}
	if (!*d->id)
		id_new(d->id, now_ms());
	if (!api_store_ready(rq)) {
		raffle_def_free(d);
		return;
	}
	struct create_ctx *c = xcalloc(1, sizeof *c);
	c->rq = rq;
	c->d = d;
	api_hold(rq);
	create_next(c);
}

/* ---------------------------------------------------------------- read, list, delete */

/* A list element {id, hash}. */
static json_t *list_item(const redisReply *e)
{
	return raffle_json(e->element[1]);
}

static void raffle_delete(struct api_req *rq, const char *id, redis_cb cb, void *arg)
{
	store_raffle_delete(((struct app *)api_app(rq))->st, id, cb, arg);
}

static void raffle_deleted(struct api_req *rq, const redisReply *rep)
{
	(void)rep;
	log_info("raffle", "raffle=%s deleted by=%s", log_q(api_param(rq, "id")),
	         api_token_name(rq));
}

/* {'conflict', state, entries}: kept for audit once entered or drawn. */
static int raffle_refused(struct api_req *rq, const char *st, const redisReply *rep)
{
	if (strcmp(st, "conflict") != 0)
		return 0;
	const char *state = api_crud_str(rep, 1);
	const char *n = api_crud_str(rep, 2);
	if (state && strcmp(state, "open") != 0)
		api_reply_error(rq, 409, "conflict", NULL, "the raffle is %s: it is kept for audit",
		                state);
	else
		api_reply_error(rq, 409, "conflict", NULL,
		                "the raffle has %s entries: it is kept for audit", n ? n : "some");
	return 1;
}

static const struct api_crud raffles = {.noun = "raffle",
                                        .id_ok = raffle_id_valid,
                                        .list_default = RAFFLE_LIST_DEFAULT,
                                        .list_max = RAFFLE_LIST_MAX,
                                        .read = store_raffle_get,
                                        .reply = reply_raffle,
                                        .list = store_raffle_list,
                                        .list_fields = 2,
                                        .item = list_item,
                                        .del = raffle_delete,
                                        .deleted = raffle_deleted,
                                        .refused = raffle_refused};

static void h_get(struct api_req *rq)
{
	api_crud_get(rq, &raffles);
}

static void h_list(struct api_req *rq)
{
	api_crud_list(rq, &raffles);
}

static void h_delete(struct api_req *rq)
{
	api_crud_delete(rq, &raffles);
}

/* ---------------------------------------------------------------- entries */

static void on_entered(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (api_reply_redis_failure(rq, rep)) {
		api_release(rq);
		return;
	}
	const char *st = api_crud_str(rep, 0);
	const char *d = api_crud_str(rep, 1);
	const char *x = api_crud_str(rep, 2);
	if (!x)
		x = "";
	if (st && (strcmp(st, "ok") == 0 || strcmp(st, "dup") == 0) && d) {
		json_t *a = json_loads(d, 0, NULL);
		if (!json_is_object(a)) {
			json_decref(a);
			api_reply_error(rq, 500, "internal", NULL,
			                "the stored entry is unreadable");
		} else {
			int dup = strcmp(st, "dup") == 0;
			json_t *at = json_object_get(a, "at");
			if (json_is_integer(at)) {
				char t[40];
				fmt_time(json_integer_value(at), t, sizeof t);
				json_object_set_new(a, "at", json_string(t));
			}
			json_object_set_new(a, "replayed", json_boolean(dup));
			if (!dup)
				log_info("raffle", "raffle=%s entry=%s contact=%s method=%s",
				         log_q(api_param(rq, "id")),
				         json_string_value(json_object_get(a, "entry")),
				         json_string_value(json_object_get(a, "contact_id")),
				         json_string_value(json_object_get(a, "method")));
			api_reply_json(rq, dup ? 200 : 201, a);
		}
	} else if (!st || strcmp(st, "not_found") == 0 || !d) {
		api_reply_error(rq, 404, "not_found", NULL, "no such raffle");
	} else if (strcmp(d, "method") == 0) {
		api_reply_error(rq, 400, "invalid_field", "method",
		                "this raffle takes no entries by this method");
	} else if (strcmp(d, "closed") == 0) {
		api_reply_error(rq, 409, "conflict", NULL, "the raffle is %s: entries are closed",
		                x);
	} else if (strcmp(d, "no_contact") == 0) {
		api_reply_error(rq, 404, "not_found", "contact_id", "no such contact");
	} else if (strcmp(d, "not_started") == 0) {
		char t[40];
		int64_t ms = 0;
		parse_i64(x, 0, INT64_MAX, &ms);
		fmt_time(ms, t, sizeof t);
		api_reply_error(rq, 409, "conflict", "starts_at", "entries open at %s", t);
	} else if (strcmp(d, "ended") == 0) {
		char t[40];
		int64_t ms = 0;
		parse_i64(x, 0, INT64_MAX, &ms);
		fmt_time(ms, t, sizeof t);
		api_reply_error(rq, 409, "conflict", "ends_at", "entries closed at %s", t);
	} else if (strcmp(d, "code_used") == 0) {
		api_reply_error(rq, 409, "conflict", "code", "this code was already used");
	} else if (strcmp(d, "code_invalid") == 0) {
		api_reply_error(rq, 400, "invalid_field", "code", "not a code of this raffle");
	} else if (strcmp(d, "currency") == 0) {
		api_reply_error(rq, 400, "invalid_field", "currency", "this raffle takes %s", x);
	} else if (strcmp(d, "below_minimum") == 0) {
		int64_t need = 0;
		char money[EVENTS_MONEY_TEXT];
		parse_i64(x, 0, INT64_MAX, &need);
		events_money_format(need, money);
		api_reply_error(rq, 400, "invalid_field", "amount", "one entry needs at least %s",
		                money);
	} else if (strcmp(d, "max_entries") == 0) {
		api_reply_error(rq, 409, "conflict", "contact_id",
		                "the contact has %s entries, the most this raffle allows", x);
	} else if (strcmp(d, "insufficient_points") == 0) {
		api_reply_error(rq, 409, "insufficient_points", "points",
		                "the balance is %s points", x);
	} else {
		api_reply_error(rq, 409, "conflict", NULL, "entry refused: %s", d);
	}
	api_release(rq);
}

static int body_text(struct api_req *rq, const json_t *o, const char *key, size_t max,
                     const char **out)
{
	const json_t *v = json_object_get(o, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v) ||
	    text_has_ctl(json_string_value(v), 0)) {
		api_reply_error(rq, 400, "invalid_field", key, "1..%zu bytes of text", max);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

static void h_enter(struct api_req *rq)
{
	struct app *app = api_app(rq);
	if (!api_crud_param(rq, &raffles))
		return;
	json_t *o = api_json(rq);
	static const char *const known[] = {"contact_id", "method", "code",    "ref",
	                                    "count",      "amount", "currency"};
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		int ok = 0;
		for (size_t i = 0; i < ARRAY_SIZE(known) && !ok; i++)
			ok = strcmp(k, known[i]) == 0;
		if (!ok) {
			char field[64];
			snprintf(field, sizeof field, "%.60s", k);
			api_reply_error(rq, 400, "invalid_field", field, "unknown field");
			return;
		}
	}
	const char *cid, *method, *code, *ref, *currency;
	if (body_text(rq, o, "contact_id", 64, &cid) < 0 ||
	    body_text(rq, o, "method", 16, &method) < 0 ||
	    body_text(rq, o, "code", 64, &code) < 0 ||
	    body_text(rq, o, "ref", RAFFLE_REF_MAX, &ref) < 0 ||
	    body_text(rq, o, "currency", 3, &currency) < 0)
		return;
	if (!cid) {
		api_reply_error(rq, 400, "missing_field", "contact_id", "required");
		return;
	}
	if (!method) {
		api_reply_error(rq, 400, "missing_field", "method", "required");
		return;
	}
	int m = raffle_method_parse(method);
	if (m < 0) {
		api_reply_error(rq, 400, "invalid_field", "method",
		                "keyword, code, purchase or points");
		return;
	}
	if (!id_valid(cid)) {
		api_reply_error(rq, 404, "not_found", "contact_id", "no such contact");
		return;
	}
	char norm[RAFFLE_CODE_MAX * 4 + 1] = "";
	if (m == RAFFLE_CODE) {
		if (!code) {
			api_reply_error(rq, 400, "missing_field", "code",
			                "required with method code");
			return;
		}
		if (raffle_code_normalize(code, norm, sizeof norm) < 0) {
			api_reply_error(rq, 400, "invalid_field", "code",
			                "not a code of this raffle");
			return;
		}
	} else if (code) {
		api_reply_error(rq, 400, "invalid_field", "code", "only with method code");
		return;
	}
	int64_t count = 1;
	json_t *cv = json_object_get(o, "count");
	if (cv && !json_is_null(cv)) {
		if (m != RAFFLE_POINTS) {
			api_reply_error(rq, 400, "invalid_field", "count",
			                "only with method points");
			return;
		}
		if (!json_is_integer(cv) || json_integer_value(cv) < 1 ||
		    json_integer_value(cv) > RAFFLE_ENTRIES_MAX) {
			api_reply_error(rq, 400, "invalid_field", "count",
			                "an integer from 1 to 1000");
			return;
		}
		count = json_integer_value(cv);
	}
	int64_t amount_c = -1;
	json_t *av = json_object_get(o, "amount");
	if (m == RAFFLE_PURCHASE) {
		const char *why = NULL;
		if (!av || json_is_null(av)) {
			api_reply_error(rq, 400, "missing_field", "amount",
			                "required with method purchase");
			return;
		}
		if (events_money_parse(av, &amount_c, &why) < 0) {
			api_reply_error(rq, 400, "invalid_field", "amount", "%s", why);
			return;
		}
		if (!currency) {
			api_reply_error(rq, 400, "missing_field", "currency",
			                "required with method purchase");
			return;
		}
		if (!events_currency_valid(currency)) {
			api_reply_error(rq, 400, "invalid_field", "currency",
			                "an ISO 4217 code such as IRR");
			return;
		}
	} else if ((av && !json_is_null(av)) || currency) {
		api_reply_error(rq, 400, "invalid_field",
		                av && !json_is_null(av) ? "amount" : "currency",
		                "only with method purchase");
		return;
	}
	if (!api_store_ready(rq))
		return;
	struct store_club_rules rules;
	char tiers[EVENTS_TIERS_TEXT];
	events_rules(app->cfg, &rules, tiers);
	struct store_raffle_entry e = {.raffle_id = api_param(rq, "id"),
	                               .contact_id = cid,
	                               .method = raffle_method_name((enum raffle_method)m),
	                               .ref = ref ? ref : "",
	                               .code = norm,
	                               .count = count,
	                               .amount_c = amount_c,
	                               .currency = currency ? currency : "",
	                               .by = api_token_name(rq),
	                               .now = now_ms()};
	api_hold(rq);
	store_raffle_enter(app->st, &rules, &e, on_entered, rq);
}

static void on_entries(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (api_reply_redis_failure(rq, rep)) {
		api_release(rq);
		return;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
	    rep->element[1]->type != REDIS_REPLY_ARRAY) {
		api_reply_error(rq, 404, "not_found", NULL, "no such raffle");
		api_release(rq);
		return;
	}
	const redisReply *page = rep->element[1];
	json_t *items = json_array();
	const char *last = NULL;
	for (size_t i = 0; i < page->elements; i++) {
		const redisReply *e = page->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
			continue;
		const redisReply *f = e->element[1];
		last = reply_str(e->element[0]);
		json_t *o = json_object();
		json_object_set_new(o, "id", json_string(last ? last : ""));
		json_object_set_new(o, "contact_id",
		                    json_string(hash_get(f, "c") ? hash_get(f, "c") : ""));
		json_object_set_new(o, "method",
		                    json_string(hash_get(f, "m") ? hash_get(f, "m") : ""));
		const char *ref = hash_get(f, "r");
		json_object_set_new(o, "ref", ref && *ref ? json_string(ref) : json_null());
		const char *code = hash_get(f, "code");
		json_object_set_new(o, "code", code ? json_string(code) : json_null());
		json_object_set_new(o, "entries", json_integer(hash_get_i64(f, "n", 1)));
		json_object_set_new(o, "weight", json_integer(hash_get_i64(f, "w", 1)));
		api_crud_time(o, "at", hash_get(f, "at"));
		json_array_append_new(items, o);
	}
	int64_t limit = RAFFLE_ENTRIES_DEFAULT;
	const char *l = api_query(rq, "limit");
	if (l)
		parse_i64(l, 1, RAFFLE_ENTRIES_PAGE, &limit);
	int full = last && (int64_t)page->elements >= limit;
	api_reply_json(rq, 200,
	               json_pack("{s:o, s:o}", "items", items, "next_cursor",
	                         full ? json_string(last) : json_null()));
	api_release(rq);
}

static void h_entries(struct api_req *rq)
{
	if (!api_crud_param(rq, &raffles))
		return;
	int64_t limit;
	const char *cursor;
	if (!api_crud_list_args(rq, RAFFLE_ENTRIES_DEFAULT, RAFFLE_ENTRIES_PAGE,
	                        store_timeline_cursor_valid, &limit, &cursor) ||
	    !api_store_ready(rq))
		return;
	api_hold(rq);
	store_raffle_entries(((struct app *)api_app(rq))->st, api_param(rq, "id"), cursor,
	                     (int)limit, on_entries, rq);
}

/* ---------------------------------------------------------------- the draw record */

/* The record (rfd:{id} hash) in the API form; notifications may be NULL
 * (then the stored ones).  New reference, NULL when unreadable. */
static json_t *record_json(const char *id, const redisReply *rec, json_t *notifications)
{
	const char *seed = hash_get(rec, "seed"), *commit = hash_get(rec, "commit");
	const char *digest = hash_get(rec, "digest"), *entries = hash_get(rec, "entries");
	const char *wtxt = hash_get(rec, "winners"), *ntxt = hash_get(rec, "notifications");
	json_t *winners = wtxt ? json_loads(wtxt, 0, NULL) : NULL;
	if (!seed || !commit || !digest || !entries || !json_is_array(winners)) {
		json_decref(winners);
		return NULL;
	}
	json_t *notes =
	    notifications ? json_incref(notifications) : (ntxt ? json_loads(ntxt, 0, NULL) : NULL);
	if (!json_is_array(notes)) {
		json_decref(notes);
		notes = json_array();
	}
	json_t *o = json_object();
	json_object_set_new(o, "raffle_id", json_string(id));
	json_object_set_new(
	    o, "algorithm",
	    json_string(hash_get(rec, "algorithm") ? hash_get(rec, "algorithm") : DRAW_CONTEXT));
	api_crud_time(o, "drawn_at", hash_get(rec, "at"));
	json_object_set_new(o, "seed", json_string(seed));
	json_object_set_new(o, "commit", json_string(commit));
	json_object_set_new(o, "entries_digest", json_string(digest));
	json_object_set_new(o, "entries_count", json_integer(hash_get_i64(rec, "n", 0)));
	json_object_set_new(o, "total_weight", json_integer(hash_get_i64(rec, "total", 0)));
	json_object_set_new(o, "winners_count", json_integer(hash_get_i64(rec, "k", 0)));
	json_object_set(o, "winners", winners);
	json_object_set_new(o, "entries", json_string(entries));
	json_object_set_new(o, "notifications", notes);
	/* the command that re-runs it: ids are visible ASCII, safe to quote */
	struct buf b;
	buf_init(&b, 0);
	buf_printf(&b, "clubd-draw-verify --seed %s --commit %s --winners %lld", seed, commit,
	           (long long)hash_get_i64(rec, "k", 0));
	size_t i;
	json_t *w;
	json_array_foreach(winners, i, w)
	{
		buf_printf(&b, "%s%s", i ? "," : " --expect ", json_string_value(w));
	}
	buf_puts(&b, " ENTRIES_FILE");
	json_object_set_new(o, "verify", json_string(b.p));
	buf_free(&b);
	json_decref(winners);
	return o;
}

static void on_draw_record(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (api_reply_redis_failure(rq, rep)) {
		api_release(rq);
		return;
	}
	const char *state = rep->type == REDIS_REPLY_ARRAY && rep->elements == 3
	                        ? reply_str(rep->element[0])
	                        : NULL;
	if (!state || !*state) {
		api_reply_error(rq, 404, "not_found", NULL, "no such raffle");
	} else if (strcmp(state, "drawn") != 0) {
		api_reply_error(rq, 404, "not_found", NULL, "the raffle has not been drawn yet");
	} else {
		const char *fmt = api_query(rq, "format");
		if (fmt && strcmp(fmt, "entries") == 0) {
			const char *t = hash_get(rep->element[2], "entries");
			api_reply_raw(rq, 200, "text/plain; charset=utf-8", t ? t : "",
			              t ? strlen(t) : 0);
		} else {
			json_t *o = record_json(api_param(rq, "id"), rep->element[2], NULL);
			if (o)
				api_reply_json(rq, 200, o);
			else
				api_reply_error(rq, 500, "internal", NULL,
				                "the draw record is unreadable");
		}
	}
	api_release(rq);
}

static void h_draw_get(struct api_req *rq)
{
	if (!api_crud_param(rq, &raffles))
		return;
	const char *fmt = api_query(rq, "format");
	if (fmt && strcmp(fmt, "entries") != 0 && strcmp(fmt, "json") != 0) {
		api_reply_error(rq, 400, "invalid_field", "format", "json or entries");
		return;
	}
	if (!api_store_ready(rq))
		return;
	api_hold(rq);
	store_raffle_draw_get(((struct app *)api_app(rq))->st, api_param(rq, "id"), on_draw_record,
	                      rq);
}

/* ---------------------------------------------------------------- the draw */

struct draw_ctx {
	struct api_req *rq;
	struct app *app;
	char id[RAFFLE_ID_MAX + 1];
	char owner[200];
	int renotify;
	json_t *notes; /* the winners' message results */
	int pending, failed;
};

static void draw_done(struct draw_ctx *c)
{
	json_decref(c->notes);
	api_release(c->rq);
	free(c);
}

static void on_draw_reread(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct draw_ctx *c = arg;
	struct api_req *rq = c->rq;
	if (!api_reply_redis_failure(rq, rep)) {
		json_t *o = rep->type == REDIS_REPLY_ARRAY && rep->elements == 3
		                ? record_json(c->id, rep->element[2], c->notes)
		                : NULL;
		if (o)
			api_reply_json(rq, 200, o);
		else
			api_reply_error(rq, 500, "internal", NULL, "the draw record is unreadable");
	}
	draw_done(c);
}

static void on_notified(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct draw_ctx *c = arg;
	if (!rep || rep->type != REDIS_REPLY_ARRAY)
		log_warnx("raffle", "raffle=%s notifications not recorded", log_q(c->id));
	if (c->renotify) {
		api_reply_error(c->rq, 409, "conflict", NULL,
		                "the raffle was already drawn; its pending winner messages were "
		                "queued again");
		draw_done(c);
		return;
	}
	store_raffle_draw_get(c->app->st, c->id, on_draw_reread, c);
}

static void notes_finished(struct draw_ctx *c)
{
	if (c->failed) {
		/* the draw stands; the messages are queued again by the next POST
		 * .../draw (their keys make that safe) */
		api_reply_error(c->rq, 503, "unavailable", NULL,
		                "the raffle was drawn but not every winner message was confirmed; "
		                "POST the draw again to finish them");
		draw_done(c);
		return;
	}
	char *txt = json_dumps(c->notes, JSON_COMPACT);
	store_raffle_draw_notified(c->app->st, c->id, c->owner, now_ms(), txt ? txt : "[]",
	                           on_notified, c);
	free(txt);
}

static void on_note(void *arg, json_t *result)
{
	struct draw_ctx *c = arg;
	if (result)
		json_array_append_new(c->notes, result);
	else
		c->failed = 1;
	if (--c->pending == 0)
		notes_finished(c);
}

/* reply: {status, template JSON, raffle JSON, {cid, HGETALL}...} */
static void notify_winners(struct draw_ctx *c, const redisReply *rep)
{
	const char *tpl = rep->elements > 1 ? reply_str(rep->element[1]) : NULL;
	const char *rjson = rep->elements > 2 ? reply_str(rep->element[2]) : NULL;
	json_t *raffle = rjson ? json_loads(rjson, 0, NULL) : NULL;
	const char *tpl_id = json_string_value(json_object_get(raffle, "notify_template"));
	c->notes = json_array();
	c->pending = 1; /* held while issuing */
	for (size_t i = 3; i < rep->elements; i++) {
		const redisReply *w = rep->element[i];
		const char *cid = w->type == REDIS_REPLY_ARRAY && w->elements == 2
		                      ? reply_str(w->element[0])
		                      : NULL;
		if (!cid)
			continue;
		json_t *ev = json_pack("{s:s, s:s, s:I}", "type", "raffle_win", "raffle_id", c->id,
		                       "rank", (json_int_t)(i - 2));
		static const char *const keep[] = {"name", "prize", "ends_at", "winners"};
		for (size_t k = 0; k < ARRAY_SIZE(keep); k++)
			json_object_set(ev, keep[k], json_object_get(raffle, keep[k]));
		char *idem = xasprintf("raffle:%s:win:%s", c->id, cid);
		struct raffle_msg m = {.raffle_id = c->id,
		                       .contact_id = cid,
		                       .contact = w->element[1],
		                       .tpl_id = tpl_id,
		                       .tpl_json = tpl,
		                       .event = ev,
		                       .category = "lottery",
		                       .kind = -1,
		                       .idem = idem,
		                       .now = now_ms()};
		json_t *res = raffle_msg_queue(c->app, &m, on_note, c);
		if (res)
			json_array_append_new(c->notes, res);
		else
			c->pending++;
		free(idem);
		json_decref(ev);
	}
	json_decref(raffle);
	if (--c->pending == 0)
		notes_finished(c);
}

static void on_finished(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct draw_ctx *c = arg;
	if (api_reply_redis_failure(c->rq, rep)) {
		draw_done(c);
		return;
	}
	const char *st = api_crud_str(rep, 0);
	if (!st || strcmp(st, "ok") != 0) {
		api_reply_error(c->rq, 409, "conflict", NULL,
		                "another instance took the draw over; read GET .../draw");
		draw_done(c);
		return;
	}
	log_notice("raffle", "raffle=%s drawn winners=%zu by=%s", log_q(c->id),
	           rep->elements > 3 ? rep->elements - 3 : 0, api_token_name(c->rq));
	notify_winners(c, rep);
}

/* lock's 'ok': {'ok', seed, commit, winners, {contact, weight, ...}} */
static void run_draw(struct draw_ctx *c, const redisReply *rep)
{
	const char *seed_hex = reply_str(rep->element[1]);
	const char *commit = reply_str(rep->element[2]);
	const char *win = reply_str(rep->element[3]);
	const redisReply *w = rep->element[4];
	unsigned char seed[DRAW_SEED_LEN];
	int64_t k = 0;
	if (!seed_hex || !commit || !win || w->type != REDIS_REPLY_ARRAY ||
	    draw_parse_hex32(seed_hex, seed) < 0 || !draw_commit_matches(seed, commit) ||
	    parse_i64(win, 0, RAFFLE_WINNERS_MAX, &k) < 0) {
		log_err("raffle", "raffle=%s stored seed, commit or winners unusable",
		        log_q(c->id));
		api_reply_error(c->rq, 500, "internal", NULL, "the stored raffle is unusable");
		draw_done(c);
		return;
	}
	size_t n = w->elements / 2;
	const char **ids = xcalloc(n ? n : 1, sizeof *ids);
	const char **weights = xcalloc(n ? n : 1, sizeof *weights);
	for (size_t i = 0; i < n; i++) {
		ids[i] = reply_str(w->element[2 * i]);
		weights[i] = reply_str(w->element[2 * i + 1]);
	}
	struct raffle_draw d;
	int rc = raffle_draw_run(seed, ids, weights, n, k, &d);
	explicit_bzero(seed, sizeof seed);
	free(ids);
	free(weights);
	if (rc < 0) {
		log_err("raffle", "raffle=%s draw refused the stored entries rc=%d", log_q(c->id),
		        rc);
		api_reply_error(c->rq, 500, "internal", NULL, "the stored entries are unusable");
		draw_done(c);
		return;
	}
	json_t *wj = json_array();
	for (size_t i = 0; i < d.k; i++)
		json_array_append_new(wj, json_string(d.winners[i]));
	char *wtxt = json_dumps(wj, JSON_COMPACT);
	json_decref(wj);
	store_raffle_draw_finish(c->app->st, c->id, c->owner, now_ms(), RAFFLE_LEASE_MS, &d, wtxt,
	                         c->app->cfg->contacts_timeline_max, on_finished, c);
	free(wtxt);
	raffle_draw_free(&d);
}

static void on_locked(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct draw_ctx *c = arg;
	struct api_req *rq = c->rq;
	if (api_reply_redis_failure(rq, rep)) {
		draw_done(c);
		return;
	}
	const char *st = api_crud_str(rep, 0);
	const char *x = st && rep->elements > 1 ? reply_str(rep->element[1]) : NULL;
	if (st && strcmp(st, "ok") == 0 && rep->elements == 5) {
		run_draw(c, rep);
		return;
	}
	if (st && strcmp(st, "renotify") == 0) {
		c->renotify = 1;
		log_notice("raffle", "raffle=%s winner messages queued again", log_q(c->id));
		notify_winners(c, rep);
		return;
	}
	if (!st || strcmp(st, "not_found") == 0) {
		api_reply_error(rq, 404, "not_found", NULL, "no such raffle");
	} else if (strcmp(st, "early") == 0) {
		char t[40];
		int64_t ms = 0;
		if (x)
			parse_i64(x, 0, INT64_MAX, &ms);
		fmt_time(ms, t, sizeof t);
		api_reply_error(rq, 409, "conflict", "ends_at",
		                "entries are open until %s; pass force=true to draw now", t);
	} else if (strcmp(st, "busy") == 0) {
		api_reply_error(rq, 409, "conflict", NULL, "a draw of this raffle is in progress");
	} else {
		api_reply_error(rq, 409, "conflict", NULL, "the raffle was already drawn");
	}
	draw_done(c);
}

static void h_draw(struct api_req *rq)
{
	struct app *app = api_app(rq);
	if (!api_crud_param(rq, &raffles))
		return;
	const char *f = api_query(rq, "force");
	int force = 0;
	if (f) {
		if (strcmp(f, "true") == 0 || strcmp(f, "1") == 0) {
			force = 1;
		} else if (strcmp(f, "false") != 0 && strcmp(f, "0") != 0) {
			api_reply_error(rq, 400, "invalid_field", "force", "true or false");
			return;
		}
	}
	if (!api_store_ready(rq))
		return;
	struct draw_ctx *c = xcalloc(1, sizeof *c);
	c->rq = rq;
	c->app = app;
	snprintf(c->id, sizeof c->id, "%s", api_param(rq, "id"));
	unsigned char nonce[8];
	char hex[17];
	random_bytes(nonce, sizeof nonce);
	hex_encode(nonce, sizeof nonce, hex);
	snprintf(c->owner, sizeof c->owner, "%.160s:%s", app->consumer, hex);
	api_hold(rq);
	store_raffle_draw_lock(app->st, c->id, c->owner, now_ms(), RAFFLE_LEASE_MS, force,
	                       on_locked, c);
}

const struct api_route api_raffle_routes[] = {
    {"POST", "/v1/raffles", ROLE_MARKETER, API_BODY_JSON, h_create, NULL, NULL},
    {"GET", "/v1/raffles", ROLE_VIEWER, API_BODY_NONE, h_list, NULL, NULL},
    {"GET", "/v1/raffles/{id}", ROLE_VIEWER, API_BODY_NONE, h_get, NULL, NULL},
    {"DELETE", "/v1/raffles/{id}", ROLE_ADMIN, API_BODY_NONE, h_delete, NULL, NULL},
    {"POST", "/v1/raffles/{id}/entries", ROLE_MARKETER, API_BODY_JSON, h_enter, NULL, NULL},
    {"GET", "/v1/raffles/{id}/entries", ROLE_VIEWER, API_BODY_NONE, h_entries, NULL, NULL},
    {"POST", "/v1/raffles/{id}/draw", ROLE_ADMIN, API_BODY_NONE, h_draw, NULL, NULL},
    {"GET", "/v1/raffles/{id}/draw", ROLE_VIEWER, API_BODY_NONE, h_draw_get, NULL, NULL},
};
const size_t api_raffle_nroutes = ARRAY_SIZE(api_raffle_routes);
