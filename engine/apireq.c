/* apireq.c: the request context of the people's API and the helpers its handlers share. */
#include "engine/apireq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/json.h"
#include "engine/log.h"
#include "engine/tenant.h"

void
apireq_free(struct api_req *r)
{
    if (r == NULL) {
        return;
    }
    store_user_free(&r->user);
    free(r->roles);
    free(r);
}

/* Headers on every answer: nothing cached, nothing sniffed or framed, HTTPS only. */
static void
apireq_headers(struct http_request *h)
{
    http_reply_header(h, "Cache-Control", "no-store");
    http_reply_header(h, "X-Content-Type-Options", "nosniff");
    http_reply_header(h, "X-Frame-Options", "DENY");
    http_reply_header(h, "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
    http_reply_header(h, "Referrer-Policy", "no-referrer");
    http_reply_header(h, "Strict-Transport-Security", "max-age=31536000");
}

void
apireq_json(struct api_req *r, int status, cJSON *body)
{
    char *text = body != NULL ? json_print(body) : NULL;

    if (r->http != NULL) {
        apireq_headers(r->http);
        http_reply(r->http, status, text != NULL ? "application/json" : NULL, text,
                   text ? strlen(text) : 0);
        r->http = NULL;
    }
    free(text);
    cJSON_Delete(body);
    apireq_free(r);
}

void
apireq_error(struct api_req *r, int status, const char *code, const char *message)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "error", code);
    cJSON_AddStringToObject(o, "message", message);
    apireq_json(r, status, o);
}

void
apireq_not_found(struct api_req *r)
{
    apireq_error(r, 404, "not_found", "no such object");
}

void
apireq_audit(struct api_req *r, const char *tenant, const char *action, const char *target,
             const char *outcome, const char *detail)
{
    struct store_audit a;
    char *err = NULL;

    memset(&a, 0, sizeof(a));
    a.time = util_now_ms();
    a.tenant = (char *)tenant;
    a.actor = r->user.id > 0 ? r->user.name : NULL;
    a.action = (char *)action;
    a.target = (char *)target;
    a.outcome = (char *)outcome;
    a.address = r->addr;
    a.detail = (char *)detail;
    if (store_audit_add(r->api->st, &a, &err) == -1) {
        log_err("api.audit_failed action=%s error=%s", action, log_quote(err ? err : "?"));
        free(err);
    }
    log_info("api.audit action=%s outcome=%s user=%s tenant=%s target=%s address=%s", action,
             outcome, log_quote(a.actor ? a.actor : "-"), log_quote(tenant ? tenant : "-"),
             log_quote(target ? target : "-"), log_quote(r->addr));
}

int
apireq_address_allowed(struct api_state *a, const char *tenant, const char *addr)
{
    struct store_allow *list = NULL;
    size_t n = 0;
    char *err = NULL;
    int any = 0, hit = 0;

    if (store_allow_list(a->st, &list, &n, &err) == -1) {
        log_err("api.allowlist_failed error=%s", log_quote(err ? err : "?"));
        free(err);
        return -1;
    }
    for (size_t i = 0; i < n && !hit; i++) {
        struct cidr c;

        if (strcmp(list[i].tenant, tenant) != 0) {
            continue;
        }
        any = 1;
        if (cidr_parse(list[i].cidr, &c, NULL) == 0 && cidr_contains(&c, addr)) {
            hit = 1;
        }
    }
    free(list);
    return !any || hit;
}

static const char *const role_names[] = { "admin", "engineer", "analyst", "auditor", "operator" };

int
apireq_role_bit(const char *name)
{
    for (size_t i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++) {
        if (name != NULL && strcmp(name, role_names[i]) == 0) {
            return 1 << i;
        }
    }
    return 0;
}

/* An operator's role counts in every tenant, but only from addresses the platform list
 * ("*") admits; a tenant role only from addresses that tenant's list admits. */
int
apireq_roles_in(struct api_req *r, const char *tenant)
{
    int bits = 0;

    for (size_t i = 0; i < r->nroles; i++) {
        const struct store_role *ro = &r->roles[i];

        if (strcmp(ro->role, "operator") == 0 && strcmp(ro->tenant, "*") == 0) {
            if (apireq_address_allowed(r->api, "*", r->addr) == 1) {
                bits |= ROLE_OPERATOR;
            }
        } else if (strcmp(ro->tenant, tenant) == 0 &&
                   apireq_address_allowed(r->api, tenant, r->addr) == 1) {
            bits |= apireq_role_bit(ro->role);
        }
    }
    return bits;
}

void
apireq_add_time(cJSON *o, const char *key, int64_t ms)
{
    char ts[32];

    if (ms <= 0) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    util_fmt_time(ms, ts);
    cJSON_AddStringToObject(o, key, ts);
}

int64_t
apireq_parse_id(const char *s)
{
    int64_t v = 0;
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > 18 || s[0] == '0') {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

struct tenant *
apireq_tenant(struct api_req *r)
{
    struct tenant *t = tenant_find(r->param[0]);

    if (t == NULL || t->db == NULL) {
        apireq_not_found(r);
        return NULL;
    }
    return t;
}

cJSON *
apireq_body_object(struct api_req *r)
{
    size_t len = 0;
    const char *body = http_request_body(r->http, &len);
    cJSON *root = NULL;
    char *err = NULL;

    if (json_parse_strict(body ? body : "", len, 4, &root, &err) == -1 || !cJSON_IsObject(root)) {
        apireq_error(r, 400, "bad_json", err ? err : "expected a JSON object");
        free(err);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}
