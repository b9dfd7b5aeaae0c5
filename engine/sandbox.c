/* sandbox.c: the Lua sandbox for untrusted playbooks: one capped lua_State per tenant,
 * frozen globals, per-run environments, instruction budgets, deadlines and time slices. */
#include "engine/sandbox.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "engine/log.h"

/* Most elements one call of a table function may walk. A C loop over a caller-chosen
 * range runs with no hook, so table.move({}, 1, 1e15, 2) would otherwise stall the
 * process; 1e7 elements is about 160 MB of array part, more than a tenant state holds. */
#define SANDBOX_MAX_RANGE 10000000

/* Worst-case steps of one pattern call (see pat_cost). About 1e8 matcher steps take a
 * few tenths of a second; past it a call is refused before the C matcher starts. */
#define SANDBOX_PATTERN_STEPS 1e8

/* Subject scans pat_cost may spend to measure runs of a class; past them it assumes
 * the worst (a run as long as the subject). */
#define SANDBOX_PATTERN_SCANS 8

/* How many pattern items pat_first looks ahead past a quantifier. */
#define SANDBOX_PATTERN_LOOKAHEAD 8

/* Allocation is work too: one instruction does a concatenation of any size, so bytes
 * allocated are charged as instructions (a memcpy of 64 bytes takes about as long as
 * one VM instruction), and after SANDBOX_ALLOC_HOOK bytes the running coroutine's hook
 * fires at its next instruction instead of after SANDBOX_HOOK_COUNT of them. */
#define SANDBOX_BYTES_PER_INSTRUCTION 64
#define SANDBOX_ALLOC_HOOK (8u << 20)

/* Most work, in instructions, one call of a library C function may do. Such a call runs
 * with no hook and cannot yield a time slice, so every tenant waits for it: 1e8
 * instructions are about 0.4 s. Work under it is charged to the run's budget. */
#define SANDBOX_CALL_STEPS 1e8

/* Instructions one comparison of table.sort costs (measured: a string comparison and
 * the moves around it take about as long as 16 VM instructions), and bytes of the
 * shorter string compared per further instruction. */
#define SANDBOX_SORT_COMPARE 16
#define SANDBOX_SORT_BYTES 8

/* Bytes a per-byte C loop (string.upper, %q, utf8.len) handles per instruction. */
#define SANDBOX_LOOP_BYTES 4

struct sandbox {
    lua_State *L;
    size_t used; /* bytes the allocator has handed out */
    size_t cap;
    int frozen;
    size_t since_hook;  /* bytes allocated since the hook last ran */
    lua_State *running; /* the coroutine in sandbox_resume, or NULL */
    int early;          /* its hook is armed to fire at the next instruction */
    /* The data-only profile (sandbox_new_data) and the budget of its main thread. */
    int data;
    struct sandbox_task task;
};

static void sandbox_hook(lua_State *L, lua_Debug *ar);

/* Registry keys (their addresses are the keys). */
static const char sandbox_key_globals = 'G'; /* the frozen globals table */
static const char sandbox_key_libs = 'L';    /* name -> real library table, until freeze */
static const char sandbox_key_frozen = 'F';  /* set of read-only proxies */
static const char sandbox_key_real = 'R';    /* in a proxy's metatable: the real table */
static const char sandbox_key_envmt = 'E';   /* the metatable shared by per-run envs */
static const char sandbox_key_tb = 'T';      /* coroutine -> traceback of its last error */

/* Base functions playbooks keep as they are. setmetatable, rawset and xpcall are
 * replaced by the wrappers below; everything else in the base library is dropped. */
static const char *const sandbox_base_keep[] = {
    "assert", "error",  "getmetatable", "ipairs",   "next",     "pairs", "pcall",    "rawequal",
    "rawget", "rawlen", "select",       "tonumber", "tostring", "type",  "_VERSION", NULL,
};

/* ---- memory ---- */

/* The lua_Alloc of every sandbox: tracks the bytes in use and refuses any growth past
 * the cap by returning NULL (Lua then collects garbage once and retries, and raises a
 * memory error in the running coroutine if that is not enough). Frees and shrinks
 * always succeed, as Lua requires. Growth is counted for the hook to charge, and after
 * SANDBOX_ALLOC_HOOK bytes the running coroutine's hook is made to fire at once
 * (lua_sethook only sets hook fields and traps; it is safe at any allocation). */
static void *
sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct sandbox *sb = ud;
    size_t old = ptr != NULL ? osize : 0; /* without ptr, osize is a type tag */
    void *np;

    if (nsize == 0) {
        free(ptr);
        sb->used -= old;
        return NULL;
    }
    if (nsize > old && (nsize - old > sb->cap || sb->used > sb->cap - (nsize - old))) {
        return NULL;
    }
    np = realloc(ptr, nsize);
    if (np == NULL) {
        if (nsize <= old) {
            /* A shrink must not fail: keep the bigger block. */
            sb->used = sb->used - old + nsize;
            return ptr;
        }
        return NULL;
    }
    sb->used = sb->used - old + nsize;
    if (nsize > old) {
        sb->since_hook += nsize - old;
        if (sb->since_hook >= SANDBOX_ALLOC_HOOK && sb->running != NULL && !sb->early) {
            sb->early = 1;
            lua_sethook(sb->running, sandbox_hook, LUA_MASKCOUNT, 1);
        }
    }
    return np;
}

/* The sandbox that owns L's global state, or NULL when L is not a sandbox state. */
static struct sandbox *
sandbox_of(lua_State *L)
{
    void *ud = NULL;

    if (lua_getallocf(L, &ud) != sandbox_alloc) {
        return NULL;
    }
    return ud;
}

static int
sandbox_panic(lua_State *L)
{
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";

    log_err("sandbox.panic msg=%s", log_quote(msg));
    return 0; /* Lua aborts */
}

/* ---- budgets ---- */

struct sandbox_task *
sandbox_task_of(lua_State *L)
{
    return *(struct sandbox_task **)lua_getextraspace(L);
}

/* Mark t killed for reason and arm the every-instruction hook on L, so that each
 * further instruction (even one inside a pcall that caught the first error, or a
 * __close handler) raises again. */
static void
sandbox_mark_killed(lua_State *L, struct sandbox_task *t, const char *reason)
{
    if (!t->killed) {
        t->killed = 1;
        snprintf(t->reason, sizeof(t->reason), "%s", reason);
    }
    lua_sethook(L, sandbox_hook, LUA_MASKCOUNT | LUA_MASKLINE, 1);
}

/* Check t's instruction budget and deadline; kill t when one is spent. Returns
 * t->killed. */
static int
sandbox_task_over(lua_State *L, struct sandbox_task *t)
{
    char reason[sizeof(t->reason)];

    if (t->killed) {
        return 1;
    }
    if (t->max_instructions != 0 && t->instructions > t->max_instructions) {
        snprintf(reason, sizeof(reason), "instruction budget exceeded (%llu)",
                 (unsigned long long)t->max_instructions);
        sandbox_mark_killed(L, t, reason);
    } else if (t->deadline_ms != 0 && util_now_ms() >= t->deadline_ms) {
        sandbox_mark_killed(L, t, "deadline exceeded");
    }
    return t->killed;
}

/* Arm co's hook: every SANDBOX_HOOK_COUNT instructions, or every instruction and line
 * once its task is killed. */
static void
sandbox_arm(lua_State *co, const struct sandbox_task *t)
{
    if (t != NULL && t->killed) {
        lua_sethook(co, sandbox_hook, LUA_MASKCOUNT | LUA_MASKLINE, 1);
    } else {
        lua_sethook(co, sandbox_hook, LUA_MASKCOUNT, SANDBOX_HOOK_COUNT);
    }
}

/* The count hook of every run (SANDBOX_HOOK_COUNT instructions; after a kill, every
 * instruction and line; early after much allocation). It charges the instructions and
 * the bytes allocated, raises once a budget is spent, and yields when the time slice is
 * over and the coroutine can yield (the scheduler reads a yield with nothing pending as
 * "requeue"). Errors raised here leave Lua's hooks off in the coroutine until a pcall
 * catches them; sandbox_resume's entry is that pcall for the outermost level. */
static void
sandbox_hook(lua_State *L, lua_Debug *ar)
{
    struct sandbox_task *t = sandbox_task_of(L);
    struct sandbox *sb = sandbox_of(L);
    int early = 0;
    size_t bytes = 0;

    if (sb != NULL) {
        bytes = sb->since_hook;
        sb->since_hook = 0;
        if (sb->early) {
            sb->early = 0;
            early = 1;
            sandbox_arm(L, t);
        }
    }
    if (t == NULL) {
        return;
    }
    if (!t->killed) {
        if (ar->event == LUA_HOOKCOUNT && !early) {
            t->instructions += SANDBOX_HOOK_COUNT;
        }
        t->instructions += bytes / SANDBOX_BYTES_PER_INSTRUCTION;
    }
    if (sandbox_task_over(L, t)) {
        /* luaL_error would name the caller's line; name the running one's */
        if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0) {
            lua_pushfstring(L, "%s:%d: %s", ar->short_src, ar->currentline, t->reason);
        } else {
            lua_pushstring(L, t->reason);
        }
        lua_error(L);
        return;
    }
    if (t->slice_end_us != 0 && util_mono_us() >= t->slice_end_us && lua_isyieldable(L)) {
        lua_yield(L, 0);
    }
}

/* Charge cost steps of work done in C (a table walk, a pattern match) to the running
 * task, and raise at once when that spends its budget: the hook would only notice after
 * the next SANDBOX_HOOK_COUNT instructions, and a loop can pack a lot of C work in
 * those. Without a task only the fixed per-call bounds apply. */
