/* test_ljson.c: the Lua json module: round trips, key order, null, arrays, numbers,
 * rejections (cycles, depth, keys, bad UTF-8), and C conversions under memory errors. */
#include "engine/ljson.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "engine/json.h"
#include "engine/util.h"
#include "tests/unit/test.h"

static lua_State *
new_state(void)
{
    lua_State *L = luaL_newstate();

    luaL_openlibs(L);
    luaL_requiref(L, "json", luaopen_kagari_json, 1);
    lua_pop(L, 1);
    return L;
}

/* Run code (a chunk that returns one value) and return tostring(value), or "ERR: msg".
 * The caller frees the result. */
static char *
eval(lua_State *L, const char *code)
{
    char *out;

    if (luaL_dostring(L, code) != LUA_OK) {
        out = xasprintf("ERR: %s", lua_tostring(L, -1));
    } else {
        out = xstrdup(luaL_tolstring(L, -1, NULL));
    }
    lua_settop(L, 0);
    return out;
}

#define T_LUA(L, code, want)                                                                       \
    do {                                                                                           \
        char *r_ = eval(L, code);                                                                  \
        T_EQ_STR(r_, want);                                                                        \
        free(r_);                                                                                  \
    } while (0)

#define T_LUA_CONTAINS(L, code, want)                                                              \
    do {                                                                                           \
        char *r_ = eval(L, code);                                                                  \
        T_CONTAINS(r_, want);                                                                      \
        free(r_);                                                                                  \
    } while (0)

static void
test_module_shape(void)
{
    lua_State *L = new_state();

    T_LUA(L, "return type(json.encode)..type(json.decode)..type(json.array)",
          "functionfunctionfunction");
    T_LUA(L, "return type(json.null)", "userdata");
    T_LUA(L, "return require('json') == json", "true");
    lua_close(L);
}

static void
test_roundtrip(void)
{
    lua_State *L = new_state();

    T_LUA(L,
          "return json.encode(json.decode('{\"b\":[1,2,{\"c\":null}],\"a\":\"x\",\"t\":true,"
          "\"f\":false,\"n\":-1.5}'))",
          "{\"a\":\"x\",\"b\":[1,2,{\"c\":null}],\"f\":false,\"n\":-1.5,\"t\":true}");
    T_LUA(L, "return json.encode(json.decode('\"caf\\\\u00e9\\\\n\"'))", "\"caf\xc3\xa9\\n\"");
    T_LUA(L, "local v = json.decode('{\"a\":{\"b\":[10,20]}}') return v.a.b[2]", "20");
    T_LUA(L, "return json.decode('[1,2,3]')[3]", "3");
    T_LUA(L, "return json.encode(json.decode(json.encode({x={1,2,{y='z'}}})))",
          "{\"x\":[1,2,{\"y\":\"z\"}]}");
    lua_close(L);
}

static void
test_key_order(void)
{
    lua_State *L = new_state();

    T_LUA(L, "return json.encode({z=1, a=2, m={y=1, b=2}})",
          "{\"a\":2,\"m\":{\"b\":2,\"y\":1},\"z\":1}");
    /* Bytewise: 'B' (0x42) < '_' (0x5f) < 'a' (0x61) < 'ab' < '\xc3\xa9'. */
    T_LUA(L, "return json.encode({a=1, ab=2, B=3, _=4, ['\\xc3\\xa9']=5})",
          "{\"B\":3,\"_\":4,\"a\":1,\"ab\":2,\"\xc3\xa9\":5}");
    /* The same table built in different orders encodes identically. */
    T_LUA(L,
          "local t1, t2 = {}, {} for i = 1, 50 do t1['k'..i] = i end "
          "for i = 50, 1, -1 do t2['k'..i] = i end "
          "return json.encode(t1) == json.encode(t2)",
          "true");
    lua_close(L);
}

static void
test_null(void)
{
    lua_State *L = new_state();

    T_LUA(L, "return json.decode('null') == json.null", "true");
    T_LUA(L, "return json.decode('{\"a\":null}').a == json.null", "true");
    T_LUA(L, "return json.decode('[null]')[1] == json.null", "true");
    T_LUA(L, "return json.encode({a=json.null, b=1})", "{\"a\":null,\"b\":1}");
    T_LUA(L, "return json.encode(json.null)", "null");
    T_LUA(L, "return json.encode(nil)", "null");
    T_LUA(L, "return json.encode({json.null, json.null})", "[null,null]");
    lua_close(L);
}

