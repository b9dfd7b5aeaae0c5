/* run.c: the run scheduler, the journal with replay, and the effect driver that every
 * effect (built-in or connector) goes through. */
#include "engine/run.h"

#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "engine/json.h"
#include "engine/kagari.h"
#include "engine/library.h"
#include "engine/ljson.h"
#include "engine/log.h"
#include "engine/loop.h"
#include "engine/metrics.h"
#include "engine/secret.h"
#include "engine/store.h"
#include "engine/tenant.h"

#define RUN_PHASE_US 20000         /* CPU per loop iteration for runs before I/O again */
#define RUN_ERROR_MAX (16u << 10)  /* bytes of a run's stored error (docs/playbooks.md) */
#define RUN_RESULT_MAX (64u << 10) /* bytes of a run's stored result as JSON (the same) */

enum run_state { RS_QUEUED = 0, RS_RUNNING, RS_WAITING };
static const char *const state_names[] = { "queued", "running", "waiting" };

struct run {
    struct sandbox_task task; /* the hook and run_from_lua find the run through it */
    struct tenant *t;
    int64_t id;
    int64_t alert_id;
    struct playbook *pb; /* one reference */
    lua_State *co;       /* NULL until started */
    int co_ref;
    int state;
    int64_t started_ms;

    struct journal_entry *j; /* the journal: replayed entries, then new ones */
    size_t nj, capj;
    size_t cursor;          /* entries the playbook has consumed in this execution */
    size_t pending;         /* index of the entry a parked run waits for */
    int parked;             /* waiting for effect_done */
    int resume_with;        /* on resume, pass the result of j[pending] */
    char *fail_msg;         /* a failure explained better than the Lua error (divergence) */
    char *test_result;      /* in a playbook test: the return value as JSON */
    struct effect *ef;      /* the effect a parked run waits for */
    struct event *deadline; /* fires when a parked run reaches its deadline */
    char *approved;         /* after an approval with effects=: the calls it allows (JSON) */
    int dry_run; /* outside effects recorded, not performed: fixed when the run was created */

    int ready;
    struct run *rprev, *rnext; /* ready queue */
    struct run *prev, *next;   /* the tenant's runs */
};

static struct run_limits limits = { 100000000ULL, 86400, 5 };
static const struct run_test_hooks *test_hooks; /* a playbook test's driver, or NULL */
static struct playbook_set playbooks;
static struct run *ready_head, *ready_tail;
static size_t nready, nactive;
static struct {
    unsigned long long started, done, failed, replayed, diverged;
    unsigned long long effects_replayed, dry_run, in_doubt_failed;
    unsigned long long waits[3]; /* by enum effect_wait_reason */
} stats;

static const char *const wait_reasons[3] = { "throttled", "retry", "breaker" };

/* A pending effect: what the driver keeps while its op works. */
struct effect {
    struct run *r;
    size_t entry;        /* its journal entry: r->j[entry] */
    int in_doubt;        /* a crash left the entry started */
    int opening;         /* inside spec->open: effect_done only records */
    int finished;        /* effect_done was called */
    int awaiting_commit; /* start waits for the journal commit */
    int cancelled;       /* the run went away while the commit was pending */
    void *op;
    void (*start)(void *op);
    void (*cancel)(void *op);
    struct event *kick; /* starts an idempotent effect on the next loop pass */
};

static void effect_cancel(struct effect *ef);
static int journal_push(lua_State *L, const struct journal_entry *e);

/* ---- lists ---- */

static void
ready_push(struct run *r)
{
    if (r->ready) {
        return;
    }
    r->ready = 1;
    r->rnext = NULL;
    r->rprev = ready_tail;
    if (ready_tail != NULL) {
        ready_tail->rnext = r;
    } else {
        ready_head = r;
    }
    ready_tail = r;
    nready++;
    loop_wake(); /* it may have become ready outside the scheduler's phase */
}

static void
ready_remove(struct run *r)
{
    if (!r->ready) {
        return;
    }
    if (r->rprev != NULL) {
        r->rprev->rnext = r->rnext;
    } else {
        ready_head = r->rnext;
    }
    if (r->rnext != NULL) {
        r->rnext->rprev = r->rprev;
    } else {
        ready_tail = r->rprev;
    }
    r->ready = 0;
    r->rprev = r->rnext = NULL;
    nready--;
}

static struct run *
run_new(struct tenant *t, int64_t id, int64_t alert_id, struct playbook *pb)
{
    struct run *r = xcalloc(1, sizeof(*r));

    r->task.owner = r;
    r->t = t;
    r->id = id;
    r->alert_id = alert_id;
    r->pb = pb;
    playbook_ref(pb);
    r->dry_run = pb->dry_run;
    r->co_ref = LUA_NOREF;
    r->task.max_instructions = pb->instructions ? pb->instructions : limits.instructions;
    r->next = t->runs;
    if (t->runs != NULL) {
        t->runs->prev = r;
    }
    t->runs = r;
    t->nruns++;
    nactive++;
    return r;
}

/* Free the in-memory run. close_thread: run the coroutine's pending __close handlers
 * (a run that ended); a run parked for shutdown is just dropped. */
static void
run_free(struct run *r, int close_thread)
{
    struct tenant *t = r->t;

    ready_remove(r);
    if (r->ef != NULL) {
        struct effect *ef = r->ef;

        r->ef = NULL;
        effect_cancel(ef);
    }
    if (r->co != NULL) {
        lua_State *L = sandbox_state(t->sb);

        r->task.slice_end_us = 0;
        if (close_thread) {
            lua_resetthread(r->co);
        }
        *(void **)lua_getextraspace(r->co) = NULL;
        lua_sethook(r->co, NULL, 0, 0);
        luaL_unref(L, LUA_REGISTRYINDEX, r->co_ref);
    }
    if (r->deadline != NULL) {
        event_free(r->deadline);
    }
    journal_entries_free(r->j, r->nj);
    playbook_unref(r->pb);
    free(r->fail_msg);
    free(r->approved);
    free(r->test_result);
    if (r->prev != NULL) {
        r->prev->next = r->next;
    } else {
        t->runs = r->next;
    }
    if (r->next != NULL) {
        r->next->prev = r->prev;
    }
    t->nruns--;
    nactive--;
    free(r);
}

