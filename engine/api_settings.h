/* api_settings.h: the people's API routes of the portal's Settings and dashboard: a
 * tenant's admin (or a platform operator) adds a user, who gets a one-time password shown
 * once and enrols TOTP at the first login, and disables or enables one; every role of the
 * tenant reads the escalations awaiting acknowledgement and the containment in force
 * (blocked values of the published lists, disabled accounts and isolated devices from the
 * runs' journal); the tenant's contact chain for urgent escalation, edited over the
 * configuration's. Changes are audited. */
#ifndef KAGARI_API_SETTINGS_H
#define KAGARI_API_SETTINGS_H

#include "engine/apireq.h"

void api_user_add(struct api_req *r);         /* POST /api/v1/tenants/{t}/users */
void api_user_disable(struct api_req *r);     /* POST .../users/{u}/disabled {"disabled": bool} */
void api_dash_escalations(struct api_req *r); /* GET /api/v1/tenants/{t}/dashboard/escalations */
void api_containment(struct api_req *r);      /* GET /api/v1/tenants/{t}/containment */
/* The contact chain for urgent escalation: the one saved here, else the configuration's
 * (GET); save one (POST {"contacts": [...]}); back to the configuration's (DELETE). */
void api_contacts(struct api_req *r);
void api_contacts_set(struct api_req *r);
void api_contacts_reset(struct api_req *r);

/* The check of a saved chain, on the body's bytes ({"contacts": [{name, email, webhooks,
 * wait, lang}]}): 0 with *out the chain to store (only the known keys, malloc'd JSON
 * array), or -1 with *errp naming the first fault. */
int api_settings_chain(const char *body, size_t len, char **out, char **errp) KG_WUR;

#endif
