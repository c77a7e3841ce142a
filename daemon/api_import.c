/*
 * api_import.c - contacts in and out in bulk: POST /v1/contacts/import
 * (CSV or NDJSON, streamed) and the streamed exports GET
 * /v1/contacts/export and GET /v1/segments/{id}/export (the latter routed
 * in api_segments.c).  docs/import.md is the user's guide.
 *
 * Import: the upload is read as it arrives (API_BODY_STREAM) through the
 * streaming CSV reader (csv.c) or a line splitter; each row becomes a
 * contact object, is checked by the one contact validator
 * (api_contact_pairs, shared with POST /v1/contacts) and written with
 * lua/contact_write.lua, many writes pipelined on the store's connection.
 * Rows are deduplicated by address through the reverse index (the script's
 * upsert), or only by the address kinds ?dedupe= names, or not at all.
 * A bad row is counted and reported (row, line, column, field, reason) and
 * the import goes on.  The upload is paused while IMPORT_PENDING_MAX writes
 * are in flight, so memory is one record plus the writes in flight,
 * whatever the file size.
 *
 * Export: a segment scan (segment.c) in whole-contact mode feeds a buffer
 * that the streamed answer (api_reply_stream) drains; the next batch is
 * asked for only when the buffer is empty, so a slow client slows the scan
 * instead of growing memory.
 *
 * Knows no key names.  Limits: CSV records 64 KiB and 1024 fields, NDJSON
 * lines 64 KiB, 64 mapped columns, 1000 errors listed (all counted),
 * IMPORT_PENDING_MAX writes in flight per import, the upload itself by
 * [api] max_bulk_body.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "api_audience.h"
#include "api_contacts.h"
#include "app.h"
#include "cdate.h"
#include "csv.h"
#include "log.h"
#include "segment.h"
#include "text.h"
#include "util.h"

#define IMPORT_PENDING_MAX 512
#define IMPORT_BATCH       100 /* rows per script call */
#define IMPORT_ERRORS_MAX  1000
#define IMPORT_LINE_MAX    65536
#define IMPORT_COLS_MAX    1024
#define IMPORT_MAP_MAX     64
#define IMPORT_CELL_MAX    4096
#define EXPORT_BATCH       500

/* ---------------------------------------------------------------- targets */

enum target {
	T_IGNORE = -1,
	T_NAME,
	T_FIRST,
	T_LAST,
	T_LANG,
	T_TZ,
	T_SMS,
	T_EMAIL,
	T_CHAT,
	T_TAGS,
	T_ATTRS, /* a JSON object of attributes */
	T_ATTR,  /* one attribute */
	T_PREFS, /* the preferences object */
};

/* Field names as the API and the errors spell them, and header synonyms. */
static const struct {
	const char *name;
	enum target t;
} target_names[] = {
    {"name", T_NAME},
    {"first_name", T_FIRST},
    {"last_name", T_LAST},
    {"lang", T_LANG},
    {"tz", T_TZ},
    {"addresses.sms", T_SMS},
    {"addresses.email", T_EMAIL},
    {"addresses.chat", T_CHAT},
    {"phone", T_SMS},
    {"sms", T_SMS},
    {"mobile", T_SMS},
    {"email", T_EMAIL},
    {"chat", T_CHAT},
    {"tags", T_TAGS},
    {"attrs", T_ATTRS},
    {"preferences", T_PREFS},
    /* Persian headers: name, last name, mobile, phone, email, tags */
    {"\xd9\x86\xd8\xa7\xd9\x85", T_NAME},
    {"\xd9\x86\xd8\xa7\xd9\x85_\xd8\xae\xd8\xa7\xd9\x86\xd9\x88\xd8\xa7\xd8\xaf\xda\xaf\xdb\x8c",
     T_LAST},
    {"\xd9\x85\xd9\x88\xd8\xa8\xd8\xa7\xdb\x8c\xd9\x84", T_SMS},
    {"\xd8\xaa\xd9\x84\xd9\x81\xd9\x86", T_SMS},
    {"\xd8\xa7\xdb\x8c\xd9\x85\xdb\x8c\xd9\x84", T_EMAIL},
    {"\xd8\xa8\xd8\xb1\xda\x86\xd8\xb3\xd8\xa8\xe2\x80\x8c\xd9\x87\xd8\xa7", T_TAGS},
};

static const char *target_field(enum target t)
{
	static const char *const f[] = {
	    "name", "first_name",    "last_name",       "lang",
	    "tz",   "addresses.sms", "addresses.email", "addresses.chat",
	    "tags", "attrs",         "attrs",           "preferences"};
	return t >= 0 && (size_t)t < ARRAY_SIZE(f) ? f[t] : "";
}

static int attr_key_ok(const char *k)
{
	size_t n = strlen(k);
	if (n < 1 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)k[i]) && !strchr("_.-", k[i]))
			return 0;
	return 1;
}

/* A field name (map side, or a normalised header) -> target; *attr is set
 * for "attrs.KEY".  -1 when unknown. */
static int target_parse(const char *s, const char **attr)
{
	*attr = NULL;
	if (strncmp(s, "attrs.", 6) == 0 && attr_key_ok(s + 6)) {
		*attr = s + 6;
		return T_ATTR;
	}
	for (size_t i = 0; i < ARRAY_SIZE(target_names); i++)
		if (strcmp(s, target_names[i].name) == 0)
			return target_names[i].t;
	return -1;
}

