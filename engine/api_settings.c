/* api_settings.c: the portal's Settings and dashboard routes: adding and disabling a
 * tenant's users, the escalations awaiting acknowledgement and the containment in force. */
#include "engine/api_settings.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/json.h"
#include "engine/log.h"
#include "engine/loop.h"
#include "engine/secret.h"
#include "engine/tenant.h"
#include "engine/totp.h"
#include "engine/work.h"

#define SETTINGS_ESC_MAX 50   /* open escalations shown */
#define SETTINGS_LIST_MAX 500 /* published list entries shown */
#define SETTINGS_FX_MAX 500   /* journal entries read per containment kind */
#define CHAIN_KEY "notify.chain"
#define CHAIN_MAX 20 /* contacts in a chain */
#define CHAIN_HOOKS_MAX 8

/* The tenant's open database, or NULL after answering 404. */
static struct store_tenant *
settings_db(struct api_req *r)
{
    struct tenant *t = apireq_tenant(r);

    return t != NULL ? t->db : NULL;
}

/* A user name: 1 to 64 of letters, digits and ". _ @ -", starting with a letter or digit
 * (it is shown in the portal, audit rows and URLs). */
static int
settings_name_ok(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > 64 || s[0] == '.' || s[0] == '-' || s[0] == '_' || s[0] == '@') {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '@' || *p == '-')) {
            return 0;
        }
    }
    return 1;
}

/* ---- adding a user ---- */

struct user_add {
    struct api_req *r;
    struct auth_cost cost; /* a copy: the worker touches nothing the loop uses */
    char name[72];
    char role[16];
    char password[32];
    char *hash;
    char *err;
};

static void
user_add_free(struct user_add *u)
{
    OPENSSL_cleanse(u->password, sizeof(u->password));
    free(u->hash);
    free(u->err);
    free(u);
}

/* On a worker thread: the Argon2id hash of the one-time password. */
static void
user_add_hash(void *arg)
{
    struct user_add *u = arg;

    if (auth_password_hash(u->password, &u->cost, &u->hash, &u->err) == -1) {
        u->hash = NULL;
    }
}

/* Back on the loop: store the user with a fresh TOTP secret to enrol at the first login
 * and the role, audit, and answer the one-time password (never stored in clear). */
static void
user_add_done(void *arg, int cancelled)
{
    struct user_add *u = arg;
    struct api_req *r = u->r;
    char secret[TOTP_SECRET_CHARS + 1], *sealed = NULL, *err = NULL, detail[64];
    int64_t id = 0;
    cJSON *o;

    if (cancelled || u->hash == NULL) {
        log_err("api.user_add_failed error=%s", log_quote(cancelled ? "shutting down"
                                                          : u->err  ? u->err
                                                                    : "?"));
        apireq_error(r, 503, "busy", "the user could not be added; retry");
        user_add_free(u);
        return;
    }
    if (totp_new_secret(secret) == -1) {
        apireq_error(r, 500, "internal", "no randomness");
        user_add_free(u);
        return;
    }
    /* With the secrets key loaded the secret is stored encrypted, as the CLI does. */
    sealed = secret_encrypt(secret, NULL);
    if (sealed == NULL) {
        sealed = xstrdup(secret);
    }
    OPENSSL_cleanse(secret, sizeof(secret));
    if (store_user_add(r->api->st, u->name, u->hash, sealed, &id, &err) == -1) {
        int exists = err != NULL && strstr(err, "exists") != NULL;

        free(err);
        free(sealed);
        if (exists) {
            apireq_error(r, 409, "user_exists",
                         "a user of that name exists: give them a role here instead");
        } else {
            apireq_error(r, 503, "store_unavailable", "retry");
        }
        user_add_free(u);
        return;
    }
    free(sealed);
    if (store_role_set(r->api->st, id, r->param[0], u->role, &err) == -1 ||
        store_password_change_set(r->api->st, id, r->now, &err) == -1) {
        log_err("api.user_add_role_failed user=%s error=%s", log_quote(u->name),
                log_quote(err ? err : "?"));
        free(err);
        (void)!store_user_set_disabled(r->api->st, id, 1, NULL);
        apireq_error(r, 503, "store_unavailable", "retry");
        user_add_free(u);
        return;
    }
    snprintf(detail, sizeof(detail), "{\"role\":\"%s\"}", u->role);
    apireq_audit(r, r->param[0], "user.add", u->name, "ok", detail);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user", u->name);
    cJSON_AddStringToObject(o, "tenant", r->param[0]);
    cJSON_AddStringToObject(o, "role", u->role);
    cJSON_AddStringToObject(o, "password", u->password);
    cJSON_AddBoolToObject(o, "totp_enrolled", 0);
    user_add_free(u);
    apireq_json(r, 201, o);
}

