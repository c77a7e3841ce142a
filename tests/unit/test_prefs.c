/*
 * test_prefs.c - prefs.c with an injected clock: JSON validation (every
 * error path with its exact field), the canonical form, the channel /
 * consent / category decision table with every reason string, and quiet
 * hours / window arithmetic in Asia/Tehran and across Europe/Berlin's 2026
 * DST changes.  Expected instants were computed independently (Python
 * zoneinfo); no real clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "prefs.h"
#include "tz.h"

#define MIN_MS (60LL * 1000)
#define DAY_MS (86400LL * 1000)

/* Asia/Tehran (+03:30), 2026-06-15 (a Monday) and the day after. */
#define TEH_0615_1200 1781512200000LL
#define TEH_0615_2000 1781541000000LL
#define TEH_0615_2100 1781544600000LL
#define TEH_0615_2310 1781552400000LL
#define TEH_0616_0159 1781562540000LL
#define TEH_0616_0200 1781562600000LL
#define TEH_0616_0759 1781584140000LL
#define TEH_0616_0800 1781584200000LL
#define TEH_0616_0900 1781587800000LL

/* Europe/Berlin, 2026-03-29: 02:00 CET -> 03:00 CEST at 01:00 UTC. */
#define BER_0328_2300      1774735200000LL
#define BER_0329_0100      1774742400000LL
#define BER_0329_0159      1774745940000LL
#define BER_0329_0300_CEST 1774746000000LL
/* 2026-10-25: 03:00 CEST -> 02:00 CET at 01:00 UTC. */
#define BER_1025_0210_CEST 1792887000000LL
#define BER_1025_0230_CEST 1792888200000LL
#define BER_1025_0250_CEST 1792889400000LL
#define BER_1025_0200_CET  1792890000000LL
#define BER_1025_0210_CET  1792890600000LL
#define BER_1025_0230_CET  1792891800000LL

static struct prefs parse_ok(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	struct prefs p;
	const char *field = NULL, *reason = NULL;

	assert_non_null(j);
	if (prefs_parse(j, &p, &field, &reason) != 0)
		fail_msg("parse %s: %s %s", text, field, reason);
	json_decref(j);
	return p;
}

static void expect_parse_error(const char *text, const char *want_field, const char *want_reason)
{
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
	struct prefs p, before;
	const char *field = NULL, *reason = NULL;

	assert_non_null(j);
	memset(&p, 0x5a, sizeof(p));
	before = p;
	assert_int_equal(prefs_parse(j, &p, &field, &reason), -1);
	assert_string_equal(field, want_field);
	if (want_reason)
		assert_string_equal(reason, want_reason);
	else
		assert_non_null(reason);
	assert_memory_equal(&p, &before, sizeof(p)); /* untouched on error */
	json_decref(j);
}

static struct prefs_window win(int sh, int sm, int eh, int em)
{
	struct prefs_window w = {.set = 1, .start_min = sh * 60 + sm, .end_min = eh * 60 + em};
	return w;
}

static const struct prefs_window unset = {0};

/* ---- categories ---- */

static void test_category(void **state)
{
	static const char *const names[] = {"transactional", "promotional", "survey", "lottery",
	                                    "occasion"};

	(void)state;
	for (int i = 0; i < CAT__N; i++) {
		assert_int_equal(category_parse(names[i]), i);
		assert_string_equal(category_name((enum category)i), names[i]);
	}
	assert_int_equal(category_parse("Promotional"), -1);
	assert_int_equal(category_parse(""), -1);
	assert_int_equal(category_parse(NULL), -1);
	assert_string_equal(category_name(CAT__N), "unknown");
}

/* ---- parsing ---- */

static void test_parse_empty(void **state)
{
	struct prefs p;
	const char *f, *r;
	json_t *j;

	(void)state;
	memset(&p, 0x5a, sizeof(p));
	assert_int_equal(prefs_parse(NULL, &p, &f, &r), 0);
	assert_int_equal(p.norder, 0);
	for (int k = 0; k < ADDR_KINDS; k++)
		assert_int_equal(p.consent[k], -1);
	for (int c = 0; c < CAT__N; c++)
		assert_int_equal(p.cat_consent[c], -1);
	assert_int_equal(p.quiet.set, 0);
	assert_int_equal(p.window.set, 0);
	j = prefs_to_json(&p);
	assert_int_equal(json_object_size(j), 0);
	json_decref(j);

	p = parse_ok("{}");
	assert_int_equal(p.norder, 0);
	p = parse_ok("{\"channels\": null, \"quiet_hours\": null}");
	assert_int_equal(p.quiet.set, 0);
}

