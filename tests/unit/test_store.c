/* test_store.c: the SQLite store on real files in a temporary folder: migrations,
 * tenants, alerts and dedup, durability, runs, journals, playbook versions. */
#include "engine/store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/alert.h"
#include "engine/journal.h"
#include "engine/util.h"
#include "tests/unit/test.h"

#define HASH_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* One temporary data folder with the store open and tenant "acme" in it. */
struct fx {
    char dir[64];
    struct store *st;
    struct store_tenant *t;
};

/* Make the folder and open the store; with tenant, also add and open "acme". */
static int
fx_setup(struct fx *f, int tenant)
{
    char *err = NULL;

    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/kagari-store-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        return -1;
    }
    if (store_open(f->dir, &f->st, &err) == -1) {
        fprintf(stderr, "  store_open: %s\n", err);
        free(err);
        return -1;
    }
    if (!tenant) {
        return 0;
    }
    if (store_tenant_add(f->st, "acme", "ACME Corp", NULL, &err) == -1 ||
        store_tenant_open(f->st, "acme", &f->t, &err) == -1) {
        fprintf(stderr, "  tenant: %s\n", err);
        free(err);
        return -1;
    }
    return 0;
}

static void
fx_teardown(struct fx *f)
{
    store_tenant_close(f->t);
    store_close(f->st);
    f->t = NULL;
    f->st = NULL;
    if (f->dir[0] != '\0') {
        test_rm_tree(f->dir);
    }
}

