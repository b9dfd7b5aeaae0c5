/* test_sandbox.c: every known escape from the playbook sandbox gets a named test; each
 * attack runs as a chunk in a fresh coroutine with a budget, must fail with the expected
 * message, and a benign chunk must still work on the same state afterwards. The data-only
 * profile (the configuration's) has its own tests at the end: nothing callable, its
 * memory cap, its budget with allocation counted as work, and the caller's changes. */
#include "engine/sandbox.h"

#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "tests/unit/test.h"

#define TEST_CAP (32u << 20)

struct result {
    int status; /* of the last resume; LUA_ERRSYNTAX when the chunk did not load */
    int yields; /* time slices given up */
    char *text; /* error message, or the first result when it is a string or number */
    int64_t ms; /* wall time of the run */
};

static struct sandbox *
new_sandbox(void)
{
    char *err = NULL;
    struct sandbox *sb = sandbox_new(TEST_CAP, &err);

    if (sb == NULL) {
        fprintf(stderr, "sandbox_new: %s\n", err);
        free(err);
        return NULL;
    }
    sandbox_freeze(sb);
    return sb;
}

static void
default_task(struct sandbox_task *t)
{
    memset(t, 0, sizeof(*t));
    t->max_instructions = 5000000;
    t->deadline_ms = util_now_ms() + 5000;
}

/* Run src as a chunk in a new coroutine of sb with its own env and task t, resuming it
 * while it yields for time slices (slice_us > 0 sets a new slice before each resume).
 * With reset, lua_resetthread the coroutine afterwards. Fills r (free r->text). */
static void
run_task(struct sandbox *sb, const char *src, struct sandbox_task *t, int64_t slice_us, int reset,
         struct result *r)
{
    lua_State *L = sandbox_state(sb);
    lua_State *co = lua_newthread(L);
    int64_t start = util_now_ms();
    char *err = NULL;
    int nres = 0;

    memset(r, 0, sizeof(*r));
    sandbox_task_attach(co, t);
    sandbox_push_env(sb, co);
    if (sandbox_load(co, src, strlen(src), "attack", -1, &err) != 0) {
        r->status = LUA_ERRSYNTAX;
        r->text = err;
        lua_pop(L, 1);
        return;
    }
    lua_remove(co, -2); /* the env: the function holds it as _ENV */
    for (;;) {
        if (slice_us > 0) {
            t->slice_end_us = util_mono_us() + slice_us;
        }
        r->status = sandbox_resume(co, L, 0, &nres);
        if (r->status != LUA_YIELD) {
            break;
        }
        r->yields++;
        lua_pop(co, nres);
        if (r->yields > 100000) {
            break;
        }
    }
    if (r->status == LUA_OK) {
        if (nres > 0 &&
            (lua_type(co, -nres) == LUA_TSTRING || lua_type(co, -nres) == LUA_TNUMBER)) {
            r->text = strdup(lua_tostring(co, -nres));
        } else {
            r->text = strdup(nres > 0 ? luaL_typename(co, -nres) : "(none)");
        }
    } else if (r->status != LUA_YIELD) {
        r->text = sandbox_error_message(co);
    }
    if (reset) {
        lua_resetthread(co);
    }
    r->ms = util_now_ms() - start;
    lua_pop(L, 1);
}

static void
run(struct sandbox *sb, const char *src, struct result *r)
{
    struct sandbox_task t;

    default_task(&t);
    run_task(sb, src, &t, 0, 0, r);
}

/* The attack fails with a message containing want; a benign chunk still works. */
static void
expect_fail(struct sandbox *sb, const char *src, const char *want)
{
    struct result r;

    run(sb, src, &r);
    if (r.status == LUA_OK) {
        T_FAIL_("attack succeeded: %s", src);
    }
    /* The message proves the work was charged and stopped; how long that took depends
     * on the host and is not asserted. */
    T_CONTAINS(r.text, want);
    free(r.text);
    run(sb, "local t = {} for i = 1, 100 do t[i] = i end return #t + 0", &r);
    T_EQ_INT(r.status, LUA_OK);
    T_EQ_STR(r.text, "100");
    free(r.text);
}

static void
expect_ok(struct sandbox *sb, const char *src, const char *want)
{
    struct result r;

    run(sb, src, &r);
    T_EQ_INT(r.status, LUA_OK);
    T_EQ_STR(r.text, want);
    if (r.status != LUA_OK) {
        fprintf(stderr, "    chunk: %s\n    error: %s\n", src, r.text);
    }
    free(r.text);
}

static void
test_bytecode_refused(void)
{
    struct sandbox *sb = new_sandbox();
    lua_State *L;
    char *err = NULL;
    static const char chunk[] = "\x1bLua\x54\x00\x19\x93\r\n\x1a\n\x04\x08\x08";

    T_REQUIRE(sb != NULL);
    L = sandbox_state(sb);
    sandbox_push_env(sb, L);
    T_EQ_INT(sandbox_load(L, chunk, sizeof(chunk) - 1, "pb", -1, &err), -1);
    T_CONTAINS(err, "pb: attempt to load a binary chunk");
    free(err);
    lua_pop(L, 1);
    expect_fail(sb, "return load('\\27Lua')", "undeclared global 'load'");
    expect_fail(sb, "return loadfile('/etc/passwd')", "undeclared global 'loadfile'");
    expect_fail(sb, "return dofile('/etc/passwd')", "undeclared global 'dofile'");
    sandbox_free(sb);
}

static void
test_syntax_error_position(void)
{
    struct sandbox *sb = new_sandbox();
    lua_State *L;
    char *err = NULL;

    T_REQUIRE(sb != NULL);
    L = sandbox_state(sb);
    sandbox_push_env(sb, L);
    T_EQ_INT(sandbox_load(L, "local a = 1\nx = = 2", 19, "triage", -1, &err), -1);
    T_CONTAINS(err, "triage:2:");
    free(err);
    lua_pop(L, 1);
    sandbox_free(sb);
}

static void
test_string_dump_absent(void)
{
    struct sandbox *sb = new_sandbox();

    T_REQUIRE(sb != NULL);
    expect_fail(sb, "return string.dump(function() end)", "field 'dump'");
    expect_fail(sb, "return ('x').dump(function() end)", "field 'dump'");
    sandbox_free(sb);
}

