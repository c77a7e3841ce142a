/*
 * test_util.c - unit tests for daemon/util.c: capped buffers (the cap is hit
 * exactly, a refused append leaves the buffer as it was, NUL termination),
 * buf_printf, strict integer and duration parsing (bounds, overflow, junk),
 * ct_equal, hex_encode and the time-ordered ids.  Owns nothing else; never
 * touches the network, Redis or the wall clock (ids get explicit instants).
 * Expected numbers were computed independently (Python integers).
 * Limit: buf_reserve's size_t wrap-around for an append of ~SIZE_MAX bytes
 * corrupts the heap today, so that case is reported, not run here.
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

#include "util.h"

#define SENTINEL ((int64_t)0x5a5a5a5a5a5a5a5aLL)

/* Buffers ---------------------------------------------------------------- */

static void assert_terminated(const struct buf *b)
{
	assert_non_null(b->p);
	assert_true(b->len < b->cap);
	assert_int_equal(b->p[b->len], '\0');
}

static void test_buf_cap_exact(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 10);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_append(&b, "12345", 5), 0);
	assert_terminated(&b);
	assert_int_equal(buf_puts(&b, "67890"), 0); /* exactly max: accepted */
	assert_int_equal(b.len, 10);
	assert_string_equal(b.p, "1234567890");
	assert_terminated(&b);

	/* One more byte is refused and the buffer is left exactly as it was. */
	char *before = b.p;
	size_t cap = b.cap;
	assert_int_equal(buf_append(&b, "x", 1), -ENOSPC);
	assert_int_equal(buf_puts(&b, "xyz"), -ENOSPC);
	assert_int_equal(buf_printf(&b, "%d", 7), -ENOSPC);
	assert_ptr_equal(b.p, before);
	assert_int_equal(b.cap, cap);
	assert_int_equal(b.len, 10);
	assert_string_equal(b.p, "1234567890");

	/* Nothing more at the cap still fits. */
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_int_equal(buf_printf(&b, "%s", ""), 0);
	assert_int_equal(b.len, 10);
	assert_string_equal(b.p, "1234567890");
	buf_free(&b);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
}

static void test_buf_refuse_partial(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_puts(&b, "abcdef"), 0);
	/* 6 + 3 > 8: refused whole, not truncated to fit. */
	assert_int_equal(buf_puts(&b, "ghi"), -ENOSPC);
	assert_int_equal(buf_printf(&b, "%s", "ghi"), -ENOSPC);
	assert_int_equal(b.len, 6);
	assert_string_equal(b.p, "abcdef");
	assert_int_equal(buf_puts(&b, "gh"), 0);
	assert_string_equal(b.p, "abcdefgh");
	buf_free(&b);

	/* A first append larger than the cap allocates nothing. */
	buf_init(&b, 4);
	assert_int_equal(buf_puts(&b, "12345"), -ENOSPC);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_printf(&b, "%05d", 1), -ENOSPC);
	assert_null(b.p);
	assert_int_equal(buf_printf(&b, "%04d", 1), 0);
	assert_string_equal(b.p, "0001");
	buf_free(&b);
}

static void test_buf_growth_terminated(void **state)
{
	struct buf b;
	char expect[1001];

	(void)state;
	/* Byte by byte across several reallocations: always terminated. */
	buf_init(&b, 1000);
	for (int i = 0; i < 1000; i++) {
		char c = (char)('a' + i % 26);
		expect[i] = c;
		assert_int_equal(buf_append(&b, &c, 1), 0);
		assert_int_equal(b.len, (size_t)i + 1);
		assert_terminated(&b);
	}
	expect[1000] = '\0';
	assert_memory_equal(b.p, expect, 1001);
	assert_int_equal(buf_append(&b, "z", 1), -ENOSPC);
	assert_memory_equal(b.p, expect, 1001);

	/* Reset keeps the cap: refill to exactly max again. */
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.p, "");
	assert_int_equal(b.max, 1000);
	assert_int_equal(buf_append(&b, expect, 1000), 0);
	assert_int_equal(buf_append(&b, "z", 1), -ENOSPC);
	buf_free(&b);

	/* Reset of a never-used buffer is harmless. */
	buf_init(&b, 0);
	buf_reset(&b);
	assert_null(b.p);
	buf_free(&b);
}

