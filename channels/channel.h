/*
 * channel.h - the channel driver interface and registry.
 *
 * A driver is a table of function pointers registered by name.  Drivers own
 * transport details only: no preference logic, no Redis layout, no retries.
 * A send reports exactly once: OK (with the provider's id), TEMPFAIL (with a
 * reason and an optional retry-after) or PERMFAIL (with a reason).  The
 * scheduler alone decides retries, backoff and expiry.
 *
 * struct chan wraps one configured channel ([channel.NAME]): it enforces the
 * channel's max_inflight and token-bucket rate for every driver, so a driver
 * never sees more concurrent sends than it was configured for.
 *
 * On top of max_inflight sits an adaptive window and a circuit breaker, in
 * the spirit of Postfix's per-destination concurrency: the window starts at
 * window_initial, opens by one per OK and halves per TEMPFAIL (PERMFAIL is
 * about the message and changes nothing).  breaker_failures consecutive
 * TEMPFAILs open the circuit: no new sends (chan_free_slots 0, chan_send
 * -EBUSY), so messages wait in the queue.  After breaker_probe (doubling per
 * failed probe up to breaker_probe_max, longer when the provider asked for a
 * longer retry-after) the circuit half-opens and lets exactly one probe
 * through: OK closes it (window back to window_initial), TEMPFAIL opens it
 * again.
 */
#ifndef CLUBD_CHANNEL_H
#define CLUBD_CHANNEL_H

#include <stdint.h>
#include <uv.h>

#include "../daemon/config.h"

enum chan_status { CHAN_OK = 0, CHAN_TEMPFAIL = 1, CHAN_PERMFAIL = 2 };

struct chan_result {
	enum chan_status status;
	char provider_id[128];  /* OK: the provider's message id, may be "" */
	char reason[256];       /* TEMPFAIL/PERMFAIL: short, no secrets, no body */
	int64_t retry_after_ms; /* TEMPFAIL: provider's hint, 0 = none */
	int segments;           /* SMS: parts billed; 0 when unknown/not SMS */
	int64_t cost_micros;    /* price of this send in millionths of the currency; 0 = unknown */
	int revoke_consent;     /* PERMFAIL: the recipient blocked us on this channel (bot
	                         * blocked): the dispatcher withdraws the contact's consent */
};

/* A rendered message; every pointer is borrowed until the done callback. */
struct chan_msg {
	const char *id;      /* message id */
	const char *channel; /* channel name (sms, email, chat) */
	const char *category;
	const char *contact_id;
	const char *to; /* normalised address for this channel */
	const char *lang;
	const char *subject; /* may be NULL */
	const char *text;    /* may be NULL for html-only email */
	const char *html;    /* may be NULL */
	int attempt;         /* 1 for the first try */
	int64_t created_ms;
};

typedef void (*chan_done_cb)(void *arg, const struct chan_result *res);

struct chan;

enum chan_circuit { CHAN_CIRCUIT_CLOSED = 0, CHAN_CIRCUIT_OPEN = 1, CHAN_CIRCUIT_HALF_OPEN = 2 };

struct chan_driver {
	const char *name;
	/* Validate the driver's keys in c->cfg->sec (mark them used via
	 * cfg_sec_*) and allocate c->priv.  No I/O.  0 or -1 with err. */
	int (*configure)(struct chan *c, struct cfg_error *err);
	/* Open what the driver needs on the loop.  0 or negative errno. */
	int (*start)(struct chan *c, uv_loop_t *loop);
	/* Begin one send; call done exactly once, never from inside send().
	 * 0, or a negative errno when the send could not even start (the
	 * wrapper turns that into TEMPFAIL). */
	int (*send)(struct chan *c, const struct chan_msg *m, chan_done_cb done, void *arg);
	/* Stop: abort nothing in flight; call stopped once every send has
	 * reported and every handle is closed. */
	void (*stop)(struct chan *c, void (*stopped)(struct chan *c));
	/* Free c->priv.  Called after stopped, or after configure only. */
	void (*destroy)(struct chan *c);
};

/* What sending text on c is expected to cost, in micros of the campaign
 * currency: [channel.X] price per SMS segment (sms) or per message.  0 when
 * no price is set. */
struct chan;
int64_t chan_cost_estimate(const struct chan *c, const char *text);

struct chan {
	const struct chan_driver *drv;
	const struct cfg_channel *cfg; /* borrowed from the config */
	void *priv;                    /* the driver's */
	uv_loop_t *loop;

	/* owned by channel.c */
	int inflight; /* accepted by chan_send, not yet reported */
	double tokens;
	int64_t tokens_at; /* mono ms */
	uv_timer_t rate_timer;
	struct chan_pending *wait_head, *wait_tail; /* waiting for a token */
	int stopping;
	void (*stopped_cb)(struct chan *c);
	uint64_t sent_ok, sent_temp, sent_perm; /* counters */

	/* The whole config, set only while drv->configure runs (NULL after):
	 * a driver copies what it needs from it (e.g. [outbox] dir). */
	const struct config *root;
	/* owned by channel.c: reports deferred off the caller's stack */
	uv_idle_t defer_idle;
	struct chan_pending *defer_head, *defer_tail;
	int started;     /* handles initialised by chan_start_all */
	int drv_stopped; /* the driver called its stopped callback */
	int closing;     /* our handles are being closed */
	int open_handles;
	void *stop_ctx; /* chan_stop_all's shared countdown */
	uint64_t busy;  /* chan_send refused with -EBUSY */

