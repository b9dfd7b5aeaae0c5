/* defender.c: the playbooks' `defender` module: Microsoft Defender for Endpoint machines,
 * machine actions (isolate, scan, restrict, collect) and indicators (reference:
 * connectors.md section 5). */
#include "connectors/defender.h"

#include <arpa/inet.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "connectors/microsoft.h"

#define DEFENDER_ID_MAX 256
#define DEFENDER_TEXT_MAX 4000
#define DEFENDER_VALUE_MAX 2048
/* A reconciliation accepts actions created this long before the call started: the
 * service's clock and ours may disagree a little. */
#define DEFENDER_SKEW_MS 60000
#define DEFENDER_WAIT_TIMEOUT 3600
#define DEFENDER_WAIT_INTERVAL 30

/* The module's calls: rows of defender_calls. */
enum defender_call {
    DEFENDER_MACHINE,
    DEFENDER_FIND_MACHINE,
    DEFENDER_ACTION,
    DEFENDER_ISOLATE,
    DEFENDER_UNISOLATE,
    DEFENDER_AV_SCAN,
    DEFENDER_RESTRICT_CODE,
    DEFENDER_COLLECT_PACKAGE,
    DEFENDER_ADD_INDICATOR,
    DEFENDER_REMOVE_INDICATOR,
};

/* One machine action: its call (journal kind "defender.<name>", limiter priority), its
 * Lua name, the URL suffix, and the MachineAction type the API reports for it. */
struct defender_action {
    enum defender_call call;
    const char *name;
    const char *suffix;
    const char *type;
};

static const struct defender_action act_isolate = { DEFENDER_ISOLATE, "isolate", "isolate",
                                                    "Isolate" };
static const struct defender_action act_unisolate = { DEFENDER_UNISOLATE, "unisolate", "unisolate",
                                                      "Unisolate" };
static const struct defender_action act_scan = { DEFENDER_AV_SCAN, "av_scan", "runAntiVirusScan",
                                                 "RunAntiVirusScan" };
static const struct defender_action act_restrict = { DEFENDER_RESTRICT_CODE, "restrict_code",
                                                     "restrictCodeExecution",
                                                     "RestrictCodeExecution" };
static const struct defender_action act_collect = { DEFENDER_COLLECT_PACKAGE, "collect_package",
                                                    "collectInvestigationPackage",
                                                    "CollectInvestigationPackage" };

/* 1 when s is exactly n hex digits. */
static int
is_hex(const char *s, size_t n)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        char ch = s[i];

        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F'))) {
            return 0;
        }
    }
    return i == n;
}

/* An optional free-text argument (comment, title): nil gives dflt. Raises on misuse. */
static const char *
check_text(lua_State *L, int idx, const char *dflt, const char *what)
{
    size_t len;
    const char *s;

    if (lua_isnoneornil(L, idx)) {
        return dflt;
    }
    s = luaL_checklstring(L, idx, &len);
    if (len == 0 || len > DEFENDER_TEXT_MAX || strlen(s) != len) {
        luaL_argerror(L, idx,
                      lua_pushfstring(L, "%s: 1 to %d bytes of text", what, DEFENDER_TEXT_MAX));
    }
    return s;
}

/* The default Comment of a machine action names the run that asked for it (stable
 * across replays, so the journaled request does not change). Pushed on the stack. */
static const char *
push_default_comment(lua_State *L)
{
    struct run *r = run_from_lua(L);

    if (r == NULL) {
        return lua_pushstring(L, "Requested by kagari");
    }
    return lua_pushfstring(L, "Requested by kagari (run %I)", (lua_Integer)run_id(r));
}

/* The time argument at idx (epoch seconds or an RFC 3339 string) as an OData UTC
 * literal in out. Raises on misuse. */
static void
check_time(lua_State *L, int idx, const char *what, char out[32])
{
    int64_t ms = 0;
    char iso[32];

    if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_Number n = lua_tonumber(L, idx);

        if (!(n >= 0 && n < 253402300800.0)) { /* before year 10000 */
            luaL_error(L, "%s: expected epoch seconds or an RFC 3339 time", what);
        }
        ms = (int64_t)(n * 1000);
    } else if (lua_type(L, idx) != LUA_TSTRING ||
               util_parse_time(lua_tostring(L, idx), &ms) == -1) {
        luaL_error(L, "%s: expected epoch seconds or an RFC 3339 time", what);
    }
    util_fmt_time(ms, iso);
    snprintf(out, 32, "%.19sZ", iso);
}

