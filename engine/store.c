/* store.c: all persistence on SQLite; the only file that holds SQL text. */
#include "engine/store.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/log.h"

#define STORE_BUSY_MS 5000            /* the CLI waits this long for a lock; the daemon far less */
#define STORE_OWN_LOCK_MS 2000        /* the loop waits this long for its own checkpointer */
#define STORE_TRUNCATE_IDLE_US 500000 /* truncate only after this long without a commit */
#define STORE_WAL_LARGE_POLL_MS 500   /* checkpointer interval while the WAL is too large */
#define STORE_WAL_LOG_MS 60000        /* store.wal_large: once a minute per database */
#define STORE_CKPT_FOLLOW_MS 20       /* checkpointer interval while it follows a busy writer */
#define STORE_HANDOFF_MS 200          /* a restart handed to the loop waits this long for it */
#define STORE_OBS_MAX (16u * 1024 * 1024) /* cap on one alert's observables as JSON */
/* of a database created now (docs/ARCHITECTURE.md, "The event store") */
#define STORE_PAGE_SIZE "16384"
#define STORE_RUN_LIST_DEFAULT 100
#define STORE_RECENT_SCAN 10000 /* observable rows one recent-alerts query reads at most */

/* ---- schema ----
 *
 * Each database kind has an ordered list of migration scripts. PRAGMA user_version
 * holds how many of them have run; opening a database applies the missing ones, one
 * transaction each. Scripts are append-only: never edit one that has shipped. */

static const char *const control_migrations[] = {
    /* 1: tenants. Users, sessions and the platform audit chain come in later scripts. */
    "CREATE TABLE tenants ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  token_hash TEXT UNIQUE,"
    "  created INTEGER NOT NULL"
    ");",
    /* 2: people: users (Argon2id password, TOTP secret and the last step used, lockout
     * state), their roles per tenant ('*' with role operator: every tenant), hashed
     * recovery codes, server-side sessions and personal API tokens (SHA-256 digests
     * only), the per-tenant address allow-lists ('*': the platform operators' list) and
     * the append-only audit table (triggers refuse UPDATE and DELETE). */
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  pass_hash TEXT NOT NULL,"
    "  totp_secret TEXT NOT NULL,"
    "  totp_confirmed INTEGER NOT NULL DEFAULT 0,"
    "  totp_last_step INTEGER NOT NULL DEFAULT 0,"
    "  failures INTEGER NOT NULL DEFAULT 0,"
    "  locked_until INTEGER NOT NULL DEFAULT 0,"
    "  disabled INTEGER NOT NULL DEFAULT 0,"
    "  created INTEGER NOT NULL,"
    "  last_login INTEGER"
    ");"
    "CREATE TABLE user_roles ("
    "  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  tenant TEXT NOT NULL,"
    "  role TEXT NOT NULL CHECK (role IN"
    "    ('admin', 'engineer', 'analyst', 'auditor', 'operator')),"
    "  PRIMARY KEY (user_id, tenant)"
    ");"
    "CREATE TABLE recovery_codes ("
    "  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  hash TEXT NOT NULL,"
    "  PRIMARY KEY (user_id, hash)"
    ");"
    "CREATE TABLE sessions ("
    "  hash TEXT PRIMARY KEY,"
    "  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  csrf TEXT NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL,"
    "  address TEXT"
    ");"
    "CREATE INDEX sessions_user ON sessions (user_id);"
    "CREATE TABLE api_tokens ("
    "  id INTEGER PRIMARY KEY,"
    "  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  hash TEXT NOT NULL UNIQUE,"
    "  created INTEGER NOT NULL,"
    "  expires INTEGER,"
    "  revoked INTEGER,"
    "  last_used INTEGER"
    ");"
    "CREATE TABLE allowlist ("
    "  tenant TEXT NOT NULL,"
    "  cidr TEXT NOT NULL,"
    "  PRIMARY KEY (tenant, cidr)"
    ");"
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY,"
    "  time INTEGER NOT NULL,"
    "  tenant TEXT,"
    "  actor TEXT,"
    "  action TEXT NOT NULL,"
    "  target TEXT,"
    "  outcome TEXT NOT NULL,"
    "  address TEXT,"
    "  detail TEXT"
    ");"
    "CREATE INDEX audit_tenant ON audit (tenant, id);"
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END;"
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END;",
    /* 3: each person's portal preferences: language and time zone. */
    "CREATE TABLE IF NOT EXISTS user_prefs ("
    "  user_id INTEGER PRIMARY KEY REFERENCES users (id),"
    "  lang TEXT NOT NULL,"
    "  tz TEXT NOT NULL"
    ");",
    /* The users whose password is a one-time password an admin was shown (added in the
     * portal): they choose their own at the first login. Self-contained: creates only
     * its own table. */
    "CREATE TABLE IF NOT EXISTS password_change ("
    "  user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,"
    "  created INTEGER NOT NULL"
    ");",
};

static const char *const tenant_migrations[] = {
    /* 1: alerts, playbook versions, runs and their journals. Times are ms since the
     * epoch; started/ended are NULL until they happen. */
    "CREATE TABLE alerts ("
    "  id INTEGER PRIMARY KEY,"
    "  source TEXT NOT NULL,"
    "  source_id TEXT NOT NULL,"
    "  time INTEGER NOT NULL,"
    "  received INTEGER NOT NULL,"
    "  title TEXT,"
    "  category TEXT,"
    "  vendor_severity TEXT,"
    "  severity INTEGER NOT NULL,"
    "  outcome TEXT NOT NULL,"
    "  observables TEXT NOT NULL DEFAULT '[]',"
    "  raw TEXT,"
    "  UNIQUE (source, source_id)"
    ");"
    "CREATE TABLE playbook_versions ("
    "  hash TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  source TEXT NOT NULL,"
    "  created INTEGER NOT NULL"
    ");"
    "CREATE TABLE runs ("
    "  id INTEGER PRIMARY KEY,"
    "  alert_id INTEGER REFERENCES alerts (id),"
    "  playbook TEXT NOT NULL,"
    "  playbook_hash TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN"
    "    ('queued', 'running', 'waiting', 'done', 'failed', 'cancelled')),"
    "  created INTEGER NOT NULL,"
    "  started INTEGER,"
    "  ended INTEGER,"
    "  error TEXT"
    ");"
    "CREATE INDEX runs_state ON runs (state);"
    "CREATE INDEX runs_alert ON runs (alert_id);"
    "CREATE TABLE journal ("
    "  run_id INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  request TEXT,"
    "  result TEXT,"
    "  status INTEGER NOT NULL,"
    "  started INTEGER NOT NULL,"
    "  ended INTEGER,"
    "  PRIMARY KEY (run_id, seq)"
    ") WITHOUT ROWID;",
    /* 2: the waits inside an effect (throttling, backoff, an open breaker) and the end of
     * the current throttling wait, which makes a waiting run show as "throttled". */
    "ALTER TABLE journal ADD COLUMN waits TEXT;"
    "ALTER TABLE journal ADD COLUMN throttled_until INTEGER;",
    /* 3: playbook memory (state.*) and earlier alerts by observable (alerts.recent): the
     * key-value table (value as JSON text; expires in ms since the epoch, NULL = never),
     * and an index of every alert's observable values, filled by store_alert_insert (and
     * here for the alerts already stored), so that a look-up reads only the alerts that
     * share the value. It is keyed by a 64-bit hash of the value (kg_vhash, FNV-1a): a
     * small integer key keeps the insert cheap on the intake's path; the reader checks
     * the value and type in the alert itself, so a collision costs one row, never a
     * wrong answer. Rows of a deleted alert are skipped by the join. */
    "CREATE TABLE kv ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL,"
    "  expires INTEGER,"
    "  updated INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX kv_expires ON kv (expires) WHERE expires IS NOT NULL;"
    "CREATE TABLE alert_observables ("
    "  vhash INTEGER NOT NULL,"
    "  received INTEGER NOT NULL,"
    "  alert_id INTEGER NOT NULL,"
    "  PRIMARY KEY (vhash, received, alert_id)"
    ") WITHOUT ROWID;"
    "INSERT OR IGNORE INTO alert_observables (vhash, received, alert_id)"
    " SELECT kg_vhash(json_extract(o.value, '$.value')), a.received, a.id"
    " FROM alerts AS a, json_each(a.observables) AS o"
    " WHERE json_valid(a.observables) AND json_type(o.value, '$.value') = 'text';",
    /* 4: approvals: a run's approve{} step waiting for people (keyed by the run and the
     * step's first start), the effects it asks for (JSON), the role and quorum it
     * needs, its deadline and default, its state and decision; one vote per person. */
    "CREATE TABLE approvals ("
    "  id INTEGER PRIMARY KEY,"
    "  run_id INTEGER NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  title TEXT NOT NULL,"
    "  detail TEXT,"
    "  effects TEXT NOT NULL DEFAULT '[]',"
    "  role TEXT NOT NULL,"
    "  approvers INTEGER NOT NULL,"
    "  deadline INTEGER NOT NULL,"
    "  default_decision TEXT NOT NULL,"
    "  requester TEXT,"
    "  state TEXT NOT NULL CHECK (state IN"
    "    ('pending', 'approved', 'rejected', 'expired', 'cancelled')),"
    "  decided INTEGER,"
    "  UNIQUE (run_id, created)"
    ");"
    "CREATE INDEX approvals_state ON approvals (state);"
    "CREATE TABLE approval_votes ("
    "  approval_id INTEGER NOT NULL REFERENCES approvals (id),"
    "  user TEXT NOT NULL,"
    "  decision TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),"
    "  comment TEXT,"
    "  at INTEGER NOT NULL,"
    "  PRIMARY KEY (approval_id, user)"
    ");",
    /* 5: the class of each record: 'alert' (a detection, routed to playbooks) or 'event'
     * (a high-volume log line, kept for queries); rows stored before are alerts. */
    "ALTER TABLE alerts ADD COLUMN class TEXT NOT NULL DEFAULT 'alert';",
    /* 6: escalations: one urgent contact chain started by a run's escalate{}, how far down
     * its contacts it got and who acknowledged it when and how (time to acknowledge for
     * the monthly report). Self-contained: creates only its own table. */
    "CREATE TABLE IF NOT EXISTS escalations ("
    "  id INTEGER PRIMARY KEY,"
    "  run_id INTEGER NOT NULL,"
    "  level TEXT NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  contacts INTEGER NOT NULL,"
    "  reached INTEGER NOT NULL DEFAULT 0,"
    "  state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acked', 'exhausted')),"
    "  created INTEGER NOT NULL,"
    "  reached_at INTEGER,"
    "  acked INTEGER,"
    "  acked_by TEXT,"
    "  acked_via TEXT"
    ");"
    "CREATE INDEX IF NOT EXISTS escalations_state ON escalations (state);",
    /* 7: the portal's dashboard: the number of alerts (class 'alert', not events) per
     * hour of their time, source and level, kept by triggers as alerts are stored (and
     * deleted), filled from the alerts already there; the dashboard reads a few hundred
     * rows of it, never the alerts themselves. */
    "CREATE TABLE IF NOT EXISTS alert_counts ("
    "  hour INTEGER NOT NULL,"
    "  source TEXT NOT NULL,"
    "  severity INTEGER NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  PRIMARY KEY (hour, source, severity)"
    ") WITHOUT ROWID;"
    "INSERT INTO alert_counts (hour, source, severity, n)"
    "  SELECT (time / 3600000) * 3600000, source, severity, count(*) FROM alerts"
    "  WHERE class = 'alert' GROUP BY 1, 2, 3;"
    "CREATE TRIGGER IF NOT EXISTS alert_counts_add AFTER INSERT ON alerts"
    "  WHEN NEW.class = 'alert' BEGIN"
    "  INSERT INTO alert_counts (hour, source, severity, n)"
    "    VALUES ((NEW.time / 3600000) * 3600000, NEW.source, NEW.severity, 1)"
    "    ON CONFLICT (hour, source, severity) DO UPDATE SET n = n + 1;"
    "  END;"
    "CREATE TRIGGER IF NOT EXISTS alert_counts_remove AFTER DELETE ON alerts"
    "  WHEN OLD.class = 'alert' BEGIN"
    "  UPDATE alert_counts SET n = n - 1 WHERE hour = (OLD.time / 3600000) * 3600000"
    "    AND source = OLD.source AND severity = OLD.severity;"
    "  END;",
    /* 8: events: records kept for searching (firewall flows, sign-ins...), not detections.
     * Deduplicated on (source, source_id); user, ip (source address), dst_ip and device
     * are taken from the observables and indexed with the time; rows are pruned in id
     * order once their received time is past the tenant's retention. */
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY,"
    "  time INTEGER NOT NULL,"
    "  received INTEGER NOT NULL,"
    "  source TEXT NOT NULL,"
    "  source_id TEXT NOT NULL,"
    "  user TEXT COLLATE NOCASE,"
    "  ip TEXT,"
    "  dst_ip TEXT,"
    "  device TEXT COLLATE NOCASE,"
    "  severity INTEGER NOT NULL,"
    "  outcome TEXT NOT NULL,"
    "  category TEXT,"
    "  title TEXT,"
    "  observables TEXT NOT NULL DEFAULT '[]',"
    "  raw TEXT"
    ");"
    "CREATE UNIQUE INDEX events_dedup ON events (source, source_id);"
    "CREATE INDEX events_user ON events (user, time) WHERE user IS NOT NULL;"
    "CREATE INDEX events_ip ON events (ip, time) WHERE ip IS NOT NULL;"
    "CREATE INDEX events_dst_ip ON events (dst_ip, time) WHERE dst_ip IS NOT NULL;"
    "CREATE INDEX events_device ON events (device, time) WHERE device IS NOT NULL;",
    /* 9: playbook libraries: the lib/NAME.lua files each playbook version was loaded with
     * (the version hash covers them), so a run resumed after a restart uses the same
     * library code. */
    "CREATE TABLE playbook_libs ("
    "  version TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  source TEXT NOT NULL,"
    "  PRIMARY KEY (version, name)"
    ") WITHOUT ROWID;",
    /* 10: a run's result: the JSON text of the value its playbook returned (NULL when it
     * returned nothing or nil), and a note when the value could not be kept (not
     * JSON-able, or over the size cap). Written with the run's final state. */
    "ALTER TABLE runs ADD COLUMN result TEXT;"
    "ALTER TABLE runs ADD COLUMN result_note TEXT;",
    /* 11: published lists: named sets of values a connector keeps for the tenant (the
     * addresses the firewall connector blocked), served to devices that pull them.
     * expires is ms since the epoch, 0 for never. */
    "CREATE TABLE IF NOT EXISTS list_entries ("
    "  list TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  expires INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  PRIMARY KEY (list, value)"
    ") WITHOUT ROWID;",
    /* 12: the person who started a run by hand (POST /api/v1/tenants/<t>/alerts/<id>/runs),
     * NULL for a run the engine started: such a person may never decide the run's own
     * approvals. Self-contained: adds only this column. */
    "ALTER TABLE runs ADD COLUMN requester TEXT;",
    /* 13: polling: each poller's durable position per stream (poll_cursors: its cursor as the
     * poller's own JSON text); the history of stored alerts their source changed later
     * (alert_updates: what changed, the record before, whether the change started the
     * playbooks again); the dashboard's counts follow an alert whose level changes.
     * Self-contained: creates only its own objects, each only if missing. */
    "CREATE TABLE IF NOT EXISTS poll_cursors ("
    "  stream TEXT PRIMARY KEY,"
    "  cursor TEXT NOT NULL,"
    "  updated INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS alert_updates ("
    "  id INTEGER PRIMARY KEY,"
    "  alert_id INTEGER NOT NULL,"
    "  at INTEGER NOT NULL,"
    "  significant INTEGER NOT NULL,"
    "  changes TEXT NOT NULL,"
    "  previous TEXT"
    ");"
    "CREATE INDEX IF NOT EXISTS alert_updates_alert ON alert_updates (alert_id, id);"
    "CREATE TRIGGER IF NOT EXISTS alert_counts_relevel AFTER UPDATE OF severity ON alerts"
    "  WHEN OLD.class = 'alert' AND OLD.severity <> NEW.severity BEGIN"
    "  UPDATE alert_counts SET n = n - 1 WHERE hour = (OLD.time / 3600000) * 3600000"
    "    AND source = OLD.source AND severity = OLD.severity;"
    "  INSERT INTO alert_counts (hour, source, severity, n)"
    "    VALUES ((NEW.time / 3600000) * 3600000, NEW.source, NEW.severity, 1)"
    "    ON CONFLICT (hour, source, severity) DO UPDATE SET n = n + 1;"
    "  END;",
    /* 14: the events table rebuilt for a faster intake (docs/ARCHITECTURE.md, "The event
     * store"): its dedup key and its lookup keys become 64-bit integers, so that each of
     * its five indexes compares integers and keeps small entries. sid is a hash of
     * (source, source_id) (kg_vhash of source, a newline, source_id; unique); uk, ik, dk
     * and vk hash the user (ASCII case folded: kg_ihash), the source address, the
     * destination address and the device (folded). Every lookup also compares the stored
     * text, so two values with one hash cost a row read, never a wrong answer; an insert
     * whose sid is taken by another record probes the next sids (engine/store.c). Rows
     * keep their ids (pruning goes by id); a row of the old table whose sid is taken
     * (two records, one hash) gets the next one. Self-contained: reads only the columns
     * of the events table of migration 8. */
    "CREATE TABLE events_v2 ("
    "  id INTEGER PRIMARY KEY,"
    "  sid INTEGER NOT NULL,"
    "  time INTEGER NOT NULL,"
    "  received INTEGER NOT NULL,"
    "  source TEXT NOT NULL,"
    "  source_id TEXT NOT NULL,"
    "  user TEXT COLLATE NOCASE,"
    "  ip TEXT,"
    "  dst_ip TEXT,"
    "  device TEXT COLLATE NOCASE,"
    "  uk INTEGER,"
    "  ik INTEGER,"
    "  dk INTEGER,"
    "  vk INTEGER,"
    "  severity INTEGER NOT NULL,"
    "  outcome TEXT NOT NULL,"
    "  category TEXT,"
    "  title TEXT,"
    "  observables TEXT NOT NULL DEFAULT '[]',"
    "  raw TEXT"
    ");"
    "CREATE UNIQUE INDEX events_v2_sid ON events_v2 (sid);"
    "INSERT OR IGNORE INTO events_v2 (id, sid, time, received, source, source_id, user, ip,"
    "  dst_ip, device, uk, ik, dk, vk, severity, outcome, category, title, observables, raw)"
    "  SELECT id, kg_vhash(source || char(10) || source_id), time, received, source, source_id,"
    "  user, ip, dst_ip, device, kg_ihash(user), kg_vhash(ip), kg_vhash(dst_ip),"
    "  kg_ihash(device), severity, outcome, category, title, observables, raw"
    "  FROM events ORDER BY id;"
    "INSERT OR IGNORE INTO events_v2 (id, sid, time, received, source, source_id, user, ip,"
    "  dst_ip, device, uk, ik, dk, vk, severity, outcome, category, title, observables, raw)"
    "  SELECT id, kg_vhash(source || char(10) || source_id) + 1, time, received, source,"
    "  source_id, user, ip, dst_ip, device, kg_ihash(user), kg_vhash(ip), kg_vhash(dst_ip),"
    "  kg_ihash(device), severity, outcome, category, title, observables, raw"
    "  FROM events WHERE id NOT IN (SELECT id FROM events_v2) ORDER BY id;"
    "DROP TABLE events;"
    "ALTER TABLE events_v2 RENAME TO events;"
    "DROP INDEX events_v2_sid;"
    "CREATE UNIQUE INDEX events_sid ON events (sid);"
    "CREATE INDEX events_uk ON events (uk, time) WHERE uk IS NOT NULL;"
    "CREATE INDEX events_ik ON events (ik, time) WHERE ik IS NOT NULL;"
    "CREATE INDEX events_dk ON events (dk, time) WHERE dk IS NOT NULL;"
    "CREATE INDEX events_vk ON events (vk, time) WHERE vk IS NOT NULL;",
    /* 15: the playbook view: each deployment of a playbook version (when, by whom, how:
     * 'cli' for `kagari playbook deploy`, 'api' for a person, 'reload' for a file the
     * daemon found changed, 'first_run' for a version known from before this table, with
     * the time of its first run), the dry-run switch people set per playbook, each run's
     * dry-run state fixed when it is created (NULL: as its version says), the index that
     * lists the runs of a version, and the number of runs per playbook, hour of creation
     * and version, kept by a trigger (filled from the runs already there), so that counts
     * read a few hundred rows, never the runs. Self-contained. */
    "CREATE TABLE IF NOT EXISTS playbook_deploys ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  version TEXT NOT NULL,"
    "  deployed INTEGER NOT NULL,"
    "  deployed_by TEXT,"
    "  via TEXT NOT NULL"
    ");"
    "CREATE INDEX IF NOT EXISTS playbook_deploys_name ON playbook_deploys (name, id);"
    "INSERT INTO playbook_deploys (name, version, deployed, deployed_by, via)"
    "  SELECT name, hash, created, NULL, 'first_run' FROM playbook_versions"
    "  ORDER BY created, hash;"
    "CREATE TABLE IF NOT EXISTS playbook_switches ("
    "  name TEXT PRIMARY KEY,"
    "  dry_run INTEGER NOT NULL,"
    "  changed INTEGER NOT NULL,"
    "  changed_by TEXT NOT NULL"
    ") WITHOUT ROWID;"
    "ALTER TABLE runs ADD COLUMN dry_run INTEGER;"
    "CREATE INDEX IF NOT EXISTS runs_version ON runs (playbook_hash, id);"
    "CREATE TABLE IF NOT EXISTS run_counts ("
    "  playbook TEXT NOT NULL,"
    "  hour INTEGER NOT NULL,"
    "  version TEXT NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  PRIMARY KEY (playbook, hour, version)"
    ") WITHOUT ROWID;"
    "INSERT INTO run_counts (playbook, hour, version, n)"
    "  SELECT playbook, (created / 3600000) * 3600000, playbook_hash, count(*) FROM runs"
    "  GROUP BY 1, 2, 3;"
    "CREATE TRIGGER IF NOT EXISTS run_counts_add AFTER INSERT ON runs BEGIN"
    "  INSERT INTO run_counts (playbook, hour, version, n)"
    "    VALUES (NEW.playbook, (NEW.created / 3600000) * 3600000, NEW.playbook_hash, 1)"
    "    ON CONFLICT (playbook, hour, version) DO UPDATE SET n = n + 1;"
    "  END;",
    /* 16: records of class event that the HTTP intake kept in the alerts table (class =
     * 'event') move to the event store, where the intake now puts them: searchable with
     * events.query, pruned after the tenant's retention. Their user, ip, dst_ip and device
     * are picked from the observables as store_event_insert picks them (role src first,
     * else the first of the type; dst_ip only with role dst) and hashed as it hashes them
     * (the keys of migration 14); one already in the event store (the same source and
     * source_id) is not copied twice; a record whose dedup key is taken by another takes
     * the next one, as store_event_insert's probing does. Then the moved ones (and those
     * that were there already) leave alert_observables and alerts; a record a run refers
     * to (never made by the engine: events start no run) stays where it is, and so would
     * one that found no free key. Self-contained: data only (and a temporary table),
     * harmless to run again. */
    "CREATE TEMP TABLE kg_move AS SELECT a.id AS aid,"
    "  kg_vhash(a.source || char(10) || a.source_id) AS h, a.time AS time,"
    "  a.received AS received, a.source AS source, a.source_id AS source_id,"
    "  (SELECT json_extract(o.value, '$.value') FROM json_each(a.observables) AS o"
    "    WHERE json_extract(o.value, '$.type') = 'user'"
    "    ORDER BY json_extract(o.value, '$.role') IS NOT 'src', o.key LIMIT 1) AS user,"
    "  (SELECT json_extract(o.value, '$.value') FROM json_each(a.observables) AS o"
    "    WHERE json_extract(o.value, '$.type') = 'ip'"
    "    ORDER BY json_extract(o.value, '$.role') IS NOT 'src', o.key LIMIT 1) AS ip,"
    "  (SELECT json_extract(o.value, '$.value') FROM json_each(a.observables) AS o"
    "    WHERE json_extract(o.value, '$.type') = 'ip' AND json_extract(o.value, '$.role') = 'dst'"
    "    ORDER BY o.key LIMIT 1) AS dst_ip,"
    "  (SELECT json_extract(o.value, '$.value') FROM json_each(a.observables) AS o"
    "    WHERE json_extract(o.value, '$.type') IN ('host', 'device')"
    "    ORDER BY json_extract(o.value, '$.role') IS NOT 'src', o.key LIMIT 1) AS device,"
    "  a.severity AS severity, a.outcome AS outcome, a.category AS category,"
    "  a.title AS title, a.observables AS observables, a.raw AS raw, 0 AS moved"
    " FROM alerts AS a"
    " WHERE a.class = 'event' AND json_valid(a.observables)"
    "  AND NOT EXISTS (SELECT 1 FROM runs WHERE runs.alert_id = a.id);"
    "UPDATE kg_move SET moved = 1 WHERE"
    "  EXISTS (SELECT 1 FROM events AS e WHERE e.sid BETWEEN kg_move.h AND kg_move.h + 7"
    "   AND e.source = kg_move.source AND e.source_id = kg_move.source_id)"
    ";"
    "INSERT OR IGNORE INTO events (sid, time, received, source, source_id, user, ip, dst_ip,"
    "  device, uk, ik, dk, vk, severity, outcome, category, title, observables, raw)"
    " SELECT h, time, received, source, source_id, user, ip, dst_ip, device, kg_ihash(user),"
    "  kg_vhash(ip), kg_vhash(dst_ip), kg_ihash(device), severity, outcome, category, title,"
    "  observables, raw FROM kg_move WHERE NOT moved ORDER BY aid;"
    "UPDATE kg_move SET moved = 1 WHERE NOT moved AND"
    "  EXISTS (SELECT 1 FROM events AS e WHERE e.sid BETWEEN kg_move.h AND kg_move.h + 7"
    "   AND e.source = kg_move.source AND e.source_id = kg_move.source_id)"
    ";"
    "INSERT OR IGNORE INTO events (sid, time, received, source, source_id, user, ip, dst_ip,"
    "  device, uk, ik, dk, vk, severity, outcome, category, title, observables, raw)"
    " SELECT h + 1, time, received, source, source_id, user, ip, dst_ip, device, kg_ihash(user),"
    "  kg_vhash(ip), kg_vhash(dst_ip), kg_ihash(device), severity, outcome, category, title,"
    "  observables, raw FROM kg_move WHERE NOT moved ORDER BY aid;"
    "UPDATE kg_move SET moved = 1 WHERE NOT moved AND"
    "  EXISTS (SELECT 1 FROM events AS e WHERE e.sid BETWEEN kg_move.h AND kg_move.h + 7"
    "   AND e.source = kg_move.source AND e.source_id = kg_move.source_id)"
    ";"
    "DELETE FROM alert_observables WHERE (vhash, received, alert_id) IN"
    " (SELECT kg_vhash(json_extract(o.value, '$.value')), m.received, m.aid"
    "  FROM kg_move AS m, json_each(m.observables) AS o"
    "  WHERE m.moved AND json_type(o.value, '$.value') = 'text');"
    "DELETE FROM alerts WHERE id IN (SELECT aid FROM kg_move WHERE moved);"
    "DROP TABLE temp.kg_move;",
    /* 17: source marks: where a polling source stands in its input (the byte offset
     * reached in each storage blob), written in the same transaction as the records it
     * covers, so a restart resumes exactly there. value is the source's own text. */
    "CREATE TABLE IF NOT EXISTS source_marks ("
    "  source TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  PRIMARY KEY (source, key)"
    ") WITHOUT ROWID;",
    /* 18: the portal's containment view: the journal's finished effects by kind, newest
     * first (which accounts were disabled, which devices isolated), read without a scan
     * of every run's journal. Self-contained: adds only its own index. */
    "CREATE INDEX IF NOT EXISTS journal_kind ON journal (kind, ended);",
    /* 19: settings people edit in the portal over what the configuration file says (the
     * contact chain, "notify.chain"): one JSON text per key, with who changed it when.
     * Self-contained: creates only its own table. */
    "CREATE TABLE IF NOT EXISTS tenant_settings ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  updated_by TEXT"
    ") WITHOUT ROWID;",
};

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- queries ----
 *
 * Every statement is prepared once per connection, the first time it is used, and
 * kept until the connection closes. After each use it is reset and its bindings are
 * cleared, so no statement holds a read transaction open between calls. */

