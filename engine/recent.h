/* recent.h: the playbooks' look at earlier alerts: the alerts module (alerts.recent). */
#ifndef KAGARI_RECENT_H
#define KAGARI_RECENT_H

#include <lua.h>

#define RECENT_LIMIT_DEFAULT 20
#define RECENT_LIMIT_MAX 100
#define RECENT_SINCE_DEFAULT 3600      /* seconds */
#define RECENT_SINCE_MAX (366 * 86400) /* seconds */

/* The alerts module: recent{observable=, type=, since=, source=, limit=}. */
int luaopen_kagari_alerts(lua_State *L);

#endif