static void
test_io_os_absent(void)
{
    struct sandbox *sb = new_sandbox();

    T_REQUIRE(sb != NULL);
    expect_fail(sb, "return io.open('/etc/passwd')", "undeclared global 'io'");
    expect_fail(sb, "return os.execute('id')", "undeclared global 'os'");
    expect_fail(sb, "return coroutine.create(print)", "undeclared global 'coroutine'");
    expect_fail(sb, "print('x')", "undeclared global 'print'");
    expect_fail(sb, "collectgarbage('stop')", "undeclared global 'collectgarbage'");
    expect_fail(sb, "return _G.os", "undeclared global '_G'");
    expect_fail(sb, "return math.random(1, 6)", "field 'random'");
    sandbox_free(sb);
}

static void
test_require_absent(void)
{
    struct sandbox *sb = new_sandbox();

    T_REQUIRE(sb != NULL);
    expect_fail(sb, "return require('io')", "undeclared global 'require'");
    expect_fail(sb, "return package.loadlib('libc.so.6', 'system')", "undeclared global 'package'");
    sandbox_free(sb);
}

static void
test_debug_absent(void)
{
    struct sandbox *sb = new_sandbox();

    T_REQUIRE(sb != NULL);
    expect_fail(sb, "return debug.getregistry()", "undeclared global 'debug'");
    sandbox_free(sb);
}

static void
test_endless_loop_budget(void)
{
    struct sandbox *sb = new_sandbox();

    T_REQUIRE(sb != NULL);
    expect_fail(sb, "while true do end", "attack:1: instruction budget exceeded (5000000)");
    expect_fail(sb, "local function spin()\n  while true do end\nend\nspin()",
                "attack:2: instruction budget exceeded");
    /* one instruction per iteration, but each copies the whole string */
    expect_fail(sb, "local s = 'x' while true do s = #s .. s end", "instruction budget exceeded");
    expect_fail(sb, "local s = string.rep('x', 1 << 24) while true do local t = s .. 'y' end",
                "instruction budget exceeded");
    sandbox_free(sb);
}

static void
test_pcall_cannot_swallow_budget(void)
{
    struct sandbox *sb = new_sandbox();

    T_REQUIRE(sb != NULL);
    expect_fail(sb, "while true do pcall(function() while true do end end) end",
                "instruction budget exceeded");
    expect_fail(sb,
                "while true do xpcall(function() while true do end end, "
                "function(e) while true do end end) end",
                "instruction budget exceeded");
    expect_fail(sb, "local ok, e repeat ok, e = pcall(error, 'x') until false",
                "instruction budget exceeded");
    sandbox_free(sb);
}

static void
test_deadline(void)
{
    struct sandbox *sb = new_sandbox();
    struct sandbox_task t;
    struct result r;

    T_REQUIRE(sb != NULL);
    default_task(&t);
    t.max_instructions = 0;
    t.deadline_ms = util_now_ms() + 100;
    run_task(sb, "while true do end", &t, 0, 0, &r);
    T_EQ_INT(r.status, LUA_ERRRUN);
    T_CONTAINS(r.text, "deadline exceeded");
    free(r.text);
    sandbox_free(sb);
}

static void
test_memory_bomb(void)
{
    struct sandbox *sb = new_sandbox();
    struct result r;

    T_REQUIRE(sb != NULL);
    run(sb,
        "local t, s = {}, string.rep('x', 1 << 20) "
        "for i = 1, 1000 do t[i] = s .. i end",
        &r);
    T_EQ_INT(r.status, LUA_ERRMEM);
    T_CONTAINS(r.text, "not enough memory");
    T_ASSERT(sandbox_memory(sb) <= sandbox_memory_cap(sb));
    free(r.text);
    expect_fail(sb, "return string.rep('x', 2^40)", "does not fit in the memory left");
    expect_fail(sb, "return ('x'):rep(1 << 30, 'yy')", "does not fit in the memory left");
    expect_fail(sb, "local s = 'x' while true do s = s .. s end", "not enough memory");
    lua_gc(sandbox_state(sb), LUA_GCCOLLECT);
    T_ASSERT(sandbox_memory(sb) < (1u << 20));
    expect_ok(sb, "return #string.rep('ab', 1000, ',')", "2999");
    expect_ok(sb, "return #string.rep('', 1e15)", "0");
    sandbox_free(sb);
}

static void
test_unbounded_recursion(void)
{
    struct sandbox *sb = new_sandbox();
    struct result r;

    T_REQUIRE(sb != NULL);
    run(sb, "local function f(n) return f(n + 1) + 1 end return f(1)", &r);
    T_ASSERT(r.status == LUA_ERRRUN || r.status == LUA_ERRMEM);
    T_ASSERT(strstr(r.text, "stack overflow") != NULL ||
             strstr(r.text, "not enough memory") != NULL);
    free(r.text);
    expect_fail(sb, "local function f() return string.gsub('x', '.', f) end return f()",
                "stack overflow");
    expect_ok(sb, "return 1 + 1", "2");
    sandbox_free(sb);
}

static void
test_library_tables_readonly(void)
{
    struct sandbox *sb = new_sandbox();

    T_REQUIRE(sb != NULL);
    expect_fail(sb, "setmetatable(string, {})", "cannot change a protected metatable");
    expect_fail(sb, "string.x = 1", "attempt to modify read-only table 'string'");
    expect_fail(sb, "table.insert = nil", "attempt to modify read-only table 'table'");
    expect_fail(sb, "rawset(string, 'x', 1)", "read-only table");
    expect_fail(sb, "rawset(math, 'pi', 3)", "read-only table");
    expect_fail(sb, "table.insert(utf8, 'x')", "read-only table 'utf8'");
    expect_ok(sb, "return tostring(getmetatable(string))", "false");
    expect_ok(sb, "return tostring(rawget(string, 'format'))", "nil");
    expect_ok(sb,
              "local n = 0 for k, v in pairs(string) do n = n + 1 end return n > 10 and 'ok' or n",
              "ok");
    expect_ok(sb, "return string.format('%d-%s', 7, ('ab'):upper())", "7-AB");
    expect_ok(sb, "return math.floor(math.pi * 100)", "314");
    expect_ok(sb, "return utf8.len('日本')", "2");
    sandbox_free(sb);
}

