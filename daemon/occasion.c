/*
 * occasion.c - occasion rules: validation, the canonical JSON form, the
 * date a rule reads in a contact, and the send-day / year-key / due-time
 * decision.  Pure: the clock is a parameter, nothing here touches the
 * store, the loop or the network.  The leap-day rule is cdate.c's
 * (cdate_occurrence), the Persian calendar jalali.c's and the zones
 * tz.c's (all ICU); this file only does civil-date arithmetic on top.
 *
 * Limits: offsets within +-365 days; years 1000..9999 for days given as
 * text; a window is one range inside a local day.
 */
#include "occasion.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jalali.h"
#include "prefs.h"
#include "store.h"
#include "tz.h"
#include "util.h"

#define DAY_MS 86400000LL

static const char *const kind_names[] = {"birthday", "anniversary", "date_attr", "fixed_gregorian",
                                         "fixed_jalali"};

const char *occ_kind_name(enum occ_kind k)
{
	return (unsigned)k < ARRAY_SIZE(kind_names) ? kind_names[k] : "?";
}

/* Civil dates ------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static struct occ_day civil_from_days(int64_t z)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	struct occ_day r;
	r.d = (int)(doy - (153 * mp + 2) / 5 + 1);
	r.m = (int)(mp < 10 ? mp + 3 : mp - 9);
	r.y = (int)(yoe + era * 400 + (r.m <= 2));
	return r;
}

static int greg_mlen(int y, int m)
{
	static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return len[m - 1];
}

struct occ_day occ_day_add(struct occ_day d, int n)
{
	return civil_from_days(days_from_civil(d.y, d.m, d.d) + n);
}

static int day_eq(struct occ_day a, struct occ_day b)
{
	return a.y == b.y && a.m == b.m && a.d == b.d;
}

static int two(const char *s, int *out)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	*out = (s[0] - '0') * 10 + (s[1] - '0');
	return 0;
}

int occ_day_parse(const char *s, struct occ_day *out)
{
	int c, yy, m, d;
	if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-' || two(s, &c) < 0 ||
	    two(s + 2, &yy) < 0 || two(s + 5, &m) < 0 || two(s + 8, &d) < 0)
		return -EINVAL;
	int y = c * 100 + yy;
	if (y < 1000 || m < 1 || m > 12 || d < 1 || d > greg_mlen(y, m))
		return -EINVAL;
	out->y = y;
	out->m = m;
	out->d = d;
	return 0;
}

int occ_local_day(const char *zone, int64_t utc_ms, struct occ_day *out)
{
	struct tz_tm tm;
	if (tz_local(zone, utc_ms, &tm) < 0)
		return -EINVAL;
	out->y = tm.year;
	out->m = tm.month;
	out->d = tm.day;
	return 0;
}

/* Windows ----------------------------------------------------------------- */

static int hhmm(const char *s, int *min)
{
	int h, m;
	if (two(s, &h) < 0 || s[2] != ':' || two(s + 3, &m) < 0 || m > 59 || h > 24 ||
	    (h == 24 && m != 0))
		return -1;
	*min = h * 60 + m;
	return 0;
}

int occ_window_parse(const char *s, struct occ_window *w)
{
	struct occ_window x = {1, 0, 0};
	if (!s || strlen(s) != 11 || s[5] != '-' || hhmm(s, &x.start) < 0 ||
	    hhmm(s + 6, &x.end) < 0 || x.start >= x.end || x.start == 1440)
		return -EINVAL;
	*w = x;
	return 0;
}

static void window_format(const struct occ_window *w, char *out, size_t n)
{
	snprintf(out, n, "%02d:%02d-%02d:%02d", w->start / 60, w->start % 60, w->end / 60,
	         w->end % 60);
}

int occ_window_bounds(const struct occ_window *w, const struct occ_window *def, const char *zone,
                      struct occ_day day, int64_t *start_ms, int64_t *end_ms)
{
	struct occ_window all = {1, 0, 1440};
	const struct occ_window *x = w && w->set ? w : def && def->set ? def : &all;
	struct occ_day end_day = x->end == 1440 ? occ_day_add(day, 1) : day;
	int end_min = x->end == 1440 ? 0 : x->end;
	struct tz_tm a = {.year = day.y,
	                  .month = day.m,
	                  .day = day.d,
	                  .hour = x->start / 60,
	                  .min = x->start % 60};
	struct tz_tm b = {.year = end_day.y,
	                  .month = end_day.m,
	                  .day = end_day.d,
	                  .hour = end_min / 60,
	                  .min = end_min % 60};
	if (tz_utc(zone, &a, start_ms) < 0 || tz_utc(zone, &b, end_ms) < 0)
		return -EINVAL;
	return 0;
}

