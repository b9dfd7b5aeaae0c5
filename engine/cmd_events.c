/* cmd_events.c: `kagari events`, a search of the stored events (records kept for searching,
 * not detections) by user, address, device, source and time. */
#include "engine/cmd.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "engine/config.h"
#include "engine/store.h"

#define CMD_EVENTS_LIMIT 50
#define CMD_EVENTS_MAX 1000

struct cmd_events_opts {
    const char *config, *tenant, *since, *until;
    struct store_event_filter f;
    int json;
    cJSON *out;
};

static int
cmd_events_opt(int c, const char *arg, void *ud)
{
    struct cmd_events_opts *o = ud;

    switch (c) {
    case 'c':
        o->config = arg;
        break;
    case 't':
        o->tenant = arg;
        break;
    case 'u':
        o->f.user = arg;
        break;
    case 'i':
        o->f.ip = arg;
        break;
    case 'd':
        o->f.device = arg;
        break;
    case 's':
        o->f.source = arg;
        break;
    case 'o':
        o->f.outcome = arg;
        break;
    case 'S':
        o->since = arg;
        break;
    case 'U':
        o->until = arg;
        break;
    case 'n':
        o->f.limit = atoi(arg);
        if (o->f.limit < 1 || o->f.limit > CMD_EVENTS_MAX) {
            fprintf(stderr, "kagari: --limit: expected 1 to %d\n", CMD_EVENTS_MAX);
            return -1;
        }
        break;
    case 'j':
        o->json = 1;
        break;
    default:
        return -1;
    }
    return 0;
}