enum query {
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_TENANT_ADD,
    Q_TENANT_SET_TOKEN,
    Q_TENANT_FIND_TOKEN,
    Q_TENANT_LIST,
    Q_TENANT_EXISTS,
    Q_ALERT_INSERT,
    Q_ALERT_FIND,
    Q_ALERT_GET,
    Q_ALERT_COUNT,
    Q_PLAYBOOK_PUT,
    Q_PLAYBOOK_GET,
    Q_PLAYBOOK_LIB_PUT,
    Q_PLAYBOOK_LIB_GET,
    Q_RUN_INSERT,
    Q_RUN_UPDATE,
    Q_RUN_RETRY,
    Q_JOURNAL_DROP_UNFINISHED_TAIL,
    Q_RUN_GET,
    Q_RUN_LIST,
    Q_RUN_LIST_STATE,
    Q_RUN_BY_ALERT,
    Q_RUN_UNFINISHED,
    Q_RUN_COUNTS,
    Q_RUN_SET_RESULT,
    Q_JOURNAL_PUT,
    Q_JOURNAL_LOAD,
    Q_KV_GET,
    Q_KV_PUT,
    Q_KV_DELETE,
    Q_KV_PRUNE,
    Q_KV_LIST,
    Q_ALERT_RECENT,
    Q_ALERT_OBS_INSERT,
    Q_ALERT_IDS,
    Q_ALERT_MAX_ID,
    Q_ALERT_BY_LEVEL,
    Q_ALERT_BY_SOURCE,
    Q_USER_ADD,
    Q_USER_GET,
    Q_USER_GET_ID,
    Q_USER_LIST,
    Q_USER_DISABLE,
    Q_USER_SET_PASSWORD,
    Q_USER_SET_TOTP,
    Q_USER_TOTP_USED,
    Q_USER_FAILED,
    Q_PREFS_GET,
    Q_PREFS_SET,
    Q_USER_LOGIN_OK,
    Q_RECOVERY_CLEAR,
    Q_RECOVERY_ADD,
    Q_RECOVERY_USE,
    Q_ROLE_SET,
    Q_ROLE_DEL,
    Q_ROLES_GET,
    Q_SESSION_ADD,
    Q_SESSION_GET,
    Q_SESSION_TOUCH,
    Q_SESSION_DEL,
    Q_SESSION_DEL_USER,
    Q_SESSION_PURGE,
    Q_TOKEN_ADD,
    Q_TOKEN_FIND,
    Q_TOKEN_LIST,
    Q_TOKEN_REVOKE,
    Q_TOKEN_USED,
    Q_ALLOW_ADD,
    Q_ALLOW_DEL,
    Q_ALLOW_LIST,
    Q_AUDIT_ADD,
    Q_AUDIT_LIST,
    Q_AUDIT_LIST_TENANT,
    Q_APPROVAL_ADD,
    Q_APPROVAL_FIND,
    Q_APPROVAL_GET,
    Q_APPROVAL_LIST,
    Q_APPROVAL_LIST_STATE,
    Q_APPROVAL_DECIDE,
    Q_VOTE_ADD,
    Q_VOTES_GET,
    Q_EVENT_INSERT,
    Q_EVENT_BY_SID,
    Q_EVENT_BY_USER,
    Q_EVENT_BY_IP,
    Q_EVENT_BY_DEVICE,
    Q_EVENT_BY_SOURCE,
    Q_EVENT_BY_TIME,
    Q_EVENT_COUNT_BY_USER,
    Q_EVENT_COUNT_BY_IP,
    Q_EVENT_COUNT_BY_DEVICE,
    Q_EVENT_COUNT_BY_SOURCE,
    Q_EVENT_COUNT_BY_TIME,
    Q_EVENT_OLDEST,
    Q_EVENT_FIRST,
    Q_EVENT_PRUNE,
    Q_EVENT_TOTAL,
    Q_LIST_PUT,
    Q_LIST_DEL,
    Q_LIST_GET,
    Q_ALERT_UPDATE,
    Q_ALERT_UPDATE_LOG,
    Q_ALERT_UPDATES,
    Q_CURSOR_GET,
    Q_CURSOR_PUT,
    Q_CURSOR_LIST,
    /* the playbook view */
    Q_DEPLOY_LATEST,
    Q_DEPLOY_ADD,
    Q_DEPLOY_SET_BY,
    Q_DEPLOY_LIST,
    Q_DEPLOY_LIST_LATEST,
    Q_SWITCH_GET,
    Q_SWITCH_SET,
    Q_SWITCH_CLEAR,
    Q_RUN_SET_DRY,
    Q_RUN_COUNT_PLAYBOOK,
    Q_RUN_COUNT_VERSION,
    Q_RUN_BY_VERSION,
    Q_MARK_PUT,
    Q_MARK_GET,
    Q_MARK_PRUNE,
    /* the portal's settings and dashboard */
    Q_ALERT_IDS_OBS,
    Q_LIST_LIVE,
    Q_JOURNAL_BY_KIND,
    Q_JOURNAL_RUN_PREFIX,
    Q_PWCHANGE_SET,
    Q_PWCHANGE_GET,
    Q_PWCHANGE_DONE,
    Q_SETTING_GET,
    Q_SETTING_PUT,
    Q_SETTING_DEL,
    Q_COUNT
};

#define EVENT_COLUMNS                                                                              \
    "id, time, received, source, source_id, user, ip, dst_ip, device, severity, outcome,"          \
    " category, title, observables, raw"
#define EVENT_REST                                                                                 \
    "(?1 IS NULL OR user = ?1) AND (?2 IS NULL OR ip = ?2 OR dst_ip = ?2)"                         \
    " AND (?3 IS NULL OR device = ?3) AND (?4 IS NULL OR source = ?4)"                             \
    " AND time >= ?5 AND time <= ?6 AND (?8 IS NULL OR outcome = ?8)"

#define RUN_COLUMNS                                                                                \
    "id, alert_id, playbook, playbook_hash, state, created, started, ended, error,"                \
    " (SELECT max(throttled_until) FROM journal j WHERE j.run_id = runs.id AND j.status = 0),"     \
    " result, result_note, dry_run"

static const char *const query_sql[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_TENANT_ADD] = "INSERT INTO tenants (id, name, token_hash, created) VALUES (?1, ?2, ?3, ?4)",
    [Q_TENANT_SET_TOKEN] = "UPDATE tenants SET token_hash = ?2 WHERE id = ?1",
    [Q_TENANT_FIND_TOKEN] = "SELECT id FROM tenants WHERE token_hash = ?1",
    [Q_TENANT_LIST] = "SELECT id, name, created FROM tenants ORDER BY id",
    [Q_TENANT_EXISTS] = "SELECT 1 FROM tenants WHERE id = ?1",
    [Q_ALERT_INSERT] = "INSERT INTO alerts (source, source_id, time, received, title, category,"
                       " vendor_severity, severity, outcome, observables, raw, class)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                       " ON CONFLICT (source, source_id) DO NOTHING",
    [Q_ALERT_FIND] = "SELECT id FROM alerts WHERE source = ?1 AND source_id = ?2",
    [Q_ALERT_GET] = "SELECT id, source, source_id, time, received, title, category,"
                    " vendor_severity, severity, outcome, observables, raw, class"
                    " FROM alerts WHERE id = ?1",
    [Q_ALERT_COUNT] = "SELECT count(*) FROM alerts",
    [Q_PLAYBOOK_PUT] = "INSERT INTO playbook_versions (hash, name, source, created)"
                       " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (hash) DO NOTHING",
    [Q_PLAYBOOK_GET] = "SELECT source, name FROM playbook_versions WHERE hash = ?1",
    [Q_PLAYBOOK_LIB_PUT] = "INSERT OR IGNORE INTO playbook_libs (version, name, source)"
                           " VALUES (?1, ?2, ?3)",
    [Q_PLAYBOOK_LIB_GET] = "SELECT name, source FROM playbook_libs WHERE version = ?1"
                           " ORDER BY name",
    [Q_RUN_INSERT] = "INSERT INTO runs (alert_id, playbook, playbook_hash, state, created)"
                     " VALUES (?1, ?2, ?3, 'queued', ?4)",
    [Q_RUN_UPDATE] = "UPDATE runs SET state = ?2,"
                     " started = CASE WHEN ?3 > 0 THEN ?3 ELSE started END,"
                     " ended = CASE WHEN ?4 > 0 THEN ?4 ELSE ended END,"
                     " error = ?5 WHERE id = ?1",
    [Q_RUN_RETRY] = "UPDATE runs SET state = 'queued', started = NULL, ended = NULL,"
                    " error = NULL WHERE id = ?1 AND state = 'failed'",
    [Q_JOURNAL_DROP_UNFINISHED_TAIL] = "DELETE FROM journal WHERE run_id = ?1 AND status != 1"
                                       " AND seq = (SELECT max(seq) FROM journal"
                                       " WHERE run_id = ?1)",
    [Q_RUN_GET] = "SELECT " RUN_COLUMNS " FROM runs WHERE id = ?1",
    [Q_RUN_LIST] = "SELECT " RUN_COLUMNS " FROM runs ORDER BY id DESC LIMIT ?1",
    [Q_RUN_BY_ALERT] = "SELECT " RUN_COLUMNS " FROM runs WHERE alert_id = ?1 ORDER BY id LIMIT ?2",
    [Q_RUN_LIST_STATE] = "SELECT " RUN_COLUMNS " FROM runs WHERE state = ?2"
                         " ORDER BY id DESC LIMIT ?1",
    [Q_RUN_UNFINISHED] = "SELECT " RUN_COLUMNS " FROM runs"
                         " WHERE state IN ('queued', 'running', 'waiting') ORDER BY id",
    [Q_RUN_COUNTS] = "SELECT state, count(*) FROM runs GROUP BY state",
    [Q_RUN_SET_RESULT] = "UPDATE runs SET result = ?2, result_note = ?3 WHERE id = ?1",
    [Q_JOURNAL_PUT] = "INSERT INTO journal (run_id, seq, kind, request, result, status, started,"
                      " ended, waits, throttled_until)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                      " ON CONFLICT (run_id, seq) DO UPDATE SET kind = excluded.kind,"
                      " request = excluded.request, result = excluded.result,"
                      " status = excluded.status, started = excluded.started,"
                      " ended = excluded.ended, waits = excluded.waits,"
                      " throttled_until = excluded.throttled_until",
    [Q_JOURNAL_LOAD] = "SELECT run_id, seq, kind, request, result, status, started, ended,"
                       " waits, throttled_until FROM journal WHERE run_id = ?1 ORDER BY seq",
    [Q_KV_GET] =
        "SELECT value, expires FROM kv WHERE key = ?1 AND (expires IS NULL OR expires > ?2)",
    [Q_KV_PUT] = "INSERT INTO kv (key, value, expires, updated) VALUES (?1, ?2, ?3, ?4)"
                 " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                 " expires = excluded.expires, updated = excluded.updated",
    [Q_KV_DELETE] = "DELETE FROM kv WHERE key = ?1",
    [Q_KV_LIST] = "SELECT key, value, expires, updated FROM kv"
                  " WHERE (expires IS NULL OR expires > ?1) AND substr(key, 1, length(?2)) = ?2"
                  " ORDER BY key LIMIT ?3",
    [Q_KV_PRUNE] = "DELETE FROM kv WHERE key IN (SELECT key FROM kv WHERE expires <= ?1"
                   " ORDER BY expires LIMIT ?2)",
    /* Newest first along the index of (value, received, alert_id): rows stream without
     * a sort, so the caller can stop after a bounded number (STORE_RECENT_SCAN). */
    [Q_ALERT_RECENT] = "SELECT a.id, a.source, a.source_id, a.time, a.received, a.title,"
                       " a.category, a.vendor_severity, a.severity, a.outcome, a.observables"
                       " FROM alert_observables AS o JOIN alerts AS a ON a.id = o.alert_id"
                       " WHERE o.vhash = ?1 AND o.received >= ?2"
                       " ORDER BY o.received DESC, o.alert_id DESC",
    [Q_ALERT_OBS_INSERT] = "INSERT OR IGNORE INTO alert_observables (vhash, received, alert_id)"
                           " VALUES (?1, ?2, ?3)",
    [Q_ALERT_BY_LEVEL] = "SELECT (hour / ?2) * ?2, severity, sum(n) FROM alert_counts"
                         " WHERE hour >= ?1 GROUP BY 1, 2 HAVING sum(n) > 0 ORDER BY 1, 2",
    [Q_ALERT_BY_SOURCE] = "SELECT source, sum(n) FROM alert_counts WHERE hour >= ?1"
                          " GROUP BY source HAVING sum(n) > 0 ORDER BY 2 DESC, source LIMIT ?2",
    [Q_ALERT_IDS] = "SELECT id FROM alerts WHERE id < ?1 AND (?3 IS NULL OR source = ?3)"
                    " AND (?4 < 0 OR severity = ?4) AND (?5 IS NULL OR outcome = ?5)"
                    " AND (?6 IS NULL OR time >= ?6) AND (?7 IS NULL OR time < ?7)"
                    " AND id >= ?8 ORDER BY id DESC LIMIT ?2",
    [Q_ALERT_MAX_ID] = "SELECT coalesce(max(id), 0) FROM alerts",
#define USER_COLUMNS                                                                               \
    "id, name, pass_hash, totp_secret, totp_confirmed, totp_last_step, failures, locked_until,"    \
    " disabled, created, last_login"
    [Q_USER_ADD] = "INSERT INTO users (name, pass_hash, totp_secret, created)"
                   " VALUES (?1, ?2, ?3, ?4)",
    [Q_USER_GET] = "SELECT " USER_COLUMNS " FROM users WHERE name = ?1",
    [Q_USER_GET_ID] = "SELECT " USER_COLUMNS " FROM users WHERE id = ?1",
    [Q_USER_LIST] = "SELECT " USER_COLUMNS " FROM users ORDER BY name",
    [Q_USER_DISABLE] = "UPDATE users SET disabled = ?2 WHERE id = ?1",
    [Q_USER_SET_PASSWORD] = "UPDATE users SET pass_hash = ?2, failures = 0, locked_until = 0"
                            " WHERE id = ?1",
    [Q_USER_SET_TOTP] = "UPDATE users SET totp_secret = ?2, totp_confirmed = 0,"
                        " totp_last_step = 0 WHERE id = ?1",
    [Q_USER_TOTP_USED] = "UPDATE users SET totp_last_step = ?2, totp_confirmed = 1"
                         " WHERE id = ?1 AND totp_last_step < ?2",
    [Q_USER_FAILED] = "UPDATE users SET failures = ?2, locked_until = ?3 WHERE id = ?1",
    [Q_PREFS_GET] = "SELECT lang, tz FROM user_prefs WHERE user_id = ?1",
    [Q_PREFS_SET] = "INSERT INTO user_prefs (user_id, lang, tz) VALUES (?1, ?2, ?3)"
                    " ON CONFLICT (user_id) DO UPDATE SET lang = excluded.lang, tz = excluded.tz",
    [Q_USER_LOGIN_OK] = "UPDATE users SET failures = 0, locked_until = 0, last_login = ?2"
                        " WHERE id = ?1",
    [Q_RECOVERY_CLEAR] = "DELETE FROM recovery_codes WHERE user_id = ?1",
    [Q_RECOVERY_ADD] = "INSERT INTO recovery_codes (user_id, hash) VALUES (?1, ?2)",
    [Q_RECOVERY_USE] = "DELETE FROM recovery_codes WHERE user_id = ?1 AND hash = ?2",
    [Q_ROLE_SET] = "INSERT INTO user_roles (user_id, tenant, role) VALUES (?1, ?2, ?3)"
                   " ON CONFLICT (user_id, tenant) DO UPDATE SET role = excluded.role",
    [Q_ROLE_DEL] = "DELETE FROM user_roles WHERE user_id = ?1 AND tenant = ?2",
    [Q_ROLES_GET] = "SELECT tenant, role FROM user_roles WHERE user_id = ?1 ORDER BY tenant",
    [Q_SESSION_ADD] = "INSERT INTO sessions (hash, user_id, csrf, created, last_seen, address)"
                      " VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
    [Q_SESSION_GET] = "SELECT user_id, csrf, created, last_seen FROM sessions WHERE hash = ?1",
    [Q_SESSION_TOUCH] = "UPDATE sessions SET last_seen = ?2 WHERE hash = ?1",
    [Q_SESSION_DEL] = "DELETE FROM sessions WHERE hash = ?1",
    [Q_SESSION_DEL_USER] = "DELETE FROM sessions WHERE user_id = ?1",
    [Q_SESSION_PURGE] = "DELETE FROM sessions WHERE last_seen < ?1 OR created < ?2",
    [Q_TOKEN_ADD] = "INSERT INTO api_tokens (user_id, name, hash, created, expires)"
                    " VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_TOKEN_FIND] = "SELECT id, user_id, name, created, expires, revoked, last_used"
                     " FROM api_tokens WHERE hash = ?1",
    [Q_TOKEN_LIST] = "SELECT id, user_id, name, created, expires, revoked, last_used"
                     " FROM api_tokens WHERE user_id = ?1 ORDER BY id",
    [Q_TOKEN_REVOKE] = "UPDATE api_tokens SET revoked = ?3 WHERE id = ?2 AND user_id = ?1"
                       " AND revoked IS NULL",
    [Q_TOKEN_USED] = "UPDATE api_tokens SET last_used = ?2 WHERE id = ?1",
    [Q_ALLOW_ADD] = "INSERT INTO allowlist (tenant, cidr) VALUES (?1, ?2)"
                    " ON CONFLICT DO NOTHING",
    [Q_ALLOW_DEL] = "DELETE FROM allowlist WHERE tenant = ?1 AND cidr = ?2",
    [Q_ALLOW_LIST] = "SELECT tenant, cidr FROM allowlist ORDER BY tenant, cidr",
    [Q_AUDIT_ADD] = "INSERT INTO audit (time, tenant, actor, action, target, outcome, address,"
                    " detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
#define AUDIT_COLUMNS "id, time, tenant, actor, action, target, outcome, address, detail"
    [Q_AUDIT_LIST] = "SELECT " AUDIT_COLUMNS " FROM audit WHERE id < ?1 ORDER BY id DESC"
                     " LIMIT ?2",
#define APPROVAL_COLUMNS                                                                           \
    "id, run_id, created, title, detail, effects, role, approvers, deadline, default_decision,"    \
    " requester, state, decided"
    [Q_APPROVAL_ADD] = "INSERT INTO approvals (run_id, created, title, detail, effects, role,"
                       " approvers, deadline, default_decision, requester, state)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending')",
    [Q_APPROVAL_FIND] = "SELECT " APPROVAL_COLUMNS " FROM approvals WHERE run_id = ?1"
                        " AND created = ?2",
    [Q_APPROVAL_GET] = "SELECT " APPROVAL_COLUMNS " FROM approvals WHERE id = ?1",
    [Q_APPROVAL_LIST] = "SELECT " APPROVAL_COLUMNS " FROM approvals ORDER BY id DESC LIMIT ?1",
    [Q_APPROVAL_LIST_STATE] = "SELECT " APPROVAL_COLUMNS " FROM approvals WHERE state = ?2"
                              " ORDER BY id DESC LIMIT ?1",
    [Q_APPROVAL_DECIDE] = "UPDATE approvals SET state = ?2, decided = ?3"
                          " WHERE id = ?1 AND state = 'pending'",
    [Q_VOTE_ADD] = "INSERT INTO approval_votes (approval_id, user, decision, comment, at)"
                   " VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_VOTES_GET] = "SELECT user, decision, comment, at FROM approval_votes"
                    " WHERE approval_id = ?1 ORDER BY at, user",
    [Q_AUDIT_LIST_TENANT] = "SELECT " AUDIT_COLUMNS " FROM audit WHERE id < ?1 AND tenant = ?3"
                            " ORDER BY id DESC LIMIT ?2",
    [Q_EVENT_INSERT] = "INSERT INTO events (time, received, source, source_id, user, ip, dst_ip,"
                       " device, severity, outcome, category, title, observables, raw, sid, uk,"
                       " ik, dk, vk) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
                       " ?13, ?14, ?15, ?16, ?17, ?18, ?19) ON CONFLICT (sid) DO NOTHING",
    [Q_EVENT_BY_SID] = "SELECT source, source_id FROM events WHERE sid = ?1",
    /* One statement per leading filter, so that each uses its index (by the value's hash,
     * then the text itself); the other filters are NULL when not asked for. ?1 user,
     * ?2 ip, ?3 device, ?4 source, ?5 since, ?6 until, ?7 limit, ?8 outcome, ?9 the
     * user's hash, ?10 the address's, ?11 the device's. */
    [Q_EVENT_BY_USER] = "SELECT " EVENT_COLUMNS " FROM events WHERE uk = ?9 AND " EVENT_REST
                        " ORDER BY time DESC, id DESC LIMIT ?7",
    [Q_EVENT_BY_IP] =
        "SELECT " EVENT_COLUMNS " FROM events WHERE (ik = ?10 OR dk = ?10) AND " EVENT_REST
        " ORDER BY time DESC, id DESC LIMIT ?7",
    [Q_EVENT_BY_DEVICE] = "SELECT " EVENT_COLUMNS " FROM events WHERE vk = ?11 AND " EVENT_REST
                          " ORDER BY time DESC, id DESC LIMIT ?7",
    /* without a user, address or device: newest stored first (id order, no time index) */
    [Q_EVENT_BY_SOURCE] = "SELECT " EVENT_COLUMNS " FROM events WHERE source = ?4 AND " EVENT_REST
                          " ORDER BY id DESC LIMIT ?7",
    [Q_EVENT_BY_TIME] =
        "SELECT " EVENT_COLUMNS " FROM events WHERE " EVENT_REST " ORDER BY id DESC LIMIT ?7",
    [Q_EVENT_COUNT_BY_USER] =
        "SELECT count(*) FROM (SELECT 1 FROM events WHERE uk = ?9 AND " EVENT_REST " LIMIT ?7)",
    [Q_EVENT_COUNT_BY_IP] = "SELECT count(*) FROM (SELECT 1 FROM events WHERE (ik = ?10 OR"
                            " dk = ?10) AND " EVENT_REST " LIMIT ?7)",
    [Q_EVENT_COUNT_BY_DEVICE] = "SELECT count(*) FROM (SELECT 1 FROM events WHERE vk = ?11"
                                " AND " EVENT_REST " LIMIT ?7)",
    [Q_EVENT_COUNT_BY_SOURCE] = "SELECT count(*) FROM (SELECT 1 FROM events WHERE source = ?4"
                                " AND " EVENT_REST " LIMIT ?7)",
    [Q_EVENT_COUNT_BY_TIME] =
        "SELECT count(*) FROM (SELECT 1 FROM events WHERE " EVENT_REST " LIMIT ?7)",
    [Q_EVENT_OLDEST] = "SELECT id, received FROM events ORDER BY id LIMIT ?1",
    [Q_EVENT_FIRST] = "SELECT received FROM events ORDER BY id LIMIT 1",
    [Q_EVENT_PRUNE] = "DELETE FROM events WHERE id <= ?1",
    [Q_EVENT_TOTAL] = "SELECT count(*) FROM events",
    [Q_LIST_PUT] =
        "INSERT INTO list_entries (list, value, expires, updated) VALUES (?1, ?2, ?3, ?4)"
        " ON CONFLICT (list, value) DO UPDATE SET expires = excluded.expires,"
        " updated = excluded.updated",
    [Q_LIST_DEL] = "DELETE FROM list_entries WHERE list = ?1 AND (value = ?2 OR"
                   " (expires != 0 AND expires <= ?3))",
    [Q_LIST_GET] = "SELECT value FROM list_entries WHERE list = ?1 AND (expires = 0 OR"
                   " expires > ?2) ORDER BY value",
    [Q_ALERT_UPDATE] = "UPDATE alerts SET title = ?2, category = ?3, vendor_severity = ?4,"
                       " severity = ?5, outcome = ?6, observables = ?7, raw = ?8 WHERE id = ?1",
    [Q_ALERT_UPDATE_LOG] = "INSERT INTO alert_updates (alert_id, at, significant, changes,"
                           " previous) VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_ALERT_UPDATES] = "SELECT at, significant, changes FROM alert_updates WHERE alert_id = ?1"
                        " ORDER BY id",
    [Q_CURSOR_GET] = "SELECT cursor FROM poll_cursors WHERE stream = ?1",
    [Q_CURSOR_PUT] = "INSERT INTO poll_cursors (stream, cursor, updated) VALUES (?1, ?2, ?3)"
                     " ON CONFLICT (stream) DO UPDATE SET cursor = excluded.cursor,"
                     " updated = excluded.updated",
    [Q_CURSOR_LIST] = "SELECT stream, cursor, updated FROM poll_cursors ORDER BY stream",
