/*
 * test_segment.c - daemon/segment.c: the grammar (accepted definitions and
 * the field path + reason of refused ones), lenient dates, and scans over a
 * real redis-server: every operator on a small hand-made fixture whose
 * answers are written out here, batching (cursor, done on the last batch,
 * resume), next/free from inside the callback, requested fields, whole
 * contacts, engagement sets, a deleted contact, and a Redis that goes away.
 *
 * The server is /usr/bin/redis-server on a free 127.0.0.1 port, without
 * persistence, started once for the group and killed at the end.  Every
 * loop run is bounded by a guard timer (a hang fails, nothing waits on the
 * wall clock).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cdate.h"
#include "redis.h"
#include "segment.h"
#include "store.h"
#include "testlib.h"
#include "util.h"

#define GUARD_MS 20000
#define PREFIX   "t:"
/* 2025-06-15T12:00:00Z: Khordad 25, 1404 */
#define NOW 1749988800000LL
#define DAY 86400000LL

struct env {
	uv_loop_t loop;
	int port;
	pid_t pid;
	struct redis *r;
	struct store *st;
	redisContext *sync;
	int up;
};

static struct env *E;

/* ---- redis-server ------------------------------------------------------- */

static void guard_cb(uv_timer_t *t)
{
	*(int *)t->data = 1;
}

/* Run the loop until *flag or the guard fires; fails on the guard. */
static void run_until(int *flag)
{
	uv_timer_t g;
	int fired = 0;
	uv_timer_init(&E->loop, &g);
	g.data = &fired;
	uv_timer_start(&g, guard_cb, GUARD_MS, 0);
	while (!*flag && !fired)
		uv_run(&E->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&g, NULL);
	uv_run(&E->loop, UV_RUN_NOWAIT);
	if (fired)
		fail_msg("timed out");
}

static void state_cb(struct redis *r, int up, void *arg)
{
	(void)r;
	*(int *)arg = up;
}

static void cmd(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *rep = redisvCommand(E->sync, fmt, ap);
	va_end(ap);
	assert_non_null(rep);
	if (rep->type == REDIS_REPLY_ERROR)
		fail_msg("redis: %s", rep->str);
	freeReplyObject(rep);
}

/* A contact: id then field/value pairs, NULL-terminated. */
static void contact(const char *id, ...)
{
	va_list ap;
	const char *argv[64];
	int n = 0;
	char key[64];
	snprintf(key, sizeof key, PREFIX "c:%s", id);
	argv[n++] = "HSET";
	argv[n++] = key;
	argv[n++] = "id";
	argv[n++] = id;
	va_start(ap, id);
	for (const char *k; (k = va_arg(ap, const char *)) && n < 62;) {
		argv[n++] = k;
		argv[n++] = va_arg(ap, const char *);
		if (strcmp(k, "tags") == 0) {
			/* as contact_write.lua keeps them: the field and a set per tag */
			json_t *tags = json_loads(argv[n - 1], 0, NULL);
			size_t i;
			json_t *t;
			json_array_foreach(tags, i, t)
			{
				cmd("SADD " PREFIX "tag:%s %s", json_string_value(t), id);
			}
			json_decref(tags);
		}
	}
	va_end(ap);
	redisReply *rep = redisCommandArgv(E->sync, n, argv, NULL);
	assert_non_null(rep);
	freeReplyObject(rep);
	cmd("ZADD " PREFIX "contacts 0 %s", id);
}

static int group_setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	E = xcalloc(1, sizeof *E);
	if (uv_loop_init(&E->loop) != 0)
		return -1;
	E->port = tl_free_port();
	E->pid = tl_redis_start(E->port, NULL);
	if (E->pid < 0)
		return -1;
	struct timeval tv = {2, 0};
	E->sync = redisConnectWithTimeout("127.0.0.1", E->port, tv);
	if (!E->sync || E->sync->err)
		return -1;
	struct redis_opts o = {.name = "test", .host = "127.0.0.1", .port = E->port};
	E->r = redis_new(&E->loop, &o, state_cb, &E->up);
	E->st = store_new(E->r, PREFIX, 100);
	return 0;
}

static void closed(void *arg)
{
	*(int *)arg = 1;
}

