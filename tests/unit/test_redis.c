/*
 * test_redis.c - daemon/redis.c against a real redis-server.
 *
 * Each test starts /usr/bin/redis-server on a free 127.0.0.1 port as a child
 * process (no persistence) and kills it in teardown.  Fake servers that
 * reset or never answer run on the same libuv loop.  Every wait is bounded
 * by a guard timer so a bug fails the test instead of hanging it; the only
 * sleeps are loop waits that give reconnect attempts time to happen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "redis.h"
#include "testlib.h"
#include "util.h"

#define GUARD_MS 10000

struct env {
	uv_loop_t loop;
	int port;
	pid_t pid;
};

/* ---- redis-server child ---- */

/* extra: NULL-terminated extra arguments. */
static pid_t server_start(int port, const char *const *extra)
{
	pid_t pid = tl_redis_start(port, extra);
	if (pid < 0)
		fail_msg("redis-server on port %d did not come up", port);
	return pid;
}

static void server_kill(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
		*pid = 0;
	}
}

static int setup(void **state)
{
	struct env *e = xcalloc(1, sizeof(*e));
	assert_int_equal(uv_loop_init(&e->loop), 0);
	e->port = tl_free_port();
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	server_kill(&e->pid);
	free(e);
	return 0;
}

/* ---- loop helpers ---- */

static void guard_cb(uv_timer_t *t)
{
	*(int *)t->data = 1;
}

/* Run the loop until *v >= want or ms pass; returns 1 when reached. */
static int run_until(uv_loop_t *loop, const int *v, int want, uint64_t ms)
{
	int fired = 0;
	uv_timer_t g;
	uv_timer_init(loop, &g);
	g.data = &fired;
	uv_timer_start(&g, guard_cb, ms, 0);
	while (*v < want && !fired)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&g, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return *v >= want;
}

#define WAIT(loop, v, want) assert_true(run_until(loop, &(v), want, GUARD_MS))

/* Let the loop run for ms (reconnect attempts happen meanwhile). */
static void run_for(uv_loop_t *loop, uint64_t ms)
{
	int never = 0;
	run_until(loop, &never, 1, ms);
}

static void closed_cb(void *arg)
{
	(*(int *)arg)++;
}

static void close_and_check(uv_loop_t *loop, struct redis *r)
{
	int closed = 0;
	redis_close(r, closed_cb, &closed);
	WAIT(loop, closed, 1);
	assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(loop), 0);
}

/* ---- callbacks ---- */

struct st {
	int ups, downs, up;
};

static void state_cb(struct redis *r, int up, void *arg)
{
	struct st *s = arg;
	(void)r;
	if (up)
		s->ups++;
	else
		s->downs++;
	assert_int_not_equal(up, s->up); /* a transition every time */
	s->up = up;
}

/* A summary of one reply. */
struct cap {
	int calls;
	int null;
	int type;
	long long integer;
	char str[256];
	size_t len;
	size_t elements;
	int el_type[4];
	char el_str[4][64];
	size_t el_len[4];
	long long el_int[4];
};

static void cap_cb(struct redis *r, redisReply *rep, void *arg)
{
	struct cap *c = arg;
	(void)r;
	c->calls++;
	c->null = rep == NULL;
	if (!rep)
		return;
	c->type = rep->type;
	c->integer = rep->integer;
	c->len = rep->str ? (size_t)rep->len : 0;
	if (c->len >= sizeof(c->str))
		c->len = sizeof(c->str) - 1;
	if (rep->str)
		memcpy(c->str, rep->str, c->len);
	c->str[c->len] = '\0';
	c->elements = rep->type == REDIS_REPLY_ARRAY ? rep->elements : 0;
	for (size_t i = 0; i < c->elements && i < 4; i++) {
		redisReply *el = rep->element[i];
		c->el_type[i] = el->type;
		c->el_int[i] = el->integer;
		c->el_len[i] = el->str ? (size_t)el->len : 0;
		if (c->el_len[i] >= sizeof(c->el_str[i]))
			c->el_len[i] = sizeof(c->el_str[i]) - 1;
		if (el->str)
			memcpy(c->el_str[i], el->str, c->el_len[i]);
		c->el_str[i][c->el_len[i]] = '\0';
	}
}

