/* library.c: require and the evaluation of playbook libraries in the sandbox. */
#include "engine/library.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"

#define LIBRARY_KEY "kagari.libraries" /* registry: version -> require function */

int
library_name_valid(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > 64) {
        return 0;
    }
    for (const char *s = name; *s != '\0'; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_')) {
            return 0;
        }
    }
    return 1;
}

/* Upvalues of every require function of one version. */
#define UP_SOURCES lua_upvalueindex(1) /* name -> source text */
#define UP_CACHE lua_upvalueindex(2)   /* name -> the library's frozen result */
#define UP_LOADING lua_upvalueindex(3) /* the chain of libraries this require loads for */
#define UP_SANDBOX lua_upvalueindex(4) /* light userdata: the sandbox */

static int l_library_require(lua_State *L);

/* Push the require of a library's own globals: the version's sources and cache, and the
 * chain of libraries being loaded with name appended (for cycles). Each evaluation has its
 * own chain, so two runs loading the same library at once do not see a cycle. */
static void
push_require_closure(lua_State *L, const char *name)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, UP_LOADING);

    lua_pushvalue(L, UP_SOURCES);
    lua_pushvalue(L, UP_CACHE);
    lua_createtable(L, (int)n + 1, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, UP_LOADING, i);
        lua_rawseti(L, -2, i);
    }
    lua_pushstring(L, name);
    lua_rawseti(L, -2, n + 1);
    lua_pushvalue(L, UP_SANDBOX);
    lua_pushcclosure(L, l_library_require, 4);
}

/* Raise "require cycle: a -> b -> a" when name is in this require's chain. */
static void
check_cycle(lua_State *L, const char *name)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, UP_LOADING), at = 0;
    luaL_Buffer b;

    for (lua_Integer i = 1; i <= n && at == 0; i++) {
        lua_rawgeti(L, UP_LOADING, i);
        if (strcmp(lua_tostring(L, -1), name) == 0) {
            at = i;
        }
        lua_pop(L, 1);
    }
    if (at == 0) {
        return;
    }
    luaL_where(L, 1);
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "require cycle: ");
    for (lua_Integer i = at; i <= n; i++) {
        lua_rawgeti(L, UP_LOADING, i);
        luaL_addvalue(&b);
        luaL_addstring(&b, " -> ");
    }
    luaL_addstring(&b, name);
    luaL_pushresult(&b);
    lua_concat(L, 2);
    lua_error(L);
}

/* The message for a name that is not a library name. */
#define LIBRARY_BAD_NAME                                                                           \
    "require '%s': not a library name (1 to 64 letters, digits, '-', '_'; no dots or slashes)"

/* The stack of a require while its library is evaluated. */
#define S_NAME 1
#define S_THREAD 2 /* the library's thread */
#define S_TASK 3   /* its task (userdata) */
#define S_ENV 4    /* its globals */
#define S_CHUNK 5  /* its compiled chunk */
#define S_TOP 5

static int library_step(lua_State *L);

static int
library_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    lua_settop(L, S_TOP); /* a resume may pass values: they mean nothing here */
    return library_step(L);
}

/* Run the library's thread until it ends. It runs in the time slice of the run that
 * requires it: when the slice is over the thread yields (the budget hook does that), and
 * so does the run, which the scheduler then resumes like any run whose slice ended (here,
 * in library_k), so that evaluating a library never holds the loop longer than a slice.
 * Outside a run (a playbook being loaded) there is no slice. */
static int
library_step(lua_State *L)
{
    lua_State *co = lua_tothread(L, S_THREAD);
    struct sandbox_task *task = lua_touserdata(L, S_TASK);
    struct sandbox_task *outer = sandbox_task_of(L);
    const char *name = lua_tostring(L, S_NAME);
    int nres = 0, rc;

    task->slice_end_us = outer != NULL && lua_isyieldable(L) ? outer->slice_end_us : 0;
    rc = lua_resume(co, L, 0, &nres);
    if (rc == LUA_YIELD) {
        lua_pop(co, nres);
        return lua_yieldk(L, 0, 0, library_k);
    }
    sandbox_task_attach(co, NULL);
    if (rc != LUA_OK) {
        if (lua_type(co, -1) == LUA_TSTRING) {
            lua_pushstring(L, lua_tostring(co, -1));
        } else {
            lua_pushfstring(L, "require '%s': the library raised a %s", name,
                            luaL_typename(co, -1));
        }
        return lua_error(L);
    }
    lua_settop(co, nres > 0 ? 1 : 0);
    if (lua_isnoneornil(co, 1)) {
        lua_settop(co, 0);
        lua_pushboolean(co, 1);
    }
    lua_xmove(co, L, 1); /* S_TOP + 1: the result */
    lua_pushfstring(L, "lib %s", name);
    /* Its globals become read-only, and so does the chunk's _ENV, which every function
     * of the library shares: none of them can write a global later. */
    sandbox_freeze_value(L, S_ENV, lua_tostring(L, -1));
    lua_pushvalue(L, S_ENV);
    if (lua_setupvalue(L, S_CHUNK, 1) == NULL) {
        lua_pop(L, 1);
    }
    sandbox_freeze_value(L, S_TOP + 1, lua_tostring(L, -1));
    lua_pushvalue(L, S_TOP + 1);
    lua_setfield(L, UP_CACHE, name);
    lua_pushvalue(L, S_TOP + 1);
    return 1;
}

