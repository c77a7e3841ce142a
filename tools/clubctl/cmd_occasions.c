/*
 * cmd_occasions.c - `clubctl occasions ...`: list, get, create, put, rm,
 * preview and run over /v1/occasions.  Rules come from JSON files (or
 * stdin); --date takes a Gregorian day or, with a year below 1700, a Jalali
 * one (1404-01-01, Persian digits too), converted here before the API sees
 * it; `run --wait` follows the run until it ends.
 *
 * Owns the JSON it builds.  Never checks a rule itself: the server is the
 * judge and its error names the field.  Limits: rule files up to 1 MiB;
 * `run --wait` polls every 200 ms for at most --timeout seconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clubctl.h"
#include "jalali.h"
#include "out.h"
#include "res.h"
#include "text.h"
#include "util.h"

#define FILE_MAX     (1u << 20)
#define WAIT_STEP_MS 200

enum {
	O_DATE = 256,
	O_WAIT,
	O_WAIT_TIMEOUT,
};

static const struct ctl_opt date_opts[] = {
    {"date", O_DATE, "DATE",
     "the day: YYYY-MM-DD, Gregorian or (year below 1700) Jalali; default each contact's "
     "local today",
     0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt run_opts[] = {
    {"date", O_DATE, "DATE",
     "the day: YYYY-MM-DD, Gregorian or (year below 1700) Jalali; default each contact's "
     "local today",
     0, NULL},
    {"wait", O_WAIT, NULL, "wait until the run has ended and print its counters", 0, NULL},
    {"wait-timeout", O_WAIT_TIMEOUT, "SECONDS",
     "with --wait: give up after this long (default 600)", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

/* ---------------------------------------------------------------- helpers */

static int greg_valid(int y, int m, int d)
{
	static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m < 1 || m > 12 || d < 1)
		return 0;
	int n = len[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
	return d <= n;
}

/* --date as the API's Gregorian "YYYY-MM-DD" into out (16 bytes). */
static int parse_date(struct ctl *c, const char *s, char *out, size_t n)
{
	char *a = text_ascii_digits(s);
	int y = 0, m = 0, d = 0, used = 0;
	int ok = a && sscanf(a, "%4d-%2d-%2d%n", &y, &m, &d, &used) == 3 &&
	         used == (int)strlen(a) && strlen(a) == 10;
	free(a);
	if (ok && y < 1700) {
		if (y < 1178 || !jalali_valid(y, m, d))
			ok = 0;
		else
			jalali_to_gregorian(y, m, d, &y, &m, &d);
	}
	if (!ok || !greg_valid(y, m, d))
		return ctl_usage(c,
		                 "--date: YYYY-MM-DD expected (2025-03-21, or Jalali 1404-01-01)");
	snprintf(out, n, "%04d-%02d-%02d", y, m, d);
	return CTL_OK;
}

/* "1 Farvardin" style description of a rule's date. */
static char *when_of(const json_t *r)
{
	const char *kind = ctl_jstr(r, "kind"), *date = ctl_jstr(r, "date");
	long long off = json_integer_value(json_object_get(r, "offset_days"));
	char *base;
	if (!kind)
		base = xstrdup("-");
	else if (strcmp(kind, "fixed_jalali") == 0)
		base = xasprintf("j:%s", date ? date : "?");
	else if (strcmp(kind, "fixed_gregorian") == 0)
		base = xstrdup(date ? date : "?");
	else if (strcmp(kind, "date_attr") == 0)
		base = xasprintf("attrs.%s", ctl_jstr(r, "attr") ? ctl_jstr(r, "attr") : "?");
	else
		base = xstrdup(strcmp(kind, "birthday") == 0 ? "attrs.birthday" : "joined");
	if (off == 0)
		return base;
	char *s = xasprintf("%s %+lldd", base, off);
	free(base);
	return s;
}

static char *run_summary(const json_t *run)
{
	if (!json_is_object(run))
		return xstrdup("-");
	const char *st = ctl_jstr(run, "state");
	return xasprintf("%s, %lld created", st ? st : "?",
	                 (long long)json_integer_value(json_object_get(run, "created")));
}

