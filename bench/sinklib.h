/*
 * sinklib.h - what the benchmark sinks share (sink.c plays the HTTP
 * providers, smtp_sink.c the SMTP submission server): a TCP listener on
 * 127.0.0.1 only (never any other address), its connections (read buffer,
 * answers gathered per read and written in one go, close after the queued
 * answers on request), the set of message ids seen (to count duplicates),
 * the counters, the once-a-second line, the --stats-file rewritten every
 * 100 ms, the summary line at the end (SIGINT/SIGTERM, --duration) and the
 * options every sink takes: --port N, --port-file F, --stats-file F,
 * --duration S, --quiet.  The program supplies the protocol through a
 * struct sl_ops (its parser, greeting, stats line and extra options).
 *
 * Owns the loop, the listener, the connections and the id set; never
 * touches Redis or clubd.  Header-only (static functions) because the
 * Makefile builds every .c under bench/ as a program.  Limits:
 * ids of SL_MAX_ID bytes; reads of SL_READ_CHUNK; the protocol's own.
 */
#ifndef CLUBD_BENCH_SINKLIB_H
#define CLUBD_BENCH_SINKLIB_H

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "util.h"

#define SL_MAX_ID     200
#define SL_READ_CHUNK (64 * 1024)

/* ---- the set of message ids (open addressing, FNV-1a) ---- */

struct sl_idset {
	char **slot;
	size_t cap; /* power of two */
	size_t n;
};

static uint64_t sl_fnv1a(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static void sl_idset_grow(struct sl_idset *s)
{
	size_t ncap = s->cap ? s->cap * 2 : 1024;
	char **nslot = xcalloc(ncap, sizeof *nslot);

	for (size_t i = 0; i < s->cap; i++) {
		char *k = s->slot[i];
		if (k == NULL)
			continue;
		size_t j = sl_fnv1a(k, strlen(k)) & (ncap - 1);
		while (nslot[j])
			j = (j + 1) & (ncap - 1);
		nslot[j] = k;
	}
	free(s->slot);
	s->slot = nslot;
	s->cap = ncap;
}

/* 1 when the id is new (and now stored), 0 when seen before. */
static int sl_idset_add(struct sl_idset *s, const char *id, size_t len)
{
	size_t j;

	if ((s->n + 1) * 10 > s->cap * 7)
		sl_idset_grow(s);
	j = sl_fnv1a(id, len) & (s->cap - 1);
	while (s->slot[j]) {
		if (strlen(s->slot[j]) == len && memcmp(s->slot[j], id, len) == 0)
			return 0;
		j = (j + 1) & (s->cap - 1);
	}
	s->slot[j] = xstrndup(id, len);
	s->n++;
	return 1;
}

static void sl_idset_free(struct sl_idset *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slot[i]);
	free(s->slot);
	memset(s, 0, sizeof *s);
}

/* ---- the server ---- */

struct sl_stats {
	uint64_t count;      /* requests / messages answered as accepted */
	uint64_t unique;     /* distinct message ids */
	uint64_t duplicates; /* counted ones repeating an id */
	uint64_t no_id;      /* counted ones without a message id */
	uint64_t bad;        /* malformed input, answered with an error */
	uint64_t conns;      /* connections accepted */
	int64_t first_ms;    /* first counted */
	int64_t last_ms;     /* last counted */
	int64_t last_unique_ms;
};

struct sl_server;

struct sl_conn {
	uv_tcp_t tcp;
	struct sl_server *s;
	struct sl_conn *prev, *next;
	char *rb; /* unparsed input */
	size_t rlen, rcap;
	struct buf out; /* answers gathered during one read */
	uv_shutdown_t sd;
	int closing;
};

