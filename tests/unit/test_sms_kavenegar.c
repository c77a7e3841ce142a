/*
 * test_sms_kavenegar.c - the "kavenegar" driver and its status polling
 * client on a real libuv loop against tests/fakes/kavenegar.py (a fake
 * Kavenegar REST API over loopback that checks the API key in the path and
 * records every call): config errors naming file:line:key, the send form
 * (receptor without '+', sender line, Persian message as UTF-8, a numeric
 * localid derived from our message id), the return.status table (auth,
 * credit, receptor/sender/message errors, server-side temporary codes,
 * HTTP errors without JSON, garbage), blocked entries, segments and cost
 * (ours, or Kavenegar's own when no price is set), a repeated localid not
 * sending twice, max_segments and bad recipients refused without a call,
 * transport errors, statuslocalmessageid.json parsing into delivered /
 * undelivered / pending / unknown with every error path, stop waiting for
 * sends and polls in flight, and no secret in any reason or log line
 * (stderr is captured to a file for the whole run and scanned by the last
 * test).  Every run ends with uv_loop_close() == 0; no assertion depends on
 * elapsed time.
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

#include "channel.h"
#include "config.h"
#include "log.h"
#include "sms_providers.h"
#include "sms_segments.h"
#include "testlib.h"
#include "util.h"

/* characters that change under percent-encoding and Base64 */
static const char KEY[] = "4B6F+s3cr3t/K3y=77";
static const char KEY_PCT[] = "4B6F%2Bs3cr3t%2FK3y%3D77";
static const char KEY_B64[] = "NEI2RitzM2NyM3QvSzN5PTc3";

static struct tl_fixture fx;

static const char fa_text[] = TL_FA_TEXT;
static const char fa_salam[] = TL_FA_SALAM;
static const char fa_salam_pct[] = TL_FA_SALAM_PCT;

/* ---- helpers ------------------------------------------------------------- */

static struct config *load_cfg(const char *text, struct cfg_error *err)
{
	return tl_load_config(fx.dir, "kavenegar.conf", text, err);
}

/* Configure the sms channel with the driver under test, as channel.c does. */
static struct chan *sms_chan(const struct config *cfg, struct cfg_error *err)
{
	return tl_chan_configure(cfg, "sms", &chan_sms_kavenegar_driver, err);
}

/* No secret in any form in s. */
static void assert_no_secret(const char *s)
{
	if (strstr(s, KEY) || strstr(s, KEY_PCT) || strstr(s, KEY_B64))
		fail_msg("a secret leaked into: %s", s);
}

/* The send record whose localid is the one derived from message id. */
static json_t *record_for(json_t *all, const char *id)
{
	char lid[KAVENEGAR_LOCALID_LEN];
	kavenegar_localid(id, lid);
	size_t i;
	json_t *r;
	json_array_foreach(all, i, r)
	{
		const char *l = tl_jstr(json_object_get(r, "params"), "localid");
		if (l && strcmp(l, lid) == 0)
			return r;
	}
	fail_msg("no request recorded for message %s", id);
	return NULL;
}

/* ---- running sends and polls ------------------------------------------------ */

#define MAXN 24

struct rig {
	struct config *cfg;
	struct chan *c;
	uv_loop_t loop;
};

/* A started kavenegar channel in a [provider.NAME] profile, as operators
 * write it. */
static void rig_open(struct rig *g, const char *extra, const char *keyfile, int port,
                     const char *timeout)
{
	char conf[4096];
	snprintf(conf, sizeof conf,
	         "[channel.sms]\nprovider = kavenegar\n\n"
	         "[provider.kavenegar]\ndriver = kavenegar\nbase_url = http://127.0.0.1:%d/\n"
	         "api_key_file = %s\ntimeout = %s\nmax_inflight = 32\nwindow_initial = 32\n%s",
	         port ? port : fx.port, keyfile ? keyfile : fx.secret_path,
	         timeout ? timeout : "2s", extra ? extra : "sender = 10004346\n");
	g->cfg = tl_load_config_or_fail(fx.dir, "kavenegar.conf", conf);
	g->c = tl_chan_up(&g->loop, g->cfg, "sms", &chan_sms_kavenegar_driver);
}

static void rig_close(struct rig *g)
{
	tl_stop_all_and_close(&g->loop, g->c, 1);
	config_free(g->cfg);
}

struct kcase {
	const char *extra;   /* the provider section's sender/price lines */
	int port;            /* 0: the fake */
	const char *key;     /* key file, NULL: the right one */
	const char *timeout; /* NULL: 2s */
	int n;
	const char *to[MAXN];
	const char *text[MAXN];
	const char *id[MAXN]; /* NULL: a new id */
	struct tl_send s[MAXN];
};

