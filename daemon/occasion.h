/*
 * occasion.h - occasion rules and their pure logic: parse and validate a
 * rule, find the date a rule looks at in a contact, and answer "is this
 * local day the send day, for which year, and when is the message due".
 * No I/O, no store, no loop: every function takes "now" (ms) from the
 * caller, so the unit tests inject the clock.  Calendars come from cdate.c
 * and jalali.c (ICU), zones from tz.c (ICU): loop thread only.
 *
 * A rule (JSON, as stored and as the API takes it):
 *   {"id":"nowruz","name":"نوروز","kind":"fixed_jalali","date":"01-01",
 *    "offset_days":0,"template":"nowruz","channel":"preferred",
 *    "window":"09:00-12:00","segment":"vip","category":"occasion",
 *    "enabled":true}
 * kind: birthday (attribute "birthday"), anniversary (attribute "joined",
 * else the contact's creation day), date_attr ("attr"), fixed_gregorian,
 * fixed_jalali ("date" MM-DD).  Optional: "calendar" ("gregorian" or
 * "jalali": read contact dates in that calendar; default: the calendar the
 * date is stored in), "repeat" ("yearly" or "once", date_attr only).
 * The grammar and the leap-day rules are in docs/occasions.md.
 */
#ifndef CLUBD_OCCASION_H
#define CLUBD_OCCASION_H

#include <jansson.h>
#include <stdint.h>

#include "cdate.h"

#define OCC_ID_MAX       64
#define OCC_NAME_MAX     200
#define OCC_ATTR_MAX     64
#define OCC_OFFSET_MAX   365 /* |offset_days| */
#define OCC_CATEGORY_MAX 32

enum occ_kind {
	OCC_BIRTHDAY = 0,
	OCC_ANNIVERSARY,
	OCC_DATE_ATTR,
	OCC_FIXED_GREGORIAN,
	OCC_FIXED_JALALI,
};
const char *occ_kind_name(enum occ_kind k);

/* A send window inside one local day: [start, end) in minutes after local
 * midnight, 0 <= start < end <= 1440 ("24:00" is the end of the day). */
struct occ_window {
	int set;
	int start, end;
};
/* "HH:MM-HH:MM"; 0 or -EINVAL (windows crossing midnight are refused:
 * an occasion is one local day). */
int occ_window_parse(const char *s, struct occ_window *w);

struct occ_rule {
	char id[OCC_ID_MAX + 1];
	char *name;
	enum occ_kind kind;
	char attr[OCC_ATTR_MAX + 1]; /* date_attr (birthday: "birthday") */
	struct cdate date;           /* fixed kinds: y == 0 */
	int cal;                     /* -1: the date's own calendar, else enum cdate_cal */
	int once;                    /* date_attr with repeat "once" */
	int offset_days;             /* send day = occurrence + offset_days */
	char tmpl[OCC_ID_MAX + 1];
	char channel[16]; /* sms, email, chat, preferred */
	struct occ_window window;
	json_t *segment; /* NULL, a string (segment id) or an object (inline) */
	char category[OCC_CATEGORY_MAX + 1];
	int enabled;
};

/*
 * Validate a definition.  0 with *out set (free with occ_rule_free), or
 * -EINVAL with *field (static, "kind", "date", ..., or an unknown key
 * pointing into def) and reason filled.
 * The inline segment is only checked to be an object here (segment.c
 * parses it).  Unknown keys are refused.  id_required: 0 lets the caller
 * put the id in afterwards (POST without an id).
 */
int occ_rule_parse(const json_t *def, int id_required, struct occ_rule **out, const char **field,
                   char *reason, size_t reason_len);
void occ_rule_free(struct occ_rule *r);
/* The canonical definition (new reference): every field, defaults filled. */
json_t *occ_rule_to_json(const struct occ_rule *r);
/* 1 when s is a valid rule id: 1..64 of [A-Za-z0-9_-]. */
int occ_id_valid(const char *s);

/* A Gregorian civil date. */
struct occ_day {
	int y, m, d;
};
/* d + n days (any n within +-10^6). */
struct occ_day occ_day_add(struct occ_day d, int n);
/* "YYYY-MM-DD" (a valid Gregorian date, year 1000..9999); 0 or -EINVAL. */
int occ_day_parse(const char *s, struct occ_day *out);
/* The local civil date in zone at utc_ms; 0 or -EINVAL (unknown zone). */
int occ_local_day(const char *zone, int64_t utc_ms, struct occ_day *out);

