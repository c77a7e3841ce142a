/*
 * test_inbound.c - the inbound keyword router (English and Persian keywords,
 * case, white space, Arabic yeh/kaf, ZWNJ, digits, near misses) and the
 * normalisation of an inbound SMS (E.164 sender, UTF-8 and size limits,
 * provider ids, received-time forms).
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

#include "inbound.h"

struct kw_case {
	const char *text;
	enum inbound_action want;
};

static const struct kw_case kw_cases[] = {
    {"STOP", INBOUND_OPT_OUT},
    {"stop", INBOUND_OPT_OUT},
    {"  STOP ", INBOUND_OPT_OUT},
    {"\tStOp\r\n", INBOUND_OPT_OUT},
    {"\xc2\xa0stop\xe3\x80\x80", INBOUND_OPT_OUT}, /* NBSP, ideographic space */
    {"UNSUBSCRIBE", INBOUND_OPT_OUT},
    {"Cancel", INBOUND_OPT_OUT},
    {"end", INBOUND_OPT_OUT},
    {"QUIT", INBOUND_OPT_OUT},
    {"لغو", INBOUND_OPT_OUT},
    {" لغو  ", INBOUND_OPT_OUT},
    {"توقف", INBOUND_OPT_OUT},
    {"START", INBOUND_OPT_IN},
    {"start ", INBOUND_OPT_IN},
    {"عضویت", INBOUND_OPT_IN},
    {"عضويت", INBOUND_OPT_IN}, /* Arabic yeh U+064A folds to Persian yeh */
    {"HELP", INBOUND_HELP},
    {"راهنما", INBOUND_HELP},
    /* near misses */
    {"don't stop", INBOUND_REPLY},
    {"stop!", INBOUND_REPLY},
    {"stopp", INBOUND_REPLY},
    {"sto p", INBOUND_REPLY},
    {"STOP STOP", INBOUND_REPLY},
    {"لغو کن", INBOUND_REPLY},
    {"ل\xe2\x80\x8cغو", INBOUND_REPLY},    /* ZWNJ is kept: not the keyword */
    {"راهنما\xe2\x80\x8c", INBOUND_REPLY}, /* trailing ZWNJ is not white space */
    {"help me", INBOUND_REPLY},
    {"starts", INBOUND_REPLY},
    {"", INBOUND_REPLY},
    {"   ", INBOUND_REPLY},
    /* digits are irrelevant to keywords, Persian or not */
    {"۱۲۳", INBOUND_REPLY},
    {"stop ۱", INBOUND_REPLY},
    {"\xff\xfe", INBOUND_REPLY}, /* invalid UTF-8 */
    {"خیلی ممنون", INBOUND_REPLY},
};

static void test_classify_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof kw_cases / sizeof kw_cases[0]; i++) {
		enum inbound_action got = inbound_classify(kw_cases[i].text);
		if (got != kw_cases[i].want)
			fail_msg("case %zu %s: got %s want %s", i, kw_cases[i].text,
			         inbound_action_name(got), inbound_action_name(kw_cases[i].want));
	}
	assert_int_equal(inbound_classify(NULL), INBOUND_REPLY);
}

static void test_action_names(void **state)
{
	(void)state;
	assert_string_equal(inbound_action_name(INBOUND_REPLY), "reply");
	assert_string_equal(inbound_action_name(INBOUND_OPT_OUT), "opt_out");
	assert_string_equal(inbound_action_name(INBOUND_OPT_IN), "opt_in");
	assert_string_equal(inbound_action_name(INBOUND_HELP), "help");
}

static int init(struct inbound *in, const char *id, const char *from, const char *text,
                const char *received, const char **field)
{
	const char *why = NULL;
	*field = NULL;
	int rc = inbound_sms_init(in, "kannel", id, from, "30001234", text, text ? strlen(text) : 0,
	                          received, 1700000000000, "IR", field, &why);
	if (rc < 0)
		assert_non_null(why);
	return rc;
}

