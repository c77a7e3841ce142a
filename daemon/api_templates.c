/*
 * api_templates.c - /v1/templates: create, list, get, replace and delete
 * template definitions, validate one without storing it, and preview a
 * template rendered for a contact (stored or inline) with the SMS segments
 * and cost of the result.  Validation is tplset.c's; storage is
 * store_templates.c's; the get, list, write and delete handling (a
 * versioned definition) api_crud.c's; this file knows no key names.
 *
 * Template errors answer 400 in the usual error shape plus "line" and "col"
 * (1-based, columns in code points) when the error is inside a template.
 * Limits: the definition's own (tplset.h); a page lists at most LIST_MAX
 * templates; validate lists at most ERRORS_MAX errors; preview lang 35
 * bytes.  The SMS price is [channel.sms] price_per_segment, read per preview
 * (0 or absent: the cost is null).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_crud.h"
#include "app.h"
#include "log.h"
#include "sms_segments.h"
#include "text.h"
#include "tplset.h"
#include "util.h"

#define LIST_DEFAULT 50
#define LIST_MAX     200
#define ERRORS_MAX   100
#define LANG_MAX     35

/* Error skeletons; the code is part of the literal so the API's error codes
 * can be listed from the source (tests/integration/test_openapi.py). */
static const char ERR_INVALID[] = "{\"error\":{\"code\":\"invalid_field\"}}";
static const char ERR_RENDER[] = "{\"error\":{\"code\":\"render_failed\"}}";

static void reply_tmpl_error(struct api_req *rq, unsigned status, const char *skel,
                             const char *field, const struct tmpl_error *e)
{
	json_t *j = json_loads(skel, 0, NULL);
	json_t *o = json_object_get(j, "error");
	char msg[256];
	if (e->line > 0)
		snprintf(msg, sizeof msg, "line %d, column %d: %s", e->line, e->col, e->reason);
	else
		snprintf(msg, sizeof msg, "%s", e->reason);
	json_t *m = json_string(msg);
	json_object_set_new(o, "message", m ? m : json_string("invalid template"));
	if (field && *field)
		json_object_set_new(o, "field", json_string(field));
	if (e->line > 0) {
		json_object_set_new(o, "line", json_integer(e->line));
		json_object_set_new(o, "col", json_integer(e->col));
	}
	api_reply_json(rq, status, j);
}

/* ---------------------------------------------------------------- helpers */

/* A copy of the request body without the read-only keys a client may send
 * back from a GET (v, updated_at); *expect_v gets v (0 when absent).  NULL
 * after replying 400 when v is not a positive integer. */
static json_t *writable_def(struct api_req *rq, long long *expect_v)
{
	json_t *def = json_copy(api_json(rq));
	const json_t *v = json_object_get(def, "v");
	*expect_v = 0;
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 1) {
			api_reply_error(rq, 400, "invalid_field", "v",
			                "v is the version read before (a positive integer)");
			json_decref(def);
			return NULL;
		}
		*expect_v = json_integer_value(v);
	}
	json_object_del(def, "v");
	json_object_del(def, "updated_at");
	return def;
}

/* 0 when def is a valid definition; else replies 400 and returns -1. */
static int check_def(struct api_req *rq, const json_t *def)
{
	struct tplset *ts = NULL;
	const char *field = NULL;
	struct tmpl_error err;
	memset(&err, 0, sizeof err);
	if (tplset_parse(def, &ts, &field, &err) < 0) {
		reply_tmpl_error(rq, 400, ERR_INVALID, field, &err);
		return -1;
	}
	tplset_free(ts);
	return 0;
}

/* The stored form: id first, then the other keys as given, nulls dropped. */
static json_t *canonical(const json_t *def, const char *id)
{
	json_t *o = json_object();
	const char *k;
	json_t *v;
	json_object_set_new(o, "id", json_string(id));
	json_object_foreach((json_t *)def, k, v)
	{
		if (strcmp(k, "id") != 0 && !json_is_null(v))
			json_object_set(o, k, v);
	}
	return o;
}

