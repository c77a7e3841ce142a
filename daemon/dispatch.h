/*
 * dispatch.h - the dispatcher: ready streams -> claim -> preferences ->
 * channel -> settle.  Reads the per-lane ready streams through the consumer
 * group on its own (blocking) Redis connection, claims each message
 * atomically (lua/msg_claim.lua), applies the contact's preferences at
 * dispatch time, hands the message to the channel and writes the outcome
 * through the one setter (lua/msg_settle.lua).  Reclaims the pending work
 * of dead instances with XAUTOCLAIM.
 */
#ifndef CLUBD_DISPATCH_H
#define CLUBD_DISPATCH_H

#include <stdint.h>
#include <uv.h>

#include "channel.h"
#include "addr.h"
#include "config.h"
#include "metrics.h"
#include "store.h"

struct dispatch;

struct dispatch_stats {
	uint64_t claimed, sent, retried, failed, suppressed, deferred, expired;
	uint64_t reclaimed, late_results, settle_retries;
	int inflight;
	struct hist send_latency[ADDR_KINDS]; /* chan_send -> the channel's report */
	struct hist lag;                      /* due time -> claimed for dispatch */
};

/* Borrows everything.  reader is a dedicated connection for XREADGROUP
 * BLOCK; consumer is this instance's consumer name in the group. */
struct dispatch *dispatch_new(uv_loop_t *loop, struct store *st, struct redis *reader,
                              struct chan *chans, size_t nchans, const struct config *cfg,
                              const char *consumer);
void dispatch_start(struct dispatch *d);
void dispatch_reconfigure(struct dispatch *d, const struct config *cfg);
/* Stop reading; cb when every claimed message has settled or timeout_ms
 * passed (what is still in flight then stays leased and is reclaimed). */
void dispatch_drain(struct dispatch *d, int64_t timeout_ms, void (*cb)(void *arg), void *arg);
/* After drain: close handles, cb, free. */
void dispatch_close(struct dispatch *d, void (*cb)(void *arg), void *arg);
void dispatch_get_stats(const struct dispatch *d, struct dispatch_stats *out);
/* Redis (re)connected: recreate groups if needed, resume reading. */
void dispatch_redis_up(struct dispatch *d);

#endif
