/* test_run.c: runs in process: scheduling, effects, the journal, replay after a
 * simulated crash, divergence, budgets and deadlines. */
#include "engine/run.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/env.h"
#include "engine/kagari.h"
#include "engine/log.h"
#include "engine/loop.h"
#include "engine/store.h"
#include "engine/tenant.h"
#include "tests/unit/test.h"

static char dir[64];
static struct store *st;

static void
write_playbook(const char *name, const char *src)
{
    char *pbdir = xasprintf("%s/pb", dir);
    char *path = xasprintf("%s/%s.lua", pbdir, name);
    char *err = NULL;

    T_ASSERT(util_mkdirs(pbdir, 0700) == 0);
    T_ASSERT(util_write_file(path, src, strlen(src), 0600, &err) == 0);
    free(err);
    free(path);
    free(pbdir);
}

static const struct tenant_hooks hooks = { env_sandbox_new, run_tenant_close };

/* Start the engine pieces on dir (as serve does, without intake). */
static void
start(void)
{
    struct run_limits lim = { 50000000, 60, 2 };
    char *data = xasprintf("%s/data", dir);
    char *pbdir = xasprintf("%s/pb", dir);
    char *err = NULL;
    struct playbook_set set;
    struct sandbox *sb;

    T_ASSERT(loop_init(&err) == 0);
    T_ASSERT(store_open(data, &st, &err) == 0);
    T_ASSERT(tenants_open(st, 32u << 20, NULL, &hooks, &err) == 0);
    run_init(&lim);
    loop_set_commit_failed(run_tenant_reset, NULL);
    sb = env_sandbox_new(16u << 20, &err);
    T_ASSERT(sb != NULL);
    T_ASSERT(playbook_set_load(sb, pbdir, &set, &err) == 0);
    if (err != NULL) {
        fprintf(stderr, "playbooks: %s\n", err);
    }
    run_set_playbooks(&set);
    sandbox_free(sb);
    for (struct tenant *t = tenants_first(); t != NULL; t = t->next) {
        T_ASSERT(run_recover(t, &err) == 0);
    }
    free(err);
    free(data);
    free(pbdir);
}

/* Drop everything in memory, as a crash would (what was committed stays). */
static void
stop(void)
{
    struct playbook_set empty = { NULL, 0 };

    tenants_close();
    run_set_playbooks(&empty);
    store_close(st);
    st = NULL;
    loop_free();
}

static void
setup(void)
{
    char *data;
    char *err = NULL;
    char hash[65];

    snprintf(dir, sizeof(dir), "/tmp/kagari-test-run-XXXXXX");
    T_ASSERT(mkdtemp(dir) != NULL);
    data = xasprintf("%s/data", dir);
    T_ASSERT(store_open(data, &st, &err) == 0);
    util_sha256_hex("token", 5, hash);
    T_ASSERT(store_tenant_add(st, "t1", "t1", hash, &err) == 0);
    store_close(st);
    st = NULL;
    free(data);
    free(err);
}

static void
teardown(void)
{
    char *cmd = xasprintf("rm -rf %s", dir);

    T_ASSERT(system(cmd) == 0);
    free(cmd);
}

/* Insert one alert in the loop's transaction and route it. Returns its id. */
static int64_t
post_alert(const char *source, int severity)
{
    struct tenant *t = tenant_find("t1");
    struct alert a;
    char *err = NULL;
    int dup = 0, n = 0;
    static int seq;
    char sid[32];

    memset(&a, 0, sizeof(a));
    snprintf(sid, sizeof(sid), "sid-%d", ++seq);
    a.source = xstrdup(source);
    a.source_id = xstrdup(sid);
    a.title = xstrdup("test alert");
    a.outcome = xstrdup("succeeded");
    a.severity = severity;
    a.time_ms = a.received_ms = util_now_ms();
    a.raw = xstrdup("{\"k\":1}");
    alert_add_observable(&a, "user", "alice@example.jp", "target");
    T_ASSERT(loop_write(t->db, &err) == 0);
    T_ASSERT(store_alert_insert(t->db, &a, &dup, &err) == 0);
    T_ASSERT(run_route(t, &a, &n, &err) == 0);
    free(err);
    alert_free(&a);
    return a.id;
}