/* ---------------------------------------------------------------- CRUD */

/* A list item: id, name, default_lang, v, updated_at and the variants'
 * channel and lang (no texts). */
static json_t *summary(const json_t *full)
{
	json_t *o = json_object();
	static const char *const keys[] = {"id", "name", "default_lang", "v", "updated_at"};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		json_t *v = json_object_get(full, keys[i]);
		json_object_set(o, keys[i], v ? v : json_null());
	}
	json_t *vs = json_array();
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(full, "variants"), i, x)
	{
		json_array_append_new(vs, json_pack("{s:O?, s:O?}", "channel",
		                                    json_object_get(x, "channel"), "lang",
		                                    json_object_get(x, "lang")));
	}
	json_object_set_new(o, "variants", vs);
	return o;
}

/* A list element {id, json, v, updated} as its summary. */
static json_t *list_item(const redisReply *e)
{
	json_t *full = api_crud_stored(e->element[1], e->element[2], e->element[3]);
	json_t *o = full ? summary(full) : NULL;
	json_decref(full);
	return o;
}

static void tpl_delete(struct api_req *rq, const char *id, redis_cb cb, void *arg)
{
	store_template_delete(((struct app *)api_app(rq))->st, id, cb, arg);
}

static const struct api_crud templates = {.noun = "template",
                                          .id_ok = tplset_id_valid,
                                          .list_default = LIST_DEFAULT,
                                          .list_max = LIST_MAX,
                                          .read = store_template_read,
                                          .list = store_template_list,
                                          .list_fields = 4,
                                          .item = list_item,
                                          .create = store_template_create,
                                          .replace = store_template_replace,
                                          .del = tpl_delete};

static void h_create(struct api_req *rq)
{
	long long expect_v;
	json_t *def = writable_def(rq, &expect_v);
	if (!def)
		return;
	const json_t *idj = json_object_get(def, "id");
	if (!idj || json_is_null(idj)) {
		char id[ID_LEN + 1];
		api_crud_new_id(id);
		json_object_set_new(def, "id", json_string(id));
	}
	if (check_def(rq, def) == 0)
		api_crud_write(rq, &templates,
		               canonical(def, json_string_value(json_object_get(def, "id"))), 0);
	json_decref(def);
}

static void h_put(struct api_req *rq)
{
	const char *id = api_param(rq, "id");
	if (!api_crud_param(rq, &templates))
		return;
	long long expect_v;
	json_t *def = writable_def(rq, &expect_v);
	if (!def)
		return;
	const json_t *idj = json_object_get(def, "id");
	if (idj && !json_is_null(idj) &&
	    !(json_is_string(idj) && strcmp(json_string_value(idj), id) == 0)) {
		api_reply_error(rq, 400, "invalid_field", "id",
		                "id differs from the template named in the path");
		json_decref(def);
		return;
	}
	json_object_set_new(def, "id", json_string(id));
	if (check_def(rq, def) == 0)
		api_crud_write(rq, &templates, canonical(def, id), expect_v);
	json_decref(def);
}

static void h_get(struct api_req *rq)
{
	api_crud_get(rq, &templates);
}

static void h_list(struct api_req *rq)
{
	api_crud_list(rq, &templates);
}

static void h_delete(struct api_req *rq)
{
	api_crud_delete(rq, &templates);
}

/* ---------------------------------------------------------------- validate */

static void collect_error(void *arg, const char *field, const struct tmpl_error *e)
{
	json_t *errors = arg;
	if (json_array_size(errors) >= ERRORS_MAX)
		return;
	json_t *o = json_object();
	json_t *reason = json_string(e->reason);
	json_object_set_new(o, "field", json_string(field));
	json_object_set_new(o, "line", e->line > 0 ? json_integer(e->line) : json_null());
	json_object_set_new(o, "col", e->line > 0 ? json_integer(e->col) : json_null());
	json_object_set_new(o, "reason", reason ? reason : json_string("invalid"));
	json_array_append_new(errors, o);
}

