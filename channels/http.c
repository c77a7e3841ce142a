/*
 * http.c - one libcurl multi handle per loop, driven by libuv.
 *
 * Owns: the multi handle, one uv_poll_t per socket curl asks us to watch
 * (CURLMOPT_SOCKETFUNCTION), one uv_timer_t for curl's timeout
 * (CURLMOPT_TIMERFUNCTION), and an easy handle per request from
 * http_request() until its done callback.  Connections, DNS cache and TLS
 * sessions are shared through the multi handle, so keep-alive reuse works
 * across drivers.
 *
 * Never touches: what a request means (drivers map status codes to
 * results), retries, URLs in logs (they may hold API keys).  Limits: the
 * response body is capped per request, headers by libcurl (100 KiB); no
 * redirects, http/https only (a request's setup hook may allow another
 * protocol: IMAP), HTTP/2 only over TLS (h2c is broken in curl
 * 7.88).  Everything runs on the loop thread; curl callbacks never call back
 * into curl except curl_multi_assign.  A client is freed only after its
 * last uv handle's close callback.
 */
#include "http.h"

#include <assert.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "util.h"

struct http_sock {
	uv_poll_t poll;
	curl_socket_t fd;
	struct http_client *h;
	struct http_sock *prev, *next;
};

struct http_xfer {
	struct http_client *h;
	CURL *easy;
	struct curl_slist *hdrs;
	http_done_cb done;
	void *arg;
	struct buf body;
	int too_large;
	int64_t retry_after_ms;
	char content_type[128];
	char errbuf[CURL_ERROR_SIZE];
	struct http_xfer *prev, *next;
};

/* Easy handles kept for reuse: curl_easy_init() zeroes and sets up several
 * KiB per transfer, which showed up at a few percent of CPU in the bench. */
#define HTTP_SPARE_EASY 64

struct http_client {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	int refs;
	int depth;      /* inside our own dispatch of curl results */
	int closing;    /* refs reached 0: no new requests */
	int torn_down;  /* multi cleaned up, handles closing */
	int in_cleanup; /* inside curl_multi_cleanup */
	int open_handles;
	int pending;
	long max_host; /* CURLMOPT_MAX_HOST_CONNECTIONS */
	long max_conns;
	struct http_sock *socks;
	struct http_xfer *xfers;
	struct http_client *next;     /* the per-loop registry */
	CURL *spare[HTTP_SPARE_EASY]; /* finished easy handles, reset for reuse */
	int nspare;
};

static struct http_client *clients; /* loop thread only */

/* ---- handles ---------------------------------------------------------- */

static void client_maybe_free(struct http_client *h)
{
	if (h->torn_down && h->open_handles == 0)
		free(h);
}

static void sock_closed(uv_handle_t *hd)
{
	struct http_sock *s = hd->data;
	struct http_client *h = s->h;
	free(s);
	h->open_handles--;
	client_maybe_free(h);
}

