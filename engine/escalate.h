/* escalate.h: urgent escalation. The playbooks' escalate{} walks the tenant's contact
 * chain (notify.chain) as journaled effects until someone acknowledges: by the signed
 * one-time link (GET shows a page, POST acknowledges), the people's API, or the CLI. */
#ifndef KAGARI_ESCALATE_H
#define KAGARI_ESCALATE_H

#include "engine/config.h"
#include "engine/sandbox.h"
#include "engine/store.h"

/* The top-level escalation = { base_url =, key_file =, link_ttl = } block. */
extern const struct config_section escalate_section;

/* Make the escalation block known to the configuration loader (before loading). */
void escalate_config_init(void);
/* Add the escalate global to a tenant's sandbox (before it is frozen). */
void escalate_register(struct sandbox *sb);
/* Daemon start: read (or create) the link key, register the /ack/ route on the intake
 * listener and the metrics. -1 with *errp. escalate_stop undoes it. */
int escalate_start(const struct config *cfg, char **errp) KG_WUR;
void escalate_stop(void);
/* Split an acknowledge link's path, /ack/<tenant>/<id>/<contact>/<expires>/<mac>: a
 * tenant id ([a-z0-9-], 1 to 63), three numbers of 1 to 18 digits (contact at most
 * 1000000) and 64 lower-case hex digits. 0 with the parts filled, -1 for anything else
 * (the signature is not checked here). */
int escalate_parse_link(const char *path, char tenant[64], long long *id, int *contact,
                        long long *expires, char mac[65]);
struct tenant;

/* Acknowledge escalation id of daemon tenant t (the link, the people's API): the row in
 * the loop's transaction; after its commit done(arg, ok) runs, then the waits on it end
 * (the chain stops at once). 1 pending the commit (done will be called), 0 when it was
 * already acknowledged or does not exist, -1 with *errp (done is then not called). */
int escalate_ack(struct tenant *t, int64_t id, const char *by, const char *via,
                 void (*done)(void *arg, int ok), void *arg, char **errp) KG_WUR;
/* Acknowledge escalation id of tenant db (the CLI; the daemon notices within a second).
 * Returns 1 done, 0 when it was already acknowledged, -1 with *errp (unknown id). */
int escalate_ack_db(struct store_tenant *db, int64_t id, const char *by, const char *via,
                    char **errp);

#endif
