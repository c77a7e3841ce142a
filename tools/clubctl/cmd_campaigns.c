/*
 * cmd_campaigns.c - `clubctl campaigns ...`: drafts from JSON files
 * (create, put, rm), list and get, the lifecycle verbs (launch, pause,
 * resume, cancel), stats (once, or --watch: redrawn in place on a
 * terminal, repeated blocks otherwise) and a side-by-side comparison, all
 * over /v1/campaigns.
 *
 * Owns the JSON it builds and the SIGINT disposition while a watch runs
 * (Ctrl-C ends the watch with exit 0).  Never checks a definition itself
 * (the server is the judge and names the field) and never computes the
 * API's figures again, except the whole-campaign lift of `compare`, which
 * the API gives only per variant.  Limits: definition files up to 1 MiB;
 * list pages of at most 200 ids, each fetched once more for the table;
 * compare takes 2..10 ids (the API's maximum); a watch polls no faster
 * than every 100 ms.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "clubctl.h"
#include "conf.h"
#include "http.h"
#include "out.h"
#include "res.h"
#include "util.h"

#define FILE_MAX         (1u << 20)
#define PAGE_MAX         200
#define COMPARE_MAX      10
#define WATCH_DEFAULT_MS 2000
#define WATCH_MIN_MS     100

enum {
	O_LIMIT = 256,
	O_ALL,
	O_CURSOR,
	O_REASON,
	O_WATCH,
	O_INTERVAL,
	O_SAMPLES,
};

static const struct ctl_opt list_opts[] = {
    {"limit", O_LIMIT, "N", "show at most N campaigns (default 50)", 0, NULL},
    {"all", O_ALL, NULL, "show every campaign, following the cursor", 0, NULL},
    {"cursor", O_CURSOR, "ID", "start after this campaign id", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt reason_opts[] = {
    {"reason", O_REASON, "TEXT", "why (kept in the campaign's history; one line, <= 200 bytes)", 0,
     NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt stats_opts[] = {
    {"watch", O_WATCH, NULL, "refresh until the campaign is completed or cancelled (Ctrl-C stops)",
     0, NULL},
    {"interval", O_INTERVAL, "DURATION", "time between refreshes (2, 2s, 500ms; default 2s)", 0,
     NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt preview_opts[] = {
    {"samples", O_SAMPLES, "N", "sample contacts to render, 0..10 (default 3)", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

/* ---------------------------------------------------------------- helpers */

static const char *str_or(const char *s, const char *dflt)
{
	return s ? s : dflt;
}

/* An integer member as text, or NULL (printed "-"); caller frees. */
static char *int_str(const json_t *o, const char *key)
{
	return res_llstr(json_object_get(o, key));
}