/* Iterate the loop until the run reaches state (or about timeout_ms passes). */
static int
wait_state(int64_t run, const char *state, int timeout_ms)
{
    struct tenant *t = tenant_find("t1");
    int64_t until = util_now_ms() + timeout_ms;

    for (;;) {
        struct store_run r;
        int found;

        (void)loop_iterate(0);
        found = store_run_get(t->db, run, &r, NULL) == 1;
        /* Only what is committed counts: a run's progress may sit in a put-off commit. */
        if (found && strcmp(r.state, state) == 0 && !store_in_tx(t->db)) {
            store_run_free(&r);
            return 1;
        }
        if (found) {
            store_run_free(&r);
        }
        if (util_now_ms() > until) {
            return 0;
        }
        usleep(2000);
    }
}

static char *
run_error(int64_t run)
{
    struct store_run r;
    char *e;

    if (store_run_get(tenant_find("t1")->db, run, &r, NULL) != 1) {
        return xstrdup("(no run)");
    }
    e = xstrdup(r.error ? r.error : "(none)");
    store_run_free(&r);
    return e;
}

static void
test_simple_run(void)
{
    struct journal_entry *j = NULL;
    size_t n = 0;

    setup();
    write_playbook("a", "return playbook{ name='a', on={source='x'}, run=function(alert)\n"
                        "  log.info('hello', alert:observable('user'), alert.severity)\n"
                        "end }\n");
    write_playbook("b", "return playbook{ name='b', on={source='y'}, run=function() end }\n");
    start();
    post_alert("x", SEV_HIGH);
    T_ASSERT(wait_state(1, "done", 2000));
    T_ASSERT(store_journal_load(tenant_find("t1")->db, 1, &j, &n, NULL) == 0);
    T_EQ_INT(n, 1);
    if (n == 1) {
        T_EQ_STR(j[0].kind, "log");
        T_CONTAINS(j[0].request, "hello alice@example.jp high");
        T_EQ_INT(j[0].status, JOURNAL_DONE);
    }
    journal_entries_free(j, n);
    /* playbook b did not match: no second run */
    {
        struct store_run r;

        T_EQ_INT(store_run_get(tenant_find("t1")->db, 2, &r, NULL), 0);
    }
    stop();
    teardown();
}

static void
test_sleep_and_replay_after_crash(void)
{
    struct journal_entry *j = NULL;
    size_t n = 0;
    char *now_before = NULL;

    setup();
    write_playbook("s", "return playbook{ name='s', on={}, run=function(alert)\n"
                        "  log.info('before')\n"
                        "  local t = now()\n"
                        "  sleep(0.3)\n"
                        "  log.info('after', t)\n"
                        "end }\n");
    start();
    post_alert("x", SEV_LOW);
    T_ASSERT(wait_state(1, "waiting", 2000));
    T_ASSERT(store_journal_load(tenant_find("t1")->db, 1, &j, &n, NULL) == 0);
    T_EQ_INT(n, 3);
    if (n == 3) {
        now_before = xstrdup(j[1].result);
        T_EQ_STR(j[2].kind, "sleep");
        T_EQ_INT(j[2].status, JOURNAL_STARTED);
    }
    journal_entries_free(j, n);
    stop(); /* crash while parked */
    start();
    T_ASSERT(wait_state(1, "done", 3000));
    T_ASSERT(store_journal_load(tenant_find("t1")->db, 1, &j, &n, NULL) == 0);
    T_EQ_INT(n, 4);
    if (n == 4 && now_before != NULL) {
        T_CONTAINS(j[0].request, "before");
        T_EQ_STR(j[1].result, now_before); /* the clock was replayed, not read again */
        T_EQ_INT(j[2].status, JOURNAL_DONE);
        {
            char shown[64]; /* how Lua's tostring prints the number (%.14g) */

            snprintf(shown, sizeof(shown), "after %.14g", strtod(now_before, NULL));
            T_CONTAINS(j[3].request, shown);
        }
        T_ASSERT(j[2].ended_ms - j[2].started_ms >= 290);
    }
    journal_entries_free(j, n);
    free(now_before);
    stop();
    teardown();
}

