/* api_login.c: login, logout, me and personal API tokens. */
#include "engine/api_login.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/json.h"
#include "engine/log.h"
#include "engine/qr.h"
#include "engine/secret.h"
#include "engine/totp.h"
#include "engine/work.h"

#define API_TOKEN_PREFIX "kgp_"
#define API_SESSION_PREFIX "kgs_"
#define API_TOKEN_DAYS 90      /* default lifetime of a personal API token */
#define API_TOKEN_DAYS_MAX 366 /* longest */
#define API_TOKENS_MAX 20      /* live tokens per user */

/* The JSON object body of a request, or NULL after answering 400. */
static cJSON *
api_body(struct api_req *r)
{
    size_t len = 0;
    const char *body = http_request_body(r->http, &len);
    cJSON *root = NULL;
    char *err = NULL;

    if (json_parse_strict(body ? body : "", len, 8, &root, &err) == -1) {
        apireq_error(r, 400, "bad_json", err);
        free(err);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        apireq_error(r, 400, "bad_request", "expected a JSON object");
        return NULL;
    }
    return root;
}

/* A string member of at most max bytes, or NULL (absent, not a string, too long). */
static const char *
api_str(const cJSON *o, const char *key, size_t max)
{
    const char *s = json_get_string(o, key);

    return s != NULL && strlen(s) <= max ? s : NULL;
}

/* 1 when some tenant's list admits addr (a tenant without a list admits everyone), or
 * the platform operators' list ("*") has entries and admits it: an address nothing
 * admits is refused before anything about the user is looked at. */
static int
api_address_known(struct api_req *r)
{
    struct store_tenant_info *ts = NULL;
    struct store_allow *al = NULL;
    size_t n = 0, nal = 0;
    char *err = NULL;
    int ok = 0, ops = 0;

    if (store_allow_list(r->api->st, &al, &nal, &err) == -1) {
        free(err);
        return 0;
    }
    for (size_t i = 0; i < nal; i++) {
        ops |= strcmp(al[i].tenant, "*") == 0;
    }
    free(al);
    if (ops && apireq_address_allowed(r->api, "*", r->addr) == 1) {
        return 1;
    }
    if (store_tenant_list(r->api->st, &ts, &n, &err) == -1) {
        free(err);
        return 0;
    }
    ok = n == 0 && !ops;
    for (size_t i = 0; i < n && !ok; i++) {
        ok = apireq_address_allowed(r->api, ts[i].id, r->addr) == 1;
    }
    free(ts);
    return ok;
}

/* The address's slot, its score decayed to now (a new or reused slot starts at 0). */
static struct api_addr_score *
addr_score(struct api_req *r)
{
    uint32_t h = 2166136261u;
    struct api_addr_score *sc;

    for (const char *p = r->addr; *p != '\0'; p++) {
        h = (h ^ (unsigned char)*p) * 16777619u;
    }
    sc = &r->api->scores[h % API_ADDR_SLOTS];
    if (strcmp(sc->addr, r->addr) != 0) {
        snprintf(sc->addr, sizeof(sc->addr), "%s", r->addr);
        sc->score = 0;
        sc->at = r->now;
    }
    if (r->now > sc->at) {
        sc->score -= (double)(r->now - sc->at) / API_ADDR_DECAY_MS;
        if (sc->score < 0) {
            sc->score = 0;
        }
        sc->at = r->now;
    }
    return sc;
}

/* A login waiting for its password check on a worker thread. */
struct login {
    struct api_req *r;
    char *hash;
    char *password;
    char *totp;      /* may be NULL */
    char *recovery;  /* may be NULL */
    int known;       /* the user exists and may log in (else hash is the dummy) */
    const char *why; /* when not known: "unknown_user" or "disabled" */
    int verdict;     /* auth_password_verify's answer */
    /* A one-time password's replacement ("new_password"), hashed on the worker too when
     * the password is right. */
    char *new_password; /* may be NULL */
    char *new_hash;
    struct auth_cost cost;
};

