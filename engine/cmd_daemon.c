/* cmd_daemon.c: `kagari status`, `kagari reload` and `kagari stop`: the running daemon
 * through its control socket (engine/control.h), found from the configuration's data
 * folder; no PID needed. */
#include "engine/cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "engine/config.h"
#include "engine/control.h"
#include "engine/store.h"

#define CMD_DAEMON_NOT_RUNNING 3 /* as LSB init scripts say "program is not running" */
#define CMD_DAEMON_ANSWER_MS 10000

struct cmd_daemon_opts {
    const char *config;
    int json;
    double timeout; /* stop: seconds to wait for the daemon to exit */
};

static int
cmd_daemon_opt(int c, const char *arg, void *ud)
{
    struct cmd_daemon_opts *o = ud;
    char *end;

    switch (c) {
    case 'c':
        o->config = arg;
        return 0;
    case 'j':
        o->json = 1;
        return 0;
    case 'w':
        o->timeout = strtod(arg, &end);
        if (*end != '\0' || !(o->timeout > 0 && o->timeout <= 86400)) {
            (void)cmd_fail("--timeout: not a number of seconds: %s", arg);
            return -1;
        }
        return 0;
    default:
        return -1;
    }
}

static const struct option cmd_daemon_lo[] = {
    { "config", required_argument, NULL, 'c' },
    { "json", no_argument, NULL, 'j' },
    { "timeout", required_argument, NULL, 'w' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* Parse the options, load the configuration (for its data folder) and ask the daemon.
 * Returns -2 after printing help or a usage error (*code set), else control_request's
 * result with *reply set on 0. */
static int
cmd_daemon_ask(int argc, char **argv, const char *help, const char *verb, struct cmd_daemon_opts *o,
               struct config *cfg, char **reply, int *code)
{
    char *err = NULL;
    int r;

    o->config = cmd_default_config();
    r = cmd_parse_opts(argc, argv, cmd_daemon_lo, "h", cmd_daemon_opt, o);
    if (r != 0 || optind != argc) {
        fputs(help, r == 1 ? stdout : stderr);
        *code = r == 1 ? 0 : 2;
        return -2;
    }
    if (config_load(o->config, cfg, &err) == -1) {
        *code = cmd_fail("%s", err);
        free(err);
        return -2;
    }
    r = control_request(cfg->data_dir, verb, CMD_DAEMON_ANSWER_MS, reply, &err);
    if (r == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
    }
    return r;
}

/* No daemon answered: say whether one holds the data folder anyway (its control socket
 * gone or stuck) or none runs. Returns the exit status. */
static int
cmd_daemon_absent(const struct config *cfg, int json)
{
    long pid = 0;
    int held = store_lock_probe(cfg->data_dir, &pid);

    if (held == 1) {
        fprintf(stderr,
                "kagari: a daemon (pid %ld) holds %s but its control socket does not answer; "
                "signals still work (kill -TERM %ld)\n",
                pid, cfg->data_dir, pid);
        return 1;
    }
    if (json) {
        printf("{\"state\":\"stopped\"}\n");
    } else {
        printf("not running (no kagari serve on %s)\n", cfg->data_dir);
    }
    return CMD_DAEMON_NOT_RUNNING;
}

static cJSON *
cmd_daemon_parse(const char *reply)
{
    cJSON *v = cJSON_Parse(reply);

    if (v == NULL || !cJSON_IsObject(v)) {
        cJSON_Delete(v);
        (void)cmd_fail("the daemon's answer is not a JSON object");
        return NULL;
    }
    return v;
}

static const char *
cmd_daemon_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

    return cJSON_IsString(v) ? v->valuestring : "-";
}

static double
cmd_daemon_num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* Runs by state, read by the CLI from each tenant database (the daemon does not scan
 * its tables for a status). */
struct cmd_daemon_counts {
    cJSON *tenants; /* the daemon's tenants array: each gets "runs": {state: n} */
};

static int
cmd_daemon_count(struct store_tenant *t, void *ud)
{
    static const char *const states[6] = { "queued", "running", "waiting",
                                           "done",   "failed",  "cancelled" };
    struct cmd_daemon_counts *dc = ud;
    int64_t counts[6];
    char *err = NULL;
    const cJSON *e;

    if (store_run_counts(t, counts, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return 0; /* the others still count */
    }
    cJSON_ArrayForEach(e, dc->tenants)
    {
        if (strcmp(cmd_daemon_str(e, "id"), store_tenant_id(t)) == 0) {
            cJSON *runs = cJSON_AddObjectToObject((cJSON *)e, "runs");
            cJSON *alerts = cJSON_CreateNumber((double)store_alert_count(t));

            for (int i = 0; i < 6; i++) {
                cJSON_AddNumberToObject(runs, states[i], (double)counts[i]);
            }
            cJSON_AddItemToObject((cJSON *)e, "alerts", alerts);
        }
    }
    return 0;
}

static void
cmd_daemon_print_status(const cJSON *st)
{
    const cJSON *tenants = cJSON_GetObjectItemCaseSensitive(st, "tenants");
    const cJSON *e;
    long long up = (long long)cmd_daemon_num(st, "uptime_s");

    printf("state       %s (pid %.0f)\n", cmd_daemon_str(st, "state"), cmd_daemon_num(st, "pid"));
    printf("version     %s\n", cmd_daemon_str(st, "version"));
    printf("up since    %s (%lldd %02lldh %02lldm %02llds)\n", cmd_daemon_str(st, "up_since"),
           up / 86400, up / 3600 % 24, up / 60 % 60, up % 60);
    printf("config      %s\n", cmd_daemon_str(st, "config"));
    printf("data        %s\n", cmd_daemon_str(st, "data"));
    printf("listeners   %s\n", cmd_daemon_str(st, "listeners"));
    printf("control     %s\n", cmd_daemon_str(st, "control"));
    if (cJSON_GetObjectItemCaseSensitive(st, "test_clock_shift_ms") != NULL) {
        printf("test clock  ON, the engine's time is %.0f s ahead (testing.clock: never in "
               "production)\n",
               cmd_daemon_num(st, "test_clock_shift_ms") / 1000);
    }
    printf("playbooks   %.0f from %s (%.0f invalid)\n", cmd_daemon_num(st, "playbooks"),
           cmd_daemon_str(st, "playbook_dir"), cmd_daemon_num(st, "playbooks_invalid"));
    printf("queue       %.0f runs ready for CPU, %.0f runs in memory\n",
           cmd_daemon_num(st, "runs_ready"), cmd_daemon_num(st, "runs_in_memory"));
    printf("last commit %s\n", cmd_daemon_str(st, "last_commit"));
    if (cmd_daemon_num(st, "commits_failing") > 0 || cmd_daemon_num(st, "tenants_locked") > 0) {
        printf("degraded    %.0f tenant databases failing commits, %.0f locked\n",
               cmd_daemon_num(st, "commits_failing"), cmd_daemon_num(st, "tenants_locked"));
    }
    printf("tenants     %d\n", cJSON_GetArraySize(tenants));
    printf("  %-20s %8s %7s %7s %7s %8s %7s %9s%s\n", "TENANT", "ALERTS", "QUEUED", "RUNNING",
           "WAITING", "DONE", "FAILED", "CANCELLED", "");
    cJSON_ArrayForEach(e, tenants)
    {
        const cJSON *runs = cJSON_GetObjectItemCaseSensitive(e, "runs");
        const cJSON *locked = cJSON_GetObjectItemCaseSensitive(e, "locked");

        printf("  %-20s %8.0f %7.0f %7.0f %7.0f %8.0f %7.0f %9.0f%s\n", cmd_daemon_str(e, "id"),
               cmd_daemon_num(e, "alerts"), cmd_daemon_num(runs, "queued"),
               cmd_daemon_num(runs, "running"), cmd_daemon_num(runs, "waiting"),
               cmd_daemon_num(runs, "done"), cmd_daemon_num(runs, "failed"),
               cmd_daemon_num(runs, "cancelled"), cJSON_IsTrue(locked) ? "  (locked)" : "");
    }
}

static int
cmd_status_exec(int argc, char **argv)
{
    static const char help[] =
        "usage: kagari status [--json] [--config FILE]\n"
        "Ask the daemon serving the configuration's data folder (through its control\n"
        "socket, data/control.sock) how it is: state, pid, version, up since, listeners,\n"
        "playbooks, queue depth, last commit, and per tenant its alerts and runs by state.\n"
        "Exit status: 0 running, 3 not running, 1 when it cannot be asked.\n";
    struct cmd_daemon_opts o = { NULL, 0, 60 };
    struct config cfg;
    struct store *st = NULL;
    char *reply = NULL, *err = NULL;
    int code = 0;
    int r = cmd_daemon_ask(argc, argv, help, "status", &o, &cfg, &reply, &code);
    cJSON *v;

    if (r == -2) {
        return code;
    }
    if (r != 0) {
        code = r == 1 ? cmd_daemon_absent(&cfg, o.json) : 1;
        config_free(&cfg);
        return code;
    }
    v = cmd_daemon_parse(reply);
    free(reply);
    if (v == NULL) {
        config_free(&cfg);
        return 1;
    }
    if (store_open(cfg.data_dir, &st, &err) == 0) {
        struct cmd_daemon_counts dc = { cJSON_GetObjectItemCaseSensitive(v, "tenants") };

        (void)!cmd_each_tenant(st, NULL, cmd_daemon_count, &dc);
        store_close(st);
    } else {
        fprintf(stderr, "kagari: %s (runs by state not shown)\n", err);
        free(err);
    }
    if (o.json) {
        cmd_print_json(v);
    } else {
        cmd_daemon_print_status(v);
    }
    cJSON_Delete(v);
    config_free(&cfg);
    return 0;
}

static int
cmd_reload_exec(int argc, char **argv)
{
    static const char help[] =
        "usage: kagari reload [--config FILE]\n"
        "Make the running daemon read its configuration file again and apply the poll\n"
        "settings (tenants.<id>.microsoft.poll: intervals, streams, page size, overlap,\n"
        "backfill) to the running pollers, reload its playbook folder and pick up runs\n"
        "queued again by `kagari run retry`, as SIGHUP does; prints how many playbooks it\n"
        "serves now. A playbook file that no longer loads keeps its previous version\n"
        "serving, and a configuration file with an error changes nothing (see the log).\n"
        "Exit status: 0 reloaded, 3 not running, 1 otherwise.\n";
    struct cmd_daemon_opts o = { NULL, 0, 60 };
    struct config cfg;
    char *reply = NULL;
    int code = 0;
    int r = cmd_daemon_ask(argc, argv, help, "reload", &o, &cfg, &reply, &code);
    cJSON *v;

    if (r == -2) {
        return code;
    }
    if (r != 0) {
        code = r == 1 ? cmd_daemon_absent(&cfg, 0) : 1;
        config_free(&cfg);
        return code;
    }
    v = cmd_daemon_parse(reply);
    free(reply);
    code = 1;
    if (v != NULL && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(v, "config_error"))) {
        (void)cmd_fail("the configuration file was not applied (the settings in use stay): %s",
                       cJSON_GetObjectItemCaseSensitive(v, "config_error")->valuestring);
    }
    if (v != NULL && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "reloaded"))) {
        printf("reloaded: %.0f playbooks serving", cmd_daemon_num(v, "playbooks"));
        if (cmd_daemon_num(v, "invalid") > 0) {
            printf(", %.0f invalid (the daemon's log says why)", cmd_daemon_num(v, "invalid"));
        }
        printf("\n");
        code = cJSON_GetObjectItemCaseSensitive(v, "config_error") != NULL ? 1 : 0;
    } else if (v != NULL) {
        (void)cmd_fail("the playbook folder could not be read; the playbooks serving so far "
                       "stay (the daemon's log says why)");
    }
    cJSON_Delete(v);
    config_free(&cfg);
    return code;
}