static void test_buf_binary(void **state)
{
	struct buf b;
	const char bin[] = {'a', '\0', 'b', '\0', '\xff'};

	(void)state;
	buf_init(&b, 5);
	assert_int_equal(buf_append(&b, bin, sizeof bin), 0);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.p, bin, 5);
	assert_terminated(&b);
	assert_int_equal(buf_append(&b, "", 1), -ENOSPC); /* a NUL byte counts */
	buf_free(&b);
}

static void test_buf_nocap(void **state)
{
	struct buf b;
	size_t big = 1u << 20;
	char *chunk = xmalloc(4096);

	(void)state;
	memset(chunk, 'q', 4096);
	buf_init(&b, 0);
	for (size_t n = 0; n < big; n += 4096)
		assert_int_equal(buf_append(&b, chunk, 4096), 0);
	assert_int_equal(b.len, big);
	assert_terminated(&b);
	assert_int_equal(b.p[0], 'q');
	assert_int_equal(b.p[big - 1], 'q');
	free(chunk);
	buf_free(&b);
}

static void test_buf_printf(void **state)
{
	struct buf b;
	char longs[300];

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(buf_printf(&b, "a=%d b=%s", -12, "x y"), 0);
	assert_string_equal(b.p, "a=-12 b=x y");
	assert_int_equal(b.len, strlen("a=-12 b=x y"));
	assert_int_equal(buf_printf(&b, " c=%lld", (long long)INT64_MIN), 0);
	assert_string_equal(b.p, "a=-12 b=x y c=-9223372036854775808");
	memset(longs, 'L', sizeof longs - 1);
	longs[sizeof longs - 1] = '\0';
	assert_int_equal(buf_printf(&b, "[%s]", longs), 0); /* forces growth */
	assert_int_equal(b.len, strlen("a=-12 b=x y c=-9223372036854775808") + 301);
	assert_int_equal(b.p[b.len - 1], ']');
	assert_terminated(&b);
	buf_free(&b);

	/* printf exactly to the cap, then refused. */
	buf_init(&b, 12);
	assert_int_equal(buf_printf(&b, "%s-%d", "abcdefgh", 123), 0);
	assert_int_equal(b.len, 12);
	assert_string_equal(b.p, "abcdefgh-123");
	assert_int_equal(buf_printf(&b, "%c", 'x'), -ENOSPC);
	assert_string_equal(b.p, "abcdefgh-123");
	buf_free(&b);
}

static void test_buf_steal(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 16);
	assert_int_equal(buf_puts(&b, "hello"), 0);
	char *s = buf_steal(&b);
	assert_string_equal(s, "hello");
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	free(s);
	/* The buffer is usable again, with the same cap. */
	assert_int_equal(buf_puts(&b, "0123456789abcdef"), 0);
	assert_int_equal(buf_puts(&b, "!"), -ENOSPC);
	buf_free(&b);

	/* Stealing from an empty buffer yields an owned empty string. */
	buf_init(&b, 16);
	s = buf_steal(&b);
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);
	buf_free(&b);
}

/* parse_i64 -------------------------------------------------------------- */

static void expect_i64(const char *s, int64_t min, int64_t max, int64_t want)
{
	int64_t v = SENTINEL;
	int rc = parse_i64(s, min, max, &v);
	if (rc != 0)
		fail_msg("parse_i64(\"%s\") = %d, want 0", s, rc);
	assert_true(v == want);
}

