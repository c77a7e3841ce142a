/*
 * sms_generic.c - driver "generic_http": SMS through any simple HTTP API,
 * described by templates.
 *
 * Keys: url, method (GET, POST, PUT), header_1..header_8 ("Name: value"),
 * body and content_type are templates with placeholders {{to}} (digits,
 * no '+'), {{to_plus}}, {{text}}, {{sender}}, {{id}}, {{secret}} (the value
 * of secret_file) and {{coding}} (coding_values, default "0,2": GSM, UCS-2),
 * each optionally with a filter: |url (percent-encoding), |json (JSON string
 * escaping, no quotes), |xml, |base64, |raw.  Without a filter the context
 * decides: url -> url; headers -> raw; body -> json, xml or url by
 * content_type (else raw).  Templates are compiled at configure time: an
 * unknown placeholder or filter, {{text}} raw in the url or a header (it
 * may carry CR/LF), {{sender}} without sender or {{secret}} without
 * secret_file is a config error naming file:line:key.
 * Results: success_status (default 200-299) and, when set, the value at
 * success_json_pointer (RFC 6901) equal to success_value (or, without one,
 * present and neither null nor false) -> OK with provider_id_pointer's value
 * as provider id; tempfail_status (default 429,500-599) or a transport error
 * -> TEMPFAIL (Retry-After kept); anything else -> PERMFAIL "http N: <first
 * line of the answer>" (at most 80 printable characters, the secret
 * redacted).
 *
 * Owns: the compiled templates, the secret (wiped on destroy), one
 * reference on the loop's shared HTTP client (struct sms_core).  Never logs
 * URLs, headers, bodies, the secret or message text.  Limits: 8 headers,
 * 16 status ranges per list, answers capped at 64 KiB, requests at 512 KiB.
 */
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "channel.h"
#include "http.h"
#include "log.h"
#include "sms_drivers.h"
#include "sms_segments.h"
#include "util.h"

#define GEN_MAX_ANSWER  (64 * 1024)
#define GEN_MAX_REQUEST (512 * 1024)
#define GEN_MAX_HEADERS 8
#define GEN_MAX_RANGES  16

enum gen_var { GV_TO, GV_TO_PLUS, GV_TEXT, GV_SENDER, GV_ID, GV_SECRET, GV_CODING, GV_N };
static const char *const gen_var_names[GV_N] = {"to", "to_plus", "text",  "sender",
                                                "id", "secret",  "coding"};

enum gen_filter { GF_RAW, GF_URL, GF_JSON, GF_XML, GF_BASE64, GF_N };
static const char *const gen_filter_names[GF_N] = {"raw", "url", "json", "xml", "base64"};

struct tpl_part {
	char *lit; /* literal text, or NULL for a placeholder */
	size_t len;
	enum gen_var var;
	enum gen_filter filter;
};

struct tpl {
	struct tpl_part *parts;
	size_t n;
	unsigned uses; /* bit per enum gen_var */
};

struct status_set {
	int lo[GEN_MAX_RANGES], hi[GEN_MAX_RANGES];
	int n;
};

struct gen_header {
	char *name;
	struct tpl value;
	const char *key; /* "header_3", for reasons */
};

struct generic {
	struct sms_core core;
	struct sms_opts opts;
	struct tpl url;
	const char *method;
	struct gen_header hdr[GEN_MAX_HEADERS];
	int nhdr;
	struct tpl body;
	int has_body;
	char *content_type;
	struct status_set ok, temp;
	char *ok_pointer, *ok_value, *id_pointer;
	char *secret;
	char *coding[2];
	const char *secrets[2];
};

struct gen_send {
	struct chan *c;
	chan_done_cb done;
	void *arg;
	struct sms_count cnt;
	char *body;
};

/* ---- templates ------------------------------------------------------------- */

static void tpl_add(struct tpl *t, const char *lit, size_t len, enum gen_var v, enum gen_filter f)
{
	t->parts = xrealloc(t->parts, (t->n + 1) * sizeof *t->parts);
	struct tpl_part *p = &t->parts[t->n++];
	p->lit = lit ? xstrndup(lit, len) : NULL;
	p->len = lit ? len : 0;
	p->var = v;
	p->filter = f;
	if (!lit)
		t->uses |= 1u << v;
}

