/*
 * imap_poll.c - email replies from an IMAP mailbox (see imap_poll.h).
 *
 * One poll is a chain of libcurl IMAP transfers on the loop's shared multi
 * handle (http_request() with a setup hook), one at a time:
 *
 *   EXAMINE "box"            opens the mailbox read-only (and names its
 *                            UIDVALIDITY), so fetching never sets \Seen;
 *   UID SEARCH UNSEEN        the unseen UIDs (the IMAP_BATCH smallest);
 *   UID FETCH set (UID RFC822.SIZE INTERNALDATE)
 *                            sizes first: a message over max_message_size
 *                            is never fetched; it is refused (audited with
 *                            lua/imap.lua, counted rejected) and marked seen;
 *   box;UID=n                each message by UID (libcurl's own FETCH
 *                            BODY[], read-only here), parsed (mail_parse.c)
 *                            and routed with inbound_route_reply() (dedupe on
 *                            the Message-ID, else uid:{uidvalidity}:{uid}:{box};
 *                            In-Reply-To / References name our message);
 *   SELECT "box", UID STORE set +FLAGS.SILENT (\Seen)
 *                            only the messages the router stored or found
 *                            duplicate, and those refused: a store failure
 *                            ends the batch there and leaves the rest unseen.
 *
 * libcurl keeps its own idea of the selected mailbox and does a SELECT
 * (read-write) whenever it opens a connection; our EXAMINE/SELECT are
 * custom commands it does not track.  So every transfer's count of new
 * connections is checked: after a new one the mailbox is read-write again
 * and EXAMINE is sent before the next fetch; a fetch that itself opened a
 * connection did set \Seen, which is taken back at once (UID STORE
 * -FLAGS.SILENT) and the fetch redone (IMAP_RESTARTS times per poll).  A
 * crash inside that window is the one way a message can be left seen and
 * not stored.  (libcurl 7.88 cannot fetch with BODY.PEEK: a custom FETCH
 * drops the literal.)
 *
 * TLS (tls = yes): imaps://, or STARTTLS on imap:// (CURLUSESSL_ALL: no
 * fallback to plain), the certificate and host name verified against
 * [imap] ca_file or the system's CAs.
 *
 * Messages are parsed on the libuv threadpool (a big one takes GMime tens
 * of milliseconds), one at a time; the rest runs on the loop.
 *
 * Owns: the password (wiped on close, never logged; libcurl keeps its own
 * copy while a transfer runs), one reference on the loop's HTTP client, a
 * timer, the batch of UIDs, the message being parsed.  Never touches
 * contacts or messages: the router does.  Limits: IMAP_BATCH messages per
 * poll (the next poll comes at once when more are waiting), command
 * answers IMAP_CMD_MAX, messages max_message_size, warnings once a minute
 * per problem.  libcurl waits for a FETCH's final tagged answer
 * synchronously (imap_done); it follows the literal at once, so that is
 * one read on a ready socket.
 */
#include "imap_poll.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http.h"
#include "inbound_route.h"
#include "log.h"
#include "mail_parse.h"
#include "util.h"

#define IMAP_BATCH       50                /* messages per poll */
#define IMAP_CMD_MAX     (4 * 1024 * 1024) /* a command's answer (SEARCH of a big box) */
#define IMAP_TIMEOUT_MS  60000
#define IMAP_CONNECT_MS  15000
#define IMAP_BACKOFF_MIN 1000
#define IMAP_BACKOFF_MAX 300000
#define IMAP_WARN_MS     60000
#define IMAP_RESTARTS    3                      /* fetches redone per poll after a new connection */
#define IMAP_AUDIT_MAX   100000                 /* the audit stream's cap (inbound_route.c's) */
#define IMAP_FUTURE_MS   (24LL * 3600 * 1000)   /* dates further ahead are not believed */
#define IMAP_CMD_LEN     (64 + IMAP_BATCH * 11) /* the longest command we build */

enum step {
	ST_EXAMINE,
	ST_SEARCH,
	ST_SIZES,
	ST_FETCH,
	ST_UNSEE,
	ST_SELECT,
	ST_STORE,
};

struct imap_msg {
	uint32_t uid;
	uint64_t size;
	int64_t date_ms; /* INTERNALDATE, 0 when absent */
	int have;        /* the size answer named it (else it was expunged) */
};