static void
set_state(struct run *r, int state)
{
    char *err = NULL;

    if (r->state == state) {
        return;
    }
    r->state = state;
    if (loop_write_lazy(r->t->db, &err) == -1 ||
        store_run_update(r->t->db, r->id, state_names[state], r->started_ms, 0, NULL, &err) == -1) {
        log_err("run.state_failed tenant=%s run=%lld error=%s", r->t->id, (long long)r->id,
                log_quote(err ? err : "?"));
    }
    free(err);
}

/* A message as stored: cut to max bytes (with a marker saying how many were dropped)
 * and made valid UTF-8. The caller frees it. */
static char *
run_message(const char *msg, size_t max)
{
    char *cut = util_cut_text(msg, max);
    char *clean = util_utf8_clean(cut, strlen(cut), NULL);

    free(cut);
    return clean;
}

/* What a run's playbook returned, as stored: the JSON text (NULL for nil or nothing), or
 * a note saying why the value was not kept. */
struct run_result {
    char *json;
    char *note;
};

struct result_args {
    cJSON *tree;
    char *err;
};

static int
result_p(lua_State *L)
{
    struct result_args *ra = lua_touserdata(L, 1);

    ra->tree = ljson_from_lua(L, 2, &ra->err);
    return 0;
}

/* Convert the first of the nres values a finished coroutine returned. A value JSON cannot
 * hold (a function, a cycle, a non-string key...) or one over RUN_RESULT_MAX bytes is not
 * kept: the run still succeeds and the note says why. Secrets are masked as in the
 * journal. */
static void
run_result_take(struct run *r, int nres, struct run_result *out)
{
    lua_State *L = sandbox_state(r->t->sb);
    struct result_args ra = { NULL, NULL };
    int top = lua_gettop(L);
    size_t len;

    memset(out, 0, sizeof(*out));
    if (nres < 1 || lua_isnil(r->co, -nres)) {
        return;
    }
    if (lua_type(r->co, -nres) == LUA_TSTRING && lua_rawlen(r->co, -nres) > RUN_RESULT_MAX) {
        /* Not even converted: a long string needs no copy to be refused. */
        out->note = xasprintf("the returned value is a string of %zu bytes, over the cap of %u "
                              "bytes, and was not kept",
                              (size_t)lua_rawlen(r->co, -nres), RUN_RESULT_MAX);
        return;
    }
    if (!lua_checkstack(L, 3) || !lua_checkstack(r->co, 1)) {
        out->note = xstrdup("the returned value was not kept: out of memory");
        return;
    }
    lua_pushcfunction(L, result_p);
    lua_pushlightuserdata(L, &ra);
    lua_pushvalue(r->co, -nres);
    lua_xmove(r->co, L, 1);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        lua_settop(L, top);
        cJSON_Delete(ra.tree);
        free(ra.err);
        out->note = xstrdup("the returned value was not kept: out of memory");
        return;
    }
    lua_settop(L, top);
    if (ra.tree == NULL) {
        char *m = run_message(ra.err ? ra.err : "?", 512);

        out->note = xasprintf("the returned value is not JSON and was not kept: %s", m);
        free(m);
        free(ra.err);
        return;
    }
    out->json = json_print(ra.tree);
    cJSON_Delete(ra.tree);
    len = strlen(out->json);
    if (len > RUN_RESULT_MAX) {
        free(out->json);
        out->json = NULL;
        out->note = xasprintf("the returned value is %zu bytes as JSON, over the cap of %u "
                              "bytes, and was not kept",
                              len, RUN_RESULT_MAX);
        return;
    }
    secret_redact(out->json);
}

/* The run ended: record it and free it. The error is stored cut to RUN_ERROR_MAX bytes:
 * a playbook's error(string.rep("x", 5e7)) must not store 50 MB per run. The result (may
 * be NULL) is recorded in the same transaction as the final state. */
static void
run_end_result(struct run *r, int ok, const char *error, const struct run_result *res)
{
    char *err = NULL;
    int64_t now = util_now_ms();
    char *stored = error != NULL ? run_message(error, RUN_ERROR_MAX) : NULL;

    if (ok) {
        stats.done++;
    } else {
        stats.failed++;
    }
    if (loop_write_lazy(r->t->db, &err) == -1 ||
        store_run_update(r->t->db, r->id, ok ? "done" : "failed", r->started_ms, now, stored,
                         &err) == -1 ||
        (res != NULL && (res->json != NULL || res->note != NULL) &&
         store_run_set_result(r->t->db, r->id, res->json, res->note, &err) == -1)) {
        log_err("run.end_failed tenant=%s run=%lld error=%s", r->t->id, (long long)r->id,
                log_quote(err ? err : "?"));
    }
    free(err);
    if (res != NULL && res->note != NULL) {
        log_warn("run.result_dropped tenant=%s run=%lld playbook=%s reason=%s", r->t->id,
                 (long long)r->id, r->pb->name, log_quote(res->note));
    }
    if (test_hooks != NULL) {
        test_hooks->ended(test_hooks->arg, r->id, ok, r->test_result, stored);
    }
    if (ok) {
        log_debug("run.done tenant=%s run=%lld playbook=%s ms=%lld", r->t->id, (long long)r->id,
                  r->pb->name, (long long)(now - r->started_ms));
    } else {
        log_warn("run.failed tenant=%s run=%lld playbook=%s error=%s", r->t->id, (long long)r->id,
                 r->pb->name, log_quote(stored ? stored : "?"));
    }
    free(stored);
    run_free(r, 1);
}

static void
run_end(struct run *r, int ok, const char *error)
{
    run_end_result(r, ok, error, NULL);
}

/* ---- the alert as a Lua value ---- */

