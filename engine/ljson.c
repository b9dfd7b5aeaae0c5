/* ljson.c: the playbooks' json module (encode/decode/null/array) and Lua <-> cJSON. */
#include "engine/ljson.h"

#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/json.h"
#include "engine/sandbox.h"
#include "engine/util.h"

/* Bounds on what one encode may produce. A table can reference the same subtable many
 * times (a DAG is not a cycle), so without a budget 64 levels of doubling would expand
 * into 2^64 nodes. The cJSON tree lives outside the Lua allocator's cap. */
#define LJSON_MAX_DEPTH JSON_MAX_DEPTH
#define LJSON_MAX_NODES (1u << 20)
#define LJSON_MAX_BYTES ((size_t)64 << 20)

/* Integral floats up to 2^53 are encoded as integers. Integers of magnitude 10^15 and
 * up are emitted as raw decimal text: cJSON would print them in exponent form (1e+15)
 * or, beyond 2^53, rounded. */
#define LJSON_SAFE_INT ((lua_Integer)1 << 53)
#define LJSON_CJSON_INT ((lua_Integer)1000000000000000)

/* Registry keys: their addresses are unique, so no other module can collide. */
static const char ljson_null_key = 0;     /* json.null is a light userdata of this address */
static const char ljson_array_mt_key = 0; /* registry[&key] = the array marker metatable */

#define LJSON_GUARD_MT "kagari.json.guard"

/* A guard userdata owns C memory while Lua calls that may raise run; its __gc frees
 * whatever is still attached, so an error (memory) never leaks the tree or the text. */
struct ljson_guard {
    cJSON *tree;
    char *text;
};

static int
l_json_guard_gc(lua_State *L)
{
    struct ljson_guard *g = luaL_checkudata(L, 1, LJSON_GUARD_MT);

    cJSON_Delete(g->tree);
    g->tree = NULL;
    free(g->text);
    g->text = NULL;
    return 0;
}

/* Push a fresh, empty guard. May raise (memory) but owns nothing yet. */
static struct ljson_guard *
guard_push(lua_State *L)
{
    struct ljson_guard *g = lua_newuserdatauv(L, sizeof(*g), 0);

    g->tree = NULL;
    g->text = NULL;
    if (luaL_newmetatable(L, LJSON_GUARD_MT)) {
        lua_pushcfunction(L, l_json_guard_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
    return g;
}

/* Push the shared array marker metatable, creating it on first use. Its __metatable
 * field protects it: playbooks of one tenant share the state, so one run must not be
 * able to change how another run's arrays behave. */
static void
push_array_mt(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &ljson_array_mt_key) == LUA_TTABLE) {
        return;
    }
    lua_pop(L, 1);
    lua_createtable(L, 0, 2);
    lua_pushliteral(L, "json.array");
    lua_setfield(L, -2, "__metatable");
    lua_pushliteral(L, "json.array");
    lua_setfield(L, -2, "__name");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ljson_array_mt_key);
}

/* Does the table at idx carry the array marker? Does not raise. */
static int
has_array_mark(lua_State *L, int idx)
{
    int yes;

    if (!lua_getmetatable(L, idx)) {
        return 0;
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ljson_array_mt_key);
    yes = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return yes;
}

/* Push a Lua number for a JSON number: integral values that fit a lua_Integer become
 * integers (so 42 stays 42, not 42.0), everything else a float. */
static void
push_number(lua_State *L, double d)
{
    if (d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
        lua_pushinteger(L, (lua_Integer)d);
    } else {
        lua_pushnumber(L, d);
    }
}

/* Recursive worker of ljson_push. The depth of a cJSON tree is bounded by its parser
 * (JSON_MAX_DEPTH for strict input, CJSON_NESTING_LIMIT otherwise). */
