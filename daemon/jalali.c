/*
 * jalali.c - Persian (Solar Hijri) <-> Gregorian civil dates through ICU's C
 * calendar API, and the Persian/Latin month and weekday names.
 *
 * Owns: two cached UCalendar objects in zone "UTC", one Persian (locale
 * "@calendar=persian", checked to really be "persian") and one proleptic
 * Gregorian (Julian cutover moved to the far past), both strict (not
 * lenient), so ICU itself refuses 1403-12-31 or 2025-02-29.  A conversion
 * sets the date at noon UTC in one calendar and reads the fields back from
 * the other; every input is also read back after setting it, so a date ICU
 * would silently normalise is refused.
 * Never touches: time zones (a civil date has none: tz.c maps instants to
 * local dates), ICU global state (no u_cleanup), the real clock.
 * Limits: Jalali years JALALI_YEAR_MIN..JALALI_YEAR_MAX; Gregorian dates only
 * when they fall inside that range.  Single-threaded: the loop thread only.
 */
#include "jalali.h"

#include <errno.h>
#include <string.h>

#include <unicode/ucal.h>

/* Gregorian years that can map into the Jalali range, checked before ICU. */
#define JALALI_GY_MIN (JALALI_YEAR_MIN + 620)
#define JALALI_GY_MAX (JALALI_YEAR_MAX + 622)
#define JALALI_NOON   (12.0 * 3600.0 * 1000.0)

static UCalendar *jalali_pcal; /* Persian */
static UCalendar *jalali_gcal; /* proleptic Gregorian */
static int jalali_broken;      /* ICU has no Persian calendar: stop retrying */

static const char *const jalali_months_fa[12] = {
    "فروردین", "اردیبهشت", "خرداد", "تیر", "مرداد", "شهریور",
    "مهر",     "آبان",     "آذر",   "دی",  "بهمن",  "اسفند",
};

static const char *const jalali_months_latin[12] = {
    "Farvardin", "Ordibehesht", "Khordad", "Tir", "Mordad", "Shahrivar",
    "Mehr",      "Aban",        "Azar",    "Dey", "Bahman", "Esfand",
};

/* 0 = Sunday, like struct tz_tm.  U+200C (ZWNJ) inside "سه‌شنبه". */
static const char *const jalali_weekdays_fa[7] = {
    "یکشنبه", "دوشنبه", "سه\u200cشنبه", "چهارشنبه", "پنجشنبه", "جمعه", "شنبه",
};

static UCalendar *jalali_open(const char *locale, const char *want_type)
{
	static const UChar utc[] = {'U', 'T', 'C', 0};
	UErrorCode st = U_ZERO_ERROR;
	UCalendar *cal;
	const char *type;

	cal = ucal_open(utc, 3, locale, UCAL_DEFAULT, &st);
	if (U_FAILURE(st) || !cal)
		return NULL;
	type = ucal_getType(cal, &st);
	if (U_FAILURE(st) || !type || strcmp(type, want_type) != 0) {
		ucal_close(cal);
		return NULL;
	}
	if (strcmp(want_type, "gregorian") == 0) {
		ucal_setGregorianChange(cal, U_DATE_MIN, &st);
		if (U_FAILURE(st)) {
			ucal_close(cal);
			return NULL;
		}
	}
	ucal_setAttribute(cal, UCAL_LENIENT, 0);
	return cal;
}

static int jalali_ready(void)
{
	if (jalali_pcal && jalali_gcal)
		return 0;
	if (jalali_broken)
		return -ENOTSUP;
	if (!jalali_pcal)
		jalali_pcal = jalali_open("@calendar=persian", "persian");
	if (!jalali_gcal)
		jalali_gcal = jalali_open("@calendar=gregorian", "gregorian");
	if (!jalali_pcal || !jalali_gcal) {
		jalali_cleanup();
		jalali_broken = 1;
		return -ENOTSUP;
	}
	return 0;
}

/*
 * Set y-m-d (month 1..12) at noon in cal and return the instant.  -EINVAL
 * when ICU refuses the date or would normalise it into another one.
 */
