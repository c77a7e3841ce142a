/*
 * api_segments.c - /v1/segments: create, list, get, replace and delete saved
 * audience definitions, and preview one (saved or inline): how many
 * contacts it selects, how many were examined, a sample of the first
 * matches and how long it took.  Also loads saved segments for the export
 * in api_import.c.
 *
 * Validation is segment.c's (the grammar is in docs/segments.md); storage
 * is store_segments.c's; the get, list, write and delete handling (a
 * versioned definition) api_crud.c's; this file knows no key names.  A preview walks
 * every contact (segment.c pulls batches of PREVIEW_BATCH), so at most
 * PREVIEWS_MAX previews run at once per process (429 beyond), and the
 * request deadline is renewed after every batch so a large audience can be
 * counted while a stuck one still times out.
 *
 * Limits: names 200 bytes, descriptions 2000 bytes, ids 1..64 of
 * A-Z a-z 0-9 _ -, pages of at most LIST_MAX, samples of at most
 * SAMPLE_MAX contacts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_audience.h"
#include "api_crud.h"
#include "app.h"
#include "log.h"
#include "segment.h"
#include "text.h"
#include "util.h"

#define NAME_MAX_BYTES 200
#define DESC_MAX_BYTES 2000
#define LIST_DEFAULT   50
#define LIST_MAX       200
#define SAMPLE_DEFAULT 20
#define SAMPLE_MAX     100
#define PREVIEW_BATCH  1000
#define PREVIEWS_MAX   4

static int previews_running;

/* ---------------------------------------------------------------- checks */

static int text_ok(const json_t *v, size_t max)
{
	return json_is_string(v) && json_string_length(v) <= max &&
	       strlen(json_string_value(v)) == json_string_length(v) &&
	       !text_has_ctl(json_string_value(v), 0);
}

/*
 * The stored form of a request body: {id, name, description, match}, after
 * checking every key.  v (the version a replace expects) goes to *expect_v.
 * NULL after answering 400.
 */
static json_t *definition(struct api_req *rq, const char *id, long long *expect_v)
{
	const json_t *body = api_json(rq);
	const char *k;
	json_t *v;
	*expect_v = 0;
	json_object_foreach((json_t *)body, k, v)
	{
		if (strcmp(k, "id") == 0) {
			if (json_is_null(v))
				continue;
			if (!json_is_string(v) || !segment_id_valid(json_string_value(v))) {
				api_reply_error(rq, 400, "invalid_field", "id",
				                "1..64 of A-Z a-z 0-9 _ -");
				return NULL;
			}
			if (id && strcmp(id, json_string_value(v)) != 0) {
				api_reply_error(rq, 400, "invalid_field", "id",
				                "id differs from the segment named in the path");
				return NULL;
			}
		} else if (strcmp(k, "name") == 0) {
			if (!json_is_null(v) && !text_ok(v, NAME_MAX_BYTES)) {
				api_reply_error(rq, 400, "invalid_field", "name",
				                "a string of at most 200 bytes without control "
				                "characters");
				return NULL;
			}
		} else if (strcmp(k, "description") == 0) {
			if (!json_is_null(v) && !text_ok(v, DESC_MAX_BYTES)) {
				api_reply_error(rq, 400, "invalid_field", "description",
				                "a string of at most 2000 bytes without control "
				                "characters");
				return NULL;
			}
		} else if (strcmp(k, "v") == 0) {
			if (json_is_null(v))
				continue;
			if (!json_is_integer(v) || json_integer_value(v) < 1) {
				api_reply_error(
				    rq, 400, "invalid_field", "v",
				    "v is the version read before (a positive integer)");
				return NULL;
			}
			*expect_v = json_integer_value(v);
		} else if (strcmp(k, "updated_at") != 0 && strcmp(k, "match") != 0) {
			char field[64];
			snprintf(field, sizeof field, "%.60s", k);
			api_reply_error(rq, 400, "invalid_field", field, "unknown field");
			return NULL;
		}
	}
	const json_t *match = json_object_get(body, "match");
	if (!match) {
		api_reply_error(rq, 400, "missing_field", "match",
		                "match (the condition, docs/segments.md) is required");
		return NULL;
	}
	json_t *def = json_pack("{s:O}", "match", match);
	struct segment *s = NULL;
	const char *field, *reason;
	if (segment_parse(def, &s, &field, &reason) < 0) {
		api_reply_error(rq, 400, "invalid_field", field, "%s", reason);
		json_decref(def);
		return NULL;
	}
	segment_free(s);
	json_decref(def);
	json_t *out = json_object();
	const json_t *idj = json_object_get(body, "id");
	char gen[ID_LEN + 1];
	if (!id && json_is_string(idj)) {
		id = json_string_value(idj);
	} else if (!id) {
		api_crud_new_id(gen);
		id = gen;
	}
	json_object_set_new(out, "id", json_string(id));
	json_t *name = json_object_get(body, "name"), *desc = json_object_get(body, "description");
	json_object_set(out, "name", name ? name : json_null());
	json_object_set(out, "description", desc ? desc : json_null());
	json_object_set(out, "match", (json_t *)match);
	return out;
}

