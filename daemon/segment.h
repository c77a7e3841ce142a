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

#endif
