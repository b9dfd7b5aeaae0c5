/* api_read.c: read routes of the people's API. */
#include "engine/api_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/alert.h"
#include "engine/journal.h"
#include "engine/json.h"
#include "engine/log.h"
#include "engine/tenant.h"

#define API_LIST_DEFAULT 100
#define API_LIST_MAX 500
#define API_UPDATES_MAX (1 << 20) /* bytes of an alert's update history in an answer */

/* ?limit= (1..500, default 100) and ?before= (an id): 0, or -1 answered 400. */
static int
api_paging(struct api_req *r, int *limit, int64_t *before)
{
    const char *l = http_request_param(r->http, "limit");
    const char *b = http_request_param(r->http, "before");
    int64_t v;

    *limit = API_LIST_DEFAULT;
    *before = 0;
    if (l != NULL) {
        v = apireq_parse_id(l);
        if (v < 1 || v > API_LIST_MAX) {
            apireq_error(r, 400, "bad_request", "limit: 1 to 500");
            return -1;
        }
        *limit = (int)v;
    }
    if (b != NULL && (*before = apireq_parse_id(b)) < 1) {
        apireq_error(r, 400, "bad_request", "before: an id");
        return -1;
    }
    return 0;
}

/* The tenant's database, or NULL after answering 404 (not open in this daemon). */
static struct store_tenant *
api_tenant_db(struct api_req *r)
{
    struct tenant *t = apireq_tenant(r);

    return t != NULL ? t->db : NULL;
}

static const char *const role_names[] = { "admin", "engineer", "analyst", "auditor", "operator" };

static cJSON *
roles_json(int bits)
{
    cJSON *a = cJSON_CreateArray();

    for (int i = 0; i < 5; i++) {
        if (bits & (1 << i)) {
            cJSON_AddItemToArray(a, cJSON_CreateString(role_names[i]));
        }
    }
    return a;
}

void
api_tenants(struct api_req *r)
{
    struct store_tenant_info *ts = NULL;
    size_t n = 0;
    char *err = NULL;
    cJSON *o, *arr;

    if (store_tenant_list(r->api->st, &ts, &n, &err) == -1) {
        free(err);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    o = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(o, "tenants");
    for (size_t i = 0; i < n; i++) {
        int bits = apireq_roles_in(r, ts[i].id);
        cJSON *t;

        if (bits == 0) {
            continue;
        }
        t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "id", ts[i].id);
        cJSON_AddStringToObject(t, "name", ts[i].name);
        apireq_add_time(t, "created", ts[i].created_ms);
        cJSON_AddItemToObject(t, "roles", roles_json(bits));
        cJSON_AddItemToArray(arr, t);
    }
    free(ts);
    apireq_json(r, 200, o);
}

/* An alert as JSON (raw kept only when full). NULL on a broken row. */
static cJSON *
alert_json(const struct alert *a, int full)
{
    char *text = alert_to_json(a);
    cJSON *o = cJSON_Parse(text);

    free(text);
    if (o != NULL && !full) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, "raw");
    }
    return o;
}

/* A ?source= value: what the intake accepts as a source name. */
static int
api_source_ok(const char *s)
{
    size_t len = strlen(s);

    return len > 0 && len <= 64 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789._-") == len;
}

/* 1 when the raw query names parameter name although http_request_param has no value
 * for it (the HTTP layer drops a value it cannot decode, e.g. one with %00): such a filter
 * must not be ignored silently. */
static int
api_param_dropped(struct api_req *r, const char *name)
{
    const char *q = http_request_query(r->http);
    size_t len = strlen(name);

    if (q == NULL || http_request_param(r->http, name) != NULL) {
        return 0;
    }
    for (const char *p = q; p != NULL; p = strchr(p, '&'), p = p ? p + 1 : NULL) {
        if (strncmp(p, name, len) == 0 && (p[len] == '=' || p[len] == '&' || p[len] == '\0')) {
            return 1;
        }
    }
    return 0;
}

/* 1 when s holds no control characters (C0 or DEL). */
static int
api_text_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* The alert list's filters: ?source=, ?severity= (a level's name), ?outcome=, ?since= and
 * ?until= (RFC 3339), and one observable, ?user= or ?ip= (exact). 0, or -1 answered 400 naming the
 * parameter. */
