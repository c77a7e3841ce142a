/*
 * channel.c - the driver registry and the per-channel send wrapper.
 *
 * Owns: the table of built-in drivers, the array of struct chan built from
 * the config, each channel's concurrency limits (max_inflight and, under
 * it, the adaptive window), its circuit breaker (closed / open / half-open
 * with one probe on a timer), its token bucket (rate, burst) with the FIFO
 * of sends waiting for a token, the per-result counters, and the ordered
 * stop of every channel.  Every send reports exactly once and never from
 * inside chan_send(): reports that a driver makes synchronously, driver
 * errors and "shutting down" failures are queued and delivered from a
 * uv_idle callback.  The window and the breaker learn from each report
 * before its caller sees it, so a caller that sends again from its done
 * callback already sees the new limits.
 *
 * Never touches: message state, Redis, retries (the scheduler decides; an
 * open circuit only refuses new sends, it never fails or holds one it
 * accepted), a driver's transport.  Limits: the waiting FIFO is bounded by
 * max_inflight (a waiting send counts as in flight); all state lives on the
 * loop thread.
 */
#include "channel.h"
#include "sms_segments.h"

#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat_drivers.h"
#include "email_drivers.h"
#include "sms_drivers.h"
#include "sms_providers.h"
#include "log.h"
#include "text.h"
#include "util.h"

/* The registry: later drivers add one row here (and an extern in channel.h). */
static const struct chan_driver *const chan_drivers[] = {
    &chan_outbox_driver,        &chan_webhook_driver,     &chan_telegram_driver,
    &chan_sms_kannel_driver,    &chan_sms_generic_driver, &chan_sms_twilio_driver,
    &chan_sms_kavenegar_driver, &chan_email_smtp_driver,  NULL,
};

/* One accepted send, from chan_send() until its report. */
struct chan_pending {
	struct chan_pending *next;
	struct chan *c;
	const struct chan_msg *m;
	chan_done_cb done;
	void *arg;
	int in_send;  /* inside drv->send(): reports must be deferred */
	int reported; /* the driver (or we) reported once */
	struct chan_result res;
};

struct chan_stop_ctx {
	void (*cb)(void *arg);
	void *arg;
	size_t remaining;
};

const struct chan_driver *chan_driver_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; chan_drivers[i]; i++)
		if (strcmp(chan_drivers[i]->name, name) == 0)
			return chan_drivers[i];
	return NULL;
}

/* ---- token bucket ---------------------------------------------------- */

int64_t chan_bucket_take(double *tokens, int64_t *at_ms, int64_t now, double rate, int burst)
{
	if (rate <= 0)
		return 0;
	if (burst < 1)
		burst = 1;
	if (now > *at_ms) {
		*tokens += (double)(now - *at_ms) * rate / 1000.0;
		*at_ms = now;
	}
	if (*tokens > burst)
		*tokens = burst;
	/* A hair of tolerance so float rounding never costs a whole ms. */
	if (*tokens >= 1.0 - 1e-9) {
		*tokens -= 1.0;
		if (*tokens < 0)
			*tokens = 0;
		return 0;
	}
	double wait = ceil((1.0 - *tokens) * 1000.0 / rate);
	if (wait < 1)
		wait = 1;
	if (wait > 86400000.0)
		wait = 86400000.0;
	return (int64_t)wait;
}

static int chan_max_inflight(const struct chan *c)
{
	return c->cfg->max_inflight > 0 ? c->cfg->max_inflight : 1;
}

/* ---- adaptive window and circuit breaker ------------------------------ */

/* Defaults of the breaker keys; daemon/config.c channel_build validates
 * the same keys with the same defaults and ranges. */
#define BREAKER_FAILURES  10
#define BREAKER_PROBE_MS  (30 * 1000)
#define BREAKER_PROBE_MAX (10 * 60 * 1000)

int64_t chan_cost_estimate(const struct chan *c, const char *text)
{
	if (!c || !c->cfg || c->cfg->price <= 0)
		return 0;
	if (strcmp(c->cfg->name, "sms") != 0)
		return sms_cost_micros(1, c->cfg->price);
	struct sms_count cnt;
	if (!text || sms_count(text, strlen(text), &cnt) < 0)
		return 0;
	return sms_cost_micros(cnt.segments, c->cfg->price);
}

