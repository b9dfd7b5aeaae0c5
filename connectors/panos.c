/* panos.c: the playbooks' `panos` module (reference: connectors.md section 7).
 *
 * Blocks are User-ID registrations of IP-to-tag mappings: a Dynamic Address Group in a
 * deny rule matches the tag, so a block takes effect with no commit. Every run's
 * block_ip/unblock_ip is its own journaled effect, but the requests of all runs of a
 * tenant that arrive within panos.batch_window go out in one uid-message, and each
 * effect gets its own entry's answer. A block left in doubt by a crash asks the
 * firewall whether the tag is there before registering anything.
 *
 * Every value that goes into a request document or an xpath is checked for its type
 * (an address or subnet, a tag, an object name) and escaped; anything else raises in
 * the playbook before the effect is journaled. */
#include "connectors/panos.h"

#include <arpa/inet.h>
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <termios.h>
#include <unistd.h>

#include "connectors/call.h"
#include "connectors/httpc.h"
#include "connectors/xml.h"

#define PANOS_DESC_MAX 1023
#define PANOS_TIMEOUT_MAX 2592000 /* seconds: the firewall's own limit (30 days) */
#define PANOS_BATCH_MAX 500       /* entries per uid-message */
#define PANOS_SHOW_LIMIT 500      /* registered-ip entries per page */
#define PANOS_HOUR_MS 3600000

/* ---- settings: tenants.<id>.panos ---- */

struct panos_conf {
    char *url;
    char *api_key; /* "enc:v1:..." from kagari panos keygen */
    char *vsys;
    char *device;
    char *tag;            /* the default block tag */
    double block_timeout; /* seconds; 0: until unblocked */
    char *never_block;    /* addresses and subnets, separated by commas or spaces */
    int max_blocks_per_hour;
    double batch_window;
    double commit_poll;
    char *edl_user;
    char *edl_password; /* "enc:v1:..." */
};

static const struct config_field panos_fields[] = {
    { "url", CONFIG_URL, offsetof(struct panos_conf, url), 0, 0, NULL, 0 },
    { "api_key", CONFIG_STRING, offsetof(struct panos_conf, api_key), 0, 0, NULL, 0 },
    { "vsys", CONFIG_NAME, offsetof(struct panos_conf, vsys), 0, 0, NULL, 0 },
    { "device", CONFIG_NAME, offsetof(struct panos_conf, device), 0, 0, NULL, 0 },
    { "tag", CONFIG_STRING, offsetof(struct panos_conf, tag), 0, 0, NULL, 0 },
    { "block_timeout", CONFIG_DURATION, offsetof(struct panos_conf, block_timeout), 0,
      PANOS_TIMEOUT_MAX, NULL, 0 },
    { "never_block", CONFIG_STRING, offsetof(struct panos_conf, never_block), 0, 0, NULL, 0 },
    { "max_blocks_per_hour", CONFIG_INT, offsetof(struct panos_conf, max_blocks_per_hour), 1,
      1000000, NULL, 0 },
    { "batch_window", CONFIG_DURATION, offsetof(struct panos_conf, batch_window), 0.001, 10, NULL,
      0 },
    { "commit_poll", CONFIG_DURATION, offsetof(struct panos_conf, commit_poll), 0.05, 600, NULL,
      0 },
    { "edl_user", CONFIG_NAME, offsetof(struct panos_conf, edl_user), 0, 0, NULL, 0 },
    { "edl_password", CONFIG_STRING, offsetof(struct panos_conf, edl_password), 0, 0, NULL, 0 },
    CONFIG_FIELDS_END,
};

static void
set_default(char **field, const char *value)
{
    if (*field == NULL) {
        *field = xstrdup(value);
    }
}

static int
panos_check(void *conf, char **errp)
{
    struct panos_conf *p = conf;
    struct panos_guard *g;

    if (p->url == NULL) {
        return kg_err(errp, "url is required (the firewall's XML API, e.g. https://fw.example.jp)");
    }
    set_default(&p->vsys, "vsys1");
    set_default(&p->device, "localhost.localdomain");
    set_default(&p->tag, "kagari-block");
    if (!panos_valid_tag(p->tag, strlen(p->tag))) {
        return kg_err(errp, "tag: expected 1 to %d letters, digits, '-', '_', '.' or inner spaces",
                      PANOS_TAG_MAX);
    }
    if (p->block_timeout != floor(p->block_timeout)) {
        return kg_err(errp, "block_timeout: expected whole seconds");
    }
    g = panos_guard_new(p->never_block, errp);
    if (g == NULL) {
        return -1;
    }
    panos_guard_free(g);
    if (p->max_blocks_per_hour == 0) {
        p->max_blocks_per_hour = 100;
    }
    if (p->batch_window == 0) {
        p->batch_window = 0.2;
    }
    if (p->commit_poll == 0) {
        p->commit_poll = 2;
    }
    if ((p->edl_user == NULL) != (p->edl_password == NULL)) {
        return kg_err(errp, "edl_user and edl_password go together");
    }
    return 0;
}

static const char panos_example[] =
    "--         -- A Palo Alto Networks firewall (PAN-OS XML API).\n"
    "--         panos = {\n"
    "--             -- The firewall's management address.\n"
    "--             url = \"https://fw.example.jp\",\n"
    "--             -- Its API key, written encrypted: the output of\n"
    "--             -- `kagari panos keygen --tenant <id>` (asks the admin's user and "
    "password once).\n"
    "--             api_key = \"enc:v1:...\",\n"
    "--             -- The virtual system and device name of address objects' xpaths.\n"
    "--             vsys = \"vsys1\",\n"
    "--             device = \"localhost.localdomain\",\n"
    "--             -- The tag panos.block_ip registers; a Dynamic Address Group matching it\n"
    "--             -- sits in a deny rule.\n"
    "--             tag = \"kagari-block\",\n"
    "--             -- How long a block lasts on the firewall (0: until unblocked).\n"
    "--             block_timeout = \"1d\",\n"
    "--             -- Addresses that are never blocked: the customer's own ranges, DNS\n"
    "--             -- servers (the firewall's own address is added when url names it).\n"
    "--             never_block = \"10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 192.0.2.53\",\n"
    "--             -- At most this many blocks per hour; more are refused.\n"
    "--             max_blocks_per_hour = 100,\n"
    "--             -- Blocks asked for by several runs within this window go out in one\n"
    "--             -- message.\n"
    "--             batch_window = 0.2,\n"
    "--             -- How often a commit job is polled.\n"
    "--             commit_poll = 2,\n"
    "--             -- The External Dynamic List (GET /edl/<tenant>, HTTP Basic) for\n"
    "--             -- firewalls that pull the block list; the password is encrypted.\n"
    "--             -- edl_user = \"edl\",\n"
    "--             -- edl_password = \"enc:v1:...\",\n"
    "--         },\n";

static const struct config_section panos_section = {
    "panos", panos_fields, sizeof(struct panos_conf), panos_check, panos_example,
};

/* The tenant's state: the key's header line, the guard list and the EDL credential. */
struct panos_state {
    char *header; /* "X-PAN-KEY: <key>", or NULL without an api_key */
    struct panos_guard *guard;
    char *edl_password;
};

static void
panos_tenant_close(void *state)
{
    struct panos_state *s = state;

    if (s->header != NULL) {
        secret_unregister(s->header + strlen("X-PAN-KEY: "));
        secret_free(s->header);
    }
    if (s->edl_password != NULL) {
        secret_unregister(s->edl_password);
        secret_free(s->edl_password);
    }
    panos_guard_free(s->guard);
    free(s);
}

/* The host of url when it is an IP literal (the firewall itself is never blocked). */
static void
url_host_ip(const char *url, char *out)
{
    const char *h = strstr(url, "://");
    char host[PANOS_NET_MAX];
    size_t len;

    out[0] = '\0';
    if (h == NULL) {
        return;
    }
    h += 3;
    if (*h == '[') {
        h++;
        len = strcspn(h, "]");
    } else {
        len = strcspn(h, ":/?#");
    }
    if (len == 0 || len >= sizeof(host)) {
        return;
    }
    memcpy(host, h, len);
    host[len] = '\0';
    if (panos_parse_net(host, len, 0, out) == -1) {
        out[0] = '\0';
    }
}

static int
panos_tenant_open(const void *conf, void **state, char **errp)
{
    const struct panos_conf *p = conf;
    struct panos_state *s = xcalloc(1, sizeof(*s));
    char fw[PANOS_NET_MAX];
    char *list;

    url_host_ip(p->url, fw);
    list = xasprintf("%s %s", p->never_block != NULL ? p->never_block : "", fw);
    s->guard = panos_guard_new(list, errp);
    free(list);
    if (s->guard == NULL) {
        panos_tenant_close(s);
        return -1;
    }
    if (p->api_key != NULL) {
        char *key = secret_decrypt(p->api_key, errp);

        if (key == NULL) {
            panos_tenant_close(s);
            return -1;
        }
        secret_register(key);
        s->header = xasprintf("X-PAN-KEY: %s", key);
        secret_free(key);
    }
    if (p->edl_password != NULL) {
        s->edl_password = secret_decrypt(p->edl_password, errp);
        if (s->edl_password == NULL) {
            panos_tenant_close(s);
            return -1;
        }
        secret_register(s->edl_password);
    }
    *state = s;
    return 0;
}

/* ---- the API ---- */

static const char *
panos_base(const struct tenant *t)
{
    const struct panos_conf *p = tenant_conf(t, &panos_section);

    return p != NULL ? p->url : NULL;
}

