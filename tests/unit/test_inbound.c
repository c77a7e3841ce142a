/*
 * test_inbound.c - the inbound keyword router (English and Persian keywords,
 * case, white space, Arabic yeh/kaf, ZWNJ, digits, near misses) and the
 * normalisation of an inbound SMS (E.164 sender, UTF-8 and size limits,
 * provider ids, received-time forms); configurable keyword lists and the
 * confirmation language; the wire parsers (form bodies, charsets, Kannel
 * MO, Telegram updates, Kavenegar receive answers); the stage slots; and
 * the router (inbound_route.c) against a real redis-server on a free
 * loopback port: stages in router order, duplicates, keyword confirmations,
 * the getUpdates offset and a stage's error.
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

#include "config.h"
#include "inbound.h"
#include "inbound_route.h"
#include "redis.h"
#include "store.h"
#include "storefx.h"
#include "testlib.h"
#include "util.h"

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
	int64_t at = 1700000000000;
	if (received && inbound_parse_time(received, &at) < 0) {
		*field = "received_at";
		return -EINVAL;
	}
	int rc = inbound_sms_init(in, "kannel", id, from, "30001234", text, text ? strlen(text) : 0,
	                          at, "IR", field, &why);
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
	assert_int_equal(in.action, INBOUND_REPLY); /* classified by the router */
	assert_int_equal(inbound_classify(in.text), INBOUND_OPT_OUT);

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
	assert_int_equal(inbound_sms_init(&in, "kannel", "x", "09121234567", "", "a\0b", 3, 1, "IR",
	                                  &field, &why),
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
	assert_int_equal(inbound_parse_time("2026-11-23T10:05:07Z", &ms), -1); /* store.h's */
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

static void test_keyword_lists(void **state)
{
	(void)state;
	struct inbound_keywords k;
	char why[160];
	/* configurable lists, normalised like the texts (Arabic kaf/yeh, case) */
	assert_int_equal(inbound_keywords_init(&k, "STOP, Basta ,كنسل", "start,عضويت",
	                                       "HELP,راهنما", why, sizeof why),
	                 0);
	assert_int_equal(k.n[0], 3);
	int fa = -1;
	assert_int_equal(inbound_classify_kw(&k, " basta ", &fa), INBOUND_OPT_OUT);
	assert_int_equal(fa, 0);
	assert_int_equal(inbound_classify_kw(&k, "کنسل", &fa), INBOUND_OPT_OUT); /* Persian kaf */
	assert_int_equal(fa, 1);
	assert_int_equal(inbound_classify_kw(&k, "كنسل", &fa), INBOUND_OPT_OUT); /* Arabic kaf */
	assert_int_equal(inbound_classify_kw(&k, "عضویت", &fa), INBOUND_OPT_IN);
	assert_int_equal(fa, 1);
	assert_int_equal(inbound_classify_kw(&k, "لغو", &fa), INBOUND_REPLY); /* not in this list */
	assert_int_equal(fa, 0);
	assert_int_equal(inbound_classify_kw(&k, "QUIT", NULL), INBOUND_REPLY);
	assert_int_equal(inbound_classify_kw(&k, "Help", &fa), INBOUND_HELP);
	assert_int_equal(fa, 0);
	assert_int_equal(inbound_classify_kw(&k, NULL, &fa), INBOUND_REPLY);
	inbound_keywords_free(&k);

	/* the built-in lists, Persian flag */
	assert_int_equal(inbound_classify_kw(NULL, " لغو ", &fa), INBOUND_OPT_OUT);
	assert_int_equal(fa, 1);
	assert_int_equal(inbound_classify_kw(NULL, "STOP", &fa), INBOUND_OPT_OUT);
	assert_int_equal(fa, 0);

	/* refused lists */
	assert_int_equal(inbound_keywords_init(&k, "STOP,,END", "", "", why, sizeof why), -EINVAL);
	assert_non_null(strstr(why, "stop_keywords"));
	inbound_keywords_free(&k);
	assert_int_equal(inbound_keywords_init(&k, "STOP", "\xff", "", why, sizeof why), -EINVAL);
	inbound_keywords_free(&k);
	char many[40 * 4];
	many[0] = '\0';
	for (int i = 0; i < INBOUND_KW_MAX + 1; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many), "%sw%d", i ? "," : "", i);
	assert_int_equal(inbound_keywords_init(&k, many, "", "", why, sizeof why), -EINVAL);
	inbound_keywords_free(&k);

	assert_int_equal(inbound_reply_persian(1, "en"), 1);
	assert_int_equal(inbound_reply_persian(0, "fa"), 1);
	assert_int_equal(inbound_reply_persian(0, "fa-IR"), 1);
	assert_int_equal(inbound_reply_persian(0, "fr"), 0);
	assert_int_equal(inbound_reply_persian(0, "far"), 0);
	assert_int_equal(inbound_reply_persian(0, ""), 0);
	assert_int_equal(inbound_reply_persian(0, NULL), 0);
}

