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

struct tenant {
    char id[64];
    struct store_tenant *db; /* owned */
    struct sandbox *sb;      /* owned; one Lua state for all of this tenant's runs */
    const struct config_tenant *cfg; /* its settings in the configuration, or NULL */
    char *ms_secret;         /* the decrypted Microsoft client secret, or NULL */
    struct playbook **versions; /* playbook versions known to be in db (one ref each) */
    size_t nversions;
    struct run *runs; /* in-memory runs (run.c's list) */
    size_t nruns;
    struct tenant *next;
};

/* Open every tenant of the control database: its database and its sandbox. cfg (may be
 * NULL) gives each tenant its settings; secrets in it are decrypted with the loaded
 * key (secret_load_key). */
int tenants_open(struct store *st, size_t memory_cap, const struct config *cfg,
                 char **errp) KG_WUR;
void tenants_close(void);
struct tenant *tenants_first(void); /* then t->next */
struct tenant *tenant_find(const char *id);
/* The tenant whose intake token this is, found by the token's sha256 digest (the store
 * keeps only digests); a tenant added since start is opened on first use. NULL when
 * unknown. */
struct tenant *tenant_for_token(const char *token);

/* The version of pb stored in t's database: stores it the first time. */
int tenant_save_version(struct tenant *t, struct playbook *pb, char **errp) KG_WUR;
/* A version by hash: from memory or from t's database (NULL when unknown). Borrowed. */
struct playbook *tenant_version(struct tenant *t, const char *hash);

#endif
