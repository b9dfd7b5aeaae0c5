/* rest.h: the generic `http` Lua module: JSON requests to hosts on the tenant's allow
 * list (webhooks, ticketing and other REST APIs without a connector of their own). */
#ifndef KAGARI_REST_H
#define KAGARI_REST_H

#include <lua.h>

int luaopen_kagari_http(lua_State *L);

#endif
