/*
 * api_messages.c - /v1/messages: validate a send request, accept it into
 * the store in one atomic script (lua/msg_create.lua: idempotency, contact
 * by address, schedule or ready stream), read a message with its history,
 * cancel one.  A 2xx answer is only given after Redis confirmed the write.
 *
 * Limits: text 16 KiB, html 256 KiB, subject 998 bytes, Idempotency-Key
 * 200 bytes of printable ASCII, kept 24 hours per token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "app.h"
#include "log.h"
#include "prefs.h"
#include "text.h"
#include "util.h"

#define TEXT_MAX    (16 * 1024)
#define HTML_MAX    (256 * 1024)
#define SUBJECT_MAX 998
#define IDEM_MAX    200
#define IDEM_TTL_S  86400

static int channel_configured(const struct app *app, const char *name)
{
	return chan_find(app->chans, app->nchans, name) != NULL;
}

/* A string field: absent -> *out NULL; present must be a string <= max
 * without NUL; allow_nl permits newlines and tabs. */
static int get_text(struct api_req *rq, const json_t *o, const char *name, size_t max, int allow_nl,
                    const char **out)
{
	const json_t *v = json_object_get(o, name);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		api_reply_error(rq, 400, "invalid_field", name, "must be a string");
		return -1;
	}
	const char *s = json_string_value(v);
	if (json_string_length(v) > max) {
		api_reply_error(rq, 400, "invalid_field", name, "longer than %zu bytes", max);
		return -1;
	}
	if (strlen(s) != json_string_length(v) || text_has_ctl(s, allow_nl)) {
		api_reply_error(rq, 400, "invalid_field", name,
		                allow_nl ? "control characters are not allowed"
		                         : "control characters (including CR/LF) are not allowed");
		return -1;
	}
	*out = s;
	return 0;
}

static int get_time(struct api_req *rq, const json_t *o, const char *name, int64_t *out)
{
	const json_t *v = json_object_get(o, name);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || parse_time(json_string_value(v), out) < 0) {
		api_reply_error(rq, 400, "invalid_field", name,
		                "an RFC 3339 time such as 2026-11-23T18:30:00Z");
		return -1;
	}
	return 1;
}

struct create_ctx {
	struct api_req *rq;
	char id[ID_LEN + 1];
	int64_t due;
};

static void on_replay_got(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
			json_t *m = store_msg_json(rep->element[0], rep->element[1]);
			json_object_set_new(m, "replayed", json_true());
			api_reply_json(rq, 200, m);
		} else {
			api_reply_error(rq, 409, "conflict", "Idempotency-Key",
			                "the key was used for a message that no longer exists");
		}
	}
	api_release(rq);
}

static void on_created(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct create_ctx *c = arg;
	struct api_req *rq = c->rq;
	struct app *app = api_app(rq);
	if (!api_reply_redis_failure(rq, rep)) {
		const char *st = rep->type == REDIS_REPLY_ARRAY && rep->elements > 0
		                     ? reply_str(rep->element[0])
		                     : NULL;
		if (st && strcmp(st, "ok") == 0 && rep->elements >= 3) {
			char t[40];
			fmt_time(c->due, t, sizeof t);
			json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "id", c->id, "state",
			                      reply_str(rep->element[1]), "contact_id",
			                      reply_str(rep->element[2]), "due_at", t);
			log_debug("api", "msg=%s accepted state=%s", c->id,
			          reply_str(rep->element[1]));
			api_reply_json(rq, 202, o);
		} else if (st && strcmp(st, "dup") == 0 && rep->elements >= 2) {
			store_msg_get(app->st, reply_str(rep->element[1]), on_replay_got, rq);
			free(c);
			return; /* the hold moves to on_replay_got */
		} else if (st && strcmp(st, "no_contact") == 0) {
			api_reply_error(rq, 404, "not_found", "contact_id", "no such contact");
		} else {
			api_reply_error(rq, 503, "unavailable", NULL, "unexpected store answer");
		}
	}
	api_release(rq);
	free(c);
}

