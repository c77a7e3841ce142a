/*
 * sms_kavenegar.c - driver "kavenegar": SMS through Kavenegar's REST API,
 * and the client half of its delivery-status polling.
 *
 * Send: POST {base_url}/v1/{APIKEY}/sms/send.json, form-urlencoded
 *   receptor (the number's digits without '+': 989121234567), sender (a
 *   line number, optional: the account's default line), message (UTF-8),
 *   localid (kavenegar_localid(our message id): numeric, as Kavenegar
 *   wants it).  The answer is JSON {"return": {"status", "message"},
 *   "entries": [{"messageid", "status", "cost", ...}]} whatever the HTTP
 *   status (Kavenegar answers errors with HTTP status = return.status).
 *   return.status 200 is OK with provider id = messageid (an entry status
 *   of 6 failed, 11, 13 or 14 is a PERMFAIL); the other codes map through
 *   the table kv_codes below (Kavenegar's documented table); an answer
 *   without JSON maps by HTTP status (5xx, 3xx, 408, 429: TEMPFAIL).
 * Poll: GET {base_url}/v1/{APIKEY}/sms/statuslocalmessageid.json
 *   ?localid=a,b,c (up to 500), entries [{"localid", "messageid",
 *   "status"}] mapped to pending / delivered / undelivered / unknown.
 *
 * Owns: copies of its keys, the API key and the two URLs that carry it
 * (wiped on destroy), one reference on the loop's shared HTTP client
 * (struct sms_core).  Never logs URLs (the key is in the path), the key or
 * message text; reasons never carry the key.  Limits: a send answer is
 * capped at 16 KiB, a poll answer at 1 MiB, a request at 512 KiB; one
 * recipient per send, KAVENEGAR_STATUS_MAX ids per poll.
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
#include "log.h"
#include "sms_providers.h"
#include "sms_segments.h"
#include "util.h"

#define KV_MAX_ANSWER      (16 * 1024)
#define KV_MAX_POLL_ANSWER (1024 * 1024)
#define KV_MAX_REQUEST     (512 * 1024)
#define KV_DEFAULT_URL     "https://api.kavenegar.com"
#define KV_CREDIT_RETRY_MS 60000

struct kavenegar {
	struct sms_core core;
	struct sms_opts opts;
	char *key;
	char *send_url;   /* carries the key */
	char *status_url; /* carries the key */
	const char *secrets[2];
	int64_t credit_warned_at; /* mono ms of the last insufficient-credit warning */
};

struct kv_send {
	struct chan *c;
	chan_done_cb done;
	void *arg;
	struct sms_count cnt;
	char *body;
};

struct kv_poll {
	struct chan *c;
	void (*cb)(void *arg, int err, const struct kavenegar_status *st, size_t n);
	void *arg;
	size_t n;
	struct kavenegar_status *st;
};

/* ---- Kavenegar's return.status table ------------------------------------------ */

enum kv_kind { KV_PERM, KV_TEMP, KV_AUTH, KV_CREDIT };

static const struct kv_code {
	int code;
	enum kv_kind kind;
	const char *text;
} kv_codes[] = {
    {400, KV_PERM, "missing or invalid parameters"},
    {401, KV_AUTH, "authentication failed (account disabled)"},
    {402, KV_TEMP, "operation failed"},
    {403, KV_AUTH, "authentication failed (invalid API key)"},
    {404, KV_PERM, "unknown method (check base_url)"},
    {405, KV_PERM, "wrong HTTP method"},
    {406, KV_PERM, "a required parameter is empty"},
    {407, KV_AUTH, "access denied (allow this server's IP in the panel)"},
    {409, KV_TEMP, "server unavailable, try again later"},
    {411, KV_PERM, "invalid receptor"},
    {412, KV_PERM, "invalid sender line"},
    {413, KV_PERM, "message empty or too long"},
    {414, KV_PERM, "too many records in one request"},
    {415, KV_PERM, "start index out of range"},
    {416, KV_AUTH, "source IP does not match the account settings"},
    {417, KV_PERM, "invalid send date"},
    {418, KV_CREDIT, "insufficient credit"},
    {419, KV_PERM, "array lengths differ"},
    {420, KV_PERM, "links in the text are not allowed for this account"},
    {422, KV_PERM, "invalid characters in the data"},
    {424, KV_PERM, "template not found"},
    {426, KV_PERM, "this method needs the advanced service"},
    {427, KV_PERM, "this line needs an access level"},
    {428, KV_PERM, "code by voice call not possible"},
    {429, KV_TEMP, "IP restricted"},
    {431, KV_PERM, "invalid code structure"},
    {432, KV_PERM, "code parameter not found in the text"},
    {451, KV_TEMP, "too many calls in a period"},
    {501, KV_PERM, "test account: only the owner's number may receive"},
    {607, KV_PERM, "invalid tag name"},
};

