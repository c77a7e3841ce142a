/*
 * test_links.c - links.c and the track filter of template.c: the code
 * alphabet and length (every symbol appears, nothing else does, no repeats
 * in a sample), code and id validation, {{url|track}} without a hook (the
 * URL unchanged, escaped in HTML mode), with links_track as the hook (short
 * links, one record per tag with its ids, the script arguments), tracking
 * off when the base URL is empty, refused URLs with the tag's line and
 * column, 'track' only as the last filter, the batch and output limits.
 * No Redis: the store calls are exercised by tests/integration/test_links.py.
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

#include "links.h"
#include "store.h"
#include "template.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* Compile src (must compile), render with o, return the result (caller
 * frees) or NULL with *rc and err set. */
static char *render(const char *src, const char *ctxj, const struct tmpl_opts *o, size_t max,
                    int *rc, struct tmpl_error *err)
{
	struct tmpl *t = NULL;
	struct tmpl_error cerr;
	json_t *ctx = json_loads(ctxj ? ctxj : "{}", 0, NULL);
	struct buf out;
	char *res = NULL;

	assert_non_null(ctx);
	if (tmpl_compile(src, &t, &cerr) != 0)
		fail_msg("compile %s: %d:%d %s", src, cerr.line, cerr.col, cerr.reason);
	buf_init(&out, max);
	*rc = tmpl_render(t, ctx, o, &out, err);
	if (*rc == 0)
		res = out.p ? buf_steal(&out) : xstrdup("");
	buf_free(&out);
	tmpl_free(t);
	json_decref(ctx);
	return res;
}