static void sock_close(struct http_client *h, struct http_sock *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		h->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	uv_poll_stop(&s->poll);
	uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static void timer_closed(uv_handle_t *hd)
{
	struct http_client *h = hd->data;
	h->open_handles--;
	client_maybe_free(h);
}

/* ---- completion ------------------------------------------------------- */

static void xfer_unlink(struct http_xfer *x)
{
	struct http_client *h = x->h;
	if (x->prev)
		x->prev->next = x->next;
	else
		h->xfers = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
	h->pending--;
}

static void xfer_free(struct http_xfer *x)
{
	struct http_client *h = x->h;
	if (x->easy && h && !h->closing && h->nspare < HTTP_SPARE_EASY) {
		curl_easy_reset(x->easy);
		h->spare[h->nspare++] = x->easy;
	} else if (x->easy) {
		curl_easy_cleanup(x->easy);
	}
	curl_slist_free_all(x->hdrs);
	buf_free(&x->body);
	free(x);
}

static enum http_error map_curl_error(CURLcode rc, int too_large)
{
	switch (rc) {
	case CURLE_OK:
		return HTTP_E_NONE;
	case CURLE_OPERATION_TIMEDOUT:
		return HTTP_E_TIMEOUT;
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		return HTTP_E_CONNECT;
	case CURLE_WRITE_ERROR:
		return too_large ? HTTP_E_TOO_LARGE : HTTP_E_TRANSPORT;
	default:
		return HTTP_E_TRANSPORT;
	}
}

/* Report one finished (or cancelled) transfer and free it. */
static void xfer_finish(struct http_xfer *x, CURLcode rc, int cancelled)
{
	struct http_client *h = x->h;
	struct http_resp r;
	memset(&r, 0, sizeof r);

	xfer_unlink(x);
	if (h->multi)
		curl_multi_remove_handle(h->multi, x->easy);
	if (cancelled) {
		r.err = HTTP_E_CANCELLED;
		r.error = "cancelled";
	} else {
		r.err = map_curl_error(rc, x->too_large);
		if (r.err == HTTP_E_NONE) {
			long code = 0;
			curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
			r.status = code;
			curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &r.new_connections);
			r.error = "";
		} else if (r.err == HTTP_E_TOO_LARGE) {
			r.error = "response body too large";
		} else {
			r.error = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
		}
	}
	r.retry_after_ms = x->retry_after_ms;
	r.content_type = x->content_type;
	r.body = x->body.p ? x->body.p : "";
	r.body_len = x->body.len;
	log_trace("http", "status=%ld err=%d error=%s body_len=%zu", r.status, (int)r.err,
	          log_q(r.error), r.body_len);
	x->done(x->arg, &r);
	xfer_free(x);
}

static void client_teardown(struct http_client *h)
{
	assert(h->refs == 0 && h->depth == 0 && !h->torn_down);
	h->depth++; /* done callbacks below must not re-enter teardown */
	while (h->xfers)
		xfer_finish(h->xfers, CURLE_OK, 1);
	h->depth--;
	while (h->nspare > 0)
		curl_easy_cleanup(h->spare[--h->nspare]);
	h->in_cleanup = 1;
	curl_multi_cleanup(h->multi);
	h->in_cleanup = 0;
	h->multi = NULL;
	while (h->socks)
		sock_close(h, h->socks);
	uv_timer_stop(&h->timer);
	uv_close((uv_handle_t *)&h->timer, timer_closed);
	h->torn_down = 1;
	client_maybe_free(h);
}

static void drain(struct http_client *h)
{
	CURLMsg *msg;
	int left;
	while (h->multi && (msg = curl_multi_info_read(h->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *e = msg->easy_handle;
		CURLcode rc = msg->data.result;
		char *pv = NULL;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, &pv);
		struct http_xfer *x = (struct http_xfer *)(void *)pv;
		assert(x && x->easy == e);
		xfer_finish(x, rc, 0);
	}
}

/* Tell curl about activity, then report what finished. */
static void client_action(struct http_client *h, curl_socket_t fd, int flags)
{
	int running;
	h->depth++;
	curl_multi_socket_action(h->multi, fd, flags, &running);
	drain(h);
	h->depth--;
	if (h->depth == 0 && h->refs == 0 && !h->torn_down)
		client_teardown(h);
}

/* ---- curl -> libuv ------------------------------------------------------ */

static void poll_cb(uv_poll_t *p, int status, int events)
{
	struct http_sock *s = p->data;
	int flags = 0;
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	else {
		if (events & UV_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	client_action(s->h, s->fd, flags);
}

static void timer_cb(uv_timer_t *t)
{
	client_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int curl_sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *sockp)
{
	(void)e;
	struct http_client *h = userp;
	struct http_sock *s = sockp;

	if (what == CURL_POLL_REMOVE) {
		if (s) {
			sock_close(h, s);
			if (!h->in_cleanup)
				curl_multi_assign(h->multi, fd, NULL);
		}
		return 0;
	}
	if (!s) {
		s = xcalloc(1, sizeof *s);
		int r = uv_poll_init_socket(h->loop, &s->poll, fd);
		if (r < 0) {
			log_err("http", "poll_init failed fd=%d err=%s", (int)fd,
			        log_q(uv_strerror(r)));
			free(s);
			return -1;
		}
		s->poll.data = s;
		s->fd = fd;
		s->h = h;
		s->next = h->socks;
		if (h->socks)
			h->socks->prev = s;
		h->socks = s;
		h->open_handles++;
		curl_multi_assign(h->multi, fd, s);
	}
	int ev = 0;
	if (what & CURL_POLL_IN)
		ev |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		ev |= UV_WRITABLE;
	uv_poll_start(&s->poll, ev, poll_cb);
	return 0;
}

static int curl_timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	(void)m;
	struct http_client *h = userp;
	if (h->torn_down)
		return 0;
	if (timeout_ms < 0)
		uv_timer_stop(&h->timer);
	else
		uv_timer_start(&h->timer, timer_cb, (uint64_t)timeout_ms, 0);
	return 0;
}

/* ---- client lifetime ------------------------------------------------- */

struct http_client *http_client_get(uv_loop_t *loop)
{
	static int curl_ready;
	for (struct http_client *h = clients; h; h = h->next)
		if (h->loop == loop) {
			h->refs++;
			return h;
		}
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			abort();
		curl_ready = 1;
	}
	struct http_client *h = xcalloc(1, sizeof *h);
	h->loop = loop;
	h->refs = 1;
	h->multi = curl_multi_init();
	if (!h->multi)
		abort(); /* out of memory */
	uv_timer_init(loop, &h->timer);
	h->timer.data = h;
	h->open_handles = 1;
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, curl_sock_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	h->max_conns = 16;
	curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, h->max_conns);
	h->next = clients;
	clients = h;
	return h;
}