static void
test_divergence(void)
{
    struct journal_entry *j = NULL;
    size_t n = 0;
    char *e;

    setup();
    write_playbook("d", "return playbook{ name='d', on={}, run=function()\n"
                        "  log.info('one')\n  sleep(5)\n  log.info('two')\nend }\n");
    start();
    post_alert("x", SEV_LOW);
    T_ASSERT(wait_state(1, "waiting", 2000));
    T_ASSERT(store_journal_load(tenant_find("t1")->db, 1, &j, &n, NULL) == 0);
    T_REQUIRE(n == 2);
    free(j[0].request);
    j[0].request = xstrdup("{\"level\":\"info\",\"msg\":\"something else\"}");
    T_ASSERT(store_journal_put(tenant_find("t1")->db, &j[0], NULL) == 0);
    journal_entries_free(j, n);
    stop();
    start();
    T_ASSERT(wait_state(1, "failed", 2000));
    e = run_error(1);
    T_CONTAINS(e, "diverged");
    T_CONTAINS(e, "step 1");
    free(e);
    stop();
    teardown();
}

static void
test_budget_and_errors(void)
{
    char *e;

    setup();
    write_playbook("loop",
                   "return playbook{ name='loop', on={source='loop'}, instructions=1000000,\n"
                   "  run=function()\n"
                   "  while true do pcall(function() while true do end end) end\nend }\n");
    write_playbook("boom", "return playbook{ name='boom', on={source='boom'}, run=function()\n"
                           "  local x = nil\n  error('boom here')\nend }\n");
    write_playbook("late", "return playbook{ name='late', on={source='late'}, timeout=0.2,\n"
                           "  run=function() sleep(30) end }\n");
    write_playbook("ok", "return playbook{ name='ok', on={source='ok'}, run=function() end }\n");
    start();
    post_alert("loop", SEV_LOW);
    post_alert("boom", SEV_LOW);
    post_alert("late", SEV_LOW);
    post_alert("ok", SEV_LOW);
    T_ASSERT(wait_state(1, "failed", 5000));
    e = run_error(1);
    T_CONTAINS(e, "instruction budget");
    free(e);
    T_ASSERT(wait_state(2, "failed", 2000));
    e = run_error(2);
    T_CONTAINS(e, "boom here");
    T_CONTAINS(e, "traceback");
    free(e);
    T_ASSERT(wait_state(4, "done", 2000));
    T_ASSERT(wait_state(3, "failed", 3000));
    e = run_error(3);
    T_CONTAINS(e, "deadline");
    free(e);
    stop();
    teardown();
}

static void
test_time_slices(void)
{
    setup();
    write_playbook("busy", "return playbook{ name='busy', on={source='busy'}, run=function()\n"
                           "  local x = 0\n  for i = 1, 5000000 do x = x + i end\nend }\n");
    write_playbook("quick", "return playbook{ name='quick', on={source='quick'}, "
                            "run=function() end }\n");
    start();
    post_alert("busy", SEV_LOW);
    post_alert("quick", SEV_LOW);
    /* One iteration: the busy run yields after its slice, the quick one finishes. */
    T_ASSERT(wait_state(2, "done", 2000));
    {
        struct store_run r;

        T_REQUIRE(store_run_get(tenant_find("t1")->db, 1, &r, NULL) == 1);
        T_ASSERT(strcmp(r.state, "running") == 0);
        store_run_free(&r);
    }
    T_ASSERT(wait_state(1, "done", 5000));
    stop();
    teardown();
}

/* ---- a probe connector: what the effect driver does around an effect ---- */

enum probe_mode { PROBE_ONCE, PROBE_HANG };

static struct {
    int opened[2], started[2], cancelled[2];
    int durable_at_start; /* probe.once's "started" entry was committed when it started */
} probe;

struct probe_op {
    struct effect *ef;
    int mode;
};

static void
probe_start(void *arg)
{
    struct probe_op *op = arg;
    struct run *r = effect_owner(op->ef);
    struct tenant *t = run_tenant(r);
    struct journal_entry *j = NULL;
    size_t n = 0;
    struct effect *ef = op->ef;

    probe.started[op->mode]++;
    if (op->mode == PROBE_HANG) {
        return; /* never answers: the run's deadline must end it */
    }
    if (!store_in_tx(t->db) && store_journal_load(t->db, run_id(r), &j, &n, NULL) == 0 && n > 0 &&
        strcmp(j[n - 1].kind, "probe.once") == 0 && j[n - 1].status == JOURNAL_STARTED) {
        probe.durable_at_start++;
    }
    journal_entries_free(j, n);
    free(op);
    effect_done(ef, 1, "{\"sent\":1}");
}

static void
probe_cancel(void *arg)
{
    struct probe_op *op = arg;

    probe.cancelled[op->mode]++;
    free(op);
}

