/*
 * test_sms_generic.c - the "generic_http" driver on a real libuv loop
 * against tests/fakes/generic_sms.py (a fake local provider with JSON, form,
 * GET and XML APIs that records every request): template compilation and
 * its config errors (file:line:key), the url / json / xml / base64 / raw
 * filters as the provider decodes them (Persian, quotes, backslashes, line
 * ends, '&' and '<'), GET / POST / PUT, headers, the success rule (status
 * lists, JSON pointer and value), provider ids, TEMPFAIL / PERMFAIL mapping
 * with Retry-After, short sanitized excerpts that never carry the secret,
 * segments, cost and max_segments.  Every test ends with uv_loop_close()
 * == 0; no assertion depends on elapsed time.
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

#include "channel.h"
#include "config.h"
#include "log.h"
#include "sms_drivers.h"
#include "sms_segments.h"
#include "testlib.h"
#include "util.h"

/* The API key: characters that need percent-encoding in a query or form. */
static const char KEY[] = "k3y/with+plus=&";
static const char KEY_PCT[] = "k3y%2Fwith%2Bplus%3D%26";

static struct tl_fixture fx;

static const char fa_text[] = TL_FA_TEXT;
static const char fa_salam[] = TL_FA_SALAM;
static const char fa_salam_pct[] = TL_FA_SALAM_PCT;
static const char tricky[] = "He said \"hi\" \\ back\nline2\ttab & <b>x</b> 'q' 100%";

/* ---- helpers ------------------------------------------------------------- */

static struct config *load_cfg(const char *text, struct cfg_error *err)
{
	return tl_load_config(fx.dir, "generic.conf", text, err);
}

/* Configure [channel.sms] with the driver under test, as channel.c does. */
static struct chan *sms_chan(const struct config *cfg, struct cfg_error *err)
{
	return tl_chan_configure(cfg, "sms", &chan_sms_generic_driver, err);
}

/* The record whose body, query or headers carry message id. */
static json_t *record_for(json_t *all, const char *id)
{
	size_t i;
	json_t *r;
	json_array_foreach(all, i, r)
	{
		char *dump = json_dumps(r, 0);
		int hit = dump && strstr(dump, id);
		free(dump);
		if (hit)
			return r;
	}
	fail_msg("no request recorded for message %s", id);
	return NULL;
}

/* ---- running sends ------------------------------------------------------------ */

struct gcase {
	const char *lines; /* the driver's config lines; "@PORT@" becomes the fake's port */
	const char *key;   /* secret file, NULL: the right key, "" : none */
	const char *timeout;
	int n;
	const char *to[8];
	const char *text[8];
	struct tl_send s[8];
};

static void gen_run(struct gcase *k)
{
	char port[16], conf[8192];
	snprintf(port, sizeof port, "%d", fx.port);
	struct buf lines;
	buf_init(&lines, 0);
	for (const char *p = k->lines; *p;) {
		const char *at = strstr(p, "@PORT@");
		if (!at) {
			buf_puts(&lines, p);
			break;
		}
		buf_append(&lines, p, (size_t)(at - p));
		buf_puts(&lines, port);
		p = at + 6;
	}
	char secret[400] = "";
	if (!k->key || *k->key)
		snprintf(secret, sizeof secret, "secret_file = %s\n",
		         k->key ? k->key : fx.secret_path);
	snprintf(conf, sizeof conf,
	         "[channel.sms]\ndriver = generic_http\ntimeout = %s\nmax_inflight = 16\n%s%s",
	         k->timeout ? k->timeout : "2s", secret, lines.p);
	buf_free(&lines);
	int n = tl_sms_run(fx.dir, "generic.conf", conf, &chan_sms_generic_driver, k->s, k->n,
	                   k->to, k->text);
	for (int i = 0; i < n; i++) {
		assert_null(strstr(k->s[i].r.reason, KEY));
		assert_null(strstr(k->s[i].r.reason, KEY_PCT));
		assert_null(strstr(k->s[i].r.reason, "not-the-key"));
	}
}