static void send_all(struct rig *g, struct kcase *k)
{
	int n = k->n ? k->n : 1;
	tl_sms_send_batch(&g->loop, g->c, k->s, n, k->to, k->text, k->id);
	for (int i = 0; i < n; i++) {
		assert_no_secret(k->s[i].r.reason);
		if (k->s[i].r.status != CHAN_OK)
			assert_true(strlen(k->s[i].r.reason) > 0);
	}
}

static void kv_run(struct kcase *k)
{
	struct rig g;
	rig_open(&g, k->extra, k->key, k->port, k->timeout);
	send_all(&g, k);
	rig_close(&g);
}

static struct chan_result one(const char *script)
{
	if (script)
		tl_fake_control(fx.port, "script", script);
	struct kcase k = {0};
	kv_run(&k);
	return k.s[0].r;
}

struct pollctx {
	int done;
	int err;
	size_t n;
	struct kavenegar_status st[KAVENEGAR_STATUS_MAX];
};

static void on_poll(void *arg, int err, const struct kavenegar_status *st, size_t n)
{
	struct pollctx *p = arg;
	assert_int_equal(p->done, 0);
	p->done = 1;
	p->err = err;
	p->n = n;
	if (err == 0)
		assert_non_null(st);
	else
		assert_int_equal(n, 0);
	assert_true(n <= KAVENEGAR_STATUS_MAX);
	if (n)
		memcpy(p->st, st, n * sizeof *st);
}

