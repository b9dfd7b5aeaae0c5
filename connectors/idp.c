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

/* idp.risky_user(id) -> riskyUser | nil, err */
static int
l_idp_risky_user(lua_State *L)
{
    struct call_spec spec = { 0 };

    spec.path =
        call_push_id_path(L, 1, "a user object id", "/v1.0/identityProtection/riskyUsers/", "");
    spec.kind = "idp.risky_user";
    spec.api = &microsoft_graph;
    spec.limiter = "idp";
    spec.prio = LIMITER_ENRICH;
    spec.idempotent = 1;
    spec.method = "GET";
    return call_effect(L, &spec);
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

/* POST a userIds body to riskyUsers/<action>: 204 -> true. Setting a risk state is safe
 * to repeat (the second call sets the same state). */
static int
risk_action(lua_State *L, const char *kind, const char *action, enum limiter_prio prio)
{
    struct call_spec spec = { 0 };

    spec.body = push_user_ids(L);
    spec.path = lua_pushfstring(L, "/v1.0/identityProtection/riskyUsers/%s", action);
    spec.kind = kind;
    spec.api = &microsoft_graph;
    spec.limiter = "idp";
    spec.prio = prio;
    spec.idempotent = 1;
    spec.method = "POST";
    spec.map = call_map_true;
    return call_effect(L, &spec);
}

/* idp.confirm_compromised(ids) -> true | nil, err */
static int
l_idp_confirm_compromised(lua_State *L)
{
    return risk_action(L, "idp.confirm_compromised", "confirmCompromised", LIMITER_CONTAIN);
}

/* idp.dismiss(ids) -> true | nil, err */
static int
l_idp_dismiss(lua_State *L)
{
    return risk_action(L, "idp.dismiss", "dismiss", LIMITER_NORMAL);
}

/* idp.risk_detections{ user = upn, since = time, top = n } -> array | nil, err (every
 * page). since filters on activityDateTime. */
static int
l_idp_risk_detections(lua_State *L)
{
    struct call_spec spec = { 0 };

    spec.path = microsoft_push_user_since_path(L, 1, "/v1.0/identityProtection/riskDetections",
                                               "activityDateTime", 500);
    spec.kind = "idp.risk_detections";
    spec.api = &microsoft_graph;
    spec.limiter = "idp";
    spec.prio = LIMITER_ENRICH;
    spec.idempotent = 1;
    spec.method = "GET";
    spec.map = microsoft_map_paged;
    return call_effect(L, &spec);
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
