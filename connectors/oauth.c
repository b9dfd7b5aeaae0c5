/* oauth.c: client-credentials tokens from the Microsoft identity platform (v2 endpoint),
 * with a client secret or a PS256 client assertion, cached per (authority, tenant,
 * client, scope) with one request in flight per key. */
#include "connectors/oauth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "connectors/httpc.h"
#include "engine/kagari.h"

#define OAUTH_ATTEMPTS 3                /* token requests per fetch, first one included */
#define OAUTH_RETRY_AFTER_MAX 60        /* seconds; a longer Retry-After fails the fetch */
#define OAUTH_MARGIN_MAX_US 300000000LL /* renew at most 5 minutes before expiry */
#define OAUTH_FALLBACK_US 30000000LL    /* a failed renewal may answer with a token this fresh */
#define OAUTH_FAIL_BASE_US 30000000LL   /* a refused app (4xx) is asked again after 30 s, */
#define OAUTH_FAIL_MAX_US 600000000LL   /* doubling up to 10 min */
#define OAUTH_FAIL_SHORT_US 2000000LL   /* other failures: 2 s, doubling up to 60 s */
#define OAUTH_FAIL_SHORT_MAX_US 60000000LL
#define OAUTH_MAX_LIFETIME 86400     /* seconds; longer expires_in values are clamped */
#define OAUTH_ASSERTION_LIFETIME 600 /* seconds (exp - iat) of a client assertion */
#define OAUTH_MAX_RESPONSE (64 * 1024)
#define OAUTH_TIMEOUT 30.0
#define OAUTH_MAX_ERR 300 /* bytes of error_description kept */
#define OAUTH_ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/* One caller waiting for a token. */
struct oauth_waiter {
    oauth_fn fn;
    void *arg;
    struct oauth_waiter *next;
};

struct oauth_fetch;

/* One cache key and everything about it. Entries live until oauth_shutdown: there is one
 * per configured (tenant, client, scope), a small fixed set. */
struct oauth_entry {
    struct oauth_entry *next;
    /* the key; authority without trailing slashes */
    char *authority;
    char *tenant;
    char *client_id;
    char *scope;
    /* credentials as last given to oauth_get (a rotated secret takes effect at the next
     * request) */
    char *secret;
    char *cert_file;
    char *key_file;
    char *ca_file;
    char *proxy;
    char *token;                  /* cached access token (registered for redaction), or NULL */
    int64_t expires_us;           /* monotonic time the token expires */
    int64_t lifetime_us;          /* expires_in as granted */
    struct oauth_waiter *waiters; /* FIFO: answered together */
    struct oauth_waiter **tail;
    struct oauth_fetch *fetch; /* the request in flight (or waiting to retry), or NULL */
    struct event *deliver;     /* answers waiters from the loop when the token is cached */
    /* The last fetch failed for good: calls until fail_until_us get its message without
     * asking the endpoint again (an app with a revoked secret would otherwise be asked on
     * every call). The window doubles with each failure in a row. */
    char *fail_err;
    int64_t fail_until_us;
    int fail_count;
};

/* A token request for one entry: up to OAUTH_ATTEMPTS attempts. */
struct oauth_fetch {
    struct oauth_entry *e;
    struct httpc_call *call; /* attempt in flight, or NULL */
    struct event *timer;     /* backoff before the next attempt */
    int attempt;             /* attempts started */
    int status;              /* the last answer's HTTP status (0: transport error) */
    int64_t sent_us;         /* when the current attempt started (the token's lifetime counts
                              * from here, so network time only shortens it) */
};

static struct oauth_entry *entries;
static unsigned long nfetches;
/* The batch of waiters being answered right now: a callback may oauth_cancel() a later
 * waiter of the same batch. */
static struct oauth_waiter *delivering;

static void fetch_done(void *arg, const struct httpc_response *resp);

/* ---- helpers ---- */