static void
set_str(lua_State *L, const char *k, const char *v)
{
    if (v != NULL) {
        lua_pushstring(L, v);
        lua_setfield(L, -2, k);
    }
}

static void
set_time(lua_State *L, const char *k, const char *kiso, int64_t ms)
{
    char iso[32];

    lua_pushnumber(L, (lua_Number)ms / 1000.0);
    lua_setfield(L, -2, k);
    util_fmt_time(ms, iso);
    lua_pushstring(L, iso);
    lua_setfield(L, -2, kiso);
}

/* Push the alert table (raises on memory errors: call protected). */
static void
push_alert(lua_State *L, const struct alert *a)
{
    lua_createtable(L, 0, 16);
    lua_pushinteger(L, a->id);
    lua_setfield(L, -2, "id");
    set_str(L, "source", a->source);
    set_str(L, "source_id", a->source_id);
    set_time(L, "time", "time_iso", a->time_ms);
    set_time(L, "received", "received_iso", a->received_ms);
    set_str(L, "title", a->title);
    set_str(L, "category", a->category);
    set_str(L, "vendor_severity", a->vendor_severity);
    set_str(L, "severity", severity_name(a->severity));
    lua_pushinteger(L, a->severity);
    lua_setfield(L, -2, "severity_level");
    set_str(L, "outcome", a->outcome);
    set_str(L, "class", alert_class_name(a->cls));
    lua_createtable(L, (int)a->nobs, 0);
    for (size_t i = 0; i < a->nobs; i++) {
        lua_createtable(L, 0, 3);
        set_str(L, "type", a->obs[i].type);
        set_str(L, "value", a->obs[i].value);
        set_str(L, "role", a->obs[i].role);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "observables");
    if (a->raw != NULL && ljson_push_text(L, a->raw, strlen(a->raw)) == -1) {
        lua_pop(L, 1);
        lua_pushstring(L, a->raw);
    }
    if (a->raw != NULL) {
        lua_setfield(L, -2, "raw");
    }
    luaL_setmetatable(L, "kagari.alert");
}

void
run_push_alert(lua_State *L, const struct alert *a)
{
    push_alert(L, a);
}

/* ---- starting and resuming ---- */

/* The trusted function at the bottom of every run's coroutine: bootstrap(chunk, env,
 * alert) evaluates the playbook file with the run's own _ENV, then calls its
 * run(alert). Continuations make both calls yieldable. */
static int boot_k(lua_State *L, int status, lua_KContext ctx);

static int
l_boot(lua_State *L)
{
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_callk(L, 1, 1, 1, boot_k);
    return boot_k(L, LUA_OK, 1);
}

static int
boot_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    if (ctx == 1) {
        if (lua_type(L, 4) != LUA_TTABLE || lua_getfield(L, 4, "run") != LUA_TFUNCTION) {
            return luaL_error(L, "the playbook file must end with: return playbook{ ..., run = "
                                 "function(alert) ... end }");
        }
        lua_pushvalue(L, 3);
        lua_callk(L, 1, LUA_MULTRET, 2, boot_k);
    }
    return lua_gettop(L) - 4;
}

struct start_args {
    struct run *r;
    const struct alert *a;
};

#define COMPILED_KEY "kagari.compiled"
#define ENV_PREFIX "local _ENV = ...; "

/* Push the compiled chunk of the run's playbook version, compiling it the first time
 * this tenant state sees the version. The text is compiled as
 * "local _ENV = ...; <source>" (on its first line, so line numbers stay): each call of
 * the one compiled function with a run's env gives that run its own globals, and a
 * playbook is parsed once, not once per run. Raises on a syntax error. */
static void
push_compiled(lua_State *L, struct run *r)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, COMPILED_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, COMPILED_KEY);
    }
    if (lua_getfield(L, -1, r->pb->hash) != LUA_TFUNCTION) {
        size_t plen = strlen(ENV_PREFIX);
        char *src = xmalloc(plen + r->pb->len + 1);
        char *chunkname = xasprintf("@%s", r->pb->name);
        char *err = NULL;
        int rc;

        lua_pop(L, 1);
        memcpy(src, ENV_PREFIX, plen);
        memcpy(src + plen, r->pb->source, r->pb->len);
        sandbox_push_env(r->t->sb, L); /* the chunk's own upvalue: never read */
        rc = sandbox_load(L, src, plen + r->pb->len, chunkname, lua_gettop(L), &err);
        free(src);
        free(chunkname);
        if (rc == -1) {
            lua_pushstring(L, err);
            free(err);
            lua_error(L);
        }
        lua_remove(L, -2);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, r->pb->hash);
    }
    lua_remove(L, -2); /* the cache table */
}

/* Protected: create the coroutine and push boot, chunk, env, alert on it. */
static int
start_p(lua_State *L)
{
    struct start_args *sa = lua_touserdata(L, 1);
    struct run *r = sa->r;
    lua_State *co;

    co = lua_newthread(L);
    lua_pushcfunction(L, l_boot);
    push_compiled(L, r);
    sandbox_push_env(r->t->sb, L);
    if (r->pb->nlibs > 0) { /* the version's own require, its libraries cached per state */
        library_push_require(L, r->t->sb, r->pb->hash, r->pb->libs, r->pb->nlibs);
        lua_setfield(L, -2, "require");
    }
    push_alert(L, sa->a);
    if (!lua_checkstack(co, 8)) {
        return luaL_error(L, "out of memory");
    }
    lua_xmove(L, co, 4);
    r->co = co;
    r->co_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* pops the thread */
    return 0;
}