static int cmp_code(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

static void test_code_alphabet(void **state)
{
	enum { N = 20000 };
	int seen[256] = {0};
	char(*codes)[LINKS_CODE_LEN + 1] = xcalloc(N, sizeof(*codes));

	(void)state;
	assert_int_equal(strlen(alphabet), 62);
	for (int i = 0; i < N; i++) {
		links_code_new(codes[i]);
		assert_int_equal(strlen(codes[i]), LINKS_CODE_LEN);
		assert_true(links_code_valid(codes[i]));
		for (int k = 0; k < LINKS_CODE_LEN; k++) {
			assert_non_null(strchr(alphabet, codes[i][k]));
			seen[(unsigned char)codes[i][k]]++;
		}
	}
	/* 200000 symbols: each of the 62 appears about 3226 times (sd 56): a
	 * count outside 2800..3650 (7.5 sd) does not happen by chance, while
	 * a plain modulo (no rejection) would give A..H about 3900. */
	for (size_t i = 0; i < 62; i++) {
		assert_true(seen[(unsigned char)alphabet[i]] > 2800);
		assert_true(seen[(unsigned char)alphabet[i]] < 3650);
	}
	/* 20000 codes out of 62^10: a repeat has probability about 2e-10 */
	qsort(codes, N, sizeof(*codes), cmp_code);
	for (int i = 1; i < N; i++)
		assert_string_not_equal(codes[i - 1], codes[i]);
	free(codes);
}

static void test_code_valid(void **state)
{
	(void)state;
	assert_true(links_code_valid("Ab3dEf9hIj"));
	assert_true(links_code_valid("0000000000"));
	assert_false(links_code_valid("Ab3dEf9hI"));   /* 9 */
	assert_false(links_code_valid("Ab3dEf9hIjk")); /* 11 */
	assert_false(links_code_valid("Ab3dEf9h-j"));
	assert_false(links_code_valid("Ab3dEf9h_j"));
	assert_false(links_code_valid("Ab3dEf9h j"));
	assert_false(links_code_valid("Ab3dEf9h%0"));
	assert_false(links_code_valid("Ab3dEf9h\xc3\xa9"));
	assert_false(links_code_valid(""));
	assert_false(links_code_valid(NULL));

	assert_true(links_field_valid(NULL));
	assert_true(links_field_valid(""));
	assert_true(links_field_valid("01JD3Z8Q6M0000000000000000"));
	assert_true(links_field_valid("yalda-1403_A.2"));
	assert_false(links_field_valid("a:b"));
	assert_false(links_field_valid("a b"));
	assert_false(links_field_valid("x\r\n"));
	assert_false(links_field_valid("سلام"));
	char longid[LINKS_FIELD_MAX + 2];
	memset(longid, 'a', sizeof longid);
	longid[LINKS_FIELD_MAX] = '\0';
	assert_true(links_field_valid(longid));
	longid[LINKS_FIELD_MAX] = 'a';
	longid[LINKS_FIELD_MAX + 1] = '\0';
	assert_false(links_field_valid(longid));
}

static void test_url_check(void **state)
{
	const char *why = NULL;
	static const char *const good[] = {
	    "https://shop.example/yalda",        "HTTP://SHOP.EXAMPLE",
	    "http://127.0.0.1:8080/a?b=c&d=e#f", "https://x.ir/?q=سلام",
	    "https://user@shop.example/",        "https://shop.example/a%20b",
	};
	static const char *const bad[] = {
	    "",
	    "ftp://shop.example/",
	    "javascript:alert(1)",
	    "https://",
	    "http://",
	    "https:///path",
	    "https://?q",
	    "https://#f",
	    "//shop.example/",
	    "shop.example",
	    "https://shop.example/a b",
	    "https://shop.example/\r\nSet-Cookie: x=1",
	    "https://shop.example/\t",
	    "https://shop.example/\x7f",
	    "https://shop.example/\xc2\x85", /* U+0085, a C1 control */
	    "https://shop.example/\xc3",     /* truncated UTF-8 */
	    "https://shop.example/\xed\xa0\x80" /* a surrogate */,
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		if (tmpl_url_check(good[i], strlen(good[i]), &why) != 0)
			fail_msg("refused %s: %s", good[i], why);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		why = NULL;
		if (tmpl_url_check(bad[i], strlen(bad[i]), &why) != -EINVAL)
			fail_msg("accepted %s", bad[i]);
		assert_non_null(why);
		assert_non_null(strstr(why, "track"));
	}
	/* a NUL inside: the length counts, so it is a control character */
	assert_int_equal(tmpl_url_check("https://a.b/\0x", 15, &why), -EINVAL);

	/* exactly TMPL_URL_MAX bytes is fine, one more is not */
	char *u = xmalloc(TMPL_URL_MAX + 2);
	memcpy(u, "https://shop.example/", 21);
	memset(u + 21, 'a', TMPL_URL_MAX + 1 - 21);
	u[TMPL_URL_MAX + 1] = '\0';
	assert_int_equal(tmpl_url_check(u, TMPL_URL_MAX, &why), 0);
	assert_int_equal(tmpl_url_check(u, TMPL_URL_MAX + 1, &why), -EINVAL);
	assert_non_null(strstr(why, "2048"));
	free(u);
}

static void test_filter_without_hook(void **state)
{
	int rc;
	struct tmpl_error err;
	struct tmpl_opts html = {1, NULL, NULL, NULL, NULL};
	char *s;

	(void)state;
	s = render("Go: {{\"https://shop.example/yalda?a=1&b=2\"|track}}!", NULL, NULL, 0, &rc,
	           &err);
	assert_int_equal(rc, 0);
	assert_string_equal(s, "Go: https://shop.example/yalda?a=1&b=2!");
	free(s);
	/* HTML mode escapes the value like any other: right inside href="" */
	s = render("<a href=\"{{\"https://shop.example/?a=1&b=2\"|track}}\">", NULL, &html, 0, &rc,
	           &err);
	assert_int_equal(rc, 0);
	assert_string_equal(s, "<a href=\"https://shop.example/?a=1&amp;b=2\">");
	free(s);
	/* a variable, a default, a missing value (nothing is shown) */
	s = render("{{url|track}} {{nope|\"https://shop.example/d\"|track}} [{{missing|track}}]",
	           "{\"url\": \"https://x.ir/?q=سلام\"}", NULL, 0, &rc, &err);
	assert_int_equal(rc, 0);
	assert_string_equal(s, "https://x.ir/?q=سلام https://shop.example/d []");
	free(s);
	/* other filters may come before it */
	s = render("{{code|lower|\"https://shop.example/?c=\"|track}}", "{}", NULL, 0, &rc, &err);
	assert_int_equal(rc, 0);
	assert_string_equal(s, "https://shop.example/?c=");
	free(s);
}

static void test_filter_with_hook(void **state)
{
	int rc;
	struct tmpl_error err;
	struct links_batch *b = links_batch_new("https://s.example.com/");
	struct links_ctx lc = {b, "01JD3Z8Q6M0000000000000001", "01JD3Z8Q6M0000000000000002",
	                       "01JD3Z8Q6M0000000000000003", "A"};
	struct tmpl_opts o = {0, NULL, NULL, links_track, &lc};
	struct tmpl_opts html = {1, NULL, NULL, links_track, &lc};
	char want[128];
	char *s;

	(void)state;
	s = render("سلام {{first_name}}! {{\"https://shop.example/yalda\"|track}} و {{url|track}}",
	           "{\"first_name\": \"سارا\", \"url\": \"https://shop.example/p?id=7&x=1\"}", &o,
	           0, &rc, &err);
	assert_int_equal(rc, 0);
	assert_int_equal(links_batch_count(b), 2);
	const char *c0 = links_batch_code(b, 0), *c1 = links_batch_code(b, 1);
	assert_true(links_code_valid(c0));
	assert_true(links_code_valid(c1));
	assert_string_not_equal(c0, c1);
	snprintf(want, sizeof want,
	         "سلام سارا! https://s.example.com/l/%s و https://s.example.com/l/%s", c0, c1);
	assert_string_equal(s, want);
	assert_string_equal(links_batch_url(b, 0), "https://shop.example/yalda");
	assert_string_equal(links_batch_url(b, 1), "https://shop.example/p?id=7&x=1");
	free(s);

	/* a second message in the same batch, HTML mode: nothing to escape in
	 * a short link */
	struct links_ctx lc2 = {b, "01JD3Z8Q6M0000000000000009", "01JD3Z8Q6M000000000000000A",
	                        "01JD3Z8Q6M0000000000000003", NULL};
	html.link_arg = &lc2;
	s = render("<a href=\"{{\"https://shop.example/?a=1&b=2\"|track}}\">x</a>", NULL, &html, 0,
	           &rc, &err);
	assert_int_equal(rc, 0);
	assert_int_equal(links_batch_count(b), 3);
	snprintf(want, sizeof want, "<a href=\"https://s.example.com/l/%s\">x</a>",
	         links_batch_code(b, 2));
	assert_string_equal(s, want);
	free(s);

	/* the script arguments: six per link */
	struct argv a;
	argv_init(&a);
	links_batch_add_args(b, &a);
	assert_int_equal(a.n, 18);
	assert_string_equal(a.v[0], c0);
	assert_string_equal(a.v[1], "https://shop.example/yalda");
	assert_string_equal(a.v[2], "01JD3Z8Q6M0000000000000001");
	assert_string_equal(a.v[3], "01JD3Z8Q6M0000000000000002");
	assert_string_equal(a.v[4], "01JD3Z8Q6M0000000000000003");
	assert_string_equal(a.v[5], "A");
	assert_string_equal(a.v[13], "https://shop.example/?a=1&b=2");
	assert_string_equal(a.v[14], "01JD3Z8Q6M0000000000000009");
	assert_string_equal(a.v[15], "01JD3Z8Q6M000000000000000A");
	assert_string_equal(a.v[17], ""); /* no variant */
	argv_free(&a);
	links_batch_free(b);
}

static void test_tracking_off(void **state)
{
	int rc;
	struct tmpl_error err;
	static const char *const bases[] = {NULL, "", "/"};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bases); i++) {
		struct links_batch *b = links_batch_new(bases[i]);
		struct links_ctx lc = {b, "m", "c", "k", "v"};
		struct tmpl_opts o = {0, NULL, NULL, links_track, &lc};
		char *s =
		    render("{{\"https://shop.example/yalda\"|track}}", NULL, &o, 0, &rc, &err);
		assert_int_equal(rc, 0);
		assert_string_equal(s, "https://shop.example/yalda");
		assert_int_equal(links_batch_count(b), 0);
		free(s);
		links_batch_free(b);
	}
}

