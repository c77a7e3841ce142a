/*
 * desk.c - the complaints desk's pure parts (desk.h): team and rule
 * validation, routing, ticket transitions, first-response statistics.
 *
 * Owns the structs it parses (freed by desk_team_free / desk_rules_free).
 * Never does I/O or reads the clock; store_desk.c, desk_notify.c and
 * api_desk.c do.  Limits: the DESK_*_MAX of desk.h; matching is linear in
 * rules x keywords x text length (100 x 50 x 4 KiB at worst, microseconds
 * in practice).
 */
#include "desk.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "text.h"
#include "util.h"

static const char *const state_names[DESK_STATES] = {"open", "assigned", "answered", "closed"};
static const char *const via_names[] = {"campaign", "rule", "default", "fallback"};

int desk_id_valid(const char *s)
{
	if (!s)
		return 0;
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
		if (n >= DESK_ID_MAX)
			return 0;
	}
	return n > 0;
}

const char *desk_state_name(enum desk_state s)
{
	return (int)s >= 0 && s < DESK_STATES ? state_names[s] : "unknown";
}

int desk_state_parse(const char *s)
{
	for (int i = 0; s && i < DESK_STATES; i++)
		if (strcmp(s, state_names[i]) == 0)
			return i;
	return -1;
}

const char *desk_via_name(enum desk_via v)
{
	return (int)v >= 0 && (size_t)v < ARRAY_SIZE(via_names) ? via_names[v] : "unknown";
}

/* ---- validation helpers ------------------------------------------------- */

static int fail(char *field, size_t fl, char *why, size_t wl, const char *f, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int fail(char *field, size_t fl, char *why, size_t wl, const char *f, const char *fmt, ...)
{
	snprintf(field, fl, "%s", f);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, wl, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A string of 1..max bytes without control characters; NULL when not. */
static const char *plain_string(const json_t *v, size_t max)
{
	if (!json_is_string(v))
		return NULL;
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n == 0 || n > max || strlen(s) != n || text_has_ctl(s, 0))
		return NULL;
	return s;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- teams ------------------------------------------------------------- */

void desk_team_free(struct desk_team *t)
{
	if (!t)
		return;
	free(t->name);
	free(t->webhook);
	free(t->email);
	free(t->chat);
	strv_free(t->members, t->nmembers);
	memset(t, 0, sizeof *t);
}

static int url_ok(const char *u)
{
	if (strncasecmp(u, "http://", 7) != 0 && strncasecmp(u, "https://", 8) != 0)
		return 0;
	const char *host = u + (u[4] == ':' ? 7 : 8);
	if (!*host || *host == '/')
		return 0;
	for (const char *p = u; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return 0;
	return 1;
}

static int team_notify(const json_t *n, struct desk_team *t, char *field, size_t fl, char *why,
                       size_t wl)
{
	if (!json_is_object(n))
		return fail(field, fl, why, wl, "notify",
		            "an object with webhook, email and/or chat expected");
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)n, k, v)
	{
		if (json_is_null(v))
			continue;
		if (strcmp(k, "webhook") == 0) {
			const char *u = plain_string(v, DESK_URL_MAX);
			if (!u || !url_ok(u))
				return fail(
				    field, fl, why, wl, "notify.webhook",
				    "an http:// or https:// URL of at most %d bytes without "
				    "spaces expected",
				    DESK_URL_MAX);
			t->webhook = xstrdup(u);
		} else if (strcmp(k, "email") == 0 || strcmp(k, "chat") == 0) {
			int email = k[0] == 'e';
			char out[ADDR_MAX + 1];
			const char *reason = NULL;
			if (!json_is_string(v) ||
			    addr_normalize_n(email ? ADDR_EMAIL : ADDR_CHAT, json_string_value(v),
			                     json_string_length(v), NULL, out, &reason) < 0)
				return fail(field, fl, why, wl,
				            email ? "notify.email" : "notify.chat", "%s",
				            reason ? reason : "a string expected");
			if (email)
				t->email = xstrdup(out);
			else
				t->chat = xstrdup(out);
		} else {
			return fail(field, fl, why, wl, "notify",
			            "unknown target %.40s (webhook, email, chat)", k);
		}
	}
	return 0;
}

int desk_team_parse(const json_t *j, const char *path_id, struct desk_team *t, char *field,
                    size_t fl, char *why, size_t wl)
{
	memset(t, 0, sizeof *t);
	if (!json_is_object(j))
		return fail(field, fl, why, wl, "", "a JSON object expected");
	const json_t *id = json_object_get(j, "id");
	if (id && !json_is_null(id)) {
		if (!json_is_string(id) || !desk_id_valid(json_string_value(id)))
			return fail(field, fl, why, wl, "id",
			            "1..%d characters of A-Z a-z 0-9 _ - expected", DESK_ID_MAX);
		if (path_id && strcmp(path_id, json_string_value(id)) != 0)
			return fail(field, fl, why, wl, "id", "differs from the id in the path");
		snprintf(t->id, sizeof t->id, "%s", json_string_value(id));
	} else if (path_id && desk_id_valid(path_id)) {
		snprintf(t->id, sizeof t->id, "%s", path_id);
	} else {
		return fail(field, fl, why, wl, "id", "the team's id is required");
	}
	t->name = xstrdup("");
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)j, k, v)
	{
		if (strcmp(k, "id") == 0) {
			continue;
		} else if (strcmp(k, "name") == 0) {
			const char *s = plain_string(v, DESK_NAME_MAX);
			if (!s && !json_is_null(v))
				return fail(field, fl, why, wl, "name",
				            "1..%d bytes without control characters expected",
				            DESK_NAME_MAX);
			free(t->name);
			t->name = xstrdup(s ? s : "");
		} else if (strcmp(k, "notify") == 0) {
			if (json_is_null(v))
				continue;
			int rc = team_notify(v, t, field, fl, why, wl);
			if (rc < 0)
				return rc;
		} else if (strcmp(k, "members") == 0) {
			if (json_is_null(v))
				continue;
			if (!json_is_array(v) || json_array_size(v) > DESK_MEMBERS_MAX)
				return fail(field, fl, why, wl, "members",
				            "an array of at most %d operator names expected",
				            DESK_MEMBERS_MAX);
			t->members = xcalloc(json_array_size(v) + 1, sizeof *t->members);
			size_t i;
			json_t *m;
			json_array_foreach(v, i, m)
			{
				const char *s = plain_string(m, DESK_OPERATOR_MAX);
				if (!s) {
					char f[32];
					snprintf(f, sizeof f, "members[%zu]", i);
					return fail(
					    field, fl, why, wl, f,
					    "1..%d bytes without control characters expected",
					    DESK_OPERATOR_MAX);
				}
				for (size_t x = 0; x < t->nmembers; x++)
					if (strcmp(t->members[x], s) == 0) {
						char f[32];
						snprintf(f, sizeof f, "members[%zu]", i);
						return fail(field, fl, why, wl, f, "given twice");
					}
				t->members[t->nmembers++] = xstrdup(s);
			}
		} else if (strcmp(k, "created_at") == 0 || strcmp(k, "updated_at") == 0 ||
		           strcmp(k, "v") == 0) {
			continue; /* a read answer sent back: the store owns these */
		} else {
			return fail(field, fl, why, wl, k, "unknown field");
		}
	}
	return 0;
}