/* A header cell as a lookup key: trimmed, ASCII lower-case, runs of
 * spaces and dashes as '_' ("First Name" -> "first_name"). */
static char *header_key(const char *s, size_t n)
{
	char *t = xstrndup(s, n);
	char *norm = text_normalize(t);
	free(t);
	if (!norm)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; norm[i]; i++) {
		char c = norm[i];
		if (c == ' ' || c == '-') {
			if (o && norm[o - 1] != '_')
				norm[o++] = '_';
		} else {
			norm[o++] = c;
		}
	}
	norm[o] = '\0';
	return norm;
}

/* ---------------------------------------------------------------- state */

struct col {
	char *name; /* the header cell as given (for errors) */
	int target;
	char *attr; /* T_ATTR */
};

struct map_entry {
	int target;
	char *attr;
	char *column; /* header name as given */
	int found;
};

enum dedupe { DD_ANY, DD_NONE, DD_KINDS };

struct import {
	struct api_req *rq;
	int ndjson;
	struct csv *csv;
	struct buf line; /* NDJSON: the current line */
	int skipping;
	uint64_t lineno;

	struct map_entry map[IMPORT_MAP_MAX];
	size_t nmap;
	int header_done;
	struct col *cols;
	size_t ncols;
	enum dedupe dedupe;
	int kinds; /* DD_KINDS: bit per addr kind */
	uint64_t row_offset, line_offset;

	int pending, paused, ended;
	struct import_op *batch[IMPORT_BATCH]; /* rows waiting for the next script call */
	size_t nbatch;
	uint64_t rows, created, updated, failed;
	json_t *errors;
	json_t *ignored;
};

struct import_op {
	struct import *im;
	uint64_t row, line;
	struct argv pairs; /* kept for a dedupe retry */
	int retried;
	char mode[8]; /* create, upsert, patch */
	char *id;     /* the contact to write */
};

static void import_free(void *p)
{
	struct import *im = p;
	csv_free(im->csv);
	buf_free(&im->line);
	for (size_t i = 0; i < im->nmap; i++) {
		free(im->map[i].attr);
		free(im->map[i].column);
	}
	for (size_t i = 0; i < im->ncols; i++) {
		free(im->cols[i].name);
		free(im->cols[i].attr);
	}
	free(im->cols);
	json_decref(im->errors);
	json_decref(im->ignored);
	free(im);
}

/* Copy of s[0..n) fit for JSON: invalid UTF-8 bytes become '?', at most
 * max bytes. */
static json_t *jstr_safe(const char *s, size_t n, size_t max)
{
	if (n > max)
		n = max;
	char *t = xmalloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		int l = utf8_decode(s + i, n - i, &cp);
		if (l < 0 || cp == 0) {
			t[o++] = '?';
			i++;
			continue;
		}
		memcpy(t + o, s + i, (size_t)l);
		o += (size_t)l;
		i += (size_t)l;
	}
	t[o] = '\0';
	json_t *j = json_string(t);
	free(t);
	return j ? j : json_string("?");
}

static void row_error(struct import *im, uint64_t row, uint64_t line, const char *column,
                      const char *field, const char *reason)
{
	im->failed++;
	if (json_array_size(im->errors) >= IMPORT_ERRORS_MAX)
		return;
	json_t *e = json_object();
	json_object_set_new(e, "row", json_integer((json_int_t)(row + im->row_offset)));
	json_object_set_new(e, "line", json_integer((json_int_t)(line + im->line_offset)));
	json_object_set_new(e, "column",
	                    column ? jstr_safe(column, strlen(column), 200) : json_null());
	json_object_set_new(e, "field",
	                    field && *field ? jstr_safe(field, strlen(field), 200) : json_null());
	json_object_set_new(e, "reason", jstr_safe(reason, strlen(reason), 300));
	json_array_append_new(im->errors, e);
}

static void maybe_finish(struct import *im)
{
	if (!im->ended || im->pending > 0 || api_replied(im->rq))
		return;
	json_t *o = json_object();
	json_object_set_new(o, "rows", json_integer((json_int_t)im->rows));
	json_object_set_new(o, "created", json_integer((json_int_t)im->created));
	json_object_set_new(o, "updated", json_integer((json_int_t)im->updated));
	json_object_set_new(o, "failed", json_integer((json_int_t)im->failed));
	json_object_set_new(o, "error_count", json_integer((json_int_t)im->failed));
	json_object_set_new(o, "errors", json_incref(im->errors));
	json_t *cols = json_object();
	for (size_t i = 0; i < im->ncols; i++) {
		const struct col *c = &im->cols[i];
		if (c->target == T_IGNORE)
			continue;
		char f[80];
		if (c->target == T_ATTR)
			snprintf(f, sizeof f, "attrs.%s", c->attr);
		else
			snprintf(f, sizeof f, "%s", target_field((enum target)c->target));
		json_object_set_new(cols, c->name, json_string(f));
	}
	json_object_set_new(o, "columns", cols);
	json_object_set_new(o, "ignored_columns", json_incref(im->ignored));
	log_info("api", "event=import rows=%llu created=%llu updated=%llu failed=%llu token=%s",
	         (unsigned long long)im->rows, (unsigned long long)im->created,
	         (unsigned long long)im->updated, (unsigned long long)im->failed,
	         log_q(api_token_name(im->rq)));
	api_reply_json(im->rq, 200, o);
}

/* ---------------------------------------------------------------- writes */

static void write_op(struct import_op *op, const char *mode, const char *id);
static void batch_flush(struct import *im);