static void
login_free(struct login *l)
{
    if (l->password != NULL) {
        OPENSSL_cleanse(l->password, strlen(l->password));
    }
    free(l->password);
    free(l->hash);
    free(l->totp);
    free(l->recovery);
    if (l->new_password != NULL) {
        OPENSSL_cleanse(l->new_password, strlen(l->new_password));
    }
    free(l->new_password);
    free(l->new_hash);
    free(l);
}

static void
login_verify(void *arg)
{
    struct login *l = arg;

    l->verdict = auth_password_verify(l->hash, l->password);
    if (l->verdict == 1 && l->new_password != NULL &&
        auth_password_hash(l->new_password, &l->cost, &l->new_hash, NULL) == -1) {
        l->new_hash = NULL;
    }
}

/* A failed attempt: count it, lock when the count says so, audit, answer 401. */
static void
login_failed(struct api_req *r, const char *reason, const char *code, const char *message)
{
    struct store_user *u = &r->user;
    char detail[96];
    char *err = NULL;

    r->api->login_failures++;
    addr_score(r)->score += 1;
    snprintf(detail, sizeof(detail), "{\"reason\":\"%s\"}", reason);
    if (u->id > 0 && strcmp(reason, "disabled") != 0) {
        int failures = u->failures + 1;
        int64_t delay = auth_lock_delay(failures);

        if (store_user_set_failures(r->api->st, u->id, failures, delay > 0 ? r->now + delay : 0,
                                    &err) == -1) {
            log_err("api.login_count_failed error=%s", log_quote(err ? err : "?"));
            free(err);
        }
        apireq_audit(r, NULL, "login", u->name, "failed", detail);
        if (delay > 0) {
            char lock[96];

            snprintf(lock, sizeof(lock), "{\"failures\":%d,\"locked_seconds\":%lld}", failures,
                     (long long)(delay / 1000));
            apireq_audit(r, NULL, "login.lockout", u->name, "locked", lock);
        }
    } else {
        u->id = 0; /* not counted: an unknown or disabled account */
        apireq_audit(r, NULL, "login", u->name, "failed", detail);
    }
    store_user_free(u);
    memset(u, 0, sizeof(*u)); /* the audit rows above named the target, not an actor */
    apireq_error(r, 401, code, message);
}

/* Correct password, TOTP not yet confirmed and no code sent: show the enrolment. */
static void
login_enrol(struct api_req *r)
{
    cJSON *o = cJSON_CreateObject(), *e;
    char *uri = totp_uri(r->api->conf->issuer, r->user.name, r->user.totp_secret);
    char *svg = qr_svg(uri);

    apireq_audit(r, NULL, "login.enrolment", r->user.name, "shown", NULL);
    cJSON_AddStringToObject(o, "error", "totp_enrolment_required");
    cJSON_AddStringToObject(o, "message",
                            "add this secret to an authenticator app, then log in again with "
                            "the password and a code");
    e = cJSON_AddObjectToObject(o, "enrolment");
    cJSON_AddStringToObject(e, "secret", r->user.totp_secret);
    cJSON_AddStringToObject(e, "otpauth_uri", uri);
    if (svg != NULL) {
        cJSON_AddStringToObject(e, "qr_svg", svg);
    }
    free(uri);
    free(svg);
    store_user_free(&r->user);
    memset(&r->user, 0, sizeof(r->user));
    apireq_json(r, 401, o);
}

/* The second factor: a TOTP code (each accepted once) or a recovery code (single use).
 * 0 accepted; -1 answered. */
