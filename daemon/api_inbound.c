/*
 * api_inbound.c - inbound messages from providers' webhooks, and the
 * contact timeline:
 *   GET  /v1/inbound/kannel?k=SIG&from=%p&to=%P&text=%a&ts=%t&id=%I
 *        [&coding=%c&charset=%C]  Kannel's sms-service get-url;
 *   POST /v1/inbound/kannel?k=SIG&id=%I  its post-url: the text is the
 *        body (charset in Content-Type), X-Kannel-From / -To / -Time /
 *        -Coding headers.  k = callback_sign("inbound", "kannel"): static,
 *        because Kannel's URL is static configuration, so the URL is a
 *        secret.  Both answer 200 "OK".
 *   POST /v1/inbound/sms  a generic signed JSON webhook: X-Clubd-Timestamp
 *        (Unix seconds, at most 5 minutes off) and X-Clubd-Signature:
 *        sha256=hex(HMAC-SHA256(callback secret, timestamp "." body)); body
 *        {"from","to","text","id","received_at"}.  Answers
 *        {"action","contact_id","duplicate"}.
 *   POST /v1/inbound/twilio  Twilio's incoming-message webhook (form From,
 *        To, Body, MessageSid), X-Twilio-Signature checked with the auth
 *        token over [inbound] twilio_url (or http://{Host}{path}); answers
 *        empty TwiML "<Response/>" (text/xml).
 *   POST /v1/inbound/telegram/{channel}  the Bot API's webhook ([inbound]
 *        chat = webhook): X-Telegram-Bot-Api-Secret-Token must equal
 *        [inbound] chat_secret_file; body one Update.  Answers JSON.
 *   GET  /v1/contacts/{id}/timeline  newest first, limit/cursor.
 * Every transport normalises to struct inbound (inbound.c) and hands it to
 * inbound_route() (keywords, stages, the record script, confirmations).
 * Knows no key names.  Never logs texts, numbers or chat ids.
 *
 * Limits: JSON webhook bodies INBOUND_BODY_MAX, forms and post-url bodies
 * FORM_MAX; text 4 KiB; ids 128 bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "callback.h"
#include "inbound.h"
#include "inbound_poll.h"
#include "inbound_route.h"
#include "log.h"
#include "store_timeline.h"
#include "twilio_sig.h"
#include "util.h"

#define INBOUND_BODY_MAX   (32 * 1024)
#define FORM_MAX           (16 * 1024)
#define INBOUND_SKEW_S     300 /* webhook timestamp tolerance */
#define TIMELINE_LIMIT_MAX 500

enum answer { ANSWER_OK_TEXT, ANSWER_JSON, ANSWER_TWIML };

struct inb_req {
	struct buf body; /* streamed bodies */
	enum answer answer;
	enum inbound_transport t;
};

static void inb_free(void *p)
{
	struct inb_req *ir = p;
	buf_free(&ir->body);
	free(ir);
}

static struct inb_req *inb_attach(struct api_req *rq, enum answer answer, enum inbound_transport t,
                                  size_t max)
{
	struct inb_req *ir = xcalloc(1, sizeof *ir);
	buf_init(&ir->body, max);
	ir->answer = answer;
	ir->t = t;
	api_set_data(rq, ir, inb_free);
	return ir;
}

/* A request refused before routing: counted, then answered. */
static void reject(struct api_req *rq, enum inbound_transport t, unsigned status, const char *code,
                   const char *field, const char *why)
{
	inbound_count(t, INBOUND_REJECTED);
	api_reply_error(rq, status, code, field, "%s", why);
}

/*
 * {"action","contact_id","duplicate"[,"confirmation"]}, written directly
 * (the same bytes jansson's compact dump of that object gives, without
 * building one on every webhook).
 */
