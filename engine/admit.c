/* admit.c: store, deduplicate, route and acknowledge after the commit, for every
 * source. */
#include "engine/admit.h"

#include <stdlib.h>

#include "engine/log.h"
#include "engine/loop.h"
#include "engine/metrics.h"
#include "engine/run.h"
#include "engine/store.h"
#include "engine/tenant.h"
#include "engine/work.h"

#define ADMIT_EVENTS_DELAY_MS 200     /* the longest a stored event waits for its commit */
#define ADMIT_EVENTS_RETRY_MS 500     /* a batch of events the store could not take, again */
#define ADMIT_EVENTS_HELD_MAX 1000000 /* events held for a retry, at most (memory) */
#define ADMIT_REAP_MIN 32             /* records of a batch freed off the loop */
#define ADMIT_REAP_QUEUE 4096         /* batches waiting to be freed, at most */

/* One batch waiting for its iteration's phase, then for the commit. */
struct batch {
    struct tenant *t;
    struct alert *alerts;
    size_t n;
    size_t dups;
    size_t nevents, event_dups; /* of the new and the duplicate records: events */
    int failed;                 /* a store error while inserting */
    int locked;                 /* the tenant's database is locked by another process */
    int events;                 /* records to keep as events: stored, never routed */
    int updates;                /* a stored alert sent again with other content is updated */
    size_t upd;                 /* alerts updated */
    admit_fn done;
    void *arg;
    char *mark_source, *mark_key, *mark_value; /* written with the records, or NULL */
    struct batch *next;
};

static struct batch *head, *tail; /* batches of this iteration, in arrival order */
static struct batch *later;       /* batches of events waiting to be stored again */
static size_t later_n;            /* the events they hold */
static struct event *later_timer;
static struct work *reaper; /* frees large batches' records off the loop */
static struct {
    unsigned long long accepted, duplicates, runs, failed, locked, updated, rerouted;
    unsigned long long events, event_duplicates, event_retries, events_dropped;
} stats;

static void
queue(struct batch *b)
{
    b->next = NULL;
    if (tail != NULL) {
        tail->next = b;
    } else {
        head = b;
    }
    tail = b;
}

/* The events put off by a locked or failing database go back in the queue. */
static void
on_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    while (later != NULL) {
        struct batch *b = later;

        later = b->next;
        later_n -= b->n;
        queue(b);
    }
}

struct reap {
    struct alert *alerts;
    size_t n;
};

static void
reap_free(void *arg)
{
    struct reap *r = arg;

    for (size_t i = 0; i < r->n; i++) {
        alert_free(&r->alerts[i]);
    }
    free(r->alerts);
    r->alerts = NULL;
}

static void
reap_done(void *arg, int cancelled)
{
    if (cancelled) {
        reap_free(arg);
    }
    free(arg);
}

/* A busy feed's records are tens of thousands of small blocks a second: a large batch's
 * are freed on the reaper thread, so the loop spends that time storing the next ones. */
static void
batch_free(struct batch *b)
{
    struct reap *r = NULL;

    if (reaper != NULL && b->n >= ADMIT_REAP_MIN) {
        r = xmalloc(sizeof(*r));
        r->alerts = b->alerts;
        r->n = b->n;
        if (work_submit(reaper, reap_free, reap_done, r) == -1) {
            free(r);
            r = NULL;
        }
    }
    if (r == NULL) {
        for (size_t i = 0; i < b->n; i++) {
            alert_free(&b->alerts[i]);
        }
        free(b->alerts);
    }
    free(b->mark_source);
    free(b->mark_key);
    free(b->mark_value);
    free(b);
}

static void
batch_answer(struct batch *b, enum admit_status status)
{
    struct admit_result res;

    res.status = status;
    res.accepted = b->n - b->dups;
    res.duplicates = b->dups;
    res.events = b->nevents;
    res.event_duplicates = b->event_dups;
    res.updated = b->upd;
    res.alerts = b->alerts;
    res.n = b->n;
    b->done(b->arg, &res);
    batch_free(b);
}

