/*
 * segment.c - audience definitions: the JSON grammar (docs/segments.md),
 * its validation into a condition tree, and the streamed evaluation of that
 * tree over every contact.
 *
 * A scan walks the contact index in id order, one batch at a time, pulled
 * by the consumer (segment_scan_next).  Per batch it pipelines, on the
 * store's one connection: one SMISMEMBER per engagement set the definition
 * names, one HMGET per contact for exactly the fields the definition reads
 * (or HGETALL for a whole-contact export), and the next page of ids.  Each
 * contact is evaluated in the HMGET reply's callback (replies are borrowed,
 * so nothing but the matches is copied), and the batch is delivered when
 * every reply is in.  Replies arrive in command order on one connection,
 * which is what pairs an engagement bitmap with its contacts.
 *
 * Owns the condition tree and each scan's batch buffers.  Never names a
 * Redis key (store_segments.c does), never writes, never holds more than
 * one batch of matches and the next page of ids.
 *
 * Limits: definitions up to SEG_DEPTH_MAX levels and SEG_NODES_MAX
 * conditions, lists of SEG_LIST_MAX items, strings of SEG_STR_MAX bytes,
 * SEG_ENG_MAX engagement sets, SEG_FIELDS_MAX contact fields; batches of
 * 1..SEG_BATCH_MAX contacts.  Numbers compare as doubles (53-bit).
 */
#include "segment.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "cdate.h"
#include "jalali.h"
#include "log.h"
#include "prefs.h"
#include "text.h"
#include "tz.h"
#include "util.h"

#define SEG_DEPTH_MAX     16
#define SEG_NODES_MAX     512
#define SEG_LIST_MAX      256
#define SEG_STR_MAX       1024
#define SEG_NAME_MAX      64
#define SEG_SETS_MAX      64
#define SEG_FIELDS_MAX    64
#define SEG_EXTRA_MAX     32
#define SEG_BATCH_DEFAULT 1000
#define SEG_BATCH_MAX     10000
#define DAY_MS            86400000LL

enum nkind { N_ALL, N_ANY, N_NOT, N_TAGS, N_TIER, N_CMP, N_DATE, N_ENG, N_REACH };
enum cmp_op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_CONTAINS, OP_EXISTS };
enum val_type { V_NUM, V_STR, V_BOOL };
enum date_op { D_WITHIN, D_BEFORE, D_AFTER, D_MONTH, D_EXISTS };
enum month_rel { M_ABS, M_CURRENT, M_NEXT };
/* How a date field is stored: ms integer text, or a JSON attribute value. */
enum date_store { DS_MS, DS_JSON };

struct strlist {
	char **v;
	size_t n;
};

struct node {
	enum nkind kind;
	struct node **kids; /* all / any / not */
	size_t nkids;
	/* tags: the names, and their set indexes (segment.sets) */
	struct strlist t_all, t_any, t_none;
	int *ix_all, *ix_any, *ix_none;
	/* tier */
	struct strlist tiers;
	int tier_none; /* null in the list: no tier matches */
	/* comparisons (attr / field) and dates */
	int slot, slot2; /* field slots; slot2 = fallback (joined -> created), -1 */
	int json;        /* the slot holds a JSON value (x:<attr>) */
	int json2;
	enum cmp_op op;
	enum val_type vt;
	double num;
	int has_num;
	char *str; /* normalised */
	int b;
	int exists_want;
	enum date_op dop;
	int64_t t;      /* before/after: absolute instant */
	int64_t window; /* within_last; before/after relative ("30d" ago) when > 0 */
	int rel;        /* before/after value is relative */
	int month;      /* 1..12 */
	enum month_rel mrel;
	int jalali; /* month in the Jalali calendar */
	char *tz;   /* month: local date in this zone (NULL = UTC) */
	/* engagement: its set index */
	int eng;
	/* reachability */
	int kindmask;     /* bit per addr kind */
	int cat;          /* -1: no category */
	int slot_addr[3]; /* per addr kind */
	int slot_prefs;
};

/* A set read with SMISMEMBER per batch: eng:{what}:{ref}, or tag:{ref}
 * when what is NULL. */
struct set_ref {
	char *what, *ref;
};

struct segment {
	struct node *root; /* NULL: everyone */
	char **fields;     /* fields[0] == "id" */
	size_t nfields;
	int all;
	struct set_ref *sets;
	size_t nsets;
	size_t nnodes;
	int fields_needed; /* a condition reads the contact hash */
};

/* ---- small helpers ------------------------------------------------------ */

static void strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void node_free(struct node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	free(n->kids);
	strlist_free(&n->t_all);
	strlist_free(&n->t_any);
	strlist_free(&n->t_none);
	free(n->ix_all);
	free(n->ix_any);
	free(n->ix_none);
	strlist_free(&n->tiers);
	free(n->str);
	free(n->tz);
	free(n);
}

void segment_free(struct segment *s)
{
	if (!s)
		return;
	node_free(s->root);
	for (size_t i = 0; i < s->nfields; i++)
		free(s->fields[i]);
	free(s->fields);
	for (size_t i = 0; i < s->nsets; i++) {
		free(s->sets[i].what);
		free(s->sets[i].ref);
	}
	free(s->sets);
	free(s);
}

int segment_id_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	if (n < 1 || n > SEGMENT_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && id[i] != '_' && id[i] != '-')
			return 0;
	return 1;
}

int segment_is_all(const struct segment *s)
{
	return !s || s->all;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_ms(int64_t ms, int *y, int *m, int *d)
{
	int64_t z = (ms >= 0 ? ms : ms - (DAY_MS - 1)) / DAY_MS + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int dd = (int)(doy - (153 * mp + 2) / 5 + 1);
	int mm = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (mm <= 2));
	*m = mm;
	*d = dd;
}

