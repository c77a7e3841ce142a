/*
 * test_text.c - UTF-8 validation edge cases (overlongs, surrogates, range,
 * truncation), code point counting, control detection, digit folding and
 * the full text_normalize() used for keyword matching.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "text.h"

struct valid_case {
	const char *s;
	size_t n;
	int valid;
	const char *what;
};

#define V(lit, ok, what)                                                                           \
	{                                                                                          \
		lit, sizeof(lit) - 1, ok, what                                                     \
	}

static const struct valid_case valid_cases[] = {
    V("", 1, "empty"),
    V("hello", 1, "ascii"),
    V("\x00", 1, "NUL is a valid code point"),
    V("\x7f", 1, "DEL"),
    V("\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85", 1, "salam"),
    V("\xc2\x80", 1, "U+0080 smallest 2-byte"),
    V("\xdf\xbf", 1, "U+07FF largest 2-byte"),
    V("\xe0\xa0\x80", 1, "U+0800 smallest 3-byte"),
    V("\xed\x9f\xbf", 1, "U+D7FF before surrogates"),
    V("\xee\x80\x80", 1, "U+E000 after surrogates"),
    V("\xef\xbf\xbf", 1, "U+FFFF"),
    V("\xef\xbb\xbf", 1, "U+FEFF BOM"),
    V("\xf0\x90\x80\x80", 1, "U+10000 smallest 4-byte"),
    V("\xf0\x9f\x98\x80", 1, "emoji"),
    V("\xf4\x8f\xbf\xbf", 1, "U+10FFFF"),
    V("\xe2\x80\x8c", 1, "ZWNJ"),
    V("\xf4\x90\x80\x80", 0, "U+110000"),
    V("\xf5\x80\x80\x80", 0, "F5 lead"),
    V("\xf7\xbf\xbf\xbf", 0, "U+1FFFFF"),
    V("\xf8\x88\x80\x80\x80", 0, "5-byte form"),
    V("\xfc\x84\x80\x80\x80\x80", 0, "6-byte form"),
    V("\xfe", 0, "FE"),
    V("\xff", 0, "FF"),
    V("\xed\xa0\x80", 0, "U+D800 high surrogate"),
    V("\xed\xbf\xbf", 0, "U+DFFF low surrogate"),
    V("\xed\xa0\xbd\xed\xb8\x80", 0, "CESU-8 surrogate pair"),
    V("\xc0\x80", 0, "overlong NUL"),
    V("\xc0\xaf", 0, "overlong slash"),
    V("\xc1\xbf", 0, "overlong U+007F"),
    V("\xe0\x80\x80", 0, "3-byte overlong NUL"),
    V("\xe0\x9f\xbf", 0, "3-byte overlong U+07FF"),
    V("\xf0\x80\x80\x80", 0, "4-byte overlong NUL"),
    V("\xf0\x8f\xbf\xbf", 0, "4-byte overlong U+FFFF"),
    V("\x80", 0, "lone continuation"),
    V("a\xbf", 0, "stray continuation after ascii"),
    V("\xc2", 0, "truncated 2-byte"),
    V("\xe2\x82", 0, "truncated 3-byte"),
    V("\xf0\x9f\x98", 0, "truncated 4-byte"),
    V("\xc2\x41", 0, "lead then ascii"),
    V("\xe2\x28\xa1", 0, "bad second byte"),
    V("\xe2\x82\x28", 0, "bad third byte"),
    V("\xf0\x9f\x98\x28", 0, "bad fourth byte"),
    V("ok\xd8\xb3\xd9", 0, "valid then truncated"),
};

static void test_utf8_valid(void **state)
{
	(void)state;
	int bad = 0;
	for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
		const struct valid_case *c = &valid_cases[i];
		int got = utf8_valid(c->s, c->n);
		if (got != c->valid) {
			print_error("utf8_valid %s: got %d want %d\n", c->what, got, c->valid);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
	/* Only the first n bytes count. */
	assert_true(utf8_valid("ab\xff", 2));
	assert_false(utf8_valid("ab\xff", 3));
	assert_true(utf8_valid("\xd8\xb3", 2));
	assert_false(utf8_valid("\xd8\xb3", 1));
}

