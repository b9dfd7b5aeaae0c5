/* norm_defender.h: the normalizer family for Defender XDR alerts and incidents (Graph), the
 * streaming API's tables. */
#ifndef KAGARI_NORM_DEFENDER_H
#define KAGARI_NORM_DEFENDER_H

#include "engine/normalize.h"

extern const struct norm_family norm_defender_family;

#endif
