/*
 * util.c - allocation wrappers, bounded buffers, clocks, strict number and
 * duration parsing, ids.  Owns no state.  Out-of-memory is fatal by design:
 * a daemon that cannot allocate 100 bytes cannot do anything useful.
 */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static void oom(size_t n)
{
	fprintf(stderr, "clubd: out of memory allocating %zu bytes\n", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (!p)
		oom(nmemb * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	char *p = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

void buf_init(struct buf *b, size_t max)
{
	b->p = NULL;
	b->len = b->cap = 0;
	b->max = max;
}

void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

static int buf_reserve(struct buf *b, size_t extra)
{
	if (b->max && extra > b->max - b->len)
		return -ENOSPC;
	if (extra >= SIZE_MAX / 2 - b->len)
		return -ENOSPC; /* no cap and an absurd length: refuse, never wrap */
	if (b->len + extra + 1 <= b->cap)
		return 0;
	size_t ncap = b->cap ? b->cap : 64;
	while (ncap < b->len + extra + 1)
		ncap *= 2;
	b->p = xrealloc(b->p, ncap);
	b->cap = ncap;
	return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return -ENOSPC;
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if (buf_reserve(b, (size_t)n) < 0)
		return -ENOSPC;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

char *buf_steal(struct buf *b)
{
	char *p = b->p ? b->p : xstrdup("");
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (!s || !*s)
		return -EINVAL;
	const char *p = s;
	int neg = 0;
	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (*p < '0' || *p > '9')
		return -EINVAL;
	uint64_t v = 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (!neg && v > (uint64_t)INT64_MAX)
		return -ERANGE;
	if (neg && v > (uint64_t)INT64_MAX + 1)
		return -ERANGE;
	int64_t r = neg ? (int64_t)(0 - v) : (int64_t)v;
	if (r < min || r > max)
		return -ERANGE;
	*out = r;
	return 0;
}

int parse_duration_ms(const char *s, int64_t *out)
{
	static const struct {
		const char *suffix;
		int64_t mult;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
	if (!s || !*s)
		return -EINVAL;
	size_t n = strlen(s), digits = 0;
	while (digits < n && s[digits] >= '0' && s[digits] <= '9')
		digits++;
	if (digits == 0 || digits > 15)
		return -EINVAL;
	char num[16];
	memcpy(num, s, digits);
	num[digits] = '\0';
	int64_t v;
	if (parse_i64(num, 0, INT64_MAX, &v) < 0)
		return -EINVAL;
	const char *suf = s + digits;
	int64_t mult = 0;
	if (!*suf)
		mult = 1;
	for (size_t i = 0; i < ARRAY_SIZE(units) && !mult; i++)
		if (strcmp(suf, units[i].suffix) == 0)
			mult = units[i].mult;
	if (!mult)
		return -EINVAL;
	if (v > INT64_MAX / mult)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

int ct_equal(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	unsigned char d = 0;
	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[in[i] >> 4];
		out[2 * i + 1] = hx[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void secret_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void random_bytes(void *p, size_t n)
{
	unsigned char *q = p;
	while (n) {
		ssize_t r = getrandom(q, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			abort();
		}
		q += r;
		n -= (size_t)r;
	}
}

static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* The last id this thread made: its ms and its 80 random bits. */
static __thread int64_t id_ms = -1;
static __thread uint64_t id_hi, id_lo; /* 40 bits each */

void id_new(char out[ID_LEN + 1], int64_t ms)
{
#define ID_MASK40 ((UINT64_C(1) << 40) - 1)
	if (ms == id_ms) {
		/* the same millisecond: the last id's random part plus one, so
		 * ids sort by creation within it too (ULID's monotonic rule) */
		id_lo = (id_lo + 1) & ID_MASK40;
		if (id_lo == 0)
			id_hi = (id_hi + 1) & ID_MASK40;
	} else {
		unsigned char r[10];
		random_bytes(r, sizeof r);
		id_hi = id_lo = 0;
		for (int i = 0; i < 5; i++)
			id_hi = (id_hi << 8) | r[i];
		for (int i = 5; i < 10; i++)
			id_lo = (id_lo << 8) | r[i];
		id_ms = ms;
	}
#undef ID_MASK40
	uint64_t t = (uint64_t)ms;
	/* 10 chars of time (50 bits, top 2 always zero), 16 of randomness. */
	for (int i = 9; i >= 0; i--) {
		out[i] = b32[t & 31];
		t >>= 5;
	}
	uint64_t hi = id_hi, lo = id_lo;
	for (int i = 17; i >= 10; i--) {
		out[i] = b32[hi & 31];
		hi >>= 5;
	}
	for (int i = 25; i >= 18; i--) {
		out[i] = b32[lo & 31];
		lo >>= 5;
	}
	out[ID_LEN] = '\0';
}

int id_valid(const char *s)
{
	if (!s || strlen(s) != ID_LEN)
		return 0;
	for (const char *p = s; *p; p++)
		if (!strchr(b32, *p) || *p == '\0')
			return 0;
	return 1;
}
