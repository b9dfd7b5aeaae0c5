/* lint.c: abstract interpretation of compiled playbook code against the playbook API.
 *
 * Lua's own compiler resolves every name: a global is a GETTABUP on the _ENV upvalue, a
 * member a GETFIELD on a register, a call a CALL with its argument and result counts. A
 * small data-flow pass per function follows which register holds which API value
 * (a module, one of its functions, the alert, alert.source) through moves, branches and
 * loops (the value at a join is kept only when every path agrees), and into nested
 * functions through upvalues assigned once. What it cannot follow it does not judge: a
 * finding is always about a value known for certain. */
#include "engine/lint.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/alert.h"
#include "engine/bytecode.h"

#define V_UNKNOWN 0
#define V_ALERT (-1)
#define V_ALERT_SOURCE (-2)
#define V_ALERT_SEVERITY (-3)
#define V_ALERT_OUTCOME (-4)
#define V_KNIL (-5)       /* constants: nil */
#define V_KBOOL (-6)      /* a boolean */
#define V_KNUM (-7)       /* a number (or a string that reads as one) */
#define V_KTABLE (-8)     /* a new table */
#define V_KSTRX (-9)      /* a string whose value this function does not know */
#define V_METHOD (-100)   /* V_METHOD - i: alert method i (api->methods[i]) */
#define V_CLOSURE (-1000) /* V_CLOSURE - k: the closure of nested function k */
#define V_KSTR (-2000000) /* V_KSTR - i: the string constant K[i] of this function */
#define IS_CLOSURE(v) ((v) <= V_CLOSURE && (v) > V_KSTR)
#define IS_KSTR(v) ((v) <= V_KSTR)

#define LINT_MAX_STATE (8u << 20) /* register values kept for one function (32 MiB) */

struct lint {
    const struct apidesc *api;
    const char *shown;
    const char *src;
    size_t len;
    int library;
    struct lint_report *out;
    char **declared; /* globals the chunk assigns somewhere */
    size_t ndeclared;
    /* Reads of alert fields that do not exist, reported at the end unless the chunk sets
     * that field itself somewhere (alert.note = ...). */
    struct lint_finding *unknown_fields; /* msg holds the field name */
    size_t nunknown;
    char **alert_sets;
    size_t nalert_sets;
    size_t *line_start; /* offset of each line in src */
    size_t nlines;
};

/* ---- findings ---- */

/* The text of line (1-based) and its length. */
static const char *
line_text(const struct lint *lt, int line, size_t *n)
{
    const char *p = lt->src, *end = lt->src + lt->len, *nl;

    if (lt->line_start != NULL && line >= 1 && (size_t)line <= lt->nlines) {
        p = lt->src + lt->line_start[line - 1];
    } else {
        for (int l = 1; l < line && p < end; l++) {
            nl = memchr(p, '\n', (size_t)(end - p));
            p = nl ? nl + 1 : end;
        }
    }
    nl = memchr(p, '\n', (size_t)(end - p));
    *n = (size_t)((nl ? nl : end) - p);
    return p;
}

static int
ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* The column (1-based) of name as a whole word on line; after_dot prefers a place just
 * after '.' or ':'. 1 when not found. */
static int
column(const struct lint *lt, int line, const char *name, int after_dot)
{
    size_t n, nl = strlen(name);
    const char *t = line_text(lt, line, &n);
    int first = 0;

    for (size_t i = 0; nl > 0 && i + nl <= n; i++) {
        if (memcmp(t + i, name, nl) != 0 || (i > 0 && ident_char(t[i - 1])) ||
            (i + nl < n && ident_char(t[i + nl]))) {
            continue;
        }
        if (!after_dot) {
            return (int)i + 1;
        }
        for (size_t j = i; j > 0; j--) {
            if (t[j - 1] == '.' || t[j - 1] == ':') {
                return (int)i + 1;
            }
            if (t[j - 1] != ' ' && t[j - 1] != '\t') {
                break;
            }
        }
        if (first == 0) {
            first = (int)i + 1;
        }
    }
    return first ? first : 1;
}

static void vreport(struct lint *lt, int note, int line, int col, const char *fmt, va_list ap)
    KG_PRINTF(5, 0);

/* Add a finding (a note is advice, not a problem), unless its line says "lint: ignore". */
static void
vreport(struct lint *lt, int note, int line, int col, const char *fmt, va_list ap)
{
    struct lint_report *r = lt->out;
    size_t n;
    const char *t = line_text(lt, line, &n);

    for (size_t i = 0; i + 12 <= n; i++) {
        if (memcmp(t + i, "lint: ignore", 12) == 0) {
            return;
        }
    }
    if ((r->n & (r->n - 1)) == 0) { /* capacity: the next power of two */
        r->v = xrealloc(r->v, (r->n ? 2 * r->n : 1) * sizeof(*r->v));
    }
    r->v[r->n].line = line;
    r->v[r->n].col = col;
    r->v[r->n].note = note;
    r->v[r->n].msg = xvasprintf(fmt, ap);
    r->n++;
}