/* Count callbacks per slot: each must end at exactly 1. */
struct slots {
	int n[64];
	int total, nulls, replies;
};

struct slot_arg {
	struct slots *s;
	int i;
};

static void slot_cb(struct redis *r, redisReply *rep, void *arg)
{
	struct slot_arg *a = arg;
	(void)r;
	a->s->n[a->i]++;
	a->s->total++;
	if (rep)
		a->s->replies++;
	else
		a->s->nulls++;
}

static struct redis *connect_to(struct env *e, const char *name, struct st *s, int64_t cmd_timeout)
{
	struct redis_opts o = {
	    .name = name,
	    .host = "127.0.0.1",
	    .port = e->port,
	    .command_timeout_ms = cmd_timeout,
	    /* Longer than the guard: only the adapter can report a refused
	     * connect or a reset in time. */
	    .connect_timeout_ms = 30000,
	    .reconnect_min_ms = 20,
	    .reconnect_max_ms = 200,
	};
	return redis_new(&e->loop, &o, state_cb, s);
}

static void cmd(struct redis *r, struct cap *c, int64_t timeout, int argc, const char **argv)
{
	memset(c, 0, sizeof(*c));
	redis_cmdv(r, timeout, cap_cb, c, argc, argv, NULL);
}

/* ---- tests ---- */

static void test_basic(void **state)
{
	struct env *e = *state;
	e->pid = server_start(e->port, NULL);
	struct st s = {0};
	struct redis *r = connect_to(e, "main", &s, 0);
	assert_string_equal(redis_name(r), "main");

	/* Before ready: NULL, and never from inside the call. */
	struct cap early = {0};
	redis_cmdf(r, cap_cb, &early, "PING");
	assert_int_equal(early.calls, 0);
	WAIT(&e->loop, early.calls, 1);
	assert_true(early.null);

	WAIT(&e->loop, s.ups, 1);
	assert_true(redis_is_up(r));
	assert_int_equal(redis_reconnects(r), 0);

	/* Binary-safe SET, GET through the format interface. */
	const char *set[] = {"SET", "k", "a\0b"};
	const size_t setlen[] = {3, 1, 3};
	struct cap c1 = {0}, c2 = {0}, c3 = {0};
	redis_cmdv(r, 0, cap_cb, &c1, 3, set, setlen);
	assert_int_equal(c1.calls, 0);
	assert_int_equal(redis_pending(r), 1);
	redis_cmdf(r, cap_cb, &c2, "GET %s", "k");
	redis_cmdf(r, cap_cb, &c3, "SET %s %b", "k2", "xyz", (size_t)2);
	assert_int_equal(redis_pending(r), 3);
	WAIT(&e->loop, c3.calls, 1);
	assert_int_equal(c1.type, REDIS_REPLY_STATUS);
	assert_string_equal(c1.str, "OK");
	assert_int_equal(c2.type, REDIS_REPLY_STRING);
	assert_int_equal(c2.len, 3);
	assert_memory_equal(c2.str, "a\0b", 3);
	assert_int_equal(redis_pending(r), 0);

	/* Fire and forget, then read it back. */
	redis_cmdf(r, NULL, NULL, "SET ff 42");
	const char *get[] = {"GET", "k2"};
	cmd(r, &c1, 0, 2, get);
	get[1] = "ff";
	cmd(r, &c2, 0, 2, get);
	WAIT(&e->loop, c2.calls, 1);
	assert_string_equal(c1.str, "xy");
	assert_string_equal(c2.str, "42");

	/* Errors are replies, not NULL. */
	const char *bad[] = {"NOSUCHCOMMAND", "x"};
	cmd(r, &c1, 0, 2, bad);
	WAIT(&e->loop, c1.calls, 1);
	assert_false(c1.null);
	assert_int_equal(c1.type, REDIS_REPLY_ERROR);

	redisReply fake = {.type = REDIS_REPLY_ERROR, .str = "NOSCRIPT No matching", .len = 20};
	assert_true(redis_reply_is_error(&fake, "NOSCRIPT"));
	assert_true(redis_reply_is_error(&fake, NULL));
	assert_false(redis_reply_is_error(&fake, "ERR"));
	assert_false(redis_reply_is_error(NULL, "ERR"));
	fake.type = REDIS_REPLY_STRING;
	assert_false(redis_reply_is_error(&fake, "NOSCRIPT"));

	/* Bad calls fail through the callback. */
	cmd(r, &c1, 0, 0, NULL);
	WAIT(&e->loop, c1.calls, 1);
	assert_true(c1.null);

	assert_int_equal(s.downs, 0);
	close_and_check(&e->loop, r);
}

