/* call.c: connector calls as journaled effects: dry-run, journal and replay, in-doubt
 * reconciliation, rate limits, circuit breakers, OAuth, retries with backoff. */
#include "connectors/call.h"

#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "connectors/breaker.h"
#include "connectors/oauth.h"
#include "engine/kagari.h"

#define CALL_MAX_PAGES 50
#define CALL_BACKOFF_BASE_MS 500
#define CALL_BACKOFF_MAX_MS 30000

struct call {
    struct effect *ef;
    struct run *r;
    const struct tenant *t;
    char *kind;
    const struct call_api *api;
    char *limiter_key;
    enum limiter_prio prio;
    char *method;
    char *url;
    char *body;
    char *origin; /* scheme://host[:port] of the API: pages stay on it */
    char *bkey;   /* the breaker's key: "<tenant> <origin>" */
    call_map_fn map;
    void *ud;
    char *reconcile_url;
    call_map_fn reconcile;
    int reconciling;
    int idempotent;

    int attempt;
    int refreshed; /* a 401 already got its one token refresh */
    int force_token;
    int pages;
    cJSON *acc; /* paged results so far */
    struct httpc_call *http;
    struct limiter_wait *lw;
    struct event *timer;
    int oauth_pending;
    double timeout; /* per attempt, seconds */
    int64_t started_ms;
    char *exclusive;
    int holds_exclusive;
    char **headers;           /* extra header lines, NULL-terminated, or NULL */
    char *idem_header;        /* "Idempotency-Key: <key>", or NULL */
    const char *content_type; /* of the body */
    struct call *xnext;       /* waiting for the same exclusive key */
    call_done_fn done;        /* a call that is no run's effect (call_request) */
    void *done_arg;
};

/* Exclusive keys in use, each with the calls waiting for it. */
struct excl {
    char *key;
    struct call *head, *tail;
    struct excl *next;
};
static struct excl *excls;

static struct call_settings settings = { NULL, NULL, 30, 5, 1, 300 };
static struct {
    unsigned long long started, succeeded, failed, retried, reconciled, in_flight;
    unsigned long long breaker_waits, throttled;
} stats;

static void call_send(struct call *c);
void call_on_token(void *arg, const char *token, const char *err);

/* The run a call is for (0 for a connector's own call_request) and its deadline. */
static int64_t
call_rid(const struct call *c)
{
    return c->r != NULL ? run_id(c->r) : 0;
}

static int64_t
call_deadline(const struct call *c)
{
    return c->r != NULL ? run_deadline_ms(c->r) : 0;
}

/* The API's published limits, per tenant; set up the first time a tenant calls it. */
static void
define_limits(const struct call_api *api, const char *tenant)
{
    static char **done;
    static size_t ndone;
    char *id;
    char key[160];

    if (!settings.rate_limits || api->limits == NULL) {
        return;
    }
    id = xasprintf("%s:%s", api->name, tenant);
    for (size_t i = 0; i < ndone; i++) {
        if (strcmp(done[i], id) == 0) {
            free(id);
            return;
        }
    }
    done = xrealloc(done, (ndone + 1) * sizeof(*done));
    done[ndone++] = id;
    for (const struct call_limit *l = api->limits; l->key != NULL; l++) {
        snprintf(key, sizeof(key), "%s:%s", l->key, tenant);
        limiter_define(key, l->per_second, l->burst);
    }
}

void
call_configure(const struct call_settings *s)
{
    settings = *s;
    if (settings.timeout <= 0) {
        settings.timeout = 30;
    }
    if (settings.max_attempts <= 0) {
        settings.max_attempts = 5;
    }
    if (settings.retry_after_max <= 0) {
        settings.retry_after_max = 300;
    }
}

static void
call_metrics(struct buf *b, void *arg)
{
    const char *name = "kagari_connector_calls_total";

    (void)arg;
    metrics_labelled(b, name, "result", "started", stats.started, 1);
    metrics_labelled(b, name, "result", "succeeded", stats.succeeded, 0);
    metrics_labelled(b, name, "result", "failed", stats.failed, 0);
    metrics_labelled(b, name, "result", "reconciled", stats.reconciled, 0);
    metrics_counter(b, "kagari_connector_retries_total", NULL, stats.retried);
    metrics_gauge(b, "kagari_connector_calls_in_flight", NULL, (double)stats.in_flight);
    metrics_gauge(b, "kagari_connector_calls_rate_limited", NULL, (double)limiter_waiting(NULL));
    metrics_counter(b, "kagari_connector_breaker_waits_total", NULL, stats.breaker_waits);
    metrics_counter(b, "kagari_connector_throttled_total", NULL, stats.throttled);
    breaker_metrics(b);
}

