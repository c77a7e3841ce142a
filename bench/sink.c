/*
 * sink.c - a minimal, fast loopback HTTP/1.1 receiver for benchmarks: it
 * plays the webhook provider clubd delivers to.
 *
 * Owns: one libuv loop, a TCP listener bound to 127.0.0.1 only (never any
 * other address), its connections, and the set of X-Clubd-Message-Id values
 * seen (to count duplicates).  Never touches Redis or clubd, and does not
 * check signatures (tests/fakes/sink.py does; this one is for speed).
 *
 * HTTP: keep-alive and pipelining, Content-Length bodies only (chunked is
 * answered 501 and the connection closed), headers capped at 64 KiB and
 * bodies at 1 MiB (431/413 then close).
 *
 * --mode chooses the provider it plays and where the message id is read:
 *   webhook (default)  any request -> 200 {"id":"<n>"} (n from 1); the id is
 *                      the X-Clubd-Message-Id header.
 *   kannel             GET or POST /cgi-bin/sendsms[?...] -> 202 text/html
 *                      "0: Accepted for delivery"; the id is the m= parameter
 *                      of the dlr-url (percent-encoded in the GET query's
 *                      dlr-url=, plain in the POST's X-Kannel-DLR-Url).
 *   twilio             POST /2010-04-01/Accounts/{sid}/Messages.json -> 201
 *                      {"sid":"SM<32 hex>","status":"queued","num_segments":"1"};
 *                      the id is the m= parameter of the StatusCallback form
 *                      field (percent-encoded).
 * Any other method or path in kannel/twilio mode is answered 404 and the
 * connection closed (counted as bad).  Parsing is minimal on purpose: it
 * looks only for the id, never decodes the rest, and never calls back.
 *
 * Output (stdout, line-buffered): one "sink t=... " line per second, and a
 * "sink summary ..." line at the end (SIGINT/SIGTERM, --duration elapsed).
 * --stats-file is rewritten (atomically) every 100 ms with the same keys, so
 * a script can wait for a count.  Times are wall-clock ms since the epoch.
 *
 * usage: sink [--mode webhook|kannel|twilio] [--port N] [--port-file F]
 *             [--stats-file F] [--duration S] [--quiet]
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

#include "util.h"

#define SINK_MAX_HEADER (64 * 1024)
#define SINK_MAX_BODY   (1024 * 1024)
#define SINK_MAX_ID     200
#define SINK_READ_CHUNK (64 * 1024)

/* ---- the set of message ids (open addressing, FNV-1a) ---- */

struct idset {
	char **slot;
	size_t cap; /* power of two */
	size_t n;
};

static uint64_t fnv1a(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static void idset_grow(struct idset *s)
{
	size_t ncap = s->cap ? s->cap * 2 : 1024;
	char **nslot = xcalloc(ncap, sizeof *nslot);

	for (size_t i = 0; i < s->cap; i++) {
		char *k = s->slot[i];
		if (k == NULL)
			continue;
		size_t j = fnv1a(k, strlen(k)) & (ncap - 1);
		while (nslot[j])
			j = (j + 1) & (ncap - 1);
		nslot[j] = k;
	}
	free(s->slot);
	s->slot = nslot;
	s->cap = ncap;
}

/* 1 when the id is new (and now stored), 0 when seen before. */
static int idset_add(struct idset *s, const char *id, size_t len)
{
	size_t j;

	if ((s->n + 1) * 10 > s->cap * 7)
		idset_grow(s);
	j = fnv1a(id, len) & (s->cap - 1);
	while (s->slot[j]) {
		if (strlen(s->slot[j]) == len && memcmp(s->slot[j], id, len) == 0)
			return 0;
		j = (j + 1) & (s->cap - 1);
	}
	s->slot[j] = xstrndup(id, len);
	s->n++;
	return 1;
}

static void idset_free(struct idset *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slot[i]);
	free(s->slot);
	memset(s, 0, sizeof *s);
}

/* ---- the server ---- */

struct sink_stats {
	uint64_t requests;   /* answered 200 */
	uint64_t unique;     /* distinct message ids */
	uint64_t duplicates; /* requests repeating an id */
	uint64_t no_id;      /* requests without a message id */
	uint64_t bad;        /* malformed requests (answered 4xx/5xx, closed) */
	uint64_t conns;      /* connections accepted */
	int64_t first_ms;    /* first request */
	int64_t last_ms;     /* last request */
	int64_t last_unique_ms;
};

