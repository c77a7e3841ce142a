/*
 * prefs.c - a contact's preferences: strict JSON validation, the canonical
 * JSON form, and the dispatch-time decision (SEND on a channel, DEFER until
 * the next allowed instant, SUPPRESS with a reason).
 *
 * Owns: nothing but the parse-error path buffer below.  Pure functions with
 * an injected clock (`now_ms`); time zones go through tz.c.
 * Never touches: Redis, the real clock, addr.c (the three kind names are
 * parsed here so the module links without it).
 * Limits: unknown-key error paths are built in one static buffer (valid
 * until the next prefs_parse call) and fall back to the parent path when the
 * key is long or has characters outside [A-Za-z0-9_-].  prefs_next_allowed
 * looks at most three local days ahead; when quiet hours and window together
 * allow no minute at all it returns now (the settings contradict each other,
 * and prefs_parse refuses a window lying inside the contact's own quiet
 * hours, so this only happens with the configured default quiet hours).
 * Single-threaded.
 */
#include "prefs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tz.h"
#include "util.h"

#define MIN_PER_DAY 1440

static const char *const kind_names[ADDR_KINDS] = {
    [ADDR_SMS] = "sms",
    [ADDR_EMAIL] = "email",
    [ADDR_CHAT] = "chat",
};

/* The default preferred order, and the order in which the kinds missing from
 * a contact's list are appended. */
static const int default_order[ADDR_KINDS] = {ADDR_SMS, ADDR_EMAIL, ADDR_CHAT};

/* JSON paths: static, so the caller may keep them. */
#define P_ROOT  "preferences"
#define P_CHAN  "preferences.channels"
#define P_CONS  "preferences.consent"
#define P_CATS  "preferences.categories"
#define P_QUIET "preferences.quiet_hours"
#define P_WIN   "preferences.window"

static const char *const consent_paths[ADDR_KINDS] = {
    [ADDR_SMS] = P_CONS ".sms",
    [ADDR_EMAIL] = P_CONS ".email",
    [ADDR_CHAT] = P_CONS ".chat",
};

static const char *const cat_paths[CAT__N] = {
    [CAT_TRANSACTIONAL] = P_CATS ".transactional",
    [CAT_PROMOTIONAL] = P_CATS ".promotional",
    [CAT_SURVEY] = P_CATS ".survey",
    [CAT_LOTTERY] = P_CATS ".lottery",
    [CAT_OCCASION] = P_CATS ".occasion",
};

struct win_paths {
	const char *obj, *start, *end;
};
static const struct win_paths quiet_paths = {P_QUIET, P_QUIET ".start", P_QUIET ".end"};
static const struct win_paths window_paths = {P_WIN, P_WIN ".start", P_WIN ".end"};

#define UNKNOWN_KEY_MAX 40
static char unknown_path[sizeof(P_QUIET) + 1 + UNKNOWN_KEY_MAX + 1];

static int kind_parse(const char *s)
{
	for (int i = 0; i < ADDR_KINDS; i++)
		if (strcmp(s, kind_names[i]) == 0)
			return i;
	return -1;
}

/* "<parent>.<key>" in the static buffer when key is short and plain, else parent. */
static const char *key_path(const char *parent, const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n > UNKNOWN_KEY_MAX)
		return parent;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)key[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return parent;
	}
	snprintf(unknown_path, sizeof(unknown_path), "%s.%s", parent, key);
	return unknown_path;
}

static int fail(const char **field, const char **reason, const char *f, const char *r)
{
	*field = f;
	*reason = r;
	return -1;
}

/* Strict "HH:MM", 00:00..23:59, two digits each. */
static int parse_hhmm(const char *s, int *out)
{
	int h, m;

	if (strlen(s) != 5 || s[2] != ':')
		return -1;
	for (int i = 0; i < 5; i++)
		if (i != 2 && (s[i] < '0' || s[i] > '9'))
			return -1;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (h > 23 || m > 59)
		return -1;
	*out = h * 60 + m;
	return 0;
}

/* Minute of day m inside w: [start, end), crossing midnight when start > end. */
static int win_has(const struct prefs_window *w, int m)
{
	if (w->start_min < w->end_min)
		return m >= w->start_min && m < w->end_min;
	return m >= w->start_min || m < w->end_min;
}

