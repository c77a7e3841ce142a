/*
 * template.c - the Mustache-style template engine: a compiler from source
 * text to a flat array of nodes, and a renderer that walks them against a
 * jansson context with a small stack of section contexts.
 *
 * Owns: the compiled template (a private copy of the source, the node array,
 * path segments, string literals and filter arguments), all freed by
 * tmpl_free().  The renderer owns only its scratch buffers for one call.
 * Never touches: the context (read only), the output buffer before its end
 * (it only appends), logging (errors are returned in struct tmpl_error:
 * templates are marketers' data, and values may be personal data).
 * Limits: TMPL_MAX_SRC bytes of valid UTF-8; sections nested at most
 * TMPL_MAX_DEPTH deep; TMPL_MAX_FILTERS pipe stages and TMPL_MAX_PATH path
 * segments per tag; date formats of at most TMPL_FMT_MAX bytes; one render
 * visits at most TMPL_MAX_STEPS nodes (arrays repeat sections, so nested
 * sections over arrays could otherwise take exponential time); the output
 * and every intermediate value are capped by the output buffer's max.
 * No partials, no delimiter changes, no lambdas.  The one call out is the
 * track filter: it checks the URL (tmpl_url_check) and hands it to the
 * caller's opts.link hook, which decides what is shown (links.c makes a
 * tracked short link); without a hook the URL is shown unchanged.
 * Date filters use tz.c and jalali.c, so rendering belongs to the loop
 * thread like them.
 */
#include "template.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "jalali.h"
#include "text.h"
#include "tz.h"

#define TMPL_FMT_MAX 64
/* Epoch milliseconds accepted by the date filters: years 0001..9999. */
#define TMPL_MS_MIN (-62135596800000LL)
#define TMPL_MS_MAX (253402300799999LL)

enum tmpl_ntype { TN_TEXT, TN_VAR, TN_SECTION, TN_INVERTED };

enum tmpl_fkind {
	TF_DEFAULT,
	TF_DATE,
	TF_JDATE,
	TF_FA,
	TF_NUM,
	TF_UPPER,
	TF_LOWER,
	TF_URL,
	TF_TRACK
};

struct tmpl_stage {
	enum tmpl_fkind kind;
	char *arg; /* default text or date format; NULL when none */
	size_t arglen;
};

struct tmpl_node {
	enum tmpl_ntype type;
	int raw;     /* VAR: never HTML-escaped */
	size_t off;  /* byte offset of the text or of the tag's "{{" */
	size_t len;  /* TEXT: bytes; SECTION: length of the name */
	size_t name; /* SECTION: offset of the trimmed name in src */
	char **path; /* VAR/SECTION: segments; npath == 0 means "." */
	int npath;
	char *lit; /* VAR: a string literal instead of a path */
	size_t litlen;
	struct tmpl_stage *stages;
	int nstages;
	size_t end; /* SECTION: index of the node after the matching close */
};

struct tmpl {
	char *src;
	size_t srclen;
	struct tmpl_node *nodes;
	size_t n, cap;
};

/* ---- errors -------------------------------------------------------------- */

static void tmpl_pos(const char *src, size_t off, struct tmpl_error *err)
{
	int line = 1, col = 1;

	for (size_t i = 0; i < off && src[i]; i++) {
		unsigned char c = (unsigned char)src[i];
		if (c == '\n') {
			line++;
			col = 1;
		} else if ((c & 0xC0) != 0x80) {
			col++;
		}
	}
	err->line = line;
	err->col = col;
	err->offset = off;
}

static int tmpl_fail(const char *src, size_t off, struct tmpl_error *err, int rc, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));

static int tmpl_fail(const char *src, size_t off, struct tmpl_error *err, int rc, const char *fmt,
                     ...)
{
	va_list ap;

	if (!err)
		return rc;
	if (src) {
		tmpl_pos(src, off, err);
	} else {
		err->line = err->col = 0;
		err->offset = 0;
	}
	va_start(ap, fmt);
	vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
	va_end(ap);
	return rc;
}

/* A short, printable excerpt of a name for an error message. */
static const char *tmpl_excerpt(const char *s, size_t n, char *out, size_t outsz)
{
	size_t j;

	for (j = 0; j < n && j + 4 < outsz; j++) {
		unsigned char c = (unsigned char)s[j];
		out[j] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (j < n) {
		/* cut at a character boundary, then mark the cut */
		while (j > 0 && ((unsigned char)s[j] & 0xC0) == 0x80)
			j--;
		memcpy(out + j, "...", 3);
		j += 3;
	}
	out[j] = '\0';
	return out;
}

/* ---- compiled form ------------------------------------------------------- */

static void tmpl_node_free(struct tmpl_node *nd)
{
	for (int i = 0; i < nd->npath; i++)
		free(nd->path[i]);
	free(nd->path);
	free(nd->lit);
	for (int i = 0; i < nd->nstages; i++)
		free(nd->stages[i].arg);
	free(nd->stages);
}

void tmpl_free(struct tmpl *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		tmpl_node_free(&t->nodes[i]);
	free(t->nodes);
	free(t->src);
	free(t);
}

static struct tmpl_node *tmpl_push(struct tmpl *t, enum tmpl_ntype type, size_t off)
{
	struct tmpl_node *nd;

	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->nodes = xrealloc(t->nodes, t->cap * sizeof(*t->nodes));
	}
	nd = &t->nodes[t->n++];
	memset(nd, 0, sizeof(*nd));
	nd->type = type;
	nd->off = off;
	return nd;
}

static void tmpl_text(struct tmpl *t, size_t from, size_t to)
{
	if (to > from) {
		struct tmpl_node *nd = tmpl_push(t, TN_TEXT, from);
		nd->len = to - from;
	}
}

/* ---- tag parser ---------------------------------------------------------- */

struct tmpl_parser {
	const char *src;
	size_t pos, end; /* the tag's content: src[pos..end) */
	struct tmpl_error *err;
};

