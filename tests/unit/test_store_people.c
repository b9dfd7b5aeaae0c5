/* test_store_people.c: the store's people tables in control.db on real files: users,
 * the TOTP step written once, recovery codes used once, roles, sessions, API tokens,
 * allow-lists, and the audit table refusing UPDATE and DELETE. */
#include "engine/store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine/util.h"
#include "tests/unit/test.h"

static char dir[64];

static struct store *
open_store(void)
{
    struct store *st = NULL;
    char *err = NULL;

    snprintf(dir, sizeof(dir), "/tmp/kagari-people-XXXXXX");
    if (mkdtemp(dir) == NULL || store_open(dir, &st, &err) == -1) {
        fprintf(stderr, "  store_open: %s\n", err ? err : "mkdtemp");
        free(err);
        return NULL;
    }
    return st;
}

static void
close_store(struct store *st)
{
    char *cmd = xasprintf("rm -rf '%s'", dir);

    store_close(st);
    if (system(cmd) != 0) {
        fprintf(stderr, "  could not remove %s\n", dir);
    }
    free(cmd);
}

static void
test_users(void)
{
    struct store *st = open_store();
    struct store_user u;
    struct store_user *list = NULL;
    size_t n = 0;
    int64_t id = 0, id2 = 0;
    char *err = NULL;

    T_REQUIRE(st != NULL);
    T_EQ_INT(store_user_add(st, "ana", "$argon2id$x", "SECRET", &id, &err), 0);
    T_EQ_INT(store_user_add(st, "ana", "$argon2id$y", "SECRET", &id2, &err), -1);
    T_CONTAINS(err, "user ana exists");
    free(err);
    err = NULL;
    T_EQ_INT(store_user_add(st, "", "h", "s", &id2, &err), -1);
    free(err);
    err = NULL;
    T_EQ_INT(store_user_get(st, "ana", &u, &err), 1);
    T_EQ_INT(u.id, id);
    T_EQ_STR(u.pass_hash, "$argon2id$x");
    T_EQ_INT(u.totp_confirmed, 0);
    store_user_free(&u);
    T_EQ_INT(store_user_get(st, "nobody", &u, &err), 0);
    T_EQ_INT(store_user_get(st, "ana' OR '1'='1", &u, &err), 0);

    /* A TOTP step counts once, and never an older one after a newer one. */
    T_EQ_INT(store_user_totp_use(st, id, 100, &err), 1);
    T_EQ_INT(store_user_totp_use(st, id, 100, &err), 0);
    T_EQ_INT(store_user_totp_use(st, id, 99, &err), 0);
    T_EQ_INT(store_user_totp_use(st, id, 101, &err), 1);
    T_EQ_INT(store_user_get_id(st, id, &u, &err), 1);
    T_EQ_INT(u.totp_last_step, 101);
    T_EQ_INT(u.totp_confirmed, 1);
    store_user_free(&u);
    /* A new secret is unconfirmed and starts over. */
    T_EQ_INT(store_user_set_totp(st, id, "OTHER", &err), 0);
    T_EQ_INT(store_user_get_id(st, id, &u, &err), 1);
    T_EQ_INT(u.totp_confirmed, 0);
    T_EQ_INT(u.totp_last_step, 0);
    T_EQ_STR(u.totp_secret, "OTHER");
    store_user_free(&u);

    T_EQ_INT(store_user_set_failures(st, id, 5, 12345, &err), 0);
    T_EQ_INT(store_user_get_id(st, id, &u, &err), 1);
    T_EQ_INT(u.failures, 5);
    T_EQ_INT(u.locked_until, 12345);
    store_user_free(&u);
    T_EQ_INT(store_user_login_ok(st, id, 777, &err), 0);
    T_EQ_INT(store_user_get_id(st, id, &u, &err), 1);
    T_EQ_INT(u.failures, 0);
    T_EQ_INT(u.locked_until, 0);
    T_EQ_INT(u.last_login, 777);
    store_user_free(&u);
    T_EQ_INT(store_user_set_disabled(st, id, 1, &err), 0);
    T_EQ_INT(store_user_list(st, &list, &n, &err), 0);
    T_EQ_INT(n, 1);
    T_EQ_INT(list[0].disabled, 1);
    store_users_free(list, n);
    close_store(st);
}