static void
wipe_free(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* Replace *slot with a copy of v (NULL allowed); a sensitive old value is wiped. */
static void
set_str(char **slot, const char *v, int sensitive)
{
    if (*slot == NULL ? v == NULL : v != NULL && strcmp(*slot, v) == 0) {
        return;
    }
    if (sensitive) {
        wipe_free(*slot);
    } else {
        free(*slot);
    }
    *slot = v ? xstrdup(v) : NULL;
}

static int
nonempty(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* base64url without padding (RFC 7515), malloc'd. */
static char *
b64url(const unsigned char *p, size_t n)
{
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);

    while (len > 0 && out[len - 1] == '=') {
        len--;
    }
    out[len] = '\0';
    for (char *c = out; *c != '\0'; c++) {
        if (*c == '+') {
            *c = '-';
        } else if (*c == '/') {
            *c = '_';
        }
    }
    return out;
}

/* application/x-www-form-urlencoded: everything but RFC 3986 unreserved characters is
 * percent-encoded. Appends "&name=value" (no '&' when *off is 0) to out, which the caller
 * sized with form_size(). */
static void
form_add(char *out, size_t *off, const char *name, const char *value)
{
    static const char hexd[] = "0123456789ABCDEF";
    size_t o = *off;

    if (o > 0) {
        out[o++] = '&';
    }
    memcpy(out + o, name, strlen(name));
    o += strlen(name);
    out[o++] = '=';
    for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hexd[*p >> 4];
            out[o++] = hexd[*p & 15];
        }
    }
    out[o] = '\0';
    *off = o;
}

static size_t
form_size(const char *name, const char *value)
{
    return 1 + strlen(name) + 1 + 3 * strlen(value);
}

/* ---- client assertion ---- */

/* Keys must not be encrypted: without this callback OpenSSL would prompt on the
 * terminal. */
static int
no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static char *
uuid_v4(char **errp)
{
    unsigned char r[16];
    char hex[33];

    if (util_random(r, sizeof(r)) == -1) {
        kg_err(errp, "client assertion: no random bytes available");
        return NULL;
    }
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* version 4 */
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    util_hex(r, sizeof(r), hex);
    return xasprintf("%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

/* Read the certificate and its RSA private key; *xp and *kp are the caller's to free. */
static int
load_credentials(const char *cert_file, const char *key_file, X509 **xp, EVP_PKEY **kp, char **errp)
{
    FILE *fp;

    *xp = NULL;
    *kp = NULL;
    if ((fp = fopen(cert_file, "r")) == NULL) {
        return kg_err(errp, "cert_file %s: %s", cert_file, strerror(errno));
    }
    *xp = PEM_read_X509(fp, NULL, no_password, NULL);
    fclose(fp);
    if (*xp == NULL) {
        return kg_err(errp, "cert_file %s: no PEM certificate", cert_file);
    }
    if ((fp = fopen(key_file, "r")) == NULL) {
        return kg_err(errp, "key_file %s: %s", key_file, strerror(errno));
    }
    *kp = PEM_read_PrivateKey(fp, NULL, no_password, NULL);
    fclose(fp);
    if (*kp == NULL) {
        return kg_err(errp, "key_file %s: no unencrypted PEM private key", key_file);
    }
    if (!EVP_PKEY_is_a(*kp, "RSA")) {
        return kg_err(errp, "key_file %s: not an RSA key (PS256 needs RSA)", key_file);
    }
    if (EVP_PKEY_get_bits(*kp) < 2048) {
        return kg_err(errp, "key_file %s: RSA keys under 2048 bits are refused", key_file);
    }
    if (X509_check_private_key(*xp, *kp) != 1) {
        return kg_err(errp, "key_file %s does not match cert_file %s", key_file, cert_file);
    }
    return 0;
}

/* base64url(SHA-256 of the certificate's DER encoding): the x5t#S256 header. */
static char *
cert_thumbprint(X509 *x, char **errp)
{
    unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int n = i2d_X509(x, &der);
    char *out = NULL;

    if (n <= 0 || EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1) {
        kg_err(errp, "cert_file: cannot encode the certificate");
    } else {
        out = b64url(md, mdlen);
    }
    OPENSSL_free(der);
    return out;
}

/* RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt over input; base64url. */
static char *
sign_ps256(EVP_PKEY *pkey, const char *input, char **errp)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char *sig = NULL;
    size_t siglen = 0;
    char *out = NULL;

    if (md == NULL || EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, pkey) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)input, strlen(input)) != 1) {
        kg_err(errp, "client assertion: cannot set up the PS256 signature");
        goto out;
    }
    sig = xmalloc(siglen);
    if (EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, strlen(input)) != 1) {
        kg_err(errp, "client assertion: signing failed");
        goto out;
    }
    out = b64url(sig, siglen);
