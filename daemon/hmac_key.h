/*
 * hmac_key.h - an OpenSSL 3 HMAC context keyed once, for signatures made
 * again and again with the same key (callback.c, channels/twilio_sig.c).
 */
#ifndef CLUBD_HMAC_KEY_H
#define CLUBD_HMAC_KEY_H

#include <openssl/evp.h>
#include <stddef.h>

/* An HMAC context over digest ("SHA256", "SHA1") keyed with key (len bytes),
 * ready for EVP_MAC_update; re-initialise it with EVP_MAC_init(c, NULL, 0,
 * NULL) for the next message.  NULL when OpenSSL fails.  Free with
 * EVP_MAC_CTX_free. */
EVP_MAC_CTX *hmac_key_new(const char *digest, const void *key, size_t len);

#endif
