/*
 * privacy.c - sealing personal data at rest with libsodium (privacy.h,
 * docs/privacy.md).  Owns the process-wide key (sodium_malloc'd: locked in
 * memory, wiped when freed) and the stored form of sealed values.  Knows no
 * Redis key names and never logs a key or a value, sealed or plain.
 *
 * Keys: the master key (32 bytes from the key file) is never used directly;
 * crypto_kdf_derive_from_key gives subkey 1 (secretbox), 2 (the keyed hash
 * of addresses, which is also their nonce) and 3 (the key id).
 *
 * Limits: values up to PRIVACY_TEXT_MAX bytes; a reply is walked to depth 8.
 */
#include "privacy.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"

#define KDF_CONTEXT  "clubdpii"
#define SUBKEY_BOX   1
#define SUBKEY_INDEX 2
#define SUBKEY_ID    3
#define HEAD_LEN     (2 + PRIVACY_KEYID_LEN) /* mark, type, key id */
#define BIN_OVERHEAD (crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
#define B64_VARIANT  sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define REPLY_DEPTH  8

struct privacy_key {
	unsigned char box[crypto_secretbox_KEYBYTES];
	unsigned char index[crypto_generichash_KEYBYTES];
	char id[PRIVACY_KEYID_LEN + 1];
};

static struct privacy_key *current;

static int sodium_ready(void)
{
	return sodium_init() >= 0 ? 0 : -1; /* 1 = already initialised: fine */
}

struct privacy_key *privacy_key_from_bytes(const unsigned char master[PRIVACY_KEY_BYTES])
{
	if (sodium_ready() < 0)
		return NULL;
	struct privacy_key *k = sodium_malloc(sizeof *k);
	if (!k)
		abort(); /* out of (locked) memory, as x*alloc */
	unsigned char idb[crypto_kdf_BYTES_MIN];
	crypto_kdf_derive_from_key(k->box, sizeof k->box, SUBKEY_BOX, KDF_CONTEXT, master);
	crypto_kdf_derive_from_key(k->index, sizeof k->index, SUBKEY_INDEX, KDF_CONTEXT, master);
	crypto_kdf_derive_from_key(idb, sizeof idb, SUBKEY_ID, KDF_CONTEXT, master);
	sodium_bin2hex(k->id, sizeof k->id, idb, PRIVACY_KEYID_LEN / 2);
	sodium_memzero(idb, sizeof idb);
	sodium_mprotect_readonly(k);
	return k;
}

void privacy_key_free(struct privacy_key *k)
{
	if (k)
		sodium_free(k); /* wipes */
}

const char *privacy_key_id(const struct privacy_key *k)
{
	return k ? k->id : "";
}

/* 64 hex digits or standard base64 of exactly 32 bytes. */
static int parse_master(const char *s, unsigned char out[PRIVACY_KEY_BYTES])
{
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	size_t got = 0;
	const char *end = NULL;
	if (n == 2 * PRIVACY_KEY_BYTES &&
	    sodium_hex2bin(out, PRIVACY_KEY_BYTES, s, n, NULL, &got, &end) == 0 &&
	    got == PRIVACY_KEY_BYTES && end == s + n)
		return 0;
	unsigned char tmp[PRIVACY_KEY_BYTES + 4];
	if (n >= 43 && n <= 44 &&
	    sodium_base642bin(tmp, sizeof tmp, s, n, NULL, &got, &end,
	                      sodium_base64_VARIANT_ORIGINAL) == 0 &&
	    got == PRIVACY_KEY_BYTES && end == s + n) {
		memcpy(out, tmp, PRIVACY_KEY_BYTES);
		sodium_memzero(tmp, sizeof tmp);
		return 0;
	}
	sodium_memzero(tmp, sizeof tmp);
	return -1;
}

