/*
 * dispatch.c - ready streams -> claim -> preferences -> channel -> settle.
 *
 * Owns the jobs (one per claimed message), the read loop on the dedicated
 * reader connection, the per-channel wait queues (a message whose channel
 * is at its window waits here, never in Redis), the settle retry list and
 * the reclaim timer.  Never writes message state except through the claim
 * and settle scripts, and never decides a retry delay itself: that is
 * sched_after_tempfail().
 *
 * Limits: at most [dispatch] max_inflight jobs exist at once (read, claimed
 * or settling); the read COUNT is the free room.  A settle whose reply is
 * lost is retried every 500 ms until Redis answers: the script is a
 * compare-and-set on (state, owner), so a retry that already applied
 * answers "conflict" and nothing happens twice.
 */
#include "dispatch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "dispatch_camp.h"
#include "links.h"
#include "dlr_poll.h"
#include "log.h"
#include "prefs.h"
#include "privacy.h"
#include "sched.h"
#include "text.h"
#include "tz.h"
#include "util.h"

#define LANES_MAX       (CFG_CHANNEL_KINDS + 1)
#define SETTLE_RETRY_MS 500
#define SETTLE_BATCH    128

struct job {
	struct dispatch *d;
	struct job *prev, *next; /* all jobs */
	struct job *qnext;       /* wait queue or retry list */
	char id[64];
	char sid[64];
	char lane[16];
	char owner[128];
	int attempts;
	int kind; /* resolved channel, -1 before */
	int64_t expires, created;
	int64_t lease;      /* ms: another instance may take the message over after this */
	int64_t due;        /* ms, from the message */
	int64_t send_start; /* mono ms when handed to the channel */
	char *contact_id, *channel_req, *category, *text, *subject, *html, *lang, *tz, *prefs;
	char *camp, *var, *lt, *ld; /* campaign message: rendered here, at local time lt on ld */
	json_t *ctx;                /* campaign message: the render context */
	int have_contact;
	char *addr[ADDR_KINDS];
	struct chan *ch;
	struct chan_msg cm;
	struct argv settle;  /* prepared settle call, kept for retries */
	const char *outcome; /* "sent", "scheduled", ... for stats */
	int deferred;
	int settle_tries; /* settle calls whose answer was lost */
};

struct dispatch {
	uv_loop_t *loop;
	struct store *st;
	struct redis *reader;
	struct chan *chans;
	size_t nchans;
	const struct config *cfg;
	char *consumer;
	uint64_t owner_seq;

	int running, closing;
	int reading, reclaiming; /* commands in flight on behalf of d */
	int reclaim_more;        /* a reclaim came back full */
	int cmds;                /* claim/settle commands in flight */
	int njobs;
	struct job *jobs;
	struct job *wait_head[ADDR_KINDS], *wait_tail[ADDR_KINDS];
	struct job *retry_head;
	struct batch *claim_retry; /* claims whose answer was lost */
	uv_timer_t claim_timer;
	struct job *settle_head, *settle_tail; /* queued for the next settle call */
	int settle_count;
	uv_idle_t settle_idle;

	uv_timer_t read_timer, reclaim_timer, retry_timer, drain_timer;
	int handles_open;
	void (*drain_cb)(void *);
	void *drain_arg;
	void (*close_cb)(void *);
	void *close_arg;

	struct dispatch_stats stats;
	struct camp_cache *camps;
	char caps[PREFS_CAPS_MAX * 48]; /* "category:window_ms:max,..." for msg_claim */
	struct prefs_window default_quiet;
	int channel_enabled[ADDR_KINDS];
};

static void read_more(struct dispatch *d);
static void job_send(struct job *j);
static void camp_render_and_reserve(struct job *j);
static void settle_issue(struct job *j);
static void check_drain(struct dispatch *d);
static void check_close(struct dispatch *d);
static void on_retry_timer(uv_timer_t *t);

static const char *lane_of_kind(int k)
{
	return addr_kind_name((enum addr_kind)k);
}

/* Jobs ------------------------------------------------------------------- */

static struct job *job_new(struct dispatch *d, const char *msg_id, const char *sid,
                           const char *lane)
{
	struct job *j = xcalloc(1, sizeof *j);
	j->d = d;
	j->kind = -1;
	snprintf(j->id, sizeof j->id, "%s", msg_id);
	snprintf(j->sid, sizeof j->sid, "%s", sid);
	snprintf(j->lane, sizeof j->lane, "%s", lane);
	argv_init(&j->settle);
	j->next = d->jobs;
	if (d->jobs)
		d->jobs->prev = j;
	d->jobs = j;
	d->njobs++;
	d->stats.inflight = d->njobs;
	return j;
}

static void job_free(struct job *j)
{
	struct dispatch *d = j->d;
	if (j->prev)
		j->prev->next = j->next;
	else
		d->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	d->njobs--;
	d->stats.inflight = d->njobs;
	free(j->contact_id);
	free(j->channel_req);
	free(j->category);
	free(j->text);
	free(j->subject);
	free(j->html);
	free(j->lang);
	free(j->tz);
	free(j->prefs);
	free(j->camp);
	free(j->var);
	free(j->lt);
	free(j->ld);
	json_decref(j->ctx);
	for (int k = 0; k < ADDR_KINDS; k++)
		free(j->addr[k]);
	argv_free(&j->settle);
	free(j);
}

/* A job left the pipeline: make room, maybe finish a drain or close. */
static void job_done(struct job *j)
{
	struct dispatch *d = j->d;
	job_free(j);
	if (d->closing) {
		check_close(d);
		return;
	}
	check_drain(d);
	read_more(d);
}

static char *dup_or_null(const char *s)
{
	return s && *s ? xstrdup(s) : NULL;
}

/* Settle ----------------------------------------------------------------- */