static int
run_start(struct run *r)
{
    lua_State *L = sandbox_state(r->t->sb);
    struct alert a;
    struct start_args sa;
    char *err = NULL;
    int rc;

    memset(&a, 0, sizeof(a));
    rc = store_alert_get(r->t->db, r->alert_id, &a, &err);
    if (rc != 1) {
        char *msg = xasprintf("alert %lld: %s", (long long)r->alert_id, err ? err : "not found");

        free(err);
        run_end(r, 0, msg);
        free(msg);
        return -1;
    }
    if (r->started_ms == 0) {
        r->started_ms = util_now_ms();
        stats.started++;
    }
    r->task.deadline_ms =
        r->started_ms + (int64_t)((r->pb->timeout > 0 ? r->pb->timeout : limits.timeout) * 1000);
    sa.r = r;
    sa.a = &a;
    lua_pushcfunction(L, start_p);
    lua_pushlightuserdata(L, &sa);
    rc = lua_pcall(L, 1, 0, 0);
    alert_free(&a);
    if (rc != LUA_OK) {
        char *msg = xstrdup(lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "cannot start");

        lua_pop(L, 1);
        if (r->co != NULL) {
            luaL_unref(L, LUA_REGISTRYINDEX, r->co_ref);
            r->co = NULL;
        }
        run_end(r, 0, msg);
        free(msg);
        return -1;
    }
    sandbox_task_attach(r->co, &r->task);
    return 0;
}

static int
push_entry_p(lua_State *L)
{
    const struct journal_entry *e = lua_touserdata(L, 1);

    lua_settop(L, 0);
    return journal_push(L, e);
}

/* Move the pending effect's results onto the suspended coroutine. -1 on memory error. */
static int
push_results(struct run *r)
{
    lua_State *L = sandbox_state(r->t->sb);
    int top = lua_gettop(L);
    int n;

    lua_pushcfunction(L, push_entry_p);
    lua_pushlightuserdata(L, &r->j[r->pending]);
    if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK) {
        lua_settop(L, top);
        return -1;
    }
    n = lua_gettop(L) - top;
    if (!lua_checkstack(r->co, n + 1)) {
        lua_settop(L, top);
        return -1;
    }
    lua_xmove(L, r->co, n);
    return n;
}

/* Give the run CPU until it ends, parks on an effect or its time slice is over. */
static void
run_step(struct run *r)
{
    lua_State *L = sandbox_state(r->t->sb);
    int nargs = 0, nres = 0, status;

    if (r->co == NULL) {
        if (run_start(r) == -1) {
            return;
        }
        nargs = 3;
    } else if (r->resume_with) {
        r->resume_with = 0;
        nargs = push_results(r);
        if (nargs < 0) {
            run_end(r, 0, "out of memory passing an effect's result");
            return;
        }
    }
    set_state(r, RS_RUNNING);
    r->task.slice_end_us = util_mono_us() + (int64_t)(limits.slice_ms * 1000);
    status = sandbox_resume(r->co, L, nargs, &nres);
    if (status == LUA_YIELD) {
        lua_pop(r->co, nres);
        if (r->parked) {
            set_state(r, RS_WAITING);
        } else {
            ready_push(r); /* time slice over */
        }
        return;
    }
    if (status == LUA_OK) {
        struct run_result res;

        run_result_take(r, nres, &res);
        if (test_hooks != NULL && res.json != NULL) {
            r->test_result = xstrdup(res.json);
        }
        lua_pop(r->co, nres);
        run_end_result(r, 1, NULL, &res);
        free(res.json);
        free(res.note);
        return;
    } else {
        char *msg = sandbox_error_message(r->co);

        if (r->fail_msg != NULL) {
            char *m2 = xasprintf("%s\n%s", r->fail_msg, msg);

            free(msg);
            msg = m2;
        }
        run_end(r, 0, msg);
        free(msg);
    }
}

static void
run_metrics(struct buf *b, void *arg)
{
    (void)arg;
    metrics_counter(b, "kagari_runs_started_total", NULL, stats.started);
    metrics_labelled(b, "kagari_runs_finished_total", "state", "done", stats.done, 1);
    metrics_labelled(b, "kagari_runs_finished_total", "state", "failed", stats.failed, 0);
    metrics_counter(b, "kagari_runs_replayed_total", NULL, stats.replayed);
    metrics_counter(b, "kagari_runs_diverged_total", NULL, stats.diverged);
    metrics_gauge(b, "kagari_runs_ready", NULL, (double)nready);
    metrics_gauge(b, "kagari_runs_active", NULL, (double)nactive);
    metrics_labelled(b, "kagari_effects_total", "result", "replayed", stats.effects_replayed, 1);
    metrics_labelled(b, "kagari_effects_total", "result", "dry_run", stats.dry_run, 0);
    metrics_labelled(b, "kagari_effects_total", "result", "in_doubt_failed", stats.in_doubt_failed,
                     0);
    for (int i = 0; i < 3; i++) {
        metrics_labelled(b, "kagari_effect_waits_total", "reason", wait_reasons[i], stats.waits[i],
                         i == 0);
    }
}

static int
sched_phase(void *arg)
{
    int64_t until = util_mono_us() + RUN_PHASE_US;

    (void)arg;
    while (ready_head != NULL) {
        struct run *r = ready_head;

        ready_remove(r);
        run_step(r);
        if (util_mono_us() >= until) {
            break;
        }
    }
    return ready_head != NULL;
}

void
run_init(const struct run_limits *lim)
{
    limits = *lim;
    loop_add_phase(LOOP_PHASE_RUNS, sched_phase, NULL);
    metrics_add(run_metrics, NULL);
}

void
run_set_playbooks(struct playbook_set *set)
{
    playbook_set_free(&playbooks);
    playbooks = *set;
    set->v = NULL;
    set->n = 0;
}

const struct playbook_set *
run_playbooks(void)
{
    return &playbooks;
}

/* The playbook's dry-run switch (set by people in the portal) decides for the new run id,
 * durably: a replay after a restart keeps it whatever the switch says then. 1 with *dry
 * when the switch is set (written on the run), 0 when not (the version's own dry_run
 * counts), -1 with *errp. */
static int
run_switch(struct tenant *t, const struct playbook *pb, int64_t id, int *dry, char **errp)
{
    int sw = store_switch_get(t->db, pb->name, dry, NULL, NULL, errp);

    if (sw == 1 && store_run_set_dry_run(t->db, id, *dry, errp) == -1) {
        return -1;
    }
    return sw;
}

