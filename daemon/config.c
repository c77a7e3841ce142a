/*
 * config.c - the one typed option table (cfg_options), the INI parser glue,
 * validation, cross-checks, the reload check and secret reading.
 *
 * Owns: struct config and everything hanging off it (strings, channels, raw
 * sections).  Never touches: the log level, the network, Redis, channel
 * drivers (they validate their own [channel.X] keys through cfg_sec_*).
 *
 * Parsing goes through libinih fed by our own line reader
 * (ini_parse_stream): the reader counts lines (so every error carries its
 * line), strips CRLF, a UTF-8 BOM and leading blanks (so an indented line is
 * never a continuation), refuses control characters and overlong lines, and
 * opens sections itself (so empty and duplicate sections are seen).  inih
 * splits "key = value", strips blanks and " ;" comments.
 *
 * Limits: file 1 MiB, line 4096 bytes, section and key names 48 bytes,
 * secrets 64 KiB.  Debian's inih exposes its compile-time knobs as globals;
 * config_load sets them (heap line buffer, no multi-line values), so this
 * module must stay inih's only user and config_load is not thread-safe.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "prefs.h"
#include "util.h"

#define CFG_MAX_FILE   (1024 * 1024)
#define CFG_MAX_LINE   4096
#define CFG_MAX_NAME   48 /* inih truncates section and key names at 49 */
#define CFG_MAX_SECRET (64 * 1024)

#define KB  1024LL
#define MB  (1024LL * KB)
#define GB  (1024LL * MB)
#define SEC 1000LL
#define MIN (60 * SEC)
#define HR  (60 * MIN)
#define DAY (24 * HR)

/* ---- syntax checks for string options --------------------------------- */

static int is_alnum(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static int only_chars(const char *v, const char *extra)
{
	for (const char *p = v; *p; p++)
		if (!is_alnum((unsigned char)*p) && !strchr(extra, *p))
			return 0;
	return 1;
}

static int check_host(const char *v, char *why, size_t n)
{
	if (!only_chars(v, ".:-_")) {
		snprintf(why, n, "must be an IP address or a host name (no brackets, no spaces)");
		return -1;
	}
	return 0;
}

static int check_prefix(const char *v, char *why, size_t n)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= ' ' || *p == 0x7f) {
			snprintf(why, n, "must not contain spaces or control characters");
			return -1;
		}
	return 0;
}

static int check_country(const char *v, char *why, size_t n)
{
	if (*v == '\0')
		return 0;
	if (strlen(v) != 2 || v[0] < 'A' || v[0] > 'Z' || v[1] < 'A' || v[1] > 'Z') {
		snprintf(why, n, "must be two uppercase letters (ISO 3166 alpha-2) or empty");
		return -1;
	}
	return 0;
}

static int check_tz(const char *v, char *why, size_t n)
{
	if (!only_chars(v, "/_+-") || v[0] == '/' || v[0] == '-' || strstr(v, "//") ||
	    v[strlen(v) - 1] == '/') {
		snprintf(why, n, "must be an IANA time zone name like Asia/Tehran or UTC");
		return -1;
	}
	return 0;
}

static int check_lang(const char *v, char *why, size_t n)
{
	/* A BCP 47 tag, loosely: 2-3 lowercase letters, then -subtags. */
	size_t i = 0;
	while (v[i] >= 'a' && v[i] <= 'z')
		i++;
	int ok = i >= 2 && i <= 3;
	while (ok && v[i] == '-') {
		size_t j = ++i;
		while (is_alnum((unsigned char)v[i]))
			i++;
		ok = i - j >= 1 && i - j <= 8;
	}
	if (!ok || v[i] != '\0') {
		snprintf(why, n, "must be a language tag like fa, en or en-US");
		return -1;
	}
	return 0;
}

static int parse_hhmm(const char *s)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] != ':' || s[3] < '0' ||
	    s[3] > '9' || s[4] < '0' || s[4] > '9')
		return -1;
	int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
	if (h > 23 || m > 59)
		return -1;
	return h * 60 + m;
}

static int check_caps(const char *v, char *why, size_t n)
{
	struct prefs_cap caps[PREFS_CAPS_MAX];
	return prefs_parse_caps(v, caps, PREFS_CAPS_MAX, why, n) < 0 ? -1 : 0;
}

static int check_quiet(const char *v, char *why, size_t n)
{
	if (*v == '\0')
		return 0;
	int a = -1, b = -1;
	if (strlen(v) == 11 && v[5] == '-') {
		a = parse_hhmm(v);
		b = parse_hhmm(v + 6);
	}
	if (a < 0 || b < 0) {
		snprintf(why, n, "must be HH:MM-HH:MM (24-hour clock, e.g. 22:00-08:00) or empty");
		return -1;
	}
	if (a == b) {
		snprintf(why, n, "start and end must differ");
		return -1;
	}
	return 0;
}

static int check_format(const char *v, char *why, size_t n)
{
	if (strcmp(v, "kv") != 0 && strcmp(v, "json") != 0) {
		snprintf(why, n, "must be kv or json");
		return -1;
	}
	return 0;
}

static int check_trace(const char *v, char *why, size_t n)
{
	if (*v == '\0' || strcmp(v, "all") == 0)
		return 0;
	int ok = only_chars(v, ",_-") && v[0] != ',' && v[strlen(v) - 1] != ',' && !strstr(v, ",,");
	if (!ok) {
		snprintf(why, n, "must be a comma-separated list of subsystems, or all");
		return -1;
	}
	return 0;
}

static int valid_env_name(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return 0;
	return only_chars(s, "_");
}

static int valid_cred_name(const char *s)
{
	return *s && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static int check_secret_spec(const char *v, char *why, size_t n)
{
	if (strncmp(v, "env:", 4) == 0 && !valid_env_name(v + 4)) {
		snprintf(why, n, "env: needs an environment variable name");
		return -1;
	}
	if (strncmp(v, "cred:", 5) == 0 && !valid_cred_name(v + 5)) {
		snprintf(why, n, "cred: needs a credential name without '/'");
		return -1;
	}
	return 0;
}

/* [links] base_url: "" or http(s)://host[:port][/path], no query or fragment. */
static int check_links_base(const char *v, char *why, size_t n)
{
	size_t h = strncmp(v, "https://", 8) == 0 ? 8 : strncmp(v, "http://", 7) == 0 ? 7 : 0;
	if (*v == '\0')
		return 0;
	if (h == 0 || !is_alnum((unsigned char)v[h]) || strpbrk(v, "?#\\\"<>")) {
		snprintf(why, n,
		         "must be empty or http(s)://host[/path] without query or fragment");
		return -1;
	}
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= ' ' || *p >= 0x7f) {
			snprintf(why, n, "must be ASCII without spaces or control characters");
			return -1;
		}
	return 0;
}

/* [inbound] keyword lists: comma-separated words, each 1..64 bytes after
 * trimming, at most 32, no control characters. */
static int check_keywords(const char *v, char *why, size_t n)
{
	int words = 0;
	for (const char *p = v; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		while (len > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == 0 || len > 64) {
			snprintf(why, n,
			         "must be a comma-separated list of words of 1 to 64 bytes");
			return -1;
		}
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) {
				snprintf(why, n, "must not contain control characters");
				return -1;
			}
		if (++words > 32) {
			snprintf(why, n, "at most 32 keywords");
			return -1;
		}
		p = e ? e + 1 : p + len;
	}
	return 0;
}

/* [inbound] reply texts: no control characters. */
static int check_reply(const char *v, char *why, size_t n)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p == 0x7f) {
			snprintf(why, n, "must not contain control characters");
			return -1;
		}
	return 0;
}

static int check_chat_mode(const char *v, char *why, size_t n)
{
	if (strcmp(v, "off") != 0 && strcmp(v, "webhook") != 0 && strcmp(v, "poll") != 0) {
		snprintf(why, n, "must be off, webhook or poll");
		return -1;
	}
	return 0;
}

static int check_stop_scope(const char *v, char *why, size_t n)
{
	if (strcmp(v, "categories") != 0 && strcmp(v, "channel") != 0) {
		snprintf(why, n, "must be categories or channel");
		return -1;
	}
	return 0;
}

/* [inbound] twilio_url: "" or an http(s) URL without white space. */
static int check_twilio_url(const char *v, char *why, size_t n)
{
	if (*v == '\0')
		return 0;
	if (strncmp(v, "https://", 8) != 0 && strncmp(v, "http://", 7) != 0) {
		snprintf(why, n, "must be empty or the http(s) URL Twilio calls");
		return -1;
	}
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= ' ' || *p >= 0x7f) {
			snprintf(why, n, "must be ASCII without spaces or control characters");
			return -1;
		}
	return 0;
}

/* [points] tiers: the rules of points_tiers_parse() in daemon/club/points.c
 * (tests/unit/test_points.c checks that both accept the same strings):
 * "name:threshold" items separated by commas, names 1..32 bytes of UTF-8
 * without blanks, controls, ':' or ',', unique; thresholds 0..1e12 rising;
 * at most 16. */
static int tier_name_ok(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		size_t len = c < 0x80             ? 1
		             : (c & 0xe0) == 0xc0 ? 2
		             : (c & 0xf0) == 0xe0 ? 3
		             : (c & 0xf8) == 0xf0 ? 4
		                                  : 0;
		if (len == 0 || i + len > n || c < 0x21 || c == 0x7f || (len == 2 && c < 0xc2) ||
		    c > 0xf4)
			return 0;
		for (size_t k = 1; k < len; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
		if ((c == 0xe0 && p[i + 1] < 0xa0) || (c == 0xed && p[i + 1] > 0x9f) ||
		    (c == 0xf0 && p[i + 1] < 0x90) || (c == 0xf4 && p[i + 1] > 0x8f))
			return 0;
		i += len;
	}
	return 1;
}

