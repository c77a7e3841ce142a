/*
 * channel.c - the driver registry and the per-channel send wrapper.
 *
 * Owns: the table of built-in drivers, the array of struct chan built from
 * the config, each channel's concurrency window (max_inflight), its token
 * bucket (rate, burst) with the FIFO of sends waiting for a token, the
 * per-result counters, and the ordered stop of every channel.  Every send
 * reports exactly once and never from inside chan_send(): reports that a
 * driver makes synchronously, driver errors and "shutting down" failures
 * are queued and delivered from a uv_idle callback.
 *
 * Never touches: message state, Redis, retries (the scheduler decides),
 * a driver's transport.  Limits: the waiting FIFO is bounded by
 * max_inflight (a waiting send counts as in flight); all state lives on the
 * loop thread.
 */
#include "channel.h"

#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat_drivers.h"
#include "sms_drivers.h"
#include "sms_providers.h"
#include "log.h"
#include "util.h"

/* The registry: later drivers add one row here (and an extern in channel.h). */
static const struct chan_driver *const chan_drivers[] = {
    &chan_outbox_driver,     &chan_webhook_driver,     &chan_telegram_driver,
    &chan_sms_kannel_driver, &chan_sms_generic_driver, &chan_sms_twilio_driver,
    &chan_sms_kavenegar_driver, NULL,
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
	free(p);
	done(arg, &r);
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
	if (c->stopping || c->inflight >= chan_max_inflight(c)) {
		c->busy++;
		return -EBUSY;
	}
	struct chan_pending *p = xcalloc(1, sizeof *p);
	p->c = c;
	p->m = m;
	p->done = done;
	p->arg = arg;
	c->inflight++;

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
	int n = chan_max_inflight(c) - c->inflight;
	return n > 0 ? n : 0;
}

void chan_reconfigure(struct chan *c, const struct cfg_channel *cfg)
{
	c->cfg = cfg;
	int burst = cfg->burst > 0 ? cfg->burst : 1;
	if (c->tokens > burst)
		c->tokens = burst;
	/* Re-evaluate the wait under the new rate. */
	if (c->started && !c->stopping && c->wait_head) {
		uv_timer_stop(&c->rate_timer);
		uv_timer_start(&c->rate_timer, rate_cb, 0, 0);
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
		c->started = 1;
		c->tokens = c->cfg->burst > 0 ? c->cfg->burst : 1;
		c->tokens_at = mono_ms();
		int r = c->drv->start ? c->drv->start(c, loop) : 0;
		if (r < 0) {
			log_err("chan", "chan=%s driver=%s start failed err=%s", c->cfg->name,
			        c->drv->name, log_q(strerror(-r)));
			c->drv_stopped = 1; /* nothing of the driver's to stop */
			/* The caller stops everything (chan_stop_all) and exits. */
			return r;
		}
		log_info("chan", "chan=%s driver=%s started max_inflight=%d rate=%g burst=%d",
		         c->cfg->name, c->drv->name, chan_max_inflight(c), c->cfg->rate,
		         c->cfg->burst);
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
		log_info("chan", "chan=%s stopped ok=%llu tempfail=%llu permfail=%llu busy=%llu",
		         c->cfg->name, (unsigned long long)c->sent_ok,
		         (unsigned long long)c->sent_temp, (unsigned long long)c->sent_perm,
		         (unsigned long long)c->busy);
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
	c->open_handles = 2;
	uv_close((uv_handle_t *)&c->rate_timer, handle_closed);
	uv_close((uv_handle_t *)&c->defer_idle, handle_closed);
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

/* Length of the well-formed UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	if (s[0] < 0x80)
		return 1;
	size_t len;
	uint32_t cp, min;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2, cp = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3, cp = s[0] & 0x0f, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4, cp = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
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
