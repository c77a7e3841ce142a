/*
 * cmd_contacts_io.c - `clubctl contacts import` and `contacts export`:
 * contacts in and out in bulk through POST /v1/contacts/import and the
 * streamed exports (GET /v1/contacts/export, /v1/segments/{id}/export).
 *
 * Import reads the file 64 KiB at a time straight into libcurl and cuts it
 * into requests of --batch-rows records at record boundaries (a newline
 * outside quotes for CSV: RFC 4180 quotes toggle, so the parity of the
 * quotes seen tells), sending the CSV header again at the head of every
 * request and telling the server where the request starts in the file
 * (row_offset, line_offset) so every error names the file's own row and
 * line.  Each answer adds to the totals, so the progress display can show
 * the errors so far.  Export writes the answer body to stdout or a file as
 * it arrives.
 *
 * Owns the file descriptors and the totals.  Never loads a file into
 * memory (a 64 KiB read buffer and one CSV header of at most 64 KiB) and
 * never validates a row: the server is the judge.  Limits: 1000 errors
 * kept over all requests (all counted).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "contacts_io.h"
#include "http.h"
#include "out.h"
#include "util.h"

#define READ_CHUNK    (64 * 1024)
#define HEADER_MAX    (64 * 1024)
#define ERRORS_KEPT   1000
#define BATCH_DEFAULT 50000
#define RING          16

enum {
	O_MAX_RATE = 600,
	O_INTERVAL,
	O_FORMAT,
	O_MAP,
	O_DEDUPE,
	O_DELIM,
	O_BATCH,
	O_SEGMENT,
	O_BOM,
	O_OUTPUT = 'o',
};

const struct ctl_opt ctl_import_opts[] = {
    {"format", O_FORMAT, "FORMAT", "csv or ndjson (default: from the file name; ndjson)", 0,
     "csv ndjson"},
    {"map", O_MAP, "COL=FIELD", "use CSV column COL as FIELD (phone, attrs.city, ...)",
     CTL_OPT_MULTI, NULL},
    {"dedupe", O_DEDUPE, "KINDS",
     "match existing contacts by: any address (default), none, or phone,email,chat", 0, NULL},
    {"delimiter", O_DELIM, "CHAR", "CSV field separator: , ; | or tab (default ,)", 0, ", ; | tab"},
    {"batch-rows", O_BATCH, "N", "rows per request (default 50000; 0 = one request)", 0, NULL},
    {"max-rate", O_MAX_RATE, "RATE", "upload at most RATE bytes/s (k, M suffixes)", 0, NULL},
    {"progress-interval", O_INTERVAL, "DURATION",
     "seconds between progress lines when stderr is not a terminal (default 5s)", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

const struct ctl_opt ctl_export_opts[] = {
    {"segment", O_SEGMENT, "ID", "only the contacts of this saved segment", 0, NULL},
    {"format", O_FORMAT, "FORMAT", "csv (default) or ndjson", 0, "csv ndjson"},
    {"output", O_OUTPUT, "FILE", "write to FILE (mode 0600) instead of stdout", CTL_OPT_FILE, NULL},
    {"bom", O_BOM, NULL, "start a CSV with a UTF-8 byte order mark (for Excel)", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

/* ---------------------------------------------------------------- display */

static char *human_bytes(int64_t n)
{
	if (n < 1024)
		return xasprintf("%lld B", (long long)n);
	if (n < 1024 * 1024)
		return xasprintf("%.1f KiB", (double)n / 1024);
	if (n < 1024LL * 1024 * 1024)
		return xasprintf("%.1f MiB", (double)n / (1024 * 1024));
	return xasprintf("%.2f GiB", (double)n / (1024.0 * 1024 * 1024));
}