/* Poll ids on a started rig; returns after the callback. */
static void poll_ids(struct rig *g, const char *const *ids, size_t n, struct pollctx *p)
{
	memset(p, 0, sizeof *p);
	assert_int_equal(kavenegar_status_by_localid(g->c, ids, n, on_poll, p), 0);
	assert_int_equal(p->done, 0); /* never from inside the call */
	tl_run_until(&g->loop, &p->done, 1);
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
	/* line 1 [channel.sms], 2 driver, 3 api_key_file */
	snprintf(base, sizeof base, "[channel.sms]\ndriver = kavenegar\napi_key_file = %s\n",
	         fx.secret_path);
	expect_cfg_error("[channel.sms]\ndriver = kavenegar\n",
	                 "kavenegar.conf:1: channel.sms.api_key_file: is required");
	expect_cfg_error("[channel.sms]\ndriver = kavenegar\napi_key_file = /nonexistent/key\n",
	                 ":3: channel.sms.api_key_file:");
	struct {
		const char *lines, *want;
	} bad[] = {
	    {"base_url = ftp://hunter2@h/\n", ":4: channel.sms.base_url: must be an http://"},
	    {"base_url = https://api.kavenegar.com/?k=hunter2\n", ":4: channel.sms.base_url:"},
	    {"base_url = https://h/a b\n", ":4: channel.sms.base_url:"},
	    {"sender = Club Shop\n", ":4: channel.sms.sender: must be a Kavenegar line number"},
	    {"sender = 12\n", ":4: channel.sms.sender:"},
	    {"max_segments = 0\n", ":4: channel.sms.max_segments: must be between 1 and 255"},
	    {"price_per_segment = -1\n", ":4: channel.sms.price_per_segment:"},
	    {"max_host_connections = 2000\n", ":4: channel.sms.max_host_connections:"},
	    {"localid = no\n", ":4: channel.sms.localid: unknown key"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(text, sizeof text, "%s%s", base, bad[i].lines);
		expect_cfg_error(text, bad[i].want);
	}
	/* a key with white space is refused, and never echoed */
	char ws[320];
	snprintf(ws, sizeof ws, "%s/ws-key", fx.dir);
	tl_write_file(ws, "hunter2 x\n", 0600);
	snprintf(text, sizeof text, "[channel.sms]\ndriver = kavenegar\napi_key_file = %s\n", ws);
	expect_cfg_error(text, ":3: channel.sms.api_key_file: the API key must be");

	/* in a provider profile, errors name the profile's keys */
	snprintf(text, sizeof text,
	         "[channel.sms]\nprovider = kn\n\n[provider.kn]\ndriver = kavenegar\n"
	         "api_key_file = %s\nsender = +98\n",
	         fx.secret_path);
	expect_cfg_error(text, ":7: provider.kn.sender: must be a Kavenegar line number");

	/* every key, valid; no sender at all is valid too (the account's default) */
	const char *lines[] = {"", "base_url = https://api.kavenegar.com/\nsender = 2000660110\n"
	                           "price_per_segment = 1.5\nmax_segments = 4\n"
	                           "max_host_connections = 4\n"};
	for (size_t i = 0; i < ARRAY_SIZE(lines); i++) {
		snprintf(text, sizeof text, "%s%s", base, lines[i]);
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
}

static void test_localid(void **state)
{
	(void)state;
	char a[KAVENEGAR_LOCALID_LEN], b[KAVENEGAR_LOCALID_LEN];
	/* the decimal value of the first 63 bits of SHA-256 (computed with Python) */
	kavenegar_localid("01HZX3J5Q8K9V2M4N6P7R8S9T0", a);
	assert_string_equal(a, "5988000937964816206");
	kavenegar_localid("", a);
	assert_string_equal(a, "7183457195969485844");
	kavenegar_localid("01HZX3J5Q8K9V2M4N6P7R8S9T1", b);
	assert_string_not_equal(a, b);
	/* always digits, never more than a positive int64 */
	for (int i = 0; i < 2000; i++) {
		char id[ID_LEN + 1];
		id_new(id, now_ms());
		kavenegar_localid(id, a);
		int64_t v;
		assert_int_equal(parse_i64(a, 1, INT64_MAX, &v), 0);
		kavenegar_localid(id, b);
		assert_string_equal(a, b); /* deterministic */
	}
	assert_string_equal(kavenegar_state_name(KAVENEGAR_PENDING), "pending");
	assert_string_equal(kavenegar_state_name(KAVENEGAR_DELIVERED), "delivered");
	assert_string_equal(kavenegar_state_name(KAVENEGAR_UNDELIVERED), "undelivered");
	assert_string_equal(kavenegar_state_name(KAVENEGAR_UNKNOWN), "unknown");
}

static void test_request_encoding(void **state)
{
	(void)state;
	size_t before = tl_count_jsonl(fx.log_path);
	char *long_gsm = xmalloc(162);
	memset(long_gsm, 'x', 161);
	long_gsm[161] = '\0';
	struct kcase k = {
	    .extra = "sender = 2000660110\nprice_per_segment = 250\n",
	    .n = 4,
	    .to = {"+989121234567", "989351234567", NULL, NULL},
	    .text = {fa_text,
	             "50% off & more = {deal} + \xe2\x82\xac"
	             "5 ~ #1?",
	             long_gsm, fa_salam},
	};
	kv_run(&k);
	int want_seg[] = {2, 1, 2, 1};
	const char *want_to[] = {"989121234567", "989351234567", "989121234567", "989121234567"};
	json_t *all = tl_read_jsonl(fx.log_path, 0);
	assert_int_equal(json_array_size(all), before + 4);
	for (int i = 0; i < 4; i++) {
		struct chan_result *r = &k.s[i].r;
		if (r->status != CHAN_OK)
			fail_msg("send %d: status %d reason %s", i, r->status, r->reason);
		assert_int_equal(r->segments, want_seg[i]);
		assert_int_equal(r->cost_micros, 250000000LL * want_seg[i]);
		json_t *rec = record_for(all, k.s[i].id);
		json_t *p = json_object_get(rec, "params");
		assert_string_equal(tl_jreq(rec, "method"), "POST");
		assert_string_equal(tl_jreq(rec, "endpoint"), "sms/send");
		assert_true(json_is_true(json_object_get(rec, "key_ok")));
		assert_string_equal(tl_jreq(rec, "raw_path"), "/v1/***/sms/send.json");
		assert_string_equal(tl_jreq(rec, "raw_query"),
		                    ""); /* nothing but the key in the URL */
		assert_string_equal(tl_jreq(rec, "content_type"),
		                    "application/x-www-form-urlencoded");
		assert_int_equal(json_integer_value(json_object_get(rec, "receptors")), 1);
		assert_string_equal(tl_jreq(p, "receptor"), want_to[i]);
		assert_string_equal(tl_jreq(p, "sender"), "2000660110");
		assert_string_equal(tl_jreq(p, "message"), k.text[i]);
		char lid[KAVENEGAR_LOCALID_LEN];
		kavenegar_localid(k.s[i].id, lid);
		assert_string_equal(tl_jreq(p, "localid"), lid);
		/* the provider id is Kavenegar's messageid */
		char mid[32];
		snprintf(mid, sizeof mid, "%lld",
		         (long long)json_integer_value(json_object_get(rec, "messageid")));
		assert_string_equal(r->provider_id, mid);
		const char *raw = tl_jreq(rec, "raw_body");
		if (i == 3) {
			char want[256];
			snprintf(want, sizeof want,
			         "receptor=989121234567&sender=2000660110&message=%s&localid=%s",
			         fa_salam_pct, lid);
			assert_string_equal(raw, want);
		}
		if (i == 1)
			assert_non_null(
			    strstr(raw, "&message=50%25%20off%20%26%20more%20%3D%20%7Bdeal%7D"
			                "%20%2B%20%E2%82%AC5%20~%20%231%3F&"));
	}
	json_decref(all);
	free(long_gsm);

	/* no sender: the account's default line; no price: Kavenegar's cost */
	before = tl_count_jsonl(fx.log_path);
	struct kcase d = {.extra = "\n", .n = 2, .text = {fa_salam, fa_text}};
	kv_run(&d);
	all = tl_read_jsonl(fx.log_path, 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(d.s[i].r.status, CHAN_OK);
		json_t *rec = record_for(all, d.s[i].id);
		assert_null(json_object_get(json_object_get(rec, "params"), "sender"));
		/* the fake charges 120 rials a part */
		assert_int_equal(d.s[i].r.cost_micros, 120000000LL * (i + 1));
		assert_int_equal(d.s[i].r.segments, i + 1);
	}
	json_decref(all);
}

static void test_same_localid_sends_once(void **state)
{
	(void)state;
	/* a retry of the same message (same id, so the same localid) after a
	 * lost answer: Kavenegar returns the first send instead of sending again */
	char id[ID_LEN + 1];
	id_new(id, now_ms());
	size_t before = tl_count_jsonl(fx.log_path);
	struct kcase a = {.id = {id}};
	kv_run(&a);
	struct kcase b = {.id = {id}};
	kv_run(&b);
	assert_int_equal(a.s[0].r.status, CHAN_OK);
	assert_int_equal(b.s[0].r.status, CHAN_OK);
	assert_string_equal(a.s[0].r.provider_id, b.s[0].r.provider_id);
	json_t *all = tl_read_jsonl(fx.log_path, 0);
	assert_int_equal(json_array_size(all), before + 2);
	assert_true(json_is_true(json_object_get(json_array_get(all, before + 1), "duplicate")));
	json_decref(all);
}

static void test_answers(void **state)
{
	(void)state;
	static const struct {
		const char *script;
		enum chan_status st;
		const char *reason;
		int64_t retry;
	} want[] = {
	    {"{\"return\": 418}", CHAN_TEMPFAIL, "kavenegar 418: insufficient credit", 60000},
	    {"{\"return\": 418, \"retry_after\": \"120\"}", CHAN_TEMPFAIL,
	     "kavenegar 418: insufficient credit", 120000},
	    {"{\"return\": 409, \"retry_after\": \"7\"}", CHAN_TEMPFAIL,
	     "kavenegar 409: server unavailable, try again later", 7000},
	    {"{\"return\": 402}", CHAN_TEMPFAIL, "kavenegar 402: operation failed", 0},
	    {"{\"return\": 429}", CHAN_TEMPFAIL, "kavenegar 429: IP restricted", 0},
	    {"{\"return\": 451}", CHAN_TEMPFAIL, "kavenegar 451: too many calls in a period", 0},
	    {"{\"return\": 401}", CHAN_PERMFAIL,
	     "kavenegar 401: authentication failed (account disabled)", 0},
	    {"{\"return\": 407}", CHAN_PERMFAIL,
	     "kavenegar 407: access denied (allow this server's IP in the panel)", 0},
	    {"{\"return\": 412}", CHAN_PERMFAIL, "kavenegar 412: invalid sender line", 0},
	    {"{\"return\": 413}", CHAN_PERMFAIL, "kavenegar 413: message empty or too long", 0},
	    {"{\"return\": 414}", CHAN_PERMFAIL, "kavenegar 414: too many records in one request",
	     0},
	    {"{\"return\": 422}", CHAN_PERMFAIL, "kavenegar 422: invalid characters in the data",
	     0},
	    {"{\"return\": 426}", CHAN_PERMFAIL,
	     "kavenegar 426: this method needs the advanced service", 0},
	    {"{\"return\": 431}", CHAN_PERMFAIL, "kavenegar 431: invalid code structure", 0},
	    {"{\"return\": 503, \"retry_after\": \"4\"}", CHAN_TEMPFAIL,
	     "kavenegar 503: \xd8\xae\xd8\xb7\xd8\xa7", 4000},
	    {"{\"return\": 499}", CHAN_PERMFAIL, "kavenegar 499: \xd8\xae\xd8\xb7\xd8\xa7", 0},
	    {"{\"http\": 502, \"body\": \"<html>Bad Gateway</html>\"}", CHAN_TEMPFAIL,
	     "kavenegar http 502: <html>Bad Gateway</html>", 0},
	    {"{\"http\": 200, \"body\": \"garbage\"}", CHAN_TEMPFAIL,
	     "kavenegar http 200: unreadable answer", 0},
	    {"{\"http\": 404, \"body\": \"not here\"}", CHAN_PERMFAIL,
	     "kavenegar http 404: not here", 0},
	    {"{\"http\": 429, \"body\": \"\", \"retry_after\": \"9\"}", CHAN_TEMPFAIL,
	     "kavenegar http 429", 9000},
	    {"{\"return\": 200, \"entry_status\": 14}", CHAN_PERMFAIL,
	     "kavenegar entry status 14: blocked", 0},
	    {"{\"return\": 200, \"entry_status\": 6}", CHAN_PERMFAIL,
	     "kavenegar entry status 6: failed", 0},
	    {"{\"return\": 200, \"entry_status\": 5}", CHAN_OK, "", 0},
	};
	/* one run, each receptor scripted differently (concurrent sends) */
	struct kcase k = {.extra = "sender = 10004346\nprice_per_segment = 100\n",
	                  .n = (int)ARRAY_SIZE(want)};
	static char to[MAXN][20];
	assert_true(ARRAY_SIZE(want) <= MAXN);
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		snprintf(to[i], sizeof to[i], "+9891200001%02zu", i);
		char ctl[256];
		snprintf(ctl, sizeof ctl, "{\"receptor\": \"%s\", \"answers\": [%s]}", to[i] + 1,
		         want[i].script);
		tl_fake_control(fx.port, "number", ctl);
		k.to[i] = to[i];
	}
	kv_run(&k);
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		struct chan_result *r = &k.s[i].r;
		if (r->status != want[i].st || strcmp(r->reason, want[i].reason) != 0)
			fail_msg("answer %zu (%s): status %d reason '%s', want %d '%s'", i,
			         want[i].script, r->status, r->reason, want[i].st, want[i].reason);
		assert_int_equal(r->retry_after_ms, want[i].retry);
		assert_int_equal(r->revoke_consent, 0);
		if (r->status == CHAN_OK) {
			assert_int_equal(r->segments, 1);
			assert_int_equal(r->cost_micros, 100000000);
			assert_true(strlen(r->provider_id) > 0);
		} else {
			assert_int_equal(r->segments, 0);
			assert_int_equal(r->cost_micros, 0);
		}
	}

	/* the fake's own checks: a receptor it does not accept, an unknown line */
	struct kcase v = {.n = 2, .to = {"+15558675310", NULL}};
	kv_run(&v);
	assert_int_equal(v.s[0].r.status, CHAN_PERMFAIL);
	assert_string_equal(v.s[0].r.reason, "kavenegar 411: invalid receptor");
	struct kcase l = {.extra = "sender = 30001234\n"};
	kv_run(&l);
	assert_int_equal(l.s[0].r.status, CHAN_PERMFAIL);
	assert_string_equal(l.s[0].r.reason, "kavenegar 412: invalid sender line");

	/* the wrong key: 403 from the fake */
	struct kcase b = {.key = fx.bad_secret_path};
	kv_run(&b);
	assert_int_equal(b.s[0].r.status, CHAN_PERMFAIL);
	assert_string_equal(b.s[0].r.reason,
	                    "kavenegar 403: authentication failed (invalid API key)");

	/* real credit running out, then topped up */
	tl_fake_control(fx.port, "credit", "{\"credit\": 100}");
	struct chan_result r = one(NULL);
	assert_int_equal(r.status, CHAN_TEMPFAIL);
	assert_string_equal(r.reason, "kavenegar 418: insufficient credit");
	tl_fake_control(fx.port, "credit", "{\"credit\": 1000000000}");
	r = one(NULL);
	assert_int_equal(r.status, CHAN_OK);

	/* an answer echoing the key, raw, percent-encoded and in Base64 */
	char script[512];
	snprintf(script, sizeof script,
	         "[{\"http\": 500, \"body\": \"no route for /v1/%s/ (%s, %s)\"}]", KEY, KEY_PCT,
	         KEY_B64);
	r = one(script);
	assert_int_equal(r.status, CHAN_TEMPFAIL);
	assert_string_equal(r.reason, "kavenegar http 500: no route for /v1/***/ (***, ***)");
}

