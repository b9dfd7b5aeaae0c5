/* store.h: all persistence, and the only module that speaks SQL. SQLite in WAL mode:
 * <data>/control.db for tenants (and later users, sessions, platform audit), and one
 * database per tenant, <data>/tenants/<id>.db, for its alerts, runs and journals.
 * Each database carries its schema version in PRAGMA user_version and is migrated
 * forward on open. */
#ifndef KAGARI_STORE_H
#define KAGARI_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/alert.h"
#include "engine/journal.h"
#include "engine/util.h"

struct store;        /* control database; owned by the caller of store_open */
struct store_tenant; /* one tenant's database; owned by the caller of store_tenant_open */

/* ---- control database ---- */

/* Create data_dir (0700) and data_dir/tenants if needed, open/migrate control.db. */
int store_open(const char *data_dir, struct store **out, char **errp) KG_WUR;
void store_close(struct store *st); /* NULL is a no-op; releases the lock */
/* Is data_dir's lock held by a running `kagari serve`? 1 (and its pid in *pid, 0 when
 * unreadable), 0 when not, -1 when the lock file cannot be read. Takes nothing. */
int store_lock_probe(const char *data_dir, long *pid);
/* Take the data folder for this process (the daemon does; the CLI does not): a second
 * `kagari serve` on the same folder fails with "in use by another kagari serve (pid N)".
 * Held until store_close or the process ends. */
int store_lock(struct store *st, char **errp) KG_WUR;
const char *store_data_dir(const struct store *st);

struct store_tenant_info {
    char id[64];
    char name[128];
    int64_t created_ms;
};

/* Tenant ids match [a-z0-9][a-z0-9-]{0,62}; anything else is refused (they name files).
 * token_hash is the sha256 hex of the intake bearer token; the token itself is never
 * stored. Adding an existing id fails with "tenant X exists". */
int store_tenant_add(struct store *st, const char *id, const char *name, const char *token_hash,
                     char **errp) KG_WUR;
int store_tenant_set_token(struct store *st, const char *id, const char *token_hash,
                           char **errp) KG_WUR;
/* 1 and the id copied into id_out when found, 0 when not, -1 on a database error. */
int store_tenant_find_token(struct store *st, const char *token_hash, char *id_out, size_t n);
/* *out is a malloc'd array the caller frees with free(). */
int store_tenant_list(struct store *st, struct store_tenant_info **out, size_t *n,
                      char **errp) KG_WUR;

/* ---- people: users, roles, sessions, API tokens, allow-lists, audit ----
 * All times are ms since the epoch. Secrets are stored only as digests or hashes
 * (Argon2id passwords; SHA-256 of session tokens, API tokens and recovery codes). */

struct store_user {
    int64_t id;
    char name[64];
    char *pass_hash;   /* Argon2id encoded string */
    char *totp_secret; /* base32 */
    int totp_confirmed;
    int64_t totp_last_step; /* the last TOTP step accepted: older or equal ones are refused */
    int failures;           /* consecutive failed logins */
    int64_t locked_until;   /* 0: not locked */
    int disabled;
    int64_t created, last_login;
};
void store_user_free(struct store_user *u);            /* frees the fields */
void store_users_free(struct store_user *u, size_t n); /* and the array */

/* Add a user; a second one with the same name fails with "user X exists". */
int store_user_add(struct store *st, const char *name, const char *pass_hash,
                   const char *totp_secret, int64_t *id, char **errp) KG_WUR;
/* 1 and *out filled (store_user_free), 0 when absent, -1 on error. name or id. */
int store_user_get(struct store *st, const char *name, struct store_user *out, char **errp);
int store_user_get_id(struct store *st, int64_t id, struct store_user *out, char **errp);
int store_user_list(struct store *st, struct store_user **out, size_t *n, char **errp) KG_WUR;
int store_user_set_disabled(struct store *st, int64_t id, int disabled, char **errp) KG_WUR;
int store_user_set_password(struct store *st, int64_t id, const char *pass_hash,
                            char **errp) KG_WUR;
/* A new TOTP secret, not yet confirmed (the next accepted code confirms it). */
int store_user_set_totp(struct store *st, int64_t id, const char *secret, char **errp) KG_WUR;
/* Record step as used: 1 when it is newer than the last used one (the code counts), 0
 * when it is not (a replay), -1 on error. Also confirms the secret. */
/* A person's portal preferences (language, time zone): 1 found, 0 none yet, -1 error. */
int store_prefs_get(struct store *st, int64_t user_id, char lang[8], char tz[64],
                    char **errp) KG_WUR;
int store_prefs_set(struct store *st, int64_t user_id, const char *lang, const char *tz,
                    char **errp) KG_WUR;
int store_user_totp_use(struct store *st, int64_t id, int64_t step, char **errp);
int store_user_set_failures(struct store *st, int64_t id, int failures, int64_t locked_until,
                            char **errp) KG_WUR;
