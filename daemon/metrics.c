/*
 * metrics.c - histogram arithmetic and Prometheus text formatting.  Owns no
 * state: histograms live inside the modules that observe them.
 */
#include "metrics.h"

/* Upper bounds in seconds; +Inf is implicit. */
static const double bounds_s[HIST_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                              0.1,   0.25,   0.5,   1,    5,     30};

void hist_observe(struct hist *h, int64_t ms)
{
	if (ms < 0)
		ms = 0;
	double s = (double)ms / 1000.0;
	h->count++;
	h->sum_s += s;
	for (int i = 0; i < HIST_BUCKETS; i++)
		if (s <= bounds_s[i]) {
			h->bucket[i]++;
			return;
		}
}

void metric_header(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void hist_render(struct buf *b, const char *name, const char *labels, const struct hist *h)
{
	const char *sep = labels && *labels ? "," : "";
	labels = labels ? labels : "";
	uint64_t cum = 0;
	for (int i = 0; i < HIST_BUCKETS; i++) {
		cum += h->bucket[i];
		buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds_s[i],
		           (unsigned long long)cum);
	}
	buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
	           (unsigned long long)h->count);
	if (*labels) {
		buf_printf(b, "%s_sum{%s} %.6f\n", name, labels, h->sum_s);
		buf_printf(b, "%s_count{%s} %llu\n", name, labels, (unsigned long long)h->count);
	} else {
		buf_printf(b, "%s_sum %.6f\n", name, h->sum_s);
		buf_printf(b, "%s_count %llu\n", name, (unsigned long long)h->count);
	}
}
