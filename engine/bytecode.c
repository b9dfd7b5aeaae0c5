/* bytecode.c: reading Lua 5.4 compiled chunks (the format of Lua's ldump.c). */
#include "engine/bytecode.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define BC_MAX_DEPTH 200       /* nested functions (Lua's own limit is lower) */
#define BC_MAX_VECTOR 50000000 /* entries of one vector: far above any real chunk */

struct reader {
    const unsigned char *p;
    size_t left;
    int bad;
};

static int
rd_bytes(struct reader *r, void *out, size_t n)
{
    if (r->bad || n > r->left) {
        r->bad = 1;
        if (out != NULL && n > 0) {
            memset(out, 0, n);
        }
        return -1;
    }
    if (out != NULL) {
        memcpy(out, r->p, n);
    }
    r->p += n;
    r->left -= n;
    return 0;
}

static int
rd_byte(struct reader *r)
{
    unsigned char c = 0;

    (void)rd_bytes(r, &c, 1);
    return c;
}

/* ldump.c dumpSize: 7 bits a byte, most significant first, the last byte has 0x80. */
static size_t
rd_size(struct reader *r)
{
    size_t x = 0;
    int b;

    for (int i = 0; i < 10; i++) {
        b = rd_byte(r);
        if (r->bad) {
            return 0;
        }
        x = (x << 7) | (size_t)(b & 0x7f);
        if (b & 0x80) {
            if (x > BC_MAX_VECTOR) {
                r->bad = 1;
                return 0;
            }
            return x;
        }
    }
    r->bad = 1;
    return 0;
}

/* A string: size+1 (0 for NULL), then the bytes. *len gets the size. */
static char *
rd_string(struct reader *r, size_t *len)
{
    size_t n = rd_size(r);
    char *s;

    if (len != NULL) {
        *len = 0;
    }
    if (n == 0 || r->bad) {
        return NULL;
    }
    n--;
    if (n > r->left) {
        r->bad = 1;
        return NULL;
    }
    s = xmalloc(n + 1);
    (void)rd_bytes(r, s, n);
    s[n] = '\0';
    if (len != NULL) {
        *len = n;
    }
    return s;
}

void
bytecode_free(struct bytecode_proto *p)
{
    if (p == NULL) {
        return;
    }
    free(p->code);
    free(p->lines);
    for (size_t i = 0; i < p->nk; i++) {
        free(p->k[i].s);
    }
    free(p->k);
    for (size_t i = 0; i < p->nup; i++) {
        free(p->up[i].name);
    }
    free(p->up);
    for (size_t i = 0; i < p->np; i++) {
        bytecode_free(p->p[i]);
    }
    free(p->p);
    for (size_t i = 0; i < p->nloc; i++) {
        free(p->loc[i].name);
    }
    free(p->loc);
    free(p);
}

static struct bytecode_proto *rd_function(struct reader *r, int depth);

static void
rd_constants(struct reader *r, struct bytecode_proto *f)
{
    f->nk = rd_size(r);
    f->k = xcalloc(f->nk ? f->nk : 1, sizeof(*f->k));
    for (size_t i = 0; i < f->nk && !r->bad; i++) {
        struct bytecode_const *k = &f->k[i];
        int tt = rd_byte(r);

        switch (tt) {
        case 0: /* LUA_VNIL */
            k->type = BC_KNIL;
            break;
        case 1:  /* LUA_VFALSE */
        case 17: /* LUA_VTRUE */
            k->type = BC_KBOOL;
            k->i = tt == 17;
            break;
        case 3: /* LUA_VNUMINT */
            k->type = BC_KINT;
            (void)rd_bytes(r, &k->i, sizeof(k->i));
            break;
        case 19: /* LUA_VNUMFLT */
            k->type = BC_KFLT;
            (void)rd_bytes(r, &k->f, sizeof(k->f));
            break;
        case 4:  /* LUA_VSHRSTR */
        case 20: /* LUA_VLNGSTR */
            k->type = BC_KSTR;
            k->s = rd_string(r, &k->len);
            if (k->s == NULL) {
                k->s = xstrdup("");
            }
            break;
        default:
            r->bad = 1;
        }
    }
}