static int64_t int_of(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* A fraction (0.125) as a percentage ("12.5%"), or NULL when absent/null. */
static char *pct_str(const json_t *o, const char *key, int sign)
{
	const json_t *v = json_object_get(o, key);
	if (!json_is_number(v))
		return NULL;
	return xasprintf(sign ? "%+.1f%%" : "%.1f%%", json_number_value(v) * 100.0);
}

/* A money string (or number) as text; caller frees. */
static char *money_str(const json_t *v)
{
	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	if (json_is_number(v))
		return xasprintf("%.2f", json_number_value(v));
	return NULL;
}

static double money_val(const json_t *v)
{
	if (json_is_number(v))
		return json_number_value(v);
	if (json_is_string(v)) {
		char *end;
		double d = strtod(json_string_value(v), &end);
		return *end ? 0.0 : d;
	}
	return 0.0;
}

/*
 * GET a path without reporting API errors (a campaign deleted between the
 * listing and the fetch).  CTL_OK with *out, CTL_EAPI silently, CTL_ECONN
 * reported.
 */
static int get_quiet(struct ctl *c, const char *path, json_t **out)
{
	struct http_req rq = {.method = "GET", .path = path};
	struct http_resp rs;
	int rc = CTL_EAPI;
	*out = NULL;
	if (http_do(ctl_http(c), &rq, &rs) < 0) {
		rc = ctl_conn_error(c, rs.err);
	} else if (rs.status >= 200 && rs.status <= 299 && rs.body.len > 0) {
		*out = json_loadb(rs.body.p, rs.body.len, 0, NULL);
		rc = json_is_object(*out) ? CTL_OK : CTL_EAPI;
	}
	http_resp_free(&rs);
	return rc;
}

/* The campaign's id as an API path with an optional suffix; caller frees. */
static char *camp_path(struct ctl *c, const char *id, const char *suffix)
{
	return ctl_path(c, "/v1/campaigns/", id, suffix);
}

/* ---------------------------------------------------------------- get */

static void schedule_text(const json_t *sch, struct buf *b)
{
	const char *at = ctl_jstr(sch, "at"), *lt = ctl_jstr(sch, "local_time");
	if (at) {
		char *t = out_time(at);
		buf_printf(b, "at %s", t);
		free(t);
	} else if (lt) {
		const char *d = ctl_jstr(sch, "date");
		buf_printf(b, "%s in each contact's time zone, %s%s", lt,
		           d ? "on " : "on the launch day", d ? d : "");
	} else {
		buf_puts(b, "on launch");
	}
}

static void print_definition(FILE *f, int w, const json_t *def)
{
	struct buf b;
	char *s;
	buf_init(&b, 0);
	buf_append(&b, "", 0);

	out_kv(f, w, "channel", str_or(ctl_jstr(def, "channel"), "preferred"));
	out_kv(f, w, "category", str_or(ctl_jstr(def, "category"), "promotional"));
	const json_t *seg = json_object_get(def, "segment");
	if (json_is_string(seg)) {
		out_kv(f, w, "segment", json_string_value(seg));
	} else if (json_is_object(seg)) {
		char *js = json_dumps(seg, JSON_COMPACT);
		char *clean = out_clean(js ? js : "");
		char *fit = out_fit(clean, 60);
		s = xasprintf("inline %s", fit);
		out_kv(f, w, "segment", s);
		free(s);
		free(fit);
		free(clean);
		free(js);
	}
	const json_t *vars = json_object_get(def, "variants");
	if (json_is_array(vars)) {
		size_t i;
		const json_t *v;
		json_array_foreach(vars, i, v)
		{
			buf_printf(&b, "%s%s: %s", i ? ", " : "", str_or(ctl_jstr(v, "name"), "?"),
			           str_or(ctl_jstr(v, "template"), "?"));
			if (json_is_integer(json_object_get(v, "weight")))
				buf_printf(
				    &b, " (weight %lld)",
				    (long long)json_integer_value(json_object_get(v, "weight")));
		}
		out_kv(f, w, "variants", b.p);
	} else {
		out_kv(f, w, "template", ctl_jstr(def, "template"));
	}
	s = xasprintf("%lld%%", (long long)int_of(def, "control_percent"));
	out_kv(f, w, "control", s);
	free(s);
	buf_reset(&b);
	buf_append(&b, "", 0);
	schedule_text(json_object_get(def, "schedule"), &b);
	out_kv(f, w, "schedule", b.p);
	char *money = money_str(json_object_get(def, "budget"));
	if (money) {
		s = xasprintf("%s %s", money, str_or(ctl_jstr(def, "currency"), ""));
		out_kv(f, w, "budget", s);
		free(s);
		free(money);
	} else {
		out_kv(f, w, "budget", "none");
	}
	int64_t rate = int_of(def, "rate_limit");
	s = rate > 0 ? xasprintf("%lld messages/s", (long long)rate) : xstrdup("unlimited");
	out_kv(f, w, "rate limit", s);
	free(s);
	const json_t *win = json_object_get(def, "attribution_window");
	if (win) {
		char *ws = json_is_string(win) ? xstrdup(json_string_value(win))
		                               : json_dumps(win, JSON_ENCODE_ANY | JSON_COMPACT);
		out_kv(f, w, "attribution", ws);
		free(ws);
	}
	buf_free(&b);
}

static void print_history(FILE *f, const json_t *hist)
{
	static const char *const head[] = {"AT", "VERB", "FROM", "STATE", "BY", "REASON"};
	struct out_table *t = out_table_new(head, 6);
	out_table_max(t, 4, 24);
	size_t i;
	const json_t *h;
	json_array_foreach(hist, i, h)
	{
		char *at = out_time(ctl_jstr(h, "at"));
		const char *row[] = {at,
		                     ctl_jstr(h, "verb"),
		                     ctl_jstr(h, "from"),
		                     ctl_jstr(h, "state"),
		                     ctl_jstr(h, "by"),
		                     ctl_jstr(h, "reason")};
		out_table_add(t, row);
		free(at);
	}
	out_table_flush(t, f);
	out_table_free(t);
}

static void print_campaign(struct ctl *c, const json_t *cp)
{
	const int w = 13;
	const json_t *def = json_object_get(cp, "definition");
	char *s;
	if (c->quiet) {
		printf("%s\n", str_or(ctl_jstr(cp, "id"), ""));
		return;
	}
	out_kv(stdout, w, "id", ctl_jstr(cp, "id"));
	out_kv(stdout, w, "name", ctl_jstr(def, "name"));
	const char *reason = ctl_jstr(cp, "reason");
	s = reason ? xasprintf("%s (%s)", str_or(ctl_jstr(cp, "state"), "?"), reason)
	           : xstrdup(str_or(ctl_jstr(cp, "state"), "-"));
	out_kv(stdout, w, "state", s);
	free(s);
	s = int_str(cp, "version");
	out_kv(stdout, w, "version", s);
	free(s);
	if (json_is_object(def))
		print_definition(stdout, w, def);
	s = out_time(ctl_jstr(cp, "created_at"));
	out_kv(stdout, w, "created", s);
	free(s);
	s = out_time(ctl_jstr(cp, "updated_at"));
	out_kv(stdout, w, "updated", s);
	free(s);
	const char *st = str_or(ctl_jstr(cp, "state"), "");
	if (strcmp(st, "draft") != 0)
		out_kv(stdout, w, "fan-out",
		       json_is_true(json_object_get(cp, "fanout_done")) ? "done" : "in progress");
	const json_t *hist = json_object_get(cp, "history");
	if (json_array_size(hist) > 0) {
		fputc('\n', stdout);
		print_history(stdout, hist);
	}
}

static int run_get(struct ctl *c, const struct ctl_args *a)
{
	json_t *ans;
	char *path = camp_path(c, a->pos[0], NULL);
	int rc = ctl_api(c, "GET", path, NULL, NULL, &ans, NULL);
	free(path);
	if (rc == CTL_OK) {
		if (c->json)
			ctl_print_json(ans);
		else
			print_campaign(c, ans);
	}
	json_decref(ans);
	return rc;
}

/* ---------------------------------------------------------------- list */

/* One table row for a listed item: an id (fetched for its name and state)
 * or, should the API list objects, the object itself. */
static int list_row(struct ctl *c, struct out_table *t, const json_t *it, void *arg)
{
	(void)arg;
	json_t *cp = NULL;
	const char *id = json_is_string(it) ? json_string_value(it) : ctl_jstr(it, "id");
	int rc = CTL_OK;
	if (json_is_object(it) && json_object_get(it, "state")) {
		cp = json_incref((json_t *)it);
	} else if (id) {
		char *path = camp_path(c, id, NULL);
		rc = get_quiet(c, path, &cp);
		free(path);
		if (rc == CTL_ECONN)
			return rc;
		rc = CTL_OK; /* gone since the listing: a row without details */
	}
	const json_t *def = json_object_get(cp, "definition");
	char *up = cp ? out_time(ctl_jstr(cp, "updated_at")) : NULL;
	/* a list item carries name and channel itself; a full campaign in its
	 * definition */
	const char *name = def ? ctl_jstr(def, "name") : ctl_jstr(cp, "name");
	const char *chan = def ? ctl_jstr(def, "channel") : ctl_jstr(cp, "channel");
	const char *row[] = {id, name, cp ? ctl_jstr(cp, "state") : "(gone)", chan, up};
	out_table_add(t, row);
	free(up);
	json_decref(cp);
	return rc;
}

static int run_list(struct ctl *c, const struct ctl_args *a)
{
	static const char *const head[] = {"ID", "NAME", "STATE", "CHANNEL", "UPDATED"};
	struct res_page p = {
	    .path = "/v1/campaigns", .limit = 50, .page_max = PAGE_MAX, .row = list_row};
	int rc = res_page_args(c, a, O_LIMIT, O_ALL, O_CURSOR, &p);
	if (rc == CTL_OK && !c->json && !c->quiet) {
		p.t = out_table_new(head, 5);
		out_table_max(p.t, 1, 32);
	}
	if (rc == CTL_OK)
		rc = res_page_run(c, &p);
	if (rc == CTL_OK && !c->json) {
		if (p.shown == 0)
			ctl_info(c, "no campaigns");
		else if (p.cursor)
			ctl_info(c, "%lld shown; more with: clubctl campaigns list --cursor %s",
			         (long long)p.shown, p.cursor);
	}
	res_page_free(&p);
	return rc;
}

/* ---------------------------------------------------------------- create, put, rm */

static int write_def(struct ctl *c, const char *method, const char *id, const char *file)
{
	json_t *ans;
	char *path = id ? camp_path(c, id, NULL) : xstrdup("/v1/campaigns");
	int rc = res_send_file(c, method, path, file, FILE_MAX, "a campaign definition", &ans);
	free(path);
	if (rc != CTL_OK)
		return rc;
	if (res_echo(c, ans)) {
		char *cid = out_clean(str_or(ctl_jstr(ans, "id"), ""));
		char *st = out_clean(str_or(ctl_jstr(ans, "state"), "draft"));
		printf("%s campaign %s (%s, version %lld)\n", id ? "replaced" : "created", cid, st,
		       (long long)int_of(ans, "version"));
		free(cid);
		free(st);
	}
	json_decref(ans);
	return CTL_OK;
}

static int run_create(struct ctl *c, const struct ctl_args *a)
{
	return write_def(c, "POST", NULL, a->pos[0]);
}

static int run_put(struct ctl *c, const struct ctl_args *a)
{
	return write_def(c, "PUT", a->pos[0], a->pos[1]);
}

static int run_rm(struct ctl *c, const struct ctl_args *a)
{
	char *path = camp_path(c, a->pos[0], NULL);
	int rc = res_delete(c, path, a->pos[0], "campaign");
	free(path);
	return rc;
}

/* ---------------------------------------------------------------- lifecycle */

static int run_verb(struct ctl *c, const struct ctl_args *a, const char *verb)
{
	const char *reason = ctl_arg(a, O_REASON);
	char *suffix;
	if (reason) {
		if (strpbrk(reason, "\r\n") || strlen(reason) > 200)
			return ctl_usage(c, "--reason: one line of at most 200 bytes");
		char *e = ctl_escape(c, reason);
		suffix = xasprintf("/%s?reason=%s", verb, e);
		free(e);
	} else {
		suffix = xasprintf("/%s", verb);
	}
	char *path = camp_path(c, a->pos[0], suffix);
	free(suffix);
	json_t *ans;
	int rc = ctl_api(c, "POST", path, NULL, NULL, &ans, NULL);
	free(path);
	if (rc != CTL_OK)
		return rc;
	const char *id = str_or(ctl_jstr(ans, "id"), a->pos[0]);
	const char *to = str_or(ctl_jstr(ans, "state"), "?");
	if (c->json) {
		ctl_print_json(ans);
	} else if (c->quiet) {
		printf("%s %s\n", id, to);
	} else {
		char *ci = out_clean(id), *fr = out_clean(str_or(ctl_jstr(ans, "from"), "?"));
		char *st = out_clean(to);
		printf("campaign %s: %s -> %s\n", ci, fr, st);
		free(ci);
		free(fr);
		free(st);
	}
	json_decref(ans);
	return CTL_OK;
}

static int run_launch(struct ctl *c, const struct ctl_args *a)
{
	return run_verb(c, a, "launch");
}

static int run_pause(struct ctl *c, const struct ctl_args *a)
{
	return run_verb(c, a, "pause");
}

static int run_resume(struct ctl *c, const struct ctl_args *a)
{
	return run_verb(c, a, "resume");
}

static int run_cancel(struct ctl *c, const struct ctl_args *a)
{
	return run_verb(c, a, "cancel");
}

/* ---------------------------------------------------------------- preview */

static int run_preview(struct ctl *c, const struct ctl_args *a)
{
	const char *ns = ctl_arg(a, O_SAMPLES);
	int64_t n = 3;
	if (ns && parse_i64(ns, 0, 10, &n) < 0)
		return ctl_usage(c, "--samples: 0..10");
	char *suffix = xasprintf("/preview?samples=%lld", (long long)n);
	char *path = camp_path(c, a->pos[0], suffix);
	free(suffix);
	json_t *ans;
	int rc = ctl_api(c, "POST", path, NULL, NULL, &ans, NULL);
	free(path);
	if (rc != CTL_OK)
		return rc;
	if (c->json) {
		ctl_print_json(ans);
		json_decref(ans);
		return CTL_OK;
	}
	json_t *aud = json_object_get(ans, "audience"),
	       *ctl = json_object_get(ans, "control_expected");
	printf("audience       %lld\n", (long long)json_integer_value(aud));
	printf("control (est.) %lld\n", (long long)json_integer_value(ctl));
	const char *cost = ctl_jstr(ans, "estimated_cost"), *budget = ctl_jstr(ans, "budget");
	printf("cost (est.)    %s%s%s\n", str_or(cost, "-"), budget ? "  of budget " : "",
	       budget ? budget : "");
	size_t i;
	json_t *smp;
	json_array_foreach(json_object_get(ans, "samples"), i, smp)
	{
		char *cid = out_clean(str_or(ctl_jstr(smp, "contact_id"), "?"));
		const char *sup = ctl_jstr(smp, "suppressed");
		if (sup) {
			char *r = out_clean(sup);
			printf("\n%s: suppressed (%s)\n", cid, r);
			free(r);
			free(cid);
			continue;
		}
		char *ch = out_clean(str_or(ctl_jstr(smp, "channel"), "?"));
		printf("\n%s via %s%s%s\n", cid, ch,
		       ctl_jstr(smp, "deferred") ? ", deferred: " : "",
		       str_or(ctl_jstr(smp, "deferred"), ""));
		free(cid);
		free(ch);
		size_t k;
		json_t *v;
		json_array_foreach(json_object_get(smp, "variants"), k, v)
		{
			char *nm = out_clean(str_or(ctl_jstr(v, "name"), "?"));
			const char *err = ctl_jstr(v, "error");
			if (err) {
				char *e = out_clean(err);
				printf("  [%s] error: %s\n", nm, e);
				free(e);
				free(nm);
				continue;
			}
			json_t *sms = json_object_get(v, "sms");
			if (sms)
				printf(
				    "  [%s] %lld segment(s), %s\n", nm,
				    (long long)json_integer_value(json_object_get(sms, "segments")),
				    str_or(ctl_jstr(sms, "encoding"), "?"));
			else
				printf("  [%s]\n", nm);
			const char *subj = ctl_jstr(v, "subject");
			if (subj) {
				char *sj = out_clean(subj);
				printf("  subject: %s\n", sj);
				free(sj);
			}
			const char *text = str_or(ctl_jstr(v, "text"), "");
			/* indent every line of the text */
			const char *p = text;
			while (*p) {
				size_t len = strcspn(p, "\n");
				char *line = xstrndup(p, len);
				char *cl = out_clean(line);
				printf("    %s\n", cl);
				free(cl);
				free(line);
				p += len;
				if (*p == '\n')
					p++;
			}
			free(nm);
		}
	}
	json_decref(ans);
	return CTL_OK;
}

/* ---------------------------------------------------------------- stats */

enum cell_kind { K_INT, K_MONEY, K_PCT, K_LIFT };

struct stat_row {
	const char *label;
	const char *key;
	enum cell_kind kind;
};

static const struct stat_row stat_rows[] = {
    {"targeted", "targeted", K_INT},
    {"queued", "queued", K_INT},
    {"cancelled", "cancelled", K_INT},
    {"sent", "sent", K_INT},
    {"delivered", "delivered", K_INT},
    {"undelivered", "undelivered", K_INT},
    {"failed", "failed", K_INT},
    {"expired", "expired", K_INT},
    {"suppressed", "suppressed", K_INT},
    {"replies", "replies", K_INT},
    {"clicks", "clicks", K_INT},
    {"clickers", "clickers", K_INT},
    {"purchases", "purchases", K_INT},
    {"revenue", "revenue", K_MONEY},
    {"cost", "cost", K_MONEY},
    {"ROI", "roi", K_PCT},
    {"reply rate", "reply_rate", K_PCT},
    {"click rate", "click_rate", K_PCT},
    {"conversion rate", "conversion_rate", K_PCT},
    {"revenue/contact", "revenue_per_contact", K_MONEY},
    {"conversion lift", "conversion_lift", K_LIFT},
    {"revenue lift", "revenue_lift", K_LIFT},
    {"incr. revenue", "incremental_revenue", K_MONEY},
};

/* One cell of an arm (NULL when the arm does not have the figure). */
static char *cell(const json_t *arm, const struct stat_row *r)
{
	const json_t *v = json_object_get(arm, r->key);
	if (!v || json_is_null(v))
		return NULL;
	switch (r->kind) {
	case K_INT:
		return int_str(arm, r->key);
	case K_MONEY:
		return json_is_real(v) ? xasprintf("%.2f", json_real_value(v)) : money_str(v);
	case K_PCT:
		return pct_str(arm, r->key, 0);
	case K_LIFT:
		return pct_str(arm, r->key, 1);
	}
	return NULL;
}

/* Whether an arm has something other than zero (or nothing) for a row. */
static int nonzero(const json_t *arm, const struct stat_row *r)
{
	const json_t *v = json_object_get(arm, r->key);
	if (json_is_number(v))
		return json_number_value(v) != 0.0;
	return json_is_string(v) && money_val(v) != 0.0;
}

/*
 * The stats block (header lines, the arm table, suppressions) into f.
 * compact: leave out the rows that are zero for every arm (a watch on a
 * terminal too short for the whole block).
 */
static void render_stats(FILE *f, const json_t *st, int compact)
{
	const int w = 10;
	const json_t *tot = json_object_get(st, "totals");
	const json_t *vars = json_object_get(st, "variants");
	const json_t *ctl = json_object_get(st, "control");
	const char *cur = ctl_jstr(st, "currency");
	char *s;

	s = xasprintf("%s  %s", str_or(ctl_jstr(st, "id"), "?"), str_or(ctl_jstr(st, "name"), ""));
	out_kv(f, w, "campaign", s);
	free(s);
	const char *reason = ctl_jstr(st, "reason");
	s = reason ? xasprintf("%s (%s)", str_or(ctl_jstr(st, "state"), "?"), reason)
	           : xstrdup(str_or(ctl_jstr(st, "state"), "-"));
	out_kv(f, w, "state", s);
	free(s);
	char *budget = money_str(json_object_get(st, "budget"));
	if (budget) {
		char *cost = money_str(json_object_get(tot, "cost"));
		double b = money_val(json_object_get(st, "budget"));
		double used = b > 0 ? money_val(json_object_get(tot, "cost")) / b * 100.0 : 0.0;
		s = xasprintf("%s %s, spent %s (%.1f%%)", budget, str_or(cur, ""),
		              str_or(cost, "0"), used);
		out_kv(f, w, "budget", s);
		free(s);
		free(cost);
		free(budget);
	} else if (cur) {
		out_kv(f, w, "currency", cur);
	}
	int64_t cp = int_of(st, "control_percent");
	int show_ctl = cp > 0 || int_of(ctl, "targeted") > 0;
	if (show_ctl) {
		s = xasprintf("%lld%% held out", (long long)cp);
		out_kv(f, w, "control", s);
		free(s);
	}
	fputc('\n', f);

	int nv = (int)json_array_size(vars);
	int ncols = 2 + nv + (show_ctl ? 1 : 0);
	const char **head = xcalloc((size_t)ncols, sizeof *head);
	const json_t **arms = xcalloc((size_t)ncols, sizeof *arms);
	head[0] = "";
	head[1] = "TOTAL";
	arms[1] = tot;
	for (int i = 0; i < nv; i++) {
		arms[2 + i] = json_array_get(vars, (size_t)i);
		head[2 + i] = str_or(ctl_jstr(arms[2 + i], "name"), "?");
	}
	if (show_ctl) {
		head[ncols - 1] = "CONTROL";
		arms[ncols - 1] = ctl;
	}
	struct out_table *t = out_table_new(head, ncols);
	for (int i = 1; i < ncols; i++) {
		out_table_align(t, i, OUT_RIGHT);
		out_table_max(t, i, 20);
	}
	char **cells = xcalloc((size_t)ncols, sizeof *cells);
	if (nv > 0) {
		cells[0] = xstrdup("template");
		for (int i = 0; i < nv; i++)
			cells[2 + i] = xstrdup(str_or(ctl_jstr(arms[2 + i], "template"), "-"));
		out_table_add(t, (const char *const *)cells);
		for (int i = 0; i < ncols; i++) {
			free(cells[i]);
			cells[i] = NULL;
		}
	}
	for (size_t r = 0; r < ARRAY_SIZE(stat_rows); r++) {
		int any = 0, some = 0;
		for (int i = 1; i < ncols; i++) {
			cells[i] = cell(arms[i], &stat_rows[r]);
			any |= cells[i] != NULL;
			some |= nonzero(arms[i], &stat_rows[r]);
		}
		if (any && (some || !compact)) {
			int money = stat_rows[r].kind == K_MONEY && cur;
			cells[0] = money ? xasprintf("%s (%s)", stat_rows[r].label, cur)
			                 : xstrdup(stat_rows[r].label);
			out_table_add(t, (const char *const *)cells);
		}
		for (int i = 0; i < ncols; i++) {
			free(cells[i]);
			cells[i] = NULL;
		}
	}
	out_table_flush(t, f);
	out_table_free(t);
	free(cells);
	free(head);
	free(arms);

	const json_t *byr = json_object_get(tot, "suppressed_by_reason");
	if (json_object_size(byr) > 0) {
		struct buf b;
		const char *k;
		const json_t *v;
		buf_init(&b, 0);
		buf_append(&b, "", 0);
		json_object_foreach((json_t *)byr, k, v)
		{
			buf_printf(&b, "%s%s %lld", b.len ? ", " : "", k,
			           (long long)json_integer_value(v));
		}
		fputc('\n', f);
		out_kv(f, 0, "suppressed by reason:", b.p);
		buf_free(&b);
	}
}

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Sleep ms in short slices; returns early on Ctrl-C. */
static void nap(int64_t ms)
{
	int64_t end = mono_ms() + ms;
	while (!interrupted) {
		int64_t left = end - mono_ms();
		if (left <= 0)
			break;
		if (left > 100)
			left = 100;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)left * 1000000L};
		nanosleep(&ts, NULL);
	}
}

