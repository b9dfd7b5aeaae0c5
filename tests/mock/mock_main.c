/* mock_main.c: kagari-mock's entry point and request dispatch: routing, queued faults and
 * latency, bearer tokens, app permissions, per-tenant rate limits, error bodies in each
 * service's shape (PAN-OS: XML), the request log. */
#include "engine/tls.h"
#include "tests/mock/mock.h"

#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/err.h>

#include "engine/json.h"
#include "engine/log.h"

struct mock mock;

static const struct route token_route = {
    "POST", "/*/oauth2/v2.0/token", SVC_TOKEN, "token", token_endpoint, NULL, LIM_NONE, LIM_NONE
};

static const struct route **routes; /* every API route, flat; mock.route_count parallel */
static size_t nroutes;

static const struct {
    int64_t window_ms;
    int retry_after;
    const char *what;
} lim_info[LIM_N] = {
    [LIM_DEFENDER_MIN] = { 60000, 1, "per 1 minute(s)" },
    [LIM_DEFENDER_HOUR] = { 3600000, 1, "per 1 hour(s)" },
    [LIM_IDP] = { 1000, 0, "per second per tenant" },
    [LIM_SIGNINS] = { 10000, 1, "per 10 seconds" },
    [LIM_SECURITY] = { 60000, 1, "per minute" },
    [LIM_INTUNE_WRITES] = { 20000, 1, "per 20 seconds" },
    [LIM_DIRECTORY_WRITES] = { 150000, 1, "per 150 seconds" },
};

int64_t
mock_now(void)
{
    return util_now_ms();
}

/* ---- answers ---- */

void
mreq_set(struct mreq *r, int status, const char *ctype, char *body, size_t len)
{
    free(r->body);
    r->status = status;
    r->ctype = ctype;
    r->body = body;
    r->body_len = len;
}

static const char *
svc_ctype(enum svc svc)
{
    switch (svc) {
    case SVC_TOKEN:
        return "application/json; charset=utf-8";
    case SVC_MDE:
        return "application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8";
    case SVC_GRAPH:
    case SVC_INTUNE:
        return "application/json;odata.metadata=minimal;odata.streaming=true;"
               "IEEE754Compatible=false;charset=utf-8";
    case SVC_PANOS:
        return PANOS_CTYPE;
    default:
        return "application/json";
    }
}

void
mreq_json(struct mreq *r, int status, cJSON *obj)
{
    char *s = json_print(obj);

    cJSON_Delete(obj);
    mreq_set(r, status, svc_ctype(r->svc), s, strlen(s));
}

void
mreq_empty(struct mreq *r, int status)
{
    mreq_set(r, status, NULL, NULL, 0);
}

void
mreq_header(struct mreq *r, const char *name, const char *value)
{
    (void)!buf_printf(&r->headers, "%s: %s\r\n", name, value);
}

static cJSON *
graph_error_obj(struct mreq *r, const char *code, const char *msg)
{
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error"), *in;
    const char *crid = mhttp_header(r->h, "client-request-id");
    char date[32];

    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", msg);
    in = cJSON_AddObjectToObject(e, "innerError");
    mock_fmt_now(date);
    date[19] = '\0'; /* Graph writes seconds only */
    cJSON_AddStringToObject(in, "date", date);
    cJSON_AddStringToObject(in, "request-id", r->request_id);
    cJSON_AddStringToObject(in, "client-request-id", crid != NULL ? crid : r->request_id);
    return o;
}

static void
vgraph_error(struct mreq *r, int status, const char *code, const char *fmt, va_list ap)
{
    char *msg = xvasprintf(fmt, ap);

    mreq_json(r, status, graph_error_obj(r, code, msg));
    free(msg);
}

void
mreq_graph_error(struct mreq *r, int status, const char *code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vgraph_error(r, status, code, fmt, ap);
    va_end(ap);
}

static void
vmde_error(struct mreq *r, int status, const char *code, const char *fmt, va_list ap)
{
    char *msg = xvasprintf(fmt, ap);
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    char target[37];

    mock_uuid(target);
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "target", target);
    free(msg);
    mreq_json(r, status, o);
}

void
mreq_mde_error(struct mreq *r, int status, const char *code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vmde_error(r, status, code, fmt, ap);
    va_end(ap);
}