static void print_run(const char *title, const json_t *run)
{
	const int w = 14;
	if (!json_is_object(run)) {
		out_kv(stdout, w, title, "none yet");
		return;
	}
	char *s = xasprintf("%s%s%s", ctl_jstr(run, "state") ? ctl_jstr(run, "state") : "?",
	                    ctl_jstr(run, "date") ? " for " : "",
	                    ctl_jstr(run, "date") ? ctl_jstr(run, "date") : "");
	out_kv(stdout, w, title, s);
	free(s);
	char *a = out_time(ctl_jstr(run, "started_at")),
	     *b = out_time(ctl_jstr(run, "finished_at"));
	s = xasprintf("%s .. %s", a, b);
	out_kv(stdout, w, "", s);
	free(a);
	free(b);
	free(s);
	s = xasprintf("examined %lld, matched %lld, created %lld, already sent %lld, missed %lld, "
	              "errors %lld",
	              (long long)json_integer_value(json_object_get(run, "examined")),
	              (long long)json_integer_value(json_object_get(run, "matched")),
	              (long long)json_integer_value(json_object_get(run, "created")),
	              (long long)json_integer_value(json_object_get(run, "dup")),
	              (long long)json_integer_value(json_object_get(run, "missed")),
	              (long long)json_integer_value(json_object_get(run, "errors")));
	out_kv(stdout, w, "", s);
	free(s);
	if (ctl_jstr(run, "error"))
		out_kv(stdout, w, "", ctl_jstr(run, "error"));
}

static void print_rule(struct ctl *c, const json_t *r)
{
	const int w = 14;
	if (c->quiet) {
		printf("%s\n", ctl_jstr(r, "id") ? ctl_jstr(r, "id") : "");
		return;
	}
	out_kv(stdout, w, "id", ctl_jstr(r, "id"));
	out_kv(stdout, w, "name", ctl_jstr(r, "name"));
	out_kv(stdout, w, "kind", ctl_jstr(r, "kind"));
	char *s = when_of(r);
	out_kv(stdout, w, "date", s);
	free(s);
	if (ctl_jstr(r, "calendar"))
		out_kv(stdout, w, "calendar", ctl_jstr(r, "calendar"));
	if (ctl_jstr(r, "repeat"))
		out_kv(stdout, w, "repeat", ctl_jstr(r, "repeat"));
	out_kv(stdout, w, "template", ctl_jstr(r, "template"));
	out_kv(stdout, w, "channel", ctl_jstr(r, "channel"));
	out_kv(stdout, w, "window", ctl_jstr(r, "window") ? ctl_jstr(r, "window") : "(default)");
	const json_t *seg = json_object_get(r, "segment");
	if (json_is_string(seg)) {
		out_kv(stdout, w, "segment", json_string_value(seg));
	} else if (json_is_object(seg)) {
		s = json_dumps(seg, JSON_COMPACT);
		out_kv(stdout, w, "segment", s);
		free(s);
	} else {
		out_kv(stdout, w, "segment", "(every contact)");
	}
	out_kv(stdout, w, "category", ctl_jstr(r, "category"));
	out_kv(stdout, w, "enabled", json_is_true(json_object_get(r, "enabled")) ? "yes" : "no");
	s = res_llstr(json_object_get(r, "version"));
	out_kv(stdout, w, "version", s);
	free(s);
	s = out_time(ctl_jstr(r, "updated_at"));
	out_kv(stdout, w, "updated", s);
	free(s);
	print_run("last run", json_object_get(r, "run"));
	print_run("last pass", json_object_get(r, "last_pass"));
}

/* ---------------------------------------------------------------- commands */

static int run_list(struct ctl *c, const struct ctl_args *a)
{
	(void)a;
	static const char *const head[] = {"ID",      "NAME",    "KIND",     "DATE",
	                                   "CHANNEL", "ENABLED", "LAST PASS"};
	json_t *ans;
	int rc = ctl_api(c, "GET", "/v1/occasions", NULL, NULL, &ans, NULL);
	if (rc != CTL_OK)
		return rc;
	if (c->json) {
		ctl_print_json(ans);
		json_decref(ans);
		return CTL_OK;
	}
	json_t *items = json_object_get(ans, "items"), *it;
	size_t i;
	struct out_table *t = c->quiet ? NULL : out_table_new(head, 7);
	if (t) {
		out_table_max(t, 0, 30);
		out_table_max(t, 1, 30);
	}
	json_array_foreach(items, i, it)
	{
		if (!t) {
			printf("%s\n", ctl_jstr(it, "id") ? ctl_jstr(it, "id") : "");
			continue;
		}
		char *when = when_of(it), *last = run_summary(json_object_get(it, "last_pass"));
		const char *row[] = {ctl_jstr(it, "id"),
		                     ctl_jstr(it, "name"),
		                     ctl_jstr(it, "kind"),
		                     when,
		                     ctl_jstr(it, "channel"),
		                     json_is_true(json_object_get(it, "enabled")) ? "yes" : "no",
		                     last};
		out_table_add(t, row);
		free(when);
		free(last);
	}
	if (t) {
		if (out_table_rows(t) > 0)
			out_table_flush(t, stdout);
		else
			ctl_info(c, "no occasion rules");
		out_table_free(t);
	}
	json_decref(ans);
	return CTL_OK;
}

