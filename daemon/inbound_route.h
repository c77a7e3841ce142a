/*
 * inbound_route.h - the inbound router run through the store: every
 * transport (webhooks in api_inbound*.c, pollers in inbound_poll.c) hands
 * a normalised struct inbound to inbound_route(), which classifies it
 * (keywords), offers it to the router stages (surveys, raffles), records it
 * with lua/inbound.lua (dedupe, audit, contact or lead, consent, campaign
 * attribution, timeline) and queues the keyword's confirmation with
 * store_msg_create().  Also owns the inbound counters for /metrics.
 */
#ifndef CLUBD_INBOUND_ROUTE_H
#define CLUBD_INBOUND_ROUTE_H

#include <stdint.h>

#include "config.h"
#include "inbound.h"
#include "store.h"
#include "util.h"

enum inbound_transport {
	INBOUND_T_KANNEL,
	INBOUND_T_WEBHOOK,
	INBOUND_T_TWILIO,
	INBOUND_T_TELEGRAM_WEBHOOK,
	INBOUND_T_TELEGRAM_POLL,
	INBOUND_T_KAVENEGAR_POLL,
	INBOUND_T_IMAP, /* email replies polled over IMAP (imap_poll.c) */
	INBOUND_T__N
};
enum inbound_outcome { INBOUND_STORED, INBOUND_DUPLICATE, INBOUND_REJECTED, INBOUND_O__N };

/* "kannel", "webhook", "twilio", "telegram_webhook", "telegram_poll", "kavenegar_poll",
 * "imap". */
const char *inbound_transport_name(enum inbound_transport t);
/* Count one message of transport t (process-wide counters). */
void inbound_count(enum inbound_transport t, enum inbound_outcome o);
uint64_t inbound_counted(enum inbound_transport t, enum inbound_outcome o);
/* clubd_inbound_total{transport,result}: HELP, TYPE and every series. */
void inbound_metrics_render(struct buf *b);

struct inbound_result {
	int err;       /* 0, or -EIO: the store did not answer (answer 503, poll again) */
	int duplicate; /* the provider id was seen before: nothing changed */
	char contact_id[ID_LEN + 1]; /* "" when recorded for audit only */
	char action[16];             /* inbound_action_name(), or "taken" */
	int created;                 /* a lead contact was created */
	char camp[80];               /* the campaign the reply was attributed to, "" */
	char msg[80];                /* the message it answers, "" */
	char confirm_id[ID_LEN + 1]; /* the confirmation queued, "" for none */
	char ticket[ID_LEN + 1];     /* the open desk ticket a reply joined, "" */
};
typedef void (*inbound_route_cb)(void *arg, const struct inbound_result *res);

/*
 * Route one message.  in is copied; st and cfg are borrowed until cb (a
 * replaced config stays alive until exit).  offset_channel (NULL = none):
 * raise P tgoff:{offset_channel} to offset in the same script as the
 * record, so a getUpdates offset never passes an update that was not
 * stored.  cb is called exactly once, later, from a Redis callback.  The
 * outcome is counted for transport t (stored or duplicate; an error is not
 * counted).
 */
void inbound_route(struct store *st, const struct config *cfg, enum inbound_transport t,
                   const struct inbound *in, const char *offset_channel, int64_t offset,
                   inbound_route_cb cb, void *arg);
/*
 * inbound_route() for a reply that names the message it answers (email:
 * In-Reply-To / References carry our Message-ID, mail_reply_to_msg()):
 * when message reply_to (an id; NULL or "" = none) was sent to the
 * sender's contact, the reply is attributed to it and to its campaign and
 * variant (m:{id} camp, var), whatever the last campaign touch is;
 * otherwise as inbound_route().
 */
void inbound_route_reply(struct store *st, const struct config *cfg, enum inbound_transport t,
                         const struct inbound *in, const char *reply_to, inbound_route_cb cb,
                         void *arg);

/*
 * People in the loop (the complaints desk, desk_notify.c): fn is called for
 * every message recorded as a reply (not a duplicate, not a keyword, not
 * taken by a stage), right before the caller's callback.  The record added
 * the reply to the contact's open ticket (res->ticket) or to the desk's
 * inbox in the same script, so fn only has to look there soon; a ticket
 * never depends on fn being called.  At start and stop only; NULL clears.
 */
typedef void (*inbound_reply_fn)(void *ctx, const struct inbound *in,
                                 const struct inbound_result *res);
void inbound_route_on_reply(inbound_reply_fn fn, void *ctx);

#endif
