/*
 * survey.c - surveys as pure functions (survey.h): the definition's
 * validation into struct survey_def, answer parsing per question type, the
 * email reply parser, the conversation's steps, the texts sent (rendered
 * with template.c), the results arithmetic and CSV quoting.
 *
 * Owns the parsed definition (every string in it).  Never touches Redis,
 * the network or the clock; never logs (callers log what they decide).
 * Limits: the SURVEY_* bounds of survey.h; a rendered message is bounded by
 * the caller's struct buf.
 */
#include "club/survey.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"
#include "text.h"

static const char *const qtype_names[SURVEY_QTYPES] = {"rating", "nps", "choice", "text"};

const char *survey_qtype_name(enum survey_qtype t)
{
	return (int)t >= 0 && t < SURVEY_QTYPES ? qtype_names[t] : "unknown";
}

int survey_qtype_parse(const char *s)
{
	for (int i = 0; s && i < SURVEY_QTYPES; i++)
		if (strcmp(s, qtype_names[i]) == 0)
			return i;
	return -1;
}

static const char *const outcome_names[] = {"ask", "reask", "thanks"};

const char *survey_outcome_name(enum survey_outcome o)
{
	return (int)o >= 0 && (size_t)o < ARRAY_SIZE(outcome_names) ? outcome_names[o] : "unknown";
}

int survey_outcome_parse(const char *s)
{
	for (size_t i = 0; s && i < ARRAY_SIZE(outcome_names); i++)
		if (strcmp(s, outcome_names[i]) == 0)
			return (int)i;
	return -1;
}

int survey_id_valid(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* ---- parsing the definition ----------------------------------------------------- */

struct perr {
	char *field;
	size_t fieldlen;
	char *reason;
	size_t reasonlen;
};

__attribute__((format(printf, 3, 4))) static int fail(struct perr *e, const char *field,
                                                      const char *fmt, ...)
{
	snprintf(e->field, e->fieldlen, "%s", field);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->reason, e->reasonlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static void text_free(struct survey_text *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->s[i]);
		free(t->norm[i]);
	}
	memset(t, 0, sizeof *t);
}

void survey_free(struct survey_def *d)
{
	if (!d)
		return;
	free(d->name);
	text_free(&d->intro);
	text_free(&d->thanks);
	text_free(&d->subject);
	for (size_t i = 0; i < d->nq; i++) {
		text_free(&d->q[i].text);
		text_free(&d->q[i].help);
		for (size_t k = 0; k < d->q[i].noptions; k++)
			text_free(&d->q[i].option[k]);
	}
	free(d);
}

/* A language tag: 2..SURVEY_LANG_MAX of [A-Za-z-], starting with a letter;
 * written lower-cased into out. */
static int lang_ok(const char *s, char *out)
{
	size_t n = strlen(s);
	if (n < 2 || n > SURVEY_LANG_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c == '-' && i > 1)))
			return 0;
		out[i] = c;
	}
	out[n] = '\0';
	return 1;
}

/* 1 when s has nothing but white space. */
static int blank(const char *s)
{
	char *n = text_normalize(s);
	int b = !n || !*n;
	free(n);
	return b;
}

static int check_template(struct perr *e, const char *field, const char *src)
{
	struct tmpl *t = NULL;
	struct tmpl_error te;
	memset(&te, 0, sizeof te);
	int rc = tmpl_compile(src, &t, &te);
	tmpl_free(t);
	if (rc < 0) {
		if (te.line > 0)
			return fail(e, field, "template: %s (line %d, column %d)", te.reason,
			            te.line, te.col);
		return fail(e, field, "template: %s", te.reason);
	}
	return 0;
}

/* One text: a string, or an object of language -> string.  max: bytes of
 * one string; templates are compiled to check them. */
