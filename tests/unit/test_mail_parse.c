/*
 * test_mail_parse.c - received emails into the router's fields (mail_parse.c):
 * the fixtures in tests/fixtures/mail/ (windows-1256 Persian in
 * quoted-printable, UTF-8 base64, multipart/alternative, HTML only,
 * Outlook's header block and "Original Message", Gmail's quoting in English
 * and Persian, an automatic answer, a malformed message), our Message-ID
 * found through In-Reply-To or References, the quote stripper and the HTML
 * reduction on their own, and hostile input: deep nesting refused, huge
 * texts cut at a character boundary, garbage never crashes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mail_parse.h"
#include "text.h"
#include "util.h"

/* ---- fixtures -------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct buf b;
	buf_init(&b, 0);
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
		buf_append(&b, tmp, n);
	fclose(f);
	*len = b.len;
	return b.p ? buf_steal(&b) : xstrdup("");
}

/* tests/fixtures/mail/<name>, from the repository root (run-suite) or
 * from build/tests, or under $CLUBD_SRCDIR. */
static char *fixture(const char *name, size_t *len)
{
	const char *roots[] = {getenv("CLUBD_SRCDIR"), ".", "../..", ".."};
	for (size_t i = 0; i < ARRAY_SIZE(roots); i++) {
		if (!roots[i] || !*roots[i])
			continue;
		char path[512];
		snprintf(path, sizeof path, "%s/tests/fixtures/mail/%s", roots[i], name);
		char *s = slurp(path, len);
		if (s)
			return s;
	}
	fail_msg("fixture %s not found (run from the repository root)", name);
	return NULL;
}

static void parse_fixture(const char *name, struct mail_parsed *m)
{
	size_t len = 0;
	char *raw = fixture(name, &len);
	int rc = mail_parse(raw, len, m);
	free(raw);
	assert_int_equal(rc, 0);
	assert_non_null(m->text);
	assert_true(utf8_valid(m->text, m->text_len));
	assert_int_equal(strlen(m->text), m->text_len);
}

/* ---- the fixtures, one by one ------------------------------------------------------- */

static void test_windows_1256_persian(void **state)
{
	(void)state;
	struct mail_parsed m;
	parse_fixture("fa_1256_qp.eml", &m);
	assert_string_equal(m.from, "Ali.Rezaei@Example.IR");
	assert_string_equal(m.to, "club@example.com");
	/* windows-1256 has the Arabic yeh (U+064A), decoded as such */
	assert_string_equal(m.subject, "پاسخ: جشنواره يلدا");
	assert_string_equal(m.message_id, "CAF1256qp@mail.example.ir");
	assert_string_equal(m.in_reply_to,
	                    "01JD8Z4K2M3N4P5Q6R7S8T9V0W.0123456789abcdef@example.com");
	assert_int_equal(m.nrefs, 1);
	/* the quoted part and the "در تاریخ ... نوشت:" line are gone */
	assert_string_equal(m.text, "سلام، ممنون از پيشنهاد.\n"
	                            "لطفاً براي من هم يک کد تخفيف بفرستيد.");
	assert_false(m.html);
	assert_false(m.automatic);
	/* Mon, 23 Nov 2026 10:15:00 +0330 */
	assert_int_equal(m.date_ms, 1795416300000LL);
	char id[MIME_MSGID_MAX + 1];
	assert_int_equal(mail_reply_to_msg(&m, id), 0);
	assert_string_equal(id, "01JD8Z4K2M3N4P5Q6R7S8T9V0W");
	mail_parsed_free(&m);
}

static void test_utf8_base64_gmail(void **state)
{
	(void)state;
	struct mail_parsed m;
	parse_fixture("utf8_b64.eml", &m);
	assert_string_equal(m.from, "sara@example.com");
	assert_string_equal(m.subject, "Re: رزرو میز 🎉");
	assert_string_equal(m.text, "Yes please, book me for Friday 🎉");
	assert_int_equal(m.nrefs, 2);
	assert_string_equal(m.references[1], "someone-else@elsewhere.example");
	/* In-Reply-To names someone else's message: References finds ours */
	char id[MIME_MSGID_MAX + 1];
	assert_int_equal(mail_reply_to_msg(&m, id), 0);
	assert_string_equal(id, "01JD8Z4K2M3N4P5Q6R7S8T9V0W");
	mail_parsed_free(&m);
}

static void test_alternative_prefers_plain(void **state)
{
	(void)state;
	struct mail_parsed m;
	parse_fixture("alternative.eml", &m);
	assert_string_equal(m.text, "متن ساده: عالی بود");
	assert_false(m.html);
	assert_int_equal(m.date_ms, 0);
	char id[MIME_MSGID_MAX + 1];
	assert_int_equal(mail_reply_to_msg(&m, id), -ENOENT);
	mail_parsed_free(&m);
}

