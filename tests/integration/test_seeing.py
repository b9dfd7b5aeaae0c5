"""Seeing what happened: a run's result (stored with the run, across kill -9), `kagari
runs` filters, `kagari alerts` filters and `kagari alert show` (normalized view, raw
record, the runs it started), hostile alert text on the terminal, --json validity."""

import json
import subprocess
import time

from harness import Daemon, check, expect_accepted, kagari, playbook, sanitizer_env
from test_untrusted_text import unsafe_bytes


def cli_out(d, *args, rc=0):
    p = subprocess.run([kagari()] + list(args) + ["--config", d.config], capture_output=True,
                       env=sanitizer_env(), timeout=60)
    check(rc is None or p.returncode == rc, "kagari %s: exit %d (want %r): %r"
          % (" ".join(args), p.returncode, rc, p.stderr))
    return p


def cli_json(d, *args):
    out = cli_out(d, *(args + ("--json",))).stdout
    why = unsafe_bytes(out)
    check(why is None, "%s --json printed %s: %r" % (" ".join(args), why, out[:300]))
    try:
        return json.loads(out.decode())
    except ValueError:
        check(False, "kagari %s --json is not JSON: %r" % (" ".join(args), out[:500]))


RESULTS = {
    "r-string": 'return "contained"',
    "r-table": 'return { verdict = "contained", users = { "a@x", "b@x" }, score = 7.5 }',
    "r-number": "return 42",
    "r-bool": "return false",
    "r-nil": "return nil",
    "r-none": 'log.info("nothing returned")',
    "r-function": "return function() end",
    "r-cycle": "local t = {} t.self = t return t",
    "r-big": 'return string.rep("x", 70000)',
    "r-bigtable": 'return { a = string.rep("x", 40000), b = string.rep("y", 40000) }',
    "r-hugestring": 'return string.rep("x", 5000000)',
    "r-badkey": "return { [true] = 1 }",
    "r-notutf8": 'return "\\255\\254"',
}


def test_run_result_stored_and_shown():
    """Every kind of return value: JSON values are stored as returned; values JSON cannot
    hold or over the 64 KiB cap leave a note and the run still succeeds."""
    with Daemon("results") as d:
        for name, body in RESULTS.items():
            d.write_playbook(name + ".lua", playbook(name, "it.result." + name, "    " + body))
        d.start()
        runs = {}
        for name in RESULTS:
            aid = expect_accepted(d.post({"source": "it.result." + name, "source_id": name}), 1)[0]
            runs[name] = d.wait_run_final(aid, timeout=20)
        for name, r in runs.items():
            check(r["state"] == "done", "%s: run %r" % (name, r))
        listed = {r["playbook"]: r for r in cli_json(d, "runs", "--tenant", d.tenant)}
        want = {"r-string": "contained",
                "r-table": {"verdict": "contained", "users": ["a@x", "b@x"], "score": 7.5},
                "r-number": 42, "r-bool": False, "r-nil": None, "r-none": None}
        for name, value in want.items():
            check(listed[name]["result"] == value and listed[name]["result_note"] is None,
                  "%s: result %r" % (name, listed[name]))
            shown = cli_json(d, "run", "show", str(listed[name]["id"]), "--tenant", d.tenant)
            check(shown["result"] == value, "run show %s: %r" % (name, shown))
        for name, words in (("r-function", "function"), ("r-cycle", "cycle"),
                            ("r-big", "cap of 65536"), ("r-badkey", "key"),
                            ("r-bigtable", "as JSON, over the cap of 65536"),
                            ("r-hugestring", "string of 5000000 bytes"),
                            ("r-notutf8", "UTF-8")):
            r = listed[name]
            check(r["result"] is None and words in (r["result_note"] or ""),
                  "%s: want a note with %r: %r" % (name, words, r))
        # The text forms
        out = cli_out(d, "run", "show", str(listed["r-string"]["id"]), "--tenant",
                      d.tenant).stdout.decode()
        check('result    "contained"' in out, "run show text: %r" % out)
        out = cli_out(d, "run", "show", str(listed["r-none"]["id"]), "--tenant",
                      d.tenant).stdout.decode()
        check("result    none (the playbook returned nothing)" in out, "run show: %r" % out)
        out = cli_out(d, "run", "show", str(listed["r-function"]["id"]), "--tenant",
                      d.tenant).stdout.decode()
        check("result    none: the returned value is not JSON" in out, "run show: %r" % out)
        out = cli_out(d, "runs", "--tenant", d.tenant).stdout.decode()
        line = [ln for ln in out.splitlines() if " r-table " in ln]
        check(len(line) == 1 and '"verdict":"contained"' in line[0], "runs table: %r" % out)
        check("RESULT OR ERROR" in out.splitlines()[0], "runs header: %r" % out)
        d.stop()


