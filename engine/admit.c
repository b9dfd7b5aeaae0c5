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

/* One batch waiting for its iteration's phase, then for the commit. */
struct batch {
    struct tenant *t;
    struct alert *alerts;
    size_t n;
    size_t dups;
    int failed; /* a store error while inserting */
    int locked; /* the tenant's database is locked by another process */
    admit_fn done;
    void *arg;
    struct batch *next;
};

static struct batch *head, *tail; /* batches of this iteration, in arrival order */
static struct {
    unsigned long long accepted, duplicates, runs, failed, locked, events;
} stats;

static void
batch_free(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        alert_free(&b->alerts[i]);
    }
    free(b->alerts);
    free(b);
}

static void
batch_answer(struct batch *b, enum admit_status status)
{
    struct admit_result res;

    res.status = status;
    res.accepted = b->n - b->dups;
    res.duplicates = b->dups;
    res.alerts = b->alerts;
    res.n = b->n;
    b->done(b->arg, &res);
    batch_free(b);
}

static void
after_commit(void *arg, int ok)
{
    struct batch *b = arg;

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
    stats.accepted += b->n - b->dups;
    stats.duplicates += b->dups;
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

        if (loop_write(b->t->db, &err) == -1) {
            b->failed = 1;
            b->locked = loop_locked(b->t->db);
        }
        for (size_t i = 0; i < b->n && !b->failed; i++) {
            int dup = 0, nruns = 0;

            if (store_alert_insert(b->t->db, &b->alerts[i], &dup, &err) == -1) {
                b->failed = 1;
                break;
            }
            if (dup) {
                b->dups++;
                continue;
            }
            if (b->alerts[i].cls == ALERT_CLASS_EVENT) {
                /* An event is kept, not acted on: playbooks look events up; only alerts
                 * start runs. */
                stats.events++;
                continue;
            }
            if (run_route(b->t, &b->alerts[i], &nruns, &err) == -1) {
                b->failed = 1;
                break;
            }
            stats.runs += (unsigned long long)nruns;
        }
        if (b->failed && !b->locked) { /* a lock is logged by the loop */
            log_err("admit.store_failed tenant=%s error=%s", b->t->id, log_quote(err ? err : "?"));
        }
        free(err);
        loop_after_commit(b->t->db, after_commit, b);
        b = next;
    }
    return 0;
}

static void
admit_metrics(struct buf *b, void *arg)
{
    (void)arg;
    metrics_counter(b, "kagari_alerts_accepted_total", NULL, stats.accepted);
    metrics_counter(b, "kagari_alerts_duplicate_total", NULL, stats.duplicates);
    metrics_counter(b, "kagari_admit_failures_total", NULL, stats.failed);
    metrics_counter(b, "kagari_admit_locked_total", NULL, stats.locked);
    metrics_counter(b, "kagari_runs_created_total", NULL, stats.runs);
    metrics_counter(b, "kagari_events_stored_total",
                    "Records of class event stored (kept for queries, not routed to playbooks).",
                    stats.events);
}

void
admit_init(void)
{
    loop_add_phase(LOOP_PHASE_ADMIT, admit_phase, NULL);
    metrics_add(admit_metrics, NULL);
}

void
admit_alerts(struct tenant *t, struct alert *alerts, size_t n, admit_fn done, void *arg)
{
    struct batch *b = xcalloc(1, sizeof(*b));

    b->t = t;
    b->alerts = alerts;
    b->n = n;
    b->done = done;
    b->arg = arg;
    if (tail != NULL) {
        tail->next = b;
    } else {
        head = b;
    }
    tail = b;
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
}