static void on_written(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct import_op *op = arg;
	struct import *im = op->im;
	struct api_req *rq = im->rq;
	const char *st = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0
	                     ? reply_str(rep->element[0])
	                     : NULL;
	const char *kind = st && strcmp(st, "taken") == 0 && rep->elements >= 3
	                       ? reply_str(rep->element[1])
	                       : NULL;
	int k = kind ? addr_kind_parse(kind) : -1;
	if (!api_replied(rq) && kind && im->dedupe == DD_KINDS && k >= 0 &&
	    (im->kinds & (1 << k)) && !op->retried && reply_str(rep->element[2])) {
		/* the address we dedupe by belongs to a contact: update that one */
		op->retried = 1;
		write_op(op, "patch", reply_str(rep->element[2]));
		return; /* op stays pending */
	}
	im->pending--;
	if (!rep || rep->type == REDIS_REPLY_ERROR) {
		row_error(im, op->row, op->line, NULL, NULL, "store unavailable; row not written");
	} else if (st && strcmp(st, "ok") == 0) {
		if (rep->elements > 2 && rep->element[2]->type == REDIS_REPLY_INTEGER &&
		    rep->element[2]->integer)
			im->created++;
		else
			im->updated++;
	} else if (kind) {
		char field[40];
		snprintf(field, sizeof field, "addresses.%s", kind);
		row_error(im, op->row, op->line, NULL, field,
		          "this address belongs to another contact");
	} else if (st && strcmp(st, "not_found") == 0) {
		row_error(im, op->row, op->line, NULL, "id", "no such contact");
	} else {
		row_error(im, op->row, op->line, NULL, NULL, "not written");
	}
	argv_free(&op->pairs);
	free(op->id);
	free(op);
	if (im->paused && im->pending < IMPORT_PENDING_MAX / 2) {
		im->paused = 0;
		api_resume(rq);
	}
	maybe_finish(im);
	api_release(rq);
}

/* The answers of one batch: each row as if it had been written alone. */
struct batch_call {
	struct import *im;
	size_t n;
	struct import_op *op[IMPORT_BATCH];
};

static void on_batch_written(struct redis *r, redisReply *rep, void *arg)
{
	struct batch_call *b = arg;
	struct import *im = b->im;
	int ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == b->n;
	api_hold(im->rq); /* the last row's answer may release the request */
	for (size_t i = 0; i < b->n; i++)
		on_written(
		    r, ok ? rep->element[i] : (rep && rep->type == REDIS_REPLY_ERROR ? rep : NULL),
		    b->op[i]);
	free(b);
	batch_flush(im); /* dedupe retries queued by the answers */
	api_release(im->rq);
}

/* Send the waiting rows as one lua/contact_write.lua 'batch' call. */
static void batch_flush(struct import *im)
{
	if (im->nbatch == 0)
		return;
	struct app *app = api_app(im->rq);
	struct batch_call *b = xmalloc(sizeof *b);
	b->im = im;
	b->n = im->nbatch;
	memcpy(b->op, im->batch, im->nbatch * sizeof *b->op);
	im->nbatch = 0;
	struct argv a;
	argv_init(&a);
	argv_add(&a, "batch");
	argv_addll(&a, now_ms());
	for (size_t i = 0; i < b->n; i++) {
		const struct import_op *op = b->op[i];
		argv_addll(&a, 2 + op->pairs.n);
		argv_add(&a, op->mode);
		argv_add(&a, op->id);
		for (int k = 0; k < op->pairs.n; k++)
			argv_addn(&a, op->pairs.v[k], op->pairs.len[k]);
	}
	store_eval(app->st, SCRIPT_CONTACT_WRITE, &a, on_batch_written, b);
	argv_free(&a);
}

/* Queue the row's write; a full batch leaves at once, the rest when the
 * chunk, the upload or a batch's answers are done (batch_flush). */
static void write_op(struct import_op *op, const char *mode, const char *id)
{
	struct import *im = op->im;
	snprintf(op->mode, sizeof op->mode, "%s", mode);
	free(op->id);
	op->id = xstrdup(id);
	im->batch[im->nbatch++] = op;
	if (im->nbatch == IMPORT_BATCH)
		batch_flush(im);
}

/* Validate a contact object and queue its write.  id: patch that contact
 * (NDJSON lines with "id"), or NULL. */
static void submit(struct import *im, const json_t *contact, const char *id, uint64_t row,
                   uint64_t line, const struct col *cols, size_t ncols)
{
	struct app *app = api_app(im->rq);
	struct contact_verr e;
	struct import_op *op = xcalloc(1, sizeof *op);
	op->im = im;
	op->row = row;
	op->line = line;
	argv_init(&op->pairs);
	if (api_contact_pairs(contact, 1, id != NULL, app->cfg, &op->pairs, &e) < 0) {
		/* name the column the field came from */
		const char *column = NULL;
		for (size_t i = 0; i < ncols && !column; i++) {
			char f[80];
			if (cols[i].target == T_ATTR)
				snprintf(f, sizeof f, "attrs.%s", cols[i].attr);
			else if (cols[i].target >= 0)
				snprintf(f, sizeof f, "%s",
				         target_field((enum target)cols[i].target));
			else
				continue;
			size_t fl = strlen(f);
			if (strcmp(e.field, f) == 0 || (strncmp(e.field, f, fl) == 0 &&
			                                (e.field[fl] == '.' || e.field[fl] == '[')))
				column = cols[i].name;
		}
		row_error(im, row, line, column, e.field, e.reason);
		argv_free(&op->pairs);
		free(op);
		return;
	}
	im->pending++;
	api_hold(im->rq);
	char nid[ID_LEN + 1];
	if (id) {
		write_op(op, "patch", id);
		return;
	}
	id_new(nid, now_ms());
	write_op(op, im->dedupe == DD_ANY ? "upsert" : "create", nid);
}

