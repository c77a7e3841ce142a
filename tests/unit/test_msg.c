/*
 * test_msg.c - unit tests for daemon/msg.c: every (from, to) pair of
 * msg_transition_ok against a table written here from the state diagram in
 * msg.h, names and their round trip, final states; and the `allowed` table
 * in daemon/lua/msg_settle.lua (read from the source tree at run time) must
 * agree with msg.c for all pairs.  Owns nothing else; reads one file, never
 * writes any.
 * The Lua file is found from the working directory (the suite runs from the
 * repository root), then $CLUBD_SRC, then two levels above the test binary.
 * The Lua reader accepts only the plain `name = {to = 1, ...}` form used
 * today; any other shape fails the test loudly rather than being skipped.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "msg.h"
#include "util.h"

#define N MSG__NSTATES

/*
 * Expected transitions, from the diagram in msg.h:
 *   scheduled -> ready -> sending -> sent -> delivered
 *   sent -> failed (undelivered report)
 *   sending -> scheduled | failed | suppressed | expired
 *   scheduled/ready -> cancelled | expired | suppressed
 * plus sending -> sending, which the diagram does not draw: a lease that
 * ran out is re-claimed by another dispatcher (msg_claim.lua) and msg.c and
 * msg_settle.lua both list it.
 */
static const char *const expect_edges[][2] = {
    {"scheduled", "ready"},     {"ready", "sending"},      {"sending", "sent"},
    {"sent", "delivered"},      {"sent", "failed"},        {"sending", "scheduled"},
    {"sending", "failed"},      {"sending", "suppressed"}, {"sending", "expired"},
    {"scheduled", "cancelled"}, {"scheduled", "expired"},  {"scheduled", "suppressed"},
    {"ready", "cancelled"},     {"ready", "expired"},      {"ready", "suppressed"},
    {"sending", "sending"},
};

static const char *const all_names[N] = {
    "scheduled", "ready",      "sending", "sent",      "delivered",
    "failed",    "suppressed", "expired", "cancelled",
};

static int name_index(const char *s)
{
	for (int i = 0; i < N; i++)
		if (strcmp(all_names[i], s) == 0)
			return i;
	fail_msg("unknown state name '%s'", s);
	return -1;
}

static void expected_table(int t[N][N])
{
	memset(t, 0, sizeof(int) * N * N);
	for (size_t i = 0; i < ARRAY_SIZE(expect_edges); i++)
		t[name_index(expect_edges[i][0])][name_index(expect_edges[i][1])] = 1;
}

