/*
 * smtp_sink.c - a minimal, fast loopback SMTP receiver for benchmarks: it
 * plays the submission server clubd's smtp driver delivers to, and throws
 * every message away after counting it.
 *
 * Owns: one libuv loop, a TCP listener bound to 127.0.0.1 only (never any
 * other address), its connections, and the set of X-Clubd-Message-Id values
 * seen (to count duplicates).  Never touches Redis, clubd or the disk
 * (except the port and stats files it is told to write); never stores a
 * message body.
 *
 * SMTP: 220 greeting; EHLO (advertises PIPELINING, 8BITMIME, SIZE), HELO,
 * MAIL, RCPT, DATA, RSET, NOOP, QUIT; anything else 502.  No STARTTLS, no
 * AUTH.  Pipelining-friendly: every complete command in a read is answered,
 * and the answers go out in one write.  Limits: a command line of at most
 * 4 KiB (500 and close), a message of at most 10 MiB (552 and close), 100
 * recipients per message (452).  Every message that ends with CRLF.CRLF
 * after 354 is answered 250 and counted; its id is the X-Clubd-Message-Id
 * header (only the header block is looked at).
 *
 * Output (stdout, line-buffered): one "smtp_sink t=..." line per second and
 * a "smtp_sink summary ..." line at the end (SIGINT/SIGTERM, --duration
 * elapsed).  --stats-file is rewritten (atomically) every 100 ms with the
 * same keys (messages, unique, duplicates, no_id, ...), so a script can wait
 * for a count.  Times are wall-clock ms since the epoch.
 *
 * usage: smtp_sink [--port N] [--port-file F] [--stats-file F]
 *                  [--duration S] [--quiet]
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

#define SSINK_MAX_LINE   4096
#define SSINK_MAX_MSG    (10 * 1024 * 1024)
#define SSINK_MAX_RCPT   100
#define SSINK_MAX_ID     200
#define SSINK_READ_CHUNK (64 * 1024)

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

struct ssink_stats {
	uint64_t messages;   /* answered 250 after the data */
	uint64_t unique;     /* distinct message ids */
	uint64_t duplicates; /* messages repeating an id */
	uint64_t no_id;      /* messages without X-Clubd-Message-Id */
	uint64_t rcpts;      /* recipients accepted */
	uint64_t bytes;      /* message data received */
	uint64_t bad;        /* commands answered 5xx, closes for limits */
	uint64_t conns;      /* connections accepted */
	uint64_t quits;      /* sessions ended with QUIT */
	int64_t first_ms;    /* first message */
	int64_t last_ms;     /* last message */
	int64_t last_unique_ms;
};

struct conn;

struct ssink {
	uv_loop_t loop;
	uv_tcp_t server;
	uv_signal_t sigint, sigterm;
	uv_timer_t tick, stats_timer, stop_timer;
	struct conn *conns;
	struct idset ids;
	struct ssink_stats st;
	uint64_t last_tick_messages;
	int64_t start_ms;
	int quiet;
	int stopping;
	const char *stats_file;
};

enum conn_state { ST_CMD, ST_DATA };

struct conn {
	uv_tcp_t tcp;
	struct ssink *s;
	struct conn *prev, *next;
	char *rb; /* unparsed input */
	size_t rlen, rcap;
	size_t scanned; /* bytes of pending message data already searched */
	struct buf out; /* answers gathered during one read */
	enum conn_state state;
	int mail; /* MAIL given in this transaction */
	int rcpts;
	uv_shutdown_t sd;
	int closing;
};

struct write_req {
	uv_write_t req;
	char *data;
};

static void ssink_stop(struct ssink *s);

static void conn_closed(uv_handle_t *h)
{
	struct conn *c = container_of((uv_tcp_t *)h, struct conn, tcp);

	free(c->rb);
	buf_free(&c->out);
	free(c);
}

