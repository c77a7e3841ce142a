/*
 * dlr_poll.c - polls delivery status for channels whose provider has no
 * callbacks.  Owns one timer and at most one poll per channel in flight.
 * Reads the await set (store_await_*), asks the driver, records final
 * answers through msg_report (which also leaves the await set); gives up on
 * a message after AWAIT_MAX_AGE.  Never touches message state directly.
 *
 * Limits: KAVENEGAR_STATUS_MAX ids per poll; one poll per channel at a time.
 */
#include "dlr_poll.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sms_providers.h"
#include "util.h"

#define AWAIT_MAX_AGE_MS (3LL * 86400 * 1000) /* no report after 3 days: stop asking */

struct poll_call {
	struct dlr_poll *p;
	struct chan *c;
	char **ids;
	size_t n;
};

struct dlr_poll {
	uv_loop_t *loop;
	struct store *st;
	struct chan *chans;
	size_t nchans;
	const struct config *cfg;
	uv_timer_t timer;
	int inflight; /* Redis reads and provider polls in flight */
	int closing;
	void (*close_cb)(void *);
	void *close_arg;
};

int dlr_poll_wanted(const struct chan *c)
{
	return c && c->drv == &chan_sms_kavenegar_driver;
}

static void maybe_closed(struct dlr_poll *p);

static void call_free(struct poll_call *pc)
{
	for (size_t i = 0; i < pc->n; i++)
		free(pc->ids[i]);
	free(pc->ids);
	free(pc);
}

static void on_reported(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	(void)rep; /* a lost report is asked again at the next poll */
	struct dlr_poll *p = arg;
	p->inflight--;
	maybe_closed(p);
}

static void on_status(void *arg, int err, const struct kavenegar_status *st, size_t n)
{
	struct poll_call *pc = arg;
	struct dlr_poll *p = pc->p;
	p->inflight--;
	if (err < 0) {
		log_warnx("dlr", "chan=%s status poll failed err=%d n=%zu", pc->c->cfg->name, err,
		          pc->n);
	} else if (!p->closing) {
		int64_t now = now_ms();
		for (size_t i = 0; i < n; i++) {
			const char *what = st[i].state == KAVENEGAR_DELIVERED     ? "delivered"
			                   : st[i].state == KAVENEGAR_UNDELIVERED ? "undelivered"
			                                                          : NULL;
			if (!what)
				continue;
			struct argv a;
			argv_init(&a);
			argv_add(&a, st[i].msg_id);
			argv_addll(&a, now);
			argv_add(&a, what);
			argv_addll(&a, st[i].code);
			argv_add(&a, "kavenegar");
			argv_addll(&a, p->cfg->contacts_timeline_max);
			argv_add(&a, st[i].messageid);
			p->inflight++;
			store_eval(p->st, SCRIPT_MSG_REPORT, &a, on_reported, p);
			argv_free(&a);
		}
	}
	call_free(pc);
	maybe_closed(p);
}

static void on_await(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct poll_call *pc = arg;
	struct dlr_poll *p = pc->p;
	p->inflight--;
	if (p->closing || !rep || rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
		call_free(pc);
		maybe_closed(p);
		return;
	}
	pc->ids = xcalloc(rep->elements, sizeof *pc->ids);
	for (size_t i = 0; i < rep->elements; i++)
		if (reply_str(rep->element[i]))
			pc->ids[pc->n++] = xstrdup(reply_str(rep->element[i]));
	p->inflight++;
	if (kavenegar_status_by_localid(pc->c, (const char *const *)pc->ids, pc->n, on_status, pc) <
	    0) {
		p->inflight--;
		call_free(pc);
		maybe_closed(p);
	}
}

static void on_timer(uv_timer_t *t)
{
	struct dlr_poll *p = container_of(t, struct dlr_poll, timer);
	if (p->closing || !redis_is_up(p->st->r))
		return;
	int64_t now = now_ms();
	for (size_t i = 0; i < p->nchans; i++) {
		struct chan *c = &p->chans[i];
		if (!dlr_poll_wanted(c))
			continue;
		char *k = store_key(p->st, "await:%s", c->cfg->name);
		/* Forget what is too old to get a report, then take the oldest. */
		redis_cmdf(p->st->r, NULL, NULL, "ZREMRANGEBYSCORE %s -inf %lld", k,
		           (long long)(now - AWAIT_MAX_AGE_MS));
		struct poll_call *pc = xcalloc(1, sizeof *pc);
		pc->p = p;
		pc->c = c;
		p->inflight++;
		redis_cmdf(p->st->r, on_await, pc, "ZRANGE %s 0 %d", k, KAVENEGAR_STATUS_MAX - 1);
		free(k);
	}
}

struct dlr_poll *dlr_poll_new(uv_loop_t *loop, struct store *st, struct chan *chans, size_t n,
                              const struct config *cfg)
{
	struct dlr_poll *p = xcalloc(1, sizeof *p);
	p->loop = loop;
	p->st = st;
	p->chans = chans;
	p->nchans = n;
	p->cfg = cfg;
	uv_timer_init(loop, &p->timer);
	return p;
}

void dlr_poll_start(struct dlr_poll *p)
{
	uint64_t every = (uint64_t)p->cfg->dispatch_status_poll_ms;
	uv_timer_start(&p->timer, on_timer, every, every);
}

void dlr_poll_stop(struct dlr_poll *p)
{
	uv_timer_stop(&p->timer);
}

void dlr_poll_reconfigure(struct dlr_poll *p, const struct config *cfg)
{
	p->cfg = cfg;
	if (uv_is_active((uv_handle_t *)&p->timer))
		dlr_poll_start(p);
}

static void on_closed(uv_handle_t *h)
{
	struct dlr_poll *p = container_of((uv_timer_t *)h, struct dlr_poll, timer);
	void (*cb)(void *) = p->close_cb;
	void *arg = p->close_arg;
	free(p);
	if (cb)
		cb(arg);
}

static void maybe_closed(struct dlr_poll *p)
{
	if (p->closing == 1 && p->inflight == 0) {
		p->closing = 2;
		uv_close((uv_handle_t *)&p->timer, on_closed);
	}
}

void dlr_poll_close(struct dlr_poll *p, void (*cb)(void *arg), void *arg)
{
	p->closing = 1;
	p->close_cb = cb;
	p->close_arg = arg;
	uv_timer_stop(&p->timer);
	maybe_closed(p);
}