struct sl_ops {
	const char *name;  /* "sink": the output lines' first word */
	const char *rate;  /* "req_per_s": the per-second count's key */
	const char *usage; /* printed for bad options */
	size_t conn_size;  /* the program's connection: a struct sl_conn first */
	/* Consume what can be consumed of p[0..len), answers appended to
	 * c->out: the bytes consumed (> 0), 0 when more input is needed, -1
	 * to close once the answers are out. */
	long (*parse)(struct sl_conn *c, const char *p, size_t len);
	void (*accepted)(struct sl_conn *c); /* NULL, or a greeting into c->out */
	/* the counters as "key=value ..." (no line end) */
	void (*stats)(const struct sl_server *s, struct buf *b);
	/* NULL, or 0 when option name takes value (then consumed) */
	int (*option)(struct sl_server *s, const char *name, const char *value);
	/* NULL, or the end of the "listening" line (" mode=webhook") */
	const char *(*note)(const struct sl_server *s);
};

struct sl_server {
	uv_loop_t loop;
	uv_tcp_t server;
	uv_signal_t sigint, sigterm;
	uv_timer_t tick, stats_timer, stop_timer;
	struct sl_conn *conns;
	struct sl_idset ids;
	struct sl_stats st;
	uint64_t last_tick_count;
	int64_t start_ms;
	int quiet;
	int stopping;
	const char *stats_file;
	const struct sl_ops *ops;
	void *proto; /* the program's own state (borrowed) */
};

struct sl_write_req {
	uv_write_t req;
	char *data;
};

static void sl_stop(struct sl_server *s);

/* Count one accepted request or message with message id id[0..idlen)
 * (id NULL: none). */
static void sl_count_id(struct sl_server *s, const char *id, size_t idlen)
{
	s->st.last_ms = now_ms();
	if (s->st.count == 0)
		s->st.first_ms = s->st.last_ms;
	s->st.count++;
	if (id == NULL) {
		s->st.no_id++;
	} else if (sl_idset_add(&s->ids, id, idlen)) {
		s->st.unique++;
		s->st.last_unique_ms = s->st.last_ms;
	} else {
		s->st.duplicates++;
	}
}

static void sl_conn_closed(uv_handle_t *h)
{
	struct sl_conn *c = container_of((uv_tcp_t *)h, struct sl_conn, tcp);

	free(c->rb);
	buf_free(&c->out);
	free(c);
}

static void sl_conn_close(struct sl_conn *c)
{
	struct sl_server *s = c->s;

	if (c->closing)
		return;
	c->closing = 1;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	uv_close((uv_handle_t *)&c->tcp, sl_conn_closed);
}

static void sl_on_written(uv_write_t *req, int status)
{
	struct sl_write_req *w = container_of(req, struct sl_write_req, req);

	(void)status; /* a failed write shows up as a read error/EOF */
	free(w->data);
	free(w);
}

/* Send c->out: as much as the socket takes now, the rest queued. */
static void sl_conn_flush(struct sl_conn *c)
{
	uv_buf_t b;
	int n;

	if (c->out.len == 0 || c->closing)
		return;
	b = uv_buf_init(c->out.p, (unsigned)c->out.len);
	n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	if (n < 0 && n != UV_EAGAIN) {
		buf_reset(&c->out);
		sl_conn_close(c);
		return;
	}
	if (n < 0)
		n = 0;
	if ((size_t)n < c->out.len) {
		struct sl_write_req *w = xcalloc(1, sizeof *w);
		size_t rest = c->out.len - (size_t)n;

		w->data = xmalloc(rest);
		memcpy(w->data, c->out.p + n, rest);
		b = uv_buf_init(w->data, (unsigned)rest);
		if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, sl_on_written) < 0) {
			free(w->data);
			free(w);
			buf_reset(&c->out);
			sl_conn_close(c);
			return;
		}
	}
	buf_reset(&c->out);
}

static void sl_on_shutdown(uv_shutdown_t *req, int status)
{
	(void)status;
	sl_conn_close(container_of((uv_tcp_t *)req->handle, struct sl_conn, tcp));
}

