/*
 * api_campaign_preview.c - POST /v1/campaigns/{id}/preview: what a
 * campaign would do if launched now (or what a launched one is doing):
 * the audience counted through its segment, the control group's expected
 * share, and for a few sample contacts each variant rendered for the
 * channel their preferences would choose, with SMS segments and cost.
 * Reads only; knows no key names (camp_snap, segment_scan, contacts).
 *
 * Limits: samples 0..10 (default 3); one preview walks the whole segment,
 * at most PREVIEWS_MAX at once per process (429 beyond).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "app.h"
#include "campaign.h"
#include "log.h"
#include "prefs.h"
#include "segment.h"
#include "sms_segments.h"
#include "tplset.h"
#include "util.h"

#define SAMPLES_MAX  10
#define PREVIEWS_MAX 4

static int previews_running;

struct pv {
	struct api_req *rq;
	char id[72];
	struct campaign c;
	int have_c;
	struct segment *seg;
	struct tplset *ts[CAMP_VARIANTS_MAX];
	struct segment_scan *scan;
	uint64_t count;
	int want, nsample, pending;
	char sample[SAMPLES_MAX][ID_LEN + 8];
	json_t *samples;
	int64_t started;
};

static void pv_free(void *p)
{
	struct pv *v = p;
	if (v->scan)
		segment_scan_free(v->scan);
	segment_free(v->seg);
	for (int i = 0; i < CAMP_VARIANTS_MAX; i++)
		tplset_free(v->ts[i]);
	if (v->have_c)
		camp_release(&v->c);
	json_decref(v->samples);
	previews_running--;
	free(v);
}

static void answer(struct pv *v)
{
	struct api_req *rq = v->rq;
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(v->id));
	json_object_set_new(o, "audience", json_integer((json_int_t)v->count));
	json_object_set_new(
	    o, "control_expected",
	    json_integer((json_int_t)(v->count * (uint64_t)v->c.control_percent / 100)));
	json_object_set_new(o, "samples", v->samples);
	v->samples = NULL;
	/* expected cost: the mean sample cost per recipient times the
	 * recipients outside the control group (0 without samples) */
	double sum = 0;
	int n = 0;
	json_t *s;
	size_t i;
	json_array_foreach(json_object_get(o, "samples"), i, s)
	{
		json_t *vars = json_object_get(s, "variants");
		size_t k;
		json_t *x;
		json_array_foreach(vars, k, x)
		{
			json_t *cm = json_object_get(x, "cost_micros");
			if (json_is_integer(cm)) {
				sum += (double)json_integer_value(cm);
				n++;
			}
		}
	}
	uint64_t sent = v->count - v->count * (uint64_t)v->c.control_percent / 100;
	int64_t est_c = n ? (int64_t)(sum / n * (double)sent / 10000.0 + 0.5) : 0;
	char t[32];
	money_format(est_c, t, sizeof t);
	json_object_set_new(o, "estimated_cost", json_string(t));
	if (v->c.budget_c) {
		money_format(v->c.budget_c, t, sizeof t);
		json_object_set_new(o, "budget", json_string(t));
	}
	json_object_set_new(o, "elapsed_ms", json_integer(now_ms() - v->started));
	api_reply_json(rq, 200, o);
	api_release(rq);
}

