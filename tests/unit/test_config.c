/*
 * test_config.c - the option table, the parser, every type's errors with
 * their exact line, channel sections and the driver helpers, cross-checks,
 * the reload check, secrets (file, env:, cred:), and that the shipped
 * config files and docs/configuration.md agree with cfg_options.
 *
 * Owns: one mkdtemp directory with the files it writes, removed at the end;
 * the environment variables CLUBD_TEST_* and CREDENTIALS_DIRECTORY.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "util.h"

static char dir[64];
static char *created[256];
static size_t ncreated;

static int group_setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/clubd-config-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < ncreated; i++) {
		unlink(created[i]);
		free(created[i]);
	}
	rmdir(dir);
	return 0;
}

/* Write n bytes to dir/name with the given mode; returns the path (owned here). */
static const char *write_file(const char *name, const char *data, size_t n, mode_t mode)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
	for (size_t i = 0; i < ncreated; i++)
		if (strcmp(created[i], path) == 0) {
			free(path);
			return created[i];
		}
	assert_true(ncreated < ARRAY_SIZE(created));
	created[ncreated++] = path;
	return path;
}

static const char *write_conf(const char *text)
{
	return write_file("clubd.conf", text, strlen(text), 0600);
}

static struct config *load_ok(const char *text)
{
	struct config *c = NULL;
	struct cfg_error err;
	int r = config_load(write_conf(text), &c, &err);
	if (r != 0)
		fail_msg("unexpected config error: %s", err.msg);
	assert_non_null(c);
	return c;
}

/* The load fails and the message contains every fragment given. */
static void load_err(const char *text, const char *want)
{
	struct config *c = NULL;
	struct cfg_error err;
	int r = config_load(write_conf(text), &c, &err);
	if (r == 0)
		fail_msg("config loaded, wanted error containing \"%s\"", want);
	assert_null(c);
	if (!strstr(err.msg, want))
		fail_msg("error \"%s\" does not contain \"%s\"", err.msg, want);
	/* Every error names the file first. */
	assert_true(strncmp(err.msg, dir, strlen(dir)) == 0);
}

#define CHAN "[channel.sms]\ndriver = outbox\n"

/* ---- defaults and the table ---------------------------------------------- */

static void test_defaults(void **state)
{
	struct config *c = NULL;
	struct cfg_error err;
	(void)state;
	assert_int_equal(config_load(NULL, &c, &err), 0);
	assert_null(c->path);
	assert_string_equal(c->api_listen, "127.0.0.1");
	assert_int_equal(c->api_port, 8025);
	assert_string_equal(c->api_tokens_file, "");
	assert_int_equal(c->api_max_body, 1024 * 1024);
	assert_int_equal(c->api_max_bulk_body, 256LL * 1024 * 1024);
	assert_int_equal(c->api_max_connections, 1024);
	assert_int_equal(c->api_connection_timeout_ms, 30000);
	assert_int_equal(c->api_request_timeout_ms, 10000);
	assert_string_equal(c->api_port_file, "");
	assert_string_equal(c->redis_host, "127.0.0.1");
	assert_int_equal(c->redis_port, 6379);
	assert_string_equal(c->redis_socket, "");
	assert_string_equal(c->redis_password_file, "");
	assert_int_equal(c->redis_db, 0);
	assert_string_equal(c->redis_prefix, "clubd:");
	assert_int_equal(c->redis_command_timeout_ms, 5000);
	assert_int_equal(c->redis_connect_timeout_ms, 2000);
	assert_int_equal(c->redis_reconnect_min_ms, 100);
	assert_int_equal(c->redis_reconnect_max_ms, 5000);
	assert_int_equal(c->sched_tick_ms, 100);
	assert_int_equal(c->sched_batch, 1000);
	assert_int_equal(c->sched_retry_min_ms, 1000);
	assert_int_equal(c->sched_retry_max_ms, 3600 * 1000);
	assert_int_equal(c->sched_max_attempts, 10);
	assert_int_equal(c->sched_message_ttl_ms, 3LL * 86400 * 1000);
	assert_int_equal(c->sched_reclaim_idle_ms, 60000);
	assert_int_equal(c->sched_reclaim_interval_ms, 5000);
	assert_int_equal(c->dispatch_max_inflight, 512);
	assert_int_equal(c->dispatch_drain_timeout_ms, 15000);
	assert_int_equal(c->dispatch_block_ms, 1000);
	assert_string_equal(c->contacts_default_country, "IR");
	assert_string_equal(c->contacts_default_tz, "Asia/Tehran");
	assert_string_equal(c->contacts_default_lang, "fa");
	assert_int_equal(c->contacts_timeline_max, 500);
	assert_string_equal(c->prefs_quiet_hours, "");
	assert_int_equal(c->prefs_quiet_transactional, 0);
	assert_int_equal(c->log_level, LOG_INFO);
	assert_string_equal(c->log_format, "kv");
	assert_string_equal(c->log_trace, "");
	assert_string_equal(c->outbox_dir, "var/outbox");
	assert_int_equal(c->nchannels, 0);
	assert_int_equal(c->nsections, 0);
	assert_null(config_channel(c, "sms"));
	config_free(c);
}

static void test_table_rows(void **state)
{
	(void)state;
	assert_true(cfg_noptions >= 40);
	for (size_t i = 0; i < cfg_noptions; i++) {
		const struct cfg_opt *o = &cfg_options[i];
		assert_non_null(o->help);
		assert_true(o->min <= o->max);
		assert_true(o->offset < sizeof(struct config));
		for (size_t j = 0; j < i; j++) {
			assert_false(strcmp(o->section, cfg_options[j].section) == 0 &&
			             strcmp(o->name, cfg_options[j].name) == 0);
			assert_true(o->offset != cfg_options[j].offset);
		}
	}
}

