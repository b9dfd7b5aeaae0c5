/* cmd_tenant.c: `kagari tenant list|add|token|compact`, tenants, their intake tokens and
 * their databases. */
#include "engine/cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/config.h"
#include "engine/store.h"

struct cmd_tenant_opts {
    const char *config, *name;
};

static int
cmd_tenant_opt(int c, const char *arg, void *ud)
{
    struct cmd_tenant_opts *o = ud;

    if (c == 'c') {
        o->config = arg;
    } else if (c == 'n') {
        o->name = arg;
    } else {
        return -1;
    }
    return 0;
}

static int
cmd_tenant_exec(int argc, char **argv)
{
    static const struct option lo[] = {
        { "config", required_argument, NULL, 'c' },
        { "name", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static const char help[] =
        "usage: kagari tenant list [--config FILE]\n"
        "       kagari tenant add ID [--name NAME] [--config FILE]\n"
        "       kagari tenant token ID [--config FILE]\n"
        "       kagari tenant compact ID [--config FILE]\n"
        "add creates a tenant and prints its intake token; token issues a new token\n"
        "(the old one stops working at once). Tokens are stored only as digests.\n"
        "compact rebuilds the tenant's database with 16 KiB pages and gives free pages\n"
        "back; only while the daemon is stopped, with as much free disk as the file.\n";
    struct cmd_tenant_opts o = { cmd_default_config(), NULL };
    struct config cfg;
    struct store *st;
    const char *sub, *id;
    char *err = NULL, *token = NULL;
    char hash[65];
    int rc = 1;
    int r = cmd_parse_opts(argc, argv, lo, "h", cmd_tenant_opt, &o);

    if (r != 0 || optind >= argc) {
        fputs(help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    sub = argv[optind];
    id = optind + 1 < argc ? argv[optind + 1] : NULL;
    if (strcmp(sub, "list") != 0 && (id == NULL || optind + 2 != argc)) {
        fputs(help, stderr);
        return 2;
    }
    if (cmd_open_store(o.config, &cfg, &st) == -1) {
        return 1;
    }
    if (strcmp(sub, "list") == 0) {
        struct store_tenant_info *list = NULL;
        size_t n = 0;

        if (store_tenant_list(st, &list, &n, &err) == 0) {
            printf("%-24s %-32s %s\n", "TENANT", "NAME", "CREATED");
            for (size_t i = 0; i < n; i++) {
                char ts[32];

                util_fmt_time(list[i].created_ms, ts);
                printf("%-24s %-32s %s\n", list[i].id, list[i].name, ts);
            }
            rc = 0;
        }
        free(list);
    } else if (strcmp(sub, "add") == 0 || strcmp(sub, "token") == 0) {
        token = cmd_new_token();
        if (token != NULL) {
            util_sha256_hex(token, strlen(token), hash);
            if (strcmp(sub, "add") == 0) {
                r = store_tenant_add(st, id, o.name ? o.name : id, hash, &err);
            } else {
                r = store_tenant_set_token(st, id, hash, &err);
            }
            if (r == 0) {
                printf("tenant %s\nintake token (shown once): %s\n", id, token);
                rc = 0;
            }
        }
    } else if (strcmp(sub, "compact") == 0) {
        struct store_tenant *t = NULL;
        struct store_compact c;

        if (store_lock(st, &err) == 0 && store_tenant_open(st, id, &t, &err) == 0 &&
            store_tenant_compact(t, &c, &err) == 0) {
            printf("tenant %s: %d-byte pages, %lld bytes -> %d-byte pages, %lld bytes\n", id,
                   c.page_before, (long long)c.bytes_before, c.page_after,
                   (long long)c.bytes_after);
            rc = 0;
        }
        store_tenant_close(t);
    } else {
        fputs(help, stderr);
        rc = 2;
    }
    if (err != NULL) {
        fprintf(stderr, "kagari: %s\n", err);
    }
    free(err);
    free(token);
    store_close(st);
    config_free(&cfg);
    return rc;
}

const struct cmd_entry cmd_tenant_entry = {
    .name = "tenant",
    .usage = "tenant",
    .summary = "list, add tenants, issue intake tokens, compact their databases",
    .exec = cmd_tenant_exec,
};
