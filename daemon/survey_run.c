/*
 * survey_run.c - surveys at work (survey_run.h): the inbound router's survey
 * stage and the launch of a survey to an audience.
 *
 * The stage, per inbound text: peek (what this provider id did before, the
 * open conversation, the survey, the contact and its answers, one round
 * trip) -> parse the answer and decide the step with survey.c -> answer
 * (survey_conv.lua applies it only while the conversation is as read: a
 * concurrent answer makes it 'stale' and we read again, at most
 * CONV_TRIES times; it remembers the step under the provider id) -> the
 * next message (next question, re-ask, thanks) with store_msg_create(),
 * idempotency key survey-reply:{provider}:{id}, on the channel the contact
 * answered on -> done.  A provider retry (or a crash between the steps)
 * finds the remembered step and only queues the message again, which the
 * idempotency key makes a no-op.
 *
 * The launch, per contact of a batch: read the contact -> the channel its
 * preferences allow for surveys (or the one asked for) -> render the first
 * message (question 1 with the intro; by email every question) -> open the
 * conversation (survey_conv.lua 'start': skipped when one is open) -> queue
 * the message (idempotency key survey:{sid}:{cid}:start).  A batch's
 * contacts run concurrently; the next batch is asked for when the last one
 * is done.
 *
 * Owns the per-message and per-launch contexts.  Knows no key names.  Never
 * logs texts, answers or addresses.  Limits: SURVEY_LAUNCH_BATCH contacts
 * in flight per launch, SURVEY_MSG_MAX bytes per message.
 */
#include "survey_run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "app.h"
#include "club/notify_msg.h"
#include "club/survey.h"
#include "inbound.h"
#include "log.h"
#include "prefs.h"
#include "segment.h"
#include "store.h"
#include "store_surveys.h"
#include "tplset.h"
#include "util.h"

#define CONV_TRIES 3 /* reads of a conversation that changed under us */
#define REF_MAX    (INBOUND_PROVIDER_MAX + INBOUND_ID_MAX + 2)

/* ---- shared ------------------------------------------------------------------ */

static const char *str_or(const char *s, const char *def)
{
	return s && *s ? s : def;
}

static const char *rep_status(const redisReply *rep)
{
	return rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0
	           ? reply_str(rep->element[0])
	           : NULL;
}

/* The survey definition from its stored JSON (NULL when unreadable). */
static struct survey_def *def_load(const char *json, const char *sid)
{
	json_t *j = json ? json_loads(json, 0, NULL) : NULL;
	struct survey_def *d = NULL;
	char field[96], reason[160];
	if (!j || survey_parse(j, 0, &d, field, sizeof field, reason, sizeof reason) < 0)
		log_err("survey", "survey=%s stored definition unusable field=%s reason=%s",
		        log_q(sid), log_q(j ? field : "json"), log_q(j ? reason : "not JSON"));
	json_decref(j);
	return d;
}

/* ---- the stage ------------------------------------------------------------------ */

struct conv {
	struct app *app;
	void (*done)(void *arg, int taken);
	void *arg;
	char cid[ID_LEN + 1];
	char ref[REF_MAX];
	char channel[8];
	char *text;
	int tries;
	struct survey_def *d;
	char sid[SURVEY_ID_MAX + 1];
	json_t *ctx;
	char lang[40];
	char zone[80];
	char msg[ID_LEN + 1];
};

static void conv_finish(struct conv *c, int taken)
{
	void (*done)(void *, int) = c->done;
	void *arg = c->arg;
	survey_free(c->d);
	json_decref(c->ctx);
	free(c->text);
	free(c);
	done(arg, taken);
}

static void conv_peek(struct conv *c);

static void on_conv_sent(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct conv *c = arg;
	const char *st = rep_status(rep);
	if (!st ||
	    (strcmp(st, "ok") != 0 && strcmp(st, "dup") != 0 && strcmp(st, "no_contact") != 0)) {
		/* the answer is recorded; the provider's retry queues the message */
		log_warnx("survey", "survey=%s contact=%s next message not queued status=%s",
		          log_q(c->sid), c->cid, st ? st : "no answer");
		conv_finish(c, -EIO);
		return;
	}
	conv_finish(c, 1);
}