static size_t encode(uint32_t cp, unsigned char *o)
{
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xc0 | (cp >> 6));
		o[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xe0 | (cp >> 12));
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (unsigned char)(0xf0 | (cp >> 18));
	o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Every code point round-trips; every surrogate is refused. */
static void test_utf8_decode_all(void **state)
{
	(void)state;
	unsigned char b[4];
	long bad = 0;
	for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
		size_t n = encode(cp, b);
		uint32_t got = 0xFFFFFFFF;
		int l = utf8_decode((const char *)b, n, &got);
		int surrogate = cp >= 0xD800 && cp <= 0xDFFF;
		if (surrogate ? l != -1 : (l != (int)n || got != cp))
			bad++;
		if (surrogate ? utf8_valid((const char *)b, n) : !utf8_valid((const char *)b, n))
			bad++;
		/* Truncation of a multi-byte sequence is always refused. */
		if (n > 1 && utf8_decode((const char *)b, n - 1, &got) != -1)
			bad++;
	}
	assert_int_equal(bad, 0);
}

/* All two-byte inputs against the rule written out by hand. */
static void test_utf8_two_bytes(void **state)
{
	(void)state;
	long bad = 0;
	for (unsigned a = 0; a < 256; a++) {
		for (unsigned b = 0; b < 256; b++) {
			char s[2] = {(char)a, (char)b};
			int want;
			if (a < 0x80)
				want = b < 0x80; /* second byte must be ascii too */
			else if (a >= 0xc2 && a <= 0xdf)
				want = b >= 0x80 && b <= 0xbf;
			else
				want = 0; /* continuation, overlong lead, or truncated 3/4-byte */
			if (utf8_valid(s, 2) != want)
				bad++;
		}
	}
	assert_int_equal(bad, 0);
	uint32_t cp = 0;
	assert_int_equal(utf8_decode("", 0, &cp), -1);
}

static void test_utf8_len(void **state)
{
	(void)state;
	assert_int_equal(utf8_len("", 0), 0);
	assert_int_equal(utf8_len("abc", 3), 3);
	const char *salam = "\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85";
	assert_int_equal(utf8_len(salam, strlen(salam)), 4);
	const char *mix = "a\xe2\x82\xac\xf0\x9f\x98\x80z"; /* a € 😀 z */
	assert_int_equal(utf8_len(mix, strlen(mix)), 4);
	const char *zwnj =
	    "\xd9\x85\xdb\x8c\xe2\x80\x8c\xd8\xb1\xd9\x88\xd9\x85"; /* می‌روم */
	assert_int_equal(utf8_len(zwnj, strlen(zwnj)), 6);
	assert_int_equal(utf8_len(salam, 2), 1);
}

static void test_has_ctl(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int allow_nl;
		int want;
	} cases[] = {
	    {"", 0, 0},
	    {"plain text", 0, 0},
	    {"\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85", 0, 0},
	    {"line\nbreak", 0, 1},
	    {"line\nbreak", 1, 0},
	    {"crlf\r\n", 1, 0},
	    {"crlf\r\n", 0, 1},
	    {"tab\there", 1, 0},
	    {"tab\there", 0, 1},
	    {"bell\a", 1, 1},
	    {"esc\x1b[31m", 1, 1},
	    {"del\x7f", 1, 1},
	    {"\x01", 1, 1},
	    {"\x1f", 0, 1},
	    {"vt\v", 1, 1},
	    {"ff\f", 1, 1},
	    {"space ok ~", 0, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (text_has_ctl(cases[i].s, cases[i].allow_nl) != cases[i].want)
			fail_msg("text_has_ctl case %zu", i);
	}
}