static int jalali_set(UCalendar *cal, int y, int m, int d, UDate *out)
{
	UErrorCode st = U_ZERO_ERROR;
	UDate t;

	ucal_clear(cal);
	ucal_set(cal, UCAL_EXTENDED_YEAR, y);
	ucal_set(cal, UCAL_MONTH, m - 1);
	ucal_set(cal, UCAL_DATE, d);
	ucal_set(cal, UCAL_HOUR_OF_DAY, 12);
	t = ucal_getMillis(cal, &st);
	if (U_FAILURE(st))
		return -EINVAL;
	/* Read back: a strict calendar refuses day 31 of a 30-day month, but
	 * check anyway rather than trust every ICU version on every field. */
	if (ucal_get(cal, UCAL_EXTENDED_YEAR, &st) != y ||
	    ucal_get(cal, UCAL_MONTH, &st) != m - 1 || ucal_get(cal, UCAL_DATE, &st) != d ||
	    U_FAILURE(st))
		return -EINVAL;
	*out = t;
	return 0;
}

static int jalali_get(UCalendar *cal, UDate t, int *y, int *m, int *d)
{
	UErrorCode st = U_ZERO_ERROR;
	int yy, mm, dd;

	ucal_setMillis(cal, t, &st);
	yy = ucal_get(cal, UCAL_EXTENDED_YEAR, &st);
	mm = ucal_get(cal, UCAL_MONTH, &st) + 1;
	dd = ucal_get(cal, UCAL_DATE, &st);
	if (U_FAILURE(st))
		return -EINVAL;
	*y = yy;
	*m = mm;
	*d = dd;
	return 0;
}

static int jalali_args_ok(int y, int m, int d, int ymin, int ymax)
{
	return y >= ymin && y <= ymax && m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

int jalali_from_gregorian(int gy, int gm, int gd, int *jy, int *jm, int *jd)
{
	UDate t;
	int y, m, d, rc;

	if (!jalali_args_ok(gy, gm, gd, JALALI_GY_MIN, JALALI_GY_MAX))
		return -EINVAL;
	rc = jalali_ready();
	if (rc < 0)
		return rc;
	rc = jalali_set(jalali_gcal, gy, gm, gd, &t);
	if (rc < 0)
		return rc;
	rc = jalali_get(jalali_pcal, t, &y, &m, &d);
	if (rc < 0)
		return rc;
	if (y < JALALI_YEAR_MIN || y > JALALI_YEAR_MAX)
		return -EINVAL;
	*jy = y;
	*jm = m;
	*jd = d;
	return 0;
}

int jalali_to_gregorian(int jy, int jm, int jd, int *gy, int *gm, int *gd)
{
	UDate t;
	int y, m, d, rc;

	if (!jalali_args_ok(jy, jm, jd, JALALI_YEAR_MIN, JALALI_YEAR_MAX))
		return -EINVAL;
	rc = jalali_ready();
	if (rc < 0)
		return rc;
	rc = jalali_month_length(jy, jm);
	if (rc < 0)
		return rc;
	if (jd > rc)
		return -EINVAL;
	rc = jalali_set(jalali_pcal, jy, jm, jd, &t);
	if (rc < 0)
		return rc;
	rc = jalali_get(jalali_gcal, t, &y, &m, &d);
	if (rc < 0)
		return rc;
	*gy = y;
	*gm = m;
	*gd = d;
	return 0;
}

int jalali_month_length(int jy, int jm)
{
	UErrorCode st = U_ZERO_ERROR;
	UDate t;
	int32_t n;
	int rc;

	if (!jalali_args_ok(jy, jm, 1, JALALI_YEAR_MIN, JALALI_YEAR_MAX))
		return -EINVAL;
	rc = jalali_ready();
	if (rc < 0)
		return rc;
	rc = jalali_set(jalali_pcal, jy, jm, 1, &t);
	if (rc < 0)
		return rc;
	n = ucal_getLimit(jalali_pcal, UCAL_DATE, UCAL_ACTUAL_MAXIMUM, &st);
	if (U_FAILURE(st) || n < 29 || n > 31)
		return -EINVAL;
	return (int)n;
}

int jalali_is_leap(int jy)
{
	int n = jalali_month_length(jy, 12);

	if (n < 0)
		return n;
	return n == 30;
}

const char *jalali_month_name_fa(int jm)
{
	return jm >= 1 && jm <= 12 ? jalali_months_fa[jm - 1] : NULL;
}

const char *jalali_month_name_latin(int jm)
{
	return jm >= 1 && jm <= 12 ? jalali_months_latin[jm - 1] : NULL;
}

const char *jalali_weekday_fa(int wday)
{
	return wday >= 0 && wday <= 6 ? jalali_weekdays_fa[wday] : NULL;
}

void jalali_cleanup(void)
{
	if (jalali_pcal)
		ucal_close(jalali_pcal);
	if (jalali_gcal)
		ucal_close(jalali_gcal);
	jalali_pcal = NULL;
	jalali_gcal = NULL;
}
