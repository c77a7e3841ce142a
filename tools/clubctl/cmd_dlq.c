/*
 * cmd_dlq.c - `clubctl dlq ...`: list, retry and drop the dead letters
 * (messages that failed for good or expired) over /v1/dlq.  Lists follow
 * next_cursor like `contacts list`; retry and drop take several entries,
 * call the API once per entry, report each one and sum up.
 *
 * Owns the JSON documents it assembles (the --json listing and the
 * per-entry results).  Never checks an entry id beyond "not empty": the
 * server is the judge and answers 404 for anything that is not a dead
 * letter.  Never retries a call by itself; on a transport error it stops
 * and does not try the remaining entries.  Limits: listings hold one page
 * (<= 500 entries) at a time; retry/drop results are held until the end
 * (one small object per entry given on the command line).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clubctl.h"
#include "http.h"
#include "out.h"
#include "util.h"

#define PAGE_MAX 500

enum {
	O_LIMIT = 256,
	O_ALL,
	O_CURSOR,
};

static const struct ctl_opt list_opts[] = {
    {"limit", O_LIMIT, "N", "show at most N dead letters (default 50)", 0, NULL},
    {"all", O_ALL, NULL, "show every dead letter, following the cursor", 0, NULL},
    {"cursor", O_CURSOR, "CURSOR", "start after this entry", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

/* ---------------------------------------------------------------- list */

/* Print one JSON value indented by `indent` spaces after the first line. */
static void print_indented(const json_t *j, int indent)
{
	char *s = json_dumps(j, JSON_INDENT(2));
	for (char *p = s; p && *p; p++) {
		fputc(*p, stdout);
		if (*p == '\n')
			fprintf(stdout, "%*s", indent, "");
	}
	free(s);
}

static char *page_path(struct ctl *c, int64_t want, const char *cursor)
{
	if (!cursor)
		return xasprintf("/v1/dlq?limit=%lld", (long long)want);
	char *e = ctl_escape(c, cursor);
	char *p = xasprintf("/v1/dlq?limit=%lld&cursor=%s", (long long)want, e);
	free(e);
	return p;
}

static int run_list(struct ctl *c, const struct ctl_args *a)
{
	static const char *const head[] = {"ENTRY", "MESSAGE", "REASON", "WHEN"};
	int64_t limit = 50, shown = 0;
	int all = ctl_has(a, O_ALL), pages = 0;
	const char *v;
	char *cursor = NULL;
	struct out_table *t = NULL;
	int rc = CTL_OK;

	if ((v = ctl_arg(a, O_LIMIT)) && parse_i64(v, 1, INT64_MAX, &limit) < 0)
		return ctl_usage(c, "--limit: a positive number expected");
	if (all && ctl_has(a, O_LIMIT))
		return ctl_usage(c, "--all and --limit exclude each other");
	if ((v = ctl_arg(a, O_CURSOR)))
		cursor = xstrdup(v);
	if (!c->json && !c->quiet) {
		t = out_table_new(head, 4);
		out_table_max(t, 1, 26);
		out_table_max(t, 2, 60);
	}
	for (;;) {
		int64_t want = all ? PAGE_MAX : limit - shown;
		if (want > PAGE_MAX)
			want = PAGE_MAX;
		char *path = page_path(c, want, cursor);
		json_t *ans;
		/* After the first page the JSON document is open on stdout: an
		 * error then goes to stderr only and the document is closed with
		 * the cursor to continue from. */
		int json = c->json;
		if (pages > 0)
			c->json = 0;
		rc = ctl_api(c, "GET", path, NULL, NULL, &ans, NULL);
		c->json = json;
		free(path);
		if (rc != CTL_OK)
			break;
		if (pages++ == 0 && c->json)
			fputs("{\n  \"items\": [", stdout);
		json_t *items = json_object_get(ans, "items"), *it;
		size_t i;
		json_array_foreach(items, i, it)
		{
			if (c->json) {
				fputs(shown ? ",\n    " : "\n    ", stdout);
				print_indented(it, 4);
			} else if (c->quiet) {
				printf("%s\n", ctl_jstr(it, "entry") ? ctl_jstr(it, "entry") : "");
			} else {
				char *when = out_time(ctl_jstr(it, "at"));
				const char *row[] = {ctl_jstr(it, "entry"),
				                     ctl_jstr(it, "message_id"),
				                     ctl_jstr(it, "reason"), when};
				out_table_add(t, row);
				free(when);
			}
			shown++;
		}
		if (t && shown > 0) /* no header for an empty listing */
			out_table_flush(t, stdout);
		const char *next = ctl_jstr(ans, "next_cursor");
		size_t got = json_array_size(items);
		free(cursor);
		cursor = next && *next ? xstrdup(next) : NULL;
		json_decref(ans);
		if (!cursor || (!all && shown >= limit) || got == 0)
			break;
	}
	if (c->json && pages > 0) {
		fputs(shown ? "\n  ],\n  \"next_cursor\": " : "],\n  \"next_cursor\": ", stdout);
		if (cursor) {
			json_t *s = json_string(cursor);
			json_dumpf(s, stdout, JSON_ENCODE_ANY);
			json_decref(s);
		} else {
			fputs("null", stdout);
		}
		fputs("\n}\n", stdout);
	}
	if (rc == CTL_OK && !c->json) {
		if (t && shown == 0)
			ctl_info(c, "no dead letters");
		else if (cursor)
			ctl_info(c, "%lld shown; more with: clubctl dlq list --cursor %s",
			         (long long)shown, cursor);
	}
	out_table_free(t);
	free(cursor);
	return rc;
}

