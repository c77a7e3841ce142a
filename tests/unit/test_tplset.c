/*
 * test_tplset.c - tplset.c: parsing and validation of template definitions
 * (field paths such as "variants[1].text", positions of syntax errors, the
 * limits), the choice of a variant (channel, then the contact's language,
 * its base, default_lang, the first; "any" only when the channel has no
 * variant), rendering of Persian text byte for byte, HTML escaping in the
 * html part only, Jalali dates through the context in the contact's zone,
 * the render context from an HGETALL reply and from an inline contact, and
 * the (id, v) cache with its eviction.
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
#include "tplset.h"
#include "tz.h"

static json_t *parse_json(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, JSON_ALLOW_NUL, &e);
	if (!j)
		fail_msg("bad test JSON: %s at %d:%d", e.text, e.line, e.column);
	return j;
}

static struct tplset *must_parse(const char *def)
{
	json_t *j = parse_json(def);
	struct tplset *ts = NULL;
	const char *field = NULL;
	struct tmpl_error err;
	int r = tplset_parse(j, &ts, &field, &err);
	if (r != 0)
		fail_msg("parse failed: %s: %s (line %d col %d)", field, err.reason, err.line,
		         err.col);
	json_decref(j);
	return ts;
}

/* The welcome template of docs/templates.md: sms in fa and en, email in fa
 * (with html) and en, chat only through "any". */
static const char welcome_def[] =
    "{\"id\":\"welcome\",\"name\":\"خوش‌آمد\",\"default_lang\":\"fa\",\"variants\":["
    "{\"channel\":\"sms\",\"lang\":\"fa\",\"text\":\"سلام {{first_name|\\\"مشتری "
    "گرامی\\\"}}! امتیاز شما: {{points|num|fa}}\"},"
    "{\"channel\":\"sms\",\"lang\":\"en\",\"text\":\"Hi {{first_name|\\\"friend\\\"}}! "
    "Points: {{points|num}}\"},"
    "{\"channel\":\"email\",\"lang\":\"fa\",\"subject\":\"خوش آمدید {{first_name}}\","
    "\"text\":\"سلام {{first_name}}\",\"html\":\"<p>سلام <b>{{first_name}}</b></p>\"},"
    "{\"channel\":\"email\",\"lang\":\"en\",\"subject\":\"Welcome {{first_name}}\","
    "\"text\":\"Hello {{first_name}}\"},"
    "{\"channel\":\"any\",\"lang\":\"en\",\"text\":\"any-en {{first_name}}\"},"
    "{\"channel\":\"any\",\"lang\":\"fa-af\",\"text\":\"any-fa-af\"}"
    "]}";

static void render_ok(const struct tplset *ts, const char *kind, const char *lang,
                      const json_t *ctx, const char *zone, struct tpl_rendered *out)
{
	struct tmpl_error err;
	int r = tplset_render(ts, kind, lang, ctx, zone, out, &err);
	if (r != 0)
		fail_msg("render %s/%s: %d %s", kind, lang ? lang : "(null)", r, err.reason);
}

