/*
 * points.c - the loyalty rules as pure functions (see points.h): earning,
 * the tier ladder and the lot model of the ledger.
 *
 * Owns nothing but its arguments; never touches Redis, the clock or the
 * configuration (callers pass the numbers).  lua/points_ledger.lua applies
 * the same rules inside Redis: a change here is a change there.
 * Limits: POINTS_TIERS_MAX rungs, names POINTS_TIER_NAME_MAX bytes,
 * thresholds up to 1e12.
 */
#include "club/points.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "util.h"

#define THRESHOLD_MAX INT64_C(1000000000000)

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

int points_tiers_parse(const char *s, struct points_tiers *out, char *why, size_t whylen)
{
	struct points_tiers t;
	memset(&t, 0, sizeof t);
	const char *p = s ? s : "";
	while (is_blank(*p))
		p++;
	if (*p == '\0') {
		*out = t;
		return 0;
	}
	for (;;) {
		while (is_blank(*p))
			p++;
		size_t nl = strcspn(p, ":, \t");
		if (nl == 0 || p[nl] != ':') {
			snprintf(why, whylen,
			         "must be name:threshold items separated by commas "
			         "(bronze:0, silver:1000)");
			return -EINVAL;
		}
		if (nl > POINTS_TIER_NAME_MAX) {
			snprintf(why, whylen, "tier names are at most %d bytes",
			         POINTS_TIER_NAME_MAX);
			return -EINVAL;
		}
		if (t.n == POINTS_TIERS_MAX) {
			snprintf(why, whylen, "at most %d tiers", POINTS_TIERS_MAX);
			return -EINVAL;
		}
		struct points_tier *r = &t.t[t.n];
		memcpy(r->name, p, nl);
		r->name[nl] = '\0';
		if (!utf8_valid(r->name, nl) || text_has_ctl(r->name, 0)) {
			snprintf(why, whylen,
			         "tier names must be UTF-8 without control characters");
			return -EINVAL;
		}
		for (size_t i = 0; i < t.n; i++)
			if (strcmp(t.t[i].name, r->name) == 0) {
				snprintf(why, whylen, "tier %s is given twice", r->name);
				return -EINVAL;
			}
		p += nl + 1;
		size_t dl = strcspn(p, ", \t");
		char num[24];
		if (dl == 0 || dl >= sizeof num) {
			snprintf(why, whylen, "tier %s: the threshold must be a number", r->name);
			return -EINVAL;
		}
		memcpy(num, p, dl);
		num[dl] = '\0';
		if (parse_i64(num, 0, THRESHOLD_MAX, &r->threshold) < 0) {
			snprintf(why, whylen, "tier %s: the threshold must be 0..1000000000000",
			         r->name);
			return -EINVAL;
		}
		if (t.n > 0 && r->threshold <= t.t[t.n - 1].threshold) {
			snprintf(why, whylen, "tier %s: thresholds must increase", r->name);
			return -EINVAL;
		}
		t.n++;
		p += dl;
		while (is_blank(*p))
			p++;
		if (*p == '\0')
			break;
		if (*p != ',') {
			snprintf(why, whylen,
			         "must be name:threshold items separated by commas "
			         "(bronze:0, silver:1000)");
			return -EINVAL;
		}
		p++;
	}
	*out = t;
	return 0;
}

void points_tiers_format(const struct points_tiers *t, char *out, size_t n)
{
	struct buf b;
	buf_init(&b, 0);
	buf_append(&b, "", 0);
	for (size_t i = 0; i < t->n; i++)
		buf_printf(&b, "%s%s:%lld", i ? "," : "", t->t[i].name,
		           (long long)t->t[i].threshold);
	snprintf(out, n, "%s", b.p);
	buf_free(&b);
}

int points_tier_index(const struct points_tiers *t, int64_t lifetime)
{
	int idx = -1;
	for (size_t i = 0; i < t->n; i++)
		if (lifetime >= t->t[i].threshold)
			idx = (int)i;
	return idx;
}

int points_tier_find(const struct points_tiers *t, const char *name)
{
	for (size_t i = 0; name && i < t->n; i++)
		if (strcmp(t->t[i].name, name) == 0)
			return (int)i;
	return -1;
}

int64_t points_earn(int64_t amount_c, int64_t earn_points, int64_t earn_amount)
{
	if (amount_c <= 0 || earn_points <= 0 || earn_amount <= 0)
		return 0;
	/* whole earn_amount units: amount_c / (earn_amount * 100), without
	 * overflowing the product for large earn_amount */
	int64_t units = amount_c / 100 / earn_amount;
	if (units <= 0)
		return 0;
	if (units > INT64_MAX / earn_points)
		return INT64_MAX;
	return units * earn_points;
}

int64_t points_expiry(int64_t at, int64_t expire_after_ms)
{
	if (expire_after_ms <= 0 || at > POINTS_NEVER - expire_after_ms)
		return POINTS_NEVER;
	return at + expire_after_ms;
}

static int lot_cmp(const void *a, const void *b)
{
	const struct points_lot *x = a, *y = b;
	if (x->expires != y->expires)
		return x->expires < y->expires ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return 0;
}

void points_lots_sort(struct points_lot *lots, size_t n)
{
	if (n > 1)
		qsort(lots, n, sizeof *lots, lot_cmp);
}

size_t points_lots_expire(struct points_lot *lots, size_t n, int64_t now, int64_t *expired)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (lots[i].expires <= now) {
			*expired += lots[i].remaining;
			continue;
		}
		lots[k++] = lots[i];
	}
	return k;
}

int64_t points_lots_balance(const struct points_lot *lots, size_t n)
{
	int64_t s = 0;
	for (size_t i = 0; i < n; i++)
		s += lots[i].remaining;
	return s;
}

long points_lots_take(struct points_lot *lots, size_t n, int64_t amount)
{
	if (amount <= 0)
		return -EINVAL;
	if (points_lots_balance(lots, n) < amount)
		return -ENOSPC;
	size_t i = 0;
	while (amount > 0 && i < n) {
		int64_t t = lots[i].remaining < amount ? lots[i].remaining : amount;
		lots[i].remaining -= t;
		amount -= t;
		if (lots[i].remaining == 0)
			i++;
	}
	memmove(lots, lots + i, (n - i) * sizeof *lots);
	return (long)(n - i);
}
