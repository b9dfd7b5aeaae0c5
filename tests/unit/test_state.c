/* test_state.c: the storage under the playbooks' memory and alerts.recent, on real
 * SQLite files: key-value entries with expiry and bounded pruning, the observable index
 * kept by triggers (and filled for alerts stored before it existed), and the filters of
 * the recent-alerts query. The Lua side is tested through playbooks in tests/lua. */
#include "engine/state.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/alert.h"
#include "engine/store.h"
#include "engine/util.h"
#include "tests/unit/test.h"

static char dir[64];
static struct store *st;

static struct store_tenant *
setup(const char *tenant)
{
    struct store_tenant *t = NULL;
    char *err = NULL;

    if (st == NULL) {
        snprintf(dir, sizeof(dir), "/tmp/kagari-state-XXXXXX");
        T_ASSERT(mkdtemp(dir) != NULL);
        T_ASSERT(store_open(dir, &st, &err) == 0);
    }
    T_ASSERT(store_tenant_add(st, tenant, tenant, NULL, &err) == 0);
    T_ASSERT(store_tenant_open(st, tenant, &t, &err) == 0);
    free(err);
    return t;
}

static void
teardown(void)
{
    store_close(st);
    st = NULL;
    test_rm_tree(dir);
}

static char *
get(struct store_tenant *t, const char *key, int64_t now)
{
    char *v = NULL;
    int64_t exp;

    T_ASSERT(store_kv_get(t, key, now, &v, &exp, NULL) >= 0);
    return v;
}

static void
test_kv(void)
{
    struct store_tenant *t = setup("kv");
    char *v, *err = NULL;

    T_REQUIRE(t != NULL);
    T_ASSERT(store_tx_begin(t, &err) == 0);
    T_ASSERT(store_kv_put(t, "a", "1", 0, 1000, &err) == 0);
    T_ASSERT(store_kv_put(t, "b", "\"x\"", 5000, 1000, &err) == 0);
    T_ASSERT(store_kv_put(t, "a", "{\"n\":2}", 0, 1500, &err) == 0); /* replaces */
    T_ASSERT(store_tx_commit(t, &err) == 0);
    v = get(t, "a", 2000);
    T_EQ_STR(v, "{\"n\":2}");
    free(v);
    v = get(t, "b", 4999);
    T_EQ_STR(v, "\"x\"");
    free(v);
    T_ASSERT(get(t, "b", 5000) == NULL); /* expired at its time */
    T_ASSERT(get(t, "nope", 0) == NULL);
    T_ASSERT(store_tx_begin(t, &err) == 0);
    T_EQ_INT(store_kv_delete(t, "a", &err), 1);
    T_EQ_INT(store_kv_delete(t, "a", &err), 0);
    T_ASSERT(store_tx_commit(t, &err) == 0);
    T_ASSERT(get(t, "a", 2000) == NULL);
    free(err);
    store_tenant_close(t);
    teardown();
}

/* Pruning deletes only expired entries, oldest expiry first, at most max per call. */
static void
test_prune_bounded(void)
{
    struct store_tenant *t = setup("prune");
    char *err = NULL;
    char key[32];

    T_REQUIRE(t != NULL);
    T_ASSERT(store_tx_begin(t, &err) == 0);
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        T_ASSERT(store_kv_put(t, key, "1", i < 70 ? 1000 + i : 0, 1, &err) == 0);
    }
    T_EQ_INT(store_kv_prune(t, 2000, STATE_PRUNE_BATCH, &err), STATE_PRUNE_BATCH);
    T_EQ_INT(store_kv_prune(t, 2000, STATE_PRUNE_BATCH, &err), STATE_PRUNE_BATCH);
    T_EQ_INT(store_kv_prune(t, 2000, STATE_PRUNE_BATCH, &err), 70 - 2 * STATE_PRUNE_BATCH);
    T_EQ_INT(store_kv_prune(t, 2000, STATE_PRUNE_BATCH, &err), 0);
    T_ASSERT(store_tx_commit(t, &err) == 0);
    for (int i = 0; i < 100; i++) {
        char *v;

        snprintf(key, sizeof(key), "k%d", i);
        v = get(t, key, 0);
        T_ASSERT((v != NULL) == (i >= 70));
        free(v);
    }
    free(err);
    store_tenant_close(t);
    teardown();
}

