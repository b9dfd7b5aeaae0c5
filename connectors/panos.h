/* panos.h: the playbooks' `panos` module: a Palo Alto Networks firewall through the
 * PAN-OS XML API (reference: connectors.md section 7): User-ID IP-to-tag registration
 * for blocks that need no commit (batched across runs), address objects and groups,
 * commits with their jobs polled, guardrails per tenant, and the block list served to
 * firewalls that pull it (an External Dynamic List). */
#ifndef KAGARI_PANOS_H
#define KAGARI_PANOS_H

#include <stddef.h>

#include "engine/kagari.h"

extern const struct connector panos_connector;
/* GET /edl/<tenant>[/<tag>] on the intake listener: the tenant's block list (EDL). */
extern const struct plugin_route panos_edl_route;

#endif