struct pipe {
	int seen;
	int bad;
};

static void incr_cb(struct redis *r, redisReply *rep, void *arg)
{
	struct pipe *p = arg;
	(void)r;
	p->seen++;
	if (!rep || rep->type != REDIS_REPLY_INTEGER || rep->integer != p->seen)
		p->bad++;
}

static void test_pipeline(void **state)
{
	struct env *e = *state;
	e->pid = server_start(e->port, NULL);
	struct st s = {0};
	struct redis *r = connect_to(e, "main", &s, 30000);
	WAIT(&e->loop, s.ups, 1);
	struct pipe p = {0};
	const char *argv[] = {"INCR", "ctr"};
	for (int i = 0; i < 10000; i++)
		redis_cmdv(r, 0, incr_cb, &p, 2, argv, NULL);
	assert_int_equal(redis_pending(r), 10000);
	assert_int_equal(p.seen, 0);
	WAIT(&e->loop, p.seen, 10000);
	assert_int_equal(p.bad, 0);
	assert_int_equal(redis_pending(r), 0);
	assert_int_equal(s.downs, 0);
	close_and_check(&e->loop, r);
}

static void test_script(void **state)
{
	struct env *e = *state;
	e->pid = server_start(e->port, NULL);
	struct st s = {0};
	struct redis *r = connect_to(e, "main", &s, 0);
	WAIT(&e->loop, s.ups, 1);

	static struct redis_script sc = {.name = "echo",
	                                 .body = "return {KEYS[1], ARGV[1], #ARGV}"};
	const char *args[] = {"key1", "a\0b", "c"};
	const size_t lens[] = {4, 3, 1};
	struct cap c = {0};

	/* Fresh server: EVALSHA gets NOSCRIPT, the EVAL answers. */
	redis_script(r, &sc, cap_cb, &c, 1, 3, args, lens);
	assert_int_equal(c.calls, 0);
	WAIT(&e->loop, c.calls, 1);
	assert_int_equal(c.type, REDIS_REPLY_ARRAY);
	assert_int_equal(c.elements, 3);
	assert_string_equal(c.el_str[0], "key1");
	assert_int_equal(c.el_len[1], 3);
	assert_memory_equal(c.el_str[1], "a\0b", 3);
	assert_int_equal(c.el_int[2], 2);

	/* Our SHA1 is Redis's. */
	assert_int_equal(strlen(sc.sha), 40);
	assert_int_equal(strspn(sc.sha, "0123456789abcdef"), 40);
	struct cap load = {0};
	redis_cmdf(r, cap_cb, &load, "SCRIPT LOAD %s", sc.body);
	WAIT(&e->loop, load.calls, 1);
	assert_string_equal(load.str, sc.sha);

	/* Cached now: EVALSHA answers directly. */
	redis_script(r, &sc, cap_cb, &c, 1, 3, args, lens);
	WAIT(&e->loop, c.calls, 2);
	assert_int_equal(c.elements, 3);

	/* Flush the cache: the fallback must load it again. */
	struct cap x = {0};
	redis_cmdf(r, cap_cb, &x, "SCRIPT FLUSH");
	WAIT(&e->loop, x.calls, 1);
	memset(&x, 0, sizeof(x));
	redis_cmdf(r, cap_cb, &x, "SCRIPT EXISTS %s", sc.sha);
	WAIT(&e->loop, x.calls, 1);
	assert_int_equal(x.el_int[0], 0);
	memset(&c, 0, sizeof(c));
	redis_script(r, &sc, cap_cb, &c, 1, 3, args, lens);
	WAIT(&e->loop, c.calls, 1);
	assert_int_equal(c.type, REDIS_REPLY_ARRAY);
	assert_int_equal(c.elements, 3);
	assert_string_equal(c.el_str[0], "key1");
	memset(&x, 0, sizeof(x));
	redis_cmdf(r, cap_cb, &x, "SCRIPT EXISTS %s", sc.sha);
	WAIT(&e->loop, x.calls, 1);
	assert_int_equal(x.el_int[0], 1); /* the EVAL cached it */

	/* Other script errors pass through untouched. */
	static struct redis_script boom = {.name = "boom",
	                                   .body = "return redis.error_reply('BOOM bad')"};
	memset(&c, 0, sizeof(c));
	redis_script(r, &boom, cap_cb, &c, 0, 0, NULL, NULL);
	WAIT(&e->loop, c.calls, 1);
	assert_int_equal(c.type, REDIS_REPLY_ERROR);
	assert_string_equal(c.str, "BOOM bad");

	/* nkeys > argc is refused through the callback. */
	memset(&c, 0, sizeof(c));
	redis_script(r, &sc, cap_cb, &c, 4, 3, args, lens);
	assert_int_equal(c.calls, 0);
	WAIT(&e->loop, c.calls, 1);
	assert_true(c.null);

	close_and_check(&e->loop, r);
}