/* Rules ------------------------------------------------------------------- */

static int id_chars(const char *s, size_t max, const char *extra)
{
	size_t n = strlen(s);
	if (n < 1 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || (extra && strchr(extra, c))))
			return 0;
	}
	return 1;
}

int occ_id_valid(const char *s)
{
	return s && id_chars(s, OCC_ID_MAX, NULL);
}

void occ_rule_free(struct occ_rule *r)
{
	if (!r)
		return;
	free(r->name);
	json_decref(r->segment);
	free(r);
}

static int bad(const char **field, const char *f, char *reason, size_t n, const char *why)
{
	*field = f;
	snprintf(reason, n, "%s", why);
	return -EINVAL;
}

/* A string member: absent -> *out NULL (0); present and not a string -> -1. */
static int get_str(const json_t *o, const char *k, const char **out)
{
	const json_t *v = json_object_get(o, k);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return -1;
	*out = json_string_value(v);
	return 0;
}

int occ_rule_parse(const json_t *def, int id_required, struct occ_rule **out, const char **field,
                   char *reason, size_t rn)
{
	static const char *const known[] = {
	    "id",          "name",       "kind",       "attr",   "date",     "calendar", "repeat",
	    "offset_days", "template",   "channel",    "window", "segment",  "category", "enabled",
	    "version",     "created_at", "updated_at", "run",    "last_pass"};
	const char *k, *s;
	json_t *v;
	if (!json_is_object(def))
		return bad(field, "", reason, rn, "a rule is a JSON object");
	json_object_foreach((json_t *)def, k, v)
	{
		int ok = 0;
		for (size_t i = 0; i < ARRAY_SIZE(known) && !ok; i++)
			ok = strcmp(k, known[i]) == 0;
		if (!ok)
			return bad(field, k, reason, rn, "unknown field (see docs/occasions.md)");
	}
	struct occ_rule *r = xcalloc(1, sizeof *r);
	r->cal = -1;
	r->enabled = 1;
	snprintf(r->channel, sizeof r->channel, "preferred");
	snprintf(r->category, sizeof r->category, "occasion");
	int rc = -EINVAL;

	if (get_str(def, "id", &s) < 0 || (s && !occ_id_valid(s)) || (!s && id_required)) {
		bad(field, "id", reason, rn, "1..64 of A-Z a-z 0-9 _ -");
		goto fail;
	}
	if (s)
		snprintf(r->id, sizeof r->id, "%s", s);
	if (get_str(def, "name", &s) < 0 || (s && (strlen(s) > OCC_NAME_MAX || !*s))) {
		bad(field, "name", reason, rn, "a text of 1..200 bytes");
		goto fail;
	}
	r->name = s ? xstrdup(s) : NULL;
	if (get_str(def, "kind", &s) < 0 || !s) {
		bad(field, "kind", reason, rn,
		    "birthday, anniversary, date_attr, fixed_gregorian or fixed_jalali");
		goto fail;
	}
	int kind = -1;
	for (size_t i = 0; i < ARRAY_SIZE(kind_names); i++)
		if (strcmp(s, kind_names[i]) == 0)
			kind = (int)i;
	if (kind < 0) {
		bad(field, "kind", reason, rn,
		    "birthday, anniversary, date_attr, fixed_gregorian or fixed_jalali");
		goto fail;
	}
	r->kind = (enum occ_kind)kind;
	int fixed = r->kind == OCC_FIXED_GREGORIAN || r->kind == OCC_FIXED_JALALI;

	if (get_str(def, "attr", &s) < 0) {
		bad(field, "attr", reason, rn, "must be a string");
		goto fail;
	}
	if (r->kind == OCC_DATE_ATTR) {
		if (!s || !id_chars(s, OCC_ATTR_MAX, ".")) {
			bad(field, "attr", reason, rn,
			    "date_attr needs the attribute's name: 1..64 of A-Z a-z 0-9 _ . -");
			goto fail;
		}
		snprintf(r->attr, sizeof r->attr, "%s", s);
	} else if (s) {
		bad(field, "attr", reason, rn, "only for kind date_attr");
		goto fail;
	} else {
		snprintf(r->attr, sizeof r->attr, "%s",
		         r->kind == OCC_BIRTHDAY      ? "birthday"
		         : r->kind == OCC_ANNIVERSARY ? "joined"
		                                      : "");
	}

	if (get_str(def, "date", &s) < 0) {
		bad(field, "date", reason, rn, "must be a string");
		goto fail;
	}
	if (fixed) {
		char buf[16];
		snprintf(buf, sizeof buf, "%s--%.8s", r->kind == OCC_FIXED_JALALI ? "j:" : "",
		         s ? s : "");
		if (!s || strlen(s) != 5 || cdate_parse(buf, &r->date) < 0) {
			bad(field, "date", reason, rn,
			    r->kind == OCC_FIXED_JALALI
			        ? "MM-DD in the Jalali calendar, e.g. 01-01 (Nowruz), 09-30 (Yalda)"
			        : "MM-DD in the Gregorian calendar, e.g. 12-25");
			goto fail;
		}
	} else if (s) {
		bad(field, "date", reason, rn, "only for fixed_gregorian and fixed_jalali");
		goto fail;
	}

	if (get_str(def, "calendar", &s) < 0 ||
	    (s && strcmp(s, "gregorian") != 0 && strcmp(s, "jalali") != 0)) {
		bad(field, "calendar", reason, rn, "gregorian or jalali");
		goto fail;
	}
	if (s && fixed) {
		bad(field, "calendar", reason, rn, "the kind already names the calendar");
		goto fail;
	}
	if (s)
		r->cal = strcmp(s, "jalali") == 0 ? CDATE_JALALI : CDATE_GREGORIAN;

	if (get_str(def, "repeat", &s) < 0 ||
	    (s && strcmp(s, "yearly") != 0 && strcmp(s, "once") != 0)) {
		bad(field, "repeat", reason, rn, "yearly or once");
		goto fail;
	}
	if (s && r->kind != OCC_DATE_ATTR) {
		bad(field, "repeat", reason, rn, "only for kind date_attr");
		goto fail;
	}
	r->once = s && strcmp(s, "once") == 0;

	v = json_object_get(def, "offset_days");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < -OCC_OFFSET_MAX ||
		    json_integer_value(v) > OCC_OFFSET_MAX) {
			bad(field, "offset_days", reason, rn,
			    "an integer -365..365 (-3: three days before the date)");
			goto fail;
		}
		r->offset_days = (int)json_integer_value(v);
	}

	if (get_str(def, "template", &s) < 0 || !s || !id_chars(s, OCC_ID_MAX, ".")) {
		bad(field, "template", reason, rn, "a template id (1..64 of A-Z a-z 0-9 _ . -)");
		goto fail;
	}
	snprintf(r->tmpl, sizeof r->tmpl, "%s", s);

	if (get_str(def, "channel", &s) < 0 ||
	    (s && strcmp(s, "sms") != 0 && strcmp(s, "email") != 0 && strcmp(s, "chat") != 0 &&
	     strcmp(s, "preferred") != 0)) {
		bad(field, "channel", reason, rn, "sms, email, chat or preferred");
		goto fail;
	}
	if (s)
		snprintf(r->channel, sizeof r->channel, "%s", s);

	if (get_str(def, "window", &s) < 0 || (s && occ_window_parse(s, &r->window) < 0)) {
		bad(field, "window", reason, rn,
		    "HH:MM-HH:MM in the contact's local time, start before end (e.g. 09:00-12:00)");
		goto fail;
	}

	v = json_object_get(def, "segment");
	if (v && !json_is_null(v)) {
		if (json_is_string(v) && occ_id_valid(json_string_value(v))) {
			r->segment = json_incref(v);
		} else if (json_is_object(v)) {
			r->segment = json_deep_copy(v);
		} else {
			bad(field, "segment", reason, rn,
			    "a segment id or an inline segment definition (object)");
			goto fail;
		}
	}

	if (get_str(def, "category", &s) < 0 || (s && category_parse(s) < 0)) {
		bad(field, "category", reason, rn,
		    "transactional, promotional, survey, lottery or occasion");
		goto fail;
	}
	if (s)
		snprintf(r->category, sizeof r->category, "%s", s);

	v = json_object_get(def, "enabled");
	if (v && !json_is_null(v)) {
		if (!json_is_boolean(v)) {
			bad(field, "enabled", reason, rn, "true or false");
			goto fail;
		}
		r->enabled = json_is_true(v);
	}
	*out = r;
	return 0;