static void report(struct lint *lt, int line, int col, const char *fmt, ...) KG_PRINTF(4, 5);
static void note(struct lint *lt, int line, int col, const char *fmt, ...) KG_PRINTF(4, 5);

static void
report(struct lint *lt, int line, int col, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(lt, 0, line, col, fmt, ap);
    va_end(ap);
}

static void
note(struct lint *lt, int line, int col, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(lt, 1, line, col, fmt, ap);
    va_end(ap);
}

/* An unknown source name: a problem when it looks misspelt (close to a known name, or in
 * a known family such as "entra."), a note otherwise (a sender's own name). */
static void
report_source(struct lint *lt, int line, int col, const char *what, const char *name)
{
    const char *near = apidesc_suggest(lt->api, NULL, name, 1);
    const char *dot = strchr(name, '.');
    int family = 0;

    for (size_t i = 0; dot != NULL && i < lt->api->nsources; i++) {
        family |= strncmp(lt->api->sources[i], name, (size_t)(dot - name) + 1) == 0;
    }
    if (near != NULL || family) {
        report(lt, line, col, "%s'%s' is not a source name any registered source gives%s%s%s", what,
               name, near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
        return;
    }
    note(lt, line, col,
         "%s'%s' is not a source name any registered source gives (a sender's own name? "
         "--source %s declares it)",
         what, name, name);
}

/* " (did you mean 'x'?)" or "". The caller frees. */
static char *
suggestion(const struct lint *lt, const char *prefix, const char *name, int sources)
{
    const char *s = apidesc_suggest(lt->api, prefix, name, sources);

    return s ? xasprintf(" (did you mean '%s'?)", s) : xstrdup("");
}

/* Is s exactly a severity name as alert.severity holds it (lower case, full)? */
static int
severity_exact(const char *s)
{
    int sev = severity_from_name(s);

    return sev >= 0 && strcmp(severity_name(sev), s) == 0;
}

/* ---- what the chunk declares ---- */

static int
is_env(const struct bytecode_proto *p, int idx)
{
    return idx >= 0 && (size_t)idx < p->nup && p->up[idx].name != NULL &&
           strcmp(p->up[idx].name, "_ENV") == 0;
}

static int
declared(const struct lint *lt, const char *name)
{
    for (size_t i = 0; i < lt->ndeclared; i++) {
        if (strcmp(lt->declared[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

static void
collect_globals(struct lint *lt, const struct bytecode_proto *p)
{
    for (size_t pc = 0; pc < p->ncode; pc++) {
        uint32_t i = p->code[pc];
        const char *name;

        if (BC_OP(i) == BC_SETTABUP && is_env(p, BC_A(i)) &&
            (name = bytecode_kstr(p, BC_B(i))) != NULL && !declared(lt, name)) {
            lt->declared = xrealloc(lt->declared, (lt->ndeclared + 1) * sizeof(char *));
            lt->declared[lt->ndeclared++] = xstrdup(name);
        }
    }
    for (size_t k = 0; k < p->np; k++) {
        collect_globals(lt, p->p[k]);
    }
}

/* ---- values ---- */

static const struct apidesc_entry *
entry(const struct lint *lt, int v)
{
    return v > 0 && (size_t)v <= lt->api->n ? &lt->api->v[v - 1] : NULL;
}

static int
value_of(const struct lint *lt, const struct apidesc_entry *e)
{
    return e ? (int)(e - lt->api->v) + 1 : V_UNKNOWN;
}

/* The registers instruction i writes: [*lo, *hi]; none when *lo > *hi. */
static void
writes(const struct bytecode_proto *p, uint32_t i, int *lo, int *hi)
{
    int a = BC_A(i), top = p->max_stack - 1;

    *lo = a;
    *hi = a;
    switch (BC_OP(i)) {
    case BC_SETTABUP:
    case BC_SETTABLE:
    case BC_SETI:
    case BC_SETFIELD:
    case BC_SETUPVAL:
    case BC_JMP:
    case BC_EQ:
    case BC_LT:
    case BC_LE:
    case BC_EQK:
    case BC_EQI:
    case BC_LTI:
    case BC_LEI:
    case BC_GTI:
    case BC_GEI:
    case BC_TEST:
    case BC_RETURN:
    case BC_RETURN0:
    case BC_RETURN1:
    case BC_CLOSE:
    case BC_TBC:
    case BC_SETLIST:
    case BC_MMBIN:
    case BC_MMBINI:
    case BC_MMBINK:
    case BC_EXTRAARG:
    case BC_VARARGPREP:
        *lo = 1;
        *hi = 0;
        break;
    case BC_LOADNIL:
        *hi = a + BC_B(i);
        break;
    case BC_SELF:
        *hi = a + 1;
        break;
    case BC_CONCAT:
        *hi = a + BC_B(i) - 1;
        break;
    case BC_CALL:
    case BC_VARARG:
        *hi = BC_C(i) == 0 ? top : a + BC_C(i) - 2;
        if (*hi < a) {
            *hi = a; /* no result kept: the call still uses the slot */
        }
        break;
    case BC_TAILCALL:
    case BC_FORPREP:
    case BC_FORLOOP:
    case BC_TFORPREP:
    case BC_TFORCALL:
    case BC_TFORLOOP:
        *hi = top;
        break;
    default:
        break;
    }
    if (*hi > top) {
        *hi = top;
    }
}

/* Successors of pc: up to two. */
static int
successors(const struct bytecode_proto *p, int pc, int out[2])
{
    uint32_t i = p->code[pc];
    int n = 0;

    switch (BC_OP(i)) {
    case BC_JMP:
        out[n++] = pc + 1 + BC_SJ(i);
        break;
    case BC_EQ:
    case BC_LT:
    case BC_LE:
    case BC_EQK:
    case BC_EQI:
    case BC_LTI:
    case BC_LEI:
    case BC_GTI:
    case BC_GEI:
    case BC_TEST:
    case BC_TESTSET:
        out[n++] = pc + 1;
        out[n++] = pc + 2;
        break;
    case BC_LFALSESKIP:
        out[n++] = pc + 2;
        break;
    case BC_FORPREP:
        out[n++] = pc + 1;
        out[n++] = pc + BC_BX(i) + 2;
        break;
    case BC_FORLOOP:
    case BC_TFORLOOP:
        out[n++] = pc + 1;
        out[n++] = pc + 1 - BC_BX(i);
        break;
    case BC_TFORPREP:
        out[n++] = pc + 1 + BC_BX(i);
        break;
    case BC_RETURN:
    case BC_RETURN0:
    case BC_RETURN1:
        break;
    default:
        out[n++] = pc + 1;
    }
    for (int k = 0; k < n; k++) {
        if (out[k] < 0 || (size_t)out[k] >= p->ncode) {
            out[k--] = out[--n];
        }
    }
    return n;
}

/* One function's analysis. */
struct fn {
    const struct bytecode_proto *p;
    const int *upv;      /* the value of each upvalue */
    const int *upv_main; /* does upvalue j name a local of a library's main chunk? */
    int is_main;
    int alert_param; /* register 0 holds the alert (the playbook's run function) */
    int *run_protos; /* out, main chunk only: nested functions used as run = ... */
};

/* The value of base.k: a module's member, alert.source, or unknown. */
static int
member_value(const struct lint *lt, int base, const char *k)
{
    const struct apidesc_entry *e = entry(lt, base);

    if (k != NULL && e != NULL && e->kind == APIDESC_TABLE) {
        return value_of(lt, apidesc_member(lt->api, e->path, k));
    }
    if (k != NULL && base == V_ALERT && strcmp(k, "source") == 0) {
        return V_ALERT_SOURCE;
    }
    if (k != NULL && base == V_ALERT && strcmp(k, "severity") == 0) {
        return V_ALERT_SEVERITY;
    }
    if (k != NULL && base == V_ALERT && strcmp(k, "outcome") == 0) {
        return V_ALERT_OUTCOME;
    }
    return V_UNKNOWN;
}

static void
add_name(char ***v, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*v)[i], name) == 0) {
            return;
        }
    }
    *v = xrealloc(*v, (*n + 1) * sizeof(char *));
    (*v)[(*n)++] = xstrdup(name);
}

/* Report base.k when base is a module without that member; note a read of an alert
 * field that does not exist. */
static void
check_member(struct lint *lt, int line, int base, const char *k)
{
    const struct apidesc_entry *e = entry(lt, base);
    char *hint;

    if (k != NULL && base == V_ALERT && !apidesc_has_field(lt->api, k) &&
        !apidesc_has_method(lt->api, k)) {
        if ((lt->nunknown & (lt->nunknown - 1)) == 0) {
            lt->unknown_fields =
                xrealloc(lt->unknown_fields,
                         (lt->nunknown ? 2 * lt->nunknown : 1) * sizeof(*lt->unknown_fields));
        }
        lt->unknown_fields[lt->nunknown].line = line;
        lt->unknown_fields[lt->nunknown].col = column(lt, line, k, 1);
        lt->unknown_fields[lt->nunknown].msg = xstrdup(k);
        lt->unknown_fields[lt->nunknown].note = 0;
        lt->nunknown++;
        return;
    }

    if (k != NULL && e != NULL && e->kind == APIDESC_TABLE &&
        apidesc_member(lt->api, e->path, k) == NULL) {
        hint = suggestion(lt, e->path, k, 0);
        report(lt, line, column(lt, line, k, 1), "unknown field '%s' of %s '%s'%s", k,
               e->connector ? "connector" : "module", e->path, hint);
        free(hint);
    }
}

/* The value of constant K[idx] in a register. */
static int
const_value(const struct bytecode_proto *p, int idx)
{
    const struct bytecode_const *k;
    char *end;

    if (idx < 0 || (size_t)idx >= p->nk) {
        return V_UNKNOWN;
    }
    k = &p->k[idx];
    switch (k->type) {
    case BC_KNIL:
        return V_KNIL;
    case BC_KBOOL:
        return V_KBOOL;
    case BC_KINT:
    case BC_KFLT:
        return V_KNUM;
    case BC_KSTR:
        /* Lua turns a string that reads as a number into one where a number is expected */
        if (k->len > 0 && strlen(k->s) == k->len) {
            (void)strtod(k->s, &end);
            while (*end == ' ' || *end == '\t' || *end == '\n') {
                end++;
            }
            if (end != k->s && *end == '\0') {
                return V_KNUM;
            }
        }
        return idx < 1000000 ? V_KSTR - idx : V_KSTRX;
    }
    return V_UNKNOWN;
}

/* Does a value v (of function p) fit the LuaLS type type of a parameter (optional when
 * opt)? Unknown values always do. */
static int
type_accepts(const struct bytecode_proto *p, const char *type, size_t tlen, int opt, int v)
{
    const char *t = type, *end = type + tlen;

    if (v == V_UNKNOWN || v == V_ALERT || v == V_ALERT_SOURCE || v == V_ALERT_SEVERITY ||
        v == V_ALERT_OUTCOME || v > 0) {
        return 1;
    }
    if (v == V_KNIL && opt) {
        return 1;
    }
    while (t < end) {
        const char *bar = memchr(t, '|', (size_t)(end - t));
        size_t n = (size_t)((bar ? bar : end) - t);

        while (n > 0 && *t == ' ') {
            t++, n--;
        }
        while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '?')) {
            n--;
        }
#define IS(word) (n == strlen(word) && memcmp(t, word, n) == 0)
        if (IS("any") || (IS("nil") && v == V_KNIL) ||
            ((IS("string")) && (IS_KSTR(v) || v == V_KSTRX || v == V_KNUM)) ||
            ((IS("number") || IS("integer")) && v == V_KNUM) ||
            ((IS("boolean") || IS("true") || IS("false")) && v == V_KBOOL) ||
            ((IS("table") || (n > 2 && memcmp(t + n - 2, "[]", 2) == 0) ||
              (n > 7 && memcmp(t, "kagari.", 7) == 0)) &&
             v == V_KTABLE) ||
            (IS("function") && IS_CLOSURE(v))) {
            return 1;
        }
#undef IS
        if (n >= 2 && t[0] == '"' &&
            (v == V_KSTRX ||
             (IS_KSTR(v) && (size_t)(V_KSTR - v) < p->nk && p->k[V_KSTR - v].len == n - 2 &&
              memcmp(p->k[V_KSTR - v].s, t + 1, n - 2) == 0))) {
            return 1;
        }
        t = bar ? bar + 1 : end;
    }
    return 0;
}

