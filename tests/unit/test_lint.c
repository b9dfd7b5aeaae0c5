/* test_lint.c: the deep lint: each class of mistake found at its line and column, none
 * on a correct playbook that uses much of the language, and the shipped playbooks. */
#include "engine/lint.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "engine/registry.h"
#include "tests/unit/test.h"

static struct apidesc api;
static int loaded;

static const struct apidesc *
get_api(void)
{
    char *err = NULL;

    if (!loaded) {
        registry_init();
        if (apidesc_load(&api, &err) == -1) {
            fprintf(stderr, "apidesc_load: %s\n", err);
            abort();
        }
        loaded = 1;
    }
    return &api;
}

static void
lint(const char *src, int flags, struct lint_report *r)
{
    lua_State *L = luaL_newstate();
    char *err = NULL;

    r->v = NULL;
    r->n = 0;
    if (lint_chunk(get_api(), L, "t.lua", src, strlen(src), flags, r, &err) == -1) {
        T_FAIL_("does not compile: %s", err);
    }
    free(err);
    lua_close(L);
}

/* Is there a finding at line:col whose message holds needle? */
static int
has(const struct lint_report *r, int line, int col, const char *needle)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].line == line && (col == 0 || r->v[i].col == col) &&
            strstr(r->v[i].msg, needle) != NULL) {
            return 1;
        }
    }
    return 0;
}

static void
dump(const struct lint_report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        fprintf(stderr, "    %d:%d: %s\n", r->v[i].line, r->v[i].col, r->v[i].msg);
    }
}

#define T_FINDING(r, line, col, needle)                                                            \
    do {                                                                                           \
        if (!has((r), (line), (col), (needle))) {                                                  \
            T_FAIL_("no finding %d:%d %s", (line), (col), (needle));                               \
            dump(r);                                                                               \
        }                                                                                          \
    } while (0)

static void
test_each_class(void)
{
    struct lint_report r;

    lint("local g = graph\n"                                        /* 1 */
         "return playbook {\n"                                      /* 2 */
         "  name = 'x', on = { source = 'entra.signin' },\n"        /* 3 */
         "  run = function(alert)\n"                                /* 4 */
         "    local user = alert:observabel('user')\n"              /* 5 */
         "    defender.isolate_machine(user)\n"                     /* 6 */
         "    graph.disable_user(user)\n"                           /* 7 */
         "    g.revoke_sessions(user)\n"                            /* 8 */
         "    local u, err = graph.user(user, 'extra')\n"           /* 9 */
         "    if alert.source == 'defender.alrt' then return end\n" /* 10 */
         "    local x = undefined_thing\n"                          /* 11 */
         "    sleep()\n"                                            /* 12 */
         "    defender:isolate(user)\n"                             /* 13 */
         "    require(user)\n"                                      /* 14 */
         "    log.info(string.fromat('%s', user))\n"                /* 15 */
         "    json.decode('{}')\n"                                  /* 16 */
         "    graph.disable_user(user) -- lint: ignore\n"           /* 17 */
         "    local d = defender\n"                                 /* 18 */
         "    d.isolat(user)\n"                                     /* 19 */
         "    json.nul = 1\n"                                       /* 20 */
         "    return u, err, x, alert.sourc, alert.mine\n"          /* 21 */
         "  end,\n"
         "}\n",
         0, &r);
    T_FINDING(&r, 5, 24, "the alert has no method 'observabel'");
    T_FINDING(&r, 6, 14, "unknown field 'isolate_machine' of connector 'defender'");
    T_FINDING(&r, 7, 11, "the result of graph.disable_user is not checked");
    T_FINDING(&r, 8, 7, "the result of graph.revoke_sessions is not checked");
    T_FINDING(&r, 9, 26, "graph.user takes 1 argument (id: string), given 2");
    T_FINDING(&r, 10, 25, "'defender.alrt' is not a source name");
    T_FINDING(&r, 10, 25, "did you mean 'defender.alert'");
    T_FINDING(&r, 11, 15, "undeclared global 'undefined_thing'");
    T_FINDING(&r, 12, 5, "sleep takes 1 argument");
    T_FINDING(&r, 13, 14, "called with '.', not ':'");
    T_FINDING(&r, 14, 5, "require takes a constant library name");
    T_FINDING(&r, 15, 21, "unknown field 'fromat' of module 'string' (did you mean 'format'?)");
    T_FINDING(&r, 16, 10, "the result of json.decode is not checked");
    T_FINDING(&r, 19, 7,
              "unknown field 'isolat' of connector 'defender' (did you mean 'isolate'?)");
    T_FINDING(&r, 20, 10, "'json' is read-only");
    T_FINDING(&r, 21, 29, "the alert has no field 'sourc' (did you mean 'source'?)");
    T_FINDING(&r, 21, 42, "the alert has no field 'mine'");
    T_ASSERT(!has(&r, 17, 0, ""));
    T_FINDING(&r, 13, 14, "the result of defender.isolate is not checked");
    T_EQ_INT(r.n, 17);
    lint_report_free(&r);
}

