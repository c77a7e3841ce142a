/*
 * testlib.h - scaffolding shared by the channel driver unit tests
 * (test_sms_*.c, test_chat_telegram.c, test_channels.c, test_email_smtp.c):
 * a private temporary directory, small files, fake providers run as child
 * processes that print their port, the JSONL records those fakes write,
 * loading a config file and configuring / starting one channel on a libuv
 * loop, sending a batch and running the loop until N reports arrived (a
 * guard timer only catches hangs), stopping channels with uv_loop_close()
 * == 0, stderr (where log lines go) captured to a file, and the group
 * fixture the SMS driver tests share (directory, credentials, fake, log).
 *
 * Functions documented "fails the test" report through cmocka (fail_msg /
 * assert_*) and so may only be called from inside a cmocka test or fixture;
 * the others return 0 or a negative errno (or NULL) and never assert.
 * Include after <cmocka.h> and its prerequisites.
 */
#ifndef CLUBD_TESTLIB_H
#define CLUBD_TESTLIB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>
#include <uv.h>

#include "channel.h"
#include "config.h"
#include "util.h"

/* The interpreter the fakes run under (Debian's, not the first on PATH). */
#define TL_PYTHON "/usr/bin/python3"
/* The default hang guard of tl_run_until: no assertion depends on it. */
#define TL_GUARD_MS 30000
/* What tl_sms_send_batch sends when a case leaves to[i] / text[i] NULL. */
#define TL_SMS_TO   "+989121234567"
#define TL_SMS_TEXT "Hello from the club"
/* Persian sample text (two UCS-2 SMS parts, a line break, Latin and an em
 * dash), "salam" and "salam" percent-encoded as UTF-8. */
#define TL_FA_TEXT                                                                                 \
	"\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85\xd8\x8c \xd9\x85\xd8\xb4\xd8\xaa\xd8\xb1\xdb\x8c "       \
	"\xda\xaf\xd8\xb1\xd8\xa7\xd9\x85\xdb\x8c! "                                               \
	"\xd8\xa8\xd8\xa7\xd8\xb4\xda\xaf\xd8\xa7\xd9\x87 "                                        \
	"\xd9\x85\xd8\xa7 \xd8\xa7\xd8\xb2 \xd8\xb4\xd9\x86\xd8\xa8\xd9\x87 \xd8\xaa\xd8\xa7 "     \
	"\xd8\xac\xd9\x85\xd8\xb9\xd9\x87 \xd8\xa8\xd8\xa7\xd8\xb2 \xd8\xa7\xd8\xb3\xd8\xaa.\n"    \
	"\xda\xa9\xd8\xaf \xd8\xaa\xd8\xae\xd9\x81\xdb\x8c\xd9\x81: YALDA1402 \xe2\x80\x94 "       \
	"\xd8\xa8\xd8\xb1\xd8\xa7\xdb\x8c \xd9\x84\xd8\xba\xd9\x88 \xdb\xb1\xdb\xb1 "              \
	"\xd8\xb1\xd8\xa7 \xd8\xa8\xd9\x81\xd8\xb1\xd8\xb3\xd8\xaa\xdb\x8c\xd8\xaf."
#define TL_FA_SALAM     "\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85"
#define TL_FA_SALAM_PCT "%D8%B3%D9%84%D8%A7%D9%85"

/* ---- files ---------------------------------------------------------------- */

/*
 * Create a fresh directory "$TMPDIR/clubd-test-<tag>-XXXXXX" (/tmp when
 * TMPDIR is unset or empty) into dir[n].  0, or -errno.
 */
int tl_mkdtemp(char *dir, size_t n, const char *tag);
/* Remove dir and everything below it (best effort, never follows links). */
void tl_rmtree(const char *dir);
/* Create or truncate path with mode (before the umask) holding text; fails
 * the test when the file cannot be written completely. */
void tl_write_file(const char *path, const char *text, mode_t mode);
/*
 * The whole file as a NUL-terminated string the caller frees ("" when
 * empty), its length in *len when len is set; NULL when it cannot be opened.
 */
char *tl_read_file(const char *path, size_t *len);
/* The rest of f (not closed) as tl_read_file returns a file. */
char *tl_read_stream(FILE *f, size_t *len);

/* ---- fake providers and ports --------------------------------------------- */

/*
 * Find tests/fakes/<name>: under $CLUBD_SRCDIR, then from the working
 * directory (".", "../.."), then next to the binary (build/tests/test_x ->
 * ../../tests/fakes).  0 with the path in out[n], or -1 after saying on
 * stderr that it is missing.
 */
