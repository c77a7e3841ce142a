/*
 * inbound_route.c - the inbound router through the store (inbound_route.h).
 *
 * One message: classify (the [inbound] keyword lists, cached per config) ->
 * lua/inbound.lua 'batch' (dedupe, audit, contact or lead, consent,
 * attribution, timeline, getUpdates offset; messages arriving together
 * share one script call) -> when the script says a router stage may take a
 * plain text (an open survey conversation, an open raffle: inbound.h), the
 * stages in router order, then the record again, told not to ask -> for
 * opt-out/opt-in/help the confirmation through store_msg_create() (category
 * transactional, on the channel the customer used, idempotency key
 * inbound-reply:{prov}:{id} so a provider retry never sends it twice) ->
 * the caller's callback.
 *
 * Owns: the per-message context (freed after the callback), the record
 * queue and its batches, the keyword cache and the process-wide inbound
 * counters.  Knows no key names (the script does).  Never logs texts,
 * numbers or chat ids.
 *
 * Limits: texts INBOUND_TEXT_MAX; provider ids remembered 7 days; the audit
 * stream capped at INBOUND_AUDIT_MAX entries; ROUTE_BATCH messages per
 * script call, ROUTE_INFLIGHT calls in flight (the rest wait in order).
 */
#include "inbound_route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "privacy.h"

#define INBOUND_DEDUPE_TTL_S   (7 * 24 * 3600)          /* provider ids remembered */
#define INBOUND_AUDIT_MAX      100000                   /* raw inbound audit entries */
#define INBOUND_ATTRIBUTION_MS (7LL * 24 * 3600 * 1000) /* reply -> last message (no lc) */

/* ---- counters ----------------------------------------------------------- */

static const char *const transport_names[INBOUND_T__N] = {
    "kannel", "webhook", "twilio", "telegram_webhook", "telegram_poll", "kavenegar_poll", "imap"};
static const char *const outcome_names[INBOUND_O__N] = {"stored", "duplicate", "rejected"};
static uint64_t counts[INBOUND_T__N][INBOUND_O__N];

const char *inbound_transport_name(enum inbound_transport t)
{
	return (int)t >= 0 && t < INBOUND_T__N ? transport_names[t] : "unknown";
}

void inbound_count(enum inbound_transport t, enum inbound_outcome o)
{
	if ((int)t >= 0 && t < INBOUND_T__N && (int)o >= 0 && o < INBOUND_O__N)
		counts[t][o]++;
}

uint64_t inbound_counted(enum inbound_transport t, enum inbound_outcome o)
{
	if ((int)t >= 0 && t < INBOUND_T__N && (int)o >= 0 && o < INBOUND_O__N)
		return counts[t][o];
	return 0;
}

void inbound_metrics_render(struct buf *b)
{
	buf_printf(b, "# HELP clubd_inbound_total Inbound messages by transport and result "
	              "(stored, duplicate: a provider id seen before, rejected: bad signature or "
	              "malformed), this process.\n# TYPE clubd_inbound_total counter\n");
	for (int t = 0; t < INBOUND_T__N; t++)
		for (int o = 0; o < INBOUND_O__N; o++)
			buf_printf(b, "clubd_inbound_total{transport=\"%s\",result=\"%s\"} %llu\n",
			           transport_names[t], outcome_names[o],
			           (unsigned long long)counts[t][o]);
}

/* ---- keywords per config ---------------------------------------------------- */

static char *kw_src[3]; /* the lists kw was built from */
static struct inbound_keywords kw;
static int kw_ok;

