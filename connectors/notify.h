/* notify.h: the playbooks' notify module: mail over SMTP, Teams, Slack and signed
 * webhooks, each a journaled effect; the tenant's destinations and contact chain. */
#ifndef KAGARI_NOTIFY_H
#define KAGARI_NOTIFY_H

#include "engine/kagari.h"

extern const struct connector notify_connector;

#endif
