/* mock_blob.c: Azure Blob storage after the Blob REST API documentation, for the blob
 * poller: storage accounts under /blob/<account>/ (path-style addressing, as the storage
 * emulator does), containers, append blobs, List Blobs (restype=container&comp=list with
 * prefix, marker/NextMarker paging and maxresults, answered as an EnumerationResults XML
 * document), Get Blob with Range (206 with Content-Range, 416 past the end), errors in
 * Azure Storage's XML envelope with x-ms-error-code. Requests prove who they are with a
 * SAS (sv, se, sp, sig: the sig must be one the mock issued, se its expiry, sp holding r
 * and l) or an OAuth bearer token for https://storage.azure.com; x-ms-version is
 * required. Tests drive it with POST /_mock/blob (append, put, delete, sas, config) and
 * read it with GET /_mock/blob. The generic faults (/_mock/fault with a /blob/ prefix)
 * apply before this: 429, 500, 503, slow answers, dropped connections. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include "tests/mock/mock.h"

struct mblob {
    char *name;
    struct buf data;
    char created[40]; /* RFC 1123 */
    char modified[40];
    unsigned long version; /* the Etag's counter */
};

struct mcontainer {
    char *account;
    char *name;
    struct mvec blobs; /* struct mblob *, sorted by name */
};

struct msas {
    char *account;
    char *sig;
    char *se;
    int64_t exp_ms;
};

static struct mvec containers; /* struct mcontainer * */
static struct mvec sases;      /* struct msas * */
static int page_size;          /* 0: 5000 */
static unsigned long n_list, n_get, n_auth_failed, n_416, n_range, etag_base = 0x8DCF1A2B000ul;

static void
rfc1123(int64_t ms, char out[40])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* The error envelope of Azure Storage. */
void
blob_error(struct mreq *r, int status, const char *code, const char *msg)
{
    struct buf b;
    char now[32];

    mock_fmt_now(now);
    buf_init(&b, 0);
    (void)!buf_printf(&b,
                      "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>%s</Code>"
                      "<Message>%s\nRequestId:%s\nTime:%s</Message></Error>",
                      code, msg, r->request_id, now);
    mreq_set(r, status, "application/xml", b.data, b.len);
    mreq_header(r, "x-ms-error-code", code);
    mreq_header(r, "x-ms-request-id", r->request_id);
}

static struct mcontainer *
find_container(const char *account, const char *name, int create)
{
    struct mcontainer *c;

    for (size_t i = 0; i < containers.n; i++) {
        c = containers.v[i];
        if (strcmp(c->account, account) == 0 && strcmp(c->name, name) == 0) {
            return c;
        }
    }
    if (!create) {
        return NULL;
    }
    c = xcalloc(1, sizeof(*c));
    c->account = xstrdup(account);
    c->name = xstrdup(name);
    mvec_push(&containers, c);
    return c;
}

static struct mblob *
find_blob(struct mcontainer *c, const char *name)
{
    for (size_t i = 0; i < c->blobs.n; i++) {
        struct mblob *b = c->blobs.v[i];

        if (strcmp(b->name, name) == 0) {
            return b;
        }
    }
    return NULL;
}

static void
blob_free(struct mblob *b)
{
    buf_free(&b->data);
    free(b->name);
    free(b);
}

static int
by_name(const void *a, const void *b)
{
    return strcmp((*(struct mblob *const *)a)->name, (*(struct mblob *const *)b)->name);
}

static struct mblob *
new_blob(struct mcontainer *c, const char *name)
{
    struct mblob *b = xcalloc(1, sizeof(*b));

    b->name = xstrdup(name);
    buf_init(&b->data, 0);
    rfc1123(mock_now(), b->created);
    memcpy(b->modified, b->created, sizeof(b->created));
    b->version = ++etag_base;
    mvec_push(&c->blobs, b);
    qsort(c->blobs.v, c->blobs.n, sizeof(void *), by_name);
    return b;
}

/* ---- authentication ---- */

