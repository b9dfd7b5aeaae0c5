/* mock_state.c: the seed (built-in defaults, replaced or extended by --seed), the tenants,
 * apps and PAN-OS admins built from it once, the mutable data built from it at start and at
 * every /_mock/reset, the side-effect counters and the state views of the control API. */
#include "tests/mock/mock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "engine/json.h"

#define SEED_MAX (256 * 1024 * 1024)

static const char *const collections[] = {
    "tenants",        "clients",        "users",       "signIns",  "riskyUsers",
    "riskDetections", "alerts",         "incidents",   "machines", "machineActions",
    "indicators",     "managedDevices", "panosAdmins", NULL,
};

/* ---- the seed document ---- */

static const char *
key_field(const char *collection)
{
    if (strcmp(collection, "clients") == 0) {
        return "client_id";
    }
    return strcmp(collection, "panosAdmins") == 0 ? "user" : "id";
}

/* Add items of add[] to base[]: an item whose key matches one in base replaces it. */
static void
merge_collection(cJSON *base, const char *name, const cJSON *add)
{
    cJSON *dst = json_get(base, name);
    const cJSON *it;
    const char *kf = key_field(name);

    if (dst == NULL) {
        dst = cJSON_AddArrayToObject(base, name);
    }
    cJSON_ArrayForEach(it, add)
    {
        const char *k = jstr(it, kf);
        cJSON *have = NULL;
        int idx = 0;

        if (k != NULL) {
            cJSON *d;

            cJSON_ArrayForEach(d, dst)
            {
                const char *dk = jstr(d, kf);

                if (dk != NULL && strcasecmp(dk, k) == 0) {
                    have = d;
                    break;
                }
                idx++;
            }
        }
        if (have != NULL) {
            cJSON_ReplaceItemInArray(dst, idx, cJSON_Duplicate(it, 1));
        } else {
            cJSON_AddItemToArray(dst, cJSON_Duplicate(it, 1));
        }
    }
}

static int
count_of(const cJSON *gen, const char *key, int *out, char **errp)
{
    const cJSON *v = json_get(gen, key);

    *out = 0;
    if (v == NULL) {
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1000000) {
        return kg_err(errp, "seed: generate.%s must be a count (0..1000000)", key);
    }
    *out = (int)v->valuedouble;
    return 0;
}

/* "generate": {"users": N, "machines": N, "managedDevices": N}: bulk entities for the
 * benchmark, appended to the seed's collections. */