static void reply_routed_json(struct api_req *rq, const struct inbound_result *res)
{
	struct buf b;
	buf_init(&b, 0); /* our own text: a few fixed keys and three ids */
	buf_puts(&b, "{\"action\":");
	int bad = api_json_quote(&b, res->action) < 0;
	buf_puts(&b, ",\"contact_id\":");
	if (res->contact_id[0])
		bad |= api_json_quote(&b, res->contact_id) < 0;
	else
		buf_puts(&b, "null");
	buf_puts(&b, res->duplicate ? ",\"duplicate\":true" : ",\"duplicate\":false");
	if (res->confirm_id[0]) {
		buf_puts(&b, ",\"confirmation\":");
		bad |= api_json_quote(&b, res->confirm_id) < 0;
	}
	buf_puts(&b, "}");
	if (bad) {
		buf_free(&b);
		api_reply_error(rq, 500, "internal", NULL, "cannot encode the answer");
		return;
	}
	api_reply_json_buf(rq, 200, &b);
}

static void on_routed(void *arg, const struct inbound_result *res)
{
	struct api_req *rq = arg;
	struct inb_req *ir = api_data(rq);
	if (res->err) {
		api_reply_error(rq, 503, "unavailable", NULL,
		                "the store is unavailable; retry later (duplicates are harmless)");
	} else if (ir->answer == ANSWER_JSON) {
		reply_routed_json(rq, res);
	} else if (ir->answer == ANSWER_TWIML) {
		static const char twiml[] = "<Response/>";
		api_reply_raw(rq, 200, "text/xml; charset=utf-8", twiml, sizeof twiml - 1);
	} else {
		api_reply_raw(rq, 200, "text/plain; charset=utf-8", "OK", 2);
	}
	api_release(rq);
}

/* Route a normalised message; answers the request. */
static void route(struct api_req *rq, const struct inbound *in)
{
	struct app *app = api_app(rq);
	struct inb_req *ir = api_data(rq);
	if (!api_store_ready(rq))
		return;
	api_hold(rq);
	inbound_route(app->st, app->cfg, ir->t, in, NULL, 0, on_routed, rq);
}

static long body_chunk(struct api_req *rq, const char *data, size_t len)
{
	struct inb_req *ir = api_data(rq);
	if (buf_append(&ir->body, data, len) < 0) {
		inbound_count(ir->t, INBOUND_REJECTED);
		api_reply_error(rq, 413, "body_too_large", NULL, "the body is at most %zu bytes",
		                ir->body.max);
		return -1;
	}
	return (long)len;
}

/* Kannel MO: get-url and post-url ------------------------------------------ */

static int kannel_k_ok(struct api_req *rq)
{
	if (callback_verify("inbound", "kannel", api_query(rq, "k")))
		return 1;
	log_warnx("inbound", "provider=kannel bad or missing signature");
	reject(rq, INBOUND_T_KANNEL, 403, "forbidden", "k", "bad callback signature");
	return 0;
}

static void kannel_finish(struct api_req *rq, const struct inbound_kannel_mo *mo)
{
	struct app *app = api_app(rq);
	struct inbound *in = xmalloc(sizeof *in);
	const char *field = NULL, *why = NULL;
	if (inbound_kannel_parse(in, mo, now_ms(), app->cfg->contacts_default_country, &field,
	                         &why) < 0)
		reject(rq, INBOUND_T_KANNEL, 400, "invalid_field", field, why);
	else
		route(rq, in);
	free(in);
}

static void h_kannel_get(struct api_req *rq)
{
	inb_attach(rq, ANSWER_OK_TEXT, INBOUND_T_KANNEL, 0);
	if (!kannel_k_ok(rq))
		return;
	const char *text = api_query(rq, "text");
	struct inbound_kannel_mo mo = {
	    .from = api_query(rq, "from"),
	    .to = api_query(rq, "to"),
	    .ts = api_query(rq, "ts"),
	    .id = api_query(rq, "id"),
	    .coding = api_query(rq, "coding"),
	    .charset = api_query(rq, "charset"),
	    .text = text,
	    .text_len = text ? strlen(text) : 0,
	    .binary_safe = 0,
	};
	kannel_finish(rq, &mo);
}

