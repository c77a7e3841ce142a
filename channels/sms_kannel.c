/*
 * sms_kannel.c - driver "kannel": SMS through Kannel's sendsms interface.
 *
 * GET (default): every parameter in the query string, percent-encoded:
 *   username, password, from, to, text (UTF-8), charset=UTF-8,
 *   coding (0 GSM 7-bit, 2 UCS-2), dlr-mask, dlr-url, smsc.
 * POST: what Kannel's smsbox really accepts for a POST (it refuses
 *   application/x-www-form-urlencoded with 400 "Invalid content-type"): the
 *   text as the body with Content-Type: text/plain; charset=UTF-8 and the
 *   parameters as X-Kannel-Username, X-Kannel-Password, X-Kannel-From,
 *   X-Kannel-To, X-Kannel-Coding, X-Kannel-DLR-Mask, X-Kannel-DLR-Url and
 *   X-Kannel-SMSC headers.  This keeps the password out of URLs (and out of
 *   the access logs of proxies in between).
 * The dlr-url is clubd's callback base with "m=<message id>&k=<sig>&s=%d&t=%T&to=%p&f=%F"
 * appended; Kannel fills the %-codes (DLR type, time, the handset number)
 * when it calls back.
 * Answers: 2xx ("0: Accepted for delivery", "3: Queued for later
 * delivery", "Sent.") OK with provider id "" (our id travels in the
 * dlr-url); 4xx other than 408/429 PERMFAIL "kannel N: <first line>"; 3xx,
 * 408, 429, 5xx ("503 Temporal failure, try again later.") and transport
 * errors TEMPFAIL with Retry-After.
 *
 * Owns: copies of its keys, the password (wiped on destroy), one reference
 * on the loop's shared HTTP client (through struct sms_core).  Never logs
 * URLs, the password or message text; reasons never carry the password.
 * Limits: the answer body is capped at 16 KiB; one recipient per send.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "channel.h"
#include "http.h"
#include "callback.h"
#include "log.h"
#include "sms_drivers.h"
#include "sms_segments.h"
#include "util.h"

#define KANNEL_MAX_ANSWER  (16 * 1024)
#define KANNEL_MAX_REQUEST (512 * 1024)

struct kannel {
	struct sms_core core;
	struct sms_opts opts;
	char *url;
	char *username;
	char *password;
	int post;
	char *dlr_url; /* NULL: no delivery reports asked for */
	int dlr_mask;
	char *smsc;
	int strip_plus;
	const char *secrets[2];
};

struct kannel_send {
	struct chan *c;
	chan_done_cb done;
	void *arg;
	struct sms_count cnt;
};

/* ---- configuration --------------------------------------------------------- */

static int url_ok(const char *u)
{
	if (strncasecmp(u, "http://", 7) != 0 && strncasecmp(u, "https://", 8) != 0)
		return 0;
	for (const char *p = u; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '#')
			return 0;
	return 1;
}

static int token_ok(const char *s, size_t max, const char *extra)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return 0;
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (extra && strchr(extra, c))))
			return 0;
	}
	return 1;
}

static int kannel_configure(struct chan *c, struct cfg_error *err)
{
	struct cfg_section *sec = c->cfg->sec;
	struct kannel *k = xcalloc(1, sizeof *k);
	c->priv = k;

	const char *url = cfg_sec_str_req(sec, "url", err);
	if (!url)
		return -1;
	/* The URL itself is never echoed. */
	if (!url_ok(url)) {
		cfg_error_set(err, sec, "url",
		              "must be an http:// or https:// URL without white space, control "
		              "characters or '#', e.g. http://127.0.0.1:13013/cgi-bin/sendsms");
		return -1;
	}
	k->url = xstrdup(url);

	const char *user = cfg_sec_str_req(sec, "username", err);
	if (!user)
		return -1;
	if (!token_ok(user, 64, "!#$%&'*+-.^_`|~@:/=")) {
		cfg_error_set(err, sec, "username",
		              "must be 1 to 64 printable ASCII characters without spaces");
		return -1;
	}
	k->username = xstrdup(user);

	if (cfg_sec_secret(sec, "password_file", &k->password, err) < 0)
		return -1;
	if (!k->password) {
		cfg_error_set(err, sec, "password_file",
		              "is required (the sendsms-user password, in a file)");
		return -1;
	}
	for (const char *p = k->password; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			cfg_error_set(err, sec, "password_file",
			              "the password contains control characters");
			return -1;
		}
	k->secrets[0] = k->password;

	const char *method = cfg_sec_str(sec, "method", "get");
	if (strcasecmp(method, "get") == 0) {
		k->post = 0;
	} else if (strcasecmp(method, "post") == 0) {
		k->post = 1;
	} else {
		cfg_error_set(err, sec, "method", "must be get or post");
		return -1;
	}

	const char *dlr = cfg_sec_str(sec, "dlr_url", NULL);
	const char *mask_set = cfg_sec_str(sec, "dlr_mask", NULL);
	if (dlr) {
		if (!url_ok(dlr) || strchr(dlr, '%')) {
			cfg_error_set(err, sec, "dlr_url",
			              "must be an http:// or https:// URL without white space, '#' "
			              "or '%%' (Kannel reads %% as an escape code), e.g. "
			              "https://clubd.example/v1/dlr/kannel");
			return -1;
		}
		if (!callback_enabled()) {
			cfg_error_set(err, sec, "dlr_url",
			              "delivery reports need [api] callback_secret_file (the "
			              "callback URLs are signed)");
			return -1;
		}
		k->dlr_url = xstrdup(dlr);
	} else if (mask_set) {
		cfg_error_set(err, sec, "dlr_mask", "needs dlr_url");
		return -1;
	}
	int64_t v;
	if (cfg_sec_int(sec, "dlr_mask", 31, 1, 63, &v, err) < 0)
		return -1;
	k->dlr_mask = (int)v;

	const char *smsc = cfg_sec_str(sec, "smsc", NULL);
	if (smsc) {
		if (!token_ok(smsc, 64, "._-")) {
			cfg_error_set(err, sec, "smsc",
			              "must be a Kannel smsc-id: 1 to 64 letters, digits, '.', "
			              "'_' or '-'");
			return -1;
		}
		k->smsc = xstrdup(smsc);
	}
	if (cfg_sec_bool(sec, "strip_plus", 1, &k->strip_plus, err) < 0)
		return -1;
	if (cfg_sec_int(sec, "max_host_connections", 16, 1, 1024, &v, err) < 0)
		return -1;
	k->core.max_host = (int)v;
	if (sms_opts_configure(sec, &k->opts, err) < 0)
		return -1;
	return 0;
}