/* A strict decimal number ("12", "-3.5", "1e3"); no hex, inf or nan. */
static int parse_num(const char *s, double *out)
{
	if (!s || !*s)
		return -1;
	for (const char *p = s; *p; p++)
		if (!strchr("0123456789+-.eE", *p))
			return -1;
	if (!isdigit((unsigned char)s[0]) && !(strchr("+-.", s[0]) && s[1]))
		return -1;
	char *end = NULL;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

int segment_date_lenient(const char *in, struct cdate *out)
{
	char *s = text_ascii_digits(in);
	if (!s)
		return -EINVAL;
	char buf[32];
	size_t n = strlen(s), k = 0;
	const char *p = s;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	while (n && (*p == ' ' || *p == '\t'))
		p++, n--;
	int jal = 0;
	if (n >= 2 && p[0] == 'j' && p[1] == ':') {
		jal = 1;
		p += 2;
		n -= 2;
	}
	if (n == 0 || n >= sizeof buf - 3) {
		free(s);
		return -EINVAL;
	}
	/* Y/M/D or Y-M-D with one- or two-digit month and day. */
	int y = 0, m = 0, d = 0, part = 0, digits = 0;
	size_t i = 0;
	if (n >= 2 && p[0] == '-' && p[1] == '-') {
		part = 1;
		i = 2;
	}
	int yearless = part == 1;
	for (; i <= n; i++) {
		char c = i < n ? p[i] : '\0';
		if (c >= '0' && c <= '9') {
			int *t = part == 0 ? &y : part == 1 ? &m : &d;
			if (++digits > (part == 0 ? 4 : 2)) {
				free(s);
				return -EINVAL;
			}
			*t = *t * 10 + (c - '0');
		} else if ((c == '-' || c == '/' || c == '\0') && digits > 0 &&
		           (part < 2 || c == '\0')) {
			if (part == 0 && digits != 4) {
				free(s);
				return -EINVAL;
			}
			part++;
			digits = 0;
		} else {
			free(s);
			return -EINVAL;
		}
	}
	free(s);
	if (part != 3)
		return -EINVAL;
	if (!yearless && y < 1700)
		jal = 1;
	if (yearless)
		k = (size_t)snprintf(buf, sizeof buf, "%s--%02d-%02d", jal ? "j:" : "", m, d);
	else
		k = (size_t)snprintf(buf, sizeof buf, "%s%04d-%02d-%02d", jal ? "j:" : "", y, m, d);
	if (k >= sizeof buf)
		return -EINVAL;
	return cdate_parse(buf, out);
}

/* A duration such as "30d", "12h", "2w" (Persian digits accepted); > 0. */
static int parse_window(const char *in, int64_t *out)
{
	char *s = text_normalize(in);
	if (!s)
		return -EINVAL;
	int rc = -EINVAL;
	size_t n = strlen(s);
	int64_t v = 0;
	if (n >= 2 && s[n - 1] == 'w') {
		s[n - 1] = '\0';
		if (parse_i64(s, 1, 10000, &v) == 0) {
			v *= 7 * DAY_MS;
			rc = 0;
		}
	} else if (n >= 2 && isalpha((unsigned char)s[n - 1]) && parse_duration_ms(s, &v) == 0 &&
	           v > 0) {
		rc = 0;
	}
	free(s);
	if (rc == 0)
		*out = v;
	return rc;
}

/* ---- parsing ------------------------------------------------------------ */

struct pctx {
	struct segment *s;
	char path[256];
	size_t plen;
	const char *reason;
	int depth;
	int full; /* a field did not fit in SEG_FIELDS_MAX */
};

static char err_field[256];

static size_t path_push(struct pctx *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static size_t path_push(struct pctx *p, const char *fmt, ...)
{
	size_t old = p->plen;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(p->path + p->plen, sizeof p->path - p->plen, fmt, ap);
	va_end(ap);
	if (n > 0) {
		p->plen += (size_t)n;
		if (p->plen >= sizeof p->path)
			p->plen = sizeof p->path - 1;
	}
	return old;
}

static void path_pop(struct pctx *p, size_t old)
{
	p->plen = old;
	p->path[old] = '\0';
}

static int fail(struct pctx *p, const char *reason)
{
	p->reason = reason;
	return -EINVAL;
}

/* fail at path + "." + key */
static int fail_at(struct pctx *p, const char *key, const char *reason)
{
	path_push(p, "%s%s", p->plen ? "." : "", key);
	return fail(p, reason);
}

static int slot_of(struct pctx *p, const char *name)
{
	struct segment *s = p->s;
	for (size_t i = 0; i < s->nfields; i++)
		if (strcmp(s->fields[i], name) == 0)
			return (int)i;
	if (s->nfields >= SEG_FIELDS_MAX) {
		p->full = 1;
		return -1;
	}
	s->fields = xrealloc(s->fields, (s->nfields + 1) * sizeof *s->fields);
	s->fields[s->nfields] = xstrdup(name);
	return (int)s->nfields++;
}

static int valid_name(const char *k)
{
	size_t n = strlen(k);
	if (n < 1 || n > SEG_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)k[i]) && !strchr("_.-", k[i]))
			return 0;
	return 1;
}

static int only_keys(struct pctx *p, const json_t *o, const char *const *keys)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)o, k, v)
	{
		int ok = 0;
		for (size_t i = 0; keys[i]; i++)
			ok |= strcmp(k, keys[i]) == 0;
		if (!ok) {
			snprintf(err_field, sizeof err_field, "%.60s", k);
			return fail_at(p, err_field, "unknown key");
		}
	}
	return 0;
}

static int parse_cond(struct pctx *p, const json_t *j, struct node **out);

/* The index of set (what, ref) in the segment, added when new; -1 when
 * there are SEG_SETS_MAX already. */
static int set_index(struct pctx *p, const char *what, const char *ref)
{
	struct segment *s = p->s;
	for (size_t i = 0; i < s->nsets; i++)
		if (!what == !s->sets[i].what && (!what || strcmp(s->sets[i].what, what) == 0) &&
		    strcmp(s->sets[i].ref, ref) == 0)
			return (int)i;
	if (s->nsets >= SEG_SETS_MAX)
		return -1;
	s->sets = xrealloc(s->sets, (s->nsets + 1) * sizeof *s->sets);
	s->sets[s->nsets].what = what ? xstrdup(what) : NULL;
	s->sets[s->nsets].ref = xstrdup(ref);
	return (int)s->nsets++;
}

static int tag_indexes(struct pctx *p, const struct strlist *l, int **out)
{
	*out = xcalloc(l->n ? l->n : 1, sizeof **out);
	for (size_t i = 0; i < l->n; i++)
		if (((*out)[i] = set_index(p, NULL, l->v[i])) < 0)
			return fail(p, "too many tags and engagement conditions (at most 64)");
	return 0;
}

static int parse_strlist(struct pctx *p, const char *key, const json_t *v, struct strlist *l,
                         int allow_null, int *saw_null)
{
	size_t old = path_push(p, "%s%s", p->plen ? "." : "", key);
	if (!json_is_array(v))
		return fail(p, "must be an array of strings");
	if (json_array_size(v) > SEG_LIST_MAX)
		return fail(p, "too many items (at most 256)");
	size_t i;
	json_t *x;
	json_array_foreach(v, i, x)
	{
		if (allow_null && json_is_null(x)) {
			*saw_null = 1;
			continue;
		}
		if (!json_is_string(x) || json_string_length(x) < 1 ||
		    json_string_length(x) > SEG_NAME_MAX * 4 ||
		    strlen(json_string_value(x)) != json_string_length(x)) {
			path_push(p, "[%zu]", i);
			return fail(p, "must be a non-empty string of at most 256 bytes");
		}
		l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
		l->v[l->n++] = xstrdup(json_string_value(x));
	}
	path_pop(p, old);
	return 0;
}

static int parse_tags(struct pctx *p, const json_t *o, struct node *n)
{
	size_t old = path_push(p, "%stags", p->plen ? "." : "");
	const json_t *t = json_object_get(o, "tags");
	if (!json_is_object(t) || json_object_size(t) == 0)
		return fail(p, "an object with all, any and/or none");
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)t, k, v)
	{
		struct strlist *l = strcmp(k, "all") == 0    ? &n->t_all
		                    : strcmp(k, "any") == 0  ? &n->t_any
		                    : strcmp(k, "none") == 0 ? &n->t_none
		                                             : NULL;
		if (!l) {
			snprintf(err_field, sizeof err_field, "%.60s", k);
			return fail_at(p, err_field, "unknown key (all, any, none)");
		}
		if (parse_strlist(p, k, v, l, 0, NULL) < 0)
			return -EINVAL;
	}
	if (tag_indexes(p, &n->t_all, &n->ix_all) < 0 ||
	    tag_indexes(p, &n->t_any, &n->ix_any) < 0 ||
	    tag_indexes(p, &n->t_none, &n->ix_none) < 0)
		return -EINVAL;
	path_pop(p, old);
	return 0;
}

static int parse_tier(struct pctx *p, const json_t *o, struct node *n)
{
	size_t old = path_push(p, "%stier", p->plen ? "." : "");
	const json_t *t = json_object_get(o, "tier");
	static const char *const keys[] = {"in", NULL};
	if (!json_is_object(t) || !json_object_get(t, "in"))
		return fail(p, "an object {\"in\": [tier names, or null for no tier]}");
	if (only_keys(p, t, keys) < 0)
		return -EINVAL;
	if (parse_strlist(p, "in", json_object_get(t, "in"), &n->tiers, 1, &n->tier_none) < 0)
		return -EINVAL;
	path_pop(p, old);
	n->slot = slot_of(p, "tier");
	return 0;
}

static const struct {
	const char *name;
	int numeric; /* an integer in text (points, ms) */
} builtin_fields[] = {
    {"name", 0},    {"first_name", 0}, {"last_name", 0},     {"lang", 0},        {"tz", 0},
    {"tier", 0},    {"points", 1},     {"ref", 0},           {"referred_by", 0}, {"lead", 0},
    {"created", 1}, {"updated", 1},    {"last_purchase", 1},
};