#define DEPLOY_COLUMNS "id, name, version, deployed, deployed_by, via"
    [Q_DEPLOY_LATEST] = "SELECT " DEPLOY_COLUMNS " FROM playbook_deploys WHERE name = ?1"
                        " ORDER BY id DESC LIMIT 1",
    [Q_DEPLOY_ADD] = "INSERT INTO playbook_deploys (name, version, deployed, deployed_by, via)"
                     " VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_DEPLOY_SET_BY] = "UPDATE playbook_deploys SET deployed_by = ?2, via = ?3"
                        " WHERE id = ?1 AND deployed_by IS NULL",
    [Q_DEPLOY_LIST] = "SELECT " DEPLOY_COLUMNS " FROM playbook_deploys WHERE name = ?1"
                      " ORDER BY id DESC LIMIT ?2",
    [Q_DEPLOY_LIST_LATEST] = "SELECT " DEPLOY_COLUMNS " FROM playbook_deploys AS d"
                             " WHERE id = (SELECT max(id) FROM playbook_deploys"
                             " WHERE name = d.name) ORDER BY name LIMIT ?1",
    [Q_SWITCH_GET] = "SELECT dry_run, changed, changed_by FROM playbook_switches WHERE name = ?1",
    [Q_SWITCH_SET] = "INSERT INTO playbook_switches (name, dry_run, changed, changed_by)"
                     " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET"
                     " dry_run = excluded.dry_run, changed = excluded.changed,"
                     " changed_by = excluded.changed_by",
    [Q_SWITCH_CLEAR] = "DELETE FROM playbook_switches WHERE name = ?1",
    [Q_RUN_SET_DRY] = "UPDATE runs SET dry_run = ?2 WHERE id = ?1",
    [Q_RUN_COUNT_PLAYBOOK] = "SELECT coalesce(sum(n), 0) FROM run_counts WHERE playbook = ?1"
                             " AND hour >= (?2 / 3600000) * 3600000",
    [Q_RUN_COUNT_VERSION] = "SELECT coalesce(sum(n), 0) FROM run_counts WHERE playbook = ?1"
                            " AND version = ?2",
    [Q_RUN_BY_VERSION] = "SELECT " RUN_COLUMNS " FROM runs WHERE playbook_hash = ?1"
                         " AND id < ?2 ORDER BY id DESC LIMIT ?3",
    [Q_MARK_PUT] = "INSERT INTO source_marks (source, key, value, updated) VALUES (?1, ?2, ?3, ?4)"
                   " ON CONFLICT (source, key) DO UPDATE SET value = excluded.value,"
                   " updated = excluded.updated",
    [Q_MARK_GET] = "SELECT value FROM source_marks WHERE source = ?1 AND key = ?2",
    [Q_MARK_PRUNE] = "DELETE FROM source_marks WHERE source = ?1 AND updated < ?2",
    /* the portal's settings and dashboard */
    [Q_ALERT_IDS_OBS] =
        "SELECT a.id FROM alert_observables AS o JOIN alerts AS a ON a.id = o.alert_id"
        " WHERE o.vhash = ?1 AND o.alert_id < ?2 AND (?3 IS NULL OR a.source = ?3)"
        " AND (?4 < 0 OR a.severity = ?4) AND (?5 IS NULL OR a.outcome = ?5)"
        " AND (?6 IS NULL OR a.time >= ?6) AND (?7 IS NULL OR a.time < ?7)"
        " AND EXISTS (SELECT 1 FROM json_each(a.observables) AS j"
        "   WHERE json_extract(j.value, '$.type') = ?8"
        "   AND json_extract(j.value, '$.value') = ?9)"
        " ORDER BY o.received DESC, o.alert_id DESC LIMIT ?10",
    [Q_LIST_LIVE] = "SELECT list, value, expires, updated FROM list_entries"
                    " WHERE instr(list, ':') = 0 AND (expires = 0 OR expires > ?1)"
                    " ORDER BY updated DESC LIMIT ?2",
    [Q_PWCHANGE_SET] = "INSERT OR REPLACE INTO password_change (user_id, created) VALUES (?1, ?2)",
    [Q_PWCHANGE_GET] = "SELECT 1 FROM password_change WHERE user_id = ?1",
    [Q_PWCHANGE_DONE] = "DELETE FROM password_change WHERE user_id = ?1",
    [Q_SETTING_GET] = "SELECT value, updated, updated_by FROM tenant_settings WHERE key = ?1",
    [Q_SETTING_PUT] = "INSERT INTO tenant_settings (key, value, updated, updated_by)"
                      " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key) DO UPDATE SET"
                      " value = excluded.value, updated = excluded.updated,"
                      " updated_by = excluded.updated_by",
    [Q_SETTING_DEL] = "DELETE FROM tenant_settings WHERE key = ?1",
    [Q_JOURNAL_BY_KIND] = "SELECT run_id, kind, request, result, ended, started FROM journal"
                          " WHERE kind = ?1 AND status = 1 ORDER BY ended DESC LIMIT ?2",
    [Q_JOURNAL_RUN_PREFIX] = "SELECT run_id, kind, request, result, ended, started FROM journal"
                             " WHERE run_id = ?1 AND substr(kind, 1, length(?2)) = ?2"
                             " ORDER BY seq",
};

/* The run states, in the order store_run_counts reports them. */
static const char *const run_states[6] = {
    "queued", "running", "waiting", "done", "failed", "cancelled",
};

/* One open database: the connection and its statement cache. */
struct db {
    sqlite3 *h;
    char *path;
    sqlite3_stmt *stmt[Q_COUNT];
};

struct store {
    char *data_dir;
    struct db db;
    int lock_fd; /* -1 unless store_lock took the data folder */
};

/* The background checkpointer of one tenant database (see store_tenant_checkpointer). */
struct checkpointer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    char *path;
    char id[64]; /* the tenant, for its log lines */
    int interval_ms;
    size_t wal_warn;
    /* Written by the thread, read by the loop (store_tenant_wal): no lock to wait on. */
    _Atomic int64_t frames_behind;
    _Atomic int64_t complete_ms;
    /* Our own TRUNCATE holds the write lock for a moment: the loop then waits for it
     * (STORE_OWN_LOCK_MS) instead of taking the tenant for locked by another process. */
    _Atomic int truncating;
    _Atomic int64_t truncated_us; /* util_mono_us when the last TRUNCATE ended */
    _Atomic int64_t wrote_us;     /* util_mono_us of the loop's last commit */
    /* The WAL beginning over (wal_restart): HANDOFF_OFFERED when a pass completed on a WAL
     * past restart_bytes, the thread waiting (cv) while the loop finishes it
     * (HANDOFF_TAKEN) or until STORE_HANDOFF_MS passed. */
    _Atomic int handoff;
    size_t restart_bytes;
    int page;      /* the database's page size (4 KiB until the loop has read it) */
    int handed_at; /* the WAL's frames at the last offer: not offered twice (-1: none) */
    int kicked;    /* the loop saw the WAL reach half its restart size (under mu) */
};

enum { HANDOFF_NONE, HANDOFF_OFFERED, HANDOFF_TAKEN };

struct store_tenant {
    char id[64];
    struct db db;
    struct buf obs;            /* reused for each alert's observables JSON */
    struct checkpointer *ckpt; /* NULL: SQLite checkpoints on commit */
    int busy_ms;               /* the connection's busy timeout */
    /* The open transaction began without a sync at its commit (store_tx_begin_unsynced),
     * and a writer that needs one joined it since (need_sync): the commit then syncs the
     * WAL file itself, through wal_fd (opened at the first need, or -1). */
    int unsynced, need_sync, wal_fd;
    unsigned long long commits_unsynced, wal_syncs;
    /* Commits to sync, numbered on the loop (commit_seq, published as committed); synced:
     * the highest number a finished sync covers. One sync covers every commit made before
     * it began (the WAL is written in commit order), so queued syncs coalesce. */
    uint64_t commit_seq;
    _Atomic uint64_t committed, synced;
    unsigned long long wal_restarts, restart_us; /* the loop's restarting checkpoints */
    int wal_frames; /* the WAL's frames after the last commit (wal_hook) */
    int kicked;     /* the checkpointer was woken for this WAL's size */
};

/* ---- connection helpers ---- */

/* Set *errp to "<operation>: <sqlite's message>" and return -1. The message is taken
 * before anything else touches the connection. */
static int db_fail(struct db *d, char **errp, const char *fmt, ...) KG_PRINTF(3, 4);

static int
db_fail(struct db *d, char **errp, const char *fmt, ...)
{
    const char *msg = sqlite3_errmsg(d->h);
    char *op;
    va_list ap;

    va_start(ap, fmt);
    op = xvasprintf(fmt, ap);
    va_end(ap);
    kg_err(errp, "%s: %s", op, msg);
    free(op);
    return -1;
}

/* Return the cached statement for q, preparing it on first use. NULL and *errp set when
 * it does not prepare (a bug in the SQL above, or a database too broken to read). */
static sqlite3_stmt *
db_stmt(struct db *d, enum query q, char **errp)
{
    if (d->stmt[q] == NULL) {
        if (sqlite3_prepare_v3(d->h, query_sql[q], -1, SQLITE_PREPARE_PERSISTENT, &d->stmt[q],
                               NULL) != SQLITE_OK) {
            db_fail(d, errp, "prepare \"%.40s\"", query_sql[q]);
            d->stmt[q] = NULL;
            return NULL;
        }
    }
    return d->stmt[q];
}

/* Make a cached statement ready for its next use. */
static void
stmt_done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* Bind a string that may be NULL. The text must outlive the step (we reset right after). */
static int
bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v == NULL) {
        return sqlite3_bind_null(s, i);
    }
    return sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

/* Bind a time or id where 0 means "none": stored as NULL, read back as 0. */
static int
bind_opt_int64(sqlite3_stmt *s, int i, int64_t v)
{
    if (v <= 0) {
        return sqlite3_bind_null(s, i);
    }
    return sqlite3_bind_int64(s, i, v);
}

/* A malloc'd copy of a text column, or NULL when the column is NULL. */
static char *
col_strdup(sqlite3_stmt *s, int i)
{
    const unsigned char *p = sqlite3_column_text(s, i);

    if (p == NULL) {
        return NULL;
    }
    return xstrndup((const char *)p, (size_t)sqlite3_column_bytes(s, i));
}

/* Step a statement that returns no rows, then reset it. 0, or -1 with "<op>: <msg>". */
static int
stmt_run(struct db *d, sqlite3_stmt *s, const char *op, char **errp)
{
    int rc = sqlite3_step(s);

    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        db_fail(d, errp, "%s", op);
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    return 0;
}

/* A filtered query is assembled from fixed fragments (never from the values, which are
 * bound), prepared for this one call and finalized: the CLI runs it once. */
struct query_build {
    struct buf sql;
    int nbind;
    struct {
        int is_text;
        const char *text;
        int64_t num;
    } bind[12];
};

static void
qb_cond_text(struct query_build *q, const char *cond, const char *v)
{
    (void)!buf_printf(&q->sql, " AND %s ?%d", cond, q->nbind + 1);
    q->bind[q->nbind].is_text = 1;
    q->bind[q->nbind++].text = v;
}

static void
qb_cond_num(struct query_build *q, const char *cond, int64_t v)
{
    (void)!buf_printf(&q->sql, " AND %s ?%d", cond, q->nbind + 1);
    q->bind[q->nbind].is_text = 0;
    q->bind[q->nbind++].num = v;
}

/* Prepare q's text and bind its values. NULL with *errp on failure. */
static sqlite3_stmt *
qb_prepare(struct db *d, struct query_build *q, const char *op, char **errp)
{
    sqlite3_stmt *s = NULL;

    if (sqlite3_prepare_v2(d->h, q->sql.data, (int)q->sql.len, &s, NULL) != SQLITE_OK) {
        db_fail(d, errp, "%s", op);
        return NULL;
    }
    for (int i = 0; i < q->nbind; i++) {
        int rc = q->bind[i].is_text ? bind_text(s, i + 1, q->bind[i].text)
                                    : sqlite3_bind_int64(s, i + 1, q->bind[i].num);

        if (rc != SQLITE_OK) {
            db_fail(d, errp, "%s", op);
            sqlite3_finalize(s);
            return NULL;
        }
    }
    return s;
}

/* Run one SQL text that is not worth caching (pragmas at open, migration scripts). */
static int
db_exec(struct db *d, const char *sql, const char *op, char **errp)
{
    if (sqlite3_exec(d->h, sql, NULL, NULL, NULL) != SQLITE_OK) {
        return db_fail(d, errp, "%s: %s", d->path, op);
    }
    return 0;
}

static int
db_user_version(struct db *d, int *v, char **errp)
{
    sqlite3_stmt *s = NULL;
    int rc;

    if (sqlite3_prepare_v2(d->h, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK) {
        return db_fail(d, errp, "%s: read user_version", d->path);
    }
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        db_fail(d, errp, "%s: read user_version", d->path);
        sqlite3_finalize(s);
        return -1;
    }
    *v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return 0;
}

/* Bring the schema up to date: apply the scripts in mig[] from user_version on, each in
 * its own IMMEDIATE transaction together with the new user_version, so a crash leaves
 * the database at a whole version. The version is re-read inside the transaction in case
 * another process migrated it meanwhile. A database newer than this build is refused. */
static int
db_migrate(struct db *d, const char *const *mig, int n, char **errp)
{
    for (;;) {
        int v;
        char *sql;

        if (db_user_version(d, &v, errp) == -1) {
            return -1;
        }
        if (v > n) {
            return kg_err(errp, "%s: database schema %d is newer than this kagari (%d)", d->path, v,
                          n);
        }
        if (v == n) {
            return 0;
        }
        if (db_exec(d, "BEGIN IMMEDIATE", "migration begin", errp) == -1) {
            return -1;
        }
        if (db_user_version(d, &v, errp) == -1) {
            goto fail;
        }
        if (v >= n) {
            sqlite3_exec(d->h, "ROLLBACK", NULL, NULL, NULL);
            continue; /* someone else did it; the top of the loop re-checks */
        }
        sql = xasprintf("%s\nPRAGMA user_version = %d;", mig[v], v + 1);
        if (sqlite3_exec(d->h, sql, NULL, NULL, NULL) != SQLITE_OK) {
            db_fail(d, errp, "%s: migration to schema %d", d->path, v + 1);
            free(sql);
            goto fail;
        }
        free(sql);
        if (db_exec(d, "COMMIT", "migration commit", errp) == -1) {
            goto fail;
        }
        log_info("store.migrated db=%s schema=%d", log_quote(d->path), v + 1);
    }
fail:
    if (!sqlite3_get_autocommit(d->h)) {
        sqlite3_exec(d->h, "ROLLBACK", NULL, NULL, NULL);
    }
    return -1;
}

/* Finalize every cached statement and close. Safe on a zeroed or half-opened db. */
static void
db_close(struct db *d)
{
    for (int i = 0; i < Q_COUNT; i++) {
        sqlite3_finalize(d->stmt[i]);
        d->stmt[i] = NULL;
    }
    if (d->h != NULL && sqlite3_close(d->h) != SQLITE_OK) {
        log_err("store.close_failed db=%s err=%s", log_quote(d->path),
                log_quote(sqlite3_errmsg(d->h)));
    }
    d->h = NULL;
    free(d->path);
    d->path = NULL;
}

/* The key of an observable value in alert_observables: 64-bit FNV-1a of its bytes. */
static int64_t
obs_vhash(const char *v, size_t n)
{
    uint64_t h = 14695981039346656037ULL;

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)v[i];
        h *= 1099511628211ULL;
    }
    return (int64_t)h;
}

/* Continue an FNV-1a hash over n bytes, ASCII letters folded to lower case when fold
 * (the NOCASE comparison of the user and device columns). */
static uint64_t
fnv_more(uint64_t h, const char *v, size_t n, int fold)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];

        if (fold && c >= 'A' && c <= 'Z') {
            c = (unsigned char)(c + 32);
        }
        h ^= c;
        h *= 1099511628211ULL;
    }
    return h;
}

#define FNV_START 14695981039346656037ULL

/* An event's lookup key of a value (NULL: none); fold for the NOCASE columns. */
static int
event_key_bind(sqlite3_stmt *s, int i, const char *v, int fold)
{
    if (v == NULL) {
        return sqlite3_bind_null(s, i);
    }
    return sqlite3_bind_int64(s, i, (int64_t)fnv_more(FNV_START, v, strlen(v), fold));
}

