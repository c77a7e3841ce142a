/*
 * test_sched.c - unit tests for the scheduler's pure retry policy in
 * daemon/sched.c: sched_backoff_ms against its documented contract
 * (min * 2^(attempt-1) clamped to [min, max], equal jitter, result always
 * within [min, max]) for ordinary, extreme and degenerate inputs, and the
 * retry / give-up / expire decision of sched_after_tempfail.  Owns nothing
 * else; no event loop, no Redis, no clock (every instant is a parameter).
 * The jitter checks do not assume how rnd is mapped onto the random half,
 * only that 0 and the top of the range (rnd = half or UINT32_MAX) are its
 * ends.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sched.h"
#include "util.h"

/* The documented ceiling, computed without the code under test's loop. */
static int64_t ceiling(int attempt, int64_t min, int64_t max)
{
	if (attempt < 1)
		attempt = 1;
	if (attempt - 1 >= 63)
		return max;
	unsigned __int128 v = (unsigned __int128)(uint64_t)min << (attempt - 1);
	return v > (unsigned __int128)max ? max : (int64_t)v;
}

/* The fixed half: d - d/2, never below min. */
static int64_t floor_of(int64_t d, int64_t min)
{
	int64_t lo = d - d / 2;
	return lo < min ? min : lo;
}

static const uint32_t rnds[] = {0,           1,           2,           3,           7,
                                1000,        65535,       65536,       0x7fffffffu, 0x80000000u,
                                0xdeadbeefu, 0x9e3779b9u, 0xfffffffeu, UINT32_MAX};

/* Check one (attempt, min, max) over many rnd values; min <= max, min >= 1. */
static void check_contract(int attempt, int64_t min, int64_t max)
{
	int64_t d = ceiling(attempt, min, max), lo = floor_of(d, min);
	int64_t seen_lo = INT64_MAX, seen_hi = INT64_MIN;
	uint32_t extra[3] = {0, 0, 0};
	size_t ne = 0;

	if (d / 2 <= UINT32_MAX) {
		extra[ne++] = (uint32_t)(d / 2);
		if (d / 2 > 0)
			extra[ne++] = (uint32_t)(d / 2 - 1);
	}
	for (size_t i = 0; i < ARRAY_SIZE(rnds) + ne; i++) {
		uint32_t rnd = i < ARRAY_SIZE(rnds) ? rnds[i] : extra[i - ARRAY_SIZE(rnds)];
		int64_t r = sched_backoff_ms(attempt, min, max, rnd);
		if (r < min || r > max || r < lo || r > d)
			fail_msg("backoff(attempt=%d, min=%lld, max=%lld, rnd=%u) = %lld, want "
			         "[%lld, %lld]",
			         attempt, (long long)min, (long long)max, rnd, (long long)r,
			         (long long)lo, (long long)d);
		if (r < seen_lo)
			seen_lo = r;
		if (r > seen_hi)
			seen_hi = r;
	}
	/* rnd 0 gives the fixed half exactly */
	assert_true(sched_backoff_ms(attempt, min, max, 0) == lo);
	/* both ends of the jitter range are reached when it fits in 32 bits */
	assert_true(seen_lo == lo);
	if (d / 2 <= UINT32_MAX) {
		if (seen_hi != d)
			fail_msg("backoff(attempt=%d, min=%lld, max=%lld) never reaches %lld (max "
			         "seen %lld)",
			         attempt, (long long)min, (long long)max, (long long)d,
			         (long long)seen_hi);
	}
}

static void test_backoff_values(void **state)
{
	(void)state;
	/* min 1 s, max 1 h: 1, 2, 4, ... s then clamped */
	assert_int_equal(ceiling(1, 1000, 3600000), 1000);
	assert_int_equal(ceiling(2, 1000, 3600000), 2000);
	assert_int_equal(ceiling(12, 1000, 3600000), 2048000);
	assert_int_equal(ceiling(13, 1000, 3600000), 3600000);
	/* attempt 1: the ceiling is min, so every rnd gives min */
	for (size_t i = 0; i < ARRAY_SIZE(rnds); i++)
		assert_int_equal(sched_backoff_ms(1, 1000, 3600000, rnds[i]), 1000);
	/* attempt 2: [1000, 2000] */
	assert_int_equal(sched_backoff_ms(2, 1000, 3600000, 0), 1000);
	/* attempt 3: ceiling 4000, fixed half 2000 */
	assert_int_equal(sched_backoff_ms(3, 1000, 3600000, 0), 2000);
	/* clamped: ceiling 1 h, fixed half 30 min */
	assert_int_equal(sched_backoff_ms(13, 1000, 3600000, 0), 1800000);
	assert_int_equal(sched_backoff_ms(50, 1000, 3600000, 0), 1800000);
	/* odd ceiling: the fixed part rounds up (d - d/2) */
	assert_int_equal(sched_backoff_ms(1, 3, 100, 0), 3);
	assert_int_equal(sched_backoff_ms(2, 3, 7, 0), 3); /* ceiling 6 -> [3, 6] */
	assert_int_equal(sched_backoff_ms(3, 3, 7, 0), 4); /* ceiling 7 -> [4, 7] */

	static const int64_t mins[] = {1, 2, 3, 250, 1000, 30000};
	static const int64_t maxs[] = {1, 7, 1000, 3600000, 86400000, INT64_MAX};
	for (size_t i = 0; i < ARRAY_SIZE(mins); i++)
		for (size_t j = 0; j < ARRAY_SIZE(maxs); j++) {
			if (mins[i] > maxs[j])
				continue;
			for (int a = 1; a <= 70; a++)
				check_contract(a, mins[i], maxs[j]);
			check_contract(1000, mins[i], maxs[j]);
			check_contract(INT_MAX, mins[i], maxs[j]);
		}
}

