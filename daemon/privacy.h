/*
 * privacy.h - personal data at rest: libsodium secretbox sealing of names,
 * addresses and reply texts, and keyed hashes of addresses for the reverse
 * indexes (docs/privacy.md).
 *
 * The stored form of a sealed value is one line of text:
 *
 *   "\x01" TYPE KEYID BASE64URL(nonce[24] || mac[16] || ciphertext)
 *
 * TYPE is 'a' (an address: the nonce is the keyed hash
 * crypto_generichash(addr, key = the index subkey), so one address always
 * seals to the same text and that text is also the address's reverse-index
 * token) or 't' (any other text: a random nonce).  KEYID is 8 hex digits
 * naming the key.  A value that does not start with "\x01" is plain text
 * (validated names and addresses never contain control characters), so
 * opening a plain value leaves it as it is.
 *
 * Because a sealed address is deterministic, the Lua scripts need no change:
 * they store and index the stored form exactly as they stored the address
 * (P ix:{kind}:{stored form}, c:{id} a:{kind} = stored form), and every
 * comparison of addresses still works.  C passes stored forms into the
 * scripts (privacy_argv_addr / privacy_argv_text) and opens replies
 * (privacy_open_reply) before using them.
 *
 * The key is process-wide, like the callback secret: privacy_init() at
 * start (not reloadable), privacy_cleanup() at exit.  With no key every
 * function here is the identity, so clubd without [privacy] key_file
 * stores exactly what it stored before.
 */
#ifndef CLUBD_PRIVACY_H
#define CLUBD_PRIVACY_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "redis.h"
#include "store.h"

#define PRIVACY_MARK      '\x01'
#define PRIVACY_KEY_BYTES 32
#define PRIVACY_KEYID_LEN 8
#define PRIVACY_TEXT_MAX  (1024 * 1024) /* largest value sealed or opened */

/* A loaded key: the subkeys derived from the master key (sodium_malloc'd,
 * locked, wiped on free) and its id. */
struct privacy_key;

/*
 * Load a key from a secret reference (a file, env:NAME or cred:NAME, as
 * cfg_read_secret(); systemd LoadCredential= gives cred:NAME).  The secret
 * is 64 hex digits or the standard base64 of 32 bytes (make one with
 * `openssl rand -hex 32`), a trailing newline allowed.  0 and *out, or -1
 * with a reason in why (never the key).
 */
int privacy_key_load(const char *spec, struct privacy_key **out, char *why, size_t whylen);
/* The same from raw bytes (tests, tools). */
struct privacy_key *privacy_key_from_bytes(const unsigned char master[PRIVACY_KEY_BYTES]);
void privacy_key_free(struct privacy_key *k);
/* The 8 hex digits naming k. */
const char *privacy_key_id(const struct privacy_key *k);

/* Seal n bytes under k: type 'a' (address, deterministic) or 't' (text).
 * Returns the stored form (caller frees), its length in *outlen (may be
 * NULL).  NULL when n > PRIVACY_TEXT_MAX. */
char *privacy_seal_with(const struct privacy_key *k, char type, const char *p, size_t n,
                        size_t *outlen);
/* 1 when s[0..n) has the sealed form (not that it opens). */
int privacy_is_sealed(const char *s, size_t n);
/* The type ('a' or 't') and key id of a sealed value; 0, or -1 when s is
 * not sealed.  keyid gets PRIVACY_KEYID_LEN + 1 bytes. */
int privacy_sealed_info(const char *s, size_t n, char *type, char keyid[PRIVACY_KEYID_LEN + 1]);
/*
 * Open a sealed value with k into out (at least n bytes; the plain text is
 * always shorter than its sealed form), NUL-terminated, length in *outlen.
 * 0, -EINVAL (not sealed or malformed), -ENOKEY (sealed under another key)
 * or -EBADMSG (does not authenticate).
 */
int privacy_open_with(const struct privacy_key *k, const char *s, size_t n, char *out,
                      size_t *outlen);

/* The process-wide key ------------------------------------------------- */

/* spec "" or NULL: encryption off.  0, or -1 with why. */
int privacy_init(const char *spec, char *why, size_t whylen);
/* Install k as the process-wide key (takes ownership; NULL = off). */
void privacy_use(struct privacy_key *k);
void privacy_cleanup(void);
int privacy_enabled(void);
const struct privacy_key *privacy_current(void);

/* The stored form of an address or a text under the current key (a copy
 * of the plain value when off).  Caller frees.  NULL only for NULL. */
char *privacy_seal_addr(const char *addr);
char *privacy_seal_text(const char *text);
/* Append the stored form to a script's argv (NULL and "" append ""). */
void privacy_argv_addr(struct argv *a, const char *addr);
void privacy_argv_text(struct argv *a, const char *text);
/*
 * Open, in place, every sealed string in a reply: a string, or an array
 * (HGETALL, HMGET, XRANGE entries, nested arrays) walked to depth 8.  The
 * plain text replaces the sealed text inside the reply's own buffer (it is
 * shorter), so the reply stays the caller's to free as before.  A value
 * that does not open (no key, another key, damaged) is left sealed and
 * counted; returns that count (0 when everything opened or was plain).
 */
int privacy_open_reply(const redisReply *r);
/*
 * For a read of contact data: with a key, replace *cb / *arg by a callback
 * that opens the reply in place (privacy_open_reply) and then calls the
 * original; without one, leave them.  Use right before issuing the command:
 * the wrapper is freed when it runs (every redis_cb runs exactly once).
 */
void privacy_wrap_cb(redis_cb *cb, void **arg);
/* Open one value (a copy of s when plain).  Caller frees; NULL when a
 * sealed value does not open (errno-style code in *err when err). */
char *privacy_open_str(const char *s, size_t n, size_t *outlen, int *err);

#endif
