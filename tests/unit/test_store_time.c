/*
 * test_store_time.c - unit tests for the pure helpers in daemon/store.c:
 * parse_time (RFC 3339: accepted forms, calendar and range checks, exact
 * epoch values), fmt_time (exact text, round trip through parse_time) and
 * the binary-safe argv builder.  Owns nothing else; no Redis connection is
 * made.  Expected epoch values were computed independently with Python's
 * datetime and are hard-coded; the calendar walk below uses its own leap
 * rule, not the code under test.
 * Limit: instants before 1970 are left out (fmt_time prints negative
 * milliseconds wrongly today; reported, not tested).
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"
#include "util.h"

#define SENTINEL ((int64_t)0x5a5a5a5a5a5a5a5aLL)
#define T0       1795428000000LL /* 2026-11-23T10:00:00Z */

static void expect_time(const char *s, int64_t want)
{
	int64_t v = SENTINEL;
	int rc = parse_time(s, &v);
	if (rc != 0)
		fail_msg("parse_time(\"%s\") = %d, want 0", s, rc);
	if (v != want)
		fail_msg("parse_time(\"%s\") = %lld, want %lld", s, (long long)v, (long long)want);
}

static void expect_bad(const char *s)
{
	int64_t v = SENTINEL;
	int rc = parse_time(s, &v);
	if (rc != -1)
		fail_msg("parse_time(\"%.60s\") = %d (ms %lld), want -1", s ? s : "(null)", rc,
		         (long long)v);
	assert_true(v == SENTINEL);
}

static void test_parse_forms(void **state)
{
	(void)state;
	expect_time("2026-11-23T10:00:00Z", T0);
	expect_time("2026-11-23t10:00:00z", T0);
	expect_time("2026-11-23T10:00:00z", T0);
	expect_time("2026-11-23t10:00:00Z", T0);
	expect_time("2026-11-23 10:00:00Z", T0);
	expect_time("2026-11-23T10:00:00+00:00", T0);
	expect_time("2026-11-23T10:00:00-00:00", T0);
	expect_time("2026-11-23T13:30:00+03:30", T0);
	expect_time("2026-11-23T05:00:00-05:00", T0);
	expect_time("2026-11-23T10:00:00+03:30", 1795415400000LL);
	expect_time("2026-11-23T10:00:00-05:00", 1795446000000LL);
	expect_time("2026-06-15T00:00:00+23:59", 1781395260000LL);
	expect_time("2026-06-15T00:00:00-23:59", 1781567940000LL);
	/* offsets that cross a day, month and year */
	expect_time("2026-01-01T00:00:00+14:00", 1767175200000LL);
	expect_time("2026-12-31T23:59:59-12:00", 1798804799000LL);
	expect_time("1970-01-01T01:00:00+01:00", 0);
	expect_time("1970-01-01T00:00:00-01:00", 3600000);
}

static void test_parse_fraction(void **state)
{
	(void)state;
	/* 1..9 digits; digits past the millisecond are dropped, not rounded */
	expect_time("2026-11-23T10:00:00.1Z", T0 + 100);
	expect_time("2026-11-23T10:00:00.12Z", T0 + 120);
	expect_time("2026-11-23T10:00:00.123Z", T0 + 123);
	expect_time("2026-11-23T10:00:00.1234Z", T0 + 123);
	expect_time("2026-11-23T10:00:00.12345Z", T0 + 123);
	expect_time("2026-11-23T10:00:00.123456Z", T0 + 123);
	expect_time("2026-11-23T10:00:00.1234567Z", T0 + 123);
	expect_time("2026-11-23T10:00:00.12345678Z", T0 + 123);
	expect_time("2026-11-23T10:00:00.123456789Z", T0 + 123);
	expect_time("2026-11-23T10:00:00.999999999Z", T0 + 999);
	expect_time("2026-11-23T10:00:00.000000001Z", T0);
	expect_time("2026-11-23T10:00:00.5Z", T0 + 500);
	expect_time("2026-11-23T10:00:00.05Z", T0 + 50);
	expect_time("2026-11-23T10:00:00.005Z", T0 + 5);
	expect_time("2026-11-23T10:00:00.0Z", T0);
	expect_time("2026-11-23T10:00:00.123+03:30", 1795415400123LL);
	/* the longest valid form, 35 characters */
	expect_time("2026-11-23T10:00:00.123456789+03:30", 1795415400123LL);
	expect_time("2026-11-23t10:00:00.7z", T0 + 700);
	expect_time("2026-11-23 10:00:00.7-05:00", 1795446000700LL);
}

