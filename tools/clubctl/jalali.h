/*
 * jalali.h - Gregorian <-> Jalali (Solar Hijri) dates for clubctl's
 * display, with the standard 33-year arithmetic algorithm.  Valid for
 * Jalali years 1178..1633 (Gregorian 1800..2254), where it matches the
 * official calendar.
 */
#ifndef CLUBCTL_JALALI_H
#define CLUBCTL_JALALI_H

#include <stddef.h>

/* gm 1..12, gd 1..31 (a valid Gregorian date). */
void jalali_from_gregorian(int gy, int gm, int gd, int *jy, int *jm, int *jd);
/* jm 1..12, jd 1..31 (a valid Jalali date). */
void jalali_to_gregorian(int jy, int jm, int jd, int *gy, int *gm, int *gd);
/* 29, 30 or 31; 0 for a month outside 1..12. */
int jalali_month_days(int jy, int jm);
/* 1 when jy..jm..jd is a real Jalali date. */
int jalali_valid(int jy, int jm, int jd);
/* Check known pairs and every day of 1900..2100 both ways.  0, or -1 with a
 * description of the first mismatch in err. */
int jalali_selfcheck(char *err, size_t errlen);

#endif
