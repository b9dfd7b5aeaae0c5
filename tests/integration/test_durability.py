"""Durability: accepted alerts and runs survive kill -9 and SIGTERM; a sleeping run
resumes where it was; a journal that no longer matches the playbook fails the run."""

import sqlite3
import threading
import time

from harness import (Client, Daemon, FINAL_STATES, check, expect_accepted, journal_summary,
                     log_step, playbook, wait_for)


def wait_all_final(d, n, timeout):
    """Wait until the tenant has n runs, all in a final state; return them."""
    def pred():
        runs = d.db_runs()
        return runs if len(runs) == n and all(r["state"] in FINAL_STATES for r in runs) else None
    try:
        return wait_for(pred, timeout, "%d runs to finish" % n, interval=0.2)
    except AssertionError as e:
        runs = d.db_runs()
        states = {}
        for r in runs:
            states[r["state"]] = states.get(r["state"], 0) + 1
        raise type(e)("%s: %d runs, states %r" % (e, len(runs), states))


def test_kill9_after_accept():
    """~300 alerts from several threads, kill -9 right after the last 202: after a
    restart each accepted alert is stored exactly once under the id it was given, and
    every run completes exactly once (no step repeated)."""
    with Daemon("kill9") as d:
        d.write_playbook("durable.lua", playbook(
            "durable", "it.durable",
            '    log.info("one " .. alert.source_id)\n'
            '    sleep(1)\n'
            '    log.info("two " .. alert.source_id)'))
        d.start()
        accepted = {}  # source_id -> id
        errors = []
        lock = threading.Lock()

        def worker(w):
            try:
                with Client(d.port, d.token) as c:
                    if w % 2 == 0:
                        for i in range(50):
                            sid = "w%d-%d" % (w, i)
                            ids = expect_accepted(c.post({"source": "it.durable",
                                                          "source_id": sid}), 1)
                            with lock:
                                accepted[sid] = ids[0]
                    else:
                        for b in range(10):
                            sids = ["w%d-%d" % (w, b * 5 + k) for k in range(5)]
                            ids = expect_accepted(c.post([{"source": "it.durable",
                                                           "source_id": s} for s in sids]), 5)
                            with lock:
                                accepted.update(zip(sids, ids))
            except BaseException as e:  # reported by the main thread
                with lock:
                    errors.append("worker %d: %r" % (w, e))

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        d.kill9()
        check(not errors, "posting failed: %s" % "; ".join(errors[:3]))
        check(len(accepted) == 300, "%d alerts accepted, expected 300" % len(accepted))
        check(len(set(accepted.values())) == 300, "two alerts were given the same id")
        # the premise: the kill caught runs unfinished (parked in their sleep)
        unfinished = [r for r in d.db_runs() if r["state"] not in FINAL_STATES]
        check(unfinished, "every run had finished before the kill: nothing to recover")

        d.restart()
        rows = d.query("SELECT source_id, COUNT(*), MIN(id) FROM alerts WHERE source = 'it.durable'"
                       " GROUP BY source_id")
        stored = {sid: (n, aid) for sid, n, aid in rows}
        missing = [s for s in accepted if s not in stored]
        check(not missing, "%d accepted alerts lost after kill -9: %r" % (len(missing),
                                                                       missing[:10]))
        check(all(n == 1 for n, _ in stored.values()), "an alert stored twice")
        wrong = [(s, accepted[s], stored[s][1]) for s in accepted if stored[s][1] != accepted[s]]
        check(not wrong, "alerts stored under other ids than replied: %r" % wrong[:5])
        check(len(stored) == 300, "%d alerts stored, 300 accepted" % len(stored))

        runs = wait_all_final(d, 300, 30)
        bad = [r for r in runs if r["state"] != "done"]
        check(not bad, "%d runs did not end done: %r" % (len(bad), bad[:3]))
        check(sorted(r["alert_id"] for r in runs) == sorted(accepted.values()),
              "not exactly one run per accepted alert")
        by_alert = {aid: sid for sid, aid in accepted.items()}
        for r in runs:
            sid = by_alert[r["alert_id"]]
            j = d.db_journal(r["id"])
            want = [log_step("one " + sid), ("sleep", {"seconds": 1}), log_step("two " + sid)]
            if journal_summary(j) != want or any(e["status"] != "done" for e in j):
                raise AssertionError("run %d journal %r, expected %r" % (r["id"], j, want))
        listed = d.runs()
        check(len(listed) == 300 and all(r["state"] == "done" for r in listed),
              "kagari runs after the restart: %d runs, states %r"
              % (len(listed), sorted(set(r["state"] for r in listed))))
        d.stop()


test_kill9_after_accept.TIMEOUT = 150

SLEEPER = playbook("sleeper", "it.sleep", '''    log.info("before")
    sleep(3)
    log.info("after")''')


