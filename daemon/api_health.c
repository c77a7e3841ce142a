/*
 * api_health.c - /healthz, /readyz and /metrics.  Reads counters from the
 * other modules; writes nothing.  /metrics is the Prometheus text format.
 */
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "app.h"
#include "desk_notify.h"
#include "inbound_route.h"
#include "metrics.h"
#include "util.h"

static void h_healthz(struct api_req *rq)
{
	api_reply_json(rq, 200, json_pack("{s:s}", "status", "ok"));
}

static void h_readyz(struct api_req *rq)
{
	struct app *app = api_app(rq);
	int up = redis_is_up(app->redis) && redis_is_up(app->reader);
	api_reply_json(rq, up ? 200 : 503,
	               json_pack("{s:s, s:s}", "status", up ? "ready" : "not_ready", "redis",
	                         up ? "up" : "down"));
}

/* /metrics: what the process knows, plus queue depths read from Redis in one
 * pipelined round (left out when Redis is down: the rest still answers). */
struct metrics_ctx {
	struct api_req *rq;
	int pending;
	const char *lanes[8];
	int nlanes;
	long long xlen[8], xpending[8], due, dlq;
	int have_depths;
	struct buf totals; /* series from the shared stats hash, rendered when it arrives */
};

static void render(struct metrics_ctx *m);

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void label_value(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			buf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			buf_puts(b, "\\n");
		else
			buf_printf(b, "%c", *s);
	}
}

/* Counters every instance adds to (P stats): suppressions by reason and
 * consent withdrawn by channel. */
static void on_stats(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct metrics_ctx *m = arg;
	if (rep && rep->type == REDIS_REPLY_ARRAY) {
		metric_header(&m->totals, "clubd_suppressed_total", "counter",
		              "Messages suppressed at dispatch by reason (all instances).");
		for (size_t i = 0; i + 1 < rep->elements; i += 2) {
			const char *k = reply_str(rep->element[i]),
			           *v = reply_str(rep->element[i + 1]);
			if (!k || !v || strncmp(k, "suppressed:", 11) != 0)
				continue;
			buf_puts(&m->totals, "clubd_suppressed_total{reason=\"");
			label_value(&m->totals, k + 11);
			buf_printf(&m->totals, "\"} %s\n", v);
		}
	}
	if (--m->pending == 0)
		render(m);
}

