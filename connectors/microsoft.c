/* microsoft.c: the Microsoft account block, credentials, APIs and OData helpers shared
 * by the graph, idp, security, intune and defender connectors (reference:
 * connectors.md sections 0 and 1). */
#include "connectors/microsoft.h"

#include <lauxlib.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* ---- the settings block: tenants.<id>.microsoft ---- */

#define MS(member) offsetof(struct microsoft_conf, member)

#define MS_AUTHORITY "https://login.microsoftonline.com"
#define MS_GRAPH "https://graph.microsoft.com"
#define MS_DEFENDER "https://api.securitycenter.microsoft.com"
#define MS_GRAPH_SCOPE "https://graph.microsoft.com/.default"
#define MS_DEFENDER_SCOPE "https://api.securitycenter.microsoft.com/.default"

static const struct config_field microsoft_poll_fields[] = {
    { "alerts", CONFIG_DURATION, MS(poll.alerts), 0, 86400, NULL, 0 },
    { "incidents", CONFIG_DURATION, MS(poll.incidents), 0, 86400, NULL, 0 },
    { "risk_detections", CONFIG_DURATION, MS(poll.risk_detections), 0, 86400, NULL, 0 },
    { "signins", CONFIG_DURATION, MS(poll.signins), 0, 86400, NULL, 0 },
    { "overlap", CONFIG_DURATION, MS(poll.overlap), 0, 86400, NULL, 0 },
    { "backfill", CONFIG_DURATION, MS(poll.backfill), 0, 90 * 86400, NULL, 0 },
    { "page_size", CONFIG_INT, MS(poll.page_size), 1, 1000, NULL, 0 },
    CONFIG_FIELDS_END,
};

static const struct config_field microsoft_fields[] = {
    { "tenant_id", CONFIG_NAME, MS(tenant_id), 0, 0, NULL, 0 },
    { "client_id", CONFIG_NAME, MS(client_id), 0, 0, NULL, 0 },
    { "client_secret", CONFIG_STRING, MS(client_secret), 0, 0, NULL, 0 },
    { "certificate", CONFIG_PATH, MS(certificate), 0, 0, NULL, 0 },
    { "private_key", CONFIG_PATH, MS(private_key), 0, 0, NULL, 0 },
    { "authority", CONFIG_URL, MS(authority), 0, 0, NULL, 0 },
    { "graph", CONFIG_URL, MS(graph), 0, 0, NULL, 0 },
    { "defender", CONFIG_URL, MS(defender), 0, 0, NULL, 0 },
    { "defender_scope", CONFIG_SCOPE, MS(defender_scope), 0, 0, NULL, 0 },
    { "graph_scope", CONFIG_SCOPE, MS(graph_scope), 0, 0, NULL, 0 },
    { "poll", CONFIG_TABLE, 0, 0, 0, microsoft_poll_fields, 0 },
    CONFIG_FIELDS_END,
};

static void
set_default(char **field, const char *value)
{
    if (*field == NULL) {
        *field = xstrdup(value);
    }
}

/* The ids are required, and exactly one kind of credential (a client secret, or a
 * certificate with its key); the URLs left out get their defaults. */