/* 0 when the request carries a valid SAS or bearer token for account; else answers. */
static int
authorize(struct mreq *r, const char *account)
{
    const char *sig = mhttp_param(r->h, "sig");
    const char *se = mhttp_param(r->h, "se");
    const char *sp = mhttp_param(r->h, "sp");

    if (mhttp_header(r->h, "x-ms-version") == NULL) {
        blob_error(r, 400, "MissingRequiredHeader",
                   "An HTTP header that's mandatory for this request is not specified.");
        return -1;
    }
    if (sig != NULL) {
        for (size_t i = 0; i < sases.n; i++) {
            struct msas *s = sases.v[i];

            if (strcmp(s->account, account) != 0 || strcmp(s->sig, sig) != 0) {
                continue;
            }
            if (se == NULL || strcmp(se, s->se) != 0) {
                break; /* a changed expiry: the signature no longer matches */
            }
            if (mock_now() >= s->exp_ms) {
                char msg[200];

                n_auth_failed++;
                snprintf(msg, sizeof(msg),
                         "Server failed to authenticate the request. Make sure the value of "
                         "Authorization header is formed correctly including the signature. "
                         "Signed expiry time [%s] must be after the current time",
                         s->se);
                blob_error(r, 403, "AuthenticationFailed", msg);
                return -1;
            }
            if (sp == NULL || strchr(sp, 'r') == NULL || strchr(sp, 'l') == NULL) {
                n_auth_failed++;
                blob_error(r, 403, "AuthorizationPermissionMismatch",
                           "This request is not authorized to perform this operation using "
                           "this permission.");
                return -1;
            }
            return 0;
        }
        n_auth_failed++;
        blob_error(r, 403, "AuthenticationFailed",
                   "Server failed to authenticate the request. Make sure the value of "
                   "Authorization header is formed correctly including the signature.");
        return -1;
    }
    if (mhttp_header(r->h, "Authorization") != NULL) {
        if (token_check(r, AUD_STORAGE) == -1) {
            n_auth_failed++;
            return -1;
        }
        return 0;
    }
    n_auth_failed++;
    blob_error(r, 401, "NoAuthenticationInformation",
               "Server failed to authenticate the request. Please refer to the information in "
               "the www-authenticate header.");
    return -1;
}

/* ---- the API ---- */

static void
put_escaped(struct buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&':
            (void)!buf_puts(b, "&amp;");
            break;
        case '<':
            (void)!buf_puts(b, "&lt;");
            break;
        case '>':
            (void)!buf_puts(b, "&gt;");
            break;
        default:
            (void)!buf_append(b, s, 1);
        }
    }
}

/* The marker of the page starting at name: opaque to clients, like Azure's. */
static char *
marker_of(const char *name)
{
    char *b64 = mock_b64url_encode((const unsigned char *)name, strlen(name));
    char *m = xasprintf("2!%zu!%s", strlen(b64), b64);

    free(b64);
    return m;
}

static char *
name_of_marker(const char *m)
{
    const char *p = strrchr(m, '!');
    size_t n = 0;
    unsigned char *d;

    if (strncmp(m, "2!", 2) != 0 || p == NULL) {
        return NULL;
    }
    d = mock_b64url_decode(p + 1, strlen(p + 1), &n);
    return (char *)d;
}