static void test_parse_calendar(void **state)
{
	(void)state;
	expect_time("1970-01-01T00:00:00Z", 0);
	expect_time("1970-01-01T00:00:00.001Z", 1);
	expect_time("1970-01-01T23:59:59.999Z", 86399999);
	expect_time("2028-02-29T00:00:00Z", 1835395200000LL);
	expect_time("2024-02-29T12:34:56.789Z", 1709210096789LL);
	expect_time("2000-02-29T23:59:59.999Z", 951868799999LL); /* 400-year leap */
	expect_time("2100-03-01T00:00:00Z", 4107542400000LL);
	expect_time("2038-01-19T03:14:08Z", 2147483648000LL); /* past 32-bit time_t */
	expect_time("2026-03-29T01:30:00Z", 1774747800000LL);
	expect_time("2026-01-01T00:00:00Z", 1767225600000LL);
	expect_time("2026-12-31T23:59:59.999Z", 1798761599999LL);
	expect_time("9999-12-31T23:59:59.999Z", 253402300799999LL);

	/* impossible dates */
	expect_bad("2026-02-29T00:00:00Z"); /* 2026 is not a leap year */
	expect_bad("2100-02-29T00:00:00Z"); /* nor is 2100 */
	expect_bad("1900-02-29T00:00:00Z");
	expect_bad("2028-02-30T00:00:00Z");
	expect_bad("2026-04-31T00:00:00Z");
	expect_bad("2026-06-31T00:00:00Z");
	expect_bad("2026-09-31T00:00:00Z");
	expect_bad("2026-11-31T00:00:00Z");
	expect_bad("2026-01-32T00:00:00Z");
	expect_bad("2026-01-00T00:00:00Z");
	expect_bad("2026-00-10T00:00:00Z");
	expect_bad("2026-13-01T00:00:00Z");
	expect_bad("2026-99-01T00:00:00Z");
	expect_bad("2026-11-23T24:00:00Z");
	expect_bad("2026-11-23T99:00:00Z");
	expect_bad("2026-11-23T10:60:00Z");
	expect_bad("2026-11-23T10:00:61Z");
	expect_bad("2026-11-23T10:00:99Z");
	/* before the epoch */
	expect_bad("1969-12-31T23:59:59Z");
	expect_bad("1969-12-31T23:59:59.999Z");
	expect_bad("1900-01-01T00:00:00Z");
	expect_bad("0000-01-01T00:00:00Z");
}

static void test_parse_syntax(void **state)
{
	static const char *const bad[] = {
	    "",
	    "2026",
	    "2026-11-23",
	    "2026-11-23T",
	    "2026-11-23T10",
	    "2026-11-23T10:00",
	    "2026-11-23T10:00Z",
	    "2026-11-23T10:00:00", /* missing zone */
	    "2026-11-23T10:00:00.123",
	    "2026-11-23T10:00:00.",
	    "2026-11-23T10:00:00.Z",
	    "2026-11-23T10:00:00.1234567890Z", /* 10 fraction digits */
	    "2026-11-23T10:00:00,5Z",
	    "2026-11-23T10:00:00Z ", /* trailing junk */
	    "2026-11-23T10:00:00ZZ",
	    "2026-11-23T10:00:00Z\n",
	    "2026-11-23T10:00:00Zx",
	    "2026-11-23T10:00:00+03:30x",
	    "2026-11-23T10:00:00+03:30:00",
	    "2026-11-23T10:00:00+03:30Z",
	    "2026-11-23T10:00:00Z+01:00",
	    "2026-11-23T10:00:00+0330",
	    "2026-11-23T10:00:00+03",
	    "2026-11-23T10:00:00+3:30",
	    "2026-11-23T10:00:00+03:3",
	    "2026-11-23T10:00:00+24:00",
	    "2026-11-23T10:00:00+03:60",
	    "2026-11-23T10:00:00+",
	    "2026-11-23T10:00:00-",
	    "2026-11-23T10:00:00 Z",
	    "2026-11-23T10:00:00UTC",
	    "2026-11-23T10:00:00GMT",
	    " 2026-11-23T10:00:00Z",
	    "+2026-11-23T10:00:00Z",
	    "02026-11-23T10:00:00Z",
	    "26-11-23T10:00:00Z",
	    "2026-1-23T10:00:00Z",
	    "2026-11-3T10:00:00Z",
	    "2026-11-23T1:00:00Z",
	    "2026/11/23T10:00:00Z",
	    "2026-11-23X10:00:00Z",
	    "2026-11-23_10:00:00Z",
	    "2026-11-23TT10:00:00Z",
	    "2026-11-23T10-00-00Z",
	    "2026-11-23T10:00:0Z",
	    "2026-11-2aT10:00:00Z",
	    "20261123T100000Z",
	    "1795428000000",
	    "\xef\xbc\x92\xef\xbc\x90\xef\xbc\x92\xef\xbc\x96-11-23T10:00:00Z", /* U+FF12... */
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		expect_bad(bad[i]);
	expect_bad(NULL);
}

static void test_parse_length(void **state)
{
	char s[64];

	(void)state;
	/* over 40 characters is refused whatever follows */
	snprintf(s, sizeof s, "%-41s", "2026-11-23T10:00:00Z");
	assert_int_equal(strlen(s), 41);
	expect_bad(s);
	snprintf(s, sizeof s, "2026-11-23T10:00:00.%s+03:30", "123456789000000");
	expect_bad(s);

	size_t n = 100000;
	char *big = xmalloc(n + 1);
	memset(big, '9', n);
	big[n] = '\0';
	memcpy(big, "2026-11-23T10:00:00.", 20);
	expect_bad(big);
	memcpy(big, "2026-11-23T10:00:00Z", 20);
	expect_bad(big);
	free(big);
}

/* Every day from 1970 to 9999, with a leap rule written here. */
static void test_parse_every_day(void **state)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	char s[64];
	int64_t day = 0;

	(void)state;
	for (int y = 1970; y <= 9999; y++) {
		int leap = y % 400 == 0 || (y % 100 != 0 && y % 4 == 0);
		for (int m = 1; m <= 12; m++) {
			int nd = mdays[m - 1] + (m == 2 && leap);
			for (int d = 1; d <= nd; d++, day++) {
				int64_t v = SENTINEL;
				snprintf(s, sizeof s, "%04d-%02d-%02dT00:00:00Z", y, m, d);
				if (parse_time(s, &v) != 0 || v != day * 86400000LL)
					fail_msg("parse_time(%s) = %lld, want %lld", s,
					         (long long)v, (long long)(day * 86400000LL));
			}
			/* the day after the month's last is refused */
			snprintf(s, sizeof s, "%04d-%02d-%02dT00:00:00Z", y, m, nd + 1);
			expect_bad(s);
		}
	}
	assert_true(day == 2932897); /* days from 1970-01-01 to 10000-01-01 */
}

