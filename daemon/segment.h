/*
 * segment.h - audience definitions and their evaluation.
 *
 * A segment is a JSON condition tree over a contact (tags all/any/none,
 * tier, attributes with = != < > contains exists, dates: joined, last
 * purchase, birthday month, relative windows such as "last 30 days",
 * engagement sets eng:{what}:{id}, channel reachability with consent).  The
 * exact grammar is in docs/segments.md.
 *
 * Evaluation streams the contact set in batches (pull model: the scan asks
 * for the next batch only when the consumer calls segment_scan_next), reads
 * only the fields the definition needs, and never holds more than one batch.
 */
#ifndef CLUBD_SEGMENT_H
#define CLUBD_SEGMENT_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct segment;
struct segment_scan;

/* Parse a definition; 0 or -EINVAL with *field ("match.all[2].value") and
 * *reason (static strings or pointing into def). */
int segment_parse(const json_t *def, struct segment **out, const char **field, const char **reason);
void segment_free(struct segment *s);

/*
 * One batch of matches.  ids: matching contact ids (borrowed for the call);
 * cursor: resume point after this batch ("" once done == 1); err != 0 when
 * the scan failed (Redis) - no more calls follow.  The consumer calls
 * segment_scan_next(sc) to get the next batch (possibly later, after its
 * own asynchronous work) or segment_scan_free(sc) to stop.  After done or
 * err the scan must still be freed.
 */
typedef void (*segment_batch_fn)(struct segment_scan *sc, void *arg, const char *const *ids,
                                 size_t n, const char *cursor, int done, int err);

/* Start a scan from cursor ("" = the beginning) examining up to batch
 * contacts per step; s is borrowed and must outlive the scan; now (ms) is
 * the reference for relative windows.  The first batch is delivered
 * asynchronously. */
struct segment_scan *segment_scan_start(struct store *st, const struct segment *s, int64_t now,
                                        const char *cursor, size_t batch, segment_batch_fn fn,
                                        void *arg);
void segment_scan_next(struct segment_scan *sc);
void segment_scan_free(struct segment_scan *sc);

/* ---- additions (additive to the contract above) ------------------------- */

/*
 * s may be NULL in segment_scan_start(): every contact, without reading any
 * contact field (the fastest walk; a contact deleted between the id list and
 * the callback may still be delivered).  A batch callback may call
 * segment_scan_next() or segment_scan_free() from inside itself.  Every step
 * is delivered, also one with no match (n == 0), so a consumer can record
 * the cursor.  segment_parse() accepts {"match": COND, "name": ..., ...} or a
 * bare COND; *field may point into a static buffer valid until the next
 * segment_parse() call.
 */

/* Options for segment_scan_start_opts(); zero = segment_scan_start(). */
struct segment_scan_opts {
	/* Contact hash fields a consumer wants with each match (e.g. "name",
	 * "a:sms"): read with segment_scan_value() during the callback. */
	const char *const *fields;
	size_t nfields;
	/* Read whole contacts (HGETALL) and hand out their API form with
	 * segment_scan_contact() (exports). */
	int whole;
};

struct segment_scan *segment_scan_start_opts(struct store *st, const struct segment *s, int64_t now,
                                             const char *cursor, size_t batch,
                                             const struct segment_scan_opts *o, segment_batch_fn fn,
                                             void *arg);
/* During a batch callback: requested field k of match i (NULL when absent). */
const char *segment_scan_value(const struct segment_scan *sc, size_t i, size_t k);
/* During a batch callback with opts.whole: match i as store_contact_json()
 * gives it (borrowed; valid until the callback returns). */
json_t *segment_scan_contact(const struct segment_scan *sc, size_t i);
/* Contacts examined so far (matches or not), including the batch being
 * delivered. */
uint64_t segment_scan_examined(const struct segment_scan *sc);
/*
 * A calendar date as people type it, into the cdate.h form: "1990-05-17",
 * "1990/5/17", "۱۳۶۹/۰۲/۲۷" (Persian digits; a year below 1700 is Jalali),
 * "j:1369-02-27", "--05-17".  0, or -EINVAL (bad syntax or impossible date).
 */
struct cdate;
int segment_date_lenient(const char *in, struct cdate *out);
/* A saved segment's id: 1..64 of A-Z a-z 0-9 _ - (what campaigns accept). */
#define SEGMENT_ID_MAX 64
int segment_id_valid(const char *id);
/* 1 when the definition reads no contact field and no engagement set (it
 * matches everyone: "match": {} or {"all": []}). */
int segment_is_all(const struct segment *s);

#endif
