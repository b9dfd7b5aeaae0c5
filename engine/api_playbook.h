/* api_playbook.h: the people's API routes of the portal's playbook view, scoped to the
 * caller's tenant: the playbooks with their versions, deployments, triggers and runs,
 * a version's source, the runs of a version, and the dry-run switch. */
#ifndef KAGARI_API_PLAYBOOK_H
#define KAGARI_API_PLAYBOOK_H

#include "engine/apireq.h"

void api_playbooks(struct api_req *r);        /* GET /api/v1/tenants/{t}/playbooks */
void api_playbook(struct api_req *r);         /* GET …/playbooks/{name} */
void api_playbook_version(struct api_req *r); /* GET …/playbooks/{name}/versions/{v} */
void api_playbook_runs(struct api_req *r);    /* GET …/playbooks/{name}/versions/{v}/runs */
void api_playbook_dry_run(struct api_req *r); /* POST …/playbooks/{name}/dry-run */
void api_playbook_deploy(struct api_req *r);  /* POST /api/v1/playbooks (platform operators) */

#endif