/* Prepare the settle call: from sending to `to`; pairs follow. */
static void settle_prepare(struct job *j, const char *to, const char *reason, int64_t due)
{
	struct dispatch *d = j->d;
	struct argv *a = &j->settle;
	argv_free(a);
	argv_init(a);
	argv_add(a, j->id);
	argv_addll(a, now_ms());
	argv_add(a, "sending");
	argv_add(a, to);
	argv_add(a, j->owner);
	argv_add(a, reason ? reason : "");
	argv_addll(a, d->cfg->contacts_timeline_max);
	argv_addll(a, due);
	argv_add(a, STORE_GROUP);
	if (d->cfg->sched_retention_ms > 0) {
		argv_add(a, "!ttl");
		argv_addll(a, (d->cfg->sched_retention_ms + 999) / 1000);
	}
	j->outcome = to;
}

/* One settle result for one job. */
static void settle_result(struct job *j, const redisReply *rep)
{
	struct dispatch *d = j->d;
	const char *status =
	    rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 ? reply_str(rep->element[0]) : NULL;
	if (status && strcmp(status, "ok") == 0) {
		const char *o = j->outcome;
		if (strcmp(o, "sent") == 0)
			d->stats.sent++;
		else if (strcmp(o, "scheduled") == 0)
			j->deferred ? d->stats.deferred++ : d->stats.retried++;
		else if (strcmp(o, "failed") == 0)
			d->stats.failed++;
		else if (strcmp(o, "suppressed") == 0)
			d->stats.suppressed++;
		else if (strcmp(o, "expired") == 0)
			d->stats.expired++;
	} else if (status && strcmp(status, "conflict") == 0 && j->settle_tries > 0 &&
	           rep->elements > 1 && reply_str(rep->element[1]) &&
	           strcmp(reply_str(rep->element[1]), j->outcome) == 0) {
		/* A retried settle whose first call did apply (its answer was
		 * lost with the connection). */
		log_debug("dispatch", "msg=%s settle had applied before the retry", j->id);
	} else if (status && strcmp(status, "conflict") == 0) {
		/* Our lease ran out and another claim took the message. */
		d->stats.late_results++;
		log_notice("dispatch", "msg=%s late result dropped outcome=%s state=%s", j->id,
		           j->outcome, rep->elements > 1 ? log_q(reply_str(rep->element[1])) : "?");
	} else {
		log_err("dispatch", "msg=%s settle failed reply=%s", j->id,
		        log_q(rep->type == REDIS_REPLY_ERROR ? rep->str : status));
	}
	job_done(j);
}

struct batch {
	struct dispatch *d;
	struct batch *next; /* in the claim retry list */
	int n;
	int prepared; /* owner tokens and lease are set: a retry reuses them */
	struct job *jobs[];
};

static struct batch *batch_new(struct dispatch *d, int n)
{
	struct batch *b = xmalloc(sizeof *b + sizeof(struct job *) * (size_t)n);
	b->d = d;
	b->next = NULL;
	b->n = 0;
	b->prepared = 0;
	return b;
}

static void retry_later(struct job *j)
{
	struct dispatch *d = j->d;
	d->stats.settle_retries++;
	j->settle_tries++;
	j->qnext = d->retry_head;
	d->retry_head = j;
	if (!uv_is_active((uv_handle_t *)&d->retry_timer))
		uv_timer_start(&d->retry_timer, on_retry_timer, SETTLE_RETRY_MS, 0);
}

static void on_settled(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct batch *b = arg;
	struct dispatch *d = b->d;
	d->cmds--;
	int ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == (size_t)b->n;
	if (rep && !ok)
		log_err("dispatch", "settle batch failed n=%d reply=%s", b->n,
		        log_q(rep->type == REDIS_REPLY_ERROR ? rep->str : "malformed"));
	for (int i = 0; i < b->n; i++) {
		struct job *j = b->jobs[i];
		if (ok)
			settle_result(j, rep->element[i]);
		else if (d->closing)
			job_done(j);
		else
			retry_later(j); /* outcome unknown: repeat the compare-and-set */
	}
	free(b);
}

/* Send every queued settle in one script call. */
static void settle_flush(struct dispatch *d)
{
	uv_idle_stop(&d->settle_idle);
	if (!d->settle_head)
		return;
	struct batch *b = batch_new(d, d->settle_count);
	struct argv a;
	argv_init(&a);
	for (struct job *j = d->settle_head; j; j = j->qnext) {
		argv_addll(&a, j->settle.n);
		for (int i = 0; i < j->settle.n; i++)
			argv_addn(&a, j->settle.v[i], j->settle.len[i]);
		b->jobs[b->n++] = j;
	}
	for (int i = 0; i < b->n; i++)
		b->jobs[i]->qnext = NULL;
	d->settle_head = d->settle_tail = NULL;
	d->settle_count = 0;
	d->cmds++;
	store_eval(d->st, SCRIPT_MSG_SETTLE, &a, on_settled, b);
	argv_free(&a);
}

static void on_settle_idle(uv_idle_t *h)
{
	settle_flush(container_of(h, struct dispatch, settle_idle));
}

/* Queue a prepared settle; everything queued in one loop iteration goes to
 * Redis as one call (or sooner, at SETTLE_BATCH). */
static void settle_issue(struct job *j)
{
	struct dispatch *d = j->d;
	j->qnext = NULL;
	if (d->settle_tail)
		d->settle_tail->qnext = j;
	else
		d->settle_head = j;
	d->settle_tail = j;
	if (++d->settle_count >= SETTLE_BATCH)
		settle_flush(d);
	else if (!uv_is_active((uv_handle_t *)&d->settle_idle))
		uv_idle_start(&d->settle_idle, on_settle_idle);
}

static void on_retry_timer(uv_timer_t *t)
{
	struct dispatch *d = container_of(t, struct dispatch, retry_timer);
	if (!redis_is_up(d->st->r)) {
		uv_timer_start(&d->retry_timer, on_retry_timer, SETTLE_RETRY_MS, 0);
		return;
	}
	struct job *j = d->retry_head;
	d->retry_head = NULL;
	while (j) {
		struct job *next = j->qnext;
		settle_issue(j);
		j = next;
	}
}

static void settle(struct job *j, const char *to, const char *reason, int64_t due)
{
	settle_prepare(j, to, reason, due);
	settle_issue(j);
}

