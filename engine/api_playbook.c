/* api_playbook.c: the playbook view of the people's API, and a deployment by a platform
 * operator. The playbooks a tenant sees are those the daemon serves now and those its
 * database has deployments of; versions and runs come from the tenant's own database
 * only, so another tenant's version is unknown here (404) like any unknown id. */
#include "engine/api_playbook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/api_read.h"
#include "engine/env.h"
#include "engine/json.h"
#include "engine/kagari.h"
#include "engine/log.h"
#include "engine/loop.h"
#include "engine/run.h"
#include "engine/tenant.h"

#define PB_DEPLOYS_MAX 500 /* deployments listed per playbook */
#define PB_NAMES_MAX 1000  /* playbooks with a recorded deployment listed */
#define PB_RUN_WINDOW_MS (30LL * 86400 * 1000)
#define PB_RUNS_DEFAULT 50
#define PB_RUNS_MAX 500
#define PB_DEPLOY_MEMORY (64u << 20) /* the sandbox a deployed file is loaded in */

/* A playbook name as playbook{} accepts it: 1-64 of [A-Za-z0-9._-]. */
static int
pb_name_ok(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n <= 64 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* A version: 64 lower-case hex digits. */
static int
pb_version_ok(const char *s)
{
    return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* The version of name the daemon serves now, or NULL. */
static struct playbook *
pb_serving(const char *name)
{
    const struct playbook_set *set = run_playbooks();

    for (size_t i = 0; i < set->n; i++) {
        if (strcmp(set->v[i]->name, name) == 0) {
            return set->v[i];
        }
    }
    return NULL;
}

static cJSON *
strv_json(char **v, size_t n)
{
    cJSON *a = cJSON_CreateArray();

    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    }
    return a;
}

static cJSON *
null_or_string(const char *s)
{
    return s != NULL ? cJSON_CreateString(s) : cJSON_CreateNull();
}

/* One playbook as the list and the detail show it: the version serving now, else the
 * one its latest deployment here (last, may be NULL) names. NULL on a database error
 * (logged; the caller answers). */
static cJSON *
pb_json(struct api_req *r, struct tenant *t, const char *name, const struct store_deploy *last)
{
    struct playbook *serving = pb_serving(name), *pb = serving;
    cJSON *o = cJSON_CreateObject(), *trig, *dry;
    int sw = 0, on = 0;
    int64_t changed = 0, runs = 0;
    char *by = NULL, *err = NULL;

    if (pb == NULL && last != NULL) {
        pb = tenant_version(t, last->version);
    }
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddBoolToObject(o, "serving", serving != NULL);
    cJSON_AddItemToObject(o, "description", null_or_string(pb ? pb->description : NULL));
    cJSON_AddItemToObject(o, "version",
                          null_or_string(pb     ? pb->hash
                                         : last ? last->version
                                                : NULL));
    if (last != NULL && (pb == NULL || strcmp(last->version, pb->hash) == 0)) {
        apireq_add_time(o, "deployed", last->deployed_ms);
        cJSON_AddItemToObject(o, "deployed_by", null_or_string(last->by));
        cJSON_AddStringToObject(o, "deployed_via", last->via);
    } else {
        cJSON_AddNullToObject(o, "deployed");
        cJSON_AddNullToObject(o, "deployed_by");
        cJSON_AddNullToObject(o, "deployed_via");
    }
    trig = cJSON_AddObjectToObject(o, "triggers");
    if (pb != NULL) {
        cJSON_AddItemToObject(trig, "source", strv_json(pb->sources, pb->nsources));
        cJSON_AddStringToObject(trig, "min_severity", severity_name(pb->min_severity));
        cJSON_AddItemToObject(trig, "outcome", strv_json(pb->outcomes, pb->noutcomes));
    }
    sw = store_switch_get(t->db, name, &on, &changed, &by, &err);
    if (sw == -1 ||
        store_run_count_playbook(t->db, name, r->now - PB_RUN_WINDOW_MS, &runs, &err) == -1) {
        log_err("api.playbook_failed tenant=%s name=%s error=%s", t->id, name,
                log_quote(err ? err : "?"));
        free(err);
        free(by);
        cJSON_Delete(o);
        return NULL;
    }
    dry = cJSON_AddObjectToObject(o, "dry_run");
    cJSON_AddBoolToObject(dry, "effective",
                          tenant_dry_run(t) || (sw == 1 ? on : pb != NULL && pb->dry_run));
    cJSON_AddBoolToObject(dry, "playbook", pb != NULL && pb->dry_run);
    cJSON_AddItemToObject(dry, "switch", sw == 1 ? cJSON_CreateBool(on) : cJSON_CreateNull());
    apireq_add_time(dry, "changed", sw == 1 ? changed : 0);
    cJSON_AddItemToObject(dry, "changed_by", null_or_string(sw == 1 ? by : NULL));
    cJSON_AddBoolToObject(dry, "tenant", tenant_dry_run(t));
    free(by);
    cJSON_AddNumberToObject(o, "runs_30d", (double)runs);
    return o;
}

static int
cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void
api_playbooks(struct api_req *r)
{
    struct tenant *t = apireq_tenant(r);
    const struct playbook_set *set = run_playbooks();
    struct store_deploy *d = NULL;
    size_t nd = 0, nnames = 0;
    cJSON *o, *arr;
    const char **names; /* borrowed from set and d */
    char *err = NULL;

    if (t == NULL) {
        return;
    }
    if (store_deploy_list(t->db, NULL, PB_NAMES_MAX, &d, &nd, &err) == -1) {
        log_err("api.playbooks_failed tenant=%s error=%s", t->id, log_quote(err ? err : "?"));
        free(err);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    /* The names: those served now and those with a deployment here, each once. */
    names = xcalloc(set->n + nd + 1, sizeof(*names));
    for (size_t i = 0; i < set->n + nd; i++) {
        const char *nm = i < set->n ? set->v[i]->name : d[i - set->n].name;
        int dup = 0;

        for (size_t k = 0; k < nnames && !dup; k++) {
            dup = strcmp(names[k], nm) == 0;
        }
        if (!dup) {
            names[nnames++] = nm;
        }
    }
    qsort(names, nnames, sizeof(*names), cmp_name);
    o = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(o, "playbooks");
    for (size_t i = 0; i < nnames; i++) {
        const struct store_deploy *last = NULL;
        cJSON *p;

        for (size_t k = 0; k < nd && last == NULL; k++) {
            if (strcmp(d[k].name, names[i]) == 0) {
                last = &d[k];
            }
        }
        p = pb_json(r, t, names[i], last);
        if (p == NULL) {
            free(names);
            store_deploys_free(d, nd);
            cJSON_Delete(o);
            apireq_error(r, 503, "store_unavailable", "retry");
            return;
        }
        cJSON_AddItemToArray(arr, p);
    }
    free(names);
    store_deploys_free(d, nd);
    cJSON_AddBoolToObject(o, "tenant_dry_run", tenant_dry_run(t));
    apireq_json(r, 200, o);
}

/* The playbook of the path with its deployments (newest first) and the number of runs of
 * each version. NULL after answering (404: neither served nor deployed here). */
static cJSON *
pb_full(struct api_req *r, struct tenant *t)
{
    const char *name = r->param[1];
    struct store_deploy *d = NULL;
    size_t nd = 0;
    char *err = NULL;
    cJSON *o, *arr;

    if (!pb_name_ok(name)) {
        apireq_not_found(r);
        return NULL;
    }
    if (store_deploy_list(t->db, name, PB_DEPLOYS_MAX, &d, &nd, &err) == -1) {
        goto fail;
    }
    if (nd == 0 && pb_serving(name) == NULL) {
        store_deploys_free(d, nd);
        apireq_not_found(r);
        return NULL;
    }
    o = pb_json(r, t, name, nd > 0 ? &d[0] : NULL);
    if (o == NULL) {
        store_deploys_free(d, nd);
        apireq_error(r, 503, "store_unavailable", "retry");
        return NULL;
    }
    arr = cJSON_AddArrayToObject(o, "deployments");
    for (size_t i = 0; i < nd; i++) {
        cJSON *e = cJSON_CreateObject();
        int64_t runs = -1;

        /* A version deployed again (a roll-back) is counted once. */
        for (size_t k = 0; k < i && runs < 0; k++) {
            if (strcmp(d[k].version, d[i].version) == 0) {
                runs = (int64_t)cJSON_GetNumberValue(
                    cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, (int)k), "runs"));
            }
        }
        if (runs < 0 && store_run_count_version(t->db, name, d[i].version, &runs, &err) == -1) {
            cJSON_Delete(e);
            cJSON_Delete(o);
            goto fail;
        }
        cJSON_AddStringToObject(e, "version", d[i].version);
        apireq_add_time(e, "deployed", d[i].deployed_ms);
        cJSON_AddItemToObject(e, "deployed_by", null_or_string(d[i].by));
        cJSON_AddStringToObject(e, "via", d[i].via);
        cJSON_AddNumberToObject(e, "runs", (double)runs);
        cJSON_AddItemToArray(arr, e);
    }
    store_deploys_free(d, nd);
    return o;
fail:
    log_err("api.playbook_failed tenant=%s name=%s error=%s", t->id, name,
            log_quote(err ? err : "?"));
    free(err);
    store_deploys_free(d, nd);
    apireq_error(r, 503, "store_unavailable", "retry");
    return NULL;
}

