/* kagari.h: the plug-in API. What a connector (connectors/) or a built-in may use of the
 * engine, and nothing else: the run and the tenant are opaque here, and every effect on
 * the world goes through the one effect driver (effect_run), which owns the journal,
 * replay, dry run, in-doubt handling, parking and cancellation (docs/ARCHITECTURE.md,
 * "Durable runs"). Sources hand their alerts to the one admit step (admit_alerts). Like Lua's
 * lauxlib.h, it is all a plug-in includes from the engine. */
#ifndef KAGARI_KAGARI_H
#define KAGARI_KAGARI_H

#include <lua.h>
#include <stdint.h>

#include <event2/event.h>

#include "engine/config.h"
#include "engine/json.h"
#include "engine/lcheck.h"
#include "engine/log.h"
#include "engine/metrics.h"
#include "engine/plugin.h"
#include "engine/secret.h"
#include "engine/util.h"

struct tenant; /* opaque */
struct run;    /* opaque */
struct effect; /* one pending effect, owned by its run */

/* ---- the loop ---- */

/* The daemon's one event base, for timers and transfers. */
struct event_base *loop_base(void);

/* ---- tenants ---- */

/* The open tenant with this id, or NULL (a source maps its senders to tenants). */
struct tenant *tenant_find(const char *id);
const char *tenant_id(const struct tenant *t);
/* tenants.<id>.dry_run: every outside effect is recorded, none performed. */
int tenant_dry_run(const struct tenant *t);
/* The tenant's filled settings block of section s (a connector's config), or NULL when
 * the configuration has none for this tenant. */
const void *tenant_conf(const struct tenant *t, const struct config_section *s);
/* The state the tenant_open of s's connectors made for this tenant, or NULL. */
void *tenant_state(const struct tenant *t, const struct config_section *s);

/* A published list of the tenant (e.g. the addresses a firewall connector blocked, for
 * devices that pull it): put inserts or refreshes value until expires_ms (ms since the
 * epoch, 0: never), del removes it; both write in the loop's transaction of the tenant,
 * so they are durable with the journal entries of the same iteration. text appends the
 * live values, one a line, sorted, to out (bounded by its cap). 0, or -1 with *errp. */
int tenant_list_put(struct tenant *t, const char *list, const char *value, int64_t expires_ms,
                    char **errp) KG_WUR;
int tenant_list_del(struct tenant *t, const char *list, const char *value, char **errp) KG_WUR;
int tenant_list_text(struct tenant *t, const char *list, struct buf *out, char **errp) KG_WUR;

/* A setting of the tenant that people may edit in the portal over what the configuration
 * file says (the contact chain: "notify.chain"): its JSON text as last saved (malloc'd),
 * or NULL when nobody has saved one (the configuration's applies) or it cannot be read.
 * A plug-in that owns such a key registers, once at init, how it writes the
 * configuration's value of a tenant as JSON (malloc'd, or NULL for none): the portal
 * shows it as the starting point until someone saves their own. */
char *tenant_setting(struct tenant *t, const char *key);
typedef char *(*tenant_setting_seed_fn)(struct tenant *t);
void tenant_setting_seed(const char *key, tenant_setting_seed_fn fn);

/* ---- runs ---- */

/* The run executing in coroutine L, or NULL outside a run. */
struct run *run_from_lua(lua_State *L);
int64_t run_id(const struct run *r);
struct tenant *run_tenant(const struct run *r);
const char *run_playbook_name(const struct run *r);
/* The id of the alert that started the run. */
int64_t run_alert_id(const struct run *r);
/* The run's clock (ms since the epoch): the wall clock, or a playbook test's clock.
 * Effects that compute with time (state expiry, alerts.recent's window) use it. */
int64_t run_now_ms(const struct run *r);
/* The run's wall-clock deadline (ms since the epoch; 0 = none). A parked run that
 * reaches it fails ("deadline exceeded while waiting") and its effect is cancelled. */
int64_t run_deadline_ms(const struct run *r);
/* The journal step (1-based) the run's next effect will take: the same on every replay,
 * so an id derived from (run, step) names one effect for good (a mail's Message-ID, a
 * webhook's delivery id). */
int run_next_step(const struct run *r);

/* After an approval that listed the calls it allows (approve{ effects = ... }), every
 * outside effect of the run must match one of them ([kind, arg, ...]: the kind, and each
 * arg somewhere in the request), else it fails with a clear error. NULL lifts it. */
void run_set_approved(struct run *r, const char *effects_json);

/* ---- effects ---- */

#define EFFECT_OUTSIDE 0x1    /* acts on the outside world: a dry run records it instead */
#define EFFECT_IDEMPOTENT 0x2 /* safe to repeat: starts without waiting for its journal */
#define EFFECT_RECONCILES                                                                          \
    0x4 /* not idempotent, but when a crash left it in doubt it can                                \
         * find out what happened (open sees effect_in_doubt) */

