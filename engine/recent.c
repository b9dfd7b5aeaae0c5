/* recent.c: alerts.recent, the tenant's earlier alerts that share an observable with
 * what a playbook is looking at. A journaled effect: a replay sees the list the first
 * execution saw, even though newer alerts have arrived since. */
#include "engine/recent.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kagari.h"
#include "engine/run.h"
#include "engine/store.h"
#include "engine/tenant.h"

struct recent_call {
    const char *value, *type, *source;
    double since;
    int limit;
};

/* The JSON of one alert as alerts.recent returns it (the alert table without raw). */
static void
alert_json(struct buf *b, const struct alert *a)
{
    char iso[32];

    (void)!buf_printf(b, "{\"id\":%lld,\"source\":", (long long)a->id);
    (void)!buf_json_string(b, a->source ? a->source : "", strlen(a->source ? a->source : ""));
    (void)!buf_puts(b, ",\"source_id\":");
    (void)!buf_json_string(b, a->source_id ? a->source_id : "",
                           strlen(a->source_id ? a->source_id : ""));
    util_fmt_time(a->time_ms, iso);
    (void)!buf_printf(b, ",\"time\":%.3f,\"time_iso\":\"%s\"", (double)a->time_ms / 1000.0, iso);
    util_fmt_time(a->received_ms, iso);
    (void)!buf_printf(b, ",\"received\":%.3f,\"received_iso\":\"%s\"",
                      (double)a->received_ms / 1000.0, iso);
    if (a->title != NULL) {
        (void)!buf_puts(b, ",\"title\":");
        (void)!buf_json_string(b, a->title, strlen(a->title));
    }
    if (a->category != NULL) {
        (void)!buf_puts(b, ",\"category\":");
        (void)!buf_json_string(b, a->category, strlen(a->category));
    }
    if (a->vendor_severity != NULL) {
        (void)!buf_puts(b, ",\"vendor_severity\":");
        (void)!buf_json_string(b, a->vendor_severity, strlen(a->vendor_severity));
    }
    (void)!buf_printf(b, ",\"severity\":\"%s\",\"severity_level\":%d,\"outcome\":",
                      severity_name(a->severity), a->severity);
    (void)!buf_json_string(b, a->outcome ? a->outcome : "unknown",
                           strlen(a->outcome ? a->outcome : "unknown"));
    (void)!buf_puts(b, ",\"observables\":[");
    for (size_t i = 0; i < a->nobs; i++) {
        (void)!buf_puts(b, i ? ",{\"type\":" : "{\"type\":");
        (void)!buf_json_string(b, a->obs[i].type, strlen(a->obs[i].type));
        (void)!buf_puts(b, ",\"value\":");
        (void)!buf_json_string(b, a->obs[i].value, strlen(a->obs[i].value));
        if (a->obs[i].role != NULL) {
            (void)!buf_puts(b, ",\"role\":");
            (void)!buf_json_string(b, a->obs[i].role, strlen(a->obs[i].role));
        }
        (void)!buf_puts(b, "}");
    }
    (void)!buf_puts(b, "]}");
}

static void *
recent_open(struct effect *ef, void *arg)
{
    const struct recent_call *c = arg;
    struct run *r = effect_owner(ef);
    struct tenant *t = run_tenant(r);
    struct store_recent q = { 0 };
    struct alert *v = NULL;
    size_t n = 0;
    char *err = NULL;
    struct buf b;

    q.value = c->value;
    q.type = c->type;
    q.source = c->source;
    q.since_ms = run_now_ms(r) - (int64_t)(c->since * 1000);
    q.exclude_id = run_alert_id(r);
    q.limit = c->limit;
    if (store_alert_recent(t->db, &q, &v, &n, &err) == -1) {
        char *msg = xasprintf("alerts.recent: %s", err ? err : "failed");

        effect_done(ef, 0, msg);
        free(msg);
        free(err);
        return NULL;
    }
    buf_init(&b, 0);
    (void)!buf_puts(&b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            (void)!buf_puts(&b, ",");
        }
        alert_json(&b, &v[i]);
        alert_free(&v[i]);
    }
    free(v);
    (void)!buf_puts(&b, "]");
    effect_done(ef, 1, b.data);
    buf_free(&b);
    return NULL;
}

