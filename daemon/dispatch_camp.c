/*
 * dispatch_camp.c - the dispatcher's campaign cache: for each campaign
 * (id, version) the template snapshots frozen at launch, compiled once.
 * Loads with one HMGET; jobs that need a campaign being loaded wait on it.
 * Never writes to Redis.  Limits: 64 campaigns cached (oldest dropped).
 */
#include "dispatch_camp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "campaign.h"
#include "log.h"
#include "util.h"

#define CACHE_MAX 64

struct waiter {
	struct waiter *next;
	void (*cb)(void *arg, int ok);
	void *arg;
};

struct arm {
	char name[CAMP_VAR_NAME_MAX + 1];
	struct tplset *ts;
};

struct centry {
	struct centry *next;
	struct camp_cache *cc;
	char id[72];
	char v[24];
	int loading, loaded;
	struct arm arms[CAMP_VARIANTS_MAX];
	int narms;
	struct waiter *waiters;
};

struct camp_cache {
	struct store *st;
	struct centry *head;
	int n;
};

struct camp_cache *camp_cache_new(struct store *st)
{
	struct camp_cache *cc = xcalloc(1, sizeof *cc);
	cc->st = st;
	return cc;
}

static void centry_clear(struct centry *e)
{
	for (int i = 0; i < e->narms; i++)
		tplset_free(e->arms[i].ts);
	e->narms = 0;
	e->loaded = 0;
}

void camp_cache_free(struct camp_cache *cc)
{
	if (!cc)
		return;
	while (cc->head) {
		struct centry *e = cc->head;
		cc->head = e->next;
		centry_clear(e);
		if (e->loading) {
			/* its HMGET is still out: the reply callback frees it */
			e->cc = NULL;
			continue;
		}
		free(e);
	}
	free(cc);
}

static struct centry *find(struct camp_cache *cc, const char *id)
{
	for (struct centry *e = cc->head; e; e = e->next)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

/* tpls is {"arm": template definition, ...}. */
static int load_arms(struct centry *e, const char *tpls)
{
	json_t *o = tpls ? json_loads(tpls, 0, NULL) : NULL;
	if (!json_is_object(o)) {
		json_decref(o);
		return -1;
	}
	const char *k;
	json_t *v;
	int rc = 0;
	json_object_foreach(o, k, v)
	{
		if (e->narms >= CAMP_VARIANTS_MAX) {
			rc = -1;
			break;
		}
		const char *field = "";
		struct tmpl_error terr;
		struct arm *a = &e->arms[e->narms];
		if (tplset_parse(v, &a->ts, &field, &terr) < 0) {
			log_err("campaign", "camp=%s arm=%s template snapshot unusable field=%s",
			        e->id, log_q(k), log_q(field));
			rc = -1;
			break;
		}
		snprintf(a->name, sizeof a->name, "%s", k);
		e->narms++;
	}
	json_decref(o);
	return rc;
}

static void on_loaded(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct centry *e = arg;
	e->loading = 0;
	int ok = 0;
	if (e->cc && rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
		const char *v = reply_str(rep->element[0]);
		if (v)
			snprintf(e->v, sizeof e->v, "%s", v);
		centry_clear(e);
		ok = load_arms(e, reply_str(rep->element[1])) == 0;
		e->loaded = ok;
	}
	struct waiter *w = e->waiters;
	e->waiters = NULL;
	if (!e->cc) /* the cache went away meanwhile */
		free(e);
	while (w) {
		struct waiter *n = w->next;
		w->cb(w->arg, ok);
		free(w);
		w = n;
	}
}

/* Drop the last idle entry; 0, or -1 when every entry is loading. */
static int evict(struct camp_cache *cc)
{
	struct centry **pp = &cc->head, **victim = NULL;
	for (; *pp; pp = &(*pp)->next)
		if (!(*pp)->loading)
			victim = pp;
	if (!victim)
		return -1;
	struct centry *e = *victim;
	*victim = e->next;
	centry_clear(e);
	free(e);
	cc->n--;
	return 0;
}

int camp_cache_want(struct camp_cache *cc, const char *camp, const char *v,
                    void (*cb)(void *arg, int ok), void *arg)
{
	struct centry *e = find(cc, camp);
	if (e && e->loaded && v && strcmp(e->v, v) == 0)
		return 1;
	if (!e) {
		/* back under the bound once loads that overran it are idle */
		while (cc->n >= CACHE_MAX && evict(cc) == 0)
			;
		e = xcalloc(1, sizeof *e);
		e->cc = cc;
		snprintf(e->id, sizeof e->id, "%s", camp);
		e->next = cc->head;
		cc->head = e;
		cc->n++;
	}
	struct waiter *w = xcalloc(1, sizeof *w);
	w->cb = cb;
	w->arg = arg;
	w->next = e->waiters;
	e->waiters = w;
	if (!e->loading) {
		e->loading = 1;
		char *k = store_key(cc->st, "cp:%s", camp);
		redis_cmdf(cc->st->r, on_loaded, e, "HMGET %s v tpls", k);
		free(k);
	}
	return 0;
}

int camp_cache_render(struct camp_cache *cc, const char *camp, const char *arm, const char *kind,
                      const char *lang, const json_t *ctx, const struct tmpl_opts *base,
                      struct tpl_rendered *out, char *why, size_t whylen)
{
	struct centry *e = find(cc, camp);
	if (!e || !e->loaded) {
		snprintf(why, whylen, "campaign not loaded");
		return -EAGAIN;
	}
	for (int i = 0; i < e->narms; i++) {
		if (strcmp(e->arms[i].name, arm ? arm : "A") != 0)
			continue;
		struct tmpl_error terr = {0};
		int rc = tplset_render_opts(e->arms[i].ts, kind, lang, ctx, base, out, &terr);
		if (rc == -ENOENT)
			snprintf(why, whylen, "no template variant for %s", kind);
		else if (rc < 0)
			snprintf(why, whylen, "template: %s (line %d col %d)", terr.reason,
			         terr.line, terr.col);
		return rc;
	}
	snprintf(why, whylen, "no arm %s in the campaign", arm ? arm : "A");
	return -ENOENT;
}
