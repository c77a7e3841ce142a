/*
 * out.c - human output for clubctl: terminal display width of UTF-8 text,
 * cleaning of server-provided strings before they reach the terminal,
 * aligned tables (buffered per page, widths fixed at the first flush),
 * key/value listings, and dates in local time as Gregorian or Jalali with
 * Persian digits.
 *
 * Owns the table structs it returns and one process-wide setting (the date
 * style).  Never touches the network or JSON.  Limits: the width table is
 * small (Arabic/Persian marks, common combining blocks, zero-width and bidi
 * controls, the main East Asian wide and emoji blocks), not full Unicode
 * EastAsianWidth; text direction is left to the terminal.
 */
#include "out.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jalali.h"
#include "text.h"
#include "util.h"

static int jalali_on;

struct range {
	uint32_t lo, hi;
};

/* Zero-width: combining marks (Arabic harakat U+064B..U+065F, superscript
 * alef U+0670, Quranic marks), ZWSP/ZWNJ/ZWJ/LRM/RLM, bidi embeddings and
 * isolates, word joiner, variation selectors, BOM. */
static const struct range zero_width[] = {
    {0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x05BF, 0x05BF}, {0x05C1, 0x05C2},
    {0x05C4, 0x05C5}, {0x05C7, 0x05C7}, {0x0610, 0x061A}, {0x061C, 0x061C}, {0x064B, 0x065F},
    {0x0670, 0x0670}, {0x06D6, 0x06DC}, {0x06DF, 0x06E4}, {0x06E7, 0x06E8}, {0x06EA, 0x06ED},
    {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF}, {0x200B, 0x200F}, {0x202A, 0x202E}, {0x2060, 0x2069},
    {0x20D0, 0x20FF}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F}, {0xFEFF, 0xFEFF}, {0xE0100, 0xE01EF},
};

/* East Asian wide and fullwidth, and the emoji blocks terminals draw wide. */
static const struct range wide[] = {
    {0x1100, 0x115F},   {0x231A, 0x231B},   {0x2329, 0x232A},   {0x23E9, 0x23EC},
    {0x23F0, 0x23F0},   {0x23F3, 0x23F3},   {0x25FD, 0x25FE},   {0x2614, 0x2615},
    {0x2648, 0x2653},   {0x267F, 0x267F},   {0x2693, 0x2693},   {0x26A1, 0x26A1},
    {0x26AA, 0x26AB},   {0x26BD, 0x26BE},   {0x26C4, 0x26C5},   {0x26CE, 0x26CE},
    {0x26D4, 0x26D4},   {0x26EA, 0x26EA},   {0x26F2, 0x26F3},   {0x26F5, 0x26F5},
    {0x26FA, 0x26FA},   {0x26FD, 0x26FD},   {0x2705, 0x2705},   {0x270A, 0x270B},
    {0x2728, 0x2728},   {0x274C, 0x274C},   {0x274E, 0x274E},   {0x2753, 0x2755},
    {0x2757, 0x2757},   {0x2795, 0x2797},   {0x27B0, 0x27B0},   {0x27BF, 0x27BF},
    {0x2B1B, 0x2B1C},   {0x2B50, 0x2B50},   {0x2B55, 0x2B55},   {0x2E80, 0x303E},
    {0x3041, 0x33FF},   {0x3400, 0x4DBF},   {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},
    {0xA960, 0xA97F},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},   {0xFE10, 0xFE19},
    {0xFE30, 0xFE6F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x1F004, 0x1F004},
    {0x1F0CF, 0x1F0CF}, {0x1F18E, 0x1F18E}, {0x1F191, 0x1F19A}, {0x1F200, 0x1F251},
    {0x1F300, 0x1F64F}, {0x1F680, 0x1F6FF}, {0x1F900, 0x1F9FF}, {0x1FA70, 0x1FAFF},
    {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD},
};

static int in_ranges(uint32_t cp, const struct range *r, size_t n)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cp < r[mid].lo)
			hi = mid;
		else if (cp > r[mid].hi)
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}

int out_cp_width(uint32_t cp)
{
	if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0))
		return 0;
	if (cp < 0x300)
		return 1;
	if (in_ranges(cp, zero_width, ARRAY_SIZE(zero_width)))
		return 0;
	if (in_ranges(cp, wide, ARRAY_SIZE(wide)))
		return 2;
	return 1;
}

size_t out_width(const char *s)
{
	size_t w = 0, n = strlen(s);
	while (n > 0) {
		uint32_t cp;
		int len = utf8_decode(s, n, &cp);
		if (len < 0) {
			w++;
			len = 1;
		} else {
			w += (size_t)out_cp_width(cp);
		}
		s += len;
		n -= (size_t)len;
	}
	return w;
}

