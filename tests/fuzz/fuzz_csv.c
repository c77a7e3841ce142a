/*
 * fuzz_csv.c - libFuzzer target for daemon/csv.c, the streaming CSV reader
 * behind POST /v1/contacts/import.
 *
 * The first three bytes choose the options (delimiter, a small or the
 * default record limit, a small or the default field limit) and a chunk
 * size; the rest is the CSV.  It is read twice, in one feed and in chunks,
 * and the two runs must deliver exactly the same records.  Besides crashes
 * and leaks it aborts when the reader breaks a promise: a record with no
 * field or with more fields than max_fields, more data bytes than
 * max_record, a field not NUL-terminated, row numbers that do not count up
 * from 1, line numbers that go backwards or pass the lines seen, or
 * csv_feed() consuming less than it was given without being asked to stop.
 *
 * The Makefile's fuzz rule links only FUZZ_SRC, so the reader is included
 * here (it has no dependency but util.c, which FUZZ_SRC has).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csv.c"

struct sum {
	uint64_t h;    /* FNV-1a over every record */
	uint64_t rows; /* last row number seen */
	uint64_t line; /* last start line seen */
	size_t max_record, max_fields;
	uint64_t lines_in; /* upper bound for line numbers */
};

static void mix(struct sum *s, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		s->h ^= b[i];
		s->h *= 1099511628211ULL;
	}
}

static int on_rec(void *arg, const struct csv_record *r)
{
	struct sum *s = arg;
	size_t data = 0;
	if (r->n == 0 || r->n > s->max_fields)
		abort();
	if (r->row != s->rows + 1)
		abort();
	if (r->line < s->line || r->line > s->lines_in)
		abort();
	s->rows = r->row;
	s->line = r->line;
	for (size_t i = 0; i < r->n; i++) {
		if (r->f[i][r->len[i]] != '\0')
			abort();
		data += r->len[i];
		mix(s, &r->len[i], sizeof r->len[i]);
		mix(s, r->f[i], r->len[i]);
	}
	if (data > s->max_record)
		abort();
	if (r->err != CSV_OK && (r->err_field > r->n || !csv_strerror(r->err)))
		abort();
	mix(s, &r->n, sizeof r->n);
	mix(s, &r->err, sizeof r->err);
	mix(s, &r->line, sizeof r->line);
	return 0;
}

static uint64_t run(const struct csv_opts *o, const char *p, size_t n, size_t chunk,
                    uint64_t lines_in)
{
	struct csv *c = csv_new(o);
	if (!c)
		return 0;
	struct sum s = {.h = 1469598103934665603ULL,
	                .max_record = o->max_record ? o->max_record : CSV_RECORD_MAX_DEFAULT,
	                .max_fields = o->max_fields ? o->max_fields : CSV_FIELDS_MAX_DEFAULT,
	                .lines_in = lines_in};
	for (size_t i = 0; i < n; i += chunk) {
		size_t k = n - i < chunk ? n - i : chunk;
		if (csv_feed(c, p + i, k, on_rec, &s) != k)
			abort();
	}
	csv_finish(c, on_rec, &s);
	if (csv_rows(c) != s.rows)
		abort();
	csv_free(c);
	return s.h ^ s.rows;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char delims[] = {',', ';', '\t', '|'};
	if (size < 3)
		return 0;
	struct csv_opts o = {.delim = delims[data[0] & 3],
	                     .max_record = (data[0] & 4) ? 1 + data[1] % 64 : 0,
	                     .max_fields = (data[0] & 8) ? 1 + data[1] / 64 : 0};
	size_t chunk = 1 + data[2] % 17;
	const char *p = (const char *)data + 3;
	size_t n = size - 3;
	uint64_t lines = 1;
	for (size_t i = 0; i < n; i++)
		lines += p[i] == '\n' || p[i] == '\r';
	if (run(&o, p, n, n ? n : 1, lines) != run(&o, p, n, chunk, lines))
		abort();
	return 0;
}