/* Read PRAGMA user_version (or set it when set >= 0) with a plain sqlite3 connection. */
static int
raw_user_version(const char *path, int set)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int v = -1;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 5000);
    if (set >= 0) {
        char *sql = xasprintf("PRAGMA user_version = %d", set);

        if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK) {
            v = set;
        }
        free(sql);
    } else if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
               sqlite3_step(s) == SQLITE_ROW) {
        v = sqlite3_column_int(s, 0);
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static unsigned
file_mode(const char *path)
{
    struct stat sb;

    if (stat(path, &sb) == -1) {
        return 0;
    }
    return (unsigned)(sb.st_mode & 0777);
}

/* A heap alert the caller frees with alert_free(). */
static void
mk_alert(struct alert *a, const char *source, const char *source_id)
{
    memset(a, 0, sizeof(*a));
    a->source = xstrdup(source);
    a->source_id = xstrdup(source_id);
    a->time_ms = 1715650385000LL;
    a->received_ms = 1715650386123LL;
    a->title = xstrdup("Impossible travel");
    a->severity = SEV_HIGH;
    a->outcome = xstrdup("succeeded");
    a->raw = xstrdup("{\"id\":\"x\"}");
}

static void
add_obs(struct alert *a, const char *type, const char *value, const char *role)
{
    alert_add_observable(a, type, value, role);
}

/* Insert one alert in its own transaction; returns its id or -1. */
static int64_t
insert_one(struct store_tenant *t, const char *source, const char *source_id, int *dup)
{
    struct alert a;
    char *err = NULL;
    int64_t id = -1;

    mk_alert(&a, source, source_id);
    if (store_tx_begin(t, &err) == 0 && store_alert_insert(t, &a, dup, &err) == 0 &&
        store_tx_commit(t, &err) == 0) {
        id = a.id;
    } else {
        fprintf(stderr, "  insert_one: %s\n", err);
        store_tx_rollback(t);
    }
    free(err);
    alert_free(&a);
    return id;
}

/* The dashboard's count of (source, level) as stored, read beside the store's connection. */
static int
count_at(const char *dir, const char *source, int sev)
{
    char *path = xasprintf("%s/tenants/acme.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int n = -1;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db,
                           "SELECT coalesce(sum(n), 0) FROM alert_counts WHERE source = ?1 AND"
                           " severity = ?2",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, source, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, sev);
        if (sqlite3_step(s) == SQLITE_ROW) {
            n = sqlite3_column_int(s, 0);
        }
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    free(path);
    return n;
}

/* Send the alert source/"u1" again with raw and level sev: *updated and *significant. */
static int
resend(struct fx *f, const char *raw, int sev, const char *outcome, int *updated, int *significant)
{
    struct alert a;
    char *err = NULL;
    int dup = 0, rc = -1;

    mk_alert(&a, "graph.test", "u1");
    free(a.raw);
    a.raw = xstrdup(raw);
    a.severity = sev;
    free(a.outcome);
    a.outcome = xstrdup(outcome);
    add_obs(&a, "host", "pc-9", NULL);
    if (store_tx_begin(f->t, &err) == 0 && store_alert_insert(f->t, &a, &dup, &err) == 0 && dup &&
        store_alert_update(f->t, &a, 1715650400000LL, updated, significant, &err) == 0 &&
        store_tx_commit(f->t, &err) == 0) {
        rc = 0;
    } else {
        fprintf(stderr, "  resend: %s\n", err ? err : "not a duplicate");
        store_tx_rollback(f->t);
    }
    free(err);
    alert_free(&a);
    return rc;
}

/* A stored alert sent again: the same record changes nothing; another record updates it in
 * place with its history (what changed, the record before); a higher level or a
 * "succeeded" outcome is significant; the dashboard's counts follow the level. */
static void
test_alert_update(void)
{
    struct fx f;
    struct alert got;
    struct buf b;
    char *err = NULL;
    int dup = 0, upd = -1, sig = -1;
    int64_t id;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    id = insert_one(f.t, "graph.test", "u1", &dup);
    T_REQUIRE(id > 0);
    T_EQ_INT(count_at(f.dir, "graph.test", SEV_HIGH), 1);
    /* mk_alert's record again: nothing. */
    T_REQUIRE(resend(&f, "{\"id\":\"x\"}", SEV_HIGH, "succeeded", &upd, &sig) == 0);
    T_EQ_INT(upd, 0);
    T_EQ_INT(sig, 0);
    /* Its status changed: updated, not significant. */
    T_REQUIRE(resend(&f, "{\"id\":\"x\",\"status\":\"resolved\"}", SEV_HIGH, "succeeded", &upd,
                     &sig) == 0);
    T_EQ_INT(upd, 1);
    T_EQ_INT(sig, 0);
    T_EQ_INT(store_alert_get(f.t, id, &got, &err), 1);
    T_EQ_STR(got.raw, "{\"id\":\"x\",\"status\":\"resolved\"}");
    T_EQ_INT(got.time_ms, 1715650385000LL); /* its times stay */
    T_EQ_INT(got.nobs, 1);
    alert_free(&got);
    /* Its level rose: significant; the dashboard moves it from high to critical. */
    T_REQUIRE(resend(&f, "{\"id\":\"x\",\"status\":\"resolved\",\"severity\":\"x\"}", SEV_CRITICAL,
                     "succeeded", &upd, &sig) == 0);
    T_EQ_INT(upd, 1);
    T_EQ_INT(sig, 1);
    T_EQ_INT(count_at(f.dir, "graph.test", SEV_HIGH), 0);
    T_EQ_INT(count_at(f.dir, "graph.test", SEV_CRITICAL), 1);
    /* Lower again, outcome unchanged: recorded, not significant. */
    T_REQUIRE(resend(&f, "{\"id\":\"x\"}", SEV_LOW, "succeeded", &upd, &sig) == 0);
    T_EQ_INT(upd, 1);
    T_EQ_INT(sig, 0);
    /* The outcome became "succeeded" from "attempted": significant. */
    T_REQUIRE(resend(&f, "{\"id\":\"y\"}", SEV_LOW, "attempted", &upd, &sig) == 0);
    T_EQ_INT(sig, 0);
    T_REQUIRE(resend(&f, "{\"id\":\"z\"}", SEV_LOW, "succeeded", &upd, &sig) == 0);
    T_EQ_INT(sig, 1);
    buf_init(&b, 0);
    T_REQUIRE(store_alert_updates(f.t, id, &b, &err) == 0);
    T_ASSERT(strstr(b.data, "\"status\":[null,\"resolved\"]") == NULL);
    T_ASSERT(strstr(b.data, "\"status\":\"added\"") != NULL);
    T_ASSERT(strstr(b.data, "\"severity\":[\"high\",\"critical\"]") != NULL);
    T_ASSERT(strstr(b.data, "\"observables_added\":[{\"type\":\"host\",\"value\":\"pc-9\"}]") !=
             NULL);
    T_ASSERT(strstr(b.data, "\"significant\":true") != NULL);
    buf_free(&b);
    free(err);
    fx_teardown(&f);
}

/* Pollers' cursors: none at first, written only in a transaction, read back, listed. */
static void
test_cursors(void)
{
    struct fx f;
    char *err = NULL, *v = NULL;
    struct store_cursor *list = NULL;
    size_t n = 0;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    T_EQ_INT(store_cursor_get(f.t, "graph.alerts", &v, &err), 0);
    T_ASSERT(v == NULL);
    T_EQ_INT(store_cursor_put(f.t, "graph.alerts", "{}", &err), -1);
    free(err);
    err = NULL;
    T_REQUIRE(store_tx_begin(f.t, &err) == 0);
    T_EQ_INT(store_cursor_put(f.t, "graph.alerts", "{\"watermark\":\"a\"}", &err), 0);
    T_EQ_INT(store_cursor_put(f.t, "graph.alerts", "{\"watermark\":\"b\"}", &err), 0);
    T_EQ_INT(store_cursor_put(f.t, "graph.incidents", "{}", &err), 0);
    T_REQUIRE(store_tx_commit(f.t, &err) == 0);
    T_EQ_INT(store_cursor_get(f.t, "graph.alerts", &v, &err), 0);
    T_EQ_STR(v, "{\"watermark\":\"b\"}");
    free(v);
    T_EQ_INT(store_cursor_list(f.t, &list, &n, &err), 0);
    T_EQ_INT(n, 2);
    if (n == 2) {
        T_EQ_STR(list[0].stream, "graph.alerts");
        T_EQ_STR(list[1].stream, "graph.incidents");
        T_ASSERT(list[0].updated_ms > 0);
    }
    store_cursors_free(list, n);
    free(err);
    fx_teardown(&f);
}

static void
test_open_migrate_reopen(void)
{
    struct fx f;
    char *err = NULL, *path, *tpath;
    int tv, cv;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    T_EQ_STR(store_data_dir(f.st), f.dir);
    T_EQ_STR(store_tenant_id(f.t), "acme");
    path = xasprintf("%s/control.db", f.dir);
    tpath = xasprintf("%s/tenants/acme.db", f.dir);
    T_EQ_INT(file_mode(path), 0600);
    T_EQ_INT(file_mode(tpath), 0600);
    T_EQ_INT(file_mode(f.dir), 0700);
    {
        /* SQLite gives the WAL file the main file's mode. */
        char *wal = xasprintf("%s-wal", tpath);

        T_EQ_INT(file_mode(wal), 0600);
        free(wal);
    }
    {
        char *tdir = xasprintf("%s/tenants", f.dir);

        T_EQ_INT(file_mode(tdir), 0700);
        free(tdir);
    }
    store_tenant_close(f.t);
    store_close(f.st);
    f.t = NULL;
    f.st = NULL;

    cv = raw_user_version(path, -1);
    T_ASSERT(cv >= 1);
    tv = raw_user_version(tpath, -1);
    T_ASSERT(tv >= 1);

    /* Reopening finds the schema current and changes nothing. */
    T_EQ_INT(store_open(f.dir, &f.st, &err), 0);
    T_EQ_INT(store_tenant_open(f.st, "acme", &f.t, &err), 0);
    T_ASSERT(err == NULL);
    store_tenant_close(f.t);
    store_close(f.st);
    f.t = NULL;
    f.st = NULL;
    T_EQ_INT(raw_user_version(path, -1), cv);
    T_EQ_INT(raw_user_version(tpath, -1), tv);

    /* Opening a store where the folders do not exist yet creates them. */
    {
        char *deep = xasprintf("%s/a/b", f.dir);

        T_EQ_INT(store_open(deep, &f.st, &err), 0);
        T_EQ_INT(file_mode(deep), 0700);
        store_close(f.st);
        f.st = NULL;
        free(deep);
    }
    free(path);
    free(tpath);
    fx_teardown(&f);
}

static void
test_schema_newer_refused(void)
{
    struct fx f;
    struct store_tenant *t = NULL;
    char *err = NULL, *path;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    store_tenant_close(f.t);
    f.t = NULL;
    store_close(f.st);
    f.st = NULL;

    /* A tenant database from the future. */
    path = xasprintf("%s/tenants/acme.db", f.dir);
    T_EQ_INT(raw_user_version(path, 99), 99);
    T_EQ_INT(store_open(f.dir, &f.st, &err), 0);
    T_EQ_INT(store_tenant_open(f.st, "acme", &t, &err), -1);
    T_ASSERT(t == NULL);
    T_CONTAINS(err, "database schema 99 is newer than this kagari (");
    free(err);
    err = NULL;
    store_close(f.st);
    f.st = NULL;
    free(path);

    /* A control database from the future. */
    path = xasprintf("%s/control.db", f.dir);
    T_EQ_INT(raw_user_version(path, 99), 99);
    T_EQ_INT(store_open(f.dir, &f.st, &err), -1);
    T_ASSERT(f.st == NULL);
    T_CONTAINS(err, "database schema 99 is newer than this kagari (");
    T_CONTAINS(err, "control.db");
    free(err);
    free(path);
    fx_teardown(&f);
}

static void
test_tenants(void)
{
    struct fx f;
    struct store_tenant_info *list = NULL;
    struct store_tenant *t = NULL;
    size_t n = 0;
    char *err = NULL;
    char id[64], long_id[80];
    static const char *const bad[] = {
        "", "Acme", "-acme", "a/b", "../x", "a.b", "a b", "a_b", "\xc3\xa9", NULL,
    };

    T_REQUIRE(fx_setup(&f, 0) == 0);
    T_EQ_INT(store_tenant_add(f.st, "acme", "ACME Corp", "h1", &err), 0);
    T_EQ_INT(store_tenant_add(f.st, "0lab-2", NULL, "h2", &err), 0);
    T_ASSERT(err == NULL);

    /* Duplicate id, duplicate token. */
    T_EQ_INT(store_tenant_add(f.st, "acme", "Other", "h3", &err), -1);
    T_CONTAINS(err, "tenant acme exists");
    T_EQ_INT(store_tenant_add(f.st, "beta", "Beta", "h1", &err), -1);
    T_CONTAINS(err, "token");

    /* Invalid ids. */
    for (int i = 0; bad[i] != NULL; i++) {
        T_EQ_INT(store_tenant_add(f.st, bad[i], "x", NULL, &err), -1);
        T_CONTAINS(err, "invalid tenant id");
    }
    T_EQ_INT(store_tenant_add(f.st, NULL, "x", NULL, &err), -1);
    memset(long_id, 'a', 63);
    long_id[63] = '\0';
    T_EQ_INT(store_tenant_add(f.st, long_id, "long", NULL, &err), 0);
    long_id[63] = 'a';
    long_id[64] = '\0';
    T_EQ_INT(store_tenant_add(f.st, long_id, "too long", NULL, &err), -1);
    T_CONTAINS(err, "invalid tenant id");

    /* Token lookup and rotation. */
    T_EQ_INT(store_tenant_find_token(f.st, "h1", id, sizeof(id)), 1);
    T_EQ_STR(id, "acme");
    T_EQ_INT(store_tenant_find_token(f.st, "h2", id, sizeof(id)), 1);
    T_EQ_STR(id, "0lab-2");
    T_EQ_INT(store_tenant_find_token(f.st, "nope", id, sizeof(id)), 0);
    T_EQ_INT(store_tenant_set_token(f.st, "acme", "h1-new", &err), 0);
    T_EQ_INT(store_tenant_find_token(f.st, "h1", id, sizeof(id)), 0);
    T_EQ_INT(store_tenant_find_token(f.st, "h1-new", id, sizeof(id)), 1);
    T_EQ_STR(id, "acme");
    T_EQ_INT(store_tenant_set_token(f.st, "ghost", "hx", &err), -1);
    T_CONTAINS(err, "unknown tenant ghost");
    T_EQ_INT(store_tenant_set_token(f.st, "acme", "h2", &err), -1);
    T_CONTAINS(err, "token already used");

    /* List, ordered by id. */
    T_EQ_INT(store_tenant_list(f.st, &list, &n, &err), 0);
    T_REQUIRE(n == 3);
    T_EQ_STR(list[0].id, "0lab-2");
    T_EQ_STR(list[0].name, "0lab-2");
    long_id[63] = '\0';
    T_EQ_STR(list[1].id, long_id);
    T_EQ_STR(list[2].id, "acme");
    T_EQ_STR(list[2].name, "ACME Corp");
    T_ASSERT(list[2].created_ms > 1700000000000LL);
    free(list);

    /* Opening an unknown or invalid tenant. */
    T_EQ_INT(store_tenant_open(f.st, "ghost", &t, &err), -1);
    T_CONTAINS(err, "unknown tenant ghost");
    T_EQ_INT(store_tenant_open(f.st, "../acme", &t, &err), -1);
    T_CONTAINS(err, "invalid tenant id");
    T_ASSERT(t == NULL);
    free(err);
    fx_teardown(&f);
}

static void
test_alert_dedup(void)
{
    struct fx f;
    struct alert a;
    char *err = NULL;
    int dup = -1;
    int64_t id1, id2, id3;

    T_REQUIRE(fx_setup(&f, 1) == 0);

    /* No transaction, no insert. */
    mk_alert(&a, "entra.signin", "e-1");
    T_EQ_INT(store_in_tx(f.t), 0);
    T_EQ_INT(store_alert_insert(f.t, &a, &dup, &err), -1);
    T_CONTAINS(err, "no open transaction");
    alert_free(&a);

    id1 = insert_one(f.t, "entra.signin", "e-1", &dup);
    T_ASSERT(id1 > 0);
    T_EQ_INT(dup, 0);
    id2 = insert_one(f.t, "entra.signin", "e-1", &dup);
    T_EQ_INT(id2, id1);
    T_EQ_INT(dup, 1);
    id3 = insert_one(f.t, "defender.alert", "e-1", &dup);
    T_ASSERT(id3 > 0 && id3 != id1);
    T_EQ_INT(dup, 0);

    /* Within one transaction too, and begin nests as a no-op. */
    T_EQ_INT(store_tx_begin(f.t, &err), 0);
    T_EQ_INT(store_tx_begin(f.t, &err), 0);
    T_EQ_INT(store_in_tx(f.t), 1);
    mk_alert(&a, "panos.threat", "p-1");
    T_EQ_INT(store_alert_insert(f.t, &a, &dup, &err), 0);
    T_EQ_INT(dup, 0);
    id1 = a.id;
    a.id = 0;
    T_EQ_INT(store_alert_insert(f.t, &a, &dup, &err), 0);
    T_EQ_INT(dup, 1);
    T_EQ_INT(a.id, id1);
    alert_free(&a);
    T_EQ_INT(store_tx_commit(f.t, &err), 0);
    T_EQ_INT(store_in_tx(f.t), 0);
    T_EQ_INT(store_tx_commit(f.t, &err), 0); /* nothing open: no-op */
    T_EQ_INT(store_alert_count(f.t), 3);

    /* Missing dedup key. */
    T_EQ_INT(store_tx_begin(f.t, &err), 0);
    mk_alert(&a, "x", "y");
    free(a.source_id);
    a.source_id = NULL;
    T_EQ_INT(store_alert_insert(f.t, &a, &dup, &err), -1);
    T_CONTAINS(err, "source_id");
    alert_free(&a);
    store_tx_rollback(f.t);
    free(err);
    fx_teardown(&f);
}

static void
test_alert_roundtrip(void)
{
    struct fx f;
    struct alert a, b;
    char *err = NULL;
    int dup = 0;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    mk_alert(&a, "entra.signin", "sid-\"1\"");
    a.category = xstrdup("InitialAccess");
    a.vendor_severity = NULL;
    free(a.raw);
    a.raw = xstrdup("{\"user\":\"taro@example.jp\",\"note\":\"\xe7\xaf\x9d \\n\"}");
    add_obs(&a, "user", "taro@example.jp", "victim");
    add_obs(&a, "ip", "203.0.113.7", NULL);
    add_obs(&a, "process", "C:\\Windows\\cmd.exe \"/c\"\n\t\x01", "actor");
    T_EQ_INT(store_tx_begin(f.t, &err), 0);
    T_EQ_INT(store_alert_insert(f.t, &a, &dup, &err), 0);
    T_EQ_INT(store_tx_commit(f.t, &err), 0);
    T_ASSERT(err == NULL);

    T_EQ_INT(store_alert_get(f.t, a.id, &b, &err), 1);
    T_EQ_INT(b.id, a.id);
    T_EQ_STR(b.source, "entra.signin");
    T_EQ_STR(b.source_id, "sid-\"1\"");
    T_EQ_INT(b.time_ms, 1715650385000LL);
    T_EQ_INT(b.received_ms, 1715650386123LL);
    T_EQ_STR(b.title, "Impossible travel");
    T_EQ_STR(b.category, "InitialAccess");
    T_ASSERT(b.vendor_severity == NULL);
    T_EQ_INT(b.severity, SEV_HIGH);
    T_EQ_STR(b.outcome, "succeeded");
    T_EQ_STR(b.raw, a.raw);
    T_REQUIRE(b.nobs == 3);
    T_EQ_STR(b.obs[0].type, "user");
    T_EQ_STR(b.obs[0].value, "taro@example.jp");
    T_EQ_STR(b.obs[0].role, "victim");
    T_EQ_STR(b.obs[1].type, "ip");
    T_EQ_STR(b.obs[1].value, "203.0.113.7");
    T_ASSERT(b.obs[1].role == NULL);
    T_EQ_STR(b.obs[2].value, a.obs[2].value);
    alert_free(&b);

    /* An alert without observables reads back with none. */
    alert_free(&a);
    mk_alert(&a, "azure.waf", "w-1");
    T_EQ_INT(store_tx_begin(f.t, &err), 0);
    T_EQ_INT(store_alert_insert(f.t, &a, &dup, &err), 0);
    T_EQ_INT(store_tx_commit(f.t, &err), 0);
    T_EQ_INT(store_alert_get(f.t, a.id, &b, &err), 1);
    T_EQ_INT(b.nobs, 0);
    T_ASSERT(b.category == NULL);
    alert_free(&b);

    T_EQ_INT(store_alert_get(f.t, 424242, &b, &err), 0);
    T_ASSERT(err == NULL);
    alert_free(&a);
    fx_teardown(&f);
}

static void
test_durability(void)
{
    struct fx f;
    struct alert a, b;
    char *err = NULL;
    int dup = 0;
    int64_t kept, run_id = 0;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    mk_alert(&a, "intune.device", "d-1");
    add_obs(&a, "device", "PC-0042", NULL);
    T_EQ_INT(store_tx_begin(f.t, &err), 0);
    T_EQ_INT(store_alert_insert(f.t, &a, &dup, &err), 0);
    T_EQ_INT(store_run_insert(f.t, a.id, "pb", HASH_A, 1000, &run_id, &err), 0);
    T_EQ_INT(store_tx_commit(f.t, &err), 0);
    kept = a.id;
    alert_free(&a);

    /* Rolled back: nothing of it remains. */
    mk_alert(&a, "intune.device", "d-2");
    T_EQ_INT(store_tx_begin(f.t, &err), 0);
    T_EQ_INT(store_alert_insert(f.t, &a, &dup, &err), 0);
    T_EQ_INT(store_alert_count(f.t), 2);
    store_tx_rollback(f.t);
    T_EQ_INT(store_in_tx(f.t), 0);
    T_EQ_INT(store_alert_count(f.t), 1);
    T_EQ_INT(store_alert_get(f.t, a.id, &b, &err), 0);
    alert_free(&a);

    /* Left open at close: rolled back too. */
    mk_alert(&a, "intune.device", "d-3");
    T_EQ_INT(store_tx_begin(f.t, &err), 0);
    T_EQ_INT(store_alert_insert(f.t, &a, &dup, &err), 0);
    alert_free(&a);
    store_tenant_close(f.t);
    store_close(f.st);
    f.t = NULL;
    f.st = NULL;

    /* Reopen: the committed alert and run are there, the others are not. */
    T_EQ_INT(store_open(f.dir, &f.st, &err), 0);
    T_EQ_INT(store_tenant_open(f.st, "acme", &f.t, &err), 0);
    T_REQUIRE(f.t != NULL);
    T_EQ_INT(store_alert_count(f.t), 1);
    T_EQ_INT(store_alert_get(f.t, kept, &b, &err), 1);
    T_EQ_STR(b.source_id, "d-1");
    T_REQUIRE(b.nobs == 1);
    T_EQ_STR(b.obs[0].value, "PC-0042");
    alert_free(&b);
    {
        struct store_run r;

        T_EQ_INT(store_run_get(f.t, run_id, &r, &err), 1);
        T_EQ_INT(r.alert_id, kept);
        store_run_free(&r);
    }
    /* The same key still dedups after a restart. */
    T_EQ_INT(insert_one(f.t, "intune.device", "d-1", &dup), kept);
    T_EQ_INT(dup, 1);
    T_ASSERT(err == NULL);
    fx_teardown(&f);
}

/* A run started by a person names them; one the engine started, or an unknown id, none. */
static void
test_run_requester(void)
{
    struct fx f;
    int64_t alert_id, mine = 0, engine = 0;
    char *who = NULL, *err = NULL;
    int dup = 0;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    alert_id = insert_one(f.t, "entra.risk", "r-req", &dup);
    T_REQUIRE(alert_id > 0);
    T_EQ_INT(store_run_insert(f.t, alert_id, "triage", HASH_A, 1000, &engine, &err), 0);
    T_EQ_INT(store_tx_begin(f.t, &err), 0);
    T_EQ_INT(store_run_insert(f.t, alert_id, "contain", HASH_A, 2000, &mine, &err), 0);
    T_EQ_INT(store_run_set_requester(f.t, mine, "佐藤 ana", &err), 0);
    T_EQ_INT(store_tx_commit(f.t, &err), 0);
    T_EQ_INT(store_run_requester(f.t, mine, &who, &err), 0);
    T_EQ_STR(who, "佐藤 ana");
    free(who);
    T_EQ_INT(store_run_requester(f.t, engine, &who, &err), 0);
    T_ASSERT(who == NULL);
    T_EQ_INT(store_run_requester(f.t, 424242, &who, &err), 0);
    T_ASSERT(who == NULL);
    /* Recording it for a run that does not exist is an error, not a silent no-op. */
    T_EQ_INT(store_run_set_requester(f.t, 424242, "x", &err), -1);
    T_CONTAINS(err, "requester not recorded");
    free(err);
    fx_teardown(&f);
}

static void
test_runs(void)
{
    struct fx f;
    struct store_run r, *v = NULL;
    size_t n = 0;
    int64_t counts[6], alert_id, r1 = 0, r2 = 0, r3 = 0, bad = 0;
    char *err = NULL;
    int dup = 0;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    alert_id = insert_one(f.t, "entra.risk", "r-1", &dup);
    T_REQUIRE(alert_id > 0);

    /* Outside any transaction (autocommit), as the CLI does. */
    T_EQ_INT(store_run_insert(f.t, alert_id, "triage", HASH_A, 1000, &r1, &err), 0);
    T_EQ_INT(store_run_insert(f.t, alert_id, "contain", HASH_B, 2000, &r2, &err), 0);
    /* And inside one. */
    T_EQ_INT(store_tx_begin(f.t, &err), 0);
    T_EQ_INT(store_run_insert(f.t, 0, "scheduled", HASH_A, 3000, &r3, &err), 0);
    T_EQ_INT(store_tx_commit(f.t, &err), 0);
    T_ASSERT(err == NULL);
    T_ASSERT(r1 > 0 && r2 > r1 && r3 > r2);

    /* A run must point at a real alert. */
    T_EQ_INT(store_run_insert(f.t, 999999, "triage", HASH_A, 1000, &bad, &err), -1);
    T_CONTAINS(err, "FOREIGN KEY");
    T_CONTAINS(err, "run insert");
    free(err);
    err = NULL;

    T_EQ_INT(store_run_get(f.t, r1, &r, &err), 1);
    T_EQ_INT(r.id, r1);
    T_EQ_INT(r.alert_id, alert_id);
    T_EQ_STR(r.playbook, "triage");
    T_EQ_STR(r.hash, HASH_A);
    T_EQ_STR(r.state, "queued");
    T_EQ_INT(r.created_ms, 1000);
    T_EQ_INT(r.started_ms, 0);
    T_EQ_INT(r.ended_ms, 0);
    T_ASSERT(r.error == NULL);
    store_run_free(&r);
    T_EQ_INT(store_run_get(f.t, r3, &r, &err), 1);
    T_EQ_INT(r.alert_id, 0);
    store_run_free(&r);
    T_EQ_INT(store_run_get(f.t, 12345, &r, &err), 0);

    /* running, then failed: started is kept when 0 is passed. */
    T_EQ_INT(store_run_update(f.t, r1, "running", 1100, 0, NULL, &err), 0);
    T_EQ_INT(store_run_update(f.t, r1, "failed", 0, 1200, "boom", &err), 0);
    T_EQ_INT(store_run_get(f.t, r1, &r, &err), 1);
    T_EQ_STR(r.state, "failed");
    T_EQ_INT(r.started_ms, 1100);
    T_EQ_INT(r.ended_ms, 1200);
    T_EQ_STR(r.error, "boom");
    store_run_free(&r);
    T_EQ_INT(store_run_update(f.t, r2, "waiting", 2100, 0, NULL, &err), 0);
    T_ASSERT(err == NULL);

    T_EQ_INT(store_run_update(f.t, r1, "sleeping", 0, 0, NULL, &err), -1);
    T_CONTAINS(err, "invalid state");
    T_EQ_INT(store_run_update(f.t, 777, "done", 0, 0, NULL, &err), -1);
    T_CONTAINS(err, "no run 777");
    free(err);
    err = NULL;

    /* Newest first; by state; limit. */
    T_EQ_INT(store_run_list(f.t, NULL, 0, &v, &n, &err), 0);
    T_REQUIRE(n == 3);
    T_EQ_INT(v[0].id, r3);
    T_EQ_INT(v[2].id, r1);
    store_runs_free(v, n);
    T_EQ_INT(store_run_list(f.t, NULL, 2, &v, &n, &err), 0);
    T_EQ_INT(n, 2);
    store_runs_free(v, n);
    T_EQ_INT(store_run_list(f.t, "failed", 0, &v, &n, &err), 0);
    T_REQUIRE(n == 1);
    T_EQ_INT(v[0].id, r1);
    T_EQ_STR(v[0].error, "boom");
    store_runs_free(v, n);
    T_EQ_INT(store_run_list(f.t, "done", 0, &v, &n, &err), 0);
    T_EQ_INT(n, 0);
    store_runs_free(v, n);
    T_EQ_INT(store_run_list(f.t, "bogus", 0, &v, &n, &err), -1);
    free(err);
    err = NULL;

    /* Unfinished: waiting r2 and queued r3, oldest first. */
    T_EQ_INT(store_run_unfinished(f.t, &v, &n, &err), 0);
    T_REQUIRE(n == 2);
    T_EQ_INT(v[0].id, r2);
    T_EQ_STR(v[0].state, "waiting");
    T_EQ_INT(v[1].id, r3);
    store_runs_free(v, n);

    T_EQ_INT(store_run_counts(f.t, counts, &err), 0);
    T_EQ_INT(counts[0], 1); /* queued */
    T_EQ_INT(counts[1], 0); /* running */
    T_EQ_INT(counts[2], 1); /* waiting */
    T_EQ_INT(counts[3], 0); /* done */
    T_EQ_INT(counts[4], 1); /* failed */
    T_EQ_INT(counts[5], 0); /* cancelled */
    T_ASSERT(err == NULL);
    fx_teardown(&f);
}

static void
test_journal(void)
{
    struct fx f;
    struct journal_entry e, *v = NULL;
    size_t n = 0;
    char *err = NULL;
    int64_t run_id = 0;
    int dup = 0;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    T_EQ_INT(store_run_insert(f.t, insert_one(f.t, "azure.activity", "a-1", &dup), "pb", HASH_A, 1,
                              &run_id, &err),
             0);

    /* seq 2 is written before seq 1 to show load orders by seq. */
    memset(&e, 0, sizeof(e));
    e.run_id = run_id;
    e.seq = 2;
    e.kind = (char *)"now";
    e.request = (char *)"{}";
    e.result = (char *)"1715650385000";
    e.status = JOURNAL_DONE;
    e.started_ms = 50;
    e.ended_ms = 50;
    T_EQ_INT(store_journal_put(f.t, &e, &err), 0);

    e.seq = 1;
    e.kind = (char *)"graph.disable_user";
    e.request = (char *)"{\"user\":\"taro@example.jp\"}";
    e.result = NULL;
    e.status = JOURNAL_STARTED;
    e.started_ms = 40;
    e.ended_ms = 0;
    T_EQ_INT(store_journal_put(f.t, &e, &err), 0);

    T_EQ_INT(store_journal_load(f.t, run_id, &v, &n, &err), 0);
    T_REQUIRE(n == 2);
    T_EQ_INT(v[0].seq, 1);
    T_EQ_INT(v[0].status, JOURNAL_STARTED);
    T_ASSERT(v[0].result == NULL);
    T_EQ_INT(v[0].ended_ms, 0);
    T_EQ_INT(v[1].seq, 2);
    T_EQ_STR(v[1].kind, "now");
    journal_entries_free(v, n);

    /* Started, then done: the same (run, seq) is replaced, inside a transaction. */
    T_EQ_INT(store_tx_begin(f.t, &err), 0);
    e.result = (char *)"{\"ok\":true}";
    e.status = JOURNAL_DONE;
    e.ended_ms = 45;
    T_EQ_INT(store_journal_put(f.t, &e, &err), 0);
    T_EQ_INT(store_tx_commit(f.t, &err), 0);
    T_EQ_INT(store_journal_load(f.t, run_id, &v, &n, &err), 0);
    T_REQUIRE(n == 2);
    T_EQ_INT(v[0].run_id, run_id);
    T_EQ_STR(v[0].kind, "graph.disable_user");
    T_EQ_STR(v[0].request, "{\"user\":\"taro@example.jp\"}");
    T_EQ_STR(v[0].result, "{\"ok\":true}");
    T_EQ_INT(v[0].status, JOURNAL_DONE);
    T_EQ_INT(v[0].started_ms, 40);
    T_EQ_INT(v[0].ended_ms, 45);
    T_EQ_STR(journal_status_name(v[0].status), "done");
    journal_entries_free(v, n);

    T_EQ_INT(store_journal_load(f.t, run_id + 100, &v, &n, &err), 0);
    T_EQ_INT(n, 0);
    journal_entries_free(v, n);

    e.status = 9;
    T_EQ_INT(store_journal_put(f.t, &e, &err), -1);
    T_CONTAINS(err, "invalid status");
    free(err);

    T_EQ_STR(journal_status_name(JOURNAL_STARTED), "started");
    T_EQ_STR(journal_status_name(JOURNAL_FAILED), "failed");
    T_EQ_STR(journal_status_name(42), "?");
    journal_entry_free(NULL);
    journal_entries_free(NULL, 0);
    fx_teardown(&f);
}

static void
test_playbooks(void)
{
    struct fx f;
    static const char src[] = "return playbook { name = \"triage\" }\n";
    char hash[65], *got, *name = NULL, *err = NULL;
    size_t len = 0;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    util_sha256_hex(src, sizeof(src) - 1, hash);
    T_EQ_INT(store_playbook_put(f.t, hash, "triage", src, sizeof(src) - 1, &err), 0);
    /* Idempotent: a second put (even with another name) keeps the first. */
    T_EQ_INT(store_playbook_put(f.t, hash, "renamed", src, sizeof(src) - 1, &err), 0);
    T_ASSERT(err == NULL);

    got = store_playbook_get(f.t, hash, &len, &name);
    T_REQUIRE(got != NULL);
    T_EQ_INT(len, sizeof(src) - 1);
    T_EQ_STR(got, src);
    T_EQ_STR(name, "triage");
    free(got);
    free(name);
    name = NULL;

    got = store_playbook_get(f.t, HASH_B, &len, &name);
    T_ASSERT(got == NULL);
    T_ASSERT(name == NULL);
    T_EQ_INT(len, 0);
    got = store_playbook_get(f.t, hash, NULL, NULL);
    T_ASSERT(got != NULL);
    free(got);

    /* The libraries of a version: returned in name order, bytes kept (a NUL too); a
     * second put of the same name is ignored; another version has none. */
    {
        struct store_lib *libs = NULL;
        size_t n = 0;
        static const char zsrc[] = "return 'a\0b'";

        T_EQ_INT(store_playbook_lib_put(f.t, hash, "zeta", zsrc, sizeof(zsrc) - 1, &err), 0);
        T_EQ_INT(store_playbook_lib_put(f.t, hash, "alpha", "return 1", 8, &err), 0);
        T_EQ_INT(store_playbook_lib_put(f.t, hash, "alpha", "return 2", 8, &err), 0);
        T_EQ_INT(store_playbook_libs_get(f.t, hash, &libs, &n, &err), 0);
        T_EQ_INT(n, 2);
        if (n == 2) {
            T_EQ_STR(libs[0].name, "alpha");
            T_EQ_STR(libs[0].source, "return 1");
            T_EQ_STR(libs[1].name, "zeta");
            T_EQ_INT(libs[1].len, sizeof(zsrc) - 1);
            T_ASSERT(memcmp(libs[1].source, zsrc, sizeof(zsrc) - 1) == 0);
        }
        store_libs_free(libs, n);
        T_EQ_INT(store_playbook_libs_get(f.t, HASH_B, &libs, &n, &err), 0);
        T_EQ_INT(n, 0);
        store_libs_free(libs, n);
        T_ASSERT(err == NULL);
    }
    fx_teardown(&f);
}

static void
test_tenants_separate(void)
{
    struct fx f;
    struct store_tenant *b = NULL;
    struct alert a;
    char *err = NULL, *pa, *pb;
    int dup = 0;
    int64_t id;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    T_EQ_INT(store_tenant_add(f.st, "beta", "Beta", NULL, &err), 0);
    T_EQ_INT(store_tenant_open(f.st, "beta", &b, &err), 0);
    T_REQUIRE(b != NULL);
    T_EQ_STR(store_tenant_id(b), "beta");

    id = insert_one(f.t, "entra.signin", "only-acme", &dup);
    T_ASSERT(id > 0);
    T_EQ_INT(store_alert_count(f.t), 1);
    T_EQ_INT(store_alert_count(b), 0);
    T_EQ_INT(store_alert_get(b, id, &a, &err), 0);

    /* Same dedup key in the other tenant is a different alert, not a duplicate. */
    T_ASSERT(insert_one(b, "entra.signin", "only-acme", &dup) > 0);
    T_EQ_INT(dup, 0);

    pa = xasprintf("%s/tenants/acme.db", f.dir);
    pb = xasprintf("%s/tenants/beta.db", f.dir);
    T_EQ_INT(access(pa, F_OK), 0);
    T_EQ_INT(access(pb, F_OK), 0);
    free(pa);
    free(pb);
    T_ASSERT(err == NULL);
    store_tenant_close(b);
    fx_teardown(&f);
}

/* The daemon's hot path in one group commit: 10,000 alerts, one run each and two
 * journal entries per run (started, then done). Timed and printed, not asserted. */
static void
test_bulk_timing(void)
{
    enum { N = 10000 };
    struct fx f;
    struct alert a;
    struct journal_entry e;
    char sid[32], *err = NULL;
    int dup = 0, ok = 1;
    int64_t t0, t1, t2, run_id = 0;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    mk_alert(&a, "panos.traffic", "x");
    add_obs(&a, "ip", "198.51.100.23", "src");
    add_obs(&a, "ip", "192.0.2.10", "dst");
    free(a.source_id);
    a.source_id = sid; /* borrowed for the loop; detached before alert_free */
    memset(&e, 0, sizeof(e));
    e.kind = (char *)"ti.lookup";
    e.request = (char *)"{\"ip\":\"198.51.100.23\"}";

    t0 = util_mono_us();
    T_EQ_INT(store_tx_begin(f.t, &err), 0);
    for (int i = 0; i < N && ok; i++) {
        snprintf(sid, sizeof(sid), "s-%d", i);
        a.id = 0;
        e.seq = 1;
        e.result = NULL;
        e.status = JOURNAL_STARTED;
        e.ended_ms = 0;
        ok = store_alert_insert(f.t, &a, &dup, &err) == 0 &&
             store_run_insert(f.t, a.id, "triage", HASH_A, 1000 + i, &run_id, &err) == 0;
        e.run_id = run_id;
        ok = ok && store_journal_put(f.t, &e, &err) == 0;
        e.result = (char *)"{\"hit\":false}";
        e.status = JOURNAL_DONE;
        e.ended_ms = 2;
        ok = ok && store_journal_put(f.t, &e, &err) == 0;
    }
    t1 = util_mono_us();
    T_EQ_INT(store_tx_commit(f.t, &err), 0);
    t2 = util_mono_us();
    T_ASSERT(ok);
    if (err != NULL) {
        fprintf(stderr, "  %s\n", err);
        free(err);
    }
    a.source_id = NULL;
    alert_free(&a);
    T_EQ_INT(store_alert_count(f.t), N);
    printf("store bulk: %d alerts + %d runs + %d journal puts in one transaction: "
           "%.1f ms (commit %.1f ms), %.0f alerts/s\n",
           N, N, 2 * N, (double)(t2 - t0) / 1000, (double)(t2 - t1) / 1000,
           (double)N * 1e6 / (double)(t2 - t0));
    fx_teardown(&f);
}

static long
file_size(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == -1 ? -1 : (long)sb.st_size;
}

/* With the checkpointer, commits leave copying the WAL into the database to the
 * background thread: the main file grows without any commit checkpointing. */
static void
test_background_checkpoints(void)
{
    struct fx f;
    char *err = NULL;
    char *path;
    long before, after = 0;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    path = xasprintf("%s/tenants/acme.db", f.dir);
    T_REQUIRE(store_tenant_checkpointer(f.t, 50, 0, &err) == 0);
    before = file_size(path);
    for (int i = 0; i < 300; i++) {
        struct alert a;
        char sid[32];
        int dup = 0;

        snprintf(sid, sizeof(sid), "ck-%d", i);
        mk_alert(&a, "test.ckpt", sid);
        T_ASSERT(store_tx_begin(f.t, &err) == 0);
        T_ASSERT(store_alert_insert(f.t, &a, &dup, &err) == 0);
        T_ASSERT(store_tx_commit(f.t, &err) == 0);
        alert_free(&a);
    }
    for (int i = 0; i < 100 && (after = file_size(path)) <= before; i++) {
        usleep(20000);
    }
    T_ASSERT(after > before);
    T_EQ_INT(store_alert_count(f.t), 300);
    free(path);
    free(err);
    fx_teardown(&f);
}

/* Another connection (an operator's sqlite3 shell) holds the write lock: begin fails at
 * once with KG_AGAIN ("locked", not an error) after the short busy timeout, the probe
 * says so without waiting, and both work again once the lock is released. */
static void
test_locked_by_another(void)
{
    struct fx f;
    char *err = NULL;
    char *path;
    sqlite3 *h = NULL;
    int64_t t0;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    path = xasprintf("%s/tenants/acme.db", f.dir);
    store_tenant_busy_ms(f.t, 10);
    T_REQUIRE(sqlite3_open(path, &h) == SQLITE_OK);
    T_REQUIRE(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    t0 = util_mono_us();
    T_EQ_INT(store_tx_begin(f.t, &err), KG_AGAIN);
    T_ASSERT(util_mono_us() - t0 < 1000000);
    T_ASSERT(err != NULL && strstr(err, "locked") != NULL);
    T_ASSERT(!store_in_tx(f.t));
    T_EQ_INT(store_tx_probe(f.t), 0);
    T_REQUIRE(sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
    T_EQ_INT(store_tx_probe(f.t), 1);
    T_ASSERT(!store_in_tx(f.t));
    T_EQ_INT(store_tx_begin(f.t, &err), 0);
    T_EQ_INT(store_tx_commit(f.t, &err), 0);
    sqlite3_close(h);
    free(path);
    free(err);
    fx_teardown(&f);
}

/* A reader holding an old snapshot keeps the checkpointer from finishing: the WAL
 * grows past the threshold and the frames behind show; once it lets go the WAL file is
 * truncated to zero. */
static void
test_wal_truncated_after_reader(void)
{
    struct fx f;
    char *err = NULL;
    char *path, *wal;
    sqlite3 *h = NULL;
    struct store_wal w;
    long size = -1;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    path = xasprintf("%s/tenants/acme.db", f.dir);
    wal = xasprintf("%s-wal", path);
    T_REQUIRE(store_tenant_checkpointer(f.t, 50, 64 << 10, &err) == 0);
    T_REQUIRE(sqlite3_open(path, &h) == SQLITE_OK);
    T_REQUIRE(sqlite3_exec(h, "BEGIN; SELECT count(*) FROM alerts;", NULL, NULL, NULL) ==
              SQLITE_OK);
    for (int i = 0; i < 200; i++) {
        struct alert a;
        char sid[32];
        int dup = 0;

        snprintf(sid, sizeof(sid), "wal-%d", i);
        mk_alert(&a, "test.wal", sid);
        T_ASSERT(store_tx_begin(f.t, &err) == 0);
        T_ASSERT(store_alert_insert(f.t, &a, &dup, &err) == 0);
        T_ASSERT(store_tx_commit(f.t, &err) == 0);
        alert_free(&a);
    }
    usleep(200000);
    store_tenant_wal(f.t, &w);
    T_ASSERT(w.bytes > 64 << 10);
    T_ASSERT(w.frames_behind > 0);
    T_REQUIRE(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(h);
    for (int i = 0; i < 200 && (size = file_size(wal)) > 0; i++) {
        usleep(20000);
    }
    T_EQ_INT(size, 0);
    store_tenant_wal(f.t, &w);
    T_EQ_INT(w.frames_behind, 0);
    T_ASSERT(w.complete_ms > 0);
    T_EQ_INT(store_alert_count(f.t), 200);
    free(wal);
    free(path);
    free(err);
    fx_teardown(&f);
}

/* A steady stream of commits: the checkpointer's passes alone never leave the WAL
 * complete before the next commit, so without the hand-over the file would grow by every
 * commit. With it the loop's connection finishes a pass now and then and the WAL begins
 * over: the file stays near its restart size (half of wal_warn), and nothing is lost. */
static void
test_wal_begins_over(void)
{
    struct fx f;
    char *err = NULL, *path, *wal, *raw;
    struct store_wal w;
    long size, max = 0;
    int n = 0, rows = 0;
    int64_t t0;
    sqlite3 *h = NULL;
    sqlite3_stmt *s = NULL;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    path = xasprintf("%s/tenants/acme.db", f.dir);
    wal = xasprintf("%s-wal", path);
    raw = xmalloc(4001);
    memset(raw, 'r', 4000);
    raw[4000] = '\0';
    /* The daemon's 5 s interval: the passes that count come from the writer's wake-up. */
    T_REQUIRE(store_tenant_checkpointer(f.t, 5000, 1 << 20, &err) == 0);
    t0 = util_mono_us();
    for (; n < 4000 && util_mono_us() - t0 < 8000000; n++) {
        T_ASSERT(store_tx_begin(f.t, &err) == 0);
        for (int i = 0; i < 8; i++) {
            struct alert a;
            char sid[32];
            int dup = 0;

            snprintf(sid, sizeof(sid), "wo-%d-%d", n, i);
            mk_alert(&a, "test.wal", sid);
            free(a.raw);
            a.raw = xstrdup(raw);
            T_ASSERT(store_alert_insert(f.t, &a, &dup, &err) == 0);
            alert_free(&a);
        }
        T_ASSERT(store_tx_commit(f.t, &err) == 0);
        if ((size = file_size(wal)) > max) {
            max = size;
        }
        store_tenant_wal(f.t, &w);
        if (w.restarts >= 3 && n >= 2000) {
            n++;
            break;
        }
    }
    store_tenant_wal(f.t, &w);
    fprintf(stderr, "  %d commits (%d KB of rows), %llu restarts, WAL at most %ld KB\n", n,
            n * 8 * 4, w.restarts, max / 1024);
    T_ASSERT(w.restarts >= 3);
    T_ASSERT(n >= 2000);
    /* Without the hand-over every commit appends: n x about 100 KB (0 restarts, 421 MB for
     * 4,000 commits). The bound is loose: a disk busy with other work slows the
     * checkpointer's syncs, and the WAL grows meanwhile. */
    T_ASSERT(max < (long)n * 64 * 1024);
    T_EQ_INT(store_alert_count(f.t), (int64_t)n * 8);
    T_REQUIRE(sqlite3_open(path, &h) == SQLITE_OK);
    T_REQUIRE(sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &s, NULL) == SQLITE_OK);
    T_ASSERT(sqlite3_step(s) == SQLITE_ROW);
    T_EQ_STR((const char *)sqlite3_column_text(s, 0), "ok");
    sqlite3_finalize(s);
    T_REQUIRE(sqlite3_prepare_v2(h, "SELECT count(*) FROM alerts", -1, &s, NULL) == SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW) {
        rows = sqlite3_column_int(s, 0);
    }
    T_EQ_INT(rows, n * 8);
    sqlite3_finalize(s);
    sqlite3_close(h);
    free(raw);
    free(wal);
    free(path);
    free(err);
    fx_teardown(&f);
}

/* Insert an alert with the given severity, outcome, received time and one user
 * observable; returns its id or -1. */
static int64_t
insert_alert(struct store_tenant *t, const char *source, const char *sid, int sev,
             const char *outcome, int64_t received_ms, const char *user)
{
    struct alert a;
    char *err = NULL;
    int64_t id = -1;
    int dup = 0;

    mk_alert(&a, source, sid);
    a.severity = sev;
    free(a.outcome);
    a.outcome = xstrdup(outcome);
    a.received_ms = received_ms;
    add_obs(&a, "user", user, NULL);
    add_obs(&a, "ip", "192.0.2.1", NULL);
    if (store_tx_begin(t, &err) == 0 && store_alert_insert(t, &a, &dup, &err) == 0 &&
        store_tx_commit(t, &err) == 0) {
        id = a.id;
    } else {
        fprintf(stderr, "  insert_alert: %s\n", err);
        store_tx_rollback(t);
    }
    free(err);
    alert_free(&a);
    return id;
}

static size_t
alert_query_n(struct store_tenant *t, const struct store_alert_where *f, int64_t *first)
{
    struct alert *v = NULL;
    size_t n = 0;
    char *err = NULL;

    if (store_alert_query(t, f, &v, &n, &err) == -1) {
        fprintf(stderr, "  alert query: %s\n", err);
        free(err);
        return (size_t)-1;
    }
    *first = n > 0 ? v[0].id : 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i].raw != NULL || v[i].nobs != 2) { /* listed without raw, with observables */
            n = (size_t)-2;
            break;
        }
    }
    store_alerts_free(v, n == (size_t)-2 ? 0 : n);
    return n;
}