static int parse_op(const char *s, enum cmp_op *op)
{
	static const char *const names[] = {"eq", "ne", "lt",       "le",
	                                    "gt", "ge", "contains", "exists"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(s, names[i]) == 0) {
			*op = (enum cmp_op)i;
			return 0;
		}
	return -1;
}

static int parse_cmp(struct pctx *p, const json_t *o, struct node *n, int is_attr)
{
	static const char *const keys_attr[] = {"attr", "op", "value", NULL};
	static const char *const keys_field[] = {"field", "op", "value", NULL};
	if (only_keys(p, o, is_attr ? keys_attr : keys_field) < 0)
		return -EINVAL;
	const char *key = is_attr ? "attr" : "field";
	const char *name = json_string_value(json_object_get(o, key));
	char fname[SEG_NAME_MAX + 3];
	if (!name)
		return fail_at(p, key, "must be a string");
	if (is_attr) {
		if (!valid_name(name))
			return fail_at(p, key, "an attribute name: 1..64 of A-Z a-z 0-9 _ . -");
		snprintf(fname, sizeof fname, "x:%s", name);
		n->json = 1;
	} else {
		size_t i;
		for (i = 0; i < ARRAY_SIZE(builtin_fields); i++)
			if (strcmp(name, builtin_fields[i].name) == 0)
				break;
		if (i == ARRAY_SIZE(builtin_fields))
			return fail_at(p, key,
			               "a contact field: name, first_name, last_name, lang, tz, "
			               "tier, points, ref, referred_by, lead, created, updated, "
			               "last_purchase");
		snprintf(fname, sizeof fname, "%s", name);
	}
	const char *ops = json_string_value(json_object_get(o, "op"));
	if (!ops || parse_op(ops, &n->op) < 0)
		return fail_at(p, "op", "one of eq, ne, lt, le, gt, ge, contains, exists");
	const json_t *v = json_object_get(o, "value");
	if (n->op == OP_EXISTS) {
		n->exists_want = 1;
		if (v && !json_is_boolean(v))
			return fail_at(p, "value", "exists takes true or false (or no value)");
		if (v)
			n->exists_want = json_is_true(v);
	} else if (!v) {
		return fail_at(p, "value", "required");
	} else if (json_is_number(v)) {
		n->vt = V_NUM;
		n->num = json_number_value(v);
		n->has_num = 1;
		if (n->op == OP_CONTAINS)
			return fail_at(p, "value", "contains takes a string");
	} else if (json_is_boolean(v)) {
		n->vt = V_BOOL;
		n->b = json_is_true(v);
		if (n->op != OP_EQ && n->op != OP_NE)
			return fail_at(p, "value", "true and false only compare with eq and ne");
	} else if (json_is_string(v)) {
		if (json_string_length(v) > SEG_STR_MAX ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return fail_at(p, "value", "a string of at most 1024 bytes");
		n->vt = V_STR;
		n->str = text_normalize(json_string_value(v));
		if (!n->str)
			return fail_at(p, "value", "not valid UTF-8");
		n->has_num = parse_num(n->str, &n->num) == 0;
		if (n->op == OP_CONTAINS && !*n->str)
			return fail_at(p, "value", "contains needs a non-empty string");
	} else {
		return fail_at(p, "value", "a string, number or boolean");
	}
	n->slot = slot_of(p, fname);
	return 0;
}

/* A date value for before/after: an absolute date or time, or "30d" ago. */
static int parse_when(struct pctx *p, const json_t *v, struct node *n)
{
	const char *s = json_string_value(v);
	struct cdate cd;
	if (!s)
		return fail_at(p, "value",
		               "a date (\"2024-03-20\", \"j:1403-01-01\"), a time "
		               "(RFC 3339) or a window ago (\"30d\")");
	if (parse_window(s, &n->window) == 0) {
		n->rel = 1;
		return 0;
	}
	if (segment_date_lenient(s, &cd) == 0 && cd.y) {
		int gy, gm, gd;
		if (cdate_to_gregorian(&cd, &gy, &gm, &gd) < 0)
			return fail_at(p, "value", "not a valid date");
		n->t = days_from_civil(gy, gm, gd) * DAY_MS;
		return 0;
	}
	if (parse_time(s, &n->t) == 0)
		return 0;
	return fail_at(p, "value",
	               "a date (\"2024-03-20\", \"j:1403-01-01\"), a time "
	               "(RFC 3339) or a window ago (\"30d\")");
}

static int parse_date(struct pctx *p, const json_t *o, struct node *n)
{
	static const char *const keys[] = {"date", "op", "value", "calendar", "tz", NULL};
	if (only_keys(p, o, keys) < 0)
		return -EINVAL;
	const char *src = json_string_value(json_object_get(o, "date"));
	n->slot2 = -1;
	if (!src)
		return fail_at(p, "date", "must be a string");
	if (strcmp(src, "joined") == 0) {
		n->slot = slot_of(p, "x:joined");
		n->json = 1;
		n->slot2 = slot_of(p, "created");
	} else if (strcmp(src, "created") == 0 || strcmp(src, "updated") == 0 ||
	           strcmp(src, "last_purchase") == 0) {
		n->slot = slot_of(p, src);
	} else if (strcmp(src, "birthday") == 0) {
		n->slot = slot_of(p, "x:birthday");
		n->json = 1;
	} else if (strncmp(src, "attr:", 5) == 0 && valid_name(src + 5)) {
		char f[SEG_NAME_MAX + 3];
		snprintf(f, sizeof f, "x:%s", src + 5);
		n->slot = slot_of(p, f);
		n->json = 1;
	} else {
		return fail_at(p, "date",
		               "joined, created, updated, last_purchase, birthday or attr:NAME");
	}
	const char *op = json_string_value(json_object_get(o, "op"));
	const json_t *v = json_object_get(o, "value");
	const json_t *cal = json_object_get(o, "calendar"), *tz = json_object_get(o, "tz");
	if (!op)
		return fail_at(p, "op", "within_last, before, after, month or exists");
	if ((cal || tz) && strcmp(op, "month") != 0)
		return fail_at(p, cal ? "calendar" : "tz", "only with op month");
	if (strcmp(op, "within_last") == 0) {
		n->dop = D_WITHIN;
		if (!json_is_string(v) || parse_window(json_string_value(v), &n->window) < 0)
			return fail_at(p, "value", "a window such as \"30d\", \"12h\" or \"2w\"");
	} else if (strcmp(op, "before") == 0 || strcmp(op, "after") == 0) {
		n->dop = op[0] == 'b' ? D_BEFORE : D_AFTER;
		if (parse_when(p, v, n) < 0)
			return -EINVAL;
	} else if (strcmp(op, "month") == 0) {
		n->dop = D_MONTH;
		const char *ms = json_string_value(v);
		if (json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 12)
			n->month = (int)json_integer_value(v);
		else if (ms && strcmp(ms, "current") == 0)
			n->mrel = M_CURRENT;
		else if (ms && strcmp(ms, "next") == 0)
			n->mrel = M_NEXT;
		else
			return fail_at(p, "value", "a month 1..12, \"current\" or \"next\"");
		if (cal) {
			const char *c = json_string_value(cal);
			if (c && strcmp(c, "jalali") == 0)
				n->jalali = 1;
			else if (!c || strcmp(c, "gregorian") != 0)
				return fail_at(p, "calendar", "gregorian or jalali");
		}
		if (tz) {
			if (!json_is_string(tz) || !tz_valid(json_string_value(tz)))
				return fail_at(p, "tz", "an IANA time zone such as Asia/Tehran");
			n->tz = xstrdup(json_string_value(tz));
		}
	} else if (strcmp(op, "exists") == 0) {
		n->dop = D_EXISTS;
		n->exists_want = 1;
		if (v && !json_is_boolean(v))
			return fail_at(p, "value", "exists takes true or false (or no value)");
		if (v)
			n->exists_want = json_is_true(v);
	} else {
		return fail_at(p, "op", "within_last, before, after, month or exists");
	}
	return 0;
}

static int parse_engaged(struct pctx *p, const json_t *o, struct node *n)
{
	static const char *const keys[] = {"engaged", "id", NULL};
	static const char *const whats[] = {"replied", "clicked", "sent", "answered", "entered"};
	if (only_keys(p, o, keys) < 0)
		return -EINVAL;
	const char *what = json_string_value(json_object_get(o, "engaged"));
	size_t i;
	for (i = 0; what && i < ARRAY_SIZE(whats); i++)
		if (strcmp(what, whats[i]) == 0)
			break;
	if (!what || i == ARRAY_SIZE(whats))
		return fail_at(p, "engaged", "replied, clicked, sent, answered or entered");
	const char *ref = json_string_value(json_object_get(o, "id"));
	if (!ref || !valid_name(ref))
		return fail_at(p, "id",
		               "the campaign, survey or raffle id (1..64 of A-Z a-z 0-9 _ . -)");
	n->eng = set_index(p, what, ref);
	if (n->eng < 0)
		return fail_at(p, "engaged",
		               "too many tags and engagement conditions (at most 64)");
	return 0;
}

static int parse_reach(struct pctx *p, const json_t *o, struct node *n)
{
	static const char *const keys[] = {"reachable", "category", NULL};
	if (only_keys(p, o, keys) < 0)
		return -EINVAL;
	const char *ch = json_string_value(json_object_get(o, "reachable"));
	int k = ch ? addr_kind_parse(ch) : -1;
	if (ch && strcmp(ch, "any") == 0)
		n->kindmask = (1 << ADDR_KINDS) - 1;
	else if (k >= 0)
		n->kindmask = 1 << k;
	else
		return fail_at(p, "reachable", "sms, email, chat or any");
	n->cat = -1;
	const json_t *c = json_object_get(o, "category");
	if (c) {
		const char *cs = json_string_value(c);
		n->cat = cs ? category_parse(cs) : -1;
		if (n->cat < 0)
			return fail_at(p, "category",
			               "transactional, promotional, survey, lottery or occasion");
	}
	for (int i = 0; i < ADDR_KINDS; i++) {
		n->slot_addr[i] = -1;
		if (n->kindmask & (1 << i)) {
			char f[16];
			snprintf(f, sizeof f, "a:%s", addr_kind_name((enum addr_kind)i));
			n->slot_addr[i] = slot_of(p, f);
		}
	}
	n->slot_prefs = slot_of(p, "prefs");
	return 0;
}

static int parse_list(struct pctx *p, const char *key, const json_t *v, struct node *n)
{
	size_t old = path_push(p, "%s%s", p->plen ? "." : "", key);
	if (!json_is_array(v))
		return fail(p, "must be an array of conditions");
	if (json_array_size(v) > SEG_LIST_MAX)
		return fail(p, "too many conditions (at most 256)");
	n->kids = xcalloc(json_array_size(v) ? json_array_size(v) : 1, sizeof *n->kids);
	size_t i;
	json_t *x;
	json_array_foreach(v, i, x)
	{
		size_t o2 = path_push(p, "[%zu]", i);
		int rc = parse_cond(p, x, &n->kids[n->nkids]);
		if (n->kids[n->nkids])
			n->nkids++; /* freed with the tree, also after an error */
		if (rc < 0)
			return -EINVAL;
		path_pop(p, o2);
	}
	path_pop(p, old);
	return 0;
}

static const char *const cond_ops[] = {"all",  "any",   "not",  "tags",    "tier",
                                       "attr", "field", "date", "engaged", "reachable"};

static int has_cond_key(const json_t *j)
{
	for (size_t i = 0; i < ARRAY_SIZE(cond_ops); i++)
		if (json_object_get(j, cond_ops[i]))
			return 1;
	return 0;
}

static int parse_cond(struct pctx *p, const json_t *j, struct node **out)
{
	if (!json_is_object(j))
		return fail(p, "a condition must be an object");
	if (++p->depth > SEG_DEPTH_MAX)
		return fail(p, "nested too deeply (at most 16 levels)");
	if (++p->s->nnodes > SEG_NODES_MAX)
		return fail(p, "too many conditions (at most 512)");
	const char *const *ops = cond_ops;
	const char *which = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(cond_ops); i++)
		if (json_object_get(j, ops[i])) {
			if (which)
				return fail(p, "one condition per object: wrap several in "
				               "{\"all\": [...]}");
			which = ops[i];
		}
	if (!which) {
		if (json_object_size(j) == 0) { /* {} = everyone */
			struct node *n = xcalloc(1, sizeof *n);
			n->kind = N_ALL;
			*out = n;
			p->depth--;
			return 0;
		}
		return fail(p, "a condition: all, any, not, tags, tier, attr, field, date, "
		               "engaged or reachable");
	}
	struct node *n = xcalloc(1, sizeof *n);
	*out = n;
	n->slot = n->slot2 = n->slot_prefs = -1;
	int rc;
	if (strcmp(which, "all") == 0 || strcmp(which, "any") == 0) {
		static const char *const k1[] = {"all", NULL}, *const k2[] = {"any", NULL};
		n->kind = which[1] == 'l' ? N_ALL : N_ANY;
		rc = only_keys(p, j, n->kind == N_ALL ? k1 : k2);
		if (rc == 0)
			rc = parse_list(p, which, json_object_get(j, which), n);
	} else if (strcmp(which, "not") == 0) {
		static const char *const k[] = {"not", NULL};
		n->kind = N_NOT;
		rc = only_keys(p, j, k);
		if (rc == 0) {
			size_t old = path_push(p, "%snot", p->plen ? "." : "");
			n->kids = xcalloc(1, sizeof *n->kids);
			rc = parse_cond(p, json_object_get(j, "not"), &n->kids[0]);
			n->nkids = n->kids[0] != NULL;
			if (rc == 0)
				path_pop(p, old);
		}
	} else if (strcmp(which, "tags") == 0) {
		static const char *const k[] = {"tags", NULL};
		n->kind = N_TAGS;
		rc = only_keys(p, j, k);
		if (rc == 0)
			rc = parse_tags(p, j, n);
	} else if (strcmp(which, "tier") == 0) {
		static const char *const k[] = {"tier", NULL};
		n->kind = N_TIER;
		rc = only_keys(p, j, k);
		if (rc == 0)
			rc = parse_tier(p, j, n);
	} else if (strcmp(which, "attr") == 0 || strcmp(which, "field") == 0) {
		n->kind = N_CMP;
		rc = parse_cmp(p, j, n, which[0] == 'a');
	} else if (strcmp(which, "date") == 0) {
		n->kind = N_DATE;
		rc = parse_date(p, j, n);
	} else if (strcmp(which, "engaged") == 0) {
		n->kind = N_ENG;
		rc = parse_engaged(p, j, n);
	} else {
		n->kind = N_REACH;
		rc = parse_reach(p, j, n);
	}
	if (rc == 0 && p->full)
		rc = fail(p, "reads too many contact fields (at most 64)");
	p->depth--;
	return rc;
}