/* The terminal's size, 80x24 when unknown. */
static void term_size(int *cols, int *rows)
{
	struct winsize ws;
	*cols = 80;
	*rows = 24;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
		if (ws.ws_col > 0)
			*cols = ws.ws_col;
		if (ws.ws_row > 0)
			*rows = ws.ws_row;
	}
}

/* Terminal rows text takes at cols columns (each line wraps on its own). */
static int rows_of(const char *text, int cols)
{
	int rows = 0;
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		char *line = xstrndup(p, nl ? (size_t)(nl - p) : strlen(p));
		size_t w = out_width(line);
		rows += w == 0 ? 1 : (int)((w + (size_t)cols - 1) / (size_t)cols);
		free(line);
		if (!nl)
			break;
		p = nl + 1;
	}
	return rows;
}

/* Local "now" in the output's date style; caller frees. */
static char *now_text(void)
{
	char t[40];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return out_time(t);
}

/*
 * Draw one frame on a terminal: move up over the previous frame, rewrite
 * each line erasing its rest, erase whatever the old frame had below.
 * Returns the rows this frame takes.
 */
static int redraw(const char *text, int prev_rows, int cols)
{
	struct buf b;
	buf_init(&b, 0);
	if (prev_rows > 0)
		buf_printf(&b, "\033[%dA\r", prev_rows);
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		buf_append(&b, p, n);
		buf_puts(&b, "\033[K\n");
		p += n + (nl ? 1 : 0);
	}
	buf_puts(&b, "\033[J");
	fwrite(b.p, 1, b.len, stdout);
	fflush(stdout);
	buf_free(&b);
	return rows_of(text, cols);
}