static int parse_window_obj(const json_t *j, const struct win_paths *wp, struct prefs_window *w,
                            const char **field, const char **reason)
{
	const char *key;
	json_t *v;
	int have_start = 0, have_end = 0;

	if (!json_is_object(j))
		return fail(field, reason, wp->obj, "must be an object");
	json_object_foreach((json_t *)j, key, v)
	{
		int is_start = strcmp(key, "start") == 0;
		int *dst;
		if (!is_start && strcmp(key, "end") != 0)
			return fail(field, reason, key_path(wp->obj, key), "unknown key");
		dst = is_start ? &w->start_min : &w->end_min;
		if (!json_is_string(v))
			return fail(field, reason, is_start ? wp->start : wp->end,
			            "must be a string \"HH:MM\"");
		if (parse_hhmm(json_string_value(v), dst) < 0)
			return fail(field, reason, is_start ? wp->start : wp->end,
			            "must be a time \"HH:MM\" from 00:00 to 23:59");
		if (is_start)
			have_start = 1;
		else
			have_end = 1;
	}
	if (!have_start)
		return fail(field, reason, wp->start, "required");
	if (!have_end)
		return fail(field, reason, wp->end, "required");
	if (w->start_min == w->end_min)
		return fail(field, reason, wp->obj, "start and end must differ");
	w->set = 1;
	return 0;
}

static int parse_channels(const json_t *j, struct prefs *p, const char **field, const char **reason)
{
	size_t i;
	json_t *v;

	if (!json_is_array(j))
		return fail(field, reason, P_CHAN, "must be an array");
	if (json_array_size(j) > ADDR_KINDS)
		return fail(field, reason, P_CHAN, "duplicate channel");
	json_array_foreach(j, i, v)
	{
		int k;
		if (!json_is_string(v))
			return fail(field, reason, P_CHAN, "must be an array of strings");
		k = kind_parse(json_string_value(v));
		if (k < 0)
			return fail(field, reason, P_CHAN, "unknown channel");
		for (int n = 0; n < p->norder; n++)
			if (p->order[n] == k)
				return fail(field, reason, P_CHAN, "duplicate channel");
		p->order[p->norder++] = k;
	}
	return 0;
}

/* An object of known names -> bool into out[]. */
static int parse_bool_map(const json_t *j, const char *obj_path, const char *const *names,
                          const char *const *paths, int n, signed char *out, const char *unknown,
                          const char **field, const char **reason)
{
	const char *key;
	json_t *v;

	if (!json_is_object(j))
		return fail(field, reason, obj_path, "must be an object");
	json_object_foreach((json_t *)j, key, v)
	{
		int idx = -1;
		for (int i = 0; i < n; i++)
			if (strcmp(key, names[i]) == 0)
				idx = i;
		if (idx < 0)
			return fail(field, reason, key_path(obj_path, key), unknown);
		if (!json_is_boolean(v))
			return fail(field, reason, paths[idx], "must be true or false");
		out[idx] = json_is_true(v) ? 1 : 0;
	}
	return 0;
}

static void prefs_init(struct prefs *p)
{
	memset(p, 0, sizeof(*p));
	memset(p->consent, -1, sizeof(p->consent));
	memset(p->cat_consent, -1, sizeof(p->cat_consent));
}

int prefs_parse(const json_t *j, struct prefs *p, const char **field, const char **reason)
{
	struct prefs np;
	const char *key;
	json_t *v;

	prefs_init(&np);
	if (!j || json_is_null(j))
		goto ok;
	if (!json_is_object(j))
		return fail(field, reason, P_ROOT, "must be an object");
	json_object_foreach((json_t *)j, key, v)
	{
		int rc;
		if (strcmp(key, "channels") == 0) {
			rc = json_is_null(v) ? 0 : parse_channels(v, &np, field, reason);
		} else if (strcmp(key, "consent") == 0) {
			rc = json_is_null(v)
			         ? 0
			         : parse_bool_map(v, P_CONS, kind_names, consent_paths, ADDR_KINDS,
			                          np.consent, "unknown channel", field, reason);
		} else if (strcmp(key, "categories") == 0) {
			rc = json_is_null(v) ? 0
			                     : parse_bool_map(v, P_CATS, category_names, cat_paths,
			                                      CAT__N, np.cat_consent,
			                                      "unknown category", field, reason);
		} else if (strcmp(key, "quiet_hours") == 0) {
			rc = json_is_null(v)
			         ? 0
			         : parse_window_obj(v, &quiet_paths, &np.quiet, field, reason);
		} else if (strcmp(key, "window") == 0) {
			rc = json_is_null(v)
			         ? 0
			         : parse_window_obj(v, &window_paths, &np.window, field, reason);
		} else {
			rc = fail(field, reason, key_path(P_ROOT, key), "unknown key");
		}
		if (rc < 0)
			return rc;
	}
	if (np.quiet.set && np.window.set) {
		int open = 0;
		for (int m = 0; m < MIN_PER_DAY && !open; m++)
			open = win_has(&np.window, m) && !win_has(&np.quiet, m);
		if (!open)
			return fail(field, reason, P_WIN, "window lies inside quiet hours");
	}
ok:
	*p = np;
	return 0;
}

