/*
 * inbound_poll.c - the inbound transports' state and pollers (see
 * inbound_poll.h).
 *
 * getUpdates (one chat channel with driver telegram and [inbound] chat =
 * poll): read the offset (lua/inbound.lua 'getoff'), GET
 * {base}/bot{token}/getUpdates?offset=N&timeout=T&allowed_updates=["message"],
 * then each update in order: a text or a shared contact is routed with the
 * offset raised to update_id + 1 in the same script as its record; any
 * other update only raises the offset.  A failure stops the batch and the
 * next poll starts again from the stored offset: Telegram keeps what was
 * not confirmed, and update ids are deduped, so an update is neither lost
 * nor recorded twice.  Only one process may poll a bot (Telegram answers
 * 409 to a second one, and while a webhook is set).
 *
 * Kavenegar (driver kavenegar on [channel.sms], [inbound] kavenegar_poll >
 * 0): every interval GET {base}/v1/{key}/sms/receive.json?linenumber=L&
 * isread=0.  Kavenegar marks what it returns as read, so entries not yet
 * stored are kept here and stored before the next poll; a crash between
 * the answer and the store loses them (they stay in Kavenegar's panel).
 * Duplicates are deduped by messageid.
 *
 * Owns: the two poll URLs (they hold the bot token and the API key: wiped
 * on close, never logged), the Twilio token and the Bot API secret (wiped),
 * one reference on the loop's HTTP client, two timers.  Never touches
 * contacts or messages directly: inbound_route() does.
 * Limits: answers 1 MiB; 100 updates per getUpdates; warnings about the
 * providers at most once a minute per poller.
 */
#include "inbound_poll.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chat_drivers.h"
#include "http.h"
#include "inbound_route.h"
#include "log.h"
#include "sms_providers.h"
#include "util.h"

#define POLL_MAX_ANSWER  (1024 * 1024)
#define POLL_BACKOFF_MIN 1000
#define POLL_BACKOFF_MAX 60000
#define POLL_WARN_MS     60000
#define TG_DEFAULT_BASE  "https://api.telegram.org"
#define KV_DEFAULT_BASE  "https://api.kavenegar.com"
#define CHAT_CHANNEL     "chat"

struct inbound_poll;

struct tg_poll {
	struct inbound_poll *p;
	char *url; /* .../bot<token>/getUpdates: never logged */
	size_t url_len;
	char channel[16];
	int64_t timeout_s;
	int64_t offset;     /* what the batch being processed was asked with */
	json_t *batch;      /* the updates being stored */
	size_t next;        /* index in batch */
	int busy;           /* a poll or a batch is in progress */
	int64_t backoff_ms; /* 0 after a success */
	int64_t warned_at;
	char warned[96]; /* the last problem warned about */
	uv_timer_t timer;
};

struct kv_poll {
	struct inbound_poll *p;
	char *url; /* .../v1/<key>/sms/receive.json?...: never logged */
	size_t url_len;
	int64_t every_ms;
	json_t *pending; /* entries Kavenegar returned and we have not stored yet */
	size_t next;
	int busy;
	int64_t warned_at;
	uv_timer_t timer;
};

struct inbound_poll {
	uv_loop_t *loop;
	struct store *st;
	const struct config *cfg;
	char *twilio_token;
	char *chat_secret; /* chat = webhook */
	char bot_id[32];
	int chat_mode; /* 0 off, 1 webhook, 2 poll */
	struct tg_poll *tg;
	struct kv_poll *kv;
	struct http_client *http;
	int inflight; /* HTTP requests and store calls not yet answered */
	int stopped;
	int closing;
	int open_timers;
	void (*close_cb)(void *);
	void *close_arg;
};

/* ---- configuration -------------------------------------------------------- */

static const struct chan *find_driver(const struct chan *chans, size_t n, const char *name,
                                      const struct chan_driver *drv)
{
	for (size_t i = 0; i < n; i++)
		if (chans[i].drv == drv && strcmp(chans[i].cfg->name, name) == 0)
			return &chans[i];
	return NULL;
}

/* What both the check and the start read; secrets go to the out pointers
 * (NULL: not wanted, wiped here). */
struct setup {
	char *twilio_token;
	char *chat_secret;
	char *tg_token;
	char *tg_base;
	char *kv_key;
	char *kv_base;
	char *kv_line;
	int chat_mode;
};