static int
login_second_factor(struct api_req *r, struct login *l)
{
    char *err = NULL;

    if (l->recovery != NULL) {
        char digest[65];
        int used;

        auth_recovery_digest(l->recovery, digest);
        used = store_recovery_use(r->api->st, r->user.id, digest, &err);
        free(err);
        if (used != 1) {
            login_failed(r, "recovery_code", "invalid_credentials",
                         "wrong user name, password or code");
            return -1;
        }
        apireq_audit(r, NULL, "login.recovery_code", r->user.name, "used", NULL);
        return 0;
    }
    if (l->totp == NULL) {
        if (!r->user.totp_confirmed) {
            login_enrol(r);
            return -1;
        }
        store_user_free(&r->user);
        memset(&r->user, 0, sizeof(r->user));
        apireq_error(r, 401, "totp_required", "send the code of your authenticator app (totp)");
        return -1;
    }
    {
        int64_t step = 0;
        enum totp_result res =
            totp_check(r->user.totp_secret, r->now / 1000, l->totp, r->user.totp_last_step, &step);
        int fresh = 0;

        if (res == TOTP_MATCH) {
            fresh = store_user_totp_use(r->api->st, r->user.id, step, &err);
            free(err);
        }
        if (res == TOTP_REPLAYED || (res == TOTP_MATCH && fresh == 0)) {
            login_failed(r, "totp_replayed", "totp_replayed",
                         "this code was used already: wait for the next one");
            return -1;
        }
        if (res != TOTP_MATCH || fresh != 1) {
            login_failed(r, "totp", "invalid_credentials", "wrong user name, password or code");
            return -1;
        }
    }
    return 0;
}

/* A new session: a fresh token (a session presented with the login is ended: no
 * fixation), its digest and a CSRF token stored, the cookie set. */
static void
login_session(struct api_req *r)
{
    const struct api_conf *c = r->api->conf;
    char *token = auth_new_token(API_SESSION_PREFIX);
    char *csrf = auth_new_token("");
    const char *cookies = http_request_header(r->http, "Cookie");
    char old[128], hash[65], *cookie, *err = NULL;
    cJSON *o, *roles;

    if (token == NULL || csrf == NULL) {
        free(token);
        free(csrf);
        apireq_error(r, 500, "internal", "no randomness for a session");
        return;
    }
    if (cookies != NULL && auth_cookie(cookies, API_SESSION_COOKIE, old, sizeof(old))) {
        auth_digest(old, hash);
        (void)!store_session_delete(r->api->st, hash, NULL);
    }
    /* Expired sessions go at each login: the table holds only live ones and a few. */
    if (store_session_purge(r->api->st, r->now - (int64_t)(c->session_idle * 1000),
                            r->now - (int64_t)(c->session_max * 1000), NULL) == -1) {
        log_warn("api.session_purge_failed");
    }
    auth_digest(token, hash);
    if (store_session_add(r->api->st, hash, r->user.id, csrf, r->now, r->addr, &err) == -1 ||
        store_user_login_ok(r->api->st, r->user.id, r->now, &err) == -1) {
        log_err("api.session_failed error=%s", log_quote(err ? err : "?"));
        free(err);
        free(token);
        free(csrf);
        apireq_error(r, 503, "store_unavailable", "the session could not be stored; retry");
        return;
    }
    r->api->logins++;
    apireq_audit(r, NULL, "login", r->user.name, "ok", NULL);
    cookie = xasprintf("%s=%s; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=%lld",
                       API_SESSION_COOKIE, token, (long long)c->session_max);
    http_reply_header(r->http, "Set-Cookie", cookie);
    free(cookie);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user", r->user.name);
    cJSON_AddStringToObject(o, "csrf_token", csrf);
    apireq_add_time(o, "expires", r->now + (int64_t)(c->session_max * 1000));
    cJSON_AddNumberToObject(o, "idle_timeout", c->session_idle);
    roles = cJSON_AddArrayToObject(o, "roles");
    for (size_t i = 0; i < r->nroles; i++) {
        cJSON *ro = cJSON_CreateObject();

        cJSON_AddStringToObject(ro, "tenant", r->roles[i].tenant);
        cJSON_AddStringToObject(ro, "role", r->roles[i].role);
        cJSON_AddItemToArray(roles, ro);
    }
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    free(csrf);
    apireq_json(r, 200, o);
}

/* Back on the loop with the password's verdict. The user row is read again: other
 * attempts may have counted failures or used a code meanwhile. */