static void
test_alert_query(void)
{
    struct fx f;
    struct store_alert_where q;
    int64_t a1, a2, a3, first = 0;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    a1 = insert_alert(f.t, "entra.signin", "1", SEV_LOW, "blocked", 1000, "alice@example.jp");
    a2 = insert_alert(f.t, "entra.signin", "2", SEV_HIGH, "succeeded", 2000, "bob@example.jp");
    a3 = insert_alert(f.t, "defender.alert", "3", SEV_CRITICAL, "attempted", 3000,
                      "alice@example.jp");
    T_REQUIRE(a1 > 0 && a2 > a1 && a3 > a2);

#define Q_RESET()                                                                                  \
    do {                                                                                           \
        memset(&q, 0, sizeof(q));                                                                  \
        q.severity_min = -1;                                                                       \
        q.severity = -1;                                                                           \
        q.cls = -1;                                                                                \
    } while (0)
    Q_RESET();
    T_EQ_INT(alert_query_n(f.t, &q, &first), 3);
    T_EQ_INT(first, a3); /* newest first */
    q.source = "entra.signin";
    T_EQ_INT(alert_query_n(f.t, &q, &first), 2);
    Q_RESET();
    q.severity_min = SEV_HIGH;
    T_EQ_INT(alert_query_n(f.t, &q, &first), 2);
    Q_RESET();
    q.severity = SEV_LOW;
    T_EQ_INT(alert_query_n(f.t, &q, &first), 1);
    T_EQ_INT(first, a1);
    Q_RESET();
    q.outcome = "succeeded";
    T_EQ_INT(alert_query_n(f.t, &q, &first), 1);
    T_EQ_INT(first, a2);
    Q_RESET();
    q.since_ms = 2000;
    q.until_ms = 3000; /* since <= received < until */
    T_EQ_INT(alert_query_n(f.t, &q, &first), 1);
    T_EQ_INT(first, a2);
    Q_RESET();
    q.observable = "alice@example.jp";
    T_EQ_INT(alert_query_n(f.t, &q, &first), 2);
    q.observable = "alice"; /* exact values only */
    T_EQ_INT(alert_query_n(f.t, &q, &first), 0);
    q.observable = "x' OR 1=1 --"; /* bound, never part of the SQL */
    T_EQ_INT(alert_query_n(f.t, &q, &first), 0);
    Q_RESET();
    q.observable = "alice@example.jp";
    q.severity_min = SEV_CRITICAL;
    q.source = "defender.alert";
    T_EQ_INT(alert_query_n(f.t, &q, &first), 1);
    T_EQ_INT(first, a3);
    Q_RESET();
    q.limit = 2;
    T_EQ_INT(alert_query_n(f.t, &q, &first), 2);
#undef Q_RESET
    fx_teardown(&f);
}

