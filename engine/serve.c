/* serve.c: the daemon: configuration, store, tenants, playbooks, sources, signals. */
#include "engine/serve.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "engine/admit.h"
#include "engine/api.h"
#include "engine/config.h"
#include "engine/control.h"
#include "engine/deploy.h"
#include "engine/env.h"
#include "engine/escalate.h"
#include "engine/events.h"
#include "engine/log.h"
#include "engine/loop.h"
#include "engine/plugin.h"
#include "engine/registry.h"
#include "engine/run.h"
#include "engine/secret.h"
#include "engine/store.h"
#include "engine/tenant.h"
#include "engine/testclock.h"

#define PLAYBOOK_LINT_MEMORY (64u << 20)

static const struct config *cfg;
static void **source_states; /* one per registered source, NULL when not started */
static size_t nsource_states;
static int64_t started_ms;    /* when serve.ready was logged */
static char *config_path_abs; /* the configuration file, for status */
static struct {
    size_t loaded, invalid; /* of the last load of the playbook folder */
} pb_count;
static struct api *people_api; /* the people's API listener, NULL when not configured */

/* A reload must not silently stop a playbook because its file now fails to load (a
 * half-saved edit): the version serving so far stays while its file exists. */
static void
keep_previous(struct playbook_set *set)
{
    const struct playbook_set *cur = run_playbooks();

    for (size_t i = 0; i < cur->n; i++) {
        struct playbook *old = cur->v[i];
        int present = 0;

        for (size_t j = 0; j < set->n && !present; j++) {
            present = (set->v[j]->file && old->file && strcmp(set->v[j]->file, old->file) == 0) ||
                      strcmp(set->v[j]->name, old->name) == 0;
        }
        if (present || old->file == NULL || access(old->file, F_OK) != 0) {
            continue;
        }
        set->v = xrealloc(set->v, (set->n + 1) * sizeof(*set->v));
        set->v[set->n++] = old;
        playbook_ref(old);
        log_warn("playbook.kept_previous name=%s version=%.12s file=%s", old->name, old->hash,
                 old->file);
    }
}

/* Load the playbook folder; broken files are logged and left out, the rest serve. */
static int
load_playbooks(void)
{
    char *err = NULL;
    struct sandbox *sb = env_sandbox_new(PLAYBOOK_LINT_MEMORY, &err);
    struct playbook_set set;
    char *errs = NULL;
    int rc = 0;

    if (sb == NULL) {
        log_err("playbooks.failed error=%s", log_quote(err ? err : "?"));
        free(err);
        return -1;
    }
    pb_count.invalid = 0;
    if (playbook_set_load_libs(sb, cfg->playbook_dir, cfg->playbook_lib_dir, &set, &errs) == -1) {
        log_err("playbooks.failed dir=%s error=%s", cfg->playbook_dir,
                log_quote(errs ? errs : "?"));
        rc = -1;
    } else {
        char *line = errs;

        while (line != NULL && *line != '\0') {
            char *nl = strchr(line, '\n');

            if (nl != NULL) {
                *nl = '\0';
            }
            log_err("playbook.invalid error=%s", log_quote(line));
            pb_count.invalid++;
            line = nl ? nl + 1 : NULL;
        }
        keep_previous(&set);
        for (size_t i = 0; i < set.n; i++) {
            struct buf libs;

            buf_init(&libs, 0);
            for (size_t k = 0; k < set.v[i]->nlibs; k++) {
                (void)!buf_printf(&libs, "%s%s", k ? "," : " libraries=", set.v[i]->libs[k].name);
            }
            log_info("playbook.loaded name=%s version=%.12s file=%s%s", set.v[i]->name,
                     set.v[i]->hash, set.v[i]->file, libs.len ? libs.data : "");
            buf_free(&libs);
        }
        log_info("playbooks.loaded count=%zu dir=%s", set.n, cfg->playbook_dir);
        pb_count.loaded = set.n;
        deploy_record_loaded(&set); /* who deployed what when: the portal's playbook view */
        run_set_playbooks(&set);
    }
    free(errs);
    sandbox_free(sb);
    return rc;
}

