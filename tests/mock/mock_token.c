/* mock_token.c: the Microsoft identity platform v2 token endpoint (client credentials with
 * a client secret, HTTP Basic, or a signed JWT client assertion) and the bearer-token
 * check of every resource API. Tokens are opaque random strings bound to (tenant, app,
 * audience, expiry). */
#include "tests/mock/mock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/rsa.h>

#include "engine/json.h"

#define JWT_BEARER "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/* Resources (scope without "/.default") and the audience their tokens carry. */
static const struct {
    const char *resource;
    enum aud aud;
} resources[] = {
    { "https://graph.microsoft.com", AUD_GRAPH },
    { "00000003-0000-0000-c000-000000000000", AUD_GRAPH },
    { "https://api.securitycenter.microsoft.com", AUD_DEFENDER },
    { "https://securitycenter.onmicrosoft.com/windowsatpservice", AUD_DEFENDER },
    { "https://api.security.microsoft.com", AUD_DEFENDER },
    { "fc780465-2017-40d4-a0c5-307022471b92", AUD_DEFENDER }, /* WindowsDefenderATP */
    { "https://storage.azure.com", AUD_STORAGE },
};

/* ---- the form body ---- */

struct form {
    size_t n;
    char *names[16];
    char *values[16];
};

static int
form_parse(const char *body, size_t len, struct form *f)
{
    const char *p = body, *end = body + len;

    memset(f, 0, sizeof(*f));
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));

        if (stop > p) {
            char *name, *value;

            if (f->n == 16) {
                return -1;
            }
            name = http_url_decode(p, (size_t)((eq != NULL ? eq : stop) - p), 1);
            value = eq != NULL ? http_url_decode(eq + 1, (size_t)(stop - eq - 1), 1) : xstrdup("");
            if (name == NULL || value == NULL) {
                free(name);
                free(value);
                return -1;
            }
            f->names[f->n] = name;
            f->values[f->n] = value;
            f->n++;
        }
        p = stop + 1;
    }
    return 0;
}

static const char *
form_get(const struct form *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->names[i], name) == 0) {
            return f->values[i];
        }
    }
    return NULL;
}

static void
form_free(struct form *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->names[i]);
        free(f->values[i]);
    }
    f->n = 0;
}

/* ---- the client assertion ---- */

static int
verify_signature(const struct m_client *c, const char *alg, const char *signed_part,
                 size_t signed_len, const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = 0;

    if (ctx == NULL) {
        return 0;
    }
    if (EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, c->pkey) == 1) {
        if (strcmp(alg, "PS256") == 0) {
            if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1) {
                goto out;
            }
        }
        ok =
            EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)signed_part, signed_len) == 1;
    }
out:
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/* Is aud this endpoint's URL for tenant t ("<scheme>://<Host>/<tenant>/oauth2/v2.0/token",
 * the tenant written as its id or one of its domains)? */
static int
aud_ok(struct mreq *r, const char *aud, const struct m_tenant *t)
{
    size_t bl = strlen(r->base);
    const char *seg, *slash;
    char tseg[256];

    if (aud == NULL || strncasecmp(aud, r->base, bl) != 0 || aud[bl] != '/') {
        return 0;
    }
    seg = aud + bl + 1;
    slash = strchr(seg, '/');
    if (slash == NULL || (size_t)(slash - seg) >= sizeof(tseg) ||
        strcmp(slash, "/oauth2/v2.0/token") != 0) {
        return 0;
    }
    memcpy(tseg, seg, (size_t)(slash - seg));
    tseg[slash - seg] = '\0';
    return mock_tenant(tseg) == t;
}