static int
microsoft_check(void *conf, char **errp)
{
    struct microsoft_conf *ms = conf;

    if (ms->tenant_id == NULL) {
        return kg_err(errp, "tenant_id is required (the directory id of the customer's Entra ID)");
    }
    if (ms->client_id == NULL) {
        return kg_err(errp, "client_id is required (the application id of the app registration)");
    }
    if (ms->client_secret != NULL && (ms->certificate != NULL || ms->private_key != NULL)) {
        return kg_err(errp, "set either client_secret or certificate and private_key, not both");
    }
    if (ms->client_secret == NULL && ms->certificate == NULL && ms->private_key == NULL) {
        return kg_err(errp, "a credential is required: client_secret, or certificate and "
                            "private_key");
    }
    if (ms->client_secret == NULL && (ms->certificate == NULL || ms->private_key == NULL)) {
        return kg_err(errp, "certificate and private_key must be set together");
    }
    set_default(&ms->authority, MS_AUTHORITY);
    set_default(&ms->graph, MS_GRAPH);
    set_default(&ms->defender, MS_DEFENDER);
    set_default(&ms->graph_scope, MS_GRAPH_SCOPE);
    set_default(&ms->defender_scope, MS_DEFENDER_SCOPE);
    /* A poll shorter than a few seconds only spends the tenant's Graph quota; one longer
     * than a day leaves detections unseen for too long. */
    {
        const double iv[] = { ms->poll.alerts, ms->poll.incidents, ms->poll.risk_detections,
                              ms->poll.signins };

        for (size_t i = 0; i < sizeof(iv) / sizeof(iv[0]); i++) {
            if (iv[i] != 0 && (iv[i] < 5 || iv[i] > 86400)) {
                return kg_err(errp, "poll: an interval must be from 5 s to 1 day (or 0: not "
                                    "polled)");
            }
        }
    }
    if (ms->poll.overlap > 86400) {
        return kg_err(errp, "poll.overlap: at most 1 day");
    }
    if (ms->poll.backfill > 90 * 86400) {
        return kg_err(errp, "poll.backfill: at most 90 days");
    }
    if (ms->poll.overlap == 0) {
        ms->poll.overlap = 300;
    }
    if (ms->poll.backfill == 0) {
        ms->poll.backfill = 86400;
    }
    if (ms->poll.page_size == 0) {
        ms->poll.page_size = 100;
    }
    return 0;
}

static const char microsoft_example[] =
    "--         -- The customer's Entra ID app registration (client credentials grant).\n"
    "--         microsoft = {\n"
    "--             -- Directory (tenant) id: a GUID, or a domain such as "
    "contoso.onmicrosoft.com.\n"
    "--             tenant_id = \"11111111-2222-3333-4444-555555555555\",\n"
    "--             -- Application (client) id of the app registration.\n"
    "--             client_id = \"66666666-7777-8888-9999-000000000000\",\n"
    "--             -- Client secret, written encrypted: the output of `kagari secret encrypt`.\n"
    "--             client_secret = \"enc:v1:...\",\n"
    "--             -- Or, instead of client_secret, a certificate (PEM) and its key (0600).\n"
    "--             -- certificate = \"certs/demo.pem\",\n"
    "--             -- private_key = \"certs/demo.key\",\n"
    "--             -- Sign-in endpoint (change it for national clouds only).\n"
    "--             authority = \"" MS_AUTHORITY "\",\n"
    "--             -- Microsoft Graph base URL.\n"
    "--             graph = \"" MS_GRAPH "\",\n"
    "--             -- Microsoft Defender for Endpoint API base URL.\n"
    "--             defender = \"" MS_DEFENDER "\",\n"
    "--             -- Scope of the tokens requested for the Defender API.\n"
    "--             defender_scope = \"" MS_DEFENDER_SCOPE "\",\n"
    "--             -- Scope of the tokens requested for Graph (national clouds differ).\n"
    "--             graph_scope = \"" MS_GRAPH_SCOPE "\",\n"
    "--             -- Poll Graph for detections: time between two polls of each stream\n"
    "--             -- (left out or 0: not polled). docs/sources.md \"Graph polling\".\n"
    "--             -- poll = { alerts = \"1m\", incidents = \"1m\", risk_detections = \"5m\",\n"
    "--             --          signins = \"5m\", overlap = \"5m\", backfill = \"1d\",\n"
    "--             --          page_size = 100 },\n"
    "--         },\n";

const struct config_section microsoft_section = {
    "microsoft",     microsoft_fields,  sizeof(struct microsoft_conf),
    microsoft_check, microsoft_example,
};

/* ---- per tenant: the decrypted client secret ---- */