int segment_parse(const json_t *def, struct segment **out, const char **field, const char **reason)
{
	struct pctx p = {0};
	const json_t *cond = def;
	*out = NULL;
	*field = "";
	*reason = "";
	if (!json_is_object(def)) {
		*reason = "a segment definition must be a JSON object";
		return -EINVAL;
	}
	if (json_object_get(def, "match")) {
		cond = json_object_get(def, "match");
		path_push(&p, "match");
	}
	p.s = xcalloc(1, sizeof *p.s);
	p.s->fields = xcalloc(1, sizeof *p.s->fields);
	p.s->fields[0] = xstrdup("id");
	p.s->nfields = 1;
	int rc = parse_cond(&p, cond, &p.s->root);
	if (rc < 0) {
		if (!p.plen && cond == def && !has_cond_key(def)) {
			/* neither "match" nor a condition at the top */
			path_push(&p, "match");
			p.reason = "required: the condition (docs/segments.md)";
		}
		snprintf(err_field, sizeof err_field, "%s", p.path);
		*field = err_field;
		*reason = p.reason ? p.reason : "invalid";
		segment_free(p.s);
		return -EINVAL;
	}
	/* {} and {"all": []} match everyone: the scan then reads no field */
	p.s->all = p.s->root->kind == N_ALL && p.s->root->nkids == 0;
	p.s->fields_needed = p.s->nfields > 1;
	*out = p.s;
	return 0;
}