static int tp_is_space(char c)
{
	return c == ' ' || c == '\t';
}

static void tp_skip(struct tmpl_parser *p)
{
	while (p->pos < p->end && tp_is_space(p->src[p->pos]))
		p->pos++;
}

static int tp_is_name(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c >= 0x80;
}

/* A "..." literal with \" and \\ escapes; *out is a new string. */
static int tp_string(struct tmpl_parser *p, char **out, size_t *outlen)
{
	size_t start = p->pos, i = p->pos + 1;
	struct buf b;

	buf_init(&b, 0);
	for (;;) {
		if (i >= p->end) {
			buf_free(&b);
			return tmpl_fail(p->src, start, p->err, -EINVAL, "unterminated string");
		}
		char c = p->src[i];
		if (c == '"')
			break;
		if (c == '\\') {
			if (i + 1 < p->end && (p->src[i + 1] == '"' || p->src[i + 1] == '\\')) {
				buf_append(&b, &p->src[i + 1], 1);
				i += 2;
				continue;
			}
			buf_free(&b);
			return tmpl_fail(p->src, i, p->err, -EINVAL,
			                 "unknown escape in string (only \\\" and \\\\)");
		}
		buf_append(&b, &c, 1);
		i++;
	}
	p->pos = i + 1;
	*outlen = b.len;
	*out = b.p ? buf_steal(&b) : xstrdup("");
	return 0;
}

/* A dotted path, or "." for the current section value. */
static int tp_path(struct tmpl_parser *p, struct tmpl_node *nd)
{
	size_t start = p->pos;

	if (p->pos < p->end && p->src[p->pos] == '.' &&
	    (p->pos + 1 == p->end || !tp_is_name((unsigned char)p->src[p->pos + 1]))) {
		p->pos++;
		return 0; /* npath == 0: "." */
	}
	for (;;) {
		size_t s = p->pos;
		while (p->pos < p->end && tp_is_name((unsigned char)p->src[p->pos]))
			p->pos++;
		if (p->pos == s) {
			if (p->pos >= p->end || tp_is_space(p->src[p->pos]) ||
			    p->src[p->pos] == '|')
				return tmpl_fail(p->src, p->pos, p->err, -EINVAL,
				                 p->pos == start ? "expected a name"
				                                 : "empty name after '.'");
			return tmpl_fail(p->src, p->pos, p->err, -EINVAL,
			                 "unexpected character '%c' in a name",
			                 p->src[p->pos] < 0x20 ? '?' : p->src[p->pos]);
		}
		if (nd->npath == TMPL_MAX_PATH)
			return tmpl_fail(p->src, start, p->err, -EINVAL,
			                 "name has more than %d parts", TMPL_MAX_PATH);
		nd->path = xrealloc(nd->path, (size_t)(nd->npath + 1) * sizeof(*nd->path));
		nd->path[nd->npath++] = xstrndup(p->src + s, p->pos - s);
		if (p->pos < p->end && p->src[p->pos] == '.') {
			p->pos++;
			continue;
		}
		return 0;
	}
}

/* Check a date format: pattern letters y M d E H m s, '...' literal text. */
static int tmpl_check_fmt(const char *f, size_t n, const char **why)
{
	size_t i = 0;

	if (n > TMPL_FMT_MAX) {
		*why = "date format longer than 64 bytes";
		return -1;
	}
	while (i < n) {
		char c = f[i];
		size_t run = 1;

		if (c == '\'') {
			i++;
			if (i < n && f[i] == '\'') {
				i++;
				continue;
			}
			while (i < n && f[i] != '\'')
				i++;
			if (i >= n) {
				*why = "unterminated quote in date format";
				return -1;
			}
			i++;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
			i++;
			continue;
		}
		while (i + run < n && f[i + run] == c)
			run++;
		switch (c) {
		case 'y':
			if (run == 3 || run > 4) {
				*why = "use y, yy or yyyy for the year";
				return -1;
			}
			break;
		case 'M':
			if (run > 4) {
				*why = "use M, MM, MMM or MMMM for the month";
				return -1;
			}
			break;
		case 'E':
			if (run > 4) {
				*why = "use EEE or EEEE for the weekday";
				return -1;
			}
			break;
		case 'd':
		case 'H':
		case 'm':
		case 's':
			if (run > 2) {
				*why = "use one or two letters for d, H, m and s";
				return -1;
			}
			break;
		default:
			*why = "unknown letter in date format (quote text with '...')";
			return -1;
		}
		i += run;
	}
	return 0;
}

static const struct {
	const char *name;
	enum tmpl_fkind kind;
	int arg; /* 0 none, 1 optional */
} tmpl_filters[] = {
    {"date", TF_DATE, 1},   {"jdate", TF_JDATE, 1}, {"fa", TF_FA, 0},   {"num", TF_NUM, 0},
    {"upper", TF_UPPER, 0}, {"lower", TF_LOWER, 0}, {"url", TF_URL, 0}, {"track", TF_TRACK, 0},
};