int privacy_key_load(const char *spec, struct privacy_key **out, char *why, size_t whylen)
{
	*out = NULL;
	if (sodium_ready() < 0) {
		snprintf(why, whylen, "libsodium failed to initialise");
		return -1;
	}
	struct cfg_error err = {""};
	char *s = cfg_read_secret(spec, &err);
	if (!s) {
		snprintf(why, whylen, "%s", err.msg);
		return -1;
	}
	unsigned char master[PRIVACY_KEY_BYTES];
	int rc = parse_master(s, master);
	secret_free(s);
	if (rc < 0) {
		sodium_memzero(master, sizeof master);
		snprintf(why, whylen,
		         "a privacy key is 64 hex digits or the base64 of 32 bytes (openssl rand "
		         "-hex 32)");
		return -1;
	}
	*out = privacy_key_from_bytes(master);
	sodium_memzero(master, sizeof master);
	if (!*out) {
		snprintf(why, whylen, "libsodium failed to initialise");
		return -1;
	}
	return 0;
}

char *privacy_seal_with(const struct privacy_key *k, char type, const char *p, size_t n,
                        size_t *outlen)
{
	if (!k || n > PRIVACY_TEXT_MAX || (type != 'a' && type != 't'))
		return NULL;
	size_t binlen = BIN_OVERHEAD + n;
	unsigned char *bin = xmalloc(binlen);
	unsigned char *nonce = bin;
	if (type == 'a')
		crypto_generichash(nonce, crypto_secretbox_NONCEBYTES, (const unsigned char *)p, n,
		                   k->index, sizeof k->index);
	else
		randombytes_buf(nonce, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(bin + crypto_secretbox_NONCEBYTES, (const unsigned char *)p, n, nonce,
	                      k->box);
	size_t b64 = sodium_base64_ENCODED_LEN(binlen, B64_VARIANT); /* with the NUL */
	char *out = xmalloc(HEAD_LEN + b64);
	out[0] = PRIVACY_MARK;
	out[1] = type;
	memcpy(out + 2, k->id, PRIVACY_KEYID_LEN);
	sodium_bin2base64(out + HEAD_LEN, b64, bin, binlen, B64_VARIANT);
	free(bin);
	if (outlen)
		*outlen = HEAD_LEN + strlen(out + HEAD_LEN);
	return out;
}

static int is_hexlower(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int privacy_is_sealed(const char *s, size_t n)
{
	if (!s || n < HEAD_LEN + 1 || s[0] != PRIVACY_MARK || (s[1] != 'a' && s[1] != 't'))
		return 0;
	for (size_t i = 2; i < HEAD_LEN; i++)
		if (!is_hexlower(s[i]))
			return 0;
	return 1;
}

int privacy_sealed_info(const char *s, size_t n, char *type, char keyid[PRIVACY_KEYID_LEN + 1])
{
	if (!privacy_is_sealed(s, n))
		return -1;
	if (type)
		*type = s[1];
	if (keyid) {
		memcpy(keyid, s + 2, PRIVACY_KEYID_LEN);
		keyid[PRIVACY_KEYID_LEN] = '\0';
	}
	return 0;
}

int privacy_open_with(const struct privacy_key *k, const char *s, size_t n, char *out,
                      size_t *outlen)
{
	if (!privacy_is_sealed(s, n) || n > 2 * PRIVACY_TEXT_MAX)
		return -EINVAL;
	if (!k || memcmp(s + 2, k->id, PRIVACY_KEYID_LEN) != 0)
		return -ENOKEY;
	size_t cap = n; /* more than the decoded length */
	unsigned char *bin = xmalloc(cap);
	size_t binlen = 0;
	const char *end = NULL;
	int rc = -EINVAL;
	if (sodium_base642bin(bin, cap, s + HEAD_LEN, n - HEAD_LEN, NULL, &binlen, &end,
	                      B64_VARIANT) != 0 ||
	    end != s + n || binlen < BIN_OVERHEAD)
		goto out;
	/* out may be s itself: s is not read after the decode */
	size_t plen = binlen - BIN_OVERHEAD;
	if (crypto_secretbox_open_easy((unsigned char *)out, bin + crypto_secretbox_NONCEBYTES,
	                               binlen - crypto_secretbox_NONCEBYTES, bin, k->box) != 0) {
		rc = -EBADMSG;
		goto out;
	}
	out[plen] = '\0';
	if (outlen)
		*outlen = plen;
	rc = 0;
out:
	free(bin);
	return rc;
}

/* The process-wide key ------------------------------------------------- */

int privacy_init(const char *spec, char *why, size_t whylen)
{
	privacy_cleanup();
	if (!spec || !*spec)
		return 0;
	struct privacy_key *k = NULL;
	if (privacy_key_load(spec, &k, why, whylen) < 0)
		return -1;
	current = k;
	return 0;
}

void privacy_use(struct privacy_key *k)
{
	privacy_cleanup();
	current = k;
}

void privacy_cleanup(void)
{
	privacy_key_free(current);
	current = NULL;
}

int privacy_enabled(void)
{
	return current != NULL;
}

const struct privacy_key *privacy_current(void)
{
	return current;
}

static char *seal_current(char type, const char *s)
{
	if (!s)
		return NULL;
	if (!current)
		return xstrdup(s);
	char *out = privacy_seal_with(current, type, s, strlen(s), NULL);
	return out ? out : xstrdup(s); /* over PRIVACY_TEXT_MAX: nothing we store is */
}

char *privacy_seal_addr(const char *addr)
{
	return seal_current('a', addr);
}

char *privacy_seal_text(const char *text)
{
	return seal_current('t', text);
}

/* NULL and "" stay "": an empty value says nothing about anyone */
static void argv_add_sealed(struct argv *a, char type, const char *s)
{
	if (!s || !*s) {
		argv_add(a, "");
		return;
	}
	size_t n = 0;
	char *v = current ? privacy_seal_with(current, type, s, strlen(s), &n) : NULL;
	if (v)
		argv_addn(a, v, n);
	else
		argv_add(a, s);
	free(v);
}

void privacy_argv_addr(struct argv *a, const char *addr)
{
	argv_add_sealed(a, 'a', addr);
}

void privacy_argv_text(struct argv *a, const char *text)
{
	argv_add_sealed(a, 't', text);
}

static int open_reply(redisReply *r, int depth)
{
	if (!r || depth > REPLY_DEPTH)
		return 0;
	if (r->type == REDIS_REPLY_ARRAY) {
		int bad = 0;
		for (size_t i = 0; i < r->elements; i++)
			bad += open_reply(r->element[i], depth + 1);
		return bad;
	}
	if (r->type != REDIS_REPLY_STRING || !privacy_is_sealed(r->str, r->len))
		return 0;
	size_t len = 0;
	if (privacy_open_with(current, r->str, r->len, r->str, &len) < 0)
		return 1;
	r->len = len;
	return 0;
}

int privacy_open_reply(const redisReply *r)
{
	/* the reply is the caller's, not read-only memory: its strings are
	 * rewritten in place */
	return open_reply((redisReply *)r, 0);
}

struct opening {
	redis_cb cb;
	void *arg;
};

static void on_read(struct redis *r, redisReply *rep, void *arg)
{
	struct opening o = *(struct opening *)arg;
	free(arg);
	privacy_open_reply(rep);
	o.cb(r, rep, o.arg);
}

void privacy_wrap_cb(redis_cb *cb, void **arg)
{
	if (!current)
		return;
	struct opening *o = xmalloc(sizeof *o);
	o->cb = *cb;
	o->arg = *arg;
	*cb = on_read;
	*arg = o;
}

char *privacy_open_str(const char *s, size_t n, size_t *outlen, int *err)
{
	if (err)
		*err = 0;
	if (!s)
		return NULL;
	if (!privacy_is_sealed(s, n)) {
		if (outlen)
			*outlen = n;
		return xstrndup(s, n);
	}
	char *out = xmalloc(n + 1);
	int rc = privacy_open_with(current, s, n, out, outlen);
	if (rc < 0) {
		free(out);
		if (err)
			*err = rc;
		return NULL;
	}
	return out;
}
