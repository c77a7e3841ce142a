/*
 * fuzz_inbound_twilio.c - libFuzzer target for the form-body parser
 * (inbound_form_parse, inbound.c) and Twilio's signature base string
 * (twilio_sig_compute / twilio_sig_verify, channels/twilio_sig.c): the
 * input is an application/x-www-form-urlencoded body.  When it parses,
 * every field is a NUL-terminated string, lookups find the first value,
 * the signature over the fields verifies, and a signature with one
 * character changed, or over another URL, does not.  Owns nothing.
 * Build and run: see tests/fuzz/README.md.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inbound.h"
#include "twilio_sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char token[] = "fuzz-auth-token";
	static const char url[] = "https://club.example.com/v1/inbound/twilio";
	if (size > 64 * 1024)
		return 0;
	struct inbound_form f;
	int rc = inbound_form_parse(&f, (const char *)data, size);
	if (rc != 0 && rc != -EINVAL && rc != -E2BIG)
		abort();
	if (f.n > INBOUND_FORM_MAX)
		abort();
	if (rc == 0) {
		for (size_t i = 0; i < f.n; i++) {
			const char *v = inbound_form_get(&f, f.name[i]);
			if (!v)
				abort();
			/* the first field of that name wins */
			size_t first = 0;
			while (strcmp(f.name[first], f.name[i]) != 0)
				first++;
			if (v != f.value[first])
				abort();
		}
		char sig[64];
		const char *const *names = (const char *const *)f.name;
		const char *const *values = (const char *const *)f.value;
		if (twilio_sig_compute(token, url, names, values, f.n, sig) == 0) {
			if (strlen(sig) != TWILIO_SIG_LEN)
				abort();
			if (twilio_sig_verify(token, url, names, values, f.n, sig) != 0)
				abort();
			if (twilio_sig_verify(token, "https://club.example.com/v1/inbound/twiliO",
			                      names, values, f.n, sig) != -EACCES)
				abort();
			sig[3] = sig[3] == 'A' ? 'B' : 'A';
			if (twilio_sig_verify(token, url, names, values, f.n, sig) != -EACCES)
				abort();
		}
	}
	inbound_form_free(&f);
	return 0;
}
