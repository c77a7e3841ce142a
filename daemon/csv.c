/*
 * csv.c - the streaming RFC 4180 reader (csv.h): a byte-at-a-time state
 * machine that keeps the current record's fields in one growable buffer.
 *
 * Owns that buffer and the field tables; never sees a file or a socket (the
 * caller feeds bytes) and never interprets a field.  Limits: max_record
 * data bytes per record (the buffer never grows past it plus one NUL per
 * field), max_fields fields per record.
 */
#include "csv.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

enum state {
	S_FIELD,  /* at the start of a field */
	S_PLAIN,  /* inside an unquoted field */
	S_QUOTED, /* inside quotes */
	S_QUOTE2, /* a quote inside quotes: the end, or the first of "" */
	S_SKIP,   /* a cut record: drop everything up to the line end */
};

struct csv {
	char delim;
	size_t max_record, max_fields;

	enum state st;
	int open;       /* a record has started */
	int pending_cr; /* the record ended at a CR: swallow one LF */
	int qcr;        /* the last byte inside quotes was a CR */
	int bom_done;
	unsigned char bom[3];
	size_t nbom;

	char *buf; /* field bytes, each field NUL-terminated */
	size_t len, cap, data;
	size_t *off, *flen;
	const char **fp;
	size_t nf, fcap;

	uint64_t rows, line, rec_line;
	enum csv_error err;
	size_t err_field;
};

struct csv *csv_new(const struct csv_opts *o)
{
	char d = o && o->delim ? o->delim : ',';
	if (d == '"' || d == '\r' || d == '\n')
		return NULL;
	struct csv *p = xcalloc(1, sizeof *p);
	p->delim = d;
	p->max_record = o && o->max_record ? o->max_record : CSV_RECORD_MAX_DEFAULT;
	p->max_fields = o && o->max_fields ? o->max_fields : CSV_FIELDS_MAX_DEFAULT;
	p->line = 1;
	return p;
}

void csv_free(struct csv *p)
{
	if (!p)
		return;
	free(p->buf);
	free(p->off);
	free(p->flen);
	free(p->fp);
	free(p);
}

uint64_t csv_rows(const struct csv *p)
{
	return p->rows;
}

uint64_t csv_line(const struct csv *p)
{
	return p->line;
}

const char *csv_strerror(enum csv_error e)
{
	switch (e) {
	case CSV_OK:
		return "ok";
	case CSV_E_QUOTE:
		return "a quote inside an unquoted field, or text after a closing quote";
	case CSV_E_RECORD_TOO_LONG:
		return "record too long";
	case CSV_E_TOO_MANY_FIELDS:
		return "too many fields";
	case CSV_E_EOF_IN_QUOTE:
		return "the file ended inside a quoted field";
	}
	return "invalid";
}

static void set_err(struct csv *p, enum csv_error e)
{
	if (p->err == CSV_OK) {
		p->err = e;
		p->err_field = p->nf;
	}
}

static void put_raw(struct csv *p, char c)
{
	if (p->len == p->cap) {
		size_t limit = p->max_record + p->max_fields + 2;
		size_t n = p->cap ? p->cap * 2 : 256;
		p->cap = n > limit ? limit : n;
		p->buf = xrealloc(p->buf, p->cap);
	}
	p->buf[p->len++] = c;
}

/* A data byte of the current field. */
static void put(struct csv *p, char c)
{
	if (p->nf >= p->max_fields)
		return; /* dropped field (the error is set) */
	if (p->data >= p->max_record) {
		set_err(p, CSV_E_RECORD_TOO_LONG);
		if (p->st == S_QUOTED)
			p->st = S_SKIP; /* do not trust the quotes any more */
		return;
	}
	p->data++;
	put_raw(p, c);
}

static void field_begin(struct csv *p)
{
	p->open = 1;
	if (p->nf >= p->max_fields)
		return;
	if (p->nf == p->fcap) {
		p->fcap = p->fcap ? p->fcap * 2 : 16;
		p->off = xrealloc(p->off, p->fcap * sizeof *p->off);
		p->flen = xrealloc(p->flen, p->fcap * sizeof *p->flen);
		p->fp = xrealloc(p->fp, p->fcap * sizeof *p->fp);
	}
	p->off[p->nf] = p->len;
}

static void field_end(struct csv *p)
{
	if (p->nf >= p->max_fields) {
		set_err(p, CSV_E_TOO_MANY_FIELDS);
		return;
	}
	p->flen[p->nf] = p->len - p->off[p->nf];
	put_raw(p, '\0');
	p->nf++;
}

