/* api.c: the people's API listener: settings, client address, authentication,
 * allow-lists, CSRF and the route table (handlers in engine/api_login.c and
 * engine/api_read.c). */
#include "engine/api.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/api_admin.h"
#include "engine/api_approve.h"
#include "engine/api_escalate.h"
#include "engine/api_login.h"
#include "engine/api_playbook.h"
#include "engine/api_read.h"
#include "engine/api_run.h"
#include "engine/api_settings.h"
#include "engine/http.h"
#include "engine/log.h"
#include "engine/loop.h"
#include "engine/metrics.h"
#include "engine/tenant.h"
#include "engine/tls.h"
#include "engine/work.h"
#include "portal/portal.h"

#define API_WORK_QUEUE 64 /* password checks waiting; more logins at once get 503 */

struct api {
    struct api_state state;
    struct http_server *srv;
    SSL_CTX *ssl;
};

/* ---- settings ---- */

#define AC(member) offsetof(struct api_conf, member)

static const struct config_field api_fields[] = {
    { "listen", CONFIG_LISTEN, AC(listen), 0, 0, NULL, 0 },
    { "cert_file", CONFIG_PATH, AC(cert_file), 0, 0, NULL, 0 },
    { "key_file", CONFIG_PATH, AC(key_file), 0, 0, NULL, 0 },
    { "trusted_proxies", CONFIG_STRING, AC(trusted_proxies), 0, 0, NULL, 0 },
    { "session_idle", CONFIG_DURATION, AC(session_idle), 1, 86400, NULL, 0 },
    { "session_max", CONFIG_DURATION, AC(session_max), 1, 30 * 86400, NULL, 0 },
    { "password_memory", CONFIG_SIZE, AC(password_memory), 1 << 20, 4.0 * (1 << 30), NULL, 0 },
    { "password_passes", CONFIG_INT, AC(password_passes), 1, 16, NULL, 0 },
    { "issuer", CONFIG_STRING, AC(issuer), 0, 0, NULL, 0 },
    { "max_conns", CONFIG_INT, AC(max_conns), 1, 65536, NULL, 0 },
    CONFIG_FIELDS_END,
};

