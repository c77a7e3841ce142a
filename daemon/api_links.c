/*
 * api_links.c - tracked links over HTTP: the public redirect GET /l/{code}
 * (no token: it is what customers click), POST /v1/links (marketer: shorten
 * one URL by hand) and GET /v1/links/{code} (viewer: one link's clicks).
 *
 * Owns: request handling only; codes, batches and store calls are links.c,
 * the Redis work is lua/link_*.lua.  Never touches key names.
 * The redirect answers only 302 (Location: the stored URL, re-checked, its
 * non-ASCII bytes percent-encoded) or a plain-text 404 "not found" that
 * says nothing about why (unknown, expired or malformed code); Redis
 * trouble is the usual JSON 503.  HEAD requests and link-preview bots get
 * the same answer but are not counted.  The path can only name a code of
 * 10 of [A-Za-z0-9], so a click writes only keys the stored link names.
 * Limits: URLs TMPL_URL_MAX bytes; ids LINKS_FIELD_MAX bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "links.h"
#include "log.h"
#include "template.h"
#include "util.h"

#define LINK_SAVE_TRIES 3 /* fresh codes after a collision (about 2^-59 each) */

static void not_found(struct api_req *rq)
{
	static const char body[] = "not found\n";
	api_reply_raw(rq, 404, "text/plain; charset=utf-8", body, sizeof(body) - 1);
}

/* Link previews and prefetchers fetch a link nobody clicked: they get the
 * redirect but are not counted.  Matched case-insensitively in User-Agent;
 * generic words like "bot" alone would also match phone models. */
static const char *const bot_agents[] = {
    "googlebot",
    "bingbot",
    "telegrambot",
    "twitterbot",
    "slackbot",
    "discordbot",
    "linkedinbot",
    "applebot",
    "yandexbot",
    "duckduckbot",
    "baiduspider",
    "pinterestbot",
    "facebookexternalhit",
    "facebot",
    "whatsapp/",
    "skypeuripreview",
    "embedly",
    "bot.html",
    "crawler",
    "spider",
    "headlesschrome",
    "preview",
};

static int is_bot(struct api_req *rq)
{
	static const char *const purpose[] = {"Purpose", "Sec-Purpose", "X-Purpose", "X-Moz"};
	const char *ua = api_header(rq, "User-Agent");

	for (size_t i = 0; i < ARRAY_SIZE(purpose); i++) {
		const char *p = api_header(rq, purpose[i]);
		if (p && (strcasestr(p, "prefetch") || strcasestr(p, "preview")))
			return 1;
	}
	if (!ua)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(bot_agents); i++)
		if (strcasestr(ua, bot_agents[i]))
			return 1;
	return 0;
}

/* The URL for a Location header: bytes from 0x80 up percent-encoded (a
 * header is ASCII; browsers decode them back). */
static char *location_of(const char *url, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf b;

	buf_init(&b, 0);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)url[i];
		if (c < 0x80) {
			buf_append(&b, &url[i], 1);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			buf_append(&b, e, 3);
		}
	}
	return b.p ? buf_steal(&b) : xstrdup("");
}

/* ---- GET /l/{code} -------------------------------------------------------- */

static void on_click(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	const char *why = NULL;

	if (api_reply_redis_failure(rq, rep))
		goto out;
	if (rep->type == REDIS_REPLY_NIL) {
		not_found(rq);
		goto out;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
	    rep->element[0]->type != REDIS_REPLY_STRING) {
		api_reply_error(rq, 503, "unavailable", NULL, "unexpected store answer");
		goto out;
	}
	const redisReply *u = rep->element[0];
	if (tmpl_url_check(u->str, u->len, &why) < 0) {
		/* saved links were checked; this one was written by someone else */
		log_warnx("links", "event=bad_stored_url code=%s reason=%s", api_param(rq, "code"),
		          log_q(why));
		not_found(rq);
		goto out;
	}
	char *loc = location_of(u->str, u->len);
	log_debug("links", "event=click code=%s counted=%lld new_clicker=%lld",
	          api_param(rq, "code"), rep->element[1]->integer, rep->element[2]->integer);
	api_add_header(rq, "Location", loc);
	api_add_header(rq, "Referrer-Policy", "no-referrer");
	api_reply_raw(rq, 302, NULL, "", 0);
	free(loc);
out:
	api_release(rq);
}