/* A block of text (head, then the stats) as a new string. */
static char *stats_text(const json_t *st, const char *head, int compact)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mf = open_memstream(&text, &len);
	if (!mf)
		abort();
	fputs(head, mf);
	render_stats(mf, st, compact);
	fclose(mf);
	return text;
}

/*
 * A terminal frame that fits in max_rows: the whole block, else without
 * the all-zero rows, else its first lines and a note of how many are cut.
 */
static char *fit_frame(const json_t *st, const char *head, int cols, int max_rows)
{
	char *text = stats_text(st, head, 0);
	if (rows_of(text, cols) <= max_rows)
		return text;
	free(text);
	text = stats_text(st, head, 1);
	if (rows_of(text, cols) <= max_rows)
		return text;
	struct buf b;
	int used = 0, cut = 0;
	buf_init(&b, 0);
	buf_append(&b, "", 0);
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
		char *line = xstrndup(p, n);
		int r = rows_of(line, cols);
		if (!cut && used + r <= max_rows - 1) {
			buf_puts(&b, line);
			used += r;
		} else {
			cut++;
		}
		free(line);
		p += n;
	}
	buf_printf(&b, "... %d more line%s (a taller terminal shows them)\n", cut,
	           cut == 1 ? "" : "s");
	free(text);
	return buf_steal(&b);
}

