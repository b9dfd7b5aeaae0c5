/* blob.c: the Azure Blob storage poller (docs/sources.md, "Azure storage"). Azure
 * diagnostic settings archive their records to a storage account: one container per
 * category (insights-logs-<category>) holding hourly append blobs (.../PT1H.json), one
 * JSON record per line. Per tenant, every `every` seconds, each configured container is
 * listed (List Blobs, paged by NextMarker); each blob that grew past the offset stored
 * for it is read from that offset (ranged Get Blob, in chunks); its complete lines go
 * through the engine's normalizers and the admit step, and the offset moves in the same
 * transaction as the records it covers (admit_*_marked), so a kill -9 neither skips nor
 * repeats a record. A half-written last line waits for the next poll.
 *
 * Every request goes through the call core (connectors/call.c): the tenant's rate limit,
 * a circuit breaker per tenant and storage account, credentials (a SAS token in the
 * query, or an OAuth token of the tenant's Microsoft app for Azure Storage), retries
 * with Retry-After. Each tenant polls on its own timer with its own requests: a tenant
 * whose storage fails waits (backing off) without holding back the others. */
#include "connectors/blob.h"

#include <ctype.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "connectors/call.h"
#include "connectors/microsoft.h"
#include "connectors/xml.h"

#define BLOB_API_VERSION "2021-08-06"
#define BLOB_SCOPE "https://storage.azure.com/.default"
#define BLOB_MARK_SOURCE "blob"
#define BLOB_BACKOFF_MAX_S 900.0 /* the longest wait after repeated failures */
#define BLOB_SLICE_LINES 2000    /* lines per batch, at most */
#define BLOB_STEP_BLOBS 500      /* blobs of a listing looked at per loop pass */
#define BLOB_SLICE_US 10000      /* work per batch, at most (then the loop goes on) */

/* ---- settings: tenants.<id>.blob ---- */

struct blob_conf {
    char *account_url; /* https://<account>.blob.core.windows.net */
    char **containers;
    size_t ncontainers;
    char *prefix; /* only blobs whose name starts with it, or NULL */
    char *sas;    /* as written ("enc:v1:..." or plain), or NULL: OAuth */
    double every; /* seconds between polls, default 60 */
    size_t chunk; /* bytes per ranged read, default 4 MiB */
    char *source; /* the source a record of no known shape is taken for, or NULL */
    char *scope;  /* OAuth scope, default https://storage.azure.com/.default */
    /* seconds: blobs last modified longer ago are not read and their offsets are
     * forgotten; default 30 days */
    double max_age;
};

#define BC(f) offsetof(struct blob_conf, f)
static const struct config_field blob_fields[] = {
    { "account_url", CONFIG_URL, BC(account_url), 0, 0, NULL, 0 },
    { "containers", CONFIG_STRINGS, BC(containers), 0, 0, NULL, BC(ncontainers) },
    { "prefix", CONFIG_STRING, BC(prefix), 0, 0, NULL, 0 },
    { "sas", CONFIG_STRING, BC(sas), 0, 0, NULL, 0 },
    { "every", CONFIG_DURATION, BC(every), 1, 86400, NULL, 0 },
    { "chunk", CONFIG_SIZE, BC(chunk), 4096, 64 * 1024 * 1024, NULL, 0 },
    { "source", CONFIG_NAME, BC(source), 0, 0, NULL, 0 },
    { "scope", CONFIG_SCOPE, BC(scope), 0, 0, NULL, 0 },
    { "max_age", CONFIG_DURATION, BC(max_age), 3600, 100 * 366 * 86400.0, NULL, 0 },
    CONFIG_FIELDS_END,
};

/* A container name as Azure allows it: 3 to 63 of [a-z0-9-], starting and ending with a
 * letter or digit, no two hyphens in a row. */
static int
container_valid(const char *s)
{
    size_t n = strlen(s);

    if (n < 3 || n > 63 || s[0] == '-' || s[n - 1] == '-') {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-') ||
            (s[i] == '-' && s[i + 1] == '-')) {
            return 0;
        }
    }
    return 1;
}

static int
blob_check(void *conf, char **errp)
{
    struct blob_conf *c = conf;

    if (c->account_url == NULL) {
        return kg_err(errp, "account_url: required (https://<account>.blob.core.windows.net)");
    }
    if (c->ncontainers == 0) {
        return kg_err(errp, "containers: required, e.g. { \"insights-logs-signinlogs\" }");
    }
    for (size_t i = 0; i < c->ncontainers; i++) {
        if (!container_valid(c->containers[i])) {
            return kg_err(errp,
                          "containers: \"%s\" is not a container name (3 to 63 of a-z, 0-9 "
                          "and single hyphens)",
                          c->containers[i]);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->containers[i], c->containers[j]) == 0) {
                return kg_err(errp, "containers: \"%s\" is listed twice", c->containers[i]);
            }
        }
    }
    if (c->prefix != NULL && (c->prefix[0] == '\0' || strlen(c->prefix) > 1024)) {
        return kg_err(errp, "prefix: expected 1 to 1024 bytes");
    }
    if (c->sas != NULL && c->sas[0] == '\0') {
        return kg_err(errp, "sas: empty (leave it out to use the tenant's Microsoft app)");
    }
    if (c->every == 0) {
        c->every = 60;
    }
    if (c->chunk == 0) {
        c->chunk = 4 * 1024 * 1024;
    }
    if (c->scope == NULL) {
        c->scope = xstrdup(BLOB_SCOPE);
    }
    if (c->max_age == 0) {
        c->max_age = 30 * 86400.0;
    }
    return 0;
}

static const char blob_example[] =
    "--         -- Azure diagnostic logs archived to a storage account, polled:\n"
    "--         blob = { account_url = \"https://acct.blob.core.windows.net\",\n"
    "--                  containers = { \"insights-logs-signinlogs\" },\n"
    "--                  sas = \"enc:v1:...\", -- or leave it out: the microsoft app's token\n"
    "--                  every = \"1m\" },\n";

static const struct config_section blob_section = {
    "blob", blob_fields, sizeof(struct blob_conf), blob_check, blob_example,
};

void
blob_register(void)
{
    config_add_section(&blob_section);
}

/* ---- the List Blobs answer ---- */

void
blob_listing_clear(struct blob_listing *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].name);
        free(l->items[i].created);
        free(l->items[i].etag);
    }
    free(l->items);
    free(l->next_marker);
    memset(l, 0, sizeof(*l));
}