/* kg_ihash(text) for SQL: kg_vhash of the text with ASCII letters folded. */
static void
sql_ihash(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const char *v = (const char *)sqlite3_value_text(argv[0]);

    (void)argc;
    if (v == NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    sqlite3_result_int64(ctx,
                         (int64_t)fnv_more(FNV_START, v, (size_t)sqlite3_value_bytes(argv[0]), 1));
}

/* kg_vhash(text) for SQL (the migration that indexes alerts already stored). */
static void
sql_vhash(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const char *v = (const char *)sqlite3_value_text(argv[0]);

    (void)argc;
    if (v == NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    sqlite3_result_int64(ctx, obs_vhash(v, (size_t)sqlite3_value_bytes(argv[0])));
}

/* Open (creating) the database at path and migrate it with mig[0..n-1]. The file is
 * created 0600 by us before SQLite sees it: SQLite gives its -wal and -shm files the
 * mode of the main file. Symlinks are refused. On failure d is closed again. */
static int
db_open(struct db *d, const char *path, const char *const *mig, int n, char **errp)
{
    sqlite3_stmt *s = NULL;
    const char *mode;
    int fd, rc;

    memset(d, 0, sizeof(*d));
    d->path = xstrdup(path);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd == -1) {
        kg_err(errp, "open %s: %s", path, strerror(errno));
        goto fail;
    }
    close(fd);
    {
        static int configured;

        /* No memory statistics: they cost a global mutex on each of the allocations
         * SQLite makes for every statement, and nothing reads them. Only allowed before
         * the library's first use (a later call is refused and changes nothing). */
        if (!configured) {
            configured = 1;
            (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
        }
    }
    rc = sqlite3_open_v2(path, &d->h,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
    if (rc != SQLITE_OK) {
        kg_err(errp, "open %s: %s", path, d->h ? sqlite3_errmsg(d->h) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(d->h, STORE_BUSY_MS);
    /* Rows are large here (an alert keeps its raw record, ~3 KB for a sign-in; a stored
     * event ~1.2 KB): 16 KiB pages hold a dozen where 4 KiB pages held three, so an insert
     * splits and rebalances pages a quarter as often. Only a new, empty file takes it: an
     * existing database keeps the page size it was made with (in WAL mode only an offline
     * VACUUM out of WAL mode changes it; the operator guide says how). */
    if (db_exec(d, "PRAGMA page_size = " STORE_PAGE_SIZE, "set page_size", errp) == -1) {
        goto fail;
    }

    /* journal_mode answers with the mode in force: anything but "wal" means the file
     * system or the file refused it. */
    if (sqlite3_prepare_v2(d->h, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW) {
        db_fail(d, errp, "%s: set journal_mode", path);
        sqlite3_finalize(s);
        goto fail;
    }
    mode = (const char *)sqlite3_column_text(s, 0);
    if (mode == NULL || strcmp(mode, "wal") != 0) {
        kg_err(errp, "%s: cannot use WAL mode (journal_mode is %s)", path, mode ? mode : "?");
        sqlite3_finalize(s);
        goto fail;
    }
    sqlite3_finalize(s);
    if (db_exec(d, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;", "set pragmas", errp) ==
        -1) {
        goto fail;
    }
    if (sqlite3_create_function_v2(d->h, "kg_vhash", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                   sql_vhash, NULL, NULL, NULL) != SQLITE_OK) {
        db_fail(d, errp, "%s: register kg_vhash", path);
        goto fail;
    }
    if (sqlite3_create_function_v2(d->h, "kg_ihash", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                   sql_ihash, NULL, NULL, NULL) != SQLITE_OK) {
        db_fail(d, errp, "%s: register kg_ihash", path);
        goto fail;
    }
    if (db_migrate(d, mig, n, errp) == -1) {
        goto fail;
    }
    return 0;
fail:
    db_close(d);
    return -1;
}

static int
db_in_tx(const struct db *d)
{
    return d->h != NULL && !sqlite3_get_autocommit(d->h);
}

/* ---- control database ---- */

/* Tenant ids name files, so they are held to [a-z0-9][a-z0-9-]{0,62}. */
static int
tenant_id_valid(const char *id)
{
    size_t n;

    if (id == NULL || !((id[0] >= 'a' && id[0] <= 'z') || (id[0] >= '0' && id[0] <= '9'))) {
        return 0;
    }
    for (n = 1; id[n] != '\0'; n++) {
        char c = id[n];

        if (n > 62 || !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
            return 0;
        }
    }
    return 1;
}

/* Create data_dir and data_dir/tenants (0700) if needed and open control.db. On success
 * *out belongs to the caller (store_close). */
int
store_open(const char *data_dir, struct store **out, char **errp)
{
    struct store *st;
    char *path;

    *out = NULL;
    path = xasprintf("%s/tenants", data_dir);
    if (util_mkdirs(data_dir, 0700) == -1 || util_mkdirs(path, 0700) == -1) {
        kg_err(errp, "create %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    free(path);
    st = xcalloc(1, sizeof(*st));
    st->data_dir = xstrdup(data_dir);
    st->lock_fd = -1;
    path = xasprintf("%s/control.db", data_dir);
    if (db_open(&st->db, path, control_migrations, NELEM(control_migrations), errp) == -1) {
        free(path);
        free(st->data_dir);
        free(st);
        return -1;
    }
    free(path);
    *out = st;
    return 0;
}

/* One daemon per data folder: two would both resume the same runs and repeat their
 * side effects. An advisory lock on <data>/serve.lock, held while the process lives
 * (the kernel drops it on any exit, kill -9 included), with the holder's pid inside. */
int
store_lock(struct store *st, char **errp)
{
    char *path = xasprintf("%s/serve.lock", st->data_dir);
    char pid[32];
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    int n;

    if (fd == -1) {
        kg_err(errp, "open %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
        char other[32] = "";
        ssize_t r = pread(fd, other, sizeof(other) - 1, 0);

        other[r > 0 ? r : 0] = '\0';
        other[strcspn(other, "\n")] = '\0';
        kg_err(errp, "%s is in use by another kagari serve (pid %s)", st->data_dir,
               other[0] ? other : "?");
        close(fd);
        free(path);
        return -1;
    }
    n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == -1 || pwrite(fd, pid, (size_t)n, 0) != n) {
        log_warn("store.lock_pid path=%s error=%s", log_quote(path), log_quote(strerror(errno)));
    }
    free(path);
    st->lock_fd = fd;
    return 0;
}

int
store_lock_probe(const char *data_dir, long *pid)
{
    char *path = xasprintf("%s/serve.lock", data_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int held;

    *pid = 0;
    free(path);
    if (fd == -1) {
        return errno == ENOENT ? 0 : -1;
    }
    /* A shared lock is refused only while the daemon holds its exclusive one; we let go
     * at once, so a daemon starting meanwhile is held back for a moment at most. */
    held = flock(fd, LOCK_SH | LOCK_NB) == -1;
    if (!held) {
        flock(fd, LOCK_UN);
    } else {
        char text[32] = "";
        ssize_t r = pread(fd, text, sizeof(text) - 1, 0);

        text[r > 0 ? r : 0] = '\0';
        *pid = strtol(text, NULL, 10);
    }
    close(fd);
    return held;
}

void
store_close(struct store *st)
{
    if (st == NULL) {
        return;
    }
    db_close(&st->db);
    if (st->lock_fd != -1) {
        close(st->lock_fd); /* releases the flock */
    }
    free(st->data_dir);
    free(st);
}

const char *
store_data_dir(const struct store *st)
{
    return st->data_dir;
}

/* Add a tenant. The name defaults to the id and must fit struct store_tenant_info;
 * token_hash may be NULL (no intake token yet). A second tenant with the same id or
 * the same token hash is refused. */
int
store_tenant_add(struct store *st, const char *id, const char *name, const char *token_hash,
                 char **errp)
{
    sqlite3_stmt *s;
    int rc;

    if (!tenant_id_valid(id)) {
        return kg_err(errp, "invalid tenant id \"%s\" (want [a-z0-9][a-z0-9-]{0,62})",
                      id ? id : "(null)");
    }
    if (name == NULL) {
        name = id;
    }
    if (strlen(name) >= sizeof(((struct store_tenant_info *)0)->name)) {
        return kg_err(errp, "tenant %s: name too long", id);
    }
    if ((s = db_stmt(&st->db, Q_TENANT_ADD, errp)) == NULL) {
        return -1;
    }
    if ((bind_text(s, 1, id) | bind_text(s, 2, name) | bind_text(s, 3, token_hash) |
         sqlite3_bind_int64(s, 4, util_now_ms())) != SQLITE_OK) {
        db_fail(&st->db, errp, "tenant add %s", id);
        stmt_done(s);
        return -1;
    }
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
        int ext = sqlite3_extended_errcode(st->db.h);

        if (ext == SQLITE_CONSTRAINT_PRIMARYKEY) {
            kg_err(errp, "tenant %s exists", id);
        } else if (ext == SQLITE_CONSTRAINT_UNIQUE) {
            kg_err(errp, "tenant add %s: token already used by another tenant", id);
        } else {
            db_fail(&st->db, errp, "tenant add %s", id);
        }
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    return 0;
}

/* Replace a tenant's intake token hash (token rotation); NULL removes it. */
int
store_tenant_set_token(struct store *st, const char *id, const char *token_hash, char **errp)
{
    sqlite3_stmt *s;
    int rc;

    if ((s = db_stmt(&st->db, Q_TENANT_SET_TOKEN, errp)) == NULL) {
        return -1;
    }
    if ((bind_text(s, 1, id) | bind_text(s, 2, token_hash)) != SQLITE_OK) {
        db_fail(&st->db, errp, "tenant set token %s", id);
        stmt_done(s);
        return -1;
    }
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
        if (sqlite3_extended_errcode(st->db.h) == SQLITE_CONSTRAINT_UNIQUE) {
            kg_err(errp, "tenant set token %s: token already used by another tenant", id);
        } else {
            db_fail(&st->db, errp, "tenant set token %s", id);
        }
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    if (sqlite3_changes(st->db.h) == 0) {
        return kg_err(errp, "unknown tenant %s", id);
    }
    return 0;
}

/* Find the tenant whose token hash this is. Errors are logged (the caller, intake,
 * answers 500 without detail). */
int
store_tenant_find_token(struct store *st, const char *token_hash, char *id_out, size_t n)
{
    sqlite3_stmt *s;
    char *err = NULL;
    int rc, found = 0;

    if (token_hash == NULL || n == 0) {
        return 0;
    }
    if ((s = db_stmt(&st->db, Q_TENANT_FIND_TOKEN, &err)) == NULL) {
        log_err("store.error op=tenant_find_token err=%s", log_quote(err));
        free(err);
        return -1;
    }
    bind_text(s, 1, token_hash);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(s, 0);

        if (id == NULL || strlen(id) >= n) {
            log_err("store.error op=tenant_find_token err=\"tenant id does not fit\"");
            found = -1;
        } else {
            memcpy(id_out, id, strlen(id) + 1);
            found = 1;
        }
    } else if (rc != SQLITE_DONE) {
        log_err("store.error op=tenant_find_token err=%s", log_quote(sqlite3_errmsg(st->db.h)));
        found = -1;
    }
    stmt_done(s);
    return found;
}

/* All tenants, ordered by id, in a malloc'd array (freed with free()). */
int
store_tenant_list(struct store *st, struct store_tenant_info **out, size_t *n, char **errp)
{
    struct store_tenant_info *v = NULL;
    size_t len = 0, cap = 0;
    sqlite3_stmt *s;
    int rc;

    *out = NULL;
    *n = 0;
    if ((s = db_stmt(&st->db, Q_TENANT_LIST, errp)) == NULL) {
        return -1;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(s, 0);
        const char *name = (const char *)sqlite3_column_text(s, 1);

        if (len == cap) {
            cap = cap ? cap * 2 : 8;
            v = xrealloc(v, cap * sizeof(*v));
        }
        memset(&v[len], 0, sizeof(v[len]));
        snprintf(v[len].id, sizeof(v[len].id), "%s", id ? id : "");
        snprintf(v[len].name, sizeof(v[len].name), "%s", name ? name : "");
        v[len].created_ms = sqlite3_column_int64(s, 2);
        len++;
    }
    if (rc != SQLITE_DONE) {
        db_fail(&st->db, errp, "tenant list");
        stmt_done(s);
        free(v);
        return -1;
    }
    stmt_done(s);
    *out = v;
    *n = len;
    return 0;
}

/* ---- tenant databases ---- */

/* Open <data>/tenants/<id>.db for a tenant registered in control.db. */
int
store_tenant_open(struct store *st, const char *id, struct store_tenant **out, char **errp)
{
    struct store_tenant *t;
    sqlite3_stmt *s;
    char *path;
    int rc;

    *out = NULL;
    if (!tenant_id_valid(id)) {
        return kg_err(errp, "invalid tenant id \"%s\"", id ? id : "(null)");
    }
    if ((s = db_stmt(&st->db, Q_TENANT_EXISTS, errp)) == NULL) {
        return -1;
    }
    bind_text(s, 1, id);
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        db_fail(&st->db, errp, "tenant open %s", id);
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    if (rc == SQLITE_DONE) {
        return kg_err(errp, "unknown tenant %s", id);
    }
    t = xcalloc(1, sizeof(*t));
    snprintf(t->id, sizeof(t->id), "%s", id);
    buf_init(&t->obs, STORE_OBS_MAX);
    path = xasprintf("%s/tenants/%s.db", st->data_dir, id);
    if (db_open(&t->db, path, tenant_migrations, NELEM(tenant_migrations), errp) == -1) {
        free(path);
        free(t);
        return -1;
    }
    free(path);
    t->busy_ms = STORE_BUSY_MS;
    t->wal_fd = -1;
    *out = t;
    return 0;
}

/* One integer of a pragma (page_size, page_count) on t's connection; -1 on error. */
static int64_t
pragma_int(struct db *d, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int64_t v = -1;

    if (sqlite3_prepare_v2(d->h, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
        v = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    return v;
}

int
store_tenant_compact(struct store_tenant *t, struct store_compact *out, char **errp)
{
    int64_t pages;

    memset(out, 0, sizeof(*out));
    out->page_before = (int)pragma_int(&t->db, "PRAGMA page_size");
    pages = pragma_int(&t->db, "PRAGMA page_count");
    out->bytes_before = pages * out->page_before;
    /* Out of WAL mode (which fixes the page size), rebuilt with the new pages, back. A
     * failure on the way leaves the database whole: VACUUM is one transaction, and the
     * next open puts it back in WAL mode. */
    if (db_exec(&t->db, "PRAGMA journal_mode = DELETE", "compact: leave WAL mode", errp) == -1 ||
        db_exec(&t->db, "PRAGMA page_size = " STORE_PAGE_SIZE, "compact: page size", errp) == -1 ||
        db_exec(&t->db, "VACUUM", "compact: VACUUM", errp) == -1) {
        (void)db_exec(&t->db, "PRAGMA journal_mode = WAL", "compact: WAL mode", NULL);
        return -1;
    }
    if (db_exec(&t->db, "PRAGMA journal_mode = WAL", "compact: back to WAL mode", errp) == -1) {
        return -1;
    }
    out->page_after = (int)pragma_int(&t->db, "PRAGMA page_size");
    out->bytes_after = pragma_int(&t->db, "PRAGMA page_count") * out->page_after;
    return 0;
}

void
store_tenant_busy_ms(struct store_tenant *t, int busy_ms)
{
    t->busy_ms = busy_ms;
    sqlite3_busy_timeout(t->db.h, busy_ms);
}

static uint64_t
file_size(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

void
store_tenant_wal(struct store_tenant *t, struct store_wal *out)
{
    char *wal = xasprintf("%s-wal", t->db.path);

    out->bytes = file_size(wal);
    free(wal);
    out->frames_behind = t->ckpt != NULL ? atomic_load(&t->ckpt->frames_behind) : 0;
    out->complete_ms = t->ckpt != NULL ? atomic_load(&t->ckpt->complete_ms) : 0;
    out->restarts = t->wal_restarts;
    out->restart_us = t->restart_us;
}

/* One pass of the checkpointer: a PASSIVE checkpoint (copies what no reader still
 * needs; never waits, never blocks the writer), then, when the WAL file is over the
 * threshold, a warning and, if that checkpoint was complete, a TRUNCATE with no busy
 * wait: it fails at once while a reader or the writer is active, and otherwise has
 * next to nothing left to copy, so the writer's lock is taken only for a moment.
 * Returns 1 while the WAL stays over the threshold.
 *
 * While a writer keeps adding to a WAL past half its restart size, *follow is set: the
 * next pass comes soon, so that little is left each time. A complete pass on a WAL past
 * its restart size is offered to the loop to finish (wal_restart). */
static int
checkpoint_pass(struct checkpointer *c, sqlite3 *h, const char *wal, int64_t *logged_ms,
                int *follow)
{
    int nlog = -1, nckpt = -1, rc, busy;
    uint64_t size, bytes;
    int64_t now;

    *follow = 0;

    rc = sqlite3_wal_checkpoint_v2(h, NULL, SQLITE_CHECKPOINT_PASSIVE, &nlog, &nckpt);
    log_debug("store.checkpoint tenant=%s rc=%d log=%d done=%d", c->id, rc, nlog, nckpt);
    if (rc != SQLITE_OK) {
        if (sqlite3_errcode(h) != SQLITE_BUSY) {
            log_warn("store.checkpoint_failed tenant=%s error=%s", c->id, sqlite3_errmsg(h));
        }
        return 0;
    }
    now = util_now_ms();
    atomic_store(&c->frames_behind, (int64_t)(nlog - nckpt));
    if (nlog == nckpt) {
        atomic_store(&c->complete_ms, now);
    }
    bytes = (uint64_t)nlog * (uint64_t)c->page;
    busy = util_mono_us() - atomic_load(&c->wrote_us) < STORE_TRUNCATE_IDLE_US;
    *follow = busy && bytes >= c->restart_bytes / 2;
    /* Not the same WAL twice: after the loop's pass its next commit begins the WAL over
     * (or, if a reader came in between, adds to it: then it is offered again). */
    if (busy && nlog == nckpt && bytes >= c->restart_bytes && nlog != c->handed_at) {
        c->handed_at = nlog;
        atomic_store(&c->handoff, HANDOFF_OFFERED);
    }
    size = file_size(wal);
    if (size <= c->wal_warn) {
        return 0;
    }
    if (*logged_ms == 0 || now - *logged_ms >= STORE_WAL_LOG_MS) {
        log_warn("store.wal_large tenant=%s bytes=%llu threshold=%zu frames_behind=%d "
                 "hint=\"a reader holds an old snapshot: the WAL is truncated once it lets go\"",
                 c->id, (unsigned long long)size, c->wal_warn, nlog - nckpt);
        *logged_ms = now;
    }
    if (nlog != nckpt) {
        return 1;
    }
    if (util_mono_us() - atomic_load(&c->wrote_us) < STORE_TRUNCATE_IDLE_US) {
        /* The tenant is busy writing: truncating now would hold its writer back. The WAL
         * is reused from its start after each complete checkpoint anyway; it is cut once
         * the writes pause. */
        return 1;
    }
    sqlite3_busy_timeout(h, 0);
    atomic_store(&c->truncating, 1);
    rc = sqlite3_wal_checkpoint_v2(h, NULL, SQLITE_CHECKPOINT_TRUNCATE, &nlog, &nckpt);
    atomic_store(&c->truncated_us, util_mono_us());
    atomic_store(&c->truncating, 0);
    if (rc != SQLITE_OK) {
        return 1; /* a reader or the writer is active: next time */
    }
    atomic_store(&c->frames_behind, 0);
    atomic_store(&c->complete_ms, util_now_ms());
    log_info("store.wal_truncated tenant=%s bytes=%llu", c->id, (unsigned long long)size);
    *logged_ms = 0;
    return file_size(wal) > c->wal_warn;
}

/* Wait on c's condition (its mutex held) for at most ms, by the monotonic clock. */
static void
ckpt_wait(struct checkpointer *c, int ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += (long)ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    if (!c->stop) {
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
}

/* The checkpointer thread: its own connection, a PASSIVE checkpoint every interval.
 * PASSIVE never waits for the writer and the writer never waits for it. */
static void *
checkpointer_main(void *arg)
{
    struct checkpointer *c = arg;
    sqlite3 *h = NULL;
    char *wal = xasprintf("%s-wal", c->path);
    int64_t logged_ms = 0;
    int large = 0, follow = 0;

    if (sqlite3_open_v2(c->path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        log_err("store.checkpointer_failed tenant=%s error=%s", c->id,
                h ? sqlite3_errmsg(h) : "open");
        sqlite3_close(h);
        free(wal);
        return NULL;
    }
    /* Until it has read the file, a connection does not know the database is in WAL
     * mode, and a checkpoint on it does nothing. */
    sqlite3_busy_timeout(h, 100);
    (void)sqlite3_exec(h, "PRAGMA journal_mode", NULL, NULL, NULL);
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        int ms = large && c->interval_ms > STORE_WAL_LARGE_POLL_MS ? STORE_WAL_LARGE_POLL_MS
                                                                   : c->interval_ms;

        if (follow && ms > STORE_CKPT_FOLLOW_MS) {
            ms = STORE_CKPT_FOLLOW_MS;
        }
        if (!c->kicked) {
            ckpt_wait(c, ms);
        }
        c->kicked = 0;
        /* A pass offered to the loop: no pass of ours until it is done with it (or let it
         * go: the loop wrote nothing since). */
        if (atomic_load(&c->handoff) != HANDOFF_NONE) {
            int offered = HANDOFF_OFFERED;

            ckpt_wait(c, STORE_HANDOFF_MS);
            while (!c->stop &&
                   !atomic_compare_exchange_strong(&c->handoff, &offered, HANDOFF_NONE) &&
                   offered == HANDOFF_TAKEN) {
                ckpt_wait(c, STORE_HANDOFF_MS);
                offered = HANDOFF_OFFERED;
            }
        }
        if (c->stop) {
            break;
        }
        /* The mutex only guards stop: it is never held while touching the database. */
        pthread_mutex_unlock(&c->mu);
        large = checkpoint_pass(c, h, wal, &logged_ms, &follow);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    sqlite3_close(h);
    free(wal);
    return NULL;
}

/* After each commit on the daemon's connection: the WAL's size in frames. */
static int
wal_hook(void *arg, sqlite3 *h, const char *name, int frames)
{
    struct store_tenant *t = arg;

    (void)h;
    (void)name;
    t->wal_frames = frames;
    return SQLITE_OK;
}

/* SQLite begins the WAL over at its start only when a write transaction begins after a
 * checkpoint that copied every frame. Under a steady stream of commits the checkpointer's
 * passes never finish before the next commit, so the WAL grew by every commit
 * (gigabytes under load) and each commit appended to the file: new pages and blocks for
 * the kernel to find, where writing over the start of the file reuses them (measured:
 * 3.5 ms to append 2.5 MB, 0.3 ms to write it over). So the checkpointer offers a pass
 * that completed on a WAL past its restart size, and waits; the loop, between two
 * transactions, copies what was committed since (a PASSIVE checkpoint on its own
 * connection, synced as SQLite syncs every checkpoint), and its next transaction begins
 * the WAL over. Called after each commit, on the loop. */
static void
wal_restart(struct store_tenant *t)
{
    struct checkpointer *c = t->ckpt;
    int offered = HANDOFF_OFFERED, nlog = -1, nckpt = -1;
    int64_t t0;
    uint64_t bytes;

    if (c == NULL) {
        return;
    }
    bytes = (uint64_t)t->wal_frames * (uint64_t)c->page;
    /* Past half its restart size, the checkpointer follows the writer (wakes it once). */
    if (!t->kicked && bytes >= c->restart_bytes / 2) {
        t->kicked = 1;
        pthread_mutex_lock(&c->mu);
        c->kicked = 1;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
    } else if (bytes < c->restart_bytes / 2) {
        t->kicked = 0;
    }
    if (atomic_load(&c->handoff) != HANDOFF_OFFERED ||
        !atomic_compare_exchange_strong(&c->handoff, &offered, HANDOFF_TAKEN)) {
        return;
    }
    t0 = util_mono_us();
    if (sqlite3_wal_checkpoint_v2(t->db.h, NULL, SQLITE_CHECKPOINT_PASSIVE, &nlog, &nckpt) ==
            SQLITE_OK &&
        nlog == nckpt) {
        t->wal_restarts++;
    }
    t->restart_us += (unsigned long long)(util_mono_us() - t0);
    pthread_mutex_lock(&c->mu);
    atomic_store(&c->handoff, HANDOFF_NONE);
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

int
store_tenant_checkpointer(struct store_tenant *t, int interval_ms, size_t wal_warn, char **errp)
{
    struct checkpointer *c;

    if (t->ckpt != NULL) {
        return 0;
    }
    c = xcalloc(1, sizeof(*c));
    c->path = xstrdup(t->db.path);
    snprintf(c->id, sizeof(c->id), "%s", t->id);
    c->interval_ms = interval_ms > 0 ? interval_ms : 200;
    c->wal_warn = wal_warn > 0 ? wal_warn : STORE_WAL_WARN;
    c->restart_bytes = c->wal_warn / 2;
    c->page = (int)pragma_int(&t->db, "PRAGMA page_size");
    if (c->page <= 0) {
        c->page = 4096;
    }
    c->handed_at = -1;
    atomic_init(&c->frames_behind, 0);
    atomic_init(&c->complete_ms, 0);
    atomic_init(&c->handoff, HANDOFF_NONE);
    pthread_mutex_init(&c->mu, NULL);
    {
        pthread_condattr_t ca;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&c->cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (pthread_create(&c->thread, NULL, checkpointer_main, c) != 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        free(c->path);
        free(c);
        return kg_err(errp, "%s: cannot start the checkpointer thread", t->db.path);
    }
    /* The writer no longer checkpoints on commit (the hook replaces SQLite's automatic
     * checkpoints); keep the WAL file bounded. */
    sqlite3_wal_hook(t->db.h, wal_hook, t);
    {
        /* The WAL is kept at its restart size (and what comes in while it is restarted)
         * rather than cut back after each: writing over it is what saves the time. */
        char *sql = xasprintf("PRAGMA journal_size_limit = %zu", c->wal_warn);

        (void)db_exec(&t->db, sql, "journal_size_limit", NULL);
        free(sql);
    }
    /* The daemon's writer keeps the indexes it inserts into in memory (256 MiB, taken as
     * used): a batch of events touches pages all over them. */
    (void)db_exec(&t->db, "PRAGMA cache_size = -262144", "cache_size", NULL);
    /* An insert whose triggers or constraints may have to undo it alone (the alerts'
     * counts, the dedup keys) keeps a statement journal of the pages it changes: in
     * memory, not in a temporary file written at every insert. */
    (void)db_exec(&t->db, "PRAGMA temp_store = MEMORY", "temp_store", NULL);
    t->ckpt = c;
    return 0;
}

static void
checkpointer_stop(struct store_tenant *t)
{
    struct checkpointer *c = t->ckpt;

    if (c == NULL) {
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->path);
    free(c);
    t->ckpt = NULL;
}

void
store_tenant_close(struct store_tenant *t)
{
    if (t == NULL) {
        return;
    }
    checkpointer_stop(t);
    store_tx_rollback(t);
    db_close(&t->db);
    if (t->wal_fd >= 0) {
        close(t->wal_fd);
    }
    buf_free(&t->obs);
    free(t);
}

const char *
store_tenant_id(const struct store_tenant *t)
{
    return t->id;
}

/* ---- transactions ---- */

/* Another connection holds a lock we would have to wait for (SQLITE_BUSY, or
 * SQLITE_LOCKED for a shared-cache peer): the operation can be tried again later. */
static int
db_busy(const struct db *d)
{
    int rc = sqlite3_errcode(d->h);

    return rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
}

/* BEGIN IMMEDIATE takes the write lock now, so a busy database shows here (after the
 * busy timeout, KG_AGAIN) rather than halfway through a batch. No-op inside a
 * transaction. */
int
store_tx_begin(struct store_tenant *t, char **errp)
{
    sqlite3_stmt *s;

    if (db_in_tx(&t->db)) {
        t->need_sync |= t->unsynced; /* this writer's rows must be durable at the commit */
        return 0;
    }
    if ((s = db_stmt(&t->db, Q_BEGIN, errp)) == NULL) {
        return -1;
    }
    if (stmt_run(&t->db, s, "begin transaction", errp) == -1) {
        if (!db_busy(&t->db)) {
            return -1;
        }
        if (t->ckpt == NULL || !(atomic_load(&t->ckpt->truncating) ||
                                 util_mono_us() - atomic_load(&t->ckpt->truncated_us) < 100000)) {
            return KG_AGAIN; /* another process holds the lock */
        }
        /* Our own checkpointer is truncating the WAL: wait for it, briefly. */
        if (errp != NULL) {
            free(*errp);
            *errp = NULL;
        }
        sqlite3_busy_timeout(t->db.h, STORE_OWN_LOCK_MS);
        if ((s = db_stmt(&t->db, Q_BEGIN, errp)) == NULL) {
            sqlite3_busy_timeout(t->db.h, t->busy_ms);
            return -1;
        }
        if (stmt_run(&t->db, s, "begin transaction", errp) == -1) {
            sqlite3_busy_timeout(t->db.h, t->busy_ms);
            return db_busy(&t->db) ? KG_AGAIN : -1;
        }
        sqlite3_busy_timeout(t->db.h, t->busy_ms);
    }
    return 0;
}

/* synchronous = FULL or NORMAL on t's connection (never inside a transaction). */
static int
tx_sync_mode(struct store_tenant *t, int full, char **errp)
{
    return db_exec(&t->db, full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
                   "set synchronous", errp);
}

int
store_tx_begin_unsynced(struct store_tenant *t, char **errp)
{
    int rc;

    if (db_in_tx(&t->db)) {
        return 0; /* joins the open transaction, synced or not */
    }
    if (tx_sync_mode(t, 0, errp) == -1) {
        return -1;
    }
    if ((rc = store_tx_begin(t, errp)) != 0) {
        (void)tx_sync_mode(t, 1, NULL);
        return rc;
    }
    t->unsynced = 1;
    t->need_sync = 0;
    return 0;
}

/* Open t's WAL file for syncing it ourselves, once (on the loop). */
static int
wal_fd_open(struct store_tenant *t, char **errp)
{
    char *wal;

    if (t->wal_fd >= 0) {
        return 0;
    }
    wal = xasprintf("%s-wal", t->db.path);
    t->wal_fd = open(wal, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (t->wal_fd < 0) {
        kg_err(errp, "%s: open to sync: %s", wal, strerror(errno));
    }
    free(wal);
    return t->wal_fd < 0 ? -1 : 0;
}

int
store_wal_sync(struct store_tenant *t, uint64_t seq, char **errp)
{
    uint64_t upto, had;

    if (atomic_load(&t->synced) >= seq) {
        return 0; /* a sync that began after this commit has finished */
    }
    upto = atomic_load(&t->committed); /* every commit up to here is in the file */
    if (fdatasync(t->wal_fd) == -1) {
        return kg_err(errp, "%s-wal: sync: %s", t->db.path, strerror(errno));
    }
    had = atomic_load(&t->synced);
    while (had < upto && !atomic_compare_exchange_weak(&t->synced, &had, upto)) {
    }
    return 0;
}

/* The end of an unsynced transaction: the connection back to synchronous = FULL, and
 * when a writer needing durability joined it and it was committed (ok), its WAL frames
 * synced now, as synchronous = FULL would have, or (defer) left to the caller through
 * *sync. -1 when that could not be done. */
static int
tx_unsynced_end(struct store_tenant *t, int ok, uint64_t *sync, char **errp)
{
    int need = t->need_sync;

    t->unsynced = t->need_sync = 0;
    (void)tx_sync_mode(t, 1, NULL);
    if (!ok) {
        return 0;
    }
    if (!need) {
        t->commits_unsynced++;
        return 0;
    }
    if (wal_fd_open(t, errp) == -1) {
        return -1;
    }
    t->wal_syncs++;
    atomic_store(&t->committed, ++t->commit_seq);
    if (sync != NULL) {
        *sync = t->commit_seq;
        return 0;
    }
    return store_wal_sync(t, t->commit_seq, errp);
}

void
store_tx_mark_sync(struct store_tenant *t)
{
    t->need_sync |= t->unsynced;
}

void
store_tx_sync_counts(const struct store_tenant *t, unsigned long long *unsynced,
                     unsigned long long *synced_after)
{
    *unsynced = t->commits_unsynced;
    *synced_after = t->wal_syncs;
}

int
store_tx_probe(struct store_tenant *t)
{
    char *err = NULL;
    int rc;

    if (db_in_tx(&t->db)) {
        return 1;
    }
    sqlite3_busy_timeout(t->db.h, 0);
    rc = store_tx_begin(t, &err);
    sqlite3_busy_timeout(t->db.h, t->busy_ms);
    free(err);
    if (rc != 0) {
        return 0;
    }
    store_tx_rollback(t);
    return 1;
}

/* Commit; durable on return (synchronous=FULL), but for a transaction begun unsynced
 * that no other writer joined. A commit that fails is rolled back if
 * SQLite left the transaction open, so after -1 (or KG_AGAIN: locked) nothing of it is
 * written either way. No-op without a transaction. */
static int
tx_commit(struct store_tenant *t, uint64_t *sync, char **errp)
{
    sqlite3_stmt *s;
    int busy;

    if (!db_in_tx(&t->db)) {
        return 0;
    }
    if ((s = db_stmt(&t->db, Q_COMMIT, errp)) == NULL) {
        store_tx_rollback(t);
        return -1;
    }
    if (stmt_run(&t->db, s, "commit", errp) == -1) {
        busy = db_busy(&t->db);
        store_tx_rollback(t);
        return busy ? KG_AGAIN : -1;
    }
    if (t->ckpt != NULL) {
        atomic_store(&t->ckpt->wrote_us, util_mono_us());
    }
    if (t->unsynced && tx_unsynced_end(t, 1, sync, errp) == -1) {
        return -1;
    }
    wal_restart(t);
    return 0;
}

int
store_tx_commit(struct store_tenant *t, char **errp)
{
    return tx_commit(t, NULL, errp);
}

int
store_tx_commit_deferred(struct store_tenant *t, uint64_t *sync, char **errp)
{
    *sync = 0;
    return tx_commit(t, sync, errp);
}

void
store_tx_rollback(struct store_tenant *t)
{
    sqlite3_stmt *s;
    char *err = NULL;

    if (!db_in_tx(&t->db)) {
        return;
    }
    if ((s = db_stmt(&t->db, Q_ROLLBACK, &err)) == NULL ||
        stmt_run(&t->db, s, "rollback", &err) == -1) {
        log_err("store.error tenant=%s err=%s", t->id, log_quote(err));
        free(err);
    }
    if (t->unsynced) {
        (void)tx_unsynced_end(t, 0, NULL, NULL);
    }
}

int
store_in_tx(const struct store_tenant *t)
{
    return db_in_tx(&t->db);
}

/* ---- alerts ---- */

/* What an event's row is made of besides the alert's own fields: the picked values (in
 * the alert's observables), their lookup keys, the dedup key and the observables as JSON.
 * Pure computation on the alert: store_event_prepare makes it on any thread, so a busy
 * source does this work off the loop (engine/syslog.c's parser thread). An alert's insert
 * takes its observables from it too. */
struct event_prep {
    const char *user, *ip, *dst, *device;
    int64_t uk, ik, dk, vk;
    uint64_t sid;
    size_t obs_len;
    char obs[]; /* NUL-terminated */
};

/* Append the alert's observables to b as [{"type":..,"value":..,"role":..|null},...]. */
static int
obs_to_json(const struct alert *a, struct buf *b)
{
    if (buf_append(b, "[", 1) == -1) {
        return -1;
    }
    for (size_t i = 0; i < a->nobs; i++) {
        const struct observable *o = &a->obs[i];
        const char *type = o->type ? o->type : "";
        const char *value = o->value ? o->value : "";

        if ((i > 0 && buf_append(b, ",", 1) == -1) || buf_puts(b, "{\"type\":") == -1 ||
            buf_json_string(b, type, strlen(type)) == -1 || buf_puts(b, ",\"value\":") == -1 ||
            buf_json_string(b, value, strlen(value)) == -1 || buf_puts(b, ",\"role\":") == -1) {
            return -1;
        }
        if (o->role == NULL ? buf_puts(b, "null") == -1
                            : buf_json_string(b, o->role, strlen(o->role)) == -1) {
            return -1;
        }
        if (buf_append(b, "}", 1) == -1) {
            return -1;
        }
    }
    return buf_append(b, "]", 1);
}

/* Parse the stored observables array into a->obs. Entries without a string type and
 * value are skipped (we wrote them, so this only guards against edited databases). */
static int
obs_from_json(const char *text, size_t len, struct alert *a)
{
    cJSON *root = cJSON_ParseWithLength(text, len);
    const cJSON *item;

    if (root == NULL || !cJSON_IsArray(root)) {
        cJSON_Delete(root);
        return -1;
    }
    cJSON_ArrayForEach(item, root)
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(item, "type");
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(item, "value");
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(item, "role");

        if (!cJSON_IsString(type) || !cJSON_IsString(value)) {
            continue;
        }
        alert_add_observable(a, type->valuestring, value->valuestring,
                             cJSON_IsString(role) ? role->valuestring : NULL);
    }
    cJSON_Delete(root);
    return 0;
}

/* a's observables as JSON for its row: from its prepared row, else made into t->obs. */
static int
row_obs(struct store_tenant *t, const struct alert *a, const char *what, const char **obs,
        size_t *len, char **errp)
{
    const struct event_prep *p = a->prep;

    if (p != NULL) {
        *obs = p->obs;
        *len = p->obs_len;
        return 0;
    }
    buf_reset(&t->obs);
    if (obs_to_json(a, &t->obs) == -1) {
        return kg_err(errp, "%s insert %s/%s: observables over %u bytes", what, a->source,
                      a->source_id, STORE_OBS_MAX);
    }
    *obs = t->obs.data;
    *len = t->obs.len;
    return 0;
}

/* Index a new alert's observable values (alerts.recent), in the same transaction. */
static int
obs_index(struct store_tenant *t, const struct alert *a, char **errp)
{
    sqlite3_stmt *s;

    if (a->nobs == 0) {
        return 0;
    }
    if ((s = db_stmt(&t->db, Q_ALERT_OBS_INSERT, errp)) == NULL) {
        return -1;
    }
    for (size_t i = 0; i < a->nobs; i++) {
        if (a->obs[i].value == NULL) {
            continue;
        }
        sqlite3_bind_int64(s, 1, obs_vhash(a->obs[i].value, strlen(a->obs[i].value)));
        sqlite3_bind_int64(s, 2, a->received_ms);
        sqlite3_bind_int64(s, 3, a->id);
        if (sqlite3_step(s) != SQLITE_DONE) {
            db_fail(&t->db, errp, "alert insert %s/%s: observable index", a->source, a->source_id);
            stmt_done(s);
            return -1;
        }
        sqlite3_reset(s);
    }
    stmt_done(s);
    return 0;
}

/* Insert within the open transaction. ON CONFLICT DO NOTHING makes a duplicate cost one
 * index probe; only then do we look the existing id up. NULL outcome is stored as
 * "unknown". */
int
store_alert_insert(struct store_tenant *t, struct alert *a, int *duplicate, char **errp)
{
    sqlite3_stmt *s;
    const char *obs;
    size_t obs_len;
    int rc;

    *duplicate = 0;
    if (!db_in_tx(&t->db)) {
        return kg_err(errp, "alert insert: no open transaction");
    }
    if (a->source == NULL || a->source_id == NULL) {
        return kg_err(errp, "alert insert: source and source_id are required");
    }
    if (row_obs(t, a, "alert", &obs, &obs_len, errp) == -1) {
        return -1;
    }
    if ((s = db_stmt(&t->db, Q_ALERT_INSERT, errp)) == NULL) {
        return -1;
    }
    if ((bind_text(s, 1, a->source) | bind_text(s, 2, a->source_id) |
         sqlite3_bind_int64(s, 3, a->time_ms) | sqlite3_bind_int64(s, 4, a->received_ms) |
         bind_text(s, 5, a->title) | bind_text(s, 6, a->category) |
         bind_text(s, 7, a->vendor_severity) | sqlite3_bind_int(s, 8, a->severity) |
         bind_text(s, 9, a->outcome ? a->outcome : "unknown") |
         sqlite3_bind_text(s, 10, obs, (int)obs_len, SQLITE_STATIC) | bind_text(s, 11, a->raw) |
         bind_text(s, 12, alert_class_name(a->cls))) != SQLITE_OK) {
        db_fail(&t->db, errp, "alert insert %s/%s", a->source, a->source_id);
        stmt_done(s);
        return -1;
    }
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
        db_fail(&t->db, errp, "alert insert %s/%s", a->source, a->source_id);
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    if (sqlite3_changes(t->db.h) == 1) {
        a->id = sqlite3_last_insert_rowid(t->db.h);
        return obs_index(t, a, errp);
    }

    if ((s = db_stmt(&t->db, Q_ALERT_FIND, errp)) == NULL) {
        return -1;
    }
    bind_text(s, 1, a->source);
    bind_text(s, 2, a->source_id);
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE) {
            kg_err(errp, "alert insert %s/%s: conflict but no existing row", a->source,
                   a->source_id);
        } else {
            db_fail(&t->db, errp, "alert lookup %s/%s", a->source, a->source_id);
        }
        stmt_done(s);
        return -1;
    }
    a->id = sqlite3_column_int64(s, 0);
    *duplicate = 1;
    stmt_done(s);
    return 0;
}

/* Fill a from a row of the columns of Q_ALERT_GET (raw as column 11, may be NULL; class 12). */
static int
alert_from_row(sqlite3_stmt *s, struct alert *out)
{
    const char *obs;

    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(s, 0);
    out->source = col_strdup(s, 1);
    out->source_id = col_strdup(s, 2);
    out->time_ms = sqlite3_column_int64(s, 3);
    out->received_ms = sqlite3_column_int64(s, 4);
    out->title = col_strdup(s, 5);
    out->category = col_strdup(s, 6);
    out->vendor_severity = col_strdup(s, 7);
    out->severity = sqlite3_column_int(s, 8);
    out->outcome = col_strdup(s, 9);
    out->raw = col_strdup(s, 11);
    {
        const char *cls = (const char *)sqlite3_column_text(s, 12);

        out->cls =
            alert_class_from_name(cls) == ALERT_CLASS_EVENT ? ALERT_CLASS_EVENT : ALERT_CLASS_ALERT;
    }
    obs = (const char *)sqlite3_column_text(s, 10);
    if (obs != NULL && obs_from_json(obs, (size_t)sqlite3_column_bytes(s, 10), out) == -1) {
        alert_free(out);
        return -1;
    }
    return 0;
}

void
store_alerts_free(struct alert *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        alert_free(&v[i]);
    }
    free(v);
}

int
store_alert_query(struct store_tenant *t, const struct store_alert_where *f, struct alert **out,
                  size_t *n, char **errp)
{
    struct query_build q;
    struct alert *v = NULL;
    size_t len = 0, cap = 0;
    sqlite3_stmt *s;
    int rc;

    *out = NULL;
    *n = 0;
    memset(&q, 0, sizeof(q));
    buf_init(&q.sql, 0);
    (void)!buf_puts(&q.sql, "SELECT id, source, source_id, time, received, title, category,"
                            " vendor_severity, severity, outcome, observables, NULL, class"
                            " FROM alerts WHERE 1");
    if (f->source != NULL) {
        qb_cond_text(&q, "source =", f->source);
    }
    if (f->severity_min >= 0) {
        qb_cond_num(&q, "severity >=", f->severity_min);
    }
    if (f->severity >= 0) {
        qb_cond_num(&q, "severity =", f->severity);
    }
    if (f->outcome != NULL) {
        qb_cond_text(&q, "outcome =", f->outcome);
    }
    if (f->since_ms > 0) {
        qb_cond_num(&q, "received >=", f->since_ms);
    }
    if (f->until_ms > 0) {
        qb_cond_num(&q, "received <", f->until_ms);
    }
    if (f->cls >= 0) {
        qb_cond_text(&q, "class =", alert_class_name(f->cls));
    }
    if (f->observable != NULL) {
        /* The index of observable values finds the candidates; the exact value is then
         * checked in the alert itself (a hash collision costs one row, never a match). */
        qb_cond_num(&q, "id IN (SELECT alert_id FROM alert_observables WHERE vhash =",
                    (int64_t)obs_vhash(f->observable, strlen(f->observable)));
        (void)!buf_puts(&q.sql, ")");
        qb_cond_text(&q,
                     "EXISTS (SELECT 1 FROM json_each(alerts.observables) o"
                     " WHERE json_extract(o.value, '$.value') =",
                     f->observable);
        (void)!buf_puts(&q.sql, ")");
    }
    (void)!buf_printf(&q.sql, " ORDER BY id DESC LIMIT %d",
                      f->limit > 0 ? f->limit : STORE_RUN_LIST_DEFAULT);
    s = qb_prepare(&t->db, &q, "alert query", errp);
    buf_free(&q.sql);
    if (s == NULL) {
        return -1;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? cap * 2 : 16;
            v = xrealloc(v, cap * sizeof(*v));
        }
        if (alert_from_row(s, &v[len]) == -1) {
            rc = SQLITE_CORRUPT;
            break;
        }
        len++;
    }
    if (rc != SQLITE_DONE) {
        if (rc == SQLITE_CORRUPT) {
            kg_err(errp, "alert query: stored observables are not a JSON array");
        } else {
            db_fail(&t->db, errp, "alert query");
        }
        sqlite3_finalize(s);
        store_alerts_free(v, len);
        return -1;
    }
    sqlite3_finalize(s);
    *out = v;
    *n = len;
    return 0;
}

/* Rebuild an alert from its row. *out is zeroed first and, on 1, owns its strings. */
int
store_alert_get(struct store_tenant *t, int64_t id, struct alert *out, char **errp)
{
    sqlite3_stmt *s;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((s = db_stmt(&t->db, Q_ALERT_GET, errp)) == NULL) {
        return -1;
    }
    sqlite3_bind_int64(s, 1, id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        stmt_done(s);
        return 0;
    }
    if (rc != SQLITE_ROW) {
        db_fail(&t->db, errp, "alert get %lld", (long long)id);
        stmt_done(s);
        return -1;
    }
    rc = alert_from_row(s, out);
    stmt_done(s);
    if (rc == -1) {
        return kg_err(errp, "alert get %lld: stored observables are not a JSON array",
                      (long long)id);
    }
    return 1;
}

int
store_alert_update(struct store_tenant *t, struct alert *a, int64_t now_ms, int *updated,
                   int *significant, char **errp)
{
    struct alert old;
    sqlite3_stmt *s;
    char *changes = NULL;
    int rc = -1;

    *updated = *significant = 0;
    if (!db_in_tx(&t->db)) {
        return kg_err(errp, "alert update: no open transaction");
    }
    rc = store_alert_get(t, a->id, &old, errp);
    if (rc != 1) {
        return rc == 0 ? kg_err(errp, "alert update %lld: not stored", (long long)a->id) : -1;
    }
    rc = -1;
    if (old.raw != NULL && a->raw != NULL && strcmp(old.raw, a->raw) == 0) {
        rc = 0; /* the same record again: nothing changed */
        goto out;
    }
    buf_reset(&t->obs);
    if (obs_to_json(a, &t->obs) == -1) {
        kg_err(errp, "alert update %s/%s: observables over %u bytes", a->source, a->source_id,
               STORE_OBS_MAX);
        goto out;
    }
    changes = alert_diff(&old, a);
    *significant = old.cls == ALERT_CLASS_ALERT && alert_update_significant(&old, a);
    if ((s = db_stmt(&t->db, Q_ALERT_UPDATE, errp)) == NULL) {
        goto out;
    }
    if ((sqlite3_bind_int64(s, 1, a->id) | bind_text(s, 2, a->title) |
         bind_text(s, 3, a->category) | bind_text(s, 4, a->vendor_severity) |
         sqlite3_bind_int(s, 5, a->severity) |
         bind_text(s, 6, a->outcome ? a->outcome : "unknown") |
         sqlite3_bind_text(s, 7, t->obs.data, (int)t->obs.len, SQLITE_STATIC) |
         bind_text(s, 8, a->raw)) != SQLITE_OK) {
        db_fail(&t->db, errp, "alert update %s/%s", a->source, a->source_id);
        stmt_done(s);
        goto out;
    }
    if (stmt_run(&t->db, s, "alert update", errp) == -1) {
        goto out;
    }
    if ((s = db_stmt(&t->db, Q_ALERT_UPDATE_LOG, errp)) == NULL) {
        goto out;
    }
    if ((sqlite3_bind_int64(s, 1, a->id) | sqlite3_bind_int64(s, 2, now_ms) |
         sqlite3_bind_int(s, 3, *significant) | bind_text(s, 4, changes) |
         bind_text(s, 5, old.raw)) != SQLITE_OK) {
        db_fail(&t->db, errp, "alert update %s/%s: history", a->source, a->source_id);
        stmt_done(s);
        goto out;
    }
    if (stmt_run(&t->db, s, "alert update history", errp) == -1) {
        goto out;
    }
    /* The stored alert keeps its times and class; its new observables are indexed under
     * its received time, like the others. */
    a->time_ms = old.time_ms;
    a->received_ms = old.received_ms;
    a->cls = old.cls;
    if (obs_index(t, a, errp) == -1) {
        goto out;
    }
    *updated = 1;
    rc = 0;
out:
    if (rc == -1) {
        *significant = 0;
    }
    free(changes);
    alert_free(&old);
    return rc;
}

int
store_alert_updates(struct store_tenant *t, int64_t id, struct buf *out, char **errp)
{
    sqlite3_stmt *s;
    int rc, first = 1;

    if ((s = db_stmt(&t->db, Q_ALERT_UPDATES, errp)) == NULL) {
        return -1;
    }
    sqlite3_bind_int64(s, 1, id);
    if (buf_puts(out, "[") == -1) {
        stmt_done(s);
        return kg_err(errp, "alert %lld: updates too large", (long long)id);
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        char at[32];
        const char *ch = (const char *)sqlite3_column_text(s, 2);

        util_fmt_time(sqlite3_column_int64(s, 0), at);
        if (buf_printf(out, "%s{\"at\":\"%s\",\"significant\":%s,\"changes\":%s}", first ? "" : ",",
                       at, sqlite3_column_int(s, 1) ? "true" : "false",
                       ch != NULL ? ch : "{}") == -1) {
            stmt_done(s);
            return kg_err(errp, "alert %lld: updates too large", (long long)id);
        }
        first = 0;
    }
    stmt_done(s);
    if (rc != SQLITE_DONE) {
        return db_fail(&t->db, errp, "alert updates %lld", (long long)id);
    }
    if (buf_puts(out, "]") == -1) {
        return kg_err(errp, "alert %lld: updates too large", (long long)id);
    }
    return 0;
}

int
store_cursor_get(struct store_tenant *t, const char *stream, char **value, char **errp)
{
    sqlite3_stmt *s;
    int rc;

    *value = NULL;
    if ((s = db_stmt(&t->db, Q_CURSOR_GET, errp)) == NULL) {
        return -1;
    }
    bind_text(s, 1, stream);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *value = col_strdup(s, 0);
    }
    stmt_done(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        return db_fail(&t->db, errp, "cursor get %s", stream);
    }
    return 0;
}

int
store_cursor_put(struct store_tenant *t, const char *stream, const char *value, char **errp)
{
    sqlite3_stmt *s;

    if (!db_in_tx(&t->db)) {
        return kg_err(errp, "cursor put: no open transaction");
    }
    if ((s = db_stmt(&t->db, Q_CURSOR_PUT, errp)) == NULL) {
        return -1;
    }
    if ((bind_text(s, 1, stream) | bind_text(s, 2, value) |
         sqlite3_bind_int64(s, 3, util_now_ms())) != SQLITE_OK) {
        db_fail(&t->db, errp, "cursor put %s", stream);
        stmt_done(s);
        return -1;
    }
    return stmt_run(&t->db, s, "cursor put", errp);
}

int
store_cursor_list(struct store_tenant *t, struct store_cursor **out, size_t *n, char **errp)
{
    sqlite3_stmt *s;
    struct store_cursor *v = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    *n = 0;
    if ((s = db_stmt(&t->db, Q_CURSOR_LIST, errp)) == NULL) {
        return -1;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        v = xrealloc(v, (len + 1) * sizeof(*v));
        v[len].stream = col_strdup(s, 0);
        v[len].cursor = col_strdup(s, 1);
        v[len].updated_ms = sqlite3_column_int64(s, 2);
        len++;
    }
    stmt_done(s);
    if (rc != SQLITE_DONE) {
        store_cursors_free(v, len);
        return db_fail(&t->db, errp, "cursor list");
    }
    *out = v;
    *n = len;
    return 0;
}

void
store_cursors_free(struct store_cursor *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].stream);
        free(v[i].cursor);
    }
    free(v);
}

int64_t
store_alert_count(struct store_tenant *t)
{
    sqlite3_stmt *s;
    char *err = NULL;
    int64_t n = -1;

    if ((s = db_stmt(&t->db, Q_ALERT_COUNT, &err)) == NULL) {
        log_err("store.error tenant=%s err=%s", t->id, log_quote(err));
        free(err);
        return -1;
    }
    if (sqlite3_step(s) == SQLITE_ROW) {
        n = sqlite3_column_int64(s, 0);
    } else {
        log_err("store.error tenant=%s op=alert_count err=%s", t->id,
                log_quote(sqlite3_errmsg(t->db.h)));
    }
    stmt_done(s);
    return n;
}

/* ---- events ---- */

/* The first observable of type (or of type2 when not NULL) with role "src", else the
 * first of that type; with want_role, only one with that role. */
static const char *
event_pick(const struct alert *e, const char *type, const char *type2, const char *want_role)
{
    const char *first = NULL;

    for (size_t i = 0; i < e->nobs; i++) {
        const struct observable *o = &e->obs[i];

        if (strcmp(o->type, type) != 0 && (type2 == NULL || strcmp(o->type, type2) != 0)) {
            continue;
        }
        if (want_role != NULL) {
            if (o->role != NULL && strcmp(o->role, want_role) == 0) {
                return o->value;
            }
            continue;
        }
        if (o->role != NULL && strcmp(o->role, "src") == 0) {
            return o->value;
        }
        if (first == NULL) {
            first = o->value;
        }
    }
    return first;
}

/* The record at sid: 1 when it is (source, source_id), 0 when it is another one (two
 * records with one hash) or there is none, -1 on error. */
static int
event_sid_is(struct store_tenant *t, int64_t sid, const char *source, const char *source_id,
             char **errp)
{
    sqlite3_stmt *s = db_stmt(&t->db, Q_EVENT_BY_SID, errp);
    int rc, same = 0;

    if (s == NULL) {
        return -1;
    }
    sqlite3_bind_int64(s, 1, sid);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *a = (const char *)sqlite3_column_text(s, 0);
        const char *b = (const char *)sqlite3_column_text(s, 1);

        same = a != NULL && b != NULL && strcmp(a, source) == 0 && strcmp(b, source_id) == 0;
    } else if (rc != SQLITE_DONE) {
        db_fail(&t->db, errp, "event insert %s/%s", source, source_id);
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    return same;
}

#define EVENT_SID_PROBES 8 /* sids tried for one record (two records, one hash: rare) */

static int64_t
event_key(const char *v, int fold)
{
    return v != NULL ? (int64_t)fnv_more(FNV_START, v, strlen(v), fold) : 0;
}

/* p's fields but obs from e. */
static void
event_prep_fields(const struct alert *e, struct event_prep *p)
{
    p->ip = event_pick(e, "ip", NULL, "src");
    if (p->ip == NULL) {
        p->ip = event_pick(e, "ip", NULL, NULL);
    }
    p->user = event_pick(e, "user", NULL, NULL);
    p->dst = event_pick(e, "ip", NULL, "dst");
    p->device = event_pick(e, "host", "device", NULL);
    p->uk = event_key(p->user, 1);
    p->ik = event_key(p->ip, 0);
    p->dk = event_key(p->dst, 0);
    p->vk = event_key(p->device, 1);
    p->sid = fnv_more(fnv_more(fnv_more(FNV_START, e->source, strlen(e->source), 0), "\n", 1, 0),
                      e->source_id, strlen(e->source_id), 0);
}

void
store_event_prepare(struct alert *e)
{
    struct buf b;
    struct event_prep *p;

    free(e->prep);
    e->prep = NULL;
    if (e->source == NULL || e->source_id == NULL) {
        return; /* store_event_insert says why */
    }
    buf_init(&b, STORE_OBS_MAX);
    buf_reserve(&b, 64 + 80 * e->nobs); /* one allocation for most */
    if (obs_to_json(e, &b) == 0) {
        p = xmalloc(sizeof(*p) + b.len + 1);
        event_prep_fields(e, p);
        p->obs_len = b.len;
        memcpy(p->obs, b.data, b.len + 1);
        e->prep = p;
    }
    buf_free(&b);
}

/* A key column's value: NULL without a value. */
static int
event_key_put(sqlite3_stmt *s, int i, const char *v, int64_t key)
{
    return v == NULL ? sqlite3_bind_null(s, i) : sqlite3_bind_int64(s, i, key);
}

/* The dedup key sid is a 64-bit hash of (source, source_id). A record whose sid is taken
 * is a duplicate when the row there is the same record; else (another record with the
 * same hash) the next sids are tried, up to EVENT_SID_PROBES of them. */
int
store_event_insert(struct store_tenant *t, const struct alert *e, int *duplicate, char **errp)
{
    sqlite3_stmt *s;
    struct event_prep own;
    const struct event_prep *p = e->prep;
    const char *obs;
    size_t obs_len;
    uint64_t sid;

    *duplicate = 0;
    if (!db_in_tx(&t->db)) {
        return kg_err(errp, "event insert: no open transaction");
    }
    if (e->source == NULL || e->source_id == NULL) {
        return kg_err(errp, "event insert: source and source_id are required");
    }
    if (row_obs(t, e, "event", &obs, &obs_len, errp) == -1) {
        return -1;
    }
    if (p == NULL) {
        event_prep_fields(e, &own);
        p = &own;
    }
    sid = p->sid;
    for (int probe = 0; probe < EVENT_SID_PROBES; probe++, sid++) {
        int same;

        if ((s = db_stmt(&t->db, Q_EVENT_INSERT, errp)) == NULL) {
            return -1;
        }
        if ((sqlite3_bind_int64(s, 1, e->time_ms) | sqlite3_bind_int64(s, 2, e->received_ms) |
             bind_text(s, 3, e->source) | bind_text(s, 4, e->source_id) | bind_text(s, 5, p->user) |
             bind_text(s, 6, p->ip) | bind_text(s, 7, p->dst) | bind_text(s, 8, p->device) |
             sqlite3_bind_int(s, 9, e->severity) |
             bind_text(s, 10, e->outcome ? e->outcome : "unknown") | bind_text(s, 11, e->category) |
             bind_text(s, 12, e->title) |
             sqlite3_bind_text(s, 13, obs, (int)obs_len, SQLITE_STATIC) | bind_text(s, 14, e->raw) |
             sqlite3_bind_int64(s, 15, (int64_t)sid) | event_key_put(s, 16, p->user, p->uk) |
             event_key_put(s, 17, p->ip, p->ik) | event_key_put(s, 18, p->dst, p->dk) |
             event_key_put(s, 19, p->device, p->vk)) != SQLITE_OK) {
            db_fail(&t->db, errp, "event insert %s/%s", e->source, e->source_id);
            stmt_done(s);
            return -1;
        }
        if (sqlite3_step(s) != SQLITE_DONE) {
            db_fail(&t->db, errp, "event insert %s/%s", e->source, e->source_id);
            stmt_done(s);
            return -1;
        }
        stmt_done(s);
        if (sqlite3_changes(t->db.h) == 1) {
            return 0;
        }
        if ((same = event_sid_is(t, (int64_t)sid, e->source, e->source_id, errp)) == -1) {
            return -1;
        }
        if (same) {
            *duplicate = 1;
            return 0;
        }
    }
    return kg_err(errp, "event insert %s/%s: no free dedup key after %d tries", e->source,
                  e->source_id, EVENT_SID_PROBES);
}

/* The statement for f (by its most selective filter), bound. NULL with *errp. */
static sqlite3_stmt *
event_stmt(struct store_tenant *t, const struct store_event_filter *f, int count, char **errp)
{
    enum query q;
    sqlite3_stmt *s;

    if (f->user != NULL) {
        q = count ? Q_EVENT_COUNT_BY_USER : Q_EVENT_BY_USER;
    } else if (f->ip != NULL) {
        q = count ? Q_EVENT_COUNT_BY_IP : Q_EVENT_BY_IP;
    } else if (f->device != NULL) {
        q = count ? Q_EVENT_COUNT_BY_DEVICE : Q_EVENT_BY_DEVICE;
    } else if (f->source != NULL) {
        q = count ? Q_EVENT_COUNT_BY_SOURCE : Q_EVENT_BY_SOURCE;
    } else {
        q = count ? Q_EVENT_COUNT_BY_TIME : Q_EVENT_BY_TIME;
    }
    if ((s = db_stmt(&t->db, q, errp)) == NULL) {
        return NULL;
    }
    bind_text(s, 1, f->user);
    bind_text(s, 2, f->ip);
    bind_text(s, 3, f->device);
    bind_text(s, 4, f->source);
    bind_text(s, 8, f->outcome);
    event_key_bind(s, 9, f->user, 1);
    event_key_bind(s, 10, f->ip, 0);
    event_key_bind(s, 11, f->device, 1);
    sqlite3_bind_int64(s, 5, f->since_ms);
    sqlite3_bind_int64(s, 6, f->until_ms);
    sqlite3_bind_int(s, 7, f->limit > 0 ? f->limit : 1);
    return s;
}

/* Append column i as a JSON string, or null. */
static int
col_json(struct buf *b, sqlite3_stmt *s, int i)
{
    const unsigned char *p = sqlite3_column_text(s, i);

    if (p == NULL) {
        return buf_puts(b, "null");
    }
    return buf_json_string(b, (const char *)p, (size_t)sqlite3_column_bytes(s, i));
}

int
store_event_query(struct store_tenant *t, const struct store_event_filter *f, struct buf *out,
                  size_t *n, char **errp)
{
    static const char *const names[] = { "source", "source_id", "user", "ip", "dst_ip", "device" };
    sqlite3_stmt *s = event_stmt(t, f, 0, errp);
    int rc, bad = 0;

    *n = 0;
    if (s == NULL) {
        return -1;
    }
    bad |= buf_puts(out, "[");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        char tm[32], rt[32];
        const char *raw = (const char *)sqlite3_column_text(s, 14);
        const char *obsj = (const char *)sqlite3_column_text(s, 13);

        util_fmt_time(sqlite3_column_int64(s, 1), tm);
        util_fmt_time(sqlite3_column_int64(s, 2), rt);
        bad |= buf_printf(out, "%s{\"id\":%lld,\"time\":\"%s\",\"received\":\"%s\"",
                          *n > 0 ? "," : "", (long long)sqlite3_column_int64(s, 0), tm, rt);
        for (int i = 0; i < 6; i++) {
            bad |= buf_printf(out, ",\"%s\":", names[i]);
            bad |= col_json(out, s, 3 + i);
        }
        bad |= buf_printf(
            out, ",\"severity\":\"%s\",\"outcome\":", severity_name(sqlite3_column_int(s, 9)));
        bad |= col_json(out, s, 10);
        bad |= buf_puts(out, ",\"category\":");
        bad |= col_json(out, s, 11);
        bad |= buf_puts(out, ",\"title\":");
        bad |= col_json(out, s, 12);
        /* observables and raw are JSON we wrote */
        bad |= buf_printf(out, ",\"observables\":%s,\"raw\":%s}", obsj ? obsj : "[]",
                          raw ? raw : "null");
        (*n)++;
    }
    if (rc != SQLITE_DONE) {
        db_fail(&t->db, errp, "event query");
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    bad |= buf_puts(out, "]");
    if (bad) {
        return kg_err(errp, "event query: the result is too large");
    }
    return 0;
}

int
store_event_count(struct store_tenant *t, const struct store_event_filter *f, int64_t *count,
                  char **errp)
{
    sqlite3_stmt *s = event_stmt(t, f, 1, errp);

    *count = 0;
    if (s == NULL) {
        return -1;
    }
    if (sqlite3_step(s) != SQLITE_ROW) {
        db_fail(&t->db, errp, "event count");
        stmt_done(s);
        return -1;
    }
    *count = sqlite3_column_int64(s, 0);
    stmt_done(s);
    return 0;
}

int
store_event_prune(struct store_tenant *t, int64_t before_ms, int limit, int *deleted, char **errp)
{
    sqlite3_stmt *s;
    int64_t last = 0;
    int n = 0, rc;

    *deleted = 0;
    if (!db_in_tx(&t->db)) {
        return kg_err(errp, "event prune: no open transaction");
    }
    /* The oldest rows by id, up to the first one still within the retention: ids grow
     * with the received time, so this stops at once when nothing is due. */
    if ((s = db_stmt(&t->db, Q_EVENT_OLDEST, errp)) == NULL) {
        return -1;
    }
    sqlite3_bind_int(s, 1, limit);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && sqlite3_column_int64(s, 1) < before_ms) {
        last = sqlite3_column_int64(s, 0);
        n++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        db_fail(&t->db, errp, "event prune");
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    if (n == 0) {
        return 0;
    }
    if ((s = db_stmt(&t->db, Q_EVENT_PRUNE, errp)) == NULL) {
        return -1;
    }
    sqlite3_bind_int64(s, 1, last);
    if (stmt_run(&t->db, s, "event prune", errp) == -1) {
        return -1;
    }
    *deleted = n;
    return 0;
}

int
store_event_first(struct store_tenant *t, int64_t *received_ms, char **errp)
{
    sqlite3_stmt *s = db_stmt(&t->db, Q_EVENT_FIRST, errp);
    int rc;

    *received_ms = 0;
    if (s == NULL) {
        return -1;
    }
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *received_ms = sqlite3_column_int64(s, 0);
    } else if (rc != SQLITE_DONE) {
        db_fail(&t->db, errp, "event first");
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    return rc == SQLITE_ROW;
}

int64_t
store_event_total(struct store_tenant *t)
{
    sqlite3_stmt *s;
    char *err = NULL;
    int64_t n = -1;

    if ((s = db_stmt(&t->db, Q_EVENT_TOTAL, &err)) == NULL) {
        log_err("store.error tenant=%s err=%s", t->id, log_quote(err));
        free(err);
        return -1;
    }
    if (sqlite3_step(s) == SQLITE_ROW) {
        n = sqlite3_column_int64(s, 0);
    }
    stmt_done(s);
    return n;
}

/* ---- published lists ---- */

int
store_list_put(struct store_tenant *t, const char *list, const char *value, int64_t expires_ms,
               char **errp)
{
    sqlite3_stmt *s;

    if ((s = db_stmt(&t->db, Q_LIST_PUT, errp)) == NULL) {
        return -1;
    }
    if ((bind_text(s, 1, list) | bind_text(s, 2, value) | sqlite3_bind_int64(s, 3, expires_ms) |
         sqlite3_bind_int64(s, 4, util_now_ms())) != SQLITE_OK) {
        db_fail(&t->db, errp, "list put %s", list);
        stmt_done(s);
        return -1;
    }
    return stmt_run(&t->db, s, "list put", errp);
}

int
store_list_del(struct store_tenant *t, const char *list, const char *value, char **errp)
{
    sqlite3_stmt *s;

    if ((s = db_stmt(&t->db, Q_LIST_DEL, errp)) == NULL) {
        return -1;
    }
    if ((bind_text(s, 1, list) | bind_text(s, 2, value) |
         sqlite3_bind_int64(s, 3, util_now_ms())) != SQLITE_OK) {
        db_fail(&t->db, errp, "list del %s", list);
        stmt_done(s);
        return -1;
    }
    return stmt_run(&t->db, s, "list del", errp);
}

int
store_list_text(struct store_tenant *t, const char *list, struct buf *out, char **errp)
{
    sqlite3_stmt *s;
    int rc;

    if ((s = db_stmt(&t->db, Q_LIST_GET, errp)) == NULL) {
        return -1;
    }
    if ((bind_text(s, 1, list) | sqlite3_bind_int64(s, 2, util_now_ms())) != SQLITE_OK) {
        db_fail(&t->db, errp, "list get %s", list);
        stmt_done(s);
        return -1;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(s, 0);

        if (v != NULL && (buf_puts(out, v) == -1 || buf_puts(out, "\n") == -1)) {
            stmt_done(s);
            return kg_err(errp, "list %s: larger than the answer may be", list);
        }
    }
    if (rc != SQLITE_DONE) {
        db_fail(&t->db, errp, "list get %s", list);
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    return 0;
}

/* ---- source marks ---- */

int
store_mark_put(struct store_tenant *t, const char *source, const char *key, const char *value,
               char **errp)
{
    sqlite3_stmt *s;

    if ((s = db_stmt(&t->db, Q_MARK_PUT, errp)) == NULL) {
        return -1;
    }
    if ((bind_text(s, 1, source) | bind_text(s, 2, key) | bind_text(s, 3, value) |
         sqlite3_bind_int64(s, 4, util_now_ms())) != SQLITE_OK) {
        db_fail(&t->db, errp, "mark put %s", source);
        stmt_done(s);
        return -1;
    }
    return stmt_run(&t->db, s, "mark put", errp);
}

int
store_mark_get(struct store_tenant *t, const char *source, const char *key, char **value,
               char **errp)
{
    sqlite3_stmt *s;
    int rc;

    *value = NULL;
    if ((s = db_stmt(&t->db, Q_MARK_GET, errp)) == NULL) {
        return -1;
    }
    if ((bind_text(s, 1, source) | bind_text(s, 2, key)) != SQLITE_OK) {
        db_fail(&t->db, errp, "mark get %s", source);
        stmt_done(s);
        return -1;
    }
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(s, 0);

        *value = xstrdup(v != NULL ? v : "");
    } else if (rc != SQLITE_DONE) {
        db_fail(&t->db, errp, "mark get %s", source);
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    return 0;
}

int
store_mark_prune(struct store_tenant *t, const char *source, int64_t before_ms, int *deleted,
                 char **errp)
{
    sqlite3_stmt *s;

    *deleted = 0;
    if ((s = db_stmt(&t->db, Q_MARK_PRUNE, errp)) == NULL) {
        return -1;
    }
    if ((bind_text(s, 1, source) | sqlite3_bind_int64(s, 2, before_ms)) != SQLITE_OK) {
        db_fail(&t->db, errp, "mark prune %s", source);
        stmt_done(s);
        return -1;
    }
    if (stmt_run(&t->db, s, "mark prune", errp) == -1) {
        return -1;
    }
    *deleted = sqlite3_changes(t->db.h);
    return 0;
}

/* ---- playbook versions ---- */

int
store_playbook_put(struct store_tenant *t, const char *hash, const char *name, const char *source,
                   size_t len, char **errp)
{
    sqlite3_stmt *s;

    if (hash == NULL || name == NULL || source == NULL || len > INT32_MAX) {
        return kg_err(errp, "playbook put: missing hash, name or source");
    }
    if ((s = db_stmt(&t->db, Q_PLAYBOOK_PUT, errp)) == NULL) {
        return -1;
    }
    if ((bind_text(s, 1, hash) | bind_text(s, 2, name) |
         sqlite3_bind_text(s, 3, source, (int)len, SQLITE_STATIC) |
         sqlite3_bind_int64(s, 4, util_now_ms())) != SQLITE_OK) {
        db_fail(&t->db, errp, "playbook put %s", name);
        stmt_done(s);
        return -1;
    }
    return stmt_run(&t->db, s, "playbook put", errp);
}

/* The source of a playbook version, NUL-terminated, with its length in *len and its
 * name in *name (both optional; the caller frees source and name). NULL when unknown;
 * database errors are logged and also give NULL. */
char *
store_playbook_get(struct store_tenant *t, const char *hash, size_t *len, char **name)
{
    sqlite3_stmt *s;
    char *err = NULL, *src = NULL;
    int rc;

    if (len != NULL) {
        *len = 0;
    }
    if (name != NULL) {
        *name = NULL;
    }
    if ((s = db_stmt(&t->db, Q_PLAYBOOK_GET, &err)) == NULL) {
        log_err("store.error tenant=%s err=%s", t->id, log_quote(err));
        free(err);
        return NULL;
    }
    bind_text(s, 1, hash);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(s, 0);
        const void *p = sqlite3_column_text(s, 0);

        src = xmalloc(n + 1);
        if (n > 0) {
            memcpy(src, p, n);
        }
        src[n] = '\0';
        if (len != NULL) {
            *len = n;
        }
        if (name != NULL) {
            *name = col_strdup(s, 1);
        }
    } else if (rc != SQLITE_DONE) {
        log_err("store.error tenant=%s op=playbook_get err=%s", t->id,
                log_quote(sqlite3_errmsg(t->db.h)));
    }
    stmt_done(s);
    return src;
}

int
store_playbook_lib_put(struct store_tenant *t, const char *version, const char *name,
                       const char *source, size_t len, char **errp)
{
    sqlite3_stmt *s;

    if (version == NULL || name == NULL || source == NULL || len > INT32_MAX) {
        return kg_err(errp, "playbook library put: missing version, name or source");
    }
    if ((s = db_stmt(&t->db, Q_PLAYBOOK_LIB_PUT, errp)) == NULL) {
        return -1;
    }
    if ((bind_text(s, 1, version) | bind_text(s, 2, name) |
         sqlite3_bind_text(s, 3, source, (int)len, SQLITE_STATIC)) != SQLITE_OK) {
        db_fail(&t->db, errp, "playbook library put %s", name);
        stmt_done(s);
        return -1;
    }
    return stmt_run(&t->db, s, "playbook library put", errp);
}

int
store_playbook_libs_get(struct store_tenant *t, const char *version, struct store_lib **out,
                        size_t *n, char **errp)
{
    sqlite3_stmt *s;
    int rc;

    *out = NULL;
    *n = 0;
    if ((s = db_stmt(&t->db, Q_PLAYBOOK_LIB_GET, errp)) == NULL) {
        return -1;
    }
    bind_text(s, 1, version);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_lib *l;
        size_t len = (size_t)sqlite3_column_bytes(s, 1);
        const void *p = sqlite3_column_text(s, 1);

        *out = xrealloc(*out, (*n + 1) * sizeof(**out));
        l = &(*out)[(*n)++];
        l->name = col_strdup(s, 0);
        l->source = xmalloc(len + 1);
        if (len > 0) {
            memcpy(l->source, p, len);
        }
        l->source[len] = '\0';
        l->len = len;
    }
    if (rc != SQLITE_DONE) {
        db_fail(&t->db, errp, "playbook libraries of %.12s", version);
        stmt_done(s);
        store_libs_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    stmt_done(s);
    return 0;
}

void
store_libs_free(struct store_lib *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].source);
    }
    free(v);
}

/* ---- runs ---- */

static int
run_state_index(const char *state)
{
    for (int i = 0; i < NELEM(run_states); i++) {
        if (state != NULL && strcmp(state, run_states[i]) == 0) {
            return i;
        }
    }
    return -1;
}

void
store_run_free(struct store_run *r)
{
    if (r == NULL) {
        return;
    }
    free(r->playbook);
    free(r->error);
    free(r->result);
    free(r->result_note);
    r->playbook = NULL;
    r->error = NULL;
    r->result = NULL;
    r->result_note = NULL;
}

void
store_runs_free(struct store_run *r, size_t n)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        store_run_free(&r[i]);
    }
    free(r);
}

/* Fill r from a row selected with RUN_COLUMNS. */
static void
run_from_row(sqlite3_stmt *s, struct store_run *r)
{
    const char *hash = (const char *)sqlite3_column_text(s, 3);
    const char *state = (const char *)sqlite3_column_text(s, 4);

    memset(r, 0, sizeof(*r));
    r->id = sqlite3_column_int64(s, 0);
    r->alert_id = sqlite3_column_int64(s, 1);
    r->playbook = col_strdup(s, 2);
    snprintf(r->hash, sizeof(r->hash), "%s", hash ? hash : "");
    snprintf(r->state, sizeof(r->state), "%s", state ? state : "");
    r->created_ms = sqlite3_column_int64(s, 5);
    r->started_ms = sqlite3_column_int64(s, 6);
    r->ended_ms = sqlite3_column_int64(s, 7);
    r->error = col_strdup(s, 8);
    r->throttled_until = sqlite3_column_int64(s, 9);
    r->result = col_strdup(s, 10);
    r->result_note = col_strdup(s, 11);
    r->dry_run = sqlite3_column_type(s, 12) == SQLITE_NULL ? -1 : sqlite3_column_int(s, 12) != 0;
}

/* Step s for at most one row, copied by fill into the zeroed element out of elem bytes:
 * 1 with a row, 0 without, -1 with *errp ("op: <sqlite's message>"). Resets s. */
static int
db_row_one(struct db *d, sqlite3_stmt *s, const char *op, void *out, size_t elem,
           void (*fill)(sqlite3_stmt *s, void *e), char **errp)
{
    int rc = sqlite3_step(s);

    memset(out, 0, elem);
    if (rc == SQLITE_ROW) {
        fill(s, out);
        stmt_done(s);
        return 1;
    }
    if (rc != SQLITE_DONE) {
        db_fail(d, errp, "%s", op);
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    return 0;
}

/* Step s to its end, collecting one element of elem bytes per row into a malloc'd array
 * (*out, *n): fill copies the row into a zeroed element. On a step error the elements
 * collected so far are released with drop (NULL: they own nothing), *errp says
 * "op: <sqlite's message>" and -1 is returned. s is left for the caller to reset or
 * finalize. */
static int
db_rows(struct db *d, sqlite3_stmt *s, const char *op, size_t elem,
        void (*fill)(sqlite3_stmt *s, void *e), void (*drop)(void *v, size_t n), void **out,
        size_t *n, char **errp)
{
    char *v = NULL;
    size_t len = 0, cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? cap * 2 : 16;
            v = xrealloc(v, cap * elem);
        }
        memset(v + len * elem, 0, elem);
        fill(s, v + len * elem);
        len++;
    }
    if (rc != SQLITE_DONE) {
        db_fail(d, errp, "%s", op);
        if (drop != NULL) {
            drop(v, len);
        } else {
            free(v);
        }
        return -1;
    }
    *out = v;
    *n = len;
    return 0;
}

/* Step s to the end, collecting runs into a malloc'd array. Resets s. */
static void
run_fill(sqlite3_stmt *s, void *e)
{
    run_from_row(s, e);
}

static void
run_drop(void *v, size_t n)
{
    store_runs_free(v, n);
}

static int
run_collect(struct db *d, sqlite3_stmt *s, const char *op, struct store_run **out, size_t *n,
            char **errp)
{
    void *v;
    int rc = db_rows(d, s, op, sizeof(**out), run_fill, run_drop, &v, n, errp);

    stmt_done(s);
    *out = v;
    return rc;
}

/* A new run in state queued. alert_id <= 0 stores no alert (read back as 0); a positive
 * one must name an existing alert. */
int
store_run_insert(struct store_tenant *t, int64_t alert_id, const char *playbook, const char *hash,
                 int64_t created_ms, int64_t *id, char **errp)
{
    sqlite3_stmt *s;

    *id = 0;
    if (playbook == NULL || hash == NULL) {
        return kg_err(errp, "run insert: missing playbook or hash");
    }
    if (strlen(hash) >= sizeof(((struct store_run *)0)->hash)) {
        return kg_err(errp, "run insert %s: playbook hash too long", playbook);
    }
    if ((s = db_stmt(&t->db, Q_RUN_INSERT, errp)) == NULL) {
        return -1;
    }
    if ((bind_opt_int64(s, 1, alert_id) | bind_text(s, 2, playbook) | bind_text(s, 3, hash) |
         sqlite3_bind_int64(s, 4, created_ms)) != SQLITE_OK) {
        db_fail(&t->db, errp, "run insert %s", playbook);
        stmt_done(s);
        return -1;
    }
    if (sqlite3_step(s) != SQLITE_DONE) {
        db_fail(&t->db, errp, "run insert %s alert=%lld", playbook, (long long)alert_id);
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    *id = sqlite3_last_insert_rowid(t->db.h);
    return 0;
}

/* Set state and error (NULL clears it); a started/ended of 0 keeps the column. An
 * unknown run id is an error. */
int
store_run_update(struct store_tenant *t, int64_t id, const char *state, int64_t started_ms,
                 int64_t ended_ms, const char *error, char **errp)
{
    sqlite3_stmt *s;

    if (run_state_index(state) == -1) {
        return kg_err(errp, "run update %lld: invalid state \"%s\"", (long long)id,
                      state ? state : "(null)");
    }
    if ((s = db_stmt(&t->db, Q_RUN_UPDATE, errp)) == NULL) {
        return -1;
    }
    if ((sqlite3_bind_int64(s, 1, id) | bind_text(s, 2, state) |
         sqlite3_bind_int64(s, 3, started_ms) | sqlite3_bind_int64(s, 4, ended_ms) |
         bind_text(s, 5, error)) != SQLITE_OK) {
        db_fail(&t->db, errp, "run update %lld", (long long)id);
        stmt_done(s);
        return -1;
    }
    if (sqlite3_step(s) != SQLITE_DONE) {
        db_fail(&t->db, errp, "run update %lld", (long long)id);
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    if (sqlite3_changes(t->db.h) == 0) {
        return kg_err(errp, "run update: no run %lld", (long long)id);
    }
    return 0;
}

/* Run statement q with the run id bound to ?1; its number of changed rows, or -1. */
static int
run_exec(struct store_tenant *t, enum query q, int64_t id, char **errp)
{
    sqlite3_stmt *s = db_stmt(&t->db, q, errp);
    int n;

    if (s == NULL) {
        return -1;
    }
    if (sqlite3_bind_int64(s, 1, id) != SQLITE_OK || sqlite3_step(s) != SQLITE_DONE) {
        db_fail(&t->db, errp, "run %lld", (long long)id);
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    n = sqlite3_changes(t->db.h);
    return n;
}

int
store_run_retry(struct store_tenant *t, int64_t id, char **errp)
{
    struct store_run r;
    int rc = store_run_get(t, id, &r, errp);

    if (rc != 1) {
        return rc == 0 ? kg_err(errp, "no run %lld", (long long)id) : -1;
    }
    if (strcmp(r.state, "failed") != 0) {
        kg_err(errp, "run %lld is %s: only a failed run can be retried", (long long)id, r.state);
        store_run_free(&r);
        return -1;
    }
    store_run_free(&r);
    if (store_tx_begin(t, errp) == -1) {
        return -1;
    }
    if (run_exec(t, Q_JOURNAL_DROP_UNFINISHED_TAIL, id, errp) == -1 ||
        run_exec(t, Q_RUN_RETRY, id, errp) != 1) {
        if (errp != NULL && *errp == NULL) {
            kg_err(errp, "run %lld changed meanwhile", (long long)id);
        }
        store_tx_rollback(t);
        return -1;
    }
    return store_tx_commit(t, errp);
}

int
store_run_get(struct store_tenant *t, int64_t id, struct store_run *out, char **errp)
{
    sqlite3_stmt *s;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((s = db_stmt(&t->db, Q_RUN_GET, errp)) == NULL) {
        return -1;
    }
    sqlite3_bind_int64(s, 1, id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        run_from_row(s, out);
    } else if (rc != SQLITE_DONE) {
        db_fail(&t->db, errp, "run get %lld", (long long)id);
    }
    stmt_done(s);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
store_run_list(struct store_tenant *t, const char *state, int limit, struct store_run **out,
               size_t *n, char **errp)
{
    sqlite3_stmt *s;

    *out = NULL;
    *n = 0;
    if (state != NULL && run_state_index(state) == -1) {
        return kg_err(errp, "run list: invalid state \"%s\"", state);
    }
    if ((s = db_stmt(&t->db, state ? Q_RUN_LIST_STATE : Q_RUN_LIST, errp)) == NULL) {
        return -1;
    }
    sqlite3_bind_int(s, 1, limit > 0 ? limit : STORE_RUN_LIST_DEFAULT);
    if (state != NULL) {
        bind_text(s, 2, state);
    }
    return run_collect(&t->db, s, "run list", out, n, errp);
}

/* Record the run's result (JSON text or NULL) and its note (NULL when none), in the
 * open transaction that also records its final state. */
int
store_run_set_result(struct store_tenant *t, int64_t id, const char *result, const char *note,
                     char **errp)
{
    sqlite3_stmt *s = db_stmt(&t->db, Q_RUN_SET_RESULT, errp);

    if (s == NULL) {
        return -1;
    }
    if ((sqlite3_bind_int64(s, 1, id) | bind_text(s, 2, result) | bind_text(s, 3, note)) !=
        SQLITE_OK) {
        db_fail(&t->db, errp, "run result %lld", (long long)id);
        stmt_done(s);
        return -1;
    }
    return stmt_run(&t->db, s, "run result", errp);
}

int
store_run_query(struct store_tenant *t, const struct store_run_filter *f, struct store_run **out,
                size_t *n, char **errp)
{
    struct query_build q;
    void *v = NULL;
    sqlite3_stmt *s;
    int rc;

    *out = NULL;
    *n = 0;
    if (f->state != NULL && run_state_index(f->state) == -1) {
        return kg_err(errp,
                      "invalid run state \"%s\" (queued, running, waiting, done, failed "
                      "or cancelled)",
                      f->state);
    }
    memset(&q, 0, sizeof(q));
    buf_init(&q.sql, 0);
    (void)!buf_puts(&q.sql, "SELECT " RUN_COLUMNS " FROM runs WHERE 1");
    if (f->state != NULL) {
        qb_cond_text(&q, "state =", f->state);
    }
    if (f->playbook != NULL) {
        qb_cond_text(&q, "playbook =", f->playbook);
    }
    if (f->alert_id > 0) {
        qb_cond_num(&q, "alert_id =", f->alert_id);
    }
    if (f->since_ms > 0) {
        qb_cond_num(&q, "created >=", f->since_ms);
    }
    if (f->until_ms > 0) {
        qb_cond_num(&q, "created <", f->until_ms);
    }
    (void)!buf_printf(&q.sql, " ORDER BY id DESC LIMIT %d",
                      f->limit > 0 ? f->limit : STORE_RUN_LIST_DEFAULT);
    s = qb_prepare(&t->db, &q, "run query", errp);
    buf_free(&q.sql);
    if (s == NULL) {
        return -1;
    }
    rc = db_rows(&t->db, s, "run query", sizeof(**out), run_fill, run_drop, &v, n, errp);
    sqlite3_finalize(s);
    *out = v;
    return rc;
}

int
store_run_by_alert(struct store_tenant *t, int64_t alert_id, int limit, struct store_run **out,
                   size_t *n, char **errp)
{
    sqlite3_stmt *s;

    *out = NULL;
    *n = 0;
    if ((s = db_stmt(&t->db, Q_RUN_BY_ALERT, errp)) == NULL) {
        return -1;
    }
    sqlite3_bind_int64(s, 1, alert_id);
    sqlite3_bind_int(s, 2, limit > 0 ? limit : STORE_RUN_LIST_DEFAULT);
    return run_collect(&t->db, s, "run by alert", out, n, errp);
}

int
store_run_unfinished(struct store_tenant *t, struct store_run **out, size_t *n, char **errp)
{
    sqlite3_stmt *s;

    *out = NULL;
    *n = 0;
    if ((s = db_stmt(&t->db, Q_RUN_UNFINISHED, errp)) == NULL) {
        return -1;
    }
    return run_collect(&t->db, s, "run unfinished", out, n, errp);
}

int
store_run_counts(struct store_tenant *t, int64_t counts[6], char **errp)
{
    sqlite3_stmt *s;
    int rc;

    memset(counts, 0, 6 * sizeof(counts[0]));
    if ((s = db_stmt(&t->db, Q_RUN_COUNTS, errp)) == NULL) {
        return -1;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int i = run_state_index((const char *)sqlite3_column_text(s, 0));

        if (i >= 0) {
            counts[i] = sqlite3_column_int64(s, 1);
        }
    }
    if (rc != SQLITE_DONE) {
        db_fail(&t->db, errp, "run counts");
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    return 0;
}

/* ---- journal ---- */

/* Insert or replace (run_id, seq): "started" is written before an effect happens and
 * replaced by "done"/"failed" after. */
int
store_journal_put(struct store_tenant *t, const struct journal_entry *e, char **errp)
{
    sqlite3_stmt *s;

    if (e->kind == NULL) {
        return kg_err(errp, "journal put run=%lld seq=%d: missing kind", (long long)e->run_id,
                      e->seq);
    }
    if (e->status < JOURNAL_STARTED || e->status > JOURNAL_FAILED) {
        return kg_err(errp, "journal put run=%lld seq=%d: invalid status %d", (long long)e->run_id,
                      e->seq, e->status);
    }
    if ((s = db_stmt(&t->db, Q_JOURNAL_PUT, errp)) == NULL) {
        return -1;
    }
    if ((sqlite3_bind_int64(s, 1, e->run_id) | sqlite3_bind_int(s, 2, e->seq) |
         bind_text(s, 3, e->kind) | bind_text(s, 4, e->request) | bind_text(s, 5, e->result) |
         sqlite3_bind_int(s, 6, e->status) | sqlite3_bind_int64(s, 7, e->started_ms) |
         bind_opt_int64(s, 8, e->ended_ms) | bind_text(s, 9, e->waits) |
         bind_opt_int64(s, 10, e->throttled_until)) != SQLITE_OK) {
        db_fail(&t->db, errp, "journal put run=%lld seq=%d", (long long)e->run_id, e->seq);
        stmt_done(s);
        return -1;
    }
    if (sqlite3_step(s) != SQLITE_DONE) {
        db_fail(&t->db, errp, "journal put run=%lld seq=%d", (long long)e->run_id, e->seq);
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    return 0;
}

int
store_journal_load(struct store_tenant *t, int64_t run_id, struct journal_entry **out, size_t *n,
                   char **errp)
{
    struct journal_entry *v = NULL;
    size_t len = 0, cap = 0;
    sqlite3_stmt *s;
    int rc;

    *out = NULL;
    *n = 0;
    if ((s = db_stmt(&t->db, Q_JOURNAL_LOAD, errp)) == NULL) {
        return -1;
    }
    sqlite3_bind_int64(s, 1, run_id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct journal_entry *e;

        if (len == cap) {
            cap = cap ? cap * 2 : 16;
            v = xrealloc(v, cap * sizeof(*v));
        }
        e = &v[len++];
        e->run_id = sqlite3_column_int64(s, 0);
        e->seq = sqlite3_column_int(s, 1);
        e->kind = col_strdup(s, 2);
        e->request = col_strdup(s, 3);
        e->result = col_strdup(s, 4);
        e->status = sqlite3_column_int(s, 5);
        e->started_ms = sqlite3_column_int64(s, 6);
        e->ended_ms = sqlite3_column_int64(s, 7);
        e->waits = col_strdup(s, 8);
        e->throttled_until = sqlite3_column_int64(s, 9);
    }
    if (rc != SQLITE_DONE) {
        db_fail(&t->db, errp, "journal load run=%lld", (long long)run_id);
        stmt_done(s);
        journal_entries_free(v, len);
        return -1;
    }
    stmt_done(s);
    *out = v;
    *n = len;
    return 0;
}

/* ---- playbook memory (state.*) ---- */

int
store_kv_get(struct store_tenant *t, const char *key, int64_t now_ms, char **value,
             int64_t *expires_ms, char **errp)
{
    sqlite3_stmt *s;
    int rc;

    *value = NULL;
    *expires_ms = 0;
    if ((s = db_stmt(&t->db, Q_KV_GET, errp)) == NULL) {
        return -1;
    }
    bind_text(s, 1, key);
    sqlite3_bind_int64(s, 2, now_ms);
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        stmt_done(s);
        return 0;
    }
    if (rc != SQLITE_ROW) {
        db_fail(&t->db, errp, "state get");
        stmt_done(s);
        return -1;
    }
    *value = col_strdup(s, 0);
    *expires_ms = sqlite3_column_int64(s, 1);
    stmt_done(s);
    return *value != NULL ? 1 : 0;
}

int
store_kv_put(struct store_tenant *t, const char *key, const char *value, int64_t expires_ms,
             int64_t now_ms, char **errp)
{
    sqlite3_stmt *s;

    if ((s = db_stmt(&t->db, Q_KV_PUT, errp)) == NULL) {
        return -1;
    }
    bind_text(s, 1, key);
    bind_text(s, 2, value);
    bind_opt_int64(s, 3, expires_ms);
    sqlite3_bind_int64(s, 4, now_ms);
    return stmt_run(&t->db, s, "state put", errp);
}

int
store_kv_delete(struct store_tenant *t, const char *key, char **errp)
{
    sqlite3_stmt *s;

    if ((s = db_stmt(&t->db, Q_KV_DELETE, errp)) == NULL) {
        return -1;
    }
    bind_text(s, 1, key);
    if (stmt_run(&t->db, s, "state delete", errp) == -1) {
        return -1;
    }
    return sqlite3_changes(t->db.h) > 0 ? 1 : 0;
}

int
store_kv_prune(struct store_tenant *t, int64_t now_ms, int max, char **errp)
{
    sqlite3_stmt *s;

    if ((s = db_stmt(&t->db, Q_KV_PRUNE, errp)) == NULL) {
        return -1;
    }
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int(s, 2, max);
    if (stmt_run(&t->db, s, "state prune", errp) == -1) {
        return -1;
    }
    return sqlite3_changes(t->db.h);
}

int
store_kv_list(struct store_tenant *t, const char *prefix, int64_t now_ms, int limit,
              struct store_kv **out, size_t *n, char **errp)
{
    struct store_kv *v = NULL;
    size_t len = 0, cap = 0;
    sqlite3_stmt *s;
    int rc;

    *out = NULL;
    *n = 0;
    if ((s = db_stmt(&t->db, Q_KV_LIST, errp)) == NULL) {
        return -1;
    }
    sqlite3_bind_int64(s, 1, now_ms);
    bind_text(s, 2, prefix ? prefix : "");
    sqlite3_bind_int(s, 3, limit > 0 ? limit : 1000);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? cap * 2 : 16;
            v = xrealloc(v, cap * sizeof(*v));
        }
        v[len].key = col_strdup(s, 0);
        v[len].value = col_strdup(s, 1);
        v[len].expires_ms = sqlite3_column_int64(s, 2);
        v[len].updated_ms = sqlite3_column_int64(s, 3);
        len++;
    }
    if (rc != SQLITE_DONE) {
        db_fail(&t->db, errp, "state list");
        stmt_done(s);
        store_kv_free(v, len);
        return -1;
    }
    stmt_done(s);
    *out = v;
    *n = len;
    return 0;
}

void
store_kv_free(struct store_kv *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].key);
        free(v[i].value);
    }
    free(v);
}

/* ---- earlier alerts (alerts.recent) ---- */

/* 1 when a carries the observable value (of type, unless type is NULL). */
static int
obs_has(const struct alert *a, const char *value, const char *type)
{
    for (size_t i = 0; i < a->nobs; i++) {
        if (a->obs[i].value != NULL && strcmp(a->obs[i].value, value) == 0 &&
            (type == NULL || (a->obs[i].type != NULL && strcmp(a->obs[i].type, type) == 0))) {
            return 1;
        }
    }
    return 0;
}

int
store_alert_recent(struct store_tenant *t, const struct store_recent *q, struct alert **out,
                   size_t *n, char **errp)
{
    struct alert *v = NULL;
    size_t len = 0, cap = 0;
    sqlite3_stmt *s;
    int rc = SQLITE_DONE, scanned = 0;
    int64_t last = -1;

    *out = NULL;
    *n = 0;
    if ((s = db_stmt(&t->db, Q_ALERT_RECENT, errp)) == NULL) {
        return -1;
    }
    sqlite3_bind_int64(s, 1, obs_vhash(q->value, strlen(q->value)));
    sqlite3_bind_int64(s, 2, q->since_ms);
    while (len < (size_t)q->limit && scanned++ < STORE_RECENT_SCAN &&
           (rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct alert *a;
        const char *obs;
        int64_t id = sqlite3_column_int64(s, 0);
        const char *src = (const char *)sqlite3_column_text(s, 1);

        /* One alert with the value under two types comes twice, one row after the other. */
        if (id == q->exclude_id || id == last ||
            (q->source != NULL && (src == NULL || strcmp(src, q->source) != 0))) {
            last = id;
            continue;
        }
        last = id;

        if (len == cap) {
            cap = cap ? cap * 2 : 8;
            v = xrealloc(v, cap * sizeof(*v));
        }
        a = &v[len++];
        memset(a, 0, sizeof(*a));
        a->id = sqlite3_column_int64(s, 0);
        a->source = col_strdup(s, 1);
        a->source_id = col_strdup(s, 2);
        a->time_ms = sqlite3_column_int64(s, 3);
        a->received_ms = sqlite3_column_int64(s, 4);
        a->title = col_strdup(s, 5);
        a->category = col_strdup(s, 6);
        a->vendor_severity = col_strdup(s, 7);
        a->severity = sqlite3_column_int(s, 8);
        a->outcome = col_strdup(s, 9);
        obs = (const char *)sqlite3_column_text(s, 10);
        if (obs != NULL) {
            (void)obs_from_json(obs, (size_t)sqlite3_column_bytes(s, 10), a);
        }
        if (!obs_has(a, q->value, q->type)) {
            alert_free(a); /* another value with the same hash, or another type */
            len--;
        }
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        db_fail(&t->db, errp, "recent alerts");
        stmt_done(s);
        for (size_t i = 0; i < len; i++) {
            alert_free(&v[i]);
        }
        free(v);
        return -1;
    }
    stmt_done(s);
    *out = v;
    *n = len;
    return 0;
}

/* ---- people: users, roles, sessions, API tokens, allow-lists, audit ---- */

/* Bind the arguments after fmt to s in order: 's' a string (NULL: SQL NULL), 'i' an
 * int64_t, 'z' an int64_t stored as NULL when <= 0. */
static int
db_vbind(sqlite3_stmt *s, const char *fmt, va_list ap)
{
    int rc = SQLITE_OK;

    for (int i = 0; fmt[i] != '\0' && rc == SQLITE_OK; i++) {
        if (fmt[i] == 's') {
            rc = bind_text(s, i + 1, va_arg(ap, const char *));
        } else if (fmt[i] == 'i') {
            rc = sqlite3_bind_int64(s, i + 1, va_arg(ap, int64_t));
        } else {
            rc = bind_opt_int64(s, i + 1, va_arg(ap, int64_t));
        }
    }
    return rc;
}

/* The statement q with its parameters bound, ready to step (stmt_done after), or NULL
 * with *errp. */
static sqlite3_stmt *
db_vbound(struct db *d, enum query q, char **errp, const char *fmt, va_list ap)
{
    sqlite3_stmt *s = db_stmt(d, q, errp);

    if (s == NULL) {
        return NULL;
    }
    if (db_vbind(s, fmt, ap) != SQLITE_OK) {
        db_fail(d, errp, "bind \"%.40s\"", query_sql[q]);
        stmt_done(s);
        return NULL;
    }
    return s;
}

static sqlite3_stmt *
db_bound(struct db *d, enum query q, char **errp, const char *fmt, ...)
{
    sqlite3_stmt *s;
    va_list ap;

    va_start(ap, fmt);
    s = db_vbound(d, q, errp, fmt, ap);
    va_end(ap);
    return s;
}

/* db_rows over the statement q bound with fmt and its values (db_vbind), then reset:
 * *out and *n as db_rows leaves them (NULL and 0 on any failure), 0 or -1 with *errp. */
static int
db_list(struct db *d, enum query q, const char *op, size_t elem,
        void (*fill)(sqlite3_stmt *s, void *e), void (*drop)(void *v, size_t n), void **out,
        size_t *n, char **errp, const char *fmt, ...)
{
    sqlite3_stmt *s;
    va_list ap;
    int rc;

    *out = NULL;
    *n = 0;
    va_start(ap, fmt);
    s = db_vbound(d, q, errp, fmt, ap);
    va_end(ap);
    if (s == NULL) {
        return -1;
    }
    rc = db_rows(d, s, op, elem, fill, drop, out, n, errp);
    stmt_done(s);
    return rc;
}

/* Run a statement that returns no rows: the number of rows changed, or -1. */
static int
db_change(struct db *d, enum query q, const char *op, char **errp, const char *fmt, ...)
{
    sqlite3_stmt *s = db_stmt(d, q, errp);
    va_list ap;
    int rc;

    if (s == NULL) {
        return -1;
    }
    va_start(ap, fmt);
    rc = db_vbind(s, fmt, ap);
    va_end(ap);
    if (rc != SQLITE_OK) {
        db_fail(d, errp, "%s", op);
        stmt_done(s);
        return -1;
    }
    if (stmt_run(d, s, op, errp) == -1) {
        return -1;
    }
    return sqlite3_changes(d->h);
}

/* A text column copied into a fixed buffer (cut to fit). */
static void
col_copy(sqlite3_stmt *s, int i, char *out, size_t n)
{
    const char *p = (const char *)sqlite3_column_text(s, i);

    snprintf(out, n, "%s", p ? p : "");
}

void
store_busy_ms(struct store *st, int busy_ms)
{
    sqlite3_busy_timeout(st->db.h, busy_ms);
}

int
store_alert_ids(struct store_tenant *t, int64_t before, int limit, int64_t **ids, size_t *n,
                char **errp)
{
    struct store_alert_filter any = { NULL, -1, NULL, 0, 0, NULL, NULL };

    return store_alert_search(t, &any, before, limit, ids, n, NULL, errp);
}

/* store_alert_search with an observable: the alerts that carry the value, through its
 * index (alert_observables) newest first; the type and the value are checked in the
 * alert itself (a hash collision costs a row, never a wrong answer). The index holds only
 * the alerts that share the value, so the read is bounded by them, not by the table. */
static int
alert_search_obs(struct store_tenant *t, const struct store_alert_filter *f, int64_t before,
                 int limit, int64_t **ids, size_t *n, char **errp)
{
    sqlite3_stmt *s;
    int64_t *v;
    size_t len = 0;
    int rc;

    s = db_bound(&t->db, Q_ALERT_IDS_OBS, errp, "iisisoossi",
                 obs_vhash(f->obs_value, strlen(f->obs_value)), before > 0 ? before : INT64_MAX,
                 f->source, (int64_t)f->severity, f->outcome, f->since_ms, f->until_ms, f->obs_type,
                 f->obs_value, (int64_t)limit);
    if (s == NULL) {
        return -1;
    }
    v = xcalloc((size_t)limit, sizeof(*v));
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && len < (size_t)limit) {
        int64_t id = sqlite3_column_int64(s, 0);

        /* One alert with the value twice (two roles) has two index rows. */
        if (len == 0 || v[len - 1] != id) {
            v[len++] = id;
        }
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        db_fail(&t->db, errp, "alert search by observable");
        stmt_done(s);
        free(v);
        return -1;
    }
    stmt_done(s);
    *ids = v;
    *n = len;
    return 0;
}

int
store_alert_search(struct store_tenant *t, const struct store_alert_filter *f, int64_t before,
                   int limit, int64_t **ids, size_t *n, int64_t *resume, char **errp)
{
    sqlite3_stmt *s;
    int64_t floor = 0;
    int64_t *v = NULL;
    size_t len = 0;
    int rc;

    *ids = NULL;
    *n = 0;
    if (limit <= 0) {
        limit = STORE_RUN_LIST_DEFAULT;
    }
    if (resume != NULL) {
        *resume = 0;
    }
    if (f->obs_type != NULL && f->obs_value != NULL) {
        return alert_search_obs(t, f, before, limit, ids, n, errp);
    }
    /* A filter reads the alerts one by one: at most a window of STORE_ALERT_SCAN ids per
     * call, so that a filter nothing matches never reads a large table on the loop. */
    if (f->source != NULL || f->severity >= 0 || f->outcome != NULL || f->since_ms > 0 ||
        f->until_ms > 0) {
        int64_t top = before;

        if (top <= 0) {
            if ((s = db_stmt(&t->db, Q_ALERT_MAX_ID, errp)) == NULL) {
                return -1;
            }
            if (sqlite3_step(s) != SQLITE_ROW) {
                db_fail(&t->db, errp, "alert max id");
                stmt_done(s);
                return -1;
            }
            top = sqlite3_column_int64(s, 0) + 1;
            stmt_done(s);
        }
        floor = top - STORE_ALERT_SCAN > 0 ? top - STORE_ALERT_SCAN : 0;
    }
    s = db_bound(&t->db, Q_ALERT_IDS, errp, "iisisooi", before > 0 ? before : INT64_MAX,
                 (int64_t)limit, f->source, (int64_t)f->severity, f->outcome, f->since_ms,
                 f->until_ms, floor);
    if (s == NULL) {
        return -1;
    }
    v = xcalloc((size_t)limit, sizeof(*v));
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && len < (size_t)limit) {
        v[len++] = sqlite3_column_int64(s, 0);
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        db_fail(&t->db, errp, "alert list");
        stmt_done(s);
        free(v);
        return -1;
    }
    stmt_done(s);
    *ids = v;
    *n = len;
    if (resume != NULL && len < (size_t)limit && floor > 1) {
        *resume = floor;
    }
    return 0;
}

int
store_alert_stats(struct store_tenant *t, int64_t since_ms, int64_t bucket_ms,
                  struct store_alert_bucket **buckets, size_t *nb,
                  struct store_source_count **sources, size_t *ns, char **errp)
{
    sqlite3_stmt *s;
    int rc;

    *buckets = NULL;
    *sources = NULL;
    *nb = 0;
    *ns = 0;
    if (bucket_ms <= 0) {
        return kg_err(errp, "alert stats: bucket must be positive");
    }
    if ((s = db_bound(&t->db, Q_ALERT_BY_LEVEL, errp, "ii", since_ms, bucket_ms)) == NULL) {
        return -1;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_alert_bucket *b;

        *buckets = xrealloc(*buckets, (*nb + 1) * sizeof(**buckets));
        b = &(*buckets)[(*nb)++];
        b->start_ms = sqlite3_column_int64(s, 0);
        b->severity = sqlite3_column_int(s, 1);
        b->count = sqlite3_column_int64(s, 2);
    }
    if (rc != SQLITE_DONE) {
        db_fail(&t->db, errp, "alert stats by level");
        stmt_done(s);
        goto fail;
    }
    stmt_done(s);
    s = db_bound(&t->db, Q_ALERT_BY_SOURCE, errp, "ii", since_ms,
                 (int64_t)STORE_ALERT_STATS_SOURCES);
    if (s == NULL) {
        goto fail;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_source_count *c;
        const char *src = (const char *)sqlite3_column_text(s, 0);

        *sources = xrealloc(*sources, (*ns + 1) * sizeof(**sources));
        c = &(*sources)[(*ns)++];
        snprintf(c->source, sizeof(c->source), "%s", src ? src : "");
        c->count = sqlite3_column_int64(s, 1);
    }
    if (rc != SQLITE_DONE) {
        db_fail(&t->db, errp, "alert stats by source");
        stmt_done(s);
        goto fail;
    }
    stmt_done(s);
    return 0;
fail:
    free(*buckets);
    free(*sources);
    *buckets = NULL;
    *sources = NULL;
    *nb = 0;
    *ns = 0;
    return -1;
}

void
store_user_free(struct store_user *u)
{
    if (u == NULL) {
        return;
    }
    free(u->pass_hash);
    if (u->totp_secret != NULL) {
        memset(u->totp_secret, 0, strlen(u->totp_secret)); /* may be the plaintext */
    }
    free(u->totp_secret);
    u->pass_hash = NULL;
    u->totp_secret = NULL;
}

void
store_users_free(struct store_user *u, size_t n)
{
    if (u == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        store_user_free(&u[i]);
    }
    free(u);
}

/* Fill u from a row selected with USER_COLUMNS. */
static void
user_from_row(sqlite3_stmt *s, struct store_user *u)
{
    memset(u, 0, sizeof(*u));
    u->id = sqlite3_column_int64(s, 0);
    col_copy(s, 1, u->name, sizeof(u->name));
    u->pass_hash = col_strdup(s, 2);
    u->totp_secret = col_strdup(s, 3);
    u->totp_confirmed = sqlite3_column_int(s, 4);
    u->totp_last_step = sqlite3_column_int64(s, 5);
    u->failures = sqlite3_column_int(s, 6);
    u->locked_until = sqlite3_column_int64(s, 7);
    u->disabled = sqlite3_column_int(s, 8);
    u->created = sqlite3_column_int64(s, 9);
    u->last_login = sqlite3_column_int64(s, 10);
}

int
store_user_add(struct store *st, const char *name, const char *pass_hash, const char *totp_secret,
               int64_t *id, char **errp)
{
    sqlite3_stmt *s;
    int rc;

    if (name == NULL || *name == '\0' || strlen(name) >= sizeof(((struct store_user *)0)->name)) {
        return kg_err(errp, "user name: 1 to %zu bytes",
                      sizeof(((struct store_user *)0)->name) - 1);
    }
    s = db_bound(&st->db, Q_USER_ADD, errp, "sssi", name, pass_hash, totp_secret, util_now_ms());
    if (s == NULL) {
        return -1;
    }
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
        if (sqlite3_extended_errcode(st->db.h) == SQLITE_CONSTRAINT_UNIQUE) {
            kg_err(errp, "user %s exists", name);
        } else {
            db_fail(&st->db, errp, "user add %s", name);
        }
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    *id = sqlite3_last_insert_rowid(st->db.h);
    return 0;
}

/* Step s for at most one user row. */
static void
user_fill(sqlite3_stmt *s, void *e)
{
    user_from_row(s, e);
}

static int
user_one(struct db *d, sqlite3_stmt *s, struct store_user *out, char **errp)
{
    return db_row_one(d, s, "user get", out, sizeof(*out), user_fill, errp);
}

int
store_user_get(struct store *st, const char *name, struct store_user *out, char **errp)
{
    sqlite3_stmt *s = db_bound(&st->db, Q_USER_GET, errp, "s", name);

    memset(out, 0, sizeof(*out));
    return s == NULL ? -1 : user_one(&st->db, s, out, errp);
}

int
store_user_get_id(struct store *st, int64_t id, struct store_user *out, char **errp)
{
    sqlite3_stmt *s = db_bound(&st->db, Q_USER_GET_ID, errp, "i", id);

    memset(out, 0, sizeof(*out));
    return s == NULL ? -1 : user_one(&st->db, s, out, errp);
}

static void
user_drop(void *v, size_t n)
{
    store_users_free(v, n);
}

int
store_user_list(struct store *st, struct store_user **out, size_t *n, char **errp)
{
    void *v = NULL;
    int rc = db_list(&st->db, Q_USER_LIST, "user list", sizeof(**out), user_fill, user_drop, &v, n,
                     errp, "");

    *out = v;
    return rc;
}

int
store_user_set_disabled(struct store *st, int64_t id, int disabled, char **errp)
{
    return db_change(&st->db, Q_USER_DISABLE, "user disable", errp, "ii", id,
                     (int64_t)(disabled != 0)) < 0
               ? -1
               : 0;
}

int
store_user_set_password(struct store *st, int64_t id, const char *pass_hash, char **errp)
{
    return db_change(&st->db, Q_USER_SET_PASSWORD, "user set password", errp, "is", id, pass_hash) <
                   0
               ? -1
               : 0;
}

int
store_user_set_totp(struct store *st, int64_t id, const char *secret, char **errp)
{
    return db_change(&st->db, Q_USER_SET_TOTP, "user set totp", errp, "is", id, secret) < 0 ? -1
                                                                                            : 0;
}

/* The UPDATE only matches while the stored step is older, so two requests racing with
 * the same code cannot both count. */
int
store_user_totp_use(struct store *st, int64_t id, int64_t step, char **errp)
{
    int n = db_change(&st->db, Q_USER_TOTP_USED, "user totp use", errp, "ii", id, step);

    return n < 0 ? -1 : n > 0;
}

int
store_prefs_get(struct store *st, int64_t user_id, char lang[8], char tz[64], char **errp)
{
    sqlite3_stmt *s = db_bound(&st->db, Q_PREFS_GET, errp, "i", user_id);
    int rc;

    if (s == NULL) {
        return -1;
    }
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *l = (const char *)sqlite3_column_text(s, 0);
        const char *z = (const char *)sqlite3_column_text(s, 1);

        snprintf(lang, 8, "%s", l ? l : "");
        snprintf(tz, 64, "%s", z ? z : "");
        stmt_done(s);
        return 1;
    }
    if (rc != SQLITE_DONE) {
        db_fail(&st->db, errp, "prefs get");
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    return 0;
}

int
store_prefs_set(struct store *st, int64_t user_id, const char *lang, const char *tz, char **errp)
{
    return db_change(&st->db, Q_PREFS_SET, "prefs set", errp, "iss", user_id, lang, tz) < 0 ? -1
                                                                                            : 0;
}

int
store_user_set_failures(struct store *st, int64_t id, int failures, int64_t locked_until,
                        char **errp)
{
    return db_change(&st->db, Q_USER_FAILED, "user failures", errp, "iii", id, (int64_t)failures,
                     locked_until) < 0
               ? -1
               : 0;
}

int
store_user_login_ok(struct store *st, int64_t id, int64_t now, char **errp)
{
    return db_change(&st->db, Q_USER_LOGIN_OK, "user login", errp, "ii", id, now) < 0 ? -1 : 0;
}

/* One transaction: the old codes go and the new ones come together. */
int
store_recovery_set(struct store *st, int64_t user_id, char *const *hashes, size_t n, char **errp)
{
    if (db_exec(&st->db, "SAVEPOINT recovery", "recovery begin", errp) == -1) {
        return -1;
    }
    if (db_change(&st->db, Q_RECOVERY_CLEAR, "recovery clear", errp, "i", user_id) < 0) {
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (db_change(&st->db, Q_RECOVERY_ADD, "recovery add", errp, "is", user_id, hashes[i]) <
            0) {
            goto fail;
        }
    }
    return db_exec(&st->db, "RELEASE recovery", "recovery commit", errp);
fail:
    sqlite3_exec(st->db.h, "ROLLBACK TO recovery; RELEASE recovery", NULL, NULL, NULL);
    return -1;
}

int
store_recovery_use(struct store *st, int64_t user_id, const char *hash, char **errp)
{
    int n = db_change(&st->db, Q_RECOVERY_USE, "recovery use", errp, "is", user_id, hash);

    return n < 0 ? -1 : n > 0;
}

int
store_role_set(struct store *st, int64_t user_id, const char *tenant, const char *role, char **errp)
{
    if (role == NULL) {
        return db_change(&st->db, Q_ROLE_DEL, "role remove", errp, "is", user_id, tenant) < 0 ? -1
                                                                                              : 0;
    }
    return db_change(&st->db, Q_ROLE_SET, "role set", errp, "iss", user_id, tenant, role) < 0 ? -1
                                                                                              : 0;
}

static void
role_fill(sqlite3_stmt *s, void *e)
{
    struct store_role *r = e;

    col_copy(s, 0, r->tenant, sizeof(r->tenant));
    col_copy(s, 1, r->role, sizeof(r->role));
}

int
store_roles_get(struct store *st, int64_t user_id, struct store_role **out, size_t *n, char **errp)
{
    void *v = NULL;
    int rc = db_list(&st->db, Q_ROLES_GET, "roles get", sizeof(**out), role_fill, NULL, &v, n, errp,
                     "i", user_id);

    *out = v;
    return rc;
}

int
store_session_add(struct store *st, const char *hash, int64_t user_id, const char *csrf,
                  int64_t now, const char *address, char **errp)
{
    return db_change(&st->db, Q_SESSION_ADD, "session add", errp, "sisis", hash, user_id, csrf, now,
                     address) < 0
               ? -1
               : 0;
}

int
store_session_get(struct store *st, const char *hash, struct store_session *out, char **errp)
{
    sqlite3_stmt *s = db_bound(&st->db, Q_SESSION_GET, errp, "s", hash);
    int rc;

    memset(out, 0, sizeof(*out));
    if (s == NULL) {
        return -1;
    }
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        out->user_id = sqlite3_column_int64(s, 0);
        col_copy(s, 1, out->csrf, sizeof(out->csrf));
        out->created = sqlite3_column_int64(s, 2);
        out->last_seen = sqlite3_column_int64(s, 3);
        stmt_done(s);
        return 1;
    }
    if (rc != SQLITE_DONE) {
        db_fail(&st->db, errp, "session get");
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    return 0;
}

int
store_session_touch(struct store *st, const char *hash, int64_t now, char **errp)
{
    return db_change(&st->db, Q_SESSION_TOUCH, "session touch", errp, "si", hash, now) < 0 ? -1 : 0;
}

int
store_session_delete(struct store *st, const char *hash, char **errp)
{
    return db_change(&st->db, Q_SESSION_DEL, "session delete", errp, "s", hash) < 0 ? -1 : 0;
}

int
store_session_delete_user(struct store *st, int64_t user_id, char **errp)
{
    return db_change(&st->db, Q_SESSION_DEL_USER, "session delete", errp, "i", user_id) < 0 ? -1
                                                                                            : 0;
}

int
store_session_purge(struct store *st, int64_t seen_before, int64_t created_before, char **errp)
{
    return db_change(&st->db, Q_SESSION_PURGE, "session purge", errp, "ii", seen_before,
                     created_before);
}

int
store_token_add(struct store *st, int64_t user_id, const char *name, const char *hash,
                int64_t expires, int64_t *id, char **errp)
{
    if (name == NULL || strlen(name) >= sizeof(((struct store_token *)0)->name)) {
        return kg_err(errp, "token name: at most %zu bytes",
                      sizeof(((struct store_token *)0)->name) - 1);
    }
    if (db_change(&st->db, Q_TOKEN_ADD, "token add", errp, "issiz", user_id, name, hash,
                  util_now_ms(), expires) < 0) {
        return -1;
    }
    *id = sqlite3_last_insert_rowid(st->db.h);
    return 0;
}

static void
token_from_row(sqlite3_stmt *s, struct store_token *t)
{
    memset(t, 0, sizeof(*t));
    t->id = sqlite3_column_int64(s, 0);
    t->user_id = sqlite3_column_int64(s, 1);
    col_copy(s, 2, t->name, sizeof(t->name));
    t->created = sqlite3_column_int64(s, 3);
    t->expires = sqlite3_column_int64(s, 4);
    t->revoked = sqlite3_column_int64(s, 5);
    t->last_used = sqlite3_column_int64(s, 6);
}

int
store_token_find(struct store *st, const char *hash, struct store_token *out, char **errp)
{
    sqlite3_stmt *s = db_bound(&st->db, Q_TOKEN_FIND, errp, "s", hash);
    int rc;

    memset(out, 0, sizeof(*out));
    if (s == NULL) {
        return -1;
    }
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        token_from_row(s, out);
        stmt_done(s);
        return 1;
    }
    if (rc != SQLITE_DONE) {
        db_fail(&st->db, errp, "token find");
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    return 0;
}

static void
token_fill(sqlite3_stmt *s, void *e)
{
    token_from_row(s, e);
}

int
store_token_list(struct store *st, int64_t user_id, struct store_token **out, size_t *n,
                 char **errp)
{
    void *v = NULL;
    int rc = db_list(&st->db, Q_TOKEN_LIST, "token list", sizeof(**out), token_fill, NULL, &v, n,
                     errp, "i", user_id);

    *out = v;
    return rc;
}

int
store_token_revoke(struct store *st, int64_t user_id, int64_t id, char **errp)
{
    int n =
        db_change(&st->db, Q_TOKEN_REVOKE, "token revoke", errp, "iii", user_id, id, util_now_ms());

    return n < 0 ? -1 : n > 0;
}

int
store_token_used(struct store *st, int64_t id, int64_t now, char **errp)
{
    return db_change(&st->db, Q_TOKEN_USED, "token used", errp, "ii", id, now) < 0 ? -1 : 0;
}

int
store_allow_add(struct store *st, const char *tenant, const char *cidr, char **errp)
{
    if (strlen(tenant) >= 64 || strlen(cidr) >= 64) {
        return kg_err(errp, "allow-list entry too long");
    }
    return db_change(&st->db, Q_ALLOW_ADD, "allow add", errp, "ss", tenant, cidr) < 0 ? -1 : 0;
}

int
store_allow_remove(struct store *st, const char *tenant, const char *cidr, char **errp)
{
    int n = db_change(&st->db, Q_ALLOW_DEL, "allow remove", errp, "ss", tenant, cidr);

    return n < 0 ? -1 : n > 0;
}

static void
allow_fill(sqlite3_stmt *s, void *e)
{
    struct store_allow *a = e;

    col_copy(s, 0, a->tenant, sizeof(a->tenant));
    col_copy(s, 1, a->cidr, sizeof(a->cidr));
}

int
store_allow_list(struct store *st, struct store_allow **out, size_t *n, char **errp)
{
    void *v = NULL;
    int rc = db_list(&st->db, Q_ALLOW_LIST, "allow list", sizeof(**out), allow_fill, NULL, &v, n,
                     errp, "");

    *out = v;
    return rc;
}

int
store_audit_add(struct store *st, const struct store_audit *a, char **errp)
{
    return db_change(&st->db, Q_AUDIT_ADD, "audit add", errp, "isssssss",
                     a->time > 0 ? a->time : util_now_ms(), a->tenant, a->actor, a->action,
                     a->target, a->outcome, a->address, a->detail) < 0
               ? -1
               : 0;
}

void
store_audits_free(struct store_audit *a, size_t n)
{
    if (a == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free(a[i].tenant);
        free(a[i].actor);
        free(a[i].action);
        free(a[i].target);
        free(a[i].outcome);
        free(a[i].address);
        free(a[i].detail);
    }
    free(a);
}

static void
audit_fill(sqlite3_stmt *s, void *e)
{
    struct store_audit *a = e;

    a->id = sqlite3_column_int64(s, 0);
    a->time = sqlite3_column_int64(s, 1);
    a->tenant = col_strdup(s, 2);
    a->actor = col_strdup(s, 3);
    a->action = col_strdup(s, 4);
    a->target = col_strdup(s, 5);
    a->outcome = col_strdup(s, 6);
    a->address = col_strdup(s, 7);
    a->detail = col_strdup(s, 8);
}

static void
audit_drop(void *v, size_t n)
{
    store_audits_free(v, n);
}

int
store_audit_list(struct store *st, const char *tenant, int64_t before, int limit,
                 struct store_audit **out, size_t *n, char **errp)
{
    sqlite3_stmt *s;
    void *v = NULL;
    int rc;

    *out = NULL;
    *n = 0;
    if (limit <= 0) {
        limit = STORE_RUN_LIST_DEFAULT;
    }
    if (before <= 0) {
        before = INT64_MAX;
    }
    s = tenant == NULL
            ? db_bound(&st->db, Q_AUDIT_LIST, errp, "ii", before, (int64_t)limit)
            : db_bound(&st->db, Q_AUDIT_LIST_TENANT, errp, "iis", before, (int64_t)limit, tenant);
    if (s == NULL) {
        return -1;
    }
    rc = db_rows(&st->db, s, "audit list", sizeof(**out), audit_fill, audit_drop, &v, n, errp);
    stmt_done(s);
    *out = v;
    return rc;
}

/* ---- approvals (tenant databases) ---- */

void
store_approval_free(struct store_approval *a)
{
    if (a == NULL) {
        return;
    }
    free(a->title);
    free(a->detail);
    free(a->effects);
    free(a->requester);
    memset(a, 0, sizeof(*a));
}

void
store_approvals_free(struct store_approval *a, size_t n)
{
    if (a == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        store_approval_free(&a[i]);
    }
    free(a);
}

static void
approval_from_row(sqlite3_stmt *s, struct store_approval *a)
{
    memset(a, 0, sizeof(*a));
    a->id = sqlite3_column_int64(s, 0);
    a->run_id = sqlite3_column_int64(s, 1);
    a->created = sqlite3_column_int64(s, 2);
    a->title = col_strdup(s, 3);
    a->detail = col_strdup(s, 4);
    a->effects = col_strdup(s, 5);
    col_copy(s, 6, a->role, sizeof(a->role));
    a->approvers = sqlite3_column_int(s, 7);
    a->deadline = sqlite3_column_int64(s, 8);
    col_copy(s, 9, a->default_decision, sizeof(a->default_decision));
    a->requester = col_strdup(s, 10);
    col_copy(s, 11, a->state, sizeof(a->state));
    a->decided = sqlite3_column_int64(s, 12);
}

int
store_approval_add(struct store_tenant *t, const struct store_approval *a, int64_t *id, char **errp)
{
    if (!db_in_tx(&t->db)) {
        return kg_err(errp, "approval add: no open transaction");
    }
    if (db_change(&t->db, Q_APPROVAL_ADD, "approval add", errp, "iissssiiss", a->run_id, a->created,
                  a->title, a->detail, a->effects ? a->effects : "[]", a->role,
                  (int64_t)a->approvers, a->deadline, a->default_decision, a->requester) < 0) {
        return -1;
    }
    *id = sqlite3_last_insert_rowid(t->db.h);
    return 0;
}

static void
approval_fill(sqlite3_stmt *s, void *e)
{
    approval_from_row(s, e);
}

static int
approval_one(struct db *d, sqlite3_stmt *s, struct store_approval *out, char **errp)
{
    return db_row_one(d, s, "approval get", out, sizeof(*out), approval_fill, errp);
}

int
store_approval_find(struct store_tenant *t, int64_t run_id, int64_t created,
                    struct store_approval *out, char **errp)
{
    sqlite3_stmt *s = db_bound(&t->db, Q_APPROVAL_FIND, errp, "ii", run_id, created);

    memset(out, 0, sizeof(*out));
    return s == NULL ? -1 : approval_one(&t->db, s, out, errp);
}

int
store_approval_get(struct store_tenant *t, int64_t id, struct store_approval *out, char **errp)
{
    sqlite3_stmt *s = db_bound(&t->db, Q_APPROVAL_GET, errp, "i", id);

    memset(out, 0, sizeof(*out));
    return s == NULL ? -1 : approval_one(&t->db, s, out, errp);
}

static void
approval_drop(void *v, size_t n)
{
    store_approvals_free(v, n);
}

int
store_approval_list(struct store_tenant *t, const char *state, int limit,
                    struct store_approval **out, size_t *n, char **errp)
{
    sqlite3_stmt *s;
    void *v = NULL;
    int rc;

    *out = NULL;
    *n = 0;
    if (limit <= 0) {
        limit = STORE_RUN_LIST_DEFAULT;
    }
    s = state ? db_bound(&t->db, Q_APPROVAL_LIST_STATE, errp, "is", (int64_t)limit, state)
              : db_bound(&t->db, Q_APPROVAL_LIST, errp, "i", (int64_t)limit);
    if (s == NULL) {
        return -1;
    }
    rc = db_rows(&t->db, s, "approval list", sizeof(**out), approval_fill, approval_drop, &v, n,
                 errp);
    stmt_done(s);
    *out = v;
    return rc;
}

int
store_approval_decide(struct store_tenant *t, int64_t id, const char *state, int64_t at,
                      char **errp)
{
    int n;

    if (!db_in_tx(&t->db)) {
        return kg_err(errp, "approval decide: no open transaction");
    }
    n = db_change(&t->db, Q_APPROVAL_DECIDE, "approval decide", errp, "isi", id, state, at);
    return n < 0 ? -1 : n > 0;
}

int
store_approval_vote(struct store_tenant *t, int64_t id, const char *user, const char *decision,
                    const char *comment, int64_t at, char **errp)
{
    sqlite3_stmt *s;
    int rc;

    if (!db_in_tx(&t->db)) {
        return kg_err(errp, "approval vote: no open transaction");
    }
    s = db_bound(&t->db, Q_VOTE_ADD, errp, "isssi", id, user, decision, comment, at);
    if (s == NULL) {
        return -1;
    }
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
        if (sqlite3_extended_errcode(t->db.h) == SQLITE_CONSTRAINT_PRIMARYKEY) {
            kg_err(errp, "%s has decided on this approval already", user);
        } else {
            db_fail(&t->db, errp, "approval vote");
        }
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    return 0;
}

static void
vote_fill(sqlite3_stmt *s, void *e)
{
    struct store_vote *v = e;

    col_copy(s, 0, v->user, sizeof(v->user));
    col_copy(s, 1, v->decision, sizeof(v->decision));
    v->comment = col_strdup(s, 2);
    v->at = sqlite3_column_int64(s, 3);
}

static void
vote_drop(void *v, size_t n)
{
    store_votes_free(v, n);
}

int
store_approval_votes(struct store_tenant *t, int64_t id, struct store_vote **out, size_t *n,
                     char **errp)
{
    void *v = NULL;
    int rc = db_list(&t->db, Q_VOTES_GET, "approval votes", sizeof(**out), vote_fill, vote_drop, &v,
                     n, errp, "i", id);

    *out = v;
    return rc;
}

void
store_votes_free(struct store_vote *v, size_t n)
{
    if (v == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free(v[i].comment);
    }
    free(v);
}

/* ---- a run's requester ----
 *
 * Prepared per call: a run is started by a person rarely. */

int
store_run_set_requester(struct store_tenant *t, int64_t id, const char *requester, char **errp)
{
    sqlite3_stmt *s = NULL;
    int rc;

    if (sqlite3_prepare_v2(t->db.h, "UPDATE runs SET requester = ?2 WHERE id = ?1", -1, &s, NULL) !=
        SQLITE_OK) {
        return db_fail(&t->db, errp, "run requester");
    }
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_text(s, 2, requester, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE || sqlite3_changes(t->db.h) != 1) {
        return kg_err(errp, "run %lld: requester not recorded: %s", (long long)id,
                      sqlite3_errmsg(t->db.h));
    }
    return 0;
}

int
store_run_requester(struct store_tenant *t, int64_t id, char **out, char **errp)
{
    sqlite3_stmt *s = NULL;
    int rc;

    *out = NULL;
    if (sqlite3_prepare_v2(t->db.h, "SELECT requester FROM runs WHERE id = ?1", -1, &s, NULL) !=
        SQLITE_OK) {
        return db_fail(&t->db, errp, "run requester");
    }
    sqlite3_bind_int64(s, 1, id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *out = col_strdup(s, 0);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = db_fail(&t->db, errp, "run %lld requester", (long long)id);
    }
    sqlite3_finalize(s);
    return rc;
}

/* ---- escalations ----
 *
 * Prepared per call (they are rare: a few per incident) rather than in the cached
 * statement table. */

static sqlite3_stmt *
esc_prepare(struct store_tenant *t, const char *sql, char **errp)
{
    sqlite3_stmt *s = NULL;

    if (sqlite3_prepare_v2(t->db.h, sql, -1, &s, NULL) != SQLITE_OK) {
        db_fail(&t->db, errp, "escalations");
        return NULL;
    }
    return s;
}

int
store_esc_insert(struct store_tenant *t, const struct store_esc *e, int64_t *id, char **errp)
{
    sqlite3_stmt *s = esc_prepare(t,
                                  "INSERT INTO escalations (run_id, level, reason, subject,"
                                  " contacts, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                                  errp);
    int rc = -1;

    if (s == NULL) {
        return -1;
    }
    sqlite3_bind_int64(s, 1, e->run_id);
    sqlite3_bind_text(s, 2, e->level, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, e->reason, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 4, e->subject, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 5, e->contacts);
    sqlite3_bind_int64(s, 6, e->created_ms);
    if (sqlite3_step(s) == SQLITE_DONE) {
        *id = sqlite3_last_insert_rowid(t->db.h);
        rc = 0;
    } else {
        db_fail(&t->db, errp, "escalation insert");
    }
    sqlite3_finalize(s);
    return rc;
}

#define ESC_COLUMNS                                                                                \
    "id, run_id, level, reason, subject, contacts, reached, state, created,"                       \
    " coalesce(reached_at, 0), coalesce(acked, 0), acked_by, acked_via"

static void
esc_row(sqlite3_stmt *s, struct store_esc *e)
{
    memset(e, 0, sizeof(*e));
    e->id = sqlite3_column_int64(s, 0);
    e->run_id = sqlite3_column_int64(s, 1);
    e->level = col_strdup(s, 2);
    e->reason = col_strdup(s, 3);
    e->subject = col_strdup(s, 4);
    e->contacts = sqlite3_column_int(s, 5);
    e->reached = sqlite3_column_int(s, 6);
    snprintf(e->state, sizeof(e->state), "%s", (const char *)sqlite3_column_text(s, 7));
    e->created_ms = sqlite3_column_int64(s, 8);
    e->reached_ms = sqlite3_column_int64(s, 9);
    e->acked_ms = sqlite3_column_int64(s, 10);
    e->acked_by = col_strdup(s, 11);
    e->acked_via = col_strdup(s, 12);
}

void
store_esc_free(struct store_esc *e)
{
    if (e == NULL) {
        return;
    }
    free(e->level);
    free(e->reason);
    free(e->subject);
    free(e->acked_by);
    free(e->acked_via);
}

int
store_esc_get(struct store_tenant *t, int64_t id, struct store_esc *out, char **errp)
{
    sqlite3_stmt *s = esc_prepare(t, "SELECT " ESC_COLUMNS " FROM escalations WHERE id = ?1", errp);
    int rc;

    if (s == NULL) {
        return -1;
    }
    sqlite3_bind_int64(s, 1, id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        esc_row(s, out);
        rc = 1;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        db_fail(&t->db, errp, "escalation %lld", (long long)id);
        rc = -1;
    }
    sqlite3_finalize(s);
    return rc;
}

static void
esc_fill(sqlite3_stmt *s, void *e)
{
    esc_row(s, e);
}

static void
esc_drop(void *v, size_t n)
{
    struct store_esc *e = v;

    for (size_t i = 0; i < n; i++) {
        store_esc_free(&e[i]);
    }
    free(e);
}

int
store_esc_list(struct store_tenant *t, int limit, struct store_esc **out, size_t *n, char **errp)
{
    sqlite3_stmt *s =
        esc_prepare(t, "SELECT " ESC_COLUMNS " FROM escalations ORDER BY id DESC LIMIT ?1", errp);
    void *v = NULL;
    int rc;

    *out = NULL;
    *n = 0;
    if (s == NULL) {
        return -1;
    }
    sqlite3_bind_int(s, 1, limit);
    rc = db_rows(&t->db, s, "escalation list", sizeof(**out), esc_fill, esc_drop, &v, n, errp);
    sqlite3_finalize(s);
    *out = v;
    return rc;
}

int
store_esc_open(struct store_tenant *t, int limit, struct store_esc **out, size_t *n, char **errp)
{
    sqlite3_stmt *s = esc_prepare(
        t, "SELECT " ESC_COLUMNS " FROM escalations WHERE state = 'open' ORDER BY id LIMIT ?1",
        errp);
    void *v = NULL;
    int rc;

    *out = NULL;
    *n = 0;
    if (s == NULL) {
        return -1;
    }
    sqlite3_bind_int(s, 1, limit);
    rc = db_rows(&t->db, s, "open escalations", sizeof(**out), esc_fill, esc_drop, &v, n, errp);
    sqlite3_finalize(s);
    *out = v;
    return rc;
}

/* Shared by the two updates: 1 when the row changed, 0 when it did not, -1 on error. */
static int
esc_update(struct store_tenant *t, sqlite3_stmt *s, char **errp)
{
    int rc;

    if (s == NULL) {
        return -1;
    }
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
        return kg_err(errp, "escalation update: %s", sqlite3_errmsg(t->db.h));
    }
    return sqlite3_changes(t->db.h) > 0;
}

int
store_esc_ack(struct store_tenant *t, int64_t id, const char *by, const char *via, int64_t at_ms,
              char **errp)
{
    sqlite3_stmt *s = esc_prepare(t,
                                  "UPDATE escalations SET state = 'acked', acked = ?2,"
                                  " acked_by = ?3, acked_via = ?4"
                                  " WHERE id = ?1 AND acked IS NULL",
                                  errp);

    if (s != NULL) {
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int64(s, 2, at_ms);
        sqlite3_bind_text(s, 3, by, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 4, via, -1, SQLITE_TRANSIENT);
    }
    return esc_update(t, s, errp);
}

int
store_esc_reached(struct store_tenant *t, int64_t id, int contact, int64_t at_ms, int exhausted,
                  char **errp)
{
    sqlite3_stmt *s = esc_prepare(t,
                                  "UPDATE escalations SET reached = max(reached, ?2),"
                                  " reached_at = ?3, state = CASE WHEN ?4 AND state = 'open'"
                                  " THEN 'exhausted' ELSE state END WHERE id = ?1",
                                  errp);

    if (s != NULL) {
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int(s, 2, contact);
        sqlite3_bind_int64(s, 3, at_ms);
        sqlite3_bind_int(s, 4, exhausted);
    }
    return esc_update(t, s, errp);
}

/* ---- the playbook view ---- */

void
store_deploys_free(struct store_deploy *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++) {
        free(v[i].name);
        free(v[i].by);
    }
    free(v);
}