/* Parse "a, b/24, c" into CIDR blocks. */
static int
api_parse_proxies(const char *text, struct cidr **out, size_t *n, char **errp)
{
    char *copy = xstrdup(text ? text : ""), *save = NULL;

    *out = NULL;
    *n = 0;
    for (char *tok = strtok_r(copy, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
        *out = xrealloc(*out, (*n + 1) * sizeof(**out));
        if (cidr_parse(tok, &(*out)[*n], errp) == -1) {
            free(copy);
            free(*out);
            *out = NULL;
            *n = 0;
            return -1;
        }
        (*n)++;
    }
    free(copy);
    return 0;
}

static int
api_check(void *conf, char **errp)
{
    struct api_conf *c = conf;
    struct cidr *v = NULL;
    size_t n = 0;

    if (c->session_idle == 0) {
        c->session_idle = 1800;
    }
    if (c->session_max == 0) {
        c->session_max = 12 * 3600;
    }
    if (c->session_idle > c->session_max) {
        return kg_err(errp, "session_idle is longer than session_max");
    }
    if (c->password_memory == 0) {
        c->password_memory = 64u << 20;
    }
    if (c->password_passes == 0) {
        c->password_passes = 3;
    }
    if (c->max_conns == 0) {
        c->max_conns = 256;
    }
    if (c->issuer == NULL) {
        c->issuer = xstrdup("kagari");
    }
    if (c->listen != NULL && (c->cert_file == NULL || c->key_file == NULL)) {
        return kg_err(errp, "cert_file and key_file are required: the API is served over "
                            "HTTPS only");
    }
    if (api_parse_proxies(c->trusted_proxies, &v, &n, errp) == -1) {
        return -1;
    }
    free(v);
    return 0;
}

const struct config_section api_config = {
    "api", api_fields, sizeof(struct api_conf), api_check, NULL,
};

void
api_register(void)
{
    config_add_global_section(&api_config);
}

const struct api_conf *
api_conf(const struct config *cfg)
{
    return config_block(cfg, &api_config);
}

struct auth_cost
api_cost(const struct api_conf *c)
{
    struct auth_cost cost = { (uint32_t)(c->password_memory / 1024), (uint32_t)c->password_passes,
                              1 };

    return cost;
}

/* ---- the client's address ---- */

static int
api_is_proxy(const struct api_state *a, const char *addr)
{
    for (size_t i = 0; i < a->nproxies; i++) {
        if (cidr_contains(&a->proxies[i], addr)) {
            return 1;
        }
    }
    return 0;
}

/* The peer, or, when the peer is a trusted proxy, the right-most X-Forwarded-For entry
 * that is not itself a trusted proxy (entries further left are the client's own claims
 * and prove nothing). -1 when that header is malformed. */
static int
api_client_addr(const struct api_state *a, struct http_request *h, char *out, size_t n)
{
    const char *peer = http_request_peer(h);
    const char *xff = http_request_header(h, "X-Forwarded-For");
    char *copy, *p;
    int rc = 0;

    snprintf(out, n, "%s", peer);
    if (xff == NULL || !api_is_proxy(a, peer)) {
        return 0;
    }
    copy = xstrdup(xff);
    p = copy + strlen(copy);
    for (;;) {
        char *start = p;
        struct cidr c;
        char *e;

        while (start > copy && start[-1] != ',') {
            start--;
        }
        while (*start == ' ' || *start == '\t') {
            start++;
        }
        e = start + strlen(start);
        while (e > start && (e[-1] == ' ' || e[-1] == '\t')) {
            *--e = '\0';
        }
        if (cidr_parse_addr(start, &c) == -1 || strlen(start) >= n) {
            rc = -1;
            break;
        }
        snprintf(out, n, "%s", start);
        if (!api_is_proxy(a, start) || start == copy) {
            break;
        }
        p = start;
        while (p > copy && p[-1] != ',') {
            p--;
        }
        if (p == copy) {
            break;
        }
        p[-1] = '\0';
        p = p - 1;
    }
    free(copy);
    return rc;
}

/* ---- authentication ---- */

/* Refuse with 401 and the reason. */
static void
api_unauthorized(struct api_req *r, const char *code, const char *message)
{
    r->api->denied++;
    if (r->http != NULL) {
        http_reply_header(r->http, "WWW-Authenticate", "Bearer realm=\"kagari\"");
    }
    apireq_error(r, 401, code, message);
}

/* By a personal API token (Authorization: Bearer kgp_...). 0, or -1 answered. */
static int
api_auth_token(struct api_req *r, const char *token)
{
    struct store_token t;
    char hash[65];
    char *err = NULL;
    int found;

    auth_digest(token, hash);
    found = store_token_find(r->api->st, hash, &t, &err);
    if (found == -1) {
        log_err("api.token_lookup_failed error=%s", log_quote(err ? err : "?"));
        free(err);
        apireq_error(r, 500, "internal", "the credentials could not be checked");
        return -1;
    }
    if (found == 0 || t.revoked > 0 || (t.expires > 0 && t.expires <= r->now)) {
        apireq_audit(r, NULL, "auth.token", found ? t.name : NULL, "refused",
                     found ? (t.revoked ? "{\"reason\":\"revoked\"}" : "{\"reason\":\"expired\"}")
                           : "{\"reason\":\"unknown\"}");
        api_unauthorized(r, "unauthorized", "unknown, revoked or expired token");
        return -1;
    }
    if (store_user_get_id(r->api->st, t.user_id, &r->user, &err) != 1) {
        free(err);
        api_unauthorized(r, "unauthorized", "unknown, revoked or expired token");
        return -1;
    }
    r->token_id = t.id;
    if (t.last_used < r->now - 60000 && store_token_used(r->api->st, t.id, r->now, &err) == -1) {
        log_warn("api.token_touch_failed error=%s", log_quote(err ? err : "?"));
        free(err);
    }
    return 0;
}

/* By the session cookie: expired sessions (idle or absolute) are deleted. */
static int
api_auth_session(struct api_req *r, const char *token)
{
    const struct api_conf *c = r->api->conf;
    struct store_session s;
    char *err = NULL;
    int found;
    int64_t touch_ms;

    auth_digest(token, r->session_hash);
    found = store_session_get(r->api->st, r->session_hash, &s, &err);
    if (found == -1) {
        log_err("api.session_lookup_failed error=%s", log_quote(err ? err : "?"));
        free(err);
        apireq_error(r, 500, "internal", "the session could not be checked");
        return -1;
    }
    if (found == 0) {
        r->session_hash[0] = '\0';
        api_unauthorized(r, "unauthorized", "no session: log in");
        return -1;
    }
    if (r->now - s.last_seen > (int64_t)(c->session_idle * 1000) ||
        r->now - s.created > (int64_t)(c->session_max * 1000)) {
        (void)!store_session_delete(r->api->st, r->session_hash, NULL);
        r->session_hash[0] = '\0';
        apireq_audit(r, NULL, "auth.session", NULL, "expired", NULL);
        api_unauthorized(r, "session_expired", "the session has expired: log in again");
        return -1;
    }
    if (store_user_get_id(r->api->st, s.user_id, &r->user, &err) != 1) {
        free(err);
        api_unauthorized(r, "unauthorized", "no session: log in");
        return -1;
    }
    /* Writing last_seen on every request would cost a commit each: a quarter of the idle
     * time (at most a minute) is precise enough. */
    touch_ms = (int64_t)(c->session_idle * 250);
    if (touch_ms > 60000) {
        touch_ms = 60000;
    }
    if (r->now - s.last_seen >= touch_ms &&
        store_session_touch(r->api->st, r->session_hash, r->now, &err) == -1) {
        log_warn("api.session_touch_failed error=%s", log_quote(err ? err : "?"));
        free(err);
    }
    /* A change made with the cookie must carry the session's CSRF token: another site
     * can make the browser send the cookie, never read the token. */
    if (strcmp(http_request_method(r->http), "GET") != 0 &&
        strcmp(http_request_method(r->http), "HEAD") != 0) {
        const char *given = http_request_header(r->http, "X-CSRF-Token");

        if (given == NULL || !auth_equal(given, s.csrf)) {
            r->api->denied++;
            apireq_audit(r, NULL, "auth.csrf", http_request_path(r->http), "refused", NULL);
            apireq_error(r, 403, "csrf_failed",
                         "a change with the session cookie needs the X-CSRF-Token header");
            return -1;
        }
    }
    return 0;
}

/* Who is calling; then their roles, and whether any of them may be used from here. */
static int
api_authenticate(struct api_req *r, int session_only)
{
    const char *authz = http_request_header(r->http, "Authorization");
    const char *cookies = http_request_header(r->http, "Cookie");
    char token[128];
    char *err = NULL;
    int usable = 0;

    if (authz != NULL) {
        if (session_only) {
            api_unauthorized(r, "session_required", "this needs a logged-in session");
            return -1;
        }
        if (strncasecmp(authz, "Bearer ", 7) != 0 || strncmp(authz + 7, "kgp_", 4) != 0) {
            api_unauthorized(r, "unauthorized", "expected Authorization: Bearer kgp_...");
            return -1;
        }
        if (api_auth_token(r, authz + 7) == -1) {
            return -1;
        }
    } else if (cookies != NULL && auth_cookie(cookies, API_SESSION_COOKIE, token, sizeof(token))) {
        if (api_auth_session(r, token) == -1) {
            return -1;
        }
    } else {
        api_unauthorized(r, "unauthorized", "log in, or send a personal API token");
        return -1;
    }
    if (r->user.disabled) {
        if (r->session_hash[0] != '\0') {
            (void)!store_session_delete(r->api->st, r->session_hash, NULL);
        }
        apireq_audit(r, NULL, "auth.disabled", r->user.name, "refused", NULL);
        api_unauthorized(r, "unauthorized", "the account is disabled");
        return -1;
    }
    if (store_roles_get(r->api->st, r->user.id, &r->roles, &r->nroles, &err) == -1) {
        log_err("api.roles_failed error=%s", log_quote(err ? err : "?"));
        free(err);
        apireq_error(r, 500, "internal", "the roles could not be read");
        return -1;
    }
    for (size_t i = 0; i < r->nroles && !usable; i++) {
        usable =
            apireq_roles_in(r, strcmp(r->roles[i].tenant, "*") == 0 ? "-" : r->roles[i].tenant);
    }
    if (r->nroles > 0 && !usable) {
        r->api->denied++;
        apireq_audit(r, NULL, "auth.address", NULL, "refused", NULL);
        apireq_error(r, 403, "address_not_allowed",
                     "your address is not on the allow-list of any of your tenants");
        return -1;
    }
    return 0;
}

/* ---- routes ---- */

enum api_auth { API_PUBLIC, API_USER, API_SESSION };

struct api_route {
    const char *method;
    const char *path; /* ":" is one segment, copied into param[] */
    enum api_auth auth;
    int roles; /* for /tenants/:/...: the roles that may (others get 403) */
    void (*fn)(struct api_req *r);
};

static const struct api_route api_routes[] = {
    { "POST", "/api/v1/login", API_PUBLIC, 0, api_login },
    { "POST", "/api/v1/logout", API_SESSION, 0, api_logout },
    { "GET", "/api/v1/me", API_USER, 0, api_me },
    { "POST", "/api/v1/me/recovery-codes", API_SESSION, 0, api_recovery_codes },
    { "GET", "/api/v1/me/preferences", API_USER, 0, api_prefs_get },
    { "POST", "/api/v1/me/preferences", API_USER, 0, api_prefs_set },
    { "GET", "/api/v1/tokens", API_USER, 0, api_tokens_list },
    { "POST", "/api/v1/tokens", API_SESSION, 0, api_token_create },
    { "DELETE", "/api/v1/tokens/:", API_USER, 0, api_token_revoke },
    { "GET", "/api/v1/tenants", API_USER, 0, api_tenants },
    { "GET", "/api/v1/tenants/:/summary", API_USER, ROLE_ANY, api_summary },
    { "GET", "/api/v1/tenants/:/alerts", API_USER, ROLE_ANY, api_alerts },
    { "GET", "/api/v1/tenants/:/alerts/:", API_USER, ROLE_ANY, api_alert },
    { "POST", "/api/v1/tenants/:/alerts/:/runs", API_USER,
      ROLE_ADMIN | ROLE_ENGINEER | ROLE_ANALYST | ROLE_OPERATOR, api_run_start },
    { "GET", "/api/v1/tenants/:/runs", API_USER, ROLE_ANY, api_runs },
    { "GET", "/api/v1/tenants/:/runs/:", API_USER, ROLE_ANY, api_run },
    { "GET", "/api/v1/tenants/:/audit", API_USER, ROLE_ADMIN | ROLE_AUDITOR | ROLE_OPERATOR,
      api_tenant_audit },
    { "GET", "/api/v1/tenants/:/users", API_USER, ROLE_ADMIN | ROLE_OPERATOR, api_tenant_users },
    { "POST", "/api/v1/tenants/:/users/:/role", API_USER, ROLE_ADMIN | ROLE_OPERATOR,
      api_user_role },
    { "POST", "/api/v1/tenants/:/users/:/reset-totp", API_USER, ROLE_ADMIN | ROLE_OPERATOR,
      api_user_reset_totp },
    { "GET", "/api/v1/tenants/:/allowlist", API_USER, ROLE_ADMIN | ROLE_AUDITOR | ROLE_OPERATOR,
      api_allowlist },
    { "POST", "/api/v1/tenants/:/allowlist", API_USER, ROLE_ADMIN | ROLE_OPERATOR,
      api_allowlist_add },
    { "DELETE", "/api/v1/tenants/:/allowlist", API_USER, ROLE_ADMIN | ROLE_OPERATOR,
      api_allowlist_remove },
    { "GET", "/api/v1/audit", API_USER, 0, api_platform_audit },
    { "GET", "/api/v1/approvals", API_USER, 0, api_approvals_all },
    { "GET", "/api/v1/tenants/:/approvals", API_USER, ROLE_ANY, api_approvals },
    { "GET", "/api/v1/tenants/:/approvals/:", API_USER, ROLE_ANY, api_approval },
    { "POST", "/api/v1/tenants/:/approvals/:/decision", API_USER, ROLE_ANY, api_approval_decide },
    { "GET", "/api/v1/escalations", API_USER, 0, api_escalations_all },
    { "GET", "/api/v1/tenants/:/escalations", API_USER, ROLE_ANY, api_escalations },
    { "GET", "/api/v1/tenants/:/escalations/:", API_USER, ROLE_ANY, api_escalation },
    { "POST", "/api/v1/tenants/:/escalations/:/ack", API_USER,
      ROLE_ADMIN | ROLE_ANALYST | ROLE_OPERATOR, api_escalation_ack },
    /* the portal's playbook view */
    { "POST", "/api/v1/playbooks", API_USER, 0, api_playbook_deploy },
    { "GET", "/api/v1/tenants/:/playbooks", API_USER, ROLE_ANY, api_playbooks },
    { "GET", "/api/v1/tenants/:/playbooks/:", API_USER, ROLE_ANY, api_playbook },
    { "GET", "/api/v1/tenants/:/playbooks/:/versions/:", API_USER, ROLE_ANY, api_playbook_version },
    { "GET", "/api/v1/tenants/:/playbooks/:/versions/:/runs", API_USER, ROLE_ANY,
      api_playbook_runs },
    { "POST", "/api/v1/tenants/:/playbooks/:/dry-run", API_USER,
      ROLE_ADMIN | ROLE_ENGINEER | ROLE_OPERATOR, api_playbook_dry_run },
    /* the portal's Settings and dashboard (engine/api_settings.c) */
    { "POST", "/api/v1/tenants/:/users", API_USER, ROLE_ADMIN | ROLE_OPERATOR, api_user_add },
    { "POST", "/api/v1/tenants/:/users/:/disabled", API_USER, ROLE_ADMIN | ROLE_OPERATOR,
      api_user_disable },
    { "GET", "/api/v1/tenants/:/dashboard/escalations", API_USER, ROLE_ANY, api_dash_escalations },
    { "GET", "/api/v1/tenants/:/containment", API_USER, ROLE_ANY, api_containment },
    { "GET", "/api/v1/tenants/:/contacts", API_USER, ROLE_ADMIN | ROLE_AUDITOR | ROLE_OPERATOR,
      api_contacts },
    { "POST", "/api/v1/tenants/:/contacts", API_USER, ROLE_ADMIN | ROLE_OPERATOR,
      api_contacts_set },
    { "DELETE", "/api/v1/tenants/:/contacts", API_USER, ROLE_ADMIN | ROLE_OPERATOR,
      api_contacts_reset },
};

/* Match path against pattern, filling param[]. 1 on a match. */
static int
api_match(const char *pattern, const char *path, struct api_req *r)
{
    int np = 0;

    while (*pattern != '\0') {
        if (*pattern == ':') {
            size_t len = strcspn(path, "/");

            if (len == 0 || len >= sizeof(r->param[0]) || np >= API_MAX_PARAMS) {
                return 0;
            }
            memcpy(r->param[np], path, len);
            r->param[np][len] = '\0';
            np++;
            path += len;
            pattern++;
            continue;
        }
        if (*pattern != *path) {
            return 0;
        }
        pattern++;
        path++;
    }
    return *path == '\0';
}

static void
api_dispatch(struct api_req *r)
{
    const char *method = http_request_method(r->http);
    const char *path = http_request_path(r->http);
    const struct api_route *hit = NULL;
    int path_known = 0;

    for (size_t i = 0; i < sizeof(api_routes) / sizeof(api_routes[0]); i++) {
        if (api_match(api_routes[i].path, path, r)) {
            path_known = 1;
            if (strcmp(api_routes[i].method, method) == 0 ||
                (strcmp(method, "HEAD") == 0 && strcmp(api_routes[i].method, "GET") == 0)) {
                hit = &api_routes[i];
                break;
            }
        }
    }
    if (hit == NULL) {
        if (path_known) {
            apireq_error(r, 405, "method_not_allowed", "this path does not take that method");
        } else {
            apireq_not_found(r);
        }
        return;
    }
    if (hit->auth != API_PUBLIC && api_authenticate(r, hit->auth == API_SESSION) == -1) {
        return;
    }
    if (hit->roles != 0) {
        /* A tenant this daemon does not serve is unknown, even to an operator. */
        int bits = tenant_find(r->param[0]) != NULL ? apireq_roles_in(r, r->param[0]) : 0;

        if (bits == 0) {
            /* Unknown, or not the caller's, or not from this address: one answer. */
            apireq_audit(r, r->param[0], "access", path, "not_found", NULL);
            apireq_not_found(r);
            return;
        }
        if ((bits & hit->roles) == 0) {
            r->api->denied++;
            apireq_audit(r, r->param[0], "access", path, "forbidden", NULL);
            apireq_error(r, 403, "forbidden", "your role in this tenant does not allow this");
            return;
        }
    }
    hit->fn(r);
}

static void
api_handle(struct http_request *h, void *arg)
{
    struct api *a = arg;
    struct api_req *r;

    /* The portal's page and files: the same listener and TLS; its data comes from the
     * routes below. */
    if (portal_serve(h)) {
        return;
    }
    r = xcalloc(1, sizeof(*r));
    a->state.requests++;
    r->api = &a->state;
    r->http = h;
    r->now = util_now_ms();
    if (api_client_addr(&a->state, h, r->addr, sizeof(r->addr)) == -1) {
        snprintf(r->addr, sizeof(r->addr), "%s", http_request_peer(h));
        apireq_error(r, 400, "bad_forwarded_for", "X-Forwarded-For is not a list of addresses");
        return;
    }
    api_dispatch(r);
}

/* ---- the listener ---- */

static void
api_metrics(struct buf *b, void *arg)
{
    struct api *a = arg;

    metrics_counter(b, "kagari_api_requests_total", "People's API requests received.",
                    a->state.requests);
    metrics_counter(b, "kagari_api_denied_total", "People's API requests refused (401/403).",
                    a->state.denied);
    metrics_counter(b, "kagari_api_logins_total", "Successful logins.", a->state.logins);
    metrics_counter(b, "kagari_api_login_failures_total", "Failed logins.",
                    a->state.login_failures);
    metrics_gauge(b, "kagari_api_connections", NULL, http_server_conns(a->srv));
}

int
api_start(const struct config *cfg, struct store *st, struct api **out, char **errp)
{
    const struct api_conf *c = api_conf(cfg);
    struct http_config hc;
    struct api *a;

    *out = NULL;
    if (c == NULL || c->listen == NULL) {
        return 0;
    }
    a = xcalloc(1, sizeof(*a));
    a->state.st = st;
    a->state.conf = c;
    a->state.cfg = cfg;
    a->state.cost = api_cost(c);
    if (api_parse_proxies(c->trusted_proxies, &a->state.proxies, &a->state.nproxies, errp) == -1 ||
        auth_password_hash("not a password of anyone", &a->state.cost, &a->state.dummy_hash,
                           errp) == -1) {
        api_free(a);
        return -1;
    }
    a->ssl = tls_server_context(c->cert_file, c->key_file, errp);
    if (a->ssl == NULL) {
        api_free(a);
        return -1;
    }
    a->state.work = work_new(loop_base(), 1, API_WORK_QUEUE, errp);
    if (a->state.work == NULL) {
        api_free(a);
        return -1;
    }
    /* The loop must not wait long for the CLI writing control.db. */
    store_busy_ms(st, 100);
    memset(&hc, 0, sizeof(hc));
    hc.ssl_ctx = a->ssl;
    hc.max_body_bytes = 64 << 10;
    hc.max_conns = c->max_conns;
    a->srv = http_server_new(loop_base(), &hc, api_handle, a);
    if (a->srv == NULL || http_server_listen(a->srv, c->listen, errp) == -1) {
        api_free(a);
        return -1;
    }
    metrics_add(api_metrics, a);
    *out = a;
    return 0;
}

int
api_port(const struct api *a)
{
    return http_server_port(a->srv);
}

void
api_set_reload(struct api *a, int (*reload)(void))
{
    if (a != NULL) {
        a->state.reload = reload;
    }
}

void
api_stop_accepting(struct api *a)
{
    if (a != NULL && a->srv != NULL) {
        http_server_stop_accepting(a->srv);
    }
}

void
api_free(struct api *a)
{
    if (a == NULL) {
        return;
    }
    if (a->srv != NULL) {
        metrics_remove(api_metrics, a);
    }
    work_free(a->state.work); /* answers the logins still waiting, before the server goes */
    http_server_free(a->srv);
    if (a->ssl != NULL) {
        SSL_CTX_free(a->ssl);
    }
    free(a->state.proxies);
    free(a->state.dummy_hash);
    free(a);
}
