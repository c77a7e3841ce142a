/*
 * smtp_sink.c - a minimal, fast loopback SMTP receiver for benchmarks: it
 * plays the submission server clubd's smtp driver delivers to, and throws
 * every message away after counting it.
 *
 * Owns the SMTP side only: the server core (a TCP listener bound to
 * 127.0.0.1 only, never any other address, its connections, the set of
 * X-Clubd-Message-Id values seen to count duplicates, the counters and
 * output lines) is sinklib.h's, shared with sink.c.  Never touches Redis,
 * clubd or the disk (except the port and stats files it is told to write);
 * never stores a message body.
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

#include "sinklib.h"
#include "util.h"

#define SSINK_MAX_LINE 4096
#define SSINK_MAX_MSG  (10 * 1024 * 1024)
#define SSINK_MAX_RCPT 100

/* The SMTP counters besides sinklib's (sl_server.proto). */
struct ssink {
	uint64_t rcpts; /* recipients accepted */
	uint64_t bytes; /* message data received */
	uint64_t quits; /* sessions ended with QUIT */
};

enum conn_state { ST_CMD, ST_DATA };

struct conn {
	struct sl_conn c; /* first: sinklib allocates conn_size */
	size_t scanned;   /* bytes of pending message data already searched */
	enum conn_state state;
	int mail; /* MAIL given in this transaction */
	int rcpts;
};

static struct ssink *ssink_of(const struct sl_conn *c)
{
	return c->s->proto;
}

static void reply(struct conn *c, const char *line)
{
	buf_puts(&c->c.out, line);
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
			if (vn == 0 || vn > SL_MAX_ID)
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
	struct sl_server *s = c->c.s;
	size_t idlen = 0;
	const char *id = find_msg_id(d, n, &idlen);

	sl_count_id(s, id, idlen);
	ssink_of(&c->c)->bytes += n;
	buf_printf(&c->c.out, "250 2.0.0 Ok: queued as %" PRIu64 "\r\n", s->st.count);
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
	struct sl_stats *st = &c->c.s->st;
	struct ssink *k = ssink_of(&c->c);

	if (verb_is(line, n, "EHLO")) {
		reply(c, "250-127.0.0.1 clubd bench sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
		         "250-SIZE 10485760\r\n250 ENHANCEDSTATUSCODES\r\n");
		c->mail = c->rcpts = 0;
	} else if (verb_is(line, n, "HELO")) {
		reply(c, "250 127.0.0.1 clubd bench sink\r\n");
		c->mail = c->rcpts = 0;
	} else if (verb_is(line, n, "MAIL")) {
		if (c->mail) {
			st->bad++;
			reply(c, "503 5.5.1 Error: nested MAIL command\r\n");
		} else {
			c->mail = 1;
			c->rcpts = 0;
			reply(c, "250 2.1.0 Ok\r\n");
		}
	} else if (verb_is(line, n, "RCPT")) {
		if (!c->mail) {
			st->bad++;
			reply(c, "503 5.5.1 Error: need MAIL command\r\n");
		} else if (c->rcpts >= SSINK_MAX_RCPT) {
			reply(c, "452 4.5.3 Error: too many recipients\r\n");
		} else {
			c->rcpts++;
			k->rcpts++;
			reply(c, "250 2.1.5 Ok\r\n");
		}
	} else if (verb_is(line, n, "DATA")) {
		if (!c->rcpts) {
			st->bad++;
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
		k->quits++;
		reply(c, "221 2.0.0 Bye\r\n");
		return -1;
	} else {
		st->bad++;
		reply(c, "502 5.5.2 Error: command not recognized\r\n");
	}
	return 0;
}

/*
 * Consume what can be consumed of p[0..len).  Returns the bytes consumed
 * (> 0), 0 when more input is needed, -1 when the connection must close
 * (after the answers appended so far).
 */
static long parse_one(struct sl_conn *sc, const char *p, size_t len)
{
	struct conn *c = container_of(sc, struct conn, c);

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
				sc->s->st.bad++;
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
				sc->s->st.bad++;
				reply(c, "500 5.5.0 Error: line too long\r\n");
				return -1;
			}
			return 0;
		}
		n = (size_t)(nl - p);
		if (n > SSINK_MAX_LINE) {
			sc->s->st.bad++;
			reply(c, "500 5.5.0 Error: line too long\r\n");
			return -1;
		}
		if (command(c, p, n && p[n - 1] == '\r' ? n - 1 : n) < 0)
			return -1;
		return (long)(n + 1);
	}
}

static void greet(struct sl_conn *c)
{
	buf_puts(&c->out, "220 127.0.0.1 ESMTP clubd bench sink\r\n");
}

/* ---- reporting ---- */

static void stats_line(const struct sl_server *s, struct buf *b)
{
	const struct ssink *k = s->proto;

	buf_printf(
	    b,
	    "messages=%" PRIu64 " unique=%" PRIu64 " duplicates=%" PRIu64 " no_id=%" PRIu64
	    " rcpts=%" PRIu64 " bytes=%" PRIu64 " bad=%" PRIu64 " conns=%" PRIu64 " quits=%" PRIu64
	    " first_ms=%" PRId64 " last_ms=%" PRId64 " last_unique_ms=%" PRId64,
	    s->st.count, s->st.unique, s->st.duplicates, s->st.no_id, k->rcpts, k->bytes, s->st.bad,
	    s->st.conns, k->quits, s->st.first_ms, s->st.last_ms, s->st.last_unique_ms);
}

static const struct sl_ops ops = {
    .name = "smtp_sink",
    .rate = "msg_per_s",
    .usage = "usage: smtp_sink [--port N] [--port-file F] [--stats-file F]\n"
             "                 [--duration SECONDS] [--quiet]\n"
             "  binds 127.0.0.1 only; --port 0 (default) picks a free port\n",
    .conn_size = sizeof(struct conn),
    .parse = parse_one,
    .accepted = greet,
    .stats = stats_line,
};

int main(int argc, char **argv)
{
	struct ssink k = {0};

	return sl_main(argc, argv, &ops, &k);
}
