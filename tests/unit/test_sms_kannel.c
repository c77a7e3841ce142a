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
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "callback.h"
#include "channel.h"
#include "config.h"
#include "log.h"
#include "sms_drivers.h"
#include "sms_segments.h"
#include "testlib.h"
#include "util.h"

/* Characters that need percent-encoding, and one that Kannel's own
 * parser would turn into a space if sent raw ('+'). */
static const char PASSWORD[] = "p@ss w&rd+1%=";
static const char PASSWORD_PCT[] = "p%40ss%20w%26rd%2B1%25%3D";

static struct tl_fixture fx;

static const char fa_text[] = TL_FA_TEXT;
/* "salam" in Persian, as sent on the wire */
static const char fa_salam[] = TL_FA_SALAM;
static const char fa_salam_pct[] = TL_FA_SALAM_PCT;

/* ---- helpers ------------------------------------------------------------- */

static struct config *load_cfg(const char *text, struct cfg_error *err)
{
	return tl_load_config(fx.dir, "kannel.conf", text, err);
}

/* Configure [channel.sms] with the driver under test, as channel.c does. */
static struct chan *sms_chan(const struct config *cfg, struct cfg_error *err)
{
	return tl_chan_configure(cfg, "sms", &chan_sms_kannel_driver, err);
}