int tl_find_fake(const char *name, char *out, size_t n);
/*
 * Run argv (argv[0] the program's path, NULL-terminated) as a child whose
 * stdout is a pipe, and read its first line (20 s at most): the port it
 * listens on, on 127.0.0.1.  The child's pid, with *port set; -1 when it
 * could not be started or printed no port (a started child is killed and
 * reaped then).  Stop it with tl_kill().
 */
pid_t tl_spawn_fake(const char *const argv[], int *port);
/* SIGTERM pid and reap it; nothing when pid <= 0. */
void tl_kill(pid_t pid);
/* POST json to http://127.0.0.1:<port>/_control/<what> of a fake (blocking,
 * from the test); fails the test unless it answers 200. */
void tl_fake_control(int port, const char *what, const char *json);
/* A bound 127.0.0.1 TCP port nobody listens on (connections to it are
 * refused) while *fd stays open; fails the test when it cannot bind. */
int tl_bound_port(int *fd);
/* A free 127.0.0.1 TCP port (bound, read and released again); fails the
 * test when it cannot bind. */
int tl_free_port(void);
/*
 * Start /usr/bin/redis-server on 127.0.0.1:port without persistence (--dir
 * /tmp, output to /dev/null, killed when the test process dies) with extra
 * NULL-terminated arguments (or NULL), and wait (at most 400 tries of 25 ms)
 * until it answers PING (an error such as NOAUTH counts).  The child's pid;
 * -1 when it exited or did not come up (then killed and reaped).  Never
 * asserts.  Stop it with kill(SIGKILL) / waitpid or tl_kill().
 */
pid_t tl_redis_start(int port, const char *const *extra);

/* ---- JSON records --------------------------------------------------------- */

/*
 * The JSON lines of path after the first `skip` records, as a new array
 * (empty when the file does not exist); blank lines are passed over.  Fails
 * the test on a line that is not JSON.
 */
json_t *tl_read_jsonl(const char *path, size_t skip);
/* How many records tl_read_jsonl(path, 0) returns. */
size_t tl_count_jsonl(const char *path);
/* The string member k of o; NULL when missing or not a string. */
const char *tl_jstr(const json_t *o, const char *k);
/* Like tl_jstr, but fails the test when the string is not there (cmocka's
 * string asserts crash on NULL). */
const char *tl_jreq(const json_t *o, const char *k);

/* ---- config and channels -------------------------------------------------- */

/*
 * Write text to dir/name (0600) and config_load() it.  The config, or NULL
 * with err set (also when the file cannot be written).
 */
struct config *tl_load_config(const char *dir, const char *name, const char *text,
                              struct cfg_error *err);
/* tl_load_config, failing the test with the error instead of NULL. */
struct config *tl_load_config_or_fail(const char *dir, const char *name, const char *text);
/*
 * Configure the [channel.<name>] of cfg with drv, as chan_configure_all
 * does for one channel (driver key consumed, unused keys refused): a new
 * chan the caller frees with chan_free_all(c, 1), or NULL with err.  Borrows
 * cfg for the chan's life.
 */
struct chan *tl_chan_configure(const struct config *cfg, const char *name,
                               const struct chan_driver *drv, struct cfg_error *err);
/* tl_chan_configure (failing the test with its error), then uv_loop_init()
 * loop and start the channel on it (it must start). */
struct chan *tl_chan_up(uv_loop_t *loop, const struct config *cfg, const char *name,
                        const struct chan_driver *drv);

/* ---- the loop ------------------------------------------------------------- */

/*
 * Run loop until *count >= want; a guard timer of guard_ms only catches
 * hangs.  0, or -ETIMEDOUT when the guard fired.  Its own handles are
 * closed before it returns.
 */
int tl_loop_until(uv_loop_t *loop, const int *count, int want, uint64_t guard_ms);
/* tl_loop_until with TL_GUARD_MS; fails the test when the guard fired. */
void tl_run_until(uv_loop_t *loop, const int *count, int want);
/* Run what is left on loop (1000 turns at most) and close it: the result
 * of uv_loop_close(), 0 when nothing leaked. */
int tl_loop_finish(uv_loop_t *loop);
/* A callback that counts: (*(int *)arg)++ (chan_stop_all's, for one). */
void tl_on_count(void *arg);
/*
 * chan_stop_all(chans, n), wait for its callback (exactly once), free the
 * channels and close loop; fails the test on a hang or when
 * uv_loop_close() is not 0.
 */
void tl_stop_all_and_close(uv_loop_t *loop, struct chan *chans, size_t n);

/* ---- sends ---------------------------------------------------------------- */

