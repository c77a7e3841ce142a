/*
 * cdate.c - contact dates in the Gregorian or the Jalali calendar: parse,
 * format, the yearly occurrence, conversion to Gregorian.  Owns only the
 * text form and the leap-day rule; the Persian calendar itself is jalali.c
 * (ICU).  Never touches the store.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cdate.h"
#include "jalali.h"

static int greg_mlen(int y, int m)
{
	static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return len[m - 1];
}

static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int cdate_parse(const char *s, struct cdate *out)
{
	struct cdate c = {CDATE_GREGORIAN, 0, 0, 0};
	if (!s)
		return -EINVAL;
	if (strncmp(s, "j:", 2) == 0) {
		c.cal = CDATE_JALALI;
		s += 2;
	}
	size_t n = strlen(s);
	if (n == 7 && s[0] == '-' && s[1] == '-' && s[4] == '-') {
		if (digits(s + 2, 2, &c.m) < 0 || digits(s + 5, 2, &c.d) < 0)
			return -EINVAL;
	} else if (n == 10 && s[4] == '-' && s[7] == '-') {
		if (digits(s, 4, &c.y) < 0 || digits(s + 5, 2, &c.m) < 0 ||
		    digits(s + 8, 2, &c.d) < 0 || c.y < 1)
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	if (c.m < 1 || c.m > 12 || c.d < 1)
		return -EINVAL;
	int max;
	if (c.cal == CDATE_GREGORIAN)
		max = c.y ? greg_mlen(c.y, c.m) : greg_mlen(2000, c.m);
	else
		max = c.y ? jalali_month_length(c.y, c.m) : (c.m <= 6 ? 31 : 30);
	if (max < 0 || c.d > max)
		return -EINVAL;
	*out = c;
	return 0;
}

void cdate_format(const struct cdate *c, char *out, size_t n)
{
	const char *p = c->cal == CDATE_JALALI ? "j:" : "";
	if (c->y)
		snprintf(out, n, "%s%04d-%02d-%02d", p, c->y, c->m, c->d);
	else
		snprintf(out, n, "%s--%02d-%02d", p, c->m, c->d);
}

int cdate_occurrence(const struct cdate *c, int year, int *gy, int *gm, int *gd)
{
	int d = c->d;
	if (c->cal == CDATE_GREGORIAN) {
		if (year < 1 || year > 9999)
			return -EINVAL;
		if (c->m == 2 && d == 29 && greg_mlen(year, 2) == 28)
			d = 28;
		*gy = year;
		*gm = c->m;
		*gd = d;
		return 0;
	}
	int len = jalali_month_length(year, c->m);
	if (len < 0)
		return -EINVAL;
	if (d > len)
		d = len; /* Esfand 30 in a common year: Esfand 29 */
	return jalali_to_gregorian(year, c->m, d, gy, gm, gd);
}

int cdate_to_gregorian(const struct cdate *c, int *gy, int *gm, int *gd)
{
	if (!c->y)
		return -EINVAL;
	if (c->cal == CDATE_GREGORIAN) {
		*gy = c->y;
		*gm = c->m;
		*gd = c->d;
		return 0;
	}
	return jalali_to_gregorian(c->y, c->m, c->d, gy, gm, gd);
}