/* Sending ---------------------------------------------------------------- */

static void wake_waiters(struct dispatch *d, int kind)
{
	while (d->wait_head[kind]) {
		struct job *j = d->wait_head[kind];
		if (chan_free_slots(j->ch) <= 0)
			return;
		d->wait_head[kind] = j->qnext;
		if (!d->wait_head[kind])
			d->wait_tail[kind] = NULL;
		j->qnext = NULL;
		job_send(j);
	}
}

static void on_sent(void *arg, const struct chan_result *res)
{
	struct job *j = arg;
	struct dispatch *d = j->d;
	int64_t now = now_ms();
	hist_observe(&d->stats.send_latency[j->kind], mono_ms() - j->send_start);
	char reason[300];
	switch (res->status) {
	case CHAN_OK: {
		settle_prepare(j, "sent", "", 0);
		argv_add(&j->settle, "sent_at");
		argv_addll(&j->settle, now);
		argv_add(&j->settle, "sent_channel");
		argv_add(&j->settle, lane_of_kind(j->kind));
		argv_add(&j->settle, "to");
		privacy_argv_addr(&j->settle, j->addr[j->kind]);
		argv_add(&j->settle, "provider_id");
		argv_add(&j->settle, res->provider_id);
		if (res->segments > 0) {
			argv_add(&j->settle, "segments");
			argv_addll(&j->settle, res->segments);
		}
		if (res->cost_micros > 0) {
			argv_add(&j->settle, "cost_micros");
			argv_addll(&j->settle, res->cost_micros);
		}
		if (dlr_poll_wanted(j->ch)) {
			argv_add(&j->settle, "!await");
			argv_add(&j->settle, lane_of_kind(j->kind));
		}
		log_debug("dispatch", "msg=%s chan=%s state=sent attempt=%d", j->id,
		          lane_of_kind(j->kind), j->attempts);
		break;
	}
	case CHAN_TEMPFAIL: {
		uint32_t rnd;
		random_bytes(&rnd, sizeof rnd);
		int64_t backoff = sched_backoff_ms(j->attempts, d->cfg->sched_retry_min_ms,
		                                   d->cfg->sched_retry_max_ms, rnd);
		int64_t due = 0;
		enum sched_verdict v =
		    sched_after_tempfail(j->attempts, d->cfg->sched_max_attempts, now, j->expires,
		                         backoff, res->retry_after_ms, &due);
		if (v == SCHED_RETRY) {
			snprintf(reason, sizeof reason, "tempfail: %s", res->reason);
			settle_prepare(j, "scheduled", reason, due);
		} else if (v == SCHED_GIVE_UP) {
			snprintf(reason, sizeof reason, "max_attempts: %s", res->reason);
			settle_prepare(j, "failed", reason, 0);
		} else {
			snprintf(reason, sizeof reason, "expired: %s", res->reason);
			settle_prepare(j, "expired", reason, 0);
		}
		log_warnx("dispatch", "msg=%s chan=%s tempfail reason=%s attempt=%d next=%s", j->id,
		          lane_of_kind(j->kind), log_q(res->reason), j->attempts,
		          v == SCHED_RETRY     ? "retry"
		          : v == SCHED_GIVE_UP ? "fail"
		                               : "expire");
		break;
	}
	default:
		snprintf(reason, sizeof reason, "permfail: %s", res->reason);
		settle_prepare(j, "failed", reason, 0);
		if (res->revoke_consent) {
			argv_add(&j->settle, "!revoke");
			argv_add(&j->settle, lane_of_kind(j->kind));
		}
		log_warnx("dispatch", "msg=%s chan=%s permfail reason=%s", j->id,
		          lane_of_kind(j->kind), log_q(res->reason));
		break;
	}
	settle_issue(j);
	wake_waiters(d, j->kind);
}

/* Email needs a subject: the first line of the text, cut at a character
 * boundary under 78 bytes. */
static char *subject_from_text(const char *text)
{
	if (!text)
		return xstrdup("(no subject)");
	size_t n = strcspn(text, "\r\n");
	if (n > 78) {
		n = 78;
		while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
			n--;
	}
	return n ? xstrndup(text, n) : xstrdup("(no subject)");
}

static void job_send(struct job *j)
{
	struct dispatch *d = j->d;
	if (now_ms() + j->ch->cfg->timeout_ms > j->lease) {
		/* Parked too long: the lease would run out mid-send.  Leave the
		 * entry pending; the reclaim claims it afresh. */
		log_notice("dispatch", "msg=%s lease too short to send; left for reclaim", j->id);
		job_done(j);
		return;
	}
	struct chan_msg *m = &j->cm;
	memset(m, 0, sizeof *m);
	m->id = j->id;
	m->channel = lane_of_kind(j->kind);
	m->category = j->category;
	m->contact_id = j->contact_id;
	m->to = j->addr[j->kind];
	m->lang = j->lang ? j->lang : d->cfg->contacts_default_lang;
	if (j->kind == ADDR_EMAIL && !j->subject)
		j->subject = subject_from_text(j->text);
	m->subject = j->subject;
	m->text = j->text;
	m->html = j->kind == ADDR_EMAIL ? j->html : NULL;
	m->attempt = j->attempts;
	m->created_ms = j->created;
	j->send_start = mono_ms();
	int rc = chan_send(j->ch, m, on_sent, j);
	if (rc == -EBUSY) {
		j->qnext = NULL;
		if (d->wait_tail[j->kind])
			d->wait_tail[j->kind]->qnext = j;
		else
			d->wait_head[j->kind] = j;
		d->wait_tail[j->kind] = j;
	}
}

/* Claim and decide ------------------------------------------------------- */

