/* mock_control.c: the control API under /_mock/ (no auth, loopback peers only) that tests
 * drive the mock with: faults, latency, counters, state views, reset, token expiry,
 * configuration, and the request log. Documented in tests/mock/README.md. */
#include "tests/mock/mock.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/json.h"

/* ---- the request log ---- */

void
mock_log_add(const char *method, const char *path, const char *query, const char *route,
             const char *idem_key, int status, double ms)
{
    struct logent *e = &mock.log[mock.log_next];

    free(e->path);
    free(e->query);
    free(e->idem_key);
    snprintf(e->method, sizeof(e->method), "%s", method);
    e->path = xstrdup(path);
    e->query = query != NULL ? xstrdup(query) : NULL;
    /* capped: the log is for assertions, not a store for whatever a client sends */
    e->idem_key = idem_key != NULL ? xstrndup(idem_key, strnlen(idem_key, 1024)) : NULL;
    e->route = route;
    e->status = status;
    e->ms = ms;
    e->at = mock_now();
    mock.log_next = (mock.log_next + 1) % LOG_RING;
    if (mock.log_n < LOG_RING) {
        mock.log_n++;
    }
}

void
mock_log_clear(void)
{
    for (size_t i = 0; i < LOG_RING; i++) {
        free(mock.log[i].path);
        free(mock.log[i].query);
        free(mock.log[i].idem_key);
        mock.log[i].path = mock.log[i].query = mock.log[i].idem_key = NULL;
    }
    mock.log_next = mock.log_n = 0;
}

static cJSON *
log_json(size_t n, const char *prefix)
{
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "value");
    size_t have = mock.log_n < n ? mock.log_n : n;
    size_t start = (mock.log_next + LOG_RING - have) % LOG_RING;

    for (size_t i = 0; i < have; i++) {
        const struct logent *e = &mock.log[(start + i) % LOG_RING];
        cJSON *it;
        char at[32];

        if (prefix != NULL && strncmp(e->path, prefix, strlen(prefix)) != 0) {
            continue;
        }
        it = cJSON_CreateObject();
        util_fmt_time(e->at, at);
        cJSON_AddStringToObject(it, "at", at);
        cJSON_AddStringToObject(it, "method", e->method);
        cJSON_AddStringToObject(it, "path", e->path);
        if (e->query != NULL) {
            cJSON_AddStringToObject(it, "query", e->query);
        } else {
            cJSON_AddNullToObject(it, "query");
        }
        cJSON_AddStringToObject(it, "route", e->route);
        if (e->idem_key != NULL) {
            cJSON_AddStringToObject(it, "idempotency_key", e->idem_key);
        } else {
            cJSON_AddNullToObject(it, "idempotency_key");
        }
        cJSON_AddNumberToObject(it, "status", e->status);
        cJSON_AddNumberToObject(it, "ms", e->ms);
        cJSON_AddItemToArray(arr, it);
    }
    return o;
}

/* ---- answers ---- */

static void
reply(struct mhttp_req *h, int status, cJSON *obj)
{
    char *s = json_print(obj);

    cJSON_Delete(obj);
    mhttp_respond(h, status, NULL, "application/json", s, strlen(s), 0);
    free(s);
}

static void reply_error(struct mhttp_req *h, int status, const char *fmt, ...) KG_PRINTF(3, 4);

static void
reply_error(struct mhttp_req *h, int status, const char *fmt, ...)
{
    va_list ap;
    char *msg;
    cJSON *o = cJSON_CreateObject();

    va_start(ap, fmt);
    msg = xvasprintf(fmt, ap);
    va_end(ap);
    cJSON_AddStringToObject(o, "error", msg);
    free(msg);
    reply(h, status, o);
}

static cJSON *
ok_json(void)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddBoolToObject(o, "ok", 1);
    return o;
}