static void
add_alert(struct store_tenant *t, const char *source, const char *sid, int64_t received,
          const char *type, const char *value)
{
    struct alert a;
    int dup = 0;
    char *err = NULL;

    memset(&a, 0, sizeof(a));
    a.source = xstrdup(source);
    a.source_id = xstrdup(sid);
    a.title = xstrdup(sid);
    a.outcome = xstrdup("unknown");
    a.time_ms = a.received_ms = received;
    alert_add_observable(&a, type, value, NULL);
    alert_add_observable(&a, "ip", "192.0.2.1", "source");
    T_ASSERT(store_tx_begin(t, &err) == 0);
    T_ASSERT(store_alert_insert(t, &a, &dup, &err) == 0);
    T_ASSERT(store_tx_commit(t, &err) == 0);
    free(err);
    alert_free(&a);
}

/* The titles (source ids) of the query's answer, comma-separated. */
static char *
recent(struct store_tenant *t, const char *value, const char *type, const char *source,
       int64_t since, int64_t exclude, int limit)
{
    struct store_recent q = { value, type, source, since, exclude, limit };
    struct alert *v = NULL;
    size_t n = 0;
    struct buf b;

    buf_init(&b, 0);
    T_ASSERT(store_alert_recent(t, &q, &v, &n, NULL) == 0);
    for (size_t i = 0; i < n; i++) {
        (void)!buf_printf(&b, "%s%s", i ? "," : "", v[i].source_id);
        T_EQ_INT(v[i].nobs, 2);
        T_ASSERT(v[i].raw == NULL);
        alert_free(&v[i]);
    }
    free(v);
    (void)!buf_puts(&b, "");
    return buf_take(&b);
}

#define T_RECENT(expect, ...)                                                                      \
    do {                                                                                           \
        char *got_ = recent(__VA_ARGS__);                                                          \
        T_EQ_STR(got_, expect);                                                                    \
        free(got_);                                                                                \
    } while (0)

static void
test_recent(void)
{
    struct store_tenant *t = setup("recent"), *o = setup("other");

    T_REQUIRE(t != NULL && o != NULL);
    add_alert(t, "s1", "a1", 1000, "user", "alice");
    add_alert(t, "s2", "a2", 2000, "email", "alice");
    add_alert(t, "s1", "b1", 3000, "user", "bob");
    add_alert(t, "s1", "a3", 4000, "user", "alice");
    add_alert(o, "s1", "x1", 3500, "user", "alice");
    T_RECENT("a3,a2,a1", t, "alice", NULL, NULL, 0, 0, 10);
    T_RECENT("a3,a1", t, "alice", "user", NULL, 0, 0, 10);
    T_RECENT("a2", t, "alice", NULL, "s2", 0, 0, 10);
    T_RECENT("a3,a2", t, "alice", NULL, NULL, 2000, 0, 10);
    T_RECENT("a3", t, "alice", NULL, NULL, 0, 0, 1);
    T_RECENT("a2,a1", t, "alice", NULL, NULL, 0, 4, 10); /* the run's own alert left out */
    T_RECENT("", t, "ALICE", NULL, NULL, 0, 0, 10);      /* exact values */
    T_RECENT("", t, "alic%", NULL, NULL, 0, 0, 10);      /* no patterns */
    T_RECENT("x1", o, "alice", NULL, NULL, 0, 0, 10);    /* each tenant its own */
    store_tenant_close(t);
    store_tenant_close(o);
    teardown();
}

