/* api_read.h: the people's API read routes, scoped to the caller's tenants: tenants,
 * alerts, runs with their journals, a tenant's audit rows and users, the platform audit.
 * The route table (engine/api.c) has checked the caller's role in the tenant already. */
#ifndef KAGARI_API_READ_H
#define KAGARI_API_READ_H

#include "engine/apireq.h"

void api_tenants(struct api_req *r);        /* GET /api/v1/tenants */
void api_alerts(struct api_req *r);         /* GET /api/v1/tenants/{t}/alerts */
void api_summary(struct api_req *r);        /* GET /api/v1/tenants/{t}/summary */
void api_alert(struct api_req *r);          /* GET /api/v1/tenants/{t}/alerts/{id} */
void api_runs(struct api_req *r);           /* GET /api/v1/tenants/{t}/runs */
void api_run(struct api_req *r);            /* GET /api/v1/tenants/{t}/runs/{id} */
void api_tenant_audit(struct api_req *r);   /* GET /api/v1/tenants/{t}/audit */
void api_tenant_users(struct api_req *r);   /* GET /api/v1/tenants/{t}/users */
void api_platform_audit(struct api_req *r); /* GET /api/v1/audit (platform operators) */

/* A run as the API shows it (the caller deletes it). */
cJSON *api_run_json(const struct store_run *run, int64_t now);

#endif