int
run_route(struct tenant *t, const struct alert *a, int *nruns, char **errp)
{
    int64_t now = util_now_ms();

    *nruns = 0;
    for (size_t i = 0; i < playbooks.n; i++) {
        struct playbook *pb = playbooks.v[i];
        int64_t id;
        struct run *r;
        int sw, dry = 0;

        if (!playbook_matches(pb, a)) {
            continue;
        }
        if (tenant_save_version(t, pb, errp) == -1 || loop_write(t->db, errp) == -1 ||
            store_run_insert(t->db, a->id, pb->name, pb->hash, now, &id, errp) == -1) {
            return -1;
        }
        if ((sw = run_switch(t, pb, id, &dry, errp)) == -1) {
            return -1;
        }
        r = run_new(t, id, a->id, pb);
        if (sw == 1) {
            r->dry_run = dry;
        }
        ready_push(r);
        (*nruns)++;
    }
    return 0;
}

int
run_start_by(struct tenant *t, int64_t alert_id, const char *playbook, const char *requester,
             int64_t *id, char **errp)
{
    struct playbook *pb = NULL;
    struct run *r;
    int sw = 0, dry = 0;

    *id = 0;
    for (size_t i = 0; i < playbooks.n && pb == NULL; i++) {
        if (strcmp(playbooks.v[i]->name, playbook) == 0) {
            pb = playbooks.v[i];
        }
    }
    if (pb == NULL) {
        return kg_err(errp, "no playbook named %s is loaded", playbook);
    }
    if (tenant_save_version(t, pb, errp) == -1 || loop_write(t->db, errp) == -1 ||
        store_run_insert(t->db, alert_id, pb->name, pb->hash, util_now_ms(), id, errp) == -1 ||
        store_run_set_requester(t->db, *id, requester, errp) == -1 ||
        (sw = run_switch(t, pb, *id, &dry, errp)) == -1) {
        return -1;
    }
    r = run_new(t, *id, alert_id, pb);
    if (sw == 1) {
        r->dry_run = dry;
    }
    ready_push(r);
    log_info("run.started_by tenant=%s run=%lld playbook=%s alert=%lld requester=%s", t->id,
             (long long)*id, pb->name, (long long)alert_id, log_quote(requester));
    return 0;
}

int
run_recover(struct tenant *t, char **errp)
{
    struct store_run *list = NULL;
    size_t n = 0;

    if (store_run_unfinished(t->db, &list, &n, errp) == -1) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        struct playbook *pb;
        struct run *r;
        char *err = NULL;
        int known = 0;

        for (r = t->runs; r != NULL && !known; r = r->next) {
            known = r->id == list[i].id; /* already in memory (a reload) */
        }
        if (known) {
            continue;
        }
        pb = tenant_version(t, list[i].hash);

        if (pb == NULL) {
            if (loop_write(t->db, &err) == 0) {
                (void)!store_run_update(t->db, list[i].id, "failed", 0, util_now_ms(),
                                        "its playbook version is missing from the store", &err);
            }
            free(err);
            continue;
        }
        r = run_new(t, list[i].id, list[i].alert_id, pb);
        if (list[i].dry_run >= 0) {
            r->dry_run = list[i].dry_run;
        }
        r->started_ms = list[i].started_ms;
        for (int s = 0; s < 3; s++) {
            if (strcmp(list[i].state, state_names[s]) == 0) {
                r->state = s;
            }
        }
        if (store_journal_load(t->db, r->id, &r->j, &r->nj, &err) == -1) {
            log_err("run.recover_failed tenant=%s run=%lld error=%s", t->id, (long long)r->id,
                    log_quote(err ? err : "?"));
            free(err);
            run_free(r, 0);
            continue;
        }
        r->capj = r->nj;
        stats.replayed++;
        log_info("run.recover tenant=%s run=%lld playbook=%s state=%s journal=%zu", t->id,
                 (long long)r->id, pb->name, list[i].state, r->nj);
        ready_push(r);
    }
    store_runs_free(list, n);
    return 0;
}

void
run_tenant_close(struct tenant *t)
{
    while (t->runs != NULL) {
        run_free(t->runs, 0);
    }
}

void
run_tenant_reset(struct store_tenant *db, void *arg)
{
    char *err = NULL;

    (void)arg;
    for (struct tenant *t = tenants_first(); t != NULL; t = t->next) {
        if (t->db != db) {
            continue;
        }
        run_tenant_close(t);
        if (loop_locked(db)) {
            continue; /* replayed when the lock is gone: the loop calls again */
        }
        if (run_recover(t, &err) == -1) {
            log_err("run.reset_failed tenant=%s error=%s", t->id, log_quote(err ? err : "?"));
            free(err);
        }
    }
}

size_t
run_ready_count(void)
{
    return nready;
}

size_t
run_active_count(void)
{
    return nactive;
}

/* ---- what plug-ins see of a run ---- */

struct run *
run_from_lua(lua_State *L)
{
    struct sandbox_task *task = sandbox_task_of(L);

    return task != NULL ? task->owner : NULL;
}

int64_t
run_id(const struct run *r)
{
    return r->id;
}

struct tenant *
run_tenant(const struct run *r)
{
    return r->t;
}

const char *
run_playbook_name(const struct run *r)
{
    return r->pb->name;
}

int
run_next_step(const struct run *r)
{
    return (int)r->cursor + 1;
}

int64_t
run_deadline_ms(const struct run *r)
{
    return r->task.deadline_ms;
}

int64_t
run_alert_id(const struct run *r)
{
    return r->alert_id;
}

int64_t
run_now_ms(const struct run *r)
{
    (void)r;
    return test_hooks != NULL ? test_hooks->clock_ms(test_hooks->arg) : util_now_ms();
}

void
run_set_test_hooks(const struct run_test_hooks *hooks)
{
    test_hooks = hooks;
}

/* ---- the journal ---- */

