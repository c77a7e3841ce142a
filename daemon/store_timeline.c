/*
 * store_timeline.c - the read side of contact timelines (P tl:{id}).  The
 * entries are written by the Lua scripts (msg_settle, msg_report,
 * unsubscribe, inbound); this file only pages through them and turns an
 * entry into JSON.  Knows the key names tl:{id} and c:{id}, nothing else.
 *
 * Limits: cursors are stream ids of at most STORE_TIMELINE_CURSOR_MAX bytes.
 */
#include "store_timeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "privacy.h"
#include "util.h"

void store_timeline_contact_exists(struct store *st, const char *id, redis_cb cb, void *arg)
{
	char *k = store_key(st, "c:%s", id);
	redis_cmdf(st->r, cb, arg, "EXISTS %s", k);
	free(k);
}

void store_timeline_page(struct store *st, const char *id, const char *cursor, int limit,
                         redis_cb cb, void *arg)
{
	char *k = store_key(st, "tl:%s", id);
	char end[STORE_TIMELINE_CURSOR_MAX + 2];
	if (cursor && *cursor)
		snprintf(end, sizeof end, "(%s", cursor);
	else
		snprintf(end, sizeof end, "+");
	redis_cmdf(st->r, cb, arg, "XREVRANGE %s %s - COUNT %d", k, end, limit);
	free(k);
}

int store_timeline_cursor_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0, i = 0, a = 0, b = 0;
	if (n == 0 || n > STORE_TIMELINE_CURSOR_MAX)
		return 0;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		a++;
	if (i == n || s[i] != '-' || a == 0 || a > 20)
		return 0;
	for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		b++;
	return i == n && b > 0 && b <= 20;
}

json_t *store_timeline_entry_json(const redisReply *e)
{
	if (!e || e->type != REDIS_REPLY_ARRAY || e->elements != 2)
		return NULL;
	const char *id = reply_str(e->element[0]);
	const redisReply *f = e->element[1];
	if (!id || f->type != REDIS_REPLY_ARRAY)
		return NULL;
	int64_t ms = 0;
	const char *dash = strchr(id, '-');
	char head[24];
	if (!dash || (size_t)(dash - id) >= sizeof head)
		return NULL;
	memcpy(head, id, (size_t)(dash - id));
	head[dash - id] = '\0';
	if (parse_i64(head, 0, INT64_MAX, &ms) < 0)
		return NULL;
	privacy_open_reply(f); /* reply texts and addresses, with [privacy] key_file */
	char at[40];
	fmt_time(ms, at, sizeof at);
	json_t *o = json_object();
	for (size_t i = 0; i + 1 < f->elements; i += 2) {
		const char *k = reply_str(f->element[i]), *v = reply_str(f->element[i + 1]);
		if (!k || !v || strcmp(k, "id") == 0 || strcmp(k, "at") == 0)
			continue;
		/* stream values are ours, but text came from outside: keep the
		 * field only when it is a valid JSON string */
		json_t *s = json_stringn(v, f->element[i + 1]->len);
		if (s)
			json_object_set_new(o, k, s);
	}
	json_object_set_new(o, "id", json_string(id));
	json_object_set_new(o, "at", json_string(at));
	return o;
}
