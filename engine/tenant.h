/* tenant.h: the daemon's tenants: each has its own database, Lua state and runs. */
#ifndef KAGARI_TENANT_H
#define KAGARI_TENANT_H

#include <lua.h>
#include <stddef.h>

#include "engine/config.h"
#include "engine/playbook.h"
#include "engine/sandbox.h"
#include "engine/store.h"

struct run;
struct connector;

/* A connector's per-tenant state (plugin.h tenant_open), one per settings section. */
struct tenant_plugin {
    const struct connector *c; /* the first connector with this section */
    void *state;
};

struct tenant {
    char id[64];
    struct store_tenant *db;         /* owned */
    struct sandbox *sb;              /* owned; one Lua state for all of this tenant's runs */
    const struct config_tenant *cfg; /* its settings in the configuration, or NULL */
    struct tenant_plugin *plugins;   /* connector states opened for it */
    size_t nplugins;
    struct playbook **versions; /* playbook versions known to be in db (one ref each) */
    size_t nversions;
    struct run *runs; /* in-memory runs (run.c's list) */
    size_t nruns;
    struct tenant *next;
};

/* What the daemon's start-up gives the tenants, so that this module needs neither the
 * scheduler nor the playbook environment: how to make a tenant's sandbox, and what to
 * do with a tenant's runs before it closes. */
struct tenant_hooks {
    struct sandbox *(*sandbox_new)(size_t memory_cap, char **errp);
    void (*closing)(struct tenant *t); /* may be NULL */
};

/* Open every tenant of the control database: its database, its sandbox and its
 * connectors' states. cfg (may be NULL) gives each tenant its settings; secrets in it
 * are decrypted with the loaded key (secret_load_key). */
int tenants_open(struct store *st, size_t memory_cap, const struct config *cfg,
                 const struct tenant_hooks *hooks, char **errp) KG_WUR;
void tenants_close(void);
struct tenant *tenants_first(void); /* then t->next */
struct tenant *tenant_find(const char *id);
/* The tenant whose intake token this is, found by the token's sha256 digest (the store
 * keeps only digests); a tenant added since start is opened on first use. NULL when
 * unknown. */
struct tenant *tenant_for_token(const char *token);

/* Append a row for tenant t to the audit table of control.db (written at once, outside
 * the loop's transaction: a crash may lose or, after a replay, repeat the row of an event
 * that was not yet durable). actor is a person's name, "engine" for what the engine did
 * by itself, or NULL; detail is JSON text or NULL. A failure is logged, never returned. */
void tenant_audit(const struct tenant *t, const char *actor, const char *action, const char *target,
                  const char *outcome, const char *detail);
/* The same, once the loop's transaction of t in this iteration has committed what the
 * row reports (never for a change rolled back); arguments are copied. */
void tenant_audit_committed(const struct tenant *t, const char *actor, const char *action,
                            const char *target, const char *outcome, const char *detail);

/* The version of pb stored in t's database: stores it the first time. */
int tenant_save_version(struct tenant *t, struct playbook *pb, char **errp) KG_WUR;
/* A version by hash: from memory or from t's database (NULL when unknown). Borrowed. */
struct playbook *tenant_version(struct tenant *t, const char *hash);

/* The configuration's value of a portal-editable setting (tenant_setting_seed in
 * engine/kagari.h), as its plug-in writes it: malloc'd JSON, or NULL. */
char *tenant_setting_default(struct tenant *t, const char *key);

#endif
