/*
 * util.h - allocation wrappers, bounded growable buffers, clocks and small
 * string helpers shared by every module.  Out-of-memory aborts here, so no
 * caller handles a NULL from x*alloc.
 */
#ifndef CLUBD_UTIL_H
#define CLUBD_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a)                   (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Allocating printf; aborts on OOM, never returns NULL. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A growable byte buffer with a hard cap.  `max` == 0 means "no cap" and is
 * only for internal data whose size we produce ourselves; anything filled
 * from outside (request bodies, provider answers) must set a cap.
 * p is always NUL-terminated when non-NULL (the NUL is not counted in len).
 */
struct buf {
	char *p;
	size_t len;
	size_t cap;
	size_t max;
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
/* 0, or -ENOSPC when the append would exceed max (buffer unchanged). */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Detach the string; the buffer is reset.  Caller frees. */
char *buf_steal(struct buf *b);

/* Wall clock in ms since the epoch, and a monotonic clock in ms. */
int64_t now_ms(void);
int64_t mono_ms(void);

/*
 * Strict decimal parsing: the whole string must be a number in [min, max].
 * 0 or -EINVAL / -ERANGE.  Replaces atoi/strtol at every input boundary.
 */
int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Duration like "250ms", "30s", "5m", "2h", "3d" or a bare number of ms. */
int parse_duration_ms(const char *s, int64_t *out);

/* Constant-time comparison of two equal-length byte strings. */
int ct_equal(const void *a, const void *b, size_t n);

/* Hex encoding of n bytes into out (2n+1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *out);

/* Wipe a NUL-terminated secret (password, token, key) and free it; NULL is fine. */
void secret_free(char *s);

/* Fill with cryptographically random bytes (getrandom). */
void random_bytes(void *p, size_t n);

/*
 * Time-ordered unique id: 48-bit ms timestamp + 80 random bits, Crockford
 * base32, 26 chars; lexical order is creation order (ids of one thread in
 * the same ms take the last one's random part plus one).  out has 27 bytes.
 */
#define ID_LEN 26
void id_new(char out[ID_LEN + 1], int64_t ms);
/* 1 when s looks like an id_new() id (length, alphabet). */
int id_valid(const char *s);

#endif
