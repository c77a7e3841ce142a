/*
 * api_dlr.c - delivery report callbacks from providers: Kannel's dlr-url
 * (GET /v1/dlr/kannel?m=ID&k=SIG&s=%d...) and Twilio's StatusCallback
 * (POST /v1/dlr/twilio?m=ID&k=SIG, form body).  No bearer token: each URL
 * carries our own signature of the message id (daemon/callback.c), so only
 * URLs we handed out are accepted.  A report becomes lua/msg_report.lua:
 * sent -> delivered | failed; duplicates and out-of-order reports are
 * harmless there.  Twilio's X-Twilio-Signature (HMAC-SHA1 of the URL and the
 * sorted form fields with the account's auth token) is checked too when a
 * twilio channel is configured.  Knows no key names.
 *
 * Limits: form bodies 16 KiB; values 200 bytes.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "callback.h"
#include "log.h"
#include "sms_providers.h"
#include "util.h"

#define FORM_MAX  (16 * 1024)
#define VALUE_MAX 200

enum report { REPORT_DELIVERED, REPORT_UNDELIVERED, REPORT_PROGRESS, REPORT_UNKNOWN };
static const char *const report_names[] = {"delivered", "undelivered", "progress"};

/* Kannel's %d: 1 delivered to phone, 2 non-delivered to phone, 4 queued on
 * SMSC, 8 delivered to SMSC, 16 non-delivered to SMSC. */
static enum report kannel_report(const char *s)
{
	int64_t v;
	if (!s || parse_i64(s, 0, 1024, &v) < 0)
		return REPORT_UNKNOWN;
	if (v & 1)
		return REPORT_DELIVERED;
	if (v & (2 | 16))
		return REPORT_UNDELIVERED;
	if (v & (4 | 8))
		return REPORT_PROGRESS;
	return REPORT_UNKNOWN;
}

static enum report twilio_report(const char *s)
{
	if (!s)
		return REPORT_UNKNOWN;
	if (strcmp(s, "delivered") == 0 || strcmp(s, "read") == 0)
		return REPORT_DELIVERED;
	if (strcmp(s, "undelivered") == 0 || strcmp(s, "failed") == 0)
		return REPORT_UNDELIVERED;
	if (strcmp(s, "queued") == 0 || strcmp(s, "sent") == 0 || strcmp(s, "sending") == 0 ||
	    strcmp(s, "accepted") == 0 || strcmp(s, "scheduled") == 0)
		return REPORT_PROGRESS;
	return REPORT_UNKNOWN;
}

/* A provider's code as we store it: printable ASCII, bounded. */
static void clean_code(const char *in, char *out, size_t n)
{
	size_t o = 0;
	for (; in && *in && o + 1 < n; in++)
		if (isalnum((unsigned char)*in) || *in == '-' || *in == '_' || *in == '.')
			out[o++] = *in;
	out[o] = '\0';
}

static void on_reported(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		const char *st = rep->type == REDIS_REPLY_ARRAY && rep->elements > 0
		                     ? reply_str(rep->element[0])
		                     : NULL;
		if (st && strcmp(st, "gone") == 0)
			api_reply_error(rq, 404, "not_found", "m", "no such message");
		else
			api_reply_raw(rq, 200, "text/plain; charset=utf-8", "OK\n", 3);
	}
	api_release(rq);
}

/* Check the signature and record the report; answers the request. */
static void report(struct api_req *rq, const char *provider, const char *id, const char *sig,
                   enum report what, const char *code, const char *smsc_id)
{
	struct app *app = api_app(rq);
	if (!id || !id_valid(id)) {
		api_reply_error(rq, 400, "invalid_field", "m", "not a message id");
		return;
	}
	if (!callback_verify("dlr", id, sig)) {
		log_warnx("dlr", "provider=%s msg=%s bad or missing signature", provider, id);
		api_reply_error(rq, 403, "forbidden", "k", "bad callback signature");
		return;
	}
	if (what == REPORT_UNKNOWN) {
		/* Not a state we act on: acknowledge so the provider stops. */
		api_reply_raw(rq, 200, "text/plain; charset=utf-8", "OK\n", 3);
		return;
	}
	if (!api_store_ready(rq))
		return;
	char c[64];
	clean_code(code, c, sizeof c);
	struct argv a;
	argv_init(&a);
	argv_add(&a, id);
	argv_addll(&a, now_ms());
	argv_add(&a, report_names[what]);
	argv_add(&a, c);
	argv_add(&a, provider);
	argv_addll(&a, app->cfg->contacts_timeline_max);
	char sid[64];
	clean_code(smsc_id, sid, sizeof sid);
	argv_add(&a, sid);
	api_hold(rq);
	store_eval(app->st, SCRIPT_MSG_REPORT, &a, on_reported, rq);
	argv_free(&a);
	log_debug("dlr", "provider=%s msg=%s report=%s code=%s", provider, id, report_names[what],
	          c);
}

static void h_kannel(struct api_req *rq)
{
	const char *s = api_query(rq, "s");
	report(rq, "kannel", api_query(rq, "m"), api_query(rq, "k"), kannel_report(s), s,
	       api_query(rq, "f"));
}