/* Check a JWT client assertion for client c. 0 when good; else answers and -1. */
static int
check_assertion(struct mreq *r, const struct m_client *c, const char *jwt)
{
    const char *d1 = strchr(jwt, '.'), *d2 = d1 != NULL ? strchr(d1 + 1, '.') : NULL;
    unsigned char *hdr_raw = NULL, *pay_raw = NULL, *sig = NULL;
    size_t hl, pl, sl;
    cJSON *hdr = NULL, *pay = NULL;
    const char *alg, *aud, *x5t, *x5t256;
    const cJSON *exp, *nbf;
    int64_t now = mock_now();
    char *err = NULL;
    int rc = -1;

    if (d1 == NULL || d2 == NULL || strchr(d2 + 1, '.') != NULL ||
        (hdr_raw = mock_b64url_decode(jwt, (size_t)(d1 - jwt), &hl)) == NULL ||
        (pay_raw = mock_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &pl)) == NULL ||
        (sig = mock_b64url_decode(d2 + 1, strlen(d2 + 1), &sl)) == NULL ||
        json_parse_strict((char *)hdr_raw, hl, 8, &hdr, &err) == -1 ||
        json_parse_strict((char *)pay_raw, pl, 8, &pay, &err) == -1 || !cJSON_IsObject(hdr) ||
        !cJSON_IsObject(pay)) {
        mreq_aad_error(r, 400, "invalid_request", 50027, "JWT token is invalid or malformed.%s%s",
                       err != NULL ? " " : "", err != NULL ? err : "");
        goto out;
    }
    alg = jstr(hdr, "alg");
    if (alg == NULL || (strcmp(alg, "PS256") != 0 && strcmp(alg, "RS256") != 0)) {
        mreq_aad_error(r, 401, "invalid_client", 5002738,
                       "Invalid JWT token. '%s' is not a supported signature algorithm. Supported "
                       "signing algorithms are: 'RS256, PS256'.",
                       alg != NULL ? alg : "(none)");
        goto out;
    }
    aud = jstr(pay, "aud");
    if (!aud_ok(r, aud, c->tenant)) {
        mreq_aad_error(r, 401, "invalid_client", 700023,
                       "Client assertion audience claim does not match Realm issuer. Expected "
                       "'%s/%s/oauth2/v2.0/token', got '%s'.",
                       r->base, c->tenant->id, aud != NULL ? aud : "(none)");
        goto out;
    }
    if (jstr(pay, "iss") == NULL || jstr(pay, "sub") == NULL ||
        strcasecmp(jstr(pay, "iss"), c->client_id) != 0 ||
        strcasecmp(jstr(pay, "sub"), c->client_id) != 0) {
        mreq_aad_error(r, 401, "invalid_client", 700021,
                       "Client assertion application identifier doesn't match 'client_id' "
                       "parameter (iss and sub must both be the client id).");
        goto out;
    }
    exp = json_get(pay, "exp");
    nbf = json_get(pay, "nbf");
    if (!cJSON_IsNumber(exp) || exp->valuedouble * 1000.0 <= (double)now ||
        (cJSON_IsNumber(nbf) && nbf->valuedouble * 1000.0 > (double)(now + 300000))) {
        mreq_aad_error(r, 401, "invalid_client", 700024,
                       "Client assertion is not within its valid time range (exp %s).",
                       cJSON_IsNumber(exp) ? "has passed" : "is missing");
        goto out;
    }
    if (c->pkey != NULL) {
        x5t = jstr(hdr, "x5t");
        x5t256 = jstr(hdr, "x5t#S256");
        if ((x5t256 == NULL || strcmp(x5t256, c->x5t256) != 0) &&
            (x5t == NULL || strcmp(x5t, c->x5t) != 0)) {
            mreq_aad_error(r, 401, "invalid_client", 700027,
                           "Client assertion failed signature validation. [Reason - The key was "
                           "not found. Thumbprint of key used by client: '%s']",
                           x5t256 != NULL ? x5t256
                           : x5t != NULL  ? x5t
                                          : "(none)");
            goto out;
        }
        if (!verify_signature(c, alg, jwt, (size_t)(d2 - jwt), sig, sl)) {
            mreq_aad_error(r, 401, "invalid_client", 700027,
                           "Client assertion failed signature validation. [Reason - The "
                           "provided signature value did not match the expected signature "
                           "value.]");
            goto out;
        }
    }
    rc = 0;
out:
    free(err);
    free(hdr_raw);
    free(pay_raw);
    free(sig);
    cJSON_Delete(hdr);
    cJSON_Delete(pay);
    return rc;
}

/* ---- the endpoint ---- */

static struct m_token *
issue(struct m_client *c, enum aud aud, const char *scope)
{
    struct m_token *t = xcalloc(1, sizeof(*t));
    unsigned char rnd[24];
    char hex[49], key[300];
    cJSON *n;

    if (util_random(rnd, sizeof(rnd)) == -1) {
        for (size_t i = 0; i < sizeof(rnd); i++) {
            rnd[i] = (unsigned char)(mock_now() >> (i % 8));
        }
    }
    util_hex(rnd, sizeof(rnd), hex);
    t->token = xasprintf("mock.%s", hex);
    t->client = c;
    t->aud = aud;
    t->scope = xstrdup(scope);
    t->exp_ms = mock_now() + (int64_t)mock.cfg.token_lifetime * 1000;
    mmap_put(&mock.tokens, t->token, t);
    mock.tokens_issued++;
    c->issued++;
    snprintf(key, sizeof(key), "%s %s", c->client_id, scope);
    n = json_get(mock.token_counts, key);
    if (n != NULL) {
        cJSON_SetNumberValue(n, n->valuedouble + 1);
    } else {
        cJSON_AddNumberToObject(mock.token_counts, key, 1);
    }
    return t;
}

