/* panos_api.c: the PAN-OS XML API description and the panos settings block (reference:
 * connectors.md section 7). */
#include "connectors/panos_api.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* ---- settings: tenants.<id>.panos ---- */

static const struct config_field panos_api_fields[] = {
    { "url", CONFIG_URL, offsetof(struct panos_conf, url), 0, 0, NULL, 0 },
    { "api_key", CONFIG_STRING, offsetof(struct panos_conf, api_key), 0, 0, NULL, 0 },
    { "vsys", CONFIG_NAME, offsetof(struct panos_conf, vsys), 0, 0, NULL, 0 },
    { "device", CONFIG_NAME, offsetof(struct panos_conf, device), 0, 0, NULL, 0 },
    { "tag", CONFIG_STRING, offsetof(struct panos_conf, tag), 0, 0, NULL, 0 },
    { "block_timeout", CONFIG_DURATION, offsetof(struct panos_conf, block_timeout), 0,
      PANOS_TIMEOUT_MAX, NULL, 0 },
    { "never_block", CONFIG_NETS, offsetof(struct panos_conf, never_block), 0, 0, NULL,
      offsetof(struct panos_conf, n_never_block) },
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

/* The never_block list as one text ("a b c") for panos_guard_new. */
static char *
never_block_text(const struct panos_conf *p)
{
    struct buf b;

    buf_init(&b, 0);
    (void)!buf_puts(&b, ""); /* "" rather than NULL for an empty list */
    for (size_t i = 0; i < p->n_never_block; i++) {
        (void)!buf_printf(&b, "%s%s", i > 0 ? " " : "", p->never_block[i]);
    }
    return buf_take(&b);
}

static int
panos_api_check(void *conf, char **errp)
{
    struct panos_conf *p = conf;
    struct panos_guard *g;
    char *list;

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
    if (p->block_timeout != floor(p->block_timeout) || p->block_timeout > PANOS_TIMEOUT_MAX) {
        return kg_err(errp, "block_timeout: expected whole seconds, at most 30 days (the "
                            "firewall's limit)");
    }
    if (p->batch_window > 10 || p->commit_poll > 600) {
        return kg_err(errp, "%s",
                      p->batch_window > 10 ? "batch_window: at most 10 s"
                                           : "commit_poll: at most 10 minutes");
    }
    list = never_block_text(p);
    g = panos_guard_new(list, errp);
    free(list);
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

static const char panos_api_example[] =
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
    "--             -- Addresses and subnets that are never blocked: the customer's own\n"
    "--             -- ranges, DNS servers (the firewall's own address is added when url\n"
    "--             -- names it by IP).\n"
    "--             never_block = { \"10.0.0.0/8\", \"172.16.0.0/12\", \"192.168.0.0/16\", "
    "\"192.0.2.53\" },\n"
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

const struct config_section panos_api_section = {
    "panos", panos_api_fields, sizeof(struct panos_conf), panos_api_check, panos_api_example,
};

void
panos_api_tenant_close(void *state)
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

int
panos_api_tenant_open(const void *conf, void **state, char **errp)
{
    const struct panos_conf *p = conf;
    struct panos_state *s = xcalloc(1, sizeof(*s));
    char fw[PANOS_NET_MAX];
    char *list;

    url_host_ip(p->url, fw);
    {
        char *nb = never_block_text(p);

        list = xasprintf("%s %s", nb, fw);
        free(nb);
    }
    s->guard = panos_guard_new(list, errp);
    free(list);
    if (s->guard == NULL) {
        panos_api_tenant_close(s);
        return -1;
    }
    if (p->api_key != NULL) {
        char *key = secret_decrypt(p->api_key, errp);

        if (key == NULL) {
            panos_api_tenant_close(s);
            return -1;
        }
        secret_register(key);
        s->header = xasprintf("X-PAN-KEY: %s", key);
        secret_free(key);
    }
    if (p->edl_password != NULL) {
        s->edl_password = secret_decrypt(p->edl_password, errp);
        if (s->edl_password == NULL) {
            panos_api_tenant_close(s);
            return -1;
        }
        secret_register(s->edl_password);
    }
    *state = s;
    return 0;
}

/* ---- the API ---- */

const char *
panos_api_base(const struct tenant *t)
{
    const struct panos_conf *p = tenant_conf(t, &panos_api_section);

    return p != NULL ? p->url : NULL;
}

static int
panos_api_credentials(const struct tenant *t, struct call_cred *cred, char **errp)
{
    const struct panos_state *s = tenant_state(t, &panos_api_section);

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
static const struct call_limit panos_api_limits[] = {
    { "panos", 20, 40 },
    { NULL, 0, 0 },
};

/* The envelope's code and messages: "<code>: <message>", or NULL when the body is not
 * a <response>. A 403 says the key was rejected, in words an operator acts on. */
static char *
panos_api_error_text(const struct httpc_response *resp)
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

const struct call_api panos_api_xml = {
    "panos",
    panos_api_base,
    "no panos block is configured for this tenant (tenants.<id>.panos)",
    panos_api_credentials,
    "Accept: application/xml",
    panos_api_limits,
    panos_api_error_text,
};

/* Parse a 2xx answer's <response>: 0 with *root, or -1 with *result a message. */
int
panos_api_parse(struct call *c, const struct httpc_response *resp, struct xml_node **root,
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
char *
panos_api_error(const char *kind, const struct xml_node *root)
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
int
panos_api_map_config(struct call *c, const struct httpc_response *resp, char **result)
{
    struct xml_node *root = NULL;
    int ok;

    if (panos_api_parse(c, resp, &root, result) == -1) {
        return 0;
    }
    ok = strcmp(xml_attr(root, "status"), "success") == 0;
    *result = ok ? xstrdup("true") : panos_api_error(call_kind(c), root);
    xml_free(root);
    return ok;
}

/* Any well-formed <response>: its text as a JSON string, for the steps of a batch or a
 * commit that read it again (an error envelope is data there). */
int
panos_api_map_raw(struct call *c, const struct httpc_response *resp, char **result)
{
    struct xml_node *root = NULL;
    struct buf b;

    if (panos_api_parse(c, resp, &root, result) == -1) {
        return 0;
    }
    xml_free(root);
    buf_init(&b, 0);
    (void)!buf_json_string(&b, resp->body, resp->body_len);
    *result = buf_take(&b);
    return 1;
}

/* The XML text of a panos_api_map_raw result, parsed again: 0 with *root, or -1. */
int
panos_api_raw_parse(const char *result, struct xml_node **root)
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
int
panos_api_entries(const struct xml_node *result, cJSON *arr)
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
char *
panos_api_op_path(const char *cmd_xml)
{
    char *cmd = call_escape(cmd_xml);
    char *path = xasprintf("/api/?type=op&cmd=%s", cmd);

    free(cmd);
    return path;
}

/* The show registered-ip command for one address, or a tag (either may be NULL), from
 * entry start (1-based). Values were checked and are escaped again here. */
char *
panos_api_show_registered(const char *ip, const char *tag, int start)
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
