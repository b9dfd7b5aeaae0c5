/* state.c: the playbooks' memory across runs: a durable key-value store per tenant
 * (state.get, state.put, state.incr, state.delete). Every call is an effect: journaled,
 * so that a replay after a crash returns what the first execution saw (a replayed incr
 * does not count twice), and written in the tenant's transaction together with its
 * journal entry. */
#include "engine/state.h"

#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kagari.h"
#include "engine/ljson.h"
#include "engine/loop.h"
#include "engine/run.h"
#include "engine/store.h"
#include "engine/tenant.h"

enum state_op { ST_GET = 0, ST_PUT, ST_INCR, ST_DELETE };

static const char *const op_names[] = { "state.get", "state.put", "state.incr", "state.delete" };

/* What one call asks for, as its open needs it. */
struct state_call {
    enum state_op op;
    const char *key;
    const char *value; /* put: JSON text */
    double secs;       /* put: ttl; incr: window (0: none given) */
    lua_Integer by;    /* incr */
};

/* Check the key at idx: 1 to STATE_KEY_MAX bytes of UTF-8 without control characters
 * (keys are shown in journals and logs). Raises on anything else. */
static const char *
check_key(lua_State *L, int idx, const char *fn)
{
    size_t len, i = 0;
    const char *k;

    if (lua_type(L, idx) != LUA_TSTRING) {
        luaL_error(L, "%s: key must be a string, not %s", fn, luaL_typename(L, idx));
    }
    k = lua_tolstring(L, idx, &len);
    if (len == 0 || len > STATE_KEY_MAX) {
        luaL_error(L, "%s: key must be 1 to %d bytes (it has %d)", fn, STATE_KEY_MAX, (int)len);
    }
    while (i < len) {
        size_t n = util_utf8_char(k + i, len - i);
        unsigned char c = (unsigned char)k[i];

        if (n == 0) {
            luaL_error(L, "%s: key is not valid UTF-8 (byte %d)", fn, (int)i + 1);
        }
        if (c < 0x20 || c == 0x7f) {
            luaL_error(L, "%s: key has a control character (byte %d)", fn, (int)i + 1);
        }
        i += n;
    }
    return k;
}

/* Read a duration field of the options table at idx: "1h", "30m", "90s" or a number of
 * seconds, from 1 s to STATE_TTL_MAX. *secs stays as it is when the field is absent. */
static void
opt_duration(lua_State *L, int idx, const char *field, const char *fn, double *secs)
{
    double v = -1;

    lua_getfield(L, idx, field);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    if (lua_type(L, -1) == LUA_TNUMBER) {
        v = lua_tonumber(L, -1);
    } else if (lua_type(L, -1) == LUA_TSTRING) {
        if (util_parse_duration(lua_tostring(L, -1), &v) == -1) {
            v = -1;
        }
    }
    if (!(v >= 1 && v <= STATE_TTL_MAX)) {
        luaL_error(L, "%s: %s must be a duration from 1s to 366d (\"1h\", \"30m\" or seconds)", fn,
                   field);
    }
    lua_pop(L, 1);
    *secs = v;
}