static void test_parse_full(void **state)
{
	const char *text = "{\"channels\": [\"chat\", \"sms\"],"
	                   " \"consent\": {\"sms\": true, \"email\": false},"
	                   " \"categories\": {\"promotional\": false, \"survey\": true},"
	                   " \"quiet_hours\": {\"start\": \"22:00\", \"end\": \"08:00\"},"
	                   " \"window\": {\"end\": \"20:00\", \"start\": \"09:05\"}}";
	struct prefs p = parse_ok(text), q;
	json_error_t jerr;
	json_t *in = json_loads(text, 0, &jerr), *out, *out2;
	char *s;

	(void)state;
	assert_int_equal(p.norder, 2);
	assert_int_equal(p.order[0], ADDR_CHAT);
	assert_int_equal(p.order[1], ADDR_SMS);
	assert_int_equal(p.consent[ADDR_SMS], 1);
	assert_int_equal(p.consent[ADDR_EMAIL], 0);
	assert_int_equal(p.consent[ADDR_CHAT], -1);
	assert_int_equal(p.cat_consent[CAT_PROMOTIONAL], 0);
	assert_int_equal(p.cat_consent[CAT_SURVEY], 1);
	assert_int_equal(p.cat_consent[CAT_LOTTERY], -1);
	assert_int_equal(p.quiet.set, 1);
	assert_int_equal(p.quiet.start_min, 22 * 60);
	assert_int_equal(p.quiet.end_min, 8 * 60);
	assert_int_equal(p.window.start_min, 9 * 60 + 5);
	assert_int_equal(p.window.end_min, 20 * 60);

	out = prefs_to_json(&p);
	assert_true(json_equal(in, out));
	s = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(s, "{\"categories\":{\"promotional\":false,\"survey\":true},"
	                       "\"channels\":[\"chat\",\"sms\"],"
	                       "\"consent\":{\"email\":false,\"sms\":true},"
	                       "\"quiet_hours\":{\"end\":\"08:00\",\"start\":\"22:00\"},"
	                       "\"window\":{\"end\":\"20:00\",\"start\":\"09:05\"}}");
	free(s);
	/* round trip: parse the canonical form again */
	{
		const char *f, *r;
		assert_int_equal(prefs_parse(out, &q, &f, &r), 0);
	}
	assert_memory_equal(&p, &q, sizeof(p));
	out2 = prefs_to_json(&q);
	assert_true(json_equal(out, out2));
	json_decref(out2);
	json_decref(out);
	json_decref(in);

	/* only the set parts appear */
	p = parse_ok("{\"window\": {\"start\": \"00:00\", \"end\": \"23:59\"}}");
	out = prefs_to_json(&p);
	s = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(s, "{\"window\":{\"end\":\"23:59\",\"start\":\"00:00\"}}");
	free(s);
	json_decref(out);
}

