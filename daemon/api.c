/*
 * api.c - the HTTP server glue: libmicrohttpd in external-epoll mode inside
 * the libuv loop, the route table, bearer-token auth, body limits, JSON
 * answers and errors, suspended (asynchronous) requests with a deadline.
 *
 * Owns: the MHD daemon, its uv handles (poll on MHD's epoll fd, a timer
 * armed from MHD_get_timeout(), a zero "kick" timer that runs MHD after a
 * resume, a flush timer for shutdown), the token table, and every struct
 * api_req.  Never touches Redis, config parsing or the handlers' state
 * (handlers hang theirs off api_set_data()).
 *
 * Rules kept here:
 * - MHD_run() is only ever called from uv callbacks, never from inside an
 *   MHD callback; a resume schedules the kick timer instead.
 * - A request is freed only when MHD's completed callback ran AND every
 *   api_hold() was released, and then only in the close callback of its
 *   deadline timer, so no callback ever sees a freed request.
 * - Everything read from the connection (method, path, headers, query) is
 *   copied at the first access-handler call: accessors stay valid after the
 *   client left.
 *
 * Streamed answers (api_reply_stream, for exports) use MHD's content reader
 * callback; when the producer has nothing yet the connection is suspended
 * from inside that callback (the only safe place) and resumed by
 * api_stream_wake().
 *
 * Limits: [api] max_body for JSON (413 as soon as it is passed), [api]
 * max_bulk_body for streams, API_CONN_MEMORY of MHD memory per connection
 * (request line + headers, about 14 KiB of them; MHD answers 431/400 above
 * it), [api] max_connections,
 * [api] connection_timeout for idle connections, [api] request_timeout for
 * a whole request.  After an early answer at most API_DISCARD_MAX body bytes
 * are read and dropped before the connection is cut.  Listen addresses are
 * IPv4/IPv6 literals (and "localhost"); MHD sets SO_REUSEADDR on the
 * listening socket (never SO_REUSEPORT: a second daemon must fail to bind).
 */
#include "api.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "text.h"
#include "util.h"

/*
 * MHD's pool per connection: request line, headers, read and write buffers.
 * Bodies never live in it (they are copied to our buffers chunk by chunk).
 * libmicrohttpd 0.9.75 zeroes the whole pool between two requests on a
 * keep-alive connection (MHD_pool_reset) and the unused read buffer when it
 * starts the answer, so its size is paid on every request: 16 KiB keeps
 * about 14 KiB of request headers (a 4 KiB bearer token with room to spare)
 * and halves that cost against 32 KiB.
 */
#define API_CONN_MEMORY     (16 * 1024)
#define API_DISCARD_MAX     (1024 * 1024) /* body bytes dropped after an early answer */
#define API_CLOSE_FLUSH_MS  1000          /* shutdown: wait this long for answers to go */
#define API_TOKEN_MAX       4096          /* bearer token length */
#define API_TOKEN_NAME_MAX  64
#define API_TOKENS_MAX      100000
#define API_TOKEN_LINE_MAX  1024
#define API_LOG_INTERVAL_MS 10000
#define API_ERR_MESSAGE_MAX 512
#define SHA256_LEN          32

/* Hard limits, each counted and logged at most once per interval. */
enum api_limit { LIM_BODY, LIM_BULK, LIM_TIMEOUT, LIM_AUTH, LIM_DISCARD, LIM_N };
static const char *const limit_names[LIM_N] = {"max_body", "max_bulk_body", "request_timeout",
                                               "auth", "discard"};

struct api_token {
	char *name;
	enum api_role role;
	unsigned char hash[SHA256_LEN];
};

struct api_tokens {
	struct api_token *v;
	size_t n;
};

struct api_kv {
	char *k;
	char *v;
};

struct api_kvs {
	struct api_kv *v;
	size_t n, cap;
	int packed; /* v and every string are one allocation (kvs_copy) */
};

struct api_server {
	uv_loop_t *loop;
	const struct api_route *routes;
	size_t nroutes;
	void *app;

	/* Copies of the [api] options (the config may be freed on reload). */
	char *listen;
	int port_cfg;
	char *tokens_file;
	char *port_file;
	int64_t max_body;
	int64_t max_bulk_body;
	int64_t request_timeout_ms;
	int64_t connection_timeout_ms;
	int max_connections;

	struct api_tokens tokens;
	EVP_MD *sha256; /* fetched once, for bearer tokens */

	struct MHD_Daemon *mhd;
	int port;
	uv_poll_t poll;
	uv_timer_t timer; /* MHD_get_timeout() */
	uv_timer_t kick;  /* run MHD on the next loop pass (after resumes) */
	uv_timer_t flush; /* shutdown bound */
	int poll_started;
	int at_limit; /* MHD held max_connections after the last run */
	int quiesced;
	int closing;
	int finishing;
	int handles_open;
	void (*close_cb)(void *arg);
	void *close_arg;

	struct api_req *reqs; /* every request not yet freed */
	size_t nlive;         /* requests MHD has not completed */

	uint64_t counts[6];
	uint64_t (*route_counts)[6]; /* per route (same order as routes), by status class */
	uint64_t unrouted[6];        /* 404/405 and requests refused before routing */
	uint64_t limit_hits[LIM_N];
	uint64_t limit_quiet[LIM_N];
	int64_t limit_logged[LIM_N];
};

struct api_req {
	struct api_server *s; /* NULL once the server is gone */
	uv_loop_t *loop;
	void *app;
	struct MHD_Connection *conn; /* NULL once MHD completed the request */
	const struct api_route *route;
	char *method; /* method and path share one allocation */
	char *path;
	struct api_kvs params;
	struct api_kvs query;
	struct api_kvs headers;
	struct api_kvs resp_headers;
	struct buf body;
	json_t *json;
	char *token_name; /* NULL for "" */
	enum api_role role;
	void *data;
	void (*free_fn)(void *);
	unsigned refs;
	int64_t started_ms;

	struct MHD_Response *resp;
	unsigned status;
	uint64_t streamed;  /* STREAM bytes taken by route->chunk */
	uint64_t discarded; /* bytes dropped after an early answer */
	int has_body;

	unsigned completed : 1;
	unsigned replied : 1;
	unsigned reply_failed : 1;
	unsigned queued : 1;
	unsigned suspended : 1;
	unsigned upload_wait : 1; /* suspended by a partial chunk() */
	unsigned resume_pending : 1;
	unsigned in_mhd : 1;
	unsigned dispatched : 1;
	unsigned body_done : 1;
	unsigned freeing : 1;
	unsigned stream_wait : 1; /* suspended until api_stream_wake() */
	unsigned stream_wake : 1; /* woken while inside fill */
	unsigned in_fill : 1;
	api_stream_fill fill; /* a streamed answer's producer */

	uv_timer_t deadline;
	struct api_req *prev, *next;
};

/* ---- small helpers ------------------------------------------------------ */

static const char *const role_names[] = {"none", "viewer", "marketer", "admin"};