/* ---------------------------------------------------------------- retry, drop */

enum act { ACT_RETRY, ACT_DROP };

/*
 * The API's error answer for one entry: "clubctl: ENTRY: MESSAGE (code,
 * HTTP n)" on stderr, and the result object for --json.  Returns a new
 * reference.
 */
static json_t *entry_error(struct ctl *c, const char *entry, const struct http_resp *rs)
{
	json_t *j = rs->body.len ? json_loadb(rs->body.p, rs->body.len, 0, NULL) : NULL;
	json_t *e = json_object_get(j, "error");
	const char *msg = ctl_jstr(e, "message"), *code = ctl_jstr(e, "code");
	const char *field = ctl_jstr(e, "field");
	char *en = out_clean(entry);
	json_t *res = json_pack("{s:s, s:I}", "entry", entry, "status", (json_int_t)rs->status);

	if (msg) {
		char *m = out_clean(msg);
		char *f = field ? out_clean(field) : NULL;
		fprintf(stderr, "clubctl: %s: %s%s%s (%s, HTTP %ld)\n", en, f ? f : "",
		        f ? ": " : "", m, code ? code : "error", rs->status);
		free(m);
		free(f);
		json_object_set(res, "error", e);
	} else {
		/* not our JSON error (a proxy, libmicrohttpd's own answers) */
		size_t n = rs->body.len > 200 ? 200 : rs->body.len;
		char *raw = xstrndup(rs->body.p ? rs->body.p : "", n);
		char *m = out_clean(raw);
		fprintf(stderr, "clubctl: %s: HTTP %ld from %s%s%s\n", en, rs->status, c->url,
		        *m ? ": " : "", m);
		json_object_set_new(res, "error", json_pack("{s:s}", "message", m));
		free(raw);
		free(m);
	}
	free(en);
	json_decref(j);
	return res;
}

/*
 * One entry.  CTL_OK with *res set, CTL_EAPI with *res set (reported on
 * stderr), or CTL_ECONN with *res NULL (no answer; reported).
 */
