/* work.c: a small thread pool whose completions come back to the loop through a pipe. */
#include "engine/work.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct job {
    work_fn fn;
    work_done_fn done;
    void *arg;
    int cancelled;
    struct job *next;
};

struct work {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t *threads;
    int nthreads;
    int stop;
    struct job *queue, *queue_tail; /* waiting for a thread */
    struct job *finished;           /* waiting for the loop */
    int queued, running, max_queued;
    int pipe_rd, pipe_wr;
    struct event *ev;
    int delivering; /* work_deliver is running (loop thread): no nested delivery */
};

/* Deliver the finished jobs' callbacks (loop thread). */
static void
work_deliver(struct work *w)
{
    struct job *list;

    if (w->delivering) {
        return; /* a callback polled: the outer delivery keeps completion order */
    }
    w->delivering = 1;
    pthread_mutex_lock(&w->mu);
    list = w->finished;
    w->finished = NULL;
    pthread_mutex_unlock(&w->mu);
    /* The list is newest first: reverse it so callbacks run in completion order. */
    {
        struct job *rev = NULL;

        while (list != NULL) {
            struct job *next = list->next;

            list->next = rev;
            rev = list;
            list = next;
        }
        list = rev;
    }
    while (list != NULL) {
        struct job *next = list->next;

        list->done(list->arg, list->cancelled);
        free(list);
        list = next;
    }
    w->delivering = 0;
}

void
work_poll(struct work *w)
{
    if (w != NULL) {
        work_deliver(w);
    }
}

static void
work_on_pipe(evutil_socket_t fd, short what, void *arg)
{
    char drain[64];

    (void)what;
    while (read(fd, drain, sizeof(drain)) > 0) {
    }
    work_deliver(arg);
}

static void *
work_main(void *arg)
{
    struct work *w = arg;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        struct job *j;

        while (w->queue == NULL && !w->stop) {
            pthread_cond_wait(&w->cv, &w->mu);
        }
        if (w->queue == NULL) {
            break;
        }
        j = w->queue;
        w->queue = j->next;
        if (w->queue == NULL) {
            w->queue_tail = NULL;
        }
        w->queued--;
        w->running++;
        pthread_mutex_unlock(&w->mu);
        j->fn(j->arg);
        pthread_mutex_lock(&w->mu);
        w->running--;
        j->next = w->finished;
        w->finished = j;
        if (write(w->pipe_wr, "x", 1) == -1 && errno != EAGAIN) {
            /* The pipe is full or gone: the loop drains it anyway (or work_free does). */
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

struct work *
work_new(struct event_base *base, int nthreads, int max_queued, char **errp)
{
    struct work *w = xcalloc(1, sizeof(*w));
    int fds[2];

    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) == -1) {
        kg_err(errp, "work: pipe: %s", strerror(errno));
        free(w);
        return NULL;
    }
    w->pipe_rd = fds[0];
    w->pipe_wr = fds[1];
    w->max_queued = max_queued;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->ev = event_new(base, w->pipe_rd, EV_READ | EV_PERSIST, work_on_pipe, w);
    event_add(w->ev, NULL);
    w->threads = xcalloc((size_t)nthreads, sizeof(*w->threads));
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&w->threads[i], NULL, work_main, w) != 0) {
            kg_err(errp, "work: cannot start a thread");
            work_free(w);
            return NULL;
        }
        w->nthreads++;
    }
    return w;
}

int
work_submit(struct work *w, work_fn fn, work_done_fn done, void *arg)
{
    struct job *j;

    pthread_mutex_lock(&w->mu);
    if (w->queued >= w->max_queued) {
        pthread_mutex_unlock(&w->mu);
        return -1;
    }
    j = xcalloc(1, sizeof(*j));
    j->fn = fn;
    j->done = done;
    j->arg = arg;
    if (w->queue_tail != NULL) {
        w->queue_tail->next = j;
    } else {
        w->queue = j;
    }
    w->queue_tail = j;
    w->queued++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

int
work_pending(const struct work *w)
{
    return w->queued + w->running;
}

void
work_free(struct work *w)
{
    struct job *q;

    if (w == NULL) {
        return;
    }
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    q = w->queue; /* cancel what no thread has taken */
    w->queue = w->queue_tail = NULL;
    w->queued = 0;
    while (q != NULL) {
        struct job *next = q->next;

        q->cancelled = 1;
        q->next = w->finished;
        w->finished = q;
        q = next;
    }
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->nthreads; i++) {
        pthread_join(w->threads[i], NULL);
    }
    work_deliver(w);
    if (w->ev != NULL) {
        event_free(w->ev);
    }
    close(w->pipe_rd);
    close(w->pipe_wr);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->threads);
    free(w);
}
