/*
 * email_smtp.c - driver "smtp": email submission through libESMTP.
 *
 * send() builds the whole message on the loop (mime.c) and queues it; a
 * pool of `sessions` worker threads each take everything queued (up to
 * session_max_messages) into one SMTP session (smtp_add_message per
 * message, then one blocking smtp_start_session), read every message's
 * and recipient's status, and hand the finished batch back to the loop
 * through a uv_async_t; the loop reports each message exactly once.
 *
 * Success is decided per message, never from smtp_start_session(): it
 * returns 1 whenever the protocol ended without a fallback request, also
 * when the session QUIT early (STARTTLS missing or rejected certificate)
 * or the connection dropped after DATA.  A message is OK only when its
 * recipient got 2xx to RCPT and the message 2xx after the final dot.
 * 4xx, dropped connections, timeouts and TLS failures are TEMPFAIL; 5xx
 * (and a 5xx AUTH failure) PERMFAIL, with the reply code and sanitised text.
 *
 * TLS: our own SSL_CTX (TLS 1.2 only unless tls13 = yes; see
 * docs/channels/smtp.md for why), peer and host name verified by OpenSSL
 * (SSL_VERIFY_PEER, X509_VERIFY_PARAM host/IP), SNI set.  AUTH via
 * libESMTP's auth-client; PLAIN/LOGIN only once TLS is up unless
 * starttls = off.
 *
 * Owns: its config copy, the SSL_CTX, the worker threads, the job queues
 * (under one mutex) and the async handle.  Never touches: the loop or
 * logging from a worker; secrets or bodies in logs or reasons.  Limits:
 * IPv6 literal hosts are not accepted (libESMTP splits host:port at the
 * first colon); connect() has no timeout of its own in libESMTP (the
 * kernel's SYN retries bound it); libESMTP may read a client certificate
 * from $HOME/.authenticate/<host>/private/smtp-starttls.pem.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
/* <openssl/ssl.h> before <libesmtp.h>: it declares smtp_starttls_set_ctx
 * only when SSL_CTX is known. */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <auth-client.h>
#include <libesmtp.h>

#include "callback.h"
#include "channel.h"
#include "email_drivers.h"
#include "log.h"
#include "mime.h"
#include "util.h"

#define SMTP_DEFAULT_PORT 587

enum tls_mode { TLS_REQUIRED, TLS_OPPORTUNISTIC, TLS_OFF };
static const char *const tls_mode_names[] = {"required", "opportunistic", "off"};

struct esmtp_job {
	struct esmtp_job *next;
	chan_done_cb done;
	void *arg;
	char id[MIME_MSGID_MAX + 1];
	char *data; /* the whole message, CRLF */
	size_t len;
	char *rcpt;
	char message_id[300];
	int refused; /* res is final, no session */
	struct chan_result res;
	/* worker only */
	size_t off;
	smtp_message_t msg;
	smtp_recipient_t rc;
};

struct esmtp {
	/* configuration: written by configure/start, then read-only */
	char *chan;
	char *host, *hostport;
	int port;
	enum tls_mode tls;
	int tls_verify, tls13;
	char *ca_file;
	char *username, *password;
	char *from_addr, *from_name, *helo;
	char *unsub_mailto, *unsub_url;
	int session_max, nsessions;
	long timeout_ms;
	SSL_CTX *ssl;

	/* shared with the workers, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct esmtp_job *q_head, *q_tail; /* queued, not in a session yet */
	struct esmtp_job *d_head, *d_tail; /* finished, to report */
	int quit, exited;
	uint64_t sessions, messages;

	/* loop only */
	pthread_t *threads;
	int nthreads;
	uv_async_t async;
	int async_init;
	uv_loop_t *loop;
	struct chan *c;
	int outstanding; /* accepted by send, not reported */
	int stopping, closing;
	void (*stopped)(struct chan *c);
	uint64_t ok, tempfail, permfail, refused;
};

/* ---- configure ----------------------------------------------------------- */

