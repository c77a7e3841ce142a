/*
 * campaign.c - campaign definitions, lifecycle table, money, arm
 * assignment and report arithmetic.  Pure functions: no Redis, no clock.
 * Limits: 8 variants, names 200 bytes, budgets up to 1e13 units.
 */
#include "campaign.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "prefs.h"
#include "store.h"
#include "text.h"
#include "tz.h"
#include "util.h"

static const char *const state_names[CAMP__NSTATES] = {"draft",  "scheduled", "running",
                                                       "paused", "completed", "cancelled"};

const char *camp_state_name(enum camp_state s)
{
	return (unsigned)s < CAMP__NSTATES ? state_names[s] : "unknown";
}

int camp_state_parse(const char *s)
{
	for (int i = 0; s && i < CAMP__NSTATES; i++)
		if (strcmp(s, state_names[i]) == 0)
			return i;
	return -1;
}

int camp_transition_allowed(enum camp_state from, enum camp_state to)
{
	static const unsigned char ok[CAMP__NSTATES][CAMP__NSTATES] = {
	    [CAMP_DRAFT] = {[CAMP_SCHEDULED] = 1, [CAMP_RUNNING] = 1, [CAMP_CANCELLED] = 1},
	    [CAMP_SCHEDULED] = {[CAMP_RUNNING] = 1, [CAMP_PAUSED] = 1, [CAMP_CANCELLED] = 1},
	    [CAMP_RUNNING] = {[CAMP_PAUSED] = 1,
	                      [CAMP_COMPLETED] = 1,
	                      [CAMP_CANCELLED] = 1,
	                      [CAMP_SCHEDULED] = 1 /* a recurring campaign's next run */},
	    [CAMP_PAUSED] = {[CAMP_RUNNING] = 1, [CAMP_SCHEDULED] = 1, [CAMP_CANCELLED] = 1},
	};
	if ((unsigned)from >= CAMP__NSTATES || (unsigned)to >= CAMP__NSTATES)
		return 0;
	return ok[from][to];
}

/* Money ------------------------------------------------------------------- */

#define MONEY_MAX_C 1000000000000000LL /* 1e13 units in hundredths */

int money_parse(const json_t *v, int64_t *hundredths)
{
	char tmp[40];
	const char *s;
	if (json_is_string(v)) {
		s = json_string_value(v);
	} else if (json_is_integer(v)) {
		snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		s = tmp;
	} else if (json_is_real(v)) {
		/* Reals lose exactness: accept only those that print back with at
		 * most two decimals. */
		snprintf(tmp, sizeof tmp, "%.2f", json_real_value(v));
		if (strtod(tmp, NULL) != json_real_value(v))
			return -EINVAL;
		s = tmp;
	} else {
		return -EINVAL;
	}
	size_t n = strlen(s);
	if (n == 0 || n > 20)
		return -EINVAL;
	int64_t units = 0, frac = 0;
	int nfrac = -1;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '.' && nfrac < 0 && i > 0 && i + 1 < n) {
			nfrac = 0;
		} else if (ch >= '0' && ch <= '9') {
			if (nfrac >= 0) {
				if (++nfrac > 2)
					return -EINVAL;
				frac = frac * 10 + (ch - '0');
			} else {
				if (units > MONEY_MAX_C / 100)
					return -EINVAL;
				units = units * 10 + (ch - '0');
			}
		} else {
			return -EINVAL;
		}
	}
	if (nfrac == 1)
		frac *= 10;
	int64_t c = units * 100 + frac;
	if (c <= 0 || c > MONEY_MAX_C)
		return -EINVAL;
	*hundredths = c;
	return 0;
}

void money_format(int64_t h, char *out, size_t n)
{
	const char *sign = h < 0 ? "-" : "";
	uint64_t a = h < 0 ? (uint64_t)(-(h + 1)) + 1 : (uint64_t)h;
	snprintf(out, n, "%s%llu.%02llu", sign, (unsigned long long)(a / 100),
	         (unsigned long long)(a % 100));
}

/* Definition -------------------------------------------------------------- */

static int ident_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return 0;
	}
	return 1;
}

static int hhmm_ok(const char *s)
{
	return strlen(s) == 5 && s[2] == ':' && s[0] >= '0' && s[0] <= '2' && s[1] >= '0' &&
	       s[1] <= '9' && s[3] >= '0' && s[3] <= '5' && s[4] >= '0' && s[4] <= '9' &&
	       (s[0] - '0') * 10 + (s[1] - '0') < 24;
}

static int date_ok(const char *s)
{
	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return 0;
	int64_t ms;
	char t[32];
	snprintf(t, sizeof t, "%sT00:00:00Z", s);
	return parse_time(t, &ms) == 0;
}