def test_run_result_survives_kill9():
    """The result is recorded with the final state: a run killed while sleeping finishes
    after the restart with the same result, its sleep not repeated from the start."""
    body = ('    local t = now()\n    sleep(1.5)\n'
            '    return { verdict = "contained", alert = alert.source_id }')
    with Daemon("result-kill9") as d:
        d.write_playbook("slow.lua", playbook("slow", "it.slow", body))
        d.start()
        aid = expect_accepted(d.post({"source": "it.slow", "source_id": "k-1"}), 1)[0]
        d.wait_run_state(aid, "waiting", timeout=10)
        d.kill9()
        d.restart()
        r = d.wait_run_final(aid, timeout=20)
        check(r["state"] == "done", "after the restart: %r" % r)
        shown = cli_json(d, "run", "show", str(r["id"]), "--tenant", d.tenant)
        check(shown["result"] == {"verdict": "contained", "alert": "k-1"},
              "result after kill -9: %r" % shown)
        kinds = [e["kind"] for e in shown["journal"]]
        check(kinds == ["now", "sleep"], "journal after replay: %r" % kinds)
        d.kill9()  # a second crash after the end changes nothing
        d.restart()
        again = cli_json(d, "run", "show", str(r["id"]), "--tenant", d.tenant)
        check(again["result"] == shown["result"] and again["state"] == "done",
              "after a second restart: %r" % again)
        d.stop()


def test_runs_filters():
    """runs --playbook, --alert, --state, --since/--until (durations, times, dates) and
    --limit; bad filter values are refused with a clear message."""
    with Daemon("runs-filters") as d:
        d.write_playbook("a.lua", playbook("pb-a", "it.f", '    return "a"'))
        d.write_playbook("b.lua", playbook("pb-b", "it.f",
                                           '    if alert.title == "boom" then error("b failed") end'
                                           '\n    return "b"'))
        d.start()
        a1 = expect_accepted(d.post({"source": "it.f", "source_id": "1", "title": "ok"}), 1)[0]
        a2 = expect_accepted(d.post({"source": "it.f", "source_id": "2", "title": "boom"}), 1)[0]
        for aid in (a1, a2):
            for pb in ("pb-a", "pb-b"):
                d.wait_run_final(aid, playbook=pb)
        T = d.tenant
        rs = cli_json(d, "runs", "--tenant", T, "--playbook", "pb-a")
        check(sorted(r["alert_id"] for r in rs) == [a1, a2] and
              all(r["playbook"] == "pb-a" for r in rs), "--playbook: %r" % rs)
        rs = cli_json(d, "runs", "--tenant", T, "--alert", str(a2))
        check(sorted(r["playbook"] for r in rs) == ["pb-a", "pb-b"] and
              all(r["alert_id"] == a2 for r in rs), "--alert: %r" % rs)
        rs = cli_json(d, "runs", "--tenant", T, "--state", "failed")
        check([(r["playbook"], r["alert_id"]) for r in rs] == [("pb-b", a2)], "--state: %r" % rs)
        check("b failed" in rs[0]["error"], "failed run's error: %r" % rs)
        rs = cli_json(d, "runs", "--tenant", T, "--playbook", "pb-b", "--state", "done",
                      "--alert", str(a1))
        check(len(rs) == 1 and rs[0]["result"] == "b", "combined filters: %r" % rs)
        check(len(cli_json(d, "runs", "--tenant", T, "--since", "1h")) == 4, "--since 1h")
        check(cli_json(d, "runs", "--tenant", T, "--until", "1h") == [], "--until 1h")
        check(cli_json(d, "runs", "--tenant", T, "--since", "2999-01-01") == [], "future date")
        check(len(cli_json(d, "runs", "--tenant", T, "--since", "2020-01-01T00:00:00Z",
                           "--until", "2999-01-01T00:00:00+09:00")) == 4, "absolute range")
        check(len(cli_json(d, "runs", "--tenant", T, "--limit", "3")) == 3, "--limit 3")
        check(cli_json(d, "runs", "--tenant", T, "--playbook", "nope") == [], "unknown playbook")
        for bad, words in ((("--since", "yesterday"), "--since"), (("--until", "-5h"), "--until"),
                           (("--alert", "x1"), "alert id"), (("--limit", "0"), "--limit"),
                           (("--state", "sleeping"), "invalid run state")):
            p = cli_out(d, "runs", *bad, rc=None)
            check(p.returncode != 0 and words.encode() in p.stderr,
                  "runs %r: exit %d %r" % (bad, p.returncode, p.stderr))
        # run show: each step with its duration and its result or error
        failed = cli_json(d, "runs", "--tenant", T, "--state", "failed")[0]
        out = cli_out(d, "run", "show", str(failed["id"]), "--tenant", T).stdout.decode()
        check("journal   0 steps (the playbook called no effect" in out and
              "stopped   after step #0" in out and "b failed" in out, "run show: %r" % out)
        d.stop()


