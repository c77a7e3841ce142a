/*
 * test_addr.c - table-driven checks of addr_normalize() for phones (E.164,
 * Persian digits, national forms, bidi marks), emails (RFC 5322 subset,
 * UTF-8 local parts, header injection) and chat ids, plus the kind names
 * and the country table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "addr.h"

struct acase {
	const char *in;
	const char *country;
	const char *want;   /* NULL: must be refused */
	const char *reason; /* when refused: the expected reason, or NULL for any */
};

#define IR_MOBILE "+989121234567"
#define LRM       "\xe2\x80\x8e"
#define RLM       "\xe2\x80\x8f"
#define ZWNJ      "\xe2\x80\x8c"
#define NBSP      "\xc2\xa0"

static const struct acase sms_cases[] = {
    /* Iranian mobiles in every shape people paste them */
    {"09121234567", "IR", IR_MOBILE, NULL},
    {"\xdb\xb0\xdb\xb9\xdb\xb1\xdb\xb2\xdb\xb1\xdb\xb2\xdb\xb3\xdb\xb4\xdb\xb5\xdb\xb6\xdb\xb7",
     "IR", IR_MOBILE, NULL}, /* ۰۹۱۲۱۲۳۴۵۶۷ */
    {"\xd9\xa0\xd9\xa9\xd9\xa1\xd9\xa2\xd9\xa1\xd9\xa2\xd9\xa3\xd9\xa4\xd9\xa5\xd9\xa6\xd9\xa7",
     "IR", IR_MOBILE, NULL}, /* Arabic-Indic */
    {"\xdb\xb0\xdb\xb9\xdb\xb1\xdb\xb2 123 \xd9\xa4\xd9\xa5\xd9\xa6\xd9\xa7", "IR", IR_MOBILE,
     NULL}, /* mixed digit sets */
    {"+98 912 123 4567", "IR", IR_MOBILE, NULL},
    {"+98 912 123 4567", NULL, IR_MOBILE, NULL},
    {"+98 912 123 4567", "US", IR_MOBILE, NULL},
    {"+\xdb\xb9\xdb\xb8 \xdb\xb9\xdb\xb1\xdb\xb2 \xdb\xb1\xdb\xb2\xdb\xb3 "
     "\xdb\xb4\xdb\xb5\xdb\xb6\xdb\xb7",
     NULL, IR_MOBILE, NULL},
    {"0098 912 123 4567", NULL, IR_MOBILE, NULL},
    {"00989121234567", "GB", IR_MOBILE, NULL},
    {"(0912) 123-4567", "IR", IR_MOBILE, NULL},
    {"0912.123.4567", "IR", IR_MOBILE, NULL},
    {"0912-123-4567", "ir", IR_MOBILE, NULL},
    {"0912\xe2\x80\x93"
     "123\xe2\x80\x93"
     "4567",
     "IR", IR_MOBILE, NULL}, /* en dashes */
    {"9121234567", "IR", IR_MOBILE, NULL},
    {"989121234567", "IR", IR_MOBILE, NULL},
    {"  09121234567  ", "IR", IR_MOBILE, NULL},
    {NBSP "09121234567" NBSP, "IR", IR_MOBILE, NULL},
    {LRM "+98 912 123 4567" RLM, NULL, IR_MOBILE, NULL},
    {"\xe2\x80\xab\xdb\xb0\xdb\xb9\xdb\xb1\xdb\xb2" ZWNJ
     "\xdb\xb1\xdb\xb2\xdb\xb3\xdb\xb4\xdb\xb5\xdb\xb6\xdb\xb7\xe2\x80\xac",
     "IR", IR_MOBILE, NULL}, /* RLE ... PDF with a ZWNJ inside */
    {"\xe2\x81\xa8+98 912 123 4567\xe2\x81\xa9", NULL, IR_MOBILE, NULL}, /* FSI .. PDI */
    {"\xef\xbb\xbf"
     "09121234567",
     "IR", IR_MOBILE, NULL}, /* BOM */
    {"02188776655", "IR", "+982188776655", NULL},
    {"+98 21 8877 6655", NULL, "+982188776655", NULL},
    /* other countries */
    {"+1 415 555 2671", NULL, "+14155552671", NULL},
    {"+1 (415) 555-2671", "IR", "+14155552671", NULL},
    {"4155552671", "US", "+14155552671", NULL},
    {"(415) 555-2671", "us", "+14155552671", NULL},
    {"1-415-555-2671", "US", "+14155552671", NULL},
    {"416 555 0199", "CA", "+14165550199", NULL},
    {"020 7946 0958", "GB", "+442079460958", NULL},
    {"07911 123456", "GB", "+447911123456", NULL},
    {"+44 (0)20 7946 0958", NULL, "+442079460958", NULL}, /* "(0)": trunk not dialled */
    {"+49 (0) 170 1234567", NULL, "+491701234567", NULL},
    {"(0)20 7946 0958", "GB", "+442079460958", NULL},
    {"+44 (1)20 7946 0958", NULL, "+4412079460958", NULL},
    {"+1 015 555 2671", NULL, NULL, "not a valid North American number"},
    {"+1 415 155 2671", NULL, NULL, "not a valid North American number"},
    {"0123456789", "US", NULL, "not a valid North American number"},
    {"+98 21 8877 665", NULL, NULL, "too short"},
    {"1 212 555 0100", "IR", NULL, "too long"},
    {"0170 1234567", "DE", "+491701234567", NULL},
    {"06 12 34 56 78", "FR", "+33612345678", NULL},
    {"8 916 123-45-67", "RU", "+79161234567", NULL},
    {"+7 916 123 45 67", NULL, "+79161234567", NULL},
    {"06 30 123 4567", "HU", "+36301234567", NULL},
    {"06 1234 5678", "IT", "+390612345678", NULL},
    {"050 123 4567", "AE", "+971501234567", NULL},
    {"0532 123 45 67", "TR", "+905321234567", NULL},
    {"0770 123 4567", "IQ", "+9647701234567", NULL},
    {"070 123 4567", "AF", "+93701234567", NULL},
    {"+91 98765 43210", NULL, "+919876543210", NULL},
    {"+86 138 0013 8000", NULL, "+8613800138000", NULL},
    {"+12345678", NULL, NULL, "too short"}, /* +1 needs 11 digits */
    {"+49 30 1234", NULL, "+49301234", NULL},
    {"+49 123456789012345", NULL, NULL, "too long"},
    /* refused */
    {"0912123456", "IR", NULL, "too short"},
    {"091212345678", "IR", NULL, "too long"},
    {"+98912123456", NULL, NULL, "too short"},
    {"+9891212345678", NULL, NULL, "too long"},
    {"+4912345", NULL, NULL, "too short"},
    {"+4912345678901234", NULL, NULL, "too long"},
    {"+1 415 555 267", NULL, NULL, "too short"},
    {"+1 415 555 26711", NULL, NULL, "too long"},
    {"+7 916 123 45 6", NULL, NULL, "too short"},
    {"+0912 123 4567", NULL, NULL, "invalid country code"},
    {"000989121234567", NULL, NULL, "invalid country code"},
    {"09121234567", NULL, NULL, "no country code and no default country"},
    {"09121234567", "", NULL, "no country code and no default country"},
    {"09121234567", "XX", NULL, "unknown default country"},
    {"09121234567", "IRN", NULL, "unknown default country"},
    {"0912abc4567", "IR", NULL, "contains letters"},
    {"call me 09121234567", "IR", NULL, "contains letters"},
    {"0912 123 4567 ext 12", "IR", NULL, "contains letters"},
    {"+98+9121234567", NULL, NULL, "misplaced +"},
    {"0912+1234567", "IR", NULL, "misplaced +"},
    {"0912*1234567", "IR", NULL, "not a phone number"},
    {"0912/1234567", "IR", NULL, "not a phone number"},
    {"\xef\xbc\x90\xef\xbc\x99\xef\xbc\x91\xef\xbc\x92", "IR", NULL,
     "not a phone number"}, /* fullwidth digits */
    {"\xd8\xb4\xd9\x85\xd8\xa7\xd8\xb1\xd9\x87", "IR", NULL, "not a phone number"},
    {"---", "IR", NULL, "not a phone number"},
    {"+", NULL, NULL, "not a phone number"},
    {"()", "IR", NULL, "not a phone number"},
    {"", "IR", NULL, "empty"},
    {"   ", "IR", NULL, "empty"},
    {LRM RLM, "IR", NULL, "empty"},
    {"0912\r\n1234567", "IR", NULL, "contains control characters"},
    {"09121234567\n", "IR", NULL, "contains control characters"},
    {"0912\t1234567", "IR", NULL, "contains control characters"},
    {"09121234567\x7f", "IR", NULL, "contains control characters"},
    {"\xc2\x85"
     "09121234567",
     "IR", NULL, "contains control characters"}, /* C1 NEL */
    {"0912\xff"
     "1234567",
     "IR", NULL, "not valid UTF-8"},
    {"\xc0\xb0"
     "9121234567",
     "IR", NULL, "not valid UTF-8"}, /* overlong "0" */
    {"\xe0\x80\xab"
     "989121234567",
     NULL, NULL, "not valid UTF-8"}, /* overlong "+" */
    {"0912\xed\xa0\x80"
     "1234567",
     "IR", NULL, "not valid UTF-8"},
    {"0912\xdb", "IR", NULL, "not valid UTF-8"},
};

