/*
 * tplset.c - template resources (daemon/tplset.h): validation and compiling
 * of a definition (one message in several channels and languages), the
 * choice of a variant for a channel kind and a contact's language, rendering
 * of its parts with template.c, the render context built from a contact,
 * and a small cache of compiled sets keyed by (id, version).
 *
 * Owns the compiled sets and the cache.  Never touches Redis, key names or
 * the HTTP layer: the API and the dispatcher hand it JSON and replies.
 * Limits: TPLSET_MAX_VARIANTS variants, ids of TPLSET_ID_MAX bytes, names of
 * TPLSET_NAME_MAX bytes, descriptions of 1000, each template TMPL_MAX_SRC
 * (template.c), each rendered part TPLSET_MAX_OUTPUT bytes.  Render on the
 * loop thread (template.c's date filters use ICU caches).
 */
#include "tplset.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "privacy.h"
#include "util.h"

#define DESC_MAX  1000
#define FIELD_MAX 96

enum kind { K_SMS, K_EMAIL, K_CHAT, K_ANY };
static const char *const kind_names[] = {"sms", "email", "chat", "any"};

struct variant {
	enum kind kind;
	size_t index; /* position in the definition's "variants" */
	char lang[TPLSET_LANG_MAX + 1];
	struct tmpl *subject, *text, *html;
};

struct tplset {
	char *id; /* "" when the definition has none */
	char default_lang[TPLSET_LANG_MAX + 1];
	struct variant v[TPLSET_MAX_VARIANTS];
	size_t n;
};

/* ---------------------------------------------------------------- names */

static int kind_parse(const char *s)
{
	for (size_t i = 0; s && i < ARRAY_SIZE(kind_names); i++)
		if (strcmp(s, kind_names[i]) == 0)
			return (int)i;
	return -1;
}

int tplset_id_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 1 || n > TPLSET_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return 0;
	return 1;
}

/* A variant's language: 2..8 of [a-z-], starting with a letter, no empty
 * subtag ("fa", "en", "fa-af", "ckb"). */
static int lang_valid(const char *s)
{
	size_t n = strlen(s);
	if (n < 2 || n > TPLSET_LANG_MAX || s[0] < 'a' || s[0] > 'z' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '-' && s[i + 1] == '-')
			return 0;
		if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '-'))
			return 0;
	}
	return 1;
}

static char lang_fold(char c)
{
	if (c >= 'A' && c <= 'Z')
		return (char)(c - 'A' + 'a');
	return c == '_' ? '-' : c;
}

/* Compare the first n bytes of two language tags ignoring case and '_' vs
 * '-'; n == SIZE_MAX compares whole strings. */
static int lang_eqn(const char *a, const char *b, size_t n)
{
	size_t i = 0;
	for (; i < n && a[i] && b[i]; i++)
		if (lang_fold(a[i]) != lang_fold(b[i]))
			return 0;
	return i == n || (a[i] == '\0' && b[i] == '\0');
}

static size_t lang_base_len(const char *s)
{
	return strcspn(s, "-_");
}

/* ---------------------------------------------------------------- errors */

static _Thread_local char field_buf[FIELD_MAX];

struct walk {
	int stop_first;
	void (*report)(void *arg, const char *field, const struct tmpl_error *err);
	void *arg;
	int nerr;
};

/* Report one error; -1 when the walk must stop, else 0. */
static int werr(struct walk *w, const char *field, const struct tmpl_error *te, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

static int werr(struct walk *w, const char *field, const struct tmpl_error *te, const char *fmt,
                ...)
{
	struct tmpl_error e;
	memset(&e, 0, sizeof e);
	if (te) {
		e = *te;
	} else {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e.reason, sizeof e.reason, fmt, ap);
		va_end(ap);
	}
	w->nerr++;
	if (w->report)
		w->report(w->arg, field ? field : "", &e);
	return w->stop_first ? -1 : 0;
}

#define WERR(w, field, te, ...)                                                                    \
	do {                                                                                       \
		if (werr((w), (field), (te), __VA_ARGS__) < 0)                                     \
			return -1;                                                                 \
	} while (0)

