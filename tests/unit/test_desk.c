/*
 * test_desk.c - the complaints desk's pure parts (daemon/club/desk.c):
 * routing rules (a Persian keyword written with Arabic yeh/kaf, English
 * keywords in any case, keywords only at the start of a word, channels,
 * tiers, tags, campaigns, every condition of a rule at once, first match
 * wins, the default and the fallback team, a campaign's forward team over
 * every rule), every refusal of the rule and team validation with the field
 * it names, the canonical JSON, ticket transitions and the first-response
 * statistics.  No store, no clock.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "club/desk.h"
#include "util.h"

/* "شکایت" (complaint) in Persian letters, and with Arabic kaf (U+0643) and
 * Arabic yeh (U+064A) as Arabic keyboards type it. */
#define FA_COMPLAINT "\xd8\xb4\xda\xa9\xd8\xa7\xdb\x8c\xd8\xaa"
#define AR_COMPLAINT "\xd8\xb4\xd9\x83\xd8\xa7\xd9\x8a\xd8\xaa"
#define FA_MY        "\xd9\x85\xd9\x86 "                                /* "من " */
#define FA_REFUND    "\xd8\xa8\xd8\xa7\xd8\xb2\xda\xaf\xd8\xb4\xd8\xaa" /* "بازگشت" */
#define FA_NO_REFUND "\xd8\xa8\xdb\x8c" FA_REFUND /* "بیبازگشت": mid-word */
#define FA_COMMA     "\xd8\x8c"                   /* Arabic comma */

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	if (!j)
		fail_msg("test JSON does not parse: %s (%s)", e.text, text);
	return j;
}

static void rules_ok(const char *text, struct desk_rules *r)
{
	json_t *j = parse(text);
	char field[96], why[200];
	int rc = desk_rules_parse(j, r, field, sizeof field, why, sizeof why);
	if (rc != 0)
		fail_msg("rules refused: %s: %s", field, why);
	json_decref(j);
}

static void rules_bad(const char *text, const char *want_field)
{
	struct desk_rules r;
	json_t *j = parse(text);
	char field[96] = "", why[200] = "";
	int rc = desk_rules_parse(j, &r, field, sizeof field, why, sizeof why);
	desk_rules_free(&r);
	json_decref(j);
	if (rc != -EINVAL)
		fail_msg("rules accepted: %s", text);
	if (strcmp(field, want_field) != 0)
		fail_msg("rules %s refused for %s (%s), want %s", text, field, why, want_field);
	assert_true(why[0] != '\0');
}

static const char *route(const struct desk_rules *r, const char *text, const char *channel,
                         const char *tier, const char *tag, const char *camp, const char *fwd,
                         enum desk_via *via, int *rule)
{
	const char *tags[1] = {tag};
	struct desk_reply m = {.text = text,
	                       .channel = channel,
	                       .tier = tier,
	                       .tags = tags,
	                       .ntags = tag ? 1 : 0,
	                       .campaign = camp,
	                       .forward = fwd};
	return desk_route(r, &m, via, rule);
}

static const char *const RULES =
    "{\"rules\": ["
    " {\"name\": \"vip\", \"team\": \"vip\", \"tags\": [\"vip\"], \"tiers\": [\"gold\"]},"
    " {\"name\": \"complaints\", \"team\": \"complaints\","
    "  \"keywords\": [\"" FA_COMPLAINT "\", \"Complaint\", \"not working\"]},"
    " {\"team\": \"refunds\", \"keywords\": [\"" FA_REFUND "\", \"refund\"], "
    "  \"channels\": [\"sms\"]},"
    " {\"team\": \"yalda\", \"campaigns\": [\"yalda-1404\"]},"
    " {\"team\": \"chat\", \"channels\": [\"chat\"]}"
    "], \"default_team\": \"support\"}";