/* An optional string field of the table at 1 (1 to 1024 bytes), or NULL. */
static const char *
opt_text(lua_State *L, const char *field)
{
    size_t len;
    const char *s;

    if (lua_getfield(L, 1, field) == LUA_TNIL) {
        lua_pop(L, 1);
        return NULL;
    }
    if (lua_type(L, -1) != LUA_TSTRING) {
        luaL_error(L, "alerts.recent: %s must be a string", field);
    }
    s = lua_tolstring(L, -1, &len);
    if (len == 0 || len > 1024) {
        luaL_error(L, "alerts.recent: %s must be 1 to 1024 bytes", field);
    }
    if (memchr(s, '\0', len) != NULL) {
        luaL_error(L, "alerts.recent: %s has a NUL byte", field); /* stored values have none */
    }
    return s; /* stays on the stack */
}

static void
add_member(struct buf *b, const char *k, const char *v)
{
    if (v != NULL) {
        (void)!buf_printf(b, ",\"%s\":", k);
        (void)!buf_json_string(b, v, strlen(v));
    }
}

/* alerts.recent{observable=, type=, since=, source=, limit=} -> a list of the tenant's
 * earlier alerts carrying that observable value, newest first (the run's own alert left
 * out), or nil, message on a store error. */
static int
l_alerts_recent(lua_State *L)
{
    static const char *const keys[] = { "observable", "type", "since", "source", "limit", NULL };
    struct recent_call c = { 0 };
    struct effect_spec spec = { 0 };
    struct buf b;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if (lcheck_unknown_key(L, 1, keys)) {
        return luaL_error(L, "alerts.recent: unknown field %s", lua_tostring(L, -1));
    }
    c.value = opt_text(L, "observable");
    if (c.value == NULL) {
        return luaL_error(L, "alerts.recent: observable (a value, e.g. a user) is required");
    }
    c.type = opt_text(L, "type");
    c.source = opt_text(L, "source");
    c.since = RECENT_SINCE_DEFAULT;
    lua_getfield(L, 1, "since");
    if (!lua_isnil(L, -1)) {
        double v = -1;

        if (lua_type(L, -1) == LUA_TNUMBER) {
            v = lua_tonumber(L, -1);
        } else if (lua_type(L, -1) != LUA_TSTRING ||
                   util_parse_duration(lua_tostring(L, -1), &v) == -1) {
            v = -1;
        }
        if (!(v > 0 && v <= RECENT_SINCE_MAX)) {
            return luaL_error(L, "alerts.recent: since must be a duration up to 366d (\"1h\")");
        }
        c.since = v;
    }
    lua_pop(L, 1);
    c.limit = RECENT_LIMIT_DEFAULT;
    lua_getfield(L, 1, "limit");
    if (!lua_isnil(L, -1)) {
        int isint = 0;
        lua_Integer lim = lua_tointegerx(L, -1, &isint);

        if (!isint || lim < 1 || lim > RECENT_LIMIT_MAX) {
            return luaL_error(L, "alerts.recent: limit must be an integer from 1 to %d",
                              RECENT_LIMIT_MAX);
        }
        c.limit = (int)lim;
    }
    lua_pop(L, 1);
    buf_init(&b, 0);
    (void)!buf_puts(&b, "{\"observable\":");
    (void)!buf_json_string(&b, c.value, strlen(c.value));
    add_member(&b, "type", c.type);
    add_member(&b, "source", c.source);
    (void)!buf_printf(&b, ",\"since\":%.17g,\"limit\":%d}", c.since, c.limit);
    lua_pushlstring(L, b.data, b.len);
    buf_free(&b);
    spec.kind = "alerts.recent";
    spec.request = lua_tostring(L, -1);
    spec.flags = EFFECT_ENGINE;
    spec.open = recent_open;
    spec.arg = &c;
    return effect_run(L, &spec);
}

int
luaopen_kagari_alerts(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "recent", l_alerts_recent },
        { NULL, NULL },
    };

    luaL_newlib(L, funcs);
    return 1;
}