/* ---------------------------------------------------------------- parsing */

static int key_allowed(const char *k, const char *const *allowed)
{
	for (; *allowed; allowed++)
		if (strcmp(k, *allowed) == 0)
			return 1;
	return 0;
}

static int unknown_keys(struct walk *w, const json_t *o, const char *prefix,
                        const char *const *allowed, const char *hint)
{
	const char *k;
	json_t *x;
	json_object_foreach((json_t *)o, k, x)
	{
		if (key_allowed(k, allowed))
			continue;
		char f[FIELD_MAX];
		snprintf(f, sizeof f, "%s%.60s", prefix, k);
		WERR(w, f, NULL, "unknown field (allowed: %s)", hint);
	}
	return 0;
}

/* A plain text field: string of at most max bytes, no NUL, no control
 * characters (LF, CR, TAB allowed when multiline). */
static int plain_text(struct walk *w, const json_t *v, const char *field, size_t max, int multiline)
{
	if (!json_is_string(v))
		return werr(w, field, NULL, "must be a string");
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n > max)
		return werr(w, field, NULL, "longer than %zu bytes", max);
	int ctl = strlen(s) != n;
	for (size_t i = 0; i < n && !ctl; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 || c == 0x7f) &&
		    !(multiline && (c == '\n' || c == '\r' || c == '\t')))
			ctl = 1;
	}
	if (ctl)
		return werr(w, field, NULL, "control characters are not allowed");
	return 0;
}

/* Compile one template field of a variant into *out (NULL when absent and
 * not required). */
static int compile_field(struct walk *w, const json_t *vo, size_t i, const char *name, int required,
                         int one_line, struct tmpl **out)
{
	char f[FIELD_MAX];
	const json_t *v = json_object_get(vo, name);
	snprintf(f, sizeof f, "variants[%zu].%s", i, name);
	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return werr(w, f, NULL, "required");
		return 0;
	}
	if (!json_is_string(v))
		return werr(w, f, NULL, "must be a string");
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (strlen(s) != n)
		return werr(w, f, NULL, "must not contain NUL characters");
	if (required && n == 0)
		return werr(w, f, NULL, "must not be empty");
	if (one_line && strpbrk(s, "\r\n"))
		return werr(w, f, NULL, "must be one line");
	struct tmpl_error te;
	memset(&te, 0, sizeof te);
	if (tmpl_compile(s, out, &te) < 0)
		return werr(w, f, &te, "%s", te.reason);
	return 0;
}

static void variant_clear(struct variant *v)
{
	tmpl_free(v->subject);
	tmpl_free(v->text);
	tmpl_free(v->html);
	v->subject = v->text = v->html = NULL;
}