/* Line of each instruction: deltas from the previous one, or an absolute entry. */
static void
rd_lines(struct reader *r, struct bytecode_proto *f)
{
    size_t n = rd_size(r), nabs, j = 0;
    signed char *delta;
    int line = f->line_defined;

    if (r->bad || (n != 0 && n != f->ncode)) {
        r->bad = 1;
        return;
    }
    delta = xcalloc(n ? n : 1, 1);
    (void)rd_bytes(r, delta, n);
    nabs = rd_size(r);
    f->lines = xcalloc(f->ncode ? f->ncode : 1, sizeof(int));
    {
        int *abspc = xcalloc(nabs ? nabs : 1, sizeof(int));
        int *absline = xcalloc(nabs ? nabs : 1, sizeof(int));

        for (size_t i = 0; i < nabs && !r->bad; i++) {
            abspc[i] = (int)rd_size(r);
            absline[i] = (int)rd_size(r);
        }
        for (size_t pc = 0; pc < n && !r->bad; pc++) {
            if (delta[pc] == -0x80) {
                while (j < nabs && (size_t)abspc[j] < pc) {
                    j++;
                }
                line = j < nabs ? absline[j] : line;
            } else {
                line += delta[pc];
            }
            f->lines[pc] = line;
        }
        free(abspc);
        free(absline);
    }
    free(delta);
}

static struct bytecode_proto *
rd_function(struct reader *r, int depth)
{
    struct bytecode_proto *f;

    if (depth > BC_MAX_DEPTH) {
        r->bad = 1;
        return NULL;
    }
    f = xcalloc(1, sizeof(*f));
    free(rd_string(r, NULL)); /* source name */
    f->line_defined = (int)rd_size(r);
    f->last_line = (int)rd_size(r);
    f->nparams = rd_byte(r);
    f->is_vararg = rd_byte(r);
    f->max_stack = rd_byte(r);
    f->ncode = rd_size(r);
    if (!r->bad && f->ncode * 4 > r->left) {
        r->bad = 1;
    }
    f->code = xcalloc(f->ncode ? f->ncode : 1, sizeof(uint32_t));
    if (!r->bad) {
        (void)rd_bytes(r, f->code, f->ncode * 4);
    }
    rd_constants(r, f);
    f->nup = r->bad ? 0 : rd_size(r);
    f->up = xcalloc(f->nup ? f->nup : 1, sizeof(*f->up));
    for (size_t i = 0; i < f->nup && !r->bad; i++) {
        f->up[i].instack = rd_byte(r);
        f->up[i].idx = rd_byte(r);
        (void)rd_byte(r); /* kind */
    }
    f->np = r->bad ? 0 : rd_size(r);
    f->p = xcalloc(f->np ? f->np : 1, sizeof(*f->p));
    for (size_t i = 0; i < f->np && !r->bad; i++) {
        f->p[i] = rd_function(r, depth + 1);
    }
    if (!r->bad) {
        rd_lines(r, f);
    }
    f->nloc = r->bad ? 0 : rd_size(r);
    f->loc = xcalloc(f->nloc ? f->nloc : 1, sizeof(*f->loc));
    for (size_t i = 0; i < f->nloc && !r->bad; i++) {
        f->loc[i].name = rd_string(r, NULL);
        f->loc[i].startpc = (int)rd_size(r);
        f->loc[i].endpc = (int)rd_size(r);
    }
    if (!r->bad) {
        size_t n = rd_size(r);

        for (size_t i = 0; i < n && !r->bad; i++) {
            char *name = rd_string(r, NULL);

            if (i < f->nup) {
                f->up[i].name = name;
            } else {
                free(name);
            }
        }
    }
    if (f->lines == NULL) {
        f->lines = xcalloc(f->ncode ? f->ncode : 1, sizeof(int));
    }
    return f;
}

