/*
 * campaign.h - a campaign's definition and the pure rules around it: the
 * JSON form and its validation, the lifecycle table, the money format,
 * variant and control-group assignment, and the report arithmetic (cost,
 * ROI, lift).  No I/O: store_campaigns.c keeps it in Redis,
 * campaign_run.c drives it, dispatch.c renders and charges it.
 *
 * Definition (API form; docs/campaigns.md):
 *   {"name": "...", "category": "promotional",
 *    "segment": "vip-tehran" | {inline segment definition},
 *    "channel": "sms" | "email" | "chat" | "preferred",
 *    "template": "yalda"                                  one template, or
 *    "variants": [{"name": "A", "template": "t1", "weight": 1}, ...],
 *    "control_percent": 10,                               0..50, held out
 *    "schedule": null | {"at": RFC 3339} | {"local_time": "10:00", "date": "2026-12-21"}
 *              | {"every": "week", "days": ["sat","wed"], "at": "10:00", "zone": "Asia/Tehran",
 *                 "until": RFC 3339, "count": 10},
 *    "budget": "5000000.00", "currency": "IRR",           optional cap
 *    "rate_limit": 50,                                    messages/s, 0 = unlimited
 *    "attribution_window": "7d",
 *    "forward_replies_to": "support"}                     a team of the desk
 */
#ifndef CLUBD_CAMPAIGN_H
#define CLUBD_CAMPAIGN_H

#include <jansson.h>
#include <stdint.h>

#define CAMP_VARIANTS_MAX 8
#define CAMP_VAR_NAME_MAX 16

enum camp_state {
	CAMP_DRAFT = 0,
	CAMP_SCHEDULED,
	CAMP_RUNNING,
	CAMP_PAUSED,
	CAMP_COMPLETED,
	CAMP_CANCELLED,
	CAMP__NSTATES
};
const char *camp_state_name(enum camp_state s);
int camp_state_parse(const char *s); /* -1 when unknown */

/* The API verbs and the transitions they make.  launch: draft -> scheduled
 * (a start in the future) or running; pause: scheduled|running -> paused;
 * resume: paused -> running (or scheduled while the start is ahead);
 * cancel: draft|scheduled|running|paused -> cancelled.  The runner alone
 * makes scheduled -> running and running -> completed. */
int camp_transition_allowed(enum camp_state from, enum camp_state to);

struct camp_variant {
	char name[CAMP_VAR_NAME_MAX + 1];
	char template_id[65];
	int weight;
};

struct campaign {
	char name[201];
	char category[16];
	char channel[16];
	char segment_id[65]; /* "" when inline */
	json_t *segment;     /* inline definition (owned) or NULL */
	struct camp_variant var[CAMP_VARIANTS_MAX];
	int nvar;
	int control_percent;
	int64_t start_ms; /* schedule.at; 0 = on launch */
	/* recurring: {"every": "day"|"week", "at": "HH:MM", "days": ["sat", ...],
	 * "zone": IANA, "until": time, "count": runs} */
	int every;           /* 0 none, 1 daily, 7 weekly */
	int every_min;       /* minutes after local midnight */
	unsigned every_days; /* weekly: bit wday (0 = Sunday) */
	char zone[65];
	int64_t until_ms;    /* 0 = none */
	int count;           /* 0 = unlimited */
	char local_time[6];  /* "HH:MM" or "" */
	char local_date[11]; /* "YYYY-MM-DD" or "" (= the launch day) */
	int64_t budget_c;    /* hundredths; 0 = no cap */
	char currency[4];
	int rate_limit;
	int64_t attribution_ms;
	char forward_to[65]; /* team id that gets the replies (the desk); "" = none */
};

/* Validate def into c.  0, or -EINVAL with *field and *reason (static). */
int camp_parse(const json_t *def, struct campaign *c, const char **field, const char **reason);
void camp_release(struct campaign *c);

/* Recurring campaigns: the first run instant strictly after after_ms (in
 * c->zone's wall clock), or 0 when none is left (until / count, with runs
 * already done).  Exact across DST: a time inside a gap moves to the first
 * instant after it. */
int64_t camp_next_run(const struct campaign *c, int64_t after_ms, int runs_done);

/* Money: a JSON string or number with at most two decimals, 0 < v <= 1e13;
 * into hundredths.  0 or -EINVAL. */
int money_parse(const json_t *v, int64_t *hundredths);
/* "12.50" form of hundredths; out >= 24 bytes. */
void money_format(int64_t hundredths, char *out, size_t n);

/*
 * Which arm a contact falls in, stable for (seed, contact): -1 = control
 * group (control_percent out of 100), else the variant index by weight.
 * seed is the campaign's random salt, so two campaigns split differently.
 */
int camp_assign(const struct campaign *c, const char *seed, const char *contact_id);

/* Report arithmetic on the counters of one arm (see store_campaigns.c for
 * the field names).  Rates are 0 when the base is 0. */
struct camp_arm {
	int64_t targeted, sent, delivered, failed, suppressed, replies, clicks, clickers, purchases,
	    revenue_c, cost_micros;
};
/* ROI = (revenue - cost) / cost (0 without cost); rates are num / den (0
 * without a base).  Lift over the control group is api_campaigns.c's. */
double camp_roi(const struct camp_arm *a);
double camp_rate(int64_t num, int64_t den);

#endif