/* Intune: the Graph envelope whose message is itself a JSON document, as a string. */
static void
vintune_error(struct mreq *r, int status, const char *code, const char *fmt, va_list ap)
{
    char *msg = xvasprintf(fmt, ap);
    cJSON *inner = cJSON_CreateObject();
    char op[37], act[37];
    char *full, *inner_s;

    mock_uuid(op);
    mock_uuid(act);
    full = xasprintf("%s - Operation ID (for customer support): %s - Activity ID: %s - Url: "
                     "%s%s - CustomApiErrorPhrase: ",
                     msg, op, act, r->base, r->h->raw_path);
    cJSON_AddNumberToObject(inner, "_version", 3);
    cJSON_AddStringToObject(inner, "Message", full);
    cJSON_AddStringToObject(inner, "CustomApiErrorPhrase", "");
    cJSON_AddNullToObject(inner, "RetryAfter");
    cJSON_AddStringToObject(inner, "ErrorSourceService", "");
    cJSON_AddStringToObject(inner, "HttpHeaders", "{}");
    inner_s = json_print(inner);
    cJSON_Delete(inner);
    mreq_json(r, status, graph_error_obj(r, code, inner_s));
    free(inner_s);
    free(full);
    free(msg);
}

void
mreq_intune_error(struct mreq *r, int status, const char *code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vintune_error(r, status, code, fmt, ap);
    va_end(ap);
}

static void
vaad_error(struct mreq *r, int status, const char *error, int aadsts, const char *fmt, va_list ap)
{
    char *msg = xvasprintf(fmt, ap);
    cJSON *o = cJSON_CreateObject(), *codes;
    char trace[37], corr[37], ts[32], *desc, *uri;

    mock_uuid(trace);
    mock_uuid(corr);
    mock_fmt_aad_time(mock_now(), ts);
    desc = xasprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", aadsts,
                     msg, trace, corr, ts);
    cJSON_AddStringToObject(o, "error", error);
    cJSON_AddStringToObject(o, "error_description", desc);
    codes = cJSON_AddArrayToObject(o, "error_codes");
    cJSON_AddItemToArray(codes, cJSON_CreateNumber(aadsts));
    cJSON_AddStringToObject(o, "timestamp", ts);
    cJSON_AddStringToObject(o, "trace_id", trace);
    cJSON_AddStringToObject(o, "correlation_id", corr);
    uri = xasprintf("https://login.microsoftonline.com/error?code=%d", aadsts);
    cJSON_AddStringToObject(o, "error_uri", uri);
    free(uri);
    free(desc);
    free(msg);
    mreq_json(r, status, o);
}

void
mreq_aad_error(struct mreq *r, int status, const char *error, int aadsts, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vaad_error(r, status, error, aadsts, fmt, ap);
    va_end(ap);
}

void
mreq_error(struct mreq *r, int status, const char *code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    switch (r->svc) {
    case SVC_MDE:
        vmde_error(r, status, code, fmt, ap);
        break;
    case SVC_INTUNE:
        vintune_error(r, status, code, fmt, ap);
        break;
    case SVC_TOKEN:
        vaad_error(r, status,
                   status == 429 || status >= 500 ? "temporarily_unavailable" : "invalid_request",
                   status == 429 || status >= 500 ? 90033 : 900144, fmt, ap);
        break;
    case SVC_PANOS: {
        char *msg = xvasprintf(fmt, ap);

        panos_error(r, status, status, msg);
        free(msg);
        break;
    }
    case SVC_BLOB: {
        char *msg = xvasprintf(fmt, ap);

        blob_error(r, status, status == 503 ? "ServerBusy" : code, msg);
        free(msg);
        break;
    }
    default:
        vgraph_error(r, status, code, fmt, ap);
        break;
    }
    va_end(ap);
}

int
mreq_perm(struct mreq *r, const char *perms)
{
    const cJSON *roles, *it;
    const char *p = perms;

    if (perms == NULL || r->tok == NULL || r->tok->client->roles == NULL) {
        return 1;
    }
    roles = r->tok->client->roles;
    while (p != NULL && *p != '\0') {
        const char *bar = strchr(p, '|');
        size_t n = bar != NULL ? (size_t)(bar - p) : strlen(p);

        cJSON_ArrayForEach(it, roles)
        {
            if (cJSON_IsString(it) && strlen(it->valuestring) == n &&
                strncmp(it->valuestring, p, n) == 0) {
                return 1;
            }
        }
        p = bar != NULL ? bar + 1 : NULL;
    }
    if (r->svc == SVC_MDE) {
        mreq_mde_error(r, 403, "Forbidden",
                       "The application does not have any of the required "
                       "application roles: %s.",
                       perms);
    } else if (r->svc == SVC_INTUNE) {
        mreq_intune_error(r, 403, "Forbidden",
                          "Application is not authorized to perform this "
                          "operation. Required: %s",
                          perms);
    } else {
        mreq_graph_error(r, 403, "Authorization_RequestDenied",
                         "Insufficient privileges to complete the operation. Required: %s", perms);
    }
    return 0;
}

