/*
 * fuzz_mail_parse.c - libFuzzer target for received emails (mail_parse.c,
 * GMime underneath): the input is one raw message.  Checks: mail_parse
 * never crashes or leaks; on success the text is valid UTF-8 of text_len
 * bytes (at most MAIL_TEXT_MAX) with no NUL or control character but TAB and
 * LF, the subject is valid UTF-8 without line breaks, ids and addresses are
 * printable ASCII, at most MAIL_REFS_MAX references; mail_reply_to_msg gives
 * a usable message id or -ENOENT.  The input is also fed to the quote
 * stripper and the HTML reduction on their own (as UTF-8 text when it is
 * valid), whose output must stay valid UTF-8 and no longer than the input
 * (stripping) or the cap (HTML).  Build and run: see tests/fuzz/README.md.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail_parse.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_token(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7F)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 256 * 1024)
		return 0;
	const char *raw = (const char *)data;
	struct mail_parsed m;
	int rc = mail_parse(raw, size, &m);
	if (rc != 0 && rc != -EINVAL)
		abort();
	if (rc == 0) {
		if (!m.text || strlen(m.text) != m.text_len || m.text_len > MAIL_TEXT_MAX ||
		    !utf8_valid(m.text, m.text_len))
			abort();
		for (size_t i = 0; i < m.text_len; i++) {
			unsigned char c = (unsigned char)m.text[i];
			if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7F)
				abort();
		}
		if (!utf8_valid(m.subject, strlen(m.subject)) || strpbrk(m.subject, "\r\n"))
			abort();
		check_token(m.from);
		check_token(m.to);
		check_token(m.message_id);
		check_token(m.in_reply_to);
		if (m.nrefs > MAIL_REFS_MAX)
			abort();
		for (size_t i = 0; i < m.nrefs; i++)
			check_token(m.references[i]);
		char id[MIME_MSGID_MAX + 1];
		int r = mail_reply_to_msg(&m, id);
		if (r == 0 && (strlen(id) == 0 || strlen(id) > MIME_MSGID_MAX))
			abort();
		if (r != 0 && r != -ENOENT)
			abort();
	}
	mail_parsed_free(&m);

	if (utf8_valid(raw, size) && !memchr(raw, '\0', size)) {
		char *s = malloc(size + 1);
		memcpy(s, raw, size);
		s[size] = '\0';
		size_t n = mail_strip_quoted(s, size);
		if (n > size || strlen(s) != n || !utf8_valid(s, n))
			abort();
		free(s);
	}
	struct buf b;
	buf_init(&b, 4096);
	mail_html_to_text(raw, size, &b);
	if (b.len > 4096 || (b.p && utf8_valid(raw, size) && !utf8_valid(b.p, b.len)))
		abort();
	buf_free(&b);
	return 0;
}
