/* registry.h: the one list of plug-ins that exist (like Lua's linit.c). */
#ifndef KAGARI_REGISTRY_H
#define KAGARI_REGISTRY_H

/* Register every connector and intake source (once; later calls do nothing). Call it
 * before loading a configuration: the connectors' settings blocks become known. */
void registry_init(void);

#endif