/* ---------------------------------------------------------------- rows */

static void trim(const char **s, size_t *n)
{
	while (*n && (**s == ' ' || **s == '\t'))
		(*s)++, (*n)--;
	while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

/* A cell that looks like a date becomes its cdate.h form ("1369/2/27" ->
 * "j:1369-02-27"); *bad when it looks like one but is impossible. */
static json_t *attr_value(const char *s, size_t n, int date_attr, int *bad)
{
	char *t = xstrndup(s, n);
	struct cdate cd;
	json_t *v = NULL;
	*bad = 0;
	if (segment_date_lenient(t, &cd) == 0) {
		char out[32];
		cdate_format(&cd, out, sizeof out);
		v = json_string(out);
	} else if (date_attr) {
		*bad = 1;
	} else {
		v = json_string(t);
	}
	free(t);
	return v;
}

/*
 * One row (cells by column) into a contact object.  0, or -1 after
 * reporting the row's error.
 */
static int row_contact(struct import *im, const char *const *v, const size_t *len, size_t n,
                       uint64_t row, uint64_t line, json_t **out)
{
	json_t *o = json_object();
	for (size_t i = 0; i < im->ncols; i++) {
		const struct col *c = &im->cols[i];
		if (c->target == T_IGNORE || i >= n)
			continue;
		const char *s = v[i];
		size_t l = len[i];
		trim(&s, &l);
		if (l == 0)
			continue; /* an empty cell leaves the field alone */
		char fieldbuf[80];
		const char *field = target_field((enum target)c->target);
		if (c->target == T_ATTR) {
			snprintf(fieldbuf, sizeof fieldbuf, "attrs.%s", c->attr);
			field = fieldbuf;
		}
		if (!utf8_valid(s, l) || memchr(s, '\0', l)) {
			row_error(im, row, line, c->name, field, "not valid UTF-8 text");
			goto fail;
		}
		if (l > IMPORT_CELL_MAX) {
			row_error(im, row, line, c->name, field, "cell longer than 4096 bytes");
			goto fail;
		}
		json_t *x;
		int bad = 0;
		switch (c->target) {
		case T_NAME:
		case T_FIRST:
		case T_LAST:
		case T_LANG:
		case T_TZ:
			json_object_set_new(o, field, json_stringn(s, l));
			break;
		case T_SMS:
		case T_EMAIL:
		case T_CHAT: {
			json_t *a = json_object_get(o, "addresses");
			if (!a) {
				a = json_object();
				json_object_set_new(o, "addresses", a);
			}
			json_object_set_new(a, field + strlen("addresses."), json_stringn(s, l));
			break;
		}
		case T_TAGS: {
			json_t *tags = NULL;
			if (s[0] == '[') {
				tags = json_loadb(s, l, 0, NULL);
				if (!json_is_array(tags)) {
					json_decref(tags);
					row_error(
					    im, row, line, c->name, field,
					    "a JSON array of strings, or tags separated by ';'");
					goto fail;
				}
			} else {
				tags = json_array();
				for (size_t p = 0; p < l;) {
					const char *semi = memchr(s + p, ';', l - p);
					size_t e = semi ? (size_t)(semi - s) : l;
					const char *t = s + p;
					size_t tl = e - p;
					trim(&t, &tl);
					if (tl)
						json_array_append_new(tags, json_stringn(t, tl));
					p = e + 1;
				}
			}
			json_object_set_new(o, "tags", tags);
			break;
		}
		case T_ATTRS:
		case T_PREFS:
			x = json_loadb(s, l, 0, NULL);
			if (!json_is_object(x)) {
				json_decref(x);
				row_error(im, row, line, c->name, field, "a JSON object");
				goto fail;
			}
			if (c->target == T_PREFS) {
				json_object_set_new(o, "preferences", x);
			} else {
				json_t *attrs = json_object_get(o, "attrs");
				if (attrs)
					json_object_update(attrs, x);
				else
					json_object_set(o, "attrs", x);
				json_decref(x);
			}
			break;
		case T_ATTR: {
			json_t *attrs = json_object_get(o, "attrs");
			if (!attrs) {
				attrs = json_object();
				json_object_set_new(o, "attrs", attrs);
			}
			int date_attr =
			    strcmp(c->attr, "birthday") == 0 || strcmp(c->attr, "joined") == 0;
			x = attr_value(s, l, date_attr, &bad);
			if (bad) {
				row_error(im, row, line, c->name, field,
				          "not a date (1990-05-17, 1369/02/27, j:1369-02-27, "
				          "--05-17)");
				goto fail;
			}
			json_object_set_new(attrs, c->attr, x);
			break;
		}
		default:
			break;
		}
	}
	if (json_object_size(o) == 0) {
		row_error(im, row, line, NULL, NULL, "no contact field in this row");
		goto fail;
	}
	*out = o;
	return 0;
fail:
	json_decref(o);
	return -1;
}

/* ---------------------------------------------------------------- header */

static void col_set(struct col *c, const char *name, size_t n, int target, const char *attr)
{
	c->name = xstrndup(name, n);
	c->target = target;
	c->attr = attr ? xstrdup(attr) : NULL;
}

/*
 * Build the column table from the header cells.  0, or -1 after answering
 * 400 (a mapped column missing, nothing mapped).
 */
static int header(struct import *im, const char *const *v, const size_t *len, size_t n)
{
	im->cols = xcalloc(n ? n : 1, sizeof *im->cols);
	im->ncols = n;
	for (size_t i = 0; i < n; i++) {
		im->cols[i].target = T_IGNORE;
		if (!utf8_valid(v[i], len[i])) {
			api_reply_error(im->rq, 400, "invalid_field", "header",
			                "header cell %zu is not valid UTF-8", i + 1);
			return -1;
		}
	}
	/* explicit map first: field:column */
	for (size_t m = 0; m < im->nmap; m++) {
		struct map_entry *e = &im->map[m];
		for (size_t i = 0; i < n && !e->found; i++) {
			if (im->cols[i].name || len[i] != strlen(e->column) ||
			    memcmp(v[i], e->column, len[i]) != 0)
				continue;
			col_set(&im->cols[i], v[i], len[i], e->target, e->attr);
			e->found = 1;
		}
		if (!e->found) {
			api_reply_error(im->rq, 400, "invalid_field", "map",
			                "column %s is not in the header", log_q(e->column));
			return -1;
		}
	}
	/* then the header names themselves */
	int mapped = 0;
	for (size_t i = 0; i < n; i++) {
		struct col *c = &im->cols[i];
		if (c->name) {
			mapped++;
			continue;
		}
		char *key = header_key(v[i], len[i]);
		const char *attr = NULL;
		int t = key ? target_parse(key, &attr) : -1;
		/* a field already mapped (explicitly, or by an earlier column) is
		 * not mapped twice */
		int dup = 0;
		for (size_t k = 0; k < i && t >= 0; k++)
			dup |= im->cols[k].target == t &&
			       (t != T_ATTR || strcmp(im->cols[k].attr, attr) == 0);
		for (size_t m = 0; m < im->nmap && t >= 0; m++)
			dup |= im->map[m].target == t &&
			       (t != T_ATTR || strcmp(im->map[m].attr, attr) == 0);
		if (t >= 0 && !dup) {
			col_set(c, v[i], len[i], t, attr);
			mapped++;
		} else {
			col_set(c, v[i], len[i], T_IGNORE, NULL);
			json_array_append_new(im->ignored, jstr_safe(v[i], len[i], 200));
		}
		free(key);
	}
	if (!mapped) {
		api_reply_error(im->rq, 400, "invalid_field", "header",
		                "no column maps to a contact field (name, phone, email, chat, "
		                "tags, attrs.KEY, ...); give ?map=field:column");
		return -1;
	}
	im->header_done = 1;
	return 0;
}

/* ---------------------------------------------------------------- CSV */

static int on_record(void *arg, const struct csv_record *r)
{
	struct import *im = arg;
	if (api_replied(im->rq))
		return 1;
	if (!im->header_done) {
		if (r->n == 1 && r->len[0] == 0)
			return 0; /* blank lines before the header */
		if (r->err) {
			api_reply_error(im->rq, 400, "invalid_field", "header",
			                "the header row is broken: %s", csv_strerror(r->err));
			return 1;
		}
		if (header(im, r->f, r->len, r->n) < 0)
			return 1;
		return 0;
	}
	if (r->n == 1 && r->len[0] == 0 && !r->err)
		return 0; /* a blank line */
	im->rows++;
	if (r->err) {
		const char *column = r->err_field < im->ncols ? im->cols[r->err_field].name : NULL;
		row_error(im, r->row, r->line, column, NULL, csv_strerror(r->err));
	} else if (r->n > im->ncols) {
		char why[96];
		snprintf(why, sizeof why, "%zu fields, the header has %zu", r->n, im->ncols);
		row_error(im, r->row, r->line, NULL, NULL, why);
	} else {
		json_t *c;
		if (row_contact(im, r->f, r->len, r->n, r->row, r->line, &c) == 0) {
			submit(im, c, NULL, r->row, r->line, im->cols, im->ncols);
			json_decref(c);
		}
	}
	/* stop feeding while too many writes are in flight */
	return im->pending >= IMPORT_PENDING_MAX;
}

/* ---------------------------------------------------------------- NDJSON */

/* A flat object with ?map=: its keys play the header's part. */
static void ndjson_flat(struct import *im, json_t *o, uint64_t row)
{
	if (!im->header_done) {
		/* the column table: the mapped keys (only those are read) */
		im->cols = xcalloc(im->nmap, sizeof *im->cols);
		im->ncols = im->nmap;
		for (size_t i = 0; i < im->nmap; i++)
			col_set(&im->cols[i], im->map[i].column, strlen(im->map[i].column),
			        im->map[i].target, im->map[i].attr);
		im->header_done = 1;
	}
	const char **v = xcalloc(im->ncols ? im->ncols : 1, sizeof *v);
	size_t *len = xcalloc(im->ncols ? im->ncols : 1, sizeof *len);
	char **owned = xcalloc(im->ncols ? im->ncols : 1, sizeof *owned);
	for (size_t i = 0; i < im->ncols; i++) {
		json_t *x = json_object_get(o, im->cols[i].name);
		if (json_is_string(x)) {
			v[i] = json_string_value(x);
			len[i] = json_string_length(x);
		} else if (x && !json_is_null(x)) {
			owned[i] = json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY);
			v[i] = owned[i] ? owned[i] : "";
			len[i] = strlen(v[i]);
		} else {
			v[i] = "";
		}
	}
	json_t *c;
	if (row_contact(im, v, len, im->ncols, row, row, &c) == 0) {
		submit(im, c, NULL, row, row, im->cols, im->ncols);
		json_decref(c);
	}
	for (size_t i = 0; i < im->ncols; i++)
		free(owned[i]);
	free(owned);
	free(v);
	free(len);
}

