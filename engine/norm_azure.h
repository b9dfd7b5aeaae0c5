/* norm_azure.h: the normalizer family for Azure Activity log and Azure Bastion. */
#ifndef KAGARI_NORM_AZURE_H
#define KAGARI_NORM_AZURE_H

#include "engine/normalize.h"

extern const struct norm_family norm_azure_family;

#endif
