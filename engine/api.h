/* api.h: the HTTPS JSON API for people under /api/v1/ (the portal and scripts): its own
 * listener (the api = { ... } block), TLS 1.2 or later only, separate from the alert
 * intake. It authenticates a person (password + TOTP into a session cookie, or a
 * personal API token), checks the address allow-lists on every request, scopes every
 * query to the caller's tenants and audits every decision. Routes: docs/http-api.md. */
#ifndef KAGARI_API_H
#define KAGARI_API_H

#include "engine/apireq.h"
#include "engine/config.h"
#include "engine/store.h"
#include "engine/util.h"

struct api;

/* The block's section (registered by api_register, with the plug-ins' sections). */
extern const struct config_section api_config;
void api_register(void);
/* The filled block of a loaded configuration. */
const struct api_conf *api_conf(const struct config *cfg);
/* The Argon2id cost it asks for. */
struct auth_cost api_cost(const struct api_conf *c);

/* Start the listener when api.listen is set (*out NULL when it is not). st is the
 * control database, borrowed until api_free. */
int api_start(const struct config *cfg, struct store *st, struct api **out, char **errp) KG_WUR;
int api_port(const struct api *a);
void api_stop_accepting(struct api *a); /* graceful drain */
/* What a deployment through the API calls to have the playbook folder loaded again (the
 * daemon's reload: 0, or -1 when the folder could not be read). */
void api_set_reload(struct api *a, int (*reload)(void));
void api_free(struct api *a); /* NULL is a no-op */

#endif
