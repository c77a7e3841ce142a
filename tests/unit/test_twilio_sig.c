/*
 * test_twilio_sig.c - X-Twilio-Signature: Twilio's documented reference
 * example, parameter order, duplicates, UTF-8 values, the default-port
 * variants of the URL, every way a signature can be wrong, and the input
 * limits; RFC 2202's HMAC-SHA1 vectors (the token as the key, the URL as
 * the data); the cache of keyed contexts (more tokens than it holds,
 * tokens that are prefixes of each other, cleanup) and concurrent callers.
 * Expected values were computed independently (Python's hmac and base64
 * modules) and are written here as constants.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "twilio_sig.h"
#include "util.h"

/* Twilio's documented example (docs "Webhooks security"). */
static const char doc_url[] = "https://mycompany.com/myapp.php?foo=1&bar=2";
static const char *const doc_names[] = {"CallSid", "Caller", "Digits", "From", "To"};
static const char *const doc_values[] = {"CA1234567890ABCDE", "+12349013030", "1234",
                                         "+12349013030", "+18005551212"};
static const char doc_sig[] = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";

static void test_documented_example(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(twilio_sig_compute("12345", doc_url, doc_names, doc_values, 5, out), 0);
	assert_string_equal(out, doc_sig);
	assert_int_equal(strlen(out), TWILIO_SIG_LEN);
	assert_int_equal(twilio_sig_verify("12345", doc_url, doc_names, doc_values, 5, doc_sig), 0);

	/* the same parameters in another order: same signature */
	const char *n2[] = {"To", "Digits", "CallSid", "From", "Caller"};
	const char *v2[] = {"+18005551212", "1234", "CA1234567890ABCDE", "+12349013030",
	                    "+12349013030"};
	assert_int_equal(twilio_sig_compute("12345", doc_url, n2, v2, 5, out), 0);
	assert_string_equal(out, doc_sig);

	/* no parameters: HMAC of the URL alone */
	assert_int_equal(twilio_sig_compute("12345", doc_url, NULL, NULL, 0, out), 0);
	assert_string_equal(out, "zYQTYrRWXE7LtzbG4PfP7/bkkGo=");
}

static void test_status_callback(void **state)
{
	(void)state;
	/* what Twilio posts to a StatusCallback with our ?m= appended */
	const char *url = "https://clubd.example/v1/dlr/twilio?m=01HZX3J5Q8K9V2M4N6P7R8S9T0";
	const char *tok = "0123456789abcdef0123456789abcdef";
	const char *names[] = {"AccountSid", "MessageSid", "MessageStatus", "To",
	                       "From",       "ApiVersion", "SmsSid",        "SmsStatus"};
	const char *values[] = {"AC00000000000000000000000000000000",
	                        "SM11111111111111111111111111111111",
	                        "delivered",
	                        "+989121234567",
	                        "+15017122661",
	                        "2010-04-01",
	                        "SM11111111111111111111111111111111",
	                        "delivered"};
	const char *want = "Dy3e7dISCyT/btfSXj7SJQh082I=";
	char out[64];
	assert_int_equal(twilio_sig_compute(tok, url, names, values, 8, out), 0);
	assert_string_equal(out, want);
	assert_int_equal(twilio_sig_verify(tok, url, names, values, 8, want), 0);

	/* a changed status, a changed message id in the URL, another token */
	values[2] = "undelivered";
	assert_int_equal(twilio_sig_verify(tok, url, names, values, 8, want), -EACCES);
	values[2] = "delivered";
	assert_int_equal(twilio_sig_verify(tok,
	                                   "https://clubd.example/v1/dlr/twilio"
	                                   "?m=01HZX3J5Q8K9V2M4N6P7R8S9T1",
	                                   names, values, 8, want),
	                 -EACCES);
	assert_int_equal(
	    twilio_sig_verify("0123456789abcdef0123456789abcdeF", url, names, values, 8, want),
	    -EACCES);
	/* a parameter left out, or one added */
	assert_int_equal(twilio_sig_verify(tok, url, names, values, 7, want), -EACCES);
	/* a parameter's name and value moved around (name+value is the same text) */
	const char *n3[] = {"AccountSi", "MessageSid", "MessageStatus", "To",
	                    "From",      "ApiVersion", "SmsSid",        "SmsStatus"};
	const char *v3[] = {"dAC00000000000000000000000000000000",
	                    values[1],
	                    values[2],
	                    values[3],
	                    values[4],
	                    values[5],
	                    values[6],
	                    values[7]};
	/* (still sorted the same way, so the same bytes are signed: Twilio's scheme
	 * cannot tell these apart either; this documents it) */
	assert_int_equal(twilio_sig_verify(tok, url, n3, v3, 8, want), 0);
}

