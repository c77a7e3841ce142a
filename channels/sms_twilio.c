/*
 * sms_twilio.c - driver "twilio": SMS through Twilio's Messages API.
 *
 * POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json with
 * HTTP Basic auth (account_sid:auth_token) and a form-urlencoded body:
 *   To (E.164 with '+'), From or MessagingServiceSid, Body (UTF-8),
 *   StatusCallback (status_callback with "m=<message id>" appended).
 * Answers: 201 (any 2xx) with JSON {"sid", "status", "num_segments", ...}
 * is OK with provider id = sid, segments = num_segments when given (else
 * our own count); a 2xx whose status is failed/undelivered/canceled is a
 * PERMFAIL.  Errors are JSON {"code", "message", "status"} and map by
 * Twilio code first, then HTTP status:
 *   20429 / HTTP 429, 21611 (sender queue full), 63038 (daily limit),
 *     HTTP 408, 3xx, 5xx and transport errors  -> TEMPFAIL (Retry-After)
 *   20003 / HTTP 401                            -> PERMFAIL "authentication
 *                                                  failed" (warned once a minute)
 *   21610 (the recipient replied STOP)          -> PERMFAIL, revoke_consent
 *   21211, 21408, 21614 and any other 4xx       -> PERMFAIL
 *                                                  "twilio <code>: <message>"
 *
 * Owns: copies of its keys, the auth token and the Basic credentials
 * (wiped on destroy), one reference on the loop's shared HTTP client
 * (struct sms_core).  Never logs URLs, the token or message text; reasons
 * are sanitized excerpts with the token redacted.  Limits: the answer is
 * capped at 64 KiB, the request at 512 KiB; one recipient per send.
 */
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "channel.h"
#include "http.h"
#include "callback.h"
#include "log.h"
#include "sms_providers.h"
#include "sms_segments.h"
#include "util.h"

#define TWILIO_MAX_ANSWER  (64 * 1024)
#define TWILIO_MAX_REQUEST (512 * 1024)
#define TWILIO_DEFAULT_URL "https://api.twilio.com"

struct twilio {
	struct sms_core core;
	struct sms_opts opts;
	char *url; /* the Messages.json endpoint */
	char *account_sid;
	char *token;
	char *userpass; /* "sid:token", redacted (with its Base64) from reasons */
	char *auth_hdr; /* "Authorization: Basic ..." */
	char *from;     /* NULL with a messaging service */
	char *mss;      /* MessagingServiceSid, NULL with from */
	char *status_callback;
	const char *secrets[3];
};

struct twilio_send {
	struct chan *c;
	chan_done_cb done;
	void *arg;
	struct sms_count cnt;
	const char *id; /* borrowed from the chan_msg until done */
	char *body;
};

/* ---- configuration --------------------------------------------------------- */

/* http(s), no white space or controls, no fragment; query only if allowed. */
static int url_ok(const char *u, int query_ok)
{
	if (strncasecmp(u, "http://", 7) != 0 && strncasecmp(u, "https://", 8) != 0)
		return 0;
	for (const char *p = u; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '#' || (!query_ok && *p == '?'))
			return 0;
	return 1;
}

/* prefix followed by exactly 32 hex digits (Twilio's SIDs). */
static int sid_ok(const char *s, const char *prefix)
{
	size_t pl = strlen(prefix);
	if (strncmp(s, prefix, pl) != 0 || strlen(s) != pl + 32)
		return 0;
	for (const char *p = s + pl; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
		      (*p >= 'A' && *p <= 'F')))
			return 0;
	return 1;
}

/* An E.164 number (+ and 2..15 digits), a short code (3..8 digits) or an
 * alphanumeric sender id (1..11 of A-Z a-z 0-9 space, one letter at least). */
static int from_ok(const char *s)
{
	size_t n = strlen(s);
	if (s[0] == '+') {
		if (n < 3 || n > 16)
			return 0;
		for (size_t i = 1; i < n; i++)
			if (s[i] < '0' || s[i] > '9')
				return 0;
		return 1;
	}
	int letters = 0, digits_only = 1;
	if (n == 0 || n > 11 || s[0] == ' ' || s[n - 1] == ' ')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
			letters = 1;
		else if (ch == ' ')
			digits_only = 0;
		else if (ch < '0' || ch > '9')
			return 0;
	}
	if (letters)
		return 1;
	return digits_only && n >= 3 && n <= 8;
}