static const char json_api[] =
    "url = http://127.0.0.1:@PORT@/json/send\n"
    "body = {\"to\":\"{{to_plus}}\",\"text\":\"{{text}}\",\"from\":\"{{sender}}\","
    "\"id\":\"{{id|json}}\",\"coding\":{{coding}}}\n"
    "content_type = application/json; charset=utf-8\n"
    "header_1 = Authorization: Bearer {{secret}}\n"
    "header_2 = X-Text-B64: {{text|base64}}\n"
    "header_3 = X-Coding: {{coding}}\n"
    "header_4 = X-Sender: {{sender}}\n"
    "sender = Club Shop\n"
    "success_json_pointer = /status\n"
    "success_value = 0\n"
    "provider_id_pointer = /message_id\n"
    "price_per_segment = 0.005\n";

/* One send to the JSON API with one scripted answer. */
static struct chan_result one(const char *more, const char *script)
{
	if (script)
		tl_fake_control(fx.port, "script", script);
	char lines[4096];
	snprintf(lines, sizeof lines, "%s%s", json_api, more ? more : "");
	struct gcase k = {.lines = lines};
	gen_run(&k);
	return k.s[0].r;
}

static void b64_check(const char *b64, const char *want)
{
	size_t n = strlen(b64);
	unsigned char *out = xmalloc(n + 1);
	int l = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
	assert_true(l >= 0);
	if (n >= 1 && b64[n - 1] == '=')
		l--;
	if (n >= 2 && b64[n - 2] == '=')
		l--;
	assert_int_equal((size_t)l, strlen(want));
	assert_memory_equal(out, want, (size_t)l);
	free(out);
}

/* ---- tests --------------------------------------------------------------------- */

static void expect_cfg_error(const char *lines, const char *want)
{
	char conf[4096];
	snprintf(conf, sizeof conf, "[channel.sms]\ndriver = generic_http\n%s", lines);
	struct cfg_error err;
	struct config *cfg = load_cfg(conf, &err);
	if (!cfg)
		fail_msg("config_load failed: %s", err.msg);
	memset(&err, 0, sizeof err);
	assert_null(sms_chan(cfg, &err));
	if (!strstr(err.msg, want))
		fail_msg("error '%s' does not contain '%s'", err.msg, want);
	assert_null(strstr(err.msg, "hunter2")); /* templates and secrets are never echoed */
	assert_null(strstr(err.msg, KEY));
	config_free(cfg);
}

