/* bytecode.h: a reader of Lua 5.4 compiled chunks (what lua_dump writes), for looking at
 * playbook code without running it: the lint's analysis and finding the libraries a
 * file requires. The chunk comes from Lua's own compiler (bytecode_compile), so the
 * scoping of locals, upvalues and globals is Lua's, not a guess of ours. */
#ifndef KAGARI_BYTECODE_H
#define KAGARI_BYTECODE_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/util.h"

/* The Lua 5.4 opcodes (lopcodes.h order). */
enum bytecode_op {
    BC_MOVE,
    BC_LOADI,
    BC_LOADF,
    BC_LOADK,
    BC_LOADKX,
    BC_LOADFALSE,
    BC_LFALSESKIP,
    BC_LOADTRUE,
    BC_LOADNIL,
    BC_GETUPVAL,
    BC_SETUPVAL,
    BC_GETTABUP,
    BC_GETTABLE,
    BC_GETI,
    BC_GETFIELD,
    BC_SETTABUP,
    BC_SETTABLE,
    BC_SETI,
    BC_SETFIELD,
    BC_NEWTABLE,
    BC_SELF,
    BC_ADDI,
    BC_ADDK,
    BC_SUBK,
    BC_MULK,
    BC_MODK,
    BC_POWK,
    BC_DIVK,
    BC_IDIVK,
    BC_BANDK,
    BC_BORK,
    BC_BXORK,
    BC_SHRI,
    BC_SHLI,
    BC_ADD,
    BC_SUB,
    BC_MUL,
    BC_MOD,
    BC_POW,
    BC_DIV,
    BC_IDIV,
    BC_BAND,
    BC_BOR,
    BC_BXOR,
    BC_SHL,
    BC_SHR,
    BC_MMBIN,
    BC_MMBINI,
    BC_MMBINK,
    BC_UNM,
    BC_BNOT,
    BC_NOT,
    BC_LEN,
    BC_CONCAT,
    BC_CLOSE,
    BC_TBC,
    BC_JMP,
    BC_EQ,
    BC_LT,
    BC_LE,
    BC_EQK,
    BC_EQI,
    BC_LTI,
    BC_LEI,
    BC_GTI,
    BC_GEI,
    BC_TEST,
    BC_TESTSET,
    BC_CALL,
    BC_TAILCALL,
    BC_RETURN,
    BC_RETURN0,
    BC_RETURN1,
    BC_FORLOOP,
    BC_FORPREP,
    BC_TFORPREP,
    BC_TFORCALL,
    BC_TFORLOOP,
    BC_SETLIST,
    BC_CLOSURE,
    BC_VARARG,
    BC_VARARGPREP,
    BC_EXTRAARG,
    BC_NOPS
};

/* Instruction fields (lopcodes.h: op 7 bits, A 8, k 1, B 8, C 8; Bx 17; sJ 25). */
#define BC_OP(i) ((int)((i)&0x7f))
#define BC_A(i) ((int)(((i) >> 7) & 0xff))
#define BC_K(i) ((int)(((i) >> 15) & 1))
#define BC_B(i) ((int)(((i) >> 16) & 0xff))
#define BC_C(i) ((int)(((i) >> 24) & 0xff))
#define BC_BX(i) ((int)((i) >> 15))
#define BC_SBX(i) (BC_BX(i) - 65535)
#define BC_SJ(i) ((int)((i) >> 7) - 16777215)

enum bytecode_ktype { BC_KNIL, BC_KBOOL, BC_KINT, BC_KFLT, BC_KSTR };

struct bytecode_const {
    enum bytecode_ktype type;
    char *s; /* BC_KSTR: NUL-terminated copy (may hold NULs; len is exact) */
    size_t len;
    int64_t i; /* BC_KINT, and BC_KBOOL's value */
    double f;
};

struct bytecode_upval {
    int instack; /* 1: the enclosing function's register idx; 0: its upvalue idx */
    int idx;
    char *name; /* NULL when stripped */
};

struct bytecode_local {
    char *name;
    int startpc, endpc; /* live for startpc <= pc < endpc */
};

/* One function prototype; p[] are the functions defined in it (CLOSURE's Bx). */
struct bytecode_proto {
    int line_defined, last_line; /* 0 for the main chunk */
    int nparams, is_vararg, max_stack;
    uint32_t *code;
    int *lines; /* the source line of each instruction */
    size_t ncode;
    struct bytecode_const *k;
    size_t nk;
    struct bytecode_upval *up;
    size_t nup;
    struct bytecode_proto **p;
    size_t np;
    struct bytecode_local *loc;
    size_t nloc;
};

/* Compile a text chunk on L (nothing runs) and read the result. Returns 0 and *out (free
 * with bytecode_free), or -1 with *errp: the compiler's "name:line: message" for a syntax
 * error, or why the compiled form could not be read. */
int bytecode_compile(lua_State *L, const char *src, size_t len, const char *chunkname,
                     struct bytecode_proto **out, char **errp) KG_WUR;
/* Read a compiled chunk of this Lua (header checked: version, format, sizes). */
int bytecode_read(const void *data, size_t len, struct bytecode_proto **out, char **errp) KG_WUR;
void bytecode_free(struct bytecode_proto *p); /* NULL is a no-op */

/* The string constant K[idx] of p, or NULL when it is not a string. */
const char *bytecode_kstr(const struct bytecode_proto *p, int idx);
/* The name of the local in register reg at pc, or NULL (a temporary). */
const char *bytecode_local_name(const struct bytecode_proto *p, int reg, int pc);

/* A call of the global require with one constant string argument. */
struct bytecode_require {
    char *name;
    int line;
};
/* Every require "name" call in p and its nested functions, in code order. Returns the
 * count; *out (may be NULL when 0) is freed with bytecode_requires_free. */
size_t bytecode_requires(const struct bytecode_proto *p, struct bytecode_require **out);
void bytecode_requires_free(struct bytecode_require *v, size_t n);

#endif
