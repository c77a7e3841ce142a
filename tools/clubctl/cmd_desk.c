/*
 * cmd_desk.c - `clubctl desk ...`: the complaints desk (docs/desk.md) over
 * /v1/tickets, /v1/teams and their stats: list tickets by team and state,
 * show one with its conversation, assign, answer (the answer goes to the
 * customer on the channel they used), close; list teams; a team's counts
 * and first-response times.
 *
 * Owns the JSON it builds.  Never retries an answer by itself: after a
 * timeout, the same command again (or with the same --idempotency-key) is
 * safe, the server sends the answer once.  Limits: ticket pages of 200
 * (--all follows the cursor), an answer of 4096 bytes (the server's).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clubctl.h"
#include "out.h"
#include "res.h"
#include "util.h"

#define PAGE_MAX 200

enum {
	O_TEAM = 256,
	O_STATE,
	O_LIMIT,
	O_ALL,
	O_CURSOR,
	O_TO,
	O_OPERATOR,
	O_IDEM,
	O_DAYS,
};

static const struct ctl_opt tickets_opts[] = {
    {"team", O_TEAM, "TEAM", "only this team's tickets", 0, NULL},
    {"state", O_STATE, "STATE", "only tickets in this state", 0, "open assigned answered closed"},
    {"limit", O_LIMIT, "N", "show at most N tickets (default 50)", 0, NULL},
    {"all", O_ALL, NULL, "show every ticket, following the cursor", 0, NULL},
    {"cursor", O_CURSOR, "ID", "start after this ticket", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt assign_opts[] = {
    {"to", O_TO, "OPERATOR", "the operator who takes the ticket (required)", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt answer_opts[] = {
    {"operator", O_OPERATOR, "NAME", "who answers (default: the token's name)", 0, NULL},
    {"idempotency-key", O_IDEM, "KEY", "the same KEY sends the answer once", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt stats_opts[] = {
    {"days", O_DAYS, "N", "first responses of the last N days (1..365, default 30)", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

/* ---------------------------------------------------------------- helpers */

/* "2h 05m", "3m 20s", "850ms": a duration for people. */
static char *duration(const json_t *v)
{
	if (!json_is_integer(v))
		return NULL;
	long long ms = (long long)json_integer_value(v);
	if (ms < 1000)
		return xasprintf("%lldms", ms);
	long long s = ms / 1000;
	if (s < 60)
		return xasprintf("%llds", s);
	if (s < 3600)
		return xasprintf("%lldm %02llds", s / 60, s % 60);
	if (s < 86400)
		return xasprintf("%lldh %02lldm", s / 3600, (s % 3600) / 60);
	return xasprintf("%lldd %02lldh", s / 86400, (s % 86400) / 3600);
}

static void kv_time(int w, const char *k, const char *rfc)
{
	char *s = out_time(rfc);
	out_kv(stdout, w, k, s);
	free(s);
}

static void kv_owned(int w, const char *k, char *v)
{
	out_kv(stdout, w, k, v);
	free(v);
}

static int print_answer(struct ctl *c, json_t *ans, int (*human)(struct ctl *, const json_t *))
{
	if (c->json)
		ctl_print_json(ans);
	else if (c->quiet)
		printf("%s\n", ctl_jstr(ans, "id") ? ctl_jstr(ans, "id") : "");
	else
		human(c, ans);
	return CTL_OK;
}

/* ---------------------------------------------------------------- tickets */

static int ticket_row(struct ctl *c, struct out_table *t, const json_t *it, void *arg)
{
	(void)c;
	(void)arg;
	char *created = out_time(ctl_jstr(it, "created_at"));
	const char *row[] = {ctl_jstr(it, "id"),       ctl_jstr(it, "team"),
	                     ctl_jstr(it, "state"),    ctl_jstr(it, "channel"),
	                     ctl_jstr(it, "operator"), created,
	                     ctl_jstr(it, "last_text")};
	out_table_add(t, row);
	free(created);
	return CTL_OK;
}

