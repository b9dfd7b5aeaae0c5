/* loop.c: the daemon's single event loop and its group commit. */
#include "engine/loop.h"

#include <stdlib.h>
#include <string.h>

#include "engine/log.h"
#include "engine/metrics.h"
#include "engine/store.h"
#include "engine/work.h"

struct after {
    void (*fn)(void *arg, int ok);
    void *arg;
};

struct dirty {
    struct store_tenant *t;
    struct after *cbs;
    size_t n, cap;
    int urgent;       /* someone waits for this commit: commit at the end of the iteration */
    int64_t since_us; /* when the transaction was opened */
    int64_t due_us;   /* when it must be committed at the latest */
};

#define LOOP_LAZY_US 10000 /* the longest a commit nobody waits for is put off */

struct phase {
    enum loop_phase rank;
    int (*fn)(void *arg);
    void *arg;
};

static struct event_base *base;
static struct phase phases[8];
static size_t nphases;
static struct dirty *dirty;
static size_t ndirty, dirty_cap;
static int stopping;
static void (*commit_failed_fn)(struct store_tenant *t, void *arg);
static void *commit_failed_arg;
static struct {
    unsigned long long iterations, commits, commit_failures, commit_us_total;
    unsigned long long syncs, sync_us_total;
} stats;
static struct work *syncer; /* syncs committed WALs off the loop (loop_sync_thread) */
static void commit_all(void);
static void sync_drain(void);
static struct event *lazy_timer;
static struct event *wake_ev;   /* makes the next iteration not wait for events */
static int64_t clock_offset_ms; /* wall clock minus monotonic clock, as last seen */
static int clock_offset_known;
static unsigned long long clock_steps;
static struct store_tenant **failing; /* tenants whose last commit failed */
static size_t nfailing;
static int64_t last_commit_ms;   /* wall clock of the last successful commit */
static int64_t fail_logged_us;   /* when store.commit_failed was last logged */
static unsigned long fail_quiet; /* failures not logged since */

#define LOOP_FAIL_LOG_US 10000000 /* repeated commit failures: one line per 10 s */
#define LOOP_CLOCK_STEP_MS 2000   /* a wall-clock jump this large is logged */
static int wake_active;

/* What re-reads the wall clock after it stepped: the timers counted in wall-clock time
 * (approval deadlines, escalation waits) were armed for a duration that is now wrong. */
#define LOOP_CLOCK_WATCHERS 8
static struct {
    void (*fn)(void *arg);
    void *arg;
} clock_watchers[LOOP_CLOCK_WATCHERS];
static size_t nclock_watchers;

/* Tenant databases locked by another process (see loop.h). */
struct locked {
    struct store_tenant *t;
    int64_t since_us;
    int64_t probed_us; /* last probe */
    int reset;         /* the commit-failed callback is still to be called */
};
static struct locked *locked;
static size_t nlocked;
static struct event *lock_timer;
static int64_t lock_logged_us;   /* when store.locked was last logged */
static unsigned long lock_quiet; /* lock events not logged since */
static unsigned long long lock_events, lock_refused;

static void loop_metrics(struct buf *b, void *arg);

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    wake_active = 0;
    free(failing);
    failing = NULL;
    nfailing = 0;
    clock_offset_known = 0; /* the iteration's phases do the work */
}

void
loop_wake(void)
{
    if (wake_ev != NULL && !wake_active) {
        wake_active = 1;
        event_active(wake_ev, EV_TIMEOUT, 1);
    }
}

int
loop_init(char **errp)
{
    struct event_config *ec = event_config_new();

    /* Precise timers: a sleep must not wake early by the coarse clock's granularity. */
    event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
    base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (base == NULL) {
        return kg_err(errp, "event_base_new failed");
    }
    metrics_add(loop_metrics, NULL);
    wake_ev = event_new(base, -1, 0, on_wake, NULL);
    return 0;
}

struct event_base *
loop_base(void)
{
    return base;
}

