/*
 * test_draw.c - the raffle draw (clubd-draw-v1): commitment known answers,
 * hex parsing, canonical order and validation, known-answer draws computed
 * independently with Python's hashlib/hmac (the reference in
 * tests/integration/test_draw_verify.py and docs/raffles.md), the random
 * stream and its rejection sampling, agreement with a naive linear walk,
 * permutations, order independence and the weights as a property over
 * 2,000 seeds.  Everything is deterministic: no clock, no getrandom (except
 * draw_new_seed's own smoke check).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "draw.h"
#include "util.h"

/* seed bytes 00 01 02 ... 1f */
static void seed_counting(unsigned char seed[32])
{
	for (int i = 0; i < 32; i++)
		seed[i] = (unsigned char)i;
}

/* A deterministic seed per index (xorshift64*), for the property tests. */
static uint64_t rng_state;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static void seed_from(unsigned char seed[32], uint64_t i)
{
	rng_state = 0x9E3779B97F4A7C15ULL ^ (i * 0x100000001B3ULL + 1);
	for (int j = 0; j < 32; j += 8) {
		uint64_t w = rng();
		memcpy(seed + j, &w, 8);
	}
}

static void shuffle(struct draw_entry *e, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)(rng() % i);
		struct draw_entry t = e[i - 1];
		e[i - 1] = e[j];
		e[j] = t;
	}
}

static void test_commit_known_answers(void **state)
{
	(void)state;
	unsigned char seed[32];
	char hex[DRAW_HEX_LEN + 1];
	/* python3 -c 'import hashlib; print(hashlib.sha256(bytes(range(32))).hexdigest())' */
	seed_counting(seed);
	draw_commit(seed, hex);
	assert_string_equal(hex,
	                    "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd");
	assert_true(draw_commit_matches(seed, hex));
	assert_true(draw_commit_matches(
	    seed, "630DCD2966C4336691125448BBB25B4FF412A49C732DB2C8ABC1B8581BD710DD"));
	memset(seed, 0, sizeof seed);
	draw_commit(seed, hex);
	assert_string_equal(hex,
	                    "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925");
	/* a different seed, a truncated, a too long and a non-hex commit */
	seed[31] = 1;
	assert_false(draw_commit_matches(seed, hex));
	assert_false(draw_commit_matches(
	    seed, "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f292"));
	assert_false(draw_commit_matches(
	    seed, "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f29250"));
	assert_false(draw_commit_matches(seed, NULL));

	/* fresh seeds differ (getrandom) */
	unsigned char a[32], b[32];
	draw_new_seed(a);
	draw_new_seed(b);
	assert_memory_not_equal(a, b, 32);
}

static void test_parse_hex32(void **state)
{
	(void)state;
	unsigned char out[32], want[32];
	seed_counting(want);
	assert_int_equal(draw_parse_hex32("000102030405060708090a0b0c0d0e0f"
	                                  "101112131415161718191A1B1C1D1E1F",
	                                  out),
	                 0);
	assert_memory_equal(out, want, 32);
	assert_int_equal(draw_parse_hex32("", out), -EINVAL);
	assert_int_equal(draw_parse_hex32("00", out), -EINVAL);
	assert_int_equal(draw_parse_hex32("000102030405060708090a0b0c0d0e0f"
	                                  "101112131415161718191a1b1c1d1e1g",
	                                  out),
	                 -EINVAL);
	assert_int_equal(draw_parse_hex32(" 00102030405060708090a0b0c0d0e0f"
	                                  "101112131415161718191a1b1c1d1e1f",
	                                  out),
	                 -EINVAL);
}

