/*
 * test_occasion.c - occasion rules with an injected clock: validation and
 * the canonical form; Nowruz and Yalda for 1403, 1404 and 1450 (the
 * Gregorian dates computed through jalali.c, a few pinned); the send day
 * per time zone (Asia/Tehran, Europe/Berlin on its DST change days);
 * offsets across month and year boundaries; Jalali birthdays; Feb 29 in a
 * common year; Esfand 30 in a common Jalali year; the window before,
 * inside and after (with and without grace); reading dates from contacts.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "jalali.h"
#include "occasion.h"
#include "tz.h"
#include "util.h"

#define MIN_MS  60000LL
#define HOUR_MS 3600000LL

static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/* A UTC instant, independently of tz.c. */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
	return (days_from_civil(y, mo, d) * 24 + h) * HOUR_MS + mi * MIN_MS;
}

static struct occ_rule *rule(const char *json)
{
	json_error_t je;
	json_t *j = json_loads(json, 0, &je);
	if (!j)
		fail_msg("bad test JSON %s: %s", json, je.text);
	struct occ_rule *r = NULL;
	const char *field = NULL;
	char reason[160];
	if (occ_rule_parse(j, 1, &r, &field, reason, sizeof reason) != 0)
		fail_msg("rule %s refused: %s: %s", json, field, reason);
	json_decref(j);
	return r;
}

static const char *refused(const char *json)
{
	static char out[200];
	json_t *j = json_loads(json, 0, NULL);
	assert_non_null(j);
	struct occ_rule *r = NULL;
	const char *field = NULL;
	char reason[160];
	int rc = occ_rule_parse(j, 1, &r, &field, reason, sizeof reason);
	if (rc != -EINVAL)
		fail_msg("rule %s accepted", json);
	assert_null(r);
	snprintf(out, sizeof out, "%s", field);
	json_decref(j);
	return out;
}

static struct occ_day day(int y, int m, int d)
{
	return (struct occ_day){y, m, d};
}

static struct cdate cd(const char *s)
{
	struct cdate c;
	if (cdate_parse(s, &c) != 0)
		fail_msg("cdate %s", s);
	return c;
}

static void assert_day(struct occ_day got, int y, int m, int d)
{
	if (got.y != y || got.m != m || got.d != d)
		fail_msg("day %04d-%02d-%02d, want %04d-%02d-%02d", got.y, got.m, got.d, y, m, d);
}

static struct occ_day greg_of_jalali(int jy, int jm, int jd)
{
	struct occ_day g;
	assert_int_equal(jalali_to_gregorian(jy, jm, jd, &g.y, &g.m, &g.d), 0);
	return g;
}

/* ------------------------------------------------------------------ rules */

