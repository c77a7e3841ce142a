/*
 * test_points.c - the club's pure rules: points earned by a purchase, the
 * tier ladder (parsing, canonical form, lookup, and agreement with the
 * [points] tiers check of config_load), the lot model of the ledger (FIFO
 * expiry, spending the first to expire first, refusing a short balance),
 * money, type and currency input rules, and referral codes (alphabet,
 * normalisation of typed codes, unbiased generation).  No clock, no
 * Redis: lua/points_ledger.lua applies the same rules and
 * tests/integration/test_loyalty.py drives it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "club/events.h"
#include "club/points.h"
#include "club/referral.h"
#include "config.h"
#include "util.h"

#define DAY_MS (86400LL * 1000)

/* ---- earning ------------------------------------------------------------ */

static void test_earn(void **state)
{
	(void)state;
	/* 1 point per 10000 units: 125000 IRR (12500000 hundredths) -> 12 */
	assert_int_equal(points_earn(12500000, 1, 10000), 12);
	assert_int_equal(points_earn(999999, 1, 10000), 0); /* 9999.99 units */
	assert_int_equal(points_earn(1000000, 1, 10000), 1);
	assert_int_equal(points_earn(1000000, 5, 10000), 5);
	assert_int_equal(points_earn(1250, 2, 1), 24); /* 12.50 -> 12 whole units */
	assert_int_equal(points_earn(1250, 0, 1), 0);  /* off */
	assert_int_equal(points_earn(1250, 1, 0), 0);
	assert_int_equal(points_earn(0, 1, 1), 0);
	assert_int_equal(points_earn(-100, 1, 1), 0);
	/* the largest amount with the largest configurable rate is exact;
	 * beyond, the result saturates instead of overflowing */
	assert_int_equal(points_earn(EVENTS_AMOUNT_MAX_C, 1000000, 1),
	                 INT64_C(1000000000000) * 1000000);
	assert_int_equal(points_earn(EVENTS_AMOUNT_MAX_C, POINTS_MAX, 1), INT64_MAX);
	assert_int_equal(points_earn(EVENTS_AMOUNT_MAX_C, 1, 1000000000), 1000);
}

static void test_expiry(void **state)
{
	(void)state;
	assert_int_equal(points_expiry(1000, 0), POINTS_NEVER);
	assert_int_equal(points_expiry(1000, -5), POINTS_NEVER);
	assert_int_equal(points_expiry(1000, 365 * DAY_MS), 1000 + 365 * DAY_MS);
	assert_int_equal(points_expiry(POINTS_NEVER - 10, 100), POINTS_NEVER);
}

/* ---- tiers -------------------------------------------------------------- */

static void tiers_ok(const char *s, const char *canonical)
{
	struct points_tiers t;
	char why[128] = "", out[EVENTS_TIERS_TEXT];
	if (points_tiers_parse(s, &t, why, sizeof why) != 0)
		fail_msg("tiers \"%s\" refused: %s", s, why);
	points_tiers_format(&t, out, sizeof out);
	assert_string_equal(out, canonical);
}

static void tiers_bad(const char *s, const char *why_part)
{
	struct points_tiers t;
	char why[128] = "";
	assert_int_equal(points_tiers_parse(s, &t, why, sizeof why), -EINVAL);
	if (!strstr(why, why_part))
		fail_msg("tiers \"%s\": reason \"%s\" lacks \"%s\"", s, why, why_part);
}

static void test_tiers_parse(void **state)
{
	(void)state;
	tiers_ok("", "");
	tiers_ok("   ", "");
	tiers_ok("bronze:0, silver:1000, gold:5000", "bronze:0,silver:1000,gold:5000");
	tiers_ok("  a:5 ,b:6", "a:5,b:6");
	tiers_ok("برنزی:0,نقره‌ای:1000,طلایی:5000",
	         "برنزی:0,نقره‌ای:1000,طلایی:5000");
	tiers_ok("top:1000000000000", "top:1000000000000");
	tiers_bad("bronze", "name:threshold");
	tiers_bad("bronze:", "threshold");
	tiers_bad(":5", "name:threshold");
	tiers_bad("a:5,", "name:threshold");
	tiers_bad("a:5;b:6", "threshold");
	tiers_bad("a:5 b:6", "name:threshold");
	tiers_bad("a:-1", "threshold");
	tiers_bad("a:1000000000001", "threshold");
	tiers_bad("a:5,b:5", "increase");
	tiers_bad("a:5,b:4", "increase");
	tiers_bad("a:0,a:5", "twice");
	tiers_bad("abcdefghijklmnopqrstuvwxyz0123456:0", "32 bytes");
	tiers_bad("t1:1,t2:2,t3:3,t4:4,t5:5,t6:6,t7:7,t8:8,t9:9,t10:10,t11:11,t12:12,t13:13,"
	          "t14:14,t15:15,t16:16,t17:17",
	          "16 tiers");
	tiers_bad("\xff\xfe:0", "UTF-8");
}

