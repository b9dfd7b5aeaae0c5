/* state.h: the playbooks' memory across runs: the state module (a durable key-value
 * store per tenant; docs/playbooks.md "Memory across runs"). */
#ifndef KAGARI_STATE_H
#define KAGARI_STATE_H

#include <lua.h>

#define STATE_KEY_MAX 256              /* bytes of a key */
#define STATE_VALUE_MAX (64 * 1024)    /* bytes of a value as JSON */
#define STATE_TTL_DEFAULT (30 * 86400) /* seconds an entry lives without a ttl */
#define STATE_TTL_MAX (366 * 86400)    /* the longest ttl or window */
#define STATE_PRUNE_BATCH 32           /* expired entries deleted by each write */

/* The state module: get, put, incr, delete. Each call is an effect (journaled). */
int luaopen_kagari_state(lua_State *L);

#endif
