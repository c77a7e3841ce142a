/*
 * callback.c - the process-wide callback secret and URL signatures (see
 * callback.h).  Owns the secret; wipes it on cleanup.  Never logs it.
 */
#include "callback.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"

static char *secret;
static size_t secret_len;

int callback_init(const char *spec, char *why, size_t whylen)
{
	callback_cleanup();
	if (!spec || !*spec)
		return 0;
	struct cfg_error err = {""};
	char *s = cfg_read_secret(spec, &err);
	if (!s) {
		snprintf(why, whylen, "%s", err.msg);
		return -1;
	}
	if (strlen(s) < 16) {
		explicit_bzero(s, strlen(s));
		free(s);
		snprintf(why, whylen, "the callback secret must be at least 16 characters");
		return -1;
	}
	secret = s;
	secret_len = strlen(s);
	return 0;
}

void callback_cleanup(void)
{
	if (secret) {
		explicit_bzero(secret, secret_len);
		free(secret);
	}
	secret = NULL;
	secret_len = 0;
}

int callback_enabled(void)
{
	return secret != NULL;
}

int callback_sign(const char *purpose, const char *id, char out[CALLBACK_SIG_LEN + 1])
{
	if (!secret)
		return -1;
	char msg[256];
	int n = snprintf(msg, sizeof msg, "%s:%s", purpose, id);
	if (n < 0 || (size_t)n >= sizeof msg)
		return -1;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)msg, (size_t)n, md,
	          &mdlen))
		return -1;
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	hex_encode(md, mdlen, hex);
	memcpy(out, hex, CALLBACK_SIG_LEN);
	out[CALLBACK_SIG_LEN] = '\0';
	return 0;
}

int callback_verify(const char *purpose, const char *id, const char *sig)
{
	char want[CALLBACK_SIG_LEN + 1];
	if (!sig || strlen(sig) != CALLBACK_SIG_LEN || callback_sign(purpose, id, want) < 0)
		return 0;
	return ct_equal(want, sig, CALLBACK_SIG_LEN);
}

int callback_hmac_hex(const char *msg, size_t n, char out[65])
{
	if (!secret)
		return -1;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)msg, n, md,
	          &mdlen) ||
	    mdlen != 32)
		return -1;
	hex_encode(md, mdlen, out);
	out[64] = '\0';
	return 0;
}