/* Library rules: functions must not change what the library built when it loaded. */
static void
test_library_rules(void)
{
    struct lint_report r;

    lint("local M = {}\n"
         "local count = 0\n"
         "local cache = {}\n"
         "count = 1\n" /* at load time: fine */
         "function M.bump()\n"
         "  count = count + 1\n"
         "  leaked = true\n"
         "  cache.x = 1\n"
         "  local n = 0\n"
         "  local function inner() n = n + 1 end\n" /* a local of the function: fine */
         "  inner()\n"
         "  return count, n\n"
         "end\n"
         "return M\n",
         LINT_LIBRARY, &r);
    T_FINDING(&r, 6, 3, "assigns 'count', a local of the library's top level");
    T_FINDING(&r, 7, 3, "a library function assigns the global 'leaked'");
    T_FINDING(&r, 8, 3, "a library function writes into 'cache', a table of the library's top");
    T_EQ_INT(r.n, 3);
    lint_report_free(&r);
}

/* A correct playbook using much of the language has no finding. */
static void
test_no_false_positives(void)
{
    struct lint_report r;

    lint("local json, log = json, log\n"
         "local allow = { ['alice@example.jp'] = true }\n"
         "local function score(alert, extra)\n"
         "  local s = alert.severity_level + (extra or 0)\n"
         "  for i = 1, 3 do s = s + i end\n"
         "  for _, o in ipairs(alert.observables) do\n"
         "    if o.type == 'ip' and string.find(o.value, '^10%.') then s = s - 1 end\n"
         "  end\n"
         "  return math.max(0, math.min(s, 10))\n"
         "end\n"
         "helper_count = 0\n"
         "function describe(a) helper_count = helper_count + 1; return a.title end\n"
         "return playbook {\n"
         "  name = 'complex', description = 'd',\n"
         "  on = { source = { 'defender.alert', 'entra.*' }, min_severity = 'medium' },\n"
         "  timeout = '10m',\n"
         "  run = function(alert)\n"
         "    alert.note = 'seen'\n"
         "    local host = alert:observable('host') or alert.note\n"
         "    local raw = alert.raw.properties and alert.raw.properties.id\n"
         "    local users = alert:values('user')\n"
         "    if alert.source == 'defender.alert' and host then\n"
         "      local m, err = defender.machine(host)\n"
         "      if not m then log.warn('no machine', err) return 'unknown' end\n"
         "      local act = assert(defender.isolate(m.id, 'selective', 'kagari: ' .. "
         "describe(alert)))\n"
         "      local done = defender.wait_action(act.id, { timeout = 600 })\n"
         "      if done then log.info(json.encode(done)) end\n"
         "    end\n"
         "    local n = 0\n"
         "    repeat n = n + 1 until n > 2\n"
         "    while n > 0 do n = n - 1 end\n"
         "    local t = setmetatable({}, { __index = function(_, k) return k end })\n"
         "    local ok, e = pcall(function() return t.x end)\n"
         "    local list = {}\n"
         "    table.insert(list, #users)\n"
         "    table.sort(list)\n"
         "    local text = ('%d users'):format(#users) .. tostring(ok) .. type(e)\n"
         "    local d, derr = json.decode('{\"a\":1}')\n"
         "    if d == nil then error(derr) end\n"
         "    for _, u in ipairs(users) do\n"
         "      if not allow[u] then\n"
         "        local r = graph.disable_user(u)\n"
         "        if r then log.info('disabled', u, text) end\n"
         "      end\n"
         "    end\n"
         "    local resp, herr = http.request{ method = 'POST', url = 'https://pager.example/x',\n"
         "                                     body = { text = alert.title } }\n"
         "    if not resp then log.error(herr) end\n"
         "    sleep(1)\n"
         "    return score(alert, select('#', 1, 2)) > 5 and 'escalated' or 'noted', now(), "
         "json.null,\n"
         "           math.huge, utf8.char(72), string.rep('x', 2), next({})\n"
         "  end,\n"
         "}\n",
         0, &r);
    if (r.n != 0) {
        T_FAIL_("findings on a correct playbook:");
        dump(&r);
    }
    lint_report_free(&r);
}