static void test_html_only(void **state)
{
	(void)state;
	struct mail_parsed m;
	parse_fixture("html_only.eml", &m);
	assert_true(m.html);
	/* ZWNJ kept, entities decoded, script/style/title and the quote gone */
	assert_string_equal(m.text, "می\xe2\x80\x8cخواهم عضو شوم & امتیاز بگیرم\nTom <3 سلام");
	char id[MIME_MSGID_MAX + 1];
	assert_int_equal(mail_reply_to_msg(&m, id), 0);
	assert_string_equal(id, "01JD8Z4K2M3N4P5Q6R7S8T9V0X");
	mail_parsed_free(&m);
}

static void test_outlook_block_and_attachment(void **state)
{
	(void)state;
	struct mail_parsed m;
	parse_fixture("outlook.eml", &m);
	assert_string_equal(m.text, "Please send the invoice again.\n\nRegards,\nHamid");
	char id[MIME_MSGID_MAX + 1];
	assert_int_equal(mail_reply_to_msg(&m, id), 0);
	assert_string_equal(id, "01JD8Z4K2M3N4P5Q6R7S8T9V0Y");
	mail_parsed_free(&m);
}

static void test_outlook_original_message(void **state)
{
	(void)state;
	struct mail_parsed m;
	parse_fixture("outlook_original.eml", &m);
	/* ISO-8859-1 to UTF-8; the signature and the original message go */
	assert_string_equal(m.text, "Très bien, merci.\nSecond line.");
	mail_parsed_free(&m);
}

static void test_stop_keyword_survives(void **state)
{
	(void)state;
	struct mail_parsed m;
	parse_fixture("stop_gmail.eml", &m);
	assert_string_equal(m.text, "STOP");
	assert_false(m.automatic); /* Auto-Submitted: no */
	mail_parsed_free(&m);
}

static void test_automatic(void **state)
{
	(void)state;
	struct mail_parsed m;
	parse_fixture("autoreply.eml", &m);
	assert_true(m.automatic);
	mail_parsed_free(&m);
	const char *report = "From: MAILER-DAEMON@example.net\r\nTo: club@example.com\r\n"
	                     "Content-Type: multipart/report; report-type=delivery-status; "
	                     "boundary=r\r\n\r\n--r\r\nContent-Type: text/plain\r\n\r\n"
	                     "Delivery failed\r\n--r--\r\n";
	assert_int_equal(mail_parse(report, strlen(report), &m), 0);
	assert_true(m.automatic);
	assert_string_equal(m.text, "Delivery failed");
	mail_parsed_free(&m);
	const char *bulk = "From: news@example.net\r\nPrecedence: bulk\r\n\r\nhi\r\n";
	assert_int_equal(mail_parse(bulk, strlen(bulk), &m), 0);
	assert_true(m.automatic);
	mail_parsed_free(&m);
}

static void test_malformed(void **state)
{
	(void)state;
	struct mail_parsed m;
	parse_fixture("malformed.eml", &m);
	assert_string_equal(m.from, "broken@example.com");
	assert_true(utf8_valid(m.subject, strlen(m.subject)));
	assert_non_null(strstr(m.subject, "caf"));
	assert_string_equal(m.in_reply_to, "");
	assert_int_equal(m.date_ms, 0);
	assert_null(memchr(m.text, '\0', m.text_len));
	for (size_t i = 0; i < m.text_len; i++)
		assert_true((unsigned char)m.text[i] >= 0x20 || m.text[i] == '\n' ||
		            m.text[i] == '\t');
	mail_parsed_free(&m);
}

/* ---- hostile input ------------------------------------------------------------------ */

static void test_not_a_message(void **state)
{
	(void)state;
	struct mail_parsed m;
	assert_int_equal(mail_parse("", 0, &m), -EINVAL);
	mail_parsed_free(&m);
	assert_int_equal(mail_parse(NULL, 5, &m), -EINVAL);
	mail_parsed_free(&m);
	/* a body with no header at all */
	const char *junk = "\r\n\r\njust text";
	int rc = mail_parse(junk, strlen(junk), &m);
	assert_true(rc == -EINVAL || (rc == 0 && m.from[0] == '\0'));
	mail_parsed_free(&m);
}