static int check_tiers(const char *v, char *why, size_t n)
{
	char names[16][33];
	long long last = -1;
	int k = 0;
	const char *p = v + strspn(v, " \t");
	if (*p == '\0')
		return 0;
	for (;;) {
		p += strspn(p, " \t");
		size_t nl = strcspn(p, ":, \t");
		if (nl == 0 || p[nl] != ':')
			goto syntax;
		if (nl > 32 || k == 16 || !tier_name_ok((const unsigned char *)p, nl)) {
			snprintf(why, n, "at most 16 tiers, names 1..32 bytes of UTF-8");
			return -1;
		}
		memcpy(names[k], p, nl);
		names[k][nl] = '\0';
		for (int i = 0; i < k; i++)
			if (strcmp(names[i], names[k]) == 0) {
				snprintf(why, n, "tier %s is given twice", names[k]);
				return -1;
			}
		p += nl + 1;
		size_t dl = strcspn(p, ", \t");
		if (dl == 0 || dl > 13 || strspn(p, "0123456789") < dl)
			goto syntax;
		long long t = strtoll(p, NULL, 10);
		if (t > 1000000000000LL || t <= last) {
			snprintf(why, n, "thresholds must rise, from 0 up to 1000000000000");
			return -1;
		}
		last = t;
		k++;
		p += dl;
		p += strspn(p, " \t");
		if (*p == '\0')
			return 0;
		if (*p != ',')
			goto syntax;
		p++;
	}
syntax:
	snprintf(why, n,
	         "must be name:threshold items separated by commas (bronze:0, silver:1000)");
	return -1;
}

/* [imap] url: empty, or imap:// / imaps:// with a host and an optional
 * port, no credentials, path, query or fragment (the mailbox is its own
 * option). */
static int check_imap_url(const char *v, char *why, size_t n)
{
	if (!*v)
		return 0;
	const char *h = strncmp(v, "imap://", 7) == 0    ? v + 7
	                : strncmp(v, "imaps://", 8) == 0 ? v + 8
	                                                 : NULL;
	size_t hl = h ? strcspn(h, "/") : 0;
	if (!h || hl == 0 || strspn(h + hl, "/") != strlen(h + hl) || memchr(h, '@', hl) ||
	    strpbrk(h, "?#;%\\ \t\r\n")) {
		snprintf(why, n,
		         "must be imap://host[:port] or imaps://host[:port] (no user, path "
		         "or query: see username, password_file and mailbox)");
		return -1;
	}
	return 0;
}

/* [imap] mailbox: printable ASCII without quote or backslash (it is sent
 * as an IMAP quoted string and put into the URL percent-encoded). */
static int check_imap_mailbox(const char *v, char *why, size_t n)
{
	for (const char *p = v; *p; p++)
		if (*p < 0x20 || *p > 0x7E || *p == '"' || *p == '\\') {
			snprintf(why, n,
			         "must be printable ASCII without \" or \\ (use the "
			         "server's modified UTF-7 name for others)");
			return -1;
		}
	return 0;
}

/* [points] currency: empty or an ISO 4217 code (three capital letters). */
static int check_currency(const char *v, char *why, size_t n)
{
	if (*v && (strlen(v) != 3 || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3)) {
		snprintf(why, n, "must be empty or three capital letters (IRR, EUR)");
		return -1;
	}
	return 0;
}

/* A message category name (prefs.h). */
static int check_category(const char *v, char *why, size_t n)
{
	static const char *const cats[] = {"transactional", "promotional", "survey", "lottery",
	                                   "occasion"};
	for (size_t i = 0; i < ARRAY_SIZE(cats); i++)
		if (strcmp(v, cats[i]) == 0)
			return 0;
	snprintf(why, n, "must be transactional, promotional, survey, lottery or occasion");
	return -1;
}

/* A template id (tplset.h: [a-z0-9_-]) or empty. */
static int check_template_id(const char *v, char *why, size_t n)
{
	if (strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(v)) {
		snprintf(why, n, "must be a template id (a-z, 0-9, _ and -) or empty");
		return -1;
	}
	return 0;
}

/* The same rule as occ_window_parse() (occasion.c): one range inside a day. */
static int check_occ_window(const char *v, char *why, size_t n)
{
	int a = strlen(v) == 11 && v[5] == '-' ? parse_hhmm(v) : -1;
	int b = a >= 0 ? (strcmp(v + 6, "24:00") == 0 ? 1440 : parse_hhmm(v + 6)) : -1;
	if (a < 0 || b < 0 || a >= b) {
		snprintf(why, n,
		         "must be HH:MM-HH:MM inside one day, start before end (24:00 allowed)");
		return -1;
	}
	return 0;
}

/* ---- the table --------------------------------------------------------- */

#define OPT(sec, nm, ty, field, def, lo, hi, rl, chk, help)                                        \
	{                                                                                          \
		sec, nm, ty, offsetof(struct config, field), def, lo, hi, rl, help, chk            \
	}