static const char *const circuit_names[] = {"closed", "open", "half_open"};

/* Read the breaker keys of cc (already validated when the config was
 * loaded; a channel built without a section gets the defaults). */
static void breaker_load(struct chan *c, const struct cfg_channel *cc)
{
	int64_t max = cc->max_inflight > 0 ? cc->max_inflight : 1;
	int64_t wi = (max + 3) / 4, bf = BREAKER_FAILURES;
	int64_t bp = BREAKER_PROBE_MS, bpm = BREAKER_PROBE_MAX;
	if (cc->sec) {
		struct cfg_error err = {""};
		if (cfg_sec_int(cc->sec, "window_initial", wi, 1, max, &wi, &err) < 0 ||
		    cfg_sec_int(cc->sec, "breaker_failures", bf, 0, INT32_MAX, &bf, &err) < 0 ||
		    cfg_sec_duration(cc->sec, "breaker_probe", bp, 1, INT64_MAX / 4, &bp, &err) <
		        0 ||
		    cfg_sec_duration(cc->sec, "breaker_probe_max", bpm, 1, INT64_MAX / 4, &bpm,
		                     &err) < 0) {
			log_err("chan", "chan=%s breaker settings error=%s (defaults used)",
			        cc->name, log_q(err.msg));
			wi = (max + 3) / 4;
			bf = BREAKER_FAILURES;
			bp = BREAKER_PROBE_MS;
			bpm = BREAKER_PROBE_MAX;
		}
	}
	if (wi < 1)
		wi = 1;
	if (wi > max)
		wi = max;
	if (bpm < bp)
		bpm = bp;
	c->window_initial = (int)wi;
	c->breaker_failures = (int)bf;
	c->breaker_probe_ms = bp;
	c->breaker_probe_max = bpm;
}

const char *chan_circuit_state(const struct chan *c)
{
	return circuit_names[c->circuit];
}

int chan_window(const struct chan *c)
{
	switch (c->circuit) {
	case CHAN_CIRCUIT_OPEN:
		return 0;
	case CHAN_CIRCUIT_HALF_OPEN:
		return 1;
	case CHAN_CIRCUIT_CLOSED:
		break;
	}
	int max = chan_max_inflight(c);
	return c->window < max ? c->window : max;
}

void chan_set_wake(struct chan *c, void (*wake)(void *arg), void *arg)
{
	c->wake = wake;
	c->wake_arg = arg;
}

static void wake_up(struct chan *c)
{
	if (c->wake && c->started && !c->stopping)
		c->wake(c->wake_arg);
}

static void probe_cb(uv_timer_t *t);

/* The one setter of c->circuit: logs each change once. */
static void circuit_set(struct chan *c, enum chan_circuit to, const char *why,
                        const struct chan_result *r)
{
	enum chan_circuit from = c->circuit;
	int64_t now = mono_ms();
	c->circuit = to;
	switch (to) {
	case CHAN_CIRCUIT_OPEN:
		c->circuit_opens++;
		c->probe = NULL;
		if (from == CHAN_CIRCUIT_CLOSED)
			c->opened_at = now;
		c->probe_at = now + c->probe_wait_ms;
		uv_timer_start(&c->probe_timer, probe_cb, (uint64_t)c->probe_wait_ms, 0);
		log_warnx("chan",
		          "chan=%s circuit=open from=%s why=%s tempfails=%d probe_in_ms=%lld "
		          "reason=%s retry_after_ms=%lld opens=%llu",
		          c->cfg->name, circuit_names[from], why, c->tempfails,
		          (long long)c->probe_wait_ms, log_q(r ? r->reason : ""),
		          (long long)(r ? r->retry_after_ms : 0),
		          (unsigned long long)c->circuit_opens);
		break;
	case CHAN_CIRCUIT_HALF_OPEN:
		log_info("chan", "chan=%s circuit=half_open down_ms=%lld", c->cfg->name,
		         (long long)(now - c->opened_at));
		break;
	case CHAN_CIRCUIT_CLOSED:
		uv_timer_stop(&c->probe_timer);
		c->probe = NULL;
		c->tempfails = 0;
		c->window = c->window_initial;
		c->probe_backoff_ms = c->breaker_probe_ms;
		log_notice("chan", "chan=%s circuit=closed from=%s why=%s down_ms=%lld window=%d",
		           c->cfg->name, circuit_names[from], why, (long long)(now - c->opened_at),
		           chan_window(c));
		break;
	}
}

