/*
 * campaign_run.h - the campaign runner on the loop: starts scheduled
 * campaigns when due, fans the audience out into each running campaign's
 * recipient list (one instance at a time, by lease, resumable by cursor),
 * and pumps recipients into messages at the campaign's rate.
 */
#ifndef CLUBD_CAMPAIGN_RUN_H
#define CLUBD_CAMPAIGN_RUN_H

#include <uv.h>

#include "config.h"
#include "store.h"

struct camp_runner;

struct camp_runner *camp_runner_new(uv_loop_t *loop, struct store *st, const struct config *cfg,
                                    const char *consumer);
void camp_runner_start(struct camp_runner *r);
/* Stop the timer and every scan; cb once the timer is closed and every
 * Redis call of the runner has answered.  Then camp_runner_free(). */
void camp_runner_close(struct camp_runner *r, void (*cb)(void *arg), void *arg);
void camp_runner_free(struct camp_runner *r);
/* Wake the runner now (a launch or resume through the API). */
void camp_runner_poke(struct camp_runner *r);

#endif
