/* idp.c: the playbooks' `idp` module: Entra ID Protection risky users and risk
 * detections through Microsoft Graph (reference: connectors.md section 3). The service
 * allows one request per second per tenant for all apps: the "idp" limiter serializes
 * them. */
#include "connectors/idp.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/microsoft.h"

#define IDP_ID_MAX 256
#define IDP_IDS_MAX 60
#define IDP_RISKY_USERS "/v1.0/identityProtection/riskyUsers/"

enum idp_call {
    IDP_RISKY_USER,
    IDP_CONFIRM_COMPROMISED,
    IDP_DISMISS,
    IDP_RISK_DETECTIONS,
};

/* Every call of the module. Setting a risk state is safe to repeat (the second call
 * sets the same state). */
static const struct call_def idp_calls[] = {
    [IDP_RISKY_USER] = { "idp.risky_user", &microsoft_graph, "idp", LIMITER_ENRICH, 1, "GET",
                         NULL },
    [IDP_CONFIRM_COMPROMISED] = { "idp.confirm_compromised", &microsoft_graph, "idp",
                                  LIMITER_CONTAIN, 1, "POST", call_map_true },
    [IDP_DISMISS] = { "idp.dismiss", &microsoft_graph, "idp", LIMITER_NORMAL, 1, "POST",
                      call_map_true },
    [IDP_RISK_DETECTIONS] = { "idp.risk_detections", &microsoft_graph, "idp", LIMITER_ENRICH, 1,
                              "GET", microsoft_map_paged },
};

/* idp.risky_user(id) -> riskyUser | nil, err */
static int
l_idp_risky_user(lua_State *L)
{
    return call_def_effect(L, &idp_calls[IDP_RISKY_USER],
                           call_push_id_path(L, 1, "a user object id", IDP_RISKY_USERS, ""), NULL);
}

/* 1 when the value at idx is a usable user id string. */
static int
is_user_id(lua_State *L, int idx)
{
    size_t len;
    const char *s;

    if (lua_type(L, idx) != LUA_TSTRING) {
        return 0;
    }
    s = lua_tolstring(L, idx, &len);
    return len > 0 && len <= IDP_ID_MAX && strlen(s) == len;
}

/* Push the body {"userIds":[...]} for argument 1 (one id, or a list of 1 to
 * IDP_IDS_MAX ids) and return it. Every element is checked before any C memory is
 * taken. Raises on misuse. */
static const char *
push_user_ids(lua_State *L)
{
    lua_Integer n = 1;
    struct buf b;

    if (lua_type(L, 1) == LUA_TTABLE) {
        lcheck_plain(L, 1); /* a library's table: read raw below */
        n = (lua_Integer)lua_rawlen(L, 1);
        luaL_argcheck(L, n >= 1 && n <= IDP_IDS_MAX, 1, "expected 1 to 60 user ids");
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, 1, i);
            luaL_argcheck(L, is_user_id(L, -1), 1, "expected a list of user object ids");
            lua_pop(L, 1);
        }
    } else {
        luaL_argcheck(L, is_user_id(L, 1), 1, "expected a user object id or a list of them");
    }
    buf_init(&b, 0);
    (void)!buf_puts(&b, "{\"userIds\":[");
    for (lua_Integer i = 1; i <= n; i++) {
        const char *s;
        size_t len;

        if (lua_type(L, 1) == LUA_TTABLE) {
            lua_rawgeti(L, 1, i); /* checked above: a string, no conversion */
        } else {
            lua_pushvalue(L, 1);
        }
        s = lua_tolstring(L, -1, &len);
        (void)!buf_puts(&b, i > 1 ? "," : "");
        (void)!buf_json_string(&b, s, len);
        lua_pop(L, 1);
    }
    (void)!buf_puts(&b, "]}");
    lua_pushlstring(L, b.data, b.len);
    buf_free(&b);
    return lua_tostring(L, -1);
}

/* idp.confirm_compromised(ids) -> true | nil, err */
static int
l_idp_confirm_compromised(lua_State *L)
{
    const char *body = push_user_ids(L);

    return call_def_effect(L, &idp_calls[IDP_CONFIRM_COMPROMISED],
                           IDP_RISKY_USERS "confirmCompromised", body);
}

/* idp.dismiss(ids) -> true | nil, err */
static int
l_idp_dismiss(lua_State *L)
{
    const char *body = push_user_ids(L);

    return call_def_effect(L, &idp_calls[IDP_DISMISS], IDP_RISKY_USERS "dismiss", body);
}

/* idp.risk_detections{ user = upn, since = time, top = n } -> array | nil, err (every
 * page). since filters on activityDateTime. */
static int
l_idp_risk_detections(lua_State *L)
{
    const char *path = microsoft_push_user_since_path(
        L, 1, "/v1.0/identityProtection/riskDetections", "activityDateTime", 500);

    return call_def_effect(L, &idp_calls[IDP_RISK_DETECTIONS], path, NULL);
}

static int
luaopen_kagari_idp(lua_State *L)
{
    static const luaL_Reg idp_funcs[] = {
        { "risky_user", l_idp_risky_user },
        { "confirm_compromised", l_idp_confirm_compromised },
        { "dismiss", l_idp_dismiss },
        { "risk_detections", l_idp_risk_detections },
        { NULL, NULL },
    };

    luaL_newlib(L, idp_funcs);
    return 1;
}

const struct connector idp_connector = MICROSOFT_CONNECTOR(
    "idp", "Entra ID Protection: risky users and risk detections", luaopen_kagari_idp);