static int
panos_credentials(const struct tenant *t, struct call_cred *cred, char **errp)
{
    const struct panos_state *s = tenant_state(t, &panos_section);

    if (s == NULL || s->header == NULL) {
        return kg_err(errp,
                      "no API key for this tenant: run `kagari panos keygen --tenant %s` "
                      "and set tenants.%s.panos.api_key",
                      tenant_id(t), tenant_id(t));
    }
    cred->kind = CALL_AUTH_HEADER;
    cred->header = s->header;
    return 0;
}

/* Rough limits of a management plane: the firewall has no published rate, but a
 * PA-5220's API serves a few requests at a time well. */
static const struct call_limit panos_limits[] = {
    { "panos", 20, 40 },
    { NULL, 0, 0 },
};

/* The envelope's code and messages: "<code>: <message>", or NULL when the body is not
 * a <response>. A 403 says the key was rejected, in words an operator acts on. */
static char *
panos_error_text(const struct httpc_response *resp)
{
    struct xml_node *root = NULL;
    struct buf b;
    char *err = NULL, *out = NULL;

    if (xml_parse(resp->body, resp->body_len, &root, &err) == -1) {
        free(err);
        return NULL;
    }
    if (strcmp(root->name, "response") == 0) {
        const char *code = xml_attr(root, "code");

        buf_init(&b, 4096);
        xml_text_all(root, &b, "; ");
        if (resp->status == 403) {
            out = xasprintf("the firewall rejected the API key (%s): make a new one with "
                            "`kagari panos keygen`",
                            b.len > 0 ? b.data : "forbidden");
        } else {
            out = xasprintf("%s: %s", code != NULL ? code : "error", b.len > 0 ? b.data : "");
        }
        buf_free(&b);
    }
    xml_free(root);
    return out;
}

static const struct call_api panos_api = {
    "panos",
    panos_base,
    "no panos block is configured for this tenant (tenants.<id>.panos)",
    panos_credentials,
    "Accept: application/xml",
    panos_limits,
    panos_error_text,
};

/* Parse a 2xx answer's <response>: 0 with *root, or -1 with *result a message. */
static int
answer_parse(struct call *c, const struct httpc_response *resp, struct xml_node **root,
             char **result)
{
    char *err = NULL;

    if (resp->status < 200 || resp->status >= 300) {
        *result = call_error_text(c, resp);
        return -1;
    }
    if (xml_parse(resp->body, resp->body_len, root, &err) == -1) {
        *result = xasprintf("%s: the answer is not XML (%s)", call_kind(c), err);
        free(err);
        return -1;
    }
    if (strcmp((*root)->name, "response") != 0 || xml_attr(*root, "status") == NULL) {
        *result = xasprintf("%s: the answer is not a PAN-OS <response>", call_kind(c));
        xml_free(*root);
        *root = NULL;
        return -1;
    }
    return 0;
}

/* "<kind>: <code>: <messages>" of a status="error" envelope. */
static char *
envelope_error(const char *kind, const struct xml_node *root)
{
    struct buf b;
    const char *code = xml_attr(root, "code");
    char *out;

    buf_init(&b, 4096);
    xml_text_all(root, &b, "; ");
    out = xasprintf("%s: %s%s%s", kind, code != NULL ? "code " : "", code != NULL ? code : "",
                    b.len > 0 ? (code != NULL ? ": " : "") : "");
    if (b.len > 0) {
        char *full = xasprintf("%s%s", out, b.data);

        free(out);
        out = full;
    }
    buf_free(&b);
    return out;
}

/* Config changes: success (code 19/20, or 7 "object doesn't exist" for a delete) is
 * true; status="error" fails with the firewall's code and messages (a held lock, a
 * reference that keeps an object, a bad element). */
static int
map_config(struct call *c, const struct httpc_response *resp, char **result)
{
    struct xml_node *root = NULL;
    int ok;

    if (answer_parse(c, resp, &root, result) == -1) {
        return 0;
    }
    ok = strcmp(xml_attr(root, "status"), "success") == 0;
    *result = ok ? xstrdup("true") : envelope_error(call_kind(c), root);
    xml_free(root);
    return ok;
}

/* Any well-formed <response>: its text as a JSON string, for the steps of a batch or a
 * commit that read it again (an error envelope is data there). */
static int
map_raw(struct call *c, const struct httpc_response *resp, char **result)
{
    struct xml_node *root = NULL;
    struct buf b;

    if (answer_parse(c, resp, &root, result) == -1) {
        return 0;
    }
    xml_free(root);
    buf_init(&b, 0);
    (void)!buf_json_string(&b, resp->body, resp->body_len);
    *result = buf_take(&b);
    return 1;
}

/* The XML text of a map_raw result, parsed again: 0 with *root, or -1. */
static int
raw_parse(const char *result, struct xml_node **root)
{
    cJSON *s = cJSON_Parse(result);
    char *err = NULL;
    int rc = -1;

    if (cJSON_IsString(s) && xml_parse(s->valuestring, strlen(s->valuestring), root, &err) == 0) {
        rc = 0;
    }
    free(err);
    cJSON_Delete(s);
    return rc;
}

/* The registered-ip entries of a show answer as [{ip, tags}] appended to arr; returns
 * how many were read. */
static int
entries_json(const struct xml_node *result, cJSON *arr)
{
    int n = 0;

    for (const struct xml_node *e = result != NULL ? result->child : NULL; e != NULL; e = e->next) {
        const char *ip = xml_attr(e, "ip");
        cJSON *o, *tags;

        if (strcmp(e->name, "entry") != 0 || ip == NULL) {
            continue;
        }
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "ip", ip);
        tags = cJSON_AddArrayToObject(o, "tags");
        for (const struct xml_node *m = xml_child(e, "tag") ? xml_child(e, "tag")->child : NULL;
             m != NULL; m = m->next) {
            if (strcmp(m->name, "member") == 0) {
                cJSON_AddItemToArray(tags, cJSON_CreateString(m->text));
            }
        }
        cJSON_AddItemToArray(arr, o);
        n++;
    }
    return n;
}

/* form-encoded "type=op&cmd=<xml>" (the path of a GET). */
static char *
op_path(const char *cmd_xml)
{
    char *cmd = call_escape(cmd_xml);
    char *path = xasprintf("/api/?type=op&cmd=%s", cmd);

    free(cmd);
    return path;
}

/* The show registered-ip command for one address, or a tag (either may be NULL), from
 * entry start (1-based). Values were checked and are escaped again here. */
static char *
show_registered_cmd(const char *ip, const char *tag, int start)
{
    struct buf b;

    buf_init(&b, 0);
    (void)!buf_puts(&b, "<show><object><registered-ip>");
    if (ip != NULL) {
        (void)!buf_puts(&b, "<ip>");
        (void)!xml_escape(&b, ip);
        (void)!buf_puts(&b, "</ip>");
    }
    if (tag != NULL) {
        (void)!buf_puts(&b, "<tag><entry name=\"");
        (void)!xml_escape(&b, tag);
        (void)!buf_puts(&b, "\"/></tag>");
    }
    if (ip == NULL && tag == NULL) {
        (void)!buf_puts(&b, "<all/>");
    }
    (void)!buf_printf(&b, "<limit>%d</limit><start-point>%d</start-point>", PANOS_SHOW_LIMIT,
                      start);
    (void)!buf_puts(&b, "</registered-ip></object></show>");
    return buf_take(&b);
}

/* ---- per-tenant runtime: the block batch and the commit queue ----
 *
 * Kept by tenant id for the life of the process (a reload gives the tenant a new
 * object; runs carry on). Everything in flight belongs to effects, which belong to
 * runs: when the last effect waiting on a batch or a commit goes away, its call and
 * timer go too, so nothing outlives the runs that asked for it. */

struct blk_op;
struct commit_op;

struct batch {
    struct prt *rt;
    struct call *call;
    struct blk_op **ops; /* NULL slots: effects cancelled meanwhile */
    size_t n, live;
    struct batch *next;
};

struct prt {
    char *tenant;
    const struct tenant *t;     /* the tenant object of the latest effect */
    struct blk_op *head, *tail; /* waiting for the batch window */
    struct event *timer;
    struct batch *batches; /* in flight */
    size_t reserved;       /* blocks accepted and not finished yet */

    /* commits: one machine per tenant */
    struct commit_op *cq_head, *cq_tail;
    int cstate;
    char job[32];
    struct call *ccall;
    struct event *ctimer;
    struct prt *next;
};

static struct prt *prts;

/* Summed over tenants (the metrics endpoint is open to every sender). */
static struct {
    unsigned long long registered, already, reconciled, refused, failed, unregistered;
    unsigned long long messages, entries, commits_ok, commits_failed, commit_waits;
} pstats;
static int metrics_on;

static void
panos_metrics(struct buf *b, void *arg)
{
    const char *n = "kagari_panos_blocks_total";

    (void)arg;
    metrics_labelled(b, n, "result", "registered", pstats.registered, 1);
    metrics_labelled(b, n, "result", "already_registered", pstats.already, 0);
    metrics_labelled(b, n, "result", "reconciled", pstats.reconciled, 0);
    metrics_labelled(b, n, "result", "refused", pstats.refused, 0);
    metrics_labelled(b, n, "result", "failed", pstats.failed, 0);
    metrics_counter(b, "kagari_panos_unblocks_total", NULL, pstats.unregistered);
    metrics_counter(b, "kagari_panos_uid_messages_total", NULL, pstats.messages);
    metrics_counter(b, "kagari_panos_uid_entries_total", NULL, pstats.entries);
    metrics_labelled(b, "kagari_panos_commits_total", "result", "ok", pstats.commits_ok, 1);
    metrics_labelled(b, "kagari_panos_commits_total", "result", "failed", pstats.commits_failed, 0);
    metrics_counter(b, "kagari_panos_commit_waits_total", NULL, pstats.commit_waits);
}