static void test_minimal_file(void **state)
{
	(void)state;
	struct config *c = load_ok("# only a channel\n\n" CHAN);
	assert_non_null(c->path);
	assert_int_equal(c->api_port, 8025);
	assert_int_equal(c->nchannels, 1);
	const struct cfg_channel *ch = config_channel(c, "sms");
	assert_non_null(ch);
	assert_string_equal(ch->name, "sms");
	assert_string_equal(ch->driver, "outbox");
	assert_int_equal(ch->max_inflight, 64);
	assert_true(ch->rate == 0);
	assert_int_equal(ch->burst, 1);
	assert_int_equal(ch->timeout_ms, 10000);
	assert_non_null(ch->sec);
	assert_string_equal(ch->sec->name, "channel.sms");
	assert_int_equal(ch->sec->line, 3);
	assert_null(config_channel(c, "email"));
	config_free(c);
}

static void test_values_of_every_type(void **state)
{
	(void)state;
	struct config *c = load_ok("[api]\n"
	                           "port = 0\n"
	                           "max_body = 64k\n"
	                           "max_bulk_body = 4G\n"
	                           "request_timeout = 250ms\n"
	                           "listen = ::1\n"
	                           "[redis]\n"
	                           "prefix = \"app:\"\n"
	                           "db = 15\n"
	                           "socket = /run/redis/redis.sock\n"
	                           "password_file = env:REDIS_PW\n"
	                           "[sched]\n"
	                           "message_ttl = 2h\n"
	                           "max_attempts = 1000\n"
	                           "[prefs]\n"
	                           "quiet_hours = 22:00-08:00\n"
	                           "quiet_transactional = on\n"
	                           "[log]\n"
	                           "level = debug\n"
	                           "format = json\n"
	                           "trace = sched,redis\n"
	                           "[contacts]\n"
	                           "default_country =\n"
	                           "default_lang = en-US\n"
	                           "default_tz = America/Argentina/Buenos_Aires\n"
	                           "[outbox]\n"
	                           "dir = /var/lib/clubd/outbox\n" CHAN);
	assert_int_equal(c->api_port, 0);
	assert_int_equal(c->api_max_body, 64 * 1024);
	assert_int_equal(c->api_max_bulk_body, 4LL * 1024 * 1024 * 1024);
	assert_int_equal(c->api_request_timeout_ms, 250);
	assert_string_equal(c->api_listen, "::1");
	assert_string_equal(c->redis_prefix, "app:");
	assert_int_equal(c->redis_db, 15);
	assert_string_equal(c->redis_socket, "/run/redis/redis.sock");
	assert_string_equal(c->redis_password_file, "env:REDIS_PW");
	assert_int_equal(c->sched_message_ttl_ms, 2 * 3600 * 1000);
	assert_int_equal(c->sched_max_attempts, 1000);
	assert_string_equal(c->prefs_quiet_hours, "22:00-08:00");
	assert_int_equal(c->prefs_quiet_transactional, 1);
	assert_int_equal(c->log_level, LOG_DEBUG);
	assert_string_equal(c->log_format, "json");
	assert_string_equal(c->log_trace, "sched,redis");
	assert_string_equal(c->contacts_default_country, "");
	assert_string_equal(c->contacts_default_lang, "en-US");
	assert_string_equal(c->outbox_dir, "/var/lib/clubd/outbox");
	/* fixed sections are kept raw too, with lines */
	assert_int_equal(c->nsections, 8);
	assert_string_equal(c->sections[0].name, "api");
	assert_int_equal(c->sections[0].nkv, 5);
	assert_string_equal(c->sections[0].kv[1].key, "max_body");
	assert_string_equal(c->sections[0].kv[1].value, "64k");
	assert_int_equal(c->sections[0].kv[1].line, 3);
	config_free(c);
}

static void test_syntax_accepted(void **state)
{
	(void)state;
	/* CRLF line ends, a BOM, comments of both kinds, an inline " ;"
	 * comment, indented keys (never continuations), "key: value". */
	struct config *c = load_ok("\xef\xbb\xbf; comment\r\n"
	                           "# another\r\n"
	                           "[api] ; the API\r\n"
	                           "  port = 9000 ; inline comment\r\n"
	                           "    listen = 0.0.0.0\r\n"
	                           "\tmax_connections: 10\r\n"
	                           "\r\n" CHAN);
	assert_int_equal(c->api_port, 9000);
	assert_string_equal(c->api_listen, "0.0.0.0");
	assert_int_equal(c->api_max_connections, 10);
	config_free(c);

	/* Booleans in every spelling. */
	const char *yes[] = {"yes", "true", "on", "1", "YES", "True"};
	const char *no[] = {"no", "false", "off", "0", "Off"};
	for (size_t i = 0; i < ARRAY_SIZE(yes) + ARRAY_SIZE(no); i++) {
		int want = i < ARRAY_SIZE(yes);
		const char *v = want ? yes[i] : no[i - ARRAY_SIZE(yes)];
		char *text = xasprintf("[prefs]\nquiet_transactional = %s\n" CHAN, v);
		c = load_ok(text);
		assert_int_equal(c->prefs_quiet_transactional, want);
		config_free(c);
		free(text);
	}
}