static void
login_checked(void *arg, int cancelled)
{
    struct login *l = arg;
    struct api_req *r = l->r;
    char *err = NULL;
    int found;
    int usable = 0;

    if (cancelled) {
        apireq_error(r, 503, "shutting_down", "the engine is stopping");
        login_free(l);
        return;
    }
    if (!l->known) {
        login_failed(r, l->why, "invalid_credentials", "wrong user name, password or code");
        login_free(l);
        return;
    }
    {
        int64_t id = r->user.id;

        store_user_free(&r->user);
        found = store_user_get_id(r->api->st, id, &r->user, &err);
    }
    if (found != 1) {
        free(err);
        apireq_error(r, 503, "store_unavailable", "the login could not be checked; retry");
        login_free(l);
        return;
    }
    if (l->verdict != 1) {
        login_failed(r, l->verdict == -1 ? "bad_hash" : "password", "invalid_credentials",
                     "wrong user name, password or code");
        login_free(l);
        return;
    }
    {
        /* The TOTP secret is kept encrypted with the secrets key when there is one. */
        char *plain = secret_decrypt(r->user.totp_secret, &err);

        if (plain == NULL) {
            log_err("api.totp_secret_unreadable user=%s error=%s", log_quote(r->user.name),
                    log_quote(err ? err : "?"));
            free(err);
            apireq_error(r, 500, "internal", "the second factor could not be checked");
            login_free(l);
            return;
        }
        free(r->user.totp_secret);
        r->user.totp_secret = plain;
    }
    /* The user's own tenants' lists, before a code is spent. */
    if (store_roles_get(r->api->st, r->user.id, &r->roles, &r->nroles, &err) == -1) {
        free(err);
        apireq_error(r, 503, "store_unavailable", "the login could not be checked; retry");
        login_free(l);
        return;
    }
    for (size_t i = 0; i < r->nroles && !usable; i++) {
        usable = apireq_roles_in(r, r->roles[i].tenant) != 0;
    }
    if (r->nroles > 0 && !usable) {
        r->api->denied++;
        apireq_audit(r, NULL, "login", r->user.name, "address_refused", NULL);
        apireq_error(r, 403, "address_not_allowed",
                     "your address is not on the allow-list of any of your tenants");
        login_free(l);
        return;
    }
    /* A one-time password (a user added in the portal): the person chooses their own
     * before a session is given, checked before a code is spent. */
    {
        int due = store_password_change_due(r->api->st, r->user.id, &err);

        if (due == -1) {
            free(err);
            apireq_error(r, 503, "store_unavailable", "the login could not be checked; retry");
            login_free(l);
            return;
        }
        if (due == 1 && l->new_password == NULL) {
            apireq_audit(r, NULL, "login.password_change", r->user.name, "asked", NULL);
            store_user_free(&r->user);
            memset(&r->user, 0, sizeof(r->user));
            apireq_error(r, 401, "password_change_required",
                         "this password was for the first login only: send a new_password too");
            login_free(l);
            return;
        }
        if (due == 1 && (l->new_hash == NULL || strcmp(l->new_password, l->password) == 0)) {
            store_user_free(&r->user);
            memset(&r->user, 0, sizeof(r->user));
            apireq_error(r, 400, "weak_password", "new_password: not the one-time password");
            login_free(l);
            return;
        }
        if (login_second_factor(r, l) == -1) {
            login_free(l);
            return;
        }
        if (due == 1) {
            if (store_password_change_done(r->api->st, r->user.id, l->new_hash, &err) == -1) {
                log_err("api.password_change_failed error=%s", log_quote(err ? err : "?"));
                free(err);
                apireq_error(r, 503, "store_unavailable", "the password could not be stored");
                login_free(l);
                return;
            }
            apireq_audit(r, NULL, "login.password_change", r->user.name, "ok", NULL);
        }
    }
    login_free(l);
    login_session(r);
}