/* One message handed to chan_send and its report. */
struct tl_send {
	struct chan_msg m;
	char id[ID_LEN + 1];
	struct chan_result r;
	int done;     /* the report came */
	int *counter; /* incremented by the report */
};

/*
 * A transactional message with a new id on channel to `to`: contact "c-42",
 * lang "fa", attempt 1, created 1700000000123 ms; no subject or html.  The
 * strings are borrowed.
 */
void tl_send_init(struct tl_send *s, int *counter, const char *channel, const char *to,
                  const char *text);
/* The chan_done_cb for a struct tl_send: keeps the report, fails the test
 * when one comes twice. */
void tl_send_done(void *arg, const struct chan_result *r);
/*
 * Send n messages on the started sms channel c: s[i] to to[i] with text[i]
 * (NULL entries: TL_SMS_TO, TL_SMS_TEXT), with id ids[i] instead of a new
 * one when ids and ids[i] are set.  Every chan_send must return 0 and none
 * may report from inside it; then runs loop until all n reported.
 */
void tl_sms_send_batch(uv_loop_t *loop, struct chan *c, struct tl_send *s, int n,
                       const char *const *to, const char *const *text, const char *const *ids);
/*
 * A whole run of one SMS driver: load conf as dir/name, configure
 * [channel.sms] with drv and start it on a new loop, tl_sms_send_batch (n 0
 * counts as 1), stop, close the loop (uv_loop_close() == 0) and free the
 * config.  Returns the number of messages sent.
 */
int tl_sms_run(const char *dir, const char *name, const char *conf, const struct chan_driver *drv,
               struct tl_send *s, int n, const char *const *to, const char *const *text);

/* ---- stderr --------------------------------------------------------------- */

/*
 * Send everything written to fd 2 (log lines) to path, truncated, or
 * appended to when append is set.  The saved stderr (>= 0) to hand to
 * tl_capture_stderr_end(), or -errno.
 */
int tl_capture_stderr_begin(const char *path, int append);
/* Give fd 2 back; nothing when saved < 0. */
void tl_capture_stderr_end(int saved);
/*
 * Copy to stderr the lines of a capture file that are not log lines (no
 * " sub="), such as cmocka's failure reports; every line when
 * CLUBD_TEST_VERBOSE is set.
 */
void tl_stderr_replay(const char *path);

/* ---- a driver test program's fixture ------------------------------------- */

/*
 * What a driver test program keeps for its whole run: a private directory
 * holding the right credential and a wrong one, the fake provider's
 * request log, the fake itself, and fd 2 while it is captured.
 */
struct tl_fixture {
	char dir[256];
	char secret_path[320];     /* the right secret and a newline */
	char bad_secret_path[320]; /* a wrong one */
	char log_path[320];        /* <tag>-requests.jsonl: every request the fake saw */
	char err_path[320];        /* stderr.log: fd 2 while captured */
	pid_t pid;                 /* the fake; -1: none */
	int port;                  /* where it listens on 127.0.0.1 */
	int saved_stderr;          /* -1: fd 2 not captured */
};

/*
 * For a group setup: SIGPIPE ignored, a new directory tl_mkdtemp(tag)
 * holding secret_name (secret and a newline) and bad_name (bad as it is),
 * both 0600, and the log and stderr paths named in it.  0, or -1.
 */
int tl_fixture_setup(struct tl_fixture *fx, const char *tag, const char *secret_name,
                     const char *secret, const char *bad_name, const char *bad);
/* Start tests/fakes/<script> under TL_PYTHON with args (NULL-terminated, at
 * most 13) into fx->pid and fx->port.  0, or -1. */
int tl_fixture_start_fake(struct tl_fixture *fx, const char *script, const char *const args[]);
/*
 * From now to the teardown, every log line (traces included) goes to
 * fx->err_path, for a last test that scans the whole run's log.  0, or -1.
 */
int tl_fixture_capture_log(struct tl_fixture *fx);
/*
 * For a group teardown: give fd 2 back and replay what was not a log line
 * (tl_stderr_replay), stop the fake, remove the directory.
 */
void tl_fixture_teardown(struct tl_fixture *fx);
/* A cmocka group teardown running tl_fixture_teardown on *state, where the
 * group setup put its struct tl_fixture (nothing when NULL).  0. */
int tl_fixture_group_teardown(void **state);

/* Sign callback URLs (dlr-url, StatusCallback) with a fixed test secret,
 * process-wide, as [api] callback_secret_file does.  0, or -1 after saying
 * why on stderr. */
int tl_callback_secret_init(void);

#endif
