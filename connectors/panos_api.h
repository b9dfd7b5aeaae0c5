/* panos_api.h: the PAN-OS XML API as the panos connector's modules see it: the
 * tenant's settings block (tenants.<id>.panos) and state (the key's header line, the
 * guard list, the EDL password), the API's description for the call core (base URL,
 * X-PAN-KEY, limits, the error envelope), and the helpers that read its answers with the
 * XML parser and write its commands. */
#ifndef KAGARI_PANOS_API_H
#define KAGARI_PANOS_API_H

#include "connectors/call.h"
#include "connectors/panos_check.h"
#include "connectors/xml.h"
#include "engine/kagari.h"

#define PANOS_TIMEOUT_MAX 2592000 /* seconds: the firewall's own limit (30 days) */
#define PANOS_SHOW_LIMIT 500      /* registered-ip entries per page */

struct panos_conf {
    char *url;
    char *api_key; /* "enc:v1:..." from kagari panos keygen */
    char *vsys;
    char *device;
    char *tag;            /* the default block tag */
    double block_timeout; /* seconds; 0: until unblocked */
    char **never_block;   /* addresses and CIDR subnets */
    size_t n_never_block;
    int max_blocks_per_hour;
    double batch_window;
    double commit_poll;
    char *edl_user;
    char *edl_password; /* "enc:v1:..." */
};

/* The tenant's state: the key's header line, the guard list and the EDL credential. */
struct panos_state {
    char *header; /* "X-PAN-KEY: <key>", or NULL without an api_key */
    struct panos_guard *guard;
    char *edl_password;
};

extern const struct config_section panos_api_section;
extern const struct call_api panos_api_xml;
int panos_api_tenant_open(const void *conf, void **state, char **errp);
void panos_api_tenant_close(void *state);
/* The tenant's firewall URL, or NULL without a panos block. */
const char *panos_api_base(const struct tenant *t);

/* A 2xx answer's <response>: 0 with *root (xml_free it), or -1 with *result a message
 * (an HTTP error with the firewall's envelope, not XML, not a <response>). */
int panos_api_parse(struct call *c, const struct httpc_response *resp, struct xml_node **root,
                    char **result);
/* "<kind>: code <code>: <messages>" of a status="error" envelope, malloc'd. */
char *panos_api_error(const char *kind, const struct xml_node *root);
/* Map functions: config changes (success is true, an error envelope fails with its code
 * and messages); any well-formed <response> as a JSON string of its text, for steps that
 * read it again with panos_api_raw_parse (0 with *root, or -1). */
int panos_api_map_config(struct call *c, const struct httpc_response *resp, char **result);
int panos_api_map_raw(struct call *c, const struct httpc_response *resp, char **result);
int panos_api_raw_parse(const char *result, struct xml_node **root);
/* The registered-ip entries under result as [{ip, tags}] appended to arr; how many. */
int panos_api_entries(const struct xml_node *result, cJSON *arr);
/* "/api/?type=op&cmd=<the command, percent-encoded>", malloc'd. */
char *panos_api_op_path(const char *cmd_xml);
/* The show registered-ip command for one address or a tag (either may be NULL: all),
 * from entry start (1-based), PANOS_SHOW_LIMIT at a time; values escaped. Malloc'd. */
char *panos_api_show_registered(const char *ip, const char *tag, int start);

#endif
