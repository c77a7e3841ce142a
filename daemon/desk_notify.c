/*
 * desk_notify.c - the complaints desk on the loop (desk_notify.h): replies
 * from the audit stream become tickets (scan -> route -> open, one pass at
 * a time per instance), and the teams' notifications go out (claim -> post
 * or create a message -> done).
 *
 * Owns: its timer, its reference on the loop's HTTP client, the parsed
 * rules it caches (re-parsed only when the stored text changes) and the
 * desk's process-wide metrics.  Never touches key names (store_desk.c and
 * the scripts do).  Never logs texts, numbers, chat ids or webhook URLs.
 *
 * Limits: DESK_SCAN_BATCH audit entries per pass (a full pass is followed
 * by another at once); DESK_CLAIM_BATCH notifications per claim, leased
 * DESK_LEASE_MS; a notification is tried DESK_NOTIFY_ATTEMPTS times with
 * backoff from DESK_RETRY_MIN_MS doubling up to DESK_RETRY_MAX_MS, then
 * recorded as failed on the ticket; webhook answers capped at 16 KiB,
 * DESK_WEBHOOK_TIMEOUT_MS each; DESK_METRIC_TEAMS teams in the histogram
 * (more are counted as team="other").
 */
#include "desk_notify.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callback.h"
#include "club/desk.h"
#include "http.h"
#include "inbound_route.h"
#include "log.h"
#include "metrics.h"
#include "privacy.h"
#include "store_desk.h"

#define DESK_TICK_MS            1000
#define DESK_SCAN_BATCH         100
#define DESK_CLAIM_BATCH        20
#define DESK_LEASE_MS           60000
#define DESK_NOTIFY_ATTEMPTS    10
#define DESK_RETRY_MIN_MS       5000
#define DESK_RETRY_MAX_MS       (15 * 60 * 1000)
#define DESK_WEBHOOK_TIMEOUT_MS 10000
#define DESK_WEBHOOK_ANSWER_MAX (16 * 1024)
#define DESK_TAGS_MAX           64
#define DESK_METRIC_TEAMS       64
#define DESK_NOTE_TTL_S         (7 * 24 * 3600)

struct desk_notify {
	uv_loop_t *loop;
	struct store *st;
	const struct config *cfg;
	uv_timer_t timer;
	int timer_open;
	struct http_client *http;
	int scanning, rescan;
	int claiming, reclaim;
	int pending; /* store calls and posts in flight */
	int stopping;
	void (*closed)(void *arg);
	void *closed_arg;
	char *rules_text; /* the stored rules the cache was parsed from */
	struct desk_rules rules;
	int rules_ok;
	int64_t last_err_log; /* mono ms: store trouble logged at most every 10 s */
};

/* ---- metrics ---------------------------------------------------------------- */

static const double frt_bounds_s[] = {60,    300,   900,   1800,   3600,  7200,
                                      14400, 28800, 86400, 172800, 604800};
#define FRT_BUCKETS ARRAY_SIZE(frt_bounds_s)

struct frt_hist {
	char team[DESK_ID_MAX + 1];
	uint64_t bucket[FRT_BUCKETS]; /* not cumulative */
	uint64_t count;
	double sum_s;
};

static struct frt_hist frt[DESK_METRIC_TEAMS + 1]; /* the last one is "other" */
static size_t nfrt;
static uint64_t tickets_n[3]; /* opened, appended, reopened */
static const char *const ticket_events[3] = {"opened", "appended", "reopened"};
static const char *const note_kinds[3] = {"webhook", "email", "chat"};
static const char *const note_results[3] = {"ok", "retry", "failed"};
static uint64_t notes_n[3][3];

