/* ptest.c: playbook tests (`kagari playbook test`). A test file (NAME_test.lua beside the
 * playbooks) runs in its own Lua state; each kagari.test("playbook") in it gets a fresh
 * engine of its own in a temporary folder: a store with one tenant, the loop, the
 * scheduler and the playbook, so that a test run goes through the real sandbox, the real
 * scheduler and the real effect driver (journal, replay, dry run). Only the answers of
 * the outside world are the test's: the driver's test hooks (run.h) hand every connector
 * effect, now() and sleep() to this file, which answers from what the test scripted and
 * keeps a test clock; log, state and alerts effects are performed for real. Nothing is
 * sent anywhere and no daemon is involved. */
#include "engine/ptest.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/env.h"
#include "engine/json.h"
#include "engine/kagari.h"
#include "engine/ljson.h"
#include "engine/log.h"
#include "engine/loop.h"
#include "engine/normalize.h"
#include "engine/playbook.h"
#include "engine/run.h"
#include "engine/store.h"
#include "engine/tenant.h"

#define PTEST_FILE_MAX (4u << 20) /* bytes of a test file or a fixture */
#define PTEST_MEMORY (64u << 20)  /* the test tenant's Lua memory cap */
#define PTEST_RUN_WAIT_MS 120000  /* a test run that has not ended by then fails */
#define PTEST_FILE_MS 600000      /* a test file's own code may run this long */
#define PTEST_TENANT "test"
#define PTEST_HANDLE "kagari.ptest.env"

enum answer_kind { ANS_VALUE = 0, ANS_ERROR, ANS_FN };

/* One scripted answer for an effect kind. Each is used once, except the last one left
 * for its kind, which answers every further call. */
struct answer {
    char *kind;
    enum answer_kind type;
    char *text; /* ANS_VALUE: JSON; ANS_ERROR: the message */
    int fn;     /* ANS_FN: a registry reference in the test state */
    int used;   /* the last one of its kind has answered a call: a new answer replaces it */
    struct answer *next;
};

/* One connector call of the current run, as the test sees it. */
struct pcall {
    char *name;    /* module.function as the playbook called it (or the effect kind) */
    char *args;    /* its arguments as a JSON array, or NULL */
    char *kind;    /* the effect's journal kind; NULL until the effect is made */
    char *request; /* the effect's journaled request (JSON) */
    int dry_run;
    int ok;
    char *result; /* what the playbook got: JSON (ok) or the message */
};

/* One kagari.test(name): a private engine on a temporary folder. */
struct env {
    char dir[64];
    char *pbname;
    struct store *st;
    struct tenant *t;
    lua_State *TL; /* the test file's state */
    int64_t clock_ms;
    struct answer *answers;
    struct pcall *calls;
    size_t ncalls, capcalls;
    int ended, ok;
    int64_t run_id;
    char *result, *error;
    char *where; /* the test line of the run in progress, for failures found by hooks */
    int seq;     /* source ids of alerts given without one */
    int open;
};

static struct {
    int passed, failed, verbose;
    int64_t file_deadline_ms; /* when the test file's own code is stopped */
    struct env *cur;          /* the engine in use: at most one at a time */
} P;

/* ---- reporting ---- */

static void
report(int ok, const char *where, const char *msg)
{
    if (ok) {
        P.passed++;
    } else {
        P.failed++;
    }
    if (!ok || P.verbose) {
        printf("%s %d - %s: %s\n", ok ? "ok" : "not ok", P.passed + P.failed, where, msg);
    }
    fflush(stdout);
}

/* ---- the engine of one test ---- */

static void
calls_reset(struct env *e)
{
    for (size_t i = 0; i < e->ncalls; i++) {
        free(e->calls[i].name);
        free(e->calls[i].args);
        free(e->calls[i].kind);
        free(e->calls[i].request);
        free(e->calls[i].result);
    }
    e->ncalls = 0;
}

static void
env_close(struct env *e)
{
    struct playbook_set empty = { NULL, 0 };

    if (!e->open) {
        return;
    }
    e->open = 0;
    run_set_test_hooks(NULL);
    tenants_close();
    run_set_playbooks(&empty);
    store_close(e->st);
    e->st = NULL;
    loop_free();
    util_rm_tree(e->dir);
    while (e->answers != NULL) {
        struct answer *a = e->answers;

        e->answers = a->next;
        if (a->type == ANS_FN) {
            luaL_unref(e->TL, LUA_REGISTRYINDEX, a->fn);
        }
        free(a->kind);
        free(a->text);
        free(a);
    }
    calls_reset(e);
    free(e->calls);
    e->calls = NULL;
    e->capcalls = 0;
    free(e->result);
    free(e->error);
    free(e->where);
    free(e->pbname);
    e->result = e->error = e->where = e->pbname = NULL;
    if (P.cur == e) {
        P.cur = NULL;
    }
}

static struct pcall *
call_new(struct env *e, const char *name)
{
    struct pcall *c;

    if (e->ncalls == e->capcalls) {
        e->capcalls = e->capcalls ? e->capcalls * 2 : 8;
        e->calls = xrealloc(e->calls, e->capcalls * sizeof(*e->calls));
    }
    c = &e->calls[e->ncalls++];
    memset(c, 0, sizeof(*c));
    c->name = xstrdup(name);
    return c;
}

/* The call an effect belongs to: the connector function just called (recorded by its
 * wrapper) when it has made no effect yet, else a new entry named by the kind. */