enum api_role api_role_parse(const char *s)
{
	if (!s)
		return ROLE_NONE;
	for (int r = ROLE_VIEWER; r <= ROLE_ADMIN; r++)
		if (strcmp(s, role_names[r]) == 0)
			return (enum api_role)r;
	return ROLE_NONE;
}

const char *api_role_name(enum api_role r)
{
	if ((int)r < ROLE_NONE || r > ROLE_ADMIN)
		return "none";
	return role_names[r];
}

static void kvs_add(struct api_kvs *l, const char *k, size_t klen, const char *v, size_t vlen)
{
	assert(!l->packed);
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n].k = xstrndup(k, klen);
	l->v[l->n].v = xstrndup(v, vlen);
	l->n++;
}

static const char *kvs_get(const struct api_kvs *l, const char *k, int nocase)
{
	for (size_t i = 0; i < l->n; i++)
		if (nocase ? strcasecmp(l->v[i].k, k) == 0 : strcmp(l->v[i].k, k) == 0)
			return l->v[i].v;
	return NULL;
}

static void kvs_free(struct api_kvs *l)
{
	for (size_t i = 0; !l->packed && i < l->n; i++) {
		free(l->v[i].k);
		free(l->v[i].v);
	}
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
	l->packed = 0;
}

/* Sizing pass of kvs_copy: entries and string bytes (NULs included). */
struct kvs_size {
	size_t n, bytes;
};

static enum MHD_Result kvs_size_one(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
	(void)kind;
	struct kvs_size *z = cls;
	z->n++;
	z->bytes += (key ? strlen(key) : 0) + (value ? strlen(value) : 0) + 2;
	return MHD_YES;
}

/* Filling pass: the strings follow the array in the same block. */
struct kvs_fill {
	struct api_kvs *l;
	char *next, *end;
};

static enum MHD_Result kvs_fill_one(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
	(void)kind;
	struct kvs_fill *f = cls;
	struct api_kvs *l = f->l;
	const char *kv[2] = {key ? key : "", value ? value : ""};
	char *out[2];
	if (l->n == l->cap)
		return MHD_NO; /* cannot happen: sized by the first pass */
	for (int i = 0; i < 2; i++) {
		size_t n = strlen(kv[i]) + 1;
		assert(n <= (size_t)(f->end - f->next));
		memcpy(f->next, kv[i], n);
		out[i] = f->next;
		f->next += n;
	}
	l->v[l->n].k = out[0];
	l->v[l->n].v = out[1];
	l->n++;
	return MHD_YES;
}

/* Copy the connection's values of one kind into an empty list, in one
 * allocation (a request's headers and query are never added to). */
static void kvs_copy(struct api_kvs *l, struct MHD_Connection *conn, enum MHD_ValueKind kind)
{
	struct kvs_size z = {0, 0};
	MHD_get_connection_values(conn, kind, kvs_size_one, &z);
	if (z.n == 0)
		return;
	char *block = xmalloc(z.n * sizeof *l->v + z.bytes);
	l->v = (struct api_kv *)(void *)block;
	l->n = 0;
	l->cap = z.n;
	l->packed = 1;
	struct kvs_fill f = {l, block + z.n * sizeof *l->v, block + z.n * sizeof *l->v + z.bytes};
	MHD_get_connection_values(conn, kind, kvs_fill_one, &f);
}

/* Copy s replacing every byte that does not start a valid UTF-8 sequence. */
static char *utf8_sanitize(const char *s)
{
	size_t n = strlen(s), o = 0;
	char *out = xmalloc(n + 1);
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		int l = utf8_decode(s + i, n - i, &cp);
		if (l < 0) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, s + i, (size_t)l);
		o += (size_t)l;
		i += (size_t)l;
	}
	out[o] = '\0';
	return out;
}

static int has_crlf(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

static void limit_hit(struct api_server *s, enum api_limit lim, const char *path)
{
	if (!s)
		return;
	s->limit_hits[lim]++;
	int64_t now = mono_ms();
	if (s->limit_logged[lim] && now - s->limit_logged[lim] < API_LOG_INTERVAL_MS) {
		s->limit_quiet[lim]++;
		return;
	}
	log_notice("api", "limit=%s path=%s hits=%llu suppressed=%llu", limit_names[lim],
	           log_q(path), (unsigned long long)s->limit_hits[lim],
	           (unsigned long long)s->limit_quiet[lim]);
	s->limit_logged[lim] = now;
	s->limit_quiet[lim] = 0;
}

/* ---- tokens ------------------------------------------------------------- */

static void tokens_free(struct api_tokens *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].name);
		explicit_bzero(t->v[i].hash, sizeof t->v[i].hash);
	}
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > API_TOKEN_NAME_MAX)
		return 0;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("._@-", *p)))
			return 0;
	return 1;
}

/* md: a fetched SHA-256 (no implicit fetch per call), or NULL for the
 * default one. */
static int sha256(const EVP_MD *md, const void *p, size_t n, unsigned char out[SHA256_LEN])
{
	unsigned int len = 0;
	if (EVP_Digest(p, n, out, &len, md ? md : EVP_sha256(), NULL) != 1 || len != SHA256_LEN)
		return -EIO;
	return 0;
}

/*
 * Parse one "name role sha256hex" line into t (line is modified).  0, 1 for
 * a blank/comment line, or -1 with why filled.
 */
static int token_parse_line(char *line, struct api_token *t, char *why, size_t whylen)
{
	char *save = NULL;
	char *name = strtok_r(line, " \t\r\n", &save);
	if (!name || *name == '#')
		return 1;
	char *role = strtok_r(NULL, " \t\r\n", &save);
	char *hex = strtok_r(NULL, " \t\r\n", &save);
	char *extra = strtok_r(NULL, " \t\r\n", &save);
	if (!role || !hex || (extra && *extra != '#')) {
		snprintf(why, whylen, "expected \"name role sha256hex\"");
		return -1;
	}
	if (!name_ok(name)) {
		snprintf(why, whylen, "bad token name (1..%d of A-Z a-z 0-9 . _ @ -)",
		         API_TOKEN_NAME_MAX);
		return -1;
	}
	t->role = api_role_parse(role);
	if (t->role == ROLE_NONE) {
		snprintf(why, whylen, "unknown role %s (viewer, marketer or admin)", log_q(role));
		return -1;
	}
	if (strlen(hex) != 2 * SHA256_LEN) {
		snprintf(why, whylen, "hash must be 64 hex digits (sha256 of the token)");
		return -1;
	}
	for (size_t i = 0; i < SHA256_LEN; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			snprintf(why, whylen, "hash must be 64 hex digits (sha256 of the token)");
			return -1;
		}
		t->hash[i] = (unsigned char)(hi << 4 | lo);
	}
	t->name = xstrdup(name);
	return 0;
}

