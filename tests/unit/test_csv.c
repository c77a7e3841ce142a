/*
 * test_csv.c - daemon/csv.c: RFC 4180 records (quotes, doubled quotes,
 * delimiters and line ends inside quotes, CRLF / LF / lone CR), the byte
 * order mark, a last line without its end, blank lines, broken records
 * (stray quotes, text after a closing quote, end of file inside quotes, too
 * long, too many fields) followed by good ones, line numbers, other
 * delimiters, stopping early, and that every way of cutting the input into
 * chunks gives the same records as one feed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "util.h"

/* Records rendered as text: fields joined by '|', "<err>" and the line in
 * brackets: "a|b[1]" or "x[3!quote@0]". */
struct out {
	struct buf b;
	int stop_at; /* ask to stop after this record (0: never) */
	int seen;
};

static int on_rec(void *arg, const struct csv_record *r)
{
	struct out *o = arg;
	o->seen++;
	for (size_t i = 0; i < r->n; i++) {
		if (i)
			buf_puts(&o->b, "|");
		for (size_t k = 0; k < r->len[i]; k++) {
			char c = r->f[i][k];
			if (c == '\n')
				buf_puts(&o->b, "\\n");
			else if (c == '\r')
				buf_puts(&o->b, "\\r");
			else if (c == '\0')
				buf_puts(&o->b, "\\0");
			else
				buf_append(&o->b, &c, 1);
		}
		assert_int_equal(r->f[i][r->len[i]], '\0');
	}
	static const char *const e[] = {"", "quote", "long", "fields", "eof"};
	if (r->err)
		buf_printf(&o->b, "[%llu!%s@%zu]", (unsigned long long)r->line, e[r->err],
		           r->err_field);
	else
		buf_printf(&o->b, "[%llu]", (unsigned long long)r->line);
	buf_puts(&o->b, "\n");
	assert_int_equal(r->row, (uint64_t)o->seen);
	return o->stop_at && o->seen == o->stop_at;
}

/* Parse in chunks of `chunk` bytes (0: one feed). */
static char *parse(const char *in, size_t n, size_t chunk, const struct csv_opts *opts)
{
	struct csv *p = csv_new(opts);
	assert_non_null(p);
	struct out o = {0};
	buf_init(&o.b, 0);
	buf_append(&o.b, "", 0);
	if (!chunk)
		chunk = n ? n : 1;
	for (size_t i = 0; i < n; i += chunk) {
		size_t k = n - i < chunk ? n - i : chunk;
		assert_int_equal(csv_feed(p, in + i, k, on_rec, &o), k);
	}
	csv_finish(p, on_rec, &o);
	csv_free(p);
	return buf_steal(&o.b);
}

static void check(const char *in, const char *want)
{
	size_t n = strlen(in);
	char *got = parse(in, n, 0, NULL);
	if (strcmp(got, want) != 0)
		fail_msg("input %s\ngot:\n%swant:\n%s", in, got, want);
	/* every chunk size gives the same records */
	for (size_t chunk = 1; chunk <= n; chunk++) {
		char *g = parse(in, n, chunk, NULL);
		if (strcmp(g, want) != 0)
			fail_msg("input %s chunk %zu\ngot:\n%swant:\n%s", in, chunk, g, want);
		free(g);
	}
	free(got);
}

static void test_basic(void **state)
{
	(void)state;
	check("", "");
	check("a", "a[1]\n");
	check("a,b,c\n1,2,3\n", "a|b|c[1]\n1|2|3[2]\n");
	check("a,b\r\n1,2\r\n", "a|b[1]\n1|2[2]\n");
	check("a,b\r1,2\r", "a|b[1]\n1|2[2]\n");
	check("a,,\n,\n", "a||[1]\n|[2]\n");
	check("x\n\ny\n", "x[1]\n[2]\ny[3]\n");
	check("x\r\n\r\ny", "x[1]\n[2]\ny[3]\n");
	check("last,no-newline", "last|no-newline[1]\n");
}

static void test_quotes(void **state)
{
	(void)state;
	check("\"a,b\",c\n", "a,b|c[1]\n");
	check("\"say \"\"hi\"\"\",x\n", "say \"hi\"|x[1]\n");
	check("\"\"\n", "[1]\n");
	check("\"\",\"\"\n", "|[1]\n");
	check("\"two\nlines\",z\nnext\n", "two\\nlines|z[1]\nnext[3]\n");
	check("\"crlf\r\ninside\",z\r\nnext\r\n", "crlf\\r\\ninside|z[1]\nnext[3]\n");
	check("\"a\"\"\"\n", "a\"[1]\n");
	check("\"ends at eof\"", "ends at eof[1]\n");
	/* Persian text and embedded NUL bytes pass through untouched */
	check("\"\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85\",\xdb\xb1\xdb\xb2\n",
	      "\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85|\xdb\xb1\xdb\xb2[1]\n");
	char nul[] = "a\0b,c\n";
	char *got = parse(nul, sizeof nul - 1, 0, NULL);
	assert_string_equal(got, "a\\0b|c[1]\n");
	free(got);
}

