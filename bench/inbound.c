/*
 * inbound.c - a load generator for clubd's inbound webhooks: N provider
 * deliveries over C keep-alive connections, each request signed the way
 * the provider signs it, and the latency of every request.
 *
 * Modes (--mode):
 *   sms          POST /v1/inbound/sms, the generic signed JSON webhook:
 *                X-Clubd-Timestamp and X-Clubd-Signature sha256=hex(
 *                HMAC-SHA256(callback secret, ts "." body)).
 *   twilio       POST /v1/inbound/twilio, the form Twilio sends (its full
 *                parameter set), X-Twilio-Signature (HMAC-SHA1 over the URL
 *                and the sorted parameters, channels/twilio_sig.c).
 *   kannel-get   GET /v1/inbound/kannel?k=...&from&to&text&ts&id (get-url).
 *   kannel-post  POST /v1/inbound/kannel?k=...&id (post-url: X-Kannel-*
 *                headers, the text as the body).
 *   telegram     POST /v1/inbound/telegram/chat, one Bot API Update with
 *                X-Telegram-Bot-Api-Secret-Token.
 * Request i carries the provider id PREFIX + %08d(ID_BASE + i % IDS) (for
 * telegram the update_id ID_BASE + i % IDS), so with IDS = N every request
 * is new and with a repeated range every request is a duplicate; senders
 * cycle over --phones numbers (+98912xxxxxxx, or chat ids).
 *
 * Raw sockets and one epoll loop, not libcurl: the client must cost far
 * less CPU than clubd on the same two cores.  Every request is built and
 * signed before the timed run starts (up to PREBUILD_MAX bytes of them; any
 * beyond are built when sent), so the run itself costs little more than the
 * socket I/O; the timestamps are taken then, well inside clubd's 5-minute
 * window for a run of a few minutes at most.  One request in flight per
 * connection (no pipelining), like a provider's HTTP client.  A request
 * that fails is counted, never retried.
 *
 * Owns: its sockets and counters.  Never touches Redis or clubd's files.
 * Connects only to 127.0.0.1.  Secrets come from files and are never
 * printed.  Bounded: stops after N requests or --timeout seconds.
 *
 * Output (stdout, line-buffered): "inbound t=..." once a second, then
 * "inbound summary ..." key=value (requests/s over the whole run, p50, p90,
 * p99 and max latency in ms).  Exit 0 when every request got a 2xx, 3 when
 * some did not, 1 on a fatal error, 2 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "twilio_sig.h"
#include "util.h"

#define REQ_MAX      16384                 /* one request, headers and body */
#define PREBUILD_MAX (1024L * 1024 * 1024) /* bytes of requests built ahead */
#define RESP_MAX     16384                 /* one answer */
#define SHOW_ERRS    5
#define TWILIO_NPAR  20

enum mode { M_SMS, M_TWILIO, M_KANNEL_GET, M_KANNEL_POST, M_TELEGRAM };

struct conn {
	int fd;
	int connected;
	int busy;     /* a request is in flight */
	int want_out; /* EPOLLOUT registered */
	int64_t idx;
	int64_t t0_us;
	struct buf req; /* a request built when sent (past the prebuilt ones) */
	const char *wp; /* the request being written: prebuilt or req.p */
	size_t wlen;
	size_t woff;
	char resp[RESP_MAX + 1];
	size_t rlen;
};

struct gen {
	enum mode mode;
	int port;
	int64_t n, ids, id_base, phones, timeout_s;
	int conc;
	const char *prefix, *text, *to;
	char *secret;     /* sms: the callback secret */
	EVP_MAC_CTX *mac; /* sms, kannel: HMAC-SHA256 keyed with it */
	char *kannel_k;   /* kannel: k= (from the callback secret) */
	char *twilio_token, *twilio_sid, *twilio_url;
	char *tg_secret;
	char *text_pct, *text_json;

	struct buf pre;  /* requests 0..npre-1, back to back */
	size_t *pre_off; /* request i is pre.p[pre_off[i] .. pre_off[i + 1]) */
	int64_t npre;
	struct buf scratch; /* one request, capped at REQ_MAX like a connection's */

