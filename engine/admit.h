/* admit.h: the one step every intake source ends with: store a batch of normalized
 * alerts in their tenant's database (deduplicated on (source, source_id)), route each
 * new one to the playbooks it triggers and create their runs, all in the iteration's
 * transaction, and answer the source only after the commit made them durable. */
#ifndef KAGARI_ADMIT_H
#define KAGARI_ADMIT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/alert.h"

struct tenant;

enum admit_status {
    ADMIT_OK = 0,       /* stored durably (new or duplicate) */
    ADMIT_FAILED,       /* a store error: nothing of the batch is kept */
    ADMIT_UNAVAILABLE,  /* the commit failed: retry later */
    ADMIT_SHUTTING_DOWN /* the daemon stopped before the batch's turn */
};

struct admit_result {
    enum admit_status status;
    size_t accepted;            /* new alerts */
    size_t duplicates;          /* already stored */
    const struct alert *alerts; /* the batch, ids filled (borrowed for the call) */
    size_t n;
};

typedef void (*admit_fn)(void *arg, const struct admit_result *res);

/* Register the admit phase (LOOP_PHASE_ADMIT) and its metrics. */
void admit_init(void);
/* Queue n alerts (the array and every alert are taken) for t; done(arg, result) is
 * called once, after the commit of the iteration that stored them (or at shutdown). */
void admit_alerts(struct tenant *t, struct alert *alerts, size_t n, admit_fn done, void *arg);
/* Answer every queued batch ADMIT_SHUTTING_DOWN. */
void admit_shutdown(void);

#endif
