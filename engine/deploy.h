/* deploy.h: who deployed which playbook version when. A version is recorded in every
 * tenant database as it is deployed: by `kagari playbook deploy` (the OS user who ran
 * it), or found by the daemon when it (re)loads the playbook folder (nobody recorded). */
#ifndef KAGARI_DEPLOY_H
#define KAGARI_DEPLOY_H

#include <stdint.h>

#include "engine/playbook.h"
#include "engine/store.h"

/* In the daemon, after the playbook folder was (re)loaded: store each version of set in
 * every open tenant's database and record it as deployed (via "reload", deployer not
 * known) where it is not the latest recorded version of its playbook already. Failures
 * are logged; a tenant whose database is locked gets its record at the next reload. */
void deploy_record_loaded(const struct playbook_set *set);

/* Store pb's version (source and libraries) in t's database and record it deployed by
 * by (may be NULL) via via ("cli", "api", "reload") at when_ms. Outside the daemon the
 * statements commit one by one; in it the caller holds the transaction (loop_write).
 * 0 or -1 with *errp. */
int deploy_record(struct store_tenant *t, const struct playbook *pb, int64_t when_ms,
                  const char *by, const char *via, char **errp) KG_WUR;

/* The OS user running this process, for the record: the login name of the real user
 * id; "alice (sudo as kagari)" when alice started it through sudo as another user. A
 * malloc'd string. */
char *deploy_os_user(void);

#endif