static void test_parse_and_fallback(void **state)
{
	(void)state;
	struct tplset *ts = must_parse(welcome_def);
	assert_string_equal(tplset_id(ts), "welcome");
	json_t *ctx = tpl_context_json(NULL, NULL, NULL);
	json_object_set_new(ctx, "first_name", json_string("Sara"));
	struct tpl_rendered r;

	static const struct {
		const char *kind, *lang, *want_lang, *want_prefix;
	} cases[] = {
	    {"sms", "fa", "fa", "سلام Sara"},
	    {"sms", "fa-IR", "fa", "سلام Sara"}, /* base */
	    {"sms", "fa_IR", "fa", "سلام Sara"},
	    {"sms", "FA", "fa", "سلام Sara"},
	    {"sms", "en", "en", "Hi Sara"},
	    {"sms", "en-GB", "en", "Hi Sara"},
	    {"sms", "de", "fa", "سلام Sara"}, /* default_lang */
	    {"sms", NULL, "fa", "سلام Sara"},
	    {"sms", "", "fa", "سلام Sara"},
	    {"email", "en", "en", "Hello Sara"},
	    {"email", "de-AT", "fa", "سلام Sara"},
	    {"chat", "en", "en", "any-en Sara"}, /* no chat variant: any */
	    {"chat", "fa-AF", "fa-af", "any-fa-af"},
	    {"chat", "fa", "fa-af", "any-fa-af"}, /* same base */
	    /* de: no such any variant; default_lang fa has none either, but
	     * one of the same base (fa-af) wins over the first (en) */
	    {"chat", "de", "fa-af", "any-fa-af"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		render_ok(ts, cases[i].kind, cases[i].lang, ctx, NULL, &r);
		if (strcmp(r.lang, cases[i].want_lang) != 0 ||
		    strncmp(r.text, cases[i].want_prefix, strlen(cases[i].want_prefix)) != 0)
			fail_msg("case %zu %s/%s: got %s '%s'", i, cases[i].kind,
			         cases[i].lang ? cases[i].lang : "(null)", r.lang, r.text);
		if (strcmp(cases[i].kind, "email") == 0)
			assert_non_null(r.subject);
		else
			assert_null(r.subject), assert_null(r.html);
		tpl_rendered_free(&r);
	}

	/* no default_lang: the first variant of the kind */
	struct tplset *t2 = must_parse("{\"variants\":["
	                               "{\"channel\":\"sms\",\"lang\":\"en\",\"text\":\"E\"},"
	                               "{\"channel\":\"sms\",\"lang\":\"fa\",\"text\":\"F\"}]}");
	assert_string_equal(tplset_id(t2), "");
	render_ok(t2, "sms", "de", ctx, NULL, &r);
	assert_string_equal(r.text, "E");
	assert_string_equal(r.lang, "en");
	tpl_rendered_free(&r);
	render_ok(t2, "sms", "fa", ctx, NULL, &r);
	assert_string_equal(r.text, "F");
	tpl_rendered_free(&r);
	/* no variant at all for the kind, no any */
	struct tmpl_error err;
	assert_int_equal(tplset_render(t2, "email", "en", ctx, NULL, &r, &err), -ENOENT);
	assert_null(r.text);
	assert_int_equal(tplset_render(t2, "any", "en", ctx, NULL, &r, &err), -EINVAL);
	assert_int_equal(tplset_render(t2, "fax", "en", ctx, NULL, &r, &err), -EINVAL);
	tplset_free(t2);

	/* the base itself ("fa" for "fa-IR") before another of the same base */
	t2 = must_parse("{\"variants\":["
	                "{\"channel\":\"sms\",\"lang\":\"en\",\"text\":\"E\"},"
	                "{\"channel\":\"sms\",\"lang\":\"fa-af\",\"text\":\"AF\"},"
	                "{\"channel\":\"sms\",\"lang\":\"fa\",\"text\":\"F\"}]}");
	render_ok(t2, "sms", "fa-IR", ctx, NULL, &r);
	assert_string_equal(r.text, "F");
	tpl_rendered_free(&r);
	render_ok(t2, "sms", "fa-AF", ctx, NULL, &r);
	assert_string_equal(r.text, "AF");
	tpl_rendered_free(&r);
	tplset_free(t2);

	/* an email from an any variant without subject: "" */
	struct tplset *t3 = must_parse("{\"variants\":[{\"channel\":\"any\",\"lang\":\"en\","
	                               "\"text\":\"T\",\"html\":\"<i>{{first_name}}</i>\"}]}");
	render_ok(t3, "email", "en", ctx, NULL, &r);
	assert_string_equal(r.subject, "");
	assert_string_equal(r.html, "<i>Sara</i>");
	tpl_rendered_free(&r);
	render_ok(t3, "sms", "en", ctx, NULL, &r);
	assert_null(r.html);
	assert_null(r.subject);
	tpl_rendered_free(&r);
	tplset_free(t3);

	json_decref(ctx);
	tplset_free(ts);
}

static void test_persian_and_escaping(void **state)
{
	(void)state;
	struct tplset *ts = must_parse(welcome_def);
	json_t *contact = parse_json("{\"first_name\":\"<script>alert('x')</script> & "
	                             "\\\"co\\\"\",\"points\":1250000,\"lang\":\"fa\"}");
	json_t *ctx = tpl_context_json(contact, NULL, NULL);
	struct tpl_rendered r;

	render_ok(ts, "email", "fa", ctx, NULL, &r);
	assert_string_equal(r.subject, "خوش آمدید <script>alert('x')</script> & \"co\"");
	assert_string_equal(r.text, "سلام <script>alert('x')</script> & \"co\"");
	assert_string_equal(r.html, "<p>سلام <b>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; "
	                            "&amp; &quot;co&quot;</b></p>");
	assert_string_equal(r.lang, "fa");
	tpl_rendered_free(&r);
	json_decref(ctx);
	json_decref(contact);

	/* Persian default text, Persian digits with the Persian separator; a
	 * ZWNJ and RLM survive byte for byte */
	ctx = tpl_context_json(NULL, NULL, NULL);
	json_object_set_new(ctx, "points", json_integer(1250000));
	render_ok(ts, "sms", "fa", ctx, NULL, &r);
	assert_string_equal(r.text, "سلام مشتری گرامی! امتیاز شما: ۱٬۲۵۰٬۰۰۰");
	tpl_rendered_free(&r);
	render_ok(ts, "sms", "en", ctx, NULL, &r);
	assert_string_equal(r.text, "Hi friend! Points: 1,250,000");
	tpl_rendered_free(&r);
	tplset_free(ts);

	ts = must_parse("{\"variants\":[{\"channel\":\"sms\",\"lang\":\"fa\","
	                "\"text\":\"\u200f\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 "
	                "{{attrs.city}}\u200e\"}]}");
	json_object_set_new(ctx, "attrs", parse_json("{\"city\":\"تهران\"}"));
	render_ok(ts, "sms", "fa", ctx, NULL, &r);
	assert_string_equal(r.text, "\u200fمی\u200cخواهم تهران\u200e");
	tpl_rendered_free(&r);
	tplset_free(ts);

	/* a subject stays one line even when a value has a line break */
	ts = must_parse("{\"variants\":[{\"channel\":\"email\",\"lang\":\"en\","
	                "\"subject\":\"Hi {{first_name}}\",\"text\":\"{{first_name}}\"}]}");
	json_object_set_new(ctx, "first_name", json_string("A\r\nBcc: x"));
	render_ok(ts, "email", "en", ctx, NULL, &r);
	assert_string_equal(r.subject, "Hi A  Bcc: x");
	assert_string_equal(r.text, "A\r\nBcc: x");
	tpl_rendered_free(&r);
	tplset_free(ts);
	json_decref(ctx);
}

/* A fake HGETALL reply. */
struct fake_reply {
	redisReply top;
	redisReply el[64];
	redisReply *ptr[64];
};

static void fake_hash(struct fake_reply *f, const char *const *kv, size_t n)
{
	memset(f, 0, sizeof *f);
	f->top.type = REDIS_REPLY_ARRAY;
	f->top.elements = n;
	f->top.element = f->ptr;
	for (size_t i = 0; i < n; i++) {
		f->el[i].type = REDIS_REPLY_STRING;
		f->el[i].str = (char *)kv[i];
		f->el[i].len = strlen(kv[i]);
		f->ptr[i] = &f->el[i];
	}
}

static void test_context_from_reply(void **state)
{
	(void)state;
	static const char *const kv[] = {
	    "id",         "01HZX0000000000000000000AB",
	    "name",       "سارا رضایی",
	    "first_name", "سارا",
	    "lang",       "fa-IR",
	    "tz",         "Asia/Tehran",
	    "tier",       "gold",
	    "points",     "1200",
	    "ref",        "SARA7",
	    "created",    "1710930600000",
	    "tags",       "[\"vip\",\"tehran\"]",
	    "x:city",     "\"تهران\"",
	    "x:birthday", "\"1990-05-12\"",
	    "x:kids",     "2",
	    "x:not_json", "plain text",
	    "a:sms",      "+989121234567",
	    "prefs",      "{}",
	    "bad_utf8",   "\xff",
	    "last_name",  "\xc3",
	};
	struct fake_reply f;
	fake_hash(&f, kv, sizeof kv / sizeof kv[0]);
	json_t *event = parse_json("{\"amount\":1250000,\"at\":\"2024-03-20T22:00:00Z\"}");
	json_t *vars = parse_json("{\"code\":\"YALDA\",\"first_name\":\"override\"}");
	json_t *ctx = tpl_context(&f.top, event, vars);

	assert_string_equal(json_string_value(json_object_get(ctx, "name")), "سارا رضایی");
	assert_string_equal(json_string_value(json_object_get(ctx, "tier")), "gold");
	assert_string_equal(json_string_value(json_object_get(ctx, "ref")), "SARA7");
	assert_int_equal(json_integer_value(json_object_get(ctx, "points")), 1200);
	assert_int_equal(json_integer_value(json_object_get(ctx, "created")), 1710930600000LL);
	json_t *attrs = json_object_get(ctx, "attrs");
	assert_string_equal(json_string_value(json_object_get(attrs, "city")), "تهران");
	assert_int_equal(json_integer_value(json_object_get(attrs, "kids")), 2);
	assert_string_equal(json_string_value(json_object_get(attrs, "not_json")), "plain text");
	assert_int_equal(json_array_size(json_object_get(ctx, "tags")), 2);
	assert_null(json_object_get(ctx, "a:sms"));
	assert_null(json_object_get(ctx, "prefs"));
	assert_null(json_object_get(ctx, "bad_utf8"));
	assert_null(json_object_get(ctx, "last_name")); /* invalid UTF-8 skipped */
	/* vars merged at the top (winning) and as "vars"; event borrowed */
	assert_string_equal(json_string_value(json_object_get(ctx, "first_name")), "override");
	assert_string_equal(json_string_value(json_object_get(ctx, "code")), "YALDA");
	assert_ptr_equal(json_object_get(ctx, "event"), event);
	assert_ptr_equal(json_object_get(ctx, "vars"), vars);

	/* Jalali date through the context: a purchase at 22:00 UTC on 20 March
	 * 2024 is already 2 Farvardin 1403 in Tehran; in UTC still the 1st. */
	struct tplset *ts = must_parse(
	    "{\"default_lang\":\"fa\",\"variants\":["
	    "{\"channel\":\"sms\",\"lang\":\"fa\",\"text\":\"{{attrs.city}}: "
	    "{{event.at|jdate:\\\"EEEE d MMMM yyyy\\\"|fa}} "
	    "{{event.amount|num|fa}} {{code}} {{vars.code}} "
	    "{{#tags}}[{{.}}]{{/tags}}{{^missing}}!{{/missing}} "
	    "{{attrs.birthday|jdate}}\"},"
	    "{\"channel\":\"sms\",\"lang\":\"en\",\"text\":\"{{event.at|jdate:\\\"d MMMM "
	    "yyyy\\\"}} {{event.at|date:\\\"d MMMM yyyy HH:mm\\\"}}\"}]}");
	struct tpl_rendered r;
	render_ok(ts, "sms", json_string_value(json_object_get(ctx, "lang")), ctx, "Asia/Tehran",
	          &r);
	assert_string_equal(r.lang, "fa");
	assert_string_equal(r.text, "تهران: پنجشنبه ۲ فروردین ۱۴۰۳ ۱٬۲۵۰٬۰۰۰ YALDA YALDA "
	                            "[vip][tehran]! 1369/02/22");
	tpl_rendered_free(&r);
	render_ok(ts, "sms", "en", ctx, "UTC", &r);
	assert_string_equal(r.text, "1 Farvardin 1403 20 March 2024 22:00");
	tpl_rendered_free(&r);
	render_ok(ts, "sms", "en", ctx, "Asia/Tehran", &r);
	assert_string_equal(r.text, "2 Farvardin 1403 21 March 2024 01:30");
	tpl_rendered_free(&r);
	tplset_free(ts);
	json_decref(ctx);

	/* no contact, nothing else: defaults for points, attrs, tags */
	ctx = tpl_context(NULL, NULL, NULL);
	assert_int_equal(json_integer_value(json_object_get(ctx, "points")), 0);
	assert_true(json_is_object(json_object_get(ctx, "attrs")));
	assert_true(json_is_array(json_object_get(ctx, "tags")));
	assert_null(json_object_get(ctx, "event"));
	json_decref(ctx);

	/* the inline (API) form */
	json_t *c = parse_json("{\"id\":\"x\",\"first_name\":\"Ali\",\"points\":\"42\","
	                       "\"attrs\":{\"city\":\"Shiraz\"},\"tags\":[\"a\"],"
	                       "\"addresses\":{\"sms\":\"+98912\"},\"name\":5}");
	ctx = tpl_context_json(c, event, NULL);
	assert_string_equal(json_string_value(json_object_get(ctx, "first_name")), "Ali");
	assert_int_equal(json_integer_value(json_object_get(ctx, "points")), 42);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(ctx, "attrs"), "city")), "Shiraz");
	assert_null(json_object_get(ctx, "addresses"));
	assert_null(json_object_get(ctx, "name"));
	assert_null(json_object_get(ctx, "vars"));
	assert_ptr_equal(json_object_get(ctx, "event"), event);
	json_decref(ctx);
	json_decref(c);
	json_decref(event);
	json_decref(vars);
}