/* application/x-www-form-urlencoded -------------------------------------- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode [p, p+n) into out (cap n_out); 0 or -1 when malformed or too long. */
static int form_decode(const char *p, size_t n, char *out, size_t n_out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)p[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (i + 2 >= n)
				return -1;
			int h = hexval(p[i + 1]), l = hexval(p[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = h * 16 + l;
			i += 2;
		}
		if (c == 0 || o + 1 >= n_out)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* The value of name in a form body, decoded into out; 1 found, 0 not, -1 bad. */
static int form_get(const char *body, const char *name, char *out, size_t n_out)
{
	size_t nl = strlen(name);
	for (const char *p = body; p && *p;) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		if (eq && (size_t)(eq - p) == nl && memcmp(p, name, nl) == 0)
			return form_decode(eq + 1, len - nl - 1, out, n_out) < 0 ? -1 : 1;
		p = amp ? amp + 1 : NULL;
	}
	return 0;
}

static void form_free(void *p)
{
	struct buf *b = p;
	buf_free(b);
	free(b);
}

static void h_twilio(struct api_req *rq)
{
	struct buf *b = xcalloc(1, sizeof *b);
	buf_init(b, FORM_MAX);
	api_set_data(rq, b, form_free);
}

static long twilio_chunk(struct api_req *rq, const char *data, size_t len)
{
	struct buf *b = api_data(rq);
	if (buf_append(b, data, len) < 0) {
		api_reply_error(rq, 413, "body_too_large", NULL, "form bodies are at most 16 KiB");
		return -1;
	}
	return (long)len;
}

#define FORM_FIELDS 64

/* Every field of a form body, decoded; -1 when malformed or too many. */
static int form_all(const char *body, char **names, char **values, size_t *n)
{
	*n = 0;
	for (const char *p = body; p && *p;) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		if (len > 0) {
			if (*n == FORM_FIELDS)
				return -1;
			size_t nl = eq ? (size_t)(eq - p) : len;
			names[*n] = xmalloc(nl + 1);
			values[*n] = xmalloc(len + 1);
			int bad = form_decode(p, nl, names[*n], nl + 1) < 0 ||
			          form_decode(eq ? eq + 1 : p + len, eq ? len - nl - 1 : 0,
			                      values[*n], len + 1) < 0;
			(*n)++;
			if (bad)
				return -1;
		}
		p = amp ? amp + 1 : NULL;
	}
	return 0;
}

/* With a twilio channel configured, its X-Twilio-Signature must match as
 * well (our own k already proves the URL is ours). 1 ok, 0 refused. */
static int twilio_signature_ok(struct api_req *rq, const char *body)
{
	struct app *app = api_app(rq);
	const struct chan *tw = NULL;
	for (size_t i = 0; i < app->nchans && !tw; i++)
		if (app->chans[i].drv == &chan_sms_twilio_driver)
			tw = &app->chans[i];
	if (!tw)
		return 1;
	const char *sig = api_header(rq, "X-Twilio-Signature");
	char *names[FORM_FIELDS], *values[FORM_FIELDS];
	size_t n = 0;
	int ok = 0;
	if (sig && form_all(body, names, values, &n) == 0)
		ok = twilio_verify_status_callback(tw, api_query(rq, "m"), api_query(rq, "k"),
		                                   (const char *const *)names,
		                                   (const char *const *)values, n, sig) == 0;
	for (size_t i = 0; i < n; i++) {
		free(names[i]);
		free(values[i]);
	}
	return ok;
}

static void twilio_end(struct api_req *rq)
{
	struct buf *b = api_data(rq);
	char status[VALUE_MAX], code[VALUE_MAX];
	const char *body = b->p ? b->p : "";
	if (!twilio_signature_ok(rq, body)) {
		log_warnx("dlr", "provider=twilio bad or missing X-Twilio-Signature");
		api_reply_error(rq, 403, "forbidden", "X-Twilio-Signature",
		                "bad Twilio request signature");
		return;
	}
	int rs = form_get(body, "MessageStatus", status, sizeof status);
	int rc = form_get(body, "ErrorCode", code, sizeof code);
	if (rs < 0 || rc < 0) {
		api_reply_error(rq, 400, "invalid_field", NULL, "malformed form body");
		return;
	}
	if (rs == 0) {
		api_reply_error(rq, 400, "missing_field", "MessageStatus",
		                "MessageStatus is required");
		return;
	}
	char sid[VALUE_MAX];
	if (form_get(body, "MessageSid", sid, sizeof sid) != 1)
		sid[0] = '\0';
	report(rq, "twilio", api_query(rq, "m"), api_query(rq, "k"), twilio_report(status),
	       rc == 1 && *code ? code : status, sid);
}

const struct api_route api_dlr_routes[] = {
    {"GET", "/v1/dlr/kannel", ROLE_NONE, API_BODY_NONE, h_kannel, NULL, NULL},
    {"POST", "/v1/dlr/twilio", ROLE_NONE, API_BODY_STREAM, h_twilio, twilio_chunk, twilio_end},
};
const size_t api_dlr_nroutes = ARRAY_SIZE(api_dlr_routes);