static void tpl_free(struct tpl *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->parts[i].lit);
	free(t->parts);
	t->parts = NULL;
	t->n = 0;
	t->uses = 0;
}

static int name_printable(const char *s, size_t n)
{
	if (n == 0 || n > 32)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

static size_t trim(const char **s, size_t n)
{
	while (n && (**s == ' ' || **s == '\t')) {
		(*s)++;
		n--;
	}
	while (n && ((*s)[n - 1] == ' ' || (*s)[n - 1] == '\t'))
		n--;
	return n;
}

/*
 * Compile src into t.  def is the filter of placeholders without one.
 * Errors name file:line:key; the template text itself is never echoed (a
 * URL may carry an API key), only a short placeholder name.
 */
static int tpl_compile(struct tpl *t, const char *src, enum gen_filter def, struct cfg_section *sec,
                       const char *key, struct cfg_error *err)
{
	const char *p = src;
	memset(t, 0, sizeof *t);
	while (*p) {
		const char *o = strstr(p, "{{");
		if (!o) {
			tpl_add(t, p, strlen(p), 0, 0);
			break;
		}
		if (o > p)
			tpl_add(t, p, (size_t)(o - p), 0, 0);
		const char *cl = strstr(o + 2, "}}");
		if (!cl) {
			cfg_error_set(err, sec, key, "'{{' without a closing '}}'");
			return -1;
		}
		const char *in = o + 2;
		size_t inlen = trim(&in, (size_t)(cl - in));
		const char *bar = memchr(in, '|', inlen);
		const char *nm = in;
		size_t nmlen = trim(&nm, bar ? (size_t)(bar - in) : inlen);
		int v = -1;
		for (int i = 0; i < GV_N; i++)
			if (strlen(gen_var_names[i]) == nmlen &&
			    memcmp(gen_var_names[i], nm, nmlen) == 0)
				v = i;
		if (v < 0) {
			if (name_printable(nm, nmlen))
				cfg_error_set(
				    err, sec, key,
				    "unknown placeholder {{%.*s}} (known: to, to_plus, text, "
				    "sender, id, secret, coding)",
				    (int)nmlen, nm);
			else
				cfg_error_set(
				    err, sec, key,
				    "invalid placeholder (known: to, to_plus, text, sender, "
				    "id, secret, coding)");
			return -1;
		}
		int f = def;
		if (bar) {
			const char *fn = bar + 1;
			size_t fnlen = trim(&fn, (size_t)(in + inlen - fn));
			f = -1;
			for (int i = 0; i < GF_N; i++)
				if (strlen(gen_filter_names[i]) == fnlen &&
				    memcmp(gen_filter_names[i], fn, fnlen) == 0)
					f = i;
			if (f < 0) {
				if (name_printable(fn, fnlen))
					cfg_error_set(
					    err, sec, key,
					    "unknown filter |%.*s in {{%s}} (known: url, json, "
					    "xml, raw, base64)",
					    (int)fnlen, fn, gen_var_names[v]);
				else
					cfg_error_set(
					    err, sec, key,
					    "invalid filter in {{%s}} (known: url, json, xml, "
					    "raw, base64)",
					    gen_var_names[v]);
				return -1;
			}
		}
		tpl_add(t, NULL, 0, (enum gen_var)v, (enum gen_filter)f);
		p = cl + 2;
	}
	return 0;
}

/* 1 when a placeholder of var v is used with filter f in t. */
static int tpl_uses_with(const struct tpl *t, enum gen_var v, enum gen_filter f)
{
	for (size_t i = 0; i < t->n; i++)
		if (!t->parts[i].lit && t->parts[i].var == v && t->parts[i].filter == f)
			return 1;
	return 0;
}

static int filter_json(struct buf *b, const char *s)
{
	int r = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && r == 0; p++) {
		char e[8];
		switch (*p) {
		case '"':
			r = buf_puts(b, "\\\"");
			break;
		case '\\':
			r = buf_puts(b, "\\\\");
			break;
		case '\n':
			r = buf_puts(b, "\\n");
			break;
		case '\r':
			r = buf_puts(b, "\\r");
			break;
		case '\t':
			r = buf_puts(b, "\\t");
			break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				snprintf(e, sizeof e, "\\u%04x", *p);
				r = buf_puts(b, e);
			} else {
				r = buf_append(b, p, 1);
			}
		}
	}
	return r;
}