	int ep;
	struct conn *c;
	int64_t next, done, ok, http_err[6], transport_err, dup_answers, connects;
	int64_t start_us, first_ok_us, last_done_us;
	uint32_t *lat_us;
	int shown;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The first line of a file, trailing newline and spaces removed; NULL when
 * unreadable or empty. */
static char *read_secret(const char *path)
{
	char line[1024];
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	if (fgets(line, sizeof line, f) == NULL)
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	size_t n = strlen(line);
	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		line[--n] = '\0';
	char *s = n ? xstrdup(line) : NULL;
	explicit_bzero(line, sizeof line);
	return s;
}

/* application/x-www-form-urlencoded / query encoding of s. */
static char *pct(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *o = xmalloc(3 * n + 1), *p = o;
	for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
		if ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
		    (*q >= '0' && *q <= '9') || *q == '-' || *q == '_' || *q == '.' || *q == '~') {
			*p++ = (char)*q;
		} else {
			*p++ = '%';
			*p++ = hex[*q >> 4];
			*p++ = hex[*q & 15];
		}
	}
	*p = '\0';
	return o;
}

/* s as a JSON string literal, quotes included. */
static char *json_quote(const char *s)
{
	struct buf b;
	buf_init(&b, 0);
	buf_puts(&b, "\"");
	for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
		if (*q == '"' || *q == '\\')
			buf_printf(&b, "\\%c", *q);
		else if (*q < 0x20)
			buf_printf(&b, "\\u%04x", *q);
		else
			buf_append(&b, q, 1);
	}
	buf_puts(&b, "\"");
	return buf_steal(&b);
}

/* An HMAC-SHA256 context keyed with key (NULL on failure): keyed once,
 * re-initialised for each signature. */
static EVP_MAC_CTX *hmac_sha256_new(const char *key)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;
	EVP_MAC_free(mac);
	OSSL_PARAM p[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
	    OSSL_PARAM_construct_end()};
	if (c && !EVP_MAC_init(c, (const unsigned char *)key, strlen(key), p)) {
		EVP_MAC_CTX_free(c);
		c = NULL;
	}
	return c;
}

/* hex(HMAC-SHA256(key of c, a || b)) into out (65 bytes; "" on failure). */
static void hmac_sha256_hex(EVP_MAC_CTX *c, const char *a, size_t alen, const char *b, size_t blen,
                            char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	size_t mdlen = 0;
	if (!EVP_MAC_init(c, NULL, 0, NULL) || !EVP_MAC_update(c, (const unsigned char *)a, alen) ||
	    (blen && !EVP_MAC_update(c, (const unsigned char *)b, blen)) ||
	    !EVP_MAC_final(c, md, &mdlen, sizeof md))
		mdlen = 0;
	hex_encode(md, mdlen, out);
	out[2 * mdlen] = '\0';
}

/* ---- requests ---------------------------------------------------------- */

static void id_of(const struct gen *g, int64_t i, char *out, size_t n)
{
	snprintf(out, n, "%s%08" PRId64, g->prefix, g->id_base + i % g->ids);
}

static void phone_of(const struct gen *g, int64_t i, char *out, size_t n)
{
	snprintf(out, n, "+98912%07" PRId64, (i % g->phones) % 10000000);
}

static void req_sms(struct gen *g, struct buf *r, int64_t i)
{
	char id[160], from[32], ts[24], sig[65], body[8192];
	id_of(g, i, id, sizeof id);
	phone_of(g, i, from, sizeof from);
	long long now = (long long)time(NULL);
	snprintf(ts, sizeof ts, "%lld", now);
	int bl = snprintf(body, sizeof body,
	                  "{\"from\":\"%s\",\"to\":\"%s\",\"text\":%s,\"id\":\"%s\","
	                  "\"received_at\":\"%lld\"}",
	                  from, g->to, g->text_json, id, now);
	if (bl < 0 || (size_t)bl >= sizeof body)
		bl = 0;
	char pre[32];
	int pl = snprintf(pre, sizeof pre, "%s.", ts);
	hmac_sha256_hex(g->mac, pre, (size_t)pl, body, (size_t)bl, sig);
	buf_printf(r,
	           "POST /v1/inbound/sms HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
	           "Content-Type: application/json\r\nX-Clubd-Timestamp: %s\r\n"
	           "X-Clubd-Signature: sha256=%s\r\nContent-Length: %d\r\n\r\n",
	           g->port, ts, sig, bl);
	buf_append(r, body, (size_t)bl);
}