#define EFFECT_ENGINE                                                                              \
    0x8 /* the engine's own local effect (log, state, alerts): a playbook test                     \
         * performs it for real instead of asking the test for an answer */
#define EFFECT_NOTICE                                                                              \
    0x10 /* tells people (a notification): not an action on the customer's systems, so an          \
          * approval's effects= list does not restrict it */

/* One effect as the playbook asked for it, and the parts only it knows.
 *
 * The driver takes the next journal step for (kind, request): a finished entry returns
 * its recorded result and nothing else happens; a different entry at this position
 * fails the run as diverged. Otherwise, in order: check may fail it at once; an outside
 * effect in a dry run is recorded as {"dry_run":true,"request":...}; an outside effect
 * left in doubt by a crash that is neither idempotent nor reconciles fails ("check the
 * target by hand"); then open does or starts it.
 *
 * open returns NULL when the effect finished inside it (it called effect_done), or its
 * op: the run owns the op until effect_done, and cancel(op) frees it if the run goes
 * away first (shutdown, deadline, a failed commit). start(op) is called when the op may
 * act: for an outside effect that is not idempotent, only once its "started" journal
 * entry is durable (so a crash cannot leave it done but unrecorded); for an idempotent
 * one, on the next loop pass; for a local one (a timer), at once. */
struct effect_spec {
    const char *kind;    /* journal kind, e.g. "graph.disable_user" */
    const char *request; /* JSON text, built deterministically from the arguments */
    unsigned flags;      /* EFFECT_* */
    char *(*check)(struct run *r, void *arg); /* NULL, or a malloc'd reason to fail */
    void *(*open)(struct effect *ef, void *arg);
    void (*start)(void *op);
    void (*cancel)(void *op);
    void *arg;
};

/* The Lua C function's tail: `return effect_run(L, &spec);`. Returns the number of
 * results (replayed, finished at once, failed) or yields until effect_done. Raises
 * outside a run, on divergence, and where the run cannot wait (inside a metamethod). */
int effect_run(lua_State *L, const struct effect_spec *spec);
/* The effect finished: ok with result as JSON text (NULL means true), or failed with
 * result as a plain message (the playbook gets nil, message). Registered secrets are
 * masked before anything is recorded. The op must already be freed or must not be
 * touched again by the driver: effect_done is its owner's last call. */
void effect_done(struct effect *ef, int ok, const char *result);
struct run *effect_owner(const struct effect *ef);
/* The effect's op waits until until_ms (ms since the epoch) before its next attempt:
 * throttled by its server (status: the HTTP status that asked, e.g. 429), backing off
 * after a failure it will retry, or for an open circuit breaker's trial. The wait is
 * recorded in the effect's journal entry ("waits") and logged; while a throttling wait
 * lasts, the run shows the state "throttled". The run's deadline still applies. */
enum effect_wait_reason { EFFECT_WAIT_THROTTLED = 0, EFFECT_WAIT_RETRY, EFFECT_WAIT_BREAKER };
void effect_wait(struct effect *ef, enum effect_wait_reason reason, int status, int64_t until_ms);
/* A crash left this effect started but unrecorded: it may have happened. */
int effect_in_doubt(const struct effect *ef);
/* When its journal entry was first started (ms since the epoch): a sleep's wake time
 * and a reconciliation's "since" count from it. */
int64_t effect_started_ms(const struct effect *ef);

/* ---- admitting alerts (intake sources) ----
 *
 * The one step every intake source ends with: store a batch of normalized alerts in
 * their tenant's database (deduplicated on (source, source_id)), route each new one to
 * the playbooks it triggers and create their runs, all in the iteration's transaction,
 * and answer the source only after the commit made them durable (engine/admit.c). */

enum admit_status {
    ADMIT_OK = 0,        /* stored durably (new or duplicate) */
    ADMIT_FAILED,        /* a store error: nothing of the batch is kept */
    ADMIT_UNAVAILABLE,   /* the commit failed: retry later */
    ADMIT_SHUTTING_DOWN, /* the daemon stopped before the batch's turn */
    ADMIT_LOCKED         /* another process holds the tenant database's lock: retry later */
};

struct admit_result {
    enum admit_status status;
    size_t accepted;            /* new records (alerts and events) */
    size_t duplicates;          /* already stored (alerts and events; updated ones included) */
    size_t events;              /* of accepted: stored as events */
    size_t event_duplicates;    /* of duplicates: events */
    size_t updated;             /* admit_updates: stored alerts changed by this batch */
    const struct alert *alerts; /* the batch: each one's cls as stored; an alert's id
                                 * filled, an event's 0 (borrowed for the call) */
    size_t n;
};

typedef void (*admit_fn)(void *arg, const struct admit_result *res);

/* Queue n alerts (the array and every alert are taken) for t; done(arg, result) is
 * called once, after the commit of the iteration that stored them (or at shutdown).
 * Each record's class is decided here (admit_is_alert, with the source's a->cls as the
 * default): a record of class event goes to the event store (as admit_events would store
 * it, but in the same transaction as the alerts, so it too is durable when done is
 * called) and starts no run. */