/* The answer of a machine action: the MachineAction (2xx), or "already requested"
 * (400 ActiveRequestAlreadyExists: the device already has such an action pending, which
 * is the state the playbook asked for) as {"already":true,...}. */
static int
map_action(struct call *c, const struct httpc_response *resp, char **result)
{
    const struct defender_action *a = call_ud(c);
    cJSON *root = NULL;

    if (resp->status >= 200 && resp->status < 300) {
        if (resp->body_len > 0 &&
            json_parse_strict(resp->body, resp->body_len, JSON_MAX_DEPTH, &root, NULL) == 0) {
            *result = json_print(root);
            cJSON_Delete(root);
        } else {
            *result = xstrdup("true");
        }
        return 1;
    }
    if (resp->status == 400 && resp->body_len > 0 &&
        json_parse_strict(resp->body, resp->body_len, 32, &root, NULL) == 0) {
        const cJSON *e = json_get(root, "error");
        const char *code = e ? json_get_string(e, "code") : NULL;

        if (code != NULL && strcmp(code, "ActiveRequestAlreadyExists") == 0) {
            const char *msg = json_get_string(e, "message");
            struct buf b;

            buf_init(&b, 0);
            (void)!buf_printf(&b, "{\"already\":true,\"type\":\"%s\",\"message\":", a->type);
            msg = msg ? msg : "";
            (void)!buf_json_string(&b, msg, strlen(msg));
            (void)!buf_puts(&b, "}");
            cJSON_Delete(root);
            *result = buf_take(&b);
            return 1;
        }
        cJSON_Delete(root);
    }
    *result = call_error_text(c, resp);
    return 0;
}

/* DELETE answers: 2xx -> true; 404 (already gone) -> {"already":true}. */
static int
map_removed(struct call *c, const struct httpc_response *resp, char **result)
{
    if (resp->status >= 200 && resp->status < 300) {
        *result = xstrdup("true");
        return 1;
    }
    if (resp->status == 404) {
        *result = xstrdup("{\"already\":true}");
        return 1;
    }
    *result = call_error_text(c, resp);
    return 0;
}

/* Every call of the module. Machine actions are not safe to repeat (see
 * machine_action); adding an indicator is an upsert by value and type, and deleting one
 * twice leaves it deleted. */
static const struct call_def defender_calls[] = {
    [DEFENDER_MACHINE] = { "defender.machine", &microsoft_defender, "defender", LIMITER_ENRICH, 1,
                           "GET", NULL },
    [DEFENDER_FIND_MACHINE] = { "defender.find_machine", &microsoft_defender, "defender",
                                LIMITER_ENRICH, 1, "GET", microsoft_map_paged },
    [DEFENDER_ACTION] = { "defender.action", &microsoft_defender, "defender", LIMITER_NORMAL, 1,
                          "GET", NULL },
    [DEFENDER_ISOLATE] = { "defender.isolate", &microsoft_defender, "defender", LIMITER_CONTAIN, 0,
                           "POST", map_action },
    [DEFENDER_UNISOLATE] = { "defender.unisolate", &microsoft_defender, "defender", LIMITER_NORMAL,
                             0, "POST", map_action },
    [DEFENDER_AV_SCAN] = { "defender.av_scan", &microsoft_defender, "defender", LIMITER_NORMAL, 0,
                           "POST", map_action },
    [DEFENDER_RESTRICT_CODE] = { "defender.restrict_code", &microsoft_defender, "defender",
                                 LIMITER_CONTAIN, 0, "POST", map_action },
    [DEFENDER_COLLECT_PACKAGE] = { "defender.collect_package", &microsoft_defender, "defender",
                                   LIMITER_NORMAL, 0, "POST", map_action },
    /* LIMITER_CONTAIN when the indicator blocks: see l_defender_add_indicator */
    [DEFENDER_ADD_INDICATOR] = { "defender.add_indicator", &microsoft_defender, "defender",
                                 LIMITER_NORMAL, 1, "POST", NULL },
    [DEFENDER_REMOVE_INDICATOR] = { "defender.remove_indicator", &microsoft_defender, "defender",
                                    LIMITER_NORMAL, 1, "DELETE", map_removed },
};