static void req_twilio(struct gen *g, struct buf *r, int64_t i)
{
	char sid[160], from[32], sig[64];
	id_of(g, i, sid, sizeof sid);
	phone_of(g, i, from, sizeof from);
	/* what Twilio sends for an incoming SMS (tests/fakes/twilio.py) */
	const char *name[TWILIO_NPAR] = {
	    "ToCountry",  "ToState",  "SmsMessageSid", "NumMedia",
	    "ToCity",     "FromZip",  "SmsSid",        "FromState",
	    "SmsStatus",  "FromCity", "Body",          "FromCountry",
	    "To",         "ToZip",    "NumSegments",   "MessageSid",
	    "AccountSid", "From",     "ApiVersion",    "MessagingServiceSid"};
	const char *value[TWILIO_NPAR] = {
	    "US",    "CA", sid,   "0", "",  "",  sid,           "",   "received",   "",
	    g->text, "IR", g->to, "",  "1", sid, g->twilio_sid, from, "2010-04-01", ""};
	if (twilio_sig_compute(g->twilio_token, g->twilio_url, name, value, TWILIO_NPAR, sig) < 0)
		sig[0] = '\0';
	struct buf body;
	buf_init(&body, 0);
	for (int k = 0; k < TWILIO_NPAR; k++) {
		char *v = k == 10 ? NULL : pct(value[k]);
		if (k)
			buf_append(&body, "&", 1);
		buf_puts(&body, name[k]);
		buf_append(&body, "=", 1);
		buf_puts(&body, v ? v : g->text_pct);
		free(v);
	}
	buf_printf(r,
	           "POST /v1/inbound/twilio HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
	           "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"
	           "User-Agent: TwilioProxy/1.1\r\nX-Twilio-Signature: %s\r\n"
	           "Content-Length: %zu\r\n\r\n",
	           g->port, sig, body.len);
	buf_append(r, body.p, body.len);
	buf_free(&body);
}

static void kannel_ts(char *out, size_t n)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
}

static void req_kannel_get(struct gen *g, struct buf *r, int64_t i)
{
	char id[160], from[32], ts[32];
	id_of(g, i, id, sizeof id);
	phone_of(g, i, from, sizeof from);
	kannel_ts(ts, sizeof ts);
	char *pf = pct(from), *pt = pct(ts), *pi = pct(id), *pto = pct(g->to);
	buf_printf(r,
	           "GET /v1/inbound/kannel?k=%s&from=%s&to=%s&text=%s&ts=%s&id=%s&coding=0 "
	           "HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: Kannel/1.4.5\r\n\r\n",
	           g->kannel_k, pf, pto, g->text_pct, pt, pi, g->port);
	free(pf);
	free(pt);
	free(pi);
	free(pto);
}

static void req_kannel_post(struct gen *g, struct buf *r, int64_t i)
{
	char id[160], from[32], ts[32];
	id_of(g, i, id, sizeof id);
	phone_of(g, i, from, sizeof from);
	kannel_ts(ts, sizeof ts);
	char *pi = pct(id);
	size_t tl = strlen(g->text);
	buf_printf(r,
	           "POST /v1/inbound/kannel?k=%s&id=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
	           "User-Agent: Kannel/1.4.5\r\nContent-Type: text/plain; charset=UTF-8\r\n"
	           "X-Kannel-From: %s\r\nX-Kannel-To: %s\r\nX-Kannel-Time: %s\r\n"
	           "X-Kannel-Coding: 0\r\nContent-Length: %zu\r\n\r\n",
	           g->kannel_k, pi, g->port, from, g->to, ts, tl);
	buf_append(r, g->text, tl);
	free(pi);
}