static void test_keywords_persian_and_english(void **state)
{
	(void)state;
	struct desk_rules r;
	rules_ok(RULES, &r);
	enum desk_via via;
	int rule;
	/* Persian keyword, written with Arabic kaf and yeh, inside a sentence */
	assert_string_equal(
	    route(&r, FA_MY AR_COMPLAINT " " FA_MY, "sms", NULL, NULL, NULL, NULL, &via, &rule),
	    "complaints");
	assert_int_equal(via, DESK_VIA_RULE);
	assert_int_equal(rule, 1);
	/* the Persian spelling, followed by a suffix, after punctuation */
	assert_string_equal(
	    route(&r, "!" FA_COMPLAINT "\xdb\x8c", "sms", NULL, NULL, NULL, NULL, NULL, NULL),
	    "complaints");
	assert_string_equal(
	    route(&r, FA_MY FA_COMMA FA_COMPLAINT, "chat", NULL, NULL, NULL, NULL, NULL, NULL),
	    "complaints");
	/* English, any case, plural, surrounded by white space */
	assert_string_equal(route(&r, "  My COMPLAINTS about the order ", "sms", NULL, NULL, NULL,
	                          NULL, NULL, NULL),
	                    "complaints");
	assert_string_equal(
	    route(&r, "the app is\tnot   working", "email", NULL, NULL, NULL, NULL, NULL, NULL),
	    "complaints");
	/* only at the start of a word */
	assert_string_equal(route(&r, "precomplaint", "email", NULL, NULL, NULL, NULL, &via, &rule),
	                    "support");
	assert_int_equal(via, DESK_VIA_DEFAULT);
	assert_int_equal(rule, -1);
	assert_string_equal(route(&r, FA_NO_REFUND, "sms", NULL, NULL, NULL, NULL, NULL, NULL),
	                    "support");
	/* keyword + channel: both must hold */
	assert_string_equal(route(&r, FA_REFUND, "sms", NULL, NULL, NULL, NULL, NULL, NULL),
	                    "refunds");
	assert_string_equal(route(&r, "Refund please", "email", NULL, NULL, NULL, NULL, NULL, NULL),
	                    "support");
	desk_rules_free(&r);
	/* keyword matching itself */
	assert_true(desk_keyword_in("a b", "b"));
	assert_false(desk_keyword_in("ab", "b"));
	assert_true(desk_keyword_in("(b)", "b"));
	assert_true(desk_keyword_in("x1 ab b", "b"));
	assert_false(desk_keyword_in("", "b"));
	assert_false(desk_keyword_in("b", ""));
}

static void test_tags_tiers_campaigns_channels(void **state)
{
	(void)state;
	struct desk_rules r;
	rules_ok(RULES, &r);
	enum desk_via via;
	int rule;
	/* tags and tiers: both conditions of rule 0 */
	assert_string_equal(route(&r, "hello", "sms", "gold", "vip", NULL, NULL, &via, &rule),
	                    "vip");
	assert_int_equal(rule, 0);
	assert_string_equal(route(&r, "hello", "sms", "silver", "vip", NULL, NULL, NULL, NULL),
	                    "support");
	assert_string_equal(route(&r, "hello", "sms", "gold", "other", NULL, NULL, NULL, NULL),
	                    "support");
	assert_string_equal(route(&r, "hello", "sms", "gold", NULL, NULL, NULL, NULL, NULL),
	                    "support");
	/* first match wins: a VIP's complaint goes to the VIP team */
	assert_string_equal(route(&r, "complaint!", "sms", "gold", "vip", NULL, NULL, NULL, NULL),
	                    "vip");
	/* campaign rule, channel rule */
	assert_string_equal(route(&r, "thanks", "sms", NULL, NULL, "yalda-1404", NULL, NULL, &rule),
	                    "yalda");
	assert_int_equal(rule, 3);
	assert_string_equal(route(&r, "thanks", "sms", NULL, NULL, "nowruz", NULL, NULL, NULL),
	                    "support");
	assert_string_equal(route(&r, "thanks", "chat", NULL, NULL, NULL, NULL, NULL, &rule),
	                    "chat");
	assert_int_equal(rule, 4);
	/* a campaign's forward team wins over every rule */
	assert_string_equal(
	    route(&r, "complaint", "sms", "gold", "vip", "yalda-1404", "sales", &via, &rule),
	    "sales");
	assert_int_equal(via, DESK_VIA_CAMPAIGN);
	assert_int_equal(rule, -1);
	desk_rules_free(&r);

	/* no default team: the fallback; no rules at all: the same */
	rules_ok("{\"rules\": [{\"team\": \"a\", \"keywords\": [\"x\"]}]}", &r);
	assert_string_equal(route(&r, "y", "sms", NULL, NULL, NULL, NULL, &via, NULL),
	                    DESK_FALLBACK_TEAM);
	assert_int_equal(via, DESK_VIA_FALLBACK);
	desk_rules_free(&r);
	assert_string_equal(route(NULL, "y", "sms", NULL, NULL, NULL, "", &via, NULL),
	                    DESK_FALLBACK_TEAM);
	/* a rule without conditions catches everything after it */
	rules_ok("{\"rules\": [{\"team\": \"a\", \"keywords\": [\"x\"]}, {\"team\": \"all\"},"
	         " {\"team\": \"never\", \"channels\": [\"sms\"]}], \"default_team\": \"d\"}",
	         &r);
	assert_string_equal(route(&r, "x", "sms", NULL, NULL, NULL, NULL, NULL, NULL), "a");
	assert_string_equal(route(&r, "y", "sms", NULL, NULL, NULL, NULL, NULL, &rule), "all");
	assert_int_equal(rule, 1);
	desk_rules_free(&r);
}

