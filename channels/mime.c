/*
 * mime.c - the RFC 5322 / MIME message builder shared by the email drivers.
 *
 * Owns: header encoding (RFC 2047 encoded words, folding), body encodings
 * (quoted-printable, base64), the Message-ID format and its parser, the
 * multipart/alternative layout.  Never touches: I/O, logging, config, the
 * loop; every function is thread-safe.  Limits: addresses are plain ASCII
 * addr-specs (no SMTPUTF8, no quoted local parts, no domain literals);
 * header inputs must be valid UTF-8 without control characters (tab is
 * allowed in a subject); message ids embedded in a Message-ID are at most
 * MIME_MSGID_MAX characters of [A-Za-z0-9_-].
 *
 * Line lengths: encoded words are at most 75 characters and header lines
 * at most MIME_LINE_MAX (76) except an address or URL too long to fold
 * (still well under RFC 5322's 998).  Body lines are at most 76.
 */
#include "mime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "text.h"

#define EW_MAX      75 /* RFC 2047: an encoded word is at most 75 characters */
#define EW_OVERHEAD 12 /* "=?UTF-8?B?" + "?=" */
#define URI_MAX     900

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char hexup[] = "0123456789ABCDEF";

/* ---- character classes ------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (n bytes left), or 0
 * (text.c's strict decoder: no overlongs, surrogates or > U+10FFFF). */
static size_t u8_len(const unsigned char *s, size_t n)
{
	uint32_t cp;
	int l = utf8_decode((const char *)s, n, &cp);
	return l > 0 ? (size_t)l : 0;
}

static int utf8_ok(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		size_t l = u8_len(p + i, n - i);
		if (!l)
			return 0;
		i += l;
	}
	return 1;
}

/* Any C0 control (except tab when allowed) or DEL. */
static int has_ctl(const char *s, int allow_tab)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c < 0x20 && !(allow_tab && c == '\t')) || c == 0x7f)
			return 1;
	}
	return 0;
}

static int is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 5322 atext. */
static int is_atext(int c)
{
	return is_alnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* Characters a Q encoded word carries as themselves in any context. */
static int q_safe(int c)
{
	return is_alnum(c) || c == '!' || c == '*' || c == '+' || c == '-' || c == '/';
}

static int id_char(int c)
{
	return is_alnum(c) || c == '_' || c == '-';
}

static int hostname_ok(const char *d, size_t n)
{
	if (n < 1 || n > 253)
		return 0;
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)d[i];
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (is_alnum(c) || c == '-') {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0;
}

int mime_addr_valid(const char *a)
{
	if (!a)
		return 0;
	size_t n = strlen(a);
	if (n < 3 || n > 254)
		return 0;
	const char *at = strchr(a, '@');
	if (!at || at == a || strchr(at + 1, '@'))
		return 0;
	size_t ll = (size_t)(at - a);
	if (ll > 64 || a[0] == '.' || a[ll - 1] == '.')
		return 0;
	for (size_t i = 0; i < ll; i++) {
		if (a[i] == '.') {
			if (a[i + 1] == '.')
				return 0;
		} else if (!is_atext((unsigned char)a[i])) {
			return 0;
		}
	}
	return hostname_ok(at + 1, n - ll - 1);
}

/* A URI we can put between angle brackets: printable ASCII, no spaces,
 * quotes or brackets, with the given scheme. */
static int uri_ok(const char *u, const char *scheme)
{
	size_t sl = strlen(scheme), n = strlen(u);
	if (n <= sl || n > URI_MAX || strncmp(u, scheme, sl) != 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)u[i];
		if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '"')
			return 0;
	}
	return 1;
}

/* ---- base64 ------------------------------------------------------------ */

static void b64_put(struct buf *b, const unsigned char *in, size_t n)
{
	char q[4];
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		q[0] = b64chars[(v >> 18) & 63];
		q[1] = b64chars[(v >> 12) & 63];
		q[2] = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
		q[3] = i + 2 < n ? b64chars[v & 63] : '=';
		buf_append(b, q, 4);
	}
}