static const struct kv_code *kv_code_find(int code)
{
	for (size_t i = 0; i < ARRAY_SIZE(kv_codes); i++)
		if (kv_codes[i].code == code)
			return &kv_codes[i];
	return NULL;
}

/* ---- configuration --------------------------------------------------------- */

static int url_ok(const char *u)
{
	if (strncasecmp(u, "http://", 7) != 0 && strncasecmp(u, "https://", 8) != 0)
		return 0;
	for (const char *p = u; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '#' || *p == '?')
			return 0;
	return 1;
}

static int kavenegar_configure(struct chan *c, struct cfg_error *err)
{
	struct cfg_section *sec = c->cfg->sec;
	struct kavenegar *k = xcalloc(1, sizeof *k);
	c->priv = k;

	const char *base = cfg_sec_str(sec, "base_url", KV_DEFAULT_URL);
	if (!url_ok(base)) {
		cfg_error_set(err, sec, "base_url",
		              "must be an http:// or https:// URL without white space, '?' or '#', "
		              "e.g. https://api.kavenegar.com");
		return -1;
	}
	if (cfg_sec_secret(sec, "api_key_file", &k->key, err) < 0)
		return -1;
	if (!k->key) {
		cfg_error_set(err, sec, "api_key_file",
		              "is required (the panel's API key, in a file)");
		return -1;
	}
	size_t kl = strlen(k->key);
	int key_ok = kl <= 256;
	for (size_t i = 0; i < kl; i++)
		if ((unsigned char)k->key[i] <= ' ' || (unsigned char)k->key[i] >= 0x7f)
			key_ok = 0;
	if (!key_ok) {
		cfg_error_set(err, sec, "api_key_file",
		              "the API key must be 1 to 256 printable ASCII characters without "
		              "white space");
		return -1;
	}
	k->secrets[0] = k->key;

	if (sms_opts_configure(sec, &k->opts, err) < 0)
		return -1;
	if (k->opts.sender) {
		size_t n = strlen(k->opts.sender);
		int ok = n >= 3 && n <= 20;
		for (size_t i = 0; i < n; i++)
			if (k->opts.sender[i] < '0' || k->opts.sender[i] > '9')
				ok = 0;
		if (!ok) {
			cfg_error_set(err, sec, "sender",
			              "must be a Kavenegar line number (3 to 20 digits), e.g. "
			              "10004346");
			return -1;
		}
	}
	int64_t v;
	if (cfg_sec_int(sec, "max_host_connections", 16, 1, 1024, &v, err) < 0)
		return -1;
	k->core.max_host = (int)v;

	size_t bl = strlen(base);
	while (bl > 0 && base[bl - 1] == '/')
		bl--;
	struct buf kp;
	buf_init(&kp, 0);
	sms_pct_encode(&kp, k->key, kl);
	k->send_url = xasprintf("%.*s/v1/%s/sms/send.json", (int)bl, base, kp.p);
	k->status_url = xasprintf("%.*s/v1/%s/sms/statuslocalmessageid.json", (int)bl, base, kp.p);
	explicit_bzero(kp.p, kp.len);
	buf_free(&kp);
	return 0;
}

static int kavenegar_start(struct chan *c, uv_loop_t *loop)
{
	struct kavenegar *k = c->priv;
	return sms_core_start(&k->core, c, loop);
}

/* ---- localids -------------------------------------------------------------------- */

