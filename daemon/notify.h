/*
 * notify.h - the service manager notification protocol (sd_notify) for
 * Type=notify units: READY, STATUS, RELOADING, STOPPING and the watchdog.
 *
 * Every function is a no-op returning 0 when NOTIFY_SOCKET is unset (not
 * started by systemd), so callers never check whether they run under a
 * service manager.  The environment is left as it is: the watchdog keeps
 * using NOTIFY_SOCKET for the life of the process.
 *
 * Lifecycle the daemon follows:
 *   start        -> notify_ready("...") once the API is bound and Redis is up
 *   SIGHUP       -> notify_reloading(), reload, notify_ready("...") again
 *   SIGTERM      -> notify_stopping(), drain, exit
 *   all along    -> a notify_watchdog_timer on the loop (WatchdogSec=)
 */
#ifndef CLUBD_NOTIFY_H
#define CLUBD_NOTIFY_H

#include <stdint.h>
#include <uv.h>

/* 1 when NOTIFY_SOCKET is set (a service manager listens), else 0. */
int notify_enabled(void);

/* "READY=1" plus "STATUS=<status>" when status is non-NULL.  0 or -errno. */
int notify_ready(const char *status);

/* "STATUS=<formatted>" (truncated at 512 bytes).  0 or -errno. */
int notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "STOPPING=1".  0 or -errno. */
int notify_stopping(void);

/* "RELOADING=1" + "MONOTONIC_USEC=<CLOCK_MONOTONIC now>" (what
 * Type=notify-reload expects); send notify_ready() when the reload is done.
 * 0 or -errno. */
int notify_reloading(void);

/* "WATCHDOG=1".  0 or -errno. */
int notify_watchdog(void);

/*
 * How often to send WATCHDOG=1: half of WATCHDOG_USEC (at least 1 ms) when
 * the manager enabled the watchdog for this process (WATCHDOG_PID, if set,
 * must be getpid()); 0 when the watchdog is disabled or the variables are
 * malformed.
 */
int64_t notify_watchdog_interval_ms(void);

/*
 * A uv timer that sends WATCHDOG=1 every notify_watchdog_interval_ms(), so a
 * loop that stops turning stops pinging and systemd kills the process.
 * Embed it in its owner's struct.  The timer is unref'd: it never keeps the
 * loop alive by itself, but must still be closed before uv_loop_close().
 */
struct notify_watchdog_timer {
	uv_timer_t timer;
	int64_t interval_ms; /* 0 while the watchdog is disabled */
	uint64_t pings;      /* WATCHDOG=1 sent (successfully) */
	int running;
	void (*close_cb)(struct notify_watchdog_timer *t);
};

/* Initialise the handle on loop.  0 or -errno. */
int notify_watchdog_timer_init(struct notify_watchdog_timer *t, uv_loop_t *loop);
/* Read the interval now and start pinging (the first ping at once).  When
 * the watchdog is disabled nothing starts and interval_ms stays 0.  0 or
 * -errno. */
int notify_watchdog_timer_start(struct notify_watchdog_timer *t);
void notify_watchdog_timer_stop(struct notify_watchdog_timer *t);
/* Stop and close the handle; cb (may be NULL) runs from the close callback,
 * after which the owner may free the memory holding t. */
void notify_watchdog_timer_close(struct notify_watchdog_timer *t,
                                 void (*cb)(struct notify_watchdog_timer *t));

#endif