static void
push_item(lua_State *L, const cJSON *item)
{
    const cJSON *c;
    lua_Integer i = 0;
    int n = 0;

    luaL_checkstack(L, 4, "json: nesting too deep");
    if (cJSON_IsNull(item) || item == NULL) {
        lua_pushlightuserdata(L, (void *)&ljson_null_key);
    } else if (cJSON_IsTrue(item)) {
        lua_pushboolean(L, 1);
    } else if (cJSON_IsFalse(item)) {
        lua_pushboolean(L, 0);
    } else if (cJSON_IsNumber(item)) {
        push_number(L, item->valuedouble);
    } else if (cJSON_IsString(item)) {
        lua_pushstring(L, item->valuestring);
    } else if (cJSON_IsArray(item)) {
        cJSON_ArrayForEach(c, item)
        {
            n++;
        }
        lua_createtable(L, n, 0);
        push_array_mt(L);
        lua_setmetatable(L, -2);
        cJSON_ArrayForEach(c, item)
        {
            push_item(L, c);
            lua_rawseti(L, -2, ++i);
        }
    } else if (cJSON_IsObject(item)) {
        cJSON_ArrayForEach(c, item)
        {
            n++;
        }
        lua_createtable(L, 0, n);
        cJSON_ArrayForEach(c, item)
        {
            lua_pushstring(L, c->string);
            push_item(L, c);
            lua_rawset(L, -3);
        }
    } else if (cJSON_IsRaw(item)) {
        /* Raw items hold JSON text we generated (big integers): read it back. */
        push_number(L, strtod(item->valuestring, NULL));
    } else {
        lua_pushlightuserdata(L, (void *)&ljson_null_key);
    }
}

/* Push the Lua value for item. May raise (memory, stack); the caller owns item and must
 * arrange to free it if that happens (see struct ljson_guard). */
void
ljson_push(lua_State *L, const cJSON *item)
{
    push_item(L, item);
}

/* Parse text strictly and push its value; on bad JSON push the message and return -1.
 * A guard holds the tree (and the message) while Lua allocates, so nothing leaks if
 * the state runs out of memory half way. */
int
ljson_push_text(lua_State *L, const char *text, size_t len)
{
    struct ljson_guard *g = guard_push(L);
    cJSON *tree = NULL;
    char *err = NULL;

    if (json_parse_strict(text, len, JSON_MAX_DEPTH, &tree, &err) == -1) {
        g->text = err;
        lua_pushstring(L, err);
        free(g->text);
        g->text = NULL;
        lua_remove(L, -2);
        return -1;
    }
    g->tree = tree;
    push_item(L, tree);
    cJSON_Delete(g->tree);
    g->tree = NULL;
    lua_remove(L, -2);
    return 0;
}

/* ---- Lua -> JSON ---- */

/* One level of the current path, for error messages and cycle detection. */
struct enc_level {
    const void *table;
    const char *key; /* borrowed Lua string, or NULL for an array index */
    size_t keylen;
    lua_Integer index;
};

struct enc {
    lua_State *L;
    int depth;
    size_t nodes;
    size_t bytes;
    struct enc_level path[LJSON_MAX_DEPTH + 1];
    char **errp;
};

/* A member collected from an object, sorted by key before it is linked. */
struct enc_member {
    const char *key;
    size_t keylen;
    cJSON *value;
};

/* Is s[0..n) valid UTF-8 (RFC 3629: no overlongs, surrogates or > U+10FFFF)? */
static int
utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t need;
        unsigned char lo = 0x80, hi = 0xbf;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c < 0xc2 || c > 0xf4) {
            return 0;
        }
        need = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
        if (n - i < need || s[i + 1] < lo || s[i + 1] > hi) {
            return 0;
        }
        for (size_t k = 2; k < need; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }
        }
        i += need;
    }
    return 1;
}

/* Render the current path ("$", "$.a[2].b") into out. */
static void
enc_path(const struct enc *e, char *out, size_t outsz)
{
    size_t len;

    snprintf(out, outsz, "$");
    for (int d = 1; d <= e->depth; d++) {
        const struct enc_level *lv = &e->path[d];

        len = strlen(out);
        if (len + 1 >= outsz) {
            return;
        }
        if (lv->key != NULL) {
            int kl = lv->keylen > 40 ? 40 : (int)lv->keylen;

            snprintf(out + len, outsz - len, ".%.*s%s", kl, lv->key, lv->keylen > 40 ? "..." : "");
        } else {
            snprintf(out + len, outsz - len, "[%lld]", (long long)lv->index);
        }
    }
}

