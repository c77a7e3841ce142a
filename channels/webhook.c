/*
 * webhook.c - driver "webhook": POST each message as signed JSON.
 *
 * Body: {"id","channel","category","contact_id","to","subject","text",
 * "html","attempt","created_at"} (chan_msg_json).  Headers: Content-Type,
 * X-Clubd-Message-Id, X-Clubd-Timestamp (unix seconds) and
 * X-Clubd-Signature: sha256=hex(HMAC-SHA256(secret, timestamp "." body)).
 * Results: 2xx OK (provider id = the answer's JSON "id" string), 429, 408,
 * 5xx and transport errors TEMPFAIL (with Retry-After), 3xx TEMPFAIL (no
 * redirects are followed: the URL needs fixing), other 4xx PERMFAIL.
 *
 * Owns: its copy of the URL and the secret (wiped on destroy), one
 * reference on the loop's shared HTTP client.  Never logs the URL, the
 * secret or bodies.  Limits: the answer body is capped at 64 KiB; per-send
 * deadline is the channel's timeout_ms.
 */
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "channel.h"
#include "http.h"
#include "log.h"
#include "util.h"

#define WEBHOOK_MAX_ANSWER (64 * 1024)

struct webhook {
	char *url;
	char *secret; /* NULL with insecure_no_signature = yes */
	size_t secret_len;
	int max_host;
	struct http_client *http;
	int sending;
	int stopping;
	void (*stopped)(struct chan *c);
};

struct webhook_send {
	struct chan *c;
	chan_done_cb done;
	void *arg;
	char *body;
};

static int webhook_configure(struct chan *c, struct cfg_error *err)
{
	struct cfg_section *sec = c->cfg->sec;
	struct webhook *w = xcalloc(1, sizeof *w);
	c->priv = w;

	const char *url = cfg_sec_str_req(sec, "url", err);
	if (!url)
		return -1;
	/* The URL itself is never echoed: it may carry a key. */
	if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0) {
		cfg_error_set(err, sec, "url", "must start with http:// or https://");
		return -1;
	}
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			cfg_error_set(err, sec, "url",
			              "contains white space or control characters");
			return -1;
		}
	w->url = xstrdup(url);

	int insecure;
	if (cfg_sec_bool(sec, "insecure_no_signature", 0, &insecure, err) < 0)
		return -1;
	if (cfg_sec_secret(sec, "secret_file", &w->secret, err) < 0)
		return -1;
	if (w->secret) {
		w->secret_len = strlen(w->secret);
	} else if (!insecure) {
		cfg_error_set(err, sec, "secret_file",
		              "is required (or insecure_no_signature = yes)");
		return -1;
	}

	int64_t mh;
	if (cfg_sec_int(sec, "max_host_connections", 16, 1, 1024, &mh, err) < 0)
		return -1;
	w->max_host = (int)mh;
	return 0;
}

static int webhook_start(struct chan *c, uv_loop_t *loop)
{
	struct webhook *w = c->priv;
	w->http = http_client_get(loop);
	http_client_want_connections(w->http, w->max_host);
	if (!w->secret)
		log_warnx("webhook", "chan=%s requests are not signed (insecure_no_signature)",
		          c->cfg->name);
	return 0;
}

static void webhook_finish_stop(struct chan *c)
{
	struct webhook *w = c->priv;
	void (*stopped)(struct chan *) = w->stopped;
	w->stopped = NULL;
	http_client_put(w->http);
	w->http = NULL;
	if (stopped)
		stopped(c);
}

/* Copy the answer's "id" when it is a JSON object with an "id" string. */
static void provider_id(const struct http_resp *resp, char *out, size_t n)
{
	out[0] = '\0';
	if (resp->body_len == 0)
		return;
	json_t *j = json_loadb(resp->body, resp->body_len, 0, NULL);
	if (!j)
		return;
	json_t *id = json_object_get(j, "id");
	if (json_is_string(id)) {
		const char *s = json_string_value(id);
		size_t len = strlen(s);
		int ok = 1;
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
				ok = 0;
		if (ok) {
			if (len >= n) {
				len = n - 1;
				/* do not cut a UTF-8 sequence in half */
				while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
					len--;
			}
			memcpy(out, s, len);
			out[len] = '\0';
		}
	}
	json_decref(j);
}