/* Start every registered source's listeners. */
static int
sources_start(const struct config *conf, char **errp)
{
    const struct source *const *sv;
    size_t n = plugin_sources(&sv);

    source_states = xcalloc(n + 1, sizeof(*source_states));
    nsource_states = n;
    for (size_t i = 0; i < n; i++) {
        if (sv[i]->start(conf, &source_states[i], errp) == -1) {
            return -1;
        }
    }
    return 0;
}

static void
sources_drain(void)
{
    const struct source *const *sv;

    plugin_sources(&sv);
    for (size_t i = 0; i < nsource_states; i++) {
        if (source_states[i] != NULL) {
            sv[i]->drain(source_states[i]);
        }
    }
}

static void
sources_stop(void)
{
    const struct source *const *sv;

    plugin_sources(&sv);
    for (size_t i = 0; i < nsource_states; i++) {
        if (source_states[i] != NULL) {
            sv[i]->stop(source_states[i]);
        }
    }
    free(source_states);
    source_states = NULL;
    nsource_states = 0;
}

/* Reload: the playbook folder again, and the runs queued again by `kagari run retry`.
 * SIGHUP and `kagari reload` both come here. Returns 0, or -1 when the folder could not
 * be read at all (the playbooks serving so far stay). */
static int
serve_reload(void)
{
    char *err = NULL;
    int rc;

    log_info("serve.reload");
    rc = load_playbooks();
    for (struct tenant *t = tenants_first(); t != NULL; t = t->next) {
        if (run_recover(t, &err) == -1) {
            log_err("serve.recover_failed tenant=%s error=%s", t->id, log_quote(err ? err : "?"));
            free(err);
            err = NULL;
        }
    }
    return rc;
}

/* A reload by the operator (SIGHUP, `kagari reload`): the configuration file read again,
 * what the sources can change while running applied (the pollers' settings), then the
 * playbooks as serve_reload. A file that no longer loads changes nothing (*cfg_err gets
 * why, malloc'd); the playbooks are reloaded all the same. The people's API deploys a
 * playbook with serve_reload alone. */
static int
serve_reload_all(char **cfg_err)
{
    const struct source *const *sv;
    const char *path = config_path_abs != NULL ? config_path_abs : cfg->path;
    struct config fresh;

    *cfg_err = NULL;
    if (config_load(path, &fresh, cfg_err) == -1) {
        log_err("serve.reload_config_failed file=%s error=%s (nothing of it applied)", path,
                log_quote(*cfg_err ? *cfg_err : "?"));
    } else {
        log_info("serve.reload_config file=%s", path);
        plugin_sources(&sv);
        for (size_t i = 0; i < nsource_states; i++) {
            if (sv[i]->reload != NULL) {
                sv[i]->reload(&source_states[i], &fresh);
            }
        }
        config_free(&fresh);
    }
    return serve_reload();
}

/* Stop: the listeners stop accepting, the iteration in progress completes and commits,
 * and serve_main shuts down (runs stay in the database and resume at the next start).
 * SIGTERM, SIGINT and `kagari stop` all come here. */
static void
serve_drain(const char *why) /* "signal=15", "by=control" */
{
    if (loop_stopping()) {
        return;
    }
    log_info("serve.draining %s ready=%zu active=%zu", why, run_ready_count(), run_active_count());
    sources_drain();
    api_stop_accepting(people_api);
    loop_stop();
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    char by[32];

    (void)what;
    (void)arg;
    if (sig == SIGHUP) {
        char *err = NULL;

        (void)serve_reload_all(&err);
        free(err);
        return;
    }
    snprintf(by, sizeof(by), "signal=%d", (int)sig);
    serve_drain(by);
}

static void
put_time(struct buf *b, const char *key, int64_t ms)
{
    char ts[32];

    if (ms <= 0) {
        (void)!buf_printf(b, ",\"%s\":null", key);
        return;
    }
    util_fmt_time(ms, ts);
    (void)!buf_printf(b, ",\"%s\":\"%s\"", key, ts);
}

static void
put_string(struct buf *b, const char *key, const char *v)
{
    (void)!buf_printf(b, ",\"%s\":", key);
    (void)!buf_json_string(b, v, strlen(v));
}

/* The control channel's status: what only the running daemon knows (runs in memory,
 * queue, commits, listeners). Counting runs by state in the databases is left to the
 * CLI, which reads them itself: the loop never scans a table for it. */