static int tp_stage(struct tmpl_parser *p, struct tmpl_node *nd)
{
	struct tmpl_stage st = {0};
	size_t start = p->pos;
	size_t k;
	int rc;
	char ex[48];

	if (nd->nstages == TMPL_MAX_FILTERS)
		return tmpl_fail(p->src, start, p->err, -EINVAL, "more than %d filters in one tag",
		                 TMPL_MAX_FILTERS);
	/* A tracked link is an opaque code: nothing may change it afterwards. */
	if (nd->nstages > 0 && nd->stages[nd->nstages - 1].kind == TF_TRACK)
		return tmpl_fail(p->src, start, p->err, -EINVAL, "'track' must be the last filter");
	if (p->pos < p->end && p->src[p->pos] == '"') {
		st.kind = TF_DEFAULT;
		rc = tp_string(p, &st.arg, &st.arglen);
		if (rc < 0)
			return rc;
		goto add;
	}
	while (p->pos < p->end && tp_is_name((unsigned char)p->src[p->pos]))
		p->pos++;
	if (p->pos == start)
		return tmpl_fail(p->src, start, p->err, -EINVAL,
		                 "expected a filter or a \"default\" after '|'");
	for (k = 0; k < ARRAY_SIZE(tmpl_filters); k++)
		if (strlen(tmpl_filters[k].name) == p->pos - start &&
		    memcmp(tmpl_filters[k].name, p->src + start, p->pos - start) == 0)
			break;
	if (k == ARRAY_SIZE(tmpl_filters))
		return tmpl_fail(p->src, start, p->err, -EINVAL, "unknown filter '%s'",
		                 tmpl_excerpt(p->src + start, p->pos - start, ex, sizeof(ex)));
	st.kind = tmpl_filters[k].kind;
	tp_skip(p);
	if (p->pos < p->end && p->src[p->pos] == ':') {
		size_t q;
		const char *why = NULL;

		if (!tmpl_filters[k].arg)
			return tmpl_fail(p->src, p->pos, p->err, -EINVAL,
			                 "filter '%s' takes no argument", tmpl_filters[k].name);
		p->pos++;
		tp_skip(p);
		q = p->pos;
		if (p->pos >= p->end || p->src[p->pos] != '"')
			return tmpl_fail(p->src, p->pos, p->err, -EINVAL,
			                 "expected a \"format\" after ':'");
		rc = tp_string(p, &st.arg, &st.arglen);
		if (rc < 0)
			return rc;
		if (tmpl_check_fmt(st.arg, st.arglen, &why) < 0) {
			free(st.arg);
			return tmpl_fail(p->src, q, p->err, -EINVAL, "%s", why);
		}
	}
add:
	nd->stages = xrealloc(nd->stages, (size_t)(nd->nstages + 1) * sizeof(*nd->stages));
	nd->stages[nd->nstages++] = st;
	return 0;
}

/* Variable content: ("literal" | path) { '|' ( "default" | filter[:"arg"] ) } */
static int tp_var(struct tmpl_parser *p, struct tmpl_node *nd)
{
	int rc;

	tp_skip(p);
	if (p->pos >= p->end)
		return tmpl_fail(p->src, p->pos, p->err, -EINVAL, "empty tag");
	if (p->src[p->pos] == '"')
		rc = tp_string(p, &nd->lit, &nd->litlen);
	else
		rc = tp_path(p, nd);
	if (rc < 0)
		return rc;
	for (;;) {
		tp_skip(p);
		if (p->pos >= p->end)
			return 0;
		if (p->src[p->pos] != '|')
			return tmpl_fail(p->src, p->pos, p->err, -EINVAL, "expected '|' or '}}'");
		p->pos++;
		tp_skip(p);
		rc = tp_stage(p, nd);
		if (rc < 0)
			return rc;
	}
}

/* Section content: a path only; name and len give its trimmed text. */
static int tp_section(struct tmpl_parser *p, struct tmpl_node *nd, size_t *name, size_t *len)
{
	int rc;

	tp_skip(p);
	if (p->pos >= p->end)
		return tmpl_fail(p->src, p->pos, p->err, -EINVAL, "section without a name");
	if (p->src[p->pos] == '"')
		return tmpl_fail(p->src, p->pos, p->err, -EINVAL, "a section takes a name");
	*name = p->pos;
	rc = tp_path(p, nd);
	if (rc < 0)
		return rc;
	*len = p->pos - *name;
	tp_skip(p);
	if (p->pos < p->end)
		return tmpl_fail(p->src, p->pos, p->err, -EINVAL,
		                 p->src[p->pos] == '|' ? "sections take no filters or defaults"
		                                       : "expected '}}'");
	return 0;
}

/* ---- compiler ------------------------------------------------------------ */

/* Find "}}" closing a tag whose content starts at i: strings are skipped; a
 * newline, "{{" or the end of the source first means the tag is unclosed. */
static int tmpl_find_close(const char *s, size_t i, size_t *close)
{
	while (s[i]) {
		if (s[i] == '"') {
			i++;
			while (s[i] && s[i] != '"' && s[i] != '\n') {
				if (s[i] == '\\' && s[i + 1] && s[i + 1] != '\n')
					i++;
				i++;
			}
			if (s[i] != '"')
				return -1;
			i++;
			continue;
		}
		if (s[i] == '}' && s[i + 1] == '}') {
			*close = i;
			return 0;
		}
		if (s[i] == '\n' || (s[i] == '{' && s[i + 1] == '{'))
			return -1;
		i++;
	}
	return -1;
}