static int
api_alert_filter(struct api_req *r, struct store_alert_filter *f)
{
    static const char *const outcomes[] = { "unknown", "blocked", "attempted", "succeeded" };
    const char *source = http_request_param(r->http, "source");
    const char *sev = http_request_param(r->http, "severity");
    const char *outcome = http_request_param(r->http, "outcome");
    const char *since = http_request_param(r->http, "since");
    const char *until = http_request_param(r->http, "until");
    const char *user = http_request_param(r->http, "user");
    const char *ip = http_request_param(r->http, "ip");
    int ok = outcome == NULL;

    memset(f, 0, sizeof(*f));
    f->severity = -1;
    for (size_t i = 0; i < 7; i++) {
        static const char *const names[] = { "source", "severity", "outcome", "since",
                                             "until",  "user",     "ip" };

        if (api_param_dropped(r, names[i])) {
            apireq_error(r, 400, "bad_request", "a filter's value could not be decoded");
            return -1;
        }
    }
    if (source != NULL && !api_source_ok(source)) {
        apireq_error(r, 400, "bad_request", "source: a source name ([a-z0-9._-], 1-64)");
        return -1;
    }
    f->source = source;
    if (sev != NULL && (f->severity = severity_from_name(sev)) < 0) {
        apireq_error(r, 400, "bad_request",
                     "severity: informational, low, medium, high or critical");
        return -1;
    }
    for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]) && !ok; i++) {
        ok = strcmp(outcome, outcomes[i]) == 0;
    }
    if (!ok) {
        apireq_error(r, 400, "bad_request", "outcome: unknown, blocked, attempted or succeeded");
        return -1;
    }
    f->outcome = outcome;
    if ((since != NULL && (util_parse_time(since, &f->since_ms) == -1 || f->since_ms <= 0)) ||
        (until != NULL && (util_parse_time(until, &f->until_ms) == -1 || f->until_ms <= 0))) {
        apireq_error(r, 400, "bad_request", "since, until: RFC 3339 times");
        return -1;
    }
    /* One observable at a time, through its index: user= or ip=, the exact value. */
    if (user != NULL && ip != NULL) {
        apireq_error(r, 400, "bad_request", "user and ip: one of them at a time");
        return -1;
    }
    if (user != NULL) {
        if (user[0] == '\0' || strlen(user) > 256 || !api_text_ok(user)) {
            apireq_error(r, 400, "bad_request", "user: 1-256 characters, no control characters");
            return -1;
        }
        f->obs_type = "user";
        f->obs_value = user;
    }
    if (ip != NULL) {
        struct cidr c;

        if (cidr_parse_addr(ip, &c) == -1) {
            apireq_error(r, 400, "bad_request", "ip: an IPv4 or IPv6 address");
            return -1;
        }
        f->obs_type = "ip";
        f->obs_value = ip;
    }
    return 0;
}