static int group_teardown(void **state)
{
	(void)state;
	int done = 0;
	store_free(E->st);
	redis_close(E->r, closed, &done);
	while (!done)
		uv_run(&E->loop, UV_RUN_ONCE);
	uv_run(&E->loop, UV_RUN_NOWAIT);
	int rc = uv_loop_close(&E->loop);
	redisFree(E->sync);
	if (E->pid > 0) {
		kill(E->pid, SIGKILL);
		waitpid(E->pid, NULL, 0);
	}
	free(E);
	return rc == 0 ? 0 : -1;
}

/* ---- parsing ------------------------------------------------------------ */

static struct segment *parse(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	if (!j)
		fail_msg("bad test JSON %s: %s", text, jerr.text);
	struct segment *s = NULL;
	const char *field, *reason;
	int rc = segment_parse(j, &s, &field, &reason);
	json_decref(j);
	if (rc != 0)
		fail_msg("refused %s: %s: %s", text, field, reason);
	return s;
}

static void refused(const char *text, const char *want_field, const char *want_reason)
{
	json_t *j = json_loads(text, 0, NULL);
	assert_non_null(j);
	struct segment *s = (struct segment *)1;
	const char *field, *reason;
	int rc = segment_parse(j, &s, &field, &reason);
	json_decref(j);
	if (rc != -EINVAL)
		fail_msg("accepted %s", text);
	assert_null(s);
	if (strcmp(field, want_field) != 0)
		fail_msg("%s: field %s, want %s (%s)", text, field, want_field, reason);
	if (!strstr(reason, want_reason))
		fail_msg("%s: reason \"%s\" lacks \"%s\"", text, reason, want_reason);
}