int
call_init(const struct config *cfg, char **errp)
{
    struct call_settings cs = { NULL, NULL, 30, 5, 1, 300 };

    if (httpc_init(loop_base(), errp) == -1) {
        return -1;
    }
    if (cfg != NULL) {
        cs.ca_file = cfg->connectors.ca_file;
        cs.proxy = cfg->connectors.proxy;
        cs.timeout = cfg->connectors.timeout;
        cs.max_attempts = cfg->connectors.max_attempts;
        cs.rate_limits = cfg->connectors.rate_limits;
        cs.retry_after_max = cfg->connectors.retry_after_max;
        breaker_configure(cfg->connectors.breaker_threshold, cfg->connectors.breaker_cooldown);
    }
    call_configure(&cs);
    metrics_add(call_metrics, NULL);
    return 0;
}

const char *
call_ca_file(void)
{
    return settings.ca_file;
}

void
call_shutdown(void)
{
    metrics_remove(call_metrics, NULL);
    oauth_shutdown();
    httpc_shutdown();
    limiter_shutdown();
    breaker_shutdown();
}

void *
call_ud(const struct call *c)
{
    return c->ud;
}

int64_t
call_started_ms(const struct call *c)
{
    return c->started_ms;
}

struct run *
call_run(const struct call *c)
{
    return c->r;
}

static struct excl *
excl_find(const char *key)
{
    for (struct excl *x = excls; x != NULL; x = x->next) {
        if (strcmp(x->key, key) == 0) {
            return x;
        }
    }
    return NULL;
}

/* Take the exclusive key (returns 1) or queue behind its holder (returns 0). */
static int
excl_take(struct call *c)
{
    struct excl *x = excl_find(c->exclusive);

    if (x == NULL) {
        x = xcalloc(1, sizeof(*x));
        x->key = xstrdup(c->exclusive);
        x->next = excls;
        excls = x;
        c->holds_exclusive = 1;
        return 1;
    }
    c->xnext = NULL;
    if (x->tail != NULL) {
        x->tail->xnext = c;
    } else {
        x->head = c;
    }
    x->tail = c;
    return 0;
}

/* Leave the key (holder) or the queue (waiter); the next waiter, if any, proceeds. */
static void
excl_release(struct call *c)
{
    struct excl *x = c->exclusive ? excl_find(c->exclusive) : NULL;
    struct excl **pp;

    if (x == NULL) {
        return;
    }
    if (!c->holds_exclusive) {
        struct call **cp = &x->head, *prev = NULL;

        while (*cp != NULL && *cp != c) {
            prev = *cp;
            cp = &(*cp)->xnext;
        }
        if (*cp == c) {
            *cp = c->xnext;
            if (x->tail == c) {
                x->tail = prev;
            }
        }
        return;
    }
    c->holds_exclusive = 0;
    if (x->head != NULL) {
        struct call *n = x->head;

        x->head = n->xnext;
        if (x->head == NULL) {
            x->tail = NULL;
        }
        n->holds_exclusive = 1;
        /* The holder may just have done the very thing n is about to do (another run
         * isolating the same machine): ask first when the call can. */
        if (n->reconcile != NULL) {
            n->reconciling = 1;
        }
        call_send(n);
        return;
    }
    for (pp = &excls; *pp != x; pp = &(*pp)->next) {
    }
    *pp = x->next;
    free(x->key);
    free(x);
}

const char *
call_url(const struct call *c)
{
    return c->url;
}

const char *
call_kind(const struct call *c)
{
    return c->kind;
}

char *
call_escape(const char *s)
{
    static const char hexd[] = "0123456789ABCDEF";
    struct buf b;

    buf_init(&b, 0);
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;

        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            (void)!buf_append(&b, s, 1);
        } else {
            char e[3] = { '%', hexd[ch >> 4], hexd[ch & 15] };

            (void)!buf_append(&b, e, 3);
        }
    }
    return buf_take(&b);
}

const char *
call_check_id(lua_State *L, int idx, const char *what)
{
    size_t len;
    const char *id;

    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TNUMBER) {
        /* An integer is its decimal text; a float (1.5, 0/0, 1e300) is no id. */
        if (!lua_isinteger(L, idx)) {
            luaL_argerror(L, idx, lua_pushfstring(L, "expected %s (a string or an integer)", what));
        }
        lua_pushfstring(L, "%I", (lua_Integer)lua_tointeger(L, idx));
        lua_replace(L, idx);
    } else if (lua_type(L, idx) != LUA_TSTRING) {
        luaL_argerror(L, idx,
                      lua_pushfstring(L, "expected %s, got %s", what, luaL_typename(L, idx)));
    }
    id = lua_tolstring(L, idx, &len);
    if (len == 0 || len > CALL_ID_MAX || strlen(id) != len) {
        luaL_argerror(L, idx, lua_pushfstring(L, "expected %s", what));
    }
    /* Percent-encoding keeps every other character inside its path segment, but "." and
     * ".." are dot segments that URL normalization removes: the request would go to
     * another resource than the one recorded. */
    if (strcmp(id, ".") == 0 || strcmp(id, "..") == 0) {
        luaL_argerror(L, idx, lua_pushfstring(L, "expected %s, not a dot segment", what));
    }
    return id;
}

