/*
 * raffle.h - raffles (lotteries): the definition and its rules as pure
 * functions (parse and validate, entry weights, what a purchase is worth,
 * the draw over the stored weights with draw.c), and the entry points other
 * modules call: the inbound router's stage (a keyword or code texted in
 * enters the sender), entries by purchase for the events module, and the
 * winners' notification messages.
 *
 * Definition (JSON, as the API takes it; docs/raffles.md has every rule):
 *   {"id":"yalda-1404","name":"قرعه‌کشی یلدا","starts_at":"...","ends_at":"...",
 *    "methods":["keyword","code","purchase","points"],"keyword":"یلدا",
 *    "codes":["A7K2Q9",...],"purchase":{"min_amount":"500000","currency":"IRR",
 *    "entries_per":"500000"},"points_cost":100,"max_entries_per_contact":3,
 *    "weights":{"methods":{"purchase":2},"tiers":{"gold":3}},"winners":3,
 *    "prize":"...","notify_template":"raffle-win","reply_template":"raffle-entry"}
 * An entry of `count` entries weighs count x method weight x the contact's
 * tier weight (1 when not listed); a contact's draw weight is the sum of its
 * entries' weights (docs/raffles.md, "Entries and weights").
 */
#ifndef CLUBD_RAFFLE_H
#define CLUBD_RAFFLE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "draw.h"
#include "redis.h"

#define RAFFLE_ID_MAX          64   /* [A-Za-z0-9_.-] */
#define RAFFLE_NAME_MAX        200  /* bytes of UTF-8 */
#define RAFFLE_PRIZE_MAX       1000 /* bytes of UTF-8 */
#define RAFFLE_KEYWORD_MAX     64   /* bytes, as given */
#define RAFFLE_CODE_MAX        64   /* bytes, as given */
#define RAFFLE_CODES_MAX       20000
#define RAFFLE_REF_MAX         200  /* bytes of an entry's ref */
#define RAFFLE_ENTRIES_MAX     1000 /* max_entries_per_contact */
#define RAFFLE_WEIGHT_MAX      1000 /* one method's or tier's weight */
#define RAFFLE_WINNERS_MAX     1000
#define RAFFLE_TIER_WEIGHTS    16
#define RAFFLE_POINTS_COST_MAX 1000000
#define RAFFLE_TEMPLATE_MAX    64

enum raffle_method {
	RAFFLE_KEYWORD = 0,
	RAFFLE_CODE,
	RAFFLE_PURCHASE,
	RAFFLE_POINTS,
	RAFFLE_METHODS
};
/* "keyword", "code", "purchase", "points"; -1 when unknown. */
const char *raffle_method_name(enum raffle_method m);
int raffle_method_parse(const char *s);

struct raffle_tier_weight {
	char name[33];
	int64_t weight;
};

struct raffle_def {
	char id[RAFFLE_ID_MAX + 1]; /* "" when the caller assigns one */
	char *name, *prize;         /* prize may be "" */
	int64_t starts_at, ends_at; /* ms; the window is [starts_at, ends_at) */
	unsigned methods;           /* 1 << enum raffle_method */
	char *keyword;              /* as given, NULL without the keyword method */
	char *keyword_norm;         /* text_normalize(keyword) */
	char **codes;               /* normalised, unique; ncodes > 0 with the code method */
	size_t ncodes;
	int64_t min_amount_c;  /* purchase: at least this much (hundredths), 0 = any */
	char currency[4];      /* purchase: ISO 4217 */
	int64_t entries_per_c; /* purchase: one entry per this much, 0 = one per purchase */
	int64_t points_cost;   /* points: per entry */
	int64_t max_entries;   /* per contact, default 1 */
	int64_t method_weight[RAFFLE_METHODS];
	struct raffle_tier_weight tiers[RAFFLE_TIER_WEIGHTS];
	size_t ntiers;
	int64_t winners;
	char notify_tpl[RAFFLE_TEMPLATE_MAX + 1]; /* "" = winners get no message */
	char reply_tpl[RAFFLE_TEMPLATE_MAX + 1];  /* "" = texted entries get no reply */
};

/* 1 when s is 1..64 of [A-Za-z0-9_.-]. */
int raffle_id_valid(const char *s);

/*
 * Validate a definition.  0 with *out (free with raffle_def_free), or
 * -EINVAL with *field (static, or a key of def for an unknown key) and a
 * reason.  id_required 0: an absent id leaves out->id "" for the caller.
 * Unknown keys are refused.
 */
int raffle_parse(const json_t *def, int id_required, struct raffle_def **out, const char **field,
                 char *reason, size_t reason_len);
void raffle_def_free(struct raffle_def *d);

/* The canonical public definition (new reference): every field with its
 * default, times in RFC 3339, money as "500000.00"; codes are NOT in it
 * (they are secrets until used), only "codes_total". */
json_t *raffle_def_json(const struct raffle_def *d);