static int finished(const json_t *st)
{
	const char *s = ctl_jstr(st, "state");
	return s && (strcmp(s, "completed") == 0 || strcmp(s, "cancelled") == 0);
}

static int run_stats(struct ctl *c, const struct ctl_args *a)
{
	int watch = ctl_has(a, O_WATCH);
	int64_t interval = WATCH_DEFAULT_MS;
	const char *iv = ctl_arg(a, O_INTERVAL);
	if (iv && !watch)
		return ctl_usage(c, "--interval needs --watch");
	if (iv && (conf_parse_timeout(iv, &interval) < 0 || interval < WATCH_MIN_MS))
		return ctl_usage(c, "--interval: a duration of at least 100ms expected (2, 2s, "
		                    "500ms)");
	char *path = camp_path(c, a->pos[0], "/stats");
	int tty = watch && !c->json && isatty(STDOUT_FILENO);
	int rows = 0, frames = 0, rc = CTL_OK;
	struct sigaction sa = {0}, old;

	if (watch) {
		sa.sa_handler = on_sigint; /* no SA_RESTART: a nap ends at once */
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, &old);
	}
	for (;;) {
		json_t *st;
		rc = ctl_api(c, "GET", path, NULL, NULL, &st, NULL);
		if (rc != CTL_OK)
			break;
		if (c->json && watch) {
			/* one document per line (JSON Lines) */
			json_dumpf(st, stdout, JSON_COMPACT);
			fputc('\n', stdout);
			fflush(stdout);
		} else if (c->json) {
			ctl_print_json(st);
		} else {
			char *head = NULL, *text;
			if (watch) {
				char *now = now_text();
				head = tty ? xasprintf("%s  every %lld.%01llds, Ctrl-C stops\n\n",
				                       now, (long long)(interval / 1000),
				                       (long long)(interval % 1000 / 100))
				           : xasprintf("%s-- %s --\n", frames ? "\n" : "", now);
				free(now);
			}
			if (tty) {
				int cols, trows;
				term_size(&cols, &trows);
				text = fit_frame(st, head, cols, trows - 1);
				rows = redraw(text, rows, cols);
			} else {
				text = stats_text(st, head ? head : "", 0);
				fputs(text, stdout);
				fflush(stdout);
			}
			free(text);
			free(head);
		}
		frames++;
		int done = finished(st);
		json_decref(st);
		if (!watch || done || interrupted)
			break;
		nap(interval);
		if (interrupted)
			break;
	}
	if (watch)
		sigaction(SIGINT, &old, NULL);
	free(path);
	return rc;
}

