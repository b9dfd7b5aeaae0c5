/* test_lcheck.c: the unknown-key check of option tables, and the engine's headers
 * together with <syslog.h> (the log levels no longer collide with its LOG_* names). */
#include "engine/lcheck.h"

#include <lauxlib.h>
#include <lualib.h>
#include <syslog.h>

#include "engine/log.h"
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

TEST_LIST = {
    { "known_keys", test_known_keys },
    { "unknown_keys", test_unknown_keys },
    { "log_levels_and_syslog", test_log_levels_and_syslog },
    { NULL, NULL },
};