static void test_form(void **state)
{
	(void)state;
	struct inbound_form f;
	const char body[] = "From=%2B989121234567&Body=%D9%84%D8%BA%D9%88+now&Empty=&Flag&&To=3000";
	assert_int_equal(inbound_form_parse(&f, body, strlen(body)), 0);
	assert_int_equal(f.n, 5);
	assert_string_equal(inbound_form_get(&f, "From"), "+989121234567");
	assert_string_equal(inbound_form_get(&f, "Body"), "لغو now");
	assert_string_equal(inbound_form_get(&f, "Empty"), "");
	assert_string_equal(inbound_form_get(&f, "Flag"), "");
	assert_string_equal(inbound_form_get(&f, "To"), "3000");
	assert_null(inbound_form_get(&f, "from"));
	inbound_form_free(&f);

	static const char *const bad[] = {"a=%zz", "a=%4", "a=%00", "%=1", "a=1%"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(inbound_form_parse(&f, bad[i], strlen(bad[i])), -EINVAL);
		inbound_form_free(&f);
	}
	assert_int_equal(inbound_form_parse(&f, "a=1\0b=2", 7), -EINVAL);
	inbound_form_free(&f);
	char big[INBOUND_FORM_MAX * 4 + 8];
	for (int i = 0; i <= INBOUND_FORM_MAX; i++)
		memcpy(big + 4 * i, "a=1&", 4);
	big[4 * (INBOUND_FORM_MAX + 1)] = '\0';
	assert_int_equal(inbound_form_parse(&f, big, strlen(big)), -E2BIG);
	inbound_form_free(&f);
	assert_int_equal(inbound_form_parse(&f, "", 0), 0);
	assert_int_equal(f.n, 0);
}

static void test_charsets(void **state)
{
	(void)state;
	char out[64];
	size_t n = 0;
	/* "لغو 1" in UTF-16BE: NUL bytes inside */
	static const char u16[] = "\x06\x44\x06\x3a\x06\x48\x00\x20\x00\x31";
	assert_int_equal(inbound_to_utf8("UTF-16BE", u16, 10, out, sizeof out, &n), 0);
	assert_string_equal(out, "لغو 1");
	assert_int_equal(n, strlen("لغو 1"));
	/* windows-1256: Arabic letters in one byte each (lam 0xE1, ghain 0xDB, waw 0xE6) */
	assert_int_equal(inbound_to_utf8("windows-1256", "\xe1\xdb\xe6", 3, out, sizeof out, &n),
	                 0);
	assert_string_equal(out, "لغو");
	assert_int_equal(inbound_to_utf8("ISO-8859-1", "caf\xe9", 4, out, sizeof out, &n), 0);
	assert_string_equal(out, "café");
	/* malformed input, unknown charset, too long */
	assert_int_equal(inbound_to_utf8("UTF-16BE", "\xd8\x00", 2, out, sizeof out, &n), -EINVAL);
	assert_int_equal(inbound_to_utf8("UTF-8", "\xff", 1, out, sizeof out, &n), -EINVAL);
	assert_int_equal(inbound_to_utf8("no-such-charset", "a", 1, out, sizeof out, &n), -EINVAL);
	assert_int_equal(inbound_to_utf8("UTF-16BE", u16, 10, out, 4, &n), -E2BIG);
}