cJSON *
mreq_body_object(struct mreq *r, int empty_ok, const char *code)
{
    cJSON *obj = NULL;
    char *err = NULL;
    size_t i = 0;

    while (i < r->h->body_len && strchr(" \t\r\n", r->h->body[i]) != NULL) {
        i++;
    }
    if (i == r->h->body_len) {
        if (empty_ok) {
            return cJSON_CreateObject();
        }
        mreq_error(r, 400, code, "A request body is required.");
        return NULL;
    }
    if (json_parse_strict(r->h->body, r->h->body_len, JSON_MAX_DEPTH, &obj, &err) == -1) {
        mreq_error(r, 400, code, "Unable to read JSON request payload: %s", err);
        free(err);
        return NULL;
    }
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        mreq_error(r, 400, code, "The request body must be a JSON object.");
        return NULL;
    }
    return obj;
}

/* ---- routing ---- */

/* Match path against pattern segment by segment ('*' captures one segment). Literal
 * segments compare case-insensitively (Graph and MDE URLs do). */
static int
route_match(const char *pattern, const char *path, struct mreq *r)
{
    const char *p = pattern, *s = path;
    int ncap = 0;
    char *caps[MREQ_CAPS];

    for (;;) {
        size_t pn, sn;

        while (*p == '/') {
            p++;
        }
        while (*s == '/') {
            s++;
        }
        if (*p == '\0' || *s == '\0') {
            if (*p == '\0' && *s == '\0') {
                break;
            }
            goto fail;
        }
        pn = strcspn(p, "/");
        sn = strcspn(s, "/");
        if (pn == 1 && *p == '*') {
            if (ncap == MREQ_CAPS) {
                goto fail;
            }
            caps[ncap++] = xstrndup(s, sn);
        } else if (pn != sn || strncasecmp(p, s, pn) != 0) {
            goto fail;
        }
        p += pn;
        s += sn;
    }
    if (r != NULL) {
        for (int i = 0; i < ncap; i++) {
            r->cap[i] = caps[i];
        }
        r->ncap = ncap;
    } else {
        for (int i = 0; i < ncap; i++) {
            free(caps[i]);
        }
    }
    return 1;
fail:
    for (int i = 0; i < ncap; i++) {
        free(caps[i]);
    }
    return 0;
}

static void
routes_init(void)
{
    const struct route *tables[] = { graph_routes, intune_routes, mde_routes, panos_routes };
    const size_t ntables = sizeof(tables) / sizeof(tables[0]);

    nroutes = 1;
    for (size_t t = 0; t < ntables; t++) {
        for (const struct route *rt = tables[t]; rt->method != NULL; rt++) {
            nroutes++;
        }
    }
    routes = xcalloc(nroutes, sizeof(*routes));
    mock.route_count = xcalloc(nroutes, sizeof(unsigned long));
    nroutes = 0;
    routes[nroutes++] = &token_route;
    for (size_t t = 0; t < ntables; t++) {
        for (const struct route *rt = tables[t]; rt->method != NULL; rt++) {
            routes[nroutes++] = rt;
        }
    }
}

/* For the counters: {"route name": n} for every route called at least once. */
cJSON *
mock_route_counts(void)
{
    cJSON *o = cJSON_CreateObject();

    for (size_t i = 0; i < nroutes; i++) {
        if (mock.route_count[i] > 0) {
            cJSON *have = json_get(o, routes[i]->name);

            if (have != NULL) {
                cJSON_SetNumberValue(have, have->valuedouble + (double)mock.route_count[i]);
            } else {
                cJSON_AddNumberToObject(o, routes[i]->name, (double)mock.route_count[i]);
            }
        }
    }
    return o;
}

void
mock_route_counts_reset(void)
{
    memset(mock.route_count, 0, nroutes * sizeof(unsigned long));
}

