/*
 * desk_notify.h - the complaints desk on the libuv loop: turns every reply
 * the inbound router recorded (and no automatic stage consumed) into a
 * ticket, and notifies the ticket's team.
 *
 * Replies: the router's record script (lua/inbound.lua) adds a reply from a
 * contact whose ticket is open or assigned to that ticket itself, and puts
 * every other reply in the desk's inbox P deskin in the same script; the
 * desk keeps a cursor in the inbox (P desk:incur) and opens tickets for the
 * replies after it in one atomic script that also moves the cursor and
 * trims what it passed (lua/desk_ticket.lua 'open').  The router calls
 * desk_notify_kick() after each inbox reply (inbound_route_on_reply) and a
 * timer looks every second, so a reply recorded just before a crash (kill
 * -9 between the record and the ticket) becomes a ticket when any instance
 * looks next; an entry opened twice (two instances, a repeat after a crash)
 * stays one ticket (the open script passes entries at or before the
 * cursor).  Routing is desk.c's.
 *
 * Notifications: P deskq holds one item per (ticket, event, target kind),
 * claimed under a lease, so a crash mid-send is retried by any instance:
 * webhook targets get a signed JSON POST (X-Clubd-Timestamp,
 * X-Clubd-Signature: sha256=hex(HMAC-SHA256([api] callback_secret, ts "."
 * body)), as the webhook channel and the inbound webhook sign), retried
 * with backoff; email and chat targets get a message through
 * store_msg_create() (category transactional, idempotency key
 * desk-notify:{item}), so the message pipeline's retries and dead letters
 * apply.
 *
 * Also owns the desk's process-wide metrics: clubd_desk_tickets_total,
 * clubd_desk_notifications_total and the clubd_desk_first_response_seconds
 * histogram per team (observed by api_desk.c when an answer is recorded).
 */
#ifndef CLUBD_DESK_NOTIFY_H
#define CLUBD_DESK_NOTIFY_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "store.h"
#include "util.h"

struct desk_notify;

/* Borrows everything (cfg until desk_notify_reconfigure). */
struct desk_notify *desk_notify_new(uv_loop_t *loop, struct store *st, const struct config *cfg);
/* Start the timer and hook into the inbound router. */
void desk_notify_start(struct desk_notify *d);
void desk_notify_reconfigure(struct desk_notify *d, const struct config *cfg);
/* Look for new replies now (the router recorded one). */
void desk_notify_kick(struct desk_notify *d);
/* No new work: unhook from the router, stop the timer. */
void desk_notify_stop(struct desk_notify *d);
/* Stop, cancel the webhook posts in flight (their items are claimed again
 * after the lease), then cb once nothing is in flight; frees d. */
void desk_notify_close(struct desk_notify *d, void (*cb)(void *arg), void *arg);

/* A first response of ms for team (the histogram; process-wide). */
void desk_notify_first_response(const char *team, int64_t ms);
/* The desk's metric families: HELP, TYPE and every series. */
void desk_notify_metrics_render(struct buf *b);

#endif
