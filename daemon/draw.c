/*
 * draw.c - the raffle draw, version clubd-draw-v1 (see draw.h and
 * docs/raffles.md, which is the normative definition: change one, change
 * the other, and bump the version string, since published draws must stay
 * verifiable).
 *
 * Owns nothing beyond the call: pure functions of their arguments plus
 * getrandom for new seeds.  Never touches Redis, the loop, the clock or the
 * log (a seed is a secret until the draw).  Limits: ids of 1..DRAW_ID_MAX
 * visible ASCII bytes; the sum of the weights must fit in 64 bits; memory
 * O(n) (one 64-bit Fenwick tree node per entry).
 */
#include "draw.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void draw_new_seed(unsigned char seed[DRAW_SEED_LEN])
{
	random_bytes(seed, DRAW_SEED_LEN);
}

static void sha256(const void *p, size_t n, unsigned char md[32])
{
	unsigned int len = 0;
	if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1 || len != 32)
		abort(); /* SHA-256 in libcrypto cannot fail short of OOM */
}

void draw_commit(const unsigned char seed[DRAW_SEED_LEN], char out_hex[DRAW_HEX_LEN + 1])
{
	unsigned char md[32];
	sha256(seed, DRAW_SEED_LEN, md);
	hex_encode(md, sizeof md, out_hex);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int draw_parse_hex32(const char *hex, unsigned char out[32])
{
	if (!hex || strlen(hex) != 64)
		return -EINVAL;
	for (size_t i = 0; i < 32; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

int draw_commit_matches(const unsigned char seed[DRAW_SEED_LEN], const char *commit_hex)
{
	unsigned char want[32], md[32];
	if (draw_parse_hex32(commit_hex, want) < 0)
		return 0;
	sha256(seed, DRAW_SEED_LEN, md);
	return ct_equal(md, want, sizeof md);
}

int draw_id_valid(const char *id)
{
	if (!id || !*id)
		return 0;
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++, n++) {
		if (*p < 0x21 || *p > 0x7e || n >= DRAW_ID_MAX)
			return 0;
	}
	return 1;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct draw_entry *x = a, *y = b;
	return strcmp(x->contact_id, y->contact_id);
}

/* Canonical order, valid ids and weights, no duplicates; *total = sum. */
static int check_canonical(const struct draw_entry *e, size_t n, uint64_t *total)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		if (!draw_id_valid(e[i].contact_id) || e[i].weight == 0)
			return -EINVAL;
		/* strcmp compares as unsigned char: byte-wise order */
		if (i > 0 && strcmp(e[i - 1].contact_id, e[i].contact_id) >= 0)
			return -EINVAL;
		if (e[i].weight > UINT64_MAX - sum)
			return -ERANGE;
		sum += e[i].weight;
	}
	if (total)
		*total = sum;
	return 0;
}

int draw_canonicalize(struct draw_entry *entries, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!draw_id_valid(entries[i].contact_id) || entries[i].weight == 0)
			return -EINVAL;
	if (n > 1)
		qsort(entries, n, sizeof *entries, cmp_entry);
	/* after sorting, a duplicate is an equal neighbour: check_canonical
	 * refuses it with -EINVAL */
	return check_canonical(entries, n, NULL);
}

int draw_entries_digest(const struct draw_entry *entries, size_t n,
                        char digest_hex[DRAW_HEX_LEN + 1])
{
	int rc = check_canonical(entries, n, NULL);
	if (rc < 0)
		return rc;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		abort();
	char line[DRAW_ID_MAX + 32];
	for (size_t i = 0; i < n; i++) {
		int len = snprintf(line, sizeof line, "%s\t%" PRIu64 "\n", entries[i].contact_id,
		                   entries[i].weight);
		if (len < 0 || (size_t)len >= sizeof line ||
		    EVP_DigestUpdate(ctx, line, (size_t)len) != 1)
			abort(); /* ids are bounded by check_canonical */
	}
	unsigned char md[32];
	unsigned int mdlen = 0;
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
		abort();
	EVP_MD_CTX_free(ctx);
	hex_encode(md, sizeof md, digest_hex);
	return 0;
}

