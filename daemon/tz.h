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

/* 1 when zone is a known IANA id (not ICU's "Etc/Unknown" fallback). */
int tz_valid(const char *zone);
/* UTC instant -> local wall time in zone.  0 or -1 (unknown zone). */
int tz_local(const char *zone, int64_t utc_ms, struct tz_tm *out);
/* Local wall time -> UTC instant.  A time in a DST gap moves forward by the
 * gap; an ambiguous time takes the earlier instant.  0 or -1. */
int tz_utc(const char *zone, const struct tz_tm *local, int64_t *utc_ms);
/* Free the cache (shutdown, tests). */
void tz_cleanup(void);

#endif
