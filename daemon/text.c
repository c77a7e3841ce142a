/*
 * text.c - strict UTF-8 decoding and validation, control-character checks,
 * and the normalisation used to match keywords and answers: Persian and
 * Arabic-Indic digits to ASCII, Arabic yeh / alef maksura / kaf to their
 * Persian forms, trimming and collapsing of ASCII and Unicode white space,
 * ASCII lower-casing.  ZWNJ (U+200C) is kept.
 *
 * Owns nothing: pure functions over caller strings; returned strings are
 * new allocations the caller frees.  Never touches logging or global state.
 * Limits: no Unicode case folding beyond ASCII and no NFC/NFKC (ICU is the
 * tool for that if it is ever needed); invalid UTF-8 is refused, not
 * repaired.
 */
#include "text.h"

#include <string.h>

#include "util.h"

int utf8_decode(const char *s, size_t n, uint32_t *cp)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t c, min;
	int len;

	if (n == 0)
		return -1;
	c = p[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c < 0xC2) /* continuation byte, or C0/C1 lead (always overlong) */
		return -1;
	if (c < 0xE0) {
		len = 2;
		c &= 0x1F;
		min = 0x80;
	} else if (c < 0xF0) {
		len = 3;
		c &= 0x0F;
		min = 0x800;
	} else if (c < 0xF5) {
		len = 4;
		c &= 0x07;
		min = 0x10000;
	} else {
		return -1;
	}
	if (n < (size_t)len)
		return -1;
	for (int i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return -1;
		c = (c << 6) | (p[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return -1;
	*cp = c;
	return len;
}

int utf8_valid(const char *s, size_t n)
{
	size_t i = 0;
	uint32_t cp;

	while (i < n) {
		if ((unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		int l = utf8_decode(s + i, n - i, &cp);
		if (l < 0)
			return 0;
		i += (size_t)l;
	}
	return 1;
}

size_t utf8_len(const char *s, size_t n)
{
	size_t count = 0;

	/* Every byte that is not a continuation byte starts a code point. */
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			count++;
	return count;
}

int text_has_ctl(const char *s, int allow_nl)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == 0x7F)
			return 1;
		if (*p >= 0x20)
			continue;
		if (allow_nl && (*p == '\t' || *p == '\n' || *p == '\r'))
			continue;
		return 1;
	}
	return 0;
}

int text_is_space(uint32_t cp)
{
	if (cp == ' ' || (cp >= '\t' && cp <= '\r'))
		return 1;
	if (cp < 0x85)
		return 0;
	switch (cp) {
	case 0x85:
	case 0xA0:
	case 0x1680:
	case 0x2028:
	case 0x2029:
	case 0x202F:
	case 0x205F:
	case 0x3000:
	case 0xFEFF:
		return 1;
	default:
		return cp >= 0x2000 && cp <= 0x200B;
	}
}

int text_digit_value(uint32_t cp)
{
	if (cp >= '0' && cp <= '9')
		return (int)(cp - '0');
	if (cp >= 0x06F0 && cp <= 0x06F9)
		return (int)(cp - 0x06F0);
	if (cp >= 0x0660 && cp <= 0x0669)
		return (int)(cp - 0x0660);
	return -1;
}

/* Encode a code point known to be valid; out has room for 4 bytes. */
static size_t utf8_put(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

char *text_ascii_digits(const char *s)
{
	size_t n = strlen(s), o = 0;
	char *out = xmalloc(n + 1);

	/* The digits are all two-byte sequences D9 A0..A9 and DB B0..B9;
	 * scanning bytes keeps any other (even invalid) input untouched. */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		unsigned char d = i + 1 < n ? (unsigned char)s[i + 1] : 0;
		if (c == 0xD9 && d >= 0xA0 && d <= 0xA9) {
			out[o++] = (char)('0' + (d - 0xA0));
			i++;
		} else if (c == 0xDB && d >= 0xB0 && d <= 0xB9) {
			out[o++] = (char)('0' + (d - 0xB0));
			i++;
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return out;
}

static uint32_t fold(uint32_t cp)
{
	int d = text_digit_value(cp);

	if (d >= 0)
		return (uint32_t)('0' + d);
	if (cp >= 'A' && cp <= 'Z')
		return cp + ('a' - 'A');
	switch (cp) {
	case 0x064A:           /* ARABIC LETTER YEH */
	case 0x0649:           /* ARABIC LETTER ALEF MAKSURA */
		return 0x06CC; /* ARABIC LETTER FARSI YEH */
	case 0x0643:           /* ARABIC LETTER KAF */
		return 0x06A9; /* ARABIC LETTER KEHEH */
	default:
		return cp;
	}
}

char *text_normalize(const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s), i = 0, o = 0;
	if (!utf8_valid(s, n))
		return NULL;
	/* Every mapping keeps or shrinks the byte length. */
	char *out = xmalloc(n + 1);
	int pending_space = 0;

	while (i < n) {
		uint32_t cp;
		int l = utf8_decode(s + i, n - i, &cp);
		i += (size_t)l;
		if (text_is_space(cp)) {
			pending_space = o > 0; /* leading white space is dropped */
			continue;
		}
		if (pending_space) {
			out[o++] = ' ';
			pending_space = 0;
		}
		o += utf8_put(out + o, fold(cp));
	}
	out[o] = '\0';
	return out;
}