static int
generate(cJSON *seed, const cJSON *gen, char **errp)
{
    int nu, nm, nd;
    cJSON *arr;

    if (!cJSON_IsObject(gen)) {
        return kg_err(errp, "seed: generate must be an object");
    }
    if (count_of(gen, "users", &nu, errp) == -1 || count_of(gen, "machines", &nm, errp) == -1 ||
        count_of(gen, "managedDevices", &nd, errp) == -1) {
        return -1;
    }
    arr = json_get(seed, "users");
    for (int i = 1; i <= nu; i++) {
        cJSON *u = cJSON_CreateObject();
        char id[37], upn[64], name[32];

        mock_seq_uuid(0xa11ce100u, (uint64_t)i, id);
        snprintf(upn, sizeof(upn), "user%05d@example.jp", i);
        snprintf(name, sizeof(name), "User %05d", i);
        cJSON_AddStringToObject(u, "id", id);
        cJSON_AddStringToObject(u, "userPrincipalName", upn);
        cJSON_AddStringToObject(u, "displayName", name);
        cJSON_AddStringToObject(u, "mail", upn);
        cJSON_AddBoolToObject(u, "accountEnabled", 1);
        cJSON_AddNullToObject(u, "onPremisesSyncEnabled");
        cJSON_AddStringToObject(u, "userType", "Member");
        cJSON_AddStringToObject(u, "signInSessionsValidFromDateTime", "@now-30d");
        cJSON_AddItemToArray(arr, u);
    }
    arr = json_get(seed, "machines");
    for (int i = 1; i <= nm; i++) {
        cJSON *m = cJSON_CreateObject();
        char id[48], name[64], ip[32];

        snprintf(id, sizeof(id), "ab%038x", i);
        snprintf(name, sizeof(name), "ws-g%05d.corp.example.jp", i);
        snprintf(ip, sizeof(ip), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        cJSON_AddStringToObject(m, "id", id);
        cJSON_AddStringToObject(m, "computerDnsName", name);
        cJSON_AddStringToObject(m, "firstSeen", "@now-100d");
        cJSON_AddStringToObject(m, "lastSeen", "@now-5m");
        cJSON_AddStringToObject(m, "osPlatform", "Windows10");
        cJSON_AddStringToObject(m, "lastIpAddress", ip);
        cJSON_AddStringToObject(m, "healthStatus", "Active");
        cJSON_AddStringToObject(m, "onboardingStatus", "Onboarded");
        cJSON_AddStringToObject(m, "riskScore", "Low");
        cJSON_AddNullToObject(m, "aadDeviceId");
        cJSON_AddItemToObject(m, "machineTags", cJSON_CreateArray());
        cJSON_AddItemToArray(arr, m);
    }
    arr = json_get(seed, "managedDevices");
    for (int i = 1; i <= nd; i++) {
        cJSON *d = cJSON_CreateObject();
        char id[37], name[32];

        mock_seq_uuid(0x0d1c0100u, (uint64_t)i, id);
        snprintf(name, sizeof(name), "WS-G%05d", i);
        cJSON_AddStringToObject(d, "id", id);
        cJSON_AddStringToObject(d, "deviceName", name);
        cJSON_AddStringToObject(d, "userPrincipalName", "alice@example.jp");
        cJSON_AddStringToObject(d, "operatingSystem", "Windows");
        cJSON_AddStringToObject(d, "complianceState", "compliant");
        cJSON_AddStringToObject(d, "managementAgent", "mdm");
        cJSON_AddItemToObject(d, "deviceActionResults", cJSON_CreateArray());
        cJSON_AddItemToArray(arr, d);
    }
    return 0;
}

/* The built-in seed, with ' turned into ". */
static cJSON *
default_seed(char **errp)
{
    char *text = xstrdup(mock_default_seed());
    cJSON *seed = NULL;

    for (char *p = text; *p != '\0'; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }
    if (json_parse_strict(text, strlen(text), JSON_MAX_DEPTH, &seed, errp) == -1) {
        free(text);
        return NULL;
    }
    free(text);
    return seed;
}

/* Build the effective seed: defaults, then the file's collections merged (or, with
 * "replace": true, the file alone), then generated entities, then times resolved. */
static cJSON *
load_seed(const char *path, char **errp)
{
    cJSON *seed = default_seed(errp), *file = NULL, *it;
    char *text;
    size_t len;

    if (seed == NULL) {
        return NULL;
    }
    if (path != NULL) {
        text = util_read_file(path, SEED_MAX, &len, errp);
        if (text == NULL) {
            goto fail;
        }
        if (json_parse_strict(text, len, JSON_MAX_DEPTH, &file, errp) == -1) {
            free(text);
            goto fail;
        }
        free(text);
        if (!cJSON_IsObject(file)) {
            kg_err(errp, "seed %s: not a JSON object", path);
            goto fail;
        }
        cJSON_ArrayForEach(it, file)
        {
            int known = strcmp(it->string, "replace") == 0 || strcmp(it->string, "generate") == 0 ||
                        it->string[0] == '_';

            for (size_t i = 0; collections[i] != NULL && !known; i++) {
                if (strcmp(it->string, collections[i]) == 0) {
                    if (!cJSON_IsArray(it)) {
                        kg_err(errp, "seed %s: %s must be an array", path, it->string);
                        goto fail;
                    }
                    known = 1;
                }
            }
            if (!known) {
                kg_err(errp, "seed %s: unknown key '%s'", path, it->string);
                goto fail;
            }
        }
        if (cJSON_IsTrue(json_get(file, "replace"))) {
            cJSON_Delete(seed);
            seed = cJSON_CreateObject();
        }
        for (size_t i = 0; collections[i] != NULL; i++) {
            const cJSON *add = json_get(file, collections[i]);

            if (add != NULL) {
                merge_collection(seed, collections[i], add);
            }
        }
    }
    for (size_t i = 0; collections[i] != NULL; i++) {
        if (json_get(seed, collections[i]) == NULL) {
            cJSON_AddArrayToObject(seed, collections[i]);
        }
    }
    if (file != NULL && json_get(file, "generate") != NULL &&
        generate(seed, json_get(file, "generate"), errp) == -1) {
        goto fail;
    }
    cJSON_Delete(file);
    mock_resolve_times(seed, util_now_ms());
    return seed;
fail:
    cJSON_Delete(file);
    cJSON_Delete(seed);
    return NULL;
}

/* ---- tenants and apps ---- */

static int
load_cert(struct m_client *c, const char *pem, char **errp)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
    unsigned int mdlen;
    int dlen;
    char *b;

    BIO_free(bio);
    if (x == NULL) {
        return kg_err(errp, "client %s: the certificate is not a PEM X.509 certificate",
                      c->client_id);
    }
    c->pkey = X509_get_pubkey(x);
    dlen = i2d_X509(x, &der);
    X509_free(x);
    if (c->pkey == NULL || dlen <= 0) {
        OPENSSL_free(der);
        return kg_err(errp, "client %s: unusable certificate", c->client_id);
    }
    EVP_Digest(der, (size_t)dlen, md, &mdlen, EVP_sha1(), NULL);
    b = mock_b64url_encode(md, mdlen);
    snprintf(c->x5t, sizeof(c->x5t), "%s", b);
    free(b);
    EVP_Digest(der, (size_t)dlen, md, &mdlen, EVP_sha256(), NULL);
    b = mock_b64url_encode(md, mdlen);
    snprintf(c->x5t256, sizeof(c->x5t256), "%s", b);
    free(b);
    OPENSSL_free(der);
    return 0;
}

