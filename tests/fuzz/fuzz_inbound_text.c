/*
 * fuzz_inbound_text.c - libFuzzer target for the text normalisation every
 * keyword match goes through (text_normalize, text.c) and the keyword
 * classification (inbound_classify_kw, inbound.c).  Checks: valid UTF-8
 * normalises to valid UTF-8 with no white space at either end, no run of
 * spaces, no upper-case ASCII, no Persian/Arabic-Indic digit and no Arabic
 * yeh/kaf; normalising twice changes nothing; invalid UTF-8 gives NULL;
 * a text and its normalised form classify alike, and a keyword list built
 * from the input matches it.  Owns the keyword lists built on the first
 * call.  Build and run: see tests/fuzz/README.md.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inbound.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct inbound_keywords kw;
static int kw_ready;

static void check_normal(const char *n)
{
	size_t len = strlen(n);
	if (!utf8_valid(n, len))
		abort();
	if (len && (n[0] == ' ' || n[len - 1] == ' ' || strstr(n, "  ")))
		abort();
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		int k = utf8_decode(n + i, len - i, &cp);
		if (k < 0)
			abort();
		if ((cp >= 'A' && cp <= 'Z') || (cp >= 0x6F0 && cp <= 0x6F9) ||
		    (cp >= 0x660 && cp <= 0x669) || cp == 0x64A || cp == 0x643)
			abort();
		if (text_is_space(cp) && cp != ' ')
			abort();
		i += (size_t)k;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	if (!kw_ready) {
		char why[160];
		if (inbound_keywords_init(&kw, "STOP,لغو,کنسل", "START,عضویت", "HELP,راهنما", why,
		                          sizeof why) != 0)
			abort();
		kw_ready = 1;
	}
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	size_t len = strlen(s); /* up to the first NUL */
	char *n = text_normalize(s);
	if (!utf8_valid(s, len)) {
		if (n)
			abort();
		free(s);
		return 0;
	}
	if (!n)
		abort();
	check_normal(n);
	char *n2 = text_normalize(n);
	if (!n2 || strcmp(n, n2) != 0)
		abort();
	int fa1, fa2;
	if (inbound_classify_kw(&kw, s, &fa1) != inbound_classify_kw(&kw, n, &fa2) || fa1 != fa2)
		abort();
	/* the input as its own keyword matches itself (when it is one) */
	if (*n && !strchr(s, ',') && len <= 64) {
		struct inbound_keywords own;
		char why[160];
		if (inbound_keywords_init(&own, s, "", "", why, sizeof why) == 0 &&
		    inbound_classify_kw(&own, s, NULL) != INBOUND_OPT_OUT)
			abort();
		inbound_keywords_free(&own);
	}
	free(n2);
	free(n);
	free(s);
	return 0;
}