static void test_kannel(void **state)
{
	(void)state;
	struct inbound in;
	const char *field = NULL, *why = NULL;
	static const char u16[] = "\x06\x44\x06\x3a\x06\x48";
	struct inbound_kannel_mo mo = {.from = "09121234567",
	                               .to = "3000",
	                               .id = "k-1",
	                               .ts = "2026-11-23 10:05:07",
	                               .coding = "2",
	                               .text = u16,
	                               .text_len = 6,
	                               .binary_safe = 1};
	assert_int_equal(inbound_kannel_parse(&in, &mo, 5, "IR", &field, &why), 0);
	assert_string_equal(in.text, "لغو");
	assert_string_equal(in.provider, "kannel");
	assert_string_equal(in.from, "+989121234567");
	assert_int_equal(in.received_at, INT64_C(1795428307000));
	/* the same through a query: refused with a hint */
	mo.binary_safe = 0;
	assert_int_equal(inbound_kannel_parse(&in, &mo, 5, "IR", &field, &why), -EINVAL);
	assert_string_equal(field, "text");
	assert_non_null(strstr(why, "post-url"));
	/* UTF-8 by default; a bad ts is ignored; 8-bit binary refused */
	struct inbound_kannel_mo m2 = {
	    .from = "+989121234567", .id = "k-2", .ts = "soon", .text = "stop", .text_len = 4};
	assert_int_equal(inbound_kannel_parse(&in, &m2, 77, "IR", &field, &why), 0);
	assert_int_equal(in.received_at, 77);
	m2.coding = "1";
	assert_int_equal(inbound_kannel_parse(&in, &m2, 77, "IR", &field, &why), -EINVAL);
	m2.coding = "0";
	m2.charset = "8-BIT";
	assert_int_equal(inbound_kannel_parse(&in, &m2, 77, "IR", &field, &why), -EINVAL);
	m2.charset = "windows-1256";
	m2.text = "\xe1\xdb\xe6";
	m2.text_len = 3;
	assert_int_equal(inbound_kannel_parse(&in, &m2, 77, "IR", &field, &why), 0);
	assert_string_equal(in.text, "لغو");
	m2.coding = "7";
	assert_int_equal(inbound_kannel_parse(&in, &m2, 77, "IR", &field, &why), -EINVAL);
	assert_string_equal(field, "coding");
}

static json_t *j(const char *s)
{
	json_error_t e;
	json_t *o = json_loads(s, 0, &e);
	if (!o)
		fail_msg("bad test JSON: %s", e.text);
	return o;
}

static void test_telegram(void **state)
{
	(void)state;
	struct inbound_tg_update u;
	struct inbound in;
	const char *field = NULL, *why = NULL;
	json_t *o = j("{\"update_id\": 900, \"message\": {\"message_id\": 7, \"date\": 1795428300,"
	              "\"chat\": {\"id\": 5551234, \"type\": \"private\"},"
	              "\"from\": {\"id\": 5551234, \"is_bot\": false, \"first_name\": \"Sara\"},"
	              "\"text\": \"لغو\"}}");
	assert_int_equal(inbound_tg_parse(o, &u), 0);
	assert_int_equal(u.kind, INBOUND_TG_TEXT);
	assert_int_equal(u.update_id, 900);
	assert_int_equal(u.chat_id, 5551234);
	assert_int_equal(inbound_tg_inbound(&in, &u, "chat", "123456", 1, "IR", &field, &why), 0);
	assert_string_equal(in.channel, "chat");
	assert_string_equal(in.provider, "telegram");
	assert_string_equal(in.provider_id, "123456:900");
	assert_string_equal(in.from, "5551234");
	assert_string_equal(in.to, "123456");
	assert_string_equal(in.text, "لغو");
	assert_int_equal(in.received_at, INT64_C(1795428300000));
	json_decref(o);

	/* the sender's own number: a link; Telegram omits the '+' */
	o = j("{\"update_id\": 901, \"message\": {\"message_id\": 8, \"date\": 1,"
	      "\"chat\": {\"id\": 77, \"type\": \"private\"}, \"from\": {\"id\": 77},"
	      "\"contact\": {\"phone_number\": \"989121234567\", \"user_id\": 77}}}");
	assert_int_equal(inbound_tg_parse(o, &u), 0);
	assert_int_equal(u.kind, INBOUND_TG_CONTACT);
	assert_int_equal(inbound_tg_inbound(&in, &u, "chat", "123456", 1, "IR", &field, &why), 0);
	assert_int_equal(in.action, INBOUND_LINK);
	assert_string_equal(in.phone, "+989121234567");
	assert_string_equal(in.text, "");
	json_decref(o);

	/* someone else's contact card, groups, edits, media, bots: skipped */
	static const char *const skips[] = {
	    "{\"update_id\": 1, \"message\": {\"chat\": {\"id\": 77, \"type\": \"private\"},"
	    "\"from\": {\"id\": 77}, \"contact\": {\"phone_number\": \"+15005550006\","
	    "\"user_id\": 78}}}",
	    "{\"update_id\": 1, \"message\": {\"chat\": {\"id\": 77, \"type\": \"private\"},"
	    "\"from\": {\"id\": 77}, \"contact\": {\"phone_number\": \"+15005550006\"}}}",
	    "{\"update_id\": 2, \"message\": {\"chat\": {\"id\": -100, \"type\": \"group\"},"
	    "\"from\": {\"id\": 77}, \"text\": \"STOP\"}}",
	    "{\"update_id\": 3, \"edited_message\": {\"chat\": {\"id\": 77, \"type\": \"private\"},"
	    "\"from\": {\"id\": 77}, \"text\": \"STOP\"}}",
	    "{\"update_id\": 4, \"message\": {\"chat\": {\"id\": 77, \"type\": \"private\"},"
	    "\"from\": {\"id\": 77}, \"photo\": []}}",
	    "{\"update_id\": 5, \"message\": {\"chat\": {\"id\": 77, \"type\": \"private\"},"
	    "\"from\": {\"id\": 77, \"is_bot\": true}, \"text\": \"hi\"}}",
	    "{\"update_id\": 6, \"message\": {\"chat\": {\"id\": 0, \"type\": \"private\"},"
	    "\"from\": {\"id\": 77}, \"text\": \"hi\"}}",
	    "{\"update_id\": 7, \"message\": {\"chat\": {\"id\": 77, \"type\": \"private\"},"
	    "\"text\": \"hi\"}}",
	};
	for (size_t i = 0; i < sizeof skips / sizeof skips[0]; i++) {
		o = j(skips[i]);
		assert_int_equal(inbound_tg_parse(o, &u), 0);
		if (u.kind != INBOUND_TG_SKIP)
			fail_msg("skip case %zu was not skipped", i);
		assert_non_null(u.skip);
		assert_int_equal(inbound_tg_inbound(&in, &u, "chat", "1", 1, "IR", &field, &why),
		                 -EINVAL);
		json_decref(o);
	}
	/* not Updates */
	static const char *const bad[] = {"[]", "{}", "{\"update_id\": -1}",
	                                  "{\"update_id\": \"5\"}", "{\"update_id\": 1.5}"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		o = j(bad[i]);
		assert_int_equal(inbound_tg_parse(o, &u), -EINVAL);
		json_decref(o);
	}
	assert_int_equal(inbound_tg_parse(NULL, &u), -EINVAL);
	/* a text over 4096 bytes; a contact number that is not one */
	o = j("{\"update_id\": 9, \"message\": {\"chat\": {\"id\": 77, \"type\": \"private\"},"
	      "\"from\": {\"id\": 77}, \"text\": \"\"}}");
	char *big = malloc(INBOUND_TEXT_MAX + 2);
	assert_non_null(big);
	memset(big, 'x', INBOUND_TEXT_MAX + 1);
	big[INBOUND_TEXT_MAX + 1] = '\0';
	json_object_set_new(json_object_get(o, "message"), "text", json_string(big));
	free(big);
	assert_int_equal(inbound_tg_parse(o, &u), 0);
	assert_int_equal(inbound_tg_inbound(&in, &u, "chat", "1", 1, "IR", &field, &why), -EINVAL);
	assert_string_equal(field, "text");
	json_decref(o);
	o = j("{\"update_id\": 9, \"message\": {\"chat\": {\"id\": 77, \"type\": \"private\"},"
	      "\"from\": {\"id\": 77}, \"contact\": {\"phone_number\": \"12\", \"user_id\": 77}}}");
	assert_int_equal(inbound_tg_parse(o, &u), 0);
	assert_int_equal(inbound_tg_inbound(&in, &u, "chat", "1", 1, "IR", &field, &why), -EINVAL);
	assert_string_equal(field, "phone_number");
	json_decref(o);
}