void desk_notify_first_response(const char *team, int64_t ms)
{
	struct frt_hist *h = NULL;
	for (size_t i = 0; i < nfrt && !h; i++)
		if (strcmp(frt[i].team, team) == 0)
			h = &frt[i];
	if (!h && nfrt < DESK_METRIC_TEAMS && desk_id_valid(team)) {
		h = &frt[nfrt++];
		snprintf(h->team, sizeof h->team, "%s", team);
	}
	if (!h) {
		h = &frt[DESK_METRIC_TEAMS];
		snprintf(h->team, sizeof h->team, "other");
	}
	double s = (double)(ms < 0 ? 0 : ms) / 1000.0;
	h->count++;
	h->sum_s += s;
	for (size_t i = 0; i < FRT_BUCKETS; i++)
		if (s <= frt_bounds_s[i]) {
			h->bucket[i]++;
			break;
		}
}

static void frt_render(struct buf *b, const struct frt_hist *h)
{
	uint64_t cum = 0;
	for (size_t i = 0; i < FRT_BUCKETS; i++) {
		cum += h->bucket[i];
		buf_printf(b,
		           "clubd_desk_first_response_seconds_bucket{team=\"%s\",le=\"%g\"} %llu\n",
		           h->team, frt_bounds_s[i], (unsigned long long)cum);
	}
	buf_printf(b, "clubd_desk_first_response_seconds_bucket{team=\"%s\",le=\"+Inf\"} %llu\n",
	           h->team, (unsigned long long)h->count);
	buf_printf(b, "clubd_desk_first_response_seconds_sum{team=\"%s\"} %.3f\n", h->team,
	           h->sum_s);
	buf_printf(b, "clubd_desk_first_response_seconds_count{team=\"%s\"} %llu\n", h->team,
	           (unsigned long long)h->count);
}

void desk_notify_metrics_render(struct buf *b)
{
	metric_header(
	    b, "clubd_desk_tickets_total", "counter",
	    "Replies the desk took in: opened a ticket, appended to an open one, reopened "
	    "an answered one (this process).");
	for (int i = 0; i < 3; i++)
		buf_printf(b, "clubd_desk_tickets_total{event=\"%s\"} %llu\n", ticket_events[i],
		           (unsigned long long)tickets_n[i]);
	metric_header(b, "clubd_desk_notifications_total", "counter",
	              "Team notifications by target kind and result (retry: tried again later), "
	              "this process.");
	for (int k = 0; k < 3; k++)
		for (int r = 0; r < 3; r++)
			buf_printf(
			    b, "clubd_desk_notifications_total{kind=\"%s\",result=\"%s\"} %llu\n",
			    note_kinds[k], note_results[r], (unsigned long long)notes_n[k][r]);
	metric_header(b, "clubd_desk_first_response_seconds", "histogram",
	              "Time from a ticket's first message to the first answer, by team (answers "
	              "recorded by this process).");
	for (size_t i = 0; i < nfrt; i++)
		frt_render(b, &frt[i]);
	if (frt[DESK_METRIC_TEAMS].count)
		frt_render(b, &frt[DESK_METRIC_TEAMS]);
}

static int kind_index(const char *kind)
{
	for (int i = 0; i < 3; i++)
		if (strcmp(kind, note_kinds[i]) == 0)
			return i;
	return -1;
}

/* ---- life cycle ----------------------------------------------------------------- */

static void scan(struct desk_notify *d);
static void claim(struct desk_notify *d);

static void maybe_closed(struct desk_notify *d)
{
	if (!d->stopping || !d->closed || d->pending > 0 || d->timer_open)
		return;
	void (*cb)(void *) = d->closed;
	void *arg = d->closed_arg;
	desk_rules_free(&d->rules);
	free(d->rules_text);
	free(d);
	cb(arg);
}

static void store_trouble(struct desk_notify *d, const char *what, const redisReply *rep)
{
	int64_t now = mono_ms();
	if (d->last_err_log && now - d->last_err_log < 10000)
		return;
	d->last_err_log = now;
	log_warnx("desk", "store call failed step=%s error=%s", what,
	          rep && rep->type == REDIS_REPLY_ERROR ? log_q(rep->str) : "no answer");
}

struct desk_notify *desk_notify_new(uv_loop_t *loop, struct store *st, const struct config *cfg)
{
	struct desk_notify *d = xcalloc(1, sizeof *d);
	d->loop = loop;
	d->st = st;
	d->cfg = cfg;
	return d;
}