static int parse_text(struct perr *e, const json_t *v, const char *field, size_t max,
                      int is_template, struct survey_text *t)
{
	char f[256];
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (json_string_length(v) > max)
			return fail(e, field, "longer than %zu bytes", max);
		if (strlen(s) != json_string_length(v) || blank(s))
			return fail(e, field, "must not be empty");
		if (is_template && check_template(e, field, s) < 0)
			return -EINVAL;
		t->lang[0][0] = '\0';
		t->s[0] = xstrdup(s);
		t->n = 1;
		return 0;
	}
	if (!json_is_object(v))
		return fail(e, field, "must be a string or an object of language: text");
	if (json_object_size(v) == 0)
		return fail(e, field, "must not be empty");
	if (json_object_size(v) > SURVEY_LANGS_MAX)
		return fail(e, field, "at most %d languages", SURVEY_LANGS_MAX);
	const char *k;
	const json_t *x;
	json_object_foreach((json_t *)v, k, x)
	{
		snprintf(f, sizeof f, "%s.%.16s", field, k);
		char lang[SURVEY_LANG_MAX + 1];
		if (!lang_ok(k, lang))
			return fail(e, f, "not a language tag (\"fa\", \"en\", \"fa-ir\")");
		for (size_t i = 0; i < t->n; i++)
			if (strcmp(t->lang[i], lang) == 0)
				return fail(e, f, "the language is given twice");
		if (!json_is_string(x))
			return fail(e, f, "must be a string");
		const char *s = json_string_value(x);
		if (json_string_length(x) > max)
			return fail(e, f, "longer than %zu bytes", max);
		if (strlen(s) != json_string_length(x) || blank(s))
			return fail(e, f, "must not be empty");
		if (is_template && check_template(e, f, s) < 0)
			return -EINVAL;
		memcpy(t->lang[t->n], lang, sizeof lang);
		t->s[t->n++] = xstrdup(s);
	}
	return 0;
}

static int all_digits(const char *s, int64_t *v)
{
	if (!*s || strlen(s) > 3)
		return 0;
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return parse_i64(s, 0, 999, v) == 0;
}

static int parse_options(struct perr *e, const json_t *v, const char *field,
                         struct survey_question *q)
{
	char f[200];
	if (!json_is_array(v))
		return fail(e, field, "must be an array of options");
	if (json_array_size(v) < 2 || json_array_size(v) > SURVEY_OPTIONS_MAX)
		return fail(e, field, "2..%d options", SURVEY_OPTIONS_MAX);
	size_t i;
	const json_t *x;
	json_array_foreach(v, i, x)
	{
		snprintf(f, sizeof f, "%s[%zu]", field, i);
		struct survey_text *t = &q->option[i];
		q->noptions = i + 1;
		if (parse_text(e, x, f, SURVEY_OPTION_MAX, 0, t) < 0)
			return -EINVAL;
		for (size_t l = 0; l < t->n; l++) {
			t->norm[l] = text_normalize(t->s[l]);
			int64_t num;
			if (all_digits(t->norm[l], &num) && num != (int64_t)i + 1)
				return fail(e, f,
				            "a number as an option must be its own position (%zu): "
				            "numbers choose options by position",
				            i + 1);
			for (size_t j = 0; j < i; j++)
				for (size_t m = 0; m < q->option[j].n; m++)
					if (strcmp(q->option[j].norm[m], t->norm[l]) == 0)
						return fail(e, f, "the same as option %zu", j + 1);
		}
	}
	return 0;
}

