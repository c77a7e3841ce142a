/*
 * notify.c - sd_notify for Type=notify units, through libsystemd's
 * sd_notify()/sd_watchdog_enabled(), and a uv timer for WATCHDOG=1.
 *
 * Owns: the notification datagrams and the watchdog timer handle embedded in
 * its owner's struct.  Never touches: the environment (NOTIFY_SOCKET and
 * WATCHDOG_* stay set for the life of the process), any other handle.
 * Limits: STATUS= text is capped at 512 bytes and newlines in it become
 * spaces (a newline would start a new assignment in the datagram).  A failed
 * send is logged once per change of error, not once per ping.
 */
#include "notify.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "log.h"
#include "util.h"

#define NOTIFY_STATUS_MAX 512

static int last_err; /* last logged failure, 0 after a success */

/* sd_notify: <0 error, 0 no socket, >0 sent.  We return 0 or -errno. */
static int result(int r, const char *what)
{
	if (r >= 0) {
		last_err = 0;
		return 0;
	}
	if (r != last_err) {
		last_err = r;
		log_warnx("notify", "event=send_failed what=%s err=%s", what, log_q(strerror(-r)));
	}
	return r;
}

static void clean_status(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

int notify_enabled(void)
{
	const char *e = getenv("NOTIFY_SOCKET");
	return e != NULL && *e != '\0';
}

int notify_ready(const char *status)
{
	char st[NOTIFY_STATUS_MAX];

	if (status == NULL)
		return result(sd_notify(0, "READY=1"), "ready");
	snprintf(st, sizeof st, "%s", status);
	clean_status(st);
	return result(sd_notifyf(0, "READY=1\nSTATUS=%s", st), "ready");
}

int notify_status(const char *fmt, ...)
{
	char st[NOTIFY_STATUS_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st, sizeof st, fmt, ap);
	va_end(ap);
	clean_status(st);
	return result(sd_notifyf(0, "STATUS=%s", st), "status");
}

int notify_stopping(void)
{
	return result(sd_notify(0, "STOPPING=1"), "stopping");
}

int notify_reloading(void)
{
	struct timespec ts;
	uint64_t usec;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return -errno;
	usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	return result(sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, usec), "reloading");
}

int notify_watchdog(void)
{
	return result(sd_notify(0, "WATCHDOG=1"), "watchdog");
}

int64_t notify_watchdog_interval_ms(void)
{
	uint64_t usec = 0;
	int r = sd_watchdog_enabled(0, &usec);

	if (r < 0) {
		log_warnx("notify", "event=watchdog_env_invalid err=%s", log_q(strerror(-r)));
		return 0;
	}
	if (r == 0 || usec == 0)
		return 0;
	usec /= 2;
	if (usec < 1000)
		return 1;
	return (int64_t)(usec / 1000);
}

static void wd_tick(uv_timer_t *h)
{
	struct notify_watchdog_timer *t = container_of(h, struct notify_watchdog_timer, timer);

	if (notify_watchdog() == 0)
		t->pings++;
}

int notify_watchdog_timer_init(struct notify_watchdog_timer *t, uv_loop_t *loop)
{
	int r;

	memset(t, 0, sizeof *t);
	r = uv_timer_init(loop, &t->timer);
	if (r < 0)
		return r;
	uv_unref((uv_handle_t *)&t->timer);
	return 0;
}

int notify_watchdog_timer_start(struct notify_watchdog_timer *t)
{
	int r;

	notify_watchdog_timer_stop(t);
	t->interval_ms = notify_watchdog_interval_ms();
	if (t->interval_ms <= 0) {
		t->interval_ms = 0;
		return 0;
	}
	r = uv_timer_start(&t->timer, wd_tick, 0, (uint64_t)t->interval_ms);
	if (r < 0)
		return r;
	t->running = 1;
	log_info("notify", "event=watchdog_on interval_ms=%" PRId64, t->interval_ms);
	return 0;
}

void notify_watchdog_timer_stop(struct notify_watchdog_timer *t)
{
	if (!t->running)
		return;
	uv_timer_stop(&t->timer);
	t->running = 0;
}

static void wd_closed(uv_handle_t *h)
{
	struct notify_watchdog_timer *t =
	    container_of((uv_timer_t *)h, struct notify_watchdog_timer, timer);

	if (t->close_cb)
		t->close_cb(t);
}

void notify_watchdog_timer_close(struct notify_watchdog_timer *t,
                                 void (*cb)(struct notify_watchdog_timer *t))
{
	notify_watchdog_timer_stop(t);
	t->close_cb = cb;
	uv_close((uv_handle_t *)&t->timer, wd_closed);
}