const char *
call_push_path(lua_State *L, const char *prefix, const char *id, const char *suffix)
{
    char *esc = call_escape(id);
    char *path = xasprintf("%s%s%s", prefix, esc, suffix);

    free(esc);
    lua_pushstring(L, path);
    free(path);
    return lua_tostring(L, -1);
}

const char *
call_push_id_path(lua_State *L, int idx, const char *what, const char *prefix, const char *suffix)
{
    return call_push_path(L, prefix, call_check_id(L, idx, what), suffix);
}

/* "<kind>: HTTP <status> <the envelope's text>", or the transport error. */
char *
call_error_text(const struct call *c, const struct httpc_response *resp)
{
    char *env, *out;

    if (resp->status == 0) {
        return xasprintf("%s: %s", c->kind, resp->error ? resp->error : "transfer failed");
    }
    env = c->api->error_text != NULL && resp->body_len > 0 ? c->api->error_text(resp) : NULL;
    if (env != NULL) {
        out = xasprintf("%s: HTTP %d %s", c->kind, resp->status, env);
        free(env);
        return out;
    }
    return xasprintf("%s: HTTP %d", c->kind, resp->status);
}

static char *
json_str(const char *s)
{
    struct buf b;

    buf_init(&b, 0);
    (void)!buf_json_string(&b, s, strlen(s));
    return buf_take(&b);
}

/* Default mapping: 2xx is success with the body (or true), anything else a failure. */
int
call_map_true(struct call *c, const struct httpc_response *resp, char **result)
{
    if (resp->status >= 200 && resp->status < 300) {
        *result = xstrdup("true");
        return 1;
    }
    *result = call_error_text(c, resp);
    return 0;
}

static int
map_default(struct call *c, const struct httpc_response *resp, char **result)
{
    if (resp->status >= 200 && resp->status < 300) {
        cJSON *root = NULL;

        if (resp->body_len == 0) {
            *result = xstrdup("true");
        } else if (json_parse_strict(resp->body, resp->body_len, JSON_MAX_DEPTH, &root, NULL) ==
                   0) {
            *result = json_print(root);
            cJSON_Delete(root);
        } else {
            *result = json_str(resp->body);
        }
        return 1;
    }
    *result = call_error_text(c, resp);
    return 0;
}

cJSON *
call_acc(struct call *c)
{
    if (c->acc == NULL) {
        c->acc = cJSON_CreateArray();
    }
    return c->acc;
}

int
call_next_page(struct call *c, const char *next, char **result)
{
    size_t ol = strlen(c->origin);

    if (next == NULL || ++c->pages >= CALL_MAX_PAGES) {
        return 1;
    }
    if (strncmp(next, c->origin, ol) != 0 || (next[ol] != '/' && next[ol] != '\0')) {
        *result = xasprintf("%s: next page link leaves %s", c->kind, c->origin);
        return 0;
    }
    *result = xstrdup(next);
    return 2;
}

static void
call_free(struct call *c)
{
    if (c->exclusive != NULL) {
        excl_release(c);
        free(c->exclusive);
    }
    for (size_t i = 0; c->headers != NULL && c->headers[i] != NULL; i++) {
        free(c->headers[i]);
    }
    free(c->headers);
    free(c->idem_header);
    if (c->http != NULL) {
        httpc_cancel(c->http);
    }
    if (c->lw != NULL) {
        limiter_cancel(c->lw);
    }
    if (c->oauth_pending) {
        oauth_cancel(call_on_token, c);
    }
    if (c->timer != NULL) {
        event_free(c->timer);
    }
    cJSON_Delete(c->acc);
    free(c->kind);
    free(c->limiter_key);
    free(c->method);
    free(c->url);
    free(c->body);
    free(c->origin);
    free(c->bkey);
    free(c->reconcile_url);
    free(c);
    stats.in_flight--;
}

/* The run went away first (shutdown, reset, deadline). */
static void
call_cancel(void *op)
{
    call_free(op);
}