/* How a value is named in a message. */
static const char *
value_name(const struct bytecode_proto *p, int v, char *buf, size_t n)
{
    if (IS_KSTR(v) && (size_t)(V_KSTR - v) < p->nk) {
        snprintf(buf, n, "the string \"%.40s\"", p->k[V_KSTR - v].s);
        return buf;
    }
    return v == V_KNIL     ? "nil"
           : v == V_KBOOL  ? "a boolean"
           : v == V_KNUM   ? "a number"
           : v == V_KTABLE ? "a table"
           : IS_CLOSURE(v) ? "a function"
                           : "a string";
}

/* Check the fixed arguments of a call of e (at registers a+1..a+nargs) against its
 * parameter types. */
static void
check_arg_types(struct lint *lt, const struct fn *f, const struct apidesc_entry *e, int a,
                int nargs, const int *s, int line, const char *k)
{
    const char *q = e->params;
    char given[64];

    for (int i = 0; q != NULL && *q != '\0' && i < nargs; i++) {
        const char *comma = q, *colon;
        int depth = 0;
        size_t len, nlen;

        while (*comma != '\0' && (depth > 0 || *comma != ',')) {
            depth += *comma == '(' || *comma == '{';
            depth -= *comma == ')' || *comma == '}';
            comma++;
        }
        while (*q == ' ') {
            q++;
        }
        len = (size_t)(comma - q);
        colon = memchr(q, ':', len);
        nlen = colon ? (size_t)(colon - q) : len;
        if (nlen >= 3 && memcmp(q, "...", 3) == 0) {
            break;
        }
        if (colon != NULL && a + 1 + i < f->p->max_stack) {
            const char *type = colon + 1;
            size_t tlen = len - nlen - 1;
            int opt = nlen > 0 && q[nlen - 1] == '?';
            int v = s[a + 1 + i];

            while (tlen > 0 && *type == ' ') {
                type++, tlen--;
            }
            if (!type_accepts(f->p, type, tlen, opt, v)) {
                report(lt, line, column(lt, line, k, 0),
                       "%s: argument %d (%.*s) must be %.*s, given %s", e->path, i + 1,
                       (int)(opt ? nlen - 1 : nlen), q, (int)tlen, type,
                       value_name(f->p, v, given, sizeof(given)));
            }
        }
        q = *comma ? comma + 1 : comma;
    }
}

