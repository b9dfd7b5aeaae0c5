/* call.c: connector calls as journaled effects: dry-run, journal and replay, in-doubt
 * reconciliation, rate limits, circuit breakers, OAuth, retries with backoff. */
#include "connectors/call.h"

#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <openssl/crypto.h>

#include "connectors/breaker.h"
#include "connectors/oauth.h"
#include "connectors/secret.h"
#include "engine/json.h"
#include "engine/log.h"
#include "engine/loop.h"
#include "engine/run.h"
#include "engine/tenant.h"

#define CALL_MAX_PAGES 50
#define CALL_BACKOFF_BASE_MS 500
#define CALL_BACKOFF_MAX_MS 30000

struct call {
    struct run *r;
    struct tenant *t;
    char *kind;
    enum call_api api;
    char *limiter_key;
    enum limiter_prio prio;
    char *method;
    char *url;
    char *body;
    char *origin; /* scheme://host[:port] of the API: the breaker's key; pages stay on it */
    call_map_fn map;
    void *ud;
    char *reconcile_url;
    call_map_fn reconcile;
    int reconciling;
    int idempotent;

    int attempt;
    int refreshed; /* a 401 already got its one token refresh */
    int force_token;
    int awaiting_commit;
    int cancelled;
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
    char **headers; /* extra header lines, NULL-terminated, or NULL */
    struct call *xnext; /* waiting for the same exclusive key */
};

/* Exclusive keys in use, each with the calls waiting for it. */
struct excl {
    char *key;
    struct call *head, *tail;
    struct excl *next;
};
static struct excl *excls;

static struct call_settings settings = { NULL, NULL, 30, 5, 1 };
static struct call_stats stats;

static void call_send(struct call *c);
void call_on_token(void *arg, const char *token, const char *err);

/* The vendors' published limits (reference: connectors.md), per API and tenant; set
 * up the first time a tenant calls out. */
static void
define_limits(const char *tenant)
{
    static char (*done)[64];
    static size_t ndone;
    char key[128];

    if (!settings.rate_limits) {
        return;
    }
    for (size_t i = 0; i < ndone; i++) {
        if (strcmp(done[i], tenant) == 0) {
            return;
        }
    }
    done = xrealloc(done, (ndone + 1) * sizeof(*done));
    snprintf(done[ndone++], sizeof(done[0]), "%s", tenant);

    snprintf(key, sizeof(key), "defender:%s", tenant);
    limiter_define(key, 100.0 / 60, 100);
    limiter_define(key, 1500.0 / 3600, 1500);
    snprintf(key, sizeof(key), "idp:%s", tenant);
    limiter_define(key, 1, 1);
    snprintf(key, sizeof(key), "graph.users:%s", tenant);
    limiter_define(key, 3000.0 / 150, 3000);
    snprintf(key, sizeof(key), "graph.signins:%s", tenant);
    limiter_define(key, 0.5, 5);
    snprintf(key, sizeof(key), "graph.security:%s", tenant);
    limiter_define(key, 150.0 / 60, 150);
    snprintf(key, sizeof(key), "intune:%s", tenant);
    limiter_define(key, 200.0 / 20, 200);
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
}