/* ---------------------------------------------------------------- CRUD */

static void seg_delete(struct api_req *rq, const char *id, redis_cb cb, void *arg)
{
	store_segment_delete(((struct app *)api_app(rq))->st, id, cb, arg);
}

static const struct api_crud segments = {.noun = "segment",
                                         .id_ok = segment_id_valid,
                                         .list_default = LIST_DEFAULT,
                                         .list_max = LIST_MAX,
                                         .read = store_segment_read,
                                         .list = store_segment_list,
                                         .list_fields = 4,
                                         .create = store_segment_create,
                                         .replace = store_segment_replace,
                                         .del = seg_delete};

static void h_create(struct api_req *rq)
{
	long long expect_v;
	json_t *def = definition(rq, NULL, &expect_v);
	if (def)
		api_crud_write(rq, &segments, def, 0);
}

static void h_put(struct api_req *rq)
{
	if (!api_crud_param(rq, &segments))
		return;
	long long expect_v;
	json_t *def = definition(rq, api_param(rq, "id"), &expect_v);
	if (def)
		api_crud_write(rq, &segments, def, expect_v);
}

static void h_get(struct api_req *rq)
{
	api_crud_get(rq, &segments);
}

static void h_list(struct api_req *rq)
{
	api_crud_list(rq, &segments);
}

static void h_delete(struct api_req *rq)
{
	api_crud_delete(rq, &segments);
}

/* ---------------------------------------------------------------- loading */

struct load {
	api_segment_cb cb;
	char id[SEGMENT_ID_MAX + 1];
};

static void on_loaded(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	struct load *l = api_data(rq);
	const char *text = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3
	                       ? reply_str(rep->element[0])
	                       : NULL;
	if (api_reply_redis_failure(rq, rep) || api_replied(rq)) {
		/* answered */
	} else if (!text) {
		api_reply_error(rq, 404, "not_found", NULL, "no such segment");
	} else {
		json_t *def = json_loads(text, 0, NULL);
		struct segment *s = NULL;
		const char *field, *reason;
		if (!def || segment_parse(def, &s, &field, &reason) < 0) {
			log_err("api", "segment=%s stored definition unusable field=%s",
			        log_q(l->id), log_q(def ? field : "json"));
			api_reply_error(rq, 500, "internal", NULL,
			                "the stored segment cannot be read; save it again");
		} else {
			api_segment_cb cb = l->cb;
			char id[SEGMENT_ID_MAX + 1];
			snprintf(id, sizeof id, "%s", l->id);
			api_set_data(rq, NULL, NULL); /* frees l */
			cb(rq, s, id);
		}
		json_decref(def);
	}
	api_release(rq);
}

void api_segment_load(struct api_req *rq, const char *id, api_segment_cb cb)
{
	struct app *app = api_app(rq);
	if (!api_store_ready(rq))
		return;
	struct load *l = xcalloc(1, sizeof *l);
	l->cb = cb;
	snprintf(l->id, sizeof l->id, "%s", id);
	api_set_data(rq, l, free);
	api_hold(rq);
	store_segment_read(app->st, id, on_loaded, rq);
}