const struct cfg_opt cfg_options[] = {
    OPT("api", "listen", CFG_STR, api_listen, "127.0.0.1", 1, 255, 0, check_host,
        "address the HTTP API binds to"),
    OPT("api", "port", CFG_INT, api_port, "8025", 0, 65535, 0, NULL,
        "TCP port of the HTTP API; 0 picks a free port (logged, see port_file)"),
    OPT("api", "tokens_file", CFG_STR, api_tokens_file, "", 0, 4096, 1, NULL,
        "file of \"name role sha256hex\" lines; empty: every authenticated route answers 401"),
    OPT("api", "max_body", CFG_SIZE, api_max_body, "1M", 1 * KB, 64 * MB, 1, NULL,
        "largest JSON request body"),
    OPT("api", "max_bulk_body", CFG_SIZE, api_max_bulk_body, "256M", 1 * KB, 4 * GB, 1, NULL,
        "largest NDJSON bulk import stream"),
    OPT("api", "max_connections", CFG_INT, api_max_connections, "1024", 1, 100000, 0, NULL,
        "concurrent HTTP connections"),
    OPT("api", "connection_timeout", CFG_DURATION, api_connection_timeout_ms, "30s", 1 * SEC,
        1 * HR, 0, NULL, "idle HTTP connections are closed after this"),
    OPT("api", "request_timeout", CFG_DURATION, api_request_timeout_ms, "10s", 100, 5 * MIN, 1,
        NULL, "deadline for a whole request, Redis work included"),
    OPT("api", "port_file", CFG_STR, api_port_file, "", 0, 4096, 0, NULL,
        "if set, the bound port is written to this file"),
    OPT("api", "callback_secret_file", CFG_STR, api_callback_secret_file, "", 0, 4096, 0,
        check_secret_spec,
        "secret (file, env:NAME or cred:NAME) signing the callback URLs given to providers "
        "(delivery reports); empty: no callbacks"),

    OPT("redis", "host", CFG_STR, redis_host, "127.0.0.1", 1, 255, 0, check_host,
        "Redis server address"),
    OPT("redis", "port", CFG_INT, redis_port, "6379", 1, 65535, 0, NULL, "Redis server port"),
    OPT("redis", "socket", CFG_STR, redis_socket, "", 0, 107, 0, NULL,
        "unix socket path; when set it wins over host and port"),
    OPT("redis", "password_file", CFG_STR, redis_password_file, "", 0, 4096, 0, check_secret_spec,
        "secret for AUTH: a file, env:NAME or cred:NAME; empty: no AUTH"),
    OPT("redis", "db", CFG_INT, redis_db, "0", 0, 15, 0, NULL, "database number"),
    OPT("redis", "prefix", CFG_STR, redis_prefix, "clubd:", 1, 64, 0, check_prefix,
        "prefix of every key clubd writes"),
    OPT("redis", "command_timeout", CFG_DURATION, redis_command_timeout_ms, "5s", 10, 5 * MIN, 0,
        NULL, "a command without a reply by then fails and the connection is reset"),
    OPT("redis", "connect_timeout", CFG_DURATION, redis_connect_timeout_ms, "2s", 10, 1 * MIN, 0,
        NULL, "deadline for connecting (and AUTH/SELECT)"),
    OPT("redis", "reconnect_min", CFG_DURATION, redis_reconnect_min_ms, "100ms", 10, 1 * MIN, 0,
        NULL, "first reconnect delay; doubles up to reconnect_max"),
    OPT("redis", "reconnect_max", CFG_DURATION, redis_reconnect_max_ms, "5s", 10, 10 * MIN, 0, NULL,
        "largest reconnect delay"),

    OPT("sched", "tick", CFG_DURATION, sched_tick_ms, "100ms", 10, 10 * SEC, 1, NULL,
        "how often the due set is scanned"),
    OPT("sched", "batch", CFG_INT, sched_batch, "1000", 1, 100000, 1, NULL,
        "most items moved from the due set per scan"),
    OPT("sched", "retry_min", CFG_DURATION, sched_retry_min_ms, "1s", 100, 1 * DAY, 1, NULL,
        "first retry delay after a temporary failure; doubles up to retry_max"),
    OPT("sched", "retry_max", CFG_DURATION, sched_retry_max_ms, "1h", 1 * SEC, 30 * DAY, 1, NULL,
        "largest retry delay"),
    OPT("sched", "max_attempts", CFG_INT, sched_max_attempts, "10", 1, 1000, 1, NULL,
        "sends tried before a message fails for good"),
    OPT("sched", "message_ttl", CFG_DURATION, sched_message_ttl_ms, "3d", 1 * MIN, 365 * DAY, 0,
        NULL, "a message not sent by then after creation expires"),
    OPT("sched", "reclaim_idle", CFG_DURATION, sched_reclaim_idle_ms, "60s", 1 * SEC, 1 * HR, 0,
        NULL, "work claimed by an instance and idle this long is taken over (XAUTOCLAIM)"),
    OPT("sched", "reclaim_interval", CFG_DURATION, sched_reclaim_interval_ms, "5s", 100, 1 * HR, 0,
        NULL, "how often abandoned work is looked for"),
    OPT("sched", "retention", CFG_DURATION, sched_retention_ms, "30d", 0, 3650 * DAY, 1, NULL,
        "how long a message record and its history are kept after it ended (0 = forever)"),

    OPT("dispatch", "max_inflight", CFG_INT, dispatch_max_inflight, "512", 1, 100000, 1, NULL,
        "messages claimed and not yet settled, all channels together"),
    OPT("dispatch", "drain_timeout", CFG_DURATION, dispatch_drain_timeout_ms, "15s", 0, 10 * MIN, 0,
        NULL, "on SIGTERM, how long in-flight sends may finish"),
    OPT("dispatch", "block", CFG_DURATION, dispatch_block_ms, "1s", 10, 30 * SEC, 0, NULL,
        "XREADGROUP BLOCK time when the ready streams are empty"),
    OPT("dispatch", "status_poll", CFG_DURATION, dispatch_status_poll_ms, "60s", SEC, 3600 * SEC, 1,
        NULL, "how often delivery status is polled from providers without callbacks (Kavenegar)"),

    OPT("campaigns", "tick", CFG_DURATION, camp_tick_ms, "250ms", 10, 10 * SEC, 0, NULL,
        "how often active campaigns are looked at (start, fan-out, pump)"),
    OPT("campaigns", "fanout_batch", CFG_INT, camp_fanout_batch, "1000", 1, 100000, 0, NULL,
        "contacts examined per fan-out step"),
    OPT("campaigns", "pump_batch", CFG_INT, camp_pump_batch, "200", 1, 10000, 1, NULL,
        "recipients turned into messages per pump call"),
    OPT("campaigns", "window", CFG_INT, camp_window, "1000", 1, 1000000, 1, NULL,
        "most messages of one campaign made and not yet ended; bounds the memory and how much "
        "a pause must stop"),

    OPT("contacts", "default_country", CFG_STR, contacts_default_country, "IR", 0, 2, 0,
        check_country, "country for phone numbers without +country code; empty: require it"),
    OPT("contacts", "default_tz", CFG_STR, contacts_default_tz, "Asia/Tehran", 1, 64, 0, check_tz,
        "time zone of contacts that have none"),
    OPT("contacts", "default_lang", CFG_STR, contacts_default_lang, "fa", 2, 35, 0, check_lang,
        "language of contacts that have none"),
    OPT("contacts", "timeline_max", CFG_INT, contacts_timeline_max, "500", 0, 100000, 0, NULL,
        "timeline entries kept per contact (0: no timeline)"),

    OPT("prefs", "quiet_hours", CFG_STR, prefs_quiet_hours, "", 0, 11, 1, check_quiet,
        "default quiet hours in the contact's time zone, HH:MM-HH:MM; empty: none"),
    OPT("prefs", "caps", CFG_STR, prefs_caps, "", 0, 512, 1, check_caps,
        "frequency caps per category and rolling window, e.g. promotional:2/1d,promotional:5/7d; "
        "empty: none"),
    OPT("prefs", "quiet_transactional", CFG_BOOL, prefs_quiet_transactional, "no", 0, 1, 1, NULL,
        "quiet hours also hold transactional messages"),

    OPT("log", "level", CFG_LEVEL, log_level, "info", 0, 7, 1, NULL,
        "err, warning, notice, info or debug"),
    OPT("log", "format", CFG_STR, log_format, "kv", 2, 4, 1, check_format, "kv or json"),
    OPT("log", "trace", CFG_STR, log_trace, "", 0, 256, 1, check_trace,
        "comma-separated subsystems to trace, or all"),

    OPT("outbox", "dir", CFG_STR, outbox_dir, "var/outbox", 1, 4096, 0, NULL,
        "default directory of outbox channel drivers"),

    OPT("points", "earn_points", CFG_INT, points_earn_points, "1", 0, 1000000, 1, NULL,
        "points a purchase earns for each whole earn_amount; 0: purchases earn nothing"),
    OPT("points", "earn_amount", CFG_INT, points_earn_amount, "10000", 1, 1000000000, 1, NULL,
        "currency units (not hundredths) per earn_points"),
    OPT("points", "currency", CFG_STR, points_currency, "", 0, 3, 1, check_currency,
        "only purchases in this ISO 4217 currency earn points; empty: any currency"),
    OPT("points", "signup_points", CFG_INT, points_signup_points, "0", 0, 1000000, 1, NULL,
        "points for a contact's first signup event"),
    OPT("points", "expire_after", CFG_DURATION, points_expire_after_ms, "365d", 0, 36500 * DAY, 1,
        NULL, "points expire this long after they were earned (0 = never)"),
    OPT("points", "tiers", CFG_STR, points_tiers, "", 0, 1024, 1, check_tiers,
        "the tier ladder by lifetime points, e.g. bronze:0, silver:1000, gold:5000; empty: none"),
    OPT("points", "tier_template", CFG_STR, points_tier_template, "", 0, 64, 1, check_template_id,
        "template of the message sent on a promotion; empty: none"),
    OPT("points", "tier_category", CFG_STR, points_tier_category, "promotional", 1, 16, 1,
        check_category, "message category of the tier message (consent applies)"),
    OPT("events", "thank_you_template", CFG_STR, events_thank_you_template, "", 0, 64, 1,
        check_template_id, "template of the thank-you after a purchase event; empty: none"),
    OPT("events", "thank_you_delay", CFG_DURATION, events_thank_you_delay_ms, "30m", 0, 30 * DAY, 1,
        NULL, "the thank-you is due this long after the purchase"),
    OPT("events", "thank_you_category", CFG_STR, events_thank_you_category, "promotional", 1, 16, 1,
        check_category, "message category of the thank-you (consent applies)"),
    OPT("referrals", "referrer_points", CFG_INT, referrals_referrer_points, "0", 0, 1000000, 1,
        NULL, "points for the referrer when a new contact signs up with their code"),
    OPT("referrals", "referee_points", CFG_INT, referrals_referee_points, "0", 0, 1000000, 1, NULL,
        "points for the new contact who signed up with a referral code"),

    OPT("inbound", "create_leads", CFG_BOOL, inbound_create_leads, "yes", 0, 1, 1, NULL,
        "inbound messages from unknown senders create lead contacts; no: audit only"),
    OPT("inbound", "stop_keywords", CFG_STR, inbound_stop_keywords,
        "STOP,UNSUBSCRIBE,CANCEL,END,QUIT,لغو,توقف", 1, 2048, 1, check_keywords,
        "comma-separated opt-out keywords (the whole text must match)"),
    OPT("inbound", "start_keywords", CFG_STR, inbound_start_keywords, "START,عضویت", 1, 2048, 1,
        check_keywords, "comma-separated opt-in keywords"),
    OPT("inbound", "help_keywords", CFG_STR, inbound_help_keywords, "HELP,راهنما", 1, 2048, 1,
        check_keywords, "comma-separated help keywords"),
    OPT("inbound", "stop_scope", CFG_STR, inbound_stop_scope, "categories", 0, 16, 1,
        check_stop_scope,
        "what an opt-out keyword withdraws: categories (every category but transactional, so "
        "the confirmation still goes out) or channel (the channel's consent: no confirmation)"),
    OPT("inbound", "stop_reply", CFG_STR, inbound_stop_reply,
        "You will no longer receive marketing messages from us. Reply START to subscribe again.", 0,
        1000, 1, check_reply, "confirmation of an opt-out in English; empty: none"),
    OPT("inbound", "start_reply", CFG_STR, inbound_start_reply,
        "You are subscribed again. Reply STOP to unsubscribe.", 0, 1000, 1, check_reply,
        "confirmation of an opt-in in English; empty: none"),
    OPT("inbound", "help_reply", CFG_STR, inbound_help_reply,
        "Reply STOP to unsubscribe or START to subscribe again.", 0, 1000, 1, check_reply,
        "answer to a help keyword in English; empty: none"),
    OPT("inbound", "stop_reply_fa", CFG_STR, inbound_stop_reply_fa,
        "لغو عضویت شما انجام شد. برای عضویت دوباره «عضویت» را بفرستید.", 0, 1000, 1, check_reply,
        "confirmation of an opt-out in Persian (a Persian keyword, or contact language fa)"),
    OPT("inbound", "start_reply_fa", CFG_STR, inbound_start_reply_fa,
        "عضویت شما فعال شد. برای لغو «لغو» را بفرستید.", 0, 1000, 1, check_reply,
        "confirmation of an opt-in in Persian"),
    OPT("inbound", "help_reply_fa", CFG_STR, inbound_help_reply_fa,
        "برای لغو «لغو» و برای عضویت دوباره «عضویت» را بفرستید.", 0, 1000, 1, check_reply,
        "answer to a help keyword in Persian"),
    OPT("inbound", "twilio_url", CFG_STR, inbound_twilio_url, "", 0, 1024, 0, check_twilio_url,
        "the URL Twilio calls for incoming SMS, as configured in Twilio (signatures cover it); "
        "empty: http://{Host header}/v1/inbound/twilio"),
    OPT("inbound", "twilio_auth_token_file", CFG_STR, inbound_twilio_auth_token_file, "", 0, 4096,
        0, check_secret_spec,
        "Twilio auth token checking X-Twilio-Signature (file, env:NAME or cred:NAME); empty: "
        "the [channel.sms] twilio driver's auth_token_file"),
    OPT("inbound", "chat", CFG_STR, inbound_chat, "off", 0, 16, 0, check_chat_mode,
        "chat replies from the telegram driver's bot: off, webhook (POST "
        "/v1/inbound/telegram/chat) or poll (getUpdates)"),
    OPT("inbound", "chat_secret_file", CFG_STR, inbound_chat_secret_file, "", 0, 4096, 0,
        check_secret_spec,
        "secret the Bot API sends as X-Telegram-Bot-Api-Secret-Token (setWebhook secret_token); "
        "required for chat = webhook"),
    OPT("inbound", "chat_poll_timeout", CFG_DURATION, inbound_chat_poll_timeout_ms, "25s", 0,
        50 * SEC, 0, NULL, "getUpdates long-poll timeout (whole seconds are sent)"),
    OPT("inbound", "kavenegar_poll", CFG_DURATION, inbound_kavenegar_poll_ms, "0", 0, 1 * HR, 0,
        NULL, "how often Kavenegar's sms/receive.json is polled; 0: never"),
    OPT("inbound", "kavenegar_line", CFG_STR, inbound_kavenegar_line, "", 0, 32, 0, NULL,
        "Kavenegar line number polled; empty: the [channel.sms] sender"),

    OPT("imap", "url", CFG_STR, imap_url, "", 0, 300, 0, check_imap_url,
        "IMAP server polled for email replies: imaps://host[:port] or imap://host[:port]; "
        "empty: no email replies are read"),
    OPT("imap", "username", CFG_STR, imap_username, "", 0, 320, 0, NULL, "IMAP login name"),
    OPT("imap", "password_file", CFG_STR, imap_password_file, "", 0, 4096, 0, check_secret_spec,
        "IMAP password (file, env:NAME or cred:NAME); never logged"),
    OPT("imap", "mailbox", CFG_STR, imap_mailbox, "INBOX", 1, 200, 0, check_imap_mailbox,
        "mailbox whose unseen messages are read as replies"),
    OPT("imap", "interval", CFG_DURATION, imap_interval_ms, "30s", 1 * SEC, 1 * HR, 0, NULL,
        "how often the mailbox is searched for unseen messages"),
    OPT("imap", "tls", CFG_BOOL, imap_tls, "yes", 0, 1, 0, NULL,
        "require TLS (imaps://, or STARTTLS on imap://); no: plain IMAP, for a server on "
        "loopback only"),
    OPT("imap", "ca_file", CFG_STR, imap_ca_file, "", 0, 4096, 0, NULL,
        "PEM file of the CAs the server's certificate is checked against (a private CA); "
        "empty: the system's CAs"),
    OPT("imap", "max_message_size", CFG_SIZE, imap_max_message_size, "10M", 16 * KB, 100 * MB, 0,
        NULL, "bigger messages are not fetched: marked seen and recorded in the audit stream"),

    OPT("links", "base_url", CFG_STR, links_base_url, "", 0, 200, 1, check_links_base,
        "public base URL of tracked links (https://s.example.com gives "
        "https://s.example.com/l/{code}); empty: {{url|track}} leaves URLs as they are"),
    OPT("links", "ttl", CFG_DURATION, links_ttl_ms, "90d", 1 * HR, 3650 * DAY, 1, NULL,
        "how long a tracked link works after the message was sent"),

    OPT("occasions", "enabled", CFG_BOOL, occasions_enabled, "yes", 0, 1, 1, NULL,
        "this instance evaluates occasion rules (any number of instances may)"),
    OPT("occasions", "interval", CFG_DURATION, occasions_interval_ms, "15m", 1 * SEC, 1 * DAY, 1,
        NULL, "how often each rule is evaluated for every contact's local today"),
    OPT("occasions", "window", CFG_STR, occasions_window, "09:00-21:00", 11, 11, 1,
        check_occ_window, "send window in the contact's local time for rules without one"),
    OPT("occasions", "grace", CFG_DURATION, occasions_grace_ms, "1h", 0, 1 * DAY, 1, NULL,
        "after the window's end, messages are still created this long (never past the local day)"),
    OPT("occasions", "lease", CFG_DURATION, occasions_lease_ms, "30s", 1 * SEC, 1 * HR, 1, NULL,
        "a run not advanced for this long is taken over by another instance"),
    OPT("occasions", "batch", CFG_INT, occasions_batch, "500", 1, 10000, 1, NULL,
        "contacts examined per step of a run"),
    OPT("occasions", "idem_ttl", CFG_DURATION, occasions_idem_ttl_ms, "400d", 1 * DAY, 3650 * DAY,
        1, NULL, "how long a (rule, contact, year) send is remembered"),
    OPT("occasions", "expire", CFG_DURATION, occasions_expire_ms, "1d", 1 * MIN, 30 * DAY, 1, NULL,
        "an occasion message not sent this long after its due time expires"),

    OPT("privacy", "key_file", CFG_STR, privacy_key_file, "", 0, 4096, 0, check_secret_spec,
        "key sealing names, addresses and reply texts in Redis (file, env:NAME or cred:NAME; "
        "64 hex digits); empty: stored in clear (docs/privacy.md)"),

    OPT("desk", "reopen", CFG_DURATION, desk_reopen_ms, "7d", 0, 365 * DAY, 1, NULL,
        "a customer who writes again this long after an answer reopens the same ticket "
        "(later: a new ticket); 0: always a new ticket"),
};
const size_t cfg_noptions = ARRAY_SIZE(cfg_options);

