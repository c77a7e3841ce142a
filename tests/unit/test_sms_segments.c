/*
 * test_sms_segments.c - SMS accounting: GSM 03.38 vs UCS-2 detection and
 * segment counts from a table of cases (boundaries 160/161, 306/307,
 * escape pairs and surrogate pairs straddling a part boundary, 70/71,
 * 134/135, emoji, Persian with Persian and ASCII digits, mixed scripts),
 * cost rounding, the common SMS keys and their errors, recipients,
 * percent encoding, and reason excerpts with secrets redacted.
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

#include "config.h"
#include "sms_segments.h"
#include "text.h"
#include "util.h"

#define FA_SIN   "\xd8\xb3"         /* U+0633 */
#define EMOJI    "\xf0\x9f\x98\x80" /* U+1F600, a surrogate pair in UTF-16 */
#define EURO     "\xe2\x82\xac"     /* U+20AC, GSM extension table */
#define FA_DIGIT "\xdb\xb1"         /* U+06F1 EXTENDED ARABIC-INDIC DIGIT ONE */

/* n copies of s, then more pieces: pairs of count and string up to a
 * negative count (REP adds it). */
static char *rep(int n, const char *s, ...)
{
	struct buf b;
	buf_init(&b, 0);
	for (int i = 0; i < n; i++)
		buf_puts(&b, s);
	va_list ap;
	va_start(ap, s);
	for (;;) {
		int k = va_arg(ap, int);
		if (k < 0)
			break;
		const char *t = va_arg(ap, const char *);
		for (int i = 0; i < k; i++)
			buf_puts(&b, t);
	}
	va_end(ap);
	return buf_steal(&b);
}

#define REP(...) rep(__VA_ARGS__, -1)

struct count_case {
	const char *name;
	char *text;
	int ucs2, units, segments, per_segment;
};

static const char gsm_basic_all[] =
    "@\xc2\xa3$\xc2\xa5\xc3\xa8\xc3\xa9\xc3\xb9\xc3\xac\xc3\xb2\xc3\x87\n\xc3\x98\xc3\xb8\r"
    "\xc3\x85\xc3\xa5\xce\x94_\xce\xa6\xce\x93\xce\x9b\xce\xa9\xce\xa0\xce\xa8\xce\xa3\xce\x98"
    "\xce\x9e\xc3\x86\xc3\xa6\xc3\x9f\xc3\x89 !\"#\xc2\xa4%&'()*+,-./0123456789:;<=>?"
    "\xc2\xa1"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ\xc3\x84\xc3\x96\xc3\x91\xc3\x9c\xc2\xa7\xc2\xbf"
    "abcdefghijklmnopqrstuvwxyz\xc3\xa4\xc3\xb6\xc3\xb1\xc3\xbc\xc3\xa0";
static const char gsm_ext_all[] = "^{}\\[~]|" EURO "\f";

static const char fa_text[] =
    "\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85\xd8\x8c \xd9\x85\xd8\xb4\xd8\xaa\xd8\xb1\xdb\x8c "
    "\xda\xaf\xd8\xb1\xd8\xa7\xd9\x85\xdb\x8c! \xd8\xa8\xd8\xa7\xd8\xb4\xda\xaf\xd8\xa7\xd9\x87 "
    "\xd9\x85\xd8\xa7 \xd8\xa7\xd8\xb2 \xd8\xb4\xd9\x86\xd8\xa8\xd9\x87 \xd8\xaa\xd8\xa7 "
    "\xd8\xac\xd9\x85\xd8\xb9\xd9\x87 \xd8\xa8\xd8\xa7\xd8\xb2 \xd8\xa7\xd8\xb3\xd8\xaa.\n"
    "\xda\xa9\xd8\xaf \xd8\xaa\xd8\xae\xd9\x81\xdb\x8c\xd9\x81: YALDA1402 \xe2\x80\x94 "
    "\xd8\xa8\xd8\xb1\xd8\xa7\xdb\x8c \xd9\x84\xd8\xba\xd9\x88 \xdb\xb1\xdb\xb1 "
    "\xd8\xb1\xd8\xa7 \xd8\xa8\xd9\x81\xd8\xb1\xd8\xb3\xd8\xaa\xdb\x8c\xd8\xaf.";