void
api_login(struct api_req *r)
{
    cJSON *body;
    const char *name, *password, *totp, *recovery, *new_password;
    struct login *l;
    char *err = NULL;
    int found;

    if (!api_address_known(r)) {
        r->api->denied++;
        apireq_audit(r, NULL, "login", NULL, "address_refused", NULL);
        apireq_error(r, 403, "address_not_allowed", "logins are not allowed from your address");
        return;
    }
    {
        struct api_addr_score *sc = addr_score(r);

        if (sc->score >= API_ADDR_FAILURES) {
            char secs[32];

            snprintf(secs, sizeof(secs), "%lld",
                     (long long)((sc->score - API_ADDR_FAILURES + 1) * API_ADDR_DECAY_MS / 1000));
            r->api->login_failures++;
            apireq_audit(r, NULL, "login", NULL, "address_throttled", NULL);
            http_reply_header(r->http, "Retry-After", secs);
            apireq_error(r, 429, "too_many_attempts",
                         "too many failed logins from your address: retry later (Retry-After)");
            return;
        }
    }
    if ((body = api_body(r)) == NULL) {
        return;
    }
    name = api_str(body, "user", 63);
    password = api_str(body, "password", AUTH_PASSWORD_MAX);
    totp = api_str(body, "totp", 16);
    recovery = api_str(body, "recovery_code", 32);
    new_password = api_str(body, "new_password", AUTH_PASSWORD_MAX);
    if (name == NULL || password == NULL || (json_get(body, "totp") && totp == NULL) ||
        (json_get(body, "recovery_code") && recovery == NULL) || (totp && recovery) ||
        (json_get(body, "new_password") && new_password == NULL)) {
        cJSON_Delete(body);
        apireq_error(r, 400, "bad_request",
                     "expected {\"user\", \"password\", and \"totp\" or \"recovery_code\"} "
                     "(strings)");
        return;
    }
    if (new_password != NULL && auth_password_check(new_password, name, &err) == -1) {
        cJSON_Delete(body);
        apireq_error(r, 400, "weak_password", err);
        free(err);
        return;
    }
    found = store_user_get(r->api->st, name, &r->user, &err);
    if (found == -1) {
        free(err);
        cJSON_Delete(body);
        apireq_error(r, 503, "store_unavailable", "the login could not be checked; retry");
        return;
    }
    l = xcalloc(1, sizeof(*l));
    l->why = "unknown_user";
    if (found == 1 && r->user.disabled) {
        store_user_free(&r->user);
        memset(&r->user, 0, sizeof(r->user));
        found = 0; /* answered like an unknown user, after the same work */
        l->why = "disabled";
    }
    if (found == 0) {
        snprintf(r->user.name, sizeof(r->user.name), "%s", name); /* for the audit row */
    }
    if (found == 1 && auth_locked_for(r->user.locked_until, r->now) > 0) {
        char secs[32];
        int64_t left = auth_locked_for(r->user.locked_until, r->now);

        snprintf(secs, sizeof(secs), "%lld", (long long)((left + 999) / 1000));
        r->api->login_failures++;
        apireq_audit(r, NULL, "login", name, "locked", NULL);
        store_user_free(&r->user);
        memset(&r->user, 0, sizeof(r->user));
        cJSON_Delete(body);
        free(l);
        http_reply_header(r->http, "Retry-After", secs);
        apireq_error(r, 429, "locked",
                     "too many failed logins: the account is locked for a while (Retry-After)");
        return;
    }
    l->r = r;
    l->known = found == 1;
    l->hash = xstrdup(found == 1 ? r->user.pass_hash : r->api->dummy_hash);
    l->password = xstrdup(password);
    l->totp = totp ? xstrdup(totp) : NULL;
    l->recovery = recovery ? xstrdup(recovery) : NULL;
    l->new_password = new_password ? xstrdup(new_password) : NULL;
    l->cost = r->api->cost;
    cJSON_Delete(body);
    if (work_submit(r->api->work, login_verify, login_checked, l) == -1) {
        http_reply_header(r->http, "Retry-After", "1");
        apireq_error(r, 503, "busy", "too many logins at once; retry shortly");
        login_free(l);
        return;
    }
}

void
api_logout(struct api_req *r)
{
    char *cookie;

    (void)!store_session_delete(r->api->st, r->session_hash, NULL);
    apireq_audit(r, NULL, "logout", r->user.name, "ok", NULL);
    cookie =
        xasprintf("%s=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0", API_SESSION_COOKIE);
    http_reply_header(r->http, "Set-Cookie", cookie);
    free(cookie);
    apireq_json(r, 204, NULL);
}