/* Set the error, naming where in the value it happened. Returns NULL for convenience. */
static cJSON *
enc_fail(struct enc *e, const char *what)
{
    char path[256];

    enc_path(e, path, sizeof(path));
    kg_err(e->errp, "%s (at %s)", what, path);
    return NULL;
}

static cJSON *enc_value(struct enc *e, int idx);

/* Does the table on the current path (levels 0..depth-1) equal p? */
static int
enc_on_path(const struct enc *e, const void *p)
{
    for (int d = 0; d < e->depth; d++) {
        if (e->path[d].table == p) {
            return 1;
        }
    }
    return 0;
}

/* Encode a number. Integers, and integral floats within 2^53 (so 3.0 encodes as 3),
 * are written as plain decimal digits: below 10^15 as cJSON numbers (cJSON prints those
 * without an exponent), above as raw decimal text so that nothing is rounded or put in
 * exponent form. Other floats must be finite and are printed by cJSON with the shortest
 * of %.15g / %.17g that reads back to the same double: every float round-trips exactly
 * and the output is deterministic. */
static cJSON *
enc_number(struct enc *e, int idx)
{
    cJSON *item;
    lua_Integer v = 0;
    int is_int = lua_isinteger(e->L, idx);

    if (is_int) {
        v = lua_tointeger(e->L, idx);
    } else {
        double d = lua_tonumber(e->L, idx);

        if (!isfinite(d)) {
            return enc_fail(e, "NaN or infinity cannot be encoded");
        }
        if (d == floor(d) && fabs(d) <= (double)LJSON_SAFE_INT) {
            v = (lua_Integer)d;
        } else {
            item = cJSON_CreateNumber(d);
            goto out;
        }
    }
    if (v > -LJSON_CJSON_INT && v < LJSON_CJSON_INT) {
        item = cJSON_CreateNumber((double)v);
    } else {
        char tmp[32];

        snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
        item = cJSON_CreateRaw(tmp);
    }
out:
    if (item == NULL) {
        return enc_fail(e, "out of memory");
    }
    return item;
}

/* Check a Lua string for JSON: valid UTF-8, no NUL byte (cJSON strings are C strings). */
static int
enc_string_ok(struct enc *e, const char *s, size_t n, const char *what)
{
    char msg[96];

    if (memchr(s, '\0', n) != NULL) {
        snprintf(msg, sizeof(msg), "%s contains a NUL byte", what);
        enc_fail(e, msg);
        return -1;
    }
    if (!utf8_valid((const unsigned char *)s, n)) {
        snprintf(msg, sizeof(msg), "%s is not valid UTF-8", what);
        enc_fail(e, msg);
        return -1;
    }
    e->bytes += n;
    if (e->bytes > LJSON_MAX_BYTES) {
        enc_fail(e, "value too large");
        return -1;
    }
    return 0;
}