/* XML character data or attribute value.  Line ends are written as
 * character references so attribute normalisation cannot eat them; other
 * C0 controls cannot appear in XML 1.0 at all and are dropped. */
static int filter_xml(struct buf *b, const char *s)
{
	int r = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && r == 0; p++) {
		switch (*p) {
		case '&':
			r = buf_puts(b, "&amp;");
			break;
		case '<':
			r = buf_puts(b, "&lt;");
			break;
		case '>':
			r = buf_puts(b, "&gt;");
			break;
		case '"':
			r = buf_puts(b, "&quot;");
			break;
		case '\'':
			r = buf_puts(b, "&apos;");
			break;
		case '\n':
			r = buf_puts(b, "&#10;");
			break;
		case '\r':
			r = buf_puts(b, "&#13;");
			break;
		case '\t':
			r = buf_puts(b, "&#9;");
			break;
		default:
			if (*p >= 0x20)
				r = buf_append(b, p, 1);
		}
	}
	return r;
}

static int filter_base64(struct buf *b, const char *s)
{
	size_t n = strlen(s);
	if (n > GEN_MAX_REQUEST)
		return -ENOSPC;
	unsigned char *o = xmalloc(4 * ((n + 2) / 3) + 1);
	int l = EVP_EncodeBlock(o, (const unsigned char *)s, (int)n);
	int r = l < 0 ? -EINVAL : buf_append(b, o, (size_t)l);
	explicit_bzero(o, l > 0 ? (size_t)l : 0); /* it may be the secret */
	free(o);
	return r;
}

/* Expand t into b (which has a cap); 0 or -ENOSPC. */
static int tpl_expand(const struct tpl *t, struct buf *b, const char *const vals[GV_N])
{
	int r = 0;
	for (size_t i = 0; i < t->n && r == 0; i++) {
		const struct tpl_part *p = &t->parts[i];
		if (p->lit) {
			r = buf_append(b, p->lit, p->len);
			continue;
		}
		const char *v = vals[p->var] ? vals[p->var] : "";
		switch (p->filter) {
		case GF_URL:
			r = sms_pct_encode(b, v, strlen(v));
			break;
		case GF_JSON:
			r = filter_json(b, v);
			break;
		case GF_XML:
			r = filter_xml(b, v);
			break;
		case GF_BASE64:
			r = filter_base64(b, v);
			break;
		default:
			r = buf_puts(b, v);
			break;
		}
	}
	if (r == 0 && !b->p)
		r = buf_append(b, "", 0);
	return r;
}

/* ---- status lists and JSON pointers --------------------------------------- */

static int status_parse(struct status_set *s, const char *v)
{
	memset(s, 0, sizeof *s);
	char *copy = xstrdup(v), *save = NULL;
	int ok = 1;
	for (char *tok = strtok_r(copy, ",", &save); tok && ok; tok = strtok_r(NULL, ",", &save)) {
		const char *t = tok;
		size_t n = trim(&t, strlen(t));
		char item[32];
		if (n == 0 || n >= sizeof item || s->n >= GEN_MAX_RANGES) {
			ok = 0;
			break;
		}
		memcpy(item, t, n);
		item[n] = '\0';
		char *dash = strchr(item, '-');
		int64_t lo, hi;
		if (dash) {
			*dash = '\0';
			ok = parse_i64(item, 100, 599, &lo) == 0 &&
			     parse_i64(dash + 1, 100, 599, &hi) == 0 && lo <= hi;
		} else {
			ok = parse_i64(item, 100, 599, &lo) == 0;
			hi = lo;
		}
		if (ok) {
			s->lo[s->n] = (int)lo;
			s->hi[s->n] = (int)hi;
			s->n++;
		}
	}
	free(copy);
	return ok && s->n > 0 ? 0 : -EINVAL;
}