static enum svc
svc_of_path(const char *path)
{
    if (strncasecmp(path, "/v1.0/deviceManagement", 22) == 0) {
        return SVC_INTUNE;
    }
    if (strcasecmp(path, "/api/") == 0 || strcasecmp(path, "/api") == 0) {
        return SVC_PANOS; /* the PAN-OS XML API; Defender's routes are below /api/ */
    }
    if (strncasecmp(path, "/api/", 5) == 0) {
        return SVC_MDE;
    }
    if (strstr(path, "/oauth2/") != NULL) {
        return SVC_TOKEN;
    }
    if (strncmp(path, "/blob/", 6) == 0) {
        return SVC_BLOB;
    }
    return SVC_GRAPH;
}

/* The first queued fault for this request, consumed (count decremented); a copy. */
static int
take_fault(const char *method, const char *path, struct fault *out)
{
    for (size_t i = 0; i < mock.faults.n; i++) {
        struct fault *f = mock.faults.v[i];

        if (strncmp(path, f->prefix, strlen(f->prefix)) != 0 ||
            (f->method[0] != '\0' && strcasecmp(f->method, method) != 0)) {
            continue;
        }
        *out = *f;
        out->prefix = NULL;
        if (--f->count <= 0) {
            mvec_remove(&mock.faults, f);
            free(f->prefix);
            free(f);
        }
        return 1;
    }
    return 0;
}

static int
path_delay(const char *path)
{
    int d = 0;

    for (size_t i = 0; i < mock.delays.n; i++) {
        struct delay *dl = mock.delays.v[i];

        if (strncmp(path, dl->prefix, strlen(dl->prefix)) == 0 && dl->delay_ms > d) {
            d = dl->delay_ms;
        }
    }
    return d;
}

