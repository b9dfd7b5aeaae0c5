/* serve.c: the daemon: configuration, store, tenants, playbooks, intake, signals. */
#include "engine/serve.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "engine/config.h"
#include "engine/connectors.h"
#include "engine/intake.h"
#include "engine/log.h"
#include "engine/loop.h"
#include "engine/run.h"
#include "engine/store.h"
#include "engine/tenant.h"

#define PLAYBOOK_LINT_MEMORY (64u << 20)

static struct intake *intake;
static const struct config *cfg;

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
    struct sandbox *sb = run_sandbox_new(PLAYBOOK_LINT_MEMORY, &err);
    struct playbook_set set;
    char *errs = NULL;
    int rc = 0;

    if (sb == NULL) {
        log_err("playbooks.failed error=%s", log_quote(err ? err : "?"));
        free(err);
        return -1;
    }
    if (playbook_set_load(sb, cfg->playbook_dir, &set, &errs) == -1) {
        log_err("playbooks.failed dir=%s error=%s", cfg->playbook_dir, log_quote(errs ? errs : "?"));
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
            log_info("playbook.loaded name=%s version=%.12s file=%s", set.v[i]->name,
                     set.v[i]->hash, set.v[i]->file);
        }
        log_info("playbooks.loaded count=%zu dir=%s", set.n, cfg->playbook_dir);
        run_set_playbooks(&set);
    }
    free(errs);
    sandbox_free(sb);
    return rc;
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    (void)arg;
    if (sig == SIGHUP) {
        log_info("serve.reload");
        (void)load_playbooks();
        return;
    }
    log_info("serve.draining signal=%d ready=%zu active=%zu", (int)sig, run_ready_count(),
             run_active_count());
    intake_stop_accepting(intake);
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
    char *err = NULL;
    int rc = 1;

    if (config_load(config_path, &conf, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return 1;
    }
    cfg = &conf;
    log_set_level((enum log_level)conf.log.level);
    log_set_json(conf.log.json);
    signal(SIGPIPE, SIG_IGN);
    if (loop_init(&err) == -1 || connectors_init(&conf, &err) == -1 ||
        store_open(conf.data_dir, &st, &err) == -1 || store_lock(st, &err) == -1 ||
        tenants_open(st, conf.runs.memory, &conf, &err) == -1) {
        log_err("serve.failed error=%s", log_quote(err ? err : "?"));
        goto out;
    }
    if (load_playbooks() == -1) {
        goto out;
    }
    intake = intake_new(&conf, &err); /* its phase runs first: new runs start at once */
    if (intake == NULL) {
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
    log_info("serve.ready intake=%s port=%d data=%s pid=%ld", conf.intake.listen,
             intake_port(intake), conf.data_dir, (long)getpid());
    rc = loop_run() == 0 ? 0 : 1;
    log_info("serve.stopped active=%zu", run_active_count());
out:
    free(err);
    for (int i = 0; i < 3; i++) {
        if (sigs[i] != NULL) {
            event_free(sigs[i]);
        }
    }
    intake_free(intake);
    intake = NULL;
    tenants_close(); /* frees the runs, which cancel their calls */
    connectors_shutdown();
    {
        struct playbook_set empty = { NULL, 0 };

        run_set_playbooks(&empty);
    }
    store_close(st);
    loop_free();
    config_free(&conf);
    return rc;
}