static void
list_blobs(struct mreq *r, struct mcontainer *c)
{
    const char *prefix = mhttp_param(r->h, "prefix");
    const char *marker = mhttp_param(r->h, "marker");
    const char *maxr = mhttp_param(r->h, "maxresults");
    long max = maxr != NULL ? strtol(maxr, NULL, 10) : 5000;
    char *from = NULL;
    struct buf b;
    size_t i = 0, shown = 0;

    if (max <= 0 || max > 5000) {
        blob_error(r, 400, "OutOfRangeQueryParameterValue",
                   "One of the query parameters specified in the request URI is outside the "
                   "permissible range.");
        return;
    }
    if (page_size > 0 && max > page_size) {
        max = page_size;
    }
    if (marker != NULL && marker[0] != '\0' && (from = name_of_marker(marker)) == NULL) {
        blob_error(r, 400, "InvalidQueryParameterValue",
                   "Value for one of the query parameters specified in the request URI is "
                   "invalid.");
        return;
    }
    n_list++;
    buf_init(&b, 0);
    (void)!buf_printf(&b,
                      "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults "
                      "ServiceEndpoint=\"%s/blob/%s/\" ContainerName=\"%s\">",
                      r->base, c->account, c->name);
    if (prefix != NULL) {
        (void)!buf_puts(&b, "<Prefix>");
        put_escaped(&b, prefix);
        (void)!buf_puts(&b, "</Prefix>");
    }
    if (marker != NULL) {
        (void)!buf_puts(&b, "<Marker>");
        put_escaped(&b, marker);
        (void)!buf_puts(&b, "</Marker>");
    }
    (void)!buf_printf(&b, "<MaxResults>%ld</MaxResults><Blobs>", max);
    if (from != NULL) {
        while (i < c->blobs.n && strcmp(((struct mblob *)c->blobs.v[i])->name, from) < 0) {
            i++;
        }
    }
    for (; i < c->blobs.n; i++) {
        struct mblob *bl = c->blobs.v[i];

        if (prefix != NULL && strncmp(bl->name, prefix, strlen(prefix)) != 0) {
            continue;
        }
        if (shown == (size_t)max) {
            break;
        }
        shown++;
        (void)!buf_puts(&b, "<Blob><Name>");
        put_escaped(&b, bl->name);
        (void)!buf_printf(&b,
                          "</Name><Properties><Creation-Time>%s</Creation-Time>"
                          "<Last-Modified>%s</Last-Modified><Etag>0x%lX</Etag>"
                          "<Content-Length>%zu</Content-Length>"
                          "<Content-Type>application/octet-stream</Content-Type>"
                          "<BlobType>AppendBlob</BlobType><LeaseStatus>unlocked</LeaseStatus>"
                          "<LeaseState>available</LeaseState>"
                          "<ServerEncrypted>true</ServerEncrypted></Properties><OrMetadata />"
                          "</Blob>",
                          bl->created, bl->modified, bl->version, bl->data.len);
    }
    (void)!buf_puts(&b, "</Blobs>");
    /* the next blob that would match starts the next page */
    for (; i < c->blobs.n; i++) {
        struct mblob *bl = c->blobs.v[i];

        if (prefix == NULL || strncmp(bl->name, prefix, strlen(prefix)) == 0) {
            char *m = marker_of(bl->name);

            (void)!buf_printf(&b, "<NextMarker>%s</NextMarker>", m);
            free(m);
            break;
        }
    }
    if (i >= c->blobs.n) {
        (void)!buf_puts(&b, "<NextMarker />");
    }
    (void)!buf_puts(&b, "</EnumerationResults>");
    free(from);
    mreq_set(r, 200, "application/xml", b.data, b.len);
}

static void
get_blob(struct mreq *r, struct mblob *bl)
{
    const char *range = mhttp_header(r->h, "Range");
    const char *xrange = mhttp_header(r->h, "x-ms-range");
    size_t size = bl->data.len, from = 0, to = size > 0 ? size - 1 : 0;
    char hv[96];
    char *body;

    if (xrange != NULL) {
        range = xrange;
    }
    n_get++;
    if (range != NULL) {
        char *end;
        unsigned long long a, z;

        if (strncmp(range, "bytes=", 6) != 0) {
            blob_error(r, 400, "InvalidRange", "The range specified is invalid.");
            return;
        }
        a = strtoull(range + 6, &end, 10);
        if (end == range + 6 || *end != '-') {
            blob_error(r, 400, "InvalidRange", "The range specified is invalid.");
            return;
        }
        z = end[1] == '\0' ? (unsigned long long)to : strtoull(end + 1, NULL, 10);
        if (a >= size) {
            n_416++;
            blob_error(r, 416, "InvalidRange",
                       "The range specified is invalid for the current size of the resource.");
            snprintf(hv, sizeof(hv), "bytes */%zu", size);
            mreq_header(r, "Content-Range", hv);
            return;
        }
        if (z < a) {
            blob_error(r, 400, "InvalidRange", "The range specified is invalid.");
            return;
        }
        if (z > to) {
            z = to;
        }
        from = (size_t)a;
        to = (size_t)z;
        n_range++;
    }
    body = xmalloc(to - from + 2);
    if (size > 0) {
        memcpy(body, bl->data.data + from, to - from + 1);
    }
    body[size > 0 ? to - from + 1 : 0] = '\0';
    mreq_set(r, range != NULL ? 206 : 200, "application/octet-stream", body,
             size > 0 ? to - from + 1 : 0);
    if (range != NULL) {
        snprintf(hv, sizeof(hv), "bytes %zu-%zu/%zu", from, to, size);
        mreq_header(r, "Content-Range", hv);
    }
    snprintf(hv, sizeof(hv), "\"0x%lX\"", bl->version);
    mreq_header(r, "ETag", hv);
    mreq_header(r, "Last-Modified", bl->modified);
    mreq_header(r, "x-ms-creation-time", bl->created);
    mreq_header(r, "x-ms-blob-type", "AppendBlob");
    mreq_header(r, "x-ms-blob-committed-block-count", "1");
    mreq_header(r, "Accept-Ranges", "bytes");
}