static void test_parse_errors(void **state)
{
	(void)state;
	expect_parse_error("[]", "preferences", "must be an object");
	expect_parse_error("\"x\"", "preferences", "must be an object");
	expect_parse_error("{\"foo\": 1}", "preferences.foo", "unknown key");
	expect_parse_error("{\"tz\": \"UTC\"}", "preferences.tz", "unknown key");
	expect_parse_error("{\"a b\\n\": 1}", "preferences", "unknown key");
	expect_parse_error("{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": 1}",
	                   "preferences", "unknown key");

	expect_parse_error("{\"channels\": \"sms\"}", "preferences.channels", "must be an array");
	expect_parse_error("{\"channels\": [\"sms\", \"fax\"]}", "preferences.channels",
	                   "unknown channel");
	expect_parse_error("{\"channels\": [\"sms\", \"email\", \"sms\"]}", "preferences.channels",
	                   "duplicate channel");
	expect_parse_error("{\"channels\": [\"sms\", \"email\", \"chat\", \"sms\"]}",
	                   "preferences.channels", "duplicate channel");
	expect_parse_error("{\"channels\": [1]}", "preferences.channels",
	                   "must be an array of strings");

	expect_parse_error("{\"consent\": []}", "preferences.consent", "must be an object");
	expect_parse_error("{\"consent\": {\"sms\": \"yes\"}}", "preferences.consent.sms",
	                   "must be true or false");
	expect_parse_error("{\"consent\": {\"email\": 1}}", "preferences.consent.email",
	                   "must be true or false");
	expect_parse_error("{\"consent\": {\"chat\": null}}", "preferences.consent.chat",
	                   "must be true or false");
	expect_parse_error("{\"consent\": {\"fax\": true}}", "preferences.consent.fax",
	                   "unknown channel");

	expect_parse_error("{\"categories\": true}", "preferences.categories", "must be an object");
	expect_parse_error("{\"categories\": {\"promotional\": 0}}",
	                   "preferences.categories.promotional", "must be true or false");
	expect_parse_error("{\"categories\": {\"occasion\": \"false\"}}",
	                   "preferences.categories.occasion", "must be true or false");
	expect_parse_error("{\"categories\": {\"spam\": false}}", "preferences.categories.spam",
	                   "unknown category");

	expect_parse_error("{\"quiet_hours\": \"22:00-08:00\"}", "preferences.quiet_hours",
	                   "must be an object");
	expect_parse_error("{\"quiet_hours\": {\"start\": \"25:00\", \"end\": \"08:00\"}}",
	                   "preferences.quiet_hours.start", NULL);
	expect_parse_error("{\"quiet_hours\": {\"start\": \"22:00\", \"end\": \"7:5\"}}",
	                   "preferences.quiet_hours.end", NULL);
	expect_parse_error("{\"quiet_hours\": {\"start\": \"24:00\", \"end\": \"08:00\"}}",
	                   "preferences.quiet_hours.start", NULL);
	expect_parse_error("{\"quiet_hours\": {\"start\": \"12:60\", \"end\": \"08:00\"}}",
	                   "preferences.quiet_hours.start", NULL);
	expect_parse_error("{\"quiet_hours\": {\"start\": \"2200\", \"end\": \"08:00\"}}",
	                   "preferences.quiet_hours.start", NULL);
	expect_parse_error("{\"quiet_hours\": {\"start\": \"22:00 \", \"end\": \"08:00\"}}",
	                   "preferences.quiet_hours.start", NULL);
	expect_parse_error("{\"quiet_hours\": {\"start\": \"-1:00\", \"end\": \"08:00\"}}",
	                   "preferences.quiet_hours.start", NULL);
	expect_parse_error("{\"quiet_hours\": {\"start\": 2200, \"end\": \"08:00\"}}",
	                   "preferences.quiet_hours.start", "must be a string \"HH:MM\"");
	expect_parse_error("{\"quiet_hours\": {\"start\": \"22:00\"}}",
	                   "preferences.quiet_hours.end", "required");
	expect_parse_error("{\"quiet_hours\": {\"end\": \"22:00\"}}",
	                   "preferences.quiet_hours.start", "required");
	expect_parse_error("{\"quiet_hours\": {\"start\": \"22:00\", \"end\": \"22:00\"}}",
	                   "preferences.quiet_hours", "start and end must differ");
	expect_parse_error(
	    "{\"quiet_hours\": {\"start\": \"22:00\", \"end\": \"08:00\", \"tz\": \"UTC\"}}",
	    "preferences.quiet_hours.tz", "unknown key");

	expect_parse_error("{\"window\": {\"start\": \"09:00\", \"end\": \"09:00\"}}",
	                   "preferences.window", "start and end must differ");
	expect_parse_error("{\"window\": {\"start\": \"9:00\", \"end\": \"20:00\"}}",
	                   "preferences.window.start", NULL);
	expect_parse_error("{\"window\": {\"start\": \"09:00\", \"end\": \"20:0\"}}",
	                   "preferences.window.end", NULL);
	/* a window entirely inside the quiet hours allows nothing */
	expect_parse_error("{\"quiet_hours\": {\"start\": \"22:00\", \"end\": \"08:00\"},"
	                   " \"window\": {\"start\": \"23:00\", \"end\": \"07:00\"}}",
	                   "preferences.window", "window lies inside quiet hours");
	expect_parse_error("{\"window\": {\"start\": \"22:00\", \"end\": \"08:00\"},"
	                   " \"quiet_hours\": {\"start\": \"22:00\", \"end\": \"08:00\"}}",
	                   "preferences.window", "window lies inside quiet hours");
	expect_parse_error("{\"quiet_hours\": {\"start\": \"20:00\", \"end\": \"10:00\"},"
	                   " \"window\": {\"start\": \"01:00\", \"end\": \"03:00\"}}",
	                   "preferences.window", "window lies inside quiet hours");
	/* one open minute is enough */
	parse_ok("{\"quiet_hours\": {\"start\": \"22:00\", \"end\": \"08:00\"},"
	         " \"window\": {\"start\": \"21:59\", \"end\": \"07:00\"}}");
	parse_ok("{\"quiet_hours\": {\"start\": \"22:00\", \"end\": \"08:00\"},"
	         " \"window\": {\"start\": \"07:00\", \"end\": \"12:00\"}}");
}

