/*
 * store_timeline.h - reading a contact's timeline stream (P tl:{id}) for the
 * API: newest first, a page at a time.
 */
#ifndef CLUBD_STORE_TIMELINE_H
#define CLUBD_STORE_TIMELINE_H

#include <jansson.h>

#include "store.h"

#define STORE_TIMELINE_CURSOR_MAX 41 /* "ms-seq" stream id */

/* EXISTS c:{id}: integer reply 1 or 0. */
void store_timeline_contact_exists(struct store *st, const char *id, redis_cb cb, void *arg);
/* XREVRANGE tl:{id} from before cursor (exclusive; NULL/"" = newest), at
 * most limit entries. */
void store_timeline_page(struct store *st, const char *id, const char *cursor, int limit,
                         redis_cb cb, void *arg);
/* 1 when s looks like a stream id ("1700000000000-0"). */
int store_timeline_cursor_valid(const char *s);
/* One XREVRANGE entry as {"id", "at", field: value...} (new reference), or
 * NULL when the entry is malformed. */
json_t *store_timeline_entry_json(const redisReply *entry);

#endif
