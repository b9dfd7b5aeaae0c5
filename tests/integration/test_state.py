"""Playbook memory (state.*) and alerts.recent in the daemon: a replay after kill -9
returns the journaled results (a counter is not counted twice), and each tenant sees
only its own memory and its own alerts."""

import re
import time

from harness import Daemon, check, expect_accepted, playbook

COUNTER = playbook("counter", "it.counter", '''    local n = state.incr("seen:" .. alert:observable("user"), { window = "1h" })
    state.put("last", { n = n, title = alert.title })
    log.info("count " .. n)
    sleep(2)
    log.info("after " .. n .. " " .. json.encode(state.get("last")))''')


def kv(d, key, tenant=None):
    rows = d.query("SELECT value FROM kv WHERE key = ?", (key,), tenant=tenant)
    return rows[0][0] if rows else None


def test_incr_replay_after_kill9():
    """A run that counted (state.incr) and parked in sleep is killed with kill -9: after
    the restart it replays, its incr returns the recorded 1 without counting again, and
    the next alert counts 2."""
    with Daemon("state-kill9") as d:
        d.write_playbook("counter.lua", COUNTER)
        d.start()
        user = [{"type": "user", "value": "alice@example.jp"}]
        aid = expect_accepted(d.post({"source": "it.counter", "source_id": "c-1", "title": "one",
                                      "observables": user}), 1)[0]
        run = d.wait_run_state(aid, "waiting", timeout=10)
        j = d.db_journal(run["id"])
        check([e["kind"] for e in j] == ["state.incr", "state.put", "log", "sleep"],
              "journal while sleeping: %r" % j)
        check(j[0]["result"] == 1, "first incr: %r" % j[0])
        check(kv(d, "seen:alice@example.jp") == "1", "stored count before the kill")
        d.kill9()
        d.restart()
        run = d.wait_run_final(aid, timeout=15)
        check(run["state"] == "done", "run after restart: %r" % run)
        j = d.db_journal(run["id"])
        check([e["kind"] for e in j] == ["state.incr", "state.put", "log", "sleep", "state.get",
                                         "log"], "journal after the replay: %r" % j)
        check(j[5]["request"]["msg"] == 'after 1 {"n":1,"title":"one"}',
              "the replayed run saw count 1: %r" % j[5])
        check(kv(d, "seen:alice@example.jp") == "1", "the replay counted again: %r"
              % kv(d, "seen:alice@example.jp"))
        aid2 = expect_accepted(d.post({"source": "it.counter", "source_id": "c-2", "title": "two",
                                       "observables": user}), 1)[0]
        run2 = d.wait_run_final(aid2, timeout=15)
        j2 = d.db_journal(run2["id"])
        check(run2["state"] == "done" and j2[0]["result"] == 2, "second alert: %r %r" % (run2, j2))
        check(kv(d, "seen:alice@example.jp") == "2", "count after the second alert")
        d.stop()
test_incr_replay_after_kill9.TIMEOUT = 90


SEPARATE = playbook("separate", "it.sep", '''    local before = state.get("owner")
    state.put("owner", alert.title)
    local earlier = alerts.recent { observable = "shared@example.jp", since = "1h" }
    local titles = {}
    for _, a in ipairs(earlier) do titles[#titles + 1] = a.title end
    log.info("before=" .. tostring(before) .. " earlier=" .. table.concat(titles, ","))''')


def test_tenants_are_separate():
    """Two tenants run the same playbook on alerts about the same user: each reads only
    its own state and finds only its own earlier alerts."""
    with Daemon("state-tenants") as d:
        d.add_tenant("t2")
        d.write_playbook("separate.lua", SEPARATE)
        d.start()
        obs = [{"type": "user", "value": "shared@example.jp"}]

        def post(tenant, sid, title):
            aid = expect_accepted(d.post({"source": "it.sep", "source_id": sid, "title": title,
                                          "observables": obs}, tenant=tenant), 1)[0]
            run = d.wait_run_final(aid, timeout=15, tenant=tenant)
            check(run["state"] == "done", "run: %r" % run)
            j = d.db_journal(run["id"], tenant=tenant)
            return [e for e in j if e["kind"] == "log"][0]["request"]["msg"]

        check(post("t1", "a", "t1-first") == "before=nil earlier=", "t1 first")
        check(post("t1", "b", "t1-second") == "before=t1-first earlier=t1-first", "t1 second")
        msg = post("t2", "a", "t2-first")
        check(msg == "before=nil earlier=", "t2 saw t1's memory or alerts: %r" % msg)
        msg = post("t2", "b", "t2-second")
        check(msg == "before=t2-first earlier=t2-first", "t2 second: %r" % msg)
        msg = post("t1", "c", "t1-third")
        check(msg == "before=t1-second earlier=t1-second,t1-first", "t1 third: %r" % msg)
        check(kv(d, "owner", tenant="t1") == '"t1-third"', "t1's value")
        check(kv(d, "owner", tenant="t2") == '"t2-second"', "t2's value")
        d.stop()