static void test_count_table(void **state)
{
	(void)state;
	struct count_case cases[] = {
	    {"empty", REP(0, ""), 0, 0, 1, 160},
	    {"hello", REP(1, "hello"), 0, 5, 1, 160},
	    {"gsm 160", REP(160, "a"), 0, 160, 1, 160},
	    {"gsm 161", REP(161, "a"), 0, 161, 2, 153},
	    {"gsm 306", REP(306, "a"), 0, 306, 2, 153},
	    {"gsm 307", REP(307, "a"), 0, 307, 3, 153},
	    {"gsm 459", REP(459, "a"), 0, 459, 3, 153},
	    {"gsm 460", REP(460, "a"), 0, 460, 4, 153},
	    {"158 + euro = 160", REP(158, "a", 1, EURO), 0, 160, 1, 160},
	    {"159 + euro = 161", REP(159, "a", 1, EURO), 0, 161, 2, 153},
	    {"80 escapes = 160", REP(80, "["), 0, 160, 1, 160},
	    {"81 euros = 162", REP(81, EURO), 0, 162, 2, 153},
	    /* 306 septets, but the escape at 153/154 moves to part 2 */
	    {"escape straddles 153", REP(152, "a", 1, "{", 152, "a"), 0, 306, 3, 153},
	    {"escape ends part 1", REP(151, "a", 1, "{", 153, "a"), 0, 306, 2, 153},
	    {"153 euros = 306", REP(153, EURO), 0, 306, 3, 153},
	    {"gsm 307 with escapes", REP(151, "a", 1, "~", 154, "a"), 0, 307, 3, 153},
	    {"whole basic alphabet", REP(1, gsm_basic_all), 0, 127, 1, 160},
	    {"whole extension table", REP(1, gsm_ext_all), 0, 20, 1, 160},
	    {"CR LF", REP(1, "a\r\nb"), 0, 4, 1, 160},
	    {"greek capitals", REP(1, "\xce\x94\xce\xa6\xce\x93\xce\x9b\xce\xa9"), 0, 5, 1, 160},
	    {"backtick is not GSM", REP(1, "a`b"), 1, 3, 1, 70},
	    {"tab is not GSM", REP(1, "a\tb"), 1, 3, 1, 70},
	    {"c cedilla small is not GSM", REP(1, "\xc3\xa7"), 1, 1, 1, 70},
	    {"a circumflex is not GSM", REP(1, "\xc3\xa2"), 1, 1, 1, 70},
	    {"greek small alpha is not GSM", REP(1, "\xce\xb1"), 1, 1, 1, 70},
	    {"dollar and at", REP(1, "$5 @ home"), 0, 9, 1, 160},
	    {"ucs2 70", REP(70, FA_SIN), 1, 70, 1, 70},
	    {"ucs2 71", REP(71, FA_SIN), 1, 71, 2, 67},
	    {"ucs2 134", REP(134, FA_SIN), 1, 134, 2, 67},
	    {"ucs2 135", REP(135, FA_SIN), 1, 135, 3, 67},
	    {"emoji", REP(1, EMOJI), 1, 2, 1, 70},
	    {"35 emoji = 70 units", REP(35, EMOJI), 1, 70, 1, 70},
	    {"36 emoji = 72 units", REP(36, EMOJI), 1, 72, 2, 67},
	    /* 134 units, but the surrogate pair at 67/68 moves to part 2 */
	    {"surrogate straddles 67", REP(66, FA_SIN, 1, EMOJI, 66, FA_SIN), 1, 134, 3, 67},
	    {"surrogate ends part 1", REP(65, FA_SIN, 1, EMOJI, 67, FA_SIN), 1, 134, 2, 67},
	    {"latin with one emoji", REP(1, "ok " EMOJI), 1, 5, 1, 70},
	    {"persian and digits", REP(1, "\xda\xa9\xd8\xaf " FA_DIGIT FA_DIGIT " 1234"), 1, 10, 1,
	     70},
	    {"persian digits only", REP(3, FA_DIGIT), 1, 3, 1, 70},
	    {"mixed latin and persian", REP(1, "Hello \xd8\xb3\xd9\x84\xd8\xa7\xd9\x85"), 1, 10, 1,
	     70},
	    {"latin 100 + one persian letter", REP(100, "a", 1, FA_SIN), 1, 101, 2, 67},
	    {"persian paragraph", REP(1, fa_text), 1, 99, 2, 67},
	    {"euro sign in ucs2 counts 1", REP(1, EURO "\xce\xb1"), 1, 2, 1, 70},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct count_case *k = &cases[i];
		struct sms_count c;
		int r = sms_count(k->text, strlen(k->text), &c);
		if (r != 0 || c.ucs2 != k->ucs2 || c.units != k->units ||
		    c.segments != k->segments || c.per_segment != k->per_segment)
			fail_msg("%s: r=%d ucs2=%d units=%d segments=%d per=%d; want ucs2=%d "
			         "units=%d segments=%d per=%d",
			         k->name, r, c.ucs2, c.units, c.segments, c.per_segment, k->ucs2,
			         k->units, k->segments, k->per_segment);
		free(k->text);
	}
}