static void test_tier_lookup(void **state)
{
	(void)state;
	struct points_tiers t;
	char why[128];
	assert_int_equal(
	    points_tiers_parse("bronze:0, silver:1000, gold:5000", &t, why, sizeof why), 0);
	assert_int_equal(points_tier_index(&t, 0), 0);
	assert_int_equal(points_tier_index(&t, 999), 0);
	assert_int_equal(points_tier_index(&t, 1000), 1);
	assert_int_equal(points_tier_index(&t, 4999), 1);
	assert_int_equal(points_tier_index(&t, 5000), 2);
	assert_int_equal(points_tier_index(&t, INT64_MAX), 2);
	assert_int_equal(points_tier_find(&t, "silver"), 1);
	assert_int_equal(points_tier_find(&t, "platinum"), -1);
	assert_int_equal(points_tier_find(&t, NULL), -1);
	/* below the first rung: no tier */
	assert_int_equal(points_tiers_parse("silver:1000, gold:5000", &t, why, sizeof why), 0);
	assert_int_equal(points_tier_index(&t, 999), -1);
	assert_int_equal(points_tier_index(&t, 1000), 0);
	/* no ladder */
	assert_int_equal(points_tiers_parse("", &t, why, sizeof why), 0);
	assert_int_equal(points_tier_index(&t, 1000000), -1);
}

/* config_load's [points] tiers check (config.c) and points_tiers_parse
 * must accept exactly the same strings. */
static void test_tiers_config_agrees(void **state)
{
	(void)state;
	static const char *const cases[] = {
	    "",
	    "bronze:0, silver:1000, gold:5000",
	    "برنزی:0,طلایی:5000",
	    "a:1000000000000",
	    "a:1000000000001",
	    "a:5,b:5",
	    "a:0,a:5",
	    "bronze",
	    "a:5,",
	    "a:5 b:6",
	    "a:x",
	    "abcdefghijklmnopqrstuvwxyz012345:0",
	    "abcdefghijklmnopqrstuvwxyz0123456:0",
	    "t1:1,t2:2,t3:3,t4:4,t5:5,t6:6,t7:7,t8:8,t9:9,t10:10,t11:11,t12:12,t13:13,t14:14,"
	    "t15:15,t16:16",
	    "t1:1,t2:2,t3:3,t4:4,t5:5,t6:6,t7:7,t8:8,t9:9,t10:10,t11:11,t12:12,t13:13,t14:14,"
	    "t15:15,t16:16,t17:17",
	    "\xc3\x28:0",
	};
	char dir[] = "/tmp/clubd-points-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *path = xasprintf("%s/clubd.conf", dir);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fprintf(f, "[points]\ntiers = %s\n\n[channel.sms]\ndriver = outbox\n", cases[i]);
		assert_int_equal(fclose(f), 0);
		struct config *c = NULL;
		struct cfg_error err;
		int cfg_ok = config_load(path, &c, &err) == 0;
		config_free(c);
		struct points_tiers t;
		char why[128];
		int ours = points_tiers_parse(cases[i], &t, why, sizeof why) == 0;
		if (cfg_ok != ours)
			fail_msg("tiers \"%s\": config_load %s, points_tiers_parse %s", cases[i],
			         cfg_ok ? "accepts" : err.msg, ours ? "accepts" : why);
	}
	unlink(path);
	free(path);
	rmdir(dir);
}

/* ---- the lot model ------------------------------------------------------- */

static void test_lots_expire_fifo(void **state)
{
	(void)state;
	struct points_lot l[] = {
	    {.expires = 300, .remaining = 30, .seq = 3},
	    {.expires = 100, .remaining = 10, .seq = 1},
	    {.expires = POINTS_NEVER, .remaining = 7, .seq = 0},
	    {.expires = 200, .remaining = 20, .seq = 2},
	    {.expires = 100, .remaining = 5, .seq = 4},
	};
	size_t n = ARRAY_SIZE(l);
	points_lots_sort(l, n);
	assert_int_equal(l[0].expires, 100);
	assert_int_equal(l[0].seq, 1); /* equal expiry: the older credit first */
	assert_int_equal(l[1].seq, 4);
	assert_int_equal(l[4].expires, POINTS_NEVER);
	assert_int_equal(points_lots_balance(l, n), 72);

	int64_t gone = 0;
	n = points_lots_expire(l, n, 99, &gone); /* nothing yet */
	assert_int_equal(n, 5);
	assert_int_equal(gone, 0);
	n = points_lots_expire(l, n, 100, &gone); /* expiry is inclusive */
	assert_int_equal(n, 3);
	assert_int_equal(gone, 15);
	assert_int_equal(l[0].expires, 200);
	n = points_lots_expire(l, n, 1000000, &gone);
	assert_int_equal(n, 1);
	assert_int_equal(gone, 65);
	assert_int_equal(l[0].remaining, 7); /* never-expiring points stay */
	assert_int_equal(points_lots_balance(l, n), 7);
}