static void test_empty_parts(void **state)
{
	(void)state;
	/* a text part that ends before its body (GMime gives no text for it) */
	const char *raw =
	    "From: e@example.com\r\nContent-Type: multipart/alternative; boundary=b1\r\n"
	    "\r\n--b1\r\nContent-Type: text/plain club@example.com\r\n"
	    "Subject: x\r\n--b1--\r\n";
	struct mail_parsed m;
	assert_int_equal(mail_parse(raw, strlen(raw), &m), 0);
	assert_string_equal(m.text, "");
	mail_parsed_free(&m);
	size_t len = 0;
	char *crash = fixture("../../fuzz/corpus/mail_parse/null_text_part.eml", &len);
	assert_int_equal(mail_parse(crash, len, &m), 0);
	assert_true(utf8_valid(m.text, m.text_len));
	mail_parsed_free(&m);
	free(crash);
}

static void test_deep_nesting_refused(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	buf_puts(&b, "From: deep@example.com\r\n");
	for (int i = 0; i < 5000; i++)
		buf_printf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i,
		           i);
	buf_puts(&b, "Content-Type: text/plain\r\n\r\nbottom\r\n");
	struct mail_parsed m;
	assert_int_equal(mail_parse(b.p, b.len, &m), -EINVAL);
	mail_parsed_free(&m);
	/* a modest nesting is parsed */
	buf_reset(&b);
	buf_puts(&b, "From: deep@example.com\r\n");
	for (int i = 0; i < 20; i++)
		buf_printf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i,
		           i);
	buf_puts(&b, "Content-Type: text/plain\r\n\r\nbottom\r\n");
	assert_int_equal(mail_parse(b.p, b.len, &m), 0);
	assert_string_equal(m.text, "bottom");
	mail_parsed_free(&m);
	buf_free(&b);
}

static void test_huge_text_cut_on_a_character(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	buf_puts(&b, "From: big@example.com\r\nContent-Type: text/plain; charset=utf-8\r\n"
	             "Content-Transfer-Encoding: 8bit\r\n\r\nx");
	for (int i = 0; i < 60000; i++)
		buf_puts(&b, "سل"); /* 4 bytes each, from an odd offset */
	buf_puts(&b, "\r\n");
	struct mail_parsed m;
	assert_int_equal(mail_parse(b.p, b.len, &m), 0);
	assert_true(m.text_truncated);
	assert_true(m.text_len <= MAIL_TEXT_MAX && m.text_len > MAIL_TEXT_MAX - 4);
	assert_true(utf8_valid(m.text, m.text_len));
	mail_parsed_free(&m);
	buf_free(&b);
}

static void test_long_ids_cut_and_garbage(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	buf_puts(&b, "From: a@example.com\r\nMessage-ID: <");
	for (int i = 0; i < 1000; i++)
		buf_puts(&b, "x");
	buf_puts(&b, "@example.com>\r\nReferences:");
	for (int i = 0; i < 100; i++)
		buf_printf(&b, " <r%d@example.com>", i);
	buf_puts(&b, "\r\n\r\nbody\r\n");
	struct mail_parsed m;
	assert_int_equal(mail_parse(b.p, b.len, &m), 0);
	assert_int_equal(strlen(m.message_id), MAIL_ID_MAX);
	assert_int_equal(m.nrefs, MAIL_REFS_MAX);
	assert_string_equal(m.references[MAIL_REFS_MAX - 1], "r99@example.com");
	mail_parsed_free(&m);
	buf_free(&b);

	/* pseudo-random bytes never crash and always give valid UTF-8 */
	uint32_t x = 12345;
	char raw[2048];
	for (int round = 0; round < 300; round++) {
		size_t n = 64 + (size_t)(round * 7) % (sizeof raw - 64);
		memcpy(raw,
		       "From: f@example.com\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n",
		       67);
		for (size_t i = 67; i < n; i++) {
			x = x * 1103515245u + 12345u;
			static const char alpha[] = "--q\r\n<>=?QB:;abc \xd8\xb3\xff\x00";
			raw[i] = alpha[(x >> 16) % (sizeof alpha - 1)];
		}
		if (mail_parse(raw, n, &m) == 0)
			assert_true(utf8_valid(m.text, m.text_len));
		mail_parsed_free(&m);
	}
}

/* ---- the pieces -------------------------------------------------------------------- */

static char *strip(const char *in)
{
	char *s = xstrdup(in);
	size_t n = mail_strip_quoted(s, strlen(s));
	assert_int_equal(strlen(s), n);
	return s;
}