const struct call_stats *
call_stats(void)
{
    return &stats;
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

#define CALL_ID_MAX 256

const char *
call_check_id(lua_State *L, int idx, const char *what)
{
    size_t len;
    const char *id = luaL_checklstring(L, idx, &len);

    if (len == 0 || len > CALL_ID_MAX || strlen(id) != len) {
        luaL_argerror(L, idx, lua_pushfstring(L, "expected %s", what));
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
call_push_id_path(lua_State *L, int idx, const char *what, const char *prefix,
                  const char *suffix)
{
    return call_push_path(L, prefix, call_check_id(L, idx, what), suffix);
}

void
call_odata_quote(struct buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        (void)!buf_append(b, s, 1);
        if (*s == '\'') {
            (void)!buf_append(b, "'", 1);
        }
    }
}

const char *
call_push_filter_path(lua_State *L, const char *prefix, struct buf *filter)
{
    char *esc = call_escape(filter->data ? filter->data : "");
    char *path = xasprintf("%s?$filter=%s", prefix, esc);

    free(esc);
    buf_free(filter);
    lua_pushstring(L, path);
    free(path);
    return lua_tostring(L, -1);
}

const char *
call_push_list_path(lua_State *L, const char *prefix, struct buf *filter, long long top)
{
    char *esc = call_escape(filter->data ? filter->data : "");
    char *path = filter->len ? xasprintf("%s?$filter=%s&$top=%lld", prefix, esc, top)
                             : xasprintf("%s?$top=%lld", prefix, top);

    free(esc);
    buf_free(filter);
    lua_pushstring(L, path);
    free(path);
    return lua_tostring(L, -1);
}

const char *
call_push_user_since_path(lua_State *L, int idx, const char *prefix, const char *time_field,
                          lua_Integer max_top)
{
    char since[32] = "";
    const char *user;
    lua_Integer top;
    struct buf f;

    /* Every check first: nothing below may raise while C memory is held. */
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "user");
    user = luaL_optstring(L, -1, NULL);
    luaL_argcheck(L, user == NULL || (user[0] != '\0' && strlen(user) <= CALL_ID_MAX), idx,
                  "user: a user principal name");
    lua_getfield(L, idx, "since");
    if (!lua_isnil(L, -1)) {
        int64_t ms = 0;
        char iso[32];

        if (lua_type(L, -1) == LUA_TNUMBER) {
            lua_Number secs = lua_tonumber(L, -1);

            luaL_argcheck(L, secs >= 0 && secs < 253402300800.0, idx, "since: epoch seconds");
            ms = (int64_t)(secs * 1000);
        } else if (lua_type(L, -1) != LUA_TSTRING ||
                   util_parse_time(lua_tostring(L, -1), &ms) == -1) {
            luaL_argerror(L, idx, "since: expected epoch seconds or an RFC 3339 time");
        }
        util_fmt_time(ms, iso);
        snprintf(since, sizeof(since), "%.19sZ", iso); /* OData: whole seconds, UTC */
    }
    lua_getfield(L, idx, "top");
    top = luaL_optinteger(L, -1, 100);
    luaL_argcheck(L, top >= 1 && top <= max_top, idx, "top: out of range");
    buf_init(&f, 0);
    if (user != NULL) {
        (void)!buf_puts(&f, "userPrincipalName eq '");
        call_odata_quote(&f, user);
        (void)!buf_puts(&f, "'");
    }
    if (since[0] != '\0') {
        (void)!buf_printf(&f, "%s%s ge %s", f.len ? " and " : "", time_field, since);
    }
    return call_push_list_path(L, prefix, &f, (long long)top);
}

/* The message of a Graph / Defender error envelope {"error":{"code","message"}}, or
 * of the status alone. */
char *
call_error_text(const struct call *c, const struct httpc_response *resp)
{
    cJSON *root = NULL;
    char *out;

    if (resp->status == 0) {
        return xasprintf("%s: %s", c->kind, resp->error ? resp->error : "transfer failed");
    }
    if (resp->body_len > 0 &&
        json_parse_strict(resp->body, resp->body_len, 32, &root, NULL) == 0) {
        const cJSON *e = json_get(root, "error");
        const char *code = e ? json_get_string(e, "code") : NULL;
        const char *msg = e ? json_get_string(e, "message") : NULL;

        if (code != NULL) {
            out = xasprintf("%s: HTTP %d %s: %.300s", c->kind, resp->status, code,
                            msg ? msg : "");
            cJSON_Delete(root);
            return out;
        }
        cJSON_Delete(root);
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

int
call_map_paged(struct call *c, const struct httpc_response *resp, char **result)
{
    cJSON *root = NULL;
    const cJSON *value, *it;
    const char *next;

    if (resp->status < 200 || resp->status >= 300) {
        *result = call_error_text(c, resp);
        return 0;
    }
    if (json_parse_strict(resp->body, resp->body_len, JSON_MAX_DEPTH, &root, NULL) == -1 ||
        !cJSON_IsArray(value = json_get(root, "value"))) {
        cJSON_Delete(root);
        *result = xasprintf("%s: the answer is not a list page", c->kind);
        return 0;
    }
    if (c->acc == NULL) {
        c->acc = cJSON_CreateArray();
    }
    cJSON_ArrayForEach(it, value)
    {
        cJSON_AddItemToArray(c->acc, cJSON_Duplicate(it, 1));
    }
    next = json_get_string(root, "@odata.nextLink");
    if (next != NULL && ++c->pages < CALL_MAX_PAGES) {
        size_t ol = strlen(c->origin);

        if (strncmp(next, c->origin, ol) != 0 || (next[ol] != '/' && next[ol] != '\0')) {
            cJSON_Delete(root);
            *result = xasprintf("%s: next page link leaves %s", c->kind, c->origin);
            return 0;
        }
        *result = xstrdup(next);
        cJSON_Delete(root);
        return 2;
    }
    cJSON_Delete(root);
    *result = json_print(c->acc);
    return 1;
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
    free(c->reconcile_url);
    free(c);
    stats.in_flight--;
}

/* The run went away first (shutdown, reset, deadline). */
static void
call_cancel(void *op)
{
    struct call *c = op;

    if (c->awaiting_commit) {
        c->cancelled = 1; /* the after-commit callback frees it */
        return;
    }
    call_free(c);
}

static void
call_finish(struct call *c, int ok, char *result)
{
    struct run *r = c->r;

    if (ok) {
        stats.succeeded++;
    } else {
        stats.failed++;
        log_warn("call.failed tenant=%s run=%lld kind=%s error=%s", c->t->id,
                 (long long)run_id(r), c->kind, log_quote(result));
    }
    if (!ok) {
        char *msg = json_str(result);

        free(result);
        result = msg;
    }
    secret_redact(result);
    run_set_op(r, NULL, NULL);
    call_free(c);
    run_effect_complete(r, ok, result);
    free(result);
}

static void
on_backoff(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    call_send(arg);
}

/* Retry after the server's Retry-After or exponential backoff with jitter, unless the
 * attempts or the run's deadline are used up. Returns 1 when a retry was scheduled. */
static int
maybe_retry(struct call *c, const struct httpc_response *resp)
{
    double delay_ms = -1;
    unsigned char rnd = 0;
    int64_t deadline = run_deadline_ms(c->r);
    struct timeval tv;

    if (c->attempt >= settings.max_attempts) {
        return 0;
    }
    if (resp->retry_after != NULL) {
        char *end;
        double s = strtod(resp->retry_after, &end);

        if (end != resp->retry_after && s >= 0 && s < 86400) {
            delay_ms = s * 1000;
        }
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
             c->t->id, (long long)run_id(c->r), c->kind, resp->status, c->attempt, delay_ms);
    if (c->timer == NULL) {
        c->timer = evtimer_new(loop_base(), on_backoff, c);
    }
    tv.tv_sec = (time_t)(delay_ms / 1000);
    tv.tv_usec = (suseconds_t)(fmod(delay_ms, 1000) * 1000);
    evtimer_add(c->timer, &tv);
    return 1;
}

static void
on_http(void *arg, const struct httpc_response *resp)
{
    struct call *c = arg;
    char *result = NULL;
    int rc;

    c->http = NULL;
    if (resp->status == 401 && !c->refreshed) {
        c->refreshed = 1;
        c->force_token = 1;
        call_send(c);
        return;
    }
    if (resp->status == 0 || resp->status == 429 || resp->status == 503 || resp->status == 504) {
        if (resp->status != 429) {
            breaker_failure(c->origin);
        }
        if (resp->status == 0 && !c->idempotent && !c->reconciling) {
            /* The request may have been carried out with only the answer lost: a call
             * that is not safe to repeat asks the API first, or fails. */
            if (c->reconcile == NULL) {
                call_finish(c, 0, xasprintf("%s: %s; not retried: it may have been carried "
                                            "out and is not safe to repeat",
                                            c->kind, resp->error ? resp->error : "no answer"));
                return;
            }
            c->reconciling = 1;
        }
        if (maybe_retry(c, resp)) {
            return;
        }
        call_finish(c, 0, call_error_text(c, resp));
        return;
    }
    if (resp->status >= 500) {
        breaker_failure(c->origin);
    } else {
        breaker_success(c->origin);
    }
    if (c->reconciling) {
        rc = c->reconcile(c, resp, &result);
        if (rc == -1) { /* the target's state cannot be read: do not guess, fail */
            call_finish(c, 0, result ? result : call_error_text(c, resp));
            return;
        }
        if (rc == 1) {
            stats.reconciled++;
            log_info("call.reconciled tenant=%s run=%lld kind=%s", c->t->id,
                     (long long)run_id(c->r), c->kind);
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

void
call_on_token(void *arg, const char *token, const char *err)
{
    struct call *c = arg;
    struct httpc_request rq;
    const char *headers[5];
    char *auth;
    char *e = NULL;

    c->oauth_pending = 0;
    if (token == NULL) {
        call_finish(c, 0, xasprintf("%s: token: %s", c->kind, err ? err : "unavailable"));
        return;
    }
    {
        size_t n = 0;

        auth = token[0] ? xasprintf("Authorization: Bearer %s", token) : NULL;
        if (auth != NULL) {
            headers[n++] = auth;
        }
        headers[n++] = "Accept: application/json";
        if (c->body != NULL) {
            headers[n++] = "Content-Type: application/json";
        }
        headers[n] = NULL;
    }
    memset(&rq, 0, sizeof(rq));
    rq.method = c->reconciling ? "GET" : c->method;
    rq.url = c->reconciling ? c->reconcile_url : c->url;
    rq.headers = c->headers ? (const char *const *)c->headers : headers;
    if (!c->reconciling && c->body != NULL) {
        rq.body = c->body;
        rq.body_len = strlen(c->body);
    }
    rq.timeout = c->timeout > 0 ? c->timeout : settings.timeout;
    rq.ca_file = settings.ca_file;
    rq.proxy = settings.proxy;
    c->http = httpc_start(&rq, on_http, c, &e);
    if (auth != NULL) {
        OPENSSL_cleanse(auth, strlen(auth));
        free(auth);
    }
    if (c->http == NULL) {
        call_finish(c, 0, xasprintf("%s: %s", c->kind, e ? e : "cannot start the request"));
        free(e);
    }
}

static void
on_token_slot(void *arg)
{
    struct call *c = arg;
    const struct config_microsoft *ms = &c->t->cfg->microsoft;
    struct oauth_app app;
    char *err = NULL;
    int force = c->force_token;

    c->lw = NULL;
    if (c->exclusive != NULL && !c->holds_exclusive && !excl_take(c)) {
        return; /* excl_release sends it when the holder is done */
    }
    if (!breaker_allow(c->origin)) {
        call_finish(c, 0, xasprintf("%s: circuit open for %s after repeated failures", c->kind,
                                    c->origin));
        return;
    }
    c->attempt++;
    c->force_token = 0;
    if (c->api == CALL_PLAIN) {
        call_on_token(c, "", NULL);
        return;
    }
    memset(&app, 0, sizeof(app));
    app.authority = ms->authority;
    app.tenant = ms->tenant_id;
    app.client_id = ms->client_id;
    app.secret = c->t->ms_secret;
    app.cert_file = ms->certificate;
    app.key_file = ms->private_key;
    app.ca_file = settings.ca_file;
    app.proxy = settings.proxy;
    c->oauth_pending = 1;
    if (oauth_get(&app, c->api == CALL_DEFENDER ? ms->defender_scope : ms->graph_scope, force,
                  call_on_token, c, &err) == -1) {
        c->oauth_pending = 0;
        call_finish(c, 0, xasprintf("%s: %s", c->kind, err ? err : "oauth"));
        free(err);
    }
}

/* Wait for the rate limiter, then the token, then send. */
static void
call_send(struct call *c)
{
    if (limiter_acquire(c->limiter_key, c->prio, on_token_slot, c, &c->lw) == 0) {
        on_token_slot(c);
    }
}

static void
after_commit(void *arg, int ok)
{
    struct call *c = arg;

    c->awaiting_commit = 0;
    if (c->cancelled) {
        call_free(c);
        return;
    }
    if (!ok) {
        return; /* the run is replayed from the database; it cancels this call */
    }
    call_send(c);
}

static int
push_now(lua_State *L, struct run *r, struct journal_entry *e, int ok, char *result)
{
    run_effect_finish(r, ok, result);
    free(result);
    return run_effect_push(L, e);
}

int
call_effect(lua_State *L, const struct call_spec *spec)
{
    struct run *r = run_from_lua(L);
    struct tenant *t;
    const struct config_microsoft *ms;
    const char *base;
    struct journal_entry *e;
    struct buf req;
    struct call *c;
    char *url, *err = NULL;
    int st;

    if (r == NULL) {
        return luaL_error(L, "%s: only inside a playbook run", spec->kind);
    }
    t = run_tenant(r);
    ms = t->cfg != NULL && t->cfg->has_microsoft ? &t->cfg->microsoft : NULL;
    base = spec->api == CALL_PLAIN ? ""
           : ms == NULL             ? ""
           : spec->api == CALL_DEFENDER ? ms->defender
                                        : ms->graph;
    url = xasprintf("%s%s", base, spec->path);
    buf_init(&req, 0);
    (void)!buf_printf(&req, "{\"method\":\"%s\",\"url\":", spec->method);
    (void)!buf_json_string(&req, url, strlen(url));
    (void)!buf_puts(&req, ",\"body\":");
    (void)!buf_puts(&req, spec->body ? spec->body : "null");
    (void)!buf_puts(&req, "}");
    lua_pushlstring(L, req.data, req.len); /* collected if anything below raises */
    buf_free(&req);
    st = run_effect_begin(L, spec->kind, lua_tostring(L, -1), &e);
    if (st == EFFECT_REPLAYED) {
        free(url);
        stats.replayed++;
        return run_effect_push(L, e);
    }
    if (ms == NULL && spec->api != CALL_PLAIN) {
        free(url);
        return push_now(L, r, e, 0,
                        json_str("no Microsoft app is configured for this tenant "
                                 "(tenants.<id>.microsoft in kagari.conf.lua)"));
    }
    if ((t->cfg != NULL && t->cfg->dry_run) || run_dry_run(r)) {
        char *res;

        stats.dry_run++;
        res = xasprintf("{\"dry_run\":true,\"request\":%s}", lua_tostring(L, -1));
        free(url);
        log_info("call.dry_run tenant=%s run=%lld kind=%s", t->id, (long long)run_id(r),
                 spec->kind);
        return push_now(L, r, e, 1, res);
    }
    if (st == EFFECT_IN_DOUBT && !spec->idempotent && spec->reconcile == NULL) {
        free(url);
        return push_now(L, r, e, 0,
                        json_str("left in doubt by a restart and not safe to repeat: "
                                 "check the target by hand"));
    }
    if (!lua_isyieldable(L)) {
        free(url);
        return run_effect_park(L); /* raises: cannot wait here */
    }
    c = xcalloc(1, sizeof(*c));
    c->r = r;
    c->t = t;
    c->kind = xstrdup(spec->kind);
    c->api = spec->api;
    c->limiter_key = xasprintf("%s:%s", spec->limiter, t->id);
    c->prio = spec->prio;
    c->method = xstrdup(spec->method);
    c->url = url;
    c->body = spec->body ? xstrdup(spec->body) : NULL;
    {
        const char *o = spec->api == CALL_PLAIN ? url : base;
        const char *p = strstr(o, "://");
        const char *slash = p ? strpbrk(p + 3, "/?#") : NULL;

        c->origin = slash ? xstrndup(o, (size_t)(slash - o)) : xstrdup(o);
    }
    c->started_ms = e->started_ms;
    c->timeout = spec->timeout;
    c->exclusive = spec->exclusive ? xstrdup(spec->exclusive) : NULL;
    if (spec->headers != NULL) {
        size_t n = 0;

        while (spec->headers[n] != NULL) {
            n++;
        }
        c->headers = xcalloc(n + 2, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
            c->headers[i] = xstrdup(spec->headers[i]);
        }
        if (c->body != NULL) {
            c->headers[n] = xstrdup("Content-Type: application/json");
        }
    }
    c->map = spec->map;
    c->ud = spec->ud;
    c->idempotent = spec->idempotent;
    if (spec->reconcile != NULL && spec->reconcile_path != NULL) {
        c->reconcile = spec->reconcile;
        c->reconcile_url = xasprintf("%s%s", base, spec->reconcile_path);
    }
    if (st == EFFECT_IN_DOUBT && !spec->idempotent) {
        c->reconciling = 1;
    }
    define_limits(t->id);
    stats.started++;
    stats.in_flight++;
    if (!spec->idempotent && loop_write(t->db, &err) == -1) {
        free(err);
        call_free(c);
        return luaL_error(L, "%s: journal unavailable", spec->kind);
    }
    run_set_op(r, call_cancel, c);
    if (spec->idempotent) {
        /* Repeating it is harmless, so it need not wait for its journal entry to be
         * durable: a crash before the commit just sends it again on replay. It starts
         * from the loop, never from here: the run has not parked yet. */
        struct timeval now = { 0, 0 };

        c->timer = evtimer_new(loop_base(), on_backoff, c);
        evtimer_add(c->timer, &now);
        return run_effect_park_idempotent(L);
    }
    c->awaiting_commit = 1;
    loop_after_commit(t->db, after_commit, c);
    return run_effect_park(L);
}
