/*
 * test_sms_twilio.c - the "twilio" driver on a real libuv loop against
 * tests/fakes/twilio.py (a fake Messages API over loopback that checks
 * Basic auth and records every request): config errors naming
 * file:line:key (in [channel.sms] and in a [provider.NAME] profile), the
 * form encoding (Persian Body as UTF-8, To with '+', From or
 * MessagingServiceSid, StatusCallback with m=<id>), every answer mapping
 * (20429/429 with Retry-After, 21611, 5xx, 3xx, 20003/401, 21211, 21408,
 * 21610 with revoke_consent, 21614, other 4xx, a failed status on
 * creation, garbage), num_segments from the answer, segments and cost,
 * max_segments and bad recipients refused without a request, transport
 * errors, stop waiting for sends in flight, and no secret in any reason or
 * log line (stderr is captured to a file for the whole run and scanned by
 * the last test).  Every run ends with uv_loop_close() == 0; no assertion
 * depends on elapsed time.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/evp.h>
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
#include "sms_providers.h"
#include "sms_segments.h"
#include "util.h"

static const char SID[] = "AC0123456789abcdef0123456789abcdef";
static const char MSS[] = "MG00112233445566778899aabbccddeeff";
/* characters that change under percent-encoding and Base64 */
static const char TOKEN[] = "f00d+s3cr3t/t0ken=9";
static const char TOKEN_PCT[] = "f00d%2Bs3cr3t%2Ft0ken%3D9";
static char userpass_b64[128]; /* Base64("SID:TOKEN"), the Basic credentials */

static char tmpdir[256];
static char tok_path[320], bad_tok_path[320], log_path[320], err_path[320];
static pid_t fake_pid = -1;
static int fake_port;
static int saved_stderr = -1;

static const char fa_text[] =
    "\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85\xd8\x8c \xd9\x85\xd8\xb4\xd8\xaa\xd8\xb1\xdb\x8c "
    "\xda\xaf\xd8\xb1\xd8\xa7\xd9\x85\xdb\x8c! \xd8\xa8\xd8\xa7\xd8\xb4\xda\xaf\xd8\xa7\xd9\x87 "
    "\xd9\x85\xd8\xa7 \xd8\xa7\xd8\xb2 \xd8\xb4\xd9\x86\xd8\xa8\xd9\x87 \xd8\xaa\xd8\xa7 "
    "\xd8\xac\xd9\x85\xd8\xb9\xd9\x87 \xd8\xa8\xd8\xa7\xd8\xb2 \xd8\xa7\xd8\xb3\xd8\xaa.\n"
    "\xda\xa9\xd8\xaf \xd8\xaa\xd8\xae\xd9\x81\xdb\x8c\xd9\x81: YALDA1402 \xe2\x80\x94 "
    "\xd8\xa8\xd8\xb1\xd8\xa7\xdb\x8c \xd9\x84\xd8\xba\xd9\x88 \xdb\xb1\xdb\xb1 "
    "\xd8\xb1\xd8\xa7 \xd8\xa8\xd9\x81\xd8\xb1\xd8\xb3\xd8\xaa\xdb\x8c\xd8\xaf.";
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
	snprintf(path, sizeof path, "%s/twilio.conf", tmpdir);
	write_file(path, text, 0600);
	struct config *c = NULL;
	memset(err, 0, sizeof *err);
	if (config_load(path, &c, err) < 0)
		return NULL;
	return c;
}