static struct prt *
prt_get(const struct tenant *t)
{
    struct prt *p;

    for (p = prts; p != NULL; p = p->next) {
        if (strcmp(p->tenant, tenant_id(t)) == 0) {
            break;
        }
    }
    if (!metrics_on) {
        metrics_on = 1;
        metrics_add(panos_metrics, NULL);
    }
    if (p == NULL) {
        p = xcalloc(1, sizeof(*p));
        p->tenant = xstrdup(tenant_id(t));
        p->next = prts;
        prts = p;
    }
    p->t = t;
    return p;
}

/* The blocks of the last hour, for max_blocks_per_hour, are kept in a published list of
 * the tenant (one entry per block, expiring after an hour), so the limit holds across
 * restarts. Its name cannot be a tag's ("panos:" is not "panos."): the EDL never serves
 * it. -1 when it cannot be read (the block is then refused, not let through). */
#define PANOS_HOUR_LIST "panos:blocks-last-hour"

static long
blocks_last_hour(struct tenant *t)
{
    struct buf b;
    char *err = NULL;
    long n = 0;

    buf_init(&b, 4u << 20);
    if (tenant_list_text(t, PANOS_HOUR_LIST, &b, &err) == -1) {
        log_warn("panos.hour_count_failed tenant=%s err=%s", tenant_id(t), log_quote(err));
        free(err);
        buf_free(&b);
        return -1;
    }
    for (size_t i = 0; i < b.len; i++) {
        n += b.data[i] == '\n';
    }
    buf_free(&b);
    return n;
}

static void
block_made(struct tenant *t, const char *ip)
{
    static unsigned long long seq;
    int64_t now = util_now_ms();
    char *v = xasprintf("%lld %s %llu", (long long)now, ip, ++seq), *err = NULL;

    /* del of nothing drops the list's expired entries */
    if (tenant_list_put(t, PANOS_HOUR_LIST, v, now + PANOS_HOUR_MS, &err) == -1 ||
        tenant_list_del(t, PANOS_HOUR_LIST, "", &err) == -1) {
        log_warn("panos.hour_count_failed tenant=%s err=%s", tenant_id(t), log_quote(err));
    }
    free(err);
    free(v);
}

/* ---- block_ip / unblock_ip ---- */

struct blk_op {
    struct effect *ef;
    struct prt *rt;
    int unblock;
    char ip[PANOS_NET_MAX];
    char tag[PANOS_TAG_MAX + 1];
    long timeout;
    int in_doubt;     /* ask the firewall before registering */
    int reserved;     /* counted in rt->reserved */
    struct call *ask; /* the reconciling show, in flight */
    struct batch *batch;
    size_t slot;
    struct blk_op *next; /* in rt's queue */
};

static void blk_arm(struct prt *p, double seconds);

static const char *
blk_kind(const struct blk_op *o)
{
    return o->unblock ? "panos.unblock_ip" : "panos.block_ip";
}

static void
blk_unqueue(struct blk_op *o)
{
    struct prt *p = o->rt;
    struct blk_op **pp = &p->head, *prev = NULL;

    while (*pp != NULL && *pp != o) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp == o) {
        *pp = o->next;
        if (p->tail == o) {
            p->tail = prev;
        }
    }
    o->next = NULL;
}

static void
blk_enqueue(struct blk_op *o)
{
    struct prt *p = o->rt;

    o->next = NULL;
    if (p->tail != NULL) {
        p->tail->next = o;
    } else {
        p->head = o;
    }
    p->tail = o;
}

static void
batch_free(struct batch *b)
{
    struct batch **pp = &b->rt->batches;

    while (*pp != NULL && *pp != b) {
        pp = &(*pp)->next;
    }
    if (*pp == b) {
        *pp = b->next;
    }
    call_request_cancel(b->call);
    free(b->ops);
    free(b);
}

/* The tenant's published block list of o's tag (served as the EDL) follows every block
 * and unblock the firewall confirmed; a failure to record it is logged, the firewall's
 * state stands. */
static void
edl_update(struct tenant *t, const struct blk_op *o)
{
    char *list = xasprintf("panos.%s", o->tag), *err = NULL;
    int rc;

    if (o->unblock) {
        rc = tenant_list_del(t, list, o->ip, &err);
    } else {
        rc = tenant_list_put(t, list, o->ip,
                             o->timeout > 0 ? util_now_ms() + (int64_t)o->timeout * 1000 : 0, &err);
    }
    if (rc == -1) {
        log_warn("panos.edl_update_failed tenant=%s ip=%s err=%s", tenant_id(t), o->ip,
                 log_quote(err));
    }
    free(err);
    free(list);
}

/* Finish the effect (the op is freed first: effect_done is its owner's last call). */
static void
blk_done(struct blk_op *o, int ok, const char *status_or_msg)
{
    struct effect *ef = o->ef;
    struct prt *p = o->rt;
    char *result;

    if (o->reserved) {
        p->reserved--;
    }
    if (ok) {
        cJSON *r = cJSON_CreateObject();

        edl_update(run_tenant(effect_owner(ef)), o);
        if (o->unblock) {
            pstats.unregistered += strcmp(status_or_msg, "unregistered") == 0;
        } else if (strcmp(status_or_msg, "registered") == 0) {
            pstats.registered++;
        } else if (strcmp(status_or_msg, "already_registered") == 0) {
            pstats.already++;
        } else {
            pstats.reconciled++;
        }
        cJSON_AddStringToObject(r, "ip", o->ip);
        cJSON_AddStringToObject(r, "tag", o->tag);
        if (!o->unblock) {
            cJSON_AddNumberToObject(r, "timeout", (double)o->timeout);
            if (strcmp(status_or_msg, "registered") == 0) {
                block_made(run_tenant(effect_owner(ef)), o->ip);
            }
        }
        cJSON_AddStringToObject(r, "status", status_or_msg);
        result = json_print(r);
        cJSON_Delete(r);
        log_info("panos.%s tenant=%s ip=%s tag=%s status=%s", o->unblock ? "unblock" : "block",
                 p->tenant, o->ip, o->tag, status_or_msg);
    } else {
        pstats.failed += !o->unblock;
        result = xstrdup(status_or_msg);
    }
    free(o);
    effect_done(ef, ok, result);
    free(result);
}

/* The run went away: the op leaves its queue, its batch or its question. */
static void
blk_cancel(void *op)
{
    struct blk_op *o = op;

    if (o->reserved) {
        o->rt->reserved--;
    }
    if (o->ask != NULL) {
        call_request_cancel(o->ask);
    } else if (o->batch != NULL) {
        o->batch->ops[o->slot] = NULL;
        if (--o->batch->live == 0) {
            batch_free(o->batch);
        }
    } else {
        blk_unqueue(o);
    }
    free(o);
}

/* The reconciling show answered: the mapping is already as asked (done, nothing sent),
 * or the op joins the next batch. */
static void
blk_asked(void *arg, int ok, const char *result)
{
    struct blk_op *o = arg;
    struct xml_node *root = NULL;
    int has = 0;

    o->ask = NULL;
    if (!ok) {
        char *msg = xasprintf("%s: the firewall's state could not be read after a restart "
                              "(%s); not sent again",
                              blk_kind(o), result);

        blk_done(o, 0, msg);
        free(msg);
        return;
    }
    if (raw_parse(result, &root) == -1 || strcmp(xml_attr(root, "status"), "success") != 0) {
        char *msg = root != NULL ? envelope_error(blk_kind(o), root)
                                 : xasprintf("%s: unreadable answer", blk_kind(o));

        xml_free(root);
        blk_done(o, 0, msg);
        free(msg);
        return;
    }
    for (const struct xml_node *e = xml_child(root, "result") ? xml_child(root, "result")->child
                                                              : NULL;
         e != NULL; e = e->next) {
        const char *ip = xml_attr(e, "ip");

        if (strcmp(e->name, "entry") != 0 || ip == NULL || strcasecmp(ip, o->ip) != 0) {
            continue;
        }
        for (const struct xml_node *m = xml_child(e, "tag") ? xml_child(e, "tag")->child : NULL;
             m != NULL; m = m->next) {
            if (strcmp(m->name, "member") == 0 && strcmp(m->text, o->tag) == 0) {
                has = 1;
            }
        }
    }
    xml_free(root);
    if (has != o->unblock) {
        log_info("panos.reconciled tenant=%s ip=%s tag=%s", o->rt->tenant, o->ip, o->tag);
        blk_done(o, 1, "reconciled");
        return;
    }
    blk_enqueue(o);
    blk_arm(o->rt, 0);
}

/* The per-entry message the firewall gave for o, or NULL when it gave none. */
static const char *
entry_message(const struct xml_node *root, const struct blk_op *o)
{
    const struct xml_node *payload = xml_path(root, "msg/line/uid-response/payload");
    const struct xml_node *sect = xml_child(payload, o->unblock ? "unregister" : "register");

    for (const struct xml_node *e = sect != NULL ? sect->child : NULL; e != NULL; e = e->next) {
        const char *ip = xml_attr(e, "ip");

        if (strcmp(e->name, "entry") == 0 && ip != NULL && strcasecmp(ip, o->ip) == 0) {
            const char *m = xml_attr(e, "message");

            return m != NULL ? m : (e->text != NULL ? e->text : "");
        }
    }
    return NULL;
}

/* The batch's answer, given to each effect in it: per-entry messages saying the
 * mapping was already there (or already gone) are success, as for the firewall's own
 * tools; any other message fails that entry only. */
