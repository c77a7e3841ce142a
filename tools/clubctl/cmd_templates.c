/*
 * cmd_templates.c - `clubctl templates ...`: list, get, create, put, rm,
 * validate and preview over /v1/templates.  Definitions come from JSON
 * files (or stdin); a preview prints the rendered text as it will be sent,
 * line by line, and for SMS its segments, encoding and cost.
 *
 * Owns the JSON it builds.  Never checks a definition itself: the server is
 * the judge and its error names the field, line and column.  Limits:
 * definition files up to 1 MiB; listings hold one page (<= 200 templates)
 * at a time.
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
	O_CONTACT,
	O_CHANNEL,
	O_LANG,
	O_VARS,
	O_EVENT,
};

static const struct ctl_opt list_opts[] = {
    {"limit", O_LIMIT, "N", "show at most N templates (default 50)", 0, NULL},
    {"all", O_ALL, NULL, "show every template, following the cursor", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt preview_opts[] = {
    {"contact", O_CONTACT, "ID", "render for this contact (its language, zone, fields)", 0, NULL},
    {"channel", O_CHANNEL, "CHANNEL", "channel kind (default sms)", 0, "sms email chat"},
    {"lang", O_LANG, "LANG", "language instead of the contact's (fa, en, fa-IR)", 0, NULL},
    {"vars", O_VARS, "JSON", "extra variables, a JSON object", 0, NULL},
    {"event", O_EVENT, "JSON", "the event, a JSON object ({\"amount\": 1250000})", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

/* ---------------------------------------------------------------- helpers */

static int json_opt(struct ctl *c, const char *val, const char *optname, json_t **out)
{
	json_error_t err;
	*out = NULL;
	if (!val)
		return CTL_OK;
	*out = json_loads(val, JSON_REJECT_DUPLICATES, &err);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return ctl_usage(c, "--%s: a JSON object expected", optname);
	}
	return CTL_OK;
}

/* Print a multi-line text as it will be sent, each line made safe for a
 * terminal (controls and invalid UTF-8 replaced), indented by two. */
static void print_block(const char *s)
{
	while (s) {
		const char *nl = strchr(s, '\n');
		char *line = xstrndup(s, nl ? (size_t)(nl - s) : strlen(s));
		size_t n = strlen(line);
		if (n > 0 && line[n - 1] == '\r')
			line[n - 1] = '\0';
		char *clean = out_clean(line);
		printf("  %s\n", clean);
		free(clean);
		free(line);
		s = nl ? nl + 1 : NULL;
	}
}

static void print_template(struct ctl *c, const json_t *t)
{
	const int w = 14;
	if (c->quiet) {
		printf("%s\n", ctl_jstr(t, "id") ? ctl_jstr(t, "id") : "");
		return;
	}
	out_kv(stdout, w, "id", ctl_jstr(t, "id"));
	out_kv(stdout, w, "name", ctl_jstr(t, "name"));
	out_kv(stdout, w, "default lang", ctl_jstr(t, "default_lang"));
	char *v = res_llstr(json_object_get(t, "v"));
	out_kv(stdout, w, "version", v);
	free(v);
	char *at = out_time(ctl_jstr(t, "updated_at"));
	out_kv(stdout, w, "updated", at);
	free(at);
	const json_t *vars = json_object_get(t, "variants");
	if (json_array_size(vars) == 0)
		return;
	static const char *const head[] = {"CHANNEL", "LANG", "SUBJECT", "TEXT"};
	struct out_table *tab = out_table_new(head, 4);
	out_table_max(tab, 2, 30);
	out_table_max(tab, 3, 50);
	size_t i;
	json_t *x;
	json_array_foreach(vars, i, x)
	{
		const char *row[] = {ctl_jstr(x, "channel"), ctl_jstr(x, "lang"),
		                     ctl_jstr(x, "subject"), ctl_jstr(x, "text")};
		out_table_add(tab, row);
	}
	fputc('\n', stdout);
	out_table_flush(tab, stdout);
	out_table_free(tab);
}

/* ---------------------------------------------------------------- commands */

static int list_row(struct ctl *c, struct out_table *t, const json_t *it, void *arg)
{
	(void)c;
	(void)arg;
	struct buf vs;
	buf_init(&vs, 0);
	buf_append(&vs, "", 0);
	size_t k;
	json_t *x;
	json_array_foreach(json_object_get(it, "variants"), k, x)
	{
		buf_printf(&vs, "%s%s:%s", k ? " " : "",
		           ctl_jstr(x, "channel") ? ctl_jstr(x, "channel") : "?",
		           ctl_jstr(x, "lang") ? ctl_jstr(x, "lang") : "?");
	}
	char *ver = res_llstr(json_object_get(it, "v"));
	char *at = out_time(ctl_jstr(it, "updated_at"));
	const char *row[] = {ctl_jstr(it, "id"), ctl_jstr(it, "name"), ver, vs.p, at};
	out_table_add(t, row);
	free(ver);
	free(at);
	buf_free(&vs);
	return CTL_OK;
}

