/*
 * jalali.c - Gregorian <-> Jalali conversion by day counting with the
 * 33-year arithmetic cycle (8 leap years per 33), as published with the
 * jdf/jalaali libraries; no tables beyond month offsets.
 *
 * Owns nothing; pure functions.  Never touches time zones: callers convert
 * an instant to a local Gregorian date first.  Limits: the arithmetic
 * cycle agrees with the astronomical calendar for Jalali 1178..1633 only.
 */
#include "jalali.h"

#include <stdio.h>

static int greg_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int greg_month_days(int y, int m)
{
	static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && greg_leap(y) ? 29 : d[m - 1];
}

void jalali_from_gregorian(int gy, int gm, int gd, int *jy, int *jm, int *jd)
{
	static const long before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
	long gy2 = gm > 2 ? gy + 1 : gy;
	long days = 355666 + 365L * gy + (gy2 + 3) / 4 - (gy2 + 99) / 100 + (gy2 + 399) / 400 + gd +
	            before[gm - 1];
	long y = -1595 + 33 * (days / 12053);

	days %= 12053;
	y += 4 * (days / 1461);
	days %= 1461;
	if (days > 365) {
		y += (days - 1) / 365;
		days = (days - 1) % 365;
	}
	*jy = (int)y;
	if (days < 186) {
		*jm = (int)(1 + days / 31);
		*jd = (int)(1 + days % 31);
	} else {
		*jm = (int)(7 + (days - 186) / 30);
		*jd = (int)(1 + (days - 186) % 30);
	}
}

void jalali_to_gregorian(int jy, int jm, int jd, int *gy, int *gm, int *gd)
{
	long y = jy + 1595L;
	long days = -355668 + 365 * y + (y / 33) * 8 + ((y % 33) + 3) / 4 + jd +
	            (jm < 7 ? (jm - 1) * 31L : (jm - 7) * 30L + 186);
	long g = 400 * (days / 146097);

	days %= 146097;
	if (days > 36524) {
		days--;
		g += 100 * (days / 36524);
		days %= 36524;
		if (days >= 365)
			days++;
	}
	g += 4 * (days / 1461);
	days %= 1461;
	if (days > 365) {
		g += (days - 1) / 365;
		days = (days - 1) % 365;
	}
	int d = (int)days + 1, m = 1;
	while (m < 12 && d > greg_month_days((int)g, m)) {
		d -= greg_month_days((int)g, m);
		m++;
	}
	*gy = (int)g;
	*gm = m;
	*gd = d;
}

int jalali_month_days(int jy, int jm)
{
	if (jm < 1 || jm > 12)
		return 0;
	if (jm <= 6)
		return 31;
	if (jm <= 11)
		return 30;
	/* Esfand has 30 days when its 30th is not already Farvardin 1. */
	int gy, gm, gd, y, m, d;
	jalali_to_gregorian(jy, 12, 29, &gy, &gm, &gd);
	gd++;
	if (gd > greg_month_days(gy, gm)) {
		gd = 1;
		if (++gm > 12) {
			gm = 1;
			gy++;
		}
	}
	jalali_from_gregorian(gy, gm, gd, &y, &m, &d);
	return m == 12 ? 30 : 29;
}

int jalali_valid(int jy, int jm, int jd)
{
	return jy >= 1178 && jy <= 1633 && jd >= 1 && jd <= jalali_month_days(jy, jm);
}

int jalali_selfcheck(char *err, size_t errlen)
{
	static const int known[][6] = {
	    {2025, 3, 21, 1404, 1, 1},   {2026, 3, 21, 1405, 1, 1},   {2024, 3, 20, 1403, 1, 1},
	    {2025, 3, 20, 1403, 12, 30}, {2026, 3, 20, 1404, 12, 29}, {2021, 3, 21, 1400, 1, 1},
	    {2021, 3, 20, 1399, 12, 30}, {1970, 1, 1, 1348, 10, 11},  {2000, 1, 1, 1378, 10, 11},
	    {1979, 2, 11, 1357, 11, 22}, {2024, 12, 21, 1403, 10, 1}, {2026, 9, 23, 1405, 7, 1},
	    {2028, 3, 20, 1407, 1, 1},   {2029, 3, 20, 1408, 1, 1},   {2030, 3, 21, 1409, 1, 1},
	};
	int jy, jm, jd, gy, gm, gd;

	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
		const int *k = known[i];
		jalali_from_gregorian(k[0], k[1], k[2], &jy, &jm, &jd);
		if (jy != k[3] || jm != k[4] || jd != k[5]) {
			snprintf(err, errlen,
			         "%04d-%02d-%02d gave %04d-%02d-%02d, want %04d-%02d-%02d", k[0],
			         k[1], k[2], jy, jm, jd, k[3], k[4], k[5]);
			return -1;
		}
		jalali_to_gregorian(k[3], k[4], k[5], &gy, &gm, &gd);
		if (gy != k[0] || gm != k[1] || gd != k[2]) {
			snprintf(err, errlen, "jalali %04d-%02d-%02d gave %04d-%02d-%02d", k[3],
			         k[4], k[5], gy, gm, gd);
			return -1;
		}
	}
	/* Every day of 1900..2100: the Jalali date advances by exactly one day
	 * and converts back to the same Gregorian date. */
	int py, pm, pd;
	jalali_from_gregorian(1899, 12, 31, &py, &pm, &pd);
	for (gy = 1900; gy <= 2100; gy++) {
		for (gm = 1; gm <= 12; gm++) {
			for (gd = 1; gd <= greg_month_days(gy, gm); gd++) {
				jalali_from_gregorian(gy, gm, gd, &jy, &jm, &jd);
				int ny = py, nm = pm, nd = pd + 1;
				if (nd > jalali_month_days(py, pm)) {
					nd = 1;
					if (++nm > 12) {
						nm = 1;
						ny++;
					}
				}
				int by, bm, bd;
				jalali_to_gregorian(jy, jm, jd, &by, &bm, &bd);
				if (jy != ny || jm != nm || jd != nd || by != gy || bm != gm ||
				    bd != gd) {
					snprintf(err, errlen,
					         "%04d-%02d-%02d gave %04d-%02d-%02d (after "
					         "%04d-%02d-%02d), "
					         "back %04d-%02d-%02d",
					         gy, gm, gd, jy, jm, jd, py, pm, pd, by, bm, bd);
					return -1;
				}
				py = jy;
				pm = jm;
				pd = jd;
			}
		}
	}
	return 0;
}
