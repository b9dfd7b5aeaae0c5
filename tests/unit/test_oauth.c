/* test_oauth.c: the token flow against an in-process token endpoint (engine/http.c over
 * TLS on 127.0.0.1), the cache, single flight, renewal, retries, errors, cancellation
 * and the PS256 client assertion. */
#include "connectors/oauth.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "connectors/httpc.h"
#include "engine/http.h"
#include "engine/log.h"
#include "engine/loop.h"
#include "engine/secret.h"
#include "tests/unit/test.h"

#define TENANT "contoso.example.jp"
#define CLIENT "11111111-2222-4333-8444-555555555555"
#define SECRET "q~Secret.Value_With+Symbols/=&"
#define SCOPE "https://graph.microsoft.com/.default"

/* One scripted answer of the mock token endpoint. */
struct mock_reply {
    int status;
    const char *body; /* NULL: a fresh token */
    const char *retry_after;
};

/* The mock token endpoint's state. */
static struct mock {
    int requests;
    int expires_in;
    struct mock_reply script[8]; /* consumed in order, then default 200s */
    int nscript, next;
    char *last_body;
    char *last_path;
    char *last_ctype;
    /* client assertion checks (certificate flow) */
    X509 *cert;
    int assertion_ok;
    char assertion_err[256];
} mock;

static struct event_base *base;
static struct http_server *srv;
static SSL_CTX *server_ctx;
static char tmpdir[64];
static char authority[64];
static char *ca_file;

/* ---- test PKI ---- */

/* A self-signed certificate for pkey, valid for 127.0.0.1 and localhost. */
static X509 *
self_signed(EVP_PKEY *pkey, const char *cn, int san)
{
    X509 *x = X509_new();
    X509_NAME *name;

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    if (san) {
        X509V3_CTX v3;
        X509_EXTENSION *ext;

        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    X509_sign(x, pkey, EVP_sha256());
    return x;
}

static int
write_pem(const char *path, X509 *x, EVP_PKEY *pkey)
{
    FILE *fp = fopen(path, "w");
    int ok;

    if (fp == NULL) {
        return -1;
    }
    ok = x != NULL ? PEM_write_X509(fp, x)
                   : PEM_write_PrivateKey(fp, pkey, NULL, NULL, 0, NULL, NULL);
    fclose(fp);
    return ok == 1 ? 0 : -1;
}

/* ---- small decoders for the mock ---- */

/* base64url without padding -> bytes (malloc'd, NUL-terminated), or NULL. */
static unsigned char *
b64url_decode(const char *s, size_t n, size_t *outlen)
{
    char *t = xmalloc(n + 4);
    unsigned char *out;
    size_t m = n;
    int len, pad = 0;

    memcpy(t, s, n);
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '-') {
            t[i] = '+';
        } else if (t[i] == '_') {
            t[i] = '/';
        } else if (t[i] == '=') {
            free(t);
            return NULL;
        }
    }
    while (m % 4 != 0) {
        t[m++] = '=';
        pad++;
    }
    out = xmalloc(m / 4 * 3 + 1);
    len = EVP_DecodeBlock(out, (unsigned char *)t, (int)m);
    free(t);
    if (len < 0) {
        free(out);
        return NULL;
    }
    *outlen = (size_t)len - (size_t)pad;
    out[*outlen] = '\0';
    return out;
}

static char *
b64url_encode(const unsigned char *p, size_t n)
{
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);

    while (len > 0 && out[len - 1] == '=') {
        len--;
    }
    out[len] = '\0';
    for (char *c = out; *c; c++) {
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
    }
    return out;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* The decoded value of form field name in body (malloc'd), or NULL. */
static char *
form_field(const char *body, const char *name)
{
    size_t nl = strlen(name);

    for (const char *p = body; p != NULL && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
            const char *v = p + nl + 1;
            size_t n = strcspn(v, "&"), o = 0;
            char *out = xmalloc(n + 1);

            for (size_t i = 0; i < n; i++) {
                if (v[i] == '%' && i + 2 < n && hexval(v[i + 1]) >= 0 && hexval(v[i + 2]) >= 0) {
                    out[o++] = (char)(hexval(v[i + 1]) << 4 | hexval(v[i + 2]));
                    i += 2;
                } else if (v[i] == '+') {
                    out[o++] = ' ';
                } else {
                    out[o++] = v[i];
                }
            }
            out[o] = '\0';
            return out;
        }
    }
    return NULL;
}

/* ---- the mock's assertion verifier ---- */

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            snprintf(mock.assertion_err, sizeof(mock.assertion_err), __VA_ARGS__);                 \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