out:
    free(sig);
    EVP_MD_CTX_free(md);
    return out;
}

/* Build and sign the assertion for (authority, tenant, client_id) with the certificate
 * and key files. See oauth.h. */
static char *
make_assertion(const char *authority, const char *tenant, const char *client_id,
               const char *cert_file, const char *key_file, char **errp)
{
    X509 *x = NULL;
    EVP_PKEY *pkey = NULL;
    char *thumb = NULL, *jti = NULL, *aud = NULL, *h64 = NULL, *c64 = NULL, *input = NULL;
    char *sig = NULL, *jws = NULL;
    struct buf hdr, claims;
    long long now = (long long)time(NULL);
    int rc = 0;

    buf_init(&hdr, 0);
    buf_init(&claims, 0);
    if (load_credentials(cert_file, key_file, &x, &pkey, errp) == -1 ||
        (thumb = cert_thumbprint(x, errp)) == NULL || (jti = uuid_v4(errp)) == NULL) {
        goto out;
    }
    aud = xasprintf("%s/%s/oauth2/v2.0/token", authority, tenant);
    rc |= buf_printf(&hdr, "{\"alg\":\"PS256\",\"typ\":\"JWT\",\"x5t#S256\":\"%s\"}", thumb);
    rc |= buf_puts(&claims, "{\"aud\":");
    rc |= buf_json_string(&claims, aud, strlen(aud));
    rc |= buf_puts(&claims, ",\"iss\":");
    rc |= buf_json_string(&claims, client_id, strlen(client_id));
    rc |= buf_puts(&claims, ",\"sub\":");
    rc |= buf_json_string(&claims, client_id, strlen(client_id));
    rc |= buf_printf(&claims, ",\"jti\":\"%s\",\"nbf\":%lld,\"iat\":%lld,\"exp\":%lld}", jti, now,
                     now, now + OAUTH_ASSERTION_LIFETIME);
    if (rc != 0) { /* cannot happen: the buffers are uncapped */
        kg_err(errp, "client assertion: buffer");
        goto out;
    }
    h64 = b64url((const unsigned char *)hdr.data, hdr.len);
    c64 = b64url((const unsigned char *)claims.data, claims.len);
    input = xasprintf("%s.%s", h64, c64);
    if ((sig = sign_ps256(pkey, input, errp)) == NULL) {
        goto out;
    }
    jws = xasprintf("%s.%s", input, sig);
out:
    if (jws == NULL) {
        ERR_clear_error(); /* leave no stale errors for the TLS code sharing the thread */
    }
    X509_free(x);
    EVP_PKEY_free(pkey);
    buf_free(&hdr);
    buf_free(&claims);
    free(thumb);
    free(jti);
    free(aud);
    free(h64);
    free(c64);
    free(input);
    free(sig);
    return jws;
}

/* Strip trailing slashes: "https://login.microsoftonline.com/" is a common spelling. */
static char *
authority_copy(const char *a)
{
    size_t n = strlen(a);

    while (n > 0 && a[n - 1] == '/') {
        n--;
    }
    return xstrndup(a, n);
}

/* Reject what cannot form a token request. The tenant becomes a path segment, so it is
 * limited to the characters of GUIDs and domain names. */