static int same(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* The lists of cfg, parsed again only when they change (NULL: the built-in
 * defaults, used when a list cannot be parsed). */
static const struct inbound_keywords *keywords(const struct config *cfg)
{
	const char *src[3] = {cfg->inbound_stop_keywords, cfg->inbound_start_keywords,
	                      cfg->inbound_help_keywords};
	if (!same(src[0], kw_src[0]) || !same(src[1], kw_src[1]) || !same(src[2], kw_src[2])) {
		char why[160];
		inbound_keywords_free(&kw);
		for (int i = 0; i < 3; i++) {
			free(kw_src[i]);
			kw_src[i] = xstrdup(src[i] ? src[i] : "");
		}
		kw_ok = inbound_keywords_init(&kw, src[0], src[1], src[2], why, sizeof why) == 0;
		if (!kw_ok) {
			log_err("inbound",
			        "keyword lists unusable, using the built-in ones error=%s",
			        log_q(why));
			inbound_keywords_free(&kw);
		}
	}
	return kw_ok ? &kw : NULL;
}

/* ---- people in the loop ------------------------------------------------------ */

static inbound_reply_fn reply_fn;
static void *reply_ctx;

void inbound_route_on_reply(inbound_reply_fn fn, void *ctx)
{
	reply_fn = fn;
	reply_ctx = fn ? ctx : NULL;
}

/* ---- one message ------------------------------------------------------------ */

struct route {
	struct store *st;
	const struct config *cfg;
	enum inbound_transport t;
	struct inbound in;
	char offset_channel[16];
	int64_t offset;
	inbound_route_cb cb;
	void *arg;
	int stage; /* next stage slot to ask */
	char contact[ID_LEN + 1];
	char lang[40];
	char reply_to[80]; /* the message an email names (inbound_route_reply), "" */
	struct inbound_result res;
	struct route *next;      /* the record queue */
	int ask;                 /* the record may answer 'stage' */
	char new_id[ID_LEN + 1]; /* the id a lead gets */
};

static void finish(struct route *r, int err)
{
	r->res.err = err;
	if (!err)
		inbound_count(r->t, r->res.duplicate ? INBOUND_DUPLICATE : INBOUND_STORED);
	log_info("inbound",
	         "transport=%s provider=%s contact=%s action=%s duplicate=%d created=%d camp=%s "
	         "confirm=%s err=%d",
	         inbound_transport_name(r->t), r->in.provider,
	         r->res.contact_id[0] ? r->res.contact_id : "-", r->res.action, r->res.duplicate,
	         r->res.created, r->res.camp[0] ? log_q(r->res.camp) : "-",
	         r->res.confirm_id[0] ? r->res.confirm_id : "-", err);
	if (!err && !r->res.duplicate && r->in.action == INBOUND_REPLY && reply_fn)
		reply_fn(reply_ctx, &r->in, &r->res);
	r->cb(r->arg, &r->res);
	free(r);
}

static const char *reply_text(const struct config *cfg, enum inbound_action a, int fa)
{
	switch (a) {
	case INBOUND_OPT_OUT:
		return fa ? cfg->inbound_stop_reply_fa : cfg->inbound_stop_reply;
	case INBOUND_OPT_IN:
		return fa ? cfg->inbound_start_reply_fa : cfg->inbound_start_reply;
	case INBOUND_HELP:
		return fa ? cfg->inbound_help_reply_fa : cfg->inbound_help_reply;
	default:
		return NULL;
	}
}

static void on_confirmed(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct route *r = arg;
	const char *st = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 1
	                     ? reply_str(rep->element[0])
	                     : NULL;
	if (st && strcmp(st, "dup") == 0) {
		/* queued by the first delivery of this message */
		snprintf(r->res.confirm_id, sizeof r->res.confirm_id, "%s",
		         reply_str(rep->element[1]) ? reply_str(rep->element[1]) : "");
	} else if (!st || strcmp(st, "ok") != 0) {
		/* The message is recorded; the provider's retry (a duplicate)
		 * creates the confirmation then. */
		log_warnx("inbound", "provider=%s contact=%s confirmation not queued status=%s",
		          r->in.provider, r->res.contact_id, st ? st : "no answer");
		r->res.confirm_id[0] = '\0';
		finish(r, -EIO);
		return;
	}
	finish(r, 0);
}

/* After the record: queue the keyword's confirmation when one is due. */
static void confirm(struct route *r)
{
	const struct config *cfg = r->cfg;
	enum inbound_action a = r->in.action;
	if ((a != INBOUND_OPT_OUT && a != INBOUND_OPT_IN && a != INBOUND_HELP) ||
	    !r->res.contact_id[0]) {
		finish(r, 0);
		return;
	}
	/* A channel-wide opt-out makes the dispatcher suppress everything on the
	 * channel, transactional included (prefs.c): no confirmation. */
	if (a == INBOUND_OPT_OUT && strcmp(cfg->inbound_stop_scope, "channel") == 0) {
		finish(r, 0);
		return;
	}
	const char *text = reply_text(cfg, a, inbound_reply_persian(r->in.persian, r->lang));
	if (!text || !*text) {
		finish(r, 0);
		return;
	}
	int64_t now = now_ms();
	char idem[16 + INBOUND_PROVIDER_MAX + INBOUND_ID_MAX];
	snprintf(idem, sizeof idem, "inbound-reply:%s:%s", r->in.provider, r->in.provider_id);
	const char *fields[] = {"text", text, "kw", inbound_action_name(a)};
	struct msg_new m = {.contact_id = r->res.contact_id,
	                    .lane = r->in.channel,
	                    .channel = r->in.channel,
	                    .category = "transactional",
	                    .idem = idem,
	                    .idem_ttl_s = INBOUND_DEDUPE_TTL_S,
	                    .now = now,
	                    .due = now,
	                    .expires = now + cfg->sched_message_ttl_ms,
	                    .fields = fields,
	                    .nfields = ARRAY_SIZE(fields)};
	store_msg_create(r->st, &m, r->res.confirm_id, on_confirmed, r);
}

/* ---- the record, in batches ---------------------------------------------------- */

/*
 * Every message goes through one 'batch' item of lua/inbound.lua.  Items
 * wait in one queue; a batch leaves at once while fewer than
 * ROUTE_INFLIGHT batches are in flight, else when one comes back, so under
 * load the messages that arrived meanwhile share one script call (one
 * round trip, one script run) and an idle router adds no delay.
 */
#define ROUTE_BATCH    128 /* items per script call */
#define ROUTE_INFLIGHT 2   /* batches in flight */

static struct route *q_head, **q_tail = &q_head;
static int inflight;

struct batch {
	size_t n;
	struct route *r[ROUTE_BATCH];
};

static void flush(void);
static void next_stage(struct route *r);

static void recorded(struct route *r, const redisReply *e)
{
	if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 8) {
		finish(r, -EIO);
		return;
	}
	const char *st = reply_str(e->element[0]);
	const char *cid = reply_str(e->element[1]);
	const char *action = reply_str(e->element[2]);
	if (!st || strcmp(st, "err") == 0) {
		/* this message alone failed; the provider retries it */
		log_err("inbound", "provider=%s record failed error=%s", r->in.provider,
		        log_q(cid ? cid : "no status"));
		finish(r, -EIO);
		return;
	}
	snprintf(r->res.contact_id, sizeof r->res.contact_id, "%s", cid ? cid : "");
	snprintf(r->lang, sizeof r->lang, "%s",
	         reply_str(e->element[6]) ? reply_str(e->element[6]) : "");
	if (st && strcmp(st, "stage") == 0) {
		/* a stage may take it: ask them in router order, then record */
		snprintf(r->contact, sizeof r->contact, "%s", cid && id_valid(cid) ? cid : "");
		r->res.contact_id[0] = '\0';
		r->stage = 0;
		next_stage(r);
		return;
	}
	r->res.duplicate = st && strcmp(st, "dup") == 0;
	snprintf(r->res.action, sizeof r->res.action, "%s", action ? action : "");
	r->res.created = e->element[3]->type == REDIS_REPLY_INTEGER && e->element[3]->integer;
	snprintf(r->res.camp, sizeof r->res.camp, "%s",
	         reply_str(e->element[4]) ? reply_str(e->element[4]) : "");
	snprintf(r->res.msg, sizeof r->res.msg, "%s",
	         reply_str(e->element[5]) ? reply_str(e->element[5]) : "");
	snprintf(r->res.ticket, sizeof r->res.ticket, "%s",
	         reply_str(e->element[7]) ? reply_str(e->element[7]) : "");
	/* A duplicate of a keyword asks for its confirmation again: the
	 * idempotency key makes that a no-op when the first one was queued. */
	if (r->res.duplicate && strcmp(r->res.action, inbound_action_name(r->in.action)) != 0) {
		finish(r, 0);
		return;
	}
	confirm(r);
}