static const char *
jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double
jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* Check the JWT the way the identity platform would: header, claims and the PS256
 * signature under the registered certificate's public key. */
static void
verify_assertion(const char *jwt, const char *expect_aud)
{
    const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    unsigned char *hdr = NULL, *claims = NULL, *sig = NULL, *der = NULL;
    unsigned char md[32];
    unsigned int mdlen = 0;
    size_t hl = 0, cl = 0, sl = 0;
    cJSON *h = NULL, *c = NULL;
    char *thumb = NULL;
    EVP_MD_CTX *mctx = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    int derlen;
    double now = (double)time(NULL);

    mock.assertion_ok = 0;
    CHECK(d1 && d2 && strchr(d2 + 1, '.') == NULL, "not three parts");
    hdr = b64url_decode(jwt, (size_t)(d1 - jwt), &hl);
    claims = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &cl);
    sig = b64url_decode(d2 + 1, strlen(d2 + 1), &sl);
    CHECK(hdr && claims && sig, "bad base64url");
    h = cJSON_Parse((char *)hdr);
    c = cJSON_Parse((char *)claims);
    CHECK(h && c, "bad JSON");
    CHECK(jstr(h, "alg") && strcmp(jstr(h, "alg"), "PS256") == 0, "alg");
    CHECK(jstr(h, "typ") && strcmp(jstr(h, "typ"), "JWT") == 0, "typ");
    derlen = i2d_X509(mock.cert, &der);
    CHECK(derlen > 0 && EVP_Digest(der, (size_t)derlen, md, &mdlen, EVP_sha256(), NULL) == 1,
          "der");
    thumb = b64url_encode(md, mdlen);
    CHECK(jstr(h, "x5t#S256") && strcmp(jstr(h, "x5t#S256"), thumb) == 0, "x5t#S256 %s != %s",
          jstr(h, "x5t#S256") ? jstr(h, "x5t#S256") : "-", thumb);
    CHECK(jstr(c, "aud") && strcmp(jstr(c, "aud"), expect_aud) == 0, "aud %s",
          jstr(c, "aud") ? jstr(c, "aud") : "-");
    CHECK(jstr(c, "iss") && strcmp(jstr(c, "iss"), CLIENT) == 0, "iss");
    CHECK(jstr(c, "sub") && strcmp(jstr(c, "sub"), CLIENT) == 0, "sub");
    CHECK(jstr(c, "jti") && strlen(jstr(c, "jti")) == 36 && jstr(c, "jti")[14] == '4', "jti");
    CHECK(jnum(c, "iat") >= now - 5 && jnum(c, "iat") <= now + 1, "iat");
    CHECK(jnum(c, "nbf") == jnum(c, "iat"), "nbf");
    CHECK(jnum(c, "exp") == jnum(c, "iat") + 600, "exp");
    mctx = EVP_MD_CTX_new();
    CHECK(EVP_DigestVerifyInit(mctx, &pctx, EVP_sha256(), NULL, X509_get0_pubkey(mock.cert)) == 1 &&
              EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
              EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1,
          "verify init");
    CHECK(EVP_DigestVerify(mctx, sig, sl, (const unsigned char *)jwt, (size_t)(d2 - jwt)) == 1,
          "signature");
    mock.assertion_ok = 1;
out:
    EVP_MD_CTX_free(mctx);
    OPENSSL_free(der);
    free(thumb);
    cJSON_Delete(h);
    cJSON_Delete(c);
    free(hdr);
    free(claims);
    free(sig);
}

/* ---- the mock token endpoint ---- */

static void
mock_handler(struct http_request *req, void *arg)
{
    struct mock_reply r = { 200, NULL, NULL };
    size_t len = 0;
    const char *body = http_request_body(req, &len);
    char *tok;

    (void)arg;
    mock.requests++;
    free(mock.last_body);
    free(mock.last_path);
    free(mock.last_ctype);
    mock.last_body = xstrndup(body ? body : "", len);
    mock.last_path = xstrdup(http_request_path(req));
    mock.last_ctype = http_request_header(req, "content-type")
                          ? xstrdup(http_request_header(req, "content-type"))
                          : NULL;
    if (mock.cert != NULL) {
        char *jwt = form_field(mock.last_body, "client_assertion");
        char *aud = xasprintf("%s/%s/oauth2/v2.0/token", authority, TENANT);

        if (jwt != NULL) {
            verify_assertion(jwt, aud);
        } else {
            snprintf(mock.assertion_err, sizeof(mock.assertion_err), "no client_assertion");
        }
        free(jwt);
        free(aud);
    }
    if (mock.next < mock.nscript) {
        r = mock.script[mock.next++];
    }
    if (r.retry_after != NULL) {
        http_reply_header(req, "Retry-After", r.retry_after);
    }
    if (r.body != NULL) {
        http_reply(req, r.status, "application/json", r.body, strlen(r.body));
        return;
    }
    tok = xasprintf("{\"token_type\":\"Bearer\",\"expires_in\":%d,\"ext_expires_in\":%d,"
                    "\"access_token\":\"eyJ0eXAiOiJKV1Qi.token-%d.c2lnbmF0dXJl\"}",
                    mock.expires_in, mock.expires_in, mock.requests);
    http_reply(req, r.status, "application/json", tok, strlen(tok));
    free(tok);
}