static void test_kavenegar(void **state)
{
	(void)state;
	int status = 0;
	const json_t *entries = NULL;
	json_t *o = j("{\"return\": {\"status\": 200, \"message\": \"تایید شد\"}, \"entries\": ["
	              "{\"messageid\": 4711, \"message\": \"لغو\", \"sender\": \"09121234567\","
	              "\"receptor\": \"30004346\", \"date\": 1795428300},"
	              "{\"messageid\": 4712, \"message\": \"hi\", \"sender\": \"nope\","
	              "\"receptor\": \"30004346\", \"date\": 1795428301}]}");
	assert_int_equal(inbound_kavenegar_answer(o, &status, &entries), 0);
	assert_int_equal(status, 200);
	assert_int_equal(json_array_size(entries), 2);
	struct inbound in;
	const char *field = NULL, *why = NULL;
	assert_int_equal(
	    inbound_kavenegar_entry(&in, json_array_get(entries, 0), 1, "IR", &field, &why), 0);
	assert_string_equal(in.provider, "kavenegar");
	assert_string_equal(in.provider_id, "4711");
	assert_string_equal(in.from, "+989121234567");
	assert_string_equal(in.to, "30004346");
	assert_string_equal(in.text, "لغو");
	assert_int_equal(in.received_at, INT64_C(1795428300000));
	assert_int_equal(
	    inbound_kavenegar_entry(&in, json_array_get(entries, 1), 1, "IR", &field, &why),
	    -EINVAL);
	assert_string_equal(field, "from");
	json_decref(o);

	o = j("{\"return\": {\"status\": 200, \"message\": \"ok\"}, \"entries\": null}");
	assert_int_equal(inbound_kavenegar_answer(o, &status, &entries), 0);
	assert_null(entries);
	json_decref(o);
	o = j("{\"return\": {\"status\": 403, \"message\": \"no\"}, \"entries\": null}");
	assert_int_equal(inbound_kavenegar_answer(o, &status, &entries), 0);
	assert_int_equal(status, 403);
	json_decref(o);
	o = j("{\"entries\": []}");
	assert_int_equal(inbound_kavenegar_answer(o, &status, &entries), -EPROTO);
	json_decref(o);
	o = j("{\"return\": {\"status\": 200}, \"entries\": 5}");
	assert_int_equal(inbound_kavenegar_answer(o, &status, &entries), -EPROTO);
	json_decref(o);
	o = j("{\"messageid\": 0, \"message\": \"x\", \"sender\": \"09121234567\"}");
	assert_int_equal(inbound_kavenegar_entry(&in, o, 1, "IR", &field, &why), -EINVAL);
	assert_string_equal(field, "id");
	json_decref(o);
}

