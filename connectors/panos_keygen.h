/* panos_keygen.h: the kagari verb that makes a tenant's firewall API key. */
#ifndef KAGARI_PANOS_KEYGEN_H
#define KAGARI_PANOS_KEYGEN_H

#include "engine/kagari.h"

/* `kagari panos keygen --tenant ID [--config FILE]`: the key from the firewall's
 * type=keygen with an admin's user and password (asked once), printed encrypted. */
extern const struct plugin_verb panos_keygen_verb;

#endif
