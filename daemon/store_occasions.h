/*
 * store_occasions.h - the Redis side of occasions: the rules (P occ:{id}
 * hash {json, v, created, updated}, P occasions zset), their run records
 * (P occ:run:{id}, P occ:live:{id}, see lua/occ_run.lua) and the check
 * of the idempotency keys a run would write (P idem:occ:{rule}:{contact}:
 * {year}, written by msg_create.lua).  Templates and segments are read
 * through their own store functions (store.h).
 */
#ifndef CLUBD_STORE_OCCASIONS_H
#define CLUBD_STORE_OCCASIONS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define STORE_OCC_MAX 1000 /* rules kept */

/* lua/occ_write.lua: mode "create", "put" or "delete"; json '' for delete;
 * expect_v NULL or "" = any version. */
void store_occ_write(struct store *st, const char *mode, const char *id, int64_t now,
                     const char *json, const char *expect_v, redis_cb cb, void *arg);
/* lua/occ_get.lua: one rule (id) or all (id NULL): triples {rule, run, live}. */
void store_occ_get(struct store *st, const char *id, redis_cb cb, void *arg);
/* lua/occ_run.lua.  which: "run" or "live". */
void store_occ_run_start(struct store *st, const char *id, int64_t now, int64_t lease_ms,
                         const char *date, redis_cb cb, void *arg);
void store_occ_run_claim(struct store *st, const char *which, const char *id, const char *owner,
                         int64_t now, int64_t lease_ms, int64_t interval_ms, redis_cb cb,
                         void *arg);
/* counters: n name/value pairs (examined, matched, created, dup, missed, errors). */
void store_occ_run_step(struct store *st, const char *which, const char *id, const char *owner,
                        int64_t now, int64_t lease_ms, const char *cursor, int done,
                        const char *const *names, const long long *values, size_t n, redis_cb cb,
                        void *arg);
void store_occ_run_fail(struct store *st, const char *which, const char *id, const char *owner,
                        int64_t now, const char *reason, redis_cb cb, void *arg);
void store_occ_run_release(struct store *st, const char *which, const char *id, const char *owner,
                           redis_cb cb, void *arg);
/* ZRANGEBYLEX of every rule id (at most STORE_OCC_MAX). */
void store_occ_ids(struct store *st, redis_cb cb, void *arg);
/* MGET of the idempotency keys (occ_idem_key() forms) under P idem:. */
void store_occ_idem_check(struct store *st, const char *const *keys, size_t n, redis_cb cb,
                          void *arg);

#endif
