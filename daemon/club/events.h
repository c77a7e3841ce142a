/*
 * events.h - business events (purchase, signup, custom types): the input
 * rules (type names, money, currency, properties) as pure functions, and
 * the club messages an event or a points change leaves behind (a thank-you
 * after a purchase, a message on a tier promotion): choose the channel the
 * contact's preferences allow, render the template (tplset.h) and create
 * the message with store_msg_create().
 *
 * Money (docs/club.md): a JSON integer, a JSON number or a decimal string
 * with at most 2 fraction digits ("125000", "12.50"), more than 0 and at
 * most 1e12 units; kept as integer hundredths (amount_c).
 */
#ifndef CLUBD_EVENTS_H
#define CLUBD_EVENTS_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define EVENTS_TYPE_MAX     40
#define EVENTS_PROPS_MAX    4096                     /* bytes of compact JSON */
#define EVENTS_AMOUNT_MAX_C INT64_C(100000000000000) /* 1e12 units */
#define EVENTS_MONEY_TEXT   24                       /* "1000000000000.00" and NUL, with room */
#define EVENTS_LEDGER_MAX   1000                     /* ledger entries kept per contact */
#define EVENTS_TIERS_TEXT   1024                     /* the canonical tiers text */

struct app;
struct config;
struct store_club_rules;

/* 1 when s (len bytes) is 1..40 of [a-z0-9_.-]. */
int events_type_valid(const char *s, size_t len);
/* 1 when s is three ASCII upper-case letters (ISO 4217 form). */
int events_currency_valid(const char *s);
/* Parse an amount (see above) into hundredths.  0, or -EINVAL with a
 * static reason in *why. */
int events_money_parse(const json_t *v, int64_t *cents, const char **why);
/* "125000.00" from hundredths (>= 0). */
void events_money_format(int64_t cents, char out[EVENTS_MONEY_TEXT]);

/* The ledger rules of the configuration into r; tiers_text (at least
 * EVENTS_TIERS_TEXT bytes) holds the canonical tiers r->tiers points to. */
void events_rules(const struct config *cfg, struct store_club_rules *r, char *tiers_text);

/* One club message to queue. */
struct events_msg {
	const char *what; /* "thank_you" or "tier": the result's kind */
	const char *contact_id;
	const redisReply *contact; /* HGETALL of the contact, after the change */
	const char *tpl_id;
	const char *tpl_json; /* stored definition (P tpl:{id} json); NULL/"" = missing */
	const json_t *event;  /* the render context's "event" (borrowed) */
	const char *category; /* a message category name */
	const char *idem;     /* full idempotency key of the message */
	int64_t now, due;
};

/* result: {"kind","contact_id","template","message_id"} or, when nothing
 * was queued, {..., "skipped": reason}; NULL when the store did not
 * confirm (the caller answers 503).  A new reference the callee owns. */
typedef void (*events_msg_cb)(void *arg, json_t *result);

/*
 * Render m now (everything in m is borrowed for this call only) and create
 * the message.  Returns the result at once when nothing is queued (no
 * contact, template missing or invalid, no channel allowed, no variant
 * fits): "skipped" is no_contact, template_missing, template_invalid,
 * no_variant, render_failed or the preference reason (opted_out:sms,
 * category_opt_out:promotional, no_channel, ...).  Otherwise returns NULL
 * and cb follows exactly once (never from inside this call).
 * Channel: the first kind in the contact's preferred order (then sms,
 * email, chat) that preferences allow and the template has a variant for;
 * the message is created for that channel, so consent is checked again at
 * dispatch.  Expiry: due + [sched] message_ttl.
 */
json_t *events_msg_queue(struct app *app, const struct events_msg *m, events_msg_cb cb, void *arg);

/*
 * The messages an answer of lua/points_ledger.lua asks for (an event's or a
 * points change's; see docs/club.md): the thank-you after a purchase
 * ([events] thank_you_template, due at + thank_you_delay; skipped as
 * "too_old" when it would expire before now), and a tier message for each
 * promotion (points.tier_change or referral.referrer_tier_change with
 * direction "up", [points] tier_template).  Message idempotency keys are
 * idem_base + ":thanks" / ":tier:" + contact id, so a replayed answer never
 * queues twice.  Returns the results array at once when nothing needs the
 * store, else NULL and done(arg, results | NULL on a store failure) follows
 * once.  Everything in f is borrowed for this call only.
 */
struct events_followup {
	const json_t *answer;
	const redisReply *contact, *referrer; /* HGETALL, after the change */
	const char *thank_you_tpl_json, *tier_tpl_json;
	const char *idem_base; /* "club/ev:{event id}", "club/pl:{cid}:{entry}" */
	int64_t now;
};
json_t *events_followups(struct app *app, const struct events_followup *f,
                         void (*done)(void *arg, json_t *msgs), void *arg);

#endif
