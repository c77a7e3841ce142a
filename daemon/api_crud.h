/*
 * api_crud.h - request and answer pieces the resource handlers
 * (api_templates.c, api_raffles.c, api_surveys.c, api_desk.c ...) share for
 * their paged listings: ?limit= and ?cursor= checking, and the
 * {"items": [...], "next_cursor": ...} answer, and reading the status words
 * of an array reply.
 */
#ifndef CLUBD_API_CRUD_H
#define CLUBD_API_CRUD_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"

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

#endif
