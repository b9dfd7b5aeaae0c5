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

/* graph.user(id) -> user table | nil, err */
static int
l_graph_user(lua_State *L)
{
    struct call_spec spec = { 0 };

    spec.path = call_push_id_path(L, 1, "a user id or user principal name", "/v1.0/users/",
                                  "?" USER_SELECT);
    spec.kind = "graph.user";
    spec.api = &microsoft_graph;
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
    spec.api = &microsoft_graph;
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

    spec.path = call_push_id_path(L, 1, "a user id or user principal name", "/v1.0/users/",
                                  "/revokeSignInSessions");
    spec.kind = "graph.revoke_sessions";
    spec.api = &microsoft_graph;
    spec.limiter = "graph.users";
    spec.prio = LIMITER_CONTAIN;
    spec.idempotent = 1; /* revoking twice is harmless */
    spec.method = "POST";
    spec.map = call_map_true;
    return call_effect(L, &spec);
}

/* graph.signins{ user = upn, since = time, top = n } -> array | nil, err (every page) */
static int
l_graph_signins(lua_State *L)
{
    struct call_spec spec = { 0 };

    spec.path =
        microsoft_push_user_since_path(L, 1, "/v1.0/auditLogs/signIns", "createdDateTime", 1000);
    spec.kind = "graph.signins";
    spec.api = &microsoft_graph;
    spec.limiter = "graph.signins";
    spec.prio = LIMITER_ENRICH;
    spec.idempotent = 1;
    spec.method = "GET";
    spec.map = microsoft_map_paged;
    return call_effect(L, &spec);
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