static void setup_free(struct setup *s)
{
	secret_free(s->twilio_token);
	secret_free(s->chat_secret);
	secret_free(s->tg_token);
	secret_free(s->kv_key);
	free(s->tg_base);
	free(s->kv_base);
	free(s->kv_line);
	memset(s, 0, sizeof *s);
}

static struct cfg_section *inbound_section(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->nsections; i++)
		if (strcmp(cfg->sections[i].name, "inbound") == 0)
			return &cfg->sections[i];
	return NULL;
}

static int fail(struct cfg_error *err, const struct config *cfg, const char *key, const char *why)
{
	struct cfg_section *s = inbound_section(cfg);
	if (s)
		cfg_error_set(err, s, key, "%s", why);
	else
		snprintf(err->msg, sizeof err->msg, "%s: inbound.%s: %s",
		         cfg->path ? cfg->path : "", key, why);
	return -1;
}

/* Telegram's secret_token: 1..256 of A-Z a-z 0-9 _ -. */
static int secret_token_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 256)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static char *trim_base(const char *base)
{
	size_t n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	return xstrndup(base, n);
}

static int setup_read(const struct config *cfg, const struct chan *chans, size_t n, struct setup *s,
                      struct cfg_error *err)
{
	memset(s, 0, sizeof *s);
	struct cfg_error e = {""};
	/* Twilio: its own token file, else the twilio channel's. */
	if (cfg->inbound_twilio_auth_token_file && *cfg->inbound_twilio_auth_token_file) {
		s->twilio_token = cfg_read_secret(cfg->inbound_twilio_auth_token_file, &e);
		if (!s->twilio_token)
			return fail(err, cfg, "twilio_auth_token_file", e.msg);
	} else {
		const struct chan *tw = find_driver(chans, n, "sms", &chan_sms_twilio_driver);
		if (tw &&
		    cfg_sec_secret(tw->cfg->sec, "auth_token_file", &s->twilio_token, err) < 0)
			return -1;
	}

	s->chat_mode = strcmp(cfg->inbound_chat, "webhook") == 0 ? 1
	               : strcmp(cfg->inbound_chat, "poll") == 0  ? 2
	                                                         : 0;
	if (s->chat_mode) {
		const struct chan *tg = find_driver(chans, n, CHAT_CHANNEL, &chan_telegram_driver);
		if (!tg)
			return fail(err, cfg, "chat",
			            "needs [channel.chat] with driver = telegram (the bot whose "
			            "replies are read)");
		s->tg_base = trim_base(cfg_sec_str(tg->cfg->sec, "base_url", TG_DEFAULT_BASE));
		if (cfg_sec_secret(tg->cfg->sec, "token_file", &s->tg_token, err) < 0)
			return -1;
		if (!s->tg_token)
			return fail(err, cfg, "chat", "the telegram channel has no token_file");
	}
	if (s->chat_mode == 1) {
		if (!cfg->inbound_chat_secret_file || !*cfg->inbound_chat_secret_file)
			return fail(err, cfg, "chat_secret_file",
			            "is required with chat = webhook (setWebhook's secret_token)");
		s->chat_secret = cfg_read_secret(cfg->inbound_chat_secret_file, &e);
		if (!s->chat_secret)
			return fail(err, cfg, "chat_secret_file", e.msg);
		if (!secret_token_ok(s->chat_secret))
			return fail(
			    err, cfg, "chat_secret_file",
			    "the secret must be 1 to 256 characters A-Z, a-z, 0-9, _ and -, "
			    "as the Bot API requires");
	}

	if (cfg->inbound_kavenegar_poll_ms > 0) {
		const struct chan *kv = find_driver(chans, n, "sms", &chan_sms_kavenegar_driver);
		if (!kv)
			return fail(err, cfg, "kavenegar_poll",
			            "needs [channel.sms] with driver = kavenegar");
		s->kv_base = trim_base(cfg_sec_str(kv->cfg->sec, "base_url", KV_DEFAULT_BASE));
		if (cfg_sec_secret(kv->cfg->sec, "api_key_file", &s->kv_key, err) < 0)
			return -1;
		const char *line = cfg->inbound_kavenegar_line && *cfg->inbound_kavenegar_line
		                       ? cfg->inbound_kavenegar_line
		                       : cfg_sec_str(kv->cfg->sec, "sender", NULL);
		if (!s->kv_key || !line || !*line)
			return fail(err, cfg, "kavenegar_line",
			            "Kavenegar receive polling needs the API key and a line number "
			            "(kavenegar_line, or the channel's sender)");
		s->kv_line = xstrdup(line);
	}
	return 0;
}