static void test_parse_ok(void **state)
{
	(void)state;
	static const char *const ok[] = {
	    "{}",
	    "{\"match\":{}}",
	    "{\"name\":\"VIP\",\"description\":\"x\",\"match\":{\"all\":[]}}",
	    "{\"any\":[]}",
	    "{\"tags\":{\"all\":[\"vip\"],\"none\":[\"blocked\"]}}",
	    "{\"tier\":{\"in\":[\"gold\",null]}}",
	    "{\"attr\":\"city\",\"op\":\"eq\",\"value\":\"تهران\"}",
	    "{\"attr\":\"age\",\"op\":\"ge\",\"value\":\"۱۸\"}",
	    "{\"attr\":\"vip\",\"op\":\"ne\",\"value\":true}",
	    "{\"attr\":\"x.y-z_1\",\"op\":\"exists\"}",
	    "{\"field\":\"points\",\"op\":\"gt\",\"value\":1000}",
	    "{\"date\":\"last_purchase\",\"op\":\"within_last\",\"value\":\"۳۰d\"}",
	    "{\"date\":\"joined\",\"op\":\"before\",\"value\":\"1403/01/01\"}",
	    "{\"date\":\"created\",\"op\":\"after\",\"value\":\"2024-01-01T00:00:00Z\"}",
	    "{\"date\":\"updated\",\"op\":\"after\",\"value\":\"2w\"}",
	    "{\"date\":\"birthday\",\"op\":\"month\",\"value\":2,\"calendar\":\"jalali\"}",
	    "{\"date\":\"attr:wedding\",\"op\":\"month\",\"value\":\"next\",\"tz\":\"Asia/"
	    "Tehran\"}",
	    "{\"date\":\"birthday\",\"op\":\"exists\",\"value\":false}",
	    "{\"engaged\":\"replied\",\"id\":\"yalda-1403\"}",
	    "{\"not\":{\"engaged\":\"clicked\",\"id\":\"c1\"}}",
	    "{\"reachable\":\"sms\",\"category\":\"promotional\"}",
	    "{\"reachable\":\"any\"}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		segment_free(parse(ok[i]));
	struct segment *s = parse("{}");
	assert_true(segment_is_all(s));
	segment_free(s);
	s = parse("{\"match\":{\"all\":[]}}");
	assert_true(segment_is_all(s));
	segment_free(s);
	s = parse("{\"any\":[]}");
	assert_false(segment_is_all(s));
	segment_free(s);
	assert_true(segment_is_all(NULL));
}

static void test_parse_errors(void **state)
{
	(void)state;
	refused("{\"name\":\"x\"}", "match", "required");
	refused("{\"match\":[]}", "match", "must be an object");
	refused("{\"match\":{\"all\":[{},{\"tags\":{\"all\":\"vip\"}}]}}", "match.all[1].tags.all",
	        "array of strings");
	refused("{\"match\":{\"all\":[{\"attr\":\"city\",\"op\":\"eq\"}]}}", "match.all[0].value",
	        "required");
	refused("{\"match\":{\"any\":[{\"attr\":\"c i\",\"op\":\"eq\",\"value\":1}]}}",
	        "match.any[0].attr", "attribute name");
	refused("{\"attr\":\"a\",\"op\":\"like\",\"value\":1}", "op", "one of eq");
	refused("{\"attr\":\"a\",\"op\":\"lt\",\"value\":true}", "value", "eq and ne");
	refused("{\"attr\":\"a\",\"op\":\"contains\",\"value\":3}", "value", "contains takes");
	refused("{\"attr\":\"a\",\"op\":\"eq\",\"value\":[1]}", "value", "string, number");
	refused("{\"attr\":\"a\",\"op\":\"eq\",\"value\":1,\"extra\":2}", "extra", "unknown key");
	refused("{\"field\":\"password\",\"op\":\"eq\",\"value\":1}", "field", "contact field");
	refused("{\"tags\":{\"all\":[\"a\"]},\"tier\":{\"in\":[]}}", "", "one condition");
	refused("{\"match\":{\"not\":{\"tags\":{\"some\":[]}}}}", "match.not.tags.some",
	        "unknown key");
	refused("{\"tags\":{\"any\":[\"\"]}}", "tags.any[0]", "non-empty");
	refused("{\"tier\":{\"in\":\"gold\"}}", "tier.in", "array");
	refused("{\"date\":\"birthday\",\"op\":\"month\",\"value\":13}", "value", "month 1..12");
	refused("{\"date\":\"birthday\",\"op\":\"month\",\"value\":1,\"calendar\":\"hijri\"}",
	        "calendar", "gregorian or jalali");
	refused("{\"date\":\"birthday\",\"op\":\"month\",\"value\":1,\"tz\":\"Mars/Base\"}", "tz",
	        "IANA");
	refused("{\"date\":\"birthday\",\"op\":\"within_last\",\"value\":\"30\"}", "value",
	        "window");
	refused("{\"date\":\"birthday\",\"op\":\"before\",\"value\":\"1403/13/01\"}", "value",
	        "a date");
	refused("{\"date\":\"birthday\",\"op\":\"after\",\"value\":\"x\",\"calendar\":\"jalali\"}",
	        "calendar", "only with op month");
	refused("{\"date\":\"shoe_size\",\"op\":\"exists\"}", "date", "attr:NAME");
	refused("{\"engaged\":\"opened\",\"id\":\"c\"}", "engaged", "replied, clicked");
	refused("{\"engaged\":\"replied\"}", "id", "campaign, survey or raffle");
	refused("{\"reachable\":\"fax\"}", "reachable", "sms, email, chat or any");
	refused("{\"reachable\":\"sms\",\"category\":\"spam\"}", "category", "promotional");
	refused("{\"match\":{\"all\":[1]}}", "match.all[0]", "must be an object");
	/* depth */
	struct buf deep;
	buf_init(&deep, 0);
	for (int i = 0; i < 20; i++)
		buf_puts(&deep, "{\"not\":");
	buf_puts(&deep, "{}");
	for (int i = 0; i < 20; i++)
		buf_puts(&deep, "}");
	json_t *j = json_loads(deep.p, 0, NULL);
	buf_free(&deep);
	struct segment *s;
	const char *field, *reason;
	assert_int_equal(segment_parse(j, &s, &field, &reason), -EINVAL);
	assert_non_null(strstr(reason, "nested too deeply"));
	json_decref(j);
	/* too many engagement sets */
	json_t *any = json_array();
	for (int i = 0; i < 70; i++) {
		char id[16];
		snprintf(id, sizeof id, "c%d", i);
		json_array_append_new(any, json_pack("{s:s,s:s}", "engaged", "sent", "id", id));
	}
	j = json_pack("{s:o}", "any", any);
	assert_int_equal(segment_parse(j, &s, &field, &reason), -EINVAL);
	assert_string_equal(field, "any[64].engaged");
	json_decref(j);
	/* too many distinct attributes */
	any = json_array();
	for (int i = 0; i < 70; i++) {
		char a[16];
		snprintf(a, sizeof a, "a%d", i);
		json_array_append_new(any, json_pack("{s:s,s:s}", "attr", a, "op", "exists"));
	}
	j = json_pack("{s:o}", "any", any);
	assert_int_equal(segment_parse(j, &s, &field, &reason), -EINVAL);
	assert_non_null(strstr(reason, "too many contact fields"));
	json_decref(j);
}

static void test_date_lenient(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} ok[] = {
	    {"1990-05-17", "1990-05-17"},     {"1990/5/7", "1990-05-07"},
	    {" ۱۳۶۹/۰۲/۲۷ ", "j:1369-02-27"}, {"j:1369-02-27", "j:1369-02-27"},
	    {"--05-17", "--05-17"},           {"j:--12-30", "j:--12-30"},
	    {"1403/12/30", "j:1403-12-30"},   {"2024-02-29", "2024-02-29"},
	    {"١٣٦٩-٠٢-٢٧", "j:1369-02-27"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		struct cdate c;
		char out[32];
		if (segment_date_lenient(ok[i].in, &c) != 0)
			fail_msg("refused %s", ok[i].in);
		cdate_format(&c, out, sizeof out);
		assert_string_equal(out, ok[i].out);
	}
	static const char *const bad[] = {"",           "1990",        "90-05-17", "1990-13-01",
	                                  "2023-02-29", "1404/12/30",  "1990-5",   "1990-05-17x",
	                                  "--13-01",    "1990--05-17", "j:",       "12345-01-01"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct cdate c;
		if (segment_date_lenient(bad[i], &c) != -EINVAL)
			fail_msg("accepted %s", bad[i]);
	}
}

/* ---- scans -------------------------------------------------------------- */

struct collect {
	struct segment_scan *sc;
	char **ids;
	size_t n, cap;
	int calls, done, err, finished;
	char cursor[64];
	char first_cursor[64];
	uint64_t examined;
	int stop_after; /* free from inside the callback after this many calls */
	int pull_inside;
	json_t *extras; /* [[id, v0, v1], ...] */
	size_t nextra;
	json_t *whole; /* API forms of the matches */
};

static void on_batch(struct segment_scan *sc, void *arg, const char *const *ids, size_t n,
                     const char *cursor, int done, int err)
{
	struct collect *c = arg;
	assert_ptr_equal(sc, c->sc);
	assert_false(c->finished);
	c->calls++;
	for (size_t i = 0; i < n; i++) {
		if (c->n == c->cap) {
			c->cap = c->cap ? 2 * c->cap : 64;
			c->ids = xrealloc(c->ids, c->cap * sizeof *c->ids);
		}
		c->ids[c->n++] = xstrdup(ids[i]);
		if (c->extras) {
			json_t *row = json_pack("[s]", ids[i]);
			for (size_t k = 0; k < c->nextra; k++) {
				const char *v = segment_scan_value(sc, i, k);
				json_array_append_new(row, v ? json_string(v) : json_null());
			}
			json_array_append_new(c->extras, row);
		}
		if (c->whole)
			json_array_append(c->whole, segment_scan_contact(sc, i));
	}
	snprintf(c->cursor, sizeof c->cursor, "%s", cursor);
	if (c->calls == 1)
		snprintf(c->first_cursor, sizeof c->first_cursor, "%s", cursor);
	c->examined = segment_scan_examined(sc);
	if (done)
		assert_string_equal(cursor, "");
	if (done || err || (c->stop_after && c->calls == c->stop_after)) {
		c->done = done;
		c->err = err;
		c->finished = 1;
		segment_scan_free(sc);
		return;
	}
	if (c->pull_inside)
		segment_scan_next(sc);
}

static void collect_free(struct collect *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->ids[i]);
	free(c->ids);
	json_decref(c->extras);
	json_decref(c->whole);
}