/* Load a tokens file; an empty path means no tokens.  0, or -1 with err. */
static int tokens_load(const char *path, struct api_tokens *out, struct cfg_error *err)
{
	struct api_tokens t = {NULL, 0};
	size_t cap = 0;
	char *line = NULL;
	size_t linecap = 0;
	int lineno = 0, rc = -1;
	FILE *f = NULL;

	out->v = NULL;
	out->n = 0;
	if (!path || !*path)
		return 0;
	f = fopen(path, "re");
	if (!f) {
		snprintf(err->msg, sizeof err->msg, "%s: cannot open tokens file: %s", path,
		         strerror(errno));
		return -1;
	}
	for (;;) {
		errno = 0;
		ssize_t n = getline(&line, &linecap, f);
		if (n < 0) {
			if (ferror(f)) {
				snprintf(err->msg, sizeof err->msg, "%s:%d: read error: %s", path,
				         lineno + 1, strerror(errno));
				goto out;
			}
			break;
		}
		lineno++;
		if (n > API_TOKEN_LINE_MAX) {
			snprintf(err->msg, sizeof err->msg, "%s:%d: line longer than %d bytes",
			         path, lineno, API_TOKEN_LINE_MAX);
			goto out;
		}
		if (strlen(line) != (size_t)n) {
			snprintf(err->msg, sizeof err->msg, "%s:%d: NUL byte in line", path,
			         lineno);
			goto out;
		}
		struct api_token tok = {0};
		char why[256];
		int r = token_parse_line(line, &tok, why, sizeof why);
		if (r == 1)
			continue;
		if (r < 0) {
			snprintf(err->msg, sizeof err->msg, "%s:%d: %s", path, lineno, why);
			goto out;
		}
		for (size_t i = 0; i < t.n; i++) {
			const char *dup = NULL;
			if (strcmp(t.v[i].name, tok.name) == 0)
				dup = "duplicate token name";
			else if (memcmp(t.v[i].hash, tok.hash, SHA256_LEN) == 0)
				dup = "duplicate token hash";
			if (dup) {
				snprintf(err->msg, sizeof err->msg, "%s:%d: %s (first seen as %s)",
				         path, lineno, dup, t.v[i].name);
				free(tok.name);
				goto out;
			}
		}
		if (t.n == API_TOKENS_MAX) {
			snprintf(err->msg, sizeof err->msg, "%s:%d: more than %d tokens", path,
			         lineno, API_TOKENS_MAX);
			free(tok.name);
			goto out;
		}
		if (t.n == cap) {
			cap = cap ? cap * 2 : 8;
			t.v = xrealloc(t.v, cap * sizeof *t.v);
		}
		t.v[t.n++] = tok;
	}
	*out = t;
	t.v = NULL;
	t.n = 0;
	rc = 0;
out:
	if (line) {
		explicit_bzero(line, linecap);
		free(line);
	}
	if (f)
		fclose(f);
	tokens_free(&t);
	return rc;
}

int api_tokens_check(const char *path, size_t *n, struct cfg_error *err)
{
	struct api_tokens t = {NULL, 0};
	if (tokens_load(path, &t, err) < 0)
		return -1;
	*n = t.n;
	tokens_free(&t);
	return 0;
}

/* Compare against every hash (no early exit on a match). */
static const struct api_token *tokens_find(const struct api_tokens *t, const EVP_MD *md,
                                           const char *token, size_t n)
{
	unsigned char h[SHA256_LEN];
	const struct api_token *found = NULL;
	if (sha256(md, token, n, h) < 0)
		return NULL;
	for (size_t i = 0; i < t->n; i++) {
		int eq = ct_equal(h, t->v[i].hash, SHA256_LEN);
		if (eq && !found)
			found = &t->v[i];
	}
	explicit_bzero(h, sizeof h);
	return found;
}

/* ---- the uv side -------------------------------------------------------- */

static void srv_run(struct api_server *s);

static void on_timer(uv_timer_t *t)
{
	srv_run(container_of(t, struct api_server, timer));
}

static void on_kick(uv_timer_t *t)
{
	srv_run(container_of(t, struct api_server, kick));
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	(void)events;
	struct api_server *s = container_of(p, struct api_server, poll);
	if (status < 0)
		log_warnx("api", "event=poll_error err=%s", uv_strerror(status));
	srv_run(s);
}

static void srv_kick(struct api_server *s)
{
	if (s && !s->finishing)
		uv_timer_start(&s->kick, on_kick, 0, 0);
}

static void on_flush(uv_timer_t *t);

static void check_drained(struct api_server *s)
{
	if (s->closing && !s->finishing && s->nlive == 0)
		uv_timer_start(&s->flush, on_flush, 0, 0);
}

static void srv_run(struct api_server *s)
{
	if (!s->mhd)
		return;
	MHD_run(s->mhd);
	/*
	 * At the connection limit MHD takes the listening socket out of its
	 * epoll set and puts it back only at the start of a later run: when
	 * this run freed a slot, run again soon or a waiting client would hang
	 * until some unrelated event.
	 */
	const union MHD_DaemonInfo *ci =
	    MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
	int at_limit = ci && ci->num_connections >= (unsigned)s->max_connections;
	if (s->at_limit && !at_limit)
		srv_kick(s);
	s->at_limit = at_limit;
	MHD_UNSIGNED_LONG_LONG t = 0;
	if (MHD_get_timeout(s->mhd, &t) == MHD_YES)
		uv_timer_start(&s->timer, on_timer, (uint64_t)t, 0);
	else
		uv_timer_stop(&s->timer);
	check_drained(s);
}

/* ---- requests ----------------------------------------------------------- */

static void on_req_closed(uv_handle_t *h)
{
	struct api_req *rq = container_of((uv_timer_t *)h, struct api_req, deadline);
	if (rq->free_fn)
		rq->free_fn(rq->data);
	if (rq->s) {
		if (rq->prev)
			rq->prev->next = rq->next;
		else
			rq->s->reqs = rq->next;
		if (rq->next)
			rq->next->prev = rq->prev;
	}
	if (rq->resp)
		MHD_destroy_response(rq->resp);
	free(rq->method); /* and path */
	kvs_free(&rq->params);
	kvs_free(&rq->query);
	kvs_free(&rq->headers);
	kvs_free(&rq->resp_headers);
	buf_free(&rq->body);
	json_decref(rq->json);
	free(rq->token_name);
	free(rq);
}

static void req_maybe_free(struct api_req *rq)
{
	if (rq->completed && rq->refs == 0 && !rq->freeing) {
		rq->freeing = 1;
		uv_close((uv_handle_t *)&rq->deadline, on_req_closed);
	}
}

static void on_deadline(uv_timer_t *t)
{
	struct api_req *rq = container_of(t, struct api_req, deadline);
	if (rq->replied)
		return;
	limit_hit(rq->s, LIM_TIMEOUT, rq->path);
	api_reply_error(rq, 503, "unavailable", NULL, "request timed out");
}

