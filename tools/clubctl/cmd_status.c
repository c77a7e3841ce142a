/*
 * cmd_status.c - `clubctl status`: liveness (/healthz), readiness
 * (/readyz) and a few key counters parsed from /metrics (Prometheus text
 * format): dispatch in flight, outcomes, Redis connections, per-channel
 * sends.
 *
 * Owns its parsed samples for the duration of the command.  Never needs a
 * token (the three routes are open) but sends one when configured.
 * Limits: reads only the sample lines it understands (name, optional
 * labels, value); unknown or new families are listed in --json only.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clubctl.h"
#include "http.h"
#include "out.h"
#include "util.h"

/* One HTTP GET without the API error handling: readyz answers 503 with a
 * JSON body on purpose and /metrics is text. */
static int get(struct ctl *c, const char *path, struct http_resp *rs)
{
	struct http_req rq = {.method = "GET", .path = path};
	if (http_do(ctl_http(c), &rq, rs) < 0)
		return ctl_conn_error(c, rs->err);
	return CTL_OK;
}

static int is_name_char(char ch, int first)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || ch == ':' ||
	       (!first && ch >= '0' && ch <= '9');
}

/*
 * Parse one sample line into {"name","labels","value"}; NULL when the line
 * is a comment, blank or not understood.
 */
static json_t *parse_sample(const char *line)
{
	const char *p = line;
	if (!is_name_char(*p, 1))
		return NULL;
	while (is_name_char(*p, 0))
		p++;
	char *name = xstrndup(line, (size_t)(p - line));
	json_t *labels = json_object();
	if (*p == '{') {
		p++;
		while (*p && *p != '}') {
			const char *k = p;
			while (is_name_char(*p, p == k))
				p++;
			if (p == k || *p != '=' || p[1] != '"')
				goto bad;
			char *key = xstrndup(k, (size_t)(p - k));
			struct buf v;
			buf_init(&v, 4096);
			buf_append(&v, "", 0);
			p += 2;
			while (*p && *p != '"') {
				char ch = *p++;
				if (ch == '\\' && *p) {
					ch = *p++;
					if (ch == 'n')
						ch = '\n';
				}
				buf_append(&v, &ch, 1);
			}
			if (*p != '"') {
				free(key);
				buf_free(&v);
				goto bad;
			}
			p++;
			json_object_set_new(labels, key, json_string(v.p));
			free(key);
			buf_free(&v);
			if (*p == ',')
				p++;
		}
		if (*p != '}')
			goto bad;
		p++;
	}
	if (*p != ' ' && *p != '\t')
		goto bad;
	while (*p == ' ' || *p == '\t')
		p++;
	char *end;
	errno = 0;
	double val = strtod(p, &end);
	if (end == p || errno == ERANGE || (*end && *end != ' ' && *end != '\t'))
		goto bad;
	json_t *s = json_object();
	json_object_set_new(s, "name", json_string(name));
	json_object_set_new(s, "labels", labels);
	/* counters and gauges are integers in practice: keep them integers */
	if (!isfinite(val))
		json_object_set_new(s, "value", json_null());
	else if (val == floor(val) && fabs(val) < 9007199254740992.0)
		json_object_set_new(s, "value", json_integer((json_int_t)val));
	else
		json_object_set_new(s, "value", json_real(val));
	free(name);
	return s;
bad:
	free(name);
	json_decref(labels);
	return NULL;
}

static json_t *parse_metrics(char *text)
{
	json_t *arr = json_array();
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_t *s = parse_sample(line);
		if (s)
			json_array_append_new(arr, s);
	}
	return arr;
}

/* Sum of the samples of `name` whose label `lk` is `lv` (any when lk is
 * NULL); -1 when there is none. */
static double metric(const json_t *samples, const char *name, const char *lk, const char *lv)
{
	size_t i;
	json_t *s;
	double sum = 0;
	int found = 0;
	json_array_foreach(samples, i, s)
	{
		if (strcmp(ctl_jstr(s, "name"), name) != 0)
			continue;
		if (lk) {
			const char *v = ctl_jstr(json_object_get(s, "labels"), lk);
			if (!v || strcmp(v, lv) != 0)
				continue;
		}
		sum += json_number_value(json_object_get(s, "value"));
		found = 1;
	}
	return found ? sum : -1;
}

/* The state label of clubd_channel_circuit{channel=ch} whose value is 1, or "-". */
static const char *circuit_of(const json_t *samples, const char *ch)
{
	size_t i;
	json_t *s;
	json_array_foreach(samples, i, s)
	{
		const json_t *l = json_object_get(s, "labels");
		if (strcmp(ctl_jstr(s, "name"), "clubd_channel_circuit") != 0 ||
		    !ctl_jstr(l, "channel") || strcmp(ctl_jstr(l, "channel"), ch) != 0 ||
		    json_number_value(json_object_get(s, "value")) != 1)
			continue;
		return ctl_jstr(l, "state") ? ctl_jstr(l, "state") : "-";
	}
	return "-";
}