static void on_batch(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct batch *b = arg;
	int ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == b->n;
	if (!ok && rep && rep->type == REDIS_REPLY_ERROR)
		log_err("inbound", "record failed error=%s", log_q(rep->str));
	inflight--;
	for (size_t i = 0; i < b->n; i++)
		recorded(b->r[i], ok ? rep->element[i] : NULL);
	free(b);
	flush();
}

static void item_add(struct argv *a, const struct route *r)
{
	argv_add(a, r->in.provider);
	argv_add(a, r->in.provider_id);
	argv_add(a, r->in.channel);
	privacy_argv_addr(a, r->in.from); /* sealed with [privacy] key_file */
	argv_add(a, r->in.to);
	privacy_argv_text(a, r->in.text);
	argv_addll(a, r->in.received_at);
	argv_add(a, inbound_action_name(r->in.action));
	argv_add(a, r->new_id);
	argv_add(a, inbound_transport_name(r->t));
	argv_add(a, r->offset_channel);
	argv_addll(a, r->offset);
	privacy_argv_addr(a, r->in.phone);
	argv_add(a, r->in.stage ? r->in.stage : "");
	argv_add(a, r->reply_to);
	argv_add(a, r->ask ? "1" : "0");
}

/* Send the queue's head as batches while fewer than ROUTE_INFLIGHT are out;
 * one batch holds messages of one store and one config. */