static void
test_arrays(void)
{
    lua_State *L = new_state();

    T_LUA(L, "return json.encode(json.decode('[]'))", "[]");
    T_LUA(L, "return json.encode(json.decode('{\"a\":[],\"b\":{}}'))", "{\"a\":[],\"b\":{}}");
    T_LUA(L, "return json.encode({})", "{}");
    T_LUA(L, "return json.encode(json.array({}))", "[]");
    T_LUA(L, "local t = {} return json.array(t) == t", "true");
    T_LUA(L, "return json.encode(json.array({'a','b'}))", "[\"a\",\"b\"]");
    T_LUA(L, "return json.encode({1,2,3})", "[1,2,3]");
    T_LUA(L, "local a = json.decode('[]') a[1] = 'x' return json.encode(a)", "[\"x\"]");
    T_LUA(L, "return getmetatable(json.decode('[]'))", "json.array");
    /* The marker is shared by every array of the state: playbooks must not change it. */
    T_LUA_CONTAINS(L, "return setmetatable(json.decode('[]'), {})",
                   "cannot change a protected metatable");
    T_LUA_CONTAINS(L, "return json.array(setmetatable({}, {}))", "already has a metatable");
    T_LUA(L, "local a = json.array({}) return json.array(a) == a", "true");
    T_LUA_CONTAINS(L, "return json.encode(json.array({a=1}))", "keys other than 1..n");
    T_LUA_CONTAINS(L, "return json.array(1)", "table expected");
    lua_close(L);
}

static void
test_numbers(void)
{
    lua_State *L = new_state();

    T_LUA(L, "return json.encode(42)", "42");
    T_LUA(L, "return json.encode(-7)", "-7");
    T_LUA(L, "return json.encode(3.0)", "3");
    T_LUA(L, "return json.encode(-0.0)", "0");
    T_LUA(L, "return json.encode(1.5)", "1.5");
    T_LUA(L, "return json.encode(0.1)", "0.1");
    T_LUA(L, "return json.encode(1/3)", "0.33333333333333331");
    T_LUA(L, "return json.encode(1e15)", "1000000000000000");
    T_LUA(L, "return json.encode(999999999999999)", "999999999999999");
    T_LUA(L, "return json.encode(2^53)", "9007199254740992");
    T_LUA(L, "return json.encode(math.maxinteger)", "9223372036854775807");
    T_LUA(L, "return json.encode(math.mininteger)", "-9223372036854775808");
    T_LUA(L, "return json.encode(1e300)", "1e+300");
    T_LUA(L, "return json.encode(2^60 + 0.0)", "1.152921504606847e+18");
    T_LUA_CONTAINS(L, "return json.encode(0/0)", "json.encode: NaN or infinity");
    T_LUA_CONTAINS(L, "return json.encode({x=math.huge})",
                   "NaN or infinity cannot be encoded (at $.x)");
    T_LUA(L, "return math.type(json.decode('42'))", "integer");
    T_LUA(L, "return math.type(json.decode('4.2e1'))", "integer");
    T_LUA(L, "return math.type(json.decode('1.5'))", "float");
    T_LUA(L, "return json.decode('-0.25')", "-0.25");
    T_LUA(L, "return math.type(json.decode('1e300'))", "float");
    T_LUA(L, "local x = 1/3 return json.decode(json.encode(x)) == x", "true");
    lua_close(L);
}

static void
test_strings(void)
{
    lua_State *L = new_state();

    T_LUA(L, "return json.encode('a\"b\\\\c\\n\\t\\1')", "\"a\\\"b\\\\c\\n\\t\\u0001\"");
    T_LUA(L, "return json.encode('\\u{1F600}')", "\"\xf0\x9f\x98\x80\"");
    T_LUA_CONTAINS(L, "return json.encode('\\xff')",
                   "json.encode: string is not valid UTF-8 (at $)");
    T_LUA_CONTAINS(L, "return json.encode({k='\\xed\\xa0\\x80'})", "not valid UTF-8 (at $.k)");
    T_LUA_CONTAINS(L, "return json.encode({['\\xc0\\xaf']=1})", "key is not valid UTF-8");
    T_LUA_CONTAINS(L, "return json.encode('alice\\0@evil')", "string contains a NUL byte");
    T_LUA_CONTAINS(L, "return json.encode({['a\\0b']=1})", "key contains a NUL byte");
    lua_close(L);
}

