/* config.h: kagari.conf.lua, a Lua file evaluated in a data-only sandbox. */
#ifndef KAGARI_CONFIG_H
#define KAGARI_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "engine/util.h"

/* One tenant's Microsoft app registration (Entra ID app, client credentials). */
struct config_microsoft {
    char *authority;      /* default "https://login.microsoftonline.com" */
    char *tenant_id;      /* directory GUID or domain (required) */
    char *client_id;      /* required */
    char *client_secret;  /* as written: "enc:v1:..." or plain; NULL with a certificate */
    char *certificate;    /* absolute PEM path, or NULL */
    char *private_key;    /* absolute PEM path, or NULL */
    char *graph;          /* base URL, default "https://graph.microsoft.com" */
    char *defender;       /* base URL, default "https://api.securitycenter.microsoft.com" */
    char *defender_scope; /* default "https://api.securitycenter.microsoft.com/.default" */
    char *graph_scope;    /* default "https://graph.microsoft.com/.default" */
};

/* Per-tenant settings: tenants = { <id> = { ... } }. */
struct config_tenant {
    char *id;
    int dry_run;                  /* effects recorded as "would do", nothing sent */
    int has_microsoft;
    struct config_microsoft microsoft;
    char **http_allow;            /* hosts the generic http module may call */
    size_t nhttp_allow;
};

struct config {
    char *path;         /* the file read */
    char *data_dir;     /* absolute; relative values resolve against the file's folder */
    char *playbook_dir; /* absolute */

    struct {
        char *listen;      /* "127.0.0.1:8080" */
        size_t max_body;   /* bytes, default 4 MiB */
        size_t max_header; /* bytes, default 16 KiB */
        int max_conns;     /* default 1024 */
        double header_timeout, body_timeout, idle_timeout; /* seconds: 10, 30, 60 */
        int max_queued_runs; /* shed load (503) past this many runs waiting for CPU; 100000 */
        char *tls_cert;      /* PEM paths; both NULL: plain HTTP */
        char *tls_key;
    } intake;

    struct {
        size_t memory;         /* per tenant Lua state, default 256 MiB */
        uint64_t instructions; /* per run, default 100000000 */
        double timeout;        /* wall clock per run, seconds, default 86400 */
        double slice_ms;       /* time slice before a busy run yields, default 5 */
    } runs;

    struct {
        int level; /* enum log_level, default info */
        int json;  /* 0: key=value, 1: JSON lines */
    } log;

    struct {
        char *key_file;   /* secrets key (absolute), default "secret.key" next to the file */
        char *ca_file;    /* PEM bundle for outgoing TLS, NULL = the system's */
        char *proxy;      /* "http://proxy:3128", NULL = none */
        double timeout;   /* seconds per attempt, default 30 */
        int max_attempts; /* per call (429/503/504/network), default 5 */
        int rate_limits;  /* hold calls to the vendors' published limits, default 1 */
    } connectors;

    struct config_tenant *tenants; /* sorted by id */
    size_t ntenants;
};

/* The settings of tenant id, or NULL when the file has none. */
const struct config_tenant *config_tenant(const struct config *cfg, const char *id);

/* Evaluate the file with no functions in scope, a memory cap and an instruction budget,
 * then check every value. Unknown keys and wrong types are errors that name the file and
 * line ("kagari.conf.lua:12: intake.max_body: expected a size such as \"4MiB\""). On
 * success *cfg is filled (config_free it). */
int config_load(const char *path, struct config *cfg, char **errp) KG_WUR;
/* The same for a file already read: text[0..len) is evaluated as if read from the file
 * name (messages name it; relative paths resolve against its folder, which must exist). */
int config_load_buffer(const char *text, size_t len, const char *name, struct config *cfg,
                       char **errp) KG_WUR;
void config_free(struct config *cfg);

/* Write a commented default configuration file (mode 0600). data_dir and listen are
 * written as given. Fails if the file exists. */
int config_write_default(const char *path, const char *data_dir, const char *playbook_dir,
                         const char *listen, char **errp) KG_WUR;

#endif
