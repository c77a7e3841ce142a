/*
 * log.h - one line per event, key=value, journald priorities.
 *
 * Usage: log_info("sched", "moved=%d lag_ms=%lld", n, lag);
 * The subsystem becomes `sub=`; callers write the rest as key=value pairs and
 * quote free text with log_q().  Never log secrets or message bodies.
 */
#ifndef CLUBD_LOG_H
#define CLUBD_LOG_H

#include <stdarg.h>
#include <syslog.h> /* LOG_ERR ... LOG_DEBUG priorities only */

enum log_format { LOG_FMT_KV, LOG_FMT_JSON };

/* level: a syslog priority; messages above it are dropped. */
void log_setup(int level, enum log_format fmt);
/* Parse "err", "warning", "notice", "info", "debug"; -1 when unknown. */
int log_level_parse(const char *s);
/* Comma-separated subsystems whose log_trace() lines are emitted ("all"). */
void log_set_trace(const char *list);
int log_trace_on(const char *sub);

void log_emit(int prio, const char *sub, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Emit whatever the level (tracing asked for explicitly). */
void log_emit_always(int prio, const char *sub, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vemit(int prio, const char *sub, const char *fmt, va_list ap);

#define log_err(sub, ...)    log_emit(LOG_ERR, sub, __VA_ARGS__)
#define log_warnx(sub, ...)  log_emit(LOG_WARNING, sub, __VA_ARGS__)
#define log_notice(sub, ...) log_emit(LOG_NOTICE, sub, __VA_ARGS__)
#define log_info(sub, ...)   log_emit(LOG_INFO, sub, __VA_ARGS__)
#define log_debug(sub, ...)  log_emit(LOG_DEBUG, sub, __VA_ARGS__)
/* Costs one branch when tracing for `sub` is off. */
#define log_trace(sub, ...)                                                                        \
	do {                                                                                       \
		if (log_trace_on(sub))                                                             \
			log_emit_always(LOG_DEBUG, sub, __VA_ARGS__);                              \
	} while (0)

/*
 * Quote a value for key=value output into a rotating static buffer (8 slots,
 * 256 bytes each, truncated with "..."); control characters are escaped so
 * hostile input cannot forge log lines.  Only valid until 8 more calls.
 */
const char *log_q(const char *s);

#endif
