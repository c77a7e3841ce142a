/*
 * test_raffle.c - raffle definitions and rules without a store: a full
 * definition and its canonical public form (codes never in it), every
 * refusal with the field it names, codes unique after normalising
 * (Persian digits, case), what a purchase is worth, entry weights by
 * method and tier, and the draw over stored weights (raffle_draw_run)
 * against docs/raffles.md's vector 1, the clipping of k, the empty list and
 * refused inputs.  Then the store side against a real redis-server (a child
 * on a free 127.0.0.1 port, killed at the end): the entry points other
 * modules call (raffle_enter_by_keyword, raffle_enter_by_purchase: their
 * reply shapes, idempotency, windows, codes, caps) and the draw's lease
 * (early, forced, drawn once).  Loop waits are bounded by a guard that only
 * catches hangs.
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

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "club/raffle.h"
#include "draw.h"
#include "redis.h"
#include "store.h"
#include "store_raffles.h"
#include "testlib.h"
#include "util.h"

#define GUARD_MS 20000

/* یلدا and ۱۲ (Persian digits) */
#define FA_YALDA            "\xdb\x8c\xd9\x84\xd8\xaf\xd8\xa7"
#define FA_YALDA_ARABIC_YEH "\xd9\x8a\xd9\x84\xd8\xaf\xd8\xa7"
#define FA_12               "\xdb\xb1\xdb\xb2"

static const char *FULL =
    "{\"id\":\"yalda-1404\",\"name\":\"Yalda\",\"prize\":\"A trip\\nfor two\","
    "\"starts_at\":\"2026-12-01T00:00:00+03:30\",\"ends_at\":\"2026-12-21T00:00:00Z\","
    "\"methods\":[\"keyword\",\"code\",\"purchase\",\"points\"],\"keyword\":\"" FA_YALDA "\","
    "\"codes\":[\"AB12\",\"cd34\",\"EF56\"],"
    "\"purchase\":{\"min_amount\":\"500000\",\"currency\":\"IRR\",\"entries_per\":250000},"
    "\"points_cost\":100,\"max_entries_per_contact\":3,"
    "\"weights\":{\"methods\":{\"purchase\":2},\"tiers\":{\"gold\":3,\"silver\":2}},"
    "\"winners\":2,\"notify_template\":\"raffle-win\",\"reply_template\":\"raffle-entry\"}";

static struct raffle_def *parse_ok(const char *text, int id_required)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	assert_non_null(j);
	struct raffle_def *d = NULL;
	const char *field = NULL;
	char reason[160] = "";
	int rc = raffle_parse(j, id_required, &d, &field, reason, sizeof reason);
	if (rc != 0)
		fail_msg("refused: field=%s reason=%s", field ? field : "-", reason);
	json_decref(j);
	return d;
}

/* Refused, naming field (and the reason containing why when not NULL). */
static void refused(const char *text, const char *field, const char *why)
{
	json_t *j = json_loads(text, 0, NULL);
	assert_non_null(j);
	struct raffle_def *d = (struct raffle_def *)1;
	const char *f = NULL;
	char reason[160] = "";
	int rc = raffle_parse(j, 0, &d, &f, reason, sizeof reason);
	json_decref(j);
	if (rc != -EINVAL)
		fail_msg("accepted: %s", text);
	assert_null(d);
	if (!f || strcmp(f, field) != 0)
		fail_msg("field %s, want %s (reason %s) for %s", f ? f : "(null)", field, reason,
		         text);
	if (why && !strstr(reason, why))
		fail_msg("reason \"%s\" lacks \"%s\"", reason, why);
}

static void test_full_definition(void **state)
{
	(void)state;
	struct raffle_def *d = parse_ok(FULL, 1);
	assert_string_equal(d->id, "yalda-1404");
	assert_int_equal(d->methods, 0xf);
	assert_string_equal(d->keyword, FA_YALDA);
	assert_string_equal(d->keyword_norm, FA_YALDA);
	assert_int_equal(d->ncodes, 3);
	assert_string_equal(d->codes[0], "ab12");
	assert_string_equal(d->codes[1], "cd34");
	assert_int_equal(d->min_amount_c, 50000000);
	assert_int_equal(d->entries_per_c, 25000000);
	assert_string_equal(d->currency, "IRR");
	assert_int_equal(d->points_cost, 100);
	assert_int_equal(d->max_entries, 3);
	assert_int_equal(d->winners, 2);
	assert_int_equal(d->method_weight[RAFFLE_PURCHASE], 2);
	assert_int_equal(d->method_weight[RAFFLE_KEYWORD], 1);
	assert_int_equal(d->ntiers, 2);
	assert_int_equal(d->starts_at, 1796070600000LL); /* 2026-11-30T20:30:00Z */
	assert_string_equal(d->notify_tpl, "raffle-win");

	json_t *pub = raffle_def_json(d);
	char *s = json_dumps(pub, JSON_COMPACT | JSON_SORT_KEYS);
	assert_null(strstr(s, "ab12")); /* codes are secrets */
	assert_null(strstr(s, "AB12"));
	assert_int_equal(json_integer_value(json_object_get(pub, "codes_total")), 3);
	assert_string_equal(json_string_value(json_object_get(pub, "starts_at")),
	                    "2026-11-30T20:30:00.000Z");
	json_t *p = json_object_get(pub, "purchase");
	assert_string_equal(json_string_value(json_object_get(p, "min_amount")), "500000.00");
	assert_string_equal(json_string_value(json_object_get(p, "entries_per")), "250000.00");
	json_t *wm = json_object_get(json_object_get(pub, "weights"), "methods");
	assert_int_equal(json_object_size(wm), 4);
	assert_int_equal(json_integer_value(json_object_get(wm, "purchase")), 2);
	assert_string_equal(json_string_value(json_object_get(pub, "prize")), "A trip\nfor two");
	/* the public form parses again to the same rules (minus the codes) */
	free(s);
	json_decref(pub);
	raffle_def_free(d);
}