/* POST /{tenant}/oauth2/v2.0/token: validation in the order Entra ID applies it, each
 * failure with its AADSTS code (reference section 1). */
void
token_endpoint(struct mreq *r)
{
    struct form f;
    const char *ctype = mhttp_header(r->h, "Content-Type");
    const char *grant, *client_id, *scope, *secret, *atype, *assertion;
    const char *basic = mhttp_header(r->h, "Authorization");
    char *basic_id = NULL, *basic_secret = NULL, key[300];
    struct m_tenant *t;
    struct m_client *c;
    enum aud aud = AUD_NONE;
    size_t sl;

    memset(&f, 0, sizeof(f));
    if (ctype == NULL || strncasecmp(ctype, "application/x-www-form-urlencoded", 33) != 0) {
        mreq_aad_error(r, 400, "invalid_request", 900144,
                       "The request body must contain the following parameter: 'grant_type'. "
                       "(Content-Type must be application/x-www-form-urlencoded.)");
        return;
    }
    if (form_parse(r->h->body, r->h->body_len, &f) == -1) {
        mreq_aad_error(r, 400, "invalid_request", 900144, "Malformed form body.");
        goto out;
    }
    t = mock_tenant(r->cap[0]);
    if (t == NULL) {
        mreq_aad_error(r, 400, "invalid_request", 90002,
                       "Tenant '%s' not found. Check to make sure you have the correct tenant ID "
                       "and are signing into the correct cloud.",
                       r->cap[0]);
        goto out;
    }
    grant = form_get(&f, "grant_type");
    if (grant == NULL) {
        mreq_aad_error(r, 400, "invalid_request", 900144,
                       "The request body must contain the following parameter: 'grant_type'.");
        goto out;
    }
    if (strcmp(grant, "client_credentials") != 0) {
        mreq_aad_error(r, 400, "unsupported_grant_type", 70003,
                       "The app requested an unsupported grant type '%s'.", grant);
        goto out;
    }
    if (basic != NULL && strncasecmp(basic, "Basic ", 6) == 0) {
        size_t bl;
        unsigned char *dec = mock_b64_decode(basic + 6, strlen(basic + 6), &bl);
        char *colon = dec != NULL ? strchr((char *)dec, ':') : NULL;

        if (colon != NULL) {
            basic_id = http_url_decode((char *)dec, (size_t)(colon - (char *)dec), 1);
            basic_secret = http_url_decode(colon + 1, strlen(colon + 1), 1);
        }
        free(dec);
    }
    client_id = form_get(&f, "client_id");
    if (client_id == NULL) {
        client_id = basic_id;
    }
    if (client_id == NULL) {
        mreq_aad_error(r, 400, "invalid_request", 900144,
                       "The request body must contain the following parameter: 'client_id'.");
        goto out;
    }
    snprintf(key, sizeof(key), "%s|%s", t->id, client_id);
    c = mmap_get(&mock.client_map, key);
    if (c == NULL) {
        mreq_aad_error(r, 400, "unauthorized_client", 700016,
                       "Application with identifier '%s' was not found in the directory '%s'.",
                       client_id, r->cap[0]);
        goto out;
    }
    scope = form_get(&f, "scope");
    if (scope == NULL) {
        mreq_aad_error(r, 400, "invalid_request", 900144,
                       "The request body must contain the following parameter: 'scope'.");
        goto out;
    }
    sl = strlen(scope);
    if (sl < 9 || strcmp(scope + sl - 9, "/.default") != 0 || strchr(scope, ' ') != NULL) {
        mreq_aad_error(r, 400, "invalid_scope", 1002012,
                       "The provided value for scope %s is not valid. Client credential flows "
                       "must have a scope value with /.default suffixed to the resource "
                       "identifier (application ID URI).",
                       scope);
        goto out;
    }
    for (size_t i = 0; i < sizeof(resources) / sizeof(resources[0]); i++) {
        if (strlen(resources[i].resource) == sl - 9 &&
            strncasecmp(scope, resources[i].resource, sl - 9) == 0) {
            aud = resources[i].aud;
        }
    }
    if (aud == AUD_NONE) {
        mreq_aad_error(r, 400, "invalid_scope", 70011,
                       "The provided request must include a 'scope' input parameter. The "
                       "provided value for the input parameter 'scope' is not valid. The scope "
                       "%s is not valid.",
                       scope);
        goto out;
    }
    secret = form_get(&f, "client_secret");
    if (secret == NULL) {
        secret = basic_secret;
    }
    atype = form_get(&f, "client_assertion_type");
    assertion = form_get(&f, "client_assertion");
    if (assertion != NULL) {
        if (atype == NULL || strcmp(atype, JWT_BEARER) != 0) {
            mreq_aad_error(r, 400, "invalid_request", 90014,
                           "The required field 'client_assertion_type' is missing or is not "
                           "'%s'.",
                           JWT_BEARER);
            goto out;
        }
        if (check_assertion(r, c, assertion) == -1) {
            goto out;
        }
    } else if (secret != NULL) {
        if (c->secret == NULL || strcmp(secret, c->secret) != 0) {
            mreq_aad_error(r, 401, "invalid_client", 7000215,
                           "Invalid client secret provided. Ensure the secret being sent in the "
                           "request is the client secret value, not the client secret ID, for a "
                           "secret added to app '%s'.",
                           c->client_id);
            goto out;
        }
        if (c->secret_expired) {
            mreq_aad_error(r, 401, "invalid_client", 7000222,
                           "The provided client secret keys for app '%s' are expired. Visit the "
                           "Azure portal to create new keys for your app.",
                           c->client_id);
            goto out;
        }
    } else {
        mreq_aad_error(r, 401, "invalid_client", 7000216,
                       "'client_assertion', 'client_secret' or 'request' is required for the "
                       "'client_credentials' grant type.");
        goto out;
    }
    {
        struct m_token *tok = issue(c, aud, scope);
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "token_type", "Bearer");
        cJSON_AddNumberToObject(o, "expires_in", mock.cfg.token_lifetime);
        cJSON_AddNumberToObject(o, "ext_expires_in", mock.cfg.token_lifetime);
        cJSON_AddStringToObject(o, "access_token", tok->token);
        mreq_header(r, "Cache-Control", "no-store, no-cache");
        mreq_header(r, "Pragma", "no-cache");
        mreq_json(r, 200, o);
    }
