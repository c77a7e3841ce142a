/*
 * store_club.h - the club's part of the store: business events, the points
 * ledger, tiers and referral codes, all through lua/points_ledger.lua (the
 * key names live there and in store.h's key list).
 */
#ifndef CLUBD_STORE_CLUB_H
#define CLUBD_STORE_CLUB_H

#include <stdint.h>

#include "store.h"

/* The rules every ledger operation needs (expiry is applied on each). */
struct store_club_rules {
	int timeline_max;        /* [contacts] timeline_max */
	int ledger_max;          /* ledger entries kept per contact */
	int64_t expire_after_ms; /* 0 = never */
	const char *tiers;       /* points_tiers_format() form, "" = none */
};

struct store_club_event {
	const char *id;      /* new event id */
	int64_t now, at;     /* ms */
	const char *at_text; /* RFC 3339 */
	const char *type;
	const char *contact_id;       /* or NULL: by address */
	const char *addr_kind, *addr; /* normalised */
	int lead;                     /* a contact created by address is a lead */
	const char *idem;             /* full idempotency key or NULL */
	int64_t idem_ttl_s;
	int64_t amount_c;                   /* < 0: none */
	const char *amount_text, *currency; /* when amount_c >= 0 */
	const char *properties;             /* compact JSON or NULL */
	int64_t purchase_points, signup_points;
	const char *referral_code; /* normalised or NULL */
	int64_t referrer_points, referee_points;
	const char *thank_you_tpl, *tier_tpl; /* template ids or NULL */
};

/* Record an event.  Reply: {'ok'|'dup', answer JSON, contact HGETALL,
 * referrer HGETALL, thank-you template JSON, tier template JSON} |
 * {'no_contact', id} | {'bad_ref', 'unknown'|'self'}. */
void store_club_event(struct store *st, const struct store_club_rules *r,
                      const struct store_club_event *e, redis_cb cb, void *arg);
/* Balance, lifetime, tier, the first lots_max open lots and a page of the
 * ledger (newest first, before cursor).  Applies expiry first.  Reply:
 * {'ok', points, lifetime, tier, lots, entries} | {'no_contact'}. */
void store_club_points_get(struct store *st, const struct store_club_rules *r, const char *cid,
                           const char *cursor, int limit, int lots_max, redis_cb cb, void *arg);
/* Spend (delta < 0, kind "spend") or adjust (kind "adjust", delta != 0).
 * Reply: {'ok'|'dup', answer JSON, contact HGETALL, tier template JSON} |
 * {'no_contact'} | {'insufficient', balance}. */
void store_club_points_change(struct store *st, const struct store_club_rules *r, int64_t now,
                              const char *cid, const char *kind, int64_t delta, const char *note,
                              const char *ref, const char *by, const char *idem, int64_t idem_ttl_s,
                              const char *tier_tpl, redis_cb cb, void *arg);
/* The contact's referral code, created from the first free candidate.
 * Reply: {'ok', code, created} | {'no_contact'} | {'retry'}. */
void store_club_refcode(struct store *st, const char *cid, const char *const *candidates, size_t n,
                        redis_cb cb, void *arg);

#endif