static const struct acase email_cases[] = {
    {"user@example.com", NULL, "user@example.com", NULL},
    {"User.Name+tag@Example.COM", NULL, "user.name+tag@example.com", NULL},
    {"ALICE@EXAMPLE.ORG", NULL, "alice@example.org", NULL},
    {"  bob@example.net  ", NULL, "bob@example.net", NULL},
    {RLM "bob@example.net" LRM, NULL, "bob@example.net", NULL},
    {"o'brien@example.ie", NULL, "o'brien@example.ie", NULL},
    {"a!#$%&'*+-/=?^_`{|}~z@example.com", NULL, "a!#$%&'*+-/=?^_`{|}~z@example.com", NULL},
    {"x@a-b.c-d.example", NULL, "x@a-b.c-d.example", NULL},
    {"x@sub.sub.example.co.uk", NULL, "x@sub.sub.example.co.uk", NULL},
    {"x@123.example", NULL, "x@123.example", NULL},
    {"user@xn--mgbh0fb.xn--kgbechtv", NULL, "user@xn--mgbh0fb.xn--kgbechtv", NULL},
    {"user@XN--MGBH0FB.Example", NULL, "user@xn--mgbh0fb.example", NULL},
    /* RFC 6531 UTF-8 local parts */
    {"\xda\xa9\xd8\xa7\xd8\xb1\xd8\xa8\xd8\xb1@example.com", NULL,
     "\xda\xa9\xd8\xa7\xd8\xb1\xd8\xa8\xd8\xb1@example.com", NULL},
    {"J\xc3\xb6rg@Example.DE", NULL, "j\xc3\xb6rg@example.de", NULL},
    /* header injection and controls */
    {"a@b.com\r\nBcc: x@y.z", NULL, NULL, "contains control characters"},
    {"a@b.com\nBcc: x@y.z", NULL, NULL, "contains control characters"},
    {"a@b.com\r", NULL, NULL, "contains control characters"},
    {"a@b.com\x7f", NULL, NULL, "contains control characters"},
    {"a\x1b@b.com", NULL, NULL, "contains control characters"},
    {"a@b.com\xc2\x85", NULL, NULL, "contains control characters"},
    {"a@b.com%0d%0aBcc:x@y.z", NULL, NULL, "more than one @"},
    {"a@b.com%0d%0a", NULL, NULL, "invalid character in domain"},
    {"a@b.com, c@d.com", NULL, NULL, "more than one @"},
    {"a@b.com;c", NULL, NULL, "invalid character in domain"},
    {"a@b.com>", NULL, NULL, "invalid character in domain"},
    {"<a@b.com>", NULL, NULL, "invalid character in local part"},
    /* structure */
    {"userexample.com", NULL, NULL, "missing @"},
    {"a@@b.com", NULL, NULL, "more than one @"},
    {"a@b@c.com", NULL, NULL, "more than one @"},
    {"@example.com", NULL, NULL, "empty local part"},
    {"a@", NULL, NULL, "empty domain"},
    {"a..b@example.com", NULL, NULL, "consecutive dots in local part"},
    {".a@example.com", NULL, NULL, "local part starts or ends with a dot"},
    {"a.@example.com", NULL, NULL, "local part starts or ends with a dot"},
    {"a@example..com", NULL, NULL, "empty label in domain"},
    {"a@.example.com", NULL, NULL, "empty label in domain"},
    {"a@example.com.", NULL, NULL, "empty label in domain"},
    {"a@example", NULL, NULL, "domain has no dot"},
    {"a@localhost", NULL, NULL, "domain has no dot"},
    {"a@-example.com", NULL, NULL, "domain label starts or ends with a hyphen"},
    {"a@example-.com", NULL, NULL, "domain label starts or ends with a hyphen"},
    {"a@exa_mple.com", NULL, NULL, "invalid character in domain"},
    {"a@1.2.3.4", NULL, NULL, "numeric top-level domain"},
    {"a@[1.2.3.4]", NULL, NULL, "invalid character in domain"},
    {"\"a b\"@example.com", NULL, NULL, "invalid character in local part"},
    {"\"ab\"@example.com", NULL, NULL, "invalid character in local part"},
    {"a b@example.com", NULL, NULL, "invalid character in local part"},
    {"a(comment)@example.com", NULL, NULL, "invalid character in local part"},
    {"a\\b@example.com", NULL, NULL, "invalid character in local part"},
    {"a" NBSP "b@example.com", NULL, NULL, "invalid character in local part"},
    {"a\xe2\x80\x8b"
     "b@example.com",
     NULL, NULL, "invalid character in local part"},
    {"a" RLM "b@example.com", NULL, NULL, "invalid character in local part"},
    {"a@exa mple.com", NULL, NULL, "invalid character in domain"},
    {"\xce\xb4\xce\xbf\xce\xba@\xcf\x80\xce\xb1\xcf\x81.\xce\xb4\xce\xbf\xce\xba", NULL, NULL,
     "internationalised domain must be in punycode (xn--)"},
    /* bad UTF-8 */
    {"a\xff@b.com", NULL, NULL, "not valid UTF-8"},
    {"a\xc1\x80"
     "b.com",
     NULL, NULL, "not valid UTF-8"}, /* overlong "@" */
    {"a@b\xc0\xae"
     "com",
     NULL, NULL, "not valid UTF-8"}, /* overlong "." */
    {"\xed\xb0\x80@b.com", NULL, NULL, "not valid UTF-8"},
    {"", NULL, NULL, "empty"},
};

