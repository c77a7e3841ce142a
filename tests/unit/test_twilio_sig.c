/*
 * test_twilio_sig.c - X-Twilio-Signature: Twilio's documented reference
 * example, parameter order, duplicates, UTF-8 values, the default-port
 * variants of the URL, every way a signature can be wrong, and the input
 * limits.  Expected values were computed independently (Python's hmac and
 * base64 modules) and are written here as constants.
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_documented_example),  cmocka_unit_test(test_status_callback),
	    cmocka_unit_test(test_bad_signatures),      cmocka_unit_test(test_ports),
	    cmocka_unit_test(test_duplicates_and_utf8), cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