/* A one-time password: four groups of five lower-case base32 characters (100 bits). */
static int
settings_new_password(char out[32])
{
    char a[12], b[12];

    if (auth_recovery_code(a) == -1 || auth_recovery_code(b) == -1) {
        return -1;
    }
    snprintf(out, 32, "%s-%s", a, b);
    OPENSSL_cleanse(a, sizeof(a));
    OPENSSL_cleanse(b, sizeof(b));
    return 0;
}

void
api_user_add(struct api_req *r)
{
    static const char *const roles[] = { "admin", "engineer", "analyst", "auditor" };
    cJSON *body = apireq_body_object(r);
    const char *name, *role;
    struct store_user existing;
    struct user_add *u;
    int ok = 0;

    if (body == NULL) {
        return;
    }
    name = json_get_string(body, "user");
    role = json_get_string(body, "role");
    for (size_t i = 0; role != NULL && i < sizeof(roles) / sizeof(roles[0]); i++) {
        ok |= strcmp(role, roles[i]) == 0;
    }
    if (name == NULL || !settings_name_ok(name) || !ok) {
        cJSON_Delete(body);
        apireq_error(r, 400, "bad_request",
                     "expected {\"user\": name (1-64 of A-Z a-z 0-9 . _ @ -), \"role\": admin, "
                     "engineer, analyst or auditor}");
        return;
    }
    if (store_user_get(r->api->st, name, &existing, NULL) == 1) {
        store_user_free(&existing);
        cJSON_Delete(body);
        apireq_error(r, 409, "user_exists",
                     "a user of that name exists: give them a role here instead");
        return;
    }
    u = xcalloc(1, sizeof(*u));
    u->r = r;
    u->cost = r->api->cost;
    snprintf(u->name, sizeof(u->name), "%s", name);
    snprintf(u->role, sizeof(u->role), "%s", role);
    cJSON_Delete(body);
    if (settings_new_password(u->password) == -1) {
        user_add_free(u);
        apireq_error(r, 500, "internal", "no randomness");
        return;
    }
    /* Argon2id takes tens of milliseconds and 64 MiB: never on the loop. */
    if (work_submit(r->api->work, user_add_hash, user_add_done, u) == -1) {
        user_add_free(u);
        http_reply_header(r->http, "Retry-After", "1");
        apireq_error(r, 503, "busy", "too much work at once; retry shortly");
    }
}

/* ---- disabling a user ---- */

