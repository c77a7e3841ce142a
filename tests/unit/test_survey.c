/*
 * test_survey.c - surveys: definition validation with field paths, answer
 * parsing per question type ("۵", "5", " 5 ", "five", choices by number and
 * by text with Persian folding, NPS edges), the email reply parser, the
 * conversation steps, the texts sent, the results arithmetic (mean, NPS,
 * rates) and CSV quoting; then the survey stage through the real router
 * (inbound_route.c) against a real redis-server on a free loopback port:
 * an email-channel reply answers every question at once, a reply missing
 * one is re-asked, a provider retry changes nothing (router dedupe, and the
 * stage's own when asked again directly), an SMS conversation with Persian
 * digits and a re-ask, and a text from a contact without a conversation is
 * passed on as a reply.
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

#include <hiredis/hiredis.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "app.h"
#include "club/survey.h"
#include "config.h"
#include "inbound.h"
#include "inbound_route.h"
#include "redis.h"
#include "store.h"
#include "store_surveys.h"
#include "storefx.h"
#include "survey_run.h"
#include "testlib.h"
#include "util.h"

static const char *const DEF_JSON =
    "{\"id\":\"visit\",\"name\":\"After the visit\",\"lang\":\"fa\",\"ttl\":\"2d\","
    "\"intro\":{\"fa\":\"سلام {{first_name}}\",\"en\":\"Hi {{first_name}}\"},"
    "\"thanks\":{\"fa\":\"ممنون\",\"en\":\"Thanks\"},"
    "\"questions\":["
    "{\"id\":\"q1\",\"type\":\"rating\",\"text\":{\"fa\":\"از ۱ تا ۵؟\",\"en\":\"1 to 5?\"}},"
    "{\"id\":\"q2\",\"type\":\"nps\",\"text\":\"0-10?\",\"help\":{\"en\":\"Only 0 to 10 please\"}},"
    "{\"id\":\"q3\",\"type\":\"choice\",\"text\":\"Again?\",\"options\":[{\"fa\":\"بله\",\"en\":"
    "\"Yes\"},{\"fa\":\"خیر\",\"en\":\"No\"},\"کیفیت\"]},"
    "{\"id\":\"q4\",\"type\":\"text\",\"text\":\"Anything else?\"}]}";

static struct survey_def *parse_ok(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	if (!j)
		fail_msg("bad test JSON: %s", je.text);
	struct survey_def *d = NULL;
	char field[96], reason[160];
	int rc = survey_parse(j, 0, &d, field, sizeof field, reason, sizeof reason);
	json_decref(j);
	if (rc != 0)
		fail_msg("parse failed: %s: %s", field, reason);
	return d;
}

/* The field the definition is refused at ("" when it is accepted). */
static void parse_bad(const char *text, const char *want_field, const char *want_reason)
{
	json_t *j = json_loads(text, 0, NULL);
	assert_non_null(j);
	struct survey_def *d = NULL;
	char field[96], reason[160];
	int rc = survey_parse(j, 0, &d, field, sizeof field, reason, sizeof reason);
	json_decref(j);
	if (rc == 0) {
		survey_free(d);
		fail_msg("accepted: %s", text);
	}
	assert_int_equal(rc, -EINVAL);
	assert_null(d);
	if (strcmp(field, want_field) != 0)
		fail_msg("%s: field %s (%s), want %s", text, field, reason, want_field);
	if (want_reason && !strstr(reason, want_reason))
		fail_msg("%s: reason %s, want %s", text, reason, want_reason);
}