static void
test_rejections(void)
{
    lua_State *L = new_state();

    T_LUA_CONTAINS(L, "return json.encode({[1]=1, a=2})",
                   "json.encode: table key must be a string");
    T_LUA_CONTAINS(L, "return json.encode({[1.5]=1})", "table key must be a string");
    T_LUA_CONTAINS(L, "return json.encode({1, 2, nil, 4})", "table key must be a string");
    T_LUA_CONTAINS(L, "return json.encode({a={[true]=1}})", "table key must be a string (at $.a)");
    T_LUA_CONTAINS(L, "return json.encode(print)", "json.encode: cannot encode a function value");
    T_LUA_CONTAINS(L, "return json.encode({a={b={function() end}}})",
                   "cannot encode a function value (at $.a.b[1])");
    T_LUA_CONTAINS(L, "return json.encode(coroutine.create(print))", "cannot encode a thread");
    T_LUA_CONTAINS(L, "return json.encode(io.stdout)", "cannot encode a userdata");
    T_LUA_CONTAINS(L, "return json.encode()", "bad argument #1");
    lua_close(L);
}

static void
test_cycles_and_depth(void)
{
    lua_State *L = new_state();

    T_LUA_CONTAINS(L, "local t = {} t.self = t return json.encode(t)",
                   "cycle in table (at $.self)");
    T_LUA_CONTAINS(L, "local t = {} t[1] = {t} return json.encode(t)",
                   "cycle in table (at $[1][1])");
    /* A shared subtable is not a cycle. */
    T_LUA(L, "local s = {1} return json.encode({a=s, b=s, c={s}})",
          "{\"a\":[1],\"b\":[1],\"c\":[[1]]}");
    T_LUA(L, "local t = {} for i = 1, 63 do t = {t} end return #json.encode(t)", "128");
    T_LUA_CONTAINS(L, "local t = {} for i = 1, 64 do t = {t} end return json.encode(t)",
                   "nesting deeper than 64");
    T_LUA_CONTAINS(L, "local t = {} for i = 1, 100000 do t = {x=t} end return json.encode(t)",
                   "nesting deeper than 64");
    /* A DAG that would expand to 2^40 nodes is refused, quickly. */
    T_LUA_CONTAINS(L, "local t = {1} for i = 1, 40 do t = {t, t} end return json.encode(t)",
                   "value too large");
    lua_close(L);
}

static void
test_decode_errors(void)
{
    lua_State *L = new_state();

    T_LUA(L, "local v, e = json.decode('{\"a\":1,\"a\":2}') return tostring(v) .. ' ' .. e",
          "nil json: duplicate key \"a\" in object at $");
    T_LUA_CONTAINS(L, "local v, e = json.decode('\"alice\\\\u0000@evil\"') return e",
                   "\\u0000 escape not allowed");
    T_LUA_CONTAINS(L, "local v, e = json.decode('\"\\xff\"') return e", "invalid UTF-8");
    T_LUA_CONTAINS(L, "local v, e = json.decode('') return e", "empty input");
    T_LUA_CONTAINS(L, "local v, e = json.decode('[1,]') return e", "byte offset 3");
    T_LUA_CONTAINS(L, "local v, e = json.decode(string.rep('[', 10000)) return e",
                   "nesting deeper than 64");
    T_LUA(L, "return select('#', json.decode('x'))", "2");
    T_LUA_CONTAINS(L, "return json.decode(nil)", "bad argument #1");
    T_LUA_CONTAINS(L, "return json.decode({})", "bad argument #1");
    lua_close(L);
}