static int
load_tenants(char **errp)
{
    const cJSON *it, *d;

    cJSON_ArrayForEach(it, json_get(mock.seed, "tenants"))
    {
        struct m_tenant *t;
        const char *id = jstr(it, "id");

        if (id == NULL) {
            return kg_err(errp, "seed: a tenant without an id");
        }
        t = xcalloc(1, sizeof(*t));
        t->id = xstrdup(id);
        t->domains = cJSON_Duplicate(json_get(it, "domains"), 1);
        if (t->domains == NULL) {
            t->domains = cJSON_CreateArray();
        }
        mvec_push(&mock.tenants, t);
        mmap_put(&mock.tenant_map, t->id, t);
        cJSON_ArrayForEach(d, t->domains)
        {
            if (cJSON_IsString(d)) {
                mmap_put(&mock.tenant_map, d->valuestring, t);
            }
        }
    }
    cJSON_ArrayForEach(it, json_get(mock.seed, "clients"))
    {
        struct m_client *c;
        const char *tid = jstr(it, "tenant"), *cid = jstr(it, "client_id");
        const char *pem = jstr(it, "certificate"), *pemfile = jstr(it, "certificate_file");
        struct m_tenant *t = mock_tenant(tid);
        char key[300];

        if (cid == NULL || t == NULL) {
            return kg_err(errp, "seed: a client needs client_id and a known tenant");
        }
        c = xcalloc(1, sizeof(*c));
        c->tenant = t;
        c->client_id = xstrdup(cid);
        c->secret = jstr(it, "client_secret") ? xstrdup(jstr(it, "client_secret")) : NULL;
        c->secret_expired = cJSON_IsTrue(json_get(it, "secret_expired"));
        c->display_name = xstrdup(jstr(it, "display_name") ? jstr(it, "display_name") : cid);
        if (cJSON_IsArray(json_get(it, "roles"))) {
            c->roles = cJSON_Duplicate(json_get(it, "roles"), 1);
        }
        mvec_push(&mock.clients, c);
        snprintf(key, sizeof(key), "%s|%s", t->id, cid);
        mmap_put(&mock.client_map, key, c);
        if (pemfile != NULL) {
            size_t len;
            char *text = util_read_file(pemfile, 1024 * 1024, &len, errp);

            if (text == NULL) {
                return -1;
            }
            if (load_cert(c, text, errp) == -1) {
                free(text);
                return -1;
            }
            free(text);
        } else if (pem != NULL && load_cert(c, pem, errp) == -1) {
            return -1;
        }
    }
    return 0;
}

struct m_tenant *
mock_tenant(const char *id_or_domain)
{
    return id_or_domain != NULL ? mmap_get(&mock.tenant_map, id_or_domain) : NULL;
}

/* ---- data ---- */

/* A copy of a seed item without its hidden ('_') members. */
static cJSON *
visible_copy(const cJSON *item)
{
    cJSON *o = cJSON_Duplicate(item, 1), *c = o != NULL ? o->child : NULL;

    while (c != NULL) {
        cJSON *next = c->next;

        if (c->string != NULL && c->string[0] == '_') {
            cJSON_Delete(cJSON_DetachItemViaPointer(o, c));
        }
        c = next;
    }
    return o;
}