struct imap_poll {
	uv_loop_t *loop;
	struct store *st;
	const struct config *cfg;
	int enabled;
	struct http_client *http;
	char *base;     /* imap(s)://host[:port]/<mailbox, URL-encoded>: no secret */
	char *mailbox;  /* as configured */
	char *mbox_cmd; /* "box" as an IMAP quoted string, '%' as %25 (libcurl decodes) */
	char *user;
	char *password; /* wiped on close */
	int tls;
	char *ca_file; /* CAINFO; NULL: libcurl's default (the system's CAs) */
	int64_t every_ms;
	int64_t max_size;
	uv_timer_t timer;

	/* the poll in progress */
	int busy, stopped, closing, inflight;
	enum step step;
	char cmd[IMAP_CMD_LEN]; /* the custom command in flight, "" for a fetch */
	int ro;                 /* the connection's mailbox is open read-only */
	int searched;
	uint32_t uidvalidity;
	struct imap_msg msgs[IMAP_BATCH];
	size_t nmsgs, next;
	int more; /* the search found more than a batch */
	uint32_t done[IMAP_BATCH];
	size_t ndone;
	int restarts;
	char failed[160]; /* the batch stopped on this problem, "" when none */

	int64_t backoff_ms;
	int64_t warned_at;
	char warned[160];
	void (*close_cb)(void *);
	void *close_arg;
};

/* ---- answers -------------------------------------------------------------------- */

static int ci_prefix(const char *s, size_t n, const char *p)
{
	size_t k = strlen(p);
	return n >= k && strncasecmp(s, p, k) == 0;
}

/* Digits at s[*i..n) into a uint32 in [1, UINT32_MAX]; 0 when none. */
static uint64_t digits(const char *s, size_t n, size_t *i, uint64_t max)
{
	uint64_t v = 0;
	size_t start = *i;
	while (*i < n && s[*i] >= '0' && s[*i] <= '9' && *i - start < 20) {
		v = v * 10 + (uint64_t)(s[*i] - '0');
		if (v > max)
			return 0;
		(*i)++;
	}
	return *i > start ? v : 0;
}

int imap_parse_uidvalidity(const char *s, size_t n, uint32_t *v)
{
	static const char key[] = "[UIDVALIDITY ";
	for (size_t i = 0; i + sizeof key - 1 <= n; i++)
		if (strncasecmp(s + i, key, sizeof key - 1) == 0) {
			size_t j = i + sizeof key - 1;
			uint64_t x = digits(s, n, &j, UINT32_MAX);
			if (x && j < n && s[j] == ']') {
				*v = (uint32_t)x;
				return 0;
			}
		}
	return -ENOENT;
}

size_t imap_parse_search(const char *s, size_t n, uint32_t *uids, size_t max)
{
	size_t found = 0, kept = 0;
	for (size_t ls = 0; ls < n;) {
		const char *nl = memchr(s + ls, '\n', n - ls);
		size_t le = nl ? (size_t)(nl - s) : n;
		if (ci_prefix(s + ls, le - ls, "* SEARCH")) {
			size_t i = ls + 8;
			while (i < le) {
				while (i < le && (s[i] == ' ' || s[i] == '\r'))
					i++;
				uint64_t u = digits(s, le, &i, UINT32_MAX);
				if (!u) {
					/* not a number: skip the token */
					while (i < le && s[i] != ' ')
						i++;
					continue;
				}
				int seen = 0;
				for (size_t k = 0; k < kept && !seen; k++)
					seen = uids[k] == u;
				if (seen)
					continue; /* a repeated UID */
				found++;
				/* keep the max smallest, ascending */
				if (kept == max && (max == 0 || u >= uids[kept - 1]))
					continue;
				size_t k = kept < max ? kept++ : kept - 1;
				while (k > 0 && uids[k - 1] > u) {
					uids[k] = uids[k - 1];
					k--;
				}
				uids[k] = (uint32_t)u;
			}
		}
		ls = le + 1;
	}
	return found;
}

static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec"};