static void req_telegram(struct gen *g, struct buf *r, int64_t i)
{
	char body[8192];
	int64_t upd = g->id_base + i % g->ids;
	int64_t chat = 500000000 + i % g->phones;
	int bl = snprintf(body, sizeof body,
	                  "{\"update_id\":%" PRId64 ",\"message\":{\"message_id\":%" PRId64
	                  ",\"from\":{\"id\":%" PRId64
	                  ",\"is_bot\":false,\"first_name\":\"Bench\",\"language_code\":\"fa\"},"
	                  "\"chat\":{\"id\":%" PRId64
	                  ",\"first_name\":\"Bench\",\"type\":\"private\"},\"date\":%lld,"
	                  "\"text\":%s}}",
	                  upd, upd, chat, chat, (long long)time(NULL), g->text_json);
	if (bl < 0 || (size_t)bl >= sizeof body)
		bl = 0;
	buf_printf(r,
	           "POST /v1/inbound/telegram/chat HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
	           "Content-Type: application/json\r\nX-Telegram-Bot-Api-Secret-Token: %s\r\n"
	           "Content-Length: %d\r\n\r\n",
	           g->port, g->tg_secret, bl);
	buf_append(r, body, (size_t)bl);
}

/* Request i into r (reset first). */
static void build_one(struct gen *g, struct buf *r, int64_t i)
{
	buf_reset(r);
	switch (g->mode) {
	case M_SMS:
		req_sms(g, r, i);
		break;
	case M_TWILIO:
		req_twilio(g, r, i);
		break;
	case M_KANNEL_GET:
		req_kannel_get(g, r, i);
		break;
	case M_KANNEL_POST:
		req_kannel_post(g, r, i);
		break;
	case M_TELEGRAM:
		req_telegram(g, r, i);
		break;
	}
}

/* Build requests 0.. ahead, back to back, until all N are built or the
 * next would pass PREBUILD_MAX (those are built when sent). */
static void prebuild(struct gen *g)
{
	buf_init(&g->pre, (size_t)PREBUILD_MAX);
	buf_init(&g->scratch, REQ_MAX);
	g->pre_off = xmalloc(((size_t)g->n + 1) * sizeof *g->pre_off);
	g->pre_off[0] = 0;
	for (g->npre = 0; g->npre < g->n; g->npre++) {
		build_one(g, &g->scratch, g->npre);
		if (buf_append(&g->pre, g->scratch.p ? g->scratch.p : "", g->scratch.len) < 0)
			break;
		g->pre_off[g->npre + 1] = g->pre.len;
	}
}

/* Point c at request i: prebuilt, or built now into c->req. */
static void build(struct gen *g, struct conn *c, int64_t i)
{
	if (i < g->npre) {
		c->wp = g->pre.p + g->pre_off[i];
		c->wlen = g->pre_off[i + 1] - g->pre_off[i];
		return;
	}
	build_one(g, &c->req, i);
	c->wp = c->req.p ? c->req.p : "";
	c->wlen = c->req.len;
}

/* ---- connections --------------------------------------------------------- */

static int ep_set(struct gen *g, struct conn *c, int out, int add)
{
	struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0u), .data.ptr = c};
	c->want_out = out;
	return epoll_ctl(g->ep, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &ev) < 0 ? -errno : 0;
}

static void conn_close(struct gen *g, struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(g->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->connected = 0;
	c->rlen = 0;
}

static int conn_open(struct gen *g, struct conn *c)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g->port)};
	int one = 1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	g->connects++;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
		int e = -errno;
		close(c->fd);
		c->fd = -1;
		return e;
	}
	c->connected = 0;
	return ep_set(g, c, 1, 1);
}

static void show_error(struct gen *g, struct conn *c, int status, const char *what)
{
	if (g->shown >= SHOW_ERRS)
		return;
	g->shown++;
	char snip[201];
	const char *b = c->rlen ? strstr(c->resp, "\r\n\r\n") : NULL;
	snprintf(snip, sizeof snip, "%s", b ? b + 4 : "");
	for (size_t i = 0; snip[i]; i++)
		if ((unsigned char)snip[i] < 0x20)
			snip[i] = ' ';
	fprintf(stderr, "inbound: item=%" PRId64 " status=%d error=\"%s\" body=\"%s\"\n", c->idx,
	        status, what, snip);
}