static void stage_run(void *ctx, const struct inbound *in, const char *cid,
                      void (*done)(void *arg, int taken), void *arg)
{
	(void)ctx;
	(void)in;
	(void)cid;
	done(arg, 0);
}

static void test_stages(void **state)
{
	(void)state;
	assert_null(inbound_stage_get(INBOUND_STAGE_SURVEY));
	assert_null(inbound_stage_get(INBOUND_STAGE_RAFFLE));
	struct inbound_stage s = {"survey", stage_run, NULL};
	inbound_stage_set(INBOUND_STAGE_SURVEY, &s);
	const struct inbound_stage *g = inbound_stage_get(INBOUND_STAGE_SURVEY);
	assert_non_null(g);
	assert_string_equal(g->name, "survey");
	assert_null(inbound_stage_get(INBOUND_STAGE_RAFFLE));
	assert_null(inbound_stage_get(INBOUND_STAGES));
	inbound_stage_set(INBOUND_STAGE_SURVEY, NULL);
	assert_null(inbound_stage_get(INBOUND_STAGE_SURVEY));
	assert_string_equal(inbound_action_name(INBOUND_LINK), "link");
	assert_string_equal(inbound_action_name(INBOUND_TAKEN), "taken");
}

/* ---- the router against a real Redis ---------------------------------------- */

struct rt {
	struct storefx fx; /* redis, store, config, loop */
	int asked;         /* stage calls */
	int done;
	struct inbound_result res;
};

/* The stage: takes texts starting "answer", fails on "broken", passes the
 * rest; answers from the loop (a timer), never from inside run. */
struct stage_call {
	uv_timer_t tm; /* first: the close callback frees the call */
	void (*done)(void *, int);
	void *arg;
	int taken;
};

static void stage_freed(uv_handle_t *h)
{
	free(h);
}

static void stage_fire(uv_timer_t *tm)
{
	struct stage_call *c = (struct stage_call *)tm;
	c->done(c->arg, c->taken);
	uv_close((uv_handle_t *)tm, stage_freed);
}

static void survey_run(void *ctx, const struct inbound *in, const char *cid,
                       void (*done)(void *arg, int taken), void *arg)
{
	struct rt *t = ctx;
	(void)cid;
	t->asked++;
	struct stage_call *c = calloc(1, sizeof *c);
	assert_non_null(c);
	c->done = done;
	c->arg = arg;
	c->taken = strncmp(in->text, "answer", 6) == 0 ? 1
	           : strcmp(in->text, "broken") == 0   ? -EIO
	                                               : 0;
	uv_timer_init(&t->fx.loop, &c->tm);
	uv_timer_start(&c->tm, stage_fire, 0, 0);
}

static void routed(void *arg, const struct inbound_result *res)
{
	struct rt *t = arg;
	t->res = *res;
	t->done++;
}

static void route_one(struct rt *t, const char *id, const char *text, const char *off_chan,
                      int64_t off)
{
	struct inbound in;
	const char *field, *why;
	assert_int_equal(inbound_sms_init(&in, "test", id, "09121234567", "3000", text,
	                                  strlen(text), 1, "IR", &field, &why),
	                 0);
	int want = t->done + 1;
	inbound_route(t->fx.st, t->fx.cfg, INBOUND_T_WEBHOOK, &in, off_chan, off, routed, t);
	assert_int_equal(t->done, want - 1); /* never from inside */
	tl_run_until(&t->fx.loop, &t->done, want);
}