static void sl_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct sl_conn *c = container_of((uv_tcp_t *)h, struct sl_conn, tcp);

	(void)suggested;
	if (c->rcap - c->rlen < SL_READ_CHUNK) {
		c->rcap = c->rlen + SL_READ_CHUNK;
		c->rb = xrealloc(c->rb, c->rcap);
	}
	*b = uv_buf_init(c->rb + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static void sl_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct sl_conn *c = container_of((uv_tcp_t *)st, struct sl_conn, tcp);
	size_t off = 0;
	long r = 0;

	(void)b;
	if (nread < 0) {
		sl_conn_close(c);
		return;
	}
	c->rlen += (size_t)nread;
	while (off < c->rlen) {
		r = c->s->ops->parse(c, c->rb + off, c->rlen - off);
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	if (off > 0) {
		memmove(c->rb, c->rb + off, c->rlen - off);
		c->rlen -= off;
	}
	sl_conn_flush(c);
	if (r < 0 && !c->closing) {
		/* close asked for (or a limit): let the queued answers go first */
		uv_read_stop(st);
		if (uv_shutdown(&c->sd, st, sl_on_shutdown) < 0)
			sl_conn_close(c);
	}
}

static void sl_on_connection(uv_stream_t *server, int status)
{
	struct sl_server *s = container_of((uv_tcp_t *)server, struct sl_server, server);
	struct sl_conn *c;

	if (status < 0 || s->stopping)
		return;
	c = xcalloc(1, s->ops->conn_size);
	c->s = s;
	buf_init(&c->out, 0);
	uv_tcp_init(&s->loop, &c->tcp);
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		uv_close((uv_handle_t *)&c->tcp, sl_conn_closed);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->st.conns++;
	if (s->ops->accepted) {
		s->ops->accepted(c);
		sl_conn_flush(c);
	}
	if (!c->closing)
		uv_read_start((uv_stream_t *)&c->tcp, sl_on_alloc, sl_on_read);
}

/* ---- reporting ---- */

static void sl_write_stats_file(struct sl_server *s)
{
	struct buf b;
	char *tmp;
	FILE *f;

	if (s->stats_file == NULL)
		return;
	buf_init(&b, 0);
	s->ops->stats(s, &b);
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

static void sl_on_tick(uv_timer_t *t)
{
	struct sl_server *s = container_of(t, struct sl_server, tick);
	uint64_t d = s->st.count - s->last_tick_count;
	struct buf b;

	s->last_tick_count = s->st.count;
	if (s->quiet)
		return;
	buf_init(&b, 0);
	s->ops->stats(s, &b);
	printf("%s t=%" PRId64 " %s=%" PRIu64 " %s\n", s->ops->name,
	       (now_ms() - s->start_ms) / 1000, s->ops->rate, d, b.p);
	buf_free(&b);
}

static void sl_on_stats_timer(uv_timer_t *t)
{
	sl_write_stats_file(container_of(t, struct sl_server, stats_timer));
}

static void sl_on_signal(uv_signal_t *h, int signum)
{
	(void)signum;
	sl_stop(h->data);
}

static void sl_on_stop_timer(uv_timer_t *t)
{
	sl_stop(container_of(t, struct sl_server, stop_timer));
}

static void sl_stop(struct sl_server *s)
{
	struct buf b;
	double secs;

	if (s->stopping)
		return;
	s->stopping = 1;
	secs = (double)(s->st.last_ms - s->st.first_ms) / 1000.0;
	buf_init(&b, 0);
	s->ops->stats(s, &b);
	printf("%s summary %s %s=%.0f\n", s->ops->name, b.p, s->ops->rate,
	       secs > 0 ? (double)s->st.count / secs : 0.0);
	buf_free(&b);
	fflush(stdout);
	sl_write_stats_file(s);

	while (s->conns)
		sl_conn_close(s->conns);
	uv_close((uv_handle_t *)&s->server, NULL);
	uv_close((uv_handle_t *)&s->sigint, NULL);
	uv_close((uv_handle_t *)&s->sigterm, NULL);
	uv_close((uv_handle_t *)&s->tick, NULL);
	uv_close((uv_handle_t *)&s->stats_timer, NULL);
	uv_close((uv_handle_t *)&s->stop_timer, NULL);
}

static int sl_write_port_file(const char *path, int port)
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

static void sl_usage(const struct sl_ops *ops)
{
	fputs(ops->usage, stderr);
	exit(2);
}

/* The whole program: options, listen, run until stopped.  The exit code. */
static int sl_main(int argc, char **argv, const struct sl_ops *ops, void *proto)
{
	struct sl_server *s = xcalloc(1, sizeof *s);
	const char *port_file = NULL;
	int64_t port = 0, duration = 0;
	struct sockaddr_in sa;
	struct sockaddr_storage bound;
	int blen = sizeof bound, r;

	s->ops = ops;
	s->proto = proto;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--quiet") == 0) {
			s->quiet = 1;
			continue;
		}
		if (v == NULL)
			sl_usage(ops);
		if (strcmp(a, "--port") == 0 && parse_i64(v, 0, 65535, &port) == 0)
			i++;
		else if (strcmp(a, "--duration") == 0 && parse_i64(v, 0, 86400, &duration) == 0)
			i++;
		else if (strcmp(a, "--port-file") == 0)
			port_file = argv[++i];
		else if (strcmp(a, "--stats-file") == 0)
			s->stats_file = argv[++i];
		else if (ops->option && ops->option(s, a, v) == 0)
			i++;
		else
			sl_usage(ops);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);

	uv_loop_init(&s->loop);
	uv_tcp_init(&s->loop, &s->server);
	uv_ip4_addr("127.0.0.1", (int)port, &sa);
	r = uv_tcp_bind(&s->server, (const struct sockaddr *)&sa, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&s->server, 1024, sl_on_connection);
	if (r == 0)
		r = uv_tcp_getsockname(&s->server, (struct sockaddr *)&bound, &blen);
	if (r < 0) {
		fprintf(stderr, "%s: listen on 127.0.0.1:%" PRId64 ": %s\n", ops->name, port,
		        uv_strerror(r));
		return 1;
	}
	port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
	if (port_file && sl_write_port_file(port_file, (int)port) < 0) {
		fprintf(stderr, "%s: cannot write %s: %s\n", ops->name, port_file, strerror(errno));
		return 1;
	}
	fprintf(stderr, "%s: listening on 127.0.0.1:%" PRId64 "%s\n", ops->name, port,
	        ops->note ? ops->note(s) : "");

	s->start_ms = now_ms();
	uv_signal_init(&s->loop, &s->sigint);
	uv_signal_init(&s->loop, &s->sigterm);
	s->sigint.data = s->sigterm.data = s;
	uv_signal_start(&s->sigint, sl_on_signal, SIGINT);
	uv_signal_start(&s->sigterm, sl_on_signal, SIGTERM);
	uv_timer_init(&s->loop, &s->tick);
	uv_timer_start(&s->tick, sl_on_tick, 1000, 1000);
	uv_timer_init(&s->loop, &s->stats_timer);
	if (s->stats_file) {
		sl_write_stats_file(s);
		uv_timer_start(&s->stats_timer, sl_on_stats_timer, 100, 100);
	}
	uv_timer_init(&s->loop, &s->stop_timer);
	if (duration > 0)
		uv_timer_start(&s->stop_timer, sl_on_stop_timer, (uint64_t)duration * 1000, 0);

	uv_run(&s->loop, UV_RUN_DEFAULT);
	r = uv_loop_close(&s->loop);
	sl_idset_free(&s->ids);
	free(s);
	if (r != 0) {
		fprintf(stderr, "%s: loop did not close cleanly: %s\n", ops->name, uv_strerror(r));
		return 1;
	}
	return 0;
}

#endif