void
api_playbook(struct api_req *r)
{
    struct tenant *t = apireq_tenant(r);
    cJSON *o;

    if (t != NULL && (o = pb_full(r, t)) != NULL) {
        apireq_json(r, 200, o);
    }
}

/* The version of the path when it is a version of the playbook of the path in this
 * tenant's database: its source (malloc'd). NULL after answering 404. */
static char *
pb_version_source(struct api_req *r, struct tenant *t, size_t *len)
{
    char *name = NULL, *src;

    if (!pb_name_ok(r->param[1]) || !pb_version_ok(r->param[2])) {
        apireq_not_found(r);
        return NULL;
    }
    src = store_playbook_get(t->db, r->param[2], len, &name);
    if (src == NULL || name == NULL || strcmp(name, r->param[1]) != 0) {
        free(src);
        free(name);
        apireq_not_found(r);
        return NULL;
    }
    free(name);
    return src;
}

void
api_playbook_version(struct api_req *r)
{
    struct tenant *t = apireq_tenant(r);
    struct store_lib *libs = NULL;
    size_t len = 0, nl = 0;
    int64_t runs = 0;
    char *src, *err = NULL;
    cJSON *o, *arr;

    if (t == NULL || (src = pb_version_source(r, t, &len)) == NULL) {
        return;
    }
    if (store_playbook_libs_get(t->db, r->param[2], &libs, &nl, &err) == -1 ||
        store_run_count_version(t->db, r->param[1], r->param[2], &runs, &err) == -1) {
        log_err("api.playbook_version_failed tenant=%s error=%s", t->id,
                log_quote(err ? err : "?"));
        free(err);
        free(src);
        store_libs_free(libs, nl);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r->param[1]);
    cJSON_AddStringToObject(o, "version", r->param[2]);
    cJSON_AddStringToObject(o, "source", src);
    arr = cJSON_AddArrayToObject(o, "libraries");
    for (size_t i = 0; i < nl; i++) {
        cJSON *l = cJSON_CreateObject();

        cJSON_AddStringToObject(l, "name", libs[i].name);
        cJSON_AddStringToObject(l, "source", libs[i].source);
        cJSON_AddItemToArray(arr, l);
    }
    cJSON_AddNumberToObject(o, "runs", (double)runs);
    free(src);
    store_libs_free(libs, nl);
    apireq_json(r, 200, o);
}