/* In doubt after a restart: the machine's actions of this type. One created at or after
 * the call started (less the clock skew allowance) that has not failed or been
 * cancelled is the one the interrupted call made: record it (1). Otherwise send again
 * (0). The earliest match wins: a later one would be someone else's. */
static int
reconcile_action(struct call *c, const struct httpc_response *resp, char **result)
{
    const struct defender_action *a = call_ud(c);
    int64_t since = call_started_ms(c) - DEFENDER_SKEW_MS;
    const cJSON *list, *it, *best = NULL;
    int64_t best_ms = 0;
    cJSON *root = NULL;

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
    list = json_get(root, "value");
    if (!cJSON_IsArray(list)) {
        list = NULL;
    }
    cJSON_ArrayForEach(it, list)
    {
        const char *type = json_get_string(it, "type");
        const char *status = json_get_string(it, "status");
        const char *created = json_get_string(it, "creationDateTimeUtc");
        int64_t ms;

        if (type == NULL || strcasecmp(type, a->type) != 0 || status == NULL ||
            strcasecmp(status, "Failed") == 0 || strcasecmp(status, "Cancelled") == 0 ||
            created == NULL || util_parse_time(created, &ms) == -1 || ms < since) {
            continue;
        }
        if (best == NULL || ms < best_ms) {
            best = it;
            best_ms = ms;
        }
    }
    if (best != NULL) {
        *result = json_print(best);
    }
    cJSON_Delete(root);
    return best != NULL;
}

/* Send machine action a for the machine id with the JSON body (both owned by the Lua
 * stack). Not idempotent (a repeat may queue a second action that outlives a later
 * undo), so a call left in doubt is reconciled from the machine's action list, which is
 * filtered by machineId: id must be the machine id, never its computer name (see
 * machine_action). */
static int
send_action(lua_State *L, const struct defender_action *a, const char *id, const char *body)
{
    struct call_spec spec;
    struct buf f;

    call_spec_from_def(&spec, &defender_calls[a->call]);
    spec.path = call_push_path(L, "/api/machines/", id, "");
    lua_pushfstring(L, "%s/%s", spec.path, a->suffix);
    spec.path = lua_tostring(L, -1);
    buf_init(&f, 0);
    (void)!buf_puts(&f, "machineId eq '");
    microsoft_odata_quote(&f, id);
    (void)!buf_printf(&f, "' and type eq '%s'", a->type);
    spec.reconcile_path = microsoft_push_filter_path(L, "/api/machineactions", &f);
    spec.exclusive = lua_pushfstring(L, "defender:%s:%s", a->name, id);
    spec.body = body;
    spec.reconcile = reconcile_action;
    spec.ud = (void *)a;
    return call_effect(L, &spec);
}

/* The continuation of machine_action: the by-name helper's results are the call's. */
static int
action_k(lua_State *L, int status, lua_KContext base)
{
    (void)status;
    return lua_gettop(L) - (int)base;
}

/* Machine action a on the machine id or computer name id, with the JSON body (both owned
 * by the Lua stack). The API takes a name in GET /api/machines/{id} only, and the action
 * list a reconciliation reads can be filtered by machineId only: a name is first
 * resolved to the machine's id by a journaled read (defender.machine, with the action's
 * priority), so that the request, its exclusive key and its reconciliation all name the
 * machine by id. The resolving helper is Lua (upvalue 1 of every function of the
 * module), so that both steps are effects a replay walks through. */
static int
machine_action(lua_State *L, const struct defender_action *a, const char *id, const char *body)
{
    int base;

    if (is_hex(id, 40)) {
        return send_action(L, a, id, body);
    }
    base = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushlightuserdata(L, (void *)a);
    lua_pushstring(L, id);
    lua_pushstring(L, body);
    lua_callk(L, 3, LUA_MULTRET, base, action_k);
    return action_k(L, LUA_OK, base);
}

/* The helper's steps: resolve(a, name) -> Machine | nil, err; send(a, id, body). */
static int
l_defender_resolve(lua_State *L)
{
    const struct defender_action *a = lua_touserdata(L, 1);
    struct call_def d = defender_calls[DEFENDER_MACHINE];

    d.prio = defender_calls[a->call].prio;
    return call_def_effect(L, &d, call_push_id_path(L, 2, "a computer name", "/api/machines/", ""),
                           NULL);
}

/* send(a, machine, name, body): the machine's id when the read returned a Machine; in a
 * dry run it returns no machine, and the action is then recorded with the name. */