static int parse_variant(struct walk *w, struct tplset *ts, const json_t *vo, size_t i)
{
	static const char *const allowed[] = {"channel", "lang", "subject", "text", "html", NULL};
	char f[FIELD_MAX], prefix[32];
	int bad = 0, nerr = w->nerr;

	snprintf(f, sizeof f, "variants[%zu]", i);
	if (!json_is_object(vo))
		return werr(w, f, NULL, "a variant must be an object");
	snprintf(prefix, sizeof prefix, "variants[%zu].", i);
	if (unknown_keys(w, vo, prefix, allowed, "channel, lang, subject, text, html") < 0)
		return -1;

	struct variant *v = &ts->v[ts->n];
	memset(v, 0, sizeof *v);
	v->index = i;
	const json_t *ch = json_object_get(vo, "channel");
	int k = kind_parse(json_string_value(ch));
	snprintf(f, sizeof f, "variants[%zu].channel", i);
	if (!ch)
		WERR(w, f, NULL, "required (sms, email, chat or any)");
	else if (k < 0)
		WERR(w, f, NULL, "must be sms, email, chat or any");
	v->kind = k < 0 ? K_ANY : (enum kind)k;
	bad |= k < 0;

	const json_t *lj = json_object_get(vo, "lang");
	snprintf(f, sizeof f, "variants[%zu].lang", i);
	if (!lj)
		WERR(w, f, NULL, "required (a language such as fa or en)");
	else if (!json_is_string(lj) || !lang_valid(json_string_value(lj)))
		WERR(w, f, NULL, "must be 2 to %d characters of a-z and '-' (fa, en, fa-af)",
		     TPLSET_LANG_MAX);
	else
		snprintf(v->lang, sizeof v->lang, "%s", json_string_value(lj));
	bad |= !v->lang[0];

	if (k >= 0 && k != K_EMAIL && k != K_ANY) {
		static const char *const email_only[] = {"subject", "html"};
		for (size_t e = 0; e < ARRAY_SIZE(email_only); e++) {
			if (!json_object_get(vo, email_only[e]))
				continue;
			snprintf(f, sizeof f, "variants[%zu].%s", i, email_only[e]);
			WERR(w, f, NULL, "only email (or any) variants have a %s", email_only[e]);
			bad = 1;
		}
	}
	if (compile_field(w, vo, i, "text", 1, 0, &v->text) < 0 ||
	    compile_field(w, vo, i, "subject", k == K_EMAIL, 1, &v->subject) < 0 ||
	    compile_field(w, vo, i, "html", 0, 0, &v->html) < 0) {
		variant_clear(v);
		return -1;
	}
	if (!bad && w->nerr == nerr) {
		for (size_t j = 0; j < ts->n; j++) {
			if (ts->v[j].kind != v->kind || strcmp(ts->v[j].lang, v->lang) != 0)
				continue;
			snprintf(f, sizeof f, "variants[%zu]", i);
			variant_clear(v);
			WERR(w, f, NULL, "a second %s variant in %s (the first is variants[%zu])",
			     kind_names[v->kind], v->lang, ts->v[j].index);
			return 0;
		}
	}
	if (w->nerr != nerr) {
		variant_clear(v);
		return 0;
	}
	ts->n++;
	return 0;
}

static int parse_def(struct walk *w, const json_t *def, struct tplset *ts)
{
	static const char *const allowed[] = {"id",           "name",     "description",
	                                      "default_lang", "variants", NULL};
	if (!json_is_object(def))
		return werr(w, "", NULL, "a template definition must be a JSON object");
	if (unknown_keys(w, def, "", allowed, "id, name, description, default_lang, variants") < 0)
		return -1;

	const json_t *id = json_object_get(def, "id");
	if (id && !(json_is_string(id) && tplset_id_valid(json_string_value(id))))
		WERR(w, "id", NULL, "must be 1 to %d characters of a-z, 0-9, '_' and '-'",
		     TPLSET_ID_MAX);
	ts->id = xstrdup(id && json_is_string(id) ? json_string_value(id) : "");

	const json_t *name = json_object_get(def, "name");
	if (name && !json_is_null(name) && plain_text(w, name, "name", TPLSET_NAME_MAX, 0) < 0)
		return -1;
	const json_t *desc = json_object_get(def, "description");
	if (desc && !json_is_null(desc) && plain_text(w, desc, "description", DESC_MAX, 1) < 0)
		return -1;

	const json_t *dl = json_object_get(def, "default_lang");
	if (dl && !json_is_null(dl)) {
		if (!json_is_string(dl) || !lang_valid(json_string_value(dl)))
			WERR(w, "default_lang", NULL,
			     "must be 2 to %d characters of a-z and '-' (fa, en, fa-af)",
			     TPLSET_LANG_MAX);
		else
			snprintf(ts->default_lang, sizeof ts->default_lang, "%s",
			         json_string_value(dl));
	}

	const json_t *vars = json_object_get(def, "variants");
	if (!vars)
		return werr(w, "variants", NULL, "required: a list of 1 to %d variants",
		            TPLSET_MAX_VARIANTS);
	if (!json_is_array(vars) || json_array_size(vars) == 0 ||
	    json_array_size(vars) > TPLSET_MAX_VARIANTS)
		return werr(w, "variants", NULL, "must be a list of 1 to %d variants",
		            TPLSET_MAX_VARIANTS);
	size_t i;
	json_t *vo;
	json_array_foreach(vars, i, vo)
	{
		if (parse_variant(w, ts, vo, i) < 0)
			return -1;
	}
	return 0;
}

