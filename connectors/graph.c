/* graph.c: the playbooks' `graph` module: Entra ID users and sign-ins through Microsoft
 * Graph (reference: connectors.md section 2). */
#include "connectors/graph.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/microsoft.h"

#define USER_SELECT                                                                                \
    "$select=id,userPrincipalName,displayName,accountEnabled,onPremisesSyncEnabled,"               \
    "signInSessionsValidFromDateTime"

enum graph_call {
    GRAPH_USER,
    GRAPH_DISABLE_USER,
    GRAPH_ENABLE_USER,
    GRAPH_REVOKE_SESSIONS,
    GRAPH_SIGNINS,
};

/* Every call of the module. The user updates are safe to repeat: a PATCH to a state
 * changes nothing the second time, and revoking twice is harmless. */
static const struct call_def graph_calls[] = {
    [GRAPH_USER] = { "graph.user", &microsoft_graph, "graph.users", LIMITER_ENRICH, 1, "GET",
                     NULL },
    [GRAPH_DISABLE_USER] = { "graph.disable_user", &microsoft_graph, "graph.users", LIMITER_CONTAIN,
                             1, "PATCH", call_map_true },
    [GRAPH_ENABLE_USER] = { "graph.enable_user", &microsoft_graph, "graph.users", LIMITER_NORMAL, 1,
                            "PATCH", call_map_true },
    [GRAPH_REVOKE_SESSIONS] = { "graph.revoke_sessions", &microsoft_graph, "graph.users",
                                LIMITER_CONTAIN, 1, "POST", call_map_true },
    [GRAPH_SIGNINS] = { "graph.signins", &microsoft_graph, "graph.signins", LIMITER_ENRICH, 1,
                        "GET", microsoft_map_paged },
};

/* Push the path of the user named by argument 1, followed by suffix. Raises on
 * misuse. */
static const char *
push_user_path(lua_State *L, const char *suffix)
{
    return call_push_id_path(L, 1, "a user id or user principal name", "/v1.0/users/", suffix);
}

/* graph.user(id) -> user table | nil, err */
static int
l_graph_user(lua_State *L)
{
    return call_def_effect(L, &graph_calls[GRAPH_USER], push_user_path(L, "?" USER_SELECT), NULL);
}

/* graph.disable_user(id) -> true | nil, err */
static int
l_graph_disable_user(lua_State *L)
{
    return call_def_effect(L, &graph_calls[GRAPH_DISABLE_USER], push_user_path(L, ""),
                           "{\"accountEnabled\":false}");
}

/* graph.enable_user(id) -> true | nil, err */
static int
l_graph_enable_user(lua_State *L)
{
    return call_def_effect(L, &graph_calls[GRAPH_ENABLE_USER], push_user_path(L, ""),
                           "{\"accountEnabled\":true}");
}

/* graph.revoke_sessions(id) -> true | nil, err */
static int
l_graph_revoke_sessions(lua_State *L)
{
    return call_def_effect(L, &graph_calls[GRAPH_REVOKE_SESSIONS],
                           push_user_path(L, "/revokeSignInSessions"), NULL);
}

/* graph.signins{ user = upn, since = time, top = n } -> array | nil, err (every page) */
static int
l_graph_signins(lua_State *L)
{
    const char *path =
        microsoft_push_user_since_path(L, 1, "/v1.0/auditLogs/signIns", "createdDateTime", 1000);

    return call_def_effect(L, &graph_calls[GRAPH_SIGNINS], path, NULL);
}

static int
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

const struct connector graph_connector = MICROSOFT_CONNECTOR(
    "graph", "Entra ID users and sign-ins (Microsoft Graph)", luaopen_kagari_graph);