static int status_in(const struct status_set *s, long st)
{
	for (int i = 0; i < s->n; i++)
		if (st >= s->lo[i] && st <= s->hi[i])
			return 1;
	return 0;
}

/* RFC 6901 syntax: "" or "/" tokens, '~' only as "~0" or "~1". */
static int pointer_ok(const char *p)
{
	if (*p != '/')
		return 0;
	for (; *p; p++)
		if (*p == '~' && p[1] != '0' && p[1] != '1')
			return 0;
	return 1;
}

static json_t *pointer_get(json_t *root, const char *ptr)
{
	json_t *cur = root;
	const char *p = ptr;
	char tok[256];
	while (cur && *p == '/') {
		p++;
		size_t n = 0;
		for (; *p && *p != '/'; p++) {
			char c = *p;
			if (c == '~') {
				c = p[1] == '1' ? '/' : '~';
				p++;
			}
			if (n + 1 >= sizeof tok)
				return NULL;
			tok[n++] = c;
		}
		tok[n] = '\0';
		if (json_is_object(cur)) {
			cur = json_object_get(cur, tok);
		} else if (json_is_array(cur)) {
			int64_t idx;
			if ((n > 1 && tok[0] == '0') || parse_i64(tok, 0, 1000000, &idx) < 0)
				return NULL;
			cur = json_array_get(cur, (size_t)idx);
		} else {
			return NULL;
		}
	}
	return cur;
}

static int value_matches(json_t *v, const char *want)
{
	char tmp[64];
	switch (json_typeof(v)) {
	case JSON_STRING:
		return strcmp(json_string_value(v), want) == 0;
	case JSON_INTEGER:
		snprintf(tmp, sizeof tmp, "%lld", (long long)json_integer_value(v));
		return strcmp(tmp, want) == 0;
	case JSON_REAL: {
		char *end;
		double d = strtod(want, &end);
		return *want && !*end && d == json_real_value(v);
	}
	case JSON_TRUE:
		return strcmp(want, "true") == 0;
	case JSON_FALSE:
		return strcmp(want, "false") == 0;
	case JSON_NULL:
		return strcmp(want, "null") == 0;
	default:
		return 0;
	}
}

/* A provider id from a JSON string or number: printable, cut at a UTF-8
 * character boundary to fit. */
static void id_copy(json_t *v, char *out, size_t n)
{
	out[0] = '\0';
	if (json_is_integer(v)) {
		snprintf(out, n, "%lld", (long long)json_integer_value(v));
		return;
	}
	if (!json_is_string(v))
		return;
	const char *s = json_string_value(v);
	size_t len = strlen(s);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return;
	if (len >= n) {
		len = n - 1;
		while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(out, s, len);
	out[len] = '\0';
}

/* ---- configuration ----------------------------------------------------------- */

static int header_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("!#$%&'*+-.^_`|~", c)))
			return 0;
	}
	return 1;
}

static int printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

static enum gen_filter body_filter(const char *ct)
{
	if (!ct)
		return GF_RAW;
	if (strcasestr(ct, "json"))
		return GF_JSON;
	if (strcasestr(ct, "xml"))
		return GF_XML;
	if (strcasestr(ct, "x-www-form-urlencoded"))
		return GF_URL;
	return GF_RAW;
}

