/*
 * inbound.h - the normalised inbound message every transport produces, the
 * keyword router that decides what an inbound text means, the transports'
 * wire parsers and the router's plug-in stages.  Pure: no I/O, no Redis, no
 * clock (callers pass "now"); daemon/inbound_route.c runs the router
 * through the store.
 *
 * Classification: the text is normalised with text_normalize() (Persian and
 * Arabic-Indic digits, Arabic yeh/kaf to Persian, trim, collapse, ASCII case
 * fold; ZWNJ kept) and the WHOLE result is compared with each keyword
 * (normalised the same way): "  STOP " and "لغو" are opt-outs, "don't stop"
 * is a reply.
 *
 * Router order (inbound_route.c):
 *   1. opt-out / opt-in / help keywords (struct inbound_keywords);
 *   2. INBOUND_STAGE_SURVEY: an open survey conversation takes the text;
 *   3. INBOUND_STAGE_RAFFLE: a raffle keyword or code enters the contact;
 *   4. otherwise a reply, attributed to the last campaign touch (lc:{cid}).
 * Stages 2 and 3 are slots (inbound_stage_set) that the survey and raffle
 * modules fill at start; an empty slot is passed over.
 */
#ifndef CLUBD_INBOUND_H
#define CLUBD_INBOUND_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define INBOUND_TEXT_MAX     4096 /* bytes of UTF-8 */
#define INBOUND_ID_MAX       128  /* provider message id bytes */
#define INBOUND_PROVIDER_MAX 32
#define INBOUND_KW_MAX       32 /* keywords per list */
#define INBOUND_FORM_MAX     64 /* fields of a form body */

enum inbound_action {
	INBOUND_REPLY,
	INBOUND_OPT_OUT,
	INBOUND_OPT_IN,
	INBOUND_HELP,
	INBOUND_LINK,  /* a chat shared its phone number (Telegram contact) */
	INBOUND_TAKEN, /* a router stage (survey, raffle) took the text */
};

/* "reply", "opt_out", "opt_in", "help", "link"; INBOUND_TAKEN: "taken". */
const char *inbound_action_name(enum inbound_action a);

struct inbound {
	char channel[8];                         /* "sms" or "chat" */
	char provider[INBOUND_PROVIDER_MAX + 1]; /* "kannel", "twilio", "telegram", ... */
	char provider_id[INBOUND_ID_MAX + 1];    /* dedupe key with provider */
	char from[ADDR_MAX + 1];                 /* E.164, or the chat id */
	char to[ADDR_MAX + 1];                   /* our number / bot, as the provider gave it */
	char text[INBOUND_TEXT_MAX + 1];         /* valid UTF-8, no NUL; "" for a link */
	char phone[ADDR_MAX + 1];                /* INBOUND_LINK: the shared number, E.164 */
	int64_t received_at;                     /* ms since the epoch */
	enum inbound_action action;
	int persian;       /* the keyword that matched is not Latin (Persian) */
	const char *stage; /* INBOUND_TAKEN: the stage's name (static) */
};

/*
 * Fill in from an SMS transport's fields (borrowed; text has text_len bytes
 * and may hold anything).  received_at in ms (the caller passes now when the
 * provider gave none).  The action is left INBOUND_REPLY: classify with
 * inbound_classify_kw().  0, or -EINVAL with *field and *why set (static
 * strings) for the answer.
 */
int inbound_sms_init(struct inbound *in, const char *provider, const char *provider_id,
                     const char *from, const char *to, const char *text, size_t text_len,
                     int64_t received_at, const char *default_country, const char **field,
                     const char **why);

/* Parse a provider's received time: Unix seconds or Kannel's %t
 * "YYYY-MM-DD HH:MM[:SS]" (UTC) into ms; 0 or -1.  (RFC 3339 is store.h's
 * parse_time.) */
int inbound_parse_time(const char *s, int64_t *ms);

/* ---- keywords ------------------------------------------------------------ */

struct inbound_keywords {
	char *word[3][INBOUND_KW_MAX];       /* normalised; [0] opt-out, [1] opt-in, [2] help */
	unsigned char fa[3][INBOUND_KW_MAX]; /* the keyword is not ASCII */
	size_t n[3];
};

/* Build from three comma-separated lists (config).  A keyword that is not
 * valid UTF-8 or empty after normalising is refused.  0, or -EINVAL with a
 * reason in why.  Free with inbound_keywords_free (also after an error). */
int inbound_keywords_init(struct inbound_keywords *k, const char *stop, const char *start,
                          const char *help, char *why, size_t whylen);
void inbound_keywords_free(struct inbound_keywords *k);
/* The action for text with the lists (NULL: the built-in defaults);
 * *persian (may be NULL) is set when the matching keyword is not ASCII.
 * Invalid UTF-8 or NULL is a reply. */
enum inbound_action inbound_classify_kw(const struct inbound_keywords *k, const char *text,
                                        int *persian);
/* inbound_classify_kw(NULL, text, NULL). */
enum inbound_action inbound_classify(const char *text);
/* The confirmation language: 1 (Persian) when the keyword was Persian or
 * the contact's language is fa (fa, fa-IR, ...), else 0 (English). */
int inbound_reply_persian(int keyword_persian, const char *contact_lang);

/* ---- wire parsers (fuzzed: tests/fuzz/fuzz_inbound_*.c) ------------------- */

/* application/x-www-form-urlencoded, decoded ('+' is a space).  Values are
 * NUL-terminated; a %00 or a malformed escape is refused. */
