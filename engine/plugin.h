/* plugin.h: the descriptors of the two kinds of plug-in, connectors and intake sources,
 * and the runtime list the core walks (like fluent-bit's plugin structs). The core never
 * names a vendor: it opens every registered connector's Lua module in each tenant's
 * sandbox, reads every connector's settings block, opens and closes each tenant's
 * connector state, and starts every source. The one list of plug-ins that exist is
 * engine/registry.c. */
#ifndef KAGARI_PLUGIN_H
#define KAGARI_PLUGIN_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/alert.h"
#include "engine/config.h"

/* A connector: one Lua module for the playbooks, with what it needs per tenant. The
 * connectors of one vendor account (the Microsoft ones) share one settings block and
 * one tenant state: they point at the same config section and the core opens the
 * state once per section. */
struct connector {
    const char *name;    /* the playbooks' global and Lua module name, e.g. "graph" */
    const char *summary; /* one line for docs and `kagari` listings */
    lua_CFunction open;  /* luaopen_kagari_<name>: pushes the module table */
    /* Its block in each tenant's settings (tenants.<id>.<key>), or NULL for none. */
    const struct config_section *config;
    /* Per tenant, when the tenant has the block: make the state the module's functions
     * use (decrypted credentials). conf is the filled block. -1 with *errp fails the
     * tenant's start. NULL: no state. */
    int (*tenant_open)(const void *conf, void **state, char **errp);
    void (*tenant_close)(void *state); /* NULL state is never passed */
    /* Once at daemon start (cfg is the whole configuration) and at shutdown: what the
     * connector shares across tenants. Either may be NULL; connectors sharing one init
     * function get one call. */
    int (*init)(const struct config *cfg, char **errp);
    void (*shutdown)(void);
};

/* An intake source: listeners of its own and a normalizer for its native records. Every
 * source hands what it normalized to the one admit step (engine/admit.h), which stores,
 * deduplicates, routes and acknowledges after the commit. */
struct source {
    const char *name; /* "http", later "syslog", pollers */
    const char *summary;
    /* Its top-level settings block (<key> = { ... }), or NULL: start reads it with
     * config_block(cfg, config), defaults filled when the file has none. */
    const struct config_section *config;
    /* Open the listeners the configuration asks for. *state NULL: nothing configured
     * (not an error). -1 with *errp stops the daemon's start. */
    int (*start)(const struct config *cfg, void **state, char **errp);
    void (*drain)(void *state); /* stop accepting; admitted work still finishes */
    void (*stop)(void *state);  /* close and free */
    /* Append " key=value" pairs for the daemon's ready line (where it listens). */
    void (*describe)(void *state, struct buf *b);
    /* Turn one native record (a JSON document, a text line) into alerts. hint is the
     * source name a record without one gets (may be NULL). On success *alerts (n of
     * them, malloc'd, each to alert_free) ; -1 with *errp naming the offending field. */
    int (*normalize)(const char *rec, size_t len, const char *hint, int64_t received_ms,
                     struct alert **alerts, size_t *n, char **errp);
    /* A reload (SIGHUP, `kagari reload`) read the configuration file again into cfg
     * (valid for the call only: copy what is kept): apply what can change while running
     * and log what needs a restart. *state is start's (NULL when it configured nothing;
     * the source may set it now). NULL: nothing of the source changes before a restart. */
    void (*reload)(void **state, const struct config *cfg);
};

/* A verb of the kagari command that a plug-in brings for its own set-up (`kagari panos
 * keygen`): like a struct cmd_entry, it gets argv with argv[0] the verb and returns the
 * exit status. */
struct plugin_verb {
    const char *name;    /* the verb as typed */
    const char *usage;   /* as listed by kagari --help */
    const char *summary; /* one line for kagari --help */
    int (*exec)(int argc, char **argv);
};

/* A read-only resource a plug-in serves on the intake's HTTPS listener (the block list a
 * firewall pulls): GET requests whose path starts with prefix go to get, with the
 * Authorization header (or NULL). It returns the HTTP status, appends the body to body
 * (its cap bounds it) and sets *ctype (a static string); a 401 asks for HTTP Basic. The
 * route checks its own credentials: the intake's bearer tokens do not apply. */
struct plugin_route {
    const char *prefix; /* e.g. "/edl/" */
    int (*get)(const char *path, const char *authorization, struct buf *body, const char **ctype);
};

/* Add a plug-in (the same one twice is added once). Its config section, if any, becomes
 * known to the configuration loader. */
void plugin_add_connector(const struct connector *c);
void plugin_add_source(const struct source *s);
/* The registered plug-ins, in the order added. */
size_t plugin_connectors(const struct connector *const **v);
size_t plugin_sources(const struct source *const **v);
const struct source *plugin_source(const char *name); /* NULL when unknown */
void plugin_add_verb(const struct plugin_verb *v);
void plugin_add_route(const struct plugin_route *r);
/* The route whose prefix path starts with, or NULL. */
const struct plugin_route *plugin_route(const char *path);
size_t plugin_verbs(const struct plugin_verb *const **v);

/* Run every connector's init (once per distinct function); on failure the ones already
 * started are shut down. plugin_shutdown undoes it in reverse order. */
int plugin_init(const struct config *cfg, char **errp) KG_WUR;
void plugin_shutdown(void);

#endif
