/* test_limiter.c: token buckets and the priority queue in real time on the engine's
 * loop. Bounds are generous: only ordering and "waited at least" are asserted tightly. */
#include "connectors/limiter.h"

#include <time.h>

#include <event2/event.h>

#include "engine/log.h"
#include "engine/loop.h"
#include "engine/util.h"
#include "tests/unit/test.h"

#define MAX_ORDER 16

static int in_acquire; /* set around limiter_acquire: callbacks must never see it */
static int reentered;  /* a callback ran while in_acquire was set */
static int order[MAX_ORDER];
static int norder;
static int64_t called_us[MAX_ORDER];

struct waiter {
    int id;
    int calls;
    struct limiter_wait *w;
};

static void
on_token(void *arg)
{
    struct waiter *wt = arg;

    if (in_acquire) {
        reentered = 1;
    }
    wt->calls++;
    wt->w = NULL;
    if (norder < MAX_ORDER) {
        called_us[norder] = util_mono_us();
        order[norder++] = wt->id;
    }
}

static int
acquire(const char *key, enum limiter_prio prio, struct waiter *wt)
{
    int r;

    in_acquire = 1;
    r = limiter_acquire(key, prio, on_token, wt, &wt->w);
    in_acquire = 0;
    return r;
}

static void
setup(void)
{
    char *err = NULL;

    log_set_level(KG_LOG_ERR);
    norder = 0;
    reentered = 0;
    if (loop_init(&err) == -1) {
        T_FAIL_("loop_init: %s", err);
        free(err);
    }
}

static void
teardown(void)
{
    limiter_shutdown();
    loop_free();
    log_set_level(KG_LOG_INFO);
}

/* Run the loop until n callbacks have run or ms have passed. */
static void
run_until(int n, int ms)
{
    int64_t end = util_mono_us() + (int64_t)ms * 1000;

    while (norder < n && util_mono_us() < end) {
        event_base_loop(loop_base(), EVLOOP_ONCE | EVLOOP_NONBLOCK);
        if (norder < n) {
            struct timeval tv = { 0, 2000 };

            /* Block briefly so this loop does not spin. */
            event_base_loopexit(loop_base(), &tv);
            event_base_dispatch(loop_base());
        }
    }
}

static void
test_burst_then_wait(void)
{
    struct waiter w[6];
    int64_t t0;

    setup();
    memset(w, 0, sizeof(w));
    limiter_define("k.burst", 10, 5);
    t0 = util_mono_us();
    for (int i = 0; i < 5; i++) {
        w[i].id = i;
        T_EQ_INT(acquire("k.burst", LIMITER_NORMAL, &w[i]), 0);
        T_ASSERT(w[i].w == NULL);
    }
    w[5].id = 5;
    T_EQ_INT(acquire("k.burst", LIMITER_NORMAL, &w[5]), 1);
    T_ASSERT(w[5].w != NULL);
    T_EQ_INT(limiter_waiting("k.burst"), 1);
    T_EQ_INT(limiter_waiting(NULL), 1);
    T_EQ_INT(w[5].calls, 0);
    run_until(1, 2000);
    T_EQ_INT(norder, 1);
    T_EQ_INT(w[5].calls, 1);
    /* 10/s: the next token is due 100 ms after the burst was used. */
    T_ASSERT(called_us[0] - t0 >= 80000);
    T_ASSERT(called_us[0] - t0 < 900000);
    T_EQ_INT(limiter_waiting("k.burst"), 0);
    T_EQ_INT(reentered, 0);
    teardown();
}

static void
test_priorities(void)
{
    struct waiter first = { 100, 0, NULL }, w[5];
    static const int expect[] = { 4, 3, 0, 1, 2 };

    setup();
    memset(w, 0, sizeof(w));
    limiter_define("k.prio", 40, 1);
    T_EQ_INT(acquire("k.prio", LIMITER_ENRICH, &first), 0);
    for (int i = 0; i < 3; i++) {
        w[i].id = i;
        T_EQ_INT(acquire("k.prio", LIMITER_ENRICH, &w[i]), 1);
    }
    w[3].id = 3;
    T_EQ_INT(acquire("k.prio", LIMITER_NORMAL, &w[3]), 1);
    w[4].id = 4;
    T_EQ_INT(acquire("k.prio", LIMITER_CONTAIN, &w[4]), 1);
    T_EQ_INT(limiter_waiting("k.prio"), 5);
    run_until(5, 3000);
    T_REQUIRE(norder == 5);
    for (int i = 0; i < 5; i++) {
        T_EQ_INT(order[i], expect[i]);
    }
    /* Served one token at a time, not all at once. */
    T_ASSERT(called_us[4] - called_us[0] >= 60000);
    T_EQ_INT(limiter_waiting("k.prio"), 0);
    T_EQ_INT(reentered, 0);
    teardown();
}