struct err_case {
	const char *def;
	const char *field;
	int line, col;
	const char *reason_part;
};

static const struct err_case err_cases[] = {
    {"[]", "", 0, 0, "JSON object"},
    {"{}", "variants", 0, 0, "required"},
    {"{\"variants\":[]}", "variants", 0, 0, "1 to 32"},
    {"{\"variants\":{}}", "variants", 0, 0, "list"},
    {"{\"variants\":[1]}", "variants[0]", 0, 0, "object"},
    {"{\"id\":\"Bad Id\",\"variants\":[]}", "id", 0, 0, "a-z"},
    {"{\"id\":\"\",\"variants\":[]}", "id", 0, 0, "a-z"},
    {"{\"name\":7,\"variants\":[]}", "name", 0, 0, "string"},
    {"{\"name\":\"a\\nb\",\"variants\":[]}", "name", 0, 0, "control"},
    {"{\"colour\":\"red\",\"variants\":[]}", "colour", 0, 0, "unknown field"},
    {"{\"default_lang\":\"FA\",\"variants\":[]}", "default_lang", 0, 0, "a-z"},
    {"{\"variants\":[{\"lang\":\"fa\",\"text\":\"x\"}]}", "variants[0].channel", 0, 0, "required"},
    {"{\"variants\":[{\"channel\":\"fax\",\"lang\":\"fa\",\"text\":\"x\"}]}", "variants[0].channel",
     0, 0, "sms, email, chat or any"},
    {"{\"variants\":[{\"channel\":\"sms\",\"text\":\"x\"}]}", "variants[0].lang", 0, 0, "required"},
    {"{\"variants\":[{\"channel\":\"sms\",\"lang\":\"f\",\"text\":\"x\"}]}", "variants[0].lang", 0,
     0, "2 to 8"},
    {"{\"variants\":[{\"channel\":\"sms\",\"lang\":\"fa-\",\"text\":\"x\"}]}", "variants[0].lang",
     0, 0, "2 to 8"},
    {"{\"variants\":[{\"channel\":\"sms\",\"lang\":\"abcdefghi\",\"text\":\"x\"}]}",
     "variants[0].lang", 0, 0, "2 to 8"},
    {"{\"variants\":[{\"channel\":\"sms\",\"lang\":\"fa\"}]}", "variants[0].text", 0, 0,
     "required"},
    {"{\"variants\":[{\"channel\":\"sms\",\"lang\":\"fa\",\"text\":\"\"}]}", "variants[0].text", 0,
     0, "empty"},
    {"{\"variants\":[{\"channel\":\"sms\",\"lang\":\"fa\",\"text\":7}]}", "variants[0].text", 0, 0,
     "string"},
    {"{\"variants\":[{\"channel\":\"sms\",\"lang\":\"fa\",\"text\":\"a\\u0000b\"}]}",
     "variants[0].text", 0, 0, "NUL"},
    {"{\"variants\":[{\"channel\":\"email\",\"lang\":\"fa\",\"text\":\"x\"}]}",
     "variants[0].subject", 0, 0, "required"},
    {"{\"variants\":[{\"channel\":\"email\",\"lang\":\"fa\",\"subject\":\"a\\nb\","
     "\"text\":\"x\"}]}",
     "variants[0].subject", 0, 0, "one line"},
    {"{\"variants\":[{\"channel\":\"sms\",\"lang\":\"fa\",\"text\":\"x\",\"html\":\"<b>\"}]}",
     "variants[0].html", 0, 0, "only email"},
    {"{\"variants\":[{\"channel\":\"sms\",\"lang\":\"fa\",\"text\":\"x\",\"subj\":\"s\"}]}",
     "variants[0].subj", 0, 0, "unknown field"},
    /* template syntax errors carry the position (columns in code points) */
    {"{\"variants\":[{\"channel\":\"sms\",\"lang\":\"en\",\"text\":\"ok\"},"
     "{\"channel\":\"sms\",\"lang\":\"fa\",\"text\":\"سلام {{first_name\"}]}",
     "variants[1].text", 1, 6, "unclosed tag"},
    {"{\"variants\":[{\"channel\":\"email\",\"lang\":\"fa\",\"subject\":\"s\",\"text\":\"t\","
     "\"html\":\"<p>\\n  {{#vip}}x{{/gold}}</p>\"}]}",
     "variants[0].html", 2, 12, "does not match"},
    {"{\"variants\":[{\"channel\":\"email\",\"lang\":\"fa\",\"subject\":\"{{x|numm}}\","
     "\"text\":\"t\"}]}",
     "variants[0].subject", 1, 5, "unknown filter"},
    {"{\"variants\":[{\"channel\":\"sms\",\"lang\":\"fa\",\"text\":\"a\"},"
     "{\"channel\":\"sms\",\"lang\":\"fa\",\"text\":\"b\"}]}",
     "variants[1]", 0, 0, "second sms variant in fa"},
};