static void test_parse(void **state)
{
	(void)state;
	struct survey_def *d = parse_ok(DEF_JSON);
	assert_string_equal(d->id, "visit");
	assert_string_equal(d->name, "After the visit");
	assert_string_equal(d->lang, "fa");
	assert_int_equal(d->ttl_ms, 2LL * 86400 * 1000);
	assert_int_equal(d->nq, 4);
	assert_int_equal(d->q[0].type, SURVEY_Q_RATING);
	assert_int_equal(d->q[1].type, SURVEY_Q_NPS);
	assert_int_equal(d->q[2].type, SURVEY_Q_CHOICE);
	assert_int_equal(d->q[2].noptions, 3);
	assert_int_equal(d->q[3].type, SURVEY_Q_TEXT);
	assert_int_equal(survey_question_index(d, "q3"), 2);
	assert_int_equal(survey_question_index(d, "nope"), -1);
	survey_free(d);

	/* defaults: ids q1.., ttl 2 days, no language */
	d = parse_ok("{\"name\":\"x\",\"questions\":[{\"type\":\"rating\",\"text\":\"a\"},"
	             "{\"type\":\"text\",\"text\":\"b\"}]}");
	assert_string_equal(d->q[0].id, "q1");
	assert_string_equal(d->q[1].id, "q2");
	assert_string_equal(d->id, "");
	assert_string_equal(d->lang, "");
	assert_int_equal(d->ttl_ms, SURVEY_TTL_DEFAULT);
	survey_free(d);

	const char *q = "\"questions\":[{\"type\":\"rating\",\"text\":\"a\"}]";
	char b[512];
	snprintf(b, sizeof b, "{%s}", q);
	parse_bad(b, "name", "required");
	parse_bad("{\"name\":\"x\"}", "questions", "required");
	parse_bad("{\"name\":\"x\",\"questions\":[]}", "questions", NULL);
	snprintf(b, sizeof b, "{\"name\":\"x\",\"colour\":1,%s}", q);
	parse_bad(b, "colour", "unknown key");
	snprintf(b, sizeof b, "{\"name\":\"x\",\"id\":\"a b\",%s}", q);
	parse_bad(b, "id", NULL);
	snprintf(b, sizeof b, "{\"name\":\"x\",\"ttl\":\"soon\",%s}", q);
	parse_bad(b, "ttl", NULL);
	snprintf(b, sizeof b, "{\"name\":\"x\",\"ttl\":\"31d\",%s}", q);
	parse_bad(b, "ttl", "30d");
	snprintf(b, sizeof b, "{\"name\":\"x\",\"lang\":\"f\",%s}", q);
	parse_bad(b, "lang", NULL);
	snprintf(b, sizeof b, "{\"name\":\"x\",\"intro\":{\"fa\":\"  \"},%s}", q);
	parse_bad(b, "intro.fa", "empty");
	snprintf(b, sizeof b, "{\"name\":\"x\",\"thanks\":{\"fa\":\"a\",\"FA\":\"b\"},%s}", q);
	parse_bad(b, "thanks.FA", "twice");
	snprintf(b, sizeof b, "{\"name\":\"x\",\"intro\":{\"f!\":\"a\"},%s}", q);
	parse_bad(b, "intro.f!", "language");
	parse_bad("{\"name\":\"x\",\"questions\":[{\"type\":\"rating\",\"text\":\"a\"},"
	          "{\"type\":\"stars\",\"text\":\"b\"}]}",
	          "questions[1].type", "rating");
	parse_bad("{\"name\":\"x\",\"questions\":[{\"type\":\"rating\"}]}", "questions[0].text",
	          "required");
	parse_bad(
	    "{\"name\":\"x\",\"questions\":[{\"type\":\"rating\",\"text\":{\"fa\":\"{{#a}}\"}}]}",
	    "questions[0].text.fa", "template");
	parse_bad("{\"name\":\"x\",\"questions\":[{\"type\":\"choice\",\"text\":\"a\"}]}",
	          "questions[0].options", "required");
	parse_bad(
	    "{\"name\":\"x\",\"questions\":[{\"type\":\"nps\",\"text\":\"a\",\"options\":[\"a\","
	    "\"b\"]}]}",
	    "questions[0].options", "only a choice");
	parse_bad("{\"name\":\"x\",\"questions\":[{\"type\":\"choice\",\"text\":\"a\",\"options\":["
	          "\"Yes\",{\"fa\":\"بله\",\"en\":\" yes \"}]}]}",
	          "questions[0].options[1]", "same as option 1");
	parse_bad("{\"name\":\"x\",\"questions\":[{\"type\":\"choice\",\"text\":\"a\",\"options\":["
	          "\"a\",\"۳\"]}]}",
	          "questions[0].options[1]", "position");
	parse_bad("{\"name\":\"x\",\"questions\":[{\"type\":\"choice\",\"text\":\"a\",\"options\":["
	          "\"a\"]}]}",
	          "questions[0].options", "2..");
	parse_bad("{\"name\":\"x\",\"questions\":[{\"id\":\"a\",\"type\":\"text\",\"text\":\"a\"},"
	          "{\"id\":\"a\",\"type\":\"text\",\"text\":\"b\"}]}",
	          "questions[1].id", "same id");
	parse_bad("{\"name\":\"x\",\"questions\":[{\"type\":\"text\",\"text\":\"a\",\"hint\":1}]}",
	          "questions[0].hint", "unknown key");

	/* a number option at its own position is fine */
	d = parse_ok("{\"name\":\"x\",\"questions\":[{\"type\":\"choice\",\"text\":\"a\","
	             "\"options\":[\"1\",\"2\",\"3+\"]}]}");
	survey_free(d);
}

struct ans_case {
	int q; /* index in DEF_JSON */
	const char *text;
	int valid;
	long long value;
};

static const struct ans_case ans_cases[] = {
    {0, "5", 1, 5},     {0, "۵", 1, 5}, /* Persian five */
    {0, "٥", 1, 5},                     /* Arabic-Indic five */
    {0, " 5 ", 1, 5},   {0, "\t۳\r\n", 1, 3}, {0, "1", 1, 1},     {0, "five", 0, 0},
    {0, "0", 0, 0},     {0, "6", 0, 0},       {0, "4.5", 0, 0},   {0, "-3", 0, 0},
    {0, "+3", 0, 0},    {0, "5 stars", 0, 0}, {0, "", 0, 0},      {0, "   ", 0, 0},
    {1, "0", 1, 0}, /* NPS edges */
    {1, "10", 1, 10},   {1, "۱۰", 1, 10},     {1, "۰", 1, 0},     {1, "11", 0, 0},
    {1, "-1", 0, 0},    {1, "100", 0, 0},     {2, "1", 1, 1}, /* choice by number */
    {2, "۲", 1, 2},     {2, "3", 1, 3},       {2, "4", 0, 0},     {2, "0", 0, 0},
    {2, "بله", 1, 1},                                             /* by text, any language */
    {2, " YES ", 1, 1}, {2, "no", 1, 2},      {2, "كيفيت", 1, 3}, /* Arabic kaf and yeh fold to
                                                                     Persian */
    {2, "maybe", 0, 0}, {2, "yes no", 0, 0},
};