json_t *desk_team_json(const struct desk_team *t)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(t->id));
	json_object_set_new(o, "name", json_string(t->name ? t->name : ""));
	json_t *n = json_object();
	if (t->webhook)
		json_object_set_new(n, "webhook", json_string(t->webhook));
	if (t->email)
		json_object_set_new(n, "email", json_string(t->email));
	if (t->chat)
		json_object_set_new(n, "chat", json_string(t->chat));
	json_object_set_new(o, "notify", n);
	json_t *m = json_array();
	for (size_t i = 0; i < t->nmembers; i++)
		json_array_append_new(m, json_string(t->members[i]));
	json_object_set_new(o, "members", m);
	return o;
}

/* ---- rules ------------------------------------------------------------- */

static void rule_free(struct desk_rule *r)
{
	free(r->name);
	strv_free(r->keywords, r->nkeywords);
	strv_free(r->channels, r->nchannels);
	strv_free(r->tiers, r->ntiers);
	strv_free(r->tags, r->ntags);
	strv_free(r->campaigns, r->ncampaigns);
	json_decref(r->source);
	memset(r, 0, sizeof *r);
}

void desk_rules_free(struct desk_rules *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		rule_free(&r->rule[i]);
	free(r->rule);
	memset(r, 0, sizeof *r);
}

enum list_kind { L_KEYWORDS, L_CHANNELS, L_TIERS, L_TAGS, L_CAMPAIGNS };

