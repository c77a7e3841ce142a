/*
 * draw-verify.c - clubd-draw-verify, the stand-alone raffle draw verifier:
 *
 *   clubd-draw-verify --seed HEX --commit HEX --winners K [--expect ID,ID,...]
 *                     ENTRIES_FILE
 *
 * Reads the published entry list (one "contact_id<TAB>weight" or
 * "contact_id" per line, any order; "-" is stdin), prints the entries
 * digest, checks that SHA-256(seed) is the commit published when the raffle
 * was created, re-runs the draw (daemon/draw.c, docs/raffles.md) and prints
 * the winners in order.  Exit 0 when verified, 1 when the commit or the
 * --expect list does not match, 2 on usage errors and malformed input
 * (FILE:LINE: reason, up to MAX_ERRORS of them).
 *
 * Owns only its own process; never touches Redis, the network or any file
 * but the one named.  Limits: the entries file is read whole, at most
 * MAX_FILE bytes.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "draw.h"
#include "util.h"

#define MAX_FILE   ((size_t)256 << 20)
#define MAX_ERRORS 20
#define PROG       "clubd-draw-verify"

enum { EXIT_MISMATCH = 1, EXIT_USAGE = 2 };

struct line_entry {
	const char *id; /* points into the file buffer */
	uint64_t weight;
	size_t line;
};

struct entries {
	const char *name; /* for messages */
	struct line_entry *v;
	size_t n, cap;
	int errors;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: " PROG " --seed HEX --commit HEX --winners K [--expect ID,ID,...] "
	           "ENTRIES_FILE\n"
	           "  --seed HEX       the revealed seed (64 hex digits)\n"
	           "  --commit HEX     the commitment published at creation, SHA-256(seed)\n"
	           "  --winners K      the number of winners drawn (1..number of entries)\n"
	           "  --expect LIST    the announced winners, in order, comma-separated:\n"
	           "                   exit 0 only when the draw gives exactly these\n"
	           "  ENTRIES_FILE     one \"contact_id<TAB>weight\" or \"contact_id\" per line,\n"
	           "                   any order; \"-\" reads standard input\n"
	           "Exit status: 0 verified, 1 commit or --expect mismatch, 2 usage or input "
	           "error.\n"
	           "The draw is defined in docs/raffles.md (clubd-draw-v1).\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, PROG ": ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	usage(stderr);
	return EXIT_USAGE;
}

/* 0, or -1 after a message (too large, unreadable). */
static int read_all(const char *path, struct buf *b)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!f) {
		fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
		return -1;
	}
	char chunk[65536];
	int rc = 0;
	size_t got;
	while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (buf_append(b, chunk, got) < 0) {
			fprintf(stderr, PROG ": %s: larger than %zu MiB\n", path, MAX_FILE >> 20);
			rc = -1;
			break;
		}
	}
	if (rc == 0 && ferror(f)) {
		fprintf(stderr, PROG ": %s: read error\n", path);
		rc = -1;
	}
	if (f != stdin)
		fclose(f);
	return rc;
}

static void line_error(struct entries *es, size_t line, const char *why, const char *detail)
{
	es->errors++;
	if (es->errors <= MAX_ERRORS)
		fprintf(stderr, "%s:%zu: %s%s\n", es->name, line, why, detail ? detail : "");
	else if (es->errors == MAX_ERRORS + 1)
		fprintf(stderr, "%s: too many errors, giving up\n", es->name);
}

/* Strict weight: [1-9][0-9]*, at most UINT64_MAX (parse_i64 stops at
 * INT64_MAX and takes a sign, hence by hand).  0 or -1. */
static int parse_weight(const char *s, uint64_t *out)
{
	if (*s < '1' || *s > '9')
		return -1;
	uint64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Validate one line (NUL-terminated in place, CR stripped) and append it. */
static void parse_line(struct entries *es, char *s, size_t len, size_t line)
{
	char *tab = memchr(s, '\t', len);
	size_t idlen = tab ? (size_t)(tab - s) : len;
	char pos[64];
	if (memchr(s, '\0', len)) {
		line_error(es, line, "NUL byte in line", NULL);
		return;
	}
	if (tab && memchr(tab + 1, '\t', len - idlen - 1)) {
		line_error(es, line, "more than two tab-separated fields", NULL);
		return;
	}
	if (idlen == 0) {
		line_error(es, line, "empty contact id", NULL);
		return;
	}
	if (idlen > DRAW_ID_MAX) {
		snprintf(pos, sizeof pos, " (%zu > %d bytes)", idlen, DRAW_ID_MAX);
		line_error(es, line, "contact id too long", pos);
		return;
	}
	for (size_t i = 0; i < idlen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x21 || c > 0x7e) {
			snprintf(pos, sizeof pos, " (byte 0x%02x at column %zu)", c, i + 1);
			line_error(es, line,
			           "contact id must be visible ASCII 0x21..0x7e, no spaces", pos);
			return;
		}
	}
	uint64_t w = 1;
	if (tab) {
		*tab = '\0';
		if (parse_weight(tab + 1, &w) < 0) {
			line_error(
			    es, line,
			    "weight must be a decimal integer from 1 to 18446744073709551615 "
			    "without sign, spaces or leading zeros",
			    NULL);
			return;
		}
	}
	if (es->n == es->cap) {
		es->cap = es->cap ? 2 * es->cap : 256;
		es->v = xrealloc(es->v, es->cap * sizeof *es->v);
	}
	es->v[es->n++] = (struct line_entry){s, w, line};
}

