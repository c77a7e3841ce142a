/*
 * raffle.c - raffles (raffle.h): the definition's rules as pure functions
 * (validation, weights, purchases, the draw over stored weights with
 * draw.c), and the raffle's entry points for other modules: the inbound
 * router's stage, entries by keyword and by purchase, and the raffle
 * messages (a winner's notification, the reply to a texted entry) rendered
 * and queued by notify_msg.c (the kind preferences choose first).
 *
 * Owns the parsed definition, the draw's copies of the entry list, and the
 * small contexts of pending store calls.  Never touches key names (the
 * scripts do, through store_raffles.c), never computes a draw differently
 * from draw.c (it only feeds it), never logs a seed, a text or an address.
 * Limits: the RAFFLE_* bounds of raffle.h; the draw holds the whole entry
 * list in memory (one struct draw_entry per contact) and runs on the loop.
 */
#include "club/raffle.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "app.h"
#include "club/events.h"
#include "club/notify_msg.h"
#include "inbound.h"
#include "log.h"
#include "prefs.h"
#include "store.h"
#include "store_club.h"
#include "store_raffles.h"
#include "text.h"
#include "tplset.h"
#include "util.h"

#define MSG_IDEM_TTL_S (30 * 86400) /* a raffle message's idempotency key */

static const char *const method_names[RAFFLE_METHODS] = {"keyword", "code", "purchase", "points"};

const char *raffle_method_name(enum raffle_method m)
{
	return (int)m >= 0 && m < RAFFLE_METHODS ? method_names[m] : "unknown";
}

int raffle_method_parse(const char *s)
{
	for (int i = 0; s && i < RAFFLE_METHODS; i++)
		if (strcmp(s, method_names[i]) == 0)
			return i;
	return -1;
}

int raffle_id_valid(const char *s)
{
	if (!s || !*s || strlen(s) > RAFFLE_ID_MAX)
		return 0;
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

void raffle_def_free(struct raffle_def *d)
{
	if (!d)
		return;
	free(d->name);
	free(d->prize);
	free(d->keyword);
	free(d->keyword_norm);
	for (size_t i = 0; i < d->ncodes; i++)
		free(d->codes[i]);
	free(d->codes);
	free(d);
}

int raffle_code_normalize(const char *in, char *out, size_t outlen)
{
	if (!in || !*in || strlen(in) > RAFFLE_CODE_MAX)
		return -EINVAL;
	char *n = text_normalize(in);
	if (!n)
		return -EINVAL;
	int rc = 0;
	if (!*n || strchr(n, ' ') || text_has_ctl(n, 0) || strlen(n) >= outlen)
		rc = -EINVAL;
	else
		snprintf(out, outlen, "%s", n);
	free(n);
	return rc;
}

/* ---- parsing ---------------------------------------------------------------- */

/* Field names built at run time ("codes[12]", "weights.tiers.gold"): valid
 * until the next parse (loop thread only). */
static char field_buf[96];

/* "prefix[i]" */
static const char *field_idx(const char *prefix, size_t i)
{
	snprintf(field_buf, sizeof field_buf, "%s[%zu]", prefix, i);
	return field_buf;
}

/* "prefix.key" ("key" when prefix is ""), the key cut at 60 bytes */
static const char *field_key(const char *prefix, const char *key)
{
	snprintf(field_buf, sizeof field_buf, "%s%s%.60s", prefix, *prefix ? "." : "", key);
	return field_buf;
}

struct perr {
	const char **field;
	char *reason;
	size_t len;
};

static int bad(struct perr *e, const char *field, const char *why)
{
	*e->field = field;
	snprintf(e->reason, e->len, "%s", why);
	return -EINVAL;
}

/* A string of 1..max bytes without controls (newlines when nl). */
static int get_text(const json_t *o, const char *key, size_t min, size_t max, int nl,
                    const char **out, struct perr *e)
{
	const json_t *v = json_object_get(o, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return min ? bad(e, key, "required") : 0;
	if (!json_is_string(v))
		return bad(e, key, "must be a string");
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (strlen(s) != n || text_has_ctl(s, nl))
		return bad(e, key, "must not contain control characters");
	if (n < min || n > max) {
		char why[64];
		snprintf(why, sizeof why, "%zu..%zu bytes", min, max);
		return bad(e, key, why);
	}
	*out = s;
	return 0;
}

/* An integer in [min, max]; *out keeps its default when absent. */
static int get_int(const json_t *o, const char *key, int64_t min, int64_t max, int required,
                   int64_t *out, struct perr *e, const char *field)
{
	const json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return required ? bad(e, field, "required") : 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		char why[80];
		snprintf(why, sizeof why, "an integer from %lld to %lld", (long long)min,
		         (long long)max);
		return bad(e, field, why);
	}
	*out = json_integer_value(v);
	return 0;
}

static int get_time_field(const json_t *o, const char *key, int64_t *out, struct perr *e)
{
	const char *s;
	if (get_text(o, key, 1, 40, 0, &s, e) < 0)
		return -EINVAL;
	if (parse_time(s, out) < 0)
		return bad(e, key, "an RFC 3339 time such as 2026-12-21T00:00:00+03:30");
	return 0;
}

static int tier_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 32 || !utf8_valid(s, n))
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p == 0x7f || *p == ':' || *p == ',')
			return 0;
	return 1;
}