/* Queue the message for an outcome "sid|outcome|q|email list" (the step
 * survey_conv.lua remembered). */
static void conv_send(struct conv *c, const char *outcome)
{
	char copy[256], *save = NULL;
	snprintf(copy, sizeof copy, "%s", outcome ? outcome : "");
	char *sid = strtok_r(copy, "|", &save);
	char *oname = sid ? strtok_r(NULL, "|", &save) : NULL;
	char *qs = oname ? strtok_r(NULL, "|", &save) : NULL;
	char *list = qs ? strtok_r(NULL, "|", &save) : NULL;
	int o = survey_outcome_parse(oname);
	int64_t q = -1;
	if (!c->d || !sid || strcmp(sid, c->sid) != 0 || o < 0 || !qs ||
	    parse_i64(qs, -1, SURVEY_QUESTIONS_MAX, &q) < 0) {
		/* the survey was deleted or changed: the answer stands, no message */
		conv_finish(c, 1);
		return;
	}
	struct survey_def *d = c->d;
	struct buf b;
	buf_init(&b, SURVEY_MSG_MAX);
	int rc;
	if (o == SURVEY_THANKS) {
		if (d->thanks.n == 0) {
			buf_free(&b);
			conv_finish(c, 1);
			return;
		}
		rc = survey_render_text(d, &d->thanks, c->lang, c->ctx, c->zone, &b);
	} else if (o == SURVEY_REASK && list && *list) {
		int which[SURVEY_QUESTIONS_MAX] = {0};
		char *s2 = NULL;
		for (char *t = strtok_r(list, ",", &s2); t; t = strtok_r(NULL, ",", &s2)) {
			int64_t i;
			if (parse_i64(t, 0, (int64_t)d->nq - 1, &i) == 0)
				which[i] = 1;
		}
		rc = survey_render_email(d, c->lang, c->ctx, c->zone, which, &b);
	} else if (q >= 0 && (size_t)q < d->nq) {
		rc = survey_render_question(d, (size_t)q, c->lang, c->ctx, c->zone, 0,
		                            o == SURVEY_REASK, &b);
	} else {
		rc = -EINVAL;
	}
	struct buf subj;
	buf_init(&subj, SURVEY_NAME_MAX * 4);
	int email = strcmp(c->channel, "email") == 0;
	if (rc == 0 && email)
		rc = survey_render_subject(d, c->lang, c->ctx, c->zone, &subj);
	if (rc < 0) {
		log_warnx("survey",
		          "survey=%s contact=%s message would not render outcome=%s err=%d",
		          log_q(c->sid), c->cid, survey_outcome_name((enum survey_outcome)o), rc);
		buf_free(&b);
		buf_free(&subj);
		conv_finish(c, 1);
		return;
	}
	int64_t now = now_ms();
	char idem[REF_MAX + 16];
	snprintf(idem, sizeof idem, "survey-reply:%s", c->ref);
	/* a reply within the conversation the contact started answering: not
	 * counted against the survey frequency cap (the first question was) */
	const char *fields[8] = {"text", b.p ? b.p : "", "survey", c->sid, "nocap", "1"};
	size_t nf = 6;
	if (email) {
		fields[nf++] = "subject";
		fields[nf++] = subj.p ? subj.p : "";
	}
	struct msg_new m = {.contact_id = c->cid,
	                    .addr_kind = "",
	                    .addr = "",
	                    .lane = c->channel,
	                    .channel = c->channel,
	                    .category = "survey",
	                    .idem = idem,
	                    .idem_ttl_s = SURVEY_DEDUPE_TTL_S,
	                    .now = now,
	                    .due = now,
	                    .expires = now + d->ttl_ms,
	                    .fields = fields,
	                    .nfields = nf};
	store_msg_create(c->app->st, &m, c->msg, on_conv_sent, c);
	buf_free(&b);
	buf_free(&subj);
}