char *out_clean(const char *s)
{
	struct buf b;
	size_t n = strlen(s);
	buf_init(&b, 0);
	buf_append(&b, "", 0);
	while (n > 0) {
		uint32_t cp;
		int len = utf8_decode(s, n, &cp);
		if (len < 0) {
			buf_puts(&b, "\xEF\xBF\xBD");
			len = 1;
		} else if (cp == '\t' || cp == '\n' || cp == '\r') {
			buf_puts(&b, " ");
		} else if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0)) {
			buf_puts(&b, "\xEF\xBF\xBD");
		} else {
			buf_append(&b, s, (size_t)len);
		}
		s += len;
		n -= (size_t)len;
	}
	return buf_steal(&b);
}

char *out_fit(const char *s, size_t width)
{
	if (out_width(s) <= width)
		return xstrdup(s);
	if (width == 0)
		return xstrdup("");
	/* keep code points while they fit in width-1, then add the ellipsis;
	 * zero-width marks after the last kept base character stay with it */
	size_t n = strlen(s), used = 0, end = 0, off = 0;
	while (off < n) {
		uint32_t cp;
		int len = utf8_decode(s + off, n - off, &cp);
		int w = len < 0 ? 1 : out_cp_width(cp);
		if (len < 0)
			len = 1;
		if (used + (size_t)w > width - 1)
			break;
		used += (size_t)w;
		off += (size_t)len;
		end = off;
	}
	return xasprintf("%.*s\xE2\x80\xA6", (int)end, s);
}

/* ---------------------------------------------------------------- dates */

void out_set_jalali(int on)
{
	jalali_on = on;
}

int out_jalali(void)
{
	return jalali_on;
}

