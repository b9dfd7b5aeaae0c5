/* test_work.c: the worker pool: jobs run off the loop thread, their completions come
 * back on the loop in order, a full queue refuses, freeing the pool cancels what was
 * queued and still delivers every completion once. */
#include "engine/work.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "tests/unit/test.h"

struct job {
    pthread_t ran_on;
    int done, cancelled;
    int order;
};

static int delivered;

static void
job_fn(void *arg)
{
    struct job *j = arg;

    usleep(20000);
    j->ran_on = pthread_self();
}

static void
job_done(void *arg, int cancelled)
{
    struct job *j = arg;

    j->done++;
    j->cancelled = cancelled;
    j->order = ++delivered;
}

static void
test_jobs_come_back(void)
{
    struct event_base *base = event_base_new();
    char *err = NULL;
    struct work *w = work_new(base, 1, 4, &err);
    struct job jobs[3];

    T_REQUIRE(w != NULL);
    memset(jobs, 0, sizeof(jobs));
    delivered = 0;
    for (int i = 0; i < 3; i++) {
        T_EQ_INT(work_submit(w, job_fn, job_done, &jobs[i]), 0);
    }
    T_EQ_INT(work_pending(w), 3);
    for (int spins = 0; delivered < 3 && spins < 500; spins++) {
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(2000);
    }
    for (int i = 0; i < 3; i++) {
        T_EQ_INT(jobs[i].done, 1);
        T_EQ_INT(jobs[i].cancelled, 0);
        T_EQ_INT(jobs[i].order, i + 1);
        T_ASSERT(!pthread_equal(jobs[i].ran_on, pthread_self()));
    }
    T_EQ_INT(work_pending(w), 0);
    work_free(w);
    event_base_free(base);
}

static struct work *polled_pool;

/* A completion that polls its own pool, as a callback run from a poll may. */
static void
job_done_polling(void *arg, int cancelled)
{
    job_done(arg, cancelled);
    work_poll(polled_pool);
}

/* work_poll runs the callbacks of the jobs finished so far without the loop, in
 * completion order; a callback that polls again runs nothing out of turn. */
static void
test_poll_delivers_in_order(void)
{
    struct event_base *base = event_base_new();
    char *err = NULL;
    struct work *w = work_new(base, 1, 8, &err);
    struct job jobs[4];

    T_REQUIRE(w != NULL);
    polled_pool = w;
    memset(jobs, 0, sizeof(jobs));
    delivered = 0;
    for (int i = 0; i < 4; i++) {
        T_EQ_INT(work_submit(w, job_fn, job_done_polling, &jobs[i]), 0);
    }
    for (int spins = 0; work_pending(w) > 0 && spins < 500; spins++) {
        usleep(2000);
    }
    T_EQ_INT(delivered, 0); /* finished, but nothing ran them yet */
    work_poll(w);           /* no event loop */
    T_EQ_INT(delivered, 4);
    for (int i = 0; i < 4; i++) {
        T_EQ_INT(jobs[i].done, 1);
        T_EQ_INT(jobs[i].order, i + 1);
    }
    event_base_loop(base, EVLOOP_NONBLOCK); /* the pipe's bytes: nothing twice */
    T_EQ_INT(delivered, 4);
    work_poll(NULL);
    work_free(w);
    event_base_free(base);
}

static void
test_full_queue_and_free(void)
{
    struct event_base *base = event_base_new();
    char *err = NULL;
    struct work *w = work_new(base, 1, 2, &err);
    struct job jobs[4];
    int refused = 0, cancelled = 0;

    T_REQUIRE(w != NULL);
    memset(jobs, 0, sizeof(jobs));
    delivered = 0;
    for (int i = 0; i < 4; i++) {
        refused += work_submit(w, job_fn, job_done, &jobs[i]) == -1;
    }
    /* one may already be running, so two or three fit */
    T_ASSERT(refused >= 1 && refused <= 2);
    work_free(w); /* no loop pass: every completion comes from work_free */
    for (int i = 0; i < 4 - refused; i++) {
        T_EQ_INT(jobs[i].done, 1);
        cancelled += jobs[i].cancelled;
    }
    T_EQ_INT(delivered, 4 - refused);
    T_ASSERT(cancelled <= 2);
    event_base_free(base);
}

TEST_LIST = {
    { "jobs_come_back", test_jobs_come_back },
    { "poll_delivers_in_order", test_poll_delivers_in_order },
    { "full_queue_and_free", test_full_queue_and_free },
    { NULL, NULL },
};
