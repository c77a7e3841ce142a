/*
 * store_occasions.c - the occasion keys: rules, run records, and the
 * read-only check of the idempotency keys msg_create.lua writes.  Owns the occ:, occ:run:,
 * occ:live: and occasions keys; writes nothing else (messages are created through
 * store_msg_create).  Limits: STORE_OCC_MAX rules.
 */
#include "store_occasions.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static void add_common(struct argv *a, const char *op, const char *which, const char *id,
                       const char *owner, int64_t now, int64_t lease_ms)
{
	argv_add(a, op);
	argv_add(a, which);
	argv_add(a, id);
	argv_add(a, owner ? owner : "");
	argv_addll(a, now);
	argv_addll(a, lease_ms);
}

void store_occ_write(struct store *st, const char *mode, const char *id, int64_t now,
                     const char *json, const char *expect_v, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, mode);
	argv_add(&a, id);
	argv_addll(&a, now);
	argv_add(&a, json ? json : "");
	argv_add(&a, expect_v ? expect_v : "");
	argv_addll(&a, STORE_OCC_MAX);
	store_eval(st, SCRIPT_OCC_WRITE, &a, cb, arg);
	argv_free(&a);
}

void store_occ_get(struct store *st, const char *id, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, id ? id : "");
	argv_addll(&a, STORE_OCC_MAX);
	store_eval(st, SCRIPT_OCC_GET, &a, cb, arg);
	argv_free(&a);
}

void store_occ_run_start(struct store *st, const char *id, int64_t now, int64_t lease_ms,
                         const char *date, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	add_common(&a, "start", "run", id, "", now, lease_ms);
	argv_add(&a, date ? date : "");
	store_eval(st, SCRIPT_OCC_RUN, &a, cb, arg);
	argv_free(&a);
}

void store_occ_run_claim(struct store *st, const char *which, const char *id, const char *owner,
                         int64_t now, int64_t lease_ms, int64_t interval_ms, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	add_common(&a, "claim", which, id, owner, now, lease_ms);
	argv_addll(&a, interval_ms);
	store_eval(st, SCRIPT_OCC_RUN, &a, cb, arg);
	argv_free(&a);
}

void store_occ_run_step(struct store *st, const char *which, const char *id, const char *owner,
                        int64_t now, int64_t lease_ms, const char *cursor, int done,
                        const char *const *names, const long long *values, size_t n, redis_cb cb,
                        void *arg)
{
	struct argv a;
	argv_init(&a);
	add_common(&a, "step", which, id, owner, now, lease_ms);
	argv_add(&a, cursor ? cursor : "");
	argv_add(&a, done ? "1" : "0");
	for (size_t i = 0; i < n; i++) {
		if (!values[i])
			continue;
		argv_add(&a, names[i]);
		argv_addll(&a, values[i]);
	}
	store_eval(st, SCRIPT_OCC_RUN, &a, cb, arg);
	argv_free(&a);
}

void store_occ_run_fail(struct store *st, const char *which, const char *id, const char *owner,
                        int64_t now, const char *reason, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	add_common(&a, "fail", which, id, owner, now, 0);
	argv_add(&a, reason);
	store_eval(st, SCRIPT_OCC_RUN, &a, cb, arg);
	argv_free(&a);
}

void store_occ_run_release(struct store *st, const char *which, const char *id, const char *owner,
                           redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	add_common(&a, "release", which, id, owner, 0, 0);
	store_eval(st, SCRIPT_OCC_RUN, &a, cb, arg);
	argv_free(&a);
}

void store_occ_ids(struct store *st, redis_cb cb, void *arg)
{
	char *k = store_key(st, "occasions");
	redis_cmdf(st->r, cb, arg, "ZRANGEBYLEX %s - + LIMIT 0 %d", k, STORE_OCC_MAX);
	free(k);
}

void store_occ_idem_check(struct store *st, const char *const *keys, size_t n, redis_cb cb,
                          void *arg)
{
	const char **v = xcalloc(n + 1, sizeof *v);
	size_t *l = xcalloc(n + 1, sizeof *l);
	v[0] = "MGET";
	l[0] = 4;
	for (size_t i = 0; i < n; i++) {
		char *k = store_key(st, "idem:%s", keys[i]);
		v[i + 1] = k;
		l[i + 1] = strlen(k);
	}
	redis_cmdv(st->r, 0, cb, arg, (int)(n + 1), v, l);
	for (size_t i = 0; i < n; i++)
		free((char *)v[i + 1]);
	free(v);
	free(l);
}