int imap_parse_date(const char *s, size_t n, int64_t *ms)
{
	size_t i = 0;
	while (i < n && s[i] == ' ')
		i++;
	uint64_t d = digits(s, n, &i, 31);
	if (!d || i + 5 > n || s[i] != '-' || s[i + 4] != '-')
		return -EINVAL;
	int mon = -1;
	for (int k = 0; k < 12; k++)
		if (strncasecmp(s + i + 1, months[k], 3) == 0)
			mon = k;
	i += 5;
	size_t y0 = i;
	uint64_t y = digits(s, n, &i, 9999);
	if (mon < 0 || i - y0 != 4 || y < 1970 || i >= n || s[i] != ' ')
		return -EINVAL;
	i++;
	uint64_t f[3];
	for (int k = 0; k < 3; k++) {
		size_t f0 = i;
		f[k] = digits(s, n, &i, 99);
		if (i - f0 != 2 || (k < 2 && (i >= n || s[i] != ':')))
			return -EINVAL;
		if (k < 2)
			i++;
	}
	if (f[0] > 23 || f[1] > 59 || f[2] > 60 || i + 6 > n || s[i] != ' ' ||
	    (s[i + 1] != '+' && s[i + 1] != '-'))
		return -EINVAL;
	size_t z0 = i + 2;
	i = z0;
	uint64_t z = 0;
	for (int k = 0; k < 4; k++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		z = z * 10 + (uint64_t)(s[i++] - '0');
	}
	if (z / 100 > 14 || z % 100 > 59)
		return -EINVAL;
	struct tm tm = {.tm_year = (int)y - 1900,
	                .tm_mon = mon,
	                .tm_mday = (int)d,
	                .tm_hour = (int)f[0],
	                .tm_min = (int)f[1],
	                .tm_sec = (int)f[2]};
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	int64_t off = (int64_t)(z / 100 * 3600 + z % 100 * 60);
	if (s[z0 - 1] == '-')
		off = -off;
	*ms = ((int64_t)t - off) * 1000;
	return 0;
}

/* Skip one value at s[*i..le): a quoted string, a parenthesised list
 * (nested) or an atom.  Literals ({n}) do not occur for the items we ask. */
static void skip_value(const char *s, size_t le, size_t *i)
{
	if (*i < le && s[*i] == '"') {
		for ((*i)++; *i < le && s[*i] != '"'; (*i)++)
			if (s[*i] == '\\' && *i + 1 < le)
				(*i)++;
		if (*i < le)
			(*i)++;
		return;
	}
	if (*i < le && s[*i] == '(') {
		int depth = 0;
		for (; *i < le; (*i)++) {
			if (s[*i] == '(')
				depth++;
			else if (s[*i] == ')' && --depth == 0) {
				(*i)++;
				return;
			}
		}
		return;
	}
	while (*i < le && s[*i] != ' ' && s[*i] != ')')
		(*i)++;
}

size_t imap_parse_fetch(const char *s, size_t n,
                        void (*cb)(void *arg, uint32_t uid, uint64_t size, int64_t date_ms),
                        void *arg)
{
	size_t reported = 0;
	for (size_t ls = 0; ls < n;) {
		const char *nl = memchr(s + ls, '\n', n - ls);
		size_t le = nl ? (size_t)(nl - s) : n;
		size_t i = ls;
		if (ci_prefix(s + i, le - i, "* ")) {
			i += 2;
			digits(s, le, &i, UINT32_MAX);
			if (ci_prefix(s + i, le - i, " FETCH (")) {
				i += 8;
				uint64_t uid = 0, size = 0;
				int have_size = 0;
				int64_t date = 0;
				while (i < le && s[i] != ')') {
					while (i < le && s[i] == ' ')
						i++;
					size_t k0 = i;
					while (i < le && s[i] != ' ' && s[i] != ')')
						i++;
					size_t kl = i - k0;
					if (i >= le || s[i] != ' ')
						break;
					i++;
					if (kl == 3 && strncasecmp(s + k0, "UID", 3) == 0) {
						uid = digits(s, le, &i, UINT32_MAX);
					} else if (kl == 11 &&
					           strncasecmp(s + k0, "RFC822.SIZE", 11) == 0) {
						size_t v0 = i;
						size = digits(s, le, &i, UINT64_MAX / 10);
						have_size = i > v0;
					} else if (kl == 12 &&
					           strncasecmp(s + k0, "INTERNALDATE", 12) == 0 &&
					           i < le && s[i] == '"') {
						const char *q = memchr(s + i + 1, '"', le - i - 1);
						if (q && imap_parse_date(s + i + 1,
						                         (size_t)(q - s - i - 1),
						                         &date) < 0)
							date = 0;
						skip_value(s, le, &i);
					} else {
						skip_value(s, le, &i);
					}
				}
				if (uid && have_size) {
					cb(arg, (uint32_t)uid, size, date);
					reported++;
				}
			}
		}
		ls = le + 1;
	}
	return reported;
}

/* ---- configuration ------------------------------------------------------------------ */

static struct cfg_section *imap_section(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->nsections; i++)
		if (strcmp(cfg->sections[i].name, "imap") == 0)
			return &cfg->sections[i];
	return NULL;
}

