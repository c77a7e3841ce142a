/*
 * prefs.h - a contact's preferences and the dispatch-time decision.  Pure
 * functions with an injected clock: given the contact, the message and
 * `now`, say SEND on channel X, DEFER until T, or SUPPRESS with a reason.
 *
 * The JSON form (API and Redis):
 *   {"channels": ["sms","email","chat"],           preferred order
 *    "consent": {"sms": true, "email": false},     per channel, default true
 *    "categories": {"promotional": false},         per category, default true
 *    "quiet_hours": {"start": "22:00", "end": "08:00"},   local time
 *    "window": {"start": "09:00", "end": "20:00"}}        preferred time
 * Windows may cross midnight and are [start, end) by the local wall clock;
 * start == end is refused, and so is a window lying entirely inside the quiet
 * hours.  Unknown keys are refused; a top-level key may be null (= unset).
 * Quiet hours and the window are read in the contact's IANA time zone.
 */
#ifndef CLUBD_PREFS_H
#define CLUBD_PREFS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

enum category {
	CAT_TRANSACTIONAL = 0,
	CAT_PROMOTIONAL,
	CAT_SURVEY,
	CAT_LOTTERY,
	CAT_OCCASION,
	CAT__N
};
extern const char *const category_names[CAT__N]; /* "transactional", ... */
int category_parse(const char *s);               /* -1 when unknown */
const char *category_name(enum category c);

struct prefs_window {
	int set;
	int start_min, end_min; /* minutes after local midnight, 0..1439 */
};

struct prefs {
	int order[ADDR_KINDS]; /* preferred order of addr kinds */
	int norder;
	signed char consent[ADDR_KINDS]; /* -1 unset, 0 revoked, 1 given */
	signed char cat_consent[CAT__N];
	struct prefs_window quiet;
	struct prefs_window window;
};

/*
 * Validate and parse the JSON object (NULL or JSON null = empty
 * preferences).  0, or -1 with *field set to a JSON path
 * ("preferences.quiet_hours.start") and *reason to a static reason; p is
 * untouched on error.  Paths are static strings, except for an unknown key
 * ("preferences.foo", "preferences.consent.fax"), which lives in a static
 * buffer valid until the next prefs_parse call (keys longer than 40 bytes or
 * outside [A-Za-z0-9_-] report the parent path instead).
 */
int prefs_parse(const json_t *j, struct prefs *p, const char **field, const char **reason);
/* The canonical JSON form of p (new reference); unset parts are omitted. */
json_t *prefs_to_json(const struct prefs *p);
/* "HH:MM-HH:MM" (config default quiet hours); "" = unset.  0 or -1. */
int prefs_parse_window(const char *s, struct prefs_window *w);

/*
 * Frequency caps: at most max messages of a category per rolling window,
 * counted per contact when a message is claimed (transactional never
 * counts).  Text form, comma separated: "promotional:2/1d,promotional:5/7d,
 * survey:1/7d".  Returns the number of caps (0..max) or -1 with why.
 */
#define PREFS_CAPS_MAX 16
struct prefs_cap {
	enum category category;
	int64_t window_ms;
	int max;
};
int prefs_parse_caps(const char *s, struct prefs_cap *out, int max, char *why, size_t whylen);

enum prefs_action { PREFS_SEND, PREFS_DEFER, PREFS_SUPPRESS };

struct prefs_input {
	const struct prefs *prefs;
	const char *tz;               /* contact's IANA zone (or the default) */
	const char *addr[ADDR_KINDS]; /* NULL or "" when missing */
	int requested;                /* an addr kind, or -1 for "preferred" */
	enum category category;
	int64_t now_ms;
	const struct prefs_window *default_quiet; /* config, may be unset */
	int quiet_transactional;                  /* quiet hours also hold transactional */
	const int *channel_enabled;               /* [ADDR_KINDS] configured; NULL = all */
};

struct prefs_decision {
	enum prefs_action action;
	int channel;            /* SEND: addr kind to use */
	int64_t defer_until_ms; /* DEFER */
	char reason[96];        /* SUPPRESS/DEFER: "opted_out:sms", "quiet_hours", ... */
};

/*
 * Checks, in order:
 * 1. channel: the requested kind alone, or the contact's order followed by
 *    the kinds it leaves out in the order sms, email, chat; a kind is skipped
 *    when not configured, without address, or opted out.  A requested kind
 *    that fails SUPPRESSes with "channel_not_configured:<k>",
 *    "no_address:<k>" or "opted_out:<k>"; nothing left -> "no_channel";
 *    requested >= ADDR_KINDS -> "unknown_channel".
 * 2. category: "category_opt_out:<category>" (never for transactional);
 *    an out-of-range category -> "unknown_category".
 * 3. time (transactional only when quiet_transactional): quiet hours (the
 *    contact's, else default_quiet) and window; DEFER with "quiet_hours" when
 *    now is inside quiet hours, else "outside_window".  An unknown or NULL tz
 *    is read as UTC.
 * SEND and DEFER set channel; SUPPRESS sets channel to -1.  prefs NULL =
 * empty preferences.  Borrows everything in `in`.
 */
void prefs_decide(const struct prefs_input *in, struct prefs_decision *out);

/*
 * The first instant >= now at which a message may go out given quiet hours
 * and window (either may be NULL or unset) in zone tz; now itself when
 * allowed.  Exact across DST: a boundary inside a gap opens at the first
 * instant after it, a repeated hour is judged by the wall clock each time.
 * When quiet hours and window together allow no minute at all, now (send
 * rather than hold forever).  -1 on an unknown zone (never when neither
 * quiet hours nor window is set).
 */
int64_t prefs_next_allowed(const struct prefs_window *quiet, const struct prefs_window *window,
                           const char *tz, int64_t now_ms);

#endif
