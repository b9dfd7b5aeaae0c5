/* library.h: playbook libraries (lib/NAME.lua, loaded with require "NAME") in the sandbox.
 * A library is evaluated once per playbook version and Lua state, in a thread of its own
 * that is no run (so it cannot call effects), with its own instruction budget; its result
 * and its globals are then made read-only (sandbox_freeze_value) and cached. */
#ifndef KAGARI_LIBRARY_H
#define KAGARI_LIBRARY_H

#include <lua.h>
#include <stddef.h>

#include "engine/sandbox.h"

#define LIBRARY_MAX 64                        /* libraries one playbook may use, all told */
#define LIBRARY_EVAL_INSTRUCTIONS 10000000ULL /* budget of one library's evaluation */

/* One library file as a playbook version uses it. */
struct playbook_lib {
    char *name;   /* the require name */
    char *source; /* its text, NUL-terminated */
    size_t len;
};

/* Is name a valid library name: 1 to 64 of [A-Za-z0-9_-] (no dots, no separators)? */
int library_name_valid(const char *name);

/* Push the require function of one playbook version (version is its hash): made the first
 * time L's state sees the version and cached in its registry, so each library of the
 * version is evaluated at most once in that state. require(name) returns the library's
 * read-only result (true when it returns nothing); it raises "require 'x': ..." for a name
 * that is not among libs, "require cycle: a -> b -> a", or the library's own error
 * ("lib/x.lua:3: ..."). libs are copied. Raises on a memory error. */
void library_push_require(lua_State *L, struct sandbox *sb, const char *version,
                          const struct playbook_lib *libs, size_t n);

/* The global require of a chunk that has no libraries: raises "require 'x': no library
 * ...". A playbook version with libraries has its own require in its environment. */
int library_lua_unbound(lua_State *L);

/* Has L's state already evaluated library name of this version? (For tests.) */
int library_cached(lua_State *L, const char *version, const char *name);

#endif
