/* tenant.c: opening tenants and finding them by intake token. */
#include "engine/tenant.h"

#include <stdlib.h>
#include <string.h>

#include "engine/kagari.h"
#include "engine/log.h"
#include "engine/loop.h"
#include "engine/metrics.h"

static struct store *control;
static struct tenant *tenants;
static size_t tenant_memory_cap;
static const struct config *config;
static struct tenant_hooks hooks;

/* Close the connector states of t, last opened first. */
static void
plugins_close(struct tenant *t)
{
    while (t->nplugins > 0) {
        struct tenant_plugin *p = &t->plugins[--t->nplugins];

        if (p->state != NULL && p->c->tenant_close != NULL) {
            p->c->tenant_close(p->state);
        }
    }
    free(t->plugins);
    t->plugins = NULL;
}

/* Open a state for every settings section t has, once per section: the connectors of
 * one vendor account share it. */
static int
plugins_open(struct tenant *t, char **errp)
{
    const struct connector *const *cv;
    size_t n = plugin_connectors(&cv);

    t->plugins = xcalloc(n + 1, sizeof(*t->plugins));
    for (size_t i = 0; i < n; i++) {
        const void *conf = cv[i]->config ? config_tenant_block(t->cfg, cv[i]->config) : NULL;
        int seen = 0;

        if (conf == NULL || cv[i]->tenant_open == NULL) {
            continue;
        }
        for (size_t k = 0; k < t->nplugins; k++) {
            seen |= t->plugins[k].c->config == cv[i]->config;
        }
        if (seen) {
            continue;
        }
        t->plugins[t->nplugins].c = cv[i];
        if (cv[i]->tenant_open(conf, &t->plugins[t->nplugins].state, errp) == -1) {
            plugins_close(t);
            return -1;
        }
        t->nplugins++;
    }
    return 0;
}

const char *
tenant_id(const struct tenant *t)
{
    return t->id;
}

int
tenant_dry_run(const struct tenant *t)
{
    return t->cfg != NULL && t->cfg->dry_run;
}

const void *
tenant_conf(const struct tenant *t, const struct config_section *s)
{
    return s != NULL ? config_tenant_block(t->cfg, s) : NULL;
}

void *
tenant_state(const struct tenant *t, const struct config_section *s)
{
    for (size_t i = 0; s != NULL && i < t->nplugins; i++) {
        if (t->plugins[i].c->config == s) {
            return t->plugins[i].state;
        }
    }
    return NULL;
}

int
tenant_list_put(struct tenant *t, const char *list, const char *value, int64_t expires_ms,
                char **errp)
{
    if (loop_write_lazy(t->db, errp) == -1) {
        return -1;
    }
    return store_list_put(t->db, list, value, expires_ms, errp);
}

int
tenant_list_del(struct tenant *t, const char *list, const char *value, char **errp)
{
    if (loop_write_lazy(t->db, errp) == -1) {
        return -1;
    }
    return store_list_del(t->db, list, value, errp);
}

int
tenant_list_text(struct tenant *t, const char *list, struct buf *out, char **errp)
{
    return store_list_text(t->db, list, out, errp);
}

int
tenant_mark_get(struct tenant *t, const char *source, const char *key, char **value, char **errp)
{
    return store_mark_get(t->db, source, key, value, errp);
}

int
tenant_mark_prune(struct tenant *t, const char *source, int64_t before_ms, int *deleted,
                  char **errp)
{
    *deleted = 0;
    if (loop_write_lazy(t->db, errp) == -1) {
        return -1;
    }
    return store_mark_prune(t->db, source, before_ms, deleted, errp);
}

/* ---- settings edited in the portal (the store's tenant_settings) ---- */

#define TENANT_SEEDS 8
static struct {
    const char *key;
    tenant_setting_seed_fn fn;
} seeds[TENANT_SEEDS];

char *
tenant_setting(struct tenant *t, const char *key)
{
    char *v = NULL, *err = NULL;

    if (t->db == NULL || store_setting_get(t->db, key, &v, NULL, NULL, &err) == -1) {
        log_warn("tenant.setting_unreadable tenant=%s key=%s error=%s", t->id, key,
                 log_quote(err ? err : "no database"));
        free(err);
        return NULL;
    }
    return v;
}

void
tenant_setting_seed(const char *key, tenant_setting_seed_fn fn)
{
    for (size_t i = 0; i < TENANT_SEEDS; i++) {
        if (seeds[i].key == NULL || strcmp(seeds[i].key, key) == 0) {
            seeds[i].key = key;
            seeds[i].fn = fn;
            return;
        }
    }
    abort(); /* more keys than TENANT_SEEDS: a build-time mistake */
}

char *
tenant_setting_default(struct tenant *t, const char *key)
{
    for (size_t i = 0; i < TENANT_SEEDS && seeds[i].key != NULL; i++) {
        if (strcmp(seeds[i].key, key) == 0) {
            return seeds[i].fn(t);
        }
    }
    return NULL;
}

