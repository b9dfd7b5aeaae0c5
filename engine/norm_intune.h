/* norm_intune.h: the normalizer family for Intune audit logs and device compliance. */
#ifndef KAGARI_NORM_INTUNE_H
#define KAGARI_NORM_INTUNE_H

#include "engine/normalize.h"

extern const struct norm_family norm_intune_family;

#endif