int store_user_login_ok(struct store *st, int64_t id, int64_t now, char **errp) KG_WUR;
/* Replace a user's recovery code digests; use one: 1 when it was there (now gone), 0 not. */
int store_recovery_set(struct store *st, int64_t user_id, char *const *hashes, size_t n,
                       char **errp) KG_WUR;
int store_recovery_use(struct store *st, int64_t user_id, const char *hash, char **errp);

/* A one-time password: set marks the user's password as one to change at the first
 * login; due answers 1 when it is (0 not, -1 error); done stores the new hash and clears
 * the mark (not in one transaction: a crash between leaves the new password set and the
 * mark, which asks for one more change). */
int store_password_change_set(struct store *st, int64_t user_id, int64_t now_ms,
                              char **errp) KG_WUR;
int store_password_change_due(struct store *st, int64_t user_id, char **errp);
int store_password_change_done(struct store *st, int64_t user_id, const char *pass_hash,
                               char **errp) KG_WUR;

/* Roles: one per user and tenant; tenant "*" with role "operator" covers every tenant.
 * role NULL removes the user's role in that tenant. */
struct store_role {
    char tenant[64];
    char role[16];
};
int store_role_set(struct store *st, int64_t user_id, const char *tenant, const char *role,
                   char **errp) KG_WUR;
int store_roles_get(struct store *st, int64_t user_id, struct store_role **out, size_t *n,
                    char **errp) KG_WUR;

/* Sessions, keyed by the SHA-256 hex of the cookie's token. */
struct store_session {
    int64_t user_id;
    char csrf[65];
    int64_t created, last_seen;
};
int store_session_add(struct store *st, const char *hash, int64_t user_id, const char *csrf,
                      int64_t now, const char *address, char **errp) KG_WUR;
int store_session_get(struct store *st, const char *hash, struct store_session *out, char **errp);
int store_session_touch(struct store *st, const char *hash, int64_t now, char **errp) KG_WUR;
int store_session_delete(struct store *st, const char *hash, char **errp) KG_WUR;
int store_session_delete_user(struct store *st, int64_t user_id, char **errp) KG_WUR;
/* Delete the sessions idle since before seen_before or created before created_before:
 * the number deleted, or -1. */
int store_session_purge(struct store *st, int64_t seen_before, int64_t created_before, char **errp);

/* Personal API tokens, found by the SHA-256 hex of the token. expires 0: never. */
struct store_token {
    int64_t id, user_id;
    char name[64];
    int64_t created, expires, revoked, last_used; /* 0: not set */
};
int store_token_add(struct store *st, int64_t user_id, const char *name, const char *hash,
                    int64_t expires, int64_t *id, char **errp) KG_WUR;
int store_token_find(struct store *st, const char *hash, struct store_token *out, char **errp);
int store_token_list(struct store *st, int64_t user_id, struct store_token **out, size_t *n,
                     char **errp) KG_WUR;
/* 1 revoked, 0 no such live token of this user, -1 error. */
int store_token_revoke(struct store *st, int64_t user_id, int64_t id, char **errp);
int store_token_used(struct store *st, int64_t id, int64_t now, char **errp) KG_WUR;

/* Address allow-lists: CIDR texts per tenant ("*": the platform operators'). A tenant
 * without entries admits every address. remove: 1 removed, 0 absent. */
struct store_allow {
    char tenant[64];
    char cidr[64];
};
int store_allow_add(struct store *st, const char *tenant, const char *cidr, char **errp) KG_WUR;
int store_allow_remove(struct store *st, const char *tenant, const char *cidr, char **errp);
int store_allow_list(struct store *st, struct store_allow **out, size_t *n, char **errp) KG_WUR;

/* The audit table: append-only (the database refuses UPDATE and DELETE). Any string but
 * action and outcome may be NULL; detail is JSON text. */
struct store_audit {
    int64_t id, time;
    char *tenant, *actor, *action, *target, *outcome, *address, *detail;
};
int store_audit_add(struct store *st, const struct store_audit *a, char **errp) KG_WUR;
/* Newest first, ids below before (0: from the newest), at most limit (<= 0: 100);
 * tenant NULL: every row. */
int store_audit_list(struct store *st, const char *tenant, int64_t before, int limit,
                     struct store_audit **out, size_t *n, char **errp) KG_WUR;
void store_audits_free(struct store_audit *a, size_t n);

/* The daemon's loop must not wait long for the CLI writing control.db. */
void store_busy_ms(struct store *st, int busy_ms);

/* ---- tenant databases ---- */

/* Rebuild a tenant database offline (VACUUM) with the page size a new one gets (16 KiB),
 * which an existing WAL database cannot change in place; free pages go back to the file
 * system. Only with the data folder locked (store_lock: no daemon): it rewrites the whole
 * file and needs as much free space again. */
struct store_compact {
    int page_before, page_after;
    int64_t bytes_before, bytes_after;
};
int store_tenant_compact(struct store_tenant *t, struct store_compact *out, char **errp) KG_WUR;

/* Open (creating and migrating) <data>/tenants/<id>.db. The tenant must exist in
 * control.db. Connections use synchronous=FULL: a commit is durable on return. */
