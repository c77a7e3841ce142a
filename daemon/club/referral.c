/*
 * referral.c - referral code generation and normalisation (referral.h).
 *
 * Owns nothing; never touches Redis (store_club.c and lua/points_ledger.lua
 * keep the code -> contact index).  Limits: input codes 64 bytes.
 */
#include "club/referral.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "text.h"
#include "util.h"

#define ALPHA_N   (sizeof(REFERRAL_ALPHABET) - 1)
#define INPUT_MAX 64

int referral_code_from_bytes(const unsigned char *bytes, size_t n, char out[REFERRAL_CODE_LEN + 1])
{
	/* 31 symbols: take bytes below 248 = 8 * 31, so every symbol is
	 * equally likely. */
	const unsigned limit = (256 / ALPHA_N) * ALPHA_N;
	size_t k = 0;
	for (size_t i = 0; i < n && k < REFERRAL_CODE_LEN; i++)
		if (bytes[i] < limit)
			out[k++] = REFERRAL_ALPHABET[bytes[i] % ALPHA_N];
	out[k] = '\0';
	return k == REFERRAL_CODE_LEN ? 0 : -EAGAIN;
}

void referral_code_new(char out[REFERRAL_CODE_LEN + 1])
{
	unsigned char b[4 * REFERRAL_CODE_LEN];
	do
		random_bytes(b, sizeof b);
	while (referral_code_from_bytes(b, sizeof b, out) < 0);
}

int referral_code_normalize(const char *in, char out[REFERRAL_CODE_LEN + 1])
{
	size_t n = in ? strlen(in) : 0, k = 0;
	if (n == 0 || n > INPUT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		int l = utf8_decode(in + i, n - i, &cp);
		if (l < 0)
			return -EINVAL;
		i += (size_t)l;
		if ((cp < 0x20 && cp != '\t') || cp == 0x7f)
			return -EINVAL;
		if (cp == '-' || text_is_space(cp))
			continue;
		int d = text_digit_value(cp);
		char c;
		if (d >= 0)
			c = (char)('0' + d);
		else if (cp >= 'a' && cp <= 'z')
			c = (char)(cp - 'a' + 'A');
		else if (cp < 0x80)
			c = (char)cp;
		else
			return -EINVAL;
		if (c == '\0' || !strchr(REFERRAL_ALPHABET, c) || k == REFERRAL_CODE_LEN)
			return -EINVAL;
		out[k++] = c;
	}
	out[k] = '\0';
	return k == REFERRAL_CODE_LEN ? 0 : -EINVAL;
}