static char *eta_text(double secs)
{
	long s = (long)(secs + 0.5);
	if (s >= 3600)
		return xasprintf("%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
	return xasprintf("%ld:%02ld", s / 60, s % 60);
}

static int term_cols(void)
{
	struct winsize ws;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col;
	return 80;
}

/* ---------------------------------------------------------------- import */

struct import {
	struct ctl *c;
	int fd;
	const char *path;
	int csv;
	int64_t batch;
	int64_t size; /* -1 unknown */

	/* the file, read ahead of libcurl */
	char *rbuf;
	size_t rpos, rlen;
	int eof, read_errno;
	int inq;           /* CSV: inside quotes */
	int header_done;   /* CSV: the header record was read */
	struct buf header; /* CSV: the header record, sent again with every request */
	size_t header_lines;
	int64_t bytes;   /* file bytes handed to libcurl */
	int64_t records; /* data records (lines for NDJSON) handed to libcurl */
	int64_t lines;   /* newlines handed to libcurl */
	char last;       /* last byte handed to libcurl */

	/* the request being sent */
	int prefix;        /* it starts with the header again */
	size_t prefix_off; /* header bytes sent */
	int64_t chunk_records;
	int full;            /* --batch-rows records are in it */
	int64_t chunk_start; /* file offset of its first data byte */
	int64_t sent;        /* file bytes libcurl sent, over all requests */
	struct {
		int64_t end, rows;
	} ring[RING];
	unsigned nring;

	/* totals of the answers */
	int64_t rows, created, updated, failed;
	json_t *errors, *ignored, *columns;
	int answered;

	int64_t t0, last_draw, interval_ms;
	int tty, quiet, drawn, uploaded_drawn;
};

/* Records in the first `sent` file bytes, interpolated inside a chunk. */
static int64_t rows_sent(const struct import *im)
{
	int64_t e0 = 0, r0 = 0;
	unsigned first = im->nring > RING ? im->nring - RING : 0;
	if (first > 0) {
		e0 = im->ring[first % RING].end;
		r0 = im->ring[first % RING].rows;
		first++;
		if (im->sent <= e0)
			return r0;
	}
	for (unsigned i = first; i < im->nring; i++) {
		int64_t e1 = im->ring[i % RING].end, r1 = im->ring[i % RING].rows;
		if (im->sent <= e1)
			return e1 > e0 ? r0 + (r1 - r0) * (im->sent - e0) / (e1 - e0) : r1;
		e0 = e1;
		r0 = r1;
	}
	return r0;
}

/*
 * One progress report on stderr: a redrawn bar on a terminal, a plain line
 * otherwise.  stage: 0 uploading, 1 uploaded (waiting for the answer),
 * 2 answered.
 */
static void draw(struct import *im, int stage)
{
	int64_t now = mono_ms();
	double el = (double)(now - im->t0) / 1000.0;
	if (el < 0.001)
		el = 0.001;
	int64_t bytes = stage ? im->bytes : im->sent;
	int64_t rows = stage ? im->records : rows_sent(im);
	double bps = (double)bytes / el, rps = (double)rows / el;
	int known = im->size > 0;
	double frac = known ? (double)bytes / (double)im->size : 0;
	char *sent = human_bytes(bytes), *total = known ? human_bytes(im->size) : NULL;
	char *rate = human_bytes((int64_t)bps);
	char *eta = known && bps > 0 && stage == 0 && el >= 0.5
	                ? eta_text((double)(im->size - bytes) / bps)
	                : NULL;
	char *errs = im->answered ? xasprintf("%lld error%s", (long long)im->failed,
	                                      im->failed == 1 ? "" : "s")
	                          : NULL;
	static const char *const tail[] = {"", "; sent, waiting for the server", "; done"};

	if (im->tty) {
		struct buf b;
		buf_init(&b, 0);
		buf_append(&b, "", 0);
		int cols = term_cols(), wide = cols >= 100;
		if (known) {
			int bar = wide ? 30 : 10, fill = (int)(frac * bar + 0.5);
			buf_puts(&b, "[");
			for (int i = 0; i < bar; i++)
				buf_puts(&b, i < fill ? "#" : "-");
			buf_printf(&b, "] %3d%% %s/%s", (int)(frac * 100 + 0.5), sent, total);
		} else {
			buf_printf(&b, "%s", sent);
		}
		buf_printf(&b, " %lld rows %.0f rows/s", (long long)rows, rps);
		if (wide)
			buf_printf(&b, " %s/s", rate);
		if (eta)
			buf_printf(&b, " ETA %s", eta);
		if (errs)
			buf_printf(&b, " %s", errs);
		buf_puts(&b, stage == 1 ? " sent; waiting" : stage == 2 ? " done" : "");
		/* never wrap: a wrapped line cannot be redrawn with \r */
		char *fit = out_fit(b.p, (size_t)cols - 1);
		fprintf(stderr, "\r%s\033[K", fit);
		free(fit);
		buf_free(&b);
		im->drawn = 1;
	} else {
		struct buf b;
		buf_init(&b, 0);
		buf_append(&b, "", 0);
		if (known)
			buf_printf(&b, "import: %s of %s (%d%%)", sent, total,
			           (int)(frac * 100 + 0.5));
		else
			buf_printf(&b, "import: %s", sent);
		buf_printf(&b, ", %lld rows sent, %.0f rows/s, %s/s", (long long)rows, rps, rate);
		if (eta)
			buf_printf(&b, ", ETA %s", eta);
		if (errs)
			buf_printf(&b, ", %s so far", errs);
		buf_puts(&b, tail[stage]);
		fprintf(stderr, "%s\n", b.p);
		buf_free(&b);
	}
	fflush(stderr);
	im->last_draw = now;
	free(sent);
	free(total);
	free(rate);
	free(eta);
	free(errs);
}

/* A record ended at the byte just handed over. */
static void record_end(struct import *im)
{
	if (im->csv && !im->header_done) {
		im->header_done = 1;
		im->header_lines = (size_t)im->lines;
		return;
	}
	im->records++;
	if (im->batch > 0 && ++im->chunk_records >= im->batch)
		im->full = 1;
}

static size_t import_read(char *dst, size_t n, void *arg)
{
	struct import *im = arg;
	size_t o = 0;
	if (im->prefix && im->prefix_off < im->header.len) {
		size_t k = im->header.len - im->prefix_off;
		if (k > n)
			k = n;
		memcpy(dst, im->header.p + im->prefix_off, k);
		im->prefix_off += k;
		return k;
	}
	while (o < n && !im->full) {
		if (im->rpos == im->rlen) {
			if (im->eof)
				break;
			ssize_t got;
			do
				got = read(im->fd, im->rbuf, READ_CHUNK);
			while (got < 0 && errno == EINTR);
			if (got < 0) {
				im->read_errno = errno;
				return HTTP_READ_ABORT;
			}
			if (got == 0) {
				im->eof = 1;
				break;
			}
			im->rpos = 0;
			im->rlen = (size_t)got;
		}
		size_t start = im->rpos;
		while (im->rpos < im->rlen && o + (im->rpos - start) < n && !im->full) {
			char ch = im->rbuf[im->rpos++];
			if (im->csv && ch == '"')
				im->inq = !im->inq;
			if (im->csv && !im->header_done && buf_append(&im->header, &ch, 1) < 0) {
				im->read_errno = EFBIG;
				return HTTP_READ_ABORT;
			}
			im->last = ch;
			if (ch == '\n') {
				im->lines++;
				if (!im->inq)
					record_end(im);
			}
		}
		size_t k = im->rpos - start;
		memcpy(dst + o, im->rbuf + start, k);
		o += k;
		im->bytes += (int64_t)k;
		im->ring[im->nring % RING].end = im->bytes;
		im->ring[im->nring % RING].rows = im->records;
		im->nring++;
	}
	return o;
}

static int import_progress(void *arg, int64_t sent)
{
	struct import *im = arg;
	int64_t pre = im->prefix ? (int64_t)im->header.len : 0;
	im->sent = im->chunk_start + (sent > pre ? sent - pre : 0);
	if (im->sent > im->bytes)
		im->sent = im->bytes;
	if (im->quiet)
		return 0;
	int64_t now = mono_ms();
	int uploaded = im->size >= 0 && im->sent >= im->size;
	if (uploaded && !im->uploaded_drawn) {
		im->uploaded_drawn = 1;
		draw(im, 1);
	} else if (!uploaded && now - im->last_draw >= (im->tty ? 100 : im->interval_ms)) {
		draw(im, 0);
	}
	return 0;
}

static int parse_rate(const char *s, int64_t *out)
{
	size_t n = strlen(s);
	int64_t mult = 1, v;
	if (n > 1 && (s[n - 1] == 'k' || s[n - 1] == 'K'))
		mult = 1024;
	else if (n > 1 && (s[n - 1] == 'm' || s[n - 1] == 'M'))
		mult = 1024 * 1024;
	char *num = xstrndup(s, mult > 1 ? n - 1 : n);
	int rc = parse_i64(num, 1, INT64_MAX / (1024 * 1024), &v);
	free(num);
	if (rc < 0)
		return rc;
	*out = v * mult;
	return 0;
}

/* The query string every request of this import carries (without the
 * offsets); a .tsv file is tab-separated unless --delimiter says otherwise.
 * CTL_OK or usage. */
static int import_query(struct ctl *c, const struct ctl_args *a, int csv, int tsv, struct buf *q)
{
	const char *v;
	size_t it;
	buf_printf(q, "format=%s", csv ? "csv" : "ndjson");
	if (ctl_has(a, O_MAP)) {
		struct buf m;
		buf_init(&m, 0);
		buf_append(&m, "", 0);
		for (it = 0; (v = ctl_arg_next(a, O_MAP, &it));) {
			/* COL=FIELD[,COL=FIELD...] -> field:col,... */
			for (const char *p = v; *p;) {
				size_t l = strcspn(p, ",");
				const char *eq = memchr(p, '=', l);
				if (!eq || eq == p || eq == p + l - 1) {
					buf_free(&m);
					return ctl_usage(c, "--map %s: COLUMN=FIELD expected", v);
				}
				buf_printf(&m, "%s%.*s:%.*s", m.len ? "," : "",
				           (int)(p + l - eq - 1), eq + 1, (int)(eq - p), p);
				p += l;
				if (*p == ',')
					p++;
			}
		}
		char *e = ctl_escape(c, m.p);
		buf_printf(q, "&map=%s", e);
		free(e);
		buf_free(&m);
	}
	if ((v = ctl_arg(a, O_DEDUPE))) {
		char *e = ctl_escape(c, v);
		buf_printf(q, "&dedupe=%s", e);
		free(e);
	}
	if ((v = ctl_arg(a, O_DELIM)) || (tsv && (v = "tab"))) {
		if (!csv)
			return ctl_usage(c, "--delimiter is for CSV files");
		if (strcmp(v, "tab") != 0 && !(strlen(v) == 1 && strchr(",;|\t", v[0])))
			return ctl_usage(c, "--delimiter: , ; | or tab");
		char *e = ctl_escape(c, v[0] == '\t' ? "tab" : v);
		buf_printf(q, "&delimiter=%s", e);
		free(e);
	}
	return CTL_OK;
}

/* Add one answer to the totals. */
static int import_account(struct import *im, const json_t *r)
{
	if (!json_is_object(r))
		return ctl_fail(CTL_EAPI, "the server's answer is not a JSON object");
	im->answered = 1;
	im->rows += json_integer_value(json_object_get(r, "rows"));
	im->created += json_integer_value(json_object_get(r, "created"));
	im->updated += json_integer_value(json_object_get(r, "updated"));
	im->failed += json_integer_value(json_object_get(r, "failed"));
	const json_t *errs = json_object_get(r, "errors"), *e;
	size_t i;
	json_array_foreach(errs, i, e)
	{
		if (json_array_size(im->errors) < ERRORS_KEPT)
			json_array_append(im->errors, (json_t *)e);
	}
	if (!im->columns && json_object_get(r, "columns")) {
		im->columns = json_incref(json_object_get(r, "columns"));
		im->ignored = json_incref(json_object_get(r, "ignored_columns"));
	}
	return CTL_OK;
}

static void print_import_result(struct import *im, double secs)
{
	const char *unit = im->csv ? "rows" : "lines";
	printf("created %lld, updated %lld, failed %lld (%lld %s sent in %.1fs)\n",
	       (long long)im->created, (long long)im->updated, (long long)im->failed,
	       (long long)im->records, unit, secs);
	if (im->ignored && json_array_size(im->ignored) > 0) {
		struct buf b;
		buf_init(&b, 0);
		buf_append(&b, "", 0);
		size_t i;
		json_t *x;
		json_array_foreach(im->ignored, i, x)
		{
			buf_printf(&b, "%s%s", i ? ", " : "", json_string_value(x));
		}
		char *clean = out_clean(b.p);
		printf("columns not imported: %s\n", clean);
		free(clean);
		buf_free(&b);
	}
	if (json_array_size(im->errors) == 0)
		return;
	static const char *const head_csv[] = {"ROW", "LINE", "COLUMN", "FIELD", "REASON"};
	static const char *const head_nd[] = {"LINE", "FIELD", "REASON"};
	struct out_table *t = im->csv ? out_table_new(head_csv, 5) : out_table_new(head_nd, 3);
	out_table_align(t, 0, OUT_RIGHT);
	if (im->csv)
		out_table_align(t, 1, OUT_RIGHT);
	size_t i;
	json_t *e;
	json_array_foreach(im->errors, i, e)
	{
		char *row =
		    xasprintf("%lld", (long long)json_integer_value(json_object_get(e, "row")));
		char *line =
		    xasprintf("%lld", (long long)json_integer_value(json_object_get(e, "line")));
		if (im->csv) {
			const char *r[] = {row, line, ctl_jstr(e, "column"), ctl_jstr(e, "field"),
			                   ctl_jstr(e, "reason")};
			out_table_add(t, r);
		} else {
			const char *r[] = {line, ctl_jstr(e, "field"), ctl_jstr(e, "reason")};
			out_table_add(t, r);
		}
		free(row);
		free(line);
	}
	fputc('\n', stdout);
	out_table_flush(t, stdout);
	out_table_free(t);
	if ((int64_t)json_array_size(im->errors) < im->failed)
		printf("(%zu of %lld refused %s listed)\n", json_array_size(im->errors),
		       (long long)im->failed, unit);
}

/* csv or ndjson from --format, else from the file name. */
static int import_format(const struct ctl_args *a, const char *path)
{
	const char *f = ctl_arg(a, O_FORMAT);
	if (f)
		return strcmp(f, "csv") == 0;
	size_t n = strlen(path);
	return (n > 4 && (strcmp(path + n - 4, ".csv") == 0 || strcmp(path + n - 4, ".CSV") == 0 ||
	                  strcmp(path + n - 4, ".tsv") == 0 || strcmp(path + n - 4, ".txt") == 0));
}

int ctl_contacts_import(struct ctl *c, const struct ctl_args *a)
{
	struct import im = {.c = c, .path = a->pos[0], .size = -1, .last = '\n'};
	struct buf q;
	const char *v;
	int64_t rate = 0;
	int rc = CTL_OK;

	im.interval_ms = 5000;
	im.batch = BATCH_DEFAULT;
	im.csv = import_format(a, im.path);
	buf_init(&q, 0);
	buf_init(&im.header, HEADER_MAX);
	if ((v = ctl_arg(a, O_MAX_RATE)) && parse_rate(v, &rate) < 0)
		return ctl_usage(c, "--max-rate: bytes per second such as 500k or 2M expected");
	if ((v = ctl_arg(a, O_INTERVAL)) &&
	    (parse_duration_ms(v, &im.interval_ms) < 0 || im.interval_ms < 100)) {
		int64_t secs;
		if (parse_i64(v, 1, 86400, &secs) < 0)
			return ctl_usage(c, "--progress-interval: a duration such as 5s expected");
		im.interval_ms = secs * 1000;
	}
	if ((v = ctl_arg(a, O_BATCH)) && parse_i64(v, 0, INT64_MAX, &im.batch) < 0)
		return ctl_usage(c, "--batch-rows: a number (0 = everything in one request)");
	size_t plen = strlen(im.path);
	int tsv = im.csv && plen > 4 && strcmp(im.path + plen - 4, ".tsv") == 0;
	rc = import_query(c, a, im.csv, tsv, &q);
	if (rc != CTL_OK) {
		buf_free(&q);
		return rc;
	}
	if (strcmp(im.path, "-") == 0) {
		im.fd = STDIN_FILENO;
	} else {
		im.fd = open(im.path, O_RDONLY | O_CLOEXEC);
		if (im.fd < 0) {
			buf_free(&q);
			return ctl_fail(CTL_EUSAGE, "cannot open %s: %s", im.path, strerror(errno));
		}
	}
	struct stat st;
	if (fstat(im.fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		rc = ctl_fail(CTL_EUSAGE, "%s is a directory", im.path);
		goto out;
	}
	if (fstat(im.fd, &st) == 0 && S_ISREG(st.st_mode)) {
		im.size = (int64_t)st.st_size;
		posix_fadvise(im.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	}
	im.rbuf = xmalloc(READ_CHUNK);
	im.errors = json_array();
	im.tty = c->tty_err;
	im.quiet = c->quiet;
	im.t0 = mono_ms();
	im.last_draw = im.tty ? 0 : im.t0; /* plain lines: the first after one interval */

	for (int first = 1;; first = 0) {
		/* where this request starts in the file */
		im.prefix = !first && im.csv && im.header_done;
		im.prefix_off = 0;
		im.chunk_records = 0;
		im.full = 0;
		im.chunk_start = im.bytes;
		int64_t row_off = im.records;
		int64_t line_off = im.lines - (im.prefix ? (int64_t)im.header_lines : 0);
		char *path = xasprintf("/v1/contacts/import?%s&row_offset=%lld&line_offset=%lld",
		                       q.p, (long long)row_off, (long long)line_off);
		struct http_req rq = {.method = "POST",
		                      .path = path,
		                      .ctype = im.csv ? "text/csv" : "application/x-ndjson",
		                      .read = import_read,
		                      .size = -1,
		                      .progress = import_progress,
		                      .arg = &im,
		                      .max_send_bps = rate,
		                      .stall_timeout = 1};
		if (im.batch == 0 && im.size >= 0)
			rq.size = im.size; /* one request: the whole file, size known */
		struct http_resp rs;
		int hrc = http_do(ctl_http(c), &rq, &rs);
		free(path);
		if (hrc < 0) {
			if (im.drawn)
				fputc('\n', stderr);
			if (im.read_errno == EFBIG)
				rc = ctl_fail(CTL_EUSAGE,
				              "%s: the CSV header is longer than 64 KiB", im.path);
			else if (im.read_errno)
				rc = ctl_fail(CTL_EUSAGE, "cannot read %s: %s", im.path,
				              strerror(im.read_errno));
			else
				rc = ctl_conn_error(c, rs.err);
			http_resp_free(&rs);
			goto out;
		}
		if (rs.status < 200 || rs.status > 299) {
			if (im.drawn)
				fputc('\n', stderr);
			rc = ctl_api_error(c, rs.status, rs.body.p, rs.body.len);
			http_resp_free(&rs);
			goto out;
		}
		json_t *r = json_loadb(rs.body.p ? rs.body.p : "", rs.body.len, 0, NULL);
		rc = import_account(&im, r);
		json_decref(r);
		http_resp_free(&rs);
		if (rc != CTL_OK)
			goto out;
		if (!im.full)
			break; /* the file ended inside this request */
		/* a request ended exactly at the end of the file: nothing left */
		if (im.rpos == im.rlen && !im.eof) {
			ssize_t got;
			do
				got = read(im.fd, im.rbuf, READ_CHUNK);
			while (got < 0 && errno == EINTR);
			if (got < 0) {
				rc = ctl_fail(CTL_EUSAGE, "cannot read %s: %s", im.path,
				              strerror(errno));
				goto out;
			}
			im.rpos = 0;
			im.rlen = (size_t)got;
			im.eof = got == 0;
		}
		if (im.rpos == im.rlen && im.eof)
			break;
	}
	if (im.bytes > 0 && im.last != '\n' && !(im.csv && !im.header_done))
		im.records++; /* a last record without a line end */
	/* a terminal gets the bar's final state; plain output already said
	 * "sent" and the summary follows */
	if (!im.quiet && (im.tty || !im.uploaded_drawn)) {
		draw(&im, 2);
		if (im.tty)
			fputc('\n', stderr);
	}
	double secs = (double)(mono_ms() - im.t0) / 1000.0;
	if (c->json) {
		json_t *doc = json_pack(
		    "{s:I, s:I, s:I, s:I, s:I, s:O, s:O, s:O}", "rows", (json_int_t)im.rows,
		    "created", (json_int_t)im.created, "updated", (json_int_t)im.updated, "failed",
		    (json_int_t)im.failed, "error_count", (json_int_t)im.failed, "errors",
		    im.errors, "columns", im.columns ? im.columns : json_null(), "ignored_columns",
		    im.ignored ? im.ignored : json_null());
		ctl_print_json(doc);
		json_decref(doc);
	} else {
		print_import_result(&im, secs);
	}
	if (im.failed > 0)
		rc = ctl_fail(CTL_EAPI, "%lld %s refused", (long long)im.failed,
		              im.csv ? (im.failed == 1 ? "row" : "rows")
		                     : (im.failed == 1 ? "line" : "lines"));
out:
	if (im.fd != STDIN_FILENO && im.fd >= 0)
		close(im.fd);
	free(im.rbuf);
	buf_free(&im.header);
	buf_free(&q);
	json_decref(im.errors);
	json_decref(im.columns);
	json_decref(im.ignored);
	return rc;
}

/* ---------------------------------------------------------------- export */

struct export
{
	int fd;
	int csv, inq;
	int64_t bytes, rows;
	int64_t t0, last_draw;
	int tty, quiet, drawn;
	int write_errno;
};

static void export_draw(struct export *x, int final)
{
	char *b = human_bytes(x->bytes);
	int64_t rows = x->csv && x->rows > 0 ? x->rows - 1 : x->rows; /* the header */
	if (x->tty) {
		fprintf(stderr, "\rexport: %s, %lld contacts%s\033[K", b, (long long)rows,
		        final ? " done" : "");
		x->drawn = 1;
	}
	fflush(stderr);
	x->last_draw = mono_ms();
	free(b);
}

static int export_sink(const char *p, size_t n, void *arg)
{
	struct export *x = arg;
	for (size_t i = 0; i < n; i++) {
		if (x->csv && p[i] == '"')
			x->inq = !x->inq;
		else if (p[i] == '\n' && !x->inq)
			x->rows++;
	}
	size_t off = 0;
	while (off < n) {
		ssize_t w = write(x->fd, p + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			x->write_errno = w < 0 ? errno : EIO;
			return -1;
		}
		off += (size_t)w;
	}
	x->bytes += (int64_t)n;
	if (!x->quiet && x->tty && mono_ms() - x->last_draw >= 200)
		export_draw(x, 0);
	return 0;
}

int ctl_contacts_export(struct ctl *c, const struct ctl_args *a)
{
	const char *seg = ctl_arg(a, O_SEGMENT), *fmt = ctl_arg(a, O_FORMAT),
	           *outp = ctl_arg(a, O_OUTPUT);
	struct export x = {.fd = STDOUT_FILENO};
	x.csv = !fmt || strcmp(fmt, "csv") == 0;
	if (ctl_has(a, O_BOM) && !x.csv)
		return ctl_usage(c, "--bom is for CSV");
	char *query =
	    xasprintf("?format=%s%s", x.csv ? "csv" : "ndjson", ctl_has(a, O_BOM) ? "&bom=1" : "");
	char *path = seg ? ctl_path(c, "/v1/segments/", seg, NULL) : NULL;
	char *full = xasprintf("%s%s", seg ? path : "/v1/contacts", seg ? "/export" : "/export");
	free(path);
	path = xasprintf("%s%s", full, query);
	free(full);
	free(query);
	char *tmp = NULL;
	int rc = CTL_OK;
	if (outp && strcmp(outp, "-") != 0) {
		tmp = xasprintf("%s.part", outp);
		x.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (x.fd < 0) {
			rc = ctl_fail(CTL_EUSAGE, "cannot create %s: %s", tmp, strerror(errno));
			free(tmp);
			free(path);
			return rc;
		}
	}
	x.tty = c->tty_err && x.fd != STDOUT_FILENO;
	x.quiet = c->quiet;
	x.t0 = mono_ms();
	struct http_req rq = {
	    .method = "GET", .path = path, .sink = export_sink, .arg = &x, .stall_timeout = 1};
	struct http_resp rs;
	int hrc = http_do(ctl_http(c), &rq, &rs);
	if (x.drawn)
		export_draw(&x, hrc == 0 && rs.status >= 200 && rs.status <= 299);
	if (x.drawn)
		fputc('\n', stderr);
	if (hrc < 0) {
		rc = x.write_errno ? ctl_fail(CTL_EUSAGE, "cannot write %s: %s",
		                              tmp ? tmp : "stdout", strerror(x.write_errno))
		                   : ctl_conn_error(c, rs.err);
	} else if (rs.status < 200 || rs.status > 299) {
		rc = ctl_api_error(c, rs.status, rs.body.p, rs.body.len);
	}
	http_resp_free(&rs);
	if (tmp) {
		if (rc == CTL_OK && fsync(x.fd) < 0)
			rc = ctl_fail(CTL_EUSAGE, "cannot write %s: %s", tmp, strerror(errno));
		close(x.fd);
		if (rc == CTL_OK && rename(tmp, outp) < 0)
			rc = ctl_fail(CTL_EUSAGE, "cannot rename %s: %s", tmp, strerror(errno));
		if (rc != CTL_OK)
			unlink(tmp);
		free(tmp);
	}
	if (rc == CTL_OK && outp && !c->quiet) {
		int64_t rows = x.csv && x.rows > 0 ? x.rows - 1 : x.rows;
		ctl_info(c, "exported %lld contacts to %s", (long long)rows, outp);
	}
	free(path);
	return rc;
}