void kavenegar_localid(const char *msg_id, char out[KAVENEGAR_LOCALID_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	const char *s = msg_id ? msg_id : "";
	uint64_t v = 0;
	if (EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL) == 1 && mdlen >= 8)
		for (int i = 0; i < 8; i++)
			v = (v << 8) | md[i];
	v &= UINT64_C(0x7fffffffffffffff); /* a positive 64-bit long */
	if (v == 0)
		v = 1;
	snprintf(out, KAVENEGAR_LOCALID_LEN, "%llu", (unsigned long long)v);
}

const char *kavenegar_state_name(enum kavenegar_state s)
{
	switch (s) {
	case KAVENEGAR_PENDING:
		return "pending";
	case KAVENEGAR_DELIVERED:
		return "delivered";
	case KAVENEGAR_UNDELIVERED:
		return "undelivered";
	default:
		return "unknown";
	}
}

/* ---- answers ------------------------------------------------------------------ */

/* return.status of a Kavenegar answer, or -1 when the body is not one. */
static int kv_return_status(json_t *j, const char **msg)
{
	*msg = NULL;
	if (!json_is_object(j))
		return -1;
	json_t *r = json_object_get(j, "return");
	if (!json_is_object(r))
		return -1;
	json_t *st = json_object_get(r, "status");
	int64_t v;
	if (json_is_integer(st))
		v = json_integer_value(st);
	else if (!json_is_string(st) || parse_i64(json_string_value(st), 0, 999, &v) < 0)
		return -1;
	if (v < 0 || v > 999)
		return -1;
	json_t *m = json_object_get(r, "message");
	if (json_is_string(m))
		*msg = json_string_value(m);
	return (int)v;
}

/* A non-negative integer or digit string into out (decimal); 0 or -1. */
static int json_id(json_t *v, char *out, size_t n)
{
	out[0] = '\0';
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		snprintf(out, n, "%lld", (long long)json_integer_value(v));
		return 0;
	}
	int64_t x;
	if (json_is_string(v) && parse_i64(json_string_value(v), 0, INT64_MAX, &x) == 0) {
		snprintf(out, n, "%lld", (long long)x);
		return 0;
	}
	return -1;
}

static void kv_warn_credit(struct kavenegar *k)
{
	int64_t now = mono_ms();
	if (k->credit_warned_at && now - k->credit_warned_at < 60000)
		return;
	k->credit_warned_at = now;
	log_warnx("sms",
	          "chan=%s driver=kavenegar status=418 note=\"insufficient credit: top up the "
	          "Kavenegar account; sends are deferred and retried\"",
	          k->core.c->cfg->name);
}

/* Map a return.status other than 200 into res. */
static void kv_map_code(struct kavenegar *k, int code, const char *pmsg,
                        const struct http_resp *resp, struct chan_result *res)
{
	const struct kv_code *e = kv_code_find(code);
	enum kv_kind kind = e ? e->kind : code >= 500 && code < 600 ? KV_TEMP : KV_PERM;
	char ex[200] = "";
	if (!e && pmsg)
		sms_excerpt(ex, sizeof ex, pmsg, strlen(pmsg), k->secrets);
	const char *text = e ? e->text : ex[0] ? ex : "unknown status";
	snprintf(res->reason, sizeof res->reason, "kavenegar %d: %s", code, text);
	switch (kind) {
	case KV_TEMP:
		res->status = CHAN_TEMPFAIL;
		res->retry_after_ms = resp->retry_after_ms;
		break;
	case KV_CREDIT:
		res->status = CHAN_TEMPFAIL;
		res->retry_after_ms = resp->retry_after_ms > KV_CREDIT_RETRY_MS
		                          ? resp->retry_after_ms
		                          : KV_CREDIT_RETRY_MS;
		kv_warn_credit(k);
		break;
	case KV_AUTH:
		res->status = CHAN_PERMFAIL;
		sms_core_warn_auth(&k->core, "kavenegar", code);
		break;
	default:
		res->status = CHAN_PERMFAIL;
		break;
	}
}

static const char *entry_status_text(int64_t st)
{
	switch (st) {
	case 6:
		return "failed";
	case 11:
		return "undelivered";
	case 13:
		return "cancelled";
	case 14:
		return "blocked";
	default:
		return NULL;
	}
}