static struct api_req *req_new(struct api_server *s, struct MHD_Connection *conn, const char *url,
                               const char *method)
{
	struct api_req *rq = xcalloc(1, sizeof *rq);
	rq->s = s;
	rq->loop = s->loop;
	rq->app = s->app;
	rq->conn = conn;
	size_t ml = strlen(method), ul = strlen(url);
	rq->method = xmalloc(ml + ul + 2);
	memcpy(rq->method, method, ml + 1);
	rq->path = rq->method + ml + 1;
	memcpy(rq->path, url, ul + 1);
	rq->started_ms = mono_ms();
	buf_init(&rq->body, (size_t)s->max_body);
	kvs_copy(&rq->headers, conn, MHD_HEADER_KIND);
	kvs_copy(&rq->query, conn, MHD_GET_ARGUMENT_KIND);
	uv_timer_init(s->loop, &rq->deadline);
	if (s->request_timeout_ms > 0)
		uv_timer_start(&rq->deadline, on_deadline, (uint64_t)s->request_timeout_ms, 0);
	rq->next = s->reqs;
	if (s->reqs)
		s->reqs->prev = rq;
	s->reqs = rq;
	s->nlive++;
	return rq;
}

/*
 * Match path against a pattern; with out set, capture the {name} segments.
 * Segments are compared exactly; {name} matches one non-empty segment.
 */
static int path_match(const char *pat, const char *path, struct api_kvs *out)
{
	const char *a = pat, *b = path;
	for (;;) {
		if (*a != '/' || *b != '/')
			return 0;
		a++;
		b++;
		size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
		if (la >= 2 && a[0] == '{' && a[la - 1] == '}') {
			if (lb == 0)
				return 0;
			if (out)
				kvs_add(out, a + 1, la - 2, b, lb);
		} else if (la != lb || memcmp(a, b, la) != 0) {
			return 0;
		}
		a += la;
		b += lb;
		if (!*a && !*b)
			return 1;
		if (!*a || !*b)
			return 0;
	}
}

static int method_matches(const char *route_method, const char *method)
{
	if (strcmp(route_method, method) == 0)
		return 1;
	/* HEAD is GET without the body (MHD drops it). */
	return strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0;
}

/* 1 when the "A, B, C" list in b holds m. */
static int allow_has(const struct buf *b, const char *m)
{
	size_t n = strlen(m);
	for (const char *p = b->p; p && *p;) {
		size_t l = strcspn(p, ",");
		if (l == n && memcmp(p, m, n) == 0)
			return 1;
		p += l;
		while (*p == ',' || *p == ' ')
			p++;
	}
	return 0;
}

/* Find the route; on 404/405 reply and return NULL. */
static const struct api_route *route_find(struct api_req *rq)
{
	struct api_server *s = rq->s;
	struct buf allow;
	int path_seen = 0;

	for (size_t i = 0; i < s->nroutes; i++) {
		const struct api_route *r = &s->routes[i];
		if (!path_match(r->path, rq->path, NULL))
			continue;
		if (method_matches(r->method, rq->method)) {
			path_match(r->path, rq->path, &rq->params);
			return r;
		}
		path_seen = 1;
	}
	if (!path_seen) {
		api_reply_error(rq, 404, "not_found", NULL, "no such resource");
		return NULL;
	}
	buf_init(&allow, 1024);
	for (size_t i = 0; i < s->nroutes; i++) {
		const struct api_route *r = &s->routes[i];
		if (!path_match(r->path, rq->path, NULL))
			continue;
		const char *ms[2] = {r->method, strcmp(r->method, "GET") == 0 ? "HEAD" : NULL};
		for (int k = 0; k < 2 && ms[k]; k++)
			if (!allow_has(&allow, ms[k]))
				buf_printf(&allow, "%s%s", allow.len ? ", " : "", ms[k]);
	}
	api_add_header(rq, "Allow", allow.p ? allow.p : "");
	buf_free(&allow);
	api_reply_error(rq, 405, "method_not_allowed", NULL, "method %s not allowed here",
	                rq->method);
	return NULL;
}

static int auth_check(struct api_req *rq)
{
	struct api_server *s = rq->s;
	const struct api_route *r = rq->route;
	if (r->role == ROLE_NONE)
		return 0;
	const char *h = api_header(rq, "Authorization");
	const char *why = NULL;
	const struct api_token *t = NULL;
	if (!h) {
		why = "missing bearer token";
	} else if (strncasecmp(h, "Bearer ", 7) != 0) {
		why = "authorization scheme must be Bearer";
	} else {
		const char *tok = h + 7;
		while (*tok == ' ')
			tok++;
		size_t n = strlen(tok);
		if (n == 0 || n > API_TOKEN_MAX)
			why = "bad bearer token";
		else if (!(t = tokens_find(&s->tokens, s->sha256, tok, n)))
			why = "unknown bearer token";
	}
	if (why) {
		limit_hit(s, LIM_AUTH, rq->path);
		api_add_header(rq, "WWW-Authenticate", "Bearer realm=\"clubd\"");
		api_reply_error(rq, 401, "unauthorized", NULL, "%s", why);
		return -1;
	}
	free(rq->token_name);
	rq->token_name = xstrdup(t->name);
	rq->role = t->role;
	if (t->role < r->role) {
		api_reply_error(rq, 403, "forbidden", NULL, "role %s required",
		                api_role_name(r->role));
		return -1;
	}
	return 0;
}

/* "application/json" with optional parameters; a charset must be UTF-8. */
static int ctype_is_json(const char *v)
{
	static const char mt[] = "application/json";
	if (!v)
		return 0;
	while (*v == ' ' || *v == '\t')
		v++;
	if (strncasecmp(v, mt, sizeof mt - 1) != 0)
		return 0;
	v += sizeof mt - 1;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v == '\0')
		return 1;
	if (*v != ';')
		return 0;
	/* parameters: ; name=value ... */
	while (*v == ';') {
		v++;
		while (*v == ' ' || *v == '\t')
			v++;
		size_t nl = strcspn(v, "=; \t");
		const char *name = v;
		v += nl;
		if (*v != '=')
			return 0;
		v++;
		const char *val = v;
		size_t vl;
		if (*v == '"') {
			val = ++v;
			vl = strcspn(v, "\"");
			if (v[vl] != '"')
				return 0;
			v += vl + 1;
		} else {
			vl = strcspn(v, "; \t");
			v += vl;
		}
		if (nl == 7 && strncasecmp(name, "charset", 7) == 0 &&
		    !((vl == 5 && strncasecmp(val, "utf-8", 5) == 0) ||
		      (vl == 4 && strncasecmp(val, "utf8", 4) == 0)))
			return 0;
		while (*v == ' ' || *v == '\t')
			v++;
	}
	return *v == '\0';
}

