/* test_library.c: playbook libraries: require from lib/, evaluated once per version and
 * state, read-only, part of the version; hostile names and files; library errors. */
#include "engine/library.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/builtin.h"
#include "engine/playbook.h"
#include "tests/unit/test.h"

static char root[64];
static char *pbdir, *libdir;
static int evaluations; /* calls of the test global count() */

static int
l_count(lua_State *L)
{
    (void)L;
    evaluations++;
    return 0;
}

/* A playbook sandbox with the built-ins and count(). */
static struct sandbox *
new_sandbox(void)
{
    char *err = NULL;
    struct sandbox *sb = sandbox_new(32u << 20, &err);

    free(err);
    if (sb == NULL) {
        return NULL;
    }
    builtin_register(sb);
    sandbox_add_func(sb, "count", l_count);
    sandbox_freeze(sb);
    return sb;
}

static void
write_at(const char *dir, const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", dir, name);
    char *err = NULL;

    T_ASSERT(util_write_file(path, text, strlen(text), 0600, &err) == 0);
    free(err);
    free(path);
}

static void
setup(void)
{
    snprintf(root, sizeof(root), "/tmp/kagari-test-lib-XXXXXX");
    if (mkdtemp(root) == NULL) {
        abort();
    }
    pbdir = xasprintf("%s/pb", root);
    libdir = xasprintf("%s/pb/lib", root);
    if (util_mkdirs(libdir, 0700) != 0) {
        abort();
    }
}

static void
teardown(void)
{
    char *cmd = xasprintf("rm -rf %s", root);

    T_ASSERT(system(cmd) == 0);
    free(cmd);
    free(pbdir);
    free(libdir);
}

/* Parse the playbook text as pb/NAME with the libraries of pb/lib. */
static struct playbook *
parse(struct sandbox *sb, const char *name, const char *text, char **err)
{
    char *path = xasprintf("%s/%s", pbdir, name);
    struct playbook *pb;

    write_at(pbdir, name, text);
    pb = playbook_load_file(sb, path, NULL, err);
    free(path);
    return pb;
}

static const char uses_allow[] = "local allow = require 'allow'\n"
                                 "return playbook{ name = 'p', on = {}, run = function(alert)\n"
                                 "  return allow.has('x'), #allow.list\n"
                                 "end }\n";

static void
test_require_and_version(void)
{
    struct sandbox *sb = new_sandbox();
    struct playbook *pb, *pb2, *plain;
    char *err = NULL;
    char hash1[65], plainhash[65];
    static const char plain_src[] =
        "return playbook{ name = 'q', on = {}, run = function() end }\n";

    T_REQUIRE(sb != NULL);
    setup();
    write_at(libdir, "allow.lua",
             "count()\nlocal M = { list = { 'x', 'y', 'z' } }\n"
             "local set = {}\nfor _, v in ipairs(M.list) do set[v] = true end\n"
             "function M.has(v) return set[v] == true end\nreturn M\n");
    evaluations = 0;
    pb = parse(sb, "p.lua", uses_allow, &err);
    T_REQUIRE(pb != NULL);
    T_EQ_INT(pb->nlibs, 1);
    T_EQ_STR(pb->libs[0].name, "allow");
    T_EQ_INT(evaluations, 1); /* the file's require and the load check share one evaluation */
    memcpy(hash1, pb->hash, sizeof(hash1));
    {
        char srchash[65];

        util_sha256_hex(uses_allow, strlen(uses_allow), srchash);
        T_ASSERT(strcmp(srchash, pb->hash) != 0); /* the version covers the library */
    }
    /* A playbook without libraries keeps the hash of its text. */
    plain = parse(sb, "q.lua", plain_src, &err);
    T_REQUIRE(plain != NULL);
    util_sha256_hex(plain_src, strlen(plain_src), plainhash);
    T_EQ_STR(plain->hash, plainhash);
    playbook_unref(plain);

    /* Same files: same version. An edited library: a new version of the same playbook. */
    pb2 = parse(sb, "p.lua", uses_allow, &err);
    T_REQUIRE(pb2 != NULL);
    T_EQ_STR(pb2->hash, hash1);
    playbook_unref(pb2);
    write_at(libdir, "allow.lua", "return { list = {}, has = function() return false end }\n");
    pb2 = parse(sb, "p.lua", uses_allow, &err);
    T_REQUIRE(pb2 != NULL);
    T_ASSERT(strcmp(pb2->hash, hash1) != 0);
    /* A version restored with its stored libraries hashes as it did, whatever the files. */
    {
        struct playbook *r =
            playbook_parse_libs(sb, "p.lua", pb->source, pb->len, pb->libs, pb->nlibs, &err);

        T_REQUIRE(r != NULL);
        T_EQ_STR(r->hash, hash1);
        playbook_unref(r);
    }
    playbook_unref(pb2);
    playbook_unref(pb);
    sandbox_free(sb);
    teardown();
    free(err);
}