struct inbound_form {
	size_t n;
	char *name[INBOUND_FORM_MAX];
	char *value[INBOUND_FORM_MAX];
};
/* 0, -EINVAL (malformed) or -E2BIG (more than INBOUND_FORM_MAX fields).
 * Free with inbound_form_free in every case. */
int inbound_form_parse(struct inbound_form *f, const char *body, size_t len);
/* The first value of name, or NULL. */
const char *inbound_form_get(const struct inbound_form *f, const char *name);
void inbound_form_free(struct inbound_form *f);

/* Convert len bytes in charset (ICU converter names: "UTF-8", "UTF-16BE",
 * "ISO-8859-1", "windows-1256", ...) to UTF-8 in out (cap bytes, NUL
 * added).  0 with *outlen, -EINVAL (unknown charset, malformed input) or
 * -E2BIG (does not fit). */
int inbound_to_utf8(const char *charset, const char *in, size_t len, char *out, size_t cap,
                    size_t *outlen);

/* One Kannel MO as get-url (query) or post-url (body + X-Kannel-* headers)
 * delivers it; every pointer borrowed, NULL when absent. */
struct inbound_kannel_mo {
	const char *from, *to, *ts, *id; /* %p %P %t %I */
	const char *coding;              /* %c: 0 7-bit, 1 8-bit, 2 UCS-2 */
	const char *charset;             /* %C, or the post-url body's charset */
	const char *text;                /* %a / the body, text_len bytes */
	size_t text_len;
	int binary_safe; /* the text kept NUL bytes (a POST body), so UTF-16 is possible */
};
/* Normalise a Kannel MO into in: the text converted to UTF-8 from its
 * charset (UCS-2 without a charset is UTF-16BE; 8-bit binary is refused),
 * an unreadable ts ignored (now used).  0, or -EINVAL with field/why. */
int inbound_kannel_parse(struct inbound *in, const struct inbound_kannel_mo *mo, int64_t now,
                         const char *default_country, const char **field, const char **why);

/* A Telegram Bot API Update (webhook body or one getUpdates result). */
enum inbound_tg_kind {
	INBOUND_TG_SKIP,    /* not ours to record (edits, channel posts, groups, media) */
	INBOUND_TG_TEXT,    /* a private chat's text message */
	INBOUND_TG_CONTACT, /* a private chat shared its own phone number */
};
struct inbound_tg_update {
	int64_t update_id;
	enum inbound_tg_kind kind;
	const char *skip; /* SKIP: why (static) */
	int64_t chat_id, from_id, message_id, date;
	const char *text; /* TEXT: borrowed from the JSON */
	size_t text_len;
	const char *phone; /* CONTACT: borrowed, as Telegram wrote it */
};
/* 0 with u filled, or -EINVAL when u is not an Update (no non-negative
 * integer update_id).  Borrows from update. */
int inbound_tg_parse(const json_t *update, struct inbound_tg_update *u);
/* The struct inbound of a TEXT or CONTACT update on chat channel `channel`
 * ("chat") of bot bot_id (dedupe: provider "telegram", id
 * "<bot_id>:<update_id>").  0, or -EINVAL with field/why (a text that is
 * not UTF-8 or too long, a phone that is not a number). */
int inbound_tg_inbound(struct inbound *in, const struct inbound_tg_update *u, const char *channel,
                       const char *bot_id, int64_t now, const char *default_country,
                       const char **field, const char **why);

/* Kavenegar's sms/receive.json answer: {"return":{"status":200,...},
 * "entries":[{"messageid","message","sender","receptor","date"}...]}.
 * 0 with *entries (borrowed from root, NULL when none) and *status (the
 * return.status), or -EPROTO when it is not such an answer. */
int inbound_kavenegar_answer(const json_t *root, int *status, const json_t **entries);
/* One entry into in (provider "kavenegar", id the messageid). 0, or -EINVAL
 * with field/why. */
int inbound_kavenegar_entry(struct inbound *in, const json_t *entry, int64_t now,
                            const char *default_country, const char **field, const char **why);

/* ---- router stages (surveys, raffles) --------------------------------------- */

enum inbound_stage_slot { INBOUND_STAGE_SURVEY, INBOUND_STAGE_RAFFLE, INBOUND_STAGES };

/*
 * A stage sees a text no keyword matched, in router order, and says whether
 * it takes it.  run() must call done exactly once, never from inside run,
 * with taken 1 (the stage recorded what the text meant: a survey answer, a
 * raffle entry; the router then records the message as taken by `name`
 * instead of a reply) or 0 (pass on), or a negative errno (store trouble:
 * the message is answered 503 / retried, nothing recorded).  contact_id is
 * "" for a sender no contact has yet.  Stages must be idempotent per
 * (in->provider, in->provider_id): a provider retry after a crash asks
 * again and must get the same answer without a second effect.
 */
struct inbound_stage {
	const char *name; /* "survey", "raffle": recorded as the action */
	void (*run)(void *ctx, const struct inbound *in, const char *contact_id,
	            void (*done)(void *arg, int taken), void *arg);
	void *ctx;
};
/* Fill (s != NULL) or empty a slot; s is copied.  At start only. */
void inbound_stage_set(enum inbound_stage_slot slot, const struct inbound_stage *s);
/* The slot's stage, or NULL when empty. */
const struct inbound_stage *inbound_stage_get(enum inbound_stage_slot slot);

#endif