static void expect_i64_err(const char *s, int64_t min, int64_t max, int err)
{
	int64_t v = SENTINEL;
	int rc = parse_i64(s, min, max, &v);
	if (rc != err)
		fail_msg("parse_i64(\"%.40s\") = %d, want %d", s ? s : "(null)", rc, err);
	assert_true(v == SENTINEL); /* out untouched on error */
}

static void test_parse_i64_ok(void **state)
{
	(void)state;
	expect_i64("0", INT64_MIN, INT64_MAX, 0);
	expect_i64("-0", INT64_MIN, INT64_MAX, 0);
	expect_i64("+0", INT64_MIN, INT64_MAX, 0);
	expect_i64("42", INT64_MIN, INT64_MAX, 42);
	expect_i64("+42", INT64_MIN, INT64_MAX, 42);
	expect_i64("-42", INT64_MIN, INT64_MAX, -42);
	expect_i64("007", INT64_MIN, INT64_MAX, 7);
	expect_i64("9223372036854775807", INT64_MIN, INT64_MAX, INT64_MAX);
	expect_i64("-9223372036854775808", INT64_MIN, INT64_MAX, INT64_MIN);
	expect_i64("-9223372036854775807", INT64_MIN, INT64_MAX, -INT64_MAX);
	/* bounds are inclusive */
	expect_i64("1", 1, 10, 1);
	expect_i64("10", 1, 10, 10);
	expect_i64("-5", -5, -5, -5);
}

static void test_parse_i64_range(void **state)
{
	(void)state;
	expect_i64_err("0", 1, 10, -ERANGE);
	expect_i64_err("11", 1, 10, -ERANGE);
	expect_i64_err("-1", 0, 10, -ERANGE);
	expect_i64_err("-6", -5, 5, -ERANGE);
	/* INT64_MAX + 1 and beyond, both signs */
	expect_i64_err("9223372036854775808", INT64_MIN, INT64_MAX, -ERANGE);
	expect_i64_err("+9223372036854775808", INT64_MIN, INT64_MAX, -ERANGE);
	expect_i64_err("-9223372036854775809", INT64_MIN, INT64_MAX, -ERANGE);
	expect_i64_err("18446744073709551615", INT64_MIN, INT64_MAX, -ERANGE); /* 2^64-1 */
	expect_i64_err("18446744073709551616", INT64_MIN, INT64_MAX, -ERANGE); /* 2^64 */
	expect_i64_err("-18446744073709551616", INT64_MIN, INT64_MAX, -ERANGE);
	expect_i64_err("99999999999999999999", INT64_MIN, INT64_MAX, -ERANGE);
	expect_i64_err("184467440737095516160", INT64_MIN, INT64_MAX, -ERANGE);
}