static void finish(struct gen *g, struct conn *c, int status, const char *what)
{
	int64_t t = mono_us(), d = t - c->t0_us;
	/* d + 1: 0 marks a request that never finished */
	g->lat_us[c->idx] = d >= (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)d + 1;
	g->done++;
	g->last_done_us = t;
	c->busy = 0;
	if (status == 0) {
		g->transport_err++;
		show_error(g, c, 0, what);
	} else if (status < 200 || status > 299) {
		g->http_err[status >= 100 && status < 600 ? status / 100 : 0]++;
		show_error(g, c, status, "http status");
	} else {
		if (g->ok++ == 0)
			g->first_ok_us = t;
	}
}

/* Write what is left of c's request: 1 all written (only EPOLLIN now), 0
 * the socket is full (EPOLLOUT registered), <0 a send error (-errno). */
static int conn_write(struct gen *g, struct conn *c)
{
	while (c->woff < c->wlen) {
		ssize_t w = send(c->fd, c->wp + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN)
				return c->want_out ? 0 : (ep_set(g, c, 1, 0) < 0 ? -EIO : 0);
			return -errno;
		}
		c->woff += (size_t)w;
	}
	if (c->want_out && ep_set(g, c, 0, 0) < 0)
		return -EIO;
	return 1;
}

/* Start the next request on c (connecting first when needed). 1 started,
 * 0 nothing left, <0 error. */
static int conn_start(struct gen *g, struct conn *c)
{
	for (;;) {
		if (g->next >= g->n || interrupted)
			return 0;
		if (c->fd < 0) {
			int r = conn_open(g, c);
			if (r < 0)
				return r;
		}
		c->idx = g->next++;
		build(g, c, c->idx);
		c->woff = 0;
		c->rlen = 0;
		c->busy = 1;
		c->t0_us = mono_us();
		if (!c->connected)
			return 1; /* written when the connect completes (EPOLLOUT) */
		int r = conn_write(g, c);
		if (r == -EIO)
			return r;
		if (r >= 0)
			return 1;
		finish(g, c, 0, strerror(-r));
		conn_close(g, c);
	}
}

/* A complete answer in c->resp?  1 with *status and *close, 0 need more,
 * -1 malformed. */
static int parse_resp(struct conn *c, int *status, int *close_after)
{
	c->resp[c->rlen] = '\0';
	char *he = strstr(c->resp, "\r\n\r\n");
	if (!he)
		return c->rlen >= RESP_MAX ? -1 : 0;
	if (strncmp(c->resp, "HTTP/1.", 7) != 0 || c->rlen < 12)
		return -1;
	int64_t st;
	char code[4] = {c->resp[9], c->resp[10], c->resp[11], '\0'};
	if (parse_i64(code, 100, 599, &st) < 0)
		return -1;
	*status = (int)st;
	*close_after = c->resp[7] == '0';
	int64_t clen = -1;
	int chunked = 0;
	for (char *l = strstr(c->resp, "\r\n") + 2; l < he; l = strstr(l, "\r\n") + 2) {
		if (strncasecmp(l, "Content-Length:", 15) == 0) {
			char v[24];
			size_t k = strcspn(l + 15, "\r");
			snprintf(v, sizeof v, "%.*s", (int)k, l + 15);
			char *p = v;
			while (*p == ' ')
				p++;
			if (parse_i64(p, 0, RESP_MAX, &clen) < 0)
				return -1;
		} else if (strncasecmp(l, "Transfer-Encoding:", 18) == 0) {
			chunked = strstr(l, "chunked") != NULL &&
			          strstr(l, "chunked") < strstr(l, "\r\n");
		} else if (strncasecmp(l, "Connection:", 11) == 0) {
			char *e = strstr(l, "\r\n");
			char *k = strcasestr(l, "close");
			if (k && k < e)
				*close_after = 1;
		}
	}
	size_t body = (size_t)(he + 4 - c->resp);
	if (chunked) {
		size_t p = body;
		for (;;) {
			char *eol = strstr(c->resp + p, "\r\n");
			if (!eol)
				return c->rlen >= RESP_MAX ? -1 : 0;
			unsigned long sz = strtoul(c->resp + p, NULL, 16);
			p = (size_t)(eol + 2 - c->resp) + sz;
			if (p + 2 > c->rlen)
				return c->rlen >= RESP_MAX ? -1 : 0;
			if (sz == 0)
				return 1; /* no trailers from clubd */
			p += 2;
		}
	}
	if (clen < 0)
		return -1; /* clubd always sends a length or chunks */
	if (body + (size_t)clen > c->rlen)
		return c->rlen >= RESP_MAX ? -1 : 0;
	return 1;
}