static const char *g_sort_key;

static int
cmp_time_desc(const void *a, const void *b)
{
    const cJSON *x = *(cJSON *const *)a, *y = *(cJSON *const *)b;
    int64_t tx = mock_parse_time_or(jstr(x, g_sort_key), 0);
    int64_t ty = mock_parse_time_or(jstr(y, g_sort_key), 0);

    return tx < ty ? 1 : tx > ty ? -1 : 0;
}

/* Copies of a seed collection's items, newest first by key (NULL: seed order). Each
 * needs the string members named in req. */
static int
load_items(const char *name, const char *sort_key, const char *const *req, struct mvec *out,
           char **errp)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, json_get(mock.seed, name))
    {
        if (!cJSON_IsObject(it)) {
            return kg_err(errp, "seed: %s: every item must be an object", name);
        }
        for (size_t i = 0; req != NULL && req[i] != NULL; i++) {
            if (jstr(it, req[i]) == NULL) {
                return kg_err(errp, "seed: %s: an item without a string '%s'", name, req[i]);
            }
        }
        mvec_push(out, visible_copy(it));
    }
    if (sort_key != NULL && out->n > 1) {
        g_sort_key = sort_key;
        qsort(out->v, out->n, sizeof(void *), cmp_time_desc);
    }
    return 0;
}