/* Everything decided from the request head: route, auth, body checks. */
static void req_begin(struct api_req *rq)
{
	struct api_server *s = rq->s;
	const char *cl = api_header(rq, "Content-Length");
	const char *te = api_header(rq, "Transfer-Encoding");
	int64_t clen = -1;

	if (cl && parse_i64(cl, 0, INT64_MAX, &clen) < 0) {
		api_reply_error(rq, 400, "bad_request", NULL, "bad Content-Length");
		return;
	}
	rq->has_body = te != NULL || clen > 0;
	if (s->closing) {
		api_reply_error(rq, 503, "unavailable", NULL, "server shutting down");
		return;
	}
	rq->route = route_find(rq);
	if (!rq->route)
		return;
	if (auth_check(rq) < 0)
		return;
	switch (rq->route->body) {
	case API_BODY_NONE:
		if (rq->has_body)
			api_reply_error(rq, 400, "body_not_allowed", NULL,
			                "this request takes no body");
		return;
	case API_BODY_JSON:
		if (!rq->has_body) {
			api_reply_error(rq, 400, "invalid_json", NULL,
			                "a JSON object body is required");
			return;
		}
		if (!ctype_is_json(api_header(rq, "Content-Type"))) {
			api_reply_error(rq, 415, "unsupported_media_type", NULL,
			                "Content-Type must be application/json");
			return;
		}
		if (clen > s->max_body) {
			limit_hit(s, LIM_BODY, rq->path);
			api_reply_error(rq, 413, "body_too_large", NULL,
			                "body larger than %lld bytes", (long long)s->max_body);
		}
		return;
	case API_BODY_STREAM:
		if (clen > s->max_bulk_body) {
			limit_hit(s, LIM_BULK, rq->path);
			api_reply_error(rq, 413, "body_too_large", NULL,
			                "body larger than %lld bytes", (long long)s->max_bulk_body);
			return;
		}
		rq->route->handle(rq);
		return;
	}
}

static enum MHD_Result req_discard(struct api_req *rq, size_t *size)
{
	rq->discarded += *size;
	*size = 0;
	if (rq->discarded > API_DISCARD_MAX) {
		limit_hit(rq->s, LIM_DISCARD, rq->path);
		return MHD_NO;
	}
	return MHD_YES;
}

static enum MHD_Result req_body(struct api_req *rq, const char *data, size_t *size)
{
	struct api_server *s = rq->s;
	size_t len = *size, off = 0;

	if (rq->replied || !rq->route)
		return req_discard(rq, size);
	switch (rq->route->body) {
	case API_BODY_NONE:
		api_reply_error(rq, 400, "body_not_allowed", NULL, "this request takes no body");
		return req_discard(rq, size);
	case API_BODY_JSON:
		if (buf_append(&rq->body, data, len) < 0) {
			buf_free(&rq->body);
			limit_hit(s, LIM_BODY, rq->path);
			api_reply_error(rq, 413, "body_too_large", NULL,
			                "body larger than %lld bytes", (long long)s->max_body);
			return req_discard(rq, size);
		}
		*size = 0;
		return MHD_YES;
	case API_BODY_STREAM:
		break;
	}
	if (rq->streamed + len > (uint64_t)s->max_bulk_body) {
		limit_hit(s, LIM_BULK, rq->path);
		api_reply_error(rq, 413, "body_too_large", NULL, "body larger than %lld bytes",
		                (long long)s->max_bulk_body);
		return req_discard(rq, size);
	}
	rq->resume_pending = 0;
	for (;;) {
		long n = rq->route->chunk(rq, data + off, len - off);
		if (n < 0) {
			if (!rq->replied)
				api_reply_error(rq, 500, "internal", NULL, "upload failed");
			*size = len - off;
			return req_discard(rq, size);
		}
		assert((size_t)n <= len - off);
		off += (size_t)n;
		rq->streamed += (uint64_t)n;
		if (rq->replied) {
			*size = len - off;
			return req_discard(rq, size);
		}
		if (off == len)
			break;
		if (rq->resume_pending) {
			rq->resume_pending = 0;
			continue;
		}
		rq->suspended = 1;
		rq->upload_wait = 1;
		MHD_suspend_connection(rq->conn);
		break;
	}
	*size = len - off;
	return MHD_YES;
}

static void req_parse_json(struct api_req *rq)
{
	json_error_t jerr;
	if (!utf8_valid(rq->body.p ? rq->body.p : "", rq->body.len)) {
		api_reply_error(rq, 400, "invalid_json", NULL, "body is not valid UTF-8");
		return;
	}
	json_t *j =
	    json_loadb(rq->body.p ? rq->body.p : "", rq->body.len, JSON_REJECT_DUPLICATES, &jerr);
	buf_free(&rq->body);
	if (!j) {
		api_reply_error(rq, 400, "invalid_json", NULL,
		                "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
		                jerr.text);
		return;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		api_reply_error(rq, 400, "invalid_json", NULL, "body must be a JSON object");
		return;
	}
	rq->json = j;
}

static enum MHD_Result req_queue(struct api_req *rq)
{
	struct api_server *s = rq->s;
	if (!rq->resp)
		return MHD_NO; /* building the response failed: cut the connection */
	enum MHD_Result r = MHD_queue_response(rq->conn, rq->status, rq->resp);
	MHD_destroy_response(rq->resp);
	rq->resp = NULL;
	if (r != MHD_YES) {
		log_warnx("api", "event=queue_failed method=%s path=%s status=%u",
		          log_q(rq->method), log_q(rq->path), rq->status);
		return MHD_NO;
	}
	rq->queued = 1;
	unsigned cls = rq->status / 100;
	cls = cls >= 1 && cls <= 5 ? cls : 0;
	s->counts[cls]++;
	if (rq->route && s->route_counts)
		s->route_counts[rq->route - s->routes][cls]++;
	else
		s->unrouted[cls]++;
	log_trace("api", "method=%s path=%s status=%u token=%s ms=%lld", log_q(rq->method),
	          log_q(rq->path), rq->status, log_q(api_token_name(rq)),
	          (long long)(mono_ms() - rq->started_ms));
	return MHD_YES;
}

static void req_suspend(struct api_req *rq)
{
	rq->suspended = 1;
	rq->upload_wait = 0;
	MHD_suspend_connection(rq->conn);
}

/* The body is complete (or the connection was resumed with an answer). */
static enum MHD_Result req_final(struct api_req *rq)
{
	rq->body_done = 1;
	assert(rq->route || rq->replied);
	if (!rq->replied && !rq->dispatched) {
		rq->dispatched = 1;
		switch (rq->route->body) {
		case API_BODY_NONE:
			rq->route->handle(rq);
			break;
		case API_BODY_JSON:
			req_parse_json(rq);
			if (!rq->replied)
				rq->route->handle(rq);
			break;
		case API_BODY_STREAM:
			rq->route->end(rq);
			break;
		}
	}
	if (rq->replied)
		return req_queue(rq);
	req_suspend(rq);
	return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *data,
                                 size_t *size, void **con_cls)
{
	(void)version;
	struct api_server *s = cls;
	struct api_req *rq = *con_cls;
	enum MHD_Result r;

	if (!rq) {
		rq = req_new(s, conn, url, method);
		*con_cls = rq;
		rq->in_mhd = 1;
		req_begin(rq);
		rq->in_mhd = 0;
		return rq->replied ? req_queue(rq) : MHD_YES;
	}
	rq->in_mhd = 1;
	if (*size)
		r = req_body(rq, data, size);
	else
		r = req_final(rq);
	rq->in_mhd = 0;
	return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	(void)conn;
	struct api_server *s = cls;
	struct api_req *rq = *con_cls;
	if (!rq)
		return;
	*con_cls = NULL;
	rq->conn = NULL;
	rq->completed = 1;
	rq->suspended = 0;
	rq->replied = 1; /* nothing more can be sent */
	uv_timer_stop(&rq->deadline);
	if (rq->resp) {
		MHD_destroy_response(rq->resp);
		rq->resp = NULL;
	}
	if (!rq->queued) {
		s->counts[0]++;
		log_trace("api", "method=%s path=%s status=none term=%d", log_q(rq->method),
		          log_q(rq->path), (int)toe);
	}
	assert(s->nlive > 0);
	s->nlive--;
	req_maybe_free(rq);
	check_drained(s);
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_debug("api", "mhd=%s", log_q(msg));
}

