/*
 * jalali.h - the Persian (Solar Hijri, "Jalali") calendar through ICU's
 * "@calendar=persian", plus the Persian and Latin names of its months and the
 * Persian names of the weekdays.  Dates are plain civil dates (no time of
 * day, no zone).  Single-threaded: call from the loop thread only (the ICU
 * calendars are cached).
 *
 * Supported range: Jalali years JALALI_YEAR_MIN..JALALI_YEAR_MAX (Gregorian
 * 622..3621, proleptic before 1582).  Month numbers are 1..12 in both
 * calendars.  ICU 72 uses the 33-year arithmetic leap rule, which agrees with
 * Borkowski's astronomical-calendar algorithm for 1178..1633 AP and departs
 * from it by a day in some years outside (see docs/templates.md).
 */
#ifndef CLUBD_JALALI_H
#define CLUBD_JALALI_H

#define JALALI_YEAR_MIN 1
#define JALALI_YEAR_MAX 3000

/* Gregorian -> Jalali.  0, or -EINVAL for an invalid Gregorian date (Feb 30,
 * month 13) or one outside the range; -ENOTSUP when ICU has no Persian
 * calendar.  Outputs are written only on success. */
int jalali_from_gregorian(int gy, int gm, int gd, int *jy, int *jm, int *jd);
/* Jalali -> Gregorian.  0, or -EINVAL for an invalid Jalali date (Esfand 30
 * of a common year, Mehr 31, month 0) or a year outside the range. */
int jalali_to_gregorian(int jy, int jm, int jd, int *gy, int *gm, int *gd);
/* Days in Jalali month jm of year jy (31, 30 or 29, from ICU), or -EINVAL. */
int jalali_month_length(int jy, int jm);
/* 1 when Esfand of jy has 30 days, 0 when 29, -EINVAL outside the range. */
int jalali_is_leap(int jy);

/* Month names, jm 1..12 (NULL otherwise): "فروردین" .. "اسفند" and the Latin
 * transliteration "Farvardin" .. "Esfand".  Static strings. */
const char *jalali_month_name_fa(int jm);
const char *jalali_month_name_latin(int jm);
/* Persian weekday names, wday 0 = Sunday ("یکشنبه") .. 6 = Saturday
 * ("شنبه"), the same numbering as struct tz_tm; NULL otherwise.  The names
 * keep their ZWNJ ("سه‌شنبه"). */
const char *jalali_weekday_fa(int wday);

/* Close the cached ICU calendars (shutdown, tests).  Safe to call twice. */
void jalali_cleanup(void);

#endif
