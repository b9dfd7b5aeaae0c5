/* intune.c: the playbooks' `intune` module: Intune managed devices through Microsoft
 * Graph: lookups and remote actions (reference: connectors.md section 6). */
#include "connectors/intune.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "connectors/microsoft.h"

#define INTUNE_ID_MAX 256
#define INTUNE_BASE "/v1.0/deviceManagement/managedDevices"
/* A reconciliation accepts actions started this long before the call: clocks differ. */
#define INTUNE_SKEW_MS 60000

/* The text of an Intune error. Its Graph envelope's message is itself a JSON string
 * ({"_version":3,"Message":"...",...}): show the inner Message when there is one. */
static char *
intune_error(struct call *c, const struct httpc_response *resp)
{
    cJSON *root = NULL, *inner = NULL;
    const cJSON *e;
    const char *code, *msg, *text = NULL;
    char *out;

    if (resp->status == 0 || resp->body_len == 0 ||
        json_parse_strict(resp->body, resp->body_len, 32, &root, NULL) == -1) {
        return call_error_text(c, resp);
    }
    e = json_get(root, "error");
    code = e ? json_get_string(e, "code") : NULL;
    msg = e ? json_get_string(e, "message") : NULL;
    if (code == NULL || msg == NULL) {
        cJSON_Delete(root);
        return call_error_text(c, resp);
    }
    if (msg[0] == '{' && json_parse_strict(msg, strlen(msg), 32, &inner, NULL) == 0) {
        text = json_get_string(inner, "Message");
    }
    out = xasprintf("%s: HTTP %d %s: %.300s", call_kind(c), resp->status, code, text ? text : msg);
    cJSON_Delete(inner);
    cJSON_Delete(root);
    return out;
}

/* Device lists: every page, with Intune's error text. */
static int
map_devices(struct call *c, const struct httpc_response *resp, char **result)
{
    if (resp->status < 200 || resp->status >= 300) {
        *result = intune_error(c, resp);
        return 0;
    }
    return microsoft_map_paged(c, resp, result);
}

/* Remote actions: 204 (any 2xx) -> true. */
static int
map_action(struct call *c, const struct httpc_response *resp, char **result)
{
    if (resp->status >= 200 && resp->status < 300) {
        *result = xstrdup("true");
        return 1;
    }
    *result = intune_error(c, resp);
    return 0;
}

/* In doubt after a restart: the device's deviceActionResults. An action of this name
 * (call_ud) started at or after the call (less the skew allowance) and not failed or
 * canceled is the one the interrupted call asked for: done (1). Otherwise send (0). */
static int
reconcile_action(struct call *c, const struct httpc_response *resp, char **result)
{
    const char *name = call_ud(c);
    int64_t since = call_started_ms(c) - INTUNE_SKEW_MS;
    const cJSON *list, *it;
    cJSON *root = NULL;
    int found = 0;

    *result = NULL;
    if (resp->status < 200 || resp->status >= 300 ||
        json_parse_strict(resp->body, resp->body_len, JSON_MAX_DEPTH, &root, NULL) == -1) {
        /* The target's state cannot be read: do not guess (resending might act
         * twice); the call fails with the reason. */
        *result = xasprintf("%s: cannot check whether an earlier attempt went through "
                            "(HTTP %d); not sent again",
                            call_kind(c), resp->status);
        return -1;
    }
    list = json_get(root, "deviceActionResults");
    if (!cJSON_IsArray(list)) {
        list = NULL;
    }
    cJSON_ArrayForEach(it, list)
    {
        const char *an = json_get_string(it, "actionName");
        const char *state = json_get_string(it, "actionState");
        const char *start = json_get_string(it, "startDateTime");
        int64_t ms;

        if (an != NULL && strcasecmp(an, name) == 0 && start != NULL &&
            util_parse_time(start, &ms) == 0 && ms >= since &&
            (state == NULL ||
             (strcasecmp(state, "failed") != 0 && strcasecmp(state, "canceled") != 0))) {
            found = 1;
        }
    }
    cJSON_Delete(root);
    if (found) {
        *result = xstrdup("true");
    }
    return found;
}

enum intune_call {
    INTUNE_DEVICE,
    INTUNE_REMOTE_LOCK,
    INTUNE_SYNC,
    INTUNE_RETIRE,
    INTUNE_WIPE,
};

/* Every call of the module. Retire and wipe are not safe to repeat. */
static const struct call_def intune_calls[] = {
    [INTUNE_DEVICE] = { "intune.device", &microsoft_graph, "intune", LIMITER_ENRICH, 1, "GET",
                        map_devices },
    [INTUNE_REMOTE_LOCK] = { "intune.remote_lock", &microsoft_graph, "intune", LIMITER_CONTAIN, 1,
                             "POST", map_action },
    [INTUNE_SYNC] = { "intune.sync", &microsoft_graph, "intune", LIMITER_NORMAL, 1, "POST",
                      map_action },
    [INTUNE_RETIRE] = { "intune.retire", &microsoft_graph, "intune", LIMITER_NORMAL, 0, "POST",
                        map_action },
    [INTUNE_WIPE] = { "intune.wipe", &microsoft_graph, "intune", LIMITER_CONTAIN, 0, "POST",
                      map_action },
};