/* ---------------------------------------------------------------- compare */

/* Lift of the treated contacts (every variant) over the control group,
 * from the totals and the control arm; NULL when control has no base. */
static char *overall_lift(const json_t *st, int revenue)
{
	const json_t *tot = json_object_get(st, "totals"), *ctl = json_object_get(st, "control");
	double ct = (double)int_of(ctl, "targeted");
	double tt = (double)int_of(tot, "targeted") - ct;
	double cn, tn;
	if (revenue) {
		cn = money_val(json_object_get(ctl, "revenue"));
		tn = money_val(json_object_get(tot, "revenue")) - cn;
	} else {
		cn = (double)int_of(ctl, "purchases");
		tn = (double)int_of(tot, "purchases") - cn;
	}
	if (ct <= 0 || tt <= 0 || cn <= 0)
		return NULL;
	double base = cn / ct, arm = tn / tt;
	return xasprintf("%+.1f%%", (arm - base) / base * 100.0);
}

static int run_compare(struct ctl *c, const struct ctl_args *a)
{
	struct buf q;
	for (int i = 0; i < a->npos; i++)
		if (!a->pos[i][0] || strchr(a->pos[i], ','))
			return ctl_usage(c, "'%s' is not a campaign id", a->pos[i]);
	buf_init(&q, 0);
	buf_puts(&q, "/v1/campaigns/compare?ids=");
	for (int i = 0; i < a->npos; i++) {
		char *e = ctl_escape(c, a->pos[i]);
		buf_printf(&q, "%s%s", i ? "," : "", e);
		free(e);
	}
	json_t *ans;
	int rc = ctl_api(c, "GET", q.p, NULL, NULL, &ans, NULL);
	buf_free(&q);
	if (rc != CTL_OK)
		return rc;
	if (c->json) {
		ctl_print_json(ans);
		json_decref(ans);
		return CTL_OK;
	}
	const json_t *camps = json_object_get(ans, "campaigns");
	int n = (int)json_array_size(camps), ncols = n + 1;
	const char **head = xcalloc((size_t)ncols, sizeof *head);
	head[0] = "";
	for (int i = 0; i < n; i++)
		head[1 + i] = str_or(ctl_jstr(json_array_get(camps, (size_t)i), "id"), "?");
	struct out_table *t = out_table_new(head, ncols);
	for (int i = 1; i < ncols; i++) {
		out_table_align(t, i, OUT_RIGHT);
		out_table_max(t, i, 28);
	}
	static const struct {
		const char *label, *key;
		int kind; /* 0 string, 1 int, 2 money, 3 pct, 4/5 conversion/revenue lift */
	} rows[] = {
	    {"name", "name", 0},
	    {"state", "state", 0},
	    {"targeted", "targeted", 1},
	    {"sent", "sent", 1},
	    {"delivered", "delivered", 1},
	    {"replies", "replies", 1},
	    {"clicks", "clicks", 1},
	    {"purchases", "purchases", 1},
	    {"revenue", "revenue", 2},
	    {"cost", "cost", 2},
	    {"ROI", "roi", 3},
	    {"conversion lift", NULL, 4},
	    {"revenue lift", NULL, 5},
	};
	char **cells = xcalloc((size_t)ncols, sizeof *cells);
	for (size_t r = 0; r < ARRAY_SIZE(rows); r++) {
		cells[0] = xstrdup(rows[r].label);
		for (int i = 0; i < n; i++) {
			const json_t *st = json_array_get(camps, (size_t)i);
			const json_t *tot = json_object_get(st, "totals");
			const char *cur = ctl_jstr(st, "currency");
			char *v = NULL;
			switch (rows[r].kind) {
			case 0:
				v = ctl_jstr(st, rows[r].key) ? xstrdup(ctl_jstr(st, rows[r].key))
				                              : NULL;
				break;
			case 1:
				v = int_str(tot, rows[r].key);
				break;
			case 2: {
				char *m = money_str(json_object_get(tot, rows[r].key));
				v = m && cur ? xasprintf("%s %s", m, cur) : m;
				if (v != m)
					free(m);
				break;
			}
			case 3:
				v = pct_str(tot, rows[r].key, 0);
				break;
			default:
				v = overall_lift(st, rows[r].kind == 5);
				break;
			}
			cells[1 + i] = v;
		}
		out_table_add(t, (const char *const *)cells);
		for (int i = 0; i < ncols; i++) {
			free(cells[i]);
			cells[i] = NULL;
		}
	}
	out_table_flush(t, stdout);
	out_table_free(t);
	free(cells);
	free(head);
	json_decref(ans);
	return CTL_OK;
}