void draw_stream_init(struct draw_stream *s, const unsigned char seed[DRAW_SEED_LEN],
                      const char digest_hex[DRAW_HEX_LEN + 1])
{
	memset(s, 0, sizeof *s);
	memcpy(s->key, seed, DRAW_SEED_LEN);
	memcpy(s->digest, digest_hex, DRAW_HEX_LEN);
	s->pos = sizeof s->buf;
}

static void stream_refill(struct draw_stream *s)
{
	enum { CTX_LEN = sizeof DRAW_CONTEXT - 1 };
	unsigned char msg[CTX_LEN + DRAW_HEX_LEN + 8];
	memcpy(msg, DRAW_CONTEXT, CTX_LEN);
	memcpy(msg + CTX_LEN, s->digest, DRAW_HEX_LEN);
	for (int i = 0; i < 8; i++)
		msg[CTX_LEN + DRAW_HEX_LEN + i] = (unsigned char)(s->block >> (56 - 8 * i));
	unsigned int len = 0;
	if (!HMAC(EVP_sha256(), s->key, DRAW_SEED_LEN, msg, sizeof msg, s->buf, &len) ||
	    len != sizeof s->buf)
		abort();
	s->block++;
	s->pos = 0;
}

uint64_t draw_stream_word(struct draw_stream *s)
{
	if (s->pos >= sizeof s->buf)
		stream_refill(s);
	uint64_t w = 0;
	for (int i = 0; i < 8; i++)
		w = w << 8 | s->buf[s->pos + (unsigned)i];
	s->pos += 8;
	s->words++;
	return w;
}

uint64_t draw_stream_below(struct draw_stream *s, uint64_t total)
{
	if (total == 0)
		abort(); /* a caller bug, never input */
	/* rem = 2^64 mod total; accept w < 2^64 - rem (all words when rem = 0) */
	uint64_t rem = (0 - total) % total;
	for (;;) {
		uint64_t w = draw_stream_word(s);
		if (rem == 0 || w < 0 - rem)
			return w % total;
		s->rejected++;
	}
}

void draw_stream_clear(struct draw_stream *s)
{
	explicit_bzero(s, sizeof *s);
}

/*
 * A Fenwick tree over the weights (1-based, t[i] covers (i - lowbit(i), i]).
 * "The first entry in canonical order whose running sum exceeds r" is the
 * same entry the documented linear walk picks (removed entries weigh 0 and
 * can never be picked), in O(log n) instead of O(n).
 */
static void fenwick_sub(uint64_t *t, size_t n, size_t i, uint64_t w)
{
	for (size_t j = i + 1; j <= n; j += j & (0 - j))
		t[j] -= w;
}

static size_t fenwick_find(const uint64_t *t, size_t n, uint64_t r)
{
	size_t pos = 0, step = 1;
	while (step <= n / 2)
		step <<= 1;
	for (; step; step >>= 1) {
		if (pos + step <= n && t[pos + step] <= r) {
			pos += step;
			r -= t[pos];
		}
	}
	return pos; /* 0-based index of the entry */
}

int draw_winners(const unsigned char seed[DRAW_SEED_LEN], const struct draw_entry *entries,
                 size_t n, size_t k, size_t *winners_out, char digest_hex[DRAW_HEX_LEN + 1])
{
	uint64_t total = 0;
	int rc = check_canonical(entries, n, &total);
	if (rc < 0)
		return rc;
	if (k > n)
		return -EINVAL;
	rc = draw_entries_digest(entries, n, digest_hex);
	if (rc < 0)
		return rc;
	if (k == 0)
		return 0;

	uint64_t *t = xcalloc(n + 1, sizeof *t);
	for (size_t i = 1; i <= n; i++) {
		t[i] += entries[i - 1].weight;
		size_t parent = i + (i & (0 - i));
		if (parent <= n)
			t[parent] += t[i];
	}
	struct draw_stream s;
	draw_stream_init(&s, seed, digest_hex);
	for (size_t j = 0; j < k; j++) {
		uint64_t r = draw_stream_below(&s, total);
		size_t w = fenwick_find(t, n, r);
		/* r < total, so some remaining entry's running sum exceeds r */
		assert(w < n);
		winners_out[j] = w;
		fenwick_sub(t, n, w, entries[w].weight);
		total -= entries[w].weight;
	}
	draw_stream_clear(&s);
	free(t);
	return 0;
}