static void h_validate(struct api_req *rq)
{
	long long expect_v;
	json_t *def = writable_def(rq, &expect_v);
	if (!def)
		return;
	json_t *errors = json_array();
	int n = tplset_check(def, collect_error, errors);
	json_t *o = json_object();
	json_object_set_new(o, "valid", json_boolean(n == 0));
	json_object_set_new(o, "errors", errors);
	api_reply_json(rq, 200, o);
	json_decref(def);
}

/* ---------------------------------------------------------------- preview */

struct preview {
	const char *kind;   /* "sms", "email", "chat" (static) */
	char *lang;         /* asked for, or NULL */
	char *contact_lang; /* the contact's, or NULL */
	char *tz;           /* the contact's, or NULL */
	json_t *event, *vars;
	json_t *ctx; /* built once the contact is known */
	char *tpl_json;
	long long v;
	int pending;
	int no_template, no_contact;
};

static void preview_free(void *p)
{
	struct preview *pv = p;
	free(pv->lang);
	free(pv->contact_lang);
	free(pv->tz);
	json_decref(pv->event);
	json_decref(pv->vars);
	json_decref(pv->ctx);
	free(pv->tpl_json);
	free(pv);
}

static json_t *sms_info(const struct config *cfg, const char *text)
{
	struct sms_count cnt;
	if (sms_count(text, strlen(text), &cnt) < 0)
		return json_null();
	struct sms_opts so;
	struct cfg_error cerr;
	const struct cfg_channel *ch = config_channel(cfg, "sms");
	memset(&so, 0, sizeof so);
	so.max_segments = 10;
	if (ch && ch->sec && sms_opts_configure(ch->sec, &so, &cerr) < 0) {
		memset(&so, 0, sizeof so); /* validated at load: cannot happen */
		so.max_segments = 10;
	}
	int64_t micros = sms_cost_micros(cnt.segments, so.price);
	json_t *o = json_object();
	json_object_set_new(o, "encoding", json_string(cnt.ucs2 ? "ucs2" : "gsm7"));
	json_object_set_new(o, "chars", json_integer((json_int_t)utf8_len(text, strlen(text))));
	json_object_set_new(o, "units", json_integer(cnt.units));
	json_object_set_new(o, "segments", json_integer(cnt.segments));
	json_object_set_new(o, "per_segment", json_integer(cnt.per_segment));
	json_object_set_new(o, "max_segments", json_integer(so.max_segments));
	json_object_set_new(o, "too_long", json_boolean(cnt.segments > so.max_segments));
	json_object_set_new(o, "price_per_segment",
	                    so.price > 0 ? json_real(so.price) : json_null());
	json_object_set_new(o, "cost",
	                    so.price > 0 ? json_real((double)micros / 1e6) : json_null());
	json_object_set_new(o, "cost_micros", so.price > 0 ? json_integer(micros) : json_null());
	sms_opts_free(&so);
	return o;
}