static void test_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof err_cases / sizeof err_cases[0]; i++) {
		const struct err_case *c = &err_cases[i];
		json_t *j = parse_json(c->def);
		struct tplset *ts = (struct tplset *)1;
		const char *field = NULL;
		struct tmpl_error err;
		memset(&err, 0x55, sizeof err);
		int r = tplset_parse(j, &ts, &field, &err);
		if (r != -EINVAL || ts != NULL || !field || strcmp(field, c->field) != 0 ||
		    !strstr(err.reason, c->reason_part) ||
		    (c->line && (err.line != c->line || err.col != c->col)) ||
		    (!c->line && err.line != 0))
			fail_msg("case %zu %s: r=%d field=%s line=%d col=%d reason=%s", i, c->def,
			         r, field ? field : "(null)", err.line, err.col, err.reason);
		assert_true(tplset_check(j, NULL, NULL) >= 1);
		json_decref(j);
	}

	/* more than 32 variants */
	json_t *def = json_object(), *vs = json_array();
	for (int i = 0; i < TPLSET_MAX_VARIANTS + 1; i++) {
		char lang[8];
		snprintf(lang, sizeof lang, "l%c", 'a' + i % 26);
		json_array_append_new(vs, json_pack("{s:s, s:s, s:s}", "channel",
		                                    i < 26 ? "sms" : "chat", "lang", lang, "text",
		                                    "x"));
	}
	json_object_set_new(def, "variants", vs);
	struct tplset *ts;
	const char *field;
	struct tmpl_error err;
	assert_int_equal(tplset_parse(def, &ts, &field, &err), -EINVAL);
	assert_string_equal(field, "variants");
	json_array_remove(vs, 0);
	assert_int_equal(tplset_parse(def, &ts, &field, &err), 0);
	tplset_free(ts);
	json_decref(def);

	/* a template over 64 KiB: no position, a reason */
	char *big = xmalloc(TMPL_MAX_SRC + 2);
	memset(big, 'a', TMPL_MAX_SRC + 1);
	big[TMPL_MAX_SRC + 1] = '\0';
	def = json_pack("{s:[{s:s, s:s, s:s}]}", "variants", "channel", "sms", "lang", "fa", "text",
	                big);
	assert_int_equal(tplset_parse(def, &ts, &field, &err), -EINVAL);
	assert_string_equal(field, "variants[0].text");
	assert_int_equal(err.line, 0);
	assert_true(err.reason[0] != '\0');
	json_decref(def);
	free(big);
}

