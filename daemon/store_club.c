/*
 * store_club.c - argument lists for lua/points_ledger.lua, the one script
 * that changes club state (events, ledger, tiers, referral codes).  Knows
 * the script's argument order; the key names are the script's.  Never
 * validates: api_events.c and api_points.c did.
 */
#include "store_club.h"

#include <stdlib.h>

#include "privacy.h"
#include "util.h"

static void rules(struct argv *a, const char *op, int64_t now, const struct store_club_rules *r)
{
	argv_add(a, op);
	argv_addll(a, now);
	argv_addll(a, r ? r->timeline_max : 0);
	argv_addll(a, r && r->ledger_max > 0 ? r->ledger_max : 1000);
	argv_addll(a, r ? r->expire_after_ms : 0);
	argv_add(a, r && r->tiers ? r->tiers : "");
}

void store_club_event(struct store *st, const struct store_club_rules *r,
                      const struct store_club_event *e, redis_cb cb, void *arg)
{
	char newc[ID_LEN + 1];
	id_new(newc, e->now);
	struct argv a;
	argv_init(&a);
	rules(&a, "event", e->now, r);
	argv_add(&a, e->id);
	argv_addll(&a, e->at);
	argv_add(&a, e->at_text);
	argv_add(&a, e->type);
	argv_add(&a, e->contact_id ? e->contact_id : "");
	argv_add(&a, e->addr_kind ? e->addr_kind : "");
	privacy_argv_addr(&a, e->addr); /* sealed with [privacy] key_file */
	argv_add(&a, newc);
	argv_add(&a, e->lead ? "1" : "0");
	argv_add(&a, e->idem ? e->idem : "");
	argv_addll(&a, e->idem_ttl_s > 0 ? e->idem_ttl_s : 86400);
	if (e->amount_c >= 0)
		argv_addll(&a, e->amount_c);
	else
		argv_add(&a, "");
	argv_add(&a, e->amount_c >= 0 ? e->amount_text : "");
	argv_add(&a, e->amount_c >= 0 ? e->currency : "");
	argv_add(&a, e->properties ? e->properties : "");
	argv_addll(&a, e->purchase_points);
	argv_addll(&a, e->signup_points);
	argv_add(&a, e->referral_code ? e->referral_code : "");
	argv_addll(&a, e->referrer_points);
	argv_addll(&a, e->referee_points);
	argv_add(&a, e->thank_you_tpl ? e->thank_you_tpl : "");
	argv_add(&a, e->tier_tpl ? e->tier_tpl : "");
	store_eval(st, SCRIPT_POINTS_LEDGER, &a, cb, arg);
	argv_free(&a);
}

void store_club_points_get(struct store *st, const struct store_club_rules *r, const char *cid,
                           const char *cursor, int limit, int lots_max, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	rules(&a, "get", now_ms(), r);
	argv_add(&a, cid);
	argv_add(&a, cursor ? cursor : "");
	argv_addll(&a, limit);
	argv_addll(&a, lots_max);
	store_eval(st, SCRIPT_POINTS_LEDGER, &a, cb, arg);
	argv_free(&a);
}

void store_club_points_change(struct store *st, const struct store_club_rules *r, int64_t now,
                              const char *cid, const char *kind, int64_t delta, const char *note,
                              const char *ref, const char *by, const char *idem, int64_t idem_ttl_s,
                              const char *tier_tpl, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	rules(&a, "change", now, r);
	argv_add(&a, cid);
	argv_add(&a, kind);
	argv_addll(&a, delta);
	argv_add(&a, note ? note : "");
	argv_add(&a, ref ? ref : "");
	argv_add(&a, by ? by : "");
	argv_add(&a, idem ? idem : "");
	argv_addll(&a, idem_ttl_s > 0 ? idem_ttl_s : 86400);
	argv_add(&a, tier_tpl ? tier_tpl : "");
	store_eval(st, SCRIPT_POINTS_LEDGER, &a, cb, arg);
	argv_free(&a);
}

void store_club_refcode(struct store *st, const char *cid, const char *const *candidates, size_t n,
                        redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	rules(&a, "refcode", now_ms(), NULL);
	argv_add(&a, cid);
	for (size_t i = 0; i < n; i++)
		argv_add(&a, candidates[i]);
	store_eval(st, SCRIPT_POINTS_LEDGER, &a, cb, arg);
	argv_free(&a);
}