/* Open (or re-open) for backoff ms, or the provider's retry-after when
 * longer; never longer than breaker_probe_max. */
static void circuit_open(struct chan *c, int64_t backoff, const char *why,
                         const struct chan_result *r)
{
	if (backoff > c->breaker_probe_max)
		backoff = c->breaker_probe_max;
	c->probe_backoff_ms = backoff;
	int64_t wait = backoff;
	if (r->retry_after_ms > wait)
		wait = r->retry_after_ms < c->breaker_probe_max ? r->retry_after_ms
		                                                : c->breaker_probe_max;
	c->probe_wait_ms = wait;
	circuit_set(c, CHAN_CIRCUIT_OPEN, why, r);
}

static void probe_cb(uv_timer_t *t)
{
	struct chan *c = t->data;
	if (c->stopping || c->circuit != CHAN_CIRCUIT_OPEN)
		return;
	circuit_set(c, CHAN_CIRCUIT_HALF_OPEN, "timer", NULL);
	wake_up(c);
}

/*
 * Learn from one report (before its caller sees it).  probe: it was the
 * half-open circuit's probe.  1 when the channel can take more sends than
 * before (the caller of chan_set_wake is told).
 */
static int breaker_feed(struct chan *c, const struct chan_result *r, int probe)
{
	switch (r->status) {
	case CHAN_OK:
		c->tempfails = 0;
		if (c->circuit != CHAN_CIRCUIT_CLOSED) {
			/* The probe, or a send accepted before the circuit
			 * opened: either way the provider answers again. */
			circuit_set(c, CHAN_CIRCUIT_CLOSED, probe ? "probe_ok" : "send_ok", NULL);
			return 1;
		}
		if (c->window < chan_max_inflight(c)) {
			c->window++;
			return 1;
		}
		return 0;
	case CHAN_TEMPFAIL:
		if (c->circuit == CHAN_CIRCUIT_CLOSED) {
			c->tempfails++;
			if (c->window > 1) {
				c->window /= 2;
				c->window_shrinks++;
			}
			if (c->breaker_failures > 0 && c->tempfails >= c->breaker_failures)
				circuit_open(c, c->breaker_probe_ms, "tempfails", r);
		} else if (probe) {
			int64_t b = c->probe_backoff_ms;
			b = b > c->breaker_probe_max / 2 ? c->breaker_probe_max : b * 2;
			circuit_open(c, b, "probe_failed", r);
		} else if (c->circuit == CHAN_CIRCUIT_OPEN && r->retry_after_ms > 0) {
			/* A straggler's retry-after pushes the probe back. */
			int64_t ra = r->retry_after_ms < c->breaker_probe_max
			                 ? r->retry_after_ms
			                 : c->breaker_probe_max;
			int64_t now = mono_ms();
			if (now + ra > c->probe_at) {
				c->probe_at = now + ra;
				uv_timer_start(&c->probe_timer, probe_cb, (uint64_t)ra, 0);
			}
		}
		return 0;
	case CHAN_PERMFAIL:
		/* About the message, not the provider; a half-open circuit
		 * lets the next send be its probe. */
		return probe && c->circuit == CHAN_CIRCUIT_HALF_OPEN;
	}
	return 0;
}

/* ---- reports --------------------------------------------------------- */

static void chan_check_stopped(struct chan *c);

static const char *const status_names[] = {"ok", "tempfail", "permfail"};

