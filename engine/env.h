/* env.h: a tenant's playbook environment: a sandbox with the built-ins and every
 * registered connector's module, frozen (like Lua's linit.c, above both the scheduler
 * and the plug-ins). */
#ifndef KAGARI_ENV_H
#define KAGARI_ENV_H

#include <lua.h>
#include <stddef.h>

#include "engine/sandbox.h"

/* A new sandbox capped at memory_cap bytes with every playbook global. NULL and *errp
 * when the state cannot be created. */
struct sandbox *env_sandbox_new(size_t memory_cap, char **errp);
/* The same, but each connector's module is opened by open_module (called with the
 * module's name, like a module opener), which may wrap what env_module_opener(name)
 * gives: playbook tests record every connector call's arguments that way. */
struct sandbox *env_sandbox_wrapped(size_t memory_cap, lua_CFunction open_module, char **errp);
/* The opener of the connector module called name, or NULL. */
lua_CFunction env_module_opener(const char *name);

#endif