static void on_conv_answered(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct conv *c = arg;
	const char *st = rep_status(rep);
	if (st && strcmp(st, "stale") == 0) {
		if (++c->tries < CONV_TRIES) {
			survey_free(c->d);
			c->d = NULL;
			json_decref(c->ctx);
			c->ctx = NULL;
			conv_peek(c);
			return;
		}
		log_warnx("survey", "survey=%s contact=%s conversation kept changing",
		          log_q(c->sid), c->cid);
		conv_finish(c, -EIO);
		return;
	}
	if (!st || rep->elements < 2 || (strcmp(st, "ok") != 0 && strcmp(st, "dup") != 0)) {
		if (rep && rep->type == REDIS_REPLY_ERROR)
			log_err("survey", "answer failed error=%s", log_q(rep->str));
		conv_finish(c, -EIO);
		return;
	}
	conv_send(c, reply_str(rep->element[1]));
}

static void rec_set(struct store_survey_rec *r, const struct survey_question *q,
                    enum survey_record rec, const struct survey_answer *a)
{
	r->qid = q->id;
	if (rec == SURVEY_REC_INVALID) {
		r->kind = "invalid";
		r->value = "invalid";
	} else {
		r->kind = q->type == SURVEY_Q_TEXT ? "text" : "num";
		r->value = a->text;
	}
}

/* Decide the step for the open conversation conv (HGETALL sv:) with the
 * recorded answers (HGETALL sva:) and apply it. */
static void conv_answer(struct conv *c, const redisReply *conv, const redisReply *answers)
{
	struct survey_def *d = c->d;
	const char *mode = str_or(hash_get(conv, "mode"), "conv");
	const char *qs = str_or(hash_get(conv, "q"), "0");
	const char *rs = str_or(hash_get(conv, "retried"), "0");
	const char *started = str_or(hash_get(conv, "started"), "");
	int64_t q = 0;
	int retried = strcmp(rs, "1") == 0;
	if (parse_i64(qs, 0, (int64_t)d->nq - 1, &q) < 0) {
		log_warnx("survey", "survey=%s contact=%s conversation past the last question",
		          log_q(c->sid), c->cid);
		conv_finish(c, 0);
		return;
	}
	struct store_survey_rec recs[SURVEY_QUESTIONS_MAX];
	size_t nrecs = 0;
	struct survey_step step;
	char outcome[256];
	struct survey_answer *ans = xcalloc(d->nq, sizeof *ans);
	if (strcmp(mode, "email") == 0) {
		char *texts[SURVEY_QUESTIONS_MAX];
		const struct survey_answer *given[SURVEY_QUESTIONS_MAX];
		int have[SURVEY_QUESTIONS_MAX];
		enum survey_record rec[SURVEY_QUESTIONS_MAX];
		survey_email_answers(d, c->text, texts);
		for (size_t i = 0; i < d->nq; i++) {
			have[i] = hash_get(answers, d->q[i].id) != NULL;
			given[i] = NULL;
			if (texts[i]) {
				survey_answer_parse(&d->q[i], texts[i], &ans[i]);
				given[i] = &ans[i];
			}
		}
		survey_email_answers_free(d, texts);
		survey_step_email(d, have, given, retried, rec, &step);
		size_t off = (size_t)snprintf(outcome, sizeof outcome, "%s|%s|%d|", c->sid,
		                              survey_outcome_name(step.outcome), step.next_q);
		for (size_t i = 0; i < d->nq; i++) {
			if (rec[i] != SURVEY_REC_NONE)
				rec_set(&recs[nrecs++], &d->q[i], rec[i], &ans[i]);
			else if (step.outcome == SURVEY_REASK && !have[i] && off < sizeof outcome)
				off +=
				    (size_t)snprintf(outcome + off, sizeof outcome - off, "%s%zu",
				                     outcome[off - 1] == '|' ? "" : ",", i);
		}
	} else {
		enum survey_record rec;
		survey_answer_parse(&d->q[q], c->text, &ans[0]);
		survey_step_conv(d, (int)q, retried, ans[0].valid, &rec, &step);
		if (rec != SURVEY_REC_NONE)
			rec_set(&recs[nrecs++], &d->q[q], rec, &ans[0]);
		snprintf(outcome, sizeof outcome, "%s|%s|%d|", c->sid,
		         survey_outcome_name(step.outcome), step.next_q < 0 ? -1 : step.next_q);
	}
	char qbuf[16], rbuf[4];
	snprintf(qbuf, sizeof qbuf, "%s", qs);
	snprintf(rbuf, sizeof rbuf, "%s", rs);
	struct store_survey_answer a = {.cid = c->cid,
	                                .ref = c->ref,
	                                .sid = c->sid,
	                                .dedupe_ttl_s = SURVEY_DEDUPE_TTL_S,
	                                .now = now_ms(),
	                                .expect_q = qbuf,
	                                .expect_retried = rbuf,
	                                .expect_started = started,
	                                .next_q = step.next_q,
	                                .next_retried = step.retried,
	                                .outcome = outcome,
	                                .channel = c->channel,
	                                .timeline_max = c->app->cfg->contacts_timeline_max,
	                                .recs = recs,
	                                .nrecs = nrecs};
	log_info("survey", "survey=%s contact=%s mode=%s q=%lld step=%s recorded=%zu",
	         log_q(c->sid), c->cid, mode, (long long)q, survey_outcome_name(step.outcome),
	         nrecs);
	store_survey_answer(c->app->st, &a, on_conv_answered, c);
	free(ans);
}