static void test_parse_window_string(void **state)
{
	struct prefs_window w;

	(void)state;
	assert_int_equal(prefs_parse_window("22:00-08:00", &w), 0);
	assert_int_equal(w.set, 1);
	assert_int_equal(w.start_min, 1320);
	assert_int_equal(w.end_min, 480);
	assert_int_equal(prefs_parse_window("00:00-23:59", &w), 0);
	assert_int_equal(w.end_min, 1439);
	assert_int_equal(prefs_parse_window("", &w), 0);
	assert_int_equal(w.set, 0);
	w.set = 1;
	assert_int_equal(prefs_parse_window(NULL, &w), 0);
	assert_int_equal(w.set, 0);
	w = win(1, 2, 3, 4);
	assert_int_equal(prefs_parse_window("22:00-22:00", &w), -1);
	assert_int_equal(prefs_parse_window("22:00 08:00", &w), -1);
	assert_int_equal(prefs_parse_window("2:00-08:00", &w), -1);
	assert_int_equal(prefs_parse_window("22:00-08:00x", &w), -1);
	assert_int_equal(prefs_parse_window("24:00-08:00", &w), -1);
	assert_int_equal(prefs_parse_window("22:00-08:60", &w), -1);
	assert_int_equal(prefs_parse_window("22:00-", &w), -1);
	assert_int_equal(w.start_min, 62); /* untouched on error */
}

/* ---- next allowed instant ---- */

static void test_next_quiet_tehran(void **state)
{
	struct prefs_window q = win(22, 0, 8, 0);
	const char *z = "Asia/Tehran";

	(void)state;
	assert_int_equal(prefs_next_allowed(&q, &unset, z, TEH_0615_2310), TEH_0616_0800);
	assert_int_equal(prefs_next_allowed(&q, &unset, z, TEH_0616_0759), TEH_0616_0800);
	assert_int_equal(prefs_next_allowed(&q, &unset, z, TEH_0616_0759 + 30000), TEH_0616_0800);
	assert_int_equal(prefs_next_allowed(&q, &unset, z, TEH_0616_0800), TEH_0616_0800);
	assert_int_equal(prefs_next_allowed(&q, &unset, z, TEH_0616_0800 + 1), TEH_0616_0800 + 1);
	assert_int_equal(prefs_next_allowed(&q, &unset, z, TEH_0615_1200), TEH_0615_1200);
	/* 21:59 allowed, 22:00 not */
	assert_int_equal(prefs_next_allowed(&q, NULL, z, TEH_0615_2100 + 59 * MIN_MS),
	                 TEH_0615_2100 + 59 * MIN_MS);
	assert_int_equal(prefs_next_allowed(&q, NULL, z, TEH_0615_2100 + 60 * MIN_MS),
	                 TEH_0616_0800);
	/* quiet hours not crossing midnight */
	q = win(13, 0, 14, 30);
	assert_int_equal(prefs_next_allowed(&q, NULL, z, TEH_0615_1200 + 90 * MIN_MS),
	                 TEH_0615_1200 + 150 * MIN_MS);
	/* nothing set: now, whatever the zone */
	assert_int_equal(prefs_next_allowed(NULL, NULL, "Nowhere/Else", 5), 5);
	assert_int_equal(prefs_next_allowed(&unset, &unset, z, 5), 5);
	/* unknown zone */
	assert_int_equal(prefs_next_allowed(&q, NULL, "Nowhere/Else", TEH_0615_1200), -1);
}

static void test_next_window(void **state)
{
	struct prefs_window w = win(9, 0, 20, 0), q;
	const char *z = "Asia/Tehran";

	(void)state;
	assert_int_equal(prefs_next_allowed(NULL, &w, z, TEH_0615_2100), TEH_0616_0900);
	assert_int_equal(prefs_next_allowed(NULL, &w, z, TEH_0615_2000), TEH_0616_0900);
	assert_int_equal(prefs_next_allowed(NULL, &w, z, TEH_0615_2000 - 1), TEH_0615_2000 - 1);
	assert_int_equal(prefs_next_allowed(NULL, &w, z, TEH_0616_0800), TEH_0616_0900);
	assert_int_equal(prefs_next_allowed(NULL, &w, z, TEH_0615_1200), TEH_0615_1200);

	/* window crossing midnight, 20:00-02:00 */
	w = win(20, 0, 2, 0);
	assert_int_equal(prefs_next_allowed(NULL, &w, z, TEH_0615_1200), TEH_0615_2000);
	assert_int_equal(prefs_next_allowed(NULL, &w, z, TEH_0615_2310), TEH_0615_2310);
	assert_int_equal(prefs_next_allowed(NULL, &w, z, TEH_0616_0159), TEH_0616_0159);
	assert_int_equal(prefs_next_allowed(NULL, &w, z, TEH_0616_0200), TEH_0615_2000 + DAY_MS);

	/* window and quiet hours together: the later of quiet end / window start */
	q = win(22, 0, 8, 0);
	w = win(7, 0, 12, 0);
	assert_int_equal(prefs_next_allowed(&q, &w, z, TEH_0616_0800 - 120 * MIN_MS),
	                 TEH_0616_0800);
	w = win(20, 0, 23, 0);
	assert_int_equal(prefs_next_allowed(&q, &w, z, TEH_0615_2310), TEH_0615_2000 + DAY_MS);
	assert_int_equal(prefs_next_allowed(&q, &w, z, TEH_0615_2100), TEH_0615_2100);
	/* contradictory (only possible with the configured default quiet hours):
	 * no minute is allowed, send now rather than never */
	w = win(23, 0, 1, 0);
	assert_int_equal(prefs_next_allowed(&q, &w, z, TEH_0615_1200), TEH_0615_1200);
}

