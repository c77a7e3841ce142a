/*
 * test_api.c - the HTTP glue against real sockets on 127.0.0.1.
 *
 * Each test starts an api_server on an ephemeral port with a small route
 * table, runs the uv loop in the main thread and drives it from a client
 * thread (libcurl easy handles and raw sockets).  The client thread only
 * records failures (CHECK); cmocka asserts in the main thread after the
 * join, and every test ends with api_server_close() and uv_loop_close() == 0.
 * Waits are bounded hang guards, never pass/fail thresholds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "log.h"
#include "util.h"

/* ---- harness ------------------------------------------------------------ */

struct h;
typedef void (*h_fn)(struct h *h, void *arg);

struct h {
	uv_loop_t loop;
	struct config *cfg;
	struct api_server *s;
	int port;
	char dir[64];
	char tokens[128];
	char base[64];

	uv_async_t async;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	h_fn fn;
	void *arg;
	int pending;
	int close_requested;
	int closed;

	void (*scenario)(struct h *h);
	int failures;
	uint64_t sent[6]; /* responses seen by the client, by class */

	atomic_int never_calls;
	atomic_int never_frees;
	atomic_int echo_calls;
	atomic_int echo_done;
	atomic_int slow_late; /* 1 + api_replied() seen by the late reply */
	atomic_int stream_frees;
};

#define CHECK(h, cond)                                                                             \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
			(h)->failures++;                                                           \
		}                                                                                  \
	} while (0)

static void sha256_hex(const char *s, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	assert_int_equal(EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL), 1);
	hex_encode(md, 32, out);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void write_tokens(const char *path, const char *extra)
{
	char v[65], m[65], a[65];
	sha256_hex("viewer-token", v);
	sha256_hex("marketer-token", m);
	sha256_hex("admin-token", a);
	char *text = xasprintf("# name role sha256\n\nviewer viewer %s\nmarketer marketer %s\n"
	                       "  admin\tadmin %s   # trailing comment\n%s",
	                       v, m, a, extra ? extra : "");
	write_file(path, text);
	free(text);
}

static struct config *cfg_new(struct h *h)
{
	struct config *c = xcalloc(1, sizeof *c);
	c->api_listen = xstrdup("127.0.0.1");
	c->api_port = 0;
	c->api_tokens_file = xstrdup(h->tokens);
	c->api_max_body = 1024;
	c->api_max_bulk_body = 4096;
	c->api_max_connections = 64;
	c->api_connection_timeout_ms = 30000;
	c->api_request_timeout_ms = 10000;
	c->api_port_file = NULL;
	return c;
}

static void cfg_free(struct config *c)
{
	free(c->api_listen);
	free(c->api_tokens_file);
	free(c->api_port_file);
	free(c);
}

static void h_init(struct h *h)
{
	memset(h, 0, sizeof *h);
	snprintf(h->dir, sizeof h->dir, "/tmp/test_api.XXXXXX");
	assert_non_null(mkdtemp(h->dir));
	snprintf(h->tokens, sizeof h->tokens, "%s/tokens", h->dir);
	write_tokens(h->tokens, NULL);
	assert_int_equal(uv_loop_init(&h->loop), 0);
	h->cfg = cfg_new(h);
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
}