struct collected {
	int n;
	char fields[8][96];
	int lines[8];
};

static void collect(void *arg, const char *field, const struct tmpl_error *e)
{
	struct collected *c = arg;
	if (c->n < 8) {
		snprintf(c->fields[c->n], sizeof c->fields[0], "%s", field);
		c->lines[c->n] = e->line;
	}
	c->n++;
}

static void test_check_all(void **state)
{
	(void)state;
	json_t *j = parse_json("{\"id\":\"ok_id-1\",\"extra\":1,\"variants\":["
	                       "{\"channel\":\"sms\",\"lang\":\"fa\",\"text\":\"{{a\"},"
	                       "{\"channel\":\"email\",\"lang\":\"en\",\"text\":\"ok\"},"
	                       "{\"channel\":\"chat\",\"lang\":\"en\",\"text\":\"x\\n{{/b}}\"}]}");
	struct collected c;
	memset(&c, 0, sizeof c);
	assert_int_equal(tplset_check(j, collect, &c), 4);
	assert_int_equal(c.n, 4);
	assert_string_equal(c.fields[0], "extra");
	assert_string_equal(c.fields[1], "variants[0].text");
	assert_int_equal(c.lines[1], 1);
	assert_string_equal(c.fields[2], "variants[1].subject");
	assert_string_equal(c.fields[3], "variants[2].text");
	assert_int_equal(c.lines[3], 2);
	json_decref(j);
	j = parse_json(welcome_def);
	assert_int_equal(tplset_check(j, collect, &c), 0);
	json_decref(j);
	assert_true(tplset_id_valid("a"));
	assert_true(tplset_id_valid("welcome_2024-fa"));
	assert_false(tplset_id_valid(""));
	assert_false(tplset_id_valid("Welcome"));
	assert_false(tplset_id_valid("a/b"));
	assert_false(tplset_id_valid(NULL));
	char id[TPLSET_ID_MAX + 2];
	memset(id, 'a', sizeof id - 1);
	id[TPLSET_ID_MAX] = '\0';
	assert_true(tplset_id_valid(id));
	id[TPLSET_ID_MAX] = 'a';
	id[TPLSET_ID_MAX + 1] = '\0';
	assert_false(tplset_id_valid(id));
}