void
api_alerts(struct api_req *r)
{
    struct store_tenant *db;
    struct store_alert_filter f;
    int64_t *ids = NULL, before, resume = 0;
    size_t n = 0;
    int limit;
    char *err = NULL;
    cJSON *o, *arr;

    if (api_paging(r, &limit, &before) == -1 || api_alert_filter(r, &f) == -1 ||
        (db = api_tenant_db(r)) == NULL) {
        return;
    }
    if (store_alert_search(db, &f, before, limit, &ids, &n, &resume, &err) == -1) {
        log_err("api.alerts_failed tenant=%s error=%s", r->param[0], log_quote(err ? err : "?"));
        free(err);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    o = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(o, "alerts");
    for (size_t i = 0; i < n; i++) {
        struct alert a;
        cJSON *j;

        if (store_alert_get(db, ids[i], &a, NULL) != 1) {
            continue;
        }
        if ((j = alert_json(&a, 0)) != NULL) {
            cJSON_AddItemToArray(arr, j);
        }
        alert_free(&a);
    }
    if (n == (size_t)limit && n > 0) {
        cJSON_AddNumberToObject(o, "next_before", (double)ids[n - 1]);
    } else if (resume > 0) {
        cJSON_AddNumberToObject(o, "next_before", (double)resume);
    }
    free(ids);
    apireq_json(r, 200, o);
}

void
api_alert(struct api_req *r)
{
    struct store_tenant *db;
    int64_t id = apireq_parse_id(r->param[1]);
    struct alert a;
    struct store_run *runs = NULL;
    size_t n = 0;
    char *err = NULL;
    cJSON *j, *arr;

    if ((db = api_tenant_db(r)) == NULL) {
        return;
    }
    if (id < 1 || store_alert_get(db, id, &a, NULL) != 1) {
        apireq_not_found(r);
        return;
    }
    j = alert_json(&a, 1);
    alert_free(&a);
    if (j == NULL) {
        apireq_error(r, 500, "internal", "the stored alert could not be read");
        return;
    }
    if (store_run_by_alert(db, id, API_LIST_MAX, &runs, &n, &err) == -1) {
        log_err("api.alert_runs_failed tenant=%s error=%s", r->param[0],
                log_quote(err ? err : "?"));
        free(err);
        cJSON_Delete(j);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    arr = cJSON_AddArrayToObject(j, "runs");
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(arr, api_run_json(&runs[i], r->now));
    }
    store_runs_free(runs, n);
    {
        /* The changes its source made after it was stored (a polled Graph alert). */
        struct buf b;
        cJSON *ups;

        buf_init(&b, API_UPDATES_MAX);
        if (store_alert_updates(db, id, &b, &err) == 0 &&
            (ups = cJSON_ParseWithLength(b.data, b.len)) != NULL) {
            cJSON_AddItemToObject(j, "updates", ups);
        } else {
            log_warn("api.alert_updates_unreadable tenant=%s alert=%lld error=%s", r->param[0],
                     (long long)id, log_quote(err ? err : "too large"));
            free(err);
            err = NULL;
            cJSON_AddNullToObject(j, "updates");
        }
        buf_free(&b);
    }
    apireq_json(r, 200, j);
}

/* GET /api/v1/tenants/{t}/summary?hours=24: the dashboard's counts. Alerts of the last
 * hours (1-168; hourly buckets up to 48 h, else 6-hourly) by bucket and level and by
 * source, and the tenant's runs by state. */
void
api_summary(struct api_req *r)
{
    static const char *const run_states[] = { "queued", "running", "waiting",
                                              "done",   "failed",  "cancelled" };
    const char *hp = http_request_param(r->http, "hours");
    struct store_tenant *db;
    struct store_alert_bucket *b = NULL;
    struct store_source_count *src = NULL;
    size_t nb = 0, ns = 0;
    int64_t hours = 24, bucket, since, total = 0, counts[6];
    char *err = NULL;
    cJSON *o, *arr, *runs, *cur = NULL;
    int64_t cur_start = -1;

    if (hp != NULL || api_param_dropped(r, "hours")) {
        hours = hp != NULL ? apireq_parse_id(hp) : -1;
        if (hours < 1 || hours > 168) {
            apireq_error(r, 400, "bad_request", "hours: 1 to 168");
            return;
        }
    }
    if ((db = api_tenant_db(r)) == NULL) {
        return;
    }
    bucket = (hours > 48 ? 6 : 1) * 3600000LL;
    since = (r->now / bucket) * bucket - ((hours * 3600000LL + bucket - 1) / bucket - 1) * bucket;
    if (store_alert_stats(db, since, bucket, &b, &nb, &src, &ns, &err) == -1 ||
        store_run_counts(db, counts, &err) == -1) {
        log_err("api.summary_failed tenant=%s error=%s", r->param[0], log_quote(err ? err : "?"));
        free(err);
        free(b);
        free(src);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    o = cJSON_CreateObject();
    apireq_add_time(o, "since", since);
    apireq_add_time(o, "now", r->now);
    cJSON_AddNumberToObject(o, "hours", (double)hours);
    cJSON_AddNumberToObject(o, "bucket_seconds", (double)(bucket / 1000));
    arr = cJSON_AddArrayToObject(o, "levels");
    for (size_t i = 0; i < nb; i++) {
        const char *name = severity_name(b[i].severity);

        if (b[i].start_ms != cur_start) {
            cur = cJSON_CreateObject();
            apireq_add_time(cur, "start", b[i].start_ms);
            for (int sv = SEV_INFO; sv <= SEV_CRITICAL; sv++) {
                cJSON_AddNumberToObject(cur, severity_name(sv), 0);
            }
            cJSON_AddItemToArray(arr, cur);
            cur_start = b[i].start_ms;
        }
        if (strcmp(name, "?") != 0) {
            cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(cur, name), (double)b[i].count);
        }
        total += b[i].count;
    }
    cJSON_AddNumberToObject(o, "total", (double)total);
    arr = cJSON_AddArrayToObject(o, "sources");
    for (size_t i = 0; i < ns; i++) {
        cJSON *e = cJSON_CreateObject();

        cJSON_AddStringToObject(e, "source", src[i].source);
        cJSON_AddNumberToObject(e, "count", (double)src[i].count);
        cJSON_AddItemToArray(arr, e);
    }
    runs = cJSON_AddObjectToObject(o, "runs");
    for (int i = 0; i < 6; i++) {
        cJSON_AddNumberToObject(runs, run_states[i], (double)counts[i]);
    }
    free(b);
    free(src);
    apireq_json(r, 200, o);
}

/* A waiting run whose pending call its server throttled shows as "throttled". */
cJSON *
api_run_json(const struct store_run *run, int64_t now)
{
    cJSON *o = cJSON_CreateObject();
    int throttled = strcmp(run->state, "waiting") == 0 && run->throttled_until > now;

    cJSON_AddNumberToObject(o, "id", (double)run->id);
    if (run->alert_id > 0) {
        cJSON_AddNumberToObject(o, "alert_id", (double)run->alert_id);
    } else {
        cJSON_AddNullToObject(o, "alert_id");
    }
    cJSON_AddStringToObject(o, "playbook", run->playbook ? run->playbook : "");
    cJSON_AddStringToObject(o, "version", run->hash);
    cJSON_AddStringToObject(o, "state", throttled ? "throttled" : run->state);
    if (throttled) {
        apireq_add_time(o, "throttled_until", run->throttled_until);
    }
    apireq_add_time(o, "created", run->created_ms);
    apireq_add_time(o, "started", run->started_ms);
    apireq_add_time(o, "ended", run->ended_ms);
    if (run->error != NULL) {
        cJSON_AddStringToObject(o, "error", run->error);
    } else {
        cJSON_AddNullToObject(o, "error");
    }
    return o;
}

void
api_runs(struct api_req *r)
{
    static const char *const states[] = { "queued", "running", "waiting",
                                          "done",   "failed",  "cancelled" };
    const char *state = http_request_param(r->http, "state");
    struct store_tenant *db;
    struct store_run *runs = NULL;
    size_t n = 0;
    int limit, ok = state == NULL;
    int64_t before;
    char *err = NULL;
    cJSON *o, *arr;

    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]) && !ok; i++) {
        ok = strcmp(state, states[i]) == 0;
    }
    if (!ok) {
        apireq_error(r, 400, "bad_request",
                     "state: queued, running, waiting, done, failed or cancelled");
        return;
    }
    if (api_paging(r, &limit, &before) == -1 || (db = api_tenant_db(r)) == NULL) {
        return;
    }
    if (store_run_list(db, state, limit, &runs, &n, &err) == -1) {
        log_err("api.runs_failed tenant=%s error=%s", r->param[0], log_quote(err ? err : "?"));
        free(err);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    o = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(o, "runs");
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(arr, api_run_json(&runs[i], r->now));
    }
    store_runs_free(runs, n);
    apireq_json(r, 200, o);
}

