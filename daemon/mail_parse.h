/*
 * mail_parse.h - one received email (raw RFC 5322 bytes, as an IMAP FETCH
 * returns them) into what the inbound router needs: sender, recipient,
 * subject, Message-ID, In-Reply-To, References, the date and the text the
 * person wrote, in UTF-8, with the quoted previous message cut off.
 *
 * MIME is parsed by GMime 3 (charsets through iconv, quoted-printable and
 * base64, RFC 2047 headers, multipart); this module picks the body
 * (text/plain first, else text/html reduced to text), repairs what is not
 * UTF-8, and strips quotes: lines starting with ">", "On ... wrote:",
 * Persian "در تاریخ ... نوشت:", Outlook's "-----Original Message-----" and
 * its "From: / Sent: / To: / Subject:" block, and a "-- " signature.
 *
 * Pure: no I/O, no clock, no logging.  Any thread, once mail_parse_init()
 * ran on one (GMime's global state is set up there and never torn down);
 * parsed structs are not shared between threads.
 */
#ifndef CLUBD_MAIL_PARSE_H
#define CLUBD_MAIL_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "mime.h"
#include "util.h"

#define MAIL_ID_MAX         250         /* Message-ID bytes kept (without < >); longer is cut */
#define MAIL_REFS_MAX       16          /* References kept: the nearest ancestors */
#define MAIL_SUBJECT_MAX    998         /* bytes of UTF-8 */
#define MAIL_TEXT_MAX       (64 * 1024) /* bytes of the stripped text kept */
#define MAIL_CONTAINERS_MAX 100         /* multipart/ and message/ parts: deeper is refused */

struct mail_parsed {
	char from[ADDR_MAX + 1];            /* From's addr-spec as written, "" when none */
	char to[ADDR_MAX + 1];              /* the first To addr-spec, "" when none */
	char subject[MAIL_SUBJECT_MAX + 1]; /* decoded, UTF-8 */
	char message_id[MAIL_ID_MAX + 1];   /* without < >, "" when none */
	char in_reply_to[MAIL_ID_MAX + 1];  /* the first id of In-Reply-To, "" when none */
	char references[MAIL_REFS_MAX][MAIL_ID_MAX + 1]; /* oldest first */
	size_t nrefs;
	char *text; /* valid UTF-8, LF line ends, no NUL or other C0 but TAB/LF; owned */
	size_t text_len;
	int text_truncated; /* the text was longer than MAIL_TEXT_MAX */
	int html;           /* the text came from a text/html part */
	int64_t date_ms;    /* Date:, ms since the epoch; 0 when absent or unreadable */
	int automatic;      /* Auto-Submitted, a delivery report or bulk/list mail:
	                       not a person's reply */
};

/* Set up GMime (once; later calls do nothing).  Call it before the first
 * mail_parse() that may run on another thread; mail_parse() calls it too. */
void mail_parse_init(void);

/*
 * Parse len bytes of raw message.  0 with m filled, or -EINVAL when it is
 * not a message (no header) or nests more than MAIL_CONTAINERS_MAX
 * containers.  Free m with mail_parsed_free in every case.
 */
int mail_parse(const char *raw, size_t len, struct mail_parsed *m);
void mail_parsed_free(struct mail_parsed *m);

/*
 * Our message id (channels/mime.c's Message-ID form) that m answers:
 * In-Reply-To first, then References from the nearest ancestor back.
 * 0 with out set, or -ENOENT.
 */
int mail_reply_to_msg(const struct mail_parsed *m, char out[MIME_MSGID_MAX + 1]);

/* ---- the pieces, exported for tests ---------------------------------------- */

/* Cut the quoted previous message and a signature from s[0..n) (UTF-8, LF
 * line ends) in place, trim blank lines at both ends; returns the new
 * length (s stays NUL-terminated when it was). */
size_t mail_strip_quoted(char *s, size_t n);

/* The text of an HTML document: tags dropped (script, style, head and
 * blockquote with their content), block elements and <br> as line breaks,
 * entities decoded, white space collapsed.  Appends to out (its cap
 * applies: the text is cut there). */
void mail_html_to_text(const char *html, size_t n, struct buf *out);

#endif