void
api_user_disable(struct api_req *r)
{
    cJSON *body = apireq_body_object(r);
    const cJSON *flag;
    struct store_user u;
    struct store_role *roles = NULL;
    size_t n = 0;
    int here = 0, elsewhere = 0, disabled;
    char *err = NULL;
    cJSON *o;

    if (body == NULL) {
        return;
    }
    flag = cJSON_GetObjectItemCaseSensitive(body, "disabled");
    if (!cJSON_IsBool(flag)) {
        cJSON_Delete(body);
        apireq_error(r, 400, "bad_request", "expected {\"disabled\": true or false}");
        return;
    }
    disabled = cJSON_IsTrue(flag);
    cJSON_Delete(body);
    if (store_user_get(r->api->st, r->param[1], &u, NULL) != 1) {
        apireq_not_found(r);
        return;
    }
    if (store_roles_get(r->api->st, u.id, &roles, &n, &err) == -1) {
        free(err);
        store_user_free(&u);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(roles[i].tenant, r->param[0]) == 0) {
            here = 1;
        } else {
            elsewhere = 1;
        }
    }
    free(roles);
    if (!here) { /* a user of another tenant is not this admin's to see */
        store_user_free(&u);
        apireq_not_found(r);
        return;
    }
    if (u.id == r->user.id) {
        store_user_free(&u);
        apireq_error(r, 403, "forbidden", "another admin disables your own account");
        return;
    }
    /* The account is one across tenants: one tenant's admin must not shut a person out of
     * another tenant. Only a platform operator may; the admin removes the role instead. */
    if (elsewhere && (apireq_roles_in(r, r->param[0]) & ROLE_OPERATOR) == 0) {
        store_user_free(&u);
        apireq_error(r, 409, "shared_user",
                     "this user has roles in other tenants: remove their role here instead");
        return;
    }
    if (store_user_set_disabled(r->api->st, u.id, disabled, &err) == -1 ||
        (disabled && store_session_delete_user(r->api->st, u.id, &err) == -1)) {
        log_err("api.user_disable_failed error=%s", log_quote(err ? err : "?"));
        free(err);
        store_user_free(&u);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    apireq_audit(r, r->param[0], disabled ? "user.disable" : "user.enable", u.name, "ok", NULL);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user", u.name);
    cJSON_AddBoolToObject(o, "disabled", disabled);
    store_user_free(&u);
    apireq_json(r, 200, o);
}

/* ---- escalations awaiting acknowledgement ---- */

/* The contact escalation e reached last and when: from its run's journal, where the
 * escalate.open effect records the chain it started with and each escalate.wait the
 * contact (1-based) it waits on after notifying them. *name is malloc'd, NULL when the
 * journal does not say (yet). */
static void
esc_last_contact(struct store_tenant *db, const struct store_esc *e, char **name, int64_t *at)
{
    struct store_effect_row *j = NULL;
    size_t n = 0;
    cJSON *contacts = NULL;
    int k = 0;

    *name = NULL;
    *at = 0;
    if (store_run_effects(db, e->run_id, "escalate.", &j, &n, NULL) == -1) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        int open = strcmp(j[i].kind, "escalate.open") == 0;
        const char *text = open ? j[i].result : j[i].request;
        cJSON *x;
        const cJSON *id;

        if ((!open && strcmp(j[i].kind, "escalate.wait") != 0) || text == NULL) {
            continue;
        }
        x = cJSON_Parse(text);
        id = cJSON_GetObjectItemCaseSensitive(x, "id");
        if (cJSON_IsNumber(id) && (int64_t)id->valuedouble == e->id) {
            if (open && contacts == NULL) {
                contacts = cJSON_DetachItemFromObjectCaseSensitive(x, "contacts");
            } else if (!open) {
                const cJSON *c = cJSON_GetObjectItemCaseSensitive(x, "contact");

                k = cJSON_IsNumber(c) ? c->valueint : 0;
                *at = j[i].started_ms;
            }
        }
        cJSON_Delete(x);
    }
    if (k > 0 && json_get_string(cJSON_GetArrayItem(contacts, k - 1), "name") != NULL) {
        *name = xstrdup(json_get_string(cJSON_GetArrayItem(contacts, k - 1), "name"));
    }
    cJSON_Delete(contacts);
    store_effect_rows_free(j, n);
}

