/*
 * test_callback.c - unit tests for daemon/callback.c: HMAC-SHA256 against
 * the RFC 4231 known-answer vectors (keys loaded through the real secret
 * reader, env: references), the keyed context being reset between
 * signatures, the multi-part form, URL signatures (a value computed
 * independently with Python's hmac module), the length limit, no secret,
 * re-keying, and concurrent callers.  Never touches the network or files.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "callback.h"

#define ENV_NAME "CLUBD_TEST_CB_KEY"
#define ENV_SPEC "env:" ENV_NAME

/* Load a key of n bytes (no NUL among them) as the callback secret. */
static int init_key(const unsigned char *key, size_t n)
{
	char v[256];
	char why[256] = "";
	assert_true(n < sizeof v);
	memcpy(v, key, n);
	v[n] = '\0';
	assert_int_equal(setenv(ENV_NAME, v, 1), 0);
	int r = callback_init(ENV_SPEC, why, sizeof why);
	unsetenv(ENV_NAME);
	return r;
}

static void fill(unsigned char *p, unsigned char c, size_t n)
{
	memset(p, c, n);
}

static void hmac_is(const void *msg, size_t n, const char *want)
{
	char out[65];
	memset(out, 'x', sizeof out);
	assert_int_equal(callback_hmac_hex(msg, n, out), 0);
	assert_int_equal(out[64], '\0');
	assert_string_equal(out, want);
}

/* RFC 4231 section 4: test cases 1, 3, 4, 6, 7 in full, 5 truncated; test
 * case 2's key "Jefe" is shorter than the 16 characters we require. */