static void test_defaults(void **state)
{
	(void)state;
	struct raffle_def *d =
	    parse_ok("{\"name\":\"n\",\"starts_at\":\"2026-01-01T00:00:00Z\","
	             "\"ends_at\":\"2026-01-02T00:00:00Z\",\"methods\":[\"keyword\"],"
	             "\"keyword\":\" Yalda \",\"winners\":1}",
	             0);
	assert_string_equal(d->id, "");
	assert_string_equal(d->keyword_norm, "yalda");
	assert_int_equal(d->max_entries, 1);
	assert_string_equal(d->prize, "");
	assert_string_equal(d->notify_tpl, "");
	for (int m = 0; m < RAFFLE_METHODS; m++)
		assert_int_equal(d->method_weight[m], 1);
	json_t *pub = raffle_def_json(d);
	assert_true(json_is_null(json_object_get(pub, "purchase")));
	assert_true(json_is_null(json_object_get(pub, "codes_total")));
	assert_true(json_is_null(json_object_get(pub, "notify_template")));
	assert_int_equal(json_object_size(json_object_get(pub, "weights")), 2);
	json_decref(pub);
	raffle_def_free(d);

	/* Arabic yeh is Persian yeh after normalising */
	d = parse_ok("{\"name\":\"n\",\"starts_at\":\"2026-01-01T00:00:00Z\","
	             "\"ends_at\":\"2026-01-02T00:00:00Z\",\"methods\":[\"keyword\"],"
	             "\"keyword\":\"" FA_YALDA_ARABIC_YEH "\",\"winners\":1}",
	             0);
	assert_string_equal(d->keyword_norm, FA_YALDA);
	raffle_def_free(d);
}

#define BASE                                                                                       \
	"\"name\":\"n\",\"starts_at\":\"2026-01-01T00:00:00Z\",\"ends_at\":\"2026-01-02T00:00:"    \
	"00Z\","                                                                                   \
	"\"winners\":1"

