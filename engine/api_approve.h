/* api_approve.h: the people's API routes for approvals: the queue across the caller's
 * tenants, a tenant's approvals, one with its votes, and a person's decision. */
#ifndef KAGARI_API_APPROVE_H
#define KAGARI_API_APPROVE_H

#include "engine/apireq.h"

void api_approvals_all(struct api_req *r);   /* GET /api/v1/approvals */
void api_approvals(struct api_req *r);       /* GET /api/v1/tenants/{t}/approvals */
void api_approval(struct api_req *r);        /* GET /api/v1/tenants/{t}/approvals/{id} */
void api_approval_decide(struct api_req *r); /* POST .../approvals/{id}/decision */

#endif