static int fail(struct cfg_error *err, const struct config *cfg, const char *key, const char *why)
{
	struct cfg_section *s = imap_section(cfg);
	if (s)
		cfg_error_set(err, s, key, "%s", why);
	else
		snprintf(err->msg, sizeof err->msg, "%s: imap.%s: %s", cfg->path ? cfg->path : "",
		         key, why);
	return -1;
}

/* The checks; the password into *pw when pw is set (else wiped). */
static int setup_read(const struct config *cfg, char **pw, struct cfg_error *err)
{
	if (pw)
		*pw = NULL;
	if (!cfg->imap_url || !*cfg->imap_url)
		return 0;
	int imaps = strncmp(cfg->imap_url, "imaps://", 8) == 0;
	if (imaps && !cfg->imap_tls)
		return fail(err, cfg, "tls", "tls = no needs an imap:// url (imaps:// is TLS)");
	if (!cfg->imap_username || !*cfg->imap_username)
		return fail(err, cfg, "username", "is required with url");
	if (!cfg->imap_password_file || !*cfg->imap_password_file)
		return fail(err, cfg, "password_file", "is required with url");
	if (cfg->imap_ca_file && *cfg->imap_ca_file) {
		if (!cfg->imap_tls)
			return fail(err, cfg, "ca_file", "is set but tls = no ignores it");
		FILE *f = fopen(cfg->imap_ca_file, "r");
		if (!f)
			return fail(err, cfg, "ca_file", "cannot be read");
		fclose(f);
	}
	struct cfg_error e = {""};
	char *p = cfg_read_secret(cfg->imap_password_file, &e);
	if (!p)
		return fail(err, cfg, "password_file", e.msg);
	if (pw)
		*pw = p;
	else
		secret_free(p);
	return 0;
}

int imap_poll_check(const struct config *cfg, struct cfg_error *err)
{
	return setup_read(cfg, NULL, err);
}

/* Percent-encode all but unreserved characters and '/' (mailbox hierarchy). */
static void url_path(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~' ||
		    *p == '/') {
			buf_append(b, p, 1);
		} else {
			char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			buf_append(b, e, 3);
		}
	}
}

struct imap_poll *imap_poll_new(uv_loop_t *loop, struct store *st, const struct config *cfg,
                                struct cfg_error *err)
{
	char *pw = NULL;
	if (setup_read(cfg, &pw, err) < 0)
		return NULL;
	struct imap_poll *p = xcalloc(1, sizeof *p);
	p->loop = loop;
	p->st = st;
	p->cfg = cfg;
	uv_timer_init(loop, &p->timer);
	p->timer.data = p;
	if (!pw)
		return p; /* [imap] url empty: nothing to poll */
	p->enabled = 1;
	mail_parse_init(); /* GMime's globals, here on the loop thread */
	p->password = pw;
	p->user = xstrdup(cfg->imap_username);
	p->mailbox = xstrdup(cfg->imap_mailbox);
	p->tls = cfg->imap_tls;
	if (cfg->imap_ca_file && *cfg->imap_ca_file)
		p->ca_file = xstrdup(cfg->imap_ca_file);
	p->every_ms = cfg->imap_interval_ms;
	p->max_size = cfg->imap_max_message_size;
	struct buf b;
	buf_init(&b, 0);
	size_t n = strlen(cfg->imap_url);
	while (n > 0 && cfg->imap_url[n - 1] == '/')
		n--;
	buf_append(&b, cfg->imap_url, n);
	buf_puts(&b, "/");
	url_path(&b, p->mailbox);
	p->base = buf_steal(&b);
	buf_init(&b, 0);
	buf_puts(&b, "\"");
	for (const char *s = p->mailbox; *s; s++)
		buf_puts(&b, *s == '%' ? "%25" : (char[2]){*s, 0});
	buf_puts(&b, "\"");
	p->mbox_cmd = buf_steal(&b);
	return p;
}

void imap_poll_reconfigure(struct imap_poll *p, const struct config *cfg)
{
	if (p)
		p->cfg = cfg;
}

/* ---- the poll ------------------------------------------------------------------------ */

static void poll_begin(struct imap_poll *p);
static void next_msg(struct imap_poll *p);
static void mark(struct imap_poll *p);
static void maybe_closed(struct imap_poll *p);

static void on_timer(uv_timer_t *t)
{
	poll_begin(t->data);
}

static void schedule(struct imap_poll *p, int64_t delay_ms)
{
	if (p->stopped || p->closing)
		return;
	uv_timer_start(&p->timer, on_timer, (uint64_t)delay_ms, 0);
}