static int run_tickets(struct ctl *c, const struct ctl_args *a)
{
	static const char *const head[] = {"ID",       "TEAM",    "STATE", "CHANNEL",
	                                   "OPERATOR", "CREATED", "TEXT"};
	struct res_page p = {
	    .path = "/v1/tickets", .limit = 50, .page_max = PAGE_MAX, .row = ticket_row};
	const char *v;
	int rc = res_page_args(c, a, O_LIMIT, O_ALL, O_CURSOR, &p);
	if (rc != CTL_OK) {
		res_page_free(&p);
		return rc;
	}
	struct buf filt;
	buf_init(&filt, 0);
	if ((v = ctl_arg(a, O_TEAM))) {
		char *e = ctl_escape(c, v);
		buf_printf(&filt, "&team=%s", e);
		free(e);
	}
	if ((v = ctl_arg(a, O_STATE)))
		buf_printf(&filt, "&state=%s", v);
	p.query = filt.p;
	if (!c->json && !c->quiet) {
		p.t = out_table_new(head, 7);
		out_table_max(p.t, 4, 20);
		out_table_max(p.t, 6, 50);
	}
	rc = res_page_run(c, &p);
	if (rc == CTL_OK && !c->json) {
		if (p.t && p.shown == 0)
			ctl_info(c, "no tickets");
		else if (p.cursor && !p.all)
			ctl_info(c, "more: --cursor %s", p.cursor);
	}
	res_page_free(&p);
	buf_free(&filt);
	return rc;
}

static int show_ticket(struct ctl *c, const json_t *tk)
{
	(void)c;
	const int w = 15;
	out_kv(stdout, w, "ticket", ctl_jstr(tk, "id"));
	out_kv(stdout, w, "team", ctl_jstr(tk, "team"));
	out_kv(stdout, w, "state", ctl_jstr(tk, "state"));
	const json_t *r = json_object_get(tk, "routed");
	if (json_is_object(r)) {
		const char *via = ctl_jstr(r, "via"), *rule = ctl_jstr(r, "rule");
		kv_owned(w, "routed by",
		         rule ? xasprintf("%s %s", via ? via : "", rule)
		              : xstrdup(via ? via : "-"));
	}
	out_kv(stdout, w, "contact", ctl_jstr(tk, "contact_id"));
	kv_owned(w, "from",
	         xasprintf("%s (%s)", ctl_jstr(tk, "from") ? ctl_jstr(tk, "from") : "-",
	                   ctl_jstr(tk, "channel") ? ctl_jstr(tk, "channel") : "-"));
	out_kv(stdout, w, "campaign", ctl_jstr(tk, "campaign"));
	out_kv(stdout, w, "operator", ctl_jstr(tk, "operator"));
	kv_time(w, "opened", ctl_jstr(tk, "created_at"));
	kv_time(w, "answered", ctl_jstr(tk, "answered_at"));
	kv_owned(w, "first response", duration(json_object_get(tk, "first_response_ms")));
	kv_time(w, "closed", ctl_jstr(tk, "closed_at"));
	kv_owned(w, "messages", res_llstr(json_object_get(tk, "messages")));
	kv_owned(w, "answers", res_llstr(json_object_get(tk, "answers")));
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)json_object_get(tk, "notified"), k, v)
	{
		kv_owned(w, "notified", xasprintf("%s: %s", k, json_string_value(v)));
	}
	if (ctl_jstr(tk, "message_id"))
		out_kv(stdout, w, "sent as", ctl_jstr(tk, "message_id"));
	const json_t *conv = json_object_get(tk, "conversation");
	if (json_array_size(conv) == 0)
		return CTL_OK;
	static const char *const head[] = {"AT", "WHO", "TEXT"};
	struct out_table *t = out_table_new(head, 3);
	out_table_max(t, 1, 24);
	size_t i;
	json_t *e;
	json_array_foreach(conv, i, e)
	{
		char *at = out_time(ctl_jstr(e, "at"));
		const char *dir = ctl_jstr(e, "dir") ? ctl_jstr(e, "dir") : "";
		char *who, *text = NULL;
		if (strcmp(dir, "in") == 0) {
			who = xasprintf("customer (%s)",
			                ctl_jstr(e, "channel") ? ctl_jstr(e, "channel") : "-");
		} else if (strcmp(dir, "out") == 0) {
			who =
			    xstrdup(ctl_jstr(e, "operator") ? ctl_jstr(e, "operator") : "operator");
		} else {
			who = xstrdup("-");
			text = xasprintf(
			    "[%s%s%s]", ctl_jstr(e, "event") ? ctl_jstr(e, "event") : "",
			    ctl_jstr(e, "operator") && *ctl_jstr(e, "operator") ? " by " : "",
			    ctl_jstr(e, "operator") ? ctl_jstr(e, "operator") : "");
		}
		const char *row[] = {at, who, text ? text : ctl_jstr(e, "text")};
		out_table_add(t, row);
		free(at);
		free(who);
		free(text);
	}
	fputc('\n', stdout);
	out_table_flush(t, stdout);
	out_table_free(t);
	return CTL_OK;
}