fail:
	occ_rule_free(r);
	return rc;
}

json_t *occ_rule_to_json(const struct occ_rule *r)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "name", json_string(r->name ? r->name : r->id));
	json_object_set_new(o, "kind", json_string(occ_kind_name(r->kind)));
	if (r->kind == OCC_DATE_ATTR)
		json_object_set_new(o, "attr", json_string(r->attr));
	if (r->kind == OCC_FIXED_GREGORIAN || r->kind == OCC_FIXED_JALALI) {
		char d[24];
		snprintf(d, sizeof d, "%02d-%02d", r->date.m, r->date.d);
		json_object_set_new(o, "date", json_string(d));
	}
	if (r->cal >= 0)
		json_object_set_new(o, "calendar",
		                    json_string(r->cal == CDATE_JALALI ? "jalali" : "gregorian"));
	if (r->kind == OCC_DATE_ATTR)
		json_object_set_new(o, "repeat", json_string(r->once ? "once" : "yearly"));
	json_object_set_new(o, "offset_days", json_integer(r->offset_days));
	json_object_set_new(o, "template", json_string(r->tmpl));
	json_object_set_new(o, "channel", json_string(r->channel));
	if (r->window.set) {
		char w[32];
		window_format(&r->window, w, sizeof w);
		json_object_set_new(o, "window", json_string(w));
	} else {
		json_object_set_new(o, "window", json_null());
	}
	json_object_set(o, "segment", r->segment ? r->segment : json_null());
	json_object_set_new(o, "category", json_string(r->category));
	json_object_set_new(o, "enabled", json_boolean(r->enabled));
	return o;
}