static struct pcall *
call_for(struct env *e, const char *kind, const char *request)
{
    struct pcall *c = e->ncalls > 0 ? &e->calls[e->ncalls - 1] : NULL;

    if (c == NULL || c->kind != NULL) {
        c = call_new(e, kind);
    }
    c->kind = xstrdup(kind);
    c->request = xstrdup(request);
    return c;
}

static struct answer *
answer_take(struct env *e, const char *kind, const char *name)
{
    struct answer **pp, *found = NULL, **foundp = NULL;
    int more = 0;

    for (int pass = 0; pass < 2 && found == NULL; pass++) {
        const char *want = pass == 0 ? kind : name;

        for (pp = &e->answers; *pp != NULL; pp = &(*pp)->next) {
            if (strcmp((*pp)->kind, want) != 0) {
                continue;
            }
            if (found == NULL) {
                found = *pp;
                foundp = pp;
            } else {
                more = 1;
                break;
            }
        }
    }
    if (found != NULL && more) {
        *foundp = found->next; /* used once: the caller frees it */
        found->next = NULL;
        return found;
    }
    if (found != NULL) {
        /* The last answer for its kind stays for further calls: hand out a copy. */
        struct answer *cp = xcalloc(1, sizeof(*cp));

        found->used = 1;
        *cp = *found;
        cp->kind = xstrdup(found->kind);
        cp->text = found->text ? xstrdup(found->text) : NULL;
        if (found->type == ANS_FN) {
            lua_rawgeti(e->TL, LUA_REGISTRYINDEX, found->fn);
            cp->fn = luaL_ref(e->TL, LUA_REGISTRYINDEX);
        }
        cp->next = NULL;
        return cp;
    }
    return NULL;
}

static void
answer_free(struct env *e, struct answer *a)
{
    if (a->type == ANS_FN) {
        luaL_unref(e->TL, LUA_REGISTRYINDEX, a->fn);
    }
    free(a->kind);
    free(a->text);
    free(a);
}

/* Protected: call the answer function at 1 with the call's arguments (JSON at 2) and
 * request (JSON at 3); leave ok-flag and text. */
static int
answer_fn_p(lua_State *L)
{
    const char *args = lua_tostring(L, 2);
    const char *req = lua_tostring(L, 3);
    char *err = NULL;
    cJSON *v;
    char *text;

    lua_pushvalue(L, 1);
    if (args == NULL || ljson_push_text(L, args, strlen(args)) == -1) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    if (ljson_push_text(L, req, strlen(req)) == -1) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
    lua_call(L, 2, 2);
    if (lua_isnil(L, -2)) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, luaL_optstring(L, -2, "failed"));
        return 2;
    }
    v = ljson_from_lua(L, -2, &err);
    if (v == NULL) {
        lua_pushfstring(L, "the answer function returned a value that is not JSON-able: %s",
                        err ? err : "?");
        free(err);
        return lua_error(L);
    }
    text = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    lua_pushboolean(L, 1);
    lua_pushstring(L, text);
    free(text);
    return 2;
}

/* The driver's hook: answer an effect that is not the engine's own. */
static void
hook_effect(void *arg, struct effect *ef, const char *kind, const char *request)
{
    struct env *e = arg;
    struct pcall *c;
    struct answer *a;
    char buf[64];

    if (strcmp(kind, "now") == 0) {
        snprintf(buf, sizeof(buf), "%.3f", (double)e->clock_ms / 1000.0);
        effect_done(ef, 1, buf);
        return;
    }
    if (strcmp(kind, "sleep") == 0) {
        cJSON *req = cJSON_Parse(request);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(req, "seconds");

        if (cJSON_IsNumber(s)) {
            e->clock_ms += (int64_t)(s->valuedouble * 1000);
        }
        cJSON_Delete(req);
        effect_done(ef, 1, "true");
        return;
    }
    c = call_for(e, kind, request);
    a = answer_take(e, kind, c->name);
    if (a == NULL) {
        char *msg = xasprintf("unscripted call %s %s: no answer given (t:answer(\"%s\", ...))",
                              c->name, c->args ? c->args : request, kind);

        report(0, e->where ? e->where : "?", msg);
        free(msg);
        c->ok = 0;
        c->result = xasprintf("playbook test: no answer scripted for %s", kind);
        effect_done(ef, 0, c->result);
        return;
    }
    if (a->type == ANS_FN) {
        lua_State *L = e->TL;
        int top = lua_gettop(L);

        lua_pushcfunction(L, answer_fn_p);
        lua_rawgeti(L, LUA_REGISTRYINDEX, a->fn);
        lua_pushstring(L, c->args ? c->args : "[]");
        lua_pushstring(L, request);
        if (lua_pcall(L, 3, 2, 0) != LUA_OK) {
            char *msg = xasprintf("answer function for %s failed: %s", kind,
                                  lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");

            report(0, e->where ? e->where : "?", msg);
            c->ok = 0;
            c->result = msg;
        } else {
            c->ok = lua_toboolean(L, -2);
            c->result = xstrdup(lua_tostring(L, -1));
        }
        lua_settop(L, top);
    } else {
        c->ok = a->type == ANS_VALUE;
        c->result = xstrdup(a->text);
    }
    answer_free(e, a);
    effect_done(ef, c->ok, c->result);
}

static void
hook_dry_run(void *arg, const char *kind, const char *request)
{
    struct env *e = arg;
    struct pcall *c = call_for(e, kind, request);

    c->dry_run = 1;
    c->ok = 1;
    c->result = xasprintf("{\"dry_run\":true,\"request\":%s}", request);
}

static int64_t
hook_clock(void *arg)
{
    return ((struct env *)arg)->clock_ms;
}

static void
hook_ended(void *arg, int64_t run_id, int ok, const char *result, const char *error)
{
    struct env *e = arg;

    e->ended = 1;
    e->run_id = run_id;
    e->ok = ok;
    free(e->result);
    free(e->error);
    e->result = result ? xstrdup(result) : NULL;
    e->error = error ? xstrdup(error) : NULL;
}

static struct run_test_hooks hooks = { hook_effect, hook_dry_run, hook_clock, hook_ended, NULL };

/* ---- connector modules that record their calls' arguments ---- */

static int
wrapped_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    return lua_gettop(L);
}