static void test_backoff_monotonic(void **state)
{
	(void)state;
	static const int64_t cfg[][2] = {
	    {1000, 3600000}, {1, INT64_MAX}, {7, 1000}, {1, 1}, {INT64_MAX / 3, INT64_MAX}};
	for (size_t c = 0; c < ARRAY_SIZE(cfg); c++) {
		int64_t min = cfg[c][0], max = cfg[c][1];
		int64_t prev_d = 0, prev_lo = 0;
		for (int a = 1; a <= 1000; a++) {
			int64_t d = ceiling(a, min, max);
			int64_t lo = sched_backoff_ms(a, min, max, 0);
			int64_t hi = sched_backoff_ms(a, min, max, UINT32_MAX);
			assert_true(d >= prev_d);
			assert_true(lo >= prev_lo);
			assert_true(lo <= hi);
			assert_true(hi <= d);
			prev_d = d;
			prev_lo = lo;
		}
		/* large attempts sit at max, without overflowing on the way */
		assert_true(ceiling(1000, min, max) == max);
		assert_true(sched_backoff_ms(1000, min, max, 0) == floor_of(max, min));
		assert_true(sched_backoff_ms(INT_MAX, min, max, UINT32_MAX) <= max);
	}
}

static void test_backoff_jitter_spreads(void **state)
{
	enum { K = 2000 };
	static int64_t seen[K];
	size_t distinct = 0;

	(void)state;
	/* attempt 3 with min 1 s: the range [2000, 4000] has 2001 values */
	for (uint32_t i = 0; i < K; i++) {
		int64_t r = sched_backoff_ms(3, 1000, 3600000, i * 2654435761u);
		assert_true(r >= 2000 && r <= 4000);
		size_t k;
		for (k = 0; k < distinct; k++)
			if (seen[k] == r)
				break;
		if (k == distinct)
			seen[distinct++] = r;
	}
	/* a constant or nearly constant result would mean the jitter is lost */
	if (distinct < 500)
		fail_msg("only %zu distinct delays out of %d", distinct, K);
}

static void test_backoff_degenerate(void **state)
{
	(void)state;
	/* attempt below 1 counts as the first */
	assert_int_equal(sched_backoff_ms(0, 1000, 60000, 12345), 1000);
	assert_int_equal(sched_backoff_ms(-3, 1000, 60000, 12345), 1000);
	assert_int_equal(sched_backoff_ms(INT_MIN, 1000, 60000, UINT32_MAX), 1000);
	/* min > max: never retry sooner than the configured minimum */
	for (size_t i = 0; i < ARRAY_SIZE(rnds); i++) {
		assert_int_equal(sched_backoff_ms(1, 5000, 1000, rnds[i]), 5000);
		assert_int_equal(sched_backoff_ms(10, 5000, 1000, rnds[i]), 5000);
		assert_int_equal(sched_backoff_ms(1000, 5000, 0, rnds[i]), 5000);
	}
	/* min 0 or negative: still a positive delay (no hot retry loop), within max */
	for (size_t i = 0; i < ARRAY_SIZE(rnds); i++) {
		for (int a = 1; a < 80; a++) {
			int64_t r = sched_backoff_ms(a, 0, 60000, rnds[i]);
			assert_true(r >= 1 && r <= 60000);
			r = sched_backoff_ms(a, -1000, 60000, rnds[i]);
			assert_true(r >= 1 && r <= 60000);
		}
		assert_int_equal(sched_backoff_ms(1, 0, 0, rnds[i]), 1);
		assert_int_equal(sched_backoff_ms(1000, 0, -5, rnds[i]), 1);
	}
	/* extremes of the 64-bit range */
	for (size_t i = 0; i < ARRAY_SIZE(rnds); i++) {
		assert_true(sched_backoff_ms(1000, INT64_MAX, INT64_MAX, rnds[i]) == INT64_MAX);
		int64_t r = sched_backoff_ms(2, INT64_MAX / 2 + 1, INT64_MAX, rnds[i]);
		assert_true(r >= INT64_MAX / 2 + 1);
		r = sched_backoff_ms(1000, 1, INT64_MAX, rnds[i]);
		assert_true(r >= INT64_MAX - INT64_MAX / 2);
	}
}

/* sched_after_tempfail --------------------------------------------------- */

#define UNSET ((int64_t)-777)