static void *
probe_open(struct effect *ef, void *arg)
{
    struct probe_op *op = xcalloc(1, sizeof(*op));

    op->ef = ef;
    op->mode = *(int *)arg;
    probe.opened[op->mode]++;
    return op;
}

static char *
probe_refuse(struct run *r, void *arg)
{
    (void)r;
    (void)arg;
    return xstrdup("probe: refused");
}

static int
probe_call(lua_State *L, const char *kind, int mode, unsigned flags, int refuse)
{
    struct effect_spec spec = { 0 };

    spec.kind = kind;
    spec.request = "{}";
    spec.flags = flags;
    spec.check = refuse ? probe_refuse : NULL;
    spec.open = probe_open;
    spec.start = probe_start;
    spec.cancel = probe_cancel;
    spec.arg = &mode;
    return effect_run(L, &spec);
}

static int
l_probe_once(lua_State *L)
{
    return probe_call(L, "probe.once", PROBE_ONCE, EFFECT_OUTSIDE, 0);
}

static int
l_probe_hang(lua_State *L)
{
    return probe_call(L, "probe.hang", PROBE_HANG, EFFECT_OUTSIDE | EFFECT_IDEMPOTENT, 0);
}

static int
l_probe_refuse(lua_State *L)
{
    return probe_call(L, "probe.refuse", PROBE_ONCE, EFFECT_OUTSIDE, 1);
}

static int
luaopen_probe(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "once", l_probe_once },
        { "hang", l_probe_hang },
        { "refuse", l_probe_refuse },
        { NULL, NULL },
    };

    luaL_newlib(L, funcs);
    return 1;
}

static const struct connector probe_connector = {
    "probe", "the effect driver's test probe", luaopen_probe, NULL, NULL, NULL, NULL, NULL,
};

/* One effect of each kind: journal first (not idempotent), a check that refuses, a dry
 * run, and a parked effect that outlives the run's deadline. */
static void
test_effect_driver(void)
{
    struct journal_entry *j = NULL;
    size_t n = 0;
    char *e;

    memset(&probe, 0, sizeof(probe));
    plugin_add_connector(&probe_connector);
    setup();
    write_playbook("once", "return playbook{ name='once', on={source='once'}, run=function()\n"
                           "  local v = probe.once()\n  log.info('sent', v.sent)\nend }\n");
    write_playbook("refuse", "return playbook{ name='refuse', on={source='refuse'}, "
                             "run=function()\n  local v, e = probe.refuse()\n"
                             "  log.info('refused', v, e)\nend }\n");
    write_playbook("dry", "return playbook{ name='dry', on={source='dry'}, dry_run=true, "
                          "run=function()\n  local v = probe.once()\n"
                          "  log.info('dry', v.dry_run)\nend }\n");
    write_playbook("hang", "return playbook{ name='hang', on={source='hang'}, timeout=0.3, "
                           "run=function() probe.hang() end }\n");
    start();
    post_alert("once", SEV_LOW);
    T_ASSERT(wait_state(1, "done", 3000));
    T_EQ_INT(probe.started[PROBE_ONCE], 1);
    T_EQ_INT(probe.durable_at_start, 1);
    T_ASSERT(store_journal_load(tenant_find("t1")->db, 1, &j, &n, NULL) == 0);
    T_REQUIRE(n == 2);
    T_EQ_STR(j[0].result, "{\"sent\":1}");
    T_CONTAINS(j[1].request, "sent 1");
    journal_entries_free(j, n);

    post_alert("refuse", SEV_LOW);
    T_ASSERT(wait_state(2, "done", 3000));
    T_EQ_INT(probe.opened[PROBE_ONCE], 1); /* the check failed it before open */
    T_ASSERT(store_journal_load(tenant_find("t1")->db, 2, &j, &n, NULL) == 0);
    T_REQUIRE(n == 2);
    T_EQ_INT(j[0].status, JOURNAL_FAILED);
    T_EQ_STR(j[0].result, "\"probe: refused\"");
    T_CONTAINS(j[1].request, "refused nil probe: refused");
    journal_entries_free(j, n);

    post_alert("dry", SEV_LOW);
    T_ASSERT(wait_state(3, "done", 3000));
    T_EQ_INT(probe.opened[PROBE_ONCE], 1); /* nothing performed */
    T_ASSERT(store_journal_load(tenant_find("t1")->db, 3, &j, &n, NULL) == 0);
    T_REQUIRE(n == 2);
    T_CONTAINS(j[0].result, "\"dry_run\":true");
    T_CONTAINS(j[1].request, "dry true");
    journal_entries_free(j, n);

    post_alert("hang", SEV_LOW);
    T_ASSERT(wait_state(4, "failed", 3000));
    e = run_error(4);
    T_CONTAINS(e, "deadline exceeded while waiting");
    free(e);
    T_EQ_INT(probe.started[PROBE_HANG], 1);
    T_EQ_INT(probe.cancelled[PROBE_HANG], 1); /* the run's end freed its op */
    stop();
    teardown();
}

