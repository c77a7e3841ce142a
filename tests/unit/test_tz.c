/*
 * test_tz.c - tz.c against fixed instants: zone validation, UTC <-> local
 * both ways, DST gap and repeated hour (Europe/Berlin 2026), Tehran's
 * history (DST until 2022), proleptic Gregorian dates, lenient fields and
 * the calendar cache past its 64 slots.  Expected values were computed
 * independently (Python zoneinfo); no real clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tz.h"

#define H_MS (3600LL * 1000)

static void test_valid(void **state)
{
	char longid[80];

	(void)state;
	assert_int_equal(tz_valid("Asia/Tehran"), 1);
	assert_int_equal(tz_valid("Europe/Berlin"), 1);
	assert_int_equal(tz_valid("UTC"), 1);
	assert_int_equal(tz_valid("America/Argentina/Buenos_Aires"), 1);
	assert_int_equal(tz_valid("Etc/GMT+5"), 1);
	assert_int_equal(tz_valid("Asia/Calcutta"), 1); /* alias */
	assert_int_equal(tz_valid("Etc/Unknown"), 0);
	assert_int_equal(tz_valid("Mars/Olympus_Mons"), 0);
	assert_int_equal(tz_valid("GMT+03:30"), 0); /* custom id, not IANA */
	assert_int_equal(tz_valid("asia/tehran!"), 0);
	assert_int_equal(tz_valid("Asia/Tehran\n"), 0);
	assert_int_equal(tz_valid("Asia Tehran"), 0);
	assert_int_equal(tz_valid("../etc/passwd"), 0);
	assert_int_equal(tz_valid(""), 0);
	assert_int_equal(tz_valid(NULL), 0);
	memset(longid, 'A', sizeof(longid));
	memcpy(longid, "Asia/", 5);
	longid[65] = 0; /* 65 bytes */
	assert_int_equal(tz_valid(longid), 0);
}

static void expect_local(const char *zone, int64_t utc, int y, int mo, int d, int h, int mi, int s,
                         int wday, int64_t off)
{
	struct tz_tm t;

	assert_int_equal(tz_local(zone, utc, &t), 0);
	assert_int_equal(t.year, y);
	assert_int_equal(t.month, mo);
	assert_int_equal(t.day, d);
	assert_int_equal(t.hour, h);
	assert_int_equal(t.min, mi);
	assert_int_equal(t.sec, s);
	assert_int_equal(t.wday, wday);
	assert_int_equal(t.offset_ms, off);
}

static int64_t utc_of(const char *zone, int y, int mo, int d, int h, int mi, int s)
{
	struct tz_tm t = {.year = y, .month = mo, .day = d, .hour = h, .min = mi, .sec = s};
	int64_t u = 0;

	assert_int_equal(tz_utc(zone, &t, &u), 0);
	return u;
}

static void test_tehran(void **state)
{
	(void)state;
	/* 2026: no DST any more, +03:30 summer and winter. */
	expect_local("Asia/Tehran", 1781552400000LL, 2026, 6, 15, 23, 10, 0, 1,
	             3 * H_MS + H_MS / 2);
	expect_local("Asia/Tehran", 1768033800000LL, 2026, 1, 10, 12, 0, 0, 6, 3 * H_MS + H_MS / 2);
	/* 2021: +04:30 in summer, +03:30 in winter. */
	expect_local("Asia/Tehran", 1625124600000LL, 2021, 7, 1, 12, 0, 0, 4, 4 * H_MS + H_MS / 2);
	expect_local("Asia/Tehran", 1609489800000LL, 2021, 1, 1, 12, 0, 0, 5, 3 * H_MS + H_MS / 2);
	assert_int_equal(utc_of("Asia/Tehran", 2026, 6, 16, 8, 0, 0), 1781584200000LL);
	assert_int_equal(utc_of("Asia/Tehran", 2021, 7, 1, 12, 0, 0), 1625124600000LL);
	/* seconds survive the round trip */
	expect_local("Asia/Tehran", 1781552400000LL + 59000, 2026, 6, 15, 23, 10, 59, 1,
	             3 * H_MS + H_MS / 2);
	assert_int_equal(utc_of("Asia/Tehran", 2026, 6, 15, 23, 10, 59), 1781552400000LL + 59000);
}