/* Apply instruction pc to the register values s. */
static void
transfer(const struct lint *lt, const struct fn *f, int pc, int *s)
{
    const struct bytecode_proto *p = f->p;
    uint32_t i = p->code[pc];
    int a = BC_A(i), b = BC_B(i), lo, hi, v = V_UNKNOWN;
    const struct apidesc_entry *e;
    const char *k;

    switch (BC_OP(i)) {
    case BC_MOVE:
        v = s[b];
        break;
    case BC_GETUPVAL:
        v = b < (int)p->nup ? f->upv[b] : V_UNKNOWN;
        break;
    case BC_GETTABUP:
        k = bytecode_kstr(p, BC_C(i));
        if (is_env(p, b)) {
            if (k != NULL && !declared(lt, k)) {
                v = value_of(lt, apidesc_find(lt->api, k));
            }
            break;
        }
        v = member_value(lt, b < (int)p->nup ? f->upv[b] : V_UNKNOWN, k);
        break;
    case BC_GETFIELD:
        v = member_value(lt, s[b], bytecode_kstr(p, BC_C(i)));
        break;
    case BC_SELF: {
        int self = s[b];

        k = BC_K(i) ? bytecode_kstr(p, BC_C(i)) : NULL;
        e = entry(lt, self);
        s[a + 1] = self;
        s[a] = k != NULL && e != NULL && e->kind == APIDESC_TABLE
                   ? value_of(lt, apidesc_member(lt->api, e->path, k))
                   : V_UNKNOWN;
        for (size_t m = 0; k != NULL && self == V_ALERT && m < lt->api->nmethods && m < 800; m++) {
            if (strcmp(lt->api->methods[m], k) == 0) {
                s[a] = V_METHOD - (int)m;
            }
        }
        return;
    }
    case BC_CLOSURE:
        v = V_CLOSURE - BC_BX(i);
        break;
    case BC_LOADI:
    case BC_LOADF:
        v = V_KNUM;
        break;
    case BC_LOADK:
        v = const_value(p, BC_BX(i));
        break;
    case BC_LOADFALSE:
    case BC_LFALSESKIP:
    case BC_LOADTRUE:
        v = V_KBOOL;
        break;
    case BC_NEWTABLE:
        v = V_KTABLE;
        break;
    default:
        break;
    }
    writes(p, i, &lo, &hi);
    for (int r = lo; r <= hi; r++) {
        s[r] = BC_OP(i) == BC_LOADNIL ? V_KNIL : V_UNKNOWN;
    }
    if (lo <= hi && BC_OP(i) != BC_LOADNIL) {
        s[a] = v;
    }
}