/* Contact dates ----------------------------------------------------------- */

static int day_of_ms(int64_t ms, const char *zone, struct cdate *out)
{
	struct occ_day d;
	if (occ_local_day(zone, ms, &d) < 0)
		return -EINVAL;
	out->cal = CDATE_GREGORIAN;
	out->y = d.y;
	out->m = d.m;
	out->d = d.d;
	return 0;
}

int occ_contact_date(const struct occ_rule *r, const char *raw, int64_t created_ms,
                     const char *zone, struct cdate *out)
{
	if (r->kind == OCC_FIXED_GREGORIAN || r->kind == OCC_FIXED_JALALI)
		return -ENOENT;
	if (!raw) {
		if (r->kind == OCC_ANNIVERSARY && created_ms > 0)
			return day_of_ms(created_ms, zone, out);
		return -ENOENT;
	}
	json_t *j = json_loads(raw, JSON_DECODE_ANY, NULL);
	int rc = -EINVAL;
	const char *s = j ? (json_is_string(j) ? json_string_value(j) : NULL) : raw;
	if (j && json_is_null(j)) {
		rc = r->kind == OCC_ANNIVERSARY && created_ms > 0 ? day_of_ms(created_ms, zone, out)
		                                                  : -ENOENT;
	} else if (j && json_is_integer(j)) {
		json_int_t ms = json_integer_value(j);
		if (ms > 0)
			rc = day_of_ms(ms, zone, out);
	} else if (s) {
		int64_t ms;
		if (cdate_parse(s, out) == 0)
			rc = 0;
		else if (strlen(s) > 10 && parse_time(s, &ms) == 0)
			rc = day_of_ms(ms, zone, out);
	}
	json_decref(j);
	return rc;
}

/* The decision ------------------------------------------------------------ */

/* c in calendar cal (known years only; an unknown year stays as it is). */
static int to_calendar(const struct cdate *c, int cal, struct cdate *out)
{
	*out = *c;
	if (cal < 0 || (int)c->cal == cal || !c->y)
		return 0;
	int gy, gm, gd;
	if (cdate_to_gregorian(c, &gy, &gm, &gd) < 0)
		return -EINVAL;
	if (cal == CDATE_GREGORIAN) {
		*out = (struct cdate){CDATE_GREGORIAN, gy, gm, gd};
		return 0;
	}
	int jy, jm, jd;
	if (jalali_from_gregorian(gy, gm, gd, &jy, &jm, &jd) < 0)
		return -EINVAL;
	*out = (struct cdate){CDATE_JALALI, jy, jm, jd};
	return 0;
}

