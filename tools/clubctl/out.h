/*
 * out.h - clubctl's human output: display width of UTF-8 text (Persian,
 * combining marks, East Asian wide), aligned tables, key/value listings,
 * and dates in local time, Gregorian or Jalali with Persian digits.
 */
#ifndef CLUBCTL_OUT_H
#define CLUBCTL_OUT_H

#include <stdint.h>
#include <stdio.h>

/* Columns one code point takes in a terminal: 0, 1 or 2. */
int out_cp_width(uint32_t cp);
/* Display columns of a string (invalid bytes count 1 each). */
size_t out_width(const char *s);

/*
 * A copy of s safe to print on a terminal: TAB/LF/CR become a space, other
 * control characters (C0, DEL, C1) and invalid UTF-8 become U+FFFD.
 * Caller frees.
 */
char *out_clean(const char *s);
/* The longest prefix of s (clean text) fitting in width columns, with "…"
 * when cut; caller frees. */
char *out_fit(const char *s, size_t width);

/* Date style for out_time(): jalali (with Persian digits) or Gregorian. */
void out_set_jalali(int on);
int out_jalali(void);
/* Locale says Persian: LC_ALL, else LC_TIME, else LANG starts with "fa". */
int out_locale_is_fa(void);

/* Parse RFC 3339 ("2026-11-23T10:00:00.000Z", any offset) to ms since the
 * epoch.  0 or -EINVAL. */
int out_parse_rfc3339(const char *s, int64_t *ms);
/* An RFC 3339 time as "2026-11-23 13:30:00" in local time (or Jalali
 * "۱۴۰۵/۰۹/۰۲ ۱۳:۳۰:۰۰").  NULL/unparsable input gives "-" or the input.
 * Caller frees. */
char *out_time(const char *rfc3339);
/* ASCII digits to Persian (U+06F0..) when Jalali output is on; caller frees. */
char *out_digits(const char *s);

/* ---------------------------------------------------------------- tables */

enum out_align { OUT_LEFT, OUT_RIGHT };

struct out_table;

/* ncols headers (copied).  Rows are buffered until out_table_flush(). */
struct out_table *out_table_new(const char *const *headers, int ncols);
void out_table_free(struct out_table *t);
void out_table_align(struct out_table *t, int col, enum out_align a);
/* Cap a column at max display columns (cells are cut with "…"). */
void out_table_max(struct out_table *t, int col, size_t max);
/* Add a row of ncols cells (NULL = "-"); cells are cleaned and copied. */
void out_table_add(struct out_table *t, const char *const *cells);
/*
 * Print the buffered rows.  The first flush prints the header and fixes
 * the column widths from the rows seen so far; later flushes (a paged
 * listing) reuse them, cutting wider cells.  The last column is never
 * padded.
 */
void out_table_flush(struct out_table *t, FILE *f);
size_t out_table_rows(const struct out_table *t);

/* "key         value" with the key padded to width columns; value cleaned,
 * NULL or "" printed as "-". */
void out_kv(FILE *f, int width, const char *key, const char *value);

#endif