/* Run a scan to its end, pulling each next batch from a fresh loop turn
 * (or from inside the callback when pull_inside). */
static void scan_run(struct collect *c, const struct segment *s, const char *cursor, size_t batch,
                     const struct segment_scan_opts *o)
{
	run_until(&E->up);
	c->sc = segment_scan_start_opts(E->st, s, NOW, cursor, batch, o, on_batch, c);
	while (!c->finished) {
		int before = c->calls;
		uv_timer_t g;
		int fired = 0;
		uv_timer_init(&E->loop, &g);
		g.data = &fired;
		uv_timer_start(&g, guard_cb, GUARD_MS, 0);
		while (c->calls == before && !c->finished && !fired)
			uv_run(&E->loop, UV_RUN_ONCE);
		uv_close((uv_handle_t *)&g, NULL);
		uv_run(&E->loop, UV_RUN_NOWAIT);
		if (fired)
			fail_msg("scan timed out");
		if (!c->finished && !c->pull_inside)
			segment_scan_next(c->sc);
	}
}

/* The ids a definition selects, as one space-separated sorted string. */
static char *select_ids(const char *def, size_t batch)
{
	struct segment *s = parse(def);
	struct collect c = {0};
	scan_run(&c, s, "", batch, NULL);
	assert_true(c.done);
	assert_int_equal(c.err, 0);
	struct buf b;
	buf_init(&b, 0);
	buf_append(&b, "", 0);
	for (size_t i = 0; i < c.n; i++)
		buf_printf(&b, "%s%s", i ? " " : "", c.ids[i]);
	collect_free(&c);
	segment_free(s);
	return buf_steal(&b);
}