/* A code as it is compared: text_normalize() (digits, case), no blanks.
 * 0, or -EINVAL (empty, too long, blanks inside, not UTF-8). */
int raffle_code_normalize(const char *in, char *out, size_t outlen);

/* Entries a purchase of amount_c in currency is worth: 0 when the raffle
 * does not take purchases, the currency differs or the amount is below the
 * minimum; else 1, or amount / entries_per (0 when that is below 1). */
int64_t raffle_purchase_entries(const struct raffle_def *d, int64_t amount_c, const char *currency);

/* Weight of an entry of count entries by method for a contact in tier
 * (NULL or "" = none): count x method weight x tier weight, 0 when count
 * < 1.  Bounded by RAFFLE_ENTRIES_MAX x RAFFLE_WEIGHT_MAX^2 (1e9). */
int64_t raffle_entry_weight(const struct raffle_def *d, enum raffle_method m, const char *tier,
                            int64_t count);

/*
 * The draw over a raffle's stored weights (pairs "contact id", "weight" as
 * HGETALL gives them): canonical entries, k = min(winners, entries), the
 * winners with draw_winners(), the canonical entries text (the verifier's
 * ENTRIES_FILE: "id\tweight\n" in canonical order) and the digest.
 */
struct raffle_draw {
	size_t n, k;
	uint64_t total;
	char digest[DRAW_HEX_LEN + 1];
	char *entries_text; /* owned */
	char **winners;     /* owned, k ids, first prize first */
};
/* ids/weights: n pairs (weights as decimal text).  0, or -EINVAL (a bad
 * id or weight, a duplicate) / -ERANGE (weights overflow). */
int raffle_draw_run(const unsigned char seed[DRAW_SEED_LEN], const char *const *ids,
                    const char *const *weights, size_t n, int64_t winners, struct raffle_draw *out);
void raffle_draw_free(struct raffle_draw *d);

/* ---- entry points for other modules (through the store) ------------------ */

struct store;
struct app;

/*
 * The inbound router's question: is normalised_text (text_normalize() form)
 * a keyword or code of an open raffle, and if so, enter contact_id.
 * Idempotent per (raffle, contact, method) (the stage below passes the
 * provider's message id as the entry's ref instead, so every message
 * counts).  cb gets lua/raffle_enter.lua's 'text' answer:
 *   {'none'} (not a raffle text: pass it on), or
 *   {status, raffle id, detail, reply template JSON or '', contact HGETALL,
 *    raffle public JSON} with status 'ok' | 'dup' (detail: the entry's
 *   answer JSON) or 'refused' (detail: not_started, ended, closed,
 *   max_entries, code_used, no_contact), or NULL / an error reply (store
 *   trouble).  Everything is borrowed until the call returns.
 */
void raffle_enter_by_keyword(struct store *st, const char *contact_id, const char *normalised_text,
                             int64_t now, redis_cb cb, void *arg);

/*
 * Enter contact_id into every open raffle taking purchases that this one
 * qualifies for (currency, minimum, window; entries by entries_per, capped
 * at the contact's remaining max), idempotent per (raffle, contact,
 * event_id).  cb gets an array with one {raffle id, status, detail} per
 * raffle that takes purchases: status 'ok' | 'dup' (detail: the answer
 * JSON) | 'refused' (detail: the reason), or NULL on store trouble.
 */
void raffle_enter_by_purchase(struct store *st, const char *contact_id, int64_t amount_c,
                              const char *currency, const char *event_id, int64_t now, redis_cb cb,
                              void *arg);

/* Fill the inbound router's INBOUND_STAGE_RAFFLE slot (inbound.h) with the
 * raffle stage, which reads app's store and config at each message.  A
 * keyword or code from an unknown sender makes a lead contact first when
 * [inbound] create_leads is on; the raffle's reply_template, when set, is
 * rendered and queued on the channel the text came in on (transactional,
 * idempotent per provider message).  At start only. */
void raffle_stage_install(struct app *app);

/*
 * Queue one raffle message for a contact: render tpl_json (tplset) with
 * tpl_context(contact, event) for the channel the contact's preferences
 * choose (lane "preferred" when that is the channel rendered, else the
 * rendered kind), or for `kind` when kind >= 0, and create it with
 * store_msg_create() (extra field raffle = raffle_id).  Returns a result
 * at once ({"contact_id", "skipped": reason}) when nothing is queued, else
 * NULL and cb(arg, {"contact_id","message_id","channel"} | NULL on store
 * trouble) follows once.  Everything is borrowed for the call only.
 */
struct raffle_msg {
	const char *raffle_id, *contact_id;
	const redisReply *contact; /* HGETALL */
	const char *tpl_id, *tpl_json;
	const json_t *event;
	const char *category; /* "lottery", "transactional" */
	int kind;             /* an addr kind, or -1 for the preferred one */
	const char *idem;
	int64_t now;
};
json_t *raffle_msg_queue(struct app *app, const struct raffle_msg *m,
                         void (*cb)(void *arg, json_t *result), void *arg);

#endif