static void test_answers(void **state)
{
	(void)state;
	struct survey_def *d = parse_ok(DEF_JSON);
	for (size_t i = 0; i < ARRAY_SIZE(ans_cases); i++) {
		const struct ans_case *c = &ans_cases[i];
		struct survey_answer a;
		int rc = survey_answer_parse(&d->q[c->q], c->text, &a);
		if (a.valid != c->valid || (rc == 0) != c->valid ||
		    (c->valid && a.value != c->value))
			fail_msg("case %zu q%d \"%s\": valid %d value %lld, want %d %lld", i,
			         c->q + 1, c->text, a.valid, (long long)a.value, c->valid,
			         c->value);
		if (c->valid) {
			char want[24];
			snprintf(want, sizeof want, "%lld", c->value);
			assert_string_equal(a.text, want);
		}
	}
	/* free text: trimmed, Persian kept as written, empty refused, long cut */
	struct survey_answer a;
	assert_int_equal(survey_answer_parse(&d->q[3], "  خیلی خوب بود ۵ \n", &a), 0);
	assert_string_equal(a.text, "خیلی خوب بود ۵");
	assert_int_equal(survey_answer_parse(&d->q[3], " \t\n", &a), -EINVAL);
	assert_int_equal(a.valid, 0);
	char *big = xmalloc(3001);
	for (int i = 0; i < 1500; i++)
		memcpy(big + 2 * i, "\xd8\xa7", 2); /* alef, 2 bytes */
	big[3000] = '\0';
	assert_int_equal(survey_answer_parse(&d->q[3], big, &a), 0);
	assert_int_equal(strlen(a.text), SURVEY_ANSWER_MAX);
	big[1] = '\0'; /* a broken character */
	assert_int_equal(survey_answer_parse(&d->q[3], big, &a), -EINVAL);
	free(big);
	assert_int_equal(survey_answer_parse(&d->q[0], "\xff", &a), -EINVAL);
	survey_free(d);
}

static void test_email_answers(void **state)
{
	(void)state;
	struct survey_def *d = parse_ok(DEF_JSON);
	char *ans[SURVEY_QUESTIONS_MAX];
	size_t n =
	    survey_email_answers(d, "Hello,\r\n1: 5\r\n2) 9\r\n3. بله\r\n4- عالی بود\r\n", ans);
	assert_int_equal(n, 4);
	assert_string_equal(ans[0], "5");
	assert_string_equal(ans[1], "9");
	assert_string_equal(ans[2], "بله");
	assert_string_equal(ans[3], "عالی بود");
	survey_email_answers_free(d, ans);

	/* Persian digits, Arabic comma, quoted lines, first wins, a signature */
	n = survey_email_answers(
	    d, "۱: ۴\n  ۲ ، ۱۰\n> 3. خیر\n3 = 2\n1: 1\n5: extra\n-- \n4: sig\n", ans);
	assert_int_equal(n, 3);
	assert_string_equal(ans[0], "۴");
	assert_string_equal(ans[1], "۱۰");
	assert_string_equal(ans[2], "2");
	assert_null(ans[3]);
	struct survey_answer a;
	assert_int_equal(survey_answer_parse(&d->q[0], ans[0], &a), 0);
	assert_int_equal(a.value, 4);
	assert_int_equal(survey_answer_parse(&d->q[1], ans[1], &a), 0);
	assert_int_equal(a.value, 10);
	survey_email_answers_free(d, ans);

	/* nothing numbered in a four-question survey: nothing */
	assert_int_equal(survey_email_answers(d, "great service, thanks!", ans), 0);
	for (int i = 0; i < 4; i++)
		assert_null(ans[i]);
	/* a line that only looks numbered */
	assert_int_equal(survey_email_answers(d, "2024 was good\n3:\n", ans), 0);
	survey_email_answers_free(d, ans);
	survey_free(d);

	/* one question: a bare reply is its answer */
	d = parse_ok("{\"name\":\"x\",\"questions\":[{\"type\":\"nps\",\"text\":\"a\"}]}");
	assert_int_equal(survey_email_answers(d, "\n> quoted 3\n ۹ \n", ans), 1);
	assert_string_equal(ans[0], "۹");
	survey_email_answers_free(d, ans);
	survey_free(d);
}