static void h_click(struct api_req *rq)
{
	struct app *app = api_app(rq);
	const char *code = api_param(rq, "code");

	/* api_path is the decoded path: a %00 or %2F in the code ends or
	 * splits it, and the decoded form must still be the whole segment */
	if (!links_code_valid(code) || strlen(api_path(rq)) != 3 + LINKS_CODE_LEN) {
		not_found(rq);
		return;
	}
	if (!api_store_ready(rq))
		return;
	int count = strcmp(api_method(rq), "GET") == 0 && !is_bot(rq);
	api_hold(rq);
	store_link_click(app->st, code, now_ms(), count, app->cfg->contacts_timeline_max, on_click,
	                 rq);
}

/* ---- POST /v1/links ------------------------------------------------------- */

/* base_url + "/l/" + code (base without trailing '/'), or NULL when link
 * tracking is off. */
static char *short_url(const char *base, const char *code)
{
	size_t n = base ? strlen(base) : 0;

	while (n > 0 && base[n - 1] == '/')
		n--;
	if (n == 0)
		return NULL;
	return xasprintf("%.*s/l/%s", (int)n, base, code);
}

static int tracking_on(const char *base)
{
	return base && base[strspn(base, "/")] != '\0';
}

struct create_ctx {
	struct api_req *rq;
	struct links_batch *b;
	const char *url, *contact, *camp, *var, *msg; /* borrowed from the request body */
	size_t urllen;
	int tries;
	int64_t ttl_ms;
};

static void create_free(struct create_ctx *c)
{
	links_batch_free(c->b);
	free(c);
}

static void create_try(struct create_ctx *c);

static void on_created(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct create_ctx *c = arg;
	struct api_req *rq = c->rq;
	struct app *app = api_app(rq);

	if (api_reply_redis_failure(rq, rep))
		goto out;
	const char *st =
	    rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 ? reply_str(rep->element[0]) : NULL;
	if (st && strcmp(st, "collision") == 0 && c->tries < LINK_SAVE_TRIES) {
		log_notice("links", "event=code_collision tries=%d", c->tries);
		create_try(c);
		return; /* the hold and c move on */
	}
	if (st && strcmp(st, "no_contact") == 0) {
		api_reply_error(rq, 404, "not_found", "contact_id", "no such contact");
		goto out;
	}
	const char *code = links_batch_count(c->b) == 1 ? links_batch_code(c->b, 0) : NULL;
	char *su = code ? short_url(app->cfg->links_base_url, code) : NULL;
	if (!st || strcmp(st, "ok") != 0 || !su) {
		free(su);
		api_reply_error(rq, 503, "unavailable", NULL, "unexpected store answer");
		goto out;
	}
	char exp[40];
	fmt_time(now_ms() + c->ttl_ms, exp, sizeof exp);
	json_t *o = json_object();
	json_object_set_new(o, "code", json_string(code));
	json_object_set_new(o, "url", json_stringn(c->url, c->urllen));
	json_object_set_new(o, "short_url", json_string(su));
	if (c->contact)
		json_object_set_new(o, "contact_id", json_string(c->contact));
	if (c->camp)
		json_object_set_new(o, "campaign", json_string(c->camp));
	if (c->var)
		json_object_set_new(o, "variant", json_string(c->var));
	if (c->msg)
		json_object_set_new(o, "message_id", json_string(c->msg));
	json_object_set_new(o, "expires_at", json_string(exp));
	free(su);
	log_info("links", "event=created code=%s camp=%s by=%s", code, c->camp ? c->camp : "",
	         log_q(api_token_name(rq)));
	api_reply_json(rq, 201, o);
out:
	api_release(rq);
	create_free(c);
}

