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
#include <errno.h>
#include <openssl/evp.h>
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
#include "sms_providers.h"
#include "sms_segments.h"
#include "testlib.h"
#include "util.h"

static const char SID[] = "AC0123456789abcdef0123456789abcdef";
static const char MSS[] = "MG00112233445566778899aabbccddeeff";
/* characters that change under percent-encoding and Base64 */
static const char TOKEN[] = "f00d+s3cr3t/t0ken=9";
static const char TOKEN_PCT[] = "f00d%2Bs3cr3t%2Ft0ken%3D9";
static char userpass_b64[128]; /* Base64("SID:TOKEN"), the Basic credentials */

static struct tl_fixture fx;

static const char fa_text[] = TL_FA_TEXT;
static const char fa_salam[] = TL_FA_SALAM;
static const char fa_salam_pct[] = TL_FA_SALAM_PCT;

/* ---- helpers ------------------------------------------------------------- */

static struct config *load_cfg(const char *text, struct cfg_error *err)
{
	return tl_load_config(fx.dir, "twilio.conf", text, err);
}

/* Configure the sms channel with the driver under test, as channel.c does. */
static struct chan *sms_chan(const struct config *cfg, struct cfg_error *err)
{
	return tl_chan_configure(cfg, "sms", &chan_sms_twilio_driver, err);
}

/* No secret in any form in s. */
static void assert_no_secret(const char *s)
{
	if (strstr(s, TOKEN) || strstr(s, TOKEN_PCT) || strstr(s, userpass_b64))
		fail_msg("a secret leaked into: %s", s);
}

/* The record whose StatusCallback names message id. */
static json_t *record_for(json_t *all, const char *id)
{
	size_t i;
	json_t *r;
	json_array_foreach(all, i, r)
	{
		const char *cb = tl_jstr(json_object_get(r, "params"), "StatusCallback");
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
	struct tl_send s[MAXN];
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
	         t->port ? t->port : fx.port, SID, t->tok ? t->tok : fx.secret_path,
	         t->sender ? t->sender : "from = +15017122661", t->timeout ? t->timeout : "2s",
	         t->extra ? t->extra : "");
	int n = tl_sms_run(fx.dir, "twilio.conf", conf, &chan_sms_twilio_driver, t->s, t->n, t->to,
	                   t->text);
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
		tl_fake_control(fx.port, "script", script);
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
	         SID, fx.secret_path);

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
	snprintf(ctl, sizeof ctl, "%s/ctl-token", fx.dir);
	tl_write_file(ctl, "hunter2 x\n", 0600);
	snprintf(text, sizeof text,
	         "[channel.sms]\ndriver = twilio\naccount_sid = %s\nauth_token_file = %s\n", SID,
	         ctl);
	expect_cfg_error(text, ":4: channel.sms.auth_token_file: the token contains white space");

	/* in a provider profile, errors name the profile's keys */
	snprintf(
	    text, sizeof text,
	    "[channel.sms]\nprovider = tw\n\n[provider.tw]\ndriver = twilio\naccount_sid = %s\n"
	    "auth_token_file = %s\nfrom = +1\n",
	    SID, fx.secret_path);
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
	size_t before = tl_count_jsonl(fx.log_path);
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
	json_t *all = tl_read_jsonl(fx.log_path, 0);
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
		assert_string_equal(tl_jreq(rec, "content_type"),
		                    "application/x-www-form-urlencoded");
		char path[128];
		snprintf(path, sizeof path, "/2010-04-01/Accounts/%s/Messages.json", SID);
		assert_string_equal(tl_jreq(rec, "path"), path);
		assert_string_equal(tl_jreq(p, "To"), want_to[i]);
		assert_string_equal(tl_jreq(p, "From"), "+15017122661");
		assert_null(json_object_get(p, "MessagingServiceSid"));
		assert_string_equal(tl_jreq(p, "Body"), t.text[i]);
		char cb[160], sig[CALLBACK_SIG_LEN + 1];
		assert_int_equal(callback_sign("dlr", t.s[i].id, sig), 0);
		snprintf(cb, sizeof cb, "https://clubd.example/v1/dlr/twilio?m=%s&k=%s", t.s[i].id,
		         sig);
		assert_string_equal(tl_jreq(p, "StatusCallback"), cb);
		assert_int_equal(json_array_size(json_object_get(rec, "repeated")), 0);
		/* the provider id is the sid Twilio answered */
		assert_string_equal(r->provider_id, tl_jreq(rec, "sid"));
		assert_memory_equal(r->provider_id, "SM", 2);
		assert_int_equal(strlen(r->provider_id), 34);
		const char *raw = tl_jreq(rec, "raw_body");
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
	before = tl_count_jsonl(fx.log_path);
	struct tcase m = {
	    .sender = "messaging_service_sid = MG00112233445566778899aabbccddeeff",
	};
	twilio_run(&m);
	assert_int_equal(m.s[0].r.status, CHAN_OK);
	all = tl_read_jsonl(fx.log_path, 0);
	assert_int_equal(json_array_size(all), before + 1);
	json_t *rec = json_array_get(all, before);
	json_t *p = json_object_get(rec, "params");
	assert_string_equal(tl_jreq(p, "MessagingServiceSid"), MSS);
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
	         fx.port, SID, fx.secret_path);
	struct config *cfg = tl_load_config_or_fail(fx.dir, "twilio.conf", conf);
	uv_loop_t loop;
	struct chan *c = tl_chan_up(&loop, cfg, "sms", &chan_sms_twilio_driver);
	int ndone = 0;
	struct tl_send s;
	tl_send_init(&s, &ndone, "sms", "+989121234567", "hi");
	size_t before = tl_count_jsonl(fx.log_path);
	assert_int_equal(chan_send(c, &s.m, tl_send_done, &s), 0);
	tl_run_until(&loop, &ndone, 1);
	tl_stop_all_and_close(&loop, c, 1);
	config_free(cfg);
	assert_int_equal(s.r.status, CHAN_OK);
	json_t *all = tl_read_jsonl(fx.log_path, 0);
	assert_int_equal(json_array_size(all), before + 1);
	char want[160], sig[CALLBACK_SIG_LEN + 1];
	assert_int_equal(callback_sign("dlr", s.id, sig), 0);
	snprintf(want, sizeof want, "https://clubd.example/dlr?src=us&x=1&m=%s&k=%s", s.id, sig);
	assert_string_equal(
	    tl_jreq(json_object_get(json_array_get(all, before), "params"), "StatusCallback"),
	    want);
	json_decref(all);
}