static void test_render_limits(void **state)
{
	(void)state;
	struct tplset *ts = must_parse("{\"variants\":[{\"channel\":\"email\",\"lang\":\"en\","
	                               "\"subject\":\"s\",\"text\":\"ok\","
	                               "\"html\":\"{{#l}}{{{big}}}{{/l}}\"}]}");
	json_t *ctx = tpl_context_json(NULL, NULL, NULL);
	char *big = xmalloc(100001);
	memset(big, 'x', 100000);
	big[100000] = '\0';
	json_object_set_new(ctx, "big", json_string(big));
	json_object_set_new(ctx, "l", json_pack("[i,i]", 1, 2));
	struct tpl_rendered r;
	struct tmpl_error err;
	render_ok(ts, "email", "en", ctx, NULL, &r);
	assert_int_equal(strlen(r.html), 200000);
	tpl_rendered_free(&r);
	json_object_set_new(ctx, "l", json_pack("[i,i,i]", 1, 2, 3));
	assert_int_equal(tplset_render(ts, "email", "en", ctx, NULL, &r, &err), -ENOSPC);
	assert_non_null(strstr(err.reason, "variants[0].html"));
	assert_null(r.text);
	assert_null(r.subject);
	assert_null(r.html);
	free(big);
	json_decref(ctx);
	tplset_free(ts);
}