static void take_fields(struct job *j, const redisReply *m, const redisReply *c)
{
	privacy_open_reply(m); /* bodies sealed with [privacy] key_file, opened in place */
	j->attempts = (int)hash_get_i64(m, "attempts", 1);
	j->expires = hash_get_i64(m, "expires", 0);
	j->due = hash_get_i64(m, "due", 0);
	j->created = hash_get_i64(m, "created", 0);
	j->contact_id = dup_or_null(hash_get(m, "contact"));
	j->channel_req = dup_or_null(hash_get(m, "channel"));
	j->category = dup_or_null(hash_get(m, "category"));
	j->text = dup_or_null(hash_get(m, "text"));
	j->subject = dup_or_null(hash_get(m, "subject"));
	j->html = dup_or_null(hash_get(m, "html"));
	j->camp = dup_or_null(hash_get(m, "camp"));
	j->var = dup_or_null(hash_get(m, "var"));
	j->lt = dup_or_null(hash_get(m, "lt"));
	j->ld = dup_or_null(hash_get(m, "ld"));
	if (c && c->elements > 0) {
		privacy_open_reply(c); /* names and addresses, in place (tpl_context reads c too) */
		j->lang = dup_or_null(hash_get(c, "lang"));
		j->tz = dup_or_null(hash_get(c, "tz"));
		j->prefs = dup_or_null(hash_get(c, "prefs"));
		for (int k = 0; k < ADDR_KINDS; k++) {
			char f[16];
			snprintf(f, sizeof f, "a:%s", addr_kind_name((enum addr_kind)k));
			j->addr[k] = dup_or_null(hash_get(c, f));
		}
	}
}

/* Campaign messages ------------------------------------------------------ */

/* Park a campaign message whose campaign is not running (paused by an
 * operator or by its budget): it waits in the campaign's parked set, not in
 * the schedule, until resume or cancel.  Not an attempt. */
static void park(struct job *j, const char *reason)
{
	settle_prepare(j, "scheduled", reason, 0);
	argv_add(&j->settle, "!park");
	argv_add(&j->settle, j->camp);
	argv_add(&j->settle, "attempts");
	argv_addll(&j->settle, j->attempts > 0 ? j->attempts - 1 : 0);
	j->deferred = 1;
	settle_issue(j);
}

static void on_reserved(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct job *j = arg;
	struct dispatch *d = j->d;
	d->cmds--;
	const char *st = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0
	                     ? reply_str(rep->element[0])
	                     : NULL;
	if (d->closing || !st || strcmp(st, "conflict") == 0) {
		/* unknown or lost: the entry stays pending and is reclaimed */
		if (rep && rep->type == REDIS_REPLY_ERROR)
			log_err("dispatch", "msg=%s reserve failed reply=%s", j->id,
			        log_q(rep->str));
		job_done(j);
	} else if (strcmp(st, "ok") == 0) {
		job_send(j);
	} else {
		if (strcmp(st, "over") == 0)
			log_notice("dispatch", "camp=%s budget reached: campaign paused", j->camp);
		park(j, strcmp(st, "over") == 0 ? "budget_exhausted" : "campaign_paused");
	}
}

static void reserve(struct job *j)
{
	struct dispatch *d = j->d;
	struct argv a;
	argv_init(&a);
	argv_add(&a, j->camp);
	argv_add(&a, j->id);
	argv_add(&a, j->owner);
	argv_addll(&a, now_ms());
	argv_addll(&a, chan_cost_estimate(j->ch, j->text));
	argv_add(&a, j->var ? j->var : "A");
	d->cmds++;
	store_eval(d->st, SCRIPT_CAMP_RESERVE, &a, on_reserved, j);
	argv_free(&a);
}

static void on_links_saved(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct job *j = arg;
	struct dispatch *d = j->d;
	d->cmds--;
	const char *st = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0
	                     ? reply_str(rep->element[0])
	                     : NULL;
	if (d->closing || !st) {
		job_done(j); /* pending: reclaimed and rendered afresh */
	} else if (strcmp(st, "ok") != 0) {
		/* a code collision (about 2^-59 per link): render again later */
		log_notice("dispatch", "msg=%s link code collision; retried", j->id);
		job_done(j);
	} else {
		reserve(j);
	}
}

/* Render at dispatch time for the chosen channel; links made by {{x|track}}
 * are saved before anything is charged or sent, so a click never meets an
 * unknown code. */
static void camp_render_and_reserve(struct job *j)
{
	struct dispatch *d = j->d;
	struct tpl_rendered out = {0};
	char why[200];
	const char *kind = lane_of_kind(j->kind);
	struct links_batch *lb = links_batch_new(d->cfg->links_base_url);
	struct links_ctx lctx = {lb, j->id, j->contact_id, j->camp, j->var};
	struct tmpl_opts o = {.zone = j->tz ? j->tz : d->cfg->contacts_default_tz,
	                      .link = links_track,
	                      .link_arg = &lctx};
	int rc = camp_cache_render(d->camps, j->camp, j->var, kind,
	                           j->lang ? j->lang : d->cfg->contacts_default_lang, j->ctx, &o,
	                           &out, why, sizeof why);
	if (rc == -ENOENT) {
		links_batch_free(lb);
		char reason[64];
		snprintf(reason, sizeof reason, "no_template:%s", kind);
		settle(j, "suppressed", reason, 0);
		return;
	}
	if (rc < 0) {
		links_batch_free(lb);
		log_warnx("dispatch", "msg=%s camp=%s render failed reason=%s", j->id, j->camp,
		          log_q(why));
		settle(j, "failed", why, 0);
		return;
	}
	free(j->text);
	free(j->subject);
	free(j->html);
	j->text = out.text;
	j->subject = out.subject;
	j->html = out.html;
	out.text = out.subject = out.html = NULL;
	tpl_rendered_free(&out);
	if (links_batch_count(lb) > 0) {
		d->cmds++;
		store_links_save(d->st, lb, d->cfg->links_ttl_ms / 1000, on_links_saved, j);
		links_batch_free(lb);
		return;
	}
	links_batch_free(lb);
	reserve(j);
}

/* The instant "ld lt" in the contact's zone; 0 when the fields are absent
 * or unusable (then the message is not held). */