static const char *const wday_names[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static int parse_recurring(const json_t *v, struct campaign *c, const char **field,
                           const char **reason)
{
	const char *k;
	json_t *x;
	json_object_foreach((json_t *)v, k, x)
	{
		if (strcmp(k, "every") == 0) {
			const char *e = json_string_value(x);
			c->every = e && strcmp(e, "day") == 0    ? 1
			           : e && strcmp(e, "week") == 0 ? 7
			                                         : 0;
			if (!c->every) {
				*field = "schedule.every";
				*reason = "day or week";
				return -1;
			}
		} else if (strcmp(k, "at") == 0) {
			const char *t = json_string_value(x);
			if (!t || !hhmm_ok(t)) {
				*field = "schedule.at";
				*reason = "HH:MM (local time in schedule.zone)";
				return -1;
			}
			c->every_min =
			    ((t[0] - '0') * 10 + t[1] - '0') * 60 + (t[3] - '0') * 10 + t[4] - '0';
			c->local_time[0] = '\0';
		} else if (strcmp(k, "days") == 0) {
			size_t i;
			json_t *d;
			if (!json_is_array(x) || json_array_size(x) == 0 ||
			    json_array_size(x) > 7) {
				*field = "schedule.days";
				*reason = "an array of sun, mon, tue, wed, thu, fri, sat";
				return -1;
			}
			json_array_foreach(x, i, d)
			{
				int w = -1;
				for (int j = 0; j < 7 && json_is_string(d); j++)
					if (strcmp(json_string_value(d), wday_names[j]) == 0)
						w = j;
				if (w < 0) {
					*field = "schedule.days";
					*reason = "an array of sun, mon, tue, wed, thu, fri, sat";
					return -1;
				}
				c->every_days |= 1u << w;
			}
		} else if (strcmp(k, "zone") == 0) {
			const char *z = json_string_value(x);
			if (!z || !tz_valid(z)) {
				*field = "schedule.zone";
				*reason = "an IANA time zone such as Asia/Tehran";
				return -1;
			}
			snprintf(c->zone, sizeof c->zone, "%s", z);
		} else if (strcmp(k, "until") == 0) {
			if (!json_is_string(x) ||
			    parse_time(json_string_value(x), &c->until_ms) < 0) {
				*field = "schedule.until";
				*reason = "an RFC 3339 time";
				return -1;
			}
		} else if (strcmp(k, "count") == 0) {
			if (!json_is_integer(x) || json_integer_value(x) < 1 ||
			    json_integer_value(x) > 10000) {
				*field = "schedule.count";
				*reason = "an integer 1..10000";
				return -1;
			}
			c->count = (int)json_integer_value(x);
		} else {
			*field = "schedule";
			*reason = "recurring keys: every, at, days, zone, until, count";
			return -1;
		}
	}
	if (!json_object_get(v, "at")) {
		*field = "schedule.at";
		*reason = "required with every";
		return -1;
	}
	if (c->every == 7 && !c->every_days) {
		*field = "schedule.days";
		*reason = "required with every week";
		return -1;
	}
	if (c->every == 1 && c->every_days) {
		*field = "schedule.days";
		*reason = "only with every week";
		return -1;
	}
	if (!c->zone[0])
		snprintf(c->zone, sizeof c->zone, "UTC");
	return 0;
}

int64_t camp_next_run(const struct campaign *c, int64_t after_ms, int runs_done)
{
	if (!c->every || (c->count && runs_done >= c->count))
		return 0;
	struct tz_tm t;
	if (tz_local(c->zone, after_ms, &t) < 0)
		return 0;
	/* walk local days from today; at most 8 of them */
	for (int i = 0; i < 9; i++) {
		struct tz_tm d = {0};
		/* noon of day i: safe from DST edges when stepping days */
		int64_t noon;
		struct tz_tm base = t;
		base.hour = 12;
		base.min = base.sec = 0;
		if (tz_utc(c->zone, &base, &noon) < 0)
			return 0;
		if (tz_local(c->zone, noon + (int64_t)i * 86400000, &d) < 0)
			return 0;
		if (c->every == 7 && !(c->every_days & (1u << d.wday)))
			continue;
		d.hour = c->every_min / 60;
		d.min = c->every_min % 60;
		d.sec = 0;
		int64_t at;
		if (tz_utc(c->zone, &d, &at) < 0)
			return 0;
		if (at <= after_ms)
			continue;
		if (c->until_ms && at > c->until_ms)
			return 0;
		return at;
	}
	return 0;
}

#define FAIL(f, r)                                                                                 \
	do {                                                                                       \
		*field = (f);                                                                      \
		*reason = (r);                                                                     \
		goto bad;                                                                          \
	} while (0)

int camp_parse(const json_t *def, struct campaign *c, const char **field, const char **reason)
{
	memset(c, 0, sizeof *c);
	snprintf(c->category, sizeof c->category, "promotional");
	snprintf(c->channel, sizeof c->channel, "preferred");
	c->attribution_ms = 7LL * 86400 * 1000;
	if (!json_is_object(def))
		FAIL("", "must be an object");
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)def, k, v)
	{
		if (strcmp(k, "name") == 0) {
			const char *s = json_string_value(v);
			if (!s || !*s || strlen(s) > 200 || !utf8_valid(s, strlen(s)) ||
			    strpbrk(s, "\r\n"))
				FAIL("name", "1..200 bytes of UTF-8 on one line");
			snprintf(c->name, sizeof c->name, "%s", s);
		} else if (strcmp(k, "category") == 0) {
			const char *s = json_string_value(v);
			if (!s || category_parse(s) < 0)
				FAIL("category",
				     "one of transactional, promotional, survey, lottery, "
				     "occasion");
			snprintf(c->category, sizeof c->category, "%s", s);
		} else if (strcmp(k, "channel") == 0) {
			const char *s = json_string_value(v);
			if (!s || (strcmp(s, "preferred") != 0 && addr_kind_parse(s) < 0))
				FAIL("channel", "one of sms, email, chat, preferred");
			snprintf(c->channel, sizeof c->channel, "%s", s);
		} else if (strcmp(k, "segment") == 0) {
			if (json_is_string(v)) {
				if (!ident_ok(json_string_value(v), 64))
					FAIL("segment", "a segment id ([A-Za-z0-9_-], 1..64)");
				snprintf(c->segment_id, sizeof c->segment_id, "%s",
				         json_string_value(v));
			} else if (json_is_object(v)) {
				c->segment = json_incref(v);
			} else {
				FAIL("segment", "a segment id or an inline definition");
			}
		} else if (strcmp(k, "template") == 0) {
			const char *s = json_string_value(v);
			if (!s || !ident_ok(s, 64))
				FAIL("template", "a template id ([A-Za-z0-9_-], 1..64)");
			if (c->nvar)
				FAIL("template", "give template or variants, not both");
			snprintf(c->var[0].name, sizeof c->var[0].name, "A");
			snprintf(c->var[0].template_id, sizeof c->var[0].template_id, "%s", s);
			c->var[0].weight = 1;
			c->nvar = 1;
		} else if (strcmp(k, "variants") == 0) {
			if (c->nvar)
				FAIL("variants", "give template or variants, not both");
			if (!json_is_array(v) || json_array_size(v) == 0 ||
			    json_array_size(v) > CAMP_VARIANTS_MAX)
				FAIL("variants", "an array of 1..8 variants");
			size_t i;
			json_t *e;
			json_array_foreach(v, i, e)
			{
				struct camp_variant *cv = &c->var[i];
				const char *n = json_string_value(json_object_get(e, "name"));
				const char *t = json_string_value(json_object_get(e, "template"));
				json_t *w = json_object_get(e, "weight");
				if (!json_is_object(e) || !n || !ident_ok(n, CAMP_VAR_NAME_MAX) ||
				    strcmp(n, "control") == 0)
					FAIL("variants[].name",
					     "1..16 of [A-Za-z0-9_-], not \"control\"");
				if (!t || !ident_ok(t, 64))
					FAIL("variants[].template", "a template id");
				if (w && (!json_is_integer(w) || json_integer_value(w) < 1 ||
				          json_integer_value(w) > 1000))
					FAIL("variants[].weight", "an integer 1..1000");
				for (size_t p = 0; p < i; p++)
					if (strcmp(c->var[p].name, n) == 0)
						FAIL("variants[].name", "names must differ");
				snprintf(cv->name, sizeof cv->name, "%s", n);
				snprintf(cv->template_id, sizeof cv->template_id, "%s", t);
				cv->weight = w ? (int)json_integer_value(w) : 1;
			}
			c->nvar = (int)json_array_size(v);
		} else if (strcmp(k, "control_percent") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > 50)
				FAIL("control_percent", "an integer 0..50");
			c->control_percent = (int)json_integer_value(v);
		} else if (strcmp(k, "schedule") == 0) {
			if (json_is_null(v))
				continue;
			if (!json_is_object(v))
				FAIL("schedule", "null or an object");
			if (json_object_get(v, "every")) {
				if (parse_recurring(v, c, field, reason) < 0)
					goto bad;
				continue;
			}
			json_t *at = json_object_get(v, "at");
			json_t *lt = json_object_get(v, "local_time");
			json_t *ld = json_object_get(v, "date");
			if (json_object_size(v) != (size_t)(!!at + !!lt + !!ld) ||
			    (at && (lt || ld)) || (!at && !lt))
				FAIL("schedule", "{\"at\": time}, {\"local_time\": \"HH:MM\", "
				                 "\"date\": \"YYYY-MM-DD\"} or {\"every\": ...}");
			if (at && (!json_is_string(at) ||
			           parse_time(json_string_value(at), &c->start_ms) < 0 ||
			           c->start_ms <= 0))
				FAIL("schedule.at", "an RFC 3339 time");
			if (lt) {
				if (!json_is_string(lt) || !hhmm_ok(json_string_value(lt)))
					FAIL("schedule.local_time", "HH:MM (00:00..23:59)");
				snprintf(c->local_time, sizeof c->local_time, "%s",
				         json_string_value(lt));
			}
			if (ld) {
				if (!json_is_string(ld) || !date_ok(json_string_value(ld)))
					FAIL("schedule.date", "YYYY-MM-DD");
				snprintf(c->local_date, sizeof c->local_date, "%s",
				         json_string_value(ld));
			}
		} else if (strcmp(k, "budget") == 0) {
			if (!json_is_null(v) && money_parse(v, &c->budget_c) < 0)
				FAIL("budget", "an amount > 0 with at most 2 decimals");
		} else if (strcmp(k, "currency") == 0) {
			const char *s = json_string_value(v);
			if (!s || strlen(s) != 3 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' ||
			    s[1] > 'Z' || s[2] < 'A' || s[2] > 'Z')
				FAIL("currency", "an ISO 4217 code such as IRR or EUR");
			snprintf(c->currency, sizeof c->currency, "%s", s);
		} else if (strcmp(k, "rate_limit") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > 100000)
				FAIL("rate_limit",
				     "messages per second, 0..100000 (0 = unlimited)");
			c->rate_limit = (int)json_integer_value(v);
		} else if (strcmp(k, "attribution_window") == 0) {
			int64_t ms;
			if (!json_is_string(v) ||
			    parse_duration_ms(json_string_value(v), &ms) < 0 || ms < 60000 ||
			    ms > 366LL * 86400 * 1000)
				FAIL("attribution_window",
				     "a duration from 1m to 366d, e.g. \"7d\"");
			c->attribution_ms = ms;
		} else if (strcmp(k, "forward_replies_to") == 0) {
			if (!json_is_null(v) &&
			    (!json_is_string(v) || !ident_ok(json_string_value(v), 64)))
				FAIL("forward_replies_to",
				     "a team id ([A-Za-z0-9_-], 1..64) or null");
			if (json_is_string(v))
				snprintf(c->forward_to, sizeof c->forward_to, "%s",
				         json_string_value(v));
		} else if (strcmp(k, "id") == 0 || strcmp(k, "state") == 0) {
			continue; /* the path / the lifecycle own these */
		} else {
			*field = "";
			*reason = "unknown field";
			static char unknown[64];
			snprintf(unknown, sizeof unknown, "%.63s", k);
			*field = unknown;
			goto bad;
		}
	}
	if (!c->name[0])
		FAIL("name", "required");
	if (!c->segment_id[0] && !c->segment)
		FAIL("segment", "required");
	if (!c->nvar)
		FAIL("template", "a template or variants are required");
	if (c->budget_c && !c->currency[0])
		FAIL("currency", "required with a budget");
	return 0;