static void test_ascii_digits(void **state)
{
	(void)state;
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"", ""},
	    {"abc 123", "abc 123"},
	    {"\xdb\xb0\xdb\xb1\xdb\xb2\xdb\xb3\xdb\xb4\xdb\xb5\xdb\xb6\xdb\xb7\xdb\xb8\xdb\xb9",
	     "0123456789"},
	    {"\xd9\xa0\xd9\xa1\xd9\xa2\xd9\xa3\xd9\xa4\xd9\xa5\xd9\xa6\xd9\xa7\xd9\xa8\xd9\xa9",
	     "0123456789"},
	    {"\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85 \xdb\xb1\xdb\xb2",
	     "\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85 12"},
	    {"x\xdb\xb9y\xd9\xa0z", "x9y0z"},
	    /* neighbours that are not digits stay */
	    {"\xdb\xaf\xdb\xba\xd9\x9f\xd9\xaa", "\xdb\xaf\xdb\xba\xd9\x9f\xd9\xaa"},
	    /* a truncated lead byte at the end is copied, not read past */
	    {"1\xdb", "1\xdb"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = text_ascii_digits(cases[i].in);
		assert_non_null(got);
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("text_ascii_digits case %zu: got \"%s\"", i, got);
		free(got);
	}
}

struct norm_case {
	const char *in, *want; /* want NULL: must be refused */
};

static const struct norm_case norm_cases[] = {
    {"", ""},
    {"   ", ""},
    {"STOP", "stop"},
    {"  Stop  ", "stop"},
    {"Hello   World", "hello world"},
    {"a\t\tb\r\nc", "a b c"},
    /* "  سلام  ۱۲۳ كيك " -> "سلام 123 کیک" (Arabic kaf/yeh to Persian) */
    {"  \xd8\xb3\xd9\x84\xd8\xa7\xd9\x85  \xdb\xb1\xdb\xb2\xdb\xb3 \xd9\x83\xd9\x8a\xd9\x83 ",
     "\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85 123 \xda\xa9\xdb\x8c\xda\xa9"},
    /* Arabic-Indic digits */
    {"\xd9\xa4\xd9\xa2", "42"},
    /* alef maksura U+0649 -> Persian yeh U+06CC */
    {"\xd9\x85\xd9\x88\xd8\xb3\xd9\x89", "\xd9\x85\xd9\x88\xd8\xb3\xdb\x8c"},
    /* Persian yeh/keheh already normal */
    {"\xdb\x8c\xda\xa9", "\xdb\x8c\xda\xa9"},
    /* ZWNJ kept: "می‌خواهم" */
    {"\xd9\x85\xdb\x8c\xe2\x80\x8c\xd8\xae\xd9\x88\xd8\xa7\xd9\x87\xd9\x85",
     "\xd9\x85\xdb\x8c\xe2\x80\x8c\xd8\xae\xd9\x88\xd8\xa7\xd9\x87\xd9\x85"},
    /* ZWNJ with Arabic yeh before it: folded, ZWNJ still there */
    {"\xd9\x85\xd9\x8a\xe2\x80\x8c\xd8\xb1\xd9\x88\xd9\x85",
     "\xd9\x85\xdb\x8c\xe2\x80\x8c\xd8\xb1\xd9\x88\xd9\x85"},
    /* NBSP, en quad .. ZWSP, ideographic space, BOM trimmed/collapsed */
    {"\xc2\xa0yes\xc2\xa0", "yes"},
    {"\xef\xbb\xbfyes", "yes"},
    {"a\xe2\x80\x80\xe2\x80\x8a\xe2\x80\x8b"
     "b",
     "a b"},
    {"\xe3\x80\x80"
     "a\xe3\x80\x80"
     "b\xe3\x80\x80",
     "a b"},
    {"a\xe2\x80\xaf"
     "b\xe2\x81\x9f"
     "c",
     "a b c"},
    {"a\xc2\x85"
     "b",
     "a b"},
    /* lower-casing is ASCII only */
    {"\xc3\x89T\xc3\xa9", "\xc3\x89t\xc3\xa9"},
    {"MiXeD 123 CaSe", "mixed 123 case"},
    {"\xf0\x9f\x98\x80 OK", "\xf0\x9f\x98\x80 ok"},
    /* invalid UTF-8 is refused */
    {"abc\xff", NULL},
    {"\xc0\x80", NULL},
    {"\xc0\xa0yes", NULL},
    {"\xed\xa0\x80", NULL},
    {"\xf4\x90\x80\x80", NULL},
    {"\xd8", NULL},
};