def test_sleep_across_restart():
    """A run parked in sleep(3) when the daemon is killed ends done after a restart with
    the journal [log before, sleep, log after] and the sleep neither restarted nor
    skipped."""
    with Daemon("sleep") as d:
        d.write_playbook("sleeper.lua", SLEEPER)
        d.start()
        aid = expect_accepted(d.post({"source": "it.sleep", "source_id": "z-1"}), 1)[0]
        run = d.wait_run_state(aid, "waiting", timeout=10)
        j = d.db_journal(run["id"])
        check(journal_summary(j) == [log_step("before"), ("sleep", {"seconds": 3})],
              "journal while sleeping: %r" % j)
        sleep_started = j[1]["started"]
        time.sleep(1.0)
        d.kill9()
        d.restart()
        restarted_ms = d.ready_ms
        run = d.wait_run_final(aid, timeout=15)
        check(run["state"] == "done", "run after restart: %r" % run)
        shown = d.run_show(run["id"])
        j = shown["journal"]
        check(journal_summary(j) == [log_step("before"), ("sleep", {"seconds": 3}),
                                     log_step("after")],
              "journal after the restart: %r" % journal_summary(j))
        check(all(e["status"] == "done" for e in j), "journal statuses: %r" % j)
        check(shown["ended"] - shown["started"] >= 3000,
              "run took %d ms, slept 3 s" % (shown["ended"] - shown["started"]))
        check(j[1]["ended"] - j[1]["started"] >= 3000,
              "sleep step took %d ms, expected >= 3000" % (j[1]["ended"] - j[1]["started"]))
        # restarted from zero would end >= 3 s after the restart (>= 4 s after the
        # sleep began, since we waited 1 s before the kill)
        bound = max(sleep_started + 3000, restarted_ms) + 900
        check(shown["ended"] <= bound,
              "run ended %d ms after its sleep began (restart at +%d ms): the sleep restarted"
              % (shown["ended"] - sleep_started, restarted_ms - sleep_started))
        check(j[1]["started"] == sleep_started, "the sleep step's start changed on replay")
        d.stop()


PAIRS = playbook("pairs", "it.pairs", '''    local devices = {}
    for _, name in ipairs({"ws-17", "srv-db", "laptop-9", "ws-03", "kiosk", "srv-web",
                           "printer-2", "vpn-gw"}) do
        devices[name] = { isolated = false }
    end
    for k, v in pairs(devices) do
        sleep(0.2)
        log.info(k, v)
    end''')


def test_pairs_replay_after_kill9():
    """A run that loops pairs() over 8 devices (string keys: hash order) with a sleep and
    a log per device is killed with -9 in the middle; after the restart its replay visits
    the keys in the same order, so it ends done, not diverged, with each device logged
    exactly once (and tostring of a table in the log shows no address)."""
    names = ["ws-17", "srv-db", "laptop-9", "ws-03", "kiosk", "srv-web", "printer-2", "vpn-gw"]
    with Daemon("pairs") as d:
        d.write_playbook("pairs.lua", PAIRS)
        d.start()
        aid = expect_accepted(d.post({"source": "it.pairs", "source_id": "pr-1"}), 1)[0]
        run = d.wait_run_state(aid, "waiting", timeout=10)

        def logged():
            return [e for e in d.db_journal(run["id"]) if e["kind"] == "log"]
        wait_for(lambda: len(logged()) >= 3, 10, "3 devices logged before the kill")
        d.kill9()
        before = len(logged())
        check(before < 8, "the run had logged every device before the kill")
        d.restart()
        run = d.wait_run_final(aid, timeout=20)
        check(run["state"] == "done", "run after the restart: %r" % run)
        j = d.db_journal(run["id"])
        msgs = [e["request"]["msg"] for e in j if e["kind"] == "log"]
        check(sorted(msgs) == sorted(n + " table" for n in names),
              "each device logged exactly once: %r" % msgs)
        check(msgs == [n + " table" for n in sorted(names)],
              "devices not visited in key order: %r" % msgs)
        check(all(e["status"] == "done" for e in j), "journal statuses: %r" % j)
        d.stop()


test_pairs_replay_after_kill9.TIMEOUT = 90


def test_divergence():
    """A parked run whose recorded step no longer matches the playbook fails with a
    'diverged' error after the restart, instead of going on."""
    with Daemon("diverge") as d:
        d.write_playbook("diverge.lua", playbook("diverge", "it.diverge", '''    log.info("step one")
    sleep(30)
    log.info("never")'''))
        d.start()
        aid = expect_accepted(d.post({"source": "it.diverge", "source_id": "dv-1"}), 1)[0]
        run = d.wait_run_state(aid, "waiting", timeout=10)
        d.kill9()
        db = sqlite3.connect(d.db_path(), timeout=10)
        try:
            cur = db.execute("UPDATE journal SET request = ? WHERE run_id = ? AND seq = 1",
                             ('{"level":"info","msg":"step one, as another version had it"}',
                              run["id"]))
            check(cur.rowcount == 1, "no journal step 1 for run %d" % run["id"])
            db.commit()
        finally:
            db.close()
        d.restart()
        run = d.wait_run_final(aid, timeout=15)
        check(run["state"] == "failed", "run with an edited journal ended %r" % run)
        check("diverged" in (run["error"] or ""), "error does not say diverged: %r"
              % run["error"])
        shown = d.run_show(run["id"])
        check(shown["state"] == "failed" and "diverged" in (shown["error"] or ""),
              "run show: %r" % shown)
        kinds = [e["kind"] for e in shown["journal"]]
        check(kinds == ["log", "sleep"], "journal grew after divergence: %r" % shown["journal"])
        check(d.get("/healthz").status == 200, "healthz after a divergence")
        d.stop()