void admit_alerts(struct tenant *t, struct alert *alerts, size_t n, admit_fn done, void *arg);
/* The same for a source that sends an alert again when it changes (a poller reading
 * Graph alerts by their last update): an alert already stored whose raw record differs
 * is updated in place (level, outcome, observables, raw) and the change is kept in its
 * history (alert_updates); it is not a new alert, and it starts the playbooks again only
 * when the change is significant: its level rose or its outcome became "succeeded"
 * (docs/sources.md). The same record again changes nothing. */
void admit_updates(struct tenant *t, struct alert *alerts, size_t n, admit_fn done, void *arg);
/* The same for records kept as events (tenants.<id>.events, engine/events.h): stored in
 * the events table (deduplicated on (source, source_id)), searchable with events.query,
 * pruned after the tenant's retention, never routed to playbooks. accepted and
 * duplicates count events. Their commit may wait up to 200 ms (shared with the next
 * batches); a batch the store cannot take for now (locked, a failed commit) is kept and
 * stored again later (up to 1,000,000 events held), so done sees ADMIT_OK, ADMIT_FAILED
 * (a store error, or too many held) or ADMIT_SHUTTING_DOWN only. */
void admit_events(struct tenant *t, struct alert *events, size_t n, admit_fn done, void *arg);
/* A polling source's position in its input (the byte offset reached in a storage blob):
 * the batch's records and the mark are written in one transaction, the mark only when
 * every record of the batch was stored (new or duplicate), so after a kill -9 the source
 * resumes exactly after what is durable. source and key name the mark (the source's own
 * names), value is the source's own text; all three are copied. done sees the batch's
 * status as for admit_alerts / admit_events; n may be 0 (a stretch of input that held no
 * record still moves the mark). A marked batch is committed at the end of its iteration,
 * events too (not within 200 ms): its source waits for the answer before reading on. */
struct admit_mark {
    const char *source;
    const char *key;
    const char *value;
};
void admit_alerts_marked(struct tenant *t, struct alert *alerts, size_t n,
                         const struct admit_mark *mark, admit_fn done, void *arg);
void admit_events_marked(struct tenant *t, struct alert *events, size_t n,
                         const struct admit_mark *mark, admit_fn done, void *arg);
/* The mark last stored for (source, key) in t's database: 0 with *value (malloc'd) or NULL
 * when there is none; -1 with *errp on a store error. */
int tenant_mark_get(struct tenant *t, const char *source, const char *key, char **value,
                    char **errp) KG_WUR;
/* Forget the source's marks last written before before_ms (input that can no longer
 * change), in the loop's transaction of the tenant; *deleted gets their number. */
int tenant_mark_prune(struct tenant *t, const char *source, int64_t before_ms, int *deleted,
                      char **errp) KG_WUR;
/* Whether record a becomes an alert for tenant t: the tenant's rule
 * (tenants.<id>.events.alerts) decides, and dflt is the source's own default for a
 * (it decides where the rule says "default" or when the tenant has no rule). */
int admit_is_alert(const struct tenant *t, const struct alert *a, int dflt);
/* ---- polling sources (engine/poll.c) ---- */

/* The tenant after t (NULL: the first) of those the daemon opened, or NULL at the end. */
struct tenant *poll_tenant_next(const struct tenant *t);

/* The cursor a poller keeps for stream (its own text, e.g. JSON: a watermark, the page
 * being followed) in t's database: *value (malloc'd), or NULL when there is none yet.
 * 0, or -1 with *errp. */
int poll_cursor_get(struct tenant *t, const char *stream, char **value, char **errp) KG_WUR;

/* Store value as stream's cursor in the loop's transaction of t and call done(arg, ok)
 * after its commit (ok 0: the commit failed and the cursor is the one before). A poller
 * writes it after the commit of the records it covers (admit's callback), so a crash
 * between the two makes it read those records again (deduplicated), never skip them.
 * Returns 0, or -1 with *errp (the store is locked or failing; done is not called). */
typedef void (*poll_commit_fn)(void *arg, int ok);
int poll_cursor_put(struct tenant *t, const char *stream, const char *value, poll_commit_fn done,
                    void *arg, char **errp) KG_WUR;

/* One pulled record (a JSON object, len bytes, kept byte for byte as the alert's raw)
 * normalized by the family that knows its shape (even when the vendor's object has a
 * "source" member of its own), else by the generic rules with hint as its source (may
 * be NULL). *a is filled (alert_free), or -1 with *errp naming what is wrong. */
int poll_normalize(const char *rec, size_t len, const char *hint, int64_t received_ms,
                   struct alert *a, char **errp) KG_WUR;

/* ---- built-ins a connector's Lua helpers may call ---- */

/* The playbooks' sleep(seconds), as a C function (defender.wait_action passes it as an
 * upvalue to its Lua helper). */
int builtin_sleep(lua_State *L);

#endif