static void
test_gc_metatable_refused(void)
{
    struct sandbox *sb = new_sandbox();

    T_REQUIRE(sb != NULL);
    expect_fail(sb, "setmetatable({}, {__gc = function() while true do end end})",
                "__gc metamethods are not allowed");
    expect_fail(sb, "setmetatable({}, {__gc = false})", "__gc metamethods are not allowed");
    expect_ok(sb, "return getmetatable(setmetatable({}, {__mode = 'k'})).__mode", "k");
    sandbox_free(sb);
}

static void
test_string_metatable_protected(void)
{
    struct sandbox *sb = new_sandbox();
    lua_State *L;
    lua_State *co;
    struct sandbox_task t;
    int nres = 0;
    const char *src = "return getmetatable('').__index";

    T_REQUIRE(sb != NULL);
    L = sandbox_state(sb);
    co = lua_newthread(L);
    default_task(&t);
    sandbox_task_attach(co, &t);
    sandbox_push_env(sb, co);
    T_REQUIRE(sandbox_load(co, src, strlen(src), "mt", -1, NULL) == 0);
    lua_remove(co, -2);
    T_EQ_INT(sandbox_resume(co, L, 0, &nres), LUA_OK);
    T_EQ_INT(nres, 1);
    lua_getfield(co, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(co, -1, "string"); /* the real string table */
    T_ASSERT(lua_istable(co, -3));
    T_ASSERT(!lua_rawequal(co, -1, -3));
    lua_pop(L, 1);
    expect_ok(sb, "return tostring(getmetatable('').__index == string)", "true");
    expect_fail(sb, "getmetatable('').__index = {}", "read-only table");
    expect_fail(sb, "getmetatable('').__index.rep = nil", "read-only table 'string'");
    expect_fail(sb, "rawset(getmetatable(''), '__index', {})", "read-only table");
    sandbox_free(sb);
}

static void
test_catastrophic_pattern(void)
{
    struct sandbox *sb = new_sandbox();

    T_REQUIRE(sb != NULL);
    expect_fail(sb, "return string.find(string.rep('a', 5000), string.rep('a*', 20) .. 'b')",
                "pattern too complex for a subject of 5000 bytes");
    expect_fail(sb,
                "return (string.rep('a', 5000)):match(string.rep('a?', 40) .. string.rep('a', 40))",
                "pattern too complex");
    expect_fail(sb, "for w in string.rep('a', 5000):gmatch(string.rep('a*', 20) .. 'b') do end",
                "pattern too complex");
    expect_fail(sb, "return string.gsub(string.rep(' ', 1 << 20), '%s+x', '')",
                "pattern too complex for a subject of 1048576 bytes");
    expect_fail(sb, "return string.find(string.rep('(', 100000), '%b()')", "pattern too complex");
    expect_fail(
        sb,
        "return string.find(string.rep('a', 1 << 20), string.rep('a', 1 << 19) .. 'b', 1, true)",
        "pattern too complex");
    /* ordinary patterns on ordinary strings */
    expect_ok(
        sb, "local u, d = string.match('alice@example.com', '^(%S+)@(%S+)$') return u .. '|' .. d",
        "alice|example.com");
    expect_ok(sb,
              "local a, b, c, d = ('10.0.12.7'):match('(%d+)%.(%d+)%.(%d+)%.(%d+)') "
              "return a + b + c + d",
              "29");
    expect_ok(sb,
              "local s = string.rep('word \\t\\n ', 100000) local r, n = s:gsub('%s+', ' ') "
              "return #r .. ' ' .. n",
              "500000 100000");
    expect_ok(sb,
              "local s = string.rep('user=alice ip=10.1.2.3 ', 2000) local n = 0 "
              "for k, v in s:gmatch('(%w+)=(%S+)') do n = n + 1 end return n",
              "4000");
    expect_ok(sb, "return (string.find('a needle in a haystack', 'needle', 1, true))", "3");
    expect_ok(sb, "return ('  trim me  '):match('^%s*(.-)%s*$')", "trim me");
    sandbox_free(sb);
}

static void
test_pattern_work_is_charged(void)
{
    struct sandbox *sb = new_sandbox();

    T_REQUIRE(sb != NULL);
    /* each call is under the per-call bound but far over the run's budget */
    expect_fail(sb, "local s = string.rep(' ', 6000) for i = 1, 1000 do s:find('%s+x') end",
                "instruction budget exceeded");
    sandbox_free(sb);
}

static void
test_table_ranges_bounded(void)
{
    struct sandbox *sb = new_sandbox();

    T_REQUIRE(sb != NULL);
    expect_fail(sb, "table.move({}, 1, 1e15, 2)", "over the sandbox limit");
    expect_fail(sb, "return table.concat({}, '', 1, 1e15)", "over the sandbox limit");
    expect_fail(sb,
                "local t = setmetatable({}, {__index = table.concat}) "
                "return table.concat(t, '', 1, 1 << 40)",
                "over the sandbox limit");
    expect_fail(sb, "return table.unpack({}, 1, 1e8)", "over the sandbox limit");
    expect_fail(sb, "table.insert(setmetatable({}, {__len = function() return 1e15 end}), 1, 'x')",
                "over the sandbox limit");
    expect_fail(sb, "table.remove(setmetatable({}, {__len = function() return 1e15 end}), 1)",
                "over the sandbox limit");
    expect_fail(sb, "table.sort(setmetatable({}, {__len = function() return 2^31 end}), tonumber)",
                "over the sandbox limit");
    /* the wrappers keep the library's behaviour */
    expect_ok(sb,
              "local t = {1, 2, 3} table.insert(t, 1, 0) table.insert(t, 4) "
              "local r = table.remove(t, 1) table.sort(t, function(a, b) return a > b end) "
              "return table.concat(t, ',') .. ';' .. r .. ';' .. select('#', table.unpack(t))",
              "4,3,2,1;0;4");
    expect_ok(sb,
              "local real = {3, 1, 2} local n = 0 "
              "local t = setmetatable({}, {__len = function() n = n + 1 return 3 end, "
              "__index = real, __newindex = real}) table.sort(t) "
              "return table.concat(real, ',') .. ' ' .. n",
              "1,2,3 1");
    expect_ok(sb, "return table.concat(table.move({1, 2, 3}, 1, 3, 2), ',')", "1,1,2,3");
    expect_fail(sb, "table.insert({}, 5, 'x')", "position out of bounds");
    sandbox_free(sb);
}

static void
test_global_typo(void)
{
    struct sandbox *sb = new_sandbox();

    T_REQUIRE(sb != NULL);
    expect_fail(sb, "local x = strng.format('%d', 1)", "attack:1: undeclared global 'strng'");
    expect_fail(sb, "local a = 1\nif a then return undefined_thing end",
                "attack:2: undeclared global");
    expect_ok(sb, "x = 1 x = x + 1 return x", "2");
    expect_ok(sb, "_ENV.y = 3 return y", "3");
    expect_ok(sb, "return tostring(getmetatable(_ENV))", "false");
    expect_fail(sb, "setmetatable(_ENV, nil)", "cannot change a protected metatable");
    sandbox_free(sb);
}

static void
test_env_isolation(void)
{
    struct sandbox *sb = new_sandbox();

    T_REQUIRE(sb != NULL);
    expect_ok(sb, "leak = 42 string_copy = string return leak", "42");
    expect_fail(sb, "return leak", "undeclared global 'leak'");
    expect_fail(sb, "return string_copy", "undeclared global 'string_copy'");
    sandbox_free(sb);
}

static void
test_close_handler_after_kill(void)
{
    struct sandbox *sb = new_sandbox();
    struct sandbox_task t;
    struct result r;
    const char *src =
        "local x <close> = setmetatable({}, {__close = function() while true do end end}) "
        "local y <close> = setmetatable({}, {__close = function() while true do end end}) "
        "while true do end";

    T_REQUIRE(sb != NULL);
    /* killed by its budget while running, then reset */
    default_task(&t);
    run_task(sb, src, &t, 0, 1, &r);
    T_EQ_INT(r.status, LUA_ERRRUN);
    T_CONTAINS(r.text, "instruction budget exceeded");
    free(r.text);
    expect_ok(sb, "return 'alive'", "alive");
    sandbox_free(sb);
}

static void
test_close_handler_parked_kill(void)
{
    struct sandbox *sb = new_sandbox();
    lua_State *L;
    lua_State *co;
    struct sandbox_task t;
    int nres = 0;
    int64_t start;
    const char *src =
        "local x <close> = setmetatable({}, {__close = function() while true do end end}) "
        "while true do end";

    T_REQUIRE(sb != NULL);
    L = sandbox_state(sb);
    co = lua_newthread(L);
    default_task(&t);
    t.slice_end_us = 1; /* long past: yield at the first hook */
    sandbox_task_attach(co, &t);
    sandbox_push_env(sb, co);
    T_REQUIRE(sandbox_load(co, src, strlen(src), "parked", -1, NULL) == 0);
    lua_remove(co, -2);
    T_EQ_INT(sandbox_resume(co, L, 0, &nres), LUA_YIELD);
    /* the run is parked; its deadline passes; the engine kills and discards it */
    start = util_now_ms();
    sandbox_task_kill(co, &t, "deadline exceeded");
    T_ASSERT(lua_resetthread(co) != LUA_OK);
    T_ASSERT(util_now_ms() - start < 2000);
    T_CONTAINS(lua_tostring(co, -1), "deadline exceeded");
    lua_pop(L, 1);
    expect_ok(sb, "return 'alive'", "alive");
    sandbox_free(sb);
}

static void
test_error_object_tostring_loop(void)
{
    struct sandbox *sb = new_sandbox();
    struct result r;

    T_REQUIRE(sb != NULL);
    run(sb, "error(setmetatable({}, {__tostring = function() while true do end end}))", &r);
    T_EQ_INT(r.status, LUA_ERRRUN);
    T_ASSERT(r.text != NULL && strncmp(r.text, "(error object is a table value)", 31) == 0);
    T_CONTAINS(r.text, "stack traceback:");
    free(r.text);
    run(sb, "local function fail() error('boom') end\nfail()", &r);
    T_CONTAINS(r.text, "attack:1: boom");
    T_CONTAINS(r.text, "in local 'fail'");
    free(r.text);
    run(sb, "error(42)", &r);
    T_ASSERT(r.text != NULL && strncmp(r.text, "42\n", 3) == 0);
    free(r.text);
    sandbox_free(sb);
}

static void
test_time_slicing(void)
{
    struct sandbox *sb = new_sandbox();
    struct sandbox_task t;
    struct result r;

    T_REQUIRE(sb != NULL);
    default_task(&t);
    t.max_instructions = 200000000;
    run_task(sb, "local x = 0 for i = 1, 3000000 do x = x + i % 7 end return x", &t, 500, 0, &r);
    T_EQ_INT(r.status, LUA_OK);
    T_EQ_STR(r.text, "8999997");
    T_ASSERT(r.yields >= 3);
    T_ASSERT(t.instructions > 3000000);
    free(r.text);
    /* no slice: runs straight through */
    default_task(&t);
    t.max_instructions = 200000000;
    run_task(sb, "local x = 0 for i = 1, 300000 do x = x + 1 end return x", &t, 0, 0, &r);
    T_EQ_INT(r.yields, 0);
    T_EQ_STR(r.text, "300000");
    free(r.text);
    sandbox_free(sb);
}

static void
test_xpcall_semantics(void)
{
    struct sandbox *sb = new_sandbox();

    T_REQUIRE(sb != NULL);
    expect_ok(sb,
              "local ok, e = xpcall(function() error('boom', 0) end, function(m) return 'handled ' "
              ".. m end) "
              "return tostring(ok) .. ' ' .. e",
              "false handled boom");
    expect_ok(sb,
              "local ok, a, b = xpcall(function(x, y) return x + y, x * y end, error, 3, 4) "
              "return tostring(ok) .. a .. b",
              "true712");
    expect_ok(sb,
              "local ok, e = xpcall(error, function(m) error('again', 0) end, 'x') "
              "return tostring(ok) .. ' ' .. e",
              "false again");
    expect_fail(sb, "xpcall(type)", "bad argument #2 to 'xpcall'");
    sandbox_free(sb);
}

static int
l_test_double(lua_State *L)
{
    lua_pushinteger(L, 2 * luaL_checkinteger(L, 1));
    return 1;
}

static int
l_test_open_lib(lua_State *L)
{
    static const luaL_Reg funcs[] = { { "double", l_test_double }, { NULL, NULL } };

    luaL_newlib(L, funcs);
    return 1;
}

static void
test_added_globals(void)
{
    char *err = NULL;
    struct sandbox *sb = sandbox_new(TEST_CAP, &err);

    T_REQUIRE(sb != NULL);
    sandbox_add_lib(sb, "calc", l_test_open_lib);
    sandbox_add_func(sb, "twice", l_test_double);
    sandbox_freeze(sb);
    expect_ok(sb, "return calc.double(4) + twice(1)", "10");
    expect_fail(sb, "calc.double = nil", "attempt to modify read-only table 'calc'");
    expect_fail(sb, "rawset(calc, 'x', 1)", "read-only table");
    expect_fail(sb, "setmetatable(calc, nil)", "cannot change a protected metatable");
    expect_fail(sb, "calc.double('x')", "bad argument #1 to 'double'");
    sandbox_free(sb);
}

static void
test_memory_cost(void)
{
    struct sandbox *sb = new_sandbox();
    lua_State *L;
    size_t before, after;

    T_REQUIRE(sb != NULL);
    L = sandbox_state(sb);
    T_ASSERT(sandbox_memory(sb) > 0 && sandbox_memory(sb) < 200000);
    lua_gc(L, LUA_GCCOLLECT);
    before = sandbox_memory(sb);
    lua_createtable(L, 1000, 0);
    for (int i = 1; i <= 1000; i++) {
        sandbox_push_env(sb, L);
        lua_rawseti(L, -2, i);
    }
    after = sandbox_memory(sb);
    T_ASSERT((after - before) / 1000 < 100); /* one small table per run */
    lua_pop(L, 1);
    T_ASSERT(sandbox_task_of(L) == NULL);
    sandbox_free(sb);
    sandbox_free(NULL);
}

static void
test_tiny_cap(void)
{
    char *err = NULL;

    T_ASSERT(sandbox_new(2000, &err) == NULL);
    T_CONTAINS(err, "sandbox:");
    free(err);
}

/* ---- the data-only profile ---- */

#define DATA_CAP (8u << 20)
#define DATA_BUDGET 1000000

static struct sandbox *
new_data(size_t cap, uint64_t instructions)
{
    char *err = NULL;
    struct sandbox *sb = sandbox_new_data(cap, instructions, &err);

    if (sb == NULL) {
        fprintf(stderr, "sandbox_new_data: %s\n", err);
        free(err);
    }
    return sb;
}

/* Run src on the main thread of the data-only sandbox sb, as the configuration does,
 * with the state's own globals as _ENV. Returns the status; *text gets the error
 * message, or the first result (a string or number; else its type name). Free it. */
static int
run_data(struct sandbox *sb, const char *src, char **text)
{
    lua_State *L = sandbox_state(sb);
    int top = lua_gettop(L);
    int status = luaL_loadbufferx(L, src, strlen(src), "=data", "t");

    if (status == LUA_OK) {
        status = lua_pcall(L, 0, 1, 0);
    }
    if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
        *text = strdup(lua_tostring(L, -1));
    } else {
        *text = strdup(luaL_typename(L, -1));
    }
    lua_settop(L, top);
    return status;
}