/* ---- evaluation --------------------------------------------------------- */

/* What stays the same for a whole scan: today's date (UTC) in both
 * calendars, for birthday months. */
struct today {
	int ok;
	int gy, gm, gd;
	int jy, jm, jd;
	/* month of this year's occurrence of a yearly date, by [calendar of
	 * the date][m][d][asked in Jalali]: 0 unknown, -1 none, else 1..12
	 * (ICU conversions cost microseconds; a walk meets few distinct days) */
	signed char memo[2][13][32][2];
};

struct ctx {
	const struct segment *s;
	int64_t now;
	const char **v; /* per slot; NULL = absent */
	size_t *vl;
	size_t pos;                 /* position in the batch */
	unsigned char *const *sets; /* per set: 0/1 per position */
	struct today *today;        /* scan-wide cache (UTC) */
	struct prefs prefs;
	int prefs_done;
};

static void today_fill(struct today *t, const char *tz, int64_t now)
{
	memset(t, 0, sizeof *t);
	struct tz_tm tm;
	if (tz && tz_local(tz, now, &tm) == 0) {
		t->gy = tm.year;
		t->gm = tm.month;
		t->gd = tm.day;
	} else {
		civil_from_ms(now, &t->gy, &t->gm, &t->gd);
	}
	if (jalali_from_gregorian(t->gy, t->gm, t->gd, &t->jy, &t->jm, &t->jd) == 0)
		t->ok = 1;
}

static const struct today *today_get(struct ctx *c, const struct node *n, struct today *local)
{
	if (n->tz) {
		today_fill(local, n->tz, c->now);
		return local;
	}
	if (!c->today->ok)
		today_fill(c->today, NULL, c->now);
	return c->today;
}

static int in_set(const struct ctx *c, int set)
{
	return c->sets && c->sets[set] && c->sets[set][c->pos];
}

static int eval_tags(const struct node *n, struct ctx *c)
{
	for (size_t i = 0; i < n->t_all.n; i++)
		if (!in_set(c, n->ix_all[i]))
			return 0;
	for (size_t i = 0; i < n->t_none.n; i++)
		if (in_set(c, n->ix_none[i]))
			return 0;
	if (n->t_any.n) {
		for (size_t i = 0; i < n->t_any.n; i++)
			if (in_set(c, n->ix_any[i]))
				return 1;
		return 0;
	}
	return 1;
}

static int eval_tier(const struct node *n, struct ctx *c)
{
	const char *t = c->v[n->slot];
	if (!t || !*t)
		return n->tier_none;
	for (size_t i = 0; i < n->tiers.n; i++)
		if (strcmp(t, n->tiers.v[i]) == 0)
			return 1;
	return 0;
}

/* A contact's value, typed. */
struct tv {
	int is_bool, b;
	int has_num;
	double num;
	const char *norm; /* normalised text, NULL when not text */
	char *owned;      /* norm when it had to be allocated */
	char buf[256];
};

static int ascii_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* text_normalize() of s[0..n) into x; pure ASCII is done in place. */
static void tv_text(struct tv *x, const char *s, size_t n)
{
	size_t i, o = 0;
	for (i = 0; i < n && !(s[i] & 0x80) && s[i]; i++)
		;
	if (i == n && n < sizeof x->buf) {
		int sp = 0;
		for (i = 0; i < n; i++) {
			char c = s[i];
			if (ascii_space(c)) {
				sp = o > 0;
				continue;
			}
			if (sp)
				x->buf[o++] = ' ';
			sp = 0;
			x->buf[o++] = (char)tolower((unsigned char)c);
		}
		x->buf[o] = '\0';
		x->norm = x->buf;
	} else {
		char *t = xstrndup(s, n);
		x->owned = text_normalize(t);
		free(t);
		x->norm = x->owned;
	}
	if (x->norm)
		x->has_num = parse_num(x->norm, &x->num) == 0;
}

static void tv_release(struct tv *x)
{
	free(x->owned);
}

/* Decode slot value; 0, or -1 when absent. */
static int tv_get(struct ctx *c, int slot, int json, struct tv *x)
{
	x->is_bool = x->b = x->has_num = 0;
	x->norm = x->owned = NULL;
	const char *raw = slot >= 0 ? c->v[slot] : NULL;
	if (!raw)
		return -1;
	size_t len = c->vl[slot];
	if (!json) {
		tv_text(x, raw, len);
		return 0;
	}
	if (len == 4 && memcmp(raw, "true", 4) == 0) {
		x->is_bool = x->b = 1;
		x->norm = "true";
	} else if (len == 5 && memcmp(raw, "false", 5) == 0) {
		x->is_bool = 1;
		x->norm = "false";
	} else if (len >= 2 && raw[0] == '"' && raw[len - 1] == '"' &&
	           !memchr(raw + 1, '\\', len - 2)) {
		tv_text(x, raw + 1, len - 2); /* a JSON string without escapes */
		if (!x->norm)
			return -1;
	} else if (len > 0 && raw[0] == '"') {
		json_t *j = json_loadb(raw, len, JSON_DECODE_ANY, NULL);
		if (json_is_string(j))
			tv_text(x, json_string_value(j), json_string_length(j));
		json_decref(j);
		if (!x->norm)
			return -1;
	} else if (len == 4 && memcmp(raw, "null", 4) == 0) {
		return -1;
	} else if (len < sizeof x->buf) {
		memcpy(x->buf, raw, len);
		x->buf[len] = '\0';
		x->has_num = parse_num(x->buf, &x->num) == 0;
		x->norm = x->buf;
	} else {
		return -1;
	}
	return 0;
}

static int op_result(enum cmp_op op, int c)
{
	switch (op) {
	case OP_EQ:
		return c == 0;
	case OP_NE:
		return c != 0;
	case OP_LT:
		return c < 0;
	case OP_LE:
		return c <= 0;
	case OP_GT:
		return c > 0;
	case OP_GE:
		return c >= 0;
	default:
		return 0;
	}
}

static int eval_cmp(const struct node *n, struct ctx *c)
{
	struct tv x;
	if (tv_get(c, n->slot, n->json, &x) < 0)
		return n->op == OP_NE || (n->op == OP_EXISTS && !n->exists_want);
	int r = 0;
	if (n->op == OP_EXISTS) {
		r = n->exists_want;
	} else if (n->op == OP_CONTAINS) {
		r = x.norm && strstr(x.norm, n->str) != NULL;
	} else if (n->vt == V_BOOL) {
		int eq = x.is_bool ? x.b == n->b
		                   : (x.norm && strcmp(x.norm, n->b ? "true" : "false") == 0);
		r = n->op == OP_EQ ? eq : !eq;
	} else if (n->has_num && x.has_num) {
		r = op_result(n->op, x.num < n->num ? -1 : x.num > n->num ? 1 : 0);
	} else if (n->vt == V_NUM || !x.norm || (n->has_num && n->op != OP_EQ && n->op != OP_NE)) {
		/* a number only orders against a number */
		r = n->op == OP_NE;
	} else {
		int k = strcmp(x.norm, n->str);
		r = op_result(n->op, k < 0 ? -1 : k > 0 ? 1 : 0);
	}
	tv_release(&x);
	return r;
}

/* A contact date: an instant, or a calendar date (maybe without a year). */
struct dval {
	int kind; /* 0 none, 1 instant, 2 calendar date */
	int64_t ms;
	struct cdate cd;
};

