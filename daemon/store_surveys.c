/*
 * store_surveys.c - argument lists for the survey scripts (survey_def,
 * survey_conv, survey_read).  Knows each script's argument order; the key
 * names are the scripts'.  Never validates (survey.c and api_surveys.c
 * did) and never logs.
 */
#include "store_surveys.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

void store_survey_create(struct store *st, const char *id, const char *json, int64_t now,
                         redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "create");
	argv_add(&a, id);
	argv_add(&a, json);
	argv_addll(&a, now);
	store_eval(st, SCRIPT_SURVEY_DEF, &a, cb, arg);
	argv_free(&a);
}

void store_survey_replace(struct store *st, const char *id, const char *json, long long expect_v,
                          int64_t now, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "replace");
	argv_add(&a, id);
	argv_add(&a, json);
	argv_addll(&a, now);
	if (expect_v > 0)
		argv_addll(&a, expect_v);
	else
		argv_add(&a, "");
	store_eval(st, SCRIPT_SURVEY_DEF, &a, cb, arg);
	argv_free(&a);
}

void store_survey_delete(struct store *st, const char *id, int force, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "delete");
	argv_add(&a, id);
	argv_add(&a, force ? "1" : "0");
	store_eval(st, SCRIPT_SURVEY_DEF, &a, cb, arg);
	argv_free(&a);
}

void store_survey_get(struct store *st, const char *id, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "get");
	argv_add(&a, id);
	store_eval(st, SCRIPT_SURVEY_DEF, &a, cb, arg);
	argv_free(&a);
}

void store_survey_list(struct store *st, const char *cursor, int limit, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "list");
	argv_add(&a, cursor ? cursor : "");
	argv_addll(&a, limit);
	store_eval(st, SCRIPT_SURVEY_DEF, &a, cb, arg);
	argv_free(&a);
}

void store_survey_start(struct store *st, const struct store_survey_start *s, redis_cb cb,
                        void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "start");
	argv_add(&a, s->sid);
	argv_add(&a, s->cid);
	argv_addll(&a, s->now);
	argv_addll(&a, s->ttl_ms);
	argv_add(&a, s->channel);
	argv_add(&a, s->mode);
	store_eval(st, SCRIPT_SURVEY_CONV, &a, cb, arg);
	argv_free(&a);
}

void store_survey_peek(struct store *st, const char *cid, const char *ref, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "peek");
	argv_add(&a, cid);
	argv_add(&a, ref ? ref : "");
	store_eval(st, SCRIPT_SURVEY_CONV, &a, cb, arg);
	argv_free(&a);
}

void store_survey_answer(struct store *st, const struct store_survey_answer *s, redis_cb cb,
                         void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "answer");
	argv_add(&a, s->cid);
	argv_add(&a, s->ref);
	argv_addll(&a, s->dedupe_ttl_s);
	argv_addll(&a, s->now);
	argv_add(&a, s->sid);
	argv_add(&a, s->expect_q);
	argv_add(&a, s->expect_retried);
	argv_add(&a, s->expect_started);
	argv_addll(&a, s->next_q);
	argv_addll(&a, s->next_retried);
	argv_add(&a, s->outcome);
	argv_add(&a, s->channel);
	argv_addll(&a, s->timeline_max);
	for (size_t i = 0; i < s->nrecs; i++) {
		argv_add(&a, s->recs[i].qid);
		argv_add(&a, s->recs[i].kind);
		argv_add(&a, s->recs[i].value);
	}
	store_eval(st, SCRIPT_SURVEY_CONV, &a, cb, arg);
	argv_free(&a);
}

void store_survey_results(struct store *st, const char *sid, int text_limit, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "results");
	argv_add(&a, sid);
	argv_addll(&a, text_limit);
	store_eval(st, SCRIPT_SURVEY_READ, &a, cb, arg);
	argv_free(&a);
}

void store_survey_texts(struct store *st, const char *sid, const char *qid, const char *cursor,
                        int limit, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "texts");
	argv_add(&a, sid);
	argv_add(&a, qid);
	argv_add(&a, cursor ? cursor : "");
	argv_addll(&a, limit);
	store_eval(st, SCRIPT_SURVEY_READ, &a, cb, arg);
	argv_free(&a);
}

void store_survey_rows(struct store *st, const char *sid, long long offset, int limit, redis_cb cb,
                       void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "rows");
	argv_add(&a, sid);
	argv_addll(&a, offset);
	argv_addll(&a, limit);
	store_eval(st, SCRIPT_SURVEY_READ, &a, cb, arg);
	argv_free(&a);
}

void store_survey_camp_sent(struct store *st, const char *camp, const char *cursor, int count,
                            redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "sent");
	argv_add(&a, camp);
	argv_add(&a, cursor && *cursor ? cursor : "0");
	argv_addll(&a, count);
	store_eval(st, SCRIPT_SURVEY_READ, &a, cb, arg);
	argv_free(&a);
}