/* A request or store call came back: 1 when the poll must stop here. */
static int back(struct imap_poll *p)
{
	p->inflight--;
	if (p->closing) {
		p->busy = 0;
		maybe_closed(p);
		return 1;
	}
	if (p->stopped) {
		p->busy = 0;
		return 1;
	}
	return 0;
}

static void finish(struct imap_poll *p)
{
	p->busy = 0;
	if (p->failed[0]) {
		p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : IMAP_BACKOFF_MIN;
		if (p->backoff_ms > IMAP_BACKOFF_MAX)
			p->backoff_ms = IMAP_BACKOFF_MAX;
		if (strcmp(p->warned, p->failed) != 0 || !p->warned_at ||
		    mono_ms() - p->warned_at >= IMAP_WARN_MS) {
			p->warned_at = mono_ms();
			snprintf(p->warned, sizeof p->warned, "%s", p->failed);
			log_warnx("imap", "mailbox=%s poll failed problem=%s retry_ms=%lld",
			          log_q(p->mailbox), log_q(p->failed), (long long)p->backoff_ms);
		}
		schedule(p, p->backoff_ms);
		return;
	}
	if (p->warned[0])
		log_notice("imap", "mailbox=%s polling again", log_q(p->mailbox));
	p->backoff_ms = 0;
	p->warned[0] = '\0';
	schedule(p, p->more ? 0 : p->every_ms);
}

/* The batch stops on a problem: what was stored so far is still marked. */
static void stop_batch(struct imap_poll *p, const char *why)
{
	if (!p->failed[0])
		snprintf(p->failed, sizeof p->failed, "%s", why ? why : "error");
	if (p->ndone > 0 && p->step != ST_SELECT && p->step != ST_STORE) {
		mark(p);
		return;
	}
	finish(p);
}

static int imap_setup(void *easy, void *arg)
{
	struct imap_poll *p = arg;
	CURL *e = easy;
	CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (rc == CURLE_OK)                                                                \
			rc = curl_easy_setopt(e, opt, val);                                        \
	} while (0)
	SET(CURLOPT_PROTOCOLS_STR, "imap,imaps");
	SET(CURLOPT_USERNAME, p->user);
	SET(CURLOPT_PASSWORD, p->password);
	SET(CURLOPT_USE_SSL, (long)(p->tls ? CURLUSESSL_ALL : CURLUSESSL_NONE));
	if (p->ca_file)
		SET(CURLOPT_CAINFO, p->ca_file);
	if (p->cmd[0])
		SET(CURLOPT_CUSTOMREQUEST, p->cmd);
#undef SET
	return rc == CURLE_OK ? 0 : -EINVAL;
}

static void on_answer(void *arg, const struct http_resp *resp);

/* One transfer: a custom command (cmd set) or the fetch of uid. */
static void request(struct imap_poll *p, enum step step, uint32_t uid, size_t max_body)
{
	p->step = step;
	char url[1024];
	const char *u = p->base;
	if (step == ST_FETCH) {
		p->cmd[0] = '\0';
		snprintf(url, sizeof url, "%s/;UID=%u", p->base, uid);
		u = url;
	}
	struct http_req rq = {
	    .url = u,
	    .timeout_ms = IMAP_TIMEOUT_MS,
	    .connect_timeout_ms = IMAP_CONNECT_MS,
	    .max_body = max_body,
	    .setup = imap_setup,
	    .setup_arg = p,
	};
	p->inflight++;
	if (!p->http || http_request(p->http, &rq, on_answer, p) < 0) {
		p->inflight--;
		stop_batch(p, "request not started");
	}
}

static void command(struct imap_poll *p, enum step step, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void command(struct imap_poll *p, enum step step, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->cmd, sizeof p->cmd, fmt, ap);
	va_end(ap);
	log_trace("imap", "step=%d cmd=%s", (int)step, log_q(p->cmd));
	request(p, step, 0, IMAP_CMD_MAX);
}

/* "1,5,9" of uids into p->cmd after prefix. */
static void uid_set_command(struct imap_poll *p, enum step step, const char *prefix,
                            const uint32_t *uids, size_t n, const char *suffix)
{
	struct buf b;
	buf_init(&b, 0);
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "%s%u", i ? "," : "", uids[i]);
	command(p, step, "%s%s%s", prefix, b.p ? b.p : "", suffix);
	buf_free(&b);
}

static void poll_begin(struct imap_poll *p)
{
	if (!p->enabled || p->busy || p->stopped || p->closing)
		return;
	if (!redis_is_up(p->st->r)) {
		/* nothing could be stored: wait quietly */
		schedule(p, IMAP_BACKOFF_MIN);
		return;
	}
	p->busy = 1;
	p->searched = 0;
	p->nmsgs = p->next = p->ndone = 0;
	p->more = 0;
	p->restarts = 0;
	p->failed[0] = '\0';
	command(p, ST_EXAMINE, "EXAMINE %s", p->mbox_cmd);
}