static int
l_defender_send(lua_State *L)
{
    const struct defender_action *a = lua_touserdata(L, 1);
    const char *body = luaL_checkstring(L, 4);

    if (lua_istable(L, 2) && lua_getfield(L, 2, "dry_run") == LUA_TNIL &&
        lua_getfield(L, 2, "id") == LUA_TSTRING) {
        lua_replace(L, 3); /* the machine's id, in place of the name */
    }
    return send_action(L, a, call_check_id(L, 3, "a machine id"), body);
}

/* machine_action's helper for a computer name. Trusted text, loaded with an empty _ENV:
 * it reaches nothing but its arguments and its two upvalues. */
static const char by_name_lua[] = "local resolve, send = ...\n"
                                  "return function(a, name, body)\n"
                                  "  local m, err = resolve(a, name)\n"
                                  "  if m == nil then return nil, err end\n"
                                  "  return send(a, m, name, body)\n"
                                  "end\n";

/* Push {"Comment":comment[,extra_key:extra_value]} and return it. */
static const char *
push_action_body(lua_State *L, const char *comment, const char *extra_key, const char *extra_value)
{
    struct buf b;

    buf_init(&b, 0);
    (void)!buf_puts(&b, "{\"Comment\":");
    (void)!buf_json_string(&b, comment, strlen(comment));
    if (extra_key != NULL) {
        (void)!buf_printf(&b, ",\"%s\":\"%s\"", extra_key, extra_value);
    }
    (void)!buf_puts(&b, "}");
    lua_pushlstring(L, b.data, b.len);
    buf_free(&b);
    return lua_tostring(L, -1);
}

/* defender.isolate(id, "full"|"selective", comment) -> MachineAction | {already=true}
 * | nil, err */
static int
l_defender_isolate(lua_State *L)
{
    static const char *const kinds[] = { "full", "selective", NULL };
    static const char *const api[] = { "Full", "Selective" };
    const char *id = call_check_id(L, 1, "a machine id or computer name");
    int k = luaL_checkoption(L, 2, "full", kinds);
    const char *comment = check_text(L, 3, NULL, "comment");

    if (comment == NULL) {
        comment = push_default_comment(L);
    }
    return machine_action(L, &act_isolate, id,
                          push_action_body(L, comment, "IsolationType", api[k]));
}

/* defender.unisolate(id, comment) -> MachineAction | {already=true} | nil, err */
static int
l_defender_unisolate(lua_State *L)
{
    const char *id = call_check_id(L, 1, "a machine id or computer name");
    const char *comment = check_text(L, 2, NULL, "comment");

    if (comment == NULL) {
        comment = push_default_comment(L);
    }
    return machine_action(L, &act_unisolate, id, push_action_body(L, comment, NULL, NULL));
}

/* defender.av_scan(id, "quick"|"full", comment) -> MachineAction | {already=true} |
 * nil, err */
static int
l_defender_av_scan(lua_State *L)
{
    static const char *const kinds[] = { "quick", "full", NULL };
    static const char *const api[] = { "Quick", "Full" };
    const char *id = call_check_id(L, 1, "a machine id or computer name");
    int k = luaL_checkoption(L, 2, "quick", kinds);
    const char *comment = check_text(L, 3, NULL, "comment");

    if (comment == NULL) {
        comment = push_default_comment(L);
    }
    return machine_action(L, &act_scan, id, push_action_body(L, comment, "ScanType", api[k]));
}

/* defender.restrict_code(id, comment) -> MachineAction | {already=true} | nil, err */
static int
l_defender_restrict_code(lua_State *L)
{
    const char *id = call_check_id(L, 1, "a machine id or computer name");
    const char *comment = check_text(L, 2, NULL, "comment");

    if (comment == NULL) {
        comment = push_default_comment(L);
    }
    return machine_action(L, &act_restrict, id, push_action_body(L, comment, NULL, NULL));
}

/* defender.collect_package(id, comment) -> MachineAction | {already=true} | nil, err */
static int
l_defender_collect_package(lua_State *L)
{
    const char *id = call_check_id(L, 1, "a machine id or computer name");
    const char *comment = check_text(L, 2, NULL, "comment");

    if (comment == NULL) {
        comment = push_default_comment(L);
    }
    return machine_action(L, &act_collect, id, push_action_body(L, comment, NULL, NULL));
}

