/*
 * test_template.c - template.c, table-driven: variables, dotted paths,
 * defaults, sections (truthiness, lists, inverted, standalone lines),
 * comments, filters (date and jdate in zones and languages, fa, num, upper,
 * lower, url) and their chains, HTML escaping only in html mode, Persian and
 * RTL text byte for byte (ZWNJ, RLM/LRM kept); then compile errors with
 * their line and column, the size, nesting, output and work limits.
 * Expected dates were worked out by hand and checked with Python's datetime
 * (2024-03-20T10:30:00Z = 1710930600000 ms = 1 Farvardin 1403, a Wednesday).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jalali.h"
#include "template.h"
#include "text.h"
#include "tz.h"

static const char ctx_json[] =
    "{"
    "\"first_name\": \"سارا\", \"last_name\": \"\", \"name_en\": \"Sara\","
    "\"attrs\": {\"city\": \"تهران\", \"wish\": \"می\u200cخواهم\", \"tier\": \"gold\","
    "  \"html\": \"<b>Tom & \\\"Jerry\\\" 'x'</b>\", \"note\": \"\u200fسلام\u200e\"},"
    "\"event\": {\"amount\": 1250000, \"price\": 1250000.5, \"neg\": -1234567, \"small\": 999,"
    "  \"at\": \"2024-03-20T10:30:00Z\", \"at_ms\": 1710930600000, \"at_ms_real\": 1710930600000.0,"
    "  \"late\": \"2024-03-20T22:00:00Z\", \"offset\": \"2024-03-21T01:30:00.250+03:30\","
    "  \"birthday\": \"1990-05-12\", \"bad_date\": \"yesterday\", \"feb30\": \"2025-02-30\","
    "  \"fa_amount\": \"۱۲۵۰۰۰۰\", \"url\": \"https://x.ir/?q=سلام&a=1 b\"},"
    "\"vip\": true, \"novip\": false, \"empty\": \"\", \"zero\": 0, \"zero_str\": \"0\","
    "\"nothing\": null, \"emptylist\": [], \"emptyobj\": {},"
    "\"list\": [{\"name\": \"a\", \"qty\": 2}, {\"name\": \"b\", \"qty\": 3}],"
    "\"tags\": [\"x\", \"y\"], \"l3\": [1, 2, 3]"
    "}";

static json_t *ctx;

static int setup(void **state)
{
	json_error_t e;

	(void)state;
	ctx = json_loads(ctx_json, 0, &e);
	if (!ctx)
		fprintf(stderr, "context: %s at %d:%d\n", e.text, e.line, e.column);
	return ctx ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	json_decref(ctx);
	tz_cleanup();
	jalali_cleanup();
	return 0;
}

struct rcase {
	const char *tpl;
	int html;
	const char *zone;
	const char *lang;
	const char *want;
};

static const struct rcase cases[] = {
    /* variables, paths, defaults */
    {"سلام {{first_name}}!", 0, NULL, NULL, "سلام سارا!"},
    {"{{ first_name }}|{{attrs.city}}", 0, NULL, NULL, "سارا|تهران"},
    {"[{{missing}}][{{attrs.missing}}][{{attrs.city.x}}][{{nothing}}]", 0, NULL, NULL, "[][][][]"},
    {"{{missing|\"مشتری گرامی\"}}", 0, NULL, NULL, "مشتری گرامی"},
    {"{{last_name|\"مشتری گرامی\"}}", 0, NULL, NULL, "مشتری گرامی"},
    {"{{first_name|\"مشتری گرامی\"}}", 0, NULL, NULL, "سارا"},
    {"{{ missing | \"a \\\"q\\\" \\\\ }}\" }}", 0, NULL, NULL, "a \"q\" \\ }}"},
    {"{{list.1.name}}{{list.9.name}}{{list.x}}", 0, NULL, NULL, "b"},
    {"{{vip}} {{novip}} {{zero}} {{event.price}}", 0, NULL, NULL, "true false 0 1250000.5"},
    {"[{{attrs}}][{{tags}}][{{.}}]", 0, NULL, NULL, "[][][]"},
    {"{{\"{{\"}}literal{{\"}}\"}}", 0, NULL, NULL, "{{literal}}"},
    /* Persian / RTL text byte for byte: ZWNJ inside a word, RLM and LRM */
    {"{{attrs.wish}}", 0, NULL, NULL, "می\u200cخواهم"},
    {"\u200f{{first_name}}\u200e {{attrs.note}}", 0, NULL, NULL,
     "\u200fسارا\u200e \u200fسلام\u200e"},
    {"{{missing|\"نمی\u200cدانم\"}}", 0, NULL, NULL, "نمی\u200cدانم"},
    /* numbers */
    {"{{event.amount|num}}", 0, NULL, NULL, "1,250,000"},
    {"{{event.amount|num|fa}}", 0, NULL, NULL, "۱٬۲۵۰٬۰۰۰"},
    {"{{event.amount|fa|num}}", 0, NULL, NULL, "۱٬۲۵۰٬۰۰۰"},
    {"{{event.amount|fa}}", 0, NULL, NULL, "۱۲۵۰۰۰۰"},
    {"{{event.price|num|fa}}", 0, NULL, NULL, "۱٬۲۵۰٬۰۰۰٫۵"},
    {"{{event.neg|num}} {{event.small|num}}", 0, NULL, NULL, "-1,234,567 999"},
    {"{{event.fa_amount|num}}", 0, NULL, NULL, "۱٬۲۵۰٬۰۰۰"},
    {"{{\"1000\"|num}} {{\"100\"|num}} {{\"-1000.25\"|num}} {{\"+12345\"|num}}", 0, NULL, NULL,
     "1,000 100 -1,000.25 12,345"},
    {"{{\"12a\"|num}} {{\"1.\"|num}} {{\".5\"|num}} {{first_name|num}}", 0, NULL, NULL,
     "12a 1. .5 سارا"},
    {"{{\"شماره 12, نه 3.5\"|fa}}", 0, NULL, NULL, "شماره ۱۲, نه ۳.۵"},
    {"{{missing|num|fa|\"—\"}}", 0, NULL, NULL, "—"},
    /* dates: Gregorian and Jalali, zones, languages, Persian digits */
    {"{{event.at|jdate}} {{event.at|date}}", 0, NULL, NULL, "1403/01/01 2024-03-20"},
    {"{{event.at|jdate:\"d MMMM yyyy\"|fa}}", 0, NULL, "fa", "۱ فروردین ۱۴۰۳"},
    {"{{event.at|jdate:\"d MMMM yyyy\"}}", 0, NULL, "en", "1 Farvardin 1403"},
    {"{{event.at|jdate:\"EEEE d MMMM yyyy، ساعت HH:mm\"|fa}}", 0, "Asia/Tehran", "fa-IR",
     "چهارشنبه ۱ فروردین ۱۴۰۳، ساعت ۱۴:۰۰"},
    {"{{event.at_ms|jdate:\"yyyy/MM/dd HH:mm:ss\"}}", 0, "Asia/Tehran", NULL,
     "1403/01/01 14:00:00"},
    {"{{event.at_ms_real|date:\"yyyy-MM-dd HH:mm\"}}", 0, NULL, NULL, "2024-03-20 10:30"},
    {"{{event.late|jdate}} {{event.late|jdate}}", 0, "Asia/Tehran", NULL, "1403/01/02 1403/01/02"},
    {"{{event.late|date:\"yyyy-MM-dd HH:mm\"}}", 0, "Asia/Tehran", NULL, "2024-03-21 01:30"},
    {"{{event.offset|date:\"yyyy-MM-dd HH:mm:ss\"}}", 0, NULL, NULL, "2024-03-20 22:00:00"},
    {"{{event.at|date:\"EEE, d MMM yyyy HH:mm:ss\"}}", 0, NULL, NULL, "Wed, 20 Mar 2024 10:30:00"},
    {"{{event.at|date:\"EEEE d MMMM yy\"}}", 0, NULL, "fa", "چهارشنبه 20 مارس 24"},
    {"{{event.at|jdate:\"yy/M/d MMM\"}}", 0, NULL, NULL, "03/1/1 Farvardin"},
    {"{{event.at|date:\"'week' E, ''yy\"}}", 0, NULL, NULL, "week Wed, '24"},
    {"{{event.birthday|jdate:\"d MMMM\"|fa}}", 0, "America/Los_Angeles", "fa", "۲۲ اردیبهشت"},
    {"{{event.birthday|date:\"EEEE\"}}", 0, "Asia/Tokyo", NULL, "Saturday"},
    {"{{event.at|jdate}}", 0, "Not/A_Zone", NULL, "1403/01/01"},
    {"[{{event.bad_date|jdate}}][{{event.feb30|date}}][{{vip|date}}]", 0, NULL, NULL, "[][][]"},
    {"{{event.bad_date|jdate|\"نامشخص\"}}", 0, NULL, NULL, "نامشخص"},
    {"{{\"1000000000\"|date:\"yyyy-MM-dd HH:mm:ss\"}}", 0, NULL, NULL, "1970-01-12 13:46:40"},
    {"{{\"-86400000\"|date}} {{\"0001-01-01\"|date:\"yyyy MMMM d\"}}", 0, NULL, NULL,
     "1969-12-31 0001 January 1"},
    {"[{{\"0001-01-01\"|jdate}}][{{\"99999999999999999\"|date}}]", 0, NULL, NULL, "[][]"},
    /* case and URL */
    {"{{name_en|upper}} {{name_en|lower}} {{first_name|upper}}", 0, NULL, NULL, "SARA sara سارا"},
    {"{{event.url|url}}", 0, NULL, NULL,
     "https%3A%2F%2Fx.ir%2F%3Fq%3D%D8%B3%D9%84%D8%A7%D9%85%26a%3D1%20b"},
    /* sections */
    {"{{#vip}}VIP{{/vip}}{{^vip}}no{{/vip}}", 0, NULL, NULL, "VIP"},
    {"{{#novip}}VIP{{/novip}}{{^novip}}no{{/novip}}", 0, NULL, NULL, "no"},
    {"{{#empty}}a{{/empty}}{{#zero}}b{{/zero}}{{#nothing}}c{{/nothing}}{{#missing}}d{{/missing}}"
     "{{#emptylist}}e{{/emptylist}}{{#emptyobj}}f{{/emptyobj}}{{#zero_str}}g{{/zero_str}}",
     0, NULL, NULL, "g"},
    {"{{^empty}}a{{/empty}}{{^zero}}b{{/zero}}{{^emptylist}}e{{/emptylist}}{{^attrs}}x{{/attrs}}",
     0, NULL, NULL, "abe"},
    {"{{#list}}{{name}}×{{qty|fa}} {{/list}}", 0, NULL, NULL, "a×۲ b×۳ "},
    {"{{#tags}}[{{.}}]{{/tags}}", 0, NULL, NULL, "[x][y]"},
    {"{{#list}}{{first_name}}{{/list}}", 0, NULL, NULL, "ساراسارا"},
    {"{{#attrs}}{{city}}/{{tier|upper}}{{/attrs}}", 0, NULL, NULL, "تهران/GOLD"},
    {"{{#event.amount}}{{.|num}}{{/event.amount}}", 0, NULL, NULL, "1,250,000"},
    {"{{#list}}{{#tags}}{{name}}{{.}}{{/tags}}{{/list}}", 0, NULL, NULL, "axaybxby"},
    {"{{# attrs.city }}yes{{/attrs.city}}", 0, NULL, NULL, "yes"},
    /* comments and standalone lines */
    {"a{{! a note for colleagues }}b", 0, NULL, NULL, "ab"},
    {"a\n{{! several\nlines }}\nb", 0, NULL, NULL, "a\nb"},
    {"سلام\n{{#vip}}\n  مشتری ویژه\n{{/vip}}\nپایان", 0, NULL, NULL, "سلام\n  مشتری ویژه\nپایان"},
    {"x\r\n  {{#novip}}  \r\nno\r\n{{/novip}}\r\ny", 0, NULL, NULL, "x\r\ny"},
    {"a {{#vip}}b{{/vip}} c\n", 0, NULL, NULL, "a b c\n"},
    {"{{#vip}}\n{{/vip}}", 0, NULL, NULL, ""},
    /* escaping only in html mode, only substituted values */
    {"<p>{{attrs.html}}</p>", 1, NULL, NULL,
     "<p>&lt;b&gt;Tom &amp; &quot;Jerry&quot; &#39;x&#39;&lt;/b&gt;</p>"},
    {"<p>{{attrs.html}}</p>", 0, NULL, NULL, "<p><b>Tom & \"Jerry\" 'x'</b></p>"},
    {"{{{attrs.html}}}|{{&attrs.html}}", 1, NULL, NULL,
     "<b>Tom & \"Jerry\" 'x'</b>|<b>Tom & \"Jerry\" 'x'</b>"},
    {"<a href=\"?c={{attrs.city|url}}\">{{missing|\"Tom & Co\"}}</a>", 1, NULL, NULL,
     "<a href=\"?c=%D8%AA%D9%87%D8%B1%D8%A7%D9%86\">Tom &amp; Co</a>"},
    {"", 0, NULL, NULL, ""},
    {"no tags at all, {single} braces }}", 0, NULL, NULL, "no tags at all, {single} braces }}"},
};