static int
load_data(char **errp)
{
    static const char *const req_id[] = { "id", NULL };
    static const char *const req_machine[] = { "id", "computerDnsName", NULL };
    static const char *const req_action[] = { "id", "type", "status", "machineId", NULL };
    static const char *const req_ind[] = { "id", "indicatorValue", "indicatorType", NULL };
    struct mvec tmp = { 0 };
    const cJSON *it;
    int rc = -1;

    /* users */
    cJSON_ArrayForEach(it, json_get(mock.seed, "users"))
    {
        struct m_user *u;

        if (jstr(it, "id") == NULL || jstr(it, "userPrincipalName") == NULL) {
            return kg_err(errp, "seed: users: an item without id or userPrincipalName");
        }
        u = xcalloc(1, sizeof(*u));
        u->privileged = cJSON_IsTrue(json_get(it, "_privileged"));
        u->obj = visible_copy(it);
        mvec_push(&mock.users, u);
        mmap_put(&mock.user_map, jstr(u->obj, "id"), u);
        mmap_put(&mock.user_map, jstr(u->obj, "userPrincipalName"), u);
    }
    if (load_items("signIns", "createdDateTime", req_id, &mock.signins, errp) == -1 ||
        load_items("riskDetections", "detectedDateTime", req_id, &mock.detections, errp) == -1) {
        return -1;
    }
    /* risky users */
    if (load_items("riskyUsers", NULL, req_id, &tmp, errp) == -1) {
        goto out;
    }
    for (size_t i = 0; i < tmp.n; i++) {
        struct m_risky *ru = xcalloc(1, sizeof(*ru));

        ru->obj = tmp.v[i];
        ru->history = cJSON_CreateArray();
        mvec_push(&mock.risky, ru);
        mmap_put(&mock.risky_map, jstr(ru->obj, "id"), ru);
    }
    tmp.n = 0;
    /* alerts and incidents */
    if (load_items("alerts", "createdDateTime", req_id, &tmp, errp) == -1) {
        goto out;
    }
    for (size_t i = 0; i < tmp.n; i++) {
        struct m_secitem *a = xcalloc(1, sizeof(*a));

        a->obj = tmp.v[i];
        if (!cJSON_IsArray(json_get(a->obj, "comments"))) {
            jset(a->obj, "comments", cJSON_CreateArray());
        }
        mvec_push(&mock.alerts, a);
        mmap_put(&mock.alert_map, jstr(a->obj, "id"), a);
    }
    tmp.n = 0;
    if (load_items("incidents", "createdDateTime", req_id, &tmp, errp) == -1) {
        goto out;
    }
    for (size_t i = 0; i < tmp.n; i++) {
        struct m_secitem *a = xcalloc(1, sizeof(*a));

        a->obj = tmp.v[i];
        if (!cJSON_IsArray(json_get(a->obj, "comments"))) {
            jset(a->obj, "comments", cJSON_CreateArray());
        }
        mvec_push(&mock.incidents, a);
        mmap_put(&mock.incident_map, jstr(a->obj, "id"), a);
    }
    tmp.n = 0;
    /* machines */
    cJSON_ArrayForEach(it, json_get(mock.seed, "machines"))
    {
        struct m_machine *m;

        for (size_t i = 0; req_machine[i] != NULL; i++) {
            if (jstr(it, req_machine[i]) == NULL) {
                rc = kg_err(errp, "seed: machines: an item without '%s'", req_machine[i]);
                goto out;
            }
        }
        m = xcalloc(1, sizeof(*m));
        m->offline = cJSON_IsTrue(json_get(it, "_offline"));
        if (cJSON_IsObject(json_get(it, "_action_results"))) {
            m->action_results = cJSON_Duplicate(json_get(it, "_action_results"), 1);
        }
        if (cJSON_IsArray(json_get(it, "_ip_history"))) {
            m->ip_history = cJSON_Duplicate(json_get(it, "_ip_history"), 1);
        }
        m->obj = visible_copy(it);
        mvec_push(&mock.machines, m);
        mmap_put(&mock.machine_map, jstr(m->obj, "id"), m);
        mmap_put(&mock.machine_map, jstr(m->obj, "computerDnsName"), m);
    }
    /* machine actions: newest first; completed ones applied oldest first */
    if (load_items("machineActions", "creationDateTimeUtc", req_action, &tmp, errp) == -1) {
        goto out;
    }
    for (size_t i = 0; i < tmp.n; i++) {
        struct m_action *a = xcalloc(1, sizeof(*a));
        const char *st = jstr(tmp.v[i], "status");

        a->obj = tmp.v[i];
        tmp.v[i] = NULL;
        a->m = mmap_get(&mock.machine_map, jstr(a->obj, "machineId"));
        a->type = mde_action_type(jstr(a->obj, "type"));
        mvec_push(&mock.actions, a);
        if (a->m == NULL || a->type < 0) {
            rc = kg_err(errp, "seed: machineActions: %s: unknown machineId or type",
                        jstr(a->obj, "id"));
            goto out;
        }
        mmap_put(&mock.action_map, jstr(a->obj, "id"), a);
        if (strcmp(st, "Pending") == 0 || strcmp(st, "InProgress") == 0) {
            const cJSON *res = a->m->action_results;
            const char *fin = jstr(res, jstr(a->obj, "type"));

            if (fin == NULL) {
                fin = jstr(res, "*");
            }
            snprintf(a->final_status, sizeof(a->final_status), "%s",
                     fin != NULL ? fin : mock.cfg.action_final);
        } else {
            snprintf(a->final_status, sizeof(a->final_status), "%s", st);
            a->final_applied = 1;
        }
    }
    for (size_t i = mock.actions.n; i > 0; i--) {
        struct m_action *a = mock.actions.v[i - 1];

        if (a->final_applied) {
            mde_apply_final(a);
        }
    }
    tmp.n = 0;
    /* indicators */
    if (load_items("indicators", NULL, req_ind, &tmp, errp) == -1) {
        goto out;
    }
    for (size_t i = 0; i < tmp.n; i++) {
        struct m_indicator *ind = xcalloc(1, sizeof(*ind));
        unsigned long long idn = strtoull(jstr(tmp.v[i], "id"), NULL, 10);

        ind->obj = tmp.v[i];
        ind->key =
            xasprintf("%s|%s", jstr(ind->obj, "indicatorType"), jstr(ind->obj, "indicatorValue"));
        mvec_push(&mock.indicators, ind);
        mmap_put(&mock.indicator_map, jstr(ind->obj, "id"), ind);
        mmap_put(&mock.indicator_key, ind->key, ind);
        if (idn >= mock.next_indicator) {
            mock.next_indicator = idn + 1;
        }
    }
    tmp.n = 0;
    /* Intune devices */
    if (load_items("managedDevices", NULL, req_id, &tmp, errp) == -1) {
        goto out;
    }
    for (size_t i = 0; i < tmp.n; i++) {
        struct m_device *d = xcalloc(1, sizeof(*d));
        cJSON *res;

        d->obj = tmp.v[i];
        res = json_get(d->obj, "deviceActionResults");
        if (!cJSON_IsArray(res)) {
            jset(d->obj, "deviceActionResults", cJSON_CreateArray());
            res = json_get(d->obj, "deviceActionResults");
        }
        d->nres = (size_t)cJSON_GetArraySize(res);
        d->res = xcalloc(d->nres + 1, sizeof(*d->res));
        for (size_t k = 0; k < d->nres; k++) {
            const char *an = jstr(cJSON_GetArrayItem(res, (int)k), "actionName");

            snprintf(d->res[k].name, sizeof(d->res[k].name), "%s", an != NULL ? an : "");
        }
        mvec_push(&mock.devices, d);
        mmap_put(&mock.device_map, jstr(d->obj, "id"), d);
    }
    tmp.n = 0;
    if (mock.next_indicator == 0) {
        mock.next_indicator = 1;
    }
    mock.next_action = 1;
    mock.next_history = 1;
    rc = 0;
out:
    for (size_t i = 0; i < tmp.n; i++) {
        cJSON_Delete(tmp.v[i]);
    }
    mvec_free(&tmp);
    return rc;
}

