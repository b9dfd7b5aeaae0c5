/* env.c: the playbook globals, assembled: built-ins, then one module per connector. */
#include "engine/env.h"

#include "engine/builtin.h"
#include "engine/events.h"
#include "engine/plugin.h"

struct sandbox *
env_sandbox_new(size_t memory_cap, char **errp)
{
    const struct connector *const *cv;
    size_t n = plugin_connectors(&cv);
    struct sandbox *sb = sandbox_new(memory_cap, errp);

    if (sb == NULL) {
        return NULL;
    }
    builtin_register(sb);
    sandbox_add_lib(sb, "events", events_luaopen);
    for (size_t i = 0; i < n; i++) {
        sandbox_add_lib(sb, cv[i]->name, cv[i]->open);
    }
    sandbox_freeze(sb);
    return sb;
}