static int parse_question(struct perr *e, const json_t *v, size_t i, struct survey_def *d)
{
	char f[96], g[160];
	snprintf(f, sizeof f, "questions[%zu]", i);
	struct survey_question *q = &d->q[i];
	if (!json_is_object(v))
		return fail(e, f, "must be an object");
	const char *k;
	const json_t *x;
	json_object_foreach((json_t *)v, k, x)
	{
		if (strcmp(k, "id") && strcmp(k, "type") && strcmp(k, "text") &&
		    strcmp(k, "help") && strcmp(k, "options")) {
			snprintf(g, sizeof g, "%s.%.40s", f, k);
			return fail(e, g, "unknown key");
		}
	}
	const json_t *id = json_object_get(v, "id");
	snprintf(g, sizeof g, "%s.id", f);
	if (id) {
		if (!json_is_string(id) || !survey_id_valid(json_string_value(id), SURVEY_QID_MAX))
			return fail(e, g, "1..%d of A-Z a-z 0-9 _ -", SURVEY_QID_MAX);
		snprintf(q->id, sizeof q->id, "%s", json_string_value(id));
	} else {
		snprintf(q->id, sizeof q->id, "q%zu", i + 1);
	}
	for (size_t j = 0; j < i; j++)
		if (strcmp(d->q[j].id, q->id) == 0)
			return fail(e, g, "the same id as questions[%zu]", j);
	const json_t *type = json_object_get(v, "type");
	snprintf(g, sizeof g, "%s.type", f);
	if (!type)
		return fail(e, g, "required");
	int t = survey_qtype_parse(json_string_value(type));
	if (t < 0)
		return fail(e, g, "one of rating, nps, choice, text");
	q->type = (enum survey_qtype)t;
	const json_t *text = json_object_get(v, "text");
	snprintf(g, sizeof g, "%s.text", f);
	if (!text)
		return fail(e, g, "required");
	if (parse_text(e, text, g, SURVEY_TEXT_MAX, 1, &q->text) < 0)
		return -EINVAL;
	const json_t *help = json_object_get(v, "help");
	snprintf(g, sizeof g, "%s.help", f);
	if (help && !json_is_null(help) && parse_text(e, help, g, SURVEY_TEXT_MAX, 1, &q->help) < 0)
		return -EINVAL;
	const json_t *opts = json_object_get(v, "options");
	snprintf(g, sizeof g, "%s.options", f);
	if (q->type == SURVEY_Q_CHOICE) {
		if (!opts)
			return fail(e, g, "required");
		if (parse_options(e, opts, g, q) < 0)
			return -EINVAL;
	} else if (opts) {
		return fail(e, g, "only a choice question has options");
	}
	return 0;
}