void http_client_put(struct http_client *h)
{
	if (!h)
		return;
	assert(h->refs > 0);
	if (--h->refs > 0)
		return;
	h->closing = 1;
	for (struct http_client **pp = &clients; *pp; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	if (h->depth == 0)
		client_teardown(h);
	/* else: the dispatch in progress tears down when it unwinds */
}

void http_client_want_connections(struct http_client *h, int per_host)
{
	if (per_host < 1)
		return;
	if (per_host > h->max_host) {
		h->max_host = per_host;
		curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, h->max_host);
	}
	long want = h->max_conns + per_host;
	if (want > 4096)
		want = 4096;
	h->max_conns = want;
	curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, h->max_conns);
}

int http_client_pending(const struct http_client *h)
{
	return h->pending;
}

/* ---- requests ---------------------------------------------------------- */

static size_t write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct http_xfer *x = arg;
	size_t len = size * n;
	if (buf_append(&x->body, p, len) < 0) {
		x->too_large = 1;
		return 0; /* ends the transfer with CURLE_WRITE_ERROR */
	}
	return len;
}

/* Case-insensitive header-name match; returns the trimmed value or NULL. */
static const char *header_value(const char *line, size_t len, const char *name, char *out,
                                size_t cap)
{
	size_t nl = strlen(name);
	if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return NULL;
	const char *v = line + nl + 1, *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	size_t vl = (size_t)(end - v);
	if (vl >= cap)
		vl = cap - 1;
	memcpy(out, v, vl);
	out[vl] = '\0';
	return out;
}

static size_t header_cb(char *p, size_t size, size_t n, void *arg)
{
	struct http_xfer *x = arg;
	size_t len = size * n;
	char v[128];
	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		/* a new response (after 1xx): forget the previous one's headers */
		x->retry_after_ms = 0;
		x->content_type[0] = '\0';
	} else if (header_value(p, len, "retry-after", v, sizeof v)) {
		int64_t ms;
		if (http_parse_retry_after(v, now_ms(), &ms) == 0)
			x->retry_after_ms = ms;
	} else if (header_value(p, len, "content-type", v, sizeof v)) {
		memcpy(x->content_type, v, sizeof x->content_type);
		x->content_type[sizeof x->content_type - 1] = '\0';
	}
	return len;
}

static int method_ok(const char *m)
{
	if (!*m || strlen(m) > 16)
		return 0;
	for (; *m; m++)
		if (*m < 'A' || *m > 'Z')
			return 0;
	return 1;
}

