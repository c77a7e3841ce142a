/*
 * twilio_sig.c - compute and verify X-Twilio-Signature.
 *
 * Owns: a small cache of HMAC-SHA1 contexts keyed with the auth tokens it
 * was called with (TWILIO_KEY_CACHE, OpenSSL 3 EVP_MAC), so a webhook's
 * signature re-initialises a keyed context (the key pads are precomputed)
 * instead of fetching the digest and keying a new HMAC; with each context a
 * copy of its token, to find it again.  Both stay in memory only: an
 * evicted token is wiped before it is freed, and twilio_sig_cleanup() wipes
 * them all.  The signed text is never assembled: URL, names and values are
 * fed to the HMAC in order.  Never logs.  A mutex guards the cache, so any
 * thread may call.  Limits: TWILIO_SIG_MAX_PARAMS parameters and
 * TWILIO_SIG_MAX_INPUT bytes of URL, names and values together.
 */
#include "twilio_sig.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hmac_key.h"
#include "util.h"

#define TWILIO_KEY_CACHE 4  /* distinct auth tokens kept keyed */
#define PAIRS_ON_STACK   32 /* parameters sorted without an allocation */

struct sig_pair {
	const char *name, *value;
};

struct sig_key {
	char *token; /* NULL: free slot */
	size_t len;
	EVP_MAC_CTX *ctx;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct sig_key keys[TWILIO_KEY_CACHE];
static unsigned next_key;

static int pair_cmp(const void *a, const void *b)
{
	const struct sig_pair *x = a, *y = b;
	int r = strcmp(x->name, y->name);
	return r ? r : strcmp(x->value, y->value);
}

static void key_drop(struct sig_key *k)
{
	if (k->token) {
		explicit_bzero(k->token, k->len);
		free(k->token);
	}
	EVP_MAC_CTX_free(k->ctx);
	k->token = NULL;
	k->len = 0;
	k->ctx = NULL;
}

void twilio_sig_cleanup(void)
{
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < TWILIO_KEY_CACHE; i++)
		key_drop(&keys[i]);
	next_key = 0;
	pthread_mutex_unlock(&mu);
}

/* The HMAC-SHA1 context keyed with token (len bytes): from the cache, or
 * keyed now in place of the oldest entry.  Caller holds mu.  NULL when
 * OpenSSL fails. */
static EVP_MAC_CTX *key_get(const char *token, size_t len)
{
	for (size_t i = 0; i < TWILIO_KEY_CACHE; i++)
		if (keys[i].token && keys[i].len == len && ct_equal(keys[i].token, token, len))
			return keys[i].ctx;
	EVP_MAC_CTX *c = hmac_key_new("SHA1", token, len);
	if (!c)
		return NULL;
	struct sig_key *k = &keys[next_key++ % TWILIO_KEY_CACHE];
	key_drop(k);
	k->token = xstrndup(token, len);
	k->len = len;
	k->ctx = c;
	return c;
}

/*
 * Check the arguments, and sort the n pairs into *out (pairs_stack when
 * n <= PAIRS_ON_STACK, else allocated: free it when it is not the stack).
 * *total gets the bytes of names and values.  0, -EINVAL or -E2BIG.
 */
static int sig_prepare(const char *auth_token, const char *url, const char *const *names,
                       const char *const *values, size_t n, struct sig_pair *pairs_stack,
                       struct sig_pair **out, size_t *total)
{
	*out = NULL;
	if (!auth_token || !*auth_token || !url || (n && (!names || !values)))
		return -EINVAL;
	if (n > TWILIO_SIG_MAX_PARAMS)
		return -E2BIG;
	size_t t = strlen(url);
	for (size_t i = 0; i < n; i++) {
		if (!names[i] || !values[i])
			return -EINVAL;
		t += strlen(names[i]) + strlen(values[i]);
		if (t > TWILIO_SIG_MAX_INPUT)
			return -E2BIG;
	}
	if (t > TWILIO_SIG_MAX_INPUT)
		return -E2BIG;
	struct sig_pair *p = n <= PAIRS_ON_STACK ? pairs_stack : xcalloc(n, sizeof *p);
	for (size_t i = 0; i < n; i++) {
		p[i].name = names[i];
		p[i].value = values[i];
	}
	if (n > 1)
		qsort(p, n, sizeof *p, pair_cmp);
	*out = p;
	*total = t - strlen(url);
	return 0;
}

static int mac_update(EVP_MAC_CTX *c, const char *s)
{
	size_t n = strlen(s);
	return n == 0 || EVP_MAC_update(c, (const unsigned char *)s, n);
}

/* Base64(HMAC-SHA1(key of c, url + sorted pairs)) into out; caller holds
 * mu.  0 or -EIO. */