static int gen_configure(struct chan *c, struct cfg_error *err)
{
	struct cfg_section *sec = c->cfg->sec;
	struct generic *g = xcalloc(1, sizeof *g);
	c->priv = g;
	int64_t v;

	if (sms_opts_configure(sec, &g->opts, err) < 0)
		return -1;
	if (cfg_sec_secret(sec, "secret_file", &g->secret, err) < 0)
		return -1;
	if (g->secret && !printable(g->secret)) {
		cfg_error_set(err, sec, "secret_file", "the secret contains control characters");
		return -1;
	}
	g->secrets[0] = g->secret;

	/* url */
	const char *url = cfg_sec_str_req(sec, "url", err);
	if (!url)
		return -1;
	if (tpl_compile(&g->url, url, GF_URL, sec, "url", err) < 0)
		return -1;
	const struct tpl_part *p0 = g->url.n ? &g->url.parts[0] : NULL;
	if (!p0 || !p0->lit ||
	    !((strncasecmp(p0->lit, "http://", 7) == 0 && p0->len > 7) ||
	      (strncasecmp(p0->lit, "https://", 8) == 0 && p0->len > 8))) {
		cfg_error_set(err, sec, "url",
		              "must start with http:// or https:// and a host (not a placeholder)");
		return -1;
	}
	for (size_t i = 0; i < g->url.n; i++)
		if (g->url.parts[i].lit)
			for (size_t k = 0; k < g->url.parts[i].len; k++)
				if ((unsigned char)g->url.parts[i].lit[k] <= ' ' ||
				    g->url.parts[i].lit[k] == 0x7f) {
					cfg_error_set(err, sec, "url",
					              "contains white space or control characters");
					return -1;
				}
	if (tpl_uses_with(&g->url, GV_TEXT, GF_RAW)) {
		cfg_error_set(err, sec, "url",
		              "{{text|raw}} cannot go into a URL: use {{text|url}}");
		return -1;
	}

	/* method, content type, body */
	const char *body = cfg_sec_str(sec, "body", NULL);
	const char *m = cfg_sec_str(sec, "method", body ? "POST" : "GET");
	if (strcasecmp(m, "GET") == 0)
		g->method = "GET";
	else if (strcasecmp(m, "POST") == 0)
		g->method = "POST";
	else if (strcasecmp(m, "PUT") == 0)
		g->method = "PUT";
	else {
		cfg_error_set(err, sec, "method", "must be GET, POST or PUT");
		return -1;
	}
	const char *ct = cfg_sec_str(sec, "content_type", NULL);
	if (ct && (!*ct || !printable(ct) || strlen(ct) > 200)) {
		cfg_error_set(err, sec, "content_type",
		              "must be a media type like application/json (printable, at most "
		              "200 characters)");
		return -1;
	}
	if (body) {
		if (strcmp(g->method, "GET") == 0) {
			cfg_error_set(err, sec, "body", "needs method POST or PUT");
			return -1;
		}
		if (!ct) {
			cfg_error_set(err, sec, "content_type",
			              "is required with body (e.g. application/json or "
			              "application/x-www-form-urlencoded)");
			return -1;
		}
		if (tpl_compile(&g->body, body, body_filter(ct), sec, "body", err) < 0)
			return -1;
		g->has_body = 1;
		g->content_type = xstrdup(ct);
	} else if (ct) {
		cfg_error_set(err, sec, "content_type", "is only used with body");
		return -1;
	}

	/* headers */
	static const char *const hkeys[GEN_MAX_HEADERS] = {"header_1", "header_2", "header_3",
	                                                   "header_4", "header_5", "header_6",
	                                                   "header_7", "header_8"};
	for (int i = 0; i < GEN_MAX_HEADERS; i++) {
		const char *h = cfg_sec_str(sec, hkeys[i], NULL);
		if (!h)
			continue;
		const char *colon = strchr(h, ':');
		const char *nm = h;
		size_t nmlen = colon ? trim(&nm, (size_t)(colon - h)) : 0;
		if (!colon || !header_name_ok(nm, nmlen)) {
			cfg_error_set(
			    err, sec, hkeys[i],
			    "must be \"Name: value\" with a header name of letters, digits "
			    "and -");
			return -1;
		}
		static const char *const reserved[] = {"content-length", "transfer-encoding",
		                                       "host", "content-type", "expect"};
		for (size_t r = 0; r < ARRAY_SIZE(reserved); r++)
			if (strlen(reserved[r]) == nmlen &&
			    strncasecmp(reserved[r], nm, nmlen) == 0) {
				cfg_error_set(
				    err, sec, hkeys[i],
				    "%.*s is set by clubd (use content_type for the body's "
				    "type)",
				    (int)nmlen, nm);
				return -1;
			}
		const char *val = colon + 1;
		while (*val == ' ' || *val == '\t')
			val++;
		if (!printable(val)) {
			cfg_error_set(err, sec, hkeys[i], "contains control characters");
			return -1;
		}
		struct gen_header *gh = &g->hdr[g->nhdr++];
		gh->name = xstrndup(nm, nmlen);
		gh->key = hkeys[i];
		if (tpl_compile(&gh->value, val, GF_RAW, sec, hkeys[i], err) < 0)
			return -1;
		if (tpl_uses_with(&gh->value, GV_TEXT, GF_RAW)) {
			cfg_error_set(
			    err, sec, hkeys[i],
			    "{{text}} in a header needs |url, |json, |xml or |base64 (raw "
			    "text may contain CR or LF)");
			return -1;
		}
		if (tpl_uses_with(&gh->value, GV_SENDER, GF_RAW) && g->opts.sender &&
		    !printable(g->opts.sender)) {
			cfg_error_set(err, sec, hkeys[i], "the sender cannot go into a header raw");
			return -1;
		}
	}

	/* every placeholder must have a value */
	unsigned uses = g->url.uses | g->body.uses;
	for (int i = 0; i < g->nhdr; i++)
		uses |= g->hdr[i].value.uses;
	if ((uses & (1u << GV_SENDER)) && !g->opts.sender) {
		cfg_error_set(err, sec, "sender", "is required: a template uses {{sender}}");
		return -1;
	}
	if ((uses & (1u << GV_SECRET)) && !g->secret) {
		cfg_error_set(err, sec, "secret_file", "is required: a template uses {{secret}}");
		return -1;
	}
	if (!(uses & (1u << GV_SECRET)) && g->secret) {
		cfg_error_set(err, sec, "secret_file", "is set but no template uses {{secret}}");
		return -1;
	}
	if (!(uses & (1u << GV_TEXT))) {
		cfg_error_set(err, sec, NULL, "no template (url, body, header_N) uses {{text}}");
		return -1;
	}
	if (!(uses & ((1u << GV_TO) | (1u << GV_TO_PLUS)))) {
		cfg_error_set(err, sec, NULL,
		              "no template (url, body, header_N) uses {{to}} or {{to_plus}}");
		return -1;
	}

	/* {{coding}} */
	const char *cv = cfg_sec_str(sec, "coding_values", "0,2");
	const char *comma = strchr(cv, ',');
	if (!comma || strchr(comma + 1, ',') || comma == cv || !comma[1] || !printable(cv) ||
	    strlen(cv) > 64) {
		cfg_error_set(err, sec, "coding_values",
		              "must be two values, for GSM and for UCS-2 texts, like 0,2 or "
		              "false,true");
		return -1;
	}
	g->coding[0] = xstrndup(cv, (size_t)(comma - cv));
	g->coding[1] = xstrdup(comma + 1);

	/* the success rule */
	const char *ss = cfg_sec_str(sec, "success_status", "200-299");
	if (status_parse(&g->ok, ss) < 0) {
		cfg_error_set(err, sec, "success_status",
		              "must be a comma list of codes or ranges, like 200-299 or 200,202");
		return -1;
	}
	const char *ts = cfg_sec_str(sec, "tempfail_status", "429,500-599");
	if (status_parse(&g->temp, ts) < 0) {
		cfg_error_set(err, sec, "tempfail_status",
		              "must be a comma list of codes or ranges, like 429,500-599");
		return -1;
	}
	for (int st = 100; st <= 599; st++)
		if (status_in(&g->ok, st) && status_in(&g->temp, st)) {
			cfg_error_set(err, sec, "tempfail_status", "overlaps success_status (%d)",
			              st);
			return -1;
		}
	const char *jp = cfg_sec_str(sec, "success_json_pointer", NULL);
	if (jp) {
		if (!pointer_ok(jp) || strlen(jp) > 255) {
			cfg_error_set(err, sec, "success_json_pointer",
			              "must be an RFC 6901 JSON pointer like /status or "
			              "/return/status");
			return -1;
		}
		g->ok_pointer = xstrdup(jp);
	}
	const char *sv = cfg_sec_str(sec, "success_value", NULL);
	if (sv) {
		if (!jp) {
			cfg_error_set(err, sec, "success_value", "needs success_json_pointer");
			return -1;
		}
		g->ok_value = xstrdup(sv);
	}
	const char *ip = cfg_sec_str(sec, "provider_id_pointer", NULL);
	if (ip) {
		if (!pointer_ok(ip) || strlen(ip) > 255) {
			cfg_error_set(
			    err, sec, "provider_id_pointer",
			    "must be an RFC 6901 JSON pointer like /id or /entries/0/messageid");
			return -1;
		}
		g->id_pointer = xstrdup(ip);
	}
	if (cfg_sec_int(sec, "max_host_connections", 16, 1, 1024, &v, err) < 0)
		return -1;
	g->core.max_host = (int)v;
	return 0;
}