static const struct acase chat_cases[] = {
    {"123456789", NULL, "123456789", NULL},
    {"-1001234567890", NULL, "-1001234567890", NULL},
    {" 42 ", NULL, "42", NULL},
    {"007", NULL, "7", NULL},
    {"\xdb\xb1\xdb\xb2\xdb\xb3\xdb\xb4\xdb\xb5", NULL, "12345", NULL},
    {"-\xdb\xb1\xdb\xb0\xdb\xb0\xd9\xa1\xd9\xa2", NULL, "-10012", NULL},
    {"9223372036854775807", NULL, "9223372036854775807", NULL},
    {"-9223372036854775808", NULL, "-9223372036854775808", NULL},
    {"9223372036854775808", NULL, NULL, "chat id out of range"},
    {"-9223372036854775809", NULL, NULL, "chat id out of range"},
    {"18446744073709551616", NULL, NULL, "chat id out of range"},
    {"99999999999999999999999999999999999999999", NULL, NULL, "chat id out of range"},
    {"0", NULL, NULL, "chat id is zero"},
    {"-0", NULL, NULL, "chat id is zero"},
    {"+123", NULL, NULL, "not a chat id or @username"},
    {"--5", NULL, NULL, "not a chat id or @username"},
    {"-", NULL, NULL, "not a chat id or @username"},
    {"12 34", NULL, NULL, "not a chat id or @username"},
    {"12a", NULL, NULL, "not a chat id or @username"},
    {"1e5", NULL, NULL, "not a chat id or @username"},
    {"0x1F", NULL, NULL, "not a chat id or @username"},
    {"johndoe", NULL, NULL, "not a chat id or @username"},
    {"123\r\n", NULL, NULL, "contains control characters"},
    {"12\xff", NULL, NULL, "not valid UTF-8"},
    {"@JohnDoe", NULL, "@johndoe", NULL},
    {"@john_doe_99", NULL, "@john_doe_99", NULL},
    {"  @Bale_Bot  ", NULL, "@bale_bot", NULL},
    {"@abcde", NULL, "@abcde", NULL},
    {"@abcdefghijklmnopqrstuvwxyzABCDEF", NULL, "@abcdefghijklmnopqrstuvwxyzabcdef", NULL},
    {"@abcd", NULL, NULL, "username too short"},
    {"@", NULL, NULL, "username too short"},
    {"@abcdefghijklmnopqrstuvwxyzABCDEFG", NULL, NULL, "username too long"},
    {"@1abcde", NULL, NULL, "username must start with a letter"},
    {"@_abcde", NULL, NULL, "username must start with a letter"},
    {"@john-doe", NULL, NULL, "invalid character in username"},
    {"@john.doe", NULL, NULL, "invalid character in username"},
    {"@john doe", NULL, NULL, "invalid character in username"},
    {"@johndoe\r\nX", NULL, NULL, "contains control characters"},
    {"@\xd8\xac\xd8\xa7\xd9\x86\xd8\xaf\xd9\x88", NULL, NULL, "username must start with a letter"},
    {"@johnd\xc3\xb6", NULL, NULL, "invalid character in username"},
    {"", NULL, NULL, "empty"},
};