static void test_refused_then_up(void **state)
{
	struct env *e = *state;
	struct st s = {0};
	struct redis *r = connect_to(e, "main", &s, 0);
	const char *ping[] = {"PING"};
	struct cap c = {0};
	cmd(r, &c, 0, 1, ping);
	assert_int_equal(c.calls, 0);
	WAIT(&e->loop, c.calls, 1);
	assert_true(c.null);

	run_for(&e->loop, 300); /* several refused attempts */
	assert_int_equal(s.ups, 0);
	assert_int_equal(s.downs, 0);
	assert_false(redis_is_up(r));
	cmd(r, &c, 0, 1, ping);
	WAIT(&e->loop, c.calls, 1);
	assert_true(c.null);

	e->pid = server_start(e->port, NULL);
	WAIT(&e->loop, s.ups, 1);
	cmd(r, &c, 0, 1, ping);
	WAIT(&e->loop, c.calls, 1);
	assert_string_equal(c.str, "PONG");
	assert_int_equal(redis_reconnects(r), 0);
	close_and_check(&e->loop, r);
}

/* A server on our loop that resets each connection once it sends data
 * (reset = 1), or accepts and never answers (reset = 0). */
struct fake {
	uv_tcp_t srv;
	int port;
	int reset;
	int accepts;
	int nconn;
	uv_tcp_t conn[32];
	int open[32];
};

static void fake_closed(uv_handle_t *h)
{
	struct fake *f = h->data;
	for (int i = 0; i < f->nconn; i++)
		if ((uv_handle_t *)&f->conn[i] == h)
			f->open[i] = 0;
}

static void fake_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
	static char buf[4096];
	(void)h;
	(void)sz;
	*b = uv_buf_init(buf, sizeof(buf));
}

