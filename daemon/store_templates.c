/*
 * store_templates.c - the Redis layout of template resources: P tpl:{id}
 * (json, v, updated), the P templates index and P tplver (the last version
 * given to an id, so a re-created template never reuses a version).  Writes
 * go through lua/tpl_write.lua, pages through lua/tpl_list.lua.
 *
 * Knows only these keys; never validates a definition (api_templates.c and
 * tplset.c do) and never renders.
 */
#include "store.h"

#include <stdlib.h>

#include "util.h"

void store_template_get(struct store *st, const char *id, redis_cb cb, void *arg)
{
	char *k = store_key(st, "tpl:%s", id);
	redis_cmdf(st->r, cb, arg, "HMGET %s json v", k);
	free(k);
}

void store_template_read(struct store *st, const char *id, redis_cb cb, void *arg)
{
	char *k = store_key(st, "tpl:%s", id);
	redis_cmdf(st->r, cb, arg, "HMGET %s json v updated", k);
	free(k);
}

static void tpl_write(struct store *st, const char *mode, const char *id, const char *json,
                      long long expect_v, int64_t now, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, mode);
	argv_add(&a, id);
	argv_add(&a, json ? json : "");
	argv_addll(&a, now);
	if (expect_v > 0)
		argv_addll(&a, expect_v);
	else
		argv_add(&a, "");
	store_eval(st, SCRIPT_TPL_WRITE, &a, cb, arg);
	argv_free(&a);
}

void store_template_create(struct store *st, const char *id, const char *json, int64_t now,
                           redis_cb cb, void *arg)
{
	tpl_write(st, "create", id, json, 0, now, cb, arg);
}

void store_template_replace(struct store *st, const char *id, const char *json, long long expect_v,
                            int64_t now, redis_cb cb, void *arg)
{
	tpl_write(st, "replace", id, json, expect_v, now, cb, arg);
}

void store_template_delete(struct store *st, const char *id, redis_cb cb, void *arg)
{
	tpl_write(st, "delete", id, NULL, 0, 0, cb, arg);
}

void store_template_list(struct store *st, const char *cursor, int limit, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, cursor ? cursor : "");
	argv_addll(&a, limit);
	store_eval(st, SCRIPT_TPL_LIST, &a, cb, arg);
	argv_free(&a);
}
