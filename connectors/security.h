/* security.h: the `security` Lua module (Graph security API: alerts_v2, incidents). */
#ifndef KAGARI_SECURITY_H
#define KAGARI_SECURITY_H

#include <lua.h>

int luaopen_kagari_security(lua_State *L);

#endif