/* require(name): the cached result, or the library evaluated now. The evaluation runs in
 * a new thread with a task of its own (no run: effects raise "only inside a playbook
 * run"; a budget of LIBRARY_EVAL_INSTRUCTIONS and 5 s), in time slices (library_step).
 * Its result and its globals are frozen and the result is cached. Errors are not cached:
 * a library that failed (out of memory, say) is evaluated again at the next require. Two
 * runs that need a library at the same moment, while its evaluation spans slices, may
 * each evaluate it; the first to finish is cached. */
static int
l_library_require(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    struct sandbox *sb = lua_touserdata(L, UP_SANDBOX);
    struct sandbox_task *task;
    const char *src;
    size_t len;
    lua_State *co;
    char *chunk, *err = NULL;
    int rc;

    lua_settop(L, 1);
    if (lua_getfield(L, UP_CACHE, name) != LUA_TNIL) {
        return 1;
    }
    lua_pop(L, 1);
    check_cycle(L, name);
    if (!library_name_valid(name)) {
        return luaL_error(L, LIBRARY_BAD_NAME, name);
    }
    if (lua_getfield(L, UP_SOURCES, name) != LUA_TSTRING) {
        return luaL_error(L,
                          "require '%s': no library lib/%s.lua in this playbook version (require "
                          "takes a constant name, found when the playbook is loaded)",
                          name, name);
    }
    src = lua_tolstring(L, -1, &len);
    co = lua_newthread(L);
    lua_replace(L, S_THREAD); /* the source stays referenced by the sources table */
    task = lua_newuserdatauv(L, sizeof(*task), 0); /* S_TASK */
    memset(task, 0, sizeof(*task));
    task->max_instructions = LIBRARY_EVAL_INSTRUCTIONS;
    task->deadline_ms = util_now_ms() + 5000;
    sandbox_task_attach(co, task);
    sandbox_push_env(sb, co);
    push_require_closure(L, name);
    lua_xmove(L, co, 1);
    lua_setfield(co, 1, "require");
    chunk = xasprintf("@lib/%s.lua", name);
    rc = sandbox_load(co, src, len, chunk, 1, &err); /* co: globals, chunk */
    free(chunk);
    if (rc == -1) {
        sandbox_task_attach(co, NULL);
        lua_pushstring(L, err);
        free(err);
        return lua_error(L);
    }
    lua_pushvalue(co, 1);
    lua_pushvalue(co, 2);
    lua_xmove(co, L, 2); /* S_ENV, S_CHUNK */
    lua_remove(co, 1);   /* co: the chunk alone, to resume */
    return library_step(L);
}

void
library_push_require(lua_State *L, struct sandbox *sb, const char *version,
                     const struct playbook_lib *libs, size_t n)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, LIBRARY_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, LIBRARY_KEY);
    }
    if (lua_getfield(L, -1, version) == LUA_TFUNCTION) {
        lua_remove(L, -2);
        return;
    }
    lua_pop(L, 1);
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        lua_pushlstring(L, libs[i].source, libs[i].len);
        lua_setfield(L, -2, libs[i].name);
    }
    lua_newtable(L);
    lua_newtable(L);
    lua_pushlightuserdata(L, sb);
    lua_pushcclosure(L, l_library_require, 4);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, version);
    lua_remove(L, -2);
}

int
library_cached(lua_State *L, const char *version, const char *name)
{
    int found = 0;

    if (lua_getfield(L, LUA_REGISTRYINDEX, LIBRARY_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        return 0;
    }
    if (lua_getfield(L, -1, version) == LUA_TFUNCTION) {
        lua_getupvalue(L, -1, 2);
        found = lua_getfield(L, -1, name) != LUA_TNIL;
        lua_pop(L, 2);
    }
    lua_pop(L, 2);
    return found;
}

int
library_lua_unbound(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);

    if (!library_name_valid(name)) {
        return luaL_error(L, LIBRARY_BAD_NAME, name);
    }
    return luaL_error(L,
                      "require '%s': no library lib/%s.lua in this playbook version (require "
                      "takes a constant name, found when the playbook is loaded)",
                      name, name);
}
