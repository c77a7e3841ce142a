/*
 * hmac_key.c - keyed HMAC contexts (hmac_key.h).  Owns nothing: the caller
 * keeps and frees the context.  The key is copied into OpenSSL's context.
 */
#include "hmac_key.h"

#include <openssl/core_names.h>
#include <openssl/params.h>

EVP_MAC_CTX *hmac_key_new(const char *digest, const void *key, size_t len)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!mac)
		return NULL;
	EVP_MAC_CTX *c = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac); /* the context keeps its own reference */
	OSSL_PARAM p[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest, 0),
	    OSSL_PARAM_construct_end()};
	if (c && !EVP_MAC_init(c, key, len, p)) {
		EVP_MAC_CTX_free(c);
		c = NULL;
	}
	return c;
}