/* Alerts stored before the observable index existed are indexed by its migration. */
static void
test_index_filled_by_migration(void)
{
    struct store_tenant *t = setup("old");
    sqlite3 *db;
    char *path, *err = NULL;

    T_REQUIRE(t != NULL);
    add_alert(t, "s1", "old1", 1000, "user", "carol");
    add_alert(t, "s1", "old2", 2000, "host", "pc-1");
    store_tenant_close(t);
    /* Back to the schema before the index (2), as a database of the previous release:
     * the objects of the index's migration (3) and of those appended after it (4: the
     * approvals; 5: the record class, alerts.class; 6: the escalations; 7: the
     * dashboard's alert_counts and its triggers; 8: the events; 9: the playbook
     * libraries; 10: a run's result columns) are dropped and the version set to 2. A
     * migration appended later must be undone here too (11, the published lists'
     * list_entries, creates its table only if missing: it runs again as is; 12, a run's
     * requester, and 13, the pollers' cursors, the alerts' update history and the level
     * trigger, are dropped; 14 rebuilds the events table of 8, dropped here with it; 15:
     * the playbook view's deployments, dry-run switches, runs.dry_run, an index of runs and
     * the run counts with their trigger; 16, the move of class-event rows to the event
     * store, is data only and runs again as is; 17, the source marks' source_marks, 18,
     * the journal's kind index, and 19, the portal's tenant_settings, are made only if
     * missing: they run again as is). */
    path = xasprintf("%s/tenants/old.db", dir);
    T_REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    {
        sqlite3_stmt *q;
        int v = 0;
        char *sql;

        T_REQUIRE(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL) == SQLITE_OK);
        if (sqlite3_step(q) == SQLITE_ROW) {
            v = sqlite3_column_int(q, 0);
        }
        sqlite3_finalize(q);
        T_ASSERT(v >= 10);
        /* the migrations appended after it are dropped and redone too */
        sql = xasprintf("DROP TRIGGER alert_counts_relevel; DROP TABLE poll_cursors;"
                        "DROP TABLE alert_updates;"
                        "DROP TRIGGER alert_counts_add; DROP TRIGGER alert_counts_remove;"
                        "DROP TABLE alert_counts;"
                        "DROP TABLE alert_observables; DROP TABLE kv;"
                        "DROP TABLE approval_votes; DROP TABLE approvals; DROP TABLE escalations;"
                        "ALTER TABLE alerts DROP COLUMN class; DROP TABLE events;"
                        "DROP TABLE playbook_libs;"
                        "ALTER TABLE runs DROP COLUMN result_note;"
                        "ALTER TABLE runs DROP COLUMN result;"
                        "ALTER TABLE runs DROP COLUMN requester;"
                        "DROP TABLE playbook_deploys; DROP TABLE playbook_switches;"
                        "DROP INDEX runs_version; DROP TRIGGER run_counts_add;"
                        "DROP TABLE run_counts;"
                        "ALTER TABLE runs DROP COLUMN dry_run;"
                        "PRAGMA user_version = %d;",
                        2);
        T_ASSERT(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
        free(sql);
    }
    sqlite3_close(db);
    free(path);
    T_REQUIRE(store_tenant_open(st, "old", &t, &err) == 0);
    T_RECENT("old1", t, "carol", NULL, NULL, 0, 0, 10);
    T_RECENT("old2", t, "pc-1", "host", NULL, 0, 0, 10);
    T_RECENT("old2,old1", t, "192.0.2.1", "ip", NULL, 0, 0, 10);
    /* The dashboard's counts were filled by their migration, then kept by its trigger. */
    {
        struct store_alert_bucket *b = NULL;
        struct store_source_count *sc = NULL;
        size_t nb = 0, ns = 0;

        T_REQUIRE(store_alert_stats(t, 0, 3600000, &b, &nb, &sc, &ns, NULL) == 0);
        T_ASSERT(nb == 1 && b[0].start_ms == 0 && b[0].count == 2);
        T_ASSERT(ns == 1 && strcmp(sc[0].source, "s1") == 0 && sc[0].count == 2);
        free(b);
        free(sc);
        add_alert(t, "s1", "new1", 3000, "user", "carol");
        T_REQUIRE(store_alert_stats(t, 0, 3600000, &b, &nb, &sc, &ns, NULL) == 0);
        T_ASSERT(nb == 1 && b[0].count == 3 && ns == 1 && sc[0].count == 3);
        free(b);
        free(sc);
    }
    T_RECENT("new1,old1", t, "carol", NULL, NULL, 0, 0, 10);
    free(err);
    store_tenant_close(t);
    teardown();
}