static void test_timeout_and_refused(void **state)
{
	(void)state;
	tl_fake_control(fx.port, "script", "[{\"return\": 200, \"delay_ms\": 3000}]");
	struct kcase t = {.timeout = "300ms"};
	kv_run(&t);
	assert_int_equal(t.s[0].r.status, CHAN_TEMPFAIL);
	assert_string_equal(t.s[0].r.reason, "timeout");

	int fd;
	int port = tl_bound_port(&fd);
	struct kcase k = {.port = port};
	kv_run(&k);
	assert_int_equal(k.s[0].r.status, CHAN_TEMPFAIL);
	assert_memory_equal(k.s[0].r.reason, "connect: ", 9);
	assert_null(strstr(k.s[0].r.reason, "send.json")); /* no URL in reasons */

	/* polls too */
	struct rig g;
	rig_open(&g, NULL, NULL, port, NULL);
	const char *ids[] = {"01HZX3J5Q8K9V2M4N6P7R8S9T0"};
	struct pollctx *p = xcalloc(1, sizeof *p);
	poll_ids(&g, ids, 1, p);
	assert_int_equal(p->err, -ECONNREFUSED);
	rig_close(&g);
	close(fd);

	tl_fake_control(fx.port, "script", "[{\"return\": 200, \"delay_ms\": 3000}]");
	rig_open(&g, NULL, NULL, 0, "300ms");
	poll_ids(&g, ids, 1, p);
	assert_int_equal(p->err, -ETIMEDOUT);
	rig_close(&g);
	free(p);
}