static void h_kannel_post(struct api_req *rq)
{
	inb_attach(rq, ANSWER_OK_TEXT, INBOUND_T_KANNEL, FORM_MAX);
}

/* The charset parameter of a Content-Type value into out ("" when none). */
static void content_charset(const char *ct, char *out, size_t n)
{
	out[0] = '\0';
	const char *p = ct ? strcasestr(ct, "charset=") : NULL;
	if (!p)
		return;
	p += 8;
	if (*p == '"')
		p++;
	size_t len = strcspn(p, "\"; \t");
	if (len >= n)
		len = n - 1;
	memcpy(out, p, len);
	out[len] = '\0';
}

static const char *hdr_or_query(struct api_req *rq, const char *header, const char *query)
{
	const char *v = api_header(rq, header);
	return v && *v ? v : api_query(rq, query);
}

static void kannel_post_end(struct api_req *rq)
{
	struct inb_req *ir = api_data(rq);
	if (!kannel_k_ok(rq))
		return;
	const char *ct = api_header(rq, "Content-Type");
	char cs[64];
	content_charset(ct, cs, sizeof cs);
	const char *coding = hdr_or_query(rq, "X-Kannel-Coding", "coding");
	if (!coding && ct && strncasecmp(ct, "application/octet-stream", 24) == 0)
		coding = "1";
	struct inbound_kannel_mo mo = {
	    .from = hdr_or_query(rq, "X-Kannel-From", "from"),
	    .to = hdr_or_query(rq, "X-Kannel-To", "to"),
	    .ts = hdr_or_query(rq, "X-Kannel-Time", "ts"),
	    .id = api_query(rq, "id"),
	    .coding = coding,
	    .charset = cs[0] ? cs : api_query(rq, "charset"),
	    .text = ir->body.p ? ir->body.p : "",
	    .text_len = ir->body.len,
	    .binary_safe = 1,
	};
	kannel_finish(rq, &mo);
}

/* Signed JSON webhook ------------------------------------------------------ */

static void h_sms(struct api_req *rq)
{
	inb_attach(rq, ANSWER_JSON, INBOUND_T_WEBHOOK, INBOUND_BODY_MAX);
}

/* X-Clubd-Timestamp and X-Clubd-Signature over the raw body; 1 ok. */
static int webhook_signature_ok(struct api_req *rq, const char *body, size_t n)
{
	const char *ts = api_header(rq, "X-Clubd-Timestamp");
	const char *sig = api_header(rq, "X-Clubd-Signature");
	int64_t t, now = now_ms() / 1000;
	if (!ts || parse_i64(ts, 0, INT64_C(253402300799), &t) < 0 || t < now - INBOUND_SKEW_S ||
	    t > now + INBOUND_SKEW_S) {
		reject(rq, INBOUND_T_WEBHOOK, 403, "forbidden", "X-Clubd-Timestamp",
		       "missing, malformed or stale timestamp");
		return 0;
	}
	const char *part[3] = {ts, ".", body};
	const size_t len[3] = {strlen(ts), 1, n};
	char want[65];
	int ok = sig && strlen(sig) == 7 + 64 && strncmp(sig, "sha256=", 7) == 0 &&
	         callback_hmac_hex_parts(part, len, 3, want) == 0 && ct_equal(want, sig + 7, 64);
	if (!ok)
		reject(rq, INBOUND_T_WEBHOOK, 403, "forbidden", "X-Clubd-Signature",
		       "bad webhook signature");
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
		reject(rq, INBOUND_T_WEBHOOK, 400, "invalid_json", NULL,
		       "the body must be a JSON object");
		return;
	}
	static const char *const names[] = {"from", "to", "text", "id", "received_at"};
	const char *v[5];
	size_t text_len = 0;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		int bad = 0;
		v[i] = opt_str(o, names[i], i == 2 ? &text_len : NULL, &bad);
		if (bad) {
			reject(rq, INBOUND_T_WEBHOOK, 400, "invalid_field", names[i],
			       "must be a string");
			json_decref(o);
			return;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (!v[i] && i != 1 && i != 4) {
			inbound_count(INBOUND_T_WEBHOOK, INBOUND_REJECTED);
			api_reply_error(rq, 400, "missing_field", names[i], "%s is required",
			                names[i]);
			json_decref(o);
			return;
		}
	}
	int64_t at = now_ms();
	if (v[4] && parse_time(v[4], &at) < 0 && inbound_parse_time(v[4], &at) < 0) {
		reject(rq, INBOUND_T_WEBHOOK, 400, "invalid_field", "received_at",
		       "not a time (RFC 3339, YYYY-MM-DD HH:MM[:SS] or Unix seconds)");
		json_decref(o);
		return;
	}
	struct inbound *in = xmalloc(sizeof *in);
	const char *field = NULL, *why = NULL;
	if (inbound_sms_init(in, "webhook", v[3], v[0], v[1], v[2], text_len, at,
	                     app->cfg->contacts_default_country, &field, &why) < 0)
		reject(rq, INBOUND_T_WEBHOOK, 400, "invalid_field", field, why);
	else
		route(rq, in);
	free(in);
	json_decref(o);
}