static const char *const fixed_sections[] = {
    "api",       "redis",     "sched",     "dispatch", "contacts", "prefs",
    "log",       "outbox",    "links",     "inbound",  "points",   "events",
    "referrals", "occasions", "campaigns", "privacy",  "desk",     "imap"};
static const char *const channel_names[CFG_CHANNEL_KINDS] = {"sms", "email", "chat"};
/* Keys of [channel.X] parsed here; the rest belong to the driver. */
static const char *const channel_common[] = {"driver",
                                             "max_inflight",
                                             "rate",
                                             "burst",
                                             "timeout",
                                             "window_initial",
                                             "breaker_failures",
                                             "breaker_probe",
                                             "breaker_probe_max",
                                             "price"};

/* ---- value parsing and formatting ---------------------------------------- */

static int lower(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static int str_ieq(const char *a, const char *b)
{
	while (*a && lower((unsigned char)*a) == lower((unsigned char)*b)) {
		a++;
		b++;
	}
	return *a == '\0' && *b == '\0';
}

/* Bytes, or with a k/M/G suffix (1024-based; "kb" and "kib" too). */
static int parse_size(const char *s, int64_t *out)
{
	static const struct {
		const char *suf;
		int64_t mult;
	} units[] = {{"", 1},    {"b", 1},    {"k", KB}, {"kb", KB}, {"kib", KB}, {"m", MB},
	             {"mb", MB}, {"mib", MB}, {"g", GB}, {"gb", GB}, {"gib", GB}};
	size_t d = strspn(s, "0123456789");
	if (d == 0)
		return -EINVAL;
	const char *suf = s + d;
	int64_t mult = 0;
	for (size_t i = 0; i < ARRAY_SIZE(units) && !mult; i++)
		if (str_ieq(suf, units[i].suf))
			mult = units[i].mult;
	if (!mult)
		return -EINVAL;
	if (d > 18)
		return -ERANGE;
	char num[19];
	memcpy(num, s, d);
	num[d] = '\0';
	int64_t v;
	if (parse_i64(num, 0, INT64_MAX, &v) < 0)
		return -EINVAL;
	if (v > INT64_MAX / mult)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

static int parse_duration(const char *s, int64_t *out)
{
	int r = parse_duration_ms(s, out);
	/* util refuses more than 15 digits as malformed; it is really a range. */
	if (r == -EINVAL && strspn(s, "0123456789") > 15)
		return -ERANGE;
	return r;
}

static int parse_bool(const char *s, int *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (str_ieq(s, yes[i])) {
			*out = 1;
			return 0;
		}
		if (str_ieq(s, no[i])) {
			*out = 0;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_double(const char *s, double *out)
{
	/* Digits with at most one dot; strtod would also take hex, inf, nan,
	 * exponents and leading blanks. */
	size_t d = strspn(s, "0123456789");
	const char *p = s + d;
	if (*p == '.') {
		size_t f = strspn(p + 1, "0123456789");
		if (f == 0)
			return -EINVAL;
		p += 1 + f;
		d += f;
	}
	if (d == 0 || *p != '\0' || p - s > 32)
		return -EINVAL;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (*end != '\0' || errno || !isfinite(v))
		return -ERANGE;
	*out = v;
	return 0;
}

static const char *fmt_duration(int64_t ms, char *buf, size_t n)
{
	static const struct {
		int64_t mult;
		const char *suf;
	} u[] = {{DAY, "d"}, {HR, "h"}, {MIN, "m"}, {SEC, "s"}};
	for (size_t i = 0; i < ARRAY_SIZE(u); i++)
		if (ms != 0 && ms % u[i].mult == 0) {
			snprintf(buf, n, "%lld%s", (long long)(ms / u[i].mult), u[i].suf);
			return buf;
		}
	snprintf(buf, n, "%lldms", (long long)ms);
	return buf;
}

static const char *fmt_size(int64_t b, char *buf, size_t n)
{
	if (b != 0 && b % GB == 0)
		snprintf(buf, n, "%lldG", (long long)(b / GB));
	else if (b != 0 && b % MB == 0)
		snprintf(buf, n, "%lldM", (long long)(b / MB));
	else if (b != 0 && b % KB == 0)
		snprintf(buf, n, "%lldk", (long long)(b / KB));
	else
		snprintf(buf, n, "%lld", (long long)b);
	return buf;
}

#define BAD_SIZE     "must be a size like 64k, 1M or 4G (k, M, G are powers of 1024)"
#define BAD_DURATION "must be a duration like 250ms, 30s, 5m, 2h or 3d"
#define BAD_BOOL     "must be yes or no (or true/false, on/off, 1/0)"

/* Parse v as option o into the struct at base.  0, or -1 with why set. */
static int opt_set(const struct cfg_opt *o, void *base, const char *v, char *why, size_t n)
{
	char *field = (char *)base + o->offset;
	char a[32], b[32];
	int64_t i;
	int r;

	switch (o->type) {
	case CFG_STR: {
		size_t len = strlen(v);
		if (len < (size_t)o->min || len > (size_t)o->max) {
			if (o->min > 0 && len == 0)
				snprintf(why, n, "must not be empty");
			else if (o->min == o->max)
				snprintf(why, n, "must be %lld characters long", (long long)o->max);
			else
				snprintf(why, n, "must be %lld to %lld characters long",
				         (long long)o->min, (long long)o->max);
			return -1;
		}
		if (o->check && o->check(v, why, n) < 0)
			return -1;
		char **sp = (char **)(void *)field;
		free(*sp);
		*sp = xstrdup(v);
		return 0;
	}
	case CFG_INT:
		r = parse_i64(v, o->min, o->max, &i);
		if (r == -EINVAL) {
			snprintf(why, n, "must be an integer");
			return -1;
		}
		if (r < 0) {
			snprintf(why, n, "must be between %lld and %lld", (long long)o->min,
			         (long long)o->max);
			return -1;
		}
		*(int *)(void *)field = (int)i;
		return 0;
	case CFG_SIZE:
	case CFG_DURATION:
		r = o->type == CFG_SIZE ? parse_size(v, &i) : parse_duration(v, &i);
		if (r == -EINVAL) {
			snprintf(why, n, "%s", o->type == CFG_SIZE ? BAD_SIZE : BAD_DURATION);
			return -1;
		}
		if (r < 0 || i < o->min || i > o->max) {
			if (o->type == CFG_SIZE)
				snprintf(why, n, "must be between %s and %s",
				         fmt_size(o->min, a, sizeof a),
				         fmt_size(o->max, b, sizeof b));
			else
				snprintf(why, n, "must be between %s and %s",
				         fmt_duration(o->min, a, sizeof a),
				         fmt_duration(o->max, b, sizeof b));
			return -1;
		}
		*(int64_t *)(void *)field = i;
		return 0;
	case CFG_BOOL:
		if (parse_bool(v, &r) < 0) {
			snprintf(why, n, BAD_BOOL);
			return -1;
		}
		*(int *)(void *)field = r;
		return 0;
	case CFG_LEVEL:
		r = log_level_parse(v);
		if (r < 0) {
			snprintf(why, n, "must be one of err, warning, notice, info, debug");
			return -1;
		}
		*(int *)(void *)field = r;
		return 0;
	}
	snprintf(why, n, "unknown option type");
	return -1;
}

static const struct cfg_opt *opt_find(const char *section, const char *name)
{
	for (size_t i = 0; i < cfg_noptions; i++)
		if (strcmp(cfg_options[i].section, section) == 0 &&
		    strcmp(cfg_options[i].name, name) == 0)
			return &cfg_options[i];
	return NULL;
}

/* ---- errors --------------------------------------------------------------- */

/* Append s to dst (capacity cap, used *pos), truncating quietly. */
static void msg_cat(char *dst, size_t cap, size_t *pos, const char *s)
{
	size_t n = strlen(s);
	if (*pos + n >= cap)
		n = cap - 1 - *pos;
	memcpy(dst + *pos, s, n);
	*pos += n;
	dst[*pos] = '\0';
}

static void err_vset(struct cfg_error *err, const char *file, int line, const char *sec,
                     const char *key, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));
static void err_vset(struct cfg_error *err, const char *file, int line, const char *sec,
                     const char *key, const char *fmt, va_list ap)
{
	char reason[384], num[16];
	size_t pos = 0;

	vsnprintf(reason, sizeof reason, fmt, ap);
	err->msg[0] = '\0';
	if (file) {
		msg_cat(err->msg, sizeof err->msg, &pos, file);
		if (line > 0 && snprintf(num, sizeof num, ":%d", line) > 0)
			msg_cat(err->msg, sizeof err->msg, &pos, num);
		msg_cat(err->msg, sizeof err->msg, &pos, ": ");
	}
	if (sec) {
		msg_cat(err->msg, sizeof err->msg, &pos, sec);
		if (key)
			msg_cat(err->msg, sizeof err->msg, &pos, ".");
	}
	if (key)
		msg_cat(err->msg, sizeof err->msg, &pos, key);
	if (sec || key)
		msg_cat(err->msg, sizeof err->msg, &pos, ": ");
	msg_cat(err->msg, sizeof err->msg, &pos, reason);
}

static void err_set(struct cfg_error *err, const char *file, int line, const char *sec,
                    const char *key, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void err_set(struct cfg_error *err, const char *file, int line, const char *sec,
                    const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err_vset(err, file, line, sec, key, fmt, ap);
	va_end(ap);
}

static struct cfg_kv *sec_find(const struct cfg_section *s, const char *key)
{
	for (size_t i = 0; i < s->nkv; i++)
		if (strcmp(s->kv[i].key, key) == 0)
			return &s->kv[i];
	return NULL;
}

void cfg_error_set(struct cfg_error *err, const struct cfg_section *s, const char *key,
                   const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (!s) {
		err_vset(err, NULL, 0, NULL, key, fmt, ap);
	} else {
		const struct cfg_kv *kv = key ? sec_find(s, key) : NULL;
		err_vset(err, s->file ? s->file : "(defaults)", kv ? kv->line : s->line, s->name,
		         key, fmt, ap);
	}
	va_end(ap);
}

/* ---- parsing ----------------------------------------------------------------- */

struct cfg_parse {
	struct config *c;
	const char *file; /* as given, for messages */
	struct cfg_error *err;
	int failed;
	int err_line;
	int *opt_line; /* per cfg_options row: the line that set it, 0 = default */

	/* the line reader */
	const char *data;
	size_t len, pos;
	int lineno;
	char *line; /* the current line, cleaned, ending in '\n' */
	size_t line_len, line_off;
	int in_line;
	int cur; /* index of the current section, -1 before the first */
};

static void perr(struct cfg_parse *p, int line, const char *sec, const char *key, const char *fmt,
                 ...) __attribute__((format(printf, 5, 6)));
static void perr(struct cfg_parse *p, int line, const char *sec, const char *key, const char *fmt,
                 ...)
{
	if (p->failed)
		return;
	va_list ap;
	va_start(ap, fmt);
	err_vset(p->err, p->file, line, sec, key, fmt, ap);
	va_end(ap);
	p->failed = 1;
	p->err_line = line;
}

static int is_fixed_section(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(fixed_sections); i++)
		if (strcmp(fixed_sections[i], name) == 0)
			return 1;
	return 0;
}

static int channel_kind(const char *section)
{
	if (strncmp(section, "channel.", 8) != 0)
		return -1;
	for (int i = 0; i < CFG_CHANNEL_KINDS; i++)
		if (strcmp(section + 8, channel_names[i]) == 0)
			return i;
	return -1;
}

static int valid_name(const char *s, size_t n)
{
	if (n == 0 || n > CFG_MAX_NAME)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			return 0;
	return 1;
}

/* A "[name]" line (leading blanks already gone). */
static int section_open(struct cfg_parse *p, const char *l)
{
	struct config *c = p->c;
	const char *end = strchr(l, ']');
	if (!end) {
		perr(p, p->lineno, NULL, NULL, "section header without ']'");
		return -1;
	}
	const char *rest = end + 1 + strspn(end + 1, " \t");
	if (*rest != '\n' && *rest != ';' && *rest != '#') {
		perr(p, p->lineno, NULL, NULL, "unexpected text after the section header");
		return -1;
	}
	size_t n = (size_t)(end - l - 1);
	char name[CFG_MAX_NAME + 1];
	if (!valid_name(l + 1, n)) {
		perr(p, p->lineno, NULL, NULL,
		     "invalid section name (letters, digits, '.', '_', '-', at most %d)",
		     CFG_MAX_NAME);
		return -1;
	}
	memcpy(name, l + 1, n);
	name[n] = '\0';
	if (!is_fixed_section(name) && channel_kind(name) < 0 &&
	    !(strncmp(name, "provider.", 9) == 0 && name[9] != '\0')) {
		if (strncmp(name, "channel.", 8) == 0)
			perr(p, p->lineno, NULL, NULL,
			     "[%s]: unknown channel (expected channel.sms, channel.email or "
			     "channel.chat)",
			     name);
		else
			perr(p, p->lineno, NULL, NULL, "[%s]: unknown section", name);
		return -1;
	}
	for (size_t i = 0; i < c->nsections; i++)
		if (strcmp(c->sections[i].name, name) == 0) {
			perr(p, p->lineno, NULL, NULL, "[%s]: duplicate section (first at line %d)",
			     name, c->sections[i].line);
			return -1;
		}
	c->sections = xrealloc(c->sections, (c->nsections + 1) * sizeof *c->sections);
	struct cfg_section *s = &c->sections[c->nsections];
	memset(s, 0, sizeof *s);
	s->name = xstrdup(name);
	s->file = c->path;
	s->line = p->lineno;
	p->cur = (int)c->nsections++;
	return 0;
}

/* Name the key of a bad line when we can: "section.key". */
static void line_key(struct cfg_parse *p, const char *l, size_t n, char *out, size_t outn)
{
	out[0] = '\0';
	size_t k = strcspn(l, "=:");
	if (k >= n || p->cur < 0)
		return;
	while (k > 0 && (l[k - 1] == ' ' || l[k - 1] == '\t'))
		k--;
	if (valid_name(l, k))
		snprintf(out, outn, "%s.%.*s", p->c->sections[p->cur].name, (int)k, l);
}

/* Take the next raw line, clean it into p->line.  0, or -1 (error set). */
static int next_line(struct cfg_parse *p)
{
	const char *s = p->data + p->pos;
	size_t avail = p->len - p->pos;
	const char *nl = memchr(s, '\n', avail);
	size_t n = nl ? (size_t)(nl - s) : avail;
	p->pos += n + (nl ? 1 : 0);
	p->lineno++;
	if (n > 0 && s[n - 1] == '\r')
		n--; /* CRLF line ends are fine; a CR anywhere else is not */
	if (p->lineno == 1 && n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
		s += 3;
		n -= 3;
	}
	if (n > CFG_MAX_LINE) {
		perr(p, p->lineno, NULL, NULL, "line too long (at most %d bytes)", CFG_MAX_LINE);
		return -1;
	}
	size_t lead = 0;
	while (lead < n && (s[lead] == ' ' || s[lead] == '\t'))
		lead++;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			char key[CFG_MAX_NAME * 2 + 2];
			line_key(p, s + lead, n - lead, key, sizeof key);
			perr(p, p->lineno, *key ? key : NULL, NULL,
			     ch == '\r' ? "stray carriage return (CR) in the line"
			                : "control character 0x%02x in the line",
			     ch);
			return -1;
		}
	}
	s += lead;
	n -= lead;
	memcpy(p->line, s, n);
	p->line[n] = '\n';
	p->line[n + 1] = '\0';
	p->line_len = n + 1;
	p->line_off = 0;
	if (p->line[0] == '[')
		return section_open(p, p->line);
	return 0;
}

/* An fgets-like reader for ini_parse_stream: one line per call, or the
 * next piece of a line inih is growing its buffer for. */
static char *cfg_reader(char *str, int num, void *stream)
{
	struct cfg_parse *p = stream;
	if (num < 2)
		return NULL;
	if (!p->in_line) {
		if (p->failed || p->pos >= p->len)
			return NULL;
		if (next_line(p) < 0)
			return NULL;
		p->in_line = 1;
	}
	size_t left = p->line_len - p->line_off;
	size_t n = left < (size_t)num - 1 ? left : (size_t)num - 1;
	memcpy(str, p->line + p->line_off, n);
	str[n] = '\0';
	p->line_off += n;
	if (p->line_off == p->line_len)
		p->in_line = 0;
	return str;
}

static int cfg_handler(void *user, const char *section, const char *name, const char *value)
{
	struct cfg_parse *p = user;
	int line = p->lineno;
	if (p->failed)
		return 0;
	if (p->cur < 0) {
		perr(p, line, NULL, NULL, "%s: key outside of any [section]",
		     valid_name(name, strlen(name)) ? name : "line");
		return 0;
	}
	struct cfg_section *s = &p->c->sections[p->cur];
	if (strcmp(section, s->name) != 0) {
		perr(p, line, s->name, NULL, "cannot parse this line");
		return 0;
	}
	size_t nl = strlen(name);
	if (nl == 0) {
		perr(p, line, s->name, NULL, "missing key name before '='");
		return 0;
	}
	if (!valid_name(name, nl) || nl > CFG_MAX_NAME) {
		perr(p, line, s->name, NULL,
		     "invalid key name (letters, digits, '.', '_', '-', at most %d)", CFG_MAX_NAME);
		return 0;
	}
	struct cfg_kv *dup = sec_find(s, name);
	if (dup) {
		perr(p, line, s->name, name, "duplicate key (first set at line %d)", dup->line);
		return 0;
	}
	/* "value" with both quotes: the quotes go (no escapes inside). */
	size_t vl = strlen(value);
	if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
		value++;
		vl -= 2;
	}
	s->kv = xrealloc(s->kv, (s->nkv + 1) * sizeof *s->kv);
	struct cfg_kv *kv = &s->kv[s->nkv++];
	kv->key = xstrdup(name);
	kv->value = xstrndup(value, vl);
	kv->line = line;
	kv->used = 0;

	if (!is_fixed_section(s->name))
		return 1; /* channel and provider keys are checked later */
	const struct cfg_opt *o = opt_find(s->name, name);
	if (!o) {
		perr(p, line, s->name, name, "unknown key");
		return 0;
	}
	char why[256];
	if (opt_set(o, p->c, kv->value, why, sizeof why) < 0) {
		perr(p, line, s->name, name, "%s", why);
		return 0;
	}
	kv->used = 1;
	p->opt_line[o - cfg_options] = line;
	return 1;
}