static void h_fini(struct h *h)
{
	assert_int_equal(uv_loop_close(&h->loop), 0);
	cfg_free(h->cfg);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	char *cmd = xasprintf("rm -rf '%s'", h->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

/* Run fn(h, arg) on the loop thread and wait for it. */
static void h_call(struct h *h, h_fn fn, void *arg)
{
	pthread_mutex_lock(&h->mu);
	h->fn = fn;
	h->arg = arg;
	h->pending = 1;
	uv_async_send(&h->async);
	while (h->pending)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
}

static void on_async(uv_async_t *a)
{
	struct h *h = a->data;
	pthread_mutex_lock(&h->mu);
	if (h->pending) {
		h->fn(h, h->arg);
		h->pending = 0;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
}

static void on_server_closed(void *arg)
{
	struct h *h = arg;
	h->closed = 1;
}

static void do_close(struct h *h, void *arg)
{
	(void)arg;
	h->close_requested = 1;
	api_server_close(h->s, on_server_closed, h);
	uv_close((uv_handle_t *)&h->async, NULL);
}

static void do_stats(struct h *h, void *arg)
{
	api_server_stats(h->s, arg);
}

static void do_stop_intake(struct h *h, void *arg)
{
	(void)arg;
	api_server_stop_intake(h->s);
}

struct reload {
	struct config *cfg;
	int rc;
	struct cfg_error err;
};

static void do_reload(struct h *h, void *arg)
{
	struct reload *r = arg;
	r->rc = api_server_reload(h->s, r->cfg, &r->err);
}

/* Bounded wait for a counter set on the loop thread. */
static int wait_for(atomic_int *v, int want)
{
	for (int i = 0; i < 10000; i++) {
		if (atomic_load(v) >= want)
			return 1;
		struct timespec ts = {0, 2 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return 0;
}

/* ---- routes (loop thread) ----------------------------------------------- */

static void h_ping(struct api_req *rq)
{
	api_reply_json(rq, 200, json_pack("{s:b}", "ok", 1));
}

struct echo {
	uv_timer_t t;
	struct api_req *rq;
	struct h *h;
};

static void echo_closed(uv_handle_t *hd)
{
	struct echo *e = hd->data;
	api_release(e->rq);
	atomic_fetch_add(&e->h->echo_done, 1);
	free(e);
}

static void echo_fire(uv_timer_t *t)
{
	struct echo *e = t->data;
	struct api_req *rq = e->rq;
	api_reply_json(rq, 200,
	               json_pack("{s:O,s:s,s:s}", "echo", api_json(rq), "token", api_token_name(rq),
	                         "role", api_role_name(api_req_role(rq))));
	uv_close((uv_handle_t *)&e->t, echo_closed);
}

static void h_echo(struct api_req *rq)
{
	struct h *h = api_app(rq);
	struct echo *e = xcalloc(1, sizeof *e);
	atomic_fetch_add(&h->echo_calls, 1);
	e->rq = rq;
	e->h = h;
	api_hold(rq);
	uv_timer_init(&h->loop, &e->t);
	e->t.data = e;
	uv_timer_start(&e->t, echo_fire, 20, 0);
}

static void h_item_get(struct api_req *rq)
{
	const char *q = api_query(rq, "q");
	api_reply_json(rq, 200,
	               json_pack("{s:s,s:s?,s:s,s:s}", "id", api_param(rq, "id"), "q", q, "role",
	                         api_role_name(api_req_role(rq)), "method", api_method(rq)));
}

static void h_item_del(struct api_req *rq)
{
	api_reply_json(
	    rq, 200,
	    json_pack("{s:s,s:s}", "deleted", api_param(rq, "id"), "token", api_token_name(rq)));
}

static void never_free(void *p)
{
	struct h *h = p;
	atomic_fetch_add(&h->never_frees, 1);
}

static void h_never(struct api_req *rq)
{
	struct h *h = api_app(rq);
	api_set_data(rq, h, never_free);
	if (api_query(rq, "long"))
		api_set_timeout(rq, 3600 * 1000);
	atomic_fetch_add(&h->never_calls, 1);
}

struct slow {
	uv_timer_t t;
	struct api_req *rq;
	struct h *h;
};

static void slow_closed(uv_handle_t *hd)
{
	free(hd->data);
}

static void slow_fire(uv_timer_t *t)
{
	struct slow *sl = t->data;
	int replied = api_replied(sl->rq);
	/* Late: the deadline answered already, so this is dropped. */
	api_add_header(sl->rq, "X-Late", "1");
	api_reply_json(sl->rq, 200, json_pack("{s:b}", "late", 1));
	api_release(sl->rq);
	atomic_store(&sl->h->slow_late, 1 + replied);
	uv_close((uv_handle_t *)&sl->t, slow_closed);
}

static void h_slow(struct api_req *rq)
{
	struct h *h = api_app(rq);
	struct slow *sl = xcalloc(1, sizeof *sl);
	sl->rq = rq;
	sl->h = h;
	api_hold(rq);
	uv_timer_init(&h->loop, &sl->t);
	sl->t.data = sl;
	uv_timer_start(&sl->t, slow_fire, 2 * (uint64_t)h->cfg->api_request_timeout_ms, 0);
}

static void h_hdr(struct api_req *rq)
{
	api_add_header(rq, "X-Test", "ok");
	api_add_header(rq, "X-Bad", "a\r\nInjected: 1");
	api_add_header(rq, "Bad\nName", "x");
	api_reply_raw(rq, 200, "text/plain; charset=utf-8", "hello", 5);
}

/* STREAM: takes at most 16 bytes per call and resumes from a zero timer, so
 * every upload goes through suspend/resume. */
struct stream {
	uv_timer_t t;
	struct api_req *rq;
	struct h *h;
	long lines;
	long bytes;
	char last[4];
};

static void stream_closed(uv_handle_t *hd)
{
	struct stream *st = hd->data;
	atomic_fetch_add(&st->h->stream_frees, 1);
	free(st);
}

static void stream_free(void *p)
{
	struct stream *st = p;
	uv_close((uv_handle_t *)&st->t, stream_closed);
}

static void stream_resume(uv_timer_t *t)
{
	struct stream *st = t->data;
	api_resume(st->rq);
}

static void h_stream(struct api_req *rq)
{
	struct h *h = api_app(rq);
	struct stream *st = xcalloc(1, sizeof *st);
	st->rq = rq;
	st->h = h;
	uv_timer_init(&h->loop, &st->t);
	st->t.data = st;
	api_set_data(rq, st, stream_free);
}

static long stream_chunk(struct api_req *rq, const char *data, size_t len)
{
	struct stream *st = api_data(rq);
	size_t take = len < 16 ? len : 16;
	for (size_t i = 0; i < take; i++) {
		memmove(st->last, st->last + 1, 3);
		st->last[3] = data[i];
		if (memcmp(st->last, "FAIL", 4) == 0) {
			api_reply_error(rq, 422, "bad_line", "line", "line %ld failed",
			                st->lines + 1);
			return -1;
		}
		if (data[i] == '\n')
			st->lines++;
	}
	st->bytes += (long)take;
	if (take < len)
		uv_timer_start(&st->t, stream_resume, 0, 0);
	return (long)take;
}

static void stream_end(struct api_req *rq)
{
	struct stream *st = api_data(rq);
	api_reply_json(rq, 200,
	               json_pack("{s:i,s:i}", "lines", (int)st->lines, "bytes", (int)st->bytes));
}

static const struct api_route routes[] = {
    {"GET", "/ping", ROLE_NONE, API_BODY_NONE, h_ping, NULL, NULL},
    {"POST", "/echo", ROLE_MARKETER, API_BODY_JSON, h_echo, NULL, NULL},
    {"GET", "/items/{id}", ROLE_VIEWER, API_BODY_NONE, h_item_get, NULL, NULL},
    {"DELETE", "/items/{id}", ROLE_ADMIN, API_BODY_NONE, h_item_del, NULL, NULL},
    {"POST", "/stream", ROLE_MARKETER, API_BODY_STREAM, h_stream, stream_chunk, stream_end},
    {"GET", "/never", ROLE_NONE, API_BODY_NONE, h_never, NULL, NULL},
    {"GET", "/slow", ROLE_NONE, API_BODY_NONE, h_slow, NULL, NULL},
    {"GET", "/hdr", ROLE_NONE, API_BODY_NONE, h_hdr, NULL, NULL},
};

/* ---- client side -------------------------------------------------------- */

struct resp {
	long status;
	struct buf body;
	struct buf hdrs;
	json_t *json;
};

static void resp_free(struct resp *r)
{
	buf_free(&r->body);
	buf_free(&r->hdrs);
	json_decref(r->json);
	memset(r, 0, sizeof *r);
}

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
	struct resp *r = arg;
	return buf_append(&r->body, p, sz * n) < 0 ? 0 : sz * n;
}

static size_t on_hdr(char *p, size_t sz, size_t n, void *arg)
{
	struct resp *r = arg;
	return buf_append(&r->hdrs, p, sz * n) < 0 ? 0 : sz * n;
}

struct upload {
	const char *p;
	size_t len, off;
};

static size_t on_read(char *p, size_t sz, size_t n, void *arg)
{
	struct upload *u = arg;
	size_t room = sz * n, left = u->len - u->off;
	/* small pieces so chunked uploads arrive in several chunks */
	if (room > 700)
		room = 700;
	if (room > left)
		room = left;
	memcpy(p, u->p + u->off, room);
	u->off += room;
	return room;
}

struct req {
	const char *method;
	const char *path;
	const char *token;
	const char *ctype;
	const char *body;
	long blen;   /* -1: strlen(body) */
	int chunked; /* send the body with Transfer-Encoding: chunked */
	const char *header;
};

/* One request on a fresh connection; r->status 0 when no answer came. */
static void http(struct h *h, const struct req *q, struct resp *r)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hl = NULL;
	struct upload up = {0};
	char *url = xasprintf("%s%s", h->base, q->path);
	char *auth = NULL, *ct = NULL;

	memset(r, 0, sizeof *r);
	buf_init(&r->body, 1 << 20);
	buf_init(&r->hdrs, 1 << 16);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
	if (strcmp(q->method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_hdr);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
	hl = curl_slist_append(hl, "Expect:");
	if (q->token) {
		auth = xasprintf("Authorization: Bearer %s", q->token);
		hl = curl_slist_append(hl, auth);
	}
	if (q->ctype) {
		ct = xasprintf("Content-Type: %s", q->ctype);
		hl = curl_slist_append(hl, ct);
	}
	if (q->header)
		hl = curl_slist_append(hl, q->header);
	if (q->body) {
		size_t n = q->blen < 0 ? strlen(q->body) : (size_t)q->blen;
		if (q->chunked) {
			up.p = q->body;
			up.len = n;
			curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
			curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
			curl_easy_setopt(c, CURLOPT_READDATA, &up);
			hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
		} else {
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body);
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
		}
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	CURLcode rc = curl_easy_perform(c);
	if (rc == CURLE_OK || rc == CURLE_SEND_ERROR)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->status >= 100 && r->status < 600)
		h->sent[r->status / 100]++;
	if (r->body.len)
		r->json = json_loadb(r->body.p, r->body.len, 0, NULL);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	free(url);
	free(auth);
	free(ct);
}

static int has_header(const struct resp *r, const char *line)
{
	return r->hdrs.p && strcasestr(r->hdrs.p, line) != NULL;
}

/* status, error code and (optional) field of an error answer. */
static int is_error(const struct resp *r, long status, const char *code, const char *field)
{
	if (r->status != status || !json_is_object(r->json))
		return 0;
	json_t *e = json_object_get(r->json, "error");
	if (!json_is_object(e) || json_object_size(e) != (field ? 3u : 2u))
		return 0;
	const char *c = json_string_value(json_object_get(e, "code"));
	const char *m = json_string_value(json_object_get(e, "message"));
	const char *f = json_string_value(json_object_get(e, "field"));
	if (!c || !m || !*m || strcmp(c, code) != 0)
		return 0;
	if (field ? !f || strcmp(f, field) != 0 : json_object_get(e, "field") != NULL)
		return 0;
	return has_header(r, "Content-Type: application/json; charset=utf-8") &&
	       has_header(r, "Cache-Control: no-store");
}

static const char *err_message(const struct resp *r)
{
	const char *m =
	    json_string_value(json_object_get(json_object_get(r->json, "error"), "message"));
	return m ? m : "";
}

static int raw_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {0};
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = {30, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void raw_send(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return; /* the server may close first; the answer says why */
		p += w;
		n -= (size_t)w;
	}
}

/*
 * Read one answer: the status, or -1 when the connection ended without
 * one.  The body (by Content-Length) goes to body when set.
 */
static int raw_read(int fd, struct buf *body)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	int status = -1;
	for (;;) {
		char tmp[4096];
		char *end = b.p ? strstr(b.p, "\r\n\r\n") : NULL;
		if (end) {
			long cl = 0;
			const char *h = strcasestr(b.p, "\r\nContent-Length:");
			if (h && h < end)
				cl = strtol(h + 17, NULL, 10);
			size_t have = b.len - (size_t)(end + 4 - b.p);
			if ((long)have >= cl) {
				if (sscanf(b.p, "HTTP/1.%*d %d", &status) != 1)
					status = -1;
				if (body)
					buf_append(body, end + 4, (size_t)cl);
				break;
			}
		}
		ssize_t n = recv(fd, tmp, sizeof tmp, 0);
		if (n <= 0)
			break;
		if (buf_append(&b, tmp, (size_t)n) < 0)
			break;
	}
	buf_free(&b);
	return status;
}

/* ---- running a scenario ------------------------------------------------- */

static void *client_main(void *arg)
{
	struct h *h = arg;
	h->scenario(h);
	if (!h->close_requested)
		h_call(h, do_close, NULL);
	return NULL;
}

static void run(struct h *h, void (*scenario)(struct h *h))
{
	struct cfg_error err = {{0}};
	h->s = api_server_new(&h->loop, h->cfg, routes, ARRAY_SIZE(routes), h);
	assert_non_null(h->s);
	if (api_server_start(h->s, &err) != 0)
		fail_msg("start: %s", err.msg);
	h->port = api_server_port(h->s);
	assert_true(h->port > 0);
	snprintf(h->base, sizeof h->base, "http://127.0.0.1:%d", h->port);
	assert_int_equal(uv_async_init(&h->loop, &h->async, on_async), 0);
	h->async.data = h;
	h->scenario = scenario;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, client_main, h), 0);
	assert_int_equal(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
	pthread_join(t, NULL);
	assert_int_equal(h->closed, 1);
	assert_int_equal(h->failures, 0);
}

/* ---- scenarios ---------------------------------------------------------- */

static void sc_routes(struct h *h)
{
	struct resp r;
	const char *m;

	http(h, &(struct req){.method = "GET", .path = "/ping"}, &r);
	CHECK(h, r.status == 200);
	CHECK(h, json_is_true(json_object_get(r.json, "ok")));
	CHECK(h, has_header(&r, "Content-Type: application/json; charset=utf-8"));
	CHECK(h, has_header(&r, "Cache-Control: no-store"));
	resp_free(&r);

	http(h, &(struct req){.method = "HEAD", .path = "/ping"}, &r);
	CHECK(h, r.status == 200 && r.body.len == 0);
	resp_free(&r);

	http(h,
	     &(struct req){
	         .method = "GET", .path = "/items/42?q=hello%20there&x=1", .token = "viewer-token"},
	     &r);
	CHECK(h, r.status == 200);
	CHECK(h, (m = json_string_value(json_object_get(r.json, "id"))) && !strcmp(m, "42"));
	CHECK(h,
	      (m = json_string_value(json_object_get(r.json, "q"))) && !strcmp(m, "hello there"));
	CHECK(h, (m = json_string_value(json_object_get(r.json, "role"))) && !strcmp(m, "viewer"));
	resp_free(&r);

	/* admin is above viewer */
	http(h, &(struct req){.method = "GET", .path = "/items/x", .token = "admin-token"}, &r);
	CHECK(h, r.status == 200 && json_is_null(json_object_get(r.json, "q")));
	resp_free(&r);

	/* auth */
	http(h, &(struct req){.method = "GET", .path = "/items/42"}, &r);
	CHECK(h, is_error(&r, 401, "unauthorized", NULL));
	CHECK(h, has_header(&r, "WWW-Authenticate: Bearer"));
	resp_free(&r);
	http(h, &(struct req){.method = "GET", .path = "/items/42", .token = "nope-token"}, &r);
	CHECK(h, is_error(&r, 401, "unauthorized", NULL));
	CHECK(h, has_header(&r, "WWW-Authenticate: Bearer"));
	resp_free(&r);
	http(h,
	     &(struct req){.method = "GET",
	                   .path = "/items/42",
	                   .header = "Authorization: Basic dmlld2VyLXRva2Vu"},
	     &r);
	CHECK(h, is_error(&r, 401, "unauthorized", NULL));
	resp_free(&r);
	/* the hash of a token is not a token */
	char vh[65];
	sha256_hex("viewer-token", vh);
	http(h, &(struct req){.method = "GET", .path = "/items/42", .token = vh}, &r);
	CHECK(h, is_error(&r, 401, "unauthorized", NULL));
	resp_free(&r);

	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/echo",
	                   .token = "viewer-token",
	                   .ctype = "application/json",
	                   .body = "{\"a\":1}",
	                   .blen = -1},
	     &r);
	CHECK(h, is_error(&r, 403, "forbidden", NULL));
	resp_free(&r);

	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/echo",
	                   .token = "marketer-token",
	                   .ctype = "application/json",
	                   .body = "{\"a\":1,\"b\":[\"x\"]}",
	                   .blen = -1},
	     &r);
	CHECK(h, r.status == 200);
	CHECK(h, json_integer_value(json_object_get(json_object_get(r.json, "echo"), "a")) == 1);
	CHECK(h,
	      (m = json_string_value(json_object_get(r.json, "token"))) && !strcmp(m, "marketer"));
	CHECK(h,
	      (m = json_string_value(json_object_get(r.json, "role"))) && !strcmp(m, "marketer"));
	resp_free(&r);

	http(h, &(struct req){.method = "DELETE", .path = "/items/7", .token = "viewer-token"}, &r);
	CHECK(h, is_error(&r, 403, "forbidden", NULL));
	resp_free(&r);
	http(h, &(struct req){.method = "DELETE", .path = "/items/7", .token = "marketer-token"},
	     &r);
	CHECK(h, is_error(&r, 403, "forbidden", NULL));
	resp_free(&r);
	http(h, &(struct req){.method = "DELETE", .path = "/items/7", .token = "admin-token"}, &r);
	CHECK(h, r.status == 200);
	CHECK(h, (m = json_string_value(json_object_get(r.json, "deleted"))) && !strcmp(m, "7"));
	CHECK(h, (m = json_string_value(json_object_get(r.json, "token"))) && !strcmp(m, "admin"));
	resp_free(&r);

	/* routing */
	const char *missing[] = {"/nope", "/items", "/items/", "/items/1/2", "/ping/", "//ping"};
	for (size_t i = 0; i < ARRAY_SIZE(missing); i++) {
		http(h, &(struct req){.method = "GET", .path = missing[i], .token = "admin-token"},
		     &r);
		CHECK(h, is_error(&r, 404, "not_found", NULL));
		resp_free(&r);
	}
	http(h, &(struct req){.method = "PUT", .path = "/items/1", .token = "admin-token"}, &r);
	CHECK(h, is_error(&r, 405, "method_not_allowed", NULL));
	CHECK(h, has_header(&r, "Allow: GET, HEAD, DELETE"));
	resp_free(&r);
	http(h, &(struct req){.method = "PATCH", .path = "/ping"}, &r);
	CHECK(h, is_error(&r, 405, "method_not_allowed", NULL));
	CHECK(h, has_header(&r, "Allow: GET, HEAD\r\n"));
	resp_free(&r);
	/* method names are case-sensitive */
	http(h, &(struct req){.method = "get", .path = "/ping"}, &r);
	CHECK(h, r.status == 405);
	resp_free(&r);

	/* a body where none is taken */
	http(h,
	     &(struct req){
	         .method = "GET", .path = "/ping", .ctype = "text/plain", .body = "x", .blen = -1},
	     &r);
	CHECK(h, is_error(&r, 400, "body_not_allowed", NULL));
	resp_free(&r);

	/* headers from handlers; CR/LF refused */
	http(h, &(struct req){.method = "GET", .path = "/hdr"}, &r);
	CHECK(h, r.status == 200 && r.body.len == 5 && !memcmp(r.body.p, "hello", 5));
	CHECK(h, has_header(&r, "X-Test: ok"));
	CHECK(h, has_header(&r, "Content-Type: text/plain; charset=utf-8"));
	CHECK(h, has_header(&r, "Cache-Control: no-store"));
	CHECK(h, !has_header(&r, "Injected"));
	CHECK(h, !has_header(&r, "X-Bad"));
	resp_free(&r);

	uint64_t counts[6];
	h_call(h, do_stats, counts);
	for (int i = 0; i < 6; i++)
		CHECK(h, counts[i] == h->sent[i]);
	CHECK(h, counts[2] == 7 && counts[4] == 17);
}