/* A connector function of the test tenant's sandbox: note module.function and the
 * arguments, then call the real one (whose effect the hooks answer). */
static int
l_wrapped(lua_State *L)
{
    int n = lua_gettop(L);

    if (P.cur != NULL) {
        cJSON *arr = cJSON_CreateArray();
        struct pcall *c = call_new(P.cur, lua_tostring(L, lua_upvalueindex(2)));

        for (int i = 1; i <= n; i++) {
            char *err = NULL;
            cJSON *v = lua_isnil(L, i) ? cJSON_CreateNull() : ljson_from_lua(L, i, &err);

            if (v == NULL) {
                v = cJSON_CreateString(luaL_typename(L, i));
            }
            free(err);
            cJSON_AddItemToArray(arr, v);
        }
        c->args = cJSON_PrintUnformatted(arr);
        cJSON_Delete(arr);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_callk(L, n, LUA_MULTRET, 0, wrapped_k);
    return wrapped_k(L, LUA_OK, 0);
}

/* The module opener of the test sandbox: the connector's own module with each
 * function wrapped. */
static int
l_open_wrapped(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lua_CFunction open = env_module_opener(name);

    if (open == NULL) {
        return luaL_error(L, "no connector module %s", name);
    }
    lua_pushcfunction(L, open);
    lua_pushstring(L, name);
    lua_call(L, 1, 1);
    /* The real functions stay findable by name ("_G.graph" reads as "graph"), so that
     * an argument error names the function as it would outside a test, not '?'. */
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, -4) != 0) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    {
        char *gname = xasprintf("_G.%s", name);

        lua_setfield(L, -2, gname);
        free(gname);
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TFUNCTION) {
            lua_pushfstring(L, "%s.%s", name, lua_tostring(L, -2));
            lua_pushcclosure(L, l_wrapped, 2);
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        } else {
            lua_pop(L, 1);
        }
    }
    return 1;
}

static struct sandbox *
ptest_sandbox_new(size_t memory_cap, char **errp)
{
    return env_sandbox_wrapped(memory_cap, l_open_wrapped, errp);
}

static const struct tenant_hooks tenant_hooks = { ptest_sandbox_new, run_tenant_close };

/* Start a private engine for playbook name of pbdir. */
static int
env_open(struct env *e, const char *pbdir, const char *name, char **errp)
{
    struct run_limits lim = { 100000000ULL, 3600, 5 };
    struct playbook_set set, one = { NULL, 0 };
    const char *tmp = getenv("TMPDIR");
    struct sandbox *sb;
    char *data, *errs = NULL;
    char hash[65];
    int rc = -1;

    snprintf(e->dir, sizeof(e->dir), "%s/kagari-ptest-XXXXXX",
             tmp != NULL && tmp[0] == '/' && strlen(tmp) < 30 ? tmp : "/tmp");
    if (mkdtemp(e->dir) == NULL) {
        return kg_err(errp, "cannot create a temporary folder in %s", e->dir);
    }
    data = xasprintf("%s/data", e->dir);
    util_sha256_hex(e->dir, strlen(e->dir), hash);
    if (loop_init(errp) == -1) {
        free(data);
        return -1;
    }
    e->open = 1;
    e->pbname = xstrdup(name);
    if (store_open(data, &e->st, errp) == -1 ||
        store_tenant_add(e->st, PTEST_TENANT, "playbook test", hash, errp) == -1 ||
        tenants_open(e->st, PTEST_MEMORY, NULL, &tenant_hooks, errp) == -1) {
        goto out;
    }
    run_init(&lim);
    loop_set_commit_failed(run_tenant_reset, NULL);
    sb = env_sandbox_new(16u << 20, errp);
    if (sb == NULL) {
        goto out;
    }
    if (playbook_set_load(sb, pbdir, &set, &errs) == -1) {
        sandbox_free(sb);
        free(*errp);
        *errp = errs;
        errs = NULL;
        goto out;
    }
    sandbox_free(sb);
    for (size_t i = 0; i < set.n; i++) {
        if (strcmp(set.v[i]->name, name) == 0) {
            one.v = xcalloc(1, sizeof(*one.v));
            one.v[0] = set.v[i];
            one.n = 1;
            playbook_ref(set.v[i]);
        }
    }
    playbook_set_free(&set);
    if (one.n == 0) {
        kg_err(errp, "no playbook named '%s' in %s%s%s", name, pbdir, errs ? ": " : "",
               errs ? errs : "");
        goto out;
    }
    run_set_playbooks(&one);
    e->t = tenant_find(PTEST_TENANT);
    e->clock_ms = util_now_ms();
    hooks.arg = e;
    run_set_test_hooks(&hooks);
    P.cur = e;
    rc = 0;
out:
    free(errs);
    free(data);
    if (rc == -1) {
        env_close(e);
    }
    return rc;
}

