/*
 * fuzz_inbound_kannel.c - libFuzzer target for the Kannel MO parameter
 * parser (inbound_kannel_parse, inbound.c) and the charset conversion
 * behind it.  The first byte picks coding, charset and whether the text
 * came binary-safe (post-url) or through a query; the rest is split at
 * '\n' into from, to, ts, id and the text (which may hold NUL bytes).
 * Checks the parser's promises: on success the text is valid UTF-8 without
 * NUL and at most INBOUND_TEXT_MAX bytes, the sender is E.164 and the id
 * printable; on failure field and why are set.  Owns nothing.
 * Build and run: see tests/fuzz/README.md.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inbound.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const charsets[] = {NULL,           "UTF-8", "UTF-16BE",   "ISO-8859-1",
                                       "windows-1256", "8-BIT", "no-such-cs", "UCS-2"};
static const char *const codings[] = {NULL, "0", "1", "2", "9", ""};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 3 * INBOUND_TEXT_MAX)
		return 0;
	uint8_t sel = data[0];
	char *buf = malloc(size);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	size_t len = size - 1;
	/* from \n to \n ts \n id \n text... */
	char *part[4] = {NULL, NULL, NULL, NULL};
	size_t at = 0;
	for (int i = 0; i < 4; i++) {
		char *nl = memchr(buf + at, '\n', len - at);
		if (!nl)
			break;
		*nl = '\0';
		part[i] = buf + at;
		at = (size_t)(nl - buf) + 1;
	}
	struct inbound_kannel_mo mo = {
	    .from = part[0],
	    .to = part[1],
	    .ts = part[2],
	    .id = part[3],
	    .coding = codings[sel % 6],
	    .charset = charsets[(sel >> 3) & 7],
	    .text = buf + at,
	    .text_len = len - at,
	    .binary_safe = sel >> 7,
	};
	struct inbound in;
	const char *field = NULL, *why = NULL;
	int rc = inbound_kannel_parse(&in, &mo, 1700000000000, "IR", &field, &why);
	if (rc == 0) {
		size_t n = strlen(in.text);
		if (n > INBOUND_TEXT_MAX || !utf8_valid(in.text, n) || in.from[0] != '+' ||
		    !in.provider_id[0] || strcmp(in.provider, "kannel") != 0)
			abort();
	} else if (!field || !why) {
		abort();
	}
	free(buf);
	return 0;
}