/* ---- the server --------------------------------------------------------- */

struct api_server *api_server_new(uv_loop_t *loop, const struct config *cfg,
                                  const struct api_route *routes, size_t nroutes, void *app)
{
	for (size_t i = 0; i < nroutes; i++) {
		const struct api_route *r = &routes[i];
		assert(r->method && r->path && r->path[0] == '/' && r->handle);
		assert(r->body != API_BODY_STREAM || (r->chunk && r->end));
	}
	struct api_server *s = xcalloc(1, sizeof *s);
	s->loop = loop;
	s->routes = routes;
	s->nroutes = nroutes;
	s->route_counts = xcalloc(nroutes ? nroutes : 1, sizeof *s->route_counts);
	s->app = app;
	s->listen = xstrdup(cfg->api_listen ? cfg->api_listen : "127.0.0.1");
	s->port_cfg = cfg->api_port;
	s->tokens_file = xstrdup(cfg->api_tokens_file ? cfg->api_tokens_file : "");
	s->port_file = xstrdup(cfg->api_port_file ? cfg->api_port_file : "");
	s->max_body = cfg->api_max_body;
	s->max_bulk_body = cfg->api_max_bulk_body;
	s->request_timeout_ms = cfg->api_request_timeout_ms;
	s->connection_timeout_ms = cfg->api_connection_timeout_ms;
	s->max_connections = cfg->api_max_connections;
	s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL); /* NULL: EVP_sha256() per call */
	uv_timer_init(loop, &s->timer);
	uv_timer_init(loop, &s->kick);
	uv_timer_init(loop, &s->flush);
	s->handles_open = 3;
	return s;
}

static int write_port_file(const char *path, int port, struct cfg_error *err)
{
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	char line[16];
	int n = snprintf(line, sizeof line, "%d\n", port);
	int rc = -1;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err->msg, sizeof err->msg, "api.port_file: %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (write(fd, line, (size_t)n) != n) {
		snprintf(err->msg, sizeof err->msg, "api.port_file: %s: write failed", tmp);
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		snprintf(err->msg, sizeof err->msg, "api.port_file: %s: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	free(tmp);
	return rc;
}

static int parse_listen(const char *addr, int port, struct sockaddr_storage *ss, int *v6)
{
	char host[256];
	size_t n = strlen(addr);
	if (n >= sizeof host)
		return -EINVAL;
	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
		memcpy(host, addr + 1, n - 2);
		host[n - 2] = '\0';
	} else {
		memcpy(host, addr, n + 1);
	}
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof host, "127.0.0.1");
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*v6 = 0;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*v6 = 1;
		return 0;
	}
	return -EINVAL;
}

int api_server_start(struct api_server *s, struct cfg_error *err)
{
	struct sockaddr_storage ss;
	int v6 = 0;

	assert(!s->mhd && !s->closing);
	if (s->port_cfg < 0 || s->port_cfg > 65535 ||
	    parse_listen(s->listen, s->port_cfg, &ss, &v6) < 0) {
		snprintf(err->msg, sizeof err->msg,
		         "api.listen: %s:%d is not an IPv4 or IPv6 address and port",
		         log_q(s->listen), s->port_cfg);
		return -1;
	}
	if (s->max_body < 1 || s->max_bulk_body < 1 || s->max_connections < 1) {
		snprintf(err->msg, sizeof err->msg,
		         "api: max_body, max_bulk_body and max_connections must be positive");
		return -1;
	}
	if (tokens_load(s->tokens_file, &s->tokens, err) < 0)
		return -1;

	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (v6)
		flags |= MHD_USE_IPv6;
	int64_t tmo_s = (s->connection_timeout_ms + 999) / 1000;
	if (tmo_s > 86400)
		tmo_s = 86400;
	/* The logger goes first so MHD never prints on its own. */
	s->mhd = MHD_start_daemon(flags, (uint16_t)s->port_cfg, NULL, NULL, on_access, s,
	                          MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
	                          MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	                          MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->max_connections,
	                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(tmo_s > 0 ? tmo_s : 0),
	                          MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)API_CONN_MEMORY,
	                          MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
	if (!s->mhd) {
		snprintf(err->msg, sizeof err->msg, "api.listen: cannot listen on %s port %d",
		         log_q(s->listen), s->port_cfg);
		tokens_free(&s->tokens);
		return -1;
	}
	const union MHD_DaemonInfo *fi = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	const union MHD_DaemonInfo *pi = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
	int rc = fi ? uv_poll_init(s->loop, &s->poll, fi->epoll_fd) : UV_EINVAL;
	if (rc < 0) {
		snprintf(err->msg, sizeof err->msg, "api: cannot watch the MHD epoll fd: %s",
		         uv_strerror(rc));
		goto fail;
	}
	s->poll_started = 1;
	s->handles_open++;
	uv_poll_start(&s->poll, UV_READABLE, on_poll);
	s->port = pi ? pi->port : 0;
	if (s->port <= 0) {
		snprintf(err->msg, sizeof err->msg, "api: cannot read the bound port");
		goto fail;
	}
	if (*s->port_file && write_port_file(s->port_file, s->port, err) < 0)
		goto fail;
	log_info("api", "listen=%s port=%d tokens=%zu max_body=%lld max_connections=%d",
	         log_q(s->listen), s->port, s->tokens.n, (long long)s->max_body,
	         s->max_connections);
	srv_run(s);
	return 0;
fail:
	/* The caller still calls api_server_close(), which closes the handles. */
	if (s->poll_started)
		uv_poll_stop(&s->poll);
	MHD_stop_daemon(s->mhd);
	s->mhd = NULL;
	s->port = 0;
	tokens_free(&s->tokens);
	return -1;
}

int api_server_port(const struct api_server *s)
{
	return s->port;
}

int api_server_reload(struct api_server *s, const struct config *cfg, struct cfg_error *err)
{
	struct api_tokens t;
	const char *file = cfg->api_tokens_file ? cfg->api_tokens_file : "";
	if (tokens_load(file, &t, err) < 0) {
		log_warnx("api", "event=reload_failed msg=%s", log_q(err->msg));
		return -1;
	}
	tokens_free(&s->tokens);
	s->tokens = t;
	free(s->tokens_file);
	s->tokens_file = xstrdup(file);
	if (cfg->api_max_body > 0)
		s->max_body = cfg->api_max_body;
	if (cfg->api_max_bulk_body > 0)
		s->max_bulk_body = cfg->api_max_bulk_body;
	if (cfg->api_request_timeout_ms > 0)
		s->request_timeout_ms = cfg->api_request_timeout_ms;
	if (cfg->api_max_connections != s->max_connections ||
	    cfg->api_connection_timeout_ms != s->connection_timeout_ms)
		log_notice("api", "msg=\"max_connections and connection_timeout apply after a "
		                  "restart\"");
	log_info("api", "event=reload tokens=%zu max_body=%lld request_timeout_ms=%lld", t.n,
	         (long long)s->max_body, (long long)s->request_timeout_ms);
	return 0;
}

