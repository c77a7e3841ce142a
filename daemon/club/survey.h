/*
 * survey.h - surveys as pure functions: the definition and its validation,
 * answer parsing per question type (Persian and Arabic-Indic digits count as
 * digits), the email reply parser ("1: 5", "2) 9", "3. بله"), the
 * conversation's steps (re-ask once, then record "invalid" and move on), the
 * texts a contact is sent, and the results arithmetic (mean, NPS, rates).
 * No I/O, no clock: survey_run.c drives a conversation through the store,
 * api_surveys.c serves definitions and results.
 *
 * Definition (JSON, as the API takes it; docs/surveys.md has every rule):
 *   {"id": "after-visit", "name": "...", "lang": "fa", "ttl": "2d",
 *    "intro": {"fa": "...", "en": "..."} | "...",  sent before question 1
 *    "thanks": ... ,                                 sent after the last answer
 *    "subject": ... ,                                email subject (default: name)
 *    "questions": [
 *      {"id": "q1", "type": "rating", "text": {...} | "...", "help": ...},
 *      {"id": "q2", "type": "nps", "text": ...},
 *      {"id": "q3", "type": "choice", "text": ..., "options": ["بله", {"fa": "خیر", "en": "no"}]},
 *      {"id": "q4", "type": "text", "text": ...}]}
 * Every text is a template (template.h: {{first_name}}) or plain text, in
 * one language (a string) or several ({"fa": ..., "en": ...}).
 */
#ifndef CLUBD_SURVEY_H
#define CLUBD_SURVEY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define SURVEY_ID_MAX        64   /* [A-Za-z0-9_-] */
#define SURVEY_NAME_MAX      200  /* bytes of UTF-8 */
#define SURVEY_QUESTIONS_MAX 20   /* questions per survey */
#define SURVEY_QID_MAX       32   /* [A-Za-z0-9_-] */
#define SURVEY_OPTIONS_MAX   10   /* options of a choice question */
#define SURVEY_LANGS_MAX     8    /* languages of one text */
#define SURVEY_LANG_MAX      8    /* bytes of a language tag, [a-z-] */
#define SURVEY_TEXT_MAX      2000 /* bytes of one text in one language */
#define SURVEY_OPTION_MAX    200  /* bytes of one option in one language */
#define SURVEY_ANSWER_MAX    1000 /* bytes of a free-text answer kept (cut at a character) */
#define SURVEY_TTL_MIN_MS    1000LL
#define SURVEY_TTL_MAX_MS    (30LL * 86400 * 1000)
#define SURVEY_TTL_DEFAULT   (2LL * 86400 * 1000)

enum survey_qtype {
	SURVEY_Q_RATING = 0, /* 1..5 */
	SURVEY_Q_NPS,        /* 0..10 */
	SURVEY_Q_CHOICE,     /* one option, by number or by text */
	SURVEY_Q_TEXT,       /* free text */
	SURVEY_QTYPES
};
/* "rating", "nps", "choice", "text" ("unknown" out of range); parse: -1. */
const char *survey_qtype_name(enum survey_qtype t);
int survey_qtype_parse(const char *s);

/* One text in several languages; n == 0: none.  lang "" is a plain string
 * (for every language). */
struct survey_text {
	size_t n;
	char lang[SURVEY_LANGS_MAX][SURVEY_LANG_MAX + 1];
	char *s[SURVEY_LANGS_MAX];
	char *norm[SURVEY_LANGS_MAX]; /* options only: text_normalize() of s */
};

struct survey_question {
	char id[SURVEY_QID_MAX + 1];
	enum survey_qtype type;
	struct survey_text text, help;
	struct survey_text option[SURVEY_OPTIONS_MAX];
	size_t noptions;
};

struct survey_def {
	char id[SURVEY_ID_MAX + 1]; /* "" when the caller assigns one */
	char *name;
	char lang[SURVEY_LANG_MAX + 1]; /* default language, "" = none given */
	int64_t ttl_ms;
	struct survey_text intro, thanks, subject;
	struct survey_question q[SURVEY_QUESTIONS_MAX];
	size_t nq;
};

/* 1 when s is a survey id (or a question id with max SURVEY_QID_MAX):
 * 1..max of [A-Za-z0-9_-]. */
int survey_id_valid(const char *s, size_t max);

/*
 * Validate and parse a definition.  With id_required the object must carry
 * "id".  0 with *out (free with survey_free), or -EINVAL with field (a JSON
 * path such as "questions[2].options[1].fa", "" for the whole body) and
 * reason ("required" for a missing key) written into the caller's buffers.
 * Unknown keys are refused; every text must compile as a template.
 */
int survey_parse(const json_t *def, int id_required, struct survey_def **out, char *field,
                 size_t fieldlen, char *reason, size_t reasonlen);
void survey_free(struct survey_def *d);
/* The index of question id, or -1. */
int survey_question_index(const struct survey_def *d, const char *qid);

/* ---- answers ---------------------------------------------------------------- */

struct survey_answer {
	int valid;
	int64_t value;                    /* rating/nps: the number; choice: the option (1-based) */
	char text[SURVEY_ANSWER_MAX + 1]; /* text: as written, trimmed; else the value in decimal */
};

/*
 * Parse one answer to q.  Rating and NPS take a whole number in range
 * (" ۵ " and "5" are 5; "five", "4.5", "11" are not); choice takes the
 * option's number or its text in any of its languages (case, white space,
 * digits and Arabic yeh/kaf folded); text takes any non-empty text (cut at
 * SURVEY_ANSWER_MAX bytes).  0 (a->valid 1) or -EINVAL (a->valid 0).
 */