/*
 * The date rule r reads in a contact.  raw: the stored attribute text for
 * birthday (x:birthday), date_attr (x:<attr>) and anniversary (x:joined),
 * NULL when absent; attributes are JSON (a cdate string such as
 * "1990-05-17" or "j:1369-02-27", an RFC 3339 time, or a number of ms).
 * Times become their local day in zone.  Anniversary without x:joined
 * uses created_ms.  0, -ENOENT (no date: the contact is not concerned) or
 * -EINVAL (a value that is not a date).  Fixed rules: -ENOENT.
 */
int occ_contact_date(const struct occ_rule *r, const char *raw, int64_t created_ms,
                     const char *zone, struct cdate *out);

struct occ_hit {
	int year;            /* the year key: the occurrence's year in cal */
	int cal;             /* enum cdate_cal of the year key */
	struct occ_day date; /* the occurrence (Gregorian) */
	int jy, jm, jd;      /* the occurrence (Jalali) */
	int years;           /* whole years since the contact's date, -1 unknown */
};

/*
 * Is `day` (a local civil date) a send day of rule r for contact date cd
 * (NULL for fixed rules)?  1 with *hit filled, 0 no, -EINVAL on a date
 * outside the calendars' range.  Feb 29 falls on Feb 28 in common years
 * and Esfand 30 on Esfand 29 (cdate_occurrence).  Birthdays and
 * anniversaries need at least one whole year (a contact who joined today
 * has no anniversary); a date_attr occurs in its own year too ("once":
 * only then).
 */
int occ_match(const struct occ_rule *r, const struct cdate *cd, struct occ_day day,
              struct occ_hit *hit);

/* The UTC bounds of window w (or def when w is unset) on local day `day`
 * in zone; a bound inside a DST gap moves forward to the first valid
 * instant, an ambiguous one takes the earlier instant.  0 or -EINVAL. */
int occ_window_bounds(const struct occ_window *w, const struct occ_window *def, const char *zone,
                      struct occ_day day, int64_t *start_ms, int64_t *end_ms);

enum occ_verdict {
	OCC_NOT_TODAY = 0, /* the contact's local today is not a send day */
	OCC_SEND,          /* create the message, due at due_ms */
	OCC_MISSED,        /* send day, but the window (plus grace) is over */
};

struct occ_decision {
	enum occ_verdict verdict;
	struct occ_day day; /* the contact's local today */
	struct occ_hit hit; /* OCC_SEND / OCC_MISSED */
	int64_t due_ms;     /* OCC_SEND: window start, or now inside it */
	int64_t win_start, win_end;
	int late; /* OCC_SEND after the window end, within the grace */
};

/*
 * The evaluator's question at instant now for a contact in zone: is its
 * local today a send day, and when is the message due?  Before the window:
 * due at its start; inside: now; after the end: now while now < end +
 * grace_ms (late = 1), else OCC_MISSED.  The grace never reaches into the
 * next local day (then it is no longer the send day).  0 or -EINVAL.
 */
int occ_decide(const struct occ_rule *r, const struct cdate *cd, const char *zone, int64_t now,
               const struct occ_window *def_window, int64_t grace_ms, struct occ_decision *out);

/*
 * The evaluator's view of one contact, from the hash fields it reads: tz
 * (NULL, empty or unknown -> default_tz), created (ms as text) and raw (the
 * field occ_rule_field() names; NULL when absent).  day NULL: occ_decide at
 * now in the contact's zone.  day given (an operator's run or a preview
 * for that date): occ_match on that day, verdict OCC_SEND with due_ms the
 * window's start on that day (whatever now is).  0 with *out (and *zone
 * the zone used, borrowed), -ENOENT (the contact has no such date) or
 * -EINVAL (a stored value that is not a date, or default_tz unknown).
 */
int occ_evaluate(const struct occ_rule *r, const char *tz, const char *created, const char *raw,
                 const char *default_tz, int64_t now, const struct occ_day *day,
                 const struct occ_window *def_window, int64_t grace_ms, struct occ_decision *out,
                 const char **zone);
/* The contact hash field rule r reads ("x:birthday", "x:joined",
 * "x:<attr>"), "" for fixed rules.  out has OCC_ATTR_MAX + 3 bytes. */
void occ_rule_field(const struct occ_rule *r, char *out, size_t n);

/*
 * 0 when no time zone on Earth (UTC-12 .. UTC+14) can be on a send day of
 * a fixed rule at now, so a pass may skip the scan; 1 otherwise (always 1
 * for rules over contact dates).
 */
int occ_may_fire(const struct occ_rule *r, int64_t now);

/* "occ:{rule}:{contact}:{year}" into out (n bytes); the idempotency key
 * that makes a (rule, contact, year) send exactly once. */
void occ_idem_key(const char *rule, const char *contact, int year, char *out, size_t n);

#endif