void
loop_on_clock_step(void (*fn)(void *arg), void *arg)
{
    for (size_t i = 0; i < nclock_watchers; i++) {
        if (clock_watchers[i].fn == fn && clock_watchers[i].arg == arg) {
            return;
        }
    }
    if (nclock_watchers == LOOP_CLOCK_WATCHERS) {
        log_err("loop.clock_watchers_full");
        return;
    }
    clock_watchers[nclock_watchers].fn = fn;
    clock_watchers[nclock_watchers].arg = arg;
    nclock_watchers++;
}

void
loop_free(void)
{
    sync_drain();
    nclock_watchers = 0;
    if (lazy_timer != NULL) {
        event_free(lazy_timer);
        lazy_timer = NULL;
    }
    if (wake_ev != NULL) {
        event_free(wake_ev);
        wake_ev = NULL;
    }
    if (lock_timer != NULL) {
        event_free(lock_timer);
        lock_timer = NULL;
    }
    free(locked);
    locked = NULL;
    nlocked = 0;
    wake_active = 0;
    for (size_t i = 0; i < ndirty; i++) {
        free(dirty[i].cbs);
    }
    free(dirty);
    dirty = NULL;
    ndirty = dirty_cap = 0;
    nphases = 0;
    stopping = 0;
    if (base != NULL) {
        event_base_free(base);
        base = NULL;
    }
}

void
loop_add_phase(enum loop_phase rank, int (*fn)(void *arg), void *arg)
{
    size_t i = nphases;

    if (nphases == sizeof(phases) / sizeof(phases[0])) {
        abort();
    }
    /* Kept sorted by rank; phases of one rank run in the order added. */
    while (i > 0 && phases[i - 1].rank > rank) {
        phases[i] = phases[i - 1];
        i--;
    }
    phases[i].rank = rank;
    phases[i].fn = fn;
    phases[i].arg = arg;
    nphases++;
}

static struct dirty *
dirty_find(struct store_tenant *t)
{
    for (size_t i = 0; i < ndirty; i++) {
        if (dirty[i].t == t) {
            return &dirty[i];
        }
    }
    return NULL;
}

static struct dirty *
dirty_add(struct store_tenant *t)
{
    struct dirty *d;

    if (ndirty == dirty_cap) {
        dirty_cap = dirty_cap ? dirty_cap * 2 : 8;
        dirty = xrealloc(dirty, dirty_cap * sizeof(*dirty));
    }
    d = &dirty[ndirty++];
    memset(d, 0, sizeof(*d));
    d->t = t;
    d->since_us = util_mono_us();
    d->due_us = d->since_us + LOOP_LAZY_US;
    return d;
}

static struct locked *
lock_find(const struct store_tenant *t)
{
    for (size_t i = 0; i < nlocked; i++) {
        if (locked[i].t == t) {
            return &locked[i];
        }
    }
    return NULL;
}

int
loop_locked(const struct store_tenant *t)
{
    return lock_find(t) != NULL;
}

size_t
loop_tenants_locked(void)
{
    return nlocked;
}

static void
on_lock_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg; /* waking the loop is all: lock_poll probes at the iteration's end */
}

static void
lock_timer_arm(void)
{
    struct timeval tv = { 0, LOOP_LOCK_RETRY_MS * 1000 };

    if (base == NULL) {
        return;
    }
    if (lock_timer == NULL) {
        lock_timer = evtimer_new(base, on_lock_timer, NULL);
    }
    if (!evtimer_pending(lock_timer, NULL)) {
        evtimer_add(lock_timer, &tv);
    }
}

/* t's database is locked by another process: refuse its writes until a probe finds it
 * free, and have its runs dropped at the iteration's end (reset; at once when the caller
 * runs the commit-failed callback itself). Logged at once, then at most once per
 * LOOP_FAIL_LOG_US with how many were not logged. */