static void test_config_errors(void **state)
{
	(void)state;
	char sf[400];
	snprintf(sf, sizeof sf, "secret_file = %s\n", fx.secret_path);
	const char *U = "url = https://sms.example/api/hunter2/send?to={{to}}&text={{text}}\n";
	char t[4096];
	struct {
		const char *lines, *want;
	} bad[] = {
	    {"", "channel.sms.url: is required"},
	    {"url = ftp://h/{{to}}{{text}}\n", ":3: channel.sms.url: must start with http://"},
	    {"url = {{to}}{{text}}\n", ":3: channel.sms.url: must start with http://"},
	    {"url = https://h/?a={{to}}&b={{phone}}{{text}}\n",
	     ":3: channel.sms.url: unknown placeholder {{phone}}"},
	    {"url = https://h/?a={{to|html}}{{text}}\n",
	     ":3: channel.sms.url: unknown filter |html in {{to}}"},
	    {"url = https://h/?a={{to}}{{text\n", ":3: channel.sms.url: '{{' without a closing"},
	    {"url = https://h/?a={{t o}}\n", ":3: channel.sms.url: invalid placeholder"},
	    {"url = https://h/?to={{to}}&text={{text|raw}}\n",
	     ":3: channel.sms.url: {{text|raw}} cannot go into a URL"},
	    {"url = https://h/?to={{to}}\n", "channel.sms: no template (url, body, header_N) uses "
	                                     "{{text}}"},
	    {"url = https://h/?t={{text}}\n", "uses {{to}} or {{to_plus}}"},
	    {"url = https://h/?to={{to}}&t={{text}}&k={{secret}}\n",
	     "channel.sms.secret_file: is required: a template uses {{secret}}"},
	    {"url = https://h/?to={{to}}&t={{text}}&f={{sender}}\n",
	     "channel.sms.sender: is required: a template uses {{sender}}"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		expect_cfg_error(bad[i].lines, bad[i].want);

	struct {
		const char *lines, *want;
	} bad2[] = {
	    {"method = DELETE\n", ":4: channel.sms.method: must be GET, POST or PUT"},
	    {"body = {{text}}\n", "channel.sms.content_type: is required with body"},
	    {"body = {{text}}\nmethod = GET\ncontent_type = text/plain\n",
	     ":4: channel.sms.body: needs method POST or PUT"},
	    {"content_type = text/plain\n", ":4: channel.sms.content_type: is only used with body"},
	    {"body = {\"t\":\"{{text|jsn}}\"}\ncontent_type = application/json\n",
	     ":4: channel.sms.body: unknown filter |jsn in {{text}}"},
	    {"header_1 = X-Text: {{text}}\n",
	     ":4: channel.sms.header_1: {{text}} in a header needs"},
	    {"header_2 = X-Text: {{text|raw}}\n", ":4: channel.sms.header_2: {{text}} in a header"},
	    {"header_3 = no colon here\n", ":4: channel.sms.header_3: must be \"Name: value\""},
	    {"header_4 = Bad Name: x\n", ":4: channel.sms.header_4: must be \"Name: value\""},
	    {"header_5 = Content-Length: 5\n",
	     ":4: channel.sms.header_5: Content-Length is set by"},
	    {"header_6 = X-Id: {{idd}}\n", ":4: channel.sms.header_6: unknown placeholder {{idd}}"},
	    {"header_9 = X-A: b\n", ":4: channel.sms.header_9: unknown key"},
	    {"success_status = 2xx\n", ":4: channel.sms.success_status: must be a comma list"},
	    {"success_status = 299-200\n", ":4: channel.sms.success_status:"},
	    {"success_status = 200,600\n", ":4: channel.sms.success_status:"},
	    {"tempfail_status = 200\n", ":4: channel.sms.tempfail_status: overlaps success_status "
	                                "(200)"},
	    {"tempfail_status = \n", ":4: channel.sms.tempfail_status:"},
	    {"success_json_pointer = status\n", ":4: channel.sms.success_json_pointer: must be an "
	                                        "RFC 6901"},
	    {"success_json_pointer = /a~2b\n", ":4: channel.sms.success_json_pointer:"},
	    {"success_value = 0\n", ":4: channel.sms.success_value: needs success_json_pointer"},
	    {"provider_id_pointer = id\n", ":4: channel.sms.provider_id_pointer:"},
	    {"coding_values = 0\n", ":4: channel.sms.coding_values: must be two values"},
	    {"coding_values = 0,2,8\n", ":4: channel.sms.coding_values:"},
	    {"max_segments = 300\n", ":4: channel.sms.max_segments:"},
	    {"max_host_connections = 0\n", ":4: channel.sms.max_host_connections:"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad2); i++) {
		snprintf(t, sizeof t, "%s%s", U, bad2[i].lines);
		expect_cfg_error(t, bad2[i].want);
	}
	/* a secret nobody uses is a mistake worth naming */
	snprintf(t, sizeof t, "%s%s", U, sf);
	expect_cfg_error(t, ":4: channel.sms.secret_file: is set but no template uses {{secret}}");

	/* every key, valid, with spaces inside placeholders */
	snprintf(t, sizeof t,
	         "[channel.sms]\ndriver = generic_http\n%s"
	         "url = https://sms.example/v1/send?k={{ secret }}\nmethod = put\n"
	         "body = <sms to=\"{{to_plus}}\" c=\"{{coding}}\">{{ text | xml }}</sms>\n"
	         "content_type = application/xml\nheader_1 = X-Id: {{id}}\n"
	         "header_8 = X-Coding: {{coding}}\nsender = 1000\nprice_per_segment = 0.001\n"
	         "max_segments = 4\nsuccess_status = 200,202-204\ntempfail_status = 429,5xx\n",
	         sf);
	struct cfg_error err;
	struct config *cfg = load_cfg(t, &err);
	assert_non_null(cfg);
	assert_null(sms_chan(cfg, &err)); /* 5xx is not a code */
	assert_non_null(strstr(err.msg, "channel.sms.tempfail_status"));
	config_free(cfg);
	char *five = strstr(t, "5xx");
	memcpy(five, "503", 3);
	cfg = load_cfg(t, &err);
	assert_non_null(cfg);
	struct chan *c = sms_chan(cfg, &err);
	if (!c)
		fail_msg("%s", err.msg);
	chan_free_all(c, 1);
	config_free(cfg);
}

static void test_json_api(void **state)
{
	(void)state;
	size_t before = tl_count_jsonl(fx.log_path);
	struct gcase k = {
	    .lines = json_api,
	    .n = 4,
	    .to = {NULL, "989121234567", NULL, NULL},
	    .text = {fa_text, tricky, "\xf0\x9f\x8e\x89 party", "Hi"},
	};
	gen_run(&k);
	int seg[] = {2, 1, 1, 1};
	for (int i = 0; i < 4; i++) {
		if (k.s[i].r.status != CHAN_OK)
			fail_msg("send %d: %s", i, k.s[i].r.reason);
		assert_memory_equal(k.s[i].r.provider_id, "gm-", 3);
		assert_int_equal(k.s[i].r.segments, seg[i]);
		assert_int_equal(k.s[i].r.cost_micros, 5000 * seg[i]);
	}
	json_t *all = tl_read_jsonl(fx.log_path, 0);
	assert_int_equal(json_array_size(all), before + 4);
	for (int i = 0; i < 4; i++) {
		json_t *r = record_for(all, k.s[i].id);
		json_t *j = json_object_get(r, "json");
		json_t *h = json_object_get(r, "headers");
		assert_string_equal(tl_jstr(r, "method"), "POST");
		assert_true(json_is_true(json_object_get(r, "key_ok")));
		assert_non_null(j); /* the body parsed as JSON at the provider */
		assert_string_equal(tl_jstr(j, "to"), "+989121234567");
		assert_string_equal(tl_jstr(j, "text"), k.text[i]);
		assert_string_equal(tl_jstr(j, "from"), "Club Shop");
		assert_string_equal(tl_jstr(j, "id"), k.s[i].id);
		/* tricky has a TAB: not GSM */
		assert_int_equal(json_integer_value(json_object_get(j, "coding")), i < 3 ? 2 : 0);
		assert_string_equal(tl_jstr(h, "content-type"), "application/json; charset=utf-8");
		assert_string_equal(tl_jstr(h, "x-coding"), i < 3 ? "2" : "0");
		assert_string_equal(tl_jstr(h, "x-sender"), "Club Shop");
		b64_check(tl_jstr(h, "x-text-b64"), k.text[i]);
	}
	json_decref(all);
}

static void test_form_get_xml(void **state)
{
	(void)state;
	/* form POST: url-encoding chosen from the content type */
	size_t before = tl_count_jsonl(fx.log_path);
	struct gcase f = {
	    .lines = "url = http://127.0.0.1:@PORT@/form/send\n"
	             "body = key={{secret}}&to={{to}}&text={{text}}&from={{sender}}\n"
	             "content_type = application/x-www-form-urlencoded\nsender = Club & Co\n",
	    .n = 2,
	    .text = {fa_salam, tricky},
	};
	gen_run(&f);
	json_t *all = tl_read_jsonl(fx.log_path, 0);
	assert_int_equal(json_array_size(all), before + 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(f.s[i].r.status, CHAN_OK);
		assert_string_equal(f.s[i].r.provider_id, ""); /* no provider_id_pointer */
		json_t *r = json_array_get(all, before + (size_t)i);
		json_t *form = json_object_get(r, "form");
		const char *txt = tl_jstr(form, "text");
		assert_non_null(txt);
		int which = strcmp(txt, fa_salam) == 0 ? 0 : 1;
		assert_string_equal(txt, f.text[which]);
		assert_string_equal(tl_jstr(form, "to"), "989121234567");
		assert_string_equal(tl_jstr(form, "from"), "Club & Co");
		assert_true(json_is_true(json_object_get(r, "key_ok")));
		char want[128];
		snprintf(want, sizeof want, "key=%s&to=989121234567&text=", KEY_PCT);
		assert_memory_equal(tl_jstr(r, "body"), want, strlen(want));
		if (which == 0) {
			snprintf(want, sizeof want, "&text=%s&from=Club%%20%%26%%20Co",
			         fa_salam_pct);
			assert_non_null(strstr(tl_jstr(r, "body"), want));
		}
	}
	json_decref(all);

	/* GET: everything in the query, success read from JSON, numeric id */
	const char *get_api = "url = http://127.0.0.1:@PORT@/get/send?key={{secret}}&to={{to_plus}}"
	                      "&text={{text}}&c={{coding}}\n"
	                      "success_json_pointer = /ok\nsuccess_value = true\n"
	                      "provider_id_pointer = /id\ncoding_values = gsm,ucs2\n";
	before = tl_count_jsonl(fx.log_path);
	struct gcase g = {.lines = get_api, .text = {fa_text}};
	gen_run(&g);
	assert_int_equal(g.s[0].r.status, CHAN_OK);
	assert_true(g.s[0].r.provider_id[0] >= '1' && g.s[0].r.provider_id[0] <= '9');
	all = tl_read_jsonl(fx.log_path, 0);
	json_t *r = json_array_get(all, before);
	json_t *q = json_object_get(r, "query");
	assert_string_equal(tl_jstr(r, "method"), "GET");
	assert_string_equal(tl_jstr(q, "to"), "+989121234567");
	assert_string_equal(tl_jstr(q, "text"), fa_text);
	assert_string_equal(tl_jstr(q, "c"), "ucs2");
	assert_string_equal(tl_jstr(q, "key"), KEY);
	assert_string_equal(tl_jstr(r, "body"), "");
	json_decref(all);

	/* the provider says no inside a 200: PERMFAIL, the echoed key redacted */
	char bad[400];
	snprintf(bad, sizeof bad, "%s", fx.bad_secret_path);
	struct gcase gb = {.lines = get_api, .key = bad};
	gen_run(&gb);
	assert_int_equal(gb.s[0].r.status, CHAN_PERMFAIL);
	assert_string_equal(gb.s[0].r.reason,
	                    "http 200: {\"ok\": false, \"error\": \"bad key ***\"}");

	/* XML with PUT: the xml filter chosen from the content type */
	before = tl_count_jsonl(fx.log_path);
	struct gcase x = {
	    .lines = "url = http://127.0.0.1:@PORT@/xml/send\nmethod = PUT\n"
	             "body = <sms><to>{{to}}</to><text>{{text}}</text><key>{{secret}}</key>"
	             "<c>{{coding}}</c></sms>\n"
	             "content_type = application/xml\n",
	    .text = {tricky},
	};
	gen_run(&x);
	assert_int_equal(x.s[0].r.status, CHAN_OK);
	all = tl_read_jsonl(fx.log_path, 0);
	r = json_array_get(all, before);
	json_t *xml = json_object_get(r, "xml");
	assert_string_equal(tl_jstr(r, "method"), "PUT");
	assert_non_null(xml);
	assert_string_equal(tl_jstr(xml, "text"), tricky);
	assert_string_equal(tl_jstr(xml, "to"), "989121234567");
	assert_string_equal(tl_jstr(xml, "key"), KEY);
	assert_string_equal(tl_jstr(xml, "c"), "2"); /* the TAB makes it UCS-2 */
	json_decref(all);
}

static void test_answers(void **state)
{
	(void)state;
	struct chan_result r;

	r = one(NULL, "[{\"status\": 429, \"body\": \"{\\\"error\\\":\\\"slow down\\\"}\", "
	              "\"headers\": {\"Retry-After\": \"5\"}}]");
	assert_int_equal(r.status, CHAN_TEMPFAIL);
	assert_string_equal(r.reason, "http 429: {\"error\":\"slow down\"}");
	assert_int_equal(r.retry_after_ms, 5000);

	r = one(NULL, "[{\"status\": 503, \"body\": \"\"}]");
	assert_int_equal(r.status, CHAN_TEMPFAIL);
	assert_string_equal(r.reason, "http 503");

	r = one(NULL, "[{\"status\": 302, \"body\": \"moved\", \"headers\": {\"Location\": "
	              "\"http://127.0.0.1:1/\"}}]");
	assert_int_equal(r.status, CHAN_PERMFAIL); /* in neither list, never followed */
	assert_string_equal(r.reason, "http 302: moved");

	r = one(NULL, "[{\"status\": 200, \"body\": \"<html>oops</html>\"}]");
	assert_int_equal(r.status, CHAN_PERMFAIL); /* 200, but not the JSON we wait for */
	assert_string_equal(r.reason, "http 200: <html>oops</html>");

	r = one(NULL, "[{\"status\": 200, \"body\": \"{\\\"status\\\": 5}\"}]");
	assert_int_equal(r.status, CHAN_PERMFAIL);
	assert_string_equal(r.reason, "http 200: {\"status\": 5}");

	r = one(NULL, "[{\"status\": 200, \"body\": \"{\\\"message_id\\\": 77}\"}]");
	assert_int_equal(r.status, CHAN_PERMFAIL); /* the pointer is missing */

	r = one(NULL, "[{\"status\": 201, \"body\": \"{\\\"status\\\": \\\"0\\\", "
	              "\\\"message_id\\\": 77}\"}]");
	assert_int_equal(r.status, CHAN_OK); /* "0" matches 0 as a string too */
	assert_string_equal(r.provider_id, "77");
	assert_int_equal(r.segments, 1);
	assert_int_equal(r.cost_micros, 5000);

	r = one(NULL,
	        "[{\"status\": 404, \"body\": \"not found: "
	        "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
	        "zzzzzzzzzz\\nsecond line\"}]");
	assert_int_equal(r.status, CHAN_PERMFAIL);
	assert_int_equal(strlen(r.reason), strlen("http 404: ") + SMS_EXCERPT_MAX + 3);
	assert_null(strstr(r.reason, "second"));

	/* custom lists */
	r = one("tempfail_status = 400,429,500-599\n", "[{\"status\": 400, \"body\": \"busy\"}]");
	assert_int_equal(r.status, CHAN_TEMPFAIL);
	assert_string_equal(r.reason, "http 400: busy");
	r = one("success_status = 202\n", NULL); /* the fake answers 200 */
	assert_int_equal(r.status, CHAN_PERMFAIL);
	assert_memory_equal(r.reason, "http 200: {\"status\": 0", 22);

	/* no success_value: the pointer must exist and be neither null nor false */
	const char *only_ptr = "url = http://127.0.0.1:@PORT@/get/send?key={{secret}}&to={{to}}"
	                       "&text={{text}}\nsuccess_json_pointer = /id\n";
	tl_fake_control(fx.port, "script", "[{\"status\": 200, \"body\": \"{\\\"id\\\": null}\"}]");
	struct gcase g = {.lines = only_ptr};
	gen_run(&g);
	assert_int_equal(g.s[0].r.status, CHAN_PERMFAIL);
	struct gcase g2 = {.lines = only_ptr};
	gen_run(&g2);
	assert_int_equal(g2.s[0].r.status, CHAN_OK);

	/* the wrong key: the fake echoes it in a 401, the reason redacts it */
	struct gcase w = {.lines = json_api, .key = fx.bad_secret_path};
	gen_run(&w);
	assert_int_equal(w.s[0].r.status, CHAN_PERMFAIL);
	assert_string_equal(w.s[0].r.reason, "http 401: {\"error\": \"invalid api key ***\"}");

	/* transport: a timeout */
	tl_fake_control(fx.port, "script",
	                "[{\"status\": 200, \"body\": \"{}\", \"delay_ms\": 3000}]");
	struct gcase tmo = {.lines = json_api, .timeout = "300ms"};
	gen_run(&tmo);
	assert_int_equal(tmo.s[0].r.status, CHAN_TEMPFAIL);
	assert_string_equal(tmo.s[0].r.reason, "timeout");
}

static void test_refused_before_sending(void **state)
{
	(void)state;
	size_t before = tl_count_jsonl(fx.log_path);
	char *fa71 = xmalloc(71 * 2 + 1);

	for (int i = 0; i < 71; i++)
		memcpy(fa71 + 2 * i, "\xd8\xb3", 2);
	fa71[142] = '\0';
	char lines[4096];
	snprintf(lines, sizeof lines, "%smax_segments = 1\n", json_api);
	struct gcase k = {
	    .lines = lines,
	    .n = 4,
	    .to = {NULL, "tg:12345", "+98912\r\nX: y", NULL},
	    .text = {fa71, "hi", "hi", ""},
	};
	gen_run(&k);
	assert_int_equal(k.s[0].r.status, CHAN_PERMFAIL);
	assert_string_equal(k.s[0].r.reason, "too long: 2 segments > max 1");
	assert_memory_equal(k.s[1].r.reason, "invalid recipient", 17);
	assert_memory_equal(k.s[2].r.reason, "invalid recipient", 17);
	assert_string_equal(k.s[3].r.reason, "empty text");
	for (int i = 0; i < 4; i++)
		assert_int_equal(k.s[i].r.status, CHAN_PERMFAIL);
	assert_int_equal(tl_count_jsonl(fx.log_path), before);
	free(fa71);

	/* a raw sender with a space breaks a URL: refused at send, not sent */
	struct gcase u = {.lines = "url = http://127.0.0.1:@PORT@/get/send?key={{secret}}"
	                           "&to={{to}}&text={{text}}&f={{sender|raw}}\nsender = A B\n"};
	gen_run(&u);
	assert_int_equal(u.s[0].r.status, CHAN_PERMFAIL);
	assert_memory_equal(u.s[0].r.reason, "url would contain white space", 29);
	assert_int_equal(tl_count_jsonl(fx.log_path), before);
}

/* ---- setup ------------------------------------------------------------------- */

static int group_setup(void **state)
{
	*state = &fx; /* for tl_fixture_group_teardown */
	log_setup(LOG_ERR, LOG_FMT_KV);
	if (tl_fixture_setup(&fx, "generic", "api-key", KEY, "wrong-key", "not-the-key\n") < 0)
		return -1;
	const char *args[] = {"--key", KEY, "--log", fx.log_path, NULL};
	return tl_fixture_start_fake(&fx, "generic_sms.py", args);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_errors),          cmocka_unit_test(test_json_api),
	    cmocka_unit_test(test_form_get_xml),           cmocka_unit_test(test_answers),
	    cmocka_unit_test(test_refused_before_sending),
	};
	return cmocka_run_group_tests(tests, group_setup, tl_fixture_group_teardown);
}
