/* intake.h: the alert intake listener: POST /api/v1/alerts with a tenant's bearer
 * token, plus /healthz and /metrics. Alerts of one loop iteration are committed together
 * and each request is answered only after its alerts are durable. */
#ifndef KAGARI_INTAKE_H
#define KAGARI_INTAKE_H

#include "engine/config.h"
#include "engine/http.h"
#include "engine/plugin.h"
#include "engine/util.h"

struct intake;

/* The source descriptor the registry lists. */
extern const struct source intake_source;

/* Listen on cfg->intake.listen (TLS when cert and key are set) and register the
 * iteration phase that commits the batches. */
struct intake *intake_new(const struct config *cfg, char **errp);
int intake_port(const struct intake *in);
void intake_stop_accepting(struct intake *in); /* graceful drain */
void intake_free(struct intake *in);           /* NULL is a no-op */

/* Serve every request whose path starts with prefix (e.g. "/ack/") with fn on the intake
 * listener, before the 404. For other engine modules' routes (acknowledge links);
 * routes added later are tried first. fn answers the request (now or later). */
void intake_add_route(const char *prefix, void (*fn)(struct http_request *req, void *arg),
                      void *arg);

#endif