/* The record whose dlr-url or raw query names message id. */
static json_t *record_for(json_t *all, const char *id)
{
	size_t i;
	json_t *r;
	json_array_foreach(all, i, r)
	{
		const char *dlr = tl_jstr(json_object_get(r, "params"), "dlr-url");
		const char *raw = tl_jstr(r, "raw_query");
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
	struct tl_send s[8];
};

static void kannel_run(struct kcase *k)
{
	char conf[4096];
	snprintf(conf, sizeof conf,
	         "[channel.sms]\ndriver = kannel\nurl = http://127.0.0.1:%d/cgi-bin/sendsms\n"
	         "username = clubd\npassword_file = %s\ntimeout = %s\nmax_inflight = "
	         "16\nwindow_initial = 16\n%s",
	         k->port ? k->port : fx.port, k->pw ? k->pw : fx.secret_path,
	         k->timeout ? k->timeout : "2s", k->extra ? k->extra : "");
	int n = tl_sms_run(fx.dir, "kannel.conf", conf, &chan_sms_kannel_driver, k->s, k->n, k->to,
	                   k->text);
	for (int i = 0; i < n; i++) {
		assert_null(strstr(k->s[i].r.reason, PASSWORD));
		assert_null(strstr(k->s[i].r.reason, PASSWORD_PCT));
	}
}

/* One send with one scripted answer; returns the result. */
static struct chan_result one_t(const char *extra, const char *timeout, const char *script)
{
	if (script)
		tl_fake_control(fx.port, "script", script);
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
	         fx.secret_path);
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
	snprintf(ctl, sizeof ctl, "%s/ctl-pw", fx.dir);
	tl_write_file(ctl, "hunter2\tx\n", 0600);
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
	size_t before = tl_count_jsonl(fx.log_path);
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
	json_t *all = tl_read_jsonl(fx.log_path, 0);
	assert_int_equal(json_array_size(all), before + 4);
	for (int i = 0; i < 4; i++) {
		json_t *r = record_for(all, k.s[i].id);
		json_t *p = json_object_get(r, "params");
		assert_string_equal(tl_jstr(r, "method"), "GET");
		assert_true(json_is_true(json_object_get(r, "password_ok")));
		assert_null(json_object_get(p, "password")); /* the fake keeps no secrets */
		assert_string_equal(tl_jstr(p, "username"), "clubd");
		assert_string_equal(tl_jstr(p, "from"), "Club Shop");
		assert_string_equal(tl_jstr(p, "to"), "989121234567"); /* strip_plus default */
		assert_string_equal(tl_jstr(r, "text"), k.text[i]);
		assert_string_equal(tl_jstr(p, "charset"), "UTF-8");
		assert_string_equal(tl_jstr(p, "coding"), i == 1 || i == 3 ? "2" : "0");
		assert_string_equal(tl_jstr(p, "dlr-mask"), "31");
		assert_string_equal(tl_jstr(p, "smsc"), "mci");
		char want[256], sig[CALLBACK_SIG_LEN + 1];
		assert_int_equal(callback_sign("dlr", k.s[i].id, sig), 0);
		snprintf(want, sizeof want,
		         "https://clubd.example/v1/dlr/kannel?m=%s&k=%s&s=%%d&t=%%T&to=%%p&f=%%F",
		         k.s[i].id, sig);
		assert_string_equal(tl_jstr(p, "dlr-url"), want);
		/* on the wire: everything percent-encoded, %-codes included */
		const char *raw = tl_jstr(r, "raw_query");
		snprintf(want, sizeof want,
		         "&dlr-url=https%%3A%%2F%%2Fclubd.example%%2Fv1%%2Fdlr%%2Fkannel%%3Fm%%3D%s"
		         "%%26k%%3D%s%%26s%%3D%%25d%%26t%%3D%%25T%%26to%%3D%%25p%%26f%%3D%%25F",
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
	before = tl_count_jsonl(fx.log_path);
	struct kcase k2 = {.extra = "strip_plus = no\n", .text = {fa_salam}};
	kannel_run(&k2);
	assert_int_equal(k2.s[0].r.status, CHAN_OK);
	assert_int_equal(k2.s[0].r.cost_micros, 0); /* no price configured */
	all = tl_read_jsonl(fx.log_path, 0);
	assert_int_equal(json_array_size(all), before + 1);
	json_t *r = json_array_get(all, before);
	json_t *p = json_object_get(r, "params");
	assert_string_equal(tl_jstr(p, "to"), "+989121234567");
	assert_null(json_object_get(p, "dlr-url"));
	assert_null(json_object_get(p, "dlr-mask"));
	assert_null(json_object_get(p, "from"));
	assert_null(json_object_get(p, "smsc"));
	assert_non_null(strstr(tl_jstr(r, "raw_query"), "&to=%2B989121234567&"));
	json_decref(all);
}

static void test_post(void **state)
{
	(void)state;
	size_t before = tl_count_jsonl(fx.log_path);
	struct kcase k = {
	    .extra = "method = post\nstrip_plus = no\nsender = 30001234\n"
	             "dlr_url = https://clubd.example/dlr?src=k1\ndlr_mask = 3\n"
	             "price_per_segment = 0.01\n",
	    .n = 2,
	    .text = {fa_text, "Plain ASCII, one part"},
	};
	kannel_run(&k);
	json_t *all = tl_read_jsonl(fx.log_path, 0);
	assert_int_equal(json_array_size(all), before + 2);
	for (int i = 0; i < 2; i++) {
		if (k.s[i].r.status != CHAN_OK)
			fail_msg("send %d: %s", i, k.s[i].r.reason);
		assert_int_equal(k.s[i].r.segments, i == 0 ? 2 : 1);
		assert_int_equal(k.s[i].r.cost_micros, i == 0 ? 20000 : 10000);
		json_t *r = record_for(all, k.s[i].id);
		json_t *p = json_object_get(r, "params");
		assert_string_equal(tl_jstr(r, "method"), "POST");
		assert_string_equal(tl_jstr(r, "content_type"), "text/plain; charset=UTF-8");
		assert_string_equal(tl_jstr(r, "raw_query"), ""); /* nothing in the URL */
		assert_true(json_is_true(json_object_get(r, "password_ok")));
		assert_string_equal(tl_jstr(p, "username"), "clubd");
		assert_string_equal(tl_jstr(p, "from"), "30001234");
		assert_string_equal(tl_jstr(p, "to"), "+989121234567");
		assert_string_equal(tl_jstr(p, "coding"), i == 0 ? "2" : "0");
		assert_string_equal(tl_jstr(p, "dlr-mask"), "3");
		assert_string_equal(tl_jstr(r, "text"), k.text[i]);
		char want[256], sig[CALLBACK_SIG_LEN + 1];
		assert_int_equal(callback_sign("dlr", k.s[i].id, sig), 0);
		snprintf(want, sizeof want,
		         "https://clubd.example/dlr?src=k1&m=%s&k=%s&s=%%d&t=%%T&to=%%p&f=%%F",
		         k.s[i].id, sig);
		assert_string_equal(tl_jstr(p, "dlr-url"), want);
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
	struct kcase k = {.pw = fx.bad_secret_path};
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
	int fd;
	int port = tl_bound_port(&fd);
	struct kcase k = {.port = port};
	kannel_run(&k);
	close(fd);
	assert_int_equal(k.s[0].r.status, CHAN_TEMPFAIL);
	assert_memory_equal(k.s[0].r.reason, "connect: ", 9);
	assert_null(strstr(k.s[0].r.reason, "sendsms")); /* no URL in reasons */
}

static void test_refused_before_sending(void **state)
{
	(void)state;
	size_t before = tl_count_jsonl(fx.log_path);
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
	assert_int_equal(tl_count_jsonl(fx.log_path), before); /* nothing reached the provider */
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
	tl_fake_control(
	    fx.port, "script",
	    "[{\"status\": 202, \"body\": \"0: Accepted for delivery\", \"delay_ms\": 300}]");
	char conf[1024];
	snprintf(conf, sizeof conf,
	         "[channel.sms]\ndriver = kannel\nurl = http://127.0.0.1:%d/cgi-bin/sendsms\n"
	         "username = clubd\npassword_file = %s\ntimeout = 10s\n",
	         fx.port, fx.secret_path);
	struct config *cfg = tl_load_config_or_fail(fx.dir, "kannel.conf", conf);
	uv_loop_t loop;
	struct chan *c = tl_chan_up(&loop, cfg, "sms", &chan_sms_kannel_driver);
	int ndone = 0;
	struct tl_send s[2];
	tl_send_init(&s[0], &ndone, "sms", "+989121234567", "slow");
	tl_send_init(&s[1], &ndone, "sms", "+98", "bad recipient, reported later");
	assert_int_equal(chan_send(c, &s[0].m, tl_send_done, &s[0]), 0);
	assert_int_equal(chan_send(c, &s[1].m, tl_send_done, &s[1]), 0);
	int st = 0;
	chan_stop_all(c, 1, tl_on_count, &st);
	assert_int_equal(ndone, 0);
	tl_run_until(&loop, &st, 1);
	/* both reported before the channel said it stopped */
	assert_int_equal(ndone, 2);
	assert_int_equal(s[0].r.status, CHAN_OK);
	assert_int_equal(s[1].r.status, CHAN_PERMFAIL);
	chan_free_all(c, 1);
	assert_int_equal(tl_loop_finish(&loop), 0);
	config_free(cfg);
}

/* ---- setup ------------------------------------------------------------------- */

static int group_setup(void **state)
{
	*state = &fx; /* for tl_fixture_group_teardown */
	log_setup(LOG_ERR, LOG_FMT_KV);
	if (tl_fixture_setup(&fx, "kannel", "kannel-password", PASSWORD, "wrong-password",
	                     "not-the-password\n") < 0)
		return -1;
	char user[128];
	snprintf(user, sizeof user, "clubd:%s", PASSWORD);
	const char *args[] = {"--user", user, "--log", fx.log_path, NULL};
	return tl_fixture_start_fake(&fx, "kannel.py", args);
}

int main(void)
{
	/* dlr-url callbacks are signed with the process-wide callback secret */
	if (tl_callback_secret_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_get),
	    cmocka_unit_test(test_post),
	    cmocka_unit_test(test_answers),
	    cmocka_unit_test(test_timeout_and_refused),
	    cmocka_unit_test(test_refused_before_sending),
	    cmocka_unit_test(test_stop_waits_for_inflight),
	};
	return cmocka_run_group_tests(tests, group_setup, tl_fixture_group_teardown);
}