static void
sandbox_charge(lua_State *L, double cost)
{
    struct sandbox_task *t = sandbox_task_of(L);

    if (t == NULL) {
        return;
    }
    if (cost > 0) {
        t->instructions += cost >= 1e18 ? (uint64_t)1e18 : (uint64_t)cost;
    }
    if (sandbox_task_over(L, t)) {
        luaL_error(L, "%s", t->reason);
    }
}

/* Raise when total, the work of one library C call, is over SANDBOX_CALL_STEPS. */
static void
sandbox_call_limit(lua_State *L, const char *fn, double total)
{
    if (!(total <= SANDBOX_CALL_STEPS)) {
        luaL_error(L, "%s: %I steps of work in one call is over the sandbox limit of %I", fn,
                   (lua_Integer)(total < 1e18 ? total : 1e18), (lua_Integer)SANDBOX_CALL_STEPS);
    }
}

/* Charge the work of one library C call, refusing it when it is over the per-call limit
 * (SANDBOX_CALL_STEPS) even if the run's budget could pay for it. */
static void
sandbox_call_work(lua_State *L, const char *fn, double cost)
{
    sandbox_call_limit(L, fn, cost);
    sandbox_charge(L, cost);
}

void
sandbox_task_attach(lua_State *co, struct sandbox_task *task)
{
    *(struct sandbox_task **)lua_getextraspace(co) = task;
    sandbox_arm(co, task); /* lua_newthread copied the creator's hook; this one is ours */
}

void
sandbox_task_kill(lua_State *co, struct sandbox_task *task, const char *reason)
{
    *(struct sandbox_task **)lua_getextraspace(co) = task;
    sandbox_mark_killed(co, task, reason != NULL ? reason : "killed");
}

/* ---- running a coroutine ---- */

/* Message handler of the entry: record the traceback while the failing frames still
 * exist (the entry's pcall unwinds them) in the registry, keyed by the coroutine, and
 * pass the error object on unchanged. Runs with hooks off; it is C and bounded. */
static int
l_sandbox_msgh(lua_State *L)
{
    lua_settop(L, 1);
    luaL_traceback(L, L, NULL, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sandbox_key_tb);
    lua_pushthread(L);
    lua_pushvalue(L, 2);
    lua_rawset(L, -3);
    lua_settop(L, 1);
    return 1;
}

/* Continuation of the entry: pass results on, or raise the error again, now from C with
 * hooks back on. A memory error is raised again as one, by asking for more memory than
 * the cap, so the caller still sees LUA_ERRMEM. */
static int
sandbox_entry_k(lua_State *L, int status, lua_KContext ctx)
{
    struct sandbox *sb;

    (void)ctx;
    if (status == LUA_OK || status == LUA_YIELD) {
        return lua_gettop(L) - 1; /* everything above the message handler */
    }
    if (status == LUA_ERRMEM && (sb = sandbox_of(L)) != NULL && sb->cap < SIZE_MAX / 2) {
        lua_newuserdatauv(L, sb->cap + 1, 0);
    }
    return lua_error(L);
}

/* The C function sandbox_resume puts below a run's function: it calls the function in
 * a yieldable pcall. Lua leaves hooks disabled in a coroutine that an error raised from
 * a hook has killed; had it died so, lua_resetthread would then run its __close
 * handlers, and any later reuse of it, with no budget at all. The pcall restores the
 * hooks before it closes the function's to-be-closed variables. */
static int
l_sandbox_entry(lua_State *L)
{
    int nargs = lua_gettop(L) - 1;

    /* Forget the traceback of an earlier run of this coroutine. */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sandbox_key_tb);
    lua_pushthread(L);
    if (lua_rawget(L, -2) != LUA_TNIL) {
        lua_pushthread(L);
        lua_pushnil(L);
        lua_rawset(L, -4);
    }
    lua_pop(L, 2);
    lua_pushcfunction(L, l_sandbox_msgh);
    lua_insert(L, 1);
    return sandbox_entry_k(L, lua_pcallk(L, nargs, LUA_MULTRET, 1, 0, sandbox_entry_k), 0);
}

int
sandbox_resume(lua_State *co, lua_State *from, int nargs, int *nresults)
{
    struct sandbox *sb = sandbox_of(co);
    lua_State *prev = NULL;
    int status;

    if (lua_status(co) == LUA_OK && lua_gettop(co) > nargs && lua_checkstack(co, 1)) {
        lua_pushcfunction(co, l_sandbox_entry);
        lua_insert(co, -(nargs + 2));
        nargs++;
    }
    if (sb != NULL) {
        prev = sb->running;
        sb->running = co;
        sb->since_hook = 0;
    }
    status = lua_resume(co, from, nargs, nresults);
    if (sb != NULL) {
        sb->running = prev;
        if (sb->early) {
            sb->early = 0;
            sandbox_arm(co, sandbox_task_of(co));
        }
    }
    return status;
}

struct sandbox_render {
    lua_State *co;
    const char *msg;
};

/* Protected part of sandbox_error_message, run on the main thread: the stored
 * traceback of co (taken out of the registry) or a fresh one of co's stack. */
static int
l_sandbox_render(lua_State *L)
{
    struct sandbox_render *r = lua_touserdata(L, 1);

    lua_rawgetp(L, LUA_REGISTRYINDEX, &sandbox_key_tb);
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        if (lua_tothread(L, -2) == r->co && lua_type(L, -1) == LUA_TSTRING) {
            lua_pushfstring(L, "%s\n%s", r->msg, lua_tostring(L, -1));
            lua_pushvalue(L, -3);
            lua_pushnil(L);
            lua_rawset(L, -6); /* an existing key: no allocation, no iteration trouble */
            return 1;
        }
        lua_pop(L, 1);
    }
    luaL_traceback(L, r->co, r->msg, 0);
    return 1;
}

char *
sandbox_error_message(lua_State *co)
{
    char num[64];
    char *msg;
    char *out = NULL;
    struct sandbox *sb = sandbox_of(co);
    int t = lua_gettop(co) > 0 ? lua_type(co, -1) : LUA_TNONE;

    /* Never convert with luaL_tolstring: __tostring could run forever, with no hook. */
    if (t == LUA_TSTRING) {
        msg = xstrdup(lua_tostring(co, -1));
    } else if (t == LUA_TNUMBER) {
        if (lua_isinteger(co, -1)) {
            snprintf(num, sizeof(num), "%lld", (long long)lua_tointeger(co, -1));
        } else {
            snprintf(num, sizeof(num), "%.14g", (double)lua_tonumber(co, -1));
        }
        msg = xstrdup(num);
    } else {
        msg = xasprintf("(error object is a %s value)", lua_typename(co, t));
    }
    if (sb != NULL && sb->L != co && lua_status(sb->L) == LUA_OK) {
        struct sandbox_render r = { co, msg };
        lua_State *L = sb->L;
        int top = lua_gettop(L);

        if (lua_checkstack(L, 3)) {
            lua_pushcfunction(L, l_sandbox_render);
            lua_pushlightuserdata(L, &r);
            if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
                out = xstrdup(lua_tostring(L, -1));
            }
        }
        lua_settop(L, top);
    }
    if (out == NULL) {
        return msg;
    }
    free(msg);
    return out;
}

/* ---- deterministic iteration and tostring ----
 *
 * A run is re-executed from the start after a restart and its effects are matched
 * against the journal, so nothing a playbook can observe may differ between processes.
 * Lua's next() walks the hash part in an order that depends on the per-state string
 * hash seed and on addresses, and tostring() of a table shows its address. In the
 * sandbox, pairs and next visit keys in one total order (numbers ascending, then
 * strings bytewise, then false and true, then at most one key of another type), and
 * tostring names the type without an address. */

/* One key of a table being ordered; pos is its index in the table of keys, which keeps
 * the strings s points into alive. */
struct sandbox_key {
    int rank; /* 0 number, 1 string, 2 boolean, 3 anything else */
    int isint;
    lua_Integer i;
    lua_Number f;
    const char *s;
    size_t len;
    lua_Integer pos;
};

/* Is integer i less than float f (not NaN: NaN is never a key)? i < f exactly when i <
 * ceil(f), for f within the integer range. */
static int
sandbox_int_lt_float(lua_Integer i, lua_Number f)
{
    if (f >= 0x1p63) {
        return 1;
    }
    if (f <= -0x1p63) {
        return 0;
    }
    return i < (lua_Integer)ceil(f);
}

static int
sandbox_float_lt_int(lua_Number f, lua_Integer i)
{
    if (f >= 0x1p63) {
        return 0;
    }
    if (f < -0x1p63) {
        return 1;
    }
    return (lua_Integer)floor(f) < i;
}

static int
sandbox_key_cmp(const void *pa, const void *pb)
{
    const struct sandbox_key *a = pa, *b = pb;
    int c;

    if (a->rank != b->rank) {
        return a->rank < b->rank ? -1 : 1;
    }
    switch (a->rank) {
    case 0:
        if (a->isint && b->isint) {
            return a->i < b->i ? -1 : a->i > b->i;
        }
        if (a->isint) {
            return sandbox_int_lt_float(a->i, b->f) ? -1 : 1; /* never equal: one key */
        }
        if (b->isint) {
            return sandbox_float_lt_int(a->f, b->i) ? -1 : 1;
        }
        return a->f < b->f ? -1 : a->f > b->f;
    case 1:
        c = memcmp(a->s, b->s, a->len < b->len ? a->len : b->len);
        if (c != 0) {
            return c;
        }
        return a->len < b->len ? -1 : a->len > b->len;
    case 2:
        return a->i < b->i ? -1 : a->i > b->i;
    default:
        return 0; /* at most one such key (sandbox_key_fill refuses more) */
    }
}