static void test_steps(void **state)
{
	(void)state;
	struct survey_def *d = parse_ok(DEF_JSON);
	enum survey_record rec;
	struct survey_step s;
	survey_step_conv(d, 0, 0, 1, &rec, &s);
	assert_int_equal(rec, SURVEY_REC_VALID);
	assert_int_equal(s.outcome, SURVEY_ASK);
	assert_int_equal(s.next_q, 1);
	assert_int_equal(s.retried, 0);
	survey_step_conv(d, 1, 0, 0, &rec, &s); /* first invalid: re-ask */
	assert_int_equal(rec, SURVEY_REC_NONE);
	assert_int_equal(s.outcome, SURVEY_REASK);
	assert_int_equal(s.next_q, 1);
	assert_int_equal(s.retried, 1);
	survey_step_conv(d, 1, 1, 0, &rec, &s); /* second: recorded invalid, on */
	assert_int_equal(rec, SURVEY_REC_INVALID);
	assert_int_equal(s.outcome, SURVEY_ASK);
	assert_int_equal(s.next_q, 2);
	assert_int_equal(s.retried, 0);
	survey_step_conv(d, 3, 1, 1, &rec, &s); /* the last one */
	assert_int_equal(rec, SURVEY_REC_VALID);
	assert_int_equal(s.outcome, SURVEY_THANKS);
	assert_int_equal(s.next_q, -1);
	survey_step_conv(d, 3, 1, 0, &rec, &s);
	assert_int_equal(rec, SURVEY_REC_INVALID);
	assert_int_equal(s.outcome, SURVEY_THANKS);

	struct survey_answer good = {.valid = 1, .value = 5}, bad = {.valid = 0};
	const struct survey_answer *given[4] = {&good, &bad, NULL, &good};
	int have[4] = {0, 0, 0, 0};
	enum survey_record recs[4];
	survey_step_email(d, have, given, 0, recs, &s);
	assert_int_equal(s.outcome, SURVEY_REASK);
	assert_int_equal(s.retried, 1);
	assert_int_equal(recs[0], SURVEY_REC_VALID);
	assert_int_equal(recs[1], SURVEY_REC_NONE);
	assert_int_equal(recs[2], SURVEY_REC_NONE);
	assert_int_equal(recs[3], SURVEY_REC_VALID);
	int have2[4] = {1, 0, 0, 1};
	survey_step_email(d, have2, given, 1, recs, &s); /* the second reply */
	assert_int_equal(s.outcome, SURVEY_THANKS);
	assert_int_equal(s.next_q, -1);
	assert_int_equal(recs[0], SURVEY_REC_NONE); /* recorded before */
	assert_int_equal(recs[1], SURVEY_REC_INVALID);
	assert_int_equal(recs[2], SURVEY_REC_NONE); /* missing stays unanswered */
	const struct survey_answer *all[4] = {&good, &good, &good, &good};
	survey_step_email(d, have, all, 0, recs, &s);
	assert_int_equal(s.outcome, SURVEY_THANKS);
	for (int i = 0; i < 4; i++)
		assert_int_equal(recs[i], SURVEY_REC_VALID);

	assert_string_equal(survey_outcome_name(SURVEY_REASK), "reask");
	assert_int_equal(survey_outcome_parse("thanks"), SURVEY_THANKS);
	assert_int_equal(survey_outcome_parse("nope"), -1);
	survey_free(d);
}

static void test_texts(void **state)
{
	(void)state;
	struct survey_def *d = parse_ok(DEF_JSON);
	assert_string_equal(survey_text_pick(&d->intro, "fa-IR", "en"), "سلام {{first_name}}");
	assert_string_equal(survey_text_pick(&d->intro, "EN", "fa"), "Hi {{first_name}}");
	assert_string_equal(survey_text_pick(&d->intro, "de", "en"), "Hi {{first_name}}");
	assert_string_equal(survey_text_pick(&d->intro, NULL, NULL), "سلام {{first_name}}");
	assert_null(survey_text_pick(&d->subject, "fa", "fa"));

	json_t *ctx = json_pack("{s:s}", "first_name", "Sara");
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(survey_render_question(d, 0, "en", ctx, "UTC", 1, 0, &b), 0);
	assert_string_equal(b.p, "Hi Sara\n\n1 to 5?");
	buf_reset(&b);
	assert_int_equal(survey_render_question(d, 2, "fa", ctx, "UTC", 0, 0, &b), 0);
	assert_string_equal(b.p, "Again?\n1) بله\n2) خیر\n3) کیفیت");
	buf_reset(&b);
	/* re-ask: the question's help, else the built-in one in the language */
	assert_int_equal(survey_render_question(d, 1, "en", ctx, "UTC", 0, 1, &b), 0);
	assert_string_equal(b.p, "Only 0 to 10 please\n\n0-10?");
	buf_reset(&b);
	assert_int_equal(survey_render_question(d, 0, "fa", ctx, "UTC", 0, 1, &b), 0);
	assert_string_equal(b.p, "لطفاً فقط یک عدد از ۱ تا ۵ بفرستید.\n\nاز ۱ تا ۵؟");
	buf_reset(&b);
	/* a language the survey lacks: its default (fa) */
	assert_int_equal(survey_render_question(d, 0, "de", ctx, "UTC", 0, 1, &b), 0);
	assert_non_null(strstr(b.p, "لطفاً"));
	buf_reset(&b);
	assert_int_equal(survey_render_email(d, "en", ctx, "UTC", NULL, &b), 0);
	assert_non_null(strstr(b.p, "Hi Sara\n\n1. 1 to 5?\n\n2. 0-10?\n\n3. Again?\n   1) Yes\n"));
	assert_non_null(strstr(b.p, "4. Anything else?\n\n"));
	assert_non_null(strstr(b.p, "for example:\n1: 5\n"));
	buf_reset(&b);
	int which[4] = {0, 1, 0, 0};
	assert_int_equal(survey_render_email(d, "en", ctx, "UTC", which, &b), 0);
	assert_non_null(strstr(b.p, "2. Only 0 to 10 please\n   0-10?\n\n"));
	assert_null(strstr(b.p, "1 to 5?"));
	assert_non_null(strstr(b.p, "\n2: 9\n"));
	buf_reset(&b);
	assert_int_equal(survey_render_subject(d, "en", ctx, "UTC", &b), 0);
	assert_string_equal(b.p, "After the visit");
	buf_reset(&b);
	assert_int_equal(survey_render_text(d, &d->thanks, "fa", ctx, "UTC", &b), 0);
	assert_string_equal(b.p, "ممنون");
	buf_reset(&b);
	assert_int_equal(survey_render_text(d, &d->subject, "fa", ctx, "UTC", &b), -ENOENT);
	/* the cap holds */
	struct buf small;
	buf_init(&small, 8);
	assert_true(survey_render_question(d, 2, "en", ctx, "UTC", 1, 0, &small) < 0);
	buf_free(&small);
	buf_free(&b);
	json_decref(ctx);
	assert_int_equal(survey_lang_fa("fa-IR"), 1);
	assert_int_equal(survey_lang_fa("far"), 0);
	survey_free(d);
}