static void
test_recovery_and_roles(void)
{
    struct store *st = open_store();
    char *codes[2] = { (char *)"h1", (char *)"h2" };
    char *again[1] = { (char *)"h3" };
    struct store_role *roles = NULL;
    size_t n = 0;
    int64_t id = 0;
    char *err = NULL;

    T_REQUIRE(st != NULL);
    T_EQ_INT(store_user_add(st, "bob", "h", "s", &id, &err), 0);
    T_EQ_INT(store_recovery_set(st, id, codes, 2, &err), 0);
    T_EQ_INT(store_recovery_use(st, id, "h1", &err), 1);
    T_EQ_INT(store_recovery_use(st, id, "h1", &err), 0);
    T_EQ_INT(store_recovery_use(st, id + 1, "h2", &err), 0); /* another user's code */
    /* New codes replace all the old ones. */
    T_EQ_INT(store_recovery_set(st, id, again, 1, &err), 0);
    T_EQ_INT(store_recovery_use(st, id, "h2", &err), 0);
    T_EQ_INT(store_recovery_use(st, id, "h3", &err), 1);

    T_EQ_INT(store_role_set(st, id, "t1", "analyst", &err), 0);
    T_EQ_INT(store_role_set(st, id, "t1", "admin", &err), 0); /* one role per tenant */
    T_EQ_INT(store_role_set(st, id, "*", "operator", &err), 0);
    T_EQ_INT(store_role_set(st, id, "t2", "wizard", &err), -1);
    free(err);
    err = NULL;
    T_EQ_INT(store_roles_get(st, id, &roles, &n, &err), 0);
    T_EQ_INT(n, 2);
    T_EQ_STR(roles[0].tenant, "*");
    T_EQ_STR(roles[1].role, "admin");
    free(roles);
    T_EQ_INT(store_role_set(st, id, "t1", NULL, &err), 0);
    T_EQ_INT(store_roles_get(st, id, &roles, &n, &err), 0);
    T_EQ_INT(n, 1);
    free(roles);
    close_store(st);
}