int
bytecode_read(const void *data, size_t len, struct bytecode_proto **out, char **errp)
{
    static const unsigned char head[] = { 0x1b, 'L',  'u',  'a',  0x54, 0, 0x19, 0x93,
                                          '\r', '\n', 0x1a, '\n', 4,    8, 8 };
    struct reader r = { data, len, 0 };
    unsigned char h[sizeof(head)];
    lua_Integer i;
    lua_Number n;
    struct bytecode_proto *f;

    *out = NULL;
    if (rd_bytes(&r, h, sizeof(h)) == -1 || memcmp(h, head, sizeof(head)) != 0 ||
        sizeof(lua_Integer) != 8 || sizeof(lua_Number) != 8) {
        return kg_err(errp, "not a Lua 5.4 compiled chunk of this build");
    }
    (void)rd_bytes(&r, &i, sizeof(i));
    (void)rd_bytes(&r, &n, sizeof(n));
    if (r.bad || i != 0x5678 || n != 370.5) {
        return kg_err(errp, "not a Lua 5.4 compiled chunk of this build");
    }
    (void)rd_byte(&r); /* the main closure's upvalue count */
    f = rd_function(&r, 0);
    if (r.bad || f == NULL) {
        bytecode_free(f);
        return kg_err(errp, "truncated or malformed compiled chunk");
    }
    *out = f;
    return 0;
}

static int
bc_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    return buf_append(ud, p, sz) == -1;
}

int
bytecode_compile(lua_State *L, const char *src, size_t len, const char *chunkname,
                 struct bytecode_proto **out, char **errp)
{
    struct buf b;
    int rc;

    *out = NULL;
    if (luaL_loadbufferx(L, src, len, chunkname, "t") != LUA_OK) {
        kg_err(errp, "%s", lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "cannot compile");
        lua_pop(L, 1);
        return -1;
    }
    buf_init(&b, 0);
    rc = lua_dump(L, bc_writer, &b, 0);
    lua_pop(L, 1);
    if (rc != 0) {
        buf_free(&b);
        return kg_err(errp, "%s: cannot list the compiled chunk", chunkname);
    }
    rc = bytecode_read(b.data, b.len, out, errp);
    buf_free(&b);
    return rc;
}

const char *
bytecode_kstr(const struct bytecode_proto *p, int idx)
{
    if (idx < 0 || (size_t)idx >= p->nk || p->k[idx].type != BC_KSTR) {
        return NULL;
    }
    return p->k[idx].s;
}

const char *
bytecode_local_name(const struct bytecode_proto *p, int reg, int pc)
{
    int r = 0;

    /* Locals are numbered by activation order: the n-th live one is register n. */
    for (size_t i = 0; i < p->nloc && p->loc[i].startpc <= pc; i++) {
        if (pc < p->loc[i].endpc) {
            if (r == reg) {
                return p->loc[i].name;
            }
            r++;
        }
    }
    return NULL;
}

/* Is upvalue idx of p the global environment? */
static int
is_env(const struct bytecode_proto *p, int idx)
{
    return idx >= 0 && (size_t)idx < p->nup && p->up[idx].name != NULL &&
           strcmp(p->up[idx].name, "_ENV") == 0;
}

static void
find_requires(const struct bytecode_proto *p, struct bytecode_require **v, size_t *n)
{
    for (size_t pc = 2; pc < p->ncode; pc++) {
        uint32_t call = p->code[pc], fn = p->code[pc - 2], arg = p->code[pc - 1];
        const char *name;

        if ((BC_OP(call) != BC_CALL && BC_OP(call) != BC_TAILCALL) || BC_B(call) != 2 ||
            BC_OP(fn) != BC_GETTABUP || BC_A(fn) != BC_A(call) || !is_env(p, BC_B(fn)) ||
            (name = bytecode_kstr(p, BC_C(fn))) == NULL || strcmp(name, "require") != 0 ||
            BC_OP(arg) != BC_LOADK || BC_A(arg) != BC_A(call) + 1 ||
            (name = bytecode_kstr(p, BC_BX(arg))) == NULL) {
            continue;
        }
        *v = xrealloc(*v, (*n + 1) * sizeof(**v));
        (*v)[*n].name = xstrdup(name);
        (*v)[*n].line = p->lines[pc];
        (*n)++;
    }
    for (size_t i = 0; i < p->np; i++) {
        find_requires(p->p[i], v, n);
    }
}

size_t
bytecode_requires(const struct bytecode_proto *p, struct bytecode_require **out)
{
    size_t n = 0;

    *out = NULL;
    find_requires(p, out, &n);
    return n;
}

void
bytecode_requires_free(struct bytecode_require *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
    }
    free(v);
}