static void ndjson_line(struct import *im, const char *s, size_t n)
{
	while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	while (n > 0 && (*s == ' ' || *s == '\t'))
		s++, n--;
	if (n == 0)
		return;
	uint64_t row = im->lineno;
	im->rows++;
	json_error_t jerr;
	json_t *o = json_loadb(s, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(o)) {
		char reason[200];
		if (o)
			snprintf(reason, sizeof reason, "a line must be a JSON object");
		else
			snprintf(reason, sizeof reason, "invalid JSON at column %d: %s",
			         jerr.column, jerr.text);
		row_error(im, row, row, NULL, NULL, reason);
		json_decref(o);
		return;
	}
	if (im->nmap) {
		ndjson_flat(im, o, row);
	} else {
		const json_t *idj = json_object_get(o, "id");
		if (idj && !(json_is_string(idj) && id_valid(json_string_value(idj))))
			row_error(im, row, row, NULL, "id", "not a contact id");
		else
			submit(im, o, idj ? json_string_value(idj) : NULL, row, row, NULL, 0);
	}
	json_decref(o);
}

/* ---------------------------------------------------------------- upload */

static int parse_map(struct import *im, const char *q)
{
	const char *p = q;
	while (*p) {
		size_t l = strcspn(p, ",");
		char *pair = xstrndup(p, l);
		p += l;
		if (*p == ',')
			p++;
		char *colon = strchr(pair, ':');
		if (l == 0) {
			free(pair);
			continue;
		}
		if (!colon || colon == pair || !colon[1]) {
			api_reply_error(im->rq, 400, "invalid_field", "map",
			                "map is field:column pairs separated by commas "
			                "(phone:mobile,first_name:name)");
			free(pair);
			return -1;
		}
		*colon = '\0';
		const char *attr;
		int t = target_parse(pair, &attr);
		if (t < 0) {
			api_reply_error(im->rq, 400, "invalid_field", "map",
			                "unknown field %s (name, first_name, last_name, lang, tz, "
			                "phone, email, chat, tags, attrs, attrs.KEY, preferences)",
			                log_q(pair));
			free(pair);
			return -1;
		}
		if (im->nmap == IMPORT_MAP_MAX) {
			api_reply_error(im->rq, 400, "invalid_field", "map", "at most %d columns",
			                IMPORT_MAP_MAX);
			free(pair);
			return -1;
		}
		struct map_entry *e = &im->map[im->nmap++];
		e->target = t;
		e->attr = attr ? xstrdup(attr) : NULL;
		e->column = xstrdup(colon + 1);
		free(pair);
	}
	return 0;
}