void
api_me(struct api_req *r)
{
    cJSON *o = cJSON_CreateObject(), *roles;
    struct store_session s;

    cJSON_AddStringToObject(o, "user", r->user.name);
    cJSON_AddStringToObject(o, "auth", r->token_id > 0 ? "token" : "session");
    cJSON_AddStringToObject(o, "address", r->addr);
    if (r->token_id == 0 && store_session_get(r->api->st, r->session_hash, &s, NULL) == 1) {
        cJSON_AddStringToObject(o, "csrf_token", s.csrf);
        apireq_add_time(o, "expires", s.created + (int64_t)(r->api->conf->session_max * 1000));
    }
    apireq_add_time(o, "last_login", r->user.last_login);
    roles = cJSON_AddArrayToObject(o, "roles");
    for (size_t i = 0; i < r->nroles; i++) {
        cJSON *ro = cJSON_CreateObject();
        const char *t = r->roles[i].tenant;

        cJSON_AddStringToObject(ro, "tenant", t);
        cJSON_AddStringToObject(ro, "role", r->roles[i].role);
        /* whether it counts from the caller's present address */
        cJSON_AddBoolToObject(ro, "usable", apireq_roles_in(r, strcmp(t, "*") ? t : "-") != 0);
        cJSON_AddItemToArray(roles, ro);
    }
    apireq_json(r, 200, o);
}

static cJSON *
token_json(const struct store_token *t)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddNumberToObject(o, "id", (double)t->id);
    cJSON_AddStringToObject(o, "name", t->name);
    apireq_add_time(o, "created", t->created);
    apireq_add_time(o, "expires", t->expires);
    apireq_add_time(o, "revoked", t->revoked);
    apireq_add_time(o, "last_used", t->last_used);
    return o;
}

void
api_tokens_list(struct api_req *r)
{
    struct store_token *v = NULL;
    size_t n = 0;
    char *err = NULL;
    cJSON *o, *arr;

    if (store_token_list(r->api->st, r->user.id, &v, &n, &err) == -1) {
        free(err);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    o = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(o, "tokens");
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(arr, token_json(&v[i]));
    }
    free(v);
    apireq_json(r, 200, o);
}