int store_tenant_open(struct store *st, const char *id, struct store_tenant **out,
                      char **errp) KG_WUR;
void store_tenant_close(struct store_tenant *t); /* rolls back an open transaction */
/* Move WAL checkpoints off the committing thread: a background thread with its own
 * connection checkpoints every interval_ms (PASSIVE: neither waits for the other), so a
 * commit never pays for copying the WAL into the database. The daemon uses it; the CLI
 * keeps SQLite's automatic checkpoints. Stopped by store_tenant_close.
 *
 * A reader holding an old snapshot (a backup, an operator's shell) keeps PASSIVE from
 * finishing and the WAL grows. Past wal_warn bytes (0: STORE_WAL_WARN) the thread logs
 * store.wal_large (at most once a minute per database), checks every 500 ms, and once a
 * checkpoint completes (the readers let go) truncates the WAL to zero
 * (wal_checkpoint(TRUNCATE), never waiting for a reader or the writer). */
#define STORE_WAL_WARN (256u << 20)
int store_tenant_checkpointer(struct store_tenant *t, int interval_ms, size_t wal_warn,
                              char **errp) KG_WUR;
/* For the event loop, which must never wait for a lock another process holds: SQLite
 * waits at most busy_ms (a few ms ride out the checkpointer's truncation) before a
 * locked database fails store_tx_begin/store_tx_commit with KG_AGAIN. The default is
 * 5 s, fit for the CLI. */
void store_tenant_busy_ms(struct store_tenant *t, int busy_ms);

/* The WAL of a tenant database: its file size, and what the checkpointer saw last
 * (frames not yet copied into the database, and when a checkpoint last completed; 0
 * without a checkpointer or before its first pass). Safe on the loop thread: reads
 * atomics and stats a file. */
struct store_wal {
    uint64_t bytes;
    int64_t frames_behind;
    int64_t complete_ms; /* ms since the epoch */
    /* Checkpoints the loop finished so that the WAL began over (store_tenant_checkpointer),
     * and the time they took, in µs. */
    unsigned long long restarts, restart_us;
};
void store_tenant_wal(struct store_tenant *t, struct store_wal *out);
const char *store_tenant_id(const struct store_tenant *t);

/* Write transactions (group commit): begin is a no-op when one is already open, so
 * every writer of one loop iteration shares it; the loop commits once. Both return
 * KG_AGAIN (with *errp set) when another connection holds the database's write lock past
 * the busy timeout: nothing was written, try again later. A failed commit is rolled
 * back. */
int store_tx_begin(struct store_tenant *t, char **errp) KG_WUR;
/* Begin a transaction whose commit need not reach the disk before it returns (SQLite's
 * synchronous = NORMAL): for records nobody is told were stored (syslog's events). Such
 * a commit survives the process being killed, not a power cut before the next sync of
 * the WAL (the next synced commit or checkpoint). A writer that begins (store_tx_begin)
 * while it is open makes its commit synced after all. Joins an open transaction as is. */
int store_tx_begin_unsynced(struct store_tenant *t, char **errp) KG_WUR;
int store_tx_commit(struct store_tenant *t, char **errp) KG_WUR;
/* A writer that needs durability joins the open transaction (begun unsynced or not). */
void store_tx_mark_sync(struct store_tenant *t);
/* store_tx_commit, but a commit that needs its WAL synced (an unsynced transaction a
 * writer marked) is not synced here: *sync = its number (else 0), and the caller runs
 * store_wal_sync(t, *sync) (on any thread, one at a time or not: it touches only a file
 * descriptor and atomics) before telling anyone it is stored. A sync covers every commit
 * made before it began, so a commit an earlier sync covered returns at once. */
int store_tx_commit_deferred(struct store_tenant *t, uint64_t *sync, char **errp) KG_WUR;
int store_wal_sync(struct store_tenant *t, uint64_t seq, char **errp) KG_WUR;
/* Commits that skipped their sync, and unsynced ones a synced writer joined (the WAL
 * synced after the commit), since the tenant was opened. */
void store_tx_sync_counts(const struct store_tenant *t, unsigned long long *unsynced,
                          unsigned long long *synced_after);
/* 1 when a write transaction could begin right now, without waiting at all (it is
 * rolled back at once), else 0. No-op (1) inside a transaction. */
int store_tx_probe(struct store_tenant *t);
void store_tx_rollback(struct store_tenant *t);
int store_in_tx(const struct store_tenant *t);

/* Insert a normalized alert; dedup on (source, source_id). Sets a->id: the new id, or
 * the existing alert's id with *duplicate = 1. Needs an open transaction. */