int inbound_poll_check(const struct config *cfg, const struct chan *chans, size_t n,
                       struct cfg_error *err)
{
	struct setup s;
	int r = setup_read(cfg, chans, n, &s, err);
	setup_free(&s);
	return r;
}

/* Percent-encode everything but unreserved characters. */
static void url_escape(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
			buf_append(b, p, 1);
		} else {
			char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			buf_append(b, e, 3);
		}
	}
}

static void wipe_free(char *s, size_t n)
{
	if (s) {
		explicit_bzero(s, n);
		free(s);
	}
}

struct inbound_poll *inbound_poll_new(uv_loop_t *loop, struct store *st, struct chan *chans,
                                      size_t n, const struct config *cfg, struct cfg_error *err)
{
	struct setup s;
	if (setup_read(cfg, chans, n, &s, err) < 0) {
		setup_free(&s);
		return NULL;
	}
	struct inbound_poll *p = xcalloc(1, sizeof *p);
	p->loop = loop;
	p->st = st;
	p->cfg = cfg;
	p->twilio_token = s.twilio_token;
	s.twilio_token = NULL;
	p->chat_secret = s.chat_secret;
	s.chat_secret = NULL;
	p->chat_mode = s.chat_mode;
	if (s.tg_token) {
		/* The bot's id is the token's part before ':' (public, not secret). */
		size_t k = strcspn(s.tg_token, ":");
		snprintf(p->bot_id, sizeof p->bot_id, "%.*s", (int)(k < 31 ? k : 31), s.tg_token);
	}
	if (s.chat_mode == 2) {
		struct tg_poll *t = xcalloc(1, sizeof *t);
		t->p = p;
		snprintf(t->channel, sizeof t->channel, "%s", CHAT_CHANNEL);
		t->timeout_s = cfg->inbound_chat_poll_timeout_ms / 1000;
		t->url = xasprintf("%s/bot%s/getUpdates", s.tg_base, s.tg_token);
		t->url_len = strlen(t->url);
		uv_timer_init(loop, &t->timer);
		p->open_timers++;
		p->tg = t;
	}
	if (s.kv_key) {
		struct kv_poll *k = xcalloc(1, sizeof *k);
		k->p = p;
		k->every_ms = cfg->inbound_kavenegar_poll_ms;
		struct buf b;
		buf_init(&b, 0);
		buf_printf(&b, "%s/v1/", s.kv_base);
		url_escape(&b, s.kv_key);
		buf_puts(&b, "/sms/receive.json?linenumber=");
		url_escape(&b, s.kv_line);
		buf_puts(&b, "&isread=0");
		k->url_len = b.len;
		k->url = buf_steal(&b);
		uv_timer_init(loop, &k->timer);
		p->open_timers++;
		p->kv = k;
	}
	setup_free(&s);
	return p;
}

const char *inbound_poll_twilio_token(const struct inbound_poll *p)
{
	return p ? p->twilio_token : NULL;
}

int inbound_poll_chat_webhook(const struct inbound_poll *p, const char *channel,
                              const char **secret, const char **bot_id)
{
	if (!p || p->chat_mode != 1 || !channel || strcmp(channel, CHAT_CHANNEL) != 0 ||
	    !p->chat_secret)
		return -ENOENT;
	*secret = p->chat_secret;
	*bot_id = p->bot_id;
	return 0;
}

void inbound_poll_reconfigure(struct inbound_poll *p, const struct config *cfg)
{
	if (p)
		p->cfg = cfg;
}

/* ---- shared ----------------------------------------------------------------- */

static void maybe_closed(struct inbound_poll *p);

static int warn_due(int64_t *at)
{
	int64_t now = mono_ms();
	if (*at && now - *at < POLL_WARN_MS)
		return 0;
	*at = now;
	return 1;
}

/* A store call or request came back; 1 when the poller must stop here. */
static int back(struct inbound_poll *p)
{
	p->inflight--;
	if (p->closing) {
		maybe_closed(p);
		return 1;
	}
	return p->stopped;
}

/* ---- getUpdates --------------------------------------------------------------- */

static void tg_poll(struct tg_poll *t);
static void tg_next(struct tg_poll *t);

