/* cmd_deploy.c: `kagari playbook deploy FILE...`: check each playbook, install it into
 * the playbook folder, record in every tenant database who deployed which version when,
 * and have the running daemon reload. */
#include "engine/cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/config.h"
#include "engine/control.h"
#include "engine/deploy.h"
#include "engine/env.h"
#include "engine/playbook.h"
#include "engine/sandbox.h"
#include "engine/store.h"

#define DEPLOY_LINT_MEMORY (64u << 20)
#define DEPLOY_RELOAD_MS 30000

struct deploy_ctx {
    struct store *st; /* control.db, for the audit rows */
    struct playbook **v;
    size_t n;
    const char *by;
    int64_t now;
    int recorded;
};

static int
deploy_tenant(struct store_tenant *t, void *ud)
{
    struct deploy_ctx *c = ud;
    char *err = NULL;

    for (size_t i = 0; i < c->n; i++) {
        struct store_audit a;
        char detail[128];

        if (deploy_record(t, c->v[i], c->now, c->by, "cli", &err) == -1) {
            fprintf(stderr, "kagari: tenant %s: %s: the deployment is not recorded: %s\n",
                    store_tenant_id(t), c->v[i]->name, err ? err : "?");
            free(err);
            return -1;
        }
        /* In the tenant's audit too, where its auditors read what changed and who did. */
        snprintf(detail, sizeof(detail), "{\"version\":\"%s\",\"via\":\"cli\"}", c->v[i]->hash);
        memset(&a, 0, sizeof(a));
        a.time = c->now;
        a.tenant = (char *)store_tenant_id(t);
        a.actor = (char *)c->by;
        a.action = (char *)"playbook.deploy";
        a.target = c->v[i]->name;
        a.outcome = (char *)"ok";
        a.detail = detail;
        if (store_audit_add(c->st, &a, &err) == -1) {
            fprintf(stderr, "kagari: tenant %s: the audit row is not written: %s\n",
                    store_tenant_id(t), err ? err : "?");
            free(err);
            return -1;
        }
    }
    c->recorded++;
    return 0;
}

/* The file name part of path. */
static const char *
base_name(const char *path)
{
    const char *s = strrchr(path, '/');

    return s != NULL ? s + 1 : path;
}

/* A playbook of the same name in another file of the folder would keep the new file from
 * loading (the second of two files with one name is left out), so the deployment would
 * record a version that never serves: refused, naming the file to replace. Two of the
 * files deployed with one name are refused too. -1 after printing why. */
static int
same_name_elsewhere(struct sandbox *sb, const struct config *cfg, const struct deploy_ctx *c,
                    char **argv)
{
    struct playbook_set set = { NULL, 0 };
    char *errs = NULL;
    int bad = 0;

    for (size_t i = 0; i < c->n; i++) {
        for (size_t k = 0; k < i; k++) {
            if (strcmp(c->v[i]->name, c->v[k]->name) == 0) {
                cmd_fail("%s and %s are both playbook %s", argv[k], argv[i], c->v[i]->name);
                return -1;
            }
        }
    }
    if (playbook_set_load_libs(sb, cfg->playbook_dir, cfg->playbook_lib_dir, &set, &errs) == -1) {
        cmd_fail("%s", errs ? errs : cfg->playbook_dir);
        free(errs);
        return -1;
    }
    for (size_t i = 0; i < c->n && !bad; i++) {
        for (size_t k = 0; k < set.n && !bad; k++) {
            if (strcmp(set.v[k]->name, c->v[i]->name) == 0 && set.v[k]->file != NULL &&
                strcmp(base_name(set.v[k]->file), base_name(argv[i])) != 0) {
                cmd_fail("playbook %s is in %s already: deploy it under that file's name, or "
                         "remove that file first",
                         c->v[i]->name, set.v[k]->file);
                bad = 1;
            }
        }
    }
    free(errs);
    playbook_set_free(&set);
    return bad ? -1 : 0;
}

