/*
 * store_surveys.h - the surveys' part of the store, through
 * lua/survey_def.lua, lua/survey_conv.lua and lua/survey_read.lua (the key
 * names live there and in store.h's key list).  Every reply shape is the
 * script's; see the script headers.
 */
#ifndef CLUBD_STORE_SURVEYS_H
#define CLUBD_STORE_SURVEYS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Definitions (survey_def.lua).  json: the canonical definition (every
 * question carries its id). */
void store_survey_create(struct store *st, const char *id, const char *json, int64_t now,
                         redis_cb cb, void *arg);
/* expect_v 0 = any version. */
void store_survey_replace(struct store *st, const char *id, const char *json, long long expect_v,
                          int64_t now, redis_cb cb, void *arg);
void store_survey_delete(struct store *st, const char *id, int force, redis_cb cb, void *arg);
void store_survey_get(struct store *st, const char *id, redis_cb cb, void *arg);
void store_survey_list(struct store *st, const char *cursor, int limit, redis_cb cb, void *arg);

/* Conversations (survey_conv.lua). */
struct store_survey_start {
	const char *sid, *cid;
	const char *channel; /* "sms", "chat", "email" */
	const char *mode;    /* "conv" or "email" */
	int64_t now, ttl_ms;
};
void store_survey_start(struct store *st, const struct store_survey_start *s, redis_cb cb,
                        void *arg);
/* ref: "provider:provider id" of the inbound message ("" = none). */
void store_survey_peek(struct store *st, const char *cid, const char *ref, redis_cb cb, void *arg);

struct store_survey_rec {
	const char *qid;
	const char *kind; /* "num", "text" or "invalid" */
	const char *value;
};
struct store_survey_answer {
	const char *cid, *ref, *sid;
	long long dedupe_ttl_s;
	int64_t now;
	/* the conversation as read (a change meanwhile answers 'stale') */
	const char *expect_q, *expect_retried, *expect_started;
	int next_q; /* -1 = complete */
	int next_retried;
	const char *outcome; /* "sid|outcome|q", kept under the ref */
	const char *channel;
	int timeline_max;
	const struct store_survey_rec *recs;
	size_t nrecs;
};
void store_survey_answer(struct store *st, const struct store_survey_answer *a, redis_cb cb,
                         void *arg);

/* Results and audiences (survey_read.lua). */
void store_survey_results(struct store *st, const char *sid, int text_limit, redis_cb cb,
                          void *arg);
void store_survey_texts(struct store *st, const char *sid, const char *qid, const char *cursor,
                        int limit, redis_cb cb, void *arg);
void store_survey_rows(struct store *st, const char *sid, long long offset, int limit, redis_cb cb,
                       void *arg);
/* A page of P eng:sent:{camp} (SSCAN). */
void store_survey_camp_sent(struct store *st, const char *camp, const char *cursor, int count,
                            redis_cb cb, void *arg);

#endif