/* The one place a send's report reaches its caller. */
static void pending_finish(struct chan_pending *p, const struct chan_result *res)
{
	struct chan *c = p->c;
	struct chan_result r = *res; /* res may live inside p */
	chan_done_cb done = p->done;
	void *arg = p->arg;
	const char *id = p->m->id;

	assert(c->inflight > 0);
	c->inflight--;
	int probe = c->probe == p;
	if (probe)
		c->probe = NULL;
	switch (r.status) {
	case CHAN_OK:
		c->sent_ok++;
		break;
	case CHAN_TEMPFAIL:
		c->sent_temp++;
		break;
	case CHAN_PERMFAIL:
		c->sent_perm++;
		break;
	default:
		assert(!"bad chan_status");
	}
	log_trace("chan", "chan=%s msg=%s status=%s reason=%s retry_after_ms=%lld", c->cfg->name,
	          log_q(id), status_names[r.status], log_q(r.reason), (long long)r.retry_after_ms);
	/* Stopping: "shutting down" and the last reports teach nothing. */
	int more = c->stopping ? 0 : breaker_feed(c, &r, probe);
	free(p);
	done(arg, &r);
	if (more)
		wake_up(c);
	chan_check_stopped(c);
}

static void defer_cb(uv_idle_t *h)
{
	struct chan *c = h->data;
	struct chan_pending *p = c->defer_head;
	c->defer_head = c->defer_tail = NULL;
	uv_idle_stop(h);
	while (p) {
		struct chan_pending *next = p->next;
		pending_finish(p, &p->res);
		p = next;
	}
}

static void defer_report(struct chan_pending *p, const struct chan_result *res)
{
	struct chan *c = p->c;
	if (res != &p->res)
		p->res = *res;
	p->next = NULL;
	if (c->defer_tail)
		c->defer_tail->next = p;
	else
		c->defer_head = p;
	c->defer_tail = p;
	uv_idle_start(&c->defer_idle, defer_cb);
}

static void defer_fail(struct chan_pending *p, const char *fmt, const char *arg)
{
	struct chan_result res;
	memset(&res, 0, sizeof res);
	res.status = CHAN_TEMPFAIL;
	snprintf(res.reason, sizeof res.reason, fmt, arg);
	p->reported = 1;
	defer_report(p, &res);
}

/* The done callback every driver gets. */
static void pending_done(void *arg, const struct chan_result *res)
{
	struct chan_pending *p = arg;
	assert(!p->reported && "driver reported a send twice");
	p->reported = 1;
	if (p->in_send)
		defer_report(p, res);
	else
		pending_finish(p, res);
}

static void pending_start(struct chan_pending *p)
{
	struct chan *c = p->c;
	p->in_send = 1;
	int r = c->drv->send(c, p->m, pending_done, p);
	p->in_send = 0;
	if (r < 0) {
		if (p->reported) {
			log_warnx("chan", "chan=%s driver=%s send failed after reporting err=%d",
			          c->cfg->name, c->drv->name, r);
			return;
		}
		defer_fail(p, "driver: %s", strerror(-r));
	}
}

/* ---- the rate FIFO --------------------------------------------------- */

static void rate_cb(uv_timer_t *t)
{
	struct chan *c = t->data;
	while (c->wait_head && !c->stopping) {
		int64_t w = chan_bucket_take(&c->tokens, &c->tokens_at, mono_ms(), c->cfg->rate,
		                             c->cfg->burst);
		if (w > 0) {
			uv_timer_start(&c->rate_timer, rate_cb, (uint64_t)w, 0);
			return;
		}
		struct chan_pending *p = c->wait_head;
		c->wait_head = p->next;
		if (!c->wait_head)
			c->wait_tail = NULL;
		p->next = NULL;
		pending_start(p);
	}
}