/* ---- channel sections, cross-checks ---------------------------------------- */

static int channel_build(struct config *c, struct cfg_section *s, struct cfg_error *err)
{
	struct cfg_channel ch = {0};
	const char *chname = s->name + 8;
	int64_t v;

	/* `provider = NAME` moves every other key to the [provider.NAME]
	 * profile, so several profiles can sit side by side in one file. */
	const char *prov = cfg_sec_str(s, "provider", NULL);
	if (prov) {
		struct cfg_section *ps = NULL;
		char want[96];
		snprintf(want, sizeof want, "provider.%.80s", prov);
		for (size_t i = 0; i < c->nsections && !ps; i++)
			if (strcmp(c->sections[i].name, want) == 0)
				ps = &c->sections[i];
		if (!ps) {
			cfg_error_set(err, s, "provider", "no [%s] section in the file", want);
			return -1;
		}
		for (size_t i = 0; i < s->nkv; i++)
			if (strcmp(s->kv[i].key, "provider") != 0) {
				cfg_error_set(err, s, s->kv[i].key,
				              "with provider set, put this key in [%s]", want);
				return -1;
			}
		s = ps;
	}

	const char *drv = cfg_sec_str_req(s, "driver", err);
	if (!drv)
		return -1;
	if (!only_chars(drv, "_-") || strlen(drv) > 32) {
		cfg_error_set(err, s, "driver", "must be a driver name like outbox or webhook");
		return -1;
	}
	if (cfg_sec_int(s, "max_inflight", 64, 1, 10000, &v, err) < 0)
		return -1;
	ch.max_inflight = (int)v;
	if (cfg_sec_double(s, "rate", 0, 0, 100000, &ch.rate, err) < 0)
		return -1;
	int64_t bdef = (int64_t)ceil(ch.rate);
	if (bdef < 1)
		bdef = 1;
	if (cfg_sec_int(s, "burst", bdef, 1, 100000, &v, err) < 0)
		return -1;
	ch.burst = (int)v;
	if (cfg_sec_duration(s, "timeout", 10 * SEC, 100, 300 * SEC, &ch.timeout_ms, err) < 0)
		return -1;
	/* The adaptive window and circuit breaker (channels/channel.c reads
	 * these keys with the same defaults once they are validated here). */
	int64_t wi, bp, bpm;
	if (cfg_sec_int(s, "window_initial", (ch.max_inflight + 3) / 4, 1, ch.max_inflight, &wi,
	                err) < 0)
		return -1;
	if (cfg_sec_int(s, "breaker_failures", 10, 0, 1000000, &v, err) < 0)
		return -1;
	if (cfg_sec_duration(s, "breaker_probe", 30 * SEC, 10, HR, &bp, err) < 0)
		return -1;
	if (cfg_sec_duration(s, "breaker_probe_max", 10 * MIN, 10, 24 * HR, &bpm, err) < 0)
		return -1;
	if (cfg_sec_double(s, "price", 0, 0, 1e9, &ch.price, err) < 0)
		return -1;
	if (bp > bpm) {
		char a[32];
		if (sec_find(s, "breaker_probe"))
			cfg_error_set(err, s, "breaker_probe",
			              "must not be greater than breaker_probe_max (%s)",
			              fmt_duration(bpm, a, sizeof a));
		else
			cfg_error_set(err, s, "breaker_probe_max",
			              "must not be less than breaker_probe (%s)",
			              fmt_duration(bp, a, sizeof a));
		return -1;
	}
	ch.name = xstrdup(chname);
	ch.driver = xstrdup(drv);
	ch.sec = s;
	c->channels = xrealloc(c->channels, (c->nchannels + 1) * sizeof *c->channels);
	c->channels[c->nchannels++] = ch;
	return 0;
}