static void ms_ago(char *out, int64_t days)
{
	snprintf(out, 24, "%lld", (long long)(NOW - days * DAY));
}

static void fixture(void)
{
	char d10[24], d100[24], d400[24], d5[24], d40[24], d1[24];
	ms_ago(d10, 10);
	ms_ago(d100, 100);
	ms_ago(d400, 400);
	ms_ago(d5, 5);
	ms_ago(d40, 40);
	ms_ago(d1, -1); /* in the future */
	cmd("FLUSHALL");
	contact("c01", "tags", "[\"vip\",\"tehran\"]", "tier", "gold", "x:city", "\"تهران\"",
	        "x:age", "30", "a:sms", "+989120000001", "created", d10, "x:birthday",
	        "\"1990-06-20\"", "last_purchase", d5, "points", "1500", NULL);
	contact("c02", "tags", "[\"vip\"]", "tier", "silver", "x:city", "\"Tehran \"", "x:age",
	        "\"۴۵\"", "a:email", "b@example.com", "prefs", "{\"consent\":{\"email\":false}}",
	        "x:birthday", "\"j:1369-03-30\"", "created", d100, "points", "20", NULL);
	contact("c03", "tags", "[]", "x:city", "\"\xd8\xb4\xd9\x8a\xd8\xb1\xd8\xa7\xd8\xb2\"",
	        "x:age", "18", "a:sms", "+989120000003", "prefs",
	        "{\"categories\":{\"promotional\":false}}", "x:birthday", "\"--02-29\"", "created",
	        d400, "x:joined", "\"2020-01-01\"", NULL);
	contact("c04", "tier", "gold", "x:age", "true", "a:chat", "12345", "x:birthday",
	        "\"j:--12-30\"", "created", d10, "last_purchase", d1, NULL);
	contact("c05", "tags", "[\"tehran\"]", "x:city", "\"Isfahan\"", "x:age",
	        "99999999999999999999", "x:vip", "true", "last_purchase", d40, "a:sms",
	        "+989120000005", "a:email", "e@example.com", "prefs",
	        "{\"consent\":{\"sms\":false}}", "created", d10, NULL);
	contact("c07", "x:note", "\"خرید ۱۲ عدد\"", "created", d10, "a:email", "g@example.com",
	        "prefs", "{\"consent\":{\"email\":true},\"categories\":{\"promotional\":false}}",
	        NULL);
	cmd("SADD " PREFIX "eng:replied:camp1 c01 c03");
	cmd("SADD " PREFIX "eng:clicked:camp1 c03");
}

static void expect(const char *def, const char *want)
{
	/* batch sizes: one, a few, exactly the fixture, more than it */
	static const size_t batches[] = {1, 2, 6, 1000};
	for (size_t i = 0; i < ARRAY_SIZE(batches); i++) {
		char *got = select_ids(def, batches[i]);
		if (strcmp(got, want) != 0)
			fail_msg("%s (batch %zu): got [%s], want [%s]", def, batches[i], got, want);
		free(got);
	}
}