static void test_window_parse(void **state)
{
	(void)state;
	struct occ_window w;
	assert_int_equal(occ_window_parse("09:00-12:00", &w), 0);
	assert_int_equal(w.set, 1);
	assert_int_equal(w.start, 540);
	assert_int_equal(w.end, 720);
	assert_int_equal(occ_window_parse("00:00-24:00", &w), 0);
	assert_int_equal(w.end, 1440);
	const char *bad[] = {"",
	                     "9:00-12:00",
	                     "09:00-09:00",
	                     "12:00-09:00",
	                     "24:00-24:00",
	                     "09:60-10:00",
	                     "25:00-26:00",
	                     "09:00-24:01",
	                     "09:00 12:00",
	                     "09:00-12:00x"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (occ_window_parse(bad[i], &w) != -EINVAL)
			fail_msg("window %s accepted", bad[i]);
}

static void test_rule_parse(void **state)
{
	(void)state;
	struct occ_rule *r = rule("{\"id\":\"nowruz\",\"name\":\"نوروز\",\"kind\":\"fixed_jalali\","
	                          "\"date\":\"01-01\",\"template\":\"nowruz\"}");
	assert_int_equal(r->kind, OCC_FIXED_JALALI);
	assert_int_equal(r->date.cal, CDATE_JALALI);
	assert_int_equal(r->date.m, 1);
	assert_int_equal(r->date.d, 1);
	assert_string_equal(r->channel, "preferred");
	assert_string_equal(r->category, "occasion");
	assert_int_equal(r->enabled, 1);
	assert_int_equal(r->window.set, 0);
	json_t *j = occ_rule_to_json(r);
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	assert_string_equal(s, "{\"id\":\"nowruz\",\"name\":\"نوروز\",\"kind\":\"fixed_jalali\","
	                       "\"date\":\"01-01\",\"offset_days\":0,\"template\":\"nowruz\","
	                       "\"channel\":\"preferred\",\"window\":null,\"segment\":null,"
	                       "\"category\":\"occasion\",\"enabled\":true}");
	/* The canonical form parses back to the same form. */
	struct occ_rule *r2 = rule(s);
	json_t *j2 = occ_rule_to_json(r2);
	assert_true(json_equal(j, j2));
	free(s);
	json_decref(j);
	json_decref(j2);
	occ_rule_free(r2);
	occ_rule_free(r);

	r = rule("{\"id\":\"contract\",\"kind\":\"date_attr\",\"attr\":\"contract.end\","
	         "\"repeat\":\"once\",\"offset_days\":-7,\"template\":\"t1\",\"channel\":\"sms\","
	         "\"window\":\"10:00-18:30\",\"segment\":{\"tags\":{\"any\":[\"vip\"]}},"
	         "\"category\":\"transactional\",\"enabled\":false,\"calendar\":\"jalali\"}");
	assert_int_equal(r->once, 1);
	assert_int_equal(r->offset_days, -7);
	assert_int_equal(r->cal, CDATE_JALALI);
	assert_string_equal(r->attr, "contract.end");
	assert_int_equal(r->window.start, 600);
	assert_int_equal(r->window.end, 1110);
	assert_true(json_is_object(r->segment));
	assert_int_equal(r->enabled, 0);
	j = occ_rule_to_json(r);
	assert_string_equal(json_string_value(json_object_get(j, "window")), "10:00-18:30");
	assert_string_equal(json_string_value(json_object_get(j, "repeat")), "once");
	assert_string_equal(json_string_value(json_object_get(j, "calendar")), "jalali");
	assert_string_equal(json_string_value(json_object_get(j, "name")), "contract");
	json_decref(j);
	occ_rule_free(r);

	/* Esfand 30 and Feb 29 are valid fixed dates (they fall back in common years). */
	occ_rule_free(rule("{\"id\":\"e30\",\"kind\":\"fixed_jalali\",\"date\":\"12-30\","
	                   "\"template\":\"t\"}"));
	occ_rule_free(rule("{\"id\":\"f29\",\"kind\":\"fixed_gregorian\",\"date\":\"02-29\","
	                   "\"template\":\"t\"}"));
	/* Read-only keys of the API form are ignored. */
	occ_rule_free(rule("{\"id\":\"b\",\"kind\":\"birthday\",\"template\":\"t\",\"version\":3,"
	                   "\"updated_at\":\"2026-01-01T00:00:00Z\",\"run\":null}"));

	assert_string_equal(refused("{\"kind\":\"birthday\",\"template\":\"t\"}"), "id");
	assert_string_equal(refused("{\"id\":\"a:b\",\"kind\":\"birthday\",\"template\":\"t\"}"),
	                    "id");
	assert_string_equal(refused("{\"id\":\"a\",\"kind\":\"easter\",\"template\":\"t\"}"),
	                    "kind");
	assert_string_equal(refused("{\"id\":\"a\",\"kind\":\"birthday\"}"), "template");
	assert_string_equal(refused("{\"id\":\"a\",\"kind\":\"date_attr\",\"template\":\"t\"}"),
	                    "attr");
	assert_string_equal(
	    refused("{\"id\":\"a\",\"kind\":\"birthday\",\"attr\":\"x\",\"template\":\"t\"}"),
	    "attr");
	assert_string_equal(refused("{\"id\":\"a\",\"kind\":\"fixed_jalali\",\"template\":\"t\"}"),
	                    "date");
	assert_string_equal(refused("{\"id\":\"a\",\"kind\":\"fixed_jalali\",\"date\":\"07-31\","
	                            "\"template\":\"t\"}"),
	                    "date");
	assert_string_equal(refused("{\"id\":\"a\",\"kind\":\"fixed_gregorian\",\"date\":\"02-30\","
	                            "\"template\":\"t\"}"),
	                    "date");
	assert_string_equal(refused("{\"id\":\"a\",\"kind\":\"fixed_gregorian\",\"date\":\"2-3\","
	                            "\"template\":\"t\"}"),
	                    "date");
	assert_string_equal(refused("{\"id\":\"a\",\"kind\":\"birthday\",\"date\":\"01-01\","
	                            "\"template\":\"t\"}"),
	                    "date");
	assert_string_equal(refused("{\"id\":\"a\",\"kind\":\"birthday\",\"template\":\"t\","
	                            "\"offset_days\":400}"),
	                    "offset_days");
	assert_string_equal(refused("{\"id\":\"a\",\"kind\":\"birthday\",\"template\":\"t\","
	                            "\"offset_days\":1.5}"),
	                    "offset_days");
	assert_string_equal(refused("{\"id\":\"a\",\"kind\":\"birthday\",\"template\":\"t\","
	                            "\"channel\":\"fax\"}"),
	                    "channel");
	assert_string_equal(refused("{\"id\":\"a\",\"kind\":\"birthday\",\"template\":\"t\","
	                            "\"window\":\"20:00-02:00\"}"),
	                    "window");
	assert_string_equal(refused("{\"id\":\"a\",\"kind\":\"birthday\",\"template\":\"t\","
	                            "\"segment\":5}"),
	                    "segment");
	assert_string_equal(refused("{\"id\":\"a\",\"kind\":\"birthday\",\"template\":\"t\","
	                            "\"category\":\"spam\"}"),
	                    "category");
	assert_string_equal(refused("{\"id\":\"a\",\"kind\":\"birthday\",\"template\":\"t\","
	                            "\"enabled\":\"yes\"}"),
	                    "enabled");
	assert_string_equal(refused("{\"id\":\"a\",\"kind\":\"birthday\",\"template\":\"t\","
	                            "\"repeat\":\"once\"}"),
	                    "repeat");
	assert_string_equal(refused("{\"id\":\"a\",\"kind\":\"fixed_jalali\",\"date\":\"01-01\","
	                            "\"calendar\":\"jalali\",\"template\":\"t\"}"),
	                    "calendar");
	assert_string_equal(refused("{\"id\":\"a\",\"kind\":\"birthday\",\"template\":\"t\","
	                            "\"colour\":\"red\"}"),
	                    "colour");
	assert_string_equal(refused("[1]"), "");

	/* POST without an id: the caller adds it. */
	json_t *noid = json_pack("{s:s, s:s}", "kind", "birthday", "template", "t");
	const char *field;
	char reason[160];
	assert_int_equal(occ_rule_parse(noid, 0, &r, &field, reason, sizeof reason), 0);
	assert_string_equal(r->id, "");
	occ_rule_free(r);
	json_decref(noid);
	assert_true(occ_id_valid("nowruz-1404_a"));
	assert_false(occ_id_valid(""));
	assert_false(occ_id_valid("a b"));
}

/* ------------------------------------------------------------------ calendar */

static void test_day_arith(void **state)
{
	(void)state;
	assert_day(occ_day_add(day(2025, 12, 31), 1), 2026, 1, 1);
	assert_day(occ_day_add(day(2024, 2, 28), 1), 2024, 2, 29);
	assert_day(occ_day_add(day(2025, 2, 28), 1), 2025, 3, 1);
	assert_day(occ_day_add(day(2025, 3, 1), -1), 2025, 2, 28);
	assert_day(occ_day_add(day(2026, 1, 2), -3), 2025, 12, 30);
	assert_day(occ_day_add(day(2025, 1, 1), 365), 2026, 1, 1);
	struct occ_day d;
	assert_int_equal(occ_day_parse("2025-03-21", &d), 0);
	assert_day(d, 2025, 3, 21);
	assert_int_equal(occ_day_parse("2025-02-29", &d), -EINVAL);
	assert_int_equal(occ_day_parse("2024-02-29", &d), 0);
	assert_int_equal(occ_day_parse("2025-3-21", &d), -EINVAL);
	assert_int_equal(occ_day_parse("0999-01-01", &d), -EINVAL);
	assert_int_equal(occ_local_day("Asia/Tehran", utc(2025, 3, 20, 20, 29), &d), 0);
	assert_day(d, 2025, 3, 20);
	assert_int_equal(occ_local_day("Asia/Tehran", utc(2025, 3, 20, 20, 30), &d), 0);
	assert_day(d, 2025, 3, 21);
	assert_int_equal(occ_local_day("Nowhere/Land", 0, &d), -EINVAL);
}

/* Nowruz (1 Farvardin) and Yalda (30 Azar): the Gregorian day comes from
 * jalali.c for each year; a few are pinned to the published dates. */
static void test_nowruz_yalda(void **state)
{
	(void)state;
	struct occ_rule *nowruz = rule("{\"id\":\"nowruz\",\"kind\":\"fixed_jalali\","
	                               "\"date\":\"01-01\",\"template\":\"t\"}");
	struct occ_rule *yalda = rule("{\"id\":\"yalda\",\"kind\":\"fixed_jalali\","
	                              "\"date\":\"09-30\",\"template\":\"t\"}");
	assert_day(greg_of_jalali(1403, 1, 1), 2024, 3, 20);
	assert_day(greg_of_jalali(1404, 1, 1), 2025, 3, 21);
	assert_day(greg_of_jalali(1403, 9, 30), 2024, 12, 20);
	assert_day(greg_of_jalali(1404, 9, 30), 2025, 12, 21);
	const int years[] = {1403, 1404, 1450};
	for (size_t i = 0; i < ARRAY_SIZE(years); i++) {
		int jy = years[i];
		struct occ_hit h;
		struct occ_day n = greg_of_jalali(jy, 1, 1);
		assert_int_equal(occ_match(nowruz, NULL, n, &h), 1);
		assert_int_equal(h.year, jy);
		assert_int_equal(h.cal, CDATE_JALALI);
		assert_int_equal(h.jm, 1);
		assert_int_equal(h.jd, 1);
		assert_int_equal(h.years, -1);
		assert_day(h.date, n.y, n.m, n.d);
		assert_int_equal(occ_match(nowruz, NULL, occ_day_add(n, -1), &h), 0);
		assert_int_equal(occ_match(nowruz, NULL, occ_day_add(n, 1), &h), 0);
		struct occ_day y = greg_of_jalali(jy, 9, 30);
		assert_int_equal(occ_match(yalda, NULL, y, &h), 1);
		assert_int_equal(h.year, jy);
		assert_int_equal(h.jm, 9);
		assert_int_equal(h.jd, 30);
		assert_int_equal(occ_match(yalda, NULL, occ_day_add(y, 1), &h), 0);
		assert_int_equal(occ_match(yalda, NULL, occ_day_add(y, -1), &h), 0);
		/* Yalda is the last day of Azar: the next day is 1 Dey. */
		int jy2, jm2, jd2;
		struct occ_day after = occ_day_add(y, 1);
		assert_int_equal(jalali_from_gregorian(after.y, after.m, after.d, &jy2, &jm2, &jd2),
		                 0);
		assert_int_equal(jm2, 10);
		assert_int_equal(jd2, 1);
	}
	occ_rule_free(nowruz);
	occ_rule_free(yalda);
}

/* ------------------------------------------------------------------ zones */

/* Nowruz 1404 (21 March 2025) reaches Tehran (+03:30) 4.5 hours before
 * Berlin (+01:00 in March before the DST change). */
static void test_nowruz_per_zone(void **state)
{
	(void)state;
	struct occ_rule *r = rule("{\"id\":\"nowruz\",\"kind\":\"fixed_jalali\",\"date\":\"01-01\","
	                          "\"template\":\"t\",\"window\":\"09:00-12:00\"}");
	struct occ_decision d;
	/* 23:59 in Tehran on 20 March: not yet. */
	assert_int_equal(occ_decide(r, NULL, "Asia/Tehran", utc(2025, 3, 20, 20, 29), NULL, 0, &d),
	                 0);
	assert_int_equal(d.verdict, OCC_NOT_TODAY);
	/* 00:01 in Tehran: the day has come, the message is due at 09:00 local. */
	assert_int_equal(occ_decide(r, NULL, "Asia/Tehran", utc(2025, 3, 20, 20, 31), NULL, 0, &d),
	                 0);
	assert_int_equal(d.verdict, OCC_SEND);
	assert_day(d.day, 2025, 3, 21);
	assert_int_equal(d.hit.year, 1404);
	assert_true(d.due_ms == utc(2025, 3, 21, 5, 30));
	assert_true(d.win_end == utc(2025, 3, 21, 8, 30));
	assert_int_equal(d.late, 0);
	/* Meanwhile it is 21:31 on 20 March in Berlin. */
	assert_int_equal(
	    occ_decide(r, NULL, "Europe/Berlin", utc(2025, 3, 20, 20, 31), NULL, 0, &d), 0);
	assert_int_equal(d.verdict, OCC_NOT_TODAY);
	assert_day(d.day, 2025, 3, 20);
	/* 00:30 in Berlin: due at 09:00 CET = 08:00Z. */
	assert_int_equal(
	    occ_decide(r, NULL, "Europe/Berlin", utc(2025, 3, 20, 23, 30), NULL, 0, &d), 0);
	assert_int_equal(d.verdict, OCC_SEND);
	assert_int_equal(d.hit.year, 1404);
	assert_true(d.due_ms == utc(2025, 3, 21, 8, 0));
	/* Inside the window: due now. */
	int64_t now = utc(2025, 3, 21, 6, 0); /* 09:30 Tehran */
	assert_int_equal(occ_decide(r, NULL, "Asia/Tehran", now, NULL, 0, &d), 0);
	assert_int_equal(d.verdict, OCC_SEND);
	assert_true(d.due_ms == now);
	/* After the window: missed without grace, late inside the grace. */
	now = utc(2025, 3, 21, 8, 31); /* 12:01 Tehran */
	assert_int_equal(occ_decide(r, NULL, "Asia/Tehran", now, NULL, 0, &d), 0);
	assert_int_equal(d.verdict, OCC_MISSED);
	assert_int_equal(d.hit.year, 1404);
	assert_int_equal(occ_decide(r, NULL, "Asia/Tehran", now, NULL, HOUR_MS, &d), 0);
	assert_int_equal(d.verdict, OCC_SEND);
	assert_int_equal(d.late, 1);
	assert_true(d.due_ms == now);
	now = utc(2025, 3, 21, 9, 31); /* 13:01: past the hour of grace */
	assert_int_equal(occ_decide(r, NULL, "Asia/Tehran", now, NULL, HOUR_MS, &d), 0);
	assert_int_equal(d.verdict, OCC_MISSED);
	/* The grace never reaches into the next local day. */
	now = utc(2025, 3, 21, 20, 40); /* 00:10 on 22 March in Tehran */
	assert_int_equal(occ_decide(r, NULL, "Asia/Tehran", now, NULL, 24 * HOUR_MS, &d), 0);
	assert_int_equal(d.verdict, OCC_NOT_TODAY);
	/* An unknown zone is an error, not a guess. */
	assert_int_equal(occ_decide(r, NULL, "Mars/Olympus", now, NULL, 0, &d), -EINVAL);
	occ_rule_free(r);
}

/* The default window (config) applies when the rule has none; no default
 * at all is the whole local day. */
static void test_default_window(void **state)
{
	(void)state;
	struct occ_rule *r = rule("{\"id\":\"x\",\"kind\":\"fixed_gregorian\",\"date\":\"06-01\","
	                          "\"template\":\"t\"}");
	struct occ_window def;
	assert_int_equal(occ_window_parse("10:00-20:00", &def), 0);
	struct occ_decision d;
	int64_t now = utc(2026, 6, 1, 4, 0); /* 07:30 Tehran */
	assert_int_equal(occ_decide(r, NULL, "Asia/Tehran", now, &def, 0, &d), 0);
	assert_int_equal(d.verdict, OCC_SEND);
	assert_true(d.due_ms == utc(2026, 6, 1, 6, 30));
	assert_int_equal(occ_decide(r, NULL, "Asia/Tehran", now, NULL, 0, &d), 0);
	assert_true(d.due_ms == now);
	assert_true(d.win_start == utc(2026, 5, 31, 20, 30));
	assert_true(d.win_end == utc(2026, 6, 1, 20, 30));
	occ_rule_free(r);
}

/* Berlin: 29 March 2026 has 23 hours (02:00 CET -> 03:00 CEST), 25 October
 * 2026 has 25 (03:00 CEST -> 02:00 CET). */
static void test_berlin_dst(void **state)
{
	(void)state;
	struct occ_rule *r =
	    rule("{\"id\":\"spring\",\"kind\":\"fixed_gregorian\","
	         "\"date\":\"03-29\",\"template\":\"t\",\"window\":\"09:00-12:00\"}");
	struct occ_decision d;
	/* 00:30 CET on the 29th (23:30Z on the 28th): due 09:00 CEST = 07:00Z. */
	assert_int_equal(
	    occ_decide(r, NULL, "Europe/Berlin", utc(2026, 3, 28, 23, 30), NULL, 0, &d), 0);
	assert_int_equal(d.verdict, OCC_SEND);
	assert_true(d.due_ms == utc(2026, 3, 29, 7, 0));
	assert_true(d.win_end == utc(2026, 3, 29, 10, 0));
	assert_int_equal(d.hit.year, 2026);
	/* 22:59Z is 00:59 CEST on the 30th: over. */
	assert_int_equal(
	    occ_decide(r, NULL, "Europe/Berlin", utc(2026, 3, 29, 22, 59), NULL, 0, &d), 0);
	assert_int_equal(d.verdict, OCC_NOT_TODAY);
	/* 21:59Z is 23:59 CEST on the 29th: the send day, window long over. */
	assert_int_equal(
	    occ_decide(r, NULL, "Europe/Berlin", utc(2026, 3, 29, 21, 59), NULL, HOUR_MS, &d), 0);
	assert_int_equal(d.verdict, OCC_MISSED);

	/* The whole day: 23 hours in spring, 25 in autumn. */
	int64_t s, e;
	assert_int_equal(occ_window_bounds(NULL, NULL, "Europe/Berlin", day(2026, 3, 29), &s, &e),
	                 0);
	assert_true(s == utc(2026, 3, 28, 23, 0));
	assert_true(e - s == 23 * HOUR_MS);
	assert_int_equal(occ_window_bounds(NULL, NULL, "Europe/Berlin", day(2026, 10, 25), &s, &e),
	                 0);
	assert_true(s == utc(2026, 10, 24, 22, 0));
	assert_true(e - s == 25 * HOUR_MS);
	/* A window starting in the spring gap opens at 03:00 CEST. */
	struct occ_window w;
	assert_int_equal(occ_window_parse("02:30-03:30", &w), 0);
	assert_int_equal(occ_window_bounds(&w, NULL, "Europe/Berlin", day(2026, 3, 29), &s, &e), 0);
	assert_true(s == utc(2026, 3, 29, 1, 0));
	assert_true(e == utc(2026, 3, 29, 1, 30));
	/* A window in the repeated autumn hour starts at its first pass. */
	assert_int_equal(occ_window_parse("02:00-03:00", &w), 0);
	assert_int_equal(occ_window_bounds(&w, NULL, "Europe/Berlin", day(2026, 10, 25), &s, &e),
	                 0);
	assert_true(s == utc(2026, 10, 25, 0, 0));
	assert_true(e == utc(2026, 10, 25, 2, 0));
	occ_rule_free(r);

	/* Autumn send day, 09:00 CET = 08:00Z. */
	r = rule("{\"id\":\"autumn\",\"kind\":\"fixed_gregorian\",\"date\":\"10-25\","
	         "\"template\":\"t\",\"window\":\"09:00-12:00\"}");
	assert_int_equal(
	    occ_decide(r, NULL, "Europe/Berlin", utc(2026, 10, 24, 22, 30), NULL, 0, &d), 0);
	assert_int_equal(d.verdict, OCC_SEND);
	assert_true(d.due_ms == utc(2026, 10, 25, 8, 0));
	occ_rule_free(r);

	/* Tehran keeps +03:30 all year (no DST since 2022). */
	r = rule("{\"id\":\"t\",\"kind\":\"fixed_gregorian\",\"date\":\"09-22\",\"template\":\"t\","
	         "\"window\":\"09:00-12:00\"}");
	assert_int_equal(occ_decide(r, NULL, "Asia/Tehran", utc(2026, 9, 21, 21, 0), NULL, 0, &d),
	                 0);
	assert_int_equal(d.verdict, OCC_SEND);
	assert_true(d.due_ms == utc(2026, 9, 22, 5, 30));
	occ_rule_free(r);
}

/* ------------------------------------------------------------------ offsets */

static void test_offsets(void **state)
{
	(void)state;
	struct occ_hit h;
	/* Three days before 1 January: 29 December of the year before, with the
	 * year key of the occurrence. */
	struct occ_rule *r = rule("{\"id\":\"ny\",\"kind\":\"fixed_gregorian\",\"date\":\"01-01\","
	                          "\"offset_days\":-3,\"template\":\"t\"}");
	assert_int_equal(occ_match(r, NULL, day(2025, 12, 29), &h), 1);
	assert_int_equal(h.year, 2026);
	assert_day(h.date, 2026, 1, 1);
	assert_int_equal(occ_match(r, NULL, day(2026, 1, 1), &h), 0);
	assert_int_equal(occ_match(r, NULL, day(2025, 12, 28), &h), 0);
	occ_rule_free(r);

	/* The day before Nowruz 1404 is 30 Esfand 1403 (leap): key 1404. */
	r = rule("{\"id\":\"eve\",\"kind\":\"fixed_jalali\",\"date\":\"01-01\",\"offset_days\":-1,"
	         "\"template\":\"t\"}");
	assert_int_equal(occ_match(r, NULL, day(2025, 3, 20), &h), 1);
	assert_int_equal(h.year, 1404);
	assert_day(h.date, 2025, 3, 21);
	assert_int_equal(occ_match(r, NULL, day(2026, 3, 20), &h), 1); /* 29 Esfand 1404 */
	assert_int_equal(h.year, 1405);
	occ_rule_free(r);

	/* Two days after 31 December: 2 January, still the old year's key. */
	r = rule("{\"id\":\"late\",\"kind\":\"birthday\",\"offset_days\":2,\"template\":\"t\"}");
	struct cdate b = cd("1980-12-31");
	assert_int_equal(occ_match(r, &b, day(2026, 1, 2), &h), 1);
	assert_int_equal(h.year, 2025);
	assert_int_equal(h.years, 45);
	assert_int_equal(occ_match(r, &b, day(2025, 12, 31), &h), 0);
	occ_rule_free(r);

	/* The day before 1 March is 29 February in leap years. */
	r = rule("{\"id\":\"m\",\"kind\":\"birthday\",\"offset_days\":-1,\"template\":\"t\"}");
	b = cd("1990-03-01");
	assert_int_equal(occ_match(r, &b, day(2024, 2, 29), &h), 1);
	assert_int_equal(occ_match(r, &b, day(2024, 2, 28), &h), 0);
	assert_int_equal(occ_match(r, &b, day(2025, 2, 28), &h), 1);
	assert_int_equal(h.year, 2025);
	occ_rule_free(r);

	/* A week before the end of Esfand, across the Jalali month boundary. */
	r = rule("{\"id\":\"w\",\"kind\":\"birthday\",\"offset_days\":-7,\"template\":\"t\"}");
	b = cd("j:1370-01-03");
	struct occ_day send = occ_day_add(greg_of_jalali(1404, 1, 3), -7);
	assert_int_equal(occ_match(r, &b, send, &h), 1);
	assert_int_equal(h.year, 1404);
	assert_int_equal(h.years, 34);
	int jy, jm, jd;
	assert_int_equal(jalali_from_gregorian(send.y, send.m, send.d, &jy, &jm, &jd), 0);
	assert_int_equal(jy, 1403);
	assert_int_equal(jm, 12);
	occ_rule_free(r);
}

/* ------------------------------------------------------------------ leap days */

static void test_feb29_common_year(void **state)
{
	(void)state;
	struct occ_rule *r = rule("{\"id\":\"bd\",\"kind\":\"birthday\",\"template\":\"t\"}");
	struct occ_hit h;
	struct cdate b = cd("1996-02-29");
	assert_int_equal(occ_match(r, &b, day(2025, 2, 28), &h), 1);
	assert_int_equal(h.year, 2025);
	assert_int_equal(h.years, 29);
	assert_int_equal(occ_match(r, &b, day(2025, 3, 1), &h), 0);
	assert_int_equal(occ_match(r, &b, day(2024, 2, 29), &h), 1);
	assert_int_equal(h.years, 28);
	assert_int_equal(occ_match(r, &b, day(2024, 2, 28), &h), 0);
	assert_int_equal(occ_match(r, &b, day(2100, 2, 28), &h), 1); /* 2100 is common */
	b = cd("--02-29");
	assert_int_equal(occ_match(r, &b, day(2026, 2, 28), &h), 1);
	assert_int_equal(h.years, -1);
	occ_rule_free(r);
	r = rule("{\"id\":\"f29\",\"kind\":\"fixed_gregorian\",\"date\":\"02-29\","
	         "\"template\":\"t\"}");
	assert_int_equal(occ_match(r, NULL, day(2027, 2, 28), &h), 1);
	assert_int_equal(occ_match(r, NULL, day(2028, 2, 28), &h), 0);
	assert_int_equal(occ_match(r, NULL, day(2028, 2, 29), &h), 1);
	occ_rule_free(r);
}

static void test_esfand30_common_year(void **state)
{
	(void)state;
	assert_int_equal(jalali_is_leap(1403), 1);
	assert_int_equal(jalali_is_leap(1404), 0);
	assert_int_equal(jalali_is_leap(1370), 1);
	struct occ_rule *r = rule("{\"id\":\"bd\",\"kind\":\"birthday\",\"template\":\"t\"}");
	struct occ_hit h;
	struct cdate b = cd("j:1370-12-30");
	/* 1404 has no Esfand 30: the birthday falls on Esfand 29 1404. */
	struct occ_day e29 = greg_of_jalali(1404, 12, 29);
	assert_day(e29, 2026, 3, 20);
	assert_int_equal(occ_match(r, &b, e29, &h), 1);
	assert_int_equal(h.year, 1404);
	assert_int_equal(h.cal, CDATE_JALALI);
	assert_int_equal(h.years, 34);
	assert_int_equal(h.jd, 29);
	assert_int_equal(occ_match(r, &b, occ_day_add(e29, -1), &h), 0);
	assert_int_equal(occ_match(r, &b, occ_day_add(e29, 1), &h), 0); /* Nowruz 1405 */
	/* 1403 has it. */
	struct occ_day e30 = greg_of_jalali(1403, 12, 30);
	assert_day(e30, 2025, 3, 20);
	assert_int_equal(occ_match(r, &b, e30, &h), 1);
	assert_int_equal(h.year, 1403);
	assert_int_equal(occ_match(r, &b, occ_day_add(e30, -1), &h), 0);
	occ_rule_free(r);
	r = rule(
	    "{\"id\":\"e30\",\"kind\":\"fixed_jalali\",\"date\":\"12-30\",\"template\":\"t\"}");
	assert_int_equal(occ_match(r, NULL, e29, &h), 1);
	assert_int_equal(occ_match(r, NULL, e30, &h), 1);
	assert_int_equal(occ_match(r, NULL, occ_day_add(e30, -1), &h), 0);
	occ_rule_free(r);
}

/* ------------------------------------------------------------------ contact dates */

static void test_jalali_birthday(void **state)
{
	(void)state;
	struct occ_rule *r = rule("{\"id\":\"bd\",\"kind\":\"birthday\",\"template\":\"t\"}");
	struct occ_hit h;
	struct cdate b = cd("j:1369-02-27");
	struct occ_day d1404 = greg_of_jalali(1404, 2, 27);
	struct occ_day d1403 = greg_of_jalali(1403, 2, 27);
	assert_day(d1404, 2025, 5, 17);
	assert_day(d1403, 2024, 5, 16);
	assert_int_equal(occ_match(r, &b, d1404, &h), 1);
	assert_int_equal(h.year, 1404);
	assert_int_equal(h.years, 35);
	assert_int_equal(occ_match(r, &b, d1403, &h), 1);
	assert_int_equal(h.year, 1403);
	assert_int_equal(occ_match(r, &b, day(2024, 5, 17), &h), 0);
	/* Never on the day of birth itself, nor before it. */
	struct occ_day born = greg_of_jalali(1369, 2, 27);
	assert_int_equal(occ_match(r, &b, born, &h), 0);
	occ_rule_free(r);

	/* The same person stored in Gregorian: the Gregorian day each year,
	 * unless the rule asks for the Jalali calendar. */
	b = cd("1990-05-17");
	r = rule("{\"id\":\"bd\",\"kind\":\"birthday\",\"template\":\"t\"}");
	assert_int_equal(occ_match(r, &b, day(2024, 5, 17), &h), 1);
	assert_int_equal(h.year, 2024);
	assert_int_equal(h.cal, CDATE_GREGORIAN);
	assert_int_equal(occ_match(r, &b, d1403, &h), 0);
	occ_rule_free(r);
	r = rule(
	    "{\"id\":\"bdj\",\"kind\":\"birthday\",\"calendar\":\"jalali\",\"template\":\"t\"}");
	assert_int_equal(occ_match(r, &b, d1403, &h), 1);
	assert_int_equal(h.year, 1403);
	assert_int_equal(h.cal, CDATE_JALALI);
	assert_int_equal(h.years, 34);
	assert_int_equal(occ_match(r, &b, day(2024, 5, 17), &h), 0);
	/* A Jalali birthday without the year cannot be converted: stays Jalali. */
	struct cdate nb = cd("j:--02-27");
	occ_rule_free(r);
	r = rule(
	    "{\"id\":\"bdg\",\"kind\":\"birthday\",\"calendar\":\"gregorian\",\"template\":\"t\"}");
	assert_int_equal(occ_match(r, &nb, d1404, &h), 1);
	assert_int_equal(h.year, 1404);
	occ_rule_free(r);

	/* In Tehran at 00:10 local on the birthday, due at the window start. */
	r = rule("{\"id\":\"bd\",\"kind\":\"birthday\",\"template\":\"t\",\"window\":\"10:00-"
	         "13:00\"}");
	b = cd("j:1369-02-27");
	struct occ_decision d;
	assert_int_equal(occ_decide(r, &b, "Asia/Tehran", utc(2025, 5, 16, 20, 40), NULL, 0, &d),
	                 0);
	assert_int_equal(d.verdict, OCC_SEND);
	assert_int_equal(d.hit.year, 1404);
	assert_true(d.due_ms == utc(2025, 5, 17, 6, 30));
	occ_rule_free(r);
}

static void test_anniversary_and_attrs(void **state)
{
	(void)state;
	struct occ_rule *r = rule("{\"id\":\"ann\",\"kind\":\"anniversary\",\"template\":\"t\"}");
	struct cdate c;
	/* Joined at 22:00Z on 1 Jan 2020: already 2 January in Tehran. */
	int64_t created = utc(2020, 1, 1, 22, 0);
	assert_int_equal(occ_contact_date(r, NULL, created, "Asia/Tehran", &c), 0);
	assert_int_equal(c.cal, CDATE_GREGORIAN);
	assert_int_equal(c.y, 2020);
	assert_int_equal(c.m, 1);
	assert_int_equal(c.d, 2);
	assert_int_equal(occ_contact_date(r, NULL, created, "Europe/Berlin", &c), 0);
	assert_int_equal(c.d, 1);
	struct occ_hit h;
	assert_int_equal(occ_match(r, &c, day(2026, 1, 1), &h), 1);
	assert_int_equal(h.years, 6);
	/* Joined today: no anniversary yet. */
	assert_int_equal(occ_match(r, &c, day(2020, 1, 1), &h), 0);
	/* x:joined wins over created. */
	assert_int_equal(occ_contact_date(r, "\"j:1400-01-15\"", created, "Asia/Tehran", &c), 0);
	assert_int_equal(c.cal, CDATE_JALALI);
	assert_int_equal(c.y, 1400);
	assert_int_equal(occ_match(r, &c, greg_of_jalali(1404, 1, 15), &h), 1);
	assert_int_equal(h.years, 4);
	assert_int_equal(occ_contact_date(r, "null", created, "Asia/Tehran", &c), 0);
	assert_int_equal(c.y, 2020);
	assert_int_equal(occ_contact_date(r, NULL, 0, "Asia/Tehran", &c), -ENOENT);
	occ_rule_free(r);

	r = rule("{\"id\":\"bd\",\"kind\":\"birthday\",\"template\":\"t\"}");
	assert_int_equal(occ_contact_date(r, NULL, created, "Asia/Tehran", &c), -ENOENT);
	assert_int_equal(occ_contact_date(r, "\"1990-05-17\"", 0, "Asia/Tehran", &c), 0);
	assert_int_equal(c.y, 1990);
	assert_int_equal(occ_contact_date(r, "\"--05-17\"", 0, "Asia/Tehran", &c), 0);
	assert_int_equal(c.y, 0);
	assert_int_equal(occ_contact_date(r, "\"2020-01-01T21:00:00Z\"", 0, "Asia/Tehran", &c), 0);
	assert_int_equal(c.d, 2);
	assert_int_equal(occ_contact_date(r, "1577912400000", 0, "Asia/Tehran", &c), 0);
	assert_int_equal(c.y, 2020);
	assert_int_equal(c.m, 1);
	assert_int_equal(c.d, 2);
	assert_int_equal(occ_contact_date(r, "1990-05-17", 0, "Asia/Tehran", &c), 0); /* not JSON */
	assert_int_equal(occ_contact_date(r, "\"soon\"", 0, "Asia/Tehran", &c), -EINVAL);
	assert_int_equal(occ_contact_date(r, "\"1990-02-30\"", 0, "Asia/Tehran", &c), -EINVAL);
	assert_int_equal(occ_contact_date(r, "true", 0, "Asia/Tehran", &c), -EINVAL);
	assert_int_equal(occ_contact_date(r, "-5", 0, "Asia/Tehran", &c), -EINVAL);
	occ_rule_free(r);

	/* A date attribute: yearly, or once (the date's own year only). */
	r = rule("{\"id\":\"c\",\"kind\":\"date_attr\",\"attr\":\"renewal\",\"offset_days\":-7,"
	         "\"template\":\"t\"}");
	c = cd("2026-12-01");
	assert_int_equal(occ_match(r, &c, day(2026, 11, 24), &h), 1);
	assert_int_equal(h.years, 0);
	assert_int_equal(occ_match(r, &c, day(2027, 11, 24), &h), 1);
	assert_int_equal(h.years, 1);
	assert_int_equal(occ_match(r, &c, day(2025, 11, 24), &h), 0);
	occ_rule_free(r);
	r = rule("{\"id\":\"c\",\"kind\":\"date_attr\",\"attr\":\"renewal\",\"offset_days\":-7,"
	         "\"repeat\":\"once\",\"template\":\"t\"}");
	assert_int_equal(occ_match(r, &c, day(2026, 11, 24), &h), 1);
	assert_int_equal(occ_match(r, &c, day(2027, 11, 24), &h), 0);
	c = cd("--12-01");
	assert_int_equal(occ_match(r, &c, day(2026, 11, 24), &h), 0);
	occ_rule_free(r);
}

static void test_may_fire_and_key(void **state)
{
	(void)state;
	struct occ_rule *r = rule("{\"id\":\"nowruz\",\"kind\":\"fixed_jalali\",\"date\":\"01-01\","
	                          "\"template\":\"t\"}");
	assert_int_equal(occ_may_fire(r, utc(2025, 3, 21, 12, 0)), 1);
	assert_int_equal(occ_may_fire(r, utc(2025, 3, 20, 12, 0)), 1); /* east of UTC */
	assert_int_equal(occ_may_fire(r, utc(2025, 3, 22, 6, 0)), 1);  /* west of UTC */
	assert_int_equal(occ_may_fire(r, utc(2025, 3, 19, 12, 0)), 0);
	assert_int_equal(occ_may_fire(r, utc(2025, 3, 23, 0, 0)), 0);
	assert_int_equal(occ_may_fire(r, utc(2025, 7, 1, 0, 0)), 0);
	occ_rule_free(r);
	r = rule("{\"id\":\"bd\",\"kind\":\"birthday\",\"template\":\"t\"}");
	assert_int_equal(occ_may_fire(r, utc(2025, 7, 1, 0, 0)), 1);
	occ_rule_free(r);
	char k[128];
	occ_idem_key("nowruz", "01J0000000000000000000000A", 1404, k, sizeof k);
	assert_string_equal(k, "occ:nowruz:01J0000000000000000000000A:1404");
}

/* The evaluator's view from raw hash fields. */
static void test_evaluate(void **state)
{
	(void)state;
	struct occ_rule *r = rule("{\"id\":\"bd\",\"kind\":\"birthday\",\"template\":\"t\","
	                          "\"window\":\"10:00-12:00\"}");
	struct occ_decision d;
	const char *zone = NULL;
	int64_t now = utc(2025, 5, 17, 4, 0); /* 07:30 in Tehran, 06:00 in Berlin */
	/* No tz, or an unknown one: the default zone. */
	assert_int_equal(occ_evaluate(r, NULL, "0", "\"j:1369-02-27\"", "Asia/Tehran", now, NULL,
	                              NULL, 0, &d, &zone),
	                 0);
	assert_string_equal(zone, "Asia/Tehran");
	assert_int_equal(d.verdict, OCC_SEND);
	assert_true(d.due_ms == utc(2025, 5, 17, 6, 30));
	assert_int_equal(occ_evaluate(r, "Mars/Base", NULL, "\"1990-05-17\"", "Europe/Berlin", now,
	                              NULL, NULL, 0, &d, &zone),
	                 0);
	assert_string_equal(zone, "Europe/Berlin");
	assert_true(d.due_ms == utc(2025, 5, 17, 8, 0));
	assert_int_equal(occ_evaluate(r, "", NULL, "\"1990-05-18\"", "Europe/Berlin", now, NULL,
	                              NULL, 0, &d, &zone),
	                 0);
	assert_int_equal(d.verdict, OCC_NOT_TODAY);
	/* A given day: matched on it, due at its window start whatever now is. */
	struct occ_day on = day(2026, 5, 17);
	assert_int_equal(occ_evaluate(r, "Asia/Tehran", NULL, "\"1990-05-17\"", "UTC", now, &on,
	                              NULL, 0, &d, &zone),
	                 0);
	assert_int_equal(d.verdict, OCC_SEND);
	assert_int_equal(d.hit.year, 2026);
	assert_int_equal(d.hit.years, 36);
	assert_true(d.due_ms == utc(2026, 5, 17, 6, 30));
	on = day(2026, 5, 18);
	assert_int_equal(occ_evaluate(r, "Asia/Tehran", NULL, "\"1990-05-17\"", "UTC", now, &on,
	                              NULL, 0, &d, &zone),
	                 0);
	assert_int_equal(d.verdict, OCC_NOT_TODAY);
	assert_int_equal(
	    occ_evaluate(r, "Asia/Tehran", NULL, NULL, "UTC", now, NULL, NULL, 0, &d, &zone),
	    -ENOENT);
	assert_int_equal(
	    occ_evaluate(r, "Asia/Tehran", NULL, "\"later\"", "UTC", now, NULL, NULL, 0, &d, &zone),
	    -EINVAL);
	occ_rule_free(r);
	/* Anniversary from "created" (ms as text); fixed rules read no field. */
	r = rule("{\"id\":\"a\",\"kind\":\"anniversary\",\"template\":\"t\"}");
	char created[32];
	snprintf(created, sizeof created, "%lld", (long long)utc(2020, 5, 16, 21, 0));
	assert_int_equal(
	    occ_evaluate(r, "Asia/Tehran", created, NULL, "UTC", now, NULL, NULL, 0, &d, &zone), 0);
	assert_int_equal(d.verdict, OCC_SEND); /* joined 17 May 2020, Tehran time */
	assert_int_equal(d.hit.years, 5);
	char f[80];
	occ_rule_field(r, f, sizeof f);
	assert_string_equal(f, "x:joined");
	occ_rule_free(r);
	r = rule("{\"id\":\"n\",\"kind\":\"fixed_jalali\",\"date\":\"01-01\",\"template\":\"t\"}");
	occ_rule_field(r, f, sizeof f);
	assert_string_equal(f, "");
	on = day(2025, 3, 21);
	assert_int_equal(
	    occ_evaluate(r, NULL, NULL, NULL, "Asia/Tehran", now, &on, NULL, 0, &d, &zone), 0);
	assert_int_equal(d.verdict, OCC_SEND);
	assert_int_equal(d.hit.year, 1404);
	occ_rule_free(r);
}

static int teardown(void **state)
{
	(void)state;
	tz_cleanup();
	jalali_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_window_parse),      cmocka_unit_test(test_rule_parse),
	    cmocka_unit_test(test_day_arith),         cmocka_unit_test(test_nowruz_yalda),
	    cmocka_unit_test(test_nowruz_per_zone),   cmocka_unit_test(test_default_window),
	    cmocka_unit_test(test_berlin_dst),        cmocka_unit_test(test_offsets),
	    cmocka_unit_test(test_feb29_common_year), cmocka_unit_test(test_esfand30_common_year),
	    cmocka_unit_test(test_jalali_birthday),   cmocka_unit_test(test_anniversary_and_attrs),
	    cmocka_unit_test(test_may_fire_and_key),  cmocka_unit_test(test_evaluate),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