static void h_create(struct api_req *rq)
{
	struct app *app = api_app(rq);
	const struct config *cfg = app->cfg;
	json_t *o = api_json(rq);
	static const char *const known[] = {"contact_id", "to",   "channel", "category",  "text",
	                                    "subject",    "html", "send_at", "expires_at"};
	const char *k;
	json_t *v;
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

	const char *channel = "preferred", *category = "transactional";
	const char *contact_id, *to, *text, *subject, *html;
	if (get_text(rq, o, "channel", 16, 0, &channel) < 0 ||
	    get_text(rq, o, "category", 32, 0, &category) < 0 ||
	    get_text(rq, o, "contact_id", 64, 0, &contact_id) < 0 ||
	    get_text(rq, o, "to", ADDR_MAX, 0, &to) < 0 ||
	    get_text(rq, o, "text", TEXT_MAX, 1, &text) < 0 ||
	    get_text(rq, o, "subject", SUBJECT_MAX, 0, &subject) < 0 ||
	    get_text(rq, o, "html", HTML_MAX, 1, &html) < 0)
		return;
	if (!channel)
		channel = "preferred";
	if (!category)
		category = "transactional";
	int kind = -1;
	if (strcmp(channel, "preferred") != 0) {
		kind = addr_kind_parse(channel);
		if (kind < 0) {
			api_reply_error(rq, 400, "invalid_field", "channel",
			                "sms, email, chat or preferred");
			return;
		}
		if (!channel_configured(app, channel)) {
			api_reply_error(rq, 400, "invalid_field", "channel",
			                "channel %s is not configured on this server", channel);
			return;
		}
	}
	if (category_parse(category) < 0) {
		api_reply_error(rq, 400, "invalid_field", "category",
		                "transactional, promotional, survey, lottery or occasion");
		return;
	}
	if (!!contact_id == !!to) {
		api_reply_error(rq, 400, "missing_field", contact_id ? "to" : "contact_id",
		                "give exactly one of contact_id or to");
		return;
	}
	if (contact_id && !id_valid(contact_id)) {
		api_reply_error(rq, 404, "not_found", "contact_id", "no such contact");
		return;
	}
	char addr[ADDR_MAX + 1] = "";
	if (to) {
		if (kind < 0) {
			api_reply_error(rq, 400, "invalid_field", "channel",
			                "sending to an address needs a concrete channel");
			return;
		}
		const char *why = "invalid";
		if (addr_normalize((enum addr_kind)kind, to, cfg->contacts_default_country, addr,
		                   &why) < 0) {
			api_reply_error(rq, 400, "invalid_field", "to", "%s", why);
			return;
		}
	}
	if (kind == ADDR_EMAIL) {
		if (!subject) {
			api_reply_error(rq, 400, "missing_field", "subject",
			                "email needs a subject");
			return;
		}
		if (!text && !html) {
			api_reply_error(rq, 400, "missing_field", "text", "give text and/or html");
			return;
		}
	} else if (!text || !*text) {
		api_reply_error(rq, 400, "missing_field", "text", "text is required");
		return;
	}

	int64_t now = now_ms(), due = now, expires = 0;
	int rc;
	if ((rc = get_time(rq, o, "send_at", &due)) < 0)
		return;
	if (rc == 0 || due < now)
		due = now;
	if ((rc = get_time(rq, o, "expires_at", &expires)) < 0)
		return;
	if (rc == 0)
		expires = due + cfg->sched_message_ttl_ms;
	if (expires <= due) {
		api_reply_error(rq, 400, "invalid_field", "expires_at",
		                "must be later than send_at");
		return;
	}

	const char *idem = api_header(rq, "Idempotency-Key");
	char idem_key[IDEM_MAX + 80] = "";
	if (idem) {
		size_t n = strlen(idem);
		int ok = n > 0 && n <= IDEM_MAX;
		for (size_t i = 0; ok && i < n; i++)
			ok = idem[i] > 0x20 && idem[i] < 0x7f;
		if (!ok) {
			api_reply_error(rq, 400, "invalid_field", "Idempotency-Key",
			                "1..200 printable ASCII characters");
			return;
		}
		snprintf(idem_key, sizeof idem_key, "%s:%s", api_token_name(rq), idem);
	}
	if (!api_store_ready(rq))
		return;

	struct create_ctx *c = xcalloc(1, sizeof *c);
	c->rq = rq;
	c->due = due;
	const char *fields[6];
	size_t nf = 0;
	if (text) {
		fields[nf++] = "text";
		fields[nf++] = text;
	}
	if (subject) {
		fields[nf++] = "subject";
		fields[nf++] = subject;
	}
	if (html) {
		fields[nf++] = "html";
		fields[nf++] = html;
	}
	struct msg_new m = {.contact_id = contact_id,
	                    .addr_kind = kind >= 0 ? channel : "",
	                    .addr = addr,
	                    .lane = kind >= 0 ? channel : "preferred",
	                    .channel = channel,
	                    .category = category,
	                    .idem = idem_key,
	                    .idem_ttl_s = IDEM_TTL_S,
	                    .now = now,
	                    .due = due,
	                    .expires = expires,
	                    .fields = fields,
	                    .nfields = nf};
	api_hold(rq);
	store_msg_create(app->st, &m, c->id, on_created, c);
}

