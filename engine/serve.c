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

#define PLAYBOOK_LINT_MEMORY (64u << 20)

static const struct config *cfg;
static void **source_states; /* one per registered source, NULL when not started */
static size_t nsource_states;
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

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    (void)arg;
    if (sig == SIGHUP) {
        char *err = NULL;

        log_info("serve.reload");
        (void)load_playbooks();
        for (struct tenant *t = tenants_first(); t != NULL; t = t->next) {
            if (run_recover(t, &err) == -1) { /* runs queued again by `kagari run retry` */
                log_err("serve.recover_failed tenant=%s error=%s", t->id,
                        log_quote(err ? err : "?"));
                free(err);
                err = NULL;
            }
        }
        return;
    }
    log_info("serve.draining signal=%d ready=%zu active=%zu", (int)sig, run_ready_count(),
             run_active_count());
    sources_drain();
    api_stop_accepting(people_api);
    loop_stop();
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
    if (loop_init(&err) == -1 ||
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
        log_info("serve.ready%s data=%s pid=%ld", where.data ? where.data : "", conf.data_dir,
                 (long)getpid());
        buf_free(&where);
    }
    rc = loop_run() == 0 ? 0 : 1;
    log_info("serve.stopped active=%zu", run_active_count());
out:
    free(err);
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