static int64_t local_send_time(const struct job *j, const char *zone)
{
	struct tz_tm t = {0};
	if (!j->lt || !j->ld || strlen(j->lt) != 5 || strlen(j->ld) != 10)
		return 0;
	int64_t y, mo, da, h, mi;
	char buf[8];
	memcpy(buf, j->ld, 4);
	buf[4] = 0;
	if (parse_i64(buf, 1, 9999, &y) < 0)
		return 0;
	memcpy(buf, j->ld + 5, 2);
	buf[2] = 0;
	if (parse_i64(buf, 1, 12, &mo) < 0)
		return 0;
	memcpy(buf, j->ld + 8, 2);
	if (parse_i64(buf, 1, 31, &da) < 0)
		return 0;
	memcpy(buf, j->lt, 2);
	if (parse_i64(buf, 0, 23, &h) < 0)
		return 0;
	memcpy(buf, j->lt + 3, 2);
	if (parse_i64(buf, 0, 59, &mi) < 0)
		return 0;
	t.year = (int)y;
	t.month = (int)mo;
	t.day = (int)da;
	t.hour = (int)h;
	t.min = (int)mi;
	int64_t at;
	return tz_utc(zone, &t, &at) == 0 ? at : 0;
}

static void job_decide(struct job *j, int have_contact)
{
	struct dispatch *d = j->d;
	if (!have_contact) {
		settle(j, "suppressed", "no_contact", 0);
		return;
	}
	int64_t at = local_send_time(j, j->tz ? j->tz : d->cfg->contacts_default_tz);
	if (at > now_ms()) {
		/* a campaign sent at a local time: not yet in this contact's zone */
		j->deferred = 1;
		settle_prepare(j, "scheduled", "local_time", at);
		argv_add(&j->settle, "attempts");
		argv_addll(&j->settle, j->attempts > 0 ? j->attempts - 1 : 0);
		settle_issue(j);
		return;
	}
	struct prefs p;
	const char *field, *reason;
	json_t *pj = j->prefs ? json_loads(j->prefs, 0, NULL) : NULL;
	if (prefs_parse(pj, &p, &field, &reason) < 0)
		prefs_parse(NULL, &p, &field, &reason); /* stored prefs were validated */
	json_decref(pj);

	int cat = j->category ? category_parse(j->category) : CAT_TRANSACTIONAL;
	struct prefs_input in = {
	    .prefs = &p,
	    .tz = j->tz ? j->tz : d->cfg->contacts_default_tz,
	    .requested = j->channel_req && strcmp(j->channel_req, "preferred") != 0
	                     ? addr_kind_parse(j->channel_req)
	                     : -1,
	    .category = cat < 0 ? CAT_TRANSACTIONAL : (enum category)cat,
	    .now_ms = now_ms(),
	    .default_quiet = &d->default_quiet,
	    .quiet_transactional = d->cfg->prefs_quiet_transactional,
	    .channel_enabled = d->channel_enabled,
	};
	for (int k = 0; k < ADDR_KINDS; k++)
		in.addr[k] = j->addr[k];
	struct prefs_decision dec;
	prefs_decide(&in, &dec);
	switch (dec.action) {
	case PREFS_SUPPRESS:
		log_info("dispatch", "msg=%s state=suppressed reason=%s", j->id, dec.reason);
		settle(j, "suppressed", dec.reason, 0);
		return;
	case PREFS_DEFER:
		if (j->expires > 0 && dec.defer_until_ms > j->expires) {
			settle(j, "expired", "expired: quiet hours until after expiry", 0);
			return;
		}
		j->deferred = 1;
		settle_prepare(j, "scheduled", dec.reason, dec.defer_until_ms);
		/* A deferral is not an attempt. */
		argv_add(&j->settle, "attempts");
		argv_addll(&j->settle, j->attempts > 0 ? j->attempts - 1 : 0);
		log_info("dispatch", "msg=%s state=scheduled reason=%s", j->id, dec.reason);
		settle_issue(j);
		return;
	case PREFS_SEND:
		break;
	}
	j->kind = dec.channel;
	j->ch = chan_find(d->chans, d->nchans, lane_of_kind(j->kind));
	if (!j->ch) {
		settle(j, "suppressed", "channel_not_configured", 0);
		return;
	}
	if (j->camp) {
		camp_render_and_reserve(j);
		return;
	}
	job_send(j);
}

static void on_camp_loaded(void *arg, int ok)
{
	struct job *j = arg;
	struct dispatch *d = j->d;
	d->cmds--;
	if (d->closing || !ok) {
		job_done(j); /* left pending: reclaimed later */
		return;
	}
	job_decide(j, j->have_contact);
}

static void claim_result(struct job *j, const redisReply *rep)
{
	struct dispatch *d = j->d;
	const char *status = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0
	                         ? reply_str(rep->element[0])
	                         : NULL;
	if (!status || strcmp(status, "ok") != 0 || d->closing || rep->elements < 4) {
		/* NULL: unknown; the entry stays pending and is reclaimed.
		 * busy/skip/expired/gone: nothing to do here. */
		job_done(j);
		return;
	}
	d->stats.claimed++;
	if (rep->element[1]->integer) {
		d->stats.reclaimed++;
		log_notice("dispatch", "msg=%s reclaimed from a dead instance", j->id);
	}
	const redisReply *c = rep->element[3];
	take_fields(j, rep->element[2], c);
	if (j->due > 0)
		hist_observe(&d->stats.lag, now_ms() - j->due);
	j->have_contact = c->type == REDIS_REPLY_ARRAY && c->elements > 0;
	const char *capped = rep->elements > 5 ? reply_str(rep->element[5]) : NULL;
	if (capped && *capped) {
		log_info("dispatch", "msg=%s state=suppressed reason=%s", j->id, capped);
		settle(j, "suppressed", capped, 0);
		return;
	}
	if (j->camp) {
		if (j->have_contact)
			j->ctx = tpl_context(c, NULL, NULL);
		const char *v = rep->elements > 4 ? reply_str(rep->element[4]) : NULL;
		if (!camp_cache_want(d->camps, j->camp, v, on_camp_loaded, j)) {
			d->cmds++;
			return;
		}
	}
	job_decide(j, j->have_contact);
}