static void test_tempfail_retry(void **state)
{
	int64_t due = UNSET;

	(void)state;
	/* backoff only */
	assert_int_equal(sched_after_tempfail(1, 10, 1000000, 0, 500, 0, &due), SCHED_RETRY);
	assert_true(due == 1000500);
	/* the provider's Retry-After wins when it is longer ... */
	due = UNSET;
	assert_int_equal(sched_after_tempfail(1, 10, 1000000, 0, 500, 20000, &due), SCHED_RETRY);
	assert_true(due == 1020000);
	/* ... and the backoff when it is shorter */
	due = UNSET;
	assert_int_equal(sched_after_tempfail(1, 10, 1000000, 0, 5000, 100, &due), SCHED_RETRY);
	assert_true(due == 1005000);
	due = UNSET;
	assert_int_equal(sched_after_tempfail(3, 10, 1000000, 0, 700, 700, &due), SCHED_RETRY);
	assert_true(due == 1000700);
	/* the last attempt still allowed */
	due = UNSET;
	assert_int_equal(sched_after_tempfail(9, 10, 1000000, 0, 1, 0, &due), SCHED_RETRY);
	assert_true(due == 1000001);
	/* no expiry (0): even a very long wait is a retry */
	due = UNSET;
	assert_int_equal(
	    sched_after_tempfail(1, 10, 1795428000000LL, 0, 1000, 315360000000LL, &due),
	    SCHED_RETRY);
	assert_true(due == 1795428000000LL + 315360000000LL);
}

static void test_tempfail_give_up(void **state)
{
	int64_t due = UNSET;

	(void)state;
	assert_int_equal(sched_after_tempfail(10, 10, 1000000, 0, 500, 0, &due), SCHED_GIVE_UP);
	assert_int_equal(sched_after_tempfail(11, 10, 1000000, 0, 500, 0, &due), SCHED_GIVE_UP);
	assert_int_equal(sched_after_tempfail(1, 1, 1000000, 0, 500, 0, &due), SCHED_GIVE_UP);
	assert_int_equal(sched_after_tempfail(1000, 1000, 1000000, 0, 0, 0, &due), SCHED_GIVE_UP);
	/* out of attempts decides before expiry: the message failed, it did not expire */
	assert_int_equal(sched_after_tempfail(10, 10, 1000000, 1000001, 500, 0, &due),
	                 SCHED_GIVE_UP);
	assert_true(due == UNSET); /* not written unless retrying */
}

static void test_tempfail_expire(void **state)
{
	int64_t due = UNSET;

	(void)state;
	/* due exactly at the expiry instant is still a retry */
	assert_int_equal(sched_after_tempfail(1, 10, 1000000, 1000500, 500, 0, &due), SCHED_RETRY);
	assert_true(due == 1000500);
	due = UNSET;
	assert_int_equal(sched_after_tempfail(1, 10, 1000000, 1020000, 500, 20000, &due),
	                 SCHED_RETRY);
	assert_true(due == 1020000);
	/* one ms later: expire, due untouched */
	due = UNSET;
	assert_int_equal(sched_after_tempfail(1, 10, 1000000, 1000499, 500, 0, &due), SCHED_EXPIRE);
	assert_true(due == UNSET);
	/* Retry-After alone pushes it past expiry though the backoff would fit */
	assert_int_equal(sched_after_tempfail(1, 10, 1000000, 1010000, 500, 10001, &due),
	                 SCHED_EXPIRE);
	/* already expired */
	assert_int_equal(sched_after_tempfail(2, 10, 1000000, 999999, 1, 0, &due), SCHED_EXPIRE);
	assert_true(due == UNSET);
}

static void test_tempfail_with_backoff(void **state)
{
	(void)state;
	/* the dispatcher's use: attempts 1..max with real backoff values */
	int64_t now = 1795428000000LL, expires = now + 3600000;
	int retries = 0, give_up = 0, expire = 0;
	for (int a = 1; a <= 10; a++) {
		int64_t due = UNSET;
		int64_t b = sched_backoff_ms(a, 1000, 600000, 0x9e3779b9u);
		switch (sched_after_tempfail(a, 10, now, expires, b, 0, &due)) {
		case SCHED_RETRY:
			retries++;
			assert_true(due >= now + 1000 && due <= now + 600000);
			break;
		case SCHED_GIVE_UP:
			give_up++;
			assert_int_equal(a, 10);
			break;
		case SCHED_EXPIRE:
			expire++;
			break;
		}
	}
	assert_int_equal(retries, 9);
	assert_int_equal(give_up, 1);
	assert_int_equal(expire, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backoff_values),
	    cmocka_unit_test(test_backoff_monotonic),
	    cmocka_unit_test(test_backoff_jitter_spreads),
	    cmocka_unit_test(test_backoff_degenerate),
	    cmocka_unit_test(test_tempfail_retry),
	    cmocka_unit_test(test_tempfail_give_up),
	    cmocka_unit_test(test_tempfail_expire),
	    cmocka_unit_test(test_tempfail_with_backoff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