static void webhook_done(void *arg, const struct http_resp *resp)
{
	struct webhook_send *s = arg;
	struct chan *c = s->c;
	struct webhook *w = c->priv;
	struct chan_result res;
	memset(&res, 0, sizeof res);

	if (resp->err == HTTP_E_NONE) {
		long st = resp->status;
		if (st >= 200 && st < 300) {
			res.status = CHAN_OK;
			provider_id(resp, res.provider_id, sizeof res.provider_id);
		} else {
			if (st >= 400 && st < 500 && st != 408 && st != 429)
				res.status = CHAN_PERMFAIL;
			else
				res.status = CHAN_TEMPFAIL;
			snprintf(res.reason, sizeof res.reason, "http %ld", st);
			if (res.status == CHAN_TEMPFAIL)
				res.retry_after_ms = resp->retry_after_ms;
		}
	} else {
		res.status = CHAN_TEMPFAIL;
		switch (resp->err) {
		case HTTP_E_TIMEOUT:
			snprintf(res.reason, sizeof res.reason, "timeout");
			break;
		case HTTP_E_CONNECT:
			snprintf(res.reason, sizeof res.reason, "connect: %s", resp->error);
			break;
		case HTTP_E_TOO_LARGE:
			snprintf(res.reason, sizeof res.reason, "response too large");
			break;
		case HTTP_E_CANCELLED:
			snprintf(res.reason, sizeof res.reason, "cancelled");
			break;
		default:
			snprintf(res.reason, sizeof res.reason, "http: %s", resp->error);
			break;
		}
	}
	chan_done_cb done = s->done;
	void *darg = s->arg;
	free(s->body);
	free(s);
	w->sending--;
	done(darg, &res);
	if (w->stopping && w->sending == 0 && w->stopped)
		webhook_finish_stop(c);
}

/* Header-safe: printable ASCII only, so no header can be forged. */
static int header_safe(const char *s, size_t max)
{
	size_t n = 0;
	for (; *s; s++, n++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e || n >= max)
			return 0;
	return n > 0;
}

static int webhook_send(struct chan *c, const struct chan_msg *m, chan_done_cb done, void *arg)
{
	struct webhook *w = c->priv;
	if (w->stopping || !w->http)
		return -ESHUTDOWN;

	char *body = chan_msg_json(m, -1);
	size_t blen = strlen(body);
	char h_ts[64], h_id[160], h_sig[192];
	const char *hdrs[6];
	size_t nh = 0;
	long long ts = (long long)(now_ms() / 1000);

	hdrs[nh++] = "Content-Type: application/json";
	if (m->id && header_safe(m->id, 128)) {
		snprintf(h_id, sizeof h_id, "X-Clubd-Message-Id: %s", m->id);
		hdrs[nh++] = h_id;
	}
	snprintf(h_ts, sizeof h_ts, "X-Clubd-Timestamp: %lld", ts);
	hdrs[nh++] = h_ts;
	if (w->secret) {
		struct buf in;
		buf_init(&in, 0);
		buf_printf(&in, "%lld.", ts);
		buf_append(&in, body, blen);
		unsigned char mac[EVP_MAX_MD_SIZE];
		unsigned int maclen = 0;
		if (!HMAC(EVP_sha256(), w->secret, (int)w->secret_len, (unsigned char *)in.p,
		          in.len, mac, &maclen)) {
			buf_free(&in);
			free(body);
			return -EIO;
		}
		buf_free(&in);
		char hex[2 * EVP_MAX_MD_SIZE + 1];
		hex_encode(mac, maclen, hex);
		snprintf(h_sig, sizeof h_sig, "X-Clubd-Signature: sha256=%s", hex);
		hdrs[nh++] = h_sig;
	}
	hdrs[nh] = NULL;

	struct webhook_send *s = xcalloc(1, sizeof *s);
	s->c = c;
	s->done = done;
	s->arg = arg;
	s->body = body;
	struct http_req rq = {
	    .method = "POST",
	    .url = w->url,
	    .headers = hdrs,
	    .body = body,
	    .body_len = blen,
	    .timeout_ms = c->cfg->timeout_ms,
	    .max_body = WEBHOOK_MAX_ANSWER,
	};
	int r = http_request(w->http, &rq, webhook_done, s);
	if (r < 0) {
		free(body);
		free(s);
		return r;
	}
	w->sending++;
	return 0;
}

static void webhook_stop(struct chan *c, void (*stopped)(struct chan *c))
{
	struct webhook *w = c->priv;
	w->stopping = 1;
	w->stopped = stopped;
	if (w->sending == 0)
		webhook_finish_stop(c);
}

static void webhook_destroy(struct chan *c)
{
	struct webhook *w = c->priv;
	if (!w)
		return;
	if (w->secret) {
		explicit_bzero(w->secret, w->secret_len);
		free(w->secret);
	}
	free(w->url);
	free(w);
	c->priv = NULL;
}

const struct chan_driver chan_webhook_driver = {
    .name = "webhook",
    .configure = webhook_configure,
    .start = webhook_start,
    .send = webhook_send,
    .stop = webhook_stop,
    .destroy = webhook_destroy,
};