static void tg_on_timer(uv_timer_t *h)
{
	struct tg_poll *t = h->data;
	tg_poll(t);
}

/* End the batch; poll again after delay_ms. */
static void tg_again(struct tg_poll *t, int64_t delay_ms)
{
	json_decref(t->batch);
	t->batch = NULL;
	t->busy = 0;
	if (t->p->stopped || t->p->closing)
		return;
	t->timer.data = t;
	uv_timer_start(&t->timer, tg_on_timer, (uint64_t)delay_ms, 0);
}

static void tg_fail(struct tg_poll *t, const char *what)
{
	t->backoff_ms = t->backoff_ms ? t->backoff_ms * 2 : POLL_BACKOFF_MIN;
	if (t->backoff_ms > POLL_BACKOFF_MAX)
		t->backoff_ms = POLL_BACKOFF_MAX;
	/* once a minute, and whenever the problem changes */
	if (strcmp(t->warned, what) != 0 || warn_due(&t->warned_at)) {
		t->warned_at = mono_ms();
		snprintf(t->warned, sizeof t->warned, "%s", what);
		log_warnx("inbound", "chan=%s getUpdates failed problem=%s retry_ms=%lld",
		          t->channel, log_q(what), (long long)t->backoff_ms);
	}
	tg_again(t, t->backoff_ms);
}

static void tg_on_routed(void *arg, const struct inbound_result *res)
{
	struct tg_poll *t = arg;
	if (back(t->p)) {
		t->busy = 0;
		return;
	}
	if (res->err) {
		tg_fail(t, "store unavailable");
		return;
	}
	t->next++;
	tg_next(t);
}

static void tg_on_offset(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct tg_poll *t = arg;
	if (back(t->p)) {
		t->busy = 0;
		return;
	}
	if (!rep || rep->type == REDIS_REPLY_ERROR) {
		tg_fail(t, "store unavailable");
		return;
	}
	t->next++;
	tg_next(t);
}

/* Store the batch's updates one by one, in order. */
static void tg_next(struct tg_poll *t)
{
	struct inbound_poll *p = t->p;
	while (t->next < json_array_size(t->batch)) {
		struct inbound_tg_update u;
		if (inbound_tg_parse(json_array_get(t->batch, t->next), &u) < 0) {
			/* No update id: nothing to confirm it with. */
			inbound_count(INBOUND_T_TELEGRAM_POLL, INBOUND_REJECTED);
			t->next++;
			continue;
		}
		char off[24];
		snprintf(off, sizeof off, "%" PRId64, u.update_id + 1);
		struct inbound in;
		const char *field = NULL, *why = NULL;
		int ok = u.kind != INBOUND_TG_SKIP &&
		         inbound_tg_inbound(&in, &u, t->channel, p->bot_id, now_ms(),
		                            p->cfg->contacts_default_country, &field, &why) == 0;
		p->inflight++;
		if (ok) {
			inbound_route(p->st, p->cfg, INBOUND_T_TELEGRAM_POLL, &in, t->channel,
			              u.update_id + 1, tg_on_routed, t);
			return;
		}
		if (u.kind != INBOUND_TG_SKIP) {
			inbound_count(INBOUND_T_TELEGRAM_POLL, INBOUND_REJECTED);
			log_info("inbound", "chan=%s update=%" PRId64 " refused field=%s reason=%s",
			         t->channel, u.update_id, field ? field : "-", log_q(why));
		}
		struct argv a;
		argv_init(&a);
		argv_add(&a, "offset");
		argv_add(&a, t->channel);
		argv_add(&a, off);
		store_eval(p->st, SCRIPT_INBOUND, &a, tg_on_offset, t);
		argv_free(&a);
		return;
	}
	t->backoff_ms = 0;
	t->warned[0] = '\0';
	/* a long poll waits at the API; short polling (timeout 0) waits here */
	tg_again(t, t->timeout_s > 0 ? 0 : POLL_BACKOFF_MIN);
}