/* Twilio ----------------------------------------------------------------------- */

static void h_twilio(struct api_req *rq)
{
	inb_attach(rq, ANSWER_TWIML, INBOUND_T_TWILIO, FORM_MAX);
}

/* The URL Twilio signed: [inbound] twilio_url, else rebuilt from the
 * request (X-Forwarded-Proto https behind a TLS proxy). NULL without Host. */
static char *twilio_url(struct api_req *rq)
{
	struct app *app = api_app(rq);
	if (app->cfg->inbound_twilio_url && *app->cfg->inbound_twilio_url)
		return xstrdup(app->cfg->inbound_twilio_url);
	const char *host = api_header(rq, "Host");
	if (!host || !*host || strpbrk(host, " \t\r\n/"))
		return NULL;
	const char *proto = api_header(rq, "X-Forwarded-Proto");
	int https = proto && strcasecmp(proto, "https") == 0;
	return xasprintf("%s://%s%s", https ? "https" : "http", host, api_path(rq));
}

static void twilio_end(struct api_req *rq)
{
	struct app *app = api_app(rq);
	struct inb_req *ir = api_data(rq);
	const char *token = inbound_poll_twilio_token(app->inpoll);
	const char *sig = api_header(rq, "X-Twilio-Signature");
	if (!token) {
		log_warnx("inbound", "provider=twilio no auth token configured: refused");
		reject(rq, INBOUND_T_TWILIO, 403, "forbidden", "X-Twilio-Signature",
		       "no Twilio auth token is configured");
		return;
	}
	struct inbound_form f;
	int r = inbound_form_parse(&f, ir->body.p ? ir->body.p : "", ir->body.len);
	char *url = r == 0 ? twilio_url(rq) : NULL;
	if (r == 0 && (!url || !sig ||
	               twilio_sig_verify(token, url, (const char *const *)f.name,
	                                 (const char *const *)f.value, f.n, sig) != 0)) {
		log_warnx("inbound", "provider=twilio bad or missing X-Twilio-Signature");
		reject(rq, INBOUND_T_TWILIO, 403, "forbidden", "X-Twilio-Signature",
		       "bad Twilio request signature");
		goto out;
	}
	if (r < 0) {
		reject(rq, INBOUND_T_TWILIO, 400, "invalid_field", NULL, "malformed form body");
		goto out;
	}
	const char *sid = inbound_form_get(&f, "MessageSid");
	if (!sid)
		sid = inbound_form_get(&f, "SmsMessageSid");
	const char *body = inbound_form_get(&f, "Body");
	struct inbound *in = xmalloc(sizeof *in);
	const char *field = NULL, *why = NULL;
	if (inbound_sms_init(in, "twilio", sid, inbound_form_get(&f, "From"),
	                     inbound_form_get(&f, "To"), body ? body : "", body ? strlen(body) : 0,
	                     now_ms(), app->cfg->contacts_default_country, &field, &why) < 0) {
		if (strcmp(field, "id") == 0)
			field = "MessageSid";
		else if (strcmp(field, "from") == 0)
			field = "From";
		else if (strcmp(field, "text") == 0)
			field = "Body";
		reject(rq, INBOUND_T_TWILIO, 400, "invalid_field", field, why);
	} else {
		route(rq, in);
	}
	free(in);
out:
	free(url);
	inbound_form_free(&f);
}

