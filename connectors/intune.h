/* intune.h: the `intune` Lua module (Intune managed devices through Graph). */
#ifndef KAGARI_INTUNE_H
#define KAGARI_INTUNE_H

#include "engine/kagari.h"

extern const struct connector intune_connector;

#endif
