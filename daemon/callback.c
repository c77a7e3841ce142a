/*
 * callback.c - the process-wide callback secret and URL signatures (see
 * callback.h).  Owns one HMAC-SHA256 context keyed with the secret when it
 * is loaded (OpenSSL 3 EVP_MAC); each signature re-initialises that context
 * (which reuses the precomputed key pads) instead of keying a fresh HMAC, so
 * the digest is fetched and the key hashed once per process, not once per
 * request.  The secret itself is wiped as soon as the context is keyed;
 * the context is freed (and cleansed by OpenSSL) on cleanup.  Never logs
 * the secret.  A mutex serialises the context: callers may be on any thread.
 * Limits: purpose ":" id at most 255 bytes for URL signatures.
 */
#include "callback.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hmac_key.h"
#include "util.h"

#define SIGN_MSG_MAX 256 /* purpose ":" id, NUL included */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static EVP_MAC_CTX *keyed; /* HMAC-SHA256 keyed with the secret; NULL = none */

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
	size_t n = strlen(s);
	if (n < 16) {
		secret_free(s);
		snprintf(why, whylen, "the callback secret must be at least 16 characters");
		return -1;
	}
	EVP_MAC_CTX *c = hmac_key_new("SHA256", s, n);
	secret_free(s);
	if (!c) {
		snprintf(why, whylen, "cannot set up HMAC-SHA256 (OpenSSL)");
		return -1;
	}
	pthread_mutex_lock(&mu);
	keyed = c;
	pthread_mutex_unlock(&mu);
	return 0;
}

void callback_cleanup(void)
{
	pthread_mutex_lock(&mu);
	EVP_MAC_CTX *c = keyed;
	keyed = NULL;
	pthread_mutex_unlock(&mu);
	EVP_MAC_CTX_free(c);
}

int callback_enabled(void)
{
	pthread_mutex_lock(&mu);
	int on = keyed != NULL;
	pthread_mutex_unlock(&mu);
	return on;
}

/* md = HMAC-SHA256(secret, part[0] || ... || part[n-1]); 0, or -1 when
 * there is no secret or OpenSSL fails. */
static int mac_parts(const char *const *part, const size_t *len, size_t n, unsigned char md[32])
{
	int rc = -1;
	size_t mdlen = 0;
	pthread_mutex_lock(&mu);
	if (!keyed || !EVP_MAC_init(keyed, NULL, 0, NULL))
		goto out;
	for (size_t i = 0; i < n; i++)
		if (len[i] && !EVP_MAC_update(keyed, (const unsigned char *)part[i], len[i]))
			goto out;
	if (EVP_MAC_final(keyed, md, &mdlen, 32) && mdlen == 32)
		rc = 0;
out:
	pthread_mutex_unlock(&mu);
	return rc;
}

int callback_sign(const char *purpose, const char *id, char out[CALLBACK_SIG_LEN + 1])
{
	size_t pl = strlen(purpose), il = strlen(id);
	if (pl + 1 + il >= SIGN_MSG_MAX)
		return -1;
	const char *part[3] = {purpose, ":", id};
	const size_t len[3] = {pl, 1, il};
	unsigned char md[32];
	char hex[2 * sizeof md + 1];
	if (mac_parts(part, len, 3, md) < 0)
		return -1;
	hex_encode(md, sizeof md, hex);
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

int callback_hmac_hex_parts(const char *const *part, const size_t *len, size_t n, char out[65])
{
	unsigned char md[32];
	if (mac_parts(part, len, n, md) < 0)
		return -1;
	hex_encode(md, sizeof md, out);
	out[64] = '\0';
	return 0;
}

int callback_hmac_hex(const char *msg, size_t n, char out[65])
{
	return callback_hmac_hex_parts(&msg, &n, 1, out);
}