void
api_token_create(struct api_req *r)
{
    cJSON *body = api_body(r), *days_j, *o;
    const char *name;
    struct store_token *v = NULL;
    size_t n = 0, live = 0;
    double days = API_TOKEN_DAYS;
    char *token, hash[65], *err = NULL;
    int64_t id = 0, expires;
    struct store_token made;

    if (body == NULL) {
        return;
    }
    name = api_str(body, "name", 63);
    days_j = json_get(body, "expires_in_days");
    if (days_j != NULL) {
        days = cJSON_IsNumber(days_j) ? days_j->valuedouble : -1;
    }
    if (name == NULL || name[0] == '\0' || days < 1 || days > API_TOKEN_DAYS_MAX ||
        days != (double)(int)days) {
        cJSON_Delete(body);
        apireq_error(r, 400, "bad_request",
                     "expected {\"name\": text of 1 to 63 bytes, \"expires_in_days\": 1 to 366}");
        return;
    }
    if (store_token_list(r->api->st, r->user.id, &v, &n, &err) == -1) {
        free(err);
        cJSON_Delete(body);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        live += v[i].revoked == 0 && (v[i].expires == 0 || v[i].expires > r->now);
    }
    free(v);
    if (live >= API_TOKENS_MAX) {
        cJSON_Delete(body);
        apireq_error(r, 409, "too_many_tokens", "revoke an unused token first");
        return;
    }
    token = auth_new_token(API_TOKEN_PREFIX);
    if (token == NULL) {
        cJSON_Delete(body);
        apireq_error(r, 500, "internal", "no randomness for a token");
        return;
    }
    auth_digest(token, hash);
    expires = r->now + (int64_t)days * 86400000;
    if (store_token_add(r->api->st, r->user.id, name, hash, expires, &id, &err) == -1) {
        free(err);
        free(token);
        cJSON_Delete(body);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    memset(&made, 0, sizeof(made));
    made.id = id;
    snprintf(made.name, sizeof(made.name), "%s", name);
    made.created = r->now;
    made.expires = expires;
    cJSON_Delete(body);
    {
        char target[32];

        snprintf(target, sizeof(target), "token:%lld", (long long)id);
        apireq_audit(r, NULL, "token.create", target, "ok", NULL);
    }
    o = token_json(&made);
    cJSON_AddStringToObject(o, "token", token); /* the only time it is shown */
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    apireq_json(r, 201, o);
}

void
api_token_revoke(struct api_req *r)
{
    int64_t id = apireq_parse_id(r->param[0]);
    char target[32], *err = NULL;
    int done;

    if (id <= 0) {
        apireq_not_found(r);
        return;
    }
    done = store_token_revoke(r->api->st, r->user.id, id, &err);
    if (done == -1) {
        free(err);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    if (done == 0) {
        apireq_not_found(r);
        return;
    }
    snprintf(target, sizeof(target), "token:%lld", (long long)id);
    apireq_audit(r, NULL, "token.revoke", target, "ok", NULL);
    apireq_json(r, 204, NULL);
}

/* POST /api/v1/me/recovery-codes {"totp": "123456"} (a session, its CSRF token): a new
 * set of recovery codes, shown this once; the old ones stop working. A fresh code of the
 * authenticator proves the person holds it (a session left open is not enough); a wrong
 * one counts as a failed login (lockout) and is answered 403, not 401: the session is
 * still good. */
void
api_recovery_codes(struct api_req *r)
{
    cJSON *body, *o, *arr;
    const char *code;
    char codes[AUTH_RECOVERY_CODES][12], digests[AUTH_RECOVERY_CODES][65];
    char *dv[AUTH_RECOVERY_CODES], *plain = NULL, *err = NULL;
    int64_t step = 0;
    enum totp_result res;
    int fresh = 0;

    if ((body = api_body(r)) == NULL) {
        return;
    }
    if ((code = api_str(body, "totp", 16)) == NULL) {
        cJSON_Delete(body);
        apireq_error(r, 400, "bad_request", "expected {\"totp\": \"123456\"}");
        return;
    }
    if (auth_locked_for(r->user.locked_until, r->now) > 0) {
        cJSON_Delete(body);
        apireq_error(r, 429, "locked", "too many failures: try again later");
        return;
    }
    plain = secret_decrypt(r->user.totp_secret, &err);
    if (plain == NULL) {
        log_err("api.totp_secret_unreadable user=%s error=%s", log_quote(r->user.name),
                log_quote(err ? err : "?"));
        free(err);
        cJSON_Delete(body);
        apireq_error(r, 500, "internal", "the second factor could not be checked");
        return;
    }
    res = totp_check(plain, r->now / 1000, code, r->user.totp_last_step, &step);
    OPENSSL_cleanse(plain, strlen(plain));
    free(plain);
    cJSON_Delete(body);
    if (res == TOTP_MATCH) {
        fresh = store_user_totp_use(r->api->st, r->user.id, step, NULL);
    }
    if (res != TOTP_MATCH || fresh != 1) {
        int replayed = res == TOTP_REPLAYED || (res == TOTP_MATCH && fresh == 0);
        int failures = r->user.failures + 1;
        int64_t delay = auth_lock_delay(failures);

        if (store_user_set_failures(r->api->st, r->user.id, failures,
                                    delay > 0 ? r->now + delay : 0, &err) == -1) {
            log_err("api.login_count_failed error=%s", log_quote(err ? err : "?"));
            free(err);
        }
        apireq_audit(r, NULL, "recovery_codes.new", r->user.name, "refused",
                     replayed ? "{\"reason\":\"totp_replayed\"}" : "{\"reason\":\"totp\"}");
        apireq_error(r, 403, replayed ? "totp_replayed" : "invalid_code",
                     "the authenticator code is wrong or was used already");
        return;
    }
    for (int i = 0; i < AUTH_RECOVERY_CODES; i++) {
        if (auth_recovery_code(codes[i]) == -1) {
            apireq_error(r, 500, "internal", "no randomness for recovery codes");
            return;
        }
        auth_recovery_digest(codes[i], digests[i]);
        dv[i] = digests[i];
    }
    if (store_recovery_set(r->api->st, r->user.id, dv, AUTH_RECOVERY_CODES, &err) == -1) {
        log_err("api.recovery_codes_failed error=%s", log_quote(err ? err : "?"));
        free(err);
        OPENSSL_cleanse(codes, sizeof(codes));
        apireq_error(r, 503, "store_unavailable", "the codes could not be stored; retry");
        return;
    }
    apireq_audit(r, NULL, "recovery_codes.new", r->user.name, "ok", NULL);
    o = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(o, "recovery_codes");
    for (int i = 0; i < AUTH_RECOVERY_CODES; i++) {
        cJSON_AddItemToArray(arr, cJSON_CreateString(codes[i]));
    }
    OPENSSL_cleanse(codes, sizeof(codes));
    apireq_json(r, 201, o);
}

/* A time zone's name as the tz database spells them ("Asia/Tokyo", "UTC",
 * "America/Argentina/Buenos_Aires", "Etc/GMT+9"): checked for its shape only, the
 * browser knows the zones. */
static int
api_tz_ok(const char *z)
{
    size_t len = strlen(z);
    int parts = 1;

    if (len == 0 || len >= 64 || z[0] == '/' || z[len - 1] == '/' || strstr(z, "//") != NULL ||
        strstr(z, "..") != NULL) {
        return 0;
    }
    for (const char *p = z; *p != '\0'; p++) {
        if (*p == '/') {
            parts++;
        } else if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '+')) {
            return 0;
        }
    }
    return parts <= 3;
}