/* The call is over: result is JSON text (ok) or a plain message (failed); taken. */
static void
call_finish(struct call *c, int ok, char *result)
{
    struct effect *ef = c->ef;

    secret_redact(result);
    if (ok) {
        stats.succeeded++;
    } else {
        stats.failed++;
        log_warn("call.failed tenant=%s run=%lld kind=%s error=%s", tenant_id(c->t),
                 (long long)call_rid(c), c->kind, log_quote(result));
    }
    if (c->done != NULL) {
        call_done_fn done = c->done;
        void *arg = c->done_arg;

        call_free(c);
        done(arg, ok, result);
    } else {
        call_free(c);
        effect_done(ef, ok, result);
    }
    free(result);
}

static void
on_backoff(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    call_send(arg);
}

/* The wait a Retry-After value asks for, in seconds: delta-seconds or an HTTP-date
 * (RFC 9110 10.2.3); -1 when absent or unreadable. */
static double
retry_after_s(const char *v)
{
    char *end;
    double s;
    time_t when;

    if (v == NULL) {
        return -1;
    }
    s = strtod(v, &end);
    if (end != v && end[strspn(end, " \t")] == '\0') {
        return s >= 0 ? s : -1;
    }
    when = curl_getdate(v, NULL);
    if (when == -1) {
        return -1;
    }
    s = difftime(when, time(NULL));
    return s > 0 ? s : 0;
}

/* Retry after the server's Retry-After or exponential backoff with jitter, unless the
 * attempts or the run's deadline are used up. Returns 1 when a retry was scheduled;
 * 0 with *why (malloc'd) when the server asked for a wait longer than
 * connectors.retry_after_max or past the run's deadline, else 0. */
static int
maybe_retry(struct call *c, const struct httpc_response *resp, char **why)
{
    double delay_ms = -1, ra = retry_after_s(resp->retry_after);
    unsigned char rnd = 0;
    int64_t deadline = call_deadline(c);
    struct timeval tv;

    if (ra >= 0) {
        stats.throttled++;
        if (ra > settings.retry_after_max ||
            (deadline != 0 && util_now_ms() + (int64_t)(ra * 1000) >= deadline)) {
            *why = xasprintf("%s: HTTP %d: throttled for %.0f s (%s)", c->kind, resp->status, ra,
                             ra > settings.retry_after_max ? "over connectors.retry_after_max"
                                                           : "past the run's deadline");
            return 0;
        }
    }
    if (c->attempt >= settings.max_attempts) {
        return 0;
    }
    if (ra >= 0) {
        delay_ms = ra * 1000;
    }
    if (delay_ms < 0) {
        double base = CALL_BACKOFF_BASE_MS * pow(2, c->attempt - 1);

        if (base > CALL_BACKOFF_MAX_MS) {
            base = CALL_BACKOFF_MAX_MS;
        }
        (void)!util_random(&rnd, 1);
        delay_ms = base * (0.8 + 0.4 * rnd / 255.0); /* +-20% jitter */
    }
    if (deadline != 0 && util_now_ms() + (int64_t)delay_ms >= deadline) {
        return 0;
    }
    stats.retried++;
    log_info("call.retry tenant=%s run=%lld kind=%s status=%d attempt=%d delay_ms=%.0f",
             tenant_id(c->t), (long long)call_rid(c), c->kind, resp->status, c->attempt, delay_ms);
    if (c->ef != NULL) {
        /* The server asked for the wait (Retry-After, or a 429 without one): throttled. */
        effect_wait(c->ef,
                    ra >= 0 || resp->status == 429 ? EFFECT_WAIT_THROTTLED : EFFECT_WAIT_RETRY,
                    resp->status, util_now_ms() + (int64_t)delay_ms);
    }
    if (c->timer == NULL) {
        c->timer = evtimer_new(loop_base(), on_backoff, c);
    }
    tv.tv_sec = (time_t)(delay_ms / 1000);
    tv.tv_usec = (suseconds_t)(fmod(delay_ms, 1000) * 1000);
    evtimer_add(c->timer, &tv);
    return 1;
}

/* 1 when the call expects JSON answers: the API's default Accept and no headers of its
 * own (the generic http module sets its own and keeps any body as a JSON string). */
static int
wants_json(const struct call *c)
{
    return c->headers == NULL && c->api->accept == NULL;
}

/* For a 2xx answer with a body to a JSON call: NULL when the body is JSON of a JSON
 * media type (application/json, or any +json), else what is wrong, malloc'd ("the answer
 * is not JSON (text/html)"). The Content-Type comes from the server: only its printable
 * ASCII, at most 64 bytes of it, goes into the message. */