static void on_conv_peek(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct conv *c = arg;
	if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 6) {
		if (rep && rep->type == REDIS_REPLY_ERROR)
			log_err("survey", "peek failed error=%s", log_q(rep->str));
		conv_finish(c, -EIO);
		return;
	}
	const char *did = reply_str(rep->element[0]);
	const redisReply *conv = rep->element[1];
	const char *sid = reply_str(rep->element[2]);
	const char *json = reply_str(rep->element[3]);
	const redisReply *contact = rep->element[4];
	const redisReply *answers = rep->element[5];
	int replay = did && *did;
	if (!sid || !*sid ||
	    (!replay && (conv->type != REDIS_REPLY_ARRAY || conv->elements == 0))) {
		conv_finish(c, 0); /* no open conversation */
		return;
	}
	snprintf(c->sid, sizeof c->sid, "%s", sid);
	if (!json || !*json) {
		/* the survey is gone: a replay stays taken, anything else is a reply */
		conv_finish(c, replay ? 1 : 0);
		return;
	}
	c->d = def_load(json, sid);
	if (!c->d) {
		conv_finish(c, replay ? 1 : 0);
		return;
	}
	const struct config *cfg = c->app->cfg;
	snprintf(c->lang, sizeof c->lang, "%s",
	         str_or(hash_get(contact, "lang"), cfg->contacts_default_lang));
	snprintf(c->zone, sizeof c->zone, "%s",
	         str_or(hash_get(contact, "tz"), cfg->contacts_default_tz));
	c->ctx = tpl_context(contact, NULL, NULL);
	if (replay) {
		conv_send(c, did);
		return;
	}
	conv_answer(c, conv, answers);
}

static void conv_peek(struct conv *c)
{
	store_survey_peek(c->app->st, c->cid, c->ref, on_conv_peek, c);
}

