/*
 * occasions_run.h - the occasion evaluator on the libuv loop.
 *
 * Every [occasions] interval each enabled rule gets a pass (its "live"
 * run) over its audience (every contact, or a segment): a contact whose
 * local today is a send day gets its message, rendered at once from the
 * rule's template and created due at the window start (or now inside the
 * window); an operator's run (POST /v1/occasions/{id}/run?date=) does the
 * same for a given day, due now.  Runs are records in Redis (lua/occ_run.lua)
 * leased to one instance at a time and advanced batch by batch with their
 * resume point, so any number of instances share the work, and one that
 * dies mid-run (kill -9) is taken over after the lease from the last saved
 * batch.  Each (rule, contact, year) is created exactly once: the message's
 * idempotency key occ:{rule}:{cid}:{year} (msg_create.lua) makes a repeated
 * batch harmless.  Consent, quiet hours and caps stay the dispatcher's.
 */
#ifndef CLUBD_OCCASIONS_RUN_H
#define CLUBD_OCCASIONS_RUN_H

#include <stddef.h>
#include <uv.h>

#include "channel.h"
#include "config.h"
#include "occasion.h"
#include "segment.h"
#include "store.h"

struct occ_runner;

/* Borrows everything (cfg until occ_runner_reconfigure); copies owner (the
 * instance's consumer name, recorded as a run's owner). */
struct occ_runner *occ_runner_new(uv_loop_t *loop, struct store *st, const struct config *cfg,
                                  const char *owner, struct chan *chans, size_t nchans);
void occ_runner_start(struct occ_runner *r);
void occ_runner_reconfigure(struct occ_runner *r, const struct config *cfg);
/* Look for work now (an operator's run was just recorded). */
void occ_runner_kick(struct occ_runner *r);
/* No new runs or batches; each run in progress stops after its current
 * batch and releases its lease so another instance (or this one after a
 * restart) continues at once. */
void occ_runner_stop(struct occ_runner *r);
/* Stop, then cb once nothing is in flight and the timer is closed; frees r. */
void occ_runner_close(struct occ_runner *r, void (*cb)(void *arg), void *arg);

/*
 * The segment a rule restricts its audience to.  cb gets err 0 with seg
 * (owned by the callee: segment_free) or NULL when the rule has none,
 * -ENOENT (the saved segment does not exist), -EINVAL (its definition does
 * not parse; reason set) or -EIO (Redis).  cb may run before this returns.
 */
typedef void (*occ_segment_cb)(void *arg, struct segment *seg, int err, const char *reason);
void occ_segment_load(struct store *st, const struct occ_rule *rule, occ_segment_cb cb, void *arg);

#endif