/* One string reply of a command with one %s argument; NULL otherwise. */
static char *get(struct rt *t, const char *fmt, const char *a)
{
	redisReply *rep = redisCommand(t->fx.sync, fmt, a);
	assert_non_null(rep);
	char *v = rep->type == REDIS_REPLY_STRING ? xstrdup(rep->str) : NULL;
	freeReplyObject(rep);
	return v;
}

static int rt_setup(void **state)
{
	struct rt *t = calloc(1, sizeof *t);
	assert_non_null(t);
	storefx_start(&t->fx, "clubd:", 500);
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

static void test_router(void **state)
{
	struct rt *t = *state;
	struct inbound_stage s = {"survey", survey_run, t};
	inbound_stage_set(INBOUND_STAGE_SURVEY, &s);
	/* the stages are asked only when one may take the text: an open raffle
	 * (or the contact's survey conversation, below) */
	redisReply *rep = redisCommand(t->fx.sync, "SADD clubd:raffles:open r0");
	freeReplyObject(rep);

	/* a stage takes the text: recorded as taken, no reply, a lead */
	route_one(t, "r-1", "answer 5", NULL, 0);
	assert_int_equal(t->res.err, 0);
	assert_int_equal(t->asked, 1);
	assert_string_equal(t->res.action, "taken");
	assert_int_equal(t->res.created, 1);
	assert_int_equal(t->res.duplicate, 0);
	char *cid = xstrdup(t->res.contact_id);
	char *d = get(t, "GET clubd:inb:test:%s", "r-1");
	assert_non_null(d);
	assert_non_null(strstr(d, " taken"));
	free(d);
	rep = redisCommand(t->fx.sync, "XREVRANGE clubd:inbound + - COUNT 1");
	assert_true(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1);
	const redisReply *f = rep->element[0]->element[1];
	int saw_stage = 0;
	for (size_t i = 0; i + 1 < f->elements; i += 2)
		if (strcmp(f->element[i]->str, "stage") == 0 &&
		    strcmp(f->element[i + 1]->str, "survey") == 0)
			saw_stage = 1;
	freeReplyObject(rep);
	assert_true(saw_stage);
	rep = redisCommand(t->fx.sync, "XLEN clubd:tl:%s", cid);
	assert_int_equal(rep->integer, 0); /* the stage records what it meant */
	freeReplyObject(rep);

	/* the provider retries: the stage is not asked again */
	route_one(t, "r-1", "answer 5", NULL, 0);
	assert_int_equal(t->asked, 1);
	assert_int_equal(t->res.duplicate, 1);
	assert_string_equal(t->res.action, "taken");
	assert_string_equal(t->res.contact_id, cid);

	/* a text the stage passes on is a reply */
	route_one(t, "r-2", "hello there", NULL, 0);
	assert_int_equal(t->asked, 2);
	assert_string_equal(t->res.action, "reply");
	assert_string_equal(t->res.contact_id, cid);

	/* keywords come first: no stage; the confirmation is queued once */
	route_one(t, "r-3", " لغو ", NULL, 0);
	assert_int_equal(t->asked, 2);
	assert_string_equal(t->res.action, "opt_out");
	assert_true(id_valid(t->res.confirm_id));
	char *conf = xstrdup(t->res.confirm_id);
	char *text = get(t, "HGET clubd:m:%s text", conf);
	assert_non_null(text);
	assert_string_equal(text, t->fx.cfg->inbound_stop_reply_fa);
	free(text);
	char *cat = get(t, "HGET clubd:m:%s category", conf);
	assert_non_null(cat);
	assert_string_equal(cat, "transactional");
	free(cat);
	route_one(t, "r-3", " لغو ", NULL, 0);
	assert_int_equal(t->res.duplicate, 1);
	assert_string_equal(t->res.confirm_id, conf); /* the first one, not a second */
	free(conf);

	/* the getUpdates offset rises with the record, never falls */
	route_one(t, "r-4", "answer 1", "chat", 42);
	char *off = get(t, "GET clubd:tgoff:%s", "chat");
	assert_non_null(off);
	assert_string_equal(off, "42");
	free(off);
	route_one(t, "r-4", "answer 1", "chat", 7);
	off = get(t, "GET clubd:tgoff:%s", "chat");
	assert_non_null(off);
	assert_string_equal(off, "42");
	free(off);

	/* a stage that fails: nothing recorded, an error for the caller */
	route_one(t, "r-5", "broken", NULL, 0);
	assert_int_equal(t->res.err, -EIO);
	d = get(t, "GET clubd:inb:test:%s", "r-5");
	assert_null(d);

	/* no raffle open and no conversation: no stage is asked, a reply */
	rep = redisCommand(t->fx.sync, "DEL clubd:raffles:open");
	freeReplyObject(rep);
	int asked = t->asked;
	route_one(t, "r-6", "answer 2", NULL, 0);
	assert_int_equal(t->asked, asked);
	assert_string_equal(t->res.action, "reply");
	assert_string_equal(t->res.contact_id, cid);
	/* the contact's open survey conversation: asked again */
	rep = redisCommand(t->fx.sync, "HSET clubd:sv:%s survey s1", cid);
	freeReplyObject(rep);
	route_one(t, "r-7", "answer 3", NULL, 0);
	assert_int_equal(t->asked, asked + 1);
	assert_string_equal(t->res.action, "taken");
	/* a provider retry of a message a survey took before (P svi:), after
	 * the conversation ended: asked again (the stage answers the replay) */
	rep = redisCommand(t->fx.sync, "DEL clubd:sv:%s", cid);
	freeReplyObject(rep);
	rep = redisCommand(t->fx.sync, "SET clubd:svi:test:r-8 s1|ok|0");
	freeReplyObject(rep);
	route_one(t, "r-8", "answer 4", NULL, 0);
	assert_int_equal(t->asked, asked + 2);
	assert_string_equal(t->res.action, "taken");

	assert_int_equal(inbound_counted(INBOUND_T_WEBHOOK, INBOUND_STORED), 7);
	assert_int_equal(inbound_counted(INBOUND_T_WEBHOOK, INBOUND_DUPLICATE), 3);
	struct buf b;
	buf_init(&b, 0);
	inbound_metrics_render(&b);
	assert_non_null(
	    strstr(b.p, "clubd_inbound_total{transport=\"webhook\",result=\"stored\"} 7\n"));
	assert_non_null(strstr(b.p, "# TYPE clubd_inbound_total counter\n"));
	buf_free(&b);
	free(cid);
}

/* Many messages at once share script calls, and each still gets its own
 * answer: 300 routed before the loop runs (every tenth a provider retry of
 * the one before it), from 50 senders. */
struct many {
	int done;
	int dup, stored;
	int bad;
	char want[300][ID_LEN + 1]; /* the contact each sender has, "" until known */
	int sender[300];
	int retry[300];
};

struct many_arg {
	struct many *m;
	int i;
};

static void many_routed(void *arg, const struct inbound_result *res)
{
	struct many_arg *a = arg;
	struct many *m = a->m;
	if (res->err || strcmp(res->action, "reply") != 0 || !id_valid(res->contact_id))
		m->bad++;
	if (res->duplicate != m->retry[a->i])
		m->bad++;
	res->duplicate ? m->dup++ : m->stored++;
	/* every message of a sender lands on one contact */
	char *w = m->want[m->sender[a->i]];
	if (!*w)
		snprintf(w, ID_LEN + 1, "%s", res->contact_id);
	else if (strcmp(w, res->contact_id) != 0)
		m->bad++;
	m->done++;
	free(a);
}

static long long evalsha_calls(struct rt *t)
{
	redisReply *rep = redisCommand(t->fx.sync, "INFO commandstats");
	assert_true(rep && rep->type == REDIS_REPLY_STRING);
	const char *p = strstr(rep->str, "cmdstat_evalsha:calls=");
	long long n = p ? strtoll(p + 22, NULL, 10) : 0;
	freeReplyObject(rep);
	return n;
}

static void test_router_batches(void **state)
{
	struct rt *t = *state;
	struct many *m = calloc(1, sizeof *m);
	assert_non_null(m);
	redisReply *rep = redisCommand(t->fx.sync, "XLEN clubd:inbound");
	long long audit0 = rep->integer;
	freeReplyObject(rep);
	long long calls0 = evalsha_calls(t);
	for (int i = 0; i < 300; i++) {
		struct inbound in;
		const char *field, *why;
		char id[32], from[32];
		m->retry[i] = i % 10 == 9;
		int n = m->retry[i] ? i - 1 : i;
		m->sender[i] = n % 50;
		snprintf(id, sizeof id, "b-%d", n);
		snprintf(from, sizeof from, "0912%07d", n % 50);
		assert_int_equal(inbound_sms_init(&in, "test", id, from, "3000", "thanks", 6, 1,
		                                  "IR", &field, &why),
		                 0);
		struct many_arg *a = malloc(sizeof *a);
		assert_non_null(a);
		a->m = m;
		a->i = i;
		inbound_route(t->fx.st, t->fx.cfg, INBOUND_T_WEBHOOK, &in, NULL, 0, many_routed, a);
	}
	assert_int_equal(m->done, 0); /* never from inside */
	tl_run_until(&t->fx.loop, &m->done, 300);
	assert_int_equal(m->bad, 0);
	assert_int_equal(m->stored, 270);
	assert_int_equal(m->dup, 30);
	rep = redisCommand(t->fx.sync, "XLEN clubd:inbound");
	assert_int_equal(rep->integer - audit0, 270);
	freeReplyObject(rep);
	/* 300 messages, a handful of script calls (two leave at once, the rest
	 * in batches of at most 128) */
	long long calls = evalsha_calls(t) - calls0;
	assert_true(calls >= 3 && calls <= 6);
	free(m);
}

struct poison_arg {
	struct inbound_result *res;
	int *done;
};

static void poison_routed(void *arg, const struct inbound_result *res)
{
	struct poison_arg *a = arg;
	*a->res = *res;
	(*a->done)++;
}

/* One message that fails in the script (a contact's prefs unreadable, so
 * its opt-out cannot be applied) fails alone: the others of its batch are
 * recorded. */
static void test_router_batch_poison(void **state)
{
	struct rt *t = *state;
	route_one(t, "p-0", "hello", NULL, 0); /* 09121234567 becomes a lead */
	assert_int_equal(t->res.err, 0);
	char *cid = xstrdup(t->res.contact_id);
	redisReply *rep = redisCommand(t->fx.sync, "HSET clubd:c:%s prefs {broken", cid);
	freeReplyObject(rep);

	/* the first two leave at once, one batch each; the last three wait
	 * and share one script call, the opt-out in the middle */
	enum { N = 5 };
	static const char *const from[N] = {"09120000001", "09120000002", "09120000003",
	                                    "09121234567", "09120000004"};
	static const char *const text[N] = {"a", "b", "thanks", "STOP", "ok"};
	struct inbound_result res[N];
	struct poison_arg arg[N];
	int done = 0;
	memset(res, 0, sizeof res);
	for (int i = 0; i < N; i++) {
		struct inbound in;
		const char *field, *why;
		char id[16];
		snprintf(id, sizeof id, "p-%d", i + 1);
		assert_int_equal(inbound_sms_init(&in, "test", id, from[i], "3000", text[i],
		                                  strlen(text[i]), 1, "IR", &field, &why),
		                 0);
		arg[i].res = &res[i];
		arg[i].done = &done;
		inbound_route(t->fx.st, t->fx.cfg, INBOUND_T_WEBHOOK, &in, NULL, 0, poison_routed,
		              &arg[i]);
	}
	tl_run_until(&t->fx.loop, &done, N);
	for (int i = 0; i < N; i++) {
		if (i == 3) {
			assert_int_equal(res[i].err, -EIO);
			continue;
		}
		assert_int_equal(res[i].err, 0);
		assert_string_equal(res[i].action, "reply");
	}
	/* its dedupe key let go: the provider's retry, once the prefs are
	 * readable again, applies the opt-out */
	rep = redisCommand(t->fx.sync, "EXISTS clubd:inb:test:p-4");
	assert_int_equal(rep->integer, 0);
	freeReplyObject(rep);
	char *n = get(t, "HGET clubd:stats %s", "inbound:opt_out");
	assert_null(n); /* not counted */
	n = get(t, "HGET clubd:stats %s", "inbound:reply");
	assert_non_null(n);
	assert_string_equal(n, "5"); /* p-0 and the four neighbours */
	free(n);
	rep = redisCommand(t->fx.sync, "HDEL clubd:c:%s prefs", cid);
	freeReplyObject(rep);
	route_one(t, "p-4", "STOP", NULL, 0);
	assert_int_equal(t->res.err, 0);
	assert_int_equal(t->res.duplicate, 0);
	assert_string_equal(t->res.action, "opt_out");
	n = get(t, "HGET clubd:stats %s", "inbound:opt_out");
	assert_non_null(n);
	assert_string_equal(n, "1");
	free(n);
	free(cid);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_classify_table),
	    cmocka_unit_test(test_action_names),
	    cmocka_unit_test(test_sms_init),
	    cmocka_unit_test(test_times),
	    cmocka_unit_test(test_keyword_lists),
	    cmocka_unit_test(test_form),
	    cmocka_unit_test(test_charsets),
	    cmocka_unit_test(test_kannel),
	    cmocka_unit_test(test_telegram),
	    cmocka_unit_test(test_kavenegar),
	    cmocka_unit_test(test_stages),
	    cmocka_unit_test_setup_teardown(test_router, rt_setup, rt_teardown),
	    cmocka_unit_test_setup_teardown(test_router_batches, rt_setup, rt_teardown),
	    cmocka_unit_test_setup_teardown(test_router_batch_poison, rt_setup, rt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