/* Offset of the first invalid UTF-8 byte, or n when all is valid. */
static size_t tmpl_bad_utf8(const char *s, size_t n)
{
	size_t i = 0;
	uint32_t cp;

	while (i < n) {
		if ((unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		int l = utf8_decode(s + i, n - i, &cp);
		if (l < 0)
			return i;
		i += (size_t)l;
	}
	return n;
}

int tmpl_compile(const char *src, struct tmpl **out, struct tmpl_error *err)
{
	struct tmpl *t;
	size_t n, i = 0, lit = 0, bad;
	size_t open[TMPL_MAX_DEPTH]; /* node index of each open section */
	int depth = 0, rc = 0;
	char ex[48], ex2[48];

	*out = NULL;
	if (err)
		memset(err, 0, sizeof(*err));
	if (!src)
		return tmpl_fail(NULL, 0, err, -EINVAL, "no template");
	n = strnlen(src, TMPL_MAX_SRC + 1);
	if (n > TMPL_MAX_SRC)
		return tmpl_fail(NULL, 0, err, -E2BIG, "template larger than %d bytes",
		                 TMPL_MAX_SRC);
	bad = tmpl_bad_utf8(src, n);
	if (bad < n)
		return tmpl_fail(src, bad, err, -EINVAL, "invalid UTF-8");

	t = xcalloc(1, sizeof(*t));
	t->src = xstrndup(src, n);
	t->srclen = n;
	src = t->src;

	while (i < n) {
		size_t tag = i, cs, ce, close, after, ls, q;
		struct tmpl_parser p;
		struct tmpl_node *nd;
		char sigil;
		int triple = 0;

		if (!(src[i] == '{' && src[i + 1] == '{')) {
			i++;
			continue;
		}
		sigil = src[i + 2];
		if (sigil == '{') {
			triple = 1;
			cs = i + 3;
		} else if (sigil == '!' || sigil == '#' || sigil == '^' || sigil == '/' ||
		           sigil == '&' || sigil == '>' || sigil == '=') {
			cs = i + 3;
		} else {
			cs = i + 2;
		}
		if (sigil == '!') {
			const char *e = strstr(src + cs, "}}");
			if (!e) {
				rc = tmpl_fail(src, tag, err, -EINVAL, "unclosed comment");
				goto fail;
			}
			close = (size_t)(e - src);
		} else if (tmpl_find_close(src, cs, &close) < 0) {
			rc = tmpl_fail(src, tag, err, -EINVAL,
			               "unclosed tag (no '}}' on this line)");
			goto fail;
		}
		ce = close;
		after = close + 2;
		if (triple) {
			if (src[after] != '}') {
				rc = tmpl_fail(src, close, err, -EINVAL,
				               "expected '}}}' to close '{{{'");
				goto fail;
			}
			after++;
		}
		if (sigil == '>') {
			rc = tmpl_fail(src, tag, err, -EINVAL,
			               "partials ({{>...}}) are not supported");
			goto fail;
		}
		if (sigil == '=') {
			rc = tmpl_fail(src, tag, err, -EINVAL,
			               "delimiter changes ({{=...=}}) are not supported");
			goto fail;
		}

		/* A section or comment tag alone on its line takes the line with
		 * it (Mustache's "standalone" rule), so block templates do not
		 * leave blank lines behind. */
		ls = tag;
		if (sigil == '!' || sigil == '#' || sigil == '^' || sigil == '/') {
			while (ls > lit && tp_is_space(src[ls - 1]))
				ls--;
			q = after;
			while (tp_is_space(src[q]))
				q++;
			if ((ls == 0 || src[ls - 1] == '\n') &&
			    (src[q] == '\0' || src[q] == '\n' ||
			     (src[q] == '\r' && src[q + 1] == '\n'))) {
				if (src[q] == '\r')
					q++;
				if (src[q] == '\n')
					q++;
				after = q;
			} else {
				ls = tag;
			}
		}
		tmpl_text(t, lit, ls);
		lit = i = after;
		if (sigil == '!')
			continue;

		p.src = src;
		p.pos = cs;
		p.end = ce;
		p.err = err;
		if (sigil == '#' || sigil == '^') {
			size_t name = 0, len = 0;
			if (depth == TMPL_MAX_DEPTH) {
				rc = tmpl_fail(src, tag, err, -EINVAL,
				               "sections nested deeper than %d", TMPL_MAX_DEPTH);
				goto fail;
			}
			nd = tmpl_push(t, sigil == '#' ? TN_SECTION : TN_INVERTED, tag);
			rc = tp_section(&p, nd, &name, &len);
			if (rc < 0)
				goto fail;
			nd->name = name;
			nd->len = len;
			open[depth++] = t->n - 1;
		} else if (sigil == '/') {
			struct tmpl_node tmp = {0}, *o;
			size_t name = 0, len = 0;

			rc = tp_section(&p, &tmp, &name, &len);
			tmpl_node_free(&tmp);
			if (rc < 0)
				goto fail;
			if (depth == 0) {
				rc = tmpl_fail(src, tag, err, -EINVAL,
				               "closing tag '%s' without an open section",
				               tmpl_excerpt(src + name, len, ex, sizeof(ex)));
				goto fail;
			}
			o = &t->nodes[open[depth - 1]];
			if (o->len != len || memcmp(src + o->name, src + name, len) != 0) {
				struct tmpl_error at;
				tmpl_pos(src, o->off, &at);
				rc = tmpl_fail(
				    src, tag, err, -EINVAL,
				    "closing tag '%s' does not match section '%s' opened at "
				    "line %d, column %d",
				    tmpl_excerpt(src + name, len, ex, sizeof(ex)),
				    tmpl_excerpt(src + o->name, o->len, ex2, sizeof(ex2)), at.line,
				    at.col);
				goto fail;
			}
			o->end = t->n;
			depth--;
		} else {
			nd = tmpl_push(t, TN_VAR, tag);
			nd->raw = triple || sigil == '&';
			rc = tp_var(&p, nd);
			if (rc < 0)
				goto fail;
		}
	}
	if (depth > 0) {
		struct tmpl_node *o = &t->nodes[open[depth - 1]];
		rc = tmpl_fail(src, o->off, err, -EINVAL, "section '%s' is never closed",
		               tmpl_excerpt(src + o->name, o->len, ex, sizeof(ex)));
		goto fail;
	}
	tmpl_text(t, lit, n);
	*out = t;
	return 0;
fail:
	tmpl_free(t);
	return rc;
}

/* ---- values -------------------------------------------------------------- */

/* A value between pipe stages. */
struct tval {
	int present;
	int numeric; /* from a JSON number or num: ',' and '.' are separators */
	struct buf *b;
};

struct rstate {
	const struct tmpl *t;
	int html;
	const char *zone;
	int fa; /* Persian names */
	struct buf *out;
	const json_t *stack[TMPL_MAX_DEPTH + 1];
	int sp;
	long steps;
	struct buf s1, s2; /* scratch for pipe stages */
	size_t fail_off;   /* the tag being rendered, for errors */
	int (*link)(void *arg, const char *url, size_t len, struct buf *out);
	void *link_arg;
	const char *why; /* reason of an -EINVAL render error (static text) */
};

static const json_t *tmpl_lookup(const struct rstate *r, const struct tmpl_node *nd)
{
	const json_t *v = NULL;

	if (nd->npath == 0)
		return r->stack[r->sp - 1];
	for (int i = r->sp - 1; i >= 0 && !v; i--)
		if (json_is_object(r->stack[i]))
			v = json_object_get(r->stack[i], nd->path[0]);
	for (int k = 1; k < nd->npath && v; k++) {
		if (json_is_object(v)) {
			v = json_object_get(v, nd->path[k]);
		} else if (json_is_array(v)) {
			int64_t idx;
			if (parse_i64(nd->path[k], 0, 1000000, &idx) < 0)
				return NULL;
			v = json_array_get(v, (size_t)idx);
		} else {
			return NULL;
		}
	}
	return v;
}

static int tmpl_truthy(const json_t *v)
{
	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_TRUE:
		return 1;
	case JSON_STRING:
		return json_string_length(v) > 0;
	case JSON_INTEGER:
		return json_integer_value(v) != 0;
	case JSON_REAL:
		return json_real_value(v) != 0.0;
	case JSON_ARRAY:
		return json_array_size(v) > 0;
	case JSON_OBJECT:
		return json_object_size(v) > 0;
	default:
		return 0;
	}
}

/* The JSON value as text: strings (valid UTF-8, up to a NUL), numbers,
 * true/false; null, objects, arrays and missing values are absent. */
static int tval_from_json(struct tval *v, const json_t *j)
{
	char num[64];

	v->present = 0;
	v->numeric = 0;
	buf_reset(v->b);
	switch (j ? json_typeof(j) : JSON_NULL) {
	case JSON_STRING: {
		const char *s = json_string_value(j);
		size_t n = strlen(s);
		if (!utf8_valid(s, n))
			return 0;
		v->present = 1;
		return buf_append(v->b, s, n);
	}
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(j));
		break;
	case JSON_REAL:
		snprintf(num, sizeof(num), "%.15g", json_real_value(j));
		break;
	case JSON_TRUE:
		v->present = 1;
		return buf_puts(v->b, "true");
	case JSON_FALSE:
		v->present = 1;
		return buf_puts(v->b, "false");
	default:
		return 0;
	}
	v->present = 1;
	v->numeric = strchr(num, 'e') == NULL && strchr(num, 'n') == NULL;
	return buf_puts(v->b, num);
}