/* Run src (run_data) and check its status and message. Returns whether both are as
 * expected, so that a test can stop before a chunk that would never end were a limit
 * broken: such a test then fails instead of hanging. */
static int
expect_data(struct sandbox *sb, const char *src, int status, const char *want)
{
    char *text = NULL;
    int got = run_data(sb, src, &text);
    int ok = got == status && text != NULL && strstr(text, want) != NULL;

    T_EQ_INT(got, status);
    T_CONTAINS(text, want);
    if (!ok) {
        fprintf(stderr, "    chunk: %s\n", src);
    }
    free(text);
    return ok;
}

/* The integer global name (a chunk's progress counter), or -1. */
static lua_Integer
data_global_int(struct sandbox *sb, const char *name)
{
    lua_State *L = sandbox_state(sb);
    lua_Integer n;
    int isnum = 0;

    lua_getglobal(L, name);
    n = lua_tointegerx(L, -1, &isnum);
    lua_pop(L, 1);
    return isnum ? n : -1;
}

static void
test_data_no_functions(void)
{
    static const char *const names[] = {
        "print",          "string",  "pcall", "setmetatable", "getmetatable", "rawset",
        "load",           "require", "type",  "tostring",     "error",        "next",
        "pairs",          "_G",      "os",    "io",           "debug",        "coroutine",
        "collectgarbage", "table",   "math",  NULL,
    };
    struct sandbox *sb = new_data(DATA_CAP, DATA_BUDGET);
    lua_State *L;
    char src[128], want[128];

    T_REQUIRE(sb != NULL);
    L = sandbox_state(sb);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_pushnil(L);
    T_EQ_INT(lua_next(L, -2), 0); /* an empty global table */
    lua_pop(L, 1);
    T_EQ_INT(lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE), LUA_TNIL); /* no library */
    lua_pop(L, 1);
    lua_pushliteral(L, "");
    T_EQ_INT(lua_getmetatable(L, -1), 0); /* no string methods */
    lua_pop(L, 1);
    for (int i = 0; names[i] != NULL; i++) {
        snprintf(src, sizeof(src), "return %s", names[i]);
        expect_data(sb, src, LUA_OK, "nil");
        snprintf(src, sizeof(src), "%s()", names[i]);
        snprintf(want, sizeof(want), "data:1: attempt to call a nil value (global '%s')", names[i]);
        expect_data(sb, src, LUA_ERRRUN, want);
    }
    expect_data(sb, "return ('x'):rep(3)", LUA_ERRRUN, "attempt to index a string value");
    expect_data(sb, "local t = { 1, 2 } return #t .. 'x' .. 2 ^ 3", LUA_OK, "2x8.0");
    sandbox_free(sb);
}

