/* cmd_init.c: `kagari init`, a first configuration, data folder, secrets key and tenant. */
#include "engine/cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/config.h"
#include "engine/secret.h"
#include "engine/store.h"

struct cmd_init_opts {
    const char *config, *data, *playbooks, *listen, *tenant;
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
    default:
        return -1;
    }
    return 0;
}

static const char cmd_init_help[] =
    "usage: kagari init [--config FILE] [--data DIR] [--playbooks DIR] [--listen ADDR]\n"
    "                   [--tenant ID]\n"
    "Write a commented configuration file, create the data folder and a first tenant,\n"
    "and print the tenant's intake token (shown once; `kagari tenant token` issues a new one).\n"
    "Relative paths in the configuration resolve against the configuration file's folder.\n"
    "  --config FILE     configuration to write (default $KAGARI_CONFIG or kagari.conf.lua)\n"
    "  --data DIR        data folder, as written in the file (default \"data\")\n"
    "  --playbooks DIR   playbook folder, as written in the file (default \"playbooks\")\n"
    "  --listen ADDR     intake listen address (default 127.0.0.1:8080)\n"
    "  --tenant ID       first tenant (default \"demo\")\n";

static int
cmd_init_exec(int argc, char **argv)
{
    static const struct option lo[] = {
        { "config", required_argument, NULL, 'c' },
        { "data", required_argument, NULL, 'd' },
        { "playbooks", required_argument, NULL, 'p' },
        { "listen", required_argument, NULL, 'l' },
        { "tenant", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct cmd_init_opts o = { cmd_default_config(), "data", "playbooks", "127.0.0.1:8080",
                               "demo" };
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
