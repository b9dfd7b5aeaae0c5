/* loop.h: the one libevent loop and its iteration: events, then the work phases (intake
 * batches, playbook runs), then one commit per dirty tenant database, then the callbacks
 * that wait for that commit (replies, effects that may only start once journaled). */
#ifndef KAGARI_LOOP_H
#define KAGARI_LOOP_H

#include <stdint.h>

#include <event2/event.h>

#include "engine/store.h"

int loop_init(char **errp) KG_WUR;
struct event_base *loop_base(void);
void loop_free(void);

/* The work phases of an iteration, in the order they run: alerts are admitted (stored,
 * routed, their runs created) before the scheduler gives runs CPU, so that a run created
 * in this iteration may finish before the commit that acknowledges its alert. */
enum loop_phase {
    LOOP_PHASE_ADMIT = 0, /* intake batches of every source */
    LOOP_PHASE_RUNS,      /* the run scheduler */
};
/* A phase runs after every iteration's events, by rank (then in the order added). It
 * returns 1 when it still has work (the loop will not block waiting for events), else
 * 0. */
void loop_add_phase(enum loop_phase rank, int (*fn)(void *arg), void *arg);

/* Make the next iteration run its phases without waiting for an event: something
 * became ready outside the phases (an effect finished in an after-commit callback). */
void loop_wake(void);

/* Open (if needed) the iteration's transaction on t and mark it for commit. */
int loop_write(struct store_tenant *t, char **errp) KG_WUR;
/* The same for writes nobody waits on (a run's progress: a replay redoes it safely):
 * the commit may be put off for up to 10 ms so that several iterations share one
 * fsync. A later loop_write or loop_after_commit on t makes it due at once. */
int loop_write_lazy(struct store_tenant *t, char **errp) KG_WUR;
/* The same with a longer delay of ms, for records nobody is ever told were stored
 * (syslog's events): a batch shares its commit (and the index pages it rewrites) with the
 * next ones; any other writer of t with a shorter delay, or one that waits, brings the
 * commit forward. When no other writer joins the transaction, its commit does not wait
 * for the disk (store_tx_begin_unsynced; durable against a crash of the process, and
 * against a power cut once the WAL is next synced). */
int loop_write_unsynced(struct store_tenant *t, int ms, char **errp) KG_WUR;
/* Sync commits on a thread of their own from now on (the daemon; after loop_init): a
 * commit's waiters (loop_after_commit) are then called back once its WAL is on the disk,
 * in a later iteration, and the loop does not wait for the disk meanwhile. */
int loop_sync_thread(char **errp) KG_WUR;
/* Tell the waiters of commits whose sync has finished, now, rather than at the loop's
 * next wait for events (called between the admit step's batches and before commits). */
void loop_sync_poll(void);
/* Call fn(arg, ok) after this iteration's commit of t (ok = 0 when it failed and was
 * rolled back). Requires loop_write(t) in this iteration. */
void loop_after_commit(struct store_tenant *t, void (*fn)(void *arg, int ok), void *arg);
/* The same without making the commit due at once: fn waits for the commit whenever it
 * comes (within the lazy delay). For writes whose waiter is in no hurry (a batch of
 * events: the sender is not answered). */
void loop_after_commit_lazy(struct store_tenant *t, void (*fn)(void *arg, int ok), void *arg);
/* Compare the wall clock with the monotonic one (each iteration does, logging
 * clock.step): 1 with *step_ms when the wall clock jumped by 2 s or more since the last
 * check, either way (an operator or NTP stepping it), else 0. */
int loop_clock_check(int64_t wall_ms, int64_t mono_us, int64_t *step_ms);
/* Call fn(arg) whenever an iteration finds that the wall clock stepped (loop_clock_check),
 * so that a timer armed for a wall-clock deadline is armed again. Registering the same
 * fn and arg twice is a no-op; at most 8 (loop_free forgets them). */
void loop_on_clock_step(void (*fn)(void *arg), void *arg);

/* How many tenant databases failed their last commit (disk full, I/O errors): the
 * daemon is degraded while it is not 0. */
size_t loop_commits_failing(void);
/* Wall-clock time (ms since the epoch) of the last successful commit; 0 before any. */
int64_t loop_last_commit_ms(void);
/* Called (before the after-commit callbacks) when a commit of t failed: what is in
 * memory of t may be ahead of its database. Also called when t became locked (below),
 * outside the phases, and again when the lock is gone (loop_locked(t) is 0 by then). */
void loop_set_commit_failed(void (*fn)(struct store_tenant *t, void *arg), void *arg);

/* The loop never waits for a lock another process holds on a tenant database (a backup
 * tool, an operator's sqlite3 shell in BEGIN IMMEDIATE): SQLite waits at most
 * LOOP_BUSY_MS (enough to ride out the checkpointer's brief truncation of the WAL), then
 * the tenant is "locked". Until a probe, every LOOP_LOCK_RETRY_MS and without any wait,
 * finds its write lock free, loop_write and loop_write_lazy on it fail at once and its
 * runs are out of memory (dropped, replayed from the database once it is free); other
 * tenants are unaffected. */
#define LOOP_BUSY_MS 10
#define LOOP_LOCK_RETRY_MS 100
int loop_locked(const struct store_tenant *t);
size_t loop_tenants_locked(void);

/* One iteration: wait for events (when block) and handle them, run the phases, commit.
 * Returns 1 when a phase has more work, 0 when idle, -1 on a loop failure. */
int loop_iterate(int block);
/* Run until loop_stop(); the iteration in progress completes (commits included). */
int loop_run(void);
void loop_stop(void);
int loop_stopping(void);

#endif
