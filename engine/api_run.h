/* api_run.h: POST /api/v1/tenants/<t>/alerts/<id>/runs {"playbook": name}: a person
 * starts a loaded playbook on a stored alert; the run records them as its requester
 * (answered 201 after the commit; audited as run.start). */
#ifndef KAGARI_API_RUN_H
#define KAGARI_API_RUN_H

#include "engine/apireq.h"

void api_run_start(struct api_req *r);

#endif