/* ---- the primitives the test API (below, in Lua) is built on ---- */

static struct env *
check_env(lua_State *L)
{
    struct env *e = luaL_checkudata(L, 1, PTEST_HANDLE);

    if (!e->open) {
        luaL_error(L, "this test's engine is closed (a later kagari.test() replaced it)");
    }
    return e;
}

static int
l_env_gc(lua_State *L)
{
    env_close(luaL_checkudata(L, 1, PTEST_HANDLE));
    return 0;
}

/* open(pbdir, name) -> handle, or raises. */
static int
l_open(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    const char *name = luaL_checkstring(L, 2);
    struct env *e;
    char *err = NULL;

    if (P.cur != NULL) {
        env_close(P.cur);
    }
    e = lua_newuserdatauv(L, sizeof(*e), 0);
    memset(e, 0, sizeof(*e));
    e->TL = L;
    luaL_setmetatable(L, PTEST_HANDLE);
    if (env_open(e, dir, name, &err) == -1) {
        lua_pushstring(L, err ? err : "cannot start the test engine");
        free(err);
        return lua_error(L);
    }
    return 1;
}

/* answer(h, kind, type, value) */
static int
l_answer(lua_State *L)
{
    struct env *e = check_env(L);
    const char *kind = luaL_checkstring(L, 2);
    const char *type = luaL_checkstring(L, 3);
    struct answer *a = xcalloc(1, sizeof(*a)), **pp;

    if (strcmp(type, "fn") == 0) {
        luaL_checktype(L, 4, LUA_TFUNCTION);
        lua_pushvalue(L, 4);
        a->type = ANS_FN;
        a->fn = luaL_ref(L, LUA_REGISTRYINDEX);
    } else if (strcmp(type, "error") == 0) {
        a->type = ANS_ERROR;
        a->text = xstrdup(luaL_checkstring(L, 4));
    } else {
        char *err = NULL;
        cJSON *v = ljson_from_lua(L, 4, &err);

        if (v == NULL) {
            lua_pushfstring(L, "answer for %s: %s", kind, err ? err : "not JSON-able");
            free(err);
            free(a);
            return lua_error(L);
        }
        a->type = ANS_VALUE;
        a->text = cJSON_PrintUnformatted(v);
        cJSON_Delete(v);
    }
    a->kind = xstrdup(kind);
    for (pp = &e->answers; *pp != NULL;) {
        if ((*pp)->used && strcmp((*pp)->kind, kind) == 0) {
            struct answer *old = *pp;

            *pp = old->next;
            answer_free(e, old);
            continue;
        }
        pp = &(*pp)->next;
    }
    *pp = a;
    return 0;
}

/* Push a JSON text as a Lua value (nil when NULL or not JSON). */
static void
push_json(lua_State *L, const char *text)
{
    if (text == NULL) {
        lua_pushnil(L);
    } else if (ljson_push_text(L, text, strlen(text)) == -1) {
        lua_pop(L, 1);
        lua_pushstring(L, text);
    }
}