static void test_names(void **state)
{
	(void)state;
	/* the enum order is part of the contract (stored nowhere, but logged) */
	assert_string_equal(msg_state_name(MSG_SCHEDULED), "scheduled");
	assert_string_equal(msg_state_name(MSG_READY), "ready");
	assert_string_equal(msg_state_name(MSG_SENDING), "sending");
	assert_string_equal(msg_state_name(MSG_SENT), "sent");
	assert_string_equal(msg_state_name(MSG_DELIVERED), "delivered");
	assert_string_equal(msg_state_name(MSG_FAILED), "failed");
	assert_string_equal(msg_state_name(MSG_SUPPRESSED), "suppressed");
	assert_string_equal(msg_state_name(MSG_EXPIRED), "expired");
	assert_string_equal(msg_state_name(MSG_CANCELLED), "cancelled");
	for (int i = 0; i < N; i++) {
		assert_string_equal(msg_state_name((enum msg_state)i), all_names[i]);
		assert_int_equal(msg_state_parse(all_names[i]), i);
		assert_int_equal(msg_state_parse(msg_state_name((enum msg_state)i)), i);
	}
	assert_string_equal(msg_state_name(MSG__NSTATES), "unknown");
	assert_string_equal(msg_state_name((enum msg_state) - 1), "unknown");
	assert_string_equal(msg_state_name((enum msg_state)1000), "unknown");

	static const char *const bad[] = {"",         "unknown", "Sent",       "SENT",    "sent ",
	                                  " sent",    "sen",     "sentx",      "deliver", "cancel",
	                                  "canceled", "ready\n", "scheduled\t"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(msg_state_parse(bad[i]), -1);
}

static void test_transitions(void **state)
{
	int t[N][N];

	(void)state;
	expected_table(t);
	for (int f = 0; f < N; f++)
		for (int to = 0; to < N; to++) {
			int got = msg_transition_ok((enum msg_state)f, (enum msg_state)to) != 0;
			if (got != t[f][to])
				fail_msg("msg_transition_ok(%s -> %s) = %d, diagram says %d",
				         all_names[f], all_names[to], got, t[f][to]);
		}
	/* out-of-range states never pass */
	for (int s = 0; s < N; s++) {
		assert_int_equal(msg_transition_ok((enum msg_state)s, MSG__NSTATES), 0);
		assert_int_equal(msg_transition_ok(MSG__NSTATES, (enum msg_state)s), 0);
		assert_int_equal(msg_transition_ok((enum msg_state)s, (enum msg_state) - 1), 0);
		assert_int_equal(msg_transition_ok((enum msg_state) - 1, (enum msg_state)s), 0);
		assert_int_equal(msg_transition_ok((enum msg_state)s, (enum msg_state)31), 0);
		assert_int_equal(msg_transition_ok((enum msg_state)40, (enum msg_state)s), 0);
	}
}

static void test_final(void **state)
{
	int t[N][N];

	(void)state;
	expected_table(t);
	for (int s = 0; s < N; s++) {
		int out = 0;
		for (int to = 0; to < N; to++)
			out |= t[s][to];
		/* final exactly when the diagram has no way out */
		assert_int_equal(msg_state_final((enum msg_state)s) != 0, !out);
	}
	assert_true(msg_state_final(MSG_DELIVERED));
	assert_true(msg_state_final(MSG_FAILED));
	assert_true(msg_state_final(MSG_SUPPRESSED));
	assert_true(msg_state_final(MSG_EXPIRED));
	assert_true(msg_state_final(MSG_CANCELLED));
	assert_false(msg_state_final(MSG_SCHEDULED));
	assert_false(msg_state_final(MSG_READY));
	assert_false(msg_state_final(MSG_SENDING));
	assert_false(msg_state_final(MSG_SENT));
	/* every state is reachable from scheduled, and every state reaches a final one */
	int reach[N] = {0}, changed = 1;
	reach[MSG_SCHEDULED] = 1;
	while (changed) {
		changed = 0;
		for (int f = 0; f < N; f++)
			for (int to = 0; to < N; to++)
				if (reach[f] && !reach[to] &&
				    msg_transition_ok((enum msg_state)f, (enum msg_state)to)) {
					reach[to] = 1;
					changed = 1;
				}
	}
	for (int s = 0; s < N; s++)
		if (!reach[s])
			fail_msg("%s unreachable from scheduled", all_names[s]);
}

/* The Lua table ---------------------------------------------------------- */

#define LUA_REL "daemon/lua/msg_settle.lua"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct buf b;
	buf_init(&b, 1 << 20);
	char chunk[4096];
	size_t n;
	int rc = 0;
	while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
		rc = buf_append(&b, chunk, n);
	fclose(f);
	if (rc < 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

static char *find_lua(char *where, size_t wn)
{
	char *s;
	snprintf(where, wn, "%s", LUA_REL);
	if ((s = slurp(where)))
		return s;
	const char *src = getenv("CLUBD_SRC");
	if (src && *src) {
		snprintf(where, wn, "%s/%s", src, LUA_REL);
		if ((s = slurp(where)))
			return s;
	}
	/* BUILD/tests/test_msg -> repository root is two levels up */
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			snprintf(where, wn, "%s/../../%s", exe, LUA_REL);
			if ((s = slurp(where)))
				return s;
		}
	}
	return NULL;
}

struct lex {
	const char *p;
	int line;
};

static void skip_space(struct lex *lx)
{
	for (;;) {
		if (*lx->p == '\n') {
			lx->line++;
			lx->p++;
		} else if (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\r') {
			lx->p++;
		} else if (lx->p[0] == '-' && lx->p[1] == '-') {
			while (*lx->p && *lx->p != '\n')
				lx->p++;
		} else {
			return;
		}
	}
}

static void expect_char(struct lex *lx, char c)
{
	skip_space(lx);
	if (*lx->p != c)
		fail_msg(LUA_REL ":%d: expected '%c' in the allowed table, found '%.12s'", lx->line,
		         c, lx->p);
	lx->p++;
}

static int peek(struct lex *lx, char c)
{
	skip_space(lx);
	return *lx->p == c;
}