/* Describe the value at idx (a key of some table) in k. */
static void
sandbox_key_fill(lua_State *L, int idx, struct sandbox_key *k)
{
    memset(k, 0, sizeof(*k));
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        k->rank = 0;
        k->isint = lua_isinteger(L, idx);
        if (k->isint) {
            k->i = lua_tointeger(L, idx);
        } else {
            k->f = lua_tonumber(L, idx);
        }
        break;
    case LUA_TSTRING:
        k->rank = 1;
        k->s = lua_tolstring(L, idx, &k->len); /* a string already: no conversion */
        break;
    case LUA_TBOOLEAN:
        k->rank = 2;
        k->i = lua_toboolean(L, idx);
        break;
    default:
        k->rank = 3;
        break;
    }
}

static int
sandbox_key_refuse(lua_State *L, const char *fn)
{
    return luaL_error(L,
                      "%s: a table with more than one key that is a table, function, userdata "
                      "or thread has no order that is the same on replay",
                      fn);
}

/* Push a new array of the keys of the table at t in the sandbox's order. Charges the
 * walk and the sort; raises (naming fn) when the table has two keys of rank 3. */
static void
sandbox_sorted_keys(lua_State *L, int t, const char *fn)
{
    lua_Integer n = 0, j;
    struct sandbox_key *keys;
    int others = 0;
    int kt;

    t = lua_absindex(L, t);
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        lua_pop(L, 1);
        n++;
    }
    sandbox_call_work(L, fn, (double)n * (n > 1 ? 2 + log2((double)n) : 1));
    lua_createtable(L, n > INT32_MAX ? INT32_MAX : (int)n, 0); /* the keys, unordered */
    kt = lua_gettop(L);
    keys = lua_newuserdatauv(L, (size_t)n * sizeof(*keys) + 1, 0);
    j = 0;
    lua_pushnil(L);
    while (lua_next(L, t) != 0 && j < n) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, kt, ++j);
        sandbox_key_fill(L, -1, &keys[j - 1]);
        keys[j - 1].pos = j;
        if (keys[j - 1].rank == 3 && ++others > 1) {
            sandbox_key_refuse(L, fn);
        }
    }
    lua_settop(L, kt + 1); /* the keys and their descriptions */
    n = j;
    qsort(keys, (size_t)n, sizeof(*keys), sandbox_key_cmp);
    lua_createtable(L, (int)n, 0);
    for (j = 0; j < n; j++) {
        lua_rawgeti(L, kt, keys[j].pos);
        lua_rawseti(L, -2, j + 1);
    }
    lua_replace(L, kt);
    lua_pop(L, 1); /* the descriptions */
}

/* next(t [, k]): the key after k in the sandbox's order (the first with no k) and its
 * value, or nil. One call walks the whole table (charged), so a loop of next() over a
 * big table is quadratic; pairs() orders once. */
static int
l_sandbox_next(lua_State *L)
{
    struct sandbox_key after, best, cur;
    int have_after, have_best = 0, others = 0;
    double count = 0;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    have_after = !lua_isnil(L, 2);
    if (have_after) {
        sandbox_key_fill(L, 2, &after);
    }
    lua_pushnil(L); /* 3: the best key so far */
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        lua_pop(L, 1);
        count++;
        sandbox_key_fill(L, -1, &cur);
        if (cur.rank == 3 && ++others > 1) {
            sandbox_key_refuse(L, "next");
        }
        if (have_after && sandbox_key_cmp(&cur, &after) <= 0) {
            continue;
        }
        if (!have_best || sandbox_key_cmp(&cur, &best) < 0) {
            best = cur;
            have_best = 1;
            lua_pushvalue(L, -1);
            lua_replace(L, 3);
        }
    }
    sandbox_call_work(L, "next", count + 1);
    if (!have_best) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushvalue(L, 3);
    lua_rawget(L, 1);
    return 2;
}

/* The iterator pairs() returns: upvalue 1 the table, 2 its keys in order, 3 the
 * position. Keys whose value was set to nil during the loop are skipped; keys added
 * during the loop are not visited (adding keys during a traversal is undefined in Lua
 * anyway). */
static int
l_sandbox_pairs_iter(lua_State *L)
{
    lua_Integer i = lua_tointeger(L, lua_upvalueindex(3));
    lua_Integer n = (lua_Integer)lua_rawlen(L, lua_upvalueindex(2));

    while (++i <= n) {
        lua_rawgeti(L, lua_upvalueindex(2), i);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) {
            lua_pushinteger(L, i);
            lua_replace(L, lua_upvalueindex(3));
            return 2;
        }
        lua_pop(L, 2);
    }
    lua_pushinteger(L, n);
    lua_replace(L, lua_upvalueindex(3));
    lua_pushnil(L);
    return 1;
}

/* Push the iterator over the table at t, in the sandbox's order. */
static void
sandbox_push_pairs_iter(lua_State *L, int t, const char *fn)
{
    t = lua_absindex(L, t);
    lua_pushvalue(L, t);
    sandbox_sorted_keys(L, t, fn);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, l_sandbox_pairs_iter, 3);
}

/* pairs(t): a __pairs metamethod is honoured, as in Lua; a plain table is visited in
 * the sandbox's order, from a list of its keys made here (charged). */
static int
l_sandbox_pairs(lua_State *L)
{
    luaL_checkany(L, 1);
    if (luaL_getmetafield(L, 1, "__pairs") != LUA_TNIL) {
        lua_pushvalue(L, 1);
        lua_call(L, 1, 3);
        return 3;
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    sandbox_push_pairs_iter(L, 1, "pairs");
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

void
sandbox_tolstring(lua_State *L, int idx)
{
    int t;

    idx = lua_absindex(L, idx);
    if (luaL_callmeta(L, idx, "__tostring")) {
        if (!lua_isstring(L, -1)) {
            luaL_error(L, "'__tostring' must return a string");
        }
        return;
    }
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
    case LUA_TBOOLEAN:
    case LUA_TNUMBER:
    case LUA_TSTRING:
        luaL_tolstring(L, idx, NULL);
        return;
    default:
        break;
    }
    t = luaL_getmetafield(L, idx, "__name");
    if (t == LUA_TSTRING) {
        return;
    }
    if (t != LUA_TNIL) {
        lua_pop(L, 1);
    }
    lua_pushstring(L, luaL_typename(L, idx));
}

/* tostring(v) with no address (see sandbox_tolstring). */
static int
l_sandbox_tostring(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    sandbox_tolstring(L, 1);
    return 1;
}

/* ---- protected proxies ---- */

/* __newindex of every read-only proxy. */
static int
l_sandbox_readonly(lua_State *L)
{
    return luaL_error(L, "attempt to modify read-only table '%s'",
                      lua_tostring(L, lua_upvalueindex(1)));
}

/* A proxy's __pairs: the real table (which it never hands out) in the sandbox's order. */
static int
l_sandbox_proxy_pairs(lua_State *L)
{
    sandbox_push_pairs_iter(L, lua_upvalueindex(1), "pairs");
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* A proxy's __len: the real table's length, so that # and the table functions see it. */
static int
l_sandbox_proxy_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, lua_upvalueindex(1)));
    return 1;
}

/* Replace the table at the top of L with a read-only proxy of it: an empty table whose
 * protected metatable reads through to the real one and refuses writes. The proxy is
 * recorded in the frozen set so that rawset refuses it too. */
static void
sandbox_make_proxy(lua_State *L, const char *name)
{
    int real = lua_gettop(L);

    lua_createtable(L, 0, 0); /* proxy */
    lua_createtable(L, 0, 4); /* its metatable */
    lua_pushvalue(L, real);
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, name);
    lua_pushcclosure(L, l_sandbox_readonly, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, real);
    lua_pushcclosure(L, l_sandbox_proxy_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushvalue(L, real);
    lua_pushcclosure(L, l_sandbox_proxy_len, 1);
    lua_setfield(L, -2, "__len");
    lua_pushvalue(L, real);
    lua_rawsetp(L, -2, &sandbox_key_real);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sandbox_key_frozen);
    lua_pushvalue(L, -2);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_replace(L, real);
}

int
sandbox_proxy_target(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx)) {
        return 0;
    }
    if (lua_rawgetp(L, -1, &sandbox_key_real) == LUA_TTABLE) {
        lua_remove(L, -2);
        return 1;
    }
    lua_pop(L, 2);
    return 0;
}

static int
sandbox_is_frozen(lua_State *L, int idx)
{
    int frozen;

    idx = lua_absindex(L, idx);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sandbox_key_frozen);
    lua_pushvalue(L, idx);
    frozen = lua_rawget(L, -2) != LUA_TNIL;
    lua_pop(L, 2);
    return frozen;
}

/* Give the proxy at proxy the metamethods of the real table at real that still make sense
 * on a read-only view (__call, __tostring, __name, comparisons, operators, __concat),
 * so that a library's objects keep behaving as they did. Reading, writing, length,
 * iteration and the metatable itself stay the proxy's own. */