static void test_arithmetic(void **state)
{
	(void)state;
	int64_t r[5] = {1, 0, 0, 0, 1}; /* ratings 1 and 5 */
	assert_true(survey_mean(r, 1, 5) == 3.0);
	int64_t r2[5] = {1, 2, 0, 0, 0}; /* 1, 2, 2 -> 1.666.. */
	assert_true(survey_mean(r2, 1, 5) == 1.67);
	int64_t zero[11] = {0};
	assert_true(survey_mean(zero, 1, 5) == 0);
	int64_t p, m, dt;
	assert_true(survey_nps(zero, &p, &m, &dt) == 0);
	assert_int_equal(p + m + dt, 0);
	int64_t all10[11] = {[10] = 4};
	assert_true(survey_nps(all10, &p, &m, &dt) == 100.0);
	assert_int_equal(p, 4);
	int64_t all0[11] = {[0] = 3};
	assert_true(survey_nps(all0, NULL, NULL, NULL) == -100.0);
	int64_t edges[11] = {[6] = 1, [7] = 1, [8] = 1, [9] = 1}; /* 6 detracts, 9 promotes */
	assert_true(survey_nps(edges, &p, &m, &dt) == 0.0);
	assert_int_equal(p, 1);
	assert_int_equal(m, 2);
	assert_int_equal(dt, 1);
	int64_t mix[11] = {[0] = 1, [7] = 1, [9] = 1, [10] = 1}; /* (2 - 1) / 4 = 25% */
	assert_true(survey_nps(mix, NULL, NULL, NULL) == 25.0);
	int64_t third[11] = {[10] = 2, [5] = 1}; /* (2 - 1) / 3 = 33.3% */
	assert_true(survey_nps(third, NULL, NULL, NULL) == 33.3);
	assert_true(survey_mean(mix, 0, 10) == 6.5);
	assert_true(survey_rate(2, 3) == 0.6667);
	assert_true(survey_rate(1, 0) == 0);
	assert_true(survey_round(-2.25, 1) == -2.3);

	struct buf b;
	buf_init(&b, 0);
	survey_csv_field(&b, "plain");
	buf_puts(&b, "|");
	survey_csv_field(&b, "a,b");
	buf_puts(&b, "|");
	survey_csv_field(&b, "say \"hi\"\nthere");
	buf_puts(&b, "|");
	survey_csv_field(&b, "خیلی خوب");
	buf_puts(&b, "|");
	survey_csv_field(&b, NULL);
	assert_string_equal(b.p, "plain|\"a,b\"|\"say \"\"hi\"\"\nthere\"|خیلی خوب|");
	buf_free(&b);
	struct survey_question q = {.type = SURVEY_Q_TEXT};
	int lo, hi;
	assert_int_equal(survey_value_range(&q, &lo, &hi), 0);
	assert_string_equal(survey_qtype_name(SURVEY_Q_NPS), "nps");
	assert_int_equal(survey_qtype_parse("choice"), SURVEY_Q_CHOICE);
	assert_int_equal(survey_qtype_parse("stars"), -1);
	assert_int_equal(survey_id_valid("after-visit_1", SURVEY_ID_MAX), 1);
	assert_int_equal(survey_id_valid("a/b", SURVEY_ID_MAX), 0);
	assert_int_equal(survey_id_valid("", SURVEY_ID_MAX), 0);
}

/* ---- the stage through the router, against a real Redis ---------------------------- */

struct rt {
	struct storefx fx; /* redis, store, config, loop */
	struct app app;
	int done;
	int replies;
	struct inbound_result res;
	int taken;
	char last_status[16];
};

static void on_reply(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	(void)rep;
	((struct rt *)arg)->replies++;
}

static void on_status(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct rt *t = arg;
	const char *st = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
	                         rep->element[0]->type == REDIS_REPLY_STRING
	                     ? rep->element[0]->str
	                     : "";
	snprintf(t->last_status, sizeof t->last_status, "%s", st);
	t->replies++;
}

static void routed(void *arg, const struct inbound_result *res)
{
	struct rt *t = arg;
	t->res = *res;
	t->done++;
}

static void route(struct rt *t, const char *channel, const char *from, const char *id,
                  const char *text)
{
	struct inbound in;
	memset(&in, 0, sizeof in);
	snprintf(in.channel, sizeof in.channel, "%s", channel);
	snprintf(in.provider, sizeof in.provider, "%s", strcmp(channel, "email") ? "test" : "imap");
	snprintf(in.provider_id, sizeof in.provider_id, "%s", id);
	snprintf(in.from, sizeof in.from, "%s", from);
	snprintf(in.text, sizeof in.text, "%s", text);
	in.received_at = now_ms();
	in.action = INBOUND_REPLY;
	int want = t->done + 1;
	inbound_route(t->fx.st, t->fx.cfg, INBOUND_T_WEBHOOK, &in, NULL, 0, routed, t);
	assert_int_equal(t->done, want - 1); /* never from inside */
	tl_run_until(&t->fx.loop, &t->done, want);
	assert_int_equal(t->res.err, 0);
}