/* /blob/<account>/<container>[/<blob name>] */
void
mock_blob_handle(struct mreq *r)
{
    const char *p = r->h->path + 6; /* after "/blob/" */
    const char *slash = strchr(p, '/'), *cname, *bname;
    char account[64], container[64];
    struct mcontainer *c;

    r->svc = SVC_BLOB;
    r->log_route = "blob";
    if (slash == NULL || slash == p || (size_t)(slash - p) >= sizeof(account)) {
        blob_error(r, 400, "InvalidUri",
                   "The requested URI does not represent any resource on "
                   "the server.");
        return;
    }
    snprintf(account, sizeof(account), "%.*s", (int)(slash - p), p);
    cname = slash + 1;
    bname = strchr(cname, '/');
    if ((bname != NULL ? (size_t)(bname - cname) : strlen(cname)) >= sizeof(container) ||
        cname[0] == '\0' || cname[0] == '/') {
        blob_error(r, 400, "InvalidResourceName",
                   "The specifed resource name contains invalid characters.");
        return;
    }
    snprintf(container, sizeof(container), "%.*s",
             (int)(bname != NULL ? (size_t)(bname - cname) : strlen(cname)), cname);
    if (authorize(r, account) == -1) {
        return;
    }
    if (strcmp(r->h->head.method, "GET") != 0) {
        blob_error(r, 405, "UnsupportedHttpVerb",
                   "The resource doesn't support specified Http Verb.");
        return;
    }
    c = find_container(account, container, 0);
    if (c == NULL) {
        blob_error(r, 404, "ContainerNotFound", "The specified container does not exist.");
        return;
    }
    if (bname == NULL || bname[1] == '\0') {
        const char *rt = mhttp_param(r->h, "restype"), *comp = mhttp_param(r->h, "comp");

        r->log_route = "blob.list";
        if (rt == NULL || comp == NULL || strcmp(rt, "container") != 0 ||
            strcmp(comp, "list") != 0) {
            blob_error(r, 400, "InvalidQueryParameterValue",
                       "Value for one of the query parameters specified in the request URI is "
                       "invalid.");
            return;
        }
        list_blobs(r, c);
        return;
    }
    r->log_route = "blob.get";
    {
        struct mblob *bl = find_blob(c, bname + 1);

        if (bl == NULL) {
            blob_error(r, 404, "BlobNotFound", "The specified blob does not exist.");
            return;
        }
        get_blob(r, bl);
    }
}

/* ---- control ---- */

