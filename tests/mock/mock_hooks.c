/* mock_hooks.c: webhook receivers (POST /hooks/<name>) standing in for a Teams Workflows
 * URL, a Slack incoming webhook or a customer's own endpoint. A receiver with a secret
 * verifies X-Kagari-Signature (sha256=HMAC-SHA256 of "<X-Kagari-Timestamp>.<body>") and
 * the timestamp's age (5 minutes) and answers 401 when either is wrong; every request is
 * recorded, with whether it verified and whether its delivery id was seen before. The
 * generic faults (/_mock/fault with a /hooks/ prefix) apply before this. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include "tests/mock/mock.h"

struct hook {
    char *name;
    char *secret; /* NULL: accepts anything */
    cJSON *received;
};

static struct mvec hooks;

static struct hook *
hook_find(const char *name, int create)
{
    struct hook *h;

    for (size_t i = 0; i < hooks.n; i++) {
        h = hooks.v[i];
        if (strcmp(h->name, name) == 0) {
            return h;
        }
    }
    if (!create) {
        return NULL;
    }
    h = xcalloc(1, sizeof(*h));
    h->name = xstrdup(name);
    h->received = cJSON_CreateArray();
    mvec_push(&hooks, h);
    return h;
}

/* {"name": ..., "secret": ... (null: none), "clear": true} */
int
mock_hooks_config(const cJSON *o, char **errp)
{
    const char *name = jstr(o, "name");
    const cJSON *secret = cJSON_GetObjectItemCaseSensitive(o, "secret");
    struct hook *h;

    if (name == NULL || name[0] == '\0' || strchr(name, '/') != NULL) {
        return kg_err(errp, "name: the receiver's name (the path segment after /hooks/)");
    }
    h = hook_find(name, 1);
    if (secret != NULL) {
        free(h->secret);
        h->secret = cJSON_IsString(secret) ? xstrdup(secret->valuestring) : NULL;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "clear"))) {
        cJSON_Delete(h->received);
        h->received = cJSON_CreateArray();
    }
    return 0;
}

cJSON *
mock_hooks_json(const char *name)
{
    struct hook *h = hook_find(name, 0);
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddItemToObject(o, "received",
                          h != NULL ? cJSON_Duplicate(h->received, 1) : cJSON_CreateArray());
    return o;
}

/* 1 when sig is "sha256=<hex of HMAC(secret, ts "." body)>", compared in constant time. */
static int
verify(const char *secret, const char *ts, const char *sig, const char *body, size_t len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    char hex[65];
    struct buf m;
    int ok;

    if (ts == NULL || sig == NULL || strncmp(sig, "sha256=", 7) != 0 || strlen(sig) != 71) {
        return 0;
    }
    buf_init(&m, 0);
    (void)!buf_printf(&m, "%s.", ts);
    (void)!buf_append(&m, body, len);
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)m.data, m.len, mac,
         &mlen);
    buf_free(&m);
    util_hex(mac, 32, hex);
    ok = CRYPTO_memcmp(hex, sig + 7, 64) == 0;
    return ok;
}

void
mock_hooks_receive(struct mreq *r)
{
    struct mhttp_req *h = r->h;
    const char *name = h->path + 7; /* after "/hooks/" */
    struct hook *hk = hook_find(name, 1);
    const char *ts = mhttp_header(h, "X-Kagari-Timestamp");
    const char *sig = mhttp_header(h, "X-Kagari-Signature");
    const char *delivery = mhttp_header(h, "X-Kagari-Delivery");
    cJSON *rec = cJSON_CreateObject(), *it;
    int ok = 1, dup = 0;

    if (strcmp(h->head.method, "POST") != 0) {
        cJSON_Delete(rec);
        mreq_set(r, 405, "text/plain", xstrdup("POST only"), 9);
        return;
    }
    if (hk->secret != NULL) {
        int64_t age = ts != NULL ? mock_now() / 1000 - strtoll(ts, NULL, 10) : 0;

        ok = verify(hk->secret, ts, sig, h->body, h->body_len) && age > -300 && age < 300;
    }
    cJSON_ArrayForEach(it, hk->received)
    {
        const char *d = jstr(it, "delivery");

        dup |= delivery != NULL && d != NULL && strcmp(d, delivery) == 0 &&
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "accepted"));
    }
    cJSON_AddStringToObject(rec, "body", h->body);
    cJSON_AddNumberToObject(rec, "at_ms", (double)util_now_ms());
    jset_str(rec, "delivery", delivery);
    jset_str(rec, "idempotency_key", mhttp_header(h, "Idempotency-Key"));
    jset_str(rec, "content_type", mhttp_header(h, "Content-Type"));
    jset_str(rec, "timestamp", ts);
    cJSON_AddBoolToObject(rec, "signed", sig != NULL);
    cJSON_AddBoolToObject(rec, "signature_ok", hk->secret != NULL && ok);
    cJSON_AddBoolToObject(rec, "accepted", ok);
    cJSON_AddBoolToObject(rec, "duplicate", dup);
    cJSON_AddItemToArray(hk->received, rec);
    if (!ok) {
        mreq_set(r, 401, "application/json", xstrdup("{\"error\":\"bad signature\"}"), 25);
        return;
    }
    mreq_set(r, 200, "application/json", xstrdup("{\"ok\":true}"), 11);
}

void
mock_hooks_free(void)
{
    for (size_t i = 0; i < hooks.n; i++) {
        struct hook *h = hooks.v[i];

        free(h->name);
        free(h->secret);
        cJSON_Delete(h->received);
        free(h);
    }
    mvec_free(&hooks);
}