static int ticket_call(struct ctl *c, const char *method, const char *id, const char *verb,
                       json_t *body, const char *const *headers)
{
	char *suffix = verb ? xasprintf("/%s", verb) : NULL;
	char *path = ctl_path(c, "/v1/tickets/", id, suffix);
	json_t *ans = NULL;
	int rc = ctl_api(c, method, path, body, headers, &ans, NULL);
	free(path);
	free(suffix);
	if (rc == CTL_OK)
		rc = print_answer(c, ans, show_ticket);
	json_decref(ans);
	return rc;
}

static int run_show(struct ctl *c, const struct ctl_args *a)
{
	return ticket_call(c, "GET", a->pos[0], NULL, NULL, NULL);
}

static int run_assign(struct ctl *c, const struct ctl_args *a)
{
	const char *to = ctl_arg(a, O_TO);
	if (!to || !*to)
		return ctl_usage(c, "--to OPERATOR is required");
	json_t *b = json_pack("{s:s}", "operator", to);
	if (!b)
		return ctl_usage(c, "--to: not valid UTF-8");
	int rc = ticket_call(c, "POST", a->pos[0], "assign", b, NULL);
	json_decref(b);
	return rc;
}

static int run_answer(struct ctl *c, const struct ctl_args *a)
{
	const char *op = ctl_arg(a, O_OPERATOR), *key = ctl_arg(a, O_IDEM);
	json_t *b = json_object();
	json_t *text = json_string(a->pos[1]);
	if (!text) {
		json_decref(b);
		return ctl_usage(c, "TEXT: not valid UTF-8");
	}
	json_object_set_new(b, "text", text);
	if (op)
		json_object_set_new(b, "operator", json_string(op));
	char *hdr = key ? xasprintf("Idempotency-Key: %s", key) : NULL;
	const char *headers[2] = {hdr, NULL};
	int rc = ticket_call(c, "POST", a->pos[0], "answer", b, hdr ? headers : NULL);
	free(hdr);
	json_decref(b);
	return rc;
}

static int run_close(struct ctl *c, const struct ctl_args *a)
{
	return ticket_call(c, "POST", a->pos[0], "close", NULL, NULL);
}

/* ---------------------------------------------------------------- teams */

static int run_teams(struct ctl *c, const struct ctl_args *a)
{
	(void)a;
	static const char *const head[] = {"ID", "NAME", "NOTIFY", "MEMBERS"};
	json_t *all = json_array();
	char *cursor = NULL;
	int rc = CTL_OK;
	for (;;) {
		char *path;
		if (cursor) {
			char *e = ctl_escape(c, cursor);
			path = xasprintf("/v1/teams?limit=%d&cursor=%s", PAGE_MAX, e);
			free(e);
		} else {
			path = xasprintf("/v1/teams?limit=%d", PAGE_MAX);
		}
		json_t *ans = NULL;
		rc = ctl_api(c, "GET", path, NULL, NULL, &ans, NULL);
		free(path);
		if (rc != CTL_OK)
			break;
		json_array_extend(all, json_object_get(ans, "items"));
		const char *next = ctl_jstr(ans, "next_cursor");
		free(cursor);
		cursor = next && *next ? xstrdup(next) : NULL;
		json_decref(ans);
		if (!cursor)
			break;
	}
	free(cursor);
	if (rc == CTL_OK && c->json) {
		json_t *doc = json_pack("{s:O, s:n}", "items", all, "next_cursor");
		ctl_print_json(doc);
		json_decref(doc);
	} else if (rc == CTL_OK) {
		struct out_table *t = c->quiet ? NULL : out_table_new(head, 4);
		size_t i;
		json_t *it;
		json_array_foreach(all, i, it)
		{
			if (c->quiet) {
				printf("%s\n", ctl_jstr(it, "id") ? ctl_jstr(it, "id") : "");
				continue;
			}
			struct buf n, m;
			buf_init(&n, 0);
			buf_init(&m, 0);
			const char *k;
			json_t *v;
			json_object_foreach(json_object_get(it, "notify"), k, v)
			{
				buf_printf(&n, "%s%s: %s", n.len ? ", " : "", k,
				           json_string_value(v));
			}
			size_t x;
			json_array_foreach(json_object_get(it, "members"), x, v)
			{
				buf_printf(&m, "%s%s", m.len ? ", " : "", json_string_value(v));
			}
			const char *row[] = {ctl_jstr(it, "id"), ctl_jstr(it, "name"),
			                     n.len ? n.p : NULL, m.len ? m.p : NULL};
			out_table_add(t, row);
			buf_free(&n);
			buf_free(&m);
		}
		if (t) {
			if (out_table_rows(t))
				out_table_flush(t, stdout);
			else
				ctl_info(c, "no teams");
			out_table_free(t);
		}
	}
	json_decref(all);
	return rc;
}