static void on_tick(uv_timer_t *t)
{
	struct desk_notify *d = t->data;
	scan(d);
	claim(d);
}

static void on_reply(void *ctx, const struct inbound *in, const struct inbound_result *res)
{
	(void)in;
	if (res->ticket[0]) {
		/* the router added it to the contact's open ticket */
		tickets_n[1]++;
		log_info("desk", "ticket=%s event=%s", res->ticket, ticket_events[1]);
		return;
	}
	desk_notify_kick(ctx);
}

void desk_notify_start(struct desk_notify *d)
{
	uv_timer_init(d->loop, &d->timer);
	d->timer.data = d;
	d->timer_open = 1;
	uv_timer_start(&d->timer, on_tick, DESK_TICK_MS, DESK_TICK_MS);
	d->http = http_client_get(d->loop);
	inbound_route_on_reply(on_reply, d);
}

void desk_notify_reconfigure(struct desk_notify *d, const struct config *cfg)
{
	d->cfg = cfg;
}

void desk_notify_kick(struct desk_notify *d)
{
	if (d && !d->stopping)
		scan(d);
}

void desk_notify_stop(struct desk_notify *d)
{
	if (!d || d->stopping)
		return;
	d->stopping = 1;
	inbound_route_on_reply(NULL, NULL);
	if (d->timer_open)
		uv_timer_stop(&d->timer);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct desk_notify *d = h->data;
	d->timer_open = 0;
	maybe_closed(d);
}

void desk_notify_close(struct desk_notify *d, void (*cb)(void *arg), void *arg)
{
	desk_notify_stop(d);
	d->closed = cb;
	d->closed_arg = arg;
	if (d->http) {
		struct http_client *h = d->http;
		d->http = NULL;
		http_client_put(h); /* cancels the posts in flight: their callbacks run now */
	}
	if (d->timer_open)
		uv_close((uv_handle_t *)&d->timer, on_timer_closed);
	else
		maybe_closed(d);
}

/* ---- replies -> tickets ---------------------------------------------------------- */

static const char *el_str(const redisReply *a, size_t i)
{
	const char *s =
	    a && a->type == REDIS_REPLY_ARRAY && i < a->elements ? reply_str(a->element[i]) : NULL;
	return s ? s : "";
}

static const struct desk_rules *rules_for(struct desk_notify *d, const char *text)
{
	if (!*text)
		return NULL;
	if (d->rules_text && strcmp(d->rules_text, text) == 0)
		return d->rules_ok ? &d->rules : NULL;
	desk_rules_free(&d->rules);
	free(d->rules_text);
	d->rules_text = xstrdup(text);
	json_t *j = json_loads(text, 0, NULL);
	char field[96] = "", why[160] = "";
	d->rules_ok =
	    j && desk_rules_parse(j, &d->rules, field, sizeof field, why, sizeof why) == 0;
	json_decref(j);
	if (!d->rules_ok) {
		desk_rules_free(&d->rules);
		log_err("desk",
		        "stored rules unusable, every reply goes to the fallback team "
		        "field=%s error=%s",
		        log_q(field), log_q(why));
	}
	return d->rules_ok ? &d->rules : NULL;
}

static void on_opened(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct desk_notify *d = arg;
	d->pending--;
	d->scanning = 0;
	if (!rep || rep->type != REDIS_REPLY_ARRAY) {
		store_trouble(d, "open", rep);
		maybe_closed(d);
		return;
	}
	int notify = 0;
	for (size_t i = 0; i < rep->elements; i++) {
		const redisReply *e = rep->element[i];
		const char *kind = el_str(e, 2);
		int ev = strcmp(kind, "new") == 0      ? 0
		         : strcmp(kind, "append") == 0 ? 1
		         : strcmp(kind, "reopen") == 0 ? 2
		                                       : -1;
		if (ev < 0)
			continue;
		tickets_n[ev]++;
		notify |= ev != 1;
		log_info("desk", "ticket=%s event=%s entry=%s", el_str(e, 1), ticket_events[ev],
		         el_str(e, 0));
	}
	if (notify)
		claim(d);
	scan(d); /* the rest of the stream, if any */
	maybe_closed(d);
}