static void kv_send_answer(struct kavenegar *k, struct kv_send *s, const struct http_resp *resp,
                           struct chan_result *res)
{
	json_t *j = json_loadb(resp->body, resp->body_len, 0, NULL);
	const char *pmsg;
	int rs = kv_return_status(j, &pmsg);
	if (rs < 0) {
		long st = resp->status;
		char ex[200];
		sms_excerpt(ex, sizeof ex, resp->body, resp->body_len, k->secrets);
		int perm = st >= 400 && st < 500 && st != 408 && st != 429;
		res->status = perm ? CHAN_PERMFAIL : CHAN_TEMPFAIL;
		if (!perm)
			res->retry_after_ms = resp->retry_after_ms;
		if (st >= 200 && st < 300)
			snprintf(res->reason, sizeof res->reason,
			         "kavenegar http %ld: unreadable answer", st);
		else
			snprintf(res->reason, sizeof res->reason, "kavenegar http %ld%s%s", st,
			         ex[0] ? ": " : "", ex);
		if (st == 401 || st == 403)
			sms_core_warn_auth(&k->core, "kavenegar", st);
		json_decref(j);
		return;
	}
	if (rs != 200) {
		kv_map_code(k, rs, pmsg, resp, res);
		json_decref(j);
		return;
	}
	res->status = CHAN_OK;
	res->segments = s->cnt.segments;
	res->cost_micros = sms_cost_micros(s->cnt.segments, k->opts.price);
	json_t *entries = json_object_get(j, "entries");
	json_t *e = json_is_array(entries) ? json_array_get(entries, 0) : NULL;
	if (json_is_object(e)) {
		json_id(json_object_get(e, "messageid"), res->provider_id, sizeof res->provider_id);
		json_t *st = json_object_get(e, "status");
		const char *bad =
		    json_is_integer(st) ? entry_status_text(json_integer_value(st)) : NULL;
		if (bad) {
			res->status = CHAN_PERMFAIL;
			res->segments = 0;
			res->cost_micros = 0;
			snprintf(res->reason, sizeof res->reason, "kavenegar entry status %lld: %s",
			         (long long)json_integer_value(st), bad);
		} else if (k->opts.price <= 0) {
			/* no price configured: Kavenegar's own cost (rials) */
			json_t *cost = json_object_get(e, "cost");
			if (json_is_integer(cost) && json_integer_value(cost) > 0 &&
			    json_integer_value(cost) < INT64_MAX / 1000000)
				res->cost_micros = json_integer_value(cost) * 1000000;
		}
	}
	if (res->status == CHAN_OK && !res->provider_id[0])
		log_warnx("sms",
		          "chan=%s driver=kavenegar note=\"accepted without a messageid: status is "
		          "polled by localid only\"",
		          k->core.c->cfg->name);
	json_decref(j);
}

static void kv_send_done(void *arg, const struct http_resp *resp)
{
	struct kv_send *s = arg;
	struct chan *c = s->c;
	struct kavenegar *k = c->priv;
	struct chan_result res;
	memset(&res, 0, sizeof res);
	if (resp->err != HTTP_E_NONE)
		sms_transport_fail(&res, resp, k->secrets);
	else
		kv_send_answer(k, s, resp, &res);
	chan_done_cb done = s->done;
	void *darg = s->arg;
	free(s->body);
	free(s);
	done(darg, &res);
	sms_core_request_done(&k->core);
}

/* ---- sending ---------------------------------------------------------------- */

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

static const char *const kv_headers[] = {
    "Content-Type: application/x-www-form-urlencoded",
    "Accept: application/json",
    NULL,
};