static int show_stats(struct ctl *c, const json_t *s)
{
	(void)c;
	const int w = 16;
	out_kv(stdout, w, "team", ctl_jstr(s, "team"));
	kv_owned(w, "days", res_llstr(json_object_get(s, "days")));
	const json_t *t = json_object_get(s, "tickets");
	static const char *const states[] = {"open", "assigned", "answered", "closed"};
	for (size_t i = 0; i < ARRAY_SIZE(states); i++)
		kv_owned(w, states[i], res_llstr(json_object_get(t, states[i])));
	const json_t *fr = json_object_get(s, "first_response");
	kv_owned(w, "first responses", res_llstr(json_object_get(fr, "count")));
	kv_owned(w, "p50", duration(json_object_get(fr, "p50_ms")));
	kv_owned(w, "p90", duration(json_object_get(fr, "p90_ms")));
	kv_owned(w, "mean", duration(json_object_get(fr, "mean_ms")));
	return CTL_OK;
}

static int run_stats(struct ctl *c, const struct ctl_args *a)
{
	const char *v = ctl_arg(a, O_DAYS);
	int64_t days = 30;
	if (v && parse_i64(v, 1, 365, &days) < 0)
		return ctl_usage(c, "--days: a number from 1 to 365 expected");
	char *suffix = xasprintf("/stats?days=%lld", (long long)days);
	char *path = ctl_path(c, "/v1/teams/", a->pos[0], suffix);
	free(suffix);
	json_t *ans = NULL;
	int rc = ctl_api(c, "GET", path, NULL, NULL, &ans, NULL);
	free(path);
	if (rc == CTL_OK) {
		if (c->json)
			ctl_print_json(ans);
		else
			show_stats(c, ans);
	}
	json_decref(ans);
	return rc;
}

static const struct ctl_cmd desk_cmds[] = {
    {"tickets", NULL, 0, 0, "list tickets, oldest first",
     "--team and --state narrow the list (open, assigned, answered, closed).", tickets_opts,
     run_tickets},
    {"show", "ID", 1, 1, "a ticket with its conversation", NULL, NULL, run_show},
    {"assign", "ID", 1, 1, "give a ticket to an operator (--to)", NULL, assign_opts, run_assign},
    {"answer", "ID TEXT", 2, 2, "answer the customer on the channel they used",
     "The answer is sent as a transactional message on the ticket's channel and\n"
     "recorded on the ticket and the contact's timeline.  The same command again (or\n"
     "the same --idempotency-key) sends nothing more.  Exits 1 (409) for a closed ticket.",
     answer_opts, run_answer},
    {"close", "ID", 1, 1, "close a ticket", NULL, NULL, run_close},
    {"teams", NULL, 0, 0, "list the teams and how they are notified", NULL, NULL, run_teams},
    {"stats", "TEAM", 1, 1, "a team's tickets by state and first-response times", NULL, stats_opts,
     run_stats},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL},
};

const struct ctl_group ctl_group_desk = {"desk", "the complaints desk: tickets, teams, answers",
                                         desk_cmds};
