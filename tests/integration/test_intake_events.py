"""Events from the HTTP intake: Entra ID sign-ins in an Azure diagnostic envelope are
split in the admit step into alerts (detections: stored with the alerts, routed to
playbooks) and events (every other sign-in: stored in the event store, searchable with
events.query, never routed); the 202 counts both; the same records again are duplicates
of each kind; a playbook counts the failed sign-ins before a risky success with
events.query; and a tenant's rule moves a class of records from events to alerts."""

import copy
import datetime
import json
import os

from harness import Daemon, check, expect_error, journal_summary, playbook

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures",
                        "microsoft")


def signins():
    with open(os.path.join(FIXTURES, "entra-signin.json"), "rb") as f:
        body = f.read()
    return body, json.loads(body)["records"]


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def signin_like(template, rid, when, user=None, ip=None):
    """A copy of a fixture sign-in with its own id and time (and user and address)."""
    r = copy.deepcopy(template)
    p = r["properties"]
    p["id"] = rid
    r["time"] = iso(when)
    p["createdDateTime"] = iso(when)
    if user is not None:
        p["userPrincipalName"] = user
    if ip is not None:
        p["ipAddress"] = ip
        r["callerIpAddress"] = ip
    return r


def envelope(records):
    return json.dumps({"records": records}, ensure_ascii=False).encode()


def split(j):
    return (j["alerts"]["accepted"], j["alerts"]["duplicates"], j["events"]["accepted"],
            j["events"]["duplicates"])


def test_signin_envelope_split():
    """The fixture's six sign-ins (a plain success, a wrong password, a locked account,
    conditional access after a right password, MFA denied, a risky success): the three
    that are detections become alerts and start runs, the other three events; the 202
    counts both and has null for an event's id; events keep their raw bytes and are found
    by user; the same envelope again is six duplicates and stores nothing."""
    with Daemon("ev-split") as d:
        d.write_playbook("seen.lua", playbook("signin-seen", "entra.signin",
                                              '    log.info("seen " .. alert.source_id)'))
        d.start()
        body, recs = signins()
        with d.client() as c:
            r = c.post(raw=body)
            check(r.status == 202, "envelope: %r" % r)
            j = r.json
            check(j["accepted"] == 6 and j["duplicates"] == 0 and split(j) == (3, 0, 3, 0),
                  "counts: %r" % j)
            ids = j["ids"]
            check([i is None for i in ids] == [True, True, True, False, False, False],
                  "ids: %r" % ids)
            r = c.post(raw=body)
            check(r.status == 202 and r.json["accepted"] == 0 and r.json["duplicates"] == 6 and
                  split(r.json) == (0, 3, 0, 3) and r.json["ids"] == ids,
                  "the same envelope again: %r" % r)
        want_events = sorted(x["properties"]["id"] for x in recs[:3])
        rows = d.query("SELECT source_id, user, ip, outcome, raw FROM events ORDER BY source_id")
        check(sorted(x[0] for x in rows) == want_events, "events: %r" % [x[:4] for x in rows])
        by_id = {x["properties"]["id"]: x for x in recs}
        for sid, user, ip, outcome, raw in rows:
            rec = by_id[sid]["properties"]
            check(user == rec["userPrincipalName"] and ip == rec["ipAddress"],
                  "%s: user %r ip %r" % (sid, user, ip))
            check(raw.encode() in body and json.loads(raw) == by_id[sid],
                  "%s: raw is not the record's bytes: %r" % (sid, raw[:120]))
            check(outcome == ("succeeded" if rec["status"]["errorCode"] == 0 else "blocked"),
                  "%s: outcome %r" % (sid, outcome))
        alerts = d.query("SELECT id, source_id, class FROM alerts ORDER BY id")
        check([x[0] for x in alerts] == ids[3:] and
              [x[1] for x in alerts] == [x["properties"]["id"] for x in recs[3:]] and
              all(x[2] == "alert" for x in alerts), "alerts: %r" % alerts)
        runs = d.db_runs()
        check(sorted(x["alert_id"] for x in runs) == ids[3:], "runs: %r" % runs)
        for aid in ids[3:]:
            check(d.wait_run_final(aid)["state"] == "done", "run of alert %d" % aid)
        out = d.cli("events", "--tenant", d.tenant, "--user", "JIRO.tanaka@example.jp",
                    "--since", "3650d", "--json").stdout
        found = json.loads(out)
        check([e["source_id"] for e in found] == [recs[1]["properties"]["id"]] and
              found[0]["outcome"] == "blocked", "kagari events --user: %r" % found)
        m = d.metrics()
        check(m.get("kagari_events_stored_total") == 3 and
              m.get("kagari_events_duplicate_total") == 3 and
              m.get("kagari_alerts_accepted_total") == 3 and
              m.get("kagari_alerts_duplicate_total") == 3, "metrics: %r" %
              {k: v for k, v in m.items() if "events" in k or "alerts" in k})
        check("events=3" in d.log(), "intake.accepted does not count the events")
        d.stop()


BRUTE = """
    local user = alert:observable("user")
    local seen = events.query{ user = user, source = "entra.signin", since = "24h",
                               limit = 1000 }
    local failed = 0
    for _, e in ipairs(seen) do
      if e.outcome ~= "succeeded" and e.time < alert.time_iso then
        failed = failed + 1
      end
    end
    local blocked = events.count{ user = user, source = "entra.signin", outcome = "blocked",
                                  since = "24h" }
    local ok, err = pcall(events.count, { user = user, colour = "red" })
    return { failed = failed, blocked = blocked, succeeded_before = #seen - failed,
             bad_option = not ok }
"""


