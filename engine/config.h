/* config.h: kagari.conf.lua, a Lua file evaluated in a data-only sandbox. */
#ifndef KAGARI_CONFIG_H
#define KAGARI_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "engine/util.h"

/* How a setting is read and checked. Plug-ins use these kinds for their own blocks. */
enum config_kind {
    CONFIG_PATH,     /* char *, relative to the file's folder */
    CONFIG_LISTEN,   /* char *, host:port */
    CONFIG_SIZE,     /* size_t: bytes or "4MiB" */
    CONFIG_DURATION, /* double seconds: seconds or "15m" */
    CONFIG_SLICE,    /* double milliseconds, written as a duration */
    CONFIG_INT,      /* int */
    CONFIG_COUNT,    /* uint64_t */
    CONFIG_LEVEL,    /* int: enum log_level by name */
    CONFIG_FORMAT,   /* int: 0 "kv", 1 "json" */
    CONFIG_TABLE,    /* nested fields */
    CONFIG_BOOL,     /* int: true or false */
    CONFIG_STRING,   /* char *, any text (a secret as written) */
    CONFIG_NAME,     /* char *, letters, digits, '.', '-', '_': an id that goes into URLs */
    CONFIG_SCOPE,    /* char *, text without spaces: an OAuth scope */
    CONFIG_URL,      /* char *, https:// (http:// for loopback), trailing slash removed */
    CONFIG_PROXY,    /* char *, http:// or https:// proxy */
    CONFIG_HOSTS,    /* char **, a list of host names; its size_t length at count */
    CONFIG_NETS,     /* char **, a list of IP addresses or CIDR subnets; length at count */
    CONFIG_STRINGS,  /* char **, a list of strings (each checked by the section's check);
                      * its size_t length at count */
    CONFIG_TENANTS,  /* struct config_tenant *, keyed by id; fields per tenant; count */
    CONFIG_SECTION,  /* the loader's own: a plug-in section's block in a tenant (count:
                      * the section's index) */
    CONFIG_BLOCK,    /* the loader's own: a plug-in's top-level block (count: its index) */
    CONFIG_LIST,     /* a list of tables: void * array at offset, its size_t length at
                      * count; each element is a zeroed struct of max bytes that fields
                      * fill (offsets from the element's start) */
};

#define CONFIG_STRINGS_ITEM_MAX 1024 /* bytes of one CONFIG_STRINGS string */

struct config_field {
    const char *key;
    enum config_kind kind;
    size_t offset;                     /* from the start of the struct the table fills */
    double min;                        /* smallest value allowed (sizes, durations, numbers) */
    double max;                        /* largest, 0 = no limit */
    const struct config_field *fields; /* CONFIG_TABLE, CONFIG_TENANTS (each tenant's) */
    size_t count; /* CONFIG_HOSTS, CONFIG_NETS, CONFIG_TENANTS: offset of the length */
};
#define CONFIG_FIELDS_END                                                                          \
    {                                                                                              \
        NULL, 0, 0, 0, 0, NULL, 0                                                                  \
    }

/* A plug-in's block in each tenant's settings, tenants.<id>.<key> = { ... }. Its fields
 * fill a zeroed struct of size bytes (offsets from the struct's start; nested
 * CONFIG_TABLE fields use offsets from the same start). check, when set, then checks
 * what single fields cannot (required ones, exclusive ones) and fills defaults: -1 with a
 * message in *errp, to which the loader adds the file, line and path. The loader frees
 * the strings and lists its fields hold. */
struct config_section {
    const char *key;
    const struct config_field *fields;
    size_t size;
    int (*check)(void *conf, char **errp);
    /* Commented lines for the default configuration file, inside its example tenant
     * ("--         key = { ... },\n"), or NULL. */
    const char *example;
};

/* Make a section known to the loader (the plug-in registry does, once per section):
 * a block in each tenant (tenants.<id>.<key>), or a top-level block (<key> = { ... },
 * an intake source's settings). A top-level block is always there for its plug-in: when
 * the file has none, it is the zeroed struct after check (which fills the defaults). */
void config_add_section(const struct config_section *s);
void config_add_global_section(const struct config_section *s);

/* Per-tenant settings: tenants = { <id> = { ... } }. */
struct config_tenant {
    char *id;
    int dry_run; /* effects recorded as "would do", nothing sent */
    struct config_block {
        const struct config_section *section;
        void *conf; /* the filled struct */
    } * blocks;     /* the plug-in blocks this tenant has */
    size_t nblocks;
};

/* The tenant's filled block of section s, or NULL when it has none. */
const void *config_tenant_block(const struct config_tenant *t, const struct config_section *s);

struct config {
    char *path;             /* the file read */
    char *data_dir;         /* absolute; relative values resolve against the file's folder */
    char *playbook_dir;     /* absolute */
    char *playbook_lib_dir; /* absolute; the libraries playbooks require: <playbook_dir>/lib */

    struct {
        char *listen;           /* "127.0.0.1:8080" */
        size_t max_body;        /* bytes, default 4 MiB */
        size_t max_header;      /* bytes, default 16 KiB */
        int max_conns;          /* default 1024 */
        int max_conns_per_peer; /* from one client address, default 64 (503 past it) */
        int tenant_rate;        /* alerts per second per tenant, default 10000; 0: no limit */
        int tenant_burst;       /* alerts a tenant may send at once, default 20000 */
        double header_timeout, body_timeout, idle_timeout; /* seconds: 10, 30, 60 */
        int max_queued_runs; /* shed load (503) past this many runs waiting for CPU; 100000 */
        int parse_threads;   /* threads parsing large bodies; 0: all on the loop; default: CPUs, at
                                most 4 */
        size_t parse_queue;  /* body bytes a tenant may have waiting for them; default 64 MiB */
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
        size_t wal_warn; /* a tenant's WAL past this: warn, truncate when readers allow; 64 MiB */
    } store;

    struct {
        int level; /* enum log_level, default info */
        int json;  /* 0: key=value, 1: JSON lines */
    } log;

    struct {
        char *key_file;          /* secrets key (absolute), default "secret.key" next to the file */
        char *ca_file;           /* PEM bundle for outgoing TLS, NULL = the system's */
        char *proxy;             /* "http://proxy:3128", NULL = none */
        double timeout;          /* seconds per attempt, default 30 */
        int max_attempts;        /* per call (429/503/504/network), default 5 */
        int rate_limits;         /* hold calls to the vendors' published limits, default 1 */
        int breaker_threshold;   /* consecutive failures that open a circuit, default 5 */
        double breaker_cooldown; /* seconds an open circuit waits for its trial, default 30 */
        double retry_after_max;  /* longest Retry-After a call waits, seconds, default 300 */
    } connectors;

    struct config_tenant *tenants; /* sorted by id */
    size_t ntenants;

    struct config_block *blocks; /* the plug-ins' top-level blocks */
    size_t nblocks;
};

/* The filled top-level block of section s (never NULL for a registered section of a
 * loaded configuration; NULL for an unknown one). */
const void *config_block(const struct config *cfg, const struct config_section *s);

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