static void test_normalize(void **state)
{
	(void)state;
	int bad = 0;
	for (size_t i = 0; i < sizeof(norm_cases) / sizeof(norm_cases[0]); i++) {
		const struct norm_case *c = &norm_cases[i];
		char *got = text_normalize(c->in);
		if (!c->want ? got != NULL : (!got || strcmp(got, c->want) != 0)) {
			print_error("text_normalize case %zu: got %s%s%s want %s\n", i,
			            got ? "\"" : "", got ? got : "NULL", got ? "\"" : "",
			            c->want ? c->want : "NULL");
			bad++;
		}
		free(got);
	}
	assert_int_equal(bad, 0);
	assert_null(text_normalize(NULL));
}

/* Normalising is idempotent and never grows the string. */
static void test_normalize_idempotent(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(norm_cases) / sizeof(norm_cases[0]); i++) {
		char *once = text_normalize(norm_cases[i].in);
		if (!once)
			continue;
		assert_true(strlen(once) <= strlen(norm_cases[i].in));
		char *twice = text_normalize(once);
		assert_non_null(twice);
		assert_string_equal(once, twice);
		free(once);
		free(twice);
	}
}

static void test_is_space_and_digits(void **state)
{
	(void)state;
	static const uint32_t spaces[] = {' ',    '\t',   '\n',   '\r',   0x0B,   0x0C,   0x85,
	                                  0xA0,   0x1680, 0x2000, 0x2005, 0x200A, 0x200B, 0x2028,
	                                  0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF};
	static const uint32_t not_spaces[] = {'a',    '_',    0,      0x1F,  0x7F,
	                                      0x200C, 0x200D, 0x200E, 0x06CC};
	for (size_t i = 0; i < sizeof(spaces) / sizeof(spaces[0]); i++)
		if (!text_is_space(spaces[i]))
			fail_msg("U+%04X should be a space", (unsigned)spaces[i]);
	for (size_t i = 0; i < sizeof(not_spaces) / sizeof(not_spaces[0]); i++)
		if (text_is_space(not_spaces[i]))
			fail_msg("U+%04X should not be a space", (unsigned)not_spaces[i]);
	for (int d = 0; d < 10; d++) {
		assert_int_equal(text_digit_value('0' + (uint32_t)d), d);
		assert_int_equal(text_digit_value(0x06F0 + (uint32_t)d), d);
		assert_int_equal(text_digit_value(0x0660 + (uint32_t)d), d);
	}
	assert_int_equal(text_digit_value('/'), -1);
	assert_int_equal(text_digit_value(':'), -1);
	assert_int_equal(text_digit_value(0x06EF), -1);
	assert_int_equal(text_digit_value(0x06FA), -1);
	assert_int_equal(text_digit_value(0x065F), -1);
	assert_int_equal(text_digit_value(0x066A), -1);
	assert_int_equal(text_digit_value(0xFF10), -1); /* fullwidth digits are not folded */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_utf8_valid),
	    cmocka_unit_test(test_utf8_decode_all),
	    cmocka_unit_test(test_utf8_two_bytes),
	    cmocka_unit_test(test_utf8_len),
	    cmocka_unit_test(test_has_ctl),
	    cmocka_unit_test(test_ascii_digits),
	    cmocka_unit_test(test_normalize),
	    cmocka_unit_test(test_normalize_idempotent),
	    cmocka_unit_test(test_is_space_and_digits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