static void
after_commit(void *arg, int ok)
{
    struct batch *b = arg;

    if (b->events && (b->locked || !ok) && !loop_stopping() &&
        later_n + b->n <= ADMIT_EVENTS_HELD_MAX) {
        /* Nobody waits for events and their sender cannot send them again: keep them
         * and try again (the loop never waits for the lock). */
        struct timeval tv = { 0, ADMIT_EVENTS_RETRY_MS * 1000 };

        stats.event_retries++;
        b->failed = b->locked = 0;
        b->dups = b->nevents = b->event_dups = 0;
        b->next = later;
        later = b;
        later_n += b->n;
        if (later_timer == NULL) {
            later_timer = evtimer_new(loop_base(), on_later, NULL);
        }
        evtimer_add(later_timer, &tv);
        return;
    }
    if (b->events && (b->locked || !ok)) { /* more held than memory allows: given up */
        stats.events_dropped += b->n;
        log_err("admit.events_dropped tenant=%s n=%zu held=%zu", b->t->id, b->n, later_n);
        batch_answer(b, ADMIT_FAILED);
        return;
    }
    if (b->locked || (!ok && loop_locked(b->t->db))) {
        stats.locked++;
        batch_answer(b, ADMIT_LOCKED);
        return;
    }
    if (!ok) {
        batch_answer(b, ADMIT_UNAVAILABLE);
        return;
    }
    if (b->failed) {
        stats.failed++;
        batch_answer(b, ADMIT_FAILED);
        return;
    }
    stats.events += b->nevents;
    stats.event_duplicates += b->event_dups;
    stats.accepted += b->n - b->dups - b->nevents;
    stats.duplicates += b->dups - b->event_dups - b->upd;
    stats.updated += b->upd;
    batch_answer(b, ADMIT_OK);
}

/* The iteration phase: insert every waiting batch's alerts (one transaction per tenant,
 * opened by loop_write), create their runs, and answer after the commit. */
static int
admit_phase(void *arg)
{
    struct batch *b = head;

    (void)arg;
    head = tail = NULL;
    while (b != NULL) {
        struct batch *next = b->next;
        char *err = NULL;

        /* Events wait for no answer: their commit may be shared with the next
         * iterations' for up to ADMIT_EVENTS_DELAY_MS, so a busy feed stores many of them
         * per commit: each commit rewrites every index page it touched, and the event
         * indexes are touched all over. A batch someone waits for is committed at the end
         * of this iteration; its sync to the disk runs off the loop (loop_sync_thread),
         * so the loop does not wait for it, and making the sender wait longer to share
         * commits (bulk batches did, 20 ms) only cut their throughput (measured: 4
         * senders of 500 sign-ins each, 38,000 records/s with the wait, 43,600 without).
         * A marked batch's source waits for its commit before it reads on: at once. */
        if ((b->events && b->mark_source == NULL
                 ? loop_write_unsynced(b->t->db, ADMIT_EVENTS_DELAY_MS, &err)
                 : loop_write(b->t->db, &err)) == -1) {
            b->failed = 1;
            b->locked = loop_locked(b->t->db);
        }
        for (size_t i = 0; i < b->n && !b->failed; i++) {
            int dup = 0, nruns = 0;
            struct alert *a = &b->alerts[i];

            /* The tenant's rule (tenants.<id>.events.alerts) decides the class; the
             * source's own (a->cls) is its default. Events go to the event store, in the
             * same transaction, so they are as durable as the alerts when the batch is
             * answered; they start no run. */
            if (b->events) {
                a->cls = ALERT_CLASS_EVENT;
            } else {
                a->cls = admit_is_alert(b->t, a, a->cls != ALERT_CLASS_EVENT) ? ALERT_CLASS_ALERT
                                                                              : ALERT_CLASS_EVENT;
            }
            if (a->cls == ALERT_CLASS_EVENT) {
                a->id = 0;
                if (store_event_insert(b->t->db, a, &dup, &err) == -1) {
                    b->failed = 1;
                    break;
                }
                b->dups += (size_t)dup;
                b->event_dups += (size_t)dup;
                b->nevents += (size_t)!dup;
                continue;
            }
            if (store_alert_insert(b->t->db, a, &dup, &err) == -1) {
                b->failed = 1;
                break;
            }
            if (dup && b->updates) {
                int upd = 0, significant = 0;

                if (store_alert_update(b->t->db, a, util_now_ms(), &upd, &significant, &err) ==
                    -1) {
                    b->failed = 1;
                    break;
                }
                b->dups++;
                b->upd += (size_t)upd;
                if (upd) {
                    log_info("admit.updated tenant=%s alert=%lld source=%s source_id=%s "
                             "significant=%d",
                             b->t->id, (long long)a->id, a->source, log_quote(a->source_id),
                             significant);
                }
                if (!significant) {
                    continue;
                }
                /* A significant update is acted on again (docs/sources.md). */
                if (run_route(b->t, a, &nruns, &err) == -1) {
                    b->failed = 1;
                    break;
                }
                stats.runs += (unsigned long long)nruns;
                stats.rerouted++;
                continue;
            }
            if (dup) {
                b->dups++;
                continue;
            }
            if (run_route(b->t, a, &nruns, &err) == -1) {
                b->failed = 1;
                break;
            }
            stats.runs += (unsigned long long)nruns;
        }
        /* The source's mark moves only with every record it covers. */
        if (b->mark_source != NULL && !b->failed &&
            store_mark_put(b->t->db, b->mark_source, b->mark_key, b->mark_value, &err) == -1) {
            b->failed = 1;
        }
        if (b->failed && !b->locked) { /* a lock is logged by the loop */
            log_err("admit.store_failed tenant=%s error=%s", b->t->id, log_quote(err ? err : "?"));
        }
        free(err);
        if (b->events && b->mark_source == NULL) {
            loop_after_commit_lazy(b->t->db, after_commit, b);
        } else {
            loop_after_commit(b->t->db, after_commit, b);
        }
        b = next;
        loop_sync_poll(); /* the answers of batches committed before */
    }
    return 0;
}

