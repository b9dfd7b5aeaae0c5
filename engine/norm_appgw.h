/* norm_appgw.h: the normalizer family for Application Gateway access logs and WAF logs. */
#ifndef KAGARI_NORM_APPGW_H
#define KAGARI_NORM_APPGW_H

#include "engine/normalize.h"

extern const struct norm_family norm_appgw_family;

#endif