static void
test_run_results_and_query(void)
{
    struct fx f;
    struct store_run_filter q;
    struct store_run r, *v = NULL;
    size_t n = 0;
    int64_t a1, a2, r1 = 0, r2 = 0, r3 = 0;
    char *err = NULL;
    int dup = 0;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    a1 = insert_one(f.t, "x", "1", &dup);
    a2 = insert_one(f.t, "x", "2", &dup);
    T_EQ_INT(store_run_insert(f.t, a1, "triage", HASH_A, 1000, &r1, &err), 0);
    T_EQ_INT(store_run_insert(f.t, a1, "contain", HASH_B, 2000, &r2, &err), 0);
    T_EQ_INT(store_run_insert(f.t, a2, "triage", HASH_A, 3000, &r3, &err), 0);

    /* The result goes with the final state, in one transaction. */
    T_EQ_INT(store_tx_begin(f.t, &err), 0);
    T_EQ_INT(store_run_update(f.t, r1, "done", 1001, 1002, NULL, &err), 0);
    T_EQ_INT(store_run_set_result(f.t, r1, "{\"verdict\":\"contained\"}", NULL, &err), 0);
    T_EQ_INT(store_run_update(f.t, r2, "done", 2001, 2002, NULL, &err), 0);
    T_EQ_INT(store_run_set_result(f.t, r2, NULL, "not JSON", &err), 0);
    T_EQ_INT(store_tx_commit(f.t, &err), 0);
    T_ASSERT(err == NULL);
    T_EQ_INT(store_run_get(f.t, r1, &r, &err), 1);
    T_EQ_STR(r.result, "{\"verdict\":\"contained\"}");
    T_ASSERT(r.result_note == NULL);
    store_run_free(&r);
    T_EQ_INT(store_run_get(f.t, r2, &r, &err), 1);
    T_ASSERT(r.result == NULL);
    T_EQ_STR(r.result_note, "not JSON");
    store_run_free(&r);
    T_EQ_INT(store_run_get(f.t, r3, &r, &err), 1);
    T_ASSERT(r.result == NULL && r.result_note == NULL);
    store_run_free(&r);
    /* A rolled-back end leaves no result. */
    T_EQ_INT(store_tx_begin(f.t, &err), 0);
    T_EQ_INT(store_run_set_result(f.t, r3, "1", NULL, &err), 0);
    store_tx_rollback(f.t);
    T_EQ_INT(store_run_get(f.t, r3, &r, &err), 1);
    T_ASSERT(r.result == NULL);
    store_run_free(&r);

    memset(&q, 0, sizeof(q));
    q.playbook = "triage";
    T_EQ_INT(store_run_query(f.t, &q, &v, &n, &err), 0);
    T_EQ_INT(n, 2);
    T_ASSERT(n == 2 && v[0].id == r3 && v[1].id == r1);
    store_runs_free(v, n);
    q.alert_id = a1;
    T_EQ_INT(store_run_query(f.t, &q, &v, &n, &err), 0);
    T_ASSERT(n == 1 && v[0].id == r1 && strcmp(v[0].result, "{\"verdict\":\"contained\"}") == 0);
    store_runs_free(v, n);
    memset(&q, 0, sizeof(q));
    q.state = "done";
    q.since_ms = 1500;
    T_EQ_INT(store_run_query(f.t, &q, &v, &n, &err), 0);
    T_ASSERT(n == 1 && v[0].id == r2);
    store_runs_free(v, n);
    memset(&q, 0, sizeof(q));
    q.until_ms = 2000;
    T_EQ_INT(store_run_query(f.t, &q, &v, &n, &err), 0);
    T_ASSERT(n == 1 && v[0].id == r1);
    store_runs_free(v, n);
    q.state = "asleep";
    T_EQ_INT(store_run_query(f.t, &q, &v, &n, &err), -1);
    T_CONTAINS(err, "invalid run state");
    free(err);
    fx_teardown(&f);
}

