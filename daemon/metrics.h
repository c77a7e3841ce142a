/*
 * metrics.h - Prometheus text exposition helpers: a fixed-bucket latency
 * histogram and the writers for HELP/TYPE headers and histogram series.
 * Counters and gauges stay in the modules that own them; /metrics
 * (api_health.c) reads them and renders through these helpers.
 */
#ifndef CLUBD_METRICS_H
#define CLUBD_METRICS_H

#include <stdint.h>

#include "util.h"

#define HIST_BUCKETS 12

struct hist {
	uint64_t bucket[HIST_BUCKETS]; /* not cumulative; rendered cumulatively */
	uint64_t count;
	double sum_s;
};

/* Record one observation in milliseconds. */
void hist_observe(struct hist *h, int64_t ms);
/* "# HELP name help\n# TYPE name type\n" */
void metric_header(struct buf *b, const char *name, const char *type, const char *help);
/* name_bucket{labels,le="..."} ..., name_sum, name_count; labels may be "". */
void hist_render(struct buf *b, const char *name, const char *labels, const struct hist *h);

#endif