static int kavenegar_send(struct chan *c, const struct chan_msg *m, chan_done_cb done, void *arg)
{
	struct kavenegar *k = c->priv;
	if (k->core.stopping || !k->core.http)
		return -ESHUTDOWN;

	struct chan_result res;
	memset(&res, 0, sizeof res);
	res.status = CHAN_PERMFAIL;
	struct sms_count cnt;
	char digits[24], localid[KAVENEGAR_LOCALID_LEN];
	if (sms_recipient_digits(m->to, digits, sizeof digits) < 0) {
		snprintf(res.reason, sizeof res.reason,
		         "invalid recipient: expected an E.164 number such as +989121234567");
		sms_core_report_later(&k->core, done, arg, &res);
		return 0;
	}
	if (sms_opts_check(&k->opts, m->text, &cnt, res.reason, sizeof res.reason) < 0) {
		sms_core_report_later(&k->core, done, arg, &res);
		return 0;
	}
	kavenegar_localid(m->id, localid);

	struct buf body;
	buf_init(&body, KV_MAX_REQUEST);
	int r = param(&body, "receptor", digits);
	if (r == 0 && k->opts.sender)
		r = param(&body, "sender", k->opts.sender);
	if (r == 0)
		r = param(&body, "message", m->text);
	if (r == 0)
		r = param(&body, "localid", localid);
	if (r < 0) {
		buf_free(&body);
		snprintf(res.reason, sizeof res.reason, "request too large");
		sms_core_report_later(&k->core, done, arg, &res);
		return 0;
	}
	struct kv_send *s = xcalloc(1, sizeof *s);
	s->c = c;
	s->done = done;
	s->arg = arg;
	s->cnt = cnt;
	s->body = buf_steal(&body);
	struct http_req rq = {
	    .method = "POST",
	    .url = k->send_url,
	    .headers = kv_headers,
	    .body = s->body,
	    .body_len = strlen(s->body),
	    .timeout_ms = c->cfg->timeout_ms,
	    .max_body = KV_MAX_ANSWER,
	};
	r = http_request(k->core.http, &rq, kv_send_done, s);
	if (r < 0) {
		free(s->body);
		free(s);
		return r;
	}
	k->core.sending++;
	return 0;
}

/* ---- status polling -------------------------------------------------------------- */

static enum kavenegar_state kv_state(int64_t code)
{
	switch (code) {
	case 1:
	case 2:
	case 4:
	case 5:
		return KAVENEGAR_PENDING;
	case 10:
		return KAVENEGAR_DELIVERED;
	case 6:
	case 11:
	case 13:
	case 14:
		return KAVENEGAR_UNDELIVERED;
	default:
		return KAVENEGAR_UNKNOWN;
	}
}

/* 0 with p->st filled from the answer, or a negative errno. */
static int kv_poll_answer(struct kavenegar *k, struct kv_poll *p, const struct http_resp *resp)
{
	json_t *j = json_loadb(resp->body, resp->body_len, 0, NULL);
	const char *pmsg;
	int rs = kv_return_status(j, &pmsg);
	int err = 0;
	if (rs < 0) {
		long st = resp->status;
		if (st == 401 || st == 403)
			err = -EACCES;
		else if (st >= 500 || st == 408 || st == 429 || (st >= 300 && st < 400))
			err = -EAGAIN;
		else
			err = -EPROTO;
	} else if (rs != 200) {
		const struct kv_code *e = kv_code_find(rs);
		enum kv_kind kind = e ? e->kind : rs >= 500 && rs < 600 ? KV_TEMP : KV_PERM;
		if (kind == KV_AUTH) {
			err = -EACCES;
			sms_core_warn_auth(&k->core, "kavenegar", rs);
		} else if (kind == KV_CREDIT) {
			err = -EAGAIN;
			kv_warn_credit(k);
		} else {
			err = kind == KV_TEMP ? -EAGAIN : -EINVAL;
		}
	} else {
		json_t *entries = json_object_get(j, "entries");
		size_t i;
		json_t *e;
		if (!json_is_array(entries) && !json_is_null(entries) && entries)
			err = -EPROTO;
		json_array_foreach(entries, i, e)
		{
			char lid[KAVENEGAR_LOCALID_LEN];
			if (!json_is_object(e) ||
			    json_id(json_object_get(e, "localid"), lid, sizeof lid) < 0)
				continue;
			json_t *sv = json_object_get(e, "status");
			int64_t code;
			if (json_is_integer(sv))
				code = json_integer_value(sv);
			else if (!json_is_string(sv) ||
			         parse_i64(json_string_value(sv), 0, 999, &code) < 0)
				continue;
			if (code < 0 || code > 999)
				continue;
			for (size_t x = 0; x < p->n; x++) {
				struct kavenegar_status *s = &p->st[x];
				if (strcmp(s->localid, lid) != 0)
					continue;
				s->code = (int)code;
				s->state = kv_state(code);
				s->blocked = code == 14;
				json_id(json_object_get(e, "messageid"), s->messageid,
				        sizeof s->messageid);
				if (strcmp(s->messageid, "0") == 0)
					s->messageid[0] = '\0';
			}
		}
	}
	if (err < 0)
		log_info("sms", "chan=%s driver=kavenegar poll=status err=%s http=%ld code=%d",
		         k->core.c->cfg->name, log_q(strerror(-err)), resp->status, rs);
	json_decref(j);
	return err;
}

