/*
 * chat_telegram.c - driver "telegram": the Bot API's sendMessage, for
 * Telegram and every server that speaks the same API under another base URL
 * (Bale: base_url = https://tapi.bale.ai).
 *
 * Request: POST base_url/bot<token>/sendMessage, Content-Type
 * application/json, {"chat_id": <int64, or "@username">, "text": ...,
 * "parse_mode"?, "disable_web_page_preview"?}.  Results:
 *   {"ok":true,"result":{"message_id":N}}        OK, provider id "<chat_id>:N"
 *   ok:false with parameters.retry_after N       TEMPFAIL, retry after N s
 *   ok:false with parameters.migrate_to_chat_id  PERMFAIL naming the new id
 *   ok:false 401 / 404                           PERMFAIL: token or base_url
 *   ok:false 403 (blocked, deactivated, ...)     PERMFAIL + revoke_consent
 *   ok:false other 4xx (chat not found, ...)     PERMFAIL with the description
 *   ok:false 5xx, 429                            TEMPFAIL
 *   2xx that is not a Bot API answer             TEMPFAIL "bad answer" (the
 *                                                message may have gone out:
 *                                                the at-least-once window)
 *   other non-API answers (proxy pages) and transport errors, timeouts:
 *                                                TEMPFAIL (401/404 PERMFAIL)
 * Refused before any I/O, reported from the loop (never inside send()):
 * no text, invalid UTF-8, more than 4096 characters (code points), a chat
 * id that is neither an int64 nor an @username.
 *
 * Owns: the request URL (it holds the bot token: wiped on destroy, never
 * logged, scrubbed from every reason), one reference on the loop's shared
 * HTTP client, one uv_idle_t for reports decided before any I/O.  Never
 * touches: consent (it only sets revoke_consent), retries, message state.
 * Limits: answers capped at 64 KiB, the API's description at 160 bytes in a
 * reason, the channel's timeout per send; configuration warnings (bad token,
 * wrong base_url) logged at most once a minute.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "channel.h"
#include "chat_drivers.h"
#include "http.h"
#include "log.h"
#include "text.h"
#include "util.h"

#define TG_DEFAULT_BASE  "https://api.telegram.org"
#define TG_MAX_ANSWER    (64 * 1024)
#define TG_MAX_DESC      160   /* bytes of the API's description kept */
#define TG_MAX_TOKEN     256   /* bytes */
#define TG_MAX_CHAT      80    /* bytes of a chat id, with the '@' */
#define TG_WARN_EVERY_MS 60000 /* configuration warnings */
#define TG_MAX_RETRY_S   (366 * 86400)

struct tg_send {
	struct chan *c;
	chan_done_cb done;
	void *arg;
	const char *msg_id; /* borrowed from the chan_msg until done */
	char *body;
	char chat_id[TG_MAX_CHAT + 1];
	struct chan_result res; /* a report decided before any I/O */
	struct tg_send *next;
};

struct tg {
	struct chan *c;
	char *url; /* holds the token: never logged */
	size_t url_len;
	char *token;
	size_t token_len;
	const char *parse_mode; /* "HTML", "MarkdownV2" or NULL */
	int no_preview;
	int max_host;
	struct http_client *http;
	uv_idle_t idle;
	struct tg_send *early_head, *early_tail;
	int sending; /* started and not yet reported: HTTP and early */
	int stopping;
	int closing;
	void (*stopped)(struct chan *c);
	int64_t warned_at; /* mono ms of the last configuration warning */
};

/* ---- configure -------------------------------------------------------- */

static int token_char_ok(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == ':' || ch == '_' || ch == '-';
}

