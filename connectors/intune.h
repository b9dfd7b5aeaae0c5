/* intune.h: the `intune` Lua module (Intune managed devices through Graph). */
#ifndef KAGARI_INTUNE_H
#define KAGARI_INTUNE_H

#include <lua.h>

int luaopen_kagari_intune(lua_State *L);

#endif