static int read_state(struct lex *lx)
{
	char name[32];
	size_t n = 0;
	skip_space(lx);
	while ((*lx->p >= 'a' && *lx->p <= 'z') || *lx->p == '_') {
		if (n + 1 >= sizeof name)
			fail_msg(LUA_REL ":%d: name too long", lx->line);
		name[n++] = *lx->p++;
	}
	name[n] = '\0';
	if (n == 0)
		fail_msg(LUA_REL ":%d: expected a state name, found '%.12s'", lx->line, lx->p);
	int s = msg_state_parse(name);
	if (s < 0)
		fail_msg(LUA_REL ":%d: '%s' is not a state msg.c knows", lx->line, name);
	return s;
}

/* Parse `local allowed = { from = {to = 1, ...}, ... }` into t. */
static void parse_lua_allowed(const char *text, int t[N][N])
{
	static const char head[] = "local allowed = {";
	const char *at = strstr(text, head);
	if (!at) {
		fail_msg(LUA_REL ": no '%s' found", head);
		return;
	}
	if (strstr(at + 1, head))
		fail_msg(LUA_REL ": '%s' appears twice", head);
	struct lex lx = {at + sizeof head - 1, 1};
	for (const char *c = text; c < at; c++)
		lx.line += *c == '\n';

	int seen_from[N] = {0};
	memset(t, 0, sizeof(int) * N * N);
	while (!peek(&lx, '}')) {
		int from = read_state(&lx);
		if (seen_from[from]++)
			fail_msg(LUA_REL ":%d: '%s' listed twice", lx.line, all_names[from]);
		expect_char(&lx, '=');
		expect_char(&lx, '{');
		while (!peek(&lx, '}')) {
			int to = read_state(&lx);
			expect_char(&lx, '=');
			skip_space(&lx);
			if (strncmp(lx.p, "1", 1) == 0)
				lx.p += 1;
			else if (strncmp(lx.p, "true", 4) == 0)
				lx.p += 4;
			else
				fail_msg(LUA_REL ":%d: expected 1 or true, found '%.12s'", lx.line,
				         lx.p);
			if (t[from][to])
				fail_msg(LUA_REL ":%d: %s -> %s listed twice", lx.line,
				         all_names[from], all_names[to]);
			t[from][to] = 1;
			if (!peek(&lx, ','))
				break;
			lx.p++;
		}
		expect_char(&lx, '}');
		if (!peek(&lx, ','))
			break;
		lx.p++;
	}
	expect_char(&lx, '}');
}

static void test_lua_table(void **state)
{
	char where[PATH_MAX + 64];
	int lua[N][N];

	(void)state;
	char *text = find_lua(where, sizeof where);
	if (!text)
		fail_msg("cannot read " LUA_REL " (tried the working directory, $CLUBD_SRC and "
		         "the test binary's ../..); run from the repository root or set CLUBD_SRC");
	parse_lua_allowed(text, lua);
	free(text);

	int mismatches = 0;
	for (int f = 0; f < N; f++)
		for (int to = 0; to < N; to++) {
			int c = msg_transition_ok((enum msg_state)f, (enum msg_state)to) != 0;
			if (c != lua[f][to]) {
				print_error("%s -> %s: msg.c %s, %s %s\n", all_names[f],
				            all_names[to], c ? "allows" : "refuses", where,
				            lua[f][to] ? "allows" : "refuses");
				mismatches++;
			}
		}
	if (mismatches)
		fail_msg("%d transitions differ between msg.c and %s", mismatches, where);
}

/* The reader itself must be able to fail: feed it known tables. */
static void test_lua_reader(void **state)
{
	int t[N][N];

	(void)state;
	parse_lua_allowed(
	    "x\n-- c\nlocal allowed = {\n  sent = {delivered = 1, failed = true}, -- x\n"
	    "  ready = {sending = 1,},\n}\nreturn 1\n",
	    t);
	for (int f = 0; f < N; f++)
		for (int to = 0; to < N; to++) {
			int want = (f == MSG_SENT && (to == MSG_DELIVERED || to == MSG_FAILED)) ||
			           (f == MSG_READY && to == MSG_SENDING);
			assert_int_equal(t[f][to], want);
		}
	parse_lua_allowed("local allowed = {}", t);
	for (int f = 0; f < N; f++)
		for (int to = 0; to < N; to++)
			assert_int_equal(t[f][to], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),     cmocka_unit_test(test_transitions),
	    cmocka_unit_test(test_final),     cmocka_unit_test(test_lua_reader),
	    cmocka_unit_test(test_lua_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
