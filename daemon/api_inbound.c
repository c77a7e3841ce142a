/*
 * api_inbound.c - inbound SMS from providers and the contact timeline:
 *   GET  /v1/inbound/kannel?k=SIG&from=%p&to=%P&text=%a&ts=%t&id=%I
 *        Kannel's sms-service get-url.  k = callback_sign("inbound",
 *        "kannel"): static, because get-url is static configuration, so
 *        the URL with k is a secret.  Answers 200 "OK".
 *   POST /v1/inbound/sms  a generic signed JSON webhook: X-Clubd-Timestamp
 *        (Unix seconds, at most 5 minutes off) and X-Clubd-Signature:
 *        sha256=hex(HMAC-SHA256(callback secret, timestamp "." body)); body
 *        {"from","to","text","id","received_at"}.  Answers
 *        {"action","contact_id","duplicate"}.
 *   GET  /v1/contacts/{id}/timeline  newest first, limit/cursor.
 * Both transports normalise to struct inbound (inbound.c decides the
 * action) and record it with lua/inbound.lua: dedupe on provider + id,
 * audit stream, contact by reverse index or a new lead, consent change or
 * timeline entry.  Knows no key names.  Never logs texts or numbers.
 *
 * Limits: webhook bodies INBOUND_BODY_MAX; text 4 KiB; ids 128 bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "callback.h"
#include "inbound.h"
#include "log.h"
#include "store_timeline.h"
#include "util.h"

#define INBOUND_BODY_MAX       (32 * 1024)
#define INBOUND_SKEW_S         300                      /* webhook timestamp tolerance */
#define INBOUND_DEDUPE_TTL_S   (7 * 24 * 3600)          /* provider ids remembered */
#define INBOUND_AUDIT_MAX      100000                   /* raw inbound audit entries */
#define INBOUND_ATTRIBUTION_MS (7LL * 24 * 3600 * 1000) /* reply -> last message */
#define TIMELINE_LIMIT_MAX     500

struct inb_req {
	struct buf body; /* webhook only */
	int json;        /* answer with JSON (webhook) rather than "OK" (Kannel) */
};

static void inb_free(void *p)
{
	struct inb_req *ir = p;
	buf_free(&ir->body);
	free(ir);
}

static struct inb_req *inb_attach(struct api_req *rq, int json)
{
	struct inb_req *ir = xcalloc(1, sizeof *ir);
	buf_init(&ir->body, INBOUND_BODY_MAX);
	ir->json = json;
	api_set_data(rq, ir, inb_free);
	return ir;
}

static void on_recorded(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	struct inb_req *ir = api_data(rq);
	if (!api_reply_redis_failure(rq, rep)) {
		const char *st = NULL, *cid = NULL, *action = NULL;
		if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 3) {
			st = reply_str(rep->element[0]);
			cid = reply_str(rep->element[1]);
			action = reply_str(rep->element[2]);
		}
		if (!st || !cid || !action) {
			log_err("inbound", "unexpected reply from the inbound script");
			api_reply_error(rq, 500, "internal", NULL, "unexpected store reply");
		} else {
			int dup = strcmp(st, "dup") == 0;
			log_info("inbound", "contact=%s action=%s duplicate=%d", cid, action, dup);
			if (ir && ir->json)
				api_reply_json(rq, 200,
				               json_pack("{s:s, s:s, s:b}", "action", action,
				                         "contact_id", cid, "duplicate", dup));
			else
				api_reply_raw(rq, 200, "text/plain; charset=utf-8", "OK", 2);
		}
	}
	api_release(rq);
}

/* Record a normalised inbound message; answers the request. */
static void record(struct api_req *rq, const struct inbound *in)
{
	struct app *app = api_app(rq);
	if (!api_store_ready(rq))
		return;
	int64_t now = now_ms();
	char cid[ID_LEN + 1];
	id_new(cid, now);
	struct argv a;
	argv_init(&a);
	argv_addll(&a, now);
	argv_add(&a, in->provider);
	argv_add(&a, in->provider_id);
	argv_addll(&a, INBOUND_DEDUPE_TTL_S);
	argv_add(&a, in->channel);
	argv_add(&a, in->from);
	argv_add(&a, in->to);
	argv_add(&a, in->text);
	argv_addll(&a, in->received_at);
	argv_add(&a, inbound_action_name(in->action));
	argv_add(&a, cid);
	argv_addll(&a, app->cfg->contacts_timeline_max);
	argv_addll(&a, INBOUND_AUDIT_MAX);
	argv_addll(&a, INBOUND_ATTRIBUTION_MS);
	api_hold(rq);
	store_eval(app->st, SCRIPT_INBOUND, &a, on_recorded, rq);
	argv_free(&a);
}