static void test_refused_before_sending(void **state)
{
	(void)state;
	size_t before = tl_count_jsonl(fx.log_path);
	char *fa71 = xmalloc(71 * 2 + 1);
	for (int i = 0; i < 71; i++)
		memcpy(fa71 + 2 * i, "\xd8\xb3", 2);
	fa71[142] = '\0';
	struct kcase k = {
	    .extra = "max_segments = 1\n",
	    .n = 5,
	    .to = {NULL, "+98 912 123 4567", "989121234567,989121234568", NULL, NULL},
	    .text = {fa71, "hi", "hi", "", "bad \xc3\x28 utf8"},
	};
	kv_run(&k);
	assert_int_equal(k.s[0].r.status, CHAN_PERMFAIL);
	assert_string_equal(k.s[0].r.reason, "too long: 2 segments > max 1");
	for (int i = 1; i < 3; i++) {
		assert_int_equal(k.s[i].r.status, CHAN_PERMFAIL);
		assert_memory_equal(k.s[i].r.reason, "invalid recipient", 17);
	}
	assert_string_equal(k.s[3].r.reason, "empty text");
	assert_string_equal(k.s[4].r.reason, "text is not valid UTF-8");
	assert_int_equal(tl_count_jsonl(fx.log_path), before); /* nothing reached the provider */
	free(fa71);

	/* the default maximum is 10 segments */
	char *fa = xmalloc(67 * 11 * 2 + 1);
	for (int i = 0; i < 67 * 11; i++)
		memcpy(fa + 2 * i, "\xd8\xb3", 2);
	fa[67 * 11 * 2] = '\0';
	struct kcase d = {.text = {fa}};
	kv_run(&d);
	assert_int_equal(d.s[0].r.status, CHAN_PERMFAIL);
	assert_string_equal(d.s[0].r.reason, "too long: 11 segments > max 10");
	free(fa);
}