/* Text with every line end (CRLF, LF or CR) made CRLF. */
static void canon_crlf(struct buf *out, const char *s, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\r' && s[i] != '\n')
			continue;
		buf_append(out, s + start, i - start);
		buf_append(out, "\r\n", 2);
		if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
			i++;
		start = i + 1;
	}
	buf_append(out, s + start, n - start);
}

void mime_b64_body(struct buf *b, const char *s, size_t n)
{
	struct buf c;
	buf_init(&c, 0);
	canon_crlf(&c, s, n);
	const unsigned char *p = (const unsigned char *)(c.p ? c.p : "");
	/* 57 input bytes make exactly 76 output characters. */
	for (size_t i = 0; i < c.len; i += 57) {
		b64_put(b, p + i, c.len - i < 57 ? c.len - i : 57);
		buf_append(b, "\r\n", 2);
	}
	buf_free(&c);
}

/* ---- quoted-printable --------------------------------------------------- */

enum mime_cte mime_choose_cte(const char *s, size_t n)
{
	size_t unsafe = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x7f || c == '=' || (c < 0x20 && c != '\t' && c != '\r' && c != '\n'))
			unsafe++;
	}
	size_t qp = n + 2 * unsafe, b64 = (n + 2) / 3 * 4;
	return qp <= b64 ? MIME_QP : MIME_BASE64;
}

static void qp_hex(struct buf *b, unsigned char c)
{
	char e[3] = {'=', hexup[c >> 4], hexup[c & 15]};
	buf_append(b, e, 3);
}

void mime_qp_body(struct buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, col = 0;
	while (i < n) {
		unsigned char c = p[i];
		if (c == '\r' || c == '\n') { /* a hard line break */
			buf_append(b, "\r\n", 2);
			col = 0;
			i += (c == '\r' && i + 1 < n && p[i + 1] == '\n') ? 2 : 1;
			continue;
		}
		size_t len = 1;
		int lit;
		if (c >= 0x80) {
			len = u8_len(p + i, n - i);
			if (!len)
				len = 1;
			lit = 0;
		} else {
			lit = (c >= 33 && c <= 126 && c != '=') || c == ' ' || c == '\t';
			/* whitespace before a line end would be stripped in transit */
			if ((c == ' ' || c == '\t') &&
			    (i + 1 == n || p[i + 1] == '\r' || p[i + 1] == '\n'))
				lit = 0;
			/* robustness: no "." or "From " at the start of a line */
			if (col == 0 && (c == '.' || (c == 'F' && n - i >= 5 &&
			                              memcmp(p + i, "From ", 5) == 0)))
				lit = 0;
		}
		size_t need = lit ? 1 : 3 * len;
		/* keep one column for the soft break's "=" */
		if (col + need > MIME_LINE_MAX - 1) {
			buf_append(b, "=\r\n", 3);
			col = 0;
			continue; /* re-decide at the start of the new line */
		}
		if (lit)
			buf_append(b, p + i, 1);
		else
			for (size_t k = 0; k < len; k++)
				qp_hex(b, p[i + k]);
		col += need;
		i += len;
	}
	/* No final newline in the text: end with a soft break (decodes to
	 * nothing) so the part still ends with CRLF. */
	if (n > 0 && p[n - 1] != '\n' && p[n - 1] != '\r')
		buf_append(b, "=\r\n", 3);
}

/* ---- headers ------------------------------------------------------------ */

struct hdr {
	struct buf *b;
	size_t col;  /* characters on the current line */
	int content; /* the current line holds a token already */
};

static void hdr_begin(struct hdr *h, struct buf *b, const char *name)
{
	h->b = b;
	buf_puts(b, name);
	buf_puts(b, ":");
	h->col = strlen(name) + 1;
	h->content = 0;
}

static void hdr_fold(struct hdr *h)
{
	buf_append(h->b, "\r\n", 2);
	h->col = 0;
	h->content = 0;
}

/* " tok" on the current line, without a fold check. */
static void hdr_put(struct hdr *h, const char *tok, size_t n)
{
	buf_append(h->b, " ", 1);
	buf_append(h->b, tok, n);
	h->col += 1 + n;
	h->content = 1;
}