static void
free_data(void)
{
    for (size_t i = 0; i < mock.users.n; i++) {
        struct m_user *u = mock.users.v[i];

        cJSON_Delete(u->obj);
        free(u);
    }
    mvec_free(&mock.users);
    mmap_clear(&mock.user_map);
    for (size_t i = 0; i < mock.signins.n; i++) {
        cJSON_Delete(mock.signins.v[i]);
    }
    mvec_free(&mock.signins);
    for (size_t i = 0; i < mock.detections.n; i++) {
        cJSON_Delete(mock.detections.v[i]);
    }
    mvec_free(&mock.detections);
    for (size_t i = 0; i < mock.risky.n; i++) {
        struct m_risky *ru = mock.risky.v[i];

        cJSON_Delete(ru->obj);
        cJSON_Delete(ru->history);
        free(ru);
    }
    mvec_free(&mock.risky);
    mmap_clear(&mock.risky_map);
    for (size_t i = 0; i < mock.alerts.n; i++) {
        struct m_secitem *a = mock.alerts.v[i];

        cJSON_Delete(a->obj);
        free(a);
    }
    mvec_free(&mock.alerts);
    mmap_clear(&mock.alert_map);
    for (size_t i = 0; i < mock.incidents.n; i++) {
        struct m_secitem *a = mock.incidents.v[i];

        cJSON_Delete(a->obj);
        free(a);
    }
    mvec_free(&mock.incidents);
    mmap_clear(&mock.incident_map);
    for (size_t i = 0; i < mock.machines.n; i++) {
        struct m_machine *m = mock.machines.v[i];

        cJSON_Delete(m->obj);
        cJSON_Delete(m->action_results);
        cJSON_Delete(m->ip_history);
        free(m);
    }
    mvec_free(&mock.machines);
    mmap_clear(&mock.machine_map);
    for (size_t i = 0; i < mock.actions.n; i++) {
        struct m_action *a = mock.actions.v[i];

        cJSON_Delete(a->obj);
        free(a);
    }
    mvec_free(&mock.actions);
    mmap_clear(&mock.action_map);
    for (size_t i = 0; i < mock.indicators.n; i++) {
        struct m_indicator *ind = mock.indicators.v[i];

        cJSON_Delete(ind->obj);
        free(ind->key);
        free(ind);
    }
    mvec_free(&mock.indicators);
    mmap_clear(&mock.indicator_map);
    mmap_clear(&mock.indicator_key);
    for (size_t i = 0; i < mock.devices.n; i++) {
        struct m_device *d = mock.devices.v[i];

        cJSON_Delete(d->obj);
        cJSON_Delete(d->counts);
        free(d->res);
        free(d);
    }
    mvec_free(&mock.devices);
    mmap_clear(&mock.device_map);
    mock.next_indicator = 0;
}

static void
clear_counters(void)
{
    mock.tokens_issued = mock.requests_total = mock.answered_401 = mock.answered_429 = 0;
    mock.faults_applied = mock.ind_added = mock.ind_updated = mock.ind_removed = 0;
    cJSON_Delete(mock.token_counts);
    mock.token_counts = cJSON_CreateObject();
    if (mock.route_count != NULL) {
        mock_route_counts_reset();
    }
}

int
mock_state_init(const char *seed_path, char **errp)
{
    mock.seed = load_seed(seed_path, errp);
    if (mock.seed == NULL) {
        return -1;
    }
    clear_counters();
    if (load_tenants(errp) == -1 || panos_init(errp) == -1 || load_data(errp) == -1) {
        return -1;
    }
    return 0;
}

/* Back to the seed: data, counters, request log, faults and latency, configuration (as
 * given on the command line), rate-limit windows. Issued tokens stay valid. */
