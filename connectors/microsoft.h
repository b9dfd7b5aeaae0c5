/* microsoft.h: what the Microsoft connectors (graph, idp, security, intune, defender)
 * share: the tenant's app registration block (tenants.<id>.microsoft), its decrypted
 * credential, the Graph and Defender APIs (base URLs, OAuth 2.0 client credentials,
 * published rate limits, the {"error":{"code","message"}} envelope) and the OData
 * helpers for filters and paged lists. */
#ifndef KAGARI_MICROSOFT_H
#define KAGARI_MICROSOFT_H

#include "connectors/call.h"

/* One tenant's Microsoft app registration (Entra ID app, client credentials). */
struct microsoft_conf {
    char *authority;      /* default "https://login.microsoftonline.com" */
    char *tenant_id;      /* directory GUID or domain (required) */
    char *client_id;      /* required */
    char *client_secret;  /* as written: "enc:v1:..." or plain; NULL with a certificate */
    char *certificate;    /* absolute PEM path, or NULL */
    char *private_key;    /* absolute PEM path, or NULL */
    char *graph;          /* base URL, default "https://graph.microsoft.com" */
    char *defender;       /* base URL, default "https://api.securitycenter.microsoft.com" */
    char *defender_scope; /* default "https://api.securitycenter.microsoft.com/.default" */
    char *graph_scope;    /* default "https://graph.microsoft.com/.default" */
    /* poll = { ... }: what the Graph poller reads (connectors/poll_graph.c). Seconds
     * between two polls of each stream; 0 (left out): not polled. */
    struct microsoft_poll {
        double alerts;          /* security/alerts_v2 */
        double incidents;       /* security/incidents */
        double risk_detections; /* identityProtection/riskDetections */
        double signins;         /* auditLogs/signIns (kept as events by default) */
        double overlap;         /* seconds read again before the watermark, default 300 */
        double backfill;        /* how far back a stream's first poll reads, default 1 day */
        int page_size;          /* $top, default 100 */
    } poll;
};

extern const struct config_section microsoft_section;
extern const struct call_api microsoft_graph;
extern const struct call_api microsoft_defender;

/* The connector descriptor fields every Microsoft connector shares. */
int microsoft_tenant_open(const void *conf, void **state, char **errp);
void microsoft_tenant_close(void *state);
#define MICROSOFT_CONNECTOR(name, summary, open)                                                   \
    {                                                                                              \
        name, summary, open, &microsoft_section, microsoft_tenant_open, microsoft_tenant_close,    \
            call_init, call_shutdown                                                               \
    }

/* Paged lists ({"value":[...],"@odata.nextLink":...}) collected into one array,
 * following next links only on the API's own origin, at most 50 pages. */
int microsoft_map_paged(struct call *c, const struct httpc_response *resp, char **result);

/* OData: microsoft_odata_quote appends s with single quotes doubled (a string literal's
 * body). microsoft_push_filter_path pushes "<prefix>?$filter=<encoded filter>" and frees
 * the filter buffer; microsoft_push_list_path the same with "&$top=<top>" ($filter left
 * out when the filter is empty). */
void microsoft_odata_quote(struct buf *b, const char *s);
const char *microsoft_push_filter_path(lua_State *L, const char *prefix, struct buf *filter);
const char *microsoft_push_list_path(lua_State *L, const char *prefix, struct buf *filter,
                                     long long top);
/* The argument table at idx of a paged lookup by user and time, { user = upn, since =
 * epoch seconds or RFC 3339, top = n }: checked (raises on misuse; top 1..max_top,
 * default 100), then pushed as "<prefix>?$filter=userPrincipalName eq '..' and
 * <time_field> ge <since>&$top=n". */
const char *microsoft_push_user_since_path(lua_State *L, int idx, const char *prefix,
                                           const char *time_field, lua_Integer max_top);

#endif