static void test_bad_signatures(void **state)
{
	(void)state;
	char sig[64];
	memcpy(sig, doc_sig, sizeof doc_sig);
	for (size_t i = 0; i < TWILIO_SIG_LEN; i++) {
		char keep = sig[i];
		sig[i] = keep == 'A' ? 'B' : 'A';
		assert_int_equal(twilio_sig_verify("12345", doc_url, doc_names, doc_values, 5, sig),
		                 -EACCES);
		sig[i] = keep;
	}
	/* truncated, extended, empty, NULL, case-changed */
	sig[TWILIO_SIG_LEN - 1] = '\0';
	assert_int_equal(twilio_sig_verify("12345", doc_url, doc_names, doc_values, 5, sig),
	                 -EACCES);
	snprintf(sig, sizeof sig, "%s=", doc_sig);
	assert_int_equal(twilio_sig_verify("12345", doc_url, doc_names, doc_values, 5, sig),
	                 -EACCES);
	assert_int_equal(twilio_sig_verify("12345", doc_url, doc_names, doc_values, 5, ""),
	                 -EACCES);
	assert_int_equal(twilio_sig_verify("12345", doc_url, doc_names, doc_values, 5, NULL),
	                 -EACCES);
	assert_int_equal(twilio_sig_verify("12345", doc_url, doc_names, doc_values, 5,
	                                   "0/kctr6dlpkmkaf8muzzqo1ndgq="),
	                 -EACCES);
	/* the URL without its query, or with a trailing slash */
	assert_int_equal(twilio_sig_verify("12345", "https://mycompany.com/myapp.php", doc_names,
	                                   doc_values, 5, doc_sig),
	                 -EACCES);
	assert_int_equal(twilio_sig_verify("12345", "https://mycompany.com/myapp.php/?foo=1&bar=2",
	                                   doc_names, doc_values, 5, doc_sig),
	                 -EACCES);
	/* http instead of https */
	assert_int_equal(twilio_sig_verify("12345", "http://mycompany.com/myapp.php?foo=1&bar=2",
	                                   doc_names, doc_values, 5, doc_sig),
	                 -EACCES);
}

static void test_ports(void **state)
{
	(void)state;
	char with_port[64];
	/* Twilio signed the URL with :443; we see it without, and the reverse */
	const char *p443 = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
	assert_int_equal(twilio_sig_compute("12345", p443, doc_names, doc_values, 5, with_port), 0);
	assert_string_not_equal(with_port, doc_sig);
	assert_int_equal(twilio_sig_verify("12345", doc_url, doc_names, doc_values, 5, with_port),
	                 0);
	assert_int_equal(twilio_sig_verify("12345", p443, doc_names, doc_values, 5, doc_sig), 0);
	/* another port is never dropped or guessed */
	const char *p8443 = "https://mycompany.com:8443/myapp.php?foo=1&bar=2";
	assert_int_equal(twilio_sig_verify("12345", p8443, doc_names, doc_values, 5, doc_sig),
	                 -EACCES);
	char s8443[64];
	assert_int_equal(twilio_sig_compute("12345", p8443, doc_names, doc_values, 5, s8443), 0);
	assert_int_equal(twilio_sig_verify("12345", doc_url, doc_names, doc_values, 5, s8443),
	                 -EACCES);
	assert_int_equal(twilio_sig_verify("12345", p8443, doc_names, doc_values, 5, s8443), 0);
	/* http with :80, a host without a path, user info and an IPv6 literal */
	char s[64];
	assert_int_equal(twilio_sig_compute("k", "http://h.example:80", NULL, NULL, 0, s), 0);
	assert_int_equal(twilio_sig_verify("k", "http://h.example", NULL, NULL, 0, s), 0);
	assert_int_equal(twilio_sig_compute("k", "https://u:p@h.example/x", NULL, NULL, 0, s), 0);
	assert_int_equal(twilio_sig_verify("k", "https://u:p@h.example:443/x", NULL, NULL, 0, s),
	                 0);
	assert_int_equal(twilio_sig_compute("k", "https://[::1]:443/cb?m=1", NULL, NULL, 0, s), 0);
	assert_int_equal(twilio_sig_verify("k", "https://[::1]/cb?m=1", NULL, NULL, 0, s), 0);
	assert_int_equal(twilio_sig_verify("k", "https://[::1]:80/cb?m=1", NULL, NULL, 0, s),
	                 -EACCES);
}

static void test_duplicates_and_utf8(void **state)
{
	(void)state;
	/* sorted by name (byte order: upper case first), equal names by value,
	 * an exact duplicate pair counted once; values are UTF-8 bytes */
	const char *names[] = {"a", "b", "a", "B", "a"};
	const char *values[] = {"2", "\xdb\x8c", "1", "x", "2"};
	const char *want = "mS/AFLTzPmolqnJoIoiXVGdAEgk=";
	char out[64];
	assert_int_equal(twilio_sig_compute("tok", "https://x.example/cb", names, values, 5, out),
	                 0);
	assert_string_equal(out, want);
	assert_int_equal(twilio_sig_compute("tok", "https://x.example/cb", names, values, 4, out),
	                 0);
	assert_string_equal(out, want);
}