int
cmd_playbook_deploy(int argc, char **argv, const char *config_path)
{
    struct deploy_ctx c;
    struct config cfg;
    struct store *st = NULL;
    struct sandbox *sb = NULL;
    char *err = NULL, *reply = NULL;
    int code = 1, r;

    memset(&c, 0, sizeof(c));
    if (argc < 1) {
        return cmd_fail("deploy: name at least one playbook file");
    }
    if (cmd_open_store(config_path ? config_path : cmd_default_config(), &cfg, &st) == -1) {
        return 1;
    }
    sb = env_sandbox_new(DEPLOY_LINT_MEMORY, &err);
    if (sb == NULL) {
        cmd_fail("%s", err ? err : "no sandbox");
        goto out;
    }
    /* Every file must load before any is installed: a deployment is all or nothing. */
    for (int i = 0; i < argc; i++) {
        const char *b = base_name(argv[i]);
        size_t bl = strlen(b);
        struct playbook *pb;

        if (bl < 5 || strcmp(b + bl - 4, ".lua") != 0 || b[0] == '.' ||
            (bl > 9 && strcmp(b + bl - 9, "_test.lua") == 0)) {
            cmd_fail("%s: a playbook file is NAME.lua (not a test, not hidden)", argv[i]);
            goto out;
        }
        pb = playbook_load_file(sb, argv[i], cfg.playbook_lib_dir, &err);
        if (pb == NULL) {
            cmd_fail("%s", err ? err : argv[i]);
            goto out;
        }
        c.v = xrealloc(c.v, (c.n + 1) * sizeof(*c.v));
        c.v[c.n++] = pb;
    }
    if (same_name_elsewhere(sb, &cfg, &c, argv) == -1) {
        goto out;
    }
    for (size_t i = 0; i < c.n; i++) {
        char *dest = xasprintf("%s/%s", cfg.playbook_dir, base_name(argv[i]));

        if (util_write_file(dest, c.v[i]->source, c.v[i]->len, 0640, &err) == -1) {
            cmd_fail("%s", err ? err : dest);
            free(dest);
            goto out;
        }
        printf("installed %s: playbook %s version %.12s\n", dest, c.v[i]->name, c.v[i]->hash);
        free(dest);
    }
    c.by = deploy_os_user();
    c.now = util_now_ms();
    c.st = st;
    if (cmd_each_tenant(st, NULL, deploy_tenant, &c) == -1) {
        goto out;
    }
    printf("recorded in %d tenant%s as deployed by %s\n", c.recorded, c.recorded == 1 ? "" : "s",
           c.by);
    r = control_request(cfg.data_dir, "reload", DEPLOY_RELOAD_MS, &reply, &err);
    if (r == 1) {
        printf("no daemon is running: it serves the new version%s when it starts\n",
               c.n > 1 ? "s" : "");
    } else if (r == -1) {
        cmd_fail("reload: %s (run kagari reload)", err ? err : "?");
        goto out;
    } else {
        printf("reloaded: %s\n", reply);
    }
    code = 0;
out:
    free(err);
    free(reply);
    free((char *)c.by);
    for (size_t i = 0; i < c.n; i++) {
        playbook_unref(c.v[i]);
    }
    free(c.v);
    sandbox_free(sb);
    store_close(st);
    if (st != NULL) {
        config_free(&cfg);
    }
    return code;
}

/* `kagari playbook history [NAME]`: the deployments recorded in each tenant's database. */
struct history_ctx {
    const char *name; /* NULL: the latest deployment of each playbook */
    int rows;
};

static int
history_tenant(struct store_tenant *t, void *ud)
{
    struct history_ctx *h = ud;
    struct store_deploy *d = NULL;
    size_t n = 0;
    char *err = NULL;

    if (store_deploy_list(t, h->name, 1000, &d, &n, &err) == -1) {
        cmd_fail("tenant %s: %s", store_tenant_id(t), err ? err : "?");
        free(err);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char ts[32];

        util_fmt_time(d[i].deployed_ms, ts);
        printf("%s\t", store_tenant_id(t));
        cmd_put_text(d[i].name, strlen(d[i].name), 64, 0);
        printf("\t%.12s\t%s\t", d[i].version, ts);
        if (d[i].by != NULL) {
            cmd_put_text(d[i].by, strlen(d[i].by), 128, 0);
        } else {
            printf("-");
        }
        printf("\t%s\n", d[i].via);
        h->rows++;
    }
    store_deploys_free(d, n);
    return 0;
}

int
cmd_playbook_history(const char *name, const char *tenant, const char *config_path)
{
    struct history_ctx h = { name, 0 };
    int rc =
        cmd_tenants(config_path ? config_path : cmd_default_config(), tenant, history_tenant, &h);

    if (rc == 0 && h.rows == 0) {
        fprintf(stderr, "kagari: no deployment recorded%s%s\n", name ? " of " : "",
                name ? name : "");
        return 1;
    }
    return rc;
}