static int parse_methods(const json_t *def, struct raffle_def *d, struct perr *e)
{
	const json_t *v = json_object_get(def, "methods");
	if (!v || json_is_null(v))
		return bad(e, "methods", "required");
	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > RAFFLE_METHODS)
		return bad(e, "methods", "a list of keyword, code, purchase, points");
	size_t i;
	const json_t *m;
	json_array_foreach(v, i, m)
	{
		int k = raffle_method_parse(json_string_value(m));
		if (k < 0)
			return bad(e, field_idx("methods", i), "keyword, code, purchase or points");
		if (d->methods & (1u << k))
			return bad(e, field_idx("methods", i), "listed twice");
		d->methods |= 1u << k;
	}
	return 0;
}

static int parse_codes(const json_t *def, struct raffle_def *d, struct perr *e)
{
	const json_t *v = json_object_get(def, "codes");
	int want = !!(d->methods & (1u << RAFFLE_CODE));
	if (!v || json_is_null(v))
		return want ? bad(e, "codes", "required with the code method") : 0;
	if (!want)
		return bad(e, "codes", "only with the code method");
	if (!json_is_array(v) || json_array_size(v) == 0)
		return bad(e, "codes", "a non-empty list of codes");
	if (json_array_size(v) > RAFFLE_CODES_MAX)
		return bad(e, "codes", "at most 20000 codes");
	size_t n = json_array_size(v);
	d->codes = xcalloc(n, sizeof *d->codes);
	size_t i;
	const json_t *c;
	char norm[RAFFLE_CODE_MAX * 4 + 1];
	json_array_foreach(v, i, c)
	{
		const char *s = json_string_value(c);
		if (!s || strlen(s) != json_string_length(c) ||
		    raffle_code_normalize(s, norm, sizeof norm) < 0)
			return bad(e, field_idx("codes", i),
			           "1..64 bytes, no blanks or control characters");
		if (d->keyword_norm && strcmp(norm, d->keyword_norm) == 0)
			return bad(e, field_idx("codes", i), "the same as the keyword");
		d->codes[d->ncodes++] = xstrdup(norm);
	}
	return 0; /* uniqueness: raffle_parse */
}

static int parse_purchase(const json_t *def, struct raffle_def *d, struct perr *e)
{
	const json_t *v = json_object_get(def, "purchase");
	int want = !!(d->methods & (1u << RAFFLE_PURCHASE));
	if (!v || json_is_null(v))
		return want ? bad(e, "purchase", "required with the purchase method") : 0;
	if (!want)
		return bad(e, "purchase", "only with the purchase method");
	if (!json_is_object(v))
		return bad(e, "purchase", "an object {min_amount, currency, entries_per}");
	const char *k;
	const json_t *x;
	json_object_foreach((json_t *)v, k, x)
	{
		if (strcmp(k, "min_amount") && strcmp(k, "currency") && strcmp(k, "entries_per"))
			return bad(e, field_key("purchase", k), "unknown field");
	}
	const char *why = NULL;
	const json_t *cur = json_object_get(v, "currency");
	if (!cur)
		return bad(e, "purchase.currency", "required");
	if (!events_currency_valid(json_string_value(cur)))
		return bad(e, "purchase.currency", "an ISO 4217 code such as IRR");
	snprintf(d->currency, sizeof d->currency, "%s", json_string_value(cur));
	x = json_object_get(v, "min_amount");
	if (x && !json_is_null(x) && events_money_parse(x, &d->min_amount_c, &why) < 0)
		return bad(e, "purchase.min_amount", why);
	x = json_object_get(v, "entries_per");
	if (x && !json_is_null(x) && events_money_parse(x, &d->entries_per_c, &why) < 0)
		return bad(e, "purchase.entries_per", why);
	return 0;
}