static void
lock_add(struct store_tenant *t, const char *err, int reset)
{
    int64_t now = util_mono_us();
    struct locked *l;

    lock_events++;
    if (lock_find(t) != NULL) {
        return;
    }
    locked = xrealloc(locked, (nlocked + 1) * sizeof(*locked));
    l = &locked[nlocked++];
    l->t = t;
    l->since_us = l->probed_us = now;
    l->reset = reset;
    if (lock_logged_us == 0 || now - lock_logged_us >= LOOP_FAIL_LOG_US) {
        log_warn("store.locked tenant=%s error=%s not_logged=%lu hint=\"another process holds "
                 "the database's write lock; its requests get 503 until it is released\"",
                 store_tenant_id(t), log_quote(err != NULL ? err : "database is locked"),
                 lock_quiet);
        lock_logged_us = now;
        lock_quiet = 0;
    } else {
        lock_quiet++;
    }
    lock_timer_arm();
}

/* At the end of an iteration, outside the phases: drop the runs of tenants found
 * locked in it, and probe the others (no busy wait) every LOOP_LOCK_RETRY_MS; a free
 * one is writable again and its runs are replayed from the database. */
static void
lock_poll(void)
{
    size_t i = 0;

    while (i < nlocked) {
        struct store_tenant *t = locked[i].t;
        int64_t now = util_mono_us();

        if (locked[i].reset) {
            locked[i].reset = 0;
            if (commit_failed_fn != NULL) {
                commit_failed_fn(t, commit_failed_arg);
            }
            i = 0; /* the callback may have changed the list */
            continue;
        }
        if (now - locked[i].probed_us < LOOP_LOCK_RETRY_MS * 1000 || loop_stopping()) {
            i++;
            continue;
        }
        locked[i].probed_us = now;
        if (!store_tx_probe(t)) {
            i++;
            continue;
        }
        log_info("store.unlocked tenant=%s ms=%lld", store_tenant_id(t),
                 (long long)((now - locked[i].since_us) / 1000));
        locked[i] = locked[--nlocked];
        if (commit_failed_fn != NULL) {
            commit_failed_fn(t, commit_failed_arg);
        }
        i = 0;
    }
    if (nlocked > 0) {
        lock_timer_arm();
    }
}

static int
write_begin(struct store_tenant *t, int urgent, int64_t delay_us, int synced, char **errp)
{
    struct dirty *d;
    int rc;

    if (lock_find(t) != NULL) {
        lock_refused++;
        return kg_err(errp, "the tenant's database is locked by another process");
    }
    /* Every transaction of the loop begins unsynced; a writer that needs durability
     * marks it, and its commit then syncs the WAL (off the loop with a sync thread). */
    rc = store_tx_begin_unsynced(t, errp);
    if (rc == 0 && synced) {
        store_tx_mark_sync(t);
    }
    if (rc == KG_AGAIN) {
        lock_add(t, errp != NULL ? *errp : NULL, 1);
        return -1;
    }
    if (rc != 0) {
        return -1;
    }
    d = dirty_find(t);
    if (d == NULL) {
        d = dirty_add(t);
        d->due_us = d->since_us + delay_us;
    } else if (d->since_us + delay_us < d->due_us) {
        d->due_us = d->since_us + delay_us;
    }
    d->urgent |= urgent;
    return 0;
}

int
loop_write(struct store_tenant *t, char **errp)
{
    return write_begin(t, 1, 0, 1, errp);
}

int
loop_write_lazy(struct store_tenant *t, char **errp)
{
    return write_begin(t, 0, LOOP_LAZY_US, 1, errp);
}

int
loop_write_unsynced(struct store_tenant *t, int ms, char **errp)
{
    return write_begin(t, 0, (int64_t)ms * 1000, 0, errp);
}

