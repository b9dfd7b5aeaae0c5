/* security.h: the `security` Lua module (Graph security API: alerts_v2, incidents). */
#ifndef KAGARI_SECURITY_H
#define KAGARI_SECURITY_H

#include "engine/kagari.h"

extern const struct connector security_connector;

#endif
