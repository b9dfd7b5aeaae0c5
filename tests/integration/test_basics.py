"""The intake's happy path: an alert becomes a run; dedup; /healthz and /metrics."""

from harness import (Daemon, check, expect_accepted, log_step, journal_summary, playbook)


def test_alert_runs():
    """POST one alert: 202 with an id; the matching playbook's run ends done with its log
    step in the journal and is listed by `kagari runs`; non-matching playbooks get none."""
    with Daemon("basics") as d:
        d.write_playbook("match.lua", playbook(
            "basic-log", "it.basic",
            '    log.info("basic saw " .. alert.title .. " " .. alert.severity)\n'
            '    return "ok"'))
        d.write_playbook("other-source.lua", playbook(
            "basic-other-source", "it.other", '    log.info("must not run")'))
        d.write_playbook("too-severe.lua", playbook(
            "basic-too-severe", "it.basic", '    log.info("must not run")',
            extra_on=', min_severity = "critical"'))
        d.write_playbook("wrong-outcome.lua", playbook(
            "basic-wrong-outcome", "it.basic", '    log.info("must not run")',
            extra_on=', outcome = "succeeded"'))
        d.start()
        r = d.post({"source": "it.basic", "source_id": "b-1", "title": "hello",
                    "severity": "low", "outcome": "blocked",
                    "observables": [{"type": "user", "value": "alice@example.jp"}]})
        ids = expect_accepted(r, 1)
        aid = ids[0]
        # runs are created in the transaction that stores the alert: all exist by now
        runs = d.runs_of_alert(aid)
        check([x["playbook"] for x in runs] == ["basic-log"],
              "expected exactly one run, of basic-log, got %r" % runs)
        run = d.wait_run_final(aid)
        check(run["state"] == "done", "run ended %s: %r" % (run["state"], run))
        shown = d.run_show(run["id"])
        check(shown["state"] == "done", "run show: %r" % shown)
        check(shown["playbook"] == "basic-log", "run show: %r" % shown)
        check(shown["alert_id"] == aid, "run show alert_id: %r" % shown)
        check(log_step("basic saw hello low") in journal_summary(shown["journal"]),
              "journal lacks the log step: %r" % shown["journal"])
        check(all(e["status"] == "done" for e in shown["journal"]),
              "journal steps not all done: %r" % shown["journal"])
        # `kagari runs` lists it (table), and --json when the build has it
        p = d.cli("runs", "--tenant", "t1")
        line = [ln for ln in p.stdout.splitlines() if ln.split()[1:2] == [str(run["id"])]]
        check(len(line) == 1 and "done" in line[0] and "basic-log" in line[0],
              "kagari runs does not list run %d as done:\n%s" % (run["id"], p.stdout))
        listed = d.runs()
        check([(x["id"], x["playbook"], x["state"]) for x in listed]
              == [(run["id"], "basic-log", "done")], "runs: %r" % listed)
        check(all(x["playbook"] == "basic-log" for x in d.db_runs()),
              "a non-matching playbook got a run: %r" % d.db_runs())
        d.stop()


def test_dedup():
    """Same (source, source_id) twice: a duplicate with the first id; another source with
    the same source_id is a new alert; arrays and {"records":[...]} with ?source=."""
    with Daemon("dedup") as d:
        d.start()
        with d.client() as c:
            first = expect_accepted(c.post({"source": "it.dedup", "source_id": "d-1"}), 1)[0]
            again = expect_accepted(c.post({"source": "it.dedup", "source_id": "d-1",
                                            "title": "changed"}), 0, 1)
            check(again == [first], "duplicate got id %r, expected %r" % (again, [first]))
            other = expect_accepted(c.post({"source": "it.dedup2", "source_id": "d-1"}), 1)[0]
            check(other != first, "another source with the same source_id reused id %d" % first)
            ids = expect_accepted(c.post([
                {"source": "it.dedup", "source_id": "d-2"},
                {"source": "it.dedup", "source_id": "d-3"},
                {"source": "it.dedup", "source_id": "d-1"},
            ]), 2, 1)
            check(ids[2] == first and len(set(ids)) == 3 and first not in ids[:2],
                  "array ids %r (d-1 is %d)" % (ids, first))
            ids = expect_accepted(c.post([
                {"source": "it.dedup", "source_id": "d-4"},
                {"source": "it.dedup", "source_id": "d-4"},
            ]), 1, 1)
            check(ids[0] == ids[1], "a duplicate within one array got another id: %r" % ids)
            records = {"records": [
                {"source_id": "r-1", "title": "role assignment", "severity": "medium"},
                {"source_id": "r-2", "title": "key vault access"},
                {"source": "it.own", "source_id": "r-3"},
            ]}
            rids = expect_accepted(c.post(records, query="?source=azure.activity"), 3)
            rids2 = expect_accepted(c.post(records, query="?source=azure.activity"), 0, 3)
            check(rids == rids2, "records repost ids %r != %r" % (rids2, rids))
        rows = d.query("SELECT source, source_id, COUNT(*) FROM alerts"
                       " GROUP BY source, source_id ORDER BY source, source_id")
        want = [("azure.activity", "r-1", 1), ("azure.activity", "r-2", 1),
                ("it.dedup", "d-1", 1), ("it.dedup", "d-2", 1), ("it.dedup", "d-3", 1),
                ("it.dedup", "d-4", 1), ("it.dedup2", "d-1", 1), ("it.own", "r-3", 1)]
        check(rows == want, "alerts table: %r, expected %r" % (rows, want))
        title = d.query("SELECT title FROM alerts WHERE source = 'it.dedup' AND source_id = 'd-1'")
        check(title[0][0] != "changed",
              "a duplicate overwrote the stored alert: %r" % title)
        d.stop()


def test_metrics_healthz():
    """/healthz is 200 {"status":"ok"}; /metrics counts accepted alerts (and duplicates)."""
    with Daemon("metrics") as d:
        d.start()
        r = d.get("/healthz")
        check(r.status == 200 and r.json == {"status": "ok"}, "/healthz: %r" % r)
        m = d.metrics()
        check(m.get("kagari_alerts_accepted_total") == 0,
              "accepted before any alert: %r" % m.get("kagari_alerts_accepted_total"))
        accepted = dups = 0
        with d.client() as c:
            for i in range(7):
                expect_accepted(c.post({"source": "it.metrics", "source_id": "m-%d" % i}), 1)
                accepted += 1
            expect_accepted(c.post([{"source": "it.metrics", "source_id": "m-%d" % i}
                                    for i in range(5, 10)]), 3, 2)
            accepted += 3
            dups += 2
            c.post({"title": "no source"})  # rejected: not counted
        r = d.get("/metrics")
        check(r.status == 200, "/metrics: %r" % r)
        ctype = r.header("Content-Type") or ""
        check(ctype.startswith("text/plain"), "/metrics Content-Type %r" % ctype)
        m = d.metrics()
        check(m.get("kagari_alerts_accepted_total") == accepted,
              "kagari_alerts_accepted_total = %r, expected %d"
              % (m.get("kagari_alerts_accepted_total"), accepted))
        check(m.get("kagari_alerts_duplicate_total") == dups,
              "kagari_alerts_duplicate_total = %r, expected %d"
              % (m.get("kagari_alerts_duplicate_total"), dups))
        n = d.query("SELECT COUNT(*) FROM alerts")[0][0]
        check(n == accepted, "%d alerts stored, %d accepted" % (n, accepted))
        d.stop()