static void test_rfc4231(void **state)
{
	(void)state;
	unsigned char key[131], msg[50];

	fill(key, 0x0b, 20);
	assert_int_equal(init_key(key, 20), 0);
	assert_true(callback_enabled());
	hmac_is("Hi There", 8, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

	fill(key, 0xaa, 20);
	fill(msg, 0xdd, 50);
	assert_int_equal(init_key(key, 20), 0);
	hmac_is(msg, 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");

	for (int i = 0; i < 25; i++)
		key[i] = (unsigned char)(i + 1);
	fill(msg, 0xcd, 50);
	assert_int_equal(init_key(key, 25), 0);
	hmac_is(msg, 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");

	fill(key, 0x0c, 20);
	assert_int_equal(init_key(key, 20), 0);
	char out[65];
	assert_int_equal(callback_hmac_hex("Test With Truncation", 20, out), 0);
	assert_memory_equal(out, "a3b6167473100ee06e0c796c2955552b", 32);

	/* keys longer than SHA-256's 64-byte block are hashed first */
	fill(key, 0xaa, 131);
	assert_int_equal(init_key(key, 131), 0);
	static const char m6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
	hmac_is(m6, sizeof m6 - 1,
	        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
	static const char m7[] =
	    "This is a test using a larger than block-size key and a larger than block-size "
	    "data. The key needs to be hashed before being used by the HMAC algorithm.";
	hmac_is(m7, sizeof m7 - 1,
	        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");

	/* test case 2: the key is refused, and nothing is signed afterwards */
	assert_int_equal(init_key((const unsigned char *)"Jefe", 4), -1);
	assert_false(callback_enabled());
	assert_int_equal(callback_hmac_hex("what do ya want for nothing?", 28, out), -1);
	callback_cleanup();
}

/* The keyed context is reset before every signature: a message signed
 * after another gives the same answer as on a fresh context, in either
 * order, and the parts form equals the whole message. */
static void test_reset_and_parts(void **state)
{
	(void)state;
	unsigned char key[131];
	fill(key, 0xaa, 131);
	assert_int_equal(init_key(key, 131), 0);
	static const char m7[] =
	    "This is a test using a larger than block-size key and a larger than block-size "
	    "data. The key needs to be hashed before being used by the HMAC algorithm.";
	static const char want7[] =
	    "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2";
	static const char want6[] =
	    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
	static const char m6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
	for (int i = 0; i < 3; i++) {
		hmac_is(m7, sizeof m7 - 1, want7);
		hmac_is(m6, sizeof m6 - 1, want6);
	}
	/* the empty message, twice */
	char e1[65], e2[65];
	assert_int_equal(callback_hmac_hex("", 0, e1), 0);
	assert_int_equal(callback_hmac_hex(NULL, 0, e2), 0);
	assert_string_equal(e1, e2);
	assert_string_not_equal(e1, want7);

	/* parts: split anywhere, empty parts included */
	size_t n = sizeof m7 - 1;
	for (size_t cut = 0; cut <= n; cut += 37) {
		const char *part[4] = {m7, "", m7 + cut, ""};
		const size_t len[4] = {cut, 0, n - cut, 0};
		char out[65];
		assert_int_equal(callback_hmac_hex_parts(part, len, 4, out), 0);
		assert_string_equal(out, want7);
	}
	char out[65];
	assert_int_equal(callback_hmac_hex_parts(NULL, NULL, 0, out), 0);
	assert_string_equal(out, e1);
	callback_cleanup();
}

/* URL signatures: truncated hex of HMAC(secret, purpose ":" id). */
static void test_sign_verify(void **state)
{
	(void)state;
	static const char secret[] = "test-callback-secret-0123456789";
	static const char id[] = "01HZX3J5Q8K9V2M4N6P7R8S9T0";
	char sig[CALLBACK_SIG_LEN + 1];
	assert_int_equal(init_key((const unsigned char *)secret, strlen(secret)), 0);
	assert_int_equal(callback_sign("dlr", id, sig), 0);
	/* Python: hmac.new(secret, b"dlr:" + id, sha256).hexdigest()[:32] */
	assert_string_equal(sig, "f8dda9c13149822bac93be01ff92b238");
	assert_true(callback_verify("dlr", id, sig));
	assert_false(callback_verify("unsub", id, sig));
	assert_false(callback_verify("dlr", "01HZX3J5Q8K9V2M4N6P7R8S9T1", sig));
	assert_false(callback_verify("dlr", id, NULL));
	assert_false(callback_verify("dlr", id, ""));
	assert_false(callback_verify("dlr", id, "f8dda9c13149822bac93be01ff92b23"));
	assert_false(callback_verify("dlr", id, "f8dda9c13149822bac93be01ff92b2388"));
	assert_false(callback_verify("dlr", id, "F8DDA9C13149822BAC93BE01FF92B238"));
	sig[5] ^= 1;
	assert_false(callback_verify("dlr", id, sig));
	/* "a:b" + ":" + "c" and "a" + ":" + "b:c" sign the same bytes */
	char s1[CALLBACK_SIG_LEN + 1], s2[CALLBACK_SIG_LEN + 1];
	assert_int_equal(callback_sign("a:b", "c", s1), 0);
	assert_int_equal(callback_sign("a", "b:c", s2), 0);
	assert_string_equal(s1, s2);

	/* purpose ":" id is at most 255 bytes */
	char longid[300];
	memset(longid, 'x', sizeof longid);
	longid[255 - 4] = '\0'; /* "dlr:" + 251 = 255 */
	assert_int_equal(callback_sign("dlr", longid, sig), 0);
	assert_true(callback_verify("dlr", longid, sig));
	longid[255 - 4] = 'x';
	longid[256 - 4] = '\0'; /* 256 */
	assert_int_equal(callback_sign("dlr", longid, sig), -1);
	assert_false(callback_verify("dlr", longid, "f8dda9c13149822bac93be01ff92b238"));

	/* a new secret replaces the old one */
	assert_int_equal(init_key((const unsigned char *)"another-secret-0123456789", 25), 0);
	assert_int_equal(callback_sign("dlr", id, sig), 0);
	assert_string_not_equal(sig, "f8dda9c13149822bac93be01ff92b238");
	callback_cleanup();
}

static void test_no_secret(void **state)
{
	(void)state;
	char why[256] = "", sig[CALLBACK_SIG_LEN + 1], out[65];
	assert_int_equal(callback_init(NULL, why, sizeof why), 0);
	assert_false(callback_enabled());
	assert_int_equal(callback_init("", why, sizeof why), 0);
	assert_false(callback_enabled());
	assert_int_equal(callback_sign("dlr", "x", sig), -1);
	assert_false(callback_verify("dlr", "x", "f8dda9c13149822bac93be01ff92b238"));
	assert_int_equal(callback_hmac_hex("x", 1, out), -1);
	const char *p = "x";
	size_t l = 1;
	assert_int_equal(callback_hmac_hex_parts(&p, &l, 1, out), -1);
	/* an unreadable reference fails with a reason and leaves no secret */
	unsetenv(ENV_NAME);
	assert_int_equal(callback_init(ENV_SPEC, why, sizeof why), -1);
	assert_true(why[0] != '\0');
	assert_false(callback_enabled());
	/* a failed init drops the previous secret too */
	assert_int_equal(init_key((const unsigned char *)"test-callback-secret-0123456789", 31), 0);
	assert_true(callback_enabled());
	assert_int_equal(init_key((const unsigned char *)"short", 5), -1);
	assert_false(callback_enabled());
	callback_cleanup();
	callback_cleanup(); /* twice is fine */
}

#define THREADS 4
#define ROUNDS  2000

struct worker {
	int bad;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	static const char m6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
	for (int i = 0; i < ROUNDS; i++) {
		char out[65];
		if (callback_hmac_hex(m6, sizeof m6 - 1, out) != 0 ||
		    strcmp(out, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"))
			w->bad++;
	}
	return NULL;
}

/* Callers on several threads share the keyed context safely. */
static void test_threads(void **state)
{
	(void)state;
	unsigned char key[131];
	fill(key, 0xaa, 131);
	assert_int_equal(init_key(key, 131), 0);
	pthread_t t[THREADS];
	struct worker w[THREADS];
	memset(w, 0, sizeof w);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].bad, 0);
	}
	callback_cleanup();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc4231),     cmocka_unit_test(test_reset_and_parts),
	    cmocka_unit_test(test_sign_verify), cmocka_unit_test(test_no_secret),
	    cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