static void test_routes(void **state)
{
	(void)state;
	struct h h;
	h_init(&h);
	run(&h, sc_routes);
	h_fini(&h);
}

static void sc_bodies(struct h *h)
{
	struct resp r;
	char big[2000];
	memset(big, ' ', sizeof big);
	big[0] = '{';
	big[sizeof big - 1] = '}';

	/* over max_body, known from Content-Length */
	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/echo",
	                   .token = "marketer-token",
	                   .ctype = "application/json",
	                   .body = big,
	                   .blen = sizeof big},
	     &r);
	CHECK(h, is_error(&r, 413, "body_too_large", NULL));
	resp_free(&r);

	/* over max_body, found while reading a chunked body */
	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/echo",
	                   .token = "marketer-token",
	                   .ctype = "application/json",
	                   .body = big,
	                   .blen = sizeof big,
	                   .chunked = 1},
	     &r);
	CHECK(h, is_error(&r, 413, "body_too_large", NULL));
	CHECK(h, has_header(&r, "Connection: close"));
	resp_free(&r);

	/* chunked under the cap is fine */
	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/echo",
	                   .token = "marketer-token",
	                   .ctype = "application/json",
	                   .body = big,
	                   .blen = 1000,
	                   .chunked = 1},
	     &r);
	CHECK(h, is_error(&r, 400, "invalid_json", NULL)); /* truncated object */
	resp_free(&r);
	char okbody[1000];
	memset(okbody, ' ', sizeof okbody);
	memcpy(okbody, "{\"k\":1", 6);
	okbody[sizeof okbody - 1] = '}';
	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/echo",
	                   .token = "marketer-token",
	                   .ctype = "application/json",
	                   .body = okbody,
	                   .blen = sizeof okbody,
	                   .chunked = 1},
	     &r);
	CHECK(h, r.status == 200);
	CHECK(h, json_integer_value(json_object_get(json_object_get(r.json, "echo"), "k")) == 1);
	resp_free(&r);

	/* a huge Content-Length is refused before any body is sent */
	int fd = raw_connect(h->port);
	CHECK(h, fd >= 0);
	const char *hugecl = "POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
	                     "marketer-token\r\nContent-Type: application/json\r\n"
	                     "Content-Length: 1000000000\r\n\r\n";
	raw_send(fd, hugecl, strlen(hugecl));
	struct buf b;
	buf_init(&b, 1 << 16);
	CHECK(h, raw_read(fd, &b) == 413);
	CHECK(h, b.p && strstr(b.p, "\"body_too_large\""));
	buf_free(&b);
	close(fd);

	/* media type */
	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/echo",
	                   .token = "marketer-token",
	                   .ctype = "text/plain",
	                   .body = "{}",
	                   .blen = -1},
	     &r);
	CHECK(h, is_error(&r, 415, "unsupported_media_type", NULL));
	resp_free(&r);
	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/echo",
	                   .token = "marketer-token",
	                   .body = "{}",
	                   .blen = -1,
	                   .header = "Content-Type:"},
	     &r);
	CHECK(h, r.status == 415);
	resp_free(&r);
	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/echo",
	                   .token = "marketer-token",
	                   .ctype = "application/json; charset=latin1",
	                   .body = "{}",
	                   .blen = -1},
	     &r);
	CHECK(h, is_error(&r, 415, "unsupported_media_type", NULL));
	resp_free(&r);
	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/echo",
	                   .token = "marketer-token",
	                   .ctype = "application/jsonx",
	                   .body = "{}",
	                   .blen = -1},
	     &r);
	CHECK(h, r.status == 415);
	resp_free(&r);
	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/echo",
	                   .token = "marketer-token",
	                   .ctype = "Application/JSON; charset=\"UTF-8\"",
	                   .body = "{}",
	                   .blen = -1},
	     &r);
	CHECK(h, r.status == 200);
	resp_free(&r);

	/* parsing */
	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/echo",
	                   .token = "marketer-token",
	                   .ctype = "application/json",
	                   .body = "{bad",
	                   .blen = -1},
	     &r);
	CHECK(h, is_error(&r, 400, "invalid_json", NULL));
	CHECK(h, strstr(err_message(&r), "line 1") && strstr(err_message(&r), "column"));
	resp_free(&r);
	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/echo",
	                   .token = "marketer-token",
	                   .ctype = "application/json",
	                   .body = "{\"a\":\"\xff\xfe\"}",
	                   .blen = -1},
	     &r);
	CHECK(h, is_error(&r, 400, "invalid_json", NULL));
	CHECK(h, strstr(err_message(&r), "UTF-8") != NULL);
	resp_free(&r);
	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/echo",
	                   .token = "marketer-token",
	                   .ctype = "application/json",
	                   .body = "{\"a\":\"\xed\xa0\x80\"}",
	                   .blen = -1},
	     &r);
	CHECK(h, is_error(&r, 400, "invalid_json", NULL)); /* a UTF-16 surrogate */
	resp_free(&r);
	const char *bad[] = {"[1,2]", "\"s\"", "{\"a\":1,\"a\":2}", "{\"a\":1} x", "{} {}", "null"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		http(h,
		     &(struct req){.method = "POST",
		                   .path = "/echo",
		                   .token = "marketer-token",
		                   .ctype = "application/json",
		                   .body = bad[i],
		                   .blen = -1},
		     &r);
		CHECK(h, is_error(&r, 400, "invalid_json", NULL));
		resp_free(&r);
	}
	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/echo",
	                   .token = "marketer-token",
	                   .ctype = "application/json",
	                   .body = "{\"a\":\"x\u00e9\u06f1\"}",
	                   .blen = -1},
	     &r);
	CHECK(h, r.status == 200);
	resp_free(&r);
	/* no body at all */
	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/echo",
	                   .token = "marketer-token",
	                   .ctype = "application/json",
	                   .body = "",
	                   .blen = 0},
	     &r);
	CHECK(h, is_error(&r, 400, "invalid_json", NULL));
	resp_free(&r);
	/* the NUL byte inside a body */
	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/echo",
	                   .token = "marketer-token",
	                   .ctype = "application/json",
	                   .body = "{\"a\":\"\0\"}",
	                   .blen = 9},
	     &r);
	CHECK(h, is_error(&r, 400, "invalid_json", NULL));
	resp_free(&r);

	http(h, &(struct req){.method = "GET", .path = "/ping"}, &r);
	CHECK(h, r.status == 200);
	resp_free(&r);
}