static int tg_configure(struct chan *c, struct cfg_error *err)
{
	struct cfg_section *sec = c->cfg->sec;
	struct tg *t = xcalloc(1, sizeof *t);
	c->priv = t;
	t->c = c;

	/* The base URL is never echoed in errors: a proxy URL may hold a password. */
	const char *base = cfg_sec_str(sec, "base_url", TG_DEFAULT_BASE);
	size_t blen = strlen(base);
	size_t scheme = 0;
	if (strncasecmp(base, "http://", 7) == 0)
		scheme = 7;
	else if (strncasecmp(base, "https://", 8) == 0)
		scheme = 8;
	if (!scheme) {
		cfg_error_set(err, sec, "base_url", "must start with http:// or https://");
		return -1;
	}
	for (const char *p = base; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '?' || *p == '#') {
			cfg_error_set(err, sec, "base_url",
			              "contains white space, control characters, '?' or '#'");
			return -1;
		}
	while (blen > scheme && base[blen - 1] == '/')
		blen--;
	if (blen == scheme || base[scheme] == '/') {
		cfg_error_set(err, sec, "base_url", "has no host");
		return -1;
	}

	if (cfg_sec_secret(sec, "token_file", &t->token, err) < 0)
		return -1;
	if (!t->token) {
		cfg_error_set(err, sec, "token_file", "is required");
		return -1;
	}
	t->token_len = strlen(t->token);
	if (t->token_len > TG_MAX_TOKEN) {
		cfg_error_set(err, sec, "token_file", "the token is longer than %d bytes",
		              TG_MAX_TOKEN);
		return -1;
	}
	for (size_t i = 0; i < t->token_len; i++)
		if (!token_char_ok((unsigned char)t->token[i])) {
			/* The token itself is never echoed. */
			cfg_error_set(err, sec, "token_file",
			              "the token may only hold letters, digits, ':', '_' and '-' "
			              "(like 123456:ABC-DEF_ghi)");
			return -1;
		}

	const char *pm = cfg_sec_str(sec, "parse_mode", "none");
	if (strcasecmp(pm, "none") == 0 || !*pm)
		t->parse_mode = NULL;
	else if (strcasecmp(pm, "HTML") == 0)
		t->parse_mode = "HTML";
	else if (strcasecmp(pm, "MarkdownV2") == 0)
		t->parse_mode = "MarkdownV2";
	else {
		cfg_error_set(err, sec, "parse_mode", "must be none, HTML or MarkdownV2");
		return -1;
	}
	if (cfg_sec_bool(sec, "disable_web_page_preview", 0, &t->no_preview, err) < 0)
		return -1;
	int64_t mh;
	if (cfg_sec_int(sec, "max_host_connections", 8, 1, 1024, &mh, err) < 0)
		return -1;
	t->max_host = (int)mh;

	t->url = xasprintf("%.*s/bot%s/sendMessage", (int)blen, base, t->token);
	t->url_len = strlen(t->url);
	return 0;
}

/* ---- start, stop, destroy --------------------------------------------- */

static void tg_early_cb(uv_idle_t *h);

static int tg_start(struct chan *c, uv_loop_t *loop)
{
	struct tg *t = c->priv;
	int r = uv_idle_init(loop, &t->idle);
	if (r < 0)
		return r;
	t->idle.data = t;
	t->http = http_client_get(loop);
	http_client_want_connections(t->http, t->max_host);
	return 0;
}

static void tg_idle_closed(uv_handle_t *h)
{
	struct tg *t = h->data;
	void (*stopped)(struct chan *) = t->stopped;
	t->stopped = NULL;
	http_client_put(t->http);
	t->http = NULL;
	if (stopped)
		stopped(t->c);
}

/* Once stopping and every send has reported: close the idle, then report. */
static void tg_maybe_stopped(struct tg *t)
{
	if (!t->stopping || t->sending > 0 || t->closing)
		return;
	t->closing = 1;
	uv_idle_stop(&t->idle);
	uv_close((uv_handle_t *)&t->idle, tg_idle_closed);
}

static void tg_stop(struct chan *c, void (*stopped)(struct chan *c))
{
	struct tg *t = c->priv;
	t->stopping = 1;
	t->stopped = stopped;
	tg_maybe_stopped(t);
}

static void tg_destroy(struct chan *c)
{
	struct tg *t = c->priv;
	if (!t)
		return;
	if (t->url) {
		explicit_bzero(t->url, t->url_len);
		free(t->url);
	}
	if (t->token) {
		explicit_bzero(t->token, t->token_len);
		free(t->token);
	}
	free(t);
	c->priv = NULL;
}