/* ---------------------------------------------------------------- table */

static const struct ctl_cmd campaigns_cmds[] = {
    {"list", NULL, 0, 0, "list campaigns by id",
     "Shows the first 50 campaigns (id, name, state, channel, last change), or\n"
     "--limit N, or --all (pages of 200 are fetched one after the other; --json\n"
     "prints the API's ids as one {\"items\":[...],\"next_cursor\":...} document).\n"
     "-q prints only the ids.",
     list_opts, run_list},
    {"get", "ID", 1, 1, "show a campaign: definition, state, reason, history", NULL, NULL, run_get},
    {"create", "FILE", 1, 1, "create a draft from a JSON definition (- for stdin)",
     "FILE holds {\"name\": ..., \"segment\": ..., \"template\": ... or \"variants\": [...],\n"
     "\"control_percent\": ..., \"schedule\": ..., \"budget\": ..., ...} (see\n"
     "docs/campaigns.md).  With \"id\" in FILE the campaign gets that id, otherwise\n"
     "the server picks one.  Exits 1 when the definition is refused (the error\n"
     "names the field) or the id exists.",
     NULL, run_create},
    {"put", "ID FILE", 2, 2, "replace a draft's definition",
     "Only a draft can be changed; its version grows by one.", NULL, run_put},
    {"rm", "ID", 1, 1, "delete a draft, completed or cancelled campaign", NULL, NULL, run_rm},
    {"launch", "ID", 1, 1, "launch a draft (scheduled or running)",
     "The segment and the templates are checked and frozen into the campaign.  A\n"
     "schedule in the future makes it scheduled, otherwise it starts running.",
     NULL, run_launch},
    {"preview", "ID", 1, 1, "audience, sample renders and estimated cost",
     "Counts the audience through the campaign's segment, renders each variant for\n"
     "--samples contacts on the channel their preferences choose (SMS segments and\n"
     "encoding shown) and estimates the cost.  Sends nothing.",
     preview_opts, run_preview},
    {"pause", "ID", 1, 1, "pause a scheduled or running campaign", NULL, reason_opts, run_pause},
    {"resume", "ID", 1, 1, "resume a paused campaign", NULL, NULL, run_resume},
    {"cancel", "ID", 1, 1, "cancel a campaign for good", "Messages not yet sent are cancelled.",
     reason_opts, run_cancel},
    {"stats", "ID", 1, 1, "counters, ROI and lift per variant and control",
     "Shows the campaign's counters for all contacts (TOTAL), each variant and the\n"
     "control group: sent, delivered, replies, clicks, purchases, revenue, cost,\n"
     "ROI, rates and the lift of each variant over the control group.  With --watch\n"
     "the figures are refreshed every --interval (redrawn in place on a terminal,\n"
     "one block after another otherwise; with --json one document per line) until\n"
     "the campaign is completed or cancelled, or Ctrl-C (exit 0).",
     stats_opts, run_stats},
    {"compare", "ID ID...", 2, COMPARE_MAX, "compare campaigns side by side",
     "One column per campaign: targeted, sent, delivered, replies, clicks,\n"
     "purchases, revenue, cost, ROI, and the conversion and revenue lift of all\n"
     "variants together over the control group (- without a control group or\n"
     "without purchases in it).",
     NULL, run_compare},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL},
};

const struct ctl_group ctl_group_campaigns = {
    "campaigns", "campaigns: drafts, launch, pause, stats, compare", campaigns_cmds};
