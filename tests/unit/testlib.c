/*
 * testlib.c - scaffolding shared by the channel driver unit tests (see
 * testlib.h): temporary directories and files, fake providers as child
 * processes, their JSONL records, configuring and starting one channel,
 * running and closing a libuv loop, stderr captured to a file, and the
 * SMS driver tests' group fixture; a free loopback port and a throwaway
 * redis-server for the tests that need a real store.
 *
 * Owns nothing global: every directory, pid, loop, channel and config
 * belongs to the test that asked for it.  Never touches the daemon's state
 * beyond the channel, config, log and callback APIs it calls, and talks to
 * 127.0.0.1 only.  Limits: a fake must print its port within 20 s on a
 * line of at most 31 bytes and takes at most 13 arguments through
 * tl_fixture_start_fake; a loop run is bounded by its guard timer, a loop
 * close by 1000 turns.  Linked into every tests/unit/test_* program; the
 * functions that fail the test use cmocka and belong inside a test or
 * fixture.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "callback.h"
#include "channel.h"
#include "config.h"
#include "log.h"
#include "testlib.h"
#include "util.h"

/* ---- files ---------------------------------------------------------------- */

int tl_mkdtemp(char *dir, size_t n, const char *tag)
{
	const char *t = getenv("TMPDIR");
	snprintf(dir, n, "%s/clubd-test-%s-XXXXXX", t && *t ? t : "/tmp", tag);
	return mkdtemp(dir) ? 0 : -errno;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

void tl_rmtree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* 0, or -errno (-EIO on a short write). */
static int write_all(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		return -errno;
	size_t n = strlen(text);
	ssize_t w = write(fd, text, n);
	int r = w < 0 ? -errno : (size_t)w == n ? 0 : -EIO;
	close(fd);
	return r;
}

void tl_write_file(const char *path, const char *text, mode_t mode)
{
	int r = write_all(path, text, mode);
	if (r < 0)
		fail_msg("cannot write %.400s: %s", path, strerror(-r));
}

char *tl_read_stream(FILE *f, size_t *len)
{
	struct buf b;
	buf_init(&b, 0);
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
		buf_append(&b, tmp, n);
	if (len)
		*len = b.len;
	return buf_steal(&b);
}

char *tl_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *s = tl_read_stream(f, len);
	fclose(f);
	return s;
}

/* ---- fake providers and ports --------------------------------------------- */

int tl_find_fake(const char *name, char *out, size_t n)
{
	const char *src = getenv("CLUBD_SRCDIR");
	out[0] = '\0';
	if (src)
		snprintf(out, n, "%s/tests/fakes/%s", src, name);
	if (!out[0] || access(out, R_OK) != 0)
		snprintf(out, n, "tests/fakes/%s", name);
	if (access(out, R_OK) != 0)
		snprintf(out, n, "../../tests/fakes/%s", name);
	if (access(out, R_OK) != 0) {
		/* next to the binary: build/tests/test_x -> ../../tests/fakes */
		char exe[PATH_MAX];
		ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
		if (l > 0) {
			exe[l] = '\0';
			char *slash = strrchr(exe, '/');
			if (slash)
				*slash = '\0';
			snprintf(out, n, "%s/../../tests/fakes/%s", exe, name);
		}
	}
	if (access(out, R_OK) != 0) {
		fprintf(stderr, "%s not found (set CLUBD_SRCDIR)\n", name);
		return -1;
	}
	return 0;
}

pid_t tl_spawn_fake(const char *const argv[], int *port)
{
	int fds[2];
	if (pipe(fds) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	/* the first line it prints is its port */
	char line[32];
	size_t got = 0;
	while (got < sizeof line - 1) {
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
		if (poll(&pfd, 1, 20000) <= 0)
			break;
		ssize_t r = read(fds[0], line + got, 1);
		if (r <= 0 || line[got] == '\n')
			break;
		got++;
	}
	line[got] = '\0';
	close(fds[0]);
	int64_t p;
	if (parse_i64(line, 1, 65535, &p) < 0) {
		fprintf(stderr, "%s did not start (got '%s')\n", argv[1] ? argv[1] : argv[0], line);
		tl_kill(pid);
		return -1;
	}
	*port = (int)p;
	return pid;
}

int tl_bound_port(int *fd)
{
	*fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(*fd, (struct sockaddr *)&sa, sizeof sa), 0);
	socklen_t sl = sizeof sa;
	assert_int_equal(getsockname(*fd, (struct sockaddr *)&sa, &sl), 0);
	return ntohs(sa.sin_port);
}