static void test_refusals(void **state)
{
	(void)state;
	refused("[]", "", "object");
	refused("{" BASE ",\"methods\":[\"keyword\"],\"keyword\":\"x\",\"bogus\":1}", "bogus",
	        "unknown");
	refused("{\"id\":\"a b\"," BASE ",\"methods\":[\"keyword\"],\"keyword\":\"x\"}", "id",
	        NULL);
	refused("{\"starts_at\":\"2026-01-01T00:00:00Z\",\"ends_at\":\"2026-01-02T00:00:00Z\","
	        "\"winners\":1,\"methods\":[\"keyword\"],\"keyword\":\"x\"}",
	        "name", "required");
	refused("{\"name\":\"a\\u0001\",\"starts_at\":\"2026-01-01T00:00:00Z\","
	        "\"ends_at\":\"2026-01-02T00:00:00Z\",\"winners\":1,\"methods\":[\"keyword\"],"
	        "\"keyword\":\"x\"}",
	        "name", "control");
	refused("{\"name\":\"n\",\"starts_at\":\"2026-01-02T00:00:00Z\","
	        "\"ends_at\":\"2026-01-02T00:00:00Z\",\"winners\":1,\"methods\":[\"keyword\"],"
	        "\"keyword\":\"x\"}",
	        "ends_at", "later");
	refused("{\"name\":\"n\",\"starts_at\":\"yesterday\","
	        "\"ends_at\":\"2026-01-02T00:00:00Z\",\"winners\":1,\"methods\":[\"keyword\"],"
	        "\"keyword\":\"x\"}",
	        "starts_at", "RFC 3339");
	refused("{" BASE ",\"methods\":[]}", "methods", NULL);
	refused("{" BASE ",\"methods\":[\"keyword\",\"lottery\"],\"keyword\":\"x\"}", "methods[1]",
	        NULL);
	refused("{" BASE ",\"methods\":[\"keyword\",\"keyword\"],\"keyword\":\"x\"}", "methods[1]",
	        "twice");
	refused("{" BASE ",\"methods\":[\"keyword\"]}", "keyword", "required");
	refused("{" BASE ",\"methods\":[\"keyword\"],\"keyword\":\"two words\"}", "keyword",
	        "one word");
	refused("{" BASE ",\"methods\":[\"points\"],\"points_cost\":5,\"keyword\":\"x\"}",
	        "keyword", "only with");
	refused("{" BASE ",\"methods\":[\"code\"]}", "codes", "required");
	refused("{" BASE ",\"methods\":[\"keyword\"],\"keyword\":\"x\",\"codes\":[\"a\"]}", "codes",
	        "only with");
	refused("{" BASE ",\"methods\":[\"code\"],\"codes\":[\"ok\",\"with space\"]}", "codes[1]",
	        NULL);
	refused("{" BASE ",\"methods\":[\"code\"],\"codes\":[\"AB12\",\"ab" FA_12 "\"]}", "codes",
	        "same");
	refused("{" BASE ",\"methods\":[\"code\"],\"keyword\":\"win\",\"codes\":[\"WIN\"]}",
	        "codes[0]", "keyword");
	refused("{" BASE ",\"methods\":[\"purchase\"]}", "purchase", "required");
	refused("{" BASE ",\"methods\":[\"purchase\"],\"purchase\":{}}", "purchase.currency",
	        "required");
	refused("{" BASE ",\"methods\":[\"purchase\"],\"purchase\":{\"currency\":\"irr\"}}",
	        "purchase.currency", NULL);
	refused("{" BASE ",\"methods\":[\"purchase\"],\"purchase\":{\"currency\":\"IRR\","
	        "\"min_amount\":\"1.234\"}}",
	        "purchase.min_amount", "2 decimal");
	refused("{" BASE ",\"methods\":[\"purchase\"],\"purchase\":{\"currency\":\"IRR\","
	        "\"x\":1}}",
	        "purchase.x", "unknown");
	refused("{" BASE ",\"methods\":[\"points\"]}", "points_cost", "required");
	refused("{" BASE ",\"methods\":[\"points\"],\"points_cost\":0}", "points_cost", NULL);
	refused("{" BASE ",\"methods\":[\"keyword\"],\"keyword\":\"x\",\"points_cost\":3}",
	        "points_cost", "only with");
	refused("{" BASE ",\"methods\":[\"keyword\"],\"keyword\":\"x\","
	        "\"max_entries_per_contact\":1001}",
	        "max_entries_per_contact", NULL);
	refused("{\"name\":\"n\",\"starts_at\":\"2026-01-01T00:00:00Z\","
	        "\"ends_at\":\"2026-01-02T00:00:00Z\",\"methods\":[\"keyword\"],\"keyword\":\"x\"}",
	        "winners", "required");
	refused("{\"name\":\"n\",\"starts_at\":\"2026-01-01T00:00:00Z\","
	        "\"ends_at\":\"2026-01-02T00:00:00Z\",\"winners\":0,\"methods\":[\"keyword\"],"
	        "\"keyword\":\"x\"}",
	        "winners", NULL);
	refused("{" BASE ",\"methods\":[\"keyword\"],\"keyword\":\"x\","
	        "\"weights\":{\"methods\":{\"keyword\":0}}}",
	        "weights.methods.keyword", NULL);
	refused("{" BASE ",\"methods\":[\"keyword\"],\"keyword\":\"x\","
	        "\"weights\":{\"methods\":{\"raffle\":2}}}",
	        "weights.methods.raffle", NULL);
	refused("{" BASE ",\"methods\":[\"keyword\"],\"keyword\":\"x\","
	        "\"weights\":{\"tiers\":{\"go ld\":2}}}",
	        "weights.tiers.go ld", NULL);
	refused("{" BASE ",\"methods\":[\"keyword\"],\"keyword\":\"x\","
	        "\"weights\":{\"tiers\":{\"gold\":1001}}}",
	        "weights.tiers.gold", NULL);
	refused("{" BASE ",\"methods\":[\"keyword\"],\"keyword\":\"x\",\"weights\":{\"per\":1}}",
	        "weights.per", "unknown");
	refused("{" BASE ",\"methods\":[\"keyword\"],\"keyword\":\"x\","
	        "\"notify_template\":\"Bad Id\"}",
	        "notify_template", NULL);
}

static void test_codes_and_ids(void **state)
{
	(void)state;
	char out[300];
	assert_int_equal(raffle_code_normalize(" Ab" FA_12 " ", out, sizeof out), 0);
	assert_string_equal(out, "ab12");
	assert_int_equal(raffle_code_normalize("a b", out, sizeof out), -EINVAL);
	assert_int_equal(raffle_code_normalize("", out, sizeof out), -EINVAL);
	assert_int_equal(raffle_code_normalize("   ", out, sizeof out), -EINVAL);
	assert_int_equal(raffle_code_normalize("abc", out, 3), -EINVAL); /* does not fit */
	assert_true(raffle_id_valid("yalda-1404.v2_A"));
	assert_false(raffle_id_valid(""));
	assert_false(raffle_id_valid("a/b"));
	char long_id[80];
	memset(long_id, 'a', sizeof long_id - 1);
	long_id[sizeof long_id - 1] = '\0';
	assert_false(raffle_id_valid(long_id));
	long_id[RAFFLE_ID_MAX] = '\0';
	assert_true(raffle_id_valid(long_id));
	assert_int_equal(raffle_method_parse("points"), RAFFLE_POINTS);
	assert_int_equal(raffle_method_parse("Points"), -1);
	assert_string_equal(raffle_method_name(RAFFLE_CODE), "code");
}