void
api_dash_escalations(struct api_req *r)
{
    struct store_tenant *db = settings_db(r);
    struct store_esc *v = NULL;
    size_t n = 0;
    char *err = NULL;
    cJSON *o, *arr;

    if (db == NULL) {
        return;
    }
    if (store_esc_open(db, SETTINGS_ESC_MAX, &v, &n, &err) == -1) {
        log_err("api.escalations_failed tenant=%s error=%s", r->param[0],
                log_quote(err ? err : "?"));
        free(err);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    o = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(o, "escalations");
    for (size_t i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        char *who = NULL;
        int64_t who_at = 0;

        esc_last_contact(db, &v[i], &who, &who_at);

        cJSON_AddNumberToObject(e, "id", (double)v[i].id);
        cJSON_AddNumberToObject(e, "run_id", (double)v[i].run_id);
        cJSON_AddStringToObject(e, "level", v[i].level ? v[i].level : "");
        cJSON_AddStringToObject(e, "subject", v[i].subject ? v[i].subject : "");
        cJSON_AddStringToObject(e, "reason", v[i].reason ? v[i].reason : "");
        cJSON_AddStringToObject(e, "state", v[i].state);
        apireq_add_time(e, "created", v[i].created_ms);
        cJSON_AddNumberToObject(e, "age_seconds", (double)((r->now - v[i].created_ms) / 1000));
        cJSON_AddNumberToObject(e, "contacts", v[i].contacts);
        cJSON_AddNumberToObject(e, "reached", v[i].reached);
        cJSON_AddItemToObject(e, "last_contact",
                              who ? cJSON_CreateString(who) : cJSON_CreateNull());
        apireq_add_time(e, "last_contact_at", who_at);
        free(who);
        cJSON_AddItemToArray(arr, e);
        store_esc_free(&v[i]);
    }
    free(v);
    apireq_add_time(o, "now", r->now);
    apireq_json(r, 200, o);
}

/* ---- containment in force ---- */

/* The containment effects the dashboard shows and the effects that undo them. These are
 * journal kinds (text), not plug-ins: the engine reads its own journal. */
static const struct {
    const char *kind, *undo, *what, *segment;
} contain_kinds[] = {
    { "graph.disable_user", "graph.enable_user", "disabled_accounts", "/users/" },
    { "defender.isolate", "defender.unisolate", "isolated_devices", "/machines/" },
};

/* The object an effect acted on: the URL path segment after segment in its request's
 * "url", percent-decoded (at most 255 bytes), or NULL. */
static char *
contain_target(const char *request, const char *segment)
{
    cJSON *req = request ? cJSON_Parse(request) : NULL;
    const char *url = json_get_string(req, "url"), *p;
    char *out = NULL;

    if (url != NULL && (p = strstr(url, segment)) != NULL) {
        size_t len;

        p += strlen(segment);
        len = strcspn(p, "/?#");
        if (len > 0 && len < 256) {
            out = xcalloc(1, len + 1);
            for (size_t i = 0, k = 0; i < len; i++) {
                unsigned int c;

                if (p[i] == '%' && i + 2 < len && sscanf(p + i + 1, "%2x", &c) == 1) {
                    out[k++] = (char)c;
                    i += 2;
                } else {
                    out[k++] = p[i];
                }
            }
        }
    }
    cJSON_Delete(req);
    return out;
}

/* 1 when the effect's result says it was a dry run (nothing happened). */
static int
contain_dry(const char *result)
{
    return result != NULL && strstr(result, "\"dry_run\":true") != NULL;
}

/* The targets contained by kind k and not undone since, newest first, into arr. */
static int
contain_collect(struct store_tenant *db, size_t k, cJSON *arr, char **errp)
{
    struct store_effect_row *done = NULL, *undone = NULL;
    size_t nd = 0, nu = 0;
    cJSON *seen = cJSON_CreateObject();
    char **lifts;

    if (store_effects_by_kind(db, contain_kinds[k].kind, SETTINGS_FX_MAX, &done, &nd, errp) == -1 ||
        store_effects_by_kind(db, contain_kinds[k].undo, SETTINGS_FX_MAX, &undone, &nu, errp) ==
            -1) {
        store_effect_rows_free(done, nd);
        cJSON_Delete(seen);
        return -1;
    }
    /* Each undo's target once (not once per containment effect). */
    lifts = xcalloc(nu + 1, sizeof(*lifts));
    for (size_t u = 0; u < nu; u++) {
        lifts[u] = contain_dry(undone[u].result)
                       ? NULL
                       : contain_target(undone[u].request, contain_kinds[k].segment);
    }
    for (size_t i = 0; i < nd; i++) {
        char *target = contain_target(done[i].request, contain_kinds[k].segment);
        int lifted = 0;

        if (target == NULL || contain_dry(done[i].result) ||
            cJSON_GetObjectItemCaseSensitive(seen, target) != NULL) {
            free(target);
            continue;
        }
        cJSON_AddTrueToObject(seen, target);
        for (size_t u = 0; u < nu && !lifted; u++) {
            lifted = lifts[u] != NULL && undone[u].ended_ms >= done[i].ended_ms &&
                     strcmp(lifts[u], target) == 0;
        }
        if (!lifted) {
            cJSON *e = cJSON_CreateObject();

            cJSON_AddStringToObject(e, "target", target);
            cJSON_AddNumberToObject(e, "run_id", (double)done[i].run_id);
            apireq_add_time(e, "since", done[i].ended_ms);
            cJSON_AddItemToArray(arr, e);
        }
        free(target);
    }
    for (size_t u = 0; u < nu; u++) {
        free(lifts[u]);
    }
    free(lifts);
    store_effect_rows_free(done, nd);
    store_effect_rows_free(undone, nu);
    cJSON_Delete(seen);
    return 0;
}

void
api_containment(struct api_req *r)
{
    struct store_tenant *db = settings_db(r);
    struct store_list_entry *v = NULL;
    size_t n = 0;
    char *err = NULL;
    cJSON *o, *arr;

    if (db == NULL) {
        return;
    }
    o = cJSON_CreateObject();
    if (store_list_live(db, r->now, SETTINGS_LIST_MAX, &v, &n, &err) == -1) {
        goto fail;
    }
    arr = cJSON_AddArrayToObject(o, "blocked");
    for (size_t i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();

        cJSON_AddStringToObject(e, "list", v[i].list);
        cJSON_AddStringToObject(e, "value", v[i].value ? v[i].value : "");
        apireq_add_time(e, "expires", v[i].expires_ms);
        apireq_add_time(e, "updated", v[i].updated_ms);
        cJSON_AddItemToArray(arr, e);
    }
    store_list_entries_free(v, n);
    for (size_t k = 0; k < sizeof(contain_kinds) / sizeof(contain_kinds[0]); k++) {
        if (contain_collect(db, k, cJSON_AddArrayToObject(o, contain_kinds[k].what), &err) == -1) {
            goto fail;
        }
    }
    apireq_add_time(o, "now", r->now);
    apireq_json(r, 200, o);
    return;
fail:
    log_err("api.containment_failed tenant=%s error=%s", r->param[0], log_quote(err ? err : "?"));
    free(err);
    cJSON_Delete(o);
    apireq_error(r, 503, "store_unavailable", "retry");
}

/* ---- the contact chain for urgent escalation ---- */

/* 1 when s is 1..max bytes without control characters. */
static int
chain_text_ok(const char *s, size_t max)
{
    size_t len = s != NULL ? strlen(s) : 0;

    if (len == 0 || len > max) {
        return 0;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* A mail address: local@domain with one '@', a dot in the domain, nothing a header or a
 * list could be split on. */
static int
chain_email_ok(const char *s)
{
    const char *at = s != NULL ? strchr(s, '@') : NULL;

    if (!chain_text_ok(s, 254) || at == NULL || at == s || strchr(at + 1, '@') != NULL ||
        strchr(at + 1, '.') == NULL || at[1] == '.' || s[strlen(s) - 1] == '.') {
        return 0;
    }
    return strpbrk(s, " <>\"',;:()[]\\") == NULL;
}

/* A webhook destination's name as the configuration spells them. */
static int
chain_name_ok(const char *s)
{
    if (!chain_text_ok(s, 64)) {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-')) {
            return 0;
        }
    }
    return 1;
}

/* The body's "contacts", checked, as the array to store (only the known keys), or NULL
 * with a message naming the first fault in *why (static text). */
static cJSON *
chain_from_body(const cJSON *body, char *why, size_t wn)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(body, "contacts"), *k;
    cJSON *out;
    int i = 0;

    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) < 1 || cJSON_GetArraySize(arr) > CHAIN_MAX) {
        snprintf(why, wn, "contacts: an array of 1 to %d contacts", CHAIN_MAX);
        return NULL;
    }
    out = cJSON_CreateArray();
    cJSON_ArrayForEach(k, arr)
    {
        const char *name = json_get_string(k, "name"), *email = json_get_string(k, "email");
        const char *lang = json_get_string(k, "lang");
        const cJSON *hooks = cJSON_GetObjectItemCaseSensitive(k, "webhooks"), *w, *hl;
        const cJSON *wait = cJSON_GetObjectItemCaseSensitive(k, "wait");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(k, "email");
        cJSON *o, *oh;

        i++;
        if (!cJSON_IsObject(k) || !chain_text_ok(name, 100)) {
            snprintf(why, wn, "contact %d: name, 1 to 100 characters without control ones", i);
            goto bad;
        }
        if (e != NULL && !cJSON_IsNull(e) && !chain_email_ok(email)) {
            snprintf(why, wn, "contact %d: email is not a mail address", i);
            goto bad;
        }
        if (hooks != NULL && !cJSON_IsNull(hooks) &&
            (!cJSON_IsArray(hooks) || cJSON_GetArraySize(hooks) > CHAIN_HOOKS_MAX)) {
            snprintf(why, wn, "contact %d: webhooks, a list of at most %d destination names", i,
                     CHAIN_HOOKS_MAX);
            goto bad;
        }
        if (!cJSON_IsNumber(wait) || wait->valuedouble < 1 || wait->valuedouble > 86400) {
            snprintf(why, wn, "contact %d: wait, seconds from 1 to 86400", i);
            goto bad;
        }
        if (cJSON_GetObjectItemCaseSensitive(k, "lang") != NULL &&
            !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(k, "lang")) &&
            (lang == NULL || (strcmp(lang, "ja") != 0 && strcmp(lang, "en") != 0))) {
            snprintf(why, wn, "contact %d: lang, ja or en", i);
            goto bad;
        }
        o = cJSON_CreateObject();
        cJSON_AddItemToArray(out, o);
        cJSON_AddStringToObject(o, "name", name);
        if (email != NULL) {
            cJSON_AddStringToObject(o, "email", email);
        }
        oh = cJSON_AddArrayToObject(o, "webhooks");
        hl = cJSON_IsArray(hooks) ? hooks : NULL;
        cJSON_ArrayForEach(w, hl)
        {
            if (!cJSON_IsString(w) || !chain_name_ok(w->valuestring)) {
                snprintf(why, wn, "contact %d: a webhook destination's name ([A-Za-z0-9._-])", i);
                goto bad;
            }
            cJSON_AddItemToArray(oh, cJSON_CreateString(w->valuestring));
        }
        if (email == NULL && cJSON_GetArraySize(oh) == 0) {
            snprintf(why, wn, "contact %d: an email or a webhook to reach them by", i);
            goto bad;
        }
        cJSON_AddNumberToObject(o, "wait", wait->valuedouble);
        if (lang != NULL) {
            cJSON_AddStringToObject(o, "lang", lang);
        }
    }
    return out;