void api_server_stop_intake(struct api_server *s)
{
	if (!s->mhd || s->quiesced)
		return;
	MHD_socket fd = MHD_quiesce_daemon(s->mhd);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	s->quiesced = 1;
	log_info("api", "event=stop_intake");
}

static void on_handle_closed(uv_handle_t *h)
{
	struct api_server *s = h->data;
	if (--s->handles_open > 0)
		return;
	void (*cb)(void *) = s->close_cb;
	void *arg = s->close_arg;
	/* Requests still held by someone outlive the server. */
	for (struct api_req *rq = s->reqs; rq; rq = rq->next)
		rq->s = NULL;
	tokens_free(&s->tokens);
	EVP_MD_free(s->sha256);
	free(s->listen);
	free(s->tokens_file);
	free(s->port_file);
	free(s->route_counts);
	free(s);
	if (cb)
		cb(arg);
}

static void finish_close(struct api_server *s)
{
	s->finishing = 1;
	if (s->poll_started)
		uv_poll_stop(&s->poll);
	if (s->mhd) {
		/* MHD must not be stopped with suspended connections. */
		for (struct api_req *rq = s->reqs; rq; rq = rq->next)
			if (rq->suspended && rq->conn) {
				rq->suspended = 0;
				MHD_resume_connection(rq->conn);
			}
		MHD_stop_daemon(s->mhd);
		s->mhd = NULL;
	}
	s->timer.data = s->kick.data = s->flush.data = s;
	uv_close((uv_handle_t *)&s->timer, on_handle_closed);
	uv_close((uv_handle_t *)&s->kick, on_handle_closed);
	uv_close((uv_handle_t *)&s->flush, on_handle_closed);
	if (s->poll_started) {
		s->poll.data = s;
		uv_close((uv_handle_t *)&s->poll, on_handle_closed);
	}
}

static void on_flush(uv_timer_t *t)
{
	struct api_server *s = container_of(t, struct api_server, flush);
	if (s->nlive)
		log_notice("api", "event=close_forced requests=%zu", s->nlive);
	finish_close(s);
}

void api_server_close(struct api_server *s, void (*cb)(void *arg), void *arg)
{
	assert(!s->closing);
	s->closing = 1;
	s->close_cb = cb;
	s->close_arg = arg;
	if (!s->mhd) {
		finish_close(s);
		return;
	}
	api_server_stop_intake(s);
	for (struct api_req *rq = s->reqs; rq; rq = rq->next)
		if (!rq->completed && !rq->replied) {
			api_add_header(rq, "Connection", "close");
			api_reply_error(rq, 503, "unavailable", NULL, "server shutting down");
		}
	uv_timer_start(&s->flush, on_flush, API_CLOSE_FLUSH_MS, 0);
	srv_kick(s);
}

void api_server_route_stats(const struct api_server *s, size_t i, uint64_t counts[6])
{
	for (int k = 0; k < 6; k++)
		counts[k] = i < s->nroutes && s->route_counts ? s->route_counts[i][k]
		            : i == s->nroutes                 ? s->unrouted[k]
		                                              : 0;
}

void api_server_stats(const struct api_server *s, uint64_t counts[6])
{
	memcpy(counts, s->counts, sizeof s->counts);
}

/* ---- request accessors -------------------------------------------------- */

void *api_app(struct api_req *rq)
{
	return rq->app;
}

const char *api_method(struct api_req *rq)
{
	return rq->method;
}

const char *api_path(struct api_req *rq)
{
	return rq->path;
}

const char *api_param(struct api_req *rq, const char *name)
{
	return kvs_get(&rq->params, name, 0);
}

const char *api_query(struct api_req *rq, const char *name)
{
	return kvs_get(&rq->query, name, 0);
}

const char *api_header(struct api_req *rq, const char *name)
{
	return kvs_get(&rq->headers, name, 1);
}

json_t *api_json(struct api_req *rq)
{
	return rq->json;
}

const char *api_token_name(struct api_req *rq)
{
	return rq->token_name ? rq->token_name : "";
}

enum api_role api_req_role(struct api_req *rq)
{
	return rq->role;
}

void api_set_data(struct api_req *rq, void *data, void (*free_fn)(void *))
{
	if (rq->free_fn && rq->data != data)
		rq->free_fn(rq->data);
	rq->data = data;
	rq->free_fn = free_fn;
}

void *api_data(struct api_req *rq)
{
	return rq->data;
}

void api_set_timeout(struct api_req *rq, int64_t ms)
{
	if (ms <= 0 || rq->replied || rq->freeing)
		return;
	uv_timer_start(&rq->deadline, on_deadline, (uint64_t)ms, 0);
}

void api_hold(struct api_req *rq)
{
	rq->refs++;
}

void api_release(struct api_req *rq)
{
	assert(rq->refs > 0);
	rq->refs--;
	req_maybe_free(rq);
}

void api_resume(struct api_req *rq)
{
	if (rq->suspended && rq->upload_wait && rq->conn && rq->s) {
		rq->suspended = 0;
		rq->upload_wait = 0;
		MHD_resume_connection(rq->conn);
		srv_kick(rq->s);
	} else if (rq->in_mhd) {
		rq->resume_pending = 1;
	}
}

int api_replied(const struct api_req *rq)
{
	return rq->replied;
}

/* ---- replies ------------------------------------------------------------ */

void api_add_header(struct api_req *rq, const char *name, const char *value)
{
	if (rq->replied)
		return;
	if (!*name || has_crlf(name) || strchr(name, ':') || has_crlf(value)) {
		log_warnx("api", "event=header_refused name=%s", log_q(name));
		return;
	}
	kvs_add(&rq->resp_headers, name, strlen(name), value, strlen(value));
}

static void req_answer(struct api_req *rq, unsigned status, const char *ctype,
                       struct MHD_Response *r);

/* Store the answer (data is taken, malloc'd) and wake the connection. */
static void req_reply(struct api_req *rq, unsigned status, const char *ctype, char *data,
                      size_t len)
{
	if (rq->replied) {
		free(data);
		return;
	}
	rq->replied = 1;
	uv_timer_stop(&rq->deadline);
	if (!rq->conn || !rq->s) {
		free(data);
		return;
	}
	struct MHD_Response *r;
	if (len == 0) {
		free(data);
		r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	} else {
		r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
		if (!r)
			free(data);
	}
	req_answer(rq, status, ctype, r);
}

