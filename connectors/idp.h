/* idp.h: the `idp` Lua module (Entra ID Protection: risky users, risk detections). */
#ifndef KAGARI_IDP_H
#define KAGARI_IDP_H

#include <lua.h>

int luaopen_kagari_idp(lua_State *L);

#endif