/* Split the buffer into lines; empty lines are skipped, one CR before LF is
 * dropped, the last line may lack its LF. */
static void parse_file(struct entries *es, struct buf *b)
{
	char *p = b->p ? b->p : "";
	char *end = p + b->len;
	size_t line = 0;
	while (p < end) {
		line++;
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *stop = nl ? nl : end;
		size_t len = (size_t)(stop - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		p[len] = '\0'; /* over the CR or LF, or the buffer's own NUL */
		if (len > 0)
			parse_line(es, p, len, line);
		p = nl ? nl + 1 : end;
	}
}

static int cmp_line_entry(const void *a, const void *b)
{
	const struct line_entry *x = a, *y = b;
	int c = strcmp(x->id, y->id);
	if (c)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

static void check_duplicates(struct entries *es)
{
	if (es->n < 2)
		return; /* and es->v may be NULL */
	qsort(es->v, es->n, sizeof *es->v, cmp_line_entry);
	for (size_t i = 1; i < es->n; i++) {
		if (strcmp(es->v[i - 1].id, es->v[i].id) == 0) {
			char first[64];
			snprintf(first, sizeof first, " (first on line %zu)", es->v[i - 1].line);
			/* keep the message on one line: ids are visible ASCII */
			char *why = xasprintf("duplicate contact id \"%s\"", es->v[i].id);
			line_error(es, es->v[i].line, why, first);
			free(why);
		}
	}
}

/*
 * Split the --expect list at commas into *items (pointing into a copy the
 * caller frees through items[0]... see free_expect).  0, or -1 after a
 * message when an item is empty or not a valid contact id.
 */
static int parse_expect(const char *list, char ***items, size_t *n)
{
	char *copy = xstrdup(list);
	size_t cap = 1;
	for (const char *q = copy; *q; q++)
		cap += *q == ',';
	char **v = xcalloc(cap + 1, sizeof *v);
	size_t i = 0;
	char *item = copy;
	/* by hand, not strtok_r: an empty item must be refused, not skipped */
	for (;;) {
		char *comma = strchr(item, ',');
		if (comma)
			*comma = '\0';
		if (!draw_id_valid(item)) {
			fprintf(stderr, PROG ": --expect: item %zu is not a valid contact id\n",
			        i + 1);
			free(copy);
			free(v);
			return -1;
		}
		v[i++] = item;
		if (!comma)
			break;
		item = comma + 1;
	}
	*items = v;
	*n = i;
	return 0;
}

static void free_expect(char **items)
{
	if (items)
		free(items[0]); /* the copy: items[0] is its start */
	free(items);
}

/* 1 when the drawn winners are exactly items, in order; else 0 after
 * printing the first difference. */
static int expect_matches(char **items, size_t n, const struct draw_entry *e, const size_t *win,
                          size_t k)
{
	for (size_t i = 0; i < n && i < k; i++) {
		if (strcmp(items[i], e[win[i]].contact_id) != 0) {
			fprintf(stderr,
			        PROG ": --expect mismatch at position %zu: drawn \"%s\", expected "
			             "\"%s\"\n",
			        i + 1, e[win[i]].contact_id, items[i]);
			return 0;
		}
	}
	if (n != k) {
		fprintf(stderr, PROG ": --expect mismatch: %zu winners drawn, %zu expected\n", k,
		        n);
		return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"seed", required_argument, NULL, 's'},    {"commit", required_argument, NULL, 'c'},
	    {"winners", required_argument, NULL, 'k'}, {"expect", required_argument, NULL, 'e'},
	    {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	const char *seed_hex = NULL, *commit_hex = NULL, *k_str = NULL, *expect = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			seed_hex = optarg;
			break;
		case 'c':
			commit_hex = optarg;
			break;
		case 'k':
			k_str = optarg;
			break;
		case 'e':
			expect = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (!seed_hex)
		return usage_error("--seed is required");
	if (!commit_hex)
		return usage_error("--commit is required");
	if (!k_str)
		return usage_error("--winners is required");
	if (optind != argc - 1)
		return usage_error("exactly one ENTRIES_FILE is needed");
	unsigned char seed[DRAW_SEED_LEN], commit[32];
	if (draw_parse_hex32(seed_hex, seed) < 0)
		return usage_error("--seed must be 64 hex digits, not \"%s\"", seed_hex);
	if (draw_parse_hex32(commit_hex, commit) < 0)
		return usage_error("--commit must be 64 hex digits, not \"%s\"", commit_hex);
	int64_t k64;
	if (k_str[0] < '0' || k_str[0] > '9' || parse_i64(k_str, 1, INT64_MAX, &k64) < 0)
		return usage_error("--winners must be a whole number >= 1, not \"%s\"", k_str);

	char **expect_items = NULL;
	size_t expect_n = 0;
	if (expect && parse_expect(expect, &expect_items, &expect_n) < 0) {
		usage(stderr);
		return EXIT_USAGE;
	}

	const char *path = argv[optind];
	struct buf b;
	buf_init(&b, MAX_FILE);
	struct entries es = {.name = strcmp(path, "-") == 0 ? "(stdin)" : path};
	struct draw_entry *e = NULL;
	size_t *win = NULL;
	int rc = EXIT_USAGE;
	if (read_all(path, &b) < 0)
		goto out;
	parse_file(&es, &b);
	check_duplicates(&es); /* reported along with any other errors */
	if (es.errors) {
		if (es.errors > MAX_ERRORS)
			fprintf(stderr, "%s: %d errors in all\n", es.name, es.errors);
		goto out;
	}
	if (es.n == 0) {
		fprintf(stderr, "%s: no entries\n", es.name);
		goto out;
	}
	if ((uint64_t)k64 > es.n) {
		fprintf(stderr, PROG ": --winners %" PRId64 " but %s has only %zu entries\n", k64,
		        es.name, es.n);
		goto out;
	}
	size_t k = (size_t)k64;
	e = xcalloc(es.n, sizeof *e);
	uint64_t total = 0;
	for (size_t i = 0; i < es.n; i++) {
		e[i] = (struct draw_entry){es.v[i].id, es.v[i].weight};
		if (es.v[i].weight > UINT64_MAX - total) {
			fprintf(stderr, "%s: the weights add up to more than %" PRIu64 "\n",
			        es.name, UINT64_MAX);
			goto out;
		}
		total += es.v[i].weight;
	}
	if (draw_canonicalize(e, es.n) < 0) { /* already sorted: validates */
		fprintf(stderr, PROG ": internal error: entries not canonical\n");
		goto out;
	}
	win = xcalloc(k, sizeof *win);
	char digest[DRAW_HEX_LEN + 1];
	if (draw_winners(seed, e, es.n, k, win, digest) < 0) {
		fprintf(stderr, PROG ": internal error: the draw refused the entries\n");
		goto out;
	}
	printf("entries: %zu\ntotal_weight: %" PRIu64 "\nentries_digest: %s\n", es.n, total,
	       digest);
	char seed_commit[DRAW_HEX_LEN + 1], published[DRAW_HEX_LEN + 1];
	draw_commit(seed, seed_commit);
	hex_encode(commit, sizeof commit, published);
	if (!draw_commit_matches(seed, commit_hex)) {
		printf("commit: MISMATCH\n");
		fflush(stdout);
		fprintf(stderr,
		        PROG ": commit mismatch: SHA-256(seed) is %s but the published commit is "
		             "%s; this seed is not the one the raffle committed to\n",
		        seed_commit, published);
		rc = EXIT_MISMATCH;
		goto out;
	}
	printf("commit: ok\nwinners: %zu\n", k);
	for (size_t i = 0; i < k; i++)
		printf("winner %zu: %s\n", i + 1, e[win[i]].contact_id);
	rc = 0;
	if (expect_items) {
		fflush(stdout);
		if (expect_matches(expect_items, expect_n, e, win, k)) {
			printf("expect: ok\n");
		} else {
			printf("expect: MISMATCH\n");
			rc = EXIT_MISMATCH;
		}
	}
out:
	explicit_bzero(seed, sizeof seed);
	free_expect(expect_items);
	free(win);
	free(e);
	free(es.v);
	buf_free(&b);
	if (fflush(stdout) != 0 && rc == 0)
		rc = EXIT_USAGE;
	return rc;
}