/* ---- fixture ---- */

static int
setup(void)
{
    EVP_PKEY *pkey = NULL;
    X509 *x = NULL;
    char *err = NULL;
    struct http_config cfg;
    int rc = -1;

    memset(&mock, 0, sizeof(mock));
    mock.expires_in = 3599;
    log_set_level(KG_LOG_ERR);
    strcpy(tmpdir, "/tmp/kg-oauth-XXXXXX");
    if (mkdtemp(tmpdir) == NULL || loop_init(&err) == -1) {
        goto out;
    }
    base = loop_base();
    pkey = EVP_EC_gen("P-256");
    x = self_signed(pkey, "localhost", 1);
    ca_file = xasprintf("%s/ca.pem", tmpdir);
    if (write_pem(ca_file, x, NULL) == -1) {
        goto out;
    }
    server_ctx = SSL_CTX_new(TLS_server_method());
    if (server_ctx == NULL || SSL_CTX_use_certificate(server_ctx, x) != 1 ||
        SSL_CTX_use_PrivateKey(server_ctx, pkey) != 1) {
        goto out;
    }
    memset(&cfg, 0, sizeof(cfg));
    cfg.ssl_ctx = server_ctx;
    srv = http_server_new(base, &cfg, mock_handler, NULL);
    if (srv == NULL || http_server_listen(srv, "127.0.0.1:0", &err) == -1) {
        goto out;
    }
    snprintf(authority, sizeof(authority), "https://127.0.0.1:%d", http_server_port(srv));
    if (httpc_init(base, &err) == -1) {
        goto out;
    }
    rc = 0;
out:
    if (rc == -1) {
        fprintf(stderr, "setup failed: %s\n", err ? err : "?");
    }
    free(err);
    EVP_PKEY_free(pkey);
    X509_free(x);
    return rc;
}

static void
teardown(void)
{
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);

    oauth_shutdown();
    httpc_shutdown();
    http_server_free(srv);
    srv = NULL;
    SSL_CTX_free(server_ctx);
    server_ctx = NULL;
    loop_free();
    base = NULL;
    secret_shutdown();
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    free(cmd);
    free(ca_file);
    ca_file = NULL;
    free(mock.last_body);
    free(mock.last_path);
    free(mock.last_ctype);
    X509_free(mock.cert);
    memset(&mock, 0, sizeof(mock));
}

static struct oauth_app
secret_app(void)
{
    struct oauth_app app;

    memset(&app, 0, sizeof(app));
    app.authority = authority;
    app.tenant = TENANT;
    app.client_id = CLIENT;
    app.secret = SECRET;
    app.ca_file = ca_file;
    return app;
}

/* What one oauth_get answered. */
struct got {
    int calls;
    char *token;
    char *err;
};

static void
got_cb(void *arg, const char *token, const char *err)
{
    struct got *g = arg;

    g->calls++;
    free(g->token);
    free(g->err);
    g->token = token ? xstrdup(token) : NULL;
    g->err = err ? xstrdup(err) : NULL;
}

static void
got_free(struct got *g)
{
    free(g->token);
    free(g->err);
    memset(g, 0, sizeof(*g));
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(int *)arg = 1;
}

/* Drive the loop until *n reaches want or secs pass; returns whether it did. */
static int
wait_calls(const int *n, int want, double secs)
{
    int expired = 0;
    struct timeval tv = { (time_t)secs, (suseconds_t)((secs - (double)(time_t)secs) * 1e6) };
    struct event *t = evtimer_new(base, timeout_cb, &expired);

    evtimer_add(t, &tv);
    while (*n < want && !expired) {
        event_base_loop(base, EVLOOP_ONCE);
    }
    event_free(t);
    return *n >= want;
}

/* Let the loop run for secs. */
static void
run_for(double secs)
{
    int never = 0;

    (void)wait_calls(&never, 1, secs);
}

/* ---- tests ---- */