static char *
junk_answer(const struct call *c, const struct httpc_response *resp)
{
    char mt[65];
    size_t n = 0;
    const char *ct = resp->content_type;
    cJSON *root = NULL;
    char *err = NULL, *out;

    for (; ct != NULL && ct[n] != '\0' && ct[n] != ';' && n < sizeof(mt) - 1; n++) {
        mt[n] = ct[n] > 0x20 && ct[n] < 0x7f ? ct[n] : '?';
    }
    mt[n] = '\0';
    if (n == 0) {
        return xasprintf("%s: the answer is not JSON (no Content-Type)", c->kind);
    }
    if (strcasecmp(mt, "application/json") != 0 &&
        (n < 5 || strcasecmp(mt + n - 5, "+json") != 0)) {
        return xasprintf("%s: the answer is not JSON (%s)", c->kind, mt);
    }
    if (json_parse_strict(resp->body, resp->body_len, JSON_MAX_DEPTH, &root, &err) == 0) {
        cJSON_Delete(root);
        return NULL;
    }
    out = xasprintf("%s: the answer is not JSON (%s: %s)", c->kind, mt, err ? err : "invalid");
    free(err);
    return out;
}

static void
on_http(void *arg, const struct httpc_response *resp)
{
    struct call *c = arg;
    char *result = NULL;
    int rc;
    /* A 500 or 502 reached the server: repeated only when that is safe, or after asking
     * (reconcile) what it did. */
    int server_error = resp->status == 500 || resp->status == 502;

    c->http = NULL;
    if (resp->status == 401 && !c->refreshed) {
        c->refreshed = 1;
        c->force_token = 1;
        call_send(c);
        return;
    }
    if (resp->status == 0 || resp->status == 429 || resp->status == 503 || resp->status == 504 ||
        (server_error && (c->idempotent || c->reconciling || c->reconcile != NULL))) {
        if (resp->status != 429) {
            breaker_failure(c->bkey);
        }
        if ((resp->status == 0 || server_error) && !c->idempotent && !c->reconciling) {
            /* The request may have been carried out with only the answer lost: a call
             * that is not safe to repeat asks the API first, or fails. */
            if (c->reconcile == NULL) {
                /* The journal keeps this message: it must say that a request went out. */
                call_finish(c, 0,
                            xasprintf("%s: %s request sent (attempt %d) but its answer was "
                                      "lost (%s): it may have been carried out; not sent "
                                      "again, as it is not safe to repeat",
                                      c->kind, c->method, c->attempt,
                                      resp->error ? resp->error : "no answer"));
                return;
            }
            c->reconciling = 1;
        }
        {
            char *why = NULL;

            if (maybe_retry(c, resp, &why)) {
                return;
            }
            call_finish(c, 0, why != NULL ? why : call_error_text(c, resp));
        }
        return;
    }
    if (resp->status >= 500) {
        breaker_failure(c->bkey);
    } else {
        breaker_success(c->bkey);
    }
    if (resp->status >= 200 && resp->status < 300 && resp->body_len > 0 && wants_json(c) &&
        (result = junk_answer(c, resp)) != NULL) {
        /* Not the API's answer (a proxy's page, a cut or corrupted body): an error, retried
         * where that is safe. A request that is not safe to repeat may have been carried
         * out: it is asked about first (reconcile), or fails. */
        if (!c->idempotent && !c->reconciling && c->reconcile != NULL) {
            c->reconciling = 1;
        }
        {
            char *why = NULL;
            int again = (c->idempotent || c->reconciling) && maybe_retry(c, resp, &why);

            free(why);
            if (again) {
                log_warn("call.junk_answer tenant=%s run=%lld kind=%s error=%s", tenant_id(c->t),
                         (long long)call_rid(c), c->kind, log_quote(result));
                free(result);
                return;
            }
        }
        if (!c->idempotent && !c->reconciling) {
            char *msg = xasprintf("%s; not retried: it may have been carried out and is not "
                                  "safe to repeat",
                                  result);

            free(result);
            result = msg;
        }
        call_finish(c, 0, result);
        return;
    }
    if (c->reconciling) {
        rc = c->reconcile(c, resp, &result);
        if (rc == -1) { /* the target's state cannot be read: do not guess, fail */
            call_finish(c, 0, result ? result : call_error_text(c, resp));
            return;
        }
        if (rc == 1) {
            stats.reconciled++;
            log_info("call.reconciled tenant=%s run=%lld kind=%s", tenant_id(c->t),
                     (long long)call_rid(c), c->kind);
            call_finish(c, 1, result);
            return;
        }
        free(result);
        c->reconciling = 0;
        c->attempt = 0;
        call_send(c);
        return;
    }
    rc = (c->map ? c->map : map_default)(c, resp, &result);
    if (rc == 2) {
        free(c->url);
        c->url = result;
        c->attempt = 0;
        call_send(c);
        return;
    }
    call_finish(c, rc == 1, result);
}

