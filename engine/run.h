/* run.h: playbook runs: coroutines on the tenant's Lua state, scheduled by the loop,
 * with a journal of every effect so that a run interrupted by a crash replays to where
 * it was without repeating anything (docs/ARCHITECTURE.md "Durable runs"). */
#ifndef KAGARI_RUN_H
#define KAGARI_RUN_H

#include <lua.h>
#include <stdint.h>

#include "engine/journal.h"
#include "engine/playbook.h"
#include "engine/sandbox.h"

struct tenant;
struct run;
struct store_tenant;
struct effect;

struct run_limits {
    uint64_t instructions; /* per run, unless the playbook sets its own */
    double timeout;        /* seconds of wall clock per run, unless the playbook sets one */
    double slice_ms;       /* CPU time a run gets before it yields to others */
};

/* Register the scheduler's loop phase. */
void run_init(const struct run_limits *lim);
/* Take ownership of the current playbook set (the previous one is released; runs keep
 * the versions they started with). */
void run_set_playbooks(struct playbook_set *set);
const struct playbook_set *run_playbooks(void);

/* A tenant sandbox with every playbook global (playbook, sleep, now, log, json), frozen. */
struct sandbox *run_sandbox_new(size_t memory_cap, char **errp);

/* Create a queued run for each playbook the alert triggers (in the iteration's
 * transaction) and schedule them. *nruns counts them. */
int run_route(struct tenant *t, const struct alert *a, int *nruns, char **errp) KG_WUR;
/* Load the tenant's unfinished runs from its database and schedule them for replay;
 * runs already in memory are left alone (so a reload picks up runs queued again by
 * `kagari run retry`). */
int run_recover(struct tenant *t, char **errp) KG_WUR;
/* A run of the loaded playbook named playbook on alert alert_id (which must exist), started
 * by a person (requester, recorded with the run: that person can never decide its
 * approvals), in the loop's open transaction of t; *id is the new run's. The trigger of
 * the playbook is not checked: a person may run any playbook on any alert. -1 with *errp
 * (no such playbook, the store). */
int run_start_by(struct tenant *t, int64_t alert_id, const char *playbook, const char *requester,
                 int64_t *id, char **errp) KG_WUR;
/* Free the tenant's in-memory runs (at shutdown: their state is in the database). */
void run_tenant_close(struct tenant *t);
/* A commit of t failed: what its runs did in memory is not durable; drop them and
 * replay from the database. */
void run_tenant_reset(struct store_tenant *db, void *arg);

size_t run_ready_count(void);  /* runs waiting for CPU */
size_t run_active_count(void); /* runs in memory: ready, running or parked */
struct run_stats {
    unsigned long long started, done, failed, replayed, diverged;
};
const struct run_stats *run_stats(void);

/* ---- for effects (built-ins and connectors) ---- */

/* The run executing in coroutine L, or NULL outside a run. */
struct run *run_from_lua(lua_State *L);
int64_t run_id(const struct run *r);
/* The run's playbook asked for a dry run (playbook{ dry_run = true }). */
int run_dry_run(const struct run *r);
struct tenant *run_tenant(const struct run *r);

enum effect_state {
    EFFECT_NEW = 0,      /* not in the journal: perform it */
    EFFECT_REPLAYED = 1, /* finished before: push its result with run_effect_push */
    EFFECT_IN_DOUBT = 2, /* started before a crash, never finished: reconcile or retry */
};

/* Take the next journal step for effect kind(request). request is JSON text built
 * deterministically by the caller. Raises "kind: only inside a playbook run" outside a
 * run, and kills the run with a "diverged" error when the journal holds a different
 * effect at this position. For EFFECT_NEW a "started" entry is appended in memory; it
 * reaches the database (in the iteration's transaction) through run_effect_finish or
 * run_effect_park, so an effect that must be journaled before it happens is performed
 * only after that commit (loop_after_commit). *e points at the entry (valid until the
 * next call). */
int run_effect_begin(lua_State *L, const char *kind, const char *request, struct journal_entry **e);
/* Push a finished entry's result as the effect's return values: the value (ok) or
 * nil, message (failed). Returns the number of values. */
int run_effect_push(lua_State *L, const struct journal_entry *e);
/* Record the pending entry as finished now (ok, result JSON) without waiting. */
void run_effect_finish(struct run *r, int ok, const char *result);
/* Park the run until run_effect_complete(); returns what lua_yield returns. The
 * effect's results are what run_effect_push gives for the completed entry. */
int run_effect_park(lua_State *L);
/* The same for an effect that is safe to repeat: its "started" entry is not written (one
 * commit less per call); a crash before its result is recorded makes the replay perform
 * it again, which is harmless by definition. */
int run_effect_park_idempotent(lua_State *L);
/* Called from an event callback when the parked effect finishes. Clears the run's
 * pending op (run_set_op). */
void run_effect_complete(struct run *r, int ok, const char *result);

/* The operation a parked run waits for (a connector call). The run owns it: if the run
 * is freed first (shutdown, reset, deadline), cancel(op) is called. */
void run_set_op(struct run *r, void (*cancel)(void *op), void *op);
/* The playbooks' sleep(seconds), for connector helpers written in Lua that wait
 * (defender.wait_action): pass it as an upvalue. */
int run_lua_sleep(lua_State *L);

/* The run's wall-clock deadline (ms since the epoch; 0 = none). */
int64_t run_deadline_ms(const struct run *r);
int64_t run_alert_id(const struct run *r);
int64_t run_now_ms(const struct run *r);

/* ---- playbook tests (engine/ptest.c) ----
 *
 * With hooks set, every effect without EFFECT_ENGINE (connector calls, now, sleep) is
 * given to effect() in place of its own open, after the driver's journal, replay and dry
 * run steps (a dry run's call is shown to dry_run() and recorded as usual); the effect's
 * check (is the connector configured?) is skipped: the test stands in for it. effect()
 * must finish ef with effect_done before it returns. clock_ms() is the run clock
 * (run_now_ms). ended() sees each run end: its first return value as JSON text (NULL
 * when none or not JSON-able) or its error. NULL hooks: the daemon's normal behaviour. */
struct run_test_hooks {
    void (*effect)(void *arg, struct effect *ef, const char *kind, const char *request);
    void (*dry_run)(void *arg, const char *kind, const char *request);
    int64_t (*clock_ms)(void *arg);
    void (*ended)(void *arg, int64_t run_id, int ok, const char *result, const char *error);
    void *arg;
};
void run_set_test_hooks(const struct run_test_hooks *hooks);

/* Push the table a run's alert is (raises on a memory error: call it protected). The
 * lint reads its fields from it. */
void run_push_alert(lua_State *L, const struct alert *a);

#endif