static void
batch_answered(void *arg, int ok, const char *result)
{
    struct batch *b = arg;
    struct xml_node *root = NULL;
    int whole_error = 0;
    char *whole = NULL;

    b->call = NULL;
    if (ok && raw_parse(result, &root) == -1) {
        ok = 0;
    }
    if (ok && strcmp(xml_attr(root, "status"), "success") != 0 &&
        xml_path(root, "msg/line/uid-response") == NULL) {
        whole_error = 1;
    }
    for (size_t i = 0; i < b->n; i++) {
        struct blk_op *o = b->ops[i];
        const char *m;

        if (o == NULL) {
            continue;
        }
        b->ops[i] = NULL;
        o->batch = NULL;
        if (!ok) {
            char *msg = strncmp(result, "panos.uid_message: ", 19) == 0
                            ? xasprintf("%s: %s", blk_kind(o), result + 19)
                            : xasprintf("%s: %s", blk_kind(o), result);

            blk_done(o, 0, msg);
            free(msg);
        } else if (whole_error) {
            free(whole);
            whole = envelope_error(blk_kind(o), root);
            blk_done(o, 0, whole);
        } else if ((m = entry_message(root, o)) == NULL) {
            blk_done(o, 1, o->unblock ? "unregistered" : "registered");
        } else if (!o->unblock && strstr(m, "already exists") != NULL) {
            blk_done(o, 1, "already_registered");
        } else if (o->unblock && strstr(m, "does not exist") != NULL) {
            blk_done(o, 1, "not_registered");
        } else {
            char *msg = xasprintf("%s: %s: %s", blk_kind(o), o->ip, m);

            blk_done(o, 0, msg);
            free(msg);
        }
    }
    free(whole);
    xml_free(root);
    batch_free(b);
}

/* Append the uid-message entry of o. */
static void
entry_xml(struct buf *x, const struct blk_op *o)
{
    (void)!buf_puts(x, "<entry ip=\"");
    (void)!xml_escape(x, o->ip);
    (void)!buf_puts(x, "\"><tag><member");
    if (!o->unblock && o->timeout > 0) {
        (void)!buf_printf(x, " timeout=\"%ld\"", o->timeout);
    }
    (void)!buf_puts(x, ">");
    (void)!xml_escape(x, o->tag);
    (void)!buf_puts(x, "</member></tag></entry>");
}

/* 1 when a and b ask for the very same entry (two runs blocking one address). */
static int
same_entry(const struct blk_op *a, const struct blk_op *b)
{
    return a->unblock == b->unblock && a->timeout == b->timeout && strcmp(a->ip, b->ip) == 0 &&
           strcmp(a->tag, b->tag) == 0;
}

/* The batch window closed: ops in doubt ask first; the others go out in one message.
 * One address appears once per message (the firewall processes unregisters before
 * registers, and answers per address), so a different request for an address already
 * in the message waits for the next one, in order. */
static void
blk_flush(evutil_socket_t fd, short what, void *arg)
{
    struct prt *p = arg;
    struct blk_op *o, *next, *keep_head = NULL, *keep_tail = NULL;
    struct batch *b;
    struct buf reg, unreg;
    size_t entries = 0;

    (void)fd;
    (void)what;
    if (p->head == NULL) {
        return;
    }
    /* The tenant object of a waiting run: current even across a reload. */
    p->t = run_tenant(effect_owner(p->head->ef));
    b = xcalloc(1, sizeof(*b));
    b->rt = p;
    buf_init(&reg, 0);
    buf_init(&unreg, 0);
    for (o = p->head; o != NULL; o = next) {
        size_t k;
        int join = -1, clash = 0;

        next = o->next;
        o->next = NULL;
        if (o->in_doubt) {
            struct call_spec spec = { 0 };
            char *cmd = show_registered_cmd(o->ip, NULL, 1), *path = op_path(cmd), *err = NULL;

            o->in_doubt = 0;
            spec.kind = "panos.registered_ip";
            spec.api = &panos_api;
            spec.limiter = "panos";
            spec.prio = LIMITER_CONTAIN;
            spec.idempotent = 1;
            spec.method = "GET";
            spec.path = path;
            spec.map = map_raw;
            o->ask = call_request(p->t, &spec, blk_asked, o, &err);
            free(cmd);
            free(path);
            if (o->ask == NULL) {
                blk_done(o, 0, err);
            }
            free(err);
            continue;
        }
        for (k = 0; k < b->n; k++) {
            if (strcmp(b->ops[k]->ip, o->ip) == 0) {
                if (same_entry(b->ops[k], o)) {
                    join = (int)k;
                } else {
                    clash = 1;
                }
            }
        }
        for (struct blk_op *kept = keep_head; kept != NULL && !clash; kept = kept->next) {
            clash = strcmp(kept->ip, o->ip) == 0; /* an earlier request waits: keep order */
        }
        if (clash || (join < 0 && entries >= PANOS_BATCH_MAX)) {
            /* keep it for the next message */
            if (keep_tail != NULL) {
                keep_tail->next = o;
            } else {
                keep_head = o;
            }
            keep_tail = o;
            continue;
        }
        b->ops = xrealloc(b->ops, (b->n + 1) * sizeof(*b->ops));
        o->batch = b;
        o->slot = b->n;
        b->ops[b->n++] = o;
        b->live++;
        if (join < 0) {
            entry_xml(o->unblock ? &unreg : &reg, o);
            entries++;
        }
    }
    p->head = keep_head;
    p->tail = keep_tail;
    if (b->n > 0) {
        struct call_spec spec = { 0 };
        struct buf x;
        char *cmd, *body, *err = NULL;

        buf_init(&x, 0);
        (void)!buf_puts(&x, "<uid-message><version>2.0</version><type>update</type><payload>");
        if (unreg.len > 0) {
            (void)!buf_printf(&x, "<unregister>%s</unregister>", unreg.data);
        }
        if (reg.len > 0) {
            (void)!buf_printf(&x, "<register>%s</register>", reg.data);
        }
        (void)!buf_puts(&x, "</payload></uid-message>");
        cmd = call_escape(x.data);
        body = xasprintf("type=user-id&cmd=%s", cmd);
        free(cmd);
        buf_free(&x);
        spec.kind = "panos.uid_message";
        spec.api = &panos_api;
        spec.limiter = "panos";
        spec.prio = LIMITER_CONTAIN;
        spec.idempotent = 1; /* a repeat finds every mapping already as asked */
        spec.method = "POST";
        spec.path = "/api/";
        spec.body = body;
        spec.body_format = CALL_BODY_FORM;
        spec.map = map_raw;
        b->next = p->batches;
        p->batches = b;
        log_info("panos.batch tenant=%s effects=%zu entries=%zu", p->tenant, b->n, entries);
        pstats.messages++;
        pstats.entries += entries;
        b->call = call_request(p->t, &spec, batch_answered, b, &err);
        free(body);
        if (b->call == NULL) {
            batch_answered(b, 0, err ? err : "not configured");
        }
        free(err);
    } else {
        free(b->ops);
        free(b);
    }
    buf_free(&reg);
    buf_free(&unreg);
    if (p->head != NULL) {
        blk_arm(p, 0);
    }
}

static void
blk_arm(struct prt *p, double seconds)
{
    struct timeval tv;

    if (p->timer == NULL) {
        p->timer = evtimer_new(loop_base(), blk_flush, p);
    }
    if (evtimer_pending(p->timer, NULL) && seconds > 0) {
        return; /* the window is already open: join it */
    }
    tv.tv_sec = (time_t)seconds;
    tv.tv_usec = (suseconds_t)((seconds - floor(seconds)) * 1e6);
    evtimer_add(p->timer, &tv);
}

/* What the Lua function hands the effect driver. */
struct blk_args {
    int unblock;
    const char *ip, *tag;
    long timeout;
};

/* The guardrails, before anything is sent (and recorded as the effect's failure). */
static char *
blk_check(struct run *r, void *arg)
{
    const struct blk_args *a = arg;
    const struct tenant *t = run_tenant(r);
    const struct panos_conf *conf = tenant_conf(t, &panos_section);
    const struct panos_state *s = tenant_state(t, &panos_section);
    const char *hit;
    struct prt *p;
    long made;

    if (conf == NULL || s == NULL) {
        return xstrdup(panos_api.not_configured);
    }
    if (a->unblock) {
        return NULL;
    }
    if ((hit = panos_guard_match(s->guard, a->ip)) != NULL) {
        pstats.refused++;
        return xasprintf("panos.block_ip: %s is never blocked (it is within %s of "
                         "tenants.%s.panos.never_block or the firewall's own address)",
                         a->ip, hit, tenant_id(t));
    }
    p = prt_get(t);
    if ((made = blocks_last_hour(run_tenant(r))) < 0 ||
        (size_t)made + p->reserved >= (size_t)conf->max_blocks_per_hour) {
        pstats.refused++;
        if (made < 0) {
            return xasprintf("panos.block_ip: %s not blocked: the count of this hour's blocks "
                             "cannot be read now",
                             a->ip);
        }
        return xasprintf("panos.block_ip: %s not blocked: the tenant's limit of %d blocks per "
                         "hour (tenants.%s.panos.max_blocks_per_hour) is reached",
                         a->ip, conf->max_blocks_per_hour, tenant_id(t));
    }
    return NULL;
}

static void *
blk_open(struct effect *ef, void *arg)
{
    const struct blk_args *a = arg;
    struct blk_op *o = xcalloc(1, sizeof(*o));

    o->ef = ef;
    o->rt = prt_get(run_tenant(effect_owner(ef)));
    o->unblock = a->unblock;
    snprintf(o->ip, sizeof(o->ip), "%s", a->ip);
    snprintf(o->tag, sizeof(o->tag), "%s", a->tag);
    o->timeout = a->timeout;
    o->in_doubt = effect_in_doubt(ef);
    if (!o->unblock) {
        o->reserved = 1;
        o->rt->reserved++;
    }
    return o;
}

static void
blk_start(void *op)
{
    struct blk_op *o = op;
    const struct panos_conf *conf = tenant_conf(run_tenant(effect_owner(o->ef)), &panos_section);

    blk_enqueue(o);
    blk_arm(o->rt, conf != NULL ? conf->batch_window : 0.2);
}