/* In a tenant's state: evaluated once per version, whatever the number of runs, and the
 * result is read-only all the way down. */
static void
test_cached_and_readonly(void)
{
    struct sandbox *sb = new_sandbox();
    lua_State *L;
    struct playbook_lib lib = { (char *)"big", NULL, 0 };
    static const char src[] =
        "count()\n"
        "local V = { __tostring = function(v) return 'v' .. v.n end,\n"
        "  __eq = function(a, b) return a.n == b.n end,\n"
        "  __call = function(v, x) return v.n + x end }\n"
        "local t = { nested = { deep = { 1, 2 } }, list = {},\n"
        "  v1 = setmetatable({ n = 1 }, V), v2 = setmetatable({ n = 1 }, V) }\n"
        "for i = 1, 20000 do t.list[i] = i * 2 end\n"
        "local hidden = { n = 0 }\n"
        "function t.bump() hidden.n = hidden.n + 1 return hidden.n end\n"
        "function t.setg() g = 1 end\n"
        "return t\n";
    static const char *const attempts[] = {
        "lib.x = 1",
        "lib.nested.y = 2",
        "lib.nested.deep[3] = 3",
        "lib.list[1] = 0",
        "rawset(lib, 'x', 1)",
        "rawset(lib.nested, 'x', 1)",
        "setmetatable(lib, {})",
        "lib.v1.n = 2",
        "getmetatable(lib.v1).__index = {}",
        "table.insert(lib.list, 5)",
        "table.sort(lib.list, function(a, b) return a > b end)",
        "lib.bump()",
        "lib.setg()",
        NULL,
    };

    T_REQUIRE(sb != NULL);
    L = sandbox_state(sb);
    lib.source = (char *)src;
    lib.len = strlen(src);
    evaluations = 0;
    for (int run = 0; run < 3; run++) { /* three runs: three environments */
        sandbox_push_env(sb, L);
        library_push_require(L, sb, "v1", &lib, 1);
        lua_setfield(L, -2, "require");
        T_REQUIRE(luaL_loadstring(
                      L, "local lib = require 'big'\n"
                         "assert(tostring(lib.v1) == 'v1' and lib.v1 == lib.v2)\n"
                         "assert(lib.v1(41) == 42)\n"
                         "assert(json.encode(lib.nested) == '{\"deep\":[1,2]}')\n"
                         "return lib, #lib.list, lib.list[20000], lib.nested.deep[2]") == LUA_OK);
        lua_pushvalue(L, -2);
        lua_setupvalue(L, -2, 1);
        T_REQUIRE(lua_pcall(L, 0, 4, 0) == LUA_OK);
        T_EQ_INT(lua_tointeger(L, -3), 20000);
        T_EQ_INT(lua_tointeger(L, -2), 40000);
        T_EQ_INT(lua_tointeger(L, -1), 2);
        if (run > 0) {
            T_ASSERT(lua_rawequal(L, -4, -5 - 1)); /* the same table for every run */
        }
        lua_pop(L, 3);
        lua_remove(L, -2); /* the env; keep the library result */
    }
    T_EQ_INT(evaluations, 1);
    T_ASSERT(library_cached(L, "v1", "big"));
    T_ASSERT(!library_cached(L, "v2", "big"));
    lua_settop(L, 0);

    for (size_t i = 0; attempts[i] != NULL; i++) {
        char *code = xasprintf("local lib = require 'big'\n%s\n", attempts[i]);

        sandbox_push_env(sb, L);
        library_push_require(L, sb, "v1", &lib, 1);
        lua_setfield(L, -2, "require");
        T_REQUIRE(luaL_loadstring(L, code) == LUA_OK);
        lua_pushvalue(L, -2);
        lua_setupvalue(L, -2, 1);
        if (lua_pcall(L, 0, 0, 0) == LUA_OK) {
            T_FAIL_("%s: changed the library", attempts[i]);
        } else if (strstr(lua_tostring(L, -1), "protected metatable") == NULL &&
                   strstr(lua_tostring(L, -1), "index a boolean") == NULL) { /* getmetatable */
            T_CONTAINS(lua_tostring(L, -1), "read-only");
        }
        lua_settop(L, 0);
        free(code);
    }
    /* Another version is another evaluation. */
    sandbox_push_env(sb, L);
    library_push_require(L, sb, "v2", &lib, 1);
    lua_pushstring(L, "big");
    T_REQUIRE(lua_pcall(L, 1, 1, 0) == LUA_OK);
    T_EQ_INT(evaluations, 2);
    lua_settop(L, 0);
    sandbox_free(sb);
}