/* A value found in very many alerts: the query reads at most 10000 index rows, newest
 * first, whatever the filters, so its cost is bounded (the loop never waits long). */
static void
test_recent_bounded(void)
{
    struct store_tenant *t = setup("hot");
    char *err = NULL, sid[32];
    int64_t t0;
    int dup;

    T_REQUIRE(t != NULL);
    add_alert(t, "rare", "oldest", 1, "ip", "10.0.0.1");
    T_ASSERT(store_tx_begin(t, &err) == 0);
    for (int i = 0; i < 10050; i++) {
        struct alert a;

        memset(&a, 0, sizeof(a));
        snprintf(sid, sizeof(sid), "n%d", i);
        a.source = xstrdup("noisy");
        a.source_id = xstrdup(sid);
        a.outcome = xstrdup("unknown");
        a.time_ms = a.received_ms = 1000 + i;
        alert_add_observable(&a, "ip", "10.0.0.1", NULL);
        alert_add_observable(&a, "user", "u", NULL);
        T_ASSERT(store_alert_insert(t, &a, &dup, &err) == 0);
        alert_free(&a);
    }
    T_ASSERT(store_tx_commit(t, &err) == 0);
    t0 = util_mono_us();
    T_RECENT("n10049,n10048,n10047", t, "10.0.0.1", NULL, NULL, 0, 0, 3);
    T_RECENT("", t, "10.0.0.1", NULL, "rare", 0, 0, 10); /* beyond the 10000 rows read */
    printf("recent over 10051 alerts with one value: 3 queries in %.1f ms\n",
           (double)(util_mono_us() - t0) / 1000.0);
    free(err);
    store_tenant_close(t);
    teardown();
}

/* The ids found by store_alert_search for one observable, as the alerts' source ids. */
static char *
search_obs(struct store_tenant *t, const char *type, const char *value, const char *source,
           int64_t since, int64_t until, int64_t before, int limit)
{
    struct store_alert_filter f = { source, -1, NULL, since, until, type, value };
    int64_t *ids = NULL, resume = -1;
    size_t n = 0;
    struct buf b;

    buf_init(&b, 0);
    T_ASSERT(store_alert_search(t, &f, before, limit, &ids, &n, &resume, NULL) == 0);
    T_ASSERT(resume == 0); /* the index is read without a scan window */
    for (size_t i = 0; i < n; i++) {
        struct alert a;

        T_ASSERT(store_alert_get(t, ids[i], &a, NULL) == 1);
        (void)!buf_printf(&b, "%s%s", i ? "," : "", a.source_id);
        alert_free(&a);
    }
    free(ids);
    (void)!buf_puts(&b, "");
    return buf_take(&b);
}

#define T_SEARCH(expect, ...)                                                                      \
    do {                                                                                           \
        char *got_ = search_obs(__VA_ARGS__);                                                      \
        T_EQ_STR(got_, expect);                                                                    \
        free(got_);                                                                                \
    } while (0)

/* The portal's alert search by user or IP: through the observable index, the type and
 * the value checked in the alert, combined with the other filters, paged by id. */