static int cross_check(struct cfg_parse *p, int skip_channels)
{
	struct config *c = p->c;
	char a[32];
	const struct {
		const char *sec, *lo, *hi;
		int64_t vlo, vhi;
	} pairs[] = {
	    {"sched", "retry_min", "retry_max", c->sched_retry_min_ms, c->sched_retry_max_ms},
	    {"redis", "reconnect_min", "reconnect_max", c->redis_reconnect_min_ms,
	     c->redis_reconnect_max_ms},
	};
	for (size_t i = 0; i < ARRAY_SIZE(pairs); i++) {
		if (pairs[i].vlo <= pairs[i].vhi)
			continue;
		int llo = p->opt_line[opt_find(pairs[i].sec, pairs[i].lo) - cfg_options];
		int lhi = p->opt_line[opt_find(pairs[i].sec, pairs[i].hi) - cfg_options];
		if (llo)
			perr(p, llo, pairs[i].sec, pairs[i].lo,
			     "must not be greater than %s.%s (%s)", pairs[i].sec, pairs[i].hi,
			     fmt_duration(pairs[i].vhi, a, sizeof a));
		else
			perr(p, lhi, pairs[i].sec, pairs[i].hi, "must not be less than %s.%s (%s)",
			     pairs[i].sec, pairs[i].lo, fmt_duration(pairs[i].vlo, a, sizeof a));
		return -1;
	}

	int lidle = p->opt_line[opt_find("sched", "reclaim_idle") - cfg_options];
	for (size_t i = 0; i < c->nchannels; i++) {
		const struct cfg_channel *ch = &c->channels[i];
		if (ch->timeout_ms < c->sched_reclaim_idle_ms)
			continue;
		if (lidle) {
			perr(p, lidle, "sched", "reclaim_idle",
			     "must be greater than the timeout of channel.%s (%s)", ch->name,
			     fmt_duration(ch->timeout_ms, a, sizeof a));
		} else {
			cfg_error_set(p->err, ch->sec, "timeout",
			              "must be less than sched.reclaim_idle (%s)",
			              fmt_duration(c->sched_reclaim_idle_ms, a, sizeof a));
			p->failed = 1;
		}
		return -1;
	}
	if (!skip_channels && c->nchannels == 0) {
		perr(p, 0, NULL, NULL,
		     "no channel configured: add at least one of [channel.sms], [channel.email], "
		     "[channel.chat]");
		return -1;
	}
	return 0;
}