/* ---- one message ------------------------------------------------------------------- */

static void on_routed(void *arg, const struct inbound_result *res)
{
	struct imap_poll *p = arg;
	if (back(p))
		return;
	if (res->err) {
		/* left unseen: the next poll asks again, the dedupe keeps it once */
		stop_batch(p, "store unavailable");
		return;
	}
	p->done[p->ndone++] = p->msgs[p->next].uid;
	p->next++;
	next_msg(p);
}

static void on_audited(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct imap_poll *p = arg;
	if (back(p))
		return;
	if (!rep || rep->type == REDIS_REPLY_ERROR) {
		stop_batch(p, "store unavailable");
		return;
	}
	inbound_count(INBOUND_T_IMAP, INBOUND_REJECTED);
	p->done[p->ndone++] = p->msgs[p->next].uid;
	p->next++;
	next_msg(p);
}

static void fallback_id(const struct imap_poll *p, uint32_t uid, char *out, size_t n)
{
	snprintf(out, n, "uid:%u:%u:%s", p->uidvalidity, uid, p->mailbox);
}

/* Not routed: audited, counted rejected, marked seen. */
static void refuse(struct imap_poll *p, const char *provider_id, const char *why)
{
	const struct imap_msg *m = &p->msgs[p->next];
	char fb[INBOUND_ID_MAX + 1];
	if (!provider_id) {
		fallback_id(p, m->uid, fb, sizeof fb);
		provider_id = fb;
	}
	log_info("imap", "mailbox=%s uid=%u size=%llu refused reason=%s", log_q(p->mailbox), m->uid,
	         (unsigned long long)m->size, log_q(why));
	struct argv a;
	argv_init(&a);
	argv_add(&a, "refused");
	argv_addll(&a, now_ms());
	argv_add(&a, provider_id);
	argv_add(&a, p->mailbox);
	argv_addll(&a, m->uid);
	argv_addll(&a, (long long)m->size);
	argv_add(&a, why);
	argv_addll(&a, IMAP_AUDIT_MAX);
	p->inflight++;
	store_eval(p->st, SCRIPT_IMAP, &a, on_audited, p);
	argv_free(&a);
}

/* The dedupe key: the Message-ID (hashed when longer than a provider id
 * may be), else the mailbox's UIDVALIDITY and the UID. */
static void provider_id(const struct imap_poll *p, const struct mail_parsed *mp, uint32_t uid,
                        char out[INBOUND_ID_MAX + 1])
{
	size_t n = strlen(mp->message_id);
	if (n == 0) {
		fallback_id(p, uid, out, INBOUND_ID_MAX + 1);
	} else if (n <= INBOUND_ID_MAX) {
		memcpy(out, mp->message_id, n + 1);
	} else {
		unsigned char md[32];
		unsigned int mdl = 0;
		char hex[65];
		EVP_Digest(mp->message_id, n, md, &mdl, EVP_sha256(), NULL);
		hex_encode(md, sizeof md, hex);
		snprintf(out, INBOUND_ID_MAX + 1, "sha256:%s", hex);
	}
}

/* A fetched message parsed on the libuv threadpool (GMime on a large
 * message takes tens of ms): the loop never waits for it. */
struct parse_job {
	uv_work_t req;
	struct imap_poll *p;
	char *raw;
	size_t len;
	int rc;
	struct mail_parsed mp;
};

