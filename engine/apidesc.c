/* apidesc.c: the playbook API as the engine registers it, plus what functions cannot say
 * about themselves; and the LuaLS annotation files written from it. */
#include "engine/apidesc.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/env.h"
#include "engine/normalize.h"
#include "engine/plugin.h"
#include "engine/run.h"
#include "engine/sandbox.h"

/* What a registered function cannot tell by itself. params is a LuaLS parameter list
 * ("name: type", "name?: type" for an optional one, "...: type" for any number); the
 * argument counts the lint checks are derived from it. A function with no row is still
 * known (its name is checked), only its arguments are not. A connector's functions return
 * nil, message on an operational failure (docs/connectors.md) unless a row says
 * otherwise. A test checks that every row names a registered function. */
struct apidesc_meta {
    const char *path;
    const char *params;
    const char *returns;
    int nil_err; /* 1 yes, 0 no, -1 the default (yes for a connector's function) */
    const char *summary;
};

static const struct apidesc_meta apidesc_meta[] = {
    /* built-ins (engine/builtin.c, engine/ljson.c, engine/library.c) */
    { "playbook", "def: kagari.playbook", "kagari.playbook", 0,
      "Declare the playbook: the file must end with return playbook{...}." },
    { "sleep", "seconds: number", "true", 0, "Park the run for seconds (journaled)." },
    { "approve", "request: table", "table", 0,
      "Park the run until people decide: {title =, detail =, effects =, role =, approvers =, "
      "timeout =, default =}; the decision {approved =, decision =, timed_out =, ...}." },
    { "now", "", "number", 0, "Seconds since the epoch, ms fraction (journaled)." },
    { "require", "name: string", "any", 0,
      "A library lib/name.lua, evaluated once per playbook version, read-only." },
    { "log.debug", "...: any", "", 0, "Record a line in the run's journal." },
    { "log.info", "...: any", "", 0, "Record a line in the run's journal." },
    { "log.warn", "...: any", "", 0, "Record a line in the run's journal." },
    { "log.error", "...: any", "", 0, "Record a line in the run's journal." },
    { "json.encode", "value: any", "string", 0, "The JSON text of a value (sorted keys)." },
    { "json.decode", "text: string", "any, string?", 1,
      "The value of a JSON text, or nil, message." },
    { "json.array", "t?: table", "table", 0, "Mark a table to encode as a JSON array." },
    { "state.get", "key: string", "any, string?", 1,
      "The value stored under key, or nil (journaled)." },
    { "state.put", "key: string, value: any, opts?: table", "true?, string?", 1,
      "Store a value under key until its ttl ({ttl = \"1h\"}; default 30 days)." },
    { "state.incr", "key: string, opts?: table", "integer?, string?", 1,
      "Add by (default 1) to a counter ({window = \"1h\", by = 1}); the new count." },
    { "state.delete", "key: string", "boolean", 0, "Remove the entry; true when there was one." },
    { "alerts.recent", "query: table", "table?, string?", 1,
      "Earlier alerts with an observable value: {observable =, type =, since =, source =, "
      "limit =}." },
    /* the alert's methods (alert:name) */
    { "alert:observable", "type: string", "string?", 0, "the first observable value of that type" },
    { "alert:values", "type?: string", "table", 0,
      "the observable values of that type (every observable table without one)" },
    /* connectors (docs/connectors.md) */
    { "graph.user", "id: string", "table?, string?", -1, "An Entra ID user." },
    { "graph.disable_user", "id: string", "true?, string?", -1, "Disable a user account." },
    { "graph.enable_user", "id: string", "true?, string?", -1, "Enable a user account." },
    { "graph.revoke_sessions", "id: string", "true?, string?", -1,
      "Revoke a user's sign-in sessions." },
    { "graph.signins", "opts?: table", "table?, string?", -1,
      "Sign-ins: {user =, since =, top =}." },
    { "idp.risky_user", "id: string", "table?, string?", -1, "A risky user." },
    { "idp.confirm_compromised", "ids: string|string[]", "true?, string?", -1,
      "Confirm users compromised." },
    { "idp.dismiss", "ids: string|string[]", "true?, string?", -1, "Dismiss users' risk." },
    { "idp.risk_detections", "opts?: table", "table?, string?", -1,
      "Risk detections: {user =, since =, top =}." },
    { "security.alert", "id: string", "table?, string?", -1, "A Defender XDR alert." },
    { "security.update_alert", "id: string, fields: table", "table?, string?", -1,
      "Update an alert's status, classification, assignment." },
    { "security.comment_alert", "id: string, text: string", "table?, string?", -1,
      "Comment on an alert." },
    { "security.incident", "id: string, opts?: table", "table?, string?", -1,
      "A Defender XDR incident ({alerts = true} expands them)." },
    { "security.update_incident", "id: string, fields: table", "table?, string?", -1,
      "Update an incident." },
    { "defender.machine", "id: string", "table?, string?", -1,
      "A machine by id or computer name." },
    { "defender.find_machine", "query: table", "table?, string?", -1,
      "Machines by {host =} or {ip =}." },
    { "defender.isolate", "id: string, kind?: \"full\"|\"selective\", comment?: string",
      "table?, string?", -1, "Isolate a machine from the network." },
    { "defender.unisolate", "id: string, comment?: string", "table?, string?", -1,
      "Release a machine from isolation." },
    { "defender.av_scan", "id: string, kind?: \"quick\"|\"full\", comment?: string",
      "table?, string?", -1, "Run an antivirus scan." },
    { "defender.restrict_code", "id: string, comment?: string", "table?, string?", -1,
      "Restrict app execution." },
    { "defender.collect_package", "id: string, comment?: string", "table?, string?", -1,
      "Collect an investigation package." },
    { "defender.action", "id: string", "table?, string?", -1, "A machine action." },
    { "defender.wait_action", "id: string, opts?: table", "table?, string?", -1,
      "Wait for a machine action to finish: {timeout =, interval =}." },
    { "defender.add_indicator", "indicator: table", "table?, string?", -1,
      "Add an indicator (IP, domain, URL, file hash)." },
    { "defender.remove_indicator", "id: string|integer", "table?, string?", -1,
      "Remove an indicator." },
    { "intune.device", "query: table", "table?, string?", -1,
      "Managed devices by {user =}, {name =} or {aad_id =}." },
    { "intune.remote_lock", "id: string", "true?, string?", -1, "Lock a device." },
    { "intune.sync", "id: string", "true?, string?", -1, "Sync a device." },
    { "intune.retire", "id: string", "true?, string?", -1, "Retire a device." },
    { "intune.wipe", "id: string, opts?: table", "true?, string?", -1, "Wipe a device." },
    { "panos.block_ip", "ip: string, opts?: table", "table?, string?", -1,
      "Block an address or subnet on the firewall (User-ID tag): {tag =, timeout =}." },
    { "panos.unblock_ip", "ip: string, opts?: table", "table?, string?", -1,
      "Remove a block (its tag only): {tag =}." },
    { "panos.blocked", "opts?: table", "table?, string?", -1,
      "The firewall's registered addresses with a tag: {tag =} (\"*\": all)." },
    { "panos.add_address", "name: string, ip: string, opts?: table", "true?, string?", -1,
      "An address object in the candidate configuration: {description =, tags =}." },
    { "panos.add_to_group", "group: string, name: string", "true?, string?", -1,
      "Add an address object to a static address group." },
    { "panos.delete_address", "name: string", "true?, string?", -1,
      "Delete an address object (absent: success)." },
    { "panos.commit", "opts?: table", "table?, string?", -1,
      "Commit the candidate configuration and wait for the job: {description =}." },
    { "http.request", "req: table", "table?, string?", -1,
      "A JSON HTTP request: {method =, url =, headers =, body =, ...}." },
};

