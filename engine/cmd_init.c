/* cmd_init.c: `kagari init`, a first configuration, data folder, secrets key and tenant. */
#include "engine/cmd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/config.h"
#include "engine/secret.h"
#include "engine/store.h"
#include "engine/tls.h"

struct cmd_init_opts {
    const char *config, *data, *playbooks, *listen, *tenant;
    const char *api; /* --api ADDR: the people's API listener, with a self-signed pair */
};

static int
cmd_init_opt(int c, const char *arg, void *ud)
{
    struct cmd_init_opts *o = ud;

    switch (c) {
    case 'c':
        o->config = arg;
        break;
    case 'd':
        o->data = arg;
        break;
    case 'p':
        o->playbooks = arg;
        break;
    case 'l':
        o->listen = arg;
        break;
    case 't':
        o->tenant = arg;
        break;
    case 'a':
        o->api = arg;
        break;
    default:
        return -1;
    }
    return 0;
}

static const char cmd_init_help[] =
    "usage: kagari init [--config FILE] [--data DIR] [--playbooks DIR] [--listen ADDR]\n"
    "                   [--tenant ID] [--api ADDR]\n"
    "Write a commented configuration file, create the data folder and a first tenant,\n"
    "and print the tenant's intake token (shown once; `kagari tenant token` issues a new one).\n"
    "Relative paths in the configuration resolve against the configuration file's folder.\n"
    "  --config FILE     configuration to write (default $KAGARI_CONFIG or kagari.conf.lua)\n"
    "  --data DIR        data folder, as written in the file (default \"data\")\n"
    "  --playbooks DIR   playbook folder, as written in the file (default \"playbooks\")\n"
    "  --listen ADDR     intake listen address (default 127.0.0.1:8080)\n"
    "  --tenant ID       first tenant (default \"demo\")\n"
    "  --api ADDR        serve the people's API on ADDR (e.g. 127.0.0.1:8443) with a new\n"
    "                    self-signed certificate in tls/ (replace it for production)\n";

/* The api block with a self-signed pair in tls/ beside the configuration file. */
static int
cmd_init_api(const char *config, const char *addr, char **errp)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    char *dir = xstrdup(config), *slash = strrchr(dir, '/'), *tls, *cert, *key, *san, *text;
    char host[INET6_ADDRSTRLEN + 1] = "";
    const char *colon = strrchr(addr, ':');
    FILE *f;
    int rc = -1;

    if (util_parse_listen(addr, &ss, &sslen, errp) == -1) {
        free(dir);
        return -1;
    }
    if (slash != NULL) {
        *slash = '\0';
    } else {
        strcpy(dir, ".");
    }
    tls = xasprintf("%s/tls", dir);
    cert = xasprintf("%s/api-cert.pem", tls);
    key = xasprintf("%s/api-key.pem", tls);
    if (colon != NULL && (size_t)(colon - addr) < sizeof(host)) {
        snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
    }
    if (host[0] == '[') {
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = '\0';
    }
    san = xasprintf("DNS:localhost,IP:127.0.0.1,IP:::1%s%s",
                    host[0] && strcmp(host, "0.0.0.0") && strcmp(host, "::") &&
                            strcmp(host, "127.0.0.1") && strcmp(host, "::1")
                        ? ",IP:"
                        : "",
                    host[0] && strcmp(host, "0.0.0.0") && strcmp(host, "::") &&
                            strcmp(host, "127.0.0.1") && strcmp(host, "::1")
                        ? host
                        : "");
    if (util_mkdirs(tls, 0700) == -1) {
        kg_err(errp, "create %s: %s", tls, strerror(errno));
        goto out;
    }
    if (tls_self_signed(cert, key, san, 365, errp) == -1) {
        goto out;
    }
    text =
        xasprintf("\n-- The people's API (HTTPS only): the portal and scripts. The certificate "
                  "is self-signed:\n-- replace tls/api-cert.pem and tls/api-key.pem with a "
                  "pair your users' browsers trust.\napi = {\n    listen = \"%s\",\n"
                  "    cert_file = \"tls/api-cert.pem\",\n    key_file = \"tls/api-key.pem\",\n}\n",
                  addr);
    f = fopen(config, "a");
    if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
        kg_err(errp, "%s: %s", config, strerror(errno));
        free(text);
        goto out;
    }
    free(text);
    printf("people's API on %s, self-signed certificate %s\n", addr, cert);
    rc = 0;
out:
    free(dir);
    free(tls);
    free(cert);
    free(key);
    free(san);
    return rc;
}

static int
cmd_init_exec(int argc, char **argv)
{
    static const struct option lo[] = {
        { "config", required_argument, NULL, 'c' },
        { "data", required_argument, NULL, 'd' },
        { "playbooks", required_argument, NULL, 'p' },
        { "listen", required_argument, NULL, 'l' },
        { "tenant", required_argument, NULL, 't' },
        { "api", required_argument, NULL, 'a' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct cmd_init_opts o = { cmd_default_config(), "data", "playbooks",
                               "127.0.0.1:8080",     "demo", NULL };
    struct config cfg;
    struct store *st = NULL;
    char *err = NULL, *token = NULL;
    char hash[65];
    int r = cmd_parse_opts(argc, argv, lo, "h", cmd_init_opt, &o);

    if (r != 0 || optind != argc) {
        fputs(cmd_init_help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    if (access(o.config, F_OK) == 0) {
        return cmd_fail("%s exists: already initialized (remove it to start over)", o.config);
    }
    /* Check what can be checked before anything is written: a failure half-way would
     * leave a configuration behind that blocks the next init. */
    {
        size_t n = strlen(o.tenant);
        int ok = n > 0 && n <= 63 && o.tenant[0] != '-';

        for (size_t i = 0; ok && i < n; i++) {
            ok = (o.tenant[i] >= 'a' && o.tenant[i] <= 'z') ||
                 (o.tenant[i] >= '0' && o.tenant[i] <= '9') || o.tenant[i] == '-';
        }
        if (!ok) {
            return cmd_fail("invalid tenant id \"%s\": lowercase letters, digits and '-', "
                            "1 to 63, not starting with '-'",
                            o.tenant);
        }
    }
    if (config_write_default(o.config, o.data, o.playbooks, o.listen, &err) == -1 ||
        (o.api != NULL && cmd_init_api(o.config, o.api, &err) == -1) ||
        config_load(o.config, &cfg, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return 1;
    }
    (void)!util_mkdirs(cfg.playbook_dir, 0755);
    if (access(cfg.connectors.key_file, F_OK) != 0 &&
        secret_keyfile_create(cfg.connectors.key_file, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        goto fail;
    }
    token = cmd_new_token();
    if (token == NULL || store_open(cfg.data_dir, &st, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err ? err : "no randomness");
        goto fail;
    }
    util_sha256_hex(token, strlen(token), hash);
    if (store_tenant_add(st, o.tenant, o.tenant, hash, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        goto fail;
    }
    printf("wrote %s\ndata folder %s\nsecrets key %s\ntenant %s\nintake token (shown once): %s\n",
           o.config, cfg.data_dir, cfg.connectors.key_file, o.tenant, token);
    store_close(st);
    config_free(&cfg);
    free(token);
    return 0;
fail:
    free(err);
    free(token);
    store_close(st);
    config_free(&cfg);
    return 1;
}

const struct cmd_entry cmd_init_entry = {
    .name = "init",
    .usage = "init",
    .summary = "write a configuration, data folder and first tenant",
    .exec = cmd_init_exec,
};