static int twilio_configure(struct chan *c, struct cfg_error *err)
{
	struct cfg_section *sec = c->cfg->sec;
	struct twilio *t = xcalloc(1, sizeof *t);
	c->priv = t;

	const char *base = cfg_sec_str(sec, "base_url", TWILIO_DEFAULT_URL);
	/* never echoed: a URL may carry credentials */
	if (!url_ok(base, 0)) {
		cfg_error_set(err, sec, "base_url",
		              "must be an http:// or https:// URL without white space, '?' or '#', "
		              "e.g. https://api.twilio.com");
		return -1;
	}
	const char *sid = cfg_sec_str_req(sec, "account_sid", err);
	if (!sid)
		return -1;
	if (!sid_ok(sid, "AC")) {
		cfg_error_set(err, sec, "account_sid",
		              "must be the Account SID: AC followed by 32 hex digits");
		return -1;
	}
	t->account_sid = xstrdup(sid);
	size_t bl = strlen(base);
	while (bl > 0 && base[bl - 1] == '/')
		bl--;
	t->url = xasprintf("%.*s/2010-04-01/Accounts/%s/Messages.json", (int)bl, base, sid);

	if (cfg_sec_secret(sec, "auth_token_file", &t->token, err) < 0)
		return -1;
	if (!t->token) {
		cfg_error_set(err, sec, "auth_token_file",
		              "is required (the account's Auth Token, in a file)");
		return -1;
	}
	for (const char *p = t->token; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			cfg_error_set(err, sec, "auth_token_file",
			              "the token contains white space or control characters");
			return -1;
		}
	t->userpass = xasprintf("%s:%s", sid, t->token);
	size_t ul = strlen(t->userpass);
	unsigned char *b64 = xmalloc(4 * ((ul + 2) / 3) + 1);
	EVP_EncodeBlock(b64, (const unsigned char *)t->userpass, (int)ul);
	t->auth_hdr = xasprintf("Authorization: Basic %s", b64);
	explicit_bzero(b64, strlen((char *)b64));
	free(b64);
	t->secrets[0] = t->token;
	t->secrets[1] = t->userpass;

	if (sms_opts_configure(sec, &t->opts, err) < 0)
		return -1;
	const char *from = cfg_sec_str(sec, "from", NULL);
	const char *mss = cfg_sec_str(sec, "messaging_service_sid", NULL);
	if (from && t->opts.sender) {
		cfg_error_set(err, sec, "sender", "set from or sender (the same key), not both");
		return -1;
	}
	const char *from_key = from ? "from" : "sender";
	if (!from)
		from = t->opts.sender;
	if (from && mss) {
		cfg_error_set(err, sec, "messaging_service_sid",
		              "set exactly one of from and messaging_service_sid");
		return -1;
	}
	if (!from && !mss) {
		cfg_error_set(err, sec, "from",
		              "is required (a Twilio number such as +15017122661), or set "
		              "messaging_service_sid");
		return -1;
	}
	if (from) {
		if (!from_ok(from)) {
			cfg_error_set(
			    err, sec, from_key,
			    "must be a number in E.164 form (+15017122661), a short code or "
			    "an alphanumeric sender id of at most 11 characters");
			return -1;
		}
		t->from = xstrdup(from);
	} else {
		if (!sid_ok(mss, "MG")) {
			cfg_error_set(
			    err, sec, "messaging_service_sid",
			    "must be a Messaging Service SID: MG followed by 32 hex digits");
			return -1;
		}
		t->mss = xstrdup(mss);
	}

	const char *cb = cfg_sec_str(sec, "status_callback", NULL);
	if (cb) {
		if (!url_ok(cb, 1)) {
			cfg_error_set(
			    err, sec, "status_callback",
			    "must be an http:// or https:// URL without white space or '#', "
			    "e.g. https://clubd.example/v1/dlr/twilio");
			return -1;
		}
		if (!callback_enabled()) {
			cfg_error_set(err, sec, "status_callback",
			              "delivery reports need [api] callback_secret_file (the "
			              "callback URLs are signed)");
			return -1;
		}
		t->status_callback = xstrdup(cb);
	}
	int64_t v;
	if (cfg_sec_int(sec, "max_host_connections", 16, 1, 1024, &v, err) < 0)
		return -1;
	t->core.max_host = (int)v;
	return 0;
}

static int twilio_start(struct chan *c, uv_loop_t *loop)
{
	struct twilio *t = c->priv;
	return sms_core_start(&t->core, c, loop);
}

/* ---- answers ------------------------------------------------------------------ */

/* A printable id (no controls, no spaces) of at most n - 1 bytes, or "". */
static void copy_id(char *out, size_t n, const char *s)
{
	out[0] = '\0';
	size_t len = strlen(s);
	if (len == 0 || len >= n)
		return;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return;
	memcpy(out, s, len + 1);
}

/* A JSON value that is an integer or a string of digits; -1 otherwise. */
static int64_t json_int_or_str(json_t *v)
{
	if (json_is_integer(v))
		return json_integer_value(v);
	int64_t x;
	if (json_is_string(v) && parse_i64(json_string_value(v), 0, INT32_MAX, &x) == 0)
		return x;
	return -1;
}