static int parse_weights(const json_t *def, struct raffle_def *d, struct perr *e)
{
	const json_t *v = json_object_get(def, "weights");
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return bad(e, "weights", "an object {methods: {...}, tiers: {...}}");
	const char *k;
	const json_t *x;
	json_object_foreach((json_t *)v, k, x)
	{
		if (strcmp(k, "methods") && strcmp(k, "tiers"))
			return bad(e, field_key("weights", k), "unknown field");
	}
	const json_t *m = json_object_get(v, "methods");
	if (m && !json_is_null(m)) {
		if (!json_is_object(m))
			return bad(e, "weights.methods", "an object: method -> weight");
		json_object_foreach((json_t *)m, k, x)
		{
			int mi = raffle_method_parse(k);
			const char *f = field_key("weights.methods", k);
			if (mi < 0)
				return bad(e, f, "keyword, code, purchase or points");
			if (!json_is_integer(x) || json_integer_value(x) < 1 ||
			    json_integer_value(x) > RAFFLE_WEIGHT_MAX)
				return bad(e, f, "an integer from 1 to 1000");
			d->method_weight[mi] = json_integer_value(x);
		}
	}
	const json_t *t = json_object_get(v, "tiers");
	if (t && !json_is_null(t)) {
		if (!json_is_object(t))
			return bad(e, "weights.tiers", "an object: tier name -> weight");
		if (json_object_size(t) > RAFFLE_TIER_WEIGHTS)
			return bad(e, "weights.tiers", "at most 16 tiers");
		json_object_foreach((json_t *)t, k, x)
		{
			const char *f = field_key("weights.tiers", k);
			if (!tier_name_valid(k))
				return bad(e, f, "a tier name: 1..32 bytes, no blanks, ':' or ','");
			if (!json_is_integer(x) || json_integer_value(x) < 1 ||
			    json_integer_value(x) > RAFFLE_WEIGHT_MAX)
				return bad(e, f, "an integer from 1 to 1000");
			struct raffle_tier_weight *tw = &d->tiers[d->ntiers++];
			snprintf(tw->name, sizeof tw->name, "%s", k);
			tw->weight = json_integer_value(x);
		}
	}
	return 0;
}