static int run_get(struct ctl *c, const struct ctl_args *a)
{
	char *path = ctl_path(c, "/v1/occasions/", a->pos[0], NULL);
	int rc = res_get(c, path, print_rule);
	free(path);
	return rc;
}

static int write_def(struct ctl *c, const char *method, const char *id, const char *file)
{
	json_t *ans;
	char *path = id ? ctl_path(c, "/v1/occasions/", id, NULL) : xstrdup("/v1/occasions");
	int rc = res_send_file(c, method, path, file, FILE_MAX, "an occasion rule", &ans);
	free(path);
	if (rc != CTL_OK)
		return rc;
	if (res_echo(c, ans)) {
		char *rid = out_clean(ctl_jstr(ans, "id") ? ctl_jstr(ans, "id") : "");
		printf("%s occasion %s (version %lld)\n", id ? "replaced" : "created", rid,
		       (long long)json_integer_value(json_object_get(ans, "version")));
		free(rid);
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
	char *path = ctl_path(c, "/v1/occasions/", a->pos[0], NULL);
	int rc = res_delete(c, path, a->pos[0], "occasion");
	free(path);
	return rc;
}

/* "/v1/occasions/ID/WHAT[?date=D]"; CTL_OK or usage. */
static int action_path(struct ctl *c, const struct ctl_args *a, const char *what, char **out)
{
	char date[40] = "";
	const char *v = ctl_arg(a, O_DATE);
	if (v && parse_date(c, v, date, sizeof date) != CTL_OK)
		return CTL_EUSAGE;
	char *base = ctl_path(c, "/v1/occasions/", a->pos[0], what);
	*out = *date ? xasprintf("%s?date=%s", base, date) : xstrdup(base);
	free(base);
	return CTL_OK;
}

static int run_preview(struct ctl *c, const struct ctl_args *a)
{
	static const char *const head[] = {"CONTACT", "NAME",  "TZ",  "DATE",
	                                   "JALALI",  "YEARS", "DUE", "SENT"};
	char *path;
	json_t *ans;
	if (action_path(c, a, "/preview", &path) != CTL_OK)
		return CTL_EUSAGE;
	int rc = ctl_api(c, "POST", path, NULL, NULL, &ans, NULL);
	free(path);
	if (rc != CTL_OK)
		return rc;
	if (c->json) {
		ctl_print_json(ans);
		json_decref(ans);
		return CTL_OK;
	}
	long long count = json_integer_value(json_object_get(ans, "count"));
	if (c->quiet) {
		printf("%lld\n", count);
		json_decref(ans);
		return CTL_OK;
	}
	printf("%lld contacts on %s: %lld due, %lld missed (window over), %lld already sent; "
	       "%lld examined, %lld unreadable dates\n",
	       count, ctl_jstr(ans, "date") ? ctl_jstr(ans, "date") : "their local today",
	       (long long)json_integer_value(json_object_get(ans, "due")),
	       (long long)json_integer_value(json_object_get(ans, "missed")),
	       (long long)json_integer_value(json_object_get(ans, "already_sent")),
	       (long long)json_integer_value(json_object_get(ans, "examined")),
	       (long long)json_integer_value(json_object_get(ans, "errors")));
	json_t *sample = json_object_get(ans, "sample"), *it;
	if (json_array_size(sample) > 0) {
		struct out_table *t = out_table_new(head, 8);
		out_table_max(t, 1, 30);
		size_t i;
		json_array_foreach(sample, i, it)
		{
			char *years = res_llstr(json_object_get(it, "years"));
			char *due = json_is_true(json_object_get(it, "missed"))
			                ? xstrdup("missed")
			                : out_time(ctl_jstr(it, "due_at"));
			const char *row[] = {
			    ctl_jstr(it, "contact_id"),
			    ctl_jstr(it, "name"),
			    ctl_jstr(it, "tz"),
			    ctl_jstr(it, "date"),
			    ctl_jstr(it, "jdate"),
			    years,
			    due,
			    json_is_true(json_object_get(it, "already_sent")) ? "yes" : "no"};
			out_table_add(t, row);
			free(years);
			free(due);
		}
		fputc('\n', stdout);
		out_table_flush(t, stdout);
		out_table_free(t);
	}
	json_decref(ans);
	return CTL_OK;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int run_run(struct ctl *c, const struct ctl_args *a)
{
	char *path;
	json_t *ans;
	int64_t limit_s = 600;
	const char *v = ctl_arg(a, O_WAIT_TIMEOUT);
	if (v && parse_i64(v, 1, 86400, &limit_s) < 0)
		return ctl_usage(c, "--timeout: seconds, 1..86400");
	if (action_path(c, a, "/run", &path) != CTL_OK)
		return CTL_EUSAGE;
	int rc = ctl_api(c, "POST", path, NULL, NULL, &ans, NULL);
	free(path);
	if (rc != CTL_OK)
		return rc;
	if (!ctl_has(a, O_WAIT)) {
		if (c->json)
			ctl_print_json(ans);
		else if (!c->quiet)
			printf("run of %s started (follow it with: clubctl occasions get %s)\n",
			       a->pos[0], a->pos[0]);
		json_decref(ans);
		return CTL_OK;
	}
	json_decref(ans);
	char *gpath = ctl_path(c, "/v1/occasions/", a->pos[0], NULL);
	int64_t end = mono_ms() + limit_s * 1000;
	json_t *run = NULL;
	for (;;) {
		rc = ctl_api(c, "GET", gpath, NULL, NULL, &ans, NULL);
		if (rc != CTL_OK)
			break;
		const json_t *r = json_object_get(ans, "run");
		const char *st = ctl_jstr(r, "state");
		if (st && strcmp(st, "running") != 0) {
			run = json_incref((json_t *)r);
			json_decref(ans);
			break;
		}
		json_decref(ans);
		if (mono_ms() > end) {
			rc = ctl_fail(CTL_EAPI, "the run did not end within %lld s",
			              (long long)limit_s);
			break;
		}
		sleep_ms(WAIT_STEP_MS);
	}
	free(gpath);
	if (run) {
		int failed = strcmp(ctl_jstr(run, "state"), "done") != 0;
		if (c->json) {
			ctl_print_json(run);
		} else if (c->quiet) {
			printf("%lld\n",
			       (long long)json_integer_value(json_object_get(run, "created")));
		} else {
			print_run("run", run);
		}
		if (failed)
			rc = ctl_fail(CTL_EAPI, "the run failed: %s",
			              ctl_jstr(run, "error") ? ctl_jstr(run, "error") : "?");
		json_decref(run);
	}
	return rc;
}

static const struct ctl_cmd occasion_cmds[] = {
    {"list", NULL, 0, 0, "list occasion rules with their last pass", NULL, NULL, run_list},
    {"get", "ID", 1, 1, "show a rule, its last operator run and its last pass", NULL, NULL,
     run_get},
    {"create", "FILE", 1, 1, "create a rule from a JSON file (- reads stdin)",
     "The file holds one rule, e.g.\n"
     "  {\"id\":\"nowruz\",\"name\":\"نوروز\",\"kind\":\"fixed_jalali\",\"date\":\"01-01\",\n"
     "   \"template\":\"nowruz\",\"channel\":\"preferred\",\"window\":\"09:00-12:00\"}\n"
     "See docs/occasions.md for every field.",
     NULL, run_create},
    {"put", "ID FILE", 2, 2, "replace a rule with the one in a JSON file", NULL, NULL, run_put},
    {"rm", "ID", 1, 1, "delete a rule (what it sent stays sent)", NULL, NULL, run_rm},
    {"preview", "ID", 1, 1, "who the rule reaches on a day (count and a sample)",
     "Without --date each contact is judged on its own local today, as the periodic\n"
     "pass does now; with --date every contact is judged on that day.",
     date_opts, run_preview},
    {"run", "ID", 1, 1, "evaluate a rule now (admin token)",
     "Without --date: each contact's local today, with the rule's window.  With\n"
     "--date: that day for everyone, messages due now (consent and quiet hours still\n"
     "apply at dispatch).  A (rule, contact, year) already sent is never sent again.",
     run_opts, run_run},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL},
};

const struct ctl_group ctl_group_occasions = {
    "occasions", "birthday, anniversary and calendar-date messages", occasion_cmds};