static void render_ok(const char *tpl, const struct tmpl_opts *o, const char *want)
{
	struct tmpl *t = NULL;
	struct tmpl_error err;
	struct buf out;
	int rc;

	rc = tmpl_compile(tpl, &t, &err);
	if (rc != 0)
		fail_msg("compile \"%s\": %d at %d:%d %s", tpl, rc, err.line, err.col, err.reason);
	buf_init(&out, 1 << 16);
	rc = tmpl_render(t, ctx, o, &out, &err);
	if (rc != 0)
		fail_msg("render \"%s\": %d at %d:%d %s", tpl, rc, err.line, err.col, err.reason);
	if (strcmp(out.p ? out.p : "", want) != 0)
		fail_msg("render \"%s\"\n   got \"%s\"\n  want \"%s\"", tpl, out.p ? out.p : "",
		         want);
	assert_true(utf8_valid(out.p ? out.p : "", out.len));
	buf_free(&out);
	tmpl_free(t);
}

static void test_render_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tmpl_opts o = {
		    .html = cases[i].html, .zone = cases[i].zone, .lang = cases[i].lang};
		render_ok(cases[i].tpl, &o, cases[i].want);
	}
}

/* Compile once, render many: the source may go away, contexts change. */
static void test_compile_once_render_many(void **state)
{
	char *src = strdup("{{first_name|\"مشتری گرامی\"}} {{event.amount|num|fa}}");
	struct tmpl *t;
	struct buf out;
	json_t *c2 = json_pack("{s:s, s:{s:i}}", "first_name", "Ali", "event", "amount", 5000);

	(void)state;
	assert_non_null(src);
	assert_int_equal(tmpl_compile(src, &t, NULL), 0);
	memset(src, 'x', strlen(src));
	free(src);
	buf_init(&out, 1024);
	for (int k = 0; k < 3; k++) {
		buf_reset(&out);
		assert_int_equal(tmpl_render(t, ctx, NULL, &out, NULL), 0);
		assert_string_equal(out.p, "سارا ۱٬۲۵۰٬۰۰۰");
		buf_reset(&out);
		assert_int_equal(tmpl_render(t, c2, NULL, &out, NULL), 0);
		assert_string_equal(out.p, "Ali ۵٬۰۰۰");
	}
	/* an empty context renders defaults; appending keeps what was there */
	json_t *none = json_object();
	assert_int_equal(tmpl_render(t, none, NULL, &out, NULL), 0);
	assert_string_equal(out.p, "Ali ۵٬۰۰۰مشتری گرامی ");
	json_decref(none);
	json_decref(c2);
	buf_free(&out);
	tmpl_free(t);
	tmpl_free(NULL);
}