static int run_table(enum addr_kind kind, const struct acase *cases, size_t n)
{
	int bad = 0;
	for (size_t i = 0; i < n; i++) {
		const struct acase *c = &cases[i];
		char out[ADDR_MAX + 1];
		const char *reason = "sentinel";
		memset(out, 'Z', sizeof(out));
		int rc = addr_normalize(kind, c->in, c->country, out, &reason);
		if (c->want) {
			if (rc != 0 || strcmp(out, c->want) != 0 || reason != NULL) {
				print_error("%s case %zu \"%s\": rc=%d out=\"%s\" reason=%s, want "
				            "\"%s\"\n",
				            addr_kind_name(kind), i, c->in, rc, rc == 0 ? out : "",
				            reason ? reason : "NULL", c->want);
				bad++;
			}
		} else {
			if (rc != -1 || !reason || out[0] != '\0' ||
			    (c->reason && strcmp(reason, c->reason) != 0)) {
				print_error("%s case %zu \"%s\": rc=%d out=\"%s\" reason=%s, want "
				            "refusal (%s)\n",
				            addr_kind_name(kind), i, c->in, rc, rc == 0 ? out : "",
				            reason ? reason : "NULL",
				            c->reason ? c->reason : "any");
				bad++;
			}
		}
	}
	return bad;
}