static void
journal_write(struct run *r, struct journal_entry *e, lua_State *L)
{
    char *err = NULL;

    if (loop_write_lazy(r->t->db, &err) == -1 || store_journal_put(r->t->db, e, &err) == -1) {
        log_err("run.journal_failed tenant=%s run=%lld error=%s", r->t->id, (long long)r->id,
                log_quote(err ? err : "?"));
        if (L != NULL) {
            lua_pushfstring(L, "journal: %s", err ? err : "write failed");
            free(err);
            lua_error(L);
        }
    }
    free(err);
}

enum step { STEP_NEW = 0, STEP_REPLAYED, STEP_IN_DOUBT };

/* Take the next journal step for kind(request): the entry at this position when
 * replaying (it must be the same effect, else the run is killed as diverged), or a new
 * "started" entry in memory. r->pending is its index. */
static enum step
journal_step(lua_State *L, struct run *r, const char *kind, const char *request)
{
    struct journal_entry *e;

    if (r->cursor < r->nj) {
        e = &r->j[r->cursor];
        if (strcmp(e->kind, kind) != 0 || strcmp(e->request, request) != 0) {
            stats.diverged++;
            free(r->fail_msg);
            r->fail_msg = xasprintf("diverged from its journal at step %d: the journal has "
                                    "%s %.200s, the playbook now asks for %s %.200s",
                                    e->seq, e->kind, e->request, kind, request);
            sandbox_task_kill(L, &r->task, "diverged from its journal");
            luaL_error(L, "%s", r->fail_msg);
        }
        r->pending = r->cursor++;
        return e->status == JOURNAL_STARTED ? STEP_IN_DOUBT : STEP_REPLAYED;
    }
    if (r->nj == r->capj) {
        r->capj = r->capj ? r->capj * 2 : 4;
        r->j = xrealloc(r->j, r->capj * sizeof(*r->j));
    }
    e = &r->j[r->nj];
    memset(e, 0, sizeof(*e));
    e->run_id = r->id;
    e->seq = (int)r->nj + 1;
    e->kind = xstrdup(kind);
    e->request = xstrdup(request);
    e->status = JOURNAL_STARTED;
    e->started_ms = util_now_ms();
    r->pending = r->nj++;
    r->cursor = r->nj;
    return STEP_NEW;
}

/* Push a finished entry's result as the effect's return values: the value (ok) or
 * nil, message (failed). Returns the number of values. */
static int
journal_push(lua_State *L, const struct journal_entry *e)
{
    const char *res = e->result ? e->result : "null";

    if (e->status == JOURNAL_DONE) {
        if (ljson_push_text(L, res, strlen(res)) == -1) {
            lua_pop(L, 1);
            lua_pushnil(L);
            lua_pushstring(L, "journal: recorded result is not JSON");
            return 2;
        }
        return 1;
    }
    lua_pushnil(L);
    if (ljson_push_text(L, res, strlen(res)) == -1 || lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 1);
        lua_pushstring(L, res);
    }
    return 2;
}

/* Record the entry at index i as finished now: ok with JSON text (NULL: true), or
 * failed with a plain message (stored as a JSON string). Secrets are masked. The caps of
 * journal.h hold here: a result over JOURNAL_RESULT_MAX fails the effect, a message is
 * cut to JOURNAL_MESSAGE_MAX, and bytes that are not UTF-8 become U+FFFD. */
static void
journal_finish(struct run *r, size_t i, int ok, const char *result)
{
    struct journal_entry *e = &r->j[i];
    char *text;

    char *msg = NULL;
    size_t len = result != NULL ? strlen(result) : 0;

    if (ok && result != NULL) {
        text = len <= JOURNAL_RESULT_MAX ? util_utf8_clean(result, len, &len) : NULL;
        if (text == NULL || len > JOURNAL_RESULT_MAX) {
            free(text);
            text = NULL;
            ok = 0;
            msg = xasprintf("result of %zu bytes is over the journal's cap of %u bytes", len,
                            JOURNAL_RESULT_MAX);
            result = msg;
        }
    } else if (ok) {
        text = xstrdup("true");
    }
    if (!ok) {
        struct buf b;
        char *m = run_message(result != NULL ? result : "failed", JOURNAL_MESSAGE_MAX);

        buf_init(&b, 0);
        (void)!buf_json_string(&b, m, strlen(m));
        text = buf_take(&b);
        free(m);
    }
    free(msg);
    secret_redact(text);
    e->throttled_until = 0;
    e->status = ok ? JOURNAL_DONE : JOURNAL_FAILED;
    free(e->result);
    e->result = text;
    e->ended_ms = util_now_ms();
    journal_write(r, e, NULL);
}

/* ---- the effect driver ---- */

static void
effect_free(struct effect *ef)
{
    if (ef->kick != NULL) {
        event_free(ef->kick);
    }
    free(ef);
}

/* The run went away first: free the op now; the shell waits for a pending commit. */
static void
effect_cancel(struct effect *ef)
{
    if (ef->op != NULL) {
        void *op = ef->op;

        ef->op = NULL;
        ef->cancel(op);
    }
    if (ef->awaiting_commit) {
        ef->cancelled = 1; /* effect_after_commit frees it */
        return;
    }
    effect_free(ef);
}

static void
effect_after_commit(void *arg, int ok)
{
    struct effect *ef = arg;

    ef->awaiting_commit = 0;
    if (ef->cancelled) {
        effect_free(ef);
        return;
    }
    if (!ok) {
        return; /* the run is replayed from the database; that cancels this effect */
    }
    ef->start(ef->op);
}

static void
effect_kick(evutil_socket_t fd, short what, void *arg)
{
    struct effect *ef = arg;

    (void)fd;
    (void)what;
    ef->start(ef->op);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct run *r = arg;
    int64_t now = util_now_ms();

    (void)fd;
    (void)what;
    if (now < r->task.deadline_ms) { /* woken early by clock granularity */
        struct timeval tv = { (time_t)((r->task.deadline_ms - now) / 1000),
                              (suseconds_t)(((r->task.deadline_ms - now) % 1000) * 1000) };

        evtimer_add(r->deadline, &tv);
        return;
    }
    sandbox_task_kill(r->co, &r->task, "deadline exceeded");
    run_end(r, 0, "deadline exceeded while waiting");
}