int survey_parse(const json_t *def, int id_required, struct survey_def **out, char *field,
                 size_t fieldlen, char *reason, size_t reasonlen)
{
	struct perr e = {field, fieldlen, reason, reasonlen};
	*out = NULL;
	if (fieldlen)
		field[0] = '\0';
	if (reasonlen)
		reason[0] = '\0';
	if (!json_is_object(def))
		return fail(&e, "", "the definition must be a JSON object");
	const char *k;
	const json_t *x;
	json_object_foreach((json_t *)def, k, x)
	{
		static const char *const known[] = {"id",    "name",   "lang",    "ttl",
		                                    "intro", "thanks", "subject", "questions"};
		size_t i = 0;
		while (i < ARRAY_SIZE(known) && strcmp(k, known[i]) != 0)
			i++;
		if (i == ARRAY_SIZE(known)) {
			char g[64];
			snprintf(g, sizeof g, "%.40s", k);
			return fail(&e, g, "unknown key");
		}
	}
	struct survey_def *d = xcalloc(1, sizeof *d);
	int rc = -EINVAL;
	const json_t *id = json_object_get(def, "id");
	if (id) {
		if (!json_is_string(id) || !survey_id_valid(json_string_value(id), SURVEY_ID_MAX)) {
			fail(&e, "id", "1..%d of A-Z a-z 0-9 _ -", SURVEY_ID_MAX);
			goto out;
		}
		snprintf(d->id, sizeof d->id, "%s", json_string_value(id));
	} else if (id_required) {
		fail(&e, "id", "required");
		goto out;
	}
	const json_t *name = json_object_get(def, "name");
	if (!name) {
		fail(&e, "name", "required");
		goto out;
	}
	if (!json_is_string(name) || blank(json_string_value(name)) ||
	    strlen(json_string_value(name)) != json_string_length(name) ||
	    text_has_ctl(json_string_value(name), 0)) {
		fail(&e, "name", "a non-empty string without control characters");
		goto out;
	}
	if (json_string_length(name) > SURVEY_NAME_MAX) {
		fail(&e, "name", "longer than %d bytes", SURVEY_NAME_MAX);
		goto out;
	}
	d->name = xstrdup(json_string_value(name));
	const json_t *lang = json_object_get(def, "lang");
	if (lang && !json_is_null(lang) &&
	    (!json_is_string(lang) || !lang_ok(json_string_value(lang), d->lang))) {
		fail(&e, "lang", "a language tag (\"fa\", \"en\")");
		goto out;
	}
	d->ttl_ms = SURVEY_TTL_DEFAULT;
	const json_t *ttl = json_object_get(def, "ttl");
	if (ttl && !json_is_null(ttl)) {
		int64_t ms;
		if (!json_is_string(ttl) || parse_duration_ms(json_string_value(ttl), &ms) < 0) {
			fail(&e, "ttl", "a duration such as \"2d\", \"36h\" or \"90m\"");
			goto out;
		}
		if (ms < SURVEY_TTL_MIN_MS || ms > SURVEY_TTL_MAX_MS) {
			fail(&e, "ttl", "1s..30d");
			goto out;
		}
		d->ttl_ms = ms;
	}
	static const char *const tnames[] = {"intro", "thanks", "subject"};
	struct survey_text *tt[] = {&d->intro, &d->thanks, &d->subject};
	for (size_t i = 0; i < ARRAY_SIZE(tnames); i++) {
		const json_t *v = json_object_get(def, tnames[i]);
		if (v && !json_is_null(v) &&
		    parse_text(&e, v, tnames[i], i == 2 ? SURVEY_NAME_MAX : SURVEY_TEXT_MAX, 1,
		               tt[i]) < 0)
			goto out;
	}
	const json_t *qs = json_object_get(def, "questions");
	if (!qs) {
		fail(&e, "questions", "required");
		goto out;
	}
	if (!json_is_array(qs) || json_array_size(qs) == 0 ||
	    json_array_size(qs) > SURVEY_QUESTIONS_MAX) {
		fail(&e, "questions", "an array of 1..%d questions", SURVEY_QUESTIONS_MAX);
		goto out;
	}
	size_t i;
	json_array_foreach(qs, i, x)
	{
		d->nq = i + 1;
		if (parse_question(&e, x, i, d) < 0)
			goto out;
	}
	rc = 0;
	*out = d;
	d = NULL;
out:
	survey_free(d);
	return rc;
}

int survey_question_index(const struct survey_def *d, const char *qid)
{
	for (size_t i = 0; qid && i < d->nq; i++)
		if (strcmp(d->q[i].id, qid) == 0)
			return (int)i;
	return -1;
}

/* ---- answers ---------------------------------------------------------------------- */

/* s without leading and trailing white space (text_is_space), as [*b, *e). */
static void trim_span(const char *s, size_t n, size_t *b, size_t *e)
{
	size_t i = 0;
	while (i < n) {
		uint32_t cp;
		int l = utf8_decode(s + i, n - i, &cp);
		if (l <= 0 || !text_is_space(cp))
			break;
		i += (size_t)l;
	}
	size_t end = i, j = i;
	while (j < n) {
		uint32_t cp;
		int l = utf8_decode(s + j, n - j, &cp);
		if (l <= 0) {
			j++;
			end = j;
			continue;
		}
		j += (size_t)l;
		if (!text_is_space(cp))
			end = j;
	}
	*b = i;
	*e = end;
}

/* Copy at most max bytes of s[0..n) into out, never cutting a character. */
static void copy_cut(char *out, const char *s, size_t n, size_t max)
{
	size_t o = 0;
	while (o < n) {
		uint32_t cp;
		int l = utf8_decode(s + o, n - o, &cp);
		if (l <= 0)
			l = 1;
		if (o + (size_t)l > max)
			break;
		o += (size_t)l;
	}
	memcpy(out, s, o);
	out[o] = '\0';
}