static int kannel_start(struct chan *c, uv_loop_t *loop)
{
	struct kannel *k = c->priv;
	int r = sms_core_start(&k->core, c, loop);
	if (r == 0 && !k->post && strncasecmp(k->url, "https://", 8) != 0)
		log_info("sms",
		         "chan=%s driver=kannel method=get msg=\"the password travels in "
		         "the query string; method = post sends it in a header\"",
		         c->cfg->name);
	return r;
}

/* ---- sending ---------------------------------------------------------------- */

static void kannel_done(void *arg, const struct http_resp *resp)
{
	struct kannel_send *s = arg;
	struct chan *c = s->c;
	struct kannel *k = c->priv;
	struct chan_result res;
	memset(&res, 0, sizeof res);

	if (resp->err != HTTP_E_NONE) {
		sms_transport_fail(&res, resp, k->secrets);
	} else if (resp->status >= 200 && resp->status < 300) {
		res.status = CHAN_OK;
		res.provider_id[0] = '\0'; /* our own id is in the dlr-url */
		res.segments = s->cnt.segments;
		res.cost_micros = sms_cost_micros(s->cnt.segments, k->opts.price);
	} else {
		long st = resp->status;
		char ex[200];
		sms_excerpt(ex, sizeof ex, resp->body, resp->body_len, k->secrets);
		int perm = st >= 400 && st < 500 && st != 408 && st != 429;
		res.status = perm ? CHAN_PERMFAIL : CHAN_TEMPFAIL;
		snprintf(res.reason, sizeof res.reason, "kannel %ld%s%s", st, ex[0] ? ": " : "",
		         ex);
		if (!perm)
			res.retry_after_ms = resp->retry_after_ms;
		if (st == 401 || (st == 403 && strstr(ex, "Authorization")))
			sms_core_warn_auth(&k->core, "kannel", st);
	}
	chan_done_cb done = s->done;
	void *darg = s->arg;
	free(s);
	done(darg, &res);
	sms_core_request_done(&k->core);
}

/* Append "&name=value" (no '&' for the first); 0 or -ENOSPC. */
static int param(struct buf *b, int *first, const char *name, const char *v)
{
	int r = 0;
	if (!*first)
		r = buf_puts(b, "&");
	*first = 0;
	if (r == 0)
		r = buf_puts(b, name);
	if (r == 0)
		r = buf_puts(b, "=");
	if (r == 0)
		r = sms_pct_encode(b, v, strlen(v));
	return r;
}