static void test_parse_i64_syntax(void **state)
{
	static const char *const bad[] = {
	    "",      "-",   "+",    " 1",  "1 ",
	    "\t1",   "1\n", "0x10", "1e3", "1.0",
	    "1,000", "--1", "+-1",  "-+1", "1-",
	    "++1",   "a",   "1a",   "- 1", "\xef\xbc\x91" /* U+FF11 */,
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		expect_i64_err(bad[i], INT64_MIN, INT64_MAX, -EINVAL);
	expect_i64_err(NULL, INT64_MIN, INT64_MAX, -EINVAL);
}

static void test_parse_i64_huge(void **state)
{
	size_t n = 100000;
	char *s = xmalloc(n + 2);

	(void)state;
	/* a huge number: out of range, not wrapped */
	memset(s, '9', n);
	s[n] = '\0';
	expect_i64_err(s, INT64_MIN, INT64_MAX, -ERANGE);
	s[0] = '-';
	expect_i64_err(s, INT64_MIN, INT64_MAX, -ERANGE);
	/* digits that would wrap 2^64 back to a small value */
	const char *wrap = "18446744073709551617"; /* 2^64 + 1 */
	expect_i64_err(wrap, INT64_MIN, INT64_MAX, -ERANGE);
	/* many leading zeros are still the small number */
	memset(s, '0', n);
	s[n] = '7';
	s[n + 1] = '\0';
	expect_i64(s, INT64_MIN, INT64_MAX, 7);
	/* a huge string with junk at the end is refused either way */
	memset(s, '1', n);
	s[n] = 'x';
	int64_t v = SENTINEL;
	assert_true(parse_i64(s, INT64_MIN, INT64_MAX, &v) < 0);
	assert_true(v == SENTINEL);
	free(s);
}

/* parse_duration_ms ------------------------------------------------------ */

static void expect_dur(const char *s, int64_t want)
{
	int64_t v = SENTINEL;
	int rc = parse_duration_ms(s, &v);
	if (rc != 0)
		fail_msg("parse_duration_ms(\"%s\") = %d, want 0", s, rc);
	if (v != want)
		fail_msg("parse_duration_ms(\"%s\") = %lld, want %lld", s, (long long)v,
		         (long long)want);
}

static void expect_dur_err(const char *s, int err)
{
	int64_t v = SENTINEL;
	int rc = parse_duration_ms(s, &v);
	if (err ? rc != err : rc >= 0)
		fail_msg("parse_duration_ms(\"%s\") = %d, want %d", s ? s : "(null)", rc, err);
	assert_true(v == SENTINEL);
}

static void test_duration_ok(void **state)
{
	(void)state;
	expect_dur("0", 0);
	expect_dur("1500", 1500); /* bare number: ms */
	expect_dur("250ms", 250);
	expect_dur("0ms", 0);
	expect_dur("30s", 30000);
	expect_dur("0s", 0);
	expect_dur("5m", 300000);
	expect_dur("2h", 7200000);
	expect_dur("3d", 259200000);
	expect_dur("1d", 86400000);
	expect_dur("007s", 7000);
	expect_dur("999999999999999", 999999999999999LL); /* 15 digits */
	expect_dur("999999999999999s", 999999999999999000LL);
	/* the largest of each unit that still fits in int64 */
	expect_dur("106751991167d", 9223372036828800000LL);
	expect_dur("2562047788015h", 9223372036854000000LL);
	expect_dur("153722867280912m", 9223372036854720000LL);
}

static void test_duration_bad(void **state)
{
	static const char *const bad[] = {
	    "",    "ms",   "s",  "10x", "10 s", " 10s", "10s ", "-5s",  "+5s",  "5.5s", "1h30m",
	    "5sm", "5mss", "5S", "5MS", "5 ",   "x5",   "5s\n", "0x10", "10us", "1w",   "5ms5",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		expect_dur_err(bad[i], -EINVAL);
	expect_dur_err(NULL, -EINVAL);
}

static void test_duration_overflow(void **state)
{
	(void)state;
	/* one more than fits: refused, never wrapped */
	expect_dur_err("106751991168d", -ERANGE);
	expect_dur_err("2562047788016h", -ERANGE);
	expect_dur_err("153722867280913m", -ERANGE);
	expect_dur_err("999999999999999d", -ERANGE);
	/* too many digits to be a duration at all (any error will do) */
	expect_dur_err("9223372036854775808", 0);
	expect_dur_err("99999999999999999999999999s", 0);
	expect_dur_err("1000000000000000ms", 0);
}

/* ct_equal, hex_encode ---------------------------------------------------- */

static void test_ct_equal(void **state)
{
	unsigned char a[32], b[32];

	(void)state;
	for (size_t i = 0; i < sizeof a; i++)
		a[i] = b[i] = (unsigned char)(i * 37 + 11);
	assert_int_equal(ct_equal(a, b, sizeof a), 1);
	assert_int_equal(ct_equal(a, b, 0), 1);
	assert_int_equal(ct_equal("", "", 0), 1);
	/* every single-bit difference at every position is seen */
	for (size_t i = 0; i < sizeof a; i++) {
		for (int bit = 0; bit < 8; bit++) {
			b[i] ^= (unsigned char)(1u << bit);
			assert_int_equal(ct_equal(a, b, sizeof a), 0);
			/* and only bytes within n count */
			assert_int_equal(ct_equal(a, b, i), 1);
			b[i] ^= (unsigned char)(1u << bit);
		}
	}
	assert_int_equal(ct_equal("secret-token", "secret-tokeN", 12), 0);
	assert_int_equal(ct_equal("secret-token", "secret-token", 12), 1);
}

static void test_hex_encode(void **state)
{
	const unsigned char in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff, 0x10, 0x0f};
	char out[2 * sizeof in + 2];

	(void)state;
	memset(out, '#', sizeof out);
	hex_encode(in, sizeof in, out);
	assert_string_equal(out, "00017f80abff100f");
	assert_int_equal(out[2 * sizeof in + 1], '#'); /* nothing past 2n+1 */

	memset(out, '#', sizeof out);
	hex_encode(in, 0, out);
	assert_int_equal(out[0], '\0');
	assert_int_equal(out[1], '#');

	unsigned char all[256];
	char hx[513];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	hex_encode(all, sizeof all, hx);
	assert_int_equal(strlen(hx), 512);
	for (int i = 0; i < 256; i++) {
		char want[3];
		snprintf(want, sizeof want, "%02x", i);
		assert_memory_equal(hx + 2 * i, want, 2);
	}
}

/* ids -------------------------------------------------------------------- */

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static void test_id_shape(void **state)
{
	static const struct {
		int64_t ms;
		const char *prefix;
	} cases[] = {
	    {0, "0000000000"},
	    {1, "0000000001"},
	    {31, "000000000Z"},
	    {32, "0000000010"},
	    {1234567890123LL, "013XRZP16B"},
	    {1795428000000LL, "01M83XJ880"},
	    {281474976710655LL, "7ZZZZZZZZZ"}, /* 2^48 - 1 */
	};
	char id[ID_LEN + 2];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		memset(id, '#', sizeof id);
		id_new(id, cases[i].ms);
		assert_int_equal(strlen(id), ID_LEN);
		assert_int_equal(id[ID_LEN + 1], '#');
		assert_memory_equal(id, cases[i].prefix, 10);
		for (int k = 0; k < ID_LEN; k++)
			assert_non_null(strchr(crockford, id[k]));
		assert_int_equal(id_valid(id), 1);
	}
}