static void test_berlin_gap(void **state)
{
	struct tz_tm t = {.year = 2026, .month = 3, .day = 29, .hour = 2, .min = 30};
	int64_t u;

	(void)state;
	/* 02:00..02:59 does not exist on 2026-03-29: the first instant after
	 * the gap, 03:00 CEST = 01:00 UTC. */
	assert_int_equal(tz_utc("Europe/Berlin", &t, &u), 0);
	assert_int_equal(u, 1774746000000LL);
	assert_int_equal(tz_utc_later("Europe/Berlin", &t, &u), 0);
	assert_int_equal(u, 1774746000000LL);
	assert_int_equal(utc_of("Europe/Berlin", 2026, 3, 29, 1, 59, 0), 1774745940000LL);
	assert_int_equal(utc_of("Europe/Berlin", 2026, 3, 29, 3, 30, 0), 1774747800000LL);
	expect_local("Europe/Berlin", 1774746000000LL - 1000, 2026, 3, 29, 1, 59, 59, 0, H_MS);
	expect_local("Europe/Berlin", 1774746000000LL, 2026, 3, 29, 3, 0, 0, 0, 2 * H_MS);
}

static void test_berlin_repeated(void **state)
{
	struct tz_tm t = {.year = 2026, .month = 10, .day = 25, .hour = 2, .min = 30};
	int64_t u;

	(void)state;
	assert_int_equal(tz_utc("Europe/Berlin", &t, &u), 0);
	assert_int_equal(u, 1792888200000LL); /* 02:30 CEST, the earlier */
	assert_int_equal(tz_utc_later("Europe/Berlin", &t, &u), 0);
	assert_int_equal(u, 1792891800000LL); /* 02:30 CET */
	/* tz_utc_later leaves the calendar at "earlier" for plain tz_utc */
	assert_int_equal(tz_utc("Europe/Berlin", &t, &u), 0);
	assert_int_equal(u, 1792888200000LL);
	expect_local("Europe/Berlin", 1792890000000LL - 1000, 2026, 10, 25, 2, 59, 59, 0, 2 * H_MS);
	expect_local("Europe/Berlin", 1792890000000LL, 2026, 10, 25, 2, 0, 0, 0, H_MS);
	expect_local("Europe/Berlin", 1792891800000LL, 2026, 10, 25, 2, 30, 0, 0, H_MS);
}

static void test_transitions(void **state)
{
	int64_t t = 0;

	(void)state;
	assert_int_equal(tz_next_transition("Europe/Berlin", 1767225600000LL, &t), 1);
	assert_int_equal(t, 1774746000000LL);
	assert_int_equal(tz_next_transition("Europe/Berlin", t, &t), 1);
	assert_int_equal(t, 1792890000000LL);
	/* Iran's last change was the end of DST in September 2022. */
	assert_int_equal(tz_next_transition("Asia/Tehran", 1767225600000LL, &t), 0);
	assert_int_equal(tz_next_transition("Asia/Tehran", 1654041600000LL, &t), 1);
	expect_local("Asia/Tehran", t, 2022, 9, 21, 23, 0, 0, 3, 3 * H_MS + H_MS / 2);
	assert_int_equal(tz_next_transition("UTC", 0, &t), 0);
	assert_int_equal(tz_next_transition("Nowhere/Else", 0, &t), -1);
}

static void test_proleptic_and_lenient(void **state)
{
	(void)state;
	/* 0001-01-01 was a Monday in the proleptic Gregorian calendar. */
	assert_int_equal(utc_of("UTC", 1, 1, 1, 0, 0, 0), -62135596800000LL);
	expect_local("UTC", -62135596800000LL, 1, 1, 1, 0, 0, 0, 1, 0);
	/* year 0 = 1 BC, no era */
	assert_int_equal(utc_of("UTC", 0, 1, 1, 0, 0, 0), -62167219200000LL);
	expect_local("UTC", -62167219200000LL, 0, 1, 1, 0, 0, 0, 6, 0);
	/* 1582-10-10 exists (it would be in the Julian->Gregorian gap) */
	assert_int_equal(utc_of("UTC", 1582, 10, 10, 0, 0, 0), -12219724800000LL);
	expect_local("UTC", -12219724800000LL, 1582, 10, 10, 0, 0, 0, 0, 0);
	/* lenient fields roll over */
	assert_int_equal(utc_of("UTC", 2026, 12, 32, 0, 0, 0), utc_of("UTC", 2027, 1, 1, 0, 0, 0));
	assert_int_equal(utc_of("UTC", 2026, 13, 1, 0, 0, 0), utc_of("UTC", 2027, 1, 1, 0, 0, 0));
	assert_int_equal(utc_of("UTC", 2026, 3, 1, 24, 90, 0), utc_of("UTC", 2026, 3, 2, 1, 30, 0));
	assert_int_equal(utc_of("UTC", 2026, 3, 0, 0, 0, 0), utc_of("UTC", 2026, 2, 28, 0, 0, 0));
	assert_int_equal(utc_of("UTC", 1970, 1, 1, 0, 0, 0), 0);
	expect_local("UTC", -1, 1969, 12, 31, 23, 59, 59, 3, 0);
}