static struct tplset *named(const char *id, const char *text)
{
	char def[256];
	snprintf(def, sizeof def,
	         "{\"id\":\"%s\",\"variants\":[{\"channel\":\"sms\",\"lang\":\"en\","
	         "\"text\":\"%s\"}]}",
	         id, text);
	return must_parse(def);
}

static void test_cache(void **state)
{
	(void)state;
	struct tplset_cache *c = tplset_cache_new(2);
	struct tplset *a1 = named("a", "a1"), *a2 = named("a", "a2"), *b = named("b", "b"),
	              *d = named("d", "d");
	assert_null(tplset_cache_get(c, "a", 1));
	tplset_cache_put(c, a1, 1);
	assert_ptr_equal(tplset_cache_get(c, "a", 1), a1);
	assert_null(tplset_cache_get(c, "a", 2));
	/* a new version of a replaces the old one */
	tplset_cache_put(c, a2, 2);
	assert_null(tplset_cache_get(c, "a", 1));
	assert_ptr_equal(tplset_cache_get(c, "a", 2), a2);
	tplset_cache_put(c, b, 7);
	/* touch a: b is now the least recently used and goes */
	assert_ptr_equal(tplset_cache_get(c, "a", 2), a2);
	tplset_cache_put(c, d, 1);
	assert_null(tplset_cache_get(c, "b", 7));
	assert_ptr_equal(tplset_cache_get(c, "a", 2), a2);
	assert_ptr_equal(tplset_cache_get(c, "d", 1), d);
	/* the cached set renders */
	json_t *ctx = tpl_context_json(NULL, NULL, NULL);
	struct tpl_rendered r;
	render_ok(tplset_cache_get(c, "a", 2), "sms", "en", ctx, NULL, &r);
	assert_string_equal(r.text, "a2");
	tpl_rendered_free(&r);
	json_decref(ctx);
	tplset_cache_free(c); /* frees a2 and d; a1 and b were freed on eviction */
	tplset_cache_free(NULL);

	c = tplset_cache_new(0);
	tplset_cache_put(c, named("x", "1"), 1);
	tplset_cache_put(c, named("y", "2"), 1);
	assert_null(tplset_cache_get(c, "x", 1));
	assert_non_null(tplset_cache_get(c, "y", 1));
	tplset_cache_free(c);
}

static int teardown(void **state)
{
	(void)state;
	tz_cleanup();
	jalali_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_and_fallback),
	    cmocka_unit_test(test_persian_and_escaping),
	    cmocka_unit_test(test_context_from_reply),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_check_all),
	    cmocka_unit_test(test_render_limits),
	    cmocka_unit_test(test_cache),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