static void test_id_order(void **state)
{
	char a[ID_LEN + 1], b[ID_LEN + 1];

	(void)state;
	/* consecutive milliseconds, many times */
	int64_t base = 1795428000000LL;
	id_new(a, base);
	for (int64_t ms = base + 1; ms < base + 20000; ms++) {
		id_new(b, ms);
		if (strcmp(a, b) >= 0)
			fail_msg("id(%lld)=%s !< id(%lld)=%s", (long long)(ms - 1), a,
			         (long long)ms, b);
		memcpy(a, b, sizeof a);
	}
	/* every carry boundary 2^k - 1 -> 2^k up to the 48-bit limit */
	for (int k = 1; k < 48; k++) {
		int64_t t = ((int64_t)1 << k) - 1;
		for (int rep = 0; rep < 20; rep++) {
			id_new(a, t);
			id_new(b, t + 1);
			if (strcmp(a, b) >= 0)
				fail_msg("id(2^%d-1)=%s !< id(2^%d)=%s", k, a, k, b);
		}
	}
	/* far apart instants */
	id_new(a, 0);
	id_new(b, 281474976710655LL);
	assert_true(strcmp(a, b) < 0);
}

static void test_id_unique(void **state)
{
	enum { N = 100000 };
	char(*ids)[ID_LEN + 1] = xcalloc(N, sizeof *ids);
	int seen[ID_LEN][32];

	(void)state;
	/* all in the same millisecond: each id follows the one before (the
	 * random part plus one), so they are unique and in creation order */
	for (int i = 0; i < N; i++) {
		id_new(ids[i], 1795428000123LL);
		assert_int_equal(id_valid(ids[i]), 1);
		assert_memory_equal(ids[i], ids[0], 10);
		if (i && strcmp(ids[i - 1], ids[i]) >= 0)
			fail_msg("same ms: %s !< %s", ids[i - 1], ids[i]);
	}
	/* a new millisecond draws a new random part: over many, each random
	 * position uses the whole alphabet (p(miss) ~ 1e-1370) */
	memset(seen, 0, sizeof seen);
	for (int i = 0; i < N; i++) {
		id_new(ids[i], 1795428000123LL + 1 + i);
		for (int k = 10; k < ID_LEN; k++)
			seen[k][strchr(crockford, ids[i][k]) - crockford]++;
	}
	for (int k = 10; k < ID_LEN; k++)
		for (int c = 0; c < 32; c++)
			if (!seen[k][c])
				fail_msg("symbol %c never at position %d", crockford[c], k);
	free(ids);
}

