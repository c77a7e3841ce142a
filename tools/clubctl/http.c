/*
 * http.c - one libcurl easy handle for the whole clubctl run: builds each
 * request (method, URL, headers, in-memory or streamed body), collects the
 * answer into a capped buffer and reports transport failures as text.
 *
 * Owns the CURL handle and the Authorization header; the token is never
 * printed, never passed to another process, and the header copy is zeroed
 * before it is freed.  Never follows redirects (the token would follow) and
 * speaks only http and https.  Limits: blocking, one request at a time,
 * answers up to HTTP_MAX_ANSWER bytes (unless they go to a sink).
 */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clubctl.h"

struct http {
	CURL *curl;
	char *base;
	char *auth; /* "Authorization: Bearer ..." or NULL */
	int64_t timeout_ms;
	char *noproxy;
};

struct xfer {
	const struct http_req *rq;
	struct http_resp *rs;
	int overflow;
	CURL *curl;
	int sink_failed;
};

struct http *http_new(const char *base_url, const char *token, int64_t timeout_ms)
{
	static int inited;
	if (!inited) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return NULL;
		inited = 1;
	}
	struct http *h = xcalloc(1, sizeof *h);
	h->curl = curl_easy_init();
	if (!h->curl) {
		free(h);
		return NULL;
	}
	h->base = xstrdup(base_url);
	if (token && *token)
		h->auth = xasprintf("Authorization: Bearer %s", token);
	h->timeout_ms = timeout_ms;
	/* loopback never goes through a proxy from the environment */
	const char *np = getenv("no_proxy");
	if (!np || !*np)
		np = getenv("NO_PROXY");
	h->noproxy = np && *np ? xasprintf("localhost,127.0.0.1,::1,%s", np)
	                       : xstrdup("localhost,127.0.0.1,::1");
	return h;
}

static void wipe(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
}

void http_free(struct http *h)
{
	if (!h)
		return;
	curl_easy_cleanup(h->curl);
	wipe(h->auth);
	free(h->auth);
	free(h->base);
	free(h->noproxy);
	free(h);
}

char *http_escape(struct http *h, const char *s)
{
	char *e = curl_easy_escape(h->curl, s, (int)strlen(s));
	if (!e)
		abort(); /* only fails on OOM */
	char *out = xstrdup(e);
	curl_free(e);
	return out;
}

const char *http_version(void)
{
	static char v[64];
	curl_version_info_data *d = curl_version_info(CURLVERSION_NOW);
	snprintf(v, sizeof v, "libcurl/%s", d && d->version ? d->version : "?");
	return v;
}

static size_t on_write(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	if (x->rq->sink) {
		long status = 0;
		curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200 && status <= 299) {
			if (x->rq->sink(p, size * n, x->rq->arg) != 0) {
				x->sink_failed = 1;
				return 0;
			}
			return size * n;
		}
	}
	if (buf_append(&x->rs->body, p, size * n) < 0) {
		x->overflow = 1;
		return 0;
	}
	return size * n;
}

static size_t on_read(char *dst, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t got = x->rq->read(dst, size * n, x->rq->arg);
	return got == HTTP_READ_ABORT ? CURL_READFUNC_ABORT : got;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	struct xfer *x = arg;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	return x->rq->progress(x->rq->arg, (int64_t)ulnow);
}

void http_resp_free(struct http_resp *rs)
{
	buf_free(&rs->body);
}

static void wipe_list(struct curl_slist *l)
{
	for (struct curl_slist *i = l; i; i = i->next)
		wipe(i->data);
	curl_slist_free_all(l);
}

int http_do(struct http *h, const struct http_req *rq, struct http_resp *rs)
{
	CURL *c = h->curl;
	struct xfer x = {.rq = rq, .rs = rs, .curl = c};
	struct curl_slist *hdrs = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	char *url = xasprintf("%s%s", h->base, rq->path);
	char *ctype = NULL;
	int rc = 0;

	memset(rs, 0, sizeof *rs);
	buf_init(&rs->body, HTTP_MAX_ANSWER);
	curl_easy_reset(c); /* keeps the live connection */
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, h->noproxy);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "clubctl/" CLUBCTL_VERSION);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	long conn_ms = h->timeout_ms < 10000 ? (long)h->timeout_ms : 10000;
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, conn_ms);
	if (rq->stall_timeout) {
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
		long secs = (long)((h->timeout_ms + 999) / 1000);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, secs > 0 ? secs : 1L);
	} else {
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
	}

	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (h->auth)
		hdrs = curl_slist_append(hdrs, h->auth);
	if (rq->ctype) {
		ctype = xasprintf("Content-Type: %s", rq->ctype);
		hdrs = curl_slist_append(hdrs, ctype);
	}
	for (size_t i = 0; rq->headers && rq->headers[i]; i++)
		hdrs = curl_slist_append(hdrs, rq->headers[i]);
	if (!hdrs)
		abort();

	if (rq->read) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, &x);
		if (rq->size >= 0)
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->size);
		else
			hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
		if (rq->max_send_bps > 0)
			curl_easy_setopt(c, CURLOPT_MAX_SEND_SPEED_LARGE,
			                 (curl_off_t)rq->max_send_bps);
	} else if (rq->body || strcmp(rq->method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
		                 (curl_off_t)(rq->body ? rq->body_len : 0));
	} else if (strcmp(rq->method, "GET") == 0) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	}
	if (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "POST") != 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
	if (rq->progress) {
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);

	CURLcode res = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (res == CURLE_OK || (status >= 400 && rs->body.len > 0 && !x.overflow &&
	                        (res == CURLE_SEND_ERROR || res == CURLE_RECV_ERROR))) {
		/* a complete answer, or an early error answer the server sent
		 * before closing an upload it refused (401, 413) */
		rs->status = status;
	} else {
		if (x.overflow)
			snprintf(rs->err, sizeof rs->err, "answer larger than %u bytes",
			         HTTP_MAX_ANSWER);
		else if (x.sink_failed)
			snprintf(rs->err, sizeof rs->err, "cannot write the answer out");
		else
			snprintf(rs->err, sizeof rs->err, "%s",
			         errbuf[0] ? errbuf : curl_easy_strerror(res));
		rc = -EIO;
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	wipe_list(hdrs);
	free(ctype);
	free(url);
	return rc;
}