void
mock_state_reset(void)
{
    char *err = NULL;

    free_data();
    clear_counters();
    panos_reset();
    mock_blob_reset();
    mock_log_clear();
    for (size_t i = 0; i < mock.faults.n; i++) {
        struct fault *f = mock.faults.v[i];

        free(f->prefix);
        free(f);
    }
    mock.faults.n = 0;
    for (size_t i = 0; i < mock.delays.n; i++) {
        struct delay *d = mock.delays.v[i];

        free(d->prefix);
        free(d);
    }
    mock.delays.n = 0;
    mock.cfg = mock.cfg0;
    free(mock.next_link);
    mock.next_link = NULL;
    for (size_t i = 0; i < mock.tenants.n; i++) {
        struct m_tenant *t = mock.tenants.v[i];

        for (int l = 0; l < LIM_N; l++) {
            limiter_reset(&t->lim[l]);
        }
    }
    if (load_data(&err) == -1) { /* the same seed loaded at start: cannot fail */
        fprintf(stderr, "kagari-mock: reset: %s\n", err);
        abort();
    }
}

void
mock_state_free(void)
{
    free_data();
    panos_free();
    token_free_all();
    for (size_t i = 0; i < mock.clients.n; i++) {
        struct m_client *c = mock.clients.v[i];

        free(c->client_id);
        free(c->secret);
        free(c->display_name);
        cJSON_Delete(c->roles);
        EVP_PKEY_free(c->pkey);
        free(c);
    }
    mvec_free(&mock.clients);
    mmap_clear(&mock.client_map);
    for (size_t i = 0; i < mock.tenants.n; i++) {
        struct m_tenant *t = mock.tenants.v[i];

        free(t->id);
        cJSON_Delete(t->domains);
        for (int l = 0; l < LIM_N; l++) {
            limiter_reset(&t->lim[l]);
        }
        free(t);
    }
    mvec_free(&mock.tenants);
    mmap_clear(&mock.tenant_map);
    cJSON_Delete(mock.token_counts);
    mock.token_counts = NULL;
    cJSON_Delete(mock.seed);
    mock.seed = NULL;
}

struct m_user *
mock_user(const char *id_or_upn)
{
    return mmap_get(&mock.user_map, id_or_upn);
}

struct m_machine *
mock_machine(const char *id_or_name)
{
    return mmap_get(&mock.machine_map, id_or_name);
}

/* ---- counters and state views ---- */

static void
add_nonzero(cJSON *o, const char *key, unsigned long v)
{
    if (v > 0) {
        cJSON_AddNumberToObject(o, key, (double)v);
    }
}

static cJSON *
secitem_counters(struct mvec *items)
{
    cJSON *o = cJSON_CreateObject();

    for (size_t i = 0; i < items->n; i++) {
        struct m_secitem *a = items->v[i];

        if (a->n_update + a->n_comment > 0) {
            cJSON *e = cJSON_AddObjectToObject(o, jstr(a->obj, "id"));

            cJSON_AddNumberToObject(e, "update", (double)a->n_update);
            cJSON_AddNumberToObject(e, "comment", (double)a->n_comment);
        }
    }
    return o;
}

static cJSON *
user_counters(const struct m_user *u)
{
    cJSON *e = cJSON_CreateObject();

    cJSON_AddStringToObject(e, "id", jstr(u->obj, "id"));
    cJSON_AddNumberToObject(e, "disable", (double)u->n_disable);
    cJSON_AddNumberToObject(e, "enable", (double)u->n_enable);
    cJSON_AddNumberToObject(e, "revoke", (double)u->n_revoke);
    cJSON_AddNumberToObject(e, "patch", (double)u->n_patch);
    return e;
}

static cJSON *
machine_counters(const struct m_machine *m)
{
    cJSON *e = cJSON_CreateObject();

    cJSON_AddStringToObject(e, "computerDnsName", jstr(m->obj, "computerDnsName"));
    for (int t = 0; t < MDE_ACTION_TYPES; t++) {
        add_nonzero(e, mde_action_type_name(t), m->n_action[t]);
    }
    cJSON_AddNumberToObject(e, "rejected", (double)m->n_rejected);
    cJSON_AddNumberToObject(e, "completed", (double)m->n_completed);
    return e;
}

/* Every side effect and request count, for assertions ("disabled exactly once"). Only
 * entities with a side effect are listed; a missing entry means zero. */