static void
expect_fail(struct sandbox *sb, const char *text, const char *needle1, const char *needle2)
{
    char *err = NULL;
    struct playbook *pb = parse(sb, "bad.lua", text, &err);

    T_ASSERT(pb == NULL);
    T_CONTAINS(err, needle1);
    if (needle2 != NULL) {
        T_CONTAINS(err, needle2);
    }
    playbook_unref(pb);
    free(err);
}

/* Names and files that must never load, and library errors: each names its file and
 * line and fails only the playbook that uses the library. */
static void
test_hostile_and_errors(void)
{
    struct sandbox *sb = new_sandbox();
    char *outside, *link, *sub, *fifo, *err = NULL;
    static const char *const names[] = {
        "../x",
        "lib/x",
        "/etc/passwd",
        "a.b",
        "..",
        ".",
        "",
        "x y",
        "x\\ty",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        NULL,
    };
    struct playbook *ok;

    T_REQUIRE(sb != NULL);
    setup();
    for (size_t i = 0; names[i] != NULL; i++) {
        char *text = xasprintf("local m = require '%s'\n"
                               "return playbook{ name = 'b', on = {}, run = function() end }\n",
                               names[i]);

        expect_fail(sb, text, "bad.lua:1: require '", "not a library name");
        free(text);
    }
    /* A library outside the folder through a link, a directory, a FIFO: refused unread. */
    write_at(root, "secret.lua", "return 'hunter2-SECRET'\n");
    outside = xasprintf("%s/secret.lua", root);
    link = xasprintf("%s/linked.lua", libdir);
    T_ASSERT(symlink(outside, link) == 0);
    expect_fail(
        sb, "local s = require 'linked'\nreturn playbook{ name='b', on={}, run=function() end }",
        "bad.lua:1: require 'linked'", "refused: a symbolic link");
    sub = xasprintf("%s/sub.lua", libdir);
    T_ASSERT(mkdir(sub, 0700) == 0);
    expect_fail(sb,
                "local s = require 'sub'\nreturn playbook{ name='b', on={}, run=function() end }",
                "refused: a directory", NULL);
    fifo = xasprintf("%s/fifo.lua", libdir);
    T_ASSERT(mkfifo(fifo, 0600) == 0);
    expect_fail(sb,
                "local s = require 'fifo'\nreturn playbook{ name='b', on={}, run=function() end }",
                "refused: a FIFO", NULL);
    /* Missing, inside run() too. */
    expect_fail(sb,
                "return playbook{ name='b', on={},\n run=function() return require 'nothere' end }",
                "bad.lua:2: require 'nothere': no library", "lib/nothere.lua");
    /* Syntax and runtime errors, with the library's file and line. */
    write_at(libdir, "syntax.lua", "local x = \nreturn {\n");
    expect_fail(
        sb, "local s = require 'syntax'\nreturn playbook{ name='b', on={}, run=function() end }",
        "lib/syntax.lua:2:", NULL);
    write_at(libdir, "boom.lua", "local t = {}\nreturn t.x.y\n");
    expect_fail(sb, "return playbook{ name='b', on={}, run=function() return require 'boom' end }",
                "lib/boom.lua:2:", "attempt to index");
    /* A cycle. */
    write_at(libdir, "ca.lua", "local b = require 'cb'\nreturn {}\n");
    write_at(libdir, "cb.lua", "local a = require 'ca'\nreturn {}\n");
    expect_fail(sb,
                "local a = require 'ca'\nreturn playbook{ name='b', on={}, run=function() end }",
                "require cycle: ca -> cb -> ca", "lib/cb.lua:1:");
    /* No effects at load time, and no endless loop. */
    write_at(libdir, "effect.lua", "log.info('loading')\nreturn {}\n");
    expect_fail(
        sb, "local e = require 'effect'\nreturn playbook{ name='b', on={}, run=function() end }",
        "lib/effect.lua:1:", "only inside a playbook run");
    write_at(libdir, "sleepy.lua", "sleep(1)\nreturn {}\n");
    expect_fail(
        sb, "local e = require 'sleepy'\nreturn playbook{ name='b', on={}, run=function() end }",
        "lib/sleepy.lua:1:", NULL);
    write_at(libdir, "spin.lua", "while true do end\n");
    expect_fail(sb,
                "local e = require 'spin'\nreturn playbook{ name='b', on={}, run=function() end }",
                "lib/spin.lua:1:", "budget");
    /* A playbook that uses none of them still loads beside them. */
    ok = parse(sb, "good.lua", "return playbook{ name='g', on={}, run=function() end }\n", &err);
    T_ASSERT(ok != NULL);
    playbook_unref(ok);
    /* A trigger taken from a library's (read-only) table. */
    write_at(libdir, "trig.lua",
             "return { on = { source = { 'a.b', 'c.*' }, outcome = 'succeeded' } }\n");
    ok = parse(
        sb, "trig.lua",
        "local t = require 'trig'\nreturn playbook{ name='t', on=t.on, run=function() end }\n",
        &err);
    T_REQUIRE(ok != NULL);
    T_EQ_INT(ok->nsources, 2);
    T_EQ_STR(ok->nsources == 2 ? ok->sources[1] : "", "c.*");
    T_EQ_INT(ok->noutcomes, 1);
    playbook_unref(ok);
    /* A runtime require of a name the version does not carry. */
    write_at(libdir, "one.lua", "return 1\n");
    ok = parse(sb, "dyn.lua",
               "local one = require 'one'\n"
               "return playbook{ name='d', on={}, run=function(a) return require(a.x) end }\n",
               &err);
    T_ASSERT(ok != NULL);
    T_EQ_INT(ok ? ok->nlibs : 0, 1);
    playbook_unref(ok);
    free(outside);
    free(link);
    free(sub);
    free(fifo);
    free(err);
    sandbox_free(sb);
    teardown();
}