static void kv_poll_done(void *arg, const struct http_resp *resp)
{
	struct kv_poll *p = arg;
	struct kavenegar *k = p->c->priv;
	int err;
	switch (resp->err) {
	case HTTP_E_NONE:
		err = kv_poll_answer(k, p, resp);
		break;
	case HTTP_E_TIMEOUT:
		err = -ETIMEDOUT;
		break;
	case HTTP_E_CONNECT:
		err = -ECONNREFUSED;
		break;
	case HTTP_E_CANCELLED:
		err = -ECANCELED;
		break;
	case HTTP_E_TOO_LARGE:
		err = -EPROTO;
		break;
	default:
		err = -EIO;
		break;
	}
	p->cb(p->arg, err, err == 0 ? p->st : NULL, err == 0 ? p->n : 0);
	free(p->st);
	free(p);
	sms_core_request_done(&k->core);
}

int kavenegar_status_by_localid(struct chan *c, const char *const *msg_ids, size_t n,
                                void (*cb)(void *arg, int err, const struct kavenegar_status *st,
                                           size_t n),
                                void *arg)
{
	if (!c || c->drv != &chan_sms_kavenegar_driver || !c->priv || !cb || !msg_ids || n == 0)
		return -EINVAL;
	if (n > KAVENEGAR_STATUS_MAX)
		return -E2BIG;
	for (size_t i = 0; i < n; i++)
		if (!msg_ids[i])
			return -EINVAL;
	struct kavenegar *k = c->priv;
	if (k->core.stopping || !k->core.http)
		return -ESHUTDOWN;

	struct kv_poll *p = xcalloc(1, sizeof *p);
	p->c = c;
	p->cb = cb;
	p->arg = arg;
	p->n = n;
	p->st = xcalloc(n, sizeof *p->st);
	struct buf url;
	buf_init(&url, 0); /* bounded: 500 ids of at most 19 digits */
	buf_puts(&url, k->status_url);
	buf_puts(&url, "?localid=");
	for (size_t i = 0; i < n; i++) {
		struct kavenegar_status *s = &p->st[i];
		s->msg_id = msg_ids[i];
		s->state = KAVENEGAR_UNKNOWN;
		kavenegar_localid(msg_ids[i], s->localid);
		if (i)
			buf_puts(&url, ",");
		buf_puts(&url, s->localid);
	}
	struct http_req rq = {
	    .method = "GET",
	    .url = url.p,
	    .headers = kv_headers + 1, /* Accept only */
	    .timeout_ms = c->cfg->timeout_ms,
	    .max_body = KV_MAX_POLL_ANSWER,
	};
	int r = http_request(k->core.http, &rq, kv_poll_done, p);
	explicit_bzero(url.p, url.len); /* libcurl copied it; it carries the key */
	buf_free(&url);
	if (r < 0) {
		free(p->st);
		free(p);
		return r;
	}
	k->core.sending++;
	return 0;
}

/* ---- stop ---------------------------------------------------------------------- */

static void kavenegar_stop(struct chan *c, void (*stopped)(struct chan *c))
{
	struct kavenegar *k = c->priv;
	sms_core_stop(&k->core, stopped);
}

static void kavenegar_destroy(struct chan *c)
{
	struct kavenegar *k = c->priv;
	if (!k)
		return;
	secret_free(k->key);
	secret_free(k->send_url);
	secret_free(k->status_url);
	sms_opts_free(&k->opts);
	free(k);
	c->priv = NULL;
}

const struct chan_driver chan_sms_kavenegar_driver = {
    .name = "kavenegar",
    .configure = kavenegar_configure,
    .start = kavenegar_start,
    .send = kavenegar_send,
    .stop = kavenegar_stop,
    .destroy = kavenegar_destroy,
};