enum sink_mode { MODE_WEBHOOK, MODE_KANNEL, MODE_TWILIO };

struct conn;

struct sink {
	uv_loop_t loop;
	uv_tcp_t server;
	uv_signal_t sigint, sigterm;
	uv_timer_t tick, stats_timer, stop_timer;
	struct conn *conns;
	struct idset ids;
	struct sink_stats st;
	uint64_t last_tick_requests;
	int64_t start_ms;
	int quiet;
	int stopping;
	enum sink_mode mode;
	uint64_t sid_salt; /* the first 16 hex digits of every Twilio sid */
	const char *stats_file;
};

struct conn {
	uv_tcp_t tcp;
	struct sink *s;
	struct conn *prev, *next;
	char *rb; /* unparsed input */
	size_t rlen, rcap;
	struct buf out; /* answers gathered during one read */
	uv_shutdown_t sd;
	int closing;
};

struct write_req {
	uv_write_t req;
	char *data;
};

static void sink_stop(struct sink *s);

static void conn_closed(uv_handle_t *h)
{
	struct conn *c = container_of((uv_tcp_t *)h, struct conn, tcp);

	free(c->rb);
	buf_free(&c->out);
	free(c);
}

static void conn_close(struct conn *c)
{
	struct sink *s = c->s;

	if (c->closing)
		return;
	c->closing = 1;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void on_written(uv_write_t *req, int status)
{
	struct write_req *w = container_of(req, struct write_req, req);

	(void)status; /* a failed write shows up as a read error/EOF */
	free(w->data);
	free(w);
}

/* Send c->out: as much as the socket takes now, the rest queued. */
static void conn_flush(struct conn *c)
{
	uv_buf_t b;
	int n;

	if (c->out.len == 0 || c->closing)
		return;
	b = uv_buf_init(c->out.p, (unsigned)c->out.len);
	n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	if (n < 0 && n != UV_EAGAIN) {
		buf_reset(&c->out);
		conn_close(c);
		return;
	}
	if (n < 0)
		n = 0;
	if ((size_t)n < c->out.len) {
		struct write_req *w = xcalloc(1, sizeof *w);
		size_t rest = c->out.len - (size_t)n;

		w->data = xmalloc(rest);
		memcpy(w->data, c->out.p + n, rest);
		b = uv_buf_init(w->data, (unsigned)rest);
		if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
			free(w->data);
			free(w);
			buf_reset(&c->out);
			conn_close(c);
			return;
		}
	}
	buf_reset(&c->out);
}

static void answer_error(struct conn *c, const char *status)
{
	c->s->st.bad++;
	buf_printf(&c->out,
	           "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n"
	           "Connection: close\r\n\r\n",
	           status);
}