/* Render every variant for one sample contact (its HGETALL). */
static json_t *render_sample(struct pv *v, const redisReply *h)
{
	struct app *app = api_app(v->rq);
	const struct config *cfg = app->cfg;
	json_t *ctx = tpl_context(h, NULL, NULL);
	const char *pj = hash_get(h, "prefs");
	json_t *pjson = pj ? json_loads(pj, 0, NULL) : NULL;
	struct prefs p;
	const char *f, *r;
	if (prefs_parse(pjson, &p, &f, &r) < 0)
		prefs_parse(NULL, &p, &f, &r);
	json_decref(pjson);
	int enabled[ADDR_KINDS] = {0};
	for (size_t i = 0; i < app->nchans; i++) {
		int k = addr_kind_parse(app->chans[i].cfg->name);
		if (k >= 0)
			enabled[k] = 1;
	}
	int cat = category_parse(v->c.category);
	struct prefs_input in = {
	    .prefs = &p,
	    .tz = hash_get(h, "tz") ? hash_get(h, "tz") : cfg->contacts_default_tz,
	    .requested =
	        strcmp(v->c.channel, "preferred") != 0 ? addr_kind_parse(v->c.channel) : -1,
	    .category = cat < 0 ? CAT_PROMOTIONAL : (enum category)cat,
	    .now_ms = now_ms(),
	    .channel_enabled = enabled};
	for (int k = 0; k < ADDR_KINDS; k++) {
		char fld[16];
		snprintf(fld, sizeof fld, "a:%s", addr_kind_name((enum addr_kind)k));
		in.addr[k] = hash_get(h, fld);
	}
	struct prefs_decision dec;
	prefs_decide(&in, &dec);
	json_t *o = json_object();
	json_object_set_new(o, "contact_id",
	                    json_string(hash_get(h, "id") ? hash_get(h, "id") : ""));
	if (dec.action == PREFS_SUPPRESS) {
		json_object_set_new(o, "suppressed", json_string(dec.reason));
		json_decref(ctx);
		return o;
	}
	const char *kind = addr_kind_name((enum addr_kind)dec.channel);
	json_object_set_new(o, "channel", json_string(kind));
	if (dec.action == PREFS_DEFER)
		json_object_set_new(o, "deferred", json_string(dec.reason));
	json_t *vars = json_array();
	const char *lang = hash_get(h, "lang") ? hash_get(h, "lang") : cfg->contacts_default_lang;
	struct chan *ch = chan_find(app->chans, app->nchans, kind);
	for (int i = 0; i < v->c.nvar; i++) {
		json_t *x = json_pack("{s:s, s:s}", "name", v->c.var[i].name, "template",
		                      v->c.var[i].template_id);
		struct tpl_rendered out = {0};
		struct tmpl_error terr = {0};
		struct tmpl_opts base = {.zone = in.tz};
		int rc = tplset_render_opts(v->ts[i], kind, lang, ctx, &base, &out, &terr);
		if (rc == -ENOENT) {
			json_object_set_new(x, "error", json_string("no variant for this channel"));
		} else if (rc < 0) {
			json_object_set_new(x, "error", json_string(terr.reason));
		} else {
			json_object_set_new(x, "lang", json_string(out.lang));
			if (out.subject)
				json_object_set_new(x, "subject", json_string(out.subject));
			json_object_set_new(x, "text", json_string(out.text ? out.text : ""));
			if (out.html)
				json_object_set_new(x, "html", json_string(out.html));
			struct sms_count cnt;
			if (strcmp(kind, "sms") == 0 && out.text &&
			    sms_count(out.text, strlen(out.text), &cnt) == 0)
				json_object_set_new(x, "sms",
				                    json_pack("{s:s, s:i, s:i}", "encoding",
				                              cnt.ucs2 ? "ucs2" : "gsm7",
				                              "segments", cnt.segments, "units",
				                              cnt.units));
			json_object_set_new(x, "cost_micros",
			                    json_integer(chan_cost_estimate(ch, out.text)));
		}
		tpl_rendered_free(&out);
		json_array_append_new(vars, x);
	}
	json_object_set_new(o, "variants", vars);
	json_decref(ctx);
	return o;
}

static void on_sample(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct pv *v = arg;
	if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0)
		json_array_append_new(v->samples, render_sample(v, rep));
	if (--v->pending == 0)
		answer(v);
}

static void on_batch(struct segment_scan *sc, void *arg, const char *const *ids, size_t n,
                     const char *cursor, int done, int err)
{
	(void)cursor;
	struct pv *v = arg;
	struct api_req *rq = v->rq;
	if (err) {
		v->scan = NULL;
		segment_scan_free(sc);
		api_reply_error(rq, 503, "unavailable", NULL, "the store did not answer");
		api_release(rq);
		return;
	}
	v->count += n;
	for (size_t i = 0; i < n && v->nsample < v->want; i++)
		snprintf(v->sample[v->nsample++], sizeof v->sample[0], "%s", ids[i]);
	if (!done) {
		segment_scan_next(sc);
		return;
	}
	v->scan = NULL;
	segment_scan_free(sc);
	struct app *app = api_app(rq);
	v->pending = 1 + v->nsample;
	for (int i = 0; i < v->nsample; i++)
		store_contact_get(app->st, v->sample[i], on_sample, v);
	if (--v->pending == 0)
		answer(v);
}

