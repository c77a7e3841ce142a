/*
 * survey_run.h - surveys at work: the inbound router's survey stage (an
 * open conversation takes the contact's next text as its answer, whatever
 * channel it came on: SMS and chat one question at a time, email all at
 * once) and the launch of a survey to an audience (a segment, or the
 * contacts a campaign was sent to), walked in batches.  Everything a
 * conversation knows is in Redis (P sv:{cid}), so it survives a restart;
 * the rules are survey.c's, the keys the scripts'.
 */
#ifndef CLUBD_SURVEY_RUN_H
#define CLUBD_SURVEY_RUN_H

#include <stdint.h>

struct app;
struct segment;
struct survey_def;

#define SURVEY_LAUNCH_BATCH 100         /* contacts per step of a launch */
#define SURVEY_MSG_MAX      (64 * 1024) /* bytes of one rendered survey message */
#define SURVEY_DEDUPE_TTL_S (7 * 86400) /* what an inbound did, for provider retries */

/* Fill the router's survey slot (inbound.h) with the stage.  app (its
 * store and config) is borrowed for the process's life.  At start only. */
void survey_stage_install(struct app *app);

struct survey_launch_counts {
	int64_t examined;   /* contacts of the audience considered */
	int64_t sent;       /* conversations opened, first message queued */
	int64_t already;    /* this survey was launched to them before: skipped */
	int64_t open;       /* another survey's conversation is open: skipped */
	int64_t suppressed; /* no channel their preferences allow for surveys */
	int64_t no_contact; /* gone meanwhile */
	int64_t failed;     /* a text that would not render, a message not queued */
};

/*
 * Launch survey d (taken) to the contacts of seg (taken; NULL = every
 * contact) or, when camp is set, to those in P eng:sent:{camp}.  kind: an
 * addr kind (sms, email, chat) or -1 for each contact's preferred channel
 * (prefs.h, category survey).  A contact with an open conversation (this
 * survey or another) is skipped and counted; so is one this survey was
 * launched to before, so launching again is safe (a lost first message is
 * queued again under the same idempotency key).  progress(arg, counts) is
 * called after every batch (may be NULL); done(arg, counts, err) exactly
 * once at the end, later; err -ENOENT when the campaign does not exist,
 * -EIO when the store failed (the counts say how far it got).
 */
typedef void (*survey_launch_cb)(void *arg, const struct survey_launch_counts *n, int err);
void survey_launch(struct app *app, struct survey_def *d, struct segment *seg, const char *camp,
                   int kind, survey_launch_cb progress, survey_launch_cb done, void *arg);

#endif