/* The address argument: checked, then canonical (so "2001:DB8::1" and "2001:db8::1"
 * are one entry, in the journal too). Pushed on the stack. */
static const char *
check_ip(lua_State *L, int idx, int allow_cidr)
{
    size_t len;
    const char *s;
    char canon[PANOS_NET_MAX];

    if (lua_type(L, idx) != LUA_TSTRING) {
        luaL_argerror(L, idx,
                      lua_pushfstring(L, "expected an IP address%s, got %s",
                                      allow_cidr ? " or a CIDR subnet" : "",
                                      luaL_typename(L, idx)));
    }
    s = lua_tolstring(L, idx, &len);
    if (panos_parse_net(s, len, allow_cidr, canon) == -1) {
        luaL_argerror(
            L, idx,
            lua_pushfstring(L,
                            "expected an IP address%s (refused before anything was "
                            "sent)",
                            allow_cidr ? " or a CIDR subnet with its host bits zero" : ""));
    }
    lua_pushstring(L, canon);
    return lua_tostring(L, -1);
}

/* The tag at idx, an option of the argument arg (the error names that argument). */
static const char *
check_tag(lua_State *L, int idx, int arg, const char *what)
{
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);

    if (lua_type(L, idx) != LUA_TSTRING || !panos_valid_tag(s, len)) {
        luaL_argerror(L, arg,
                      lua_pushfstring(L,
                                      "%s: expected a tag of 1 to %d letters, digits, '-', "
                                      "'_', '.' or inner spaces",
                                      what, PANOS_TAG_MAX));
    }
    return s;
}

static const char *
check_name(lua_State *L, int idx, const char *what)
{
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);

    if (lua_type(L, idx) != LUA_TSTRING || !panos_valid_name(s, len)) {
        luaL_argerror(L, idx,
                      lua_pushfstring(L,
                                      "%s: expected a name of 1 to %d letters, digits, "
                                      "'-', '_', '.' or inner spaces, starting with a "
                                      "letter or digit",
                                      what, PANOS_NAME_MAX));
    }
    return s;
}

/* The options table at idx (nil allowed) with only these keys. */
static void
check_opts(lua_State *L, int idx, const char *const *keys)
{
    if (lua_isnoneornil(L, idx)) {
        return;
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    if (lcheck_unknown_key(L, idx, keys)) {
        luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'", lua_tostring(L, -1)));
    }
}

/* The tenant's settings for a function that needs them at argument time (the default
 * tag), or NULL outside a run or without a panos block. */
static const struct panos_conf *
lua_conf(lua_State *L)
{
    struct run *r = run_from_lua(L);

    return r != NULL ? tenant_conf(run_tenant(r), &panos_section) : NULL;
}

static int
blk_effect(lua_State *L, int unblock)
{
    static const char *const block_keys[] = { "tag", "timeout", NULL };
    static const char *const unblock_keys[] = { "tag", NULL };
    const struct panos_conf *conf = lua_conf(L);
    struct effect_spec es = { 0 };
    struct blk_args a = { 0 };
    cJSON *req;
    char *text;

    lua_settop(L, 2); /* the options' place, before anything is pushed */
    a.unblock = unblock;
    a.ip = check_ip(L, 1, 1);
    check_opts(L, 2, unblock ? unblock_keys : block_keys);
    a.tag = conf != NULL ? conf->tag : "kagari-block";
    a.timeout = conf != NULL ? (long)conf->block_timeout : 0;
    if (lua_istable(L, 2)) {
        if (lua_getfield(L, 2, "tag") != LUA_TNIL) {
            a.tag = check_tag(L, lua_gettop(L), 2, "tag");
        }
        if (!unblock && lua_getfield(L, 2, "timeout") != LUA_TNIL) {
            lua_Integer v = 0;

            if (!lua_isinteger(L, -1) || (v = lua_tointeger(L, -1)) < 0 || v > PANOS_TIMEOUT_MAX) {
                luaL_argerror(L, 2,
                              lua_pushfstring(L,
                                              "timeout: expected whole seconds from 0 (until "
                                              "unblocked) to %d",
                                              PANOS_TIMEOUT_MAX));
            }
            a.timeout = (long)v;
        }
    }
    req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "ip", a.ip);
    cJSON_AddStringToObject(req, "tag", a.tag);
    if (!unblock) {
        cJSON_AddNumberToObject(req, "timeout", (double)a.timeout);
    }
    text = json_print(req);
    cJSON_Delete(req);
    lua_pushstring(L, text); /* owned by the stack if anything below raises */
    free(text);
    es.kind = unblock ? "panos.unblock_ip" : "panos.block_ip";
    es.request = lua_tostring(L, -1);
    es.flags = EFFECT_OUTSIDE | EFFECT_RECONCILES;
    es.check = blk_check;
    es.open = blk_open;
    es.start = blk_start;
    es.cancel = blk_cancel;
    es.arg = &a;
    return effect_run(L, &es);
}

/* panos.block_ip(ip, {tag=, timeout=}) */
static int
l_panos_block_ip(lua_State *L)
{
    return blk_effect(L, 0);
}

/* panos.unblock_ip(ip, {tag=}) */
static int
l_panos_unblock_ip(lua_State *L)
{
    return blk_effect(L, 1);
}

/* ---- blocked, address objects, groups ---- */

/* Each page of show registered-ip adds its entries; a full page asks for the next: the
 * same request with its start-point moved on. */
static int
map_blocked(struct call *c, const struct httpc_response *resp, char **result)
{
    static const char mark[] = "%3Cstart-point%3E";
    struct xml_node *root = NULL;
    cJSON *acc = call_acc(c);
    int n;

    if (answer_parse(c, resp, &root, result) == -1) {
        return 0;
    }
    if (strcmp(xml_attr(root, "status"), "success") != 0) {
        *result = envelope_error(call_kind(c), root);
        xml_free(root);
        return 0;
    }
    n = entries_json(xml_child(root, "result"), acc);
    xml_free(root);
    if (n >= PANOS_SHOW_LIMIT) {
        const char *url = call_url(c), *at = strstr(url, mark);

        if (at != NULL) {
            const char *rest = at + strlen(mark) + strspn(at + strlen(mark), "0123456789");
            char *next = xasprintf("%.*s%s%d%s", (int)(at - url), url, mark,
                                   cJSON_GetArraySize(acc) + 1, rest);
            int rc = call_next_page(c, next, result);

            free(next);
            if (rc != 1) {
                return rc;
            }
        }
    }
    *result = json_print(acc);
    return 1;
}

/* panos.blocked{tag=}: the firewall's current mappings with that tag (default: the
 * tenant's block tag; tag = "*" lists every registered address). */
static int
l_panos_blocked(lua_State *L)
{
    static const char *const keys[] = { "tag", NULL };
    const struct panos_conf *conf = lua_conf(L);
    const char *tag = conf != NULL ? conf->tag : "kagari-block";
    struct call_spec spec = { 0 };
    char *cmd, *path;

    lua_settop(L, 1);
    check_opts(L, 1, keys);
    if (lua_istable(L, 1) && lua_getfield(L, 1, "tag") != LUA_TNIL) {
        tag = lua_tostring(L, -1);
        if (tag == NULL || strcmp(tag, "*") != 0) {
            tag = check_tag(L, lua_gettop(L), 1, "tag");
        } else {
            tag = NULL;
        }
    }
    cmd = show_registered_cmd(NULL, tag, 1);
    path = op_path(cmd);
    free(cmd);
    lua_pushstring(L, path);
    free(path);
    spec.kind = "panos.blocked";
    spec.api = &panos_api;
    spec.limiter = "panos";
    spec.prio = LIMITER_ENRICH;
    spec.idempotent = 1;
    spec.method = "GET";
    spec.path = lua_tostring(L, -1);
    spec.map = map_blocked;
    return call_effect(L, &spec);
}

/* The vsys xpath of the tenant's firewall (device and vsys are CONFIG_NAME values:
 * letters, digits, '.', '-', '_'). */
static char *
vsys_xpath(const struct panos_conf *conf)
{
    return xasprintf("/config/devices/entry[@name='%s']/vsys/entry[@name='%s']",
                     conf != NULL ? conf->device : "localhost.localdomain",
                     conf != NULL ? conf->vsys : "vsys1");
}

/* Push the form body of a config request: type=config&action=..&xpath=..[&element=..]. */
static const char *
push_config_body(lua_State *L, const char *action, const char *xpath, const char *element)
{
    char *x = call_escape(xpath), *e = element != NULL ? call_escape(element) : NULL;
    char *body = xasprintf("type=config&action=%s&xpath=%s%s%s", action, x, e ? "&element=" : "",
                           e ? e : "");

    lua_pushstring(L, body);
    free(body);
    free(x);
    free(e);
    return lua_tostring(L, -1);
}

static int
config_effect(lua_State *L, const char *kind, const char *body)
{
    struct call_spec spec = { 0 };

    spec.kind = kind;
    spec.api = &panos_api;
    spec.limiter = "panos";
    spec.prio = LIMITER_CONTAIN;
    spec.idempotent = 1; /* set merges, delete of a missing node is success */
    spec.method = "POST";
    spec.path = "/api/";
    spec.body = body;
    spec.body_format = CALL_BODY_FORM;
    spec.map = map_config;
    return call_effect(L, &spec);
}

/* panos.add_address(name, ip_or_cidr, {description=, tags={...}}): an address object
 * in the candidate configuration (set merges: repeating it is harmless). */