static void
test_lock_probe(void)
{
    struct fx f;
    struct store *other = NULL;
    long pid = -1;
    char *err = NULL;

    T_REQUIRE(fx_setup(&f, 0) == 0);
    T_EQ_INT(store_lock_probe(f.dir, &pid), 0); /* no lock file yet */
    T_EQ_INT(store_lock(f.st, &err), 0);
    T_EQ_INT(store_lock_probe(f.dir, &pid), 1);
    T_EQ_INT(pid, getpid());
    /* The probe took nothing: the holder still holds it, a second daemon is refused. */
    T_EQ_INT(store_open(f.dir, &other, &err), 0);
    T_EQ_INT(store_lock(other, &err), -1);
    T_CONTAINS(err, "in use by another kagari serve");
    free(err);
    store_close(other);
    store_close(f.st); /* releases it */
    f.st = NULL;
    T_EQ_INT(store_lock_probe(f.dir, &pid), 0);
    fx_teardown(&f);
}

/* Escalations: insert, read, acknowledge once (a second one changes nothing), contacts
 * reached and the exhausted state, newest first in the list. */
static void
test_escalations(void)
{
    struct fx f;
    struct store_esc e = { 0 }, got, *v = NULL;
    int64_t id1 = 0, id2 = 0;
    size_t n = 0;
    char *err = NULL;
    char level[] = "critical", reason[] = "succeeded sign-in\nfrom a known bad IP",
         subject[] = "侵害の疑い";

    T_REQUIRE(fx_setup(&f, 1) == 0);
    e.run_id = 7;
    e.level = level;
    e.reason = reason;
    e.subject = subject;
    e.contacts = 3;
    e.created_ms = 1000;
    T_REQUIRE(store_tx_begin(f.t, &err) == 0);
    T_EQ_INT(store_esc_insert(f.t, &e, &id1, &err), 0);
    T_EQ_INT(store_esc_insert(f.t, &e, &id2, &err), 0);
    T_REQUIRE(store_tx_commit(f.t, &err) == 0);
    T_ASSERT(id2 > id1);
    T_EQ_INT(store_esc_get(f.t, id1, &got, &err), 1);
    T_EQ_STR(got.state, "open");
    T_EQ_STR(got.subject, "侵害の疑い");
    T_EQ_STR(got.reason, "succeeded sign-in\nfrom a known bad IP");
    T_EQ_INT(got.reached, 0);
    T_EQ_INT(got.acked_ms, 0);
    T_ASSERT(got.acked_by == NULL);
    store_esc_free(&got);
    T_EQ_INT(store_esc_get(f.t, 999, &got, &err), 0);

    T_EQ_INT(store_esc_reached(f.t, id1, 1, 2000, 0, &err), 1);
    T_EQ_INT(store_esc_ack(f.t, id1, "Sato", "link", 5000, &err), 1);
    T_EQ_INT(store_esc_ack(f.t, id1, "Mallory", "cli", 6000, &err), 0);
    T_EQ_INT(store_esc_ack(f.t, 999, "x", "cli", 6000, &err), 0);
    T_EQ_INT(store_esc_get(f.t, id1, &got, &err), 1);
    T_EQ_STR(got.state, "acked");
    T_EQ_STR(got.acked_by, "Sato");
    T_EQ_STR(got.acked_via, "link");
    T_EQ_INT(got.acked_ms - got.created_ms, 4000);
    T_EQ_INT(got.reached, 1);
    store_esc_free(&got);
    /* An acknowledged escalation is never marked exhausted afterwards. */
    T_EQ_INT(store_esc_reached(f.t, id1, 3, 9000, 1, &err), 1);
    T_EQ_INT(store_esc_get(f.t, id1, &got, &err), 1);
    T_EQ_STR(got.state, "acked");
    store_esc_free(&got);

    T_EQ_INT(store_esc_reached(f.t, id2, 3, 9000, 1, &err), 1);
    T_EQ_INT(store_esc_get(f.t, id2, &got, &err), 1);
    T_EQ_STR(got.state, "exhausted");
    T_EQ_INT(got.reached, 3);
    T_EQ_INT(got.reached_ms, 9000);
    store_esc_free(&got);

    T_EQ_INT(store_esc_list(f.t, 10, &v, &n, &err), 0);
    T_EQ_INT(n, 2);
    T_EQ_INT(v[0].id, id2);
    T_EQ_INT(v[1].id, id1);
    for (size_t i = 0; i < n; i++) {
        store_esc_free(&v[i]);
    }
    free(v);
    T_ASSERT(err == NULL);
    fx_teardown(&f);
}

/* Events: columns taken from the observables, dedup, every filter (ip on either side,
 * user and device ignoring case), time bounds, limits, counts, and pruning in id order
 * by received time, bounded per call. */