static void test_next_berlin_dst(void **state)
{
	const char *z = "Europe/Berlin";
	struct prefs_window q = win(22, 0, 2, 30), w;

	(void)state;
	/* Spring forward: 02:30 does not exist on 2026-03-29; quiet hours
	 * ending at 02:30 end at 03:00 CEST (the first instant after the gap). */
	assert_int_equal(prefs_next_allowed(&q, NULL, z, BER_0329_0100), BER_0329_0300_CEST);
	assert_int_equal(prefs_next_allowed(&q, NULL, z, BER_0328_2300), BER_0329_0300_CEST);
	assert_int_equal(prefs_next_allowed(&q, NULL, z, BER_0329_0159), BER_0329_0300_CEST);
	/* a window opening inside the gap opens at 03:00 CEST too */
	w = win(2, 30, 10, 0);
	assert_int_equal(prefs_next_allowed(NULL, &w, z, BER_0329_0100), BER_0329_0300_CEST);
	/* a window opening at 03:00 is unaffected */
	w = win(3, 0, 10, 0);
	assert_int_equal(prefs_next_allowed(NULL, &w, z, BER_0329_0100), BER_0329_0300_CEST);
	w = win(4, 0, 10, 0);
	assert_int_equal(prefs_next_allowed(NULL, &w, z, BER_0329_0100),
	                 BER_0329_0300_CEST + 60 * MIN_MS);

	/* Fall back: 02:00-02:59 happens twice on 2026-10-25. */
	assert_int_equal(prefs_next_allowed(&q, NULL, z, BER_1025_0210_CEST), BER_1025_0230_CEST);
	/* in the second 02:10 the first 02:30 is past: the second 02:30 */
	assert_int_equal(prefs_next_allowed(&q, NULL, z, BER_1025_0210_CET), BER_1025_0230_CET);
	/* the second 02:00-02:29 is quiet again by the wall clock */
	assert_int_equal(prefs_next_allowed(&q, NULL, z, BER_1025_0230_CEST), BER_1025_0230_CEST);
	assert_int_equal(prefs_next_allowed(&q, NULL, z, BER_1025_0200_CET), BER_1025_0230_CET);
	/* jumping back out of quiet hours: 02:50 CEST is quiet (02:30-06:00),
	 * the clock falls back to 02:00 CET which is not */
	q = win(2, 30, 6, 0);
	assert_int_equal(prefs_next_allowed(&q, NULL, z, BER_1025_0250_CEST), BER_1025_0200_CET);
	assert_int_equal(prefs_next_allowed(&q, NULL, z, BER_1025_0230_CET),
	                 BER_1025_0230_CET + 210 * MIN_MS); /* 06:00 CET */
}

/* ---- the decision ---- */

struct decide_case {
	const char *name;
	const char *prefs; /* JSON, NULL = no preferences */
	int requested;     /* -1 preferred */
	enum category cat;
	unsigned missing;  /* bit k: address of kind k missing */
	unsigned disabled; /* bit k: channel k not configured */
	enum prefs_action action;
	int channel;        /* SEND */
	const char *reason; /* SUPPRESS / DEFER */
};