/* ---------------------------------------------------------------- preview */

/* The sample's fields, read once the count is known (not during the walk:
 * asking for them there would make every contact cost an HMGET). */
static const char *const sample_fields[] = {"id",    "name",    "first_name", "last_name",
                                            "a:sms", "a:email", "a:chat"};

struct preview {
	struct api_req *rq;
	struct segment *s;
	struct segment_scan *sc;
	int64_t t0;
	uint64_t count, examined;
	size_t sample_max;
	char **ids; /* the first sample_max matches */
	size_t nids, got;
	json_t *sample;
	int running; /* counted in previews_running */
};

static void preview_free(void *p)
{
	struct preview *pv = p;
	segment_scan_free(pv->sc);
	segment_free(pv->s);
	for (size_t i = 0; i < pv->nids; i++)
		free(pv->ids[i]);
	free(pv->ids);
	json_decref(pv->sample);
	if (pv->running)
		previews_running--;
	free(pv);
}

static void preview_end(struct preview *pv)
{
	if (pv->running) {
		pv->running = 0;
		previews_running--;
	}
	api_release(pv->rq);
}

static void preview_answer(struct preview *pv)
{
	json_t *o = json_object();
	json_object_set_new(o, "count", json_integer((json_int_t)pv->count));
	json_object_set_new(o, "examined", json_integer((json_int_t)pv->examined));
	json_object_set_new(o, "sample", json_incref(pv->sample));
	json_object_set_new(o, "elapsed_ms", json_integer(mono_ms() - pv->t0));
	api_reply_json(pv->rq, 200, o);
}

static void on_sample(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct preview *pv = arg;
	if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == ARRAY_SIZE(sample_fields) &&
	    reply_str(rep->element[0])) {
		json_t *o = json_object();
		for (size_t k = 0; k < 4; k++) {
			const char *v = reply_str(rep->element[k]);
			json_t *s = v ? json_string(v) : NULL;
			json_object_set_new(o, sample_fields[k], s ? s : json_null());
		}
		json_t *addr = json_object();
		for (size_t k = 4; k < ARRAY_SIZE(sample_fields); k++) {
			const char *v = reply_str(rep->element[k]);
			json_t *s = v ? json_string(v) : NULL;
			if (s)
				json_object_set_new(addr, sample_fields[k] + 2, s);
		}
		json_object_set_new(o, "addresses", addr);
		json_array_append_new(pv->sample, o);
	} else if (!rep || rep->type == REDIS_REPLY_ERROR) {
		api_reply_error(pv->rq, 503, "unavailable", NULL,
		                "the store is unavailable; the preview was stopped");
	}
	/* (a contact deleted since it matched is left out) */
	if (++pv->got == pv->nids) {
		preview_answer(pv);
		preview_end(pv);
	}
}

static void on_preview_batch(struct segment_scan *sc, void *arg, const char *const *ids, size_t n,
                             const char *cursor, int done, int err)
{
	(void)cursor;
	struct preview *pv = arg;
	struct api_req *rq = pv->rq;
	struct app *app = api_app(rq);
	if (api_replied(rq) || err) { /* deadline passed, client left, or Redis */
		if (err)
			api_reply_error(rq, 503, "unavailable", NULL,
			                "the store is unavailable; the preview was stopped");
		segment_scan_free(sc);
		pv->sc = NULL;
		preview_end(pv);
		return;
	}
	pv->count += n;
	for (size_t i = 0; i < n && pv->nids < pv->sample_max; i++)
		pv->ids[pv->nids++] = xstrdup(ids[i]);
	if (!done) {
		api_set_timeout(rq, app->cfg->api_request_timeout_ms);
		segment_scan_next(sc);
		return;
	}
	pv->examined = segment_scan_examined(sc);
	segment_scan_free(sc);
	pv->sc = NULL;
	if (pv->nids == 0) {
		preview_answer(pv);
		preview_end(pv);
		return;
	}
	for (size_t i = 0; i < pv->nids; i++)
		store_contact_fields(app->st, pv->ids[i], sample_fields, ARRAY_SIZE(sample_fields),
		                     on_sample, pv);
}

