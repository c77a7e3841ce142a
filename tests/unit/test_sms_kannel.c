/*
 * test_sms_kannel.c - the "kannel" driver on a real libuv loop against
 * tests/fakes/kannel.py (a fake smsbox speaking sendsms over loopback and
 * recording every request): config errors naming file:line:key, the GET
 * query and the POST X-Kannel-* headers (Persian text UTF-8 percent-encoded
 * with coding=2, the dlr-url with its %-codes left for Kannel), OK /
 * PERMFAIL / TEMPFAIL mapping with Retry-After, segments and cost,
 * max_segments and bad recipients refused without a request, transport
 * errors, and no reason ever carrying the password.  Every test ends with
 * uv_loop_close() == 0; no assertion depends on elapsed time.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "callback.h"
#include "channel.h"
#include "config.h"
#include "log.h"
#include "sms_drivers.h"
#include "sms_segments.h"
#include "util.h"

/* Characters that need percent-encoding, and one that Kannel's own
 * parser would turn into a space if sent raw ('+'). */
static const char PASSWORD[] = "p@ss w&rd+1%=";
static const char PASSWORD_PCT[] = "p%40ss%20w%26rd%2B1%25%3D";

static char tmpdir[256];
static char pw_path[320], bad_pw_path[320], log_path[320];
static pid_t fake_pid = -1;
static int fake_port;

static const char fa_text[] =
    "\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85\xd8\x8c \xd9\x85\xd8\xb4\xd8\xaa\xd8\xb1\xdb\x8c "
    "\xda\xaf\xd8\xb1\xd8\xa7\xd9\x85\xdb\x8c! \xd8\xa8\xd8\xa7\xd8\xb4\xda\xaf\xd8\xa7\xd9\x87 "
    "\xd9\x85\xd8\xa7 \xd8\xa7\xd8\xb2 \xd8\xb4\xd9\x86\xd8\xa8\xd9\x87 \xd8\xaa\xd8\xa7 "
    "\xd8\xac\xd9\x85\xd8\xb9\xd9\x87 \xd8\xa8\xd8\xa7\xd8\xb2 \xd8\xa7\xd8\xb3\xd8\xaa.\n"
    "\xda\xa9\xd8\xaf \xd8\xaa\xd8\xae\xd9\x81\xdb\x8c\xd9\x81: YALDA1402 \xe2\x80\x94 "
    "\xd8\xa8\xd8\xb1\xd8\xa7\xdb\x8c \xd9\x84\xd8\xba\xd9\x88 \xdb\xb1\xdb\xb1 "
    "\xd8\xb1\xd8\xa7 \xd8\xa8\xd9\x81\xd8\xb1\xd8\xb3\xd8\xaa\xdb\x8c\xd8\xaf.";
/* "salam" in Persian, as sent on the wire */
static const char fa_salam[] = "\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85";
static const char fa_salam_pct[] = "%D8%B3%D9%84%D8%A7%D9%85";

/* ---- helpers ------------------------------------------------------------- */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	size_t n = strlen(text);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	close(fd);
}

static struct config *load_cfg(const char *text, struct cfg_error *err)
{
	char path[512];
	snprintf(path, sizeof path, "%s/kannel.conf", tmpdir);
	write_file(path, text, 0600);
	struct config *c = NULL;
	memset(err, 0, sizeof *err);
	if (config_load(path, &c, err) < 0)
		return NULL;
	return c;
}