/* The checks at pc, with s the register values before it. */
static void
check(struct lint *lt, struct fn *f, int pc, const int *s)
{
    const struct bytecode_proto *p = f->p;
    uint32_t i = p->code[pc];
    int a = BC_A(i), b = BC_B(i), c = BC_C(i), line = p->lines[pc];
    const struct apidesc_entry *e;
    const char *k;
    char *hint;

    switch (BC_OP(i)) {
    case BC_GETTABUP:
        k = bytecode_kstr(p, c);
        if (!is_env(p, b)) {
            check_member(lt, line, b < (int)p->nup ? f->upv[b] : V_UNKNOWN, k);
        } else if (k != NULL && !declared(lt, k) && apidesc_find(lt->api, k) == NULL) {
            hint = suggestion(lt, NULL, k, 0);
            report(lt, line, column(lt, line, k, 0), "undeclared global '%s'%s", k, hint);
            free(hint);
        }
        break;
    case BC_SETTABUP:
        k = bytecode_kstr(p, b);
        if (!is_env(p, a)) {
            if (k != NULL && a < (int)p->nup && f->upv[a] == V_ALERT) {
                add_name(&lt->alert_sets, &lt->nalert_sets, k);
            }
            e = entry(lt, a < (int)p->nup ? f->upv[a] : V_UNKNOWN);
            if (k != NULL && e != NULL && e->kind == APIDESC_TABLE) {
                report(lt, line, column(lt, line, k, 1), "'%s' is read-only: cannot set '%s.%s'",
                       e->path, e->path, k);
            } else if (lt->library && !f->is_main && a < (int)p->nup && f->upv_main[a]) {
                const char *up = p->up[a].name ? p->up[a].name : "?";

                report(lt, line, column(lt, line, up, 0),
                       "a library function writes into '%s', a table of the library's top "
                       "level: it is read-only once the library is loaded",
                       up);
            }
            break;
        }
        if (k == NULL) {
            break;
        }
        if ((e = apidesc_find(lt->api, k)) != NULL && strchr(k, '.') == NULL) {
            report(lt, line, column(lt, line, k, 0),
                   "assigns to '%s', which hides the built-in of that name", k);
        } else if (lt->library && !f->is_main) {
            report(lt, line, column(lt, line, k, 0),
                   "a library function assigns the global '%s': a library's globals are "
                   "read-only once it is loaded",
                   k);
        }
        break;
    case BC_GETFIELD:
        check_member(lt, line, s[b], bytecode_kstr(p, c));
        break;
    case BC_SETFIELD:
        e = entry(lt, s[a]);
        k = bytecode_kstr(p, b);
        if (k != NULL && s[a] == V_ALERT) {
            add_name(&lt->alert_sets, &lt->nalert_sets, k);
        }
        if (k != NULL && e != NULL && e->kind == APIDESC_TABLE) {
            report(lt, line, column(lt, line, k, 1), "'%s' is read-only: cannot set '%s.%s'",
                   e->path, e->path, k);
        }
        if (f->is_main && f->run_protos != NULL && k != NULL && strcmp(k, "run") == 0 && !BC_K(i) &&
            s[c] <= V_CLOSURE) {
            f->run_protos[V_CLOSURE - s[c]] = 1;
        }
        break;
    case BC_SELF:
        k = BC_K(i) ? bytecode_kstr(p, c) : NULL;
        e = entry(lt, s[b]);
        if (k == NULL) {
            break;
        }
        if (e != NULL && e->kind == APIDESC_TABLE) {
            report(lt, line, column(lt, line, k, 1),
                   "'%s:%s': the functions of '%s' are called with '.', not ':'", e->path, k,
                   e->path);
        } else if (s[b] == V_ALERT && !apidesc_has_method(lt->api, k)) {
            report(lt, line, column(lt, line, k, 1), "the alert has no method '%s'", k);
        }
        break;
    case BC_CALL:
        if (s[a] <= V_METHOD && s[a] > V_CLOSURE && b > 0) { /* an alert method */
            const char *m = lt->api->methods[V_METHOD - s[a]], *params;
            int lo, hi;

            uint32_t prev = pc > 0 ? p->code[pc - 1] : 0;
            const char *type = pc > 0 && BC_OP(prev) == BC_LOADK && BC_A(prev) == a + 2
                                   ? bytecode_kstr(p, BC_BX(prev))
                                   : NULL;

            if (type != NULL && b == 3 &&
                (strcmp(m, "observable") == 0 || strcmp(m, "values") == 0) &&
                observable_type_valid(type) == -1) {
                report(lt, line, column(lt, line, type, 0),
                       "'%s' is not an observable type (user, ip, host, device, url, domain, "
                       "hash, email, process)",
                       type);
            }
            if (apidesc_method_args(lt->api, m, &lo, &hi, &params) &&
                (b - 2 < lo || (hi >= 0 && b - 2 > hi))) {
                int want = b - 2 < lo ? lo : hi;

                report(lt, line, column(lt, line, m, 1),
                       "alert:%s takes %s%d argument%s (%s), given %d", m,
                       lo == hi     ? ""
                       : b - 2 < lo ? "at least "
                                    : "at most ",
                       want, want == 1 ? "" : "s", params, b - 2);
            }
            break;
        }
        e = entry(lt, s[a]);
        if (e == NULL || e->kind != APIDESC_FUNCTION) {
            break;
        }
        k = strrchr(e->path, '.');
        k = k ? k + 1 : e->path;
        if (b > 0 && e->min_args >= 0 &&
            (b - 1 < e->min_args || (e->max_args >= 0 && b - 1 > e->max_args))) {
            if (e->min_args == e->max_args) {
                report(lt, line, column(lt, line, k, 0), "%s takes %d argument%s (%s), given %d",
                       e->path, e->min_args, e->min_args == 1 ? "" : "s", e->params, b - 1);
            } else if (e->max_args < 0) {
                report(lt, line, column(lt, line, k, 0),
                       "%s takes at least %d argument%s (%s), given %d", e->path, e->min_args,
                       e->min_args == 1 ? "" : "s", e->params, b - 1);
            } else {
                report(lt, line, column(lt, line, k, 0),
                       "%s takes %d to %d arguments (%s), given %d", e->path, e->min_args,
                       e->max_args, e->params, b - 1);
            }
        }
        if (b > 0) {
            check_arg_types(lt, f, e, a, b - 1, s, line, k);
        }
        if (c == 1 && e->nil_err) {
            report(lt, line, column(lt, line, k, 0),
                   "the result of %s is not checked: it returns nil and a message when it "
                   "fails (test it, or wrap the call in assert())",
                   e->path);
        }
        if (strcmp(e->path, "require") == 0 && b != 2) {
            report(lt, line, column(lt, line, "require", 0),
                   "require takes one library name, given %d arguments", b > 0 ? b - 1 : 0);
        } else if (strcmp(e->path, "require") == 0 &&
                   (pc == 0 || BC_OP(p->code[pc - 1]) != BC_LOADK ||
                    BC_A(p->code[pc - 1]) != a + 1 ||
                    bytecode_kstr(p, BC_BX(p->code[pc - 1])) == NULL)) {
            report(lt, line, column(lt, line, "require", 0),
                   "require takes a constant library name (require \"name\"): the libraries "
                   "are found when the playbook is loaded");
        }
        break;
    case BC_EQK:
        k = bytecode_kstr(p, b);
        if (s[a] == V_ALERT_SOURCE && k != NULL && !apidesc_source_known(lt->api, k)) {
            report_source(lt, line, column(lt, line, k, 0), "", k);
        }
        if (s[a] == V_ALERT_SEVERITY && k != NULL && !severity_exact(k)) {
            report(lt, line, column(lt, line, k, 0),
                   "alert.severity is never '%s': it is one of informational, low, medium, high, "
                   "critical",
                   k);
        }
        if (s[a] == V_ALERT_OUTCOME && k != NULL && outcome_valid(k) == -1) {
            report(lt, line, column(lt, line, k, 0),
                   "alert.outcome is never '%s': it is one of unknown, blocked, attempted, "
                   "succeeded",
                   k);
        }
        break;
    case BC_SETUPVAL:
        if (lt->library && b < (int)p->nup && f->upv_main[b]) {
            report(lt, line, column(lt, line, p->up[b].name ? p->up[b].name : "", 0),
                   "a library function assigns '%s', a local of the library's top level: it is "
                   "shared by every run and must not change after loading",
                   p->up[b].name ? p->up[b].name : "?");
        }
        break;
    default:
        break;
    }
}