/* fmt_time --------------------------------------------------------------- */

static void test_fmt_exact(void **state)
{
	static const struct {
		int64_t ms;
		const char *s;
	} cases[] = {
	    {0, "1970-01-01T00:00:00.000Z"},
	    {1, "1970-01-01T00:00:00.001Z"},
	    {999, "1970-01-01T00:00:00.999Z"},
	    {1000, "1970-01-01T00:00:01.000Z"},
	    {86399999, "1970-01-01T23:59:59.999Z"},
	    {1795428000123LL, "2026-11-23T10:00:00.123Z"},
	    {1835395199999LL, "2028-02-28T23:59:59.999Z"},
	    {951868799999LL, "2000-02-29T23:59:59.999Z"},
	    {4102444800000LL, "2100-01-01T00:00:00.000Z"},
	    {2147483648000LL, "2038-01-19T03:14:08.000Z"},
	    {1709210096789LL, "2024-02-29T12:34:56.789Z"},
	    {1798761599999LL, "2026-12-31T23:59:59.999Z"},
	    {253402300799999LL, "9999-12-31T23:59:59.999Z"},
	};
	char out[64];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		memset(out, '#', sizeof out);
		fmt_time(cases[i].ms, out, 32);
		assert_string_equal(out, cases[i].s);
		assert_int_equal(out[25], '#'); /* 24 characters and the NUL, no more */
		int64_t back = SENTINEL;
		assert_int_equal(parse_time(out, &back), 0);
		assert_true(back == cases[i].ms);
	}
}

static void test_fmt_round_trip(void **state)
{
	char out[32];
	uint64_t x = 0x243f6a8885a308d3ULL;

	(void)state;
	/* every millisecond of one second, and across a day boundary */
	for (int64_t ms = T0 - 1500; ms < T0 + 1500; ms++) {
		int64_t back = SENTINEL;
		fmt_time(ms, out, sizeof out);
		assert_int_equal(parse_time(out, &back), 0);
		assert_true(back == ms);
	}
	for (int64_t ms = 1798761599000LL; ms < 1798761601000LL; ms++) {
		int64_t back = SENTINEL;
		fmt_time(ms, out, sizeof out);
		assert_int_equal(parse_time(out, &back), 0);
		assert_true(back == ms);
	}
	/* pseudo-random instants over the whole accepted range */
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int64_t ms = (int64_t)(x % 253402300800000ULL), back = SENTINEL;
		fmt_time(ms, out, sizeof out);
		if (parse_time(out, &back) != 0 || back != ms)
			fail_msg("fmt_time(%lld) = %s, parsed back %lld", (long long)ms, out,
			         (long long)back);
	}
}