static void claim_batch(struct dispatch *d, struct batch *b);

static void on_claim_retry(uv_timer_t *t)
{
	struct dispatch *d = container_of(t, struct dispatch, claim_timer);
	if (!redis_is_up(d->st->r)) {
		uv_timer_start(&d->claim_timer, on_claim_retry, SETTLE_RETRY_MS, 0);
		return;
	}
	struct batch *b = d->claim_retry;
	d->claim_retry = NULL;
	while (b) {
		struct batch *next = b->next;
		claim_batch(d, b);
		b = next;
	}
}

static void on_claimed(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct batch *b = arg;
	struct dispatch *d = b->d;
	d->cmds--;
	if (!rep && !d->closing && d->running) {
		/* Unknown: the claim may have applied.  Repeat it with the same
		 * owner tokens (the script answers 'ok' again for our own claim),
		 * so nothing is left leased to us and waiting for a reclaim. */
		b->next = d->claim_retry;
		d->claim_retry = b;
		if (!uv_is_active((uv_handle_t *)&d->claim_timer))
			uv_timer_start(&d->claim_timer, on_claim_retry, SETTLE_RETRY_MS, 0);
		return;
	}
	int ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == (size_t)b->n;
	if (rep && !ok)
		log_err("dispatch", "claim batch failed n=%d reply=%s", b->n,
		        log_q(rep->type == REDIS_REPLY_ERROR ? rep->str : "malformed"));
	for (int i = 0; i < b->n; i++)
		claim_result(b->jobs[i], ok ? rep->element[i] : NULL);
	free(b);
}

/* Claim every entry of one stream read in one script call. */
static void claim_batch(struct dispatch *d, struct batch *b)
{
	if (b->n == 0) {
		free(b);
		return;
	}
	int64_t timeout = 0;
	for (size_t i = 0; i < d->cfg->nchannels; i++)
		if (d->cfg->channels[i].timeout_ms > timeout)
			timeout = d->cfg->channels[i].timeout_ms;
	int64_t now = now_ms();
	/* The lease outlives a send (the channel timeout) and the reclaim idle
	 * time, so only a dead or stuck instance loses a message to another. */
	int64_t lease = now + timeout + d->cfg->sched_reclaim_idle_ms;
	struct argv a;
	argv_init(&a);
	argv_addll(&a, now);
	argv_addll(&a, lease);
	argv_add(&a, STORE_GROUP);
	argv_addll(&a, (d->cfg->sched_retention_ms + 999) / 1000);
	argv_add(&a, d->caps);
	for (int i = 0; i < b->n; i++) {
		struct job *j = b->jobs[i];
		if (!b->prepared) {
			snprintf(j->owner, sizeof j->owner, "%s:%llu", d->consumer,
			         (unsigned long long)++d->owner_seq);
			j->lease = lease;
		}
		argv_add(&a, j->id);
		argv_add(&a, j->sid);
		argv_add(&a, j->lane);
		argv_add(&a, j->owner);
	}
	b->prepared = 1;
	d->cmds++;
	store_eval(d->st, SCRIPT_MSG_CLAIM, &a, on_claimed, b);
	argv_free(&a);
}

/* Take stream entries ([id, [field, value, ...]]) into jobs, claimed as one batch. */
static void take_entries(struct dispatch *d, const char *lane, const redisReply *entries)
{
	if (!entries || entries->type != REDIS_REPLY_ARRAY)
		return;
	struct batch *b = batch_new(d, (int)entries->elements);
	for (size_t i = 0; i < entries->elements; i++) {
		const redisReply *e = entries->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements < 2)
			continue; /* a deleted entry */
		const char *sid = reply_str(e->element[0]);
		const char *mid = hash_get(e->element[1], "m");
		if (!sid || !mid)
			continue;
		b->jobs[b->n++] = job_new(d, mid, sid, lane);
	}
	claim_batch(d, b);
}

/* Reading ---------------------------------------------------------------- */

static const char *lane_from_key(struct dispatch *d, const char *key)
{
	size_t pl = strlen(d->st->prefix);
	if (strncmp(key, d->st->prefix, pl) == 0 && strncmp(key + pl, "q:", 2) == 0)
		return key + pl + 2;
	return NULL;
}

static void on_read_timer(uv_timer_t *t)
{
	read_more(container_of(t, struct dispatch, read_timer));
}

static void on_read(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct dispatch *d = arg;
	d->reading = 0;
	if (d->closing) {
		check_close(d);
		return;
	}
	if (!rep || rep->type == REDIS_REPLY_ERROR) {
		if (rep && redis_reply_is_error(rep, "NOGROUP")) {
			const char *lanes[LANES_MAX];
			size_t n = 0;
			for (size_t i = 0; i < d->nchans; i++)
				lanes[n++] = d->chans[i].cfg->name;
			lanes[n++] = "preferred";
			store_queue_init(d->st, lanes, n);
		} else if (rep) {
			log_err("dispatch", "read failed error=%s", log_q(rep->str));
		}
		if (d->running)
			uv_timer_start(&d->read_timer, on_read_timer, 200, 0);
		return;
	}
	if (rep->type == REDIS_REPLY_ARRAY) {
		for (size_t i = 0; i < rep->elements; i++) {
			const redisReply *s = rep->element[i];
			if (s->type != REDIS_REPLY_ARRAY || s->elements < 2)
				continue;
			const char *lane = lane_from_key(d, reply_str(s->element[0]));
			if (lane)
				take_entries(d, lane, s->element[1]);
		}
	}
	read_more(d);
	check_drain(d);
}