int store_alert_insert(struct store_tenant *t, struct alert *a, int *duplicate, char **errp) KG_WUR;
/* 1 and *out filled (caller alert_free()s it), 0 when absent, -1 on error. */
int store_alert_get(struct store_tenant *t, int64_t id, struct alert *out, char **errp);
int64_t store_alert_count(struct store_tenant *t); /* -1 on error */
/* a was sent again by its source: store_alert_insert found it stored (a->id set,
 * *duplicate). When its raw record differs from the stored one, the stored alert takes
 * a's title, category, levels, outcome, observables and raw (its times and class stay,
 * and are copied into a), one row of alert_updates keeps what changed (alert_diff) and
 * the record before, and *updated is 1; *significant is 1 when the update should start
 * the playbooks again (alert_update_significant; never for an event). The same record
 * again changes nothing. Needs an open transaction. */
int store_alert_update(struct store_tenant *t, struct alert *a, int64_t now_ms, int *updated,
                       int *significant, char **errp) KG_WUR;
/* The update history of alert id appended to out as a JSON array of {"at", "significant",
 * "changes"}, oldest first. */
int store_alert_updates(struct store_tenant *t, int64_t id, struct buf *out, char **errp) KG_WUR;

/* Pollers' cursors: one JSON text per stream name (engine/poll.h). get sets *value
 * (malloc'd) or NULL when the stream has none; put needs an open transaction. */
struct store_cursor {
    char *stream;
    char *cursor;
    int64_t updated_ms;
};
int store_cursor_get(struct store_tenant *t, const char *stream, char **value, char **errp) KG_WUR;
int store_cursor_put(struct store_tenant *t, const char *stream, const char *value,
                     char **errp) KG_WUR;
int store_cursor_list(struct store_tenant *t, struct store_cursor **out, size_t *n,
                      char **errp) KG_WUR;
void store_cursors_free(struct store_cursor *v, size_t n);

/* Alerts matching every filter that is set, newest first. Unset: NULL strings, -1
 * severities, 0 times. Times bound the received time: since <= received < until. The
 * observable matches the value of any observable exactly. The alerts come without raw
 * (store_alert_get has it); *out is freed with store_alerts_free. */
struct store_alert_where {
    const char *source;
    int severity_min; /* enum severity, or -1 */
    int severity;     /* exactly this one, or -1 */
    const char *outcome;
    int64_t since_ms, until_ms;
    const char *observable;
    int cls;   /* enum alert_class, or -1 for both */
    int limit; /* <= 0: 100 */
};
int store_alert_query(struct store_tenant *t, const struct store_alert_where *f, struct alert **out,
                      size_t *n, char **errp) KG_WUR;
void store_alerts_free(struct alert *v, size_t n);

/* ---- events: records kept for searching, not detections ----
 *
 * An event is a normalized record (struct alert) that triggers nothing. Its user, ip,
 * dst_ip and device columns are taken from its observables: the first user, ip, and
 * host or device whose role is "src" (else the first of that type), and the first ip
 * whose role is "dst". */

/* Insert within the open transaction; dedup on (source, source_id) (*duplicate = 1).
 * Uses e->prep when store_event_prepare made it. */
/* Compute e's row (its keys, dedup key, observables as JSON) into e->prep: touches only
 * e, so any thread may call it; store_event_insert then does only the SQL, and
 * store_alert_insert takes the observables' JSON from it. Without it (or when e's
 * observables are too large) the insert computes the row itself. */
void store_event_prepare(struct alert *e);
int store_event_insert(struct store_tenant *t, const struct alert *e, int *duplicate,
                       char **errp) KG_WUR;

/* A search: every filter that is not NULL must match (ip matches the source or the
 * destination address; user and device ignore case); time in [since_ms, until_ms]. */
struct store_event_filter {
    const char *user, *ip, *device, *source, *outcome;
    int64_t since_ms, until_ms;
    int limit; /* rows, 1 or more */
};
/* Append the matches to out, newest first (by time with a user, ip or device filter;
 * else newest stored first), as a JSON array of {"id", "time" (RFC 3339),
 * "received", "source", "source_id", "user", "ip", "dst_ip", "device", "severity" (name),
 * "outcome", "category", "title", "observables", "raw"}; *n gets their number. */
int store_event_query(struct store_tenant *t, const struct store_event_filter *f, struct buf *out,
                      size_t *n, char **errp) KG_WUR;
/* How many match, counting at most f->limit. */
int store_event_count(struct store_tenant *t, const struct store_event_filter *f, int64_t *count,
                      char **errp) KG_WUR;
/* Delete at most limit of the oldest events (by id) received before before_ms, in the
 * open transaction; *deleted gets how many went. */
int store_event_prune(struct store_tenant *t, int64_t before_ms, int limit, int *deleted,
                      char **errp) KG_WUR;
/* When the oldest event (by id) was received: 1 with *received_ms, 0 when there is none,
 * -1 on error. A read: no transaction needed (pruning asks before it writes). */
int store_event_first(struct store_tenant *t, int64_t *received_ms, char **errp) KG_WUR;
int64_t store_event_total(struct store_tenant *t); /* -1 on error */

/* Playbook versions, kept so a run replays with the source it started with. put is
 * insert-or-ignore keyed by hash (sha256 hex of the source). get returns a malloc'd
 * NUL-terminated copy of the source and its name, or NULL when unknown. */