static void on_snap(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct pv *v = arg;
	struct api_req *rq = v->rq;
	struct app *app = api_app(rq);
	if (api_reply_redis_failure(rq, rep))
		goto out;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 + (size_t)v->c.nvar) {
		api_reply_error(rq, 404, "not_found", "id", "no such campaign");
		goto out;
	}
	json_t *sj = v->c.segment ? json_incref(v->c.segment)
	                          : (reply_str(rep->element[2])
	                                 ? json_loads(reply_str(rep->element[2]), 0, NULL)
	                                 : NULL);
	const char *f = "", *why = "";
	if (!sj || segment_parse(sj, &v->seg, &f, &why) < 0) {
		json_decref(sj);
		api_reply_error(rq, 409, "conflict", "segment", "segment %s: %s", v->c.segment_id,
		                sj ? why : "does not exist");
		goto out;
	}
	json_decref(sj);
	for (int i = 0; i < v->c.nvar; i++) {
		const char *t = reply_str(rep->element[3 + i]);
		json_t *tj = t ? json_loads(t, 0, NULL) : NULL;
		struct tmpl_error terr;
		if (!tj || tplset_parse(tj, &v->ts[i], &f, &terr) < 0) {
			json_decref(tj);
			api_reply_error(rq, 409, "conflict", "template", "template %s %s",
			                v->c.var[i].template_id,
			                t ? "does not compile" : "does not exist");
			goto out;
		}
		json_decref(tj);
	}
	v->scan = segment_scan_start(app->st, v->seg, now_ms(), "", 2000, on_batch, v);
	return;
out:
	api_release(rq);
}

static void on_def(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct pv *v = arg;
	struct api_req *rq = v->rq;
	struct app *app = api_app(rq);
	if (api_reply_redis_failure(rq, rep)) {
		api_release(rq);
		return;
	}
	const char *text = rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1
	                       ? reply_str(rep->element[0])
	                       : NULL;
	json_t *def = text ? json_loads(text, 0, NULL) : NULL;
	const char *f, *why;
	if (!def || camp_parse(def, &v->c, &f, &why) < 0) {
		json_decref(def);
		api_reply_error(rq, 404, "not_found", "id", "no such campaign");
		api_release(rq);
		return;
	}
	json_decref(def);
	v->have_c = 1;
	struct argv a;
	argv_init(&a);
	argv_add(&a, v->id);
	argv_add(&a, v->c.segment_id);
	for (int i = 0; i < v->c.nvar; i++)
		argv_add(&a, v->c.var[i].template_id);
	store_eval(app->st, SCRIPT_CAMP_SNAP, &a, on_snap, v);
	argv_free(&a);
}

static void h_preview(struct api_req *rq)
{
	const char *id = api_param(rq, "id"), *ns = api_query(rq, "samples");
	int64_t want = 3;
	if (!segment_id_valid(id)) {
		api_reply_error(rq, 404, "not_found", "id", "no such campaign");
		return;
	}
	if (ns && parse_i64(ns, 0, SAMPLES_MAX, &want) < 0) {
		api_reply_error(rq, 400, "invalid_field", "samples", "0..%d", SAMPLES_MAX);
		return;
	}
	if (previews_running >= PREVIEWS_MAX) {
		api_add_header(rq, "Retry-After", "1");
		api_reply_error(rq, 429, "too_many_requests", NULL,
		                "%d previews are running; try again shortly", PREVIEWS_MAX);
		return;
	}
	if (!api_store_ready(rq))
		return;
	struct pv *v = xcalloc(1, sizeof *v);
	previews_running++;
	v->rq = rq;
	v->want = (int)want;
	v->samples = json_array();
	v->started = now_ms();
	snprintf(v->id, sizeof v->id, "%s", id);
	api_set_data(rq, v, pv_free);
	api_set_timeout(rq, 60000);
	api_hold(rq);
	struct argv a;
	argv_init(&a);
	argv_add(&a, id);
	argv_add(&a, "");
	store_eval(((struct app *)api_app(rq))->st, SCRIPT_CAMP_SNAP, &a, on_def, v);
	argv_free(&a);
}

const struct api_route api_campaign_preview_routes[] = {
    {"POST", "/v1/campaigns/{id}/preview", ROLE_VIEWER, API_BODY_NONE, h_preview, NULL, NULL},
};
const size_t api_campaign_preview_nroutes = ARRAY_SIZE(api_campaign_preview_routes);