static void
answer_fault(struct mreq *r, const struct fault *f)
{
    char ra[32];

    if (f->malformed) {
        static const char junk[] = "{\"value\":[{\"id\":\"4c2f0e9a\",\"status\":";
        static const char xjunk[] = "<response status=\"success\"><result><entry ip=\"203.0.113";
        static const char html[] = "<html><head><title>502 Bad Gateway</title></head><body>"
                                   "<h1>Bad Gateway</h1></body></html>";
        static const char nul[] = "{\"id\":\"a\\u0000b\",\"displayName\":\"x\"}";
        /* gzip of {"coded":true} */
        static const unsigned char gz[] = { 0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
                                            0xff, 0xab, 0x56, 0x4a, 0xce, 0x4f, 0x49, 0x4d, 0x51,
                                            0xb2, 0x2a, 0x29, 0x2a, 0x4d, 0xad, 0x05, 0x00, 0xc9,
                                            0x07, 0xd4, 0xf5, 0x0e, 0x00, 0x00, 0x00 };
        int status = f->status > 0 ? f->status : 200;
        char *b;

        switch (f->malformed) {
        case JUNK_HTML:
            mreq_set(r, status, "text/html", xstrdup(html), strlen(html));
            return;
        case JUNK_DEEP:
            b = xmalloc(20001);
            memset(b, '[', 10000);
            memset(b + 10000, ']', 10000);
            b[20000] = '\0';
            mreq_set(r, status, svc_ctype(r->svc), b, 20000);
            return;
        case JUNK_NUL:
            mreq_set(r, status, svc_ctype(r->svc), xstrdup(nul), strlen(nul));
            return;
        case JUNK_GZIP:
        case JUNK_BR:
            b = xmalloc(sizeof(gz) + 1);
            memcpy(b, gz, sizeof(gz));
            b[sizeof(gz)] = '\0';
            mreq_set(r, status, svc_ctype(r->svc), b, sizeof(gz));
            if (f->malformed == JUNK_BR) {
                mreq_header(r, "Content-Encoding", "br");
            }
            return;
        default:
            break;
        }
        b = xstrdup(r->svc == SVC_PANOS ? xjunk : junk);
        mreq_set(r, status, svc_ctype(r->svc), b, strlen(b));
        return;
    }
    switch (f->status) {
    case 429:
        if (r->svc == SVC_MDE) {
            mreq_mde_error(r, 429, "TooManyRequests",
                           "API calls quota exceeded! Maximum allowed 100 per 1 minute(s).");
        } else {
            mreq_error(r, 429, "TooManyRequests", "Too many requests; please retry later.");
        }
        break;
    case 500:
        mreq_error(r, 500, "InternalServerError", "An internal server error occurred.");
        break;
    case 502:
        mreq_error(r, 502, "BadGateway", "Bad gateway.");
        break;
    case 503:
        mreq_error(r, 503, "ServiceUnavailable", "The service is temporarily unavailable.");
        break;
    case 504:
        mreq_error(r, 504, "GatewayTimeout", "The gateway timed out.");
        break;
    default:
        mreq_error(r, f->status, "InjectedFault", "Fault injected by the mock.");
        break;
    }
    if (f->retry_after >= 0 && f->retry_after_date) {
        time_t when = time(NULL) + f->retry_after;
        struct tm tm;

        gmtime_r(&when, &tm);
        strftime(ra, sizeof(ra), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        mreq_header(r, "Retry-After", ra);
    } else if (f->retry_after >= 0) {
        snprintf(ra, sizeof(ra), "%d", f->retry_after);
        mreq_header(r, "Retry-After", ra);
    }
}

/* Apply the route's rate limits for the caller's tenant; answers 429 and returns 0 when
 * one is exhausted. */
static int
check_limits(struct mreq *r)
{
    enum lim ls[2] = { r->route->lim1, r->route->lim2 };
    struct m_tenant *t;
    int64_t now = mock_now();

    if (!mock.cfg.limits_enabled || r->tok == NULL) {
        return 1;
    }
    t = r->tok->client->tenant;
    for (int i = 0; i < 2; i++) {
        enum lim l = ls[i];
        int64_t wait;

        if (l == LIM_NONE) {
            continue;
        }
        wait = limiter_take(&t->lim[l], mock.cfg.limit[l], lim_info[l].window_ms, now);
        if (wait > 0) {
            char ra[32];

            if (r->svc == SVC_MDE) {
                mreq_mde_error(r, 429, "TooManyRequests",
                               "API calls quota exceeded! Maximum allowed %d %s. Try again in "
                               "%lld seconds.",
                               mock.cfg.limit[l], lim_info[l].what,
                               (long long)((wait + 999) / 1000));
            } else {
                mreq_error(r, 429, "TooManyRequests",
                           "Too many requests: at most %d %s for this application and tenant.",
                           mock.cfg.limit[l], lim_info[l].what);
            }
            if (lim_info[l].retry_after) {
                snprintf(ra, sizeof(ra), "%lld", (long long)((wait + 999) / 1000));
                mreq_header(r, "Retry-After", ra);
            }
            return 0;
        }
    }
    return 1;
}

static void
mreq_init(struct mreq *r, struct mhttp_req *h)
{
    const char *host = mhttp_header(h, "Host");
    uint64_t n = ++mock.requests_total;

    memset(r, 0, sizeof(*r));
    r->h = h;
    buf_init(&r->headers, 0);
    if (host != NULL && strpbrk(host, " \t/\\\"") == NULL && strlen(host) < 200) {
        snprintf(r->base, sizeof(r->base), "%s://%s", mock.tls ? "https" : "http", host);
    } else {
        snprintf(r->base, sizeof(r->base), "%s://127.0.0.1:%d", mock.tls ? "https" : "http",
                 mock.port);
    }
    mock_seq_uuid(0x5e000000u | (uint32_t)(n >> 48), n, r->request_id);
}

static void
mreq_release(struct mreq *r)
{
    for (int i = 0; i < r->ncap; i++) {
        free(r->cap[i]);
    }
    free(r->body);
    buf_free(&r->headers);
}

/* Every request: control routes, then faults, the route, the token, the app's
 * permissions, the limits, the handler; then latency and the answer. */
static void
handle(struct mhttp_req *h, void *arg)
{
    const char *method = h->head.method;
    const char *path = h->path;
    struct mreq r;
    struct fault f;
    int have_fault, delay, path_matched = 0;
    int64_t t0 = util_mono_us();
    size_t ri;

    (void)arg;
    if (strncmp(path, "/_mock/", 7) == 0 || strcmp(path, "/_mock") == 0) {
        control_handle(h);
        return;
    }
    mreq_init(&r, h);
    r.svc = svc_of_path(path);
    for (ri = 0; ri < nroutes; ri++) {
        if (route_match(routes[ri]->pattern, path, NULL)) {
            path_matched = 1;
            if (strcmp(routes[ri]->method, method) == 0) {
                route_match(routes[ri]->pattern, path, &r);
                break;
            }
        }
    }
    if (ri < nroutes) {
        r.route = routes[ri];
        r.svc = r.route->svc;
        mock.route_count[ri]++;
    }
    have_fault = take_fault(method, path, &f);
    delay = path_delay(path) + (have_fault ? f.delay_ms : 0);
    if (have_fault) {
        mock.faults_applied++;
        if (f.drop) {
            mock_log_add(method, path, h->query, r.route != NULL ? r.route->name : "-",
                         mhttp_header(h, "Idempotency-Key"), 0, (double)delay);
            mreq_release(&r);
            mhttp_drop(h, delay);
            return;
        }
        if (f.malformed || f.status > 0) {
            answer_fault(&r, &f);
            goto send;
        }
    }
    if (r.route == NULL && strncmp(path, "/blob/", 6) == 0) {
        mock_blob_handle(&r);
        goto send;
    }
    if (r.route == NULL && strncmp(path, "/hooks/", 7) == 0) {
        r.log_route = "hooks";
        mock_hooks_receive(&r);
        goto send;
    }
    if (r.route == NULL) {
        if (path_matched) {
            mreq_error(&r, 405, r.svc == SVC_MDE ? "BadRequest" : "Request_BadRequest",
                       "The HTTP method '%s' is not allowed for this resource.", method);
        } else if (r.svc == SVC_MDE) {
            mreq_mde_error(&r, 404, "ResourceNotFound",
                           "No HTTP resource was found that "
                           "matches the request URI.");
        } else if (r.svc == SVC_TOKEN) {
            mreq_aad_error(
                &r, 404, "invalid_request", 900561,
                "The endpoint only accepts POST requests to /{tenant}/oauth2/v2.0/token.");
        } else {
            mreq_graph_error(&r, 400, "BadRequest", "Resource not found for the segment '%s'.",
                             path);
        }
        goto send;
    }
    if (r.svc != SVC_TOKEN && r.svc != SVC_PANOS) { /* PAN-OS: API keys, in the handler */
        if (token_check(&r, r.svc == SVC_MDE ? AUD_DEFENDER : AUD_GRAPH) == -1) {
            goto send;
        }
        if (!mreq_perm(&r, r.route->perms) || !check_limits(&r)) {
            goto send;
        }
    }
    r.route->fn(&r);
send:
    if (r.status == 0) {
        mreq_error(&r, 500, "InternalServerError", "The mock produced no answer.");
    }
    if (r.status == 401) {
        mock.answered_401++;
    } else if (r.status == 429) {
        mock.answered_429++;
    }
    if (r.svc == SVC_GRAPH || r.svc == SVC_INTUNE) {
        const char *crid = mhttp_header(h, "client-request-id");

        mreq_header(&r, "request-id", r.request_id);
        mreq_header(&r, "client-request-id", crid != NULL ? crid : r.request_id);
    }
    if (r.log_route == NULL) {
        r.log_route = r.route != NULL ? r.route->name : "-";
    }
    mock_log_add(method, path, h->query, r.log_route, mhttp_header(h, "Idempotency-Key"), r.status,
                 (double)(util_mono_us() - t0) / 1000.0 + delay);
    mhttp_respond(h, r.status, r.headers.data, r.ctype, r.body, r.body_len, delay);
    mreq_release(&r);
}

/* ---- main ---- */

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

static void
usage(void)
{
    fprintf(stderr, "usage: kagari-mock --listen 127.0.0.1:0 [--tls-cert cert.pem --tls-key "
                    "key.pem] [--seed FILE.json] [--token-lifetime SECONDS] [--poll-steps N] "
                    "[--print-seed]\n");
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "tls-cert", required_argument, NULL, 'c' },
        { "tls-key", required_argument, NULL, 'k' },
        { "seed", required_argument, NULL, 's' },
        { "token-lifetime", required_argument, NULL, 't' },
        { "poll-steps", required_argument, NULL, 'p' },
        { "print-seed", no_argument, NULL, 'P' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *listen = "127.0.0.1:0", *cert = NULL, *key = NULL, *seed = NULL;
    int token_lifetime = 3599, poll_steps = 2, print_seed = 0, ch, rc = 1;
    SSL_CTX *ssl = NULL;
    struct event *sigterm = NULL, *sigint = NULL;
    char *err = NULL;

    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'l':
            listen = optarg;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 's':
            seed = optarg;
            break;
        case 't':
            token_lifetime = atoi(optarg);
            break;
        case 'p':
            poll_steps = atoi(optarg);
            break;
        case 'P':
            print_seed = 1;
            break;
        default:
            usage();
            return ch == 'h' ? 0 : 2;
        }
    }
    if (optind != argc || (cert == NULL) != (key == NULL) || token_lifetime < 1 || poll_steps < 0) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    mock_rand_init();
    {
        unsigned char s[16];

        if (util_random(s, sizeof(s)) == -1) {
            memset(s, 7, sizeof(s));
        }
        util_hex(s, sizeof(s), mock.salt);
    }
    mock.cfg.token_lifetime = token_lifetime;
    mock.cfg.poll_steps = poll_steps;
    mock.cfg.signins_premium = 1;
    mock.cfg.processing_reads = 1;
    mock.cfg.indicator_cap = 15000;
    mock.cfg.limits_enabled = 1;
    mock.cfg.limit[LIM_DEFENDER_MIN] = 100;
    mock.cfg.limit[LIM_DEFENDER_HOUR] = 1500;
    mock.cfg.limit[LIM_IDP] = 1;
    mock.cfg.limit[LIM_SIGNINS] = 5;
    mock.cfg.limit[LIM_SECURITY] = 150;
    mock.cfg.limit[LIM_INTUNE_WRITES] = 200;
    mock.cfg.limit[LIM_DIRECTORY_WRITES] = 0;
    snprintf(mock.cfg.action_final, sizeof(mock.cfg.action_final), "Succeeded");
    mock.cfg0 = mock.cfg;
    mock.tls = cert != NULL;
    routes_init();
    if (mock_state_init(seed, &err) == -1) {
        fprintf(stderr, "kagari-mock: %s\n", err);
        goto out;
    }
    if (print_seed) {
        char *s = cJSON_Print(mock.seed);

        printf("%s\n", s);
        free(s);
        rc = 0;
        goto out;
    }
    if (cert != NULL && (ssl = tls_server_context(cert, key, &err)) == NULL) {
        fprintf(stderr, "kagari-mock: %s\n", err);
        goto out;
    }
    mock.base = event_base_new();
    if (mock.base == NULL) {
        fprintf(stderr, "kagari-mock: event_base_new failed\n");
        goto out;
    }
    mock.srv = mhttp_new(mock.base, ssl, handle, NULL);
    if (mhttp_listen(mock.srv, listen, &err) == -1) {
        fprintf(stderr, "kagari-mock: %s\n", err);
        goto out;
    }
    mock.port = mhttp_port(mock.srv);
    if (ssl != NULL && mock_smtp_start(ssl, &err) == -1) {
        fprintf(stderr, "kagari-mock: %s\n", err);
        goto out;
    }
    sigterm = evsignal_new(mock.base, SIGTERM, on_signal, mock.base);
    sigint = evsignal_new(mock.base, SIGINT, on_signal, mock.base);
    if (sigterm == NULL || sigint == NULL || evsignal_add(sigterm, NULL) == -1 ||
        evsignal_add(sigint, NULL) == -1) {
        fprintf(stderr, "kagari-mock: cannot handle signals\n");
        goto out;
    }
    printf("mock ready port=%d\n", mock.port);
    fflush(stdout);
    log_info("mock.ready port=%d tls=%d", mock.port, mock.tls);
    event_base_dispatch(mock.base);
    log_info("mock.stop requests=%lu", mock.requests_total);
    rc = 0;
out:
    free(err);
    if (sigterm != NULL) {
        event_free(sigterm);
    }
    if (sigint != NULL) {
        event_free(sigint);
    }
    mhttp_free(mock.srv);
    mock_smtp_stop();
    mock_hooks_free();
    mock_blob_reset();
    mock_state_free();
    mock_log_clear();
    for (size_t i = 0; i < mock.faults.n; i++) {
        struct fault *f = mock.faults.v[i];

        free(f->prefix);
        free(f);
    }
    mvec_free(&mock.faults);
    for (size_t i = 0; i < mock.delays.n; i++) {
        struct delay *d = mock.delays.v[i];

        free(d->prefix);
        free(d);
    }
    mvec_free(&mock.delays);
    free(mock.route_count);
    free(mock.next_link);
    free(routes);
    if (mock.base != NULL) {
        event_base_free(mock.base);
    }
    if (ssl != NULL) {
        SSL_CTX_free(ssl);
    }
    return rc;
}