static int parse_dedupe(struct import *im, const char *q)
{
	if (!q || strcmp(q, "any") == 0 || strcmp(q, "address") == 0) {
		im->dedupe = DD_ANY;
		return 0;
	}
	if (strcmp(q, "none") == 0) {
		im->dedupe = DD_NONE;
		return 0;
	}
	im->dedupe = DD_KINDS;
	for (const char *p = q; *p;) {
		size_t l = strcspn(p, ",");
		char k[16];
		snprintf(k, sizeof k, "%.*s", (int)(l < 15 ? l : 15), p);
		int kind = strcmp(k, "phone") == 0 ? ADDR_SMS : l < 15 ? addr_kind_parse(k) : -1;
		if (kind < 0) {
			api_reply_error(im->rq, 400, "invalid_field", "dedupe",
			                "dedupe is any, none, or a list of phone, email, chat");
			return -1;
		}
		im->kinds |= 1 << kind;
		p += l;
		if (*p == ',')
			p++;
	}
	return 0;
}

static void h_import(struct api_req *rq)
{
	struct import *im = xcalloc(1, sizeof *im);
	im->rq = rq;
	im->errors = json_array();
	im->ignored = json_array();
	api_set_data(rq, im, import_free);
	const char *f = api_query(rq, "format");
	if (f && strcmp(f, "csv") != 0 && strcmp(f, "ndjson") != 0) {
		api_reply_error(rq, 400, "invalid_field", "format", "format is csv or ndjson");
		return;
	}
	im->ndjson = f && strcmp(f, "ndjson") == 0;
	const char *d = api_query(rq, "delimiter");
	struct csv_opts o = {.delim = ','};
	if (d) {
		if (strcmp(d, "tab") == 0 || strcmp(d, "\t") == 0)
			o.delim = '\t';
		else if (strlen(d) == 1 && strchr(",;|", d[0]))
			o.delim = d[0];
		else {
			api_reply_error(rq, 400, "invalid_field", "delimiter",
			                "delimiter is , ; | or tab");
			return;
		}
	}
	const char *m = api_query(rq, "map");
	if (m && parse_map(im, m) < 0)
		return;
	if (parse_dedupe(im, api_query(rq, "dedupe")) < 0)
		return;
	const char *ro = api_query(rq, "row_offset"), *lo = api_query(rq, "line_offset");
	int64_t v;
	if (ro) {
		if (parse_i64(ro, 0, INT64_MAX / 2, &v) < 0) {
			api_reply_error(rq, 400, "invalid_field", "row_offset",
			                "a non-negative integer");
			return;
		}
		im->row_offset = (uint64_t)v;
	}
	if (lo) {
		if (parse_i64(lo, 0, INT64_MAX / 2, &v) < 0) {
			api_reply_error(rq, 400, "invalid_field", "line_offset",
			                "a non-negative integer");
			return;
		}
		im->line_offset = (uint64_t)v;
	}
	if (!api_store_ready(rq))
		return;
	if (im->ndjson) {
		buf_init(&im->line, IMPORT_LINE_MAX);
	} else {
		o.max_fields = IMPORT_COLS_MAX;
		im->csv = csv_new(&o);
	}
}