static void
sandbox_proxy_metamethods(lua_State *L, int real, int proxy)
{
    static const char *const keep[] = { "__call", "__tostring", "__name", "__eq",  "__lt",
                                        "__le",   "__concat",   "__unm",  "__add", "__sub",
                                        "__mul",  "__div",      "__mod",  "__pow", "__idiv",
                                        "__band", "__bor",      "__bxor", "__shl", "__shr",
                                        "__bnot", NULL };

    if (!lua_getmetatable(L, real)) {
        return;
    }
    lua_getmetatable(L, proxy);
    for (size_t i = 0; keep[i] != NULL; i++) {
        if (lua_getfield(L, -2, keep[i]) != LUA_TNIL) {
            lua_setfield(L, -2, keep[i]);
        } else {
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 2);
}

/* Deep freeze, recursive part: the value at the top of L is replaced by its frozen form.
 * seen (at index seen) maps each table and function already visited to what replaces
 * it, so shared and cyclic structures are frozen once. */
static void
sandbox_freeze_rec(lua_State *L, int seen, const char *name, int depth)
{
    int v = lua_gettop(L);

    luaL_checkstack(L, 8, "freeze");
    if (depth > 200) {
        luaL_error(L, "%s: nested too deeply to be made read-only", name);
    }
    if (lua_type(L, v) == LUA_TTABLE) {
        if (sandbox_is_frozen(L, v)) {
            return;
        }
        lua_pushvalue(L, v);
        if (lua_rawget(L, seen) != LUA_TNIL) {
            lua_replace(L, v);
            return;
        }
        lua_pop(L, 1);
        lua_pushvalue(L, v); /* the real table, kept below the proxy */
        sandbox_make_proxy(L, name);
        lua_pushvalue(L, v);
        lua_pushvalue(L, -2);
        lua_rawset(L, seen); /* seen[real] = proxy */
        sandbox_proxy_metamethods(L, v, lua_gettop(L));
        /* Freeze the values in place; setting an existing key keeps lua_next valid. */
        lua_pushnil(L);
        while (lua_next(L, v) != 0) {
            int t = lua_type(L, -1);

            if (t == LUA_TTABLE || (t == LUA_TFUNCTION && !lua_iscfunction(L, -1))) {
                sandbox_freeze_rec(L, seen, name, depth + 1);
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, v);
            } else {
                lua_pop(L, 1);
            }
        }
        lua_replace(L, v); /* the proxy replaces the real table */
        return;
    }
    if (lua_type(L, v) == LUA_TFUNCTION && !lua_iscfunction(L, v)) {
        lua_pushvalue(L, v);
        if (lua_rawget(L, seen) != LUA_TNIL) {
            lua_pop(L, 1);
            return;
        }
        lua_pop(L, 1);
        lua_pushvalue(L, v);
        lua_pushvalue(L, v);
        lua_rawset(L, seen);
        /* The tables a function keeps in its upvalues are shared by every call: freeze
         * them too (closures of one scope share the upvalue, so each is set once). The
         * environment is the caller's to handle. */
        for (int i = 1;; i++) {
            const char *up = lua_getupvalue(L, v, i);
            int t;

            if (up == NULL) {
                break;
            }
            t = lua_type(L, -1);
            if (strcmp(up, "_ENV") != 0 &&
                (t == LUA_TTABLE || (t == LUA_TFUNCTION && !lua_iscfunction(L, -1)))) {
                sandbox_freeze_rec(L, seen, name, depth + 1);
                lua_setupvalue(L, v, i);
            } else {
                lua_pop(L, 1);
            }
        }
    }
}

void
sandbox_freeze_value(lua_State *L, int idx, const char *name)
{
    idx = lua_absindex(L, idx);
    lua_newtable(L); /* seen */
    lua_pushvalue(L, idx);
    sandbox_freeze_rec(L, lua_gettop(L) - 1, name, 0);
    lua_replace(L, idx);
    lua_pop(L, 1);
}

/* Call the original function (upvalue 1 of the running wrapper) with every argument on
 * the stack and return all its results. */
static int
sandbox_call_orig(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* ---- base library wrappers ---- */

/* setmetatable refuses a metatable with a __gc field: Lua 5.4 runs finalizers with
 * hooks disabled, so an endless __gc would stall the engine. (Adding __gc later does
 * not matter: Lua only marks an object for finalization when its metatable is set.) */
static int
l_sandbox_setmetatable(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL) {
            return luaL_error(L, "setmetatable: __gc metamethods are not allowed in playbooks");
        }
        lua_pop(L, 1);
    }
    return sandbox_call_orig(L);
}

/* rawset refuses the read-only proxies: a raw write would bypass their __newindex. */
static int
l_sandbox_rawset(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TTABLE && sandbox_is_frozen(L, 1)) {
        return luaL_error(L, "attempt to modify a read-only table");
    }
    return sandbox_call_orig(L);
}

static int
sandbox_xpcall_h(lua_State *L, int status, lua_KContext ctx)
{
    (void)L;
    (void)status;
    (void)ctx;
    return 2; /* false, what the handler returned (or its own error) */
}

static int
sandbox_xpcall_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)ctx;
    if (status == LUA_OK || status == LUA_YIELD) {
        return lua_gettop(L) - 2; /* true and the results */
    }
    /* stack: f h true err */
    lua_pushboolean(L, 0);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 4);
    return sandbox_xpcall_h(L, lua_pcallk(L, 1, 1, 0, 0, sandbox_xpcall_h), 0);
}

/* xpcall(f, msgh, ...) with the handler called after the stack unwinds, not inside
 * the error: Lua calls a message handler from where the error was raised, and for an
 * error raised by the budget hook that is with hooks disabled, so an endless handler
 * would never be stopped. Without the debug library a handler cannot look at the
 * failed frames anyway. A failing handler makes xpcall return false and its error. */
static int
l_sandbox_xpcall(lua_State *L)
{
    int n = lua_gettop(L);

    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushboolean(L, 1);
    lua_pushvalue(L, 1);
    lua_rotate(L, 3, 2); /* f h true f args... */
    return sandbox_xpcall_k(L, lua_pcallk(L, n - 2, LUA_MULTRET, 0, 0, sandbox_xpcall_k), 0);
}

/* ---- table library wrappers ---- */

/* Check that the value at arg can act as a table (as ltablib's checktab does). */
static void
sandbox_checktab(lua_State *L, int arg, int write)
{
    int ok;

    if (lua_type(L, arg) == LUA_TTABLE) {
        return;
    }
    ok = lua_getmetatable(L, arg);
    if (ok) {
        ok = lua_getfield(L, -1, "__index") != LUA_TNIL;
        lua_pop(L, 1);
        if (ok && write) {
            ok = lua_getfield(L, -1, "__newindex") != LUA_TNIL;
            lua_pop(L, 1);
        }
        if (ok) {
            ok = lua_getfield(L, -1, "__len") != LUA_TNIL;
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    if (!ok) {
        luaL_checktype(L, arg, LUA_TTABLE);
    }
}

/* Refuse a walk over first..last longer than SANDBOX_MAX_RANGE, and charge it. */
static void
sandbox_check_range(lua_State *L, const char *fn, lua_Integer first, lua_Integer last)
{
    lua_Unsigned count;

    if (first > last) {
        return;
    }
    count = (lua_Unsigned)last - (lua_Unsigned)first;
    if (count >= SANDBOX_MAX_RANGE) {
        luaL_error(L, "table.%s: a range of %f elements is over the sandbox limit of %d", fn,
                   (double)count + 1, SANDBOX_MAX_RANGE);
    }
    sandbox_charge(L, (double)count + 1);
}

/* table.concat(t [, sep [, i [, j]]]): the length is read once and passed on, so a
 * __len cannot answer differently to the real function. */
static int
l_sandbox_table_concat(lua_State *L)
{
    lua_Integer i, last;

    sandbox_checktab(L, 1, 0);
    luaL_optlstring(L, 2, "", NULL);
    i = luaL_optinteger(L, 3, 1);
    last = lua_isnoneornil(L, 4) ? luaL_len(L, 1) : luaL_checkinteger(L, 4);
    sandbox_check_range(L, "concat", i, last);
    if (i <= last) { /* each element is fetched, checked and copied: ~8 instructions */
        sandbox_call_work(L, "table.concat", ((double)last - (double)i + 1) * 8);
    }
    lua_settop(L, 2);
    lua_pushinteger(L, i);
    lua_pushinteger(L, last);
    return sandbox_call_orig(L);
}

static int
l_sandbox_table_unpack(lua_State *L)
{
    lua_Integer i = luaL_optinteger(L, 2, 1);
    lua_Integer last = lua_isnoneornil(L, 3) ? luaL_len(L, 1) : luaL_checkinteger(L, 3);

    sandbox_check_range(L, "unpack", i, last);
    lua_settop(L, 1);
    lua_pushinteger(L, i);
    lua_pushinteger(L, last);
    return sandbox_call_orig(L);
}

static int
l_sandbox_table_move(lua_State *L)
{
    lua_Integer f = luaL_checkinteger(L, 2);
    lua_Integer e = luaL_checkinteger(L, 3);

    luaL_checkinteger(L, 4);
    sandbox_check_range(L, "move", f, e);
    return sandbox_call_orig(L);
}

/* table.insert, written here (as ltablib's) so the length is read once: a __len that
 * answers 1e15 would otherwise drive the real one's shifting loop that far. */
static int
l_sandbox_table_insert(lua_State *L)
{
    lua_Integer e, pos, i;

    sandbox_checktab(L, 1, 1);
    e = (lua_Integer)((lua_Unsigned)luaL_len(L, 1) + 1u); /* first empty element */
    switch (lua_gettop(L)) {
    case 2:
        pos = e;
        break;
    case 3:
        pos = luaL_checkinteger(L, 2);
        luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)e, 2, "position out of bounds");
        sandbox_check_range(L, "insert", pos, e);
        for (i = e; i > pos; i--) {
            lua_geti(L, 1, i - 1);
            lua_seti(L, 1, i);
        }
        break;
    default:
        return luaL_error(L, "wrong number of arguments to 'insert'");
    }
    lua_seti(L, 1, pos);
    return 0;
}

/* table.remove, written here for the same reason as table.insert. */
static int
l_sandbox_table_remove(lua_State *L)
{
    lua_Integer size, pos;

    sandbox_checktab(L, 1, 1);
    size = luaL_len(L, 1);
    pos = luaL_optinteger(L, 2, size);
    if (pos != size) {
        luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 2, "position out of bounds");
    }
    sandbox_check_range(L, "remove", pos, size);
    lua_geti(L, 1, pos);
    for (; pos < size; pos++) {
        lua_geti(L, 1, pos + 1);
        lua_seti(L, 1, pos);
    }
    lua_pushnil(L);
    lua_seti(L, 1, pos);
    return 1;
}

struct sandbox_sort {
    lua_State *L;
    int cmp;        /* stack index of the order function, or 0 */
    double pending; /* work not yet charged */
    double spent;   /* work of this call so far */
};

