/* sandbox.h: one lua_State per tenant for untrusted playbooks (docs/ARCHITECTURE.md "Sandbox").
 * The state has a capped allocator; its globals are frozen; each run gets a coroutine
 * with its own _ENV, an instruction budget, a wall-clock deadline and time slices.
 * A second, data-only profile evaluates a file that must compute values but call nothing
 * (kagari.conf.lua): the same allocator and budget, and no library at all. */
#ifndef KAGARI_SANDBOX_H
#define KAGARI_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "engine/util.h"

#define SANDBOX_HOOK_COUNT 1000 /* instructions between budget checks */

struct sandbox;

/* Budget bookkeeping of one coroutine. run.c embeds one in each run; the coroutine's
 * extra space (lua_getextraspace) points at it, so the hook and run_from_lua() find it. */
struct sandbox_task {
    void *owner;           /* the run */
    uint64_t instructions; /* used so far, in SANDBOX_HOOK_COUNT steps */
    uint64_t max_instructions;
    int64_t deadline_ms;  /* wall clock (util_now_ms); 0 = none */
    int64_t slice_end_us; /* util_mono_us; past it the hook yields when it can; 0 = never */
    int killed;           /* over a budget: every further hook raises again */
    char reason[96];      /* why it was killed */
};

/* Create a sandboxed state whose allocator refuses to grow past memory_cap bytes.
 * Opens base, table, string, math, utf8 only; removes load, loadfile, dofile, require,
 * collectgarbage, print, string.dump; wraps setmetatable (refuses __gc), rawset
 * (refuses frozen tables), table.move (bounded ranges), and the pattern functions
 * string.find/match/gmatch/gsub (refuse a pattern whose worst case on that subject
 * would not finish within budget); charges the C work of the other library functions
 * that grow with their input; replaces pairs, next, tostring and table.sort with
 * versions whose results are the same on every replay (fixed key order, no addresses,
 * a stable sort) and refuses string.format's %p; protects the string metatable. */
struct sandbox *sandbox_new(size_t memory_cap, char **errp);
void sandbox_free(struct sandbox *sb); /* NULL is a no-op */
lua_State *sandbox_state(struct sandbox *sb);
/* Push onto sandbox_state(sb) the table of its globals, for C code that looks at what a
 * playbook can reach (the lint). Never hand it to playbook code. */
void sandbox_push_globals(struct sandbox *sb);
size_t sandbox_memory(const struct sandbox *sb); /* bytes in use */
size_t sandbox_memory_cap(const struct sandbox *sb);
/* Change the cap; lowering it below what is in use only makes further growth fail. */
void sandbox_set_memory_cap(struct sandbox *sb, size_t memory_cap);

/* Create a data-only sandbox: a state with no library, no base function, no string
 * metatable and an empty global table, so that a chunk run in it can call nothing; the
 * caller gives the chunk its environment. Its main thread, where the caller runs the
 * chunk (lua_pcall), has a task (sandbox_task_of) with the given instruction budget, in
 * which every 64 bytes allocated count as one instruction, so that a loop of big
 * concatenations is stopped too. Over budget, the running chunk raises
 * "chunk:line: instruction budget exceeded (N)" and the task is marked killed. NULL
 * with *errp when memory_cap cannot hold a bare state. sandbox_add_*, sandbox_freeze
 * and sandbox_push_env are for playbook sandboxes only. Free with sandbox_free. */
struct sandbox *sandbox_new_data(size_t memory_cap, uint64_t instructions, char **errp);
/* Give a data-only sandbox's main thread a fresh budget of instructions (the count and
 * any kill are reset); 0 turns the budget off, e.g. for C code reading the results. */
void sandbox_set_budget(struct sandbox *sb, uint64_t instructions);

/* Add a global before sandbox_freeze: a library (openf's returned table, frozen as a
 * read-only proxy) or a single function. */
void sandbox_add_lib(struct sandbox *sb, const char *name, lua_CFunction openf);
void sandbox_add_func(struct sandbox *sb, const char *name, lua_CFunction f);
/* Freeze the globals: from now on library tables are read-only proxies whose metatables
 * are protected. Call once, after all sandbox_add_*. */
void sandbox_freeze(struct sandbox *sb);

/* Make the value at idx read-only, deeply, in place: a table becomes a read-only proxy
 * (like the library tables: reads, #, pairs and ipairs work; writes, rawset and
 * setmetatable raise "attempt to modify read-only table 'name'"), and so does every table
 * reachable from it, including those a Lua function keeps in its upvalues (other than
 * _ENV). Shared and cyclic structures stay shared. Other values are left as they are.
 * Raises on a memory error. Only after sandbox_freeze. */
void sandbox_freeze_value(lua_State *L, int idx, const char *name);

/* When the value at idx is a read-only proxy, push the table it reads (never to be
 * handed to playbook code) and return 1; else push nothing and return 0. Allocates
 * nothing and never raises (for the JSON encoder, which must see a library's tables). */
int sandbox_proxy_target(lua_State *L, int idx);

/* Push onto L a new per-run environment table: reads fall back to the frozen globals
 * and raise "undeclared global 'x'" for a name that exists nowhere; writes stay in the
 * table. Its metatable is protected. */
void sandbox_push_env(struct sandbox *sb, lua_State *L);

/* Load a text chunk (bytecode refused) and set its _ENV to the table at env_idx.
 * Pushes the function and returns 0, or returns -1 with *errp ("name:line: message"). */
int sandbox_load(lua_State *L, const char *src, size_t len, const char *chunkname, int env_idx,
                 char **errp) KG_WUR;

/* Point co's extra space at task and install the budget hook on co. */
void sandbox_task_attach(lua_State *co, struct sandbox_task *task);
/* The task of the running coroutine (NULL when none attached). */
struct sandbox_task *sandbox_task_of(lua_State *L);
/* Mark a task killed (e.g. a parked run's deadline passed) so that anything it runs
 * next, even a __close handler, raises at once. */
void sandbox_task_kill(lua_State *co, struct sandbox_task *task, const char *reason);

/* lua_resume for runs. On a fresh start (lua_status(co) == LUA_OK, the function below the
 * nargs arguments) the function runs under a protected C entry: Lua leaves hooks disabled
 * in a coroutine that an error raised by the budget hook has ended, so without the entry a
 * later lua_resetthread (or reuse) of it would run __close handlers with no budget. The
 * entry also records the traceback that sandbox_error_message shows. */
int sandbox_resume(lua_State *co, lua_State *from, int nargs, int *nresults);

/* Push the text tostring() gives a playbook for the value at idx: __tostring's result,
 * or for a table, function, userdata or thread its __name or type name and never an
 * address, so that replays of a run see the same text. May raise (a __tostring). */
void sandbox_tolstring(lua_State *L, int idx);

/* Render the error at the top of co (after a failed lua_resume) with a traceback,
 * without calling any metamethod of the error object. Returns a malloc'd string. */
char *sandbox_error_message(lua_State *co);

#endif