static int
l_panos_add_address(lua_State *L)
{
    static const char *const keys[] = { "description", "tags", NULL };
    const char *name = (lua_settop(L, 3), check_name(L, 1, "name"));
    const char *net = check_ip(L, 2, 1);
    char *prefix, *xpath;
    struct buf el;
    const char *body;

    check_opts(L, 3, keys);
    prefix = vsys_xpath(lua_conf(L));
    buf_init(&el, 0);
    (void)!buf_puts(&el, "<ip-netmask>");
    (void)!xml_escape(&el, net);
    (void)!buf_puts(&el, "</ip-netmask>");
    if (lua_istable(L, 3)) {
        if (lua_getfield(L, 3, "description") != LUA_TNIL) {
            size_t len;
            const char *d = lua_tolstring(L, -1, &len);

            (void)!buf_puts(&el, "<description>");
            if (lua_type(L, -1) != LUA_TSTRING || len > PANOS_DESC_MAX ||
                xml_escape(&el, d) == -1 || strlen(d) != len) {
                buf_free(&el);
                free(prefix);
                return luaL_argerror(L, 3,
                                     "description: expected text of at most 1023 bytes of "
                                     "UTF-8 without control characters");
            }
            (void)!buf_puts(&el, "</description>");
        }
        lua_pop(L, 1);
        if (lua_getfield(L, 3, "tags") != LUA_TNIL) {
            lua_Integer n;

            if (!lua_istable(L, -1) || (n = luaL_len(L, -1)) > 64) {
                buf_free(&el);
                free(prefix);
                return luaL_argerror(L, 3, "tags: expected a list of at most 64 tags");
            }
            (void)!buf_puts(&el, "<tag>");
            for (lua_Integer i = 1; i <= n; i++) {
                size_t len;
                const char *t;

                lua_geti(L, -1, i);
                t = lua_tolstring(L, -1, &len);
                if (lua_type(L, -1) != LUA_TSTRING || !panos_valid_tag(t, len)) {
                    buf_free(&el);
                    free(prefix);
                    return luaL_argerror(L, 3,
                                         "tags: each is a tag of 1 to 127 letters, "
                                         "digits, '-', '_', '.' or inner spaces");
                }
                (void)!buf_puts(&el, "<member>");
                (void)!xml_escape(&el, t);
                (void)!buf_puts(&el, "</member>");
                lua_pop(L, 1);
            }
            (void)!buf_puts(&el, "</tag>");
        }
        lua_pop(L, 1);
    }
    xpath = xasprintf("%s/address/entry[@name='%s']", prefix, name);
    body = push_config_body(L, "set", xpath, el.data);
    free(prefix);
    free(xpath);
    buf_free(&el);
    return config_effect(L, "panos.add_address", body);
}

/* panos.add_to_group(group, name): a member of a static address group. */
static int
l_panos_add_to_group(lua_State *L)
{
    const char *group = check_name(L, 1, "group");
    const char *name = check_name(L, 2, "name");
    char *prefix = vsys_xpath(lua_conf(L));
    char *xpath = xasprintf("%s/address-group/entry[@name='%s']/static", prefix, group);
    struct buf el;
    const char *body;

    buf_init(&el, 0);
    (void)!buf_puts(&el, "<member>");
    (void)!xml_escape(&el, name);
    (void)!buf_puts(&el, "</member>");
    body = push_config_body(L, "set", xpath, el.data);
    free(prefix);
    free(xpath);
    buf_free(&el);
    return config_effect(L, "panos.add_to_group", body);
}

/* panos.delete_address(name): removes the address object (already absent: success);
 * one a group or rule still uses is refused by the firewall (code 10). */
static int
l_panos_delete_address(lua_State *L)
{
    const char *name = check_name(L, 1, "name");
    char *prefix = vsys_xpath(lua_conf(L));
    char *xpath = xasprintf("%s/address/entry[@name='%s']", prefix, name);
    const char *body = push_config_body(L, "delete", xpath, NULL);

    free(prefix);
    free(xpath);
    return config_effect(L, "panos.delete_address", body);
}

/* ---- commit ----
 *
 * One machine per tenant, driven by a timer and the call core (the run is parked on its
 * effect meanwhile, durably: after a restart the effect is opened again and the machine
 * starts over, which finds the job it left):
 *   CHECK  show jobs: a commit job still running (anyone's) is waited for (WAIT), not
 *          joined by a second one that the firewall would refuse;
 *   SEND   the commit; every commit() queued until now is a member of it;
 *   POLL   its job every commit_poll until FIN: OK or FAIL with the job's messages.
 * "Another commit is in progress" sends it back to CHECK; any other error (a held
 * configuration lock) fails the members with the firewall's messages. commit() calls
 * arriving after SEND wait for the next round. */

enum { C_IDLE = 0, C_CHECK, C_WAIT, C_SEND, C_POLL };

struct commit_op {
    struct effect *ef;
    struct prt *rt;
    char *description;
    int member;
    struct commit_op *next;
};

static void commit_step(struct prt *p);

static void
commit_free(struct commit_op *o)
{
    free(o->description);
    free(o);
}

static void
commit_unqueue(struct commit_op *o)
{
    struct prt *p = o->rt;
    struct commit_op **pp = &p->cq_head, *prev = NULL;

    while (*pp != NULL && *pp != o) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp == o) {
        *pp = o->next;
        if (p->cq_tail == o) {
            p->cq_tail = prev;
        }
    }
}

/* Stop the machine (nobody waits any more, or a round ended). */
static void
commit_idle(struct prt *p)
{
    call_request_cancel(p->ccall);
    p->ccall = NULL;
    if (p->ctimer != NULL) {
        evtimer_del(p->ctimer);
    }
    p->cstate = C_IDLE;
    p->job[0] = '\0';
}

/* Finish the members (all queued ops with all = 1) with ok and result; then the next
 * round starts if others wait. */
static void
commit_finish(struct prt *p, int all, int ok, const char *result)
{
    struct commit_op *o = p->cq_head, *next;

    if (ok) {
        pstats.commits_ok++;
    } else {
        pstats.commits_failed++;
    }
    commit_idle(p);
    for (; o != NULL; o = next) {
        next = o->next;
        if (all || o->member) {
            struct effect *ef = o->ef;

            commit_unqueue(o);
            commit_free(o);
            effect_done(ef, ok, result);
        }
    }
    if (p->cq_head != NULL) {
        p->cstate = C_CHECK;
        commit_step(p);
    }
}

static void
commit_cancel(void *op)
{
    struct commit_op *o = op;
    struct prt *p = o->rt;

    commit_unqueue(o);
    commit_free(o);
    if (p->cq_head == NULL) {
        commit_idle(p);
    }
}

static void
commit_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    commit_step(arg);
}

static void
commit_later(struct prt *p)
{
    const struct panos_conf *conf =
        p->cq_head != NULL ? tenant_conf(run_tenant(effect_owner(p->cq_head->ef)), &panos_section)
                           : NULL;
    double s = conf != NULL ? conf->commit_poll : 2;
    struct timeval tv;

    if (p->ctimer == NULL) {
        p->ctimer = evtimer_new(loop_base(), commit_timer, p);
    }
    tv.tv_sec = (time_t)s;
    tv.tv_usec = (suseconds_t)((s - floor(s)) * 1e6);
    evtimer_add(p->ctimer, &tv);
}

static void commit_answered(void *arg, int ok, const char *result);

static void
commit_call(struct prt *p, const char *kind, const char *method, const char *path, const char *body)
{
    struct call_spec spec = { 0 };
    char *err = NULL;

    spec.kind = kind;
    spec.api = &panos_api;
    spec.limiter = "panos";
    spec.prio = LIMITER_NORMAL;
    spec.idempotent = 1; /* reads; a repeated commit finds nothing to commit or a job */
    spec.method = method;
    spec.path = path;
    spec.body = body;
    spec.body_format = CALL_BODY_FORM;
    spec.map = map_raw;
    p->ccall = call_request(p->t, &spec, commit_answered, p, &err);
    if (p->ccall == NULL) {
        char *msg = xasprintf("panos.commit: %s", err ? err : "not configured");

        commit_finish(p, 1, 0, msg);
        free(msg);
    }
    free(err);
}

static void
commit_step(struct prt *p)
{
    char *cmd = NULL, *path = NULL;

    if (p->cq_head == NULL) {
        commit_idle(p);
        return;
    }
    p->t = run_tenant(effect_owner(p->cq_head->ef)); /* current even across a reload */

    switch (p->cstate) {
    case C_CHECK:
        path = op_path("<show><jobs><all/></jobs></show>");
        commit_call(p, "panos.show_jobs", "GET", path, NULL);
        break;
    case C_WAIT:
    case C_POLL:
        cmd = xasprintf("<show><jobs><id>%s</id></jobs></show>", p->job);
        path = op_path(cmd);
        commit_call(p, "panos.show_job", "GET", path, NULL);
        break;
    case C_SEND: {
        struct buf x;
        const char *desc = NULL;
        char *esc, *body;

        for (struct commit_op *o = p->cq_head; o != NULL; o = o->next) {
            o->member = 1;
            if (desc == NULL && o->description != NULL) {
                desc = o->description;
            }
        }
        buf_init(&x, 0);
        (void)!buf_puts(&x, "<commit>");
        if (desc != NULL) {
            (void)!buf_puts(&x, "<description>");
            (void)!xml_escape(&x, desc);
            (void)!buf_puts(&x, "</description>");
        }
        (void)!buf_puts(&x, "</commit>");
        esc = call_escape(x.data);
        body = xasprintf("type=commit&cmd=%s", esc);
        buf_free(&x);
        free(esc);
        commit_call(p, "panos.commit", "POST", "/api/", body);
        free(body);
        break;
    }
    default:
        break;
    }
    free(cmd);
    free(path);
}

/* A job id from the firewall goes into the next command: digits only. */
static int
job_id_ok(const char *s)
{
    size_t n = strspn(s, "0123456789");

    return n > 0 && n < 20 && s[n] == '\0';
}

