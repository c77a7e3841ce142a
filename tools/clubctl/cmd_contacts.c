/*
 * cmd_contacts.c - `clubctl contacts ...`: add, get, find, edit, rm and
 * list over /v1/contacts.  Builds request bodies from options (or a JSON
 * file), prints contacts as key/value listings or tables and follows
 * next_cursor for listings.  import and export are cmd_contacts_io.c's.
 *
 * Owns the JSON it builds.  Never validates contact fields itself beyond
 * the syntax of options: the server is the judge and its error names the
 * field.  Limits: -f files up to 1 MiB; listings hold one page (<= 500
 * contacts) at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clubctl.h"
#include "contacts_io.h"
#include "http.h"
#include "out.h"
#include "util.h"

#define FILE_MAX  (1u << 20)
#define PAGE_MAX  500
#define LIST_CAPS 4

enum {
	O_NAME = 256,
	O_FIRST,
	O_LAST,
	O_PHONE,
	O_EMAIL,
	O_CHAT,
	O_TAG,
	O_ATTR,
	O_TZ,
	O_LANG,
	O_PREF,
	O_UNSET_ATTR,
	O_UNSET_ADDR,
	O_UNSET,
	O_LIMIT,
	O_ALL,
	O_CURSOR,
	O_FILE = 'f',
};

/* clang-format off */
#define CONTACT_OPTS \
	{"name", O_NAME, "NAME", "display name", 0, NULL}, \
	{"first-name", O_FIRST, "NAME", "first name", 0, NULL}, \
	{"last-name", O_LAST, "NAME", "last name", 0, NULL}, \
	{"phone", O_PHONE, "PHONE", "SMS address, any common form (stored as E.164)", 0, NULL}, \
	{"email", O_EMAIL, "EMAIL", "email address", 0, NULL}, \
	{"chat", O_CHAT, "ID", "Telegram/Bale chat id or @username", 0, NULL}, \
	{"tag", O_TAG, "TAG", "a tag; the tags given replace the contact's set", CTL_OPT_MULTI, NULL}, \
	{"attr", O_ATTR, "K=V", "attribute (K:=JSON for a number or boolean)", CTL_OPT_MULTI, NULL}, \
	{"tz", O_TZ, "ZONE", "IANA time zone (Asia/Tehran)", 0, NULL}, \
	{"lang", O_LANG, "LANG", "language tag (fa, en)", 0, NULL}, \
	{"pref-json", O_PREF, "JSON", "preferences object, replaces the current one", 0, NULL}, \
	{"file", O_FILE, "FILE", "JSON object to start from (- for stdin)", CTL_OPT_FILE, NULL}
/* clang-format on */