static int on_event(struct gen *g, struct conn *c, uint32_t ev)
{
	if (!c->connected && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t el = sizeof err;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			if (c->busy)
				finish(g, c, 0, strerror(err));
			conn_close(g, c);
			return conn_start(g, c);
		}
		c->connected = 1;
	}
	if (c->busy && c->woff < c->wlen && (ev & EPOLLOUT)) {
		int r = conn_write(g, c);
		if (r == -EIO)
			return r;
		if (r < 0) {
			finish(g, c, 0, strerror(-r));
			conn_close(g, c);
			return conn_start(g, c);
		}
	}
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		for (;;) {
			ssize_t n = recv(c->fd, c->resp + c->rlen, RESP_MAX - c->rlen, 0);
			if (n < 0 && errno == EAGAIN)
				break;
			if (n <= 0) {
				if (c->busy)
					finish(g, c, 0,
					       n == 0 ? "connection closed" : strerror(errno));
				conn_close(g, c);
				return conn_start(g, c);
			}
			c->rlen += (size_t)n;
			if (!c->busy) {
				/* nothing asked: a stray answer */
				conn_close(g, c);
				return conn_start(g, c);
			}
			int status = 0, close_after = 0;
			int r = parse_resp(c, &status, &close_after);
			if (r < 0) {
				finish(g, c, 0, "malformed answer");
				conn_close(g, c);
				return conn_start(g, c);
			}
			if (r == 0)
				continue;
			if (strstr(c->resp, "\"duplicate\":true"))
				g->dup_answers++;
			finish(g, c, status, NULL);
			if (close_after)
				conn_close(g, c);
			return conn_start(g, c);
		}
	}
	return 0;
}

/* ---- results --------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int64_t errors(const struct gen *g)
{
	int64_t e = g->transport_err;
	for (int i = 0; i < 6; i++)
		e += g->http_err[i];
	return e;
}

static double pctl(const uint32_t *s, int64_t n, double p)
{
	if (n <= 0)
		return 0;
	int64_t k = (int64_t)(p * (double)n);
	if (k >= n)
		k = n - 1;
	return s[k] / 1000.0;
}

static const char *mode_name(enum mode m)
{
	static const char *const names[] = {"sms", "twilio", "kannel-get", "kannel-post",
	                                    "telegram"};
	return names[m];
}

static void summary(struct gen *g, int complete)
{
	double wall = (double)((g->done ? g->last_done_us : mono_us()) - g->start_us) / 1e6;
	uint32_t *s = xmalloc((size_t)(g->done ? g->done : 1) * sizeof *s);
	int64_t k = 0;
	/* requests 0..next-1 were started; the finished ones have a latency */
	for (int64_t i = 0; i < g->next && k < g->done; i++)
		if (g->lat_us[i])
			s[k++] = g->lat_us[i] - 1;
	qsort(s, (size_t)k, sizeof *s, cmp_u32);
	printf("inbound summary mode=%s requests=%" PRId64 " ok=%" PRId64 " errors=%" PRId64
	       " transport_errors=%" PRId64 " http_4xx=%" PRId64 " http_5xx=%" PRId64
	       " duplicate_answers=%" PRId64 " concurrency=%d connects=%" PRId64
	       " elapsed_s=%.3f req_per_s=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f"
	       " max_ms=%.3f complete=%d\n",
	       mode_name(g->mode), g->done, g->ok, errors(g), g->transport_err, g->http_err[4],
	       g->http_err[5], g->dup_answers, g->conc, g->connects, wall,
	       wall > 0 ? (double)g->done / wall : 0.0, pctl(s, k, 0.50), pctl(s, k, 0.90),
	       pctl(s, k, 0.99), k ? s[k - 1] / 1000.0 : 0.0, complete);
	free(s);
}

