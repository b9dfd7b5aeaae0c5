/* cmd_state.c: `kagari state list` and `kagari state delete`: what the playbooks of a
 * tenant remember (state.*), for an operator to read or reset. */
#include "engine/cmd.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/config.h"
#include "engine/store.h"

#define CMD_STATE_VALUE_SHOWN 120 /* bytes of a value `state list` prints */

struct cmd_state_opts {
    const char *config, *tenant, *prefix;
    int limit;
};

static int
cmd_state_opt(int c, const char *arg, void *ud)
{
    struct cmd_state_opts *o = ud;

    switch (c) {
    case 'c':
        o->config = arg;
        break;
    case 't':
        o->tenant = arg;
        break;
    case 'p':
        o->prefix = arg;
        break;
    case 'n':
        o->limit = atoi(arg);
        if (o->limit <= 0) {
            fprintf(stderr, "kagari: --limit must be a positive number\n");
            return -1;
        }
        break;
    default:
        return -1;
    }
    return 0;
}

/* Print text as the terminal may show it (control characters escaped), cut to max. */
static void
cmd_state_put(const char *s, size_t max)
{
    size_t n = strlen(s);
    struct buf b;

    buf_init(&b, 0);
    if (buf_escape_text(&b, s, n < max ? n : max, 0) == 0 && b.len > 0) {
        fwrite(b.data, 1, b.len, stdout);
    }
    if (n > max) {
        printf("... (%zu bytes)", n);
    }
    buf_free(&b);
}

static int
cmd_state_list(struct store_tenant *t, const struct cmd_state_opts *o)
{
    struct store_kv *v = NULL;
    size_t n = 0;
    char *err = NULL;

    if (store_kv_list(t, o->prefix, util_now_ms(), o->limit, &v, &n, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char exp[32], upd[32];

        if (v[i].expires_ms > 0) {
            util_fmt_time(v[i].expires_ms, exp);
        } else {
            snprintf(exp, sizeof(exp), "-");
        }
        util_fmt_time(v[i].updated_ms, upd);
        printf("%s\t", store_tenant_id(t));
        cmd_state_put(v[i].key, 256);
        printf("\tupdated %s\texpires %s\t", upd, exp);
        cmd_state_put(v[i].value, CMD_STATE_VALUE_SHOWN);
        putchar('\n');
    }
    store_kv_free(v, n);
    return 0;
}

static int
cmd_state_exec(int argc, char **argv)
{
    static const struct option lo[] = {
        { "config", required_argument, NULL, 'c' }, { "tenant", required_argument, NULL, 't' },
        { "prefix", required_argument, NULL, 'p' }, { "limit", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
    };
    static const char help[] =
        "usage: kagari state list [--config FILE] [--tenant ID] [--prefix P] [--limit N]\n"
        "       kagari state delete [--config FILE] --tenant ID KEY...\n"
        "What the tenant's playbooks remember (state.*): list the live entries (tenant, key,\n"
        "times, value; the first 1000 by key unless --limit), or delete entries.\n";
    struct cmd_state_opts o = { NULL, NULL, NULL, 0 };
    struct store_tenant_info *list = NULL;
    struct config cfg;
    struct store *st = NULL;
    size_t nt = 0;
    char *err = NULL;
    int r = cmd_parse_opts(argc, argv, lo, "hc:t:p:n:", cmd_state_opt, &o);
    int del, rc = 0, found = 0;

    if (r != 0 || optind >= argc ||
        (strcmp(argv[optind], "list") != 0 && strcmp(argv[optind], "delete") != 0)) {
        fputs(help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    del = strcmp(argv[optind], "delete") == 0;
    if (del && (o.tenant == NULL || optind + 1 >= argc)) {
        fputs(help, stderr);
        return 2;
    }
    if (cmd_open_store(o.config ? o.config : cmd_default_config(), &cfg, &st) == -1) {
        return 1;
    }
    if (store_tenant_list(st, &list, &nt, &err) == -1) {
        rc = cmd_fail("%s", err);
        goto out;
    }
    for (size_t i = 0; i < nt && rc == 0; i++) {
        struct store_tenant *t;
        char *path;
        int exists;

        if (o.tenant != NULL && strcmp(o.tenant, list[i].id) != 0) {
            continue;
        }
        found = 1;
        /* A database the daemon has not created yet holds nothing: do not create it. */
        path = xasprintf("%s/tenants/%s.db", store_data_dir(st), list[i].id);
        exists = access(path, F_OK) == 0;
        free(path);
        if (!exists) {
            continue;
        }
        if (store_tenant_open(st, list[i].id, &t, &err) == -1) {
            rc = cmd_fail("%s", err);
            break;
        }
        if (!del) {
            rc = cmd_state_list(t, &o) == -1 ? 1 : 0;
        } else if (store_tx_begin(t, &err) == -1) {
            rc = cmd_fail("%s", err);
        } else {
            for (int k = optind + 1; k < argc && rc == 0; k++) {
                int d = store_kv_delete(t, argv[k], &err);

                if (d == -1) {
                    rc = cmd_fail("%s", err);
                } else {
                    printf("%s: %s\n", argv[k], d ? "deleted" : "not there");
                }
            }
            if (rc != 0) {
                store_tx_rollback(t);
            } else if (store_tx_commit(t, &err) == -1) {
                rc = cmd_fail("%s", err);
            }
        }
        store_tenant_close(t);
    }
    if (o.tenant != NULL && !found && rc == 0) {
        rc = cmd_fail("unknown tenant %s", o.tenant);
    }
out:
    free(err);
    free(list);
    store_close(st);
    config_free(&cfg);
    return rc;
}

const struct cmd_entry cmd_state_entry = {
    .name = "state",
    .usage = "state list|delete",
    .summary = "show or reset what the playbooks remember",
    .exec = cmd_state_exec,
};