def test_failed_signins_before_a_success():
    """Five wrong passwords for one user in the last hour (events), one a day and a half
    ago and one for another user, then a successful sign-in from a risky address (an
    alert): the playbook's events.query finds the five before the success within 24
    hours, events.count agrees, both journaled."""
    with Daemon("ev-brute") as d:
        d.write_playbook("brute.lua", playbook("signin-brute", "entra.signin", BRUTE,
                                               extra_on=', min_severity = "high"'))
        d.start()
        _, recs = signins()
        now = datetime.datetime.now(datetime.timezone.utc)
        user, ip = "hanako.suzuki@example.jp", "198.51.100.23"
        failures = [signin_like(recs[1], "fail-%d" % i,
                                now - datetime.timedelta(minutes=40 - 5 * i), user, ip)
                    for i in range(5)]
        failures.append(signin_like(recs[1], "fail-old", now - datetime.timedelta(hours=36),
                                    user, ip))
        failures.append(signin_like(recs[1], "fail-other", now - datetime.timedelta(minutes=20),
                                    "someone.else@example.jp", ip))
        r = d.post(raw=envelope(failures))
        check(r.status == 202 and split(r.json) == (0, 0, 7, 0), "failures: %r" % r)
        check(d.db_runs() == [], "events started runs: %r" % d.db_runs())
        success = signin_like(recs[5], "risky-success", now - datetime.timedelta(minutes=1),
                              user, ip)
        r = d.post(raw=envelope([success]))
        check(r.status == 202 and split(r.json) == (1, 0, 0, 0), "success: %r" % r)
        run = d.wait_run_final(r.json["ids"][0])
        check(run["state"] == "done", "run: %r" % run)
        shown = d.run_show(run["id"])
        check(shown["result"] == {"failed": 5, "blocked": 5, "succeeded_before": 0,
                                  "bad_option": True}, "result: %r" % shown["result"])
        kinds = [e["kind"] for e in shown["journal"]]
        check(kinds.count("events.query") == 1 and kinds.count("events.count") == 1,
              "journal: %r" % journal_summary(shown["journal"]))
        d.stop()


RULE = ('tenants = { t1 = { events = { alerts = { "entra.signin outcome=blocked", '
        '"default" } } } }')


def test_rule_moves_failures_to_alerts():
    """By default a wrong password is an event. After the tenant's rule
    "entra.signin outcome=blocked" (and a restart), new failed sign-ins are alerts that
    start runs, a record sent again is stored as an alert too, and a plain success still
    follows the source's default (an event). A malformed rule stops the start."""
    with Daemon("ev-rule") as d:
        d.write_playbook("seen.lua", playbook("signin-seen", "entra.signin",
                                              '    log.info("seen")'))
        d.start()
        _, recs = signins()
        now = datetime.datetime.now(datetime.timezone.utc)
        before = [signin_like(recs[1], "before-%d" % i, now - datetime.timedelta(minutes=i))
                  for i in range(2)]
        r = d.post(raw=envelope(before))
        check(r.status == 202 and split(r.json) == (0, 0, 2, 0), "before the rule: %r" % r)
        d.stop()
        with open(d.config, "a") as f:
            f.write("\n" + RULE + "\n")
        d.start()
        after = [signin_like(recs[1], "after-%d" % i, now - datetime.timedelta(seconds=i))
                 for i in range(2)]
        plain = signin_like(recs[0], "plain-ok", now)
        r = d.post(raw=envelope(after + [before[0], plain]))
        check(r.status == 202 and split(r.json) == (3, 0, 1, 0), "after the rule: %r" % r)
        ids = r.json["ids"]
        check([i is None for i in ids] == [False, False, False, True], "ids: %r" % ids)
        for aid in ids[:3]:
            check(d.wait_run_final(aid)["state"] == "done", "run of alert %d" % aid)
        rows = sorted(x[0] for x in d.query("SELECT source_id FROM alerts"))
        check(rows == ["after-0", "after-1", "before-0"], "alerts: %r" % rows)
        rows = sorted(x[0] for x in d.query("SELECT source_id FROM events"))
        check(rows == ["before-0", "before-1", "plain-ok"], "events: %r" % rows)
        d.stop()
        with open(d.config, "a") as f:
            f.write('\ntenants = { t1 = { events = { alerts = { "entra.signin outcome=won" } } } }\n')
        p = d.cli("serve", "--config", d.config, check_rc=None, timeout=30)
        check(p.returncode != 0 and "alerts[1]" in p.stderr and "won" in p.stderr, "malformed rule: %r" % p.stderr)


def test_bad_records_do_not_hold_back_events():
    """An envelope of events with a damaged record in the middle: the damaged one is left
    out with its reason, every other event is stored; an envelope of nothing but damaged
    records is a 400 and stores nothing."""
    with Daemon("ev-bad") as d:
        d.start()
        _, recs = signins()
        now = datetime.datetime.now(datetime.timezone.utc)
        good = [signin_like(recs[1], "g-%d" % i, now) for i in range(3)]
        bad = copy.deepcopy(recs[1])
        del bad["properties"]["status"]
        del bad["resultType"]
        r = d.post(raw=envelope([good[0], bad, good[1], good[2]]))
        check(r.status == 202 and split(r.json) == (0, 0, 3, 0) and
              [x["index"] for x in r.json["rejected"]] == [1] and
              "errorCode" in r.json["rejected"][0]["error"], "one bad record: %r" % r)
        r = d.post(raw=envelope([bad, bad]))
        expect_error(r, 400, "none of the 2 records")
        n = d.query("SELECT COUNT(*) FROM events")[0][0]
        check(n == 3, "stored %d events" % n)
        d.stop()