static redisReply *cmd(struct rt *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *rep = redisvCommand(t->fx.sync, fmt, ap);
	va_end(ap);
	assert_non_null(rep);
	return rep;
}

static long long hint(struct rt *t, const char *key, const char *field)
{
	redisReply *rep = cmd(t, "HGET %s %s", key, field);
	long long v = rep->type == REDIS_REPLY_STRING ? strtoll(rep->str, NULL, 10) : -1;
	freeReplyObject(rep);
	return v;
}

static char *hstr(struct rt *t, const char *key, const char *field)
{
	redisReply *rep = cmd(t, "HGET %s %s", key, field);
	char *v = rep->type == REDIS_REPLY_STRING ? xstrdup(rep->str) : NULL;
	freeReplyObject(rep);
	return v;
}

/* The texts of the survey messages queued for contact cid, oldest first,
 * joined by "||". */
static char *messages(struct rt *t, const char *cid, const char *lane)
{
	redisReply *keys = cmd(t, "KEYS clubd:m:*");
	struct buf b;
	buf_init(&b, 0);
	buf_puts(&b, "");
	char *ids[64];
	size_t n = 0;
	for (size_t i = 0; i < keys->elements && n < 64; i++) {
		char *c = hstr(t, keys->element[i]->str, "contact");
		char *cat = hstr(t, keys->element[i]->str, "category");
		char *ln = hstr(t, keys->element[i]->str, "lane");
		if (c && cat && ln && strcmp(c, cid) == 0 && strcmp(cat, "survey") == 0 &&
		    strcmp(ln, lane) == 0)
			ids[n++] = xstrdup(keys->element[i]->str);
		free(c);
		free(cat);
		free(ln);
	}
	freeReplyObject(keys);
	for (size_t i = 0; i < n; i++) /* ids sort by creation */
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(ids[j], ids[i]) < 0) {
				char *x = ids[i];
				ids[i] = ids[j];
				ids[j] = x;
			}
	for (size_t i = 0; i < n; i++) {
		char *tx = hstr(t, ids[i], "text");
		buf_printf(&b, "%s%s", i ? "||" : "", tx ? tx : "");
		free(tx);
		free(ids[i]);
	}
	return buf_steal(&b);
}

static int ends_with(const char *s, const char *end)
{
	size_t n = strlen(s), m = strlen(end);
	return n >= m && strcmp(s + n - m, end) == 0;
}

static int rt_setup(void **state)
{
	struct rt *t = calloc(1, sizeof *t);
	assert_non_null(t);
	storefx_start(&t->fx, "clubd:", 500);
	t->app.loop = &t->fx.loop;
	t->app.cfg = t->fx.cfg;
	t->app.redis = t->fx.r;
	t->app.st = t->fx.st;
	survey_stage_install(&t->app);
	assert_non_null(inbound_stage_get(INBOUND_STAGE_SURVEY));
	*state = t;
	return 0;
}

static int rt_teardown(void **state)
{
	struct rt *t = *state;
	inbound_stage_set(INBOUND_STAGE_SURVEY, NULL);
	storefx_stop(&t->fx);
	free(t);
	return 0;
}

/* A contact with one address, and the survey's conversation opened for it
 * in mode (as a launch does). */
static void contact_in_survey(struct rt *t, const char *cid, const char *kind, const char *addr,
                              const char *lang, const char *mode)
{
	freeReplyObject(cmd(t, "HSET clubd:c:%s id %s a:%s %s lang %s created 1 v 1", cid, cid,
	                    kind, addr, lang));
	freeReplyObject(cmd(t, "SET clubd:ix:%s:%s %s", kind, addr, cid));
	freeReplyObject(cmd(t, "ZADD clubd:contacts 0 %s", cid));
	struct store_survey_start s = {.sid = "visit",
	                               .cid = cid,
	                               .channel = kind,
	                               .mode = mode,
	                               .now = now_ms(),
	                               .ttl_ms = 3600000};
	int want = t->replies + 1;
	store_survey_start(t->fx.st, &s, on_reply, t);
	tl_run_until(&t->fx.loop, &t->replies, want);
}

static void stage_done(void *arg, int taken)
{
	struct rt *t = arg;
	t->taken = taken;
	t->done++;
}