static int run_list(struct ctl *c, const struct ctl_args *a)
{
	static const char *const head[] = {"ID", "NAME", "V", "VARIANTS", "UPDATED"};
	struct res_page p = {
	    .path = "/v1/templates", .limit = 50, .page_max = PAGE_MAX, .row = list_row};
	int rc = res_page_args(c, a, O_LIMIT, O_ALL, 0, &p);
	if (rc == CTL_OK && !c->json && !c->quiet) {
		p.t = out_table_new(head, 5);
		out_table_align(p.t, 2, OUT_RIGHT);
		out_table_max(p.t, 1, 30);
		out_table_max(p.t, 3, 40);
	}
	if (rc == CTL_OK)
		rc = res_page_run(c, &p);
	res_page_free(&p);
	return rc;
}

static int run_get(struct ctl *c, const struct ctl_args *a)
{
	char *path = ctl_path(c, "/v1/templates/", a->pos[0], NULL);
	int rc = res_get(c, path, print_template);
	free(path);
	return rc;
}

static int write_def(struct ctl *c, const char *method, const char *id, const char *file)
{
	json_t *ans;
	char *path = id ? ctl_path(c, "/v1/templates/", id, NULL) : xstrdup("/v1/templates");
	int rc = res_send_file(c, method, path, file, FILE_MAX, "a template definition", &ans);
	free(path);
	if (rc != CTL_OK)
		return rc;
	if (res_echo(c, ans)) {
		char *tid = out_clean(ctl_jstr(ans, "id") ? ctl_jstr(ans, "id") : "");
		printf("%s template %s (version %lld)\n", id ? "replaced" : "created", tid,
		       (long long)json_integer_value(json_object_get(ans, "v")));
		free(tid);
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
	char *path = ctl_path(c, "/v1/templates/", a->pos[0], NULL);
	int rc = res_delete(c, path, a->pos[0], "template");
	free(path);
	return rc;
}

static int run_validate(struct ctl *c, const struct ctl_args *a)
{
	json_t *def, *ans;
	int rc = res_read_object(c, a->pos[0], FILE_MAX, "a template definition", &def);
	if (rc != CTL_OK)
		return rc;
	rc = ctl_api(c, "POST", "/v1/templates/validate", def, NULL, &ans, NULL);
	json_decref(def);
	if (rc != CTL_OK)
		return rc;
	int valid = json_is_true(json_object_get(ans, "valid"));
	if (c->json) {
		ctl_print_json(ans);
	} else {
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(ans, "errors"), i, e)
		{
			char *f = out_clean(ctl_jstr(e, "field") ? ctl_jstr(e, "field") : "");
			char *r = out_clean(ctl_jstr(e, "reason") ? ctl_jstr(e, "reason") : "");
			const json_t *line = json_object_get(e, "line");
			if (json_is_integer(line))
				fprintf(stderr, "%s: %s:%lld:%lld: %s\n", a->pos[0], f,
				        (long long)json_integer_value(line),
				        (long long)json_integer_value(json_object_get(e, "col")),
				        r);
			else
				fprintf(stderr, "%s: %s: %s\n", a->pos[0], f, r);
			free(f);
			free(r);
		}
		if (valid && !c->quiet)
			printf("%s: valid\n", a->pos[0]);
	}
	json_decref(ans);
	return valid ? CTL_OK : CTL_EAPI;
}

static void print_sms(const json_t *sms)
{
	const json_t *seg = json_object_get(sms, "segments");
	const json_t *cost = json_object_get(sms, "cost");
	const char *enc = ctl_jstr(sms, "encoding");
	char costs[64];
	if (json_is_number(cost))
		snprintf(costs, sizeof costs, "%.6g", json_number_value(cost));
	else
		snprintf(costs, sizeof costs, "unknown (no price_per_segment)");
	printf("segments %lld (%s), cost %s\n", (long long)json_integer_value(seg), enc ? enc : "?",
	       costs);
	const json_t *chars = json_object_get(sms, "chars");
	const json_t *per = json_object_get(sms, "per_segment");
	printf("%lld characters, %lld per segment%s\n", (long long)json_integer_value(chars),
	       (long long)json_integer_value(per),
	       json_is_true(json_object_get(sms, "too_long"))
	           ? "; too long: more than max_segments, it would be refused"
	           : "");
}

