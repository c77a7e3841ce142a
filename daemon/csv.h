/*
 * csv.h - a streaming RFC 4180 reader: bytes go in as they arrive (any
 * chunking), complete records come out, memory stays bounded by one record.
 *
 * Accepted: fields separated by the delimiter (',' by default), optionally
 * quoted with '"' ("" inside quotes is one quote); quoted fields may hold
 * the delimiter, CR and LF; records end with CRLF, LF or a lone CR; a UTF-8
 * byte order mark at the very start is skipped; the last record may lack
 * its line end.  A blank line is a record of one empty field.
 *
 * Broken input never stops the reader: the record is delivered with err
 * set (and the fields as far as they were read), and reading goes on with
 * the next record.  A record longer than max_record bytes is cut there; if
 * the cut happens inside quotes (typically a stray quote that would
 * otherwise swallow the rest of the file), the record ends at the next line
 * end instead of at the closing quote.
 */
#ifndef CLUBD_CSV_H
#define CLUBD_CSV_H

#include <stddef.h>
#include <stdint.h>

#define CSV_RECORD_MAX_DEFAULT (64 * 1024)
#define CSV_FIELDS_MAX_DEFAULT 1024

enum csv_error {
	CSV_OK = 0,
	CSV_E_QUOTE,           /* a quote inside an unquoted field, or text after a closing quote */
	CSV_E_RECORD_TOO_LONG, /* more than max_record bytes */
	CSV_E_TOO_MANY_FIELDS, /* more than max_fields fields (the rest are dropped) */
	CSV_E_EOF_IN_QUOTE,    /* the input ended inside a quoted field */
};

struct csv_record {
	size_t n;             /* fields (>= 1) */
	const char *const *f; /* each NUL-terminated; may hold NUL bytes (use len) */
	const size_t *len;
	uint64_t row;       /* 1-based record number */
	uint64_t line;      /* 1-based line where the record starts */
	enum csv_error err; /* CSV_OK, or why the record is broken */
	size_t err_field;   /* 0-based field where it broke */
};

/* Called for every record (borrowed for the call).  Return 0 to go on, or
 * non-zero to make csv_feed() return right after this record. */
typedef int (*csv_record_fn)(void *arg, const struct csv_record *r);

struct csv_opts {
	char delim;        /* 0 = ',' */
	size_t max_record; /* 0 = CSV_RECORD_MAX_DEFAULT */
	size_t max_fields; /* 0 = CSV_FIELDS_MAX_DEFAULT */
};

struct csv;

/* o may be NULL (defaults).  A delimiter of '"', CR or LF is refused (NULL). */
struct csv *csv_new(const struct csv_opts *o);
void csv_free(struct csv *p);

/* Read data[0..len).  Returns how many bytes were consumed: len, or fewer
 * when fn asked to stop (feed the rest later). */
size_t csv_feed(struct csv *p, const char *data, size_t len, csv_record_fn fn, void *arg);
/* The input ended: deliver the last record if one is open.  Returns what fn
 * returned (0 when no record was open). */
int csv_finish(struct csv *p, csv_record_fn fn, void *arg);

/* Records delivered so far, and the current line number. */
uint64_t csv_rows(const struct csv *p);
uint64_t csv_line(const struct csv *p);

/* A short English reason ("a quote inside an unquoted field"). */
const char *csv_strerror(enum csv_error e);

#endif