/* A long evaluation runs in the requiring run's time slices: the run yields (and the loop
 * goes on) instead of holding the loop until the library is built. */
static void
test_time_slices(void)
{
    struct sandbox *sb = new_sandbox();
    lua_State *L, *co;
    struct sandbox_task task;
    struct playbook_lib libs[2] = {
        { (char *)"slow",
          (char *)"local t = {}\nfor i = 1, 300000 do t[i] = i end\n"
                  "return { n = #t, inner = require 'slower' }\n",
          0 },
        { (char *)"slower",
          (char *)"local s = 0\nfor i = 1, 300000 do s = s + i end\n"
                  "return s\n",
          0 },
    };
    int rc, nres = 0, yields = 0;

    T_REQUIRE(sb != NULL);
    libs[0].len = strlen(libs[0].source);
    libs[1].len = strlen(libs[1].source);
    L = sandbox_state(sb);
    co = lua_newthread(L);
    memset(&task, 0, sizeof(task));
    task.max_instructions = 1000000000ULL;
    sandbox_task_attach(co, &task);
    sandbox_push_env(sb, co);
    library_push_require(co, sb, "vs", libs, 2);
    lua_setfield(co, -2, "require");
    T_REQUIRE(luaL_loadstring(co, "local s = require 'slow'\nreturn s.n, s.inner") == LUA_OK);
    lua_pushvalue(co, -2);
    lua_setupvalue(co, -2, 1);
    lua_remove(co, -2);
    for (;;) {
        task.slice_end_us = util_mono_us() + 200; /* a short slice each time */
        rc = lua_resume(co, L, 0, &nres);
        if (rc != LUA_YIELD) {
            break;
        }
        lua_pop(co, nres);
        yields++;
        T_REQUIRE(yields < 100000);
    }
    T_EQ_INT(rc, LUA_OK);
    T_ASSERT(yields >= 2);
    T_EQ_INT(nres, 2);
    T_EQ_INT(lua_tointeger(co, -2), 300000);
    T_EQ_INT(lua_tointeger(co, -1), 45000150000LL);
    T_ASSERT(library_cached(L, "vs", "slow") && library_cached(L, "vs", "slower"));
    lua_settop(L, 0);
    sandbox_free(sb);
}

TEST_LIST = {
    { "time_slices", test_time_slices },
    { "require_and_version", test_require_and_version },
    { "cached_and_readonly", test_cached_and_readonly },
    { "hostile_and_errors", test_hostile_and_errors },
    { NULL, NULL },
};
