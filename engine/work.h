/* work.h: slow CPU work (Argon2id password hashing, parsing large intake bodies) kept off
 * the event loop: a job runs on a worker thread, and its completion callback runs on the
 * loop. */
#ifndef KAGARI_WORK_H
#define KAGARI_WORK_H

#include <event2/event.h>

#include "engine/util.h"

struct work;

/* Run on a worker thread: must touch nothing the loop uses. */
typedef void (*work_fn)(void *arg);
/* Then on the loop thread; cancelled is 1 when the pool was freed before fn ran. It owns
 * arg from then on. */
typedef void (*work_done_fn)(void *arg, int cancelled);

/* A pool of nthreads threads with a queue of at most max_queued jobs. */
struct work *work_new(struct event_base *base, int nthreads, int max_queued, char **errp);
/* Queue a job. -1 when the queue is full (the caller answers "busy"). */
int work_submit(struct work *w, work_fn fn, work_done_fn done, void *arg) KG_WUR;
/* Run the done callbacks of the jobs finished so far now, without waiting for the pipe's
 * event (loop thread, between its own steps; never from inside such a callback's pool
 * being freed). */
void work_poll(struct work *w);
/* Jobs queued or running. */
int work_pending(const struct work *w);
/* Finish the running jobs, cancel the queued ones (their done runs with cancelled 1),
 * deliver every done, join the threads. NULL is a no-op. */
void work_free(struct work *w);

#endif