/* Charge the pending work of a sort; raise if the call is now over its limit. */
static void
sandbox_sort_flush(struct sandbox_sort *s)
{
    s->spent += s->pending;
    sandbox_call_limit(s->L, "table.sort", s->spent);
    sandbox_charge(s->L, s->pending);
    s->pending = 0;
}

/* Is the value at a less than the one at b (absolute indices)? Charges a string comparison by the
 * length of the shorter string (strcoll walks it), in batches. */
static int
sandbox_sort_less(struct sandbox_sort *s, int a, int b)
{
    lua_State *L = s->L;
    int lt;

    if (s->cmp != 0) {
        lua_pushvalue(L, s->cmp);
        lua_pushvalue(L, a);
        lua_pushvalue(L, b);
        lua_call(L, 2, 1);
        lt = lua_toboolean(L, -1);
        lua_pop(L, 1);
    } else {
        if (lua_type(L, a) == LUA_TSTRING && lua_type(L, b) == LUA_TSTRING) {
            size_t la = lua_rawlen(L, a), lb = lua_rawlen(L, b);

            s->pending += (double)(la < lb ? la : lb) / SANDBOX_SORT_BYTES;
        }
        lt = lua_compare(L, a, b, LUA_OPLT);
    }
    if (s->pending >= 100000) {
        sandbox_sort_flush(s);
    }
    return lt;
}

/* table.sort as a stable merge sort written here. Lua's own quicksort picks a random
 * pivot for big arrays, so elements that compare equal could end in a different order
 * on replay; and it runs with no way to charge its comparisons. Here the comparisons are
 * bounded (n log n of them, charged before starting, refused past SANDBOX_CALL_STEPS),
 * the bytes compared are charged as it goes, and the elements are sorted in two scratch
 * arrays and written back once (through __index/__newindex, as Lua's sort does). */
static int
l_sandbox_table_sort(lua_State *L)
{
    struct sandbox_sort s = { L, 0, 0, 0 };
    lua_Integer n, i, width;
    int src = 3, dst = 4;

    sandbox_checktab(L, 1, 1);
    n = luaL_len(L, 1);
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TFUNCTION);
        s.cmp = 2;
    }
    lua_settop(L, 2);
    if (n <= 1) {
        return 0;
    }
    sandbox_check_range(L, "sort", 1, n);
    s.spent = (double)n * ceil(log2((double)n)) * SANDBOX_SORT_COMPARE;
    sandbox_call_work(L, "table.sort", s.spent);
    lua_createtable(L, (int)n, 0);
    lua_createtable(L, (int)n, 0);
    for (i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        lua_rawseti(L, src, i);
    }
    for (width = 1; width < n; width *= 2) {
        for (lua_Integer lo = 1; lo <= n; lo += 2 * width) {
            lua_Integer mid = lo + width - 1 < n ? lo + width - 1 : n;
            lua_Integer hi = lo + 2 * width - 1 < n ? lo + 2 * width - 1 : n;
            lua_Integer a = lo, b = mid + 1, k = lo;

            while (a <= mid && b <= hi) {
                lua_rawgeti(L, src, a);
                lua_rawgeti(L, src, b);
                if (sandbox_sort_less(&s, lua_gettop(L),
                                      lua_gettop(L) - 1)) { /* take b only when b < a: stable */
                    lua_rawseti(L, dst, k++);
                    lua_pop(L, 1);
                    b++;
                } else {
                    lua_pop(L, 1);
                    lua_rawseti(L, dst, k++);
                    a++;
                }
            }
            for (; a <= mid; a++) {
                lua_rawgeti(L, src, a);
                lua_rawseti(L, dst, k++);
            }
            for (; b <= hi; b++) {
                lua_rawgeti(L, src, b);
                lua_rawseti(L, dst, k++);
            }
        }
        src = src == 3 ? 4 : 3;
        dst = dst == 3 ? 4 : 3;
    }
    sandbox_sort_flush(&s);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, src, i);
        lua_seti(L, 1, i);
    }
    return 0;
}

/* ---- string library wrappers ---- */

/* string.rep: an empty result is returned at once (the real one would loop n times
 * copying nothing), and a result that cannot fit in the memory left is refused before
 * anything is allocated. */