static int parse_tpl(const json_t *def, const char *key, char *out, struct perr *e)
{
	const json_t *v = json_object_get(def, key);
	out[0] = '\0';
	if (!v || json_is_null(v) || (json_is_string(v) && !*json_string_value(v)))
		return 0;
	if (!json_is_string(v) || !tplset_id_valid(json_string_value(v)))
		return bad(e, key, "a template id: 1..64 of a-z 0-9 _ -");
	snprintf(out, RAFFLE_TEMPLATE_MAX + 1, "%s", json_string_value(v));
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int raffle_parse(const json_t *def, int id_required, struct raffle_def **out, const char **field,
                 char *reason, size_t reason_len)
{
	static const char *const known[] = {"id",
	                                    "name",
	                                    "prize",
	                                    "starts_at",
	                                    "ends_at",
	                                    "methods",
	                                    "keyword",
	                                    "codes",
	                                    "purchase",
	                                    "points_cost",
	                                    "max_entries_per_contact",
	                                    "weights",
	                                    "winners",
	                                    "notify_template",
	                                    "reply_template"};
	struct perr e = {field, reason, reason_len};
	*out = NULL;
	if (!json_is_object(def))
		return bad(&e, "", "a raffle is a JSON object");
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)def, k, v)
	{
		int ok = 0;
		for (size_t i = 0; i < ARRAY_SIZE(known) && !ok; i++)
			ok = strcmp(k, known[i]) == 0;
		if (!ok)
			return bad(&e, field_key("", k), "unknown field");
	}
	struct raffle_def *d = xcalloc(1, sizeof *d);
	d->max_entries = 1;
	for (int m = 0; m < RAFFLE_METHODS; m++)
		d->method_weight[m] = 1;
	const char *s;
	int rc = -EINVAL;

	v = json_object_get(def, "id");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v) || !raffle_id_valid(json_string_value(v))) {
			bad(&e, "id", "1..64 of A-Z a-z 0-9 _ . -");
			goto out;
		}
		snprintf(d->id, sizeof d->id, "%s", json_string_value(v));
	} else if (id_required) {
		bad(&e, "id", "required");
		goto out;
	}
	if (get_text(def, "name", 1, RAFFLE_NAME_MAX, 0, &s, &e) < 0)
		goto out;
	d->name = xstrdup(s);
	if (get_text(def, "prize", 0, RAFFLE_PRIZE_MAX, 1, &s, &e) < 0)
		goto out;
	d->prize = xstrdup(s ? s : "");
	if (get_time_field(def, "starts_at", &d->starts_at, &e) < 0 ||
	    get_time_field(def, "ends_at", &d->ends_at, &e) < 0)
		goto out;
	if (d->ends_at <= d->starts_at) {
		bad(&e, "ends_at", "must be later than starts_at");
		goto out;
	}
	if (parse_methods(def, d, &e) < 0)
		goto out;

	v = json_object_get(def, "keyword");
	int kw_method = !!(d->methods & (1u << RAFFLE_KEYWORD));
	if (!v || json_is_null(v)) {
		if (kw_method) {
			bad(&e, "keyword", "required with the keyword method");
			goto out;
		}
	} else {
		if (!(d->methods & ((1u << RAFFLE_KEYWORD) | (1u << RAFFLE_CODE)))) {
			bad(&e, "keyword", "only with the keyword or code method");
			goto out;
		}
		if (get_text(def, "keyword", 1, RAFFLE_KEYWORD_MAX, 0, &s, &e) < 0)
			goto out;
		char *n = text_normalize(s);
		if (!n || !*n || strchr(n, ' ')) {
			free(n);
			bad(&e, "keyword", "one word (no blanks inside)");
			goto out;
		}
		d->keyword = xstrdup(s);
		d->keyword_norm = n;
	}
	if (parse_codes(def, d, &e) < 0)
		goto out;
	if (d->ncodes > 1) {
		char **sorted = xmalloc(d->ncodes * sizeof *sorted);
		memcpy(sorted, d->codes, d->ncodes * sizeof *sorted);
		qsort(sorted, d->ncodes, sizeof *sorted, cmp_str);
		int dup = 0;
		for (size_t i = 1; i < d->ncodes && !dup; i++)
			dup = strcmp(sorted[i - 1], sorted[i]) == 0;
		free(sorted);
		if (dup) {
			bad(&e, "codes",
			    "two codes are the same (after normalising digits and case)");
			goto out;
		}
	}
	if (parse_purchase(def, d, &e) < 0)
		goto out;
	int pts = !!(d->methods & (1u << RAFFLE_POINTS));
	if (json_object_get(def, "points_cost") &&
	    !json_is_null(json_object_get(def, "points_cost")) && !pts) {
		bad(&e, "points_cost", "only with the points method");
		goto out;
	}
	if (pts && get_int(def, "points_cost", 1, RAFFLE_POINTS_COST_MAX, 1, &d->points_cost, &e,
	                   "points_cost") < 0)
		goto out;
	if (get_int(def, "max_entries_per_contact", 1, RAFFLE_ENTRIES_MAX, 0, &d->max_entries, &e,
	            "max_entries_per_contact") < 0 ||
	    get_int(def, "winners", 1, RAFFLE_WINNERS_MAX, 1, &d->winners, &e, "winners") < 0)
		goto out;
	if (parse_weights(def, d, &e) < 0)
		goto out;
	if (parse_tpl(def, "notify_template", d->notify_tpl, &e) < 0 ||
	    parse_tpl(def, "reply_template", d->reply_tpl, &e) < 0)
		goto out;
	*out = d;
	return 0;
out:
	raffle_def_free(d);
	return rc;
}

