/* graph.c: the playbooks' `graph` module: Entra ID users and sign-ins through Microsoft
 * Graph (reference: connectors.md section 2). */
#include "connectors/graph.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/call.h"

#define GRAPH_ID_MAX 256
#define USER_SELECT                                                                              \
    "$select=id,userPrincipalName,displayName,accountEnabled,onPremisesSyncEnabled,"           \
    "signInSessionsValidFromDateTime"

/* graph.user(id) -> user table | nil, err */
static int
l_graph_user(lua_State *L)
{
    struct call_spec spec = { 0 };

    spec.path = call_push_id_path(L, 1, "a user id or user principal name", "/v1.0/users/", "?" USER_SELECT);
    spec.kind = "graph.user";
    spec.api = CALL_GRAPH;
    spec.limiter = "graph.users";
    spec.prio = LIMITER_ENRICH;
    spec.idempotent = 1;
    spec.method = "GET";
    return call_effect(L, &spec);
}

static int
set_enabled(lua_State *L, const char *kind, int enabled)
{
    struct call_spec spec = { 0 };

    spec.path = call_push_id_path(L, 1, "a user id or user principal name", "/v1.0/users/", "");
    spec.kind = kind;
    spec.api = CALL_GRAPH;
    spec.limiter = "graph.users";
    spec.prio = enabled ? LIMITER_NORMAL : LIMITER_CONTAIN;
    spec.idempotent = 1; /* PATCH to a state: repeating it changes nothing */
    spec.method = "PATCH";
    spec.body = enabled ? "{\"accountEnabled\":true}" : "{\"accountEnabled\":false}";
    spec.map = call_map_true;
    return call_effect(L, &spec);
}

/* graph.disable_user(id) -> true | nil, err */
static int
l_graph_disable_user(lua_State *L)
{
    return set_enabled(L, "graph.disable_user", 0);
}

/* graph.enable_user(id) -> true | nil, err */
static int
l_graph_enable_user(lua_State *L)
{
    return set_enabled(L, "graph.enable_user", 1);
}

/* graph.revoke_sessions(id) -> true | nil, err */
static int
l_graph_revoke_sessions(lua_State *L)
{
    struct call_spec spec = { 0 };

    spec.path = call_push_id_path(L, 1, "a user id or user principal name", "/v1.0/users/", "/revokeSignInSessions");
    spec.kind = "graph.revoke_sessions";
    spec.api = CALL_GRAPH;
    spec.limiter = "graph.users";
    spec.prio = LIMITER_CONTAIN;
    spec.idempotent = 1; /* revoking twice is harmless */
    spec.method = "POST";
    spec.map = call_map_true;
    return call_effect(L, &spec);
}

/* A time argument (epoch seconds or an RFC 3339 string) as OData's UTC literal. */
static void
odata_time(lua_State *L, int idx, char out[32])
{
    int64_t ms = 0;
    char iso[32];

    if (lua_type(L, idx) == LUA_TNUMBER) {
        ms = (int64_t)(lua_tonumber(L, idx) * 1000);
    } else if (lua_type(L, idx) != LUA_TSTRING || util_parse_time(lua_tostring(L, idx), &ms) == -1) {
        luaL_error(L, "since: expected epoch seconds or an RFC 3339 time");
    }
    util_fmt_time(ms, iso);
    snprintf(out, 32, "%.19sZ", iso); /* whole seconds */
}

/* graph.signins{ user = upn, since = time, top = n } -> array | nil, err (every page) */
static int
l_graph_signins(lua_State *L)
{
    struct call_spec spec = { 0 };
    struct buf f;
    char since[32] = "";
    const char *user;
    lua_Integer top;

    /* Every check first: nothing below may raise while C memory is held. */
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "user");
    user = luaL_optstring(L, -1, NULL);
    luaL_argcheck(L, user == NULL || (strlen(user) > 0 && strlen(user) <= GRAPH_ID_MAX), 1,
                  "user: a user principal name");
    lua_getfield(L, 1, "since");
    if (!lua_isnil(L, -1)) {
        odata_time(L, -1, since);
    }
    lua_getfield(L, 1, "top");
    top = luaL_optinteger(L, -1, 100);
    luaL_argcheck(L, top >= 1 && top <= 1000, 1, "top: 1 to 1000");
    buf_init(&f, 0);
    if (user != NULL) {
        (void)!buf_puts(&f, "userPrincipalName eq '");
        call_odata_quote(&f, user);
        (void)!buf_puts(&f, "'");
    }
    if (since[0] != '\0') {
        (void)!buf_printf(&f, "%screatedDateTime ge %s", f.len ? " and " : "", since);
    }
    spec.path = call_push_list_path(L, "/v1.0/auditLogs/signIns", &f, (long long)top);
    spec.kind = "graph.signins";
    spec.api = CALL_GRAPH;
    spec.limiter = "graph.signins";
    spec.prio = LIMITER_ENRICH;
    spec.idempotent = 1;
    spec.method = "GET";
    spec.map = call_map_paged;
    return call_effect(L, &spec);
}

int
luaopen_kagari_graph(lua_State *L)
{
    static const luaL_Reg graph_funcs[] = {
        { "user", l_graph_user },
        { "disable_user", l_graph_disable_user },
        { "enable_user", l_graph_enable_user },
        { "revoke_sessions", l_graph_revoke_sessions },
        { "signins", l_graph_signins },
        { NULL, NULL },
    };

    luaL_newlib(L, graph_funcs);
    return 1;
}