/* A journal text as JSON when it parses, else as a string. */
static void
add_json_text(cJSON *o, const char *k, const char *text)
{
    cJSON *v = text ? cJSON_Parse(text) : cJSON_CreateNull();

    cJSON_AddItemToObject(o, k, v ? v : cJSON_CreateString(text));
}

void
api_run(struct api_req *r)
{
    struct store_tenant *db;
    int64_t id = apireq_parse_id(r->param[1]);
    struct store_run run;
    struct journal_entry *j = NULL;
    size_t n = 0;
    char *err = NULL;
    cJSON *o, *arr;

    if ((db = api_tenant_db(r)) == NULL) {
        return;
    }
    if (id < 1 || store_run_get(db, id, &run, NULL) != 1) {
        apireq_not_found(r);
        return;
    }
    if (store_journal_load(db, id, &j, &n, &err) == -1) {
        free(err);
        store_run_free(&run);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    o = api_run_json(&run, r->now);
    store_run_free(&run);
    {
        /* Who started it by hand; null when the engine did (an alert's trigger). */
        char *who = NULL;

        if (store_run_requester(db, id, &who, NULL) == 0 && who != NULL) {
            cJSON_AddStringToObject(o, "requester", who);
        } else {
            cJSON_AddNullToObject(o, "requester");
        }
        free(who);
    }
    arr = cJSON_AddArrayToObject(o, "journal");
    for (size_t i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();

        cJSON_AddNumberToObject(e, "seq", j[i].seq);
        cJSON_AddStringToObject(e, "kind", j[i].kind ? j[i].kind : "");
        cJSON_AddStringToObject(e, "status", journal_status_name(j[i].status));
        add_json_text(e, "request", j[i].request);
        add_json_text(e, "result", j[i].result);
        apireq_add_time(e, "started", j[i].started_ms);
        apireq_add_time(e, "ended", j[i].ended_ms);
        if (j[i].waits != NULL) {
            add_json_text(e, "waits", j[i].waits);
        }
        cJSON_AddItemToArray(arr, e);
    }
    journal_entries_free(j, n);
    apireq_json(r, 200, o);
}

static void
api_audit_list(struct api_req *r, const char *tenant)
{
    struct store_audit *v = NULL;
    size_t n = 0;
    int limit;
    int64_t before;
    char *err = NULL;
    cJSON *o, *arr;

    if (api_paging(r, &limit, &before) == -1) {
        return;
    }
    if (store_audit_list(r->api->st, tenant, before, limit, &v, &n, &err) == -1) {
        free(err);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    o = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(o, "audit");
    for (size_t i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();

        cJSON_AddNumberToObject(e, "id", (double)v[i].id);
        apireq_add_time(e, "time", v[i].time);
        cJSON_AddItemToObject(e, "tenant",
                              v[i].tenant ? cJSON_CreateString(v[i].tenant) : cJSON_CreateNull());
        cJSON_AddItemToObject(e, "actor",
                              v[i].actor ? cJSON_CreateString(v[i].actor) : cJSON_CreateNull());
        cJSON_AddStringToObject(e, "action", v[i].action ? v[i].action : "");
        cJSON_AddItemToObject(e, "target",
                              v[i].target ? cJSON_CreateString(v[i].target) : cJSON_CreateNull());
        cJSON_AddStringToObject(e, "outcome", v[i].outcome ? v[i].outcome : "");
        cJSON_AddItemToObject(e, "address",
                              v[i].address ? cJSON_CreateString(v[i].address) : cJSON_CreateNull());
        add_json_text(e, "detail", v[i].detail);
        cJSON_AddItemToArray(arr, e);
    }
    if (n == (size_t)limit && n > 0) {
        cJSON_AddNumberToObject(o, "next_before", (double)v[n - 1].id);
    }
    store_audits_free(v, n);
    apireq_json(r, 200, o);
}

void
api_tenant_audit(struct api_req *r)
{
    api_audit_list(r, r->param[0]);
}

void
api_platform_audit(struct api_req *r)
{
    if ((apireq_roles_in(r, "-") & ROLE_OPERATOR) == 0) {
        r->api->denied++;
        apireq_audit(r, NULL, "access", "/api/v1/audit", "forbidden", NULL);
        apireq_error(r, 403, "forbidden", "the platform audit is for platform operators");
        return;
    }
    api_audit_list(r, NULL);
}

void
api_tenant_users(struct api_req *r)
{
    struct store_user *users = NULL;
    size_t n = 0;
    char *err = NULL;
    cJSON *o, *arr;

    if (store_user_list(r->api->st, &users, &n, &err) == -1) {
        free(err);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    o = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(o, "users");
    for (size_t i = 0; i < n; i++) {
        struct store_role *roles = NULL;
        size_t nr = 0;

        if (store_roles_get(r->api->st, users[i].id, &roles, &nr, NULL) == -1) {
            continue;
        }
        for (size_t k = 0; k < nr; k++) {
            cJSON *u;

            if (strcmp(roles[k].tenant, r->param[0]) != 0) {
                continue;
            }
            u = cJSON_CreateObject();
            cJSON_AddStringToObject(u, "user", users[i].name);
            cJSON_AddStringToObject(u, "role", roles[k].role);
            cJSON_AddBoolToObject(u, "disabled", users[i].disabled);
            cJSON_AddBoolToObject(u, "totp_enrolled", users[i].totp_confirmed);
            cJSON_AddBoolToObject(u, "locked", users[i].locked_until > r->now);
            apireq_add_time(u, "last_login", users[i].last_login);
            cJSON_AddItemToArray(arr, u);
        }
        free(roles);
    }
    store_users_free(users, n);
    apireq_json(r, 200, o);
}