static void
test_data_memory_cap(void)
{
    struct sandbox *sb = new_data(1u << 20, 100000000);
    char *err = NULL;

    T_REQUIRE(sb != NULL);
    T_EQ_INT(sandbox_memory_cap(sb), 1u << 20);
    /* 160 MB without a cap; it must hold before the unbounded loop below */
    T_REQUIRE(expect_data(sb, "local t = {} for i = 1, 1e7 do t[i] = i end", LUA_ERRMEM,
                          "not enough memory"));
    T_REQUIRE(sandbox_memory(sb) <= (1u << 20));
    expect_data(sb, "local s = 'x' while true do s = s .. s end", LUA_ERRMEM, "not enough memory");
    T_ASSERT(sandbox_memory(sb) <= (1u << 20));
    expect_data(sb, "return 1 + 1", LUA_OK, "2"); /* the state is still usable */
    sandbox_free(sb);
    T_ASSERT(sandbox_new_data(2000, DATA_BUDGET, &err) == NULL);
    T_CONTAINS(err, "sandbox:");
    free(err);
}

static void
test_data_budget(void)
{
    struct sandbox *sb = new_data(DATA_CAP, DATA_BUDGET);
    const struct sandbox_task *t;
    int64_t start = util_now_ms();
    int ok;

    T_REQUIRE(sb != NULL);
    t = sandbox_task_of(sandbox_state(sb));
    T_REQUIRE(t != NULL);
    T_ASSERT(!t->killed);
    /* a loop that ends, so that a missing budget fails here instead of hanging below */
    ok = expect_data(sb, "local n = 0 for i = 1, 1e8 do n = n + 1 end", LUA_ERRRUN,
                     "data:1: instruction budget exceeded (1000000)");
    T_ASSERT(t->killed);
    sandbox_free(sb);
    T_REQUIRE(ok);
    sb = new_data(DATA_CAP, DATA_BUDGET);
    T_REQUIRE(sb != NULL);
    expect_data(sb, "while true do end", LUA_ERRRUN,
                "data:1: instruction budget exceeded (1000000)");
    T_ASSERT(util_now_ms() - start < 4000);
    sandbox_free(sb);
}

