/*
 * dlr_poll.h - delivery status polling for providers without callbacks
 * (Kavenegar: its delivery callbacks are set in its panel, so we ask).
 * Messages sent through such a channel wait in an "await" set in Redis; a
 * timer asks the provider about the oldest of them in batches and turns
 * final answers into delivery reports (lua/msg_report.lua).
 */
#ifndef CLUBD_DLR_POLL_H
#define CLUBD_DLR_POLL_H

#include <uv.h>

#include "channel.h"
#include "config.h"
#include "store.h"

struct dlr_poll;

/* 1 when messages sent on c need polling (the driver has no callbacks). */
int dlr_poll_wanted(const struct chan *c);

/* Borrows everything. */
struct dlr_poll *dlr_poll_new(uv_loop_t *loop, struct store *st, struct chan *chans, size_t n,
                              const struct config *cfg);
void dlr_poll_start(struct dlr_poll *p);
void dlr_poll_reconfigure(struct dlr_poll *p, const struct config *cfg);
/* No new polls (shutdown begins); what is in flight finishes. */
void dlr_poll_stop(struct dlr_poll *p);
/* Stop; cb once nothing is in flight and the timer is closed; frees p. */
void dlr_poll_close(struct dlr_poll *p, void (*cb)(void *arg), void *arg);

#endif
