/* connectors.h: the one list of connector Lua modules (like Lua's linit.c). */
#ifndef KAGARI_CONNECTORS_H
#define KAGARI_CONNECTORS_H

#include "engine/config.h"
#include "engine/sandbox.h"

/* Add every connector module as a global of a playbook sandbox (before its freeze). */
void connectors_register(struct sandbox *sb);

/* Start and stop what the connectors share: the HTTP client on the loop, the secrets
 * key, the call settings. cfg may be NULL (no outgoing calls configured). */
int connectors_init(const struct config *cfg, char **errp) KG_WUR;
void connectors_shutdown(void);

#endif
