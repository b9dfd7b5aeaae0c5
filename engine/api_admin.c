/* api_admin.c: tenant administration through the people's API. */
#include "engine/api_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/json.h"
#include "engine/log.h"
#include "engine/secret.h"
#include "engine/totp.h"

/* The body's string member key (at most max bytes), or NULL after answering 400. */
static char *
body_string(struct api_req *r, const char *key, size_t max)
{
    size_t len = 0;
    const char *body = http_request_body(r->http, &len), *v;
    cJSON *root = NULL;
    char *err = NULL, *out = NULL;

    if (json_parse_strict(body ? body : "", len, 4, &root, &err) == 0 && cJSON_IsObject(root) &&
        (v = json_get_string(root, key)) != NULL && strlen(v) <= max) {
        out = xstrdup(v);
    }
    if (out == NULL) {
        char *msg = xasprintf("expected {\"%s\": text}", key);

        apireq_error(r, 400, "bad_request", msg);
        free(msg);
    }
    free(err);
    cJSON_Delete(root);
    return out;
}

/* The user named in the path who has a role in the tenant, or 0 after answering 404. */
static int
tenant_user(struct api_req *r, struct store_user *u, char *role, size_t rn)
{
    struct store_role *roles = NULL;
    size_t n = 0;
    int found = 0;

    if (store_user_get(r->api->st, r->param[1], u, NULL) != 1) {
        apireq_not_found(r);
        return 0;
    }
    if (store_roles_get(r->api->st, u->id, &roles, &n, NULL) == 0) {
        for (size_t i = 0; i < n && !found; i++) {
            if (strcmp(roles[i].tenant, r->param[0]) == 0) {
                snprintf(role, rn, "%s", roles[i].role);
                found = 1;
            }
        }
    }
    free(roles);
    if (!found) {
        store_user_free(u);
        apireq_not_found(r);
    }
    return found;
}

void
api_user_role(struct api_req *r)
{
    static const char *const roles[] = { "admin", "engineer", "analyst", "auditor", "none" };
    char *role = body_string(r, "role", 16), detail[96], *err = NULL;
    struct store_user u;
    int ok = 0;

    if (role == NULL) {
        return;
    }
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        ok |= strcmp(role, roles[i]) == 0;
    }
    if (!ok) {
        free(role);
        apireq_error(r, 400, "bad_request", "role: admin, engineer, analyst, auditor or none");
        return;
    }
    if (strcmp(r->param[1], r->user.name) == 0) {
        free(role);
        apireq_error(r, 403, "forbidden", "another admin changes your own role");
        return;
    }
    if (store_user_get(r->api->st, r->param[1], &u, NULL) != 1) {
        free(role);
        apireq_not_found(r);
        return;
    }
    if (store_role_set(r->api->st, u.id, r->param[0], strcmp(role, "none") ? role : NULL, &err) ==
        -1) {
        log_err("api.role_failed error=%s", log_quote(err ? err : "?"));
        free(err);
        store_user_free(&u);
        free(role);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    snprintf(detail, sizeof(detail), "{\"role\":\"%s\"}", role);
    apireq_audit(r, r->param[0], "user.role", u.name, "ok", detail);
    store_user_free(&u);
    {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "user", r->param[1]);
        cJSON_AddStringToObject(o, "tenant", r->param[0]);
        cJSON_AddStringToObject(o, "role", role);
        free(role);
        apireq_json(r, 200, o);
    }
}