/* Send one attempt with the credential line auth ("Authorization: ..." or the API's
 * own header; NULL for none). */
static void
call_transfer(struct call *c, const char *auth)
{
    struct httpc_request rq;
    const char *headers[40];
    size_t n = 0;
    char *e = NULL;

    if (auth != NULL) {
        headers[n++] = auth;
    }
    if (c->headers != NULL) {
        for (size_t i = 0; c->headers[i] != NULL && n < 37; i++) {
            headers[n++] = c->headers[i];
        }
    } else {
        headers[n++] = c->api->accept != NULL ? c->api->accept : "Accept: application/json";
    }
    if (!c->reconciling && c->body != NULL) {
        headers[n++] = c->content_type;
    }
    if (!c->reconciling && c->idem_header != NULL) {
        headers[n++] = c->idem_header;
    }
    headers[n] = NULL;
    memset(&rq, 0, sizeof(rq));
    rq.method = c->reconciling ? "GET" : c->method;
    rq.url = c->reconciling ? c->reconcile_url : c->url;
    rq.headers = headers;
    if (!c->reconciling && c->body != NULL) {
        rq.body = c->body;
        rq.body_len = strlen(c->body);
    }
    rq.timeout = c->timeout > 0 ? c->timeout : settings.timeout;
    rq.once = !c->idempotent && !c->reconciling;
    rq.ca_file = settings.ca_file;
    rq.proxy = settings.proxy;
    c->http = httpc_start(&rq, on_http, c, &e);
    if (c->http == NULL) {
        call_finish(c, 0, xasprintf("%s: %s", c->kind, e ? e : "cannot start the request"));
        free(e);
    }
}

void
call_on_token(void *arg, const char *token, const char *err)
{
    struct call *c = arg;
    char *auth;

    c->oauth_pending = 0;
    if (token == NULL) {
        call_finish(c, 0, xasprintf("%s: token: %s", c->kind, err ? err : "unavailable"));
        return;
    }
    auth = xasprintf("Authorization: Bearer %s", token);
    call_transfer(c, auth);
    OPENSSL_cleanse(auth, strlen(auth));
    free(auth);
}

/* "Authorization: Basic base64(user:password)", malloc'd. */
static char *
basic_auth(const char *user, const char *password)
{
    char *pair = xasprintf("%s:%s", user, password);
    size_t n = strlen(pair);
    char *b64 = xmalloc(4 * ((n + 2) / 3) + 1);
    char *line;

    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)pair, (int)n);
    line = xasprintf("Authorization: Basic %s", b64);

    OPENSSL_cleanse(pair, strlen(pair));
    OPENSSL_cleanse(b64, strlen(b64));
    free(pair);
    free(b64);
    return line;
}

static void
on_token_slot(void *arg)
{
    struct call *c = arg;
    struct call_cred cred;
    char *err = NULL;
    int force = c->force_token;

    c->lw = NULL;
    if (c->exclusive != NULL && !c->holds_exclusive && !excl_take(c)) {
        return; /* excl_release sends it when the holder is done */
    }
    if (!breaker_allow(c->bkey)) {
        /* The API failed repeatedly: wait for the circuit's trial rather than fail, so an
         * outage shorter than the run's deadline delays containment without losing it. */
        int64_t wait = breaker_wait_ms(c->bkey), deadline = call_deadline(c);
        struct timeval tv;

        if (deadline != 0 && util_now_ms() + wait >= deadline) {
            call_finish(c, 0,
                        xasprintf("%s: circuit open for %s after repeated failures; it "
                                  "reopens after the run's deadline",
                                  c->kind, c->origin));
            return;
        }
        stats.breaker_waits++;
        log_info("call.breaker_wait tenant=%s run=%lld kind=%s endpoint=%s wait_ms=%lld",
                 tenant_id(c->t), (long long)call_rid(c), c->kind, c->origin, (long long)wait);
        if (c->ef != NULL) {
            effect_wait(c->ef, EFFECT_WAIT_BREAKER, 0, util_now_ms() + wait);
        }
        if (c->timer == NULL) {
            c->timer = evtimer_new(loop_base(), on_backoff, c);
        }
        tv.tv_sec = (time_t)(wait / 1000);
        tv.tv_usec = (suseconds_t)((wait % 1000) * 1000);
        evtimer_add(c->timer, &tv);
        return;
    }
    c->attempt++;
    c->force_token = 0;
    memset(&cred, 0, sizeof(cred));
    if (c->api->credentials != NULL && c->api->credentials(c->t, &cred, &err) == -1) {
        call_finish(c, 0, xasprintf("%s: %s", c->kind, err ? err : "no credentials"));
        free(err);
        return;
    }
    switch (cred.kind) {
    case CALL_AUTH_NONE:
        call_transfer(c, NULL);
        return;
    case CALL_AUTH_HEADER:
        call_transfer(c, cred.header);
        return;
    case CALL_AUTH_BASIC: {
        char *line = basic_auth(cred.user, cred.password);

        call_transfer(c, line);
        OPENSSL_cleanse(line, strlen(line));
        free(line);
        return;
    }
    case CALL_AUTH_OAUTH2:
        break;
    }
    cred.app.ca_file = settings.ca_file;
    cred.app.proxy = settings.proxy;
    c->oauth_pending = 1;
    if (oauth_get(&cred.app, cred.scope, force, call_on_token, c, &err) == -1) {
        c->oauth_pending = 0;
        call_finish(c, 0, xasprintf("%s: %s", c->kind, err ? err : "oauth"));
        free(err);
    }
}