int store_playbook_put(struct store_tenant *t, const char *hash, const char *name,
                       const char *source, size_t len, char **errp) KG_WUR;
char *store_playbook_get(struct store_tenant *t, const char *hash, size_t *len, char **name);
/* The library files of a playbook version (playbook_libs): put one (a second put of the
 * same version and name is ignored); get all, in name order (*out freed with
 * store_libs_free; none is not an error). */
struct store_lib {
    char *name;
    char *source; /* NUL-terminated */
    size_t len;
};
int store_playbook_lib_put(struct store_tenant *t, const char *version, const char *name,
                           const char *source, size_t len, char **errp) KG_WUR;
int store_playbook_libs_get(struct store_tenant *t, const char *version, struct store_lib **out,
                            size_t *n, char **errp) KG_WUR;
void store_libs_free(struct store_lib *v, size_t n);

/* Alert ids newest first, below before (0: from the newest), at most limit (<= 0:
 * 100); *ids is malloc'd. */
int store_alert_ids(struct store_tenant *t, int64_t before, int limit, int64_t **ids, size_t *n,
                    char **errp) KG_WUR;
/* The same, only the alerts that match every field of f that is set. With a filter, one
 * call looks at the STORE_ALERT_SCAN ids below before at most: when it found fewer than
 * limit and older alerts remain, *resume (may be NULL) is where the next call goes on
 * (its before), else 0. */
#define STORE_ALERT_SCAN 20000
struct store_alert_filter {
    const char *source;  /* NULL: any */
    int severity;        /* enum severity; -1: any */
    const char *outcome; /* NULL: any */
    int64_t since_ms;    /* time >= since_ms; 0: unbounded */
    int64_t until_ms;    /* time < until_ms; 0: unbounded */
    /* An observable (both set, or neither): only the alerts that carry this value with
     * this type ("user", "ip", ...), exactly, read through the observable index newest
     * first (no scan window: *resume stays 0). */
    const char *obs_type;
    const char *obs_value;
};
int store_alert_search(struct store_tenant *t, const struct store_alert_filter *f, int64_t before,
                       int limit, int64_t **ids, size_t *n, int64_t *resume, char **errp) KG_WUR;

/* Runs. State is one of queued|running|waiting|done|failed|cancelled. */
struct store_run {
    int64_t id;
    int64_t alert_id;
    char *playbook; /* name */
    char hash[65];  /* playbook version */
    char state[16];
    int64_t created_ms;
    int64_t started_ms; /* 0 if not yet */
    int64_t ended_ms;   /* 0 if not yet */
    char *error;        /* NULL unless failed/cancelled */
    char *result;       /* JSON text of the playbook's return value; NULL when none */
    char *result_note;  /* why a returned value was not kept (NULL when it was) */
    /* A waiting run whose pending call the server throttled: until when (ms since the
     * epoch), else 0. Shown as the state "throttled" while it lasts. */
    int64_t throttled_until;
    /* Its dry-run state, fixed when it was created from its playbook's switch (1 on, 0
     * off), or -1: as its version says (no switch was set). */
    int dry_run;
};
void store_run_free(struct store_run *r);            /* frees the fields */
void store_runs_free(struct store_run *r, size_t n); /* frees the fields and the array */

int store_run_insert(struct store_tenant *t, int64_t alert_id, const char *playbook,
                     const char *hash, int64_t created_ms, int64_t *id, char **errp) KG_WUR;
/* Set the state; started_ms/ended_ms of 0 leave the column as it is; error may be NULL. */
/* Make a failed run queued again so that the daemon continues it from its journal: its
 * last journal entry is dropped when it did not finish well (the failed call is made
 * again), its error and times are cleared (a new deadline counts from its restart).
 * Commits at once. -1 with *errp when there is no such run or it is not failed. */
int store_run_retry(struct store_tenant *t, int64_t id, char **errp) KG_WUR;
int store_run_update(struct store_tenant *t, int64_t id, const char *state, int64_t started_ms,
                     int64_t ended_ms, const char *error, char **errp) KG_WUR;
/* 1 found, 0 not, -1 error. */
int store_run_get(struct store_tenant *t, int64_t id, struct store_run *out, char **errp);
/* The person who started run id by hand (in the caller's transaction), and reading it
 * back: *out malloc'd, NULL for a run the engine started (or an unknown id). 0 or -1. */
int store_run_set_requester(struct store_tenant *t, int64_t id, const char *requester,
                            char **errp) KG_WUR;
int store_run_requester(struct store_tenant *t, int64_t id, char **out, char **errp) KG_WUR;
/* Newest first; state may be NULL (all); limit <= 0 means 100. */
int store_run_list(struct store_tenant *t, const char *state, int limit, struct store_run **out,
                   size_t *n, char **errp) KG_WUR;
/* Runs matching every filter that is set (NULL, 0), newest first; times bound the
 * creation time: since <= created < until. An unknown state is an error. */
