/*
 * tz.h - IANA time zones through ICU (ucal_*), with a small cache of open
 * calendars per zone.  Single-threaded: call from the loop thread only.
 */
#ifndef CLUBD_TZ_H
#define CLUBD_TZ_H

#include <stdint.h>

struct tz_tm {
	int year, month, day; /* Gregorian, month 1..12 */
	int hour, min, sec;
	int wday;          /* 0 = Sunday */
	int64_t offset_ms; /* total UTC offset incl. DST at that instant */
};

/* 1 when zone is a known IANA id (not ICU's "Etc/Unknown" fallback, not a
 * custom "GMT+03:30" id); ids longer than 64 bytes or with characters outside
 * [A-Za-z0-9/_+-] are refused. */
int tz_valid(const char *zone);
/* UTC instant -> local wall time in zone.  0 or -1 (unknown zone). */
int tz_local(const char *zone, int64_t utc_ms, struct tz_tm *out);
/* Local wall time -> UTC instant.  Fields are lenient (month 13, day 32 and
 * minute 90 roll over); wday and offset_ms are ignored.  A time in a DST gap
 * moves forward out of the gap to the first valid instant (Berlin 2026-03-29
 * 02:30 -> 03:00 CEST); an ambiguous time takes the earlier instant.
 * |year| <= 100000, other fields within +-10^7.  0 or -1. */
int tz_utc(const char *zone, const struct tz_tm *local, int64_t *utc_ms);
/* As tz_utc, but an ambiguous (repeated) time takes the later instant. */
int tz_utc_later(const char *zone, const struct tz_tm *local, int64_t *utc_ms);
/* The first UTC offset change strictly after after_ms: 1 with *out_ms set,
 * 0 when the zone has no later transition, -1 on an unknown zone. */
int tz_next_transition(const char *zone, int64_t after_ms, int64_t *out_ms);
/* Free the cache (shutdown, tests). */
void tz_cleanup(void);

#endif
