"""The Microsoft and Azure sources over the real intake: every fixture body posted as it
arrives (Event Hub envelopes, a Graph response page), the source found from each record's
shape, raw kept byte for byte, events stored but not routed to playbooks, envelopes that
mix good and bad records, and the per-source record counts in /metrics."""

import json
import os

from harness import Daemon, check, expect_error, journal_summary, log_step, playbook

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures",
                        "microsoft")

# file -> {source: (alerts, events)} as docs/sources.md's rules classify its records
EXPECTED = {
    "entra-signin.json": {"entra.signin": (3, 3)},
    "entra-audit.json": {"entra.audit": (3, 2)},
    "entra-idprotection.json": {"entra.risk": (2, 0), "entra.riskyuser": (2, 0)},
    "defender-alerts-graph.json": {"defender.alert": (2, 0), "mdo.alert": (2, 0)},
    "defender-streaming.json": {"defender.alert": (0, 0), "defender.evidence": (0, 4),
                                "mdo.email": (0, 2), "mdo.postdelivery": (0, 1),
                                "mdo.urlclick": (0, 1)},
    "intune-audit.json": {"intune.audit": (1, 3)},
    "intune-compliance.json": {"intune.device": (1, 2)},
    "azure-activity.json": {"azure.activity": (3, 3)},
    "azure-bastion.json": {"azure.bastion": (3, 0)},
    "azure-firewall-legacy.json": {"azure.firewall": (4, 4)},
    "appgw-access.json": {"azure.appgw": (0, 4)},
    "appgw-waf.json": {"azure.waf": (3, 4)},
}


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def records_of(body):
    doc = json.loads(body)
    return doc.get("records") or doc.get("value")


def counts(d):
    """{source: (alerts, events)}: alerts in the alerts table, events in the event store
    (none left in the alerts table)."""
    out = {}
    for src, n in d.query("SELECT source, COUNT(*) FROM alerts WHERE class = 'alert'"
                          " GROUP BY source"):
        out[src] = (n, 0)
    for src, n in d.query("SELECT source, COUNT(*) FROM events GROUP BY source"):
        out[src] = (out.get(src, (0, 0))[0], n)
    n = d.query("SELECT COUNT(*) FROM alerts WHERE class = 'event'")[0][0]
    check(n == 0, "%d records of class event in the alerts table" % n)
    return out


def test_fixtures_over_http():
    """Each fixture body POSTed unchanged: every record accepted under the source its shape
    names, alerts and events as documented, raw stored byte for byte; the firewall's second
    shape and the streamed copy of a Graph alert are duplicates; only alerts start runs."""
    with Daemon("sources") as d:
        d.write_playbook("signin.lua", playbook(
            "signin-class", "entra.signin", '    log.info("class " .. alert.class)'))
        d.write_playbook("fw.lua", playbook(
            "fw-class", "azure.firewall", '    log.info("class " .. alert.class)'))
        d.start()
        with d.client() as c:
            for name, want in EXPECTED.items():
                body = fixture(name)
                r = c.post(raw=body)
                n = len(records_of(body))
                check(r.status == 202, "%s: %r" % (name, r))
                j = r.json
                check(j["accepted"] + j["duplicates"] == n and "rejected" not in j,
                      "%s: %r" % (name, j))
                # the answer splits the records into alerts and events; ids are the
                # alerts' (null for an event)
                alerts, events = j["alerts"], j["events"]
                check(alerts["accepted"] + events["accepted"] == j["accepted"] and
                      alerts["duplicates"] + events["duplicates"] == j["duplicates"] and
                      len(j["ids"]) == n and
                      sum(1 for i in j["ids"] if i is not None) ==
                      alerts["accepted"] + alerts["duplicates"], "%s: %r" % (name, j))
                wa = sum(a for a, _ in want.values())
                we = sum(e for _, e in want.values())
                if name != "defender-streaming.json":  # its AlertInfo row is a duplicate
                    check((alerts["accepted"], events["accepted"]) == (wa, we),
                          "%s: alerts/events %r, expected %r" % (name, j, (wa, we)))
            # The same hits in the resource-specific shape: all duplicates.
            r = c.post(raw=fixture("azure-firewall-structured.json"))
            check(r.status == 202 and r.json["accepted"] == 0 and r.json["duplicates"] == 8,
                  "structured firewall after legacy: %r" % r)
        got = counts(d)
        want = {}
        for per in EXPECTED.values():
            for src, (a, e) in per.items():
                pa, pe = want.get(src, (0, 0))
                want[src] = (pa + a, pe + e)
        # The streamed AlertInfo row repeats Graph alert 2 (same id): a duplicate.
        for src, (a, e) in want.items():
            check(got.get(src, (0, 0)) == (a, e),
                  "%s: stored (alerts, events) %r, expected %r" % (src, got.get(src), (a, e)))
        # raw is the record's own bytes: compare with the slice of the posted body, for an
        # event (the first sign-in succeeded without risk) and for an alert (the fourth
        # was stopped by conditional access after the password was right: Medium).
        body = fixture("entra-signin.json")
        for table, rec in (("events", records_of(body)[0]), ("alerts", records_of(body)[3])):
            raw = d.query("SELECT raw FROM %s WHERE source = 'entra.signin' ORDER BY id LIMIT 1"
                          % table)
            check(json.loads(raw[0][0]) == rec and raw[0][0].encode() in body,
                  "%s: raw is not the record as posted: %r" % (table, raw[0][0][:200]))
        # Runs: only the alerts (3 sign-ins, 4 firewall detections), each seeing its class.
        runs = d.db_runs()
        by = {}
        for x in runs:
            by[x["playbook"]] = by.get(x["playbook"], 0) + 1
        check(by == {"signin-class": 3, "fw-class": 4}, "runs per playbook: %r" % by)
        for x in runs:
            run = d.wait_run_final(x["alert_id"])
            check(run["state"] == "done", "run %r" % run)
            shown = d.run_show(run["id"])
            check(log_step("class alert") in journal_summary(shown["journal"]),
                  "alert.class not seen by the playbook: %r" % shown["journal"])
        m = d.metrics()
        check(m.get('kagari_intake_records_total{source="entra.signin",result="normalized"}') == 6,
              "per-source metric: %r" % {k: v for k, v in m.items() if "records" in k})
        check(m.get("kagari_events_stored_total", 0) >= 30, "events metric: %r"
              % m.get("kagari_events_stored_total"))
        d.stop()