static int
parse_size(const char *s, int64_t *out)
{
    int64_t v = 0;

    if (s == NULL || s[0] == '\0' || strlen(s) > 18) {
        return -1;
    }
    for (; *s != '\0'; s++) {
        if (!isdigit((unsigned char)*s)) {
            return -1;
        }
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return 0;
}

/* A copy of s (NULL: "") cut to at most max bytes. */
static char *
copy_max(const char *s, size_t max)
{
    return s != NULL ? xstrndup(s, strnlen(s, max)) : xstrdup("");
}

int
blob_parse_listing(const char *xml, size_t n, struct blob_listing *out, char **errp)
{
    struct xml_node *root = NULL, *blobs, *b;
    const char *next;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (xml_parse(xml, n, &root, errp) == -1) {
        return -1;
    }
    if (strcmp(root->name, "EnumerationResults") != 0) {
        kg_err(errp, "listing: expected EnumerationResults, got %.64s", root->name);
        goto out;
    }
    blobs = xml_child(root, "Blobs");
    for (b = blobs != NULL ? blobs->child : NULL; b != NULL; b = b->next) {
        const char *name, *len, *created, *etag, *modified;
        struct blob_item *it;

        if (strcmp(b->name, "Blob") != 0) {
            continue; /* BlobPrefix (hierarchical listings) and anything newer */
        }
        if (out->n == BLOB_LIST_MAX) {
            kg_err(errp, "listing: more than %d blobs in one page", BLOB_LIST_MAX);
            goto out;
        }
        name = xml_path_text(b, "Name");
        if (name == NULL || name[0] == '\0' || strlen(name) > 1024) {
            kg_err(errp, "listing: blob %zu: Name missing or over 1024 bytes", out->n + 1);
            goto out;
        }
        len = xml_path_text(b, "Properties/Content-Length");
        modified = xml_path_text(b, "Properties/Last-Modified");
        created = xml_path_text(b, "Properties/Creation-Time");
        etag = xml_path_text(b, "Properties/Etag");
        out->items = xrealloc(out->items, (out->n + 1) * sizeof(*out->items));
        it = &out->items[out->n];
        memset(it, 0, sizeof(*it));
        if (parse_size(len, &it->size) == -1) {
            kg_err(errp, "listing: blob %zu: Content-Length is not a size", out->n + 1);
            goto out;
        }
        it->name = xstrdup(name);
        it->created = copy_max(created, 64);
        it->etag = copy_max(etag, 128);
        if (modified != NULL && modified[0] != '\0' && strlen(modified) < 64) {
            time_t when = curl_getdate(modified, NULL);

            it->modified_ms = when > 0 ? (int64_t)when * 1000 : 0;
        }
        out->n++;
    }
    next = xml_path_text(root, "NextMarker");
    if (next != NULL && next[0] != '\0') {
        if (strlen(next) > 4096) {
            kg_err(errp, "listing: NextMarker over 4096 bytes");
            goto out;
        }
        out->next_marker = xstrdup(next);
    }
    rc = 0;
out:
    xml_free(root);
    if (rc == -1) {
        blob_listing_clear(out);
    }
    return rc;
}

/* ---- per tenant ---- */

struct poller;

/* One tenant's poll: its settings, its SAS, its timer and where its cycle stands. Only one
 * cycle runs at a time per tenant; each step waits for one request or one admit. */
struct btenant {
    struct poller *p;
    char id[64];
    const struct blob_conf *conf; /* borrowed from the configuration */
    char *sas;                    /* decrypted, registered for redaction; NULL: OAuth */
    double every;                 /* seconds between polls: conf's, or a reload's */
    int stopped;                  /* a reload removed its blob block: no poll after this one */
    int64_t armed_ms;             /* when its timer was last set */
    struct event *timer;
    struct event *cont;    /* the cycle goes on at the next loop pass */
    struct call *call;     /* the request in flight, or NULL */
    int admitting;         /* an admit of ours has not answered yet: 2 for events */
    int reading;           /* the request in flight reads a blob (else it lists) */
    int sending;           /* inside call_request */
    int answered;          /* on_answer ran inside call_request */
    int failures;          /* cycles that failed in a row */
    uint64_t missing;      /* containers (by index) found missing at the last listing */
    int64_t sas_expiry_ms; /* the SAS's se=, or 0 */
    int64_t sas_warned_ms; /* when its coming expiry was last said */
    int64_t pruned_ms;     /* when its old marks were last pruned */

    /* the cycle */
    size_t ci;    /* container */
    char *marker; /* of the next listing page, or NULL */
    struct blob_listing list;
    size_t bi;          /* blob in list */
    int64_t offset;     /* where the current blob's next read starts */
    int skipping;       /* inside a line too long to keep: drop up to its newline */
    int64_t read_until; /* the listed size of the current blob */

    /* the answer being read (filled by the map function) */
    int status;
    char *body;
    size_t body_len;
    int64_t body_at; /* the blob offset of body[0] */
    size_t pos;      /* the next line of body to take */
    int more;        /* body holds complete lines past pos */

    /* the batch being admitted */
    struct alert *alerts, *events;
    size_t nalerts, nevents;
    int64_t next_offset;
    int next_skipping;
    size_t slice_alerts, slice_events, slice_dups; /* new and known records of the slice */

    struct btenant *next;
};

struct poller {
    struct btenant *tenants;
    int draining;
};

static struct {
    unsigned long long polls, poll_failures, auth_failures, throttled, lists, reads;
    unsigned long long bytes, alerts, events, replaced, shrunk;
    unsigned long long admit_failures, too_old, marks_pruned;
} st;

/* Lines read and rejected per container name (summed over tenants: the names are the
 * operator's, never a tenant's); the first 64 names, later ones count as "other". */
#define BLOB_COUNTED_MAX 64
static struct counted {
    char name[64];
    unsigned long long records, rejected;
} counted[BLOB_COUNTED_MAX + 1];
static size_t ncounted;

static struct counted *
count_of(const char *container)
{
    for (size_t i = 0; i < ncounted; i++) {
        if (strcmp(counted[i].name, container) == 0) {
            return &counted[i];
        }
    }
    if (ncounted == BLOB_COUNTED_MAX) {
        snprintf(counted[BLOB_COUNTED_MAX].name, sizeof(counted[0].name), "other");
        return &counted[BLOB_COUNTED_MAX];
    }
    snprintf(counted[ncounted].name, sizeof(counted[0].name), "%s", container);
    return &counted[ncounted++];
}

static const char not_configured[] =
    "no blob storage is configured for this tenant (tenants.<id>.blob in kagari.conf.lua)";

static const char *
api_base(const struct tenant *t)
{
    const struct blob_conf *c = tenant_conf(t, &blob_section);

    return c != NULL ? c->account_url : NULL;
}

/* The tenants of the running poller, for the credentials (the call core asks by tenant). */
static struct poller *running;

static struct btenant *
find_bt(const struct tenant *t)
{
    const char *id = tenant_id(t);

    for (struct btenant *b = running != NULL ? running->tenants : NULL; b != NULL; b = b->next) {
        if (strcmp(b->id, id) == 0) {
            return b;
        }
    }
    return NULL;
}

static int
api_credentials(const struct tenant *t, struct call_cred *cred, char **errp)
{
    const struct blob_conf *c = tenant_conf(t, &blob_section);
    const struct microsoft_conf *ms = tenant_conf(t, &microsoft_section);
    struct btenant *b = find_bt(t);

    if (c == NULL) {
        return kg_err(errp, "%s", not_configured);
    }
    if (b != NULL && b->sas != NULL) {
        cred->kind = CALL_AUTH_NONE; /* the SAS rides in the query */
        return 0;
    }
    if (ms == NULL) {
        return kg_err(errp, "blob: no sas and no Microsoft app (tenants.<id>.microsoft) for an "
                            "OAuth token");
    }
    cred->kind = CALL_AUTH_OAUTH2;
    cred->app.authority = ms->authority;
    cred->app.tenant = ms->tenant_id;
    cred->app.client_id = ms->client_id;
    cred->app.secret = tenant_state(t, &microsoft_section);
    cred->app.cert_file = ms->certificate;
    cred->app.key_file = ms->private_key;
    cred->scope = c->scope;
    return 0;
}

/* "<Code>: <Message's first line>" of Azure Storage's XML error envelope. */
static char *
api_error_text(const struct httpc_response *resp)
{
    struct xml_node *root = NULL;
    char *out = NULL;

    if (xml_parse(resp->body, resp->body_len, &root, NULL) == 0) {
        const char *code = xml_path_text(root, "Code");
        const char *msg = xml_path_text(root, "Message");

        if (strcmp(root->name, "Error") == 0 && code != NULL) {
            size_t ml = msg != NULL ? strcspn(msg, "\r\n") : 0;

            out = xasprintf("%.64s: %.*s", code, (int)(ml > 300 ? 300 : ml), msg ? msg : "");
        }
    }
    xml_free(root);
    return out;
}

/* Azure Storage takes 20,000 requests per second per account: the bucket is only there
 * so that one tenant's backlog cannot flood its account. */
static const struct call_limit blob_limits[] = {
    { "blob", 50, 100 },
    { NULL, 0, 0 },
};

static const struct call_api blob_api = {
    "blob",      api_base,       not_configured, api_credentials, "Accept: application/xml",
    blob_limits, api_error_text,
};

/* ---- the cycle ---- */

static void cycle_step(struct btenant *b);
static void cycle_end(struct btenant *b, const char *error, int status);
static void sas_watch(struct btenant *b);

static void
arm(struct btenant *b, double seconds)
{
    struct timeval tv;

    tv.tv_sec = (time_t)seconds;
    tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
    b->armed_ms = util_now_ms();
    evtimer_add(b->timer, &tv);
}

static void
answer_clear(struct btenant *b)
{
    free(b->body);
    b->body = NULL;
    b->body_len = 0;
    b->status = 0;
    b->pos = 0;
    b->more = 0;
}

/* Keep the answer's bytes (a blob's bytes may hold anything, NUL included: the call core's
 * text result cannot carry them) and its status. 2xx, and for a read 404 (deleted since
 * the listing) and 416 (shorter than listed), are ours to judge; the rest fail. */
static int
map_keep(struct call *c, const struct httpc_response *resp, char **result)
{
    struct btenant *b = call_ud(c);

    if ((resp->status >= 200 && resp->status < 300) || resp->status == 404 || resp->status == 416) {
        answer_clear(b);
        b->status = resp->status;
        b->body = xmalloc(resp->body_len + 1);
        memcpy(b->body, resp->body, resp->body_len);
        b->body[resp->body_len] = '\0';
        b->body_len = resp->body_len;
        *result = xstrdup("true");
        return 1;
    }
    b->status = resp->status;
    *result = call_error_text(c, resp);
    return 0;
}

/* Percent-encode a blob name for the path: RFC 3986 unreserved and '/' kept. */
static void
put_name(struct buf *p, const char *name)
{
    for (const unsigned char *s = (const unsigned char *)name; *s != '\0'; s++) {
        if (isalnum(*s) || strchr("-._~/", *s) != NULL) {
            (void)!buf_append(p, s, 1);
        } else {
            (void)!buf_printf(p, "%%%02X", *s);
        }
    }
}

static void
put_query(struct buf *p, const char *key, const char *value)
{
    char *e = call_escape(value);

    (void)!buf_printf(p, "&%s=%s", key, e);
    free(e);
}

static void on_answer(void *arg, int ok, const char *result);

/* Send one request of the cycle: path (taken) under the account, with extra headers. */
static void
send_req(struct btenant *b, const char *kind, char *path, const char *range)
{
    struct tenant *t = tenant_find(b->id);
    struct call_spec spec;
    struct call *c;
    const char *headers[4];
    size_t nh = 0;
    char *err = NULL;

    headers[nh++] = "Accept: application/xml";
    headers[nh++] = "x-ms-version: " BLOB_API_VERSION;
    if (range != NULL) {
        headers[nh++] = range;
    }
    headers[nh] = NULL;
    memset(&spec, 0, sizeof(spec));
    spec.kind = kind;
    spec.api = &blob_api;
    spec.limiter = "blob";
    spec.prio = LIMITER_ENRICH;
    spec.idempotent = 1;
    spec.method = "GET";
    spec.path = path;
    spec.map = map_keep;
    spec.ud = b;
    spec.headers = headers;
    answer_clear(b);
    if (t == NULL) {
        free(path);
        cycle_end(b, "the tenant is not open", 0);
        return;
    }
    /* The call may end inside call_request (no credentials): on_answer then runs before
     * it returns, and what it returns is no longer a call. */
    b->sending = 1;
    b->answered = 0;
    c = call_request(t, &spec, on_answer, b, &err);
    b->sending = 0;
    free(path);
    if (c == NULL) {
        cycle_end(b, err != NULL ? err : "cannot start the request", 0);
        free(err);
    } else if (!b->answered) {
        b->call = c;
    }
}

static void
list_page(struct btenant *b)
{
    struct buf p;

    buf_init(&p, 0);
    (void)!buf_printf(&p, "/%s?restype=container&comp=list&maxresults=%d",
                      b->conf->containers[b->ci], BLOB_LIST_MAX);
    if (b->conf->prefix != NULL) {
        put_query(&p, "prefix", b->conf->prefix);
    }
    if (b->marker != NULL) {
        put_query(&p, "marker", b->marker);
    }
    if (b->sas != NULL) {
        (void)!buf_printf(&p, "&%s", b->sas);
    }
    st.lists++;
    b->reading = 0;
    send_req(b, "blob.list", buf_take(&p), NULL);
}

static void
read_chunk(struct btenant *b)
{
    const struct blob_item *it = &b->list.items[b->bi];
    int64_t end = b->offset + (int64_t)b->conf->chunk;
    struct buf p;
    char range[80];

    if (end > b->read_until) {
        end = b->read_until;
    }
    buf_init(&p, 0);
    (void)!buf_printf(&p, "/%s/", b->conf->containers[b->ci]);
    put_name(&p, it->name);
    if (b->sas != NULL) {
        (void)!buf_printf(&p, "?%s", b->sas);
    }
    snprintf(range, sizeof(range), "Range: bytes=%" PRId64 "-%" PRId64, b->offset, end - 1);
    st.reads++;
    b->reading = 1;
    send_req(b, "blob.read", buf_take(&p), range);
}

/* The mark of a blob: {"offset":N,"created":"...","skip":0|1}. */
static char *
mark_key(const struct btenant *b, const struct blob_item *it)
{
    return xasprintf("%s/%s", b->conf->containers[b->ci], it->name);
}

/* Where to start reading blob it, from its stored mark: 1 with b->offset set when it has
 * bytes past the mark, 0 when there is nothing new, -1 with *errp on a store error. A blob
 * created again since (another Creation-Time) or shorter than the mark is read again
 * from its start (the records already stored are recognized as duplicates). */
static int
blob_start(struct btenant *b, const struct blob_item *it, char **errp)
{
    struct tenant *t = tenant_find(b->id);
    char *key, *value = NULL;
    int64_t offset = 0;
    int skip = 0;

    if (t == NULL) {
        return kg_err(errp, "the tenant is not open");
    }
    if (it->modified_ms > 0 &&
        it->modified_ms < util_now_ms() - (int64_t)(b->conf->max_age * 1000)) {
        st.too_old++;
        return 0; /* older than blob.max_age: not read (its offset may be forgotten) */
    }
    key = mark_key(b, it);
    if (tenant_mark_get(t, BLOB_MARK_SOURCE, key, &value, errp) == -1) {
        free(key);
        return -1;
    }
    if (value != NULL) {
        cJSON *m = cJSON_Parse(value);
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(m, "offset");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "created");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(m, "skip");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(m, "etag");
        const cJSON *z = cJSON_GetObjectItemCaseSensitive(m, "size");

        offset = cJSON_IsNumber(o) && o->valuedouble >= 0 ? (int64_t)o->valuedouble : 0;
        skip = cJSON_IsTrue(s);
        if (cJSON_IsString(c) && strcmp(c->valuestring, it->created) != 0) {
            st.replaced++;
            log_warn("blob.replaced tenant=%s container=%s blob=%s was_created=%s created=%s "
                     "offset=%" PRId64 " reading from the start",
                     b->id, b->conf->containers[b->ci], log_quote(it->name),
                     log_quote(c->valuestring), log_quote(it->created), offset);
            offset = 0;
            skip = 0;
        } else if (it->size < offset) {
            st.shrunk++;
            log_warn("blob.shrunk tenant=%s container=%s blob=%s size=%" PRId64 " offset=%" PRId64
                     " reading from the start",
                     b->id, b->conf->containers[b->ci], log_quote(it->name), it->size, offset);
            offset = 0;
            skip = 0;
        } else if (cJSON_IsString(e) && strcmp(e->valuestring, it->etag) != 0 &&
                   cJSON_IsNumber(z) && (int64_t)z->valuedouble == it->size && it->size > 0) {
            /* Changed without growing: an append blob changes its Etag only by growing,
             * so this one was written again in place. */
            st.replaced++;
            log_warn("blob.rewritten tenant=%s container=%s blob=%s was_etag=%s etag=%s "
                     "size=%" PRId64 " reading from the start",
                     b->id, b->conf->containers[b->ci], log_quote(it->name),
                     log_quote(e->valuestring), log_quote(it->etag), it->size);
            offset = 0;
            skip = 0;
        }
        cJSON_Delete(m);
    }
    free(value);
    free(key);
    b->offset = offset;
    b->skipping = skip;
    b->read_until = it->size;
    return it->size > offset ? 1 : 0;
}

