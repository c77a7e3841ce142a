/*
 * api_health.c - /healthz, /readyz and /metrics.  Reads counters from the
 * other modules; writes nothing.  /metrics is the Prometheus text format.
 */
#include <stdio.h>
#include <string.h>

#include "app.h"
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

static void metric(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void h_metrics(struct api_req *rq)
{
	struct app *app = api_app(rq);
	struct buf b;
	buf_init(&b, 0);
	struct dispatch_stats ds;
	dispatch_get_stats(app->disp, &ds);

	metric(&b, "clubd_up", "gauge", "1 while the process runs.");
	buf_puts(&b, "clubd_up 1\n");
	metric(&b, "clubd_redis_up", "gauge", "1 when the Redis connection is ready.");
	buf_printf(&b, "clubd_redis_up{conn=\"main\"} %d\nclubd_redis_up{conn=\"reader\"} %d\n",
	           redis_is_up(app->redis), redis_is_up(app->reader));
	metric(&b, "clubd_redis_reconnects_total", "counter", "Redis reconnects.");
	buf_printf(&b,
	           "clubd_redis_reconnects_total{conn=\"main\"} %llu\n"
	           "clubd_redis_reconnects_total{conn=\"reader\"} %llu\n",
	           (unsigned long long)redis_reconnects(app->redis),
	           (unsigned long long)redis_reconnects(app->reader));
	metric(&b, "clubd_dispatch_inflight", "gauge", "Messages claimed and not yet settled.");
	buf_printf(&b, "clubd_dispatch_inflight %d\n", ds.inflight);
	metric(&b, "clubd_dispatch_outcomes_total", "counter",
	       "Settled dispatch outcomes by result, this process.");
	const struct {
		const char *name;
		uint64_t v;
	} outs[] = {{"sent", ds.sent},     {"retried", ds.retried},       {"deferred", ds.deferred},
	            {"failed", ds.failed}, {"suppressed", ds.suppressed}, {"expired", ds.expired}};
	for (size_t i = 0; i < ARRAY_SIZE(outs); i++)
		buf_printf(&b, "clubd_dispatch_outcomes_total{result=\"%s\"} %llu\n", outs[i].name,
		           (unsigned long long)outs[i].v);
	metric(&b, "clubd_dispatch_reclaimed_total", "counter",
	       "Messages taken over from an instance whose lease ran out (possible duplicates).");
	buf_printf(&b, "clubd_dispatch_reclaimed_total %llu\n", (unsigned long long)ds.reclaimed);
	metric(&b, "clubd_dispatch_late_results_total", "counter",
	       "Send results that arrived after another instance took the message over.");
	buf_printf(&b, "clubd_dispatch_late_results_total %llu\n",
	           (unsigned long long)ds.late_results);
	metric(&b, "clubd_channel_sends_total", "counter", "Channel send results by channel.");
	for (size_t i = 0; i < app->nchans; i++) {
		const struct chan *c = &app->chans[i];
		buf_printf(&b,
		           "clubd_channel_sends_total{channel=\"%s\",result=\"ok\"} %llu\n"
		           "clubd_channel_sends_total{channel=\"%s\",result=\"tempfail\"} %llu\n"
		           "clubd_channel_sends_total{channel=\"%s\",result=\"permfail\"} %llu\n",
		           c->cfg->name, (unsigned long long)c->sent_ok, c->cfg->name,
		           (unsigned long long)c->sent_temp, c->cfg->name,
		           (unsigned long long)c->sent_perm);
	}
	metric(&b, "clubd_channel_inflight", "gauge", "Sends in progress by channel.");
	for (size_t i = 0; i < app->nchans; i++)
		buf_printf(&b, "clubd_channel_inflight{channel=\"%s\"} %d\n",
		           app->chans[i].cfg->name, app->chans[i].inflight);
	uint64_t counts[6];
	api_server_stats(app->api, counts);
	metric(&b, "clubd_http_requests_total", "counter", "API requests by status class.");
	for (int i = 1; i < 6; i++)
		buf_printf(&b, "clubd_http_requests_total{code=\"%dxx\"} %llu\n", i,
		           (unsigned long long)counts[i]);
	api_reply_raw(rq, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
	buf_free(&b);
}

const struct api_route api_health_routes[] = {
    {"GET", "/healthz", ROLE_NONE, API_BODY_NONE, h_healthz, NULL, NULL},
    {"GET", "/readyz", ROLE_NONE, API_BODY_NONE, h_readyz, NULL, NULL},
    {"GET", "/metrics", ROLE_NONE, API_BODY_NONE, h_metrics, NULL, NULL},
};
const size_t api_health_nroutes = ARRAY_SIZE(api_health_routes);