static void
guard_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(int *)arg = 1;
}

/* Iterate the loop as the daemon does (blocking when no phase has work) until the run
 * reaches state, or a guard timer of guard_ms fires: 0 then. */
static int
wait_state_blocking(int64_t run, const char *state, int guard_ms)
{
    struct tenant *t = tenant_find("t1");
    int fired = 0, busy = 1, ok = 0;
    struct event *guard = evtimer_new(loop_base(), guard_cb, &fired);
    struct timeval tv = { guard_ms / 1000, (guard_ms % 1000) * 1000 };

    evtimer_add(guard, &tv);
    while (!fired && !ok) {
        struct store_run r;

        busy = loop_iterate(!busy);
        if (store_run_get(t->db, run, &r, NULL) == 1) {
            ok = strcmp(r.state, state) == 0 && !store_in_tx(t->db);
            store_run_free(&r);
        }
    }
    event_free(guard);
    return ok && !fired; /* done only because the guard woke the loop is a failure */
}

/* An effect that finishes inside an after-commit callback (a call that meets an open
 * circuit breaker once its journal entry is durable) resumes its run by itself: the
 * loop must not sleep until some unrelated event. */
static void
test_effect_done_after_commit_wakes_the_loop(void)
{
    memset(&probe, 0, sizeof(probe));
    plugin_add_connector(&probe_connector);
    setup();
    write_playbook("once", "return playbook{ name='once', on={source='once'}, run=function()\n"
                           "  probe.once()\n  log.info('after')\nend }\n");
    start();
    post_alert("once", SEV_LOW);
    T_ASSERT(wait_state_blocking(1, "done", 3000));
    T_EQ_INT(probe.started[PROBE_ONCE], 1);
    stop();
    teardown();
}

/* ---- sizes: a run's error, log lines and journal values are capped ---- */

/* size.echo(request_bytes, result_bytes[, bad]): an effect whose request and result
 * hold that many bytes of 'x' (bad: the result has a byte that is not UTF-8). */
static void *
size_open(struct effect *ef, void *arg)
{
    const lua_Integer *n = arg;
    struct buf b;

    buf_init(&b, 0);
    (void)!buf_puts(&b, "{\"r\":\"");
    for (lua_Integer i = 0; i < n[1]; i++) {
        (void)!buf_append(&b, "x", 1);
    }
    (void)!buf_puts(&b, n[2] ? "\xff\"}" : "\"}");
    effect_done(ef, 1, b.data);
    buf_free(&b);
    return NULL;
}

static int
l_size_echo(lua_State *L)
{
    struct effect_spec spec = { 0 };
    lua_Integer n[3] = { luaL_checkinteger(L, 1), luaL_checkinteger(L, 2), lua_toboolean(L, 3) };
    luaL_Buffer lb;

    luaL_buffinit(L, &lb);
    luaL_addstring(&lb, "{\"s\":\"");
    for (lua_Integer i = 0; i < n[0]; i++) {
        luaL_addchar(&lb, 'x');
    }
    luaL_addstring(&lb, "\"}");
    luaL_pushresult(&lb);
    spec.kind = "size.echo";
    spec.request = lua_tostring(L, -1);
    spec.open = size_open;
    spec.arg = n;
    return effect_run(L, &spec);
}

static int
luaopen_size(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "echo", l_size_echo },
        { NULL, NULL },
    };

    luaL_newlib(L, funcs);
    return 1;
}

static const struct connector size_connector = {
    "size", "the journal caps' test effect", luaopen_size, NULL, NULL, NULL, NULL, NULL,
};