NASTY_TITLE = "t \x1b[2J\x1b]0;owned\x07 del \x7f c1 \u009b31m nel \u0085 ls \u2028 ps \u2029 end"


def test_alerts_list_and_filters():
    """alerts: source, --min-severity, --severity, --outcome, --since/--until,
    --observable, --limit, --json; hostile text escaped on the terminal."""
    with Daemon("alerts") as d:
        d.write_playbook("p.lua", playbook("seen", "it.alerts", '    return alert.title'))
        d.start()
        ids = {}
        for sid, sev, outcome, user, title in (
                ("1", "low", "blocked", "alice@example.com", "low blocked"),
                ("2", "high", "succeeded", "bob@example.com", "high succeeded"),
                ("3", "critical", "attempted", "alice@example.com", NASTY_TITLE),
                ("4", "medium", "unknown", "carol@example.com", "medium other")):
            src = "it.alerts" if sid != "4" else "it.other"
            a = {"source": src, "source_id": sid, "severity": sev, "outcome": outcome,
                 "title": title, "observables": [{"type": "user", "value": user},
                                                  {"type": "ip", "value": "10.0.0." + sid}]}
            ids[sid] = expect_accepted(d.post(a), 1)[0]
        T = d.tenant

        def listed(*args):
            return sorted(a["id"] for a in cli_json(d, "alerts", "--tenant", T, *args))

        everything = listed()
        check(everything == sorted(ids.values()), "alerts: %r" % everything)
        check(listed("--source", "it.other") == [ids["4"]], "--source")
        check(listed("--min-severity", "high") == sorted([ids["2"], ids["3"]]), "--min-severity")
        check(listed("--severity", "medium") == [ids["4"]], "--severity")
        check(listed("--outcome", "succeeded") == [ids["2"]], "--outcome")
        check(listed("--observable", "alice@example.com") == sorted([ids["1"], ids["3"]]),
              "--observable user")
        check(listed("--observable", "10.0.0.2") == [ids["2"]], "--observable ip")
        check(listed("--observable", "alice") == [], "--observable is exact")
        check(listed("--since", "10m") == everything and listed("--until", "10m") == [],
              "--since/--until")
        check(listed("--source", "it.alerts", "--min-severity", "medium",
                     "--observable", "alice@example.com") == [ids["3"]], "combined")
        check(len(listed("--limit", "2")) == 2, "--limit")
        # A record of class event goes to the event store: no alert id, not listed with
        # the alerts, found by kagari events.
        r = d.post({"source": "it.logs", "source_id": "e-1", "class": "event"})
        check(r.status == 202 and r.json["events"] == {"accepted": 1, "duplicates": 0} and
              r.json["ids"] == [None], "event: %r" % r)
        check(listed("--class", "event") == [], "--class event")
        check(listed("--class", "alert") == everything, "--class alert")
        check(sorted(listed()) == sorted(everything), "events are not alerts")
        evs = cli_json(d, "events", "--tenant", T, "--source", "it.logs")
        check([e["source_id"] for e in evs] == ["e-1"], "kagari events: %r" % evs)
        full = {a["id"]: a for a in cli_json(d, "alerts", "--tenant", T)}
        a3 = full[ids["3"]]
        check(a3["title"] == NASTY_TITLE and a3["severity"] == "critical" and a3["class"] == "alert" and
              a3["outcome"] == "attempted" and a3["source"] == "it.alerts" and
              {"type": "user", "value": "alice@example.com", "role": None} in a3["observables"],
              "alert JSON: %r" % a3)
        out = cli_out(d, "alerts", "--tenant", T).stdout
        why = unsafe_bytes(out)
        check(why is None, "alerts printed %s: %r" % (why, out))
        check(b"\\x1b[2J" in out and b"high succeeded" in out, "alerts table: %r" % out)
        for bad, words in ((("--min-severity", "urgent"), "severity"),
                           (("--outcome", "won"), "outcome"), (("--since", "soon"), "--since"),
                           (("--class", "incident"), "--class")):
            p = cli_out(d, "alerts", *bad, rc=None)
            check(p.returncode != 0 and words.encode() in p.stderr,
                  "alerts %r: %d %r" % (bad, p.returncode, p.stderr))
        d.stop()


