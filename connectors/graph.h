/* graph.h: the `graph` Lua module (Entra ID users and sign-ins). */
#ifndef KAGARI_GRAPH_H
#define KAGARI_GRAPH_H

#include "engine/kagari.h"

extern const struct connector graph_connector;

#endif
