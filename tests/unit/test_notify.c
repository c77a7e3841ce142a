/*
 * test_notify.c - the sd_notify datagrams clubd sends, checked byte for byte
 * on a unix datagram socket we bind ourselves (no systemd as PID 1 here):
 * NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID are set in our own
 * environment, exactly as the service manager would set them.
 *
 * Owns: a temp dir with one socket, removed at the end.  The watchdog timer
 * case runs a real uv loop, bounded by a guard timer (a failure, not a
 * threshold: pings normally arrive every 10 ms).
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "notify.h"
#include "util.h"

static char dir[64];
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static int sock_fd = -1;

static int group_setup(void **state)
{
	struct sockaddr_un sa;

	(void)state;
	snprintf(dir, sizeof dir, "/tmp/clubd-notify-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(sock_path, sizeof sock_path, "%s/notify.sock", dir);
	sock_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock_fd < 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
	if (bind(sock_fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (sock_fd >= 0)
		close(sock_fd);
	unlink(sock_path);
	rmdir(dir);
	return 0;
}

/* Each case starts under a "service manager" with no watchdog. */
static int case_setup(void **state)
{
	char buf[64];

	(void)state;
	setenv("NOTIFY_SOCKET", sock_path, 1);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	/* drain anything a failed case left behind */
	while (recv(sock_fd, buf, sizeof buf, MSG_DONTWAIT) >= 0)
		;
	return 0;
}

static void set_watchdog(const char *usec)
{
	char pid[32];

	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	setenv("WATCHDOG_USEC", usec, 1);
	setenv("WATCHDOG_PID", pid, 1);
}