static int gen_start(struct chan *c, uv_loop_t *loop)
{
	struct generic *g = c->priv;
	return sms_core_start(&g->core, c, loop);
}

/* ---- sending ------------------------------------------------------------------- */

/* 1 when the answer meets the success rule. */
static int answer_ok(const struct generic *g, const struct http_resp *resp, json_t **doc)
{
	*doc = NULL;
	if (!status_in(&g->ok, resp->status))
		return 0;
	if (g->ok_pointer || g->id_pointer)
		*doc = json_loadb(resp->body, resp->body_len, JSON_DECODE_ANY, NULL);
	if (!g->ok_pointer)
		return 1;
	json_t *v = *doc ? pointer_get(*doc, g->ok_pointer) : NULL;
	if (!v)
		return 0;
	if (g->ok_value)
		return value_matches(v, g->ok_value);
	return !json_is_null(v) && !json_is_false(v);
}

static void gen_done(void *arg, const struct http_resp *resp)
{
	struct gen_send *s = arg;
	struct chan *c = s->c;
	struct generic *g = c->priv;
	struct chan_result res;
	memset(&res, 0, sizeof res);

	if (resp->err != HTTP_E_NONE) {
		sms_transport_fail(&res, resp, g->secrets);
	} else {
		json_t *doc = NULL;
		long st = resp->status;
		if (answer_ok(g, resp, &doc)) {
			res.status = CHAN_OK;
			if (g->id_pointer && doc) {
				json_t *id = pointer_get(doc, g->id_pointer);
				if (id)
					id_copy(id, res.provider_id, sizeof res.provider_id);
			}
			res.segments = s->cnt.segments;
			res.cost_micros = sms_cost_micros(s->cnt.segments, g->opts.price);
		} else {
			char ex[200];
			sms_excerpt(ex, sizeof ex, resp->body, resp->body_len, g->secrets);
			int temp = status_in(&g->temp, st);
			res.status = temp ? CHAN_TEMPFAIL : CHAN_PERMFAIL;
			snprintf(res.reason, sizeof res.reason, "http %ld%s%s", st,
			         ex[0] ? ": " : "", ex);
			if (temp)
				res.retry_after_ms = resp->retry_after_ms;
			if (st == 401 || st == 403)
				sms_core_warn_auth(&g->core, "generic_http", st);
		}
		json_decref(doc);
	}
	chan_done_cb done = s->done;
	void *darg = s->arg;
	if (s->body) {
		explicit_bzero(s->body, strlen(s->body));
		free(s->body);
	}
	free(s);
	done(darg, &res);
	sms_core_request_done(&g->core);
}