int survey_answer_parse(const struct survey_question *q, const char *text, struct survey_answer *a);

/*
 * An email reply: lines "N: answer", "N) answer", "N. answer", "N- answer"
 * or "N= answer" (N the question number, Persian or Latin digits); quoted
 * lines (">") are passed over and a signature line ("--") ends the reply;
 * the first line for a number wins.  A one-question survey also takes a
 * reply without numbers: its first non-empty line.  answers[0..d->nq) get
 * new strings (NULL when the reply has none).  Returns how many were found.
 */
size_t survey_email_answers(const struct survey_def *d, const char *body, char **answers);
void survey_email_answers_free(const struct survey_def *d, char **answers);

/* ---- the conversation --------------------------------------------------------- */

enum survey_outcome {
	SURVEY_ASK,    /* send question next_q */
	SURVEY_REASK,  /* send the help and question next_q again (SMS/chat), or the
	                  questions still missing (email) */
	SURVEY_THANKS, /* the last answer is in: the thanks text (when there is one) */
};
const char *survey_outcome_name(enum survey_outcome o); /* "ask", "reask", "thanks" */
int survey_outcome_parse(const char *s);                /* -1 when unknown */

enum survey_record { SURVEY_REC_NONE = 0, SURVEY_REC_VALID, SURVEY_REC_INVALID };

struct survey_step {
	enum survey_outcome outcome;
	int next_q;  /* the question now open; -1 once complete */
	int retried; /* the re-ask flag for next_q (email: for the reply) */
};

/* One answer to open question q (SMS, chat) with its retried flag: a valid
 * answer is recorded and the next question asked; the first invalid one is
 * re-asked; the second is recorded as invalid and the survey moves on.
 * *rec says what to record for question q. */
void survey_step_conv(const struct survey_def *d, int q, int retried, int valid,
                      enum survey_record *rec, struct survey_step *s);
/*
 * One email reply.  have[i]: question i is recorded already; ans[i]: this
 * reply's parsed answer (NULL: none given).  Valid answers are recorded;
 * on the first reply an invalid or missing answer is re-asked, on the
 * second (retried) an invalid one is recorded as invalid and a missing one
 * stays unanswered, and the survey ends.  rec[0..nq) say what to record.
 */
void survey_step_email(const struct survey_def *d, const int *have,
                       const struct survey_answer *const *ans, int retried, enum survey_record *rec,
                       struct survey_step *s);

/* ---- texts sent --------------------------------------------------------------- */

/* The text of t for lang ("fa-IR" -> "fa"), then for def_lang, then the
 * plain one, then the first; NULL when t has none.  Borrowed. */
const char *survey_text_pick(const struct survey_text *t, const char *lang, const char *def_lang);
/* 1 when lang is Persian ("fa", "fa-IR", ...): built-in texts in Persian. */
int survey_lang_fa(const char *lang);

/*
 * Render into out (appended): t picked for lang as a template with ctx
 * (NULL = {}), zone for dates.  0, -ENOENT (t is empty), or a template
 * error (-EINVAL, -ENOSPC, -E2BIG).
 */
int survey_render_text(const struct survey_def *d, const struct survey_text *t, const char *lang,
                       const json_t *ctx, const char *zone, struct buf *out);
/*
 * One question as an SMS/chat message: [intro, blank line] [help (or the
 * built-in help for its type), blank line] text, then a choice's options
 * as "1) ..." lines.  0 or a negative errno.
 */
int survey_render_question(const struct survey_def *d, size_t qi, const char *lang,
                           const json_t *ctx, const char *zone, int with_intro, int reask,
                           struct buf *out);
/*
 * The email: [intro], every question numbered (or only those with which[i]
 * set, with their help, when which is not NULL), options indented, then how
 * to answer ("1: 5", one line per question).  0 or a negative errno.
 */
int survey_render_email(const struct survey_def *d, const char *lang, const json_t *ctx,
                        const char *zone, const int *which, struct buf *out);
/* The email subject: subject, else name.  0 or a negative errno. */
int survey_render_subject(const struct survey_def *d, const char *lang, const json_t *ctx,
                          const char *zone, struct buf *out);

/* ---- results --------------------------------------------------------------------- */

/* The answer values a question's distribution has: rating 1..5, nps 0..10,
 * choice 1..noptions; 0 values for text. */
int survey_value_range(const struct survey_question *q, int *lo, int *hi);
/* Mean of the values lo..hi weighted by count[v - lo] (n answers), rounded
 * to 2 decimals; 0 when n is 0. */
double survey_mean(const int64_t *count, int lo, int hi);
/* NPS over count[0..10]: % promoters (9-10) - % detractors (0-6), rounded to
 * 1 decimal; 0 when there are no answers.  The groups' sizes go to
 * promoters, passives and detractors (each may be NULL). */
double survey_nps(const int64_t *count, int64_t *promoters, int64_t *passives, int64_t *detractors);
/* num / den rounded to 4 decimals; 0 when den <= 0. */
double survey_rate(int64_t num, int64_t den);
/* x rounded half away from zero to digits decimals (0..6). */
double survey_round(double x, int digits);

/* Append one CSV field (RFC 4180: quoted when it holds a comma, a quote, CR
 * or LF; quotes doubled). */
void survey_csv_field(struct buf *b, const char *s);

#endif