/* Each .. below is one instruction that copies kilobytes or megabytes: unless the bytes
 * are charged, the loop runs hundreds of times longer than its budget allows. */
static void
test_data_budget_counts_allocation(void)
{
    struct sandbox *sb = new_data(DATA_CAP, DATA_BUDGET);
    int64_t start = util_now_ms();
    lua_Integer n;

    T_REQUIRE(sb != NULL);
    /* 16 KB a turn, about 260 instructions charged: some 3,800 turns, not 140,000 */
    expect_data(sb,
                "n = 0 local s = 'x' for i = 1, 13 do s = s .. s end\n"
                "while true do n = n + 1 local t = s .. s end",
                LUA_ERRRUN, "instruction budget exceeded");
    n = data_global_int(sb, "n");
    sandbox_free(sb);
    T_REQUIRE(n > 0 && n < 20000); /* else the last loop below would run for hours */

    /* 2 MB a turn: the hook fires early after 8 MB, so some 30 turns, not the 140 that
     * run before the count hook's first check */
    sb = new_data(DATA_CAP, DATA_BUDGET);
    T_REQUIRE(sb != NULL);
    expect_data(sb,
                "n = 0 local s = 'x' for i = 1, 20 do s = s .. s end\n"
                "while true do n = n + 1 local t = s .. s end",
                LUA_ERRRUN, "instruction budget exceeded");
    n = data_global_int(sb, "n");
    sandbox_free(sb);
    T_REQUIRE(n > 0 && n < 100);

    /* the configuration's own runaway: a string growing by a few bytes a turn */
    sb = new_data(DATA_CAP, 10000000);
    T_REQUIRE(sb != NULL);
    expect_data(sb, "local s = 'x' while true do s = #s .. s end", LUA_ERRRUN,
                "instruction budget exceeded (10000000)");
    sandbox_free(sb);
    T_ASSERT(util_now_ms() - start < 8000);
}

static void
test_data_raise_cap(void)
{
    static const char src[] = "local s = 'x' for i = 1, 19 do s = s .. s end return #(s .. s)";
    struct sandbox *sb = new_data(1u << 20, DATA_BUDGET);

    T_REQUIRE(sb != NULL);
    expect_data(sb, src, LUA_ERRMEM, "not enough memory"); /* 1 MB does not fit in 1 MB */
    sandbox_set_memory_cap(sb, 4u << 20);
    T_EQ_INT(sandbox_memory_cap(sb), 4u << 20);
    expect_data(sb, src, LUA_OK, "1048576");
    T_ASSERT(sandbox_memory(sb) <= (4u << 20));
    sandbox_free(sb);
}

static void
test_data_budget_off(void)
{
    static const char src[] = "local n = 0 for i = 1, 1e6 do n = n + i end return n";
    struct sandbox *sb = new_data(DATA_CAP, 100000);
    lua_State *L;

    T_REQUIRE(sb != NULL);
    L = sandbox_state(sb);
    expect_data(sb, src, LUA_ERRRUN, "instruction budget exceeded (100000)");
    T_ASSERT(sandbox_task_of(L)->killed);
    sandbox_set_budget(sb, 0);
    T_ASSERT(lua_gethook(L) == NULL);
    expect_data(sb, src, LUA_OK, "500000500000");
    /* and on again, counted afresh: the earlier kill is forgotten */
    sandbox_set_budget(sb, 100000);
    T_ASSERT(!sandbox_task_of(L)->killed);
    expect_data(sb, "return 6 * 7", LUA_OK, "42");
    expect_data(sb, src, LUA_ERRRUN, "instruction budget exceeded (100000)");
    sandbox_free(sb);
}

/* Run src under a task with the given budget; it must fail with want, promptly. */
static void
expect_fail_budget(struct sandbox *sb, const char *src, uint64_t budget, const char *want)
{
    struct sandbox_task t;
    struct result r;

    default_task(&t);
    t.max_instructions = budget;
    run_task(sb, src, &t, 0, 0, &r);
    if (r.status == LUA_OK) {
        T_FAIL_("attack succeeded: %s", src);
    }
    T_CONTAINS(r.text, want);
    free(r.text);
}

/* The keys of a table visited by pairs, and by a loop of next, joined with commas. */
#define ORDER_OF(t)                                                                                \
    "local a, b = {}, {} for k in pairs(" t ") do a[#a + 1] = tostring(k) end "                    \
    "for k in next, " t " do b[#b + 1] = tostring(k) end "                                         \
    "local x, y = table.concat(a, ','), table.concat(b, ',') "                                     \
    "assert(x == y, x .. ' <> ' .. y) return x"