static void preview_finish(struct api_req *rq)
{
	struct app *app = api_app(rq);
	struct preview *pv = api_data(rq);
	const char *id = api_param(rq, "id");
	if (pv->no_template) {
		api_reply_error(rq, 404, "not_found", NULL, "no such template");
		return;
	}
	if (pv->no_contact) {
		api_reply_error(rq, 404, "not_found", "contact_id", "no such contact");
		return;
	}
	json_t *def = json_loads(pv->tpl_json, 0, NULL);
	struct tplset *ts = NULL;
	const char *field = NULL;
	struct tmpl_error err;
	memset(&err, 0, sizeof err);
	if (!def || tplset_parse(def, &ts, &field, &err) < 0) {
		log_err("api", "template=%s stored definition unreadable field=%s reason=%s",
		        log_q(id), log_q(field ? field : ""), log_q(err.reason));
		api_reply_error(rq, 500, "internal", NULL, "the stored template is unreadable");
		json_decref(def);
		return;
	}
	json_decref(def);
	const char *lang = pv->lang           ? pv->lang
	                   : pv->contact_lang ? pv->contact_lang
	                                      : app->cfg->contacts_default_lang;
	const char *zone = pv->tz ? pv->tz : app->cfg->contacts_default_tz;
	struct tpl_rendered out;
	int r = tplset_render(ts, pv->kind, lang, pv->ctx, zone, &out, &err);
	if (r == -ENOENT) {
		api_reply_error(rq, 422, "invalid_field", "channel",
		                "template %s has no %s variant", id, pv->kind);
	} else if (r < 0) {
		reply_tmpl_error(rq, 422, ERR_RENDER, NULL, &err);
	} else {
		json_t *o = json_object();
		json_object_set_new(o, "template", json_string(id));
		json_object_set_new(o, "v", json_integer(pv->v));
		json_object_set_new(o, "channel", json_string(pv->kind));
		json_object_set_new(o, "lang", json_string(out.lang));
		json_object_set_new(o, "lang_requested",
		                    lang && *lang ? json_string(lang) : json_null());
		json_object_set_new(o, "subject",
		                    out.subject ? json_string(out.subject) : json_null());
		json_object_set_new(o, "text", json_string(out.text));
		json_object_set_new(o, "html", out.html ? json_string(out.html) : json_null());
		if (strcmp(pv->kind, "sms") == 0)
			json_object_set_new(o, "sms", sms_info(app->cfg, out.text));
		api_reply_json(rq, 200, o);
		tpl_rendered_free(&out);
	}
	tplset_free(ts);
}

static void preview_step(struct api_req *rq)
{
	struct preview *pv = api_data(rq);
	if (--pv->pending == 0 && !api_replied(rq))
		preview_finish(rq);
	api_release(rq);
}

static void on_preview_tpl(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	struct preview *pv = api_data(rq);
	if (!api_replied(rq) && !api_reply_redis_failure(rq, rep)) {
		const char *text = rep->type == REDIS_REPLY_ARRAY && rep->elements == 2
		                       ? reply_str(rep->element[0])
		                       : NULL;
		if (text) {
			pv->tpl_json = xstrdup(text);
			pv->v = api_crud_ll(rep->element[1]);
		} else {
			pv->no_template = 1;
		}
	}
	preview_step(rq);
}

static void on_preview_contact(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	struct preview *pv = api_data(rq);
	if (!api_replied(rq) && !api_reply_redis_failure(rq, rep)) {
		if (rep->type == REDIS_REPLY_ARRAY && rep->elements > 0) {
			const char *l = hash_get(rep, "lang"), *tz = hash_get(rep, "tz");
			pv->contact_lang = l && *l ? xstrdup(l) : NULL;
			pv->tz = tz && *tz ? xstrdup(tz) : NULL;
			pv->ctx = tpl_context(rep, pv->event, pv->vars);
		} else {
			pv->no_contact = 1;
		}
	}
	preview_step(rq);
}

static int lang_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 2 || n > LANG_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
			return 0;
	return 1;
}