	/* owned by channel.c: the adaptive window and the circuit breaker.
	 * Settings come from [channel.X] (validated by the config loader),
	 * read at chan_start_all and chan_reconfigure. */
	int window_initial;        /* window after start and after a close */
	int breaker_failures;      /* consecutive TEMPFAILs that open; 0 = never */
	int64_t breaker_probe_ms;  /* first wait before a probe */
	int64_t breaker_probe_max; /* ms: the wait doubles up to this */
	int window;                /* sends allowed at once while closed, 1..max_inflight */
	enum chan_circuit circuit;
	int tempfails;              /* consecutive TEMPFAILs while closed */
	struct chan_pending *probe; /* half-open: the probe in flight, or NULL */
	int64_t probe_backoff_ms;   /* base wait of the current/next open */
	int64_t probe_wait_ms;      /* wait chosen for the current open (retry-after included) */
	int64_t probe_at;           /* mono ms: the open circuit half-opens */
	int64_t opened_at;          /* mono ms: the circuit last left closed */
	uv_timer_t probe_timer;
	void (*wake)(void *arg); /* chan_set_wake */
	void *wake_arg;
	uint64_t circuit_opens;  /* closed or half-open -> open */
	uint64_t circuit_probes; /* probe sends let through */
	uint64_t window_shrinks; /* TEMPFAILs that halved the window */
};

/* The registry: a NULL-terminated table of every built-in driver. */
const struct chan_driver *chan_driver_find(const char *name);

/* Configure every [channel.X] of cfg; -1 with err on the first error.
 * *out is an array of nchannels (cfg order). */
int chan_configure_all(const struct config *cfg, struct chan **out, size_t *n,
                       struct cfg_error *err);
/* Start every channel's driver; on the first failure a negative errno (the
 * caller then stops all with chan_stop_all, which copes with the rest). */
int chan_start_all(struct chan *chans, size_t n, uv_loop_t *loop);
/* Stops all (call once): sends waiting for a token fail with TEMPFAIL
 * "shutting down", sends in flight finish; cb once every channel has
 * stopped and closed its handles (synchronously when none was started).
 * Then chan_free_all. */
void chan_stop_all(struct chan *chans, size_t n, void (*cb)(void *arg), void *arg);
void chan_free_all(struct chan *chans, size_t n);

struct chan *chan_find(struct chan *chans, size_t n, const char *name);

/* Free slots: how many more sends chan_send would accept right now (the
 * adaptive window minus sends in flight; 0 while the circuit is open, at
 * most 1 while it is half-open). */
int chan_free_slots(const struct chan *c);

/*
 * Send through the channel's rate limit, concurrency window and circuit
 * breaker.  Copies nothing: m's strings must live until done.  Returns 0
 * (done will be called exactly once, later), or -EBUSY when no slot is free
 * (done not called; the caller keeps the message and tries again when a
 * send completes or the wake hook runs).
 */
int chan_send(struct chan *c, const struct chan_msg *m, chan_done_cb done, void *arg);

/* Apply a reloaded [channel.X] (rate, burst, max_inflight, window_initial,
 * breaker_*): the window is clamped to the new max_inflight, an open
 * circuit's wait to the new breaker_probe_max, and breaker_failures = 0
 * closes an open circuit.  Borrows cfg (it must outlive the channel or the
 * next reconfigure). */
void chan_reconfigure(struct chan *c, const struct cfg_channel *cfg);

/* "closed", "open" or "half_open". */
const char *chan_circuit_state(const struct chan *c);
/* Sends the channel allows at once right now: the adaptive window while
 * closed (1..max_inflight), 1 while half-open, 0 while open. */
int chan_window(const struct chan *c);
/*
 * Called on the loop when the channel can take sends again although none of
 * its sends completed to say so: the circuit half-opened (a probe may go) or
 * closed, or the window grew.  It runs after the done callback of the send
 * that caused it (never inside chan_send, never while stopping) and may call
 * chan_send.  wake NULL removes it.  Borrows arg.
 */
void chan_set_wake(struct chan *c, void (*wake)(void *arg), void *arg);

/*
 * The token bucket as a pure function (unit-tested with a fake clock):
 * refill *tokens from *at_ms to now at `rate` per second, capped at burst
 * (at least 1), then take one token.  0 when a token was taken, else the
 * ms (>= 1) until one will be available.  rate <= 0 means unlimited.
 */
int64_t chan_bucket_take(double *tokens, int64_t *at_ms, int64_t now, double rate, int burst);

/*
 * The message as one JSON object, shared by drivers that speak JSON:
 * {"id","channel","category","contact_id","to","subject","text","html",
 * "attempt","created_at"} plus "sent_at" when sent_at_ms >= 0.  Missing
 * strings are null, times RFC 3339 UTC with ms; invalid UTF-8 becomes
 * U+FFFD.  Returns a malloc'd compact string; caller frees.
 */
char *chan_msg_json(const struct chan_msg *m, int64_t sent_at_ms);
/* "2024-01-02T03:04:05.678Z" into out (at least 32 bytes). */
void chan_rfc3339_ms(int64_t ms, char *out, size_t n);

/* Built-in drivers (rows of the registry in channel.c). */
extern const struct chan_driver chan_outbox_driver;
extern const struct chan_driver chan_webhook_driver;

#endif