static void test_errors(void **state)
{
	struct tz_tm t = {.year = 2026, .month = 1, .day = 1};
	int64_t u = 42;

	(void)state;
	assert_int_equal(tz_local("Nowhere/Else", 0, &t), -1);
	assert_int_equal(tz_local("Etc/Unknown", 0, &t), -1);
	assert_int_equal(tz_local(NULL, 0, &t), -1);
	assert_int_equal(tz_utc("Nowhere/Else", &t, &u), -1);
	assert_int_equal(u, 42);
	t.year = 200000;
	assert_int_equal(tz_utc("UTC", &t, &u), -1);
	t.year = 2026;
	t.day = 20000000;
	assert_int_equal(tz_utc("UTC", &t, &u), -1);
	assert_int_equal(u, 42);
}

/* More zones than cache slots, twice over: eviction must not confuse them. */
static void test_cache(void **state)
{
	static const char *const cities[] = {
	    "Europe/London",
	    "Europe/Paris",
	    "Europe/Madrid",
	    "Europe/Rome",
	    "Europe/Vienna",
	    "Europe/Warsaw",
	    "Europe/Athens",
	    "Europe/Helsinki",
	    "Europe/Kiev",
	    "Europe/Moscow",
	    "Europe/Istanbul",
	    "Asia/Dubai",
	    "Asia/Kabul",
	    "Asia/Karachi",
	    "Asia/Kolkata",
	    "Asia/Kathmandu",
	    "Asia/Dhaka",
	    "Asia/Bangkok",
	    "Asia/Shanghai",
	    "Asia/Tokyo",
	    "Asia/Seoul",
	    "Australia/Sydney",
	    "Australia/Adelaide",
	    "Pacific/Auckland",
	    "Pacific/Honolulu",
	    "America/Anchorage",
	    "America/Los_Angeles",
	    "America/Denver",
	    "America/Chicago",
	    "America/New_York",
	    "America/Sao_Paulo",
	    "Atlantic/Azores",
	    "Africa/Cairo",
	    "Africa/Lagos",
	    "Africa/Nairobi",
	    "Asia/Baghdad",
	    "Asia/Riyadh",
	    "Asia/Baku",
	    "Asia/Tbilisi",
	    "Asia/Yerevan",
	    "Asia/Tehran",
	    "Europe/Berlin",
	    "UTC",
	};
	char name[32];
	int64_t inst = 1781512200000LL, u;

	(void)state;
	for (int pass = 0; pass < 2; pass++) {
		for (int n = -14; n <= 12; n++) {
			struct tz_tm t;
			if (n == 0)
				continue;
			snprintf(name, sizeof(name), "Etc/GMT%+d", n);
			assert_int_equal(tz_local(name, inst, &t), 0);
			assert_int_equal(t.offset_ms, -(int64_t)n * H_MS); /* POSIX sign */
		}
		for (size_t i = 0; i < sizeof(cities) / sizeof(cities[0]); i++) {
			struct tz_tm t;
			assert_int_equal(tz_local(cities[i], inst, &t), 0);
			assert_int_equal(tz_utc(cities[i], &t, &u), 0);
			assert_int_equal(u, inst);
		}
	}
	expect_local("Asia/Tehran", 1781552400000LL, 2026, 6, 15, 23, 10, 0, 1,
	             3 * H_MS + H_MS / 2);
	tz_cleanup();
	expect_local("Europe/Berlin", 1774746000000LL, 2026, 3, 29, 3, 0, 0, 0, 2 * H_MS);
}

static int teardown(void **state)
{
	(void)state;
	tz_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid),       cmocka_unit_test(test_tehran),
	    cmocka_unit_test(test_berlin_gap),  cmocka_unit_test(test_berlin_repeated),
	    cmocka_unit_test(test_transitions), cmocka_unit_test(test_proleptic_and_lenient),
	    cmocka_unit_test(test_errors),      cmocka_unit_test(test_cache),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