/* Append a code point of the Arabic block (U+0600..U+06FF): two bytes. */
static int tmpl_put_arabic(struct buf *b, uint32_t cp)
{
	char u[2] = {(char)(0xC0 | (cp >> 6)), (char)(0x80 | (cp & 0x3F))};

	return buf_append(b, u, 2);
}

/* fa: ASCII and Arabic-Indic digits to Persian ones; in a number also the
 * separators: ',' -> U+066C (Arabic thousands separator) and '.' -> U+066B
 * (Arabic decimal separator). */
static int f_fa(const struct tval *in, struct buf *out)
{
	const char *s = in->b->p ? in->b->p : "";
	size_t n = in->b->len, i = 0;
	int rc = 0;

	while (i < n && rc == 0) {
		uint32_t cp;
		int l = utf8_decode(s + i, n - i, &cp);
		if (l < 0) { /* cannot happen: values are checked; keep the byte */
			rc = buf_append(out, s + i, 1);
			i++;
			continue;
		}
		if (cp >= '0' && cp <= '9')
			rc = tmpl_put_arabic(out, 0x06F0 + (cp - '0'));
		else if (cp >= 0x0660 && cp <= 0x0669)
			rc = tmpl_put_arabic(out, 0x06F0 + (cp - 0x0660));
		else if (in->numeric && cp == ',')
			rc = tmpl_put_arabic(out, 0x066C);
		else if (in->numeric && cp == '.')
			rc = tmpl_put_arabic(out, 0x066B);
		else
			rc = buf_append(out, s + i, (size_t)l);
		i += (size_t)l;
	}
	return rc;
}

/* num: [+-]digits[.digits] (ASCII, Persian or Arabic-Indic digits; '٫' as
 * the decimal point) gets thousands separators; anything else is left as
 * it is.  Input in Persian digits stays Persian. *numeric tells whether it
 * was a number. */
static int f_num(const struct tval *in, struct buf *out, int *numeric, int *persian)
{
	const char *s = in->b->p ? in->b->p : "";
	size_t n = in->b->len, i = 0;
	char digits[64], frac[64];
	size_t nd = 0, nf = 0;
	int sign = 0, point = 0, rc = 0;

	*numeric = 0;
	*persian = 0;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		sign = s[i++];
	while (i < n) {
		uint32_t cp;
		int l = utf8_decode(s + i, n - i, &cp), dv;
		if (l < 0)
			goto asis;
		dv = text_digit_value(cp);
		if (dv >= 0) {
			if (cp > 0x7f)
				*persian = 1;
			if (point ? nf >= sizeof(frac) : nd >= sizeof(digits))
				goto asis;
			if (point)
				frac[nf++] = (char)('0' + dv);
			else
				digits[nd++] = (char)('0' + dv);
		} else if (!point && (cp == '.' || cp == 0x066B)) {
			point = 1;
		} else {
			goto asis;
		}
		i += (size_t)l;
	}
	if (nd == 0 || (point && nf == 0))
		goto asis;
	if (sign == '-')
		rc = buf_append(out, "-", 1);
	for (size_t k = 0; k < nd && rc == 0; k++) {
		if (k > 0 && (nd - k) % 3 == 0)
			rc = buf_append(out, ",", 1);
		if (rc == 0)
			rc = buf_append(out, &digits[k], 1);
	}
	if (point && rc == 0) {
		rc = buf_append(out, ".", 1);
		if (rc == 0)
			rc = buf_append(out, frac, nf);
	}
	*numeric = 1;
	return rc;
asis:
	*persian = 0;
	return buf_append(out, s, n);
}

