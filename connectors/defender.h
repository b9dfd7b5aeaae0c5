/* defender.h: the `defender` Lua module (Microsoft Defender for Endpoint: machines,
 * machine actions such as isolation, and indicators). */
#ifndef KAGARI_DEFENDER_H
#define KAGARI_DEFENDER_H

#include <lua.h>

int luaopen_kagari_defender(lua_State *L);

#endif