static void
on_cont(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    cycle_step(arg);
}

/* The next step of the cycle: the next blob with new bytes, the next listing page, the
 * next container, or the end. A page of blobs that did not change is looked at
 * BLOB_STEP_BLOBS at a time, the loop going on in between. */
static void
cycle_step(struct btenant *b)
{
    char *err = NULL;
    int looked = 0;

    if (b->p->draining) {
        cycle_end(b, NULL, 0);
        return;
    }
    while (b->bi < b->list.n) {
        int rc;

        if (++looked > BLOB_STEP_BLOBS) {
            struct timeval now = { 0, 0 };

            evtimer_add(b->cont, &now);
            return;
        }
        rc = blob_start(b, &b->list.items[b->bi], &err);

        if (rc == -1) {
            cycle_end(b, err, 0);
            free(err);
            return;
        }
        if (rc == 1) {
            read_chunk(b);
            return;
        }
        b->bi++;
    }
    if (b->list.next_marker != NULL) {
        free(b->marker);
        b->marker = xstrdup(b->list.next_marker);
        blob_listing_clear(&b->list);
        b->bi = 0;
        list_page(b);
        return;
    }
    blob_listing_clear(&b->list);
    b->bi = 0;
    free(b->marker);
    b->marker = NULL;
    if (++b->ci < b->conf->ncontainers) {
        list_page(b);
        return;
    }
    cycle_end(b, NULL, 0);
}

