/* norm_azfw.h: the normalizer family for Azure Firewall, legacy AzureDiagnostics and
 * resource-specific AZFW* records. */
#ifndef KAGARI_NORM_AZFW_H
#define KAGARI_NORM_AZFW_H

#include "engine/normalize.h"

extern const struct norm_family norm_azfw_family;

#endif
