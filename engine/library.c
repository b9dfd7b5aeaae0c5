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
#define UP_LOADING lua_upvalueindex(3) /* the names being evaluated, outermost first */
#define UP_SANDBOX lua_upvalueindex(4) /* light userdata: the sandbox */

static int l_library_require(lua_State *L);

static void
push_require_closure(lua_State *L)
{
    for (int i = 1; i <= 4; i++) {
        lua_pushvalue(L, lua_upvalueindex(i));
    }
    lua_pushcclosure(L, l_library_require, 4);
}

/* Raise "require cycle: a -> b -> a" when name is being evaluated already. */
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

/* require(name): the cached result, or the library evaluated now. The evaluation runs in
 * a new thread with a task of its own (no run: effects raise "only inside a playbook
 * run"; a budget of LIBRARY_EVAL_INSTRUCTIONS and 5 s). Its result and its globals are
 * frozen, the chunk's _ENV is replaced by the frozen globals (so functions of the library
 * cannot write globals later either), and the result is cached. Errors are not cached: a
 * library that failed (out of memory, say) is evaluated again at the next require. */
static int
l_library_require(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    struct sandbox *sb = lua_touserdata(L, UP_SANDBOX);
    struct sandbox_task task;
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
        return luaL_error(L,
                          "require '%s': not a library name (1 to 64 letters, digits, '-', "
                          "'_'; no dots or slashes)",
                          name);
    }
    if (lua_getfield(L, UP_SOURCES, name) != LUA_TSTRING) {
        return luaL_error(L,
                          "require '%s': no library lib/%s.lua in this playbook version (require "
                          "takes a constant name, found when the playbook is loaded)",
                          name, name);
    }
    src = lua_tolstring(L, 2, &len);
    co = lua_newthread(L); /* index 3, anchored on L's stack */
    memset(&task, 0, sizeof(task));
    task.max_instructions = LIBRARY_EVAL_INSTRUCTIONS;
    task.deadline_ms = util_now_ms() + 5000;
    sandbox_task_attach(co, &task);
    sandbox_push_env(sb, co); /* co 1: the library's globals */
    push_require_closure(L);
    lua_xmove(L, co, 1);
    lua_setfield(co, 1, "require");
    chunk = xasprintf("@lib/%s.lua", name);
    rc = sandbox_load(co, src, len, chunk, 1, &err); /* co 2: the chunk */
    free(chunk);
    if (rc == -1) {
        sandbox_task_attach(co, NULL);
        lua_pushstring(L, err);
        free(err);
        return lua_error(L);
    }
    lua_pushvalue(co, 2);
    lua_pushstring(L, name);
    lua_rawseti(L, UP_LOADING, (lua_Integer)lua_rawlen(L, UP_LOADING) + 1);
    rc = lua_pcall(co, 0, 1, 0); /* co 3: the result */
    lua_pushnil(L);
    lua_rawseti(L, UP_LOADING, (lua_Integer)lua_rawlen(L, UP_LOADING));
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
    if (lua_isnil(co, 3)) {
        lua_pop(co, 1);
        lua_pushboolean(co, 1);
    }
    lua_xmove(co, L, 3); /* L 4: globals, 5: chunk, 6: result */
    {
        char *what = xasprintf("lib %s", name);

        lua_pushstring(L, what); /* freed by Lua, not leaked if freezing raises */
        free(what);
    }
    sandbox_freeze_value(L, 4, lua_tostring(L, 7));
    lua_pushvalue(L, 4);
    if (lua_setupvalue(L, 5, 1) == NULL) {
        lua_pop(L, 1);
    }
    sandbox_freeze_value(L, 6, lua_tostring(L, 7));
    lua_pushvalue(L, 6);
    lua_setfield(L, UP_CACHE, name);
    lua_pushvalue(L, 6);
    return 1;
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

/* The message for a name that is not a library name. */
#define LIBRARY_BAD_NAME                                                                           \
    "require '%s': not a library name (1 to 64 letters, digits, '-', '_'; no dots or slashes)"

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