/* Wait for the rate limiter, then the credentials, then send. */
static void
call_send(struct call *c)
{
    if (limiter_acquire(c->limiter_key, c->prio, on_token_slot, c, &c->lw) == 0) {
        on_token_slot(c);
    }
}

static void
call_start(void *op)
{
    call_send(op);
}

static const char *const content_types[] = {
    [CALL_BODY_JSON] = "Content-Type: application/json",
    [CALL_BODY_FORM] = "Content-Type: application/x-www-form-urlencoded",
    [CALL_BODY_XML] = "Content-Type: application/xml",
    [CALL_BODY_TEXT] = "Content-Type: text/plain; charset=utf-8",
};
static const char *const format_names[] = {
    [CALL_BODY_JSON] = "json",
    [CALL_BODY_FORM] = "form",
    [CALL_BODY_XML] = "xml",
    [CALL_BODY_TEXT] = "text",
};

/* What call_effect hands the effect driver. */
struct call_args {
    const struct call_spec *spec;
    const char *base; /* the API's base URL for this tenant, or NULL: not configured */
    const char *url;
};

static char *
call_check(struct run *r, void *arg)
{
    struct call_args *a = arg;

    (void)r;
    if (a->base == NULL) {
        return xstrdup(a->spec->api->not_configured ? a->spec->api->not_configured
                                                    : "this connector is not configured for "
                                                      "this tenant");
    }
    return NULL;
}

/* A new call of spec to url for tenant t (base: the API's base URL for t); for a run's
 * effect ef, or for the connector itself (ef NULL). */
static struct call *
call_new(const struct call_spec *spec, struct effect *ef, const struct tenant *t, const char *base,
         const char *url)
{
    struct call *c = xcalloc(1, sizeof(*c));

    c->ef = ef;
    c->r = ef != NULL ? effect_owner(ef) : NULL;
    c->t = t;
    c->kind = xstrdup(spec->kind);
    c->api = spec->api;
    c->limiter_key = xasprintf("%s:%s", spec->limiter, tenant_id(c->t));
    c->prio = spec->prio;
    c->method = xstrdup(spec->method);
    c->url = xstrdup(url);
    c->body = spec->body ? xstrdup(spec->body) : NULL;
    c->content_type = content_types[spec->body_format];
    {
        const char *o = base[0] != '\0' ? base : url;
        const char *p = strstr(o, "://");
        const char *slash = p ? strpbrk(p + 3, "/?#") : NULL;

        c->origin = slash ? xstrndup(o, (size_t)(slash - o)) : xstrdup(o);
        c->bkey = xasprintf("%s %s", tenant_id(c->t), c->origin);
    }
    c->started_ms = ef != NULL ? effect_started_ms(ef) : util_now_ms();
    c->timeout = spec->timeout;
    c->exclusive = spec->exclusive ? xstrdup(spec->exclusive) : NULL;
    if (spec->headers != NULL) {
        size_t n = 0;

        while (spec->headers[n] != NULL) {
            n++;
        }
        c->headers = xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
            c->headers[i] = xstrdup(spec->headers[i]);
        }
    }
    c->map = spec->map;
    c->ud = spec->ud;
    /* A key the server deduplicates by makes a repeat harmless. */
    c->idempotent = spec->idempotent || spec->idempotency_key != NULL;
    if (spec->idempotency_key != NULL) {
        c->idem_header = xasprintf("Idempotency-Key: %s", spec->idempotency_key);
    }
    if (spec->reconcile != NULL && spec->reconcile_path != NULL) {
        c->reconcile = spec->reconcile;
        c->reconcile_url = xasprintf("%s%s", base, spec->reconcile_path);
    }
    if (ef != NULL && effect_in_doubt(ef) && !c->idempotent) {
        c->reconciling = 1;
    }
    define_limits(c->api, tenant_id(c->t));
    stats.started++;
    stats.in_flight++;
    return c;
}