static void test_lots_take(void **state)
{
	(void)state;
	struct points_lot l[] = {
	    {.expires = 100, .remaining = 10, .seq = 1},
	    {.expires = 200, .remaining = 20, .seq = 2},
	    {.expires = POINTS_NEVER, .remaining = 7, .seq = 0},
	};
	size_t n = ARRAY_SIZE(l);
	points_lots_sort(l, n);
	/* short: refused, nothing changes */
	assert_int_equal(points_lots_take(l, n, 38), -ENOSPC);
	assert_int_equal(points_lots_balance(l, n), 37);
	assert_int_equal(l[0].remaining, 10);
	assert_int_equal(points_lots_take(l, n, 0), -EINVAL);
	/* 4 from the first to expire */
	long k = points_lots_take(l, n, 4);
	assert_int_equal(k, 3);
	assert_int_equal(l[0].remaining, 6);
	/* 10: empties the first lot, 4 from the second */
	k = points_lots_take(l, (size_t)k, 10);
	assert_int_equal(k, 2);
	assert_int_equal(l[0].expires, 200);
	assert_int_equal(l[0].remaining, 16);
	assert_int_equal(l[1].remaining, 7);
	/* what expires first was spent first: an expiry now costs only 16 */
	int64_t gone = 0;
	size_t m = points_lots_expire(l, (size_t)k, 200, &gone);
	assert_int_equal(m, 1);
	assert_int_equal(gone, 16);
	/* the rest, exactly */
	k = points_lots_take(l, m, 7);
	assert_int_equal(k, 0);
}

/* ---- input rules --------------------------------------------------------- */

static void money_ok(const char *json, int64_t want, const char *text)
{
	json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
	assert_non_null(v);
	int64_t c = -1;
	const char *why = NULL;
	if (events_money_parse(v, &c, &why) != 0)
		fail_msg("amount %s refused: %s", json, why);
	assert_int_equal(c, want);
	char out[EVENTS_MONEY_TEXT];
	events_money_format(c, out);
	assert_string_equal(out, text);
	json_decref(v);
}

static void money_bad(const char *json, const char *why_part)
{
	json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
	assert_non_null(v);
	int64_t c = -1;
	const char *why = NULL;
	assert_int_equal(events_money_parse(v, &c, &why), -EINVAL);
	assert_int_equal(c, -1);
	if (!why || !strstr(why, why_part))
		fail_msg("amount %s: reason \"%s\" lacks \"%s\"", json, why ? why : "", why_part);
	json_decref(v);
}

static void test_money(void **state)
{
	(void)state;
	money_ok("125000", 12500000, "125000.00");
	money_ok("\"125000\"", 12500000, "125000.00");
	money_ok("\"12.50\"", 1250, "12.50");
	money_ok("\"12.5\"", 1250, "12.50");
	money_ok("12.5", 1250, "12.50");
	money_ok("0.01", 1, "0.01");
	money_ok("\"0.01\"", 1, "0.01");
	money_ok("\"007\"", 700, "7.00");
	money_ok("1000000000000", EVENTS_AMOUNT_MAX_C, "1000000000000.00");
	money_ok("\"1000000000000.00\"", EVENTS_AMOUNT_MAX_C, "1000000000000.00");
	money_ok("999999999999.99", EVENTS_AMOUNT_MAX_C - 1, "999999999999.99");
	money_ok("12.500", 1250, "12.50"); /* the same number as 12.5 */
	money_bad("\"12.505\"", "2 decimal");
	money_bad("12.505", "2 decimal");
	money_bad("0.001", "2 decimal");
	money_bad("0.30000000000000004", "2 decimal");
	money_bad("\"1.234\"", "2 decimal");
	money_bad("1000000000001", "at most");
	money_bad("1e13", "at most");
	money_bad("\"1000000000000.01\"", "at most");
	money_bad("\"99999999999999\"", "at most");
	money_bad("0", "greater than 0");
	money_bad("\"0.00\"", "greater than 0");
	money_bad("-5", "greater than 0");
	money_bad("\"-5\"", "decimal number");
	money_bad("\" 5\"", "decimal number");
	money_bad("\"12.\"", "decimal number");
	money_bad("\".5\"", "decimal number");
	money_bad("\"1e3\"", "decimal number");
	money_bad("\"۱۲۳\"", "decimal number");
	money_bad("true", "number or a decimal string");
	money_bad("null", "number or a decimal string");
	money_bad("[1]", "number or a decimal string");
}