static void
deploy_fill(sqlite3_stmt *s, void *e)
{
    struct store_deploy *d = e;
    const char *version = (const char *)sqlite3_column_text(s, 2);
    const char *via = (const char *)sqlite3_column_text(s, 5);

    d->id = sqlite3_column_int64(s, 0);
    d->name = col_strdup(s, 1);
    snprintf(d->version, sizeof(d->version), "%s", version ? version : "");
    d->deployed_ms = sqlite3_column_int64(s, 3);
    d->by = col_strdup(s, 4);
    snprintf(d->via, sizeof(d->via), "%s", via ? via : "");
}

static void
deploy_drop(void *v, size_t n)
{
    store_deploys_free(v, n);
}

int
store_deploy_record(struct store_tenant *t, const char *name, const char *version, int64_t when_ms,
                    const char *by, const char *via, char **errp)
{
    struct store_deploy last;
    sqlite3_stmt *s;
    int found;

    if (name == NULL || version == NULL || via == NULL) {
        return kg_err(errp, "deploy record: missing name, version or via");
    }
    if ((s = db_stmt(&t->db, Q_DEPLOY_LATEST, errp)) == NULL) {
        return -1;
    }
    bind_text(s, 1, name);
    found = db_row_one(&t->db, s, "deploy latest", &last, sizeof(last), deploy_fill, errp);
    if (found == -1) {
        return -1;
    }
    if (found == 1 && strcmp(last.version, version) == 0) {
        int fill = by != NULL && last.by == NULL;

        free(last.name);
        free(last.by);
        if (!fill) {
            return 0;
        }
        if ((s = db_stmt(&t->db, Q_DEPLOY_SET_BY, errp)) == NULL) {
            return -1;
        }
        sqlite3_bind_int64(s, 1, last.id);
        bind_text(s, 2, by);
        bind_text(s, 3, via);
        return stmt_run(&t->db, s, "deploy set by", errp) == -1 ? -1 : 1;
    }
    if (found == 1) {
        free(last.name);
        free(last.by);
    }
    if ((s = db_stmt(&t->db, Q_DEPLOY_ADD, errp)) == NULL) {
        return -1;
    }
    bind_text(s, 1, name);
    bind_text(s, 2, version);
    sqlite3_bind_int64(s, 3, when_ms);
    bind_text(s, 4, by);
    bind_text(s, 5, via);
    return stmt_run(&t->db, s, "deploy add", errp) == -1 ? -1 : 1;
}