static void fmt_hhmm(char out[8], int min)
{
	unsigned m = (unsigned)min % MIN_PER_DAY; /* out-of-range input: wrap, never overflow */

	snprintf(out, 8, "%02u:%02u", (m / 60) % 100, m % 60);
}

static json_t *window_json(const struct prefs_window *w)
{
	char s[8], e[8];
	json_t *o;

	fmt_hhmm(s, w->start_min);
	fmt_hhmm(e, w->end_min);
	o = json_pack("{s:s, s:s}", "start", s, "end", e);
	if (!o)
		abort();
	return o;
}

json_t *prefs_to_json(const struct prefs *p)
{
	json_t *o = json_object();

	if (!o)
		abort();
	if (p->norder > 0) {
		json_t *a = json_array();
		for (int i = 0; i < p->norder && i < ADDR_KINDS; i++)
			if (p->order[i] >= 0 && p->order[i] < ADDR_KINDS)
				json_array_append_new(a, json_string(kind_names[p->order[i]]));
		json_object_set_new(o, "channels", a);
	}
	{
		json_t *c = json_object();
		for (int k = 0; k < ADDR_KINDS; k++)
			if (p->consent[k] >= 0)
				json_object_set_new(c, kind_names[k], json_boolean(p->consent[k]));
		if (json_object_size(c) > 0)
			json_object_set_new(o, "consent", c);
		else
			json_decref(c);
	}
	{
		json_t *c = json_object();
		for (int k = 0; k < CAT__N; k++)
			if (p->cat_consent[k] >= 0)
				json_object_set_new(c, category_name((enum category)k),
				                    json_boolean(p->cat_consent[k]));
		if (json_object_size(c) > 0)
			json_object_set_new(o, "categories", c);
		else
			json_decref(c);
	}
	if (p->quiet.set)
		json_object_set_new(o, "quiet_hours", window_json(&p->quiet));
	if (p->window.set)
		json_object_set_new(o, "window", window_json(&p->window));
	return o;
}

int prefs_parse_window(const char *s, struct prefs_window *w)
{
	char a[6], b[6];
	struct prefs_window nw = {0};

	if (!s || !*s) {
		*w = nw;
		return 0;
	}
	if (strlen(s) != 11 || s[5] != '-')
		return -1;
	memcpy(a, s, 5);
	a[5] = 0;
	memcpy(b, s + 6, 5);
	b[5] = 0;
	if (parse_hhmm(a, &nw.start_min) < 0 || parse_hhmm(b, &nw.end_min) < 0)
		return -1;
	if (nw.start_min == nw.end_min)
		return -1;
	nw.set = 1;
	*w = nw;
	return 0;
}

/* May a message go out at local minute-of-day m? */
static int minute_allowed(const struct prefs_window *quiet, const struct prefs_window *window,
                          int m)
{
	if (quiet && quiet->set && win_has(quiet, m))
		return 0;
	if (window && window->set && !win_has(window, m))
		return 0;
	return 1;
}

/* Is instant t allowed?  1, 0, or -1 on a zone error. */
static int instant_allowed(const struct prefs_window *quiet, const struct prefs_window *window,
                           const char *tz, int64_t t)
{
	struct tz_tm lt;

	if (tz_local(tz, t, &lt) < 0)
		return -1;
	return minute_allowed(quiet, window, lt.hour * 60 + lt.min);
}

static void consider(const struct prefs_window *quiet, const struct prefs_window *window,
                     const char *tz, int64_t now, int64_t t, int64_t *best)
{
	if (t < now || (*best >= 0 && t >= *best))
		return;
	if (instant_allowed(quiet, window, tz, t) == 1)
		*best = t;
}

/*
 * The first allowed instant after now is either an instant whose wall time is
 * exactly a boundary where allowed time starts (quiet end, window start) -
 * any interpretation of it, so both instants of a repeated hour and the
 * first instant after a gap - or an offset transition where the wall clock
 * jumps into allowed time.  Collect those over the next days, keep the
 * smallest that really is allowed.
 */