void tplset_free(struct tplset *ts)
{
	if (!ts)
		return;
	for (size_t i = 0; i < ts->n; i++)
		variant_clear(&ts->v[i]);
	free(ts->id);
	free(ts);
}

struct first_err {
	struct tmpl_error *err;
};

static void keep_first(void *arg, const char *field, const struct tmpl_error *e)
{
	struct first_err *fe = arg;
	snprintf(field_buf, sizeof field_buf, "%s", field);
	if (fe->err)
		*fe->err = *e;
}

int tplset_parse(const json_t *def, struct tplset **out, const char **field, struct tmpl_error *err)
{
	struct first_err fe = {err};
	struct walk w = {1, keep_first, &fe, 0};
	struct tplset *ts = xcalloc(1, sizeof *ts);

	*out = NULL;
	field_buf[0] = '\0';
	if (parse_def(&w, def, ts) < 0 || w.nerr > 0) {
		tplset_free(ts);
		if (field)
			*field = field_buf;
		return -EINVAL;
	}
	if (field)
		*field = NULL;
	*out = ts;
	return 0;
}

int tplset_check(const json_t *def,
                 void (*report)(void *arg, const char *field, const struct tmpl_error *err),
                 void *arg)
{
	struct walk w = {0, report, arg, 0};
	struct tplset *ts = xcalloc(1, sizeof *ts);
	parse_def(&w, def, ts);
	tplset_free(ts);
	return w.nerr;
}

const char *tplset_id(const struct tplset *ts)
{
	return ts->id;
}

/* ---------------------------------------------------------------- rendering */

typedef int (*lang_match)(const char *want, const char *have);

static int m_exact(const char *want, const char *have)
{
	return lang_eqn(want, have, SIZE_MAX);
}

static int m_base(const char *want, const char *have)
{
	size_t b = lang_base_len(want);
	return have[b] == '\0' && lang_eqn(want, have, b);
}

static int m_same_base(const char *want, const char *have)
{
	size_t b = lang_base_len(want);
	return lang_base_len(have) == b && lang_eqn(want, have, b);
}

static const struct variant *pick(const struct tplset *ts, enum kind k, const char *lang)
{
	static const lang_match ladder[] = {m_exact, m_base, m_same_base};
	int have_kind = 0;
	for (size_t i = 0; i < ts->n && !have_kind; i++)
		have_kind = ts->v[i].kind == k;
	enum kind use = have_kind ? k : K_ANY;
	const char *wants[2] = {lang && *lang ? lang : NULL,
	                        ts->default_lang[0] ? ts->default_lang : NULL};
	for (size_t wi = 0; wi < 2; wi++) {
		if (!wants[wi])
			continue;
		for (size_t m = 0; m < ARRAY_SIZE(ladder); m++)
			for (size_t i = 0; i < ts->n; i++)
				if (ts->v[i].kind == use && ladder[m](wants[wi], ts->v[i].lang))
					return &ts->v[i];
	}
	for (size_t i = 0; i < ts->n; i++)
		if (ts->v[i].kind == use)
			return &ts->v[i];
	return NULL;
}

static int render_part(const struct variant *v, const char *part, const struct tmpl *t,
                       const json_t *ctx, const struct tmpl_opts *o, char **out,
                       struct tmpl_error *err)
{
	struct buf b;
	struct tmpl_error te;
	memset(&te, 0, sizeof te);
	buf_init(&b, TPLSET_MAX_OUTPUT);
	int r = tmpl_render(t, ctx, o, &b, &te);
	if (r < 0) {
		buf_free(&b);
		if (err) {
			char reason[sizeof err->reason];
			*err = te;
			if (snprintf(reason, sizeof reason, "variants[%zu].%s: %s", v->index, part,
			             te.reason) < 0)
				reason[0] = '\0';
			memcpy(err->reason, reason, sizeof reason);
		}
		return r;
	}
	*out = b.p ? buf_steal(&b) : xstrdup("");
	buf_free(&b);
	return 0;
}

