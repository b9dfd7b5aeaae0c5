/* security.c: the playbooks' `security` module: the Graph security API's alerts_v2 and
 * incidents (reference: connectors.md section 4). Enum values are checked here, so a
 * typo in a playbook raises instead of costing a round trip and a 400. */
#include "connectors/security.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "connectors/microsoft.h"

#define SECURITY_ID_MAX 256
#define SECURITY_TEXT_MAX 30000
#define SECURITY_TAGS_MAX 50

static const char *const alert_status[] = { "new", "inProgress", "resolved", NULL };
static const char *const incident_status[] = { "active", "inProgress", "resolved", "awaitingAction",
                                               NULL };
static const char *const classifications[] = { "unknown", "falsePositive", "truePositive",
                                               "informationalExpectedActivity", NULL };
static const char *const determinations[] = {
    "unknown",
    "apt",
    "malware",
    "securityPersonnel",
    "securityTesting",
    "unwantedSoftware",
    "other",
    "multiStagedAttack",
    "compromisedUser",
    "phishing",
    "maliciousUserActivity",
    "clean",
    "insufficientData",
    "confirmedUserActivity",
    "lineOfBusinessApplication",
    NULL,
};

/* The comments of an answer: its "value" list (POST .../comments) or its "comments"
 * member (GET of the alert), printed; NULL when there is none. */
static char *
comments_of(const struct httpc_response *resp, const char *member, const char *text)
{
    cJSON *root = NULL;
    const cJSON *list, *it;
    char *out = NULL;
    int found = text == NULL;

    if (json_parse_strict(resp->body, resp->body_len, JSON_MAX_DEPTH, &root, NULL) == -1) {
        return NULL;
    }
    list = json_get(root, member);
    if (cJSON_IsArray(list)) {
        cJSON_ArrayForEach(it, list)
        {
            const char *s = json_get_string(it, "comment");

            found |= s != NULL && text != NULL && strcmp(s, text) == 0;
        }
        if (found) {
            out = json_print(list);
        }
    }
    cJSON_Delete(root);
    return out;
}

/* comment_alert's answer (200 + every comment of the alert): the comment list. */
static int
map_comments(struct call *c, const struct httpc_response *resp, char **result)
{
    if (resp->status >= 200 && resp->status < 300) {
        *result = comments_of(resp, "value", NULL);
        if (*result == NULL) {
            *result = xstrdup("true");
        }
        return 1;
    }
    *result = call_error_text(c, resp);
    return 0;
}

/* In doubt after a restart: the alert's comments. The same text already there means
 * the interrupted call got through: record the list (1); otherwise post it (0); an
 * alert that cannot be read fails the call (-1). */
static int
reconcile_comment(struct call *c, const struct httpc_response *resp, char **result)
{
    *result = NULL;
    if (resp->status < 200 || resp->status >= 300) {
        *result = xasprintf("%s: cannot check whether an earlier attempt went through "
                            "(HTTP %d); not sent again",
                            call_kind(c), resp->status);
        return -1;
    }
    *result = comments_of(resp, "comments", call_ud(c));
    return *result != NULL;
}

enum security_call {
    SECURITY_ALERT,
    SECURITY_INCIDENT,
    SECURITY_UPDATE_ALERT,
    SECURITY_UPDATE_INCIDENT,
    SECURITY_COMMENT_ALERT,
};

/* Every call of the module. An update's PATCH answers (200) with the updated object;
 * setting fields to values is safe to repeat. A comment is not: a repeat posts it
 * twice (see l_security_comment_alert). */
static const struct call_def security_calls[] = {
    [SECURITY_ALERT] = { "security.alert", &microsoft_graph, "graph.security", LIMITER_ENRICH, 1,
                         "GET", NULL },
    [SECURITY_INCIDENT] = { "security.incident", &microsoft_graph, "graph.security", LIMITER_ENRICH,
                            1, "GET", NULL },
    [SECURITY_UPDATE_ALERT] = { "security.update_alert", &microsoft_graph, "graph.security",
                                LIMITER_NORMAL, 1, "PATCH", NULL },
    [SECURITY_UPDATE_INCIDENT] = { "security.update_incident", &microsoft_graph, "graph.security",
                                   LIMITER_NORMAL, 1, "PATCH", NULL },
    [SECURITY_COMMENT_ALERT] = { "security.comment_alert", &microsoft_graph, "graph.security",
                                 LIMITER_NORMAL, 0, "POST", map_comments },
};

/* security.alert(id) -> alert | nil, err */
static int
l_security_alert(lua_State *L)
{
    return call_def_effect(L, &security_calls[SECURITY_ALERT],
                           call_push_id_path(L, 1, "an alert id", "/v1.0/security/alerts_v2/", ""),
                           NULL);
}