static void
commit_answered(void *arg, int ok, const char *result)
{
    struct prt *p = arg;
    struct xml_node *root = NULL;
    const struct xml_node *job;
    const char *status;
    char *msg = NULL;

    p->ccall = NULL;
    if (!ok) {
        msg = xasprintf("panos.commit: %s", result);
        commit_finish(p, p->cstate != C_SEND && p->cstate != C_POLL, 0, msg);
        free(msg);
        return;
    }
    if (raw_parse(result, &root) == -1) {
        commit_finish(p, 1, 0, "panos.commit: unreadable answer");
        return;
    }
    status = xml_attr(root, "status");
    switch (p->cstate) {
    case C_CHECK:
        p->cstate = C_SEND;
        if (strcmp(status, "success") != 0) {
            msg = envelope_error("panos.commit: show jobs", root);
            commit_finish(p, 1, 0, msg);
            break;
        }
        for (job = xml_child(xml_child(root, "result"), "job"); job != NULL; job = job->next) {
            const char *type = xml_path_text(job, "type"), *st = xml_path_text(job, "status");
            const char *id = xml_path_text(job, "id");

            if (strcmp(job->name, "job") == 0 && type != NULL && strcasecmp(type, "Commit") == 0 &&
                st != NULL && strcmp(st, "FIN") != 0 && id != NULL && job_id_ok(id)) {
                snprintf(p->job, sizeof(p->job), "%s", id);
                p->cstate = C_WAIT;
                log_info("panos.commit_wait tenant=%s job=%s", p->tenant, p->job);
                pstats.commit_waits++;
                break;
            }
        }
        if (p->cstate == C_WAIT) {
            commit_later(p);
        } else {
            commit_step(p);
        }
        break;
    case C_SEND: {
        const char *id = xml_path_text(root, "result/job");
        struct buf b;

        buf_init(&b, 4096);
        xml_text_all(root, &b, "; ");
        if (strcmp(status, "success") == 0 && id != NULL && job_id_ok(id)) {
            snprintf(p->job, sizeof(p->job), "%s", id);
            p->cstate = C_POLL;
            log_info("panos.commit_job tenant=%s job=%s", p->tenant, p->job);
            commit_later(p);
        } else if (strcmp(status, "success") == 0) { /* "There are no changes to commit." */
            cJSON *r = cJSON_CreateObject(), *m = cJSON_AddArrayToObject(r, "messages");

            cJSON_AddStringToObject(r, "result", "OK");
            if (b.len > 0) {
                cJSON_AddItemToArray(m, cJSON_CreateString(b.data));
            }
            msg = json_print(r);
            cJSON_Delete(r);
            commit_finish(p, 0, 1, msg);
        } else if (b.len > 0 && strstr(b.data, "in progress") != NULL) {
            p->cstate = C_CHECK; /* another commit started meanwhile: wait for it */
            commit_later(p);
        } else {
            msg = envelope_error("panos.commit", root);
            commit_finish(p, 0, 0, msg);
        }
        buf_free(&b);
        break;
    }
    case C_WAIT:
    case C_POLL: {
        const struct xml_node *j = xml_path(root, "result/job");
        const char *st = xml_path_text(j, "status"), *res = xml_path_text(j, "result");

        if (strcmp(status, "success") != 0 || j == NULL) {
            msg = envelope_error("panos.commit: show job", root);
            commit_finish(p, p->cstate == C_WAIT, 0, msg);
        } else if (st == NULL || strcmp(st, "FIN") != 0) {
            commit_later(p);
        } else if (p->cstate == C_WAIT) {
            p->cstate = C_SEND; /* the other commit is done: ours now */
            commit_step(p);
        } else {
            cJSON *r = cJSON_CreateObject(), *m = cJSON_AddArrayToObject(r, "messages");
            struct buf b;
            int good = res != NULL && strcmp(res, "OK") == 0;

            buf_init(&b, 8192);
            for (const struct xml_node *l = xml_path(j, "details") ? xml_path(j, "details")->child
                                                                   : NULL;
                 l != NULL; l = l->next) {
                struct buf one;

                buf_init(&one, 4096);
                xml_text_all(l, &one, " ");
                if (one.len > 0) {
                    cJSON_AddItemToArray(m, cJSON_CreateString(one.data));
                    (void)!buf_printf(&b, "%s%s", b.len > 0 ? "; " : "", one.data);
                }
                buf_free(&one);
            }
            cJSON_AddStringToObject(r, "job", p->job);
            cJSON_AddStringToObject(r, "result", res != NULL ? res : "");
            if (good) {
                msg = json_print(r);
            } else {
                msg = xasprintf("panos.commit: job %s ended %s: %s", p->job,
                                res != NULL ? res : "without a result",
                                b.len > 0 ? b.data : "no details");
            }
            cJSON_Delete(r);
            buf_free(&b);
            commit_finish(p, 0, good, msg);
        }
        break;
    }
    default:
        break;
    }
    free(msg);
    xml_free(root);
}

struct commit_args {
    const char *description;
};

static char *
commit_check(struct run *r, void *arg)
{
    (void)arg;
    return tenant_conf(run_tenant(r), &panos_section) == NULL ? xstrdup(panos_api.not_configured)
                                                              : NULL;
}

static void *
commit_open(struct effect *ef, void *arg)
{
    const struct commit_args *a = arg;
    struct commit_op *o = xcalloc(1, sizeof(*o));

    o->ef = ef;
    o->rt = prt_get(run_tenant(effect_owner(ef)));
    o->description = a->description != NULL ? xstrdup(a->description) : NULL;
    return o;
}

static void
commit_start(void *op)
{
    struct commit_op *o = op;
    struct prt *p = o->rt;

    o->next = NULL;
    if (p->cq_tail != NULL) {
        p->cq_tail->next = o;
    } else {
        p->cq_head = o;
    }
    p->cq_tail = o;
    if (p->cstate == C_IDLE) {
        p->cstate = C_CHECK;
        commit_step(p);
    }
}

/* panos.commit({description=}): commit the candidate configuration and wait for its job. */
static int
l_panos_commit(lua_State *L)
{
    static const char *const keys[] = { "description", NULL };
    struct commit_args a = { NULL };
    struct effect_spec es = { 0 };
    cJSON *req;
    char *text;

    lua_settop(L, 1);
    check_opts(L, 1, keys);
    if (lua_istable(L, 1) && lua_getfield(L, 1, "description") != LUA_TNIL) {
        size_t len;
        const char *d = lua_tolstring(L, -1, &len);
        struct buf probe;
        int bad;

        buf_init(&probe, 0);
        bad = lua_type(L, -1) != LUA_TSTRING || len > 512 || strlen(d) != len ||
              xml_escape(&probe, d) == -1;
        buf_free(&probe);
        if (bad) {
            return luaL_argerror(L, 1,
                                 "description: expected text of at most 512 bytes of UTF-8 "
                                 "without control characters");
        }
        a.description = d;
    }
    req = cJSON_CreateObject();
    if (a.description != NULL) {
        cJSON_AddStringToObject(req, "description", a.description);
    }
    text = json_print(req);
    cJSON_Delete(req);
    lua_pushstring(L, text);
    free(text);
    es.kind = "panos.commit";
    es.request = lua_tostring(L, -1);
    es.flags = EFFECT_OUTSIDE | EFFECT_IDEMPOTENT;
    es.check = commit_check;
    es.open = commit_open;
    es.start = commit_start;
    es.cancel = commit_cancel;
    es.arg = &a;
    return effect_run(L, &es);
}

/* ---- kagari panos keygen --tenant T ----
 *
 * Asks the firewall for an API key (type=keygen) with an admin's user and password,
 * read once: from the terminal (the password without echo), or as two lines of
 * standard input when it is not a terminal. Prints the key encrypted with the
 * configuration's key file, for tenants.<id>.panos.api_key; the password and the key
 * itself are never printed or kept. */

struct keygen_wait {
    struct event_base *base;
    int status;
    char *body;
    char *error;
};

static void
keygen_done(void *arg, const struct httpc_response *resp)
{
    struct keygen_wait *w = arg;

    w->status = resp->status;
    w->body = xstrndup(resp->body != NULL ? resp->body : "", resp->body_len);
    w->error = resp->error != NULL ? xstrdup(resp->error) : NULL;
    event_base_loopbreak(w->base);
}

/* One line of input (without its line end) into buf; echo off when from a terminal and
 * secret. -1 at end of input or on an over-long line. */