static void stage_run(void *ctx, const struct inbound *in, const char *contact_id,
                      void (*done)(void *arg, int taken), void *arg)
{
	struct conv *c = xcalloc(1, sizeof *c);
	c->app = ctx;
	c->done = done;
	c->arg = arg;
	/* "" (an unknown sender) has no conversation: the peek finds none and
	 * answers from a Redis callback, never from inside run */
	snprintf(c->cid, sizeof c->cid, "%s", contact_id && id_valid(contact_id) ? contact_id : "");
	snprintf(c->ref, sizeof c->ref, "%s:%s", in->provider, in->provider_id);
	snprintf(c->channel, sizeof c->channel, "%s", in->channel);
	c->text = xstrdup(in->text);
	conv_peek(c);
}

void survey_stage_install(struct app *app)
{
	struct inbound_stage s = {.name = "survey", .run = stage_run, .ctx = app};
	inbound_stage_set(INBOUND_STAGE_SURVEY, &s);
}

/* ---- the launch --------------------------------------------------------------------- */

struct launch {
	struct app *app;
	struct survey_def *d;
	struct segment *seg;
	struct segment_scan *sc;
	char camp[SURVEY_ID_MAX + 1];
	char cursor[32]; /* SSCAN cursor of eng:sent:{camp} */
	int kind;
	survey_launch_cb progress, done;
	void *arg;
	struct survey_launch_counts n;
	size_t pending; /* contacts of the batch not finished */
	int last;       /* the audience has no more batches */
	int err;
};

struct target {
	struct launch *l;
	char cid[ID_LEN + 1];
	char kind[8];
	char *text, *subject;
	char msg[ID_LEN + 1];
	int counted_already;
};

static void launch_next(struct launch *l);

static void launch_finish(struct launch *l)
{
	log_info("survey",
	         "survey=%s launch examined=%lld sent=%lld already=%lld open=%lld suppressed=%lld "
	         "no_contact=%lld failed=%lld err=%d",
	         log_q(l->d->id), (long long)l->n.examined, (long long)l->n.sent,
	         (long long)l->n.already, (long long)l->n.open, (long long)l->n.suppressed,
	         (long long)l->n.no_contact, (long long)l->n.failed, l->err);
	l->done(l->arg, &l->n, l->err);
	segment_scan_free(l->sc);
	segment_free(l->seg);
	survey_free(l->d);
	free(l);
}

/* The batch is over when its last contact is done. */
static void batch_check(struct launch *l)
{
	if (l->pending > 0)
		return;
	if (l->progress)
		l->progress(l->arg, &l->n, 0);
	if (l->last || l->err) {
		launch_finish(l);
		return;
	}
	launch_next(l);
}

static void target_done(struct target *t)
{
	struct launch *l = t->l;
	free(t->text);
	free(t->subject);
	free(t);
	l->pending--;
	batch_check(l);
}

static void on_target_msg(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct target *t = arg;
	const char *st = rep_status(rep);
	if (st && (strcmp(st, "ok") == 0 || strcmp(st, "dup") == 0)) {
		if (!t->counted_already)
			t->l->n.sent++;
	} else {
		log_warnx("survey", "survey=%s contact=%s first message not queued status=%s",
		          log_q(t->l->d->id), t->cid, st ? st : "no answer");
		t->l->n.failed++;
		if (!rep)
			t->l->err = -EIO;
	}
	target_done(t);
}

static void target_send(struct target *t)
{
	struct launch *l = t->l;
	int64_t now = now_ms();
	char idem[SURVEY_ID_MAX + ID_LEN + 16];
	snprintf(idem, sizeof idem, "survey:%s:%s:start", l->d->id, t->cid);
	const char *fields[] = {"text",   t->text,   "survey",
	                        l->d->id, "subject", t->subject ? t->subject : ""};
	struct msg_new m = {.contact_id = t->cid,
	                    .addr_kind = "",
	                    .addr = "",
	                    .lane = t->kind,
	                    .channel = t->kind,
	                    .category = "survey",
	                    .idem = idem,
	                    .idem_ttl_s = l->d->ttl_ms / 1000 + 86400,
	                    .now = now,
	                    .due = now,
	                    .expires = now + l->d->ttl_ms,
	                    .fields = fields,
	                    .nfields = t->subject ? 6 : 4};
	store_msg_create(l->app->st, &m, t->msg, on_target_msg, t);
}

