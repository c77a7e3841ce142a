/*
 * notify_msg.h - club messages (events.c: thank-you and tier messages;
 * raffle.c: entry replies and winner messages), rendered for a contact and
 * queued with store_msg_create(): notify_msg_queue() does it all, from a
 * struct notify_msg that says what differs per caller; the steps below it
 * (stored preferences, the stored template set, the first channel kind
 * with a usable rendered variant, the message fields) are exported too.
 */
#ifndef CLUBD_CLUB_NOTIFY_MSG_H
#define CLUBD_CLUB_NOTIFY_MSG_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "prefs.h"
#include "template.h"
#include "tplset.h"

/* The preferences in a contact's HGETALL reply ("prefs" field); the
 * defaults when absent or unreadable (stored prefs were validated). */
void notify_msg_prefs(const redisReply *contact, struct prefs *p);

struct app;
/* The preferences input for a message to a contact (HGETALL reply): its
 * prefs into *p, its time zone (or [contacts] default_tz), its addresses
 * and which channels this clubd runs (into enabled); the caller sets
 * requested, category and now_ms.  p and enabled must outlive in. */
void notify_msg_input(const struct app *app, const redisReply *contact, struct prefs *p,
                      int enabled[ADDR_KINDS], struct prefs_input *in);

/* Parse a stored template definition (JSON text) into *ts (caller frees
 * with tplset_free).  0, or -EINVAL with *field naming the bad part (may
 * stay NULL). */
int notify_msg_tplset(const char *tpl_json, struct tplset **ts, const char **field);

/*
 * Render ts for the first of kinds[0..n) (enum addr_kind) that has a
 * usable variant: e-mail needs a subject and a text or html body, the other
 * kinds a text.  Returns that kind with *out filled (free it with
 * tpl_rendered_free), -ENOENT when no kind has one, or the render error
 * with *failed naming the kind it failed for and terr saying why (then
 * nothing to free).
 */
int notify_msg_render(const struct tplset *ts, const int *kinds, int n, const char *lang,
                      const json_t *ctx, const char *zone, struct tpl_rendered *out,
                      struct tmpl_error *terr, const char **failed);

/* Append the message fields of out rendered for kind ("text"; for e-mail
 * also "subject" and "html") as name, value pairs to fields[nf..] (room
 * for 6 more); the new count.  The values borrow out. */
size_t notify_msg_fields(const struct tpl_rendered *out, int kind, const char **fields, size_t nf);

struct app;

/* How notify_msg_queue picks the kinds it tries to render for. */
enum notify_msg_pick {
	/* every kind the preferences allow, in the contact's preferred order
	 * then the others; the lane is the kind rendered */
	NOTIFY_MSG_ALLOWED,
	/* the kind the preferences choose for m->requested (suppressed: the
	 * reason); with requested -1 then every other kind they allow, and
	 * lane "preferred" when the chosen kind is the one rendered (the
	 * dispatcher would choose it too) */
	NOTIFY_MSG_PREFERRED,
};

/* One message to queue.  Everything is borrowed for the call only (but
 * sub, which must outlive cb). */
struct notify_msg {
	const char *sub;               /* log subsystem, static: "club", "raffle" */
	const char *log_key, *log_val; /* first in its log lines: kind="tier" */
	const char *contact_id;
	const redisReply *contact; /* HGETALL of the contact; empty = none */
	const char *tpl_id;
	const char *tpl_json;   /* stored definition; NULL or "" = missing */
	const json_t *event;    /* the render context's "event" */
	const char *category;   /* a message category name */
	enum category cat_dflt; /* the preferences' category when category is unknown */
	enum notify_msg_pick pick;
	int requested;             /* NOTIFY_MSG_PREFERRED: an addr kind or -1 */
	const char *field, *value; /* one message field before the text, or NULL */
	const char *idem;          /* the message's full idempotency key */
	long long idem_ttl_s;
	int64_t now;
	int64_t due;   /* preferences are asked at due; queued at max(due, now) */
	int with_lane; /* the result names the lane too (and, when the store
	                  finds no contact, no channel) */
};

/* result: a new reference the callee owns, or NULL when the store did not
 * confirm the message. */
typedef void (*notify_msg_cb)(void *arg, json_t *result);

/*
 * Render m for the contact and create the message.  res (stolen) is the
 * caller's start of the result.  Returns it at once when nothing is queued,
 * with "skipped": no_contact, template_missing, template_invalid,
 * no_variant, render_failed or the preference reason (opted_out:sms,
 * category_opt_out:promotional, no_channel, ...).  Otherwise returns NULL,
 * res gets "channel" (and "lane") and cb(arg, res + "message_id", or +
 * "skipped": "no_contact" when the contact went meanwhile, or NULL) follows
 * exactly once, never from inside this call.  Logs under m->sub.
 */
json_t *notify_msg_queue(struct app *app, const struct notify_msg *m, json_t *res, notify_msg_cb cb,
                         void *arg);

#endif