static void test_purchase_and_weights(void **state)
{
	(void)state;
	struct raffle_def *d = parse_ok(FULL, 1);
	/* min 500000, one entry per 250000 */
	assert_int_equal(raffle_purchase_entries(d, 49999999, "IRR"), 0);
	assert_int_equal(raffle_purchase_entries(d, 50000000, "IRR"), 2);
	assert_int_equal(raffle_purchase_entries(d, 74999999, "IRR"), 2);
	assert_int_equal(raffle_purchase_entries(d, 75000000, "IRR"), 3);
	assert_int_equal(raffle_purchase_entries(d, 75000000, "USD"), 0);
	assert_int_equal(raffle_purchase_entries(d, 75000000, NULL), 0);
	d->entries_per_c = 0;
	assert_int_equal(raffle_purchase_entries(d, 75000000, "IRR"), 1);
	d->min_amount_c = 0;
	assert_int_equal(raffle_purchase_entries(d, 1, "IRR"), 1);
	assert_int_equal(raffle_purchase_entries(d, 0, "IRR"), 0);

	assert_int_equal(raffle_entry_weight(d, RAFFLE_KEYWORD, NULL, 1), 1);
	assert_int_equal(raffle_entry_weight(d, RAFFLE_PURCHASE, NULL, 3), 6);
	assert_int_equal(raffle_entry_weight(d, RAFFLE_PURCHASE, "gold", 3), 18);
	assert_int_equal(raffle_entry_weight(d, RAFFLE_POINTS, "silver", 2), 4);
	assert_int_equal(raffle_entry_weight(d, RAFFLE_POINTS, "bronze", 2), 2);
	assert_int_equal(raffle_entry_weight(d, RAFFLE_CODE, "", 1), 1);
	assert_int_equal(raffle_entry_weight(d, RAFFLE_CODE, "gold", 0), 0);
	/* the bound: 1000 entries x 1000 x 1000 */
	d->method_weight[RAFFLE_CODE] = RAFFLE_WEIGHT_MAX;
	d->tiers[0].weight = RAFFLE_WEIGHT_MAX;
	assert_int_equal(raffle_entry_weight(d, RAFFLE_CODE, "gold", 5000), 1000000000LL);
	raffle_def_free(d);

	/* no purchase method: nothing is worth an entry */
	d = parse_ok("{" BASE ",\"methods\":[\"keyword\"],\"keyword\":\"x\"}", 0);
	assert_int_equal(raffle_purchase_entries(d, 100000000, "IRR"), 0);
	raffle_def_free(d);
}