/* ---- results ---------------------------------------------------------- */

static void tg_warn(struct tg *t, const char *what)
{
	int64_t now = mono_ms();
	if (t->warned_at && now - t->warned_at < TG_WARN_EVERY_MS)
		return;
	t->warned_at = now;
	log_warnx("telegram", "chan=%s problem=%s", t->c->cfg->name, log_q(what));
}

/* Replace every copy of the token in s (NUL-terminated, n bytes) by "***";
 * '*' never occurs in a token, so the loop ends. */
static void scrub_token(const struct tg *t, char *s, size_t n)
{
	if (!t->token_len)
		return;
	char *p = s;
	while ((p = strstr(p, t->token))) {
		size_t at = (size_t)(p - s);
		if (at + 4 > n) { /* no room for "***" and the NUL: cut here */
			*p = '\0';
			break;
		}
		size_t tail = strlen(p + t->token_len);
		if (tail > n - at - 4)
			tail = n - at - 4;
		memmove(p + 3, p + t->token_len, tail);
		memcpy(p, "***", 3);
		p[3 + tail] = '\0';
		p += 3;
	}
}

/* The API's description: printable, at most TG_MAX_DESC bytes, whole
 * UTF-8 sequences only (jansson already refused invalid UTF-8). */
static void sanitize_desc(const char *in, char *out, size_t n)
{
	size_t max = n - 1 < TG_MAX_DESC ? n - 1 : TG_MAX_DESC;
	size_t len = strlen(in);
	if (len > max) {
		len = max;
		while (len > 0 && ((unsigned char)in[len] & 0xc0) == 0x80)
			len--;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];
		out[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	out[len] = '\0';
}

static void set_reason(struct chan_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_reason(struct chan_result *res, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->reason, sizeof res->reason, fmt, ap);
	va_end(ap);
}

static void map_transport(const struct http_resp *resp, struct chan_result *res)
{
	res->status = CHAN_TEMPFAIL;
	switch (resp->err) {
	case HTTP_E_TIMEOUT:
		set_reason(res, "timeout");
		break;
	case HTTP_E_CONNECT:
		set_reason(res, "connect: %s", resp->error);
		break;
	case HTTP_E_TOO_LARGE:
		set_reason(res, "response too large");
		break;
	case HTTP_E_CANCELLED:
		set_reason(res, "cancelled");
		break;
	default:
		set_reason(res, "http: %s", resp->error);
		break;
	}
}

/* An answer that is not the Bot API's JSON (a proxy's error page, ...). */
static void map_not_api(struct tg *t, const struct http_resp *resp, struct chan_result *res)
{
	long st = resp->status;
	if (st >= 200 && st < 300) {
		/* The message may have been accepted: retrying risks a duplicate,
		 * dropping risks a loss; at-least-once chooses the retry. */
		res->status = CHAN_TEMPFAIL;
		set_reason(res, "bad answer: http %ld without a Bot API body", st);
	} else if (st == 401) {
		res->status = CHAN_PERMFAIL;
		set_reason(res, "unauthorized: check token_file");
		tg_warn(t, "unauthorized: check token_file");
	} else if (st == 404) {
		res->status = CHAN_PERMFAIL;
		set_reason(res, "not found: check base_url and token_file");
		tg_warn(t, "not found: check base_url and token_file");
	} else {
		res->status = CHAN_TEMPFAIL;
		set_reason(res, "http %ld", st);
		res->retry_after_ms = resp->retry_after_ms;
	}
}

static void map_answer(struct tg *t, struct tg_send *s, const struct http_resp *resp,
                       struct chan_result *res)
{
	long st = resp->status;
	json_t *j = resp->body_len ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
	json_t *ok = json_is_object(j) ? json_object_get(j, "ok") : NULL;
	if (!json_is_boolean(ok)) {
		map_not_api(t, resp, res);
		goto out;
	}
	if (json_is_true(ok)) {
		if (st < 200 || st >= 300) {
			res->status = CHAN_TEMPFAIL;
			set_reason(res, "bad answer: ok with http %ld", st);
			goto out;
		}
		res->status = CHAN_OK;
		json_t *result = json_object_get(j, "result");
		json_t *mid = json_is_object(result) ? json_object_get(result, "message_id") : NULL;
		if (json_is_integer(mid))
			snprintf(res->provider_id, sizeof res->provider_id,
			         "%s:%" JSON_INTEGER_FORMAT, s->chat_id, json_integer_value(mid));
		goto out;
	}

	/* ok:false: error_code (else the HTTP status), description, parameters */
	json_t *ec = json_object_get(j, "error_code");
	long code = st;
	if (json_is_integer(ec) && json_integer_value(ec) >= 100 && json_integer_value(ec) <= 599)
		code = (long)json_integer_value(ec);
	char desc[TG_MAX_DESC + 1] = "";
	json_t *d = json_object_get(j, "description");
	if (json_is_string(d))
		sanitize_desc(json_string_value(d), desc, sizeof desc);
	json_t *params = json_object_get(j, "parameters");
	json_t *ra = json_is_object(params) ? json_object_get(params, "retry_after") : NULL;
	json_t *mig = json_is_object(params) ? json_object_get(params, "migrate_to_chat_id") : NULL;
	const char *sep = desc[0] ? ": " : "";

	if (json_is_integer(ra) && json_integer_value(ra) >= 0) {
		json_int_t sec = json_integer_value(ra);
		if (sec > TG_MAX_RETRY_S)
			sec = TG_MAX_RETRY_S;
		res->status = CHAN_TEMPFAIL;
		res->retry_after_ms = (int64_t)sec * 1000;
		set_reason(res, "bot api %ld%s%s", code, sep, desc);
	} else if (json_is_integer(mig)) {
		res->status = CHAN_PERMFAIL;
		set_reason(res,
		           "chat migrated to a supergroup: new chat_id %" JSON_INTEGER_FORMAT
		           " (update the contact's chat address)",
		           json_integer_value(mig));
	} else if (code == 401) {
		res->status = CHAN_PERMFAIL;
		set_reason(res, "unauthorized: check token_file");
		tg_warn(t, "unauthorized: check token_file");
	} else if (code == 404) {
		res->status = CHAN_PERMFAIL;
		set_reason(res, "not found: check base_url and token_file");
		tg_warn(t, "not found: check base_url and token_file");
	} else if (code == 403) {
		/* bot blocked by the user, user deactivated, kicked from the
		 * group: the recipient's side said no; the dispatcher withdraws
		 * the contact's chat consent with this reason. */
		res->status = CHAN_PERMFAIL;
		res->revoke_consent = 1;
		set_reason(res, "bot api 403%s%s", sep, desc);
	} else if (code == 429 || code == 408 || code >= 500 || code < 400) {
		res->status = CHAN_TEMPFAIL;
		res->retry_after_ms = resp->retry_after_ms;
		set_reason(res, "bot api %ld%s%s", code, sep, desc);
	} else {
		res->status = CHAN_PERMFAIL;
		set_reason(res, "bot api %ld%s%s", code, sep, desc);
	}
out:
	json_decref(j);
}

static void tg_report(struct tg *t, struct tg_send *s, struct chan_result *res)
{
	scrub_token(t, res->reason, sizeof res->reason);
	scrub_token(t, res->provider_id, sizeof res->provider_id);
	chan_done_cb done = s->done;
	void *arg = s->arg;
	free(s->body);
	free(s);
	t->sending--;
	done(arg, res);
	tg_maybe_stopped(t);
}

static void tg_http_done(void *arg, const struct http_resp *resp)
{
	struct tg_send *s = arg;
	struct tg *t = s->c->priv;
	struct chan_result res;
	memset(&res, 0, sizeof res);
	if (resp->err != HTTP_E_NONE)
		map_transport(resp, &res);
	else
		map_answer(t, s, resp, &res);
	if (res.revoke_consent)
		log_info("telegram", "chan=%s msg=%s recipient refused the bot reason=%s",
		         t->c->cfg->name, log_q(s->msg_id), log_q(res.reason));
	tg_report(t, s, &res);
}

static void tg_early_cb(uv_idle_t *h)
{
	struct tg *t = h->data;
	struct tg_send *s = t->early_head;
	t->early_head = t->early_tail = NULL;
	uv_idle_stop(h);
	while (s) {
		struct tg_send *next = s->next;
		struct chan_result res = s->res;
		tg_report(t, s, &res);
		s = next;
	}
}

/* ---- send --------------------------------------------------------------- */

/* The chat id as JSON: an int64 (not 0), or "@username"; NULL otherwise. */
static json_t *chat_id_json(const char *to)
{
	int64_t id;
	if (!to || !*to || strlen(to) > TG_MAX_CHAT)
		return NULL;
	if (parse_i64(to, INT64_MIN, INT64_MAX, &id) == 0)
		return id ? json_integer((json_int_t)id) : NULL;
	if (to[0] != '@' || !to[1])
		return NULL;
	for (const char *p = to + 1; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_'))
			return NULL;
	}
	return json_string(to);
}

/* NULL when text can be sent, else the PERMFAIL reason. */
static const char *text_problem(const char *text, char *why, size_t n)
{
	if (!text || !*text)
		return "no text to send";
	size_t len = strlen(text);
	if (!utf8_valid(text, len))
		return "text is not valid UTF-8";
	size_t chars = utf8_len(text, len);
	if (chars > CHAT_TELEGRAM_MAX_TEXT) {
		snprintf(why, n, "too long: %zu characters, the limit is %d", chars,
		         CHAT_TELEGRAM_MAX_TEXT);
		return why;
	}
	return NULL;
}

static int tg_send(struct chan *c, const struct chan_msg *m, chan_done_cb done, void *arg)
{
	struct tg *t = c->priv;
	if (t->stopping || !t->http)
		return -ESHUTDOWN;

	struct tg_send *s = xcalloc(1, sizeof *s);
	s->c = c;
	s->done = done;
	s->arg = arg;
	s->msg_id = m->id;

	char why[96];
	const char *problem = NULL;
	json_t *chat = chat_id_json(m->to);
	if (!chat)
		problem = "chat id is neither a number nor an @username";
	else
		problem = text_problem(m->text, why, sizeof why);
	if (problem) {
		json_decref(chat);
		s->res.status = CHAN_PERMFAIL;
		snprintf(s->res.reason, sizeof s->res.reason, "%s", problem);
		if (t->early_tail)
			t->early_tail->next = s;
		else
			t->early_head = s;
		t->early_tail = s;
		t->sending++;
		uv_idle_start(&t->idle, tg_early_cb);
		return 0;
	}
	snprintf(s->chat_id, sizeof s->chat_id, "%s", m->to);

	json_t *o = json_object();
	json_object_set_new(o, "chat_id", chat);
	json_object_set_new(o, "text", json_string(m->text));
	if (t->parse_mode)
		json_object_set_new(o, "parse_mode", json_string(t->parse_mode));
	if (t->no_preview)
		json_object_set_new(o, "disable_web_page_preview", json_true());
	s->body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s->body)
		abort(); /* only on out of memory: the text was checked above */

	static const char *const hdrs[] = {"Content-Type: application/json", NULL};
	struct http_req rq = {
	    .method = "POST",
	    .url = t->url,
	    .headers = hdrs,
	    .body = s->body,
	    .body_len = strlen(s->body),
	    .timeout_ms = c->cfg->timeout_ms,
	    .max_body = TG_MAX_ANSWER,
	};
	int r = http_request(t->http, &rq, tg_http_done, s);
	if (r < 0) {
		free(s->body);
		free(s);
		return r;
	}
	t->sending++;
	return 0;
}

const struct chan_driver chan_telegram_driver = {
    .name = "telegram",
    .configure = tg_configure,
    .start = tg_start,
    .send = tg_send,
    .stop = tg_stop,
    .destroy = tg_destroy,
};