/* The alert's methods: argument counts from the metadata table (self not counted). */
static void
test_method_arity(void)
{
    struct lint_report r;

    lint("return playbook{ name='m', on={}, run=function(alert)\n"
         "  local a = alert:observable()\n"
         "  local b = alert:values('user', 2)\n"
         "  local c, d = alert:values(), alert:observable('ip')\n"
         "  local e = alert:observable(table.unpack({ 'ip' }))\n"
         "  return a, b, c, d, e\n"
         "end }\n",
         0, &r);
    T_FINDING(&r, 2, 19, "alert:observable takes 1 argument (type: string), given 0");
    T_FINDING(&r, 3, 19, "alert:values takes at most 1 argument (type?: string), given 2");
    T_EQ_INT(r.n, 2);
    lint_report_free(&r);
    /* Misspelt values the alert's fields and methods can never have. */
    lint("return playbook{ name='m', on={}, run=function(alert)\n"
         "  if alert.severity == 'hihg' or alert.severity == 'High' then return end\n"
         "  if alert.outcome ~= 'succeded' then return end\n"
         "  local u = alert:observable('usr')\n"
         "  local ok = alert.severity == 'critical' and alert.outcome == 'blocked'\n"
         "  return u, ok, alert:values('ip'), alert:observable('host')\n"
         "end }\n",
         0, &r);
    T_FINDING(&r, 2, 25, "alert.severity is never 'hihg'");
    T_FINDING(&r, 2, 53, "alert.severity is never 'High'");
    T_FINDING(&r, 3, 24, "alert.outcome is never 'succeded'");
    T_FINDING(&r, 4, 31, "'usr' is not an observable type");
    T_EQ_INT(r.n, 4);
    lint_report_free(&r);
}

/* Constant arguments of the wrong type, or not one of a parameter's literal values. */
static void
test_argument_types(void)
{
    struct lint_report r;

    lint("return playbook{ name='ty', on={}, run=function(alert)\n"
         "  sleep('5m')\n"
         "  sleep('5')\n"
         "  local a, e = defender.isolate('x', 'ful', 'c')\n"
         "  local b, e2 = defender.isolate('x', 'full')\n"
         "  local c, e3 = graph.user(nil)\n"
         "  local d, e4 = graph.user(42)\n"
         "  local f, e5 = defender.find_machine('host')\n"
         "  local g, e6 = idp.dismiss({ 'a', 'b' })\n"
         "  local h, e7 = intune.wipe('id', nil)\n"
         "  local kind = 'selective'\n"
         "  local i, e8 = defender.isolate('x', kind)\n"
         "  log.info({}, 1, nil, true)\n"
         "  return a, b, c, d, f, g, h, i, e, e2, e3, e4, e5, e6, e7, e8\n"
         "end }\n",
         0, &r);
    T_FINDING(&r, 2, 3, "sleep: argument 1 (seconds) must be number, given the string \"5m\"");
    T_FINDING(
        &r, 4, 25,
        "defender.isolate: argument 2 (kind) must be \"full\"|\"selective\", given the string "
        "\"ful\"");
    T_FINDING(&r, 6, 23, "graph.user: argument 1 (id) must be string, given nil");
    T_FINDING(&r, 8, 26,
              "defender.find_machine: argument 1 (query) must be table, given the string");
    T_EQ_INT(r.n, 4);
    lint_report_free(&r);
}