static int f_case(const struct tval *in, struct buf *out, int upper)
{
	int rc = buf_append(out, in->b->p ? in->b->p : "", in->b->len);

	for (size_t i = 0; rc == 0 && i < out->len; i++) {
		char c = out->p[i];
		if (upper && c >= 'a' && c <= 'z')
			out->p[i] = (char)(c - 'a' + 'A');
		else if (!upper && c >= 'A' && c <= 'Z')
			out->p[i] = (char)(c - 'A' + 'a');
	}
	return rc;
}

/* url: RFC 3986 percent-encoding of everything but unreserved characters. */
static int f_url(const struct tval *in, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;

	for (size_t i = 0; i < in->b->len && rc == 0; i++) {
		unsigned char c = (unsigned char)in->b->p[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			rc = buf_append(out, &c, 1);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			rc = buf_append(out, e, 3);
		}
	}
	return rc;
}

int tmpl_url_check(const char *u, size_t n, const char **why)
{
	static const char url_ctl[] =
	    "track: spaces and control characters are not allowed in a link";
	size_t h, i;

	if (n == 0) {
		*why = "track: the link is empty";
		return -EINVAL;
	}
	if (n > TMPL_URL_MAX) {
		*why = "track: the link is longer than 2048 bytes";
		return -EINVAL;
	}
	if (n > 7 && strncasecmp(u, "http://", 7) == 0) {
		h = 7;
	} else if (n > 8 && strncasecmp(u, "https://", 8) == 0) {
		h = 8;
	} else {
		*why = "track: the link must start with http:// or https://";
		return -EINVAL;
	}
	if (u[h] == '/' || u[h] == '?' || u[h] == '#' || u[h] == '@' || u[h] == ':') {
		*why = "track: the link has no host";
		return -EINVAL;
	}
	for (i = 0; i < n;) {
		unsigned char c = (unsigned char)u[i];
		uint32_t cp;
		int l;

		if (c < 0x80) {
			if (c <= 0x20 || c == 0x7f) {
				*why = url_ctl;
				return -EINVAL;
			}
			i++;
			continue;
		}
		l = utf8_decode(u + i, n - i, &cp);
		if (l < 0) {
			*why = "track: the link is not valid UTF-8";
			return -EINVAL;
		}
		if (cp <= 0x9f) { /* C1 controls */
			*why = url_ctl;
			return -EINVAL;
		}
		i += (size_t)l;
	}
	return 0;
}

/* track: check the URL, then let the caller's link hook shorten it. */
static int f_track(struct rstate *r, const struct tval *in, struct buf *out)
{
	const char *u = in->b->p ? in->b->p : "";
	size_t n = in->b->len;
	const char *why = NULL;
	int rc;

	if (tmpl_url_check(u, n, &why) < 0) {
		r->why = why;
		return -EINVAL;
	}
	if (!r->link)
		return buf_append(out, u, n);
	rc = r->link(r->link_arg, u, n, out);
	if (rc < 0 && rc != -ENOSPC && !r->why)
		r->why = "track: the tracked link could not be made";
	return rc < 0 ? rc : 0;
}

/* ---- dates --------------------------------------------------------------- */

static const char *const tmpl_gmonths_en[12] = {
    "January", "February", "March",     "April",   "May",      "June",
    "July",    "August",   "September", "October", "November", "December",
};
/* Persian names of the Gregorian months, as Iranian calendars print them. */
static const char *const tmpl_gmonths_fa[12] = {
    "ژانویه", "فوریه", "مارس",    "آوریل", "مه",     "ژوئن",
    "ژوئیه",  "اوت",   "سپتامبر", "اکتبر", "نوامبر", "دسامبر",
};
static const char *const tmpl_wdays_en[7] = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
};

struct tmpl_date {
	int y, m, d; /* in the calendar asked for */
	int hour, min, sec;
	int wday; /* 0 = Sunday */
};

static int64_t tmpl_days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int tmpl_gdays(int y, int m)
{
	static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 ? 28 + leap : dim[m - 1];
}

/* n ASCII digits at s into *v; -1 when any is not a digit. */
static int tmpl_digits(const char *s, int n, int *v)
{
	int x = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		x = x * 10 + (s[i] - '0');
	}
	*v = x;
	return 0;
}

/*
 * Parse a date value: epoch milliseconds (digits, optional '-'), an RFC 3339
 * date-time (an instant, shown in zone), or a bare YYYY-MM-DD (a calendar
 * date, shown as it is).  Fills Gregorian fields in *g.  -1 when unparsable.
 */
