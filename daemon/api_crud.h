/*
 * api_crud.h - request and answer pieces the resource handlers
 * (api_segments.c, api_templates.c, api_raffles.c, api_surveys.c,
 * api_desk.c ...) share: paged listings (?limit= and ?cursor= checking, the
 * {"items": [...], "next_cursor": ...} answer), the status words of an
 * array reply, and whole GET / list / DELETE handlers and the create /
 * replace write of a versioned definition, driven by a struct api_crud that
 * says what differs per resource.
 */
#ifndef CLUBD_API_CRUD_H
#define CLUBD_API_CRUD_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "redis.h"
#include "store.h"
#include "util.h"

/*
 * ?limit= (1..max, dflt when absent) into *limit and ?cursor= into *cursor
 * (NULL or "" for the first page, else cursor_ok(cursor) must hold).  1 on
 * success; 0 after replying 400 invalid_field ("limit is 1..MAX" / "not a
 * cursor from this API").
 */
int api_crud_list_args(struct api_req *rq, int64_t dflt, int64_t max,
                       int (*cursor_ok)(const char *), int64_t *limit, const char **cursor);

/* The text of element i of an array reply (rep may be NULL), or NULL. */
const char *api_crud_str(const redisReply *rep, size_t i);

/* Reply 200 {"items": items, "next_cursor": next or null ("" is null)};
 * items is stolen. */
void api_crud_reply_page(struct api_req *rq, json_t *items, const char *next);

/*
 * One resource's CRUD shape.  The handlers below answer 404 not_found
 * "no such NOUN" for an {id} path parameter id_ok refuses (ids and list
 * cursors alike), 503 when the store is not ready, the store's failures
 * through api_reply_redis_failure(), and log "NOUN=ID" lines under "api"
 * (unless a hook logs).  A versioned definition is stored as [json, v,
 * updated] and answered as the JSON object plus "v" and "updated_at".
 */
struct api_crud {
	const char *noun; /* "segment" */
	int (*id_ok)(const char *id);
	int64_t list_default, list_max;
	/* GET /{id}: read, then reply(rq, 200, its reply); reply NULL: a
	 * versioned definition, 404 when absent. */
	void (*read)(struct store *st, const char *id, redis_cb cb, void *arg);
	void (*reply)(struct api_req *rq, unsigned status, const redisReply *rep);
	/* GET /: list pages {next cursor or '', element...}; each element an
	 * array of list_fields, made an item by item (NULL: {id, json, v,
	 * updated} as a versioned definition); NULL items are left out. */
	void (*list)(struct store *st, const char *cursor, int limit, redis_cb cb, void *arg);
	size_t list_fields;
	json_t *(*item)(const redisReply *e);
	/* POST / and PUT /{id} of a versioned definition: {'ok', v},
	 * {'exists'}, {'not_found'} or {'conflict', v}. */
	void (*create)(struct store *st, const char *id, const char *json, int64_t now, redis_cb cb,
	               void *arg);
	void (*replace)(struct store *st, const char *id, const char *json, long long expect_v,
	                int64_t now, redis_cb cb, void *arg);
	/* DELETE /{id}: del issues the store call ({'ok', ...} or another
	 * status word); deleted (NULL: the "api" line) logs an 'ok' before the
	 * 204; refused (NULL, or returning 0: 404) answers other words. */
	void (*del)(struct api_req *rq, const char *id, redis_cb cb, void *arg);
	void (*deleted)(struct api_req *rq, const redisReply *rep);
	int (*refused)(struct api_req *rq, const char *st, const redisReply *rep);
};

/* 1 when the {id} path parameter passes res->id_ok; else 0 after
 * answering 404 "no such NOUN". */
int api_crud_param(struct api_req *rq, const struct api_crud *res);

/* The handlers: GET /{id}, GET / (paged), DELETE /{id}. */
void api_crud_get(struct api_req *rq, const struct api_crud *res);
void api_crud_list(struct api_req *rq, const struct api_crud *res);
void api_crud_delete(struct api_req *rq, const struct api_crud *res);

/*
 * Create (POST) or replace (other methods, expecting version expect_v, 0 =
 * any) the versioned definition def (its "id" names it; stolen, and
 * freed when the store is not ready).  Answers 201 / 200 with def, v and
 * updated_at, 409 conflict (field id: exists; field v: a newer version),
 * 404, or 503 on an unexpected reply.
 */
void api_crud_write(struct api_req *rq, const struct api_crud *res, json_t *def,
                    long long expect_v);

/* def (stolen) with "v" and "updated_at" (RFC 3339 of updated ms) set. */
json_t *api_crud_versioned(json_t *def, long long v, int64_t updated);
/* The API form of a stored [json, v, updated] (new reference); NULL when
 * absent or not a JSON object. */
json_t *api_crud_stored(const redisReply *json, const redisReply *v, const redisReply *updated);
/* An integer or integer-text reply, 0 otherwise (r may be NULL). */
long long api_crud_ll(const redisReply *r);
/* o[key] = the RFC 3339 time of ms_text (decimal ms since the epoch), null
 * when ms_text is NULL or not a number. */
void api_crud_time(json_t *o, const char *key, const char *ms_text);
/* A new id (util.h id_new) in lower case, into id[ID_LEN + 1]. */
void api_crud_new_id(char id[ID_LEN + 1]);

#endif