static int run_preview(struct ctl *c, const struct ctl_args *a)
{
	const char *v;
	json_t *body = json_object(), *vars = NULL, *event = NULL, *ans = NULL;
	int rc = json_opt(c, ctl_arg(a, O_VARS), "vars", &vars);
	if (rc == CTL_OK)
		rc = json_opt(c, ctl_arg(a, O_EVENT), "event", &event);
	if (rc != CTL_OK)
		goto out;
	if ((v = ctl_arg(a, O_CONTACT)))
		json_object_set_new(body, "contact_id", json_string(v));
	json_object_set_new(body, "channel",
	                    json_string(ctl_arg(a, O_CHANNEL) ? ctl_arg(a, O_CHANNEL) : "sms"));
	if ((v = ctl_arg(a, O_LANG)))
		json_object_set_new(body, "lang", json_string(v));
	if (vars)
		json_object_set(body, "vars", vars);
	if (event)
		json_object_set(body, "event", event);
	char *path = ctl_path(c, "/v1/templates/", a->pos[0], "/preview");
	rc = ctl_api(c, "POST", path, body, NULL, &ans, NULL);
	free(path);
	if (rc != CTL_OK)
		goto out;
	if (c->json) {
		ctl_print_json(ans);
		goto out;
	}
	const int w = 10;
	if (!c->quiet) {
		char *ver = res_llstr(json_object_get(ans, "v"));
		char *tv = xasprintf("%s (version %s)",
		                     ctl_jstr(ans, "template") ? ctl_jstr(ans, "template") : "",
		                     ver ? ver : "?");
		out_kv(stdout, w, "template", tv);
		free(tv);
		free(ver);
		out_kv(stdout, w, "channel", ctl_jstr(ans, "channel"));
		const char *lang = ctl_jstr(ans, "lang"), *asked = ctl_jstr(ans, "lang_requested");
		char *lv = asked && lang && strcmp(asked, lang) != 0
		               ? xasprintf("%s (asked for %s)", lang, asked)
		               : xstrdup(lang ? lang : "-");
		out_kv(stdout, w, "language", lv);
		free(lv);
		if (ctl_jstr(ans, "subject"))
			out_kv(stdout, w, "subject", ctl_jstr(ans, "subject"));
		printf("\n");
	}
	print_block(ctl_jstr(ans, "text") ? ctl_jstr(ans, "text") : "");
	if (ctl_jstr(ans, "html") && !c->quiet) {
		printf("\nhtml:\n");
		print_block(ctl_jstr(ans, "html"));
	}
	if (json_is_object(json_object_get(ans, "sms"))) {
		printf("\n");
		print_sms(json_object_get(ans, "sms"));
	}
out:
	json_decref(body);
	json_decref(vars);
	json_decref(event);
	json_decref(ans);
	return rc;
}

static const struct ctl_cmd templates_cmds[] = {
    {"list", NULL, 0, 0, "list templates by id", NULL, list_opts, run_list},
    {"get", "ID", 1, 1, "show a template and its variants", NULL, NULL, run_get},
    {"create", "FILE", 1, 1, "create a template from a JSON definition (- for stdin)",
     "FILE holds {\"id\": ..., \"name\": ..., \"default_lang\": \"fa\", \"variants\": [...]}\n"
     "(see docs/templates.md).  Without an id the server picks one.  Exits 1 when\n"
     "a template with that id exists or the definition is refused (the error\n"
     "names the field, line and column).",
     NULL, run_create},
    {"put", "ID FILE", 2, 2, "replace a template's definition",
     "The version grows by one.  With \"v\" in FILE (as `get --json` prints it) the\n"
     "server refuses the write when someone changed the template since.",
     NULL, run_put},
    {"rm", "ID", 1, 1, "delete a template", NULL, NULL, run_rm},
    {"validate", "FILE", 1, 1, "check a definition without saving it",
     "Prints every error as FILE: FIELD:LINE:COL: REASON and exits 1 when there is\n"
     "one.",
     NULL, run_validate},
    {"preview", "ID", 1, 1, "render a template for a contact",
     "Shows the text as it would be sent (the contact's language, with fallback,\n"
     "and time zone) and, for SMS, the segments, encoding and cost.  Without\n"
     "--contact the template is rendered with no contact fields.",
     preview_opts, run_preview},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL},
};

const struct ctl_group ctl_group_templates = {"templates", "message templates and previews",
                                              templates_cmds};