/* security.incident(id, { alerts = true }) -> incident | nil, err (alerts: expand the
 * incident's alerts) */
static int
l_security_incident(lua_State *L)
{
    int expand = 0;

    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "alerts");
        expand = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    return call_def_effect(L, &security_calls[SECURITY_INCIDENT],
                           call_push_id_path(L, 1, "an incident id", "/v1.0/security/incidents/",
                                             expand ? "?$expand=alerts" : ""),
                           NULL);
}

/* The string field key of the table at idx, which must be one of list: its index, or
 * -1 when absent. Raises otherwise. */
static int
enum_field(lua_State *L, int idx, const char *fn, const char *key, const char *const *list)
{
    const char *s;

    lua_getfield(L, idx, key);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return -1;
    }
    s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    for (int i = 0; s != NULL && list[i] != NULL; i++) {
        if (strcmp(s, list[i]) == 0) {
            lua_pop(L, 1);
            return i;
        }
    }
    return luaL_error(L, "%s: %s: invalid value %s", fn, key,
                      s ? lua_pushfstring(L, "'%s'", s) : luaL_typename(L, -1));
}

/* Raise when the table at idx has a key not in keys (a misspelt field would otherwise
 * be ignored silently). */
static void
check_keys(lua_State *L, int idx, const char *fn, const char *const *keys)
{
    if (lcheck_unknown_key(L, idx, keys)) {
        luaL_error(L, "%s: unknown field %s", fn, lua_tostring(L, -1));
    }
}

/* What update_alert / update_incident were asked to change, checked. */
struct security_update {
    int status, classification, determination;
    const char *assigned_to; /* borrowed from the Lua stack, or NULL */
    int ntags;               /* custom_tags: -1 absent */
};

/* Check argument 2 of update_alert (incident == 0) or update_incident. Values stay on
 * the stack. Raises on misuse. */
static void
check_update(lua_State *L, const char *fn, int incident, struct security_update *u)
{
    static const char *const alert_keys[] = { "status", "classification", "determination",
                                              "assigned_to", NULL };
    static const char *const incident_keys[] = { "status",      "classification", "determination",
                                                 "assigned_to", "custom_tags",    NULL };

    luaL_checktype(L, 2, LUA_TTABLE);
    check_keys(L, 2, fn, incident ? incident_keys : alert_keys);
    u->status = enum_field(L, 2, fn, "status", incident ? incident_status : alert_status);
    u->classification = enum_field(L, 2, fn, "classification", classifications);
    u->determination = enum_field(L, 2, fn, "determination", determinations);
    u->assigned_to = NULL;
    lua_getfield(L, 2, "assigned_to");
    if (!lua_isnil(L, -1)) {
        size_t len;

        if (lua_type(L, -1) != LUA_TSTRING) {
            luaL_error(L, "%s: assigned_to: expected a string", fn);
        }
        u->assigned_to = lua_tolstring(L, -1, &len);
        if (len > SECURITY_ID_MAX || strlen(u->assigned_to) != len) {
            luaL_error(L, "%s: assigned_to: at most %d bytes", fn, SECURITY_ID_MAX);
        }
    }
    u->ntags = -1;
    if (incident) {
        lua_getfield(L, 2, "custom_tags"); /* stays at a known index: see push_update */
        if (!lua_isnil(L, -1)) {
            int t = lua_gettop(L);

            if (lua_istable(L, t)) {
                lcheck_plain(L, t); /* a library's table: read raw below */
            }
            if (!lua_istable(L, t) || lua_rawlen(L, t) > SECURITY_TAGS_MAX) {
                luaL_error(L, "%s: custom_tags: a list of up to %d strings", fn, SECURITY_TAGS_MAX);
            }
            u->ntags = (int)lua_rawlen(L, t);
            for (int i = 1; i <= u->ntags; i++) {
                size_t len;
                const char *s;

                lua_rawgeti(L, t, i);
                s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
                if (s == NULL || len == 0 || len > SECURITY_ID_MAX || strlen(s) != len) {
                    luaL_error(L, "%s: custom_tags: a list of up to %d strings", fn,
                               SECURITY_TAGS_MAX);
                }
                lua_pop(L, 1);
            }
        }
    }
    if (u->status < 0 && u->classification < 0 && u->determination < 0 && u->assigned_to == NULL &&
        u->ntags < 0) {
        luaL_error(L, "%s: nothing to change", fn);
    }
}

/* Push the PATCH body for u (tags: the custom_tags list at stack index tags) and
 * return it. */
