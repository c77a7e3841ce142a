/*
 * log.c - the log sink.  Writes one line per event to stderr: under systemd
 * (JOURNAL_STREAM set) with a "<prio>" prefix that journald turns into the
 * priority, otherwise with an ISO-8601 timestamp.  `--log-format=json`
 * writes one JSON object per line for log shippers.  Owns the level and the
 * trace list; nothing else.  Lines are capped at 4 KiB.
 */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int cur_level = LOG_INFO;
static enum log_format cur_fmt = LOG_FMT_KV;
static char trace_list[512];
static int trace_all;
static int journal = -1;

static const char *const prio_names[] = {"emerg",   "alert",  "crit", "err",
                                         "warning", "notice", "info", "debug"};

void log_setup(int level, enum log_format fmt)
{
	cur_level = level;
	cur_fmt = fmt;
	journal = getenv("JOURNAL_STREAM") != NULL;
}

int log_level_parse(const char *s)
{
	for (int i = 0; i < 8; i++)
		if (strcmp(s, prio_names[i]) == 0)
			return i;
	if (strcmp(s, "warn") == 0)
		return LOG_WARNING;
	if (strcmp(s, "error") == 0)
		return LOG_ERR;
	return -1;
}

void log_set_trace(const char *list)
{
	trace_all = list && strcmp(list, "all") == 0;
	snprintf(trace_list, sizeof trace_list, ",%s,", list ? list : "");
}

int log_trace_on(const char *sub)
{
	if (trace_all)
		return 1;
	if (trace_list[0] == '\0' || trace_list[1] == ',')
		return 0;
	char pat[64];
	snprintf(pat, sizeof pat, ",%s,", sub);
	return strstr(trace_list, pat) != NULL;
}

static void json_escape(char *out, size_t cap, const char *in)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)in; *p && o + 7 < cap; p++) {
		if (*p == '"' || *p == '\\') {
			out[o++] = '\\';
			out[o++] = (char)*p;
		} else if (*p < 0x20) {
			o += (size_t)snprintf(out + o, cap - o, "\\u%04x", *p);
		} else {
			out[o++] = (char)*p;
		}
	}
	out[o] = '\0';
}

static void emit(int prio, const char *sub, const char *fmt, va_list ap);

void log_vemit(int prio, const char *sub, const char *fmt, va_list ap)
{
	if (prio > cur_level)
		return;
	emit(prio, sub, fmt, ap);
}

void log_emit_always(int prio, const char *sub, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit(prio, sub, fmt, ap);
	va_end(ap);
}

static void emit(int prio, const char *sub, const char *fmt, va_list ap)
{
	if (journal < 0)
		journal = getenv("JOURNAL_STREAM") != NULL;
	char body[4096];
	vsnprintf(body, sizeof body, fmt, ap);
	char line[2 * 4096 + 256];
	if (cur_fmt == LOG_FMT_JSON) {
		char esc[2 * 4096];
		json_escape(esc, sizeof esc, body);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(line, sizeof line,
		         "{\"ts\":%lld.%03ld,\"level\":\"%s\",\"sub\":\"%s\",\"line\":\"%s\"}\n",
		         (long long)ts.tv_sec, ts.tv_nsec / 1000000, prio_names[prio & 7], sub,
		         esc);
	} else if (journal) {
		snprintf(line, sizeof line, "<%d>sub=%s %s\n", prio & 7, sub, body);
	} else {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		char tbuf[32];
		strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(line, sizeof line, "%s.%03ldZ level=%s sub=%s %s\n", tbuf,
		         ts.tv_nsec / 1000000, prio_names[prio & 7], sub, body);
	}
	/* One write() per line so concurrent writers do not interleave. */
	size_t n = strlen(line);
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}

void log_emit(int prio, const char *sub, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vemit(prio, sub, fmt, ap);
	va_end(ap);
}

const char *log_q(const char *s)
{
	static char slots[8][256];
	static unsigned next;
	char *out = slots[next++ & 7];
	size_t o = 0;
	if (!s)
		s = "";
	out[o++] = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (o + 8 >= sizeof slots[0]) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (*p == '"' || *p == '\\') {
			out[o++] = '\\';
			out[o++] = (char)*p;
		} else if (*p < 0x20 || *p == 0x7f) {
			o += (size_t)snprintf(out + o, sizeof slots[0] - o, "\\x%02x", *p);
		} else {
			out[o++] = (char)*p;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}