/* Deliver the record; returns fn's answer. */
static int record_end(struct csv *p, csv_record_fn fn, void *arg)
{
	for (size_t i = 0; i < p->nf; i++)
		p->fp[i] = p->buf + p->off[i];
	struct csv_record r = {.n = p->nf,
	                       .f = p->fp,
	                       .len = p->flen,
	                       .row = ++p->rows,
	                       .line = p->rec_line,
	                       .err = p->err,
	                       .err_field = p->err_field};
	int rc = fn ? fn(arg, &r) : 0;
	p->len = p->data = p->nf = 0;
	p->err = CSV_OK;
	p->err_field = 0;
	p->open = 0;
	p->st = S_FIELD;
	return rc;
}

/* The line ended (at c, which is '\n' or '\r'). */
static int line_end(struct csv *p, char c, csv_record_fn fn, void *arg)
{
	field_end(p);
	p->line++;
	p->pending_cr = c == '\r';
	return record_end(p, fn, arg);
}

/* One byte; returns non-zero when fn asked to stop (after a record). */
static int step(struct csv *p, char c, csv_record_fn fn, void *arg)
{
	if (p->pending_cr) {
		p->pending_cr = 0;
		if (c == '\n')
			return 0; /* the LF of a CRLF */
	}
	if (!p->open) {
		p->rec_line = p->line;
		field_begin(p);
		p->st = S_FIELD;
	}
	switch (p->st) {
	case S_FIELD:
		if (c == '"') {
			p->st = S_QUOTED;
			p->qcr = 0;
		} else if (c == p->delim) {
			field_end(p);
			field_begin(p);
		} else if (c == '\n' || c == '\r') {
			return line_end(p, c, fn, arg);
		} else {
			put(p, c);
			p->st = S_PLAIN;
		}
		return 0;
	case S_PLAIN:
		if (c == p->delim) {
			field_end(p);
			field_begin(p);
			p->st = S_FIELD;
		} else if (c == '\n' || c == '\r') {
			return line_end(p, c, fn, arg);
		} else {
			if (c == '"')
				set_err(p, CSV_E_QUOTE);
			put(p, c);
		}
		return 0;
	case S_QUOTED:
		if (c == '"') {
			p->st = S_QUOTE2;
		} else {
			/* CRLF, LF and a lone CR each count as one line */
			if ((c == '\n' && !p->qcr) || c == '\r')
				p->line++;
			p->qcr = c == '\r';
			put(p, c);
		}
		return 0;
	case S_QUOTE2:
		if (c == '"') {
			put(p, '"');
			p->st = S_QUOTED;
		} else if (c == p->delim) {
			field_end(p);
			field_begin(p);
			p->st = S_FIELD;
		} else if (c == '\n' || c == '\r') {
			p->st = S_PLAIN;
			return line_end(p, c, fn, arg);
		} else {
			set_err(p, CSV_E_QUOTE);
			put(p, c);
			p->st = S_PLAIN;
		}
		return 0;
	case S_SKIP:
		if (c == '\n' || c == '\r')
			return line_end(p, c, fn, arg);
		return 0;
	}
	return 0;
}

/* Feed one byte through the byte-order-mark check first. */
static int byte_in(struct csv *p, char c, csv_record_fn fn, void *arg)
{
	static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
	if (p->bom_done)
		return step(p, c, fn, arg);
	p->bom[p->nbom++] = (unsigned char)c;
	if (p->bom[p->nbom - 1] == bom[p->nbom - 1]) {
		if (p->nbom == 3) {
			p->bom_done = 1; /* dropped */
			p->nbom = 0;
		}
		return 0;
	}
	/* not a BOM: replay what was held */
	p->bom_done = 1;
	int rc = 0;
	for (size_t i = 0; i < p->nbom; i++)
		rc |= step(p, (char)p->bom[i], fn, arg);
	p->nbom = 0;
	return rc;
}

size_t csv_feed(struct csv *p, const char *data, size_t len, csv_record_fn fn, void *arg)
{
	for (size_t i = 0; i < len; i++)
		if (byte_in(p, data[i], fn, arg))
			return i + 1;
	return len;
}

int csv_finish(struct csv *p, csv_record_fn fn, void *arg)
{
	if (!p->bom_done) {
		p->bom_done = 1;
		for (size_t i = 0; i < p->nbom; i++)
			step(p, (char)p->bom[i], NULL, NULL);
		p->nbom = 0;
	}
	p->pending_cr = 0;
	if (!p->open)
		return 0;
	if (p->st == S_QUOTED)
		set_err(p, CSV_E_EOF_IN_QUOTE);
	field_end(p);
	return record_end(p, fn, arg);
}