/* Telegram / Bale webhook ------------------------------------------------------ */

static void h_telegram(struct api_req *rq)
{
	struct app *app = api_app(rq);
	inb_attach(rq, ANSWER_JSON, INBOUND_T_TELEGRAM_WEBHOOK, 0);
	const char *channel = api_param(rq, "channel");
	const char *secret = NULL, *bot = NULL;
	if (inbound_poll_chat_webhook(app->inpoll, channel, &secret, &bot) < 0) {
		api_reply_error(rq, 404, "not_found", "channel",
		                "no chat channel takes webhooks here ([inbound] chat = webhook)");
		return;
	}
	const char *got = api_header(rq, "X-Telegram-Bot-Api-Secret-Token");
	size_t n = strlen(secret);
	if (!got || strlen(got) != n || !ct_equal(got, secret, n)) {
		log_warnx("inbound", "provider=telegram chan=%s bad or missing secret token",
		          channel);
		reject(rq, INBOUND_T_TELEGRAM_WEBHOOK, 403, "forbidden",
		       "X-Telegram-Bot-Api-Secret-Token", "bad secret token");
		return;
	}
	struct inbound_tg_update u;
	if (inbound_tg_parse(api_json(rq), &u) < 0) {
		reject(rq, INBOUND_T_TELEGRAM_WEBHOOK, 400, "invalid_field", "update_id",
		       "not a Bot API Update");
		return;
	}
	if (u.kind == INBOUND_TG_SKIP) {
		api_reply_json(rq, 200, json_pack("{s:s}", "ignored", u.skip));
		return;
	}
	struct inbound *in = xmalloc(sizeof *in);
	const char *field = NULL, *why = NULL;
	if (inbound_tg_inbound(in, &u, channel, bot, now_ms(), app->cfg->contacts_default_country,
	                       &field, &why) < 0) {
		/* 200: a retry would bring the same update again */
		inbound_count(INBOUND_T_TELEGRAM_WEBHOOK, INBOUND_REJECTED);
		api_reply_json(
		    rq, 200,
		    json_pack("{s:s, s:s?}", "ignored", why ? why : "refused", "field", field));
	} else {
		route(rq, in);
	}
	free(in);
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
    {"GET", "/v1/inbound/kannel", ROLE_NONE, API_BODY_NONE, h_kannel_get, NULL, NULL},
    {"POST", "/v1/inbound/kannel", ROLE_NONE, API_BODY_STREAM, h_kannel_post, body_chunk,
     kannel_post_end},
    {"POST", "/v1/inbound/sms", ROLE_NONE, API_BODY_STREAM, h_sms, body_chunk, sms_end},
    {"POST", "/v1/inbound/twilio", ROLE_NONE, API_BODY_STREAM, h_twilio, body_chunk, twilio_end},
    {"POST", "/v1/inbound/telegram/{channel}", ROLE_NONE, API_BODY_JSON, h_telegram, NULL, NULL},
    {"GET", "/v1/contacts/{id}/timeline", ROLE_VIEWER, API_BODY_NONE, h_timeline, NULL, NULL},
};
const size_t api_inbound_nroutes = ARRAY_SIZE(api_inbound_routes);
