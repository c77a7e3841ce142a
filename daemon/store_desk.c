/*
 * store_desk.c - argument lists for the desk's scripts (desk_write,
 * desk_ticket, desk_read).  Knows each script's argument order and passes
 * the ticket transitions desk.c defines, so the scripts apply the same
 * state machine the unit tests check; the key names are the scripts'.
 * Never validates: desk.c and api_desk.c did.  Never logs texts.
 */
#include "store_desk.h"

#include <string.h>

#include "util.h"

static void simple(struct store *st, enum store_script s, const char *mode, const char *arg1,
                   redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, mode);
	if (arg1)
		argv_add(&a, arg1);
	store_eval(st, s, &a, cb, arg);
	argv_free(&a);
}

/* ---- teams and rules --------------------------------------------------- */

static void team_write(struct store *st, const char *mode, const struct desk_team *t,
                       const char *json, int64_t now, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, mode);
	argv_addll(&a, now);
	argv_add(&a, t->id);
	argv_add(&a, json);
	argv_add(&a, t->webhook ? t->webhook : "");
	argv_add(&a, t->email ? t->email : "");
	argv_add(&a, t->chat ? t->chat : "");
	store_eval(st, SCRIPT_DESK_WRITE, &a, cb, arg);
	argv_free(&a);
}

void store_desk_team_create(struct store *st, const struct desk_team *t, const char *json,
                            int64_t now, redis_cb cb, void *arg)
{
	team_write(st, "team_create", t, json, now, cb, arg);
}

void store_desk_team_put(struct store *st, const struct desk_team *t, const char *json, int64_t now,
                         redis_cb cb, void *arg)
{
	team_write(st, "team_put", t, json, now, cb, arg);
}

void store_desk_team_delete(struct store *st, const char *id, redis_cb cb, void *arg)
{
	simple(st, SCRIPT_DESK_WRITE, "team_delete", id, cb, arg);
}

void store_desk_team_get(struct store *st, const char *id, redis_cb cb, void *arg)
{
	simple(st, SCRIPT_DESK_WRITE, "team_get", id, cb, arg);
}

void store_desk_team_list(struct store *st, const char *cursor, int limit, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "team_list");
	argv_add(&a, cursor ? cursor : "");
	argv_addll(&a, limit);
	store_eval(st, SCRIPT_DESK_WRITE, &a, cb, arg);
	argv_free(&a);
}

static void add_team_once(struct argv *a, int first, const char *team)
{
	for (int i = first; i < a->n; i++)
		if (strcmp(a->v[i], team) == 0)
			return;
	argv_add(a, team);
}

void store_desk_rules_put(struct store *st, const struct desk_rules *r, const char *json,
                          int64_t now, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "rules_put");
	argv_addll(&a, now);
	argv_add(&a, json);
	int first = a.n;
	for (size_t i = 0; i < r->n; i++)
		add_team_once(&a, first, r->rule[i].team);
	if (r->default_team[0])
		add_team_once(&a, first, r->default_team);
	store_eval(st, SCRIPT_DESK_WRITE, &a, cb, arg);
	argv_free(&a);
}

void store_desk_rules_get(struct store *st, redis_cb cb, void *arg)
{
	simple(st, SCRIPT_DESK_WRITE, "rules_get", NULL, cb, arg);
}

/* ---- tickets -------------------------------------------------------------- */

void store_desk_scan(struct store *st, int64_t now, int batch, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "scan");
	argv_addll(&a, now);
	argv_addll(&a, batch);
	store_eval(st, SCRIPT_DESK_TICKET, &a, cb, arg);
	argv_free(&a);
}

void store_desk_open(struct store *st, int64_t now, int64_t reopen_ms, const char *last,
                     const struct store_desk_reply *r, size_t n, redis_cb cb, void *arg)
{
	char t0[128], t1[128];
	desk_transitions(DESK_OP_CUSTOMER, 0, t0, sizeof t0);
	desk_transitions(DESK_OP_CUSTOMER, 1, t1, sizeof t1);
	struct argv a;
	argv_init(&a);
	argv_add(&a, "open");
	argv_addll(&a, now);
	argv_addll(&a, reopen_ms);
	argv_add(&a, last);
	argv_add(&a, t0);
	argv_add(&a, t1);
	for (size_t i = 0; i < n; i++) {
		argv_add(&a, r[i].did);
		argv_add(&a, r[i].aid);
		argv_addll(&a, r[i].at);
		argv_add(&a, r[i].ticket);
		argv_add(&a, r[i].team);
		argv_add(&a, r[i].via);
		argv_add(&a, r[i].rule);
		argv_add(&a, r[i].contact);
		argv_add(&a, r[i].channel);
		argv_add(&a, r[i].from);
		argv_add(&a, r[i].to);
		argv_add(&a, r[i].text);
		argv_add(&a, r[i].provider);
		argv_add(&a, r[i].provider_id);
		argv_add(&a, r[i].campaign);
	}
	store_eval(st, SCRIPT_DESK_TICKET, &a, cb, arg);
	argv_free(&a);
}

