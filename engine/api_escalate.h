/* api_escalate.h: the people's API routes for urgent escalations (engine/api.c's table):
 * GET /api/v1/escalations (the open ones of the caller's tenants), GET
 * /api/v1/tenants/<t>/escalations[?state=], GET .../escalations/<id> and POST
 * .../escalations/<id>/ack (answered after its commit; audited). */
#ifndef KAGARI_API_ESCALATE_H
#define KAGARI_API_ESCALATE_H

#include "engine/apireq.h"

void api_escalations_all(struct api_req *r);
void api_escalations(struct api_req *r);
void api_escalation(struct api_req *r);
void api_escalation_ack(struct api_req *r);

#endif