struct store_run_filter {
    const char *state;
    const char *playbook;
    int64_t alert_id;
    int64_t since_ms, until_ms;
    int limit; /* <= 0: 100 */
};
int store_run_query(struct store_tenant *t, const struct store_run_filter *f,
                    struct store_run **out, size_t *n, char **errp) KG_WUR;
/* Record a run's result (JSON text, or NULL) and the note saying why a returned value was
 * not kept (or NULL). Called in the transaction that records its final state. */
int store_run_set_result(struct store_tenant *t, int64_t id, const char *result, const char *note,
                         char **errp) KG_WUR;

/* Counts for the portal's dashboard, of the alerts (not events) whose time is at or after
 * since_ms (a whole hour: the counts are kept per hour):
 * per bucket of bucket_ms (start aligned to a multiple of it) and level, in time order;
 * and per source, the STORE_ALERT_STATS_SOURCES largest. Both arrays are malloc'd (free
 * them; NULL when empty). */
#define STORE_ALERT_STATS_SOURCES 10
struct store_alert_bucket {
    int64_t start_ms;
    int severity;
    int64_t count;
};
struct store_source_count {
    char source[65];
    int64_t count;
};
int store_alert_stats(struct store_tenant *t, int64_t since_ms, int64_t bucket_ms,
                      struct store_alert_bucket **buckets, size_t *nb,
                      struct store_source_count **sources, size_t *ns, char **errp) KG_WUR;
/* The runs an alert started, oldest first, at most limit (<= 0: 100). */
int store_run_by_alert(struct store_tenant *t, int64_t alert_id, int limit, struct store_run **out,
                       size_t *n, char **errp) KG_WUR;
/* Runs that must be resumed after a restart (queued, running, waiting), oldest first. */
int store_run_unfinished(struct store_tenant *t, struct store_run **out, size_t *n,
                         char **errp) KG_WUR;
/* Count of runs per state, in the order queued, running, waiting, done, failed,
 * cancelled. */
int store_run_counts(struct store_tenant *t, int64_t counts[6], char **errp) KG_WUR;

/* Published lists (a connector's block list, served to devices that pull it): put
 * inserts or refreshes value (expires_ms: ms since the epoch, 0 never) and needs an
 * open transaction, like del, which also drops the list's expired entries. text
 * appends the live values, one a line, sorted, to out (whose cap bounds it). */
int store_list_put(struct store_tenant *t, const char *list, const char *value, int64_t expires_ms,
                   char **errp) KG_WUR;
int store_list_del(struct store_tenant *t, const char *list, const char *value, char **errp) KG_WUR;
int store_list_text(struct store_tenant *t, const char *list, struct buf *out, char **errp) KG_WUR;

/* Source marks: where a polling source stands in its input (source, key: its own names;
 * value: its own text). put needs an open transaction (it goes with the records it
 * covers); get sets *value (malloc'd) or NULL when there is none. */
int store_mark_put(struct store_tenant *t, const char *source, const char *key, const char *value,
                   char **errp) KG_WUR;
int store_mark_get(struct store_tenant *t, const char *source, const char *key, char **value,
                   char **errp) KG_WUR;
/* Delete the source's marks last written before before_ms (needs an open transaction);
 * *deleted gets their number. */
int store_mark_prune(struct store_tenant *t, const char *source, int64_t before_ms, int *deleted,
                     char **errp) KG_WUR;

/* Journal: insert or replace the entry (run_id, seq). */
int store_journal_put(struct store_tenant *t, const struct journal_entry *e, char **errp) KG_WUR;
/* All entries of a run in seq order; *out is freed with journal_entries_free. */
int store_journal_load(struct store_tenant *t, int64_t run_id, struct journal_entry **out,
                       size_t *n, char **errp) KG_WUR;

/* Approvals: a run's approve{} step waiting for people. Writes need the tenant's open
 * transaction (loop_write). */
struct store_approval {
    int64_t id, run_id;
    int64_t created; /* the approve step's first start: with run_id, its key */
    char *title, *detail;
    char *effects; /* JSON array of [kind, args...] */
    char role[16];
    int approvers;
    int64_t deadline;
    char default_decision[16]; /* "approve" or "reject" */
    char *requester;           /* the person who started the run, or NULL */
    char state[16];            /* pending|approved|rejected|expired|cancelled */
    int64_t decided;           /* 0 while pending */
};
struct store_vote {
    char user[64];
    char decision[16]; /* approve|reject */
    char *comment;
    int64_t at;
};
void store_approval_free(struct store_approval *a);
void store_approvals_free(struct store_approval *a, size_t n);
void store_votes_free(struct store_vote *v, size_t n);
int store_approval_add(struct store_tenant *t, const struct store_approval *a, int64_t *id,
                       char **errp) KG_WUR;
/* 1 found, 0 not, -1 error. */
int store_approval_find(struct store_tenant *t, int64_t run_id, int64_t created,
                        struct store_approval *out, char **errp);
int store_approval_get(struct store_tenant *t, int64_t id, struct store_approval *out, char **errp);
/* Newest first; state NULL: all. */
int store_approval_list(struct store_tenant *t, const char *state, int limit,
                        struct store_approval **out, size_t *n, char **errp) KG_WUR;
