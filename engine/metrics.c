/* metrics.c: the registry of metric writers and the Prometheus text helpers. */
#include "engine/metrics.h"

#include <stdlib.h>
#include <string.h>

struct writer {
    metrics_fn fn;
    void *arg;
};

static struct writer *writers;
static size_t nwriters;

void
metrics_add(metrics_fn fn, void *arg)
{
    for (size_t i = 0; i < nwriters; i++) {
        if (writers[i].fn == fn && writers[i].arg == arg) {
            return;
        }
    }
    writers = xrealloc(writers, (nwriters + 1) * sizeof(*writers));
    writers[nwriters].fn = fn;
    writers[nwriters].arg = arg;
    nwriters++;
}

void
metrics_remove(metrics_fn fn, void *arg)
{
    for (size_t i = 0; i < nwriters; i++) {
        if (writers[i].fn == fn && writers[i].arg == arg) {
            memmove(&writers[i], &writers[i + 1], (nwriters - i - 1) * sizeof(*writers));
            nwriters--;
            return;
        }
    }
}

void
metrics_render(struct buf *b)
{
    for (size_t i = 0; i < nwriters; i++) {
        writers[i].fn(b, writers[i].arg);
    }
}

void
metrics_reset(void)
{
    free(writers);
    writers = NULL;
    nwriters = 0;
}

static void
head(struct buf *b, const char *name, const char *help, const char *type)
{
    if (help != NULL) {
        (void)!buf_printf(b, "# HELP %s %s\n", name, help);
    }
    (void)!buf_printf(b, "# TYPE %s %s\n", name, type);
}

void
metrics_counter(struct buf *b, const char *name, const char *help, unsigned long long v)
{
    head(b, name, help, "counter");
    (void)!buf_printf(b, "%s %llu\n", name, v);
}

void
metrics_gauge(struct buf *b, const char *name, const char *help, double v)
{
    head(b, name, help, "gauge");
    (void)!buf_printf(b, "%s %.17g\n", name, v);
}

void
metrics_seconds(struct buf *b, const char *name, const char *help, unsigned long long us)
{
    head(b, name, help, "counter");
    (void)!buf_printf(b, "%s %.6f\n", name, (double)us / 1e6);
}

void
metrics_labelled(struct buf *b, const char *name, const char *label, const char *value,
                 unsigned long long v, int first)
{
    if (first) {
        head(b, name, NULL, "counter");
    }
    (void)!buf_printf(b, "%s{%s=\"%s\"} %llu\n", name, label, value, v);
}
