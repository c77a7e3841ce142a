/*
 * draw.h - the pure, auditable raffle draw (clubd-draw-v1).  A raffle commits
 * to hex(SHA-256(seed)) when it is created; the draw reveals the seed, and
 * the winners are a deterministic function of the seed and the canonical
 * entry list, so anyone can re-run it (tools/draw-verify.c, docs/raffles.md
 * has the byte-exact definition).  No I/O, no clock, no global state;
 * thread-safe.
 */
#ifndef CLUBD_DRAW_H
#define CLUBD_DRAW_H

#include <stddef.h>
#include <stdint.h>

#define DRAW_SEED_LEN 32
#define DRAW_HEX_LEN  64  /* a SHA-256 in lowercase hex, without the NUL */
#define DRAW_ID_MAX   255 /* longest contact id in bytes */
#define DRAW_CONTEXT  "clubd-draw-v1"

/*
 * One entry: a contact id of 1..DRAW_ID_MAX bytes, each a visible ASCII
 * character (0x21..0x7e: no space, tab, newline or non-ASCII byte), and a
 * weight >= 1 (1 when the raffle is unweighted).  The sum of all weights must
 * fit in 64 bits.  contact_id is borrowed; draw_* never frees or keeps it.
 */
struct draw_entry {
	const char *contact_id;
	uint64_t weight;
};

/* A fresh secret seed from getrandom. */
void draw_new_seed(unsigned char seed[DRAW_SEED_LEN]);

/* The public commitment: lowercase hex of SHA-256(seed), NUL-terminated. */
void draw_commit(const unsigned char seed[DRAW_SEED_LEN], char out_hex[DRAW_HEX_LEN + 1]);

/* 1 when SHA-256(seed) equals commit_hex (64 hex digits, either case), else
 * 0 (also for a malformed commit_hex). */
int draw_commit_matches(const unsigned char seed[DRAW_SEED_LEN], const char *commit_hex);

/* Exactly 64 hex digits (either case) -> 32 bytes.  0 or -EINVAL. */
int draw_parse_hex32(const char *hex, unsigned char out[32]);

/* 1 when id is a valid contact id for a draw (see struct draw_entry). */
int draw_id_valid(const char *id);

/*
 * Put entries in canonical order (contact_id byte-wise ascending, a proper
 * prefix first: strcmp order) and validate them.  0; -EINVAL on an invalid
 * id, a weight of 0 or a duplicate contact id (the array is then sorted but
 * must not be drawn); -ERANGE when the weights add up to more than
 * UINT64_MAX.  Sorts in place; the ids stay borrowed.
 */
int draw_canonicalize(struct draw_entry *entries, size_t n);

/*
 * entries_digest: hex(SHA-256("id\tweight\n" for each entry in order)),
 * weight in decimal without leading zeros.  entries must be canonical.
 * 0 or -EINVAL (not canonical) / -ERANGE (weights overflow).
 */
int draw_entries_digest(const struct draw_entry *entries, size_t n,
                        char digest_hex[DRAW_HEX_LEN + 1]);

/*
 * The draw: k distinct winners, by weight, without replacement.  entries
 * must already be canonical (draw_canonicalize; checked again here), so
 * winners_out[0..k-1] are indexes into entries, first winner first.
 * digest_hex receives the entries digest.  0; -EINVAL when the entries are
 * not canonical or valid or k > n; -ERANGE when the weights overflow.  On
 * error winners_out and digest_hex are unspecified.  O(n + k log n).
 */
int draw_winners(const unsigned char seed[DRAW_SEED_LEN], const struct draw_entry *entries,
                 size_t n, size_t k, size_t *winners_out, char digest_hex[DRAW_HEX_LEN + 1]);

/*
 * The random stream underneath, exposed for tests and audits: block i is
 * HMAC-SHA256(key = seed, msg = DRAW_CONTEXT || digest_hex || uint64_be(i)),
 * read as four big-endian 64-bit words.  Call draw_stream_clear when done
 * (wipes the key copy).
 */
struct draw_stream {
	unsigned char key[DRAW_SEED_LEN];
	char digest[DRAW_HEX_LEN];
	uint64_t block;           /* index of the next block to compute */
	unsigned char buf[32];    /* the current block */
	unsigned pos;             /* next unread byte of buf; 32 = empty */
	uint64_t words, rejected; /* counters: words read, words rejected */
};

void draw_stream_init(struct draw_stream *s, const unsigned char seed[DRAW_SEED_LEN],
                      const char digest_hex[DRAW_HEX_LEN + 1]);
uint64_t draw_stream_word(struct draw_stream *s);
/* Uniform in [0, total), total >= 1: the next word w with
 * w < 2^64 - (2^64 mod total), reduced mod total; other words are rejected. */
uint64_t draw_stream_below(struct draw_stream *s, uint64_t total);
void draw_stream_clear(struct draw_stream *s);

#endif
