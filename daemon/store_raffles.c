/*
 * store_raffles.c - argument lists for the raffle scripts (raffle_write,
 * raffle_enter, raffle_read).  Knows each script's argument order and how a
 * definition is flattened into the rf:{id} hash the scripts read (rules
 * as plain fields, so no script parses JSON to enter someone); the key names
 * are the scripts'.  Never validates: raffle.c and api_raffles.c did.
 * Never logs the seed.
 */
#include "store_raffles.h"

#include <stdlib.h>
#include <string.h>

#include "privacy.h"
#include "store_club.h"
#include "util.h"

#define LEDGER_MAX_DEFAULT 1000

static void pair(struct argv *a, const char *k, const char *v)
{
	argv_add(a, k);
	argv_add(a, v);
}

static void pair_ll(struct argv *a, const char *k, long long v)
{
	argv_add(a, k);
	argv_addll(a, v);
}

void store_raffle_create(struct store *st, const struct raffle_def *d, const char *json,
                         const char *seed_hex, const char *commit_hex, int64_t now, redis_cb cb,
                         void *arg)
{
	struct argv rules, a;
	argv_init(&rules);
	char methods[64] = "";
	size_t off = 0;
	for (int m = 0; m < RAFFLE_METHODS; m++) {
		if (!(d->methods & (1u << m)))
			continue;
		off += (size_t)snprintf(methods + off, sizeof methods - off, "%s%s", off ? "," : "",
		                        raffle_method_name((enum raffle_method)m));
	}
	pair(&rules, "methods", methods);
	pair_ll(&rules, "starts", d->starts_at);
	pair_ll(&rules, "ends", d->ends_at);
	pair(&rules, "kw", d->keyword_norm ? d->keyword_norm : "");
	pair_ll(&rules, "maxe", d->max_entries);
	pair_ll(&rules, "pcost", d->points_cost);
	pair(&rules, "cur", d->currency);
	pair_ll(&rules, "min_c", d->min_amount_c);
	pair_ll(&rules, "per_c", d->entries_per_c);
	pair_ll(&rules, "win", d->winners);
	pair(&rules, "ntpl", d->notify_tpl);
	pair(&rules, "rtpl", d->reply_tpl);
	for (int m = 0; m < RAFFLE_METHODS; m++) {
		argv_addf(&rules, "w:%s", raffle_method_name((enum raffle_method)m));
		argv_addll(&rules, d->method_weight[m]);
	}
	for (size_t i = 0; i < d->ntiers; i++) {
		argv_addf(&rules, "tw:%s", d->tiers[i].name);
		argv_addll(&rules, d->tiers[i].weight);
	}

	argv_init(&a);
	argv_add(&a, "create");
	argv_addll(&a, now);
	argv_add(&a, d->id);
	argv_add(&a, json);
	argv_add(&a, seed_hex);
	argv_add(&a, commit_hex);
	argv_addll(&a, rules.n);
	for (int i = 0; i < rules.n; i++)
		argv_addn(&a, rules.v[i], rules.len[i]);
	for (size_t i = 0; i < d->ncodes; i++)
		argv_add(&a, d->codes[i]);
	store_eval(st, SCRIPT_RAFFLE_WRITE, &a, cb, arg);
	/* the seed was copied into a's strings: wipe them before freeing */
	for (int i = 0; i < a.n; i++)
		explicit_bzero(a.v[i], a.len[i]);
	argv_free(&a);
	argv_free(&rules);
}

static void simple(struct store *st, enum store_script s, const char *op, const char *id,
                   redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, op);
	argv_add(&a, id);
	store_eval(st, s, &a, cb, arg);
	argv_free(&a);
}

void store_raffle_delete(struct store *st, const char *id, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "delete");
	argv_addll(&a, now_ms());
	argv_add(&a, id);
	store_eval(st, SCRIPT_RAFFLE_WRITE, &a, cb, arg);
	argv_free(&a);
}

void store_raffle_get(struct store *st, const char *id, redis_cb cb, void *arg)
{
	simple(st, SCRIPT_RAFFLE_READ, "get", id, cb, arg);
}

void store_raffle_draw_get(struct store *st, const char *id, redis_cb cb, void *arg)
{
	simple(st, SCRIPT_RAFFLE_READ, "draw", id, cb, arg);
}

void store_raffle_list(struct store *st, const char *cursor, int limit, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "list");
	argv_add(&a, cursor ? cursor : "");
	argv_addll(&a, limit);
	store_eval(st, SCRIPT_RAFFLE_READ, &a, cb, arg);
	argv_free(&a);
}