static void
serve_status(struct buf *b)
{
    const struct source *const *sv;
    struct buf where;

    (void)!buf_printf(b, "{\"state\":\"%s\",\"pid\":%ld", loop_stopping() ? "stopping" : "running",
                      (long)getpid());
    put_string(b, "version", KAGARI_VERSION);
    put_time(b, "up_since", started_ms);
    (void)!buf_printf(b, ",\"uptime_s\":%lld", (long long)((util_now_ms() - started_ms) / 1000));
    put_string(b, "config", config_path_abs ? config_path_abs : "");
    put_string(b, "data", cfg->data_dir);
    put_string(b, "playbook_dir", cfg->playbook_dir);
    (void)!buf_printf(b, ",\"playbooks\":%zu,\"playbooks_invalid\":%zu", pb_count.loaded,
                      pb_count.invalid);
    (void)!buf_puts(b, ",\"tenants\":[");
    for (struct tenant *t = tenants_first(); t != NULL; t = t->next) {
        (void)!buf_printf(b, "%s{\"id\":", t == tenants_first() ? "" : ",");
        (void)!buf_json_string(b, t->id, strlen(t->id));
        (void)!buf_printf(b, ",\"runs_in_memory\":%zu,\"locked\":%s}", t->nruns,
                          loop_locked(t->db) ? "true" : "false");
    }
    (void)!buf_printf(b, "],\"runs_ready\":%zu,\"runs_in_memory\":%zu", run_ready_count(),
                      run_active_count());
    put_time(b, "last_commit", loop_last_commit_ms());
    (void)!buf_printf(b, ",\"commits_failing\":%zu,\"tenants_locked\":%zu", loop_commits_failing(),
                      loop_tenants_locked());
    plugin_sources(&sv);
    buf_init(&where, 0);
    for (size_t i = 0; i < nsource_states; i++) {
        if (source_states[i] != NULL && sv[i]->describe != NULL) {
            sv[i]->describe(source_states[i], &where);
        }
    }
    if (people_api != NULL) {
        (void)!buf_printf(&where, " api=%s api_port=%d", api_conf(cfg)->listen,
                          api_port(people_api));
    }
    put_string(b, "listeners", where.data ? where.data + (where.data[0] == ' ') : "");
    if (testclock_on()) {
        (void)!buf_printf(b, ",\"test_clock_shift_ms\":%lld", (long long)util_clock_shift_ms());
    }
    {
        char *sock = xasprintf("%s/%s", cfg->data_dir, CONTROL_SOCKET);

        put_string(b, "control", sock);
        free(sock);
    }
    buf_free(&where);
    (void)!buf_puts(b, "}");
}

static void
on_control(const char *verb, struct buf *reply, void *arg)
{
    (void)arg;
    if (strcmp(verb, "status") == 0) {
        serve_status(reply);
    } else if (strncmp(verb, "clock", 5) == 0) {
        testclock_control(verb, reply);
    } else if (strncmp(verb, "stall", 5) == 0) {
        testclock_stall(verb, reply);
    } else if (strcmp(verb, "reload") == 0) {
        char *err = NULL;
        int rc = serve_reload_all(&err);

        (void)!buf_printf(reply, "{\"reloaded\":%s,\"playbooks\":%zu,\"invalid\":%zu",
                          rc == 0 ? "true" : "false", pb_count.loaded, pb_count.invalid);
        if (err != NULL) {
            put_string(reply, "config_error", err);
        }
        (void)!buf_puts(reply, "}");
        free(err);
    } else {
        (void)!buf_printf(reply, "{\"stopping\":true,\"pid\":%ld}", (long)getpid());
        serve_drain("by=control");
    }
}

