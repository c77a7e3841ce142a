/*
 * test_api_json.c - api_json_quote() (daemon/api.c), the JSON string
 * writer of the hot-path answers: for every byte that needs an escape,
 * plain ASCII, multi-byte UTF-8 and mixes, its output is byte for byte
 * what jansson's compact dump writes for the same string (jansson is the
 * reference the other answers are written with); invalid UTF-8 and NULL
 * are refused and a buffer cap is honoured, leaving the buffer as it was.
 * Pure: no server, no network.
 */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"
#include "util.h"

/* What jansson writes for the string s (valid UTF-8), quotes included. */
static char *jansson_quote(const char *s)
{
	json_t *j = json_string(s);
	assert_non_null(j);
	char *out = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(j);
	assert_non_null(out);
	return out;
}

static void same_as_jansson(const char *s)
{
	struct buf b;
	buf_init(&b, 0);
	buf_puts(&b, "x");
	assert_int_equal(api_json_quote(&b, s), 0);
	char *want = jansson_quote(s);
	assert_string_equal(b.p + 1, want);
	assert_int_equal(b.len, 1 + strlen(want));
	free(want);
	buf_free(&b);
}

static void test_like_jansson(void **state)
{
	(void)state;
	static const char *const cases[] = {
	    "",
	    "reply",
	    "01HZX3J5Q8K9V2M4N6P7R8S9T0",
	    "say \"hi\"",
	    "back\\slash",
	    "a/b",
	    "tab\there\nnew\rline\bback\fform",
	    "\x01\x02\x1e\x1f end",
	    "\x7f del",
	    "\xd9\x85\xd9\x85\xd9\x86\xd9\x88\xd9\x86\xd8\x8c \xd8\xb3\xd9\x81\xd8\xa7\xd8\xb1\xd8"
	    "\xb4",                     /* Persian */
	    "\xe2\x80\xa8\xe2\x80\xa9", /* U+2028, U+2029 go as they are */
	    "\xf0\x9f\x98\x80 emoji",
	    "\"",
	    "\\",
	    "\"\\\"\\",
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		same_as_jansson(cases[i]);
	/* every control byte alone, and between plain bytes */
	for (int c = 1; c < 0x20; c++) {
		char s[4] = {(char)c, '\0'};
		same_as_jansson(s);
		char t[4] = {'a', (char)c, 'b', '\0'};
		same_as_jansson(t);
	}
	/* every printable ASCII byte in one string */
	char all[128];
	size_t n = 0;
	for (int c = 0x20; c < 0x7f; c++)
		all[n++] = (char)c;
	all[n] = '\0';
	same_as_jansson(all);
	/* a long string with escapes spread through it */
	struct buf big;
	buf_init(&big, 0);
	for (int i = 0; i < 500; i++)
		buf_puts(&big, i % 7 ? "plain text " : "\"q\"\n\\");
	same_as_jansson(big.p);
	buf_free(&big);
}

static void test_refused(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	buf_puts(&b, "{\"k\":");
	static const char *const bad[] = {"\xff", "ok\xc3", "\xc3\x28", "\xed\xa0\x80 surrogate",
	                                  "\xc0\xaf overlong"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(api_json_quote(&b, bad[i]), -EINVAL);
		assert_string_equal(b.p, "{\"k\":");
		assert_int_equal(b.len, 5);
	}
	assert_int_equal(api_json_quote(&b, NULL), -EINVAL);
	assert_string_equal(b.p, "{\"k\":");
	buf_free(&b);

	/* a cap: refused whole, the buffer as it was; one byte more fits */
	struct buf c;
	buf_init(&c, 10);
	buf_puts(&c, "ab");
	assert_int_equal(api_json_quote(&c, "a\"b\"c"), -ENOSPC); /* needs 9 more */
	assert_string_equal(c.p, "ab");
	assert_int_equal(c.len, 2);
	assert_int_equal(api_json_quote(&c, "a\"b\""), 0); /* 8 more: 10 */
	assert_string_equal(c.p, "ab\"a\\\"b\\\"\"");
	buf_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_like_jansson),
	    cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
