/*
 * sink.c - a minimal, fast loopback HTTP/1.1 receiver for benchmarks: it
 * plays the webhook provider clubd delivers to.
 *
 * Owns the HTTP side only: the server core (a TCP listener bound to
 * 127.0.0.1 only, never any other address, its connections, the set of
 * message ids seen to count duplicates, the counters and output lines) is
 * sinklib.h's, shared with smtp_sink.c.  Never touches Redis or clubd, and
 * does not check signatures (tests/fakes/sink.py does; this one is for
 * speed).
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

#include "sinklib.h"
#include "util.h"

#define SINK_MAX_HEADER (64 * 1024)
#define SINK_MAX_BODY   (1024 * 1024)

enum sink_mode { MODE_WEBHOOK, MODE_KANNEL, MODE_TWILIO };

/* The provider played (sl_server.proto). */
struct sink {
	enum sink_mode mode;
	uint64_t sid_salt; /* the first 16 hex digits of every Twilio sid */
};

static void answer_error(struct sl_conn *c, const char *status)
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
	if (q == start || (size_t)(q - start) > SL_MAX_ID)
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

static void answer(struct sl_conn *c, const char *status, const char *ctype, const char *body,
                   int bn, int close_after)
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
 * Answer one complete request as the provider of the mode.  hdr_id is the
 * id from a header (X-Clubd-Message-Id or X-Kannel-DLR-Url's m=), or NULL.
 * Returns 0, or -1 when the connection must close.
 */
static int handle(struct sl_conn *c, const char *method, size_t mlen, const char *target,
                  size_t tlen, const char *body, size_t blen, const char *hdr_id, size_t hdr_idlen,
                  int close_after)
{
	struct sl_server *s = c->s;
	const struct sink *k = s->proto;
	const char *id = hdr_id, *v;
	size_t idlen = hdr_idlen, vlen;
	char out[128];
	int bn;

	switch (k->mode) {
	case MODE_WEBHOOK:
		sl_count_id(s, id, idlen);
		bn = snprintf(out, sizeof out, "{\"id\":\"%" PRIu64 "\"}", s->st.count);
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
		sl_count_id(s, id, idlen);
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
		sl_count_id(s, id, idlen);
		bn = snprintf(out, sizeof out,
		              "{\"sid\":\"SM%016" PRIx64 "%016" PRIx64
		              "\",\"status\":\"queued\",\"num_segments\":\"1\"}",
		              k->sid_salt, s->st.count);
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
static long parse_one(struct sl_conn *c, const char *p, size_t len)
{
	const struct sink *k = c->s->proto;
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
		} else if (k->mode == MODE_WEBHOOK && hname_is(line, nn, "x-clubd-message-id")) {
			if (vn == 0 || vn > SL_MAX_ID) {
				answer_error(c, "400 Bad Request");
				return -1;
			}
			id = v;
			idlen = vn;
		} else if (k->mode == MODE_KANNEL && hname_is(line, nn, "x-kannel-dlr-url")) {
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

/* ---- reporting ---- */

static void stats_line(const struct sl_server *s, struct buf *b)
{
	buf_printf(b,
	           "requests=%" PRIu64 " unique=%" PRIu64 " duplicates=%" PRIu64 " no_id=%" PRIu64
	           " bad=%" PRIu64 " conns=%" PRIu64 " first_ms=%" PRId64 " last_ms=%" PRId64
	           " last_unique_ms=%" PRId64,
	           s->st.count, s->st.unique, s->st.duplicates, s->st.no_id, s->st.bad, s->st.conns,
	           s->st.first_ms, s->st.last_ms, s->st.last_unique_ms);
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

static int option(struct sl_server *s, const char *name, const char *value)
{
	struct sink *k = s->proto;

	return strcmp(name, "--mode") == 0 ? parse_mode(value, &k->mode) : -EINVAL;
}

static const char *note(const struct sl_server *s)
{
	static char t[32];
	const struct sink *k = s->proto;

	snprintf(t, sizeof t, " mode=%s", mode_names[k->mode]);
	return t;
}

static const struct sl_ops ops = {
    .name = "sink",
    .rate = "req_per_s",
    .usage = "usage: sink [--mode webhook|kannel|twilio] [--port N] [--port-file F]\n"
             "            [--stats-file F] [--duration SECONDS] [--quiet]\n"
             "  binds 127.0.0.1 only; --port 0 (default) picks a free port\n",
    .conn_size = sizeof(struct sl_conn),
    .parse = parse_one,
    .stats = stats_line,
    .option = option,
    .note = note,
};

int main(int argc, char **argv)
{
	struct sink k = {.mode = MODE_WEBHOOK};

	random_bytes(&k.sid_salt, sizeof k.sid_salt);
	return sl_main(argc, argv, &ops, &k);
}
