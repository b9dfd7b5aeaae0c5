/* main.c: the kagari command: init, serve, tenant, alert send, runs, run show,
 * playbook lint. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "engine/secret.h"
#include "engine/config.h"
#include "engine/env.h"
#include "engine/json.h"
#include "engine/log.h"
#include "engine/playbook.h"
#include "engine/registry.h"
#include "engine/serve.h"
#include "engine/store.h"

#define KAGARI_VERSION "0.1.0"
#define ALERT_FILE_MAX (64u << 20)

static const char *
default_config(void)
{
    const char *c = getenv("KAGARI_CONFIG");

    return c != NULL && *c != '\0' ? c : "kagari.conf.lua";
}

static int fail(const char *fmt, ...) KG_PRINTF(1, 2);

static int
fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "kagari: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

/* Parse options shared by every verb: --config and --help. Returns 0, 1 to show help,
 * or -1 on a bad option. long_opts must contain config and help. */
static int
parse_opts(int argc, char **argv, const struct option *long_opts, const char *short_opts,
           int (*each)(int c, const char *arg, void *ud), void *ud)
{
    int c;

    optind = 1;
    opterr = 1;
    while ((c = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1) {
        if (c == 'h') {
            return 1;
        }
        if (c == '?' || each(c, optarg, ud) == -1) {
            return -1;
        }
    }
    return 0;
}

static char *
new_token(void)
{
    unsigned char rnd[32];
    char hex[65];

    if (util_random(rnd, sizeof(rnd)) == -1) {
        return NULL;
    }
    util_hex(rnd, sizeof(rnd), hex);
    return xasprintf("kg_%s", hex);
}

static int
open_store(const char *config_path, struct config *cfg, struct store **st)
{
    char *err = NULL;

    if (config_load(config_path, cfg, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return -1;
    }
    if (store_open(cfg->data_dir, st, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        config_free(cfg);
        return -1;
    }
    return 0;
}

/* ---- init ---- */

struct init_opts {
    const char *config, *data, *playbooks, *listen, *tenant;
};

static int
init_opt(int c, const char *arg, void *ud)
{
    struct init_opts *o = ud;

    switch (c) {
    case 'c': o->config = arg; break;
    case 'd': o->data = arg; break;
    case 'p': o->playbooks = arg; break;
    case 'l': o->listen = arg; break;
    case 't': o->tenant = arg; break;
    default: return -1;
    }
    return 0;
}

static const char init_help[] =
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
cmd_init(int argc, char **argv)
{
    static const struct option lo[] = {
        { "config", required_argument, NULL, 'c' }, { "data", required_argument, NULL, 'd' },
        { "playbooks", required_argument, NULL, 'p' }, { "listen", required_argument, NULL, 'l' },
        { "tenant", required_argument, NULL, 't' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct init_opts o = { default_config(), "data", "playbooks", "127.0.0.1:8080", "demo" };
    struct config cfg;
    struct store *st = NULL;
    char *err = NULL, *token = NULL;
    char hash[65];
    int r = parse_opts(argc, argv, lo, "h", init_opt, &o);

    if (r != 0 || optind != argc) {
        fputs(init_help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    if (access(o.config, F_OK) == 0) {
        return fail("%s exists: already initialized (remove it to start over)", o.config);
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
            return fail("invalid tenant id \"%s\": lowercase letters, digits and '-', "
                        "1 to 63, not starting with '-'", o.tenant);
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
    token = new_token();
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

/* ---- serve ---- */

static int
config_opt(int c, const char *arg, void *ud)
{
    if (c != 'c') {
        return -1;
    }
    *(const char **)ud = arg;
    return 0;
}

static int
cmd_serve(int argc, char **argv)
{
    static const struct option lo[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static const char help[] =
        "usage: kagari serve [--config FILE]\n"
        "Run the engine: alert intake, playbook runs. SIGTERM/SIGINT drain and stop,\n"
        "SIGHUP reloads the playbooks. Logs go to stderr, one event per line.\n";
    const char *config = default_config();
    int r = parse_opts(argc, argv, lo, "h", config_opt, &config);

    if (r != 0 || optind != argc) {
        fputs(help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    return serve_main(config);
}

/* ---- tenant ---- */

struct tenant_opts {
    const char *config, *name;
};

static int
tenant_opt(int c, const char *arg, void *ud)
{
    struct tenant_opts *o = ud;

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
cmd_tenant(int argc, char **argv)
{
    static const struct option lo[] = {
        { "config", required_argument, NULL, 'c' }, { "name", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    static const char help[] =
        "usage: kagari tenant list [--config FILE]\n"
        "       kagari tenant add ID [--name NAME] [--config FILE]\n"
        "       kagari tenant token ID [--config FILE]\n"
        "add creates a tenant and prints its intake token; token issues a new token\n"
        "(the old one stops working at once). Tokens are stored only as digests.\n";
    struct tenant_opts o = { default_config(), NULL };
    struct config cfg;
    struct store *st;
    const char *sub, *id;
    char *err = NULL, *token = NULL;
    char hash[65];
    int rc = 1;
    int r = parse_opts(argc, argv, lo, "h", tenant_opt, &o);

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
    if (open_store(o.config, &cfg, &st) == -1) {
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
        token = new_token();
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

/* ---- alert send ---- */

struct send_opts {
    const char *config, *url, *token, *source, *cacert;
};

static int
send_opt(int c, const char *arg, void *ud)
{
    struct send_opts *o = ud;

    switch (c) {
    case 'c': o->config = arg; break;
    case 'u': o->url = arg; break;
    case 't': o->token = arg; break;
    case 's': o->source = arg; break;
    case 'a': o->cacert = arg; break;
    default: return -1;
    }
    return 0;
}

static size_t
collect(char *p, size_t size, size_t n, void *ud)
{
    if (buf_append(ud, p, size * n) == -1) {
        return 0;
    }
    return size * n;
}

static int
cmd_alert(int argc, char **argv)
{
    static const struct option lo[] = {
        { "config", required_argument, NULL, 'c' }, { "url", required_argument, NULL, 'u' },
        { "token", required_argument, NULL, 't' }, { "source", required_argument, NULL, 's' },
        { "cacert", required_argument, NULL, 'a' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static const char help[] =
        "usage: kagari alert send [--token TOKEN] [--url URL] [--source SOURCE] [--cacert PEM]\n"
        "                         [--config FILE] FILE|-\n"
        "POST the JSON in FILE (or standard input) to the intake: one alert, an array,\n"
        "or an Azure diagnostic {\"records\":[...]} envelope.\n"
        "  --token TOKEN   the tenant's intake token (default $KAGARI_TOKEN)\n"
        "  --url URL       intake URL (default from the configuration's intake.listen)\n"
        "  --source NAME   source for records that name none (?source=)\n"
        "  --cacert PEM    trust this CA for an HTTPS intake (default: the system's)\n"
        "  --config FILE   configuration giving the intake address (default\n"
        "                  $KAGARI_CONFIG or kagari.conf.lua)\n";
    struct send_opts o = { default_config(), NULL, getenv("KAGARI_TOKEN"), NULL, NULL };
    struct config cfg;
    int have_cfg = 0;
    char *body = NULL, *err = NULL, *url = NULL, *auth = NULL;
    size_t len = 0;
    CURL *curl = NULL;
    struct curl_slist *hdrs = NULL;
    struct buf resp;
    long code = 0;
    int rc = 1;
    int r = parse_opts(argc, argv, lo, "h", send_opt, &o);

    if (r != 0 || optind + 2 != argc || strcmp(argv[optind], "send") != 0) {
        fputs(help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    if (o.token == NULL) {
        return fail("%s", "no token: pass --token or set KAGARI_TOKEN");
    }
    if (o.url == NULL) {
        if (config_load(o.config, &cfg, &err) == -1) {
            fprintf(stderr, "kagari: %s (or pass --url)\n", err);
            free(err);
            return 1;
        }
        have_cfg = 1;
        url = xasprintf("%s://%s/api/v1/alerts", cfg.intake.tls_cert ? "https" : "http",
                        cfg.intake.listen);
    } else {
        url = xstrdup(o.url);
    }
    if (o.source != NULL) {
        char *u2 = xasprintf("%s?source=%s", url, o.source);

        free(url);
        url = u2;
    }
    body = util_read_file(strcmp(argv[optind + 1], "-") == 0 ? "/dev/stdin" : argv[optind + 1],
                          ALERT_FILE_MAX, &len, &err);
    if (body == NULL) {
        fprintf(stderr, "kagari: %s\n", err);
        goto out;
    }
    buf_init(&resp, 1 << 20);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    curl = curl_easy_init();
    auth = xasprintf("Authorization: Bearer %s", o.token);
    hdrs = curl_slist_append(hdrs, auth);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    if (o.cacert != NULL) {
        curl_easy_setopt(curl, CURLOPT_CAINFO, o.cacert);
    }
    if (curl_easy_perform(curl) != CURLE_OK) {
        fprintf(stderr, "kagari: cannot reach %s\n", url);
    } else {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
        printf("%ld %s\n", code, resp.data ? resp.data : "");
        rc = code >= 200 && code < 300 ? 0 : 1;
    }
    buf_free(&resp);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    curl_global_cleanup();
out:
    free(auth);
    free(body);
    free(err);
    free(url);
    if (have_cfg) {
        config_free(&cfg);
    }
    return rc;
}

/* ---- runs, run show ---- */

struct runs_opts {
    const char *config, *tenant, *state;
    int limit;
    int json;
    cJSON *out; /* the array or object being built with --json */
};

static int
runs_opt(int c, const char *arg, void *ud)
{
    struct runs_opts *o = ud;

    switch (c) {
    case 'c': o->config = arg; break;
    case 't': o->tenant = arg; break;
    case 's': o->state = arg; break;
    case 'n': o->limit = atoi(arg); break;
    case 'j': o->json = 1; break;
    default: return -1;
    }
    return 0;
}

static const struct option runs_lo[] = {
    { "config", required_argument, NULL, 'c' }, { "tenant", required_argument, NULL, 't' },
    { "state", required_argument, NULL, 's' },  { "limit", required_argument, NULL, 'n' },
    { "json", no_argument, NULL, 'j' },         { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* Call fn for the chosen tenant, or every tenant when none is chosen. */
static int
each_tenant(struct store *st, const char *only, int (*fn)(struct store_tenant *, void *),
            void *ud)
{
    struct store_tenant_info *list = NULL;
    size_t n = 0;
    char *err = NULL;
    int rc = 0, found = 0;

    if (store_tenant_list(st, &list, &n, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return -1;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct store_tenant *t;

        if (only != NULL && strcmp(only, list[i].id) != 0) {
            continue;
        }
        found = 1;
        {
            /* A tenant whose database the daemon has not created yet has no runs: do not
             * create it here (as another user, it would lock the daemon out). */
            char *path = xasprintf("%s/tenants/%s.db", store_data_dir(st), list[i].id);
            int exists = access(path, F_OK) == 0;

            free(path);
            if (!exists) {
                continue;
            }
        }
        if (store_tenant_open(st, list[i].id, &t, &err) == -1) {
            fprintf(stderr, "kagari: %s\n", err);
            free(err);
            rc = -1;
            break;
        }
        rc = fn(t, ud);
        store_tenant_close(t);
    }
    free(list);
    if (only != NULL && !found) {
        fprintf(stderr, "kagari: unknown tenant %s\n", only);
        return -1;
    }
    return rc;
}

static void
fmt_ms(int64_t ms, char *out)
{
    if (ms == 0) {
        snprintf(out, 32, "-");
    } else {
        util_fmt_time(ms, out);
    }
}

static void
json_time(cJSON *o, const char *k, int64_t ms)
{
    char ts[32];

    if (ms == 0) {
        cJSON_AddNullToObject(o, k);
        return;
    }
    util_fmt_time(ms, ts);
    cJSON_AddStringToObject(o, k, ts);
}

static cJSON *
run_json(struct store_tenant *t, const struct store_run *r)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "tenant", store_tenant_id(t));
    cJSON_AddNumberToObject(o, "id", (double)r->id);
    cJSON_AddNumberToObject(o, "alert_id", (double)r->alert_id);
    cJSON_AddStringToObject(o, "playbook", r->playbook);
    cJSON_AddStringToObject(o, "version", r->hash);
    cJSON_AddStringToObject(o, "state", r->state);
    json_time(o, "created", r->created_ms);
    json_time(o, "started", r->started_ms);
    json_time(o, "ended", r->ended_ms);
    if (r->error != NULL) {
        cJSON_AddStringToObject(o, "error", r->error);
    } else {
        cJSON_AddNullToObject(o, "error");
    }
    return o;
}

/* A journal text as JSON when it parses, else as a string. */
static void
json_text(cJSON *o, const char *k, const char *text)
{
    cJSON *v = text ? cJSON_Parse(text) : cJSON_CreateNull();

    cJSON_AddItemToObject(o, k, v ? v : cJSON_CreateString(text));
}

static void
print_json(cJSON *v)
{
    char *s = json_print(v);

    printf("%s\n", s);
    free(s);
}

static int
list_runs(struct store_tenant *t, void *ud)
{
    struct runs_opts *o = ud;
    struct store_run *runs = NULL;
    size_t n = 0;
    char *err = NULL;

    if (store_run_list(t, o->state, o->limit, &runs, &n, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return -1;
    }
    for (size_t i = 0; o->json && i < n; i++) {
        cJSON_AddItemToArray(o->out, run_json(t, &runs[i]));
    }
    for (size_t i = 0; !o->json && i < n; i++) {
        char created[32], dur[32];
        const char *e = runs[i].error ? runs[i].error : "";
        size_t elen = strcspn(e, "\n");

        fmt_ms(runs[i].created_ms, created);
        if (runs[i].ended_ms && runs[i].started_ms) {
            snprintf(dur, sizeof(dur), "%lldms", (long long)(runs[i].ended_ms - runs[i].started_ms));
        } else {
            snprintf(dur, sizeof(dur), "-");
        }
        printf("%-12s %-8lld %-9s %-28s %-8lld %-24s %-9s %.*s\n", store_tenant_id(t),
               (long long)runs[i].id, runs[i].state, runs[i].playbook, (long long)runs[i].alert_id,
               created, dur, (int)(elen > 80 ? 80 : elen), e);
    }
    store_runs_free(runs, n);
    return 0;
}

static int
cmd_runs(int argc, char **argv)
{
    static const char help[] =
        "usage: kagari runs [--tenant ID] [--state STATE] [--limit N] [--json] [--config FILE]\n"
        "List playbook runs, newest first (all tenants unless --tenant; N per tenant,\n"
        "default 50). STATE is queued, running, waiting, done, failed or cancelled.\n"
        "--json prints a JSON array of runs instead of a table.\n";
    struct runs_opts o = { default_config(), NULL, NULL, 50, 0, NULL };
    struct config cfg;
    struct store *st;
    int rc;
    int r = parse_opts(argc, argv, runs_lo, "h", runs_opt, &o);

    if (r != 0 || optind != argc) {
        fputs(help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    if (open_store(o.config, &cfg, &st) == -1) {
        return 1;
    }
    if (o.json) {
        o.out = cJSON_CreateArray();
    } else {
        printf("%-12s %-8s %-9s %-28s %-8s %-24s %-9s %s\n", "TENANT", "RUN", "STATE",
               "PLAYBOOK", "ALERT", "CREATED", "DURATION", "ERROR");
    }
    rc = each_tenant(st, o.tenant, list_runs, &o) == 0 ? 0 : 1;
    if (o.json) {
        if (rc == 0) {
            print_json(o.out);
        }
        cJSON_Delete(o.out);
    }
    store_close(st);
    config_free(&cfg);
    return rc;
}

struct show_ctx {
    int64_t id;
    int found;
    int json;
};

static int
show_run(struct store_tenant *t, void *ud)
{
    struct show_ctx *sc = ud;
    struct store_run run;
    struct journal_entry *j = NULL;
    size_t n = 0;
    char *err = NULL;
    char ts[32];
    int r = store_run_get(t, sc->id, &run, &err);

    if (r != 1) {
        if (r == -1) {
            fprintf(stderr, "kagari: %s\n", err);
        }
        free(err);
        return r == -1 ? -1 : 0;
    }
    sc->found = 1;
    if (sc->json) {
        cJSON *o = run_json(t, &run);
        cJSON *arr = cJSON_AddArrayToObject(o, "journal");

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
            json_text(e, "request", j[i].request);
            json_text(e, "result", j[i].result);
            json_time(e, "started", j[i].started_ms);
            json_time(e, "ended", j[i].ended_ms);
            cJSON_AddItemToArray(arr, e);
        }
        print_json(o);
        cJSON_Delete(o);
        journal_entries_free(j, n);
        store_run_free(&run);
        return 0;
    }
    printf("run       %lld (tenant %s)\n", (long long)run.id, store_tenant_id(t));
    printf("playbook  %s (version %.12s)\n", run.playbook, run.hash);
    printf("alert     %lld\n", (long long)run.alert_id);
    printf("state     %s\n", run.state);
    fmt_ms(run.created_ms, ts);
    printf("created   %s\n", ts);
    fmt_ms(run.started_ms, ts);
    printf("started   %s\n", ts);
    fmt_ms(run.ended_ms, ts);
    printf("ended     %s", ts);
    if (run.ended_ms && run.started_ms) {
        printf(" (%lld ms)", (long long)(run.ended_ms - run.started_ms));
    }
    printf("\n");
    if (run.error != NULL) {
        printf("error     %s\n", run.error);
    }
    if (store_journal_load(t, run.id, &j, &n, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        store_run_free(&run);
        return -1;
    }
    printf("journal   %zu step%s\n", n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++) {
        fmt_ms(j[i].started_ms, ts);
        printf("  #%-3d %-24s %-8s %s  %s", j[i].seq, j[i].kind, journal_status_name(j[i].status),
               ts, j[i].request);
        if (j[i].result != NULL) {
            printf(" -> %s", j[i].result);
        }
        if (j[i].ended_ms) {
            printf("  (%lld ms)", (long long)(j[i].ended_ms - j[i].started_ms));
        }
        printf("\n");
    }
    journal_entries_free(j, n);
    store_run_free(&run);
    return 0;
}

static int
cmd_run(int argc, char **argv)
{
    static const char help[] =
        "usage: kagari run show ID [--tenant ID] [--json] [--config FILE]\n"
        "Show one run: its playbook version, state, error and every journal step.\n"
        "Run ids are per tenant: without --tenant every tenant's run ID is shown.\n";
    struct runs_opts o = { default_config(), NULL, NULL, 0, 0, NULL };
    struct show_ctx sc = { 0, 0, 0 };
    struct config cfg;
    struct store *st;
    char *end;
    int rc;
    int r = parse_opts(argc, argv, runs_lo, "h", runs_opt, &o);

    if (r != 0 || optind + 2 != argc || strcmp(argv[optind], "show") != 0) {
        fputs(help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    sc.json = o.json;
    sc.id = strtoll(argv[optind + 1], &end, 10);
    if (*end != '\0' || sc.id <= 0) {
        return fail("not a run id: %s", argv[optind + 1]);
    }
    if (open_store(o.config, &cfg, &st) == -1) {
        return 1;
    }
    rc = each_tenant(st, o.tenant, show_run, &sc) == 0 ? 0 : 1;
    if (rc == 0 && !sc.found) {
        fprintf(stderr, "kagari: no run %lld\n", (long long)sc.id);
        rc = 1;
    }
    store_close(st);
    config_free(&cfg);
    return rc;
}

/* ---- playbook lint ---- */

static int
no_opt(int c, const char *arg, void *ud)
{
    (void)c;
    (void)arg;
    (void)ud;
    return -1;
}

static int
cmd_playbook(int argc, char **argv)
{
    static const struct option lo[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static const char help[] =
        "usage: kagari playbook lint FILE...\n"
        "Check that each file evaluates in the sandbox and returns a valid playbook{}.\n";
    struct sandbox *sb;
    char *err = NULL;
    int bad = 0;
    int r = parse_opts(argc, argv, lo, "h", no_opt, NULL);

    if (r != 0 || optind + 2 > argc || strcmp(argv[optind], "lint") != 0) {
        fputs(help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    sb = env_sandbox_new(64u << 20, &err);
    if (sb == NULL) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return 1;
    }
    for (int i = optind + 1; i < argc; i++) {
        size_t len = 0;
        char *src = util_read_file(argv[i], 1 << 20, &len, &err);
        struct playbook *pb = src ? playbook_parse(sb, argv[i], src, len, &err) : NULL;

        if (pb == NULL) {
            fprintf(stderr, "%s\n", err);
            bad++;
        } else {
            printf("%s: ok: playbook %s (version %.12s)\n", argv[i], pb->name, pb->hash);
        }
        playbook_unref(pb);
        free(src);
        free(err);
        err = NULL;
    }
    sandbox_free(sb);
    return bad ? 1 : 0;
}

/* ---- secret ---- */

static int
cmd_secret(int argc, char **argv)
{
    static const struct option lo[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static const char help[] =
        "usage: kagari secret encrypt [--config FILE] < secret.txt\n"
        "Encrypt a connector credential (read from standard input, so it stays out of\n"
        "shell history and the process list) with the configuration's key file, and print\n"
        "the \"enc:v1:...\" value to put in kagari.conf.lua (e.g. client_secret).\n";
    const char *config = default_config();
    struct config cfg;
    char *err = NULL, *plain, *enc;
    size_t len = 0;
    int r = parse_opts(argc, argv, lo, "h", config_opt, &config);

    if (r != 0 || optind + 1 != argc || strcmp(argv[optind], "encrypt") != 0) {
        fputs(help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    if (config_load(config, &cfg, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return 1;
    }
    if (secret_load_key(cfg.connectors.key_file, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        config_free(&cfg);
        return 1;
    }
    config_free(&cfg);
    plain = util_read_file("/dev/stdin", 64 * 1024, &len, &err);
    if (plain == NULL) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        secret_unload_key();
        return 1;
    }
    while (len > 0 && (plain[len - 1] == '\n' || plain[len - 1] == '\r')) {
        plain[--len] = '\0';
    }
    if (len == 0 || strlen(plain) != len) {
        secret_free(plain);
        secret_unload_key();
        return fail("%s", "expected one secret on standard input");
    }
    enc = secret_encrypt(plain, &err);
    secret_free(plain);
    secret_unload_key();
    if (enc == NULL) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return 1;
    }
    printf("%s\n", enc);
    free(enc);
    return 0;
}

static const char usage[] =
    "usage: kagari VERB [options]   (kagari VERB --help for each)\n"
    "  init            write a configuration, data folder and first tenant\n"
    "  serve           run the engine\n"
    "  tenant          list, add tenants, issue intake tokens\n"
    "  alert send      post alerts to the intake\n"
    "  runs            list playbook runs\n"
    "  run show ID     one run with its journal\n"
    "  playbook lint   check playbook files\n"
    "  secret encrypt  encrypt a connector credential for the configuration\n"
    "  version         print the version\n";

int
main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } verbs[] = {
        { "init", cmd_init },   { "serve", cmd_serve }, { "tenant", cmd_tenant },
        { "alert", cmd_alert }, { "runs", cmd_runs },   { "run", cmd_run },
        { "playbook", cmd_playbook }, { "secret", cmd_secret },
    };

    registry_init();

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("kagari %s\n", KAGARI_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (strcmp(argv[1], verbs[i].name) == 0) {
            return verbs[i].fn(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "kagari: unknown verb '%s'\n%s", argv[1], usage);
    return 2;
}