/* defender.machine(id) -> Machine | nil, err (id: machine id or computer name) */
static int
l_defender_machine(lua_State *L)
{
    const char *id = call_check_id(L, 1, "a machine id or computer name");

    return call_def_effect(L, &defender_calls[DEFENDER_MACHINE],
                           call_push_path(L, "/api/machines/", id, ""), NULL);
}

/* defender.find_machine{ host = dns name } or { ip = address } -> array | nil, err */
static int
l_defender_find_machine(lua_State *L)
{
    const char *host, *ip;
    unsigned char addr[16];
    struct buf f;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "host");
    host = luaL_optstring(L, -1, NULL);
    lua_getfield(L, 1, "ip");
    ip = luaL_optstring(L, -1, NULL);
    luaL_argcheck(L, (host == NULL) != (ip == NULL), 1, "expected exactly one of host, ip");
    luaL_argcheck(L, host == NULL || (host[0] != '\0' && strlen(host) <= 255), 1,
                  "host: a computer DNS name");
    luaL_argcheck(
        L, ip == NULL || inet_pton(AF_INET, ip, addr) == 1 || inet_pton(AF_INET6, ip, addr) == 1, 1,
        "ip: an IPv4 or IPv6 address");
    buf_init(&f, 0);
    (void)!buf_puts(&f, host != NULL ? "computerDnsName eq '" : "lastIpAddress eq '");
    microsoft_odata_quote(&f, host != NULL ? host : ip);
    (void)!buf_puts(&f, "'");
    return call_def_effect(L, &defender_calls[DEFENDER_FIND_MACHINE],
                           microsoft_push_filter_path(L, "/api/machines", &f), NULL);
}

/* defender.action(id) -> MachineAction | nil, err */
static int
l_defender_action(lua_State *L)
{
    const char *id = call_check_id(L, 1, "a machine action id");

    return call_def_effect(L, &defender_calls[DEFENDER_ACTION],
                           call_push_path(L, "/api/machineactions/", id, ""), NULL);
}

/* wait_action's argument check: (id, opts) -> timeout, interval (seconds). */
static int
l_defender_wait_check(lua_State *L)
{
    lua_Number timeout = DEFENDER_WAIT_TIMEOUT, interval = DEFENDER_WAIT_INTERVAL;
    size_t len;
    const char *id = luaL_checklstring(L, 1, &len);

    if (len == 0 || len > DEFENDER_ID_MAX || strlen(id) != len) {
        return luaL_error(L, "defender.wait_action: expected a machine action id");
    }
    if (!lua_isnoneornil(L, 2)) {
        if (!lua_istable(L, 2)) {
            return luaL_error(L, "defender.wait_action: options must be a table");
        }
        lua_getfield(L, 2, "timeout");
        if (!lua_isnil(L, -1)) {
            if (!lua_isnumber(L, -1) || !((timeout = lua_tonumber(L, -1)) >= 0) ||
                timeout > 7 * 86400) {
                return luaL_error(L, "defender.wait_action: timeout: 0 to 604800 seconds");
            }
        }
        lua_getfield(L, 2, "interval");
        if (!lua_isnil(L, -1)) {
            if (!lua_isnumber(L, -1) || !((interval = lua_tonumber(L, -1)) >= 0.1) ||
                interval > 86400) {
                return luaL_error(L, "defender.wait_action: interval: 0.1 to 86400 seconds");
            }
        }
    }
    lua_pushnumber(L, timeout);
    lua_pushnumber(L, interval);
    return 2;
}

/* wait_action's test: is the value a MachineAction in a final state? */
static int
l_defender_wait_final(lua_State *L)
{
    static const char *const final[] = { "Succeeded", "Failed", "TimeOut", "Cancelled" };
    const char *st = NULL;
    int done = 0;

    if (lua_istable(L, 1)) {
        lua_getfield(L, 1, "status");
        st = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    }
    for (size_t i = 0; st != NULL && i < sizeof(final) / sizeof(final[0]); i++) {
        done |= strcasecmp(st, final[i]) == 0;
    }
    lua_pushboolean(L, done);
    return 1;
}

/* defender.wait_action(id, { timeout = s, interval = s }), in Lua so that every poll
 * (defender.action) and every pause (sleep) is a journaled effect: after a restart the
 * wait replays what it saw and goes on from there. Trusted text, loaded with an empty
 * _ENV: it reaches nothing but its four arguments. */
