/*
 * test_imap_poll.c - the IMAP answers the email poller reads (imap_poll.c):
 * UIDVALIDITY from EXAMINE, UIDs from "* SEARCH" (ascending, the smallest
 * kept, repeats and garbage skipped), sizes and INTERNALDATE from FETCH
 * lines in any item order, IMAP dates with their offsets.  The poller
 * itself runs against a real dovecot in tests/integration/test_inbound_email.py.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "imap_poll.h"
#include "util.h"

static void test_uidvalidity(void **state)
{
	(void)state;
	const char *ex = "* OK [CLOSED] Previous mailbox closed.\r\n"
	                 "* FLAGS (\\Answered \\Seen)\r\n* 2 EXISTS\r\n"
	                 "* OK [UIDVALIDITY 1795410284] UIDs valid\r\n"
	                 "* OK [UIDNEXT 3] Predicted next UID\r\n";
	uint32_t v = 0;
	assert_int_equal(imap_parse_uidvalidity(ex, strlen(ex), &v), 0);
	assert_int_equal(v, 1795410284u);
	const char *bad[] = {"* OK [UIDNEXT 3]\r\n",
	                     "* OK [UIDVALIDITY ]\r\n",
	                     "* OK [UIDVALIDITY 99999999999] x\r\n",
	                     "* OK [UIDVALIDITY 0] x\r\n",
	                     "* OK [UIDVALIDITY 12",
	                     ""};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(imap_parse_uidvalidity(bad[i], strlen(bad[i]), &v), -ENOENT);
}

static void test_search(void **state)
{
	(void)state;
	uint32_t u[4];
	const char *s = "* SEARCH 9 3 7 1 3 12 x 5\r\n";
	assert_int_equal(imap_parse_search(s, strlen(s), u, 4), 6); /* 3 once, x skipped */
	assert_int_equal(u[0], 1);
	assert_int_equal(u[1], 3);
	assert_int_equal(u[2], 5);
	assert_int_equal(u[3], 7);
	const char *none = "* SEARCH\r\n";
	assert_int_equal(imap_parse_search(none, strlen(none), u, 4), 0);
	const char *two = "* 4 EXISTS\r\n* search 2\r\n* SEARCH 4294967295 4294967296\r\n";
	assert_int_equal(imap_parse_search(two, strlen(two), u, 4), 2);
	assert_int_equal(u[0], 2);
	assert_int_equal(u[1], 4294967295u);
	assert_int_equal(imap_parse_search("", 0, u, 4), 0);
	/* many: only the smallest are kept */
	struct buf b;
	buf_init(&b, 0);
	buf_puts(&b, "* SEARCH");
	for (int i = 1000; i > 0; i--)
		buf_printf(&b, " %d", i);
	uint32_t many[50];
	assert_int_equal(imap_parse_search(b.p, b.len, many, 50), 1000);
	for (int i = 0; i < 50; i++)
		assert_int_equal(many[i], (uint32_t)i + 1);
	buf_free(&b);
}

struct seen {
	uint32_t uid[8];
	uint64_t size[8];
	int64_t date[8];
	int n;
};

static void on_line(void *arg, uint32_t uid, uint64_t size, int64_t date_ms)
{
	struct seen *s = arg;
	assert_true(s->n < 8);
	s->uid[s->n] = uid;
	s->size[s->n] = size;
	s->date[s->n] = date_ms;
	s->n++;
}

static void test_fetch_lines(void **state)
{
	(void)state;
	const char *s =
	    "* 1 FETCH (UID 4 RFC822.SIZE 67 INTERNALDATE \"23-Nov-2026 10:15:00 +0330\")\r\n"
	    "* 2 FETCH (FLAGS (\\Seen (nested)) INTERNALDATE \" 3-Jan-2027 00:00:00 -0100\" "
	    "RFC822.SIZE 0 UID 9)\r\n"
	    "* 3 FETCH (UID 11 FLAGS ())\r\n"                                /* no size */
	    "* 4 FETCH (RFC822.SIZE 5)\r\n"                                  /* no uid */
	    "* 5 FETCH (UID 12 RFC822.SIZE 10 INTERNALDATE \"garbage\")\r\n" /* no date */
	    "* 6 FETCH (X-ODD \"a \\\" b\" UID 13 RFC822.SIZE 99999999999)\r\n"
	    "* 7 EXISTS\r\nA001 OK done\r\n";
	struct seen got = {0};
	assert_int_equal(imap_parse_fetch(s, strlen(s), on_line, &got), 4);
	assert_int_equal(got.uid[0], 4);
	assert_int_equal(got.size[0], 67);
	assert_int_equal(got.date[0], 1795416300000LL);
	assert_int_equal(got.uid[1], 9);
	assert_int_equal(got.size[1], 0);
	assert_int_equal(got.date[1], 1798938000000LL); /* 2027-01-03 01:00:00 UTC */
	assert_int_equal(got.uid[2], 12);
	assert_int_equal(got.date[2], 0);
	assert_int_equal(got.uid[3], 13);
	assert_int_equal(got.size[3], 99999999999ULL);
}

static void test_dates(void **state)
{
	(void)state;
	int64_t ms = 0;
	const char *d = "01-Jan-1970 00:00:00 +0000";
	assert_int_equal(imap_parse_date(d, strlen(d), &ms), 0);
	assert_int_equal(ms, 0);
	d = "29-Feb-2024 23:59:59 +1400";
	assert_int_equal(imap_parse_date(d, strlen(d), &ms), 0);
	assert_int_equal(ms, 1709251199000LL - 14 * 3600000LL);
	const char *bad[] = {"",
	                     "32-Jan-2024 00:00:00 +0000",
	                     "01-Foo-2024 00:00:00 +0000",
	                     "01-Jan-24 00:00:00 +0000",
	                     "01-Jan-2024 24:00:00 +0000",
	                     "01-Jan-2024 00:00 +0000",
	                     "01-Jan-2024 00:00:00 0000",
	                     "01-Jan-2024 00:00:00 +1560",
	                     "01-Jan-2024 00:00:00 +00"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (imap_parse_date(bad[i], strlen(bad[i]), &ms) != -EINVAL)
			fail_msg("accepted [%s]", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_uidvalidity),
	    cmocka_unit_test(test_search),
	    cmocka_unit_test(test_fetch_lines),
	    cmocka_unit_test(test_dates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