int survey_answer_parse(const struct survey_question *q, const char *text, struct survey_answer *a)
{
	memset(a, 0, sizeof *a);
	if (!text || !utf8_valid(text, strlen(text)))
		return -EINVAL;
	if (q->type == SURVEY_Q_TEXT) {
		size_t b, e;
		trim_span(text, strlen(text), &b, &e);
		if (e <= b)
			return -EINVAL;
		copy_cut(a->text, text + b, e - b, SURVEY_ANSWER_MAX);
		a->valid = 1;
		return 0;
	}
	char *n = text_normalize(text);
	if (!n)
		return -EINVAL;
	int64_t v = -1;
	int lo = 0, hi = 0;
	survey_value_range(q, &lo, &hi);
	if (all_digits(n, &v)) {
		if (v < lo || v > hi)
			v = -1;
	} else if (q->type == SURVEY_Q_CHOICE) {
		v = -1;
		for (size_t i = 0; i < q->noptions && v < 0; i++)
			for (size_t l = 0; l < q->option[i].n; l++)
				if (strcmp(q->option[i].norm[l], n) == 0) {
					v = (int64_t)i + 1;
					break;
				}
	} else {
		v = -1;
	}
	free(n);
	if (v < 0)
		return -EINVAL;
	a->valid = 1;
	a->value = v;
	snprintf(a->text, sizeof a->text, "%lld", (long long)v);
	return 0;
}

/* A numbered line "N<sep> answer" at s[0..n) (already trimmed): the number
 * (1..99) and the answer's span, or 0. */
static int numbered(const char *s, size_t n, size_t *ab, size_t *ae)
{
	size_t i = 0;
	int num = 0, digits = 0;
	while (i < n && digits < 3) {
		uint32_t cp;
		int l = utf8_decode(s + i, n - i, &cp);
		int dv = l > 0 ? text_digit_value(cp) : -1;
		if (dv < 0)
			break;
		num = num * 10 + dv;
		digits++;
		i += (size_t)l;
	}
	if (digits == 0 || digits > 2 || num == 0)
		return 0;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i >= n)
		return 0;
	if (strchr(":).-=", s[i]) && s[i] != '\0') {
		i++;
	} else if (n - i >= 2 && (unsigned char)s[i] == 0xD8 && (unsigned char)s[i + 1] == 0x8C) {
		i += 2; /* U+060C ARABIC COMMA */
	} else if (n - i >= 3 && memcmp(s + i, "\xEF\xBC\x9A", 3) == 0) {
		i += 3; /* U+FF1A FULLWIDTH COLON */
	} else {
		return 0;
	}
	size_t b, e;
	trim_span(s + i, n - i, &b, &e);
	if (e <= b)
		return 0;
	*ab = i + b;
	*ae = i + e;
	return num;
}

size_t survey_email_answers(const struct survey_def *d, const char *body, char **answers)
{
	size_t found = 0;
	char *first = NULL;
	for (size_t i = 0; i < d->nq; i++)
		answers[i] = NULL;
	if (!body || !utf8_valid(body, strlen(body)))
		return 0;
	for (const char *p = body; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		size_t b, e;
		trim_span(p, len, &b, &e);
		const char *line = p + b;
		size_t n = e > b ? e - b : 0;
		p = nl ? nl + 1 : p + len;
		if (n == 0 || line[0] == '>')
			continue;
		if (n == 2 && memcmp(line, "--", 2) == 0)
			break; /* a signature follows */
		if (!first)
			first = xstrndup(line, n);
		size_t ab, ae;
		int num = numbered(line, n, &ab, &ae);
		if (num < 1 || (size_t)num > d->nq || answers[num - 1])
			continue;
		answers[num - 1] = xstrndup(line + ab, ae - ab);
		found++;
	}
	if (found == 0 && d->nq == 1 && first) {
		answers[0] = first;
		first = NULL;
		found = 1;
	}
	free(first);
	return found;
}

void survey_email_answers_free(const struct survey_def *d, char **answers)
{
	for (size_t i = 0; i < d->nq; i++) {
		free(answers[i]);
		answers[i] = NULL;
	}
}