/* Configure [channel.sms] with the driver under test, as channel.c does. */
static struct chan *sms_chan(const struct config *cfg, struct cfg_error *err)
{
	const struct cfg_channel *cc = config_channel(cfg, "sms");
	assert_non_null(cc);
	struct chan *c = xcalloc(1, sizeof *c);
	c->cfg = cc;
	(void)cfg_sec_str(cc->sec, "driver", NULL);
	c->drv = &chan_sms_kannel_driver;
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

static void until_prepare(uv_prepare_t *p)
{
	struct until *u = p->data;
	if (*u->count >= u->want)
		uv_stop(p->loop);
}

/* Run the loop until *count >= want; a 30 s guard only catches hangs. */
static void run_until(uv_loop_t *loop, const int *count, int want)
{
	struct until u = {.count = count, .want = want};
	uv_timer_t g;
	uv_prepare_t p;
	uv_timer_init(loop, &g);
	g.data = &u;
	uv_timer_start(&g, guard_cb, 30000, 0);
	uv_prepare_init(loop, &p);
	p.data = &u;
	uv_prepare_start(&p, until_prepare);
	while (*count < want && !u.fired)
		uv_run(loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&g, NULL);
	uv_close((uv_handle_t *)&p, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	assert_false(u.fired);
}

static void on_stopped(void *arg)
{
	(*(int *)arg)++;
}

static void stop_all(uv_loop_t *loop, struct chan *c)
{
	int st = 0;
	chan_stop_all(c, 1, on_stopped, &st);
	run_until(loop, &st, 1);
	chan_free_all(c, 1);
	for (int i = 0; i < 1000 && uv_loop_alive(loop); i++)
		uv_run(loop, UV_RUN_NOWAIT);
	assert_int_equal(uv_loop_close(loop), 0);
}

struct sendctx {
	struct chan_msg m;
	char id[ID_LEN + 1];
	struct chan_result r;
	int done;
	int *counter;
};

static void on_done(void *arg, const struct chan_result *r)
{
	struct sendctx *s = arg;
	assert_int_equal(s->done, 0);
	s->r = *r;
	s->done = 1;
	(*s->counter)++;
}

static void mk_msg(struct sendctx *s, int *counter, const char *to, const char *text)
{
	memset(s, 0, sizeof *s);
	id_new(s->id, now_ms());
	s->m.id = s->id;
	s->m.channel = "sms";
	s->m.category = "transactional";
	s->m.contact_id = "c-42";
	s->m.to = to;
	s->m.lang = "fa";
	s->m.text = text;
	s->m.attempt = 1;
	s->m.created_ms = 1700000000123;
	s->counter = counter;
}

/* ---- the fake ------------------------------------------------------------ */

static int find_script(const char *name, char *script, size_t n)
{
	const char *src = getenv("CLUBD_SRCDIR");
	script[0] = '\0';
	if (src)
		snprintf(script, n, "%s/tests/fakes/%s", src, name);
	if (!script[0] || access(script, R_OK) != 0)
		snprintf(script, n, "tests/fakes/%s", name);
	if (access(script, R_OK) != 0)
		snprintf(script, n, "../../tests/fakes/%s", name);
	if (access(script, R_OK) != 0) {
		/* next to the binary: build/tests/test_x -> ../../tests/fakes */
		char exe[PATH_MAX];
		ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
		if (l > 0) {
			exe[l] = '\0';
			char *slash = strrchr(exe, '/');
			if (slash)
				*slash = '\0';
			snprintf(script, n, "%s/../../tests/fakes/%s", exe, name);
		}
	}
	if (access(script, R_OK) != 0) {
		fprintf(stderr, "%s not found (set CLUBD_SRCDIR)\n", name);
		return -1;
	}
	return 0;
}

static int start_fake(void)
{
	char script[PATH_MAX + 64];
	if (find_script("kannel.py", script, sizeof script) < 0)
		return -1;
	char user[128];
	snprintf(user, sizeof user, "clubd:%s", PASSWORD);
	int fds[2];
	if (pipe(fds) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl("/usr/bin/python3", "python3", script, "--user", user, "--log", log_path,
		      (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	fake_pid = pid;
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
	int64_t port;
	if (parse_i64(line, 1, 65535, &port) < 0)
		return -1;
	fake_port = (int)port;
	return 0;
}

/* Queue scripted answers at the fake (a blocking request from the test). */
static void fake_script(const char *json)
{
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/_control/script", fake_port);
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

/* Every request the fake recorded so far, as a JSON array. */
static json_t *records(void)
{
	json_t *a = json_array();
	FILE *f = fopen(log_path, "r");
	if (!f)
		return a;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		json_error_t je;
		json_t *j = json_loads(line, 0, &je);
		if (!j)
			fail_msg("bad record line: %s", je.text);
		json_array_append_new(a, j);
	}
	free(line);
	fclose(f);
	return a;
}

static size_t nrecords(void)
{
	json_t *a = records();
	size_t n = json_array_size(a);
	json_decref(a);
	return n;
}

static const char *jstr(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The record whose dlr-url or raw query names message id. */
static json_t *record_for(json_t *all, const char *id)
{
	size_t i;
	json_t *r;
	json_array_foreach(all, i, r)
	{
		const char *dlr = jstr(json_object_get(r, "params"), "dlr-url");
		const char *raw = jstr(r, "raw_query");
		if ((dlr && strstr(dlr, id)) || (raw && strstr(raw, id)))
			return r;
	}
	fail_msg("no request recorded for message %s", id);
	return NULL;
}

/* ---- running sends ------------------------------------------------------------ */

struct kcase {
	const char *extra;   /* more config lines */
	int port;            /* 0: the fake */
	const char *pw;      /* password file, NULL: the right one */
	const char *timeout; /* NULL: 2s */
	int n;
	const char *to[8];
	const char *text[8];
	struct sendctx s[8];
};

static void kannel_run(struct kcase *k)
{
	char conf[4096];
	snprintf(conf, sizeof conf,
	         "[channel.sms]\ndriver = kannel\nurl = http://127.0.0.1:%d/cgi-bin/sendsms\n"
	         "username = clubd\npassword_file = %s\ntimeout = %s\nmax_inflight = "
	         "16\nwindow_initial = 16\n%s",
	         k->port ? k->port : fake_port, k->pw ? k->pw : pw_path,
	         k->timeout ? k->timeout : "2s", k->extra ? k->extra : "");
	struct cfg_error err;
	struct config *cfg = load_cfg(conf, &err);
	if (!cfg)
		fail_msg("%s", err.msg);
	struct chan *c = sms_chan(cfg, &err);
	if (!c)
		fail_msg("%s", err.msg);
	uv_loop_t loop;
	uv_loop_init(&loop);
	assert_int_equal(chan_start_all(c, 1, &loop), 0);
	int ndone = 0;
	int n = k->n ? k->n : 1;
	for (int i = 0; i < n; i++) {
		mk_msg(&k->s[i], &ndone, k->to[i] ? k->to[i] : "+989121234567",
		       k->text[i] ? k->text[i] : "Hello from the club");
		assert_int_equal(chan_send(c, &k->s[i].m, on_done, &k->s[i]), 0);
	}
	assert_int_equal(ndone, 0); /* never from inside send */
	run_until(&loop, &ndone, n);
	stop_all(&loop, c);
	config_free(cfg);
	for (int i = 0; i < n; i++) {
		assert_null(strstr(k->s[i].r.reason, PASSWORD));
		assert_null(strstr(k->s[i].r.reason, PASSWORD_PCT));
	}
}

/* One send with one scripted answer; returns the result. */
static struct chan_result one_t(const char *extra, const char *timeout, const char *script)
{
	if (script)
		fake_script(script);
	struct kcase k = {.extra = extra, .timeout = timeout};
	kannel_run(&k);
	return k.s[0].r;
}

static struct chan_result one(const char *extra, const char *script)
{
	return one_t(extra, NULL, script);
}

/* ---- tests --------------------------------------------------------------------- */

static void expect_cfg_error(const char *lines, const char *want)
{
	char conf[2048];
	snprintf(conf, sizeof conf, "[channel.sms]\ndriver = kannel\n%s", lines);
	struct cfg_error err;
	struct config *cfg = load_cfg(conf, &err);
	if (!cfg)
		fail_msg("config_load failed: %s", err.msg);
	memset(&err, 0, sizeof err);
	assert_null(sms_chan(cfg, &err));
	if (!strstr(err.msg, want))
		fail_msg("error '%s' does not contain '%s'", err.msg, want);
	assert_null(strstr(err.msg, "hunter2")); /* URLs and secrets are never echoed */
	assert_null(strstr(err.msg, PASSWORD));
	config_free(cfg);
}

static void test_config_errors(void **state)
{
	(void)state;
	char base[1024], text[2048];
	snprintf(base, sizeof base,
	         "url = http://127.0.0.1:1/cgi-bin/sendsms?x=hunter2\nusername = clubd\n"
	         "password_file = %s\n",
	         pw_path);
	expect_cfg_error("username = u\n", "kannel.conf:1: channel.sms.url: is required");
	expect_cfg_error("url = ftp://hunter2@h/\n", ":3: channel.sms.url: must be an http://");
	expect_cfg_error("url = http://h/a b?k=hunter2\n", ":3: channel.sms.url:");
	expect_cfg_error("url = http://h/\n", "channel.sms.username: is required");
	expect_cfg_error("url = http://h/\nusername = a b\n", ":4: channel.sms.username:");
	expect_cfg_error("url = http://h/\nusername = u\n",
	                 "channel.sms.password_file: is required");
	expect_cfg_error("url = http://h/\nusername = u\npassword_file = /nonexistent/pw\n",
	                 ":5: channel.sms.password_file:");

	struct {
		const char *line, *want;
	} bad[] = {
	    {"method = put\n", ":6: channel.sms.method: must be get or post"},
	    {"dlr_mask = 3\n", ":6: channel.sms.dlr_mask: needs dlr_url"},
	    {"dlr_url = https://c.example/dlr?x=%41\n", ":6: channel.sms.dlr_url:"},
	    {"dlr_url = /v1/dlr/kannel\n", ":6: channel.sms.dlr_url:"},
	    {"dlr_url = https://c.example/dlr\ndlr_mask = 64\n",
	     ":7: channel.sms.dlr_mask: must be between 1 and 63"},
	    {"smsc = a b\n", ":6: channel.sms.smsc:"},
	    {"strip_plus = maybe\n", ":6: channel.sms.strip_plus:"},
	    {"max_segments = 0\n", ":6: channel.sms.max_segments: must be between 1 and 255"},
	    {"price_per_segment = -0.5\n", ":6: channel.sms.price_per_segment:"},
	    {"sender = \xd8\xb3\n", ":6: channel.sms.sender:"},
	    {"max_host_connections = 0\n", ":6: channel.sms.max_host_connections:"},
	    {"colour = red\n", ":6: channel.sms.colour: unknown key"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(text, sizeof text, "%s%s", base, bad[i].line);
		expect_cfg_error(text, bad[i].want);
	}
	/* a password with a control character is refused, and never echoed */
	char ctl[320];
	snprintf(ctl, sizeof ctl, "%s/ctl-pw", tmpdir);
	write_file(ctl, "hunter2\tx\n", 0600);
	snprintf(text, sizeof text, "url = http://h/\nusername = u\npassword_file = %s\n", ctl);
	expect_cfg_error(text, ":5: channel.sms.password_file: the password contains control");

	/* every key, valid */
	snprintf(text, sizeof text,
	         "[channel.sms]\ndriver = kannel\n%smethod = POST\nsender = 1000\n"
	         "dlr_url = https://clubd.example/v1/dlr/kannel\ndlr_mask = 19\nsmsc = mci-1\n"
	         "strip_plus = no\nprice_per_segment = 0.0075\nmax_segments = 5\n"
	         "max_host_connections = 8\n",
	         base);
	struct cfg_error err;
	struct config *cfg = load_cfg(text, &err);
	if (!cfg)
		fail_msg("%s", err.msg);
	struct chan *c = sms_chan(cfg, &err);
	if (!c)
		fail_msg("%s", err.msg);
	chan_free_all(c, 1); /* configured, never started */
	config_free(cfg);
}

static void test_get(void **state)
{
	(void)state;
	size_t before = nrecords();
	char *long_gsm = xmalloc(162);
	memset(long_gsm, 'x', 161);
	long_gsm[161] = '\0';
	struct kcase k = {
	    .extra = "sender = Club Shop\nprice_per_segment = 0.0075\n"
	             "dlr_url = https://clubd.example/v1/dlr/kannel\nsmsc = mci\n",
	    .n = 4,
	    .text = {"Hello {friend} | 50% off ~ \xe2\x82\xac"
	             "5",
	             fa_text, long_gsm, fa_salam},
	};
	kannel_run(&k);
	int want_seg[] = {1, 2, 2, 1};
	for (int i = 0; i < 4; i++) {
		if (k.s[i].r.status != CHAN_OK)
			fail_msg("send %d: status %d reason %s", i, k.s[i].r.status,
			         k.s[i].r.reason);
		assert_string_equal(k.s[i].r.provider_id, "");
		assert_int_equal(k.s[i].r.segments, want_seg[i]);
		assert_int_equal(k.s[i].r.cost_micros, 7500 * want_seg[i]);
	}
	json_t *all = records();
	assert_int_equal(json_array_size(all), before + 4);
	for (int i = 0; i < 4; i++) {
		json_t *r = record_for(all, k.s[i].id);
		json_t *p = json_object_get(r, "params");
		assert_string_equal(jstr(r, "method"), "GET");
		assert_true(json_is_true(json_object_get(r, "password_ok")));
		assert_null(json_object_get(p, "password")); /* the fake keeps no secrets */
		assert_string_equal(jstr(p, "username"), "clubd");
		assert_string_equal(jstr(p, "from"), "Club Shop");
		assert_string_equal(jstr(p, "to"), "989121234567"); /* strip_plus default */
		assert_string_equal(jstr(r, "text"), k.text[i]);
		assert_string_equal(jstr(p, "charset"), "UTF-8");
		assert_string_equal(jstr(p, "coding"), i == 1 || i == 3 ? "2" : "0");
		assert_string_equal(jstr(p, "dlr-mask"), "31");
		assert_string_equal(jstr(p, "smsc"), "mci");
		char want[256], sig[CALLBACK_SIG_LEN + 1];
		assert_int_equal(callback_sign("dlr", k.s[i].id, sig), 0);
		snprintf(want, sizeof want,
		         "https://clubd.example/v1/dlr/kannel?m=%s&k=%s&s=%%d&t=%%T&to=%%p",
		         k.s[i].id, sig);
		assert_string_equal(jstr(p, "dlr-url"), want);
		/* on the wire: everything percent-encoded, %-codes included */
		const char *raw = jstr(r, "raw_query");
		snprintf(want, sizeof want,
		         "&dlr-url=https%%3A%%2F%%2Fclubd.example%%2Fv1%%2Fdlr%%2Fkannel%%3Fm%%3D%s"
		         "%%26k%%3D%s%%26s%%3D%%25d%%26t%%3D%%25T%%26to%%3D%%25p",
		         k.s[i].id, sig);
		if (!strstr(raw, want))
			fail_msg("raw query %s lacks %s", raw, want);
		assert_non_null(strstr(raw, "username=clubd&password=***&from=Club%20Shop&to="));
		if (i == 0)
			assert_true(json_is_true(json_object_get(r, "gsm_only")));
		if (i == 3) {
			snprintf(want, sizeof want, "&text=%s&charset=UTF-8&coding=2&",
			         fa_salam_pct);
			if (!strstr(raw, want))
				fail_msg("raw query %s lacks %s", raw, want);
		}
	}
	json_decref(all);
	free(long_gsm);

	/* no dlr_url: no dlr parameters at all; strip_plus = no keeps the + */
	before = nrecords();
	struct kcase k2 = {.extra = "strip_plus = no\n", .text = {fa_salam}};
	kannel_run(&k2);
	assert_int_equal(k2.s[0].r.status, CHAN_OK);
	assert_int_equal(k2.s[0].r.cost_micros, 0); /* no price configured */
	all = records();
	assert_int_equal(json_array_size(all), before + 1);
	json_t *r = json_array_get(all, before);
	json_t *p = json_object_get(r, "params");
	assert_string_equal(jstr(p, "to"), "+989121234567");
	assert_null(json_object_get(p, "dlr-url"));
	assert_null(json_object_get(p, "dlr-mask"));
	assert_null(json_object_get(p, "from"));
	assert_null(json_object_get(p, "smsc"));
	assert_non_null(strstr(jstr(r, "raw_query"), "&to=%2B989121234567&"));
	json_decref(all);
}

static void test_post(void **state)
{
	(void)state;
	size_t before = nrecords();
	struct kcase k = {
	    .extra = "method = post\nstrip_plus = no\nsender = 30001234\n"
	             "dlr_url = https://clubd.example/dlr?src=k1\ndlr_mask = 3\n"
	             "price_per_segment = 0.01\n",
	    .n = 2,
	    .text = {fa_text, "Plain ASCII, one part"},
	};
	kannel_run(&k);
	json_t *all = records();
	assert_int_equal(json_array_size(all), before + 2);
	for (int i = 0; i < 2; i++) {
		if (k.s[i].r.status != CHAN_OK)
			fail_msg("send %d: %s", i, k.s[i].r.reason);
		assert_int_equal(k.s[i].r.segments, i == 0 ? 2 : 1);
		assert_int_equal(k.s[i].r.cost_micros, i == 0 ? 20000 : 10000);
		json_t *r = record_for(all, k.s[i].id);
		json_t *p = json_object_get(r, "params");
		assert_string_equal(jstr(r, "method"), "POST");
		assert_string_equal(jstr(r, "content_type"), "text/plain; charset=UTF-8");
		assert_string_equal(jstr(r, "raw_query"), ""); /* nothing in the URL */
		assert_true(json_is_true(json_object_get(r, "password_ok")));
		assert_string_equal(jstr(p, "username"), "clubd");
		assert_string_equal(jstr(p, "from"), "30001234");
		assert_string_equal(jstr(p, "to"), "+989121234567");
		assert_string_equal(jstr(p, "coding"), i == 0 ? "2" : "0");
		assert_string_equal(jstr(p, "dlr-mask"), "3");
		assert_string_equal(jstr(r, "text"), k.text[i]);
		char want[256], sig[CALLBACK_SIG_LEN + 1];
		assert_int_equal(callback_sign("dlr", k.s[i].id, sig), 0);
		snprintf(want, sizeof want,
		         "https://clubd.example/dlr?src=k1&m=%s&k=%s&s=%%d&t=%%T&to=%%p", k.s[i].id,
		         sig);
		assert_string_equal(jstr(p, "dlr-url"), want);
	}
	json_decref(all);
}

static void test_answers(void **state)
{
	(void)state;
	struct chan_result r;

	r = one(NULL, "[{\"status\": 503, \"body\": \"Temporal failure, try again later.\", "
	              "\"retry_after\": \"7\"}]");
	assert_int_equal(r.status, CHAN_TEMPFAIL);
	assert_string_equal(r.reason, "kannel 503: Temporal failure, try again later.");
	assert_int_equal(r.retry_after_ms, 7000);

	r = one("price_per_segment = 0.02\n",
	        "[{\"status\": 202, \"body\": \"3: Queued for later delivery\"}]");
	assert_int_equal(r.status, CHAN_OK);
	assert_int_equal(r.segments, 1);
	assert_int_equal(r.cost_micros, 20000);

	r = one(NULL, "[{\"status\": 202, \"body\": \"Sent. Message splits: 2\"}]");
	assert_int_equal(r.status, CHAN_OK);

	r = one(NULL, "[{\"status\": 400, \"body\": \"Missing receiver number, rejected\"}]");
	assert_int_equal(r.status, CHAN_PERMFAIL);
	assert_string_equal(r.reason, "kannel 400: Missing receiver number, rejected");
	assert_int_equal(r.retry_after_ms, 0);

	r = one(NULL, "[{\"status\": 403, \"body\": \"Not routable. Do not try again.\"}]");
	assert_int_equal(r.status, CHAN_PERMFAIL);
	assert_string_equal(r.reason, "kannel 403: Not routable. Do not try again.");

	r = one(NULL, "[{\"status\": 500, \"body\": \"Sending failed.\"}]");
	assert_int_equal(r.status, CHAN_TEMPFAIL);
	assert_string_equal(r.reason, "kannel 500: Sending failed.");

	r = one(NULL, "[{\"status\": 429, \"body\": \"\", \"retry_after\": \"3\"}]");
	assert_int_equal(r.status, CHAN_TEMPFAIL);
	assert_string_equal(r.reason, "kannel 429");
	assert_int_equal(r.retry_after_ms, 3000);

	r = one(NULL, "[{\"status\": 302, \"body\": \"\"}]");
	assert_int_equal(r.status, CHAN_TEMPFAIL); /* never followed */
	assert_string_equal(r.reason, "kannel 302");

	/* an answer echoing the password, raw and percent-encoded: redacted */
	char script[512];
	snprintf(script, sizeof script,
	         "[{\"status\": 401, \"body\": \"bad login clubd/%s (%s)\\nmore\"}]", PASSWORD,
	         PASSWORD_PCT);
	r = one(NULL, script);
	assert_int_equal(r.status, CHAN_PERMFAIL);
	assert_string_equal(r.reason, "kannel 401: bad login clubd/*** (***)");

	/* a long, hostile first line: short, printable */
	r = one(NULL, "[{\"status\": 404, \"body\": \"\\u001b[2J<html><body>not here "
	              "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	              "xxxxxxxxxxxxxxxxxx</body></html>\"}]");
	assert_int_equal(r.status, CHAN_PERMFAIL);
	assert_int_equal(strlen(r.reason), strlen("kannel 404: ") + SMS_EXCERPT_MAX + 3);
	assert_memory_equal(r.reason, "kannel 404: [2J<html>", 21);
	for (const char *p = r.reason; *p; p++)
		assert_true((unsigned char)*p >= 0x20);

	/* the fake's own check: a wrong password is refused */
	struct kcase k = {.pw = bad_pw_path};
	kannel_run(&k);
	assert_int_equal(k.s[0].r.status, CHAN_PERMFAIL);
	assert_string_equal(k.s[0].r.reason, "kannel 403: Authorization failed for sendsms");
}

static void test_timeout_and_refused(void **state)
{
	(void)state;
	struct chan_result r = one_t(NULL, "300ms",
	                             "[{\"status\": 202, \"body\": \"0: Accepted for delivery\", "
	                             "\"delay_ms\": 3000}]");
	assert_int_equal(r.status, CHAN_TEMPFAIL);
	assert_string_equal(r.reason, "timeout");

	/* a bound, never listening port: connection refused */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	socklen_t sl = sizeof sa;
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	struct kcase k = {.port = ntohs(sa.sin_port)};
	kannel_run(&k);
	close(fd);
	assert_int_equal(k.s[0].r.status, CHAN_TEMPFAIL);
	assert_memory_equal(k.s[0].r.reason, "connect: ", 9);
	assert_null(strstr(k.s[0].r.reason, "sendsms")); /* no URL in reasons */
}

static void test_refused_before_sending(void **state)
{
	(void)state;
	size_t before = nrecords();
	char *t161 = xmalloc(162);
	memset(t161, 'a', 161);
	t161[161] = '\0';
	char *fa71 = xmalloc(71 * 2 + 1);
	for (int i = 0; i < 71; i++)
		memcpy(fa71 + 2 * i, "\xd8\xb3", 2);
	fa71[142] = '\0';
	struct kcase k = {
	    .extra = "max_segments = 1\nprice_per_segment = 0.0075\n",
	    .n = 6,
	    .to = {NULL, NULL, "+98 912 123 4567", "+98912123456&to=1", NULL, NULL},
	    .text = {t161, fa71, "hi", "hi", "", "bad \xc3\x28 utf8"},
	};
	kannel_run(&k);
	assert_int_equal(k.s[0].r.status, CHAN_PERMFAIL);
	assert_string_equal(k.s[0].r.reason, "too long: 2 segments > max 1");
	assert_int_equal(k.s[0].r.segments, 0);
	assert_int_equal(k.s[0].r.cost_micros, 0);
	assert_int_equal(k.s[1].r.status, CHAN_PERMFAIL);
	assert_string_equal(k.s[1].r.reason, "too long: 2 segments > max 1");
	for (int i = 2; i < 4; i++) {
		assert_int_equal(k.s[i].r.status, CHAN_PERMFAIL);
		assert_memory_equal(k.s[i].r.reason, "invalid recipient", 17);
	}
	assert_int_equal(k.s[4].r.status, CHAN_PERMFAIL);
	assert_string_equal(k.s[4].r.reason, "empty text");
	assert_int_equal(k.s[5].r.status, CHAN_PERMFAIL);
	assert_string_equal(k.s[5].r.reason, "text is not valid UTF-8");
	assert_int_equal(nrecords(), before); /* nothing reached the provider */
	free(t161);
	free(fa71);

	/* 160 GSM characters still fit one part */
	char *t160 = xmalloc(161);
	memset(t160, 'a', 160);
	t160[160] = '\0';
	struct kcase ok = {.extra = "max_segments = 1\n", .text = {t160}};
	kannel_run(&ok);
	assert_int_equal(ok.s[0].r.status, CHAN_OK);
	assert_int_equal(ok.s[0].r.segments, 1);
	free(t160);
}

static void test_stop_waits_for_inflight(void **state)
{
	(void)state;
	fake_script(
	    "[{\"status\": 202, \"body\": \"0: Accepted for delivery\", \"delay_ms\": 300}]");
	char conf[1024];
	snprintf(conf, sizeof conf,
	         "[channel.sms]\ndriver = kannel\nurl = http://127.0.0.1:%d/cgi-bin/sendsms\n"
	         "username = clubd\npassword_file = %s\ntimeout = 10s\n",
	         fake_port, pw_path);
	struct cfg_error err;
	struct config *cfg = load_cfg(conf, &err);
	if (!cfg)
		fail_msg("%s", err.msg);
	struct chan *c = sms_chan(cfg, &err);
	if (!c)
		fail_msg("%s", err.msg);
	uv_loop_t loop;
	uv_loop_init(&loop);
	assert_int_equal(chan_start_all(c, 1, &loop), 0);
	int ndone = 0;
	struct sendctx s[2];
	mk_msg(&s[0], &ndone, "+989121234567", "slow");
	mk_msg(&s[1], &ndone, "+98", "bad recipient, reported later");
	assert_int_equal(chan_send(c, &s[0].m, on_done, &s[0]), 0);
	assert_int_equal(chan_send(c, &s[1].m, on_done, &s[1]), 0);
	int st = 0;
	chan_stop_all(c, 1, on_stopped, &st);
	assert_int_equal(ndone, 0);
	run_until(&loop, &st, 1);
	/* both reported before the channel said it stopped */
	assert_int_equal(ndone, 2);
	assert_int_equal(s[0].r.status, CHAN_OK);
	assert_int_equal(s[1].r.status, CHAN_PERMFAIL);
	chan_free_all(c, 1);
	for (int i = 0; i < 1000 && uv_loop_alive(&loop); i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(uv_loop_close(&loop), 0);
	config_free(cfg);
}

/* ---- setup ------------------------------------------------------------------- */

static int group_setup(void **state)
{
	(void)state;
	log_setup(LOG_ERR, LOG_FMT_KV);
	signal(SIGPIPE, SIG_IGN);
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/clubd-test-kannel-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(pw_path, sizeof pw_path, "%s/kannel-password", tmpdir);
	snprintf(bad_pw_path, sizeof bad_pw_path, "%s/wrong-password", tmpdir);
	snprintf(log_path, sizeof log_path, "%s/kannel-requests.jsonl", tmpdir);
	char pw[64];
	snprintf(pw, sizeof pw, "%s\n", PASSWORD);
	write_file(pw_path, pw, 0600);
	write_file(bad_pw_path, "not-the-password\n", 0600);
	return start_fake();
}

static int group_teardown(void **state)
{
	(void)state;
	if (fake_pid > 0) {
		kill(fake_pid, SIGTERM);
		waitpid(fake_pid, NULL, 0);
	}
	nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

int main(void)
{
	/* dlr-url callbacks are signed with the process-wide callback secret */
	char why[256];
	setenv("CLUBD_TEST_CALLBACK_SECRET", "test-callback-secret-0123456789", 1);
	if (callback_init("env:CLUBD_TEST_CALLBACK_SECRET", why, sizeof why) < 0) {
		fprintf(stderr, "callback_init: %s\n", why);
		return 1;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_get),
	    cmocka_unit_test(test_post),
	    cmocka_unit_test(test_answers),
	    cmocka_unit_test(test_timeout_and_refused),
	    cmocka_unit_test(test_refused_before_sending),
	    cmocka_unit_test(test_stop_waits_for_inflight),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
