/* test_lcheck.c: the unknown-key check of option tables, and the engine's headers
 * together with <syslog.h> (the log levels no longer collide with its LOG_* names). */
#include "engine/lcheck.h"

#include <lauxlib.h>
#include <lualib.h>
#include <syslog.h>

#include "engine/log.h"
#include "engine/sandbox.h"
#include "tests/unit/test.h"

static const char *const keys[] = { "method", "url", "body", NULL };

/* Evaluate chunk (which returns a table) and check it. */
static int
check_chunk(lua_State *L, const char *chunk, const char **bad)
{
    int top, rc;

    if (luaL_dostring(L, chunk) != LUA_OK) {
        T_ASSERT(0);
        return -1;
    }
    top = lua_gettop(L);
    rc = lcheck_unknown_key(L, -1, keys);
    *bad = rc ? lua_tostring(L, -1) : NULL;
    T_EQ_INT(lua_gettop(L), top + rc);
    return rc;
}

static void
test_known_keys(void)
{
    lua_State *L = luaL_newstate();
    const char *bad;

    T_EQ_INT(check_chunk(L, "return { method = 'GET', url = 'x' }", &bad), 0);
    T_EQ_INT(check_chunk(L, "return {}", &bad), 0);
    lua_close(L);
}

static void
test_unknown_keys(void)
{
    lua_State *L = luaL_newstate();
    const char *bad;

    T_EQ_INT(check_chunk(L, "return { method = 'GET', urll = 'x' }", &bad), 1);
    T_EQ_STR(bad, "urll");
    /* several: the smallest name, whatever the table's order */
    T_EQ_INT(check_chunk(L, "return { zz = 1, bodyy = 2, aa = 3, url = 4 }", &bad), 1);
    T_EQ_STR(bad, "aa");
    /* a key that is not a name goes first */
    T_EQ_INT(check_chunk(L, "return { aa = 1, [1] = 'x' }", &bad), 1);
    T_EQ_STR(bad, "(not a name)");
    T_EQ_INT(check_chunk(L, "return { [true] = 1 }", &bad), 1);
    T_EQ_STR(bad, "(not a name)");
    lua_close(L);
}

static void
test_log_levels_and_syslog(void)
{
    /* Both sets of names compile side by side and keep their own values. */
    T_EQ_INT(KG_LOG_ERR, 3);
    T_EQ_INT(LOG_ERR, 3);
    T_EQ_INT(KG_LOG_DEBUG, 0);
    T_EQ_INT(LOG_DEBUG, 7);
}

/* A library's read-only table: its keys are checked, and lcheck_plain gives C code a
 * plain copy to read raw (a read-only table looks empty to lua_next and lua_rawlen). */
static void
test_readonly_tables(void)
{
    char *err = NULL;
    struct sandbox *sb = sandbox_new(8u << 20, &err);
    lua_State *L;
    int top;

    T_REQUIRE(sb != NULL);
    sandbox_freeze(sb);
    L = sandbox_state(sb);
    lua_createtable(L, 2, 2);
    lua_pushliteral(L, "a");
    lua_rawseti(L, -2, 1);
    lua_pushliteral(L, "b");
    lua_rawseti(L, -2, 2);
    lua_pushliteral(L, "GET");
    lua_setfield(L, -2, "method");
    lua_pushliteral(L, "x");
    lua_setfield(L, -2, "nope");
    sandbox_freeze_value(L, -1, "lib t");
    top = lua_gettop(L);
    T_EQ_INT(lua_rawlen(L, top), 0); /* the proxy itself is empty */
    T_EQ_INT(lcheck_unknown_key(L, top, keys), 1);
    T_EQ_STR(lua_tostring(L, -1), "(not a name)"); /* 1 and 2 */
    lua_pop(L, 1);
    T_EQ_INT(lua_gettop(L), top);
    lcheck_plain(L, top);
    T_EQ_INT(lua_gettop(L), top);
    T_EQ_INT(lua_rawlen(L, top), 2);
    T_EQ_INT(lua_rawgeti(L, top, 2), LUA_TSTRING);
    T_EQ_STR(lua_tostring(L, -1), "b");
    lua_pop(L, 1);
    T_EQ_INT(lua_getfield(L, top, "method"), LUA_TSTRING);
    lua_pop(L, 2);
    lua_pushinteger(L, 5); /* not a table: left alone */
    lcheck_plain(L, -1);
    T_EQ_INT(lua_tointeger(L, -1), 5);
    lua_pop(L, 1);
    sandbox_free(sb);
    free(err);
}

TEST_LIST = {
    { "readonly_tables", test_readonly_tables },
    { "known_keys", test_known_keys },
    { "unknown_keys", test_unknown_keys },
    { "log_levels_and_syslog", test_log_levels_and_syslog },
    { NULL, NULL },
};
