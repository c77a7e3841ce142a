/*
 * test_campaign.c - campaign.c: definition validation (field names in
 * errors), the lifecycle table, money parsing and formatting, stable arm
 * assignment with the control group's share, and the next run of a
 * recurring campaign across time zones and DST.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "campaign.h"
#include "store.h"
#include "tz.h"

static json_t *J(const char *s)
{
	json_t *j = json_loads(s, 0, NULL);
	assert_non_null(j);
	return j;
}

static void expect_bad(const char *def, const char *want_field)
{
	json_t *j = J(def);
	struct campaign c;
	const char *f = NULL, *r = NULL;
	assert_int_equal(camp_parse(j, &c, &f, &r), -EINVAL);
	assert_non_null(r);
	if (strcmp(f, want_field) != 0)
		fail_msg("%s: field %s, want %s (%s)", def, f, want_field, r);
	json_decref(j);
}

static void test_parse(void **state)
{
	(void)state;
	json_t *j = J("{\"name\":\"یلدا\",\"segment\":\"vip\",\"channel\":\"sms\","
	              "\"variants\":[{\"name\":\"A\",\"template\":\"t1\",\"weight\":3},"
	              "{\"name\":\"B\",\"template\":\"t2\"}],\"control_percent\":10,"
	              "\"budget\":\"1250.5\",\"currency\":\"IRR\",\"rate_limit\":50,"
	              "\"attribution_window\":\"3d\"}");
	struct campaign c;
	const char *f, *r;
	assert_int_equal(camp_parse(j, &c, &f, &r), 0);
	assert_int_equal(c.nvar, 2);
	assert_int_equal(c.var[0].weight, 3);
	assert_int_equal(c.var[1].weight, 1);
	assert_int_equal(c.budget_c, 125050);
	assert_int_equal(c.attribution_ms, 3 * 86400000LL);
	assert_string_equal(c.category, "promotional");
	camp_release(&c);
	json_decref(j);

	expect_bad("{\"segment\":\"s\",\"template\":\"t\"}", "name");
	expect_bad("{\"name\":\"x\",\"template\":\"t\"}", "segment");
	expect_bad("{\"name\":\"x\",\"segment\":\"s\"}", "template");
	expect_bad("{\"name\":\"a\\r\\nb\",\"segment\":\"s\",\"template\":\"t\"}", "name");
	expect_bad("{\"name\":\"x\",\"segment\":\"s\",\"template\":\"t\",\"channel\":\"fax\"}",
	           "channel");
	expect_bad("{\"name\":\"x\",\"segment\":\"s\",\"template\":\"t\",\"category\":\"spam\"}",
	           "category");
	expect_bad("{\"name\":\"x\",\"segment\":\"s\",\"template\":\"t\",\"control_percent\":51}",
	           "control_percent");
	expect_bad("{\"name\":\"x\",\"segment\":\"s\",\"template\":\"t\",\"budget\":\"1.234\","
	           "\"currency\":\"IRR\"}",
	           "budget");
	expect_bad("{\"name\":\"x\",\"segment\":\"s\",\"template\":\"t\",\"budget\":\"10\"}",
	           "currency");
	expect_bad("{\"name\":\"x\",\"segment\":\"s\",\"variants\":[{\"name\":\"control\","
	           "\"template\":\"t\"}]}",
	           "variants[].name");
	expect_bad("{\"name\":\"x\",\"segment\":\"s\",\"variants\":[{\"name\":\"A\",\"template\":"
	           "\"t\"},{\"name\":\"A\",\"template\":\"u\"}]}",
	           "variants[].name");
	expect_bad("{\"name\":\"x\",\"segment\":\"s\",\"template\":\"t\",\"schedule\":{\"at\":"
	           "\"tomorrow\"}}",
	           "schedule.at");
	expect_bad("{\"name\":\"x\",\"segment\":\"s\",\"template\":\"t\",\"schedule\":{\"every\":"
	           "\"week\",\"at\":\"10:00\"}}",
	           "schedule.days");
	expect_bad("{\"name\":\"x\",\"segment\":\"s\",\"template\":\"t\",\"schedule\":{\"every\":"
	           "\"day\",\"at\":\"10:00\",\"zone\":\"Mars/Olympus\"}}",
	           "schedule.zone");
	expect_bad("{\"name\":\"x\",\"segment\":\"s\",\"template\":\"t\",\"bogus\":1}", "bogus");
}

static void test_money(void **state)
{
	(void)state;
	int64_t c;
	json_t *v = json_string("12.5");
	assert_int_equal(money_parse(v, &c), 0);
	assert_int_equal(c, 1250);
	json_decref(v);
	v = json_integer(5000000);
	assert_int_equal(money_parse(v, &c), 0);
	assert_int_equal(c, 500000000);
	json_decref(v);
	const char *bad[] = {"", "0", "-1", "1.", ".5", "1.234", "1e5", "12a", "99999999999999"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		v = json_string(bad[i]);
		assert_int_equal(money_parse(v, &c), -EINVAL);
		json_decref(v);
	}
	char out[32];
	money_format(125050, out, sizeof out);
	assert_string_equal(out, "1250.50");
	money_format(-5, out, sizeof out);
	assert_string_equal(out, "-0.05");
}

static void test_transitions(void **state)
{
	(void)state;
	assert_true(camp_transition_allowed(CAMP_DRAFT, CAMP_RUNNING));
	assert_true(camp_transition_allowed(CAMP_RUNNING, CAMP_PAUSED));
	assert_true(camp_transition_allowed(CAMP_PAUSED, CAMP_RUNNING));
	assert_false(camp_transition_allowed(CAMP_COMPLETED, CAMP_RUNNING));
	assert_false(camp_transition_allowed(CAMP_CANCELLED, CAMP_RUNNING));
	assert_false(camp_transition_allowed(CAMP_DRAFT, CAMP_PAUSED));
	assert_int_equal(camp_state_parse("paused"), CAMP_PAUSED);
	assert_int_equal(camp_state_parse("nope"), -1);
}

static void test_assign(void **state)
{
	(void)state;
	json_t *j = J("{\"name\":\"x\",\"segment\":\"s\",\"variants\":[{\"name\":\"A\",\"template\""
	              ":\"a\",\"weight\":3},{\"name\":\"B\",\"template\":\"b\"}],"
	              "\"control_percent\":20}");
	struct campaign c;
	const char *f, *r;
	assert_int_equal(camp_parse(j, &c, &f, &r), 0);
	int n[3] = {0, 0, 0};
	char id[32];
	for (int i = 0; i < 20000; i++) {
		snprintf(id, sizeof id, "01C%023d", i);
		int a = camp_assign(&c, "seed-1", id);
		assert_int_equal(a, camp_assign(&c, "seed-1", id)); /* stable */
		n[a + 1]++;
	}
	/* control 20% of 20000 = 4000; A 3/4 of the rest = 12000; B 4000 */
	assert_in_range(n[0], 3700, 4300);
	assert_in_range(n[1], 11600, 12400);
	assert_in_range(n[2], 3700, 4300);
	int differ = 0;
	for (int i = 0; i < 200; i++) {
		snprintf(id, sizeof id, "01C%023d", i);
		differ += camp_assign(&c, "seed-1", id) != camp_assign(&c, "seed-2", id);
	}
	assert_true(differ > 20); /* another campaign splits differently */
	camp_release(&c);
	json_decref(j);
}