/* A fresh code for the URL, saved with a contact check; on_created answers. */
static void create_try(struct create_ctx *c)
{
	struct app *app = api_app(c->rq);
	struct links_ctx lc = {NULL, c->msg, c->contact, c->camp, c->var};
	struct buf shown;
	int rc;

	links_batch_free(c->b);
	c->b = links_batch_new(app->cfg->links_base_url);
	lc.b = c->b;
	buf_init(&shown, 0);
	rc = links_track(&lc, c->url, c->urllen, &shown);
	buf_free(&shown);
	if (rc < 0 || links_batch_count(c->b) != 1) { /* cannot happen: all was checked */
		api_reply_error(c->rq, 503, "unavailable", NULL, "the link could not be made");
		api_release(c->rq);
		create_free(c);
		return;
	}
	c->tries++;
	store_links_save_checked(app->st, c->b, (c->ttl_ms + 999) / 1000, 1, on_created, c);
}

/* An optional string field of at most max bytes without NUL or control
 * characters; *out NULL when absent.  -1 after answering 400. */
static int get_str(struct api_req *rq, const json_t *o, const char *name, size_t max,
                   const char **out, size_t *len)
{
	const json_t *v = json_object_get(o, name);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		api_reply_error(rq, 400, "invalid_field", name, "must be a string");
		return -1;
	}
	if (json_string_length(v) > max) {
		api_reply_error(rq, 400, "invalid_field", name, "longer than %zu bytes", max);
		return -1;
	}
	*out = json_string_value(v);
	if (len)
		*len = json_string_length(v);
	return 0;
}

static void h_create(struct api_req *rq)
{
	struct app *app = api_app(rq);
	json_t *o = api_json(rq);
	static const char *const known[] = {"url", "contact_id", "campaign", "variant",
	                                    "message_id"};
	const char *k, *why = NULL;
	json_t *v;
	struct create_ctx c = {0};

	json_object_foreach(o, k, v)
	{
		int ok = 0;
		for (size_t i = 0; i < ARRAY_SIZE(known); i++)
			ok |= strcmp(k, known[i]) == 0;
		if (!ok) {
			char field[64];
			snprintf(field, sizeof field, "%.60s", k);
			api_reply_error(rq, 400, "invalid_field", field, "unknown field");
			return;
		}
	}
	if (get_str(rq, o, "url", TMPL_URL_MAX, &c.url, &c.urllen) < 0 ||
	    get_str(rq, o, "contact_id", LINKS_FIELD_MAX, &c.contact, NULL) < 0 ||
	    get_str(rq, o, "campaign", LINKS_FIELD_MAX, &c.camp, NULL) < 0 ||
	    get_str(rq, o, "variant", LINKS_FIELD_MAX, &c.var, NULL) < 0 ||
	    get_str(rq, o, "message_id", LINKS_FIELD_MAX, &c.msg, NULL) < 0)
		return;
	if (!c.url) {
		api_reply_error(rq, 400, "missing_field", "url", "url is required");
		return;
	}
	if (tmpl_url_check(c.url, c.urllen, &why) < 0) {
		if (strncmp(why, "track: ", 7) == 0)
			why += 7;
		api_reply_error(rq, 400, "invalid_field", "url", "%s", why);
		return;
	}
	if (c.contact && !id_valid(c.contact)) {
		api_reply_error(rq, 404, "not_found", "contact_id", "no such contact");
		return;
	}
	if (c.msg && !id_valid(c.msg)) {
		api_reply_error(rq, 400, "invalid_field", "message_id", "not a message id");
		return;
	}
	if (c.camp && (!*c.camp || !links_field_valid(c.camp))) {
		api_reply_error(rq, 400, "invalid_field", "campaign",
		                "1..64 characters of A-Z a-z 0-9 _ - .");
		return;
	}
	if (c.var && (!*c.var || !links_field_valid(c.var))) {
		api_reply_error(rq, 400, "invalid_field", "variant",
		                "1..64 characters of A-Z a-z 0-9 _ - .");
		return;
	}
	if (c.var && !c.camp) {
		api_reply_error(rq, 400, "missing_field", "campaign", "a variant needs a campaign");
		return;
	}
	if (!tracking_on(app->cfg->links_base_url)) {
		api_reply_error(rq, 409, "conflict", NULL,
		                "link tracking is off: [links] base_url is not set");
		return;
	}
	if (!api_store_ready(rq))
		return;
	struct create_ctx *cp = xmalloc(sizeof(*cp));
	*cp = c;
	cp->rq = rq;
	cp->ttl_ms = app->cfg->links_ttl_ms;
	api_hold(rq);
	create_try(cp);
}