static void
test_secret_flow(void)
{
    struct oauth_app app;
    struct got g = { 0 };
    char *err = NULL, *f, text[256];

    T_REQUIRE(setup() == 0);
    app = secret_app();
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &g, &err), 0);
    T_EQ_INT(g.calls, 0); /* never from inside oauth_get */
    T_ASSERT(wait_calls(&g.calls, 1, 10));
    T_EQ_INT(g.calls, 1);
    T_EQ_STR(g.token, "eyJ0eXAiOiJKV1Qi.token-1.c2lnbmF0dXJl");
    T_ASSERT(g.err == NULL);
    T_EQ_INT(mock.requests, 1);
    T_EQ_INT(oauth_fetches(), 1);
    T_EQ_STR(mock.last_path, "/" TENANT "/oauth2/v2.0/token");
    T_EQ_STR(mock.last_ctype, "application/x-www-form-urlencoded");
    f = form_field(mock.last_body, "client_id");
    T_EQ_STR(f, CLIENT);
    free(f);
    f = form_field(mock.last_body, "scope");
    T_EQ_STR(f, SCOPE);
    free(f);
    f = form_field(mock.last_body, "grant_type");
    T_EQ_STR(f, "client_credentials");
    free(f);
    f = form_field(mock.last_body, "client_secret");
    T_EQ_STR(f, SECRET);
    free(f);
    T_ASSERT(strstr(mock.last_body, "client_assertion") == NULL);
    /* The secret went over the wire percent-encoded. */
    T_CONTAINS(mock.last_body, "client_secret=q~Secret.Value_With%2BSymbols%2F%3D%26");

    /* Both the secret and the token are registered for redaction. */
    snprintf(text, sizeof(text), "secret %s token %s end", SECRET, g.token);
    secret_redact(text);
    T_ASSERT(strstr(text, SECRET) == NULL);
    T_ASSERT(strstr(text, "token-1") == NULL);
    T_CONTAINS(text, "secret ");
    T_CONTAINS(text, " end");
    got_free(&g);
    teardown();
}

static void
test_cache(void)
{
    struct oauth_app app;
    struct got g1 = { 0 }, g2 = { 0 }, g3 = { 0 };
    char *slashed;

    T_REQUIRE(setup() == 0);
    app = secret_app();
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &g1, NULL), 0);
    T_ASSERT(wait_calls(&g1.calls, 1, 10));
    T_EQ_INT(mock.requests, 1);

    /* Served from the cache: still from the loop, never re-entrantly. */
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &g2, NULL), 0);
    T_EQ_INT(g2.calls, 0);
    T_ASSERT(wait_calls(&g2.calls, 1, 10));
    T_EQ_STR(g2.token, g1.token);
    T_EQ_INT(mock.requests, 1);
    T_EQ_INT(oauth_fetches(), 1);

    /* The authority's trailing slash does not make another key... */
    slashed = xasprintf("%s/", authority);
    app.authority = slashed;
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &g3, NULL), 0);
    T_ASSERT(wait_calls(&g3.calls, 1, 10));
    T_EQ_STR(g3.token, g1.token);
    T_EQ_INT(mock.requests, 1);
    free(slashed);
    app.authority = authority;

    /* ...but another scope does. */
    T_EQ_INT(
        oauth_get(&app, "https://api.securitycenter.microsoft.com/.default", 0, got_cb, &g3, NULL),
        0);
    T_ASSERT(wait_calls(&g3.calls, 2, 10));
    T_EQ_INT(mock.requests, 2);
    T_EQ_STR(g3.token, "eyJ0eXAiOiJKV1Qi.token-2.c2lnbmF0dXJl");
    T_EQ_INT(oauth_fetches(), 2);
    got_free(&g1);
    got_free(&g2);
    got_free(&g3);
    teardown();
}

static void
test_single_flight(void)
{
    struct oauth_app app;
    struct got g[3] = { { 0 }, { 0 }, { 0 } };

    T_REQUIRE(setup() == 0);
    app = secret_app();
    for (int i = 0; i < 3; i++) {
        T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &g[i], NULL), 0);
    }
    /* Answered together, in order: the last one done means all are. */
    T_ASSERT(wait_calls(&g[2].calls, 1, 10));
    run_for(0.05);
    T_EQ_INT(mock.requests, 1);
    T_EQ_INT(oauth_fetches(), 1);
    for (int i = 0; i < 3; i++) {
        T_EQ_INT(g[i].calls, 1);
        T_EQ_STR(g[i].token, "eyJ0eXAiOiJKV1Qi.token-1.c2lnbmF0dXJl");
        got_free(&g[i]);
    }
    teardown();
}

