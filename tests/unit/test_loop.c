/* test_loop.c: the loop's clock-step detection (the wall clock against the monotonic);
 * commits synced on the sync thread before their waiters are told, in commit order. */
#include "engine/loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/alert.h"
#include "engine/store.h"
#include "tests/unit/test.h"

struct told {
    int order[8];
    int n, oks;
};

static struct told told;

static void
on_told(void *arg, int ok)
{
    told.order[told.n++] = (int)(intptr_t)arg;
    told.oks += ok;
}

/* One alert written by a writer that waits for its commit. */
static int
write_waited(struct store_tenant *t, const char *id, int tag)
{
    struct alert a;
    char *err = NULL;
    int dup = 0, rc;

    memset(&a, 0, sizeof(a));
    a.source = xstrdup("it.loop");
    a.source_id = xstrdup(id);
    a.title = xstrdup(id);
    a.outcome = xstrdup("unknown");
    rc = loop_write(t, &err) == 0 && store_alert_insert(t, &a, &dup, &err) == 0 ? 0 : -1;
    if (rc == 0) {
        loop_after_commit(t, on_told, (void *)(intptr_t)tag);
    }
    alert_free(&a);
    free(err);
    return rc;
}

static void
test_clock_steps(void)
{
    int64_t step = -1;
    int64_t wall = 1796400000000LL, mono = 5000000; /* ms since the epoch; us */

    loop_free();                                      /* forget any earlier baseline */
    T_EQ_INT(loop_clock_check(wall, mono, &step), 0); /* the baseline */
    /* both clocks advance together, with a little jitter: no step */
    T_EQ_INT(loop_clock_check(wall + 1000, mono + 1000000 + 300, &step), 0);
    T_EQ_INT(loop_clock_check(wall + 2500, mono + 2500000 - 900000, &step), 0); /* 0.9 s */
    /* the wall clock jumps 10 s forward */
    T_EQ_INT(loop_clock_check(wall + 13500, mono + 3500000, &step), 1);
    T_ASSERT(step >= 9000 && step <= 11000);
    /* then 5 s back */
    T_EQ_INT(loop_clock_check(wall + 9500, mono + 4500000, &step), 1);
    T_ASSERT(step <= -5000 && step >= -7000);
    /* and runs steadily again */
    T_EQ_INT(loop_clock_check(wall + 10500, mono + 5500000, &step), 0);
    T_EQ_INT(step, 0);
}

/* With the sync thread, a commit's waiters are told in a later iteration, once its WAL
 * is synced, in commit order and with ok; the rows are committed meanwhile; the drain at
 * the end tells the waiters of a commit still waiting for its sync. */
static void
test_sync_thread(void)
{
    char dir[] = "/tmp/kagari-loop-XXXXXX";
    struct store *st = NULL;
    struct store_tenant *t = NULL;
    char *err = NULL;
    unsigned long long u = 0, synced = 0;

    T_REQUIRE(mkdtemp(dir) != NULL);
    T_REQUIRE(store_open(dir, &st, &err) == 0);
    T_REQUIRE(store_tenant_add(st, "acme", "ACME", NULL, &err) == 0);
    T_REQUIRE(store_tenant_open(st, "acme", &t, &err) == 0);
    loop_free();
    T_REQUIRE(loop_init(&err) == 0);
    T_REQUIRE(loop_sync_thread(&err) == 0);
    memset(&told, 0, sizeof(told));
    T_ASSERT(write_waited(t, "a-1", 1) == 0);
    (void)loop_iterate(0); /* commits; the sync runs on its thread */
    T_EQ_INT(told.n, 0);   /* nobody told within the iteration of the commit */
    T_ASSERT(write_waited(t, "a-2", 2) == 0);
    (void)loop_iterate(0);
    for (int i = 0; i < 500 && told.n < 2; i++) {
        (void)loop_iterate(0);
        usleep(2000);
    }
    T_EQ_INT(told.n, 2);
    T_EQ_INT(told.order[0], 1);
    T_EQ_INT(told.order[1], 2);
    T_EQ_INT(told.oks, 2);
    store_tx_sync_counts(t, &u, &synced);
    T_ASSERT(synced == 2 && u == 0);
    /* a commit whose sync is pending when the loop ends: told by the drain */
    T_ASSERT(write_waited(t, "a-3", 3) == 0);
    (void)loop_iterate(0);
    loop_free();
    T_EQ_INT(told.n, 3);
    T_EQ_INT(told.order[2], 3);
    T_EQ_INT(told.oks, 3);
    store_tenant_close(t);
    store_close(st);
    free(err);
    test_rm_tree(dir);
}

TEST_LIST = {
    { "clock_steps", test_clock_steps },
    { "sync_thread", test_sync_thread },
    { NULL, NULL },
};