static void
after_commit(struct store_tenant *t, void (*fn)(void *arg, int ok), void *arg, int urgent)
{
    struct dirty *d = dirty_find(t);

    if (d == NULL) {
        /* Nothing was written: there is nothing to wait for. */
        fn(arg, 1);
        return;
    }
    d->urgent |= urgent;
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->cbs = xrealloc(d->cbs, d->cap * sizeof(*d->cbs));
    }
    d->cbs[d->n].fn = fn;
    d->cbs[d->n].arg = arg;
    d->n++;
}

void
loop_after_commit(struct store_tenant *t, void (*fn)(void *arg, int ok), void *arg)
{
    after_commit(t, fn, arg, 1);
}

void
loop_after_commit_lazy(struct store_tenant *t, void (*fn)(void *arg, int ok), void *arg)
{
    after_commit(t, fn, arg, 0);
}

void
loop_set_commit_failed(void (*fn)(struct store_tenant *t, void *arg), void *arg)
{
    commit_failed_fn = fn;
    commit_failed_arg = arg;
}

/* Keep the set of tenants whose last commit failed (for /healthz), and log failures
 * without flooding: the first at once, then one line per LOOP_FAIL_LOG_US with how
 * many were not logged. */
static void
note_commit(struct store_tenant *t, int ok, const char *err)
{
    size_t i = 0;
    int64_t now = util_mono_us();

    while (i < nfailing && failing[i] != t) {
        i++;
    }
    if (ok) {
        if (i < nfailing) {
            failing[i] = failing[--nfailing];
            log_info("store.commit_recovered tenant=%s", store_tenant_id(t));
        }
        return;
    }
    if (i == nfailing) {
        failing = xrealloc(failing, (nfailing + 1) * sizeof(*failing));
        failing[nfailing++] = t;
    }
    if (fail_logged_us == 0 || now - fail_logged_us >= LOOP_FAIL_LOG_US) {
        log_err("store.commit_failed tenant=%s error=%s not_logged=%lu", store_tenant_id(t),
                log_quote(err ? err : "?"), fail_quiet);
        fail_logged_us = now;
        fail_quiet = 0;
    } else {
        fail_quiet++;
    }
}

int
loop_clock_check(int64_t wall_ms, int64_t mono_us, int64_t *step_ms)
{
    int64_t offset = wall_ms - mono_us / 1000, d;

    *step_ms = 0;
    if (!clock_offset_known) {
        clock_offset_known = 1;
        clock_offset_ms = offset;
        return 0;
    }
    d = offset - clock_offset_ms;
    clock_offset_ms = offset;
    if (d > -LOOP_CLOCK_STEP_MS && d < LOOP_CLOCK_STEP_MS) {
        return 0;
    }
    *step_ms = d;
    clock_steps++;
    return 1;
}

int64_t
loop_last_commit_ms(void)
{
    return last_commit_ms;
}

size_t
loop_commits_failing(void)
{
    return nfailing;
}

static void
on_lazy_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg; /* waking the loop is all: the iteration's end commits what is due */
}

/* Commit every tenant whose transaction is due (someone waits for it, it is older than
 * LOOP_LAZY_US, or the loop is stopping), then run what waited for it. Transactions
 * nobody waits for stay open a little longer so that several iterations share one
 * fsync; a timer makes sure they are committed in time. The due list is detached
 * first: callbacks may start the next iteration's writes. */
/* ---- syncing committed transactions off the loop ----
 *
 * A commit that must be durable before its waiters are told (an alert's answer, a run's
 * step before its effect) is committed without waiting for the disk, and its WAL is
 * synced on the sync thread; its waiters are called back on the loop once that is done.
 * Meanwhile the loop goes on with the next iteration (whose transaction will be synced
 * in turn): it no longer stops for the disk at every commit. One thread, so waiters are
 * told in commit order. */

struct sync_job {
    struct store_tenant *t;
    uint64_t seq; /* the commit's number (store_tx_commit_deferred) */
    struct after *cbs;
    size_t n;
    int ok;
    int64_t t0;
    char *err;
};

#define LOOP_SYNC_QUEUE 4096 /* commits waiting for their sync, at most */