static void tg_on_updates(void *arg, const struct http_resp *resp)
{
	struct tg_poll *t = arg;
	if (back(t->p)) {
		t->busy = 0;
		return;
	}
	if (resp->err != HTTP_E_NONE) {
		tg_fail(t, resp->err == HTTP_E_TIMEOUT ? "timeout" : "transport error");
		return;
	}
	json_t *j = json_loadb(resp->body, resp->body_len, 0, NULL);
	json_t *ok = json_object_get(j, "ok");
	json_t *result = json_object_get(j, "result");
	if (!json_is_true(ok) || !json_is_array(result)) {
		char what[96];
		json_t *d = json_object_get(j, "description");
		long code = resp->status;
		if (code == 409)
			snprintf(what, sizeof what,
			         "409 conflict: a webhook is set or another "
			         "process polls this bot");
		else if (code == 401 || code == 404)
			snprintf(what, sizeof what, "%ld: check token_file and base_url", code);
		else
			snprintf(what, sizeof what, "http %ld%s", code,
			         json_is_string(d) ? " with an error description" : "");
		json_decref(j);
		tg_fail(t, what);
		return;
	}
	json_incref(result);
	json_decref(j);
	t->batch = result;
	t->next = 0;
	tg_next(t);
}

static void tg_on_getoff(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct tg_poll *t = arg;
	struct inbound_poll *p = t->p;
	if (back(p)) {
		t->busy = 0;
		return;
	}
	int64_t off = 0;
	const char *s = rep ? reply_str(rep) : NULL;
	if (!s || parse_i64(s, 0, INT64_MAX, &off) < 0) {
		tg_fail(t, "store unavailable");
		return;
	}
	t->offset = off;
	char *url = xasprintf("%s?offset=%" PRId64 "&timeout=%" PRId64
	                      "&allowed_updates=%%5B%%22message%%22%%5D",
	                      t->url, off, t->timeout_s);
	struct http_req rq = {
	    .method = "GET",
	    .url = url,
	    .timeout_ms = t->timeout_s * 1000 + 10000,
	    .connect_timeout_ms = 10000,
	    .max_body = POLL_MAX_ANSWER,
	};
	p->inflight++;
	int rc = http_request(p->http, &rq, tg_on_updates, t);
	wipe_free(url, strlen(url));
	if (rc < 0) {
		p->inflight--;
		tg_fail(t, "request not started");
	}
}

static void tg_poll(struct tg_poll *t)
{
	struct inbound_poll *p = t->p;
	if (t->busy || p->stopped || p->closing)
		return;
	t->busy = 1;
	if (!redis_is_up(p->st->r)) {
		/* not connected yet (start) or reconnecting: wait quietly */
		tg_again(t, POLL_BACKOFF_MIN / 4);
		return;
	}
	struct argv a;
	argv_init(&a);
	argv_add(&a, "getoff");
	argv_add(&a, t->channel);
	p->inflight++;
	store_eval(p->st, SCRIPT_INBOUND, &a, tg_on_getoff, t);
	argv_free(&a);
}

/* ---- Kavenegar receive ---------------------------------------------------------- */

static void kv_next(struct kv_poll *k);

static void kv_done(struct kv_poll *k)
{
	k->busy = 0;
}

static void kv_on_routed(void *arg, const struct inbound_result *res)
{
	struct kv_poll *k = arg;
	if (back(k->p)) {
		kv_done(k);
		return;
	}
	if (res->err) {
		/* keep the rest for the next tick: Kavenegar will not send them again */
		if (warn_due(&k->warned_at))
			log_warnx("inbound", "provider=kavenegar store unavailable kept=%zu",
			          json_array_size(k->pending) - k->next);
		kv_done(k);
		return;
	}
	k->next++;
	kv_next(k);
}

static void kv_next(struct kv_poll *k)
{
	struct inbound_poll *p = k->p;
	while (k->next < json_array_size(k->pending)) {
		struct inbound in;
		const char *field = NULL, *why = NULL;
		if (inbound_kavenegar_entry(&in, json_array_get(k->pending, k->next), now_ms(),
		                            p->cfg->contacts_default_country, &field, &why) < 0) {
			inbound_count(INBOUND_T_KAVENEGAR_POLL, INBOUND_REJECTED);
			log_info("inbound", "provider=kavenegar entry refused field=%s reason=%s",
			         field ? field : "-", log_q(why));
			k->next++;
			continue;
		}
		p->inflight++;
		inbound_route(p->st, p->cfg, INBOUND_T_KAVENEGAR_POLL, &in, NULL, 0, kv_on_routed,
		              k);
		return;
	}
	json_decref(k->pending);
	k->pending = NULL;
	k->next = 0;
	kv_done(k);
}