int chan_send(struct chan *c, const struct chan_msg *m, chan_done_cb done, void *arg)
{
	assert(c->started && "chan_send before chan_start_all");
	assert(done);
	if (chan_free_slots(c) <= 0) {
		c->busy++;
		return -EBUSY;
	}
	struct chan_pending *p = xcalloc(1, sizeof *p);
	p->c = c;
	p->m = m;
	p->done = done;
	p->arg = arg;
	c->inflight++;
	if (c->circuit == CHAN_CIRCUIT_HALF_OPEN) {
		c->probe = p;
		c->circuit_probes++;
		log_info("chan", "chan=%s circuit=half_open probe msg=%s", c->cfg->name,
		         log_q(m->id));
	}

	int64_t w = 1;
	if (!c->wait_head)
		w = chan_bucket_take(&c->tokens, &c->tokens_at, mono_ms(), c->cfg->rate,
		                     c->cfg->burst);
	if (w == 0) {
		pending_start(p);
		return 0;
	}
	if (c->wait_tail)
		c->wait_tail->next = p;
	else
		c->wait_head = p;
	c->wait_tail = p;
	if (!uv_is_active((uv_handle_t *)&c->rate_timer))
		uv_timer_start(&c->rate_timer, rate_cb, (uint64_t)w, 0);
	return 0;
}

int chan_free_slots(const struct chan *c)
{
	if (!c->started || c->stopping)
		return 0;
	int max = chan_max_inflight(c);
	if (c->circuit == CHAN_CIRCUIT_HALF_OPEN) /* exactly one probe */
		return !c->probe && c->inflight < max ? 1 : 0;
	int n = chan_window(c) - c->inflight;
	return n > 0 ? n : 0;
}

void chan_reconfigure(struct chan *c, const struct cfg_channel *cfg)
{
	c->cfg = cfg;
	int burst = cfg->burst > 0 ? cfg->burst : 1;
	if (c->tokens > burst)
		c->tokens = burst;
	breaker_load(c, cfg);
	int max = chan_max_inflight(c);
	if (c->window > max)
		c->window = max;
	if (c->probe_backoff_ms < c->breaker_probe_ms)
		c->probe_backoff_ms = c->breaker_probe_ms;
	if (c->probe_backoff_ms > c->breaker_probe_max)
		c->probe_backoff_ms = c->breaker_probe_max;
	log_info("chan",
	         "chan=%s reconfigured max_inflight=%d rate=%g burst=%d window=%d "
	         "window_initial=%d breaker_failures=%d breaker_probe_ms=%lld "
	         "breaker_probe_max_ms=%lld",
	         cfg->name, max, cfg->rate, cfg->burst, chan_window(c), c->window_initial,
	         c->breaker_failures, (long long)c->breaker_probe_ms,
	         (long long)c->breaker_probe_max);
	if (!c->started || c->stopping)
		return;
	/* Re-evaluate the wait under the new rate. */
	if (c->wait_head) {
		uv_timer_stop(&c->rate_timer);
		uv_timer_start(&c->rate_timer, rate_cb, 0, 0);
	}
	if (c->circuit != CHAN_CIRCUIT_CLOSED && c->breaker_failures == 0) {
		circuit_set(c, CHAN_CIRCUIT_CLOSED, "breaker_disabled", NULL);
		wake_up(c);
	} else if (c->circuit == CHAN_CIRCUIT_OPEN) {
		/* A shorter breaker_probe_max also shortens the wait under way. */
		int64_t now = mono_ms();
		if (c->probe_at - now > c->breaker_probe_max) {
			c->probe_wait_ms = c->breaker_probe_max;
			c->probe_at = now + c->breaker_probe_max;
			uv_timer_start(&c->probe_timer, probe_cb, (uint64_t)c->breaker_probe_max,
			               0);
		}
	}
}

/* ---- configure, start, stop, free ------------------------------------ */

int chan_configure_all(const struct config *cfg, struct chan **out, size_t *n,
                       struct cfg_error *err)
{
	struct chan *chans = xcalloc(cfg->nchannels ? cfg->nchannels : 1, sizeof *chans);
	size_t i;
	for (i = 0; i < cfg->nchannels; i++) {
		struct chan *c = &chans[i];
		struct cfg_channel *cc = &cfg->channels[i];
		assert(cc->sec);
		c->cfg = cc;
		(void)cfg_sec_str(cc->sec, "driver", NULL); /* consumed here */
		c->drv = chan_driver_find(cc->driver);
		if (!c->drv) {
			cfg_error_set(err, cc->sec, "driver", "unknown driver '%s'",
			              cc->driver ? cc->driver : "");
			goto fail;
		}
		c->root = cfg;
		int r = c->drv->configure(c, err);
		c->root = NULL;
		if (r < 0)
			goto fail;
		if (cfg_sec_check_unused(cc->sec, err) < 0)
			goto fail;
	}
	*out = chans;
	*n = cfg->nchannels;
	return 0;
fail:
	chan_free_all(chans, i + 1 <= cfg->nchannels ? i + 1 : cfg->nchannels);
	return -1;
}

