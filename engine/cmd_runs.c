/* cmd_runs.c: `kagari runs` and `kagari run show`, playbook runs and their journals. */
#include "engine/cmd.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "engine/config.h"
#include "engine/journal.h"
#include "engine/json.h"
#include "engine/store.h"
#include "engine/util.h"

struct cmd_runs_opts {
    const char *config, *tenant;
    struct store_run_filter f;
    int json;
    cJSON *out; /* the array or object being built with --json */
};

static int
cmd_runs_opt(int c, const char *arg, void *ud)
{
    struct cmd_runs_opts *o = ud;
    char *end;

    switch (c) {
    case 'c':
        o->config = arg;
        break;
    case 't':
        o->tenant = arg;
        break;
    case 's':
        o->f.state = arg;
        break;
    case 'p':
        o->f.playbook = arg;
        break;
    case 'a':
        o->f.alert_id = strtoll(arg, &end, 10);
        if (*end != '\0' || o->f.alert_id <= 0) {
            (void)cmd_fail("--alert: not an alert id: %s", arg);
            return -1;
        }
        break;
    case 'S':
        if (cmd_parse_when(arg, &o->f.since_ms) == -1) {
            (void)cmd_fail("--since: not a duration (24h, 15m, 7d) or a time "
                           "(2026-12-04T09:00:00Z): %s",
                           arg);
            return -1;
        }
        break;
    case 'U':
        if (cmd_parse_when(arg, &o->f.until_ms) == -1) {
            (void)cmd_fail("--until: not a duration (24h, 15m, 7d) or a time "
                           "(2026-12-04T09:00:00Z): %s",
                           arg);
            return -1;
        }
        break;
    case 'n':
        if (cmd_parse_count(arg, &o->f.limit) == -1) {
            (void)cmd_fail("--limit: not a positive number: %s", arg);
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

static const struct option cmd_runs_lo[] = {
    { "config", required_argument, NULL, 'c' },
    { "tenant", required_argument, NULL, 't' },
    { "state", required_argument, NULL, 's' },
    { "playbook", required_argument, NULL, 'p' },
    { "alert", required_argument, NULL, 'a' },
    { "since", required_argument, NULL, 'S' },
    { "until", required_argument, NULL, 'U' },
    { "limit", required_argument, NULL, 'n' },
    { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

static void
cmd_runs_fmt_ms(int64_t ms, char *out)
{
    if (ms == 0) {
        snprintf(out, 32, "-");
    } else {
        util_fmt_time(ms, out);
    }
}

static void
cmd_runs_put(const char *s, size_t n, int keep_nl)
{
    cmd_put_text(s, n, n, keep_nl);
}

static void
cmd_runs_json_time(cJSON *o, const char *k, int64_t ms)
{
    char ts[32];

    if (ms == 0) {
        cJSON_AddNullToObject(o, k);
        return;
    }
    util_fmt_time(ms, ts);
    cJSON_AddStringToObject(o, k, ts);
}

/* A journal text as JSON when it parses, else as a string. */
static void
cmd_runs_json_text(cJSON *o, const char *k, const char *text)
{
    cJSON *v = text ? cJSON_Parse(text) : cJSON_CreateNull();

    cJSON_AddItemToObject(o, k, v ? v : cJSON_CreateString(text));
}

/* The state to show: a waiting run whose pending call its server throttled is
 * "throttled" until the wait ends. */
static const char *
cmd_runs_state(const struct store_run *r)
{
    if (strcmp(r->state, "waiting") == 0 && r->throttled_until > util_now_ms()) {
        return "throttled";
    }
    return r->state;
}

static cJSON *
cmd_runs_run_json(struct store_tenant *t, const struct store_run *r)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "tenant", store_tenant_id(t));
    cJSON_AddNumberToObject(o, "id", (double)r->id);
    cJSON_AddNumberToObject(o, "alert_id", (double)r->alert_id);
    cJSON_AddStringToObject(o, "playbook", r->playbook);
    cJSON_AddStringToObject(o, "version", r->hash);
    cJSON_AddStringToObject(o, "state", cmd_runs_state(r));
    if (strcmp(cmd_runs_state(r), "throttled") == 0) {
        cmd_runs_json_time(o, "throttled_until", r->throttled_until);
    }
    cmd_runs_json_time(o, "created", r->created_ms);
    cmd_runs_json_time(o, "started", r->started_ms);
    cmd_runs_json_time(o, "ended", r->ended_ms);
    if (r->error != NULL) {
        cJSON_AddStringToObject(o, "error", r->error);
    } else {
        cJSON_AddNullToObject(o, "error");
    }
    cmd_runs_json_text(o, "result", r->result);
    if (r->result_note != NULL) {
        cJSON_AddStringToObject(o, "result_note", r->result_note);
    } else {
        cJSON_AddNullToObject(o, "result_note");
    }
    return o;
}

static int
cmd_runs_list(struct store_tenant *t, void *ud)
{
    struct cmd_runs_opts *o = ud;
    struct store_run *runs = NULL;
    size_t n = 0;
    char *err = NULL;

    if (store_run_query(t, &o->f, &runs, &n, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return -1;
    }
    for (size_t i = 0; o->json && i < n; i++) {
        cJSON_AddItemToArray(o->out, cmd_runs_run_json(t, &runs[i]));
    }
    for (size_t i = 0; !o->json && i < n; i++) {
        char created[32], dur[32];
        const char *e = runs[i].error         ? runs[i].error
                        : runs[i].result      ? runs[i].result
                        : runs[i].result_note ? runs[i].result_note
                                              : "";
        size_t elen = strcspn(e, "\n");

        cmd_runs_fmt_ms(runs[i].created_ms, created);
        if (runs[i].ended_ms && runs[i].started_ms) {
            snprintf(dur, sizeof(dur), "%lldms",
                     (long long)(runs[i].ended_ms - runs[i].started_ms));
        } else {
            snprintf(dur, sizeof(dur), "-");
        }
        printf("%-12s %-8lld %-9s %-28s %-8lld %-24s %-9s ", store_tenant_id(t),
               (long long)runs[i].id, cmd_runs_state(&runs[i]), runs[i].playbook,
               (long long)runs[i].alert_id, created, dur);
        cmd_put_text(e, elen, 80, 0);
        printf("\n");
    }
    store_runs_free(runs, n);
    return 0;
}

static int
cmd_runs_exec(int argc, char **argv)
{
    static const char help[] =
        "usage: kagari runs [--tenant ID] [--state STATE] [--playbook NAME] [--alert ID]\n"
        "                   [--since WHEN] [--until WHEN] [--limit N] [--json] [--config FILE]\n"
        "List playbook runs, newest first (all tenants unless --tenant; N per tenant,\n"
        "default 50), with each run's result (what its playbook returned) or error.\n"
        "STATE is queued, running, waiting, done, failed or cancelled. WHEN is a time back\n"
        "from now (24h, 15m, 7d) or an RFC 3339 time or date (2026-12-04T09:00:00Z,\n"
        "2026-12-04); both bound the run's creation: since <= created < until.\n"
        "--json prints a JSON array of runs instead of a table.\n";
    struct cmd_runs_opts o;
    int rc, r;

    memset(&o, 0, sizeof(o));
    o.config = cmd_default_config();
    o.f.limit = 50;
    r = cmd_parse_opts(argc, argv, cmd_runs_lo, "h", cmd_runs_opt, &o);
    if (r != 0 || optind != argc) {
        fputs(help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    if (o.json) {
        o.out = cJSON_CreateArray();
    } else {
        printf("%-12s %-8s %-9s %-28s %-8s %-24s %-9s %s\n", "TENANT", "RUN", "STATE", "PLAYBOOK",
               "ALERT", "CREATED", "DURATION", "RESULT OR ERROR");
    }
    rc = cmd_tenants(o.config, o.tenant, cmd_runs_list, &o);
    if (o.json) {
        if (rc == 0) {
            cmd_print_json(o.out);
        }
        cJSON_Delete(o.out);
    }
    return rc;
}

struct cmd_runs_show_ctx {
    int64_t id;
    int found;
    int json;
};

/* One line per wait recorded inside a step: why, for how long, the status that asked. */
static void
cmd_runs_print_waits(const char *waits)
{
    cJSON *arr = waits != NULL ? cJSON_Parse(waits) : NULL, *w;

    cJSON_ArrayForEach(w, arr)
    {
        cJSON *reason = cJSON_GetObjectItemCaseSensitive(w, "reason");
        double st = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(w, "status"));
        double at = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(w, "at"));
        double until = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(w, "until"));
        char ts[32];

        if (!cJSON_IsString(reason) || at != at || until != until) {
            continue;
        }
        cmd_runs_fmt_ms((int64_t)at, ts);
        printf("        waited %.1f s (%s", (until - at) / 1000.0,
               strcmp(reason->valuestring, "throttled") == 0 ? "throttled by the server"
               : strcmp(reason->valuestring, "breaker") == 0 ? "circuit open, waiting for its trial"
                                                             : "backing off before a retry");
        if (st == st && st > 0) {
            printf(", HTTP %d", (int)st);
        }
        printf(") from %s\n", ts);
    }
    cJSON_Delete(arr);
}

static int
cmd_runs_show(struct store_tenant *t, void *ud)
{
    struct cmd_runs_show_ctx *sc = ud;
    struct store_run run;
    struct journal_entry *j = NULL;
    size_t n = 0;
    char *err = NULL;
    char ts[32], *requester = NULL;
    int r = store_run_get(t, sc->id, &run, &err);

    if (r != 1) {
        if (r == -1) {
            fprintf(stderr, "kagari: %s\n", err);
        }
        free(err);
        return r == -1 ? -1 : 0;
    }
    sc->found = 1;
    if (store_run_requester(t, run.id, &requester, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        store_run_free(&run);
        return -1;
    }
    if (sc->json) {
        cJSON *o = cmd_runs_run_json(t, &run);
        cJSON *arr;

        if (requester != NULL) {
            cJSON_AddStringToObject(o, "requester", requester);
        } else {
            cJSON_AddNullToObject(o, "requester");
        }
        free(requester);
        arr = cJSON_AddArrayToObject(o, "journal");

        if (store_journal_load(t, run.id, &j, &n, &err) == -1) {
            fprintf(stderr, "kagari: %s\n", err);
            free(err);
            cJSON_Delete(o);
            store_run_free(&run);
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            cJSON *e = cJSON_CreateObject();

            cJSON_AddNumberToObject(e, "seq", j[i].seq);
            cJSON_AddStringToObject(e, "kind", j[i].kind);
            cJSON_AddStringToObject(e, "status", journal_status_name(j[i].status));
            cmd_runs_json_text(e, "request", j[i].request);
            cmd_runs_json_text(e, "result", j[i].result);
            cmd_runs_json_time(e, "started", j[i].started_ms);
            cmd_runs_json_time(e, "ended", j[i].ended_ms);
            if (j[i].waits != NULL) {
                cmd_runs_json_text(e, "waits", j[i].waits);
            }
            cJSON_AddItemToArray(arr, e);
        }
        cmd_print_json(o);
        cJSON_Delete(o);
        journal_entries_free(j, n);
        store_run_free(&run);
        return 0;
    }
    printf("run       %lld (tenant %s)\n", (long long)run.id, store_tenant_id(t));
    printf("playbook  %s (version %.12s)\n", run.playbook, run.hash);
    printf("alert     %lld\n", (long long)run.alert_id);
    if (requester != NULL) {
        /* A person started it (the people's API): they cannot decide its approvals. */
        printf("requester ");
        cmd_put_text(requester, strlen(requester), 128, 0);
        printf("\n");
        free(requester);
    }
    printf("state     %s", cmd_runs_state(&run));
    if (strcmp(cmd_runs_state(&run), "throttled") == 0) {
        cmd_runs_fmt_ms(run.throttled_until, ts);
        printf(" (the server asked to wait; next attempt at %s)", ts);
    }
    printf("\n");
    cmd_runs_fmt_ms(run.created_ms, ts);
    printf("created   %s\n", ts);
    cmd_runs_fmt_ms(run.started_ms, ts);
    printf("started   %s\n", ts);
    cmd_runs_fmt_ms(run.ended_ms, ts);
    printf("ended     %s", ts);
    if (run.ended_ms && run.started_ms) {
        printf(" (%lld ms)", (long long)(run.ended_ms - run.started_ms));
    }
    printf("\n");
    if (run.error != NULL) {
        printf("error     ");
        cmd_runs_put(run.error, strlen(run.error), 1);
        printf("\n");
    }
    if (run.result != NULL) {
        printf("result    ");
        cmd_runs_put(run.result, strlen(run.result), 0);
        printf("\n");
    } else if (run.result_note != NULL) {
        printf("result    none: ");
        cmd_runs_put(run.result_note, strlen(run.result_note), 0);
        printf("\n");
    } else if (strcmp(run.state, "done") == 0) {
        printf("result    none (the playbook returned nothing)\n");
    }
    if (store_journal_load(t, run.id, &j, &n, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        store_run_free(&run);
        return -1;
    }
    printf("journal   %zu step%s%s\n", n, n == 1 ? "" : "s",
           n == 0 ? " (the playbook called no effect: no connector, sleep, now or log)" : "");
    if (strcmp(run.state, "failed") == 0) {
        /* Where it stopped: the last step when it did not finish well, else after it. */
        if (n > 0 && j[n - 1].status != JOURNAL_DONE) {
            printf("stopped   at step #%d (%s, %s); steps before it finished\n", j[n - 1].seq,
                   j[n - 1].kind, journal_status_name(j[n - 1].status));
        } else {
            printf("stopped   after step #%zu, in the playbook's own code (see error)\n", n);
        }
    }
    for (size_t i = 0; i < n; i++) {
        cmd_runs_fmt_ms(j[i].started_ms, ts);
        printf("  #%-3d %-24s %-8s %s  ", j[i].seq, j[i].kind, journal_status_name(j[i].status),
               ts);
        cmd_runs_put(j[i].request, strlen(j[i].request), 0);
        if (j[i].result != NULL) {
            printf(j[i].status == JOURNAL_FAILED ? " -> error: " : " -> ");
            cmd_runs_put(j[i].result, strlen(j[i].result), 0);
        }
        if (j[i].ended_ms) {
            printf("  (%lld ms)", (long long)(j[i].ended_ms - j[i].started_ms));
        }
        printf("\n");
        cmd_runs_print_waits(j[i].waits);
    }
    journal_entries_free(j, n);
    store_run_free(&run);
    return 0;
}

/* run retry: the tenants that have a failed run with the id, then the retry. */
struct cmd_runs_retry_ctx {
    int64_t id;
    int found;
    char tenant[64];
};

static int
cmd_runs_retry_find(struct store_tenant *t, void *ud)
{
    struct cmd_runs_retry_ctx *rc = ud;
    struct store_run r;

    if (store_run_get(t, rc->id, &r, NULL) == 1) {
        if (strcmp(r.state, "failed") == 0) {
            rc->found++;
            snprintf(rc->tenant, sizeof(rc->tenant), "%s", store_tenant_id(t));
        }
        store_run_free(&r);
    }
    return 0;
}

static int
cmd_runs_retry_one(struct store_tenant *t, void *ud)
{
    struct cmd_runs_retry_ctx *rc = ud;
    char *err = NULL;

    if (strcmp(store_tenant_id(t), rc->tenant) != 0) {
        return 0;
    }
    if (store_run_retry(t, rc->id, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err ? err : "retry failed");
        free(err);
        return -1;
    }
    printf("run %lld (tenant %s) queued again: the daemon continues it from its journal at its "
           "next start or reload (kagari reload)\n",
           (long long)rc->id, rc->tenant);
    return 0;
}

static int
cmd_runs_retry(int argc, char **argv, struct cmd_runs_opts *o)
{
    struct cmd_runs_retry_ctx rc;
    struct config cfg;
    struct store *st;
    int code;

    memset(&rc, 0, sizeof(rc));
    (void)argc;
    if (cmd_parse_id(argv[optind + 1], "run", &rc.id) == -1) {
        return 1;
    }
    if (cmd_open_store(o->config, &cfg, &st) == -1) {
        return 1;
    }
    code = cmd_each_tenant(st, o->tenant, cmd_runs_retry_find, &rc) == 0 ? 0 : 1;
    if (code == 0 && rc.found == 0) {
        fprintf(stderr, "kagari: no failed run %lld\n", (long long)rc.id);
        code = 1;
    } else if (code == 0 && rc.found > 1) {
        fprintf(stderr, "kagari: several tenants have a failed run %lld: give --tenant\n",
                (long long)rc.id);
        code = 1;
    } else if (code == 0) {
        code = cmd_each_tenant(st, rc.tenant, cmd_runs_retry_one, &rc) == 0 ? 0 : 1;
    }
    store_close(st);
    config_free(&cfg);
    return code;
}

static int
cmd_runs_show_exec(int argc, char **argv)
{
    static const char help[] =
        "usage: kagari run show ID [--tenant ID] [--json] [--config FILE]\n"
        "       kagari run retry ID [--tenant ID] [--config FILE]\n"
        "show: one run: its playbook version, state, error and every journal step.\n"
        "Run ids are per tenant: without --tenant every tenant's run ID is shown.\n"
        "retry: queue a failed run again; the daemon continues it from its journal at its\n"
        "next start or reload (kagari reload): finished steps are not repeated, the step that\n"
        "failed is done again (check its target first when it may have been carried out).\n";
    struct cmd_runs_opts o;
    struct cmd_runs_show_ctx sc = { 0, 0, 0 };
    int rc, r;

    memset(&o, 0, sizeof(o));
    o.config = cmd_default_config();
    r = cmd_parse_opts(argc, argv, cmd_runs_lo, "h", cmd_runs_opt, &o);

    if (r != 0 || optind + 2 != argc ||
        (strcmp(argv[optind], "show") != 0 && strcmp(argv[optind], "retry") != 0)) {
        fputs(help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    if (strcmp(argv[optind], "retry") == 0) {
        return cmd_runs_retry(argc, argv, &o);
    }
    sc.json = o.json;
    if (cmd_parse_id(argv[optind + 1], "run", &sc.id) == -1) {
        return 1;
    }
    rc = cmd_tenants(o.config, o.tenant, cmd_runs_show, &sc);
    if (rc == 0 && !sc.found) {
        fprintf(stderr, "kagari: no run %lld\n", (long long)sc.id);
        rc = 1;
    }
    return rc;
}

const struct cmd_entry cmd_runs_entry = {
    .name = "runs",
    .usage = "runs",
    .summary = "list playbook runs and their results (filters: state, playbook, alert, time)",
    .exec = cmd_runs_exec,
};

/* `run show` shares the options and the printing above, so it lives here too. */
const struct cmd_entry cmd_run_entry = {
    .name = "run",
    .usage = "run show|retry ID",
    .summary = "one run with its journal; retry a failed run",
    .exec = cmd_runs_show_exec,
};