static void
test_expiry_refresh(void)
{
    struct oauth_app app;
    struct got g = { 0 };

    T_REQUIRE(setup() == 0);
    mock.expires_in = 2; /* renewal margin: a tenth of it, 200 ms */
    app = secret_app();
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &g, NULL), 0);
    T_ASSERT(wait_calls(&g.calls, 1, 10));
    T_EQ_STR(g.token, "eyJ0eXAiOiJKV1Qi.token-1.c2lnbmF0dXJl");

    /* Still fresh: cached. */
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &g, NULL), 0);
    T_ASSERT(wait_calls(&g.calls, 2, 10));
    T_EQ_INT(mock.requests, 1);

    /* Within the margin of its expiry: a new fetch. */
    run_for(1.85);
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &g, NULL), 0);
    T_ASSERT(wait_calls(&g.calls, 3, 10));
    T_EQ_INT(g.calls, 3);
    T_EQ_INT(mock.requests, 2);
    T_EQ_STR(g.token, "eyJ0eXAiOiJKV1Qi.token-2.c2lnbmF0dXJl");
    T_EQ_INT(oauth_fetches(), 2);
    got_free(&g);
    teardown();
}

static void
test_force(void)
{
    struct oauth_app app;
    struct got g = { 0 };

    T_REQUIRE(setup() == 0);
    app = secret_app();
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &g, NULL), 0);
    T_ASSERT(wait_calls(&g.calls, 1, 10));
    T_EQ_INT(oauth_get(&app, SCOPE, 1, got_cb, &g, NULL), 0);
    T_ASSERT(wait_calls(&g.calls, 2, 10));
    T_EQ_INT(g.calls, 2);
    T_EQ_INT(mock.requests, 2);
    T_EQ_STR(g.token, "eyJ0eXAiOiJKV1Qi.token-2.c2lnbmF0dXJl");
    /* The replaced token left the redaction registry; the new one is in it. */
    {
        char text[] = "eyJ0eXAiOiJKV1Qi.token-1.c2lnbmF0dXJl eyJ0eXAiOiJKV1Qi.token-2.c2lnbmF0dXJl";

        secret_redact(text);
        T_EQ_STR(text,
                 "eyJ0eXAiOiJKV1Qi.token-1.c2lnbmF0dXJl *************************************");
    }
    got_free(&g);
    teardown();
}

static void
test_error_body(void)
{
    static const char aad[] =
        "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: Invalid client "
        "secret provided. Ensure the secret being sent in the request is the client secret "
        "value.\\r\\nTrace ID: 5c1f2b7e-0000-4000-8000-00000000a001\\r\\nCorrelation ID: "
        "9d0e4c1a-0000-4000-8000-00000000b002\\r\\nTimestamp: 2025-06-01 01:02:03Z\","
        "\"error_codes\":[7000215],\"timestamp\":\"2025-06-01 01:02:03Z\"}";
    struct oauth_app app;
    struct got g = { 0 };

    T_REQUIRE(setup() == 0);
    mock.script[0] = (struct mock_reply){ 401, aad, NULL };
    mock.script[1] = (struct mock_reply){ 400, "<html>bad</html>", NULL };
    mock.script[2] = (struct mock_reply){ 200, "{\"token_type\":\"Bearer\"}", NULL };
    mock.nscript = 3;
    app = secret_app();
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &g, NULL), 0);
    T_ASSERT(wait_calls(&g.calls, 1, 10));
    T_ASSERT(g.token == NULL);
    T_EQ_STR(g.err, "invalid_client: AADSTS7000215: Invalid client secret provided. Ensure the "
                    "secret being sent in the request is the client secret value.");
    T_EQ_INT(mock.requests, 1); /* 401 is not retried */

    /* The refusal is cached: the next calls get it without asking the endpoint again
     * (forcing a refresh included), until its window passes or the credentials change. */
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &g, NULL), 0);
    T_ASSERT(wait_calls(&g.calls, 2, 10));
    T_CONTAINS(g.err, "invalid_client: AADSTS7000215");
    T_EQ_INT(oauth_get(&app, SCOPE, 1, got_cb, &g, NULL), 0);
    T_ASSERT(wait_calls(&g.calls, 3, 10));
    T_CONTAINS(g.err, "invalid_client");
    T_EQ_INT(mock.requests, 1);

    app.secret = "a rotated secret";
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &g, NULL), 0);
    T_ASSERT(wait_calls(&g.calls, 4, 10));
    T_EQ_STR(g.err, "token endpoint: HTTP 400");
    T_EQ_INT(mock.requests, 2);

    app.secret = "another rotated secret";
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &g, NULL), 0);
    T_ASSERT(wait_calls(&g.calls, 5, 10));
    T_CONTAINS(g.err, "no access_token");
    T_EQ_INT(mock.requests, 3);
    T_EQ_INT(oauth_fetches(), 0);
    got_free(&g);
    teardown();
}