static void kv_on_answer(void *arg, const struct http_resp *resp)
{
	struct kv_poll *k = arg;
	if (back(k->p)) {
		kv_done(k);
		return;
	}
	json_t *j =
	    resp->err == HTTP_E_NONE ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
	int status = 0;
	const json_t *entries = NULL;
	if (!j || inbound_kavenegar_answer(j, &status, &entries) < 0 || status != 200) {
		if (warn_due(&k->warned_at))
			log_warnx("inbound", "provider=kavenegar receive failed http=%ld status=%d",
			          resp->status, status);
		json_decref(j);
		kv_done(k);
		return;
	}
	if (entries && json_array_size(entries) > 0) {
		k->pending = json_incref((json_t *)entries);
		k->next = 0;
	}
	json_decref(j);
	kv_next(k);
}

static void kv_on_timer(uv_timer_t *h)
{
	struct kv_poll *k = h->data;
	struct inbound_poll *p = k->p;
	if (k->busy || p->stopped || p->closing || !redis_is_up(p->st->r))
		return;
	k->busy = 1;
	if (k->pending) { /* store what the last poll could not */
		kv_next(k);
		return;
	}
	struct http_req rq = {
	    .method = "GET",
	    .url = k->url,
	    .timeout_ms = 30000,
	    .max_body = POLL_MAX_ANSWER,
	};
	p->inflight++;
	if (http_request(p->http, &rq, kv_on_answer, k) < 0) {
		p->inflight--;
		kv_done(k);
	}
}

/* ---- start, stop, close ------------------------------------------------------------ */

void inbound_poll_start(struct inbound_poll *p)
{
	if (!p || (!p->tg && !p->kv))
		return;
	p->http = http_client_get(p->loop);
	if (p->tg) {
		log_notice("inbound", "chan=%s getUpdates polling timeout_s=%lld", p->tg->channel,
		           (long long)p->tg->timeout_s);
		p->tg->timer.data = p->tg;
		uv_timer_start(&p->tg->timer, tg_on_timer, 0, 0);
	}
	if (p->kv) {
		log_notice("inbound", "provider=kavenegar receive polling every_ms=%lld",
		           (long long)p->kv->every_ms);
		p->kv->timer.data = p->kv;
		uv_timer_start(&p->kv->timer, kv_on_timer, (uint64_t)p->kv->every_ms,
		               (uint64_t)p->kv->every_ms);
	}
}

void inbound_poll_stop(struct inbound_poll *p)
{
	if (!p)
		return;
	p->stopped = 1;
	if (p->tg)
		uv_timer_stop(&p->tg->timer);
	if (p->kv)
		uv_timer_stop(&p->kv->timer);
}

static void poll_free(struct inbound_poll *p)
{
	void (*cb)(void *) = p->close_cb;
	void *arg = p->close_arg;
	if (p->tg) {
		json_decref(p->tg->batch);
		wipe_free(p->tg->url, p->tg->url_len);
		free(p->tg);
	}
	if (p->kv) {
		json_decref(p->kv->pending);
		wipe_free(p->kv->url, p->kv->url_len);
		free(p->kv);
	}
	secret_free(p->twilio_token);
	secret_free(p->chat_secret);
	free(p);
	if (cb)
		cb(arg);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct inbound_poll *p = h->data;
	if (--p->open_timers == 0)
		poll_free(p);
}

static void maybe_closed(struct inbound_poll *p)
{
	if (p->closing != 1 || p->inflight > 0)
		return;
	p->closing = 2;
	if (p->open_timers == 0) {
		poll_free(p);
		return;
	}
	if (p->tg) {
		p->tg->timer.data = p;
		uv_close((uv_handle_t *)&p->tg->timer, on_timer_closed);
	}
	if (p->kv) {
		p->kv->timer.data = p;
		uv_close((uv_handle_t *)&p->kv->timer, on_timer_closed);
	}
}

void inbound_poll_close(struct inbound_poll *p, void (*cb)(void *arg), void *arg)
{
	if (!p) {
		if (cb)
			cb(arg);
		return;
	}
	p->stopped = 1;
	p->closing = 1;
	p->close_cb = cb;
	p->close_arg = arg;
	if (p->tg)
		uv_timer_stop(&p->tg->timer);
	if (p->kv)
		uv_timer_stop(&p->kv->timer);
	if (p->http) {
		/* The last reference cancels a long poll in flight at once (its
		 * callback runs inside put and sees closing). */
		struct http_client *h = p->http;
		p->http = NULL;
		http_client_put(h);
	}
	maybe_closed(p);
}
