/*
 * res.c - the parts of the resource commands (cmd_templates.c,
 * cmd_raffles.c, cmd_segments.c, cmd_surveys.c, cmd_occasions.c,
 * cmd_campaigns.c, cmd_desk.c) that were the same in each: JSON definition
 * files, paged listings, get / delete and the created line's --json/-q
 * forms.
 *
 * Owns only what it allocates per call (paths, answers, the collected
 * --json items).  Never knows a resource's fields: the callers print their
 * own rows and human forms.  Limits: a listing holds one page in memory
 * (plus every item with --json, as the answer is one document); files are
 * capped by the caller's max.
 */
#include "res.h"

#include <stdio.h>
#include <stdlib.h>

#include "out.h"
#include "util.h"

int res_read_object(struct ctl *c, const char *path, size_t max, const char *what, json_t **out)
{
	char *text;
	size_t len;
	json_error_t err;
	int rc = ctl_read_file(path, max, &text, &len);
	*out = NULL;
	if (rc != CTL_OK)
		return rc;
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
	free(text);
	if (!what && !json_is_object(o)) {
		json_decref(o);
		return ctl_usage(c, "%s: a JSON object expected (%s at line %d)", path,
		                 err.text[0] ? err.text : "not an object", err.line);
	}
	if (!o)
		return ctl_usage(c, "%s: invalid JSON at line %d, column %d: %s", path, err.line,
		                 err.column, err.text);
	if (!json_is_object(o)) {
		json_decref(o);
		return ctl_usage(c, "%s: %s is a JSON object", path, what);
	}
	*out = o;
	return CTL_OK;
}

int res_send_file(struct ctl *c, const char *method, const char *path, const char *file, size_t max,
                  const char *what, json_t **ans)
{
	json_t *def;
	*ans = NULL;
	int rc = res_read_object(c, file, max, what, &def);
	if (rc != CTL_OK)
		return rc;
	rc = ctl_api(c, method, path, def, NULL, ans, NULL);
	json_decref(def);
	return rc;
}

int res_echo(struct ctl *c, const json_t *ans)
{
	if (c->json) {
		ctl_print_json(ans);
		return 0;
	}
	if (c->quiet) {
		printf("%s\n", ctl_jstr(ans, "id") ? ctl_jstr(ans, "id") : "");
		return 0;
	}
	return 1;
}

int res_get(struct ctl *c, const char *path, void (*human)(struct ctl *c, const json_t *ans))
{
	json_t *ans;
	int rc = ctl_api(c, "GET", path, NULL, NULL, &ans, NULL);
	if (rc == CTL_OK) {
		if (c->json)
			ctl_print_json(ans);
		else
			human(c, ans);
	}
	json_decref(ans);
	return rc;
}

int res_delete(struct ctl *c, const char *path, const char *id, const char *noun)
{
	json_t *ans;
	int rc = ctl_api(c, "DELETE", path, NULL, NULL, &ans, NULL);
	json_decref(ans);
	if (rc != CTL_OK)
		return rc;
	if (c->json) {
		json_t *j = json_pack("{s:s, s:b}", "id", id, "deleted", 1);
		ctl_print_json(j);
		json_decref(j);
	} else if (!c->quiet) {
		char *cid = out_clean(id);
		printf("deleted %s %s\n", noun, cid);
		free(cid);
	}
	return CTL_OK;
}

/* ---------------------------------------------------------------- listings */

int res_page_args(struct ctl *c, const struct ctl_args *a, int o_limit, int o_all, int o_cursor,
                  struct res_page *p)
{
	const char *v;
	p->all = ctl_has(a, o_all);
	if ((v = ctl_arg(a, o_limit)) && parse_i64(v, 1, INT64_MAX, &p->limit) < 0)
		return ctl_usage(c, "--limit: a positive number expected");
	if (p->all && ctl_has(a, o_limit))
		return ctl_usage(c, "--all and --limit exclude each other");
	if (o_cursor && (v = ctl_arg(a, o_cursor))) {
		free(p->cursor);
		p->cursor = xstrdup(v);
	}
	return CTL_OK;
}

static char *page_path(struct ctl *c, const struct res_page *p, int64_t want)
{
	const char *q = p->query ? p->query : "";
	if (!p->cursor)
		return xasprintf("%s?limit=%lld%s", p->path, (long long)want, q);
	char *e = ctl_escape(c, p->cursor);
	char *path = xasprintf("%s?limit=%lld&cursor=%s%s", p->path, (long long)want, e, q);
	free(e);
	return path;
}

int res_page_run(struct ctl *c, struct res_page *p)
{
	const char *qkey = p->quiet_key ? p->quiet_key : "id";
	int64_t limit = p->limit > 0 ? p->limit : 50;
	json_t *collected = json_array();
	int rc = CTL_OK;
	p->shown = 0;
	while (rc == CTL_OK) {
		int64_t want = p->all ? p->page_max : limit - p->shown;
		if (want > p->page_max)
			want = p->page_max;
		char *path = page_path(c, p, want);
		json_t *ans;
		rc = ctl_api(c, "GET", path, NULL, NULL, &ans, NULL);
		free(path);
		if (rc != CTL_OK)
			break;
		json_t *items = json_object_get(ans, "items"), *it;
		size_t i;
		json_array_foreach(items, i, it)
		{
			p->shown++;
			if (c->json) {
				json_array_append(collected, it);
			} else if (c->quiet) {
				const char *id =
				    json_is_string(it) ? json_string_value(it) : ctl_jstr(it, qkey);
				printf("%s\n", id ? id : "");
			} else if ((rc = p->row(c, p->t, it, p->arg)) != CTL_OK) {
				break;
			}
		}
		if (!c->json && !c->quiet && p->t && out_table_rows(p->t) > 0)
			out_table_flush(p->t, stdout);
		const char *next = ctl_jstr(ans, "next_cursor");
		size_t got = json_array_size(items);
		free(p->cursor);
		p->cursor = next && *next ? xstrdup(next) : NULL;
		json_decref(ans);
		if (rc != CTL_OK || !p->cursor || (!p->all && p->shown >= limit) || got == 0)
			break;
	}
	if (rc == CTL_OK && c->json) {
		json_t *doc =
		    json_pack("{s:O, s:s?}", "items", collected, "next_cursor", p->cursor);
		ctl_print_json(doc);
		json_decref(doc);
	}
	json_decref(collected);
	return rc;
}

void res_page_free(struct res_page *p)
{
	free(p->cursor);
	p->cursor = NULL;
	if (p->t)
		out_table_free(p->t);
	p->t = NULL;
}

char *res_llstr(const json_t *v)
{
	return json_is_integer(v) ? xasprintf("%lld", (long long)json_integer_value(v)) : NULL;
}