test_tenants_are_separate.TIMEOUT = 90


PRUNE = playbook("prune", "it.prune", '''    for i = 1, 40 do
        state.put("tmp" .. i, i, { ttl = 1 })
    end
    sleep(1.2)
    state.put("keep", true)''')


def test_expired_entries_pruned():
    """Entries whose ttl has passed are deleted by later writes, a bounded number per
    write (here 40 expired entries, 32 per write): none is read after its expiry."""
    with Daemon("state-prune") as d:
        d.write_playbook("prune.lua", PRUNE)
        d.start()
        aid = expect_accepted(d.post({"source": "it.prune", "source_id": "p1"}), 1)[0]
        run = d.wait_run_final(aid, timeout=15)
        check(run["state"] == "done", "run: %r" % run)
        n = d.query("SELECT count(*) FROM kv")[0][0]
        check(n == 40 + 1 - 32, "entries after one pruning write: %d" % n)
        aid = expect_accepted(d.post({"source": "it.prune", "source_id": "p2"}), 1)[0]
        run = d.wait_run_final(aid, timeout=15)
        time.sleep(0.1)
        left = d.query("SELECT count(*) FROM kv WHERE expires <= ?",
                       (int(time.time() * 1000),))[0][0]
        check(left <= 40, "expired entries left: %d" % left)
        d.stop()
test_expired_entries_pruned.TIMEOUT = 60


def test_state_cli():
    """`kagari state list` shows a tenant's live entries (escaped for the terminal) and
    `kagari state delete` resets one while the daemon runs: the next run counts from 1."""
    with Daemon("state-cli") as d:
        d.add_tenant("t2")
        d.write_playbook("counter.lua", playbook(
            "counter", "it.counter",
            '    log.info("n=" .. state.incr("seen:" .. alert:observable("user")))\n'
            '    state.put("note", "a\\27[2Jb", { ttl = "1h" })'))
        d.start()
        obs = [{"type": "user", "value": "alice@example.jp"}]
        for sid in ("a", "b"):
            aid = expect_accepted(d.post({"source": "it.counter", "source_id": sid,
                                          "observables": obs}), 1)[0]
            check(d.wait_run_final(aid, timeout=15)["state"] == "done", "run")
        out = d.cli("state", "list").stdout
        lines = sorted(out.splitlines())
        check(len(lines) == 2, "state list: %r" % out)
        check(re.match(r"^t1\tseen:alice@example\.jp\tupdated \d{4}-\d\d-\d\dT[0-9:.]+Z"
                       r"\texpires \d{4}-\d\d-\d\dT[0-9:.]+Z\t2$", lines[1]),
              "counter line: %r" % lines[1])
        check("\x1b" not in out and lines[0].startswith("t1\tnote\t"), "note line: %r" % lines[0])
        check(d.cli("state", "list", "--tenant", "t2").stdout == "", "t2 has no entries")
        check(d.cli("state", "list", "--prefix", "seen:").stdout.count("\n") == 1, "prefix")
        out = d.cli("state", "delete", "--tenant", "t1", "seen:alice@example.jp", "nope").stdout
        check(out == "seen:alice@example.jp: deleted\nnope: not there\n", "delete: %r" % out)
        aid = expect_accepted(d.post({"source": "it.counter", "source_id": "c",
                                      "observables": obs}), 1)[0]
        run = d.wait_run_final(aid, timeout=15)
        msgs = [e["request"]["msg"] for e in d.db_journal(run["id"]) if e["kind"] == "log"]
        check(msgs == ["n=1"], "after the reset: %r" % msgs)
        p = d.cli("state", "delete", "--tenant", "t9", "k", check_rc=None)
        check(p.returncode == 1 and "unknown tenant t9" in p.stderr, "unknown tenant: %r" % p.stderr)
        d.stop()
test_state_cli.TIMEOUT = 60