/* Summed: the metrics endpoint is reachable by every sender, so no tenant names. */
static void
tenant_metrics(struct buf *b, void *arg)
{
    size_t mem = 0;
    int n = 0;
    uint64_t wal_bytes = 0;
    int64_t behind = 0, age_ms = 0, now = util_now_ms();
    unsigned long long unsynced = 0, synced_after = 0, restarts = 0, restart_us = 0;

    (void)arg;
    for (struct tenant *t = tenants; t != NULL; t = t->next) {
        struct store_wal w;
        unsigned long long u, sa;

        store_tx_sync_counts(t->db, &u, &sa);
        unsynced += u;
        synced_after += sa;
        mem += sandbox_memory(t->sb);
        n++;
        store_tenant_wal(t->db, &w);
        wal_bytes += w.bytes;
        behind += w.frames_behind;
        restarts += w.restarts;
        restart_us += w.restart_us;
        if (w.complete_ms > 0 && now - w.complete_ms > age_ms) {
            age_ms = now - w.complete_ms;
        }
    }
    metrics_gauge(b, "kagari_lua_memory_bytes", NULL, (double)mem);
    metrics_gauge(b, "kagari_tenants", NULL, n);
    metrics_gauge(b, "kagari_store_wal_bytes", "size of the tenants' WAL files, summed",
                  (double)wal_bytes);
    metrics_gauge(b, "kagari_store_wal_frames_behind",
                  "WAL frames not yet checkpointed into the databases, summed", (double)behind);
    metrics_gauge(b, "kagari_store_checkpoint_age_seconds",
                  "longest time since a tenant database's last complete checkpoint",
                  (double)age_ms / 1000.0);
    metrics_counter(b, "kagari_store_wal_restarts_total",
                    "checkpoints the loop finished so that a busy WAL began over at its start",
                    restarts);
    metrics_seconds(b, "kagari_store_wal_restart_seconds_total",
                    "time the loop spent in those checkpoints", restart_us);
    metrics_counter(b, "kagari_commits_unsynced_total",
                    "commits of events alone that did not wait for the disk (synced by the "
                    "next synced commit or checkpoint)",
                    unsynced);
    metrics_counter(b, "kagari_commits_synced_after_total",
                    "transactions begun unsynced that a writer needing durability joined: the "
                    "WAL synced after the commit",
                    synced_after);
}

static struct tenant *
tenant_open(const char *id, char **errp)
{
    struct tenant *t = xcalloc(1, sizeof(*t));

    snprintf(t->id, sizeof(t->id), "%s", id);
    if (store_tenant_open(control, id, &t->db, errp) == -1) {
        free(t);
        return NULL;
    }
    /* The loop must not wait for a lock another process holds (loop.h LOOP_BUSY_MS). */
    store_tenant_busy_ms(t->db, LOOP_BUSY_MS);
    if (store_tenant_checkpointer(t->db, 5000, config != NULL ? config->store.wal_warn : 0, errp) ==
        -1) {
        store_tenant_close(t->db);
        free(t);
        return NULL;
    }
    t->cfg = config != NULL ? config_tenant(config, id) : NULL;
    if (plugins_open(t, errp) == -1) {
        store_tenant_close(t->db);
        free(t);
        return NULL;
    }
    t->sb = hooks.sandbox_new(tenant_memory_cap, errp);
    if (t->sb == NULL) {
        plugins_close(t);
        store_tenant_close(t->db);
        free(t);
        return NULL;
    }
    t->next = tenants;
    tenants = t;
    log_info("tenant.open tenant=%s", id);
    return t;
}

int
tenants_open(struct store *st, size_t memory_cap, const struct config *cfg,
             const struct tenant_hooks *h, char **errp)
{
    struct store_tenant_info *list = NULL;
    size_t n = 0;

    control = st;
    config = cfg;
    hooks = *h;
    metrics_add(tenant_metrics, NULL);
    tenant_memory_cap = memory_cap;
    if (store_tenant_list(st, &list, &n, errp) == -1) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (tenant_open(list[i].id, errp) == NULL) {
            free(list);
            return -1;
        }
    }
    free(list);
    return 0;
}

void
tenants_close(void)
{
    while (tenants != NULL) {
        struct tenant *t = tenants;

        tenants = t->next;
        if (hooks.closing != NULL) {
            hooks.closing(t);
        }
        for (size_t i = 0; i < t->nversions; i++) {
            playbook_unref(t->versions[i]);
        }
        free(t->versions);
        sandbox_free(t->sb);
        plugins_close(t);
        store_tenant_close(t->db);
        free(t);
    }
}

struct tenant *
tenants_first(void)
{
    return tenants;
}

struct tenant *
tenant_find(const char *id)
{
    for (struct tenant *t = tenants; t != NULL; t = t->next) {
        if (strcmp(t->id, id) == 0) {
            return t;
        }
    }
    return NULL;
}

void
tenant_audit(const struct tenant *t, const char *actor, const char *action, const char *target,
             const char *outcome, const char *detail)
{
    struct store_audit a;
    char *err = NULL;

    memset(&a, 0, sizeof(a));
    a.time = util_now_ms();
    a.tenant = (char *)t->id;
    a.actor = (char *)actor;
    a.action = (char *)action;
    a.target = (char *)target;
    a.outcome = (char *)outcome;
    a.detail = (char *)detail;
    if (control == NULL || store_audit_add(control, &a, &err) == -1) {
        log_err("tenant.audit_failed tenant=%s action=%s error=%s", t->id, action,
                log_quote(err ? err : "no control database"));
        free(err);
    }
}