static void twilio_ok(struct twilio *t, struct twilio_send *s, const struct http_resp *resp,
                      struct chan_result *res)
{
	json_t *j = json_loadb(resp->body, resp->body_len, 0, NULL);
	int seg = s->cnt.segments;
	res->status = CHAN_OK;
	if (json_is_object(j)) {
		json_t *sid = json_object_get(j, "sid");
		if (json_is_string(sid))
			copy_id(res->provider_id, sizeof res->provider_id, json_string_value(sid));
		int64_t ns = json_int_or_str(json_object_get(j, "num_segments"));
		if (ns >= 1 && ns <= SMS_MAX_PARTS)
			seg = (int)ns;
		json_t *st = json_object_get(j, "status");
		const char *sv = json_is_string(st) ? json_string_value(st) : "";
		if (strcmp(sv, "failed") == 0 || strcmp(sv, "undelivered") == 0 ||
		    strcmp(sv, "canceled") == 0) {
			res->status = CHAN_PERMFAIL;
			snprintf(res->reason, sizeof res->reason, "twilio: message %s on creation",
			         sv);
		}
	}
	if (!res->provider_id[0] && res->status == CHAN_OK)
		log_warnx("sms",
		          "chan=%s driver=twilio msg=%s status=%ld note=\"accepted without a "
		          "readable sid: delivery reports cannot be matched\"",
		          s->c->cfg->name, log_q(s->id ? s->id : ""), resp->status);
	if (res->status == CHAN_OK) {
		res->segments = seg;
		res->cost_micros = sms_cost_micros(seg, t->opts.price);
	}
	json_decref(j);
}

static void twilio_fail(struct twilio *t, const struct http_resp *resp, struct chan_result *res)
{
	long st = resp->status;
	int64_t code = -1;
	char ex[200] = "";
	json_t *j = json_loadb(resp->body, resp->body_len, 0, NULL);
	if (json_is_object(j)) {
		code = json_int_or_str(json_object_get(j, "code"));
		json_t *m = json_object_get(j, "message");
		if (json_is_string(m))
			sms_excerpt(ex, sizeof ex, json_string_value(m),
			            strlen(json_string_value(m)), t->secrets);
	} else {
		sms_excerpt(ex, sizeof ex, resp->body, resp->body_len, t->secrets);
	}
	json_decref(j);

	int temp = code == 20429 || code == 21611 || code == 63038 || st == 429 || st == 408 ||
	           st >= 500 || (st >= 300 && st < 400);
	res->status = temp ? CHAN_TEMPFAIL : CHAN_PERMFAIL;
	if (temp)
		res->retry_after_ms = resp->retry_after_ms;
	if (code == 20003 || st == 401) {
		res->status = CHAN_PERMFAIL;
		res->retry_after_ms = 0;
		snprintf(res->reason, sizeof res->reason, "twilio %lld: authentication failed",
		         (long long)(code > 0 ? code : 20003));
		sms_core_warn_auth(&t->core, "twilio", st);
		return;
	}
	if (code == 21610)
		res->revoke_consent = 1; /* the recipient replied STOP */
	if (code > 0)
		snprintf(res->reason, sizeof res->reason, "twilio %lld: %s", (long long)code,
		         ex[0] ? ex : "no message");
	else
		snprintf(res->reason, sizeof res->reason, "twilio http %ld%s%s", st,
		         ex[0] ? ": " : "", ex);
}

static void twilio_done(void *arg, const struct http_resp *resp)
{
	struct twilio_send *s = arg;
	struct chan *c = s->c;
	struct twilio *t = c->priv;
	struct chan_result res;
	memset(&res, 0, sizeof res);

	if (resp->err != HTTP_E_NONE)
		sms_transport_fail(&res, resp, t->secrets);
	else if (resp->status >= 200 && resp->status < 300)
		twilio_ok(t, s, resp, &res);
	else
		twilio_fail(t, resp, &res);

	chan_done_cb done = s->done;
	void *darg = s->arg;
	free(s->body);
	free(s);
	done(darg, &res);
	sms_core_request_done(&t->core);
}

/* ---- sending ---------------------------------------------------------------- */

/* Append "&name=value" (no '&' for the first); 0 or -ENOSPC. */
static int param(struct buf *b, const char *name, const char *v)
{
	int r = 0;
	if (b->len)
		r = buf_puts(b, "&");
	if (r == 0)
		r = buf_puts(b, name);
	if (r == 0)
		r = buf_puts(b, "=");
	if (r == 0)
		r = sms_pct_encode(b, v, strlen(v));
	return r;
}