/* Case-insensitive header name match at p (len n). */
static int hname_is(const char *p, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

static void trim(const char **v, size_t *n)
{
	while (*n && (**v == ' ' || **v == '\t')) {
		(*v)++;
		(*n)--;
	}
	while (*n && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t'))
		(*n)--;
}

/*
 * The value of the "m" parameter in a URL at p[0..n): after "?m=" / "&m="
 * (plain) or after "%3Fm%3D" / "%26m%3D" (the URL percent-encoded as a
 * parameter value), up to the next '&', '%', space or the end.  1 and
 * *id and *idlen set when found, 0 otherwise.
 */
static int find_m_param(const char *p, size_t n, const char **id, size_t *idlen)
{
	const char *q = p, *e = p + n, *start = NULL;

	while (start == NULL && q < e && (q = memchr(q, 'm', (size_t)(e - q))) != NULL) {
		size_t before = (size_t)(q - p), after = (size_t)(e - q);

		if (after >= 2 && q[1] == '=' && before >= 1 && (q[-1] == '?' || q[-1] == '&'))
			start = q + 2;
		else if (after >= 4 && q[1] == '%' && q[2] == '3' && (q[3] | 0x20) == 'd' &&
		         before >= 3 && q[-3] == '%' &&
		         ((q[-2] == '3' && (q[-1] | 0x20) == 'f') ||
		          (q[-2] == '2' && q[-1] == '6')))
			start = q + 4;
		q++;
	}
	if (start == NULL)
		return 0;
	for (q = start; q < e && *q != '&' && *q != '%' && *q != ' ' && *q != '#'; q++)
		;
	if (q == start || (size_t)(q - start) > SINK_MAX_ID)
		return 0;
	*id = start;
	*idlen = (size_t)(q - start);
	return 1;
}

/* The value of form/query parameter name (with its '=') in p[0..n), up to
 * the next '&' or the end; NULL when absent. */
static const char *find_param(const char *p, size_t n, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);
	const char *q = p, *e = p + n;

	while (q < e && (q = memmem(q, (size_t)(e - q), name, nl)) != NULL) {
		if (q == p || q[-1] == '&' || q[-1] == '?') {
			const char *v = q + nl, *amp = memchr(v, '&', (size_t)(e - v));

			*vlen = (size_t)((amp ? amp : e) - v);
			return v;
		}
		q += nl;
	}
	return NULL;
}

static void count_id(struct sink *s, const char *id, size_t idlen)
{
	s->st.last_ms = now_ms();
	if (s->st.requests == 0)
		s->st.first_ms = s->st.last_ms;
	s->st.requests++;
	if (id == NULL) {
		s->st.no_id++;
	} else if (idset_add(&s->ids, id, idlen)) {
		s->st.unique++;
		s->st.last_unique_ms = s->st.last_ms;
	} else {
		s->st.duplicates++;
	}
}

static void answer(struct conn *c, const char *status, const char *ctype, const char *body, int bn,
                   int close_after)
{
	buf_printf(&c->out, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n%.*s",
	           status, ctype, bn, close_after ? "Connection: close\r\n" : "", bn, body);
}

/* Is target "/2010-04-01/Accounts/{sid}/Messages.json" (sid: one segment)? */
static int twilio_path(const char *t, size_t n)
{
	static const char pre[] = "/2010-04-01/Accounts/", suf[] = "/Messages.json";
	const char *sid, *slash;

	if (n < sizeof pre - 1 + 1 + sizeof suf - 1 || memcmp(t, pre, sizeof pre - 1) != 0)
		return 0;
	sid = t + sizeof pre - 1;
	slash = memchr(sid, '/', (size_t)(t + n - sid));
	return slash != NULL && slash > sid && (size_t)(t + n - slash) == sizeof suf - 1 &&
	       memcmp(slash, suf, sizeof suf - 1) == 0;
}

/*
 * Answer one complete request as the provider of s->mode.  hdr_id is the
 * id from a header (X-Clubd-Message-Id or X-Kannel-DLR-Url's m=), or NULL.
 * Returns 0, or -1 when the connection must close.
 */
static int handle(struct conn *c, const char *method, size_t mlen, const char *target, size_t tlen,
                  const char *body, size_t blen, const char *hdr_id, size_t hdr_idlen,
                  int close_after)
{
	struct sink *s = c->s;
	const char *id = hdr_id, *v;
	size_t idlen = hdr_idlen, vlen;
	char out[128];
	int bn;

	switch (s->mode) {
	case MODE_WEBHOOK:
		count_id(s, id, idlen);
		bn = snprintf(out, sizeof out, "{\"id\":\"%" PRIu64 "\"}", s->st.requests);
		answer(c, "200 OK", "application/json", out, bn, close_after);
		break;
	case MODE_KANNEL: {
		static const char path[] = "/cgi-bin/sendsms", ok[] = "0: Accepted for delivery";
		const char *qm = memchr(target, '?', tlen);
		size_t plen = qm ? (size_t)(qm - target) : tlen;

		if (!((mlen == 3 && memcmp(method, "GET", 3) == 0) ||
		      (mlen == 4 && memcmp(method, "POST", 4) == 0)) ||
		    plen != sizeof path - 1 || memcmp(target, path, plen) != 0) {
			answer_error(c, "404 Not Found");
			return -1;
		}
		if (id == NULL && qm != NULL &&
		    (v = find_param(qm + 1, tlen - plen - 1, "dlr-url=", &vlen)) != NULL &&
		    !find_m_param(v, vlen, &id, &idlen))
			id = NULL;
		count_id(s, id, idlen);
		answer(c, "202 Accepted", "text/html", ok, (int)sizeof ok - 1, close_after);
		break;
	}
	case MODE_TWILIO:
		if (!(mlen == 4 && memcmp(method, "POST", 4) == 0) || !twilio_path(target, tlen)) {
			answer_error(c, "404 Not Found");
			return -1;
		}
		if ((v = find_param(body, blen, "StatusCallback=", &vlen)) == NULL ||
		    !find_m_param(v, vlen, &id, &idlen))
			id = NULL;
		count_id(s, id, idlen);
		bn = snprintf(out, sizeof out,
		              "{\"sid\":\"SM%016" PRIx64 "%016" PRIx64
		              "\",\"status\":\"queued\",\"num_segments\":\"1\"}",
		              s->sid_salt, s->st.requests);
		answer(c, "201 Created", "application/json", out, bn, close_after);
		break;
	}
	return close_after ? -1 : 0;
}

/*
 * Parse one request at the start of p[0..len).  Returns the bytes consumed
 * (> 0) after appending the answer, 0 when more input is needed, -1 when the
 * connection must close (the answer, maybe an error, was appended).
 */
static long parse_one(struct conn *c, const char *p, size_t len)
{
	struct sink *s = c->s;
	const char *end = memmem(p, len, "\r\n\r\n", 4);
	const char *line, *eol, *sp1, *sp2, *id = NULL;
	size_t hlen, idlen = 0;
	int64_t clen = 0;
	int close_after = 0, http10 = 0;

	if (end == NULL) {
		if (len > SINK_MAX_HEADER) {
			answer_error(c, "431 Request Header Fields Too Large");
			return -1;
		}
		return 0;
	}
	hlen = (size_t)(end - p) + 4;
	if (hlen > SINK_MAX_HEADER) {
		answer_error(c, "431 Request Header Fields Too Large");
		return -1;
	}
	/* request line: METHOD SP TARGET SP HTTP/1.x */
	eol = memmem(p, hlen, "\r\n", 2);
	if (eol - p < 14 || memcmp(eol - 8, "HTTP/1.", 7) != 0 || eol[-9] != ' ' ||
	    (sp1 = memchr(p, ' ', (size_t)(eol - p))) == NULL || sp1 == p ||
	    (sp2 = eol - 9) <= sp1 + 1) {
		answer_error(c, "400 Bad Request");
		return -1;
	}
	http10 = eol[-1] == '0';
	close_after = http10;
	for (line = eol + 2; line < end; line = eol + 2) {
		const char *colon, *v;
		size_t vn, nn;

		eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
		colon = memchr(line, ':', (size_t)(eol - line));
		if (colon == NULL) {
			answer_error(c, "400 Bad Request");
			return -1;
		}
		nn = (size_t)(colon - line);
		v = colon + 1;
		vn = (size_t)(eol - v);
		trim(&v, &vn);
		if (hname_is(line, nn, "content-length")) {
			char num[24];

			if (vn == 0 || vn >= sizeof num) {
				answer_error(c, "400 Bad Request");
				return -1;
			}
			memcpy(num, v, vn);
			num[vn] = '\0';
			if (parse_i64(num, 0, INT64_MAX, &clen) < 0) {
				answer_error(c, "400 Bad Request");
				return -1;
			}
		} else if (hname_is(line, nn, "transfer-encoding")) {
			answer_error(c, "501 Not Implemented");
			return -1;
		} else if (hname_is(line, nn, "connection")) {
			if (vn == 5 && strncasecmp(v, "close", 5) == 0)
				close_after = 1;
			else if (vn == 10 && strncasecmp(v, "keep-alive", 10) == 0)
				close_after = 0;
		} else if (s->mode == MODE_WEBHOOK && hname_is(line, nn, "x-clubd-message-id")) {
			if (vn == 0 || vn > SINK_MAX_ID) {
				answer_error(c, "400 Bad Request");
				return -1;
			}
			id = v;
			idlen = vn;
		} else if (s->mode == MODE_KANNEL && hname_is(line, nn, "x-kannel-dlr-url")) {
			if (!find_m_param(v, vn, &id, &idlen))
				id = NULL;
		}
	}
	if (clen > SINK_MAX_BODY) {
		answer_error(c, "413 Content Too Large");
		return -1;
	}
	if (len < hlen + (size_t)clen)
		return 0; /* body not complete yet */

	/* a complete request */
	if (handle(c, p, (size_t)(sp1 - p), sp1 + 1, (size_t)(sp2 - sp1 - 1), p + hlen,
	           (size_t)clen, id, idlen, close_after) < 0)
		return -1;
	return (long)(hlen + (size_t)clen);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	(void)status;
	conn_close(container_of((uv_tcp_t *)req->handle, struct conn, tcp));
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct conn *c = container_of((uv_tcp_t *)h, struct conn, tcp);

	(void)suggested;
	if (c->rcap - c->rlen < SINK_READ_CHUNK) {
		c->rcap = c->rlen + SINK_READ_CHUNK;
		c->rb = xrealloc(c->rb, c->rcap);
	}
	*b = uv_buf_init(c->rb + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = container_of((uv_tcp_t *)st, struct conn, tcp);
	size_t off = 0;
	long r = 0;

	(void)b;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	c->rlen += (size_t)nread;
	while (off < c->rlen) {
		r = parse_one(c, c->rb + off, c->rlen - off);
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	if (off > 0) {
		memmove(c->rb, c->rb + off, c->rlen - off);
		c->rlen -= off;
	}
	conn_flush(c);
	if (r < 0 && !c->closing) {
		/* answered with Connection: close: let queued writes go first */
		uv_read_stop(st);
		if (uv_shutdown(&c->sd, st, on_shutdown) < 0)
			conn_close(c);
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	struct sink *s = container_of((uv_tcp_t *)server, struct sink, server);
	struct conn *c;

	if (status < 0 || s->stopping)
		return;
	c = xcalloc(1, sizeof *c);
	c->s = s;
	buf_init(&c->out, 0);
	uv_tcp_init(&s->loop, &c->tcp);
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		uv_close((uv_handle_t *)&c->tcp, conn_closed);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->st.conns++;
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- reporting ---- */

static void stats_line(struct sink *s, struct buf *b)
{
	buf_printf(b,
	           "requests=%" PRIu64 " unique=%" PRIu64 " duplicates=%" PRIu64 " no_id=%" PRIu64
	           " bad=%" PRIu64 " conns=%" PRIu64 " first_ms=%" PRId64 " last_ms=%" PRId64
	           " last_unique_ms=%" PRId64,
	           s->st.requests, s->st.unique, s->st.duplicates, s->st.no_id, s->st.bad,
	           s->st.conns, s->st.first_ms, s->st.last_ms, s->st.last_unique_ms);
}

static void write_stats_file(struct sink *s)
{
	struct buf b;
	char *tmp;
	FILE *f;

	if (s->stats_file == NULL)
		return;
	buf_init(&b, 0);
	stats_line(s, &b);
	buf_puts(&b, s->stopping ? " done=1\n" : " done=0\n");
	tmp = xasprintf("%s.tmp", s->stats_file);
	f = fopen(tmp, "w");
	if (f != NULL) {
		fputs(b.p, f);
		if (fclose(f) == 0)
			rename(tmp, s->stats_file);
	}
	free(tmp);
	buf_free(&b);
}

static void on_tick(uv_timer_t *t)
{
	struct sink *s = container_of(t, struct sink, tick);
	uint64_t d = s->st.requests - s->last_tick_requests;
	struct buf b;

	s->last_tick_requests = s->st.requests;
	if (s->quiet)
		return;
	buf_init(&b, 0);
	stats_line(s, &b);
	printf("sink t=%" PRId64 " req_per_s=%" PRIu64 " %s\n", (now_ms() - s->start_ms) / 1000, d,
	       b.p);
	buf_free(&b);
}

static void on_stats_timer(uv_timer_t *t)
{
	write_stats_file(container_of(t, struct sink, stats_timer));
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct sink *s = h->data;

	(void)signum;
	sink_stop(s);
}

static void on_stop_timer(uv_timer_t *t)
{
	sink_stop(container_of(t, struct sink, stop_timer));
}

static void sink_stop(struct sink *s)
{
	struct buf b;
	double secs;

	if (s->stopping)
		return;
	s->stopping = 1;
	secs = (double)(s->st.last_ms - s->st.first_ms) / 1000.0;
	buf_init(&b, 0);
	stats_line(s, &b);
	printf("sink summary %s req_per_s=%.0f\n", b.p,
	       secs > 0 ? (double)s->st.requests / secs : 0.0);
	buf_free(&b);
	fflush(stdout);
	write_stats_file(s);

	while (s->conns)
		conn_close(s->conns);
	uv_close((uv_handle_t *)&s->server, NULL);
	uv_close((uv_handle_t *)&s->sigint, NULL);
	uv_close((uv_handle_t *)&s->sigterm, NULL);
	uv_close((uv_handle_t *)&s->tick, NULL);
	uv_close((uv_handle_t *)&s->stats_timer, NULL);
	uv_close((uv_handle_t *)&s->stop_timer, NULL);
}

static int write_port_file(const char *path, int port)
{
	char *tmp = xasprintf("%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	int rc = -1;

	if (f != NULL) {
		fprintf(f, "%d\n", port);
		if (fclose(f) == 0 && rename(tmp, path) == 0)
			rc = 0;
	}
	free(tmp);
	return rc;
}

static const char *const mode_names[] = {"webhook", "kannel", "twilio"};

static int parse_mode(const char *v, enum sink_mode *m)
{
	for (size_t i = 0; i < ARRAY_SIZE(mode_names); i++) {
		if (strcmp(v, mode_names[i]) == 0) {
			*m = (enum sink_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

static void usage(void)
{
	fprintf(stderr, "usage: sink [--mode webhook|kannel|twilio] [--port N] [--port-file F]\n"
	                "            [--stats-file F] [--duration SECONDS] [--quiet]\n"
	                "  binds 127.0.0.1 only; --port 0 (default) picks a free port\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct sink *s = xcalloc(1, sizeof *s);
	const char *port_file = NULL;
	int64_t port = 0, duration = 0;
	struct sockaddr_in sa;
	struct sockaddr_storage bound;
	int blen = sizeof bound, r;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--quiet") == 0) {
			s->quiet = 1;
			continue;
		}
		if (v == NULL)
			usage();
		if (strcmp(a, "--port") == 0 && parse_i64(v, 0, 65535, &port) == 0)
			i++;
		else if (strcmp(a, "--duration") == 0 && parse_i64(v, 0, 86400, &duration) == 0)
			i++;
		else if (strcmp(a, "--port-file") == 0)
			port_file = argv[++i];
		else if (strcmp(a, "--mode") == 0 && parse_mode(v, &s->mode) == 0)
			i++;
		else if (strcmp(a, "--stats-file") == 0)
			s->stats_file = argv[++i];
		else
			usage();
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	random_bytes(&s->sid_salt, sizeof s->sid_salt);

	uv_loop_init(&s->loop);
	uv_tcp_init(&s->loop, &s->server);
	uv_ip4_addr("127.0.0.1", (int)port, &sa);
	r = uv_tcp_bind(&s->server, (const struct sockaddr *)&sa, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&s->server, 1024, on_connection);
	if (r == 0)
		r = uv_tcp_getsockname(&s->server, (struct sockaddr *)&bound, &blen);
	if (r < 0) {
		fprintf(stderr, "sink: listen on 127.0.0.1:%" PRId64 ": %s\n", port,
		        uv_strerror(r));
		return 1;
	}
	port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
	if (port_file && write_port_file(port_file, (int)port) < 0) {
		fprintf(stderr, "sink: cannot write %s: %s\n", port_file, strerror(errno));
		return 1;
	}
	fprintf(stderr, "sink: listening on 127.0.0.1:%" PRId64 " mode=%s\n", port,
	        mode_names[s->mode]);

	s->start_ms = now_ms();
	uv_signal_init(&s->loop, &s->sigint);
	uv_signal_init(&s->loop, &s->sigterm);
	s->sigint.data = s->sigterm.data = s;
	uv_signal_start(&s->sigint, on_signal, SIGINT);
	uv_signal_start(&s->sigterm, on_signal, SIGTERM);
	uv_timer_init(&s->loop, &s->tick);
	uv_timer_start(&s->tick, on_tick, 1000, 1000);
	uv_timer_init(&s->loop, &s->stats_timer);
	if (s->stats_file) {
		write_stats_file(s);
		uv_timer_start(&s->stats_timer, on_stats_timer, 100, 100);
	}
	uv_timer_init(&s->loop, &s->stop_timer);
	if (duration > 0)
		uv_timer_start(&s->stop_timer, on_stop_timer, (uint64_t)duration * 1000, 0);

	uv_run(&s->loop, UV_RUN_DEFAULT);
	r = uv_loop_close(&s->loop);
	idset_free(&s->ids);
	free(s);
	if (r != 0) {
		fprintf(stderr, "sink: loop did not close cleanly: %s\n", uv_strerror(r));
		return 1;
	}
	return 0;
}