static void test_limits(void **state)
{
	(void)state;
	char out[64];
	const char *nm[] = {"a"};
	const char *vnull[] = {NULL};
	assert_int_equal(twilio_sig_compute(NULL, doc_url, NULL, NULL, 0, out), -EINVAL);
	assert_int_equal(twilio_sig_compute("", doc_url, NULL, NULL, 0, out), -EINVAL);
	assert_string_equal(out, "");
	assert_int_equal(twilio_sig_compute("k", NULL, NULL, NULL, 0, out), -EINVAL);
	assert_int_equal(twilio_sig_compute("k", doc_url, nm, NULL, 1, out), -EINVAL);
	assert_int_equal(twilio_sig_compute("k", doc_url, nm, vnull, 1, out), -EINVAL);
	assert_int_equal(twilio_sig_verify(NULL, doc_url, NULL, NULL, 0, doc_sig), -EINVAL);

	size_t n = TWILIO_SIG_MAX_PARAMS + 1;
	const char **names = xcalloc(n, sizeof *names);
	const char **values = xcalloc(n, sizeof *values);
	for (size_t i = 0; i < n; i++) {
		names[i] = "p";
		values[i] = "v";
	}
	assert_int_equal(twilio_sig_compute("k", doc_url, names, values, n, out), -E2BIG);
	assert_int_equal(twilio_sig_verify("k", doc_url, names, values, n, doc_sig), -E2BIG);
	assert_int_equal(twilio_sig_compute("k", doc_url, names, values, n - 1, out), 0);

	/* a value past the input cap */
	char *big = xmalloc(TWILIO_SIG_MAX_INPUT + 1);
	memset(big, 'x', TWILIO_SIG_MAX_INPUT);
	big[TWILIO_SIG_MAX_INPUT] = '\0';
	values[0] = big;
	assert_int_equal(twilio_sig_compute("k", doc_url, names, values, 1, out), -E2BIG);
	big[TWILIO_SIG_MAX_INPUT - strlen(doc_url) - 1] = '\0';
	assert_int_equal(twilio_sig_compute("k", doc_url, names, values, 1, out), 0);
	free(big);
	free(names);
	free(values);
}

/* RFC 2202 section 3 (HMAC-SHA1), test cases 2 and 6, Base64-encoded:
 * effcdf6ae5eb2fa2d27416d5f184df9c259a7c79 and
 * aa4ae5e15272d00e95705637ce8a3b55ed402112. */
static void test_rfc2202(void **state)
{
	(void)state;
	char out[64], key[81];
	assert_int_equal(
	    twilio_sig_compute("Jefe", "what do ya want for nothing?", NULL, NULL, 0, out), 0);
	assert_string_equal(out, "7/zfauXrL6LSdBbV8YTfnCWafHk=");
	/* a key longer than SHA-1's 64-byte block is hashed first */
	memset(key, 0xaa, 80);
	key[80] = '\0';
	const char *data = "Test Using Larger Than Block-Size Key - Hash Key First";
	assert_int_equal(twilio_sig_compute(key, data, NULL, NULL, 0, out), 0);
	assert_string_equal(out, "qkrl4VJy0A6VcFY3zoo7Ve1AIRI=");
	/* the same text split into URL, name and value signs the same */
	const char *nm[] = {"Test Using Larger Than "};
	const char *vl[] = {"Block-Size Key - Hash Key First"};
	assert_int_equal(twilio_sig_compute(key, "", nm, vl, 1, out), 0);
	assert_string_equal(out, "qkrl4VJy0A6VcFY3zoo7Ve1AIRI=");
	assert_int_equal(twilio_sig_verify(key, "", nm, vl, 1, "qkrl4VJy0A6VcFY3zoo7Ve1AIRI="), 0);
}

/* More distinct tokens than the cache keeps, interleaved, and tokens that
 * are prefixes of one another: each signature is the one of its own token. */