static void
test_events(void)
{
    struct fx f;
    char *err = NULL;
    struct buf out;
    size_t n = 0;
    int64_t cnt = 0;
    int dup = 0, deleted = 0;
    struct store_event_filter flt;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    T_REQUIRE(store_tx_begin(f.t, &err) == 0);
    for (int i = 0; i < 10; i++) {
        struct alert e;
        char ip[32];

        memset(&e, 0, sizeof(e));
        e.source = xstrdup(i < 8 ? "panos.traffic" : "panos.auth");
        e.source_id = xasprintf("sn/TRAFFIC/%d", i);
        e.time_ms = 1000 + i;
        e.received_ms = 5000 + i * 100;
        e.title = xstrdup("flow");
        e.outcome = xstrdup("succeeded");
        e.raw = xstrdup("{\"message\":\"x\"}");
        snprintf(ip, sizeof(ip), "10.0.0.%d", i % 3);
        alert_add_observable(&e, "ip", "198.51.100.7", "dst");
        alert_add_observable(&e, "ip", ip, "src");
        alert_add_observable(&e, "user", i % 2 ? "Example\\Taro" : "jiro", "src");
        alert_add_observable(&e, "host", "JP-LT-1", "src");
        T_ASSERT(store_event_insert(f.t, &e, &dup, &err) == 0 && dup == 0);
        T_ASSERT(store_event_insert(f.t, &e, &dup, &err) == 0 && dup == 1);
        alert_free(&e);
    }
    T_REQUIRE(store_tx_commit(f.t, &err) == 0);
    T_EQ_INT(store_event_total(f.t), 10);
    memset(&flt, 0, sizeof(flt));
    flt.until_ms = INT64_MAX;
    flt.limit = 100;
    flt.user = "example\\TARO";
    buf_init(&out, 0);
    T_REQUIRE(store_event_query(f.t, &flt, &out, &n, &err) == 0);
    T_EQ_INT(n, 5);
    T_ASSERT(strstr(out.data, "\"dst_ip\":\"198.51.100.7\"") != NULL);
    T_ASSERT(strstr(out.data, "\"raw\":{\"message\":\"x\"}") != NULL);
    T_ASSERT(strncmp(out.data, "[{\"id\":10,", 10) == 0); /* newest first */
    flt.user = NULL;
    flt.ip = "198.51.100.7"; /* the destination side */
    T_REQUIRE(store_event_count(f.t, &flt, &cnt, &err) == 0);
    T_EQ_INT(cnt, 10);
    flt.ip = "10.0.0.1";
    flt.source = "panos.traffic";
    T_REQUIRE(store_event_count(f.t, &flt, &cnt, &err) == 0);
    T_EQ_INT(cnt, 3); /* 1, 4, 7 (10 is not: i < 10) */
    flt.outcome = "blocked";
    T_REQUIRE(store_event_count(f.t, &flt, &cnt, &err) == 0);
    T_EQ_INT(cnt, 0);
    flt.outcome = "succeeded";
    T_REQUIRE(store_event_count(f.t, &flt, &cnt, &err) == 0);
    T_EQ_INT(cnt, 3);
    flt.outcome = NULL;
    flt.ip = NULL;
    flt.source = NULL;
    flt.device = "jp-lt-1";
    flt.since_ms = 1005;
    flt.limit = 2;
    buf_reset(&out);
    T_REQUIRE(store_event_query(f.t, &flt, &out, &n, &err) == 0);
    T_EQ_INT(n, 2);
    flt.limit = 100;
    T_REQUIRE(store_event_count(f.t, &flt, &cnt, &err) == 0);
    T_EQ_INT(cnt, 5);
    {
        int64_t first = 0;

        T_EQ_INT(store_event_first(f.t, &first, &err), 1);
        T_EQ_INT(first, 5000);
    }
    /* pruning: received 5000..5900; before 5350 are 4; at most 3 per call */
    T_REQUIRE(store_tx_begin(f.t, &err) == 0);
    T_REQUIRE(store_event_prune(f.t, 5350, 3, &deleted, &err) == 0);
    T_EQ_INT(deleted, 3);
    T_REQUIRE(store_event_prune(f.t, 5350, 3, &deleted, &err) == 0);
    T_EQ_INT(deleted, 1);
    T_REQUIRE(store_event_prune(f.t, 5350, 3, &deleted, &err) == 0);
    T_EQ_INT(deleted, 0);
    T_REQUIRE(store_tx_commit(f.t, &err) == 0);
    T_EQ_INT(store_event_total(f.t), 6);
    T_ASSERT(store_event_prune(f.t, 9999, 3, &deleted, &err) == -1); /* no transaction */
    free(err);
    buf_free(&out);
    fx_teardown(&f);
}

/* Source marks: none at first, written in a transaction, replaced, kept per (source,
 * key), gone with a rollback, and there after a reopen. */
static void
test_source_marks(void)
{
    struct fx f;
    char *err = NULL, *v = NULL;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    T_EQ_INT(store_mark_get(f.t, "blob", "c/a.json", &v, &err), 0);
    T_ASSERT(v == NULL);
    T_REQUIRE(store_tx_begin(f.t, &err) == 0);
    T_EQ_INT(store_mark_put(f.t, "blob", "c/a.json", "{\"offset\":10}", &err), 0);
    T_EQ_INT(store_mark_put(f.t, "blob", "c/b.json", "{\"offset\":7}", &err), 0);
    T_EQ_INT(store_mark_put(f.t, "other", "c/a.json", "x", &err), 0);
    T_EQ_INT(store_mark_put(f.t, "blob", "c/a.json", "{\"offset\":20}", &err), 0);
    T_REQUIRE(store_tx_commit(f.t, &err) == 0);
    T_EQ_INT(store_mark_get(f.t, "blob", "c/a.json", &v, &err), 0);
    T_EQ_STR(v, "{\"offset\":20}");
    free(v);
    T_EQ_INT(store_mark_get(f.t, "other", "c/a.json", &v, &err), 0);
    T_EQ_STR(v, "x");
    free(v);
    /* a rolled back mark is not there */
    T_REQUIRE(store_tx_begin(f.t, &err) == 0);
    T_EQ_INT(store_mark_put(f.t, "blob", "c/a.json", "{\"offset\":99}", &err), 0);
    store_tx_rollback(f.t);
    T_EQ_INT(store_mark_get(f.t, "blob", "c/a.json", &v, &err), 0);
    T_EQ_STR(v, "{\"offset\":20}");
    free(v);
    /* durable across a reopen */
    store_tenant_close(f.t);
    f.t = NULL;
    T_REQUIRE(store_tenant_open(f.st, "acme", &f.t, &err) == 0);
    T_EQ_INT(store_mark_get(f.t, "blob", "c/b.json", &v, &err), 0);
    T_EQ_STR(v, "{\"offset\":7}");
    free(v);
    /* pruning forgets the source's marks written before a time, and only its own */
    {
        int deleted = -1;

        T_REQUIRE(store_tx_begin(f.t, &err) == 0);
        T_EQ_INT(store_mark_prune(f.t, "blob", util_now_ms() - 60000, &deleted, &err), 0);
        T_EQ_INT(deleted, 0);
        T_EQ_INT(store_mark_prune(f.t, "blob", util_now_ms() + 1, &deleted, &err), 0);
        T_EQ_INT(deleted, 2);
        T_REQUIRE(store_tx_commit(f.t, &err) == 0);
        T_EQ_INT(store_mark_get(f.t, "blob", "c/a.json", &v, &err), 0);
        T_ASSERT(v == NULL);
        T_EQ_INT(store_mark_get(f.t, "other", "c/a.json", &v, &err), 0);
        T_EQ_STR(v, "x");
        free(v);
    }
    fx_teardown(&f);
}

/* The FNV-1a hash the store keys events by (kg_vhash), for building collisions here. */
static int64_t
fnv(const char *v)
{
    uint64_t h = 14695981039346656037ULL;

    for (; *v != '\0'; v++) {
        h ^= (unsigned char)*v;
        h *= 1099511628211ULL;
    }
    return (int64_t)h;
}

static int
put_event(struct store_tenant *t, const char *source, const char *id, const char *user, int *dup,
          char **err)
{
    struct alert e;
    int rc;

    memset(&e, 0, sizeof(e));
    e.source = xstrdup(source);
    e.source_id = xstrdup(id);
    e.time_ms = 1000;
    e.received_ms = 2000;
    e.outcome = xstrdup("unknown");
    if (user != NULL) {
        alert_add_observable(&e, "user", user, "src");
    }
    rc = store_event_insert(t, &e, dup, err);
    alert_free(&e);
    return rc;
}

/* Events are deduplicated and looked up by 64-bit hashes: two records with one dedup
 * hash are both kept (the second takes the next key) and each is still deduplicated;
 * a lookup hash shared by two values finds only the value asked for. */
