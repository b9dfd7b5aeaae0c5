/* defender.h: the `defender` Lua module (Microsoft Defender for Endpoint: machines,
 * machine actions such as isolation, and indicators). */
#ifndef KAGARI_DEFENDER_H
#define KAGARI_DEFENDER_H

#include "engine/kagari.h"

extern const struct connector defender_connector;

#endif