json_t *raffle_def_json(const struct raffle_def *d)
{
	char t[40];
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(d->id));
	json_object_set_new(o, "name", json_string(d->name));
	json_object_set_new(o, "prize", json_string(d->prize ? d->prize : ""));
	fmt_time(d->starts_at, t, sizeof t);
	json_object_set_new(o, "starts_at", json_string(t));
	fmt_time(d->ends_at, t, sizeof t);
	json_object_set_new(o, "ends_at", json_string(t));
	json_t *m = json_array();
	for (int i = 0; i < RAFFLE_METHODS; i++)
		if (d->methods & (1u << i))
			json_array_append_new(m, json_string(method_names[i]));
	json_object_set_new(o, "methods", m);
	json_object_set_new(o, "keyword", d->keyword ? json_string(d->keyword) : json_null());
	json_object_set_new(o, "codes_total",
	                    d->methods & (1u << RAFFLE_CODE) ? json_integer((json_int_t)d->ncodes)
	                                                     : json_null());
	if (d->methods & (1u << RAFFLE_PURCHASE)) {
		char a[EVENTS_MONEY_TEXT], b[EVENTS_MONEY_TEXT];
		events_money_format(d->min_amount_c, a);
		events_money_format(d->entries_per_c, b);
		json_object_set_new(o, "purchase",
		                    json_pack("{s:s, s:s, s:o}", "min_amount", a, "currency",
		                              d->currency, "entries_per",
		                              d->entries_per_c ? json_string(b) : json_null()));
	} else {
		json_object_set_new(o, "purchase", json_null());
	}
	json_object_set_new(o, "points_cost",
	                    d->methods & (1u << RAFFLE_POINTS) ? json_integer(d->points_cost)
	                                                       : json_null());
	json_object_set_new(o, "max_entries_per_contact", json_integer(d->max_entries));
	json_t *wm = json_object(), *wt = json_object();
	for (int i = 0; i < RAFFLE_METHODS; i++)
		if (d->methods & (1u << i))
			json_object_set_new(wm, method_names[i], json_integer(d->method_weight[i]));
	for (size_t i = 0; i < d->ntiers; i++)
		json_object_set_new(wt, d->tiers[i].name, json_integer(d->tiers[i].weight));
	json_object_set_new(o, "weights", json_pack("{s:o, s:o}", "methods", wm, "tiers", wt));
	json_object_set_new(o, "winners", json_integer(d->winners));
	json_object_set_new(o, "notify_template",
	                    *d->notify_tpl ? json_string(d->notify_tpl) : json_null());
	json_object_set_new(o, "reply_template",
	                    *d->reply_tpl ? json_string(d->reply_tpl) : json_null());
	return o;
}

int64_t raffle_purchase_entries(const struct raffle_def *d, int64_t amount_c, const char *currency)
{
	if (!(d->methods & (1u << RAFFLE_PURCHASE)) || !currency ||
	    strcmp(currency, d->currency) != 0 || amount_c <= 0 || amount_c < d->min_amount_c)
		return 0;
	if (d->entries_per_c <= 0)
		return 1;
	return amount_c / d->entries_per_c;
}

int64_t raffle_entry_weight(const struct raffle_def *d, enum raffle_method m, const char *tier,
                            int64_t count)
{
	if (count < 1 || (int)m < 0 || m >= RAFFLE_METHODS)
		return 0;
	if (count > RAFFLE_ENTRIES_MAX)
		count = RAFFLE_ENTRIES_MAX;
	int64_t tw = 1;
	for (size_t i = 0; tier && *tier && i < d->ntiers; i++)
		if (strcmp(d->tiers[i].name, tier) == 0)
			tw = d->tiers[i].weight;
	return count * d->method_weight[m] * tw;
}

/* ---- the draw ------------------------------------------------------------------ */

void raffle_draw_free(struct raffle_draw *d)
{
	if (!d)
		return;
	for (size_t i = 0; d->winners && i < d->k; i++)
		free(d->winners[i]);
	free(d->winners);
	free(d->entries_text);
	memset(d, 0, sizeof *d);
}

int raffle_draw_run(const unsigned char seed[DRAW_SEED_LEN], const char *const *ids,
                    const char *const *weights, size_t n, int64_t winners, struct raffle_draw *out)
{
	memset(out, 0, sizeof *out);
	struct draw_entry *e = xcalloc(n ? n : 1, sizeof *e);
	size_t *win = NULL;
	int rc = 0;
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t w;
		if (!ids[i] || !weights[i] || parse_i64(weights[i], 1, INT64_MAX, &w) < 0) {
			rc = -EINVAL;
			goto out;
		}
		e[i] = (struct draw_entry){ids[i], (uint64_t)w};
		if ((uint64_t)w > UINT64_MAX - total) {
			rc = -ERANGE;
			goto out;
		}
		total += (uint64_t)w;
	}
	if ((rc = draw_canonicalize(e, n)) < 0)
		goto out;
	size_t k = winners < 0 ? 0 : (size_t)winners;
	if (k > n)
		k = n;
	win = xcalloc(k ? k : 1, sizeof *win);
	if ((rc = draw_winners(seed, e, n, k, win, out->digest)) < 0)
		goto out;
	struct buf b;
	buf_init(&b, 0);
	buf_append(&b, "", 0);
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "%s\t%llu\n", e[i].contact_id, (unsigned long long)e[i].weight);
	out->entries_text = buf_steal(&b);
	out->winners = xcalloc(k ? k : 1, sizeof *out->winners);
	for (size_t i = 0; i < k; i++)
		out->winners[i] = xstrdup(e[win[i]].contact_id);
	out->n = n;
	out->k = k;
	out->total = total;