static void
test_two_buckets(void)
{
    struct waiter w[4];
    int64_t t0;

    setup();
    memset(w, 0, sizeof(w));
    /* A generous short-term bucket and a tight long-term one: both must pass. */
    limiter_define("k.two", 1000, 3);
    limiter_define("k.two", 5, 2);
    /* Defining the same rate again changes its burst instead of adding a bucket. */
    limiter_define("k.two", 5, 2);
    t0 = util_mono_us();
    T_EQ_INT(acquire("k.two", LIMITER_NORMAL, &w[0]), 0);
    T_EQ_INT(acquire("k.two", LIMITER_NORMAL, &w[1]), 0);
    w[2].id = 2;
    T_EQ_INT(acquire("k.two", LIMITER_NORMAL, &w[2]), 1);
    run_until(1, 2000);
    T_EQ_INT(w[2].calls, 1);
    /* 5/s: about 200 ms for the tight bucket's next token. */
    T_ASSERT(called_us[0] - t0 >= 150000);
    teardown();

    /* The other way round: the short-term bucket is the one that blocks. */
    setup();
    memset(w, 0, sizeof(w));
    limiter_define("k.two", 10, 1);
    limiter_define("k.two", 0.001, 100);
    t0 = util_mono_us();
    T_EQ_INT(acquire("k.two", LIMITER_NORMAL, &w[0]), 0);
    w[1].id = 1;
    T_EQ_INT(acquire("k.two", LIMITER_NORMAL, &w[1]), 1);
    run_until(1, 2000);
    T_EQ_INT(w[1].calls, 1);
    T_ASSERT(called_us[0] - t0 >= 80000);
    teardown();
}

static void
test_cancel_and_counts(void)
{
    struct waiter a = { 1, 0, NULL }, b = { 2, 0, NULL }, c = { 3, 0, NULL }, x = { 0, 0, NULL };
    struct waiter other = { 9, 0, NULL };

    setup();
    limiter_define("k.c", 20, 1);
    limiter_define("k.other", 20, 1);
    T_EQ_INT(acquire("k.c", LIMITER_NORMAL, &x), 0);
    T_EQ_INT(acquire("k.c", LIMITER_NORMAL, &a), 1);
    T_EQ_INT(acquire("k.c", LIMITER_NORMAL, &b), 1);
    T_EQ_INT(acquire("k.c", LIMITER_ENRICH, &c), 1);
    T_EQ_INT(acquire("k.other", LIMITER_NORMAL, &x), 0);
    T_EQ_INT(acquire("k.other", LIMITER_NORMAL, &other), 1);
    T_EQ_INT(limiter_waiting("k.c"), 3);
    T_EQ_INT(limiter_waiting("k.other"), 1);
    T_EQ_INT(limiter_waiting("k.none"), 0);
    T_EQ_INT(limiter_waiting(NULL), 4);
    /* Cancel the head and the tail. */
    limiter_cancel(a.w);
    limiter_cancel(c.w);
    limiter_cancel(NULL);
    T_EQ_INT(limiter_waiting("k.c"), 1);
    T_EQ_INT(limiter_waiting(NULL), 2);
    run_until(2, 2000);
    T_EQ_INT(norder, 2);
    T_EQ_INT(a.calls, 0);
    T_EQ_INT(b.calls, 1);
    T_EQ_INT(c.calls, 0);
    T_EQ_INT(other.calls, 1);
    T_EQ_INT(limiter_waiting(NULL), 0);
    /* Cancelling the only waiter leaves nothing scheduled to call. */
    a.w = NULL;
    if (acquire("k.c", LIMITER_NORMAL, &a) == 1) {
        limiter_cancel(a.w);
    }
    run_until(3, 200);
    T_EQ_INT(a.calls, 0);
    T_EQ_INT(limiter_waiting(NULL), 0);
    /* Keys without buckets always pass. */
    x.w = (struct limiter_wait *)&x;
    T_EQ_INT(acquire("k.none", LIMITER_ENRICH, &x), 0);
    T_ASSERT(x.w == NULL);
    teardown();
}

/* A refunded token goes to the queue on the next loop pass, not from limiter_refund. */
static void
test_refund(void)
{
    struct waiter x = { 0, 0, NULL }, a = { 1, 0, NULL };

    setup();
    limiter_define("k.r", 0, 1); /* never refills */
    T_EQ_INT(acquire("k.r", LIMITER_NORMAL, &x), 0);
    T_EQ_INT(acquire("k.r", LIMITER_NORMAL, &a), 1);
    run_until(1, 100);
    T_EQ_INT(a.calls, 0);
    in_acquire = 1;
    limiter_refund("k.r");
    limiter_refund("k.unknown");
    in_acquire = 0;
    T_EQ_INT(a.calls, 0);
    run_until(1, 1000);
    T_EQ_INT(a.calls, 1);
    T_EQ_INT(reentered, 0);
    /* Refunds cap at the burst: two refunds give one token. */
    limiter_refund("k.r");
    limiter_refund("k.r");
    T_EQ_INT(acquire("k.r", LIMITER_NORMAL, &x), 0);
    T_EQ_INT(acquire("k.r", LIMITER_NORMAL, &a), 1);
    teardown();
}