/* Encode the table at absolute index t (already on the path) as an array of n items. */
static cJSON *
enc_array(struct enc *e, int t, lua_Integer n)
{
    cJSON *arr = cJSON_CreateArray();

    if (arr == NULL) {
        return enc_fail(e, "out of memory");
    }
    for (lua_Integer i = 1; i <= n; i++) {
        cJSON *v;

        e->path[e->depth].key = NULL;
        e->path[e->depth].index = i;
        lua_rawgeti(e->L, t, i);
        v = enc_value(e, lua_gettop(e->L));
        lua_pop(e->L, 1);
        if (v == NULL) {
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddItemToArray(arr, v);
    }
    return arr;
}

static int
cmp_member(const void *a, const void *b)
{
    const struct enc_member *x = a, *y = b;
    size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
    int c = memcmp(x->key, y->key, n);

    if (c != 0) {
        return c;
    }
    return x->keylen < y->keylen ? -1 : x->keylen > y->keylen;
}

/* Encode the table at absolute index t as an object with its keys sorted bytewise, so
 * that equal tables always encode to equal text (the journal compares requests). */
static cJSON *
enc_object(struct enc *e, int t, size_t count)
{
    lua_State *L = e->L;
    struct enc_member *m = xcalloc(count ? count : 1, sizeof(*m));
    size_t nm = 0;
    int base = lua_gettop(L);
    cJSON *obj = NULL;

    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        size_t kl = 0;
        const char *k;

        if (lua_type(L, -2) != LUA_TSTRING) {
            /* Name the table, not a stale sibling key. */
            e->depth--;
            enc_fail(e, "table key must be a string");
            e->depth++;
            goto fail;
        }
        k = lua_tolstring(L, -2, &kl); /* a string already: no conversion, no raise */
        e->path[e->depth].key = k;
        e->path[e->depth].keylen = kl;
        if (enc_string_ok(e, k, kl, "key") == -1) {
            goto fail;
        }
        if (nm == count) {
            enc_fail(e, "table changed while encoding");
            goto fail;
        }
        m[nm].key = k;
        m[nm].keylen = kl;
        m[nm].value = enc_value(e, lua_gettop(L));
        if (m[nm].value == NULL) {
            goto fail;
        }
        nm++;
        lua_pop(L, 1);
    }
    qsort(m, nm, sizeof(*m), cmp_member);
    obj = cJSON_CreateObject();
    if (obj == NULL) {
        enc_fail(e, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < nm; i++) {
        /* The key is copied by cJSON (keys never hold NUL, checked above). */
        if (!cJSON_AddItemToObject(obj, m[i].key, m[i].value)) {
            enc_fail(e, "out of memory");
            goto fail;
        }
        m[i].value = NULL;
    }
    free(m);
    return obj;
fail:
    for (size_t i = 0; i < nm; i++) {
        cJSON_Delete(m[i].value);
    }
    cJSON_Delete(obj);
    free(m);
    lua_settop(L, base);
    return NULL;
}

/* Encode the table at absolute index t: arrays are tables with the marker or with
 * exactly the keys 1..n (n > 0); an unmarked empty table is an object. */
static cJSON *
enc_table(struct enc *e, int t)
{
    lua_State *L = e->L;
    size_t count = 0;
    lua_Integer max = 0;
    int seq = 1, marked;
    cJSON *out;

    if (e->depth >= LJSON_MAX_DEPTH) {
        return enc_fail(e, "nesting deeper than 64");
    }
    if (enc_on_path(e, lua_topointer(L, t))) {
        return enc_fail(e, "cycle in table");
    }
    if (!lua_checkstack(L, 6)) {
        return enc_fail(e, "out of Lua stack");
    }
    marked = has_array_mark(L, t);
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        count++;
        if (seq && lua_isinteger(L, -2)) {
            lua_Integer k = lua_tointeger(L, -2);

            if (k < 1) {
                seq = 0;
            } else if (k > max) {
                max = k;
            }
        } else {
            seq = 0;
        }
        lua_pop(L, 1);
    }
    if (count > LJSON_MAX_NODES) {
        return enc_fail(e, "value too large");
    }
    seq = seq && (lua_Integer)count == max;
    e->path[e->depth].table = lua_topointer(L, t);
    e->depth++;
    if (marked && !seq && count > 0) {
        out = enc_fail(e, "table marked with json.array has keys other than 1..n");
    } else if (seq && count > 0) {
        out = enc_array(e, t, max);
    } else if (marked) {
        out = cJSON_CreateArray();
        if (out == NULL) {
            enc_fail(e, "out of memory");
        }
    } else {
        out = enc_object(e, t, count);
    }
    e->depth--;
    return out;
}

/* Encode the value at absolute index idx. Only non-raising Lua API calls are made, so
 * every cJSON item built so far is freed by our own error paths. */