out:
	free(win);
	free(e);
	return rc;
}

/* ---- raffle messages -------------------------------------------------------- */

json_t *raffle_msg_queue(struct app *app, const struct raffle_msg *m,
                         void (*cb)(void *arg, json_t *result), void *arg)
{
	struct notify_msg n = {.sub = "raffle",
	                       .log_key = "raffle",
	                       .log_val = m->raffle_id,
	                       .contact_id = m->contact_id,
	                       .contact = m->contact,
	                       .tpl_id = m->tpl_id,
	                       .tpl_json = m->tpl_json,
	                       .event = m->event,
	                       .category = m->category,
	                       .cat_dflt = CAT_LOTTERY,
	                       .pick = NOTIFY_MSG_PREFERRED,
	                       .requested = m->kind,
	                       .field = "raffle",
	                       .value = m->raffle_id,
	                       .idem = m->idem,
	                       .idem_ttl_s = MSG_IDEM_TTL_S,
	                       .now = m->now,
	                       .due = m->now,
	                       .with_lane = 1};
	return notify_msg_queue(app, &n, json_pack("{s:s}", "contact_id", m->contact_id), cb, arg);
}

/* ---- entry points for other modules --------------------------------------------- */

static void rules_of(const struct store *st, struct store_club_rules *r)
{
	memset(r, 0, sizeof *r);
	r->timeline_max = st->timeline_max;
	r->ledger_max = EVENTS_LEDGER_MAX;
}

void raffle_enter_by_keyword(struct store *st, const char *contact_id, const char *normalised_text,
                             int64_t now, redis_cb cb, void *arg)
{
	struct store_club_rules r;
	rules_of(st, &r);
	struct store_raffle_text t = {.contact_id = contact_id ? contact_id : "",
	                              .text = normalised_text ? normalised_text : "",
	                              .ref = "",
	                              .now = now};
	store_raffle_enter_text(st, &r, &t, cb, arg);
}

void raffle_enter_by_purchase(struct store *st, const char *contact_id, int64_t amount_c,
                              const char *currency, const char *event_id, int64_t now, redis_cb cb,
                              void *arg)
{
	struct store_club_rules r;
	rules_of(st, &r);
	store_raffle_enter_purchase(st, &r, contact_id, amount_c, currency, event_id, now, cb, arg);
}

/* ---- the inbound router's stage ------------------------------------------------- */

struct stage_call {
	struct app *app;
	void (*done)(void *arg, int taken);
	void *arg;
	char provider[INBOUND_PROVIDER_MAX + 1], provider_id[INBOUND_ID_MAX + 1];
	char channel[8];
};

static void stage_replied(void *arg, json_t *result)
{
	struct stage_call *c = arg;
	/* a reply the store did not confirm: answer 503 so the provider retries
	 * (the entry is idempotent, the reply's key too) */
	int taken = result ? 1 : -EIO;
	json_decref(result);
	c->done(c->arg, taken);
	free(c);
}

/* The event a reply template sees. */
static json_t *entry_event(const char *rid, const char *status, const char *detail,
                           const char *raffle_json)
{
	json_t *raffle = raffle_json ? json_loads(raffle_json, 0, NULL) : NULL;
	json_t *ev = json_pack("{s:s, s:s}", "type", "raffle_entry", "raffle_id", rid);
	if (json_is_object(raffle)) {
		static const char *const keep[] = {"name", "prize", "starts_at", "ends_at",
		                                   "keyword"};
		for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
			json_object_set(ev, keep[i], json_object_get(raffle, keep[i]));
		json_object_set(ev, "max_entries",
		                json_object_get(raffle, "max_entries_per_contact"));
	}
	json_decref(raffle);
	if (strcmp(status, "refused") == 0) {
		json_object_set_new(ev, "result", json_string(detail));
		return ev;
	}
	json_object_set_new(ev, "result",
	                    json_string(strcmp(status, "ok") == 0 ? "entered" : "already_entered"));
	json_t *a = json_loads(detail, 0, NULL);
	if (json_is_object(a)) {
		json_object_set(ev, "entries", json_object_get(a, "contact_entries"));
		json_object_set(ev, "method", json_object_get(a, "method"));
	}
	json_decref(a);
	return ev;
}