static void test_rules_refused(void **state)
{
	(void)state;
	rules_bad("{}", "rules");
	rules_bad("{\"rules\": {}}", "rules");
	rules_bad("{\"rules\": [], \"extra\": 1}", "extra");
	rules_bad("{\"rules\": [], \"default_team\": \"a b\"}", "default_team");
	rules_bad("{\"rules\": [1]}", "rules[0]");
	rules_bad("{\"rules\": [{\"keywords\": [\"x\"]}]}", "rules[0].team");
	rules_bad("{\"rules\": [{\"team\": \"a/b\"}]}", "rules[0].team");
	rules_bad("{\"rules\": [{\"team\": \"a\"}, {\"team\": \"b\", \"keywords\": []}]}",
	          "rules[1].keywords");
	rules_bad("{\"rules\": [{\"team\": \"a\", \"keywords\": [\"  \"]}]}",
	          "rules[0].keywords[0]");
	rules_bad("{\"rules\": [{\"team\": \"a\", \"keywords\": [\"x\", 5]}]}",
	          "rules[0].keywords[1]");
	/* the same keyword once normalised: Arabic and Persian spellings, case */
	rules_bad("{\"rules\": [{\"team\": \"a\", \"keywords\": [\"" FA_COMPLAINT
	          "\", \"" AR_COMPLAINT "\"]}]}",
	          "rules[0].keywords[1]");
	rules_bad("{\"rules\": [{\"team\": \"a\", \"keywords\": [\"Stop\", \"STOP \"]}]}",
	          "rules[0].keywords[1]");
	rules_bad("{\"rules\": [{\"team\": \"a\", \"channels\": [\"fax\"]}]}",
	          "rules[0].channels[0]");
	rules_bad("{\"rules\": [{\"team\": \"a\", \"tags\": [\"a\\nb\"]}]}", "rules[0].tags[0]");
	rules_bad("{\"rules\": [{\"team\": \"a\", \"tiers\": [\"\"]}]}", "rules[0].tiers[0]");
	rules_bad("{\"rules\": [{\"team\": \"a\", \"campaigns\": [\"c 1\"]}]}",
	          "rules[0].campaigns[0]");
	rules_bad("{\"rules\": [{\"team\": \"a\", \"when\": 1}]}", "rules[0].when");
	/* too many rules */
	char *big = xstrdup("{\"rules\": [");
	for (int i = 0; i <= DESK_RULES_MAX; i++) {
		char *n = xasprintf("%s%s{\"team\": \"t%d\"}", big, i ? "," : "", i);
		free(big);
		big = n;
	}
	char *full = xasprintf("%s]}", big);
	rules_bad(full, "rules");
	free(big);
	free(full);
}

static void test_rules_canonical(void **state)
{
	(void)state;
	struct desk_rules r;
	rules_ok("{\"rules\": [{\"name\": \"c\", \"team\": \"complaints\", \"keywords\": "
	         "[\"" AR_COMPLAINT
	         "\", \"Complaint\"], \"tags\": [\"vip\"]}], \"default_team\": \"support\"}",
	         &r);
	json_t *j = desk_rules_json(&r);
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	/* keywords as given (the operator's spelling), normalised only inside */
	assert_string_equal(
	    s, "{\"default_team\":\"support\",\"rules\":[{\"keywords\":[\"" AR_COMPLAINT
	       "\",\"Complaint\"],\"name\":\"c\",\"tags\":[\"vip\"],\"team\":"
	       "\"complaints\"}]}");
	assert_string_equal(r.rule[0].keywords[0], FA_COMPLAINT);
	assert_string_equal(r.rule[0].keywords[1], "complaint");
	/* the canonical form parses again to the same */
	struct desk_rules again;
	char field[96], why[200];
	assert_int_equal(desk_rules_parse(j, &again, field, sizeof field, why, sizeof why), 0);
	json_t *j2 = desk_rules_json(&again);
	char *s2 = json_dumps(j2, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, s2);
	free(s);
	free(s2);
	json_decref(j);
	json_decref(j2);
	desk_rules_free(&again);
	desk_rules_free(&r);
}