/* A newcomer with a better priority than the head takes a token that the timer has not
 * handed out yet; an equal one queues behind. */
static void
test_newcomer(void)
{
    struct waiter x = { 0, 0, NULL }, e = { 1, 0, NULL }, n = { 2, 0, NULL };
    struct waiter cn = { 3, 0, NULL };
    struct timespec ts = { 0, 150 * 1000000L };

    setup();
    limiter_define("k.n", 10, 1);
    T_EQ_INT(acquire("k.n", LIMITER_NORMAL, &x), 0);
    T_EQ_INT(acquire("k.n", LIMITER_ENRICH, &e), 1);
    nanosleep(&ts, NULL); /* a token is now due but the loop has not run */
    T_EQ_INT(acquire("k.n", LIMITER_ENRICH, &n), 1);
    T_EQ_INT(acquire("k.n", LIMITER_CONTAIN, &cn), 0);
    run_until(2, 2000);
    T_EQ_INT(norder, 2);
    T_EQ_INT(order[0], 1);
    T_EQ_INT(order[1], 2);
    teardown();
}

/* Callbacks that queue again and cancel others; a shutdown from a callback. */
static struct waiter chain_b;

static void
on_token_chain(void *arg)
{
    struct waiter *wt = arg;

    on_token(arg);
    if (wt->id == 1) {
        /* Cancel the next waiter and queue ourselves again. */
        int r;

        limiter_cancel(chain_b.w);
        chain_b.w = NULL;
        in_acquire = 1;
        r = limiter_acquire("k.ch", LIMITER_NORMAL, on_token, wt, &wt->w);
        in_acquire = 0;
        if (r == 0) {
            on_token(wt);
        }
    } else if (wt->id == 7) {
        limiter_shutdown();
    }
}

static void
test_callback_reentry(void)
{
    struct waiter x = { 0, 0, NULL }, a = { 1, 0, NULL }, s = { 7, 0, NULL };
    struct waiter t = { 8, 0, NULL };

    setup();
    memset(&chain_b, 0, sizeof(chain_b));
    chain_b.id = 2;
    limiter_define("k.ch", 50, 1);
    T_EQ_INT(acquire("k.ch", LIMITER_NORMAL, &x), 0);
    in_acquire = 1;
    T_EQ_INT(limiter_acquire("k.ch", LIMITER_NORMAL, on_token_chain, &a, &a.w), 1);
    T_EQ_INT(limiter_acquire("k.ch", LIMITER_NORMAL, on_token, &chain_b, &chain_b.w), 1);
    in_acquire = 0;
    run_until(2, 2000);
    T_EQ_INT(norder, 2);
    T_EQ_INT(order[0], 1);
    T_EQ_INT(order[1], 1);
    T_EQ_INT(chain_b.calls, 0);
    T_EQ_INT(reentered, 0);

    /* Shut down from a callback while others wait: nothing else is called. */
    limiter_define("k.sd", 50, 1);
    T_EQ_INT(acquire("k.sd", LIMITER_NORMAL, &x), 0);
    T_EQ_INT(limiter_acquire("k.sd", LIMITER_NORMAL, on_token_chain, &s, &s.w), 1);
    T_EQ_INT(acquire("k.sd", LIMITER_NORMAL, &t), 1);
    run_until(3, 2000);
    T_EQ_INT(s.calls, 1);
    T_EQ_INT(t.calls, 0);
    T_EQ_INT(limiter_waiting(NULL), 0);
    teardown();
}

/* Shutdown with waiters frees them without calling them; the limiter works afterwards
 * on a new loop. */
static void
test_shutdown_with_waiters(void)
{
    struct waiter x = { 0, 0, NULL }, a = { 1, 0, NULL }, b = { 2, 0, NULL };

    setup();
    limiter_define("k.s", 1, 1);
    T_EQ_INT(acquire("k.s", LIMITER_NORMAL, &x), 0);
    T_EQ_INT(acquire("k.s", LIMITER_NORMAL, &a), 1);
    T_EQ_INT(acquire("k.s", LIMITER_CONTAIN, &b), 1);
    teardown();
    T_EQ_INT(a.calls + b.calls, 0);
    T_EQ_INT(limiter_waiting(NULL), 0);

    setup();
    limiter_define("k.s", 20, 1);
    T_EQ_INT(acquire("k.s", LIMITER_NORMAL, &x), 0);
    T_EQ_INT(acquire("k.s", LIMITER_NORMAL, &a), 1);
    run_until(1, 2000);
    T_EQ_INT(a.calls, 1);
    teardown();
}

TEST_LIST = {
    { "burst_then_wait", test_burst_then_wait },
    { "priorities", test_priorities },
    { "two_buckets", test_two_buckets },
    { "cancel_and_counts", test_cancel_and_counts },
    { "refund", test_refund },
    { "newcomer", test_newcomer },
    { "callback_reentry", test_callback_reentry },
    { "shutdown_with_waiters", test_shutdown_with_waiters },
    { NULL, NULL },
};
