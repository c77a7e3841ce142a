/*
 * points.h - the loyalty rules as pure functions: how many points a
 * purchase earns, the tier ladder (parse, look up, next tier), and the lot
 * model of the ledger (FIFO expiry and spending).  No I/O, no clock: every
 * function takes `now` or the amounts it needs.
 *
 * The ledger itself lives in Redis (lua/points_ledger.lua applies the same
 * rules atomically); this module is the reference the API answers and the
 * unit tests use, and the one place the rules are written down:
 *   - a credit of N points at time T is one lot {N, expires T + expire_after}
 *     (expire_after 0: never);
 *   - at any read or write, lots whose expiry is <= now expire whole (FIFO by
 *     expiry: the oldest promise goes first);
 *   - spending takes from the lot that expires first (ties: the older lot);
 *     never-expiring lots go last; a spend larger than the balance is refused
 *     and changes nothing;
 *   - the tier is the highest rung whose threshold <= lifetime points
 *     (everything credited, minus admin corrections; spending and expiry
 *     never demote).
 */
#ifndef CLUBD_POINTS_H
#define CLUBD_POINTS_H

#include <stddef.h>
#include <stdint.h>

#define POINTS_TIERS_MAX     16
#define POINTS_TIER_NAME_MAX 32                       /* bytes of UTF-8 */
#define POINTS_MAX           1000000000               /* one credit, spend or adjustment */
#define POINTS_NEVER         INT64_C(253402300799999) /* 9999-12-31: "never expires" */

struct points_tier {
	char name[POINTS_TIER_NAME_MAX + 1];
	int64_t threshold; /* lifetime points */
};

struct points_tiers {
	struct points_tier t[POINTS_TIERS_MAX];
	size_t n; /* ascending thresholds, 0 = no tiers */
};

/*
 * "bronze:0, silver:1000, gold:5000" (blanks around items ignored; "" = no
 * tiers).  Names: 1..32 bytes of UTF-8 without blanks, controls, ':' or ',';
 * unique.  Thresholds: 0..1e12, strictly increasing.  At most 16 rungs.
 * 0, or -EINVAL with a reason in why.
 */
int points_tiers_parse(const char *s, struct points_tiers *out, char *why, size_t whylen);
/* The canonical "name:threshold,..." form (what the Lua script reads). */
void points_tiers_format(const struct points_tiers *t, char *out, size_t n);
/* Index of the tier for lifetime points, or -1 below the first rung. */
int points_tier_index(const struct points_tiers *t, int64_t lifetime);
/* Index of tier name, or -1 when unknown. */
int points_tier_find(const struct points_tiers *t, const char *name);

/* Points a purchase of amount_c (hundredths) earns: earn_points for each
 * whole earn_amount currency units.  0 when the rule is off (either <= 0)
 * or the amount is <= 0.  Exact for amount_c <= 1e14 and earn_points <=
 * 1e6 (the configurable range); saturates at INT64_MAX beyond. */
int64_t points_earn(int64_t amount_c, int64_t earn_points, int64_t earn_amount);

/* The expiry of a credit made at `at`: at + expire_after_ms, or POINTS_NEVER
 * when expire_after_ms <= 0 (or the sum would pass it). */
int64_t points_expiry(int64_t at, int64_t expire_after_ms);

/* One lot of the ledger. */
struct points_lot {
	int64_t expires; /* ms; POINTS_NEVER = never */
	int64_t remaining;
	int64_t seq; /* credit order, breaks ties between equal expiries */
};

/* Sort lots in spending order: expiry, then seq. */
void points_lots_sort(struct points_lot *lots, size_t n);
/* Drop the lots expired at now (expires <= now), keeping order; returns the
 * new count and adds the points that expired to *expired. */
size_t points_lots_expire(struct points_lot *lots, size_t n, int64_t now, int64_t *expired);
/* Sum of remaining points. */
int64_t points_lots_balance(const struct points_lot *lots, size_t n);
/* Take amount from sorted lots (first to expire first); emptied lots are
 * removed.  Returns the new count, or -ENOSPC (nothing changed) when the
 * balance is smaller than amount, -EINVAL for amount <= 0. */
long points_lots_take(struct points_lot *lots, size_t n, int64_t amount);

#endif