/* Move a pending approval to state: 1 done, 0 it was not pending, -1 error. */
int store_approval_decide(struct store_tenant *t, int64_t id, const char *state, int64_t at,
                          char **errp);
/* One vote per person: a second fails with "<user> has decided on this approval already". */
int store_approval_vote(struct store_tenant *t, int64_t id, const char *user, const char *decision,
                        const char *comment, int64_t at, char **errp) KG_WUR;
int store_approval_votes(struct store_tenant *t, int64_t id, struct store_vote **out, size_t *n,
                         char **errp) KG_WUR;
/* ---- playbook memory (state.*): one key-value table per tenant database ---- */

/* 1 with *value (JSON text, caller frees) and *expires_ms (0: never) when key holds an
 * entry that has not expired at now_ms, 0 when not, -1 on a database error. */
int store_kv_get(struct store_tenant *t, const char *key, int64_t now_ms, char **value,
                 int64_t *expires_ms, char **errp);
/* Set key to value (JSON text) until expires_ms (0: never). Needs an open transaction. */
int store_kv_put(struct store_tenant *t, const char *key, const char *value, int64_t expires_ms,
                 int64_t now_ms, char **errp) KG_WUR;
/* 1 when key was there, 0 when not, -1 on error. Needs an open transaction. */
int store_kv_delete(struct store_tenant *t, const char *key, char **errp);
/* Delete at most max entries expired at now_ms (bounded work); returns how many. */
int store_kv_prune(struct store_tenant *t, int64_t now_ms, int max, char **errp);

/* The live entries whose key starts with prefix ("" or NULL: all), in key order, at
 * most limit (<= 0: 1000); *out is freed with store_kv_free. */
struct store_kv {
    char *key, *value;
    int64_t expires_ms; /* 0: never */
    int64_t updated_ms;
};
int store_kv_list(struct store_tenant *t, const char *prefix, int64_t now_ms, int limit,
                  struct store_kv **out, size_t *n, char **errp) KG_WUR;
void store_kv_free(struct store_kv *v, size_t n);

/* ---- earlier alerts (alerts.recent) ---- */

struct store_recent {
    const char *value;  /* an observable value (exact match) */
    const char *type;   /* its type, or NULL for any */
    const char *source; /* the alert's source, or NULL for any */
    int64_t since_ms;   /* received at or after */
    int64_t exclude_id; /* an alert left out (the run's own), or 0 */
    int limit;
};
/* Alerts that carry the observable, newest first, without their raw record; *out is an
 * array the caller frees with alert_free on each and free(). The work is bounded: it reads
 * the index newest first and stops after limit alerts or 10000 index rows (a value found
 * in very many alerts, filtered by a source that few of them have, may so return fewer
 * than exist). */
int store_alert_recent(struct store_tenant *t, const struct store_recent *q, struct alert **out,
                       size_t *n, char **errp) KG_WUR;

/* ---- containment in force (the portal's dashboard) ---- */

/* The live entries of every published list (not expired at now_ms), most recently
 * updated first, at most limit; a list whose name holds ':' is a connector's own
 * bookkeeping (never served) and is left out; *out freed with store_list_entries_free. */
struct store_list_entry {
    char list[64];
    char *value;
    int64_t expires_ms; /* 0: never */
    int64_t updated_ms;
};
int store_list_live(struct store_tenant *t, int64_t now_ms, int limit,
                    struct store_list_entry **out, size_t *n, char **errp) KG_WUR;
void store_list_entries_free(struct store_list_entry *v, size_t n);

/* The finished (done) journal entries of one effect kind, newest first, at most limit;
 * *out freed with store_effect_rows_free. */
struct store_effect_row {
    int64_t run_id;
    char kind[64];
    char *request;    /* JSON text, or NULL */
    char *result;     /* JSON text, or NULL */
    int64_t ended_ms; /* 0 while started */
    int64_t started_ms;
};
int store_effects_by_kind(struct store_tenant *t, const char *kind, int limit,
                          struct store_effect_row **out, size_t *n, char **errp) KG_WUR;
/* The journal entries of run run_id whose kind starts with prefix, done or not, in
 * order (the escalate.* steps of a run); freed the same way. */
int store_run_effects(struct store_tenant *t, int64_t run_id, const char *prefix,
                      struct store_effect_row **out, size_t *n, char **errp) KG_WUR;
void store_effect_rows_free(struct store_effect_row *v, size_t n);

/* ---- settings people edit in the portal (over the configuration file's) ----
 *
 * One JSON text per key. get: 1 with *value (and *updated_ms, *updated_by when not
 * NULL; malloc'd, the caller frees), 0 when the key was never set, -1 on error. put and
 * del write in the caller's transaction (loop_write); del answers how many rows went. */
int store_setting_get(struct store_tenant *t, const char *key, char **value, int64_t *updated_ms,
                      char **updated_by, char **errp);
