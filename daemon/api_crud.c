/*
 * api_crud.c - the paged-listing pieces the resource handlers share (see
 * api_crud.h): checking ?limit= and ?cursor=, the page answer and the
 * status words of an array reply.
 *
 * Owns nothing: it reads the request and replies through api.h.  Never
 * touches the store.  Limits: the caller's maximum page size.
 */
#include "api_crud.h"

#include "store.h"
#include "util.h"

int api_crud_list_args(struct api_req *rq, int64_t dflt, int64_t max,
                       int (*cursor_ok)(const char *), int64_t *limit, const char **cursor)
{
	*limit = dflt;
	const char *l = api_query(rq, "limit");
	if (l && parse_i64(l, 1, max, limit) < 0) {
		api_reply_error(rq, 400, "invalid_field", "limit", "limit is 1..%lld",
		                (long long)max);
		return 0;
	}
	*cursor = api_query(rq, "cursor");
	if (*cursor && **cursor && !cursor_ok(*cursor)) {
		api_reply_error(rq, 400, "invalid_field", "cursor", "not a cursor from this API");
		return 0;
	}
	return 1;
}

const char *api_crud_str(const redisReply *rep, size_t i)
{
	return rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > i
	           ? reply_str(rep->element[i])
	           : NULL;
}

void api_crud_reply_page(struct api_req *rq, json_t *items, const char *next)
{
	api_reply_json(rq, 200,
	               json_pack("{s:o, s:o}", "items", items, "next_cursor",
	                         next && *next ? json_string(next) : json_null()));
}
