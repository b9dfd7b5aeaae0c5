/* test_bytecode.c: reading Lua's compiled chunks: opcodes, constants, lines, requires. */
#include "engine/bytecode.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/test.h"

static struct bytecode_proto *
compile(const char *src)
{
    lua_State *L = luaL_newstate();
    struct bytecode_proto *p = NULL;
    char *err = NULL;

    if (bytecode_compile(L, src, strlen(src), "=t", &p, &err) == -1) {
        fprintf(stderr, "compile: %s\n", err);
    }
    free(err);
    lua_close(L);
    return p;
}

/* The first instruction of p with opcode op, or -1. */
static int
find_op(const struct bytecode_proto *p, int op, int from)
{
    for (size_t pc = (size_t)from; pc < p->ncode; pc++) {
        if (BC_OP(p->code[pc]) == op) {
            return (int)pc;
        }
    }
    return -1;
}

static void
test_opcodes(void)
{
    struct bytecode_proto *p = compile("x = y.z(1, 'a')\nlocal t = {}\nt.k = 5\n"
                                       "if t.k == 5 then return t end\n"
                                       "for i = 1, 3 do t[i] = i end\n"
                                       "return #t .. 'b'\n");
    int pc;

    T_REQUIRE(p != NULL);
    T_EQ_INT(p->nup, 1);
    T_EQ_STR(p->up[0].name, "_ENV");
    pc = find_op(p, BC_GETTABUP, 0);
    T_REQUIRE(pc >= 0);
    T_EQ_STR(bytecode_kstr(p, BC_C(p->code[pc])), "y");
    T_EQ_INT(p->lines[pc], 1);
    pc = find_op(p, BC_GETFIELD, pc);
    T_REQUIRE(pc >= 0);
    T_EQ_STR(bytecode_kstr(p, BC_C(p->code[pc])), "z");
    T_ASSERT(find_op(p, BC_LOADI, 0) >= 0);
    pc = find_op(p, BC_CALL, 0);
    T_REQUIRE(pc >= 0);
    T_EQ_INT(BC_B(p->code[pc]), 3); /* two arguments */
    T_EQ_INT(BC_C(p->code[pc]), 2); /* one result kept */
    pc = find_op(p, BC_SETTABUP, 0);
    T_REQUIRE(pc >= 0);
    T_EQ_STR(bytecode_kstr(p, BC_B(p->code[pc])), "x");
    T_ASSERT(find_op(p, BC_NEWTABLE, 0) >= 0);
    pc = find_op(p, BC_SETFIELD, 0);
    T_REQUIRE(pc >= 0);
    T_EQ_INT(p->lines[pc], 3);
    T_EQ_STR(bytecode_local_name(p, BC_A(p->code[pc]), pc), "t");
    T_ASSERT(find_op(p, BC_EQI, 0) >= 0);
    T_ASSERT(find_op(p, BC_FORPREP, 0) >= 0);
    T_ASSERT(find_op(p, BC_FORLOOP, 0) >= 0);
    T_ASSERT(find_op(p, BC_SETTABLE, 0) >= 0);
    T_ASSERT(find_op(p, BC_LEN, 0) >= 0);
    T_ASSERT(find_op(p, BC_CONCAT, 0) >= 0);
    T_ASSERT(find_op(p, BC_RETURN, 0) >= 0);
    T_ASSERT(find_op(p, BC_VARARGPREP, 0) == 0);
    bytecode_free(p);
}

static void
test_nested_and_lines(void)
{
    struct bytecode_proto *p;
    struct buf b;
    int pc;

    /* A long function: lines past the delta range use absolute entries. */
    buf_init(&b, 0);
    T_REQUIRE(buf_puts(&b, "local function f(a, b)\n  local n = 0\n") == 0);
    for (int i = 0; i < 300; i++) {
        T_REQUIRE(buf_puts(&b, "  n = n + a\n") == 0);
    }
    T_REQUIRE(buf_puts(&b, "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"
                           "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"
                           "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"
                           "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"
                           "  return g.h(n)\nend\nreturn f\n") == 0);
    p = compile(b.data);
    buf_free(&b);
    T_REQUIRE(p != NULL);
    T_EQ_INT(p->np, 1);
    T_EQ_INT(p->p[0]->nparams, 2);
    T_EQ_INT(p->p[0]->line_defined, 1);
    T_EQ_STR(p->p[0]->up[0].name, "_ENV");
    pc = find_op(p->p[0], BC_GETTABUP, 0);
    T_REQUIRE(pc >= 0);
    T_EQ_INT(p->p[0]->lines[pc], 431);
    T_ASSERT(find_op(p->p[0], BC_TAILCALL, 0) >= 0);
    T_ASSERT(find_op(p, BC_CLOSURE, 0) >= 0);
    bytecode_free(p);
}

static void
test_requires(void)
{
    struct bytecode_proto *p = compile("local a = require 'alpha'\nlocal b = require('beta')\n"
                                       "local function f() return require \"gamma\" end\n"
                                       "local x = require(a)\nlocal y = t.require('delta')\n");
    struct bytecode_require *v;
    size_t n;

    T_REQUIRE(p != NULL);
    n = bytecode_requires(p, &v);
    T_EQ_INT(n, 3);
    if (n == 3) {
        T_EQ_STR(v[0].name, "alpha");
        T_EQ_INT(v[0].line, 1);
        T_EQ_STR(v[1].name, "beta");
        T_EQ_INT(v[1].line, 2);
        T_EQ_STR(v[2].name, "gamma");
        T_EQ_INT(v[2].line, 3);
    }
    bytecode_requires_free(v, n);
    bytecode_free(p);
}

static int
writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    return buf_append(ud, p, sz) == -1;
}

/* Hostile input: every truncation and a changed byte at each offset are read safely
 * (refused, or read into a structure that frees cleanly). */
static void
test_hostile(void)
{
    lua_State *L = luaL_newstate();
    struct bytecode_proto *p;
    char *err = NULL;
    struct buf b;
    int refused = 0;

    buf_init(&b, 0);
    T_REQUIRE(luaL_loadstring(L, "local t = {1, 'x', 2.5, true}\n"
                                 "return function(a) return a.b(t, 'k') end") == LUA_OK);
    T_REQUIRE(lua_dump(L, writer, &b, 0) == 0);
    lua_close(L);
    T_REQUIRE(bytecode_read(b.data, b.len, &p, &err) == 0);
    bytecode_free(p);
    for (size_t n = 0; n < b.len; n++) {
        if (bytecode_read(b.data, n, &p, &err) == -1) {
            refused++;
        }
        bytecode_free(p);
        free(err);
        err = NULL;
    }
    T_EQ_INT(refused, b.len);
    for (size_t i = 0; i < b.len; i++) {
        for (int v = 0; v < 256; v += 51) {
            char save = b.data[i];

            b.data[i] = (char)v;
            if (bytecode_read(b.data, b.len, &p, &err) == 0) {
                bytecode_free(p);
            }
            free(err);
            err = NULL;
            b.data[i] = save;
        }
    }
    T_EQ_INT(bytecode_read("\x1bLua\x53", 5, &p, &err), -1);
    T_CONTAINS(err, "not a Lua 5.4");
    free(err);
    buf_free(&b);
}

TEST_LIST = {
    { "opcodes", test_opcodes },
    { "nested_and_lines", test_nested_and_lines },
    { "requires", test_requires },
    { "hostile", test_hostile },
    { NULL, NULL },
};