static void
admit_metrics(struct buf *b, void *arg)
{
    (void)arg;
    metrics_counter(b, "kagari_alerts_accepted_total", NULL, stats.accepted);
    metrics_counter(b, "kagari_alerts_duplicate_total", NULL, stats.duplicates);
    metrics_counter(b, "kagari_alerts_updated_total",
                    "stored alerts their source changed (the change is kept in their history)",
                    stats.updated);
    metrics_counter(b, "kagari_alerts_updates_routed_total",
                    "alert updates significant enough to start the playbooks again",
                    stats.rerouted);
    metrics_counter(b, "kagari_admit_failures_total", NULL, stats.failed);
    metrics_counter(b, "kagari_admit_locked_total", NULL, stats.locked);
    metrics_counter(b, "kagari_runs_created_total", NULL, stats.runs);
    /* Every record of class event, whichever source brought it: a batch of events
     * (admit_events) or the events among a batch of alerts (the class decided here). */
    metrics_counter(b, "kagari_events_stored_total",
                    "Records of class event stored (kept for queries, not routed to playbooks).",
                    stats.events);
    metrics_counter(b, "kagari_events_duplicate_total", NULL, stats.event_duplicates);
    metrics_counter(b, "kagari_events_retries_total",
                    "batches of events stored again after a locked or failed commit",
                    stats.event_retries);
    metrics_counter(b, "kagari_events_dropped_total",
                    "events given up: more than 1,000,000 were held for a locked store",
                    stats.events_dropped);
}

void
admit_init(void)
{
    char *err = NULL;

    if ((reaper = work_new(loop_base(), 1, ADMIT_REAP_QUEUE, &err)) == NULL) {
        log_warn("admit.no_reaper error=%s", log_quote(err ? err : "?")); /* freed here */
        free(err);
    }
    loop_add_phase(LOOP_PHASE_ADMIT, admit_phase, NULL);
    metrics_add(admit_metrics, NULL);
}

static void
admit_queue(struct tenant *t, struct alert *alerts, size_t n, int events,
            const struct admit_mark *mark, admit_fn done, void *arg)
{
    struct batch *b = xcalloc(1, sizeof(*b));

    if (mark != NULL) {
        b->mark_source = xstrdup(mark->source);
        b->mark_key = xstrdup(mark->key);
        b->mark_value = xstrdup(mark->value);
    }
    b->events = events == 1;
    b->updates = events == 2;
    b->t = t;
    b->alerts = alerts;
    b->n = n;
    b->done = done;
    b->arg = arg;
    queue(b);
}

void
admit_alerts(struct tenant *t, struct alert *alerts, size_t n, admit_fn done, void *arg)
{
    admit_queue(t, alerts, n, 0, NULL, done, arg);
}

void
admit_alerts_marked(struct tenant *t, struct alert *alerts, size_t n, const struct admit_mark *mark,
                    admit_fn done, void *arg)
{
    admit_queue(t, alerts, n, 0, mark, done, arg);
}

void
admit_events_marked(struct tenant *t, struct alert *events, size_t n, const struct admit_mark *mark,
                    admit_fn done, void *arg)
{
    admit_queue(t, events, n, 1, mark, done, arg);
}

void
admit_updates(struct tenant *t, struct alert *alerts, size_t n, admit_fn done, void *arg)
{
    admit_queue(t, alerts, n, 2, NULL, done, arg);
}

void
admit_events(struct tenant *t, struct alert *events, size_t n, admit_fn done, void *arg)
{
    admit_queue(t, events, n, 1, NULL, done, arg);
}

void
admit_shutdown(void)
{
    while (head != NULL) {
        struct batch *b = head;

        head = b->next;
        batch_answer(b, ADMIT_SHUTTING_DOWN);
    }
    tail = NULL;
    while (later != NULL) {
        struct batch *b = later;

        later = b->next;
        batch_answer(b, ADMIT_SHUTTING_DOWN);
    }
    later_n = 0;
    if (later_timer != NULL) {
        event_free(later_timer);
        later_timer = NULL;
    }
    work_free(reaper);
    reaper = NULL;
}