static void test_sms_init(void **state)
{
	(void)state;
	struct inbound in;
	const char *field;
	assert_int_equal(init(&in, "abc-1", "0912 123 4567", "لغو", NULL, &field), 0);
	assert_string_equal(in.from, "+989121234567");
	assert_string_equal(in.channel, "sms");
	assert_string_equal(in.provider, "kannel");
	assert_string_equal(in.provider_id, "abc-1");
	assert_string_equal(in.to, "30001234");
	assert_string_equal(in.text, "لغو");
	assert_int_equal(in.received_at, 1700000000000);
	assert_int_equal(in.action, INBOUND_OPT_OUT);

	/* Persian digits in the sender */
	assert_int_equal(init(&in, "x", "۰۹۱۲۱۲۳۴۵۶۷", "hi", NULL, &field), 0);
	assert_string_equal(in.from, "+989121234567");
	assert_int_equal(in.action, INBOUND_REPLY);

	assert_int_equal(init(&in, "x", "abc", "hi", NULL, &field), -EINVAL);
	assert_string_equal(field, "from");
	assert_int_equal(init(&in, "x", NULL, "hi", NULL, &field), -EINVAL);
	assert_string_equal(field, "from");
	assert_int_equal(init(&in, "", "09121234567", "hi", NULL, &field), -EINVAL);
	assert_string_equal(field, "id");
	assert_int_equal(init(&in, "a b", "09121234567", "hi", NULL, &field), -EINVAL);
	assert_string_equal(field, "id");
	assert_int_equal(init(&in, NULL, "09121234567", "hi", NULL, &field), -EINVAL);
	assert_int_equal(init(&in, "x", "09121234567", NULL, NULL, &field), -EINVAL);
	assert_string_equal(field, "text");
	assert_int_equal(init(&in, "x", "09121234567", "\xc3\x28", NULL, &field), -EINVAL);
	assert_string_equal(field, "text");

	/* embedded NUL */
	const char *why;
	assert_int_equal(inbound_sms_init(&in, "kannel", "x", "09121234567", "", "a\0b", 3, NULL, 1,
	                                  "IR", &field, &why),
	                 -EINVAL);
	assert_string_equal(field, "text");

	/* size limit: exactly 4096 bytes is fine, one more is not */
	char *big = malloc(INBOUND_TEXT_MAX + 2);
	assert_non_null(big);
	memset(big, 'a', INBOUND_TEXT_MAX + 1);
	big[INBOUND_TEXT_MAX] = '\0';
	assert_int_equal(init(&in, "x", "09121234567", big, NULL, &field), 0);
	assert_int_equal(strlen(in.text), INBOUND_TEXT_MAX);
	big[INBOUND_TEXT_MAX] = 'a';
	big[INBOUND_TEXT_MAX + 1] = '\0';
	assert_int_equal(init(&in, "x", "09121234567", big, NULL, &field), -EINVAL);
	assert_string_equal(field, "text");
	free(big);

	char longid[INBOUND_ID_MAX + 2];
	memset(longid, 'i', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	assert_int_equal(init(&in, longid, "09121234567", "hi", NULL, &field), -EINVAL);
	longid[INBOUND_ID_MAX] = '\0';
	assert_int_equal(init(&in, longid, "09121234567", "hi", NULL, &field), 0);
}

static void test_times(void **state)
{
	(void)state;
	int64_t ms = 0;
	assert_int_equal(inbound_parse_time("2026-11-23 10:05", &ms), 0);
	assert_int_equal(ms, INT64_C(1795428300000));
	assert_int_equal(inbound_parse_time("2026-11-23 10:05:07", &ms), 0);
	assert_int_equal(ms, INT64_C(1795428307000));
	assert_int_equal(inbound_parse_time("2026-11-23T10:05:07Z", &ms), 0);
	assert_int_equal(ms, INT64_C(1795428307000));
	assert_int_equal(inbound_parse_time("1795428307", &ms), 0);
	assert_int_equal(ms, INT64_C(1795428307000));
	assert_int_equal(inbound_parse_time("yesterday", &ms), -1);
	assert_int_equal(inbound_parse_time("2026-11-23 10:05x", &ms), -1);
	assert_int_equal(inbound_parse_time("", &ms), -1);

	struct inbound in;
	const char *field;
	assert_int_equal(init(&in, "x", "09121234567", "hi", "2026-11-23 10:05", &field), 0);
	assert_int_equal(in.received_at, INT64_C(1795428300000));
	assert_int_equal(init(&in, "x", "09121234567", "hi", "soon", &field), -EINVAL);
	assert_string_equal(field, "received_at");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_classify_table),
	    cmocka_unit_test(test_action_names),
	    cmocka_unit_test(test_sms_init),
	    cmocka_unit_test(test_times),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