static void
free_batch(struct alert *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        alert_free(&v[i]);
    }
    free(v);
}

static void
push(struct alert **v, size_t *n, struct alert *a)
{
    *v = xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = *a;
}

/* One complete line (without its newline) at offset at: normalized into the batch, or
 * rejected alone with its reason. */
static void
take_line(struct btenant *b, struct tenant *t, const char *line, size_t n, int64_t at)
{
    struct alert a;
    char *err = NULL;
    const struct blob_item *it = &b->list.items[b->bi];

    if (n > 0 && line[n - 1] == '\r') {
        n--;
    }
    while (n > 0 && (line[0] == ' ' || line[0] == '\t')) {
        line++;
        n--;
        at++;
    }
    if (n == 0) {
        return; /* blank lines separate nothing */
    }
    count_of(b->conf->containers[b->ci])->records++;
    if (memchr(line, '\0', n) != NULL) {
        err = xstrdup("the line holds a NUL byte");
    } else if (poll_normalize(line, n, b->conf->source, util_now_ms(), &a, &err) == -1 &&
               err == NULL) {
        err = xstrdup("not understood");
    }
    if (err != NULL) {
        count_of(b->conf->containers[b->ci])->rejected++;
        log_warn("blob.rejected tenant=%s container=%s blob=%s offset=%" PRId64 " reason=%s", b->id,
                 b->conf->containers[b->ci], log_quote(it->name), at, log_quote(err));
        free(err);
        return;
    }
    if (admit_is_alert(t, &a, a.cls != ALERT_CLASS_EVENT)) {
        push(&b->alerts, &b->nalerts, &a);
    } else {
        push(&b->events, &b->nevents, &a);
    }
}