static const char wait_action_lua[] =
    "local action, sleep, check, final = ...\n"
    "return function(id, opts)\n"
    "  local timeout, interval = check(id, opts)\n"
    "  local waited = 0\n"
    "  while true do\n"
    "    local a, err = action(id)\n"
    "    if a == nil then return nil, err end\n"
    "    if final(a) then return a end\n"
    "    if waited >= timeout then return nil, 'timeout' end\n"
    "    local step = interval\n"
    "    if waited + step > timeout then step = timeout - waited end\n"
    "    sleep(step)\n"
    "    waited = waited + step\n"
    "  end\n"
    "end\n";

/* Indicator types and actions: the playbook's names and the API's. */
static const char *const ind_types[] = { "ip",     "domain", "url",  "sha1",
                                         "sha256", "md5",    "cert", NULL };
static const char *const ind_types_api[] = {
    "IpAddress", "DomainName", "Url", "FileSha1", "FileSha256", "FileMd5", "CertificateThumbprint"
};
static const char *const ind_actions[] = {
    "block",           "alert", "warn", "audit", "allowed", "allow", "block_and_remediate",
    "alert_and_block", NULL
};
static const char *const ind_actions_api[] = {
    "Block", "Alert", "Warn", "Audit", "Allowed", "Allowed", "BlockAndRemediate", "AlertAndBlock"
};
static const char *const ind_severities[] = { "informational", "low", "medium", "high", NULL };
static const char *const ind_severities_api[] = { "Informational", "Low", "Medium", "High" };

/* The indicator value suits its type: an address without a prefix length for "ip",
 * hashes of the right length, and no spaces or control characters elsewhere. */
static int
ind_value_ok(int type, const char *v)
{
    unsigned char addr[16];

    switch (type) {
    case 0:
        return inet_pton(AF_INET, v, addr) == 1 || inet_pton(AF_INET6, v, addr) == 1;
    case 3:
    case 6:
        return is_hex(v, 40);
    case 4:
        return is_hex(v, 64);
    case 5:
        return is_hex(v, 32);
    default:
        for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
            if (*p <= 0x20 || *p == 0x7f) {
                return 0;
            }
        }
        return 1;
    }
}

/* A string field of the options table at 1, as its index in list; -1 when absent.
 * Raises when it is not one of list. */
static int
opt_field(lua_State *L, const char *key, const char *const *list)
{
    const char *s;

    lua_getfield(L, 1, key);
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
    return luaL_error(L, "defender.add_indicator: %s: invalid value %s", key,
                      s ? lua_pushfstring(L, "'%s'", s) : luaL_typename(L, -1));
}

/* A text field of the options table at 1 (left on the stack), or dflt. */
static const char *
text_field(lua_State *L, const char *key, const char *dflt, size_t max)
{
    const char *s;
    size_t len;

    lua_getfield(L, 1, key);
    if (lua_isnil(L, -1)) {
        return dflt;
    }
    if (lua_type(L, -1) != LUA_TSTRING) {
        luaL_error(L, "defender.add_indicator: %s: expected a string", key);
    }
    s = lua_tolstring(L, -1, &len);
    if (len == 0 || len > max || strlen(s) != len) {
        luaL_error(L, "defender.add_indicator: %s: 1 to %d bytes of text", key, (int)max);
    }
    return s;
}

/* defender.add_indicator{ type =, value =, action =, title =, description =, expires =,
 * severity = } -> Indicator | nil, err. Submitting the same value and type again
 * updates the indicator, so the call is safe to repeat. */
