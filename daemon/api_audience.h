/*
 * api_audience.h - what the two audience handler files share:
 * api_segments.c loads saved segments for api_import.c's segment export,
 * and api_import.c streams exports for both.
 */
#ifndef CLUBD_API_AUDIENCE_H
#define CLUBD_API_AUDIENCE_H

#include "api.h"
#include "segment.h"

/*
 * Read saved segment id and call cb with it parsed (cb owns s), or answer
 * 404 / 503 and not call cb.  Holds rq meanwhile.  id must have passed
 * segment_id_valid().
 */
typedef void (*api_segment_cb)(struct api_req *rq, struct segment *s, const char *id);
void api_segment_load(struct api_req *rq, const char *id, api_segment_cb cb);

/*
 * Answer with a streamed export of the contacts s selects (NULL: every
 * contact; s is taken) in the format the request's ?format= names (csv by
 * default, or ndjson); name is used for the download's file name.  Answers
 * 400 itself on a bad format.
 */
void api_export_begin(struct api_req *rq, struct segment *s, const char *name);

#endif