static void on_got(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2)
			api_reply_json(rq, 200, store_msg_json(rep->element[0], rep->element[1]));
		else
			api_reply_error(rq, 404, "not_found", NULL, "no such message");
	}
	api_release(rq);
}

static void h_get(struct api_req *rq)
{
	struct app *app = api_app(rq);
	const char *id = api_param(rq, "id");
	if (!id_valid(id)) {
		api_reply_error(rq, 404, "not_found", NULL, "no such message");
		return;
	}
	if (!api_store_ready(rq))
		return;
	api_hold(rq);
	store_msg_get(app->st, id, on_got, rq);
}

static void on_cancelled(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		/* The settle script answers one result per item. */
		if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1)
			rep = rep->element[0];
		const char *st = rep->type == REDIS_REPLY_ARRAY && rep->elements > 0
		                     ? reply_str(rep->element[0])
		                     : NULL;
		const char *cur = rep->type == REDIS_REPLY_ARRAY && rep->elements > 1
		                      ? reply_str(rep->element[1])
		                      : NULL;
		if (st && strcmp(st, "ok") == 0)
			api_reply_json(rq, 200,
			               json_pack("{s:s, s:s}", "id", api_param(rq, "id"), "state",
			                         "cancelled"));
		else if (st && strcmp(st, "gone") == 0)
			api_reply_error(rq, 404, "not_found", NULL, "no such message");
		else
			api_reply_error(rq, 409, "conflict", NULL,
			                "the message is %s and can no longer be cancelled",
			                cur ? cur : "not cancellable");
	}
	api_release(rq);
}

static void h_cancel(struct api_req *rq)
{
	struct app *app = api_app(rq);
	const char *id = api_param(rq, "id");
	if (!id_valid(id)) {
		api_reply_error(rq, 404, "not_found", NULL, "no such message");
		return;
	}
	if (!api_store_ready(rq))
		return;
	struct argv a;
	argv_init(&a);
	int ttl = app->cfg->sched_retention_ms > 0;
	argv_addll(&a, ttl ? 11 : 9); /* one item */
	argv_add(&a, id);
	argv_addll(&a, now_ms());
	argv_add(&a, ""); /* from any state the table allows */
	argv_add(&a, "cancelled");
	argv_add(&a, "");
	argv_add(&a, "cancelled by API");
	argv_addll(&a, app->cfg->contacts_timeline_max);
	argv_addll(&a, 0);
	argv_add(&a, STORE_GROUP);
	if (ttl) {
		argv_add(&a, "!ttl");
		argv_addll(&a, (app->cfg->sched_retention_ms + 999) / 1000);
	}
	api_hold(rq);
	store_eval(app->st, SCRIPT_MSG_SETTLE, &a, on_cancelled, rq);
	argv_free(&a);
}

const struct api_route api_message_routes[] = {
    {"POST", "/v1/messages", ROLE_MARKETER, API_BODY_JSON, h_create, NULL, NULL},
    {"GET", "/v1/messages/{id}", ROLE_VIEWER, API_BODY_NONE, h_get, NULL, NULL},
    {"POST", "/v1/messages/{id}/cancel", ROLE_MARKETER, API_BODY_NONE, h_cancel, NULL, NULL},
};
const size_t api_message_nroutes = ARRAY_SIZE(api_message_routes);