/* " tok", folding first when it would not fit (and the line has room to
 * gain: a token too long for any line stays on a fresh line of its own). */
static void hdr_add(struct hdr *h, const char *tok, size_t n)
{
	if (n > 0 && h->col + 1 + n > MIME_LINE_MAX && h->content)
		hdr_fold(h);
	hdr_put(h, tok, n);
}

static size_t q_cost(unsigned char c)
{
	return q_safe(c) || c == ' ' ? 1 : 3;
}

/* Bytes of whole characters from s that fit into `payload` encoded
 * characters (B: groups of 4 per 3 bytes; Q: 1 or 3 per byte). */
static size_t ew_take(const unsigned char *s, size_t n, size_t payload, int q)
{
	size_t take = 0, cost = 0, raw_max = payload / 4 * 3;
	while (take < n) {
		size_t l = u8_len(s + take, n - take);
		if (!l)
			l = 1; /* not reached: input was validated */
		if (q) {
			size_t c = 0;
			for (size_t k = 0; k < l; k++)
				c += q_cost(s[take + k]);
			if (cost + c > payload)
				break;
			cost += c;
		} else if (take + l > raw_max) {
			break;
		}
		take += l;
	}
	return take;
}

/* The value as RFC 2047 encoded words (B or Q, whichever is shorter),
 * each as long as the line allows, never splitting a UTF-8 character. */
static void hdr_encoded(struct hdr *h, const char *v, size_t n)
{
	const unsigned char *s = (const unsigned char *)v;
	size_t qlen = 0;
	for (size_t i = 0; i < n; i++)
		qlen += q_cost(s[i]);
	int q = qlen <= (n + 2) / 3 * 4;
	struct buf w;
	buf_init(&w, 0);
	size_t i = 0;
	while (i < n) {
		size_t room = h->col + 1 < MIME_LINE_MAX ? MIME_LINE_MAX - h->col - 1 : 0;
		if (room > EW_MAX)
			room = EW_MAX;
		size_t take = room > EW_OVERHEAD ? ew_take(s + i, n - i, room - EW_OVERHEAD, q) : 0;
		if (take == 0) {
			hdr_fold(h); /* a fresh line has room for any character */
			continue;
		}
		buf_reset(&w);
		buf_puts(&w, q ? "=?UTF-8?Q?" : "=?UTF-8?B?");
		if (q) {
			for (size_t k = i; k < i + take; k++) {
				if (s[k] == ' ')
					buf_append(&w, "_", 1);
				else if (q_safe(s[k]))
					buf_append(&w, s + k, 1);
				else
					qp_hex(&w, s[k]);
			}
		} else {
			b64_put(&w, s + i, take);
		}
		buf_puts(&w, "?=");
		hdr_put(h, w.p, w.len);
		i += take;
	}
	buf_free(&w);
}

/* Printable ASCII whose space-separated words fit on folded lines and
 * which cannot be mistaken for encoded words. */
static int plain_fits(const char *v, size_t first_col)
{
	if (strstr(v, "=?"))
		return 0;
	size_t col = first_col, word = 0;
	for (const char *p = v;; p++) {
		if (*p == ' ' || *p == '\0') {
			if (col + 1 + word > MIME_LINE_MAX)
				return 0;
			if (!*p)
				return 1;
			col = 0; /* later words may start a fresh line */
			word = 0;
			continue;
		}
		unsigned char c = (unsigned char)*p;
		if ((c < 0x20 && c != '\t') || c > 0x7e)
			return 0;
		word++;
	}
}

/* Space-separated words, folded at the spaces. */
static void hdr_words(struct hdr *h, const char *v)
{
	const char *p = v;
	for (;;) {
		const char *sp = strchr(p, ' ');
		size_t n = sp ? (size_t)(sp - p) : strlen(p);
		hdr_add(h, p, n);
		if (!sp)
			break;
		p = sp + 1;
	}
}

/* Append tmp to b (all or nothing) and free tmp. */
static int flush_tmp(struct buf *b, struct buf *tmp)
{
	int r = buf_append(b, tmp->p ? tmp->p : "", tmp->len);
	buf_free(tmp);
	return r;
}