static void handle(struct imap_poll *p, int rc, struct mail_parsed *mp)
{
	const struct imap_msg *m = &p->msgs[p->next];
	char pid[INBOUND_ID_MAX + 1];
	if (rc < 0) {
		refuse(p, NULL, "unreadable message");
		return;
	}
	provider_id(p, mp, m->uid, pid);
	if (mp->automatic) {
		refuse(p, pid, "automatic answer");
		return;
	}
	struct inbound in;
	memset(&in, 0, sizeof in);
	const char *why = NULL;
	if (!mp->from[0] || addr_normalize(ADDR_EMAIL, mp->from, NULL, in.from, &why) < 0) {
		refuse(p, pid, "no usable sender address");
		return;
	}
	snprintf(in.channel, sizeof in.channel, "email");
	snprintf(in.provider, sizeof in.provider, "imap");
	memcpy(in.provider_id, pid, sizeof in.provider_id);
	snprintf(in.to, sizeof in.to, "%s", mp->to);
	size_t tl = mp->text_len;
	if (tl > INBOUND_TEXT_MAX) {
		tl = INBOUND_TEXT_MAX;
		while (tl > 0 && ((unsigned char)mp->text[tl] & 0xC0) == 0x80)
			tl--;
	}
	memcpy(in.text, mp->text, tl);
	in.text[tl] = '\0';
	int64_t now = now_ms();
	in.received_at = m->date_ms > 0 && m->date_ms <= now + IMAP_FUTURE_MS     ? m->date_ms
	                 : mp->date_ms > 0 && mp->date_ms <= now + IMAP_FUTURE_MS ? mp->date_ms
	                                                                          : now;
	in.action = INBOUND_REPLY;
	char reply_to[MIME_MSGID_MAX + 1] = "";
	if (mail_reply_to_msg(mp, reply_to) < 0)
		reply_to[0] = '\0';
	log_debug("imap", "mailbox=%s uid=%u size=%llu html=%d truncated=%d names_msg=%s",
	          log_q(p->mailbox), m->uid, (unsigned long long)m->size, mp->html,
	          mp->text_truncated || tl < mp->text_len, reply_to[0] ? reply_to : "-");
	p->inflight++;
	inbound_route_reply(p->st, p->cfg, INBOUND_T_IMAP, &in, reply_to, on_routed, p);
}

static void parse_work(uv_work_t *req)
{
	struct parse_job *j = req->data;
	j->rc = mail_parse(j->raw, j->len, &j->mp);
	free(j->raw);
	j->raw = NULL;
}

static void parse_done(uv_work_t *req, int status)
{
	struct parse_job *j = req->data;
	struct imap_poll *p = j->p;
	(void)status; /* never cancelled */
	if (!back(p))
		handle(p, j->rc, &j->mp);
	mail_parsed_free(&j->mp);
	free(j);
}

/* Copy the fetched message (the answer lives only during its callback)
 * and parse it off the loop. */
static void parse(struct imap_poll *p, const char *raw, size_t len)
{
	struct parse_job *j = xcalloc(1, sizeof *j);
	j->p = p;
	j->raw = xmalloc(len + 1);
	memcpy(j->raw, raw, len);
	j->raw[len] = '\0';
	j->len = len;
	j->req.data = j;
	p->inflight++;
	int r = uv_queue_work(p->loop, &j->req, parse_work, parse_done);
	if (r < 0) {
		p->inflight--;
		free(j->raw);
		free(j);
		stop_batch(p, "parse not started");
	}
}

static void next_msg(struct imap_poll *p)
{
	while (p->next < p->nmsgs && !p->msgs[p->next].have)
		p->next++; /* expunged since the search */
	if (p->next >= p->nmsgs) {
		mark(p);
		return;
	}
	const struct imap_msg *m = &p->msgs[p->next];
	if ((int64_t)m->size > p->max_size) {
		refuse(p, NULL, "too large");
		return;
	}
	if (!p->ro) {
		command(p, ST_EXAMINE, "EXAMINE %s", p->mbox_cmd);
		return;
	}
	request(p, ST_FETCH, m->uid, (size_t)m->size + 64 * 1024);
}

static void mark(struct imap_poll *p)
{
	if (p->ndone == 0) {
		finish(p);
		return;
	}
	command(p, ST_SELECT, "SELECT %s", p->mbox_cmd);
}

static void on_size(void *arg, uint32_t uid, uint64_t size, int64_t date_ms)
{
	struct imap_poll *p = arg;
	for (size_t i = 0; i < p->nmsgs; i++)
		if (p->msgs[i].uid == uid) {
			p->msgs[i].size = size;
			p->msgs[i].date_ms = date_ms;
			p->msgs[i].have = 1;
		}
}