/* argv ------------------------------------------------------------------- */

static void test_argv_binary(void **state)
{
	struct argv a;
	char all[256];

	(void)state;
	argv_init(&a);
	assert_int_equal(a.n, 0);
	argv_addn(&a, "a\0b", 3);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.len[0], 3);
	assert_memory_equal(a.v[0], "a\0b", 3);
	assert_int_equal(a.v[0][3], '\0');

	for (int i = 0; i < 256; i++)
		all[i] = (char)i;
	argv_addn(&a, all, sizeof all);
	assert_int_equal(a.len[1], 256);
	assert_memory_equal(a.v[1], all, 256);
	assert_int_equal(a.v[1][256], '\0');

	argv_addn(&a, "\0\0\0\0", 4); /* only NULs */
	assert_int_equal(a.len[2], 4);
	assert_memory_equal(a.v[2], "\0\0\0\0", 4);
	argv_addn(&a, "hello", 3); /* a prefix */
	assert_int_equal(a.len[3], 3);
	assert_string_equal(a.v[3], "hel");
	argv_addn(&a, "ignored", 0);
	assert_int_equal(a.len[4], 0);
	assert_string_equal(a.v[4], "");

	/* the builder copies: changing the source afterwards changes nothing */
	char src[] = "mutable";
	argv_add(&a, src);
	argv_addn(&a, src, 3);
	src[0] = 'X';
	assert_string_equal(a.v[5], "mutable");
	assert_int_equal(a.len[5], 7);
	assert_string_equal(a.v[6], "mut");
	assert_ptr_not_equal(a.v[5], src);

	argv_add(&a, NULL);
	assert_int_equal(a.len[7], 0);
	assert_string_equal(a.v[7], "");
	assert_int_equal(a.n, 8);
	argv_free(&a);
	assert_int_equal(a.n, 0);
	assert_null(a.v);
	assert_null(a.len);
}

static void test_argv_numbers(void **state)
{
	struct argv a;
	char big[5001];

	(void)state;
	argv_init(&a);
	argv_addll(&a, 0);
	argv_addll(&a, -1);
	argv_addll(&a, LLONG_MAX);
	argv_addll(&a, LLONG_MIN);
	argv_addll(&a, 1795428000123LL);
	argv_addf(&a, "%s:%d", "q", 7);
	memset(big, 'b', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	argv_addf(&a, "<%s>", big);
	argv_addf(&a, "%s", "");
	static const char *const want[] = {
	    "0", "-1", "9223372036854775807", "-9223372036854775808", "1795428000123", "q:7"};
	assert_int_equal(a.n, 8);
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		assert_string_equal(a.v[i], want[i]);
		assert_int_equal(a.len[i], strlen(want[i]));
	}
	assert_int_equal(a.len[6], 5002);
	assert_int_equal(a.v[6][0], '<');
	assert_int_equal(a.v[6][5001], '>');
	assert_int_equal(a.len[7], 0);
	argv_free(&a);
}

static void test_argv_growth(void **state)
{
	struct argv a;
	char item[32];

	(void)state;
	argv_init(&a);
	for (int i = 0; i < 5000; i++) {
		int n = snprintf(item, sizeof item, "k%d", i);
		item[n] = '\0';
		item[n + 1] = (char)(i & 0xff); /* a NUL inside, then a byte */
		argv_addn(&a, item, (size_t)n + 2);
		assert_true(a.n <= a.cap);
	}
	assert_int_equal(a.n, 5000);
	for (int i = 0; i < 5000; i++) {
		int n = snprintf(item, sizeof item, "k%d", i);
		assert_int_equal(a.len[i], (size_t)n + 2);
		assert_memory_equal(a.v[i], item, (size_t)n + 1);
		assert_int_equal((unsigned char)a.v[i][n + 1], i & 0xff);
	}
	argv_free(&a);
	/* usable again after free */
	argv_add(&a, "again");
	assert_int_equal(a.n, 1);
	assert_string_equal(a.v[0], "again");
	argv_free(&a);
	argv_free(&a); /* twice is harmless */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_forms),    cmocka_unit_test(test_parse_fraction),
	    cmocka_unit_test(test_parse_calendar), cmocka_unit_test(test_parse_syntax),
	    cmocka_unit_test(test_parse_length),   cmocka_unit_test(test_parse_every_day),
	    cmocka_unit_test(test_fmt_exact),      cmocka_unit_test(test_fmt_round_trip),
	    cmocka_unit_test(test_argv_binary),    cmocka_unit_test(test_argv_numbers),
	    cmocka_unit_test(test_argv_growth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