bad:
	camp_release(c);
	return -EINVAL;
}

void camp_release(struct campaign *c)
{
	json_decref(c->segment);
	c->segment = NULL;
}

/* Assignment -------------------------------------------------------------- */

static uint64_t mix(const char *seed, const char *id)
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = seed; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for (const char *p = id; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	/* splitmix64 finaliser: FNV's low bits alone are poorly mixed */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

int camp_assign(const struct campaign *c, const char *seed, const char *contact_id)
{
	uint64_t h = mix(seed, contact_id);
	if (c->control_percent > 0 && (h % 10000) < (uint64_t)c->control_percent * 100)
		return -1;
	uint64_t total = 0;
	for (int i = 0; i < c->nvar; i++)
		total += (uint64_t)c->var[i].weight;
	if (total == 0)
		return 0;
	uint64_t r = (h >> 20) % total;
	for (int i = 0; i < c->nvar; i++) {
		if (r < (uint64_t)c->var[i].weight)
			return i;
		r -= (uint64_t)c->var[i].weight;
	}
	return c->nvar - 1;
}

/* Report ------------------------------------------------------------------ */

double camp_rate(int64_t num, int64_t den)
{
	return den > 0 ? (double)num / (double)den : 0.0;
}

double camp_roi(const struct camp_arm *a)
{
	/* cost in micros, revenue in hundredths */
	double cost = (double)a->cost_micros / 1e6, rev = (double)a->revenue_c / 100.0;
	return cost > 0 ? (rev - cost) / cost : 0.0;
}