static void test_bodies(void **state)
{
	(void)state;
	struct h h;
	h_init(&h);
	run(&h, sc_bodies);
	h_fini(&h);
}

static void sc_stream(struct h *h)
{
	struct resp r;
	struct buf body;
	buf_init(&body, 0);
	for (int i = 0; i < 60; i++)
		buf_printf(&body, "{\"n\":%d}\n", i);

	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/stream",
	                   .token = "marketer-token",
	                   .ctype = "application/x-ndjson",
	                   .body = body.p,
	                   .blen = (long)body.len},
	     &r);
	CHECK(h, r.status == 200);
	CHECK(h, json_integer_value(json_object_get(r.json, "lines")) == 60);
	CHECK(h, json_integer_value(json_object_get(r.json, "bytes")) == (json_int_t)body.len);
	resp_free(&r);

	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/stream",
	                   .token = "marketer-token",
	                   .ctype = "application/x-ndjson",
	                   .body = body.p,
	                   .blen = (long)body.len,
	                   .chunked = 1},
	     &r);
	CHECK(h, r.status == 200);
	CHECK(h, json_integer_value(json_object_get(r.json, "lines")) == 60);
	CHECK(h, json_integer_value(json_object_get(r.json, "bytes")) == (json_int_t)body.len);
	resp_free(&r);

	/* empty stream */
	http(
	    h,
	    &(struct req){
	        .method = "POST", .path = "/stream", .token = "admin-token", .body = "", .blen = 0},
	    &r);
	CHECK(h, r.status == 200 && json_integer_value(json_object_get(r.json, "lines")) == 0);
	resp_free(&r);

	/* the handler fails half way */
	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/stream",
	                   .token = "marketer-token",
	                   .body = "ok\nok\nFAIL\nmore\nmore\n",
	                   .blen = -1},
	     &r);
	CHECK(h, is_error(&r, 422, "bad_line", "line"));
	CHECK(h, strstr(err_message(&r), "line 3") != NULL);
	resp_free(&r);

	/* over max_bulk_body: by Content-Length and while reading */
	char big[6000];
	memset(big, 'x', sizeof big);
	for (size_t i = 99; i < sizeof big; i += 100)
		big[i] = '\n';
	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/stream",
	                   .token = "marketer-token",
	                   .body = big,
	                   .blen = sizeof big},
	     &r);
	CHECK(h, is_error(&r, 413, "body_too_large", NULL));
	resp_free(&r);
	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/stream",
	                   .token = "marketer-token",
	                   .body = big,
	                   .blen = sizeof big,
	                   .chunked = 1},
	     &r);
	CHECK(h, is_error(&r, 413, "body_too_large", NULL));
	resp_free(&r);
	/* exactly the cap is fine */
	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/stream",
	                   .token = "marketer-token",
	                   .body = big,
	                   .blen = 4096,
	                   .chunked = 1},
	     &r);
	CHECK(h, r.status == 200 && json_integer_value(json_object_get(r.json, "bytes")) == 4096);
	resp_free(&r);

	http(h, &(struct req){.method = "POST", .path = "/stream", .body = "x\n", .blen = -1}, &r);
	CHECK(h, is_error(&r, 401, "unauthorized", NULL));
	resp_free(&r);

	/* every stream context was freed (the 413 by Content-Length and the 401 never made one) */
	CHECK(h, wait_for(&h->stream_frees, 6));
	buf_free(&body);
}