def test_mixed_envelope():
    """An envelope mixing good records with a damaged one, a non-object, an unknown shape
    and a duplicate: the good ones stored, each bad one left out with its index, source and
    reason; ids hold null where a record was left out; the rejections counted per source.
    An envelope of nothing but bad records is a 400 naming the first."""
    with Daemon("mixed") as d:
        d.start()
        good = records_of(fixture("entra-signin.json"))
        # good[3] (conditional access after a right password) and good[5] (a risky
        # success) are alerts; good[1] (a wrong password) is an event.
        env = {"records": [
            good[3],
            {"category": "SignInLogs", "properties": "not an object"},
            5,
            good[5],
            {"category": "NoSuchCategory", "properties": {}},
            good[5],
            {"category": "SignInLogs", "time": "yesterday",
             "properties": {"id": "x", "status": {"errorCode": 0}}},
            good[1],
            good[1],
        ]}
        r = d.post(env)
        check(r.status == 202, "mixed envelope: %r" % r)
        j = r.json
        check(j["accepted"] == 3 and j["duplicates"] == 2 and
              j["alerts"] == {"accepted": 2, "duplicates": 1} and
              j["events"] == {"accepted": 1, "duplicates": 1}, "counts: %r" % j)
        ids = j["ids"]
        check(len(ids) == 9 and [i is None for i in ids] ==
              [False, True, True, False, True, False, True, True, True], "ids: %r" % ids)
        check(ids[5] == ids[3], "a duplicate in the envelope got another id: %r" % ids)
        rej = {x["index"]: x for x in j["rejected"]}
        check(sorted(rej) == [1, 2, 4, 6], "rejected: %r" % j["rejected"])
        check(rej[1]["source"] == "entra.signin" and "properties" in rej[1]["error"],
              "rejected[1]: %r" % rej[1])
        check(rej[2]["source"] == "unknown" and "records[2]" in rej[2]["error"],
              "rejected[2]: %r" % rej[2])
        check("NoSuchCategory" in rej[4]["error"], "rejected[4]: %r" % rej[4])
        check(rej[6]["source"] == "entra.signin" and "time" in rej[6]["error"],
              "rejected[6]: %r" % rej[6])
        n = d.query("SELECT COUNT(*) FROM alerts")[0][0]
        check(n == 2, "stored %d alerts" % n)
        n = d.query("SELECT COUNT(*) FROM events")[0][0]
        check(n == 1, "stored %d events" % n)
        m = d.metrics()
        check(m.get('kagari_intake_records_total{source="entra.signin",result="rejected"}') == 2
              and m.get('kagari_intake_records_total{source="entra.signin",result="normalized"}')
              == 5 and m.get('kagari_intake_records_total{source="unknown",result="rejected"}')
              == 2, "per-source metrics: %r" % {k: v for k, v in m.items() if "records" in k})
        r = d.post({"records": [5, {"category": "SignInLogs", "properties": []}]})
        expect_error(r, 400, "none of the 2 records", "records[0]")
        # "value" is an envelope only in a Graph page (@odata.context or @odata.nextLink).
        r = d.post({"value": [good[0]]})
        expect_error(r, 400, "source: required")
        r = d.post({"value": [good[2]], "@odata.nextLink": "https://graph.example/next"})
        check(r.status == 202 and r.json["accepted"] == 1, "Graph page: %r" % r)
        # A plain array stays all or nothing, as generic senders expect.
        r = d.post([good[0], {"title": "no source"}])
        expect_error(r, 400, "alerts[1]", "source")
        d.stop()