static void test_bad_urls_fail_with_position(void **state)
{
	static const struct {
		const char *src, *ctx;
		int line, col;
		const char *reason;
	} cases[] = {
	    {"Hi {{\"ftp://shop.example/\"|track}}", NULL, 1, 4, "http:// or https://"},
	    {"سلام\nبزن: {{url|track}}", "{\"url\": \"javascript:alert(1)\"}", 2, 6,
	     "http:// or https://"},
	    {"{{url|track}}", "{\"url\": \"https://a.b/\\r\\nSet-Cookie: x\"}", 1, 1,
	     "control characters"},
	    {"x {{url|track}}", "{\"url\": \"https://a.b/c d\"}", 1, 3, "spaces"},
	    {"x {{url|track}}", "{\"url\": \"https://a.b/\\u0085\"}", 1, 3, "control characters"},
	    {"x {{url|track}}", "{\"url\": \"https:///x\"}", 1, 3, "no host"},
	    {"x {{empty|track}}", "{\"empty\": \"\"}", 1, 3, "empty"},
	    {"x {{n|track}}", "{\"n\": 42}", 1, 3, "http:// or https://"},
	};
	int rc;
	struct tmpl_error err;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		for (int hook = 0; hook < 2; hook++) {
			struct links_batch *b = links_batch_new("https://s.example.com");
			struct links_ctx lc = {b, NULL, NULL, NULL, NULL};
			struct tmpl_opts o = {0, NULL, NULL, hook ? links_track : NULL, &lc};
			memset(&err, 0, sizeof err);
			char *s = render(cases[i].src, cases[i].ctx, &o, 0, &rc, &err);
			if (s)
				fail_msg("case %zu rendered %s", i, s);
			assert_int_equal(rc, -EINVAL);
			if (err.line != cases[i].line || err.col != cases[i].col ||
			    !strstr(err.reason, cases[i].reason) || !strstr(err.reason, "track"))
				fail_msg("case %zu: %d:%d %s", i, err.line, err.col, err.reason);
			assert_int_equal(links_batch_count(b), 0);
			links_batch_free(b);
		}
	}

	/* 2049 bytes */
	char *big = xmalloc(TMPL_URL_MAX + 64);
	int n = snprintf(big, TMPL_URL_MAX + 64, "{\"u\": \"https://a.b/");
	memset(big + n, 'x', TMPL_URL_MAX + 1 - 12); /* after "https://a.b/" */
	snprintf(big + n + TMPL_URL_MAX + 1 - 12, 8, "\"}");
	char *s = render("{{u|track}}", big, NULL, 0, &rc, &err);
	assert_null(s);
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(err.reason, "longer than 2048"));
	free(big);
}