static int act_one(struct ctl *c, enum act act, const char *entry, json_t **res)
{
	char *path = ctl_path(c, "/v1/dlq/", entry, act == ACT_RETRY ? "/retry" : NULL);
	struct http_req rq = {.method = act == ACT_RETRY ? "POST" : "DELETE", .path = path};
	struct http_resp rs;
	int rc = CTL_OK;

	*res = NULL;
	if (http_do(ctl_http(c), &rq, &rs) < 0) {
		rc = ctl_conn_error(c, rs.err);
		goto out;
	}
	if (rs.status < 200 || rs.status > 299) {
		*res = entry_error(c, entry, &rs);
		rc = CTL_EAPI;
		goto out;
	}
	char *en = out_clean(entry);
	if (act == ACT_DROP) {
		*res = json_pack("{s:s, s:b}", "entry", entry, "dropped", 1);
		if (!c->json && !c->quiet)
			printf("dropped %s\n", en);
	} else {
		json_t *ans = rs.body.len ? json_loadb(rs.body.p, rs.body.len, 0, NULL) : NULL;
		const char *mid = ctl_jstr(ans, "message_id"), *st = ctl_jstr(ans, "state");
		if (!mid) {
			fprintf(stderr,
			        "clubctl: %s: the server answered HTTP %ld without a message id\n",
			        en, rs.status);
			*res = json_pack("{s:s, s:I, s:{s:s}}", "entry", entry, "status",
			                 (json_int_t)rs.status, "error", "message",
			                 "answer without a message id");
			rc = CTL_EAPI;
		} else {
			/* the API's answer, with the entry first */
			*res = json_pack("{s:s}", "entry", entry);
			json_object_update(*res, ans);
			if (!c->json && !c->quiet) {
				char *m = out_clean(mid), *s = out_clean(st ? st : "scheduled");
				printf("retried %s: message %s %s\n", en, m, s);
				free(m);
				free(s);
			}
		}
		json_decref(ans);
	}
	free(en);
out:
	http_resp_free(&rs);
	free(path);
	return rc;
}

static int run_each(struct ctl *c, const struct ctl_args *a, enum act act)
{
	json_t *results = json_array();
	int failed = 0, done = 0, rc = CTL_OK, hint = 0;

	for (int i = 0; i < a->npos; i++)
		if (!a->pos[i][0]) {
			json_decref(results);
			return ctl_usage(c, "an empty ENTRY");
		}
	for (int i = 0; i < a->npos; i++) {
		json_t *res;
		int r = act_one(c, act, a->pos[i], &res);
		if (r == CTL_ECONN) {
			rc = CTL_ECONN;
			if (a->npos - i > 1)
				ctl_fail(rc, "stopped: %d of %d entries not tried", a->npos - i - 1,
				         a->npos);
			break;
		}
		done++;
		if (r != CTL_OK) {
			failed++;
			if (!hint && !c->token &&
			    json_integer_value(json_object_get(res, "status")) == 401) {
				hint = 1;
				fputs("clubctl: no token configured: use --token-file, CLUBD_TOKEN "
				      "or "
				      "token_file in ~/.config/clubctl/config\n",
				      stderr);
			}
		}
		json_array_append_new(results, res);
	}
	if (c->json && done > 0) {
		json_t *doc = json_pack("{s:O, s:i}", "results", results, "failed", failed);
		ctl_print_json(doc);
		json_decref(doc);
	}
	if (failed > 0 && rc == CTL_OK) {
		rc = CTL_EAPI;
		if (a->npos > 1)
			ctl_fail(rc, "%d of %d entries not %s", failed, a->npos,
			         act == ACT_RETRY ? "retried" : "dropped");
	}
	json_decref(results);
	return rc;
}

static int run_retry(struct ctl *c, const struct ctl_args *a)
{
	return run_each(c, a, ACT_RETRY);
}

static int run_drop(struct ctl *c, const struct ctl_args *a)
{
	return run_each(c, a, ACT_DROP);
}

static const struct ctl_cmd dlq_cmds[] = {
    {"list", NULL, 0, 0, "list dead letters, oldest first",
     "Shows the first 50 dead letters (messages that failed for good or expired),\n"
     "or --limit N, or --all (pages of 500 are fetched one after the other; --json\n"
     "prints them as one {\"items\":[...],\"next_cursor\":...} document).  -q prints\n"
     "only the entries, one per line.",
     list_opts, run_list},
    {"retry", "ENTRY...", 1, INT_MAX, "send dead letters again (admin token)",
     "Each message gets a fresh schedule (due now, attempts 0, a new expiry) and\n"
     "its entry leaves the dead letters.  Every ENTRY is tried and reported; exits 1\n"
     "when any was refused (unknown entry, message no longer failed or expired).",
     NULL, run_retry},
    {"drop", "ENTRY...", 1, INT_MAX, "remove dead letters (admin token)",
     "The message records stay.  Every ENTRY is tried and reported; exits 1 when\n"
     "any was refused.",
     NULL, run_drop},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL},
};

const struct ctl_group ctl_group_dlq = {"dlq", "dead letters: failed and expired messages",
                                        dlq_cmds};