int out_locale_is_fa(void)
{
	static const char *const vars[] = {"LC_ALL", "LC_TIME", "LANG"};
	for (size_t i = 0; i < ARRAY_SIZE(vars); i++) {
		const char *v = getenv(vars[i]);
		if (v && *v)
			return strncmp(v, "fa", 2) == 0;
	}
	return 0;
}

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char ch = (*p)[i];
		if (ch < '0' || ch > '9')
			return -1;
		v = v * 10 + (ch - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

int out_parse_rfc3339(const char *s, int64_t *ms)
{
	int y, mo, d, h, mi, sec, frac = 0, off = 0;
	const char *p = s;
	if (!s || digits(&p, 4, &y) < 0 || *p++ != '-' || digits(&p, 2, &mo) < 0 || *p++ != '-' ||
	    digits(&p, 2, &d) < 0 || (*p != 'T' && *p != 't' && *p != ' '))
		return -EINVAL;
	p++;
	if (digits(&p, 2, &h) < 0 || *p++ != ':' || digits(&p, 2, &mi) < 0 || *p++ != ':' ||
	    digits(&p, 2, &sec) < 0)
		return -EINVAL;
	if (*p == '.') {
		int scale = 100;
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		while (*p >= '0' && *p <= '9') {
			frac += (*p - '0') * scale;
			scale /= 10;
			p++;
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, oh, om;
		p++;
		if (digits(&p, 2, &oh) < 0 || *p++ != ':' || digits(&p, 2, &om) < 0 || oh > 23 ||
		    om > 59)
			return -EINVAL;
		off = sign * (oh * 60 + om);
	} else {
		return -EINVAL;
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	struct tm tm = {0};
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);
	*ms = ((int64_t)t - (int64_t)off * 60) * 1000 + frac;
	return 0;
}

char *out_digits(const char *s)
{
	if (!jalali_on)
		return xstrdup(s);
	struct buf b;
	buf_init(&b, 0);
	buf_append(&b, "", 0);
	for (; *s; s++) {
		if (*s >= '0' && *s <= '9') {
			char fa[2] = {(char)0xDB, (char)(0xB0 + (*s - '0'))};
			buf_append(&b, fa, 2);
		} else {
			buf_append(&b, s, 1);
		}
	}
	return buf_steal(&b);
}

char *out_time(const char *rfc3339)
{
	int64_t ms;
	if (!rfc3339 || !*rfc3339)
		return xstrdup("-");
	if (out_parse_rfc3339(rfc3339, &ms) < 0)
		return out_clean(rfc3339);
	time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	struct tm tm;
	if (!localtime_r(&t, &tm))
		return out_clean(rfc3339);
	char tmp[64];
	if (jalali_on) {
		int jy, jm, jd;
		jalali_from_gregorian(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, &jy, &jm, &jd);
		snprintf(tmp, sizeof tmp, "%04d/%02d/%02d %02d:%02d:%02d", jy, jm, jd, tm.tm_hour,
		         tm.tm_min, tm.tm_sec);
		return out_digits(tmp);
	}
	snprintf(tmp, sizeof tmp, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return xstrdup(tmp);
}

/* ---------------------------------------------------------------- tables */

struct out_table {
	int ncols;
	char **head;
	size_t *width; /* fixed after the first flush */
	size_t *max;   /* 0 = no cap */
	enum out_align *align;
	char **cells; /* rows * ncols, buffered */
	size_t nrows, caprows;
	size_t printed;
	int fixed;
};

struct out_table *out_table_new(const char *const *headers, int ncols)
{
	struct out_table *t = xcalloc(1, sizeof *t);
	t->ncols = ncols;
	t->head = xcalloc((size_t)ncols, sizeof *t->head);
	t->width = xcalloc((size_t)ncols, sizeof *t->width);
	t->max = xcalloc((size_t)ncols, sizeof *t->max);
	t->align = xcalloc((size_t)ncols, sizeof *t->align);
	for (int i = 0; i < ncols; i++)
		t->head[i] = xstrdup(headers[i]);
	return t;
}

static void drop_rows(struct out_table *t)
{
	for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	t->nrows = 0;
}

void out_table_free(struct out_table *t)
{
	if (!t)
		return;
	drop_rows(t);
	for (int i = 0; i < t->ncols; i++)
		free(t->head[i]);
	free(t->head);
	free(t->width);
	free(t->max);
	free(t->align);
	free(t->cells);
	free(t);
}

void out_table_align(struct out_table *t, int col, enum out_align a)
{
	t->align[col] = a;
}

void out_table_max(struct out_table *t, int col, size_t max)
{
	t->max[col] = max;
}

void out_table_add(struct out_table *t, const char *const *cells)
{
	if (t->nrows == t->caprows) {
		t->caprows = t->caprows ? t->caprows * 2 : 16;
		t->cells = xrealloc(t->cells, t->caprows * (size_t)t->ncols * sizeof *t->cells);
	}
	char **row = t->cells + t->nrows * (size_t)t->ncols;
	for (int i = 0; i < t->ncols; i++)
		row[i] = out_clean(cells[i] && *cells[i] ? cells[i] : "-");
	t->nrows++;
}

size_t out_table_rows(const struct out_table *t)
{
	return t->printed + t->nrows;
}

static void put_cell(FILE *f, const char *s, size_t width, enum out_align a, int last)
{
	char *fit = out_fit(s, width);
	size_t w = out_width(fit);
	size_t pad = w < width ? width - w : 0;
	if (a == OUT_RIGHT)
		fprintf(f, "%*s", (int)pad, "");
	fputs(fit, f);
	if (a == OUT_LEFT && !last)
		fprintf(f, "%*s", (int)pad, "");
	free(fit);
}

static void put_row(struct out_table *t, FILE *f, char *const *row)
{
	for (int i = 0; i < t->ncols; i++) {
		int last = i == t->ncols - 1;
		size_t w = t->width[i];
		/* an uncapped, left-aligned last column is never cut nor padded */
		if (last && t->align[i] == OUT_LEFT && !t->max[i])
			w = (size_t)-1 / 2;
		put_cell(f, row[i], w, t->align[i], last);
		if (!last)
			fputs("  ", f);
	}
	fputc('\n', f);
}

void out_table_flush(struct out_table *t, FILE *f)
{
	if (!t->fixed) {
		for (int i = 0; i < t->ncols; i++) {
			size_t w = out_width(t->head[i]);
			for (size_t r = 0; r < t->nrows; r++) {
				size_t cw = out_width(t->cells[r * (size_t)t->ncols + (size_t)i]);
				if (cw > w)
					w = cw;
			}
			if (t->max[i] && w > t->max[i])
				w = t->max[i];
			t->width[i] = w;
		}
		t->fixed = 1;
		put_row(t, f, t->head);
	}
	for (size_t r = 0; r < t->nrows; r++)
		put_row(t, f, t->cells + r * (size_t)t->ncols);
	t->printed += t->nrows;
	drop_rows(t);
	fflush(f);
}

void out_kv(FILE *f, int width, const char *key, const char *value)
{
	char *v = out_clean(value && *value ? value : "-");
	size_t w = out_width(key);
	fputs(key, f);
	fprintf(f, "%*s", (int)((size_t)width > w ? (size_t)width - w : 1), "");
	fputs(v, f);
	fputc('\n', f);
	free(v);
}