struct ecase {
	const char *tpl;
	int rc, line, col;
	const char *reason; /* a substring */
};

static const struct ecase errors[] = {
    {"Hello {{name", -EINVAL, 1, 7, "unclosed tag"},
    {"Hello {{name}\nmore }}", -EINVAL, 1, 7, "unclosed tag"},
    {"a {{b {{c}}", -EINVAL, 1, 3, "unclosed tag"},
    {"x {{! comment", -EINVAL, 1, 3, "unclosed comment"},
    {"a\nb {{#vip}}\nx", -EINVAL, 2, 3, "'vip' is never closed"},
    {"{{#a}}{{#b}}x{{/b}}", -EINVAL, 1, 1, "'a' is never closed"},
    {"{{#a}}\n  {{#b}}x{{/a}}", -EINVAL, 2, 10,
     "'a' does not match section 'b' opened at line 2, column 3"},
    {"text\n{{/a}}", -EINVAL, 2, 1, "without an open section"},
    {"{{x|foo}}", -EINVAL, 1, 5, "unknown filter 'foo'"},
    {"سلام {{x|fa|foo}}", -EINVAL, 1, 13, "unknown filter 'foo'"},
    {"سلام\nمشتری {{x | numm}}", -EINVAL, 2, 13, "unknown filter 'numm'"},
    {"ab\xff{{x}}", -EINVAL, 1, 3, "invalid UTF-8"},
    {"سل\xd8", -EINVAL, 1, 3, "invalid UTF-8"},
    {"ok\n\xed\xa0\x80", -EINVAL, 2, 1, "invalid UTF-8"}, /* a surrogate */
    {"{{x|fa:\"y\"}}", -EINVAL, 1, 7, "takes no argument"},
    {"{{x|jdate:\"d q\"}}", -EINVAL, 1, 11, "unknown letter"},
    {"{{x|jdate:\"yyy\"}}", -EINVAL, 1, 11, "yyyy"},
    {"{{x|jdate:\"'open\"}}", -EINVAL, 1, 11, "unterminated quote"},
    {"{{x|jdate:}}", -EINVAL, 1, 11, "expected a \"format\""},
    {"{{>partial}}", -EINVAL, 1, 1, "partials"},
    {"{{=<% %>=}}", -EINVAL, 1, 1, "delimiter"},
    {"{{{x}}", -EINVAL, 1, 5, "'}}}'"},
    {"{{}}", -EINVAL, 1, 3, "empty tag"},
    {"{{  }}", -EINVAL, 1, 5, "empty tag"},
    {"{{#}}", -EINVAL, 1, 4, "without a name"},
    {"{{#x|fa}}x{{/x}}", -EINVAL, 1, 5, "no filters"},
    {"{{a..b}}", -EINVAL, 1, 5, "'.'"},
    {"{{a.}}", -EINVAL, 1, 5, "empty name after '.'"},
    {"{{a b}}", -EINVAL, 1, 5, "expected '|'"},
    {"{{a|}}", -EINVAL, 1, 5, "expected a filter"},
    {"{{a|\"x\\n\"}}", -EINVAL, 1, 7, "unknown escape"},
    {"{{a|\"open}}", -EINVAL, 1, 1, "unclosed tag"},
    {"{{a|fa|fa|fa|fa|fa|fa|fa|fa|fa}}", -EINVAL, 1, 29, "more than 8 filters"},
    {"{{a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q}}", -EINVAL, 1, 3, "more than 16 parts"},
    {"{{a{b}}", -EINVAL, 1, 4, "expected '|'"},
};