/* The names standard Lua gives (the sandbox keeps a subset). Editors know these
 * already: the annotations leave them out. */
static const char *const apidesc_standard[] = {
    "_G",     "_VERSION",     "assert", "error",    "getmetatable", "ipairs",   "math",
    "next",   "pairs",        "pcall",  "rawequal", "rawget",       "rawlen",   "rawset",
    "select", "setmetatable", "string", "table",    "tonumber",     "tostring", "type",
    "utf8",   "xpcall",       "warn",   "print",    "coroutine",    NULL,
};

static int
is_standard(const char *name)
{
    for (size_t i = 0; apidesc_standard[i] != NULL; i++) {
        if (strcmp(apidesc_standard[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

static const struct apidesc_meta *
meta_find(const char *path)
{
    for (size_t i = 0; i < sizeof(apidesc_meta) / sizeof(apidesc_meta[0]); i++) {
        if (strcmp(apidesc_meta[i].path, path) == 0) {
            return &apidesc_meta[i];
        }
    }
    return NULL;
}

/* Argument counts from a LuaLS parameter list. */
static void
count_params(const char *params, int *min, int *max)
{
    int n = 0, req = 0, vararg = 0;
    const char *p = params;

    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        size_t nlen = colon ? (size_t)(colon - p) : len;

        while (*p == ' ') {
            p++, nlen--;
        }
        if (nlen >= 3 && strncmp(p, "...", 3) == 0) {
            vararg = 1;
        } else if (nlen > 0) {
            n++;
            if (p[nlen - 1] != '?') {
                req = n;
            }
        }
        p = comma ? comma + 1 : p + strlen(p);
    }
    *min = req;
    *max = vararg ? -1 : n;
}

static void
add_entry(struct apidesc *api, const char *path, enum apidesc_kind kind, int standard,
          int connector, const char *vtype)
{
    struct apidesc_entry *e;
    const struct apidesc_meta *m = meta_find(path);

    api->v = xrealloc(api->v, (api->n + 1) * sizeof(*api->v));
    e = &api->v[api->n++];
    memset(e, 0, sizeof(*e));
    e->path = xstrdup(path);
    e->kind = kind;
    e->standard = standard;
    e->connector = connector;
    e->min_args = e->max_args = -1;
    e->value_type = vtype ? xstrdup(vtype) : NULL;
    e->nil_err = kind == APIDESC_FUNCTION && connector;
    if (m != NULL && kind == APIDESC_FUNCTION) {
        e->params = m->params;
        e->returns = m->returns;
        e->summary = m->summary;
        count_params(m->params, &e->min_args, &e->max_args);
        if (m->nil_err >= 0) {
            e->nil_err = m->nil_err;
        }
    }
}

/* Push the table a library proxy reads through to (or the table itself). */
static void
push_real(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (lua_getmetatable(L, idx)) {
        if (lua_getfield(L, -1, "__index") == LUA_TTABLE) {
            lua_remove(L, -2);
            return;
        }
        lua_pop(L, 2);
    }
    lua_pushvalue(L, idx);
}

static int
is_connector(const char *name)
{
    const struct connector *const *cv;
    size_t n = plugin_connectors(&cv);

    for (size_t i = 0; i < n; i++) {
        if (strcmp(cv[i]->name, name) == 0) {
            return 1;
        }
    }
    return 0;
}

static void
walk_table(struct apidesc *api, lua_State *L, const char *prefix, int standard, int connector,
           int depth)
{
    int t = lua_gettop(L);

    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -2);
            char *path = prefix ? xasprintf("%s.%s", prefix, k) : xstrdup(k);
            int std = standard || (prefix == NULL && is_standard(k));
            int conn = connector || (prefix == NULL && is_connector(k));

            switch (lua_type(L, -1)) {
            case LUA_TFUNCTION:
                add_entry(api, path, APIDESC_FUNCTION, std, conn, NULL);
                break;
            case LUA_TTABLE:
                add_entry(api, path, APIDESC_TABLE, std, conn, NULL);
                if (depth < 2) {
                    push_real(L, -1);
                    walk_table(api, L, path, std, conn, depth + 1);
                    lua_pop(L, 1);
                }
                break;
            default:
                add_entry(api, path, APIDESC_VALUE, std, conn, luaL_typename(L, -1));
            }
            free(path);
        }
        lua_pop(L, 1);
    }
}

static int
cmp_entries(const void *a, const void *b)
{
    return strcmp(((const struct apidesc_entry *)a)->path, ((const struct apidesc_entry *)b)->path);
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
add_source(struct apidesc *api, const char *name)
{
    for (size_t i = 0; i < api->nsources; i++) {
        if (strcmp(api->sources[i], name) == 0) {
            return;
        }
    }
    api->sources = xrealloc(api->sources, (api->nsources + 1) * sizeof(char *));
    api->sources[api->nsources++] = xstrdup(name);
}

/* Protected: push the table of a made-up alert with every field set. */
static int
l_sample_alert(lua_State *L)
{
    struct alert a;

    memset(&a, 0, sizeof(a));
    a.id = 1;
    a.source = (char *)"x.y";
    a.source_id = (char *)"1";
    a.title = (char *)"t";
    a.category = (char *)"c";
    a.vendor_severity = (char *)"high";
    a.outcome = (char *)"unknown";
    a.raw = (char *)"{}";
    run_push_alert(L, &a);
    return 1;
}

int
apidesc_load(struct apidesc *api, char **errp)
{
    struct sandbox *sb = env_sandbox_new(64u << 20, errp);
    const struct norm_family *const *fv;
    size_t nf;
    lua_State *L;

    memset(api, 0, sizeof(*api));
    if (sb == NULL) {
        return -1;
    }
    L = sandbox_state(sb);
    sandbox_push_globals(sb);
    walk_table(api, L, NULL, 0, 0, 0);
    lua_pop(L, 1);
    if (api->n > 1) {
        qsort(api->v, api->n, sizeof(*api->v), cmp_entries);
    }
    if (luaL_getmetatable(L, "kagari.alert") == LUA_TTABLE &&
        lua_getfield(L, -1, "__index") == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2) != 0) {
            if (lua_type(L, -2) == LUA_TSTRING) {
                api->methods = xrealloc(api->methods, (api->nmethods + 1) * sizeof(char *));
                api->methods[api->nmethods++] = xstrdup(lua_tostring(L, -2));
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (api->nmethods > 1) {
        qsort(api->methods, api->nmethods, sizeof(char *), cmp_str);
    }
    lua_pushcfunction(L, l_sample_alert);
    if (lua_pcall(L, 0, 1, 0) == LUA_OK) {
        lua_pushnil(L);
        while (lua_next(L, -2) != 0) {
            if (lua_type(L, -2) == LUA_TSTRING) {
                api->fields = xrealloc(api->fields, (api->nfields + 1) * sizeof(char *));
                api->fields[api->nfields++] = xstrdup(lua_tostring(L, -2));
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    if (api->nfields > 1) {
        qsort(api->fields, api->nfields, sizeof(char *), cmp_str);
    }
    /* The source names: those every registered normalizer family gives. */
    nf = 0;
    fv = normalize_families(&nf);
    for (size_t i = 0; i < nf; i++) {
        for (size_t j = 0; fv[i]->sources != NULL && fv[i]->sources[j] != NULL; j++) {
            add_source(api, fv[i]->sources[j]);
        }
    }
    if (api->nsources > 1) {
        qsort(api->sources, api->nsources, sizeof(char *), cmp_str);
    }
    sandbox_free(sb);
    return 0;
}

void
apidesc_free(struct apidesc *api)
{
    for (size_t i = 0; i < api->n; i++) {
        free(api->v[i].path);
        free(api->v[i].value_type);
    }
    free(api->v);
    for (size_t i = 0; i < api->nmethods; i++) {
        free(api->methods[i]);
    }
    free(api->methods);
    for (size_t i = 0; i < api->nfields; i++) {
        free(api->fields[i]);
    }
    free(api->fields);
    for (size_t i = 0; i < api->nsources; i++) {
        free(api->sources[i]);
    }
    free(api->sources);
    memset(api, 0, sizeof(*api));
}

const struct apidesc_entry *
apidesc_find(const struct apidesc *api, const char *path)
{
    struct apidesc_entry key;

    key.path = (char *)path;
    return api->n ? bsearch(&key, api->v, api->n, sizeof(*api->v), cmp_entries) : NULL;
}

const struct apidesc_entry *
apidesc_member(const struct apidesc *api, const char *prefix, const char *name)
{
    char *path = xasprintf("%s.%s", prefix, name);
    const struct apidesc_entry *e = apidesc_find(api, path);

    free(path);
    return e;
}

int
apidesc_has_method(const struct apidesc *api, const char *name)
{
    for (size_t i = 0; i < api->nmethods; i++) {
        if (strcmp(api->methods[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

int
apidesc_has_field(const struct apidesc *api, const char *name)
{
    for (size_t i = 0; i < api->nfields; i++) {
        if (strcmp(api->fields[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

int
apidesc_source_known(const struct apidesc *api, const char *name)
{
    size_t l = strlen(name);

    for (size_t i = 0; i < api->nsources; i++) {
        if (l > 0 && name[l - 1] == '*' ? strncmp(api->sources[i], name, l - 1) == 0
                                        : strcmp(api->sources[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

static size_t
distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[65];

    if (la > 64 || lb > 64) {
        return 99;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];

        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t best = prev + (a[i - 1] != b[j - 1]);

            if (row[j] + 1 < best) {
                best = row[j] + 1;
            }
            if (row[j - 1] + 1 < best) {
                best = row[j - 1] + 1;
            }
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

/* The closest of v[n] to name, if within bestd. */
static const char *
closest(char **v, size_t n, const char *name, const char *best, size_t *bestd)
{
    for (size_t i = 0; i < n; i++) {
        size_t d = distance(name, v[i]);

        if (d < *bestd) {
            *bestd = d;
            best = v[i];
        }
    }
    return best;
}

const char *
apidesc_suggest(const struct apidesc *api, const char *prefix, const char *name, int what)
{
    const char *best = NULL;
    size_t bestd = 3, pl = prefix ? strlen(prefix) : 0;

    if (what == APIDESC_SUGGEST_SOURCES) {
        return closest(api->sources, api->nsources, name, NULL, &bestd);
    }
    if (what == APIDESC_SUGGEST_ALERT) {
        best = closest(api->fields, api->nfields, name, NULL, &bestd);
        return closest(api->methods, api->nmethods, name, best, &bestd);
    }
    for (size_t i = 0; i < api->n; i++) {
        const char *p = api->v[i].path, *last;
        size_t d;

        if (prefix != NULL ? strncmp(p, prefix, pl) != 0 || p[pl] != '.' : strchr(p, '.') != NULL) {
            continue;
        }
        last = prefix ? p + pl + 1 : p;
        if (strchr(last, '.') != NULL) {
            continue;
        }
        d = distance(name, last);
        if (d < bestd) {
            bestd = d;
            best = last;
        }
    }
    return best;
}

int
apidesc_method_args(const struct apidesc *api, const char *name, int *min, int *max,
                    const char **params)
{
    char *path = xasprintf("alert:%s", name);
    const struct apidesc_meta *m = meta_find(path);

    (void)api;
    free(path);
    if (m == NULL) {
        return 0;
    }
    count_params(m->params, min, max);
    *params = m->params;
    return 1;
}

int
apidesc_check_meta(const struct apidesc *api, char **errp)
{
    for (size_t i = 0; i < sizeof(apidesc_meta) / sizeof(apidesc_meta[0]); i++) {
        const struct apidesc_entry *e = apidesc_find(api, apidesc_meta[i].path);

        if (strncmp(apidesc_meta[i].path, "alert:", 6) == 0) {
            if (!apidesc_has_method(api, apidesc_meta[i].path + 6)) {
                return kg_err(errp, "%s: described in the metadata table but not an alert method",
                              apidesc_meta[i].path);
            }
            continue;
        }

        if (e == NULL || e->kind != APIDESC_FUNCTION) {
            return kg_err(errp, "%s: described in the metadata table but not a registered function",
                          apidesc_meta[i].path);
        }
    }
    return 0;
}

/* ---- LuaLS annotations ---- */

static const char apidesc_annotations_head[] =
    "---@meta\n"
    "-- The kagari playbook API, for editors with the Lua language server (LuaLS).\n"
    "-- Written by `kagari playbook annotations`: do not edit, run it again instead.\n"
    "\n"
    "---@class kagari.observable\n"
    "---@field type \"user\"|\"ip\"|\"host\"|\"device\"|\"url\"|\"domain\"|\"hash\"|"
    "\"email\"|\"process\"\n"
    "---@field value string\n"
    "---@field role? string\n"
    "\n"
    "---@class kagari.alert\n"
    "---@field id integer the alert's id in this tenant\n"
    "---@field source string e.g. \"entra.signin\"\n"
    "---@field source_id string the source's own id (deduplication key)\n"
    "---@field time number when it happened (epoch seconds)\n"
    "---@field time_iso string when it happened (RFC 3339)\n"
    "---@field received number when kagari accepted it (epoch seconds)\n"
    "---@field received_iso string\n"
    "---@field title string\n"
    "---@field category? string\n"
    "---@field vendor_severity? string\n"
    "---@field severity \"informational\"|\"low\"|\"medium\"|\"high\"|\"critical\"\n"
    "---@field severity_level integer 0 (informational) to 4 (critical)\n"
    "---@field outcome \"unknown\"|\"blocked\"|\"attempted\"|\"succeeded\"\n"
    "---@field observables kagari.observable[]\n"
    "---@field raw table the alert as received\n";

static const char apidesc_annotations_playbook[] =
    "\n"
    "---@class kagari.trigger\n"
    "---@field source? kagari.source|kagari.source[]|string|string[] exact names, or prefixes "
    "ending in *\n"
    "---@field min_severity? \"informational\"|\"low\"|\"medium\"|\"high\"|\"critical\"\n"
    "---@field outcome? string|string[] unknown, blocked, attempted, succeeded\n"
    "\n"
    "---@class kagari.playbook\n"
    "---@field name string\n"
    "---@field description? string\n"
    "---@field on kagari.trigger\n"
    "---@field run fun(alert: kagari.alert): any\n"
    "---@field timeout? number|string\n"
    "---@field instructions? integer\n"
    "---@field dry_run? boolean\n";

/* One function's annotation: summary, @param lines, @return lines, its declaration. */
static int
write_function(struct buf *b, const struct apidesc_entry *e)
{
    struct buf names;
    int rc = 0;

    buf_init(&names, 0);
    if (e->summary != NULL) {
        rc |= buf_printf(b, "---%s\n", e->summary);
    }
    if (e->params == NULL) {
        rc |= buf_puts(b, "---@param ... any\n---@return any ...\n");
        rc |= buf_printf(b, "function %s(...) end\n", e->path);
        buf_free(&names);
        return rc;
    }
    for (const char *p = e->params; *p != '\0';) {
        const char *comma = p, *colon;
        int depth = 0;
        size_t len, nlen;

        while (*comma != '\0' && (depth > 0 || *comma != ',')) {
            depth += *comma == '(' || *comma == '{';
            depth -= *comma == ')' || *comma == '}';
            comma++;
        }
        while (*p == ' ') {
            p++;
        }
        len = (size_t)(comma - p);
        colon = memchr(p, ':', len);
        nlen = colon ? (size_t)(colon - p) : len;
        rc |= buf_printf(b, "---@param %.*s %.*s\n", (int)nlen, p,
                         colon ? (int)(len - nlen - 2) : 3, colon ? colon + 2 : "any");
        if (p[nlen - 1] == '?') {
            nlen--;
        }
        rc |= buf_printf(&names, "%s%.*s", names.len ? ", " : "", (int)nlen, p);
        p = *comma ? comma + 1 : comma;
    }
    for (const char *r = e->returns ? e->returns : ""; *r != '\0';) {
        const char *comma = strchr(r, ',');
        size_t len = comma ? (size_t)(comma - r) : strlen(r);

        while (*r == ' ') {
            r++, len--;
        }
        rc |= buf_printf(b, "---@return %.*s\n", (int)len, r);
        r = comma ? comma + 1 : r + len;
    }
    rc |= buf_printf(b, "function %s(%s) end\n", e->path, names.len ? names.data : "");
    buf_free(&names);
    return rc;
}

int
apidesc_write_annotations(const struct apidesc *api, const char *dir, char **errp)
{
    struct buf b;
    char *path;
    int rc = 0;
    static const char luarc[] = "{\n"
                                "  \"runtime.version\": \"Lua 5.4\",\n"
                                "  \"runtime.builtin\": {\n"
                                "    \"coroutine\": \"disable\",\n"
                                "    \"debug\": \"disable\",\n"
                                "    \"io\": \"disable\",\n"
                                "    \"os\": \"disable\",\n"
                                "    \"package\": \"disable\"\n"
                                "  },\n"
                                "  \"workspace.library\": [\".luals\"],\n"
                                "  \"diagnostics.globals\": []\n"
                                "}\n";

    buf_init(&b, 0);
    rc |= buf_puts(&b, apidesc_annotations_head);
    for (size_t i = 0; i < api->nmethods; i++) {
        char *mpath = xasprintf("alert:%s", api->methods[i]);
        const struct apidesc_meta *m = meta_find(mpath);

        free(mpath);
        if (m != NULL) {
            rc |=
                buf_printf(&b, "---@field %s fun(self: kagari.alert%s%s): %s %s\n", api->methods[i],
                           m->params[0] ? ", " : "", m->params, m->returns, m->summary);
        } else {
            rc |=
                buf_printf(&b, "---@field %s fun(self: kagari.alert, ...): any\n", api->methods[i]);
        }
    }
    rc |= buf_puts(&b, "\n---The alert source names the registered sources give.\n"
                       "---@alias kagari.source\n");
    for (size_t i = 0; i < api->nsources; i++) {
        rc |= buf_printf(&b, "---| \"%s\"\n", api->sources[i]);
    }
    if (api->nsources == 0) {
        rc |= buf_puts(&b, "---| string\n");
    }
    rc |= buf_puts(&b, apidesc_annotations_playbook);
    for (size_t i = 0; i < api->n; i++) {
        const struct apidesc_entry *e = &api->v[i];

        if (e->standard) {
            continue;
        }
        rc |= buf_puts(&b, "\n");
        if (e->kind == APIDESC_TABLE) {
            rc |= buf_printf(&b, "---@class kagari.%s\n%s = {}\n", e->path, e->path);
        } else if (e->kind == APIDESC_FUNCTION) {
            rc |= write_function(&b, e);
        } else {
            rc |= buf_printf(&b, "---@type %s\n%s = nil\n",
                             strcmp(e->value_type, "nil") == 0 ? "any" : e->value_type, e->path);
        }
    }
    path = xasprintf("%s/.luals", dir);
    if (mkdir(path, 0755) == -1 && errno != EEXIST) {
        free(path);
        buf_free(&b);
        return kg_err(errp, "%s/.luals: cannot create the folder", dir);
    }
    free(path);
    path = xasprintf("%s/.luals/kagari.lua", dir);
    if (rc != 0 || util_write_file(path, b.data, b.len, 0644, errp) == -1) {
        free(path);
        buf_free(&b);
        return -1;
    }
    free(path);
    buf_free(&b);
    path = xasprintf("%s/.luarc.json", dir);
    rc = util_write_file(path, luarc, strlen(luarc), 0644, errp);
    free(path);
    return rc;
}