def test_alert_show():
    """alert show: the normalized view, the raw record as stored (escaped on the terminal,
    exact with --raw, a string in --json) and the runs it started with their results."""
    with Daemon("alert-show") as d:
        d.write_playbook("ok.lua", playbook("show-ok", "it.show", '    return {seen = true}'))
        d.write_playbook("bad.lua", playbook("show-bad", "it.show", '    error("no luck")'))
        d.start()
        alert = {"source": "it.show", "source_id": "s-1", "severity": "high",
                 "title": NASTY_TITLE, "vendor": {"note": "x\u009by \u2028 z"},
                 "observables": [{"type": "host", "value": "pc-1\x1b[31m", "role": "victim"}]}
        aid = expect_accepted(d.post(alert), 1)[0]
        d.wait_run_final(aid, playbook="show-ok")
        d.wait_run_final(aid, playbook="show-bad")
        T = d.tenant
        shown = cli_json(d, "alert", "show", str(aid), "--tenant", T)
        check(shown["id"] == aid and shown["title"] == NASTY_TITLE and shown["severity"] == "high",
              "alert show --json: %r" % shown)
        raw = json.loads(shown["raw"])
        check(raw["vendor"] == alert["vendor"] and raw["title"] == NASTY_TITLE,
              "raw record: %r" % raw)
        runs = {r["playbook"]: r for r in shown["runs"]}
        check(runs["show-ok"]["state"] == "done" and runs["show-ok"]["result"] == {"seen": True},
              "runs of the alert: %r" % shown["runs"])
        check(runs["show-bad"]["state"] == "failed" and "no luck" in runs["show-bad"]["error"],
              "runs of the alert: %r" % shown["runs"])
        p = cli_out(d, "alert", "show", str(aid), "--tenant", T, "--raw")
        check(p.stdout.rstrip(b"\n") == shown["raw"].encode(), "--raw is not the stored record: "
              "%r vs %r" % (p.stdout, shown["raw"]))
        out = cli_out(d, "alert", "show", str(aid), "--tenant", T).stdout
        why = unsafe_bytes(out, allow=b"\n\t")
        check(why is None, "alert show printed %s: %r" % (why, out))
        text = out.decode()
        for want in ("alert     %d" % aid, "source    it.show", "severity  high", "runs      2",
                     "show-ok", '{"seen":true}', "error: ", "no luck", "pc-1\\x1b[31m",
                     "(victim)", "raw       "):
            check(want in text, "alert show lacks %r:\n%s" % (want, text))
        p = cli_out(d, "alert", "show", "999999", "--tenant", T, rc=None)
        check(p.returncode == 1 and b"no alert 999999" in p.stderr, "unknown alert: %r" % p.stderr)
        p = cli_out(d, "alert", "show", "abc", rc=None)
        check(p.returncode != 0 and b"not an alert id" in p.stderr, "bad id: %r" % p.stderr)
        d.stop()


def test_raw_record_byte_for_byte():
    """The raw record is each record as the sender wrote it: whitespace, key order,
    number and escape spellings kept, for one alert, an array and a records envelope."""
    with Daemon("raw-bytes") as d:
        d.start()
        one = (b'{ "source" : "it.raw",\n  "source_id": "r-1", "title": "caf\\u00e9 \xe2\x9c\x93",'
               b' "n": 1.50, "big": 1E3 }')
        body = b"\r\n " + one + b" \n"  # a body of one alert is kept whole
        aid = expect_accepted(d.post(raw=body), 1)[0]
        recs = [b'{"source":"it.raw","source_id":"r-2"}', b'{ "source_id" : "r-3",\t"source":"it.raw" }']
        ids = expect_accepted(d.post(raw=b"[" + recs[0] + b" ,\n" + recs[1] + b"]"), 2)
        env = [b'{"operationName": "x", "id": 1}', b'{"operationName": "y",  "id": 2}']
        eids = expect_accepted(d.post(raw=b'{"other": [0], "records": [ ' + env[0] + b",\n" +
                                      env[1] + b" ]}", query="?source=it.env"), 2)
        for alert_id, want in [(aid, body)] + list(zip(ids, recs)) + list(zip(eids, env)):
            out = cli_out(d, "alert", "show", str(alert_id), "--tenant", d.tenant, "--raw").stdout
            check(out == want + b"\n", "alert %d raw: %r, want %r" % (alert_id, out, want))
            shown = cli_json(d, "alert", "show", str(alert_id), "--tenant", d.tenant)
            check(shown["raw"].encode() == want, "alert %d --json raw: %r" % (alert_id,
                                                                             shown["raw"]))
        # The same record written differently is still the same alert (dedup is on the
        # normalized form), and the first spelling stays.
        again = expect_accepted(d.post(raw=b'{"source":"it.raw","source_id":"r-1"}'), 0, 1)
        check(again == [aid], "dedup: %r" % again)
        d.stop()