cJSON *
mock_counters_json(void)
{
    cJSON *o = cJSON_CreateObject(), *sub;

    cJSON_AddNumberToObject(o, "requests_total", (double)mock.requests_total);
    cJSON_AddNumberToObject(o, "answered_401", (double)mock.answered_401);
    cJSON_AddNumberToObject(o, "answered_429", (double)mock.answered_429);
    cJSON_AddNumberToObject(o, "faults_applied", (double)mock.faults_applied);
    sub = cJSON_AddObjectToObject(o, "tokens");
    cJSON_AddNumberToObject(sub, "issued", (double)mock.tokens_issued);
    cJSON_AddItemToObject(sub, "by_client_scope", cJSON_Duplicate(mock.token_counts, 1));
    cJSON_AddItemToObject(o, "routes", mock_route_counts());
    sub = cJSON_AddObjectToObject(o, "users");
    for (size_t i = 0; i < mock.users.n; i++) {
        struct m_user *u = mock.users.v[i];

        if (u->n_disable + u->n_enable + u->n_revoke + u->n_patch > 0) {
            cJSON_AddItemToObject(sub, jstr(u->obj, "userPrincipalName"), user_counters(u));
        }
    }
    sub = cJSON_AddObjectToObject(o, "risky_users");
    for (size_t i = 0; i < mock.risky.n; i++) {
        struct m_risky *ru = mock.risky.v[i];

        if (ru->n_confirm + ru->n_dismiss > 0) {
            cJSON *e = cJSON_AddObjectToObject(sub, jstr(ru->obj, "id"));

            cJSON_AddNumberToObject(e, "confirm", (double)ru->n_confirm);
            cJSON_AddNumberToObject(e, "dismiss", (double)ru->n_dismiss);
        }
    }
    sub = cJSON_AddObjectToObject(o, "machines");
    for (size_t i = 0; i < mock.machines.n; i++) {
        struct m_machine *m = mock.machines.v[i];
        unsigned long any = m->n_rejected;

        for (int t = 0; t < MDE_ACTION_TYPES; t++) {
            any += m->n_action[t];
        }
        if (any > 0) {
            cJSON_AddItemToObject(sub, jstr(m->obj, "id"), machine_counters(m));
        }
    }
    sub = cJSON_AddObjectToObject(o, "indicators");
    cJSON_AddNumberToObject(sub, "added", (double)mock.ind_added);
    cJSON_AddNumberToObject(sub, "updated", (double)mock.ind_updated);
    cJSON_AddNumberToObject(sub, "removed", (double)mock.ind_removed);
    cJSON_AddNumberToObject(sub, "active", (double)mock.indicators.n);
    cJSON_AddItemToObject(o, "alerts", secitem_counters(&mock.alerts));
    cJSON_AddItemToObject(o, "incidents", secitem_counters(&mock.incidents));
    sub = cJSON_AddObjectToObject(o, "intune");
    for (size_t i = 0; i < mock.devices.n; i++) {
        struct m_device *d = mock.devices.v[i];

        if (d->counts != NULL) {
            cJSON *e = cJSON_Duplicate(d->counts, 1);

            cJSON_AddStringToObject(e, "deviceName", jstr(d->obj, "deviceName"));
            cJSON_AddItemToObject(sub, jstr(d->obj, "id"), e);
        }
    }
    cJSON_AddItemToObject(o, "panos", panos_counters_json());
    return o;
}

cJSON *
mock_user_state(struct m_user *u)
{
    cJSON *o = cJSON_Duplicate(u->obj, 1);

    cJSON_AddBoolToObject(o, "_privileged", u->privileged);
    cJSON_AddItemToObject(o, "_counters", user_counters(u));
    return o;
}

cJSON *
mock_machine_state(struct m_machine *m)
{
    cJSON *o = cJSON_Duplicate(m->obj, 1), *acts;

    cJSON_AddBoolToObject(o, "isolated", m->isolated);
    cJSON_AddBoolToObject(o, "restricted", m->restricted);
    cJSON_AddBoolToObject(o, "offboarded", m->offboarded);
    cJSON_AddBoolToObject(o, "offline", m->offline);
    acts = cJSON_AddArrayToObject(o, "actions");
    for (size_t i = 0; i < mock.actions.n; i++) {
        struct m_action *a = mock.actions.v[i];

        if (a->m == m) {
            cJSON_AddItemToArray(acts, mde_render_action(a));
        }
    }
    cJSON_AddItemToObject(o, "_counters", machine_counters(m));
    return o;
}