static void conn_close(struct conn *c)
{
	struct ssink *s = c->s;

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

static void reply(struct conn *c, const char *line)
{
	buf_puts(&c->out, line);
}

/* The X-Clubd-Message-Id value in the header block of d[0..n), or NULL. */
static const char *find_msg_id(const char *d, size_t n, size_t *idlen)
{
	static const char name[] = "X-Clubd-Message-Id:";
	const size_t nl = sizeof name - 1;
	const char *p = d, *e = d + n;

	while (p < e) {
		const char *eol = memchr(p, '\n', (size_t)(e - p));
		size_t ll = (size_t)((eol ? eol : e) - p);

		if (ll && p[ll - 1] == '\r')
			ll--;
		if (ll == 0)
			return NULL; /* end of the header block */
		if (ll > nl && strncasecmp(p, name, nl) == 0) {
			const char *v = p + nl;
			size_t vn = ll - nl;

			while (vn && (*v == ' ' || *v == '\t')) {
				v++;
				vn--;
			}
			while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
				vn--;
			if (vn == 0 || vn > SSINK_MAX_ID)
				return NULL;
			*idlen = vn;
			return v;
		}
		if (eol == NULL)
			break;
		p = eol + 1;
	}
	return NULL;
}

/* The message data d[0..n) (dot-stuffed, without the final ".CRLF") ended. */
static void message_done(struct conn *c, const char *d, size_t n)
{
	struct ssink *s = c->s;
	size_t idlen = 0;
	const char *id = find_msg_id(d, n, &idlen);

	s->st.last_ms = now_ms();
	if (s->st.messages == 0)
		s->st.first_ms = s->st.last_ms;
	s->st.messages++;
	s->st.bytes += n;
	if (id == NULL) {
		s->st.no_id++;
	} else if (idset_add(&s->ids, id, idlen)) {
		s->st.unique++;
		s->st.last_unique_ms = s->st.last_ms;
	} else {
		s->st.duplicates++;
	}
	buf_printf(&c->out, "250 2.0.0 Ok: queued as %" PRIu64 "\r\n", s->st.messages);
	c->mail = 0;
	c->rcpts = 0;
}

static int verb_is(const char *line, size_t n, const char *verb)
{
	size_t vl = strlen(verb);

	return n >= vl && strncasecmp(line, verb, vl) == 0 &&
	       (n == vl || line[vl] == ' ' || line[vl] == ':');
}

/* Answer one command line (without its line end).  -1: close after the
 * answers are out. */
static int command(struct conn *c, const char *line, size_t n)
{
	struct ssink *s = c->s;

	if (verb_is(line, n, "EHLO")) {
		reply(c, "250-127.0.0.1 clubd bench sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
		         "250-SIZE 10485760\r\n250 ENHANCEDSTATUSCODES\r\n");
		c->mail = c->rcpts = 0;
	} else if (verb_is(line, n, "HELO")) {
		reply(c, "250 127.0.0.1 clubd bench sink\r\n");
		c->mail = c->rcpts = 0;
	} else if (verb_is(line, n, "MAIL")) {
		if (c->mail) {
			s->st.bad++;
			reply(c, "503 5.5.1 Error: nested MAIL command\r\n");
		} else {
			c->mail = 1;
			c->rcpts = 0;
			reply(c, "250 2.1.0 Ok\r\n");
		}
	} else if (verb_is(line, n, "RCPT")) {
		if (!c->mail) {
			s->st.bad++;
			reply(c, "503 5.5.1 Error: need MAIL command\r\n");
		} else if (c->rcpts >= SSINK_MAX_RCPT) {
			reply(c, "452 4.5.3 Error: too many recipients\r\n");
		} else {
			c->rcpts++;
			s->st.rcpts++;
			reply(c, "250 2.1.5 Ok\r\n");
		}
	} else if (verb_is(line, n, "DATA")) {
		if (!c->rcpts) {
			s->st.bad++;
			reply(c, "503 5.5.1 Error: need RCPT command\r\n");
		} else {
			c->state = ST_DATA;
			c->scanned = 0;
			reply(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
		}
	} else if (verb_is(line, n, "RSET")) {
		c->mail = c->rcpts = 0;
		reply(c, "250 2.0.0 Ok\r\n");
	} else if (verb_is(line, n, "NOOP")) {
		reply(c, "250 2.0.0 Ok\r\n");
	} else if (verb_is(line, n, "QUIT")) {
		s->st.quits++;
		reply(c, "221 2.0.0 Bye\r\n");
		return -1;
	} else {
		s->st.bad++;
		reply(c, "502 5.5.2 Error: command not recognized\r\n");
	}
	return 0;
}

/*
 * Consume what can be consumed of p[0..len).  Returns the bytes consumed
 * (> 0), 0 when more input is needed, -1 when the connection must close
 * (after the answers appended so far).
 */
static long parse_one(struct conn *c, const char *p, size_t len)
{
	if (c->state == ST_DATA) {
		const char *end;
		size_t from;

		if (len >= 3 && memcmp(p, ".\r\n", 3) == 0) { /* an empty message */
			c->state = ST_CMD;
			message_done(c, p, 0);
			return 3;
		}
		from = c->scanned > 4 ? c->scanned - 4 : 0;
		end = len > from ? memmem(p + from, len - from, "\r\n.\r\n", 5) : NULL;
		if (end == NULL) {
			if (len > SSINK_MAX_MSG) {
				c->s->st.bad++;
				reply(c, "552 5.3.4 Error: message too big\r\n");
				return -1;
			}
			c->scanned = len;
			return 0;
		}
		c->state = ST_CMD;
		message_done(c, p, (size_t)(end - p) + 2);
		return (long)((size_t)(end - p) + 5);
	}
	{
		const char *nl = memchr(p, '\n', len);
		size_t n;

		if (nl == NULL) {
			if (len > SSINK_MAX_LINE) {
				c->s->st.bad++;
				reply(c, "500 5.5.0 Error: line too long\r\n");
				return -1;
			}
			return 0;
		}
		n = (size_t)(nl - p);
		if (n > SSINK_MAX_LINE) {
			c->s->st.bad++;
			reply(c, "500 5.5.0 Error: line too long\r\n");
			return -1;
		}
		if (command(c, p, n && p[n - 1] == '\r' ? n - 1 : n) < 0)
			return -1;
		return (long)(n + 1);
	}
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
	if (c->rcap - c->rlen < SSINK_READ_CHUNK) {
		c->rcap = c->rlen + SSINK_READ_CHUNK;
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
		/* QUIT or a limit: let the queued answers go first */
		uv_read_stop(st);
		if (uv_shutdown(&c->sd, st, on_shutdown) < 0)
			conn_close(c);
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	struct ssink *s = container_of((uv_tcp_t *)server, struct ssink, server);
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
	reply(c, "220 127.0.0.1 ESMTP clubd bench sink\r\n");
	conn_flush(c);
	if (!c->closing)
		uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- reporting ---- */

static void stats_line(struct ssink *s, struct buf *b)
{
	buf_printf(b,
	           "messages=%" PRIu64 " unique=%" PRIu64 " duplicates=%" PRIu64 " no_id=%" PRIu64
	           " rcpts=%" PRIu64 " bytes=%" PRIu64 " bad=%" PRIu64 " conns=%" PRIu64
	           " quits=%" PRIu64 " first_ms=%" PRId64 " last_ms=%" PRId64
	           " last_unique_ms=%" PRId64,
	           s->st.messages, s->st.unique, s->st.duplicates, s->st.no_id, s->st.rcpts,
	           s->st.bytes, s->st.bad, s->st.conns, s->st.quits, s->st.first_ms, s->st.last_ms,
	           s->st.last_unique_ms);
}

static void write_stats_file(struct ssink *s)
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
	struct ssink *s = container_of(t, struct ssink, tick);
	uint64_t d = s->st.messages - s->last_tick_messages;
	struct buf b;

	s->last_tick_messages = s->st.messages;
	if (s->quiet)
		return;
	buf_init(&b, 0);
	stats_line(s, &b);
	printf("smtp_sink t=%" PRId64 " msg_per_s=%" PRIu64 " %s\n",
	       (now_ms() - s->start_ms) / 1000, d, b.p);
	buf_free(&b);
}

static void on_stats_timer(uv_timer_t *t)
{
	write_stats_file(container_of(t, struct ssink, stats_timer));
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct ssink *s = h->data;

	(void)signum;
	ssink_stop(s);
}

static void on_stop_timer(uv_timer_t *t)
{
	ssink_stop(container_of(t, struct ssink, stop_timer));
}

static void ssink_stop(struct ssink *s)
{
	struct buf b;
	double secs;

	if (s->stopping)
		return;
	s->stopping = 1;
	secs = (double)(s->st.last_ms - s->st.first_ms) / 1000.0;
	buf_init(&b, 0);
	stats_line(s, &b);
	printf("smtp_sink summary %s msg_per_s=%.0f\n", b.p,
	       secs > 0 ? (double)s->st.messages / secs : 0.0);
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

static void usage(void)
{
	fprintf(stderr, "usage: smtp_sink [--port N] [--port-file F] [--stats-file F]\n"
	                "                 [--duration SECONDS] [--quiet]\n"
	                "  binds 127.0.0.1 only; --port 0 (default) picks a free port\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct ssink *s = xcalloc(1, sizeof *s);
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
		else if (strcmp(a, "--stats-file") == 0)
			s->stats_file = argv[++i];
		else
			usage();
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);

	uv_loop_init(&s->loop);
	uv_tcp_init(&s->loop, &s->server);
	uv_ip4_addr("127.0.0.1", (int)port, &sa);
	r = uv_tcp_bind(&s->server, (const struct sockaddr *)&sa, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&s->server, 1024, on_connection);
	if (r == 0)
		r = uv_tcp_getsockname(&s->server, (struct sockaddr *)&bound, &blen);
	if (r < 0) {
		fprintf(stderr, "smtp_sink: listen on 127.0.0.1:%" PRId64 ": %s\n", port,
		        uv_strerror(r));
		return 1;
	}
	port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
	if (port_file && write_port_file(port_file, (int)port) < 0) {
		fprintf(stderr, "smtp_sink: cannot write %s: %s\n", port_file, strerror(errno));
		return 1;
	}
	fprintf(stderr, "smtp_sink: listening on 127.0.0.1:%" PRId64 "\n", port);

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
		fprintf(stderr, "smtp_sink: loop did not close cleanly: %s\n", uv_strerror(r));
		return 1;
	}
	return 0;
}