static void on_target_started(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct target *t = arg;
	struct launch *l = t->l;
	const char *st = rep_status(rep);
	if (!st) {
		if (rep && rep->type == REDIS_REPLY_ERROR)
			log_err("survey", "start failed error=%s", log_q(rep->str));
		l->err = -EIO;
		target_done(t);
	} else if (strcmp(st, "ok") == 0) {
		target_send(t);
	} else if (strcmp(st, "already") == 0) {
		l->n.already++;
		t->counted_already = 1;
		/* unanswered: queue the first message again (a no-op when it was) */
		if (rep->elements > 1 && rep->element[1]->type == REDIS_REPLY_INTEGER &&
		    rep->element[1]->integer == 1)
			target_send(t);
		else
			target_done(t);
	} else if (strcmp(st, "open") == 0) {
		l->n.open++;
		target_done(t);
	} else if (strcmp(st, "no_contact") == 0) {
		l->n.no_contact++;
		target_done(t);
	} else {
		/* 'gone': the survey was deleted during the launch */
		l->err = -ENOENT;
		target_done(t);
	}
}

/* The channel for a survey to contact c: l->kind or the preferred one;
 * -1 when the preferences allow none (why says why). */
static int pick_kind(struct launch *l, const redisReply *c, char *why, size_t whylen)
{
	struct prefs p;
	int enabled[ADDR_KINDS];
	struct prefs_input in;
	notify_msg_input(l->app, c, &p, enabled, &in);
	in.requested = l->kind;
	in.category = CAT_SURVEY;
	in.now_ms = now_ms();
	struct prefs_decision dec;
	prefs_decide(&in, &dec);
	if (dec.action == PREFS_SUPPRESS) {
		snprintf(why, whylen, "%s", dec.reason);
		return -1;
	}
	return dec.channel;
}

static void on_target_contact(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct target *t = arg;
	struct launch *l = t->l;
	const struct config *cfg = l->app->cfg;
	if (!rep || rep->type != REDIS_REPLY_ARRAY) {
		l->err = -EIO;
		target_done(t);
		return;
	}
	if (rep->elements == 0) {
		l->n.no_contact++;
		target_done(t);
		return;
	}
	char why[96] = "";
	int kind = pick_kind(l, rep, why, sizeof why);
	if (kind < 0) {
		log_debug("survey", "survey=%s contact=%s suppressed reason=%s", log_q(l->d->id),
		          t->cid, why);
		l->n.suppressed++;
		target_done(t);
		return;
	}
	snprintf(t->kind, sizeof t->kind, "%s", addr_kind_name((enum addr_kind)kind));
	const char *lang = str_or(hash_get(rep, "lang"), cfg->contacts_default_lang);
	const char *zone = str_or(hash_get(rep, "tz"), cfg->contacts_default_tz);
	json_t *ctx = tpl_context(rep, NULL, NULL);
	struct buf b, s;
	buf_init(&b, SURVEY_MSG_MAX);
	buf_init(&s, SURVEY_NAME_MAX * 4);
	int rc;
	if (kind == ADDR_EMAIL) {
		rc = survey_render_email(l->d, lang, ctx, zone, NULL, &b);
		if (rc == 0)
			rc = survey_render_subject(l->d, lang, ctx, zone, &s);
	} else {
		rc = survey_render_question(l->d, 0, lang, ctx, zone, 1, 0, &b);
	}
	json_decref(ctx);
	if (rc < 0 || !b.p) {
		log_warnx("survey", "survey=%s contact=%s first message would not render err=%d",
		          log_q(l->d->id), t->cid, rc);
		buf_free(&b);
		buf_free(&s);
		l->n.failed++;
		target_done(t);
		return;
	}
	t->text = buf_steal(&b);
	t->subject = kind == ADDR_EMAIL ? buf_steal(&s) : NULL;
	buf_free(&s);
	struct store_survey_start ss = {.sid = l->d->id,
	                                .cid = t->cid,
	                                .channel = t->kind,
	                                .mode = kind == ADDR_EMAIL ? "email" : "conv",
	                                .now = now_ms(),
	                                .ttl_ms = l->d->ttl_ms};
	store_survey_start(l->app->st, &ss, on_target_started, t);
}