static void test_scan_semantics(void **state)
{
	(void)state;
	fixture();
	expect("{}", "c01 c02 c03 c04 c05 c07");
	expect("{\"any\":[]}", "");
	/* tags */
	expect("{\"tags\":{\"all\":[\"vip\"]}}", "c01 c02");
	expect("{\"tags\":{\"all\":[\"vip\",\"tehran\"]}}", "c01");
	expect("{\"tags\":{\"any\":[\"vip\",\"tehran\"]}}", "c01 c02 c05");
	expect("{\"tags\":{\"none\":[\"vip\"]}}", "c03 c04 c05 c07");
	expect("{\"tags\":{\"any\":[\"tehran\"],\"none\":[\"vip\"]}}", "c05");
	/* tier */
	expect("{\"tier\":{\"in\":[\"gold\"]}}", "c01 c04");
	expect("{\"tier\":{\"in\":[\"silver\",null]}}", "c02 c03 c05 c07");
	/* attributes: normalised strings (Arabic yeh, trailing space, case),
	 * numbers from Persian digits, booleans, huge numbers */
	expect("{\"attr\":\"city\",\"op\":\"eq\",\"value\":\"tehran\"}", "c02");
	expect("{\"attr\":\"city\",\"op\":\"eq\",\"value\":"
	       "\"\xd8\xb4\xdb\x8c\xd8\xb1\xd8\xa7\xd8\xb2\"}",
	       "c03");
	expect("{\"attr\":\"city\",\"op\":\"ne\",\"value\":\"isfahan\"}", "c01 c02 c03 c04 c07");
	expect("{\"attr\":\"city\",\"op\":\"contains\",\"value\":\"TEH\"}", "c02");
	expect("{\"attr\":\"age\",\"op\":\"gt\",\"value\":29}", "c01 c02 c05");
	expect("{\"attr\":\"age\",\"op\":\"ge\",\"value\":\"۱۸\"}", "c01 c02 c03 c05");
	expect("{\"attr\":\"age\",\"op\":\"lt\",\"value\":30}", "c03");
	expect("{\"attr\":\"age\",\"op\":\"le\",\"value\":30}", "c01 c03");
	expect("{\"attr\":\"age\",\"op\":\"eq\",\"value\":true}", "c04");
	expect("{\"attr\":\"age\",\"op\":\"gt\",\"value\":1e19}", "c05");
	expect("{\"attr\":\"vip\",\"op\":\"eq\",\"value\":true}", "c05");
	expect("{\"attr\":\"vip\",\"op\":\"ne\",\"value\":true}", "c01 c02 c03 c04 c07");
	expect("{\"attr\":\"city\",\"op\":\"exists\"}", "c01 c02 c03 c05");
	expect("{\"attr\":\"city\",\"op\":\"exists\",\"value\":false}", "c04 c07");
	expect("{\"attr\":\"note\",\"op\":\"contains\",\"value\":\"12\"}", "c07");
	expect("{\"attr\":\"city\",\"op\":\"lt\",\"value\":\"s\"}", "c05");
	expect("{\"field\":\"points\",\"op\":\"ge\",\"value\":100}", "c01");
	expect("{\"field\":\"tier\",\"op\":\"eq\",\"value\":\"GOLD\"}", "c01 c04");
	/* dates */
	expect("{\"date\":\"last_purchase\",\"op\":\"within_last\",\"value\":\"30d\"}", "c01");
	expect("{\"date\":\"last_purchase\",\"op\":\"within_last\",\"value\":\"6w\"}", "c01 c05");
	expect("{\"not\":{\"date\":\"last_purchase\",\"op\":\"within_last\",\"value\":\"30d\"}}",
	       "c02 c03 c04 c05 c07");
	expect("{\"date\":\"joined\",\"op\":\"before\",\"value\":\"2021-01-01\"}", "c03");
	expect("{\"date\":\"joined\",\"op\":\"after\",\"value\":\"60d\"}", "c01 c04 c05 c07");
	expect("{\"date\":\"created\",\"op\":\"before\",\"value\":\"j:1404-01-01\"}", "c02 c03");
	expect("{\"date\":\"birthday\",\"op\":\"exists\"}", "c01 c02 c03 c04");
	expect("{\"date\":\"birthday\",\"op\":\"month\",\"value\":6}", "c01 c02");
	expect("{\"date\":\"birthday\",\"op\":\"month\",\"value\":\"current\"}", "c01 c02");
	expect("{\"date\":\"birthday\",\"op\":\"month\",\"value\":2}", "c03");
	expect("{\"date\":\"birthday\",\"op\":\"month\",\"value\":3}", "c04");
	expect("{\"date\":\"birthday\",\"op\":\"month\",\"value\":3,\"calendar\":\"jalali\"}",
	       "c01 c02");
	expect("{\"date\":\"birthday\",\"op\":\"month\",\"value\":\"current\",\"calendar\":"
	       "\"jalali\"}",
	       "c01 c02");
	expect("{\"date\":\"birthday\",\"op\":\"month\",\"value\":12,\"calendar\":\"jalali\"}",
	       "c03 c04");
	expect("{\"date\":\"birthday\",\"op\":\"month\",\"value\":\"next\",\"calendar\":"
	       "\"jalali\"}",
	       "");
	expect("{\"date\":\"last_purchase\",\"op\":\"month\",\"value\":5}", "c05");
	/* engagement */
	expect("{\"engaged\":\"replied\",\"id\":\"camp1\"}", "c01 c03");
	expect("{\"not\":{\"engaged\":\"replied\",\"id\":\"camp1\"}}", "c02 c04 c05 c07");
	expect("{\"all\":[{\"engaged\":\"replied\",\"id\":\"camp1\"},{\"not\":{\"engaged\":"
	       "\"clicked\",\"id\":\"camp1\"}}]}",
	       "c01");
	expect("{\"engaged\":\"entered\",\"id\":\"nothing\"}", "");
	/* reachability with consent */
	expect("{\"reachable\":\"sms\"}", "c01 c03");
	expect("{\"reachable\":\"sms\",\"category\":\"promotional\"}", "c01");
	expect("{\"reachable\":\"sms\",\"category\":\"transactional\"}", "c01 c03");
	expect("{\"reachable\":\"email\"}", "c05 c07");
	expect("{\"reachable\":\"email\",\"category\":\"promotional\"}", "c05");
	expect("{\"reachable\":\"any\",\"category\":\"promotional\"}", "c01 c04 c05");
	expect("{\"not\":{\"reachable\":\"any\"}}", "c02");
	/* c06: in the index, its hash gone (deleted between the two reads):
	 * skipped when a field is read, listed when only the index is */
	cmd("ZADD " PREFIX "contacts 0 c06");
	cmd("SADD " PREFIX "eng:replied:camp1 c06");
	expect("{\"attr\":\"city\",\"op\":\"exists\",\"value\":false}", "c04 c07");
	expect("{\"all\":[{\"engaged\":\"replied\",\"id\":\"camp1\"},{\"field\":\"lead\","
	       "\"op\":\"exists\",\"value\":false}]}",
	       "c01 c03");
	expect("{}", "c01 c02 c03 c04 c05 c06 c07");
	expect("{\"engaged\":\"replied\",\"id\":\"camp1\"}", "c01 c03 c06");
	cmd("ZREM " PREFIX "contacts c06");
	/* combinations */
	expect("{\"match\":{\"any\":[{\"tier\":{\"in\":[\"gold\"]}},{\"all\":[{\"tags\":{\"all\":"
	       "[\"vip\"]}},{\"attr\":\"age\",\"op\":\"gt\",\"value\":40}]}]}}",
	       "c01 c02 c04");
}