/* The contact's tags (a JSON array of strings) into v (borrowing from j). */
static size_t tags_of(json_t *j, const char **v, size_t max)
{
	size_t n = 0, i;
	json_t *t;
	if (!json_is_array(j))
		return 0;
	json_array_foreach(j, i, t)
	{
		if (json_is_string(t) && n < max)
			v[n++] = json_string_value(t);
	}
	return n;
}

/* Route every reply of a scan answer and open them in one script. */
static void open_replies(struct desk_notify *d, const char *last, const char *rules_text,
                         const redisReply *arr)
{
	const struct desk_rules *rules = rules_for(d, rules_text);
	size_t n = arr->elements;
	struct store_desk_reply *r = xcalloc(n, sizeof *r);
	char(*ids)[ID_LEN + 1] = xcalloc(n, sizeof *ids);
	char(*rule)[24] = xcalloc(n, sizeof *rule);
	size_t k = 0;
	int64_t now = now_ms();
	for (size_t i = 0; i < n; i++) {
		const redisReply *e = arr->element[i];
		if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 13)
			continue;
		const char *aid = el_str(e, 1);
		int64_t at = now;
		char ms[24];
		size_t ml = strcspn(aid, "-");
		if (ml > 0 && ml < sizeof ms) {
			memcpy(ms, aid, ml);
			ms[ml] = '\0';
			if (parse_i64(ms, 0, INT64_MAX, &at) < 0)
				at = now;
		}
		/* the text may be sealed at rest: route on the plain text, store it
		 * as it is */
		const char *stored = el_str(e, 5);
		char *plain = privacy_open_str(stored, strlen(stored), NULL, NULL);
		json_t *tj = json_loads(el_str(e, 10), 0, NULL);
		const char *tags[DESK_TAGS_MAX];
		struct desk_reply m = {.text = plain ? plain : "",
		                       .channel = el_str(e, 2),
		                       .tier = el_str(e, 9),
		                       .tags = tags,
		                       .ntags = tags_of(tj, tags, DESK_TAGS_MAX),
		                       .campaign = el_str(e, 11),
		                       .forward = el_str(e, 12)};
		enum desk_via via;
		int ri = -1;
		const char *team = desk_route(rules, &m, &via, &ri);
		id_new(ids[k], at);
		if (ri >= 0 && rules->rule[ri].name[0])
			snprintf(rule[k], sizeof rule[k], "%.23s", rules->rule[ri].name);
		else if (ri >= 0)
			snprintf(rule[k], sizeof rule[k], "#%d", ri + 1);
		r[k] = (struct store_desk_reply){.did = el_str(e, 0),
		                                 .aid = aid,
		                                 .at = at,
		                                 .ticket = ids[k],
		                                 .team = team,
		                                 .via = desk_via_name(via),
		                                 .rule = rule[k],
		                                 .contact = el_str(e, 8),
		                                 .channel = el_str(e, 2),
		                                 .from = el_str(e, 3),
		                                 .to = el_str(e, 4),
		                                 .text = stored,
		                                 .provider = el_str(e, 6),
		                                 .provider_id = el_str(e, 7),
		                                 .campaign = el_str(e, 11)};
		/* store_desk_open copies every string before returning; the
		 * team may point into tj or the rules, both alive until then */
		k++;
		free(plain);
		json_decref(tj); /* team is from the rules or the reply, never from tj */
	}
	d->pending++;
	store_desk_open(d->st, now, d->cfg->desk_reopen_ms, last, r, k, on_opened, d);
	free(r);
	free(ids);
	free(rule);
}

