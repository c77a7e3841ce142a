/*
 * twilio_sig.h - Twilio request signatures (X-Twilio-Signature), pure.
 *
 * Twilio signs every webhook it sends (StatusCallback included):
 *   Base64(HMAC-SHA1(auth_token, full_url + name1 value1 name2 value2 ...))
 * where the POST parameters are sorted by name (byte order, case-sensitive;
 * equal names by value, an exact duplicate pair counted once) and the URL
 * is exactly the one Twilio called, query string included.  Values are the
 * decoded form values.  No I/O, no allocation visible to the caller; the
 * HMAC contexts keyed with the last few tokens are kept (twilio_sig.c), so
 * a fixed token is not re-keyed per request.  Thread-safe.
 */
#ifndef CLUBD_TWILIO_SIG_H
#define CLUBD_TWILIO_SIG_H

#include <stddef.h>

#define TWILIO_SIG_LEN        28            /* Base64 of a 20-byte SHA-1 MAC */
#define TWILIO_SIG_MAX_PARAMS 1024          /* more parameters: -E2BIG */
#define TWILIO_SIG_MAX_INPUT  (1024 * 1024) /* URL + names + values: -E2BIG */

/*
 * Compute the signature into out (NUL-terminated, TWILIO_SIG_LEN chars).
 * names and values are n borrowed strings (may be NULL when n == 0).
 * 0, or -EINVAL (NULL or empty token, NULL url/name/value), -E2BIG.
 */
int twilio_sig_compute(const char *auth_token, const char *url, const char *const *names,
                       const char *const *values, size_t n, char out[64]);

/*
 * Check a received X-Twilio-Signature in constant time.  The URL is tried
 * as given and, like Twilio's own libraries do, with the scheme's default
 * port added or removed (":443" for https, ":80" for http), since proxies
 * in front of clubd may change it.  0 when it matches, -EACCES when it does
 * not (or signature is NULL/empty), or an error of twilio_sig_compute.
 */
int twilio_sig_verify(const char *auth_token, const char *url, const char *const *names,
                      const char *const *values, size_t n, const char *signature);

/* Wipe and free the keyed contexts kept for the tokens seen so far (at
 * exit, or after a token was rotated out); later calls key them again. */
void twilio_sig_cleanup(void);

#endif