static void test_key_cache(void **state)
{
	(void)state;
	static const char *const tok[] = {"1234", "12345", "123456", "k1", "k2",
	                                  "k3",   "k4",    "k5",     "k6"};
	static const char *const want[] = {
	    "l056H2cpRBMcgWK0lx4oJBwy36o=", "jUovLn6KXQPUbLLhDOMN8EZEccM=",
	    "sXyEt2d4+q/lIB/fxK6JldcsCF4=", "gmRAiGlqLwSWfCyI6ng4JeR3Rqg=",
	    "GpnbslNn+ir0OOfNzChahOydjBg=", "LYvxzN7O19eUZT7go3zgzfwWWQM=",
	    "1j6t36I7jDlhlvHlkKM+rA8aMMU=", "Rkhzqe+zf8VFzccWEMw+Eb3dBs4=",
	    "zdRz9PbMmNOeIznS5L+RSwaDkNo="};
	const char *nm[] = {"a"}, *vl[] = {"1"};
	const char *url = "https://x.example/cb";
	char out[64];
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < ARRAY_SIZE(tok); i++) {
			size_t k = round == 1 ? ARRAY_SIZE(tok) - 1 - i : i;
			assert_int_equal(twilio_sig_compute(tok[k], url, nm, vl, 1, out), 0);
			assert_string_equal(out, want[k]);
			assert_int_equal(twilio_sig_verify(tok[k], url, nm, vl, 1, want[k]), 0);
			/* the neighbour's signature is refused */
			size_t o = (k + 1) % ARRAY_SIZE(tok);
			assert_int_equal(twilio_sig_verify(tok[k], url, nm, vl, 1, want[o]),
			                 -EACCES);
		}
		if (round == 1)
			twilio_sig_cleanup();
	}
	/* the same token twice in a row, then the documented example again */
	assert_int_equal(twilio_sig_compute("12345", doc_url, doc_names, doc_values, 5, out), 0);
	assert_string_equal(out, doc_sig);
	assert_int_equal(twilio_sig_compute("12345", doc_url, doc_names, doc_values, 5, out), 0);
	assert_string_equal(out, doc_sig);
	twilio_sig_cleanup();
	twilio_sig_cleanup();
	assert_int_equal(twilio_sig_verify("12345", doc_url, doc_names, doc_values, 5, doc_sig), 0);
	twilio_sig_cleanup();
}

/* More parameters than are sorted on the stack. */
static void test_many_params(void **state)
{
	(void)state;
	const char *names[40], *values[40];
	char nbuf[40][16], vbuf[40][16], out[64];
	for (int i = 0; i < 40; i++) {
		snprintf(nbuf[i], sizeof nbuf[i], "p%02d", 39 - i);
		snprintf(vbuf[i], sizeof vbuf[i], "v%d", i);
		names[i] = nbuf[i];
		values[i] = vbuf[i];
	}
	assert_int_equal(
	    twilio_sig_compute("tok-40", "https://x.example/cb", names, values, 40, out), 0);
	assert_string_equal(out, "BN+SsreFo5SPrdxOnY0uPfJUIvs=");
	assert_int_equal(twilio_sig_verify("tok-40", "https://x.example:443/cb", names, values, 40,
	                                   "BN+SsreFo5SPrdxOnY0uPfJUIvs="),
	                 0);
	twilio_sig_cleanup();
}

struct sig_worker {
	const char *token, *want;
	int bad;
};

static void *sig_worker_main(void *arg)
{
	struct sig_worker *w = arg;
	const char *nm[] = {"a"}, *vl[] = {"1"};
	for (int i = 0; i < 1000; i++) {
		char out[64];
		if (twilio_sig_compute(w->token, "https://x.example/cb", nm, vl, 1, out) != 0 ||
		    strcmp(out, w->want) != 0)
			w->bad++;
	}
	return NULL;
}

/* Threads with different tokens (more than the cache holds) at once. */
static void test_threads(void **state)
{
	(void)state;
	struct sig_worker w[6] = {
	    {"k1", "gmRAiGlqLwSWfCyI6ng4JeR3Rqg=", 0}, {"k2", "GpnbslNn+ir0OOfNzChahOydjBg=", 0},
	    {"k3", "LYvxzN7O19eUZT7go3zgzfwWWQM=", 0}, {"k4", "1j6t36I7jDlhlvHlkKM+rA8aMMU=", 0},
	    {"k5", "Rkhzqe+zf8VFzccWEMw+Eb3dBs4=", 0}, {"k1", "gmRAiGlqLwSWfCyI6ng4JeR3Rqg=", 0},
	};
	pthread_t t[6];
	for (int i = 0; i < 6; i++)
		assert_int_equal(pthread_create(&t[i], NULL, sig_worker_main, &w[i]), 0);
	for (int i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].bad, 0);
	}
	twilio_sig_cleanup();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_documented_example),
	    cmocka_unit_test(test_status_callback),
	    cmocka_unit_test(test_bad_signatures),
	    cmocka_unit_test(test_ports),
	    cmocka_unit_test(test_duplicates_and_utf8),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_rfc2202),
	    cmocka_unit_test(test_key_cache),
	    cmocka_unit_test(test_many_params),
	    cmocka_unit_test(test_threads),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	twilio_sig_cleanup();
	return rc;
}
