/*
 * test_cdate.c - contact dates in both calendars: parsing (impossible dates
 * refused), formatting, the yearly occurrence with the Feb 29 and Esfand 30
 * rule, conversion of Jalali birthdays.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "cdate.h"
#include "jalali.h"

static void test_parse(void **state)
{
	(void)state;
	struct cdate c;
	assert_int_equal(cdate_parse("1990-05-17", &c), 0);
	assert_int_equal(c.cal, CDATE_GREGORIAN);
	assert_int_equal(c.y, 1990);
	assert_int_equal(c.m, 5);
	assert_int_equal(c.d, 17);
	assert_int_equal(cdate_parse("j:1369-02-27", &c), 0);
	assert_int_equal(c.cal, CDATE_JALALI);
	assert_int_equal(c.y, 1369);
	assert_int_equal(cdate_parse("--02-29", &c), 0);
	assert_int_equal(c.y, 0);
	assert_int_equal(cdate_parse("j:--12-30", &c), 0);
	const char *bad[] = {
	    "",           "1990-5-17",    "1990-02-30",   "1991-02-29",   "1990-13-01",
	    "1990-00-10", "j:1402-12-30", "j:1403-07-31", "x:1990-01-01", "1990-01-01T",
	    "--13-01",    "j:--07-31",    "0000-01-01",   "19a0-01-01"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_int_equal(cdate_parse(bad[i], &c), -EINVAL);
	assert_int_equal(cdate_parse("j:1403-12-30", &c), 0); /* 1403 is leap */
	assert_int_equal(cdate_parse("2024-02-29", &c), 0);
}

static void test_format(void **state)
{
	(void)state;
	const char *ok[] = {"1990-05-17", "j:1369-02-27", "--02-29", "j:--12-30"};
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
		struct cdate c;
		char out[16];
		assert_int_equal(cdate_parse(ok[i], &c), 0);
		cdate_format(&c, out, sizeof out);
		assert_string_equal(out, ok[i]);
	}
}

static void test_occurrence(void **state)
{
	(void)state;
	struct cdate c;
	int y, m, d;
	assert_int_equal(cdate_parse("2000-02-29", &c), 0);
	assert_int_equal(cdate_occurrence(&c, 2025, &y, &m, &d), 0);
	assert_true(y == 2025 && m == 2 && d == 28);
	assert_int_equal(cdate_occurrence(&c, 2028, &y, &m, &d), 0);
	assert_true(m == 2 && d == 29);
	/* Nowruz 1404 = 2025-03-21; 1405 = 2026-03-21. */
	assert_int_equal(cdate_parse("j:--01-01", &c), 0);
	assert_int_equal(cdate_occurrence(&c, 1404, &y, &m, &d), 0);
	assert_true(y == 2025 && m == 3 && d == 21);
	/* Yalda, 30 Azar 1404 = 2025-12-21. */
	assert_int_equal(cdate_parse("j:--09-30", &c), 0);
	assert_int_equal(cdate_occurrence(&c, 1404, &y, &m, &d), 0);
	assert_true(y == 2025 && m == 12 && d == 21);
	/* Esfand 30 of leap 1403 (2025-03-20); in common 1404 it is Esfand 29
	 * (2026-03-20). */
	assert_int_equal(cdate_parse("j:1403-12-30", &c), 0);
	assert_int_equal(cdate_occurrence(&c, 1403, &y, &m, &d), 0);
	assert_true(y == 2025 && m == 3 && d == 20);
	assert_int_equal(cdate_occurrence(&c, 1404, &y, &m, &d), 0);
	assert_true(y == 2026 && m == 3 && d == 20);
	assert_int_equal(cdate_occurrence(&c, 0, &y, &m, &d), -EINVAL);
}

static void test_to_gregorian(void **state)
{
	(void)state;
	struct cdate c;
	int y, m, d;
	assert_int_equal(cdate_parse("j:1369-02-27", &c), 0);
	assert_int_equal(cdate_to_gregorian(&c, &y, &m, &d), 0);
	assert_true(y == 1990 && m == 5 && d == 17);
	assert_int_equal(cdate_parse("--05-17", &c), 0);
	assert_int_equal(cdate_to_gregorian(&c, &y, &m, &d), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_occurrence),
	    cmocka_unit_test(test_to_gregorian),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	jalali_cleanup();
	return rc;
}