int store_setting_put(struct store_tenant *t, const char *key, const char *value, int64_t now_ms,
                      const char *by, char **errp) KG_WUR;
int store_setting_del(struct store_tenant *t, const char *key, char **errp);

/* ---- escalations (urgent contact chains) ---- */

struct store_esc {
    int64_t id;
    int64_t run_id;
    char *level;
    char *reason;
    char *subject;
    int contacts;   /* in the chain */
    int reached;    /* contacts notified so far (1-based count) */
    char state[16]; /* open, acked, exhausted */
    int64_t created_ms;
    int64_t reached_ms; /* when the last contact was reached, or 0 */
    int64_t acked_ms;   /* 0 until acknowledged */
    char *acked_by;     /* NULL until acknowledged */
    char *acked_via;    /* "link", "cli", "api" */
};
void store_esc_free(struct store_esc *e); /* frees the fields; NULL is a no-op */
/* In the caller's transaction (loop_write). e's run_id, level, reason, subject, contacts
 * and created_ms are stored; *id gets the new row's id. */
int store_esc_insert(struct store_tenant *t, const struct store_esc *e, int64_t *id,
                     char **errp) KG_WUR;
/* 1 and *out filled (store_esc_free it), 0 when there is no such escalation, -1. */
int store_esc_get(struct store_tenant *t, int64_t id, struct store_esc *out, char **errp);
/* Newest first; *out malloc'd (store_esc_free each, then free). */
int store_esc_list(struct store_tenant *t, int limit, struct store_esc **out, size_t *n,
                   char **errp) KG_WUR;
/* The open ones (awaiting acknowledgement), oldest first, at most limit (the portal's
 * dashboard); freed like store_esc_list's. */
int store_esc_open(struct store_tenant *t, int limit, struct store_esc **out, size_t *n,
                   char **errp) KG_WUR;
/* Acknowledge: 1 done now, 0 when it was already acknowledged (or does not exist), -1. */
int store_esc_ack(struct store_tenant *t, int64_t id, const char *by, const char *via,
                  int64_t at_ms, char **errp);
/* Contact number contact (1-based) was notified; exhausted: it was the last one and
 * nobody acknowledged. 1/0/-1 like store_esc_ack. */
int store_esc_reached(struct store_tenant *t, int64_t id, int contact, int64_t at_ms, int exhausted,
                      char **errp);

/* ---- the playbook view: deployments, the dry-run switch, runs per version ---- */

/* One deployment of a playbook version. */
struct store_deploy {
    int64_t id;
    char *name;
    char version[65];
    int64_t deployed_ms;
    char *by;     /* who: an OS user (cli), a person (api); NULL when not recorded */
    char via[16]; /* "cli", "api", "reload", "first_run" */
};
void store_deploys_free(struct store_deploy *v, size_t n); /* the fields and the array */
/* Record that version is the deployed version of playbook name. When the latest row of
 * name already has this version, nothing is added, but a row without a deployer gets by
 * and via (the daemon may have loaded the file before the command that installed it
 * said who it was). Returns 1 when a row was added or completed, 0 when nothing
 * changed, -1 with *errp. by may be NULL (not known). */
int store_deploy_record(struct store_tenant *t, const char *name, const char *version,
                        int64_t when_ms, const char *by, const char *via, char **errp) KG_WUR;
/* The deployments of name, newest first, at most limit; name NULL: the latest one of
 * each playbook, in name order. *out freed with store_deploys_free. */
int store_deploy_list(struct store_tenant *t, const char *name, int limit,
                      struct store_deploy **out, size_t *n, char **errp) KG_WUR;
/* A playbook's dry-run switch: 1 with *on (0/1), *changed_ms and *by (malloc'd; pass
 * NULL not to have it), 0 when it is not set (the playbook's own dry_run counts), -1. */
int store_switch_get(struct store_tenant *t, const char *name, int *on, int64_t *changed_ms,
                     char **by, char **errp) KG_WUR;
/* Set the switch (on 0 or 1), or clear it (on -1). In the caller's transaction. */
int store_switch_set(struct store_tenant *t, const char *name, int on, int64_t when_ms,
                     const char *by, char **errp) KG_WUR;
/* Fix a run's dry-run state (0/1) when it is created. In the caller's transaction. */
int store_run_set_dry_run(struct store_tenant *t, int64_t id, int on, char **errp) KG_WUR;
/* The runs of playbook name created since the start of the hour of since_ms; the runs of
 * one version of it. Read from the hourly counts (run_counts), not from the runs. */
int store_run_count_playbook(struct store_tenant *t, const char *name, int64_t since_ms,
                             int64_t *count, char **errp) KG_WUR;
int store_run_count_version(struct store_tenant *t, const char *name, const char *version,
                            int64_t *count, char **errp) KG_WUR;
/* The runs of a version, newest first, with ids below before (0: from the newest), at
 * most limit (<= 0: 100). */
int store_run_by_version(struct store_tenant *t, const char *version, int64_t before, int limit,
                         struct store_run **out, size_t *n, char **errp) KG_WUR;

#endif