static void transition(struct store *st, const char *mode, enum desk_op op, const char *ticket,
                       int64_t now, const char *who, redis_cb cb, void *arg)
{
	char t[128];
	desk_transitions(op, 1, t, sizeof t);
	struct argv a;
	argv_init(&a);
	argv_add(&a, mode);
	argv_add(&a, ticket);
	argv_addll(&a, now);
	argv_add(&a, who ? who : "");
	argv_add(&a, t);
	store_eval(st, SCRIPT_DESK_TICKET, &a, cb, arg);
	argv_free(&a);
}

void store_desk_assign(struct store *st, const char *ticket, int64_t now, const char *op,
                       redis_cb cb, void *arg)
{
	transition(st, "assign", DESK_OP_ASSIGN, ticket, now, op, cb, arg);
}

void store_desk_close(struct store *st, const char *ticket, int64_t now, const char *op,
                      redis_cb cb, void *arg)
{
	transition(st, "close", DESK_OP_CLOSE, ticket, now, op, cb, arg);
}

void store_desk_peek(struct store *st, const char *ticket, redis_cb cb, void *arg)
{
	simple(st, SCRIPT_DESK_TICKET, "peek", ticket, cb, arg);
}

void store_desk_answer(struct store *st, const char *ticket, int64_t now, const char *op,
                       const char *text, const char *msg_id, int timeline_max, redis_cb cb,
                       void *arg)
{
	char t[128];
	desk_transitions(DESK_OP_ANSWER, 1, t, sizeof t);
	struct argv a;
	argv_init(&a);
	argv_add(&a, "answer");
	argv_add(&a, ticket);
	argv_addll(&a, now);
	argv_add(&a, op ? op : "");
	argv_add(&a, text);
	argv_add(&a, msg_id);
	argv_add(&a, t);
	argv_addll(&a, timeline_max);
	store_eval(st, SCRIPT_DESK_TICKET, &a, cb, arg);
	argv_free(&a);
}

void store_desk_claim(struct store *st, int64_t now, int64_t lease_ms, int batch, redis_cb cb,
                      void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "claim");
	argv_addll(&a, now);
	argv_addll(&a, lease_ms);
	argv_addll(&a, batch);
	store_eval(st, SCRIPT_DESK_TICKET, &a, cb, arg);
	argv_free(&a);
}

void store_desk_done(struct store *st, const char *member, int64_t now, const char *outcome,
                     int64_t due, const char *detail, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "done");
	argv_add(&a, member);
	argv_addll(&a, now);
	argv_add(&a, outcome);
	argv_addll(&a, due);
	argv_add(&a, detail ? detail : "");
	store_eval(st, SCRIPT_DESK_TICKET, &a, cb, arg);
	argv_free(&a);
}

/* ---- reads ------------------------------------------------------------------ */

void store_desk_ticket_get(struct store *st, const char *ticket, redis_cb cb, void *arg)
{
	simple(st, SCRIPT_DESK_READ, "get", ticket, cb, arg);
}

void store_desk_ticket_list(struct store *st, const char *team, const char *state,
                            const char *cursor, int limit, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "list");
	argv_add(&a, team ? team : "");
	argv_add(&a, state ? state : "");
	argv_add(&a, cursor ? cursor : "");
	argv_addll(&a, limit);
	store_eval(st, SCRIPT_DESK_READ, &a, cb, arg);
	argv_free(&a);
}

void store_desk_stats(struct store *st, const char *team, int64_t since, int max, redis_cb cb,
                      void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, "stats");
	argv_add(&a, team);
	argv_addll(&a, since);
	argv_addll(&a, max);
	store_eval(st, SCRIPT_DESK_READ, &a, cb, arg);
	argv_free(&a);
}
