/* lcheck.c: table checks for Lua-facing C functions. */
#include "engine/lcheck.h"

#include <string.h>

#include "engine/sandbox.h"

void
lcheck_plain(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (!sandbox_proxy_target(L, idx)) {
        return;
    }
    lua_createtable(L, (int)lua_rawlen(L, -1), 0);
    lua_pushnil(L);
    while (lua_next(L, -3) != 0) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    lua_replace(L, idx);
    lua_pop(L, 1);
}

int
lcheck_unknown_key(lua_State *L, int idx, const char *const *keys)
{
    const char *worst = NULL; /* borrowed from a key of the table, which stays alive */
    int nonstring = 0;

    idx = lua_absindex(L, idx);
    if (sandbox_proxy_target(L, idx)) { /* a library's read-only table: its keys */
        int rc = lcheck_unknown_key(L, lua_gettop(L), keys);

        lua_remove(L, rc ? -2 : -1);
        return rc;
    }
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        const char *k;
        int known = 0;

        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            nonstring = 1;
            continue;
        }
        k = lua_tostring(L, -1);
        for (int i = 0; keys[i] != NULL && !known; i++) {
            known = strcmp(k, keys[i]) == 0;
        }
        if (!known && (worst == NULL || strcmp(k, worst) < 0)) {
            worst = k;
        }
    }
    if (nonstring) {
        lua_pushliteral(L, "(not a name)");
        return 1;
    }
    if (worst != NULL) {
        lua_pushstring(L, worst);
        return 1;
    }
    return 0;
}