int mime_header_text(struct buf *b, const char *name, const char *value)
{
	if (!name || !value || has_ctl(value, 1) || !utf8_ok(value, strlen(value)))
		return -EINVAL;
	struct buf t;
	buf_init(&t, 0);
	struct hdr h;
	hdr_begin(&h, &t, name);
	if (plain_fits(value, h.col))
		hdr_words(&h, value);
	else
		hdr_encoded(&h, value, strlen(value));
	buf_append(&t, "\r\n", 2);
	return flush_tmp(b, &t);
}

int mime_header_mailbox(struct buf *b, const char *name, const char *display, const char *addr)
{
	if (!name || !mime_addr_valid(addr))
		return -EINVAL;
	if (display && (has_ctl(display, 0) || !utf8_ok(display, strlen(display))))
		return -EINVAL;
	struct buf t;
	buf_init(&t, 0);
	struct hdr h;
	hdr_begin(&h, &t, name);
	if (!display || !*display) {
		hdr_add(&h, addr, strlen(addr));
		buf_append(&t, "\r\n", 2);
		return flush_tmp(b, &t);
	}
	size_t n = strlen(display);
	int ascii = 1, atoms = display[0] != ' ' && display[n - 1] != ' ' && !strstr(display, "  ");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)display[i];
		if (c > 0x7e)
			ascii = 0;
		if (!is_atext(c) && c != ' ')
			atoms = 0;
	}
	if (strstr(display, "=?"))
		ascii = atoms = 0;
	if (ascii && atoms && plain_fits(display, h.col)) {
		hdr_words(&h, display);
	} else {
		struct buf qs;
		buf_init(&qs, 0);
		buf_append(&qs, "\"", 1);
		for (size_t i = 0; i < n; i++) {
			if (display[i] == '"' || display[i] == '\\')
				buf_append(&qs, "\\", 1);
			buf_append(&qs, display + i, 1);
		}
		buf_append(&qs, "\"", 1);
		if (ascii && h.col + 1 + qs.len <= MIME_LINE_MAX)
			hdr_put(&h, qs.p, qs.len);
		else
			hdr_encoded(&h, display, n);
		buf_free(&qs);
	}
	char *angle = xasprintf("<%s>", addr);
	hdr_add(&h, angle, strlen(angle));
	free(angle);
	buf_append(&t, "\r\n", 2);
	return flush_tmp(b, &t);
}

void mime_date(int64_t ms, int local, char *out, size_t n)
{
	static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	int64_t sec = ms / 1000;
	if (ms % 1000 < 0)
		sec--;
	time_t t = (time_t)sec;
	struct tm tm;
	long off = 0;
	if (local) {
		localtime_r(&t, &tm);
		off = tm.tm_gmtoff;
	} else {
		gmtime_r(&t, &tm);
	}
	char sign = off < 0 ? '-' : '+';
	if (off < 0)
		off = -off;
	snprintf(out, n, "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld", wd[tm.tm_wday], tm.tm_mday,
	         mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
	         off / 3600, off % 3600 / 60);
}

/* ---- Message-ID ---------------------------------------------------------- */

static int msg_id_ok(const char *id, size_t n)
{
	if (n < 1 || n > MIME_MSGID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!id_char((unsigned char)id[i]))
			return 0;
	return 1;
}

int mime_message_id(const char *msg_id, const char *domain, char *out, size_t n)
{
	if (!msg_id || !domain || !msg_id_ok(msg_id, strlen(msg_id)) ||
	    !hostname_ok(domain, strlen(domain)))
		return -EINVAL;
	unsigned char r[8];
	char hex[17];
	random_bytes(r, sizeof r);
	hex_encode(r, sizeof r, hex);
	int w = snprintf(out, n, "<%s.%s@%s>", msg_id, hex, domain);
	if (w < 0 || (size_t)w >= n)
		return -ENOSPC;
	return 0;
}