static void test_track_is_last(void **state)
{
	struct tmpl *t = NULL;
	struct tmpl_error err;

	(void)state;
	assert_int_equal(tmpl_compile("ab {{url|track|upper}}", &t, &err), -EINVAL);
	assert_null(t);
	assert_int_equal(err.line, 1);
	assert_int_equal(err.col, 16);
	assert_non_null(strstr(err.reason, "'track' must be the last filter"));
	assert_int_equal(tmpl_compile("{{url|track|\"https://x.y\"}}", &t, &err), -EINVAL);
	assert_non_null(strstr(err.reason, "last filter"));
	assert_int_equal(tmpl_compile("{{url|track:\"x\"}}", &t, &err), -EINVAL);
	assert_non_null(strstr(err.reason, "takes no argument"));
	assert_int_equal(tmpl_compile("{{#url|track}}x{{/url}}", &t, &err), -EINVAL);
	assert_int_equal(tmpl_compile("{{{url|track}}} {{&url|track}}", &t, &err), 0);
	tmpl_free(t);
}

static int fail_hook(void *arg, const char *url, size_t len, struct buf *out)
{
	(void)url;
	(void)len;
	(void)out;
	return *(int *)arg;
}

static void test_hook_errors_and_limits(void **state)
{
	int rc, hook_rc = -EIO;
	struct tmpl_error err;
	struct tmpl_opts o = {0, NULL, NULL, fail_hook, &hook_rc};
	char *s;

	(void)state;
	s = render("ab\n  {{\"https://a.b\"|track}}", NULL, &o, 0, &rc, &err);
	assert_null(s);
	assert_int_equal(rc, -EIO);
	assert_int_equal(err.line, 2);
	assert_int_equal(err.col, 3);
	assert_non_null(strstr(err.reason, "could not be made"));

	/* a malformed id in the context of the hook */
	struct links_batch *b = links_batch_new("https://s.example.com");
	struct links_ctx bad = {b, "m 1", NULL, NULL, NULL};
	struct tmpl_opts ob = {0, NULL, NULL, links_track, &bad};
	s = render("{{\"https://a.b\"|track}}", NULL, &ob, 0, &rc, &err);
	assert_null(s);
	assert_int_equal(rc, -EINVAL);
	assert_int_equal(links_batch_count(b), 0);

	/* the output cap: a short link that does not fit is -ENOSPC; the
	 * link made for it is dropped with links_batch_truncate */
	struct links_ctx lc = {b, NULL, NULL, NULL, NULL};
	struct tmpl_opts ol = {0, NULL, NULL, links_track, &lc};
	s = render("0123456789{{\"https://a.b\"|track}}", NULL, &ol, 40, &rc, &err);
	assert_null(s);
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(links_batch_count(b), 1);
	links_batch_truncate(b, 0);
	assert_int_equal(links_batch_count(b), 0);
	s = render("{{\"https://a.b\"|track}}", NULL, &ol, 33, &rc, &err);
	assert_null(s);
	assert_int_equal(rc, -ENOSPC); /* the hook itself could not append */
	assert_int_equal(links_batch_count(b), 0);
	s = render("{{\"https://a.b\"|track}}", NULL, &ol, 40, &rc, &err);
	assert_non_null(s); /* 21 + 3 + 10 = 34 bytes */
	assert_int_equal(strlen(s), 34);
	assert_int_equal(links_batch_count(b), 1);
	free(s);
	links_batch_free(b);

	/* LINKS_BATCH_MAX links in one batch, then the render fails */
	b = links_batch_new("https://s.example.com");
	lc.b = b;
	json_t *arr = json_array();
	for (int i = 0; i < LINKS_BATCH_MAX + 1; i++)
		json_array_append_new(arr, json_string("https://shop.example/p"));
	json_t *ctx = json_pack("{s:o}", "l", arr);
	char *ctxs = json_dumps(ctx, 0);
	s = render("{{#l}}{{.|track}}\n{{/l}}", ctxs, &ol, 0, &rc, &err);
	assert_null(s);
	assert_int_equal(rc, -ENOBUFS);
	assert_int_equal(links_batch_count(b), LINKS_BATCH_MAX);
	free(ctxs);
	json_decref(ctx);
	links_batch_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_code_alphabet),
	    cmocka_unit_test(test_code_valid),
	    cmocka_unit_test(test_url_check),
	    cmocka_unit_test(test_filter_without_hook),
	    cmocka_unit_test(test_filter_with_hook),
	    cmocka_unit_test(test_tracking_off),
	    cmocka_unit_test(test_bad_urls_fail_with_position),
	    cmocka_unit_test(test_track_is_last),
	    cmocka_unit_test(test_hook_errors_and_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