static void render(struct metrics_ctx *m)
{
	struct api_req *rq = m->rq;
	struct app *app = api_app(rq);
	struct buf b;
	buf_init(&b, 0);
	struct dispatch_stats ds;
	dispatch_get_stats(app->disp, &ds);

	metric_header(&b, "clubd_up", "gauge", "1 while the process runs.");
	buf_puts(&b, "clubd_up 1\n");
	metric_header(&b, "clubd_redis_up", "gauge", "1 when the Redis connection is ready.");
	buf_printf(&b, "clubd_redis_up{conn=\"main\"} %d\nclubd_redis_up{conn=\"reader\"} %d\n",
	           redis_is_up(app->redis), redis_is_up(app->reader));
	metric_header(&b, "clubd_redis_reconnects_total", "counter", "Redis reconnects.");
	buf_printf(&b,
	           "clubd_redis_reconnects_total{conn=\"main\"} %llu\n"
	           "clubd_redis_reconnects_total{conn=\"reader\"} %llu\n",
	           (unsigned long long)redis_reconnects(app->redis),
	           (unsigned long long)redis_reconnects(app->reader));
	if (m->have_depths) {
		metric_header(&b, "clubd_queue_scheduled", "gauge",
		              "Messages waiting for their due time (all instances).");
		buf_printf(&b, "clubd_queue_scheduled %lld\n", m->due);
		metric_header(&b, "clubd_queue_ready", "gauge",
		              "Entries in a lane's ready stream (all instances).");
		for (int i = 0; i < m->nlanes; i++)
			buf_printf(&b, "clubd_queue_ready{lane=\"%s\"} %lld\n", m->lanes[i],
			           m->xlen[i]);
		metric_header(&b, "clubd_queue_pending", "gauge",
		              "Ready entries read by a dispatcher and not yet settled.");
		for (int i = 0; i < m->nlanes; i++)
			buf_printf(&b, "clubd_queue_pending{lane=\"%s\"} %lld\n", m->lanes[i],
			           m->xpending[i]);
		metric_header(&b, "clubd_dead_letters", "gauge",
		              "Entries in the dead-letter stream.");
		buf_printf(&b, "clubd_dead_letters %lld\n", m->dlq);
	}
	metric_header(&b, "clubd_dispatch_inflight", "gauge",
	              "Messages claimed and not yet settled, this process.");
	buf_printf(&b, "clubd_dispatch_inflight %d\n", ds.inflight);
	metric_header(&b, "clubd_messages_total", "counter",
	              "Dispatch outcomes by result, this process.");
	const struct {
		const char *name;
		uint64_t v;
	} outs[] = {{"sent", ds.sent},     {"retried", ds.retried},       {"deferred", ds.deferred},
	            {"failed", ds.failed}, {"suppressed", ds.suppressed}, {"expired", ds.expired}};
	for (size_t i = 0; i < ARRAY_SIZE(outs); i++)
		buf_printf(&b, "clubd_messages_total{result=\"%s\"} %llu\n", outs[i].name,
		           (unsigned long long)outs[i].v);
	metric_header(&b, "clubd_dispatch_reclaimed_total", "counter",
	              "Messages taken over from an instance whose lease ran out (possible "
	              "duplicates).");
	buf_printf(&b, "clubd_dispatch_reclaimed_total %llu\n", (unsigned long long)ds.reclaimed);
	metric_header(&b, "clubd_dispatch_late_results_total", "counter",
	              "Send results that arrived after another instance took the message over.");
	buf_printf(&b, "clubd_dispatch_late_results_total %llu\n",
	           (unsigned long long)ds.late_results);
	metric_header(&b, "clubd_dispatch_settle_retries_total", "counter",
	              "Settle calls repeated because Redis did not answer.");
	buf_printf(&b, "clubd_dispatch_settle_retries_total %llu\n",
	           (unsigned long long)ds.settle_retries);
	metric_header(&b, "clubd_channel_sends_total", "counter", "Channel send results.");
	for (size_t i = 0; i < app->nchans; i++) {
		const struct chan *c = &app->chans[i];
		buf_printf(
		    &b,
		    "clubd_channel_sends_total{channel=\"%s\",driver=\"%s\",result=\"ok\"} %llu\n"
		    "clubd_channel_sends_total{channel=\"%s\",driver=\"%s\",result=\"tempfail\"} "
		    "%llu\n"
		    "clubd_channel_sends_total{channel=\"%s\",driver=\"%s\",result=\"permfail\"} "
		    "%llu\n",
		    c->cfg->name, c->drv->name, (unsigned long long)c->sent_ok, c->cfg->name,
		    c->drv->name, (unsigned long long)c->sent_temp, c->cfg->name, c->drv->name,
		    (unsigned long long)c->sent_perm);
	}
	metric_header(&b, "clubd_channel_circuit", "gauge",
	              "1 for the circuit state the channel is in (closed, half_open, open).");
	for (size_t i = 0; i < app->nchans; i++) {
		static const char *const states[] = {"closed", "half_open", "open"};
		const char *cur = chan_circuit_state(&app->chans[i]);
		for (size_t k = 0; k < ARRAY_SIZE(states); k++)
			buf_printf(&b, "clubd_channel_circuit{channel=\"%s\",state=\"%s\"} %d\n",
			           app->chans[i].cfg->name, states[k], strcmp(cur, states[k]) == 0);
	}
	metric_header(&b, "clubd_channel_circuit_opens_total", "counter",
	              "Times the channel's circuit opened after repeated failures.");
	for (size_t i = 0; i < app->nchans; i++)
		buf_printf(&b, "clubd_channel_circuit_opens_total{channel=\"%s\"} %llu\n",
		           app->chans[i].cfg->name,
		           (unsigned long long)app->chans[i].circuit_opens);
	metric_header(&b, "clubd_channel_window", "gauge",
	              "Current concurrency window by channel (adaptive; 0 while open).");
	for (size_t i = 0; i < app->nchans; i++)
		buf_printf(&b, "clubd_channel_window{channel=\"%s\"} %d\n", app->chans[i].cfg->name,
		           chan_window(&app->chans[i]));
	metric_header(&b, "clubd_channel_inflight", "gauge", "Sends in progress by channel.");
	for (size_t i = 0; i < app->nchans; i++)
		buf_printf(&b, "clubd_channel_inflight{channel=\"%s\"} %d\n",
		           app->chans[i].cfg->name, app->chans[i].inflight);
	metric_header(&b, "clubd_send_duration_seconds", "histogram",
	              "Time from handing a message to its channel to the channel's report.");
	for (size_t i = 0; i < app->nchans; i++) {
		int k = addr_kind_parse(app->chans[i].cfg->name);
		if (k < 0)
			continue;
		char labels[64];
		snprintf(labels, sizeof labels, "channel=\"%s\"", app->chans[i].cfg->name);
		hist_render(&b, "clubd_send_duration_seconds", labels, &ds.send_latency[k]);
	}
	metric_header(&b, "clubd_dispatch_lag_seconds", "histogram",
	              "Time from a message's due time to its claim by a dispatcher.");
	hist_render(&b, "clubd_dispatch_lag_seconds", "", &ds.lag);
	metric_header(&b, "clubd_http_requests_total", "counter",
	              "API requests by route and status class.");
	static const char *const cls[6] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
	for (size_t i = 0; i <= app->nroutes; i++) {
		uint64_t counts[6];
		api_server_route_stats(app->api, i, counts);
		for (int k = 0; k < 6; k++) {
			if (!counts[k])
				continue;
			if (i < app->nroutes)
				buf_printf(&b,
				           "clubd_http_requests_total{method=\"%s\",route=\"%s\","
				           "code=\"%s\"} %llu\n",
				           app->routes[i].method, app->routes[i].path, cls[k],
				           (unsigned long long)counts[k]);
			else
				buf_printf(
				    &b,
				    "clubd_http_requests_total{method=\"\",route=\"unmatched\","
				    "code=\"%s\"} %llu\n",
				    cls[k], (unsigned long long)counts[k]);
		}
	}
	inbound_metrics_render(&b);
	desk_notify_metrics_render(&b);
	if (m->totals.len)
		buf_append(&b, m->totals.p, m->totals.len);
	buf_free(&m->totals);
	api_reply_raw(rq, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
	buf_free(&b);
	api_release(rq);
	free(m);
}

struct depth_call {
	struct metrics_ctx *m;
	long long *out;
	int pending_summary; /* XPENDING summary: the count is element 0 */
};

static void on_depth(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct depth_call *dc = arg;
	struct metrics_ctx *m = dc->m;
	if (!rep)
		m->have_depths = 0;
	else if (rep->type == REDIS_REPLY_INTEGER)
		*dc->out = rep->integer;
	else if (dc->pending_summary && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
	         rep->element[0]->type == REDIS_REPLY_INTEGER)
		*dc->out = rep->element[0]->integer;
	free(dc);
	if (--m->pending == 0)
		render(m);
}

static void depth(struct metrics_ctx *m, long long *out, int summary, const char *fmt,
                  const char *key)
{
	struct app *app = api_app(m->rq);
	struct depth_call *dc = xcalloc(1, sizeof *dc);
	dc->m = m;
	dc->out = out;
	dc->pending_summary = summary;
	m->pending++;
	redis_cmdf(app->redis, on_depth, dc, fmt, key, STORE_GROUP);
}

static void h_metrics(struct api_req *rq)
{
	struct app *app = api_app(rq);
	struct metrics_ctx *m = xcalloc(1, sizeof *m);
	m->rq = rq;
	buf_init(&m->totals, 0);
	api_hold(rq);
	for (size_t i = 0; i < app->nchans && m->nlanes < 7; i++)
		m->lanes[m->nlanes++] = app->chans[i].cfg->name;
	m->lanes[m->nlanes++] = "preferred";
	if (!redis_is_up(app->redis)) {
		render(m);
		return;
	}
	m->have_depths = 1;
	m->pending = 1; /* held until every command is queued */
	for (int i = 0; i < m->nlanes; i++) {
		char *k = store_key(app->st, "q:%s", m->lanes[i]);
		depth(m, &m->xlen[i], 0, "XLEN %s", k);
		depth(m, &m->xpending[i], 1, "XPENDING %s %s", k);
		free(k);
	}
	char *k = store_key(app->st, "due");
	depth(m, &m->due, 0, "ZCARD %s", k);
	free(k);
	k = store_key(app->st, "dlq");
	depth(m, &m->dlq, 0, "XLEN %s", k);
	free(k);
	k = store_key(app->st, "stats");
	m->pending++;
	redis_cmdf(app->redis, on_stats, m, "HGETALL %s", k);
	free(k);
	if (--m->pending == 0)
		render(m);
}

const struct api_route api_health_routes[] = {
    {"GET", "/healthz", ROLE_NONE, API_BODY_NONE, h_healthz, NULL, NULL},
    {"GET", "/readyz", ROLE_NONE, API_BODY_NONE, h_readyz, NULL, NULL},
    {"GET", "/metrics", ROLE_NONE, API_BODY_NONE, h_metrics, NULL, NULL},
};
const size_t api_health_nroutes = ARRAY_SIZE(api_health_routes);