static void test_status_polling(void **state)
{
	(void)state;
	/* the final status each receptor's messages will report */
	static const struct {
		const char *to;
		int dlr;
	} rcpt[] = {
	    {"989120000201", 10}, {"989120000202", 11}, {"989120000203", 4},
	    {"989120000204", 14}, {"989120000205", 6},  {"989120000206", 13},
	    {"989120000207", 1},  {"989120000208", 2},  {"989120000209", 5},
	};
	static const struct {
		enum kavenegar_state st;
		int blocked;
	} want[] = {
	    {KAVENEGAR_DELIVERED, 0},   {KAVENEGAR_UNDELIVERED, 0}, {KAVENEGAR_PENDING, 0},
	    {KAVENEGAR_UNDELIVERED, 1}, {KAVENEGAR_UNDELIVERED, 0}, {KAVENEGAR_UNDELIVERED, 0},
	    {KAVENEGAR_PENDING, 0},     {KAVENEGAR_PENDING, 0},     {KAVENEGAR_PENDING, 0},
	};
	size_t nr = ARRAY_SIZE(rcpt);
	static char plus[ARRAY_SIZE(rcpt)][20];
	struct kcase k = {.n = (int)nr};
	for (size_t i = 0; i < nr; i++) {
		char ctl[128];
		snprintf(ctl, sizeof ctl, "{\"receptor\": \"%s\", \"dlr\": %d}", rcpt[i].to,
		         rcpt[i].dlr);
		tl_fake_control(fx.port, "number", ctl);
		snprintf(plus[i], sizeof plus[i], "+%s", rcpt[i].to);
		k.to[i] = plus[i];
	}
	struct rig g;
	rig_open(&g, NULL, NULL, 0, NULL);
	send_all(&g, &k);
	for (size_t i = 0; i < nr; i++)
		assert_int_equal(k.s[i].r.status, CHAN_OK);

	/* every sent message, one never sent, and the first one again */
	const char *ids[ARRAY_SIZE(rcpt) + 2];
	for (size_t i = 0; i < nr; i++)
		ids[i] = k.s[i].id;
	ids[nr] = "01HZX3J5Q8K9V2M4N6P7R8S9T0";
	ids[nr + 1] = k.s[0].id;
	size_t before = tl_count_jsonl(fx.log_path);
	struct pollctx *p = xcalloc(1, sizeof *p);
	poll_ids(&g, ids, nr + 2, p);
	assert_int_equal(p->err, 0);
	assert_int_equal(p->n, nr + 2);
	for (size_t i = 0; i < nr; i++) {
		struct kavenegar_status *s = &p->st[i];
		assert_ptr_equal(s->msg_id, ids[i]); /* the caller's string, in order */
		char lid[KAVENEGAR_LOCALID_LEN];
		kavenegar_localid(ids[i], lid);
		assert_string_equal(s->localid, lid);
		assert_int_equal(s->code, rcpt[i].dlr);
		if (s->state != want[i].st)
			fail_msg("%s: state %s, want %s", rcpt[i].to,
			         kavenegar_state_name(s->state), kavenegar_state_name(want[i].st));
		assert_int_equal(s->blocked, want[i].blocked);
		assert_string_equal(s->messageid, k.s[i].r.provider_id);
	}
	assert_int_equal(p->st[nr].state, KAVENEGAR_UNKNOWN);
	assert_int_equal(p->st[nr].code, 100);
	assert_string_equal(p->st[nr].messageid, "");
	assert_int_equal(p->st[nr + 1].state, KAVENEGAR_DELIVERED);
	assert_string_equal(p->st[nr + 1].messageid, k.s[0].r.provider_id);

	/* on the wire: one GET, the localids comma-separated in the query */
	json_t *all = tl_read_jsonl(fx.log_path, 0);
	assert_int_equal(json_array_size(all), before + 1);
	json_t *rec = json_array_get(all, before);
	assert_string_equal(tl_jreq(rec, "method"), "GET");
	assert_string_equal(tl_jreq(rec, "raw_path"), "/v1/***/sms/statuslocalmessageid.json");
	struct buf q;
	buf_init(&q, 0);
	buf_puts(&q, "localid=");
	for (size_t i = 0; i < nr + 2; i++)
		buf_printf(&q, "%s%s", i ? "," : "", p->st[i].localid);
	assert_string_equal(tl_jreq(rec, "raw_query"), q.p);
	buf_free(&q);
	json_decref(all);

	/* 500 ids in one call; 501 refused before any request */
	static char many[KAVENEGAR_STATUS_MAX + 1][ID_LEN + 1];
	const char *mids[KAVENEGAR_STATUS_MAX + 1];
	for (size_t i = 0; i <= KAVENEGAR_STATUS_MAX; i++) {
		snprintf(many[i], sizeof many[i], "01HZX3J5Q8K9V2M4N6P7R%05zu", i);
		mids[i] = many[i];
	}
	poll_ids(&g, mids, KAVENEGAR_STATUS_MAX, p);
	assert_int_equal(p->err, 0);
	assert_int_equal(p->n, KAVENEGAR_STATUS_MAX);
	for (size_t i = 0; i < KAVENEGAR_STATUS_MAX; i++)
		assert_int_equal(p->st[i].code, 100);
	assert_int_equal(
	    kavenegar_status_by_localid(g.c, mids, KAVENEGAR_STATUS_MAX + 1, on_poll, p), -E2BIG);
	assert_int_equal(kavenegar_status_by_localid(g.c, mids, 0, on_poll, p), -EINVAL);
	const char *with_null[] = {"a", NULL};
	assert_int_equal(kavenegar_status_by_localid(g.c, with_null, 2, on_poll, p), -EINVAL);

	/* provider-side refusals and garbage */
	static const struct {
		const char *script;
		int err;
	} fails[] = {
	    {"[{\"return\": 409}]", -EAGAIN},
	    {"[{\"return\": 418}]", -EAGAIN},
	    {"[{\"return\": 451}]", -EAGAIN},
	    {"[{\"return\": 401}]", -EACCES},
	    {"[{\"return\": 407}]", -EACCES},
	    {"[{\"return\": 414}]", -EINVAL},
	    {"[{\"return\": 400}]", -EINVAL},
	    {"[{\"http\": 200, \"body\": \"x\"}]", -EPROTO},
	    {"[{\"http\": 502, \"body\": \"\"}]", -EAGAIN},
	    {"[{\"http\": 403, \"body\": \"forbidden\"}]", -EACCES},
	};
	for (size_t i = 0; i < ARRAY_SIZE(fails); i++) {
		tl_fake_control(fx.port, "script", fails[i].script);
		poll_ids(&g, ids, 2, p);
		if (p->err != fails[i].err)
			fail_msg("%s: err %d, want %d", fails[i].script, p->err, fails[i].err);
	}
	rig_close(&g);

	/* the wrong key */
	rig_open(&g, NULL, fx.bad_secret_path, 0, NULL);
	poll_ids(&g, ids, 2, p);
	assert_int_equal(p->err, -EACCES);
	rig_close(&g);
	free(p);
}