void store_raffle_entries(struct store *st, const char *id, const char *cursor, int limit,
                          redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "entries");
	argv_add(&a, id);
	argv_add(&a, cursor ? cursor : "");
	argv_addll(&a, limit);
	store_eval(st, SCRIPT_RAFFLE_READ, &a, cb, arg);
	argv_free(&a);
}

static void enter_common(struct argv *a, const char *op, int64_t now,
                         const struct store_club_rules *r)
{
	argv_add(a, op);
	argv_addll(a, now);
	argv_addll(a, r ? r->timeline_max : 0);
	argv_addll(a, r && r->ledger_max > 0 ? r->ledger_max : LEDGER_MAX_DEFAULT);
	argv_addll(a, r ? r->expire_after_ms : 0);
}

void store_raffle_enter(struct store *st, const struct store_club_rules *r,
                        const struct store_raffle_entry *e, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	enter_common(&a, "api", e->now, r);
	argv_add(&a, e->raffle_id);
	argv_add(&a, e->contact_id);
	argv_add(&a, e->method);
	argv_add(&a, e->ref ? e->ref : "");
	argv_add(&a, e->code ? e->code : "");
	argv_addll(&a, e->count > 0 ? e->count : 1);
	argv_addll(&a, e->amount_c >= 0 ? e->amount_c : 0);
	argv_add(&a, e->currency ? e->currency : "");
	argv_add(&a, e->by ? e->by : "");
	store_eval(st, SCRIPT_RAFFLE_ENTER, &a, cb, arg);
	argv_free(&a);
}

void store_raffle_enter_text(struct store *st, const struct store_club_rules *r,
                             const struct store_raffle_text *t, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	enter_common(&a, "text", t->now, r);
	argv_add(&a, t->contact_id ? t->contact_id : "");
	argv_add(&a, t->text);
	argv_add(&a, t->ref ? t->ref : "");
	argv_add(&a, t->addr_kind ? t->addr_kind : "");
	privacy_argv_addr(&a, t->addr); /* sealed with [privacy] key_file */
	argv_add(&a, t->lead_id ? t->lead_id : "");
	argv_add(&a, t->create_leads ? "1" : "0");
	store_eval(st, SCRIPT_RAFFLE_ENTER, &a, cb, arg);
	argv_free(&a);
}

void store_raffle_enter_purchase(struct store *st, const struct store_club_rules *r,
                                 const char *contact_id, int64_t amount_c, const char *currency,
                                 const char *event_id, int64_t now, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	enter_common(&a, "purchase", now, r);
	argv_add(&a, contact_id);
	argv_addll(&a, amount_c);
	argv_add(&a, currency);
	argv_add(&a, event_id);
	store_eval(st, SCRIPT_RAFFLE_ENTER, &a, cb, arg);
	argv_free(&a);
}

void store_raffle_draw_lock(struct store *st, const char *id, const char *owner, int64_t now,
                            int64_t lease_ms, int force, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "lock");
	argv_addll(&a, now);
	argv_add(&a, id);
	argv_add(&a, owner);
	argv_addll(&a, lease_ms);
	argv_add(&a, force ? "1" : "0");
	store_eval(st, SCRIPT_RAFFLE_WRITE, &a, cb, arg);
	argv_free(&a);
}

void store_raffle_draw_finish(struct store *st, const char *id, const char *owner, int64_t now,
                              int64_t lease_ms, const struct raffle_draw *d,
                              const char *winners_json, int timeline_max, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "finish");
	argv_addll(&a, now);
	argv_add(&a, id);
	argv_add(&a, owner);
	argv_add(&a, d->digest);
	argv_addll(&a, (long long)d->n);
	argv_addf(&a, "%llu", (unsigned long long)d->total);
	argv_addll(&a, (long long)d->k);
	argv_add(&a, d->entries_text ? d->entries_text : "");
	argv_add(&a, winners_json);
	argv_addll(&a, timeline_max);
	argv_addll(&a, lease_ms);
	for (size_t i = 0; i < d->k; i++)
		argv_add(&a, d->winners[i]);
	store_eval(st, SCRIPT_RAFFLE_WRITE, &a, cb, arg);
	argv_free(&a);
}

void store_raffle_draw_notified(struct store *st, const char *id, const char *owner, int64_t now,
                                const char *notifications_json, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "notified");
	argv_addll(&a, now);
	argv_add(&a, id);
	argv_add(&a, owner);
	argv_add(&a, notifications_json);
	store_eval(st, SCRIPT_RAFFLE_WRITE, &a, cb, arg);
	argv_free(&a);
}