static int twilio_send(struct chan *c, const struct chan_msg *m, chan_done_cb done, void *arg)
{
	struct twilio *t = c->priv;
	if (t->core.stopping || !t->core.http)
		return -ESHUTDOWN;

	struct chan_result res;
	memset(&res, 0, sizeof res);
	res.status = CHAN_PERMFAIL;
	struct sms_count cnt;
	char digits[24], to[26];
	if (sms_recipient_digits(m->to, digits, sizeof digits) < 0) {
		snprintf(res.reason, sizeof res.reason,
		         "invalid recipient: expected an E.164 number such as +989121234567");
		sms_core_report_later(&t->core, done, arg, &res);
		return 0;
	}
	if (sms_opts_check(&t->opts, m->text, &cnt, res.reason, sizeof res.reason) < 0) {
		sms_core_report_later(&t->core, done, arg, &res);
		return 0;
	}
	snprintf(to, sizeof to, "+%s", digits);

	struct buf body;
	buf_init(&body, TWILIO_MAX_REQUEST);
	int r = param(&body, "To", to);
	if (r == 0)
		r = t->from ? param(&body, "From", t->from)
		            : param(&body, "MessagingServiceSid", t->mss);
	if (r == 0)
		r = param(&body, "Body", m->text);
	if (r == 0 && t->status_callback) {
		struct buf cb;
		buf_init(&cb, TWILIO_MAX_REQUEST);
		r = buf_puts(&cb, t->status_callback);
		if (r == 0)
			r = buf_puts(&cb, strchr(t->status_callback, '?') ? "&m=" : "?m=");
		if (r == 0)
			r = sms_pct_encode(&cb, m->id ? m->id : "", m->id ? strlen(m->id) : 0);
		char sig[CALLBACK_SIG_LEN + 1];
		if (r == 0 && m->id && callback_sign("dlr", m->id, sig) == 0) {
			r = buf_puts(&cb, "&k=");
			if (r == 0)
				r = buf_puts(&cb, sig);
		}
		if (r == 0)
			r = param(&body, "StatusCallback", cb.p);
		buf_free(&cb);
	}
	if (r < 0) {
		buf_free(&body);
		snprintf(res.reason, sizeof res.reason, "request too large");
		sms_core_report_later(&t->core, done, arg, &res);
		return 0;
	}

	struct twilio_send *s = xcalloc(1, sizeof *s);
	s->c = c;
	s->done = done;
	s->arg = arg;
	s->cnt = cnt;
	s->id = m->id;
	s->body = buf_steal(&body);
	const char *hdrs[] = {
	    "Content-Type: application/x-www-form-urlencoded",
	    "Accept: application/json",
	    t->auth_hdr,
	    NULL,
	};
	struct http_req rq = {
	    .method = "POST",
	    .url = t->url,
	    .headers = hdrs,
	    .body = s->body,
	    .body_len = strlen(s->body),
	    .timeout_ms = c->cfg->timeout_ms,
	    .max_body = TWILIO_MAX_ANSWER,
	};
	r = http_request(t->core.http, &rq, twilio_done, s);
	if (r < 0) {
		free(s->body);
		free(s);
		return r;
	}
	t->core.sending++;
	return 0;
}

static void twilio_stop(struct chan *c, void (*stopped)(struct chan *c))
{
	struct twilio *t = c->priv;
	sms_core_stop(&t->core, stopped);
}

static void twilio_destroy(struct chan *c)
{
	struct twilio *t = c->priv;
	if (!t)
		return;
	secret_free(t->token);
	secret_free(t->userpass);
	secret_free(t->auth_hdr);
	free(t->url);
	free(t->account_sid);
	free(t->from);
	free(t->mss);
	free(t->status_callback);
	sms_opts_free(&t->opts);
	free(t);
	c->priv = NULL;
}

const struct chan_driver chan_sms_twilio_driver = {
    .name = "twilio",
    .configure = twilio_configure,
    .start = twilio_start,
    .send = twilio_send,
    .stop = twilio_stop,
    .destroy = twilio_destroy,
};

int twilio_verify_status_callback(const struct chan *c, const char *msg_id, const char *sig,
                                  const char *const *names, const char *const *values, size_t n,
                                  const char *signature)
{
	if (!c || c->drv != &chan_sms_twilio_driver || !c->priv)
		return -EINVAL;
	const struct twilio *t = c->priv;
	if (!t->status_callback || !msg_id || !sig || !signature)
		return -EINVAL;
	/* The URL exactly as send() gave it to Twilio (ids need no encoding). */
	char *url = xasprintf("%s%sm=%s&k=%s", t->status_callback,
	                      strchr(t->status_callback, '?') ? "&" : "?", msg_id, sig);
	int rc = twilio_sig_verify(t->token, url, names, values, n, signature);
	free(url);
	return rc;
}