static void on_admitted(void *arg, const struct admit_result *res);
static void take_slice(struct btenant *b);

/* Admit what the batch holds: the alerts first (unmarked), then the events with the
 * mark; with only one kind, that kind carries the mark. The mark's batch is the last one,
 * so it never becomes durable before the records it covers. */
static void
admit_next(struct btenant *b)
{
    struct tenant *t = tenant_find(b->id);
    const struct blob_item *it = &b->list.items[b->bi];
    struct admit_mark mark;
    char *key, *value;

    if (t == NULL) {
        free_batch(b->alerts, b->nalerts);
        free_batch(b->events, b->nevents);
        b->alerts = b->events = NULL;
        b->nalerts = b->nevents = 0;
        cycle_end(b, "the tenant is not open", 0);
        return;
    }
    b->admitting = 1;
    if (b->nevents > 0 && b->nalerts > 0) {
        struct alert *v = b->alerts;
        size_t n = b->nalerts;

        b->alerts = NULL;
        b->nalerts = 0;
        admit_alerts(t, v, n, on_admitted, b);
        return;
    }
    key = mark_key(b, it);
    {
        cJSON *m = cJSON_CreateObject();

        cJSON_AddNumberToObject(m, "offset", (double)b->next_offset);
        cJSON_AddStringToObject(m, "created", it->created);
        cJSON_AddStringToObject(m, "etag", it->etag);
        cJSON_AddNumberToObject(m, "size", (double)it->size);
        cJSON_AddBoolToObject(m, "skip", b->next_skipping);
        value = cJSON_PrintUnformatted(m);
        cJSON_Delete(m);
    }
    mark.source = BLOB_MARK_SOURCE;
    mark.key = key;
    mark.value = value;
    if (b->nevents > 0) {
        struct alert *v = b->events;
        size_t n = b->nevents;

        b->events = NULL;
        b->nevents = 0;
        b->admitting = 2;
        admit_events_marked(t, v, n, &mark, on_admitted, b);
    } else {
        struct alert *v = b->alerts;
        size_t n = b->nalerts;

        b->alerts = NULL;
        b->nalerts = 0;
        admit_alerts_marked(t, v, n, &mark, on_admitted, b);
    }
    free(key);
    cJSON_free(value);
}

static void
on_admitted(void *arg, const struct admit_result *res)
{
    struct btenant *b = arg;
    int last = b->nalerts == 0 && b->nevents == 0;

    if (res->status != ADMIT_OK) {
        static const char *const why[] = { "ok", "store error", "commit failed", "shutting down",
                                           "database locked" };

        b->admitting = 0;
        b->slice_alerts = b->slice_events = b->slice_dups = 0;
        free_batch(b->alerts, b->nalerts);
        free_batch(b->events, b->nevents);
        b->alerts = b->events = NULL;
        b->nalerts = b->nevents = 0;
        if (res->status != ADMIT_SHUTTING_DOWN) {
            st.admit_failures++;
        }
        cycle_end(b, why[res->status], 0);
        return;
    }
    if (b->admitting == 2) {
        st.events += res->accepted;
        b->slice_events += res->accepted;
    } else {
        st.alerts += res->accepted;
        b->slice_alerts += res->accepted;
    }
    b->slice_dups += res->duplicates;
    b->admitting = 0;
    if (!last) {
        admit_next(b);
        return;
    }
    /* Where each stored record came from, for whoever asks afterwards. */
    log_info("blob.stored tenant=%s container=%s blob=%s from=%" PRId64 " to=%" PRId64
             " alerts=%zu events=%zu duplicates=%zu",
             b->id, b->conf->containers[b->ci], log_quote(b->list.items[b->bi].name), b->offset,
             b->next_offset, b->slice_alerts, b->slice_events, b->slice_dups);
    b->slice_alerts = b->slice_events = b->slice_dups = 0;
    b->offset = b->next_offset;
    b->skipping = b->next_skipping;
    if (b->more && !b->p->draining) {
        take_slice(b); /* the rest of the chunk */
        return;
    }
    answer_clear(b);
    if (b->offset < b->read_until && !b->p->draining) {
        read_chunk(b);
        return;
    }
    b->bi++;
    cycle_step(b);
}

/* A slice of the chunk in b->body (whose first byte is at b->body_at in the blob): the
 * complete lines from b->pos on, at most BLOB_SLICE_LINES of them or BLOB_SLICE_US of
 * work, become the batch; the offset after the last one taken is the new mark. Slices
 * keep the loop free for the other tenants and sources: the next one starts after this
 * one's commit. A line longer than a chunk cannot be kept: it is rejected and skipped up
 * to its newline. */
static void
take_slice(struct btenant *b)
{
    struct tenant *t = tenant_find(b->id);
    const struct blob_item *it = &b->list.items[b->bi];
    const char *d = b->body + b->pos, *end = b->body + b->body_len, *nl, *start = d;
    int skipping = b->skipping;
    int64_t t0 = util_mono_us();
    int lines = 0;

    if (t == NULL) {
        cycle_end(b, "the tenant is not open", 0);
        return;
    }
    if (skipping) {
        nl = memchr(d, '\n', (size_t)(end - d));
        if (nl == NULL) {
            d = end;
        } else {
            d = nl + 1;
            skipping = 0;
        }
    }
    while (d < end && (nl = memchr(d, '\n', (size_t)(end - d))) != NULL) {
        take_line(b, t, d, (size_t)(nl - d), b->body_at + (d - b->body));
        d = nl + 1;
        if (++lines >= BLOB_SLICE_LINES || util_mono_us() - t0 >= BLOB_SLICE_US) {
            break;
        }
    }
    if (b->pos == 0 && d == start && d < end && (size_t)(end - d) >= b->conf->chunk) {
        /* a whole chunk without a newline: a line too long to keep */
        count_of(b->conf->containers[b->ci])->records++;
        count_of(b->conf->containers[b->ci])->rejected++;
        log_warn("blob.rejected tenant=%s container=%s blob=%s offset=%" PRId64 " reason=%s", b->id,
                 b->conf->containers[b->ci], log_quote(it->name), b->body_at + (d - b->body),
                 log_quote("the line is longer than blob.chunk"));
        d = end;
        skipping = 1;
    }
    b->pos = (size_t)(d - b->body);
    b->more = d < end && memchr(d, '\n', (size_t)(end - d)) != NULL;
    b->next_offset = b->body_at + (int64_t)b->pos;
    b->next_skipping = skipping;
    if (b->next_offset == b->offset && b->nalerts == 0 && b->nevents == 0) {
        /* only the start of a line still being written: it waits for the next poll */
        answer_clear(b);
        b->bi++;
        cycle_step(b);
        return;
    }
    admit_next(b);
}