static void
api_prefs_answer(struct api_req *r, const char *lang, const char *tz)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "language", lang);
    cJSON_AddStringToObject(o, "time_zone", tz);
    apireq_json(r, 200, o);
}

/* GET /api/v1/me/preferences: the caller's language and time zone (Japanese and
 * Asia/Tokyo until they choose). */
void
api_prefs_get(struct api_req *r)
{
    char lang[8] = "ja", tz[64] = "Asia/Tokyo";
    char *err = NULL;

    if (store_prefs_get(r->api->st, r->user.id, lang, tz, &err) == -1) {
        free(err);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    api_prefs_answer(r, lang, tz);
}

/* POST /api/v1/me/preferences {"language": "ja"|"en", "time_zone": "Asia/Tokyo"}: both,
 * checked, stored, audited. */
void
api_prefs_set(struct api_req *r)
{
    cJSON *body = api_body(r);
    const char *lang, *tz;
    char *err = NULL, detail[128];

    if (body == NULL) {
        return;
    }
    lang = api_str(body, "language", 7);
    tz = api_str(body, "time_zone", 63);
    if (lang == NULL || (strcmp(lang, "ja") != 0 && strcmp(lang, "en") != 0) || tz == NULL ||
        !api_tz_ok(tz)) {
        cJSON_Delete(body);
        apireq_error(r, 400, "bad_request",
                     "expected {\"language\": \"ja\" or \"en\", \"time_zone\": \"Area/City\"}");
        return;
    }
    if (store_prefs_set(r->api->st, r->user.id, lang, tz, &err) == -1) {
        log_err("api.prefs_failed error=%s", log_quote(err ? err : "?"));
        free(err);
        cJSON_Delete(body);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    snprintf(detail, sizeof(detail), "{\"language\":\"%s\",\"time_zone\":\"%s\"}", lang, tz);
    apireq_audit(r, NULL, "preferences", r->user.name, "ok", detail);
    {
        char l[8], z[64];

        snprintf(l, sizeof(l), "%s", lang);
        snprintf(z, sizeof(z), "%s", tz);
        cJSON_Delete(body);
        api_prefs_answer(r, l, z);
    }
}