/* pairs and next visit keys in one order, whatever the insertion history and the
 * state's hash seed: two fresh states, keys inserted in different orders (one with
 * deletions and re-insertions, so the hash part differs), the same order. */
static void
test_pairs_order_deterministic(void)
{
    static const char *const srcs[] = {
        "local t = {} t.zeta = 1 t[3] = 1 t.alpha = 1 t[true] = 1 t[1] = 1 t[2.5] = 1 "
        "t.mid = 1 t[-1] = 1 t[2] = 1 t[1 << 40] = 1 t[''] = 1 " ORDER_OF("t"),
        "local t = {} for i = 1, 200 do t['tmp' .. i] = i end t[''] = 1 t[1 << 40] = 1 "
        "t[2] = 1 t[-1] = 1 t.mid = 1 t[2.5] = 1 t[1] = 1 t[true] = 1 t.alpha = 1 t[3] = 1 "
        "t.zeta = 1 for i = 1, 200 do t['tmp' .. i] = nil end " ORDER_OF("t"),
    };
    const char *want = "-1,1,2,2.5,3,1099511627776,,alpha,mid,zeta,true";

    for (int i = 0; i < 2; i++) {
        struct sandbox *sb = new_sandbox();

        T_REQUIRE(sb != NULL);
        expect_ok(sb, srcs[i], want);
        /* a library table (a read-only proxy) is ordered too */
        expect_ok(sb,
                  "local a = {} for k in pairs(math) do a[#a + 1] = k end "
                  "return a[1] .. ',' .. a[2] .. ',' .. a[#a]",
                  "abs,acos,ult");
        /* values changed or cleared during the loop */
        expect_ok(sb,
                  "local t = {a = 1, b = 2, c = 3, d = 4} local s = '' "
                  "for k, v in pairs(t) do t.c = nil t[k] = v * 10 s = s .. k .. t[k] end "
                  "return s",
                  "a10b20d40");
        /* one key that is a table is ordered last; two have no stable order */
        expect_ok(sb, "local t = {[{}] = 1, x = 2, [1] = 3} " ORDER_OF("t"), "1,x,table");
        expect_fail(sb, "for k in pairs({[{}] = 1, [{}] = 2}) do end",
                    "no order that is the same on replay");
        expect_fail(sb, "return next({[{}] = 1, [pairs] = 2})",
                    "no order that is the same on replay");
        expect_ok(sb, "return tostring(next({}))", "nil");
        sandbox_free(sb);
    }
}

/* pairs over a big table is charged: the keys are sorted. */
static void
test_pairs_charged(void)
{
    struct sandbox *sb = new_sandbox();

    T_REQUIRE(sb != NULL);
    expect_fail(sb,
                "local t = {} for i = 1, 20000 do t['k' .. i] = i end "
                "for j = 1, 100 do for k in pairs(t) do break end end",
                "instruction budget exceeded");
    sandbox_free(sb);
}

/* tostring and string.format('%s') show no address; '%p' is refused. */
static void
test_tostring_no_address(void)
{
    struct sandbox *sb = new_sandbox();

    T_REQUIRE(sb != NULL);
    expect_ok(sb, "return tostring({})", "table");
    expect_ok(sb, "return tostring(tostring) .. ' ' .. tostring(function() end)",
              "function function");
    expect_ok(sb, "return string.format('%s|%s|%5.2s', {}, pairs, 'abc')", "table|function|   ab");
    expect_ok(sb, "return tostring(setmetatable({}, {__name = 'thing'}))", "thing");
    expect_ok(sb, "return tostring(setmetatable({}, {__tostring = function() return 'me' end}))",
              "me");
    expect_ok(sb,
              "return string.format('%s', setmetatable({}, {__tostring = function() "
              "return 'me' end}))",
              "me");
    expect_ok(sb, "return tostring(1.5) .. tostring(nil) .. tostring(true) .. tostring(7)",
              "1.5niltrue7");
    expect_fail(sb, "return string.format('%p', {})", "'%p' is not allowed in playbooks");
    expect_fail(sb, "return string.format('%d %10p', 1, 'x')", "'%p' is not allowed");
    expect_fail(sb, "return tostring(setmetatable({}, {__tostring = function() return {} end}))",
                "'__tostring' must return a string");
    expect_ok(sb, "return string.format('%%p %d', 1)", "%p 1");
    sandbox_free(sb);
}

/* table.sort is stable, so elements that compare equal keep their order on replay
 * (Lua's quicksort picks a random pivot for big arrays). */
static void
test_sort_stable(void)
{
    struct sandbox *sb = new_sandbox();

    T_REQUIRE(sb != NULL);
    expect_ok(sb,
              "local t = {} for i = 1, 500 do t[i] = {k = (i * 7) % 3, n = i} end "
              "table.sort(t, function(a, b) return a.k < b.k end) "
              "for i = 2, #t do local a, b = t[i - 1], t[i] "
              "  assert(a.k < b.k or (a.k == b.k and a.n < b.n), 'unstable at ' .. i) end "
              "return t[1].n .. ' ' .. t[500].n",
              "3 500");
    expect_ok(sb,
              "local t = {} for i = 1, 5000 do t[i] = tostring((i * 7919) % 5000) end "
              "table.sort(t) return t[1] .. ' ' .. t[2] .. ' ' .. t[5000]",
              "0 1 999");
    expect_ok(sb, "local t = {3, 1.5, 2, -1} table.sort(t) return table.concat(t, ',')",
              "-1,1.5,2,3");
    expect_fail(sb, "table.sort({1, 'x', 2})", "attempt to compare");
    sandbox_free(sb);
}

/* Library C functions whose work grows with their input are charged (and stopped by the
 * budget) or refused past the per-call limit; ordinary calls still work. */