/* Kannel get-url ---------------------------------------------------------- */

static void h_kannel(struct api_req *rq)
{
	struct app *app = api_app(rq);
	if (!callback_verify("inbound", "kannel", api_query(rq, "k"))) {
		log_warnx("inbound", "provider=kannel bad or missing signature");
		api_reply_error(rq, 403, "forbidden", "k", "bad callback signature");
		return;
	}
	const char *text = api_query(rq, "text");
	const char *ts = api_query(rq, "ts");
	int64_t ignored;
	if (ts && inbound_parse_time(ts, &ignored) < 0)
		ts = NULL; /* Kannel's clock format is not ours to refuse */
	struct inbound *in = xmalloc(sizeof *in);
	const char *field = NULL, *why = NULL;
	if (inbound_sms_init(in, "kannel", api_query(rq, "id"), api_query(rq, "from"),
	                     api_query(rq, "to"), text, text ? strlen(text) : 0, ts, now_ms(),
	                     app->cfg->contacts_default_country, &field, &why) < 0) {
		api_reply_error(rq, 400, "invalid_field", field, "%s", why);
	} else {
		inb_attach(rq, 0);
		record(rq, in);
	}
	free(in);
}

/* Signed JSON webhook ------------------------------------------------------ */

static void h_sms(struct api_req *rq)
{
	inb_attach(rq, 1);
}

static long sms_chunk(struct api_req *rq, const char *data, size_t len)
{
	struct inb_req *ir = api_data(rq);
	if (buf_append(&ir->body, data, len) < 0) {
		api_reply_error(rq, 413, "body_too_large", NULL, "bodies are at most 32 KiB");
		return -1;
	}
	return (long)len;
}

/* X-Clubd-Timestamp and X-Clubd-Signature over the raw body; 1 ok. */
static int webhook_signature_ok(struct api_req *rq, const char *body, size_t n)
{
	const char *ts = api_header(rq, "X-Clubd-Timestamp");
	const char *sig = api_header(rq, "X-Clubd-Signature");
	int64_t t, now = now_ms() / 1000;
	if (!ts || parse_i64(ts, 0, INT64_C(253402300799), &t) < 0 || t < now - INBOUND_SKEW_S ||
	    t > now + INBOUND_SKEW_S) {
		api_reply_error(rq, 403, "forbidden", "X-Clubd-Timestamp",
		                "missing, malformed or stale timestamp");
		return 0;
	}
	struct buf m;
	buf_init(&m, 0);
	buf_puts(&m, ts);
	buf_append(&m, ".", 1);
	buf_append(&m, body, n);
	char want[65];
	int ok = sig && strlen(sig) == 7 + 64 && strncmp(sig, "sha256=", 7) == 0 &&
	         callback_hmac_hex(m.p, m.len, want) == 0 && ct_equal(want, sig + 7, 64);
	buf_free(&m);
	if (!ok)
		api_reply_error(rq, 403, "forbidden", "X-Clubd-Signature", "bad webhook signature");
	return ok;
}

static const char *opt_str(json_t *o, const char *k, size_t *len, int *bad)
{
	json_t *v = json_object_get(o, k);
	if (!v || json_is_null(v))
		return NULL;
	if (!json_is_string(v)) {
		*bad = 1;
		return NULL;
	}
	if (len)
		*len = json_string_length(v);
	return json_string_value(v);
}

