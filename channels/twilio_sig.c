/*
 * twilio_sig.c - compute and verify X-Twilio-Signature.
 *
 * Owns: nothing beyond the call; pure functions (HMAC-SHA1 and Base64
 * through OpenSSL libcrypto).  Never logs, never keeps the auth token: the
 * input copy that holds the signed string is wiped before it is freed.
 * Limits: TWILIO_SIG_MAX_PARAMS parameters and TWILIO_SIG_MAX_INPUT bytes
 * of URL, names and values together.
 */
#include "twilio_sig.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

struct sig_pair {
	const char *name, *value;
};

static int pair_cmp(const void *a, const void *b)
{
	const struct sig_pair *x = a, *y = b;
	int r = strcmp(x->name, y->name);
	return r ? r : strcmp(x->value, y->value);
}

int twilio_sig_compute(const char *auth_token, const char *url, const char *const *names,
                       const char *const *values, size_t n, char out[64])
{
	out[0] = '\0';
	if (!auth_token || !*auth_token || !url || (n && (!names || !values)))
		return -EINVAL;
	if (n > TWILIO_SIG_MAX_PARAMS)
		return -E2BIG;
	size_t total = strlen(url);
	for (size_t i = 0; i < n; i++) {
		if (!names[i] || !values[i])
			return -EINVAL;
		total += strlen(names[i]) + strlen(values[i]);
		if (total > TWILIO_SIG_MAX_INPUT)
			return -E2BIG;
	}
	if (total > TWILIO_SIG_MAX_INPUT)
		return -E2BIG;

	struct sig_pair *p = n ? xcalloc(n, sizeof *p) : NULL;
	for (size_t i = 0; i < n; i++) {
		p[i].name = names[i];
		p[i].value = values[i];
	}
	if (n > 1)
		qsort(p, n, sizeof *p, pair_cmp);

	struct buf in;
	buf_init(&in, 0); /* bounded above: total <= TWILIO_SIG_MAX_INPUT */
	buf_puts(&in, url);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && pair_cmp(&p[i - 1], &p[i]) == 0)
			continue; /* Twilio's libraries count an exact duplicate once */
		buf_puts(&in, p[i].name);
		buf_puts(&in, p[i].value);
	}
	free(p);

	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t tlen = strlen(auth_token);
	const unsigned char *data = in.p ? (const unsigned char *)in.p : (const unsigned char *)"";
	unsigned char *r = HMAC(EVP_sha1(), auth_token, (int)tlen, data, in.len, mac, &maclen);
	if (in.p)
		explicit_bzero(in.p, in.len);
	buf_free(&in);
	if (!r || maclen != 20)
		return -EIO;
	int bl = EVP_EncodeBlock((unsigned char *)out, mac, (int)maclen);
	explicit_bzero(mac, sizeof mac);
	if (bl != TWILIO_SIG_LEN) {
		out[0] = '\0';
		return -EIO;
	}
	out[bl] = '\0';
	return 0;
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

static int match_one(const char *auth_token, const char *url, const char *const *names,
                     const char *const *values, size_t n, const char *sig, size_t siglen, int *ok)
{
	char want[64];
	int r = twilio_sig_compute(auth_token, url, names, values, n, want);
	if (r < 0)
		return r;
	/* Lengths are public (always 28 for a real signature); the bytes are
	 * compared in constant time. */
	if (siglen == TWILIO_SIG_LEN && ct_equal(want, sig, TWILIO_SIG_LEN))
		*ok = 1;
	explicit_bzero(want, sizeof want);
	return 0;
}

int twilio_sig_verify(const char *auth_token, const char *url, const char *const *names,
                      const char *const *values, size_t n, const char *signature)
{
	if (!auth_token || !*auth_token || !url)
		return -EINVAL;
	size_t siglen = signature ? strlen(signature) : 0;
	int ok = 0;
	int r =
	    match_one(auth_token, url, names, values, n, signature ? signature : "", siglen, &ok);
	if (r < 0)
		return r;
	char *alt = toggle_default_port(url);
	if (alt) {
		/* always computed, so timing does not tell which form matched */
		r = match_one(auth_token, alt, names, values, n, signature ? signature : "", siglen,
		              &ok);
		free(alt);
		if (r < 0)
			return r;
	}
	return ok && siglen ? 0 : -EACCES;
}