static void test_compile_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
		const struct ecase *e = &errors[i];
		struct tmpl *t = (struct tmpl *)1;
		struct tmpl_error err;
		int rc = tmpl_compile(e->tpl, &t, &err);

		if (rc != e->rc || err.line != e->line || err.col != e->col ||
		    !strstr(err.reason, e->reason))
			fail_msg("\"%s\": got %d at %d:%d \"%s\", want %d at %d:%d \"%s\"", e->tpl,
			         rc, err.line, err.col, err.reason, e->rc, e->line, e->col,
			         e->reason);
		assert_null(t);
	}
	/* err may be NULL */
	struct tmpl *t;
	assert_int_equal(tmpl_compile("{{#a}}", &t, NULL), -EINVAL);
	assert_int_equal(tmpl_compile(NULL, &t, NULL), -EINVAL);
}

static char *nested(int depth)
{
	struct buf b;

	buf_init(&b, 0);
	for (int i = 0; i < depth; i++)
		buf_printf(&b, "{{#l3}}");
	buf_puts(&b, "x");
	for (int i = 0; i < depth; i++)
		buf_printf(&b, "{{/l3}}");
	return buf_steal(&b);
}

static void test_nesting_limit(void **state)
{
	struct tmpl *t;
	struct tmpl_error err;
	char *s;

	(void)state;
	s = nested(TMPL_MAX_DEPTH);
	assert_int_equal(tmpl_compile(s, &t, &err), 0);
	tmpl_free(t);
	free(s);
	s = nested(TMPL_MAX_DEPTH + 1);
	assert_int_equal(tmpl_compile(s, &t, &err), -EINVAL);
	assert_int_equal(err.line, 1);
	assert_int_equal(err.col, 1 + 7 * TMPL_MAX_DEPTH); /* the 17th "{{#l3}}" */
	assert_non_null(strstr(err.reason, "deeper than 16"));
	free(s);

	/* a few levels render and repeat: 3 x 3 x 3 */
	s = nested(3);
	struct buf out;
	buf_init(&out, 0);
	assert_int_equal(tmpl_compile(s, &t, &err), 0);
	assert_int_equal(tmpl_render(t, ctx, NULL, &out, &err), 0);
	assert_int_equal(out.len, 27);
	tmpl_free(t);
	free(s);

	/* 16 levels over a 3-element list is 3^16 renders: refused, bounded */
	s = nested(TMPL_MAX_DEPTH);
	buf_reset(&out);
	assert_int_equal(tmpl_compile(s, &t, &err), 0);
	assert_int_equal(tmpl_render(t, ctx, NULL, &out, &err), -E2BIG);
	assert_int_equal(err.line, 1);
	assert_non_null(strstr(err.reason, "steps"));
	tmpl_free(t);
	free(s);
	buf_free(&out);
}