/* One of a rule's lists: a non-empty array of distinct values. */
static int rule_list(const json_t *v, enum list_kind kind, size_t ri, const char *key, char ***out,
                     size_t *nout, char *field, size_t fl, char *why, size_t wl)
{
	size_t max = kind == L_KEYWORDS ? DESK_KEYWORDS_MAX : DESK_VALUES_MAX;
	char f[96];
	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > max) {
		snprintf(f, sizeof f, "rules[%zu].%s", ri, key);
		return fail(field, fl, why, wl, f,
		            "an array of 1..%zu values expected (or leave it out)", max);
	}
	*out = xcalloc(json_array_size(v) + 1, sizeof **out);
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e)
	{
		snprintf(f, sizeof f, "rules[%zu].%s[%zu]", ri, key, i);
		char *val = NULL;
		switch (kind) {
		case L_KEYWORDS: {
			const char *s = plain_string(e, DESK_KEYWORD_MAX);
			char *norm = s ? text_normalize(s) : NULL;
			if (!norm || !*norm) {
				free(norm);
				return fail(
				    field, fl, why, wl, f,
				    "a keyword of 1..%d bytes (not only white space) expected",
				    DESK_KEYWORD_MAX);
			}
			val = norm;
			break;
		}
		case L_CHANNELS: {
			const char *s = json_string_value(e);
			if (!s || addr_kind_parse(s) < 0)
				return fail(field, fl, why, wl, f, "sms, email or chat expected");
			val = xstrdup(s);
			break;
		}
		case L_TIERS:
		case L_TAGS: {
			const char *s = plain_string(e, DESK_VALUE_MAX);
			if (!s)
				return fail(field, fl, why, wl, f,
				            "1..%d bytes without control characters expected",
				            DESK_VALUE_MAX);
			val = xstrdup(s);
			break;
		}
		case L_CAMPAIGNS: {
			const char *s = json_string_value(e);
			if (!desk_id_valid(s))
				return fail(field, fl, why, wl, f,
				            "a campaign id (1..%d of A-Z a-z 0-9 _ -) expected",
				            DESK_ID_MAX);
			val = xstrdup(s);
			break;
		}
		}
		for (size_t x = 0; x < *nout; x++)
			if (strcmp((*out)[x], val) == 0) {
				free(val);
				return fail(field, fl, why, wl, f,
				            kind == L_KEYWORDS
				                ? "the same keyword (once normalised) "
				                  "is given twice"
				                : "given twice");
			}
		(*out)[(*nout)++] = val;
	}
	return 0;
}

static int rule_parse(const json_t *j, size_t ri, struct desk_rule *r, char *field, size_t fl,
                      char *why, size_t wl)
{
	char f[96];
	snprintf(f, sizeof f, "rules[%zu]", ri);
	if (!json_is_object(j))
		return fail(field, fl, why, wl, f, "an object expected");
	r->name = xstrdup("");
	const char *k;
	json_t *v;
	int have_team = 0, rc = 0;
	json_object_foreach((json_t *)j, k, v)
	{
		snprintf(f, sizeof f, "rules[%zu].%s", ri, k);
		if (strcmp(k, "team") == 0) {
			if (!desk_id_valid(json_string_value(v)))
				return fail(field, fl, why, wl, f,
				            "a team id (1..%d of A-Z a-z 0-9 _ -) expected",
				            DESK_ID_MAX);
			snprintf(r->team, sizeof r->team, "%s", json_string_value(v));
			have_team = 1;
		} else if (strcmp(k, "name") == 0) {
			const char *s = plain_string(v, DESK_NAME_MAX);
			if (!s)
				return fail(field, fl, why, wl, f,
				            "1..%d bytes without control characters expected",
				            DESK_NAME_MAX);
			free(r->name);
			r->name = xstrdup(s);
		} else if (strcmp(k, "keywords") == 0) {
			rc = rule_list(v, L_KEYWORDS, ri, k, &r->keywords, &r->nkeywords, field, fl,
			               why, wl);
			r->source = json_incref(v);
		} else if (strcmp(k, "channels") == 0) {
			rc = rule_list(v, L_CHANNELS, ri, k, &r->channels, &r->nchannels, field, fl,
			               why, wl);
		} else if (strcmp(k, "tiers") == 0) {
			rc =
			    rule_list(v, L_TIERS, ri, k, &r->tiers, &r->ntiers, field, fl, why, wl);
		} else if (strcmp(k, "tags") == 0) {
			rc = rule_list(v, L_TAGS, ri, k, &r->tags, &r->ntags, field, fl, why, wl);
		} else if (strcmp(k, "campaigns") == 0) {
			rc = rule_list(v, L_CAMPAIGNS, ri, k, &r->campaigns, &r->ncampaigns, field,
			               fl, why, wl);
		} else {
			return fail(field, fl, why, wl, f,
			            "unknown field (name, team, keywords, channels, tiers, tags, "
			            "campaigns)");
		}
		if (rc < 0)
			return rc;
	}
	if (!have_team) {
		snprintf(f, sizeof f, "rules[%zu].team", ri);
		return fail(field, fl, why, wl, f, "every rule names the team it routes to");
	}
	return 0;
}