/* One remote action (call: its row): POST .../{id}/<action> with body (or none).
 * Actions that are not safe to repeat (retire, wipe) reconcile from the device's action
 * results and never overlap for one device. */
static int
device_action(lua_State *L, enum intune_call call, const char *action, const char *body)
{
    struct call_spec spec;
    const char *id = call_check_id(L, 1, "a managed device id");
    const char *suffix = lua_pushfstring(L, "/%s", action);

    call_spec_from_def(&spec, &intune_calls[call]);
    spec.path = call_push_path(L, INTUNE_BASE "/", id, suffix);
    spec.body = body;
    if (!spec.idempotent) {
        spec.reconcile_path = call_push_path(L, INTUNE_BASE "/", id, "");
        spec.reconcile = reconcile_action;
        spec.ud = (void *)action; /* a string literal */
        spec.exclusive = lua_pushfstring(L, "intune:%s:%s", action, id);
    }
    return call_effect(L, &spec);
}

/* intune.remote_lock(id) -> true | nil, err */
static int
l_intune_remote_lock(lua_State *L)
{
    return device_action(L, INTUNE_REMOTE_LOCK, "remoteLock", NULL);
}

/* intune.sync(id) -> true | nil, err */
static int
l_intune_sync(lua_State *L)
{
    return device_action(L, INTUNE_SYNC, "syncDevice", NULL);
}

/* intune.retire(id) -> true | nil, err */
static int
l_intune_retire(lua_State *L)
{
    return device_action(L, INTUNE_RETIRE, "retire", NULL);
}

/* intune.wipe(id, { keep_enrollment_data = bool, keep_user_data = bool }) -> true |
 * nil, err */
static int
l_intune_wipe(lua_State *L)
{
    int keep_enroll = 0, keep_user = 0;

    (void)call_check_id(L, 1, "a managed device id");
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "keep_enrollment_data");
        luaL_argcheck(L, lua_isnil(L, -1) || lua_isboolean(L, -1), 2,
                      "keep_enrollment_data: a boolean");
        keep_enroll = lua_toboolean(L, -1);
        lua_getfield(L, 2, "keep_user_data");
        luaL_argcheck(L, lua_isnil(L, -1) || lua_isboolean(L, -1), 2, "keep_user_data: a boolean");
        keep_user = lua_toboolean(L, -1);
        lua_pop(L, 2);
    }
    lua_pushfstring(L, "{\"keepEnrollmentData\":%s,\"keepUserData\":%s}",
                    keep_enroll ? "true" : "false", keep_user ? "true" : "false");
    return device_action(L, INTUNE_WIPE, "wipe", lua_tostring(L, -1));
}

/* intune.device{ user = upn } or { name = device name } or { aad_id = Entra device id }
 * -> array of managedDevice | nil, err */
static int
l_intune_device(lua_State *L)
{
    static const char *const keys[] = { "user", "name", "aad_id" };
    static const char *const fields[] = { "userPrincipalName", "deviceName", "azureADDeviceId" };
    const char *v = NULL;
    int which = -1;
    struct buf f;

    luaL_checktype(L, 1, LUA_TTABLE);
    for (int i = 0; i < 3; i++) {
        lua_getfield(L, 1, keys[i]);
        if (!lua_isnil(L, -1)) {
            size_t len;

            luaL_argcheck(L, which < 0, 1, "expected exactly one of user, name, aad_id");
            luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 1,
                          "user, name, aad_id: expected a string");
            v = lua_tolstring(L, -1, &len);
            luaL_argcheck(L, len > 0 && len <= INTUNE_ID_MAX && strlen(v) == len, 1,
                          "user, name, aad_id: 1 to 256 bytes");
            which = i;
        }
    }
    luaL_argcheck(L, which >= 0, 1, "expected exactly one of user, name, aad_id");
    buf_init(&f, 0);
    (void)!buf_printf(&f, "%s eq '", fields[which]);
    microsoft_odata_quote(&f, v);
    (void)!buf_puts(&f, "'");
    return call_def_effect(L, &intune_calls[INTUNE_DEVICE],
                           microsoft_push_filter_path(L, INTUNE_BASE, &f), NULL);
}

static int
luaopen_kagari_intune(lua_State *L)
{
    static const luaL_Reg intune_funcs[] = {
        { "device", l_intune_device }, { "remote_lock", l_intune_remote_lock },
        { "retire", l_intune_retire }, { "wipe", l_intune_wipe },
        { "sync", l_intune_sync },     { NULL, NULL },
    };

    luaL_newlib(L, intune_funcs);
    return 1;
}

const struct connector intune_connector =
    MICROSOFT_CONNECTOR("intune", "Intune managed devices", luaopen_kagari_intune);