#define PREF -1
static const struct decide_case decide_cases[] = {
    {"default order", NULL, PREF, CAT_PROMOTIONAL, 0, 0, PREFS_SEND, ADDR_SMS, ""},
    {"empty prefs", "{}", PREF, CAT_PROMOTIONAL, 0, 0, PREFS_SEND, ADDR_SMS, ""},
    {"default order skips missing sms", "{}", PREF, CAT_PROMOTIONAL, 1u << ADDR_SMS, 0, PREFS_SEND,
     ADDR_EMAIL, ""},
    {"default order: email before chat", "{}", PREF, CAT_PROMOTIONAL, 1u << ADDR_SMS,
     1u << ADDR_EMAIL, PREFS_SEND, ADDR_CHAT, ""},
    {"preferred first", "{\"channels\":[\"chat\",\"email\"]}", PREF, CAT_PROMOTIONAL, 0, 0,
     PREFS_SEND, ADDR_CHAT, ""},
    {"fallback in order", "{\"channels\":[\"chat\",\"email\"]}", PREF, CAT_PROMOTIONAL,
     1u << ADDR_CHAT, 0, PREFS_SEND, ADDR_EMAIL, ""},
    {"then the rest", "{\"channels\":[\"chat\",\"email\"]}", PREF, CAT_PROMOTIONAL,
     (1u << ADDR_CHAT) | (1u << ADDR_EMAIL), 0, PREFS_SEND, ADDR_SMS, ""},
    {"rest in default order", "{\"channels\":[\"chat\"]}", PREF, CAT_PROMOTIONAL, 1u << ADDR_CHAT,
     0, PREFS_SEND, ADDR_SMS, ""},
    {"rest in default order 2", "{\"channels\":[\"sms\"]}", PREF, CAT_PROMOTIONAL, 1u << ADDR_SMS,
     0, PREFS_SEND, ADDR_EMAIL, ""},
    {"opted out falls back", "{\"channels\":[\"email\",\"chat\"],\"consent\":{\"email\":false}}",
     PREF, CAT_PROMOTIONAL, 0, 0, PREFS_SEND, ADDR_CHAT, ""},
    {"consent true is fine", "{\"consent\":{\"sms\":true}}", PREF, CAT_PROMOTIONAL, 0, 0,
     PREFS_SEND, ADDR_SMS, ""},
    {"not configured falls back", "{}", PREF, CAT_PROMOTIONAL, 0, 1u << ADDR_SMS, PREFS_SEND,
     ADDR_EMAIL, ""},
    {"nothing left", "{\"consent\":{\"sms\":false,\"chat\":false}}", PREF, CAT_PROMOTIONAL,
     1u << ADDR_EMAIL, 0, PREFS_SUPPRESS, -1, "no_channel"},
    {"nothing configured", NULL, PREF, CAT_TRANSACTIONAL, 0, 7, PREFS_SUPPRESS, -1, "no_channel"},
    {"requested wins over order", "{\"channels\":[\"chat\"]}", ADDR_SMS, CAT_PROMOTIONAL, 0, 0,
     PREFS_SEND, ADDR_SMS, ""},
    {"requested not configured", "{}", ADDR_CHAT, CAT_PROMOTIONAL, 0, 1u << ADDR_CHAT,
     PREFS_SUPPRESS, -1, "channel_not_configured:chat"},
    {"requested no address", "{}", ADDR_EMAIL, CAT_PROMOTIONAL, 1u << ADDR_EMAIL, 0, PREFS_SUPPRESS,
     -1, "no_address:email"},
    {"requested opted out", "{\"consent\":{\"sms\":false}}", ADDR_SMS, CAT_PROMOTIONAL, 0, 0,
     PREFS_SUPPRESS, -1, "opted_out:sms"},
    {"requested: no fallback", "{\"consent\":{\"sms\":false}}", ADDR_SMS, CAT_TRANSACTIONAL, 0, 0,
     PREFS_SUPPRESS, -1, "opted_out:sms"},
    {"requested: configured checked first", "{\"consent\":{\"email\":false}}", ADDR_EMAIL,
     CAT_PROMOTIONAL, 1u << ADDR_EMAIL, 1u << ADDR_EMAIL, PREFS_SUPPRESS, -1,
     "channel_not_configured:email"},
    {"requested: address before consent", "{\"consent\":{\"email\":false}}", ADDR_EMAIL,
     CAT_PROMOTIONAL, 1u << ADDR_EMAIL, 0, PREFS_SUPPRESS, -1, "no_address:email"},
    {"requested out of range", NULL, ADDR_KINDS, CAT_PROMOTIONAL, 0, 0, PREFS_SUPPRESS, -1,
     "unknown_channel"},
    {"category promotional", "{\"categories\":{\"promotional\":false}}", PREF, CAT_PROMOTIONAL, 0,
     0, PREFS_SUPPRESS, -1, "category_opt_out:promotional"},
    {"category survey", "{\"categories\":{\"survey\":false}}", PREF, CAT_SURVEY, 0, 0,
     PREFS_SUPPRESS, -1, "category_opt_out:survey"},
    {"category lottery", "{\"categories\":{\"lottery\":false}}", PREF, CAT_LOTTERY, 0, 0,
     PREFS_SUPPRESS, -1, "category_opt_out:lottery"},
    {"category occasion", "{\"categories\":{\"occasion\":false}}", PREF, CAT_OCCASION, 0, 0,
     PREFS_SUPPRESS, -1, "category_opt_out:occasion"},
    {"other category unaffected", "{\"categories\":{\"promotional\":false}}", PREF, CAT_SURVEY, 0,
     0, PREFS_SEND, ADDR_SMS, ""},
    {"category true", "{\"categories\":{\"lottery\":true}}", PREF, CAT_LOTTERY, 0, 0, PREFS_SEND,
     ADDR_SMS, ""},
    {"transactional ignores category", "{\"categories\":{\"transactional\":false}}", PREF,
     CAT_TRANSACTIONAL, 0, 0, PREFS_SEND, ADDR_SMS, ""},
    {"channel checked before category",
     "{\"categories\":{\"promotional\":false},\"consent\":{\"sms\":false}}", ADDR_SMS,
     CAT_PROMOTIONAL, 0, 0, PREFS_SUPPRESS, -1, "opted_out:sms"},
    {"unknown category", NULL, PREF, CAT__N, 0, 0, PREFS_SUPPRESS, -1, "unknown_category"},
};