int
store_deploy_list(struct store_tenant *t, const char *name, int limit, struct store_deploy **out,
                  size_t *n, char **errp)
{
    sqlite3_stmt *s;
    void *v = NULL;
    int rc;

    *out = NULL;
    *n = 0;
    if ((s = db_stmt(&t->db, name != NULL ? Q_DEPLOY_LIST : Q_DEPLOY_LIST_LATEST, errp)) == NULL) {
        return -1;
    }
    if (name != NULL) {
        bind_text(s, 1, name);
        sqlite3_bind_int(s, 2, limit > 0 ? limit : STORE_RUN_LIST_DEFAULT);
    } else {
        sqlite3_bind_int(s, 1, limit > 0 ? limit : STORE_RUN_LIST_DEFAULT);
    }
    rc = db_rows(&t->db, s, "deploy list", sizeof(**out), deploy_fill, deploy_drop, &v, n, errp);
    stmt_done(s);
    *out = v;
    return rc;
}

int
store_switch_get(struct store_tenant *t, const char *name, int *on, int64_t *changed_ms, char **by,
                 char **errp)
{
    sqlite3_stmt *s;
    int rc;

    *on = 0;
    if (changed_ms != NULL) {
        *changed_ms = 0;
    }
    if (by != NULL) {
        *by = NULL;
    }
    if ((s = db_stmt(&t->db, Q_SWITCH_GET, errp)) == NULL) {
        return -1;
    }
    bind_text(s, 1, name);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *on = sqlite3_column_int(s, 0) != 0;
        if (changed_ms != NULL) {
            *changed_ms = sqlite3_column_int64(s, 1);
        }
        if (by != NULL) {
            *by = col_strdup(s, 2);
        }
        stmt_done(s);
        return 1;
    }
    if (rc != SQLITE_DONE) {
        db_fail(&t->db, errp, "switch get %s", name);
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    return 0;
}