static void
test_sessions_tokens_allow(void)
{
    struct store *st = open_store();
    struct store_session s;
    struct store_token t, *tl = NULL;
    struct store_allow *al = NULL;
    size_t n = 0;
    int64_t id = 0, tid = 0;
    char *err = NULL;

    T_REQUIRE(st != NULL);
    T_EQ_INT(store_user_add(st, "cy", "h", "s", &id, &err), 0);
    T_EQ_INT(store_session_add(st, "sh", id, "csrf", 1000, "127.0.0.1", &err), 0);
    T_EQ_INT(store_session_get(st, "sh", &s, &err), 1);
    T_EQ_INT(s.user_id, id);
    T_EQ_STR(s.csrf, "csrf");
    T_EQ_INT(s.last_seen, 1000);
    T_EQ_INT(store_session_touch(st, "sh", 2000, &err), 0);
    T_EQ_INT(store_session_get(st, "sh", &s, &err), 1);
    T_EQ_INT(s.last_seen, 2000);
    T_EQ_INT(s.created, 1000);
    T_EQ_INT(store_session_delete_user(st, id, &err), 0);
    T_EQ_INT(store_session_get(st, "sh", &s, &err), 0);
    /* Purge: idle ones and too old ones go, the live one stays. */
    T_EQ_INT(store_session_add(st, "idle", id, "c", 1000, NULL, &err), 0);
    T_EQ_INT(store_session_add(st, "old", id, "c", 500, NULL, &err), 0);
    T_EQ_INT(store_session_touch(st, "old", 9000, &err), 0);
    T_EQ_INT(store_session_add(st, "live", id, "c", 9000, NULL, &err), 0);
    T_EQ_INT(store_session_purge(st, 5000, 800, &err), 2);
    T_EQ_INT(store_session_get(st, "live", &s, &err), 1);
    T_EQ_INT(store_session_get(st, "idle", &s, &err), 0);
    T_EQ_INT(store_session_get(st, "old", &s, &err), 0);

    T_EQ_INT(store_token_add(st, id, "ci", "th", 0, &tid, &err), 0);
    T_EQ_INT(store_token_find(st, "th", &t, &err), 1);
    T_EQ_INT(t.id, tid);
    T_EQ_INT(t.revoked, 0);
    T_EQ_INT(store_token_revoke(st, id + 1, tid, &err), 0); /* not the owner */
    T_EQ_INT(store_token_revoke(st, id, tid, &err), 1);
    T_EQ_INT(store_token_revoke(st, id, tid, &err), 0); /* already */
    T_EQ_INT(store_token_find(st, "th", &t, &err), 1);
    T_ASSERT(t.revoked > 0);
    T_EQ_INT(store_token_list(st, id, &tl, &n, &err), 0);
    T_EQ_INT(n, 1);
    free(tl);

    T_EQ_INT(store_allow_add(st, "t1", "192.0.2.0/24", &err), 0);
    T_EQ_INT(store_allow_add(st, "t1", "192.0.2.0/24", &err), 0); /* once */
    T_EQ_INT(store_allow_add(st, "*", "::1", &err), 0);
    T_EQ_INT(store_allow_list(st, &al, &n, &err), 0);
    T_EQ_INT(n, 2);
    free(al);
    T_EQ_INT(store_allow_remove(st, "t1", "192.0.2.0/24", &err), 1);
    T_EQ_INT(store_allow_remove(st, "t1", "192.0.2.0/24", &err), 0);
    close_store(st);
}

static void
test_audit_append_only(void)
{
    struct store *st = open_store();
    struct store_audit a, *v = NULL;
    size_t n = 0;
    char *err = NULL, *path;
    sqlite3 *db = NULL;

    T_REQUIRE(st != NULL);
    memset(&a, 0, sizeof(a));
    a.action = (char *)"login";
    a.outcome = (char *)"ok";
    a.tenant = (char *)"t1";
    a.detail = (char *)"{\"k\":1}";
    T_EQ_INT(store_audit_add(st, &a, &err), 0);
    a.tenant = NULL;
    a.action = (char *)"logout";
    T_EQ_INT(store_audit_add(st, &a, &err), 0);
    T_EQ_INT(store_audit_list(st, NULL, 0, 0, &v, &n, &err), 0);
    T_EQ_INT(n, 2);
    T_EQ_STR(v[0].action, "logout"); /* newest first */
    store_audits_free(v, n);
    T_EQ_INT(store_audit_list(st, "t1", 0, 0, &v, &n, &err), 0);
    T_EQ_INT(n, 1);
    T_EQ_STR(v[0].detail, "{\"k\":1}");
    store_audits_free(v, n);

    path = xasprintf("%s/control.db", dir);
    T_REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    T_ASSERT(sqlite3_exec(db, "UPDATE audit SET outcome = 'x'", NULL, NULL, NULL) != SQLITE_OK);
    T_ASSERT(strstr(sqlite3_errmsg(db), "append-only") != NULL);
    T_ASSERT(sqlite3_exec(db, "DELETE FROM audit", NULL, NULL, NULL) != SQLITE_OK);
    sqlite3_close(db);
    free(path);
    T_EQ_INT(store_audit_list(st, NULL, 0, 0, &v, &n, &err), 0);
    T_EQ_INT(n, 2);
    store_audits_free(v, n);
    close_store(st);
}

TEST_LIST = {
    { "users", test_users },
    { "recovery_and_roles", test_recovery_and_roles },
    { "sessions_tokens_allow", test_sessions_tokens_allow },
    { "audit_append_only", test_audit_append_only },
    { NULL, NULL },
};