static int tmpl_parse_date(const char *s, size_t n, const char *zone, struct tmpl_date *g)
{
	int y, mo, d, h = 0, mi = 0, se = 0;
	int64_t ms;
	struct tz_tm tm;
	size_t i;

	if (n == 0 || n > 40)
		return -1;
	for (i = s[0] == '-'; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		;
	if (i == n) { /* [-]digits: epoch milliseconds */
		if (parse_i64(s, TMPL_MS_MIN, TMPL_MS_MAX, &ms) < 0)
			return -1;
		goto instant;
	}
	if (n < 10 || tmpl_digits(s, 4, &y) < 0 || s[4] != '-' || tmpl_digits(s + 5, 2, &mo) < 0 ||
	    s[7] != '-' || tmpl_digits(s + 8, 2, &d) < 0)
		return -1;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > tmpl_gdays(y, mo))
		return -1;
	if (n == 10) {
		int64_t days = tmpl_days_from_civil(y, mo, d);
		g->y = y;
		g->m = mo;
		g->d = d;
		g->hour = g->min = g->sec = 0;
		g->wday = (int)(((days % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
		return 0;
	}
	if (n < 20 || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    tmpl_digits(s + 11, 2, &h) < 0 || s[13] != ':' || tmpl_digits(s + 14, 2, &mi) < 0 ||
	    s[16] != ':' || tmpl_digits(s + 17, 2, &se) < 0 || h > 23 || mi > 59 || se > 60)
		return -1;
	if (se == 60)
		se = 59; /* a leap second shows as :59 */
	i = 19;
	if (s[i] == '.') {
		i++;
		if (i >= n || s[i] < '0' || s[i] > '9')
			return -1;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	ms = (tmpl_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se) * 1000;
	if (i < n && (s[i] == 'Z' || s[i] == 'z') && i + 1 == n) {
		/* UTC */
	} else if (i + 6 == n && (s[i] == '+' || s[i] == '-')) {
		int oh, om;
		if (tmpl_digits(s + i + 1, 2, &oh) < 0 || s[i + 3] != ':' ||
		    tmpl_digits(s + i + 4, 2, &om) < 0 || oh > 23 || om > 59)
			return -1;
		ms -= (s[i] == '+' ? 1 : -1) * (int64_t)(oh * 60 + om) * 60000;
	} else {
		return -1;
	}
	if (ms < TMPL_MS_MIN || ms > TMPL_MS_MAX)
		return -1;
instant:
	if (tz_local(zone ? zone : "UTC", ms, &tm) < 0 && tz_local("UTC", ms, &tm) < 0)
		return -1;
	g->y = tm.year;
	g->m = tm.month;
	g->d = tm.day;
	g->hour = tm.hour;
	g->min = tm.min;
	g->sec = tm.sec;
	g->wday = tm.wday;
	return 0;
}

static int tmpl_fmt_num(struct buf *out, int v, int width)
{
	return buf_printf(out, "%0*d", width, v);
}

/* Format a date by the pattern letters checked at compile time. */
static int tmpl_format_date(const struct tmpl_date *dt, int jalali, int fa, const char *f, size_t n,
                            struct buf *out)
{
	size_t i = 0;
	int rc = 0;

	while (i < n && rc == 0) {
		char c = f[i];
		size_t run = 1;
		const char *name;

		if (c == '\'') {
			i++;
			if (i < n && f[i] == '\'') {
				rc = buf_append(out, "'", 1);
				i++;
				continue;
			}
			size_t s = i;
			while (i < n && f[i] != '\'')
				i++;
			rc = buf_append(out, f + s, i - s);
			i++;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
			rc = buf_append(out, &c, 1);
			i++;
			continue;
		}
		while (i + run < n && f[i + run] == c)
			run++;
		i += run;
		switch (c) {
		case 'y':
			if (run == 2)
				rc = tmpl_fmt_num(out, dt->y % 100, 2);
			else
				rc = tmpl_fmt_num(out, dt->y, run == 4 ? 4 : 1);
			break;
		case 'M':
			if (run <= 2) {
				rc = tmpl_fmt_num(out, dt->m, (int)run);
				break;
			}
			if (jalali)
				name = fa ? jalali_month_name_fa(dt->m)
				          : jalali_month_name_latin(dt->m);
			else
				name = fa ? tmpl_gmonths_fa[dt->m - 1] : tmpl_gmonths_en[dt->m - 1];
			if (run == 3 && !fa)
				rc = buf_append(out, name, jalali ? strlen(name) : 3);
			else
				rc = buf_puts(out, name);
			break;
		case 'd':
			rc = tmpl_fmt_num(out, dt->d, (int)run);
			break;
		case 'E':
			name = fa ? jalali_weekday_fa(dt->wday) : tmpl_wdays_en[dt->wday];
			if (run < 4 && !fa)
				rc = buf_append(out, name, 3);
			else
				rc = buf_puts(out, name);
			break;
		case 'H':
			rc = tmpl_fmt_num(out, dt->hour, (int)run);
			break;
		case 'm':
			rc = tmpl_fmt_num(out, dt->min, (int)run);
			break;
		case 's':
			rc = tmpl_fmt_num(out, dt->sec, (int)run);
			break;
		default: /* refused by tmpl_check_fmt */
			break;
		}
	}
	return rc;
}

/* date / jdate: -1 (value becomes absent) when the input is not a date. */
static int f_date(const struct rstate *r, const struct tval *in, const struct tmpl_stage *st,
                  int jalali, struct buf *out, int *ok)
{
	struct tmpl_date dt;
	const char *f = st->arg ? st->arg : (jalali ? "yyyy/MM/dd" : "yyyy-MM-dd");
	size_t n = st->arg ? st->arglen : strlen(f);

	*ok = 0;
	if (tmpl_parse_date(in->b->p ? in->b->p : "", in->b->len, r->zone, &dt) < 0)
		return 0;
	if (jalali) {
		int jy, jm, jd;
		if (jalali_from_gregorian(dt.y, dt.m, dt.d, &jy, &jm, &jd) < 0)
			return 0;
		dt.y = jy;
		dt.m = jm;
		dt.d = jd;
	}
	*ok = 1;
	return tmpl_format_date(&dt, jalali, r->fa, f, n, out);
}

/* ---- renderer ------------------------------------------------------------ */

static int tmpl_emit(struct rstate *r, const char *s, size_t n, int escape)
{
	size_t i, from = 0;
	int rc = 0;

	if (!escape)
		return buf_append(r->out, s, n);
	for (i = 0; i < n && rc == 0; i++) {
		const char *e;
		switch (s[i]) {
		case '&':
			e = "&amp;";
			break;
		case '<':
			e = "&lt;";
			break;
		case '>':
			e = "&gt;";
			break;
		case '"':
			e = "&quot;";
			break;
		case '\'':
			e = "&#39;";
			break;
		default:
			continue;
		}
		rc = buf_append(r->out, s + from, i - from);
		if (rc == 0)
			rc = buf_puts(r->out, e);
		from = i + 1;
	}
	if (rc == 0)
		rc = buf_append(r->out, s + from, n - from);
	return rc;
}

static int tmpl_var(struct rstate *r, const struct tmpl_node *nd)
{
	struct tval v = {0, 0, &r->s1};
	struct buf *other = &r->s2;
	int rc;

	if (nd->lit) {
		buf_reset(v.b);
		v.present = 1;
		rc = buf_append(v.b, nd->lit, nd->litlen);
	} else {
		rc = tval_from_json(&v, tmpl_lookup(r, nd));
	}
	for (int k = 0; k < nd->nstages && rc == 0; k++) {
		const struct tmpl_stage *st = &nd->stages[k];
		int numeric = v.numeric, persian = 0, ok = 1;

		if (st->kind == TF_DEFAULT) {
			if (!v.present || v.b->len == 0) {
				buf_reset(v.b);
				rc = buf_append(v.b, st->arg, st->arglen);
				v.present = 1;
				v.numeric = 0;
			}
			continue;
		}
		if (!v.present)
			continue;
		buf_reset(other);
		switch (st->kind) {
		case TF_FA:
			rc = f_fa(&v, other);
			break;
		case TF_NUM:
			rc = f_num(&v, other, &numeric, &persian);
			if (!numeric)
				numeric = v.numeric;
			break;
		case TF_UPPER:
		case TF_LOWER:
			rc = f_case(&v, other, st->kind == TF_UPPER);
			break;
		case TF_URL:
			rc = f_url(&v, other);
			numeric = 0;
			break;
		case TF_TRACK:
			rc = f_track(r, &v, other);
			numeric = 0;
			break;
		case TF_DATE:
		case TF_JDATE:
			rc = f_date(r, &v, st, st->kind == TF_JDATE, other, &ok);
			numeric = 0;
			break;
		case TF_DEFAULT:
			break;
		}
		v.b = other;
		other = other == &r->s1 ? &r->s2 : &r->s1;
		v.numeric = numeric;
		v.present = ok;
		if (rc == 0 && persian) {
			/* num on Persian digits: give the Persian form back */
			buf_reset(other);
			rc = f_fa(&v, other);
			v.b = other;
			other = other == &r->s1 ? &r->s2 : &r->s1;
		}
	}
	if (rc < 0)
		return rc;
	if (!v.present)
		return 0;
	return tmpl_emit(r, v.b->p ? v.b->p : "", v.b->len, r->html && !nd->raw);
}

static int tmpl_range(struct rstate *r, size_t from, size_t to)
{
	size_t i = from;
	int rc = 0;

	while (i < to && rc == 0) {
		const struct tmpl_node *nd = &r->t->nodes[i];

		if (++r->steps > TMPL_MAX_STEPS) {
			r->fail_off = nd->off;
			return -E2BIG;
		}
		switch (nd->type) {
		case TN_TEXT:
			rc = buf_append(r->out, r->t->src + nd->off, nd->len);
			i++;
			break;
		case TN_VAR:
			rc = tmpl_var(r, nd);
			i++;
			break;
		case TN_SECTION:
		case TN_INVERTED: {
			const json_t *v = tmpl_lookup(r, nd);
			int truthy = tmpl_truthy(v);

			if (nd->type == TN_INVERTED) {
				if (!truthy)
					rc = tmpl_range(r, i + 1, nd->end);
			} else if (truthy && json_is_array(v)) {
				for (size_t k = 0; k < json_array_size(v) && rc == 0; k++) {
					r->stack[r->sp++] = json_array_get(v, k);
					rc = tmpl_range(r, i + 1, nd->end);
					r->sp--;
				}
			} else if (truthy) {
				r->stack[r->sp++] = v;
				rc = tmpl_range(r, i + 1, nd->end);
				r->sp--;
			}
			i = nd->end;
			break;
		}
		}
		if (rc < 0 && r->fail_off == SIZE_MAX)
			r->fail_off = nd->off;
	}
	return rc;
}

static int tmpl_lang_fa(const char *lang)
{
	return lang && (lang[0] == 'f' || lang[0] == 'F') && (lang[1] == 'a' || lang[1] == 'A') &&
	       (lang[2] == '\0' || lang[2] == '-' || lang[2] == '_');
}

int tmpl_render(const struct tmpl *t, const json_t *ctx, const struct tmpl_opts *o, struct buf *out,
                struct tmpl_error *err)
{
	struct rstate r;
	int rc;

	if (err)
		memset(err, 0, sizeof(*err));
	if (!t || !out || !json_is_object(ctx))
		return tmpl_fail(NULL, 0, err, -EINVAL, "the context must be a JSON object");
	memset(&r, 0, sizeof(r));
	r.t = t;
	r.html = o ? o->html : 0;
	r.zone = o && o->zone ? o->zone : "UTC";
	r.fa = o ? tmpl_lang_fa(o->lang) : 0;
	r.out = out;
	r.link = o ? o->link : NULL;
	r.link_arg = o ? o->link_arg : NULL;
	r.stack[r.sp++] = ctx;
	r.fail_off = SIZE_MAX;
	buf_init(&r.s1, out->max);
	buf_init(&r.s2, out->max);
	rc = tmpl_range(&r, 0, t->n);
	buf_free(&r.s1);
	buf_free(&r.s2);
	if (rc == -ENOSPC)
		return tmpl_fail(t->src, r.fail_off, err, rc, "output longer than %zu bytes",
		                 out->max);
	if (rc == -E2BIG)
		return tmpl_fail(t->src, r.fail_off, err, rc,
		                 "rendering takes more than %d steps (sections over large lists?)",
		                 TMPL_MAX_STEPS);
	if (rc < 0 && r.why)
		return tmpl_fail(t->src, r.fail_off == SIZE_MAX ? 0 : r.fail_off, err, rc, "%s",
		                 r.why);
	if (rc < 0)
		return tmpl_fail(t->src, r.fail_off == SIZE_MAX ? 0 : r.fail_off, err, rc,
		                 "rendering failed");
	return 0;
}