static void test_count_invalid(void **state)
{
	(void)state;
	static const char *const bad[] = {"\xff",   "a\xc0\x80",        "\xed\xa0\x80",
	                                  "ok\xd8", "\xf4\x90\x80\x80", "\x80"};
	struct sms_count c;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(sms_count(bad[i], strlen(bad[i]), &c), -EILSEQ);
	/* an embedded NUL counts (len-based) and is not GSM's '@' */
	assert_int_equal(sms_count("a\0b", 3, &c), 0);
	assert_int_equal(c.ucs2, 1);
	assert_int_equal(c.units, 3);
}

static void test_gsm_table(void **state)
{
	(void)state;
	uint32_t cp;
	int n = 0;
	for (size_t i = 0; gsm_basic_all[i];) {
		int l = utf8_decode(gsm_basic_all + i, strlen(gsm_basic_all + i), &cp);
		assert_true(l > 0);
		if (sms_gsm_septets(cp) != 1)
			fail_msg("U+%04X should be in the default alphabet", cp);
		i += (size_t)l;
		n++;
	}
	assert_int_equal(n, 127); /* 128 positions minus ESC */
	for (size_t i = 0; gsm_ext_all[i];) {
		int l = utf8_decode(gsm_ext_all + i, strlen(gsm_ext_all + i), &cp);
		if (sms_gsm_septets(cp) != 2)
			fail_msg("U+%04X should be in the extension table", cp);
		i += (size_t)l;
	}
	static const uint32_t no[] = {'`',   '\t',  0,     0x1b,   0x7f,    0xa0,   0xe7,   0xe2,
	                              0x3b1, 0x633, 0x6f1, 0x2014, 0x1f600, 0x00c0, 0x00cb, 0x0391};
	for (size_t i = 0; i < ARRAY_SIZE(no); i++)
		if (sms_gsm_septets(no[i]) != 0)
			fail_msg("U+%04X should not be GSM", no[i]);
}

static void test_cost(void **state)
{
	(void)state;
	assert_int_equal(sms_cost_micros(1, 0.0075), 7500);
	assert_int_equal(sms_cost_micros(3, 0.0075), 22500);
	assert_int_equal(sms_cost_micros(7, 0.0123456), 86419);
	assert_int_equal(sms_cost_micros(10, 0.1), 1000000);
	assert_int_equal(sms_cost_micros(2, 0.00000075), 2); /* 1.5 rounds up */
	assert_int_equal(sms_cost_micros(0, 0.5), 0);
	assert_int_equal(sms_cost_micros(4, 0), 0);
	assert_int_equal(sms_cost_micros(255, 1000), 255000000000LL);
}

/* ---- the common keys, on a hand-built section -------------------------------- */

static struct cfg_kv kvs[8];
static struct cfg_section sec;

static void set_section(const char *const *pairs)
{
	memset(kvs, 0, sizeof kvs);
	memset(&sec, 0, sizeof sec);
	sec.name = "channel.sms";
	sec.file = "t.conf";
	sec.line = 1;
	sec.kv = kvs;
	for (size_t i = 0; pairs[2 * i]; i++) {
		kvs[i].key = (char *)pairs[2 * i];
		kvs[i].value = (char *)pairs[2 * i + 1];
		kvs[i].line = (int)i + 2;
		sec.nkv++;
	}
}

static void expect_opts_error(const char *const *pairs, const char *want)
{
	struct sms_opts o;
	struct cfg_error err;
	memset(&err, 0, sizeof err);
	set_section(pairs);
	assert_int_equal(sms_opts_configure(&sec, &o, &err), -1);
	sms_opts_free(&o);
	if (!strstr(err.msg, want))
		fail_msg("error '%s' does not contain '%s'", err.msg, want);
}