static void test_id_valid(void **state)
{
	(void)state;
	char longest[DRAW_ID_MAX + 2];
	memset(longest, 'x', sizeof longest);
	longest[DRAW_ID_MAX] = '\0';
	assert_true(draw_id_valid(longest));
	longest[DRAW_ID_MAX] = 'x';
	longest[DRAW_ID_MAX + 1] = '\0';
	assert_false(draw_id_valid(longest));
	assert_true(draw_id_valid("01J9Z8K2M3N4P5Q6R7S8T9V0WX"));
	assert_true(draw_id_valid("a"));
	assert_true(draw_id_valid("!~#,"));
	assert_false(draw_id_valid(""));
	assert_false(draw_id_valid(NULL));
	assert_false(draw_id_valid("a b"));
	assert_false(draw_id_valid("a\tb"));
	assert_false(draw_id_valid("a\n"));
	assert_false(draw_id_valid("\x7f"));
	assert_false(draw_id_valid("\xd8\xb9\xd9\x84\xdb\x8c")); /* Persian: not ASCII */
}

static void test_canonical_order(void **state)
{
	(void)state;
	struct draw_entry e[] = {
	    {"b", 1}, {"abc", 2}, {"a", 3}, {"B", 4}, {"ab", 5}, {"~", 6}, {"0", 7}, {"A", 8},
	};
	const char *want[] = {"0", "A", "B", "a", "ab", "abc", "b", "~"};
	assert_int_equal(draw_canonicalize(e, ARRAY_SIZE(e)), 0);
	for (size_t i = 0; i < ARRAY_SIZE(e); i++)
		assert_string_equal(e[i].contact_id, want[i]);
	assert_int_equal(e[0].weight, 7); /* weights travel with their ids */
	assert_int_equal(e[5].weight, 2);

	/* the digest is over "id\tweight\n" lines (python3: hashlib.sha256(
	 * b"a\t1\nb\t22\n").hexdigest()) */
	struct draw_entry two[] = {{"b", 22}, {"a", 1}};
	char hex[DRAW_HEX_LEN + 1];
	assert_int_equal(draw_canonicalize(two, 2), 0);
	assert_int_equal(draw_entries_digest(two, 2, hex), 0);
	assert_string_equal(hex,
	                    "81e8735ea8dc57e73115835ca51f15979d79e70245081804024b9f8f69ff8136");
	/* the empty list: SHA-256 of the empty string */
	assert_int_equal(draw_entries_digest(NULL, 0, hex), 0);
	assert_string_equal(hex,
	                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_refused(void **state)
{
	(void)state;
	unsigned char seed[32];
	seed_counting(seed);
	size_t win[4];
	char hex[DRAW_HEX_LEN + 1];

	struct draw_entry dup[] = {{"x", 1}, {"y", 1}, {"x", 2}};
	assert_int_equal(draw_canonicalize(dup, 3), -EINVAL);
	struct draw_entry zero[] = {{"x", 1}, {"y", 0}};
	assert_int_equal(draw_canonicalize(zero, 2), -EINVAL);
	struct draw_entry bad[] = {{"x", 1}, {"y z", 1}};
	assert_int_equal(draw_canonicalize(bad, 2), -EINVAL);
	struct draw_entry empty[] = {{"", 1}};
	assert_int_equal(draw_canonicalize(empty, 1), -EINVAL);
	struct draw_entry big[] = {{"a", UINT64_MAX - 1}, {"b", 1}, {"c", 1}};
	assert_int_equal(draw_canonicalize(big, 3), -ERANGE);
	assert_int_equal(draw_winners(seed, big, 3, 1, win, hex), -ERANGE);
	/* exactly UINT64_MAX in all is fine */
	assert_int_equal(draw_canonicalize(big, 2), 0);
	assert_int_equal(draw_winners(seed, big, 2, 2, win, hex), 0);

	/* draw_winners wants canonical input and k <= n */
	struct draw_entry unsorted[] = {{"b", 1}, {"a", 1}};
	assert_int_equal(draw_winners(seed, unsorted, 2, 1, win, hex), -EINVAL);
	struct draw_entry twice[] = {{"a", 1}, {"a", 1}};
	assert_int_equal(draw_winners(seed, twice, 2, 1, win, hex), -EINVAL);
	struct draw_entry ok[] = {{"a", 1}, {"b", 1}};
	assert_int_equal(draw_winners(seed, ok, 2, 3, win, hex), -EINVAL);
	assert_int_equal(draw_winners(seed, ok, 2, 0, win, hex), 0);
	assert_int_equal(draw_winners(seed, NULL, 0, 0, win, hex), 0);
	assert_string_equal(hex,
	                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/*
 * Known answers, computed with Python's hashlib and hmac from the document
 * (docs/raffles.md "Test vectors"), not from this code.
 */
static void test_known_answer_10(void **state)
{
	(void)state;
	static const char *ids[] = {"c01", "c02", "c03", "c04", "c05",
	                            "c06", "c07", "c08", "c09", "c10"};
	static const char *want[] = {"c10", "c05", "c03", "c07", "c08",
	                             "c02", "c01", "c04", "c06", "c09"};
	struct draw_entry e[10];
	for (size_t i = 0; i < 10; i++)
		e[i] = (struct draw_entry){ids[i], (uint64_t)((i + 1) % 3 + 1)};
	unsigned char seed[32];
	seed_counting(seed);
	size_t win[10];
	char hex[DRAW_HEX_LEN + 1];
	assert_int_equal(draw_canonicalize(e, 10), 0);
	assert_int_equal(draw_winners(seed, e, 10, 10, win, hex), 0);
	assert_string_equal(hex,
	                    "f555bf8707c3a51519479f48527986867c6b85338aea565f17019fb6cfdd4937");
	for (size_t i = 0; i < 10; i++)
		assert_string_equal(e[win[i]].contact_id, want[i]);
	/* fewer winners: the same stream, so a prefix of the full order */
	size_t three[3];
	assert_int_equal(draw_winners(seed, e, 10, 3, three, hex), 0);
	assert_memory_equal(three, win, sizeof three);

	/* the stream's first words for this seed and digest */
	static const uint64_t words[] = {0x3600a948a58e98d6ULL, 0x6b5326706fe03b7fULL,
	                                 0xbdd845901473c5d2ULL, 0x021f69d15af7af6fULL,
	                                 0xc394017c0515a6faULL, 0x310c8e36bb28314aULL};
	struct draw_stream s;
	draw_stream_init(&s, seed, hex);
	for (size_t i = 0; i < ARRAY_SIZE(words); i++)
		assert_true(draw_stream_word(&s) == words[i]);
	draw_stream_clear(&s);
}

/* Weights summing past 2^63: about one word in five is rejected, and this
 * seed hits two rejections (without them the order would be big-b, big-a,
 * Z, big-c, mid, small). */
static void test_known_answer_rejection(void **state)
{
	(void)state;
	struct draw_entry e[] = {
	    {"big-a", (1ULL << 62) + 1},
	    {"big-b", 1ULL << 62},
	    {"big-c", 3 * (1ULL << 60) + 7},
	    {"small", 1},
	    {"mid", 1000},
	    {"Z", 1ULL << 61},
	};
	static const char *want[] = {"big-b", "big-a", "big-c", "Z", "mid", "small"};
	unsigned char seed[32] = {0};
	size_t win[6];
	char hex[DRAW_HEX_LEN + 1];
	assert_int_equal(draw_canonicalize(e, 6), 0);
	assert_int_equal(draw_winners(seed, e, 6, 6, win, hex), 0);
	assert_string_equal(hex,
	                    "407056db46e39731d02bf6b9fdeb0121d5c7375bb8a0872731c4371e4ae866f8");
	for (size_t i = 0; i < 6; i++)
		assert_string_equal(e[win[i]].contact_id, want[i]);
}

/* draw_stream_below against the definition, word by word, for totals that
 * reject often, rarely and never. */
static void test_rejection_sampling(void **state)
{
	(void)state;
	static const uint64_t totals[] = {
	    (1ULL << 63) + 1, /* 2^64 mod T = 2^63 - 1: about half rejected */
	    3 * (1ULL << 62), /* 2^64 mod T = 2^62: a quarter rejected */
	    UINT64_MAX,       /* 2^64 mod T = 1: only UINT64_MAX rejected */
	    3,
	    1000,
	    1ULL << 40,
	    1 /* power of two or tiny: (practically) none */
	};
	unsigned char seed[32];
	seed_counting(seed);
	const char *digest = "f555bf8707c3a51519479f48527986867c6b85338aea565f17019fb6cfdd4937";
	for (size_t t = 0; t < ARRAY_SIZE(totals); t++) {
		uint64_t total = totals[t];
		/* limit = 2^64 - (2^64 mod total), as a 65-bit quantity */
		unsigned __int128 two64 = (unsigned __int128)1 << 64;
		unsigned __int128 limit = two64 - two64 % total;
		struct draw_stream a, b;
		draw_stream_init(&a, seed, digest);
		draw_stream_init(&b, seed, digest);
		uint64_t rejected = 0;
		for (int i = 0; i < 1000; i++) {
			uint64_t w;
			while ((w = draw_stream_word(&b)) >= limit)
				rejected++;
			uint64_t r = draw_stream_below(&a, total);
			assert_true(r < total);
			assert_true(r == w % total);
		}
		assert_true(a.rejected == rejected);
		assert_true(a.words == b.words);
		if (t == 0) /* expected 1000, p(< 700) is astronomically small */
			assert_true(rejected > 700 && rejected < 1400);
		else if (t == 1)
			assert_true(rejected > 200 && rejected < 500);
		else
			assert_true(rejected == 0);
		draw_stream_clear(&a);
		draw_stream_clear(&b);
	}
}

/* The documented algorithm, literally: linear walk over the remaining
 * entries, rejection by the definition.  Only the word stream is shared. */
static void naive_draw(const unsigned char seed[32], const struct draw_entry *e, size_t n, size_t k,
                       const char *digest, size_t *out)
{
	unsigned char *gone = xcalloc(n ? n : 1, 1);
	struct draw_stream s;
	draw_stream_init(&s, seed, digest);
	for (size_t j = 0; j < k; j++) {
		unsigned __int128 total = 0;
		for (size_t i = 0; i < n; i++)
			if (!gone[i])
				total += e[i].weight;
		unsigned __int128 two64 = (unsigned __int128)1 << 64;
		unsigned __int128 limit = two64 - two64 % total, w;
		while ((w = draw_stream_word(&s)) >= limit)
			;
		unsigned __int128 r = w % total;
		size_t i;
		for (i = 0; i < n; i++) {
			if (gone[i])
				continue;
			if (r < e[i].weight)
				break;
			r -= e[i].weight;
		}
		assert_true(i < n);
		gone[i] = 1;
		out[j] = i;
	}
	draw_stream_clear(&s);
	free(gone);
}

static void test_matches_linear_walk(void **state)
{
	(void)state;
	enum { MAXN = 70 };
	char names[MAXN][16];
	struct draw_entry e[MAXN];
	size_t fast[MAXN], slow[MAXN];
	char hex[DRAW_HEX_LEN + 1];
	for (uint64_t round = 0; round < 300; round++) {
		unsigned char seed[32];
		seed_from(seed, round);
		size_t n = 1 + (size_t)(rng() % MAXN);
		int huge = round % 5 == 0; /* weights near 2^64 / n: frequent rejections */
		for (size_t i = 0; i < n; i++) {
			snprintf(names[i], sizeof names[i], "id%zu-%llu", i,
			         (unsigned long long)(rng() % 1000));
			uint64_t w;
			if (huge)
				w = 1 + rng() % (UINT64_MAX / n);
			else
				w = round % 2 ? 1 : 1 + rng() % 9;
			e[i] = (struct draw_entry){names[i], w};
		}
		assert_int_equal(draw_canonicalize(e, n), 0);
		size_t k = 1 + (size_t)(rng() % n);
		assert_int_equal(draw_winners(seed, e, n, k, fast, hex), 0);
		naive_draw(seed, e, n, k, hex, slow);
		assert_memory_equal(fast, slow, k * sizeof fast[0]);
	}
}

static void test_permutation(void **state)
{
	(void)state;
	enum { MAXN = 64 };
	char names[MAXN][8];
	struct draw_entry e[MAXN];
	size_t win[MAXN];
	char hex[DRAW_HEX_LEN + 1];
	for (size_t n = 1; n <= MAXN; n++) {
		for (size_t i = 0; i < n; i++) {
			snprintf(names[i], sizeof names[i], "p%03zu", i);
			e[i] = (struct draw_entry){names[i], 1 + i % 4};
		}
		unsigned char seed[32];
		seed_from(seed, n);
		assert_int_equal(draw_canonicalize(e, n), 0);
		assert_int_equal(draw_winners(seed, e, n, n, win, hex), 0);
		unsigned char seen[MAXN] = {0};
		for (size_t i = 0; i < n; i++) {
			assert_true(win[i] < n);
			assert_false(seen[win[i]]);
			seen[win[i]] = 1;
		}
	}
}

static void test_order_independence(void **state)
{
	(void)state;
	static const char *ids[] = {"alice", "bob",    "carol", "dave",  "eve",     "frank",
	                            "Grace", "heidi",  "ivan",  "judy",  "mallory", "o",
	                            "peggy", "rupert", "sybil", "trent", "victor",  "walter"};
	enum { N = ARRAY_SIZE(ids) };
	struct draw_entry ref[N], e[N];
	for (size_t i = 0; i < N; i++)
		ref[i] = (struct draw_entry){ids[i], 1 + i % 5};
	unsigned char seed[32];
	seed_from(seed, 4242);
	size_t want[N], got[N];
	char want_hex[DRAW_HEX_LEN + 1], hex[DRAW_HEX_LEN + 1];
	assert_int_equal(draw_canonicalize(ref, N), 0);
	assert_int_equal(draw_winners(seed, ref, N, 7, want, want_hex), 0);
	rng_state = 77;
	for (int round = 0; round < 50; round++) {
		memcpy(e, ref, sizeof e);
		shuffle(e, N);
		assert_int_equal(draw_canonicalize(e, N), 0);
		assert_int_equal(draw_winners(seed, e, N, 7, got, hex), 0);
		assert_string_equal(hex, want_hex);
		for (size_t i = 0; i < 7; i++)
			assert_string_equal(e[got[i]].contact_id, ref[want[i]].contact_id);
	}
	/* a different weight is a different list: the digest changes */
	memcpy(e, ref, sizeof e);
	e[3].weight++;
	assert_int_equal(draw_winners(seed, e, N, 7, got, hex), 0);
	assert_string_not_equal(hex, want_hex);
}

/* Property: weight 3 wins first about three times as often as weight 1.
 * Deterministic seeds, so the outcome is fixed; the bounds are ~5 sigma. */
static void test_weights_respected(void **state)
{
	(void)state;
	struct draw_entry e[] = {{"heavy", 3}, {"one", 1}, {"two", 1}, {"three", 1}};
	assert_int_equal(draw_canonicalize(e, 4), 0);
	size_t heavy = 0, one = 0;
	for (size_t i = 0; i < ARRAY_SIZE(e); i++) {
		if (strcmp(e[i].contact_id, "heavy") == 0)
			heavy = i;
		if (strcmp(e[i].contact_id, "one") == 0)
			one = i;
	}
	unsigned counts[4] = {0};
	char hex[DRAW_HEX_LEN + 1];
	for (uint64_t round = 0; round < 2000; round++) {
		unsigned char seed[32];
		seed_from(seed, round);
		size_t win[1];
		assert_int_equal(draw_winners(seed, e, 4, 1, win, hex), 0);
		counts[win[0]]++;
	}
	/* expected: heavy 1000 (p = 1/2), each other ~333 (p = 1/6) */
	assert_in_range(counts[heavy], 880, 1120);
	assert_in_range(counts[one], 250, 420);
	double ratio = (double)counts[heavy] / counts[one];
	assert_true(ratio > 2.2 && ratio < 4.2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_commit_known_answers),
	    cmocka_unit_test(test_parse_hex32),
	    cmocka_unit_test(test_id_valid),
	    cmocka_unit_test(test_canonical_order),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_known_answer_10),
	    cmocka_unit_test(test_known_answer_rejection),
	    cmocka_unit_test(test_rejection_sampling),
	    cmocka_unit_test(test_matches_linear_walk),
	    cmocka_unit_test(test_permutation),
	    cmocka_unit_test(test_order_independence),
	    cmocka_unit_test(test_weights_respected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