static void test_strip_quoted(void **state)
{
	(void)state;
	struct {
		const char *in, *out;
	} cases[] = {
	    {"yes\n\nOn Mon, 1 Jan 2024, X <x@y> wrote:\n> q\n> q2\n", "yes"},
	    /* bottom posting: the reply after the quote is kept */
	    {"On Mon, 1 Jan 2024, X wrote:\n> question?\n\nanswer below\n", "answer below"},
	    /* inline answers between quoted lines */
	    {"> a?\nyes\n> b?\nno\n", "yes\nno"},
	    /* an attribution followed by an unquoted copy: cut */
	    {"ok\nOn Tue, X wrote:\nold text\n", "ok"},
	    /* Persian, with bidi embedding marks around the line */
	    {"باشه\n\xe2\x80\xab\xd8\xaf\xd8\xb1 \xd8\xaa\xd8\xa7\xd8\xb1\xdb\x8c\xd8\xae "
	     "۱۴۰۵/۰۹/۰۲ "
	     "باشگاه نوشت:\xe2\x80\xac\n> متن\n",
	     "باشه"},
	    /* an attribution wrapped over two lines */
	    {"sure\nOn Mon, Nov 23, 2026 at 10:00 AM Club Rewards\n<club@example.com> wrote:\n> "
	     "x\n",
	     "sure"},
	    {"hi\n-----Original Message-----\nFrom: a\n", "hi"},
	    {"hi\n\n-----پیام اصلی-----\nاز: a\n", "hi"},
	    {"text\n\nFrom: Club <c@x>\nSent: Monday\nTo: me\nSubject: s\n\nold\n", "text"},
	    /* Persian Outlook labels */
	    {"متن\nاز: باشگاه\nارسال شده: دوشنبه\nبه: من\nموضوع: سلام\nقدیمی\n", "متن"},
	    /* a "From:" line alone is the person's text */
	    {"From: my heart, thanks\nbye\n", "From: my heart, thanks\nbye"},
	    {"thanks\n-- \nAli\n+98 912\n", "thanks"},
	    {"STOP\n\nSent from my iPhone\n", "STOP"},
	    {"\n\n  para one  \n\n\n\npara two\n\n", "  para one\n\npara two"},
	    {"> only quoted\n> lines\n", ""},
	    {"", ""},
	    {"no newline at end", "no newline at end"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *s = strip(cases[i].in);
		if (strcmp(s, cases[i].out) != 0)
			fail_msg("case %zu: got [%s] want [%s]", i, s, cases[i].out);
		free(s);
	}
}

static void test_html_to_text(void **state)
{
	(void)state;
	struct {
		const char *in, *out;
	} cases[] = {
	    {"<p>Hello</p><p>World</p>", "\nHello\n\nWorld\n"},
	    {"a<br>b<br/>c", "a\nb\nc"},
	    {"x &amp; y &lt;3 &#1587; &#x1F389; &bogus; & z", "x & y <3 س 🎉 &bogus; & z"},
	    {"a&nbsp;&nbsp;b   \n\t c", "a b c"},
	    {"<!-- <p>hidden</p> -->shown<style>.x{}</style><script>var a='<p>';</script>!",
	     "shown!"},
	    {"keep<blockquote>drop<blockquote>deeper</blockquote>drop</blockquote>after",
	     "keep\nafter"},
	    {"<a href=\"x>y\" title='q>'>link</a> 1 < 2", "link 1 < 2"},
	    {"&#0;&#xD800;&#99999999;", "\xef\xbf\xbd\xef\xbf\xbd"},
	    {"<div>unterminated <b", "unterminated"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct buf b;
		buf_init(&b, 1024);
		mail_html_to_text(cases[i].in, strlen(cases[i].in), &b);
		const char *got = b.p ? b.p : "";
		if (strcmp(got, cases[i].out) != 0)
			fail_msg("case %zu: got [%s] want [%s]", i, got, cases[i].out);
		buf_free(&b);
	}
	/* the cap cuts the text */
	struct buf b;
	buf_init(&b, 10);
	mail_html_to_text("<p>0123456789abcdef</p>", 23, &b);
	assert_true(b.len <= 10);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_windows_1256_persian),
	    cmocka_unit_test(test_utf8_base64_gmail),
	    cmocka_unit_test(test_alternative_prefers_plain),
	    cmocka_unit_test(test_html_only),
	    cmocka_unit_test(test_outlook_block_and_attachment),
	    cmocka_unit_test(test_outlook_original_message),
	    cmocka_unit_test(test_stop_keyword_survives),
	    cmocka_unit_test(test_automatic),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_not_a_message),
	    cmocka_unit_test(test_empty_parts),
	    cmocka_unit_test(test_deep_nesting_refused),
	    cmocka_unit_test(test_huge_text_cut_on_a_character),
	    cmocka_unit_test(test_long_ids_cut_and_garbage),
	    cmocka_unit_test(test_strip_quoted),
	    cmocka_unit_test(test_html_to_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