/* The triggers: names and prefixes no registered source gives. */
static void
test_triggers(void)
{
    const char src[] =
        "return playbook{\n  name='x',\n  on = { source = { 'entra.signn', 'azure.*', "
        "\"nope.*\" } },\n  run = function() end }\n";
    struct lint_report r = { NULL, 0 };

    T_ASSERT(apidesc_source_known(get_api(), "entra.signin"));
    T_ASSERT(apidesc_source_known(get_api(), "azure.*"));
    T_ASSERT(!apidesc_source_known(get_api(), "nope.*"));
    lint_trigger(get_api(), src, strlen(src), "entra.signn", &r);
    lint_trigger(get_api(), src, strlen(src), "nope.*", &r);
    T_FINDING(&r, 3, 22, "on.source: 'entra.signn' is not a source name");
    T_FINDING(&r, 3, 22, "did you mean 'entra.signin'");
    T_FINDING(&r, 3, 48, "on.source: 'nope.*'");
    /* A misspelling is a problem; a name of no known family may be a sender's own: a note. */
    T_EQ_INT(r.n, 2);
    if (r.n == 2) {
        T_EQ_INT(r.v[0].note, 0);
        T_EQ_INT(r.v[1].note, 1);
        T_CONTAINS(r.v[1].msg, "--source nope.* declares it");
    }
    lint_report_free(&r);
    lint_trigger(get_api(), src, strlen(src), "entra.nosuch", &r);
    T_EQ_INT(r.n, 1);
    T_EQ_INT(r.n == 1 ? r.v[0].note : 1, 0); /* a known family: a problem */
    lint_report_free(&r);
}

/* The shipped playbooks lint clean. */
static void
test_shipped_playbooks(void)
{
    static const char *const files[] = { "playbooks/triage.lua",
                                         "playbooks/contain-compromised-user.lua",
                                         "playbooks/isolate-defender-device.lua",
                                         "playbooks/escalate-critical.lua",
                                         "docs/examples/playbooks/repeat-sign-in.lua",
                                         NULL };

    for (size_t i = 0; files[i] != NULL; i++) {
        size_t len = 0;
        char *err = NULL;
        char *src = util_read_file(files[i], 1 << 20, &len, &err);
        struct lint_report r;
        lua_State *L;

        if (src == NULL) {
            T_FAIL_("%s: %s", files[i], err);
            free(err);
            continue;
        }
        L = luaL_newstate();
        r.v = NULL;
        r.n = 0;
        T_ASSERT(lint_chunk(get_api(), L, files[i], src, len, 0, &r, &err) == 0);
        if (r.n != 0) {
            T_FAIL_("%s has findings", files[i]);
            dump(&r);
        }
        lint_report_free(&r);
        lua_close(L);
        free(src);
        free(err);
    }
}

TEST_LIST = {
    { "each_class", test_each_class },
    { "library_rules", test_library_rules },
    { "no_false_positives", test_no_false_positives },
    { "method_arity", test_method_arity },
    { "argument_types", test_argument_types },
    { "triggers", test_triggers },
    { "shipped_playbooks", test_shipped_playbooks },
    { NULL, NULL },
};
