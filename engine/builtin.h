/* builtin.h: the playbooks' built-in globals: playbook{}, sleep, now, log.*, json, and
 * the alert's methods. The effects among them use the effect driver like any connector
 * (engine/kagari.h). */
#ifndef KAGARI_BUILTIN_H
#define KAGARI_BUILTIN_H

#include "engine/sandbox.h"

/* Add the built-ins to a sandbox before its freeze, and the alert's metatable
 * ("kagari.alert") to its registry. */
void builtin_register(struct sandbox *sb);

#endif
