/* cmd_alerts.c: `kagari alerts` (stored alerts, filtered) and `kagari alert show ID` (one
 * alert: its normalized fields, its raw record and the runs it started). */
#include "engine/cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine/config.h"
#include "engine/store.h"

#define CMD_ALERT_UPDATES_MAX (4 << 20) /* bytes of an alert's update history shown */

struct cmd_alerts_opts {
    const char *config, *tenant;
    struct store_alert_where f;
    int json;
    int raw; /* alert show --raw: the raw record alone, as stored */
    cJSON *out;
};

static int
cmd_alerts_severity(const char *opt, const char *arg, int *out)
{
    int sev = severity_from_name(arg);

    if (sev < 0) {
        (void)cmd_fail("%s: not a severity (informational, low, medium, high, critical): %s", opt,
                       arg);
        return -1;
    }
    *out = sev;
    return 0;
}

static int
cmd_alerts_when(const char *opt, const char *arg, int64_t *out)
{
    if (cmd_parse_when(arg, out) == -1) {
        (void)cmd_fail("%s: not a duration (24h, 15m, 7d) or a time (2026-12-04T09:00:00Z): %s",
                       opt, arg);
        return -1;
    }
    return 0;
}

static int
cmd_alerts_opt(int c, const char *arg, void *ud)
{
    struct cmd_alerts_opts *o = ud;

    switch (c) {
    case 'c':
        o->config = arg;
        return 0;
    case 't':
        o->tenant = arg;
        return 0;
    case 's':
        o->f.source = arg;
        return 0;
    case 'm':
        return cmd_alerts_severity("--min-severity", arg, &o->f.severity_min);
    case 'e':
        return cmd_alerts_severity("--severity", arg, &o->f.severity);
    case 'o':
        if (outcome_valid(arg) == -1) {
            (void)cmd_fail("--outcome: not an outcome (unknown, blocked, attempted, "
                           "succeeded): %s",
                           arg);
            return -1;
        }
        o->f.outcome = arg;
        return 0;
    case 'S':
        return cmd_alerts_when("--since", arg, &o->f.since_ms);
    case 'U':
        return cmd_alerts_when("--until", arg, &o->f.until_ms);
    case 'v':
        o->f.observable = arg;
        return 0;
    case 'C':
        o->f.cls = alert_class_from_name(arg);
        if (o->f.cls < 0) {
            (void)cmd_fail("--class: alert or event, not %s", arg);
            return -1;
        }
        return 0;
    case 'n':
        if (cmd_parse_count(arg, &o->f.limit) == -1) {
            (void)cmd_fail("--limit: not a positive number: %s", arg);
            return -1;
        }
        return 0;
    case 'j':
        o->json = 1;
        return 0;
    case 'r':
        o->raw = 1;
        return 0;
    default:
        return -1;
    }
}

