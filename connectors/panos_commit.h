/* panos_commit.h: panos.commit(): the firewall's commit driven on timers while the run
 * is parked on one effect (see panos_commit.c). */
#ifndef KAGARI_PANOS_COMMIT_H
#define KAGARI_PANOS_COMMIT_H

#include <lua.h>

/* The Lua function panos.commit({description =}). */
int panos_commit_lua(lua_State *L);
/* Free what the module keeps (runs are gone by then). */
void panos_commit_shutdown(void);

#endif