static void
test_retry(void)
{
    static const char busy[] = "{\"error\":\"temporarily_unavailable\",\"error_description\":"
                               "\"AADSTS50196: The server is busy.\\r\\nTrace ID: x\"}";
    struct oauth_app app;
    struct got g = { 0 };
    int64_t t0;

    T_REQUIRE(setup() == 0);
    /* 503 (Retry-After: 0) then 200. */
    mock.script[0] = (struct mock_reply){ 503, busy, "0" };
    /* Then, for the second get: 504 without Retry-After (backoff 1 s), then 200. */
    mock.script[2] = (struct mock_reply){ 504, "", NULL };
    /* Then three 429s: the fetch fails after three attempts. */
    mock.script[4] = (struct mock_reply){ 429, busy, "0" };
    mock.script[5] = (struct mock_reply){ 429, busy, "0" };
    mock.script[6] = (struct mock_reply){ 429, busy, "0" };
    mock.script[1] = (struct mock_reply){ 200, NULL, NULL };
    mock.script[3] = (struct mock_reply){ 200, NULL, NULL };
    mock.nscript = 7;
    app = secret_app();
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &g, NULL), 0);
    T_ASSERT(wait_calls(&g.calls, 1, 10));
    T_EQ_INT(g.calls, 1);
    T_EQ_STR(g.token, "eyJ0eXAiOiJKV1Qi.token-2.c2lnbmF0dXJl");
    T_EQ_INT(mock.requests, 2);

    t0 = util_mono_us();
    T_EQ_INT(oauth_get(&app, SCOPE, 1, got_cb, &g, NULL), 0);
    T_ASSERT(wait_calls(&g.calls, 2, 10));
    T_EQ_INT(g.calls, 2);
    T_EQ_STR(g.token, "eyJ0eXAiOiJKV1Qi.token-4.c2lnbmF0dXJl");
    T_EQ_INT(mock.requests, 4);
    T_ASSERT(util_mono_us() - t0 >= 1000000);

    T_EQ_INT(oauth_get(&app, SCOPE, 1, got_cb, &g, NULL), 0);
    T_ASSERT(wait_calls(&g.calls, 3, 10));
    T_EQ_INT(g.calls, 3);
    T_ASSERT(g.token == NULL);
    T_EQ_STR(g.err, "temporarily_unavailable: AADSTS50196: The server is busy.");
    T_EQ_INT(mock.requests, 7);
    T_EQ_INT(oauth_fetches(), 2);
    got_free(&g);
    teardown();
}

static void
test_transport_error(void)
{
    struct oauth_app app;
    struct got g = { 0 };
    char *dead;

    T_REQUIRE(setup() == 0);
    /* Nothing listens there any more: connection refused, three times (1 s + 2 s). */
    dead = xasprintf("https://127.0.0.1:%d", http_server_port(srv));
    http_server_free(srv);
    srv = NULL;
    app = secret_app();
    app.authority = dead;
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &g, NULL), 0);
    T_ASSERT(wait_calls(&g.calls, 1, 10));
    T_EQ_INT(g.calls, 1);
    T_ASSERT(g.token == NULL);
    T_ASSERT(g.err != NULL && strncmp(g.err, "token endpoint: ", 16) == 0);
    T_EQ_INT(oauth_fetches(), 0);
    free(dead);
    got_free(&g);
    teardown();
}

static void
test_cancel(void)
{
    struct oauth_app app;
    struct got a = { 0 }, b = { 0 }, c = { 0 };

    T_REQUIRE(setup() == 0);
    app = secret_app();
    /* Cancel one of two waiters of an in-flight fetch. */
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &a, NULL), 0);
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &b, NULL), 0);
    oauth_cancel(got_cb, &a);
    T_ASSERT(wait_calls(&b.calls, 1, 10));
    run_for(0.05);
    T_EQ_INT(a.calls, 0);
    T_EQ_INT(b.calls, 1);

    /* Cancel a cached answer before the loop delivers it. */
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &a, NULL), 0);
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &c, NULL), 0);
    oauth_cancel(got_cb, &a);
    T_ASSERT(wait_calls(&c.calls, 1, 10));
    run_for(0.05);
    T_EQ_INT(a.calls, 0);
    T_EQ_INT(c.calls, 1);

    /* Every waiter cancelled: the fetch still completes and fills the cache. */
    T_EQ_INT(oauth_get(&app, SCOPE, 1, got_cb, &a, NULL), 0);
    oauth_cancel(got_cb, &a);
    for (int i = 0; i < 200 && mock.requests < 2; i++) {
        run_for(0.05);
    }
    run_for(0.1);
    T_EQ_INT(a.calls, 0);
    T_EQ_INT(mock.requests, 2);
    T_EQ_INT(oauth_fetches(), 2);
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &c, NULL), 0);
    T_ASSERT(wait_calls(&c.calls, 2, 10));
    T_EQ_STR(c.token, "eyJ0eXAiOiJKV1Qi.token-2.c2lnbmF0dXJl");
    T_EQ_INT(mock.requests, 2);
    got_free(&a);
    got_free(&b);
    got_free(&c);
    teardown();
}