static void test_bom(void **state)
{
	(void)state;
	check("\xEF\xBB\xBFphone,name\n1,2\n", "phone|name[1]\n1|2[2]\n");
	/* only at the very start; a partial BOM is data */
	check("\xEF\xBB"
	      "x\n",
	      "\xEF\xBBx[1]\n");
	check("\xEF\n", "\xEF[1]\n");
	check("\xEF", "\xEF[1]\n");
	check("a\n\xEF\xBB\xBF"
	      "b\n",
	      "a[1]\n\xEF\xBB\xBF"
	      "b[2]\n");
}

static void test_errors(void **state)
{
	(void)state;
	check("ab\"c,d\nok\n", "ab\"c|d[1!quote@0]\nok[2]\n");
	check("\"ab\"c,d\nok\n", "abc|d[1!quote@0]\nok[2]\n");
	check("x,\"open\nstill\n", "x|open\\nstill\\n[1!eof@1]\n");
	check("a,b\n\"unterminated", "a|b[1]\nunterminated[2!eof@0]\n");
}

static void test_limits(void **state)
{
	(void)state;
	struct csv_opts o = {.max_record = 8, .max_fields = 3};
	char *got = parse("12345,67890\nshort\n", strlen("12345,67890\nshort\n"), 0, &o);
	assert_string_equal(got, "12345|678[1!long@1]\nshort[2]\n");
	free(got);
	/* cut inside quotes: the record ends at the next line end, so a stray
	 * quote costs one line, not the rest of the file */
	got = parse("\"a stray quote,x\nnext,1\n", strlen("\"a stray quote,x\nnext,1\n"), 0, &o);
	assert_string_equal(got, "a stray [1!long@0]\nnext|1[2]\n");
	free(got);
	got = parse("a,b,c,d,e\nf\n", strlen("a,b,c,d,e\nf\n"), 0, &o);
	assert_string_equal(got, "a|b|c[1!fields@3]\nf[2]\n");
	free(got);
	for (size_t chunk = 1; chunk < 24; chunk++) {
		got = parse("\"a stray quote,x\nnext,1\n", strlen("\"a stray quote,x\nnext,1\n"),
		            chunk, &o);
		assert_string_equal(got, "a stray [1!long@0]\nnext|1[2]\n");
		free(got);
	}
	/* the default limit: 64 KiB */
	size_t n = 70000;
	char *big = xmalloc(n + 8);
	memset(big, 'x', n);
	memcpy(big + n, "\nok\n", 4);
	got = parse(big, n + 4, 4096, NULL);
	assert_non_null(strstr(got, "[1!long@0]\nok[2]\n"));
	assert_int_equal(strlen(got), 65536 + strlen("[1!long@0]\nok[2]\n"));
	free(got);
	free(big);
}

static void test_delimiters(void **state)
{
	(void)state;
	struct csv_opts semi = {.delim = ';'};
	char *got = parse("a;\"b;c\";d,e\n", strlen("a;\"b;c\";d,e\n"), 0, &semi);
	assert_string_equal(got, "a|b;c|d,e[1]\n");
	free(got);
	struct csv_opts tab = {.delim = '\t'};
	got = parse("a\tb\n", strlen("a\tb\n"), 0, &tab);
	assert_string_equal(got, "a|b[1]\n");
	free(got);
	struct csv_opts bad = {.delim = '"'};
	assert_null(csv_new(&bad));
	bad.delim = '\n';
	assert_null(csv_new(&bad));
	assert_non_null(strstr(csv_strerror(CSV_E_QUOTE), "quote"));
}

static void test_stop_early(void **state)
{
	(void)state;
	const char *in = "a\r\nb\r\nc\r\n";
	struct csv *p = csv_new(NULL);
	struct out o = {.stop_at = 1};
	buf_init(&o.b, 0);
	size_t used = csv_feed(p, in, strlen(in), on_rec, &o);
	/* stopped right after the CR that ended "a" */
	assert_int_equal(used, 2);
	assert_int_equal(csv_rows(p), 1);
	o.stop_at = 0;
	used += csv_feed(p, in + used, strlen(in) - used, on_rec, &o);
	assert_int_equal(used, strlen(in));
	assert_int_equal(csv_finish(p, on_rec, &o), 0);
	assert_string_equal(o.b.p, "a[1]\nb[2]\nc[3]\n");
	assert_int_equal(csv_line(p), 4);
	csv_free(p);
	buf_free(&o.b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_basic),      cmocka_unit_test(test_quotes),
	    cmocka_unit_test(test_bom),        cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_limits),     cmocka_unit_test(test_delimiters),
	    cmocka_unit_test(test_stop_early),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