static void test_decide_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(decide_cases) / sizeof(decide_cases[0]); i++) {
		const struct decide_case *c = &decide_cases[i];
		struct prefs p;
		int enabled[ADDR_KINDS];
		struct prefs_input in = {0};
		struct prefs_decision d;
		static const char *const addrs[ADDR_KINDS] = {"+989121234567", "a@example.org",
		                                              "123456"};

		if (c->prefs)
			p = parse_ok(c->prefs);
		in.prefs = c->prefs ? &p : NULL;
		in.tz = "Asia/Tehran";
		for (int k = 0; k < ADDR_KINDS; k++) {
			in.addr[k] =
			    (c->missing & (1u << k)) ? (k == ADDR_EMAIL ? "" : NULL) : addrs[k];
			enabled[k] = !(c->disabled & (1u << k));
		}
		in.requested = c->requested;
		in.category = c->cat;
		in.now_ms = TEH_0615_1200;
		in.channel_enabled = enabled;
		memset(&d, 0x5a, sizeof(d));
		prefs_decide(&in, &d);
		if (d.action != c->action || strcmp(d.reason, c->reason) != 0 ||
		    (c->action == PREFS_SEND && d.channel != c->channel))
			fail_msg("case \"%s\": action %d channel %d reason \"%s\"", c->name,
			         (int)d.action, d.channel, d.reason);
		if (c->action == PREFS_SUPPRESS)
			assert_int_equal(d.channel, -1);
	}
}

static void decide_at(const struct prefs *p, const char *tz, enum category cat, int64_t now,
                      const struct prefs_window *dq, int quiet_tx, struct prefs_decision *d)
{
	static const int all[ADDR_KINDS] = {1, 1, 1};
	struct prefs_input in = {.prefs = p,
	                         .tz = tz,
	                         .addr = {"+989121234567", "a@example.org", "123456"},
	                         .requested = -1,
	                         .category = cat,
	                         .now_ms = now,
	                         .default_quiet = dq,
	                         .quiet_transactional = quiet_tx,
	                         .channel_enabled = all};
	prefs_decide(&in, d);
}