static void test_sms(void **state)
{
	(void)state;
	assert_int_equal(run_table(ADDR_SMS, sms_cases, sizeof(sms_cases) / sizeof(sms_cases[0])),
	                 0);
}

static void test_email(void **state)
{
	(void)state;
	assert_int_equal(
	    run_table(ADDR_EMAIL, email_cases, sizeof(email_cases) / sizeof(email_cases[0])), 0);
}

static void test_chat(void **state)
{
	(void)state;
	assert_int_equal(
	    run_table(ADDR_CHAT, chat_cases, sizeof(chat_cases) / sizeof(chat_cases[0])), 0);
}

static void fill(char *p, char c, size_t n)
{
	memset(p, c, n);
	p[n] = '\0';
}

/* Length limits hit exactly: local 64, label 63, domain 253, total 254, ADDR_MAX. */
static void test_email_limits(void **state)
{
	(void)state;
	char in[1024], out[ADDR_MAX + 1], want[1024];
	const char *reason;

	fill(in, 'l', 64);
	strncat(in, "@example.com", sizeof(in) - strlen(in) - 1);
	assert_int_equal(addr_normalize(ADDR_EMAIL, in, NULL, out, &reason), 0);
	assert_string_equal(out, in);
	fill(in, 'l', 65);
	strncat(in, "@example.com", sizeof(in) - strlen(in) - 1);
	assert_int_equal(addr_normalize(ADDR_EMAIL, in, NULL, out, &reason), -1);
	assert_string_equal(reason, "local part too long");

	snprintf(in, sizeof(in), "a@%.*s.com", 63,
	         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	assert_int_equal(addr_normalize(ADDR_EMAIL, in, NULL, out, &reason), 0);
	snprintf(want, sizeof(want), "a@%.*s.com", 63,
	         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_string_equal(out, want);
	snprintf(in, sizeof(in), "a@%.*s.com", 64,
	         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_int_equal(addr_normalize(ADDR_EMAIL, in, NULL, out, &reason), -1);
	assert_string_equal(reason, "domain label too long");

	/* 64 + 1 + 189 = 254: the longest address accepted. */
	char l63[64], l61[62], l62[63], l64[65];
	fill(l63, 'd', 63);
	fill(l61, 'e', 61);
	fill(l62, 'e', 62);
	fill(l64, 'l', 64);
	snprintf(in, sizeof(in), "%s@%s.%s.%s", l64, l63, l63, l61);
	assert_int_equal(strlen(in), 254);
	assert_int_equal(addr_normalize(ADDR_EMAIL, in, NULL, out, &reason), 0);
	assert_string_equal(out, in);
	snprintf(in, sizeof(in), "%s@%s.%s.%s", l64, l63, l63, l62);
	assert_int_equal(strlen(in), 255);
	assert_int_equal(addr_normalize(ADDR_EMAIL, in, NULL, out, &reason), -1);
	assert_string_equal(reason, "too long");

	/* A domain over 253 bytes (with a short local part, under ADDR_MAX). */
	snprintf(in, sizeof(in), "a@%s.%s.%s.%s", l63, l63, l63, l63);
	assert_int_equal(addr_normalize(ADDR_EMAIL, in, NULL, out, &reason), -1);
	assert_string_equal(reason, "too long");

	/* Over ADDR_MAX: refused before anything else looks at it. */
	fill(in, 'a', ADDR_MAX + 1);
	in[10] = '@';
	assert_int_equal(addr_normalize(ADDR_EMAIL, in, NULL, out, &reason), -1);
	assert_string_equal(reason, "too long");
	assert_string_equal(out, "");
	fill(in, 'a', 900); /* far over: strnlen stops at ADDR_MAX + 1 */
	assert_int_equal(addr_normalize(ADDR_EMAIL, in, NULL, out, &reason), -1);
	assert_string_equal(reason, "too long");
}

static void test_phone_limits(void **state)
{
	(void)state;
	char in[1024], out[ADDR_MAX + 1];
	const char *reason;

	in[0] = '+';
	fill(in + 1, '9', 40);
	assert_int_equal(addr_normalize(ADDR_SMS, in, NULL, out, &reason), -1);
	assert_string_equal(reason, "too long");
	fill(in + 1, '4', ADDR_MAX - 1); /* exactly ADDR_MAX bytes: parsed, then too long */
	assert_int_equal(strlen(in), ADDR_MAX);
	assert_int_equal(addr_normalize(ADDR_SMS, in, NULL, out, &reason), -1);
	assert_string_equal(reason, "too long");
	/* Lots of separators around a valid number stay within ADDR_MAX. */
	memset(in, ' ', 300);
	memcpy(in + 100, "09121234567", 11);
	in[300] = '\0';
	assert_int_equal(addr_normalize(ADDR_SMS, in, "IR", out, &reason), 0);
	assert_string_equal(out, IR_MOBILE);
	/* Persian digits are two bytes each: 160 of them is ADDR_MAX bytes. */
	size_t o = 0;
	for (int i = 0; i < 160; i++) {
		in[o++] = '\xdb';
		in[o++] = '\xb9';
	}
	in[o] = '\0';
	assert_int_equal(addr_normalize(ADDR_SMS, in, "IR", out, &reason), -1);
	assert_string_equal(reason, "too long");
	/* 15 digits is the E.164 maximum. */
	assert_int_equal(addr_normalize(ADDR_SMS, "+491234567890123", NULL, out, &reason), 0);
	assert_string_equal(out, "+491234567890123");
	assert_int_equal(addr_normalize(ADDR_SMS, "+4912345678", NULL, out, &reason), 0);
	assert_int_equal(addr_normalize(ADDR_SMS, "+49123456", NULL, out, &reason), 0);
	assert_int_equal(addr_normalize(ADDR_SMS, "+4912345", NULL, out, &reason), -1);
	assert_string_equal(reason, "too short");
}

static void test_chat_limits(void **state)
{
	(void)state;
	char in[1024], out[ADDR_MAX + 1];
	const char *reason;

	fill(in, '9', ADDR_MAX);
	assert_int_equal(addr_normalize(ADDR_CHAT, in, NULL, out, &reason), -1);
	assert_string_equal(reason, "chat id out of range");
	in[0] = '-';
	assert_int_equal(addr_normalize(ADDR_CHAT, in, NULL, out, &reason), -1);
	assert_string_equal(reason, "chat id out of range");
	fill(in, '1', ADDR_MAX + 1);
	assert_int_equal(addr_normalize(ADDR_CHAT, in, NULL, out, &reason), -1);
	assert_string_equal(reason, "too long");
}

static void test_embedded_nul_and_args(void **state)
{
	(void)state;
	char out[ADDR_MAX + 1];
	const char *reason;
	static const char nul_phone[] = "0912\0"
	                                "1234567";
	static const char nul_mail[] = "a@b.com\0Bcc: x@y.z";

	assert_int_equal(
	    addr_normalize_n(ADDR_SMS, nul_phone, sizeof(nul_phone) - 1, "IR", out, &reason), -1);
	assert_string_equal(reason, "contains a NUL byte");
	assert_int_equal(
	    addr_normalize_n(ADDR_EMAIL, nul_mail, sizeof(nul_mail) - 1, NULL, out, &reason), -1);
	assert_string_equal(reason, "contains a NUL byte");
	/* The length bounds the read: the part before the NUL alone is fine. */
	assert_int_equal(addr_normalize_n(ADDR_EMAIL, nul_mail, 7, NULL, out, &reason), 0);
	assert_string_equal(out, "a@b.com");
	assert_null(reason);
	assert_int_equal(addr_normalize_n(ADDR_SMS, "09121234567xyz", 11, "IR", out, &reason), 0);
	assert_string_equal(out, IR_MOBILE);
	assert_int_equal(addr_normalize_n(ADDR_SMS, "0912", 0, "IR", out, &reason), -1);
	assert_string_equal(reason, "empty");

	assert_int_equal(addr_normalize(ADDR_SMS, NULL, "IR", out, &reason), -1);
	assert_string_equal(reason, "empty");
	/* reason may be NULL. */
	assert_int_equal(addr_normalize(ADDR_SMS, "09121234567", "IR", out, NULL), 0);
	assert_string_equal(out, IR_MOBILE);
	assert_int_equal(addr_normalize(ADDR_SMS, "x", "IR", out, NULL), -1);
	/* Unknown kind. */
	assert_int_equal(addr_normalize((enum addr_kind)7, "a@b.com", NULL, out, &reason), -1);
	assert_string_equal(reason, "unknown address kind");
	assert_int_equal(addr_normalize(ADDR_KINDS, "a@b.com", NULL, out, &reason), -1);
	/* The same input means different things per kind. */
	assert_int_equal(addr_normalize(ADDR_CHAT, "9121234567", NULL, out, &reason), 0);
	assert_string_equal(out, "9121234567");
	assert_int_equal(addr_normalize(ADDR_SMS, "9121234567", NULL, out, &reason), -1);
	assert_int_equal(addr_normalize(ADDR_EMAIL, "9121234567", NULL, out, &reason), -1);
}

static void test_kinds(void **state)
{
	(void)state;
	assert_int_equal(addr_kind_parse("sms"), ADDR_SMS);
	assert_int_equal(addr_kind_parse("email"), ADDR_EMAIL);
	assert_int_equal(addr_kind_parse("chat"), ADDR_CHAT);
	assert_int_equal(addr_kind_parse("SMS"), -1);
	assert_int_equal(addr_kind_parse("mail"), -1);
	assert_int_equal(addr_kind_parse(""), -1);
	assert_int_equal(addr_kind_parse("sms "), -1);
	assert_int_equal(addr_kind_parse(NULL), -1);
	for (int k = 0; k < ADDR_KINDS; k++)
		assert_int_equal(addr_kind_parse(addr_kind_name((enum addr_kind)k)), k);
	assert_string_equal(addr_kind_name(ADDR_KINDS), "unknown");
	assert_string_equal(addr_kind_name((enum addr_kind) - 1), "unknown");
}

static void test_country_codes(void **state)
{
	(void)state;
	static const struct {
		const char *iso, *cc;
	} known[] = {
	    {"IR", "98"},  {"US", "1"},  {"CA", "1"},   {"GB", "44"},  {"DE", "49"},  {"FR", "33"},
	    {"AE", "971"}, {"TR", "90"}, {"IQ", "964"}, {"AF", "93"},  {"IN", "91"},  {"CN", "86"},
	    {"RU", "7"},   {"KZ", "7"},  {"IT", "39"},  {"ES", "34"},  {"NL", "31"},  {"SE", "46"},
	    {"CH", "41"},  {"AT", "43"}, {"BE", "32"},  {"JP", "81"},  {"KR", "82"},  {"AU", "61"},
	    {"BR", "55"},  {"MX", "52"}, {"SA", "966"}, {"QA", "974"}, {"KW", "965"}, {"OM", "968"},
	    {"BH", "973"}, {"PK", "92"}, {"AZ", "994"}, {"AM", "374"}, {"GE", "995"}, {"UA", "380"},
	    {"EG", "20"},  {"ZA", "27"}, {"NG", "234"}, {"IL", "972"}, {"JO", "962"}, {"LB", "961"},
	    {"SY", "963"}, {"HU", "36"}, {"PL", "48"},  {"PT", "351"}, {"IE", "353"}, {"GR", "30"},
	    {"SG", "65"},  {"MY", "60"}, {"ID", "62"},  {"TH", "66"},  {"VN", "84"},  {"PH", "63"},
	    {"ir", "98"},  {"Gb", "44"},
	};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		const char *cc = addr_country_code(known[i].iso);
		if (!cc || strcmp(cc, known[i].cc) != 0)
			fail_msg("country %s: got %s want %s", known[i].iso, cc ? cc : "NULL",
			         known[i].cc);
	}
	assert_null(addr_country_code("XX"));
	assert_null(addr_country_code("ZZ"));
	assert_null(addr_country_code(""));
	assert_null(addr_country_code("I"));
	assert_null(addr_country_code("IRN"));
	assert_null(addr_country_code(NULL));
}

/* Every national "0" + 9-digit mobile-like number maps under every default
 * country in the table to something E.164 shaped (or a refusal). */
static void test_output_shape(void **state)
{
	(void)state;
	static const char *const countries[] = {"IR", "US", "GB", "DE", "RU", "HU", "IT", "AE",
	                                        "TR", "IQ", "AF", "IN", "CN", "FR", "EG"};
	static const char *const inputs[] = {"09121234567", "0123456789",    "912345678",
	                                     "81234567890", "06 30 1234567", "1 212 555 0100"};
	for (size_t c = 0; c < sizeof(countries) / sizeof(countries[0]); c++) {
		for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
			char out[ADDR_MAX + 1];
			const char *reason;
			if (addr_normalize(ADDR_SMS, inputs[i], countries[c], out, &reason) != 0) {
				assert_non_null(reason);
				continue;
			}
			size_t n = strlen(out);
			assert_true(n >= 9 && n <= 16);
			assert_int_equal(out[0], '+');
			assert_true(out[1] >= '1' && out[1] <= '9');
			for (size_t k = 1; k < n; k++)
				assert_true(out[k] >= '0' && out[k] <= '9');
			/* Normalising the output again is a fixed point. */
			char again[ADDR_MAX + 1];
			assert_int_equal(addr_normalize(ADDR_SMS, out, NULL, again, &reason), 0);
			assert_string_equal(again, out);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sms),
	    cmocka_unit_test(test_email),
	    cmocka_unit_test(test_chat),
	    cmocka_unit_test(test_email_limits),
	    cmocka_unit_test(test_phone_limits),
	    cmocka_unit_test(test_chat_limits),
	    cmocka_unit_test(test_embedded_nul_and_args),
	    cmocka_unit_test(test_kinds),
	    cmocka_unit_test(test_country_codes),
	    cmocka_unit_test(test_output_shape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
