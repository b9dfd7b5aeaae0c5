/* registry.c: every connector and intake source, in one table each. The only engine
 * file that names a plug-in: adding one is a new file and a row here. */
#include "engine/registry.h"

#include "connectors/defender.h"
#include "connectors/graph.h"
#include "connectors/idp.h"
#include "connectors/intune.h"
#include "connectors/notify.h"
#include "connectors/panos.h"
#include "connectors/panos_keygen.h"
#include "connectors/poll_graph.h"
#include "connectors/rest.h"
#include "connectors/security.h"
#include "engine/api.h"
#include "engine/events.h"
#include "engine/intake.h"
#include "engine/norm_appgw.h"
#include "engine/norm_azfw.h"
#include "engine/norm_azure.h"
#include "engine/norm_defender.h"
#include "engine/norm_entra.h"
#include "engine/norm_intune.h"
#include "engine/normalize.h"
#include "engine/plugin.h"
#include "engine/syslog.h"

static const struct connector *const connectors[] = {
    &graph_connector,  &idp_connector,  &security_connector, &defender_connector,
    &intune_connector, &rest_connector, &notify_connector,   &panos_connector,
};

static const struct plugin_verb *const verbs[] = {
    &panos_keygen_verb,
};

static const struct plugin_route *const routes[] = {
    &panos_edl_route,
};

static const struct source *const sources[] = {
    &intake_source,
    &syslog_source,
    &poll_graph_source,
};

/* The source-specific normalizers, asked in this order which family a record's shape
 * belongs to (their shapes do not overlap; the order only matters for speed). */
static const struct norm_family *const families[] = {
    &norm_entra_family, &norm_azfw_family,     &norm_appgw_family,
    &norm_azure_family, &norm_defender_family, &norm_intune_family,
};

void
registry_init(void)
{
    static int done;

    if (done) {
        return;
    }
    done = 1;
    events_register(); /* the event store's tenant block, read with the sources' records */
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
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        normalize_add_family(families[i]);
    }
    api_register(); /* the core's own api = { ... } block, beside the plug-ins' */
}