/* Start a preview of s (taken). */
static void preview_start(struct api_req *rq, struct segment *s, const char *id)
{
	(void)id;
	struct app *app = api_app(rq);
	int64_t sample = SAMPLE_DEFAULT;
	const char *q = api_query(rq, "sample");
	if (q && parse_i64(q, 0, SAMPLE_MAX, &sample) < 0) {
		segment_free(s);
		api_reply_error(rq, 400, "invalid_field", "sample", "sample is 0..%d", SAMPLE_MAX);
		return;
	}
	if (previews_running >= PREVIEWS_MAX) {
		segment_free(s);
		api_add_header(rq, "Retry-After", "1");
		api_reply_error(rq, 429, "too_many_requests", NULL,
		                "%d previews are running; retry in a moment", PREVIEWS_MAX);
		return;
	}
	struct preview *pv = xcalloc(1, sizeof *pv);
	pv->rq = rq;
	pv->s = s;
	pv->t0 = mono_ms();
	pv->sample_max = (size_t)sample;
	pv->ids = xcalloc(sample ? (size_t)sample : 1, sizeof *pv->ids);
	pv->sample = json_array();
	pv->running = 1;
	previews_running++;
	api_set_data(rq, pv, preview_free);
	api_hold(rq);
	pv->sc = segment_scan_start(app->st, s, now_ms(), "", PREVIEW_BATCH, on_preview_batch, pv);
}

static void h_preview_inline(struct api_req *rq)
{
	struct segment *s = NULL;
	const char *field, *reason;
	if (segment_parse(api_json(rq), &s, &field, &reason) < 0) {
		api_reply_error(rq, 400, "invalid_field", field, "%s", reason);
		return;
	}
	if (!api_store_ready(rq)) {
		segment_free(s);
		return;
	}
	preview_start(rq, s, NULL);
}

static void h_preview_saved(struct api_req *rq)
{
	const char *id = api_param(rq, "id");
	const char *q = api_query(rq, "sample");
	int64_t sample;
	if (!api_crud_param(rq, &segments))
		return;
	if (q && parse_i64(q, 0, SAMPLE_MAX, &sample) < 0) {
		api_reply_error(rq, 400, "invalid_field", "sample", "sample is 0..%d", SAMPLE_MAX);
		return;
	}
	api_segment_load(rq, id, preview_start);
}

static void h_export(struct api_req *rq)
{
	const char *id = api_param(rq, "id");
	const char *f = api_query(rq, "format");
	if (!api_crud_param(rq, &segments))
		return;
	if (f && strcmp(f, "csv") != 0 && strcmp(f, "ndjson") != 0) {
		api_reply_error(rq, 400, "invalid_field", "format", "format is csv or ndjson");
		return;
	}
	api_segment_load(rq, id, api_export_begin);
}

const struct api_route api_segment_routes[] = {
    {"POST", "/v1/segments", ROLE_MARKETER, API_BODY_JSON, h_create, NULL, NULL},
    {"GET", "/v1/segments", ROLE_VIEWER, API_BODY_NONE, h_list, NULL, NULL},
    {"POST", "/v1/segments/preview", ROLE_VIEWER, API_BODY_JSON, h_preview_inline, NULL, NULL},
    {"GET", "/v1/segments/{id}", ROLE_VIEWER, API_BODY_NONE, h_get, NULL, NULL},
    {"PUT", "/v1/segments/{id}", ROLE_MARKETER, API_BODY_JSON, h_put, NULL, NULL},
    {"DELETE", "/v1/segments/{id}", ROLE_MARKETER, API_BODY_NONE, h_delete, NULL, NULL},
    {"GET", "/v1/segments/{id}/preview", ROLE_VIEWER, API_BODY_NONE, h_preview_saved, NULL, NULL},
    {"GET", "/v1/segments/{id}/export", ROLE_MARKETER, API_BODY_NONE, h_export, NULL, NULL},
};
const size_t api_segment_nroutes = ARRAY_SIZE(api_segment_routes);
