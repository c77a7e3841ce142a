/*
 * cmd_segments.c - `clubctl segments ...`: list, get, create, edit, rm and
 * preview saved audiences over /v1/segments.  Definitions come from a JSON
 * file (or stdin) or from --match; a preview prints how many contacts match
 * and a table of the first ones.  Exporting a segment's contacts is
 * `clubctl contacts export --segment ID` (cmd_contacts_io.c).
 *
 * Owns the JSON it builds.  Never checks a definition itself: the server
 * is the judge and its error names the field ("match.all[1].value").
 * Limits: definition files up to 1 MiB; listings hold one page (<= 200
 * segments) at a time; previews show at most 100 contacts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clubctl.h"
#include "out.h"
#include "res.h"
#include "util.h"

#define FILE_MAX (1u << 20)
#define PAGE_MAX 200

enum {
	O_LIMIT = 256,
	O_ALL,
	O_ID,
	O_NAME,
	O_DESC,
	O_MATCH,
	O_SAMPLE,
	O_FILE = 'f',
};

static const struct ctl_opt list_opts[] = {
    {"limit", O_LIMIT, "N", "show at most N segments (default 50)", 0, NULL},
    {"all", O_ALL, NULL, "show every segment, following the cursor", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

/* clang-format off */
#define DEF_OPTS \
	{"file", O_FILE, "FILE", "the definition, a JSON object (- for stdin)", CTL_OPT_FILE, NULL}, \
	{"match", O_MATCH, "JSON", "the condition (instead of, or over, the file's match)", 0, NULL}, \
	{"name", O_NAME, "NAME", "display name", 0, NULL}, \
	{"description", O_DESC, "TEXT", "what the segment is for", 0, NULL}
/* clang-format on */