static int
keygen_read(const char *prompt, int secret, char *buf, size_t n)
{
    int tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    int rc = 0;
    size_t len;

    if (tty) {
        fputs(prompt, stderr);
        fflush(stderr);
        if (secret && tcgetattr(STDIN_FILENO, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        } else {
            secret = 0;
        }
    }
    if (fgets(buf, (int)n, stdin) == NULL) {
        rc = -1;
    }
    if (tty && secret) {
        (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    len = rc == 0 ? strlen(buf) : 0;
    if (rc == 0 && (len == 0 || buf[len - 1] != '\n') && !feof(stdin)) {
        rc = -1; /* longer than the buffer */
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
        buf[--len] = '\0';
    }
    return rc == 0 && len > 0 ? 0 : -1;
}

/* POST type=keygen to the firewall; 0 with *key (secret_free it) or -1 with *errp. */
static int
keygen_request(const struct config *cfg, const char *url, const char *user, const char *password,
               char **key, char **errp)
{
    struct keygen_wait w = { 0 };
    struct httpc_request rq = { 0 };
    const char *headers[] = { "Content-Type: application/x-www-form-urlencoded",
                              "Accept: application/xml", NULL };
    struct xml_node *root = NULL;
    char *u = call_escape(user), *p = call_escape(password), *body, *full, *err = NULL;
    struct httpc_call *call;
    int rc = -1;

    *key = NULL;
    body = xasprintf("type=keygen&user=%s&password=%s", u, p);
    OPENSSL_cleanse(p, strlen(p));
    free(u);
    free(p);
    full = xasprintf("%s/api/", url);
    w.base = event_base_new();
    if (w.base == NULL || httpc_init(w.base, errp) == -1) {
        if (w.base != NULL) {
            event_base_free(w.base);
        }
        OPENSSL_cleanse(body, strlen(body));
        free(body);
        free(full);
        return w.base == NULL ? kg_err(errp, "no event base") : -1;
    }
    rq.method = "POST";
    rq.url = full;
    rq.headers = headers;
    rq.body = body;
    rq.body_len = strlen(body);
    rq.timeout = cfg->connectors.timeout > 0 ? cfg->connectors.timeout : 30;
    rq.ca_file = cfg->connectors.ca_file;
    rq.proxy = cfg->connectors.proxy;
    rq.max_response = 1 << 20;
    call = httpc_start(&rq, keygen_done, &w, &err);
    if (call != NULL) {
        event_base_dispatch(w.base);
    }
    httpc_shutdown();
    event_base_free(w.base);
    OPENSSL_cleanse(body, strlen(body));
    free(body);
    if (call == NULL) {
        kg_err(errp, "%s: %s", full, err ? err : "cannot send the request");
    } else if (w.status == 0) {
        kg_err(errp, "%s: %s", full, w.error ? w.error : "no answer");
    } else if (xml_parse(w.body, strlen(w.body), &root, &err) == -1 ||
               strcmp(root->name, "response") != 0) {
        kg_err(errp, "%s: HTTP %d, not a PAN-OS answer", full, w.status);
    } else if (w.status == 403 ||
               strcmp(xml_attr(root, "status") ? xml_attr(root, "status") : "", "success") != 0) {
        struct buf b;

        buf_init(&b, 4096);
        xml_text_all(root, &b, "; ");
        kg_err(errp, "the firewall refused the user and password (HTTP %d: %s)", w.status,
               b.len > 0 ? b.data : "error");
        buf_free(&b);
    } else {
        const char *k = xml_path_text(root, "result/key");

        if (k == NULL || k[0] == '\0') {
            kg_err(errp, "the firewall's answer has no key");
        } else {
            *key = xstrdup(k);
            rc = 0;
        }
    }
    if (w.body != NULL) {
        OPENSSL_cleanse(w.body, strlen(w.body));
    }
    xml_free(root); /* its text held the key: freed, and the copy is the caller's */
    free(w.body);
    free(w.error);
    free(err);
    free(full);
    return rc;
}

static int
panos_verb(int argc, char **argv)
{
    static const char help[] =
        "usage: kagari panos keygen --tenant ID [--config FILE]\n"
        "Ask the tenant's firewall (tenants.<id>.panos.url) for an API key with an admin's\n"
        "user and password (asked once: from the terminal, or as two lines of standard\n"
        "input), and print the key encrypted with the configuration's key file, to put in\n"
        "tenants.<id>.panos.api_key. Neither the password nor the key is kept or shown.\n";
    const char *config = NULL, *tenant = NULL;
    struct config cfg;
    const struct config_tenant *ct;
    const struct panos_conf *pc;
    char user[256], password[1024], *key = NULL, *enc = NULL, *err = NULL;
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(help, stdout);
            return 0;
        } else if (strcmp(argv[i], "--tenant") == 0 && i + 1 < argc) {
            tenant = argv[++i];
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(argv[i], "keygen") != 0 || i != 1) {
            fputs(help, stderr);
            return 2;
        }
    }
    if (argc < 2 || strcmp(argv[1], "keygen") != 0 || tenant == NULL) {
        fputs(help, stderr);
        return 2;
    }
    if (config == NULL) {
        config = getenv("KAGARI_CONFIG") != NULL ? getenv("KAGARI_CONFIG") : "kagari.conf.lua";
    }
    if (config_load(config, &cfg, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return 1;
    }
    ct = config_tenant(&cfg, tenant);
    pc = ct != NULL ? config_tenant_block(ct, &panos_section) : NULL;
    if (pc == NULL) {
        fprintf(stderr, "kagari: %s: no tenants.%s.panos block with the firewall's url\n", config,
                tenant);
        goto out;
    }
    if (secret_load_key(cfg.connectors.key_file, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        goto out;
    }
    if (keygen_read("PAN-OS admin user: ", 0, user, sizeof(user)) == -1 ||
        keygen_read("Password: ", 1, password, sizeof(password)) == -1) {
        fprintf(stderr, "kagari: expected a user and a password\n");
        goto out;
    }
    if (keygen_request(&cfg, pc->url, user, password, &key, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        goto out;
    }
    enc = secret_encrypt(key, &err);
    if (enc == NULL) {
        fprintf(stderr, "kagari: %s\n", err);
        goto out;
    }
    printf("%s\n", enc);
    fprintf(stderr, "kagari: put it in tenants.%s.panos: api_key = \"%s\"\n", tenant, enc);
    rc = 0;
out:
    OPENSSL_cleanse(password, sizeof(password));
    secret_free(key);
    free(enc);
    free(err);
    secret_unload_key();
    config_free(&cfg);
    return rc;
}

/* ---- the External Dynamic List: GET /edl/<tenant>[/<tag>] ----
 *
 * The addresses the tenant's firewall blocks through this connector (those of its block
 * tag, or of the tag named), one per line, for firewalls that pull a list instead of
 * (or besides) taking User-ID registrations. HTTP Basic with the tenant's edl_user and
 * edl_password; anything else (an unknown tenant, no EDL configured, a wrong password)
 * is the same 401, so the route tells nobody which tenants exist. */

static int
edl_get(const char *path, const char *authorization, struct buf *body, const char **ctype)
{
    char id[64], tag[PANOS_TAG_MAX + 1];
    const char *rest = path + strlen("/edl/"), *slash = strchr(rest, '/');
    size_t idlen = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
    struct tenant *t;
    const struct panos_conf *conf;
    const struct panos_state *st;
    char *pair, *want, *list, *err = NULL;
    size_t plen;
    int ok;

    *ctype = "text/plain; charset=utf-8";
    if (idlen == 0 || idlen >= sizeof(id)) {
        return 401;
    }
    memcpy(id, rest, idlen);
    id[idlen] = '\0';
    t = tenant_find(id);
    conf = t != NULL ? tenant_conf(t, &panos_section) : NULL;
    st = t != NULL ? tenant_state(t, &panos_section) : NULL;
    if (conf == NULL || st == NULL || st->edl_password == NULL || conf->edl_user == NULL ||
        authorization == NULL || strncasecmp(authorization, "Basic ", 6) != 0) {
        return 401;
    }
    pair = xasprintf("%s:%s", conf->edl_user, st->edl_password);
    plen = strlen(pair);
    want = xmalloc(4 * ((plen + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)want, (const unsigned char *)pair, (int)plen);
    authorization += 6;
    authorization += strspn(authorization, " ");
    ok = strlen(authorization) == strlen(want) &&
         CRYPTO_memcmp(authorization, want, strlen(want)) == 0;
    OPENSSL_cleanse(pair, plen);
    OPENSSL_cleanse(want, strlen(want));
    free(pair);
    free(want);
    if (!ok) {
        return 401;
    }
    if (slash == NULL || slash[1] == '\0') {
        snprintf(tag, sizeof(tag), "%s", conf->tag);
    } else if (!panos_valid_tag(slash + 1, strlen(slash + 1))) {
        (void)!buf_puts(body, "not a tag\n");
        return 404;
    } else {
        snprintf(tag, sizeof(tag), "%s", slash + 1);
    }
    list = xasprintf("panos.%s", tag);
    if (tenant_list_text(t, list, body, &err) == -1) {
        log_warn("panos.edl_failed tenant=%s err=%s", id, log_quote(err));
        body->len = 0;
        (void)!buf_puts(body, "the list cannot be read now\n");
        free(err);
        free(list);
        return 503;
    }
    free(list);
    return 200;
}

const struct plugin_route panos_edl_route = {
    "/edl/",
    edl_get,
};

/* ---- the module ---- */

static int
luaopen_kagari_panos(lua_State *L)
{
    static const luaL_Reg panos_funcs[] = {
        { "block_ip", l_panos_block_ip },
        { "unblock_ip", l_panos_unblock_ip },
        { "blocked", l_panos_blocked },
        { "add_address", l_panos_add_address },
        { "add_to_group", l_panos_add_to_group },
        { "delete_address", l_panos_delete_address },
        { "commit", l_panos_commit },
        { NULL, NULL },
    };

    luaL_newlib(L, panos_funcs);
    return 1;
}

static void
panos_shutdown(void)
{
    if (metrics_on) {
        metrics_remove(panos_metrics, NULL);
        metrics_on = 0;
    }
    while (prts != NULL) {
        struct prt *p = prts;

        prts = p->next;
        /* Runs are gone by now: their effects were cancelled with them. */
        for (struct batch *b = p->batches, *n; b != NULL; b = n) {
            n = b->next;
            call_request_cancel(b->call);
            free(b->ops);
            free(b);
        }
        call_request_cancel(p->ccall);
        if (p->timer != NULL) {
            event_free(p->timer);
        }
        if (p->ctimer != NULL) {
            event_free(p->ctimer);
        }
        free(p->tenant);
        free(p);
    }
    call_shutdown();
}

const struct connector panos_connector = {
    "panos",
    "Palo Alto Networks firewalls (PAN-OS XML API): User-ID blocks, address objects, commits",
    luaopen_kagari_panos,
    &panos_section,
    panos_tenant_open,
    panos_tenant_close,
    call_init,
    panos_shutdown,
};

const struct plugin_verb panos_keygen_verb = {
    "panos",
    "panos keygen",
    "make a firewall API key for a tenant (asks user and password once)",
    panos_verb,
};
