/* registry.c: every connector and intake source, in one table each. The only engine
 * file that names a plug-in: adding one is a new file and a row here. */
#include "engine/registry.h"

#include "connectors/defender.h"
#include "connectors/graph.h"
#include "connectors/idp.h"
#include "connectors/intune.h"
#include "connectors/panos.h"
#include "connectors/panos_keygen.h"
#include "connectors/rest.h"
#include "connectors/security.h"
#include "engine/intake.h"
#include "engine/plugin.h"

static const struct connector *const connectors[] = {
    &graph_connector,  &idp_connector,  &security_connector, &defender_connector,
    &intune_connector, &rest_connector, &panos_connector,
};

static const struct plugin_verb *const verbs[] = {
    &panos_keygen_verb,
};

static const struct plugin_route *const routes[] = {
    &panos_edl_route,
};

static const struct source *const sources[] = {
    &intake_source,
};

void
registry_init(void)
{
    static int done;

    if (done) {
        return;
    }
    done = 1;
    for (size_t i = 0; i < sizeof(connectors) / sizeof(connectors[0]); i++) {
        plugin_add_connector(connectors[i]);
    }
    for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
        plugin_add_source(sources[i]);
    }
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        plugin_add_verb(verbs[i]);
    }
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        plugin_add_route(routes[i]);
    }
}
