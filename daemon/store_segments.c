/*
 * store_segments.c - the Redis side of audiences: saved segments (P seg:{id}
 * with json, v, updated; the P segments index; P segver, the last version
 * given to an id) and the reads a segment scan makes: pages of the P
 * contacts index, chosen fields of P c:{id} (opened by privacy.c when
 * personal data is sealed), and membership in the tag sets P tag:{t} and
 * the engagement sets P eng:{what}:{ref}.  Writes go through
 * lua/seg_write.lua, pages of saved segments through lua/seg_list.lua.
 *
 * Knows only these keys; never validates or evaluates a definition
 * (segment.c does).  Limits: a contact id or engagement reference longer
 * than 200 bytes is refused by the callers; fields per HMGET up to 256.
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "privacy.h"
#include "util.h"

#define KEY_MAX    512
#define FIELDS_MAX 256

void store_contact_ids(struct store *st, const char *after, size_t limit, redis_cb cb, void *arg)
{
	char key[KEY_MAX], from[KEY_MAX], lim[24];
	snprintf(key, sizeof key, "%scontacts", st->prefix);
	if (after && *after)
		snprintf(from, sizeof from, "(%s", after);
	else
		snprintf(from, sizeof from, "-");
	snprintf(lim, sizeof lim, "%zu", limit);
	const char *argv[] = {"ZRANGEBYLEX", key, from, "+", "LIMIT", "0", lim};
	redis_cmdv(st->r, 0, cb, arg, (int)ARRAY_SIZE(argv), argv, NULL);
}

void store_contact_fields(struct store *st, const char *id, const char *const *fields, size_t n,
                          redis_cb cb, void *arg)
{
	char key[KEY_MAX];
	const char *argv[FIELDS_MAX + 2];
	snprintf(key, sizeof key, "%sc:%s", st->prefix, id);
	if (n > FIELDS_MAX)
		n = FIELDS_MAX;
	argv[0] = n ? "HMGET" : "HGETALL";
	argv[1] = key;
	for (size_t i = 0; i < n; i++)
		argv[i + 2] = fields[i];
	privacy_wrap_cb(&cb, &arg); /* names and addresses opened ([privacy] key_file) */
	redis_cmdv(st->r, 0, cb, arg, (int)n + 2, argv, NULL);
}

static void smismember(struct store *st, const char *key, const char *const *ids, size_t n,
                       redis_cb cb, void *arg)
{
	const char **argv = xmalloc((n + 2) * sizeof *argv);
	argv[0] = "SMISMEMBER";
	argv[1] = key;
	for (size_t i = 0; i < n; i++)
		argv[i + 2] = ids[i];
	redis_cmdv(st->r, 0, cb, arg, (int)n + 2, argv, NULL);
	free(argv);
}

static void seg_write(struct store *st, const char *mode, const char *id, const char *json,
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
	store_eval(st, SCRIPT_SEG_WRITE, &a, cb, arg);
	argv_free(&a);
}

void store_segment_create(struct store *st, const char *id, const char *json, int64_t now,
                          redis_cb cb, void *arg)
{
	seg_write(st, "create", id, json, 0, now, cb, arg);
}

void store_segment_replace(struct store *st, const char *id, const char *json, long long expect_v,
                           int64_t now, redis_cb cb, void *arg)
{
	seg_write(st, "replace", id, json, expect_v, now, cb, arg);
}

void store_segment_delete(struct store *st, const char *id, redis_cb cb, void *arg)
{
	seg_write(st, "delete", id, NULL, 0, 0, cb, arg);
}

void store_segment_read(struct store *st, const char *id, redis_cb cb, void *arg)
{
	char *k = store_key(st, "seg:%s", id);
	redis_cmdf(st->r, cb, arg, "HMGET %s json v updated", k);
	free(k);
}

void store_segment_list(struct store *st, const char *cursor, int limit, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, cursor ? cursor : "");
	argv_addll(&a, limit);
	store_eval(st, SCRIPT_SEG_LIST, &a, cb, arg);
	argv_free(&a);
}

void store_tag_members(struct store *st, const char *tag, const char *const *ids, size_t n,
                       redis_cb cb, void *arg)
{
	char *key = store_key(st, "tag:%s", tag);
	smismember(st, key, ids, n, cb, arg);
	free(key);
}

void store_eng_members(struct store *st, const char *what, const char *ref, const char *const *ids,
                       size_t n, redis_cb cb, void *arg)
{
	char key[KEY_MAX];
	snprintf(key, sizeof key, "%seng:%s:%s", st->prefix, what, ref);
	smismember(st, key, ids, n, cb, arg);
}