int tl_free_port(void)
{
	int fd;
	int port = tl_bound_port(&fd);
	close(fd);
	return port;
}

pid_t tl_redis_start(int port, const char *const *extra)
{
	char portstr[16];
	snprintf(portstr, sizeof portstr, "%d", port);
	const char *argv[32] = {"redis-server", "--save", "",       "--appendonly", "no",
	                        "--port",       portstr,  "--bind", "127.0.0.1",    "--daemonize",
	                        "no",           "--dir",  "/tmp"};
	int n = 13;
	for (; extra && *extra && n < 31; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv("/usr/bin/redis-server", (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 400; i++) {
		if (waitpid(pid, NULL, WNOHANG) != 0)
			return -1;
		struct timeval tv = {0, 200000};
		redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
		redisReply *rep = c && !c->err ? redisCommand(c, "PING") : NULL;
		int ok = rep != NULL;
		if (rep)
			freeReplyObject(rep);
		if (c)
			redisFree(c);
		if (ok)
			return pid;
		struct timespec ts = {0, 25000000L};
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

void tl_kill(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

void tl_fake_control(int port, const char *what, const char *json)
{
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/_control/%s", port, what);
	CURL *e = curl_easy_init();
	assert_non_null(e);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, json);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
	FILE *devnull = fopen("/dev/null", "w");
	curl_easy_setopt(e, CURLOPT_WRITEDATA, devnull);
	assert_int_equal(curl_easy_perform(e), CURLE_OK);
	long code = 0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	assert_int_equal(code, 200);
	curl_easy_cleanup(e);
	fclose(devnull);
}

/* ---- JSON records --------------------------------------------------------- */

json_t *tl_read_jsonl(const char *path, size_t skip)
{
	json_t *a = json_array();
	FILE *f = fopen(path, "r");
	if (!f)
		return a;
	char *line = NULL;
	size_t cap = 0, seen = 0;
	while (getline(&line, &cap, f) > 0) {
		if (line[strspn(line, "\r\n")] == '\0')
			continue; /* blank */
		if (seen++ < skip)
			continue;
		json_error_t je;
		json_t *j = json_loads(line, 0, &je);
		if (!j) {
			free(line);
			fclose(f);
			json_decref(a);
			fail_msg("bad record line: %s", je.text);
		}
		json_array_append_new(a, j);
	}
	free(line);
	fclose(f);
	return a;
}

size_t tl_count_jsonl(const char *path)
{
	json_t *a = tl_read_jsonl(path, 0);
	size_t n = json_array_size(a);
	json_decref(a);
	return n;
}

const char *tl_jstr(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

const char *tl_jreq(const json_t *o, const char *k)
{
	const char *v = tl_jstr(o, k);
	if (!v)
		fail_msg("recorded request has no string \"%s\"", k);
	return v;
}

/* ---- config and channels -------------------------------------------------- */

struct config *tl_load_config(const char *dir, const char *name, const char *text,
                              struct cfg_error *err)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	memset(err, 0, sizeof *err);
	int r = write_all(path, text, 0600);
	if (r < 0) {
		snprintf(err->msg, sizeof err->msg, "cannot write %.400s: %s", path, strerror(-r));
		return NULL;
	}
	struct config *c = NULL;
	if (config_load(path, &c, err) < 0)
		return NULL;
	return c;
}

struct config *tl_load_config_or_fail(const char *dir, const char *name, const char *text)
{
	struct cfg_error err;
	struct config *cfg = tl_load_config(dir, name, text, &err);
	if (!cfg)
		fail_msg("%s", err.msg);
	return cfg;
}

struct chan *tl_chan_configure(const struct config *cfg, const char *name,
                               const struct chan_driver *drv, struct cfg_error *err)
{
	const struct cfg_channel *cc = config_channel(cfg, name);
	assert_non_null(cc);
	struct chan *c = xcalloc(1, sizeof *c);
	c->cfg = cc;
	(void)cfg_sec_str(cc->sec, "driver", NULL);
	c->drv = drv;
	c->root = cfg;
	int r = c->drv->configure(c, err);
	c->root = NULL;
	if (r == 0)
		r = cfg_sec_check_unused(cc->sec, err);
	if (r < 0) {
		chan_free_all(c, 1);
		return NULL;
	}
	return c;
}

struct chan *tl_chan_up(uv_loop_t *loop, const struct config *cfg, const char *name,
                        const struct chan_driver *drv)
{
	struct cfg_error err;
	struct chan *c = tl_chan_configure(cfg, name, drv, &err);
	if (!c)
		fail_msg("%s", err.msg);
	uv_loop_init(loop);
	assert_int_equal(chan_start_all(c, 1, loop), 0);
	return c;
}

/* ---- the loop ------------------------------------------------------------- */

struct until {
	const int *count;
	int want;
	int fired;
};

static void guard_cb(uv_timer_t *t)
{
	struct until *u = t->data;
	u->fired = 1;
	uv_stop(t->loop);
}

/* Before each poll: stop once satisfied, so the poll does not block. */
static void until_prepare(uv_prepare_t *p)
{
	struct until *u = p->data;
	if (*u->count >= u->want)
		uv_stop(p->loop);
}

int tl_loop_until(uv_loop_t *loop, const int *count, int want, uint64_t guard_ms)
{
	struct until u = {.count = count, .want = want};
	uv_timer_t g;
	uv_prepare_t p;
	uv_timer_init(loop, &g);
	g.data = &u;
	uv_timer_start(&g, guard_cb, guard_ms, 0);
	uv_prepare_init(loop, &p);
	p.data = &u;
	uv_prepare_start(&p, until_prepare);
	while (*count < want && !u.fired)
		uv_run(loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&g, NULL);
	uv_close((uv_handle_t *)&p, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return u.fired ? -ETIMEDOUT : 0;
}

void tl_run_until(uv_loop_t *loop, const int *count, int want)
{
	if (tl_loop_until(loop, count, want, TL_GUARD_MS) < 0)
		fail_msg("the loop hung: %d of %d after %d ms", *count, want, TL_GUARD_MS);
}

int tl_loop_finish(uv_loop_t *loop)
{
	for (int i = 0; i < 1000 && uv_loop_alive(loop); i++)
		uv_run(loop, UV_RUN_NOWAIT);
	return uv_loop_close(loop);
}

void tl_on_count(void *arg)
{
	(*(int *)arg)++;
}

void tl_stop_all_and_close(uv_loop_t *loop, struct chan *chans, size_t n)
{
	int st = 0;
	chan_stop_all(chans, n, tl_on_count, &st);
	tl_run_until(loop, &st, 1);
	assert_int_equal(st, 1);
	chan_free_all(chans, n);
	assert_int_equal(tl_loop_finish(loop), 0);
}

/* ---- sends ---------------------------------------------------------------- */

void tl_send_init(struct tl_send *s, int *counter, const char *channel, const char *to,
                  const char *text)
{
	memset(s, 0, sizeof *s);
	id_new(s->id, now_ms());
	s->m.id = s->id;
	s->m.channel = channel;
	s->m.category = "transactional";
	s->m.contact_id = "c-42";
	s->m.to = to;
	s->m.lang = "fa";
	s->m.text = text;
	s->m.attempt = 1;
	s->m.created_ms = 1700000000123;
	s->counter = counter;
}

void tl_send_done(void *arg, const struct chan_result *r)
{
	struct tl_send *s = arg;
	assert_int_equal(s->done, 0); /* exactly once */
	s->r = *r;
	s->done = 1;
	(*s->counter)++;
}

void tl_sms_send_batch(uv_loop_t *loop, struct chan *c, struct tl_send *s, int n,
                       const char *const *to, const char *const *text, const char *const *ids)
{
	int ndone = 0;
	for (int i = 0; i < n; i++) {
		tl_send_init(&s[i], &ndone, "sms", to[i] ? to[i] : TL_SMS_TO,
		             text[i] ? text[i] : TL_SMS_TEXT);
		if (ids && ids[i])
			snprintf(s[i].id, sizeof s[i].id, "%s", ids[i]);
		assert_int_equal(chan_send(c, &s[i].m, tl_send_done, &s[i]), 0);
	}
	assert_int_equal(ndone, 0); /* never from inside send */
	tl_run_until(loop, &ndone, n);
}

int tl_sms_run(const char *dir, const char *name, const char *conf, const struct chan_driver *drv,
               struct tl_send *s, int n, const char *const *to, const char *const *text)
{
	struct config *cfg = tl_load_config_or_fail(dir, name, conf);
	uv_loop_t loop;
	struct chan *c = tl_chan_up(&loop, cfg, "sms", drv);
	if (n == 0)
		n = 1;
	tl_sms_send_batch(&loop, c, s, n, to, text, NULL);
	tl_stop_all_and_close(&loop, c, 1);
	config_free(cfg);
	return n;
}

/* ---- stderr --------------------------------------------------------------- */

int tl_capture_stderr_begin(const char *path, int append)
{
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	if (saved < 0)
		return -errno;
	int fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0600);
	if (fd < 0 || dup2(fd, STDERR_FILENO) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		close(saved);
		return -e;
	}
	close(fd);
	return saved;
}

void tl_capture_stderr_end(int saved)
{
	if (saved < 0)
		return;
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
}

void tl_stderr_replay(const char *path)
{
	int verbose = getenv("CLUBD_TEST_VERBOSE") != NULL;
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	while (f && getline(&line, &cap, f) > 0)
		if (verbose || !strstr(line, " sub="))
			fputs(line, stderr);
	free(line);
	if (f)
		fclose(f);
}

/* ---- a driver test program's fixture ------------------------------------- */

int tl_fixture_setup(struct tl_fixture *fx, const char *tag, const char *secret_name,
                     const char *secret, const char *bad_name, const char *bad)
{
	memset(fx, 0, sizeof *fx);
	fx->pid = -1;
	fx->saved_stderr = -1;
	signal(SIGPIPE, SIG_IGN);
	if (tl_mkdtemp(fx->dir, sizeof fx->dir, tag) < 0)
		return -1;
	snprintf(fx->secret_path, sizeof fx->secret_path, "%s/%s", fx->dir, secret_name);
	snprintf(fx->bad_secret_path, sizeof fx->bad_secret_path, "%s/%s", fx->dir, bad_name);
	snprintf(fx->log_path, sizeof fx->log_path, "%s/%s-requests.jsonl", fx->dir, tag);
	snprintf(fx->err_path, sizeof fx->err_path, "%s/stderr.log", fx->dir);
	char line[256];
	snprintf(line, sizeof line, "%s\n", secret);
	if (write_all(fx->secret_path, line, 0600) < 0 ||
	    write_all(fx->bad_secret_path, bad, 0600) < 0)
		return -1;
	return 0;
}

int tl_fixture_start_fake(struct tl_fixture *fx, const char *script, const char *const args[])
{
	char path[PATH_MAX + 64];
	if (tl_find_fake(script, path, sizeof path) < 0)
		return -1;
	const char *argv[16] = {TL_PYTHON, path};
	size_t n = 2;
	for (size_t i = 0; args[i]; i++) {
		if (n == ARRAY_SIZE(argv) - 1)
			return -1;
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	fx->pid = tl_spawn_fake(argv, &fx->port);
	return fx->pid > 0 ? 0 : -1;
}

int tl_fixture_capture_log(struct tl_fixture *fx)
{
	fx->saved_stderr = tl_capture_stderr_begin(fx->err_path, 0);
	if (fx->saved_stderr < 0)
		return -1;
	log_setup(LOG_DEBUG, LOG_FMT_KV);
	log_set_trace("all");
	return 0;
}

void tl_fixture_teardown(struct tl_fixture *fx)
{
	if (fx->saved_stderr >= 0) {
		tl_capture_stderr_end(fx->saved_stderr);
		fx->saved_stderr = -1;
		/* give back what was not a log line (cmocka's failure reports) */
		tl_stderr_replay(fx->err_path);
	}
	tl_kill(fx->pid);
	fx->pid = -1;
	tl_rmtree(fx->dir);
}

int tl_fixture_group_teardown(void **state)
{
	if (*state)
		tl_fixture_teardown(*state);
	return 0;
}

int tl_callback_secret_init(void)
{
	char why[256];
	setenv("CLUBD_TEST_CALLBACK_SECRET", "test-callback-secret-0123456789", 1);
	if (callback_init("env:CLUBD_TEST_CALLBACK_SECRET", why, sizeof why) < 0) {
		fprintf(stderr, "callback_init: %s\n", why);
		return -1;
	}
	return 0;
}
