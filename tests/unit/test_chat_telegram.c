/*
 * test_chat_telegram.c - the "telegram" chat driver (Telegram and Bale Bot
 * API) on a real libuv loop against tests/fakes/botapi.py, started as a
 * child on a free 127.0.0.1 port.  Covers: configuration errors (the token
 * never echoed), OK with "<chat_id>:<message_id>", Persian text byte-exact
 * on the wire, numeric vs @username chat ids, parse_mode and link preview,
 * 429 retry_after, 403 revoke_consent, 400 chat not found and migration,
 * 401 without the token, 5xx/proxy pages/garbage/timeouts/refused as
 * TEMPFAIL, the 4096-character rule, refusals reported from the loop,
 * a Bale-style base_url, stop with a send in flight.  Every run ends with
 * uv_loop_close() == 0, and every log line printed meanwhile (stderr goes
 * to a file) is scanned for the tokens.  No assertion depends on elapsed
 * time; the loop guards only catch hangs.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "channel.h"
#include "chat_drivers.h"
#include "config.h"
#include "log.h"
#include "testlib.h"
#include "util.h"

#define TG_TOKEN    "7654321:AAF-clubdTestTok_en9f3e"
#define BALE_TOKEN  "1987654321:baleTestTokenQ9x8w7v6"
#define WRONG_TOKEN "7654321:AAF-wrongToken_000000"
#define MAXN        16

static char tmpdir[256];
static char tg_token_path[320], bale_token_path[320], wrong_token_path[320], bad_token_path[320];
static char record_path[320], log_path[320];
static pid_t fake_pid = -1;
static int fake_port;
static int saved_stderr = -1;

static const char fa_text[] = "سلام مریم! سفارش ۱۲۳۴ شما ارسال شد. "
                              "کد پیگیری: ۹۸۷۶ — با تشکر از خرید شما 🌷";

/* ---- helpers ------------------------------------------------------------ */

/* stderr (where log lines go) into the log file while a driver runs. */
static void capture_begin(void)
{
	saved_stderr = tl_capture_stderr_begin(log_path, 1);
	assert_true(saved_stderr >= 0);
}

static void capture_end(void)
{
	tl_capture_stderr_end(saved_stderr);
	saved_stderr = -1;
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The raw body bytes of a record (the fake hex-encodes them). */
static char *record_raw(json_t *rec, size_t *len)
{
	const char *hex = json_string_value(json_object_get(rec, "raw_hex"));
	assert_non_null(hex);
	size_t n = strlen(hex) / 2;
	char *out = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		int hi = hex_val(hex[2 * i]), lo = hex_val(hex[2 * i + 1]);
		assert_true(hi >= 0 && lo >= 0);
		out[i] = (char)(hi << 4 | lo);
	}
	out[n] = '\0';
	*len = n;
	return out;
}

static json_t *rec_body(json_t *recs, size_t i)
{
	json_t *rec = json_array_get(recs, i);
	assert_non_null(rec);
	json_t *b = json_object_get(rec, "body");
	assert_true(json_is_object(b));
	return b;
}

/* ---- configuring the driver --------------------------------------------- */

/*
 * Configure the single [channel.chat] of cfg with the telegram driver:
 * through the registry once channel.c lists it, else by hand the way
 * chan_configure_all does it.
 */
static int tg_configure_all(const struct config *cfg, struct chan **out, size_t *n,
                            struct cfg_error *err)
{
	const struct chan_driver *d = chan_driver_find("telegram");
	if (d) {
		assert_ptr_equal(d, &chan_telegram_driver);
		return chan_configure_all(cfg, out, n, err);
	}
	assert_int_equal(cfg->nchannels, 1);
	assert_string_equal(cfg->channels[0].driver, "telegram");
	struct chan *c = tl_chan_configure(cfg, cfg->channels[0].name, &chan_telegram_driver, err);
	if (!c)
		return -1;
	*out = c;
	*n = 1;
	return 0;
}