static void wipe_buf(struct buf *b)
{
	if (b->p)
		explicit_bzero(b->p, b->len);
	buf_free(b);
}

static int gen_send(struct chan *c, const struct chan_msg *m, chan_done_cb done, void *arg)
{
	struct generic *g = c->priv;
	if (g->core.stopping || !g->core.http)
		return -ESHUTDOWN;

	struct chan_result res;
	memset(&res, 0, sizeof res);
	res.status = CHAN_PERMFAIL;
	struct sms_count cnt;
	char digits[24], plus[26];
	if (sms_recipient_digits(m->to, digits, sizeof digits) < 0) {
		snprintf(res.reason, sizeof res.reason,
		         "invalid recipient: expected an E.164 number such as +989121234567");
		sms_core_report_later(&g->core, done, arg, &res);
		return 0;
	}
	if (sms_opts_check(&g->opts, m->text, &cnt, res.reason, sizeof res.reason) < 0) {
		sms_core_report_later(&g->core, done, arg, &res);
		return 0;
	}
	snprintf(plus, sizeof plus, "+%s", digits);
	const char *vals[GV_N] = {
	    [GV_TO] = digits,
	    [GV_TO_PLUS] = plus,
	    [GV_TEXT] = m->text,
	    [GV_SENDER] = g->opts.sender,
	    [GV_ID] = m->id,
	    [GV_SECRET] = g->secret,
	    [GV_CODING] = g->coding[cnt.ucs2 ? 1 : 0],
	};

	struct buf url, body;
	buf_init(&url, GEN_MAX_REQUEST);
	buf_init(&body, GEN_MAX_REQUEST);
	char *hdrs[GEN_MAX_HEADERS + 2];
	size_t nh = 0;
	int r = 0;

	if (tpl_expand(&g->url, &url, vals) < 0) {
		snprintf(res.reason, sizeof res.reason, "request too large");
		goto fail;
	}
	for (const char *p = url.p; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			snprintf(res.reason, sizeof res.reason,
			         "url would contain white space or control characters (use |url)");
			goto fail;
		}
	if (g->has_body) {
		if (tpl_expand(&g->body, &body, vals) < 0) {
			snprintf(res.reason, sizeof res.reason, "request too large");
			goto fail;
		}
		hdrs[nh++] = xasprintf("Content-Type: %s", g->content_type);
	}
	for (int i = 0; i < g->nhdr; i++) {
		struct buf hv;
		buf_init(&hv, GEN_MAX_REQUEST);
		int e = tpl_expand(&g->hdr[i].value, &hv, vals);
		if (e == 0 && !printable(hv.p)) {
			snprintf(res.reason, sizeof res.reason,
			         "%s would contain control characters", g->hdr[i].key);
			wipe_buf(&hv);
			goto fail;
		}
		if (e < 0) {
			snprintf(res.reason, sizeof res.reason, "request too large");
			wipe_buf(&hv);
			goto fail;
		}
		hdrs[nh++] = xasprintf("%s: %s", g->hdr[i].name, hv.p);
		wipe_buf(&hv);
	}
	hdrs[nh] = NULL;

	struct gen_send *s = xcalloc(1, sizeof *s);
	s->c = c;
	s->done = done;
	s->arg = arg;
	s->cnt = cnt;
	struct http_req rq = {
	    .method = g->method,
	    .url = url.p,
	    .headers = (const char *const *)hdrs,
	    .timeout_ms = c->cfg->timeout_ms,
	    .max_body = GEN_MAX_ANSWER,
	};
	if (g->has_body) {
		s->body = buf_steal(&body);
		rq.body = s->body;
		rq.body_len = strlen(s->body);
	}
	r = http_request(g->core.http, &rq, gen_done, s);
	if (r < 0) {
		if (s->body) {
			explicit_bzero(s->body, strlen(s->body));
			free(s->body);
		}
		free(s);
	} else {
		g->core.sending++;
	}
	goto out;

fail:
	sms_core_report_later(&g->core, done, arg, &res);
	r = 0;
out:
	wipe_buf(&url);
	wipe_buf(&body);
	for (size_t i = 0; i < nh; i++) {
		explicit_bzero(hdrs[i], strlen(hdrs[i]));
		free(hdrs[i]);
	}
	return r;
}

static void gen_stop(struct chan *c, void (*stopped)(struct chan *c))
{
	struct generic *g = c->priv;
	sms_core_stop(&g->core, stopped);
}

static void gen_destroy(struct chan *c)
{
	struct generic *g = c->priv;
	if (!g)
		return;
	if (g->secret) {
		explicit_bzero(g->secret, strlen(g->secret));
		free(g->secret);
	}
	tpl_free(&g->url);
	tpl_free(&g->body);
	for (int i = 0; i < g->nhdr; i++) {
		free(g->hdr[i].name);
		tpl_free(&g->hdr[i].value);
	}
	free(g->content_type);
	free(g->ok_pointer);
	free(g->ok_value);
	free(g->id_pointer);
	free(g->coding[0]);
	free(g->coding[1]);
	sms_opts_free(&g->opts);
	free(g);
	c->priv = NULL;
}

const struct chan_driver chan_sms_generic_driver = {
    .name = "generic_http",
    .configure = gen_configure,
    .start = gen_start,
    .send = gen_send,
    .stop = gen_stop,
    .destroy = gen_destroy,
};