int chan_start_all(struct chan *chans, size_t n, uv_loop_t *loop)
{
	for (size_t i = 0; i < n; i++) {
		struct chan *c = &chans[i];
		assert(!c->started);
		c->loop = loop;
		uv_timer_init(loop, &c->rate_timer);
		c->rate_timer.data = c;
		uv_idle_init(loop, &c->defer_idle);
		c->defer_idle.data = c;
		uv_timer_init(loop, &c->probe_timer);
		c->probe_timer.data = c;
		c->started = 1;
		c->tokens = c->cfg->burst > 0 ? c->cfg->burst : 1;
		c->tokens_at = mono_ms();
		breaker_load(c, c->cfg);
		c->circuit = CHAN_CIRCUIT_CLOSED;
		c->window = c->window_initial;
		c->probe_backoff_ms = c->breaker_probe_ms;
		int r = c->drv->start ? c->drv->start(c, loop) : 0;
		if (r < 0) {
			log_err("chan", "chan=%s driver=%s start failed err=%s", c->cfg->name,
			        c->drv->name, log_q(strerror(-r)));
			c->drv_stopped = 1; /* nothing of the driver's to stop */
			/* The caller stops everything (chan_stop_all) and exits. */
			return r;
		}
		log_info("chan",
		         "chan=%s driver=%s started max_inflight=%d rate=%g burst=%d window=%d "
		         "breaker_failures=%d breaker_probe_ms=%lld breaker_probe_max_ms=%lld",
		         c->cfg->name, c->drv->name, chan_max_inflight(c), c->cfg->rate,
		         c->cfg->burst, c->window, c->breaker_failures,
		         (long long)c->breaker_probe_ms, (long long)c->breaker_probe_max);
	}
	return 0;
}

static void chan_stop_ctx_done(struct chan_stop_ctx *s)
{
	assert(s->remaining > 0);
	if (--s->remaining == 0) {
		void (*cb)(void *) = s->cb;
		void *arg = s->arg;
		free(s);
		if (cb)
			cb(arg);
	}
}

static void handle_closed(uv_handle_t *h)
{
	struct chan *c = h->data;
	assert(c->open_handles > 0);
	if (--c->open_handles == 0) {
		log_info("chan",
		         "chan=%s stopped ok=%llu tempfail=%llu permfail=%llu busy=%llu "
		         "circuit=%s circuit_opens=%llu",
		         c->cfg->name, (unsigned long long)c->sent_ok,
		         (unsigned long long)c->sent_temp, (unsigned long long)c->sent_perm,
		         (unsigned long long)c->busy, chan_circuit_state(c),
		         (unsigned long long)c->circuit_opens);
		struct chan_stop_ctx *s = c->stop_ctx;
		c->stop_ctx = NULL;
		if (s)
			chan_stop_ctx_done(s);
	}
}

static void chan_check_stopped(struct chan *c)
{
	if (!c->stopping || !c->drv_stopped || c->inflight > 0 || c->closing)
		return;
	assert(!c->wait_head && !c->defer_head);
	c->closing = 1;
	c->open_handles = 3;
	uv_close((uv_handle_t *)&c->rate_timer, handle_closed);
	uv_close((uv_handle_t *)&c->defer_idle, handle_closed);
	uv_close((uv_handle_t *)&c->probe_timer, handle_closed);
}

static void drv_stopped(struct chan *c)
{
	assert(!c->drv_stopped && "driver reported stopped twice");
	c->drv_stopped = 1;
	chan_check_stopped(c);
}

