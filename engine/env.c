/* env.c: the playbook globals, assembled: built-ins, then one module per connector. */
#include "engine/env.h"

#include <string.h>

#include "engine/approval.h"
#include "engine/builtin.h"
#include "engine/escalate.h"
#include "engine/events.h"
#include "engine/plugin.h"

struct sandbox *
env_sandbox_wrapped(size_t memory_cap, lua_CFunction open_module, char **errp)
{
    const struct connector *const *cv;
    size_t n = plugin_connectors(&cv);
    struct sandbox *sb = sandbox_new(memory_cap, errp);

    if (sb == NULL) {
        return NULL;
    }
    builtin_register(sb);
    sandbox_add_lib(sb, "events", events_luaopen);
    approval_register(sb);
    escalate_register(sb);
    for (size_t i = 0; i < n; i++) {
        sandbox_add_lib(sb, cv[i]->name, open_module != NULL ? open_module : cv[i]->open);
    }
    sandbox_freeze(sb);
    return sb;
}

struct sandbox *
env_sandbox_new(size_t memory_cap, char **errp)
{
    return env_sandbox_wrapped(memory_cap, NULL, errp);
}

lua_CFunction
env_module_opener(const char *name)
{
    const struct connector *const *cv;
    size_t n = plugin_connectors(&cv);

    for (size_t i = 0; i < n; i++) {
        if (strcmp(cv[i]->name, name) == 0) {
            return cv[i]->open;
        }
    }
    return NULL;
}