/* 1 while process pid runs: it exists and is not a zombie (/proc/<pid>/stat). */
static int
cmd_daemon_alive(long pid)
{
    char path[64], text[256];
    FILE *f;
    size_t n;
    const char *close_paren;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if ((f = fopen(path, "re")) == NULL) {
        return 0;
    }
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    close_paren = strrchr(text, ')');
    return close_paren != NULL && close_paren[1] == ' ' && close_paren[2] != 'Z' &&
           close_paren[2] != 'X';
}

static int
cmd_stop_exec(int argc, char **argv)
{
    static const char help[] =
        "usage: kagari stop [--timeout SECONDS] [--config FILE]\n"
        "Stop the running daemon as SIGTERM does: intake stops accepting, the work in\n"
        "progress is committed, runs stay in the database and resume at the next start.\n"
        "Waits until the daemon has exited (default at most 60 s). Exit status: 0 stopped\n"
        "(or was not running), 1 when it is still running after the timeout.\n";
    struct cmd_daemon_opts o = { NULL, 0, 60 };
    struct config cfg;
    char *reply = NULL;
    int code = 0;
    int r = cmd_daemon_ask(argc, argv, help, "stop", &o, &cfg, &reply, &code);
    long pid = 0;
    int64_t deadline;
    cJSON *v;

    if (r == -2) {
        return code;
    }
    if (r != 0) {
        code = r == 1 ? cmd_daemon_absent(&cfg, 0) : 1;
        config_free(&cfg);
        return code == CMD_DAEMON_NOT_RUNNING ? 0 : code;
    }
    v = cmd_daemon_parse(reply);
    free(reply);
    if (v == NULL) {
        config_free(&cfg);
        return 1;
    }
    pid = (long)cmd_daemon_num(v, "pid");
    cJSON_Delete(v);
    /* The daemon lets go of the data folder's lock when its process ends. */
    deadline = util_now_ms() + (int64_t)(o.timeout * 1000);
    while (store_lock_probe(cfg.data_dir, &(long){ 0 }) == 1) {
        struct timespec ts = { 0, 20 * 1000000 };

        if (util_now_ms() >= deadline) {
            code = cmd_fail("the daemon (pid %ld) is still stopping after %.0f s", pid, o.timeout);
            config_free(&cfg);
            return code;
        }
        nanosleep(&ts, NULL);
    }
    /* The lock goes just before the process ends (its last clean-up may follow): wait
     * for the process too, until it is gone or a zombie (ended, not yet reaped). */
    while (pid > 0 && cmd_daemon_alive(pid) && util_now_ms() < deadline) {
        struct timespec ts = { 0, 10 * 1000000 };

        nanosleep(&ts, NULL);
    }
    printf("stopped (pid %ld)\n", pid);
    config_free(&cfg);
    return 0;
}

const struct cmd_entry cmd_status_entry = {
    .name = "status",
    .usage = "status",
    .summary = "how the running daemon is (no PID needed)",
    .exec = cmd_status_exec,
};

const struct cmd_entry cmd_reload_entry = {
    .name = "reload",
    .usage = "reload",
    .summary = "make the running daemon reload its playbooks",
    .exec = cmd_reload_exec,
};

const struct cmd_entry cmd_stop_entry = {
    .name = "stop",
    .usage = "stop",
    .summary = "stop the running daemon and wait for it to exit",
    .exec = cmd_stop_exec,
};