static int
l_sandbox_string_rep(lua_State *L)
{
    size_t l, lsep;
    struct sandbox *sb = sandbox_of(L);
    lua_Integer n;
    double total;

    luaL_checklstring(L, 1, &l);
    n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    if (n <= 0 || l + lsep == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    total = (double)l * (double)n + (double)lsep * (double)(n - 1);
    if (sb != NULL && total >= (double)(sb->cap - sb->used)) {
        return luaL_error(L, "string.rep: a result of %f bytes does not fit in the memory left",
                          total);
    }
    sandbox_call_work(L, "string.rep", (double)n * 2 + total / SANDBOX_LOOP_BYTES);
    return sandbox_call_orig(L);
}

/* string.format: '%p' (an address) is refused, '%s' of a table, function, userdata or
 * thread gives sandbox_tolstring's text (no address), and the work is charged: the
 * format, the strings '%s' copies, and '%q', which escapes byte by byte. Widths and
 * precisions need no bound: Lua takes at most two digits of each. */
static int
l_sandbox_string_format(lua_State *L)
{
    size_t lf, l;
    const char *f = luaL_checklstring(L, 1, &lf);
    const char *end = f + lf;
    int arg = 1, top = lua_gettop(L);
    double cost = (double)lf;

    while (f < end) {
        if (*f++ != '%') {
            continue;
        }
        if (f < end && *f == '%') {
            f++;
            continue;
        }
        while (f < end && strchr("-+ #0123456789.", *f) != NULL) {
            f++;
        }
        if (f >= end) {
            break; /* the real function names the bad conversion */
        }
        if (++arg > top) {
            break;
        }
        switch (*f++) {
        case 'p':
            return luaL_error(L, "string.format: '%%p' is not allowed in playbooks (an address "
                                 "differs on replay)");
        case 's':
            if (lua_type(L, arg) != LUA_TSTRING && lua_type(L, arg) != LUA_TNUMBER) {
                sandbox_tolstring(L, arg);
                lua_replace(L, arg);
            }
            luaL_tolstring(L, arg, &l);
            lua_pop(L, 1);
            cost += (double)l / SANDBOX_BYTES_PER_INSTRUCTION;
            break;
        case 'q':
            if (lua_type(L, arg) == LUA_TSTRING) {
                lua_tolstring(L, arg, &l);
                cost += (double)l * 4;
            }
            break;
        default:
            break;
        }
    }
    sandbox_call_work(L, "string.format", cost);
    return sandbox_call_orig(L);
}

/* Charge work proportional to the length of the string argument 1, at bytes_per_step
 * bytes per instruction, then call the real function (string.upper, lower, reverse,
 * utf8.len, codepoint, offset). Upvalue 2 is the function's name. */
static int
l_sandbox_string_linear(lua_State *L)
{
    size_t l = 0;

    if (lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER) {
        lua_tolstring(L, 1, &l);
    }
    sandbox_call_work(L, lua_tostring(L, lua_upvalueindex(2)), (double)l / SANDBOX_LOOP_BYTES + 1);
    return sandbox_call_orig(L);
}

/* Charge one instruction per argument (string.char, utf8.char, table.pack, select: each
 * copies its arguments in one call) or per value asked for (string.byte), then call the
 * real function. Upvalue 2 is its name. */
static int
l_sandbox_string_count(lua_State *L)
{
    const char *fn = lua_tostring(L, lua_upvalueindex(2));
    double count = lua_gettop(L);

    if (strcmp(fn, "string.byte") == 0) {
        size_t l;
        lua_Integer i, j;

        luaL_checklstring(L, 1, &l);
        i = luaL_optinteger(L, 2, 1);
        j = luaL_optinteger(L, 3, i);
        i = i < 0 ? (lua_Integer)l + i + 1 : i;
        j = j < 0 ? (lua_Integer)l + j + 1 : j;
        count = j >= i ? (double)j - (double)i + 1 : 0;
        if (count > (double)l) {
            count = (double)l;
        }
    }
    sandbox_call_work(L, fn, count + 1);
    return sandbox_call_orig(L);
}

/* string.pack: an option's size ("c1000000", "i16", "!8", "X...") is work the packer
 * does byte by byte (padding), so every number in the format is charged, and so are
 * the strings packed. */
static int
l_sandbox_string_pack(lua_State *L)
{
    size_t lf, l;
    const char *f = luaL_checklstring(L, 1, &lf);
    double cost = (double)lf, num = 0;

    for (size_t i = 0; i <= lf; i++) {
        if (i < lf && isdigit((unsigned char)f[i])) {
            num = num * 10 + (f[i] - '0');
        } else {
            cost += num / SANDBOX_LOOP_BYTES;
            num = 0;
        }
    }
    for (int i = 2; i <= lua_gettop(L); i++) {
        if (lua_type(L, i) == LUA_TSTRING) {
            lua_tolstring(L, i, &l);
            cost += (double)l / SANDBOX_BYTES_PER_INSTRUCTION;
        }
    }
    sandbox_call_work(L, "string.pack", cost);
    return sandbox_call_orig(L);
}

/* The Lua pattern matcher runs in C with no hook, and backtracks: string.find(
 * string.rep("a", 5000), string.rep("a*", 20) .. "b") would run for ages. So before the
 * real function runs, pat_cost bounds its worst case from the pattern and the subject,
 * and a call whose bound passes SANDBOX_PATTERN_STEPS is refused; the bound is charged
 * to the run's instruction budget otherwise.
 *
 * The model follows lstrlib.c's matcher. For one start position, items are walked left
 * to right keeping A (steps so far) and B (how many times the matcher can arrive at the
 * current item). A plain item costs 1 per arrival. %b and back-references cost n. A
 * quantified item X* / X+ / X- can stop at r+1 places, where r is the longest run of
 * characters of X's class in the subject (measured, at most SANDBOX_PATTERN_SCANS
 * times per call; otherwise r = n); it multiplies B by r+1 and costs r+1 per arrival.
 * X? multiplies B by 2. Two exceptions keep ordinary patterns cheap:
 *  - when nothing after the quantifier can fail (it ends the pattern, up to captures
 *    and optional items), the first place tried succeeds: cost 1, plus one scan of the
 *    subject for the whole call (a match ends find/match, and gsub/gmatch move past it);
 *  - when X's class cannot match the first character the rest needs (as "%d+%." or
 *    "%S+$"), the rest fails at once at all places but one: cost (r+1) * (1 + f) per
 *    arrival where f is the few items tried before that failure, and B is unchanged.
 * The total is (A + B) per start, times n+1 starts unless anchored with '^', plus the
 * scan, plus for gsub with a string replacement (matches * its length).
 * Ordinary uses stay far below the bound: "^(%S+)@(%S+)$" on an address is ~1e3 steps,
 * "(%d+)%.(%d+)%.(%d+)%.(%d+)" on an IP ~1e4, gsub("%s+", " ") on 1 MB ~4e6. */

enum pat_kind {
    PAT_SINGLE,   /* one character class, maybe quantified */
    PAT_OPEN,     /* ( */
    PAT_CLOSE,    /* ) */
    PAT_POSCAP,   /* () */
    PAT_END,      /* $ at the end */
    PAT_BALANCE,  /* %bxy */
    PAT_FRONTIER, /* %f[set] */
    PAT_BACKREF,  /* %1 .. %9 */
};

struct pat_item {
    enum pat_kind kind;
    char quant;      /* 0, '*', '+', '-' or '?' */
    const char *cls; /* PAT_SINGLE: the class text [cls, cls_end) */
    const char *cls_end;
    unsigned char c; /* PAT_BALANCE: the opening character */
};

struct pat_state {
    const unsigned char *s; /* the subject */
    size_t n;
    int scans;                  /* subject scans left */
    unsigned char classes[256]; /* which %x class sets are computed */
    unsigned char class_set[256][32];
};

static void
pat_set_add(unsigned char *set, int c)
{
    set[c >> 3] |= (unsigned char)(1u << (c & 7));
}

static int
pat_set_has(const unsigned char *set, int c)
{
    return (set[c >> 3] >> (c & 7)) & 1;
}

/* Does c belong to class %cl? (lstrlib's match_class; %z kept for old patterns.) */
static int
pat_match_class(int c, int cl)
{
    int res;

    switch (tolower(cl)) {
    case 'a':
        res = isalpha(c);
        break;
    case 'c':
        res = iscntrl(c);
        break;
    case 'd':
        res = isdigit(c);
        break;
    case 'g':
        res = isgraph(c);
        break;
    case 'l':
        res = islower(c);
        break;
    case 'p':
        res = ispunct(c);
        break;
    case 's':
        res = isspace(c);
        break;
    case 'u':
        res = isupper(c);
        break;
    case 'w':
        res = isalnum(c);
        break;
    case 'x':
        res = isxdigit(c);
        break;
    case 'z':
        res = (c == 0);
        break;
    default:
        return cl == c;
    }
    if (isupper(cl)) {
        res = !res;
    }
    return res != 0;
}

/* Add class %cl to set, computing each class's set once per call. */
static void
pat_add_class(struct pat_state *ps, unsigned char *set, int cl)
{
    if (!ps->classes[cl]) {
        memset(ps->class_set[cl], 0, 32);
        for (int c = 0; c < 256; c++) {
            if (pat_match_class(c, cl)) {
                pat_set_add(ps->class_set[cl], c);
            }
        }
        ps->classes[cl] = 1;
    }
    for (int i = 0; i < 32; i++) {
        set[i] |= ps->class_set[cl][i];
    }
}

/* The set of characters a PAT_SINGLE item matches (lstrlib's singlematch). */
static void
pat_item_set(struct pat_state *ps, const struct pat_item *it, unsigned char *set)
{
    const char *p = it->cls;
    const char *ec = it->cls_end - 1; /* the ']' of a bracket class */
    int sig = 1;

    memset(set, 0, 32);
    switch (*p) {
    case '.':
        memset(set, 0xff, 32);
        return;
    case '%':
        pat_add_class(ps, set, (unsigned char)p[1]);
        return;
    case '[':
        break;
    default:
        pat_set_add(set, (unsigned char)*p);
        return;
    }
    if (p[1] == '^') {
        sig = 0;
        p++;
    }
    while (++p < ec) {
        if (*p == '%') {
            p++;
            pat_add_class(ps, set, (unsigned char)*p);
        } else if (p[1] == '-' && p + 2 < ec) {
            p += 2;
            for (int c = (unsigned char)p[-2]; c <= (unsigned char)*p; c++) {
                pat_set_add(set, c);
            }
        } else {
            pat_set_add(set, (unsigned char)*p);
        }
    }
    if (!sig) {
        for (int i = 0; i < 32; i++) {
            set[i] = (unsigned char)~set[i];
        }
    }
}

/* End of the single-character class at p (lstrlib's classEnd), or NULL if malformed. */
static const char *
pat_class_end(const char *p, const char *end)
{
    switch (*p++) {
    case '%':
        return p < end ? p + 1 : NULL;
    case '[':
        if (p < end && *p == '^') {
            p++;
        }
        do {
            if (p >= end) {
                return NULL;
            }
            if (*p++ == '%' && p < end) {
                p++;
            }
        } while (p >= end || *p != ']');
        return p + 1;
    default:
        return p;
    }
}

/* Parse the item at p (p < end) into it; return the position after it and its
 * quantifier, or NULL when the pattern is malformed there (Lua raises when it gets
 * there). */
static const char *
pat_next(const char *p, const char *end, struct pat_item *it)
{
    const char *ep;

    memset(it, 0, sizeof(*it));
    switch (*p) {
    case '(':
        if (p + 1 < end && p[1] == ')') {
            it->kind = PAT_POSCAP;
            return p + 2;
        }
        it->kind = PAT_OPEN;
        return p + 1;
    case ')':
        it->kind = PAT_CLOSE;
        return p + 1;
    case '$':
        if (p + 1 == end) {
            it->kind = PAT_END;
            return p + 1;
        }
        break;
    case '%':
        if (p + 1 < end && p[1] == 'b') {
            if (p + 4 > end) {
                return NULL;
            }
            it->kind = PAT_BALANCE;
            it->c = (unsigned char)p[2];
            return p + 4;
        }
        if (p + 1 < end && p[1] == 'f') {
            if (p + 2 >= end || p[2] != '[') {
                return NULL;
            }
            it->kind = PAT_FRONTIER;
            return pat_class_end(p + 2, end);
        }
        if (p + 1 < end && isdigit((unsigned char)p[1])) {
            it->kind = PAT_BACKREF;
            return p + 2;
        }
        break;
    default:
        break;
    }
    ep = pat_class_end(p, end);
    if (ep == NULL) {
        return NULL;
    }
    it->kind = PAT_SINGLE;
    it->cls = p;
    it->cls_end = ep;
    if (ep < end && (*ep == '*' || *ep == '+' || *ep == '-' || *ep == '?')) {
        it->quant = *ep;
        return ep + 1;
    }
    return ep;
}

static int
pat_fallible(const struct pat_item *it)
{
    switch (it->kind) {
    case PAT_OPEN:
    case PAT_CLOSE:
    case PAT_POSCAP:
        return 0;
    case PAT_SINGLE:
        return it->quant == 0 || it->quant == '+';
    default:
        return 1;
    }
}

/* The characters the pattern from p on can start with, into first, and in *ff the
 * items tried before it fails on any other character. Returns 0 when unknown (too far,
 * or an item that can start anywhere). */
static int
pat_first(struct pat_state *ps, const char *p, const char *end, unsigned char *first, int *ff)
{
    struct pat_item it;
    unsigned char set[32];

    memset(first, 0, 32);
    *ff = 0;
    for (int k = 0; k < SANDBOX_PATTERN_LOOKAHEAD && p < end; k++) {
        const char *np = pat_next(p, end, &it);

        if (np == NULL) {
            return 0;
        }
        ++*ff;
        switch (it.kind) {
        case PAT_OPEN:
        case PAT_CLOSE:
        case PAT_POSCAP:
            break;
        case PAT_END:
            return 1;
        case PAT_BALANCE:
            pat_set_add(first, it.c);
            return 1;
        case PAT_FRONTIER:
        case PAT_BACKREF:
            return 0;
        case PAT_SINGLE:
            pat_item_set(ps, &it, set);
            for (int i = 0; i < 32; i++) {
                first[i] |= set[i];
            }
            if (it.quant == 0 || it.quant == '+') {
                return 1;
            }
            break;
        }
        p = np;
    }
    return 0;
}

/* The longest run of subject characters in set. */
static double
pat_run(struct pat_state *ps, const unsigned char *set)
{
    size_t best = 0, cur = 0;

    if (ps->scans <= 0) {
        return (double)ps->n;
    }
    ps->scans--;
    for (size_t i = 0; i < ps->n; i++) {
        if (pat_set_has(set, ps->s[i])) {
            if (++cur > best) {
                best = cur;
            }
        } else {
            cur = 0;
        }
    }
    return (double)best;
}

/* Worst-case steps of matching pattern [p, p+lp) on subject [s, s+n) (the model is
 * described above). anchor_ok: a leading '^' anchors (find, match, gsub; not gmatch). */
static double
pat_cost(const char *s, size_t n, const char *p, size_t lp, int anchor_ok)
{
    struct pat_state *ps = xcalloc(1, sizeof(*ps));
    const char *end = p + lp;
    const char *last_fallible = p; /* end of the last item that can fail */
    const char *q;
    double starts, a = 0, b = 1, scan = 0, tail_scan = 0;
    struct pat_item it;
    unsigned char set[32], first[32];

    ps->s = (const unsigned char *)s;
    ps->n = n;
    ps->scans = SANDBOX_PATTERN_SCANS;
    if (anchor_ok && lp > 0 && *p == '^') {
        p++;
        starts = 1;
    } else {
        starts = (double)n + 1;
    }
    for (q = p; q < end;) {
        const char *nq = pat_next(q, end, &it);

        if (nq == NULL) {
            last_fallible = end;
            break;
        }
        if (pat_fallible(&it)) {
            last_fallible = nq;
        }
        q = nq;
    }
    for (q = p; q < end && starts * (a + b) + scan + tail_scan <= SANDBOX_PATTERN_STEPS;) {
        const char *nq = pat_next(q, end, &it);
        double r;
        int ff, disjoint;

        if (nq == NULL) {
            a += b; /* malformed from here: Lua raises when it arrives */
            break;
        }
        q = nq;
        if (it.kind == PAT_BALANCE || it.kind == PAT_BACKREF) {
            a += b * ((double)n + 1);
            continue;
        }
        if (it.kind != PAT_SINGLE || it.quant == 0) {
            a += b;
            continue;
        }
        if (nq >= last_fallible) {
            a += b;
            tail_scan = (double)n + 1;
            continue;
        }
        pat_item_set(ps, &it, set);
        disjoint = pat_first(ps, nq, end, first, &ff);
        for (int i = 0; disjoint && i < 32; i++) {
            disjoint = (set[i] & first[i]) == 0;
        }
        if (it.quant == '?') {
            if (disjoint) {
                a += b * (2 + ff);
            } else {
                a += b;
                b *= 2;
            }
            continue;
        }
        r = pat_run(ps, set);
        scan += (double)n;
        if (disjoint) {
            a += b * (r + 1) * (1 + ff);
        } else {
            a += b * (r + 1);
            b *= r + 1;
        }
    }
    free(ps);
    return starts * (a + b) + scan + tail_scan;
}

/* Does the pattern have no magic characters (lstrlib's nospecials)? */
static int
pat_plain(const char *p, size_t lp)
{
    for (size_t i = 0; i < lp; i++) {
        if (p[i] != '\0' && strchr("^$*+?.([%-", p[i]) != NULL) {
            return 0;
        }
    }
    return 1;
}

/* Refuse a pattern call whose worst case is over the bound; charge it otherwise. */
static void
sandbox_check_pattern(lua_State *L, double cost, size_t n)
{
    if (!(cost <= SANDBOX_PATTERN_STEPS)) {
        luaL_error(L, "pattern too complex for a subject of %d bytes",
                   (int)(n > INT32_MAX ? INT32_MAX : n));
    }
    sandbox_charge(L, cost);
}

static int
l_sandbox_string_find(lua_State *L)
{
    size_t n, lp;
    const char *s = luaL_checklstring(L, 1, &n);
    const char *p = luaL_checklstring(L, 2, &lp);
    double cost;

    if (lua_toboolean(L, 4) || pat_plain(p, lp)) {
        /* memchr + memcmp at each start */
        cost = lp == 0 || lp > n ? 1 : ((double)(n - lp) + 1) * (double)lp;
    } else {
        cost = pat_cost(s, n, p, lp, 1);
    }
    sandbox_check_pattern(L, cost, n);
    return sandbox_call_orig(L);
}

static int
l_sandbox_string_match(lua_State *L)
{
    size_t n, lp;
    const char *s = luaL_checklstring(L, 1, &n);
    const char *p = luaL_checklstring(L, 2, &lp);

    sandbox_check_pattern(L, pat_cost(s, n, p, lp, 1), n);
    return sandbox_call_orig(L);
}

/* string.gmatch: the whole iteration is bounded (and charged) when it is created. */
static int
l_sandbox_string_gmatch(lua_State *L)
{
    size_t n, lp;
    const char *s = luaL_checklstring(L, 1, &n);
    const char *p = luaL_checklstring(L, 2, &lp);

    sandbox_check_pattern(L, pat_cost(s, n, p, lp, 0), n);
    return sandbox_call_orig(L);
}

static int
l_sandbox_string_gsub(lua_State *L)
{
    size_t n, lp;
    const char *s = luaL_checklstring(L, 1, &n);
    const char *p = luaL_checklstring(L, 2, &lp);
    double cost = pat_cost(s, n, p, lp, 1);

    if (lua_type(L, 3) == LUA_TSTRING) {
        double matches = (double)n + 1;
        lua_Integer max_s = luaL_optinteger(L, 4, (lua_Integer)n + 1);

        if ((double)max_s < matches) {
            matches = max_s < 0 ? 0 : (double)max_s;
        }
        cost += matches * (double)lua_rawlen(L, 3);
    }
    sandbox_check_pattern(L, cost, n);
    return sandbox_call_orig(L);
}

/* ---- building the state ---- */

/* Replace field name of the table at t with the C closure f whose upvalue 1 is the
 * original value. */
static void
sandbox_wrap(lua_State *L, int t, const char *name, lua_CFunction f)
{
    t = lua_absindex(L, t);
    lua_getfield(L, t, name);
    lua_pushcclosure(L, f, 1);
    lua_setfield(L, t, name);
}

/* sandbox_wrap with the qualified name ("lib.name", or "name" without lib) as upvalue 2, for the
 * wrappers that serve several functions. */
static void
sandbox_wrap_named(lua_State *L, int t, const char *lib, const char *name, lua_CFunction f)
{
    t = lua_absindex(L, t);
    lua_getfield(L, t, name);
    if (lib != NULL) {
        lua_pushfstring(L, "%s.%s", lib, name);
    } else {
        lua_pushstring(L, name);
    }
    lua_pushcclosure(L, f, 2);
    lua_setfield(L, t, name);
}

static void
sandbox_open_lib(lua_State *L, const char *name, lua_CFunction openf)
{
    luaL_requiref(L, name, openf, 0);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sandbox_key_libs);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sandbox_key_globals);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, name);
    lua_pop(L, 2);
}