struct tenant_audit_row {
    const struct tenant *t;
    char *actor, *action, *target, *outcome, *detail;
};

static void
tenant_audit_write(void *arg, int ok)
{
    struct tenant_audit_row *a = arg;

    if (ok) {
        tenant_audit(a->t, a->actor, a->action, a->target, a->outcome, a->detail);
    }
    free(a->actor);
    free(a->action);
    free(a->target);
    free(a->outcome);
    free(a->detail);
    free(a);
}

void
tenant_audit_committed(const struct tenant *t, const char *actor, const char *action,
                       const char *target, const char *outcome, const char *detail)
{
    struct tenant_audit_row *a = xcalloc(1, sizeof(*a));
    char *err = NULL;

    a->t = t;
    a->actor = actor ? xstrdup(actor) : NULL;
    a->action = xstrdup(action);
    a->target = target ? xstrdup(target) : NULL;
    a->outcome = xstrdup(outcome);
    a->detail = detail ? xstrdup(detail) : NULL;
    if (loop_write(t->db, &err) == -1) {
        free(err);
        tenant_audit_write(a, 1); /* nothing to wait for: the row at once */
        return;
    }
    loop_after_commit(t->db, tenant_audit_write, a);
}

struct tenant *
tenant_for_token(const char *token)
{
    char hash[65];
    char id[64];
    struct tenant *t;
    char *err = NULL;

    util_sha256_hex(token, strlen(token), hash);
    if (store_tenant_find_token(control, hash, id, sizeof(id)) != 1) {
        return NULL;
    }
    t = tenant_find(id);
    if (t == NULL) {
        t = tenant_open(id, &err);
        if (t == NULL) {
            log_err("tenant.open_failed tenant=%s error=%s", id, log_quote(err ? err : "?"));
            free(err);
        }
    }
    return t;
}

int
tenant_save_version(struct tenant *t, struct playbook *pb, char **errp)
{
    if (tenant_version(t, pb->hash) != NULL) {
        return 0;
    }
    if (loop_write(t->db, errp) == -1 ||
        store_playbook_put(t->db, pb->hash, pb->name, pb->source, pb->len, errp) == -1) {
        return -1;
    }
    for (size_t i = 0; i < pb->nlibs; i++) {
        if (store_playbook_lib_put(t->db, pb->hash, pb->libs[i].name, pb->libs[i].source,
                                   pb->libs[i].len, errp) == -1) {
            return -1;
        }
    }
    t->versions = xrealloc(t->versions, (t->nversions + 1) * sizeof(*t->versions));
    t->versions[t->nversions++] = pb;
    playbook_ref(pb);
    return 0;
}

struct playbook *
tenant_version(struct tenant *t, const char *hash)
{
    size_t len = 0;
    char *name = NULL;
    char *src;
    struct playbook *pb;

    for (size_t i = 0; i < t->nversions; i++) {
        if (strcmp(t->versions[i]->hash, hash) == 0) {
            return t->versions[i];
        }
    }
    src = store_playbook_get(t->db, hash, &len, &name);
    if (src == NULL) {
        return NULL;
    }
    /* Evaluate the stored text again: a run resumed after a restart must keep its
     * version's options (dry_run, timeout, instructions), not just its code. */
    {
        char *err = NULL;
        /* as much room as loading the folder has: the version's libraries are evaluated */
        struct sandbox *sb = hooks.sandbox_new(64u << 20, &err);
        struct store_lib *sl = NULL;
        struct playbook_lib *libs = NULL;
        size_t nl = 0;

        /* Its libraries as they were when the version was made, never the files now. */
        pb = NULL;
        if (sb != NULL && store_playbook_libs_get(t->db, hash, &sl, &nl, &err) == 0) {
            libs = xcalloc(nl ? nl : 1, sizeof(*libs));
            for (size_t i = 0; i < nl; i++) {
                libs[i].name = sl[i].name;
                libs[i].source = sl[i].source;
                libs[i].len = sl[i].len;
            }
            pb = playbook_parse_libs(sb, name ? name : "?", src, len, libs, nl, &err);
        }
        free(libs);
        store_libs_free(sl, nl);
        sandbox_free(sb);
        if (pb == NULL) {
            log_err("tenant.version_unreadable tenant=%s hash=%s error=%s", t->id, hash,
                    log_quote(err ? err : "?"));
        }
        free(err);
    }
    free(src);
    free(name);
    if (pb == NULL) {
        return NULL;
    }
    if (strcmp(pb->hash, hash) != 0) {
        log_err("tenant.version_mismatch tenant=%s hash=%s", t->id, hash);
        playbook_unref(pb);
        return NULL;
    }
    t->versions = xrealloc(t->versions, (t->nversions + 1) * sizeof(*t->versions));
    t->versions[t->nversions++] = pb;
    return pb;
}