static void *
call_open(struct effect *ef, void *arg)
{
    struct call_args *a = arg;

    return call_new(a->spec, ef, run_tenant(effect_owner(ef)), a->base, a->url);
}

struct call *
call_request(const struct tenant *t, const struct call_spec *spec, call_done_fn done, void *arg,
             char **errp)
{
    const char *base = spec->api->base(t);
    struct call *c;
    char *url;

    if (base == NULL) {
        kg_err(errp, "%s",
               spec->api->not_configured ? spec->api->not_configured : "not configured");
        return NULL;
    }
    url = xasprintf("%s%s", base, spec->path);
    c = call_new(spec, NULL, t, base, url);
    free(url);
    c->done = done;
    c->done_arg = arg;
    call_send(c);
    return c;
}

void
call_request_cancel(struct call *c)
{
    if (c != NULL) {
        call_free(c);
    }
}

/* The journal's record of the request: {"method","url","body"}, the body inline when it
 * is JSON (as it always was), else as a JSON string with "format" naming it, so that any
 * body keeps the entry valid JSON; then "idempotency_key" when the call has one (a
 * replay with another key, or none, diverges rather than resend under a new key). */
static void
push_request(lua_State *L, const struct call_spec *spec, const char *url)
{
    struct buf req;
    enum call_body fmt = spec->body_format;
    cJSON *tree = NULL;

    if (spec->body != NULL && fmt == CALL_BODY_JSON &&
        json_parse_strict(spec->body, strlen(spec->body), JSON_MAX_DEPTH, &tree, NULL) == -1) {
        fmt = CALL_BODY_TEXT; /* not JSON after all: recorded as text */
    }
    cJSON_Delete(tree);
    buf_init(&req, 0);
    (void)!buf_printf(&req, "{\"method\":\"%s\",\"url\":", spec->method);
    if (spec->journal_url != NULL) {
        url = spec->journal_url;
    }
    (void)!buf_json_string(&req, url, strlen(url));
    (void)!buf_puts(&req, ",\"body\":");
    if (spec->body == NULL) {
        (void)!buf_puts(&req, "null");
    } else if (fmt == CALL_BODY_JSON) {
        (void)!buf_puts(&req, spec->body);
    } else {
        (void)!buf_json_string(&req, spec->body, strlen(spec->body));
        (void)!buf_printf(&req, ",\"format\":\"%s\"", format_names[spec->body_format]);
    }
    if (spec->idempotency_key != NULL) {
        (void)!buf_puts(&req, ",\"idempotency_key\":");
        (void)!buf_json_string(&req, spec->idempotency_key, strlen(spec->idempotency_key));
    }
    (void)!buf_puts(&req, "}");
    lua_pushlstring(L, req.data, req.len); /* collected if anything below raises */
    buf_free(&req);
}

int
call_effect(lua_State *L, const struct call_spec *spec)
{
    struct run *r = run_from_lua(L);
    struct effect_spec es = { 0 };
    struct call_args a;

    if (r == NULL) {
        return luaL_error(L, "%s: only inside a playbook run", spec->kind);
    }
    a.spec = spec;
    a.base = spec->api->base(run_tenant(r));
    lua_pushfstring(L, "%s%s", a.base ? a.base : "", spec->path);
    a.url = lua_tostring(L, -1);
    push_request(L, spec, a.url);
    es.kind = spec->kind;
    es.request = lua_tostring(L, -1);
    es.flags = EFFECT_OUTSIDE;
    if (spec->idempotent || spec->idempotency_key != NULL) {
        es.flags |= EFFECT_IDEMPOTENT;
    } else if (spec->reconcile != NULL && spec->reconcile_path != NULL) {
        es.flags |= EFFECT_RECONCILES;
    }
    if (spec->notice) {
        es.flags |= EFFECT_NOTICE;
    }
    es.check = call_check;
    es.open = call_open;
    es.start = call_start;
    es.cancel = call_cancel;
    es.arg = &a;
    return effect_run(L, &es);
}

void
call_spec_from_def(struct call_spec *spec, const struct call_def *d)
{
    *spec = (struct call_spec){ 0 };
    spec->kind = d->kind;
    spec->api = d->api;
    spec->limiter = d->limiter;
    spec->prio = d->prio;
    spec->idempotent = d->idempotent;
    spec->method = d->method;
    spec->map = d->map;
}

int
call_def_effect(lua_State *L, const struct call_def *d, const char *path, const char *body)
{
    struct call_spec spec;

    call_spec_from_def(&spec, d);
    spec.path = path;
    spec.body = body;
    return call_effect(L, &spec);
}