def test_sigterm_while_posting():
    """SIGTERM while alerts are being posted: exit 0, no sanitizer report, and every
    alert that got a 202 is in the database after a restart (and its run completes)."""
    with Daemon("sigterm") as d:
        d.write_playbook("term.lua", playbook("term", "it.term",
                                              '    log.info("term " .. alert.source_id)'))
        d.start()
        accepted = {}
        other = []
        lock = threading.Lock()
        stop = threading.Event()

        def worker(w):
            i = 0
            c = Client(d.port, d.token, timeout=10)
            try:
                while not stop.is_set():
                    sid = "t%d-%d" % (w, i)
                    i += 1
                    try:
                        r = c.post({"source": "it.term", "source_id": sid})
                    except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError,
                            OSError) as e:
                        with lock:
                            other.append((sid, repr(e)))
                        return  # the daemon is gone or closed on us: done
                    with lock:
                        if r.status == 202:
                            accepted[sid] = r.json["ids"][0]
                        else:
                            other.append((sid, r.status))
                            if r.status != 503:
                                return
            finally:
                c.close()

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        wait_for(lambda: len(accepted) >= 40, 20, "40 alerts accepted before SIGTERM")
        d.stop(timeout=30)  # asserts exit 0 and no sanitizer report
        stop.set()
        for t in threads:
            t.join(15)
        n = len(accepted)
        check(n >= 40, "only %d accepted" % n)
        unexpected = [o for o in other if isinstance(o[1], int) and o[1] != 503]
        check(not unexpected, "replies other than 202/503 during the drain: %r" % unexpected[:5])
        d.restart()
        rows = dict(d.query("SELECT source_id, id FROM alerts WHERE source = 'it.term'"))
        missing = [s for s in accepted if s not in rows]
        check(not missing, "%d alerts that got a 202 are missing: %r" % (len(missing),
                                                                     missing[:10]))
        wrong = [s for s in accepted if rows[s] != accepted[s]]
        check(not wrong, "alerts stored under other ids: %r" % wrong[:5])
        runs = wait_all_final(d, len(rows), 60)
        bad = [r for r in runs if r["state"] != "done"]
        check(not bad, "runs not done after the restart: %r" % bad[:3])
        d.stop()


test_sigterm_while_posting.TIMEOUT = 120


def test_disk_full_degraded_health():
    """A disk that fills up (a file-size limit on the daemon: writes fail with EFBIG, as
    on a full disk): commits fail, alerts get 503 with Retry-After, /healthz reports
    503 "degraded" instead of ok, the failure is logged without flooding; once space is
    back the next alert is stored and /healthz is ok again."""
    import resource
    import signal as sig

    limit = 3 << 20

    def small_disk():
        sig.signal(sig.SIGXFSZ, sig.SIG_IGN)  # EFBIG instead of a kill, as ENOSPC would be
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    with Daemon("diskfull") as d:
        d.preexec = small_disk
        d.start()
        check(d.get("/healthz").status == 200, "healthz before")
        pad = "x" * 60000
        failed = None
        for i in range(400):
            r = d.post({"source": "it.fill", "source_id": "f-%d" % i, "pad": pad})
            if r.status != 202:
                failed = r
                break
        check(failed is not None, "4 MB of alerts never hit the %d-byte limit" % limit)
        check(failed.status == 503 and failed.header("Retry-After"),
              "a failed commit: expected 503 with Retry-After, got %r" % failed)
        for _ in range(20):  # keep failing: the log must not get a line each time
            d.post({"source": "it.fill", "source_id": "again", "pad": pad})
        h = d.get("/healthz")
        check(h.status == 503 and h.json.get("status") == "degraded",
              "healthz while commits fail: %r" % h)
        lines = [ln for ln in d.log().splitlines() if "event=store.commit_failed" in ln]
        check(1 <= len(lines) <= 3, "commit failures logged %d times" % len(lines))
        resource.prlimit(d.proc.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        r = wait_for(lambda: (lambda r: r if r.status == 202 else None)(
            d.post({"source": "it.fill", "source_id": "after", "title": "space is back"})),
            20, "an alert stored once space is back")
        h = d.get("/healthz")
        check(h.status == 200 and h.json == {"status": "ok"}, "healthz after recovery: %r" % h)
        check("event=store.commit_recovered" in d.log(), "no recovery line in the log")