int occ_match(const struct occ_rule *r, const struct cdate *cd, struct occ_day day,
              struct occ_hit *hit)
{
	struct cdate eff;
	if (r->kind == OCC_FIXED_GREGORIAN || r->kind == OCC_FIXED_JALALI) {
		eff = r->date;
		eff.y = 0;
	} else if (!cd || to_calendar(cd, r->cal, &eff) < 0) {
		return -EINVAL;
	}
	/* The occurrence this day announces: send day = occurrence + offset. */
	struct occ_day ev = occ_day_add(day, -r->offset_days);
	int jy = 0, jm = 0, jd = 0, year = ev.y;
	if (eff.cal == CDATE_JALALI) {
		if (jalali_from_gregorian(ev.y, ev.m, ev.d, &jy, &jm, &jd) < 0)
			return -EINVAL;
		year = jy;
		if (jm != eff.m)
			return 0; /* the leap-day rule never changes the month */
	} else if (ev.m != eff.m) {
		return 0;
	}
	int gy, gm, gd;
	if (cdate_occurrence(&eff, year, &gy, &gm, &gd) < 0)
		return -EINVAL;
	if (!day_eq(ev, (struct occ_day){gy, gm, gd}))
		return 0;
	int years = eff.y ? year - eff.y : -1;
	if (eff.y) {
		if (r->kind == OCC_DATE_ATTR ? years < 0 : years < 1)
			return 0;
		if (r->once && years != 0)
			return 0;
	} else if (r->once) {
		return 0; /* "once" needs the year */
	}
	if (eff.cal != CDATE_JALALI && jalali_from_gregorian(ev.y, ev.m, ev.d, &jy, &jm, &jd) < 0)
		return -EINVAL;
	if (hit) {
		hit->year = year;
		hit->cal = eff.cal;
		hit->date = ev;
		hit->jy = jy;
		hit->jm = jm;
		hit->jd = jd;
		hit->years = years;
	}
	return 1;
}

int occ_decide(const struct occ_rule *r, const struct cdate *cd, const char *zone, int64_t now,
               const struct occ_window *def_window, int64_t grace_ms, struct occ_decision *out)
{
	memset(out, 0, sizeof *out);
	if (occ_local_day(zone, now, &out->day) < 0)
		return -EINVAL;
	int m = occ_match(r, cd, out->day, &out->hit);
	if (m < 0)
		return m;
	if (m == 0) {
		out->verdict = OCC_NOT_TODAY;
		return 0;
	}
	if (occ_window_bounds(&r->window, def_window, zone, out->day, &out->win_start,
	                      &out->win_end) < 0)
		return -EINVAL;
	if (now < out->win_start) {
		out->verdict = OCC_SEND;
		out->due_ms = out->win_start;
	} else if (now < out->win_end) {
		out->verdict = OCC_SEND;
		out->due_ms = now;
	} else if (now < out->win_end + (grace_ms > 0 ? grace_ms : 0)) {
		out->verdict = OCC_SEND;
		out->due_ms = now;
		out->late = 1;
	} else {
		out->verdict = OCC_MISSED;
	}
	return 0;
}

void occ_rule_field(const struct occ_rule *r, char *out, size_t n)
{
	if (r->kind == OCC_FIXED_GREGORIAN || r->kind == OCC_FIXED_JALALI)
		snprintf(out, n, "%s", "");
	else
		snprintf(out, n, "x:%s", r->attr);
}

int occ_evaluate(const struct occ_rule *r, const char *tz, const char *created, const char *raw,
                 const char *default_tz, int64_t now, const struct occ_day *day,
                 const struct occ_window *def_window, int64_t grace_ms, struct occ_decision *out,
                 const char **zone)
{
	const char *z = tz && *tz && tz_valid(tz) ? tz : default_tz;
	int64_t cms = 0;
	if (created && parse_i64(created, 0, INT64_MAX, &cms) < 0)
		cms = 0;
	struct cdate c, *cd = NULL;
	memset(out, 0, sizeof *out);
	if (r->kind != OCC_FIXED_GREGORIAN && r->kind != OCC_FIXED_JALALI) {
		int rc = occ_contact_date(r, raw, cms, z, &c);
		if (rc < 0)
			return rc;
		cd = &c;
	}
	*zone = z;
	if (!day)
		return occ_decide(r, cd, z, now, def_window, grace_ms, out);
	out->day = *day;
	int m = occ_match(r, cd, *day, &out->hit);
	if (m < 0)
		return m;
	out->verdict = m ? OCC_SEND : OCC_NOT_TODAY;
	if (m &&
	    occ_window_bounds(&r->window, def_window, z, *day, &out->win_start, &out->win_end) < 0)
		return -EINVAL;
	out->due_ms = out->win_start;
	return 0;
}

int occ_may_fire(const struct occ_rule *r, int64_t now)
{
	if (r->kind != OCC_FIXED_GREGORIAN && r->kind != OCC_FIXED_JALALI)
		return 1;
	int64_t z = now >= 0 ? now / DAY_MS : (now - DAY_MS + 1) / DAY_MS;
	struct occ_day utc = civil_from_days(z);
	for (int i = -1; i <= 1; i++)
		if (occ_match(r, NULL, occ_day_add(utc, i), NULL) != 0)
			return 1; /* a match, or an error: let the scan find out */
	return 0;
}

void occ_idem_key(const char *rule, const char *contact, int year, char *out, size_t n)
{
	snprintf(out, n, "occ:%s:%s:%d", rule, contact, year);
}