/* Protected setup of a new state: registry tables, the base whitelist and the four
 * libraries with their wrappers. */
static int
l_sandbox_setup(lua_State *L)
{
    static const char *const drop[] = { "load",  "loadfile", "dofile",         "require",
                                        "print", "warn",     "collectgarbage", NULL };

    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sandbox_key_globals);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sandbox_key_libs);
    lua_newtable(L); /* weak keys: a library version's proxies go with it */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sandbox_key_frozen);
    lua_newtable(L); /* tracebacks, weak keys: gone with their coroutine */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sandbox_key_tb);

    /* Base: the real global table (never seen by playbooks) loses the loaders too. */
    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    for (int i = 0; drop[i] != NULL; i++) {
        lua_pushnil(L);
        lua_setfield(L, -2, drop[i]);
    }
    sandbox_wrap(L, -1, "setmetatable", l_sandbox_setmetatable);
    sandbox_wrap(L, -1, "rawset", l_sandbox_rawset);
    sandbox_wrap_named(L, -1, NULL, "select", l_sandbox_string_count);
    lua_pushcfunction(L, l_sandbox_next);
    lua_setfield(L, -2, "next");
    lua_pushcfunction(L, l_sandbox_pairs);
    lua_setfield(L, -2, "pairs");
    lua_pushcfunction(L, l_sandbox_tostring);
    lua_setfield(L, -2, "tostring");
    lua_pushcfunction(L, l_sandbox_xpcall);
    lua_setfield(L, -2, "xpcall");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sandbox_key_globals);
    for (int i = 0; sandbox_base_keep[i] != NULL; i++) {
        lua_getfield(L, -2, sandbox_base_keep[i]);
        lua_setfield(L, -2, sandbox_base_keep[i]);
    }
    lua_getfield(L, -2, "setmetatable");
    lua_setfield(L, -2, "setmetatable");
    lua_getfield(L, -2, "rawset");
    lua_setfield(L, -2, "rawset");
    lua_getfield(L, -2, "xpcall");
    lua_setfield(L, -2, "xpcall");
    lua_pop(L, 2);

    /* string: the real table is also the string metatable's __index, so method calls
     * ("x"):rep() go through the same wrappers. */
    sandbox_open_lib(L, LUA_STRLIBNAME, luaopen_string);
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    sandbox_wrap(L, -1, "rep", l_sandbox_string_rep);
    sandbox_wrap(L, -1, "find", l_sandbox_string_find);
    sandbox_wrap(L, -1, "match", l_sandbox_string_match);
    sandbox_wrap(L, -1, "gmatch", l_sandbox_string_gmatch);
    sandbox_wrap(L, -1, "gsub", l_sandbox_string_gsub);
    sandbox_wrap(L, -1, "format", l_sandbox_string_format);
    sandbox_wrap(L, -1, "pack", l_sandbox_string_pack);
    sandbox_wrap_named(L, -1, "string", "upper", l_sandbox_string_linear);
    sandbox_wrap_named(L, -1, "string", "lower", l_sandbox_string_linear);
    sandbox_wrap_named(L, -1, "string", "reverse", l_sandbox_string_linear);
    sandbox_wrap_named(L, -1, "string", "char", l_sandbox_string_count);
    sandbox_wrap_named(L, -1, "string", "byte", l_sandbox_string_count);
    lua_pop(L, 1);

    sandbox_open_lib(L, LUA_TABLIBNAME, luaopen_table);
    lua_getfield(L, -1, LUA_TABLIBNAME);
    sandbox_wrap(L, -1, "concat", l_sandbox_table_concat);
    sandbox_wrap(L, -1, "unpack", l_sandbox_table_unpack);
    sandbox_wrap(L, -1, "move", l_sandbox_table_move);
    lua_pushcfunction(L, l_sandbox_table_sort);
    lua_setfield(L, -2, "sort");
    lua_pushcfunction(L, l_sandbox_table_insert);
    lua_setfield(L, -2, "insert");
    lua_pushcfunction(L, l_sandbox_table_remove);
    lua_setfield(L, -2, "remove");
    sandbox_wrap_named(L, -1, "table", "pack", l_sandbox_string_count);
    lua_pop(L, 1);

    /* math: random numbers come from the engine (journaled), never from the state. */
    sandbox_open_lib(L, LUA_MATHLIBNAME, luaopen_math);
    lua_getfield(L, -1, LUA_MATHLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "random");
    lua_pushnil(L);
    lua_setfield(L, -2, "randomseed");
    lua_pop(L, 1);

    sandbox_open_lib(L, LUA_UTF8LIBNAME, luaopen_utf8);
    lua_getfield(L, -1, LUA_UTF8LIBNAME);
    sandbox_wrap_named(L, -1, "utf8", "char", l_sandbox_string_count);
    sandbox_wrap_named(L, -1, "utf8", "len", l_sandbox_string_linear);
    sandbox_wrap_named(L, -1, "utf8", "codepoint", l_sandbox_string_linear);
    sandbox_wrap_named(L, -1, "utf8", "offset", l_sandbox_string_linear);
    lua_pop(L, 1);
    return 0;
}