static void fake_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct fake *f = st->data;
	(void)b;
	if (n > 0 && f->reset) {
		uv_read_stop(st);
		uv_tcp_close_reset((uv_tcp_t *)st, fake_closed);
	} else if (n < 0) {
		uv_close((uv_handle_t *)st, fake_closed);
	}
}

static void fake_conn(uv_stream_t *srv, int status)
{
	struct fake *f = srv->data;
	assert_int_equal(status, 0);
	assert_true(f->nconn < 32);
	uv_tcp_t *c = &f->conn[f->nconn];
	uv_tcp_init(srv->loop, c);
	c->data = f;
	f->open[f->nconn++] = 1;
	assert_int_equal(uv_accept(srv, (uv_stream_t *)c), 0);
	f->accepts++;
	uv_read_start((uv_stream_t *)c, fake_alloc, fake_read);
}

static void fake_start(uv_loop_t *loop, struct fake *f, int reset)
{
	memset(f, 0, sizeof(*f));
	f->reset = reset;
	uv_tcp_init(loop, &f->srv);
	f->srv.data = f;
	struct sockaddr_in a;
	uv_ip4_addr("127.0.0.1", 0, &a);
	assert_int_equal(uv_tcp_bind(&f->srv, (struct sockaddr *)&a, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&f->srv, 16, fake_conn), 0);
	int l = sizeof(a);
	assert_int_equal(uv_tcp_getsockname(&f->srv, (struct sockaddr *)&a, &l), 0);
	f->port = ntohs(a.sin_port);
}

static void fake_stop(struct fake *f)
{
	for (int i = 0; i < f->nconn; i++)
		if (f->open[i] && !uv_is_closing((uv_handle_t *)&f->conn[i]))
			uv_close((uv_handle_t *)&f->conn[i], fake_closed);
	uv_close((uv_handle_t *)&f->srv, NULL);
}

/* A reset arrives as POLLERR: our adapter must pass it on to hiredis. */
static void test_reset_by_peer(void **state)
{
	struct env *e = *state;
	struct fake f;
	fake_start(&e->loop, &f, 1);
	e->port = f.port;
	struct st s = {0};
	struct redis *r = connect_to(e, "main", &s, 30000);
	WAIT(&e->loop, s.ups, 1);
	const char *ping[] = {"PING"};
	struct cap c = {0};
	cmd(r, &c, 0, 1, ping);
	WAIT(&e->loop, c.calls, 1);
	assert_true(c.null);
	WAIT(&e->loop, s.downs, 1);
	WAIT(&e->loop, s.ups, 2); /* the fake accepts again */
	assert_int_equal(redis_reconnects(r), 1);
	fake_stop(&f);
	close_and_check(&e->loop, r);
}

/* AUTH never answered: connect_timeout_ms bounds the handshake. */
static void test_handshake_timeout(void **state)
{
	struct env *e = *state;
	struct fake f;
	fake_start(&e->loop, &f, 0);
	struct redis_opts o = {
	    .name = "silent",
	    .port = f.port,
	    .password = "pw",
	    .connect_timeout_ms = 100,
	    .reconnect_min_ms = 10,
	    .reconnect_max_ms = 20,
	};
	struct st s = {0};
	struct redis *r = redis_new(&e->loop, &o, state_cb, &s);
	WAIT(&e->loop, f.accepts, 3); /* dropped and retried, twice */
	assert_int_equal(s.ups, 0);
	struct cap c = {0};
	redis_cmdf(r, cap_cb, &c, "PING");
	WAIT(&e->loop, c.calls, 1);
	assert_true(c.null);
	fake_stop(&f);
	close_and_check(&e->loop, r);
}