static void apply_defaults(struct config *c)
{
	char why[256];
	for (size_t i = 0; i < cfg_noptions; i++) {
		if (opt_set(&cfg_options[i], c, cfg_options[i].def, why, sizeof why) < 0) {
			/* A broken table is a programming error. */
			fprintf(stderr, "clubd: %s:%d: default of %s.%s: %s\n", __FILE__, __LINE__,
			        cfg_options[i].section, cfg_options[i].name, why);
			abort();
		}
	}
}

/* Read a whole regular file of at most max bytes (NUL-terminated copy). */
static int read_file(const char *path, size_t max, char **out, size_t *outlen, unsigned *mode,
                     const char **why, int *eno)
{
	*eno = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		*eno = errno;
		*why = "cannot open";
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		*eno = errno;
		*why = "cannot stat";
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		*why = "not a regular file";
		close(fd);
		return -1;
	}
	*mode = (unsigned)st.st_mode;
	char *b = xmalloc(max + 2);
	size_t len = 0;
	for (;;) {
		ssize_t r = read(fd, b + len, max + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*eno = errno;
			*why = "cannot read";
			explicit_bzero(b, max + 2);
			free(b);
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > max) {
			*why = "file too large";
			explicit_bzero(b, max + 2);
			free(b);
			close(fd);
			return -1;
		}
	}
	close(fd);
	b[len] = '\0';
	*out = b;
	*outlen = len;
	return 0;
}

int config_load(const char *path, struct config **out, struct cfg_error *err)
{
	struct config *c = xcalloc(1, sizeof *c);
	struct cfg_parse p = {0};
	char *data = NULL;
	size_t len = 0;
	const char *why;
	int eno, rc = -1;

	err->msg[0] = '\0';
	apply_defaults(c);
	if (!path) {
		*out = c;
		return 0;
	}
	c->path = xstrdup(path);
	unsigned mode;
	if (read_file(path, CFG_MAX_FILE, &data, &len, &mode, &why, &eno) < 0) {
		if (eno)
			err_set(err, path, 0, NULL, NULL, "%s: %s", why, strerror(eno));
		else
			err_set(err, path, 0, NULL, NULL, "%s (at most %d bytes)", why,
			        CFG_MAX_FILE);
		goto out;
	}
	if (memchr(data, '\0', len)) {
		/* Locate the line for the message. */
		const char *z = memchr(data, '\0', len);
		int line = 1;
		for (const char *q = data; q < z; q++)
			line += *q == '\n';
		err_set(err, path, line, NULL, NULL, "NUL byte in the line");
		goto out;
	}

	p.c = c;
	p.file = path;
	p.err = err;
	p.opt_line = xcalloc(cfg_noptions, sizeof *p.opt_line);
	p.data = data;
	p.len = len;
	p.line = xmalloc(CFG_MAX_LINE + 2);
	p.cur = -1;

	/* Debian's inih turns its compile-time knobs into globals: a heap line
	 * buffer that may grow to our line limit, and no multi-line values. */
	ini_use_stack = 0;
	ini_allow_realloc = 1;
	ini_initial_alloc = 256;
	ini_max_line = CFG_MAX_LINE + 3;
	ini_allow_multiline = 0;
	ini_allow_no_value = 0;
	ini_stop_on_first_error = 0;

	int r = ini_parse_stream(cfg_reader, &p, cfg_handler, &p);
	if (r == -2) {
		err_set(err, path, 0, NULL, NULL, "out of memory while parsing");
		goto out;
	}
	if (r > 0 && (!p.failed || r < p.err_line)) {
		p.failed = 0;
		perr(&p, r, NULL, NULL, "syntax error: expected [section] or key = value");
	}
	if (p.failed)
		goto out;

	for (size_t i = 0; i < c->nsections; i++)
		if (channel_kind(c->sections[i].name) >= 0 &&
		    channel_build(c, &c->sections[i], err) < 0)
			goto out;
	if (cross_check(&p, 0) < 0)
		goto out;

	if (!*c->api_tokens_file)
		log_warnx("config",
		          "file=%s msg=\"api.tokens_file is empty: every authenticated "
		          "route answers 401\"",
		          log_q(path));
	*out = c;
	c = NULL;
	rc = 0;
out:
	if (data) {
		explicit_bzero(data, len);
		free(data);
	}
	free(p.line);
	free(p.opt_line);
	config_free(c);
	return rc;
}

void config_free(struct config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < cfg_noptions; i++)
		if (cfg_options[i].type == CFG_STR)
			free(*(char **)(void *)((char *)c + cfg_options[i].offset));
	for (size_t i = 0; i < c->nchannels; i++) {
		free(c->channels[i].name);
		free(c->channels[i].driver);
	}
	free(c->channels);
	for (size_t i = 0; i < c->nsections; i++) {
		struct cfg_section *s = &c->sections[i];
		for (size_t j = 0; j < s->nkv; j++) {
			free(s->kv[j].key);
			free(s->kv[j].value);
		}
		free(s->kv);
		free(s->name);
	}
	free(c->sections);
	free(c->path);
	free(c);
}

const struct cfg_channel *config_channel(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->nchannels; i++)
		if (strcmp(c->channels[i].name, name) == 0)
			return &c->channels[i];
	return NULL;
}

/* ---- reload ------------------------------------------------------------------ */

static int opt_equal(const struct cfg_opt *o, const struct config *a, const struct config *b)
{
	const char *fa = (const char *)a + o->offset, *fb = (const char *)b + o->offset;
	switch (o->type) {
	case CFG_STR: {
		const char *sa = *(char *const *)(const void *)fa;
		const char *sb = *(char *const *)(const void *)fb;
		return strcmp(sa ? sa : "", sb ? sb : "") == 0;
	}
	case CFG_INT:
	case CFG_BOOL:
	case CFG_LEVEL:
		return *(const int *)(const void *)fa == *(const int *)(const void *)fb;
	case CFG_SIZE:
	case CFG_DURATION:
		return *(const int64_t *)(const void *)fa == *(const int64_t *)(const void *)fb;
	}
	return 0;
}

static const struct cfg_section *find_section(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->nsections; i++)
		if (strcmp(c->sections[i].name, name) == 0)
			return &c->sections[i];
	return NULL;
}

static int is_common_key(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(channel_common); i++)
		if (strcmp(channel_common[i], key) == 0)
			return 1;
	return 0;
}

/* First raw key that differs between two sections (common channel keys
 * skipped when skip_common), or NULL. */
static const char *raw_diff(const struct cfg_section *a, const struct cfg_section *b,
                            int skip_common)
{
	for (int pass = 0; pass < 2; pass++) {
		const struct cfg_section *x = pass ? b : a, *y = pass ? a : b;
		for (size_t i = 0; i < x->nkv; i++) {
			if (skip_common && is_common_key(x->kv[i].key))
				continue;
			const struct cfg_kv *o = sec_find(y, x->kv[i].key);
			if (!o || strcmp(o->value, x->kv[i].value) != 0)
				return x->kv[i].key;
		}
	}
	return NULL;
}

#define RESTART "changing it needs a restart"