static void
test_c_work_charged(void)
{
    struct sandbox *sb = new_sandbox();
    char *err = NULL;
    struct sandbox *big = sandbox_new(256u << 20, &err);

    T_REQUIRE(sb != NULL);
    T_REQUIRE(big != NULL);
    sandbox_freeze(big);
    /* 3 million elements: refused before any comparison */
    expect_fail_budget(sb,
                       "table.sort(setmetatable({}, {__len = function() return 3e6 end, "
                       "__index = function() return 'x' end, __newindex = function() end}))",
                       (uint64_t)1e12, "table.sort: 1056000000 steps of work in one call");
    /* long equal strings: each comparison walks them, and is charged as it goes */
    expect_fail(sb,
                "local s = string.rep('x', 1 << 20) local t = {} for i = 1, 1000 do t[i] = s end "
                "table.sort(t)",
                "instruction budget exceeded");
    expect_fail_budget(big,
                       "local s = string.rep('x', 1 << 24) local t = {} "
                       "for i = 1, 1000 do t[i] = s end table.sort(t)",
                       (uint64_t)1e12, "table.sort: ");
    expect_fail(sb,
                "table.concat(setmetatable({}, {__index = function() return 'x' end}), '', 1, 1e6)",
                "instruction budget exceeded");
    expect_fail(sb, "return select('#', table.unpack({}, 1, 6e6))", "budget exceeded");
    expect_fail(sb, "local s = string.rep('ab', 3e6)", "instruction budget exceeded");
    expect_fail_budget(big, "local s = string.rep('\\0', 3e7) return #string.format('%q', s)",
                       (uint64_t)1e12, "string.format: 120000002 steps of work in one call");
    expect_fail(sb, "local s = string.rep('a', 1e6) for i = 1, 100 do s:upper() end",
                "instruction budget exceeded");
    expect_fail(sb, "local s = string.rep('a', 1e6) for i = 1, 100 do s:lower() end",
                "instruction budget exceeded");
    expect_fail(sb, "local s = string.rep('a', 1e6) for i = 1, 100 do s:reverse() end",
                "instruction budget exceeded");
    expect_fail(sb, "local s = string.rep('a', 1e6) for i = 1, 100 do utf8.len(s) end",
                "instruction budget exceeded");
    expect_fail(sb, "local s = string.rep('a', 1e6) for i = 1, 100 do utf8.offset(s, -1) end",
                "instruction budget exceeded");
    expect_fail(sb, "local s = string.rep('a', 1e5) for i = 1, 100 do s:byte(1, -1) end",
                "instruction budget exceeded");
    expect_fail(sb,
                "local function f(...) for i = 1, 200 do string.char(...) end end "
                "f(string.rep('a', 1e5):byte(1, -1))",
                "instruction budget exceeded");
    expect_fail(sb,
                "local function f(...) for i = 1, 200 do utf8.char(...) end end "
                "f(string.rep('a', 1e5):byte(1, -1))",
                "instruction budget exceeded");
    expect_fail(sb,
                "local function f(...) for i = 1, 60 do table.pack(...) end end "
                "f(string.rep('a', 1e5):byte(1, -1))",
                "instruction budget exceeded");
    expect_fail(sb,
                "local function f(...) for i = 1, 200 do select(2, ...) end end "
                "f(string.rep('a', 1e5):byte(1, -1))",
                "instruction budget exceeded");
    expect_fail(sb, "for i = 1, 100 do string.pack('c1000000', '') end",
                "instruction budget exceeded");
    expect_fail(sb, "local s = string.rep('x', 1e6) for i = 1, 100 do string.format('%q', s) end",
                "instruction budget exceeded");
    /* widths and precisions: Lua takes two digits at most */
    expect_fail(sb, "return string.format('%100d', 1)", "invalid conversion");
    /* ordinary calls */
    expect_ok(
        sb,
        "return ('Abc'):upper() .. ('Abc'):lower() .. ('abc'):reverse() .. utf8.len('h\\u{e9}') "
        ".. string.char(104, 105) .. utf8.char(233) .. #string.pack('c4', 'ab') .. "
        "select('#', ('abc'):byte(1, -1)) .. string.rep('ab', 2, '-') .. "
        "string.format('%5.1f|%q', 1.25, 'a\\n') .. table.concat({1, 2}, '+') .. "
        "utf8.offset('abc', -1) .. utf8.codepoint('abc', 3) .. table.pack(1, 2).n .. "
        "select('#', 1, 2) .. select(2, 'a', 'b')",
        "ABCabccba2hi\xc3\xa9"
        "43ab-ab  1.2|\"a\\\n\"1+239922b");
    sandbox_free(sb);
    sandbox_free(big);
}

TEST_LIST = {
    { "pairs_order_deterministic", test_pairs_order_deterministic },
    { "pairs_charged", test_pairs_charged },
    { "tostring_no_address", test_tostring_no_address },
    { "sort_stable", test_sort_stable },
    { "c_work_charged", test_c_work_charged },
    { "bytecode_refused", test_bytecode_refused },
    { "syntax_error_position", test_syntax_error_position },
    { "string_dump_absent", test_string_dump_absent },
    { "io_os_absent", test_io_os_absent },
    { "require_absent", test_require_absent },
    { "debug_absent", test_debug_absent },
    { "endless_loop_budget", test_endless_loop_budget },
    { "pcall_cannot_swallow_budget", test_pcall_cannot_swallow_budget },
    { "deadline", test_deadline },
    { "memory_bomb", test_memory_bomb },
    { "unbounded_recursion", test_unbounded_recursion },
    { "library_tables_readonly", test_library_tables_readonly },
    { "gc_metatable_refused", test_gc_metatable_refused },
    { "string_metatable_protected", test_string_metatable_protected },
    { "catastrophic_pattern", test_catastrophic_pattern },
    { "pattern_work_is_charged", test_pattern_work_is_charged },
    { "table_ranges_bounded", test_table_ranges_bounded },
    { "global_typo", test_global_typo },
    { "env_isolation", test_env_isolation },
    { "close_handler_after_kill", test_close_handler_after_kill },
    { "close_handler_parked_kill", test_close_handler_parked_kill },
    { "error_object_tostring_loop", test_error_object_tostring_loop },
    { "time_slicing", test_time_slicing },
    { "xpcall_semantics", test_xpcall_semantics },
    { "added_globals", test_added_globals },
    { "memory_cost", test_memory_cost },
    { "tiny_cap", test_tiny_cap },
    { "data_no_functions", test_data_no_functions },
    { "data_memory_cap", test_data_memory_cap },
    { "data_budget", test_data_budget },
    { "data_budget_counts_allocation", test_data_budget_counts_allocation },
    { "data_raise_cap", test_data_raise_cap },
    { "data_budget_off", test_data_budget_off },
    { NULL, NULL },
};