static void test_poll_arguments(void **state)
{
	(void)state;
	const char *ids[] = {"01HZX3J5Q8K9V2M4N6P7R8S9T0"};
	struct pollctx p;
	memset(&p, 0, sizeof p);
	/* configured, not started */
	char conf[1024];
	snprintf(conf, sizeof conf, "[channel.sms]\ndriver = kavenegar\napi_key_file = %s\n",
	         fx.secret_path);
	struct cfg_error err;
	struct config *cfg = load_cfg(conf, &err);
	if (!cfg)
		fail_msg("%s", err.msg);
	struct chan *c = sms_chan(cfg, &err);
	if (!c)
		fail_msg("%s", err.msg);
	assert_int_equal(kavenegar_status_by_localid(c, ids, 1, on_poll, &p), -ESHUTDOWN);
	/* not a kavenegar channel */
	struct chan other = *c;
	other.drv = &chan_sms_twilio_driver;
	assert_int_equal(kavenegar_status_by_localid(&other, ids, 1, on_poll, &p), -EINVAL);
	assert_int_equal(kavenegar_status_by_localid(NULL, ids, 1, on_poll, &p), -EINVAL);
	assert_int_equal(kavenegar_status_by_localid(c, ids, 1, NULL, &p), -EINVAL);
	assert_int_equal(p.done, 0);
	chan_free_all(c, 1);
	config_free(cfg);
}

