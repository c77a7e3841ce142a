/*
 * storefx.h - a real Redis behind a struct store for the unit tests that
 * drive scripts through the store (test_inbound.c's router, test_survey.c's
 * stage): a private redis-server on a free 127.0.0.1 port
 * (tl_redis_start), the daemon's async connection on the fixture's own
 * libuv loop, the store on it, the default configuration, and a
 * synchronous hiredis connection for the test's own look at the keys.
 * storefx_stop() closes the connection, asserts that uv_loop_close()
 * returns 0 (nothing leaked) and kills the server.
 *
 * Header-only (static inline) because the Makefile links each
 * tests/unit/test_*.c with testlib.o alone.  The functions fail the test
 * through cmocka and so belong in a fixture or a test.  Include after
 * <cmocka.h> and testlib.h.
 */
#ifndef CLUBD_TESTS_STOREFX_H
#define CLUBD_TESTS_STOREFX_H

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <uv.h>

#include "config.h"
#include "redis.h"
#include "store.h"
#include "testlib.h"

struct storefx {
	uv_loop_t loop;
	pid_t pid;
	int port;
	struct redis *r;
	struct store *st;
	struct config *cfg;
	redisContext *sync; /* the test's own look at the keys */
	int up;             /* the async connection is up */
};

static inline void storefx_state(struct redis *r, int up, void *arg)
{
	(void)r;
	((struct storefx *)arg)->up = up;
}

/* Start the server, connect (run until up), make the store with key
 * prefix and timeline max, and load the default configuration. */
static inline void storefx_start(struct storefx *f, const char *prefix, int timeline_max)
{
	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->port = tl_free_port();
	f->pid = tl_redis_start(f->port, NULL);
	assert_true(f->pid > 0);
	struct cfg_error err;
	assert_int_equal(config_load(NULL, &f->cfg, &err), 0);
	struct redis_opts o = {.name = "main", .host = "127.0.0.1", .port = f->port};
	f->r = redis_new(&f->loop, &o, storefx_state, f);
	tl_run_until(&f->loop, &f->up, 1);
	f->st = store_new(f->r, prefix, timeline_max);
	struct timeval tv = {2, 0};
	f->sync = redisConnectWithTimeout("127.0.0.1", f->port, tv);
	assert_true(f->sync && !f->sync->err);
}

static inline void storefx_stop(struct storefx *f)
{
	int closed = 0;
	redis_close(f->r, tl_on_count, &closed);
	tl_run_until(&f->loop, &closed, 1);
	assert_int_equal(tl_loop_finish(&f->loop), 0);
	store_free(f->st);
	config_free(f->cfg);
	redisFree(f->sync);
	kill(f->pid, SIGKILL);
	waitpid(f->pid, NULL, 0);
}

#endif