static cJSON *
body_json(struct mhttp_req *h)
{
    cJSON *obj = NULL;
    char *err = NULL;

    if (h->body_len == 0) {
        reply_error(h, 400, "a JSON object body is required");
        return NULL;
    }
    if (json_parse_strict(h->body, h->body_len, JSON_MAX_DEPTH, &obj, &err) == -1) {
        reply_error(h, 400, "bad JSON: %s", err);
        free(err);
        return NULL;
    }
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        reply_error(h, 400, "the body must be a JSON object");
        return NULL;
    }
    return obj;
}

/* An integer member in [lo, hi]; 0 absent, 1 read, -1 bad (answered). */
static int
int_member(struct mhttp_req *h, const cJSON *o, const char *key, int lo, int hi, int *out)
{
    const cJSON *v = json_get(o, key);

    if (v == NULL) {
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi ||
        v->valuedouble != (double)(int)v->valuedouble) {
        reply_error(h, 400, "%s must be an integer in [%d, %d]", key, lo, hi);
        return -1;
    }
    *out = (int)v->valuedouble;
    return 1;
}

static int
bool_member(struct mhttp_req *h, const cJSON *o, const char *key, int *out)
{
    const cJSON *v = json_get(o, key);

    if (v == NULL) {
        return 0;
    }
    if (!cJSON_IsBool(v)) {
        reply_error(h, 400, "%s must be true or false", key);
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 1;
}

/* ---- faults and latency ---- */

static const char *const junk_names[] = {
    [JUNK_TRUNCATED] = "truncated", [JUNK_HTML] = "html", [JUNK_DEEP] = "deep", [JUNK_NUL] = "nul",
    [JUNK_GZIP] = "gzip",           [JUNK_BR] = "br"
};

int
mock_junk_kind(const char *name)
{
    for (int i = JUNK_TRUNCATED; i <= JUNK_BR; i++) {
        if (strcmp(name, junk_names[i]) == 0) {
            return i;
        }
    }
    return 0;
}

const char *
mock_junk_name(int kind)
{
    return kind >= JUNK_TRUNCATED && kind <= JUNK_BR ? junk_names[kind] : "none";
}

/* "malformed": true (truncated JSON), false, or the name of a junk class. */
static int
junk_member(struct mhttp_req *h, const cJSON *o, int *out)
{
    const cJSON *v = json_get(o, "malformed");

    if (v != NULL && cJSON_IsString(v)) {
        if ((*out = mock_junk_kind(v->valuestring)) == 0) {
            reply_error(h, 400,
                        "malformed must be true, false or one of truncated, html, "
                        "deep, nul, gzip, br");
            return -1;
        }
        return 1;
    }
    return bool_member(h, o, "malformed", out);
}

/* POST /_mock/fault {"path_prefix", "method"?, "status"?, "retry_after"?,
 * "retry_after_date"?, "count"?, "delay_ms"?, "drop"?, "malformed"?} */
static void
post_fault(struct mhttp_req *h)
{
    static const char *const keys[] = { "path_prefix", "method",    "status",
                                        "retry_after", "count",     "delay_ms",
                                        "drop",        "malformed", "retry_after_date",
                                        NULL };
    cJSON *o = body_json(h), *it;
    struct fault f;
    const char *prefix, *method;

    if (o == NULL) {
        return;
    }
    memset(&f, 0, sizeof(f));
    f.retry_after = -1;
    f.count = 1;
    cJSON_ArrayForEach(it, o)
    {
        int known = 0;

        for (size_t i = 0; keys[i] != NULL; i++) {
            known |= strcmp(keys[i], it->string) == 0;
        }
        if (!known) {
            reply_error(h, 400, "unknown fault member '%s'", it->string);
            goto out;
        }
    }
    prefix = jstr(o, "path_prefix");
    method = jstr(o, "method");
    if (prefix == NULL || prefix[0] != '/') {
        reply_error(h, 400, "path_prefix (starting with /) is required");
        goto out;
    }
    if ((method != NULL && strlen(method) >= sizeof(f.method)) ||
        int_member(h, o, "status", 200, 599, &f.status) == -1 ||
        int_member(h, o, "retry_after", 0, 86400, &f.retry_after) == -1 ||
        int_member(h, o, "count", 1, 1000000, &f.count) == -1 ||
        int_member(h, o, "delay_ms", 0, 600000, &f.delay_ms) == -1 ||
        bool_member(h, o, "drop", &f.drop) == -1 || junk_member(h, o, &f.malformed) == -1 ||
        bool_member(h, o, "retry_after_date", &f.retry_after_date) == -1) {
        if (method != NULL && strlen(method) >= sizeof(f.method)) {
            reply_error(h, 400, "bad method");
        }
        goto out;
    }
    if (f.status == 0 && !f.drop && !f.malformed && f.delay_ms == 0) {
        reply_error(h, 400, "a fault needs status, drop, malformed or delay_ms");
        goto out;
    }
    {
        struct fault *nf = xmalloc(sizeof(*nf));

        *nf = f;
        nf->prefix = xstrdup(prefix);
        snprintf(nf->method, sizeof(nf->method), "%s", method != NULL ? method : "");
        mvec_push(&mock.faults, nf);
    }
    {
        cJSON *res = ok_json();

        cJSON_AddNumberToObject(res, "queued", (double)mock.faults.n);
        reply(h, 200, res);
    }
out:
    cJSON_Delete(o);
}

static void
get_faults(struct mhttp_req *h)
{
    cJSON *o = cJSON_CreateObject(), *fa = cJSON_AddArrayToObject(o, "faults");
    cJSON *da = cJSON_AddArrayToObject(o, "delays");

    for (size_t i = 0; i < mock.faults.n; i++) {
        const struct fault *f = mock.faults.v[i];
        cJSON *it = cJSON_CreateObject();

        cJSON_AddStringToObject(it, "path_prefix", f->prefix);
        if (f->method[0] != '\0') {
            cJSON_AddStringToObject(it, "method", f->method);
        }
        cJSON_AddNumberToObject(it, "status", f->status);
        cJSON_AddNumberToObject(it, "retry_after", f->retry_after);
        cJSON_AddNumberToObject(it, "count", f->count);
        cJSON_AddNumberToObject(it, "delay_ms", f->delay_ms);
        cJSON_AddBoolToObject(it, "drop", f->drop);
        if (f->malformed > JUNK_TRUNCATED) {
            cJSON_AddStringToObject(it, "malformed", mock_junk_name(f->malformed));
        } else {
            cJSON_AddBoolToObject(it, "malformed", f->malformed);
        }
        cJSON_AddItemToArray(fa, it);
    }
    for (size_t i = 0; i < mock.delays.n; i++) {
        const struct delay *d = mock.delays.v[i];
        cJSON *it = cJSON_CreateObject();

        cJSON_AddStringToObject(it, "path_prefix", d->prefix);
        cJSON_AddNumberToObject(it, "delay_ms", d->delay_ms);
        cJSON_AddItemToArray(da, it);
    }
    reply(h, 200, o);
}

/* POST /_mock/clock {"shift_ms": N}: the mock's clock runs N ms ahead of the real one, as
 * the engine's does under its test clock (webhook timestamps, token lifetimes and the
 * times the mock records then agree with the engine's). Forward only. */
static void
post_clock(struct mhttp_req *h)
{
    cJSON *o = body_json(h);
    const cJSON *v;
    cJSON *out;

    if (o == NULL) {
        return;
    }
    v = json_get(o, "shift_ms");
    if (!cJSON_IsNumber(v) || v->valuedouble < (double)util_clock_shift_ms() ||
        v->valuedouble > 366.0 * 86400000) {
        reply_error(h, 400, "shift_ms: a number of ms, not below the current shift");
    } else {
        util_set_clock_shift((int64_t)v->valuedouble);
        out = cJSON_CreateObject();
        cJSON_AddNumberToObject(out, "shift_ms", (double)util_clock_shift_ms());
        reply(h, 200, out);
    }
    cJSON_Delete(o);
}

/* POST /_mock/delay {"path_prefix": "/", "delay_ms": 1000}; delay_ms 0 removes it. */
static void
post_delay(struct mhttp_req *h)
{
    cJSON *o = body_json(h);
    const char *prefix;
    int ms = -1;

    if (o == NULL) {
        return;
    }
    prefix = jstr(o, "path_prefix");
    if (prefix == NULL || prefix[0] != '/') {
        reply_error(h, 400, "path_prefix (starting with /) is required");
    } else if (int_member(h, o, "delay_ms", 0, 600000, &ms) == 1) {
        struct delay *d = NULL;

        for (size_t i = 0; i < mock.delays.n; i++) {
            struct delay *x = mock.delays.v[i];

            if (strcmp(x->prefix, prefix) == 0) {
                d = x;
            }
        }
        if (d != NULL && ms == 0) {
            mvec_remove(&mock.delays, d);
            free(d->prefix);
            free(d);
        } else if (d != NULL) {
            d->delay_ms = ms;
        } else if (ms > 0) {
            d = xmalloc(sizeof(*d));
            d->prefix = xstrdup(prefix);
            d->delay_ms = ms;
            mvec_push(&mock.delays, d);
        }
        reply(h, 200, ok_json());
    } else if (ms == -1 && json_get(o, "delay_ms") == NULL) {
        reply_error(h, 400, "delay_ms is required");
    }
    cJSON_Delete(o);
}

static void
clear_faults(struct mhttp_req *h)
{
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
    reply(h, 200, ok_json());
}

/* ---- configuration ---- */

static const struct {
    const char *name;
    enum lim lim;
} limit_names[] = {
    { "defender_per_min", LIM_DEFENDER_MIN },
    { "defender_per_hour", LIM_DEFENDER_HOUR },
    { "idp_per_sec", LIM_IDP },
    { "signins_per_10s", LIM_SIGNINS },
    { "security_per_min", LIM_SECURITY },
    { "intune_writes_per_20s", LIM_INTUNE_WRITES },
    { "directory_writes_per_150s", LIM_DIRECTORY_WRITES },
};

static cJSON *
config_json(void)
{
    const struct mock_config *c = &mock.cfg;
    cJSON *o = cJSON_CreateObject(), *l;

    cJSON_AddStringToObject(o, "duplicate_action",
                            c->duplicate_pending ? "return_pending" : "error");
    cJSON_AddNumberToObject(o, "page_size", c->page_size);
    cJSON_AddNumberToObject(o, "poll_steps", c->poll_steps);
    cJSON_AddNumberToObject(o, "token_lifetime", c->token_lifetime);
    cJSON_AddBoolToObject(o, "empty_page", c->empty_page);
    cJSON_AddBoolToObject(o, "signins_premium", c->signins_premium);
    cJSON_AddNumberToObject(o, "processing_reads", c->processing_reads);
    cJSON_AddNumberToObject(o, "indicator_cap", c->indicator_cap);
    cJSON_AddStringToObject(o, "action_final_status", c->action_final);
    cJSON_AddBoolToObject(o, "limits_enabled", c->limits_enabled);
    if (mock.next_link != NULL) {
        cJSON_AddStringToObject(o, "next_link", mock.next_link);
    } else {
        cJSON_AddNullToObject(o, "next_link");
    }
    l = cJSON_AddObjectToObject(o, "limits");
    for (size_t i = 0; i < sizeof(limit_names) / sizeof(limit_names[0]); i++) {
        cJSON_AddNumberToObject(l, limit_names[i].name, c->limit[limit_names[i].lim]);
    }
    return o;
}

/* POST /_mock/config: every member checked before any is applied. */
static void
post_config(struct mhttp_req *h)
{
    cJSON *o = body_json(h), *it;
    struct mock_config c;
    const char *s;
    int rc = 0;

    if (o == NULL) {
        return;
    }
    c = mock.cfg;
    cJSON_ArrayForEach(it, o)
    {
        static const char *const keys[] = { "duplicate_action",
                                            "page_size",
                                            "poll_steps",
                                            "token_lifetime",
                                            "empty_page",
                                            "signins_premium",
                                            "processing_reads",
                                            "indicator_cap",
                                            "action_final_status",
                                            "limits_enabled",
                                            "limits",
                                            "next_link",
                                            NULL };
        int known = 0;

        for (size_t i = 0; keys[i] != NULL; i++) {
            known |= strcmp(keys[i], it->string) == 0;
        }
        if (!known) {
            reply_error(h, 400, "unknown config member '%s'", it->string);
            goto out;
        }
    }
    s = jstr(o, "duplicate_action");
    if (json_get(o, "duplicate_action") != NULL) {
        if (s != NULL && strcmp(s, "error") == 0) {
            c.duplicate_pending = 0;
        } else if (s != NULL && strcmp(s, "return_pending") == 0) {
            c.duplicate_pending = 1;
        } else {
            reply_error(h, 400, "duplicate_action is \"error\" or \"return_pending\"");
            goto out;
        }
    }
    s = jstr(o, "action_final_status");
    if (json_get(o, "action_final_status") != NULL) {
        if (s == NULL || (strcmp(s, "Succeeded") != 0 && strcmp(s, "Failed") != 0 &&
                          strcmp(s, "TimeOut") != 0 && strcmp(s, "Cancelled") != 0)) {
            reply_error(h, 400, "action_final_status is Succeeded, Failed, TimeOut or Cancelled");
            goto out;
        }
        snprintf(c.action_final, sizeof(c.action_final), "%s", s);
    }
    if (int_member(h, o, "page_size", 0, 100000, &c.page_size) == -1 ||
        int_member(h, o, "poll_steps", 0, 1000, &c.poll_steps) == -1 ||
        int_member(h, o, "token_lifetime", 1, 864000, &c.token_lifetime) == -1 ||
        int_member(h, o, "processing_reads", 0, 1000, &c.processing_reads) == -1 ||
        int_member(h, o, "indicator_cap", 0, 1000000, &c.indicator_cap) == -1 ||
        bool_member(h, o, "empty_page", &c.empty_page) == -1 ||
        bool_member(h, o, "signins_premium", &c.signins_premium) == -1 ||
        bool_member(h, o, "limits_enabled", &c.limits_enabled) == -1) {
        goto out;
    }
    if (json_get(o, "limits") != NULL) {
        const cJSON *lim = json_get(o, "limits");

        if (!cJSON_IsObject(lim)) {
            reply_error(h, 400, "limits must be an object");
            goto out;
        }
        cJSON_ArrayForEach(it, lim)
        {
            int found = 0;

            for (size_t i = 0; i < sizeof(limit_names) / sizeof(limit_names[0]); i++) {
                if (strcmp(limit_names[i].name, it->string) == 0) {
                    found = 1;
                    rc = int_member(h, lim, it->string, 0, 1000000, &c.limit[limit_names[i].lim]);
                }
            }
            if (!found) {
                reply_error(h, 400, "unknown limit '%s'", it->string);
                goto out;
            }
            if (rc == -1) {
                goto out;
            }
        }
    }
    if (json_get(o, "next_link") != NULL) {
        const cJSON *nl = json_get(o, "next_link");

        if (!cJSON_IsNull(nl) && (!cJSON_IsString(nl) || strlen(nl->valuestring) > (1u << 20))) {
            reply_error(h, 400, "next_link is a template string (at most 1 MiB) or null");
            goto out;
        }
        free(mock.next_link);
        mock.next_link = cJSON_IsNull(nl) ? NULL : xstrdup(nl->valuestring);
    }
    mock.cfg = c;
    reply(h, 200, config_json());
out:
    cJSON_Delete(o);
}

/* ---- state views ---- */

static cJSON *
risky_state(struct m_risky *ru)
{
    cJSON *o = cJSON_Duplicate(ru->obj, 1);

    cJSON_AddBoolToObject(o, "_pending", ru->pending);
    if (ru->pending) {
        cJSON_AddStringToObject(o, "_pendingRiskState", ru->pend_state);
    }
    cJSON_AddItemToObject(o, "_history", cJSON_Duplicate(ru->history, 1));
    return o;
}

/* Put v at the front of vec (lists are kept newest first). */
static void
vec_unshift(struct mvec *vec, void *v)
{
    mvec_push(vec, v);
    memmove(&vec->v[1], &vec->v[0], (vec->n - 1) * sizeof(void *));
    vec->v[0] = v;
}

/* POST /_mock/state/{alerts,incidents,riskDetections,signIns} with an item, or many as
 * {"value":[...]}: what the service would show after a detection appeared or changed. An item with
 * the id of a stored alert or incident has its members replaced (the others stay); any
 * other item is added as the newest. Alerts and incidents get lastUpdateDateTime = now
 * unless the item gives one. */
static void
upsert(struct mhttp_req *h, const char *kind)
{
    int sec = strcmp(kind, "alerts") == 0 || strcmp(kind, "incidents") == 0;
    int inc = strcmp(kind, "incidents") == 0;
    struct mvec *plain = strcmp(kind, "riskDetections") == 0 ? &mock.detections
                         : strcmp(kind, "signIns") == 0      ? &mock.signins
                                                             : NULL;
    cJSON *body, *arr, *it;
    char now[32];
    int n = 0;

    if (!sec && plain == NULL) {
        reply_error(h, 404, "POST state: alerts, incidents, riskDetections or signIns");
        return;
    }
    if ((body = body_json(h)) == NULL) {
        return;
    }
    if (cJSON_IsArray(json_get(body, "value"))) { /* {"value":[...]}: many at once */
        arr = cJSON_DetachItemFromObjectCaseSensitive(body, "value");
        cJSON_Delete(body);
    } else {
        arr = NULL;
    }
    if (arr == NULL) {
        arr = cJSON_CreateArray();
        cJSON_AddItemToArray(arr, body);
    }
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsObject(it) || jstr(it, "id") == NULL) {
            reply_error(h, 400, "every item must be an object with a string id");
            cJSON_Delete(arr);
            return;
        }
    }
    util_fmt_time(util_now_ms(), now);
    cJSON_ArrayForEach(it, arr)
    {
        const char *id = jstr(it, "id");

        n++;
        if (sec) {
            struct mmap *map = inc ? &mock.incident_map : &mock.alert_map;
            struct m_secitem *a = mmap_get(map, id);
            const cJSON *m;

            if (a == NULL) {
                a = xcalloc(1, sizeof(*a));
                a->obj = cJSON_CreateObject();
                jset(a->obj, "comments", cJSON_CreateArray());
                vec_unshift(inc ? &mock.incidents : &mock.alerts, a);
            }
            cJSON_ArrayForEach(m, it)
            {
                jset(a->obj, m->string, cJSON_Duplicate(m, 1));
            }
            if (json_get(it, "lastUpdateDateTime") == NULL) {
                jset_str(a->obj, "lastUpdateDateTime", now);
            }
            mmap_put(map, jstr(a->obj, "id"), a);
        } else {
            vec_unshift(plain, cJSON_Duplicate(it, 1));
        }
    }
    cJSON_Delete(arr);
    {
        cJSON *out = cJSON_CreateObject();

        cJSON_AddNumberToObject(out, "upserted", n);
        reply(h, 200, out);
    }
}

