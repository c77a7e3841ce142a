/*
 * cdate.h - calendar dates as contacts store them, in either calendar:
 *   "1990-05-17"      Gregorian
 *   "j:1369-02-27"    Jalali (Solar Hijri)
 * and "--05-17" / "j:--02-27" when the year is unknown (a birthday given
 * without the year).  Conversion goes through jalali.c (ICU).
 */
#ifndef CLUBD_CDATE_H
#define CLUBD_CDATE_H

enum cdate_cal { CDATE_GREGORIAN = 0, CDATE_JALALI = 1 };

struct cdate {
	enum cdate_cal cal;
	int y; /* 0 = year unknown */
	int m, d;
};

/* 0, or -EINVAL (bad syntax, impossible date such as Feb 30 or Esfand 30
 * of a common year; with an unknown year Feb 29 and Esfand 30 are valid). */
int cdate_parse(const char *s, struct cdate *out);
/* Canonical text form; out has at least 16 bytes. */
void cdate_format(const struct cdate *c, char *out, size_t n);

/*
 * The Gregorian civil date on which the date's yearly recurrence falls in
 * Gregorian year gy (cal == GREGORIAN) or Jalali year jy (cal == JALALI)
 * -- i.e. in the contact's own calendar, pass the year of that calendar.
 * Leap rule: Feb 29 falls on Feb 28 in common years; Esfand 30 falls on
 * Esfand 29 in common Jalali years.  0 or -EINVAL.
 */
int cdate_occurrence(const struct cdate *c, int year, int *gy, int *gm, int *gd);

/* The date itself in Gregorian (needs a known year).  0 or -EINVAL. */
int cdate_to_gregorian(const struct cdate *c, int *gy, int *gm, int *gd);

#endif
