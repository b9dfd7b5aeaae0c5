/* norm_entra.h: the normalizer family for Microsoft Entra ID sign-in and audit logs, Identity
 * Protection. */
#ifndef KAGARI_NORM_ENTRA_H
#define KAGARI_NORM_ENTRA_H

#include "engine/normalize.h"

extern const struct norm_family norm_entra_family;

#endif
