/*
 * sms_segments.h - SMS text accounting and what every SMS driver shares.
 *
 * Counting: exact GSM 03.38 detection (default alphabet and extension
 * table, an escaped character costing two septets) or UCS-2 (UTF-16 code
 * units, astral characters two), and the segment count a handset sees:
 * GSM 160 in one part or 153 per part, UCS-2 70 or 67 per part, without
 * ever splitting an escape pair or a surrogate pair across two parts.
 *
 * Shared by the SMS drivers (sms_kannel.c, sms_generic.c): the common keys
 * (sender, price_per_segment, max_segments), cost in micros, short
 * sanitized excerpts of provider answers with secrets redacted, percent
 * encoding, and the plumbing of an HTTP SMS driver on the loop (the shared
 * curl client, in-flight count, failures reported later from an idle
 * handle, ordered stop).
 */
#ifndef CLUBD_SMS_SEGMENTS_H
#define CLUBD_SMS_SEGMENTS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "channel.h"
#include "http.h"
#include "util.h"

#define SMS_GSM_SINGLE  160
#define SMS_GSM_MULTI   153
#define SMS_UCS2_SINGLE 70
#define SMS_UCS2_MULTI  67
#define SMS_MAX_PARTS   255 /* the concatenation header counts parts in one octet */

struct sms_count {
	int ucs2;        /* 1: UCS-2 (Kannel coding=2), 0: GSM 03.38 7-bit */
	int units;       /* septets (GSM, escapes count 2) or UTF-16 code units */
	int segments;    /* parts billed; an empty text is one (empty) part */
	int per_segment; /* capacity of each part: 160/153 or 70/67 */
};

/*
 * Count len bytes of UTF-8.  0 with *out filled, or -EILSEQ when the text
 * is not well-formed UTF-8 (overlongs, surrogates, > U+10FFFF, truncated).
 */
int sms_count(const char *utf8, size_t len, struct sms_count *out);

/* Septets of one code point in GSM 03.38: 1 (default alphabet), 2 (the
 * extension table, sent as ESC + char) or 0 (not representable). */
int sms_gsm_septets(uint32_t cp);

/* segments * price * 1e6, rounded to the nearest micro; 0 for price <= 0. */
int64_t sms_cost_micros(int segments, double price);

/* ---- the keys every SMS driver supports ---------------------------------- */

struct sms_opts {
	char *sender;     /* NULL when not configured */
	double price;     /* price_per_segment, 0 = unknown */
	int max_segments; /* longer texts are refused (PERMFAIL) */
};

/* Read sender, price_per_segment and max_segments from sec (marking them
 * used).  0, or -1 with err naming file:line:key. */
int sms_opts_configure(struct cfg_section *sec, struct sms_opts *o, struct cfg_error *err);
void sms_opts_free(struct sms_opts *o);

/*
 * Check a text before sending: 0 with *cnt filled, or -1 with a PERMFAIL
 * reason in why ("empty text", "text is not valid UTF-8", "too long: 12
 * segments > max 10").  Never copies the text into why.
 */
int sms_opts_check(const struct sms_opts *o, const char *text, struct sms_count *cnt, char *why,
                   size_t whylen);

/*
 * The recipient as digits: a leading '+' is dropped, everything else must
 * be an ASCII digit (3..20 of them).  Copies into out (at least 22 bytes);
 * 0 or -EINVAL.  This also keeps a space from turning one send into several
 * (Kannel reads "to" as a space-separated list).
 */
int sms_recipient_digits(const char *to, char *out, size_t n);

/* ---- text helpers ------------------------------------------------------------ */

/* Percent-encode every byte but ALPHA / DIGIT / "-" / "." / "_" / "~"
 * (RFC 3986 unreserved).  0 or -ENOSPC (b's cap). */
int sms_pct_encode(struct buf *b, const char *s, size_t len);

/*
 * A short, printable excerpt of a provider's answer for a reason: the first
 * non-blank line, every occurrence of each secret (raw, percent-encoded and
 * base64) replaced by "***", controls, bidi overrides and invalid UTF-8
 * removed or replaced, at most 80 characters ("..." when cut).  secrets is
 * NULL-terminated (may be NULL).  out is always NUL-terminated.
 */
#define SMS_EXCERPT_MAX 80
void sms_excerpt(char *out, size_t n, const char *body, size_t len, const char *const *secrets);

/* Redact secrets (as sms_excerpt does) in place in a NUL-terminated string
 * of capacity n, e.g. curl's error text, which is never echoed otherwise. */
void sms_redact(char *s, size_t n, const char *const *secrets);

/* ---- the plumbing of an HTTP SMS driver ------------------------------------- */

struct sms_later; /* a report waiting for the idle handle */

struct sms_core {
	struct chan *c;
	struct http_client *http;
	int max_host; /* connections per host asked of the shared client */
	int sending;  /* requests started, not yet reported */
	int stopping;
	void (*stopped)(struct chan *c);
	uv_idle_t idle;
	int idle_open;
	struct sms_later *later_head, *later_tail;
	int closing;            /* the idle handle is being closed */
	int64_t auth_warned_at; /* mono ms of the last bad-credentials warning */
};

/* Take a reference on the loop's HTTP client and open the idle handle. */
int sms_core_start(struct sms_core *k, struct chan *c, uv_loop_t *loop);
/* Report res to done from the loop, later, never from the caller's stack. */
void sms_core_report_later(struct sms_core *k, chan_done_cb done, void *arg,
                           const struct chan_result *res);
/* A request ended (after its report was delivered): may finish a stop. */
void sms_core_request_done(struct sms_core *k);
/* Stop: stopped is called once every request and later report is
 * delivered and the idle handle is closed. */
void sms_core_stop(struct sms_core *k, void (*stopped)(struct chan *c));

/*
 * Fill a TEMPFAIL for a transport error ("timeout", "connect: ...",
 * "response too large", "cancelled", "http: ...") with curl's text, secrets
 * redacted.  resp->err must not be HTTP_E_NONE.
 */
void sms_transport_fail(struct chan_result *res, const struct http_resp *resp,
                        const char *const *secrets);

/* Log a bad-credentials answer (401/403) at most once a minute per channel. */
void sms_core_warn_auth(struct sms_core *k, const char *driver, long status);

#endif
