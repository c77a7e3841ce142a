/*
 * api_unsub.c - the unsubscribe endpoint behind List-Unsubscribe (RFC 2369)
 * and one-click List-Unsubscribe-Post (RFC 8058).  The link carries the
 * message id and our signature (callback_sign("unsub", id)); no token.
 * GET shows a confirmation page and changes nothing (mail scanners follow
 * links); POST (the one-click body "List-Unsubscribe=One-Click", or the
 * page's button) records the opt-out through lua/unsubscribe.lua.
 *
 * Limits: POST bodies 4 KiB (read and ignored beyond the one-click field).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "callback.h"
#include "log.h"
#include "util.h"

#define BODY_MAX 4096

static const char page_head[] =
    "<!doctype html><html lang=\"fa\" dir=\"rtl\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width\"><title>Unsubscribe</title></head>"
    "<body style=\"font-family:sans-serif;max-width:32em;margin:3em auto\">";

static int check_link(struct api_req *rq, const char **id)
{
	*id = api_query(rq, "m");
	if (!*id || !id_valid(*id) || !callback_verify("unsub", *id, api_query(rq, "k"))) {
		api_reply_error(rq, 403, "forbidden", "k", "this unsubscribe link is not valid");
		return -1;
	}
	return 0;
}

static void h_get(struct api_req *rq)
{
	const char *id;
	if (check_link(rq, &id) < 0)
		return;
	struct buf b;
	buf_init(&b, 0);
	buf_puts(&b, page_head);
	buf_printf(&b,
	           "<p>برای لغو دریافت این نوع پیام‌ها دکمه را "
	           "بزنید.</p>"
	           "<p dir=\"ltr\">To stop receiving messages like this one, press the button.</p>"
	           "<form method=\"post\" action=\"?m=%s&amp;k=%s\">"
	           "<button type=\"submit\" name=\"List-Unsubscribe\" value=\"One-Click\">"
	           "لغو اشتراک / Unsubscribe</button></form></body></html>",
	           id, api_query(rq, "k"));
	api_reply_raw(rq, 200, "text/html; charset=utf-8", b.p, b.len);
	buf_free(&b);
}

static void on_unsubscribed(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		const char *st = rep->type == REDIS_REPLY_ARRAY && rep->elements > 0
		                     ? reply_str(rep->element[0])
		                     : NULL;
		if (st && strcmp(st, "ok") == 0) {
			log_info("unsub", "msg=%s scope=%s", api_query(rq, "m"),
			         rep->elements > 1 ? log_q(reply_str(rep->element[1])) : "?");
			struct buf b;
			buf_init(&b, 0);
			buf_puts(&b, page_head);
			buf_puts(&b, "<p>اشتراک شما لغو شد.</p><p dir=\"ltr\">You are unsubscribed."
			             "</p></body></html>");
			api_reply_raw(rq, 200, "text/html; charset=utf-8", b.p, b.len);
			buf_free(&b);
		} else {
			api_reply_error(rq, 404, "not_found", "m", "no such message or contact");
		}
	}
	api_release(rq);
}

static void h_post(struct api_req *rq)
{
	const char *id;
	if (check_link(rq, &id) < 0)
		return;
	struct buf *b = xcalloc(1, sizeof *b);
	buf_init(b, BODY_MAX);
	api_set_data(rq, b, free);
}

static long post_chunk(struct api_req *rq, const char *data, size_t len)
{
	(void)data;
	struct buf *b = api_data(rq);
	if (!b) /* the link was refused in h_post: the body is read and dropped */
		return (long)len;
	if (b->len + len > BODY_MAX) {
		api_reply_error(rq, 413, "body_too_large", NULL, "at most 4 KiB");
		return -1;
	}
	b->len += len; /* only the size matters: the one-click body has no options */
	return (long)len;
}

static void post_end(struct api_req *rq)
{
	struct app *app = api_app(rq);
	if (api_replied(rq))
		return;
	if (!api_store_ready(rq))
		return;
	struct argv a;
	argv_init(&a);
	argv_add(&a, api_query(rq, "m"));
	argv_addll(&a, now_ms());
	argv_addll(&a, app->cfg->contacts_timeline_max);
	api_hold(rq);
	store_eval(app->st, SCRIPT_UNSUBSCRIBE, &a, on_unsubscribed, rq);
	argv_free(&a);
}

const struct api_route api_unsub_routes[] = {
    {"GET", "/v1/unsubscribe", ROLE_NONE, API_BODY_NONE, h_get, NULL, NULL},
    {"POST", "/v1/unsubscribe", ROLE_NONE, API_BODY_STREAM, h_post, post_chunk, post_end},
};
const size_t api_unsub_nroutes = ARRAY_SIZE(api_unsub_routes);