static void launch_ids(struct launch *l, const char *const *ids, size_t n)
{
	l->pending += n; /* all of them first: a fast answer must not end the batch */
	for (size_t i = 0; i < n; i++) {
		struct target *t = xcalloc(1, sizeof *t);
		t->l = l;
		snprintf(t->cid, sizeof t->cid, "%s", ids[i]);
		l->n.examined++;
		store_contact_get(l->app->st, t->cid, on_target_contact, t);
	}
}

static void on_seg_batch(struct segment_scan *sc, void *arg, const char *const *ids, size_t n,
                         const char *cursor, int done, int err)
{
	(void)sc;
	(void)cursor;
	struct launch *l = arg;
	if (err) {
		l->err = -EIO;
		l->last = 1;
		batch_check(l);
		return;
	}
	l->last = done;
	size_t k = 0;
	const char *valid[SURVEY_LAUNCH_BATCH];
	for (size_t i = 0; i < n; i++) {
		if (!id_valid(ids[i]))
			continue;
		valid[k++] = ids[i];
		if (k == ARRAY_SIZE(valid)) {
			launch_ids(l, valid, k);
			k = 0;
		}
	}
	l->pending++; /* hold the batch open while it is handed out */
	launch_ids(l, valid, k);
	l->pending--;
	batch_check(l);
}

static void on_camp_page(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct launch *l = arg;
	if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
	    rep->element[0]->type != REDIS_REPLY_INTEGER) {
		l->err = -EIO;
		l->last = 1;
		batch_check(l);
		return;
	}
	if (rep->element[0]->integer == 0 || rep->elements < 3) {
		l->err = -ENOENT;
		l->last = 1;
		batch_check(l);
		return;
	}
	const char *cur = reply_str(rep->element[1]);
	snprintf(l->cursor, sizeof l->cursor, "%s", cur ? cur : "0");
	l->last = strcmp(l->cursor, "0") == 0;
	const redisReply *ids = rep->element[2];
	l->pending++;
	for (size_t i = 0; ids->type == REDIS_REPLY_ARRAY && i < ids->elements; i++) {
		const char *id = reply_str(ids->element[i]);
		if (id && id_valid(id))
			launch_ids(l, &id, 1);
	}
	l->pending--;
	batch_check(l);
}

static void launch_next(struct launch *l)
{
	if (l->camp[0]) {
		store_survey_camp_sent(l->app->st, l->camp, l->cursor, SURVEY_LAUNCH_BATCH,
		                       on_camp_page, l);
		return;
	}
	if (!l->sc)
		l->sc = segment_scan_start(l->app->st, l->seg, now_ms(), "", SURVEY_LAUNCH_BATCH,
		                           on_seg_batch, l);
	else
		segment_scan_next(l->sc);
}

void survey_launch(struct app *app, struct survey_def *d, struct segment *seg, const char *camp,
                   int kind, survey_launch_cb progress, survey_launch_cb done, void *arg)
{
	struct launch *l = xcalloc(1, sizeof *l);
	l->app = app;
	l->d = d;
	l->seg = seg;
	snprintf(l->camp, sizeof l->camp, "%s", camp ? camp : "");
	snprintf(l->cursor, sizeof l->cursor, "0");
	l->kind = kind;
	l->progress = progress;
	l->done = done;
	l->arg = arg;
	log_info("survey", "survey=%s launch source=%s channel=%s", log_q(d->id),
	         camp ? "campaign" : "segment", kind < 0 ? "preferred" : addr_kind_name(kind));
	launch_next(l);
}
