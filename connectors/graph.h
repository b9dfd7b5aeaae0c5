/* graph.h: the `graph` Lua module (Entra ID users and sign-ins). */
#ifndef KAGARI_GRAPH_H
#define KAGARI_GRAPH_H

#include <lua.h>

int luaopen_kagari_graph(lua_State *L);

#endif