/* The next datagram, already queued (sd_notify's sendmsg is synchronous). */
static char *next_dgram(void)
{
	static char buf[4096];
	ssize_t n = recv(sock_fd, buf, sizeof buf - 1, MSG_DONTWAIT);

	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

static void assert_no_dgram(void)
{
	char buf[64];
	ssize_t n = recv(sock_fd, buf, sizeof buf, MSG_DONTWAIT);

	assert_int_equal(n, -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

static void test_no_manager(void **state)
{
	struct notify_watchdog_timer wd;
	uv_loop_t loop;

	(void)state;
	unsetenv("NOTIFY_SOCKET");
	set_watchdog("30000000");
	assert_int_equal(notify_enabled(), 0);
	assert_int_equal(notify_ready("up"), 0);
	assert_int_equal(notify_status("n=%d", 1), 0);
	assert_int_equal(notify_stopping(), 0);
	assert_int_equal(notify_reloading(), 0);
	assert_int_equal(notify_watchdog(), 0);
	assert_no_dgram();

	/* the watchdog timer does not start without a watchdog */
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	setenv("NOTIFY_SOCKET", sock_path, 1);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(notify_watchdog_timer_init(&wd, &loop), 0);
	assert_int_equal(notify_watchdog_timer_start(&wd), 0);
	assert_int_equal(wd.interval_ms, 0);
	assert_int_equal(wd.running, 0);
	uv_run(&loop, UV_RUN_NOWAIT);
	notify_watchdog_timer_close(&wd, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	assert_no_dgram();
}

static void test_ready_and_status(void **state)
{
	char longer[2000];

	(void)state;
	assert_int_equal(notify_enabled(), 1);

	assert_int_equal(notify_ready("api=127.0.0.1:8080 redis=up"), 0);
	assert_string_equal(next_dgram(), "READY=1\nSTATUS=api=127.0.0.1:8080 redis=up");
	assert_int_equal(notify_ready(NULL), 0);
	assert_string_equal(next_dgram(), "READY=1");

	assert_int_equal(notify_status("queued=%d inflight=%d", 42, 7), 0);
	assert_string_equal(next_dgram(), "STATUS=queued=42 inflight=7");

	/* a newline must not smuggle in another assignment */
	assert_int_equal(notify_status("draining\nREADY=1"), 0);
	assert_string_equal(next_dgram(), "STATUS=draining READY=1");
	assert_int_equal(notify_ready("a\r\nSTOPPING=1"), 0);
	assert_string_equal(next_dgram(), "READY=1\nSTATUS=a  STOPPING=1");

	/* capped at 511 bytes of status text */
	memset(longer, 'x', sizeof longer - 1);
	longer[sizeof longer - 1] = '\0';
	assert_int_equal(notify_status("%s", longer), 0);
	assert_int_equal(strlen(next_dgram()), strlen("STATUS=") + 511);
	assert_no_dgram();
}

static void test_stopping(void **state)
{
	(void)state;
	assert_int_equal(notify_stopping(), 0);
	assert_string_equal(next_dgram(), "STOPPING=1");
	assert_no_dgram();
}

static uint64_t mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void test_reloading(void **state)
{
	const char *prefix = "RELOADING=1\nMONOTONIC_USEC=";
	uint64_t before, after;
	int64_t got;
	char *d;

	(void)state;
	before = mono_usec();
	assert_int_equal(notify_reloading(), 0);
	after = mono_usec();
	d = next_dgram();
	assert_memory_equal(d, prefix, strlen(prefix));
	assert_int_equal(parse_i64(d + strlen(prefix), 0, INT64_MAX, &got), 0);
	assert_true((uint64_t)got >= before);
	assert_true((uint64_t)got <= after);

	/* the reload ends with READY=1 again */
	assert_int_equal(notify_ready("reloaded"), 0);
	assert_string_equal(next_dgram(), "READY=1\nSTATUS=reloaded");
	assert_no_dgram();
}

static void test_watchdog_interval(void **state)
{
	char other[32];

	(void)state;
	assert_int_equal(notify_watchdog_interval_ms(), 0); /* not set */

	set_watchdog("30000000"); /* WatchdogSec=30s */
	assert_int_equal(notify_watchdog_interval_ms(), 15000);
	set_watchdog("3000");
	assert_int_equal(notify_watchdog_interval_ms(), 1);
	set_watchdog("1000"); /* half is below 1 ms: clamp, never 0 */
	assert_int_equal(notify_watchdog_interval_ms(), 1);

	/* meant for another process (e.g. a parent that exec'd us) */
	set_watchdog("30000000");
	snprintf(other, sizeof other, "%ld", (long)getpid() + 1);
	setenv("WATCHDOG_PID", other, 1);
	assert_int_equal(notify_watchdog_interval_ms(), 0);

	/* no WATCHDOG_PID: the variable is ours */
	unsetenv("WATCHDOG_PID");
	assert_int_equal(notify_watchdog_interval_ms(), 15000);

	/* malformed */
	set_watchdog("soon");
	assert_int_equal(notify_watchdog_interval_ms(), 0);
	set_watchdog("0");
	assert_int_equal(notify_watchdog_interval_ms(), 0);

	/* the variables are left for later calls */
	assert_non_null(getenv("WATCHDOG_USEC"));
	assert_non_null(getenv("NOTIFY_SOCKET"));

	set_watchdog("30000000");
	assert_int_equal(notify_watchdog(), 0);
	assert_string_equal(next_dgram(), "WATCHDOG=1");
	assert_no_dgram();
}

/* The watchdog timer, driven by a real loop: the socket is polled on the
 * same loop and every datagram must be exactly WATCHDOG=1. */
struct wd_case {
	uv_loop_t loop;
	struct notify_watchdog_timer wd;
	uv_poll_t poll;
	uv_timer_t guard;
	int received;
	int bad;
	int timed_out;
	int wd_closed;
	int done;
};

static void wd_closed_cb(struct notify_watchdog_timer *t)
{
	struct wd_case *c = container_of(t, struct wd_case, wd);

	c->wd_closed++;
}

static void finish(struct wd_case *c)
{
	if (c->done)
		return;
	c->done = 1;
	uv_poll_stop(&c->poll);
	uv_timer_stop(&c->guard);
	uv_close((uv_handle_t *)&c->poll, NULL);
	uv_close((uv_handle_t *)&c->guard, NULL);
	notify_watchdog_timer_close(&c->wd, wd_closed_cb);
}

static void on_readable(uv_poll_t *p, int status, int events)
{
	struct wd_case *c = container_of(p, struct wd_case, poll);
	char buf[256];
	ssize_t n;

	(void)events;
	if (status < 0) {
		c->bad++;
		finish(c);
		return;
	}
	while ((n = recv(sock_fd, buf, sizeof buf - 1, MSG_DONTWAIT)) >= 0) {
		buf[n] = '\0';
		if (strcmp(buf, "WATCHDOG=1") != 0)
			c->bad++;
		c->received++;
	}
	if (c->received >= 3 || c->bad)
		finish(c);
}

static void on_guard(uv_timer_t *t)
{
	struct wd_case *c = container_of(t, struct wd_case, guard);

	c->timed_out = 1;
	finish(c);
}

static void test_watchdog_timer(void **state)
{
	struct wd_case *c = xcalloc(1, sizeof *c);

	(void)state;
	set_watchdog("20000"); /* WatchdogSec=20ms: a ping every 10 ms */
	assert_int_equal(uv_loop_init(&c->loop), 0);
	assert_int_equal(notify_watchdog_timer_init(&c->wd, &c->loop), 0);
	assert_int_equal(uv_poll_init(&c->loop, &c->poll, sock_fd), 0);
	assert_int_equal(uv_poll_start(&c->poll, UV_READABLE, on_readable), 0);
	assert_int_equal(uv_timer_init(&c->loop, &c->guard), 0);
	assert_int_equal(uv_timer_start(&c->guard, on_guard, 10000, 0), 0);

	assert_int_equal(notify_watchdog_timer_start(&c->wd), 0);
	assert_int_equal(c->wd.interval_ms, 10);
	assert_int_equal(c->wd.running, 1);

	uv_run(&c->loop, UV_RUN_DEFAULT);

	assert_int_equal(c->timed_out, 0);
	assert_int_equal(c->bad, 0);
	assert_true(c->received >= 3);
	assert_true(c->wd.pings >= (uint64_t)c->received);
	assert_int_equal(c->wd_closed, 1);
	assert_int_equal(c->wd.running, 0);
	assert_int_equal(uv_loop_close(&c->loop), 0);
	free(c);
}

static void never_cb(uv_timer_t *t)
{
	(void)t;
	fail_msg("keep-alive timer fired");
}

/* A stopped timer sends nothing more, and can start again. */
static void test_watchdog_timer_stop(void **state)
{
	struct notify_watchdog_timer wd;
	uv_timer_t keep; /* the watchdog timer is unref'd: keep the loop alive */
	uv_loop_t loop;

	(void)state;
	set_watchdog("2000000"); /* 1 s interval: only the immediate ping */
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(uv_timer_init(&loop, &keep), 0);
	assert_int_equal(uv_timer_start(&keep, never_cb, 60000, 0), 0);
	assert_int_equal(notify_watchdog_timer_init(&wd, &loop), 0);
	assert_int_equal(notify_watchdog_timer_start(&wd), 0);
	assert_int_equal(wd.interval_ms, 1000);
	uv_run(&loop, UV_RUN_NOWAIT); /* the first ping is due at once */
	assert_string_equal(next_dgram(), "WATCHDOG=1");
	assert_int_equal(wd.pings, 1);

	notify_watchdog_timer_stop(&wd);
	assert_int_equal(wd.running, 0);
	uv_run(&loop, UV_RUN_NOWAIT);
	assert_no_dgram();

	/* the watchdog went away (e.g. after a reload of the unit): start()
	 * reads the environment again and stays off */
	unsetenv("WATCHDOG_USEC");
	assert_int_equal(notify_watchdog_timer_start(&wd), 0);
	assert_int_equal(wd.running, 0);
	uv_run(&loop, UV_RUN_NOWAIT);
	assert_no_dgram();

	notify_watchdog_timer_close(&wd, NULL);
	uv_close((uv_handle_t *)&keep, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_no_manager, case_setup),
	    cmocka_unit_test_setup(test_ready_and_status, case_setup),
	    cmocka_unit_test_setup(test_stopping, case_setup),
	    cmocka_unit_test_setup(test_reloading, case_setup),
	    cmocka_unit_test_setup(test_watchdog_interval, case_setup),
	    cmocka_unit_test_setup(test_watchdog_timer, case_setup),
	    cmocka_unit_test_setup(test_watchdog_timer_stop, case_setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