/* ---- the conversation ------------------------------------------------------------- */

void survey_step_conv(const struct survey_def *d, int q, int retried, int valid,
                      enum survey_record *rec, struct survey_step *s)
{
	if (!valid && !retried) {
		*rec = SURVEY_REC_NONE;
		s->outcome = SURVEY_REASK;
		s->next_q = q;
		s->retried = 1;
		return;
	}
	*rec = valid ? SURVEY_REC_VALID : SURVEY_REC_INVALID;
	s->retried = 0;
	if ((size_t)q + 1 >= d->nq) {
		s->outcome = SURVEY_THANKS;
		s->next_q = -1;
	} else {
		s->outcome = SURVEY_ASK;
		s->next_q = q + 1;
	}
}

void survey_step_email(const struct survey_def *d, const int *have,
                       const struct survey_answer *const *ans, int retried, enum survey_record *rec,
                       struct survey_step *s)
{
	int missing = 0;
	for (size_t i = 0; i < d->nq; i++) {
		rec[i] = SURVEY_REC_NONE;
		if (have[i])
			continue;
		if (ans[i] && ans[i]->valid)
			rec[i] = SURVEY_REC_VALID;
		else if (retried && ans[i])
			rec[i] = SURVEY_REC_INVALID;
		else if (!retried)
			missing = 1;
	}
	if (missing) {
		s->outcome = SURVEY_REASK;
		s->next_q = 0;
		s->retried = 1;
	} else {
		s->outcome = SURVEY_THANKS;
		s->next_q = -1;
		s->retried = retried;
	}
}

/* ---- texts sent --------------------------------------------------------------------- */

int survey_lang_fa(const char *lang)
{
	return lang && (lang[0] == 'f' || lang[0] == 'F') && (lang[1] == 'a' || lang[1] == 'A') &&
	       (lang[2] == '\0' || lang[2] == '-' || lang[2] == '_');
}

/* The index of a text in language l (compared case-insensitively; base:
 * only up to '-' or '_'), or -1. */
static int find_lang(const struct survey_text *t, const char *l, int base)
{
	char want[SURVEY_LANG_MAX + 1];
	size_t n = 0;
	for (; l && l[n] && n < SURVEY_LANG_MAX; n++) {
		char c = l[n];
		if (base && (c == '-' || c == '_'))
			break;
		want[n] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c == '_' ? '-' : c);
	}
	want[n] = '\0';
	if (n == 0)
		return -1;
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->lang[i], want) == 0)
			return (int)i;
	return -1;
}

const char *survey_text_pick(const struct survey_text *t, const char *lang, const char *def_lang)
{
	if (!t || t->n == 0)
		return NULL;
	int i = find_lang(t, lang, 0);
	if (i < 0)
		i = find_lang(t, lang, 1);
	if (i < 0)
		i = find_lang(t, def_lang, 0);
	if (i < 0)
		i = find_lang(t, def_lang, 1);
	for (size_t k = 0; i < 0 && k < t->n; k++)
		if (t->lang[k][0] == '\0')
			i = (int)k;
	return t->s[i < 0 ? 0 : i];
}

/* The language a message is written in: the contact's when the survey
 * speaks it (the question 1 text decides), else the default. */
static const char *msg_lang(const struct survey_def *d, const char *lang)
{
	const struct survey_text *t = &d->q[0].text;
	if (find_lang(t, lang, 0) >= 0 || find_lang(t, lang, 1) >= 0)
		return lang;
	if (d->lang[0])
		return d->lang;
	if (t->n > 0 && t->lang[0][0])
		return t->lang[0];
	return lang;
}

static int render_src(const char *src, const char *lang, const json_t *ctx, const char *zone,
                      struct buf *out)
{
	struct tmpl *t = NULL;
	struct tmpl_error err;
	memset(&err, 0, sizeof err);
	int rc = tmpl_compile(src, &t, &err);
	if (rc < 0)
		return rc;
	json_t *empty = ctx ? NULL : json_object();
	struct tmpl_opts o = {.html = 0, .zone = zone, .lang = lang};
	rc = tmpl_render(t, ctx ? ctx : empty, &o, out, &err);
	json_decref(empty);
	tmpl_free(t);
	return rc;
}