static void
test_c_api(void)
{
    lua_State *L = new_state();
    cJSON *tree;
    char *err = NULL, *s;

    T_REQUIRE(luaL_dostring(L, "return {b={1,2}, a='x', n=json.null}") == LUA_OK);
    tree = ljson_from_lua(L, -1, &err);
    T_REQUIRE(tree != NULL);
    T_EQ_INT(lua_gettop(L), 1);
    s = json_print(tree);
    T_EQ_STR(s, "{\"a\":\"x\",\"b\":[1,2],\"n\":null}");
    free(s);
    cJSON_Delete(tree);
    lua_settop(L, 0);

    T_REQUIRE(luaL_dostring(L, "local t = {} t.x = {y = t} return t") == LUA_OK);
    lua_pushinteger(L, 7); /* the value is not on top */
    tree = ljson_from_lua(L, -2, &err);
    T_ASSERT(tree == NULL);
    T_EQ_STR(err, "cycle in table (at $.x.y)");
    T_EQ_INT(lua_gettop(L), 2);
    free(err);
    err = NULL;
    lua_settop(L, 0);

    T_EQ_INT(ljson_push_text(L, "{\"k\":[true]}", 12), 0);
    T_EQ_INT(lua_gettop(L), 1);
    lua_setglobal(L, "pushed");
    T_LUA(L, "return json.encode(pushed)", "{\"k\":[true]}");
    T_EQ_INT(ljson_push_text(L, "{\"k\":", 5), -1);
    T_EQ_INT(lua_gettop(L), 1);
    T_CONTAINS(lua_tostring(L, -1), "unexpected end of input");
    lua_settop(L, 0);

    /* ljson_push works without the module having been opened in the state. */
    {
        lua_State *L2 = luaL_newstate();
        cJSON *arr = cJSON_Parse("[null,[],{\"a\":1.25}]");
        cJSON *back;

        ljson_push(L2, arr);
        T_EQ_INT(lua_type(L2, -1), LUA_TTABLE);
        back = ljson_from_lua(L2, -1, &err);
        T_REQUIRE(back != NULL);
        s = json_print(back);
        T_EQ_STR(s, "[null,[],{\"a\":1.25}]");
        free(s);
        cJSON_Delete(back);
        cJSON_Delete(arr);
        lua_close(L2);
    }
    lua_close(L);
}

/* A capped allocator, as the sandbox uses: allocations past the cap fail. */
struct capped {
    size_t used;
    size_t cap;
};

static void *
capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct capped *c = ud;
    size_t old = ptr != NULL ? osize : 0;

    if (nsize == 0) {
        free(ptr);
        c->used -= old;
        return NULL;
    }
    if (nsize > old && c->used + (nsize - old) > c->cap) {
        return NULL;
    }
    ptr = realloc(ptr, nsize);
    if (ptr != NULL) {
        c->used = c->used - old + nsize;
    }
    return ptr;
}

/* Run fn (a global function) under ever larger memory caps; each run fails somewhere
 * else with "not enough memory". LeakSanitizer checks no cJSON tree or text leaks. */
static void
run_under_caps(const char *setup, const char *fn)
{
    struct capped c = { 0, (size_t)1 << 30 };
    lua_State *L = lua_newstate(capped_alloc, &c);
    int failures = 0, successes = 0;

    luaL_openlibs(L);
    luaL_requiref(L, "json", luaopen_kagari_json, 1);
    lua_pop(L, 1);
    T_REQUIRE(luaL_dostring(L, setup) == LUA_OK);
    lua_gc(L, LUA_GCCOLLECT);
    for (size_t extra = 0; extra < 300000; extra += 997) {
        int rc;

        lua_settop(L, 0);
        T_REQUIRE(lua_getglobal(L, fn) == LUA_TFUNCTION);
        lua_gc(L, LUA_GCCOLLECT);
        c.cap = c.used + extra;
        rc = lua_pcall(L, 0, 1, 0);
        c.cap = (size_t)1 << 30;
        rc == LUA_OK ? successes++ : failures++;
    }
    T_ASSERT(failures > 0);
    T_ASSERT(successes > 0);
    lua_close(L);
}

static void
test_memory_errors(void)
{
    run_under_caps(
        "local big = {} for i = 1, 200 do big[i] = {id=i, name='n'..i, tags={'a','b'}} end "
        "text = json.encode(big) "
        "function dec() return json.decode(text) end",
        "dec");
    run_under_caps("big = {} for i = 1, 200 do big[i] = {id=i, name='n'..i, tags={'a','b'}} end "
                   "function enc() return json.encode(big) end",
                   "enc");
    run_under_caps("function bad() return json.decode('{\"a\":1,\"a\":2}') end", "bad");
}

TEST_LIST = {
    { "module_shape", test_module_shape },
    { "roundtrip", test_roundtrip },
    { "key_order", test_key_order },
    { "null", test_null },
    { "arrays", test_arrays },
    { "numbers", test_numbers },
    { "strings", test_strings },
    { "rejections", test_rejections },
    { "cycles_and_depth", test_cycles_and_depth },
    { "decode_errors", test_decode_errors },
    { "c_api", test_c_api },
    { "memory_errors", test_memory_errors },
    { NULL, NULL },
};