static void date_from_slot(struct ctx *c, int slot, int json, struct dval *d)
{
	memset(d, 0, sizeof *d);
	const char *raw = slot >= 0 ? c->v[slot] : NULL;
	if (!raw || !*raw)
		return;
	int64_t v;
	if (!json) {
		if (parse_i64(raw, INT64_MIN / 2, INT64_MAX / 2, &v) == 0) {
			d->kind = 1;
			d->ms = v;
		}
		return;
	}
	size_t len = c->vl[slot];
	if (raw[0] == '"') {
		json_t *j = json_loadb(raw, len, JSON_DECODE_ANY, NULL);
		const char *s = json_string_value(j);
		if (s && segment_date_lenient(s, &d->cd) == 0)
			d->kind = 2;
		else if (s && parse_time(s, &d->ms) == 0)
			d->kind = 1;
		json_decref(j);
		return;
	}
	char buf[32];
	double num;
	if (len < sizeof buf) {
		memcpy(buf, raw, len);
		buf[len] = '\0';
		if (parse_num(buf, &num) == 0 && fabs(num) < 9e15) {
			d->kind = 1;
			d->ms = (int64_t)num;
		}
	}
}

/* Instant of a date value (a calendar date is its 00:00 UTC); -1 when it
 * has none (no year). */
static int date_instant(const struct dval *d, int64_t *ms)
{
	if (d->kind == 1) {
		*ms = d->ms;
		return 0;
	}
	int gy, gm, gd;
	if (d->kind == 2 && d->cd.y && cdate_to_gregorian(&d->cd, &gy, &gm, &gd) == 0) {
		*ms = days_from_civil(gy, gm, gd) * DAY_MS;
		return 0;
	}
	return -1;
}

static int eval_month(const struct node *n, struct ctx *c, const struct dval *d)
{
	struct today local;
	const struct today *t = today_get(c, n, &local);
	if (!t->ok)
		return 0;
	int gy, gm, gd;
	if (d->kind == 1) {
		struct tz_tm tm;
		if (n->tz && tz_local(n->tz, d->ms, &tm) == 0) {
			gy = tm.year;
			gm = tm.month;
			gd = tm.day;
		} else {
			civil_from_ms(d->ms, &gy, &gm, &gd);
		}
	} else {
		/* the yearly occurrence in the current year of the date's own
		 * calendar (Feb 29 -> Feb 28, Esfand 30 -> Esfand 29): it depends
		 * on the month and day only, so it is remembered for the walk
		 * (the UTC "today" only; a zone's today is computed each time) */
		int cal = d->cd.cal == CDATE_JALALI, m = d->cd.m, dd = d->cd.d;
		signed char *memo = NULL;
		if (t == c->today && m >= 1 && m <= 12 && dd >= 1 && dd <= 31)
			memo = &c->today->memo[cal][m][dd][n->jalali];
		if (memo && *memo == 0) {
			int year = cal ? t->jy : t->gy, jy, jm, jd;
			*memo = -1;
			if (cdate_occurrence(&d->cd, year, &gy, &gm, &gd) == 0)
				*memo = (signed char)(!n->jalali ? gm
				                      : jalali_from_gregorian(gy, gm, gd, &jy, &jm,
				                                              &jd) == 0
				                          ? jm
				                          : -1);
		}
		if (memo) {
			if (*memo < 0)
				return 0;
			gm = *memo;
			goto have_month;
		}
		int year = cal ? t->jy : t->gy;
		if (cdate_occurrence(&d->cd, year, &gy, &gm, &gd) < 0)
			return 0;
	}
	int month = gm;
	if (n->jalali) {
		int jy, jm, jd;
		if (jalali_from_gregorian(gy, gm, gd, &jy, &jm, &jd) < 0)
			return 0;
		month = jm;
	}
	if (0) {
	have_month:
		month = gm;
	}
	int want = n->month;
	if (n->mrel != M_ABS) {
		want = n->jalali ? t->jm : t->gm;
		if (n->mrel == M_NEXT)
			want = want % 12 + 1;
	}
	return month == want;
}

static int eval_date(const struct node *n, struct ctx *c)
{
	struct dval d;
	date_from_slot(c, n->slot, n->json, &d);
	if (!d.kind && n->slot2 >= 0)
		date_from_slot(c, n->slot2, 0, &d);
	if (n->dop == D_EXISTS)
		return (d.kind != 0) == n->exists_want;
	if (!d.kind)
		return 0;
	if (n->dop == D_MONTH)
		return eval_month(n, c, &d);
	int64_t t;
	if (date_instant(&d, &t) < 0)
		return 0;
	switch (n->dop) {
	case D_WITHIN:
		return t >= c->now - n->window && t <= c->now;
	case D_BEFORE:
		return t < (n->rel ? c->now - n->window : n->t);
	case D_AFTER:
		return t > (n->rel ? c->now - n->window : n->t);
	default:
		return 0;
	}
}

static const struct prefs *ctx_prefs(struct ctx *c, int slot)
{
	static struct prefs empty;
	static int empty_done;
	if (!c->prefs_done && (slot < 0 || !c->v[slot])) {
		/* no preferences: every consent at its default (the common case) */
		if (!empty_done) {
			const char *field, *reason;
			prefs_parse(NULL, &empty, &field, &reason);
			empty_done = 1;
		}
		return &empty;
	}
	if (!c->prefs_done) {
		c->prefs_done = 1;
		const char *field, *reason;
		json_t *j =
		    slot >= 0 && c->v[slot] ? json_loadb(c->v[slot], c->vl[slot], 0, NULL) : NULL;
		if (prefs_parse(j, &c->prefs, &field, &reason) < 0)
			prefs_parse(NULL, &c->prefs, &field, &reason);
		json_decref(j);
	}
	return &c->prefs;
}

static int eval_reach(const struct node *n, struct ctx *c)
{
	const struct prefs *p = NULL;
	for (int k = 0; k < ADDR_KINDS; k++) {
		if (!(n->kindmask & (1 << k)))
			continue;
		int s = n->slot_addr[k];
		if (s < 0 || !c->v[s] || !*c->v[s])
			continue;
		if (!p)
			p = ctx_prefs(c, n->slot_prefs);
		if (p->consent[k] == 0)
			continue;
		if (n->cat >= 0 && n->cat != CAT_TRANSACTIONAL && p->cat_consent[n->cat] == 0)
			continue;
		return 1;
	}
	return 0;
}

static int eval(const struct node *n, struct ctx *c)
{
	switch (n->kind) {
	case N_ALL:
		for (size_t i = 0; i < n->nkids; i++)
			if (!eval(n->kids[i], c))
				return 0;
		return 1;
	case N_ANY:
		for (size_t i = 0; i < n->nkids; i++)
			if (eval(n->kids[i], c))
				return 1;
		return 0;
	case N_NOT:
		return !eval(n->kids[0], c);
	case N_TAGS:
		return eval_tags(n, c);
	case N_TIER:
		return eval_tier(n, c);
	case N_CMP:
		return eval_cmp(n, c);
	case N_DATE:
		return eval_date(n, c);
	case N_ENG:
		return in_set(c, n->eng);
	case N_REACH:
		return eval_reach(n, c);
	}
	return 0;
}

/* ---- scanning ----------------------------------------------------------- */

/*
 * One batch of contacts on its way through Redis.  A scan has two: the
 * front one (being fetched for the consumer, or held by it between its
 * callback and segment_scan_next) and the one read ahead while the consumer
 * works, so Redis and the evaluation overlap.
 */
struct batch {
	struct segment_scan *sc;
	char **ids;
	size_t nids;
	unsigned char **bits; /* per set: 0/1 per position */
	size_t sets_seen, fields_seen;
	char **mid;     /* matching ids */
	char **mval;    /* nm * nextra requested values */
	json_t **mjson; /* whole contacts */
	size_t nm;
	char **next; /* the page after this batch */
	size_t nnext;
	int pending;    /* replies not yet in */
	int next_known; /* next/last are set */
	int active;     /* fetching or fetched */
	int fetched;    /* every reply is in */
	int last;       /* no contact after this batch */
	int err;
};

struct segment_scan {
	struct store *st;
	const struct segment *s;
	int64_t now;
	size_t batch;
	segment_batch_fn fn;
	void *arg;
	int whole;