static void
push_calls(lua_State *L, struct env *e)
{
    lua_createtable(L, (int)e->ncalls, 0);
    for (size_t i = 0; i < e->ncalls; i++) {
        struct pcall *c = &e->calls[i];
        const char *dot = strchr(c->name, '.');

        lua_createtable(L, 0, 9);
        lua_pushstring(L, c->name);
        lua_setfield(L, -2, "name");
        lua_pushlstring(L, c->name, dot ? (size_t)(dot - c->name) : strlen(c->name));
        lua_setfield(L, -2, "module");
        lua_pushstring(L, dot ? dot + 1 : "");
        lua_setfield(L, -2, "fn");
        if (c->args != NULL) {
            push_json(L, c->args);
        } else {
            lua_newtable(L);
        }
        lua_setfield(L, -2, "args");
        lua_pushstring(L, c->kind);
        lua_setfield(L, -2, "kind");
        push_json(L, c->request);
        lua_setfield(L, -2, "request");
        lua_pushboolean(L, c->dry_run);
        lua_setfield(L, -2, "dry_run");
        lua_pushboolean(L, c->ok);
        lua_setfield(L, -2, "ok");
        if (c->ok) {
            push_json(L, c->result);
        } else {
            lua_pushstring(L, c->result);
        }
        lua_setfield(L, -2, c->ok ? "result" : "error");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

/* The log lines of the run, from its journal. */
static void
push_logs(lua_State *L, struct env *e)
{
    struct journal_entry *j = NULL;
    size_t n = 0;
    lua_Integer k = 0;

    lua_newtable(L);
    if (store_journal_load(e->t->db, e->run_id, &j, &n, NULL) == -1) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        cJSON *req;

        if (strcmp(j[i].kind, "log") != 0 || (req = cJSON_Parse(j[i].request)) == NULL) {
            continue;
        }
        lua_createtable(L, 0, 2);
        lua_pushstring(L, cJSON_GetStringValue(cJSON_GetObjectItem(req, "level")));
        lua_setfield(L, -2, "level");
        lua_pushstring(L, cJSON_GetStringValue(cJSON_GetObjectItem(req, "msg")));
        lua_setfield(L, -2, "msg");
        lua_rawseti(L, -2, ++k);
        cJSON_Delete(req);
    }
    journal_entries_free(j, n);
}

/* run(h, alert-json-text, where [, default source]) -> {ok=, result=, error=, calls=, logs=, run=}
 * or nil, message (the alert is not valid, or does not trigger the playbook). */
static int
l_run(lua_State *L)
{
    struct env *e = check_env(L);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    const char *where = luaL_checkstring(L, 3);
    const char *source = luaL_optstring(L, 4, NULL);
    cJSON *obj = NULL;
    struct alert a;
    char *err = NULL;
    int dup = 0, n = 0;
    int64_t until;

    memset(&a, 0, sizeof(a));
    if (json_parse_strict(text, len, JSON_MAX_DEPTH, &obj, &err) == -1 || !cJSON_IsObject(obj)) {
        luaL_pushfail(L);
        lua_pushfstring(L, "alert: %s", err ? err : "must be a JSON object");
        free(err);
        cJSON_Delete(obj);
        return 2;
    }
    if (cJSON_GetObjectItemCaseSensitive(obj, "source_id") == NULL) {
        char sid[32];

        snprintf(sid, sizeof(sid), "test-%d", ++e->seq);
        cJSON_AddStringToObject(obj, "source_id", sid);
    }
    if (normalize_alert(obj, source, e->clock_ms, &a, &err) == -1) {
        cJSON_Delete(obj);
        luaL_pushfail(L);
        lua_pushfstring(L, "alert: %s", err ? err : "invalid");
        free(err);
        return 2;
    }
    cJSON_Delete(obj);
    free(e->where);
    e->where = xstrdup(where);
    calls_reset(e);
    e->ended = 0;
    if (loop_write(e->t->db, &err) == -1 || store_alert_insert(e->t->db, &a, &dup, &err) == -1 ||
        run_route(e->t, &a, &n, &err) == -1) {
        alert_free(&a);
        luaL_pushfail(L);
        lua_pushfstring(L, "store: %s", err ? err : "?");
        free(err);
        return 2;
    }
    alert_free(&a);
    if (dup) {
        luaL_pushfail(L);
        lua_pushstring(L, "the alert is a duplicate of an earlier one (same source and source_id)");
        return 2;
    }
    if (n == 0) {
        luaL_pushfail(L);
        lua_pushfstring(L, "the alert does not trigger playbook %s (see its on = {...})",
                        e->pbname);
        return 2;
    }
    until = util_now_ms() + PTEST_RUN_WAIT_MS;
    while (!e->ended && util_now_ms() < until) {
        if (loop_iterate(0) == -1) {
            break;
        }
    }
    (void)loop_iterate(0); /* the commit of the run's end */
    lua_createtable(L, 0, 6);
    lua_pushboolean(L, e->ended && e->ok);
    lua_setfield(L, -2, "ok");
    push_json(L, e->ended ? e->result : NULL);
    lua_setfield(L, -2, "result");
    if (!e->ended) {
        lua_pushstring(L, "the run did not end (it waits for something no test can answer)");
        lua_setfield(L, -2, "error");
    } else if (e->error != NULL) {
        lua_pushstring(L, e->error);
        lua_setfield(L, -2, "error");
    }
    push_calls(L, e);
    lua_setfield(L, -2, "calls");
    push_logs(L, e);
    lua_setfield(L, -2, "logs");
    lua_pushinteger(L, e->run_id);
    lua_setfield(L, -2, "run");
    return 1;
}

/* clock(h [, ms]) -> the test clock in ms (set first when ms is given). */
static int
l_clock(lua_State *L)
{
    struct env *e = check_env(L);

    if (!lua_isnoneornil(L, 2)) {
        e->clock_ms = (int64_t)luaL_checkinteger(L, 2);
    }
    lua_pushinteger(L, e->clock_ms);
    return 1;
}

/* state_get(h, key) -> value or nil */
static int
l_state_get(lua_State *L)
{
    struct env *e = check_env(L);
    const char *key = luaL_checkstring(L, 2);
    char *v = NULL, *err = NULL;
    int64_t exp;
    int rc = store_kv_get(e->t->db, key, e->clock_ms, &v, &exp, &err);

    if (rc == -1) {
        lua_pushstring(L, err);
        free(err);
        return lua_error(L);
    }
    if (rc == 0) {
        return 0;
    }
    push_json(L, v);
    free(v);
    if (lua_type(L, -1) == LUA_TLIGHTUSERDATA) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
    return 1;
}

/* state_put(h, key, value, ttl_seconds) */
static int
l_state_put(lua_State *L)
{
    struct env *e = check_env(L);
    const char *key = luaL_checkstring(L, 2);
    double ttl = luaL_optnumber(L, 4, 30 * 86400);
    char *err = NULL, *text;
    cJSON *v = ljson_from_lua(L, 3, &err);

    if (v == NULL) {
        lua_pushfstring(L, "set_state %s: %s", key, err ? err : "not JSON-able");
        free(err);
        return lua_error(L);
    }
    text = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    if (loop_write(e->t->db, &err) == -1 ||
        store_kv_put(e->t->db, key, text, e->clock_ms + (int64_t)(ttl * 1000), e->clock_ms, &err) ==
            -1) {
        free(text);
        lua_pushstring(L, err ? err : "store");
        free(err);
        return lua_error(L);
    }
    free(text);
    (void)loop_iterate(0);
    return 0;
}

static int
l_report(lua_State *L)
{
    report(lua_toboolean(L, 1), luaL_checkstring(L, 2), luaL_checkstring(L, 3));
    return 0;
}

static int
l_duration(lua_State *L)
{
    double secs;

    if (lua_type(L, 1) == LUA_TNUMBER) {
        lua_pushvalue(L, 1);
        return 1;
    }
    if (util_parse_duration(luaL_checkstring(L, 1), &secs) == -1) {
        return 0;
    }
    lua_pushnumber(L, secs);
    return 1;
}

static int
l_time(lua_State *L)
{
    int64_t ms;

    if (util_parse_time(luaL_checkstring(L, 1), &ms) == -1) {
        return 0;
    }
    lua_pushinteger(L, ms);
    return 1;
}

/* read(path) -> the text of a file (fixtures), or nil, message. */
static int
l_read(lua_State *L)
{
    char *err = NULL;
    size_t len = 0;
    char *text = util_read_file(luaL_checkstring(L, 1), PTEST_FILE_MAX, &len, &err);

    if (text == NULL) {
        luaL_pushfail(L);
        lua_pushstring(L, err ? err : "cannot read");
        free(err);
        return 2;
    }
    lua_pushlstring(L, text, len);
    free(text);
    return 1;
}

/* The test API, written on the primitives above. Its frames are skipped when a
 * failure is located (the line reported is the test file's). */
static const char ptest_api[] =
    "local P, getinfo, json, dir = ...\n"
    "local function where()\n"
    "  for level = 2, 50 do\n"
    "    local i = getinfo(level, 'Sl')\n"
    "    if not i then break end\n"
    "    if i.source:sub(1, 1) == '@' then return i.short_src .. ':' .. i.currentline end\n"
    "  end\n"
    "  return '?'\n"
    "end\n"
    "local function show(v)\n"
    "  if type(v) == 'string' then return string.format('%q', v) end\n"
    "  local ok, s = pcall(json.encode, v)\n"
    "  return ok and s or tostring(v)\n"
    "end\n"
    "local function same(a, b)\n"
    "  if type(a) ~= 'table' or type(b) ~= 'table' then return a == b end\n"
    "  for k, v in pairs(a) do if not same(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "local function matches(actual, expected)\n"
    "  if type(expected) ~= 'table' then return actual == expected end\n"
    "  if type(actual) ~= 'table' then return false end\n"
    "  for k, v in pairs(expected) do\n"
    "    if not matches(actual[k], v) then return false end\n"
    "  end\n"
    "  return true\n"
    "end\n"
    "local function names(calls)\n"
    "  local t = {}\n"
    "  for _, c in ipairs(calls) do t[#t + 1] = c.name end\n"
    "  return #t > 0 and table.concat(t, ', ') or '(none)'\n"
    "end\n"
    "local function duration(d, what)\n"
    "  local s = P.duration(d)\n"
    "  if not s then error(what .. ': not a duration: ' .. tostring(d), 3) end\n"
    "  return s\n"
    "end\n"
    "local T = {}\n"
    "T.__index = T\n"
    "local function point(ok, what) P.report(ok, where(), what) return ok end\n"
    "function T:answer(kind, value)\n"
    "  P.answer(self.h, kind, type(value) == 'function' and 'fn' or 'value', value)\n"
    "  return self\n"
    "end\n"
    "function T:fail(kind, message) P.answer(self.h, kind, 'error', message) return self end\n"
    "function T:throttle(kind, seconds)\n"
    "  return self:fail(kind, string.format('%s: HTTP 429 TooManyRequests: Rate limit is exceeded. "
    "Try again in %d seconds.', kind, seconds or 30))\n"
    "end\n"
    "function T:timeout(kind)\n"
    "  return self:fail(kind, kind .. ': Operation timed out after 30000 milliseconds with 0 "
    "bytes received')\n"
    "end\n"
    "function T:clock_set(t)\n"
    "  local ms = type(t) == 'number' and math.floor(t * 1000) or P.time(t)\n"
    "  if not ms then error('clock_set: not a time: ' .. tostring(t), 2) end\n"
    "  P.clock(self.h, ms)\n"
    "end\n"
    "function T:clock_advance(d)\n"
    "  P.clock(self.h, P.clock(self.h) + math.floor(duration(d, 'clock_advance') * 1000))\n"
    "end\n"
    "function T:now() return P.clock(self.h) / 1000 end\n"
    "function T:run(alert, opts)\n"
    "  opts = opts or {}\n"
    "  if type(alert) == 'string' then alert = kagari.fixture(alert) end\n"
    "  local r, err = P.run(self.h, json.encode(alert), where(), opts.source)\n"
    "  if opts.triggers == false then\n"
    "    local no = not r and err:find('does not trigger', 1, true) ~= nil\n"
    "    point(no, self.name .. ' is not triggered' .. (no and '' or ': ' .. (err or "
    "'it ran')))\n"
    "    r = r or { ok = false, error = err, calls = {}, logs = {} }\n"
    "  elseif not r then\n"
    "    point(false, 'run of ' .. self.name .. ': ' .. err)\n"
    "    r = { ok = false, error = err, calls = {}, logs = {} }\n"
    "  elseif opts.fails then\n"
    "    point(not r.ok, 'run of ' .. self.name .. ' fails' .. (r.ok and ': it ended well' or "
    "''))\n"
    "  else\n"
    "    point(r.ok, 'run of ' .. self.name .. (r.ok and ' ends well' or ' failed: ' .. "
    "tostring(r.error)))\n"
    "  end\n"
    "  self.last, self.cursor = r, 1\n"
    "  return r\n"
    "end\n"
    "local function last(self)\n"
    "  if not self.last then error('no run yet: call t:run(alert) first', 3) end\n"
    "  return self.last\n"
    "end\n"
    "function T:calls() return last(self).calls end\n"
    "function T:logs() return last(self).logs end\n"
    "function T:result() return last(self).result end\n"
    "function T:expect_call(name, args)\n"
    "  local calls = last(self).calls\n"
    "  for i = self.cursor, #calls do\n"
    "    local c = calls[i]\n"
    "    if c.name == name or c.kind == name then\n"
    "      if args == nil or matches(c.args, args) then\n"
    "        self.cursor = i + 1\n"
    "        point(true, 'call ' .. name)\n"
    "        return c\n"
    "      end\n"
    "      return point(false, 'call ' .. name .. ': arguments ' .. show(c.args) .. ', "
    "expected ' .. show(args)) and nil\n"
    "    end\n"
    "  end\n"
    "  point(false, 'call ' .. name .. ' (in order): not made; calls: ' .. names(calls))\n"
    "end\n"
    "function T:expect_calls(list)\n"
    "  local calls, got = last(self).calls, {}\n"
    "  for _, c in ipairs(calls) do got[#got + 1] = c.name end\n"
    "  return point(same(got, list), 'calls ' .. show(list) .. (same(got, list) and '' or "
    "', made: ' .. show(got)))\n"
    "end\n"
    "function T:expect_no_call(name)\n"
    "  for _, c in ipairs(last(self).calls) do\n"
    "    if c.name == name or c.kind == name or c.module == name then\n"
    "      return point(false, 'no call ' .. name .. ': it was called with ' .. show(c.args))\n"
    "    end\n"
    "  end\n"
    "  return point(true, 'no call ' .. name)\n"
    "end\n"
    "function T:expect_result(v)\n"
    "  local r = last(self).result\n"
    "  return point(same(r, v), 'result ' .. show(v) .. (same(r, v) and '' or ', got ' .. "
    "show(r)))\n"
    "end\n"
    "function T:expect_error(pattern)\n"
    "  local r = last(self)\n"
    "  local ok = not r.ok and tostring(r.error):find(pattern) ~= nil\n"
    "  return point(ok, 'error matching ' .. show(pattern) .. (ok and '' or ', got ' .. "
    "show(r.error)))\n"
    "end\n"
    "function T:expect_log(level, pattern)\n"
    "  for _, l in ipairs(last(self).logs) do\n"
    "    if (level == nil or l.level == level) and l.msg:find(pattern) then\n"
    "      return point(true, 'log ' .. tostring(level) .. ' ' .. show(pattern))\n"
    "    end\n"
    "  end\n"
    "  local seen = {}\n"
    "  for _, l in ipairs(last(self).logs) do seen[#seen + 1] = l.level .. ' ' .. l.msg end\n"
    "  return point(false, 'log ' .. tostring(level) .. ' ' .. show(pattern) .. ': not "
    "logged; lines: ' .. show(seen))\n"
    "end\n"
    "function T:expect_no_log(level, pattern)\n"
    "  for _, l in ipairs(last(self).logs) do\n"
    "    if (level == nil or l.level == level) and l.msg:find(pattern) then\n"
    "      return point(false, 'no log ' .. show(pattern) .. ': logged ' .. show(l.msg))\n"
    "    end\n"
    "  end\n"
    "  return point(true, 'no log ' .. show(pattern))\n"
    "end\n"
    "function T:state(key) return P.state_get(self.h, key) end\n"
    "function T:set_state(key, value, opts)\n"
    "  local ttl = opts and opts.ttl and duration(opts.ttl, 'set_state ttl') or nil\n"
    "  P.state_put(self.h, key, value, ttl)\n"
    "end\n"
    "function T:expect_state(key, v)\n"
    "  local got = P.state_get(self.h, key)\n"
    "  return point(same(got, v), 'state ' .. key .. ' = ' .. show(v) .. (same(got, v) and '' "
    "or ', got ' .. show(got)))\n"
    "end\n"
    "function T:eq(actual, expected, what)\n"
    "  local ok = same(actual, expected)\n"
    "  return point(ok, (what or 'eq') .. (ok and '' or ': got ' .. show(actual) .. ', "
    "expected ' .. show(expected)))\n"
    "end\n"
    "function T:ok(cond, what) return point(not not cond, what or 'ok') end\n"
    "function T:match(s, pattern, what)\n"
    "  local ok = type(s) == 'string' and s:find(pattern) ~= nil\n"
    "  return point(ok, (what or 'match') .. (ok and '' or ': ' .. show(s) .. ' does not "
    "match ' .. show(pattern)))\n"
    "end\n"
    "kagari = {}\n"
    "function kagari.test(name)\n"
    "  if type(name) ~= 'string' then error('kagari.test(name): the playbook name', 2) end\n"
    "  local ok, h = pcall(P.open, dir, name)\n"
    "  if not ok then error(h, 2) end\n"
    "  return setmetatable({ h = h, name = name }, T)\n"
    "end\n"
    "function kagari.fixture(path)\n"
    "  if path:sub(1, 1) ~= '/' then path = dir .. '/' .. path end\n"
    "  local text, err = P.read(path)\n"
    "  if not text then error('fixture: ' .. err, 2) end\n"
    "  local v, jerr = json.decode(text)\n"
    "  if v == nil then error('fixture ' .. path .. ': ' .. tostring(jerr), 2) end\n"
    "  return v\n"
    "end\n";

/* Protected: set up the test state and run the file (path at 1, its folder at 2). */
static int
file_p(lua_State *L)
{
    static const luaL_Reg prims[] = {
        { "open", l_open },
        { "answer", l_answer },
        { "run", l_run },
        { "clock", l_clock },
        { "state_get", l_state_get },
        { "state_put", l_state_put },
        { "report", l_report },
        { "duration", l_duration },
        { "time", l_time },
        { "read", l_read },
        { NULL, NULL },
    };
    const char *path = lua_tostring(L, 1);
    const char *dir = lua_tostring(L, 2);

    luaL_openlibs(L);
    if (luaL_newmetatable(L, PTEST_HANDLE)) {
        lua_pushcfunction(L, l_env_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_requiref(L, "json", luaopen_kagari_json, 1);
    lua_pop(L, 1);
    if (luaL_loadbufferx(L, ptest_api, sizeof(ptest_api) - 1, "=(kagari.test)", "t") != LUA_OK) {
        return lua_error(L);
    }
    luaL_newlib(L, prims);
    lua_getglobal(L, "debug");
    lua_getfield(L, -1, "getinfo");
    lua_remove(L, -2);
    lua_getglobal(L, "json");
    lua_pushstring(L, dir);
    lua_call(L, 4, 0);
    /* The test file sees no io, os, debug or package: what it needs is the API above. */
    for (const char *const *g = (const char *const[]){ "io", "os", "debug", "package", "require",
                                                       "dofile", "loadfile", NULL };
         *g != NULL; g++) {
        lua_pushnil(L);
        lua_setglobal(L, *g);
    }
    if (luaL_loadfilex(L, path, "t") != LUA_OK) {
        return lua_error(L);
    }
    lua_call(L, 0, 0);
    return 0;
}

/* The test file's own code (an endless loop in a test or an answer function) is
 * stopped after PTEST_FILE_MS, so that a test suite always ends. */
static void
file_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    if (util_now_ms() > P.file_deadline_ms) {
        luaL_error(L, "the test file ran for over %d s", PTEST_FILE_MS / 1000);
    }
}

static int
traceback_h(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);

    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

/* Run one test file. */
static void
run_file(const char *path)
{
    lua_State *L = luaL_newstate();
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    int failed = P.failed, checks = P.passed + P.failed;

    if (slash != NULL) {
        *slash = '\0';
    } else {
        strcpy(dir, ".");
    }
    if (P.verbose) {
        printf("# %s\n", path);
        fflush(stdout);
    }
    P.file_deadline_ms = util_now_ms() + PTEST_FILE_MS;
    lua_sethook(L, file_hook, LUA_MASKCOUNT, 100000);
    lua_pushcfunction(L, traceback_h);
    lua_pushcfunction(L, file_p);
    lua_pushstring(L, path);
    lua_pushstring(L, dir);
    if (lua_pcall(L, 2, 0, 1) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        char *where = xstrdup(path);

        report(0, where, msg ? msg : "error");
        free(where);
    }
    if (P.cur != NULL) {
        env_close(P.cur);
    }
    lua_close(L);
    checks = P.passed + P.failed - checks;
    if (P.failed == failed) {
        printf("ok %s (%d checks)\n", path, checks);
    } else {
        printf("not ok %s (%d of %d checks failed)\n", path, P.failed - failed, checks);
    }
    free(dir);
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int
ptest_main(char **paths, int n, int verbose)
{
    P.verbose = verbose;
    /* Quiet unless asked: the checks' lines say what went wrong. */
    log_set_level(verbose ? KG_LOG_INFO : (enum log_level)(KG_LOG_ERR + 1));
    for (int i = 0; i < n; i++) {
        size_t l = strlen(paths[i]);
        DIR *d;

        if (l > 4 && strcmp(paths[i] + l - 4, ".lua") == 0) {
            run_file(paths[i]);
            continue;
        }
        d = opendir(paths[i]);
        if (d == NULL) {
            char *msg = xasprintf("cannot read the folder %s", paths[i]);

            report(0, paths[i], msg);
            free(msg);
            continue;
        }
        {
            struct dirent *de;
            char **files = NULL;
            size_t nf = 0;

            while ((de = readdir(d)) != NULL) {
                size_t fl = strlen(de->d_name);

                if (de->d_name[0] != '.' && fl > 9 &&
                    strcmp(de->d_name + fl - 9, "_test.lua") == 0) {
                    files = xrealloc(files, (nf + 1) * sizeof(*files));
                    files[nf++] = xasprintf("%s/%s", paths[i], de->d_name);
                }
            }
            closedir(d);
            if (nf > 1) {
                qsort(files, nf, sizeof(*files), cmp_str);
            }
            if (nf == 0) {
                char *msg = xasprintf("no playbook tests (*_test.lua) in %s", paths[i]);

                report(0, paths[i], msg);
                free(msg);
            }
            for (size_t k = 0; k < nf; k++) {
                run_file(files[k]);
                free(files[k]);
            }
            free(files);
        }
    }
    printf("playbook tests: %d passed, %d failed\n", P.passed, P.failed);
    return P.failed == 0 ? 0 : 1;
}