static int host_ok(const char *h)
{
	size_t n = strlen(h);
	if (n < 1 || n > 253)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

static int has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

static int printable_no_space(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n < 1 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

static int esmtp_configure(struct chan *c, struct cfg_error *err)
{
	struct cfg_section *sec = c->cfg->sec;
	struct esmtp *e = xcalloc(1, sizeof *e);
	c->priv = e;
	e->c = c;
	e->chan = xstrdup(c->cfg->name);
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	int64_t v;

	const char *host = cfg_sec_str_req(sec, "host", err);
	if (!host)
		return -1;
	if (!host_ok(host)) {
		cfg_error_set(err, sec, "host",
		              "must be a host name or IPv4 address (no port, no IPv6 literal)");
		return -1;
	}
	e->host = xstrdup(host);
	if (cfg_sec_int(sec, "port", SMTP_DEFAULT_PORT, 1, 65535, &v, err) < 0)
		return -1;
	e->port = (int)v;
	e->hostport = xasprintf("%s:%d", e->host, e->port);

	const char *mode = cfg_sec_str(sec, "starttls", "required");
	e->tls = TLS_OFF + 1;
	for (int i = 0; i < 3; i++)
		if (strcmp(mode, tls_mode_names[i]) == 0)
			e->tls = (enum tls_mode)i;
	if (e->tls > TLS_OFF) {
		cfg_error_set(err, sec, "starttls", "must be required, opportunistic or off");
		return -1;
	}
	if (cfg_sec_bool(sec, "tls_verify", 1, &e->tls_verify, err) < 0)
		return -1;
	if (cfg_sec_bool(sec, "tls13", 0, &e->tls13, err) < 0)
		return -1;
	const char *ca = cfg_sec_str(sec, "ca_file", NULL);
	if (ca && *ca) {
		if (!e->tls_verify) {
			cfg_error_set(err, sec, "ca_file", "is set but tls_verify = no ignores it");
			return -1;
		}
		e->ca_file = xstrdup(ca);
	}

	const char *user = cfg_sec_str(sec, "username", NULL);
	if (cfg_sec_secret(sec, "password_file", &e->password, err) < 0)
		return -1;
	if (user && *user) {
		if (has_ctl(user)) {
			cfg_error_set(err, sec, "username", "contains control characters");
			return -1;
		}
		e->username = xstrdup(user);
		if (!e->password) {
			cfg_error_set(err, sec, "password_file", "is required with username");
			return -1;
		}
	} else if (e->password) {
		cfg_error_set(err, sec, "username", "is required with password_file");
		return -1;
	}

	const char *from = cfg_sec_str_req(sec, "from_address", err);
	if (!from)
		return -1;
	if (!mime_addr_valid(from)) {
		cfg_error_set(err, sec, "from_address",
		              "must be a plain address like news@example.com");
		return -1;
	}
	if (strlen(strchr(from, '@') + 1) > 80) {
		cfg_error_set(err, sec, "from_address",
		              "domain is longer than 80 characters (it is the Message-ID domain)");
		return -1;
	}
	e->from_addr = xstrdup(from);
	const char *fname = cfg_sec_str(sec, "from_name", NULL);
	if (fname && *fname) {
		struct buf t;
		buf_init(&t, 0);
		int r = mime_header_mailbox(&t, "From", fname, e->from_addr);
		buf_free(&t);
		if (r < 0) {
			cfg_error_set(err, sec, "from_name",
			              "must be UTF-8 text without control characters");
			return -1;
		}
		e->from_name = xstrdup(fname);
	}
	const char *helo = cfg_sec_str(sec, "helo_name", NULL);
	if (helo && *helo) {
		if (!host_ok(helo) && !(helo[0] == '[' && printable_no_space(helo, 64))) {
			cfg_error_set(
			    err, sec, "helo_name",
			    "must be a host name (or an address literal like [192.0.2.1])");
			return -1;
		}
		e->helo = xstrdup(helo);
	}
	if (cfg_sec_int(sec, "session_max_messages", 100, 1, 1000, &v, err) < 0)
		return -1;
	e->session_max = (int)v;
	if (cfg_sec_int(sec, "sessions", 2, 1, 64, &v, err) < 0)
		return -1;
	e->nsessions = (int)v;

	const char *um = cfg_sec_str(sec, "unsubscribe_mailto", NULL);
	if (um && *um) {
		if (strncmp(um, "mailto:", 7) == 0)
			um += 7;
		if (!mime_addr_valid(um)) {
			cfg_error_set(err, sec, "unsubscribe_mailto",
			              "must be a plain address like unsubscribe@example.com");
			return -1;
		}
		e->unsub_mailto = xstrdup(um);
	}
	const char *ub = cfg_sec_str(sec, "unsubscribe_url_base", NULL);
	if (ub && *ub) {
		if (!printable_no_space(ub, 512) || strpbrk(ub, "<>\"#") ||
		    (strncmp(ub, "https://", 8) != 0 && strncmp(ub, "http://", 7) != 0)) {
			cfg_error_set(
			    err, sec, "unsubscribe_url_base",
			    "must be the https:// URL of clubd's /v1/unsubscribe, without "
			    "spaces, quotes, '#' or <>");
			return -1;
		}
		if (!callback_enabled()) {
			cfg_error_set(err, sec, "unsubscribe_url_base",
			              "unsubscribe links need [api] callback_secret_file (they are "
			              "signed)");
			return -1;
		}
		e->unsub_url = xstrdup(ub);
	}
	/* libESMTP's timeouts are per protocol phase, at least 1 s */
	e->timeout_ms = c->cfg->timeout_ms < 1000 ? 1000 : (long)c->cfg->timeout_ms;
	return 0;
}

/* ---- TLS ----------------------------------------------------------------- */

/* The session running on this worker thread (for OpenSSL callbacks). */
struct sess;
static _Thread_local struct sess *cur_sess;
static void sess_reason(struct sess *ss, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int verify_cb(int preverify_ok, X509_STORE_CTX *x)
{
	if (!preverify_ok && cur_sess) {
		int e = X509_STORE_CTX_get_error(x);
		sess_reason(cur_sess, "TLS: certificate verification failed (depth %d): %s",
		            X509_STORE_CTX_get_error_depth(x), X509_verify_cert_error_string(e));
	}
	return preverify_ok;
}

/* Set SNI before the ClientHello: libESMTP creates the SSL itself. */
static void info_cb(const SSL *ssl, int where, int ret)
{
	(void)ret;
	if (!(where & SSL_CB_HANDSHAKE_START))
		return;
	struct esmtp *e = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	struct in_addr a4;
	if (e && inet_pton(AF_INET, e->host, &a4) != 1 &&
	    !SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name))
		SSL_set_tlsext_host_name((SSL *)ssl, e->host);
}

static int tls_setup(struct esmtp *e)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (!e->tls13)
		SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_app_data(ctx, e);
	SSL_CTX_set_info_callback(ctx, info_cb);
	if (e->tls_verify) {
		int ok = e->ca_file ? SSL_CTX_load_verify_locations(ctx, e->ca_file, NULL)
		                    : SSL_CTX_set_default_verify_paths(ctx);
		if (ok != 1) {
			char eb[256];
			ERR_error_string_n(ERR_get_error(), eb, sizeof eb);
			log_err("smtp", "chan=%s cannot load CA certificates ca_file=%s err=%s",
			        e->chan, log_q(e->ca_file ? e->ca_file : "(system default)"),
			        log_q(eb));
			ERR_clear_error();
			SSL_CTX_free(ctx);
			return -EINVAL;
		}
		X509_VERIFY_PARAM *p = SSL_CTX_get0_param(ctx);
		X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		struct in_addr a4;
		if (inet_pton(AF_INET, e->host, &a4) == 1)
			X509_VERIFY_PARAM_set1_ip_asc(p, e->host);
		else
			X509_VERIFY_PARAM_set1_host(p, e->host, 0);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	e->ssl = ctx;
	return 0;
}

/* ---- one SMTP session (worker thread) ---------------------------------- */

struct sess {
	struct esmtp *e;
	auth_context_t auth;
	char reason[200]; /* first session-level failure */
	int tls_ok;
	char tls_version[16];
	char last_cmd[12];
	int last_code;
	char last_text[120];
	int in_auth, auth_tried, auth_code;
	char auth_text[120];
	char line[512]; /* a partial reply line between reads */
	size_t line_len;
};

static void sess_reason(struct sess *ss, const char *fmt, ...)
{
	if (ss->reason[0])
		return; /* keep the first cause */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ss->reason, sizeof ss->reason, fmt, ap);
	va_end(ap);
}

/* Server text made safe for reasons and logs: printable ASCII, bounded. */
static void sanitize(char *out, size_t n, const char *s, size_t len)
{
	size_t o = 0;
	while (len && (*s == ' ' || *s == '\t'))
		s++, len--;
	for (size_t i = 0; i < len && o + 1 < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' || c == '\n')
			break;
		out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	while (o && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

static void reply_line(struct sess *ss, const char *l, size_t n)
{
	if (n < 4 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' || l[2] < '0' ||
	    l[2] > '9' || (l[3] != ' ' && l[3] != '-'))
		return;
	if (l[3] == '-')
		return; /* continuation: the final line carries the verdict */
	int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	ss->last_code = code;
	sanitize(ss->last_text, sizeof ss->last_text, l + 4, n - 4);
	if (ss->in_auth && code != 334) {
		ss->in_auth = 0;
		ss->auth_code = code;
		snprintf(ss->auth_text, sizeof ss->auth_text, "%s", ss->last_text);
	}
}

/*
 * The protocol monitor: remembers the last command verb and the last
 * reply, and the AUTH outcome.  Written data is never kept beyond a known
 * verb (AUTH lines and the SASL responses after them carry credentials).
 */
static void monitor_cb(const char *buf, int buflen, int writing, void *arg)
{
	struct sess *ss = arg;
	if (buflen <= 0)
		return;
	size_t n = (size_t)buflen;
	if (writing == SMTP_CB_WRITING) {
		static const char *const verbs[] = {"EHLO", "HELO", "STARTTLS", "AUTH", "MAIL",
		                                    "RCPT", "DATA", "RSET",     "QUIT"};
		/* the verb of the last line written */
		size_t end = n;
		while (end && (buf[end - 1] == '\r' || buf[end - 1] == '\n'))
			end--;
		size_t start = end;
		while (start && buf[start - 1] != '\n')
			start--;
		for (size_t i = 0; i < ARRAY_SIZE(verbs); i++) {
			size_t vl = strlen(verbs[i]);
			if (end - start >= vl && strncmp(buf + start, verbs[i], vl) == 0 &&
			    (end - start == vl || buf[start + vl] == ' ')) {
				/* QUIT follows any failure: keep what failed */
				if (i != 8 || !ss->last_cmd[0])
					snprintf(ss->last_cmd, sizeof ss->last_cmd, "%s", verbs[i]);
				if (i == 3) {
					ss->in_auth = 1;
					ss->auth_tried = 1;
				}
				break;
			}
		}
		return;
	}
	if (writing != SMTP_CB_READING)
		return;
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			reply_line(ss, ss->line, ss->line_len);
			ss->line_len = 0;
		} else if (ss->line_len < sizeof ss->line) {
			ss->line[ss->line_len++] = buf[i];
		}
	}
}

static void event_cb(smtp_session_t s, int ev, void *arg, ...)
{
	(void)s;
	struct sess *ss = arg;
	struct esmtp *e = ss->e;
	va_list ap;
	va_start(ap, arg);
	switch (ev) {
	case SMTP_EV_STARTTLS_OK: {
		SSL *ssl = va_arg(ap, SSL *);
		ss->tls_ok = 1;
		snprintf(ss->tls_version, sizeof ss->tls_version, "%s", SSL_get_version(ssl));
		/* plain-text mechanisms are fine now that the channel is private */
		if (ss->auth)
			auth_set_mechanism_flags(ss->auth, AUTH_PLUGIN_PLAIN, 0);
		break;
	}
	case SMTP_EV_INVALID_PEER_CERTIFICATE: {
		long vr = va_arg(ap, long);
		int *ok = va_arg(ap, int *);
		*ok = !e->tls_verify;
		if (!*ok)
			sess_reason(ss, "TLS: certificate verification failed: %s",
			            X509_verify_cert_error_string(vr));
		break;
	}
	case SMTP_EV_NO_PEER_CERTIFICATE: {
		int *ok = va_arg(ap, int *);
		*ok = !e->tls_verify;
		if (!*ok)
			sess_reason(ss, "TLS: the server sent no certificate");
		break;
	}
	case SMTP_EV_WRONG_PEER_CERTIFICATE: {
		/* libESMTP's own name match (DNS names only) failed; OpenSSL
		 * has already checked the name or IP against the certificate
		 * as part of the verification whose result this is. */
		int *ok = va_arg(ap, int *);
		(void)va_arg(ap, char *);
		SSL *ssl = va_arg(ap, SSL *);
		*ok = !e->tls_verify || SSL_get_verify_result(ssl) == X509_V_OK;
		if (!*ok)
			sess_reason(ss, "TLS: certificate does not match host %s", e->host);
		break;
	}
	case SMTP_EV_WEAK_CIPHER: {
		int bits = va_arg(ap, int);
		int *ok = va_arg(ap, int *);
		*ok = 0;
		sess_reason(ss, "TLS: weak cipher (%d bits)", bits);
		break;
	}
	case SMTP_EV_NO_CLIENT_CERTIFICATE: {
		int *ok = va_arg(ap, int *);
		*ok = 0;
		sess_reason(ss, "TLS: unusable client certificate key under $HOME/.authenticate");
		break;
	}
	case SMTP_EV_UNUSABLE_CLIENT_CERTIFICATE:
		sess_reason(ss, "TLS: unusable client certificate under $HOME/.authenticate");
		break;
	case SMTP_EV_UNUSABLE_CA_LIST:
		sess_reason(ss, "TLS: unusable CA list");
		break;
	case SMTP_EV_EXTNA_STARTTLS:
		sess_reason(ss, "STARTTLS is required but the server does not offer it");
		break;
	default:
		break;
	}
	va_end(ap);
}

static int interact_cb(auth_client_request_t req, char **result, int fields, void *arg)
{
	struct esmtp *e = arg;
	for (int i = 0; i < fields; i++) {
		if (req[i].flags & AUTH_USER)
			result[i] = e->username;
		else if (req[i].flags & AUTH_PASS)
			result[i] = e->password;
		else
			return 0; /* a realm or other field we do not have */
	}
	return 1;
}

/* libESMTP's message source: the whole message in one piece. */
static const char *message_cb(void **ctx, int *len, void *arg)
{
	(void)ctx;
	struct esmtp_job *j = arg;
	if (!len) { /* rewind */
		j->off = 0;
		return NULL;
	}
	size_t left = j->len - j->off;
	if (left > INT_MAX)
		left = INT_MAX;
	*len = (int)left;
	const char *p = j->data + j->off;
	j->off += left;
	return p;
}

/* A reason, truncated to fit (the interesting part comes first). */
static void reasonf(struct chan_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void reasonf(struct chan_result *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof r->reason, fmt, ap);
	va_end(ap);
}

static void set_result(struct esmtp_job *j, int code, const char *what, const char *text)
{
	j->res.status = code >= 500 && code < 600 ? CHAN_PERMFAIL : CHAN_TEMPFAIL;
	snprintf(j->res.reason, sizeof j->res.reason, "%s: %d %s", what, code, text);
}

static void status_text(char *out, size_t n, const smtp_status_t *st)
{
	sanitize(out, n, st->text ? st->text : "", st->text ? strlen(st->text) : 0);
}

/* The session-level cause for a message the server never accepted. */
static void session_failure(struct sess *ss, struct esmtp_job *j, int started, int err)
{
	char eb[128];
	j->res.status = CHAN_TEMPFAIL;
	if (ss->reason[0]) {
		reasonf(&j->res, "%s", ss->reason);
		return;
	}
	if (strcmp(ss->last_cmd, "STARTTLS") == 0 && !ss->tls_ok && ss->last_code == 220) {
		unsigned long oe = ERR_peek_last_error();
		if (oe)
			ERR_error_string_n(oe, eb, sizeof eb);
		else
			snprintf(eb, sizeof eb, "no detail");
		reasonf(&j->res, "TLS handshake failed: %s", eb);
		return;
	}
	const char *what = "session ended before the server accepted the message";
	if (!started)
		what = "no SMTP session";
	if (err != SMTP_ERR_INVAL && err != 0) {
		smtp_strerror(err, eb, sizeof eb);
		const char *msg = eb;
		if (err < 0) /* smtp_strerror may return a static string */
			msg = strerror_r(-err, eb, sizeof eb);
		else if (err == SMTP_ERR_DROPPED_CONNECTION) /* also a read timeout */
			msg = "connection closed by the server or timed out";
		char tls[140] = "";
		unsigned long oe = ss->tls_ok ? ERR_peek_last_error() : 0;
		if (oe) {
			memcpy(tls, "; TLS: ", 8);
			ERR_error_string_n(oe, tls + 7, sizeof tls - 7);
		}
		if (ss->last_cmd[0])
			reasonf(&j->res, "%s: %s (after %s%s)", what, msg, ss->last_cmd, tls);
		else
			reasonf(&j->res, "%s: %s%s", what, msg, tls);
	} else if (ss->last_code) {
		reasonf(&j->res, "%s (after %s, last reply %d %s)", what,
		        ss->last_cmd[0] ? ss->last_cmd : "connect", ss->last_code, ss->last_text);
	} else {
		reasonf(&j->res, "%s", what);
	}
}

static void job_result(struct sess *ss, struct esmtp_job *j, int started, int err)
{
	struct esmtp *e = ss->e;
	char text[128];
	const smtp_status_t *ms = smtp_message_transfer_status(j->msg);
	const smtp_status_t *rp = smtp_reverse_path_status(j->msg);
	const smtp_status_t *rs = smtp_recipient_status(j->rc);
	if (ms && rs && ms->code >= 200 && ms->code < 300 && rs->code >= 200 && rs->code < 300 &&
	    smtp_recipient_check_complete(j->rc)) {
		j->res.status = CHAN_OK;
		/* fits with our 26-character ids (configure caps the domain) */
		size_t ml = strlen(j->message_id);
		if (ml < sizeof j->res.provider_id)
			memcpy(j->res.provider_id, j->message_id, ml + 1);
		return;
	}
	if (ss->auth_code >= 400) {
		set_result(j, ss->auth_code, "authentication failed", ss->auth_text);
		return;
	}
	if (rp && rp->code >= 400) {
		status_text(text, sizeof text, rp);
		if (e->username && !ss->auth_tried && rp->code == 530)
			snprintf(text + strlen(text), sizeof text - strlen(text),
			         " (the server offered no usable AUTH mechanism)");
		set_result(j, rp->code, "MAIL FROM rejected", text);
		return;
	}
	if (rs && rs->code >= 400) {
		status_text(text, sizeof text, rs);
		set_result(j, rs->code, "RCPT TO rejected", text);
		return;
	}
	if (ms && ms->code >= 400) {
		status_text(text, sizeof text, ms);
		set_result(j, ms->code, "message rejected", text);
		return;
	}
	session_failure(ss, j, started, err);
}

static void run_session(struct esmtp *e, struct esmtp_job *batch)
{
	struct sess ss;
	memset(&ss, 0, sizeof ss);
	ss.e = e;
	cur_sess = &ss;
	ERR_clear_error();
	smtp_version(NULL, 0, 0); /* a sentinel: smtp_errno() is now SMTP_ERR_INVAL */

	smtp_session_t s = smtp_create_session();
	int ok = s != NULL;
	ok = ok && smtp_set_server(s, e->hostport);
	if (ok && e->helo)
		ok = smtp_set_hostname(s, e->helo);
	static const int phases[] = {Timeout_GREETING, Timeout_ENVELOPE, Timeout_DATA,
	                             Timeout_TRANSFER, Timeout_DATA2};
	for (size_t i = 0; ok && i < ARRAY_SIZE(phases); i++)
		ok = smtp_set_timeout(s, phases[i] | Timeout_OVERRIDE_RFC2822_MINIMUM,
		                      e->timeout_ms) > 0;
	ok = ok && smtp_set_eventcb(s, event_cb, &ss);
	ok = ok && smtp_set_monitorcb(s, monitor_cb, &ss, 0);
	if (ok && e->tls != TLS_OFF) {
		ok = smtp_starttls_enable(s, e->tls == TLS_REQUIRED ? Starttls_REQUIRED
		                                                    : Starttls_ENABLED);
		ok = ok && smtp_starttls_set_ctx(s, e->ssl);
	}
	if (ok && e->username) {
		ss.auth = auth_create_context();
		ok = ss.auth != NULL;
		/* PLAIN/LOGIN only over TLS (enabled on STARTTLS_OK), or when the
		 * operator turned TLS off. */
		ok = ok && auth_set_mechanism_flags(ss.auth,
		                                    e->tls == TLS_OFF ? AUTH_PLUGIN_PLAIN : 0, 0);
		ok = ok && auth_set_interact_cb(ss.auth, interact_cb, e);
		ok = ok && smtp_auth_set_context(s, ss.auth);
	}
	for (struct esmtp_job *j = batch; ok && j; j = j->next) {
		j->msg = smtp_add_message(s);
		ok = j->msg && smtp_set_reverse_path(j->msg, e->from_addr) &&
		     smtp_set_messagecb(j->msg, message_cb, j) &&
		     smtp_size_set_estimate(j->msg, (unsigned long)j->len);
		j->rc = ok ? smtp_add_recipient(j->msg, j->rcpt) : NULL;
		ok = ok && j->rc;
	}
	int started = 0, err = 0;
	if (ok) {
		started = smtp_start_session(s);
		err = smtp_errno();
	} else {
		err = smtp_errno();
	}
	for (struct esmtp_job *j = batch; j; j = j->next) {
		if (!ok || !j->msg || !j->rc) {
			j->res.status = CHAN_TEMPFAIL;
			snprintf(j->res.reason, sizeof j->res.reason,
			         "cannot set up the SMTP session (libESMTP error %d)", err);
			continue;
		}
		job_result(&ss, j, started, err);
	}
	if (s)
		smtp_destroy_session(s);
	if (ss.auth)
		auth_destroy_context(ss.auth);
	cur_sess = NULL;
	ERR_clear_error();
}

/* Consume a SIGPIPE raised (and blocked) on this thread by a write to a
 * closed connection. */
static void drain_sigpipe(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	struct timespec zero = {0, 0};
	while (sigtimedwait(&set, NULL, &zero) > 0) {
	}
}

static void *worker_main(void *arg)
{
	struct esmtp *e = arg;
	pthread_mutex_lock(&e->mu);
	for (;;) {
		while (!e->q_head && !e->quit)
			pthread_cond_wait(&e->cv, &e->mu);
		if (!e->q_head)
			break;
		/* everything queued, up to session_max_messages */
		struct esmtp_job *batch = e->q_head, *last = batch;
		int n = 1;
		while (n < e->session_max && last->next) {
			last = last->next;
			n++;
		}
		e->q_head = last->next;
		if (!e->q_head)
			e->q_tail = NULL;
		last->next = NULL;
		pthread_mutex_unlock(&e->mu);

		run_session(e, batch);
		drain_sigpipe();

		pthread_mutex_lock(&e->mu);
		e->sessions++;
		e->messages += (uint64_t)n;
		if (e->d_tail)
			e->d_tail->next = batch;
		else
			e->d_head = batch;
		e->d_tail = last;
		pthread_mutex_unlock(&e->mu);
		uv_async_send(&e->async);
		pthread_mutex_lock(&e->mu);
	}
	e->exited++;
	pthread_mutex_unlock(&e->mu);
	uv_async_send(&e->async);
	return NULL;
}

/* ---- the loop side --------------------------------------------------------- */

static void async_closed(uv_handle_t *h)
{
	struct esmtp *e = h->data;
	void (*stopped)(struct chan *) = e->stopped;
	e->stopped = NULL;
	if (stopped)
		stopped(e->c);
}

static void maybe_stopped(struct esmtp *e)
{
	if (!e->stopping || e->closing || e->outstanding > 0)
		return;
	pthread_mutex_lock(&e->mu);
	int exited = e->exited;
	pthread_mutex_unlock(&e->mu);
	if (exited < e->nthreads)
		return;
	/* every worker is past its last uv_async_send */
	for (int i = 0; i < e->nthreads; i++)
		pthread_join(e->threads[i], NULL);
	e->nthreads = 0;
	e->closing = 1;
	uv_close((uv_handle_t *)&e->async, async_closed);
}

static void report(struct esmtp *e, struct esmtp_job *j)
{
	static const char *const names[] = {"ok", "tempfail", "permfail"};
	if (j->res.status == CHAN_OK)
		e->ok++;
	else if (j->res.status == CHAN_TEMPFAIL)
		e->tempfail++;
	else
		e->permfail++;
	if (j->refused)
		e->refused++;
	if (j->res.status != CHAN_OK)
		log_warnx("smtp", "chan=%s msg=%s status=%s reason=%s", e->chan, log_q(j->id),
		          names[j->res.status], log_q(j->res.reason));
	else
		log_trace("smtp", "chan=%s msg=%s status=ok message_id=%s", e->chan, log_q(j->id),
		          log_q(j->message_id));
	e->outstanding--;
	j->done(j->arg, &j->res);
}

static void async_cb(uv_async_t *h)
{
	struct esmtp *e = h->data;
	pthread_mutex_lock(&e->mu);
	struct esmtp_job *j = e->d_head;
	e->d_head = e->d_tail = NULL;
	pthread_mutex_unlock(&e->mu);
	while (j) {
		struct esmtp_job *next = j->next;
		report(e, j);
		free(j->data);
		free(j->rcpt);
		free(j);
		j = next;
	}
	maybe_stopped(e);
}

static void auth_init_once(void)
{
	auth_client_init();
}

static int esmtp_start(struct chan *c, uv_loop_t *loop)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct esmtp *e = c->priv;
	e->loop = loop;
	pthread_once(&once, auth_init_once);
	if (e->tls != TLS_OFF) {
		int r = tls_setup(e);
		if (r < 0)
			return r;
	}
	int r = uv_async_init(loop, &e->async, async_cb);
	if (r < 0)
		return r;
	e->async.data = e;
	e->async_init = 1;

	/* Workers inherit a mask with every signal blocked: signals go to the
	 * loop thread, and a SIGPIPE from a dead connection stays pending on
	 * the worker (drained after each session) instead of killing us. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	e->threads = xcalloc((size_t)e->nsessions, sizeof *e->threads);
	int err = 0;
	for (int i = 0; i < e->nsessions; i++) {
		err = pthread_create(&e->threads[i], NULL, worker_main, e);
		if (err)
			break;
		e->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		log_err("smtp", "chan=%s cannot start worker threads err=%s", e->chan,
		        log_q(strerror(err)));
		pthread_mutex_lock(&e->mu);
		e->quit = 1;
		pthread_cond_broadcast(&e->cv);
		pthread_mutex_unlock(&e->mu);
		for (int i = 0; i < e->nthreads; i++)
			pthread_join(e->threads[i], NULL);
		e->nthreads = 0;
		e->closing = 1;
		uv_close((uv_handle_t *)&e->async, NULL);
		return -err;
	}
	if (e->username && e->tls == TLS_OFF)
		log_warnx("smtp", "chan=%s starttls=off: the password is sent without encryption",
		          e->chan);
	log_info("smtp",
	         "chan=%s server=%s starttls=%s tls_verify=%d tls_max=%s auth=%s sessions=%d "
	         "session_max_messages=%d timeout_ms=%ld",
	         e->chan, log_q(e->hostport), tls_mode_names[e->tls], e->tls_verify,
	         e->tls13 ? "1.3" : "1.2", e->username ? "yes" : "no", e->nsessions, e->session_max,
	         e->timeout_ms);
	return 0;
}

/* The signed one-click link served by clubd's /v1/unsubscribe:
 * unsubscribe_url_base + "?m=<id>&k=<signature>".  NULL when it cannot be
 * signed (id unusable).  Caller frees. */
static char *unsub_url(const struct esmtp *e, const struct chan_msg *m)
{
	char sig[CALLBACK_SIG_LEN + 1];
	if (!id_valid(m->id) || callback_sign("unsub", m->id, sig) < 0)
		return NULL;
	return xasprintf("%s%sm=%s&k=%s", e->unsub_url, strchr(e->unsub_url, '?') ? "&" : "?",
	                 m->id, sig);
}

static int esmtp_send(struct chan *c, const struct chan_msg *m, chan_done_cb done, void *arg)
{
	struct esmtp *e = c->priv;
	if (e->stopping)
		return -ESHUTDOWN;
	struct esmtp_job *j = xcalloc(1, sizeof *j);
	j->done = done;
	j->arg = arg;
	snprintf(j->id, sizeof j->id, "%s", m->id ? m->id : "");

	int unsub = m->category == NULL || strcmp(m->category, "transactional") != 0;
	char *mailto =
	    unsub && e->unsub_mailto && m->id
	        ? xasprintf("mailto:%s?subject=unsubscribe%%20%s", e->unsub_mailto, m->id)
	        : NULL;
	char *url = unsub && e->unsub_url && m->id ? unsub_url(e, m) : NULL;
	struct mime_msg mm = {
	    .from_name = e->from_name,
	    .from_addr = e->from_addr,
	    .to_addr = m->to,
	    .subject = m->subject,
	    .text = m->text,
	    .html = m->html,
	    .msg_id = m->id,
	    .date_ms = now_ms(),
	    .unsub_mailto = mailto,
	    .unsub_url = url,
	};
	struct buf b;
	struct mime_out mo;
	buf_init(&b, 0);
	if (!m->to || !*m->to) {
		j->refused = 1;
		j->res.status = CHAN_PERMFAIL;
		snprintf(j->res.reason, sizeof j->res.reason, "no address");
	} else if (mime_build(&mm, &b, &mo) < 0) {
		j->refused = 1;
		j->res.status = CHAN_PERMFAIL;
		snprintf(j->res.reason, sizeof j->res.reason, "refused: %s", mo.why);
	} else {
		j->len = b.len;
		j->data = buf_steal(&b);
		j->rcpt = xstrdup(m->to);
		snprintf(j->message_id, sizeof j->message_id, "%s", mo.message_id);
	}
	buf_free(&b);
	free(mailto);
	free(url);

	e->outstanding++;
	pthread_mutex_lock(&e->mu);
	if (j->refused) {
		if (e->d_tail)
			e->d_tail->next = j;
		else
			e->d_head = j;
		e->d_tail = j;
	} else {
		if (e->q_tail)
			e->q_tail->next = j;
		else
			e->q_head = j;
		e->q_tail = j;
		pthread_cond_signal(&e->cv);
	}
	pthread_mutex_unlock(&e->mu);
	if (j->refused)
		uv_async_send(&e->async); /* reported from the loop, never from send */
	return 0;
}

static void esmtp_stop(struct chan *c, void (*stopped)(struct chan *c))
{
	struct esmtp *e = c->priv;
	e->stopping = 1;
	e->stopped = stopped;
	pthread_mutex_lock(&e->mu);
	/* queued, never started: fail them; sessions in flight finish */
	for (struct esmtp_job *j = e->q_head; j; j = j->next) {
		j->refused = 1;
		j->res.status = CHAN_TEMPFAIL;
		snprintf(j->res.reason, sizeof j->res.reason, "shutting down");
	}
	if (e->q_head) {
		if (e->d_tail)
			e->d_tail->next = e->q_head;
		else
			e->d_head = e->q_head;
		e->d_tail = e->q_tail;
		e->q_head = e->q_tail = NULL;
	}
	e->quit = 1;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	uv_async_send(&e->async);
}

static void esmtp_destroy(struct chan *c)
{
	struct esmtp *e = c->priv;
	if (!e)
		return;
	/* started: stop completed (threads joined, handle closed) */
	if (e->ssl)
		SSL_CTX_free(e->ssl);
	if (e->password) {
		explicit_bzero(e->password, strlen(e->password));
		free(e->password);
	}
	free(e->threads);
	free(e->chan);
	free(e->host);
	free(e->hostport);
	free(e->ca_file);
	free(e->username);
	free(e->from_addr);
	free(e->from_name);
	free(e->helo);
	free(e->unsub_mailto);
	free(e->unsub_url);
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->mu);
	free(e);
	c->priv = NULL;
}

void email_smtp_get_stats(const struct chan *c, struct email_smtp_stats *out)
{
	struct esmtp *e = c->priv;
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&e->mu);
	out->sessions = e->sessions;
	out->messages = e->messages;
	pthread_mutex_unlock(&e->mu);
	out->ok = e->ok;
	out->tempfail = e->tempfail;
	out->permfail = e->permfail;
	out->refused = e->refused;
}

const struct chan_driver chan_email_smtp_driver = {
    .name = "smtp",
    .configure = esmtp_configure,
    .start = esmtp_start,
    .send = esmtp_send,
    .stop = esmtp_stop,
    .destroy = esmtp_destroy,
};