/* GET /_mock/state/<kind>/<id>, GET /_mock/state/indicators, POST
 * /_mock/state/machines/<id> {"offline": bool, "action_results": {...}}. */
static void
state(struct mhttp_req *h, const char *rest, int post)
{
    char kind[32];
    const char *id;
    size_t n = strcspn(rest, "/");

    if (n == 0 || n >= sizeof(kind)) {
        reply_error(h, 404, "unknown state path");
        return;
    }
    memcpy(kind, rest, n);
    kind[n] = '\0';
    id = rest[n] == '/' ? rest + n + 1 : NULL;
    if (strcmp(kind, "indicators") == 0 && id == NULL && !post) {
        cJSON *arr = cJSON_CreateArray();

        for (size_t i = 0; i < mock.indicators.n; i++) {
            struct m_indicator *ind = mock.indicators.v[i];

            cJSON_AddItemToArray(arr, cJSON_Duplicate(ind->obj, 1));
        }
        reply(h, 200, arr);
        return;
    }
    if (post && id == NULL) {
        upsert(h, kind);
        return;
    }
    if (id == NULL || id[0] == '\0') {
        reply_error(h, 404, "an id is required");
        return;
    }
    if (post) {
        struct m_machine *m = strcmp(kind, "machines") == 0 ? mock_machine(id) : NULL;
        cJSON *o;
        int off = -1;

        if (m == NULL) {
            reply_error(h, 404, "POST state: only known machines");
            return;
        }
        if ((o = body_json(h)) == NULL) {
            return;
        }
        if (bool_member(h, o, "offline", &off) == -1) {
            cJSON_Delete(o);
            return;
        }
        if (json_get(o, "action_results") != NULL &&
            !cJSON_IsObject(json_get(o, "action_results"))) {
            reply_error(h, 400, "action_results must be an object");
            cJSON_Delete(o);
            return;
        }
        if (off != -1) {
            m->offline = off;
        }
        if (json_get(o, "action_results") != NULL) {
            cJSON_Delete(m->action_results);
            m->action_results = cJSON_Duplicate(json_get(o, "action_results"), 1);
        }
        cJSON_Delete(o);
        reply(h, 200, mock_machine_state(m));
        return;
    }
    if (strcmp(kind, "users") == 0 && mock_user(id) != NULL) {
        reply(h, 200, mock_user_state(mock_user(id)));
    } else if (strcmp(kind, "machines") == 0 && mock_machine(id) != NULL) {
        reply(h, 200, mock_machine_state(mock_machine(id)));
    } else if (strcmp(kind, "riskyUsers") == 0 && mmap_get(&mock.risky_map, id) != NULL) {
        reply(h, 200, risky_state(mmap_get(&mock.risky_map, id)));
    } else if (strcmp(kind, "devices") == 0 && mmap_get(&mock.device_map, id) != NULL) {
        struct m_device *d = mmap_get(&mock.device_map, id);

        reply(h, 200, cJSON_Duplicate(d->obj, 1));
    } else if (strcmp(kind, "alerts") == 0 && mmap_get(&mock.alert_map, id) != NULL) {
        struct m_secitem *a = mmap_get(&mock.alert_map, id);

        reply(h, 200, cJSON_Duplicate(a->obj, 1));
    } else if (strcmp(kind, "incidents") == 0 && mmap_get(&mock.incident_map, id) != NULL) {
        struct m_secitem *a = mmap_get(&mock.incident_map, id);

        reply(h, 200, cJSON_Duplicate(a->obj, 1));
    } else if (strcmp(kind, "actions") == 0 && mmap_get(&mock.action_map, id) != NULL) {
        reply(h, 200, mde_render_action(mmap_get(&mock.action_map, id)));
    } else {
        reply_error(h, 404, "no %s '%s'", kind, id);
    }
}

