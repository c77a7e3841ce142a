/*
 * store_raffles.h - the raffles' part of the store, through
 * lua/raffle_write.lua, lua/raffle_enter.lua and lua/raffle_read.lua (the
 * key names live there and in store.h's key list).  Every reply shape is
 * the script's; see the script headers.
 */
#ifndef CLUBD_STORE_RAFFLES_H
#define CLUBD_STORE_RAFFLES_H

#include <stdint.h>

#include "club/raffle.h"
#include "store.h"

struct store_club_rules;

/* Create raffle d->id with its public JSON, secret seed and commitment
 * (both lowercase hex) and codes.  {'ok'} | {'exists'}. */
void store_raffle_create(struct store *st, const struct raffle_def *d, const char *json,
                         const char *seed_hex, const char *commit_hex, int64_t now, redis_cb cb,
                         void *arg);
/* {'ok'} | {'not_found'} | {'conflict', state, entries}. */
void store_raffle_delete(struct store *st, const char *id, redis_cb cb, void *arg);
/* The raffle's hash (HGETALL form, no seed before the draw); empty when none. */
void store_raffle_get(struct store *st, const char *id, redis_cb cb, void *arg);
/* {next cursor or '', {id, hash}...} in id order after cursor (exclusive). */
void store_raffle_list(struct store *st, const char *cursor, int limit, redis_cb cb, void *arg);
/* {0} (no raffle) | {1, XRANGE page after cursor (exclusive; "" = oldest)}. */
void store_raffle_entries(struct store *st, const char *id, const char *cursor, int limit,
                          redis_cb cb, void *arg);
/* {state, raffle hash, draw record hash} (both empty before the draw). */
void store_raffle_draw_get(struct store *st, const char *id, redis_cb cb, void *arg);

/* One entry through the API.  amount_c < 0: none. */
struct store_raffle_entry {
	const char *raffle_id, *contact_id, *method;
	const char *ref;  /* "" = none */
	const char *code; /* normalised, "" = none */
	int64_t count;    /* points: entries to buy (>= 1) */
	int64_t amount_c;
	const char *currency; /* "" = none */
	const char *by;       /* the token's name, for the points ledger */
	int64_t now;
};
/* {'ok'|'dup', answer JSON} | {'not_found'} | {'refused', reason, detail}. */
void store_raffle_enter(struct store *st, const struct store_club_rules *r,
                        const struct store_raffle_entry *e, redis_cb cb, void *arg);

/* A text that may be a keyword or code (raffle_enter.lua 'text').
 * contact_id "" = unknown sender: addr_kind/addr find it or, when
 * create_leads, make lead_id a lead. */
struct store_raffle_text {
	const char *contact_id, *text, *ref;
	const char *addr_kind, *addr, *lead_id;
	int create_leads;
	int64_t now;
};
void store_raffle_enter_text(struct store *st, const struct store_club_rules *r,
                             const struct store_raffle_text *t, redis_cb cb, void *arg);
/* {{raffle id, status, answer JSON or reason}...}. */
void store_raffle_enter_purchase(struct store *st, const struct store_club_rules *r,
                                 const char *contact_id, int64_t amount_c, const char *currency,
                                 const char *event_id, int64_t now, redis_cb cb, void *arg);

/* The draw (raffle_write.lua lock / finish / notified). */
void store_raffle_draw_lock(struct store *st, const char *id, const char *owner, int64_t now,
                            int64_t lease_ms, int force, redis_cb cb, void *arg);
void store_raffle_draw_finish(struct store *st, const char *id, const char *owner, int64_t now,
                              int64_t lease_ms, const struct raffle_draw *d,
                              const char *winners_json, int timeline_max, redis_cb cb, void *arg);
void store_raffle_draw_notified(struct store *st, const char *id, const char *owner, int64_t now,
                                const char *notifications_json, redis_cb cb, void *arg);

#endif
