/*
 * test_privacy.c - sealing at rest (daemon/privacy.c): the stored form,
 * determinism of addresses (the reverse-index token) and randomness of
 * texts, refusal of other keys and damaged values, key files, the
 * process-wide key off/on, and opening replies in place.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "privacy.h"
#include "testlib.h"
#include "util.h"

#define PHONE "+989121234567"
#define EMAIL "sara@example.com"
#define NAME  "\xd8\xb3\xd8\xa7\xd8\xb1\xd8\xa7 Sara" /* Persian and Latin */

static const unsigned char K1[PRIVACY_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
static const unsigned char K2[PRIVACY_KEY_BYTES] = {9, 9, 9};

static char *seal(const struct privacy_key *k, char type, const char *s)
{
	char *out = privacy_seal_with(k, type, s, strlen(s), NULL);
	assert_non_null(out);
	return out;
}

static void open_ok(const struct privacy_key *k, const char *sealed, const char *want)
{
	size_t n = strlen(sealed), len = 0;
	char *out = malloc(n + 1);
	assert_int_equal(privacy_open_with(k, sealed, n, out, &len), 0);
	assert_int_equal(len, strlen(want));
	assert_string_equal(out, want);
	free(out);
}

static void test_roundtrip_text(void **state)
{
	(void)state;
	struct privacy_key *k = privacy_key_from_bytes(K1);
	char *a = seal(k, 't', NAME), *b = seal(k, 't', NAME);
	assert_true(privacy_is_sealed(a, strlen(a)));
	assert_int_equal(a[0], PRIVACY_MARK);
	assert_int_equal(a[1], 't');
	assert_memory_equal(a + 2, privacy_key_id(k), PRIVACY_KEYID_LEN);
	assert_string_not_equal(a, b); /* a random nonce each time */
	assert_null(strstr(a, "Sara"));
	open_ok(k, a, NAME);
	open_ok(k, b, NAME);
	char type = 0, id[PRIVACY_KEYID_LEN + 1];
	assert_int_equal(privacy_sealed_info(a, strlen(a), &type, id), 0);
	assert_int_equal(type, 't');
	assert_string_equal(id, privacy_key_id(k));
	/* the empty text seals and opens too */
	char *e = seal(k, 't', "");
	open_ok(k, e, "");
	free(a);
	free(b);
	free(e);
	privacy_key_free(k);
}

static void test_address_is_deterministic_and_keyed(void **state)
{
	(void)state;
	struct privacy_key *k1 = privacy_key_from_bytes(K1), *k2 = privacy_key_from_bytes(K2);
	char *a = seal(k1, 'a', PHONE), *b = seal(k1, 'a', PHONE);
	char *c = seal(k1, 'a', "+989121234568"), *d = seal(k2, 'a', PHONE);
	assert_string_equal(a, b); /* the same index token every time */
	assert_string_not_equal(a, c);
	assert_string_not_equal(a, d); /* the hash is keyed: another key, another token */
	assert_string_not_equal(privacy_key_id(k1), privacy_key_id(k2));
	assert_null(strstr(a, "989121234567"));
	assert_null(strstr(a, "9121234567"));
	open_ok(k1, a, PHONE);
	open_ok(k2, d, PHONE);
	/* key names stay printable apart from the mark: no spaces, no colons */
	for (size_t i = 1; a[i]; i++)
		assert_true(a[i] > ' ' && a[i] < 127 && a[i] != ':');
	free(a);
	free(b);
	free(c);
	free(d);
	privacy_key_free(k1);
	privacy_key_free(k2);
}

static void test_refusals(void **state)
{
	(void)state;
	struct privacy_key *k1 = privacy_key_from_bytes(K1), *k2 = privacy_key_from_bytes(K2);
	char *a = seal(k1, 't', EMAIL);
	size_t n = strlen(a), len;
	char *out = malloc(n + 1);
	assert_int_equal(privacy_open_with(k2, a, n, out, &len), -ENOKEY);
	assert_int_equal(privacy_open_with(NULL, a, n, out, &len), -ENOKEY);
	/* one changed character of the ciphertext */
	char *t = strdup(a);
	t[n - 3] = t[n - 3] == 'A' ? 'B' : 'A';
	assert_int_equal(privacy_open_with(k1, t, n, out, &len), -EBADMSG);
	/* cut short */
	assert_true(privacy_open_with(k1, a, 20, out, &len) < 0);
	assert_true(privacy_open_with(k1, a, n - 1, out, &len) < 0);
	/* not sealed at all */
	assert_int_equal(privacy_open_with(k1, EMAIL, strlen(EMAIL), out, &len), -EINVAL);
	assert_false(privacy_is_sealed(EMAIL, strlen(EMAIL)));
	assert_false(privacy_is_sealed("\x01tXYZ", 5));
	assert_false(privacy_is_sealed("\x01x0123abcdZZ", 12));
	/* the type must be a or t */
	assert_null(privacy_seal_with(k1, 'z', "x", 1, NULL));
	/* the size limit */
	char *big = calloc(1, PRIVACY_TEXT_MAX + 2);
	memset(big, 'x', PRIVACY_TEXT_MAX + 1);
	assert_null(privacy_seal_with(k1, 't', big, PRIVACY_TEXT_MAX + 1, NULL));
	free(big);
	free(t);
	free(out);
	free(a);
	privacy_key_free(k1);
	privacy_key_free(k2);
}

static void write_file(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(s, f);
	fclose(f);
	chmod(path, 0600);
}

static void test_key_files(void **state)
{
	(void)state;
	char dir[256], path[300], why[300];
	assert_int_equal(tl_mkdtemp(dir, sizeof dir, "privacy"), 0);
	snprintf(path, sizeof path, "%s/key", dir);
	struct privacy_key *k = NULL, *k2 = NULL;

	/* 64 hex digits, a newline after them */
	write_file(path, "0102030405060708090a0b000000000000000000000000000000000000000000\n");
	assert_int_equal(privacy_key_load(path, &k, why, sizeof why), 0);
	struct privacy_key *ref = privacy_key_from_bytes(K1);
	assert_string_equal(privacy_key_id(k), privacy_key_id(ref));
	/* the same key in base64 */
	write_file(path, "AQIDBAUGBwgJCgsAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
	assert_int_equal(privacy_key_load(path, &k2, why, sizeof why), 0);
	assert_string_equal(privacy_key_id(k2), privacy_key_id(ref));
	char *s = seal(k, 'a', PHONE), *s2 = seal(k2, 'a', PHONE);
	assert_string_equal(s, s2);
	free(s);
	free(s2);
	privacy_key_free(k2);
	privacy_key_free(ref);
	privacy_key_free(k);

	/* refused: too short, not hex, missing file; the reason never shows the key */
	write_file(path, "0102030405060708090a0b\n");
	assert_int_equal(privacy_key_load(path, &k, why, sizeof why), -1);
	assert_null(k);
	assert_non_null(strstr(why, "64 hex digits"));
	assert_null(strstr(why, "0102"));
	write_file(path, "zz02030405060708090a0b000000000000000000000000000000000000000000\n");
	assert_int_equal(privacy_key_load(path, &k, why, sizeof why), -1);
	snprintf(path, sizeof path, "%s/absent", dir);
	assert_int_equal(privacy_key_load(path, &k, why, sizeof why), -1);

	/* env: as every secret of clubd */
	setenv("CLUBD_TEST_PRIVACY_KEY",
	       "0102030405060708090a0b000000000000000000000000000000000000000000", 1);
	assert_int_equal(privacy_key_load("env:CLUBD_TEST_PRIVACY_KEY", &k, why, sizeof why), 0);
	privacy_key_free(k);
	unsetenv("CLUBD_TEST_PRIVACY_KEY");
	tl_rmtree(dir);
}

static void test_off_is_identity(void **state)
{
	(void)state;
	privacy_use(NULL);
	assert_false(privacy_enabled());
	char *a = privacy_seal_addr(PHONE), *t = privacy_seal_text(NAME);
	assert_string_equal(a, PHONE);
	assert_string_equal(t, NAME);
	free(a);
	free(t);
	assert_null(privacy_seal_addr(NULL));
	struct argv v;
	argv_init(&v);
	privacy_argv_addr(&v, PHONE);
	privacy_argv_text(&v, NAME);
	privacy_argv_text(&v, NULL);
	assert_int_equal(v.n, 3);
	assert_string_equal(v.v[0], PHONE);
	assert_string_equal(v.v[1], NAME);
	assert_string_equal(v.v[2], "");
	argv_free(&v);
	size_t n;
	int err;
	char *o = privacy_open_str(EMAIL, strlen(EMAIL), &n, &err);
	assert_string_equal(o, EMAIL);
	assert_int_equal(err, 0);
	free(o);
}

static redisReply *str_reply(const char *s)
{
	redisReply *r = calloc(1, sizeof *r);
	r->type = REDIS_REPLY_STRING;
	r->len = strlen(s);
	r->str = strdup(s);
	return r;
}

static redisReply *arr_reply(size_t n)
{
	redisReply *r = calloc(1, sizeof *r);
	r->type = REDIS_REPLY_ARRAY;
	r->elements = n;
	r->element = calloc(n, sizeof *r->element);
	return r;
}

static void test_open_reply_in_place(void **state)
{
	(void)state;
	privacy_use(privacy_key_from_bytes(K1));
	assert_true(privacy_enabled());
	char *sa = privacy_seal_addr(PHONE), *sn = privacy_seal_text(NAME);
	assert_string_not_equal(sa, PHONE);
	assert_true(privacy_is_sealed(sn, strlen(sn)));

	/* an HGETALL with a nested stream-like entry */
	redisReply *h = arr_reply(6);
	h->element[0] = str_reply("a:sms");
	h->element[1] = str_reply(sa);
	h->element[2] = str_reply("lang");
	h->element[3] = str_reply("fa");
	h->element[4] = str_reply("entry");
	h->element[5] = arr_reply(2);
	h->element[5]->element[0] = str_reply("text");
	h->element[5]->element[1] = str_reply(sn);
	assert_int_equal(privacy_open_reply(h), 0);
	assert_string_equal(h->element[1]->str, PHONE);
	assert_int_equal(h->element[1]->len, strlen(PHONE));
	assert_string_equal(h->element[3]->str, "fa");
	assert_string_equal(h->element[5]->element[1]->str, NAME);
	/* opening again changes nothing */
	assert_int_equal(privacy_open_reply(h), 0);
	assert_string_equal(h->element[1]->str, PHONE);

	/* a value sealed under another key stays sealed and is counted */
	struct privacy_key *k2 = privacy_key_from_bytes(K2);
	char *other = privacy_seal_with(k2, 't', "x", 1, NULL);
	redisReply *one = str_reply(other);
	assert_int_equal(privacy_open_reply(one), 1);
	assert_string_equal(one->str, other);
	int err = 0;
	assert_null(privacy_open_str(other, strlen(other), NULL, &err));
	assert_int_equal(err, -ENOKEY);
	size_t n = 0;
	char *o = privacy_open_str(sn, strlen(sn), &n, &err);
	assert_string_equal(o, NAME);
	assert_int_equal(n, strlen(NAME));
	free(o);

	/* argv: sealed, and "" stays "" */
	struct argv v;
	argv_init(&v);
	privacy_argv_addr(&v, PHONE);
	privacy_argv_text(&v, "");
	assert_string_equal(v.v[0], sa);
	assert_string_equal(v.v[1], "");
	argv_free(&v);

	/* with the key gone, nothing opens and nothing breaks */
	privacy_use(NULL);
	redisReply *s2 = str_reply(sn);
	assert_int_equal(privacy_open_reply(s2), 1);
	assert_string_equal(s2->str, sn);
	assert_int_equal(privacy_open_reply(NULL), 0);

	freeReplyObject(h);
	freeReplyObject(one);
	freeReplyObject(s2);
	privacy_key_free(k2);
	free(other);
	free(sa);
	free(sn);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip_text),
	    cmocka_unit_test(test_address_is_deterministic_and_keyed),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_key_files),
	    cmocka_unit_test(test_off_is_identity),
	    cmocka_unit_test(test_open_reply_in_place),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	privacy_cleanup();
	return rc;
}