static void team_bad(const char *text, const char *path_id, const char *want_field)
{
	struct desk_team t;
	json_t *j = parse(text);
	char field[96] = "", why[200] = "";
	int rc = desk_team_parse(j, path_id, &t, field, sizeof field, why, sizeof why);
	desk_team_free(&t);
	json_decref(j);
	if (rc != -EINVAL)
		fail_msg("team accepted: %s", text);
	if (strcmp(field, want_field) != 0)
		fail_msg("team %s refused for %s (%s), want %s", text, field, why, want_field);
}

static void test_teams(void **state)
{
	(void)state;
	struct desk_team t;
	char field[96], why[200];
	json_t *j = parse("{\"id\": \"complaints\", \"name\": "
	                  "\"\xd8\xb4\xda\xa9\xd8\xa7\xdb\x8c\xd8\xa7\xd8\xaa\","
	                  " \"notify\": {\"webhook\": \"https://ops.example.com/hook\","
	                  " \"email\": \"Desk@Example.COM\", \"chat\": \"-100123\"},"
	                  " \"members\": [\"sara\", \"ali\"]}");
	assert_int_equal(desk_team_parse(j, NULL, &t, field, sizeof field, why, sizeof why), 0);
	assert_string_equal(t.id, "complaints");
	assert_string_equal(t.webhook, "https://ops.example.com/hook");
	assert_string_equal(t.email, "desk@example.com"); /* ASCII lower-cased */
	assert_string_equal(t.chat, "-100123");
	assert_int_equal(t.nmembers, 2);
	json_t *c = desk_team_json(&t);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(c, "notify"), "email")),
	    "desk@example.com");
	json_decref(c);
	desk_team_free(&t);
	json_decref(j);
	/* PUT: the id from the path; no notification at all is fine */
	j = parse("{\"name\": \"x\"}");
	assert_int_equal(desk_team_parse(j, "support", &t, field, sizeof field, why, sizeof why),
	                 0);
	assert_string_equal(t.id, "support");
	assert_null(t.webhook);
	desk_team_free(&t);
	json_decref(j);

	team_bad("{\"name\": \"x\"}", NULL, "id");
	team_bad("{\"id\": \"a b\"}", NULL, "id");
	team_bad("{\"id\": \"a\"}", "b", "id");
	team_bad("{\"id\": \"a\", \"notify\": {\"webhook\": \"ftp://x\"}}", NULL, "notify.webhook");
	team_bad("{\"id\": \"a\", \"notify\": {\"webhook\": \"http://x y\"}}", NULL,
	         "notify.webhook");
	team_bad("{\"id\": \"a\", \"notify\": {\"webhook\": \"https://\"}}", NULL,
	         "notify.webhook");
	team_bad("{\"id\": \"a\", \"notify\": {\"email\": \"nobody\"}}", NULL, "notify.email");
	team_bad("{\"id\": \"a\", \"notify\": {\"chat\": \"x y\"}}", NULL, "notify.chat");
	team_bad("{\"id\": \"a\", \"notify\": {\"pager\": \"1\"}}", NULL, "notify");
	team_bad("{\"id\": \"a\", \"notify\": \"x\"}", NULL, "notify");
	team_bad("{\"id\": \"a\", \"members\": [\"x\", \"x\"]}", NULL, "members[1]");
	team_bad("{\"id\": \"a\", \"members\": [\"\"]}", NULL, "members[0]");
	team_bad("{\"id\": \"a\", \"name\": \"a\\u0001\"}", NULL, "name");
	team_bad("{\"id\": \"a\", \"colour\": \"red\"}", NULL, "colour");
	assert_true(desk_id_valid("A-z_09"));
	char longid[DESK_ID_MAX + 2];
	memset(longid, 'a', sizeof longid - 1);
	longid[DESK_ID_MAX + 1] = '\0';
	assert_false(desk_id_valid(longid));
	longid[DESK_ID_MAX] = '\0';
	assert_true(desk_id_valid(longid));
	assert_false(desk_id_valid(""));
	assert_false(desk_id_valid(NULL));
}