static void test_auth_select(void **state)
{
	struct env *e = *state;
	const char *extra[] = {"--requirepass", "s3cret", NULL};
	e->pid = server_start(e->port, extra);

	struct redis_opts o = {.name = "auth", .port = e->port, .password = "s3cret", .db = 3};
	struct st s = {0};
	struct redis *r = redis_new(&e->loop, &o, state_cb, &s);
	o.password = "wrong";
	o.name = "wrong";
	o.reconnect_min_ms = 10;
	o.reconnect_max_ms = 50;
	struct st s2 = {0};
	struct redis *bad = redis_new(&e->loop, &o, state_cb, &s2);

	WAIT(&e->loop, s.ups, 1);
	struct cap c = {0};
	redis_cmdf(r, cap_cb, &c, "CLIENT INFO");
	WAIT(&e->loop, c.calls, 1);
	assert_int_equal(c.type, REDIS_REPLY_STRING);
	assert_non_null(strstr(c.str, " db=3 "));

	run_for(&e->loop, 200);
	assert_int_equal(s2.ups, 0);
	assert_false(redis_is_up(bad));
	memset(&c, 0, sizeof(c));
	redis_cmdf(bad, cap_cb, &c, "PING");
	WAIT(&e->loop, c.calls, 1);
	assert_true(c.null);

	int closed = 0;
	redis_close(bad, closed_cb, &closed);
	WAIT(&e->loop, closed, 1);
	close_and_check(&e->loop, r);
}

static void test_unix_socket(void **state)
{
	struct env *e = *state;
	char path[64];
	snprintf(path, sizeof(path), "/tmp/clubd-test-redis-%d-%d.sock", (int)getpid(), e->port);
	const char *extra[] = {"--unixsocket", path, "--unixsocketperm", "700", NULL};
	e->pid = server_start(e->port, extra);
	struct redis_opts o = {.name = "unix", .socket = path, .port = 1};
	struct st s = {0};
	struct redis *r = redis_new(&e->loop, &o, state_cb, &s);
	WAIT(&e->loop, s.ups, 1);
	struct cap c = {0};
	redis_cmdf(r, cap_cb, &c, "CLIENT INFO");
	WAIT(&e->loop, c.calls, 1);
	assert_non_null(strstr(c.str, "laddr=/tmp/clubd-test-redis-"));
	close_and_check(&e->loop, r);
	server_kill(&e->pid);
	unlink(path);
}

static void test_kill9(void **state)
{
	struct env *e = *state;
	e->pid = server_start(e->port, NULL);
	struct st s = {0};
	struct redis *r = connect_to(e, "main", &s, 0);
	WAIT(&e->loop, s.ups, 1);

	struct slots sl = {0};
	struct slot_arg a[5];
	const char *blpop[] = {"BLPOP", "q", "10"};
	const char *get[] = {"GET", "k"};
	for (int i = 0; i < 5; i++) {
		a[i] = (struct slot_arg){&sl, i};
		if (i == 0)
			redis_cmdv(r, 15000, slot_cb, &a[i], 3, blpop, NULL);
		else
			redis_cmdv(r, 0, slot_cb, &a[i], 2, get, NULL);
	}
	run_for(&e->loop, 100); /* let them reach the server */
	assert_int_equal(sl.total, 0);
	assert_int_equal(redis_pending(r), 5);
	server_kill(&e->pid);
	WAIT(&e->loop, sl.total, 5);
	WAIT(&e->loop, s.downs, 1);
	assert_int_equal(sl.nulls, 5);
	run_for(&e->loop, 100);
	for (int i = 0; i < 5; i++)
		assert_int_equal(sl.n[i], 1);
	assert_int_equal(redis_pending(r), 0);
	assert_false(redis_is_up(r));

	e->pid = server_start(e->port, NULL);
	WAIT(&e->loop, s.ups, 2);
	assert_int_equal(redis_reconnects(r), 1);
	struct cap c = {0};
	redis_cmdf(r, cap_cb, &c, "PING");
	WAIT(&e->loop, c.calls, 1);
	assert_string_equal(c.str, "PONG");
	close_and_check(&e->loop, r);
}