static long import_chunk_rows(struct api_req *rq, const char *data, size_t len)
{
	struct import *im = api_data(rq);
	struct app *app = api_app(rq);
	if (api_replied(rq))
		return (long)len;
	/* a long import is fine while it progresses: the deadline counts
	 * from the last chunk */
	api_set_timeout(rq, app->cfg->api_request_timeout_ms);
	if (im->pending >= IMPORT_PENDING_MAX) {
		im->paused = 1;
		return 0;
	}
	if (!im->ndjson) {
		size_t used = csv_feed(im->csv, data, len, on_record, im);
		if (api_replied(rq))
			return -1;
		if (used < len)
			im->paused = 1; /* resumed from on_written */
		return (long)used;
	}
	size_t i = 0;
	while (i < len) {
		if (im->pending >= IMPORT_PENDING_MAX) {
			im->paused = 1;
			return (long)i;
		}
		const char *nl = memchr(data + i, '\n', len - i);
		size_t take = nl ? (size_t)(nl - (data + i)) : len - i;
		if (!im->skipping && buf_append(&im->line, data + i, take) < 0) {
			im->skipping = 1;
			buf_reset(&im->line);
		}
		i += take;
		if (!nl)
			break;
		i++;
		im->lineno++;
		if (im->skipping) {
			im->rows++;
			row_error(im, im->lineno, im->lineno, NULL, NULL,
			          "line longer than 64 KiB");
		} else {
			ndjson_line(im, im->line.p ? im->line.p : "", im->line.len);
		}
		im->skipping = 0;
		buf_reset(&im->line);
	}
	return (long)len;
}

static long import_chunk(struct api_req *rq, const char *data, size_t len)
{
	long r = import_chunk_rows(rq, data, len);
	batch_flush(api_data(rq)); /* the rows of this chunk, written together */
	return r;
}

static void import_end_rows(struct api_req *rq)
{
	struct import *im = api_data(rq);
	if (api_replied(rq))
		return;
	if (im->ndjson) {
		if (im->skipping || im->line.len > 0) {
			im->lineno++;
			if (im->skipping) {
				im->rows++;
				row_error(im, im->lineno, im->lineno, NULL, NULL,
				          "line longer than 64 KiB");
			} else {
				ndjson_line(im, im->line.p, im->line.len);
			}
		}
	} else {
		csv_finish(im->csv, on_record, im);
		if (api_replied(rq))
			return;
		if (!im->header_done) {
			api_reply_error(rq, 400, "invalid_field", "header",
			                "the CSV is empty: the first row must name the columns");
			return;
		}
	}
	im->ended = 1;
}

static void import_end(struct api_req *rq)
{
	struct import *im = api_data(rq);
	import_end_rows(rq);
	batch_flush(im); /* before maybe_finish: every row is pending or done */
	if (im->ended)
		maybe_finish(im);
}

/* ---------------------------------------------------------------- export */

struct export
{
	struct api_req *rq;
	struct segment *s;
	struct segment_scan *sc;
	int csv;
	struct buf out;
	size_t off;
	int waiting; /* a batch was asked for */
	int done, err;
	uint64_t rows;
};

static void export_free(void *p)
{
	struct export *x = p;
	segment_scan_free(x->sc);
	segment_free(x->s);
	buf_free(&x->out);
	free(x);
}

static const char *const export_cols[] = {
    "id",   "name", "first_name", "last_name", "phone",       "email",      "chat",
    "lang", "tz",   "tags",       "attrs",     "preferences", "created_at", "updated_at"};

static void csv_cell(struct buf *b, const char *s, size_t n)
{
	int quote = n > 0 && (s[0] == ' ' || s[n - 1] == ' ');
	for (size_t i = 0; i < n && !quote; i++)
		quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
	if (!quote) {
		buf_append(b, s, n);
		return;
	}
	buf_append(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"')
			buf_append(b, "\"", 1);
		buf_append(b, s + i, 1);
	}
	buf_append(b, "\"", 1);
}

static void csv_json_cell(struct buf *b, const json_t *v, int empty_if_empty)
{
	if (!v || json_is_null(v) ||
	    (empty_if_empty && json_object_size(v) == 0 && json_is_object(v))) {
		return;
	}
	if (json_is_string(v)) {
		csv_cell(b, json_string_value(v), json_string_length(v));
		return;
	}
	char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (t)
		csv_cell(b, t, strlen(t));
	free(t);
}

