/* oauth.h: OAuth 2.0 client credentials against the Microsoft identity platform (v2
 * token endpoint), with a client secret or a certificate (a signed JWT client
 * assertion), and a token cache per (authority, tenant, client, scope). */
#ifndef KAGARI_OAUTH_H
#define KAGARI_OAUTH_H

#include "engine/kagari.h"

struct oauth_app {
    const char *authority; /* "https://login.microsoftonline.com" (no trailing slash) */
    const char *tenant;    /* directory GUID or verified domain */
    const char *client_id;
    const char *secret;    /* plaintext client secret, or NULL when using a certificate */
    const char *cert_file; /* PEM certificate (for x5t#S256) */
    const char *key_file;  /* PEM private key (RSA: PS256 signature) */
    const char *ca_file;   /* for the token endpoint's TLS; may be NULL */
    const char *proxy;     /* may be NULL */
};

/* Called once, from the event loop: token is the access token (borrowed), or NULL with
 * err saying why ("invalid_client: AADSTS7000215 ...", a transport error ...). */
typedef void (*oauth_fn)(void *arg, const char *token, const char *err);

/* Get a token for scope ("https://graph.microsoft.com/.default"). A cached token more
 * than 5 minutes (or a tenth of its lifetime, whichever is shorter) from expiry is
 * returned through fn at once (still from the loop, never re-entrantly); otherwise one
 * request goes to the token endpoint and every caller waiting for the same key gets its
 * answer. force drops the cached token first (a resource answered 401). Returns 0, or
 * -1 with *errp when the app is misconfigured (fn is then not called). */
int oauth_get(const struct oauth_app *app, const char *scope, int force, oauth_fn fn, void *arg,
              char **errp) KG_WUR;
/* Cancel a pending oauth_get for (fn, arg): fn will not be called. */
void oauth_cancel(oauth_fn fn, void *arg);
/* Number of tokens fetched from the endpoint so far (for tests and metrics). */
unsigned long oauth_fetches(void);
void oauth_shutdown(void);

/* The client assertion JWT (exposed for tests): header {"alg":"PS256","typ":"JWT",
 * "x5t#S256":...}, claims aud, iss, sub, jti, nbf, iat, exp (+10 min). Returns a malloc'd
 * compact JWS or NULL with *errp. */
char *oauth_client_assertion(const struct oauth_app *app, char **errp);

#endif