static void test_type_and_currency(void **state)
{
	(void)state;
	assert_true(events_type_valid("purchase", 8));
	assert_true(events_type_valid("cart.abandoned-v2_x", 19));
	assert_true(events_type_valid("a", 1));
	char t[EVENTS_TYPE_MAX + 2];
	memset(t, 'a', sizeof t);
	t[EVENTS_TYPE_MAX] = '\0';
	assert_true(events_type_valid(t, EVENTS_TYPE_MAX));
	t[EVENTS_TYPE_MAX] = 'a';
	t[EVENTS_TYPE_MAX + 1] = '\0';
	assert_false(events_type_valid(t, EVENTS_TYPE_MAX + 1));
	assert_false(events_type_valid("", 0));
	assert_false(events_type_valid("Purchase", 8));
	assert_false(events_type_valid("buy now", 7));
	assert_false(events_type_valid("buy\r\nX-Evil: 1", 15));
	assert_false(events_type_valid("خرید", strlen("خرید")));
	assert_false(events_type_valid("a\0b", 3)); /* embedded NUL */
	assert_false(events_type_valid(NULL, 0));

	assert_true(events_currency_valid("IRR"));
	assert_true(events_currency_valid("EUR"));
	assert_false(events_currency_valid("irr"));
	assert_false(events_currency_valid("IR"));
	assert_false(events_currency_valid("IRRR"));
	assert_false(events_currency_valid("I1R"));
	assert_false(events_currency_valid(""));
	assert_false(events_currency_valid(NULL));
}

/* ---- referral codes ------------------------------------------------------ */

static void test_referral_codes(void **state)
{
	(void)state;
	char c[REFERRAL_CODE_LEN + 1];
	assert_int_equal(referral_code_normalize("ABCD2345", c), 0);
	assert_string_equal(c, "ABCD2345");
	assert_int_equal(referral_code_normalize(" abcd-2345 ", c), 0);
	assert_string_equal(c, "ABCD2345");
	assert_int_equal(referral_code_normalize("۲۳۴۵abcd", c), 0); /* Persian digits */
	assert_string_equal(c, "2345ABCD");
	assert_int_equal(referral_code_normalize("٢٣٤٥WXYZ", c), 0); /* Arabic-Indic */
	assert_string_equal(c, "2345WXYZ");
	/* look-alikes are not in the alphabet */
	assert_int_equal(referral_code_normalize("ABCD234O", c), -EINVAL);
	assert_int_equal(referral_code_normalize("ABCD2340", c), -EINVAL);
	assert_int_equal(referral_code_normalize("ABCD234I", c), -EINVAL);
	assert_int_equal(referral_code_normalize("ABCD2341", c), -EINVAL);
	assert_int_equal(referral_code_normalize("ABCD234L", c), -EINVAL);
	assert_int_equal(referral_code_normalize("ABCD234", c), -EINVAL);
	assert_int_equal(referral_code_normalize("ABCD23456", c), -EINVAL);
	assert_int_equal(referral_code_normalize("", c), -EINVAL);
	assert_int_equal(referral_code_normalize(NULL, c), -EINVAL);
	assert_int_equal(referral_code_normalize("ABCD\r\n2345", c), -EINVAL);
	assert_int_equal(referral_code_normalize("ABCD\xff"
	                                         "2345",
	                                         c),
	                 -EINVAL);

	/* rejection sampling: bytes >= 248 are skipped, the rest map mod 31 */
	unsigned char b[2 * REFERRAL_CODE_LEN] = {0, 1, 248, 255, 30, 31, 247, 62, 93, 5};
	assert_int_equal(referral_code_from_bytes(b, 10, c), 0);
	assert_string_equal(c, "23Z2Z227"); /* 0 1 30 31%31 247%31 62%31 93%31 5 */
	assert_int_equal(referral_code_from_bytes(b, 5, c), -EAGAIN);

	/* generated codes normalise to themselves */
	for (int i = 0; i < 200; i++) {
		char g[REFERRAL_CODE_LEN + 1], n[REFERRAL_CODE_LEN + 1];
		referral_code_new(g);
		assert_int_equal(strlen(g), REFERRAL_CODE_LEN);
		assert_int_equal(referral_code_normalize(g, n), 0);
		assert_string_equal(g, n);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_earn),
	    cmocka_unit_test(test_expiry),
	    cmocka_unit_test(test_tiers_parse),
	    cmocka_unit_test(test_tier_lookup),
	    cmocka_unit_test(test_tiers_config_agrees),
	    cmocka_unit_test(test_lots_expire_fifo),
	    cmocka_unit_test(test_lots_take),
	    cmocka_unit_test(test_money),
	    cmocka_unit_test(test_type_and_currency),
	    cmocka_unit_test(test_referral_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