static void on_scanned(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct desk_notify *d = arg;
	d->pending--;
	if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
	    rep->element[2]->type != REDIS_REPLY_ARRAY) {
		d->scanning = 0;
		store_trouble(d, "scan", rep);
		maybe_closed(d);
		return;
	}
	const char *last = el_str(rep, 0);
	if (d->stopping || rep->element[2]->elements == 0) {
		d->scanning = 0;
		/* the script moved past entries with nothing to open: look further */
		if (*last || d->rescan)
			scan(d);
		maybe_closed(d);
		return;
	}
	open_replies(d, last, el_str(rep, 1), rep->element[2]);
}

static void scan(struct desk_notify *d)
{
	if (d->stopping)
		return;
	if (d->scanning) {
		d->rescan = 1;
		return;
	}
	d->scanning = 1;
	d->rescan = 0;
	d->pending++;
	store_desk_scan(d->st, now_ms(), DESK_SCAN_BATCH, on_scanned, d);
}

/* ---- notifications -------------------------------------------------------------- */

struct note {
	struct desk_notify *d;
	char *member;
	int64_t attempts;
	int kind; /* kind_index */
	json_t *body;
	char *text; /* the webhook body sent (owned until the post ends) */
};

static void note_free(struct note *n)
{
	free(n->member);
	json_decref(n->body);
	free(n->text);
	free(n);
}

static void on_done(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct desk_notify *d = arg;
	d->pending--;
	if (!rep || rep->type != REDIS_REPLY_ARRAY)
		store_trouble(d, "notified", rep); /* claimed again after the lease */
	maybe_closed(d);
}

/* Record the outcome of one notification: ok, or a failure that is retried
 * (retry != 0) until DESK_NOTIFY_ATTEMPTS. */
static void note_end(struct note *n, int ok, int retry, const char *detail)
{
	struct desk_notify *d = n->d;
	const char *outcome = ok                                            ? "ok"
	                      : retry && n->attempts < DESK_NOTIFY_ATTEMPTS ? "retry"
	                                                                    : "fail";
	int64_t now = now_ms(), delay = DESK_RETRY_MIN_MS;
	for (int64_t i = 1; i < n->attempts && delay < DESK_RETRY_MAX_MS; i++)
		delay *= 2;
	if (delay > DESK_RETRY_MAX_MS)
		delay = DESK_RETRY_MAX_MS;
	if (n->kind >= 0)
		notes_n[n->kind][ok ? 0 : outcome[0] == 'r' ? 1 : 2]++;
	if (!ok)
		log_warnx("desk", "notification item=%s attempt=%lld outcome=%s detail=%s",
		          n->member, (long long)n->attempts, outcome, log_q(detail));
	d->pending++;
	store_desk_done(d->st, n->member, now, outcome, now + delay, detail ? detail : "", on_done,
	                d);
	note_free(n);
	maybe_closed(d);
}

static void on_posted(void *arg, const struct http_resp *resp)
{
	struct note *n = arg;
	struct desk_notify *d = n->d;
	d->pending--;
	if (resp->err == HTTP_E_CANCELLED || d->stopping) {
		note_free(n); /* shutting down: claimed again after the lease */
		maybe_closed(d);
		return;
	}
	char why[160];
	if (resp->err != HTTP_E_NONE) {
		snprintf(why, sizeof why, "%s",
		         resp->err == HTTP_E_TIMEOUT ? "timeout" : resp->error);
		note_end(n, 0, 1, why);
	} else if (resp->status >= 200 && resp->status < 300) {
		note_end(n, 1, 0, NULL);
	} else {
		snprintf(why, sizeof why, "http %ld", resp->status);
		int retry = resp->status >= 500 || resp->status == 408 || resp->status == 429 ||
		            (resp->status >= 300 && resp->status < 400);
		note_end(n, 0, retry, why);
	}
}