static void test_stream(void **state)
{
	(void)state;
	struct h h;
	h_init(&h);
	run(&h, sc_stream);
	assert_int_equal(atomic_load(&h.stream_frees), 6);
	h_fini(&h);
}

static void sc_deadline(struct h *h)
{
	struct resp r;
	http(h, &(struct req){.method = "GET", .path = "/never"}, &r);
	CHECK(h, is_error(&r, 503, "unavailable", NULL));
	CHECK(h, strstr(err_message(&r), "timed out") != NULL);
	resp_free(&r);
	CHECK(h, wait_for(&h->never_frees, 1));

	http(h, &(struct req){.method = "GET", .path = "/slow"}, &r);
	CHECK(h, is_error(&r, 503, "unavailable", NULL));
	CHECK(h, !has_header(&r, "X-Late"));
	resp_free(&r);
	CHECK(h, wait_for(&h->slow_late, 1));
	CHECK(h, atomic_load(&h->slow_late) == 2); /* api_replied() was 1 */

	http(h, &(struct req){.method = "GET", .path = "/ping"}, &r);
	CHECK(h, r.status == 200);
	resp_free(&r);

	uint64_t counts[6];
	h_call(h, do_stats, counts);
	CHECK(h, counts[5] == 2 && counts[2] == 1);
}