static int run(struct gen *g)
{
	struct epoll_event evs[256];
	int64_t deadline = mono_us() + g->timeout_s * 1000000, tick = 0, tick_done = 0;

	g->start_us = mono_us();
	tick = g->start_us + 1000000;
	for (int i = 0; i < g->conc; i++)
		if (conn_start(g, &g->c[i]) < 0)
			return -EIO;
	while (g->done < g->n) {
		int n = epoll_wait(g->ep, evs, ARRAY_SIZE(evs), 100);
		if (n < 0 && errno != EINTR)
			return -EIO;
		for (int i = 0; i < n; i++)
			if (on_event(g, evs[i].data.ptr, evs[i].events) < 0)
				return -EIO;
		int64_t t = mono_us();
		if (t >= tick) {
			printf("inbound t=%" PRId64 " done=%" PRId64 " ok=%" PRId64
			       " errors=%" PRId64 " per_s=%" PRId64 "\n",
			       (t - g->start_us) / 1000000, g->done, g->ok, errors(g),
			       g->done - tick_done);
			tick_done = g->done;
			tick += 1000000;
		}
		int busy = 0;
		for (int i = 0; i < g->conc; i++)
			busy += g->c[i].busy;
		if (busy == 0 && (g->next >= g->n || interrupted))
			break;
		if (interrupted || t >= deadline) {
			fprintf(stderr, "inbound: %s, %" PRId64 " of %" PRId64 " not answered\n",
			        interrupted ? "interrupted" : "timeout", g->n - g->done, g->n);
			return -ETIMEDOUT;
		}
	}
	return g->done == g->n ? 0 : -ETIMEDOUT;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: inbound --port N --mode sms|twilio|kannel-get|kannel-post|telegram\n"
	        "               [-n REQUESTS] [-c CONNECTIONS] [--ids K] [--id-base B]\n"
	        "               [--prefix P] [--phones P] [--text TEXT] [--to ADDR]\n"
	        "               [--timeout SECONDS] [--secret-file F (sms, kannel)]\n"
	        "               [--twilio-token-file F --twilio-sid AC...] [--tg-secret-file F]\n"
	        "  connects to 127.0.0.1 only\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct gen G, *g = &G;
	const char *mode = NULL, *secret_file = NULL, *tw_file = NULL, *tg_file = NULL;
	int64_t port = 0, conc = 64;
	int rc;

	memset(g, 0, sizeof *g);
	g->n = 10000;
	g->ids = 0;
	g->phones = 10000;
	g->timeout_s = 120;
	g->prefix = "bench-";
	g->text = "ممنون، سفارش رسید";
	g->to = "30001234";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int ok = 1;
		if (v == NULL)
			usage();
		if (strcmp(a, "--port") == 0)
			ok = parse_i64(v, 1, 65535, &port) == 0;
		else if (strcmp(a, "--mode") == 0)
			mode = v;
		else if (strcmp(a, "-n") == 0)
			ok = parse_i64(v, 1, 100000000, &g->n) == 0;
		else if (strcmp(a, "-c") == 0)
			ok = parse_i64(v, 1, 4096, &conc) == 0;
		else if (strcmp(a, "--ids") == 0)
			ok = parse_i64(v, 1, 100000000, &g->ids) == 0;
		else if (strcmp(a, "--id-base") == 0)
			ok = parse_i64(v, 0, INT64_C(1000000000000), &g->id_base) == 0;
		else if (strcmp(a, "--prefix") == 0)
			g->prefix = v;
		else if (strcmp(a, "--phones") == 0)
			ok = parse_i64(v, 1, 10000000, &g->phones) == 0;
		else if (strcmp(a, "--text") == 0)
			g->text = v;
		else if (strcmp(a, "--to") == 0)
			g->to = v;
		else if (strcmp(a, "--timeout") == 0)
			ok = parse_i64(v, 1, 86400, &g->timeout_s) == 0;
		else if (strcmp(a, "--secret-file") == 0)
			secret_file = v;
		else if (strcmp(a, "--twilio-token-file") == 0)
			tw_file = v;
		else if (strcmp(a, "--twilio-sid") == 0)
			g->twilio_sid = xstrdup(v);
		else if (strcmp(a, "--tg-secret-file") == 0)
			tg_file = v;
		else
			ok = 0;
		if (!ok)
			usage();
		i++;
	}
	if (port == 0 || mode == NULL || strlen(g->prefix) > 100)
		usage();
	g->port = (int)port;
	g->conc = (int)conc;
	if (g->ids == 0)
		g->ids = g->n;
	if (strcmp(mode, "sms") == 0)
		g->mode = M_SMS;
	else if (strcmp(mode, "twilio") == 0)
		g->mode = M_TWILIO;
	else if (strcmp(mode, "kannel-get") == 0)
		g->mode = M_KANNEL_GET;
	else if (strcmp(mode, "kannel-post") == 0)
		g->mode = M_KANNEL_POST;
	else if (strcmp(mode, "telegram") == 0)
		g->mode = M_TELEGRAM;
	else
		usage();

	if (g->mode == M_SMS || g->mode == M_KANNEL_GET || g->mode == M_KANNEL_POST) {
		g->secret = secret_file ? read_secret(secret_file) : NULL;
		if (g->secret == NULL) {
			fprintf(stderr,
			        "inbound: --secret-file (the callback secret) is required\n");
			return 2;
		}
		g->mac = hmac_sha256_new(g->secret);
		if (g->mac == NULL) {
			fprintf(stderr, "inbound: cannot set up HMAC-SHA256 (OpenSSL)\n");
			return 1;
		}
		/* k = the first 32 hex digits of HMAC-SHA256(secret, "inbound:kannel") */
		char k[65];
		hmac_sha256_hex(g->mac, "inbound:kannel", 14, "", 0, k);
		k[32] = '\0';
		g->kannel_k = xstrdup(k);
	} else if (g->mode == M_TWILIO) {
		g->twilio_token = tw_file ? read_secret(tw_file) : NULL;
		if (g->twilio_token == NULL || g->twilio_sid == NULL) {
			fprintf(stderr,
			        "inbound: --twilio-token-file and --twilio-sid are required\n");
			return 2;
		}
		g->twilio_url = xasprintf("http://127.0.0.1:%d/v1/inbound/twilio", g->port);
	} else {
		g->tg_secret = tg_file ? read_secret(tg_file) : NULL;
		if (g->tg_secret == NULL) {
			fprintf(stderr, "inbound: --tg-secret-file is required\n");
			return 2;
		}
	}
	g->text_pct = pct(g->text);
	g->text_json = json_quote(g->text);

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);

	g->ep = epoll_create1(EPOLL_CLOEXEC);
	if (g->ep < 0) {
		perror("inbound: epoll_create1");
		return 1;
	}
	g->lat_us = xcalloc((size_t)g->n, sizeof *g->lat_us);
	g->c = xcalloc((size_t)g->conc, sizeof *g->c);
	for (int i = 0; i < g->conc; i++) {
		g->c[i].fd = -1;
		buf_init(&g->c[i].req, REQ_MAX);
	}

	prebuild(g);
	rc = run(g);
	summary(g, rc == 0);

	for (int i = 0; i < g->conc; i++) {
		conn_close(g, &g->c[i]);
		buf_free(&g->c[i].req);
	}
	close(g->ep);
	buf_free(&g->pre);
	buf_free(&g->scratch);
	free(g->pre_off);
	EVP_MAC_CTX_free(g->mac);
	twilio_sig_cleanup();
	free(g->c);
	free(g->lat_us);
	secret_free(g->secret);
	secret_free(g->twilio_token);
	secret_free(g->tg_secret);
	free(g->kannel_k);
	free(g->twilio_sid);
	free(g->twilio_url);
	free(g->text_pct);
	free(g->text_json);
	if (rc < 0 && rc != -ETIMEDOUT)
		return 1;
	return errors(g) > 0 || g->ok < g->n ? 3 : 0;
}