static void test_deadline(void **state)
{
	struct env *e = *state;
	const char *extra[] = {"--enable-debug-command", "yes", NULL};
	e->pid = server_start(e->port, extra);
	struct st s = {0};
	struct redis *r = connect_to(e, "main", &s, 300);
	WAIT(&e->loop, s.ups, 1);

	struct slots sl = {0};
	struct slot_arg a[3] = {{&sl, 0}, {&sl, 1}, {&sl, 2}};
	const char *sleep2[] = {"DEBUG", "SLEEP", "2"};
	const char *get[] = {"GET", "k"};
	redis_cmdv(r, 0, slot_cb, &a[0], 3, sleep2, NULL);
	redis_cmdv(r, 0, slot_cb, &a[1], 2, get, NULL);
	redis_cmdv(r, 0, slot_cb, &a[2], 2, get, NULL);
	WAIT(&e->loop, sl.total, 3);
	assert_int_equal(sl.nulls, 3);
	assert_int_equal(s.downs, 1);

	/* It reconnects while the server still sleeps; a patient command
	 * gets its answer once it wakes. */
	WAIT(&e->loop, s.ups, 2);
	assert_int_equal(redis_reconnects(r), 1);
	const char *ping[] = {"PING"};
	struct cap c = {0};
	cmd(r, &c, 5000, 1, ping);
	WAIT(&e->loop, c.calls, 1);
	assert_string_equal(c.str, "PONG");
	for (int i = 0; i < 3; i++)
		assert_int_equal(sl.n[i], 1);
	close_and_check(&e->loop, r);
}

static void test_blocking_beside_normal(void **state)
{
	struct env *e = *state;
	e->pid = server_start(e->port, NULL);
	struct st s1 = {0}, s2 = {0};
	struct redis *main_r = connect_to(e, "main", &s1, 0);
	struct redis *reader = connect_to(e, "reader", &s2, 500);
	WAIT(&e->loop, s1.ups, 1);
	WAIT(&e->loop, s2.ups, 1);

	/* BLPOP k 1 outlives the reader's 500 ms default: its own 2000. */
	const char *blpop[] = {"BLPOP", "k", "1"};
	struct cap b = {0};
	cmd(reader, &b, 2000, 3, blpop);
	struct pipe p = {0};
	const char *incr[] = {"INCR", "n"};
	for (int i = 0; i < 100; i++)
		redis_cmdv(main_r, 0, incr_cb, &p, 2, incr, NULL);
	WAIT(&e->loop, p.seen, 100);
	assert_int_equal(p.bad, 0);
	WAIT(&e->loop, b.calls, 1);
	assert_false(b.null);
	assert_int_equal(b.type, REDIS_REPLY_NIL);

	/* A BLPOP answered by a push on the other connection. */
	const char *blpop5[] = {"BLPOP", "k", "5"};
	cmd(reader, &b, 7000, 3, blpop5);
	run_for(&e->loop, 50);
	struct cap pc = {0};
	redis_cmdf(main_r, cap_cb, &pc, "RPUSH k v");
	WAIT(&e->loop, b.calls, 1);
	assert_int_equal(b.type, REDIS_REPLY_ARRAY);
	assert_string_equal(b.el_str[0], "k");
	assert_string_equal(b.el_str[1], "v");

	assert_int_equal(s1.downs + s2.downs, 0);
	assert_int_equal(redis_reconnects(reader), 0);
	int closed = 0;
	redis_close(reader, closed_cb, &closed);
	WAIT(&e->loop, closed, 1);
	close_and_check(&e->loop, main_r);
}

struct close_check {
	struct slots *sl;
	int total_at_close;
	int closed;
};

static void close_check_cb(void *arg)
{
	struct close_check *cc = arg;
	cc->total_at_close = cc->sl->total;
	cc->closed++;
}