static const struct option cmd_events_lo[] = {
    { "config", required_argument, NULL, 'c' },
    { "tenant", required_argument, NULL, 't' },
    { "user", required_argument, NULL, 'u' },
    { "ip", required_argument, NULL, 'i' },
    { "device", required_argument, NULL, 'd' },
    { "source", required_argument, NULL, 's' },
    { "outcome", required_argument, NULL, 'o' },
    { "since", required_argument, NULL, 'S' },
    { "until", required_argument, NULL, 'U' },
    { "limit", required_argument, NULL, 'n' },
    { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* A bound: a duration back from now ("24h") or an RFC 3339 time. */
static int
cmd_events_bound(const char *v, int64_t *ms)
{
    double secs;

    if (util_parse_duration(v, &secs) == 0) {
        *ms = util_now_ms() - (int64_t)(secs * 1000);
        return 0;
    }
    return util_parse_time(v, ms);
}

/* Print text for a terminal: control characters and bad UTF-8 escaped. */
static void
cmd_events_put(const char *s, size_t max)
{
    struct buf b;
    size_t n = s != NULL ? strlen(s) : 0;

    buf_init(&b, 0);
    (void)!buf_escape_text(&b, s != NULL ? s : "-", n > max ? max : (n ? n : 1), 0);
    fwrite(b.data, 1, b.len, stdout);
    buf_free(&b);
}

static const char *
cmd_events_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

    return cJSON_IsString(v) ? v->valuestring : "-";
}

static int
cmd_events_one(struct store_tenant *t, struct cmd_events_opts *o)
{
    struct buf out;
    size_t n = 0;
    char *err = NULL;
    cJSON *rows, *row;

    buf_init(&out, 0);
    if (store_event_query(t, &o->f, &out, &n, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        buf_free(&out);
        return -1;
    }
    rows = cJSON_ParseWithLength(out.data, out.len);
    buf_free(&out);
    cJSON_ArrayForEach(row, rows)
    {
        if (o->json) {
            cJSON_AddStringToObject(row, "tenant", store_tenant_id(t));
            continue;
        }
        printf("%-12s %-24s %-20s ", store_tenant_id(t), cmd_events_str(row, "time"),
               cmd_events_str(row, "source"));
        cmd_events_put(cmd_events_str(row, "user"), 32);
        putchar(' ');
        cmd_events_put(cmd_events_str(row, "ip"), 40);
        putchar(' ');
        cmd_events_put(cmd_events_str(row, "dst_ip"), 40);
        printf(" %-9s ", cmd_events_str(row, "outcome"));
        cmd_events_put(cmd_events_str(row, "title"), 100);
        putchar('\n');
    }
    if (o->json && rows != NULL) {
        while (cJSON_GetArraySize(rows) > 0) {
            cJSON_AddItemToArray(o->out, cJSON_DetachItemFromArray(rows, 0));
        }
    }
    cJSON_Delete(rows);
    return 0;
}

static int
cmd_events_exec(int argc, char **argv)
{
    static const char help[] =
        "usage: kagari events [--tenant ID] [--user U] [--ip ADDR] [--device NAME]\n"
        "                     [--source NAME] [--outcome OUTCOME] [--since 24h|TIME]\n"
        "                     [--until TIME] [--limit N]\n"
        "                     [--json] [--config FILE]\n"
        "Search the stored events (records kept for searching, not alerts), newest first:\n"
        "every filter given must match (--ip matches the source or destination address;\n"
        "--user and --device ignore case). --since and --until take a duration back from\n"
        "now or an RFC 3339 time (default: the last 24 hours). N per tenant, default 50,\n"
        "at most 1000. --json prints a JSON array of events instead of a table.\n";
    struct cmd_events_opts o;
    struct store_tenant_info *list = NULL;
    struct config cfg;
    struct store *st;
    size_t n = 0;
    char *err = NULL;
    int rc = 0, found = 0, r;

    memset(&o, 0, sizeof(o));
    o.config = cmd_default_config();
    o.f.limit = CMD_EVENTS_LIMIT;
    o.since = "24h";
    r = cmd_parse_opts(argc, argv, cmd_events_lo, "h", cmd_events_opt, &o);
    if (r != 0 || optind != argc) {
        fputs(help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    o.f.until_ms = INT64_MAX;
    if (cmd_events_bound(o.since, &o.f.since_ms) == -1 ||
        (o.until != NULL && cmd_events_bound(o.until, &o.f.until_ms) == -1)) {
        return cmd_fail("--since/--until: expected a duration such as 24h or an RFC 3339 time");
    }
    if (cmd_open_store(o.config, &cfg, &st) == -1) {
        return 1;
    }
    if (store_tenant_list(st, &list, &n, &err) == -1) {
        rc = cmd_fail("%s", err);
        free(err);
        goto out;
    }
    if (o.json) {
        o.out = cJSON_CreateArray();
    } else {
        printf("%-12s %-24s %-20s %s %s %s %-9s %s\n", "TENANT", "TIME", "SOURCE", "USER", "IP",
               "DST_IP", "OUTCOME", "TITLE");
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct store_tenant *t;
        char *path;
        int exists;

        if (o.tenant != NULL && strcmp(o.tenant, list[i].id) != 0) {
            continue;
        }
        found = 1;
        path = xasprintf("%s/tenants/%s.db", store_data_dir(st), list[i].id);
        exists = access(path, F_OK) == 0;
        free(path);
        if (!exists) { /* never created by the daemon: no events, and not ours to create */
            continue;
        }
        if (store_tenant_open(st, list[i].id, &t, &err) == -1) {
            rc = cmd_fail("%s", err);
            free(err);
            break;
        }
        rc = cmd_events_one(t, &o) == 0 ? 0 : 1;
        store_tenant_close(t);
    }
    if (o.tenant != NULL && !found) {
        rc = cmd_fail("unknown tenant %s", o.tenant);
    }
    if (o.json) {
        if (rc == 0) {
            char *s = cJSON_PrintUnformatted(o.out);

            printf("%s\n", s);
            free(s);
        }
        cJSON_Delete(o.out);
    }
out:
    free(list);
    store_close(st);
    config_free(&cfg);
    return rc;
}

const struct cmd_entry cmd_events_entry = {
    "events",
    "events",
    "search stored events by user, address, device, source and time",
    cmd_events_exec,
};