/* A callback that cancels the next waiter of the same batch. */
static struct got chain_b;
static void
cancel_next_cb(void *arg, const char *token, const char *err)
{
    got_cb(arg, token, err);
    oauth_cancel(got_cb, &chain_b);
}

static void
test_cancel_within_batch(void)
{
    struct oauth_app app;
    struct got a = { 0 };

    T_REQUIRE(setup() == 0);
    app = secret_app();
    T_EQ_INT(oauth_get(&app, SCOPE, 0, cancel_next_cb, &a, NULL), 0);
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &chain_b, NULL), 0);
    T_ASSERT(wait_calls(&a.calls, 1, 10));
    run_for(0.05);
    T_EQ_INT(a.calls, 1);
    T_EQ_INT(chain_b.calls, 0);
    got_free(&a);
    got_free(&chain_b);
    teardown();
}

static void
test_misconfigured(void)
{
    struct oauth_app app;
    struct got g = { 0 };
    char *err = NULL;

    T_REQUIRE(setup() == 0);
    app = secret_app();
    app.secret = NULL;
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &g, &err), -1);
    T_CONTAINS(err, "secret");
    free(err);
    err = NULL;
    app = secret_app();
    app.tenant = "../evil";
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &g, &err), -1);
    T_CONTAINS(err, "tenant");
    free(err);
    err = NULL;
    app = secret_app();
    T_EQ_INT(oauth_get(&app, "", 0, got_cb, &g, &err), -1);
    free(err);
    err = NULL;
    /* Plain http to a non-loopback host is refused by httpc before anything is sent. */
    app.authority = "http://login.example.invalid";
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &g, &err), -1);
    T_ASSERT(err != NULL);
    free(err);
    err = NULL;
    /* A certificate that does not exist. */
    app = secret_app();
    app.secret = NULL;
    app.cert_file = "/nonexistent/cert.pem";
    app.key_file = "/nonexistent/key.pem";
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &g, &err), -1);
    T_CONTAINS(err, "cert_file");
    free(err);
    run_for(0.05);
    T_EQ_INT(g.calls, 0);
    T_EQ_INT(mock.requests, 0);
    teardown();
}

/* An RSA key and its self-signed certificate under tmpdir; paths malloc'd. */
static int
make_app_cert(const char *name, X509 **xp, char **certp, char **keyp)
{
    EVP_PKEY *pkey = EVP_RSA_gen(2048);
    X509 *x;
    int rc;

    if (pkey == NULL) {
        return -1;
    }
    x = self_signed(pkey, "kagari-test-app", 0);
    *certp = xasprintf("%s/%s-cert.pem", tmpdir, name);
    *keyp = xasprintf("%s/%s-key.pem", tmpdir, name);
    rc = write_pem(*certp, x, NULL) == 0 && write_pem(*keyp, NULL, pkey) == 0 ? 0 : -1;
    EVP_PKEY_free(pkey);
    if (xp != NULL) {
        *xp = x;
    } else {
        X509_free(x);
    }
    return rc;
}