/* Run f(ud) protected on sb's main thread; log and return -1 on error. */
static int
sandbox_protected(struct sandbox *sb, lua_CFunction f, void *ud, const char *what)
{
    lua_State *L = sb->L;
    int top = lua_gettop(L);
    int rc = 0;

    lua_pushcfunction(L, f);
    lua_pushlightuserdata(L, ud);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        log_err("sandbox.%s err=%s", what,
                log_quote(lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?"));
        rc = -1;
    }
    lua_settop(L, top);
    return rc;
}

/* Create a sandbox around a bare state: the capped allocator and the panic handler, no
 * library, no task on the main thread. Returns NULL with *errp when memory_cap cannot
 * hold a bare state. */
static struct sandbox *
sandbox_create(size_t memory_cap, char **errp)
{
    struct sandbox *sb = xcalloc(1, sizeof(*sb));
    lua_State *L;

    sb->cap = memory_cap;
    L = lua_newstate(sandbox_alloc, sb);
    if (L == NULL) {
        free(sb);
        kg_err(errp, "sandbox: a memory cap of %zu bytes is too small for a Lua state", memory_cap);
        return NULL;
    }
    sb->L = L;
    lua_atpanic(L, sandbox_panic);
    *(struct sandbox_task **)lua_getextraspace(L) = NULL;
    return sb;
}

struct sandbox *
sandbox_new(size_t memory_cap, char **errp)
{
    struct sandbox *sb = sandbox_create(memory_cap, errp);
    lua_State *L;

    if (sb == NULL) {
        return NULL;
    }
    L = sb->L;
    lua_pushcfunction(L, l_sandbox_setup);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        kg_err(errp, "sandbox: cannot set up the Lua state (memory cap %zu bytes): %s", memory_cap,
               lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
        sandbox_free(sb);
        return NULL;
    }
    return sb;
}

/* The data-only profile opens nothing: lua_newstate leaves an empty global table and no
 * string metatable, so a chunk can reach no function at all. Its budget is sb->task,
 * attached to the main thread, where the caller runs its chunk (lua_pcall). */
struct sandbox *
sandbox_new_data(size_t memory_cap, uint64_t instructions, char **errp)
{
    struct sandbox *sb = sandbox_create(memory_cap, errp);

    if (sb == NULL) {
        return NULL;
    }
    sb->data = 1;
    sandbox_set_budget(sb, instructions);
    return sb;
}

/* Set the budget of a data-only sandbox's main thread, counted from zero. With a budget
 * the main thread counts as running (sb->running), so that the allocator arms its hook
 * early after much allocation, as sandbox_resume does for a run; without one the hook
 * is removed and nothing is counted. */
void
sandbox_set_budget(struct sandbox *sb, uint64_t instructions)
{
    assert(sb->data);
    memset(&sb->task, 0, sizeof(sb->task));
    sb->task.max_instructions = instructions;
    sb->since_hook = 0;
    sb->early = 0;
    if (instructions == 0) {
        sb->running = NULL;
        lua_sethook(sb->L, NULL, 0, 0);
        return;
    }
    sb->running = sb->L;
    sandbox_task_attach(sb->L, &sb->task);
}

void
sandbox_set_memory_cap(struct sandbox *sb, size_t memory_cap)
{
    sb->cap = memory_cap;
}

void
sandbox_free(struct sandbox *sb)
{
    if (sb == NULL) {
        return;
    }
    lua_close(sb->L);
    free(sb);
}

void
sandbox_push_globals(struct sandbox *sb)
{
    lua_rawgetp(sb->L, LUA_REGISTRYINDEX, &sandbox_key_globals);
}

lua_State *
sandbox_state(struct sandbox *sb)
{
    return sb->L;
}

size_t
sandbox_memory(const struct sandbox *sb)
{
    return sb->used;
}

size_t
sandbox_memory_cap(const struct sandbox *sb)
{
    return sb->cap;
}

struct sandbox_add {
    const char *name;
    lua_CFunction f;
};

static int
l_sandbox_add_lib(lua_State *L)
{
    struct sandbox_add *a = lua_touserdata(L, 1);

    lua_pushcfunction(L, a->f);
    lua_pushstring(L, a->name);
    lua_call(L, 1, 1);
    if (!lua_istable(L, -1)) {
        return luaL_error(L, "library '%s' did not return a table", a->name);
    }
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE); /* names in tracebacks */
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, a->name);
    lua_pop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sandbox_key_libs);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, a->name);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sandbox_key_globals);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, a->name);
    return 0;
}

void
sandbox_add_lib(struct sandbox *sb, const char *name, lua_CFunction openf)
{
    struct sandbox_add a = { name, openf };

    assert(!sb->frozen && !sb->data);
    (void)sandbox_protected(sb, l_sandbox_add_lib, &a, "add_lib");
}

static int
l_sandbox_add_func(lua_State *L)
{
    struct sandbox_add *a = lua_touserdata(L, 1);

    lua_rawgetp(L, LUA_REGISTRYINDEX, &sandbox_key_globals);
    lua_pushcfunction(L, a->f);
    lua_setfield(L, -2, a->name);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sandbox_key_libs); /* a function replaces a lib */
    lua_pushnil(L);
    lua_setfield(L, -2, a->name);
    return 0;
}

void
sandbox_add_func(struct sandbox *sb, const char *name, lua_CFunction f)
{
    struct sandbox_add a = { name, f };

    assert(!sb->frozen && !sb->data);
    (void)sandbox_protected(sb, l_sandbox_add_func, &a, "add_func");
}

/* __index of every per-run environment: the frozen global, or an error for a name
 * that exists nowhere (it catches typos; it is not a security boundary). */
static int
l_sandbox_env_index(lua_State *L)
{
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) {
        return 1;
    }
    if (lua_type(L, 2) == LUA_TSTRING) {
        return luaL_error(L, "undeclared global '%s'", lua_tostring(L, 2));
    }
    return luaL_error(L, "undeclared global (a %s key)", luaL_typename(L, 2));
}

/* Protected part of sandbox_freeze: proxies for every library, the string metatable's
 * protection and the shared environment metatable. */
static int
l_sandbox_freeze(lua_State *L)
{
    int g;

    lua_rawgetp(L, LUA_REGISTRYINDEX, &sandbox_key_globals);
    g = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sandbox_key_libs);
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        const char *name = lua_tostring(L, -2);

        sandbox_make_proxy(L, name);
        lua_setfield(L, g, name); /* pops the proxy; the key stays for lua_next */
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sandbox_key_libs);

    /* getmetatable("") answers a read-only { __index = string } (the proxy). */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_createtable(L, 0, 1);
    lua_getfield(L, g, LUA_STRLIBNAME);
    lua_setfield(L, -2, "__index");
    sandbox_make_proxy(L, "string metatable");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);

    lua_createtable(L, 0, 2);
    lua_pushvalue(L, g);
    lua_pushcclosure(L, l_sandbox_env_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sandbox_key_envmt);
    return 0;
}

void
sandbox_freeze(struct sandbox *sb)
{
    assert(!sb->frozen && !sb->data);
    if (sandbox_protected(sb, l_sandbox_freeze, NULL, "freeze") == 0) {
        sb->frozen = 1;
    }
}

static int
l_sandbox_push_env(lua_State *L)
{
    lua_createtable(L, 0, 0);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sandbox_key_envmt);
    lua_setmetatable(L, -2);
    return 1;
}

/* A per-run environment is one empty table (56 bytes) sharing one metatable. It is
 * made in protected mode; if memory is exhausted nil is pushed instead, and a chunk
 * given it as _ENV fails at its first global. */
void
sandbox_push_env(struct sandbox *sb, lua_State *L)
{
    assert(sb->frozen);
    lua_pushcfunction(L, l_sandbox_push_env);
    if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
}

int
sandbox_load(lua_State *L, const char *src, size_t len, const char *chunkname, int env_idx,
             char **errp)
{
    char *name;
    int rc;

    env_idx = lua_absindex(L, env_idx);
    if (chunkname[0] == '=' || chunkname[0] == '@') {
        name = xstrdup(chunkname);
    } else {
        name = xasprintf("=%s", chunkname);
    }
    rc = luaL_loadbufferx(L, src, len, name, "t");
    free(name);
    if (rc != LUA_OK) {
        const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";

        if (strncmp(msg, "attempt to load", 15) == 0) {
            kg_err(errp, "%s: %s", chunkname, msg); /* no line for a binary chunk */
        } else {
            kg_err(errp, "%s", msg);
        }
        lua_pop(L, 1);
        return -1;
    }
    lua_pushvalue(L, env_idx);
    if (lua_setupvalue(L, -2, 1) == NULL) {
        lua_pop(L, 1);
    }
    return 0;
}