static void test_long_line(void **state)
{
	(void)state;
	/* A 3000-byte value: inih must see it as one line, and the lines after
	 * it must keep their numbers. */
	char *val = xmalloc(3001);
	memset(val, 'a', 3000);
	val[3000] = '\0';
	char *text = xasprintf("[channel.chat]\ndriver = webhook\nurl = https://x/%s\n"
	                       "[api]\nport = 1\nport = 2\n",
	                       val);
	load_err(text, ":6: api.port: duplicate key (first set at line 5)");
	free(text);
	text = xasprintf("[channel.chat]\ndriver = webhook\nurl = https://x/%s\n", val);
	struct config *c = load_ok(text);
	const struct cfg_channel *ch = config_channel(c, "chat");
	assert_non_null(ch);
	const char *url = cfg_sec_str(ch->sec, "url", NULL);
	assert_non_null(url);
	assert_int_equal(strlen(url), 3000 + strlen("https://x/"));
	config_free(c);
	free(text);

	/* The limit exactly: a 4096-byte line is fine, 4097 is not. */
	for (int extra = 0; extra < 2; extra++) {
		size_t n = 4096 + (size_t)extra - strlen("k = ");
		char *fill = xmalloc(n + 1);
		memset(fill, 'c', n);
		fill[n] = '\0';
		text = xasprintf("[channel.sms]\ndriver = outbox\nk = %s\nlate = 1\n", fill);
		if (extra) {
			load_err(text, ":3: line too long (at most 4096 bytes)");
		} else {
			c = load_ok(text);
			struct cfg_section *s = config_channel(c, "sms")->sec;
			assert_int_equal(strlen(cfg_sec_str(s, "k", "")), n);
			assert_int_equal(s->kv[s->nkv - 1].line, 4);
			config_free(c);
		}
		free(text);
		free(fill);
	}

	char *big = xmalloc(5001);
	memset(big, 'b', 5000);
	big[5000] = '\0';
	text = xasprintf("[api]\n\nlisten = %s\n" CHAN, big);
	load_err(text, ":3: line too long");
	free(text);
	free(big);
	free(val);
}

/* ---- errors, each with its line --------------------------------------------- */

struct bad {
	const char *text;
	const char *want;
};