static struct config *load_cfg(const char *text, struct cfg_error *err)
{
	/* config warnings go to the scanned log too */
	capture_begin();
	struct config *c = tl_load_config(tmpdir, "tg.conf", text, err);
	capture_end();
	return c;
}

static void expect_cfg_error(const char *text, const char *want)
{
	struct cfg_error err;
	struct config *cfg = load_cfg(text, &err);
	if (!cfg)
		fail_msg("config_load failed: %s", err.msg);
	struct chan *chans = NULL;
	size_t n = 0;
	memset(&err, 0, sizeof err);
	assert_int_equal(tg_configure_all(cfg, &chans, &n, &err), -1);
	if (!strstr(err.msg, want))
		fail_msg("error '%s' does not contain '%s'", err.msg, want);
	assert_null(strstr(err.msg, "AAF-"));    /* no token */
	assert_null(strstr(err.msg, "hunter2")); /* no base_url */
	config_free(cfg);
}

/* ---- one run: configure, start, send, wait, stop ------------------------- */

struct tg_case {
	/* in */
	const char *base;       /* base_url; NULL: http://127.0.0.1:<fake> */
	const char *token_path; /* NULL: the Telegram token */
	const char *extra;      /* more [channel.chat] lines */
	int n;
	const char *to[MAXN];
	const char *text[MAXN]; /* NULL entries: fa_text */
	int no_text[MAXN];      /* send a NULL text */
	int stop_early;         /* stop right after the sends */
	/* out */
	struct tl_send s[MAXN];
	int ndone;
	int done_at_stop;
	json_t *recs;
};

static void tg_run(struct tg_case *k)
{
	char base[128], conf[2048];
	if (!k->base) {
		snprintf(base, sizeof base, "http://127.0.0.1:%d", fake_port);
		k->base = base;
	}
	snprintf(conf, sizeof conf,
	         "[channel.chat]\ndriver = telegram\nbase_url = %s\ntoken_file = %s\n%s", k->base,
	         k->token_path ? k->token_path : tg_token_path, k->extra ? k->extra : "");
	struct cfg_error err;
	struct config *cfg = load_cfg(conf, &err);
	if (!cfg)
		fail_msg("%s", err.msg);
	size_t skip = tl_count_jsonl(record_path);

	struct chan *chans = NULL;
	size_t n = 0;
	int rc_send[MAXN];
	int rc_start = -1, stopped = 0, hung = 0, closed = -1;
	capture_begin();
	int rc_conf = tg_configure_all(cfg, &chans, &n, &err);
	uv_loop_t loop;
	uv_loop_init(&loop);
	if (rc_conf == 0)
		rc_start = chan_start_all(chans, n, &loop);
	if (rc_start == 0) {
		for (int i = 0; i < k->n; i++) {
			struct tl_send *s = &k->s[i];
			tl_send_init(s, &k->ndone, "chat", k->to[i],
			             k->no_text[i] ? NULL
			             : k->text[i]  ? k->text[i]
			                           : fa_text);
			rc_send[i] = chan_send(&chans[0], &s->m, tl_send_done, s);
		}
		/* never from inside send(), even refusals */
		int sync_done = k->ndone;
		if (k->stop_early) {
			chan_stop_all(chans, n, tl_on_count, &stopped);
			k->done_at_stop = -1;
			hung = tl_loop_until(&loop, &stopped, 1, TL_GUARD_MS);
			k->done_at_stop = k->ndone;
		} else {
			hung = tl_loop_until(&loop, &k->ndone, k->n, TL_GUARD_MS);
			if (!hung) {
				chan_stop_all(chans, n, tl_on_count, &stopped);
				hung = tl_loop_until(&loop, &stopped, 1, TL_GUARD_MS);
			}
		}
		if (!hung) {
			chan_free_all(chans, n);
			closed = tl_loop_finish(&loop);
		}
		capture_end();
		assert_int_equal(sync_done, 0);
	} else {
		if (rc_conf == 0)
			chan_free_all(chans, n);
		closed = tl_loop_finish(&loop);
		capture_end();
	}
	if (rc_conf < 0)
		fail_msg("configure: %s", err.msg);
	assert_int_equal(rc_start, 0);
	assert_false(hung);
	assert_int_equal(stopped, 1);
	assert_int_equal(closed, 0);
	for (int i = 0; i < k->n; i++) {
		assert_int_equal(rc_send[i], 0);
		assert_int_equal(k->s[i].done, 1);
		/* no reason or provider id ever carries a token */
		assert_null(strstr(k->s[i].r.reason, "AAF-"));
		assert_null(strstr(k->s[i].r.reason, "baleTest"));
		assert_null(strstr(k->s[i].r.provider_id, "AAF-"));
	}
	config_free(cfg);
	k->recs = tl_read_jsonl(record_path, skip);
}

