/* env.h: a tenant's playbook environment: a sandbox with the built-ins and every
 * registered connector's module, frozen (like Lua's linit.c, above both the scheduler
 * and the plug-ins). */
#ifndef KAGARI_ENV_H
#define KAGARI_ENV_H

#include <stddef.h>

#include "engine/sandbox.h"

/* A new sandbox capped at memory_cap bytes with every playbook global. NULL and *errp
 * when the state cannot be created. */
struct sandbox *env_sandbox_new(size_t memory_cap, char **errp);

#endif
