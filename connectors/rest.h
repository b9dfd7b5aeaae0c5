/* rest.h: the generic `http` Lua module: JSON requests to hosts on the tenant's allow
 * list (webhooks, ticketing and other REST APIs without a connector of their own). */
#ifndef KAGARI_REST_H
#define KAGARI_REST_H

#include "engine/kagari.h"

/* tenants.<id>.http = { allow = { "hooks.example.jp", ... } } */
struct rest_conf {
    char **allow; /* host names, lowercase */
    size_t nallow;
};

extern const struct config_section rest_section;
extern const struct connector rest_connector;

#endif
