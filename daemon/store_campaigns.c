/*
 * store_campaigns.c - campaign reads.  Writes go through lua/camp_*.lua
 * (write, state, fan, pump, reserve) and the campaign parts of msg_claim /
 * msg_settle / msg_report.  Knows the cp:, cph:, cs:, cpf:, camps keys.
 */
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "util.h"

void store_camp_get(struct store *st, const char *id, redis_cb cb, void *arg)
{
	char *k = store_key(st, "cp:%s", id);
	redis_cmdf(st->r, cb, arg, "HGETALL %s", k);
	free(k);
}

void store_camp_summary(struct store *st, const char *id, redis_cb cb, void *arg)
{
	char *k = store_key(st, "cp:%s", id);
	redis_cmdf(st->r, cb, arg, "HMGET %s name state created updated channel", k);
	free(k);
}

void store_camp_stats(struct store *st, const char *id, redis_cb cb, void *arg)
{
	char *k = store_key(st, "cs:%s", id);
	redis_cmdf(st->r, cb, arg, "HGETALL %s", k);
	free(k);
}

void store_camp_history(struct store *st, const char *id, redis_cb cb, void *arg)
{
	char *k = store_key(st, "cph:%s", id);
	redis_cmdf(st->r, cb, arg, "LRANGE %s 0 199", k);
	free(k);
}

void store_camp_list(struct store *st, const char *cursor, int limit, redis_cb cb, void *arg)
{
	char *k = store_key(st, "camps");
	char lo[140];
	snprintf(lo, sizeof lo, "%s%s", cursor && *cursor ? "(" : "-",
	         cursor && *cursor ? cursor : "");
	redis_cmdf(st->r, cb, arg, "ZRANGE %s %s + BYLEX LIMIT 0 %d", k, lo, limit);
	free(k);
}

void store_camp_active(struct store *st, redis_cb cb, void *arg)
{
	char *k = store_key(st, "camps:active");
	redis_cmdf(st->r, cb, arg, "SMEMBERS %s", k);
	free(k);
}

void store_camp_lease(struct store *st, const char *id, const char *owner, int64_t ms, redis_cb cb,
                      void *arg)
{
	char *k = store_key(st, "cpf:%s", id);
	char ms_s[24];
	snprintf(ms_s, sizeof ms_s, "%lld", (long long)ms);
	const char *v[] = {"EVAL",
	                   "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then "
	                   "return 1 end "
	                   "if redis.call('GET', KEYS[1]) == ARGV[1] then "
	                   "redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end return 0",
	                   "1",
	                   k,
	                   owner,
	                   ms_s};
	size_t l[6];
	for (int i = 0; i < 6; i++)
		l[i] = strlen(v[i]);
	redis_cmdv(st->r, 0, cb, arg, 6, v, l);
	free(k);
}

void store_camp_delete(struct store *st, const char *id, redis_cb cb, void *arg)
{
	char *a = store_key(st, "cp:%s", id), *b = store_key(st, "cph:%s", id),
	     *c = store_key(st, "cs:%s", id), *d = store_key(st, "cq:%s", id),
	     *e = store_key(st, "camps");
	const char *v[] = {"EVAL",
	                   "local s = redis.call('HGET', KEYS[1], 'state') "
	                   "if not s then return 0 end "
	                   "if s ~= 'draft' and s ~= 'completed' and s ~= 'cancelled' then "
	                   "return -1 end "
	                   "redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4]) "
	                   "redis.call('ZREM', KEYS[5], ARGV[1]) return 1",
	                   "5",
	                   a,
	                   b,
	                   c,
	                   d,
	                   e,
	                   id};
	size_t l[9];
	for (int i = 0; i < 9; i++)
		l[i] = strlen(v[i]);
	redis_cmdv(st->r, 0, cb, arg, 9, v, l);
	free(a);
	free(b);
	free(c);
	free(d);
	free(e);
}
