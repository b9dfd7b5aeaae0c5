/* idp.h: the `idp` Lua module (Entra ID Protection: risky users, risk detections). */
#ifndef KAGARI_IDP_H
#define KAGARI_IDP_H

#include "engine/kagari.h"

extern const struct connector idp_connector;

#endif