static void
test_event_hash_collisions(void)
{
    struct fx f;
    char *err = NULL, *path, *sql;
    sqlite3 *db;
    int dup = 0;
    int64_t cnt = 0;
    struct store_event_filter flt;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    /* Another record already holds the dedup key of ("panos.x", "B") and the user key of
     * "bob": as if its (source, source_id) and its user had the same hashes as those. */
    path = xasprintf("%s/tenants/acme.db", f.dir);
    T_REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    sql = xasprintf("INSERT INTO events (sid, time, received, source, source_id, user, uk,"
                    " severity, outcome) VALUES (%lld, 1000, 2000, 'panos.x', 'A', 'alice',"
                    " %lld, 0, 'unknown')",
                    (long long)fnv("panos.x\nB"), (long long)fnv("bob"));
    T_REQUIRE(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    free(sql);
    sqlite3_close(db);
    free(path);
    T_REQUIRE(store_tx_begin(f.t, &err) == 0);
    T_REQUIRE(put_event(f.t, "panos.x", "B", "Bob", &dup, &err) == 0);
    T_EQ_INT(dup, 0); /* not taken for the record at its key */
    T_REQUIRE(put_event(f.t, "panos.x", "B", "Bob", &dup, &err) == 0);
    T_EQ_INT(dup, 1);
    T_REQUIRE(store_tx_commit(f.t, &err) == 0);
    T_EQ_INT(store_event_total(f.t), 2);
    memset(&flt, 0, sizeof(flt));
    flt.until_ms = INT64_MAX;
    flt.limit = 100;
    flt.user = "BOB"; /* case folded: the key of "bob", where alice's row also is */
    T_REQUIRE(store_event_count(f.t, &flt, &cnt, &err) == 0);
    T_EQ_INT(cnt, 1);
    flt.user = "alice"; /* alice's row has bob's key, not hers: not found by it */
    T_REQUIRE(store_event_count(f.t, &flt, &cnt, &err) == 0);
    T_EQ_INT(cnt, 0);
    T_ASSERT(err == NULL);
    fx_teardown(&f);
}

/* A database of the earlier events table (migration 8, text indexes) is rebuilt with
 * the hashed keys: its rows keep their ids and are found and deduplicated as before. The
 * database is set back to the version just before the rebuild (14), so only the rebuild
 * and the migrations appended after it run again. */
static void
test_event_table_migrated(void)
{
    struct fx f;
    char *err = NULL, *path;
    sqlite3 *db;
    int dup = 0;
    int64_t cnt = 0;
    struct store_event_filter flt;
    struct buf out;
    size_t n = 0;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    store_tenant_close(f.t);
    f.t = NULL;
    path = xasprintf("%s/tenants/acme.db", f.dir);
    T_REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    T_REQUIRE(
        sqlite3_exec(
            db,
            "DROP TABLE events;"
            "CREATE TABLE events (id INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
            " received INTEGER NOT NULL, source TEXT NOT NULL, source_id TEXT NOT NULL,"
            " user TEXT COLLATE NOCASE, ip TEXT, dst_ip TEXT, device TEXT COLLATE NOCASE,"
            " severity INTEGER NOT NULL, outcome TEXT NOT NULL, category TEXT, title TEXT,"
            " observables TEXT NOT NULL DEFAULT '[]', raw TEXT);"
            "CREATE UNIQUE INDEX events_dedup ON events (source, source_id);"
            "INSERT INTO events (id, time, received, source, source_id, user, ip, dst_ip, device,"
            " severity, outcome) VALUES"
            " (7, 1000, 2000, 'panos.traffic', 's/1', 'Example\\Taro', '10.0.0.1',"
            "  '198.51.100.7', 'JP-LT-1', 0, 'succeeded'),"
            " (9, 1001, 2001, 'panos.traffic', 's/2', NULL, '10.0.0.2', NULL, NULL, 0,"
            "  'blocked');"
            /* the migration appended after the rebuild (15, the playbook view) is undone
             * too, so that it runs again */
            "DROP TABLE playbook_deploys; DROP TABLE playbook_switches;"
            "DROP INDEX runs_version; DROP TRIGGER run_counts_add; DROP TABLE run_counts;"
            "ALTER TABLE runs DROP COLUMN dry_run;"
            "PRAGMA user_version = 13;",
            NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    free(path);
    T_REQUIRE(store_tenant_open(f.st, "acme", &f.t, &err) == 0);
    T_EQ_INT(store_event_total(f.t), 2);
    memset(&flt, 0, sizeof(flt));
    flt.until_ms = INT64_MAX;
    flt.limit = 100;
    flt.user = "example\\taro";
    buf_init(&out, 0);
    T_REQUIRE(store_event_query(f.t, &flt, &out, &n, &err) == 0);
    T_EQ_INT(n, 1);
    T_ASSERT(strncmp(out.data, "[{\"id\":7,", 9) == 0);
    flt.user = NULL;
    flt.ip = "198.51.100.7";
    T_REQUIRE(store_event_count(f.t, &flt, &cnt, &err) == 0);
    T_EQ_INT(cnt, 1);
    flt.ip = "10.0.0.2";
    T_REQUIRE(store_event_count(f.t, &flt, &cnt, &err) == 0);
    T_EQ_INT(cnt, 1);
    flt.ip = NULL;
    flt.device = "jp-lt-1";
    T_REQUIRE(store_event_count(f.t, &flt, &cnt, &err) == 0);
    T_EQ_INT(cnt, 1);
    T_REQUIRE(store_tx_begin(f.t, &err) == 0);
    T_REQUIRE(put_event(f.t, "panos.traffic", "s/2", NULL, &dup, &err) == 0);
    T_EQ_INT(dup, 1);
    T_REQUIRE(put_event(f.t, "panos.traffic", "s/3", NULL, &dup, &err) == 0);
    T_EQ_INT(dup, 0);
    T_REQUIRE(store_tx_commit(f.t, &err) == 0);
    T_EQ_INT(store_event_total(f.t), 3);
    T_ASSERT(err == NULL);
    buf_free(&out);
    fx_teardown(&f);
}

/* The playbook view: deployments are recorded once per change of version, a later
 * record with a deployer completes an anonymous one, the switch is set and cleared, and
 * runs are counted and listed per version and per playbook. */
static void
test_playbook_view(void)
{
    struct fx f;
    struct store_deploy *d = NULL;
    struct store_run *runs = NULL, r;
    size_t n = 0;
    int64_t count = 0, ids[5], late = 0;
    char *err = NULL, *by = NULL;
    int on = -1, dup = 0;
    int64_t changed = 0, alert_id;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    /* the daemon loads version A (nobody known), then the CLI says who deployed it */
    T_EQ_INT(store_deploy_record(f.t, "triage", HASH_A, 1000, NULL, "reload", &err), 1);
    T_EQ_INT(store_deploy_record(f.t, "triage", HASH_A, 1100, NULL, "reload", &err), 0);
    T_EQ_INT(store_deploy_record(f.t, "triage", HASH_A, 1200, "alice", "cli", &err), 1);
    T_EQ_INT(store_deploy_record(f.t, "triage", HASH_A, 1300, "bob", "cli", &err), 0);
    /* B by bob, then A again (a roll-back) by carol; another playbook */
    T_EQ_INT(store_deploy_record(f.t, "triage", HASH_B, 2000, "bob", "cli", &err), 1);
    T_EQ_INT(store_deploy_record(f.t, "triage", HASH_A, 3000, "carol", "api", &err), 1);
    T_EQ_INT(store_deploy_record(f.t, "contain", HASH_B, 2500, NULL, "reload", &err), 1);
    T_ASSERT(err == NULL);
    T_EQ_INT(store_deploy_list(f.t, "triage", 10, &d, &n, &err), 0);
    T_EQ_INT(n, 3);
    T_EQ_STR(d[0].version, HASH_A);
    T_EQ_STR(d[0].by, "carol");
    T_EQ_STR(d[0].via, "api");
    T_EQ_INT(d[0].deployed_ms, 3000);
    T_EQ_STR(d[1].version, HASH_B);
    T_EQ_STR(d[2].by, "alice");
    T_EQ_STR(d[2].via, "cli");
    T_EQ_INT(d[2].deployed_ms, 1000);
    store_deploys_free(d, n);
    /* the latest of each playbook, by name */
    T_EQ_INT(store_deploy_list(f.t, NULL, 10, &d, &n, &err), 0);
    T_EQ_INT(n, 2);
    T_EQ_STR(d[0].name, "contain");
    T_ASSERT(d[0].by == NULL);
    T_EQ_STR(d[1].name, "triage");
    T_EQ_STR(d[1].by, "carol");
    store_deploys_free(d, n);

    /* the switch: unset, on, off, cleared */
    T_EQ_INT(store_switch_get(f.t, "triage", &on, &changed, &by, &err), 0);
    T_EQ_INT(store_switch_set(f.t, "triage", 1, 5000, "erin", &err), 0);
    T_EQ_INT(store_switch_get(f.t, "triage", &on, &changed, &by, &err), 1);
    T_EQ_INT(on, 1);
    T_EQ_INT(changed, 5000);
    T_EQ_STR(by, "erin");
    free(by);
    T_EQ_INT(store_switch_set(f.t, "triage", 0, 6000, "fred", &err), 0);
    T_EQ_INT(store_switch_get(f.t, "triage", &on, NULL, NULL, &err), 1);
    T_EQ_INT(on, 0);
    T_EQ_INT(store_switch_set(f.t, "triage", -1, 7000, "fred", &err), 0);
    T_EQ_INT(store_switch_get(f.t, "triage", &on, NULL, NULL, &err), 0);

    /* runs per version and per playbook; a run's dry-run state */
    alert_id = insert_one(f.t, "entra.risk", "pv-1", &dup);
    T_REQUIRE(alert_id > 0);
    for (int i = 0; i < 5; i++) {
        T_EQ_INT(store_run_insert(f.t, alert_id, "triage", i < 3 ? HASH_A : HASH_B,
                                  (int64_t)(i + 1) * 1000, &ids[i], &err),
                 0);
    }
    T_EQ_INT(store_run_set_dry_run(f.t, ids[4], 1, &err), 0);
    T_EQ_INT(store_run_get(f.t, ids[4], &r, &err), 1);
    T_EQ_INT(r.dry_run, 1);
    store_run_free(&r);
    T_EQ_INT(store_run_get(f.t, ids[0], &r, &err), 1);
    T_EQ_INT(r.dry_run, -1);
    store_run_free(&r);
    T_EQ_INT(store_run_count_version(f.t, "triage", HASH_A, &count, &err), 0);
    T_EQ_INT(count, 3);
    T_EQ_INT(store_run_count_version(f.t, "contain", HASH_A, &count, &err), 0);
    T_EQ_INT(count, 0);
    /* by the hour: runs created at 1-5 s and 2 h later */
    T_EQ_INT(store_run_insert(f.t, alert_id, "triage", HASH_B, 7200000 + 5, &late, &err), 0);
    T_ASSERT(late > ids[4]);
    T_EQ_INT(store_run_count_playbook(f.t, "triage", 0, &count, &err), 0);
    T_EQ_INT(count, 6);
    T_EQ_INT(store_run_count_playbook(f.t, "triage", 7200000 + 1000, &count, &err), 0);
    T_EQ_INT(count, 1);
    T_EQ_INT(store_run_count_version(f.t, "triage", HASH_B, &count, &err), 0);
    T_EQ_INT(count, 3);
    T_EQ_INT(store_run_count_playbook(f.t, "contain", 0, &count, &err), 0);
    T_EQ_INT(count, 0);
    T_EQ_INT(store_run_by_version(f.t, HASH_A, 0, 2, &runs, &n, &err), 0);
    T_EQ_INT(n, 2);
    T_EQ_INT(runs[0].id, ids[2]);
    T_EQ_INT(runs[1].id, ids[1]);
    store_runs_free(runs, n);
    T_EQ_INT(store_run_by_version(f.t, HASH_A, ids[1], 10, &runs, &n, &err), 0);
    T_EQ_INT(n, 1);
    T_EQ_INT(runs[0].id, ids[0]);
    store_runs_free(runs, n);
    T_ASSERT(err == NULL);
    fx_teardown(&f);
}

/* Count the rows of a query's single column result, through a connection of its own. */
static int64_t
raw_count(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int64_t v = -1;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
        v = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* One record stored with the alerts as class (the store of a previous release). */
static void
put_record(struct store_tenant *t, const char *id, int cls, int64_t *rowid)
{
    struct alert a;
    char *err = NULL;
    int dup = 0;

    memset(&a, 0, sizeof(a));
    a.source = xstrdup("entra.signin");
    a.source_id = xstrdup(id);
    a.time_ms = 1000;
    a.received_ms = 2000;
    a.title = xstrdup("Sign-in failed");
    a.outcome = xstrdup("blocked");
    a.cls = cls;
    a.raw = xasprintf("{ \"id\" : \"%s\" }", id); /* as sent, spacing kept */
    alert_add_observable(&a, "ip", "203.0.113.9", "dst");
    alert_add_observable(&a, "user", "taro@example.jp", "account");
    alert_add_observable(&a, "ip", "198.51.100.4", "src");
    alert_add_observable(&a, "device", "PC-7", NULL);
    T_ASSERT(store_alert_insert(t, &a, &dup, &err) == 0 && dup == 0);
    if (rowid != NULL) {
        *rowid = a.id;
    }
    alert_free(&a);
    free(err);
}

/* The move of records of class event from the alerts table (where a previous release's
 * HTTP intake kept them) to the event store: each once, its columns picked from its
 * observables, its raw as stored; one already in the event store is not doubled; one
 * whose dedup key another record holds takes the next; its alert rows and observable
 * index rows are gone; alerts and a record a run refers to stay. The move is the last tenant
 * migration: one appended after it must be undone here before the version is set back (as in
 * test_state.c). */
static void
test_events_moved_by_migration(void)
{
    struct fx f;
    char *err = NULL, *tpath;
    int64_t kept = 0, run = 0;
    int tv, dup = 0;
    struct buf out;
    size_t n = 0;
    struct store_event_filter flt;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    tpath = xasprintf("%s/tenants/acme.db", f.dir);
    T_REQUIRE(store_tx_begin(f.t, &err) == 0);
    put_record(f.t, "ev-1", ALERT_CLASS_EVENT, NULL);
    put_record(f.t, "ev-2", ALERT_CLASS_EVENT, NULL);
    put_record(f.t, "ev-both", ALERT_CLASS_EVENT, NULL);
    put_record(f.t, "al-1", ALERT_CLASS_ALERT, NULL);
    put_record(f.t, "ev-run", ALERT_CLASS_EVENT, &kept);
    T_REQUIRE(store_run_insert(f.t, kept, "pb", HASH_A, 3000, &run, &err) == 0);
    {
        /* ev-both is already in the event store too (its source sent it twice) */
        struct alert e;

        memset(&e, 0, sizeof(e));
        e.source = xstrdup("entra.signin");
        e.source_id = xstrdup("ev-both");
        e.time_ms = 500;
        e.received_ms = 600;
        e.outcome = xstrdup("blocked");
        e.raw = xstrdup("{\"first\":true}");
        T_ASSERT(store_event_insert(f.t, &e, &dup, &err) == 0 && dup == 0);
        alert_free(&e);
    }
    T_REQUIRE(store_tx_commit(f.t, &err) == 0);
    store_tenant_close(f.t);
    f.t = NULL;
    tv = raw_user_version(tpath, -1);
    T_REQUIRE(tv >= 16);
    /* back to the schema before the move (15): the move and the migrations after it
     * (17, source_marks, created only if missing) run again */
    T_EQ_INT(raw_user_version(tpath, 15), 15);
    {
        /* Another record holds ev-2's dedup key (two records, one hash): it takes the
         * next one. */
        sqlite3 *db = NULL;
        char *sql = xasprintf("INSERT INTO events (sid, time, received, source, source_id,"
                              " severity, outcome) VALUES (%lld, 1, 1, 'other', 'x', 0, 'unknown')",
                              (long long)fnv("entra.signin\nev-2"));

        T_REQUIRE(sqlite3_open(tpath, &db) == SQLITE_OK);
        T_ASSERT(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close(db);
        free(sql);
    }
    T_REQUIRE(store_tenant_open(f.st, "acme", &f.t, &err) == 0);
    T_EQ_INT(raw_user_version(tpath, -1), tv);
    T_EQ_INT(raw_count(tpath, "SELECT count(*) FROM alerts WHERE class = 'event'"), 1);
    T_EQ_INT(raw_count(tpath, "SELECT id FROM alerts WHERE source_id = 'ev-run'"), kept);
    T_EQ_INT(raw_count(tpath, "SELECT count(*) FROM alerts WHERE class = 'alert'"), 1);
    T_EQ_INT(raw_count(tpath, "SELECT count(*) FROM events"), 4);
    T_EQ_INT(raw_count(tpath, "SELECT sid - (SELECT sid FROM events WHERE source = 'other')"
                              " FROM events WHERE source_id = 'ev-2'"),
             1);
    T_EQ_INT(raw_count(tpath, "SELECT count(*) FROM alert_observables WHERE alert_id NOT IN"
                              " (SELECT id FROM alerts)"),
             0);
    T_EQ_INT(raw_count(tpath, "SELECT time FROM events WHERE source_id = 'ev-both'"), 500);
    memset(&flt, 0, sizeof(flt));
    flt.until_ms = INT64_MAX;
    flt.limit = 10;
    flt.user = "TARO@example.jp";
    flt.source = "entra.signin";
    buf_init(&out, 0);
    T_REQUIRE(store_event_query(f.t, &flt, &out, &n, &err) == 0);
    T_EQ_INT(n, 2);
    T_ASSERT(strstr(out.data, "\"source_id\":\"ev-2\",\"user\":\"taro@example.jp\","
                              "\"ip\":\"198.51.100.4\",\"dst_ip\":\"203.0.113.9\","
                              "\"device\":\"PC-7\"") != NULL);
    T_ASSERT(strstr(out.data, "\"outcome\":\"blocked\"") != NULL);
    T_ASSERT(strstr(out.data, "\"raw\":{ \"id\" : \"ev-1\" }") != NULL);
    buf_free(&out);
    free(tpath);
    free(err);
    fx_teardown(&f);
}

/* A row prepared off the loop (store_event_prepare) is the row the insert computes
 * itself: same keys, picks and observables; a duplicate is found either way. */
static void
test_event_prepared_row(void)
{
    struct fx f;
    struct alert e[3];
    char *err = NULL, *path;
    int dup = -1;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    path = xasprintf("%s/tenants/acme.db", f.dir);
    memset(e, 0, sizeof(e));
    for (int i = 0; i < 3; i++) {
        e[i].source = xstrdup("panos.traffic");
        e[i].source_id = xstrdup(i == 1 ? "s/TRAFFIC/2" : "s/TRAFFIC/1");
        e[i].title = xstrdup("flow");
        e[i].outcome = xstrdup("blocked");
        e[i].time_ms = 1000;
        alert_add_observable(&e[i], "ip", "192.0.2.1", "dst");
        alert_add_observable(&e[i], "ip", "10.0.0.7", "src");
        alert_add_observable(&e[i], "user", "Corp\\Taro", "src");
        alert_add_observable(&e[i], "host", "PC-9", NULL);
        alert_add_observable(&e[i], "app", "ssl", NULL);
    }
    store_event_prepare(&e[0]);
    store_event_prepare(&e[2]);
    T_REQUIRE(e[0].prep != NULL && e[1].prep == NULL);
    T_REQUIRE(store_tx_begin(f.t, &err) == 0);
    T_ASSERT(store_event_insert(f.t, &e[0], &dup, &err) == 0 && dup == 0);
    T_ASSERT(store_event_insert(f.t, &e[1], &dup, &err) == 0 && dup == 0);
    T_ASSERT(store_event_insert(f.t, &e[2], &dup, &err) == 0 && dup == 1); /* e[0] again */
    T_REQUIRE(store_tx_commit(f.t, &err) == 0);
    T_EQ_INT(raw_count(path, "SELECT count(*) FROM events"), 2);
    T_EQ_INT(raw_count(path, "SELECT count(DISTINCT uk || ':' || ik || ':' || dk || ':' || vk ||"
                             " user || ip || dst_ip || device || observables) FROM events"),
             1);
    T_EQ_INT(raw_count(path, "SELECT count(*) FROM events WHERE ip = '10.0.0.7' AND"
                             " dst_ip = '192.0.2.1' AND device = 'PC-9' AND user = 'corp\\taro'"),
             2);
    /* an alert takes its observables from a prepared row too: the same JSON */
    free(e[0].source_id);
    e[0].source_id = xstrdup("a/1");
    free(e[1].source_id);
    e[1].source_id = xstrdup("a/2");
    store_event_prepare(&e[0]);
    T_REQUIRE(store_tx_begin(f.t, &err) == 0);
    T_ASSERT(store_alert_insert(f.t, &e[0], &dup, &err) == 0 && dup == 0);
    T_ASSERT(store_alert_insert(f.t, &e[1], &dup, &err) == 0 && dup == 0);
    T_REQUIRE(store_tx_commit(f.t, &err) == 0);
    T_EQ_INT(raw_count(path, "SELECT count(DISTINCT observables) FROM alerts WHERE source_id IN"
                             " ('a/1', 'a/2')"),
             1);
    T_EQ_INT(raw_count(path, "SELECT count(*) FROM alerts AS a JOIN events AS e ON"
                             " a.observables = e.observables"),
             4);
    for (int i = 0; i < 3; i++) {
        alert_free(&e[i]);
    }
    T_ASSERT(e[0].prep == NULL);
    free(path);
    free(err);
    fx_teardown(&f);
}

/* One new firewall flow (from src_ip, or none) stored as an event in the open
 * transaction; 0 when it was. */
static int
put_flow_in_tx(struct store_tenant *t, const char *source_id, const char *src_ip)
{
    struct alert e;
    char *err = NULL;
    int dup = -1, rc;

    memset(&e, 0, sizeof(e));
    e.source = xstrdup("panos.traffic");
    e.source_id = xstrdup(source_id);
    e.title = xstrdup("flow");
    e.outcome = xstrdup("succeeded");
    if (src_ip != NULL) {
        alert_add_observable(&e, "ip", src_ip, "src");
    }
    rc = store_event_insert(t, &e, &dup, &err) == 0 && dup == 0 ? 0 : -1;
    if (rc == -1) {
        fprintf(stderr, "  put_flow_in_tx: %s\n", err ? err : "a duplicate");
    }
    alert_free(&e);
    free(err);
    return rc;
}

static int
put_event_in_tx(struct store_tenant *t, const char *source_id)
{
    return put_flow_in_tx(t, source_id, NULL);
}

/* The same in a transaction of its own. */
static int
put_flow(struct store_tenant *t, const char *source_id, const char *src_ip)
{
    char *err = NULL;
    int rc = store_tx_begin(t, &err) == 0 && put_flow_in_tx(t, source_id, src_ip) == 0 &&
                     store_tx_commit(t, &err) == 0
                 ? 0
                 : -1;

    free(err);
    return rc;
}

/* A transaction begun unsynced commits without a sync when no other writer joined it;
 * one that a synced writer joined has its WAL synced after the commit; a rollback counts
 * nothing; every committed row is there. */
static void
test_unsynced_commits(void)
{
    struct fx f;
    struct alert a;
    char *err = NULL, *path;
    unsigned long long u = 9, sa = 9;
    int dup = -1;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    path = xasprintf("%s/tenants/acme.db", f.dir);
    store_tx_sync_counts(f.t, &u, &sa);
    T_ASSERT(u == 0 && sa == 0);
    /* events alone: no sync */
    T_REQUIRE(store_tx_begin_unsynced(f.t, &err) == 0);
    T_ASSERT(put_event_in_tx(f.t, "u/1") == 0);
    T_REQUIRE(store_tx_commit(f.t, &err) == 0);
    store_tx_sync_counts(f.t, &u, &sa);
    T_ASSERT(u == 1 && sa == 0);
    /* a synced writer joins: synced after the commit */
    T_REQUIRE(store_tx_begin_unsynced(f.t, &err) == 0);
    T_ASSERT(put_event_in_tx(f.t, "u/2") == 0);
    T_REQUIRE(store_tx_begin(f.t, &err) == 0);
    mk_alert(&a, "it.joined", "joined");
    T_ASSERT(store_alert_insert(f.t, &a, &dup, &err) == 0 && dup == 0);
    alert_free(&a);
    T_REQUIRE(store_tx_commit(f.t, &err) == 0);
    store_tx_sync_counts(f.t, &u, &sa);
    T_ASSERT(u == 1 && sa == 1);
    /* begun synced, an unsynced writer joins: an ordinary synced commit */
    T_REQUIRE(store_tx_begin(f.t, &err) == 0);
    T_REQUIRE(store_tx_begin_unsynced(f.t, &err) == 0);
    T_ASSERT(put_event_in_tx(f.t, "u/3") == 0);
    T_REQUIRE(store_tx_commit(f.t, &err) == 0);
    store_tx_sync_counts(f.t, &u, &sa);
    T_ASSERT(u == 1 && sa == 1);
    /* rolled back: nothing counted, nothing stored, and the next one unsynced again */
    T_REQUIRE(store_tx_begin_unsynced(f.t, &err) == 0);
    T_ASSERT(put_event_in_tx(f.t, "u/4") == 0);
    store_tx_rollback(f.t);
    T_REQUIRE(store_tx_begin_unsynced(f.t, &err) == 0);
    T_ASSERT(put_event_in_tx(f.t, "u/5") == 0);
    T_REQUIRE(store_tx_commit(f.t, &err) == 0);
    store_tx_sync_counts(f.t, &u, &sa);
    T_ASSERT(u == 2 && sa == 1);
    T_EQ_INT(raw_count(path, "SELECT count(*) FROM events WHERE source_id LIKE 'u/%'"), 4);
    T_EQ_INT(raw_count(path, "SELECT count(*) FROM events WHERE source_id = 'u/4'"), 0);
    T_EQ_INT(raw_count(path, "SELECT count(*) FROM alerts WHERE source_id = 'joined'"), 1);
    free(path);
    free(err);
    fx_teardown(&f);
}

/* A database made now has 16 KiB pages; one made before with 4 KiB pages keeps them and
 * works as before (migrated, written, read), until compacted. */
static void
test_page_size(void)
{
    struct fx f;
    struct store_tenant *b = NULL;
    char *err = NULL, *apath, *bpath, *cpath;
    sqlite3 *db = NULL;

    T_REQUIRE(fx_setup(&f, 1) == 0);
    apath = xasprintf("%s/tenants/acme.db", f.dir);
    bpath = xasprintf("%s/tenants/beta.db", f.dir);
    cpath = xasprintf("%s/control.db", f.dir);
    T_EQ_INT(raw_count(apath, "PRAGMA page_size"), 16384);
    T_EQ_INT(raw_count(cpath, "PRAGMA page_size"), 16384);
    T_REQUIRE(store_tenant_add(f.st, "beta", "Beta", NULL, &err) == 0);
    T_REQUIRE(sqlite3_open(bpath, &db) == SQLITE_OK);
    T_ASSERT(sqlite3_exec(db, "PRAGMA page_size = 4096; CREATE TABLE kg_before (x);", NULL, NULL,
                          NULL) == SQLITE_OK);
    sqlite3_close(db);
    T_EQ_INT(raw_count(bpath, "PRAGMA page_size"), 4096);
    T_REQUIRE(store_tenant_open(f.st, "beta", &b, &err) == 0);
    T_EQ_INT(raw_count(bpath, "PRAGMA page_size"), 4096);
    T_ASSERT(put_flow(b, "013201009876/TRAFFIC/1", "10.0.0.1") == 0);
    T_EQ_INT(raw_count(bpath, "SELECT count(*) FROM events WHERE ip = '10.0.0.1'"), 1);
    {
        /* compacted: 16 KiB pages, the rows kept, back in WAL mode, still writable */
        struct store_compact c;

        T_REQUIRE(store_tenant_compact(b, &c, &err) == 0);
        T_EQ_INT(c.page_before, 4096);
        T_EQ_INT(c.page_after, 16384);
        T_ASSERT(c.bytes_before > 0 && c.bytes_after > 0);
        T_EQ_INT(raw_count(bpath, "PRAGMA page_size"), 16384);
        T_EQ_INT(raw_count(bpath, "SELECT count(*) FROM events WHERE ip = '10.0.0.1'"), 1);
        T_ASSERT(put_flow(b, "013201009876/TRAFFIC/2", NULL) == 0);
    }
    store_tenant_close(b);
    b = NULL;
    T_EQ_INT(raw_count(bpath, "SELECT count(*) FROM events"), 2);
    {
        sqlite3 *h = NULL;
        sqlite3_stmt *st = NULL;

        T_REQUIRE(sqlite3_open(bpath, &h) == SQLITE_OK);
        T_ASSERT(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK &&
                 sqlite3_step(st) == SQLITE_ROW &&
                 strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0);
        sqlite3_finalize(st);
        sqlite3_close(h);
    }
    free(apath);
    free(bpath);
    free(cpath);
    free(err);
    fx_teardown(&f);
}

TEST_LIST = {
    { "page_size", test_page_size },
    { "unsynced_commits", test_unsynced_commits },
    { "event_prepared_row", test_event_prepared_row },
    { "source_marks", test_source_marks },
    { "escalations", test_escalations },
    { "run_requester", test_run_requester },
    { "background_checkpoints", test_background_checkpoints },
    { "locked_by_another", test_locked_by_another },
    { "wal_truncated_after_reader", test_wal_truncated_after_reader },
    { "wal_begins_over", test_wal_begins_over },
    { "open_migrate_reopen", test_open_migrate_reopen },
    { "schema_newer_refused", test_schema_newer_refused },
    { "tenants", test_tenants },
    { "alert_dedup", test_alert_dedup },
    { "alert_update", test_alert_update },
    { "cursors", test_cursors },
    { "alert_roundtrip", test_alert_roundtrip },
    { "durability", test_durability },
    { "runs", test_runs },
    { "journal", test_journal },
    { "playbooks", test_playbooks },
    { "tenants_separate", test_tenants_separate },
    { "bulk_timing", test_bulk_timing },
    { "alert_query", test_alert_query },
    { "run_results_and_query", test_run_results_and_query },
    { "lock_probe", test_lock_probe },
    { "events", test_events },
    { "event_hash_collisions", test_event_hash_collisions },
    { "event_table_migrated", test_event_table_migrated },
    { "playbook_view", test_playbook_view },
    { "events_moved_by_migration", test_events_moved_by_migration },
    { NULL, NULL },
};