static const char *
push_update(lua_State *L, const struct security_update *u, const char *const *status, int tags)
{
    struct buf b;

    buf_init(&b, 0);
    (void)!buf_puts(&b, "{");
    if (u->status >= 0) {
        (void)!buf_printf(&b, "\"status\":\"%s\"", status[u->status]);
    }
    if (u->classification >= 0) {
        (void)!buf_printf(&b, "%s\"classification\":\"%s\"", b.len > 1 ? "," : "",
                          classifications[u->classification]);
    }
    if (u->determination >= 0) {
        (void)!buf_printf(&b, "%s\"determination\":\"%s\"", b.len > 1 ? "," : "",
                          determinations[u->determination]);
    }
    if (u->assigned_to != NULL) {
        (void)!buf_printf(&b, "%s\"assignedTo\":", b.len > 1 ? "," : "");
        (void)!buf_json_string(&b, u->assigned_to, strlen(u->assigned_to));
    }
    if (u->ntags >= 0) {
        (void)!buf_printf(&b, "%s\"customTags\":[", b.len > 1 ? "," : "");
        for (int i = 1; i <= u->ntags; i++) {
            size_t len;
            const char *s;

            lua_rawgeti(L, tags, i); /* checked: a string */
            s = lua_tolstring(L, -1, &len);
            (void)!buf_puts(&b, i > 1 ? "," : "");
            (void)!buf_json_string(&b, s, len);
            lua_pop(L, 1);
        }
        (void)!buf_puts(&b, "]");
    }
    (void)!buf_puts(&b, "}");
    lua_pushlstring(L, b.data, b.len);
    buf_free(&b);
    return lua_tostring(L, -1);
}

/* security.update_alert(id, { status =, classification =, determination =,
 * assigned_to = }) -> alert | nil, err */
static int
l_security_update_alert(lua_State *L)
{
    struct security_update u;
    const char *path, *body;

    path = call_push_id_path(L, 1, "an alert id", "/v1.0/security/alerts_v2/", "");
    check_update(L, "security.update_alert", 0, &u);
    body = push_update(L, &u, alert_status, 0);
    return call_def_effect(L, &security_calls[SECURITY_UPDATE_ALERT], path, body);
}

/* security.update_incident(id, { status =, classification =, determination =,
 * assigned_to =, custom_tags = {...} }) -> incident | nil, err */
static int
l_security_update_incident(lua_State *L)
{
    struct security_update u;
    const char *path, *body;
    int tags;

    path = call_push_id_path(L, 1, "an incident id", "/v1.0/security/incidents/", "");
    check_update(L, "security.update_incident", 1, &u);
    tags = lua_gettop(L); /* check_update left custom_tags on top */
    body = push_update(L, &u, incident_status, tags);
    return call_def_effect(L, &security_calls[SECURITY_UPDATE_INCIDENT], path, body);
}

/* security.comment_alert(id, text) -> comments | nil, err. Not idempotent (a repeat
 * posts the comment twice): a call left in doubt looks for its text among the alert's
 * comments first. */
static int
l_security_comment_alert(lua_State *L)
{
    struct call_spec spec;
    size_t len;
    const char *text;
    struct buf b;

    call_spec_from_def(&spec, &security_calls[SECURITY_COMMENT_ALERT]);
    spec.path = call_push_id_path(L, 1, "an alert id", "/v1.0/security/alerts_v2/", "/comments");
    lua_pushlstring(L, spec.path, strlen(spec.path) - strlen("/comments"));
    spec.reconcile_path = lua_tostring(L, -1); /* GET the alert itself */
    text = luaL_checklstring(L, 2, &len);
    luaL_argcheck(L, len > 0 && len <= SECURITY_TEXT_MAX && strlen(text) == len, 2,
                  "expected the comment text");
    buf_init(&b, 0);
    (void)!buf_puts(&b, "{\"@odata.type\":\"microsoft.graph.security.alertComment\","
                        "\"comment\":");
    (void)!buf_json_string(&b, text, len);
    (void)!buf_puts(&b, "}");
    lua_pushlstring(L, b.data, b.len);
    buf_free(&b);
    spec.body = lua_tostring(L, -1);
    spec.reconcile = reconcile_comment;
    /* Argument 2 stays on this frame's stack while the run waits: the text outlives
     * the call. */
    spec.ud = (void *)text;
    return call_effect(L, &spec);
}

static int
luaopen_kagari_security(lua_State *L)
{
    static const luaL_Reg security_funcs[] = {
        { "alert", l_security_alert },
        { "update_alert", l_security_update_alert },
        { "comment_alert", l_security_comment_alert },
        { "incident", l_security_incident },
        { "update_incident", l_security_update_incident },
        { NULL, NULL },
    };

    luaL_newlib(L, security_funcs);
    return 1;
}

const struct connector security_connector =
    MICROSOFT_CONNECTOR("security", "Graph security alerts and incidents", luaopen_kagari_security);