static void read_more(struct dispatch *d)
{
	/* Both connections: entries read while claims cannot be sent would
	 * sit in our pending list until a reclaim. */
	if (!d->running || d->closing || d->reading || !redis_is_up(d->reader) ||
	    !redis_is_up(d->st->r))
		return;
	int room = d->cfg->dispatch_max_inflight - d->njobs;
	if (room <= 0)
		return;
	const char *lanes[LANES_MAX];
	size_t n = 0;
	int any = 0;
	for (size_t i = 0; i < d->nchans; i++) {
		if (chan_free_slots(&d->chans[i]) > 0) {
			lanes[n++] = d->chans[i].cfg->name;
			any = 1;
		}
	}
	if (!any)
		return; /* woken again when a send completes */
	lanes[n++] = "preferred";
	int count = (room + (int)n - 1) / (int)n;
	struct argv a;
	argv_init(&a);
	argv_add(&a, "XREADGROUP");
	argv_add(&a, "GROUP");
	argv_add(&a, STORE_GROUP);
	argv_add(&a, d->consumer);
	argv_add(&a, "COUNT");
	argv_addll(&a, count);
	argv_add(&a, "BLOCK");
	argv_addll(&a, d->cfg->dispatch_block_ms);
	argv_add(&a, "STREAMS");
	for (size_t i = 0; i < n; i++) {
		char *k = store_key(d->st, "q:%s", lanes[i]);
		argv_add(&a, k);
		free(k);
	}
	for (size_t i = 0; i < n; i++)
		argv_add(&a, ">");
	d->reading = 1;
	redis_cmdv(d->reader, d->cfg->dispatch_block_ms + d->cfg->redis_command_timeout_ms, on_read,
	           d, a.n, (const char **)a.v, a.len);
	argv_free(&a);
}

/* Reclaim ---------------------------------------------------------------- */

struct reclaim_call {
	struct dispatch *d;
	char lane[16];
	int count; /* asked for */
};

static void on_reclaim_timer(uv_timer_t *t);

static void on_reclaimed(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct reclaim_call *rc = arg;
	struct dispatch *d = rc->d;
	d->reclaiming--;
	if (!d->closing && d->running && rep && rep->type == REDIS_REPLY_ARRAY &&
	    rep->elements >= 2) {
		const redisReply *e = rep->element[1];
		/* A full batch: there is more to take over, go again soon
		 * rather than one batch per interval. */
		if (e->type == REDIS_REPLY_ARRAY && e->elements > 0 &&
		    (int)e->elements >= rc->count)
			d->reclaim_more = 1;
		take_entries(d, rc->lane, e);
	}
	free(rc);
	if (d->closing) {
		check_close(d);
		return;
	}
	if (d->reclaiming == 0 && d->reclaim_more && d->running) {
		d->reclaim_more = 0;
		uv_timer_start(&d->reclaim_timer, on_reclaim_timer, 50,
		               (uint64_t)d->cfg->sched_reclaim_interval_ms);
	}
}

static void on_reclaim_timer(uv_timer_t *t)
{
	struct dispatch *d = container_of(t, struct dispatch, reclaim_timer);
	if (!d->running || !redis_is_up(d->st->r) || d->reclaiming)
		return;
	int room = d->cfg->dispatch_max_inflight - d->njobs;
	if (room <= 0)
		return;
	for (size_t i = 0; i <= d->nchans; i++) {
		const char *lane = i < d->nchans ? d->chans[i].cfg->name : "preferred";
		struct reclaim_call *rc = xcalloc(1, sizeof *rc);
		rc->d = d;
		rc->count = room;
		snprintf(rc->lane, sizeof rc->lane, "%s", lane);
		char *k = store_key(d->st, "q:%s", lane);
		char idle[24], count[24];
		snprintf(idle, sizeof idle, "%lld", (long long)d->cfg->sched_reclaim_idle_ms);
		snprintf(count, sizeof count, "%d", room);
		const char *argv[] = {"XAUTOCLAIM", k,     STORE_GROUP, d->consumer,
		                      idle,         "0-0", "COUNT",     count};
		size_t lens[ARRAY_SIZE(argv)];
		for (size_t x = 0; x < ARRAY_SIZE(argv); x++)
			lens[x] = strlen(argv[x]);
		d->reclaiming++;
		redis_cmdv(d->st->r, 0, on_reclaimed, rc, (int)ARRAY_SIZE(argv), argv, lens);
		free(k);
	}
}

/* A channel's circuit half-opened or closed, or its window grew: send what
 * waits for it and read again (nothing else would, with no send in flight). */
static void on_chan_wake(void *arg)
{
	struct dispatch *d = arg;
	if (d->closing)
		return;
	for (int k = 0; k < ADDR_KINDS; k++)
		wake_waiters(d, k);
	read_more(d);
}

/* Lifecycle -------------------------------------------------------------- */

struct dispatch *dispatch_new(uv_loop_t *loop, struct store *st, struct redis *reader,
                              struct chan *chans, size_t nchans, const struct config *cfg,
                              const char *consumer)
{
	struct dispatch *d = xcalloc(1, sizeof *d);
	d->loop = loop;
	d->st = st;
	d->reader = reader;
	d->chans = chans;
	d->nchans = nchans;
	d->consumer = xstrdup(consumer);
	d->camps = camp_cache_new(st);
	uv_timer_init(loop, &d->read_timer);
	uv_timer_init(loop, &d->reclaim_timer);
	uv_timer_init(loop, &d->retry_timer);
	uv_timer_init(loop, &d->drain_timer);
	uv_idle_init(loop, &d->settle_idle);
	uv_timer_init(loop, &d->claim_timer);
	d->handles_open = 6;
	for (size_t i = 0; i < nchans; i++)
		chan_set_wake(&chans[i], on_chan_wake, d);
	dispatch_reconfigure(d, cfg);
	return d;
}