int
store_switch_set(struct store_tenant *t, const char *name, int on, int64_t when_ms, const char *by,
                 char **errp)
{
    sqlite3_stmt *s;

    if ((s = db_stmt(&t->db, on < 0 ? Q_SWITCH_CLEAR : Q_SWITCH_SET, errp)) == NULL) {
        return -1;
    }
    bind_text(s, 1, name);
    if (on >= 0) {
        sqlite3_bind_int(s, 2, on != 0);
        sqlite3_bind_int64(s, 3, when_ms);
        bind_text(s, 4, by ? by : "");
    }
    return stmt_run(&t->db, s, "switch set", errp);
}

int
store_run_set_dry_run(struct store_tenant *t, int64_t id, int on, char **errp)
{
    sqlite3_stmt *s;

    if ((s = db_stmt(&t->db, Q_RUN_SET_DRY, errp)) == NULL) {
        return -1;
    }
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int(s, 2, on != 0);
    return stmt_run(&t->db, s, "run set dry run", errp);
}

/* One count row of q with text ?1 and, when text2 is set, text ?2, else integer ?2. */
static int
count_one(struct store_tenant *t, enum query q, const char *text, const char *text2, int64_t since,
          int64_t *count, char **errp)
{
    sqlite3_stmt *s;
    int rc;

    *count = 0;
    if ((s = db_stmt(&t->db, q, errp)) == NULL) {
        return -1;
    }
    bind_text(s, 1, text);
    if (text2 != NULL) {
        bind_text(s, 2, text2);
    } else {
        sqlite3_bind_int64(s, 2, since);
    }
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *count = sqlite3_column_int64(s, 0);
    } else {
        db_fail(&t->db, errp, "run count");
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    return 0;
}