static void test_draw_vector1(void **state)
{
	(void)state;
	unsigned char seed[DRAW_SEED_LEN];
	for (int i = 0; i < DRAW_SEED_LEN; i++)
		seed[i] = (unsigned char)i;
	/* stored order (a hash) is not canonical: the draw must not care */
	const char *ids[10], *weights[10];
	char idbuf[10][16], wbuf[10][16];
	int order[10] = {7, 2, 9, 0, 5, 3, 8, 1, 6, 4};
	for (int j = 0; j < 10; j++) {
		int i = order[j] + 1;
		snprintf(idbuf[j], sizeof idbuf[j], "c%02d", i);
		snprintf(wbuf[j], sizeof wbuf[j], "%d", i % 3 + 1);
		ids[j] = idbuf[j];
		weights[j] = wbuf[j];
	}
	struct raffle_draw d;
	assert_int_equal(raffle_draw_run(seed, ids, weights, 10, 10, &d), 0);
	assert_int_equal(d.n, 10);
	assert_int_equal(d.k, 10);
	assert_int_equal(d.total, 20);
	assert_string_equal(d.digest,
	                    "f555bf8707c3a51519479f48527986867c6b85338aea565f17019fb6cfdd4937");
	assert_string_equal(d.entries_text,
	                    "c01\t2\nc02\t3\nc03\t1\nc04\t2\nc05\t3\nc06\t1\nc07\t2\n"
	                    "c08\t3\nc09\t1\nc10\t2\n");
	static const char *const want[] = {"c10", "c05", "c03", "c07", "c08",
	                                   "c02", "c01", "c04", "c06", "c09"};
	for (int i = 0; i < 10; i++)
		assert_string_equal(d.winners[i], want[i]);
	raffle_draw_free(&d);

	/* three winners are the first three of the full ranking */
	assert_int_equal(raffle_draw_run(seed, ids, weights, 10, 3, &d), 0);
	assert_int_equal(d.k, 3);
	for (int i = 0; i < 3; i++)
		assert_string_equal(d.winners[i], want[i]);
	raffle_draw_free(&d);

	/* more prizes than entries: everyone wins */
	assert_int_equal(raffle_draw_run(seed, ids, weights, 4, 1000, &d), 0);
	assert_int_equal(d.k, 4);
	raffle_draw_free(&d);

	/* nobody entered: no winner, the empty list's digest */
	assert_int_equal(raffle_draw_run(seed, NULL, NULL, 0, 3, &d), 0);
	assert_int_equal(d.k, 0);
	assert_string_equal(d.entries_text, "");
	assert_string_equal(d.digest,
	                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	raffle_draw_free(&d);
}

static void test_draw_refusals(void **state)
{
	(void)state;
	unsigned char seed[DRAW_SEED_LEN] = {0};
	struct raffle_draw d;
	const char *dup_ids[] = {"a", "b", "a"}, *w3[] = {"1", "2", "3"};
	assert_int_equal(raffle_draw_run(seed, dup_ids, w3, 3, 1, &d), -EINVAL);
	const char *ids[] = {"a", "b"}, *bad_w[] = {"1", "0"}, *neg_w[] = {"1", "-4"},
	           *txt_w[] = {"1", "x"};
	assert_int_equal(raffle_draw_run(seed, ids, bad_w, 2, 1, &d), -EINVAL);
	assert_int_equal(raffle_draw_run(seed, ids, neg_w, 2, 1, &d), -EINVAL);
	assert_int_equal(raffle_draw_run(seed, ids, txt_w, 2, 1, &d), -EINVAL);
	const char *space_ids[] = {"a b", "c"}, *w2[] = {"1", "1"};
	assert_int_equal(raffle_draw_run(seed, space_ids, w2, 2, 1, &d), -EINVAL);
	const char *big[] = {"9223372036854775807", "9223372036854775807", "9223372036854775807"};
	const char *ids3[] = {"a", "b", "c"};
	assert_int_equal(raffle_draw_run(seed, ids3, big, 3, 1, &d), -ERANGE);
}

/* ---- against a real redis-server ---------------------------------------------- */

struct rs {
	uv_loop_t loop;
	pid_t pid;
	int port, up;
	struct redis *r;
	struct store *st;
	redisContext *sync;
};

static void on_state(struct redis *r, int up, void *arg)
{
	(void)r;
	((struct rs *)arg)->up = up;
}

static void run_until(struct rs *e, const int *flag)
{
	int64_t guard = mono_ms() + GUARD_MS;
	while (!*flag) {
		if (mono_ms() > guard)
			fail_msg("guard: the loop waited too long");
		uv_run(&e->loop, UV_RUN_ONCE);
	}
}

static int rs_setup(void **state)
{
	struct rs *e = xcalloc(1, sizeof *e);
	assert_int_equal(uv_loop_init(&e->loop), 0);
	e->port = tl_free_port();
	e->pid = tl_redis_start(e->port, NULL);
	assert_true(e->pid > 0);
	struct timeval tv = {2, 0};
	e->sync = redisConnectWithTimeout("127.0.0.1", e->port, tv);
	assert_true(e->sync && !e->sync->err);
	struct redis_opts o = {.name = "test", .host = "127.0.0.1", .port = e->port};
	e->r = redis_new(&e->loop, &o, on_state, e);
	run_until(e, &e->up);
	e->st = store_new(e->r, "t:", 100);
	*state = e;
	return 0;
}

static void on_closed(void *arg)
{
	*(int *)arg = 1;
}

static int rs_teardown(void **state)
{
	struct rs *e = *state;
	int closed = 0;
	redis_close(e->r, on_closed, &closed);
	run_until(e, &closed);
	store_free(e->st);
	redisFree(e->sync);
	kill(e->pid, SIGKILL);
	waitpid(e->pid, NULL, 0);
	uv_run(&e->loop, UV_RUN_NOWAIT);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	free(e);
	return 0;
}

/* A reply as JSON (arrays, strings, integers, null), for assertions. */
static json_t *reply_json(const redisReply *r)
{
	if (!r)
		return json_string("(no reply)");
	switch (r->type) {
	case REDIS_REPLY_ARRAY: {
		json_t *a = json_array();
		for (size_t i = 0; i < r->elements; i++)
			json_array_append_new(a, reply_json(r->element[i]));
		return a;
	}
	case REDIS_REPLY_INTEGER:
		return json_integer(r->integer);
	case REDIS_REPLY_NIL:
		return json_null();
	case REDIS_REPLY_ERROR: {
		char *t = xasprintf("ERROR %s", r->str);
		json_t *j = json_string(t);
		free(t);
		return j;
	}
	default:
		return json_stringn(r->str, r->len);
	}
}

struct got {
	int done;
	json_t *j;
};

static void on_reply(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct got *g = arg;
	g->j = reply_json(rep);
	g->done = 1;
}

static json_t *wait_reply(struct rs *e, struct got *g)
{
	run_until(e, &g->done);
	return g->j;
}

static void sync_cmd(struct rs *e, const char *cmd)
{
	redisReply *rep = redisCommand(e->sync, cmd);
	assert_non_null(rep);
	assert_int_not_equal(rep->type, REDIS_REPLY_ERROR);
	freeReplyObject(rep);
}

static void create_raffle(struct rs *e, const char *def_json)
{
	struct raffle_def *d = parse_ok(def_json, 1);
	json_t *pub = raffle_def_json(d);
	char *txt = json_dumps(pub, JSON_COMPACT);
	unsigned char seed[DRAW_SEED_LEN];
	char seed_hex[DRAW_HEX_LEN + 1], commit[DRAW_HEX_LEN + 1];
	memset(seed, 7, sizeof seed);
	hex_encode(seed, sizeof seed, seed_hex);
	draw_commit(seed, commit);
	struct got g = {0};
	store_raffle_create(e->st, d, txt, seed_hex, commit, now_ms(), on_reply, &g);
	json_t *j = wait_reply(e, &g);
	assert_string_equal(json_string_value(json_array_get(j, 0)), "ok");
	json_decref(j);
	free(txt);
	json_decref(pub);
	raffle_def_free(d);
}

/* element i of a reply array as a string ("" when not a string) */
static const char *jstr(const json_t *a, size_t i)
{
	const char *s = json_string_value(json_array_get(a, i));
	return s ? s : "";
}

static json_t *answer_of(const json_t *a, size_t i)
{
	json_t *j = json_loads(jstr(a, i), 0, NULL);
	assert_non_null(j);
	return j;
}

#define C1 "01JD3Z8Q6M0000000000000001"
#define C2 "01JD3Z8Q6M0000000000000002"

static void test_store_keyword_and_purchase(void **state)
{
	struct rs *e = *state;
	sync_cmd(e, "HSET t:c:" C1 " id " C1 " tier gold");
	sync_cmd(e, "HSET t:c:" C2 " id " C2);
	char def[1024];
	int64_t now = now_ms();
	char s1[40], e1[40], s2[40], e2[40];
	fmt_time(now - 3600000, s1, sizeof s1);
	fmt_time(now + 3600000, e1, sizeof e1);
	fmt_time(now + 3600000, s2, sizeof s2);
	fmt_time(now + 7200000, e2, sizeof e2);
	snprintf(
	    def, sizeof def,
	    "{\"id\":\"r1\",\"name\":\"n\",\"starts_at\":\"%s\",\"ends_at\":\"%s\","
	    "\"methods\":[\"keyword\",\"code\",\"purchase\"],\"keyword\":\"" FA_YALDA "\","
	    "\"codes\":[\"K1\"],\"purchase\":{\"currency\":\"IRR\",\"min_amount\":100,"
	    "\"entries_per\":100},\"max_entries_per_contact\":3,"
	    "\"weights\":{\"methods\":{\"purchase\":2},\"tiers\":{\"gold\":10}},\"winners\":1}",
	    s1, e1);
	create_raffle(e, def);
	/* a second raffle taking purchases, not open yet */
	snprintf(def, sizeof def,
	         "{\"id\":\"r2\",\"name\":\"n\",\"starts_at\":\"%s\",\"ends_at\":\"%s\","
	         "\"methods\":[\"purchase\"],\"purchase\":{\"currency\":\"IRR\"},\"winners\":1}",
	         s2, e2);
	create_raffle(e, def);

	/* a purchase of 250 IRR: 2 entries in r1 (weight 2 x 2 x gold 10), r2 not open */
	struct got g = {0};
	raffle_enter_by_purchase(e->st, C1, 25000, "IRR", "ev-1", now, on_reply, &g);
	json_t *j = wait_reply(e, &g);
	assert_int_equal(json_array_size(j), 2);
	json_t *r1 = json_array_get(j, 0), *r2 = json_array_get(j, 1);
	assert_string_equal(jstr(r1, 0), "r1");
	assert_string_equal(jstr(r1, 1), "ok");
	json_t *a = answer_of(r1, 2);
	assert_int_equal(json_integer_value(json_object_get(a, "entries")), 2);
	assert_int_equal(json_integer_value(json_object_get(a, "weight")), 40);
	assert_string_equal(json_string_value(json_object_get(a, "ref")), "ev-1");
	json_decref(a);
	assert_string_equal(jstr(r2, 0), "r2");
	assert_string_equal(jstr(r2, 1), "refused");
	assert_string_equal(jstr(r2, 2), "not_started");
	json_decref(j);

	/* the same event again: the first answer, nothing added */
	g = (struct got){0};
	raffle_enter_by_purchase(e->st, C1, 25000, "IRR", "ev-1", now, on_reply, &g);
	j = wait_reply(e, &g);
	assert_string_equal(jstr(json_array_get(j, 0), 1), "dup");
	json_decref(j);
	/* another purchase worth 5: capped at the one entry left */
	g = (struct got){0};
	raffle_enter_by_purchase(e->st, C1, 50000, "IRR", "ev-2", now, on_reply, &g);
	j = wait_reply(e, &g);
	a = answer_of(json_array_get(j, 0), 2);
	assert_int_equal(json_integer_value(json_object_get(a, "entries")), 1);
	assert_true(json_is_true(json_object_get(a, "capped")));
	json_decref(a);
	json_decref(j);
	/* wrong currency, too small */
	g = (struct got){0};
	raffle_enter_by_purchase(e->st, C2, 25000, "USD", "ev-3", now, on_reply, &g);
	j = wait_reply(e, &g);
	assert_string_equal(jstr(json_array_get(j, 0), 2), "currency");
	json_decref(j);
	g = (struct got){0};
	raffle_enter_by_purchase(e->st, C2, 9999, "IRR", "ev-4", now, on_reply, &g);
	j = wait_reply(e, &g);
	assert_string_equal(jstr(json_array_get(j, 0), 2), "below_minimum");
	json_decref(j);

	/* keywords: the normalised text of an open raffle */
	g = (struct got){0};
	raffle_enter_by_keyword(e->st, C2, "hello", now, on_reply, &g);
	j = wait_reply(e, &g);
	assert_int_equal(json_array_size(j), 1);
	assert_string_equal(jstr(j, 0), "none");
	json_decref(j);
	g = (struct got){0};
	raffle_enter_by_keyword(e->st, C2, FA_YALDA, now, on_reply, &g);
	j = wait_reply(e, &g);
	assert_int_equal(json_array_size(j), 6);
	assert_string_equal(jstr(j, 0), "ok");
	assert_string_equal(jstr(j, 1), "r1");
	assert_string_equal(jstr(j, 3), "");                    /* no reply template */
	assert_true(json_array_size(json_array_get(j, 4)) > 0); /* the contact */
	json_t *pub = json_loads(jstr(j, 5), 0, NULL);
	assert_string_equal(json_string_value(json_object_get(pub, "id")), "r1");
	json_decref(pub);
	json_decref(j);
	/* the exported call has no ref: a repeat is the same entry */
	g = (struct got){0};
	raffle_enter_by_keyword(e->st, C2, FA_YALDA, now, on_reply, &g);
	j = wait_reply(e, &g);
	assert_string_equal(jstr(j, 0), "dup");
	json_decref(j);
	/* a code, and "keyword code" */
	g = (struct got){0};
	raffle_enter_by_keyword(e->st, C2, FA_YALDA " k1", now, on_reply, &g);
	j = wait_reply(e, &g);
	assert_string_equal(jstr(j, 0), "ok");
	a = answer_of(j, 2);
	assert_string_equal(json_string_value(json_object_get(a, "method")), "code");
	json_decref(a);
	json_decref(j);
	g = (struct got){0};
	raffle_enter_by_keyword(e->st, C1, "k1", now, on_reply, &g);
	j = wait_reply(e, &g);
	assert_string_equal(jstr(j, 0), "refused");
	assert_string_equal(jstr(j, 2), "code_used");
	json_decref(j);
	/* no contact, no leads: refused so the router records a reply */
	g = (struct got){0};
	raffle_enter_by_keyword(e->st, "", FA_YALDA, now, on_reply, &g);
	j = wait_reply(e, &g);
	assert_string_equal(jstr(j, 0), "refused");
	assert_string_equal(jstr(j, 2), "no_contact");
	json_decref(j);

	/* C1: 3 entries, weight 40 + 20; C2: keyword 1 + code 1 */
	redisReply *w = redisCommand(e->sync, "HGETALL t:rfw:r1");
	assert_non_null(w);
	json_t *wj = reply_json(w);
	freeReplyObject(w);
	char *wt = json_dumps(wj, JSON_COMPACT);
	if (strcmp(wt, "[\"" C1 "\",\"60\",\"" C2 "\",\"2\"]") != 0 &&
	    strcmp(wt, "[\"" C2 "\",\"2\",\"" C1 "\",\"60\"]") != 0)
		fail_msg("weights %s", wt);
	free(wt);
	json_decref(wj);
}

static void test_store_draw_lease(void **state)
{
	struct rs *e = *state;
	sync_cmd(e, "HSET t:c:" C1 " id " C1);
	int64_t now = now_ms();
	char def[512], s1[40], e1[40];
	fmt_time(now - 3600000, s1, sizeof s1);
	fmt_time(now + 3600000, e1, sizeof e1);
	snprintf(def, sizeof def,
	         "{\"id\":\"d1\",\"name\":\"n\",\"starts_at\":\"%s\",\"ends_at\":\"%s\","
	         "\"methods\":[\"keyword\"],\"keyword\":\"go\",\"winners\":1}",
	         s1, e1);
	create_raffle(e, def);
	struct got g = {0};
	raffle_enter_by_keyword(e->st, C1, "go", now, on_reply, &g);
	json_decref(wait_reply(e, &g));

	g = (struct got){0};
	store_raffle_draw_lock(e->st, "d1", "a", now, 60000, 0, on_reply, &g);
	json_t *j = wait_reply(e, &g);
	assert_string_equal(jstr(j, 0), "early");
	json_decref(j);
	g = (struct got){0};
	store_raffle_draw_lock(e->st, "d1", "a", now, 60000, 1, on_reply, &g);
	j = wait_reply(e, &g);
	assert_string_equal(jstr(j, 0), "ok");
	assert_int_equal(json_array_size(j), 5);
	assert_string_equal(jstr(j, 3), "1");
	json_decref(j);
	/* another owner while the lease holds: busy; the keyword is closed */
	g = (struct got){0};
	store_raffle_draw_lock(e->st, "d1", "b", now, 60000, 1, on_reply, &g);
	j = wait_reply(e, &g);
	assert_string_equal(jstr(j, 0), "busy");
	json_decref(j);
	g = (struct got){0};
	raffle_enter_by_keyword(e->st, C1, "go", now, on_reply, &g);
	j = wait_reply(e, &g);
	assert_string_equal(jstr(j, 0), "none");
	json_decref(j);
	/* after the lease: b takes over; a's finish is then refused */
	g = (struct got){0};
	store_raffle_draw_lock(e->st, "d1", "b", now + 60001, 60000, 1, on_reply, &g);
	j = wait_reply(e, &g);
	assert_string_equal(jstr(j, 0), "ok");
	json_decref(j);
	unsigned char seed[DRAW_SEED_LEN];
	memset(seed, 7, sizeof seed);
	const char *ids[] = {C1}, *ws[] = {"1"};
	struct raffle_draw d;
	assert_int_equal(raffle_draw_run(seed, ids, ws, 1, 1, &d), 0);
	g = (struct got){0};
	store_raffle_draw_finish(e->st, "d1", "a", now, 60000, &d, "[\"" C1 "\"]", 100, on_reply,
	                         &g);
	j = wait_reply(e, &g);
	assert_string_equal(jstr(j, 0), "lost");
	json_decref(j);
	g = (struct got){0};
	store_raffle_draw_finish(e->st, "d1", "b", now, 60000, &d, "[\"" C1 "\"]", 100, on_reply,
	                         &g);
	j = wait_reply(e, &g);
	assert_string_equal(jstr(j, 0), "ok");
	assert_int_equal(json_array_size(j), 3); /* no template: nobody to message */
	json_decref(j);
	raffle_draw_free(&d);
	g = (struct got){0};
	store_raffle_draw_lock(e->st, "d1", "c", now + 999999, 60000, 1, on_reply, &g);
	j = wait_reply(e, &g);
	assert_string_equal(jstr(j, 0), "drawn");
	json_decref(j);
	/* the record is readable, the seed public now */
	g = (struct got){0};
	store_raffle_draw_get(e->st, "d1", on_reply, &g);
	j = wait_reply(e, &g);
	assert_string_equal(jstr(j, 0), "drawn");
	char *t = json_dumps(j, JSON_COMPACT);
	assert_non_null(strstr(t, "0707070707070707"));
	assert_non_null(strstr(t, C1 "\\t1\\n"));
	free(t);
	json_decref(j);
}

static void test_store_seed_hidden(void **state)
{
	struct rs *e = *state;
	create_raffle(e, "{\"id\":\"h1\",\"name\":\"n\",\"starts_at\":\"2026-01-01T00:00:00Z\","
	                 "\"ends_at\":\"2026-01-02T00:00:00Z\",\"methods\":[\"keyword\"],"
	                 "\"keyword\":\"x\",\"winners\":1}");
	struct got g = {0};
	store_raffle_get(e->st, "h1", on_reply, &g);
	json_t *j = wait_reply(e, &g);
	char *t = json_dumps(j, JSON_COMPACT);
	assert_null(strstr(t, "\"seed\""));
	assert_null(strstr(t, "0707070707"));
	assert_non_null(strstr(t, "\"commit\""));
	free(t);
	json_decref(j);
	g = (struct got){0};
	store_raffle_list(e->st, "", 10, on_reply, &g);
	j = wait_reply(e, &g);
	t = json_dumps(j, JSON_COMPACT);
	assert_null(strstr(t, "0707070707"));
	free(t);
	json_decref(j);
	/* delete before any entry */
	g = (struct got){0};
	store_raffle_delete(e->st, "h1", on_reply, &g);
	j = wait_reply(e, &g);
	assert_string_equal(jstr(j, 0), "ok");
	json_decref(j);
	redisReply *rep = redisCommand(e->sync, "KEYS t:*h1*");
	assert_non_null(rep);
	assert_int_equal(rep->elements, 0);
	freeReplyObject(rep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_definition),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_codes_and_ids),
	    cmocka_unit_test(test_purchase_and_weights),
	    cmocka_unit_test(test_draw_vector1),
	    cmocka_unit_test(test_draw_refusals),
	    cmocka_unit_test_setup_teardown(test_store_keyword_and_purchase, rs_setup, rs_teardown),
	    cmocka_unit_test_setup_teardown(test_store_draw_lease, rs_setup, rs_teardown),
	    cmocka_unit_test_setup_teardown(test_store_seed_hidden, rs_setup, rs_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