static cJSON *
state_json(void)
{
    cJSON *o = cJSON_CreateObject(), *cs = cJSON_AddArrayToObject(o, "containers");

    cJSON_AddNumberToObject(o, "lists", (double)n_list);
    cJSON_AddNumberToObject(o, "gets", (double)n_get);
    cJSON_AddNumberToObject(o, "ranged_gets", (double)n_range);
    cJSON_AddNumberToObject(o, "answered_416", (double)n_416);
    cJSON_AddNumberToObject(o, "auth_failed", (double)n_auth_failed);
    cJSON_AddNumberToObject(o, "page_size", page_size);
    for (size_t i = 0; i < containers.n; i++) {
        struct mcontainer *c = containers.v[i];
        cJSON *co = cJSON_CreateObject(), *bs = cJSON_AddObjectToObject(co, "blobs");

        cJSON_AddStringToObject(co, "account", c->account);
        cJSON_AddStringToObject(co, "name", c->name);
        for (size_t j = 0; j < c->blobs.n; j++) {
            struct mblob *b = c->blobs.v[j];

            cJSON_AddNumberToObject(bs, b->name, (double)b->data.len);
        }
        cJSON_AddItemToArray(cs, co);
    }
    return o;
}

static char *
sign(const char *account, const char *se)
{
    unsigned char mac[32];
    unsigned int n = 0;
    char *msg = xasprintf("%s\nrl\n%s\n%lu", account, se, ++etag_base);
    char *out;

    HMAC(EVP_sha256(), mock.salt, (int)strlen(mock.salt), (const unsigned char *)msg, strlen(msg),
         mac, &n);
    free(msg);
    out = mock_b64url_encode(mac, n);
    return out;
}

/* POST /_mock/blob {"op": ...}:
 *   append {account, container, blob, data}: create the blob if needed, append data (text;
 *          or data_base64: any bytes); age: seconds ago it was written (default 0)
 *   put    {account, container, blob, data}: create it again (new Creation-Time) with data
 *   rewrite {account, container, blob, data}: its content replaced in place (same
 *          Creation-Time, new Etag), as a block blob written again
 *   delete {account, container, blob}
 *   container {account, container}: create an empty container
 *   sas    {account, expires_in (s, may be negative), permissions? "rl"}: issue a SAS,
 *          answered as {"sas": "sv=...&se=...&sp=...&sig=..."}
 *   config {page_size}: the most blobs per listing page (0: as asked, up to 5000) */