/* Park the run on ef until effect_done. */
static int
effect_park(lua_State *L, struct run *r, struct effect *ef)
{
    r->ef = ef;
    r->parked = 1;
    if (r->task.deadline_ms != 0) {
        int64_t left = r->task.deadline_ms - util_now_ms();
        struct timeval tv;

        if (left < 0) {
            left = 0;
        }
        tv.tv_sec = (time_t)(left / 1000);
        tv.tv_usec = (suseconds_t)((left % 1000) * 1000);
        if (r->deadline == NULL) {
            r->deadline = evtimer_new(loop_base(), deadline_cb, r);
        }
        evtimer_add(r->deadline, &tv);
    }
    return lua_yield(L, 0);
}

/* The run cannot wait here (a metamethod, an iterator, table.sort): drop a new step so
 * the journal keeps no hole, then raise. */
static int
cannot_wait(lua_State *L, struct run *r, const char *kind)
{
    if (r->pending + 1 == r->nj && r->j[r->pending].ended_ms == 0 &&
        r->j[r->pending].status == JOURNAL_STARTED && r->cursor == r->nj) {
        journal_entry_free(&r->j[r->pending]);
        r->nj--;
        r->cursor = r->nj;
    }
    return luaL_error(L, "%s: cannot wait here (inside a metamethod, an iterator or table.sort)",
                      kind);
}

/* 1 when seg is a whole path segment of the URL-like text s ("/seg" followed by the end,
 * '/', '?' or '('). */
static int
has_segment(const char *s, const char *seg)
{
    size_t n = strlen(seg);

    for (const char *p = strchr(s, '/'); n > 0 && p != NULL; p = strchr(p + 1, '/')) {
        if (strncmp(p + 1, seg, n) == 0 &&
            (p[1 + n] == '\0' || p[1 + n] == '/' || p[1 + n] == '?' || p[1 + n] == '(')) {
            return 1;
        }
    }
    return 0;
}

/* 1 when the string v is the string j, or a path segment of it, as is or
 * percent-encoded (a call puts its ids into its URL). */
static int
string_holds(const char *j, const char *v)
{
    struct buf enc;
    int hit;

    if (strcmp(j, v) == 0 || has_segment(j, v)) {
        return 1;
    }
    buf_init(&enc, 0);
    for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            (void)!buf_append(&enc, p, 1);
        } else {
            (void)!buf_printf(&enc, "%%%02X", *p);
        }
    }
    hit = enc.data != NULL && has_segment(j, enc.data);
    buf_free(&enc);
    return hit;
}

/* 1 when the scalar v (a string or a number) is somewhere in the JSON value j. */
static int
json_holds(const cJSON *j, const cJSON *v)
{
    const cJSON *c;

    if (cJSON_IsString(v) && cJSON_IsString(j)) {
        return string_holds(j->valuestring, v->valuestring);
    }
    if (cJSON_IsNumber(v) && cJSON_IsNumber(j)) {
        return v->valuedouble == j->valuedouble;
    }
    cJSON_ArrayForEach(c, j)
    {
        if (json_holds(c, v)) {
            return 1;
        }
    }
    return 0;
}

/* After an approval that listed its effects, an outside effect must be one of them: an
 * entry [kind, arg, ...] allows a call of that kind whose request holds every arg.
 * NULL when allowed, else the malloc'd reason. */
static char *
approved_refuses(const char *approved, const char *kind, const char *request)
{
    cJSON *list = cJSON_Parse(approved), *req = cJSON_Parse(request);
    const cJSON *e;
    int ok = 0;

    cJSON_ArrayForEach(e, list)
    {
        const cJSON *k = cJSON_GetArrayItem(e, 0), *arg;
        int all = cJSON_IsString(k) && strcmp(k->valuestring, kind) == 0;

        for (int i = 1; all && (arg = cJSON_GetArrayItem(e, i)) != NULL; i++) {
            all = req != NULL && json_holds(req, arg);
        }
        if (all) {
            ok = 1;
            break;
        }
    }
    cJSON_Delete(list);
    cJSON_Delete(req);
    return ok ? NULL
              : xasprintf("%s: not among the effects approved for this run (approved: %s)", kind,
                          approved);
}

void
run_set_approved(struct run *r, const char *effects_json)
{
    free(r->approved);
    r->approved = effects_json != NULL ? xstrdup(effects_json) : NULL;
}

