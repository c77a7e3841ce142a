/*
 * sched.h - the scheduler: moves due messages from the schedule to the
 * ready streams (lua/msg_promote.lua) on a timer, and owns the retry policy
 * (clamped exponential backoff with jitter).  Several instances may run it
 * against one Redis: the move is atomic, so nothing moves twice.
 */
#ifndef CLUBD_SCHED_H
#define CLUBD_SCHED_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "store.h"

struct sched;

/* Borrows loop, st and cfg (cfg may be swapped by sched_reconfigure). */
struct sched *sched_new(uv_loop_t *loop, struct store *st, const struct config *cfg);
void sched_start(struct sched *s);
void sched_stop(struct sched *s);
void sched_reconfigure(struct sched *s, const struct config *cfg);
/* Close handles; cb once closed (then s is freed). */
void sched_close(struct sched *s, void (*cb)(void *arg), void *arg);
uint64_t sched_moved(const struct sched *s);

/*
 * Delay before attempt `attempt` + 1 after `attempt` failures (attempt >= 1):
 * min * 2^(attempt-1), clamped to [min, max], then "equal jitter": half fixed,
 * half random from rnd (any 32-bit value).  Pure.
 */
int64_t sched_backoff_ms(int attempt, int64_t min_ms, int64_t max_ms, uint32_t rnd);

/* What to do after a transient failure, given the limits.  Pure. */
enum sched_verdict { SCHED_RETRY, SCHED_GIVE_UP, SCHED_EXPIRE };
enum sched_verdict sched_after_tempfail(int attempts, int max_attempts, int64_t now_ms,
                                        int64_t expires_ms, int64_t backoff_ms,
                                        int64_t retry_after_ms, int64_t *due_ms);

#endif