int64_t prefs_next_allowed(const struct prefs_window *quiet, const struct prefs_window *window,
                           const char *tz, int64_t now_ms)
{
	int bounds[2], nb = 0;
	struct tz_tm lt;
	int64_t best = -1, horizon = now_ms + 4LL * 24 * 3600 * 1000, t = now_ms;

	if (!(quiet && quiet->set) && !(window && window->set))
		return now_ms;
	if (tz_local(tz, now_ms, &lt) < 0)
		return -1;
	if (minute_allowed(quiet, window, lt.hour * 60 + lt.min))
		return now_ms;
	if (quiet && quiet->set)
		bounds[nb++] = quiet->end_min;
	if (window && window->set)
		bounds[nb++] = window->start_min;
	for (int d = -1; d <= 3; d++) {
		for (int b = 0; b < nb; b++) {
			struct tz_tm c = {.year = lt.year,
			                  .month = lt.month,
			                  .day = lt.day + d,
			                  .hour = bounds[b] / 60,
			                  .min = bounds[b] % 60};
			int64_t u;
			if (tz_utc(tz, &c, &u) == 0)
				consider(quiet, window, tz, now_ms, u, &best);
			if (tz_utc_later(tz, &c, &u) == 0)
				consider(quiet, window, tz, now_ms, u, &best);
		}
	}
	for (int i = 0; i < 8; i++) {
		if (tz_next_transition(tz, t, &t) != 1 || t > horizon)
			break;
		consider(quiet, window, tz, now_ms, t, &best);
	}
	return best >= 0 ? best : now_ms;
}

/* reason is "what" or "what:arg". */
static void decide_set(struct prefs_decision *out, enum prefs_action a, const char *what,
                       const char *arg)
{
	out->action = a;
	if (a == PREFS_SUPPRESS)
		out->channel = -1;
	if (arg)
		snprintf(out->reason, sizeof(out->reason), "%s:%s", what, arg);
	else
		snprintf(out->reason, sizeof(out->reason), "%s", what);
}

/* Why kind k cannot be used, or NULL when it can. */
static const char *channel_block(const struct prefs_input *in, const struct prefs *p, int k)
{
	if (in->channel_enabled && !in->channel_enabled[k])
		return "channel_not_configured";
	if (!in->addr[k] || !in->addr[k][0])
		return "no_address";
	if (p->consent[k] == 0)
		return "opted_out";
	return NULL;
}

void prefs_decide(const struct prefs_input *in, struct prefs_decision *out)
{
	struct prefs empty;
	const struct prefs *p = in->prefs;
	const struct prefs_window *quiet;
	int cand[ADDR_KINDS], ncand = 0;
	const char *tz = in->tz && *in->tz ? in->tz : "UTC";
	int64_t next;

	memset(out, 0, sizeof(*out));
	out->channel = -1;
	if (!p) {
		prefs_init(&empty);
		p = &empty;
	}

	/* 1. channel */
	if (in->requested >= ADDR_KINDS) {
		decide_set(out, PREFS_SUPPRESS, "unknown_channel", NULL);
		return;
	}
	if (in->requested >= 0) {
		cand[ncand++] = in->requested;
	} else {
		int seen[ADDR_KINDS] = {0};
		for (int i = 0; i < p->norder && i < ADDR_KINDS; i++) {
			int k = p->order[i];
			if (k >= 0 && k < ADDR_KINDS && !seen[k]) {
				seen[k] = 1;
				cand[ncand++] = k;
			}
		}
		for (int i = 0; i < ADDR_KINDS; i++)
			if (!seen[default_order[i]])
				cand[ncand++] = default_order[i];
	}
	for (int i = 0; i < ncand && out->channel < 0; i++) {
		const char *why = channel_block(in, p, cand[i]);
		if (!why)
			out->channel = cand[i];
		else if (in->requested >= 0) {
			decide_set(out, PREFS_SUPPRESS, why, kind_names[cand[i]]);
			return;
		}
	}
	if (out->channel < 0) {
		decide_set(out, PREFS_SUPPRESS, "no_channel", NULL);
		return;
	}

	/* 2. category consent (transactional cannot be refused per category) */
	if ((unsigned)in->category >= CAT__N) {
		decide_set(out, PREFS_SUPPRESS, "unknown_category", NULL);
		return;
	}
	if (in->category != CAT_TRANSACTIONAL && p->cat_consent[in->category] == 0) {
		decide_set(out, PREFS_SUPPRESS, "category_opt_out", category_names[in->category]);
		return;
	}

	/* 3. time */
	out->action = PREFS_SEND;
	if (in->category == CAT_TRANSACTIONAL && !in->quiet_transactional)
		return;
	quiet = p->quiet.set ? &p->quiet : in->default_quiet;
	next = prefs_next_allowed(quiet, &p->window, tz, in->now_ms);
	if (next < 0) {
		/* Zones are validated when contacts are written; never hold a
		 * message hostage to a zone ICU no longer knows. */
		tz = "UTC";
		next = prefs_next_allowed(quiet, &p->window, tz, in->now_ms);
	}
	if (next > in->now_ms) {
		struct tz_tm lt;
		int in_quiet = 0;
		if (quiet && quiet->set && tz_local(tz, in->now_ms, &lt) == 0)
			in_quiet = win_has(quiet, lt.hour * 60 + lt.min);
		out->defer_until_ms = next;
		decide_set(out, PREFS_DEFER, in_quiet ? "quiet_hours" : "outside_window", NULL);
	}
}
