/* api_admin.h: the people's API routes a tenant's admins (and platform operators) use
 * to manage the tenant: a user's role, a TOTP reset (the user enrols again at the next
 * login: the admin never sees the secret), the address allow-list. Every change is
 * audited; a change that would lock the caller out is refused. */
#ifndef KAGARI_API_ADMIN_H
#define KAGARI_API_ADMIN_H

#include "engine/apireq.h"

void api_user_role(struct api_req *r);        /* POST /api/v1/tenants/{t}/users/{u}/role */
void api_user_reset_totp(struct api_req *r);  /* POST .../users/{u}/reset-totp */
void api_allowlist(struct api_req *r);        /* GET /api/v1/tenants/{t}/allowlist */
void api_allowlist_add(struct api_req *r);    /* POST /api/v1/tenants/{t}/allowlist */
void api_allowlist_remove(struct api_req *r); /* DELETE /api/v1/tenants/{t}/allowlist?cidr= */

#endif