static void case_free(struct tg_case *k)
{
	json_decref(k->recs);
	k->recs = NULL;
}

static void expect_status(const struct tg_case *k, int i, enum chan_status st, const char *reason)
{
	const struct chan_result *r = &k->s[i].r;
	if (r->status != st)
		fail_msg("send %d to %s: status %d, want %d (reason '%s')", i, k->to[i],
		         (int)r->status, (int)st, r->reason);
	if (reason && strncmp(r->reason, reason, strlen(reason)) != 0)
		fail_msg("send %d to %s: reason '%s' does not start with '%s'", i, k->to[i],
		         r->reason, reason);
}

/* ---- tests -------------------------------------------------------------- */

static void test_config(void **state)
{
	(void)state;
	char text[2048];
	const char *head = "[channel.chat]\ndriver = telegram\n";

	snprintf(text, sizeof text, "%s", head);
	expect_cfg_error(text, ":1: channel.chat.token_file: is required");
	snprintf(text, sizeof text, "%stoken_file = /nonexistent/clubd-token\n", head);
	expect_cfg_error(text, ":3: channel.chat.token_file:");
	/* a token with a blank or a slash would change the URL: refused, not echoed */
	snprintf(text, sizeof text, "%stoken_file = %s\n", head, bad_token_path);
	expect_cfg_error(text, ":3: channel.chat.token_file: the token may only hold");
	snprintf(text, sizeof text, "%stoken_file = %s\nbase_url = ftp://hunter2@h/\n", head,
	         tg_token_path);
	expect_cfg_error(text, ":4: channel.chat.base_url: must start with http:// or https://");
	snprintf(text, sizeof text, "%stoken_file = %s\nbase_url = https://h/x?k=hunter2\n", head,
	         tg_token_path);
	expect_cfg_error(text, ":4: channel.chat.base_url: contains");
	snprintf(text, sizeof text, "%stoken_file = %s\nbase_url = https://\n", head,
	         tg_token_path);
	expect_cfg_error(text, ":4: channel.chat.base_url: has no host");
	snprintf(text, sizeof text, "%stoken_file = %s\nparse_mode = Markdown\n", head,
	         tg_token_path);
	expect_cfg_error(text, ":4: channel.chat.parse_mode: must be none, HTML or MarkdownV2");
	snprintf(text, sizeof text, "%stoken_file = %s\ndisable_web_page_preview = perhaps\n", head,
	         tg_token_path);
	expect_cfg_error(text, ":4: channel.chat.disable_web_page_preview:");
	snprintf(text, sizeof text, "%stoken_file = %s\nmax_host_connections = 0\n", head,
	         tg_token_path);
	expect_cfg_error(text, ":4: channel.chat.max_host_connections:");
	snprintf(text, sizeof text, "%stoken_file = %s\ncolour = blue\n", head, tg_token_path);
	expect_cfg_error(text, ":4: channel.chat.colour: unknown key");

	/* a good block: every key consumed, defaults fine without I/O */
	snprintf(text, sizeof text,
	         "%stoken_file = %s\nbase_url = https://tapi.bale.ai/\nparse_mode = html\n"
	         "disable_web_page_preview = yes\nmax_host_connections = 4\ntimeout = 5s\n",
	         head, tg_token_path);
	struct cfg_error err;
	struct config *cfg = load_cfg(text, &err);
	if (!cfg)
		fail_msg("%s", err.msg);
	struct chan *chans;
	size_t n;
	if (tg_configure_all(cfg, &chans, &n, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(n, 1);
	chan_free_all(chans, n);
	config_free(cfg);
}

static void test_ok_and_chat_ids(void **state)
{
	(void)state;
	struct tg_case k = {
	    .n = 6,
	    .to = {"123456789", "-1001234567890", "@clubd_news", "123456789", "42", "42"},
	    .text = {NULL, "hello", "خبر تازه", "second", "a\nb\t\"c\" \\ d", "</b>&"},
	};
	tg_run(&k);
	for (int i = 0; i < k.n; i++)
		expect_status(&k, i, CHAN_OK, NULL);
	/* provider id: the chat id we sent, ':', the message id per chat */
	const char *ids[2] = {k.s[0].r.provider_id, k.s[3].r.provider_id};
	assert_true(strcmp(ids[0], "123456789:1") == 0 || strcmp(ids[0], "123456789:2") == 0);
	assert_true(strcmp(ids[1], "123456789:1") == 0 || strcmp(ids[1], "123456789:2") == 0);
	assert_string_not_equal(ids[0], ids[1]);
	assert_string_equal(k.s[1].r.provider_id, "-1001234567890:1");
	assert_string_equal(k.s[2].r.provider_id, "@clubd_news:1");
	assert_int_equal(k.s[0].r.revoke_consent, 0);

	assert_int_equal(json_array_size(k.recs), 6);
	int seen_fa = 0, seen_user = 0, seen_neg = 0, seen_esc = 0;
	for (size_t i = 0; i < json_array_size(k.recs); i++) {
		json_t *rec = json_array_get(k.recs, i);
		assert_true(json_is_true(json_object_get(rec, "token_ok")));
		assert_string_equal(json_string_value(json_object_get(rec, "prefix")), "");
		assert_string_equal(json_string_value(json_object_get(rec, "content_type")),
		                    "application/json");
		json_t *b = rec_body(k.recs, i);
		/* exactly chat_id and text: no parse_mode, no preview flag by default */
		assert_int_equal(json_object_size(b), 2);
		json_t *chat = json_object_get(b, "chat_id");
		const char *text = json_string_value(json_object_get(b, "text"));
		assert_non_null(text);
		if (json_is_string(chat)) {
			assert_string_equal(json_string_value(chat), "@clubd_news");
			assert_string_equal(text, "خبر تازه");
			seen_user++;
			continue;
		}
		assert_true(json_is_integer(chat)); /* numbers go as JSON integers */
		if (json_integer_value(chat) == -1001234567890LL)
			seen_neg++;
		if (json_integer_value(chat) == 42 && strcmp(text, "a\nb\t\"c\" \\ d") == 0)
			seen_esc++;
		if (strcmp(text, fa_text) == 0) {
			/* byte-exact on the wire, not only after decoding */
			size_t len;
			char *raw = record_raw(rec, &len);
			assert_non_null(memmem(raw, len, fa_text, strlen(fa_text)));
			free(raw);
			seen_fa++;
		}
	}
	assert_int_equal(seen_fa, 1);
	assert_int_equal(seen_user, 1);
	assert_int_equal(seen_neg, 1);
	assert_int_equal(seen_esc, 1);
	case_free(&k);
}

static void test_parse_mode_and_preview(void **state)
{
	(void)state;
	struct tg_case k = {
	    .n = 1,
	    .to = {"77"},
	    .text = {"<b>سفارش</b> ارسال شد https://example.org/t/1"},
	    .extra = "parse_mode = HTML\ndisable_web_page_preview = yes\n",
	};
	tg_run(&k);
	expect_status(&k, 0, CHAN_OK, NULL);
	assert_string_equal(k.s[0].r.provider_id, "77:1");
	json_t *b = rec_body(k.recs, 0);
	assert_string_equal(json_string_value(json_object_get(b, "parse_mode")), "HTML");
	assert_true(json_is_true(json_object_get(b, "disable_web_page_preview")));
	case_free(&k);

	struct tg_case m = {.n = 1, .to = {"78"}, .extra = "parse_mode = MarkdownV2\n"};
	tg_run(&m);
	expect_status(&m, 0, CHAN_OK, NULL);
	b = rec_body(m.recs, 0);
	assert_string_equal(json_string_value(json_object_get(b, "parse_mode")), "MarkdownV2");
	assert_null(json_object_get(b, "disable_web_page_preview"));
	case_free(&m);
}

static void test_rate_limit(void **state)
{
	(void)state;
	/* 429 with retry_after 2 the first time, accepted the second */
	struct tg_case k = {.n = 1, .to = {"429"}};
	tg_run(&k);
	expect_status(&k, 0, CHAN_TEMPFAIL, "bot api 429: Too Many Requests");
	assert_int_equal(k.s[0].r.retry_after_ms, 2000);
	assert_int_equal(k.s[0].r.revoke_consent, 0);
	case_free(&k);

	struct tg_case again = {.n = 1, .to = {"429"}};
	tg_run(&again);
	expect_status(&again, 0, CHAN_OK, NULL);
	assert_string_equal(again.s[0].r.provider_id, "429:1");
	case_free(&again);

	struct tg_case always = {.n = 2, .to = {"4290", "4290"}};
	tg_run(&always);
	for (int i = 0; i < 2; i++) {
		expect_status(&always, i, CHAN_TEMPFAIL, "bot api 429");
		assert_int_equal(always.s[i].r.retry_after_ms, 2000);
	}
	case_free(&always);
}

static void test_permanent(void **state)
{
	(void)state;
	struct tg_case k = {.n = 4, .to = {"403", "4031", "400", "4000"}};
	tg_run(&k);
	expect_status(&k, 0, CHAN_PERMFAIL, "bot api 403: Forbidden: bot was blocked by the user");
	assert_int_equal(k.s[0].r.revoke_consent, 1);
	expect_status(&k, 1, CHAN_PERMFAIL, "bot api 403: Forbidden: user is deactivated");
	assert_int_equal(k.s[1].r.revoke_consent, 1);
	expect_status(&k, 2, CHAN_PERMFAIL, "bot api 400: Bad Request: chat not found");
	assert_int_equal(k.s[2].r.revoke_consent, 0);
	expect_status(&k, 3, CHAN_PERMFAIL, "chat migrated to a supergroup");
	assert_non_null(strstr(k.s[3].r.reason, "-1001234567890"));
	assert_int_equal(k.s[3].r.revoke_consent, 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(k.s[i].r.retry_after_ms, 0);
	assert_int_equal(json_array_size(k.recs), 4);
	case_free(&k);
}

static void test_unauthorized(void **state)
{
	(void)state;
	struct tg_case k = {.n = 3, .to = {"1", "2", "3"}, .token_path = wrong_token_path};
	tg_run(&k);
	for (int i = 0; i < 3; i++) {
		expect_status(&k, i, CHAN_PERMFAIL, NULL);
		assert_string_equal(k.s[i].r.reason, "unauthorized: check token_file");
		assert_null(strstr(k.s[i].r.reason, WRONG_TOKEN));
		assert_int_equal(k.s[i].r.revoke_consent, 0);
	}
	/* the fake saw the wrong token on the right path */
	assert_int_equal(json_array_size(k.recs), 3);
	assert_true(json_is_false(json_object_get(json_array_get(k.recs, 0), "token_ok")));
	case_free(&k);

	/* a base_url that points elsewhere: the API's 404 */
	char base[128];
	snprintf(base, sizeof base, "http://127.0.0.1:%d/nowhere", fake_port);
	struct tg_case nf = {.n = 1, .to = {"1"}, .base = base};
	tg_run(&nf);
	expect_status(&nf, 0, CHAN_PERMFAIL, "not found: check base_url and token_file");
	case_free(&nf);
}

static void test_temporary(void **state)
{
	(void)state;
	struct tg_case k = {.n = 3, .to = {"500", "502", "2000"}};
	tg_run(&k);
	expect_status(&k, 0, CHAN_TEMPFAIL, "bot api 500: Internal Server Error");
	expect_status(&k, 1, CHAN_TEMPFAIL, "http 502");
	expect_status(&k, 2, CHAN_TEMPFAIL, "bad answer");
	for (int i = 0; i < 3; i++)
		assert_int_equal(k.s[i].r.revoke_consent, 0);
	case_free(&k);

	/* ok:true without a message id: sent, no provider id */
	struct tg_case noid = {.n = 1, .to = {"2001"}};
	tg_run(&noid);
	expect_status(&noid, 0, CHAN_OK, NULL);
	assert_string_equal(noid.s[0].r.provider_id, "");
	case_free(&noid);

	/* a bound port nobody listens on: connection refused */
	int fd;
	int port = tl_bound_port(&fd);
	char base[128];
	snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
	struct tg_case refused = {.n = 1, .to = {"1"}, .base = base};
	tg_run(&refused);
	close(fd);
	expect_status(&refused, 0, CHAN_TEMPFAIL, "connect: ");
	assert_null(strstr(refused.s[0].r.reason, "/bot")); /* no URL path */
	case_free(&refused);
}

static void test_timeout_and_stop_in_flight(void **state)
{
	(void)state;
	/* the fake hangs; stop waits for the send, which times out */
	struct tg_case k = {
	    .n = 2, .to = {"999", "999"}, .extra = "timeout = 1s\n", .stop_early = 1};
	tg_run(&k);
	assert_int_equal(k.done_at_stop, 2);
	for (int i = 0; i < 2; i++)
		expect_status(&k, i, CHAN_TEMPFAIL, "timeout");
	case_free(&k);
}

static void test_refused_before_io(void **state)
{
	(void)state;
	char *exact = xmalloc(4096 * 2 + 1), *over = xmalloc(4097 * 2 + 1);
	char *emoji = xmalloc(4096 * 4 + 1);
	for (int i = 0; i < 4096; i++)
		memcpy(exact + 2 * i, "س", 2);
	exact[4096 * 2] = '\0';
	for (int i = 0; i < 4097; i++)
		memcpy(over + 2 * i, "م", 2);
	over[4097 * 2] = '\0';
	for (int i = 0; i < 4096; i++)
		memcpy(emoji + 4 * i, "🌷", 4);
	emoji[4096 * 4] = '\0';

	struct tg_case k = {
	    .n = 8,
	    .to = {"5", "5", "5", "tg:5", "@", "0", "5", "@ab cd"},
	    .text = {exact, over, "bad \xff utf8", NULL, NULL, NULL, NULL, NULL},
	    .no_text = {0, 0, 0, 0, 0, 0, 1, 0},
	};
	tg_run(&k);
	expect_status(&k, 0, CHAN_OK, NULL); /* exactly 4096 characters */
	expect_status(&k, 1, CHAN_PERMFAIL, "too long");
	assert_non_null(strstr(k.s[1].r.reason, "4097"));
	expect_status(&k, 2, CHAN_PERMFAIL, "text is not valid UTF-8");
	for (int i = 3; i < 6; i++)
		expect_status(&k, i, CHAN_PERMFAIL, "chat id is neither a number nor an @username");
	expect_status(&k, 6, CHAN_PERMFAIL, "no text to send");
	expect_status(&k, 7, CHAN_PERMFAIL, "chat id is neither");
	for (int i = 1; i < 8; i++)
		assert_int_equal(k.s[i].r.revoke_consent, 0);
	/* only the good one reached the API */
	assert_int_equal(json_array_size(k.recs), 1);
	const char *sent = json_string_value(json_object_get(rec_body(k.recs, 0), "text"));
	assert_string_equal(sent, exact);
	case_free(&k);

	/* 4096 four-byte characters: within the rule (code points), too */
	struct tg_case e = {.n = 1, .to = {"6"}, .text = {emoji}};
	tg_run(&e);
	expect_status(&e, 0, CHAN_OK, NULL);
	case_free(&e);
	free(exact);
	free(over);
	free(emoji);
}

/* The driver's own send(): even a refusal reports from the loop. */
static void test_never_synchronous(void **state)
{
	(void)state;
	char conf[1024];
	snprintf(conf, sizeof conf,
	         "[channel.chat]\ndriver = telegram\nbase_url = http://127.0.0.1:%d\n"
	         "token_file = %s\n",
	         fake_port, tg_token_path);
	struct cfg_error err;
	struct config *cfg = load_cfg(conf, &err);
	if (!cfg)
		fail_msg("%s", err.msg);
	struct chan *chans;
	size_t n;
	capture_begin();
	int rc = tg_configure_all(cfg, &chans, &n, &err);
	capture_end();
	if (rc < 0)
		fail_msg("%s", err.msg);
	uv_loop_t loop;
	uv_loop_init(&loop);
	int ndone = 0, stopped = 0;
	struct tl_send s[2];
	memset(s, 0, sizeof s);
	const char *to[2] = {"bad id", "31"};
	capture_begin();
	int rs = chan_start_all(chans, n, &loop);
	int r0 = -1, r1 = -1, sync_done = -1, hung = -1, hung2 = -1, closed = -1;
	if (rs == 0) {
		for (int i = 0; i < 2; i++) {
			id_new(s[i].id, now_ms());
			s[i].m.id = s[i].id;
			s[i].m.to = to[i];
			s[i].m.text = "x";
			s[i].counter = &ndone;
		}
		r0 = chans[0].drv->send(&chans[0], &s[0].m, tl_send_done, &s[0]);
		r1 = chans[0].drv->send(&chans[0], &s[1].m, tl_send_done, &s[1]);
		sync_done = ndone;
		hung = tl_loop_until(&loop, &ndone, 2, TL_GUARD_MS);
		chan_stop_all(chans, n, tl_on_count, &stopped);
		hung2 = tl_loop_until(&loop, &stopped, 1, TL_GUARD_MS);
		chan_free_all(chans, n);
		closed = tl_loop_finish(&loop);
	}
	capture_end();
	assert_int_equal(rs, 0);
	assert_int_equal(r0, 0);
	assert_int_equal(r1, 0);
	assert_int_equal(sync_done, 0);
	assert_int_equal(hung, 0);
	assert_int_equal(hung2, 0);
	assert_int_equal(closed, 0);
	assert_int_equal(s[0].r.status, CHAN_PERMFAIL);
	assert_int_equal(s[1].r.status, CHAN_OK);
	assert_string_equal(s[1].r.provider_id, "31:1");
	config_free(cfg);
}

static void test_bale_base_url(void **state)
{
	(void)state;
	/* the same driver under another base URL and token (Bale's shape) */
	char base[128];
	snprintf(base, sizeof base, "http://127.0.0.1:%d/bale/", fake_port);
	struct tg_case k = {.n = 3,
	                    .to = {"5550001", "403", "@bale_channel"},
	                    .base = base,
	                    .token_path = bale_token_path};
	tg_run(&k);
	expect_status(&k, 0, CHAN_OK, NULL);
	assert_string_equal(k.s[0].r.provider_id, "5550001:1");
	expect_status(&k, 1, CHAN_PERMFAIL, "bot api 403");
	assert_int_equal(k.s[1].r.revoke_consent, 1);
	expect_status(&k, 2, CHAN_OK, NULL);
	assert_int_equal(json_array_size(k.recs), 3);
	for (size_t i = 0; i < 3; i++) {
		json_t *rec = json_array_get(k.recs, i);
		assert_string_equal(json_string_value(json_object_get(rec, "prefix")), "/bale");
		assert_true(json_is_true(json_object_get(rec, "token_ok")));
	}
	case_free(&k);

	/* the Telegram token against the Bale path: 401 */
	struct tg_case w = {.n = 1, .to = {"5550001"}, .base = base};
	tg_run(&w);
	expect_status(&w, 0, CHAN_PERMFAIL, "unauthorized: check token_file");
	case_free(&w);
}

/* Last: every line the driver and the HTTP client logged, tokens absent. */
static void test_no_token_in_logs(void **state)
{
	(void)state;
	size_t len;
	char *logs = tl_read_file(log_path, &len);
	assert_non_null(logs);
	/* the capture worked: the trace and the warnings are there */
	assert_non_null(strstr(logs, "sub=http"));
	assert_non_null(strstr(logs, "sub=chan"));
	assert_non_null(strstr(logs, "problem=\"unauthorized: check token_file\""));
	const char *secrets[] = {TG_TOKEN, BALE_TOKEN, WRONG_TOKEN, "AAF-", "baleTest", "/bot"};
	for (size_t i = 0; i < ARRAY_SIZE(secrets); i++)
		if (memmem(logs, len, secrets[i], strlen(secrets[i])))
			fail_msg("log holds '%s'", secrets[i]);
	/* nor any message body */
	assert_null(memmem(logs, len, "سلام مریم", strlen("سلام مریم")));
	free(logs);
}

/* ---- setup -------------------------------------------------------------- */

static int start_fake(void)
{
	char script[PATH_MAX + 64];
	if (tl_find_fake("botapi.py", script, sizeof script) < 0)
		return -1;
	char a1[400], a2[400];
	snprintf(a1, sizeof a1, "=%s", tg_token_path);
	snprintf(a2, sizeof a2, "/bale=%s", bale_token_path);
	const char *argv[] = {TL_PYTHON, script, record_path, a1, a2, NULL};
	fake_pid = tl_spawn_fake(argv, &fake_port);
	return fake_pid > 0 ? 0 : -1;
}

static int group_setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	/* everything, traces included, so the token scan sees every line */
	log_setup(LOG_DEBUG, LOG_FMT_KV);
	log_set_trace("all");
	if (tl_mkdtemp(tmpdir, sizeof tmpdir, "telegram") < 0)
		return -1;
	snprintf(tg_token_path, sizeof tg_token_path, "%s/tg-token", tmpdir);
	snprintf(bale_token_path, sizeof bale_token_path, "%s/bale-token", tmpdir);
	snprintf(wrong_token_path, sizeof wrong_token_path, "%s/wrong-token", tmpdir);
	snprintf(bad_token_path, sizeof bad_token_path, "%s/bad-token", tmpdir);
	snprintf(record_path, sizeof record_path, "%s/requests.jsonl", tmpdir);
	snprintf(log_path, sizeof log_path, "%s/driver.log", tmpdir);
	tl_write_file(tg_token_path, TG_TOKEN "\n", 0600);
	tl_write_file(bale_token_path, BALE_TOKEN "\r\n", 0600);
	tl_write_file(wrong_token_path, WRONG_TOKEN, 0600);
	tl_write_file(bad_token_path, "7654321:AAF-x/../y z\n", 0600);
	tl_write_file(record_path, "", 0600);
	tl_write_file(log_path, "", 0600);
	return start_fake();
}

static int group_teardown(void **state)
{
	(void)state;
	tl_kill(fake_pid);
	if (!getenv("CLUBD_KEEP_TMP"))
		tl_rmtree(tmpdir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config),
	    cmocka_unit_test(test_ok_and_chat_ids),
	    cmocka_unit_test(test_parse_mode_and_preview),
	    cmocka_unit_test(test_rate_limit),
	    cmocka_unit_test(test_permanent),
	    cmocka_unit_test(test_unauthorized),
	    cmocka_unit_test(test_temporary),
	    cmocka_unit_test(test_timeout_and_stop_in_flight),
	    cmocka_unit_test(test_refused_before_io),
	    cmocka_unit_test(test_never_synchronous),
	    cmocka_unit_test(test_bale_base_url),
	    cmocka_unit_test(test_no_token_in_logs),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