static void csv_row(struct buf *b, const json_t *c)
{
	const json_t *ad = json_object_get(c, "addresses");
	const json_t *tags = json_object_get(c, "tags");
	for (size_t i = 0; i < ARRAY_SIZE(export_cols); i++) {
		const char *k = export_cols[i];
		if (i)
			buf_append(b, ",", 1);
		if (strcmp(k, "phone") == 0)
			csv_json_cell(b, json_object_get(ad, "sms"), 0);
		else if (strcmp(k, "email") == 0 || strcmp(k, "chat") == 0)
			csv_json_cell(b, json_object_get(ad, k), 0);
		else if (strcmp(k, "tags") == 0) {
			/* "a;b" unless a tag holds ';' or starts with '[' */
			int plain = 1;
			size_t t;
			json_t *x;
			json_array_foreach(tags, t, x)
			{
				const char *s = json_string_value(x);
				plain &= s && !strchr(s, ';') && s[0] != '[';
			}
			if (!plain) {
				csv_json_cell(b, tags, 0);
			} else {
				struct buf j;
				buf_init(&j, 0);
				json_array_foreach(tags, t, x)
				{
					if (t)
						buf_append(&j, ";", 1);
					buf_puts(&j, json_string_value(x));
				}
				csv_cell(b, j.p ? j.p : "", j.len);
				buf_free(&j);
			}
		} else if (strcmp(k, "attrs") == 0 || strcmp(k, "preferences") == 0) {
			csv_json_cell(b, json_object_get(c, k), 1);
		} else {
			csv_json_cell(b, json_object_get(c, k), 0);
		}
	}
	buf_append(b, "\r\n", 2);
}

static void on_export_batch(struct segment_scan *sc, void *arg, const char *const *ids, size_t n,
                            const char *cursor, int done, int err)
{
	(void)ids;
	(void)cursor;
	struct export *x = arg;
	x->waiting = 0;
	if (err) {
		log_warnx("api", "event=export_failed rows=%llu", (unsigned long long)x->rows);
		x->err = 1;
	} else {
		for (size_t i = 0; i < n; i++) {
			const json_t *c = segment_scan_contact(sc, i);
			if (!c)
				continue;
			if (x->csv) {
				csv_row(&x->out, c);
			} else {
				char *t = json_dumps(c, JSON_COMPACT);
				if (t) {
					buf_puts(&x->out, t);
					buf_append(&x->out, "\n", 1);
				}
				free(t);
			}
			x->rows++;
		}
		x->done = done;
	}
	api_stream_wake(x->rq);
}

static long export_fill(struct api_req *rq, char *dst, size_t max)
{
	struct export *x = api_data(rq);
	size_t left = x->out.len - x->off;
	if (left > 0) {
		size_t k = left < max ? left : max;
		memcpy(dst, x->out.p + x->off, k);
		x->off += k;
		if (x->off == x->out.len) {
			buf_reset(&x->out);
			x->off = 0;
		}
		return (long)k;
	}
	if (x->err)
		return API_STREAM_ERROR;
	if (x->done) {
		log_info("api", "event=export rows=%llu token=%s", (unsigned long long)x->rows,
		         log_q(api_token_name(rq)));
		return API_STREAM_END;
	}
	if (!x->waiting) {
		x->waiting = 1;
		segment_scan_next(x->sc);
	}
	return 0;
}

void api_export_begin(struct api_req *rq, struct segment *s, const char *name)
{
	struct app *app = api_app(rq);
	const char *f = api_query(rq, "format");
	if (f && strcmp(f, "csv") != 0 && strcmp(f, "ndjson") != 0) {
		segment_free(s);
		api_reply_error(rq, 400, "invalid_field", "format", "format is csv or ndjson");
		return;
	}
	if (!api_store_ready(rq)) {
		segment_free(s);
		return;
	}
	struct export *x = xcalloc(1, sizeof *x);
	x->rq = rq;
	x->s = s;
	x->csv = !f || strcmp(f, "csv") == 0;
	buf_init(&x->out, 0); /* bounded by one batch of rows */
	api_set_data(rq, x, export_free);
	if (x->csv) {
		if (api_query(rq, "bom") && strcmp(api_query(rq, "bom"), "1") == 0)
			buf_puts(&x->out, "\xEF\xBB\xBF");
		for (size_t i = 0; i < ARRAY_SIZE(export_cols); i++)
			buf_printf(&x->out, "%s%s", i ? "," : "", export_cols[i]);
		buf_puts(&x->out, "\r\n");
	}
	char disp[160];
	snprintf(disp, sizeof disp, "attachment; filename=\"%s.%s\"", name ? name : "contacts",
	         x->csv ? "csv" : "ndjson");
	api_add_header(rq, "Content-Disposition", disp);
	struct segment_scan_opts o = {.whole = 1};
	x->waiting = 1;
	x->sc =
	    segment_scan_start_opts(app->st, s, now_ms(), "", EXPORT_BATCH, &o, on_export_batch, x);
	api_reply_stream(rq, 200,
	                 x->csv ? "text/csv; charset=utf-8" : "application/x-ndjson; charset=utf-8",
	                 export_fill);
}

static void h_export_all(struct api_req *rq)
{
	api_export_begin(rq, NULL, "contacts");
}

const struct api_route api_import_routes[] = {
    {"POST", "/v1/contacts/import", ROLE_MARKETER, API_BODY_STREAM, h_import, import_chunk,
     import_end},
    {"GET", "/v1/contacts/export", ROLE_MARKETER, API_BODY_NONE, h_export_all, NULL, NULL},
};
const size_t api_import_nroutes = ARRAY_SIZE(api_import_routes);