static void sms_end(struct api_req *rq)
{
	struct app *app = api_app(rq);
	struct inb_req *ir = api_data(rq);
	const char *body = ir->body.p ? ir->body.p : "";
	if (!webhook_signature_ok(rq, body, ir->body.len)) {
		log_warnx("inbound", "provider=webhook bad signature or timestamp");
		return;
	}
	json_error_t err;
	json_t *o = json_loadb(body, ir->body.len, JSON_REJECT_DUPLICATES, &err);
	if (!o || !json_is_object(o)) {
		json_decref(o);
		api_reply_error(rq, 400, "invalid_json", NULL, "the body must be a JSON object");
		return;
	}
	static const char *const names[] = {"from", "to", "text", "id", "received_at"};
	const char *v[5];
	size_t text_len = 0;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		int bad = 0;
		v[i] = opt_str(o, names[i], i == 2 ? &text_len : NULL, &bad);
		if (bad) {
			api_reply_error(rq, 400, "invalid_field", names[i], "must be a string");
			json_decref(o);
			return;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (!v[i] && i != 1 && i != 4) {
			api_reply_error(rq, 400, "missing_field", names[i], "%s is required",
			                names[i]);
			json_decref(o);
			return;
		}
	}
	struct inbound *in = xmalloc(sizeof *in);
	const char *field = NULL, *why = NULL;
	if (inbound_sms_init(in, "webhook", v[3], v[0], v[1], v[2], text_len, v[4], now_ms(),
	                     app->cfg->contacts_default_country, &field, &why) < 0)
		api_reply_error(rq, 400, "invalid_field", field, "%s", why);
	else
		record(rq, in);
	free(in);
	json_decref(o);
}

/* Timeline ----------------------------------------------------------------- */

static void on_page(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		int64_t limit = 50;
		const char *l = api_query(rq, "limit");
		if (l)
			parse_i64(l, 1, TIMELINE_LIMIT_MAX, &limit);
		json_t *items = json_array();
		const char *last = NULL;
		size_t n = rep->type == REDIS_REPLY_ARRAY ? rep->elements : 0;
		for (size_t i = 0; i < n; i++) {
			json_t *e = store_timeline_entry_json(rep->element[i]);
			if (e)
				json_array_append_new(items, e);
			const redisReply *x = rep->element[i];
			if (x->type == REDIS_REPLY_ARRAY && x->elements > 0)
				last = reply_str(x->element[0]);
		}
		json_t *o = json_object();
		json_object_set_new(o, "items", items);
		json_object_set_new(o, "next_cursor",
		                    (int64_t)n == limit && last ? json_string(last) : json_null());
		api_reply_json(rq, 200, o);
	}
	api_release(rq);
}

static void on_exists(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	struct app *app = api_app(rq);
	if (!api_reply_redis_failure(rq, rep)) {
		if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 1) {
			int64_t limit = 50;
			const char *l = api_query(rq, "limit");
			if (l)
				parse_i64(l, 1, TIMELINE_LIMIT_MAX, &limit);
			store_timeline_page(app->st, api_param(rq, "id"), api_query(rq, "cursor"),
			                    (int)limit, on_page, rq);
			return; /* keeps the hold */
		}
		api_reply_error(rq, 404, "not_found", NULL, "no such contact");
	}
	api_release(rq);
}

static void h_timeline(struct api_req *rq)
{
	struct app *app = api_app(rq);
	const char *id = api_param(rq, "id");
	if (!id_valid(id)) {
		api_reply_error(rq, 404, "not_found", NULL, "no such contact");
		return;
	}
	int64_t limit;
	const char *l = api_query(rq, "limit");
	if (l && parse_i64(l, 1, TIMELINE_LIMIT_MAX, &limit) < 0) {
		api_reply_error(rq, 400, "invalid_field", "limit", "limit is 1..500");
		return;
	}
	const char *cursor = api_query(rq, "cursor");
	if (cursor && *cursor && !store_timeline_cursor_valid(cursor)) {
		api_reply_error(rq, 400, "invalid_field", "cursor", "not a cursor from this API");
		return;
	}
	if (!api_store_ready(rq))
		return;
	api_hold(rq);
	store_timeline_contact_exists(app->st, id, on_exists, rq);
}

const struct api_route api_inbound_routes[] = {
    {"GET", "/v1/inbound/kannel", ROLE_NONE, API_BODY_NONE, h_kannel, NULL, NULL},
    {"POST", "/v1/inbound/sms", ROLE_NONE, API_BODY_STREAM, h_sms, sms_chunk, sms_end},
    {"GET", "/v1/contacts/{id}/timeline", ROLE_VIEWER, API_BODY_NONE, h_timeline, NULL, NULL},
};
const size_t api_inbound_nroutes = ARRAY_SIZE(api_inbound_routes);