int
serve_main(const char *config_path)
{
    struct config conf;
    struct store *st = NULL;
    struct event *sigs[3] = { NULL, NULL, NULL };
    static const int signums[3] = { SIGTERM, SIGINT, SIGHUP };
    struct run_limits lim;
    struct tenant_hooks hooks = { env_sandbox_new, run_tenant_close };
    struct control *ctl = NULL;
    char *err = NULL;
    int rc = 1;

    registry_init();
    if (config_load(config_path, &conf, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return 1;
    }
    cfg = &conf;
    log_set_level((enum log_level)conf.log.level);
    log_set_json(conf.log.json);
    signal(SIGPIPE, SIG_IGN);
    if (testclock_apply(&conf, 1, &err) == -1 || loop_init(&err) == -1 ||
        loop_sync_thread(&err) == -1 ||
        (access(conf.connectors.key_file, F_OK) == 0 &&
         secret_load_key(conf.connectors.key_file, &err) == -1) ||
        plugin_init(&conf, &err) == -1 || store_open(conf.data_dir, &st, &err) == -1 ||
        store_lock(st, &err) == -1 ||
        tenants_open(st, conf.runs.memory, &conf, &hooks, &err) == -1) {
        log_err("serve.failed error=%s", log_quote(err ? err : "?"));
        goto out;
    }
    if (load_playbooks() == -1) {
        goto out;
    }
    admit_init();
    events_start();
    if (escalate_start(&conf, &err) == -1 || sources_start(&conf, &err) == -1) {
        log_err("serve.failed error=%s", log_quote(err ? err : "?"));
        goto out;
    }
    if (api_start(&conf, st, &people_api, &err) == -1) {
        log_err("serve.failed error=%s", log_quote(err ? err : "?"));
        goto out;
    }
    api_set_reload(people_api, serve_reload); /* a playbook deployed by a person */
    lim.instructions = conf.runs.instructions;
    lim.timeout = conf.runs.timeout;
    lim.slice_ms = conf.runs.slice_ms;
    run_init(&lim);
    loop_set_commit_failed(run_tenant_reset, NULL);
    for (struct tenant *t = tenants_first(); t != NULL; t = t->next) {
        if (run_recover(t, &err) == -1) {
            log_err("serve.recover_failed tenant=%s error=%s", t->id, log_quote(err ? err : "?"));
            goto out;
        }
    }
    for (int i = 0; i < 3; i++) {
        sigs[i] = evsignal_new(loop_base(), signums[i], on_signal, NULL);
        evsignal_add(sigs[i], NULL);
    }
    /* Without it `kagari status|reload|stop` cannot reach us, but alerts are still
     * served: a warning, not a refusal to start. */
    ctl = control_start(loop_base(), conf.data_dir, on_control, NULL, &err);
    if (ctl == NULL) {
        log_warn("control.unavailable error=%s", log_quote(err ? err : "?"));
        free(err);
        err = NULL;
    }
    config_path_abs = realpath(config_path, NULL);
    started_ms = util_now_ms();
    {
        const struct source *const *sv;
        struct buf where;

        plugin_sources(&sv);
        buf_init(&where, 0);
        for (size_t i = 0; i < nsource_states; i++) {
            if (source_states[i] != NULL && sv[i]->describe != NULL) {
                sv[i]->describe(source_states[i], &where);
            }
        }
        if (people_api != NULL) {
            (void)!buf_printf(&where, " api=%s api_port=%d", api_conf(&conf)->listen,
                              api_port(people_api));
        }
        log_info("serve.ready%s data=%s pid=%ld control=%s", where.data ? where.data : "",
                 conf.data_dir, (long)getpid(), ctl != NULL ? CONTROL_SOCKET : "none");
        buf_free(&where);
    }
    rc = loop_run() == 0 ? 0 : 1;
    log_info("serve.stopped active=%zu", run_active_count());
out:
    free(err);
    control_free(ctl); /* first: a `kagari status` now says "not running" */
    free(config_path_abs);
    config_path_abs = NULL;
    for (int i = 0; i < 3; i++) {
        if (sigs[i] != NULL) {
            event_free(sigs[i]);
        }
    }
    admit_shutdown(); /* answers what was never stored, before the listeners go */
    sources_stop();
    events_stop();
    api_free(people_api);
    people_api = NULL;
    tenants_close(); /* frees the runs, which cancel their calls */
    escalate_stop();
    testclock_stop();
    plugin_shutdown();
    secret_shutdown();
    secret_unload_key();
    {
        struct playbook_set empty = { NULL, 0 };

        run_set_playbooks(&empty);
    }
    store_close(st);
    loop_free();
    config_free(&conf);
    return rc;
}
