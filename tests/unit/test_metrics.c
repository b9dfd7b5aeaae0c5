/* test_metrics.c: the metrics registry and its text helpers. */
#include "engine/metrics.h"

#include <stdlib.h>
#include <string.h>

#include "tests/unit/test.h"

static void
write_a(struct buf *b, void *arg)
{
    metrics_counter(b, "kagari_a_total", "A things.", *(unsigned long long *)arg);
}

static void
write_b(struct buf *b, void *arg)
{
    (void)arg;
    metrics_labelled(b, "kagari_b_total", "result", "ok", 2, 1);
    metrics_labelled(b, "kagari_b_total", "result", "failed", 1, 0);
    metrics_gauge(b, "kagari_b_open", NULL, 3);
}

static char *
render(void)
{
    struct buf b;

    buf_init(&b, 0);
    metrics_render(&b);
    return b.data ? buf_take(&b) : xstrdup("");
}

static void
test_registry(void)
{
    unsigned long long a = 7;
    char *out;

    metrics_reset();
    metrics_add(write_a, &a);
    metrics_add(write_b, NULL);
    metrics_add(write_a, &a); /* the same pair once */
    out = render();
    T_EQ_STR(out, "# HELP kagari_a_total A things.\n"
                  "# TYPE kagari_a_total counter\n"
                  "kagari_a_total 7\n"
                  "# TYPE kagari_b_total counter\n"
                  "kagari_b_total{result=\"ok\"} 2\n"
                  "kagari_b_total{result=\"failed\"} 1\n"
                  "# TYPE kagari_b_open gauge\n"
                  "kagari_b_open 3\n");
    free(out);
    a = 8; /* writers read the live value */
    metrics_remove(write_b, NULL);
    metrics_remove(write_b, NULL); /* unknown now: no-op */
    out = render();
    T_EQ_STR(out, "# HELP kagari_a_total A things.\n"
                  "# TYPE kagari_a_total counter\n"
                  "kagari_a_total 8\n");
    free(out);
    metrics_reset();
    out = render();
    T_EQ_STR(out, "");
    free(out);
}

TEST_LIST = {
    { "registry", test_registry },
    { NULL, NULL },
};