int
effect_run(lua_State *L, const struct effect_spec *spec)
{
    struct run *r = run_from_lua(L);
    struct effect *ef;
    enum step st;
    size_t entry, rlen;
    const char *request;
    char *msg;
    void *op;
    int intercept;

    if (r == NULL) {
        return luaL_error(L, "%s: only inside a playbook run", spec->kind);
    }
    rlen = strlen(spec->request);
    if (rlen > JOURNAL_REQUEST_MAX) {
        /* Stored as its size and hash: a replay of the same request still matches. */
        char hash[65];

        util_sha256_hex(spec->request, rlen, hash);
        lua_pushfstring(L, "{\"too_large\":%I,\"sha256\":\"%s\"}", (lua_Integer)rlen, hash);
        request = lua_tostring(L, -1);
    } else {
        /* The copy on the Lua stack is collected even when journal_step raises. */
        char *clean = util_utf8_clean(spec->request, rlen, NULL);

        lua_pushstring(L, clean);
        free(clean);
        request = lua_tostring(L, -1);
    }
    st = journal_step(L, r, spec->kind, request);
    entry = r->pending;
    if (rlen > JOURNAL_REQUEST_MAX && st != STEP_REPLAYED) {
        msg = xasprintf("%s: request of %zu bytes is over the journal's cap of %u bytes",
                        spec->kind, rlen, JOURNAL_REQUEST_MAX);
        journal_finish(r, entry, 0, msg);
        free(msg);
        return journal_push(L, &r->j[entry]);
    }
    if (st == STEP_REPLAYED) {
        if (spec->flags & EFFECT_OUTSIDE) {
            stats.effects_replayed++;
        }
        return journal_push(L, &r->j[entry]);
    }
    if ((spec->flags & EFFECT_OUTSIDE) && !(spec->flags & EFFECT_NOTICE) && r->approved != NULL &&
        (msg = approved_refuses(r->approved, spec->kind, request)) != NULL) {
        log_warn("effect.not_approved tenant=%s run=%lld kind=%s", r->t->id, (long long)r->id,
                 spec->kind);
        journal_finish(r, entry, 0, msg);
        free(msg);
        return journal_push(L, &r->j[entry]);
    }
    intercept = test_hooks != NULL && !(spec->flags & EFFECT_ENGINE);
    if (spec->check != NULL && !intercept && (msg = spec->check(r, spec->arg)) != NULL) {
        journal_finish(r, entry, 0, msg);
        free(msg);
        return journal_push(L, &r->j[entry]);
    }
    if ((spec->flags & EFFECT_OUTSIDE) && (r->dry_run || tenant_dry_run(r->t))) {
        char *res = xasprintf("{\"dry_run\":true,\"request\":%s}", request);

        stats.dry_run++;
        log_info("effect.dry_run tenant=%s run=%lld kind=%s", r->t->id, (long long)r->id,
                 spec->kind);
        if (intercept) {
            test_hooks->dry_run(test_hooks->arg, spec->kind, request);
        }
        journal_finish(r, entry, 1, res);
        free(res);
        return journal_push(L, &r->j[entry]);
    }
    if (st == STEP_IN_DOUBT && (spec->flags & EFFECT_OUTSIDE) &&
        !(spec->flags & (EFFECT_IDEMPOTENT | EFFECT_RECONCILES))) {
        stats.in_doubt_failed++;
        journal_finish(r, entry, 0,
                       "left in doubt by a restart and not safe to repeat: check the target by "
                       "hand");
        return journal_push(L, &r->j[entry]);
    }
    ef = xcalloc(1, sizeof(*ef));
    ef->r = r;
    ef->entry = entry;
    ef->in_doubt = st == STEP_IN_DOUBT;
    ef->opening = 1;
    if (intercept) {
        test_hooks->effect(test_hooks->arg, ef, spec->kind, request);
        op = NULL;
    } else {
        op = spec->open(ef, spec->arg);
    }
    ef->opening = 0;
    if (op == NULL) {
        if (!ef->finished) {
            journal_finish(r, entry, 0, "the effect neither finished nor started");
        }
        free(ef);
        return journal_push(L, &r->j[entry]);
    }
    ef->op = op;
    ef->start = spec->start;
    ef->cancel = spec->cancel;
    if (!lua_isyieldable(L)) {
        effect_cancel(ef);
        return cannot_wait(L, r, spec->kind);
    }
    if ((spec->flags & EFFECT_OUTSIDE) && !(spec->flags & EFFECT_IDEMPOTENT)) {
        char *err = NULL;

        /* Journal first: the request goes out only once its "started" entry is durable. */
        if (loop_write(r->t->db, &err) == -1) {
            free(err);
            effect_cancel(ef);
            return luaL_error(L, "%s: journal unavailable", spec->kind);
        }
        journal_write(r, &r->j[entry], L);
        ef->awaiting_commit = 1;
        loop_after_commit(r->t->db, effect_after_commit, ef);
    } else if (spec->flags & EFFECT_OUTSIDE) {
        /* Repeating it is harmless, so it need not wait for its entry to be durable: a
         * crash before the commit just performs it again on replay. It starts from the
         * loop, never from here: the run has not parked yet. */
        struct timeval now = { 0, 0 };

        ef->kick = evtimer_new(loop_base(), effect_kick, ef);
        evtimer_add(ef->kick, &now);
    } else {
        journal_write(r, &r->j[entry], L);
        ef->start(ef->op);
    }
    return effect_park(L, r, ef);
}

void
effect_done(struct effect *ef, int ok, const char *result)
{
    struct run *r = ef->r;

    journal_finish(r, ef->entry, ok, result);
    if (ef->opening) {
        ef->finished = 1;
        return;
    }
    ef->op = NULL;
    r->ef = NULL;
    effect_free(ef);
    if (r->deadline != NULL) {
        evtimer_del(r->deadline);
    }
    r->parked = 0;
    r->resume_with = 1;
    ready_push(r);
}

void
effect_wait(struct effect *ef, enum effect_wait_reason reason, int status, int64_t until_ms)
{
    struct run *r = ef->r;
    struct journal_entry *e = &r->j[ef->entry];
    int64_t now = util_now_ms();
    size_t old = e->waits != NULL ? strlen(e->waits) : 0;
    struct buf b;

    stats.waits[reason]++;
    log_debug("effect.wait tenant=%s run=%lld step=%d kind=%s reason=%s status=%d wait_ms=%lld",
              r->t->id, (long long)r->id, e->seq, e->kind, wait_reasons[reason], status,
              (long long)(until_ms - now));
    e->throttled_until = reason == EFFECT_WAIT_THROTTLED ? until_ms : 0;
    if (old < JOURNAL_WAITS_MAX) {
        buf_init(&b, 0);
        if (old > 2) {
            (void)!buf_append(&b, e->waits, old - 1); /* without the closing ] */
            (void)!buf_puts(&b, ",");
        } else {
            (void)!buf_puts(&b, "[");
        }
        (void)!buf_printf(&b, "{\"reason\":\"%s\",\"status\":%d,\"at\":%lld,\"until\":%lld}]",
                          wait_reasons[reason], status, (long long)now, (long long)until_ms);
        free(e->waits);
        e->waits = buf_take(&b);
    }
    journal_write(r, e, NULL);
}

struct run *
effect_owner(const struct effect *ef)
{
    return ef->r;
}

int
effect_in_doubt(const struct effect *ef)
{
    return ef->in_doubt;
}

int64_t
effect_started_ms(const struct effect *ef)
{
    return ef->r->j[ef->entry].started_ms;
}