static void test_id_valid(void **state)
{
	char id[ID_LEN + 1], bad[ID_LEN + 2];

	(void)state;
	id_new(id, 1795428000000LL);
	assert_int_equal(id_valid(id), 1);
	assert_int_equal(id_valid("01M83XJ8800123456789ABCDEF"), 1);
	assert_int_equal(id_valid("0123456789ABCDEFGHJKMNPQRS"), 1);
	assert_int_equal(id_valid("TVWXYZ0000000000000000ZZZZ"), 1);

	/* Crockford leaves out I, L, O and U; lower case is never emitted. */
	static const char notin[] = "ILOUilouabz-_ .+/=\x7f\xc3";
	for (size_t i = 0; i < sizeof notin - 1; i++) {
		for (int pos = 0; pos < ID_LEN; pos += 5) {
			memcpy(bad, id, sizeof id);
			bad[pos] = notin[i];
			if (id_valid(bad))
				fail_msg("id_valid accepted 0x%02x at %d", (unsigned char)notin[i],
				         pos);
		}
	}

	/* wrong lengths */
	memcpy(bad, id, ID_LEN);
	bad[ID_LEN] = '0';
	bad[ID_LEN + 1] = '\0';
	assert_int_equal(id_valid(bad), 0); /* 27 */
	bad[ID_LEN - 1] = '\0';
	assert_int_equal(id_valid(bad), 0); /* 25 */
	assert_int_equal(id_valid(""), 0);
	assert_int_equal(id_valid("0"), 0);
	assert_int_equal(id_valid(NULL), 0);
	/* an embedded NUL makes it short */
	memcpy(bad, id, sizeof id);
	bad[13] = '\0';
	assert_int_equal(id_valid(bad), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buf_cap_exact),
	    cmocka_unit_test(test_buf_refuse_partial),
	    cmocka_unit_test(test_buf_growth_terminated),
	    cmocka_unit_test(test_buf_binary),
	    cmocka_unit_test(test_buf_nocap),
	    cmocka_unit_test(test_buf_printf),
	    cmocka_unit_test(test_buf_steal),
	    cmocka_unit_test(test_parse_i64_ok),
	    cmocka_unit_test(test_parse_i64_range),
	    cmocka_unit_test(test_parse_i64_syntax),
	    cmocka_unit_test(test_parse_i64_huge),
	    cmocka_unit_test(test_duration_ok),
	    cmocka_unit_test(test_duration_bad),
	    cmocka_unit_test(test_duration_overflow),
	    cmocka_unit_test(test_ct_equal),
	    cmocka_unit_test(test_hex_encode),
	    cmocka_unit_test(test_id_shape),
	    cmocka_unit_test(test_id_order),
	    cmocka_unit_test(test_id_unique),
	    cmocka_unit_test(test_id_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