static void analyse(struct lint *lt, struct fn *f);

/* Does register reg, at pc, hold a local that nothing assigns again in its scope? Then
 * its value at pc is its value for every closure made there. */
static int
stable(const struct bytecode_proto *p, int reg, int pc)
{
    int r = 0;

    for (size_t i = 0; i < p->nloc && p->loc[i].startpc <= pc; i++) {
        if (pc >= p->loc[i].endpc) {
            continue;
        }
        if (r++ != reg) {
            continue;
        }
        for (int q = p->loc[i].startpc; q < p->loc[i].endpc && (size_t)q < p->ncode; q++) {
            int lo, hi;

            writes(p, p->code[q], &lo, &hi);
            if (lo <= reg && reg <= hi) {
                return 0;
            }
        }
        return 1;
    }
    return 0;
}

/* Values and origins of a nested function's upvalues, from the state at its CLOSURE. */
static void
nested(struct lint *lt, struct fn *f, int pc, const int *s, const int *setup)
{
    const struct bytecode_proto *p = f->p;
    int k = BC_BX(p->code[pc]);
    const struct bytecode_proto *c;
    int *upv, *upm;
    struct fn cf;

    if (k < 0 || (size_t)k >= p->np) {
        return;
    }
    c = p->p[k];
    upv = xcalloc(c->nup + 1, sizeof(int));
    upm = xcalloc(c->nup + 1, sizeof(int));
    for (size_t j = 0; j < c->nup; j++) {
        int idx = c->up[j].idx;

        if (c->up[j].instack && idx < p->max_stack) {
            upv[j] = stable(p, idx, pc) && !setup[idx] ? s[idx] : V_UNKNOWN;
            upm[j] = f->is_main;
        } else if (!c->up[j].instack && (size_t)idx < p->nup) {
            upv[j] = f->upv[idx];
            upm[j] = f->upv_main[idx];
        }
        if (IS_CLOSURE(upv[j])) {
            upv[j] = V_UNKNOWN; /* a function value is not an API value */
        } else if (IS_KSTR(upv[j])) {
            upv[j] = V_KSTRX; /* its constant index is the enclosing function's */
        }
    }
    memset(&cf, 0, sizeof(cf));
    cf.p = c;
    cf.upv = upv;
    cf.upv_main = upm;
    cf.alert_param = f->run_protos != NULL && f->run_protos[k] && c->nparams >= 1;
    analyse(lt, &cf);
    free(upv);
    free(upm);
}

