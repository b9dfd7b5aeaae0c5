/* cmd_escalation.c: `kagari escalation list` (with the time to acknowledge, for the
 * monthly report) and `kagari escalation ack ID --by NAME`: an acknowledgement from the
 * command line, which stops the contact chain within a second. */
#include "engine/cmd.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "engine/config.h"
#include "engine/escalate.h"
#include "engine/json.h"
#include "engine/store.h"
#include "engine/util.h"

struct cmd_esc_opts {
    const char *config, *tenant, *by;
    int limit, json;
};

static int
cmd_esc_opt(int c, const char *arg, void *ud)
{
    struct cmd_esc_opts *o = ud;

    switch (c) {
    case 'c':
        o->config = arg;
        break;
    case 't':
        o->tenant = arg;
        break;
    case 'b':
        o->by = arg;
        break;
    case 'n':
        o->limit = atoi(arg);
        break;
    case 'j':
        o->json = 1;
        break;
    default:
        return -1;
    }
    return 0;
}

static const struct option cmd_esc_lo[] = {
    { "config", required_argument, NULL, 'c' },
    { "tenant", required_argument, NULL, 't' },
    { "by", required_argument, NULL, 'b' },
    { "limit", required_argument, NULL, 'n' },
    { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

static void
cmd_esc_time(int64_t ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (ms <= 0) {
        snprintf(out, n, "-");
        return;
    }
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Open tenant id's database when it exists (never create it from the CLI). */
static int
cmd_esc_open(struct store *st, const char *id, struct store_tenant **t)
{
    char *path = xasprintf("%s/tenants/%s.db", store_data_dir(st), id);
    char *err = NULL;
    int exists = access(path, F_OK) == 0;

    free(path);
    if (!exists) {
        *t = NULL;
        return 0;
    }
    if (store_tenant_open(st, id, t, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return -1;
    }
    return 0;
}

static int
cmd_esc_list(struct store *st, const struct cmd_esc_opts *o)
{
    struct store_tenant_info *list = NULL;
    size_t n = 0;
    char *err = NULL;
    cJSON *arr = o->json ? cJSON_CreateArray() : NULL;
    int rc = 0;

    if (store_tenant_list(st, &list, &n, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        cJSON_Delete(arr);
        return 1;
    }
    if (!o->json) {
        printf("%-12s %-6s %-9s %-10s %-8s %-20s %-9s %-20s %s\n", "TENANT", "ID", "STATE", "LEVEL",
               "REACHED", "CREATED", "TTA", "ACKED_BY", "SUBJECT");
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct store_tenant *t = NULL;
        struct store_esc *v = NULL;
        size_t nv = 0;

        if (o->tenant != NULL && strcmp(o->tenant, list[i].id) != 0) {
            continue;
        }
        if (cmd_esc_open(st, list[i].id, &t) == -1) {
            rc = 1;
            break;
        }
        if (t == NULL) {
            continue;
        }
        if (store_esc_list(t, o->limit, &v, &nv, &err) == -1) {
            fprintf(stderr, "kagari: %s\n", err);
            free(err);
            err = NULL;
            rc = 1;
        }
        for (size_t k = 0; k < nv; k++) {
            const struct store_esc *e = &v[k];
            char created[32], tta[32];

            cmd_esc_time(e->created_ms, created, sizeof(created));
            if (e->acked_ms > 0) {
                snprintf(tta, sizeof(tta), "%.1fs", (double)(e->acked_ms - e->created_ms) / 1e3);
            } else {
                snprintf(tta, sizeof(tta), "-");
            }
            if (arr != NULL) {
                cJSON *j = cJSON_CreateObject();

                cJSON_AddStringToObject(j, "tenant", list[i].id);
                cJSON_AddNumberToObject(j, "id", (double)e->id);
                cJSON_AddNumberToObject(j, "run", (double)e->run_id);
                cJSON_AddStringToObject(j, "state", e->state);
                cJSON_AddStringToObject(j, "level", e->level);
                cJSON_AddStringToObject(j, "reason", e->reason);
                cJSON_AddStringToObject(j, "subject", e->subject);
                cJSON_AddNumberToObject(j, "contacts", e->contacts);
                cJSON_AddNumberToObject(j, "reached", e->reached);
                cJSON_AddNumberToObject(j, "created_ms", (double)e->created_ms);
                if (e->acked_ms > 0) {
                    cJSON_AddNumberToObject(j, "acked_ms", (double)e->acked_ms);
                    cJSON_AddNumberToObject(j, "tta_ms", (double)(e->acked_ms - e->created_ms));
                    cJSON_AddStringToObject(j, "acked_by", e->acked_by ? e->acked_by : "");
                    cJSON_AddStringToObject(j, "acked_via", e->acked_via ? e->acked_via : "");
                }
                cJSON_AddItemToArray(arr, j);
            } else {
                printf("%-12s %-6lld %-9s %-10.10s %d/%-6d %-20s %-9s %-20.20s %.60s\n", list[i].id,
                       (long long)e->id, e->state, e->level, e->reached, e->contacts, created, tta,
                       e->acked_by ? e->acked_by : "-", e->subject);
            }
        }
        for (size_t k = 0; k < nv; k++) {
            store_esc_free(&v[k]);
        }
        free(v);
        store_tenant_close(t);
    }
    free(list);
    if (arr != NULL) {
        if (rc == 0) {
            char *s = json_print(arr);

            printf("%s\n", s);
            free(s);
        }
        cJSON_Delete(arr);
    }
    return rc;
}

static int
cmd_esc_ack(struct store *st, const struct cmd_esc_opts *o, int64_t id)
{
    struct store_tenant *t = NULL;
    char *err = NULL, *by;
    int rc;

    if (cmd_esc_open(st, o->tenant, &t) == -1) {
        return 1;
    }
    if (t == NULL) {
        return cmd_fail("tenant %s has no escalations", o->tenant);
    }
    by = xasprintf("%s (cli)", o->by);
    rc = escalate_ack_db(t, id, by, "cli", &err);
    free(by);
    store_tenant_close(t);
    if (rc == 1) {
        cJSON *d = cJSON_CreateObject();
        char target[48], *text;

        cJSON_AddStringToObject(d, "via", "cli");
        cJSON_AddStringToObject(d, "by", o->by);
        text = json_print(d);
        cJSON_Delete(d);
        snprintf(target, sizeof(target), "escalation:%lld", (long long)id);
        cmd_audit(st, o->tenant, "escalation.ack", target, "ok", text);
        free(text);
    }
    if (rc == -1) {
        rc = cmd_fail("%s", err ? err : "cannot acknowledge");
        free(err);
        return rc;
    }
    if (rc == 0) {
        return cmd_fail("escalation %lld was already acknowledged", (long long)id);
    }
    printf("escalation %lld acknowledged by %s\n", (long long)id, o->by);
    return 0;
}

static int
cmd_escalation_exec(int argc, char **argv)
{
    static const char help[] =
        "usage: kagari escalation list [--tenant ID] [--limit N] [--json] [--config FILE]\n"
        "       kagari escalation ack ID --tenant ID --by NAME [--config FILE]\n"
        "list: escalations newest first, with how far down the contact chain they got and\n"
        "the time to acknowledge (TTA). ack: acknowledge escalation ID (stops its chain;\n"
        "acknowledging approves no action).\n";
    struct cmd_esc_opts o = { cmd_default_config(), NULL, NULL, 100, 0 };
    struct config cfg;
    struct store *st;
    const char *sub = argc > 1 ? argv[1] : "";
    int r, rc;
    int64_t id = 0;

    if (strcmp(sub, "list") != 0 && strcmp(sub, "ack") != 0) {
        fputs(help, strcmp(sub, "--help") == 0 ? stdout : stderr);
        return strcmp(sub, "--help") == 0 ? 0 : 2;
    }
    r = cmd_parse_opts(argc - 1, argv + 1, cmd_esc_lo, "h", cmd_esc_opt, &o);
    if (r != 0) {
        fputs(help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    if (strcmp(sub, "ack") == 0) {
        if (optind + 1 != argc - 1 || o.tenant == NULL || o.by == NULL || o.by[0] == '\0') {
            fputs(help, stderr);
            return 2;
        }
        if (cmd_parse_id(argv[1 + optind], "escalation", &id) == -1) {
            return 1;
        }
        for (const char *p = o.by; *p != '\0'; p++) {
            if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                return cmd_fail("--by: no control characters");
            }
        }
        if (strlen(o.by) > 128) {
            return cmd_fail("--by: at most 128 bytes");
        }
    } else if (optind != argc - 1) {
        fputs(help, stderr);
        return 2;
    }
    if (cmd_open_store(o.config, &cfg, &st) == -1) {
        return 1;
    }
    rc = strcmp(sub, "ack") == 0 ? cmd_esc_ack(st, &o, (int64_t)id) : cmd_esc_list(st, &o);
    store_close(st);
    config_free(&cfg);
    return rc;
}

const struct cmd_entry cmd_escalation_entry = {
    "escalation",
    "escalation list|ack",
    "urgent escalations: list them (time to acknowledge), acknowledge one",
    cmd_escalation_exec,
};