int
mock_blob_control(const cJSON *o, cJSON **reply, char **errp)
{
    const char *op = jstr(o, "op"), *account = jstr(o, "account");
    const char *container = jstr(o, "container"), *name = jstr(o, "blob");
    const char *data = jstr(o, "data"), *b64 = jstr(o, "data_base64");
    unsigned char *bin = NULL;
    size_t dlen = data != NULL ? strlen(data) : 0;

    *reply = NULL;
    if (op == NULL) {
        return kg_err(errp, "op: required");
    }
    if (strcmp(op, "config") == 0) {
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(o, "page_size");

        if (!cJSON_IsNumber(ps) || ps->valuedouble < 0 || ps->valuedouble > 5000) {
            return kg_err(errp, "page_size: expected 0 to 5000");
        }
        page_size = (int)ps->valuedouble;
        *reply = state_json();
        return 0;
    }
    if (account == NULL || account[0] == '\0' || strlen(account) >= 64 || strchr(account, '/')) {
        return kg_err(errp, "account: required, no '/'");
    }
    if (strcmp(op, "sas") == 0) {
        const cJSON *ex = cJSON_GetObjectItemCaseSensitive(o, "expires_in");
        const char *perm = jstr(o, "permissions");
        struct msas *s = xcalloc(1, sizeof(*s));
        char se[32];
        time_t t;
        struct tm tm;

        if (!cJSON_IsNumber(ex)) {
            free(s);
            return kg_err(errp, "expires_in: expected seconds");
        }
        s->exp_ms = mock_now() + (int64_t)(ex->valuedouble * 1000);
        t = (time_t)(s->exp_ms / 1000);
        gmtime_r(&t, &tm);
        strftime(se, sizeof(se), "%Y-%m-%dT%H:%M:%SZ", &tm);
        s->account = xstrdup(account);
        s->se = xstrdup(se);
        s->sig = sign(account, se);
        mvec_push(&sases, s);
        *reply = cJSON_CreateObject();
        {
            char *sig = xstrdup(s->sig); /* base64url: nothing to escape */
            char *sas = xasprintf("sv=2021-08-06&ss=b&srt=co&sp=%s&se=%s&st=2026-01-01T00:00:00Z"
                                  "&spr=https&sig=%s",
                                  perm != NULL ? perm : "rl", se, sig);

            cJSON_AddStringToObject(*reply, "sas", sas);
            free(sas);
            free(sig);
        }
        return 0;
    }
    if (container == NULL || container[0] == '\0' || strlen(container) >= 64 ||
        strchr(container, '/')) {
        return kg_err(errp, "container: required, no '/'");
    }
    if (strcmp(op, "container") == 0) {
        (void)find_container(account, container, 1);
        *reply = state_json();
        return 0;
    }
    if (name == NULL || name[0] == '\0' || name[0] == '/' || strlen(name) > 1024) {
        return kg_err(errp, "blob: required, 1 to 1024 bytes, not starting with '/'");
    }
    if (strcmp(op, "rewrite") == 0) {
        struct mcontainer *c = find_container(account, container, 0);
        struct mblob *b = c != NULL ? find_blob(c, name) : NULL;

        if (b == NULL || data == NULL) {
            return kg_err(errp, "rewrite: no such blob, or no data");
        }
        buf_reset(&b->data);
        (void)!buf_append(&b->data, data, strlen(data));
        b->version = ++etag_base;
        rfc1123(mock_now(), b->modified);
        *reply = state_json();
        return 0;
    }
    if (strcmp(op, "append") == 0 || strcmp(op, "put") == 0) {
        struct mcontainer *c = find_container(account, container, 1);
        struct mblob *b = find_blob(c, name);

        if (b64 != NULL) {
            if ((bin = mock_b64_decode(b64, strlen(b64), &dlen)) == NULL) {
                return kg_err(errp, "data_base64: not base64");
            }
            data = (const char *)bin;
        }
        if (data == NULL) {
            return kg_err(errp, "data: required (text), or data_base64 (any bytes)");
        }
        if (b != NULL && strcmp(op, "put") == 0) {
            mvec_remove(&c->blobs, b);
            blob_free(b);
            b = NULL;
        }
        if (b == NULL) {
            b = new_blob(c, name);
            if (strcmp(op, "put") == 0) {
                /* a blob created again carries a later Creation-Time */
                static int64_t later;

                rfc1123(mock_now() + (++later) * 1000, b->created);
            }
        }
        (void)!buf_append(&b->data, data, dlen);
        free(bin);
        b->version = ++etag_base;
        {
            /* "age": seconds ago the blob was last written (archived logs) */
            const cJSON *age = cJSON_GetObjectItemCaseSensitive(o, "age");
            int64_t ago = cJSON_IsNumber(age) && age->valuedouble > 0
                              ? (int64_t)(age->valuedouble * 1000)
                              : 0;

            rfc1123(mock_now() - ago, b->modified);
            if (ago > 0) {
                memcpy(b->created, b->modified, sizeof(b->created));
            }
        }
        *reply = state_json();
        return 0;
    }
    if (strcmp(op, "delete") == 0) {
        struct mcontainer *c = find_container(account, container, 0);
        struct mblob *b = c != NULL ? find_blob(c, name) : NULL;

        if (b == NULL) {
            return kg_err(errp, "no such blob");
        }
        mvec_remove(&c->blobs, b);
        blob_free(b);
        *reply = state_json();
        return 0;
    }
    return kg_err(errp, "op: expected append, put, rewrite, delete, container, sas or config");
}

cJSON *
mock_blob_json(void)
{
    return state_json();
}

void
mock_blob_reset(void)
{
    for (size_t i = 0; i < containers.n; i++) {
        struct mcontainer *c = containers.v[i];

        for (size_t j = 0; j < c->blobs.n; j++) {
            blob_free(c->blobs.v[j]);
        }
        mvec_free(&c->blobs);
        free(c->account);
        free(c->name);
        free(c);
    }
    mvec_free(&containers);
    for (size_t i = 0; i < sases.n; i++) {
        struct msas *s = sases.v[i];

        free(s->account);
        free(s->sig);
        free(s->se);
        free(s);
    }
    mvec_free(&sases);
    page_size = 0;
    n_list = n_get = n_auth_failed = n_416 = n_range = 0;
}