int
microsoft_tenant_open(const void *conf, void **state, char **errp)
{
    const struct microsoft_conf *ms = conf;
    char *secret;

    *state = NULL;
    if (ms->client_secret == NULL) {
        return 0;
    }
    secret = secret_decrypt(ms->client_secret, errp);
    if (secret == NULL) {
        return -1;
    }
    secret_register(secret);
    *state = secret;
    return 0;
}

void
microsoft_tenant_close(void *state)
{
    secret_free(state);
}

/* ---- the APIs ---- */

static const char not_configured[] =
    "no Microsoft app is configured for this tenant (tenants.<id>.microsoft in kagari.conf.lua)";

static const char *
graph_base(const struct tenant *t)
{
    const struct microsoft_conf *ms = tenant_conf(t, &microsoft_section);

    return ms != NULL ? ms->graph : NULL;
}

static const char *
defender_base(const struct tenant *t)
{
    const struct microsoft_conf *ms = tenant_conf(t, &microsoft_section);

    return ms != NULL ? ms->defender : NULL;
}

static int
credentials(const struct tenant *t, struct call_cred *cred, int defender, char **errp)
{
    const struct microsoft_conf *ms = tenant_conf(t, &microsoft_section);

    if (ms == NULL) {
        return kg_err(errp, "%s", not_configured);
    }
    cred->kind = CALL_AUTH_OAUTH2;
    cred->app.authority = ms->authority;
    cred->app.tenant = ms->tenant_id;
    cred->app.client_id = ms->client_id;
    cred->app.secret = tenant_state(t, &microsoft_section);
    cred->app.cert_file = ms->certificate;
    cred->app.key_file = ms->private_key;
    cred->scope = defender ? ms->defender_scope : ms->graph_scope;
    return 0;
}

static int
graph_credentials(const struct tenant *t, struct call_cred *cred, char **errp)
{
    return credentials(t, cred, 0, errp);
}

static int
defender_credentials(const struct tenant *t, struct call_cred *cred, char **errp)
{
    return credentials(t, cred, 1, errp);
}

/* The code and message of {"error":{"code","message"}}. */
static char *
error_text(const struct httpc_response *resp)
{
    cJSON *root = NULL;
    char *out = NULL;

    if (json_parse_strict(resp->body, resp->body_len, 32, &root, NULL) == 0) {
        const cJSON *e = json_get(root, "error");
        const char *code = e ? json_get_string(e, "code") : NULL;
        const char *msg = e ? json_get_string(e, "message") : NULL;

        if (code != NULL) {
            out = xasprintf("%s: %.300s", code, msg ? msg : "");
        }
    }
    cJSON_Delete(root);
    return out;
}

/* The vendors' published limits (reference: connectors.md), per tenant. */
static const struct call_limit graph_limits[] = {
    { "idp", 1, 1 },
    { "graph.users", 3000.0 / 150, 3000 },
    { "graph.signins", 0.5, 5 },
    { "graph.security", 150.0 / 60, 150 },
    { "intune", 200.0 / 20, 200 },
    { NULL, 0, 0 },
};

static const struct call_limit defender_limits[] = {
    { "defender", 100.0 / 60, 100 },
    { "defender", 1500.0 / 3600, 1500 },
    { NULL, 0, 0 },
};

const struct call_api microsoft_graph = {
    "graph", graph_base, not_configured, graph_credentials, NULL, graph_limits, error_text,
};

const struct call_api microsoft_defender = {
    "defender", defender_base,   not_configured, defender_credentials,
    NULL,       defender_limits, error_text,
};

/* ---- paged lists ---- */