static json_t *num_or_null(double v)
{
	return v < 0 ? json_null() : json_integer((json_int_t)llround(v));
}

static char *num_text(double v)
{
	return v < 0 ? xstrdup("-") : xasprintf("%lld", (long long)llround(v));
}

/* Distinct values of label `lk` among the samples of `name`, in order. */
static json_t *label_values(const json_t *samples, const char *name, const char *lk)
{
	json_t *out = json_array(), *s;
	size_t i;
	json_array_foreach(samples, i, s)
	{
		if (strcmp(ctl_jstr(s, "name"), name) != 0)
			continue;
		const char *v = ctl_jstr(json_object_get(s, "labels"), lk);
		if (!v)
			continue;
		int seen = 0;
		json_t *e;
		size_t j;
		json_array_foreach(out, j, e)
		{
			if (strcmp(json_string_value(e), v) == 0)
				seen = 1;
		}
		if (!seen)
			json_array_append_new(out, json_string(v));
	}
	return out;
}

static int run_status(struct ctl *c, const struct ctl_args *a)
{
	struct http_resp h, r, m;
	json_t *health = NULL, *ready = NULL, *samples = NULL;
	int rc;
	(void)a;

	rc = get(c, "/healthz", &h);
	if (rc != CTL_OK)
		return rc;
	rc = get(c, "/readyz", &r);
	if (rc != CTL_OK) {
		http_resp_free(&h);
		return rc;
	}
	rc = get(c, "/metrics", &m);
	if (rc != CTL_OK) {
		http_resp_free(&h);
		http_resp_free(&r);
		return rc;
	}
	health = h.body.len ? json_loadb(h.body.p, h.body.len, 0, NULL) : NULL;
	ready = r.body.len ? json_loadb(r.body.p, r.body.len, 0, NULL) : NULL;
	samples = m.status == 200 && m.body.p ? parse_metrics(m.body.p) : json_array();

	int live = h.status == 200;
	int is_ready = r.status == 200;
	double inflight = metric(samples, "clubd_dispatch_inflight", NULL, NULL);
	double sent = metric(samples, "clubd_messages_total", "result", "sent");
	double failed = metric(samples, "clubd_messages_total", "result", "failed");
	double supp = metric(samples, "clubd_messages_total", "result", "suppressed");
	double retried = metric(samples, "clubd_messages_total", "result", "retried");
	double expired = metric(samples, "clubd_messages_total", "result", "expired");
	double q_sched = metric(samples, "clubd_queue_scheduled", NULL, NULL);
	double q_ready = metric(samples, "clubd_queue_ready", NULL, NULL);
	double q_pend = metric(samples, "clubd_queue_pending", NULL, NULL);
	double q_dead = metric(samples, "clubd_dead_letters", NULL, NULL);
	json_t *conns = label_values(samples, "clubd_redis_up", "conn");
	json_t *chans = label_values(samples, "clubd_channel_sends_total", "channel");
	int redis_up = json_array_size(conns) > 0;
	json_t *redis = json_object(), *e;
	size_t i;
	json_array_foreach(conns, i, e)
	{
		double up = metric(samples, "clubd_redis_up", "conn", json_string_value(e));
		json_object_set_new(redis, json_string_value(e), json_boolean(up == 1));
		redis_up &= up == 1;
	}
	const char *rz = ctl_jstr(ready, "redis");
	if (json_array_size(conns) == 0 && rz)
		redis_up = strcmp(rz, "up") == 0;

	if (c->json) {
		json_t *doc = json_object(), *sum = json_object();
		json_object_set_new(doc, "url", json_string(c->url));
		json_object_set_new(doc, "healthz", health ? json_incref(health) : json_null());
		json_object_set_new(doc, "readyz", ready ? json_incref(ready) : json_null());
		json_object_set_new(sum, "live", json_boolean(live));
		json_object_set_new(sum, "ready", json_boolean(is_ready));
		json_object_set_new(sum, "redis_up", json_boolean(redis_up));
		json_object_set_new(sum, "redis", json_incref(redis));
		json_object_set_new(sum, "inflight", num_or_null(inflight));
		json_object_set_new(sum, "sent", num_or_null(sent));
		json_object_set_new(sum, "failed", num_or_null(failed));
		json_object_set_new(sum, "suppressed", num_or_null(supp));
		json_object_set_new(sum, "retried", num_or_null(retried));
		json_object_set_new(sum, "expired", num_or_null(expired));
		json_object_set_new(sum, "queue_scheduled", num_or_null(q_sched));
		json_object_set_new(sum, "queue_ready", num_or_null(q_ready));
		json_object_set_new(sum, "queue_pending", num_or_null(q_pend));
		json_object_set_new(sum, "dead_letters", num_or_null(q_dead));
		json_object_set_new(doc, "summary", sum);
		json_object_set_new(doc, "metrics", json_incref(samples));
		ctl_print_json(doc);
		json_decref(doc);
	} else {
		const int w = 12;
		char *t;
		out_kv(stdout, w, "server", c->url);
		if (live)
			t = xstrdup(ctl_jstr(health, "status") ? ctl_jstr(health, "status") : "ok");
		else
			t = xasprintf("DOWN (HTTP %ld)", h.status);
		out_kv(stdout, w, "health", t);
		free(t);
		if (is_ready)
			t = xstrdup(ctl_jstr(ready, "status") ? ctl_jstr(ready, "status")
			                                      : "ready");
		else
			t = xasprintf("NOT READY (HTTP %ld)", r.status);
		out_kv(stdout, w, "ready", t);
		free(t);
		struct buf b;
		buf_init(&b, 0);
		buf_append(&b, "", 0);
		json_array_foreach(conns, i, e)
		{
			const char *cn = json_string_value(e);
			buf_printf(&b, "%s%s %s", i ? ", " : "", cn,
			           json_is_true(json_object_get(redis, cn)) ? "up" : "DOWN");
		}
		if (!b.len)
			buf_puts(&b, rz ? rz : "-");
		out_kv(stdout, w, "redis", b.p);
		buf_reset(&b);
		t = num_text(inflight);
		out_kv(stdout, w, "in flight", t);
		free(t);
		char *n1 = num_text(sent), *n2 = num_text(failed), *n3 = num_text(supp),
		     *n4 = num_text(retried), *n5 = num_text(expired);
		buf_printf(&b, "sent %s, failed %s, suppressed %s, retried %s, expired %s", n1, n2,
		           n3, n4, n5);
		out_kv(stdout, w, "outcomes", b.p);
		free(n1);
		free(n2);
		free(n3);
		free(n4);
		free(n5);
		buf_reset(&b);
		n1 = num_text(q_sched);
		n2 = num_text(q_ready);
		n3 = num_text(q_pend);
		n4 = num_text(q_dead);
		buf_printf(&b, "scheduled %s, ready %s, pending %s, dead letters %s", n1, n2, n3,
		           n4);
		out_kv(stdout, w, "queues", b.p);
		free(n1);
		free(n2);
		free(n3);
		free(n4);
		buf_free(&b);
		if (json_array_size(chans) > 0) {
			static const char *const head[] = {"CHANNEL",  "OK",        "TEMPFAIL",
			                                   "PERMFAIL", "IN FLIGHT", "CIRCUIT"};
			struct out_table *tb = out_table_new(head, 6);
			for (int col = 1; col < 5; col++)
				out_table_align(tb, col, OUT_RIGHT);
			json_array_foreach(chans, i, e)
			{
				const char *ch = json_string_value(e);
				double ok = -1, tf = -1, pf = -1;
				json_t *s;
				size_t j;
				json_array_foreach(samples, j, s)
				{
					const json_t *l = json_object_get(s, "labels");
					if (strcmp(ctl_jstr(s, "name"),
					           "clubd_channel_sends_total") != 0 ||
					    !ctl_jstr(l, "channel") ||
					    strcmp(ctl_jstr(l, "channel"), ch))
						continue;
					const char *res = ctl_jstr(l, "result");
					double v = json_number_value(json_object_get(s, "value"));
					if (res && strcmp(res, "ok") == 0)
						ok = v;
					else if (res && strcmp(res, "tempfail") == 0)
						tf = v;
					else if (res && strcmp(res, "permfail") == 0)
						pf = v;
				}
				char *c1 = num_text(ok), *c2 = num_text(tf), *c3 = num_text(pf);
				char *c4 = num_text(
				    metric(samples, "clubd_channel_inflight", "channel", ch));
				const char *row[] = {ch, c1, c2, c3, c4, circuit_of(samples, ch)};
				out_table_add(tb, row);
				free(c1);
				free(c2);
				free(c3);
				free(c4);
			}
			fputc('\n', stdout);
			out_table_flush(tb, stdout);
			out_table_free(tb);
		}
	}
	if (!live)
		rc = ctl_fail(CTL_EAPI, "%s/healthz answered HTTP %ld", c->url, h.status);
	else if (!is_ready)
		rc = ctl_fail(CTL_EAPI, "the server is not ready (HTTP %ld, redis %s)", r.status,
		              rz ? rz : "?");
	json_decref(conns);
	json_decref(chans);
	json_decref(redis);
	json_decref(health);
	json_decref(ready);
	json_decref(samples);
	http_resp_free(&h);
	http_resp_free(&r);
	http_resp_free(&m);
	return rc;
}

static const struct ctl_cmd status_cmds[] = {
    {NULL, NULL, 0, 0, "show the server's health, readiness and key counters",
     "Calls /healthz, /readyz and /metrics (no token needed) and shows whether the\n"
     "process is live and ready, the state of its Redis connections, messages in\n"
     "flight, dispatch outcomes (sent, failed, suppressed, retried, expired) and\n"
     "per-channel send results.  Exits 1 when the server is not live or not ready.",
     NULL, run_status},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL},
};

const struct ctl_group ctl_group_status = {"status", "server health and key counters", status_cmds};