void
api_playbook_runs(struct api_req *r)
{
    const char *l = http_request_param(r->http, "limit");
    const char *b = http_request_param(r->http, "before");
    struct tenant *t = apireq_tenant(r);
    struct store_run *runs = NULL;
    size_t n = 0, len = 0;
    int64_t limit = PB_RUNS_DEFAULT, before = 0;
    char *src, *err = NULL;
    cJSON *o, *arr;

    if ((l != NULL && ((limit = apireq_parse_id(l)) < 1 || limit > PB_RUNS_MAX)) ||
        (b != NULL && (before = apireq_parse_id(b)) < 1)) {
        apireq_error(r, 400, "bad_request", "limit: 1 to 500; before: a run id");
        return;
    }
    if (t == NULL || (src = pb_version_source(r, t, &len)) == NULL) {
        return;
    }
    free(src);
    if (store_run_by_version(t->db, r->param[2], before, (int)limit, &runs, &n, &err) == -1) {
        log_err("api.playbook_runs_failed tenant=%s error=%s", t->id, log_quote(err ? err : "?"));
        free(err);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    o = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(o, "runs");
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(arr, api_run_json(&runs[i], r->now));
    }
    if (n == (size_t)limit && n > 0) {
        cJSON_AddNumberToObject(o, "next_before", (double)runs[n - 1].id);
    }
    store_runs_free(runs, n);
    apireq_json(r, 200, o);
}