int survey_render_text(const struct survey_def *d, const struct survey_text *t, const char *lang,
                       const json_t *ctx, const char *zone, struct buf *out)
{
	const char *src = survey_text_pick(t, lang, d->lang);
	if (!src)
		return -ENOENT;
	return render_src(src, lang, ctx, zone, out);
}

/* The first line of an email asking again, [0] English, [1] Persian. */
static const char *const REASK_INTRO[2] = {
    "We could not read your answers to these questions; please answer them again:\n\n",
    "پاسخ این پرسش‌ها را نتوانستیم بخوانیم؛ لطفاً "
    "دوباره "
    "بفرستید:\n\n"};

static const char *builtin_help(enum survey_qtype t, int fa)
{
	switch (t) {
	case SURVEY_Q_RATING:
		return fa ? "لطفاً فقط یک عدد از ۱ تا ۵ بفرستید."
		          : "Please reply with a number from 1 to 5.";
	case SURVEY_Q_NPS:
		return fa ? "لطفاً فقط یک عدد از ۰ تا ۱۰ بفرستید."
		          : "Please reply with a number from 0 to 10.";
	case SURVEY_Q_CHOICE:
		return fa ? "لطفاً شمارهٔ یکی از گزینه‌ها را "
		            "بفرستید."
		          : "Please reply with the number of one option.";
	default:
		return fa ? "لطفاً پاسخ خود را بنویسید." : "Please write your answer.";
	}
}

static int put(struct buf *out, const char *s)
{
	return buf_puts(out, s) < 0 ? -ENOSPC : 0;
}

/* A question's text and options; with help first when reask. */
static int question_body(const struct survey_def *d, size_t qi, const char *lang, const json_t *ctx,
                         const char *zone, int reask, const char *indent, struct buf *out)
{
	const struct survey_question *q = &d->q[qi];
	int rc;
	if (reask) {
		if (q->help.n > 0)
			rc = survey_render_text(d, &q->help, lang, ctx, zone, out);
		else
			rc = put(out, builtin_help(q->type, survey_lang_fa(lang)));
		if (rc < 0 || (rc = put(out, "\n")) < 0)
			return rc;
		if (!*indent && (rc = put(out, "\n")) < 0)
			return rc;
		if (*indent && (rc = put(out, indent)) < 0)
			return rc;
	}
	if ((rc = survey_render_text(d, &q->text, lang, ctx, zone, out)) < 0)
		return rc;
	for (size_t i = 0; i < q->noptions; i++) {
		const char *o = survey_text_pick(&q->option[i], lang, d->lang);
		if (buf_printf(out, "\n%s%zu) %s", indent, i + 1, o) < 0)
			return -ENOSPC;
	}
	return 0;
}

int survey_render_question(const struct survey_def *d, size_t qi, const char *lang,
                           const json_t *ctx, const char *zone, int with_intro, int reask,
                           struct buf *out)
{
	if (qi >= d->nq)
		return -EINVAL;
	lang = msg_lang(d, lang);
	int rc;
	if (with_intro && d->intro.n > 0) {
		if ((rc = survey_render_text(d, &d->intro, lang, ctx, zone, out)) < 0 ||
		    (rc = put(out, "\n\n")) < 0)
			return rc;
	}
	return question_body(d, qi, lang, ctx, zone, reask, "", out);
}