int
microsoft_map_paged(struct call *c, const struct httpc_response *resp, char **result)
{
    cJSON *root = NULL;
    const cJSON *value, *it;
    cJSON *acc;
    int rc;

    if (resp->status < 200 || resp->status >= 300) {
        *result = call_error_text(c, resp);
        return 0;
    }
    if (json_parse_strict(resp->body, resp->body_len, JSON_MAX_DEPTH, &root, NULL) == -1 ||
        !cJSON_IsArray(value = json_get(root, "value"))) {
        cJSON_Delete(root);
        *result = xasprintf("%s: the answer is not a list page", call_kind(c));
        return 0;
    }
    acc = call_acc(c);
    cJSON_ArrayForEach(it, value)
    {
        cJSON_AddItemToArray(acc, cJSON_Duplicate(it, 1));
    }
    rc = call_next_page(c, json_get_string(root, "@odata.nextLink"), result);
    cJSON_Delete(root);
    if (rc == 1) {
        *result = json_print(acc);
    }
    return rc;
}

/* ---- OData ---- */

void
microsoft_odata_quote(struct buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        (void)!buf_append(b, s, 1);
        if (*s == '\'') {
            (void)!buf_append(b, "'", 1);
        }
    }
}

/* Push "<prefix>?$filter=<encoded>[&$top=<top>]" (top <= 0: none; with list, an empty
 * filter is left out) and free the filter buffer. */
static const char *
push_query(lua_State *L, const char *prefix, struct buf *filter, long long top, int list)
{
    char *esc = call_escape(filter->data ? filter->data : "");
    struct buf path;

    buf_init(&path, 0);
    (void)!buf_puts(&path, prefix);
    if (!list || filter->len > 0) {
        (void)!buf_printf(&path, "?$filter=%s", esc);
    }
    if (top > 0) {
        (void)!buf_printf(&path, "%s$top=%lld", path.len > strlen(prefix) ? "&" : "?", top);
    }
    free(esc);
    buf_free(filter);
    lua_pushlstring(L, path.data, path.len);
    buf_free(&path);
    return lua_tostring(L, -1);
}

const char *
microsoft_push_filter_path(lua_State *L, const char *prefix, struct buf *filter)
{
    return push_query(L, prefix, filter, 0, 0);
}

const char *
microsoft_push_list_path(lua_State *L, const char *prefix, struct buf *filter, long long top)
{
    return push_query(L, prefix, filter, top, 1);
}

const char *
microsoft_push_user_since_path(lua_State *L, int idx, const char *prefix, const char *time_field,
                               lua_Integer max_top)
{
    char since[32] = "";
    const char *user;
    lua_Integer top;
    struct buf f;

    /* Every check first: nothing below may raise while C memory is held. */
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "user");
    user = luaL_optstring(L, -1, NULL);
    luaL_argcheck(L, user == NULL || (user[0] != '\0' && strlen(user) <= CALL_ID_MAX), idx,
                  "user: a user principal name");
    lua_getfield(L, idx, "since");
    if (!lua_isnil(L, -1)) {
        int64_t ms = 0;
        char iso[32];

        if (lua_type(L, -1) == LUA_TNUMBER) {
            lua_Number secs = lua_tonumber(L, -1);

            luaL_argcheck(L, secs >= 0 && secs < 253402300800.0, idx, "since: epoch seconds");
            ms = (int64_t)(secs * 1000);
        } else if (lua_type(L, -1) != LUA_TSTRING ||
                   util_parse_time(lua_tostring(L, -1), &ms) == -1) {
            luaL_argerror(L, idx, "since: expected epoch seconds or an RFC 3339 time");
        }
        util_fmt_time(ms, iso);
        snprintf(since, sizeof(since), "%.19sZ", iso); /* OData: whole seconds, UTC */
    }
    lua_getfield(L, idx, "top");
    top = luaL_optinteger(L, -1, 100);
    luaL_argcheck(L, top >= 1 && top <= max_top, idx, "top: out of range");
    buf_init(&f, 0);
    if (user != NULL) {
        (void)!buf_puts(&f, "userPrincipalName eq '");
        microsoft_odata_quote(&f, user);
        (void)!buf_puts(&f, "'");
    }
    if (since[0] != '\0') {
        (void)!buf_printf(&f, "%s%s ge %s", f.len ? " and " : "", time_field, since);
    }
    return microsoft_push_list_path(L, prefix, &f, (long long)top);
}
