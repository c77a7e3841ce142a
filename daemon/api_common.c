/*
 * api_common.c - what every resource handler shares: the answer when Redis is
 * not there (before a call) or did not answer (after one).  Owns nothing.
 */
#include "app.h"
#include "log.h"

int api_store_ready(struct api_req *rq)
{
	struct app *app = api_app(rq);
	if (redis_is_up(app->redis))
		return 1;
	api_reply_error(rq, 503, "unavailable", NULL,
	                "the store is unavailable; nothing was written, retry later");
	return 0;
}

int api_reply_redis_failure(struct api_req *rq, const redisReply *rep)
{
	if (!rep) {
		api_reply_error(rq, 503, "unavailable", NULL,
		                "the store is unavailable; nothing was written, retry later");
		return 1;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		log_err("api", "redis error path=%s error=%s", log_q(api_path(rq)),
		        log_q(rep->str));
		api_reply_error(rq, 503, "unavailable", NULL, "the store refused the request");
		return 1;
	}
	return 0;
}