/* A subject is one line: control characters from substituted values
 * (a name with a line break) become spaces. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

int tplset_render(const struct tplset *ts, const char *kind, const char *lang, const json_t *ctx,
                  const char *zone, struct tpl_rendered *out, struct tmpl_error *err)
{
	struct tmpl_opts base;
	memset(&base, 0, sizeof base);
	base.zone = zone;
	return tplset_render_opts(ts, kind, lang, ctx, &base, out, err);
}

int tplset_render_opts(const struct tplset *ts, const char *kind, const char *lang,
                       const json_t *ctx, const struct tmpl_opts *base, struct tpl_rendered *out,
                       struct tmpl_error *err)
{
	memset(out, 0, sizeof *out);
	if (err)
		memset(err, 0, sizeof *err);
	int k = kind_parse(kind);
	if (k < 0 || k == K_ANY) {
		if (err)
			snprintf(err->reason, sizeof err->reason, "unknown channel kind");
		return -EINVAL;
	}
	const struct variant *v = pick(ts, (enum kind)k, lang);
	if (!v) {
		if (err)
			snprintf(err->reason, sizeof err->reason, "no variant for %s", kind);
		return -ENOENT;
	}
	struct tmpl_opts o;
	if (base)
		o = *base;
	else
		memset(&o, 0, sizeof o);
	o.html = 0;
	o.lang = v->lang;
	int r = render_part(v, "text", v->text, ctx, &o, &out->text, err);
	if (r == 0 && k == K_EMAIL) {
		if (v->subject)
			r = render_part(v, "subject", v->subject, ctx, &o, &out->subject, err);
		else
			out->subject = xstrdup("");
		if (r == 0)
			one_line(out->subject);
		if (r == 0 && v->html) {
			struct tmpl_opts oh = o;
			oh.html = 1;
			r = render_part(v, "html", v->html, ctx, &oh, &out->html, err);
		}
	}
	if (r < 0) {
		tpl_rendered_free(out);
		return r;
	}
	snprintf(out->lang, sizeof out->lang, "%s", v->lang);
	return 0;
}

void tpl_rendered_free(struct tpl_rendered *r)
{
	if (!r)
		return;
	free(r->subject);
	free(r->text);
	free(r->html);
	r->subject = r->text = r->html = NULL;
}

/* ---------------------------------------------------------------- context */

static const char *const ctx_strings[] = {"id",   "name", "first_name", "last_name",
                                          "lang", "tz",   "tier",       "ref"};

static int is_ctx_string(const char *k)
{
	for (size_t i = 0; i < ARRAY_SIZE(ctx_strings); i++)
		if (strcmp(k, ctx_strings[i]) == 0)
			return 1;
	return 0;
}

static void ctx_finish(json_t *o, const json_t *event, const json_t *vars)
{
	if (!json_object_get(o, "points"))
		json_object_set_new(o, "points", json_integer(0));
	if (!json_object_get(o, "attrs"))
		json_object_set_new(o, "attrs", json_object());
	if (!json_object_get(o, "tags"))
		json_object_set_new(o, "tags", json_array());
	if (json_is_object(vars))
		json_object_update(o, (json_t *)vars);
	if (event)
		json_object_set(o, "event", (json_t *)event);
	if (vars)
		json_object_set(o, "vars", (json_t *)vars);
}

static const char *rstr(const redisReply *r)
{
	if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS))
		return NULL;
	return r->str;
}

