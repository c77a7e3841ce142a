/*
 * links.h - tracked links: the template hook that turns {{url|track}} into
 * a short link BASE/l/{code}, the batch of links made while rendering, and
 * saving them to the store before the message goes out.  The click side
 * (GET /l/{code}) is daemon/api_links.c.
 *
 * Use (the campaign dispatcher):
 *   struct links_batch *b = links_batch_new(cfg->links_base_url);
 *   struct links_ctx lc = {b, msg_id, contact_id, camp, var};
 *   struct tmpl_opts o = {..., .link = links_track, .link_arg = &lc};
 *   render every part of every message of the batch (lc per message);
 *   if (links_batch_count(b) > 0)
 *           store_links_save(st, b, cfg->links_ttl_ms / 1000, on_saved, arg);
 *   send only after on_saved saw {'ok', n}; links_batch_free(b).
 */
#ifndef CLUBD_LINKS_H
#define CLUBD_LINKS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "util.h"

#define LINKS_CODE_LEN  10   /* [A-Za-z0-9]{10}: 62^10, about 59.5 bits */
#define LINKS_BASE_MAX  200  /* bytes of [links] base_url */
#define LINKS_FIELD_MAX 64   /* bytes of a message, contact, campaign or variant id */
#define LINKS_BATCH_MAX 4096 /* links in one batch; more fail the render */

struct links_batch;

/* What a link made by links_track() is recorded against (borrowed; all may
 * be NULL or "": a link outside a campaign, or for no one in particular).
 * Non-empty values are 1..LINKS_FIELD_MAX bytes of [A-Za-z0-9_.-]. */
struct links_ctx {
	struct links_batch *b;
	const char *msg, *contact, *camp, *var;
};

/* A new, empty batch; base_url is copied, trailing '/' dropped.  base_url
 * NULL or "" (tracking is off): links_track() shows URLs unchanged and
 * records nothing. */
struct links_batch *links_batch_new(const char *base_url);
void links_batch_free(struct links_batch *b);
size_t links_batch_count(const struct links_batch *b);
/* Drop the records from the n-th on (n <= count): a render that failed
 * after making links takes its links back (count before, truncate after). */
void links_batch_truncate(struct links_batch *b, size_t n);
/* The i-th record's code and URL (i < count; borrowed, valid until free). */
const char *links_batch_code(const struct links_batch *b, size_t i);
const char *links_batch_url(const struct links_batch *b, size_t i);

/*
 * struct tmpl_opts.link with link_arg a struct links_ctx *: a new code per
 * call, base_url + "/l/" + code appended to out, and the record (code, url,
 * msg, contact, camp, var) added to ctx->b.  url was checked by the
 * template engine (tmpl_url_check).  0; -ENOSPC when out is full; -E2BIG
 * past LINKS_BATCH_MAX; -EINVAL when a ctx field is malformed.
 */
int links_track(void *arg, const char *url, size_t len, struct buf *out);

/* Append the records to a script call: 6 strings each, in order code, url,
 * msg, contact, camp, var ("" for absent ones). */
void links_batch_add_args(const struct links_batch *b, struct argv *a);

/*
 * Save every record of b as P ln:{code} (hash u m c k v at, EXPIRE ttl_s)
 * in one script call (lua/link_save.lua).  All or nothing: when a code is
 * already taken (a collision, about 2^-59 per link) nothing is written.
 * Reply: {'ok', n} | {'collision', code}; NULL or an error reply when the
 * store failed.  b is borrowed only for the call.
 */
void store_links_save(struct store *st, const struct links_batch *b, int64_t ttl_s, redis_cb cb,
                      void *arg);

/* The same, for the API: with check_contacts each non-empty contact must
 * exist, else nothing is written and the reply is {'no_contact', id}. */
void store_links_save_checked(struct store *st, const struct links_batch *b, int64_t ttl_s,
                              int check_contacts, redis_cb cb, void *arg);

/* A fresh random code (LINKS_CODE_LEN + 1 bytes with the NUL). */
void links_code_new(char out[LINKS_CODE_LEN + 1]);
/* 1 when s is exactly LINKS_CODE_LEN characters of [A-Za-z0-9]. */
int links_code_valid(const char *s);
/* 1 when s is NULL, "" or a valid links_ctx field value. */
int links_field_valid(const char *s);

/*
 * The click (lua/link_click.lua): look up P ln:{code}; when count is set,
 * record the click (see docs/links.md).  Reply: nil for an unknown or
 * expired code, else {url, counted (0|1), new clicker (0|1)}.
 */
void store_link_click(struct store *st, const char *code, int64_t now, int count, int timeline_max,
                      redis_cb cb, void *arg);
/* One link's record (lua/link_get.lua): nil, or {HGETALL array, PTTL ms}. */
void store_link_get(struct store *st, const char *code, redis_cb cb, void *arg);

#endif