/* The common part of every answer: headers, then wake the connection. */
static void req_answer(struct api_req *rq, unsigned status, const char *ctype,
                       struct MHD_Response *r)
{
	if (!r) {
		log_err("api", "event=response_failed path=%s", log_q(rq->path));
		rq->reply_failed = 1;
	} else {
		if (ctype)
			MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
		MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
		for (size_t i = 0; i < rq->resp_headers.n; i++)
			MHD_add_response_header(r, rq->resp_headers.v[i].k,
			                        rq->resp_headers.v[i].v);
		/* Answered before the body was read: do not keep the connection. */
		if (rq->has_body && !rq->body_done && !kvs_get(&rq->resp_headers, "Connection", 1))
			MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
		rq->resp = r;
	}
	rq->status = status;
	if (rq->suspended) {
		rq->suspended = 0;
		rq->upload_wait = 0;
		MHD_resume_connection(rq->conn);
		srv_kick(rq->s);
	}
}

#define JSON_SMALL 2048 /* answers up to this size are encoded in one pass */

static char *json_to_text(json_t *j, size_t *len)
{
	char small[JSON_SMALL];
	size_t n = json_dumpb(j, small, sizeof small, JSON_COMPACT);
	if (n == 0)
		return NULL;
	char *p = xmalloc(n + 2);
	if (n <= sizeof small)
		memcpy(p, small, n);
	else if (json_dumpb(j, p, n, JSON_COMPACT) != n) {
		free(p);
		return NULL;
	}
	p[n] = '\n';
	p[n + 1] = '\0';
	*len = n + 1;
	return p;
}

static const char json_ctype[] = "application/json; charset=utf-8";

void api_reply_json(struct api_req *rq, unsigned status, json_t *json)
{
	if (rq->replied) {
		json_decref(json);
		return;
	}
	if (!json) {
		req_reply(rq, status, NULL, NULL, 0);
		return;
	}
	size_t len = 0;
	char *p = json_to_text(json, &len);
	json_decref(json);
	if (!p) {
		api_reply_error(rq, 500, "internal", NULL, "cannot encode the answer");
		return;
	}
	req_reply(rq, status, json_ctype, p, len);
}

/* The escape of one byte that JSON requires (as jansson writes it), into
 * e; NULL when c goes as it is. */
static const char *json_escape(unsigned char c, char e[7])
{
	static const char hex[] = "0123456789ABCDEF";
	switch (c) {
	case '"':
		return "\\\"";
	case '\\':
		return "\\\\";
	case '\b':
		return "\\b";
	case '\f':
		return "\\f";
	case '\n':
		return "\\n";
	case '\r':
		return "\\r";
	case '\t':
		return "\\t";
	default:
		if (c >= 0x20)
			return NULL;
		memcpy(e, "\\u00", 4);
		e[4] = hex[c >> 4];
		e[5] = hex[c & 15];
		e[6] = '\0';
		return e;
	}
}

int api_json_quote(struct buf *b, const char *s)
{
	if (!s)
		return -EINVAL;
	size_t n = strlen(s), start = b->len, run = 0;
	if (!utf8_valid(s, n))
		return -EINVAL;
	int rc = buf_append(b, "\"", 1);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char e[7];
		const char *esc = json_escape((unsigned char)s[i], e);
		if (!esc)
			continue;
		rc = buf_append(b, s + run, i - run); /* the plain bytes before */
		if (rc == 0)
			rc = buf_append(b, esc, strlen(esc));
		run = i + 1;
	}
	if (rc == 0)
		rc = buf_append(b, s + run, n - run);
	if (rc == 0)
		rc = buf_append(b, "\"", 1);
	if (rc < 0) {
		b->len = start; /* as it was */
		if (b->p)
			b->p[start] = '\0';
	}
	return rc;
}

void api_reply_json_buf(struct api_req *rq, unsigned status, struct buf *b)
{
	if (rq->replied) {
		buf_free(b);
		return;
	}
	if (buf_append(b, "\n", 1) < 0) {
		buf_free(b);
		api_reply_error(rq, 500, "internal", NULL, "cannot encode the answer");
		return;
	}
	size_t len = b->len;
	req_reply(rq, status, json_ctype, buf_steal(b), len);
}

void api_reply_error(struct api_req *rq, unsigned status, const char *code, const char *field,
                     const char *fmt, ...)
{
	if (rq->replied)
		return;
	char msg[API_ERR_MESSAGE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	char *m = utf8_sanitize(msg);
	json_t *e = json_object();
	json_object_set_new(e, "code", json_string(code));
	json_object_set_new(e, "message", json_string(m));
	if (field) {
		char *f = utf8_sanitize(field);
		json_object_set_new(e, "field", json_string(f));
		free(f);
	}
	free(m);
	json_t *root = json_object();
	json_object_set_new(root, "error", e);
	size_t len = 0;
	char *p = json_to_text(root, &len);
	json_decref(root);
	if (!p) {
		p = xstrdup("{\"error\":{\"code\":\"internal\",\"message\":\"error\"}}\n");
		len = strlen(p);
	}
	req_reply(rq, status, json_ctype, p, len);
}

void api_reply_raw(struct api_req *rq, unsigned status, const char *content_type, const char *data,
                   size_t len)
{
	if (rq->replied)
		return;
	char *p = NULL;
	if (len) {
		p = xmalloc(len);
		memcpy(p, data, len);
	}
	req_reply(rq, status, content_type, p, len);
}

/* ---- streamed answers --------------------------------------------------- */

/*
 * MHD's content reader for api_reply_stream().  Nothing to send yet: the
 * connection is suspended (MHD would otherwise call again at once, a busy
 * loop) until api_stream_wake(); the only safe place to suspend is here.
 */
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct api_req *rq = cls;
	(void)pos;
	if (!rq->conn || !rq->s)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	rq->stream_wake = 0;
	rq->in_fill = 1;
	long n = rq->fill(rq, buf, max);
	rq->in_fill = 0;
	if (n == API_STREAM_END)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n < 0 || (size_t)n > max)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (n == 0) {
		if (rq->stream_wake) {
			/* data came while filling: ask again on the next run */
			rq->stream_wake = 0;
			srv_kick(rq->s);
			return 0;
		}
		rq->suspended = 1;
		rq->stream_wait = 1;
		MHD_suspend_connection(rq->conn);
	}
	return (ssize_t)n;
}

void api_reply_stream(struct api_req *rq, unsigned status, const char *content_type,
                      api_stream_fill fill)
{
	if (rq->replied)
		return;
	rq->replied = 1;
	uv_timer_stop(&rq->deadline);
	if (!rq->conn || !rq->s)
		return;
	rq->fill = fill;
	req_answer(rq, status, content_type,
	           MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, stream_reader, rq,
	                                             NULL));
}

void api_stream_wake(struct api_req *rq)
{
	if (rq->stream_wait && rq->suspended && rq->conn && rq->s) {
		rq->suspended = 0;
		rq->stream_wait = 0;
		MHD_resume_connection(rq->conn);
		srv_kick(rq->s);
	} else if (rq->in_fill) {
		rq->stream_wake = 1;
	}
}