json_t *tpl_context(const redisReply *contact, const json_t *event, const json_t *vars)
{
	privacy_open_reply(contact); /* names sealed with [privacy] key_file, opened in place */
	json_t *o = json_object();
	json_t *attrs = json_object();
	const redisReply *h = contact && contact->type == REDIS_REPLY_ARRAY ? contact : NULL;

	for (size_t i = 0; h && i + 1 < h->elements; i += 2) {
		const char *k = rstr(h->element[i]), *v = rstr(h->element[i + 1]);
		int64_t n;
		if (!k || !v)
			continue;
		if (is_ctx_string(k)) {
			json_t *s = json_string(v); /* NULL for invalid UTF-8: skipped */
			if (s)
				json_object_set_new(o, k, s);
		} else if (strcmp(k, "points") == 0 || strcmp(k, "created") == 0 ||
		           strcmp(k, "last_purchase") == 0) {
			if (parse_i64(v, INT64_MIN, INT64_MAX, &n) == 0)
				json_object_set_new(o, k, json_integer(n));
		} else if (strcmp(k, "tags") == 0) {
			json_t *t = json_loads(v, 0, NULL);
			if (json_is_array(t))
				json_object_set_new(o, "tags", t);
			else
				json_decref(t);
		} else if (strncmp(k, "x:", 2) == 0 && k[2]) {
			json_t *x = json_loads(v, JSON_DECODE_ANY, NULL);
			if (!x)
				x = json_string(v);
			if (x)
				json_object_set_new(attrs, k + 2, x);
		}
	}
	json_object_set_new(o, "attrs", attrs);
	ctx_finish(o, event, vars);
	return o;
}

json_t *tpl_context_json(const json_t *contact, const json_t *event, const json_t *vars)
{
	json_t *o = json_object();
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)contact, k, v)
	{
		if (is_ctx_string(k) && json_is_string(v)) {
			json_object_set(o, k, v);
		} else if (strcmp(k, "points") == 0 || strcmp(k, "created") == 0 ||
		           strcmp(k, "last_purchase") == 0) {
			int64_t n;
			if (json_is_integer(v))
				json_object_set(o, k, v);
			else if (json_is_string(v) &&
			         parse_i64(json_string_value(v), INT64_MIN, INT64_MAX, &n) == 0)
				json_object_set_new(o, k, json_integer(n));
		} else if ((strcmp(k, "attrs") == 0 && json_is_object(v)) ||
		           (strcmp(k, "tags") == 0 && json_is_array(v))) {
			json_object_set_new(o, k, json_deep_copy(v));
		}
	}
	ctx_finish(o, event, vars);
	return o;
}

/* ---------------------------------------------------------------- cache */

struct cache_entry {
	struct tplset *ts;
	long long v;
	uint64_t used;
};

struct tplset_cache {
	struct cache_entry *e;
	size_t n, max;
	uint64_t tick;
};

struct tplset_cache *tplset_cache_new(size_t max)
{
	struct tplset_cache *c = xcalloc(1, sizeof *c);
	c->max = max ? max : 1;
	c->e = xcalloc(c->max, sizeof *c->e);
	return c;
}

const struct tplset *tplset_cache_get(struct tplset_cache *c, const char *id, long long v)
{
	for (size_t i = 0; i < c->n; i++) {
		if (c->e[i].v == v && strcmp(c->e[i].ts->id, id) == 0) {
			c->e[i].used = ++c->tick;
			return c->e[i].ts;
		}
	}
	return NULL;
}

static void cache_drop(struct tplset_cache *c, size_t i)
{
	tplset_free(c->e[i].ts);
	c->e[i] = c->e[--c->n];
}

void tplset_cache_put(struct tplset_cache *c, struct tplset *ts, long long v)
{
	for (size_t i = 0; i < c->n;) {
		if (strcmp(c->e[i].ts->id, ts->id) == 0 && c->e[i].ts != ts)
			cache_drop(c, i);
		else
			i++;
	}
	for (size_t i = 0; i < c->n; i++) {
		if (c->e[i].ts == ts) { /* the same set again: just refresh */
			c->e[i].v = v;
			c->e[i].used = ++c->tick;
			return;
		}
	}
	if (c->n == c->max) {
		size_t old = 0;
		for (size_t i = 1; i < c->n; i++)
			if (c->e[i].used < c->e[old].used)
				old = i;
		cache_drop(c, old);
	}
	c->e[c->n].ts = ts;
	c->e[c->n].v = v;
	c->e[c->n].used = ++c->tick;
	c->n++;
}

void tplset_cache_free(struct tplset_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		tplset_free(c->e[i].ts);
	free(c->e);
	free(c);
}