/* A chunk of the current blob arrived: read it in slices from the offset asked for. */
static void
take_chunk(struct btenant *b)
{
    st.bytes += b->body_len;
    b->body_at = b->offset;
    b->pos = 0;
    if (b->status == 200 && b->offset > 0) {
        /* The whole blob, the Range ignored (a proxy, an old service version): from the
         * offset on. */
        b->body_at = 0;
        b->pos = (size_t)b->offset < b->body_len ? (size_t)b->offset : b->body_len;
    }
    take_slice(b);
}

static void
on_answer(void *arg, int ok, const char *result)
{
    struct btenant *b = arg;
    int listing = !b->reading;

    b->call = NULL;
    if (b->sending) {
        b->answered = 1;
    }
    if (!ok) {
        int status = b->status;
        const char *h = result != NULL ? strstr(result, ": HTTP ") : NULL;

        /* A failure the call core gave up on (retries used up) names its status. */
        if (status == 0 && h != NULL) {
            status = atoi(h + 7);
        }
        cycle_end(b, result, status);
        return;
    }
    if (listing && b->status == 404) {
        /* No such container (yet): the diagnostic setting makes it with its first record.
         * Said once, and the other containers are still read. */
        uint64_t bit = b->ci < 64 ? (uint64_t)1 << b->ci : 0;

        if (bit == 0 || !(b->missing & bit)) {
            log_warn("blob.container_missing tenant=%s container=%s (not there yet: a "
                     "diagnostic setting creates it with its first record)",
                     b->id, b->conf->containers[b->ci]);
        }
        b->missing |= bit;
        answer_clear(b);
        blob_listing_clear(&b->list);
        b->bi = 0;
        cycle_step(b);
        return;
    }
    if (listing) {
        char *err = NULL;

        if (b->ci < 64) {
            b->missing &= ~((uint64_t)1 << b->ci);
        }
        blob_listing_clear(&b->list);
        if (blob_parse_listing(b->body, b->body_len, &b->list, &err) == -1) {
            answer_clear(b);
            cycle_end(b, err, 0);
            free(err);
            return;
        }
        answer_clear(b);
        b->bi = 0;
        cycle_step(b);
        return;
    }
    if (b->status == 404 || b->status == 416) {
        log_warn("blob.gone tenant=%s container=%s blob=%s status=%d offset=%" PRId64
                 " (deleted or shortened since the listing; looked at again next poll)",
                 b->id, b->conf->containers[b->ci], log_quote(b->list.items[b->bi].name), b->status,
                 b->offset);
        answer_clear(b);
        b->bi++;
        cycle_step(b);
        return;
    }
    take_chunk(b);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct btenant *b = arg;

    (void)fd;
    (void)what;
    if (b->p->draining || b->stopped || b->call != NULL || b->admitting) {
        return;
    }
    st.polls++;
    sas_watch(b);
    b->ci = 0;
    b->bi = 0;
    blob_listing_clear(&b->list);
    free(b->marker);
    b->marker = NULL;
    list_page(b);
}

/* Once a day: forget the offsets of blobs that can no longer be read (last written longer
 * than blob.max_age and a day ago), so that the marks do not grow with the account's
 * history. */
static void
prune_marks(struct btenant *b)
{
    struct tenant *t = tenant_find(b->id);
    int64_t now = util_now_ms();
    int deleted = 0;
    char *err = NULL;

    if (t == NULL || now - b->pruned_ms < 86400000LL) {
        return;
    }
    b->pruned_ms = now;
    if (tenant_mark_prune(t, BLOB_MARK_SOURCE,
                          now - (int64_t)(b->conf->max_age * 1000) - 86400000LL, &deleted,
                          &err) == -1) {
        log_warn("blob.prune_failed tenant=%s error=%s", b->id, log_quote(err));
        free(err);
        return;
    }
    st.marks_pruned += (unsigned long long)deleted;
    if (deleted > 0) {
        log_info("blob.marks_pruned tenant=%s n=%d", b->id, deleted);
    }
}

/* The cycle is over: error NULL when it went through, else why it stopped (status: the
 * HTTP status that failed it, or 0). The next poll comes after `every`, or later after
 * failures in a row (doubling, up to BLOB_BACKOFF_MAX_S), so a storage account that
 * refuses us (an expired SAS) is not asked again at once. */
static void
cycle_end(struct btenant *b, const char *error, int status)
{
    double wait = b->every;

    blob_listing_clear(&b->list);
    b->bi = 0;
    free(b->marker);
    b->marker = NULL;
    answer_clear(b);
    if (b->p->draining) {
        return;
    }
    if (error == NULL) {
        prune_marks(b);
        if (b->failures > 0) {
            log_info("blob.recovered tenant=%s after_failures=%d", b->id, b->failures);
        }
        b->failures = 0;
    } else {
        b->failures++;
        st.poll_failures++;
        for (int i = 1; i < b->failures && wait < BLOB_BACKOFF_MAX_S; i++) {
            wait *= 2;
        }
        if (wait > BLOB_BACKOFF_MAX_S) {
            wait = BLOB_BACKOFF_MAX_S;
        }
        if (status == 401 || status == 403) {
            st.auth_failures++;
            log_err("blob.auth_failed tenant=%s container=%s status=%d error=%s next_s=%.0f "
                    "(the SAS token may have expired or lack read and list rights, or the app "
                    "lacks the Storage Blob Data Reader role)",
                    b->id, b->conf->containers[b->ci], status, log_quote(error), wait);
        } else {
            if (status == 429 || status == 503) {
                st.throttled++;
            }
            log_warn("blob.poll_failed tenant=%s container=%s status=%d error=%s failures=%d "
                     "next_s=%.0f",
                     b->id, b->conf->containers[b->ci], status, log_quote(error), b->failures,
                     wait);
        }
    }
    if (b->stopped) {
        log_info("blob.stopped tenant=%s", b->id);
        return;
    }
    arm(b, wait);
}

/* ---- the source ---- */

static void
bt_free(struct btenant *b)
{
    if (b->call != NULL) {
        call_request_cancel(b->call);
    }
    if (b->timer != NULL) {
        event_free(b->timer);
    }
    if (b->cont != NULL) {
        event_free(b->cont);
    }
    free_batch(b->alerts, b->nalerts);
    free_batch(b->events, b->nevents);
    blob_listing_clear(&b->list);
    free(b->marker);
    answer_clear(b);
    if (b->sas != NULL) {
        secret_free(b->sas);
    }
    free(b);
}