/* The sync of t's WAL, here; 1 when it worked. */
static int
sync_now(struct store_tenant *t, uint64_t seq)
{
    char *err = NULL;

    if (store_wal_sync(t, seq, &err) == 0) {
        return 1;
    }
    stats.commit_failures++;
    note_commit(t, 0, err);
    free(err);
    return 0;
}

static void
sync_run(void *arg)
{
    struct sync_job *j = arg;

    j->ok = store_wal_sync(j->t, j->seq, &j->err) == 0;
}

static void
sync_done(void *arg, int cancelled)
{
    struct sync_job *j = arg;

    if (cancelled) {
        j->ok = sync_now(j->t, j->seq);
    } else if (!j->ok) {
        stats.commit_failures++;
        note_commit(j->t, 0, j->err);
    }
    stats.syncs++;
    stats.sync_us_total += (unsigned long long)(util_mono_us() - j->t0);
    for (size_t k = 0; k < j->n; k++) {
        j->cbs[k].fn(j->cbs[k].arg, j->ok);
    }
    free(j->cbs);
    free(j->err);
    free(j);
}

static int
sync_submit(struct dirty *d, uint64_t seq)
{
    struct sync_job *j = xcalloc(1, sizeof(*j));

    j->t = d->t;
    j->seq = seq;
    j->cbs = d->cbs;
    j->n = d->n;
    j->t0 = util_mono_us();
    if (work_submit(syncer, sync_run, sync_done, j) == -1) {
        free(j);
        return -1;
    }
    d->cbs = NULL;
    return 0;
}

/* Waiters of synced commits told now rather than at the next iteration's events: an
 * iteration that stores a large batch takes milliseconds, and an answer waited for all
 * of it. Called between the admit step's batches and before the commits. */
void
loop_sync_poll(void)
{
    work_poll(syncer);
}

int
loop_sync_thread(char **errp)
{
    if (syncer == NULL && (syncer = work_new(base, 1, LOOP_SYNC_QUEUE, errp)) == NULL) {
        return -1;
    }
    return 0;
}

/* Every commit waiting for its sync synced and its waiters told; from now on commits
 * sync on the loop. What the waiters wrote is committed too. */
static void
sync_drain(void)
{
    if (syncer != NULL) {
        work_free(syncer);
        syncer = NULL;
        commit_all();
    }
}

static void
commit_all(void)
{
    struct dirty *list = dirty;
    size_t n = ndirty;
    int64_t now = util_mono_us(), next_due = 0;

    if (n == 0) {
        return;
    }
    dirty = NULL;
    ndirty = dirty_cap = 0;
    for (size_t i = 0; i < n; i++) {
        char *err = NULL;
        int64_t t0;
        int ok, rc;
        uint64_t sync;

        if (!list[i].urgent && !stopping && now < list[i].due_us) {
            struct dirty *keep = dirty_add(list[i].t);

            keep->since_us = list[i].since_us;
            keep->due_us = list[i].due_us;
            keep->cbs = list[i].cbs; /* lazy waiters (loop_after_commit_lazy) wait on */
            keep->n = list[i].n;
            keep->cap = list[i].cap;
            if (next_due == 0 || list[i].due_us < next_due) {
                next_due = list[i].due_us;
            }
            continue;
        }
        t0 = util_mono_us();
        sync = 0;
        rc = syncer != NULL ? store_tx_commit_deferred(list[i].t, &sync, &err)
                            : store_tx_commit(list[i].t, &err);
        ok = rc == 0;
        if (ok) {
            last_commit_ms = util_now_ms();
        }
        stats.commits++;
        stats.commit_us_total += (unsigned long long)(util_mono_us() - t0);
        if (rc == KG_AGAIN) {
            lock_add(list[i].t, err, 0); /* locked, not failing: the disk is fine */
        } else {
            note_commit(list[i].t, ok, err);
        }
        if (!ok) {
            stats.commit_failures++;
            free(err);
            store_tx_rollback(list[i].t);
            if (commit_failed_fn != NULL) {
                commit_failed_fn(list[i].t, commit_failed_arg);
            }
        }
        if (ok && sync != 0 && sync_submit(&list[i], sync) == 0) {
            continue; /* its waiters are told once its WAL is synced */
        }
        if (ok && sync != 0) { /* the sync thread's queue is full: here */
            ok = sync_now(list[i].t, sync);
        }
        for (size_t j = 0; j < list[i].n; j++) {
            list[i].cbs[j].fn(list[i].cbs[j].arg, ok);
        }
        free(list[i].cbs);
    }
    free(list);
    /* Callbacks may have written (a run's progress): those writes are due in time too. */
    for (size_t i = 0; i < ndirty; i++) {
        int64_t due = dirty[i].urgent ? util_mono_us() : dirty[i].due_us;

        if (next_due == 0 || due < next_due) {
            next_due = due;
        }
    }
    if (next_due != 0 && base != NULL) {
        struct timeval tv;
        int64_t wait = next_due - util_mono_us();

        if (lazy_timer == NULL) {
            lazy_timer = evtimer_new(base, on_lazy_timer, NULL);
        }
        if (wait < 0) {
            wait = 0;
        }
        tv.tv_sec = (time_t)(wait / 1000000);
        tv.tv_usec = (suseconds_t)(wait % 1000000);
        evtimer_add(lazy_timer, &tv);
    }
}