static void test_opts(void **state)
{
	(void)state;
	struct sms_opts o;
	struct cfg_error err;
	const char *defaults[] = {NULL};
	set_section(defaults);
	assert_int_equal(sms_opts_configure(&sec, &o, &err), 0);
	assert_null(o.sender);
	assert_int_equal(o.max_segments, 10);
	assert_true(o.price == 0);
	sms_opts_free(&o);

	const char *good[] = {"sender", "Club Shop", "price_per_segment", "0.0075", "max_segments",
	                      "3",      NULL};
	set_section(good);
	assert_int_equal(sms_opts_configure(&sec, &o, &err), 0);
	assert_string_equal(o.sender, "Club Shop");
	assert_int_equal(o.max_segments, 3);
	for (size_t i = 0; i < sec.nkv; i++)
		assert_true(kvs[i].used);

	struct sms_count c;
	char why[256];
	assert_int_equal(sms_opts_check(&o, "hi", &c, why, sizeof why), 0);
	assert_int_equal(c.segments, 1);
	char *t = REP(460, "a");
	assert_int_equal(sms_opts_check(&o, t, &c, why, sizeof why), -1);
	assert_string_equal(why, "too long: 4 segments > max 3");
	free(t);
	t = REP(459, "a");
	assert_int_equal(sms_opts_check(&o, t, &c, why, sizeof why), 0);
	assert_int_equal(c.segments, 3);
	free(t);
	assert_int_equal(sms_opts_check(&o, "", &c, why, sizeof why), -1);
	assert_string_equal(why, "empty text");
	assert_int_equal(sms_opts_check(&o, NULL, &c, why, sizeof why), -1);
	assert_string_equal(why, "empty text");
	assert_int_equal(sms_opts_check(&o, "bad \xff", &c, why, sizeof why), -1);
	assert_string_equal(why, "text is not valid UTF-8");
	sms_opts_free(&o);

	const char *e1[] = {"max_segments", "0", NULL};
	expect_opts_error(e1, "t.conf:2: channel.sms.max_segments: must be between 1 and 255");
	const char *e2[] = {"max_segments", "256", NULL};
	expect_opts_error(e2, "channel.sms.max_segments: must be between 1 and 255");
	const char *e3[] = {"sender", "x", "price_per_segment", "-1", NULL};
	expect_opts_error(e3, "t.conf:3: channel.sms.price_per_segment:");
	const char *e4[] = {"price_per_segment", "cheap", NULL};
	expect_opts_error(e4, "channel.sms.price_per_segment: must be a decimal number");
	const char *e5[] = {"sender", "bad\tsender", NULL};
	expect_opts_error(e5, "t.conf:2: channel.sms.sender: must be 1 to 32 printable ASCII");
	const char *e6[] = {"sender", "an-alphanumeric-sender-id-that-is-far-too-long", NULL};
	expect_opts_error(e6, "channel.sms.sender:");
	const char *e7[] = {"sender", "", NULL};
	expect_opts_error(e7, "channel.sms.sender:");
	const char *e8[] = {"sender", "\xd8\xb3\xd9\x84", NULL};
	expect_opts_error(e8, "channel.sms.sender:");
}

