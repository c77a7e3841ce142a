/*
 * tz.c - IANA time zones through ICU's C calendar API (ucal_*).
 *
 * Owns: a fixed cache of TZ_CACHE_SLOTS open UCalendar objects keyed by the
 * zone id exactly as given, evicted least-recently-used.  Every calendar is
 * Gregorian (locale "@calendar=gregorian") with the Julian cutover moved to
 * the far past, so dates before 1582 are proleptic Gregorian, and is lenient
 * (month 13 or day 32 roll over).  Wall-time options are set once per
 * calendar: a skipped time (DST gap) resolves to the first valid instant
 * after the gap; a repeated time takes the earlier instant unless
 * tz_utc_later() asks for the later one.
 * Never touches: ICU global state (no u_cleanup: other modules use ICU), the
 * system TZ environment, the real clock.
 * Limits: zone ids are 1..TZ_ID_MAX bytes of [A-Za-z0-9/_+-]; tz_utc
 * accepts |year| <= 100000 and the other fields within +-10^7.
 * Single-threaded: the loop thread only.
 */
#include "tz.h"

#include <math.h>
#include <string.h>

#include <unicode/ucal.h>
#include <unicode/ustring.h>

#define TZ_CACHE_SLOTS 64
#define TZ_ID_MAX      64

struct tz_slot {
	char zone[TZ_ID_MAX + 1];
	UCalendar *cal;
	uint64_t used; /* tz_tick at last use; 0 = free slot */
};

static struct tz_slot tz_cache[TZ_CACHE_SLOTS];
static uint64_t tz_tick;

/* Length-checked, character-checked copy of zone into a UChar buffer. */
static int tz_to_uchar(const char *zone, UChar *out, int32_t *len)
{
	size_t n;

	if (!zone)
		return -1;
	n = strlen(zone);
	if (n == 0 || n > TZ_ID_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)zone[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '/' || c == '_' || c == '+' || c == '-'))
			return -1;
		out[i] = (UChar)c;
	}
	out[n] = 0;
	*len = (int32_t)n;
	return 0;
}

int tz_valid(const char *zone)
{
	UChar id[TZ_ID_MAX + 1], canon[128];
	int32_t len, clen;
	UBool sys = 0;
	UErrorCode st = U_ZERO_ERROR;
	static const UChar unknown[] = u"Etc/Unknown";

	if (tz_to_uchar(zone, id, &len) < 0)
		return 0;
	clen = ucal_getCanonicalTimeZoneID(id, len, canon,
	                                   (int32_t)(sizeof(canon) / sizeof(canon[0])), &sys, &st);
	if (U_FAILURE(st) || !sys || clen <= 0)
		return 0;
	if (u_strcmp(canon, unknown) == 0 || u_strcmp(id, unknown) == 0)
		return 0;
	return 1;
}

/* The cached calendar for zone, opening one (evicting the LRU slot) on a miss. */
static UCalendar *tz_cal(const char *zone)
{
	UChar id[TZ_ID_MAX + 1];
	int32_t len;
	UErrorCode st = U_ZERO_ERROR;
	struct tz_slot *victim = NULL;
	UCalendar *cal;

	if (!zone || strlen(zone) > TZ_ID_MAX)
		return NULL;
	for (int i = 0; i < TZ_CACHE_SLOTS; i++) {
		struct tz_slot *s = &tz_cache[i];
		if (s->used && strcmp(s->zone, zone) == 0) {
			s->used = ++tz_tick;
			return s->cal;
		}
		if (!victim || s->used < victim->used)
			victim = s;
	}
	if (!tz_valid(zone) || tz_to_uchar(zone, id, &len) < 0)
		return NULL;
	cal = ucal_open(id, len, "@calendar=gregorian", UCAL_GREGORIAN, &st);
	if (U_FAILURE(st) || !cal)
		return NULL;
	ucal_setGregorianChange(cal, U_DATE_MIN, &st);
	if (U_FAILURE(st)) {
		ucal_close(cal);
		return NULL;
	}
	ucal_setAttribute(cal, UCAL_LENIENT, 1);
	ucal_setAttribute(cal, UCAL_SKIPPED_WALL_TIME, UCAL_WALLTIME_NEXT_VALID);
	ucal_setAttribute(cal, UCAL_REPEATED_WALL_TIME, UCAL_WALLTIME_FIRST);

	if (victim->used)
		ucal_close(victim->cal);
	memcpy(victim->zone, zone, strlen(zone) + 1);
	victim->cal = cal;
	victim->used = ++tz_tick;
	return cal;
}