def test_json_lines():
    """A JSON Lines body (Azure logs archived to a storage account: one record per line, no
    envelope): each line one record with its own bytes as raw, CRLF and empty lines
    allowed; a line that is not JSON, of an unknown shape, or half written (the last line
    of a blob still being appended) is left out with its line number while the others are
    stored; the same lines again are duplicates."""
    with Daemon("jsonl") as d:
        d.start()
        recs = records_of(fixture("azure-bastion.json"))
        lines = [json.dumps(r, ensure_ascii=False).encode() for r in recs]
        body = (lines[0] + b"\r\n" + lines[1] + b"\n\n" + lines[2] + b"\n"
                + b'{"not json\n' + b'{"category":"Nope","properties":{}}\n'
                + lines[0][:len(lines[0]) // 2])
        with d.client() as c:
            r = c.post(raw=body, content_type="application/x-ndjson")
            check(r.status == 202, "JSON Lines: %r" % r)
            j = r.json
            check(j["accepted"] == 3 and j["duplicates"] == 0, "counts: %r" % j)
            check([i is None for i in j["ids"]] == [False, False, False, True, True, True],
                  "ids: %r" % j["ids"])
            errs = {x["index"]: x["error"] for x in j["rejected"]}
            check(sorted(errs) == [3, 4, 5] and "line 5" in errs[3] and "json" in errs[3]
                  and "line 6" in errs[4] and "Nope" in errs[4] and "line 7" in errs[5],
                  "rejected: %r" % j["rejected"])
            raw = d.query("SELECT raw FROM alerts ORDER BY id")
            check([x[0].encode() for x in raw] == lines, "raw is not each line's bytes: %r" % raw)
            r = c.post(raw=b"\n".join(lines) + b"\n", content_type="application/jsonl")
            check(r.status == 202 and r.json["accepted"] == 0 and r.json["duplicates"] == 3,
                  "the same lines again: %r" % r)
            r = c.post(raw=b"{oops\n[1]\n", content_type="application/x-ndjson")
            expect_error(r, 400, "none of the 2 records", "line 1")
            r = c.post(raw=b"\n".join(lines), content_type="text/plain")
            expect_error(r, 415)
        d.stop()


# The source each fixture record is, by the documented rules (docs/sources.md).
CATEGORY_SOURCE = {
    "SignInLogs": "entra.signin", "UserRiskEvents": "entra.risk",
    "RiskyUsers": "entra.riskyuser", "DeviceComplianceOrg": "intune.device",
    "Administrative": "azure.activity", "BastionAuditLogs": "azure.bastion",
    "ApplicationGatewayAccessLog": "azure.appgw", "ApplicationGatewayFirewallLog": "azure.waf",
    "AdvancedHunting-AlertEvidence": "defender.evidence",
    "AdvancedHunting-EmailEvents": "mdo.email",
    "AdvancedHunting-EmailPostDeliveryEvents": "mdo.postdelivery",
    "AdvancedHunting-UrlClickEvents": "mdo.urlclick",
}

# Members of our generic form (docs/http-api.md) that vendors' records also use.
GENERIC_NAMES = ("source", "source_id", "time", "title", "category", "severity",
                 "vendor_severity", "outcome", "class", "observables")


def expected_source(name, rec):
    cat = rec.get("category") or ""
    if name == "defender-alerts-graph.json":
        return ("mdo.alert" if rec.get("serviceSource") == "microsoftDefenderForOffice365"
                else "defender.alert")
    if cat == "AdvancedHunting-AlertInfo":
        svc = rec["properties"].get("ServiceSource") or ""
        return "mdo.alert" if "Office 365" in svc else "defender.alert"
    if cat.startswith("AZFW") or cat.startswith("AzureFirewall"):
        return "azure.firewall"
    if cat == "AuditLogs":
        return "intune.audit" if name.startswith("intune") else "entra.audit"
    return CATEGORY_SOURCE[cat]


def vendor_cases():
    """(what, body, source) for every record of every fixture: the record alone as it
    came; with a member "source" of its own (a vendor's value, a valid name of ours, the
    name of another source); and, where the record carries a Graph object (Entra's
    properties), that object alone as Graph returns it (a riskDetection has its own
    "source": "IdentityProtection")."""
    cases = []
    for name in sorted(os.listdir(FIXTURES)):
        if not name.endswith(".json"):
            continue
        for i, rec in enumerate(records_of(fixture(name))):
            want = expected_source(name, rec)
            what = "%s[%d]" % (name, i)
            check(name not in EXPECTED or want in EXPECTED[name] or
                  name == "defender-streaming.json", "%s: no %s in EXPECTED" % (what, want))
            cases.append((what, rec, want))
            for own in ("IdentityProtection", "AzureDiagnostics", "microsoft", "azure.waf"):
                cases.append(("%s with source %r" % (what, own), dict(rec, source=own), want))
            props = rec.get("properties")
            if name.startswith("entra-") and isinstance(props, dict):
                cases.append(("%s: its Graph object" % what, props, want))
                cases.append(("%s: its Graph object with source 'ids'" % what,
                              dict(props, source="ids"), want))
    return cases


def test_vendor_members_named_like_ours():
    """Every fixture record posted alone to the HTTP intake, with and without a member
    "source" of its own, and each Entra record's Graph object posted bare (a Graph Identity
    Protection riskDetection carries "source": "IdentityProtection"): each is taken for
    the source its shape names, with the members it shares with our generic form (time,
    category, title, severity, source) left as the vendor's data; only a record in our
    generic form (a valid source and a member only that form has) follows the generic
    rules."""
    cases = vendor_cases()
    shared = set()
    for _, body, _ in cases:
        shared |= set(GENERIC_NAMES) & set(body)
    check({"source", "time", "category", "title", "severity"} <= shared,
          "the fixtures no longer carry members named like ours: %r" % shared)
    with Daemon("vendor-members") as d:
        d.start()
        with d.client() as c:
            for what, body, want in cases:
                key = 'kagari_intake_records_total{source="%s",result="normalized"}' % want
                before = d.metrics().get(key, 0)
                r = c.post(raw=json.dumps(body).encode())
                check(r.status == 202 and r.json["accepted"] + r.json["duplicates"] == 1,
                      "%s: %r" % (what, r))
                check(d.metrics().get(key, 0) == before + 1,
                      "%s: not taken for %s: %r" % (what, want, {
                          k: v for k, v in d.metrics().items() if "intake_records" in k}))
            # A riskDetection as Graph returns it (a new one: the fixture's were stored
            # above): stored as entra.risk, with its user and address, its own "source"
            # kept in raw, byte for byte.
            det = dict(records_of(fixture("entra-idprotection.json"))[0]["properties"],
                       id="bare-risk-detection-1")
            text = json.dumps(det)
            r = c.post(raw=text.encode())
            check(r.status == 202 and r.json["accepted"] == 1, "bare riskDetection: %r" % r)
            aid = d.query("SELECT id FROM alerts WHERE source = 'entra.risk' AND raw = ?",
                          (text,))
            check(aid, "the bare riskDetection is not stored as entra.risk with its own text")
            obs = json.loads(d.query("SELECT observables FROM alerts WHERE id = ?",
                                     (aid[0][0],))[0][0]) if aid else []
            pairs = [(o["type"], o["value"]) for o in obs]
            check(("user", det["userPrincipalName"]) in pairs and
                  ("ip", det["ipAddress"]) in pairs, "observables of the riskDetection: %r" % obs)
            # Our generic form still wins where it says so, whatever the shape.
            generic = dict(det, source="mysiem.risk", outcome="blocked", id="generic-1")
            r = c.post(raw=json.dumps(generic).encode())
            check(r.status == 202 and r.json["accepted"] == 1, "generic: %r" % r)
            check(d.query("SELECT outcome FROM alerts WHERE source = 'mysiem.risk'") ==
                  [("blocked",)], "the generic form was not followed")
            # A vendor's "source" on a shape nobody knows: refused, saying why.
            r = c.post(raw=json.dumps({"source": "IdentityProtection", "x": 1}).encode())
            expect_error(r, 400, "source", "not a known record shape")
        d.stop()


test_vendor_members_named_like_ours.TIMEOUT = 180