static void test_stage_email_and_sms(void **state)
{
	struct rt *t = *state;
	int want = t->replies + 1;
	store_survey_create(t->fx.st, "visit", DEF_JSON, now_ms(), on_reply, t);
	tl_run_until(&t->fx.loop, &t->replies, want);

	/* ---- email: every answer in one reply ---- */
	const char *sara = "01JABCDEFGHJKMNPQRSTVWXYZ0";
	contact_in_survey(t, sara, "email", "sara@example.com", "en", "email");
	route(t, "email", "sara@example.com", "<r1@mail.example>",
	      "Here you go:\n1: ۵\n2) 9\n3. بله\n4- The coffee was cold\n\n> 1. 1 to 5?\n");
	assert_string_equal(t->res.action, "taken");
	assert_string_equal(t->res.contact_id, sara);
	char k[128];
	snprintf(k, sizeof k, "clubd:sva:visit:%s", sara);
	assert_int_equal(hint(t, k, "q1"), 5);
	assert_int_equal(hint(t, k, "q2"), 9);
	assert_int_equal(hint(t, k, "q3"), 1);
	char *txt = hstr(t, k, "q4");
	assert_non_null(txt);
	assert_string_equal(txt, "The coffee was cold");
	free(txt);
	assert_true(hint(t, k, "completed") > 0);
	assert_int_equal(hint(t, "clubd:svs:visit", "completed"), 1);
	assert_int_equal(hint(t, "clubd:svs:visit", "started"), 1);
	assert_int_equal(hint(t, "clubd:svs:visit", "q1:v:5"), 1);
	assert_int_equal(hint(t, "clubd:svs:visit", "q2:v:9"), 1);
	assert_int_equal(hint(t, "clubd:svs:visit", "q3:v:1"), 1);
	assert_int_equal(hint(t, "clubd:svs:visit", "q4:n"), 1);
	redisReply *rep = cmd(t, "EXISTS clubd:sv:%s", sara);
	assert_int_equal(rep->integer, 0); /* closed */
	freeReplyObject(rep);
	rep = cmd(t, "SISMEMBER clubd:eng:answered:visit %s", sara);
	assert_int_equal(rep->integer, 1);
	freeReplyObject(rep);
	rep = cmd(t, "XLEN clubd:tl:%s", sara);
	assert_int_equal(rep->integer, 4); /* one answer entry per question */
	freeReplyObject(rep);
	rep = cmd(t, "XLEN clubd:svt:visit:q4");
	assert_int_equal(rep->integer, 1);
	freeReplyObject(rep);
	char *msgs = messages(t, sara, "email");
	assert_string_equal(msgs, "Thanks");
	free(msgs);

	/* the provider delivers the same email again: nothing changes */
	route(t, "email", "sara@example.com", "<r1@mail.example>", "1: 1\n2: 0\n");
	assert_int_equal(t->res.duplicate, 1);
	assert_int_equal(hint(t, "clubd:svs:visit", "q1:v:5"), 1);
	assert_int_equal(hint(t, "clubd:svs:visit", "q1:v:1"), -1);
	/* a later text is an ordinary reply: the conversation is over */
	route(t, "email", "sara@example.com", "<r2@mail.example>", "1: 1");
	assert_string_equal(t->res.action, "reply");

	/* ---- email: a missing and an invalid answer are asked again once ---- */
	const char *reza = "01JABCDEFGHJKMNPQRSTVWXYZ1";
	contact_in_survey(t, reza, "email", "reza@example.com", "fa", "email");
	route(t, "email", "reza@example.com", "<r3@mail.example>", "۱: ۴\n۲: یازده\n");
	assert_string_equal(t->res.action, "taken");
	snprintf(k, sizeof k, "clubd:sva:visit:%s", reza);
	assert_int_equal(hint(t, k, "q1"), 4);
	assert_int_equal(hint(t, k, "q2"), -1);
	snprintf(k, sizeof k, "clubd:sv:%s", reza);
	assert_int_equal(hint(t, k, "retried"), 1);
	msgs = messages(t, reza, "email");
	assert_non_null(
	    strstr(msgs, "پاسخ این پرسش‌ها را نتوانستیم بخوانیم"));
	assert_non_null(
	    strstr(msgs, "2. Only 0 to 10 please\n   0-10?")); /* its help, in en only */
	assert_non_null(strstr(msgs, "4. لطفاً پاسخ خود را بنویسید.\n   Anything else?"));
	assert_null(strstr(msgs, "1. ")); /* question 1 was answered */
	free(msgs);
	route(t, "email", "reza@example.com", "<r4@mail.example>", "2: ده\n3: خير\n");
	snprintf(k, sizeof k, "clubd:sva:visit:%s", reza);
	char *v = hstr(t, k, "q2");
	assert_non_null(v);
	assert_string_equal(v, "invalid");
	free(v);
	assert_int_equal(hint(t, k, "q3"), 2);  /* خير with Arabic yeh */
	assert_int_equal(hint(t, k, "q4"), -1); /* never given: unanswered */
	assert_int_equal(hint(t, "clubd:svs:visit", "q2:invalid"), 1);
	assert_int_equal(hint(t, "clubd:svs:visit", "completed"), 2);
	msgs = messages(t, reza, "email");
	assert_true(ends_with(msgs, "||ممنون"));
	free(msgs);

	/* ---- SMS: one question at a time, Persian digits, one re-ask ---- */
	const char *ali = "01JABCDEFGHJKMNPQRSTVWXYZ2";
	contact_in_survey(t, ali, "sms", "+989121110000", "fa", "conv");
	route(t, "sms", "+989121110000", "s-1", "۵");
	assert_string_equal(t->res.action, "taken");
	route(t, "sms", "+989121110000", "s-2", "خیلی");
	snprintf(k, sizeof k, "clubd:sv:%s", ali);
	assert_int_equal(hint(t, k, "q"), 1);
	assert_int_equal(hint(t, k, "retried"), 1);
	route(t, "sms", "+989121110000", "s-3", " ۱۰ ");
	assert_int_equal(hint(t, k, "q"), 2);
	assert_int_equal(hint(t, k, "retried"), 0);
	msgs = messages(t, ali, "sms");
	assert_string_equal(msgs, "0-10?||Only 0 to 10 please\n\n0-10?||"
	                          "Again?\n1) بله\n2) خیر\n3) کیفیت");
	free(msgs);

	/* the stage asked again directly with a provider id it already took
	 * (a retry after a crash before the router recorded it): taken, no
	 * second effect, the same message (idempotency key) */
	struct inbound in;
	memset(&in, 0, sizeof in);
	snprintf(in.channel, sizeof in.channel, "sms");
	snprintf(in.provider, sizeof in.provider, "test");
	snprintf(in.provider_id, sizeof in.provider_id, "s-3");
	snprintf(in.from, sizeof in.from, "+989121110000");
	snprintf(in.text, sizeof in.text, "۱۰");
	const struct inbound_stage *st = inbound_stage_get(INBOUND_STAGE_SURVEY);
	want = t->done + 1;
	st->run(st->ctx, &in, ali, stage_done, t);
	assert_int_equal(t->done, want - 1);
	tl_run_until(&t->fx.loop, &t->done, want);
	assert_int_equal(t->taken, 1);
	assert_int_equal(hint(t, k, "q"), 2);
	assert_int_equal(hint(t, "clubd:svs:visit", "q2:v:10"), 1);
	msgs = messages(t, ali, "sms");
	assert_int_equal(strstr(msgs, "Again?") - msgs,
	                 (long)strlen(msgs) - (long)strlen("Again?\n1) بله\n2) خیر\n3) کیفیت"));
	free(msgs);

	route(t, "sms", "+989121110000", "s-4", "كيفيت");
	route(t, "sms", "+989121110000", "s-5", "  ");
	route(t, "sms", "+989121110000", "s-6", "عالی");
	snprintf(k, sizeof k, "clubd:sva:visit:%s", ali);
	assert_int_equal(hint(t, k, "q1"), 5);
	assert_int_equal(hint(t, k, "q2"), 10);
	assert_int_equal(hint(t, k, "q3"), 3);
	v = hstr(t, k, "q4");
	assert_non_null(v);
	assert_string_equal(v, "عالی");
	free(v);
	assert_int_equal(hint(t, "clubd:svs:visit", "completed"), 3);
	rep = cmd(t, "EXISTS clubd:sv:%s", ali);
	assert_int_equal(rep->integer, 0);
	freeReplyObject(rep);

	/* a sender without a conversation: passed on, recorded as a reply */
	route(t, "sms", "+989129999999", "s-7", "5");
	assert_string_equal(t->res.action, "reply");
	/* a second launch to a contact with one open is refused by 'start' */
	const char *mina = "01JABCDEFGHJKMNPQRSTVWXYZ3";
	contact_in_survey(t, mina, "sms", "+989121110003", "fa", "conv");
	contact_in_survey(t, mina, "sms", "+989121110003", "fa", "conv"); /* again: already */
	assert_int_equal(hint(t, "clubd:svs:visit", "sent"), 4);
	assert_int_equal(hint(t, "clubd:svs:visit", "skipped_already"), 1);

	/* a step read against a conversation that moved on is refused */
	struct store_survey_rec rec = {"q1", "num", "2"};
	char started[32];
	snprintf(k, sizeof k, "clubd:sv:%s", mina);
	snprintf(started, sizeof started, "%lld", hint(t, k, "started"));
	struct store_survey_answer sa = {.cid = mina,
	                                 .ref = "test:stale-1",
	                                 .sid = "visit",
	                                 .dedupe_ttl_s = 60,
	                                 .now = now_ms(),
	                                 .expect_q = "1",
	                                 .expect_retried = "0",
	                                 .expect_started = started,
	                                 .next_q = 2,
	                                 .next_retried = 0,
	                                 .outcome = "visit|ask|2|",
	                                 .channel = "sms",
	                                 .timeline_max = 10,
	                                 .recs = &rec,
	                                 .nrecs = 1};
	t->last_status[0] = '\0';
	want = t->replies + 1;
	store_survey_answer(t->fx.st, &sa, on_status, t);
	tl_run_until(&t->fx.loop, &t->replies, want);
	assert_string_equal(t->last_status, "stale");
	snprintf(k, sizeof k, "clubd:sva:visit:%s", mina);
	assert_int_equal(hint(t, k, "q1"), -1);
	/* as read: applied once, then remembered */
	sa.expect_q = "0";
	want = t->replies + 1;
	store_survey_answer(t->fx.st, &sa, on_status, t);
	tl_run_until(&t->fx.loop, &t->replies, want);
	assert_string_equal(t->last_status, "ok");
	assert_int_equal(hint(t, k, "q1"), 2);
	want = t->replies + 1;
	store_survey_answer(t->fx.st, &sa, on_status, t);
	tl_run_until(&t->fx.loop, &t->replies, want);
	assert_string_equal(t->last_status, "dup");
	assert_int_equal(hint(t, "clubd:svs:visit", "q1:v:2"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_answers),
	    cmocka_unit_test(test_email_answers),
	    cmocka_unit_test(test_steps),
	    cmocka_unit_test(test_texts),
	    cmocka_unit_test(test_arithmetic),
	    cmocka_unit_test_setup_teardown(test_stage_email_and_sms, rt_setup, rt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