static void post_webhook(struct note *n, const char *url)
{
	struct desk_notify *d = n->d;
	if (!callback_enabled()) {
		note_end(n, 0, 0, "no [api] callback_secret_file to sign the webhook with");
		return;
	}
	if (!d->http) {
		note_free(n);
		return;
	}
	n->text = json_dumps(n->body, JSON_COMPACT);
	size_t blen = strlen(n->text);
	long long ts = (long long)(now_ms() / 1000);
	struct buf m;
	buf_init(&m, 0);
	buf_printf(&m, "%lld.", ts);
	buf_append(&m, n->text, blen);
	char mac[65];
	int signed_ok = callback_hmac_hex(m.p, m.len, mac) == 0;
	buf_free(&m);
	if (!signed_ok) {
		note_end(n, 0, 1, "signing failed");
		return;
	}
	char h_ts[64], h_sig[96], h_ev[80], h_id[200];
	snprintf(h_ts, sizeof h_ts, "X-Clubd-Timestamp: %lld", ts);
	snprintf(h_sig, sizeof h_sig, "X-Clubd-Signature: sha256=%s", mac);
	snprintf(h_ev, sizeof h_ev, "X-Clubd-Event: %s",
	         json_string_value(json_object_get(n->body, "event")));
	snprintf(h_id, sizeof h_id, "X-Clubd-Delivery: %s", n->member);
	const char *hdrs[] = {"Content-Type: application/json", h_ts, h_sig, h_ev, h_id, NULL};
	struct http_req rq = {.method = "POST",
	                      .url = url,
	                      .headers = hdrs,
	                      .body = n->text,
	                      .body_len = blen,
	                      .timeout_ms = DESK_WEBHOOK_TIMEOUT_MS,
	                      .max_body = DESK_WEBHOOK_ANSWER_MAX};
	d->pending++;
	int rc = http_request(d->http, &rq, on_posted, n);
	if (rc < 0) {
		d->pending--;
		note_end(n, 0, 1,
		         rc == -EINVAL ? "the URL was refused" : "the HTTP client is closing");
	}
}

static void on_msg_created(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct note *n = arg;
	struct desk_notify *d = n->d;
	d->pending--;
	const char *st = el_str(rep, 0);
	if (strcmp(st, "ok") == 0 || strcmp(st, "dup") == 0)
		note_end(n, 1, 0, NULL);
	else if (rep && rep->type == REDIS_REPLY_ARRAY)
		note_end(n, 0, 0, st);
	else
		note_end(n, 0, 1, "store unavailable");
}

/* Email and chat: a message to the team's address through the pipeline. */
static void send_message(struct note *n, const char *kind, const char *addr)
{
	struct desk_notify *d = n->d;
	json_t *t = json_object_get(n->body, "ticket");
	const char *tk = json_string_value(json_object_get(t, "id"));
	const char *team = json_string_value(json_object_get(t, "team"));
	const char *ev = json_string_value(json_object_get(n->body, "event"));
	const char *camp = json_string_value(json_object_get(t, "campaign"));
	int reopened = ev && strcmp(ev, "ticket.reopened") == 0;
	char *subject =
	    xasprintf("Ticket %s %s for team %s", tk, reopened ? "reopened" : "opened", team);
	char *text =
	    xasprintf("%s.\nChannel: %s\nFrom: %s\nContact: %s\nCampaign: %s\n\n%s\n\n"
	              "Answer with: clubctl desk answer %s TEXT\n",
	              subject, json_string_value(json_object_get(t, "channel")),
	              json_string_value(json_object_get(t, "from")),
	              json_string_value(json_object_get(t, "contact_id"))
	                  ? json_string_value(json_object_get(t, "contact_id"))
	                  : "-",
	              camp ? camp : "-", json_string_value(json_object_get(t, "text")), tk);
	char idem[256];
	snprintf(idem, sizeof idem, "desk-notify:%s", n->member);
	const char *fields[] = {"text", text, "subject", subject, "tk", tk};
	int64_t now = now_ms();
	struct msg_new m = {.addr_kind = kind,
	                    .addr = addr,
	                    .lane = kind,
	                    .channel = kind,
	                    .category = "transactional",
	                    .idem = idem,
	                    .idem_ttl_s = DESK_NOTE_TTL_S,
	                    .now = now,
	                    .due = now,
	                    .expires = now + d->cfg->sched_message_ttl_ms,
	                    .fields = fields,
	                    .nfields = strcmp(kind, "email") == 0 ? 6 : 2};
	if (strcmp(kind, "email") != 0) {
		fields[2] = "tk";
		fields[3] = tk;
		m.nfields = 4;
	}
	char id[ID_LEN + 1];
	d->pending++;
	store_msg_create(d->st, &m, id, on_msg_created, n);
	free(subject);
	free(text);
}