static void test_answers(void **state)
{
	(void)state;
	/* one run, each recipient scripted differently (concurrent sends) */
	tl_fake_control(fx.port, "number",
	                "{\"to\": \"+15550000101\", \"answers\": [{\"status\": 429, "
	                "\"code\": 20429, \"message\": \"Too Many Requests\", "
	                "\"retry_after\": \"3\"}]}");
	tl_fake_control(fx.port, "number",
	                "{\"to\": \"+15550000102\", \"answers\": [{\"status\": 500, "
	                "\"body\": \"Internal Server Error\"}]}");
	tl_fake_control(fx.port, "number",
	                "{\"to\": \"+15550000103\", \"answers\": [{\"status\": 503, "
	                "\"code\": 20503, \"message\": \"Service Unavailable\", "
	                "\"retry_after\": \"11\"}]}");
	tl_fake_control(fx.port, "number",
	                "{\"to\": \"+15550000104\", \"answers\": [{\"status\": 400, "
	                "\"code\": 21611, \"message\": \"This 'From' number has exceeded "
	                "the maximum number of queued messages\"}]}");
	tl_fake_control(fx.port, "number",
	                "{\"to\": \"+15550000105\", \"answers\": [{\"status\": 404, "
	                "\"code\": 20404, \"message\": \"The requested resource was not "
	                "found\"}]}");
	tl_fake_control(fx.port, "number",
	                "{\"to\": \"+15550000106\", \"answers\": [{\"status\": 302, "
	                "\"body\": \"\"}]}");
	tl_fake_control(fx.port, "number",
	                "{\"to\": \"+15550000107\", \"answers\": [{\"status\": 201, "
	                "\"twilio_status\": \"failed\"}]}");
	tl_fake_control(fx.port, "number",
	                "{\"to\": \"+15550000108\", \"answers\": [{\"status\": 201, "
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
	struct tcase bad = {.tok = fx.bad_secret_path};
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
	tl_fake_control(fx.port, "script", "[{\"status\": 201, \"delay_ms\": 3000}]");
	struct tcase t = {.timeout = "300ms"};
	twilio_run(&t);
	assert_int_equal(t.s[0].r.status, CHAN_TEMPFAIL);
	assert_string_equal(t.s[0].r.reason, "timeout");

	/* a bound, never listening port: connection refused */
	int fd;
	int port = tl_bound_port(&fd);
	struct tcase k = {.port = port};
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
	size_t before = tl_count_jsonl(fx.log_path);
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
	assert_int_equal(tl_count_jsonl(fx.log_path), before); /* nothing reached the provider */
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
	tl_fake_control(fx.port, "script", "[{\"status\": 201, \"delay_ms\": 300}]");
	char conf[1024];
	snprintf(conf, sizeof conf,
	         "[channel.sms]\ndriver = twilio\nbase_url = http://127.0.0.1:%d\n"
	         "account_sid = %s\nauth_token_file = %s\nfrom = +15017122661\ntimeout = 10s\n",
	         fx.port, SID, fx.secret_path);
	struct config *cfg = tl_load_config_or_fail(fx.dir, "twilio.conf", conf);
	uv_loop_t loop;
	struct chan *c = tl_chan_up(&loop, cfg, "sms", &chan_sms_twilio_driver);
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
	assert_int_equal(ndone, 2); /* both reported before the channel stopped */
	assert_int_equal(s[0].r.status, CHAN_OK);
	assert_int_equal(s[1].r.status, CHAN_PERMFAIL);
	chan_free_all(c, 1);
	assert_int_equal(tl_loop_finish(&loop), 0);
	config_free(cfg);
}

/* Runs last: every log line of the whole run went to fx.err_path. */
static void test_no_secret_in_logs(void **state)
{
	(void)state;
	fflush(stderr);
	FILE *f = fopen(fx.err_path, "r");
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
	*state = &fx; /* for tl_fixture_group_teardown */
	if (tl_fixture_setup(&fx, "twilio", "twilio-token", TOKEN, "wrong-token",
	                     "0000000000000000\n") < 0)
		return -1;
	char up[128];
	int ul = snprintf(up, sizeof up, "%s:%s", SID, TOKEN);
	EVP_EncodeBlock((unsigned char *)userpass_b64, (unsigned char *)up, ul);
	char acc[128];
	snprintf(acc, sizeof acc, "%s:%s", SID, TOKEN);
	const char *args[] = {"--account", acc, "--log", fx.log_path, NULL};
	if (tl_fixture_start_fake(&fx, "twilio.py", args) < 0)
		return -1;
	/* every log line of the run goes to a file the last test scans */
	return tl_fixture_capture_log(&fx);
}

int main(void)
{
	/* StatusCallback URLs are signed with the process-wide callback secret */
	if (tl_callback_secret_init() < 0)
		return 1;
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
	return cmocka_run_group_tests(tests, group_setup, tl_fixture_group_teardown);
}