static void test_deadline(void **state)
{
	(void)state;
	struct h h;
	h_init(&h);
	h.cfg->api_request_timeout_ms = 300;
	run(&h, sc_deadline);
	h_fini(&h);
}

static void sc_limits(struct h *h)
{
	struct resp r;

	/* a 64 KiB header: MHD answers 431 (or 400) and the server lives on */
	size_t bomb_len = 64 * 1024;
	char *bomb = xmalloc(bomb_len + 256);
	int n = snprintf(bomb, 256, "GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: ");
	memset(bomb + n, 'a', bomb_len);
	memcpy(bomb + n + bomb_len, "\r\n\r\n", 4);
	int fd = raw_connect(h->port);
	CHECK(h, fd >= 0);
	raw_send(fd, bomb, (size_t)n + bomb_len + 4);
	int st = raw_read(fd, NULL);
	CHECK(h, st == 431 || st == 400);
	close(fd);
	/* and many small headers adding up */
	struct buf many;
	buf_init(&many, 0);
	buf_puts(&many, "GET /ping HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < 2000; i++)
		buf_printf(&many, "X-H%d: %032d\r\n", i, i);
	buf_puts(&many, "\r\n");
	fd = raw_connect(h->port);
	raw_send(fd, many.p, many.len);
	st = raw_read(fd, NULL);
	CHECK(h, st == 431 || st == 400);
	close(fd);
	buf_free(&many);
	free(bomb);
	http(h, &(struct req){.method = "GET", .path = "/ping"}, &r);
	CHECK(h, r.status == 200);
	resp_free(&r);

	/* connection limit (4): with four kept-alive connections a fifth waits in
	 * the backlog and is served as soon as one of the four goes */
	const char *ping = "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n";
	int fds[4];
	for (int i = 0; i < 4; i++) {
		fds[i] = raw_connect(h->port);
		raw_send(fds[i], ping, strlen(ping));
		CHECK(h, raw_read(fds[i], NULL) == 200);
	}
	fd = raw_connect(h->port);
	CHECK(h, fd >= 0);
	raw_send(fd, ping, strlen(ping));
	struct pollfd pfd = {fd, POLLIN, 0};
	CHECK(h, poll(&pfd, 1, 300) == 0);
	raw_send(fds[0], ping, strlen(ping));
	CHECK(h, raw_read(fds[0], NULL) == 200);
	close(fds[3]);
	CHECK(h, raw_read(fd, NULL) == 200);
	close(fd);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	http(h, &(struct req){.method = "GET", .path = "/ping"}, &r);
	CHECK(h, r.status == 200);
	resp_free(&r);
}

static void test_limits(void **state)
{
	(void)state;
	struct h h;
	h_init(&h);
	h.cfg->api_max_connections = 4;
	/* long enough that only a freed slot can let the fifth client in */
	h.cfg->api_connection_timeout_ms = 3600 * 1000;
	run(&h, sc_limits);
	h_fini(&h);
}

static void sc_idle(struct h *h)
{
	/* an idle kept-alive connection is closed after connection_timeout */
	const char *ping = "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n";
	int fd = raw_connect(h->port);
	raw_send(fd, ping, strlen(ping));
	CHECK(h, raw_read(fd, NULL) == 200);
	char c;
	CHECK(h, recv(fd, &c, 1, 0) == 0);
	close(fd);
}

static void test_idle_timeout(void **state)
{
	(void)state;
	struct h h;
	h_init(&h);
	h.cfg->api_connection_timeout_ms = 1000;
	run(&h, sc_idle);
	h_fini(&h);
}

static void sc_disconnect(struct h *h)
{
	struct resp r;

	/* the client leaves while its request is suspended */
	int fd = raw_connect(h->port);
	const char *never = "GET /never HTTP/1.1\r\nHost: x\r\n\r\n";
	raw_send(fd, never, strlen(never));
	CHECK(h, wait_for(&h->never_calls, 1));
	close(fd);
	CHECK(h, wait_for(&h->never_frees, 1));

	/* ... while an asynchronous reply is on its way */
	fd = raw_connect(h->port);
	const char *echo = "POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
	                   "marketer-token\r\nContent-Type: application/json\r\n"
	                   "Content-Length: 7\r\n\r\n{\"a\":1}";
	raw_send(fd, echo, strlen(echo));
	CHECK(h, wait_for(&h->echo_calls, 1));
	close(fd);
	CHECK(h, wait_for(&h->echo_done, 1));

	/* ... half way through a stream upload that is suspended */
	fd = raw_connect(h->port);
	const char *up = "POST /stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
	                 "marketer-token\r\nContent-Length: 1000\r\n\r\n"
	                 "line one\nline two\nline three\nline four\n";
	raw_send(fd, up, strlen(up));
	struct timespec ts = {0, 50 * 1000 * 1000};
	nanosleep(&ts, NULL);
	close(fd);
	CHECK(h, wait_for(&h->stream_frees, 1));

	/* a pipelined pair where the client leaves after the first answer */
	fd = raw_connect(h->port);
	const char *two =
	    "GET /ping HTTP/1.1\r\nHost: x\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n";
	raw_send(fd, two, strlen(two));
	CHECK(h, raw_read(fd, NULL) == 200);
	CHECK(h, wait_for(&h->never_calls, 2));
	close(fd);
	CHECK(h, wait_for(&h->never_frees, 2));

	http(h, &(struct req){.method = "GET", .path = "/ping"}, &r);
	CHECK(h, r.status == 200);
	resp_free(&r);
}

static void test_disconnect(void **state)
{
	(void)state;
	struct h h;
	h_init(&h);
	h.cfg->api_request_timeout_ms = 300;
	run(&h, sc_disconnect);
	assert_int_equal(atomic_load(&h.never_frees), 2);
	assert_int_equal(atomic_load(&h.echo_done), 1);
	h_fini(&h);
}

static void sc_close_suspended(struct h *h)
{
	/* the handler moved its deadline far out: only the close answers it */
	int fd = raw_connect(h->port);
	const char *never = "GET /never?long=1 HTTP/1.1\r\nHost: x\r\n\r\n";
	raw_send(fd, never, strlen(never));
	CHECK(h, wait_for(&h->never_calls, 1));
	struct timespec ts = {0, 3 * h->cfg->api_request_timeout_ms * 1000 * 1000};
	nanosleep(&ts, NULL);
	h_call(h, do_close, NULL);
	struct buf b;
	buf_init(&b, 1 << 16);
	CHECK(h, raw_read(fd, &b) == 503);
	CHECK(h, b.p && strstr(b.p, "\"unavailable\"") && strstr(b.p, "shutting down"));
	buf_free(&b);
	close(fd);
}

static void test_close_suspended(void **state)
{
	(void)state;
	struct h h;
	h_init(&h);
	h.cfg->api_request_timeout_ms = 200;
	run(&h, sc_close_suspended);
	assert_int_equal(atomic_load(&h.never_frees), 1);
	h_fini(&h);
}

static void sc_stop_intake(struct h *h)
{
	const char *ping = "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n";
	int fd = raw_connect(h->port);
	CHECK(h, fd >= 0);
	raw_send(fd, ping, strlen(ping));
	CHECK(h, raw_read(fd, NULL) == 200);
	h_call(h, do_stop_intake, NULL);
	int fd2 = raw_connect(h->port);
	CHECK(h, fd2 < 0);
	if (fd2 >= 0)
		close(fd2);
	/* live connections are still served */
	raw_send(fd, ping, strlen(ping));
	CHECK(h, raw_read(fd, NULL) == 200);
	close(fd);
}

static void test_stop_intake(void **state)
{
	(void)state;
	struct h h;
	h_init(&h);
	run(&h, sc_stop_intake);
	h_fini(&h);
}

static void sc_reload(struct h *h)
{
	struct resp r;
	http(h, &(struct req){.method = "GET", .path = "/items/1", .token = "viewer-token"}, &r);
	CHECK(h, r.status == 200);
	resp_free(&r);

	/* a bad file keeps the old tokens */
	char path[160];
	snprintf(path, sizeof path, "%s/tokens2", h->dir);
	write_file(path, "# new\nops admin 00\n");
	struct reload rl = {.cfg = cfg_new(h)};
	free(rl.cfg->api_tokens_file);
	rl.cfg->api_tokens_file = xstrdup(path);
	h_call(h, do_reload, &rl);
	CHECK(h, rl.rc == -1);
	char *want = xasprintf("%s:2:", path);
	CHECK(h, strstr(rl.err.msg, want) != NULL);
	free(want);
	http(h, &(struct req){.method = "GET", .path = "/items/1", .token = "viewer-token"}, &r);
	CHECK(h, r.status == 200);
	resp_free(&r);

	/* a good one replaces them, and limits follow */
	char nh[65];
	sha256_hex("new-token", nh);
	char *text = xasprintf("ops admin %s\n", nh);
	write_file(path, text);
	free(text);
	rl.cfg->api_max_body = 100;
	h_call(h, do_reload, &rl);
	CHECK(h, rl.rc == 0);
	http(h, &(struct req){.method = "GET", .path = "/items/1", .token = "viewer-token"}, &r);
	CHECK(h, is_error(&r, 401, "unauthorized", NULL));
	resp_free(&r);
	http(h, &(struct req){.method = "DELETE", .path = "/items/1", .token = "new-token"}, &r);
	CHECK(h, r.status == 200);
	resp_free(&r);
	char body[200];
	memset(body, ' ', sizeof body);
	body[0] = '{';
	body[sizeof body - 1] = '}';
	http(h,
	     &(struct req){.method = "POST",
	                   .path = "/echo",
	                   .token = "new-token",
	                   .ctype = "application/json",
	                   .body = body,
	                   .blen = sizeof body},
	     &r);
	CHECK(h, is_error(&r, 413, "body_too_large", NULL));
	resp_free(&r);
	cfg_free(rl.cfg);
}

static void test_reload(void **state)
{
	(void)state;
	struct h h;
	h_init(&h);
	run(&h, sc_reload);
	h_fini(&h);
}

/* Start failures and the port file, without a client thread. */
static void close_and_drain(struct h *h, struct api_server *s)
{
	h->closed = 0;
	api_server_close(s, on_server_closed, h);
	assert_int_equal(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(h->closed, 1);
}

static void test_tokens_file(void **state)
{
	(void)state;
	struct h h;
	h_init(&h);
	char v[65];
	sha256_hex("viewer-token", v);
	struct {
		const char *text;
		int line;
		const char *why;
	} cases[] = {
	    {"# c\n\nx wizard %s\n", 3, "unknown role"},
	    {"x viewer\n", 1, "expected"},
	    {"x viewer %s extra\n", 1, "expected"},
	    {"a viewer %s\nb admin 1234\n", 2, "64 hex"},
	    {"a viewer %.63sg\n", 1, "64 hex"},
	    {"a viewer %s\na admin "
	     "0000000000000000000000000000000000000000000000000000000000000000\n",
	     2, "duplicate token name"},
	    {"a viewer %s\nb admin %s\n", 2, "duplicate token hash"},
	    {"bad/name viewer %s\n", 1, "bad token name"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *text = xasprintf(cases[i].text, v, v);
		write_file(h.tokens, text);
		free(text);
		struct cfg_error err = {{0}};
		struct api_server *s =
		    api_server_new(&h.loop, h.cfg, routes, ARRAY_SIZE(routes), &h);
		assert_int_equal(api_server_start(s, &err), -1);
		char *want = xasprintf("%s:%d: ", h.tokens, cases[i].line);
		if (!strstr(err.msg, want) || !strstr(err.msg, cases[i].why))
			fail_msg("case %zu: %s", i, err.msg);
		free(want);
		assert_int_equal(api_server_port(s), 0);
		close_and_drain(&h, s);
	}

	/* a missing file is an error naming it */
	free(h.cfg->api_tokens_file);
	h.cfg->api_tokens_file = xasprintf("%s/missing", h.dir);
	struct cfg_error err = {{0}};
	struct api_server *s = api_server_new(&h.loop, h.cfg, routes, ARRAY_SIZE(routes), &h);
	assert_int_equal(api_server_start(s, &err), -1);
	assert_non_null(strstr(err.msg, h.cfg->api_tokens_file));
	close_and_drain(&h, s);

	/* a bad listen address */
	free(h.cfg->api_tokens_file);
	h.cfg->api_tokens_file = xstrdup("");
	free(h.cfg->api_listen);
	h.cfg->api_listen = xstrdup("example.com");
	s = api_server_new(&h.loop, h.cfg, routes, ARRAY_SIZE(routes), &h);
	assert_int_equal(api_server_start(s, &err), -1);
	assert_non_null(strstr(err.msg, "api.listen"));
	close_and_drain(&h, s);

	/* the port file, and no tokens at all */
	free(h.cfg->api_listen);
	h.cfg->api_listen = xstrdup("127.0.0.1");
	h.cfg->api_port_file = xasprintf("%s/port", h.dir);
	s = api_server_new(&h.loop, h.cfg, routes, ARRAY_SIZE(routes), &h);
	if (api_server_start(s, &err) != 0)
		fail_msg("start: %s", err.msg);
	FILE *f = fopen(h.cfg->api_port_file, "r");
	assert_non_null(f);
	int port = -1;
	assert_int_equal(fscanf(f, "%d", &port), 1);
	fclose(f);
	assert_int_equal(port, api_server_port(s));

	/* the port is taken now */
	struct api_server *s2;
	h.cfg->api_port = port;
	free(h.cfg->api_port_file);
	h.cfg->api_port_file = NULL;
	s2 = api_server_new(&h.loop, h.cfg, routes, ARRAY_SIZE(routes), &h);
	assert_int_equal(api_server_start(s2, &err), -1);
	h.closed = 0;
	api_server_close(s2, on_server_closed, &h);
	close_and_drain(&h, s);
	h_fini(&h);
}

static void sc_ipv6(struct h *h)
{
	struct resp r;
	http(h, &(struct req){.method = "GET", .path = "/ping"}, &r);
	CHECK(h, r.status == 200);
	resp_free(&r);
}

static void test_ipv6(void **state)
{
	(void)state;
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 sa = {0};
	sa.sin6_family = AF_INET6;
	sa.sin6_addr = in6addr_loopback;
	int ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	if (fd >= 0)
		close(fd);
	if (!ok)
		skip();
	struct h h;
	h_init(&h);
	free(h.cfg->api_listen);
	h.cfg->api_listen = xstrdup("::1");
	struct cfg_error err = {{0}};
	h.s = api_server_new(&h.loop, h.cfg, routes, ARRAY_SIZE(routes), &h);
	if (api_server_start(h.s, &err) != 0)
		fail_msg("start: %s", err.msg);
	h.port = api_server_port(h.s);
	snprintf(h.base, sizeof h.base, "http://[::1]:%d", h.port);
	assert_int_equal(uv_async_init(&h.loop, &h.async, on_async), 0);
	h.async.data = &h;
	h.scenario = sc_ipv6;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, client_main, &h), 0);
	assert_int_equal(uv_run(&h.loop, UV_RUN_DEFAULT), 0);
	pthread_join(t, NULL);
	assert_int_equal(h.closed, 1);
	assert_int_equal(h.failures, 0);
	h_fini(&h);
}

static void test_roles(void **state)
{
	(void)state;
	assert_int_equal(api_role_parse("viewer"), ROLE_VIEWER);
	assert_int_equal(api_role_parse("marketer"), ROLE_MARKETER);
	assert_int_equal(api_role_parse("admin"), ROLE_ADMIN);
	assert_int_equal(api_role_parse("Admin"), ROLE_NONE);
	assert_int_equal(api_role_parse("none"), ROLE_NONE);
	assert_int_equal(api_role_parse(""), ROLE_NONE);
	assert_string_equal(api_role_name(ROLE_MARKETER), "marketer");
	assert_string_equal(api_role_name(ROLE_NONE), "none");
	assert_true(ROLE_VIEWER < ROLE_MARKETER && ROLE_MARKETER < ROLE_ADMIN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roles),
	    cmocka_unit_test(test_routes),
	    cmocka_unit_test(test_bodies),
	    cmocka_unit_test(test_stream),
	    cmocka_unit_test(test_deadline),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_idle_timeout),
	    cmocka_unit_test(test_disconnect),
	    cmocka_unit_test(test_close_suspended),
	    cmocka_unit_test(test_stop_intake),
	    cmocka_unit_test(test_reload),
	    cmocka_unit_test(test_tokens_file),
	    cmocka_unit_test(test_ipv6),
	};
	if (getenv("TEST_API_DEBUG")) {
		log_setup(LOG_DEBUG, LOG_FMT_KV);
		log_set_trace("api");
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
