/*
 * redis.h - one asynchronous Redis connection on the libuv loop.
 *
 * hiredis 0.14 async with our own libuv adapter (poll errors are passed on
 * as readiness so hiredis sees refused connects and resets), our own
 * reconnect with clamped exponential backoff, and a deadline on every
 * command.  Every callback is called exactly once: with the reply, or with
 * reply == NULL meaning "not executed or outcome unknown" (disconnected,
 * deadline passed, shutting down).  Callbacks are never called from inside
 * the function that queued the command.
 *
 * A deadline that passes on a pipelined connection means the connection is
 * stuck: it is dropped (every pending callback gets NULL) and reconnected.
 *
 * Commands queued while the connection is not up (connecting, AUTH/SELECT
 * running, waiting to reconnect) are not buffered: they get NULL at once
 * (deferred to the next loop iteration).  hiredis writes with write(2): the
 * process must ignore SIGPIPE.
 */
#ifndef CLUBD_REDIS_H
#define CLUBD_REDIS_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct redis;

struct redis_opts {
	const char *name; /* for logs: "main", "reader" */
	const char *host;
	int port;
	const char *socket;   /* unix socket; wins over host/port when set */
	const char *password; /* AUTH after connect when set; never logged */
	int db;               /* SELECT after connect when non-zero */
	/* Zero picks the default: host 127.0.0.1, port 6379, command and
	 * connect timeouts 5000 ms, reconnect backoff 100 .. 10000 ms (each
	 * delay gets +-20% jitter).  connect_timeout_ms also bounds AUTH and
	 * SELECT. */
	int64_t command_timeout_ms;
	int64_t connect_timeout_ms;
	int64_t reconnect_min_ms;
	int64_t reconnect_max_ms;
};

/* reply is borrowed for the duration of the callback only.  A NULL cb is
 * allowed (fire and forget). */
typedef void (*redis_cb)(struct redis *r, redisReply *reply, void *arg);
/* Called on every transition: up = 1 when connected and ready (AUTH,
 * SELECT and script loading done), 0 when lost.  Not called for failed
 * reconnect attempts while down, nor by redis_close(). */
typedef void (*redis_state_cb)(struct redis *r, int up, void *arg);

/* Copies opts' strings.  Starts connecting at once. */
struct redis *redis_new(uv_loop_t *loop, const struct redis_opts *o, redis_state_cb state_cb,
                        void *arg);
int redis_is_up(const struct redis *r);
const char *redis_name(const struct redis *r);
/* How many times the connection came up again after having been up. */
uint64_t redis_reconnects(const struct redis *r);
/* Commands queued and not yet answered (including NULLs not yet delivered). */
size_t redis_pending(const struct redis *r);

/*
 * Queue a command (binary-safe argv).  timeout_ms 0 = the default command
 * timeout; a blocking command passes its BLOCK time plus a margin.
 * Always returns 0: failure is reported through cb(NULL).
 */
int redis_cmdv(struct redis *r, int64_t timeout_ms, redis_cb cb, void *arg, int argc,
               const char **argv, const size_t *argvlen);
/* printf-style convenience (hiredis format: %s %b %d %lld). */
int redis_cmdf(struct redis *r, redis_cb cb, void *arg, const char *fmt, ...);

/* A Lua script, embedded in the binary; sha is computed on first use.
 * Borrowed until the callback: it must outlive the command (static). */
struct redis_script {
	const char *name;
	const char *body;
	char sha[41];
};

/*
 * EVALSHA with an automatic EVAL fallback on NOSCRIPT (a restarted Redis
 * has an empty script cache).  argv holds nkeys keys then the arguments.
 */
int redis_script(struct redis *r, struct redis_script *s, redis_cb cb, void *arg, int nkeys,
                 int argc, const char **argv, const size_t *argvlen);

/* Fail everything pending with NULL, close, then call cb.  The struct is
 * freed after cb returns.  The pending callbacks (and any command queued
 * from them, which fails too) run before cb; nothing may be queued from cb. */
void redis_close(struct redis *r, void (*cb)(void *arg), void *arg);

/* Reply helpers: 1 when the reply is an error whose text starts with pfx. */
int redis_reply_is_error(const redisReply *rep, const char *pfx);

#endif