static void test_scan_batches(void **state)
{
	(void)state;
	cmd("FLUSHALL");
	/* 2345 contacts; every third has tag "x" */
	for (int i = 0; i < 2345; i++) {
		char id[16], tags[32], nm[32];
		snprintf(id, sizeof id, "k%05d", i);
		snprintf(tags, sizeof tags, "%s", i % 3 == 0 ? "[\"x\"]" : "[]");
		snprintf(nm, sizeof nm, "name %d", i);
		contact(id, "tags", tags, "name", nm, "a:sms", "+98912", NULL);
	}
	/* everyone: no field read, three batches, done on the third */
	struct collect c = {0};
	scan_run(&c, NULL, "", 1000, NULL);
	assert_int_equal(c.n, 2345);
	assert_int_equal(c.calls, 3);
	assert_true(c.done);
	assert_int_equal(c.examined, 2345);
	assert_string_equal(c.first_cursor, "k00999");
	assert_string_equal(c.ids[0], "k00000");
	assert_string_equal(c.ids[2344], "k02344");
	collect_free(&c);
	/* resume after the first batch's cursor */
	memset(&c, 0, sizeof c);
	scan_run(&c, NULL, "k00999", 1000, NULL);
	assert_int_equal(c.n, 1345);
	assert_string_equal(c.ids[0], "k01000");
	assert_int_equal(c.calls, 2);
	collect_free(&c);
	/* an exact multiple: the last full batch already says done */
	memset(&c, 0, sizeof c);
	scan_run(&c, NULL, "k00344", 1000, NULL);
	assert_int_equal(c.n, 2000);
	assert_int_equal(c.calls, 2);
	assert_true(c.done);
	collect_free(&c);
	/* past the end */
	memset(&c, 0, sizeof c);
	scan_run(&c, NULL, "zzz", 1000, NULL);
	assert_int_equal(c.n, 0);
	assert_int_equal(c.calls, 1);
	assert_true(c.done);
	collect_free(&c);
	/* a segment, pulled from inside the callback, with requested fields */
	struct segment *s = parse("{\"tags\":{\"any\":[\"x\"]}}");
	const char *fields[] = {"name", "a:email", "a:sms"};
	struct segment_scan_opts o = {.fields = fields, .nfields = 3};
	memset(&c, 0, sizeof c);
	c.pull_inside = 1;
	c.extras = json_array();
	c.nextra = 3;
	scan_run(&c, s, "", 500, &o);
	assert_int_equal(c.n, 782);
	assert_int_equal(c.calls, 5);
	assert_int_equal(c.examined, 2345);
	json_t *row = json_array_get(c.extras, 1);
	assert_string_equal(json_string_value(json_array_get(row, 0)), "k00003");
	assert_string_equal(json_string_value(json_array_get(row, 1)), "name 3");
	assert_true(json_is_null(json_array_get(row, 2)));
	assert_string_equal(json_string_value(json_array_get(row, 3)), "+98912");
	collect_free(&c);
	/* stop from inside the second callback: no third call, nothing leaks */
	memset(&c, 0, sizeof c);
	c.stop_after = 2;
	scan_run(&c, s, "", 100, NULL);
	assert_int_equal(c.calls, 2);
	assert_int_equal(c.n, 67);
	collect_free(&c);
	/* whole contacts */
	memset(&c, 0, sizeof c);
	c.whole = json_array();
	o = (struct segment_scan_opts){.whole = 1};
	scan_run(&c, s, "k02000", 1000, &o);
	assert_int_equal(c.n, 115);
	json_t *first = json_array_get(c.whole, 0);
	assert_string_equal(json_string_value(json_object_get(first, "id")), "k02001");
	assert_string_equal(json_string_value(json_object_get(first, "name")), "name 2001");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(first, "addresses"), "sms")),
	    "+98912");
	collect_free(&c);
	segment_free(s);
	/* everyone with requested fields (HMGET but no condition) */
	memset(&c, 0, sizeof c);
	c.extras = json_array();
	c.nextra = 1;
	const char *nm[] = {"name"};
	o = (struct segment_scan_opts){.fields = nm, .nfields = 1};
	scan_run(&c, NULL, "k02340", 1000, &o);
	assert_int_equal(c.n, 4);
	assert_string_equal(json_string_value(json_array_get(json_array_get(c.extras, 3), 1)),
	                    "name 2344");
	collect_free(&c);
}