/* Is s valid UTF-8 throughout? */
static int
utf8_ok(const char *s)
{
    size_t n = strlen(s);

    for (size_t i = 0, l; i < n; i += l) {
        if ((l = util_utf8_char(s + i, n - i)) == 0) {
            return 0;
        }
    }
    return 1;
}

static void
test_sizes(void)
{
    struct journal_entry *j = NULL;
    size_t n = 0;
    char *e;

    plugin_add_connector(&size_connector);
    setup();
    /* The sandbox's memory cap is 32 MiB here; the cut is the same for 50 MB. */
    write_playbook("bigerr", "return playbook{ name='bigerr', on={source='bigerr'}, "
                             "run=function() error(string.rep('x', 4e6)) end }\n");
    write_playbook("badutf", "return playbook{ name='badutf', on={source='badutf'}, "
                             "run=function() error('bad \\255\\192 end', 0) end }\n");
    write_playbook("biglog", "return playbook{ name='biglog', on={source='biglog'}, "
                             "run=function() log.info(string.rep('\\u{e9}', 5000)) end }\n");
    write_playbook("bigio", "return playbook{ name='bigio', on={source='bigio'}, run=function()\n"
                            "  local v, e = size.echo(5 * 1024 * 1024, 10)\n"
                            "  log.info('req', v, e)\n"
                            "  v, e = size.echo(10, 9 * 1024 * 1024)\n"
                            "  log.info('res', v, e)\n"
                            "  v, e = size.echo(10, 10, true)\n"
                            "  log.info('bad', #v.r)\n"
                            "end }\n");
    start();
    post_alert("bigerr", SEV_LOW);
    post_alert("badutf", SEV_LOW);
    post_alert("biglog", SEV_LOW);
    post_alert("bigio", SEV_LOW);
    T_ASSERT(wait_state(1, "failed", 5000));
    e = run_error(1);
    T_ASSERT(strlen(e) <= (16u << 10) + 64);
    T_CONTAINS(e, "bytes dropped]");
    free(e);
    T_ASSERT(wait_state(2, "failed", 3000));
    e = run_error(2);
    T_ASSERT(utf8_ok(e));
    T_CONTAINS(e, "bad \xef\xbf\xbd\xef\xbf\xbd end");
    free(e);

    T_ASSERT(wait_state(3, "done", 3000));
    T_ASSERT(store_journal_load(tenant_find("t1")->db, 3, &j, &n, NULL) == 0);
    T_REQUIRE(n == 1);
    /* 4096 bytes of two-byte characters: 2048 of them, as JSON, not one split */
    T_EQ_INT(strlen(j[0].request), strlen("{\"level\":\"info\",\"msg\":\"\"}") + 4096);
    T_ASSERT(utf8_ok(j[0].request));
    journal_entries_free(j, n);

    T_ASSERT(wait_state(4, "done", 5000));
    T_ASSERT(store_journal_load(tenant_find("t1")->db, 4, &j, &n, NULL) == 0);
    T_REQUIRE(n == 6);
    T_ASSERT(strlen(j[0].request) < 200); /* stored by size and hash, not whole */
    T_CONTAINS(j[0].request, "\"too_large\":5242888");
    T_EQ_INT(j[0].status, JOURNAL_FAILED);
    T_CONTAINS(j[0].result, "over the journal's cap");
    T_CONTAINS(j[1].request, "req nil size.echo: request of 5242888 bytes is over");
    T_EQ_INT(j[2].status, JOURNAL_FAILED);
    T_CONTAINS(j[2].result, "result of 9437192 bytes is over the journal's cap");
    T_CONTAINS(j[3].request, "res nil result of");
    T_EQ_INT(j[4].status, JOURNAL_DONE);
    T_EQ_STR(j[4].result, "{\"r\":\"xxxxxxxxxx\xef\xbf\xbd\"}");
    T_CONTAINS(j[5].request, "bad 13");
    journal_entries_free(j, n);
    stop();
    teardown();
}

TEST_LIST = {
    { "simple_run", test_simple_run },
    { "sleep_and_replay_after_crash", test_sleep_and_replay_after_crash },
    { "divergence", test_divergence },
    { "budget_and_errors", test_budget_and_errors },
    { "time_slices", test_time_slices },
    { "effect_driver", test_effect_driver },
    { "effect_done_after_commit_wakes_the_loop", test_effect_done_after_commit_wakes_the_loop },
    { "sizes", test_sizes },
    { NULL, NULL },
};