int survey_render_email(const struct survey_def *d, const char *lang, const json_t *ctx,
                        const char *zone, const int *which, struct buf *out)
{
	lang = msg_lang(d, lang);
	int fa = survey_lang_fa(lang), rc;
	if (which) {
		if ((rc = put(out, REASK_INTRO[fa])) < 0)
			return rc;
	} else if (d->intro.n > 0) {
		if ((rc = survey_render_text(d, &d->intro, lang, ctx, zone, out)) < 0 ||
		    (rc = put(out, "\n\n")) < 0)
			return rc;
	}
	size_t first = d->nq;
	for (size_t i = 0; i < d->nq; i++) {
		if (which && !which[i])
			continue;
		if (first == d->nq)
			first = i;
		if (buf_printf(out, "%zu. ", i + 1) < 0)
			return -ENOSPC;
		if ((rc = question_body(d, i, lang, ctx, zone, which != NULL, "   ", out)) < 0 ||
		    (rc = put(out, "\n\n")) < 0)
			return rc;
	}
	if (first == d->nq)
		first = 0;
	const char *example = d->q[first].type == SURVEY_Q_NPS      ? "9"
	                      : d->q[first].type == SURVEY_Q_TEXT   ? "..."
	                      : d->q[first].type == SURVEY_Q_CHOICE ? "1"
	                                                            : "5";
	if (buf_printf(out,
	               fa ? "لطفاً به این ایمیل پاسخ دهید و برای هر پرسش یک سطر بنویسید: شمارهٔ "
	                    "پرسش، دونقطه و پاسخ، مثلاً:\n%zu: %s\n"
	                  : "Reply to this email with one line per question: its number, a colon "
	                    "and your answer, for example:\n%zu: %s\n",
	               first + 1, example) < 0)
		return -ENOSPC;
	return 0;
}

int survey_render_subject(const struct survey_def *d, const char *lang, const json_t *ctx,
                          const char *zone, struct buf *out)
{
	lang = msg_lang(d, lang);
	if (d->subject.n > 0)
		return survey_render_text(d, &d->subject, lang, ctx, zone, out);
	return put(out, d->name);
}

/* ---- results -------------------------------------------------------------------------- */

int survey_value_range(const struct survey_question *q, int *lo, int *hi)
{
	switch (q->type) {
	case SURVEY_Q_RATING:
		*lo = 1;
		*hi = 5;
		return 5;
	case SURVEY_Q_NPS:
		*lo = 0;
		*hi = 10;
		return 11;
	case SURVEY_Q_CHOICE:
		*lo = 1;
		*hi = (int)q->noptions;
		return (int)q->noptions;
	default:
		*lo = 1;
		*hi = 0;
		return 0;
	}
}

double survey_round(double x, int digits)
{
	double f = 1;
	for (int i = 0; i < digits && i < 6; i++)
		f *= 10;
	return round(x * f) / f;
}

double survey_mean(const int64_t *count, int lo, int hi)
{
	int64_t n = 0, sum = 0;
	for (int v = lo; v <= hi; v++) {
		n += count[v - lo];
		sum += count[v - lo] * v;
	}
	return n > 0 ? survey_round((double)sum / (double)n, 2) : 0;
}

double survey_nps(const int64_t *count, int64_t *promoters, int64_t *passives, int64_t *detractors)
{
	int64_t p = 0, m = 0, d = 0;
	for (int v = 0; v <= 10; v++) {
		if (v >= 9)
			p += count[v];
		else if (v >= 7)
			m += count[v];
		else
			d += count[v];
	}
	if (promoters)
		*promoters = p;
	if (passives)
		*passives = m;
	if (detractors)
		*detractors = d;
	int64_t n = p + m + d;
	return n > 0 ? survey_round((double)(p - d) * 100.0 / (double)n, 1) : 0;
}

double survey_rate(int64_t num, int64_t den)
{
	return den > 0 ? survey_round((double)num / (double)den, 4) : 0;
}

void survey_csv_field(struct buf *b, const char *s)
{
	if (!s)
		s = "";
	if (!strpbrk(s, ",\"\r\n")) {
		buf_puts(b, s);
		return;
	}
	buf_append(b, "\"", 1);
	for (const char *p = s; *p; p++) {
		if (*p == '"')
			buf_append(b, "\"\"", 2);
		else
			buf_append(b, p, 1);
	}
	buf_append(b, "\"", 1);
}