static void test_recipient(void **state)
{
	(void)state;
	char out[24];
	assert_int_equal(sms_recipient_digits("+989121234567", out, sizeof out), 0);
	assert_string_equal(out, "989121234567");
	assert_int_equal(sms_recipient_digits("989121234567", out, sizeof out), 0);
	assert_string_equal(out, "989121234567");
	static const char *const bad[] = {
	    "+98 912 123",           "+98912&x=1",  "", "+", "12", "++98912", "+" FA_DIGIT "23456",
	    "123456789012345678901", "9891212345\n"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (sms_recipient_digits(bad[i], out, sizeof out) != -EINVAL)
			fail_msg("'%s' should be refused", bad[i]);
	assert_int_equal(sms_recipient_digits(NULL, out, sizeof out), -EINVAL);
	assert_int_equal(sms_recipient_digits("+98912", out, 5), -EINVAL);
}

static void test_pct_encode(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(sms_pct_encode(&b, "a b+c/\xc3\xa9~-._%&=?#", 17), 0);
	assert_string_equal(b.p, "a%20b%2Bc%2F%C3%A9~-._%25%26%3D%3F%23");
	buf_free(&b);
	buf_init(&b, 0);
	assert_int_equal(sms_pct_encode(&b, "", 0), 0);
	assert_non_null(b.p);
	assert_string_equal(b.p, "");
	buf_free(&b);
	buf_init(&b, 8);
	assert_int_equal(sms_pct_encode(&b, "\xd8\xb3\xd8\xb3", 4), -ENOSPC);
	buf_free(&b);
}

static void test_excerpt(void **state)
{
	(void)state;
	char out[200];
	const char *none[] = {NULL};

	const char *b1 = "  \r\nAuthorization failed for sendsms\nsecond line";
	sms_excerpt(out, sizeof out, b1, strlen(b1), none);
	assert_string_equal(out, "Authorization failed for sendsms");

	/* exactly 80 characters and trailing blanks: nothing was cut */
	char *b80 = REP(80, "z", 5, " ", 1, "\t\r\nnext");
	sms_excerpt(out, sizeof out, b80, strlen(b80), NULL);
	assert_int_equal(strlen(out), SMS_EXCERPT_MAX);
	assert_null(strstr(out, "..."));
	free(b80);

	char *longb = REP(200, "x");
	sms_excerpt(out, sizeof out, longb, strlen(longb), NULL);
	assert_int_equal(strlen(out), SMS_EXCERPT_MAX + 3);
	assert_string_equal(out + SMS_EXCERPT_MAX, "...");
	free(longb);

	const char *secrets[] = {"p@ss w0rd", "hunter2", NULL};
	const char *b2 = "{\"error\":\"invalid api key hunter2\",\"echo\":\"p%40ss%20w0rd\"}";
	sms_excerpt(out, sizeof out, b2, strlen(b2), secrets);
	assert_string_equal(out, "{\"error\":\"invalid api key ***\",\"echo\":\"***\"}");
	const char *b3 = "bad auth cEBzcyB3MHJk and p@ss w0rd";
	sms_excerpt(out, sizeof out, b3, strlen(b3), secrets);
	assert_string_equal(out, "bad auth *** and ***");

	/* the secret beyond the cut is redacted before cutting: no prefix leaks */
	char *b4 = REP(78, "y", 1, "hunter2");
	sms_excerpt(out, sizeof out, b4, strlen(b4), secrets);
	assert_null(strstr(out, "hu"));
	free(b4);

	const char *b5 = "\x1b[31mred\x07 \xe2\x80\xae"
	                 "evil\xe2\x80\xac \xff ok\tdone";
	sms_excerpt(out, sizeof out, b5, strlen(b5), NULL);
	assert_string_equal(out, "[31mred evil ? ok done");

	const char *b6 =
	    "\xd8\xae\xd8\xb7\xd8\xa7: \xd8\xa7\xd8\xb9\xd8\xaa\xd8\xa8\xd8\xa7\xd8\xb1";
	sms_excerpt(out, sizeof out, b6, strlen(b6), NULL);
	assert_string_equal(out, b6);
	char *b7 = REP(100, FA_SIN);
	sms_excerpt(out, sizeof out, b7, strlen(b7), NULL);
	assert_true(utf8_valid(out, strlen(out)));
	assert_int_equal(utf8_len(out, strlen(out)), SMS_EXCERPT_MAX + 3);
	free(b7);

	sms_excerpt(out, sizeof out, "", 0, NULL);
	assert_string_equal(out, "");
	sms_excerpt(out, sizeof out, NULL, 0, NULL);
	assert_string_equal(out, "");
	char small[10];
	sms_excerpt(small, sizeof small, "0123456789abcdef", 16, NULL);
	assert_true(strlen(small) < sizeof small);
	assert_memory_equal(small, "01234", 5);
	assert_string_equal(small + strlen(small) - 3, "...");

	char err[64] = "Failed to connect to h port 1 with hunter2";
	sms_redact(err, sizeof err, secrets);
	assert_string_equal(err, "Failed to connect to h port 1 with ***");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_count_table), cmocka_unit_test(test_count_invalid),
	    cmocka_unit_test(test_gsm_table),   cmocka_unit_test(test_cost),
	    cmocka_unit_test(test_opts),        cmocka_unit_test(test_recipient),
	    cmocka_unit_test(test_pct_encode),  cmocka_unit_test(test_excerpt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