static void test_transitions(void **state)
{
	(void)state;
	assert_int_equal(desk_next_state(DESK_OPEN, DESK_OP_ASSIGN, 0), DESK_ASSIGNED);
	assert_int_equal(desk_next_state(DESK_ASSIGNED, DESK_OP_ASSIGN, 1), DESK_ASSIGNED);
	assert_int_equal(desk_next_state(DESK_ANSWERED, DESK_OP_ASSIGN, 1), DESK_ANSWERED);
	assert_int_equal(desk_next_state(DESK_CLOSED, DESK_OP_ASSIGN, 1), -1);
	assert_int_equal(desk_next_state(DESK_OPEN, DESK_OP_ANSWER, 0), DESK_ANSWERED);
	assert_int_equal(desk_next_state(DESK_CLOSED, DESK_OP_ANSWER, 0), -1);
	assert_int_equal(desk_next_state(DESK_ANSWERED, DESK_OP_CLOSE, 0), DESK_CLOSED);
	assert_int_equal(desk_next_state(DESK_CLOSED, DESK_OP_CLOSE, 0), -1);
	/* the customer writes again */
	assert_int_equal(desk_next_state(DESK_OPEN, DESK_OP_CUSTOMER, 0), DESK_OPEN);
	assert_int_equal(desk_next_state(DESK_ASSIGNED, DESK_OP_CUSTOMER, 1), DESK_ASSIGNED);
	assert_int_equal(desk_next_state(DESK_ANSWERED, DESK_OP_CUSTOMER, 1), DESK_ASSIGNED);
	assert_int_equal(desk_next_state(DESK_ANSWERED, DESK_OP_CUSTOMER, 0), DESK_OPEN);
	assert_int_equal(desk_next_state(DESK_CLOSED, DESK_OP_CUSTOMER, 1), -1);
	char t[128];
	desk_transitions(DESK_OP_ASSIGN, 0, t, sizeof t);
	assert_string_equal(t, "open:assigned,assigned:assigned,answered:answered");
	desk_transitions(DESK_OP_CUSTOMER, 1, t, sizeof t);
	assert_string_equal(t, "open:open,assigned:assigned,answered:assigned");
	desk_transitions(DESK_OP_CLOSE, 0, t, sizeof t);
	assert_string_equal(t, "open:closed,assigned:closed,answered:closed");
	char small[12];
	desk_transitions(DESK_OP_CLOSE, 0, small, sizeof small);
	assert_string_equal(small, "open:closed");
	for (int s = 0; s < DESK_STATES; s++)
		assert_int_equal(desk_state_parse(desk_state_name((enum desk_state)s)), s);
	assert_int_equal(desk_state_parse("reopened"), -1);
}

static void test_first_response_stats(void **state)
{
	(void)state;
	struct desk_frt f;
	desk_frt_compute(NULL, 0, &f);
	assert_int_equal(f.n, 0);
	assert_int_equal(f.p50, 0);
	int64_t one[] = {4200};
	desk_frt_compute(one, 1, &f);
	assert_int_equal(f.p50, 4200);
	assert_int_equal(f.p90, 4200);
	int64_t v[] = {10, 1, 9, 2, 8, 3, 7, 4, 6, 5};
	desk_frt_compute(v, 10, &f);
	assert_int_equal(f.n, 10);
	assert_int_equal(f.p50, 5);
	assert_int_equal(f.p90, 9);
	assert_true(f.mean > 5.49 && f.mean < 5.51);
	int64_t w[] = {100, 200, 300};
	desk_frt_compute(w, 3, &f);
	assert_int_equal(f.p50, 200);
	assert_int_equal(f.p90, 300);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keywords_persian_and_english),
	    cmocka_unit_test(test_tags_tiers_campaigns_channels),
	    cmocka_unit_test(test_rules_refused),
	    cmocka_unit_test(test_rules_canonical),
	    cmocka_unit_test(test_teams),
	    cmocka_unit_test(test_transitions),
	    cmocka_unit_test(test_first_response_stats),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