static const struct option cmd_alerts_lo[] = {
    { "config", required_argument, NULL, 'c' },
    { "tenant", required_argument, NULL, 't' },
    { "source", required_argument, NULL, 's' },
    { "min-severity", required_argument, NULL, 'm' },
    { "severity", required_argument, NULL, 'e' },
    { "outcome", required_argument, NULL, 'o' },
    { "since", required_argument, NULL, 'S' },
    { "until", required_argument, NULL, 'U' },
    { "observable", required_argument, NULL, 'v' },
    { "class", required_argument, NULL, 'C' },
    { "limit", required_argument, NULL, 'n' },
    { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

static const struct option cmd_alert_show_lo[] = {
    { "config", required_argument, NULL, 'c' }, { "tenant", required_argument, NULL, 't' },
    { "json", no_argument, NULL, 'j' },         { "raw", no_argument, NULL, 'r' },
    { "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
};

static void
cmd_alerts_opts_init(struct cmd_alerts_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->config = cmd_default_config();
    o->f.severity_min = -1;
    o->f.severity = -1;
    o->f.cls = -1;
    o->f.limit = 50;
}

static void
cmd_alerts_json_str(cJSON *o, const char *k, const char *v)
{
    if (v != NULL) {
        cJSON_AddStringToObject(o, k, v);
    } else {
        cJSON_AddNullToObject(o, k);
    }
}

static void
cmd_alerts_json_time(cJSON *o, const char *k, int64_t ms)
{
    char ts[32];

    util_fmt_time(ms, ts);
    cJSON_AddStringToObject(o, k, ts);
}

/* The normalized alert as JSON (no raw record: alert show adds it). */
static cJSON *
cmd_alerts_json(struct store_tenant *t, const struct alert *a)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *obs = cJSON_AddArrayToObject(o, "observables");

    cJSON_AddStringToObject(o, "tenant", store_tenant_id(t));
    cJSON_AddNumberToObject(o, "id", (double)a->id);
    cmd_alerts_json_str(o, "source", a->source);
    cmd_alerts_json_str(o, "source_id", a->source_id);
    cmd_alerts_json_time(o, "time", a->time_ms);
    cmd_alerts_json_time(o, "received", a->received_ms);
    cmd_alerts_json_str(o, "title", a->title);
    cmd_alerts_json_str(o, "category", a->category);
    cmd_alerts_json_str(o, "vendor_severity", a->vendor_severity);
    cJSON_AddStringToObject(o, "severity", severity_name(a->severity));
    cmd_alerts_json_str(o, "outcome", a->outcome);
    cJSON_AddStringToObject(o, "class", alert_class_name(a->cls));
    for (size_t i = 0; i < a->nobs; i++) {
        cJSON *e = cJSON_CreateObject();

        cmd_alerts_json_str(e, "type", a->obs[i].type);
        cmd_alerts_json_str(e, "value", a->obs[i].value);
        cmd_alerts_json_str(e, "role", a->obs[i].role);
        cJSON_AddItemToArray(obs, e);
    }
    return o;
}

static void
cmd_alerts_put(const char *s, size_t max)
{
    s = s != NULL ? s : "";
    cmd_put_text(s, strcspn(s, "\n"), max, 0);
}

static int
cmd_alerts_list(struct store_tenant *t, void *ud)
{
    struct cmd_alerts_opts *o = ud;
    struct alert *v = NULL;
    size_t n = 0;
    char *err = NULL;

    if (store_alert_query(t, &o->f, &v, &n, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char ts[32];

        if (o->json) {
            cJSON_AddItemToArray(o->out, cmd_alerts_json(t, &v[i]));
            continue;
        }
        util_fmt_time(v[i].received_ms, ts);
        /* "informational" would not fit the column: the table says "info". */
        printf("%-12s %-8lld %-24s %-8s %-9s ", store_tenant_id(t), (long long)v[i].id, ts,
               v[i].severity == SEV_INFO ? "info" : severity_name(v[i].severity),
               v[i].outcome ? v[i].outcome : "unknown");
        cmd_alerts_put(v[i].source, 24);
        printf("  ");
        cmd_alerts_put(v[i].title, 72);
        printf("\n");
    }
    store_alerts_free(v, n);
    return 0;
}

static int
cmd_alerts_exec(int argc, char **argv)
{
    static const char help[] =
        "usage: kagari alerts [--tenant ID] [--source NAME] [--min-severity LEVEL]\n"
        "                     [--severity LEVEL] [--outcome OUTCOME] [--since WHEN]\n"
        "                     [--until WHEN] [--observable VALUE] [--class alert|event]\n"
        "                     [--limit N] [--json] [--config FILE]\n"
        "List stored alerts, newest first (all tenants unless --tenant; N per tenant,\n"
        "default 50). Every filter given must match:\n"
        "  --source NAME         the normalized source (entra.signin, defender.alert, ...)\n"
        "  --min-severity LEVEL  at least this severity (informational, low, medium, high,\n"
        "                        critical); --severity LEVEL: exactly this one\n"
        "  --outcome OUTCOME     unknown, blocked, attempted or succeeded\n"
        "  --since/--until WHEN  received since/before WHEN: a time back from now (24h, 15m,\n"
        "                        7d) or an RFC 3339 time or date (2026-12-04T09:00:00Z)\n"
        "  --observable VALUE    an observable (user, ip, host, ...) has exactly this value\n"
        "  --class CLASS         alert (detections, routed to playbooks) or event (logs)\n"
        "--json prints a JSON array; `kagari alert show ID` shows one alert in full.\n";
    struct cmd_alerts_opts o;
    int rc, r;

    cmd_alerts_opts_init(&o);
    r = cmd_parse_opts(argc, argv, cmd_alerts_lo, "h", cmd_alerts_opt, &o);
    if (r != 0 || optind != argc) {
        fputs(help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    if (o.json) {
        o.out = cJSON_CreateArray();
    } else {
        printf("%-12s %-8s %-24s %-8s %-9s %-24s  %s\n", "TENANT", "ALERT", "RECEIVED", "SEVERITY",
               "OUTCOME", "SOURCE", "TITLE");
    }
    rc = cmd_tenants(o.config, o.tenant, cmd_alerts_list, &o);
    if (o.json) {
        if (rc == 0) {
            cmd_print_json(o.out);
        }
        cJSON_Delete(o.out);
    }
    return rc;
}

struct cmd_alert_show_ctx {
    const struct cmd_alerts_opts *o;
    int64_t id;
    int found;
};

/* The runs the alert started, as JSON (with --json) or as lines. */
static int
cmd_alert_show_runs(struct store_tenant *t, const struct alert *a, cJSON *json)
{
    struct store_run_filter rf;
    struct store_run *runs = NULL;
    size_t n = 0;
    char *err = NULL;
    cJSON *arr = json != NULL ? cJSON_AddArrayToObject(json, "runs") : NULL;

    memset(&rf, 0, sizeof(rf));
    rf.alert_id = a->id;
    rf.limit = 1000;
    if (store_run_query(t, &rf, &runs, &n, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return -1;
    }
    if (json == NULL) {
        printf("runs      %zu%s\n", n, n == 0 ? " (no playbook was triggered)" : "");
    }
    for (size_t i = n; i-- > 0;) { /* oldest first */
        const struct store_run *r = &runs[i];
        const char *what = r->error ? r->error : r->result ? r->result : r->result_note;

        if (arr != NULL) {
            cJSON *e = cJSON_CreateObject();
            cJSON *res = r->result ? cJSON_Parse(r->result) : NULL;

            cJSON_AddNumberToObject(e, "id", (double)r->id);
            cJSON_AddStringToObject(e, "playbook", r->playbook);
            cJSON_AddStringToObject(e, "state", r->state);
            cJSON_AddItemToObject(e, "result", res ? res : cJSON_CreateNull());
            cmd_alerts_json_str(e, "error", r->error);
            cJSON_AddItemToArray(arr, e);
            continue;
        }
        printf("  run %-8lld %-9s ", (long long)r->id, r->state);
        cmd_alerts_put(r->playbook, 40);
        if (what != NULL) {
            printf("  %s", r->error ? "error: " : "");
            cmd_alerts_put(what, 100);
        }
        printf("\n");
    }
    store_runs_free(runs, n);
    return 0;
}

/* The alert's update history (changes its source made after it was stored), as JSON
 * (with --json) or as lines. */
static int
cmd_alert_show_updates(struct store_tenant *t, const struct alert *a, cJSON *json)
{
    struct buf b;
    char *err = NULL;
    cJSON *arr = NULL, *it;

    buf_init(&b, CMD_ALERT_UPDATES_MAX);
    if (store_alert_updates(t, a->id, &b, &err) == -1 ||
        (arr = cJSON_ParseWithLength(b.data, b.len)) == NULL) {
        fprintf(stderr, "kagari: %s\n", err ? err : "the update history cannot be read");
        free(err);
        buf_free(&b);
        return -1;
    }
    buf_free(&b);
    if (json != NULL) {
        cJSON_AddItemToObject(json, "updates", arr);
        return 0;
    }
    if (cJSON_GetArraySize(arr) > 0) {
        printf("updates   %d (changes the source made after it was stored)\n",
               cJSON_GetArraySize(arr));
    }
    cJSON_ArrayForEach(it, arr)
    {
        char *ch = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(it, "changes"));
        const char *at = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "at"));

        printf("  %s %s ", at ? at : "?",
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "significant")) ? "significant"
                                                                                 : "recorded");
        cmd_alerts_put(ch ? ch : "{}", 2000);
        printf("\n");
        free(ch);
    }
    cJSON_Delete(arr);
    return 0;
}

static int
cmd_alert_show_one(struct store_tenant *t, void *ud)
{
    struct cmd_alert_show_ctx *sc = ud;
    struct alert a;
    char *err = NULL;
    char ts[32];
    int r = store_alert_get(t, sc->id, &a, &err);

    if (r != 1) {
        if (r == -1) {
            fprintf(stderr, "kagari: %s\n", err);
        }
        free(err);
        return r == -1 ? -1 : 0;
    }
    sc->found++;
    if (sc->o->raw) {
        /* As stored, for a pipe (jq, a file): not escaped for a terminal. */
        if (a.raw != NULL) {
            fwrite(a.raw, 1, strlen(a.raw), stdout);
            putchar('\n');
        }
        alert_free(&a);
        return 0;
    }
    if (sc->o->json) {
        cJSON *o = cmd_alerts_json(t, &a);

        cmd_alerts_json_str(o, "raw", a.raw);
        r = cmd_alert_show_runs(t, &a, o);
        if (r == 0) {
            r = cmd_alert_show_updates(t, &a, o);
        }
        if (r == 0) {
            cmd_print_json(o);
        }
        cJSON_Delete(o);
        alert_free(&a);
        return r;
    }
    printf("alert     %lld (tenant %s)\n", (long long)a.id, store_tenant_id(t));
    printf("source    ");
    cmd_alerts_put(a.source, 200);
    printf("\nsource id ");
    cmd_alerts_put(a.source_id, 200);
    util_fmt_time(a.time_ms, ts);
    printf("\ntime      %s\n", ts);
    util_fmt_time(a.received_ms, ts);
    printf("received  %s\n", ts);
    printf("title     ");
    cmd_alerts_put(a.title, 1000);
    printf("\nseverity  %s", severity_name(a.severity));
    if (a.vendor_severity != NULL) {
        printf(" (vendor: ");
        cmd_alerts_put(a.vendor_severity, 100);
        printf(")");
    }
    printf("\noutcome   %s\n", a.outcome ? a.outcome : "unknown");
    printf("class     %s\n", alert_class_name(a.cls));
    if (a.category != NULL) {
        printf("category  ");
        cmd_alerts_put(a.category, 200);
        printf("\n");
    }
    printf("observables %zu\n", a.nobs);
    for (size_t i = 0; i < a.nobs; i++) {
        printf("  %-8s ", a.obs[i].type ? a.obs[i].type : "?");
        cmd_alerts_put(a.obs[i].value, 400);
        if (a.obs[i].role != NULL) {
            printf("  (");
            cmd_alerts_put(a.obs[i].role, 60);
            printf(")");
        }
        printf("\n");
    }
    r = cmd_alert_show_runs(t, &a, NULL);
    if (r == 0) {
        r = cmd_alert_show_updates(t, &a, NULL);
    }
    if (a.raw != NULL) {
        size_t len = strlen(a.raw);

        printf("raw       %zu bytes (kagari alert show %lld --raw prints it unescaped)\n", len,
               (long long)a.id);
        cmd_put_text(a.raw, len, len, 1);
        printf("\n");
    }
    alert_free(&a);
    return r;
}

int
cmd_alert_show(int argc, char **argv)
{
    static const char help[] =
        "usage: kagari alert show ID [--tenant ID] [--json | --raw] [--config FILE]\n"
        "One stored alert: its normalized fields and observables, the runs it started\n"
        "(with their results or errors) and its raw record as stored. Alert ids are per\n"
        "tenant: without --tenant every tenant's alert ID is shown. --json prints one JSON\n"
        "object per tenant; --raw prints only the raw record, unescaped (for a pipe).\n";
    struct cmd_alerts_opts o;
    struct cmd_alert_show_ctx sc;
    int rc, r;

    cmd_alerts_opts_init(&o);
    r = cmd_parse_opts(argc, argv, cmd_alert_show_lo, "h", cmd_alerts_opt, &o);
    if (r != 0 || optind + 1 != argc || (o.json && o.raw)) {
        fputs(help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    memset(&sc, 0, sizeof(sc));
    sc.o = &o;
    if (cmd_parse_id(argv[optind], "alert", &sc.id) == -1) {
        return 1;
    }
    rc = cmd_tenants(o.config, o.tenant, cmd_alert_show_one, &sc);
    if (rc == 0 && !sc.found) {
        fprintf(stderr, "kagari: no alert %lld\n", (long long)sc.id);
        rc = 1;
    }
    return rc;
}

const struct cmd_entry cmd_alerts_entry = {
    .name = "alerts",
    .usage = "alerts",
    .summary = "list stored alerts (filters: source, severity, outcome, time, observable)",
    .exec = cmd_alerts_exec,
};