int desk_rules_parse(const json_t *j, struct desk_rules *r, char *field, size_t fl, char *why,
                     size_t wl)
{
	memset(r, 0, sizeof *r);
	if (!json_is_object(j))
		return fail(field, fl, why, wl, "", "a JSON object {\"rules\": [...]} expected");
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)j, k, v)
	{
		if (strcmp(k, "rules") == 0 || strcmp(k, "v") == 0 || strcmp(k, "updated_at") == 0)
			continue;
		if (strcmp(k, "default_team") == 0) {
			if (json_is_null(v))
				continue;
			if (!desk_id_valid(json_string_value(v)))
				return fail(field, fl, why, wl, k,
				            "a team id (1..%d of A-Z a-z 0-9 _ -) expected",
				            DESK_ID_MAX);
			snprintf(r->default_team, sizeof r->default_team, "%s",
			         json_string_value(v));
			continue;
		}
		return fail(field, fl, why, wl, k, "unknown field (rules, default_team)");
	}
	const json_t *rules = json_object_get(j, "rules");
	if (!rules)
		return fail(field, fl, why, wl, "rules", "the ordered list of rules is required");
	if (!json_is_array(rules) || json_array_size(rules) > DESK_RULES_MAX)
		return fail(field, fl, why, wl, "rules", "an array of at most %d rules expected",
		            DESK_RULES_MAX);
	r->rule = xcalloc(json_array_size(rules) + 1, sizeof *r->rule);
	size_t i;
	json_t *e;
	json_array_foreach(rules, i, e)
	{
		r->n = i + 1; /* freed by desk_rules_free even when half parsed */
		int rc = rule_parse(e, i, &r->rule[i], field, fl, why, wl);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static json_t *strv_json(char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

json_t *desk_rules_json(const struct desk_rules *r)
{
	json_t *o = json_object(), *a = json_array();
	for (size_t i = 0; r && i < r->n; i++) {
		const struct desk_rule *x = &r->rule[i];
		json_t *e = json_object();
		if (x->name && *x->name)
			json_object_set_new(e, "name", json_string(x->name));
		json_object_set_new(e, "team", json_string(x->team));
		if (x->nkeywords)
			json_object_set(e, "keywords", x->source);
		if (x->nchannels)
			json_object_set_new(e, "channels", strv_json(x->channels, x->nchannels));
		if (x->ntiers)
			json_object_set_new(e, "tiers", strv_json(x->tiers, x->ntiers));
		if (x->ntags)
			json_object_set_new(e, "tags", strv_json(x->tags, x->ntags));
		if (x->ncampaigns)
			json_object_set_new(e, "campaigns", strv_json(x->campaigns, x->ncampaigns));
		json_array_append_new(a, e);
	}
	json_object_set_new(o, "rules", a);
	json_object_set_new(o, "default_team",
	                    r && r->default_team[0] ? json_string(r->default_team) : json_null());
	return o;
}

/* ---- matching ------------------------------------------------------------ */

/* Punctuation and symbols that end a word (besides white space). */
static int is_separator(uint32_t cp)
{
	if (cp < 0x80)
		return !((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
		         (cp >= '0' && cp <= '9') || cp == '_');
	if (text_is_space(cp))
		return 1;
	return (cp >= 0xA1 && cp <= 0xBF) || cp == 0xD7 || cp == 0xF7 ||
	       cp == 0x060C ||                   /* Arabic comma */
	       cp == 0x061B || cp == 0x061F ||   /* Arabic semicolon, question mark */
	       (cp >= 0x066A && cp <= 0x066D) || /* Arabic percent, separators, star */
	       cp == 0x06D4 ||                   /* Arabic full stop */
	       (cp >= 0x2010 && cp <= 0x2027) || /* dashes, quotes, bullets, ellipsis */
	       (cp >= 0x2030 && cp <= 0x205E) || /* per mille ... (not ZWNJ/ZWJ) */
	       (cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xFE50 && cp <= 0xFE6F) ||
	       (cp >= 0xFF01 && cp <= 0xFF0F);
}

/* 1 when position off of s starts a word. */
static int word_start(const char *s, size_t off)
{
	if (off == 0)
		return 1;
	size_t b = off - 1;
	while (b > 0 && ((unsigned char)s[b] & 0xC0) == 0x80 && off - b < 4)
		b--;
	uint32_t cp;
	if (utf8_decode(s + b, off - b, &cp) != (int)(off - b))
		return 1; /* cannot happen on valid UTF-8 */
	return is_separator(cp);
}

int desk_keyword_in(const char *text, const char *kw)
{
	if (!text || !kw || !*kw)
		return 0;
	for (const char *p = strstr(text, kw); p; p = strstr(p + 1, kw))
		if (word_start(text, (size_t)(p - text)))
			return 1;
	return 0;
}

static int in_list(char *const *v, size_t n, const char *s)
{
	if (!s || !*s)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

static int rule_matches(const struct desk_rule *r, const struct desk_reply *m, const char *norm)
{
	if (r->nchannels && !in_list(r->channels, r->nchannels, m->channel))
		return 0;
	if (r->ntiers && !in_list(r->tiers, r->ntiers, m->tier))
		return 0;
	if (r->ncampaigns && !in_list(r->campaigns, r->ncampaigns, m->campaign))
		return 0;
	if (r->ntags) {
		int any = 0;
		for (size_t i = 0; i < m->ntags && !any; i++)
			any = in_list(r->tags, r->ntags, m->tags[i]);
		if (!any)
			return 0;
	}
	if (r->nkeywords) {
		int any = 0;
		for (size_t i = 0; i < r->nkeywords && !any; i++)
			any = desk_keyword_in(norm, r->keywords[i]);
		if (!any)
			return 0;
	}
	return 1;
}

const char *desk_route(const struct desk_rules *r, const struct desk_reply *m, enum desk_via *via,
                       int *rule)
{
	enum desk_via dummy;
	if (!via)
		via = &dummy;
	if (rule)
		*rule = -1;
	if (m->forward && desk_id_valid(m->forward)) {
		*via = DESK_VIA_CAMPAIGN;
		return m->forward;
	}
	if (r && r->n) {
		char *norm = text_normalize(m->text ? m->text : "");
		for (size_t i = 0; i < r->n; i++)
			if (rule_matches(&r->rule[i], m, norm ? norm : "")) {
				free(norm);
				*via = DESK_VIA_RULE;
				if (rule)
					*rule = (int)i;
				return r->rule[i].team;
			}
		free(norm);
	}
	if (r && r->default_team[0]) {
		*via = DESK_VIA_DEFAULT;
		return r->default_team;
	}
	*via = DESK_VIA_FALLBACK;
	return DESK_FALLBACK_TEAM;
}

/* ---- transitions --------------------------------------------------------- */

int desk_next_state(enum desk_state s, enum desk_op op, int has_operator)
{
	if ((int)s < 0 || s >= DESK_STATES || s == DESK_CLOSED)
		return -1; /* a closed ticket stays closed: the customer gets a new one */
	switch (op) {
	case DESK_OP_ASSIGN:
		return s == DESK_ANSWERED ? DESK_ANSWERED : DESK_ASSIGNED;
	case DESK_OP_ANSWER:
		return DESK_ANSWERED;
	case DESK_OP_CLOSE:
		return DESK_CLOSED;
	case DESK_OP_CUSTOMER:
		if (s == DESK_ANSWERED)
			return has_operator ? DESK_ASSIGNED : DESK_OPEN;
		return s;
	}
	return -1;
}

void desk_transitions(enum desk_op op, int has_operator, char *out, size_t n)
{
	size_t off = 0;
	out[0] = '\0';
	for (int s = 0; s < DESK_STATES; s++) {
		int to = desk_next_state((enum desk_state)s, op, has_operator);
		if (to < 0)
			continue;
		int w = snprintf(out + off, n - off, "%s%s:%s", off ? "," : "", state_names[s],
		                 state_names[to]);
		if (w < 0 || (size_t)w >= n - off) {
			out[off] = '\0';
			return;
		}
		off += (size_t)w;
	}
}

/* ---- statistics ------------------------------------------------------------ */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least p% of the values <= it. */
static int64_t rank(const int64_t *v, size_t n, int p)
{
	size_t k = (n * (size_t)p + 99) / 100;
	if (k < 1)
		k = 1;
	return v[k - 1];
}

void desk_frt_compute(int64_t *ms, size_t n, struct desk_frt *out)
{
	memset(out, 0, sizeof *out);
	out->n = n;
	if (n == 0)
		return;
	qsort(ms, n, sizeof *ms, cmp_i64);
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += (double)ms[i];
	out->mean = sum / (double)n;
	out->p50 = rank(ms, n, 50);
	out->p90 = rank(ms, n, 90);
}