static void test_decide_time(void **state)
{
	struct prefs p = parse_ok("{\"quiet_hours\":{\"start\":\"22:00\",\"end\":\"08:00\"}}");
	struct prefs none = parse_ok("{}");
	struct prefs_window dq = win(23, 0, 7, 0);
	struct prefs_decision d;

	(void)state;
	decide_at(&p, "Asia/Tehran", CAT_PROMOTIONAL, TEH_0615_2310, NULL, 0, &d);
	assert_int_equal(d.action, PREFS_DEFER);
	assert_int_equal(d.defer_until_ms, TEH_0616_0800);
	assert_string_equal(d.reason, "quiet_hours");
	assert_int_equal(d.channel, ADDR_SMS);

	decide_at(&p, "Asia/Tehran", CAT_PROMOTIONAL, TEH_0616_0800, NULL, 0, &d);
	assert_int_equal(d.action, PREFS_SEND);
	assert_int_equal(d.channel, ADDR_SMS);
	assert_string_equal(d.reason, "");

	/* transactional: quiet hours only when configured to hold it */
	decide_at(&p, "Asia/Tehran", CAT_TRANSACTIONAL, TEH_0615_2310, NULL, 0, &d);
	assert_int_equal(d.action, PREFS_SEND);
	decide_at(&p, "Asia/Tehran", CAT_TRANSACTIONAL, TEH_0615_2310, NULL, 1, &d);
	assert_int_equal(d.action, PREFS_DEFER);
	assert_int_equal(d.defer_until_ms, TEH_0616_0800);

	/* the default quiet hours apply when the contact has none... */
	decide_at(&none, "Asia/Tehran", CAT_SURVEY, TEH_0615_2310, &dq, 0, &d);
	assert_int_equal(d.action, PREFS_DEFER);
	assert_int_equal(d.defer_until_ms, TEH_0616_0800 - 60 * MIN_MS);
	decide_at(NULL, "Asia/Tehran", CAT_SURVEY, TEH_0615_2310, &dq, 0, &d);
	assert_int_equal(d.defer_until_ms, TEH_0616_0800 - 60 * MIN_MS);
	decide_at(&none, "Asia/Tehran", CAT_SURVEY, TEH_0615_2310, &unset, 0, &d);
	assert_int_equal(d.action, PREFS_SEND);
	/* ...and the contact's own replace them */
	decide_at(&p, "Asia/Tehran", CAT_SURVEY, TEH_0616_0759 - 30 * MIN_MS, &dq, 0, &d);
	assert_int_equal(d.action, PREFS_DEFER);
	assert_int_equal(d.defer_until_ms, TEH_0616_0800);

	/* window */
	p = parse_ok("{\"window\":{\"start\":\"09:00\",\"end\":\"20:00\"}}");
	decide_at(&p, "Asia/Tehran", CAT_OCCASION, TEH_0615_2100, NULL, 0, &d);
	assert_int_equal(d.action, PREFS_DEFER);
	assert_int_equal(d.defer_until_ms, TEH_0616_0900);
	assert_string_equal(d.reason, "outside_window");
	/* inside default quiet hours and outside the window: quiet_hours */
	decide_at(&p, "Asia/Tehran", CAT_OCCASION, TEH_0615_2310, &dq, 0, &d);
	assert_int_equal(d.action, PREFS_DEFER);
	assert_int_equal(d.defer_until_ms, TEH_0616_0900);
	assert_string_equal(d.reason, "quiet_hours");
	decide_at(&p, "Asia/Tehran", CAT_TRANSACTIONAL, TEH_0615_2100, NULL, 0, &d);
	assert_int_equal(d.action, PREFS_SEND);

	/* a zone ICU does not know: UTC, never held forever */
	p = parse_ok("{\"quiet_hours\":{\"start\":\"22:00\",\"end\":\"08:00\"}}");
	decide_at(&p, "Mars/Base", CAT_PROMOTIONAL, 1781564400000LL /* 23:00Z */, NULL, 0, &d);
	assert_int_equal(d.action, PREFS_DEFER);
	assert_int_equal(d.defer_until_ms, 1781596800000LL /* 08:00Z next day */);
	assert_string_equal(d.reason, "quiet_hours");
	decide_at(&p, NULL, CAT_PROMOTIONAL, 1781564400000LL, NULL, 0, &d);
	assert_int_equal(d.defer_until_ms, 1781596800000LL);
	decide_at(&p, "Mars/Base", CAT_PROMOTIONAL, 1781596800000LL, NULL, 0, &d);
	assert_int_equal(d.action, PREFS_SEND);

	/* Berlin spring-forward day through the whole decision */
	p = parse_ok("{\"quiet_hours\":{\"start\":\"22:00\",\"end\":\"02:30\"}}");
	decide_at(&p, "Europe/Berlin", CAT_PROMOTIONAL, BER_0329_0100, NULL, 0, &d);
	assert_int_equal(d.action, PREFS_DEFER);
	assert_int_equal(d.defer_until_ms, BER_0329_0300_CEST);
	decide_at(&p, "Europe/Berlin", CAT_PROMOTIONAL, BER_0329_0300_CEST, NULL, 0, &d);
	assert_int_equal(d.action, PREFS_SEND);
}

static int teardown(void **state)
{
	(void)state;
	tz_cleanup();
	return 0;
}

static void test_caps_parse(void **state)
{
	(void)state;
	struct prefs_cap c[PREFS_CAPS_MAX];
	char why[160];
	assert_int_equal(prefs_parse_caps("", c, PREFS_CAPS_MAX, why, sizeof why), 0);
	assert_int_equal(prefs_parse_caps("promotional:2/1d, promotional:5/7d,survey:1/12h", c,
	                                  PREFS_CAPS_MAX, why, sizeof why),
	                 3);
	assert_int_equal(c[0].category, CAT_PROMOTIONAL);
	assert_int_equal(c[0].max, 2);
	assert_int_equal(c[0].window_ms, 86400000);
	assert_int_equal(c[1].window_ms, 7 * 86400000LL);
	assert_int_equal(c[2].category, CAT_SURVEY);
	assert_int_equal(c[2].window_ms, 12 * 3600000LL);
	const char *bad[] = {"transactional:1/1d",
	                     "promo:1/1d",
	                     "promotional:0/1d",
	                     "promotional:1/10s",
	                     "promotional:1",
	                     "promotional",
	                     ",",
	                     "promotional:1/1d,,survey:1/1d",
	                     "promotional:99999999999999/1d"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		why[0] = '\0';
		assert_int_equal(prefs_parse_caps(bad[i], c, PREFS_CAPS_MAX, why, sizeof why), -1);
		assert_true(why[0] != '\0');
	}
	assert_int_equal(prefs_parse_caps("survey:1/1d,survey:2/2d", c, 1, why, sizeof why), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_category),
	    cmocka_unit_test(test_parse_empty),
	    cmocka_unit_test(test_parse_full),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_parse_window_string),
	    cmocka_unit_test(test_next_quiet_tehran),
	    cmocka_unit_test(test_next_window),
	    cmocka_unit_test(test_next_berlin_dst),
	    cmocka_unit_test(test_decide_table),
	    cmocka_unit_test(test_decide_time),
	    cmocka_unit_test(test_caps_parse),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
