/* cmd_poll.c: `kagari poll status`: where each tenant's pollers are (their durable
 * cursors: watermark, the pass in progress, rejected items), read from the tenant
 * databases, so it works with the daemon running or not. */
#include "engine/cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine/json.h"
#include "engine/store.h"

struct cmd_poll_opts {
    const char *config, *tenant;
    int json;
};

static int
cmd_poll_opt(int c, const char *arg, void *ud)
{
    struct cmd_poll_opts *o = ud;

    switch (c) {
    case 'c':
        o->config = arg;
        break;
    case 't':
        o->tenant = arg;
        break;
    case 'j':
        o->json = 1;
        break;
    default:
        return -1;
    }
    return 0;
}

/* One line per cursor: tenant, stream, last write, then the cursor's members. */
static int
cmd_poll_tenant(struct store_tenant *t, void *ud)
{
    const struct cmd_poll_opts *o = ud;
    struct store_cursor *v = NULL;
    size_t n = 0;
    char *err = NULL;

    if (store_cursor_list(t, &v, &n, &err) == -1) {
        cmd_fail("%s", err);
        free(err);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char upd[32];
        cJSON *c = NULL;

        util_fmt_time(v[i].updated_ms, upd);
        (void)!json_parse_strict(v[i].cursor, strlen(v[i].cursor), 8, &c, NULL);
        if (o->json) {
            cJSON *line = cJSON_CreateObject();

            cJSON_AddStringToObject(line, "tenant", store_tenant_id(t));
            cJSON_AddStringToObject(line, "stream", v[i].stream);
            cJSON_AddStringToObject(line, "updated", upd);
            cJSON_AddItemToObject(line, "cursor", c != NULL ? c : cJSON_CreateNull());
            cmd_print_json(line);
            cJSON_Delete(line);
            continue;
        }
        {
            const char *wm = c ? json_get_string(c, "watermark") : NULL;
            const cJSON *rej = c ? json_get(c, "rejected") : NULL;
            const char *lr = c ? json_get_string(c, "last_reject") : NULL;

            printf("%s\t%s\tupdated %s\twatermark %s\t%s\trejected %.0f", store_tenant_id(t),
                   v[i].stream, upd, wm ? wm : "-",
                   c != NULL && json_get(c, "next") != NULL ? "pass in progress" : "idle",
                   cJSON_IsNumber(rej) ? rej->valuedouble : 0);
            if (lr != NULL) {
                fputs("\tlast rejected ", stdout);
                cmd_put_text(lr, strlen(lr), 200, 0);
            }
            putchar('\n');
        }
        cJSON_Delete(c);
    }
    store_cursors_free(v, n);
    return 0;
}

static int
cmd_poll_exec(int argc, char **argv)
{
    static const struct option lo[] = {
        { "config", required_argument, NULL, 'c' },
        { "tenant", required_argument, NULL, 't' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static const char help[] =
        "usage: kagari poll status [--config FILE] [--tenant ID] [--json]\n"
        "Where the pollers of each tenant are: per stream (graph.alerts, graph.incidents,\n"
        "graph.risk_detections, graph.signins), the cursor's last write, its watermark (the\n"
        "last-update time read up to), whether a pass is between pages, and the items rejected.\n";
    struct cmd_poll_opts o = { NULL, NULL, 0 };
    int r = cmd_parse_opts(argc, argv, lo, "hc:t:j", cmd_poll_opt, &o);

    if (r != 0 || optind >= argc || strcmp(argv[optind], "status") != 0) {
        fputs(help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    return cmd_tenants(o.config ? o.config : cmd_default_config(), o.tenant, cmd_poll_tenant, &o);
}

const struct cmd_entry cmd_poll_entry = {
    .name = "poll",
    .usage = "poll status",
    .summary = "show where each tenant's pollers are (cursors)",
    .exec = cmd_poll_exec,
};
