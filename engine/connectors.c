/* connectors.c: the list of connector modules and their shared set-up. */
#include "engine/connectors.h"

#include <unistd.h>

#include "connectors/breaker.h"
#include "connectors/call.h"
#include "connectors/defender.h"
#include "connectors/graph.h"
#include "connectors/httpc.h"
#include "connectors/idp.h"
#include "connectors/intune.h"
#include "connectors/limiter.h"
#include "connectors/oauth.h"
#include "connectors/rest.h"
#include "connectors/secret.h"
#include "connectors/security.h"
#include "engine/log.h"
#include "engine/loop.h"

static const struct {
    const char *name;
    lua_CFunction open;
} connectors[] = {
    { "graph", luaopen_kagari_graph },
    { "idp", luaopen_kagari_idp },
    { "security", luaopen_kagari_security },
    { "defender", luaopen_kagari_defender },
    { "intune", luaopen_kagari_intune },
    { "http", luaopen_kagari_http },
};

void
connectors_register(struct sandbox *sb)
{
    for (size_t i = 0; i < sizeof(connectors) / sizeof(connectors[0]); i++) {
        sandbox_add_lib(sb, connectors[i].name, connectors[i].open);
    }
}

int
connectors_init(const struct config *cfg, char **errp)
{
    struct call_settings cs = { NULL, NULL, 30, 5, 1 };

    if (httpc_init(loop_base(), errp) == -1) {
        return -1;
    }
    if (cfg != NULL) {
        cs.ca_file = cfg->connectors.ca_file;
        cs.proxy = cfg->connectors.proxy;
        cs.timeout = cfg->connectors.timeout;
        cs.max_attempts = cfg->connectors.max_attempts;
        cs.rate_limits = cfg->connectors.rate_limits;
        if (cfg->connectors.key_file != NULL && access(cfg->connectors.key_file, F_OK) == 0 &&
            secret_load_key(cfg->connectors.key_file, errp) == -1) {
            httpc_shutdown();
            return -1;
        }
    }
    call_configure(&cs);
    return 0;
}

void
connectors_shutdown(void)
{
    oauth_shutdown();
    httpc_shutdown();
    limiter_shutdown();
    breaker_shutdown();
    secret_shutdown();
    secret_unload_key();
}