/* A switch waiting for its commit: the request and its audit detail. */
struct pb_switch {
    struct api_req *r;
    char detail[64];
};

/* After the commit that made the switch durable (or failed): audited with its outcome,
 * then answered with the playbook as it is now. */
static void
switched(void *arg, int ok)
{
    struct pb_switch *sw = arg;
    struct api_req *r = sw->r;
    struct tenant *t = tenant_find(r->param[0]);
    cJSON *o;

    apireq_audit(r, r->param[0], "playbook.dry_run", r->param[1], ok ? "ok" : "failed", sw->detail);
    free(sw);
    if (!ok || t == NULL) {
        apireq_error(r, 503, "store_unavailable", "the switch could not be stored; retry");
        return;
    }
    if ((o = pb_full(r, t)) != NULL) {
        apireq_json(r, 200, o);
    }
}

void
api_playbook_dry_run(struct api_req *r)
{
    struct tenant *t = apireq_tenant(r);
    size_t len = 0;
    const char *body;
    cJSON *root = NULL, *v;
    char *err = NULL;
    struct pb_switch *sw;
    struct store_deploy *d = NULL;
    size_t nd = 0;
    int on, before = 0, was;

    if (t == NULL) {
        return;
    }
    body = http_request_body(r->http, &len);
    if (json_parse_strict(body ? body : "", len, 4, &root, &err) == -1 || !cJSON_IsObject(root) ||
        (v = json_get(root, "dry_run")) == NULL || cJSON_GetArraySize(root) != 1 ||
        !(cJSON_IsBool(v) || cJSON_IsNull(v))) {
        free(err);
        cJSON_Delete(root);
        apireq_error(r, 400, "bad_request",
                     "expected {\"dry_run\": true, false or null (as the playbook says)}");
        return;
    }
    on = cJSON_IsNull(v) ? -1 : cJSON_IsTrue(v);
    cJSON_Delete(root);
    if (!pb_name_ok(r->param[1]) || store_deploy_list(t->db, r->param[1], 1, &d, &nd, &err) == -1 ||
        (nd == 0 && pb_serving(r->param[1]) == NULL)) {
        store_deploys_free(d, nd);
        if (err != NULL) {
            free(err);
            apireq_error(r, 503, "store_unavailable", "retry");
            return;
        }
        apireq_audit(r, t->id, "playbook.dry_run", r->param[1], "not_found", NULL);
        apireq_not_found(r);
        return;
    }
    store_deploys_free(d, nd);
    was = store_switch_get(t->db, r->param[1], &before, NULL, NULL, &err);
    if (was == -1 || loop_write(t->db, &err) == -1 ||
        store_switch_set(t->db, r->param[1], on, r->now, r->user.name, &err) == -1) {
        log_err("api.dry_run_failed tenant=%s name=%s error=%s", t->id, r->param[1],
                log_quote(err ? err : "?"));
        free(err);
        apireq_audit(r, t->id, "playbook.dry_run", r->param[1], "failed", NULL);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    sw = xcalloc(1, sizeof(*sw));
    sw->r = r;
    snprintf(sw->detail, sizeof(sw->detail), "{\"dry_run\":%s,\"before\":%s}",
             on < 0 ? "null" : (on ? "true" : "false"),
             was == 0 ? "null" : (before ? "true" : "false"));
    /* r is audited and answered by switched() after the commit. */
    loop_after_commit(t->db, switched, sw);
}

/* A file name of the playbook folder: NAME.lua of [A-Za-z0-9._-], not hidden, not a
 * playbook test. */
static int
pb_file_ok(const char *f)
{
    size_t n = strlen(f);

    return n >= 5 && n <= 100 && f[0] != '.' && strcmp(f + n - 4, ".lua") == 0 &&
           !(n > 9 && strcmp(f + n - 9, "_test.lua") == 0) &&
           strspn(f, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* Record pb deployed by the caller in every tenant's database, audited per tenant. */
static void
pb_record_everywhere(struct api_req *r, struct playbook *pb)
{
    char detail[128];

    snprintf(detail, sizeof(detail), "{\"version\":\"%s\",\"via\":\"api\"}", pb->hash);
    for (struct tenant *t = tenants_first(); t != NULL; t = t->next) {
        char *err = NULL;

        if (loop_write(t->db, &err) == -1 || tenant_save_version(t, pb, &err) == -1 ||
            store_deploy_record(t->db, pb->name, pb->hash, r->now, r->user.name, "api", &err) ==
                -1) {
            log_warn("playbook.deploy_not_recorded tenant=%s name=%s version=%.12s error=%s", t->id,
                     pb->name, pb->hash, log_quote(err ? err : "?"));
            free(err);
            apireq_audit(r, t->id, "playbook.deploy", pb->name, "failed", detail);
            continue;
        }
        apireq_audit(r, t->id, "playbook.deploy", pb->name, "ok", detail);
    }
}

void
api_playbook_deploy(struct api_req *r)
{
    const struct config *cfg = r->api->cfg;
    const struct playbook_set *set = run_playbooks();
    size_t len = 0;
    const char *body = http_request_body(r->http, &len), *file, *src;
    cJSON *root = NULL, *o;
    struct sandbox *sb = NULL;
    struct playbook *pb = NULL;
    char *err = NULL, *path = NULL;
    int rc;

    if ((apireq_roles_in(r, "-") & ROLE_OPERATOR) == 0) {
        r->api->denied++;
        apireq_audit(r, NULL, "access", "/api/v1/playbooks", "forbidden", NULL);
        apireq_error(r, 403, "forbidden",
                     "the playbook folder serves every tenant: platform operators deploy");
        return;
    }
    if (cfg == NULL || cfg->playbook_dir == NULL) {
        apireq_error(r, 503, "unavailable", "no playbook folder");
        return;
    }
    if (json_parse_strict(body ? body : "", len, 4, &root, &err) == -1 || !cJSON_IsObject(root) ||
        (file = json_get_string(root, "file")) == NULL ||
        (src = json_get_string(root, "source")) == NULL || cJSON_GetArraySize(root) != 2) {
        free(err);
        cJSON_Delete(root);
        apireq_error(r, 400, "bad_request", "expected {\"file\": \"NAME.lua\", \"source\": text}");
        return;
    }
    if (!pb_file_ok(file)) {
        cJSON_Delete(root);
        apireq_error(r, 400, "bad_request",
                     "file: NAME.lua of letters, digits, '.', '_', '-' (not hidden, not a test)");
        return;
    }
    /* Loaded as the daemon will load it, with the libraries of the folder. */
    path = xasprintf("%s/%s", cfg->playbook_dir, file);
    sb = env_sandbox_new(PB_DEPLOY_MEMORY, &err);
    if (sb != NULL) {
        pb = playbook_parse_dir(sb, path, src, strlen(src), cfg->playbook_lib_dir, &err);
    }
    if (pb == NULL) {
        apireq_audit(r, NULL, "playbook.deploy", file, "refused", NULL);
        apireq_error(r, 400, "bad_playbook", err ? err : "the playbook does not load");
        goto out;
    }
    for (size_t i = 0; i < set->n; i++) {
        const char *f = set->v[i]->file ? strrchr(set->v[i]->file, '/') : NULL;

        if (strcmp(set->v[i]->name, pb->name) == 0 && f != NULL && strcmp(f + 1, file) != 0) {
            char *msg = xasprintf("playbook %s is in %s already: deploy it under that name",
                                  pb->name, f + 1);

            apireq_error(r, 409, "conflict", msg);
            free(msg);
            goto out;
        }
    }
    if (util_write_file(path, src, strlen(src), 0640, &err) == -1) {
        log_err("api.deploy_failed file=%s error=%s", path, log_quote(err ? err : "?"));
        apireq_audit(r, NULL, "playbook.deploy", pb->name, "failed", NULL);
        apireq_error(r, 503, "unavailable", "the file could not be written");
        goto out;
    }
    log_info("playbook.deployed name=%s version=%.12s file=%s by=%s", pb->name, pb->hash, path,
             log_quote(r->user.name));
    /* Recorded with its deployer first: the reload then finds it recorded already. */
    pb_record_everywhere(r, pb);
    rc = r->api->reload != NULL ? r->api->reload() : -1;
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", pb->name);
    cJSON_AddStringToObject(o, "version", pb->hash);
    cJSON_AddStringToObject(o, "file", file);
    cJSON_AddBoolToObject(o, "reloaded", rc == 0);
    apireq_json(r, 201, o);
out:
    free(err);
    free(path);
    playbook_unref(pb);
    sandbox_free(sb);
    cJSON_Delete(root);
}
