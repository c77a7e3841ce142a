/*
 * store_desk.h - the complaints desk's part of the store, through
 * lua/desk_write.lua (teams, rules), lua/desk_ticket.lua (tickets from the
 * router's audit stream, transitions, notifications) and lua/desk_read.lua
 * (reads).  The key names live there and in store.h's key list; every reply
 * shape is the script's (see the script headers).
 */
#ifndef CLUBD_STORE_DESK_H
#define CLUBD_STORE_DESK_H

#include <stddef.h>
#include <stdint.h>

#include "club/desk.h"
#include "store.h"

/* ---- teams and rules (desk_write.lua) ---------------------------------- */

/* json: the canonical definition (desk_team_json).  {'ok', v} | {'exists'}. */
void store_desk_team_create(struct store *st, const struct desk_team *t, const char *json,
                            int64_t now, redis_cb cb, void *arg);
/* {'ok', v} | {'not_found'}. */
void store_desk_team_put(struct store *st, const struct desk_team *t, const char *json, int64_t now,
                         redis_cb cb, void *arg);
/* {'ok'} | {'not_found'} | {'in_use', where}. */
void store_desk_team_delete(struct store *st, const char *id, redis_cb cb, void *arg);
/* The team's hash (HGETALL form; empty when none). */
void store_desk_team_get(struct store *st, const char *id, redis_cb cb, void *arg);
/* {next cursor or '', {hash}...} in id order after cursor (exclusive). */
void store_desk_team_list(struct store *st, const char *cursor, int limit, redis_cb cb, void *arg);
/* Store the rules (json: desk_rules_json) once every team they name exists:
 * {'ok', v} | {'unknown_team', id}. */
void store_desk_rules_put(struct store *st, const struct desk_rules *r, const char *json,
                          int64_t now, redis_cb cb, void *arg);
/* {json or '', v or '', updated or ''}. */
void store_desk_rules_get(struct store *st, redis_cb cb, void *arg);

/* ---- tickets (desk_ticket.lua) ------------------------------------------- */

/* The next replies the desk has not opened yet, after its cursor in its
 * inbox (P deskin): {last inbox id or '', rules json or '', {reply...}}. */
void store_desk_scan(struct store *st, int64_t now, int batch, redis_cb cb, void *arg);

/* One reply to open, append or reopen a ticket with (borrowed strings). */
struct store_desk_reply {
	const char *did; /* inbox (P deskin) entry id */
	const char *aid; /* audit stream id */
	int64_t at;      /* when it was recorded (ms) */
	const char *ticket, *team, *via, *rule;
	const char *contact, *channel, *from, *to, *text, *provider, *provider_id, *campaign;
};
/* Open the replies in one atomic step and move the cursor to last:
 * {{audit id, ticket, 'new'|'append'|'reopen'|'seen'}...}. */
void store_desk_open(struct store *st, int64_t now, int64_t reopen_ms, const char *last,
                     const struct store_desk_reply *r, size_t n, redis_cb cb, void *arg);
/* {'ok', hash} | {'not_found'} | {'conflict', state}. */
void store_desk_assign(struct store *st, const char *ticket, int64_t now, const char *op,
                       redis_cb cb, void *arg);
void store_desk_close(struct store *st, const char *ticket, int64_t now, const char *op,
                      redis_cb cb, void *arg);
/* {state, contact, channel, from, outs, team} (state nil: no ticket). */
void store_desk_peek(struct store *st, const char *ticket, redis_cb cb, void *arg);
/* Record the answer msg_id (already created) on the ticket and the contact's
 * timeline: {'ok'|'dup', hash, first response ms or -1} | {'not_found'} |
 * {'conflict', state}. */
void store_desk_answer(struct store *st, const char *ticket, int64_t now, const char *op,
                       const char *text, const char *msg_id, int timeline_max, redis_cb cb,
                       void *arg);
/* Notifications due: leased for lease_ms. */
void store_desk_claim(struct store *st, int64_t now, int64_t lease_ms, int batch, redis_cb cb,
                      void *arg);
/* outcome "ok", "retry" (again at due) or "fail". */
void store_desk_done(struct store *st, const char *member, int64_t now, const char *outcome,
                     int64_t due, const char *detail, redis_cb cb, void *arg);

/* ---- reads (desk_read.lua) ------------------------------------------------- */

/* {hash, {conversation JSON...}}. */
void store_desk_ticket_get(struct store *st, const char *ticket, redis_cb cb, void *arg);
/* team/state "" = any: {next cursor or '', {hash}...}. */
void store_desk_ticket_list(struct store *st, const char *team, const char *state,
                            const char *cursor, int limit, redis_cb cb, void *arg);
/* {open, assigned, answered, closed, {"{ticket}:{ms}"...}}. */
void store_desk_stats(struct store *st, const char *team, int64_t since, int max, redis_cb cb,
                      void *arg);

#endif