/* ---- dispatch ---- */

static int
loopback(const char *peer)
{
    return strcmp(peer, "127.0.0.1") == 0 || strcmp(peer, "::1") == 0 ||
           strncmp(peer, "127.", 4) == 0 || strcmp(peer, "::ffff:127.0.0.1") == 0;
}

void
control_handle(struct mhttp_req *h)
{
    const char *m = h->head.method;
    const char *p = h->path + 6; /* after "/_mock" */
    int get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0;

    if (!loopback(h->peer)) {
        reply_error(h, 403, "the control API answers loopback clients only");
        return;
    }
    if (post && strcmp(p, "/fault") == 0) {
        post_fault(h);
    } else if (get && strcmp(p, "/faults") == 0) {
        get_faults(h);
    } else if (post && strcmp(p, "/delay") == 0) {
        post_delay(h);
    } else if (post && strcmp(p, "/clock") == 0) {
        post_clock(h);
    } else if (strcmp(m, "DELETE") == 0 &&
               (strcmp(p, "/faults") == 0 || strcmp(p, "/delays") == 0)) {
        clear_faults(h);
    } else if (get && strcmp(p, "/smtp") == 0) {
        reply(h, 200, mock_smtp_json());
    } else if (post && (strcmp(p, "/smtp") == 0 || strcmp(p, "/hooks") == 0)) {
        cJSON *o = body_json(h);
        char *err = NULL;

        if (o == NULL) {
            return;
        }
        if ((strcmp(p, "/smtp") == 0 ? mock_smtp_config(o, &err) : mock_hooks_config(o, &err)) ==
            -1) {
            reply_error(h, 400, "%s", err);
            free(err);
        } else {
            reply(h, 200, ok_json());
        }
        cJSON_Delete(o);
    } else if (get && strcmp(p, "/blob") == 0) {
        reply(h, 200, mock_blob_json());
    } else if (post && strcmp(p, "/blob") == 0) {
        cJSON *o = body_json(h), *out = NULL;
        char *err = NULL;

        if (o == NULL) {
            return;
        }
        if (mock_blob_control(o, &out, &err) == -1) {
            reply_error(h, 400, "%s", err);
            free(err);
        } else {
            reply(h, 200, out);
        }
        cJSON_Delete(o);
    } else if (get && strncmp(p, "/hooks/", 7) == 0) {
        reply(h, 200, mock_hooks_json(p + 7));
    } else if (get && strcmp(p, "/counters") == 0) {
        reply(h, 200, mock_counters_json());
    } else if (get && strcmp(p, "/state/registeredIps") == 0) {
        reply(h, 200, panos_state_json());
    } else if (strcmp(m, "DELETE") == 0 && strcmp(p, "/state/registeredIps") == 0) {
        panos_clear_registrations();
        reply(h, 200, ok_json());
    } else if (get && strcmp(p, "/state/panos") == 0) {
        reply(h, 200, panos_config_json());
    } else if (post && strcmp(p, "/state/panos") == 0) {
        cJSON *o = body_json(h);
        char *err = NULL;

        if (o != NULL && panos_control(o, &err) == -1) {
            reply_error(h, 400, "%s", err);
        } else if (o != NULL) {
            reply(h, 200, panos_config_json());
        }
        cJSON_Delete(o);
        free(err);
    } else if ((get || post) && strncmp(p, "/state/", 7) == 0) {
        state(h, p + 7, post);
    } else if (post && strcmp(p, "/reset") == 0) {
        mock_state_reset();
        reply(h, 200, ok_json());
    } else if (post && strcmp(p, "/expire-tokens") == 0) {
        token_expire_all();
        reply(h, 200, ok_json());
    } else if (post && strcmp(p, "/config") == 0) {
        post_config(h);
    } else if (get && strcmp(p, "/config") == 0) {
        reply(h, 200, config_json());
    } else if (get && strcmp(p, "/log") == 0) {
        const char *ns = mhttp_param(h, "n");
        long n = ns != NULL ? strtol(ns, NULL, 10) : 100;

        if (n <= 0 || n > LOG_RING) {
            n = LOG_RING;
        }
        reply(h, 200, log_json((size_t)n, mhttp_param(h, "path_prefix")));
    } else if (get && (strcmp(p, "/health") == 0 || strcmp(p, "") == 0 || strcmp(p, "/") == 0)) {
        cJSON *o = ok_json();

        cJSON_AddNumberToObject(o, "port", mock.port);
        cJSON_AddBoolToObject(o, "tls", mock.tls);
        reply(h, 200, o);
    } else {
        reply_error(h, 404, "unknown control route %s %s", m, h->path);
    }
}