static void test_type_errors(void **state)
{
	(void)state;
	static const struct bad cases[] = {
	    /* int */
	    {"[api]\n\nport = 70000\n" CHAN, ":3: api.port: must be between 0 and 65535"},
	    {"[api]\nport = 80a\n" CHAN, ":2: api.port: must be an integer"},
	    {"[api]\nport = -1\n" CHAN, ":2: api.port: must be between 0 and 65535"},
	    {"[api]\nport = 99999999999999999999\n" CHAN, ":2: api.port: must be between 0 and"},
	    {"[api]\nport =\n" CHAN, ":2: api.port: must be an integer"},
	    {"[api]\nport = 0x50\n" CHAN, ":2: api.port: must be an integer"},
	    {"[redis]\ndb = 16\n" CHAN, ":2: redis.db: must be between 0 and 15"},
	    /* size */
	    {"[api]\nmax_body = -1M\n" CHAN, ":2: api.max_body: must be a size like 64k"},
	    {"[api]\nmax_body = 1X\n" CHAN, ":2: api.max_body: must be a size"},
	    {"[api]\nmax_body = 100\n" CHAN, ":2: api.max_body: must be between 1k and 64M"},
	    {"[api]\nmax_body = 65M\n" CHAN, ":2: api.max_body: must be between 1k and 64M"},
	    {"[api]\nmax_bulk_body = 99999999999999999999\n" CHAN,
	     ":2: api.max_bulk_body: must be between 1k and 4G"},
	    {"[api]\nmax_bulk_body = 9999999999999999G\n" CHAN,
	     ":2: api.max_bulk_body: must be between 1k and 4G"},
	    /* duration */
	    {"[api]\nrequest_timeout = 10x\n" CHAN,
	     ":2: api.request_timeout: must be a duration like 250ms"},
	    {"[api]\nrequest_timeout = -5s\n" CHAN, ":2: api.request_timeout: must be a duration"},
	    {"[api]\nrequest_timeout = 50ms\n" CHAN,
	     ":2: api.request_timeout: must be between 100ms and 5m"},
	    {"[api]\nrequest_timeout = 99999999999999999999\n" CHAN,
	     ":2: api.request_timeout: must be between 100ms and 5m"},
	    {"[sched]\ntick = 11s\n" CHAN, ":2: sched.tick: must be between 10ms and 10s"},
	    {"[sched]\nreclaim_idle = 2h\n" CHAN,
	     ":2: sched.reclaim_idle: must be between 1s and 1h"},
	    /* bool */
	    {"[prefs]\nquiet_transactional = maybe\n" CHAN,
	     ":2: prefs.quiet_transactional: must be yes or no"},
	    /* level */
	    {"[log]\nlevel = loud\n" CHAN, ":2: log.level: must be one of err, warning"},
	    /* strings with checks */
	    {"[log]\nformat = xml\n" CHAN, ":2: log.format: must be kv or json"},
	    {"[log]\ntrace = a,,b\n" CHAN, ":2: log.trace: must be a comma-separated list"},
	    {"[redis]\nprefix = a b\n" CHAN, ":2: redis.prefix: must not contain spaces"},
	    {"[redis]\nprefix =\n" CHAN, ":2: redis.prefix: must not be empty"},
	    {"[redis]\nprefix = "
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" CHAN,
	     ":2: redis.prefix: must be 1 to 64 characters long"},
	    {"[redis]\npassword_file = env:\n" CHAN, ":2: redis.password_file: env: needs"},
	    {"[redis]\npassword_file = cred:a/b\n" CHAN, ":2: redis.password_file: cred: needs"},
	    {"[redis]\nhost = [::1]\n" CHAN, ":2: redis.host: must be an IP address"},
	    {"[contacts]\ndefault_country = ir\n" CHAN,
	     ":2: contacts.default_country: must be two uppercase letters"},
	    {"[contacts]\ndefault_country = IRN\n" CHAN,
	     ":2: contacts.default_country: must be 0 to 2 characters long"},
	    {"[contacts]\ndefault_tz = ../etc/passwd\n" CHAN,
	     ":2: contacts.default_tz: must be an IANA time zone"},
	    {"[contacts]\ndefault_lang = Farsi\n" CHAN,
	     ":2: contacts.default_lang: must be a language tag"},
	    {"[prefs]\nquiet_hours = 22-08\n" CHAN, ":2: prefs.quiet_hours: must be HH:MM-HH:MM"},
	    {"[prefs]\nquiet_hours = 24:00-08:00\n" CHAN, ":2: prefs.quiet_hours: must be HH:MM"},
	    {"[prefs]\nquiet_hours = 22:60-08:00\n" CHAN, ":2: prefs.quiet_hours: must be HH:MM"},
	    {"[prefs]\nquiet_hours = 08:00-08:00\n" CHAN,
	     ":2: prefs.quiet_hours: start and end must differ"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		load_err(cases[i].text, cases[i].want);
}

static void test_structure_errors(void **state)
{
	(void)state;
	static const struct bad cases[] = {
	    {"[api]\nprot = 1\n" CHAN, ":2: api.prot: unknown key"},
	    {"[api]\nport = 1\n\nport = 2\n" CHAN,
	     ":4: api.port: duplicate key (first set at line 2)"},
	    {CHAN "[bogus]\nx = 1\n", ":3: [bogus]: unknown section"},
	    {"[API]\n" CHAN, ":1: [API]: unknown section"},
	    {"[channel.fax]\ndriver = outbox\n", ":1: [channel.fax]: unknown channel"},
	    {"[channel.]\ndriver = outbox\n", ":1: [channel.]: unknown channel"},
	    {"[provider.]\n" CHAN, ":1: [provider.]: unknown section"},
	    {"[api]\n" CHAN "[api]\n", ":4: [api]: duplicate section (first at line 1)"},
	    {"port = 1\n[api]\n" CHAN, ":1: port: key outside of any [section]"},
	    {"[api]\njunk line\n" CHAN, ":2: syntax error: expected [section] or key = value"},
	    {"[api] junk\n" CHAN, ":1: unexpected text after the section header"},
	    {"[api\n" CHAN, ":1: section header without ']'"},
	    {"[]\n" CHAN, ":1: invalid section name"},
	    {"[a b]\n" CHAN, ":1: invalid section name"},
	    {"[api]\n= 5\n" CHAN, ":2: api: missing key name"},
	    {"[api]\nmax body = 5\n" CHAN, ":2: api: invalid key name"},
	    /* '#' is not an inline comment: the value is "8025 # port" */
	    {"[api]\nport = 8025 # port\n" CHAN, ":2: api.port: must be an integer"},
	    /* CR inside a value, CR-only line ends, other control characters */
	    {"[api]\nlisten = 127.0.0.1\rX\n" CHAN, ":2: api.listen: stray carriage return"},
	    {"[api]\rport = 1\r" CHAN, ":1: stray carriage return"},
	    {"[api]\nlisten = a\x01"
	     "b\n" CHAN,
	     ":2: api.listen: control character 0x01"},
	    {"[api]\nlisten = a\x7f\n" CHAN, ":2: api.listen: control character 0x7f"},
	    /* only the first error is reported */
	    {"[api]\nport = x\n[redis]\nport = y\n" CHAN, ":2: api.port:"},
	    {"[api]\nbad line\nport = x\n" CHAN, ":2: syntax error"},
	    /* no channel at all */
	    {"[api]\nport = 1\n", ": no channel configured"},
	    {"", ": no channel configured"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		load_err(cases[i].text, cases[i].want);

	/* a NUL byte, with its line */
	static const char nul[] = "[api]\nport = 1\nlisten = a\0b\n" CHAN;
	struct config *c = NULL;
	struct cfg_error err;
	const char *path = write_file("nul.conf", nul, sizeof nul - 1, 0600);
	assert_int_equal(config_load(path, &c, &err), -1);
	assert_non_null(strstr(err.msg, "nul.conf:3: NUL byte"));

	/* files that cannot be read */
	char *missing = xasprintf("%s/does-not-exist.conf", dir);
	assert_int_equal(config_load(missing, &c, &err), -1);
	assert_non_null(strstr(err.msg, "does-not-exist.conf: cannot open: "));
	free(missing);
	assert_int_equal(config_load(dir, &c, &err), -1);
	assert_non_null(strstr(err.msg, "not a regular file"));
	assert_null(c);
}

/* ---- channel sections ---------------------------------------------------------- */

static void test_channel_sections(void **state)
{
	(void)state;
	struct config *c = load_ok("[channel.chat]\n"
	                           "driver = webhook\n"
	                           "max_inflight = 8\n"
	                           "rate = 2.5\n"
	                           "timeout = 30s\n"
	                           "url = https://hooks.example.com/clubd\n"
	                           "secret_file = /etc/clubd/webhook.secret\n"
	                           "retries = 3\n"
	                           "verbose = yes\n"
	                           "bogus = 1\n"
	                           "[channel.email]\n"
	                           "driver = outbox\n"
	                           "rate = 100\n"
	                           "burst = 7\n"
	                           "[provider.kavenegar]\n"
	                           "api_key_file = /etc/clubd/kavenegar.key\n");
	assert_int_equal(c->nchannels, 2);
	/* file order */
	assert_string_equal(c->channels[0].name, "chat");
	assert_string_equal(c->channels[1].name, "email");

	const struct cfg_channel *chat = config_channel(c, "chat");
	assert_string_equal(chat->driver, "webhook");
	assert_int_equal(chat->max_inflight, 8);
	assert_true(chat->rate == 2.5);
	assert_int_equal(chat->burst, 3); /* rate rounded up */
	assert_int_equal(chat->timeout_ms, 30000);

	const struct cfg_channel *email = config_channel(c, "email");
	assert_true(email->rate == 100);
	assert_int_equal(email->burst, 7);
	assert_int_equal(cfg_sec_check_unused(email->sec, &(struct cfg_error){{0}}), 0);

	/* the driver's turn: its own keys, then the unused check */
	struct cfg_error err;
	struct cfg_section *s = chat->sec;
	assert_string_equal(cfg_sec_str(s, "url", NULL), "https://hooks.example.com/clubd");
	assert_string_equal(cfg_sec_str(s, "secret_file", NULL), "/etc/clubd/webhook.secret");
	assert_string_equal(cfg_sec_str(s, "absent", "dflt"), "dflt");
	int64_t v;
	assert_int_equal(cfg_sec_int(s, "retries", 0, 0, 10, &v, &err), 0);
	assert_int_equal(v, 3);
	int b;
	assert_int_equal(cfg_sec_bool(s, "verbose", 0, &b, &err), 0);
	assert_int_equal(b, 1);
	assert_int_equal(cfg_sec_check_unused(s, &err), -1);
	assert_non_null(strstr(err.msg, "clubd.conf:10: channel.chat.bogus: unknown key"));
	assert_string_equal(cfg_sec_str(s, "bogus", NULL), "1");
	assert_int_equal(cfg_sec_check_unused(s, &err), 0);

	/* a provider section is kept raw, unvalidated */
	const struct cfg_section *prov = NULL;
	for (size_t i = 0; i < c->nsections; i++)
		if (strcmp(c->sections[i].name, "provider.kavenegar") == 0)
			prov = &c->sections[i];
	assert_non_null(prov);
	assert_int_equal(prov->line, 15);
	assert_int_equal(prov->nkv, 1);
	assert_string_equal(prov->kv[0].key, "api_key_file");
	assert_int_equal(prov->kv[0].line, 16);
	config_free(c);
}

static void test_channel_errors(void **state)
{
	(void)state;
	static const struct bad cases[] = {
	    {"[channel.sms]\nmax_inflight = 3\n", ":1: channel.sms.driver: is required"},
	    {"[channel.sms]\n", ":1: channel.sms.driver: is required"},
	    {"[channel.sms]\ndriver =\n", ":2: channel.sms.driver: must not be empty"},
	    {"[channel.sms]\ndriver = out box\n", ":2: channel.sms.driver: must be a driver name"},
	    {"[channel.sms]\ndriver = outbox\nmax_inflight = 0\n",
	     ":3: channel.sms.max_inflight: must be between 1 and 10000"},
	    {"[channel.sms]\ndriver = outbox\nrate = fast\n",
	     ":3: channel.sms.rate: must be a decimal number"},
	    {"[channel.sms]\ndriver = outbox\nrate = -1\n",
	     ":3: channel.sms.rate: must be a decimal"},
	    {"[channel.sms]\ndriver = outbox\nrate = 1e3\n",
	     ":3: channel.sms.rate: must be a decimal"},
	    {"[channel.sms]\ndriver = outbox\nrate = nan\n",
	     ":3: channel.sms.rate: must be a decimal"},
	    {"[channel.sms]\ndriver = outbox\nrate = 1.\n",
	     ":3: channel.sms.rate: must be a decimal"},
	    {"[channel.sms]\ndriver = outbox\nrate = 100001\n",
	     ":3: channel.sms.rate: must be between 0 and 100000"},
	    {"[channel.sms]\ndriver = outbox\nburst = 0\n",
	     ":3: channel.sms.burst: must be between 1 and 100000"},
	    {"[channel.sms]\ndriver = outbox\ntimeout = 400s\n",
	     ":3: channel.sms.timeout: must be between 100ms and 5m"},
	    {"[channel.sms]\ndriver = outbox\ntimeout = soon\n",
	     ":3: channel.sms.timeout: must be a duration"},
	    {"[channel.sms]\ndriver = outbox\ndriver = webhook\n",
	     ":3: channel.sms.driver: duplicate key (first set at line 2)"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		load_err(cases[i].text, cases[i].want);
}

static void test_sec_helpers(void **state)
{
	(void)state;
	struct config *c = load_ok("[channel.sms]\n"
	                           "driver = outbox\n"
	                           "n = 12x\n"
	                           "big = 99999999999999999999\n"
	                           "d = 3 s\n"
	                           "b = perhaps\n"
	                           "sz = 2M\n"
	                           "sz2 = -4k\n"
	                           "f = 0.25\n"
	                           "empty =\n");
	struct cfg_section *s = config_channel(c, "sms")->sec;
	struct cfg_error err;
	int64_t v;
	double d;
	int b;
	assert_int_equal(cfg_sec_int(s, "n", 0, 0, 100, &v, &err), -1);
	assert_non_null(strstr(err.msg, "clubd.conf:3: channel.sms.n: must be an integer"));
	assert_int_equal(cfg_sec_int(s, "big", 0, 0, 100, &v, &err), -1);
	assert_non_null(strstr(err.msg, ":4: channel.sms.big: must be between 0 and 100"));
	assert_int_equal(cfg_sec_int(s, "missing", 42, 0, 100, &v, &err), 0);
	assert_int_equal(v, 42);
	assert_int_equal(cfg_sec_duration(s, "d", 0, 0, 1000, &v, &err), -1);
	assert_non_null(strstr(err.msg, ":5: channel.sms.d: must be a duration"));
	assert_int_equal(cfg_sec_duration(s, "missing", 7, 0, 1000, &v, &err), 0);
	assert_int_equal(v, 7);
	assert_int_equal(cfg_sec_bool(s, "b", 0, &b, &err), -1);
	assert_non_null(strstr(err.msg, ":6: channel.sms.b: must be yes or no"));
	assert_int_equal(cfg_sec_size(s, "sz", 0, 1, 1LL << 30, &v, &err), 0);
	assert_int_equal(v, 2 * 1024 * 1024);
	assert_int_equal(cfg_sec_size(s, "sz", 0, 1, 1024 * 1024, &v, &err), -1);
	assert_non_null(strstr(err.msg, ":7: channel.sms.sz: must be between 1 and 1M"));
	assert_int_equal(cfg_sec_size(s, "sz2", 0, 1, 1024, &v, &err), -1);
	assert_non_null(strstr(err.msg, ":8: channel.sms.sz2: must be a size"));
	assert_int_equal(cfg_sec_double(s, "f", 0, 0, 1, &d, &err), 0);
	assert_true(d == 0.25);
	assert_string_equal(cfg_sec_str(s, "empty", "x"), "");
	assert_null(cfg_sec_str_req(s, "empty", &err));
	assert_non_null(strstr(err.msg, ":10: channel.sms.empty: must not be empty"));
	assert_null(cfg_sec_str_req(s, "nope", &err));
	assert_non_null(strstr(err.msg, ":1: channel.sms.nope: is required"));
	/* everything was looked at */
	assert_int_equal(cfg_sec_check_unused(s, &err), 0);

	cfg_error_set(&err, s, NULL, "whole section %d", 1);
	assert_non_null(strstr(err.msg, "clubd.conf:1: channel.sms: whole section 1"));
	cfg_error_set(&err, NULL, "k", "x");
	assert_string_equal(err.msg, "k: x");
	config_free(c);
}

/* ---- cross-checks ------------------------------------------------------------- */

static void test_cross_checks(void **state)
{
	(void)state;
	static const struct bad cases[] = {
	    {"[sched]\nretry_min = 2h\n" CHAN,
	     ":2: sched.retry_min: must not be greater than sched.retry_max (1h)"},
	    {"[sched]\nretry_max = 10s\nretry_min = 11s\n" CHAN,
	     ":3: sched.retry_min: must not be greater than sched.retry_max (10s)"},
	    {"[redis]\nreconnect_max = 50ms\n" CHAN,
	     ":2: redis.reconnect_max: must not be less than redis.reconnect_min (100ms)"},
	    {"[sched]\nreclaim_idle = 5s\n" CHAN,
	     ":2: sched.reclaim_idle: must be greater than the timeout of channel.sms (10s)"},
	    {"[sched]\nreclaim_idle = 10s\n" CHAN,
	     ":2: sched.reclaim_idle: must be greater than the timeout of channel.sms (10s)"},
	    {CHAN "[channel.email]\ndriver = outbox\ntimeout = 90s\n",
	     ":5: channel.email.timeout: must be less than sched.reclaim_idle (1m)"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		load_err(cases[i].text, cases[i].want);

	struct config *c =
	    load_ok("[sched]\nretry_min = 1h\nreclaim_idle = 91s\n" CHAN "timeout = 90s\n");
	assert_int_equal(c->sched_retry_min_ms, c->sched_retry_max_ms);
	config_free(c);
}

/* ---- reload ----------------------------------------------------------------------- */

#define BASE                                                                                       \
	"[api]\nport = 8100\n"                                                                     \
	"[channel.sms]\ndriver = outbox\ndir = /tmp/a\n"                                           \
	"[channel.chat]\ndriver = webhook\nurl = https://x/\ntimeout = 10s\n"

static struct config *load_named(const char *name, const char *text)
{
	struct config *c = NULL;
	struct cfg_error err;
	if (config_load(write_file(name, text, strlen(text), 0600), &c, &err) != 0)
		fail_msg("unexpected config error: %s", err.msg);
	return c;
}

static void reload_refused(struct config *cur, const char *text, const char *want)
{
	struct cfg_error err;
	struct config *next = load_named("next.conf", text);
	assert_int_equal(config_reload_check(cur, next, &err), -1);
	assert_string_equal(err.msg, want);
	config_free(next);
}

static void test_reload_check(void **state)
{
	(void)state;
	struct cfg_error err;
	struct config *cur = load_named("cur.conf", BASE);

	struct config *next = load_named("next.conf", BASE);
	assert_int_equal(config_reload_check(cur, next, &err), 0);
	config_free(next);

	/* reloadable options, and the same value spelled differently */
	next =
	    load_named("next.conf", "[api]\nport = 8100\nmax_body = 2M\nrequest_timeout = 3s\n"
	                            "tokens_file = /etc/t\n"
	                            "[sched]\ntick = 50ms\nbatch = 10\nretry_min = 2s\n"
	                            "retry_max = 2h\nmax_attempts = 3\n"
	                            "[dispatch]\nmax_inflight = 9\n"
	                            "[prefs]\nquiet_hours = 21:00-07:00\nquiet_transactional = 1\n"
	                            "[log]\nlevel = debug\nformat = json\ntrace = all\n"
	                            "[channel.sms]\ndriver = outbox\ndir = /tmp/a\nrate = 5\n"
	                            "burst = 10\nmax_inflight = 3\n"
	                            "[channel.chat]\ndriver = webhook\nurl = https://x/\n"
	                            "timeout = 10000ms\n");
	assert_int_equal(config_reload_check(cur, next, &err), 0);
	config_free(next);

	reload_refused(cur,
	               "[api]\nport = 8101\n[channel.sms]\ndriver = outbox\ndir = /tmp/a\n"
	               "[channel.chat]\ndriver = webhook\nurl = https://x/\n",
	               "api.port: changing it needs a restart");
	reload_refused(cur, BASE "[redis]\nprefix = other:\n",
	               "redis.prefix: changing it needs a restart");
	reload_refused(cur, BASE "[sched]\nmessage_ttl = 1d\n",
	               "sched.message_ttl: changing it needs a restart");
	reload_refused(cur,
	               "[api]\nport = 8100\n[channel.sms]\ndriver = sms_kannel\ndir = /tmp/a\n"
	               "[channel.chat]\ndriver = webhook\nurl = https://x/\n",
	               "channel.sms.driver: changing it needs a restart");
	reload_refused(cur,
	               "[api]\nport = 8100\n[channel.sms]\ndriver = outbox\ndir = /tmp/b\n"
	               "[channel.chat]\ndriver = webhook\nurl = https://x/\n",
	               "channel.sms.dir: changing it needs a restart");
	reload_refused(cur,
	               "[api]\nport = 8100\n[channel.sms]\ndriver = outbox\ndir = /tmp/a\n"
	               "[channel.chat]\ndriver = webhook\nurl = https://x/\nextra = 1\n",
	               "channel.chat.extra: changing it needs a restart");
	reload_refused(cur,
	               "[api]\nport = 8100\n[channel.sms]\ndriver = outbox\ndir = /tmp/a\n"
	               "[channel.chat]\ndriver = webhook\nurl = https://x/\ntimeout = 20s\n",
	               "channel.chat.timeout: changing it needs a restart");
	reload_refused(cur, BASE "[channel.email]\ndriver = outbox\n",
	               "channel.email: adding a section needs a restart");
	reload_refused(cur, "[api]\nport = 8100\n[channel.sms]\ndriver = outbox\ndir = /tmp/a\n",
	               "channel.chat: removing a section needs a restart");
	reload_refused(cur, BASE "[provider.x]\nk = v\n",
	               "provider.x: adding a section needs a restart");
	config_free(cur);

	/* defaults against defaults */
	struct config *a, *b;
	assert_int_equal(config_load(NULL, &a, &err), 0);
	assert_int_equal(config_load(NULL, &b, &err), 0);
	assert_int_equal(config_reload_check(a, b, &err), 0);
	config_free(a);
	config_free(b);
}

/* ---- secrets ------------------------------------------------------------------------- */

static void secret_fails(const char *spec, const char *want)
{
	struct cfg_error err;
	char *v = cfg_read_secret(spec, &err);
	if (v)
		fail_msg("secret %s was read, wanted an error", spec);
	if (!strstr(err.msg, want))
		fail_msg("error \"%s\" does not contain \"%s\"", err.msg, want);
	assert_null(strstr(err.msg, "hunter2"));
}

static void test_secrets(void **state)
{
	(void)state;
	struct cfg_error err;
	char *v;

	const char *p = write_file("s1", "hunter2\n", 8, 0600);
	v = cfg_read_secret(p, &err);
	assert_non_null(v);
	assert_string_equal(v, "hunter2");
	free(v);
	/* only one trailing newline goes; CRLF counts as one */
	p = write_file("s2", "a\nb\n\n", 5, 0600);
	v = cfg_read_secret(p, &err);
	assert_string_equal(v, "a\nb\n");
	free(v);
	p = write_file("s3", "hunter2\r\n", 9, 0600);
	v = cfg_read_secret(p, &err);
	assert_string_equal(v, "hunter2");
	free(v);
	/* group-readable: read, with a warning in the log */
	p = write_file("s4", "hunter2", 7, 0640);
	v = cfg_read_secret(p, &err);
	assert_string_equal(v, "hunter2");
	free(v);

	secret_fails(write_file("empty", "", 0, 0600), "is empty");
	secret_fails(write_file("nl", "\n", 1, 0600), "is empty");
	secret_fails(write_file("nul", "hunter2\0x", 9, 0600), "contains a NUL byte");
	char *big = xcalloc(1, 65 * 1024);
	memset(big, 'h', 65 * 1024);
	secret_fails(write_file("big", big, 65 * 1024, 0600), "file too large");
	free(big);
	char *missing = xasprintf("%s/missing-secret", dir);
	secret_fails(missing, "cannot open: ");
	free(missing);
	secret_fails(dir, "not a regular file");
	secret_fails("", "empty secret reference");

	/* env: */
	setenv("CLUBD_TEST_SECRET", "hunter2", 1);
	v = cfg_read_secret("env:CLUBD_TEST_SECRET", &err);
	assert_string_equal(v, "hunter2");
	free(v);
	setenv("CLUBD_TEST_SECRET", "", 1);
	secret_fails("env:CLUBD_TEST_SECRET", "environment variable CLUBD_TEST_SECRET is empty");
	unsetenv("CLUBD_TEST_SECRET");
	secret_fails("env:CLUBD_TEST_SECRET", "environment variable CLUBD_TEST_SECRET is not set");
	secret_fails("env:", "env: needs");
	secret_fails("env:A-B", "env: needs");

	/* cred: */
	write_file("token", "hunter2\n", 8, 0400);
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	v = cfg_read_secret("cred:token", &err);
	assert_string_equal(v, "hunter2");
	free(v);
	secret_fails("cred:nope", "secret cred:nope: cannot open");
	secret_fails("cred:../token", "cred: needs a credential name");
	secret_fails("cred:", "cred: needs a credential name");
	unsetenv("CREDENTIALS_DIRECTORY");
	secret_fails("cred:token", "CREDENTIALS_DIRECTORY is not set");

	/* through a channel section: the error names file:line:key */
	p = write_file("hook.secret", "hunter2\n", 8, 0600);
	char *text = xasprintf("[channel.chat]\ndriver = webhook\nsecret_file = %s\n"
	                       "other_file = %s/absent\n",
	                       p, dir);
	struct config *c = load_ok(text);
	free(text);
	struct cfg_section *s = config_channel(c, "chat")->sec;
	assert_int_equal(cfg_sec_secret(s, "secret_file", &v, &err), 0);
	assert_string_equal(v, "hunter2");
	free(v);
	assert_int_equal(cfg_sec_secret(s, "nothing", &v, &err), 0);
	assert_null(v);
	assert_int_equal(cfg_sec_secret(s, "other_file", &v, &err), -1);
	assert_null(v);
	assert_non_null(strstr(err.msg, "clubd.conf:4: channel.chat.other_file: secret "));
	assert_non_null(strstr(err.msg, "cannot open"));
	config_free(c);
}

/* ---- the shipped files ---------------------------------------------------------------- */

/* The source tree root, from this file's compile-time path. */
static char *src_path(const char *rel)
{
	const char *f = __FILE__;
	const char *t = strstr(f, "tests/unit/");
	if (!t)
		return NULL;
	char *p = xasprintf("%.*s%s", (int)(t - f), f, rel);
	if (access(p, R_OK) != 0) {
		free(p);
		return NULL;
	}
	return p;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	struct buf b;
	buf_init(&b, 1 << 20);
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
		assert_int_equal(buf_append(&b, tmp, n), 0);
	fclose(f);
	return buf_steal(&b);
}

static void test_shipped_configs(void **state)
{
	(void)state;
	char *dev = src_path("config/clubd.dev.conf");
	char *prod = src_path("config/clubd.conf");
	if (!dev || !prod) {
		free(dev);
		free(prod);
		skip();
	}
	struct config *c = NULL;
	struct cfg_error err;
	if (config_load(dev, &c, &err) != 0)
		fail_msg("%s", err.msg);
	assert_int_equal(c->api_port, 8025);
	assert_string_equal(c->api_listen, "127.0.0.1");
	assert_string_equal(c->api_tokens_file, "config/dev-tokens");
	assert_int_equal(c->redis_port, 6390);
	assert_string_equal(c->outbox_dir, "var/outbox");
	assert_int_equal(c->nchannels, 3);
	for (size_t i = 0; i < c->nchannels; i++)
		assert_string_equal(c->channels[i].driver, "outbox");
	config_free(c);

	if (config_load(prod, &c, &err) != 0)
		fail_msg("%s", err.msg);
	const struct cfg_channel *chat = config_channel(c, "chat");
	assert_non_null(chat);
	assert_string_equal(chat->driver, "webhook");
	assert_string_equal(cfg_sec_str(chat->sec, "url", ""), "https://hooks.example.com/clubd");
	assert_string_equal(cfg_sec_str(chat->sec, "secret_file", ""), "/etc/clubd/webhook.secret");
	config_free(c);

	/* Every option appears in its section of clubd.conf, and a commented
	 * "#name = value" line shows the real default. */
	char *text = slurp(prod);
	for (size_t i = 0; i < cfg_noptions; i++) {
		const struct cfg_opt *o = &cfg_options[i];
		char *hdr = xasprintf("\n[%s]", o->section);
		char *sec = strstr(text, hdr);
		if (!sec) {
			fail_msg("clubd.conf has no [%s]", o->section);
			free(hdr);
			continue; /* not reached; tells the compiler sec is set below */
		}
		char *end = strstr(sec + 1, "\n[");
		size_t len = end ? (size_t)(end - sec) : strlen(sec);
		char *block = xstrndup(sec, len);
		char *commented = xasprintf("\n#%s =", o->name);
		char *active = xasprintf("\n%s =", o->name);
		char *c1 = strstr(block, commented);
		if (c1) {
			char *want =
			    xasprintf("\n#%s =%s%s\n", o->name, *o->def ? " " : "", o->def);
			if (!strstr(block, want))
				fail_msg("clubd.conf: [%s] #%s does not show the default \"%s\"",
				         o->section, o->name, o->def);
			free(want);
		} else if (!strstr(block, active)) {
			fail_msg("clubd.conf: [%s] does not mention %s", o->section, o->name);
		}
		free(commented);
		free(active);
		free(block);
		free(hdr);
	}
	free(text);
	free(dev);
	free(prod);
}

static const char *type_name(enum cfg_type t)
{
	switch (t) {
	case CFG_STR:
		return "string";
	case CFG_INT:
		return "integer";
	case CFG_SIZE:
		return "size";
	case CFG_DURATION:
		return "duration";
	case CFG_BOOL:
		return "bool";
	case CFG_LEVEL:
		return "level";
	}
	return "?";
}

static void fmt_val(enum cfg_type t, int64_t v, char *out, size_t n)
{
	static const struct {
		int64_t mult;
		const char *suf;
	} dur[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}},
	  size[] = {{1LL << 30, "G"}, {1 << 20, "M"}, {1 << 10, "k"}};
	const char *last = t == CFG_DURATION ? "ms" : "";
	size_t nu = t == CFG_DURATION ? ARRAY_SIZE(dur) : t == CFG_SIZE ? ARRAY_SIZE(size) : 0;
	for (size_t i = 0; i < nu; i++) {
		int64_t m = t == CFG_DURATION ? dur[i].mult : size[i].mult;
		if (v != 0 && v % m == 0) {
			snprintf(out, n, "%lld%s", (long long)(v / m),
			         t == CFG_DURATION ? dur[i].suf : size[i].suf);
			return;
		}
	}
	snprintf(out, n, "%lld%s", (long long)v, last);
}

static void test_docs_in_sync(void **state)
{
	(void)state;
	char *path = src_path("docs/configuration.md");
	if (!path)
		skip();
	char *text = slurp(path);
	/* "| `api.port` | integer | `8025` | 0..65535 | no |" */
	for (size_t i = 0; i < cfg_noptions; i++) {
		const struct cfg_opt *o = &cfg_options[i];
		char lo[32], hi[32], range[80];
		if (o->type == CFG_INT || o->type == CFG_SIZE || o->type == CFG_DURATION) {
			fmt_val(o->type, o->min, lo, sizeof lo);
			fmt_val(o->type, o->max, hi, sizeof hi);
			snprintf(range, sizeof range, " %s..%s |", lo, hi);
		} else {
			snprintf(range, sizeof range, " ");
		}
		char *row = xasprintf("\n| `%s.%s` | %s | `%s` |%s", o->section, o->name,
		                      type_name(o->type), *o->def ? o->def : "\"\"", range);
		char *at = strstr(text, row);
		if (!at)
			fail_msg("docs/configuration.md: no row starting \"%s\"", row + 1);
		char *eol = strchr(at + 1, '\n');
		char *line = xstrndup(at + 1, eol ? (size_t)(eol - at - 1) : strlen(at + 1));
		const char *rl = o->reloadable ? "| yes |" : "| no |";
		if (!strstr(line, rl))
			fail_msg("docs/configuration.md: %s.%s should say reloadable %s",
			         o->section, o->name, rl);
		free(line);
		free(row);
	}
	free(text);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),         cmocka_unit_test(test_table_rows),
	    cmocka_unit_test(test_minimal_file),     cmocka_unit_test(test_values_of_every_type),
	    cmocka_unit_test(test_syntax_accepted),  cmocka_unit_test(test_long_line),
	    cmocka_unit_test(test_type_errors),      cmocka_unit_test(test_structure_errors),
	    cmocka_unit_test(test_channel_sections), cmocka_unit_test(test_channel_errors),
	    cmocka_unit_test(test_sec_helpers),      cmocka_unit_test(test_cross_checks),
	    cmocka_unit_test(test_reload_check),     cmocka_unit_test(test_secrets),
	    cmocka_unit_test(test_shipped_configs),  cmocka_unit_test(test_docs_in_sync),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