static void test_size_limits(void **state)
{
	struct tmpl *t;
	struct tmpl_error err;
	char *s = malloc(TMPL_MAX_SRC + 2);

	(void)state;
	assert_non_null(s);
	memset(s, 'a', TMPL_MAX_SRC);
	s[TMPL_MAX_SRC] = '\0';
	assert_int_equal(tmpl_compile(s, &t, &err), 0);
	tmpl_free(t);
	s[TMPL_MAX_SRC] = 'a';
	s[TMPL_MAX_SRC + 1] = '\0';
	assert_int_equal(tmpl_compile(s, &t, &err), -E2BIG);
	assert_null(t);
	assert_int_equal(err.line, 0);
	assert_non_null(strstr(err.reason, "65536"));
	free(s);
}

static void test_output_cap(void **state)
{
	struct tmpl *t;
	struct tmpl_error err;
	struct buf out;

	(void)state;
	assert_int_equal(tmpl_compile("0123456789", &t, &err), 0);
	buf_init(&out, 10);
	assert_int_equal(tmpl_render(t, ctx, NULL, &out, &err), 0);
	assert_int_equal(out.len, 10);
	assert_int_equal(tmpl_render(t, ctx, NULL, &out, &err), -ENOSPC);
	assert_non_null(strstr(err.reason, "longer than 10 bytes"));
	tmpl_free(t);
	buf_free(&out);

	/* the tag that overflowed is named; escaping counts */
	assert_int_equal(tmpl_compile("abc\n  {{attrs.html}}", &t, &err), 0);
	buf_init(&out, 30);
	struct tmpl_opts html = {.html = 1};
	assert_int_equal(tmpl_render(t, ctx, NULL, &out, &err), 0); /* 4 + 2 + 24 */
	buf_reset(&out);
	assert_int_equal(tmpl_render(t, ctx, &html, &out, &err), -ENOSPC);
	assert_int_equal(err.line, 2);
	assert_int_equal(err.col, 3);
	tmpl_free(t);
	buf_free(&out);

	/* a value too large for the cap even before it reaches the output */
	assert_int_equal(tmpl_compile("{{event.url|url|url|url}}", &t, &err), 0);
	buf_init(&out, 64);
	assert_int_equal(tmpl_render(t, ctx, NULL, &out, &err), -ENOSPC);
	tmpl_free(t);
	buf_free(&out);
}

static void test_bad_context(void **state)
{
	struct tmpl *t;
	struct tmpl_error err;
	struct buf out;
	json_t *arr = json_array();
	json_t *bad = json_object();

	(void)state;
	buf_init(&out, 100);
	assert_int_equal(tmpl_compile("{{x}}", &t, &err), 0);
	assert_int_equal(tmpl_render(t, arr, NULL, &out, &err), -EINVAL);
	assert_int_equal(tmpl_render(t, NULL, NULL, &out, &err), -EINVAL);
	/* a string that is not valid UTF-8 (built unchecked) renders as missing */
	json_object_set_new(bad, "x", json_stringn_nocheck("a\xff", 2));
	assert_int_equal(tmpl_render(t, bad, NULL, &out, &err), 0);
	assert_int_equal(out.len, 0);
	tmpl_free(t);
	buf_free(&out);
	json_decref(arr);
	json_decref(bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_render_table),   cmocka_unit_test(test_compile_once_render_many),
	    cmocka_unit_test(test_compile_errors), cmocka_unit_test(test_nesting_limit),
	    cmocka_unit_test(test_size_limits),    cmocka_unit_test(test_output_cap),
	    cmocka_unit_test(test_bad_context),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