static const struct ctl_opt create_opts[] = {
    DEF_OPTS,
    {"id", O_ID, "ID", "the segment's id (A-Z a-z 0-9 _ -; default: generated)", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt edit_opts[] = {
    DEF_OPTS,
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt preview_opts[] = {
    {"file", O_FILE, "FILE", "preview this definition instead of a saved one", CTL_OPT_FILE, NULL},
    {"match", O_MATCH, "JSON", "preview this condition instead of a saved one", 0, NULL},
    {"sample", O_SAMPLE, "N", "show the first N matching contacts (0..100, default 20)", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

/* ---------------------------------------------------------------- bodies */

/* The request body from -f, --match, --name, --description (and --id).
 * need_match: fail when there is no condition at all. */
static int def_body(struct ctl *c, const struct ctl_args *a, int need_match, json_t **out)
{
	json_t *o = NULL;
	const char *v;
	*out = NULL;
	if ((v = ctl_arg(a, O_FILE))) {
		int rc = res_read_object(c, v, FILE_MAX, NULL, &o);
		if (rc != CTL_OK)
			return rc;
		/* a bare condition is the match */
		if (!json_object_get(o, "match") && !json_object_get(o, "name") &&
		    !json_object_get(o, "id")) {
			json_t *w = json_pack("{s:o}", "match", o);
			o = w;
		}
	} else {
		o = json_object();
	}
	if ((v = ctl_arg(a, O_MATCH))) {
		json_error_t err;
		json_t *m = json_loads(v, JSON_REJECT_DUPLICATES, &err);
		if (!json_is_object(m)) {
			json_decref(m);
			json_decref(o);
			return ctl_usage(c, "--match: a JSON object expected (%s)",
			                 err.text[0] ? err.text : "not an object");
		}
		json_object_set_new(o, "match", m);
	}
	if ((v = ctl_arg(a, O_NAME)))
		json_object_set_new(o, "name", json_string(v));
	if ((v = ctl_arg(a, O_DESC)))
		json_object_set_new(o, "description", json_string(v));
	if ((v = ctl_arg(a, O_ID)))
		json_object_set_new(o, "id", json_string(v));
	if (need_match && !json_object_get(o, "match")) {
		json_decref(o);
		return ctl_usage(c, "give the condition with -f FILE or --match JSON");
	}
	*out = o;
	return CTL_OK;
}

/* ---------------------------------------------------------------- output */

static void print_segment(struct ctl *c, const json_t *s)
{
	const int w = 12;
	if (c->quiet) {
		printf("%s\n", ctl_jstr(s, "id") ? ctl_jstr(s, "id") : "");
		return;
	}
	out_kv(stdout, w, "id", ctl_jstr(s, "id"));
	out_kv(stdout, w, "name", ctl_jstr(s, "name"));
	out_kv(stdout, w, "description", ctl_jstr(s, "description"));
	const json_t *v = json_object_get(s, "v");
	char *vs = json_is_integer(v) ? xasprintf("%lld", (long long)json_integer_value(v)) : NULL;
	out_kv(stdout, w, "version", vs);
	free(vs);
	char *t = out_time(ctl_jstr(s, "updated_at"));
	out_kv(stdout, w, "updated", t);
	free(t);
	char *m = json_dumps(json_object_get(s, "match"), JSON_INDENT(2));
	printf("%-*s", w, "match");
	for (char *p = m; p && *p; p++) {
		fputc(*p, stdout);
		if (*p == '\n')
			printf("%*s", w, "");
	}
	fputc('\n', stdout);
	free(m);
}

static int show(struct ctl *c, json_t *ans)
{
	if (c->json)
		ctl_print_json(ans);
	else
		print_segment(c, ans);
	return CTL_OK;
}

/* ---------------------------------------------------------------- commands */

static int list_row(struct ctl *c, struct out_table *t, const json_t *it, void *arg)
{
	(void)c;
	(void)arg;
	const json_t *vv = json_object_get(it, "v");
	char *vs = xasprintf("%lld", (long long)json_integer_value(vv));
	char *up = out_time(ctl_jstr(it, "updated_at"));
	const char *row[] = {ctl_jstr(it, "id"), ctl_jstr(it, "name"), vs, up};
	out_table_add(t, row);
	free(vs);
	free(up);
	return CTL_OK;
}

static int run_list(struct ctl *c, const struct ctl_args *a)
{
	static const char *const head[] = {"ID", "NAME", "V", "UPDATED"};
	struct res_page p = {
	    .path = "/v1/segments", .limit = 50, .page_max = PAGE_MAX, .row = list_row};
	const char *v;
	int rc;

	/* --all wins over --limit here (no exclusion check) */
	p.all = ctl_has(a, O_ALL);
	if ((v = ctl_arg(a, O_LIMIT)) && parse_i64(v, 1, INT64_MAX, &p.limit) < 0)
		return ctl_usage(c, "--limit: a positive number expected");
	if (!c->json && !c->quiet) {
		p.t = out_table_new(head, 4);
		out_table_align(p.t, 2, OUT_RIGHT);
		out_table_max(p.t, 1, 40);
	}
	rc = res_page_run(c, &p);
	if (rc == CTL_OK && !c->json && p.t && p.shown == 0)
		ctl_info(c, "no segments");
	res_page_free(&p);
	return rc;
}

static int run_get(struct ctl *c, const struct ctl_args *a)
{
	char *path = ctl_path(c, "/v1/segments/", a->pos[0], NULL);
	int rc = res_get(c, path, print_segment);
	free(path);
	return rc;
}

static int run_create(struct ctl *c, const struct ctl_args *a)
{
	json_t *body, *ans;
	int rc = def_body(c, a, 1, &body);
	if (rc != CTL_OK)
		return rc;
	rc = ctl_api(c, "POST", "/v1/segments", body, NULL, &ans, NULL);
	json_decref(body);
	if (rc == CTL_OK)
		rc = show(c, ans);
	json_decref(ans);
	return rc;
}

static int run_edit(struct ctl *c, const struct ctl_args *a)
{
	json_t *body, *ans, *cur = NULL;
	int rc = def_body(c, a, 0, &body);
	if (rc != CTL_OK)
		return rc;
	char *path = ctl_path(c, "/v1/segments/", a->pos[0], NULL);
	if (!json_object_get(body, "match")) {
		/* only the name or description changes: keep the stored rest */
		rc = ctl_api(c, "GET", path, NULL, NULL, &cur, NULL);
		if (rc == CTL_OK) {
			const char *k;
			json_t *v;
			json_object_foreach(cur, k, v)
			{
				if (!json_object_get(body, k) && strcmp(k, "updated_at") != 0)
					json_object_set(body, k, v);
			}
		}
	}
	if (rc == CTL_OK) {
		rc = ctl_api(c, "PUT", path, body, NULL, &ans, NULL);
		if (rc == CTL_OK)
			rc = show(c, ans);
		json_decref(ans);
	}
	json_decref(cur);
	json_decref(body);
	free(path);
	return rc;
}

static int run_rm(struct ctl *c, const struct ctl_args *a)
{
	char *path = ctl_path(c, "/v1/segments/", a->pos[0], NULL);
	int rc = res_delete(c, path, a->pos[0], "segment");
	free(path);
	return rc;
}

static int run_preview(struct ctl *c, const struct ctl_args *a)
{
	static const char *const head[] = {"ID", "NAME", "PHONE", "EMAIL", "CHAT"};
	int64_t sample = 20;
	const char *v;
	json_t *ans = NULL;
	int rc;
	if ((v = ctl_arg(a, O_SAMPLE)) && parse_i64(v, 0, 100, &sample) < 0)
		return ctl_usage(c, "--sample: 0..100");
	int inline_def = ctl_has(a, O_FILE) || ctl_has(a, O_MATCH);
	if (inline_def == (a->npos == 1))
		return ctl_usage(c, "give a saved segment's ID, or -f FILE / --match JSON");
	if (inline_def) {
		json_t *body;
		rc = def_body(c, a, 1, &body);
		if (rc != CTL_OK)
			return rc;
		char *path = xasprintf("/v1/segments/preview?sample=%lld", (long long)sample);
		rc = ctl_api(c, "POST", path, body, NULL, &ans, NULL);
		free(path);
		json_decref(body);
	} else {
		char *q = xasprintf("/preview?sample=%lld", (long long)sample);
		char *path = ctl_path(c, "/v1/segments/", a->pos[0], q);
		rc = ctl_api(c, "GET", path, NULL, NULL, &ans, NULL);
		free(path);
		free(q);
	}
	if (rc != CTL_OK)
		return rc;
	if (c->json) {
		ctl_print_json(ans);
	} else {
		long long count = json_integer_value(json_object_get(ans, "count"));
		long long examined = json_integer_value(json_object_get(ans, "examined"));
		long long ms = json_integer_value(json_object_get(ans, "elapsed_ms"));
		if (c->quiet) {
			printf("%lld\n", count);
		} else {
			char *cs = xasprintf("%lld", count), *es = xasprintf("%lld", examined);
			char *cd = out_digits(cs), *ed = out_digits(es);
			printf("%s of %s contacts match (%lld ms)\n", cd, ed, ms);
			free(cs);
			free(es);
			free(cd);
			free(ed);
			const json_t *smp = json_object_get(ans, "sample"), *it;
			size_t i;
			if (json_array_size(smp) > 0) {
				struct out_table *t = out_table_new(head, 5);
				out_table_max(t, 1, 30);
				out_table_max(t, 3, 32);
				json_array_foreach(smp, i, it)
				{
					const json_t *ad = json_object_get(it, "addresses");
					const char *row[] = {
					    ctl_jstr(it, "id"), ctl_jstr(it, "name"),
					    ctl_jstr(ad, "sms"), ctl_jstr(ad, "email"),
					    ctl_jstr(ad, "chat")};
					out_table_add(t, row);
				}
				fputc('\n', stdout);
				out_table_flush(t, stdout);
				out_table_free(t);
			}
		}
	}
	json_decref(ans);
	return CTL_OK;
}

static const struct ctl_cmd segments_cmds[] = {
    {"list", NULL, 0, 0, "list saved segments", NULL, list_opts, run_list},
    {"get", "ID", 1, 1, "show a segment and its condition", NULL, NULL, run_get},
    {"create", NULL, 0, 0, "save a segment",
     "The definition comes from -f FILE ({\"name\": ..., \"match\": {...}}, or just the\n"
     "condition) and/or --match JSON; --name, --description and --id add to it.\n"
     "The grammar is in docs/segments.md, e.g.\n"
     "  --match '{\"all\":[{\"tags\":{\"any\":[\"vip\"]}},{\"reachable\":\"sms\","
     "\"category\":\"promotional\"}]}'",
     create_opts, run_create},
    {"edit", "ID", 1, 1, "replace a segment's definition",
     "Like create.  With only --name or --description the stored condition is kept.\n"
     "A file holding the \"v\" read with `segments get --json` makes the change fail\n"
     "(409) if someone saved the segment meanwhile.",
     edit_opts, run_edit},
    {"rm", "ID", 1, 1, "delete a segment", NULL, NULL, run_rm},
    {"preview", "[ID]", 0, 1, "count a segment's contacts and show the first ones",
     "Counts the contacts a saved segment (ID) or a definition (-f FILE, --match JSON)\n"
     "selects right now, and lists the first --sample of them in creation order.",
     preview_opts, run_preview},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL},
};

const struct ctl_group ctl_group_segments = {"segments", "saved audiences (segments)",
                                             segments_cmds};
