/* poll_graph.h: the Graph poller, an intake source: security alerts_v2 and incidents,
 * Identity Protection risk detections and sign-in logs, per tenant, by their last
 * update, with a durable cursor (docs/sources.md "Graph polling"). */
#ifndef KAGARI_POLL_GRAPH_H
#define KAGARI_POLL_GRAPH_H

#include "engine/kagari.h"

extern const struct source poll_graph_source;

#endif