static cJSON *
enc_value(struct enc *e, int idx)
{
    lua_State *L = e->L;
    cJSON *item = NULL;

    if (++e->nodes > LJSON_MAX_NODES) {
        return enc_fail(e, "value too large");
    }
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        item = cJSON_CreateNull();
        break;
    case LUA_TBOOLEAN:
        item = cJSON_CreateBool(lua_toboolean(L, idx));
        break;
    case LUA_TNUMBER:
        return enc_number(e, idx);
    case LUA_TSTRING: {
        size_t n = 0;
        const char *s = lua_tolstring(L, idx, &n);

        if (enc_string_ok(e, s, n, "string") == -1) {
            return NULL;
        }
        item = cJSON_CreateString(s);
        break;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) != (void *)&ljson_null_key) {
            return enc_fail(e, "cannot encode a light userdata");
        }
        item = cJSON_CreateNull();
        break;
    case LUA_TTABLE:
        /* A read-only table (a library's) encodes as the table it shows. */
        if (lua_checkstack(L, 2) && sandbox_proxy_target(L, idx)) {
            item = enc_table(e, lua_gettop(L));
            lua_pop(L, 1);
            return item;
        }
        return enc_table(e, idx);
    default: {
        char msg[64];

        snprintf(msg, sizeof(msg), "cannot encode a %s value", lua_typename(L, lua_type(L, idx)));
        return enc_fail(e, msg);
    }
    }
    if (item == NULL) {
        return enc_fail(e, "out of memory");
    }
    return item;
}

/* Convert the value at idx to a new cJSON tree (the caller frees it with cJSON_Delete).
 * Never raises: on error returns NULL with *errp naming the problem and its path. */
cJSON *
ljson_from_lua(lua_State *L, int idx, char **errp)
{
    struct enc *e = xcalloc(1, sizeof(*e));
    int top = lua_gettop(L);
    cJSON *out;

    e->L = L;
    e->errp = errp;
    out = enc_value(e, lua_absindex(L, idx));
    lua_settop(L, top);
    free(e);
    return out;
}

/* ---- the Lua module ---- */

/* json.encode(v) -> string. Misuse (functions, cycles, non-string keys, ...) raises. */
static int
l_json_encode(lua_State *L)
{
    struct ljson_guard *g;
    char *err = NULL;
    cJSON *tree;

    luaL_checkany(L, 1);
    lua_settop(L, 1);
    g = guard_push(L);
    tree = ljson_from_lua(L, 1, &err);
    if (tree == NULL) {
        g->text = err;
        lua_pushfstring(L, "json.encode: %s", err);
        free(g->text);
        g->text = NULL;
        return lua_error(L);
    }
    g->tree = tree;
    g->text = json_print(tree);
    cJSON_Delete(g->tree);
    g->tree = NULL;
    lua_pushstring(L, g->text);
    free(g->text);
    g->text = NULL;
    return 1;
}

/* json.decode(s) -> value | nil, err. A non-string argument is misuse and raises. */
static int
l_json_decode(lua_State *L)
{
    size_t len = 0;
    const char *s = luaL_checklstring(L, 1, &len);

    if (ljson_push_text(L, s, len) == -1) {
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2;
    }
    return 1;
}

/* json.array(t) -> t, marked to encode as an array even when empty. */
static int
l_json_array(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if (lua_getmetatable(L, 1)) {
        push_array_mt(L);
        if (!lua_rawequal(L, -1, -2)) {
            return luaL_argerror(L, 1, "table already has a metatable");
        }
        lua_pop(L, 2);
        return 1;
    }
    push_array_mt(L);
    lua_setmetatable(L, 1);
    return 1;
}

static const luaL_Reg json_funcs[] = {
    { "encode", l_json_encode },
    { "decode", l_json_decode },
    { "array", l_json_array },
    { NULL, NULL },
};

int
luaopen_kagari_json(lua_State *L)
{
    luaL_newlib(L, json_funcs);
    lua_pushlightuserdata(L, (void *)&ljson_null_key);
    lua_setfield(L, -2, "null");
    push_array_mt(L);
    lua_pop(L, 1);
    return 1;
}