out:
    free(basic_id);
    free(basic_secret);
    form_free(&f);
}

/* ---- resource side ---- */

static void
unauthorized(struct mreq *r, const char *why)
{
    if (r->svc == SVC_MDE) {
        mreq_mde_error(r, 401, "Unauthorized", "%s", why);
    } else {
        mreq_graph_error(r, 401, "InvalidAuthenticationToken", "%s", why);
    }
    mreq_header(r, "WWW-Authenticate",
                "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/"
                "common/oauth2/authorize\", error=\"invalid_token\"");
}

int
token_check(struct mreq *r, enum aud need)
{
    const char *h = mhttp_header(r->h, "Authorization");
    struct m_token *t;

    if (h == NULL || h[0] == '\0') {
        unauthorized(r, "Access token is empty.");
        return -1;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        unauthorized(r, "Access token validation failure: not a Bearer token.");
        return -1;
    }
    t = mmap_get(&mock.tokens, h + 7);
    if (t == NULL || strcmp(t->token, h + 7) != 0) { /* map keys ignore case; tokens do not */
        unauthorized(r, "Access token validation failure. Invalid audience or unknown token.");
        return -1;
    }
    if (t->exp_ms <= mock_now()) {
        unauthorized(r, "Lifetime validation failed, the token is expired.");
        return -1;
    }
    if (t->aud != need) {
        unauthorized(r, "Access token validation failure. Invalid audience.");
        return -1;
    }
    r->tok = t;
    return 0;
}

static void
expire_one(void *val, void *arg)
{
    struct m_token *t = val;

    t->exp_ms = *(int64_t *)arg;
}

void
token_expire_all(void)
{
    int64_t past = mock_now() - 1;

    mmap_each(&mock.tokens, expire_one, &past);
}

static void
free_one(void *val, void *arg)
{
    struct m_token *t = val;

    (void)arg;
    free(t->token);
    free(t->scope);
    free(t);
}

void
token_free_all(void)
{
    mmap_each(&mock.tokens, free_one, NULL);
    mmap_clear(&mock.tokens);
}