	/* what one HMGET asks for: the segment's fields, then the extras */
	const char **fetch;
	size_t nfetch, nseg, nextra;
	int hmget; /* 0: no contact field is read */
	size_t nsets;

	struct batch b[2];
	int front;   /* index of the batch the consumer gets next / holds */
	int want;    /* the consumer waits for the front batch */
	int held;    /* the front batch was delivered and not released */
	int pending; /* replies outstanding over both batches and kicks */

	struct today today;
	const char **v; /* scratch for one contact's values */
	size_t *vl;

	uint64_t examined;
	int done, err;
	int in_cb, want_next, freeing;
};

static void ids_free(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

/* Back to empty, keeping the buffers sized for a batch. */
static void batch_reset(struct batch *b)
{
	struct segment_scan *sc = b->sc;
	for (size_t i = 0; i < b->nm; i++) {
		free(b->mid[i]);
		for (size_t k = 0; k < sc->nextra; k++) {
			free(b->mval[i * sc->nextra + k]);
			b->mval[i * sc->nextra + k] = NULL;
		}
		if (b->mjson)
			json_decref(b->mjson[i]);
	}
	b->nm = 0;
	ids_free(b->ids, b->nids);
	b->ids = NULL;
	b->nids = 0;
	ids_free(b->next, b->nnext);
	b->next = NULL;
	b->nnext = 0;
	b->sets_seen = b->fields_seen = 0;
	b->active = b->fetched = b->last = b->err = b->next_known = 0;
}

static void batch_alloc(struct segment_scan *sc, struct batch *b)
{
	b->sc = sc;
	b->mid = xcalloc(sc->batch, sizeof *b->mid);
	if (sc->nextra)
		b->mval = xcalloc(sc->batch * sc->nextra, sizeof *b->mval);
	if (sc->whole)
		b->mjson = xcalloc(sc->batch, sizeof *b->mjson);
	if (sc->nsets) {
		b->bits = xcalloc(sc->nsets, sizeof *b->bits);
		for (size_t i = 0; i < sc->nsets; i++)
			b->bits[i] = xcalloc(sc->batch, 1);
	}
}

static void scan_destroy(struct segment_scan *sc)
{
	for (int k = 0; k < 2; k++) {
		struct batch *b = &sc->b[k];
		batch_reset(b);
		for (size_t i = 0; i < sc->nsets; i++)
			free(b->bits[i]);
		free(b->bits);
		free(b->mid);
		free(b->mval);
		free(b->mjson);
	}
	for (size_t i = sc->nseg; i < sc->nfetch; i++)
		free((char *)sc->fetch[i]);
	free(sc->fetch);
	free(sc->v);
	free(sc->vl);
	free(sc);
}

static void batch_fetch(struct segment_scan *sc, struct batch *b);

/* Read the batch after the front one ahead, as soon as its ids are known
 * (the page after a batch is asked for first, so this usually starts while
 * the front batch's contacts are still coming in). */
static void read_ahead(struct segment_scan *sc)
{
	struct batch *f = &sc->b[sc->front], *a = &sc->b[!sc->front];
	if (a->active || !f->next_known || f->err || f->last || sc->freeing)
		return;
	a->ids = f->next;
	a->nids = f->nnext;
	f->next = NULL;
	f->nnext = 0;
	batch_fetch(sc, a);
}

static void deliver(struct segment_scan *sc)
{
	struct batch *f = &sc->b[sc->front];
	sc->want = 0;
	sc->held = 1;
	if (f->err) {
		sc->err = f->err;
	} else {
		sc->examined += f->nids;
		sc->done = f->last;
		read_ahead(sc);
	}
	const char *cursor = "";
	if (!sc->err && !sc->done && f->nids > 0)
		cursor = f->ids[f->nids - 1];
	sc->in_cb = 1;
	sc->fn(sc, sc->arg, (const char *const *)(sc->err ? NULL : f->mid), sc->err ? 0 : f->nm,
	       cursor, sc->done, sc->err);
	sc->in_cb = 0;
	if (sc->freeing) {
		if (sc->pending == 0)
			scan_destroy(sc);
		return;
	}
	if (sc->want_next) {
		sc->want_next = 0;
		segment_scan_next(sc);
	}
}

static int evaluate(struct segment_scan *sc, struct batch *b, size_t pos);
static void add_match(struct segment_scan *sc, struct batch *b, size_t pos,
                      const redisReply *whole);

/* One reply of batch b (NULL for a kick) is in.  1 when sc is gone or was
 * handed to the consumer (stop touching it). */
static int reply_done(struct segment_scan *sc, struct batch *b)
{
	sc->pending--;
	if (sc->freeing) {
		if (sc->pending == 0 && !sc->in_cb)
			scan_destroy(sc);
		return 1;
	}
	if (b && --b->pending == 0) {
		if (!sc->hmget && !b->err) {
			/* nothing per contact came back: decide from the sets */
			for (size_t i = 0; i < sc->nfetch; i++)
				sc->v[i] = NULL;
			for (size_t pos = 0; pos < b->nids; pos++)
				if (evaluate(sc, b, pos))
					add_match(sc, b, pos, NULL);
		}
		b->fetched = 1;
		if (b == &sc->b[sc->front] && sc->want) {
			deliver(sc);
			return 1;
		}
	}
	return 0;
}

static void on_kick(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	(void)rep;
	struct segment_scan *sc = arg;
	if (reply_done(sc, NULL))
		return;
	if (sc->want && sc->b[sc->front].fetched)
		deliver(sc);
}

/* Deliver the (fetched) front batch from a later turn of the loop. */
static void kick(struct segment_scan *sc)
{
	sc->pending++;
	redis_cmdf(sc->st->r, on_kick, sc, "PING");
}

static void on_next_ids(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct batch *b = arg;
	struct segment_scan *sc = b->sc;
	if (!sc->freeing) {
		if (!rep || rep->type != REDIS_REPLY_ARRAY) {
			b->err = -EIO;
		} else {
			b->next = xcalloc(rep->elements ? rep->elements : 1, sizeof *b->next);
			for (size_t i = 0; i < rep->elements; i++) {
				const char *id = reply_str(rep->element[i]);
				if (id)
					b->next[b->nnext++] = xstrdup(id);
			}
			b->last = b->nnext == 0;
			b->next_known = 1;
		}
	}
	if (!reply_done(sc, b) && b == &sc->b[sc->front] && !sc->held)
		read_ahead(sc);
}

static void on_next_ids_short(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct batch *b = arg;
	if (!b->sc->freeing && !rep)
		b->err = -EIO;
	reply_done(b->sc, b);
}

static void on_set(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct batch *b = arg;
	struct segment_scan *sc = b->sc;
	if (!sc->freeing) {
		size_t k = b->sets_seen++;
		if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != b->nids ||
		    k >= sc->nsets) {
			b->err = -EIO;
		} else {
			for (size_t i = 0; i < rep->elements; i++)
				b->bits[k][i] = rep->element[i]->type == REDIS_REPLY_INTEGER &&
				                rep->element[i]->integer == 1;
		}
	}
	reply_done(sc, b);
}

static int evaluate(struct segment_scan *sc, struct batch *b, size_t pos)
{
	if (!sc->s || !sc->s->root)
		return 1;
	struct ctx c = {.s = sc->s,
	                .now = sc->now,
	                .v = sc->v,
	                .vl = sc->vl,
	                .pos = pos,
	                .sets = b->bits,
	                .today = &sc->today};
	return eval(sc->s->root, &c);
}

static void add_match(struct segment_scan *sc, struct batch *b, size_t pos, const redisReply *whole)
{
	size_t m = b->nm++;
	b->mid[m] = xstrdup(b->ids[pos]);
	for (size_t k = 0; k < sc->nextra; k++) {
		const char *v = sc->v[sc->nseg + k];
		b->mval[m * sc->nextra + k] = v ? xstrndup(v, sc->vl[sc->nseg + k]) : NULL;
	}
	if (b->mjson)
		b->mjson[m] = store_contact_json(whole);
}