void
api_user_reset_totp(struct api_req *r)
{
    struct store_user u;
    char role[16], secret[TOTP_SECRET_CHARS + 1], *sealed = NULL, *err = NULL;

    if (!tenant_user(r, &u, role, sizeof(role))) {
        return;
    }
    if (totp_new_secret(secret) == -1) {
        store_user_free(&u);
        apireq_error(r, 500, "internal", "no randomness");
        return;
    }
    /* With the secrets key loaded the secret is stored encrypted, as the CLI does. */
    sealed = secret_encrypt(secret, NULL);
    if (sealed == NULL) {
        sealed = xstrdup(secret);
    }
    memset(secret, 0, sizeof(secret));
    if (store_user_set_totp(r->api->st, u.id, sealed, &err) == -1 ||
        store_session_delete_user(r->api->st, u.id, &err) == -1) {
        log_err("api.reset_totp_failed error=%s", log_quote(err ? err : "?"));
        free(err);
        free(sealed);
        store_user_free(&u);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    free(sealed);
    apireq_audit(r, r->param[0], "user.reset_totp", u.name, "ok", NULL);
    store_user_free(&u);
    apireq_json(r, 204, NULL);
}

void
api_allowlist(struct api_req *r)
{
    struct store_allow *v = NULL;
    size_t n = 0;
    cJSON *o, *arr;

    if (store_allow_list(r->api->st, &v, &n, NULL) == -1) {
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    o = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(o, "cidrs");
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].tenant, r->param[0]) == 0) {
            cJSON_AddItemToArray(arr, cJSON_CreateString(v[i].cidr));
        }
    }
    free(v);
    cJSON_AddStringToObject(o, "your_address", r->addr);
    apireq_json(r, 200, o);
}

/* 1 when the caller confirmed a change that cuts them off: {"confirm_lockout": true} in
 * the body of an add, ?confirm_lockout=1 on a removal. */
static int
lockout_confirmed(struct api_req *r, int add)
{
    const char *q;
    size_t len = 0;
    const char *body;
    cJSON *root = NULL;
    char *err = NULL;
    int yes;

    if (!add) {
        q = http_request_param(r->http, "confirm_lockout");
        return q != NULL && strcmp(q, "1") == 0;
    }
    body = http_request_body(r->http, &len);
    yes = json_parse_strict(body ? body : "", len, 4, &root, &err) == 0 &&
          cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "confirm_lockout"));
    free(err);
    cJSON_Delete(root);
    return yes;
}

/* After a change: 1 when the caller can still reach the tenant from where they are, or
 * confirmed that they will not (*cut set). A change that would cut them off unconfirmed
 * is undone and refused (409). */
static int
still_reachable(struct api_req *r, int added, const char *cidr, int *cut)
{
    char *err = NULL;

    *cut = 0;
    if (apireq_roles_in(r, r->param[0]) != 0) {
        return 1;
    }
    if (lockout_confirmed(r, added)) {
        *cut = 1;
        return 1;
    }
    if (added) {
        (void)store_allow_remove(r->api->st, r->param[0], cidr, &err);
    } else {
        (void)!store_allow_add(r->api->st, r->param[0], cidr, &err);
    }
    free(err);
    apireq_error(r, 409, "would_lock_you_out",
                 "after this change your own address would not be allowed: add it first, or "
                 "confirm with confirm_lockout");
    return 0;
}

static void
allowlist_change(struct api_req *r, int add)
{
    const char *q = add ? NULL : http_request_param(r->http, "cidr");
    char *cidr = add ? body_string(r, "cidr", 63) : (q ? xstrdup(q) : NULL);
    struct cidr c;
    char *err = NULL, detail[128];
    int rc, cut = 0;

    if (cidr == NULL) {
        if (!add) {
            apireq_error(r, 400, "bad_request", "expected ?cidr=...");
        }
        return;
    }
    if (cidr_parse(cidr, &c, &err) == -1) {
        apireq_error(r, 400, "bad_cidr", err);
        free(err);
        free(cidr);
        return;
    }
    rc = add ? store_allow_add(r->api->st, r->param[0], cidr, &err)
             : store_allow_remove(r->api->st, r->param[0], cidr, &err);
    if (rc == -1) {
        free(err);
        free(cidr);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    if (!add && rc == 0) {
        free(cidr);
        apireq_not_found(r);
        return;
    }
    if (!still_reachable(r, add, cidr, &cut)) {
        free(cidr);
        return;
    }
    snprintf(detail, sizeof(detail), "{\"cidr\":\"%s\"%s}", cidr,
             cut ? ",\"locked_out\":true" : "");
    apireq_audit(r, r->param[0], add ? "allowlist.add" : "allowlist.remove", r->param[0], "ok",
                 detail);
    free(cidr);
    api_allowlist(r);
}

void
api_allowlist_add(struct api_req *r)
{
    allowlist_change(r, 1);
}

void
api_allowlist_remove(struct api_req *r)
{
    allowlist_change(r, 0);
}