static void test_close_pending(void **state)
{
	struct env *e = *state;
	e->pid = server_start(e->port, NULL);
	struct st s = {0};
	struct redis *r = connect_to(e, "main", &s, 0);
	WAIT(&e->loop, s.ups, 1);

	struct slots sl = {0};
	struct slot_arg a[11];
	const char *blpop[] = {"BLPOP", "q", "10"};
	const char *get[] = {"GET", "k"};
	for (int i = 0; i < 11; i++) {
		a[i] = (struct slot_arg){&sl, i};
		if (i == 0)
			redis_cmdv(r, 15000, slot_cb, &a[i], 3, blpop, NULL);
		else
			redis_cmdv(r, 0, slot_cb, &a[i], 2, get, NULL);
	}
	run_for(&e->loop, 50);
	assert_int_equal(sl.total, 0);
	struct close_check cc = {.sl = &sl};
	redis_close(r, close_check_cb, &cc);
	assert_int_equal(sl.total, 0); /* deferred */
	WAIT(&e->loop, cc.closed, 1);
	assert_int_equal(cc.total_at_close, 11);
	assert_int_equal(sl.nulls, 11);
	for (int i = 0; i < 11; i++)
		assert_int_equal(sl.n[i], 1);
	assert_int_equal(s.downs, 0);
	assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&e->loop), 0);
}

/* redis_close from inside a reply callback (hiredis on the stack) and from
 * the state callback (inside hiredis's connect handling). */
struct inner {
	struct redis *r;
	int closed;
	int closed_in_state;
};

static void close_in_reply(struct redis *r, redisReply *rep, void *arg)
{
	struct inner *in = arg;
	assert_non_null(rep);
	redis_close(r, closed_cb, &in->closed);
}

static void close_in_state(struct redis *r, int up, void *arg)
{
	struct inner *in = arg;
	if (up)
		redis_close(r, closed_cb, &in->closed_in_state);
}

static void test_close_inside_callbacks(void **state)
{
	struct env *e = *state;
	e->pid = server_start(e->port, NULL);
	struct st s = {0};
	struct redis *r = connect_to(e, "main", &s, 0);
	WAIT(&e->loop, s.ups, 1);

	struct inner in = {.r = r};
	struct slots sl = {0};
	struct slot_arg a[4];
	redis_cmdf(r, close_in_reply, &in, "PING");
	const char *blpop[] = {"BLPOP", "q", "10"};
	for (int i = 0; i < 4; i++) {
		a[i] = (struct slot_arg){&sl, i};
		redis_cmdv(r, 15000, slot_cb, &a[i], 3, blpop, NULL);
	}
	WAIT(&e->loop, in.closed, 1);
	assert_int_equal(sl.total, 4);
	assert_int_equal(sl.nulls, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(sl.n[i], 1);

	struct redis_opts o = {.name = "quick", .port = e->port};
	redis_new(&e->loop, &o, close_in_state, &in);
	WAIT(&e->loop, in.closed_in_state, 1);
	assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&e->loop), 0);
}

/* Closing while down (retry timer armed) leaves nothing behind. */
static void test_close_while_down(void **state)
{
	struct env *e = *state;
	struct st s = {0};
	struct redis *r = connect_to(e, "main", &s, 0);
	run_for(&e->loop, 100);
	struct cap c = {0};
	redis_cmdf(r, cap_cb, &c, "PING");
	close_and_check(&e->loop, r);
	assert_int_equal(c.calls, 1);
	assert_true(c.null);
	assert_int_equal(s.ups, 0);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const char *dbg = getenv("TEST_REDIS_DEBUG");
	log_setup(dbg && *dbg ? LOG_DEBUG : LOG_ERR, LOG_FMT_KV);
	if (dbg && *dbg)
		log_set_trace("redis");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pipeline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_script, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused_then_up, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset_by_peer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_handshake_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_auth_select, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unix_socket, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kill9, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_blocking_beside_normal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_close_pending, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_close_inside_callbacks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_close_while_down, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