int config_reload_check(const struct config *cur, const struct config *next, struct cfg_error *err)
{
	for (size_t i = 0; i < cfg_noptions; i++) {
		const struct cfg_opt *o = &cfg_options[i];
		if (!o->reloadable && !opt_equal(o, cur, next)) {
			err_set(err, NULL, 0, o->section, o->name, RESTART);
			return -1;
		}
	}
	/* Channels and provider sections: same set, same non-reloadable keys. */
	for (int pass = 0; pass < 2; pass++) {
		const struct config *x = pass ? next : cur, *y = pass ? cur : next;
		for (size_t i = 0; i < x->nsections; i++) {
			const char *name = x->sections[i].name;
			if (is_fixed_section(name) || find_section(y, name))
				continue;
			err_set(err, NULL, 0, name, NULL, "%s a section needs a restart",
			        pass ? "adding" : "removing");
			return -1;
		}
	}
	for (size_t i = 0; i < cur->nsections; i++) {
		const struct cfg_section *a = &cur->sections[i];
		if (is_fixed_section(a->name))
			continue;
		const struct cfg_section *b = find_section(next, a->name);
		int chan = channel_kind(a->name) >= 0;
		if (chan) {
			const struct cfg_channel *ca = config_channel(cur, a->name + 8);
			const struct cfg_channel *cb = config_channel(next, a->name + 8);
			if (ca && cb && strcmp(ca->driver, cb->driver) != 0) {
				err_set(err, NULL, 0, a->name, "driver", RESTART);
				return -1;
			}
			if (ca && cb && ca->timeout_ms != cb->timeout_ms) {
				err_set(err, NULL, 0, a->name, "timeout", RESTART);
				return -1;
			}
		}
		const char *k = raw_diff(a, b, chan);
		if (k) {
			err_set(err, NULL, 0, a->name, k, RESTART);
			return -1;
		}
	}
	return 0;
}

/* ---- helpers for drivers ------------------------------------------------------ */

static struct cfg_kv *sec_take(struct cfg_section *s, const char *key)
{
	struct cfg_kv *kv = sec_find(s, key);
	if (kv)
		kv->used = 1;
	return kv;
}

const char *cfg_sec_str(struct cfg_section *s, const char *key, const char *def)
{
	struct cfg_kv *kv = sec_take(s, key);
	return kv ? kv->value : def;
}

const char *cfg_sec_str_req(struct cfg_section *s, const char *key, struct cfg_error *err)
{
	struct cfg_kv *kv = sec_take(s, key);
	if (!kv) {
		cfg_error_set(err, s, key, "is required");
		return NULL;
	}
	if (!*kv->value) {
		cfg_error_set(err, s, key, "must not be empty");
		return NULL;
	}
	return kv->value;
}

int cfg_sec_int(struct cfg_section *s, const char *key, int64_t def, int64_t min, int64_t max,
                int64_t *out, struct cfg_error *err)
{
	struct cfg_kv *kv = sec_take(s, key);
	if (!kv) {
		*out = def;
		return 0;
	}
	int r = parse_i64(kv->value, min, max, out);
	if (r == -EINVAL) {
		cfg_error_set(err, s, key, "must be an integer");
		return -1;
	}
	if (r < 0) {
		cfg_error_set(err, s, key, "must be between %lld and %lld", (long long)min,
		              (long long)max);
		return -1;
	}
	return 0;
}

int cfg_sec_size(struct cfg_section *s, const char *key, int64_t def, int64_t min, int64_t max,
                 int64_t *out, struct cfg_error *err)
{
	char a[32], b[32];
	int64_t v;
	struct cfg_kv *kv = sec_take(s, key);
	if (!kv) {
		*out = def;
		return 0;
	}
	int r = parse_size(kv->value, &v);
	if (r == -EINVAL) {
		cfg_error_set(err, s, key, BAD_SIZE);
		return -1;
	}
	if (r < 0 || v < min || v > max) {
		cfg_error_set(err, s, key, "must be between %s and %s", fmt_size(min, a, sizeof a),
		              fmt_size(max, b, sizeof b));
		return -1;
	}
	*out = v;
	return 0;
}

int cfg_sec_duration(struct cfg_section *s, const char *key, int64_t def, int64_t min, int64_t max,
                     int64_t *out, struct cfg_error *err)
{
	char a[32], b[32];
	int64_t v;
	struct cfg_kv *kv = sec_take(s, key);
	if (!kv) {
		*out = def;
		return 0;
	}
	int r = parse_duration(kv->value, &v);
	if (r == -EINVAL) {
		cfg_error_set(err, s, key, BAD_DURATION);
		return -1;
	}
	if (r < 0 || v < min || v > max) {
		cfg_error_set(err, s, key, "must be between %s and %s",
		              fmt_duration(min, a, sizeof a), fmt_duration(max, b, sizeof b));
		return -1;
	}
	*out = v;
	return 0;
}

int cfg_sec_bool(struct cfg_section *s, const char *key, int def, int *out, struct cfg_error *err)
{
	struct cfg_kv *kv = sec_take(s, key);
	if (!kv) {
		*out = def;
		return 0;
	}
	if (parse_bool(kv->value, out) < 0) {
		cfg_error_set(err, s, key, BAD_BOOL);
		return -1;
	}
	return 0;
}

int cfg_sec_double(struct cfg_section *s, const char *key, double def, double min, double max,
                   double *out, struct cfg_error *err)
{
	double v;
	struct cfg_kv *kv = sec_take(s, key);
	if (!kv) {
		*out = def;
		return 0;
	}
	int r = parse_double(kv->value, &v);
	if (r == -EINVAL) {
		cfg_error_set(err, s, key, "must be a decimal number like 5 or 2.5");
		return -1;
	}
	if (r < 0 || v < min || v > max) {
		cfg_error_set(err, s, key, "must be between %g and %g", min, max);
		return -1;
	}
	*out = v;
	return 0;
}

int cfg_sec_secret(struct cfg_section *s, const char *key, char **out, struct cfg_error *err)
{
	struct cfg_kv *kv = sec_take(s, key);
	*out = NULL;
	if (!kv)
		return 0;
	struct cfg_error e;
	char *v = cfg_read_secret(kv->value, &e);
	if (!v) {
		cfg_error_set(err, s, key, "%s", e.msg);
		return -1;
	}
	*out = v;
	return 0;
}

int cfg_sec_check_unused(const struct cfg_section *s, struct cfg_error *err)
{
	for (size_t i = 0; i < s->nkv; i++)
		if (!s->kv[i].used) {
			cfg_error_set(err, s, s->kv[i].key, "unknown key");
			return -1;
		}
	return 0;
}

/* ---- secrets ------------------------------------------------------------------ */

static char *secret_file(const char *path, const char *label, struct cfg_error *err)
{
	char *b;
	size_t len;
	const char *why;
	int eno;

	unsigned mode;
	if (read_file(path, CFG_MAX_SECRET, &b, &len, &mode, &why, &eno) < 0) {
		if (eno)
			err_set(err, NULL, 0, NULL, NULL, "secret %s: %s: %s", label, why,
			        strerror(eno));
		else
			err_set(err, NULL, 0, NULL, NULL, "secret %s: %s (at most %d bytes)", label,
			        why, CFG_MAX_SECRET);
		return NULL;
	}
	if (mode & 044)
		log_warnx("config",
		          "secret=%s mode=%03o msg=\"secret file is readable by group or others; "
		          "chmod 0600 (or 0400) and chown it to the clubd user\"",
		          log_q(label), mode & 0777);
	if (len > 0 && b[len - 1] == '\n')
		b[--len] = '\0';
	if (len > 0 && b[len - 1] == '\r')
		b[--len] = '\0';
	const char *fail = NULL;
	if (len == 0)
		fail = "is empty";
	else if (memchr(b, '\0', len))
		fail = "contains a NUL byte";
	if (fail) {
		err_set(err, NULL, 0, NULL, NULL, "secret %s %s", label, fail);
		explicit_bzero(b, len);
		free(b);
		return NULL;
	}
	return b;
}

char *cfg_read_secret(const char *spec, struct cfg_error *err)
{
	if (!spec || !*spec) {
		err_set(err, NULL, 0, NULL, NULL, "empty secret reference");
		return NULL;
	}
	if (strncmp(spec, "env:", 4) == 0) {
		const char *name = spec + 4;
		if (!valid_env_name(name)) {
			err_set(err, NULL, 0, NULL, NULL,
			        "env: needs an environment variable name");
			return NULL;
		}
		const char *v = getenv(name);
		if (!v) {
			err_set(err, NULL, 0, NULL, NULL, "environment variable %s is not set",
			        name);
			return NULL;
		}
		if (!*v) {
			err_set(err, NULL, 0, NULL, NULL, "environment variable %s is empty", name);
			return NULL;
		}
		if (strlen(v) > CFG_MAX_SECRET) {
			err_set(err, NULL, 0, NULL, NULL,
			        "environment variable %s is too long (at most %d bytes)", name,
			        CFG_MAX_SECRET);
			return NULL;
		}
		return xstrdup(v);
	}
	if (strncmp(spec, "cred:", 5) == 0) {
		const char *name = spec + 5;
		if (!valid_cred_name(name)) {
			err_set(err, NULL, 0, NULL, NULL,
			        "cred: needs a credential name without '/'");
			return NULL;
		}
		const char *dir = getenv("CREDENTIALS_DIRECTORY");
		if (!dir || !*dir) {
			err_set(
			    err, NULL, 0, NULL, NULL,
			    "%s: $CREDENTIALS_DIRECTORY is not set (use systemd LoadCredential=)",
			    spec);
			return NULL;
		}
		char *path = xasprintf("%s/%s", dir, name);
		char *v = secret_file(path, spec, err);
		free(path);
		return v;
	}
	return secret_file(spec, spec, err);
}
