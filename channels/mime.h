/*
 * mime.h - build complete RFC 5322 / MIME messages for email channels.
 *
 * One builder for every email driver (smtp, outbox): headers with RFC 2047
 * encoded words for non-ASCII subjects and display names (folded, lines
 * <= 76 characters, never splitting a UTF-8 character), Date, a Message-ID
 * that carries our message id so replies can be tied back, text/plain or
 * multipart/alternative (text + html) bodies in quoted-printable or base64
 * (chosen per part), List-Unsubscribe (+ one-click Post) and
 * X-Clubd-Message-Id.  CRLF line ends throughout.  Pure functions: no I/O,
 * no logging, thread-safe (random bytes come from getrandom).
 *
 * Header injection: every header input (names, addresses, subject, URLs,
 * ids) containing CR, LF or another control character is refused with
 * -EINVAL; so is text that is not valid UTF-8.
 */
#ifndef CLUBD_MIME_H
#define CLUBD_MIME_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define MIME_MSGID_MAX 64 /* longest message id embedded in a Message-ID */
#define MIME_LINE_MAX  76 /* we fold/encode to this; RFC 5322 asks for <= 78 */

struct mime_msg {
	const char *from_name;    /* display name (UTF-8), NULL or "" for none */
	const char *from_addr;    /* required, addr-spec */
	const char *to_name;      /* display name, NULL or "" for none */
	const char *to_addr;      /* required, addr-spec */
	const char *subject;      /* UTF-8, NULL for none */
	const char *text;         /* text/plain body (UTF-8), may be NULL */
	const char *html;         /* text/html body (UTF-8), may be NULL */
	const char *msg_id;       /* required: our id, [A-Za-z0-9_-]{1,64} */
	const char *id_domain;    /* Message-ID right-hand side; NULL: from_addr's domain */
	int64_t date_ms;          /* Date: (ms since the epoch) */
	int date_local;           /* 1: local time with its UTC offset; 0: UTC "+0000" */
	const char *unsub_mailto; /* "mailto:..." URI, or NULL */
	const char *unsub_url;    /* "https://..." URI (one-click), or NULL */
};

struct mime_out {
	char message_id[300]; /* the Message-ID value written, "<...>" */
	const char *why;      /* after -EINVAL: what was refused (static text) */
};

/*
 * Append the whole message (headers, blank line, body) to out.  0, or
 * -EINVAL with res->why set (out may then hold a partial message: reset it).
 * With both text and html: multipart/alternative with a random boundary
 * starting "=_", which can occur in neither quoted-printable nor base64.
 * List-Unsubscribe-Post is added only with an https unsub_url.
 */
int mime_build(const struct mime_msg *m, struct buf *out, struct mime_out *res);

/* ---- the pieces, exported for tests and other builders ------------------ */

enum mime_cte { MIME_QP, MIME_BASE64 };
/* Quoted-printable for mostly-ASCII text, base64 when QP would be larger
 * (e.g. Persian, where nearly every byte needs =XX). */
enum mime_cte mime_choose_cte(const char *s, size_t n);
/* Bodies: line ends canonicalised to CRLF (lone LF or CR too), encoded
 * lines <= 76 characters, output ends with CRLF.  QP never splits a UTF-8
 * sequence across a soft line break and ends with a soft break when the
 * text has no final newline, so decoding gives back exactly the input. */
void mime_qp_body(struct buf *b, const char *s, size_t n);
void mime_b64_body(struct buf *b, const char *s, size_t n);

/* "Name: value" for unstructured text (Subject): plain and folded at
 * spaces when printable ASCII fits, else RFC 2047 encoded words (B or Q,
 * the shorter; each <= 75 chars, whole UTF-8 characters).  Ends with CRLF.
 * -EINVAL for control characters or invalid UTF-8 (b unchanged). */
int mime_header_text(struct buf *b, const char *name, const char *value);
/* "Name: display <addr>" (or "Name: addr" without a display name); the
 * name is an atom phrase, a quoted string, or encoded words. -EINVAL for a
 * bad address or display name (b unchanged). */
int mime_header_mailbox(struct buf *b, const char *name, const char *display, const char *addr);

/* 1 when addr is a plain ASCII addr-spec we can put in a header and an
 * envelope: local@domain, dot-atom local part <= 64, a hostname domain,
 * <= 254 bytes in all. */
int mime_addr_valid(const char *addr);

/* RFC 5322 date, e.g. "Tue, 02 Jan 2024 03:04:05 +0000"; n >= 40. */
void mime_date(int64_t ms, int local, char *out, size_t n);

/* "<msg_id.RANDOM@domain>" (RANDOM: 16 lowercase hex).  0, or -EINVAL for
 * an unusable id or domain, or -ENOSPC when out is too small. */
int mime_message_id(const char *msg_id, const char *domain, char *out, size_t n);
/*
 * Find our message id in a Message-ID, In-Reply-To or References value
 * (one or more "<...>"; a bare id-left@id-right is accepted too).  With
 * several of ours, the last (the nearest ancestor) wins.  0 with out set,
 * -ENOENT when none is ours, -EINVAL for NULL.
 */
int mime_message_id_to_msg(const char *header, char out[MIME_MSGID_MAX + 1]);

/* Split "Display Name <addr>", "\"Quoted, Name\" <addr>" or a bare "addr"
 * (e.g. a configured From).  0, or -EINVAL (bad syntax or address, or a
 * part that does not fit). */
int mime_split_mailbox(const char *s, char *name, size_t nn, char *addr, size_t na);

#endif