int
store_run_count_playbook(struct store_tenant *t, const char *name, int64_t since_ms, int64_t *count,
                         char **errp)
{
    return count_one(t, Q_RUN_COUNT_PLAYBOOK, name, NULL, since_ms > 0 ? since_ms : 0, count, errp);
}

int
store_run_count_version(struct store_tenant *t, const char *name, const char *version,
                        int64_t *count, char **errp)
{
    return count_one(t, Q_RUN_COUNT_VERSION, name, version, 0, count, errp);
}

int
store_run_by_version(struct store_tenant *t, const char *version, int64_t before, int limit,
                     struct store_run **out, size_t *n, char **errp)
{
    sqlite3_stmt *s;

    *out = NULL;
    *n = 0;
    if ((s = db_stmt(&t->db, Q_RUN_BY_VERSION, errp)) == NULL) {
        return -1;
    }
    bind_text(s, 1, version);
    sqlite3_bind_int64(s, 2, before > 0 ? before : INT64_MAX);
    sqlite3_bind_int(s, 3, limit > 0 ? limit : STORE_RUN_LIST_DEFAULT);
    return run_collect(&t->db, s, "run by version", out, n, errp);
}

/* ---- the portal's dashboard: containment in force ---- */

static void
list_entry_fill(sqlite3_stmt *s, void *e)
{
    struct store_list_entry *x = e;

    col_copy(s, 0, x->list, sizeof(x->list));
    x->value = col_strdup(s, 1);
    x->expires_ms = sqlite3_column_int64(s, 2);
    x->updated_ms = sqlite3_column_int64(s, 3);
}

static void
list_entries_drop(void *v, size_t n)
{
    store_list_entries_free(v, n);
}

void
store_list_entries_free(struct store_list_entry *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++) {
        free(v[i].value);
    }
    free(v);
}

int
store_list_live(struct store_tenant *t, int64_t now_ms, int limit, struct store_list_entry **out,
                size_t *n, char **errp)
{
    void *v = NULL;
    int rc = db_list(&t->db, Q_LIST_LIVE, "live list entries", sizeof(**out), list_entry_fill,
                     list_entries_drop, &v, n, errp, "ii", now_ms, (int64_t)limit);

    *out = v;
    return rc;
}

static void
effect_row_fill(sqlite3_stmt *s, void *e)
{
    struct store_effect_row *x = e;

    x->run_id = sqlite3_column_int64(s, 0);
    col_copy(s, 1, x->kind, sizeof(x->kind));
    x->request = col_strdup(s, 2);
    x->result = col_strdup(s, 3);
    x->ended_ms = sqlite3_column_int64(s, 4);
    x->started_ms = sqlite3_column_int64(s, 5);
}

static void
effect_rows_drop(void *v, size_t n)
{
    store_effect_rows_free(v, n);
}

void
store_effect_rows_free(struct store_effect_row *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++) {
        free(v[i].request);
        free(v[i].result);
    }
    free(v);
}

int
store_effects_by_kind(struct store_tenant *t, const char *kind, int limit,
                      struct store_effect_row **out, size_t *n, char **errp)
{
    void *v = NULL;
    int rc = db_list(&t->db, Q_JOURNAL_BY_KIND, "effects by kind", sizeof(**out), effect_row_fill,
                     effect_rows_drop, &v, n, errp, "si", kind, (int64_t)limit);

    *out = v;
    return rc;
}

/* ---- tenant settings edited in the portal ---- */

int
store_setting_get(struct store_tenant *t, const char *key, char **value, int64_t *updated_ms,
                  char **updated_by, char **errp)
{
    sqlite3_stmt *s = db_bound(&t->db, Q_SETTING_GET, errp, "s", key);
    int rc;

    *value = NULL;
    if (updated_ms != NULL) {
        *updated_ms = 0;
    }
    if (updated_by != NULL) {
        *updated_by = NULL;
    }
    if (s == NULL) {
        return -1;
    }
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *value = col_strdup(s, 0);
        if (updated_ms != NULL) {
            *updated_ms = sqlite3_column_int64(s, 1);
        }
        if (updated_by != NULL) {
            *updated_by = col_strdup(s, 2);
        }
        stmt_done(s);
        return *value != NULL;
    }
    if (rc != SQLITE_DONE) {
        db_fail(&t->db, errp, "setting get");
        stmt_done(s);
        return -1;
    }
    stmt_done(s);
    return 0;
}

int
store_setting_put(struct store_tenant *t, const char *key, const char *value, int64_t now_ms,
                  const char *by, char **errp)
{
    return db_change(&t->db, Q_SETTING_PUT, "setting put", errp, "ssis", key, value, now_ms, by) ==
                   -1
               ? -1
               : 0;
}

int
store_setting_del(struct store_tenant *t, const char *key, char **errp)
{
    return db_change(&t->db, Q_SETTING_DEL, "setting delete", errp, "s", key);
}

/* ---- one-time passwords (a password to change at the first login) ---- */

int
store_password_change_set(struct store *st, int64_t user_id, int64_t now_ms, char **errp)
{
    return db_change(&st->db, Q_PWCHANGE_SET, "password change set", errp, "ii", user_id, now_ms) ==
                   -1
               ? -1
               : 0;
}

int
store_password_change_due(struct store *st, int64_t user_id, char **errp)
{
    sqlite3_stmt *s = db_bound(&st->db, Q_PWCHANGE_GET, errp, "i", user_id);
    int rc;

    if (s == NULL) {
        return -1;
    }
    rc = sqlite3_step(s);
    stmt_done(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        return kg_err(errp, "password change: %s", sqlite3_errmsg(st->db.h));
    }
    return rc == SQLITE_ROW;
}

int
store_password_change_done(struct store *st, int64_t user_id, const char *pass_hash, char **errp)
{
    if (store_user_set_password(st, user_id, pass_hash, errp) == -1) {
        return -1;
    }
    return db_change(&st->db, Q_PWCHANGE_DONE, "password change done", errp, "i", user_id) == -1
               ? -1
               : 0;
}

int
store_run_effects(struct store_tenant *t, int64_t run_id, const char *prefix,
                  struct store_effect_row **out, size_t *n, char **errp)
{
    void *v = NULL;
    int rc = db_list(&t->db, Q_JOURNAL_RUN_PREFIX, "run effects", sizeof(**out), effect_row_fill,
                     effect_rows_drop, &v, n, errp, "is", run_id, prefix);

    *out = v;
    return rc;
}