/* ---- GET /v1/links/{code} -------------------------------------------------- */

static json_t *str_or_null(const redisReply *h, const char *field)
{
	const char *s = hash_get(h, field);
	return s && *s ? json_string(s) : json_null();
}

static json_t *time_or_null(const redisReply *h, const char *field)
{
	int64_t ms = hash_get_i64(h, field, 0);
	char t[40];

	if (ms <= 0)
		return json_null();
	fmt_time(ms, t, sizeof t);
	return json_string(t);
}

static void on_got(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	struct app *app = api_app(rq);
	const char *code = api_param(rq, "code");

	if (api_reply_redis_failure(rq, rep))
		goto out;
	if (rep->type == REDIS_REPLY_NIL) {
		api_reply_error(rq, 404, "not_found", NULL, "no such link");
		goto out;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_ARRAY || !hash_get(rep->element[0], "u")) {
		api_reply_error(rq, 503, "unavailable", NULL, "unexpected store answer");
		goto out;
	}
	const redisReply *h = rep->element[0];
	char *su = short_url(app->cfg->links_base_url, code);
	json_t *o = json_object();
	json_object_set_new(o, "code", json_string(code));
	json_object_set_new(o, "url", json_string(hash_get(h, "u")));
	json_object_set_new(o, "short_url", su ? json_string(su) : json_null());
	json_object_set_new(o, "contact_id", str_or_null(h, "c"));
	json_object_set_new(o, "campaign", str_or_null(h, "k"));
	json_object_set_new(o, "variant", str_or_null(h, "v"));
	json_object_set_new(o, "message_id", str_or_null(h, "m"));
	json_object_set_new(o, "clicks", json_integer(hash_get_i64(h, "n", 0)));
	json_object_set_new(o, "first_click", time_or_null(h, "f"));
	json_object_set_new(o, "created_at", time_or_null(h, "at"));
	if (rep->element[1]->type == REDIS_REPLY_INTEGER && rep->element[1]->integer > 0) {
		char t[40];
		fmt_time(now_ms() + rep->element[1]->integer, t, sizeof t);
		json_object_set_new(o, "expires_at", json_string(t));
	} else {
		json_object_set_new(o, "expires_at", json_null());
	}
	free(su);
	api_reply_json(rq, 200, o);
out:
	api_release(rq);
}

static void h_get(struct api_req *rq)
{
	struct app *app = api_app(rq);
	const char *code = api_param(rq, "code");

	if (!links_code_valid(code)) {
		api_reply_error(rq, 404, "not_found", NULL, "no such link");
		return;
	}
	if (!api_store_ready(rq))
		return;
	api_hold(rq);
	store_link_get(app->st, code, on_got, rq);
}

const struct api_route api_link_routes[] = {
    {"GET", "/l/{code}", ROLE_NONE, API_BODY_NONE, h_click, NULL, NULL},
    {"POST", "/v1/links", ROLE_MARKETER, API_BODY_JSON, h_create, NULL, NULL},
    {"GET", "/v1/links/{code}", ROLE_VIEWER, API_BODY_NONE, h_get, NULL, NULL},
};
const size_t api_link_nroutes = ARRAY_SIZE(api_link_routes);