/* The SAS's expiry (se=, RFC 3339, perhaps percent-encoded) in ms, or 0 when unreadable. */
static int64_t
sas_expiry(const char *sas)
{
    const char *se = strstr(sas, "se=");
    char v[64];
    size_t n = 0;
    int64_t ms = 0;

    while (se != NULL && se != sas && se[-1] != '&') {
        se = strstr(se + 1, "se=");
    }
    if (se == NULL) {
        return 0;
    }
    for (se += 3; *se != '\0' && *se != '&' && n < sizeof(v) - 1; se++) {
        if (se[0] == '%' && strncasecmp(se, "%3A", 3) == 0) {
            v[n++] = ':';
            se += 2;
        } else {
            v[n++] = *se;
        }
    }
    v[n] = '\0';
    return util_parse_time(v, &ms) == 0 ? ms : 0;
}

/* Say, once a day from a week before, that a tenant's SAS is about to expire: an expired
 * one stops the tenant's polling until a new one is configured. */
static void
sas_watch(struct btenant *b)
{
    int64_t now = util_now_ms(), left = b->sas_expiry_ms - now;
    char when[32];

    if (b->sas_expiry_ms == 0 || left > 7 * 86400000LL || now - b->sas_warned_ms < 86400000LL) {
        return;
    }
    b->sas_warned_ms = now;
    util_fmt_time(b->sas_expiry_ms, when);
    if (left <= 0) {
        log_err("blob.sas_expired tenant=%s expired=%s (write a new sas into tenants.%s.blob "
                "and restart)",
                b->id, when, b->id);
    } else {
        log_warn("blob.sas_expiring tenant=%s expires=%s in_hours=%.0f (write a new sas into "
                 "tenants.%s.blob and restart before then)",
                 b->id, when, (double)left / 3600000.0, b->id);
    }
}

static void
blob_metrics(struct buf *out, void *arg)
{
    (void)arg;
    metrics_counter(out, "kagari_blob_polls_total", "poll cycles started", st.polls);
    metrics_counter(out, "kagari_blob_poll_failures_total", "poll cycles that failed",
                    st.poll_failures);
    metrics_counter(out, "kagari_blob_auth_failures_total",
                    "poll cycles refused by the storage account (401/403: an expired SAS)",
                    st.auth_failures);
    metrics_counter(out, "kagari_blob_throttled_total",
                    "poll cycles given up after 429/503 retries", st.throttled);
    metrics_counter(out, "kagari_blob_list_requests_total", NULL, st.lists);
    metrics_counter(out, "kagari_blob_read_requests_total", NULL, st.reads);
    metrics_counter(out, "kagari_blob_bytes_total", "blob bytes read", st.bytes);
    for (size_t i = 0; i <= BLOB_COUNTED_MAX; i++) {
        if (counted[i].name[0] != '\0') {
            metrics_labelled(out, "kagari_blob_records_total", "container", counted[i].name,
                             counted[i].records, i == 0);
        }
    }
    metrics_counter(out, "kagari_blob_alerts_total", "new records stored as alerts", st.alerts);
    metrics_counter(out, "kagari_blob_events_total", "new records stored as events", st.events);
    for (size_t i = 0; i <= BLOB_COUNTED_MAX; i++) {
        if (counted[i].name[0] != '\0') {
            metrics_labelled(out, "kagari_blob_rejected_total", "container", counted[i].name,
                             counted[i].rejected, i == 0);
        }
    }
    metrics_counter(out, "kagari_blob_replaced_total", "blobs created again: read from the start",
                    st.replaced);
    metrics_counter(out, "kagari_blob_shrunk_total", "blobs shorter than their offset", st.shrunk);
    metrics_counter(out, "kagari_blob_too_old_total",
                    "blobs passed over in a listing (each poll): last modified longer ago than "
                    "blob.max_age",
                    st.too_old);
    metrics_counter(out, "kagari_blob_marks_pruned_total",
                    "offsets forgotten of blobs older than blob.max_age", st.marks_pruned);
    metrics_counter(out, "kagari_blob_admit_failures_total",
                    "batches the store did not take (read again next poll)", st.admit_failures);
    {
        int failing = 0;

        for (struct btenant *b = running != NULL ? running->tenants : NULL; b != NULL;
             b = b->next) {
            failing += b->failures > 0;
        }
        metrics_gauge(out, "kagari_blob_tenants_failing", "tenants whose last poll cycle failed",
                      (double)failing);
    }
    {
        int64_t soonest = 0;

        for (struct btenant *b = running != NULL ? running->tenants : NULL; b != NULL;
             b = b->next) {
            if (b->sas_expiry_ms != 0 && (soonest == 0 || b->sas_expiry_ms < soonest)) {
                soonest = b->sas_expiry_ms;
            }
        }
        if (soonest != 0) {
            metrics_gauge(out, "kagari_blob_sas_expiry_seconds",
                          "seconds until the first SAS of any tenant expires (negative: expired)",
                          (double)(soonest - util_now_ms()) / 1000.0);
        }
    }
}

static int
blob_start_source(const struct config *cfg, void **state, char **errp)
{
    struct poller *p = NULL;
    int n = 0;

    *state = NULL;
    for (size_t i = 0; i < cfg->ntenants; i++) {
        const struct config_tenant *ct = &cfg->tenants[i];
        const struct blob_conf *c = config_tenant_block(ct, &blob_section);
        struct btenant *b;

        if (c == NULL) {
            continue;
        }
        if (tenant_find(ct->id) == NULL) {
            continue; /* a tenant in the file that the store does not have */
        }
        if (p == NULL) {
            p = xcalloc(1, sizeof(*p));
        }
        b = xcalloc(1, sizeof(*b));
        b->p = p;
        snprintf(b->id, sizeof(b->id), "%s", ct->id);
        b->conf = c;
        b->every = c->every;
        if (c->sas != NULL) {
            char *sas = secret_decrypt(c->sas, errp);

            if (sas == NULL) {
                free(b);
                goto fail;
            }
            /* As copied from the portal: the token, "?token" or the whole SAS URL. */
            if (strchr(sas, '?') != NULL) {
                char *q = strchr(sas, '?');

                memmove(sas, q + 1, strlen(q + 1) + 1);
            }
            if (strncmp(sas, "sig=", 4) != 0 && strstr(sas, "&sig=") == NULL) {
                secret_free(sas);
                free(b);
                kg_err(errp,
                       "tenants.%s.blob.sas: not a SAS token (no sig=); copy the token or the "
                       "SAS URL from the storage account's Shared access signature page",
                       ct->id);
                goto fail;
            }
            secret_register(sas);
            {
                const char *sig = strstr(sas, "sig=");

                if (sig != NULL) {
                    char *v = xstrndup(sig + 4, strcspn(sig + 4, "&"));

                    secret_register(v);
                    free(v);
                }
            }
            b->sas = sas;
            b->sas_expiry_ms = sas_expiry(sas);
            if (b->sas_expiry_ms == 0) {
                log_warn("blob.sas_no_expiry tenant=%s (no readable se= in the SAS: its expiry "
                         "cannot be watched)",
                         b->id);
            }
        }
        b->timer = evtimer_new(loop_base(), on_timer, b);
        b->cont = evtimer_new(loop_base(), on_cont, b);
        b->next = p->tenants;
        p->tenants = b;
        /* spread the tenants' first polls over the first second */
        arm(b, 0.05 + 0.1 * (n++ % 10));
    }
    if (p != NULL) {
        running = p;
        metrics_add(blob_metrics, p);
        *state = p;
    }
    return 0;
fail:
    while (p != NULL && p->tenants != NULL) {
        struct btenant *b = p->tenants;

        p->tenants = b->next;
        bt_free(b);
    }
    free(p);
    return -1;
}