static void chan_stop(struct chan *c)
{
	assert(!c->stopping);
	c->stopping = 1;
	uv_timer_stop(&c->rate_timer);
	uv_timer_stop(&c->probe_timer);
	struct chan_pending *p = c->wait_head;
	c->wait_head = c->wait_tail = NULL;
	while (p) {
		struct chan_pending *next = p->next;
		defer_fail(p, "%s", "shutting down");
		p = next;
	}
	if (c->drv_stopped) /* its start failed */
		chan_check_stopped(c);
	else if (c->drv->stop)
		c->drv->stop(c, drv_stopped);
	else
		drv_stopped(c);
}

void chan_stop_all(struct chan *chans, size_t n, void (*cb)(void *arg), void *arg)
{
	struct chan_stop_ctx *s = xcalloc(1, sizeof *s);
	s->cb = cb;
	s->arg = arg;
	s->remaining = n + 1; /* +1: held until every stop has begun */
	for (size_t i = 0; i < n; i++) {
		struct chan *c = &chans[i];
		if (!c->started || c->stopping) {
			chan_stop_ctx_done(s);
			continue;
		}
		c->stop_ctx = s;
		chan_stop(c);
	}
	chan_stop_ctx_done(s);
}

void chan_free_all(struct chan *chans, size_t n)
{
	if (!chans)
		return;
	for (size_t i = 0; i < n; i++) {
		struct chan *c = &chans[i];
		assert((!c->started || (c->closing && c->open_handles == 0)) &&
		       "chan_free_all before chan_stop_all completed");
		if (c->drv && c->drv->destroy)
			c->drv->destroy(c);
		c->priv = NULL;
	}
	free(chans);
}

struct chan *chan_find(struct chan *chans, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (chans[i].cfg && strcmp(chans[i].cfg->name, name) == 0)
			return &chans[i];
	return NULL;
}

/* ---- JSON shared by drivers ------------------------------------------ */

void chan_rfc3339_ms(int64_t ms, char *out, size_t n)
{
	int64_t sec = ms / 1000, rem = ms % 1000;
	if (rem < 0) {
		rem += 1000;
		sec--;
	}
	time_t t = (time_t)sec;
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)rem);
}

/* Length of the well-formed UTF-8 sequence at s (n bytes left), or 0
 * (text.c's strict decoder: no overlongs, surrogates or > U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	uint32_t cp;
	int l = utf8_decode((const char *)s, n, &cp);
	return l > 0 ? (size_t)l : 0;
}

/* A JSON string from possibly-invalid UTF-8 (bad bytes become U+FFFD). */
static json_t *json_str(const char *s)
{
	if (!s)
		return json_null();
	json_t *j = json_string(s);
	if (j)
		return j;
	struct buf b;
	buf_init(&b, 0);
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq((const unsigned char *)s + i, n - i);
		if (l == 0) {
			buf_append(&b, "\xef\xbf\xbd", 3);
			i++;
		} else {
			buf_append(&b, s + i, l);
			i += l;
		}
	}
	j = json_stringn(b.p ? b.p : "", b.len);
	buf_free(&b);
	return j ? j : json_null();
}

static json_t *json_time(int64_t ms)
{
	if (ms <= 0)
		return json_null();
	char t[40];
	chan_rfc3339_ms(ms, t, sizeof t);
	return json_string(t);
}

char *chan_msg_json(const struct chan_msg *m, int64_t sent_at_ms)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_str(m->id));
	json_object_set_new(o, "channel", json_str(m->channel));
	json_object_set_new(o, "category", json_str(m->category));
	json_object_set_new(o, "contact_id", json_str(m->contact_id));
	json_object_set_new(o, "to", json_str(m->to));
	json_object_set_new(o, "subject", json_str(m->subject));
	json_object_set_new(o, "text", json_str(m->text));
	json_object_set_new(o, "html", json_str(m->html));
	json_object_set_new(o, "attempt", json_integer(m->attempt));
	json_object_set_new(o, "created_at", json_time(m->created_ms));
	if (sent_at_ms >= 0)
		json_object_set_new(o, "sent_at", json_time(sent_at_ms));
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		abort(); /* only on out of memory */
	return s;
}