/* Data flow to a fixed point, then the checks, then the nested functions. */
static void
analyse(struct lint *lt, struct fn *f)
{
    const struct bytecode_proto *p = f->p;
    size_t nr = (size_t)(p->max_stack > 0 ? p->max_stack : 1) + 2;
    /* One register vector per instruction; past LINT_MAX_STATE entries (a huge
     * function) nothing is followed and only what needs no value is checked. */
    int big = p->ncode * nr > LINT_MAX_STATE;
    int *in = xcalloc(big ? nr + 1 : p->ncode * nr + 1, sizeof(int));
    char *seen = xcalloc(p->ncode + 1, 1);
    int *work = xcalloc(p->ncode + 1, sizeof(int));
    char *queued = xcalloc(p->ncode + 1, 1);
    int *s = xcalloc(nr, sizeof(int));
    int *setup = xcalloc(nr, sizeof(int));
    size_t nw = 0;

    if (f->is_main) {
        f->run_protos = xcalloc(p->np + 1, sizeof(int));
    }
    /* Registers a nested function assigns are not followed into nested functions. */
    for (size_t k = 0; k < p->np; k++) {
        const struct bytecode_proto *c = p->p[k];

        for (size_t pc = 0; pc < c->ncode; pc++) {
            uint32_t i = c->code[pc];
            int b = BC_B(i);

            if (BC_OP(i) == BC_SETUPVAL && (size_t)b < c->nup && c->up[b].instack &&
                c->up[b].idx < (int)nr) {
                setup[c->up[b].idx] = 1;
            }
        }
    }
    if (big) {
        memset(seen, 1, p->ncode);
    } else if (p->ncode > 0) {
        if (f->alert_param) {
            in[0] = V_ALERT;
        }
        seen[0] = 1;
        work[nw++] = 0;
        queued[0] = 1;
    }
    while (nw > 0) {
        int pc = work[--nw], succ[2], ns;

        queued[pc] = 0;
        memcpy(s, &in[(size_t)pc * nr], nr * sizeof(int));
        transfer(lt, f, pc, s);
        ns = successors(p, pc, succ);
        for (int k = 0; k < ns; k++) {
            int *t = &in[(size_t)succ[k] * nr];
            int changed = 0;

            if (!seen[succ[k]]) {
                memcpy(t, s, nr * sizeof(int));
                seen[succ[k]] = 1;
                changed = 1;
            } else {
                for (size_t r = 0; r < nr; r++) {
                    if (t[r] != V_UNKNOWN && t[r] != s[r]) {
                        t[r] = V_UNKNOWN;
                        changed = 1;
                    }
                }
            }
            if (changed && !queued[succ[k]]) {
                queued[succ[k]] = 1;
                work[nw++] = succ[k];
            }
        }
    }
    for (size_t pc = 0; pc < p->ncode; pc++) {
        if (seen[pc]) {
            check(lt, f, (int)pc, &in[big ? 0 : pc * nr]);
        }
    }
    for (size_t pc = 0; pc < p->ncode; pc++) {
        if (seen[pc] && BC_OP(p->code[pc]) == BC_CLOSURE) {
            nested(lt, f, (int)pc, &in[big ? 0 : pc * nr], setup);
        }
    }
    free(f->run_protos);
    f->run_protos = NULL;
    free(in);
    free(seen);
    free(work);
    free(queued);
    free(s);
    free(setup);
}