static const struct ctl_opt add_opts[] = {
    CONTACT_OPTS,
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt edit_opts[] = {
    CONTACT_OPTS,
    {"unset-attr", O_UNSET_ATTR, "KEY", "remove an attribute", CTL_OPT_MULTI, NULL},
    {"unset-addr", O_UNSET_ADDR, "CHANNEL", "remove an address", CTL_OPT_MULTI, "sms email chat"},
    {"unset", O_UNSET, "FIELD", "clear a field", CTL_OPT_MULTI,
     "name first_name last_name lang tz tags preferences"},
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt find_opts[] = {
    {"phone", O_PHONE, "PHONE", "look up by SMS address", 0, NULL},
    {"email", O_EMAIL, "EMAIL", "look up by email address", 0, NULL},
    {"chat", O_CHAT, "ID", "look up by chat id", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt timeline_opts[] = {
    {"limit", O_LIMIT, "N", "entries to show, 1..500 (default 50)", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt list_opts[] = {
    {"limit", O_LIMIT, "N", "show at most N contacts (default 50)", 0, NULL},
    {"all", O_ALL, NULL, "show every contact, following the cursor", 0, NULL},
    {"cursor", O_CURSOR, "CURSOR", "start after this contact id", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

/* ---------------------------------------------------------------- bodies */

static json_t *sub_object(json_t *o, const char *key)
{
	json_t *s = json_object_get(o, key);
	if (!json_is_object(s)) {
		s = json_object();
		json_object_set_new(o, key, s);
	}
	return s;
}

/* Build the POST/PATCH body from -f and the options.  CTL_OK or usage. */
static int contact_body(struct ctl *c, const struct ctl_args *a, int edit, json_t **out)
{
	static const struct {
		int key;
		const char *field;
	} plain[] = {{O_NAME, "name"},
	             {O_FIRST, "first_name"},
	             {O_LAST, "last_name"},
	             {O_TZ, "tz"},
	             {O_LANG, "lang"}};
	static const struct {
		int key;
		const char *chan;
	} addrs[] = {{O_PHONE, "sms"}, {O_EMAIL, "email"}, {O_CHAT, "chat"}};
	json_t *o = NULL;
	const char *v;
	size_t it;
	int rc = CTL_OK;

	if ((v = ctl_arg(a, O_FILE))) {
		char *text;
		size_t len;
		json_error_t err;
		rc = ctl_read_file(v, FILE_MAX, &text, &len);
		if (rc != CTL_OK)
			return rc;
		o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
		free(text);
		if (!json_is_object(o)) {
			json_decref(o);
			return ctl_usage(c, "%s: a JSON object expected (%s at line %d)", v,
			                 err.text[0] ? err.text : "not an object", err.line);
		}
	} else {
		o = json_object();
	}
	for (size_t i = 0; i < ARRAY_SIZE(plain); i++)
		if ((v = ctl_arg(a, plain[i].key)))
			json_object_set_new(o, plain[i].field, json_string(v));
	for (size_t i = 0; i < ARRAY_SIZE(addrs); i++)
		if ((v = ctl_arg(a, addrs[i].key)))
			json_object_set_new(sub_object(o, "addresses"), addrs[i].chan,
			                    json_string(v));
	if (ctl_has(a, O_TAG)) {
		json_t *tags = json_array();
		for (it = 0; (v = ctl_arg_next(a, O_TAG, &it));)
			json_array_append_new(tags, json_string(v));
		json_object_set_new(o, "tags", tags);
	}
	for (it = 0; (v = ctl_arg_next(a, O_ATTR, &it));) {
		const char *eq = strchr(v, '=');
		if (!eq || eq == v || (eq == v + 1 && v[0] == ':')) {
			rc = ctl_usage(c, "--attr %s: KEY=VALUE or KEY:=JSON expected", v);
			goto fail;
		}
		int raw = eq[-1] == ':';
		char *key = xstrndup(v, (size_t)(eq - v - raw));
		json_t *val;
		if (raw) {
			val = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
			if (!val) {
				free(key);
				rc = ctl_usage(c, "--attr %s: the value after := is not JSON", v);
				goto fail;
			}
		} else {
			val = json_string(eq + 1);
		}
		json_object_set_new(sub_object(o, "attrs"), key, val);
		free(key);
	}
	if ((v = ctl_arg(a, O_PREF))) {
		json_t *p = json_loads(v, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_object(p) && !json_is_null(p)) {
			json_decref(p);
			rc = ctl_usage(c, "--pref-json: a JSON object (or null) expected");
			goto fail;
		}
		json_object_set_new(o, "preferences", p);
	}
	if (edit) {
		for (it = 0; (v = ctl_arg_next(a, O_UNSET_ATTR, &it));)
			json_object_set_new(sub_object(o, "attrs"), v, json_null());
		for (it = 0; (v = ctl_arg_next(a, O_UNSET_ADDR, &it));)
			json_object_set_new(sub_object(o, "addresses"), v, json_null());
		for (it = 0; (v = ctl_arg_next(a, O_UNSET, &it));)
			json_object_set_new(o, v, json_null());
	}
	if (json_object_size(o) == 0) {
		rc =
		    ctl_usage(c, "nothing to %s: give fields such as --name or --phone, or -f FILE",
		              edit ? "change" : "add");
		goto fail;
	}
	*out = o;
	return CTL_OK;
fail:
	json_decref(o);
	return rc;
}

/* ---------------------------------------------------------------- output */

static char *join_strings(const json_t *arr, const char *sep)
{
	struct buf b;
	size_t i;
	json_t *e;
	buf_init(&b, 0);
	buf_append(&b, "", 0);
	json_array_foreach(arr, i, e)
	{
		if (json_is_string(e))
			buf_printf(&b, "%s%s", b.len ? sep : "", json_string_value(e));
	}
	return buf_steal(&b);
}

static char *attrs_text(const json_t *attrs)
{
	struct buf b;
	const char *k;
	json_t *v;
	buf_init(&b, 0);
	buf_append(&b, "", 0);
	json_object_foreach((json_t *)attrs, k, v)
	{
		char *t = json_is_string(v) ? xstrdup(json_string_value(v))
		                            : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		buf_printf(&b, "%s%s=%s", b.len ? ", " : "", k, t ? t : "?");
		free(t);
	}
	return buf_steal(&b);
}

static void print_contact(struct ctl *c, const json_t *o)
{
	const int w = 13;
	const json_t *ad = json_object_get(o, "addresses");
	char *s;

	if (c->quiet) {
		printf("%s\n", ctl_jstr(o, "id") ? ctl_jstr(o, "id") : "");
		return;
	}
	out_kv(stdout, w, "id", ctl_jstr(o, "id"));
	out_kv(stdout, w, "name", ctl_jstr(o, "name"));
	if (ctl_jstr(o, "first_name") || ctl_jstr(o, "last_name")) {
		out_kv(stdout, w, "first name", ctl_jstr(o, "first_name"));
		out_kv(stdout, w, "last name", ctl_jstr(o, "last_name"));
	}
	out_kv(stdout, w, "phone", ctl_jstr(ad, "sms"));
	out_kv(stdout, w, "email", ctl_jstr(ad, "email"));
	out_kv(stdout, w, "chat", ctl_jstr(ad, "chat"));
	out_kv(stdout, w, "lang", ctl_jstr(o, "lang"));
	out_kv(stdout, w, "time zone", ctl_jstr(o, "tz"));
	s = join_strings(json_object_get(o, "tags"), ", ");
	out_kv(stdout, w, "tags", s);
	free(s);
	s = attrs_text(json_object_get(o, "attrs"));
	out_kv(stdout, w, "attrs", s);
	free(s);
	const json_t *p = json_object_get(o, "preferences");
	s = json_object_size(p) ? json_dumps(p, JSON_COMPACT) : NULL;
	out_kv(stdout, w, "preferences", s);
	free(s);
	if (json_is_true(json_object_get(o, "lead")))
		out_kv(stdout, w, "lead", "yes (created by a send to an unknown address)");
	s = out_time(ctl_jstr(o, "created_at"));
	out_kv(stdout, w, "created", s);
	free(s);
	s = out_time(ctl_jstr(o, "updated_at"));
	out_kv(stdout, w, "updated", s);
	free(s);
}

static int show_answer(struct ctl *c, json_t *j)
{
	if (c->json)
		ctl_print_json(j);
	else
		print_contact(c, j);
	return CTL_OK;
}

/* ---------------------------------------------------------------- commands */

static int run_add(struct ctl *c, const struct ctl_args *a)
{
	json_t *body, *ans;
	int rc = contact_body(c, a, 0, &body);
	if (rc != CTL_OK)
		return rc;
	rc = ctl_api(c, "POST", "/v1/contacts", body, NULL, &ans, NULL);
	json_decref(body);
	if (rc == CTL_OK)
		rc = show_answer(c, ans);
	json_decref(ans);
	return rc;
}

static int run_get(struct ctl *c, const struct ctl_args *a)
{
	json_t *ans;
	char *path = ctl_path(c, "/v1/contacts/", a->pos[0], NULL);
	int rc = ctl_api(c, "GET", path, NULL, NULL, &ans, NULL);
	free(path);
	if (rc == CTL_OK)
		rc = show_answer(c, ans);
	json_decref(ans);
	return rc;
}

static int run_edit(struct ctl *c, const struct ctl_args *a)
{
	json_t *body, *ans;
	int rc = contact_body(c, a, 1, &body);
	if (rc != CTL_OK)
		return rc;
	char *path = ctl_path(c, "/v1/contacts/", a->pos[0], NULL);
	rc = ctl_api(c, "PATCH", path, body, NULL, &ans, NULL);
	free(path);
	json_decref(body);
	if (rc == CTL_OK)
		rc = show_answer(c, ans);
	json_decref(ans);
	return rc;
}

static int run_rm(struct ctl *c, const struct ctl_args *a)
{
	json_t *ans;
	char *path = ctl_path(c, "/v1/contacts/", a->pos[0], NULL);
	int rc = ctl_api(c, "DELETE", path, NULL, NULL, &ans, NULL);
	free(path);
	json_decref(ans);
	if (rc != CTL_OK)
		return rc;
	if (c->json) {
		json_t *j = json_pack("{s:s, s:b}", "id", a->pos[0], "deleted", 1);
		ctl_print_json(j);
		json_decref(j);
	} else if (!c->quiet) {
		char *id = out_clean(a->pos[0]);
		printf("deleted contact %s\n", id);
		free(id);
	}
	return CTL_OK;
}

/* erase: the person's data goes, not just the record (DELETE ?erase=true) */
static int run_erase(struct ctl *c, const struct ctl_args *a)
{
	json_t *ans;
	char *path = ctl_path(c, "/v1/contacts/", a->pos[0], "?erase=true");
	int rc = ctl_api(c, "DELETE", path, NULL, NULL, &ans, NULL);
	free(path);
	json_decref(ans);
	if (rc != CTL_OK)
		return rc;
	if (c->json) {
		json_t *j = json_pack("{s:s, s:b}", "id", a->pos[0], "erased", 1);
		ctl_print_json(j);
		json_decref(j);
	} else if (!c->quiet) {
		char *id = out_clean(a->pos[0]);
		printf("erased contact %s and everything held about them\n", id);
		free(id);
	}
	return CTL_OK;
}

/* timeline: newest first, one page (--limit), as a table or the API's JSON */
static int run_timeline(struct ctl *c, const struct ctl_args *a)
{
	const char *lim = ctl_arg(a, O_LIMIT);
	int64_t n = 50;
	if (lim && parse_i64(lim, 1, 500, &n) < 0)
		return ctl_usage(c, "--limit: 1..500");
	char q[32];
	snprintf(q, sizeof q, "/timeline?limit=%lld", (long long)n);
	char *path = ctl_path(c, "/v1/contacts/", a->pos[0], q);
	json_t *ans;
	int rc = ctl_api(c, "GET", path, NULL, NULL, &ans, NULL);
	free(path);
	if (rc != CTL_OK)
		return rc;
	if (c->json) {
		ctl_print_json(ans);
		json_decref(ans);
		return CTL_OK;
	}
	static const char *const head[] = {"AT", "TYPE", "DETAILS"};
	struct out_table *t = out_table_new(head, 3);
	out_table_max(t, 2, 90);
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(ans, "items"), i, e)
	{
		char *at = out_time(ctl_jstr(e, "at"));
		struct buf d;
		buf_init(&d, 4096);
		const char *k;
		json_t *v;
		json_object_foreach(e, k, v)
		{
			if (!strcmp(k, "id") || !strcmp(k, "at") || !strcmp(k, "type"))
				continue;
			char *val = json_is_string(v)
			                ? xstrdup(json_string_value(v))
			                : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
			buf_printf(&d, "%s%s=%s", d.len ? " " : "", k, val ? val : "");
			free(val);
		}
		char *det = out_clean(d.p ? d.p : "");
		const char *row[] = {at, ctl_jstr(e, "type"), det};
		out_table_add(t, row);
		free(det);
		free(at);
		buf_free(&d);
	}
	out_table_flush(t, stdout);
	out_table_free(t);
	json_decref(ans);
	return CTL_OK;
}

/* export ID: everything held about one person (GET /v1/contacts/{id}/export,
 * admin); without ID: the bulk export of contacts_io.c */
static int run_export(struct ctl *c, const struct ctl_args *a)
{
	if (a->npos == 0)
		return ctl_contacts_export(c, a);
	json_t *ans;
	char *path = ctl_path(c, "/v1/contacts/", a->pos[0], "/export");
	int rc = ctl_api(c, "GET", path, NULL, NULL, &ans, NULL);
	free(path);
	if (rc == CTL_OK)
		ctl_print_json(ans);
	json_decref(ans);
	return rc;
}

static int run_find(struct ctl *c, const struct ctl_args *a)
{
	static const struct {
		int key;
		const char *chan;
	} by[] = {{O_PHONE, "sms"}, {O_EMAIL, "email"}, {O_CHAT, "chat"}};
	const char *chan = NULL, *addr = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(by); i++) {
		const char *v = ctl_arg(a, by[i].key);
		if (!v)
			continue;
		if (chan)
			return ctl_usage(c, "give only one of --phone, --email, --chat");
		chan = by[i].chan;
		addr = v;
	}
	if (!chan)
		return ctl_usage(c, "give one of --phone, --email, --chat");
	char *e = ctl_escape(c, addr);
	char *path = xasprintf("/v1/contacts?channel=%s&address=%s", chan, e);
	free(e);
	json_t *ans;
	int rc = ctl_api(c, "GET", path, NULL, NULL, &ans, NULL);
	free(path);
	if (rc != CTL_OK)
		return rc;
	json_t *items = json_object_get(ans, "items");
	if (c->json)
		ctl_print_json(ans);
	if (json_array_size(items) == 0) {
		rc = ctl_fail(CTL_EAPI, "no contact has the %s address %s", chan, addr);
	} else if (!c->json) {
		print_contact(c, json_array_get(items, 0));
	}
	json_decref(ans);
	return rc;
}

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

static int run_list(struct ctl *c, const struct ctl_args *a)
{
	static const char *const head[] = {"ID",   "NAME", "PHONE",  "EMAIL",
	                                   "CHAT", "TAGS", "CREATED"};
	int64_t limit = 50;
	int all = ctl_has(a, O_ALL);
	const char *v;
	char *cursor = NULL;
	struct out_table *t = NULL;
	int64_t shown = 0;
	int rc = CTL_OK;

	if ((v = ctl_arg(a, O_LIMIT)) && parse_i64(v, 1, INT64_MAX, &limit) < 0)
		return ctl_usage(c, "--limit: a positive number expected");
	if (all && ctl_has(a, O_LIMIT))
		return ctl_usage(c, "--all and --limit exclude each other");
	if ((v = ctl_arg(a, O_CURSOR)))
		cursor = xstrdup(v);
	if (c->json) {
		fputs("{\n  \"items\": [", stdout);
	} else if (!c->quiet) {
		t = out_table_new(head, 7);
		out_table_max(t, 1, 30);
		out_table_max(t, 3, 32);
		out_table_max(t, 4, 20);
		out_table_max(t, 5, 24);
	}
	for (;;) {
		int64_t want = all ? PAGE_MAX : limit - shown;
		if (want > PAGE_MAX)
			want = PAGE_MAX;
		char *path;
		if (cursor) {
			char *e = ctl_escape(c, cursor);
			path = xasprintf("/v1/contacts?limit=%lld&cursor=%s", (long long)want, e);
			free(e);
		} else {
			path = xasprintf("/v1/contacts?limit=%lld", (long long)want);
		}
		json_t *ans;
		rc = ctl_api(c, "GET", path, NULL, NULL, &ans, NULL);
		free(path);
		if (rc != CTL_OK)
			break;
		json_t *items = json_object_get(ans, "items"), *it;
		size_t i;
		json_array_foreach(items, i, it)
		{
			const json_t *ad = json_object_get(it, "addresses");
			if (c->json) {
				fputs(shown ? ",\n    " : "\n    ", stdout);
				print_indented(it, 4);
			} else if (c->quiet) {
				printf("%s\n", ctl_jstr(it, "id") ? ctl_jstr(it, "id") : "");
			} else {
				char *tags = join_strings(json_object_get(it, "tags"), ",");
				char *created = out_time(ctl_jstr(it, "created_at"));
				const char *row[] = {ctl_jstr(it, "id"),
				                     ctl_jstr(it, "name"),
				                     ctl_jstr(ad, "sms"),
				                     ctl_jstr(ad, "email"),
				                     ctl_jstr(ad, "chat"),
				                     tags,
				                     created};
				out_table_add(t, row);
				free(tags);
				free(created);
			}
			shown++;
		}
		if (t)
			out_table_flush(t, stdout);
		const char *next = ctl_jstr(ans, "next_cursor");
		size_t got = json_array_size(items);
		free(cursor);
		cursor = next && *next ? xstrdup(next) : NULL;
		json_decref(ans);
		if (!cursor || (!all && shown >= limit) || got == 0)
			break;
	}
	if (rc == CTL_OK) {
		if (c->json) {
			fputs(shown ? "\n  ],\n  \"next_cursor\": " : "],\n  \"next_cursor\": ",
			      stdout);
			if (cursor) {
				json_t *s = json_string(cursor);
				json_dumpf(s, stdout, JSON_ENCODE_ANY);
				json_decref(s);
			} else {
				fputs("null", stdout);
			}
			fputs("\n}\n", stdout);
		} else if (t && shown == 0) {
			ctl_info(c, "no contacts");
		} else if (cursor && !c->quiet) {
			ctl_info(c, "%lld shown; more with: clubctl contacts list --cursor %s",
			         (long long)shown, cursor);
		}
	}
	out_table_free(t);
	free(cursor);
	return rc;
}

static const struct ctl_cmd contacts_cmds[] = {
    {"add", NULL, 0, 0, "create a contact",
     "Fields come from the options, on top of the JSON object in -f FILE when given.\n"
     "Phones are normalised by the server (09121234567, +98 912 123 4567 and Persian\n"
     "digits all work).  Prints the stored contact (-q: only its id).",
     add_opts, run_add},
    {"get", "ID", 1, 1, "show a contact", NULL, NULL, run_get},
    {"find", NULL, 0, 0, "look a contact up by --phone, --email or --chat",
     "Exits 1 when no contact has that address.", find_opts, run_find},
    {"edit", "ID", 1, 1, "change a contact",
     "Only the fields given change.  Addresses and attributes merge per key\n"
     "(--unset-addr and --unset-attr remove one); --tag replaces the whole tag set;\n"
     "--unset clears a field.",
     edit_opts, run_edit},
    {"rm", "ID", 1, 1, "delete a contact (admin token)", NULL, NULL, run_rm},
    {"erase", "ID", 1, 1, "erase a person: contact, addresses, timeline, replies (admin)",
     "DELETE /v1/contacts/ID?erase=true: everything held about the person goes (see\n"
     "docs/privacy.md); aggregate counters stay.",
     NULL, run_erase},
    {"timeline", "ID", 1, 1, "the contact's 360-degree timeline, newest first",
     "Sent, delivered, replies, answers, entries, points and events.", timeline_opts, run_timeline},
    {"list", NULL, 0, 0, "list contacts in creation order",
     "Shows the first 50 contacts, or --limit N, or --all (pages of 500 are fetched\n"
     "one after the other; --json prints them as one {\"items\":[...]} document).",
     list_opts, run_list},
    {"import", "FILE", 1, 1, CTL_IMPORT_SUMMARY, CTL_IMPORT_HELP, ctl_import_opts,
     ctl_contacts_import},
    {"export", "[ID]", 0, 1, CTL_EXPORT_SUMMARY "; with ID, one person's data",
     CTL_EXPORT_HELP "\nWith ID: everything held about that person as one JSON document\n"
                     "(GET /v1/contacts/ID/export, admin token).",
     ctl_export_opts, run_export},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL},
};

const struct ctl_group ctl_group_contacts = {"contacts", "contacts and their addresses",
                                             contacts_cmds};