int tz_local(const char *zone, int64_t utc_ms, struct tz_tm *out)
{
	UCalendar *cal = tz_cal(zone);
	UErrorCode st = U_ZERO_ERROR;
	struct tz_tm t;

	if (!cal)
		return -1;
	ucal_setMillis(cal, (UDate)utc_ms, &st);
	t.year = ucal_get(cal, UCAL_EXTENDED_YEAR, &st);
	t.month = ucal_get(cal, UCAL_MONTH, &st) + 1;
	t.day = ucal_get(cal, UCAL_DATE, &st);
	t.hour = ucal_get(cal, UCAL_HOUR_OF_DAY, &st);
	t.min = ucal_get(cal, UCAL_MINUTE, &st);
	t.sec = ucal_get(cal, UCAL_SECOND, &st);
	t.wday = ucal_get(cal, UCAL_DAY_OF_WEEK, &st) - UCAL_SUNDAY;
	t.offset_ms = (int64_t)ucal_get(cal, UCAL_ZONE_OFFSET, &st) +
	              (int64_t)ucal_get(cal, UCAL_DST_OFFSET, &st);
	if (U_FAILURE(st))
		return -1;
	*out = t;
	return 0;
}

static int tz_field_ok(int v, int lim)
{
	return v >= -lim && v <= lim;
}

static int tz_utc_opt(const char *zone, const struct tz_tm *l, UCalendarWallTimeOption repeated,
                      int64_t *utc_ms)
{
	UCalendar *cal;
	UErrorCode st = U_ZERO_ERROR;
	UDate d;

	if (!l || !tz_field_ok(l->year, 100000) || !tz_field_ok(l->month, 10000000) ||
	    !tz_field_ok(l->day, 10000000) || !tz_field_ok(l->hour, 10000000) ||
	    !tz_field_ok(l->min, 10000000) || !tz_field_ok(l->sec, 10000000))
		return -1;
	cal = tz_cal(zone);
	if (!cal)
		return -1;
	ucal_setAttribute(cal, UCAL_REPEATED_WALL_TIME, repeated);
	ucal_clear(cal);
	/* EXTENDED_YEAR rather than YEAR: no era, so year 0 and below work. */
	ucal_set(cal, UCAL_EXTENDED_YEAR, l->year);
	ucal_set(cal, UCAL_MONTH, l->month - 1);
	ucal_set(cal, UCAL_DATE, l->day);
	ucal_set(cal, UCAL_HOUR_OF_DAY, l->hour);
	ucal_set(cal, UCAL_MINUTE, l->min);
	ucal_set(cal, UCAL_SECOND, l->sec);
	ucal_set(cal, UCAL_MILLISECOND, 0);
	d = ucal_getMillis(cal, &st);
	if (repeated != UCAL_WALLTIME_FIRST)
		ucal_setAttribute(cal, UCAL_REPEATED_WALL_TIME, UCAL_WALLTIME_FIRST);
	if (U_FAILURE(st) || !isfinite(d) || d > 9.0e15 || d < -9.0e15)
		return -1;
	*utc_ms = (int64_t)d;
	return 0;
}

int tz_utc(const char *zone, const struct tz_tm *local, int64_t *utc_ms)
{
	return tz_utc_opt(zone, local, UCAL_WALLTIME_FIRST, utc_ms);
}

int tz_utc_later(const char *zone, const struct tz_tm *local, int64_t *utc_ms)
{
	return tz_utc_opt(zone, local, UCAL_WALLTIME_LAST, utc_ms);
}

int tz_next_transition(const char *zone, int64_t after_ms, int64_t *out_ms)
{
	UCalendar *cal = tz_cal(zone);
	UErrorCode st = U_ZERO_ERROR;
	UDate d = 0;
	UBool found;

	if (!cal)
		return -1;
	ucal_setMillis(cal, (UDate)after_ms, &st);
	if (U_FAILURE(st))
		return -1;
	found = ucal_getTimeZoneTransitionDate(cal, UCAL_TZ_TRANSITION_NEXT, &d, &st);
	if (U_FAILURE(st))
		return -1;
	if (!found || !isfinite(d) || d > 9.0e15)
		return 0;
	*out_ms = (int64_t)d;
	return 1;
}

void tz_cleanup(void)
{
	for (int i = 0; i < TZ_CACHE_SLOTS; i++) {
		if (tz_cache[i].used)
			ucal_close(tz_cache[i].cal);
		memset(&tz_cache[i], 0, sizeof(tz_cache[i]));
	}
	tz_tick = 0;
}