/* Configure the sms channel with the driver under test, as channel.c does. */
static struct chan *sms_chan(const struct config *cfg, struct cfg_error *err)
{
	const struct cfg_channel *cc = config_channel(cfg, "sms");
	assert_non_null(cc);
	struct chan *c = xcalloc(1, sizeof *c);
	c->cfg = cc;
	(void)cfg_sec_str(cc->sec, "driver", NULL);
	c->drv = &chan_sms_twilio_driver;
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

/* No secret in any form in s. */
static void assert_no_secret(const char *s)
{
	if (strstr(s, TOKEN) || strstr(s, TOKEN_PCT) || strstr(s, userpass_b64))
		fail_msg("a secret leaked into: %s", s);
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
	if (find_script("twilio.py", script, sizeof script) < 0)
		return -1;
	char acc[128];
	snprintf(acc, sizeof acc, "%s:%s", SID, TOKEN);
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
		execl("/usr/bin/python3", "python3", script, "--account", acc, "--log", log_path,
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

/* POST a control request to the fake (blocking, from the test). */
static void fake_control(const char *what, const char *json)
{
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/_control/%s", fake_port, what);
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

/* Like jstr, but the string must be there (cmocka's string asserts crash on NULL). */
static const char *jreq(json_t *o, const char *k)
{
	const char *v = jstr(o, k);
	if (!v)
		fail_msg("recorded request has no string \"%s\"", k);
	return v;
}

/* The record whose StatusCallback names message id. */
static json_t *record_for(json_t *all, const char *id)
{
	size_t i;
	json_t *r;
	json_array_foreach(all, i, r)
	{
		const char *cb = jstr(json_object_get(r, "params"), "StatusCallback");
		if (cb && strstr(cb, id))
			return r;
	}
	fail_msg("no request recorded for message %s", id);
	return NULL;
}

/* ---- running sends ------------------------------------------------------------ */

#define MAXN 12

struct tcase {
	const char *sender;  /* NULL: "from = +15017122661" */
	const char *extra;   /* more lines for the provider section */
	int port;            /* 0: the fake */
	const char *tok;     /* token file, NULL: the right one */
	const char *timeout; /* NULL: 2s */
	int n;
	const char *to[MAXN];
	const char *text[MAXN];
	struct sendctx s[MAXN];
};

static void twilio_run(struct tcase *t)
{
	char conf[4096];
	snprintf(conf, sizeof conf,
	         "[channel.sms]\nprovider = twilio-us\n\n"
	         "[provider.twilio-us]\ndriver = twilio\nbase_url = http://127.0.0.1:%d/\n"
	         "account_sid = %s\nauth_token_file = %s\n%s\n"
	         "status_callback = https://clubd.example/v1/dlr/twilio\n"
	         "timeout = %s\nmax_inflight = 16\nwindow_initial = 16\n%s",
	         t->port ? t->port : fake_port, SID, t->tok ? t->tok : tok_path,
	         t->sender ? t->sender : "from = +15017122661", t->timeout ? t->timeout : "2s",
	         t->extra ? t->extra : "");
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
	int n = t->n ? t->n : 1;
	for (int i = 0; i < n; i++) {
		mk_msg(&t->s[i], &ndone, t->to[i] ? t->to[i] : "+989121234567",
		       t->text[i] ? t->text[i] : "Hello from the club");
		assert_int_equal(chan_send(c, &t->s[i].m, on_done, &t->s[i]), 0);
	}
	assert_int_equal(ndone, 0); /* never from inside send */
	run_until(&loop, &ndone, n);
	stop_all(&loop, c);
	config_free(cfg);
	for (int i = 0; i < n; i++) {
		assert_no_secret(t->s[i].r.reason);
		assert_no_secret(t->s[i].r.provider_id);
		if (t->s[i].r.status != CHAN_OK)
			assert_true(strlen(t->s[i].r.reason) > 0);
	}
}

static struct chan_result one(const char *to, const char *script)
{
	if (script)
		fake_control("script", script);
	struct tcase t = {.to = {to}};
	twilio_run(&t);
	return t.s[0].r;
}

/* ---- tests --------------------------------------------------------------------- */

static void expect_cfg_error(const char *text, const char *want)
{
	struct cfg_error err;
	struct config *cfg = load_cfg(text, &err);
	if (!cfg)
		fail_msg("config_load failed: %s", err.msg);
	memset(&err, 0, sizeof err);
	assert_null(sms_chan(cfg, &err));
	if (!strstr(err.msg, want))
		fail_msg("error '%s' does not contain '%s'", err.msg, want);
	assert_null(strstr(err.msg, "hunter2")); /* URLs and secrets are never echoed */
	assert_no_secret(err.msg);
	config_free(cfg);
}

static void test_config_errors(void **state)
{
	(void)state;
	char base[1024], text[2048];
	/* line 1 [channel.sms], 2 driver, 3 account_sid, 4 auth_token_file */
	snprintf(base, sizeof base,
	         "[channel.sms]\ndriver = twilio\naccount_sid = %s\n"
	         "auth_token_file = %s\n",
	         SID, tok_path);

	expect_cfg_error("[channel.sms]\ndriver = twilio\n",
	                 "twilio.conf:1: channel.sms.account_sid: is required");
	expect_cfg_error("[channel.sms]\ndriver = twilio\naccount_sid = AC123\n",
	                 ":3: channel.sms.account_sid: must be the Account SID");
	snprintf(text, sizeof text, "[channel.sms]\ndriver = twilio\naccount_sid = %s\n", SID);
	expect_cfg_error(text, "channel.sms.auth_token_file: is required");
	snprintf(
	    text, sizeof text,
	    "[channel.sms]\ndriver = twilio\naccount_sid = %s\nauth_token_file = /nonexistent\n",
	    SID);
	expect_cfg_error(text, ":4: channel.sms.auth_token_file:");
	expect_cfg_error(base, "channel.sms.from: is required");

	struct {
		const char *lines, *want;
	} bad[] = {
	    {"from = +15017122661\nbase_url = ftp://hunter2@h/\n",
	     ":6: channel.sms.base_url: must be an http://"},
	    {"from = +15017122661\nbase_url = https://h/?k=hunter2\n", ":6: channel.sms.base_url:"},
	    {"from = 0912 123\n", ":5: channel.sms.from: must be a number in E.164 form"},
	    {"from = +1501712266112345\n", ":5: channel.sms.from:"},
	    {"from = ThisIsTooLongAnId\n", ":5: channel.sms.from:"},
	    {"sender = +15017122661\nfrom = +15017122662\n",
	     ":5: channel.sms.sender: set from or sender"},
	    {"from = +15017122661\nmessaging_service_sid = MG00112233445566778899aabbccddeeff\n",
	     ":6: channel.sms.messaging_service_sid: set exactly one"},
	    {"messaging_service_sid = MGxyz\n",
	     ":5: channel.sms.messaging_service_sid: must be a Messaging Service SID"},
	    {"from = +15017122661\nstatus_callback = /v1/dlr/twilio\n",
	     ":6: channel.sms.status_callback: must be an http://"},
	    {"from = +15017122661\nstatus_callback = https://c.example/dlr#x\n",
	     ":6: channel.sms.status_callback:"},
	    {"from = +15017122661\nmax_segments = 256\n",
	     ":6: channel.sms.max_segments: must be between 1 and 255"},
	    {"from = +15017122661\nprice_per_segment = abc\n",
	     ":6: channel.sms.price_per_segment:"},
	    {"from = +15017122661\nmax_host_connections = 0\n",
	     ":6: channel.sms.max_host_connections:"},
	    {"from = +15017122661\ncolour = red\n", ":6: channel.sms.colour: unknown key"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(text, sizeof text, "%s%s", base, bad[i].lines);
		expect_cfg_error(text, bad[i].want);
	}

	/* a token with white space is refused, and never echoed */
	char ctl[320];
	snprintf(ctl, sizeof ctl, "%s/ctl-token", tmpdir);
	write_file(ctl, "hunter2 x\n", 0600);
	snprintf(text, sizeof text,
	         "[channel.sms]\ndriver = twilio\naccount_sid = %s\nauth_token_file = %s\n", SID,
	         ctl);
	expect_cfg_error(text, ":4: channel.sms.auth_token_file: the token contains white space");

	/* in a provider profile, errors name the profile's keys */
	snprintf(
	    text, sizeof text,
	    "[channel.sms]\nprovider = tw\n\n[provider.tw]\ndriver = twilio\naccount_sid = %s\n"
	    "auth_token_file = %s\nfrom = +1\n",
	    SID, tok_path);
	expect_cfg_error(text, ":8: provider.tw.from: must be a number");

	/* every key, valid: from, a short code, a sender id, a messaging service */
	const char *senders[] = {"from = +15017122661", "from = 89757", "from = Club Shop",
	                         "sender = +15017122661",
	                         "messaging_service_sid = MG00112233445566"
	                         "778899aabbccddeeff"};
	for (size_t i = 0; i < ARRAY_SIZE(senders); i++) {
		snprintf(text, sizeof text,
		         "%s%s\nbase_url = https://api.twilio.com/\n"
		         "status_callback = https://clubd.example/v1/dlr/twilio?src=us\n"
		         "price_per_segment = 0.0079\nmax_segments = 5\nmax_host_connections = 8\n",
		         base, senders[i]);
		struct cfg_error err;
		struct config *cfg = load_cfg(text, &err);
		if (!cfg)
			fail_msg("%s", err.msg);
		struct chan *c = sms_chan(cfg, &err);
		if (!c)
			fail_msg("%s: %s", senders[i], err.msg);
		chan_free_all(c, 1); /* configured, never started */
		config_free(cfg);
	}
}

static void test_request_encoding(void **state)
{
	(void)state;
	size_t before = nrecords();
	char *long_gsm = xmalloc(162);
	memset(long_gsm, 'x', 161);
	long_gsm[161] = '\0';
	struct tcase t = {
	    .extra = "price_per_segment = 0.0079\n",
	    .n = 4,
	    .to = {"+989121234567", "989121234567", "+15558675310", "+447700900123"},
	    .text = {fa_text,
	             "50% off & more = {deal} + \xe2\x82\xac"
	             "5 ~ #1?",
	             long_gsm, fa_salam},
	};
	twilio_run(&t);
	int want_seg[] = {2, 1, 2, 1};
	const char *want_to[] = {"+989121234567", "+989121234567", "+15558675310", "+447700900123"};
	json_t *all = records();
	assert_int_equal(json_array_size(all), before + 4);
	for (int i = 0; i < 4; i++) {
		struct chan_result *r = &t.s[i].r;
		if (r->status != CHAN_OK)
			fail_msg("send %d: status %d reason %s", i, r->status, r->reason);
		assert_int_equal(r->segments, want_seg[i]);
		assert_int_equal(r->cost_micros, 7900 * want_seg[i]);
		json_t *rec = record_for(all, t.s[i].id);
		json_t *p = json_object_get(rec, "params");
		assert_true(json_is_true(json_object_get(rec, "auth_ok")));
		assert_string_equal(jreq(rec, "content_type"), "application/x-www-form-urlencoded");
		char path[128];
		snprintf(path, sizeof path, "/2010-04-01/Accounts/%s/Messages.json", SID);
		assert_string_equal(jreq(rec, "path"), path);
		assert_string_equal(jreq(p, "To"), want_to[i]);
		assert_string_equal(jreq(p, "From"), "+15017122661");
		assert_null(json_object_get(p, "MessagingServiceSid"));
		assert_string_equal(jreq(p, "Body"), t.text[i]);
		char cb[160], sig[CALLBACK_SIG_LEN + 1];
		assert_int_equal(callback_sign("dlr", t.s[i].id, sig), 0);
		snprintf(cb, sizeof cb, "https://clubd.example/v1/dlr/twilio?m=%s&k=%s", t.s[i].id,
		         sig);
		assert_string_equal(jreq(p, "StatusCallback"), cb);
		assert_int_equal(json_array_size(json_object_get(rec, "repeated")), 0);
		/* the provider id is the sid Twilio answered */
		assert_string_equal(r->provider_id, jreq(rec, "sid"));
		assert_memory_equal(r->provider_id, "SM", 2);
		assert_int_equal(strlen(r->provider_id), 34);
		const char *raw = jreq(rec, "raw_body");
		if (i == 3) {
			char want[256];
			snprintf(want, sizeof want,
			         "To=%%2B447700900123&From=%%2B15017122661&Body=%s&", fa_salam_pct);
			if (!strstr(raw, want))
				fail_msg("raw body %s lacks %s", raw, want);
		}
		if (i == 1)
			assert_non_null(strstr(raw,
			                       "&Body=50%25%20off%20%26%20more%20%3D%20%7Bdeal%7D"
			                       "%20%2B%20%E2%82%AC5%20~%20%231%3F&"));
		snprintf(path, sizeof path,
		         "&StatusCallback=https%%3A%%2F%%2Fclubd.example%%2Fv1%%2Fdlr%%2Ftwilio%%"
		         "3Fm%%3D%s%%26k%%3D%s",
		         t.s[i].id, sig);
		assert_non_null(strstr(raw, path));
	}
	json_decref(all);
	free(long_gsm);

	/* a messaging service instead of From */
	before = nrecords();
	struct tcase m = {
	    .sender = "messaging_service_sid = MG00112233445566778899aabbccddeeff",
	};
	twilio_run(&m);
	assert_int_equal(m.s[0].r.status, CHAN_OK);
	all = records();
	assert_int_equal(json_array_size(all), before + 1);
	json_t *rec = json_array_get(all, before);
	json_t *p = json_object_get(rec, "params");
	assert_string_equal(jreq(p, "MessagingServiceSid"), MSS);
	assert_null(json_object_get(p, "From"));
	json_decref(all);
}

static void test_callback_with_query(void **state)
{
	(void)state;
	/* the callback URL already has a query: m= is appended with '&' */
	char conf[2048];
	snprintf(conf, sizeof conf,
	         "[channel.sms]\ndriver = twilio\nbase_url = http://127.0.0.1:%d\n"
	         "account_sid = %s\nauth_token_file = %s\nfrom = +15017122661\n"
	         "status_callback = https://clubd.example/dlr?src=us&x=1\n",
	         fake_port, SID, tok_path);
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
	struct sendctx s;
	mk_msg(&s, &ndone, "+989121234567", "hi");
	size_t before = nrecords();
	assert_int_equal(chan_send(c, &s.m, on_done, &s), 0);
	run_until(&loop, &ndone, 1);
	stop_all(&loop, c);
	config_free(cfg);
	assert_int_equal(s.r.status, CHAN_OK);
	json_t *all = records();
	assert_int_equal(json_array_size(all), before + 1);
	char want[160], sig[CALLBACK_SIG_LEN + 1];
	assert_int_equal(callback_sign("dlr", s.id, sig), 0);
	snprintf(want, sizeof want, "https://clubd.example/dlr?src=us&x=1&m=%s&k=%s", s.id, sig);
	assert_string_equal(
	    jreq(json_object_get(json_array_get(all, before), "params"), "StatusCallback"), want);
	json_decref(all);
}

static void test_answers(void **state)
{
	(void)state;
	/* one run, each recipient scripted differently (concurrent sends) */
	fake_control("number", "{\"to\": \"+15550000101\", \"answers\": [{\"status\": 429, "
	                       "\"code\": 20429, \"message\": \"Too Many Requests\", "
	                       "\"retry_after\": \"3\"}]}");
	fake_control("number", "{\"to\": \"+15550000102\", \"answers\": [{\"status\": 500, "
	                       "\"body\": \"Internal Server Error\"}]}");
	fake_control("number", "{\"to\": \"+15550000103\", \"answers\": [{\"status\": 503, "
	                       "\"code\": 20503, \"message\": \"Service Unavailable\", "
	                       "\"retry_after\": \"11\"}]}");
	fake_control("number", "{\"to\": \"+15550000104\", \"answers\": [{\"status\": 400, "
	                       "\"code\": 21611, \"message\": \"This 'From' number has exceeded "
	                       "the maximum number of queued messages\"}]}");
	fake_control("number", "{\"to\": \"+15550000105\", \"answers\": [{\"status\": 404, "
	                       "\"code\": 20404, \"message\": \"The requested resource was not "
	                       "found\"}]}");
	fake_control("number", "{\"to\": \"+15550000106\", \"answers\": [{\"status\": 302, "
	                       "\"body\": \"\"}]}");
	fake_control("number", "{\"to\": \"+15550000107\", \"answers\": [{\"status\": 201, "
	                       "\"twilio_status\": \"failed\"}]}");
	fake_control("number", "{\"to\": \"+15550000108\", \"answers\": [{\"status\": 201, "
	                       "\"num_segments\": \"3\"}]}");
	struct tcase t = {
	    .extra = "price_per_segment = 0.01\n",
	    .n = 12,
	    .to = {"+15550000101", "+15550000102", "+15550000103", "+15550000104", "+15550000105",
	           "+15550000106", "+15550000107", "+15550000108", "+15005550001", "+15005550003",
	           "+15005550004", "+15005550009"},
	};
	twilio_run(&t);
	struct {
		enum chan_status st;
		const char *reason;
		int64_t retry;
		int revoke;
	} want[] = {
	    {CHAN_TEMPFAIL, "twilio 20429: Too Many Requests", 3000, 0},
	    {CHAN_TEMPFAIL, "twilio http 500: Internal Server Error", 0, 0},
	    {CHAN_TEMPFAIL, "twilio 20503: Service Unavailable", 11000, 0},
	    {CHAN_TEMPFAIL,
	     "twilio 21611: This 'From' number has exceeded the maximum number of queued messages",
	     0, 0},
	    {CHAN_PERMFAIL, "twilio 20404: The requested resource was not found", 0, 0},
	    {CHAN_TEMPFAIL, "twilio http 302", 0, 0},
	    {CHAN_PERMFAIL, "twilio: message failed on creation", 0, 0},
	    {CHAN_OK, "", 0, 0},
	    {CHAN_PERMFAIL,
	     "twilio 21211: The 'To' number +15005550001 is not a valid phone number.", 0, 0},
	    {CHAN_PERMFAIL,
	     "twilio 21408: Permission to send an SMS has not been enabled for the region "
	     "indicated by the '...",
	     0, 0},
	    {CHAN_PERMFAIL, "twilio 21610: Attempt to send to unsubscribed recipient", 0, 1},
	    {CHAN_PERMFAIL, "twilio 21614: 'To' number is not a valid mobile number", 0, 0},
	};
	for (int i = 0; i < 12; i++) {
		struct chan_result *r = &t.s[i].r;
		if (r->status != want[i].st || strcmp(r->reason, want[i].reason) != 0)
			fail_msg("send %d (%s): status %d reason '%s', want %d '%s'", i, t.to[i],
			         r->status, r->reason, want[i].st, want[i].reason);
		assert_int_equal(r->retry_after_ms, want[i].retry);
		assert_int_equal(r->revoke_consent, want[i].revoke);
		assert_true(strlen(r->reason) <= 120);
		if (r->status != CHAN_OK) {
			assert_int_equal(r->segments, 0);
			assert_int_equal(r->cost_micros, 0);
		}
	}
	/* num_segments from the answer wins over our count, and sets the cost */
	assert_int_equal(t.s[7].r.segments, 3);
	assert_int_equal(t.s[7].r.cost_micros, 30000);
	assert_memory_equal(t.s[7].r.provider_id, "SM", 2);

	/* the wrong token: the fake refuses the Basic credentials */
	struct tcase bad = {.tok = bad_tok_path};
	twilio_run(&bad);
	assert_int_equal(bad.s[0].r.status, CHAN_PERMFAIL);
	assert_string_equal(bad.s[0].r.reason, "twilio 20003: authentication failed");

	/* an answer echoing the token raw, percent-encoded and as Basic credentials */
	char script[512];
	snprintf(script, sizeof script,
	         "[{\"status\": 400, \"code\": 21999, \"message\": \"bad %s %s Basic %s\"}]", TOKEN,
	         TOKEN_PCT, userpass_b64);
	struct chan_result r = one(NULL, script);
	assert_int_equal(r.status, CHAN_PERMFAIL);
	assert_string_equal(r.reason, "twilio 21999: bad *** *** Basic ***");

	/* a long, hostile message: short, printable, still names the code */
	r = one(NULL, "[{\"status\": 400, \"code\": 21620, \"message\": \"\\u001b[2J\\u202e"
	              "<b>xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	              "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\nsecond line\"}]");
	assert_int_equal(r.status, CHAN_PERMFAIL);
	assert_memory_equal(r.reason, "twilio 21620: [2J<b>xxx", 22);
	assert_true(strlen(r.reason) <= 120);
	assert_null(strstr(r.reason, "second"));
	for (const char *p = r.reason; *p; p++)
		assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);

	/* a 2xx without JSON: accepted, no sid to match reports with */
	r = one(NULL, "[{\"status\": 201, \"body\": \"<html>ok</html>\"}]");
	assert_int_equal(r.status, CHAN_OK);
	assert_string_equal(r.provider_id, "");
	assert_int_equal(r.segments, 1);
	/* a 401 with no JSON at all is still "authentication failed" */
	r = one(NULL, "[{\"status\": 401, \"body\": \"Unauthorized\"}]");
	assert_int_equal(r.status, CHAN_PERMFAIL);
	assert_string_equal(r.reason, "twilio 20003: authentication failed");
}

static void test_timeout_and_refused(void **state)
{
	(void)state;
	fake_control("script", "[{\"status\": 201, \"delay_ms\": 3000}]");
	struct tcase t = {.timeout = "300ms"};
	twilio_run(&t);
	assert_int_equal(t.s[0].r.status, CHAN_TEMPFAIL);
	assert_string_equal(t.s[0].r.reason, "timeout");

	/* a bound, never listening port: connection refused */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	socklen_t sl = sizeof sa;
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	struct tcase k = {.port = ntohs(sa.sin_port)};
	twilio_run(&k);
	close(fd);
	assert_int_equal(k.s[0].r.status, CHAN_TEMPFAIL);
	assert_memory_equal(k.s[0].r.reason, "connect: ", 9);
	assert_null(strstr(k.s[0].r.reason, "Messages.json")); /* no URL in reasons */
	assert_null(strstr(k.s[0].r.reason, SID));
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
	struct tcase t = {
	    .extra = "max_segments = 1\nprice_per_segment = 0.0079\n",
	    .n = 6,
	    .to = {NULL, NULL, "+1 555 867 5310", "+15558675310&To=1", NULL, NULL},
	    .text = {t161, fa71, "hi", "hi", "", "bad \xc3\x28 utf8"},
	};
	twilio_run(&t);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(t.s[i].r.status, CHAN_PERMFAIL);
		assert_string_equal(t.s[i].r.reason, "too long: 2 segments > max 1");
		assert_int_equal(t.s[i].r.segments, 0);
		assert_int_equal(t.s[i].r.cost_micros, 0);
	}
	for (int i = 2; i < 4; i++) {
		assert_int_equal(t.s[i].r.status, CHAN_PERMFAIL);
		assert_memory_equal(t.s[i].r.reason, "invalid recipient", 17);
	}
	assert_string_equal(t.s[4].r.reason, "empty text");
	assert_string_equal(t.s[5].r.reason, "text is not valid UTF-8");
	assert_int_equal(nrecords(), before); /* nothing reached the provider */
	free(t161);
	free(fa71);

	/* the default maximum is 10 segments: 11 UCS-2 parts are refused */
	char *fa = xmalloc(67 * 11 * 2 + 1);
	for (int i = 0; i < 67 * 11; i++)
		memcpy(fa + 2 * i, "\xd8\xb3", 2);
	fa[67 * 11 * 2] = '\0';
	struct tcase d = {.n = 2, .text = {fa, NULL}};
	fa[67 * 10 * 2] = '\0'; /* the first text is cut below: copy */
	char *fa10 = xstrdup(fa);
	fa[67 * 10 * 2] = '\xd8';
	d.text[1] = fa10;
	twilio_run(&d);
	assert_int_equal(d.s[0].r.status, CHAN_PERMFAIL);
	assert_string_equal(d.s[0].r.reason, "too long: 11 segments > max 10");
	assert_int_equal(d.s[1].r.status, CHAN_OK);
	assert_int_equal(d.s[1].r.segments, 10);
	free(fa);
	free(fa10);
}

static void test_stop_waits_for_inflight(void **state)
{
	(void)state;
	fake_control("script", "[{\"status\": 201, \"delay_ms\": 300}]");
	char conf[1024];
	snprintf(conf, sizeof conf,
	         "[channel.sms]\ndriver = twilio\nbase_url = http://127.0.0.1:%d\n"
	         "account_sid = %s\nauth_token_file = %s\nfrom = +15017122661\ntimeout = 10s\n",
	         fake_port, SID, tok_path);
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
	assert_int_equal(ndone, 2); /* both reported before the channel stopped */
	assert_int_equal(s[0].r.status, CHAN_OK);
	assert_int_equal(s[1].r.status, CHAN_PERMFAIL);
	chan_free_all(c, 1);
	for (int i = 0; i < 1000 && uv_loop_alive(&loop); i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(uv_loop_close(&loop), 0);
	config_free(cfg);
}

/* Runs last: every log line of the whole run went to err_path. */
static void test_no_secret_in_logs(void **state)
{
	(void)state;
	fflush(stderr);
	FILE *f = fopen(err_path, "r");
	assert_non_null(f);
	char *line = NULL;
	size_t cap = 0;
	int lines = 0, auth_warnings = 0;
	while (getline(&line, &cap, f) > 0) {
		lines++;
		assert_no_secret(line);
		if (strstr(line, "Messages.json") || strstr(line, "/2010-04-01/"))
			fail_msg("a URL was logged: %s", line);
		if (strstr(line, "Hello from the club") || strstr(line, fa_salam))
			fail_msg("message text was logged: %s", line);
		if (strstr(line, "driver=twilio") && strstr(line, "credentials"))
			auth_warnings++;
	}
	free(line);
	fclose(f);
	assert_true(lines > 10);         /* the capture worked */
	assert_true(auth_warnings >= 1); /* the bad-token run warned */
}

/* ---- setup ------------------------------------------------------------------- */

static int group_setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/clubd-test-twilio-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(tok_path, sizeof tok_path, "%s/twilio-token", tmpdir);
	snprintf(bad_tok_path, sizeof bad_tok_path, "%s/wrong-token", tmpdir);
	snprintf(log_path, sizeof log_path, "%s/twilio-requests.jsonl", tmpdir);
	snprintf(err_path, sizeof err_path, "%s/stderr.log", tmpdir);
	char tok[64];
	snprintf(tok, sizeof tok, "%s\n", TOKEN);
	write_file(tok_path, tok, 0600);
	write_file(bad_tok_path, "0000000000000000\n", 0600);
	char up[128];
	int ul = snprintf(up, sizeof up, "%s:%s", SID, TOKEN);
	EVP_EncodeBlock((unsigned char *)userpass_b64, (unsigned char *)up, ul);
	if (start_fake() < 0)
		return -1;
	/* every log line of the run goes to a file the last test scans */
	fflush(stderr);
	saved_stderr = dup(2);
	int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || saved_stderr < 0)
		return -1;
	dup2(fd, 2);
	close(fd);
	log_setup(LOG_DEBUG, LOG_FMT_KV);
	log_set_trace("all");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (saved_stderr >= 0) {
		fflush(stderr);
		dup2(saved_stderr, 2);
		close(saved_stderr);
		/* give back what was not a log line (cmocka's failure reports);
		 * CLUBD_TEST_VERBOSE shows the log lines too */
		int verbose = getenv("CLUBD_TEST_VERBOSE") != NULL;
		FILE *f = fopen(err_path, "r");
		char *line = NULL;
		size_t cap = 0;
		while (f && getline(&line, &cap, f) > 0)
			if (verbose || !strstr(line, " sub="))
				fputs(line, stderr);
		free(line);
		if (f)
			fclose(f);
	}
	if (fake_pid > 0) {
		kill(fake_pid, SIGTERM);
		waitpid(fake_pid, NULL, 0);
	}
	nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

int main(void)
{
	/* StatusCallback URLs are signed with the process-wide callback secret */
	char why[256];
	setenv("CLUBD_TEST_CALLBACK_SECRET", "test-callback-secret-0123456789", 1);
	if (callback_init("env:CLUBD_TEST_CALLBACK_SECRET", why, sizeof why) < 0) {
		fprintf(stderr, "callback_init: %s\n", why);
		return 1;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_request_encoding),
	    cmocka_unit_test(test_callback_with_query),
	    cmocka_unit_test(test_answers),
	    cmocka_unit_test(test_timeout_and_refused),
	    cmocka_unit_test(test_refused_before_sending),
	    cmocka_unit_test(test_stop_waits_for_inflight),
	    cmocka_unit_test(test_no_secret_in_logs),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
