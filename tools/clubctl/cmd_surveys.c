/*
 * cmd_surveys.c - `clubctl surveys ...`: list, get, create, launch, results
 * and rm over /v1/surveys.  results draws each question's distribution as
 * a horizontal bar chart of block characters (eighths for the fraction)
 * with counts and percentages, the mean and the NPS, then the first
 * free-text answers; --json prints the API's answer, --csv streams
 * results.csv (one row per contact who answered) to standard output.
 *
 * Owns the JSON it builds.  Never checks a definition itself: the server is
 * the judge and its error names the field.  Limits: definition files up to
 * 1 MiB; listings hold one page (<= 200 surveys) at a time; bars are
 * BAR_WIDTH columns.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clubctl.h"
#include "http.h"
#include "out.h"
#include "res.h"
#include "util.h"

#define FILE_MAX  (1u << 20)
#define PAGE_MAX  200
#define BAR_WIDTH 30
#define LABEL_MAX 24 /* columns of an option's label */

enum {
	O_LIMIT = 256,
	O_ALL,
	O_SEGMENT,
	O_SEGMENT_FILE,
	O_CAMPAIGN,
	O_CHANNEL,
	O_CSV,
	O_TEXTS,
	O_BOM,
	O_FORCE,
};

static const struct ctl_opt list_opts[] = {
    {"limit", O_LIMIT, "N", "show at most N surveys (default 50)", 0, NULL},
    {"all", O_ALL, NULL, "show every survey, following the cursor", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt launch_opts[] = {
    {"segment", O_SEGMENT, "ID", "a saved segment's id", 0, NULL},
    {"segment-file", O_SEGMENT_FILE, "FILE", "an inline segment definition (JSON, - for stdin)",
     CTL_OPT_FILE, NULL},
    {"campaign", O_CAMPAIGN, "ID", "the contacts this campaign was sent to", 0, NULL},
    {"channel", O_CHANNEL, "CHANNEL", "sms, chat, email or preferred (default)", 0,
     "sms chat email preferred"},
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt results_opts[] = {
    {"csv", O_CSV, NULL, "print results.csv (one row per contact who answered)", 0, NULL},
    {"bom", O_BOM, NULL, "with --csv: start with a UTF-8 byte order mark (Excel)", 0, NULL},
    {"texts", O_TEXTS, "N", "free-text answers shown per question (0..200, default 10)", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt rm_opts[] = {
    {"force", O_FORCE, NULL, "also a launched survey, with its results (admin token)", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

/* ---------------------------------------------------------------- helpers */

static long long jint(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

static double jnum(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);
	return json_is_number(v) ? json_number_value(v) : 0;
}

/* A question's text in the survey's language (a string or {lang: text}). */
static const char *text_of(const json_t *t, const char *lang)
{
	if (json_is_string(t))
		return json_string_value(t);
	const char *s = lang ? json_string_value(json_object_get(t, lang)) : NULL;
	if (s)
		return s;
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)t, k, v)
	{
		(void)k;
		if (json_is_string(v))
			return json_string_value(v);
	}
	return NULL;
}

/* A number with digits in the output's style (Persian under Jalali). */
static void put_num(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void put_num(const char *fmt, ...)
{
	char b[64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b, sizeof b, fmt, ap);
	va_end(ap);
	char *d = out_digits(b);
	fputs(d, stdout);
	free(d);
}

/* s padded with spaces to width display columns (cut with "…" beyond). */
static void put_padded(const char *s, size_t width)
{
	char *f = out_fit(s ? s : "", width);
	fputs(f, stdout);
	for (size_t w = out_width(f); w < width; w++)
		fputc(' ', stdout);
	free(f);
}

/* A bar of count / max of BAR_WIDTH columns in eighths of a block. */
static void put_bar(long long count, long long max)
{
	static const char *const part[8] = {"",       "\u258f", "\u258e", "\u258d",
	                                    "\u258c", "\u258b", "\u258a", "\u2589"};
	long long eighths = max > 0 ? (count * BAR_WIDTH * 8 + max / 2) / max : 0;
	if (count > 0 && eighths == 0)
		eighths = 1; /* a non-zero count is always visible */
	int cols = 0;
	for (long long i = 0; i < eighths / 8; i++, cols++)
		fputs("\u2588", stdout);
	if (eighths % 8) {
		fputs(part[eighths % 8], stdout);
		cols++;
	}
	for (; cols < BAR_WIDTH; cols++)
		fputc(' ', stdout);
}

/* ---------------------------------------------------------------- output */

static void print_survey(struct ctl *c, const json_t *s)
{
	const int w = 12;
	if (c->quiet) {
		printf("%s\n", ctl_jstr(s, "id") ? ctl_jstr(s, "id") : "");
		return;
	}
	const char *lang = ctl_jstr(s, "lang");
	out_kv(stdout, w, "id", ctl_jstr(s, "id"));
	out_kv(stdout, w, "name", ctl_jstr(s, "name"));
	out_kv(stdout, w, "language", lang);
	out_kv(stdout, w, "ttl", ctl_jstr(s, "ttl") ? ctl_jstr(s, "ttl") : "2d");
	const json_t *n = json_object_get(s, "counts");
	char *cs = xasprintf("%lld sent, %lld started, %lld completed", jint(n, "sent"),
	                     jint(n, "started"), jint(n, "completed"));
	char *cd = out_digits(cs);
	out_kv(stdout, w, "counts", cd);
	free(cs);
	free(cd);
	char *t = out_time(ctl_jstr(s, "updated_at"));
	out_kv(stdout, w, "updated", t);
	free(t);
	const json_t *qs = json_object_get(s, "questions"), *q;
	size_t i;
	static const char *const head[] = {"#", "ID", "TYPE", "QUESTION"};
	struct out_table *tb = out_table_new(head, 4);
	out_table_align(tb, 0, OUT_RIGHT);
	out_table_max(tb, 3, 60);
	json_array_foreach(qs, i, q)
	{
		char *num = xasprintf("%zu", i + 1);
		const char *row[] = {num, ctl_jstr(q, "id"), ctl_jstr(q, "type"),
		                     text_of(json_object_get(q, "text"), lang)};
		out_table_add(tb, row);
		free(num);
	}
	fputc('\n', stdout);
	out_table_flush(tb, stdout);
	out_table_free(tb);
}

static int show(struct ctl *c, json_t *ans)
{
	if (c->json)
		ctl_print_json(ans);
	else
		print_survey(c, ans);
	return CTL_OK;
}

/* One question of GET .../results. */
static void print_question(const json_t *q, size_t num)
{
	const char *type = ctl_jstr(q, "type");
	long long answers = jint(q, "answers"), invalid = jint(q, "invalid");
	char *text = out_clean(ctl_jstr(q, "text") ? ctl_jstr(q, "text") : "");
	put_num("%zu", num);
	printf(". %s  [%s, %s]\n   ", text, ctl_jstr(q, "id") ? ctl_jstr(q, "id") : "",
	       type ? type : "");
	free(text);
	put_num("%lld", answers);
	printf(" answers, ");
	put_num("%lld", invalid);
	printf(" invalid");
	if (json_object_get(q, "mean")) {
		printf(", mean ");
		put_num("%.2f", jnum(q, "mean"));
	}
	if (json_object_get(q, "nps")) {
		printf(", NPS ");
		put_num("%+.1f", jnum(q, "nps"));
		printf(" (promoters ");
		put_num("%lld", jint(q, "promoters"));
		printf(", passives ");
		put_num("%lld", jint(q, "passives"));
		printf(", detractors ");
		put_num("%lld", jint(q, "detractors"));
		printf(")");
	}
	fputc('\n', stdout);
	const json_t *dist = json_object_get(q, "distribution");
	if (json_is_object(dist)) {
		const json_t *opts = json_object_get(q, "options");
		long long max = 0;
		size_t lw = 2;
		const char *k;
		const json_t *v;
		json_object_foreach((json_t *)dist, k, v)
		{
			if (json_integer_value(v) > max)
				max = json_integer_value(v);
			int64_t n;
			const char *label = k;
			if (opts && parse_i64(k, 1, (int64_t)json_array_size(opts), &n) == 0)
				label = json_string_value(json_array_get(opts, (size_t)n - 1));
			char *cl = out_clean(label ? label : k);
			size_t w = out_width(cl) + (opts ? out_width(k) + 2 : 0);
			free(cl);
			if (w > lw)
				lw = w;
		}
		if (lw > LABEL_MAX)
			lw = LABEL_MAX;
		json_object_foreach((json_t *)dist, k, v)
		{
			int64_t n;
			long long count = json_integer_value(v);
			char label[256];
			if (opts && parse_i64(k, 1, (int64_t)json_array_size(opts), &n) == 0)
				snprintf(
				    label, sizeof label, "%s) %s", k,
				    json_string_value(json_array_get(opts, (size_t)n - 1))
				        ? json_string_value(json_array_get(opts, (size_t)n - 1))
				        : "");
			else
				snprintf(label, sizeof label, "%s", k);
			char *cl = out_clean(label);
			char *dl = out_digits(cl);
			printf("   ");
			put_padded(dl, lw);
			printf("  ");
			put_bar(count, max);
			printf("  ");
			char cnt[32];
			snprintf(cnt, sizeof cnt, "%5lld", count);
			put_num("%s", cnt);
			printf("  ");
			put_num("%5.1f%%",
			        answers > 0 ? 100.0 * (double)count / (double)answers : 0.0);
			fputc('\n', stdout);
			free(cl);
			free(dl);
		}
	}
	const json_t *texts = json_object_get(json_object_get(q, "texts"), "items"), *it;
	size_t i;
	json_array_foreach(texts, i, it)
	{
		char *t = out_time(ctl_jstr(it, "at"));
		char *tx = out_clean(ctl_jstr(it, "text") ? ctl_jstr(it, "text") : "");
		char *fit = out_fit(tx, 70);
		printf("   %s  %s  %s\n", t,
		       ctl_jstr(it, "contact_id") ? ctl_jstr(it, "contact_id") : "", fit);
		free(t);
		free(tx);
		free(fit);
	}
	if (texts && json_is_string(json_object_get(json_object_get(q, "texts"), "next_cursor")))
		printf("   ... (more with --json or --texts N)\n");
}

static void print_results(const json_t *r)
{
	char *name = out_clean(ctl_jstr(r, "name") ? ctl_jstr(r, "name") : "");
	printf("%s (%s)\n", name, ctl_jstr(r, "survey") ? ctl_jstr(r, "survey") : "");
	free(name);
	long long sent = jint(r, "sent");
	printf("sent ");
	put_num("%lld", sent);
	printf(", started ");
	put_num("%lld", jint(r, "started"));
	printf(" (");
	put_num("%.1f%%", 100.0 * jnum(r, "response_rate"));
	printf("), completed ");
	put_num("%lld", jint(r, "completed"));
	printf(" (");
	put_num("%.1f%%", 100.0 * jnum(r, "completion_rate"));
	printf(")\n");
	const json_t *qs = json_object_get(r, "questions"), *q;
	size_t i;
	json_array_foreach(qs, i, q)
	{
		fputc('\n', stdout);
		print_question(q, i + 1);
	}
}

/* ---------------------------------------------------------------- commands */

static int list_row(struct ctl *c, struct out_table *t, const json_t *it, void *arg)
{
	(void)c;
	(void)arg;
	const json_t *n = json_object_get(it, "counts");
	char *nq = xasprintf("%zu", json_array_size(json_object_get(it, "questions")));
	char *s1 = xasprintf("%lld", jint(n, "sent"));
	char *s2 = xasprintf("%lld", jint(n, "started"));
	char *s3 = xasprintf("%lld", jint(n, "completed"));
	char *up = out_time(ctl_jstr(it, "updated_at"));
	const char *row[] = {ctl_jstr(it, "id"), ctl_jstr(it, "name"), nq, s1, s2, s3, up};
	out_table_add(t, row);
	free(nq);
	free(s1);
	free(s2);
	free(s3);
	free(up);
	return CTL_OK;
}

static int run_list(struct ctl *c, const struct ctl_args *a)
{
	static const char *const head[] = {"ID",      "NAME",      "QUESTIONS", "SENT",
	                                   "STARTED", "COMPLETED", "UPDATED"};
	struct res_page p = {
	    .path = "/v1/surveys", .limit = 50, .page_max = PAGE_MAX, .row = list_row};
	const char *v;
	int rc;

	/* --all wins over --limit here (no exclusion check) */
	p.all = ctl_has(a, O_ALL);
	if ((v = ctl_arg(a, O_LIMIT)) && parse_i64(v, 1, INT64_MAX, &p.limit) < 0)
		return ctl_usage(c, "--limit: a positive number expected");
	if (!c->json && !c->quiet) {
		p.t = out_table_new(head, 7);
		for (int i = 2; i < 6; i++)
			out_table_align(p.t, i, OUT_RIGHT);
		out_table_max(p.t, 1, 40);
	}
	rc = res_page_run(c, &p);
	if (rc == CTL_OK && !c->json && p.t && p.shown == 0)
		ctl_info(c, "no surveys");
	res_page_free(&p);
	return rc;
}

static int run_get(struct ctl *c, const struct ctl_args *a)
{
	char *path = ctl_path(c, "/v1/surveys/", a->pos[0], NULL);
	int rc = res_get(c, path, print_survey);
	free(path);
	return rc;
}

static int run_create(struct ctl *c, const struct ctl_args *a)
{
	json_t *body, *ans;
	int rc = res_read_object(c, a->pos[0], FILE_MAX, NULL, &body);
	if (rc != CTL_OK)
		return rc;
	rc = ctl_api(c, "POST", "/v1/surveys", body, NULL, &ans, NULL);
	json_decref(body);
	if (rc == CTL_OK)
		rc = show(c, ans);
	json_decref(ans);
	return rc;
}

static int run_launch(struct ctl *c, const struct ctl_args *a)
{
	int given = ctl_has(a, O_SEGMENT) + ctl_has(a, O_SEGMENT_FILE) + ctl_has(a, O_CAMPAIGN);
	if (given != 1)
		return ctl_usage(c, "give one of --segment ID, --segment-file FILE, --campaign ID");
	json_t *body = json_object();
	const char *v;
	if ((v = ctl_arg(a, O_SEGMENT)))
		json_object_set_new(body, "segment", json_string(v));
	if ((v = ctl_arg(a, O_CAMPAIGN)))
		json_object_set_new(body, "campaign", json_string(v));
	if ((v = ctl_arg(a, O_SEGMENT_FILE))) {
		json_t *seg;
		int rc = res_read_object(c, v, FILE_MAX, NULL, &seg);
		if (rc != CTL_OK) {
			json_decref(body);
			return rc;
		}
		json_object_set_new(body, "segment", seg);
	}
	if ((v = ctl_arg(a, O_CHANNEL)))
		json_object_set_new(body, "channel", json_string(v));
	json_t *ans;
	char *path = ctl_path(c, "/v1/surveys/", a->pos[0], "/launch");
	int rc = ctl_api(c, "POST", path, body, NULL, &ans, NULL);
	free(path);
	json_decref(body);
	if (rc != CTL_OK)
		return rc;
	if (c->json) {
		ctl_print_json(ans);
	} else if (c->quiet) {
		printf("%lld\n", jint(ans, "sent"));
	} else {
		const json_t *sk = json_object_get(ans, "skipped");
		char *line =
		    xasprintf("%lld of %lld contacts sent the survey on %s; skipped: %lld "
		              "already sent, %lld in another survey, %lld by preferences, "
		              "%lld gone; %lld failed",
		              jint(ans, "sent"), jint(ans, "examined"),
		              ctl_jstr(ans, "channel") ? ctl_jstr(ans, "channel") : "?",
		              jint(sk, "already"), jint(sk, "open"), jint(sk, "suppressed"),
		              jint(sk, "no_contact"), jint(ans, "failed"));
		char *d = out_digits(line);
		printf("%s\n", d);
		free(d);
		free(line);
	}
	json_decref(ans);
	return CTL_OK;
}

static int csv_sink(const char *p, size_t n, void *arg)
{
	(void)arg;
	return fwrite(p, 1, n, stdout) == n ? 0 : -1;
}

static int run_results(struct ctl *c, const struct ctl_args *a)
{
	int64_t texts = 10;
	const char *v;
	if ((v = ctl_arg(a, O_TEXTS)) && parse_i64(v, 0, 200, &texts) < 0)
		return ctl_usage(c, "--texts: 0..200");
	if (ctl_has(a, O_BOM) && !ctl_has(a, O_CSV))
		return ctl_usage(c, "--bom goes with --csv");
	if (ctl_has(a, O_CSV)) {
		if (c->json)
			return ctl_usage(c, "--csv and --json exclude each other");
		char *path = ctl_path(c, "/v1/surveys/", a->pos[0],
		                      ctl_has(a, O_BOM) ? "/results.csv?bom=1" : "/results.csv");
		struct http_req rq = {.method = "GET", .path = path, .sink = csv_sink};
		struct http_resp rs;
		int hrc = http_do(ctl_http(c), &rq, &rs);
		int rc = CTL_OK;
		if (hrc < 0)
			rc = ctl_conn_error(c, rs.err);
		else if (rs.status < 200 || rs.status > 299)
			rc = ctl_api_error(c, rs.status, rs.body.p, rs.body.len);
		fflush(stdout);
		http_resp_free(&rs);
		free(path);
		return rc;
	}
	char *q = xasprintf("/results?text_limit=%lld", (long long)texts);
	char *path = ctl_path(c, "/v1/surveys/", a->pos[0], q);
	free(q);
	json_t *ans;
	int rc = ctl_api(c, "GET", path, NULL, NULL, &ans, NULL);
	free(path);
	if (rc != CTL_OK)
		return rc;
	if (c->json)
		ctl_print_json(ans);
	else
		print_results(ans);
	json_decref(ans);
	return CTL_OK;
}

static int run_rm(struct ctl *c, const struct ctl_args *a)
{
	char *path =
	    ctl_path(c, "/v1/surveys/", a->pos[0], ctl_has(a, O_FORCE) ? "?force=true" : NULL);
	int rc = res_delete(c, path, a->pos[0], "survey");
	free(path);
	return rc;
}

static const struct ctl_cmd surveys_cmds[] = {
    {"list", NULL, 0, 0, "list surveys with their counts", NULL, list_opts, run_list},
    {"get", "ID", 1, 1, "show a survey and its questions", NULL, NULL, run_get},
    {"create", "FILE", 1, 1, "create a survey from a JSON definition (- for stdin)",
     "The definition is described in docs/surveys.md, e.g.\n"
     "  {\"id\": \"after-visit\", \"name\": \"...\", \"lang\": \"fa\", \"ttl\": \"2d\",\n"
     "   \"questions\": [{\"type\": \"rating\", \"text\": {\"fa\": \"...\", \"en\": \"...\"}},\n"
     "                  {\"type\": \"choice\", \"text\": \"...\", \"options\": [\"بله\", "
     "\"خیر\"]}]}",
     NULL, run_create},
    {"launch", "ID", 1, 1, "send a survey to a segment or to a campaign's recipients",
     "Each contact gets question 1 (by email: every question) on --channel, or on the\n"
     "channel their preferences choose for surveys.  Contacts with a survey open, or\n"
     "who got this one before, are skipped and counted: launching again is safe.",
     launch_opts, run_launch},
    {"results", "ID", 1, 1, "counts, distributions as bar charts, mean and NPS",
     "Per question: answers and invalid answers, a bar per value with its count and\n"
     "share of the answers, the mean (rating, NPS) and the NPS score (% promoters\n"
     "minus % detractors), and the first free-text answers.  --csv prints one row\n"
     "per contact who answered (RFC 4180, UTF-8).",
     results_opts, run_results},
    {"rm", "ID", 1, 1, "delete a survey", NULL, rm_opts, run_rm},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL},
};

const struct ctl_group ctl_group_surveys = {"surveys", "surveys: definitions, launch, results",
                                            surveys_cmds};