/* The body every target gets: {event, ticket: {...}, attempt, sent_at}. */
static json_t *note_body(const redisReply *e, int64_t attempts)
{
	const char *ev = el_str(e, 3);
	char created[40], sent[40];
	int64_t c = 0;
	if (parse_i64(el_str(e, 12), 0, INT64_MAX, &c) < 0)
		c = 0;
	fmt_time(c, created, sizeof created);
	fmt_time(now_ms(), sent, sizeof sent);
	char *from = privacy_open_str(el_str(e, 10), strlen(el_str(e, 10)), NULL, NULL);
	char *text = privacy_open_str(el_str(e, 13), strlen(el_str(e, 13)), NULL, NULL);
	json_t *t = json_object();
	json_object_set_new(t, "id", json_string(el_str(e, 2)));
	json_object_set_new(t, "team", json_string(el_str(e, 6)));
	json_object_set_new(t, "state", json_string(el_str(e, 7)));
	json_object_set_new(t, "channel", json_string(el_str(e, 8)));
	json_object_set_new(t, "contact_id",
	                    *el_str(e, 9) ? json_string(el_str(e, 9)) : json_null());
	json_t *fj = from ? json_string(from) : NULL;
	json_object_set_new(t, "from", fj ? fj : json_null());
	json_object_set_new(t, "campaign",
	                    *el_str(e, 11) ? json_string(el_str(e, 11)) : json_null());
	json_object_set_new(t, "created_at", json_string(created));
	json_t *tj = text ? json_string(text) : NULL;
	json_object_set_new(t, "text", tj ? tj : json_string(""));
	free(from);
	free(text);
	json_t *o = json_object();
	json_object_set_new(
	    o, "event",
	    json_string(strcmp(ev, "reopened") == 0 ? "ticket.reopened" : "ticket.opened"));
	json_object_set_new(o, "ticket", t);
	json_object_set_new(o, "attempt", json_integer(attempts));
	json_object_set_new(o, "sent_at", json_string(sent));
	return o;
}

static void on_claimed(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct desk_notify *d = arg;
	d->pending--;
	d->claiming = 0;
	if (!rep || rep->type != REDIS_REPLY_ARRAY) {
		store_trouble(d, "claim", rep);
		maybe_closed(d);
		return;
	}
	for (size_t i = 0; i < rep->elements; i++) {
		const redisReply *e = rep->element[i];
		if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 14)
			continue;
		struct note *n = xcalloc(1, sizeof *n);
		n->d = d;
		n->member = xstrdup(el_str(e, 0));
		n->attempts =
		    e->element[1]->type == REDIS_REPLY_INTEGER ? e->element[1]->integer : 1;
		const char *kind = el_str(e, 4), *target = el_str(e, 5);
		n->kind = kind_index(kind);
		if (d->stopping) {
			note_free(n);
			continue;
		}
		if (n->kind < 0 || !*el_str(e, 6)) {
			note_end(n, 0, 0, "the ticket is gone");
			continue;
		}
		if (!*target) {
			note_end(n, 0, 0, "the team has no such target now");
			continue;
		}
		n->body = note_body(e, n->attempts);
		if (n->kind == 0)
			post_webhook(n, target);
		else
			send_message(n, kind, target);
	}
	if (rep->elements >= DESK_CLAIM_BATCH || d->reclaim)
		claim(d);
	maybe_closed(d);
}

static void claim(struct desk_notify *d)
{
	if (d->stopping)
		return;
	if (d->claiming) {
		d->reclaim = 1;
		return;
	}
	d->claiming = 1;
	d->reclaim = 0;
	d->pending++;
	store_desk_claim(d->st, now_ms(), DESK_LEASE_MS, DESK_CLAIM_BATCH, on_claimed, d);
}