static void
test_certificate_flow(void)
{
    struct oauth_app app;
    struct got g = { 0 };
    char *cert = NULL, *key = NULL, *f, *err = NULL;

    T_REQUIRE(setup() == 0);
    T_REQUIRE(make_app_cert("app", &mock.cert, &cert, &key) == 0);
    app = secret_app();
    app.secret = NULL;
    app.cert_file = cert;
    app.key_file = key;
    T_EQ_INT(oauth_get(&app, SCOPE, 0, got_cb, &g, &err), 0);
    T_ASSERT(wait_calls(&g.calls, 1, 20));
    T_EQ_STR(g.token, "eyJ0eXAiOiJKV1Qi.token-1.c2lnbmF0dXJl");
    T_EQ_INT(mock.requests, 1);
    if (!mock.assertion_ok) {
        fprintf(stderr, "  assertion: %s\n", mock.assertion_err);
    }
    T_ASSERT(mock.assertion_ok);
    f = form_field(mock.last_body, "client_assertion_type");
    T_EQ_STR(f, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    free(f);
    f = form_field(mock.last_body, "grant_type");
    T_EQ_STR(f, "client_credentials");
    free(f);
    f = form_field(mock.last_body, "client_id");
    T_EQ_STR(f, CLIENT);
    free(f);
    T_ASSERT(strstr(mock.last_body, "client_secret") == NULL);
    free(cert);
    free(key);
    got_free(&g);
    teardown();
}

static void
test_assertion_direct(void)
{
    struct oauth_app app;
    char *cert = NULL, *key = NULL, *cert2 = NULL, *key2 = NULL, *err = NULL, *jws, *aud;
    char *eckey;
    EVP_PKEY *ec;

    T_REQUIRE(setup() == 0);
    T_REQUIRE(make_app_cert("a", &mock.cert, &cert, &key) == 0);
    T_REQUIRE(make_app_cert("b", NULL, &cert2, &key2) == 0);
    app = secret_app();
    app.secret = NULL;
    app.cert_file = cert;
    app.key_file = key;
    app.authority = "https://login.microsoftonline.com/";
    jws = oauth_client_assertion(&app, &err);
    T_REQUIRE(jws != NULL);
    aud = xasprintf("https://login.microsoftonline.com/%s/oauth2/v2.0/token", TENANT);
    verify_assertion(jws, aud);
    if (!mock.assertion_ok) {
        fprintf(stderr, "  assertion: %s\n", mock.assertion_err);
    }
    T_ASSERT(mock.assertion_ok);
    T_ASSERT(strchr(jws, '=') == NULL && strchr(jws, '+') == NULL && strchr(jws, '/') == NULL);

    /* The verifier is not a rubber stamp: a changed signature byte fails. */
    {
        char *last = jws + strlen(jws) - 5;

        *last = *last == 'A' ? 'B' : 'A';
        verify_assertion(jws, aud);
        T_ASSERT(!mock.assertion_ok);
        T_CONTAINS(mock.assertion_err, "signature");
    }
    free(jws);
    free(aud);

    /* Two assertions differ (jti). */
    {
        char *j1 = oauth_client_assertion(&app, NULL), *j2 = oauth_client_assertion(&app, NULL);

        T_ASSERT(j1 != NULL && j2 != NULL && strcmp(j1, j2) != 0);
        free(j1);
        free(j2);
    }

    /* A key that does not belong to the certificate. */
    app.key_file = key2;
    T_ASSERT(oauth_client_assertion(&app, &err) == NULL);
    T_CONTAINS(err, "does not match");
    free(err);
    err = NULL;

    /* An EC key cannot sign PS256. */
    ec = EVP_EC_gen("P-256");
    eckey = xasprintf("%s/ec-key.pem", tmpdir);
    T_REQUIRE(write_pem(eckey, NULL, ec) == 0);
    EVP_PKEY_free(ec);
    app.key_file = eckey;
    T_ASSERT(oauth_client_assertion(&app, &err) == NULL);
    T_CONTAINS(err, "RSA");
    free(err);
    err = NULL;

    /* Garbage instead of a certificate. */
    app.cert_file = ca_file; /* an EC certificate: fine as PEM, but not this key's */
    app.key_file = key;
    T_ASSERT(oauth_client_assertion(&app, &err) == NULL);
    free(err);
    err = NULL;
    app.cert_file = key; /* a key where the certificate should be */
    T_ASSERT(oauth_client_assertion(&app, &err) == NULL);
    T_CONTAINS(err, "no PEM certificate");
    free(err);
    err = NULL;
    app.cert_file = NULL;
    T_ASSERT(oauth_client_assertion(&app, &err) == NULL);
    T_CONTAINS(err, "cert_file");
    free(err);

    free(eckey);
    free(cert);
    free(key);
    free(cert2);
    free(key2);
    teardown();
}

TEST_LIST = {
    { "secret_flow", test_secret_flow },
    { "cache", test_cache },
    { "single_flight", test_single_flight },
    { "expiry_refresh", test_expiry_refresh },
    { "force", test_force },
    { "error_body", test_error_body },
    { "retry", test_retry },
    { "transport_error", test_transport_error },
    { "cancel", test_cancel },
    { "cancel_within_batch", test_cancel_within_batch },
    { "misconfigured", test_misconfigured },
    { "certificate_flow", test_certificate_flow },
    { "assertion_direct", test_assertion_direct },
    { NULL, NULL },
};
