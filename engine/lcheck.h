/* lcheck.h: checks of the tables playbooks pass to C functions (options tables,
 * playbook{}), shared by the engine and the connectors. */
#ifndef KAGARI_LCHECK_H
#define KAGARI_LCHECK_H

#include <lua.h>

/* Find a key of the table at idx that keys (NULL-terminated) does not list: a misspelt
 * field would otherwise be ignored silently. Returns 0 when there is none (the stack
 * is unchanged), else 1 with the offending key's text pushed: its name, or "(not a
 * name)" for a key that is not a string. With several, non-string keys go first, then
 * the smallest name, so that the message does not depend on the table's order. */
int lcheck_unknown_key(lua_State *L, int idx, const char *const *keys);

/* When the table at idx is read-only (a table of a playbook library), replace it at idx
 * with a plain copy of its keys and values, so that C code may read it raw (lua_next,
 * lua_rawlen, lua_rawgeti), which sees nothing in a read-only table. Nested tables are
 * not copied. Raises on a memory error. */
void lcheck_plain(lua_State *L, int idx);

#endif
