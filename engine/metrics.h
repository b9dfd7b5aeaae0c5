/* metrics.h: the registry behind /metrics. Each module adds one writer that appends its
 * series in the Prometheus text format; the endpoint renders them all in the order
 * added. Series carry no tenant names: the endpoint is reachable by every sender. */
#ifndef KAGARI_METRICS_H
#define KAGARI_METRICS_H

#include "engine/util.h"

typedef void (*metrics_fn)(struct buf *b, void *arg);

/* Add fn(b, arg) to the registry (the same pair twice is added once). */
void metrics_add(metrics_fn fn, void *arg);
/* Remove it (a listener being freed); unknown pairs are a no-op. */
void metrics_remove(metrics_fn fn, void *arg);
/* Append every registered module's series to b. */
void metrics_render(struct buf *b);
/* Drop every writer (at shutdown). */
void metrics_reset(void);

/* Helpers for writers: one series with its HELP and TYPE lines. help may be NULL. */
void metrics_counter(struct buf *b, const char *name, const char *help, unsigned long long v);
void metrics_gauge(struct buf *b, const char *name, const char *help, double v);
/* A counter of seconds, from a total kept in microseconds. */
void metrics_seconds(struct buf *b, const char *name, const char *help, unsigned long long us);
/* A counter with one label: the TYPE line is written when first is set. */
void metrics_labelled(struct buf *b, const char *name, const char *label, const char *value,
                      unsigned long long v, int first);

#endif