static int
l_defender_add_indicator(lua_State *L)
{
    struct call_def d = defender_calls[DEFENDER_ADD_INDICATOR];
    const char *value, *title, *desc;
    char expires[32] = "";
    int type, action, sev;
    struct buf b;

    luaL_checktype(L, 1, LUA_TTABLE);
    type = opt_field(L, "type", ind_types);
    luaL_argcheck(L, type >= 0, 1, "type: one of ip, domain, url, sha1, sha256, md5, cert");
    action = opt_field(L, "action", ind_actions);
    luaL_argcheck(L, action >= 0, 1,
                  "action: one of block, alert, warn, audit, allowed, block_and_remediate, "
                  "alert_and_block");
    sev = opt_field(L, "severity", ind_severities);
    value = text_field(L, "value", NULL, DEFENDER_VALUE_MAX);
    luaL_argcheck(L, value != NULL, 1, "value: required");
    if (!ind_value_ok(type, value)) {
        return luaL_error(L, "defender.add_indicator: value is not a valid %s indicator",
                          ind_types[type]);
    }
    title = text_field(L, "title", value, DEFENDER_TEXT_MAX);
    desc = text_field(L, "description", "Added by a kagari playbook", DEFENDER_TEXT_MAX);
    lua_getfield(L, 1, "expires");
    if (!lua_isnil(L, -1)) {
        check_time(L, -1, "defender.add_indicator: expires", expires);
    }
    buf_init(&b, 0);
    (void)!buf_puts(&b, "{\"indicatorValue\":");
    (void)!buf_json_string(&b, value, strlen(value));
    (void)!buf_printf(&b,
                      ",\"indicatorType\":\"%s\",\"action\":\"%s\",\"title\":", ind_types_api[type],
                      ind_actions_api[action]);
    (void)!buf_json_string(&b, title, strlen(title));
    (void)!buf_puts(&b, ",\"description\":");
    (void)!buf_json_string(&b, desc, strlen(desc));
    if (sev >= 0) {
        (void)!buf_printf(&b, ",\"severity\":\"%s\"", ind_severities_api[sev]);
    }
    if (expires[0] != '\0') {
        (void)!buf_printf(&b, ",\"expirationTime\":\"%s\"", expires);
    }
    if (strcmp(ind_actions_api[action], "Audit") == 0) {
        (void)!buf_puts(&b, ",\"generateAlert\":true"); /* Audit requires it */
    }
    (void)!buf_puts(&b, "}");
    lua_pushlstring(L, b.data, b.len);
    buf_free(&b);
    if (strcmp(ind_actions_api[action], "Block") == 0) {
        d.prio = LIMITER_CONTAIN;
    }
    return call_def_effect(L, &d, "/api/indicators", lua_tostring(L, -1));
}

/* defender.remove_indicator(id) -> true | {already=true} | nil, err */
static int
l_defender_remove_indicator(lua_State *L)
{
    const char *id = call_check_id(L, 1, "an indicator id");

    return call_def_effect(L, &defender_calls[DEFENDER_REMOVE_INDICATOR],
                           call_push_path(L, "/api/indicators/", id, ""), NULL);
}

static int
luaopen_kagari_defender(lua_State *L)
{
    static const luaL_Reg defender_funcs[] = {
        { "machine", l_defender_machine },
        { "find_machine", l_defender_find_machine },
        { "isolate", l_defender_isolate },
        { "unisolate", l_defender_unisolate },
        { "av_scan", l_defender_av_scan },
        { "restrict_code", l_defender_restrict_code },
        { "collect_package", l_defender_collect_package },
        { "action", l_defender_action },
        { "add_indicator", l_defender_add_indicator },
        { "remove_indicator", l_defender_remove_indicator },
        { NULL, NULL },
    };

    luaL_newlibtable(L, defender_funcs);
    if (luaL_loadbufferx(L, by_name_lua, sizeof(by_name_lua) - 1, "=defender.by_name", "t") !=
        LUA_OK) {
        return lua_error(L);
    }
    lua_newtable(L); /* its _ENV: empty */
    lua_setupvalue(L, -2, 1);
    lua_pushcfunction(L, l_defender_resolve);
    lua_pushcfunction(L, l_defender_send);
    lua_call(L, 2, 1);
    luaL_setfuncs(L, defender_funcs, 1); /* the helper: upvalue 1 of every function */
    if (luaL_loadbufferx(L, wait_action_lua, sizeof(wait_action_lua) - 1, "=defender.wait_action",
                         "t") != LUA_OK) {
        return lua_error(L);
    }
    lua_newtable(L); /* its _ENV: empty */
    lua_setupvalue(L, -2, 1);
    lua_pushcfunction(L, l_defender_action);
    lua_pushcfunction(L, builtin_sleep);
    lua_pushcfunction(L, l_defender_wait_check);
    lua_pushcfunction(L, l_defender_wait_final);
    lua_call(L, 4, 1);
    lua_setfield(L, -2, "wait_action");
    return 1;
}

const struct connector defender_connector = MICROSOFT_CONNECTOR(
    "defender", "Defender for Endpoint machines, actions and indicators", luaopen_kagari_defender);