static void
check_options(lua_State *L, int idx, const char *const *keys, const char *fn)
{
    if (lua_isnoneornil(L, idx)) {
        return;
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    if (lcheck_unknown_key(L, idx, keys)) {
        luaL_error(L, "%s: unknown option %s", fn, lua_tostring(L, -1));
    }
}

static int64_t
expiry(int64_t now, double secs)
{
    return now + (int64_t)llround(secs * 1000);
}

/* Open: do the call on the tenant's database in the iteration's transaction, and finish
 * the effect with its result (so the journal entry and the write commit together). */
static void *
state_open(struct effect *ef, void *arg)
{
    const struct state_call *c = arg;
    struct run *r = effect_owner(ef);
    struct tenant *t = run_tenant(r);
    int64_t now = run_now_ms(r), exp = 0;
    char *err = NULL, *old = NULL, *res = NULL;
    const char *result = NULL; /* JSON when the call succeeded */
    int rc;

    if (c->op != ST_GET && loop_write_lazy(t->db, &err) == -1) {
        goto out;
    }
    switch (c->op) {
    case ST_GET:
        rc = store_kv_get(t->db, c->key, now, &old, &exp, &err);
        if (rc != -1) {
            result = rc == 1 ? old : "null";
        }
        break;
    case ST_PUT:
        (void)store_kv_prune(t->db, now, STATE_PRUNE_BATCH, NULL);
        if (store_kv_put(t->db, c->key, c->value, expiry(now, c->secs), now, &err) == 0) {
            result = "true";
        }
        break;
    case ST_INCR: {
        lua_Integer n = c->by;
        cJSON *v = NULL;

        (void)store_kv_prune(t->db, now, STATE_PRUNE_BATCH, NULL);
        rc = store_kv_get(t->db, c->key, now, &old, &exp, &err);
        if (rc == -1) {
            break;
        }
        if (rc == 1) {
            v = cJSON_Parse(old);
            if (v == NULL || !cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
                fabs(v->valuedouble) > 9007199254740991.0) {
                cJSON_Delete(v);
                err = xasprintf("key %s holds a value that is not an integer", c->key);
                break;
            }
            n = (lua_Integer)v->valuedouble + c->by;
            cJSON_Delete(v);
            if (c->secs > 0 && exp == 0) {
                exp = expiry(now, c->secs); /* a window on a counter that had none */
            }
        } else {
            exp = expiry(now, c->secs > 0 ? c->secs : STATE_TTL_DEFAULT);
        }
        res = xasprintf("%lld", (long long)n);
        if (store_kv_put(t->db, c->key, res, exp, now, &err) == 0) {
            result = res;
        }
        break;
    }
    case ST_DELETE:
        rc = store_kv_delete(t->db, c->key, &err);
        if (rc != -1) {
            result = rc == 1 ? "true" : "false";
        }
        break;
    }
out:
    if (result != NULL) {
        effect_done(ef, 1, result);
    } else {
        char *msg = xasprintf("%s: %s", op_names[c->op], err ? err : "failed");

        effect_done(ef, 0, msg);
        free(msg);
    }
    free(err);
    free(old);
    free(res);
    return NULL;
}

/* Run the call as an effect whose request is the JSON text on top of the stack. A
 * state effect always finishes at once, so effect_run returns here with its values. */
static int
state_effect(lua_State *L, struct state_call *c)
{
    struct effect_spec spec = { 0 };
    int n;

    spec.kind = op_names[c->op];
    spec.request = lua_tostring(L, -1);
    spec.flags = EFFECT_ENGINE;
    spec.open = state_open;
    spec.arg = c;
    n = effect_run(L, &spec);
    if (n == 1 && lua_type(L, -1) == LUA_TLIGHTUSERDATA) { /* json.null: no entry */
        lua_pop(L, 1);
        lua_pushnil(L);
    }
    return n;
}

/* Push {"key":K<rest>} (rest is more members, may be ""). */
static void
push_request(lua_State *L, const char *key, const char *rest)
{
    struct buf b;

    buf_init(&b, 0);
    (void)!buf_puts(&b, "{\"key\":");
    (void)!buf_json_string(&b, key, strlen(key));
    (void)!buf_puts(&b, rest);
    (void)!buf_puts(&b, "}");
    lua_pushlstring(L, b.data, b.len);
    buf_free(&b);
}

/* state.get(key) -> the value, or nil when the key is absent or expired. */
static int
l_state_get(lua_State *L)
{
    struct state_call c = { .op = ST_GET };

    c.key = check_key(L, 1, "state.get");
    push_request(L, c.key, "");
    return state_effect(L, &c);
}

/* state.put(key, value [, {ttl=}]) -> true, or nil, message when the value is over the
 * cap. The value is any JSON-able Lua value (not nil: use state.delete). */
static int
l_state_put(lua_State *L)
{
    static const char *const keys[] = { "ttl", NULL };
    struct state_call c = { .op = ST_PUT, .secs = STATE_TTL_DEFAULT };
    char *err = NULL, *text, *rest;
    cJSON *v;
    size_t len;

    c.key = check_key(L, 1, "state.put");
    if (lua_isnoneornil(L, 2)) {
        return luaL_error(L, "state.put: value is nil (use state.delete to remove a key)");
    }
    check_options(L, 3, keys, "state.put");
    if (lua_istable(L, 3)) {
        opt_duration(L, 3, "ttl", "state.put", &c.secs);
    }
    v = ljson_from_lua(L, 2, &err);
    if (v == NULL) {
        lua_pushfstring(L, "state.put: value: %s", err ? err : "not JSON-able");
        free(err);
        return lua_error(L);
    }
    text = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    len = strlen(text);
    if (len > STATE_VALUE_MAX) {
        free(text);
        luaL_pushfail(L);
        lua_pushfstring(L, "state.put: value of %I bytes (as JSON) is over the cap of %d bytes",
                        (lua_Integer)len, (int)STATE_VALUE_MAX);
        return 2;
    }
    lua_pushstring(L, text); /* kept on the stack: collected if anything raises */
    free(text);
    c.value = lua_tostring(L, -1);
    rest = xasprintf(",\"ttl\":%.17g,\"value\":", c.secs);
    lua_pushstring(L, rest);
    free(rest);
    lua_pushvalue(L, -2);
    lua_concat(L, 2);
    push_request(L, c.key, lua_tostring(L, -1));
    return state_effect(L, &c);
}

/* state.incr(key [, {by=, window=}]) -> the count after adding by (default 1). */
static int
l_state_incr(lua_State *L)
{
    static const char *const keys[] = { "by", "window", NULL };
    struct state_call c = { .op = ST_INCR, .by = 1 };
    char rest[96];

    c.key = check_key(L, 1, "state.incr");
    check_options(L, 2, keys, "state.incr");
    if (lua_istable(L, 2)) {
        opt_duration(L, 2, "window", "state.incr", &c.secs);
        lua_getfield(L, 2, "by");
        if (!lua_isnil(L, -1)) {
            int isint = 0;

            c.by = lua_tointegerx(L, -1, &isint);
            if (!isint || c.by < -1000000000 || c.by > 1000000000) {
                return luaL_error(L, "state.incr: by must be an integer from -1e9 to 1e9");
            }
        }
        lua_pop(L, 1);
    }
    snprintf(rest, sizeof(rest), ",\"by\":%lld,\"window\":%.17g", (long long)c.by, c.secs);
    push_request(L, c.key, rest);
    return state_effect(L, &c);
}

/* state.delete(key) -> true when the key was there, false when not. */
static int
l_state_delete(lua_State *L)
{
    struct state_call c = { .op = ST_DELETE };

    c.key = check_key(L, 1, "state.delete");
    push_request(L, c.key, "");
    return state_effect(L, &c);
}

int
luaopen_kagari_state(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "get", l_state_get },       { "put", l_state_put }, { "incr", l_state_incr },
        { "delete", l_state_delete }, { NULL, NULL },
    };

    luaL_newlib(L, funcs);
    return 1;
}