bad:
    cJSON_Delete(out);
    return NULL;
}

int
api_settings_chain(const char *body, size_t len, char **out, char **errp)
{
    cJSON *root = NULL, *chain;
    char why[128];

    *out = NULL;
    if (json_parse_strict(body != NULL ? body : "", len, 8, &root, errp) == -1) {
        return -1;
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return kg_err(errp, "expected a JSON object");
    }
    chain = chain_from_body(root, why, sizeof(why));
    cJSON_Delete(root);
    if (chain == NULL) {
        return kg_err(errp, "%s", why);
    }
    *out = cJSON_PrintUnformatted(chain);
    cJSON_Delete(chain);
    return 0;
}

/* {"source": "portal"|"config", "contacts": [...], "updated", "updated_by"}. */
static void
chain_answer(struct api_req *r, int status)
{
    struct tenant *t = tenant_find(r->param[0]);
    char *text = NULL, *by = NULL, *err = NULL;
    int64_t updated = 0;
    int saved;
    cJSON *o, *contacts = NULL;

    if (t == NULL || t->db == NULL) {
        apireq_not_found(r);
        return;
    }
    saved = store_setting_get(t->db, CHAIN_KEY, &text, &updated, &by, &err);
    if (saved == -1) {
        free(err);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    if (saved == 0) {
        text = tenant_setting_default(t, CHAIN_KEY);
    }
    if (text != NULL) {
        contacts = cJSON_Parse(text);
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "source", saved ? "portal" : "config");
    cJSON_AddItemToObject(o, "contacts", cJSON_IsArray(contacts) ? contacts : cJSON_CreateArray());
    if (!cJSON_IsArray(contacts)) {
        cJSON_Delete(contacts);
    }
    apireq_add_time(o, "updated", updated);
    cJSON_AddItemToObject(o, "updated_by", by ? cJSON_CreateString(by) : cJSON_CreateNull());
    free(text);
    free(by);
    apireq_json(r, status, o);
}

void
api_contacts(struct api_req *r)
{
    chain_answer(r, 200);
}

/* After the commit: the chain as it stands, or 503 when the commit failed. */
static void
chain_saved(void *arg, int ok)
{
    struct api_req *r = arg;

    if (!ok) {
        apireq_error(r, 503, "store_unavailable", "the change was not saved; retry");
        return;
    }
    chain_answer(r, 200);
}

/* Save (set) or forget (back to the configuration's chain) the tenant's chain, audited;
 * answered after the commit. The escalations already under way keep the chain they
 * started with (it is in their journal). */
static void
chain_change(struct api_req *r, int set)
{
    struct store_tenant *db = settings_db(r);
    char *text = NULL, *err = NULL, detail[64];
    int n = 0;

    if (db == NULL) {
        return;
    }
    if (set) {
        size_t len = 0;
        const char *body = http_request_body(r->http, &len);
        cJSON *arr;

        if (api_settings_chain(body, len, &text, &err) == -1) {
            apireq_error(r, 400, "bad_request", err);
            free(err);
            return;
        }
        arr = cJSON_Parse(text);
        n = cJSON_GetArraySize(arr);
        cJSON_Delete(arr);
    }
    if (loop_write(db, &err) == -1 ||
        (set ? store_setting_put(db, CHAIN_KEY, text, r->now, r->user.name, &err)
             : store_setting_del(db, CHAIN_KEY, &err)) == -1) {
        log_err("api.contacts_failed tenant=%s error=%s", r->param[0], log_quote(err ? err : "?"));
        free(err);
        free(text);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    free(text);
    snprintf(detail, sizeof(detail), "{\"contacts\":%d}", n);
    apireq_audit(r, r->param[0], set ? "contacts.set" : "contacts.reset", r->param[0], "ok",
                 set ? detail : NULL);
    loop_after_commit(db, chain_saved, r);
}

void
api_contacts_set(struct api_req *r)
{
    chain_change(r, 1);
}

void
api_contacts_reset(struct api_req *r)
{
    chain_change(r, 0);
}