/* free() right after start, with the first page still on its way */
static void test_scan_free_pending(void **state)
{
	(void)state;
	struct segment *s = parse("{\"tags\":{\"any\":[\"x\"]}}");
	struct collect c = {0};
	run_until(&E->up);
	c.sc = segment_scan_start(E->st, s, NOW, "", 10, on_batch, &c);
	segment_scan_free(c.sc);
	segment_free(s); /* the scan must not touch it any more */
	/* let the replies come back */
	int done = 0;
	redis_cmdf(E->r, NULL, NULL, "PING");
	uv_timer_t t;
	uv_timer_init(&E->loop, &t);
	t.data = &done;
	uv_timer_start(&t, guard_cb, 200, 0);
	run_until(&done);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&E->loop, UV_RUN_NOWAIT);
	assert_int_equal(c.calls, 0);
	collect_free(&c);
}

static void test_scan_redis_down(void **state)
{
	(void)state;
	struct segment *s = parse("{\"tags\":{\"any\":[\"x\"]}}");
	struct collect c = {0};
	run_until(&E->up);
	kill(E->pid, SIGKILL);
	waitpid(E->pid, NULL, 0);
	E->pid = -1;
	c.sc = segment_scan_start(E->st, s, NOW, "", 100, on_batch, &c);
	run_until(&c.finished);
	assert_int_equal(c.calls, 1);
	assert_int_not_equal(c.err, 0);
	assert_int_equal(c.n, 0);
	collect_free(&c);
	segment_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_ok),        cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_date_lenient),    cmocka_unit_test(test_scan_semantics),
	    cmocka_unit_test(test_scan_batches),    cmocka_unit_test(test_scan_free_pending),
	    cmocka_unit_test(test_scan_redis_down),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