static int sig_mac(EVP_MAC_CTX *c, const char *url, const struct sig_pair *p, size_t n,
                   char out[64])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t maclen = 0;
	int ok = EVP_MAC_init(c, NULL, 0, NULL) && mac_update(c, url);
	for (size_t i = 0; ok && i < n; i++) {
		if (i > 0 && pair_cmp(&p[i - 1], &p[i]) == 0)
			continue; /* Twilio's libraries count an exact duplicate once */
		ok = mac_update(c, p[i].name) && mac_update(c, p[i].value);
	}
	ok = ok && EVP_MAC_final(c, mac, &maclen, sizeof mac) && maclen == 20;
	int bl = ok ? EVP_EncodeBlock((unsigned char *)out, mac, (int)maclen) : 0;
	explicit_bzero(mac, sizeof mac);
	if (bl != TWILIO_SIG_LEN) {
		out[0] = '\0';
		return -EIO;
	}
	out[bl] = '\0';
	return 0;
}

int twilio_sig_compute(const char *auth_token, const char *url, const char *const *names,
                       const char *const *values, size_t n, char out[64])
{
	struct sig_pair stack[PAIRS_ON_STACK], *p;
	size_t total;
	out[0] = '\0';
	int r = sig_prepare(auth_token, url, names, values, n, stack, &p, &total);
	if (r < 0)
		return r;
	pthread_mutex_lock(&mu);
	EVP_MAC_CTX *c = key_get(auth_token, strlen(auth_token));
	r = c ? sig_mac(c, url, p, n, out) : -EIO;
	pthread_mutex_unlock(&mu);
	if (p != stack)
		free(p);
	return r;
}

/*
 * The URL with the scheme's default port toggled: removed when present,
 * added after the host when absent.  NULL when the URL is not http(s) or
 * names another port.  Caller frees.
 */
static char *toggle_default_port(const char *url)
{
	const char *dport;
	size_t slen;
	if (strncasecmp(url, "https://", 8) == 0) {
		dport = "443";
		slen = 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		dport = "80";
		slen = 7;
	} else {
		return NULL;
	}
	const char *auth = url + slen;
	size_t alen = strcspn(auth, "/?#");
	const char *end = auth + alen;
	/* skip userinfo */
	const char *host = auth;
	for (const char *q = auth; q < end; q++)
		if (*q == '@')
			host = q + 1;
	/* the port starts at the last ':' after any IPv6 literal's ']' */
	const char *colon = NULL;
	const char *from = host;
	if (*host == '[') {
		const char *rb = memchr(host, ']', (size_t)(end - host));
		if (!rb)
			return NULL;
		from = rb + 1;
	}
	for (const char *q = from; q < end; q++)
		if (*q == ':')
			colon = q;
	if (colon) {
		size_t plen = (size_t)(end - colon - 1);
		if (plen != strlen(dport) || memcmp(colon + 1, dport, plen) != 0)
			return NULL;
		/* drop ":port" */
		return xasprintf("%.*s%s", (int)(colon - url), url, end);
	}
	return xasprintf("%.*s:%s%s", (int)(end - url), url, dport, end);
}

int twilio_sig_verify(const char *auth_token, const char *url, const char *const *names,
                      const char *const *values, size_t n, const char *signature)
{
	if (!auth_token || !*auth_token || !url)
		return -EINVAL;
	struct sig_pair stack[PAIRS_ON_STACK], *p;
	size_t total;
	int r = sig_prepare(auth_token, url, names, values, n, stack, &p, &total);
	if (r < 0)
		return r;
	char *alt = toggle_default_port(url);
	int has_alt = alt != NULL;
	if (alt && strlen(alt) + total > TWILIO_SIG_MAX_INPUT) {
		free(alt);
		if (p != stack)
			free(p);
		return -E2BIG;
	}
	size_t siglen = signature ? strlen(signature) : 0;
	char want[64], want_alt[64];
	pthread_mutex_lock(&mu);
	EVP_MAC_CTX *c = key_get(auth_token, strlen(auth_token));
	r = c ? sig_mac(c, url, p, n, want) : -EIO;
	/* the other form is always computed, so timing does not tell which
	 * form matched */
	if (r == 0 && has_alt)
		r = sig_mac(c, alt, p, n, want_alt);
	pthread_mutex_unlock(&mu);
	free(alt);
	if (p != stack)
		free(p);
	int ok = 0;
	/* Lengths are public (always 28 for a real signature); the bytes are
	 * compared in constant time. */
	if (r == 0 && siglen == TWILIO_SIG_LEN) {
		ok |= ct_equal(want, signature, TWILIO_SIG_LEN);
		if (has_alt)
			ok |= ct_equal(want_alt, signature, TWILIO_SIG_LEN);
	}
	explicit_bzero(want, sizeof want);
	explicit_bzero(want_alt, sizeof want_alt);
	if (r < 0)
		return r;
	return ok ? 0 : -EACCES;
}