static void h_preview(struct api_req *rq)
{
	static const char *const allowed[] = {"contact_id", "contact", "channel",
	                                      "lang",       "event",   "vars"};
	static const char *const kinds[] = {"sms", "email", "chat"};
	struct app *app = api_app(rq);
	const char *id = api_param(rq, "id");
	json_t *body = api_json(rq);
	const char *k;
	json_t *x;

	if (!api_crud_param(rq, &templates))
		return;
	json_object_foreach(body, k, x)
	{
		int ok = 0;
		for (size_t i = 0; i < ARRAY_SIZE(allowed); i++)
			ok |= strcmp(k, allowed[i]) == 0;
		if (!ok) {
			api_reply_error(
			    rq, 400, "invalid_field", k,
			    "unknown field (allowed: contact_id, contact, channel, lang, "
			    "event, vars)");
			return;
		}
	}
	const json_t *ch = json_object_get(body, "channel");
	const char *kind = NULL;
	if (!ch || json_is_null(ch))
		kind = kinds[0];
	for (size_t i = 0; !kind && i < ARRAY_SIZE(kinds); i++)
		if (json_is_string(ch) && strcmp(json_string_value(ch), kinds[i]) == 0)
			kind = kinds[i];
	if (!kind) {
		api_reply_error(rq, 400, "invalid_field", "channel",
		                "channel is sms, email or chat");
		return;
	}
	const json_t *lang = json_object_get(body, "lang");
	if (lang && !json_is_null(lang) &&
	    !(json_is_string(lang) && lang_ok(json_string_value(lang)))) {
		api_reply_error(rq, 400, "invalid_field", "lang",
		                "a language tag such as fa or fa-IR (2 to %d letters, digits, '-')",
		                LANG_MAX);
		return;
	}
	static const char *const objs[] = {"contact", "event", "vars"};
	for (size_t i = 0; i < ARRAY_SIZE(objs); i++) {
		const json_t *o = json_object_get(body, objs[i]);
		if (o && !json_is_null(o) && !json_is_object(o)) {
			api_reply_error(rq, 400, "invalid_field", objs[i], "must be an object");
			return;
		}
	}
	const json_t *cid = json_object_get(body, "contact_id");
	const json_t *inl = json_object_get(body, "contact");
	if (cid && json_is_null(cid))
		cid = NULL;
	if (inl && json_is_null(inl))
		inl = NULL;
	if (cid && inl) {
		api_reply_error(rq, 400, "invalid_field", "contact",
		                "give contact_id or contact, not both");
		return;
	}
	if (cid && !(json_is_string(cid) && id_valid(json_string_value(cid)))) {
		api_reply_error(rq, 400, "invalid_field", "contact_id", "not a contact id");
		return;
	}
	if (!api_store_ready(rq))
		return;

	struct preview *pv = xcalloc(1, sizeof *pv);
	pv->kind = kind;
	if (json_is_string(lang))
		pv->lang = xstrdup(json_string_value(lang));
	pv->event = json_incref(json_object_get(body, "event"));
	pv->vars = json_incref(json_object_get(body, "vars"));
	if (json_is_null(pv->event)) {
		json_decref(pv->event);
		pv->event = NULL;
	}
	if (json_is_null(pv->vars)) {
		json_decref(pv->vars);
		pv->vars = NULL;
	}
	api_set_data(rq, pv, preview_free);
	if (!cid) {
		const char *l = inl ? json_string_value(json_object_get(inl, "lang")) : NULL;
		const char *tz = inl ? json_string_value(json_object_get(inl, "tz")) : NULL;
		pv->contact_lang = l && *l ? xstrdup(l) : NULL;
		pv->tz = tz && *tz ? xstrdup(tz) : NULL;
		pv->ctx = tpl_context_json(inl, pv->event, pv->vars);
	}
	pv->pending = cid ? 2 : 1;
	api_hold(rq);
	store_template_get(app->st, id, on_preview_tpl, rq);
	if (cid) {
		api_hold(rq);
		store_contact_get(app->st, json_string_value(cid), on_preview_contact, rq);
	}
}

const struct api_route api_template_routes[] = {
    {"POST", "/v1/templates", ROLE_MARKETER, API_BODY_JSON, h_create, NULL, NULL},
    {"GET", "/v1/templates", ROLE_VIEWER, API_BODY_NONE, h_list, NULL, NULL},
    {"POST", "/v1/templates/validate", ROLE_VIEWER, API_BODY_JSON, h_validate, NULL, NULL},
    {"GET", "/v1/templates/{id}", ROLE_VIEWER, API_BODY_NONE, h_get, NULL, NULL},
    {"PUT", "/v1/templates/{id}", ROLE_MARKETER, API_BODY_JSON, h_put, NULL, NULL},
    {"DELETE", "/v1/templates/{id}", ROLE_MARKETER, API_BODY_NONE, h_delete, NULL, NULL},
    {"POST", "/v1/templates/{id}/preview", ROLE_VIEWER, API_BODY_JSON, h_preview, NULL, NULL},
};
const size_t api_template_nroutes = ARRAY_SIZE(api_template_routes);
