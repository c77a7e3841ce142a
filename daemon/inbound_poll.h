/*
 * inbound_poll.h - the inbound transports' runtime state and pollers:
 *   - the secrets the webhooks check (Twilio's auth token, the Bot API's
 *     secret token) and the chat bot's id, read once at start;
 *   - Telegram/Bale getUpdates long polling ([inbound] chat = poll), the
 *     offset kept in Redis (P tgoff:{channel}) and raised only together
 *     with the stored update, so nothing is lost or recorded twice across
 *     restarts;
 *   - Kavenegar sms/receive.json polling ([inbound] kavenegar_poll).
 * Every message goes through inbound_route().
 */
#ifndef CLUBD_INBOUND_POLL_H
#define CLUBD_INBOUND_POLL_H

#include <stddef.h>
#include <uv.h>

#include "channel.h"
#include "config.h"
#include "store.h"

struct inbound_poll;

/*
 * Check [inbound] against the configured channels (chat = webhook|poll
 * needs [channel.chat] with driver telegram, webhook its secret,
 * kavenegar_poll a kavenegar [channel.sms]) and read the secrets.  For
 * --check-config: 0, or -1 with err.  Nothing is kept.
 */
int inbound_poll_check(const struct config *cfg, const struct chan *chans, size_t n,
                       struct cfg_error *err);

/* The same checks, keeping what the transports need.  NULL with err on an
 * error.  Borrows loop, st, chans and cfg (a reload's config is passed to
 * inbound_poll_reconfigure). */
struct inbound_poll *inbound_poll_new(uv_loop_t *loop, struct store *st, struct chan *chans,
                                      size_t n, const struct config *cfg, struct cfg_error *err);
/* Start the pollers that are configured. */
void inbound_poll_start(struct inbound_poll *p);
/* The config routed messages see from now on (keywords, replies, leads). */
void inbound_poll_reconfigure(struct inbound_poll *p, const struct config *cfg);
/* No new polls (shutdown begins); what is in flight finishes. */
void inbound_poll_stop(struct inbound_poll *p);
/* Cancel what is in flight, then cb once every handle is closed and no
 * store call is pending; frees p.  NULL p: cb at once. */
void inbound_poll_close(struct inbound_poll *p, void (*cb)(void *arg), void *arg);

/* Twilio's auth token for X-Twilio-Signature, or NULL when none is set. */
const char *inbound_poll_twilio_token(const struct inbound_poll *p);
/* For POST /v1/inbound/telegram/{channel}: 0 with the secret and the bot id
 * when channel has chat = webhook, else -ENOENT. */
int inbound_poll_chat_webhook(const struct inbound_poll *p, const char *channel,
                              const char **secret, const char **bot_id);

#endif