void dispatch_reconfigure(struct dispatch *d, const struct config *cfg)
{
	d->cfg = cfg;
	if (prefs_parse_window(cfg->prefs_quiet_hours ? cfg->prefs_quiet_hours : "",
	                       &d->default_quiet) < 0)
		memset(&d->default_quiet, 0, sizeof d->default_quiet);
	struct prefs_cap caps[PREFS_CAPS_MAX];
	char why[160];
	int ncaps = prefs_parse_caps(cfg->prefs_caps, caps, PREFS_CAPS_MAX, why, sizeof why);
	d->caps[0] = '\0';
	for (int i = 0; i < ncaps; i++) {
		size_t l = strlen(d->caps);
		snprintf(d->caps + l, sizeof d->caps - l, "%s%s:%lld:%d", i ? "," : "",
		         category_name(caps[i].category), (long long)caps[i].window_ms,
		         caps[i].max);
	}
	memset(d->channel_enabled, 0, sizeof d->channel_enabled);
	for (size_t i = 0; i < d->nchans; i++) {
		int k = addr_kind_parse(d->chans[i].cfg->name);
		if (k >= 0)
			d->channel_enabled[k] = 1;
	}
	if (d->running) {
		uv_timer_set_repeat(&d->reclaim_timer, (uint64_t)cfg->sched_reclaim_interval_ms);
		read_more(d);
	}
}

void dispatch_start(struct dispatch *d)
{
	d->running = 1;
	uv_timer_start(&d->reclaim_timer, on_reclaim_timer,
	               (uint64_t)d->cfg->sched_reclaim_interval_ms,
	               (uint64_t)d->cfg->sched_reclaim_interval_ms);
	read_more(d);
}

void dispatch_redis_up(struct dispatch *d)
{
	if (d->closing)
		return;
	const char *lanes[LANES_MAX];
	size_t n = 0;
	for (size_t i = 0; i < d->nchans; i++)
		lanes[n++] = d->chans[i].cfg->name;
	lanes[n++] = "preferred";
	if (redis_is_up(d->st->r))
		store_queue_init(d->st, lanes, n);
	read_more(d);
}

static void drain_finish(struct dispatch *d)
{
	void (*cb)(void *) = d->drain_cb;
	void *arg = d->drain_arg;
	d->drain_cb = NULL;
	uv_timer_stop(&d->drain_timer);
	if (cb)
		cb(arg);
}

static void on_drain_timeout(uv_timer_t *t)
{
	struct dispatch *d = container_of(t, struct dispatch, drain_timer);
	log_warnx("dispatch", "drain timed out inflight=%d (they stay leased and are reclaimed)",
	          d->njobs);
	drain_finish(d);
}

/* In-flight means sent or being settled; jobs parked in a wait queue were
 * never handed to a channel and stay leased for a later claim. */
static int busy_jobs(const struct dispatch *d)
{
	int waiting = 0;
	for (int k = 0; k < ADDR_KINDS; k++)
		for (struct job *j = d->wait_head[k]; j; j = j->qnext)
			waiting++;
	return d->njobs - waiting;
}

static void check_drain(struct dispatch *d)
{
	if (d->drain_cb && busy_jobs(d) == 0 && !d->reading)
		drain_finish(d);
}

static void on_drain_zero(uv_timer_t *t)
{
	struct dispatch *d = container_of(t, struct dispatch, drain_timer);
	check_drain(d);
}

/* Claims waiting for a retry never reached a channel: leave them leased
 * in Redis (reclaimed later) and let their jobs go. */
static void drop_claim_retries(struct dispatch *d)
{
	uv_timer_stop(&d->claim_timer);
	struct batch *b = d->claim_retry;
	d->claim_retry = NULL;
	while (b) {
		struct batch *next = b->next;
		for (int i = 0; i < b->n; i++)
			if (!d->closing)
				job_done(b->jobs[i]);
		free(b);
		b = next;
	}
}

void dispatch_drain(struct dispatch *d, int64_t timeout_ms, void (*cb)(void *arg), void *arg)
{
	d->running = 0;
	drop_claim_retries(d);
	uv_timer_stop(&d->read_timer);
	uv_timer_stop(&d->reclaim_timer);
	d->drain_cb = cb;
	d->drain_arg = arg;
	log_info("dispatch", "draining inflight=%d timeout_ms=%lld", d->njobs,
	         (long long)timeout_ms);
	if (busy_jobs(d) == 0 && !d->reading) {
		/* Deferred so cb never runs inside the caller. */
		uv_timer_start(&d->drain_timer, on_drain_zero, 0, 0);
		return;
	}
	uv_timer_start(&d->drain_timer, on_drain_timeout, (uint64_t)timeout_ms, 0);
}

void dispatch_get_stats(const struct dispatch *d, struct dispatch_stats *out)
{
	*out = d->stats;
	out->inflight = d->njobs;
}

static void on_handle_closed(uv_handle_t *h)
{
	struct dispatch *d = h->data;
	if (--d->handles_open > 0)
		return;
	void (*cb)(void *) = d->close_cb;
	void *arg = d->close_arg;
	free(d->consumer);
	camp_cache_free(d->camps);
	free(d);
	if (cb)
		cb(arg);
}

static void check_close(struct dispatch *d)
{
	if (!d->closing || d->reading || d->reclaiming || d->cmds)
		return;
	if (d->closing == 2)
		return;
	d->closing = 2;
	/* What is left never reached a channel or is waiting for a settle
	 * retry: it stays leased in Redis and is reclaimed. */
	while (d->jobs)
		job_free(d->jobs);
	uv_handle_t *hs[] = {(uv_handle_t *)&d->read_timer,  (uv_handle_t *)&d->reclaim_timer,
	                     (uv_handle_t *)&d->retry_timer, (uv_handle_t *)&d->drain_timer,
	                     (uv_handle_t *)&d->settle_idle, (uv_handle_t *)&d->claim_timer};
	for (size_t i = 0; i < ARRAY_SIZE(hs); i++) {
		hs[i]->data = d;
		uv_close(hs[i], on_handle_closed);
	}
}

void dispatch_close(struct dispatch *d, void (*cb)(void *arg), void *arg)
{
	for (size_t i = 0; i < d->nchans; i++)
		chan_set_wake(&d->chans[i], NULL, NULL);
	d->running = 0;
	d->closing = 1;
	d->close_cb = cb;
	d->close_arg = arg;
	d->drain_cb = NULL;
	settle_flush(d); /* what is settled must reach Redis before we go */
	drop_claim_retries(d);
	d->retry_head = NULL;
	for (int k = 0; k < ADDR_KINDS; k++)
		d->wait_head[k] = d->wait_tail[k] = NULL;
	check_close(d);
}