static int
cmp_findings(const void *a, const void *b)
{
    const struct lint_finding *x = a, *y = b;

    if (x->line != y->line) {
        return x->line < y->line ? -1 : 1;
    }
    return x->col < y->col ? -1 : x->col > y->col;
}

int
lint_chunk(const struct apidesc *api, lua_State *L, const char *shown, const char *src, size_t len,
           int flags, struct lint_report *out, char **errp)
{
    struct bytecode_proto *p;
    char *chunk = xasprintf("@%s", shown);
    struct lint lt;
    struct fn f;
    int upv = V_UNKNOWN, upm = 0;
    size_t first = out->n;

    if (bytecode_compile(L, src, len, chunk, &p, errp) == -1) {
        free(chunk);
        return -1;
    }
    free(chunk);
    memset(&lt, 0, sizeof(lt));
    lt.api = api;
    lt.shown = shown;
    lt.src = src;
    lt.len = len;
    lt.library = (flags & LINT_LIBRARY) != 0;
    lt.out = out;
    lt.line_start = xmalloc(sizeof(size_t));
    lt.line_start[lt.nlines++] = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\n') {
            if ((lt.nlines & (lt.nlines - 1)) == 0) {
                lt.line_start = xrealloc(lt.line_start, 2 * lt.nlines * sizeof(size_t));
            }
            lt.line_start[lt.nlines++] = i + 1;
        }
    }
    collect_globals(&lt, p);
    memset(&f, 0, sizeof(f));
    f.p = p;
    f.upv = &upv;
    f.upv_main = &upm;
    f.is_main = 1;
    analyse(&lt, &f);
    for (size_t i = 0; i < lt.nunknown; i++) {
        struct lint_finding *u = &lt.unknown_fields[i];
        int set = 0;

        for (size_t j = 0; j < lt.nalert_sets && !set; j++) {
            set = strcmp(lt.alert_sets[j], u->msg) == 0;
        }
        if (!set) {
            const char *near = apidesc_suggest(api, NULL, u->msg, APIDESC_SUGGEST_ALERT);

            report(&lt, u->line, u->col, "the alert has no field '%s'%s%s%s", u->msg,
                   near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
        }
        free(u->msg);
    }
    free(lt.unknown_fields);
    for (size_t i = 0; i < lt.nalert_sets; i++) {
        free(lt.alert_sets[i]);
    }
    free(lt.alert_sets);
    free(lt.line_start);
    if (out->n - first > 1) {
        qsort(out->v + first, out->n - first, sizeof(*out->v), cmp_findings);
    }
    for (size_t i = 0; i < lt.ndeclared; i++) {
        free(lt.declared[i]);
    }
    free(lt.declared);
    bytecode_free(p);
    return 0;
}

void
lint_trigger(const struct apidesc *api, const char *src, size_t len, const char *name,
             struct lint_report *out)
{
    struct lint lt;
    size_t nl = strlen(name);
    int line = 1, col = 1;

    memset(&lt, 0, sizeof(lt));
    lt.api = api;
    lt.src = src;
    lt.len = len;
    lt.out = out;
    for (size_t i = 0, ls = 0; i + nl + 2 <= len; i++) {
        if (src[i] == '\n') {
            line++;
            ls = i + 1;
        }
        if ((src[i] == '"' || src[i] == '\'') && memcmp(src + i + 1, name, nl) == 0 &&
            src[i + 1 + nl] == src[i]) {
            col = (int)(i - ls) + 2;
            break;
        }
        if (i + nl + 2 == len) {
            line = 1; /* not written as a plain string: the file's first line */
        }
    }
    report_source(&lt, line, col, "on.source: ", name);
}

void
lint_report_free(struct lint_report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].msg);
    }
    free(r->v);
    r->v = NULL;
    r->n = 0;
}