static void flush(void)
{
	while (q_head && inflight < ROUTE_INFLIGHT) {
		struct batch *b = xmalloc(sizeof *b);
		b->n = 0;
		struct store *st = q_head->st;
		const struct config *cfg = q_head->cfg;
		int64_t now = now_ms();
		struct argv a;
		argv_init(&a);
		argv_add(&a, "batch");
		argv_addll(&a, now);
		argv_addll(&a, INBOUND_DEDUPE_TTL_S);
		argv_addll(&a, cfg->contacts_timeline_max);
		argv_addll(&a, INBOUND_AUDIT_MAX);
		argv_addll(&a, INBOUND_ATTRIBUTION_MS);
		argv_add(&a, cfg->inbound_create_leads ? "1" : "0");
		argv_add(&a, cfg->inbound_stop_scope);
		while (q_head && b->n < ROUTE_BATCH && q_head->st == st && q_head->cfg == cfg) {
			struct route *r = q_head;
			q_head = r->next;
			if (!q_head)
				q_tail = &q_head;
			r->next = NULL;
			id_new(r->new_id, now);
			item_add(&a, r);
			b->r[b->n++] = r;
		}
		inflight++;
		store_eval(st, SCRIPT_INBOUND, &a, on_batch, b);
		argv_free(&a);
	}
}

/* Queue r for the record script; ask: the stages have not seen it. */
static void record(struct route *r, int ask)
{
	r->ask = ask;
	*q_tail = r;
	q_tail = &r->next;
	flush();
}

/* ---- stages ------------------------------------------------------------------ */

static void on_stage(void *arg, int taken)
{
	struct route *r = arg;
	if (taken < 0) {
		finish(r, -EIO);
		return;
	}
	if (taken) {
		const struct inbound_stage *s =
		    inbound_stage_get((enum inbound_stage_slot)r->stage);
		r->in.action = INBOUND_TAKEN;
		r->in.stage = s ? s->name : "stage";
		record(r, 0);
		return;
	}
	r->stage++;
	next_stage(r);
}

/* Ask the next filled slot in router order; record when none is left. */
static void next_stage(struct route *r)
{
	while (r->stage < INBOUND_STAGES) {
		const struct inbound_stage *s =
		    inbound_stage_get((enum inbound_stage_slot)r->stage);
		if (s) {
			s->run(s->ctx, &r->in, r->contact, on_stage, r);
			return;
		}
		r->stage++;
	}
	record(r, 0);
}

static int any_stage(void)
{
	for (int i = 0; i < INBOUND_STAGES; i++)
		if (inbound_stage_get((enum inbound_stage_slot)i))
			return 1;
	return 0;
}

static void route_begin(struct store *st, const struct config *cfg, enum inbound_transport t,
                        const struct inbound *in, const char *offset_channel, int64_t offset,
                        const char *reply_to, inbound_route_cb cb, void *arg)
{
	struct route *r = xcalloc(1, sizeof *r);
	snprintf(r->reply_to, sizeof r->reply_to, "%s", reply_to ? reply_to : "");
	r->st = st;
	r->cfg = cfg;
	r->t = t;
	r->in = *in;
	snprintf(r->offset_channel, sizeof r->offset_channel, "%s",
	         offset_channel ? offset_channel : "");
	r->offset = offset;
	r->cb = cb;
	r->arg = arg;
	if (r->in.action == INBOUND_REPLY)
		r->in.action = inbound_classify_kw(keywords(cfg), r->in.text, &r->in.persian);
	snprintf(r->res.action, sizeof r->res.action, "%s", inbound_action_name(r->in.action));
	record(r, r->in.action == INBOUND_REPLY && any_stage());
}

void inbound_route(struct store *st, const struct config *cfg, enum inbound_transport t,
                   const struct inbound *in, const char *offset_channel, int64_t offset,
                   inbound_route_cb cb, void *arg)
{
	route_begin(st, cfg, t, in, offset_channel, offset, NULL, cb, arg);
}

void inbound_route_reply(struct store *st, const struct config *cfg, enum inbound_transport t,
                         const struct inbound *in, const char *reply_to, inbound_route_cb cb,
                         void *arg)
{
	route_begin(st, cfg, t, in, NULL, 0, reply_to, cb, arg);
}