static void test_stop_waits_for_inflight(void **state)
{
	(void)state;
	/* a slow send and a slow poll in flight when the channel stops */
	tl_fake_control(fx.port, "script",
	                "[{\"return\": 200, \"delay_ms\": 300}, "
	                "{\"return\": 200, \"delay_ms\": 300}]");
	struct rig g;
	rig_open(&g, NULL, NULL, 0, "10s");
	int ndone = 0;
	struct tl_send s[2];
	tl_send_init(&s[0], &ndone, "sms", "+989121234567", "slow");
	tl_send_init(&s[1], &ndone, "sms", "+98", "bad recipient, reported later");
	assert_int_equal(chan_send(g.c, &s[0].m, tl_send_done, &s[0]), 0);
	assert_int_equal(chan_send(g.c, &s[1].m, tl_send_done, &s[1]), 0);
	const char *ids[] = {s[0].id};
	struct pollctx *p = xcalloc(1, sizeof *p);
	assert_int_equal(kavenegar_status_by_localid(g.c, ids, 1, on_poll, p), 0);
	int st = 0;
	chan_stop_all(g.c, 1, tl_on_count, &st);
	assert_int_equal(ndone, 0);
	/* stopping: no new poll */
	struct pollctx late;
	memset(&late, 0, sizeof late);
	assert_int_equal(kavenegar_status_by_localid(g.c, ids, 1, on_poll, &late), -ESHUTDOWN);
	tl_run_until(&g.loop, &st, 1);
	assert_int_equal(ndone, 2); /* all reported before the channel stopped */
	assert_int_equal(p->done, 1);
	assert_int_equal(p->err, 0);
	assert_int_equal(s[0].r.status, CHAN_OK);
	assert_int_equal(s[1].r.status, CHAN_PERMFAIL);
	chan_free_all(g.c, 1);
	assert_int_equal(tl_loop_finish(&g.loop), 0);
	config_free(g.cfg);
	free(p);
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
	int lines = 0, auth_warnings = 0, credit_warnings = 0;
	char hostport[64];
	snprintf(hostport, sizeof hostport, "127.0.0.1:%d/", fx.port);
	while (getline(&line, &cap, f) > 0) {
		lines++;
		assert_no_secret(line);
		if (strstr(line, "send.json") || strstr(line, "statuslocalmessageid") ||
		    strstr(line, hostport))
			fail_msg("a URL was logged: %s", line);
		if (strstr(line, "Hello from the club") || strstr(line, fa_salam))
			fail_msg("message text was logged: %s", line);
		if (strstr(line, "driver=kavenegar") && strstr(line, "credentials"))
			auth_warnings++;
		if (strstr(line, "driver=kavenegar") && strstr(line, "insufficient credit"))
			credit_warnings++;
	}
	free(line);
	fclose(f);
	assert_true(lines > 10); /* the capture worked */
	assert_true(auth_warnings >= 1);
	assert_true(credit_warnings >= 1);
}

/* ---- setup ------------------------------------------------------------------- */

static int group_setup(void **state)
{
	*state = &fx; /* for tl_fixture_group_teardown */
	if (tl_fixture_setup(&fx, "kavenegar", "kavenegar-key", KEY, "wrong-key",
	                     "0000000000000000\n") < 0)
		return -1;
	const char *args[] = {"--key",      KEY,     "--line",    "10004346", "--line",
	                      "2000660110", "--log", fx.log_path, NULL};
	if (tl_fixture_start_fake(&fx, "kavenegar.py", args) < 0)
		return -1;
	/* every log line of the run goes to a file the last test scans */
	return tl_fixture_capture_log(&fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_localid),
	    cmocka_unit_test(test_request_encoding),
	    cmocka_unit_test(test_same_localid_sends_once),
	    cmocka_unit_test(test_answers),
	    cmocka_unit_test(test_timeout_and_refused),
	    cmocka_unit_test(test_refused_before_sending),
	    cmocka_unit_test(test_status_polling),
	    cmocka_unit_test(test_poll_arguments),
	    cmocka_unit_test(test_stop_waits_for_inflight),
	    cmocka_unit_test(test_no_secret_in_logs),
	};
	return cmocka_run_group_tests(tests, group_setup, tl_fixture_group_teardown);
}