static int64_t at(const char *s)
{
	int64_t ms;
	assert_int_equal(parse_time(s, &ms), 0);
	return ms;
}

static void test_next_run(void **state)
{
	(void)state;
	json_t *j = J("{\"name\":\"x\",\"segment\":\"s\",\"template\":\"t\",\"schedule\":{"
	              "\"every\":\"week\",\"days\":[\"sat\",\"wed\"],\"at\":\"10:00\","
	              "\"zone\":\"Asia/Tehran\",\"count\":3}}");
	struct campaign c;
	const char *f, *r;
	assert_int_equal(camp_parse(j, &c, &f, &r), 0);
	/* Monday 2026-11-23 12:00 UTC -> Wednesday 25th 10:00 Tehran = 06:30 UTC */
	assert_int_equal(camp_next_run(&c, at("2026-11-23T12:00:00Z"), 0),
	                 at("2026-11-25T06:30:00Z"));
	/* exactly at a run: the next one (Saturday 28th) */
	assert_int_equal(camp_next_run(&c, at("2026-11-25T06:30:00Z"), 1),
	                 at("2026-11-28T06:30:00Z"));
	assert_int_equal(camp_next_run(&c, at("2026-11-25T06:30:00Z"), 3), 0); /* count */
	camp_release(&c);
	json_decref(j);

	/* daily 02:30 in Berlin across the spring-forward night (2027-03-28,
	 * 02:00 -> 03:00): 02:30 does not exist that day; the run moves into
	 * the first instant after the gap, never skips the day. */
	j = J("{\"name\":\"x\",\"segment\":\"s\",\"template\":\"t\",\"schedule\":{"
	      "\"every\":\"day\",\"at\":\"02:30\",\"zone\":\"Europe/Berlin\","
	      "\"until\":\"2027-03-30T00:00:00Z\"}}");
	assert_int_equal(camp_parse(j, &c, &f, &r), 0);
	assert_int_equal(camp_next_run(&c, at("2027-03-26T12:00:00Z"), 0),
	                 at("2027-03-27T01:30:00Z")); /* CET, +1 */
	int64_t gap = camp_next_run(&c, at("2027-03-27T12:00:00Z"), 1);
	assert_true(gap >= at("2027-03-28T01:00:00Z") && gap <= at("2027-03-28T01:30:00Z"));
	assert_int_equal(camp_next_run(&c, at("2027-03-28T12:00:00Z"), 2),
	                 at("2027-03-29T00:30:00Z"));                          /* CEST, +2 */
	assert_int_equal(camp_next_run(&c, at("2027-03-29T12:00:00Z"), 3), 0); /* until */
	camp_release(&c);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),       cmocka_unit_test(test_money),
	    cmocka_unit_test(test_transitions), cmocka_unit_test(test_assign),
	    cmocka_unit_test(test_next_run),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	tz_cleanup();
	return rc;
}
