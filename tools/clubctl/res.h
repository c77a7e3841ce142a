/*
 * res.h - helpers the resource commands of clubctl (templates, raffles,
 * segments, surveys, occasions, campaigns, desk ...) share: reading a JSON
 * definition from a file or stdin, paged listings over "items" +
 * "next_cursor", and the usual get / delete / created-line output.
 */
#ifndef CLUBCTL_RES_H
#define CLUBCTL_RES_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "clubctl.h"

struct out_table;

/*
 * Read a JSON object from path ("-" = stdin, at most max bytes) into *out
 * (a new reference).  what names the object for errors ("a template
 * definition": "PATH: invalid JSON at line L, column C: ..." and "PATH: a
 * template definition is a JSON object"); with what NULL a single message
 * "PATH: a JSON object expected (WHY at line L)".  CTL_OK or usage.
 */
int res_read_object(struct ctl *c, const char *path, size_t max, const char *what, json_t **out);

/*
 * res_read_object() then one API call with it as the body; on CTL_OK *ans
 * is the answer (a new reference, may be NULL).
 */
int res_send_file(struct ctl *c, const char *method, const char *path, const char *file, size_t max,
                  const char *what, json_t **ans);

/* --json: print ans; -q: print its "id".  1 when the caller prints the
 * human form, else 0. */
int res_echo(struct ctl *c, const json_t *ans);

/* GET path; --json prints the answer, otherwise human(c, answer). */
int res_get(struct ctl *c, const char *path, void (*human)(struct ctl *c, const json_t *ans));

/* DELETE path, then "deleted NOUN ID" (--json: {"id":ID,"deleted":true}). */
int res_delete(struct ctl *c, const char *path, const char *id, const char *noun);

/* A paged listing: GET path?limit=N[&cursor=C]QUERY until done. */
struct res_page {
	const char *path;      /* escaped, without a query */
	const char *query;     /* extra "&k=v" (escaped) or NULL */
	int64_t limit;         /* items to show (ignored with all); default 50 */
	int all;               /* follow next_cursor to the end */
	int64_t page_max;      /* the largest limit= of one request */
	const char *quiet_key; /* printed per item with -q; NULL: "id" */
	struct out_table *t;   /* the human table; set up by the caller */
	/* One human row; anything but CTL_OK stops the listing. */
	int (*row)(struct ctl *c, struct out_table *t, const json_t *item, void *arg);
	void *arg;
	char *cursor;  /* in: where to start (owned); out: where more starts */
	int64_t shown; /* out: items listed */
};

/*
 * --limit (o_limit) and --all (o_all) into p: "--limit: a positive number
 * expected", "--all and --limit exclude each other".  o_cursor (0: none)
 * sets p->cursor.  CTL_OK or usage.
 */
int res_page_args(struct ctl *c, const struct ctl_args *a, int o_limit, int o_all, int o_cursor,
                  struct res_page *p);

/*
 * Run the listing.  p->t is used (and flushed after each page) unless
 * --json or -q; with --json prints {"items":[...],"next_cursor":...} at the
 * end.  Frees nothing but what it allocates; res_page_free() frees the
 * cursor and the table.
 */
int res_page_run(struct ctl *c, struct res_page *p);
void res_page_free(struct res_page *p);

/* An integer as text, NULL (printed "-") for anything else; caller frees. */
char *res_llstr(const json_t *v);

#endif