static int kannel_send(struct chan *c, const struct chan_msg *m, chan_done_cb done, void *arg)
{
	struct kannel *k = c->priv;
	if (k->core.stopping || !k->core.http)
		return -ESHUTDOWN;

	struct chan_result res;
	memset(&res, 0, sizeof res);
	struct sms_count cnt;
	char digits[24];
	if (sms_recipient_digits(m->to, digits, sizeof digits) < 0) {
		res.status = CHAN_PERMFAIL;
		snprintf(res.reason, sizeof res.reason,
		         "invalid recipient: expected an E.164 number such as +989121234567");
		sms_core_report_later(&k->core, done, arg, &res);
		return 0;
	}
	if (sms_opts_check(&k->opts, m->text, &cnt, res.reason, sizeof res.reason) < 0) {
		res.status = CHAN_PERMFAIL;
		sms_core_report_later(&k->core, done, arg, &res);
		return 0;
	}
	char to[26];
	snprintf(to, sizeof to, "%s%s", k->strip_plus ? "" : "+", digits);
	char coding[2] = {cnt.ucs2 ? '2' : '0', '\0'};
	char mask[16];
	snprintf(mask, sizeof mask, "%d", k->dlr_mask);

	struct buf dlr;
	buf_init(&dlr, 0);
	if (k->dlr_url) {
		buf_puts(&dlr, k->dlr_url);
		buf_puts(&dlr, strchr(k->dlr_url, '?') ? "&m=" : "?m=");
		sms_pct_encode(&dlr, m->id ? m->id : "", m->id ? strlen(m->id) : 0);
		char sig[CALLBACK_SIG_LEN + 1];
		if (m->id && callback_sign("dlr", m->id, sig) == 0) {
			buf_puts(&dlr, "&k=");
			buf_puts(&dlr, sig);
		}
		buf_puts(&dlr, "&s=%d&t=%T&to=%p&f=%F");
	}

	struct kannel_send *s = xcalloc(1, sizeof *s);
	s->c = c;
	s->done = done;
	s->arg = arg;
	s->cnt = cnt;

	struct buf url;
	buf_init(&url, KANNEL_MAX_REQUEST);
	char *hdrs[12];
	size_t nh = 0;
	struct http_req rq = {
	    .timeout_ms = c->cfg->timeout_ms,
	    .max_body = KANNEL_MAX_ANSWER,
	};
	int r = 0;
	if (!k->post) {
		int first = 1;
		struct {
			const char *name, *value;
		} ps[] = {
		    {"username", k->username},
		    {"password", k->password},
		    {"from", k->opts.sender},
		    {"to", to},
		    {"text", m->text},
		    {"charset", "UTF-8"},
		    {"coding", coding},
		    {"dlr-mask", k->dlr_url ? mask : NULL},
		    {"dlr-url", k->dlr_url ? dlr.p : NULL},
		    {"smsc", k->smsc},
		};
		r = buf_puts(&url, k->url);
		if (r == 0)
			r = buf_puts(&url, strchr(k->url, '?') ? "&" : "?");
		for (size_t i = 0; r == 0 && i < ARRAY_SIZE(ps); i++)
			if (ps[i].value)
				r = param(&url, &first, ps[i].name, ps[i].value);
		rq.method = "GET";
	} else {
		buf_puts(&url, k->url);
		hdrs[nh++] = xstrdup("Content-Type: text/plain; charset=UTF-8");
		hdrs[nh++] = xasprintf("X-Kannel-Username: %s", k->username);
		hdrs[nh++] = xasprintf("X-Kannel-Password: %s", k->password);
		if (k->opts.sender)
			hdrs[nh++] = xasprintf("X-Kannel-From: %s", k->opts.sender);
		hdrs[nh++] = xasprintf("X-Kannel-To: %s", to);
		hdrs[nh++] = xasprintf("X-Kannel-Coding: %s", coding);
		if (k->dlr_url) {
			hdrs[nh++] = xasprintf("X-Kannel-DLR-Mask: %s", mask);
			hdrs[nh++] = xasprintf("X-Kannel-DLR-Url: %s", dlr.p);
		}
		if (k->smsc)
			hdrs[nh++] = xasprintf("X-Kannel-SMSC: %s", k->smsc);
		hdrs[nh] = NULL;
		rq.method = "POST";
		rq.headers = (const char *const *)hdrs;
		rq.body = m->text; /* borrowed until done, like every chan_msg string */
		rq.body_len = strlen(m->text);
	}
	rq.url = url.p;
	if (r < 0) {
		res.status = CHAN_PERMFAIL;
		snprintf(res.reason, sizeof res.reason, "request too large");
		free(s);
		sms_core_report_later(&k->core, done, arg, &res);
		r = 0;
	} else {
		r = http_request(k->core.http, &rq, kannel_done, s);
		if (r < 0)
			free(s);
		else
			k->core.sending++;
	}
	/* libcurl copied the URL and the headers: wipe our copies of the password */
	if (url.p)
		explicit_bzero(url.p, url.len);
	buf_free(&url);
	for (size_t i = 0; i < nh; i++) {
		explicit_bzero(hdrs[i], strlen(hdrs[i]));
		free(hdrs[i]);
	}
	buf_free(&dlr);
	return r;
}

static void kannel_stop(struct chan *c, void (*stopped)(struct chan *c))
{
	struct kannel *k = c->priv;
	sms_core_stop(&k->core, stopped);
}

static void kannel_destroy(struct chan *c)
{
	struct kannel *k = c->priv;
	if (!k)
		return;
	if (k->password) {
		explicit_bzero(k->password, strlen(k->password));
		free(k->password);
	}
	free(k->url);
	free(k->username);
	free(k->dlr_url);
	free(k->smsc);
	sms_opts_free(&k->opts);
	free(k);
	c->priv = NULL;
}

const struct chan_driver chan_sms_kannel_driver = {
    .name = "kannel",
    .configure = kannel_configure,
    .start = kannel_start,
    .send = kannel_send,
    .stop = kannel_stop,
    .destroy = kannel_destroy,
};
