/*
 * callback.h - signatures for the URLs clubd hands to providers (delivery
 * report callbacks, unsubscribe links).  A URL carries the message id and
 * k = hex(HMAC-SHA256(secret, purpose ":" id)) truncated to 32 hex digits, so
 * a leaked callback URL cannot be replayed for another message and nobody
 * without the secret can forge one.  The secret comes from
 * [api] callback_secret_file; without it, nothing is signed and every
 * signed endpoint answers 403.
 *
 * The HMAC key is set up once, in callback_init(), not per signature.  Every
 * function may be called from any thread (one lock around the keyed context).
 */
#ifndef CLUBD_CALLBACK_H
#define CLUBD_CALLBACK_H

#include <stddef.h>

#define CALLBACK_SIG_LEN 32

/* Load the secret (NULL or "" = none).  0, or -1 with why set. */
int callback_init(const char *secret_spec, char *why, size_t whylen);
void callback_cleanup(void);
int callback_enabled(void);
/* out gets CALLBACK_SIG_LEN hex digits + NUL; -1 when no secret. */
int callback_sign(const char *purpose, const char *id, char out[CALLBACK_SIG_LEN + 1]);
/* 1 when sig is the signature of (purpose, id); constant time. */
int callback_verify(const char *purpose, const char *id, const char *sig);
/* out gets hex(HMAC-SHA256(secret, msg[0..n))), 64 digits + NUL, for signed
 * webhooks (X-Clubd-Signature); -1 when no secret. */
int callback_hmac_hex(const char *msg, size_t n, char out[65]);
/* The same over the concatenation of n parts (part[i] of len[i] bytes),
 * without copying them together.  -1 when no secret. */
int callback_hmac_hex_parts(const char *const *part, const size_t *len, size_t n, char out[65]);

#endif