static int
app_check(const struct oauth_app *app, const char *scope, int need_cert, char **errp)
{
    if (app == NULL || !nonempty(app->authority) || !nonempty(app->tenant) ||
        !nonempty(app->client_id)) {
        return kg_err(errp, "oauth: authority, tenant and client_id are required");
    }
    if (strncmp(app->authority, "https://", 8) != 0 && strncmp(app->authority, "http://", 7) != 0) {
        return kg_err(errp, "oauth: authority must be an https:// URL");
    }
    if (strspn(app->tenant, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") !=
        strlen(app->tenant)) {
        return kg_err(errp, "oauth: tenant %s is not a GUID or domain name",
                      log_quote(app->tenant));
    }
    if (scope != NULL && !nonempty(scope)) {
        return kg_err(errp, "oauth: scope is required");
    }
    if (need_cert || !nonempty(app->secret)) {
        if (!nonempty(app->cert_file) || !nonempty(app->key_file)) {
            return kg_err(errp, need_cert ? "oauth: cert_file and key_file are required"
                                          : "oauth: a client secret or cert_file and key_file "
                                            "are required");
        }
    }
    return 0;
}

/* See oauth.h. */
char *
oauth_client_assertion(const struct oauth_app *app, char **errp)
{
    char *authority, *jws;

    if (app_check(app, NULL, 1, errp) == -1) {
        return NULL;
    }
    authority = authority_copy(app->authority);
    jws =
        make_assertion(authority, app->tenant, app->client_id, app->cert_file, app->key_file, errp);
    free(authority);
    return jws;
}

/* ---- cache entries ---- */

static void deliver_cb(evutil_socket_t fd, short what, void *arg);

static struct oauth_entry *
entry_find(const char *authority, const char *tenant, const char *client_id, const char *scope)
{
    for (struct oauth_entry *e = entries; e != NULL; e = e->next) {
        if (strcmp(e->authority, authority) == 0 && strcmp(e->tenant, tenant) == 0 &&
            strcmp(e->client_id, client_id) == 0 && strcmp(e->scope, scope) == 0) {
            return e;
        }
    }
    return NULL;
}

/* Forget the cached token (it was replaced, refused or the cache is going away). It is
 * also unregistered from redaction: the registry holds the tokens in use only, and a
 * stray old one in a header or a token response is still masked by its context. */
static void
entry_drop_token(struct oauth_entry *e)
{
    secret_unregister(e->token);
    wipe_free(e->token);
    e->token = NULL;
    e->expires_us = 0;
    e->lifetime_us = 0;
}

/* The token can be handed out: more than min(5 min, lifetime/10) left. */
static int
entry_fresh(const struct oauth_entry *e, int64_t now)
{
    int64_t margin = e->lifetime_us / 10;

    if (margin > OAUTH_MARGIN_MAX_US) {
        margin = OAUTH_MARGIN_MAX_US;
    }
    return e->token != NULL && now + margin < e->expires_us;
}

/* Answer every waiter queued on e now, in order. token and err are copied first: a
 * callback may force a new fetch (dropping e->token) or get again. */
static void
entry_answer(struct oauth_entry *e, const char *token, const char *err)
{
    struct oauth_waiter *saved = delivering;
    char *tok = token ? xstrdup(token) : NULL, *msg = err ? xstrdup(err) : NULL;

    delivering = e->waiters;
    e->waiters = NULL;
    e->tail = &e->waiters;
    while (delivering != NULL) {
        struct oauth_waiter *w = delivering;

        delivering = w->next;
        w->fn(w->arg, tok, tok ? NULL : msg);
        free(w);
    }
    delivering = saved;
    wipe_free(tok);
    free(msg);
}

/* ---- fetching ---- */

static void
fetch_free(struct oauth_fetch *f)
{
    if (f->call != NULL) {
        httpc_cancel(f->call);
    }
    if (f->timer != NULL) {
        event_free(f->timer);
    }
    free(f);
}

/* The form body for e; malloc'd, to be wiped (it holds the secret or the assertion). */
static char *
form_body(struct oauth_entry *e, char **errp)
{
    char *assertion = NULL, *body;
    size_t cap, off = 0;

    cap = form_size("client_id", e->client_id) + form_size("scope", e->scope) +
          form_size("grant_type", "client_credentials") + 1;
    if (nonempty(e->secret)) {
        secret_register(e->secret);
        cap += form_size("client_secret", e->secret);
    } else {
        assertion =
            make_assertion(e->authority, e->tenant, e->client_id, e->cert_file, e->key_file, errp);
        if (assertion == NULL) {
            return NULL;
        }
        cap += form_size("client_assertion_type", OAUTH_ASSERTION_TYPE) +
               form_size("client_assertion", assertion);
    }
    /* Sized once: growing the buffer would leave copies of the secret in freed memory. */
    body = xmalloc(cap);
    form_add(body, &off, "client_id", e->client_id);
    form_add(body, &off, "scope", e->scope);
    form_add(body, &off, "grant_type", "client_credentials");
    if (assertion == NULL) {
        form_add(body, &off, "client_secret", e->secret);
    } else {
        form_add(body, &off, "client_assertion_type", OAUTH_ASSERTION_TYPE);
        form_add(body, &off, "client_assertion", assertion);
        wipe_free(assertion);
    }
    return body;
}

/* Start the next attempt of f. -1 with *errp when the request cannot be built or
 * started (then no callback comes). */
static int
fetch_attempt(struct oauth_fetch *f, char **errp)
{
    static const char *const headers[] = { "Content-Type: application/x-www-form-urlencoded",
                                           "Accept: application/json", NULL };
    struct oauth_entry *e = f->e;
    struct httpc_request rq;
    char *body, *url;

    if ((body = form_body(e, errp)) == NULL) {
        return -1;
    }
    url = xasprintf("%s/%s/oauth2/v2.0/token", e->authority, e->tenant);
    memset(&rq, 0, sizeof(rq));
    rq.method = "POST";
    rq.url = url;
    rq.headers = headers;
    rq.body = body;
    rq.body_len = strlen(body);
    rq.timeout = OAUTH_TIMEOUT;
    rq.ca_file = e->ca_file;
    rq.proxy = e->proxy;
    rq.max_response = OAUTH_MAX_RESPONSE;
    f->attempt++;
    f->sent_us = util_mono_us();
    log_debug("oauth.request tenant=%s client=%s scope=%s attempt=%d", log_quote(e->tenant),
              log_quote(e->client_id), log_quote(e->scope), f->attempt);
    f->call = httpc_start(&rq, fetch_done, f, errp);
    wipe_free(body);
    free(url);
    return f->call != NULL ? 0 : -1;
}

/* Start a fetch for e. -1 with *errp when its first attempt cannot start. */
static int
fetch_start(struct oauth_entry *e, char **errp)
{
    struct oauth_fetch *f = xcalloc(1, sizeof(*f));

    f->e = e;
    if (fetch_attempt(f, errp) == -1) {
        fetch_free(f);
        return -1;
    }
    e->fetch = f;
    return 0;
}

/* The fetch failed for good with err. A renewal that fails while the cached token still
 * has some life left answers with that token: the resource may take it, and the next
 * oauth_get tries again. */
static void
fetch_fail(struct oauth_fetch *f, const char *err)
{
    struct oauth_entry *e = f->e;
    int f_status = f->status;

    e->fetch = NULL;
    fetch_free(f);
    if (e->token != NULL && e->expires_us - util_mono_us() > OAUTH_FALLBACK_US) {
        log_warn("oauth.renew_failed tenant=%s client=%s scope=%s err=%s using=cached",
                 log_quote(e->tenant), log_quote(e->client_id), log_quote(e->scope),
                 log_quote(err));
        entry_answer(e, e->token, NULL);
        return;
    }
    {
        int refused = f_status >= 400 && f_status < 500 && f_status != 429;
        int64_t base = refused ? OAUTH_FAIL_BASE_US : OAUTH_FAIL_SHORT_US;
        int64_t max = refused ? OAUTH_FAIL_MAX_US : OAUTH_FAIL_SHORT_MAX_US;
        int64_t wait = base;

        for (int i = 0; i < e->fail_count && wait < max; i++) {
            wait *= 2;
        }
        if (wait > max) {
            wait = max;
        }
        e->fail_count++;
        e->fail_until_us = util_mono_us() + wait;
        free(e->fail_err);
        e->fail_err = xstrdup(err);
        log_warn("oauth.failed tenant=%s client=%s scope=%s err=%s next_try_ms=%lld",
                 log_quote(e->tenant), log_quote(e->client_id), log_quote(e->scope), log_quote(err),
                 (long long)(wait / 1000));
    }
    entry_answer(e, NULL, err);
}

/* The cached failure, while its window is open (else NULL). */
static const char *
entry_failing(const struct oauth_entry *e)
{
    return e->fail_err != NULL && util_mono_us() < e->fail_until_us ? e->fail_err : NULL;
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct oauth_fetch *f = arg;
    char *err = NULL, *msg;

    (void)fd;
    (void)what;
    if (fetch_attempt(f, &err) == -1) {
        msg = xasprintf("token endpoint: %s", err ? err : "cannot start the request");
        free(err);
        fetch_fail(f, msg);
        free(msg);
    }
}

/* Seconds to wait before the next attempt: Retry-After (delta-seconds or an HTTP date)
 * when the server sent it, else 1 s, 2 s ... plus up to 250 ms of jitter. -1 when the
 * server asks for more than OAUTH_RETRY_AFTER_MAX seconds: give up now. */
static double
retry_delay(const struct httpc_response *resp, int attempt)
{
    const char *ra = resp->retry_after;
    unsigned char j = 0;

    if (ra != NULL) {
        while (*ra == ' ') {
            ra++;
        }
        if (*ra >= '0' && *ra <= '9') {
            char *end;
            double v = strtod(ra, &end);

            if (*end == '\0' || *end == ' ') {
                return v > OAUTH_RETRY_AFTER_MAX ? -1 : v;
            }
        } else {
            struct tm tm;
            const char *end;

            memset(&tm, 0, sizeof(tm));
            end = strptime(ra, "%a, %d %b %Y %H:%M:%S GMT", &tm);
            if (end != NULL) {
                double v = difftime(timegm(&tm), time(NULL));

                v = v < 0 ? 0 : v;
                return v > OAUTH_RETRY_AFTER_MAX ? -1 : v;
            }
        }
    }
    if (util_random(&j, 1) == -1) {
        j = 0;
    }
    return (double)(1 << (attempt - 1)) + j / 1024.0;
}

/* Parse a 200 answer: the access token (printable ASCII without spaces, since it goes
 * into an Authorization header) and its lifetime. */
static int
parse_token(const struct httpc_response *resp, char **token, long long *expires_in, char **errp)
{
    cJSON *root = NULL, *exp;
    const char *tok, *type;
    char *perr = NULL;
    int rc = -1;

    if (json_parse_strict(resp->body, resp->body_len, 8, &root, &perr) == -1) {
        kg_err(errp, "token endpoint: bad JSON in the answer: %s", perr);
        free(perr);
        return -1;
    }
    tok = json_get_string(root, "access_token");
    type = json_get_string(root, "token_type");
    exp = json_get(root, "expires_in");
    if (!nonempty(tok)) {
        kg_err(errp, "token endpoint: no access_token in the answer");
        goto out;
    }
    for (const char *p = tok; *p != '\0'; p++) {
        if (*p <= ' ' || *p > '~') {
            kg_err(errp, "token endpoint: malformed access_token");
            goto out;
        }
    }
    if (type != NULL && strcasecmp(type, "Bearer") != 0) {
        kg_err(errp, "token endpoint: token_type %s is not Bearer", log_quote(type));
        goto out;
    }
    /* A number; older endpoints sent a string of digits. */
    if (cJSON_IsNumber(exp)) {
        *expires_in = exp->valuedouble >= 1 ? (long long)exp->valuedouble : 0;
    } else if (cJSON_IsString(exp) && exp->valuestring[0] != '\0' &&
               strspn(exp->valuestring, "0123456789") == strlen(exp->valuestring) &&
               strlen(exp->valuestring) < 10) {
        *expires_in = atoll(exp->valuestring);
    } else {
        *expires_in = 0;
    }
    if (*expires_in <= 0) {
        kg_err(errp, "token endpoint: no valid expires_in in the answer");
        goto out;
    }
    if (*expires_in > OAUTH_MAX_LIFETIME) {
        *expires_in = OAUTH_MAX_LIFETIME;
    }
    *token = xstrdup(tok);
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

/* The error text for a failed answer: "<error>: <first line of error_description>" from
 * an identity platform error body, else "token endpoint: <transport error or status>". */
static char *
describe_failure(const struct httpc_response *resp)
{
    cJSON *root = NULL;
    const char *code, *desc;
    char *out;

    if (resp->status == 0) {
        return xasprintf("token endpoint: %s", resp->error ? resp->error : "transfer failed");
    }
    if (resp->body_len == 0 ||
        json_parse_strict(resp->body, resp->body_len, 8, &root, NULL) == -1 ||
        !nonempty(code = json_get_string(root, "error"))) {
        cJSON_Delete(root);
        return xasprintf("token endpoint: HTTP %d", resp->status);
    }
    desc = json_get_string(root, "error_description");
    if (nonempty(desc)) {
        size_t n = strcspn(desc, "\r\n");

        out = xasprintf("%.*s: %.*s", OAUTH_MAX_ERR, code,
                        (int)(n > OAUTH_MAX_ERR ? OAUTH_MAX_ERR : n), desc);
    } else {
        out = xasprintf("%.*s", OAUTH_MAX_ERR, code);
    }
    cJSON_Delete(root);
    return out;
}

/* httpc callback for one attempt: cache the token and answer the waiters, schedule a
 * retry (429, 503, 504, transport errors; at most OAUTH_ATTEMPTS), or fail. */
static void
fetch_done(void *arg, const struct httpc_response *resp)
{
    struct oauth_fetch *f = arg;
    struct oauth_entry *e = f->e;
    char *token = NULL, *err = NULL;
    long long expires_in = 0;
    double delay;

    f->call = NULL;
    f->status = resp->status;
    if (resp->status == 200) {
        if (parse_token(resp, &token, &expires_in, &err) == -1) {
            fetch_fail(f, err);
            free(err);
            return;
        }
        entry_drop_token(e);
        e->token = token;
        e->lifetime_us = expires_in * 1000000LL;
        e->expires_us = f->sent_us + e->lifetime_us;
        secret_register(token);
        nfetches++;
        log_info("oauth.token tenant=%s client=%s scope=%s expires_in=%lld attempt=%d",
                 log_quote(e->tenant), log_quote(e->client_id), log_quote(e->scope), expires_in,
                 f->attempt);
        e->fetch = NULL;
        fetch_free(f);
        free(e->fail_err);
        e->fail_err = NULL;
        e->fail_count = 0;
        entry_answer(e, e->token, NULL);
        return;
    }
    err = describe_failure(resp);
    if ((resp->status == 0 || resp->status == 429 || resp->status == 503 || resp->status == 504) &&
        f->attempt < OAUTH_ATTEMPTS && (delay = retry_delay(resp, f->attempt)) >= 0) {
        struct timeval tv;

        tv.tv_sec = (time_t)delay;
        tv.tv_usec = (suseconds_t)((delay - (double)tv.tv_sec) * 1e6);
        if (f->timer == NULL) {
            f->timer = evtimer_new(loop_base(), retry_cb, f);
        }
        if (f->timer != NULL && evtimer_add(f->timer, &tv) == 0) {
            log_warn("oauth.retry tenant=%s client=%s scope=%s attempt=%d status=%d delay=%.2f "
                     "err=%s",
                     log_quote(e->tenant), log_quote(e->client_id), log_quote(e->scope), f->attempt,
                     resp->status, delay, log_quote(err));
            free(err);
            return;
        }
    }
    fetch_fail(f, err);
    free(err);
}

/* Zero-delay event: answer the waiters of an entry whose token is cached. When the token
 * went stale (or was forced out) meanwhile, fetch one instead. */
static void
deliver_cb(evutil_socket_t fd, short what, void *arg)
{
    struct oauth_entry *e = arg;
    char *err = NULL;

    (void)fd;
    (void)what;
    if (e->waiters == NULL || e->fetch != NULL) {
        return;
    }
    if (entry_fresh(e, util_mono_us())) {
        entry_answer(e, e->token, NULL);
        return;
    }
    if (entry_failing(e) != NULL) {
        char *msg = xstrdup(e->fail_err); /* entry_answer may run a waiter that frees it */

        entry_answer(e, NULL, msg);
        free(msg);
        return;
    }
    if (fetch_start(e, &err) == -1) {
        entry_answer(e, NULL, err ? err : "token endpoint: cannot start the request");
        free(err);
    }
}

static struct oauth_entry *
entry_new(const struct oauth_app *app, const char *authority, const char *scope, char **errp)
{
    struct oauth_entry *e;

    if (loop_base() == NULL) {
        kg_err(errp, "oauth: the event loop is not initialised");
        return NULL;
    }
    e = xcalloc(1, sizeof(*e));
    e->deliver = event_new(loop_base(), -1, 0, deliver_cb, e);
    if (e->deliver == NULL) {
        free(e);
        kg_err(errp, "oauth: event_new failed");
        return NULL;
    }
    e->authority = xstrdup(authority);
    e->tenant = xstrdup(app->tenant);
    e->client_id = xstrdup(app->client_id);
    e->scope = xstrdup(scope);
    e->tail = &e->waiters;
    e->next = entries;
    entries = e;
    return e;
}

static void
entry_free(struct oauth_entry *e)
{
    struct oauth_waiter *w, *next;

    if (e->fetch != NULL) {
        fetch_free(e->fetch);
    }
    for (w = e->waiters; w != NULL; w = next) {
        next = w->next;
        free(w);
    }
    event_free(e->deliver);
    free(e->fail_err);
    free(e->authority);
    free(e->tenant);
    free(e->client_id);
    free(e->scope);
    wipe_free(e->secret);
    free(e->cert_file);
    free(e->key_file);
    free(e->ca_file);
    free(e->proxy);
    entry_drop_token(e);
    free(e);
}

/* See oauth.h. The waiter is queued on the key's entry; a fresh cached token is handed
 * out by the entry's zero-delay event, else a fetch starts unless one is in flight. */
int
oauth_get(const struct oauth_app *app, const char *scope, int force, oauth_fn fn, void *arg,
          char **errp)
{
    struct oauth_entry *e;
    struct oauth_waiter *w;
    char *authority;

    if (fn == NULL) {
        return kg_err(errp, "oauth: no callback");
    }
    if (app_check(app, scope == NULL ? "" : scope, 0, errp) == -1) {
        return -1;
    }
    authority = authority_copy(app->authority);
    e = entry_find(authority, app->tenant, app->client_id, scope);
    if (e == NULL && (e = entry_new(app, authority, scope, errp)) == NULL) {
        free(authority);
        return -1;
    }
    free(authority);
    if (e->fail_err != NULL &&
        (nonempty(app->secret) ? e->secret == NULL || strcmp(e->secret, app->secret) != 0
                               : e->secret != NULL)) {
        /* New credentials: the cached failure was about the old ones. */
        free(e->fail_err);
        e->fail_err = NULL;
        e->fail_count = 0;
    }
    if (nonempty(app->secret)) {
        set_str(&e->secret, app->secret, 1);
        set_str(&e->cert_file, NULL, 0);
        set_str(&e->key_file, NULL, 0);
    } else {
        set_str(&e->secret, NULL, 1);
        set_str(&e->cert_file, app->cert_file, 0);
        set_str(&e->key_file, app->key_file, 0);
    }
    set_str(&e->ca_file, app->ca_file, 0);
    set_str(&e->proxy, app->proxy, 0);
    if (force) {
        entry_drop_token(e);
    }
    if (e->fetch == NULL && !entry_fresh(e, util_mono_us()) && entry_failing(e) == NULL) {
        if (fetch_start(e, errp) == -1) {
            if (e->waiters != NULL) {
                event_active(e->deliver, 0, 0); /* they get the error from the loop */
            }
            return -1;
        }
    }
    w = xcalloc(1, sizeof(*w));
    w->fn = fn;
    w->arg = arg;
    *e->tail = w;
    e->tail = &w->next;
    if (e->fetch == NULL) {
        event_active(e->deliver, 0, 0);
    }
    return 0;
}

/* Unlink every waiter for (fn, arg) from the list at *pp; returns the new tail link. */
static struct oauth_waiter **
unlink_waiters(struct oauth_waiter **pp, oauth_fn fn, void *arg)
{
    while (*pp != NULL) {
        struct oauth_waiter *w = *pp;

        if (w->fn == fn && w->arg == arg) {
            *pp = w->next;
            free(w);
        } else {
            pp = &w->next;
        }
    }
    return pp;
}

/* See oauth.h. A fetch whose waiters all went away still completes: its token is
 * cached for the next caller. */
void
oauth_cancel(oauth_fn fn, void *arg)
{
    for (struct oauth_entry *e = entries; e != NULL; e = e->next) {
        e->tail = unlink_waiters(&e->waiters, fn, arg);
    }
    (void)unlink_waiters(&delivering, fn, arg);
}

unsigned long
oauth_fetches(void)
{
    return nfetches;
}

/* Cancel every fetch (before httpc_shutdown, which frees the calls) and free the cache;
 * waiting callbacks are not called. Must not be called from an oauth callback. Resets
 * oauth_fetches(). */
void
oauth_shutdown(void)
{
    while (entries != NULL) {
        struct oauth_entry *e = entries;

        entries = e->next;
        entry_free(e);
    }
    delivering = NULL;
    nfetches = 0;
}