int
loop_iterate(int block)
{
    int busy = 0;

    if (event_base_loop(base, block ? EVLOOP_ONCE : EVLOOP_NONBLOCK) == -1) {
        log_err("loop.failed");
        return -1;
    }
    stats.iterations++;
    {
        int64_t step;

        if (loop_clock_check(util_now_ms(), util_mono_us(), &step)) {
            log_warn("clock.step delta_ms=%lld (the wall clock moved; sleeps and deadlines "
                     "count in wall-clock time)",
                     (long long)step);
            for (size_t i = 0; i < nclock_watchers; i++) {
                clock_watchers[i].fn(clock_watchers[i].arg);
            }
        }
    }
    for (size_t i = 0; i < nphases; i++) {
        busy |= phases[i].fn(phases[i].arg);
    }
    loop_sync_poll();
    commit_all();
    lock_poll();
    return busy;
}

int
loop_run(void)
{
    int busy = 1; /* run the phases once before waiting: recovered runs are ready */

    while (!stopping) {
        busy = loop_iterate(!busy);
        if (busy == -1) {
            return -1;
        }
    }
    commit_all(); /* stopping: everything is due */
    sync_drain();
    return 0;
}

void
loop_stop(void)
{
    stopping = 1;
    if (base != NULL) {
        event_base_loopbreak(base);
    }
}

int
loop_stopping(void)
{
    return stopping;
}

static void
loop_metrics(struct buf *b, void *arg)
{
    (void)arg;
    metrics_counter(b, "kagari_commits_total", NULL, stats.commits);
    metrics_counter(b, "kagari_commit_failures_total", NULL, stats.commit_failures);
    metrics_gauge(b, "kagari_tenants_commit_failing", NULL, (double)nfailing);
    metrics_counter(b, "kagari_clock_steps_total", NULL, clock_steps);
    metrics_counter(b, "kagari_store_locked_total", NULL, lock_events);
    metrics_counter(b, "kagari_store_locked_writes_total", NULL, lock_refused);
    metrics_gauge(b, "kagari_tenants_locked", NULL, (double)nlocked);
    metrics_seconds(b, "kagari_commit_seconds_total", NULL, stats.commit_us_total);
    metrics_counter(b, "kagari_commit_syncs_total",
                    "commits synced to the disk on the sync thread before their waiters were told",
                    stats.syncs);
    metrics_seconds(b, "kagari_commit_sync_seconds_total",
                    "from such a commit to its waiters being told (the sync and the wait for "
                    "the sync thread)",
                    stats.sync_us_total);
}