/* One "left@right" (no brackets): ours when left is "ID.<16 hex>". */
static int msgid_candidate(const char *s, size_t n, char out[MIME_MSGID_MAX + 1])
{
	const char *at = memchr(s, '@', n);
	if (!at)
		return 0;
	size_t ll = (size_t)(at - s);
	if (ll < 18 || s[ll - 17] != '.')
		return 0;
	for (size_t i = ll - 16; i < ll; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	size_t idl = ll - 17;
	if (!msg_id_ok(s, idl))
		return 0;
	memcpy(out, s, idl);
	out[idl] = '\0';
	return 1;
}

int mime_message_id_to_msg(const char *header, char out[MIME_MSGID_MAX + 1])
{
	if (!header || !out)
		return -EINVAL;
	char cand[MIME_MSGID_MAX + 1];
	int found = 0;
	if (!strchr(header, '<')) {
		const char *s = header + strspn(header, " \t\r\n");
		size_t n = strcspn(s, " \t\r\n");
		if (msgid_candidate(s, n, cand)) {
			memcpy(out, cand, strlen(cand) + 1);
			return 0;
		}
		return -ENOENT;
	}
	for (const char *p = strchr(header, '<'); p; p = strchr(p, '<')) {
		const char *e = strchr(p + 1, '>');
		if (!e)
			break;
		if (msgid_candidate(p + 1, (size_t)(e - p - 1), cand)) {
			memcpy(out, cand, strlen(cand) + 1);
			found = 1;
		}
		p = e + 1;
	}
	return found ? 0 : -ENOENT;
}

/* ---- the whole message ------------------------------------------------------ */

static void part_headers_and_body(struct buf *b, const char *type, const char *s)
{
	size_t n = strlen(s);
	enum mime_cte e = mime_choose_cte(s, n);
	buf_printf(b, "Content-Type: %s; charset=UTF-8\r\n", type);
	buf_printf(b, "Content-Transfer-Encoding: %s\r\n\r\n",
	           e == MIME_QP ? "quoted-printable" : "base64");
	if (e == MIME_QP)
		mime_qp_body(b, s, n);
	else
		mime_b64_body(b, s, n);
}

#define REFUSE(w)                                                                                  \
	do {                                                                                       \
		res->why = (w);                                                                    \
		goto refused;                                                                      \
	} while (0)

int mime_build(const struct mime_msg *m, struct buf *out, struct mime_out *res)
{
	memset(res, 0, sizeof *res);
	struct buf t;
	buf_init(&t, 0);
	char date[64];

	if (!mime_addr_valid(m->from_addr))
		REFUSE("from address is not a plain addr-spec");
	if (!mime_addr_valid(m->to_addr))
		REFUSE("to address is not a plain addr-spec");
	if (!m->msg_id || !msg_id_ok(m->msg_id, strlen(m->msg_id)))
		REFUSE("message id unusable in a Message-ID");
	const char *domain = m->id_domain ? m->id_domain : strchr(m->from_addr, '@') + 1;
	int r = mime_message_id(m->msg_id, domain, res->message_id, sizeof res->message_id);
	if (r < 0)
		REFUSE("Message-ID domain is not a hostname");
	if (m->unsub_mailto && !uri_ok(m->unsub_mailto, "mailto:"))
		REFUSE("unsubscribe mailto is not a mailto: URI without spaces or controls");
	if (m->unsub_url && !uri_ok(m->unsub_url, "https://") && !uri_ok(m->unsub_url, "http://"))
		REFUSE("unsubscribe URL is not an http(s) URI without spaces or controls");
	if (m->text && !utf8_ok(m->text, strlen(m->text)))
		REFUSE("text is not valid UTF-8");
	if (m->html && !utf8_ok(m->html, strlen(m->html)))
		REFUSE("html is not valid UTF-8");

	mime_date(m->date_ms, m->date_local, date, sizeof date);
	buf_printf(&t, "Date: %s\r\n", date);
	if (mime_header_mailbox(&t, "From", m->from_name, m->from_addr) < 0)
		REFUSE("from name contains control characters or invalid UTF-8");
	if (mime_header_mailbox(&t, "To", m->to_name, m->to_addr) < 0)
		REFUSE("to name contains control characters or invalid UTF-8");
	if (m->subject && mime_header_text(&t, "Subject", m->subject) < 0)
		REFUSE("subject contains CR, LF, control characters or invalid UTF-8");
	buf_printf(&t, "Message-ID: %s\r\n", res->message_id);
	buf_puts(&t, "MIME-Version: 1.0\r\n");
	if (m->unsub_mailto || m->unsub_url) {
		struct hdr h;
		hdr_begin(&h, &t, "List-Unsubscribe");
		h.content = 1; /* structured: a fold right after the colon is fine */
		char *a = m->unsub_mailto
		              ? xasprintf("<%s>%s", m->unsub_mailto, m->unsub_url ? "," : "")
		              : NULL;
		char *u = m->unsub_url ? xasprintf("<%s>", m->unsub_url) : NULL;
		if (a)
			hdr_add(&h, a, strlen(a));
		if (u)
			hdr_add(&h, u, strlen(u));
		buf_puts(&t, "\r\n");
		free(a);
		free(u);
		if (m->unsub_url && strncmp(m->unsub_url, "https://", 8) == 0)
			buf_puts(&t, "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
	}
	buf_printf(&t, "X-Clubd-Message-Id: %s\r\n", m->msg_id);

	if (m->text && m->html) {
		unsigned char rnd[12];
		char hex[25];
		random_bytes(rnd, sizeof rnd);
		hex_encode(rnd, sizeof rnd, hex);
		/* "=_" never occurs in quoted-printable or base64 output */
		buf_printf(
		    &t, "Content-Type: multipart/alternative;\r\n boundary=\"=_clubd_%s\"\r\n\r\n",
		    hex);
		buf_puts(&t, "This is a MIME message with text and HTML versions.\r\n");
		buf_printf(&t, "\r\n--=_clubd_%s\r\n", hex);
		part_headers_and_body(&t, "text/plain", m->text);
		buf_printf(&t, "\r\n--=_clubd_%s\r\n", hex);
		part_headers_and_body(&t, "text/html", m->html);
		buf_printf(&t, "\r\n--=_clubd_%s--\r\n", hex);
	} else if (m->html) {
		part_headers_and_body(&t, "text/html", m->html);
	} else {
		part_headers_and_body(&t, "text/plain", m->text ? m->text : "");
	}
	r = flush_tmp(out, &t);
	if (r < 0)
		res->why = "message larger than the output buffer allows";
	return r;

refused:
	buf_free(&t);
	return -EINVAL;
}

/* ---- parsing a configured mailbox ------------------------------------------ */

static void trim(const char **s, size_t *n)
{
	while (*n && (**s == ' ' || **s == '\t'))
		(*s)++, (*n)--;
	while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

int mime_split_mailbox(const char *s, char *name, size_t nn, char *addr, size_t na)
{
	if (!s || !name || !addr || nn == 0 || na == 0 || has_ctl(s, 1))
		return -EINVAL;
	const char *p = s;
	size_t n = strlen(s);
	trim(&p, &n);
	const char *a = p, *dn = p;
	size_t al = n, dl = 0;
	if (n && p[n - 1] == '>') {
		const char *lt = NULL;
		for (size_t i = n - 1; i-- > 0;)
			if (p[i] == '<') {
				lt = p + i;
				break;
			}
		if (!lt)
			return -EINVAL;
		a = lt + 1;
		al = (size_t)(p + n - 1 - a);
		dn = p;
		dl = (size_t)(lt - p);
		trim(&dn, &dl);
	}
	if (al + 1 > na)
		return -EINVAL;
	memcpy(addr, a, al);
	addr[al] = '\0';
	if (!mime_addr_valid(addr))
		return -EINVAL;
	/* the display name: a quoted string is unescaped */
	size_t o = 0;
	if (dl >= 2 && dn[0] == '"' && dn[dl - 1] == '"') {
		for (size_t i = 1; i + 1 < dl; i++) {
			if (dn[i] == '\\' && i + 2 < dl)
				i++;
			if (o + 1 >= nn)
				return -EINVAL;
			name[o++] = dn[i];
		}
	} else {
		if (dl + 1 > nn || memchr(dn, '"', dl))
			return -EINVAL;
		memcpy(name, dn, dl);
		o = dl;
	}
	name[o] = '\0';
	if (!utf8_ok(name, o))
		return -EINVAL;
	return 0;
}