static void on_stage_entered(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct stage_call *c = arg;
	const char *st = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0
	                     ? reply_str(rep->element[0])
	                     : NULL;
	if (!st) {
		if (rep && rep->type == REDIS_REPLY_ERROR)
			log_err("raffle", "entry by text failed error=%s", log_q(rep->str));
		c->done(c->arg, -EIO);
		free(c);
		return;
	}
	if (strcmp(st, "none") == 0 || rep->elements < 6) {
		c->done(c->arg, 0);
		free(c);
		return;
	}
	const char *rid = reply_str(rep->element[1]);
	const char *detail = reply_str(rep->element[2]);
	const char *tpl = reply_str(rep->element[3]);
	const redisReply *contact = rep->element[4];
	const char *rjson = reply_str(rep->element[5]);
	const char *cid = hash_get(contact, "id");
	if (strcmp(st, "refused") == 0 && detail && strcmp(detail, "no_contact") == 0) {
		/* no contact to enter (create_leads off): an ordinary reply */
		c->done(c->arg, 0);
		free(c);
		return;
	}
	log_info("raffle", "raffle=%s entry by text contact=%s status=%s%s%s",
	         log_q(rid ? rid : ""), cid ? cid : "-", st,
	         strcmp(st, "refused") == 0 ? " reason=" : "",
	         strcmp(st, "refused") == 0 && detail ? detail : "");
	if (!tpl || !*tpl || !cid || !rid) {
		c->done(c->arg, 1);
		free(c);
		return;
	}
	json_t *ev = entry_event(rid, st, detail ? detail : "", rjson);
	char *idem = xasprintf("raffle-reply:%s:%s", c->provider, c->provider_id);
	struct raffle_msg m = {.raffle_id = rid,
	                       .contact_id = cid,
	                       .contact = contact,
	                       .tpl_id = "reply_template",
	                       .tpl_json = tpl,
	                       .event = ev,
	                       .category = "transactional",
	                       .kind = addr_kind_parse(c->channel),
	                       .idem = idem,
	                       .now = now_ms()};
	json_t *res = raffle_msg_queue(c->app, &m, stage_replied, c);
	free(idem);
	json_decref(ev);
	if (res) {
		json_decref(res); /* nothing to queue (skipped): the entry stands */
		c->done(c->arg, 1);
		free(c);
	}
}

static void stage_run(void *ctx, const struct inbound *in, const char *contact_id,
                      void (*done)(void *arg, int taken), void *arg)
{
	struct app *app = ctx;
	struct stage_call *c = xcalloc(1, sizeof *c);
	c->app = app;
	c->done = done;
	c->arg = arg;
	snprintf(c->provider, sizeof c->provider, "%s", in->provider);
	snprintf(c->provider_id, sizeof c->provider_id, "%s", in->provider_id);
	snprintf(c->channel, sizeof c->channel, "%s", in->channel);
	char *norm = text_normalize(in->text);
	char *ref = xasprintf("%s:%s", in->provider, in->provider_id);
	char lead[ID_LEN + 1];
	int64_t now = now_ms();
	id_new(lead, now);
	struct store_club_rules r;
	rules_of(app->st, &r);
	/* the script always answers (an empty text is 'none'), so done is
	 * never called from inside run */
	struct store_raffle_text t = {.contact_id = contact_id ? contact_id : "",
	                              .text = norm ? norm : "",
	                              .ref = ref,
	                              .addr_kind = in->channel,
	                              .addr = in->from,
	                              .lead_id = lead,
	                              .create_leads = app->cfg->inbound_create_leads,
	                              .now = now};
	store_raffle_enter_text(app->st, &r, &t, on_stage_entered, c);
	free(ref);
	free(norm);
}

void raffle_stage_install(struct app *app)
{
	struct inbound_stage s = {.name = "raffle", .run = stage_run, .ctx = app};
	inbound_stage_set(INBOUND_STAGE_RAFFLE, &s);
}