int http_request(struct http_client *h, const struct http_req *rq, http_done_cb done, void *arg)
{
	if (h->closing)
		return -ESHUTDOWN;
	if (!rq->url || !done)
		return -EINVAL;
	const char *method = rq->method ? rq->method : (rq->body ? "POST" : "GET");
	if (!method_ok(method))
		return -EINVAL;

	struct http_xfer *x = xcalloc(1, sizeof *x);
	x->h = h;
	x->done = done;
	x->arg = arg;
	buf_init(&x->body, rq->max_body ? rq->max_body : HTTP_MAX_BODY_DEFAULT);
	x->easy = h->nspare > 0 ? h->spare[--h->nspare] : curl_easy_init();
	if (!x->easy)
		abort(); /* out of memory */

	for (const char *const *hp = rq->headers; hp && *hp; hp++) {
		if (strpbrk(*hp, "\r\n")) {
			xfer_free(x);
			return -EINVAL;
		}
		struct curl_slist *l = curl_slist_append(x->hdrs, *hp);
		if (!l)
			abort();
		x->hdrs = l;
	}
	/* No "Expect: 100-continue" round trip on larger bodies. */
	struct curl_slist *l = curl_slist_append(x->hdrs, "Expect:");
	if (!l)
		abort();
	x->hdrs = l;

	int64_t timeout = rq->timeout_ms > 0 ? rq->timeout_ms : HTTP_TIMEOUT_DEFAULT;
	int64_t ctimeout = rq->connect_timeout_ms > 0 ? rq->connect_timeout_ms : timeout;
	CURL *e = x->easy;
	CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (rc == CURLE_OK)                                                                \
			rc = curl_easy_setopt(e, opt, val);                                        \
	} while (0)
	SET(CURLOPT_URL, rq->url);
	SET(CURLOPT_PRIVATE, (void *)x);
	SET(CURLOPT_ERRORBUFFER, x->errbuf);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_TIMEOUT_MS, (long)timeout);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)ctimeout);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_USERAGENT, "clubd");
	SET(CURLOPT_HTTPHEADER, x->hdrs);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_WRITEDATA, (void *)x);
	SET(CURLOPT_HEADERFUNCTION, header_cb);
	SET(CURLOPT_HEADERDATA, (void *)x);
	if (strcmp(method, "GET") == 0) {
		SET(CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		SET(CURLOPT_NOBODY, 1L);
	} else {
		if (strcmp(method, "POST") != 0)
			SET(CURLOPT_CUSTOMREQUEST, method);
		if (rq->body || strcmp(method, "POST") == 0) {
			SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(rq->body ? rq->body_len : 0));
			SET(CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
		}
	}
#undef SET
	/* HTTP/2 only over TLS, never h2c; a libcurl without HTTP/2 refuses
	 * this and speaks HTTP/1.1, which is fine. */
	(void)curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	if (rc != CURLE_OK) {
		log_warnx("http", "request setup failed error=%s", log_q(curl_easy_strerror(rc)));
		xfer_free(x);
		return -EINVAL;
	}
	if (rq->setup) {
		int r = rq->setup(e, rq->setup_arg);
		if (r < 0) {
			xfer_free(x);
			return r;
		}
	}
	CURLMcode mc = curl_multi_add_handle(h->multi, e);
	if (mc != CURLM_OK) {
		log_warnx("http", "add_handle failed error=%s", log_q(curl_multi_strerror(mc)));
		xfer_free(x);
		return -EIO;
	}
	x->next = h->xfers;
	if (h->xfers)
		h->xfers->prev = x;
	h->xfers = x;
	h->pending++;
	return 0;
}

int http_parse_retry_after(const char *v, int64_t now, int64_t *out_ms)
{
	char s[128];
	if (!v)
		return -EINVAL;
	while (*v == ' ' || *v == '\t')
		v++;
	size_t n = strlen(v);
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r' || v[n - 1] == '\n'))
		n--;
	if (n == 0 || n >= sizeof s)
		return -EINVAL;
	memcpy(s, v, n);
	s[n] = '\0';
	if (isdigit((unsigned char)s[0])) {
		int64_t sec;
		/* delta-seconds; anything beyond ten years is nonsense */
		if (parse_i64(s, 0, 315360000, &sec) < 0)
			return -EINVAL;
		*out_ms = sec * 1000;
		return 0;
	}
	/* An HTTP-date names a weekday; curl_getdate alone is too lenient. */
	if (!isalpha((unsigned char)s[0]))
		return -EINVAL;
	time_t t = curl_getdate(s, NULL);
	if (t == (time_t)-1)
		return -EINVAL;
	int64_t d = (int64_t)t * 1000 - now;
	*out_ms = d > 0 ? d : 0;
	return 0;
}