static int
same_text(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* What of a tenant's blob block changed, besides `every`, or NULL. */
static const char *
blob_changed(const struct blob_conf *a, const struct blob_conf *b)
{
    if (!same_text(a->account_url, b->account_url) || !same_text(a->sas, b->sas) ||
        !same_text(a->scope, b->scope)) {
        return "account_url, sas or scope";
    }
    if (a->ncontainers != b->ncontainers) {
        return "containers";
    }
    for (size_t i = 0; i < a->ncontainers; i++) {
        if (strcmp(a->containers[i], b->containers[i]) != 0) {
            return "containers";
        }
    }
    if (!same_text(a->prefix, b->prefix) || a->chunk != b->chunk ||
        !same_text(a->source, b->source) || a->max_age != b->max_age) {
        return "prefix, chunk, source or max_age";
    }
    return NULL;
}

/* A reload: each polling tenant's `every` from the file read again (a new interval counts
 * from when its timer was set); a tenant whose blob block is gone stops after the poll in
 * progress, and polls again (from its stored offsets) when a later reload brings the
 * block back. Its other settings, and blob blocks of tenants not polled since the start,
 * apply at the next start: logged, not applied. One poll per tenant at a time, as ever:
 * a poll in progress is never doubled. */
static void
blob_reload(void **state, const struct config *cfg)
{
    struct poller *p = *state;

    for (size_t i = 0; i < cfg->ntenants; i++) {
        const struct config_tenant *ct = &cfg->tenants[i];
        struct btenant *b = NULL;

        for (b = p != NULL ? p->tenants : NULL; b != NULL && strcmp(b->id, ct->id) != 0;
             b = b->next) {
        }
        if (b == NULL && config_tenant_block(ct, &blob_section) != NULL &&
            tenant_find(ct->id) != NULL) {
            log_warn("blob.reload_needs_restart tenant=%s changed=\"a blob block added\"", ct->id);
        }
    }
    if (p == NULL || p->draining) {
        return;
    }
    for (struct btenant *b = p->tenants; b != NULL; b = b->next) {
        const struct config_tenant *ct = config_tenant(cfg, b->id);
        const struct blob_conf *nc = ct != NULL ? config_tenant_block(ct, &blob_section) : NULL;
        const char *changed;

        if (nc == NULL) {
            if (!b->stopped) {
                b->stopped = 1;
                if (evtimer_pending(b->timer, NULL)) { /* between polls */
                    evtimer_del(b->timer);
                    log_info("blob.stopped tenant=%s", b->id);
                } else {
                    log_info("blob.stopping tenant=%s (after the poll in progress)", b->id);
                }
            }
            continue;
        }
        if ((changed = blob_changed(b->conf, nc)) != NULL) {
            log_warn("blob.reload_needs_restart tenant=%s changed=%s", b->id, log_quote(changed));
        }
        if (b->stopped) {
            b->stopped = 0;
            b->every = nc->every;
            log_info("blob.started tenant=%s every_s=%.0f", b->id, b->every);
            if (!evtimer_pending(b->timer, NULL) && b->call == NULL && !b->admitting &&
                !evtimer_pending(b->cont, NULL)) {
                arm(b, 0); /* no poll in progress: its end would have armed the timer */
            }
            continue;
        }
        if (nc->every != b->every) {
            log_info("blob.interval tenant=%s every_s=%.0f was_s=%.0f", b->id, nc->every, b->every);
            b->every = nc->every;
            if (b->failures == 0 && evtimer_pending(b->timer, NULL)) {
                int64_t due = b->armed_ms + (int64_t)(b->every * 1000);
                int64_t now = util_now_ms();
                int64_t armed = b->armed_ms;

                evtimer_del(b->timer);
                arm(b, due > now ? (double)(due - now) / 1000.0 : 0);
                b->armed_ms = armed;
            }
        }
    }
}

static void
blob_drain(void *state)
{
    struct poller *p = state;

    p->draining = 1;
    for (struct btenant *b = p->tenants; b != NULL; b = b->next) {
        evtimer_del(b->timer);
        evtimer_del(b->cont);
        if (b->call != NULL) {
            call_request_cancel(b->call);
            b->call = NULL;
        }
    }
}

static void
blob_stop(void *state)
{
    struct poller *p = state;

    metrics_remove(blob_metrics, p);
    while (p->tenants != NULL) {
        struct btenant *b = p->tenants;

        p->tenants = b->next;
        bt_free(b);
    }
    if (running == p) {
        running = NULL;
    }
    free(p);
}

static void
blob_describe(void *state, struct buf *b)
{
    struct poller *p = state;
    int n = 0;

    for (struct btenant *t = p->tenants; t != NULL; t = t->next) {
        n += !t->stopped;
    }
    (void)!buf_printf(b, " blob_tenants=%d", n);
}

/* One line of a blob, as the poller reads it: one pulled record. */
static int
blob_normalize(const char *rec, size_t len, const char *hint, int64_t received_ms,
               struct alert **alerts, size_t *n, char **errp)
{
    struct alert *a = xcalloc(1, sizeof(*a));

    if (poll_normalize(rec, len, hint, received_ms, a, errp) == -1) {
        free(a);
        return -1;
    }
    *alerts = a;
    *n = 1;
    return 0;
}

const struct source blob_source = {
    "blob",
    "Azure Blob storage: diagnostic logs (insights-logs-*) polled from append blobs",
    NULL, /* its settings are in each tenant's blob block */
    blob_start_source,
    blob_drain,
    blob_stop,
    blob_describe,
    blob_normalize,
    blob_reload,
};