static void on_fields(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct batch *b = arg;
	struct segment_scan *sc = b->sc;
	if (sc->freeing || b->err) {
		reply_done(sc, b);
		return;
	}
	size_t pos = b->fields_seen++;
	if (!rep || rep->type != REDIS_REPLY_ARRAY || pos >= b->nids ||
	    (!sc->whole && rep->elements != sc->nfetch)) {
		b->err = -EIO;
		reply_done(sc, b);
		return;
	}
	for (size_t i = 0; i < sc->nfetch; i++) {
		sc->v[i] = NULL;
		sc->vl[i] = 0;
	}
	int exists;
	if (sc->whole) {
		exists = rep->elements > 0;
		for (size_t i = 0; i + 1 < rep->elements; i += 2) {
			const char *k = reply_str(rep->element[i]);
			const redisReply *val = rep->element[i + 1];
			if (!k || val->type != REDIS_REPLY_STRING)
				continue;
			for (size_t f = 0; f < sc->nfetch; f++)
				if (strcmp(sc->fetch[f], k) == 0) {
					sc->v[f] = val->str;
					sc->vl[f] = val->len;
				}
		}
	} else {
		for (size_t i = 0; i < sc->nfetch; i++)
			if (rep->element[i]->type == REDIS_REPLY_STRING) {
				sc->v[i] = rep->element[i]->str;
				sc->vl[i] = rep->element[i]->len;
			}
		exists = sc->v[0] != NULL;
	}
	if (exists && evaluate(sc, b, pos))
		add_match(sc, b, pos, rep);
	reply_done(sc, b);
}

/*
 * Ask Redis for batch b (ids set): the next page of ids (a short page is
 * the last), one SMISMEMBER per set, one HMGET per contact when fields are
 * read.  Without any of these (the last page of a walk that reads nothing)
 * a PING keeps the delivery asynchronous.
 */
static void batch_fetch(struct segment_scan *sc, struct batch *b)
{
	b->active = 1;
	b->pending++; /* held until everything is queued */
	sc->pending++;
	if (b->nids == sc->batch) {
		b->pending++;
		sc->pending++;
		store_contact_ids(sc->st, b->ids[b->nids - 1], sc->batch, on_next_ids, b);
	} else {
		b->last = b->next_known = 1; /* a short page is the last */
	}
	if (b->nids > 0)
		for (size_t k = 0; k < sc->nsets; k++) {
			const struct set_ref *r = &sc->s->sets[k];
			b->pending++;
			sc->pending++;
			if (r->what)
				store_eng_members(sc->st, r->what, r->ref,
				                  (const char *const *)b->ids, b->nids, on_set, b);
			else
				store_tag_members(sc->st, r->ref, (const char *const *)b->ids,
				                  b->nids, on_set, b);
		}
	for (size_t i = 0; sc->hmget && i < b->nids; i++) {
		b->pending++;
		sc->pending++;
		store_contact_fields(sc->st, b->ids[i], sc->fetch, sc->whole ? 0 : sc->nfetch,
		                     on_fields, b);
	}
	if (b->pending == 1) {
		/* nothing went to Redis: stay asynchronous */
		b->pending++;
		sc->pending++;
		redis_cmdf(sc->st->r, on_next_ids_short, b, "PING");
	}
	reply_done(sc, b);
}

static void first_page(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct batch *b = arg;
	struct segment_scan *sc = b->sc;
	if (!sc->freeing) {
		if (!rep || rep->type != REDIS_REPLY_ARRAY) {
			b->err = -EIO;
		} else {
			b->ids = xcalloc(rep->elements ? rep->elements : 1, sizeof *b->ids);
			for (size_t i = 0; i < rep->elements; i++) {
				const char *id = reply_str(rep->element[i]);
				if (id)
					b->ids[b->nids++] = xstrdup(id);
			}
		}
	}
	if (sc->freeing || b->err) {
		/* the error is delivered as this batch */
		reply_done(sc, b);
		return;
	}
	/* keep this reply's count until the batch is queued: no delivery from
	 * inside batch_fetch */
	batch_fetch(sc, b);
	reply_done(sc, b);
}

struct segment_scan *segment_scan_start_opts(struct store *st, const struct segment *s, int64_t now,
                                             const char *cursor, size_t batch,
                                             const struct segment_scan_opts *o, segment_batch_fn fn,
                                             void *arg)
{
	static const char *const id_only[] = {"id"};
	struct segment_scan *sc = xcalloc(1, sizeof *sc);
	sc->st = st;
	sc->s = s;
	sc->now = now;
	sc->batch = batch == 0 ? SEG_BATCH_DEFAULT : batch > SEG_BATCH_MAX ? SEG_BATCH_MAX : batch;
	sc->fn = fn;
	sc->arg = arg;
	sc->whole = o && o->whole;
	size_t nextra = o && o->fields ? o->nfields : 0;
	if (nextra > SEG_EXTRA_MAX)
		nextra = SEG_EXTRA_MAX;
	const char *const *segf = s ? (const char *const *)s->fields : id_only;
	sc->nseg = s ? s->nfields : 1;
	sc->nextra = nextra;
	sc->nfetch = sc->nseg + nextra;
	sc->fetch = xcalloc(sc->nfetch, sizeof *sc->fetch);
	for (size_t i = 0; i < sc->nseg; i++)
		sc->fetch[i] = segf[i];
	for (size_t i = 0; i < nextra; i++)
		sc->fetch[sc->nseg + i] = xstrdup(o->fields[i]);
	sc->hmget = (s && s->fields_needed) || nextra > 0 || sc->whole;
	sc->nsets = s ? s->nsets : 0;
	sc->v = xcalloc(sc->nfetch, sizeof *sc->v);
	sc->vl = xcalloc(sc->nfetch, sizeof *sc->vl);
	batch_alloc(sc, &sc->b[0]);
	batch_alloc(sc, &sc->b[1]);
	sc->want = 1;
	struct batch *b = &sc->b[0];
	b->active = 1;
	b->pending = 1;
	sc->pending = 1;
	store_contact_ids(st, cursor, sc->batch, first_page, b);
	return sc;
}

struct segment_scan *segment_scan_start(struct store *st, const struct segment *s, int64_t now,
                                        const char *cursor, size_t batch, segment_batch_fn fn,
                                        void *arg)
{
	return segment_scan_start_opts(st, s, now, cursor, batch, NULL, fn, arg);
}

void segment_scan_next(struct segment_scan *sc)
{
	if (!sc || sc->freeing)
		return;
	if (sc->in_cb) {
		sc->want_next = 1;
		return;
	}
	if (!sc->held || sc->done || sc->err)
		return;
	sc->held = 0;
	batch_reset(&sc->b[sc->front]);
	sc->front = !sc->front;
	sc->want = 1;
	struct batch *f = &sc->b[sc->front];
	if (!f->active) {
		/* cannot happen: a delivered batch that is not the last always
		 * started the one after it */
		sc->err = -EIO;
		f->err = -EIO;
		f->active = f->fetched = 1;
	}
	if (f->fetched)
		kick(sc);
	/* else delivered when its last reply comes */
	read_ahead(sc);
}

void segment_scan_free(struct segment_scan *sc)
{
	if (!sc || sc->freeing)
		return;
	sc->freeing = 1;
	if (sc->in_cb || sc->pending > 0)
		return; /* after the callback returns / the last reply comes */
	scan_destroy(sc);
}

const char *segment_scan_value(const struct segment_scan *sc, size_t i, size_t k)
{
	if (!sc || !sc->held || k >= sc->nextra)
		return NULL;
	const struct batch *f = &sc->b[sc->front];
	return i < f->nm ? f->mval[i * sc->nextra + k] : NULL;
}

json_t *segment_scan_contact(const struct segment_scan *sc, size_t i)
{
	if (!sc || !sc->held || !sc->whole)
		return NULL;
	const struct batch *f = &sc->b[sc->front];
	return i < f->nm ? f->mjson[i] : NULL;
}

uint64_t segment_scan_examined(const struct segment_scan *sc)
{
	return sc ? sc->examined : 0;
}