static void on_answer(void *arg, const struct http_resp *resp)
{
	struct imap_poll *p = arg;
	if (back(p))
		return;
	if (resp->err != HTTP_E_NONE) {
		if (p->step == ST_FETCH && resp->err == HTTP_E_TOO_LARGE) {
			refuse(p, NULL, "too large");
			return;
		}
		log_debug("imap", "step=%d error=%s", (int)p->step, log_q(resp->error));
		/* curl's text tells a refused connection from a certificate
		 * that is not trusted (ca_file) or names another host */
		char why[160];
		snprintf(why, sizeof why, "connect failed: %s", resp->error);
		stop_batch(p, resp->err == HTTP_E_TIMEOUT   ? "timeout"
		              : resp->err == HTTP_E_CONNECT ? why
		                                            : resp->error);
		return;
	}
	/* libcurl SELECTed on a new connection: read-write from here */
	if (resp->new_connections > 0)
		p->ro = 0;
	switch (p->step) {
	case ST_EXAMINE:
		if (imap_parse_uidvalidity(resp->body, resp->body_len, &p->uidvalidity) < 0) {
			stop_batch(p, "EXAMINE named no UIDVALIDITY");
			return;
		}
		p->ro = 1;
		if (!p->searched)
			command(p, ST_SEARCH, "UID SEARCH UNSEEN");
		else
			next_msg(p);
		return;
	case ST_SEARCH: {
		p->searched = 1;
		uint32_t uids[IMAP_BATCH];
		size_t found = imap_parse_search(resp->body, resp->body_len, uids, IMAP_BATCH);
		p->nmsgs = found < IMAP_BATCH ? found : IMAP_BATCH;
		p->more = found > IMAP_BATCH;
		for (size_t i = 0; i < p->nmsgs; i++)
			p->msgs[i] = (struct imap_msg){.uid = uids[i]};
		if (p->nmsgs == 0) {
			finish(p);
			return;
		}
		uid_set_command(p, ST_SIZES, "UID FETCH ", uids, p->nmsgs,
		                " (UID RFC822.SIZE INTERNALDATE)");
		return;
	}
	case ST_SIZES:
		imap_parse_fetch(resp->body, resp->body_len, on_size, p);
		next_msg(p);
		return;
	case ST_FETCH:
		if (resp->new_connections > 0) {
			/* this fetch ran read-write: take its \Seen back, then again */
			log_info(
			    "imap",
			    "mailbox=%s uid=%u fetched on a new connection: \\Seen taken back, "
			    "fetching again",
			    log_q(p->mailbox), p->msgs[p->next].uid);
			if (++p->restarts > IMAP_RESTARTS)
				snprintf(p->failed, sizeof p->failed, "connections keep dropping");
			command(p, ST_UNSEE, "UID STORE %u -FLAGS.SILENT (\\Seen)",
			        p->msgs[p->next].uid);
			return;
		}
		parse(p, resp->body, resp->body_len);
		return;
	case ST_UNSEE:
		if (p->failed[0]) {
			stop_batch(p, p->failed);
			return;
		}
		next_msg(p); /* EXAMINE (ro is 0), then the same message again */
		return;
	case ST_SELECT:
		uid_set_command(p, ST_STORE, "UID STORE ", p->done, p->ndone,
		                " +FLAGS.SILENT (\\Seen)");
		return;
	case ST_STORE:
		log_debug("imap", "mailbox=%s marked_seen=%zu", log_q(p->mailbox), p->ndone);
		p->ndone = 0;
		finish(p);
		return;
	}
}

/* ---- start, stop, close ------------------------------------------------------------------ */

void imap_poll_start(struct imap_poll *p)
{
	if (!p || !p->enabled)
		return;
	p->http = http_client_get(p->loop);
	log_notice("imap",
	           "polling mailbox=%s every_ms=%lld tls=%d ca_file=%s max_message_size=%lld",
	           log_q(p->mailbox), (long long)p->every_ms, p->tls,
	           log_q(p->ca_file ? p->ca_file : "-"), (long long)p->max_size);
	schedule(p, 0);
}

void imap_poll_stop(struct imap_poll *p)
{
	if (!p)
		return;
	p->stopped = 1;
	uv_timer_stop(&p->timer);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct imap_poll *p = h->data;
	void (*cb)(void *) = p->close_cb;
	void *arg = p->close_arg;
	secret_free(p->password);
	free(p->user);
	free(p->base);
	free(p->mailbox);
	free(p->mbox_cmd);
	free(p->ca_file);
	free(p);
	if (cb)
		cb(arg);
}

static void maybe_closed(struct imap_poll *p)
{
	if (p->closing != 1 || p->inflight > 0)
		return;
	p->closing = 2;
	p->timer.data = p;
	uv_close((uv_handle_t *)&p->timer, on_timer_closed);
}

void imap_poll_close(struct imap_poll *p, void (*cb)(void *arg), void *arg)
{
	if (!p) {
		if (cb)
			cb(arg);
		return;
	}
	p->stopped = 1;
	p->closing = 1;
	p->close_cb = cb;
	p->close_arg = arg;
	uv_timer_stop(&p->timer);
	if (p->http) {
		/* the last reference cancels the transfer in flight (its callback
		 * runs inside put and sees closing) */
		struct http_client *h = p->http;
		p->http = NULL;
		http_client_put(h);
	}
	maybe_closed(p);
}