static void
test_search_by_observable(void)
{
    struct store_tenant *t = setup("search"), *o = setup("search2");

    T_REQUIRE(t != NULL && o != NULL);
    add_alert(t, "s1", "a1", 1000, "user", "alice");
    add_alert(t, "s2", "a2", 2000, "email", "alice"); /* the same text, another type */
    add_alert(t, "s1", "b1", 3000, "user", "bob");
    add_alert(t, "s2", "a3", 4000, "user", "alice");
    add_alert(o, "s1", "x1", 3500, "user", "alice");
    T_SEARCH("a3,a1", t, "user", "alice", NULL, 0, 0, 0, 10);
    T_SEARCH("a2", t, "email", "alice", NULL, 0, 0, 0, 10);
    T_SEARCH("a1", t, "user", "alice", "s1", 0, 0, 0, 10);
    T_SEARCH("a3", t, "user", "alice", NULL, 2000, 0, 0, 10);
    T_SEARCH("a1", t, "user", "alice", NULL, 0, 2000, 0, 10);
    T_SEARCH("a3", t, "user", "alice", NULL, 0, 0, 0, 1);
    T_SEARCH("a1", t, "user", "alice", NULL, 0, 0, 4, 10); /* below id 4 */
    T_SEARCH("", t, "user", "ALICE", NULL, 0, 0, 0, 10);   /* exact values */
    T_SEARCH("", t, "user", "alic%", NULL, 0, 0, 0, 10);   /* no patterns */
    T_SEARCH("a3,b1,a2,a1", t, "ip", "192.0.2.1", NULL, 0, 0, 0, 10);
    T_SEARCH("x1", o, "user", "alice", NULL, 0, 0, 0, 10); /* each tenant its own */
    store_tenant_close(t);
    store_tenant_close(o);
    teardown();
}

/* Settings edited in the portal: absent, saved with who and when, replaced, forgotten;
 * the live published lists without a connector's own bookkeeping lists. */
static void
test_settings_and_live_lists(void)
{
    struct store_tenant *t = setup("settings");
    struct store_list_entry *v = NULL;
    char *val = NULL, *by = NULL, *err = NULL;
    int64_t at = 0;
    size_t n = 0;

    T_REQUIRE(t != NULL);
    T_EQ_INT(store_setting_get(t, "notify.chain", &val, &at, &by, &err), 0);
    T_ASSERT(val == NULL && by == NULL && at == 0);
    T_ASSERT(store_tx_begin(t, &err) == 0);
    T_ASSERT(store_setting_put(t, "notify.chain", "[1]", 5000, "adm", &err) == 0);
    T_ASSERT(store_setting_put(t, "notify.chain", "[2]", 6000, "adm2", &err) == 0);
    T_ASSERT(store_tx_commit(t, &err) == 0);
    T_EQ_INT(store_setting_get(t, "notify.chain", &val, &at, &by, &err), 1);
    T_EQ_STR(val, "[2]");
    T_EQ_STR(by, "adm2");
    T_ASSERT(at == 6000);
    free(val);
    free(by);
    T_ASSERT(store_tx_begin(t, &err) == 0);
    T_EQ_INT(store_setting_del(t, "notify.chain", &err), 1);
    T_EQ_INT(store_setting_del(t, "notify.chain", &err), 0);
    T_ASSERT(store_list_put(t, "panos.block", "192.0.2.7", 0, &err) == 0);
    T_ASSERT(store_list_put(t, "panos.block", "192.0.2.8", 1000, &err) == 0); /* expired */
    T_ASSERT(store_list_put(t, "panos:blocks-last-hour", "x", 0, &err) == 0);
    T_ASSERT(store_tx_commit(t, &err) == 0);
    T_EQ_INT(store_setting_get(t, "notify.chain", &val, NULL, NULL, &err), 0);
    T_ASSERT(store_list_live(t, 2000, 10, &v, &n, &err) == 0);
    T_EQ_INT((int)n, 1);
    if (n == 1) {
        T_EQ_STR(v[0].list, "panos.block");
        T_EQ_STR(v[0].value, "192.0.2.7");
    }
    store_list_entries_free(v, n);
    free(err);
    store_tenant_close(t);
    teardown();
}

TEST_LIST = {
    { "kv", test_kv },
    { "prune_bounded", test_prune_bounded },
    { "recent", test_recent },
    { "index_filled_by_migration", test_index_filled_by_migration },
    { "recent_bounded", test_recent_bounded },
    { "search_by_observable", test_search_by_observable },
    { "settings_and_live_lists", test_settings_and_live_lists },
    { NULL, NULL },
};
