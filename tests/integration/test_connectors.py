"""Connector modules (graph, idp, security, defender, intune, http) driven by playbooks in
a real daemon against kagari-mock: each function's success and failure classes, token
refresh, Retry-After, circuit breaking, dry run, and crash safety (kill -9 while calls
are in flight: every side effect happens once)."""

import re
import time

from harness import Daemon, check, expect_accepted, playbook, wait_for
from mockctl import (ALERT_LSASS, ALICE, DEVICE_WS0142, FAILING, INCIDENT, JIRO, LEGACY,
                     OFFLINE, WS0077, WS0142, ADMIN)
from connhelp import (PRELUDE, ConnEnv, effects, expect_fail, expect_ok, log_times, lua_str,
                      outputs)


def test_graph_users():
    """graph.user / disable_user / enable_user / revoke_sessions: results, the mock's
    side-effect counters, 404 and 403 as nil + message, misuse raising."""
    body = """
    rec("user", graph.user(%(alice)s))
    rec("disable", graph.disable_user(%(alice)s))
    rec("after_disable", graph.user(%(alice_id)s))
    rec("revoke", graph.revoke_sessions(%(alice)s))
    rec("enable", graph.enable_user(%(alice)s))
    rec("missing", graph.user("nobody@example.jp"))
    rec("privileged", graph.disable_user(%(admin)s))
    try("misuse_empty", graph.user, "")
    try("misuse_type", graph.disable_user, {})
    """ % {"alice": lua_str(ALICE[1]), "alice_id": lua_str(ALICE[0]), "admin": lua_str(ADMIN[1])}
    with ConnEnv("graph-users", {"users": body}) as env:
        out, run, journal = env.fire("users")
        u = expect_ok(out, "user")
        check(u["userPrincipalName"] == ALICE[1] and u["accountEnabled"] is True,
              "graph.user: %r" % u)
        check(expect_ok(out, "disable") is True, "disable_user: %r" % out["disable"])
        check(expect_ok(out, "after_disable")["accountEnabled"] is False,
              "user still enabled after disable: %r" % out["after_disable"])
        check(expect_ok(out, "revoke") is True, "revoke_sessions: %r" % out["revoke"])
        check(expect_ok(out, "enable") is True, "enable_user: %r" % out["enable"])
        expect_fail(out, "missing", "graph.user", "404", "Request_ResourceNotFound")
        expect_fail(out, "privileged", "403", "Authorization_RequestDenied")
        expect_fail(out, "misuse_empty", "bad argument")
        expect_fail(out, "misuse_type", "bad argument")
        c = env.m.counters()["users"][ALICE[1]]
        check((c["disable"], c["enable"], c["revoke"]) == (1, 1, 1),
              "alice's counters: %r" % c)
        check(env.m.user_state(ALICE[1])["accountEnabled"] is True, "alice not re-enabled")
        kinds = [e["kind"] for e in effects(journal)]
        check(kinds == ["graph.user", "graph.disable_user", "graph.user",
                        "graph.revoke_sessions", "graph.enable_user", "graph.user",
                        "graph.disable_user"], "journal effects: %r" % kinds)
        req = effects(journal, "graph.disable_user")[0]["request"]
        check(req["method"] == "PATCH" and req["body"] == {"accountEnabled": False}
              and req["url"].endswith("/v1.0/users/alice%40example.jp"),
              "disable request: %r" % req)


ID_FUNCS = ["graph.user", "graph.disable_user", "graph.enable_user", "graph.revoke_sessions",
            "idp.risky_user", "security.alert", "security.incident", "security.comment_alert",
            "defender.machine", "defender.isolate", "defender.unisolate", "defender.av_scan",
            "defender.action", "defender.remove_indicator", "intune.remote_lock",
            "intune.retire", "intune.wipe", "intune.sync"]


def test_ids_path_tricks_refused():
    """Every connector function that puts an id in a URL path refuses the dot segments
    "." and ".." (URL normalization would send the request to another resource than the
    one journaled) and floats such as 0/0 or 1.5, before anything is journaled or sent;
    an integer id is its decimal text, sent as recorded."""
    calls = []
    for f in ID_FUNCS:
        for i, bad in enumerate(('"."', '".."', "0/0", "1.5", "{}", "true")):
            key = "%s_%d" % (f.replace(".", "_"), i)
            extra = ', "c"' if f == "security.comment_alert" else ""
            calls.append('try(%s, %s, %s%s)' % (lua_str(key), f, bad, extra))
    body = "\n".join("    " + c for c in calls) + """
    rec("int_id", graph.user(42))
"""
    with ConnEnv("ids", {"ids": body}) as env:
        out, run, journal = env.fire("ids")
        for f in ID_FUNCS:
            for i in range(6):
                key = "%s_%d" % (f.replace(".", "_"), i)
                expect_fail(out, key, "bad argument")
        expect_fail(out, "int_id", "404")
        es = effects(journal)
        check(len(es) == 1 and es[0]["kind"] == "graph.user"
              and "/v1.0/users/42?" in es[0]["request"]["url"],
              "only the integer id was journaled: %r" % es)
        sent = [e["path"] for e in env.m.log_entries(500) if not e["path"].startswith("/_mock")
                and "/oauth2/" not in e["path"]]
        check(sent == ["/v1.0/users/42"], "requests at the mock: %r" % sent)


def test_graph_signins_paging():
    """graph.signins follows @odata.nextLink across pages (page size 2 at the mock, an
    empty middle page) and filters by user and time."""
    body = """
    rec("all_n", #assert(graph.signins{ top = 2 }))
    local a = graph.signins{ user = %(alice)s, since = now() - 86400 * 3, top = 2 }
    local ids = {}
    for i, s in ipairs(a) do ids[i] = s.id; assert(s.userPrincipalName == %(alice)s) end
    rec("alice_ids", ids)
    rec("bad_since", pcall(graph.signins, { since = "yesterday" }))
    """ % {"alice": lua_str(ALICE[1])}
    with ConnEnv("graph-signins", {"signins": body}) as env:
        expected_all = env.m.graph("GET", "/v1.0/auditLogs/signIns?$top=1000").json["value"]
        expected_alice = [s["id"] for s in expected_all if s["userPrincipalName"] == ALICE[1]]
        env.m.config(page_size=2, empty_page=True)
        before = env.m.counters()["routes"].get("signIns.list", 0)
        out, run, journal = env.fire("signins", timeout=60)
        check(expect_ok(out, "all_n") == len(expected_all),
              "graph.signins gathered %r of %d sign-ins" % (out["all_n"], len(expected_all)))
        check(expect_ok(out, "alice_ids") == expected_alice,
              "alice's sign-ins %r, expected %r" % (out["alice_ids"], expected_alice))
        pages = env.m.counters()["routes"]["signIns.list"] - before
        check(pages >= len(expected_all) // 2 + 1,
              "only %d page requests for %d sign-ins at 2 per page" % (pages, len(expected_all)))
        check(not out["bad_since"]["ok"] or out["bad_since"]["v"] is False,
              "a malformed since did not raise: %r" % out["bad_since"])
        check(len(effects(journal, "graph.signins")) == 2, "one journal entry per signins call")


test_graph_signins_paging.TIMEOUT = 90


def test_idp():
    """idp.risky_user / confirm_compromised / dismiss / risk_detections against the mock,
    within its 1 request/s limit."""
    body = """
    rec("risky", idp.risky_user(%(jiro)s))
    rec("confirm", idp.confirm_compromised({ %(jiro)s }))
    rec("dismiss", idp.dismiss(%(alice)s))
    rec("detections", idp.risk_detections{ user = %(jiro_upn)s,
                                           since = now() - 86400 * 30 })
    rec("missing", idp.risky_user("00000000-0000-4000-8000-00000000dead"))
    try("misuse_empty_list", idp.dismiss, {})
    try("misuse_list", idp.confirm_compromised, { 1, 2 })
    """ % {"jiro": lua_str(JIRO[0]), "alice": lua_str(ALICE[0]), "jiro_upn": lua_str(JIRO[1])}
    with ConnEnv("idp", {"idp": body}) as env:
        out, run, journal = env.fire("idp", timeout=60)
        check(expect_ok(out, "risky")["id"] == JIRO[0], "risky_user: %r" % out["risky"])
        check(expect_ok(out, "confirm") is True and expect_ok(out, "dismiss") is True,
              "confirm/dismiss: %r %r" % (out["confirm"], out["dismiss"]))
        dets = expect_ok(out, "detections")
        check(isinstance(dets, list) and dets and all(
            x["userPrincipalName"] == JIRO[1] for x in dets), "risk_detections: %r" % dets)
        expect_fail(out, "missing", "404")
        expect_fail(out, "misuse_empty_list", "bad argument")
        expect_fail(out, "misuse_list", "bad argument")
        c = env.m.counters()["risky_users"]
        check(c[JIRO[0]]["confirm"] == 1 and c[ALICE[0]]["dismiss"] == 1, "counters: %r" % c)
        req = effects(journal, "idp.confirm_compromised")[0]["request"]
        check(req["body"] == {"userIds": [JIRO[0]]}, "confirm body: %r" % req)
        # 1 request/s for the tenant: the limiter spaces the calls (a 429 the mock may
        # still answer on jitter is retried with backoff, as it has no Retry-After)
        t = log_times([e for e in env.m.log_entries(100, "/v1.0/identityProtection/")
                       if e["status"] != 429])
        check(len(t) == 5 and all(b - a >= 800 for a, b in zip(t, t[1:])),
              "idp requests not spaced by the limiter: %r" % t)


test_idp.TIMEOUT = 90


def test_security():
    """security.alert / update_alert / comment_alert / incident / update_incident; enum
    values checked locally (misuse raises, nothing sent); unknown ids as nil + message."""
    body = """
    local function pick(t, ...)
      if t == nil then return nil end
      local o = {}
      for _, k in ipairs({ ... }) do o[k] = t[k] end
      return o
    end
    local a, e = security.alert(%(alert)s)
    rec("alert", pick(a, "id", "status"), e)
    a, e = security.update_alert(%(alert)s, { status = "inProgress",
        classification = "truePositive", determination = "malware",
        assigned_to = "soc@example.jp" })
    rec("update", pick(a, "status", "classification", "determination", "assignedTo"), e)
    rec("comment", security.comment_alert(%(alert)s, "isolated by kagari"))
    local inc, ie = security.incident(%(incident)s, { alerts = true })
    rec("incident", inc and { id = inc.id, nalerts = #inc.alerts }, ie)
    inc, ie = security.update_incident(%(incident)s, { status = "inProgress",
        custom_tags = { "kagari", "contained" } })
    rec("update_incident", pick(inc, "status", "customTags"), ie)
    rec("missing", security.alert("nope-000"))
    try("bad_status", security.update_alert, %(alert)s, { status = "done" })
    try("bad_field", security.update_alert, %(alert)s, { assignedTo = "x" })
    try("nothing", security.update_incident, %(incident)s, {})
    try("bad_incident_status", security.update_incident, %(incident)s, { status = "new" })
    """ % {"alert": lua_str(ALERT_LSASS), "incident": lua_str(INCIDENT)}
    with ConnEnv("security", {"sec": body}) as env:
        out, run, journal = env.fire("sec")
        check(expect_ok(out, "alert")["id"] == ALERT_LSASS, "alert: %r" % out["alert"])
        up = expect_ok(out, "update")
        check(up["status"] == "inProgress" and up["classification"] == "truePositive"
              and up["determination"] == "malware" and up["assignedTo"] == "soc@example.jp",
              "update_alert: %r" % up)
        cs = expect_ok(out, "comment")
        check(isinstance(cs, list) and any(c.get("comment") == "isolated by kagari" for c in cs),
              "comment_alert: %r" % cs)
        inc = expect_ok(out, "incident")
        check(inc["id"] == INCIDENT and inc["nalerts"] >= 1,
              "incident with alerts: %r" % inc)
        ui = expect_ok(out, "update_incident")
        check(ui["status"] == "inProgress" and ui["customTags"] == ["kagari", "contained"],
              "update_incident: %r" % ui)
        expect_fail(out, "missing", "404")
        expect_fail(out, "bad_status", "status", "done")
        expect_fail(out, "bad_field", "unknown field assignedTo")
        expect_fail(out, "nothing", "nothing to change")
        expect_fail(out, "bad_incident_status", "status")
        c = env.m.counters()
        check(c["alerts"][ALERT_LSASS] == {"update": 1, "comment": 1}, "alert counters: %r" % c)
        check(c["incidents"][INCIDENT]["update"] == 1, "incident counters: %r" % c)
        patch = effects(journal, "security.update_alert")[0]["request"]
        check(patch["body"] == {"status": "inProgress", "classification": "truePositive",
                                "determination": "malware", "assignedTo": "soc@example.jp"},
              "PATCH body: %r" % patch)


def test_defender_machines_and_actions():
    """defender.machine / find_machine / isolate / unisolate / av_scan / restrict_code /
    collect_package / action; ActiveRequestAlreadyExists recorded as success (already);
    unsupported OS and unknown machines as nil + message."""
    body = """
    rec("machine", defender.machine(%(ws)s))
    rec("by_name", defender.machine(%(ws_name)s))
    local f = defender.find_machine{ host = %(ws_name)s }
    rec("find_host", #f == 1 and f[1].id or nil)
    local g = defender.find_machine{ ip = %(ws_ip)s }
    rec("find_ip", #g == 1 and g[1].id or nil)
    rec("find_none", #assert(defender.find_machine{ host = "nothing.example.jp" }))
    local iso = rec("isolate", defender.isolate(%(ws)s, "selective", "case 42"))
    rec("isolate_again", defender.isolate(%(ws)s, "selective", "case 42"))
    rec("action", defender.action(iso.id))
    rec("scan", defender.av_scan(%(ws77)s, "full"))
    rec("restrict", defender.restrict_code(%(ws77)s))
    rec("collect", defender.collect_package(%(ws77)s, "forensics"))
    rec("unisolate", defender.unisolate(%(ws77)s, "done"))
    rec("legacy", defender.isolate(%(legacy)s))
    rec("missing", defender.machine("0000000000000000000000000000000000000000"))
    rec("missing_action", defender.isolate("0000000000000000000000000000000000000000"))
    try("bad_kind", defender.isolate, %(ws)s, "partial")
    try("bad_find", defender.find_machine, { host = "a", ip = "192.0.2.1" })
    try("bad_ip", defender.find_machine, { ip = "192.0.2.1/24" })
    """ % {"ws": lua_str(WS0142[0]), "ws_name": lua_str(WS0142[1]), "ws_ip": lua_str(WS0142[2]),
           "ws77": lua_str(WS0077[0]), "legacy": lua_str(LEGACY[0])}
    with ConnEnv("defender", {"mde": body}) as env:
        out, run, journal = env.fire("mde")
        check(expect_ok(out, "machine")["computerDnsName"] == WS0142[1], "machine: %r" % out)
        check(expect_ok(out, "by_name")["id"] == WS0142[0], "machine by name: %r" % out)
        check(expect_ok(out, "find_host") == WS0142[0], "find_machine host: %r" % out)
        check(expect_ok(out, "find_ip") == WS0142[0], "find_machine ip: %r" % out)
        check(expect_ok(out, "find_none") == 0, "find_machine none: %r" % out["find_none"])
        iso = expect_ok(out, "isolate")
        check(iso["type"] == "Isolate" and iso["scope"] == "Selective"
              and iso["status"] == "Pending" and iso["requestorComment"] == "case 42",
              "isolate: %r" % iso)
        again = expect_ok(out, "isolate_again")
        check(again.get("already") is True and again.get("type") == "Isolate",
              "a duplicate isolate is not recorded as already: %r" % again)
        check(expect_ok(out, "action")["id"] == iso["id"], "action: %r" % out["action"])
        check(expect_ok(out, "scan")["type"] == "RunAntiVirusScan", "scan: %r" % out["scan"])
        check(expect_ok(out, "restrict")["type"] == "RestrictCodeExecution", "restrict")
        check(expect_ok(out, "collect")["type"] == "CollectInvestigationPackage", "collect")
        unis = expect_ok(out, "unisolate")
        check(unis["type"] == "Unisolate", "unisolate: %r" % unis)
        expect_fail(out, "legacy", "defender.isolate", "OsPlatformNotSupported")
        expect_fail(out, "missing", "404")
        expect_fail(out, "missing_action", "defender.isolate", "404")
        expect_fail(out, "bad_kind", "invalid option")
        expect_fail(out, "bad_find", "exactly one")
        expect_fail(out, "bad_ip", "ip")
        c = env.m.counters()["machines"]
        check(c[WS0142[0]].get("Isolate") == 1 and c[WS0142[0]]["rejected"] == 1,
              "WS0142 counters: %r" % c[WS0142[0]])
        reqs = [e["request"] for e in effects(journal) if e["kind"].startswith("defender.")
                and e["request"]["method"] == "POST"]
        bodies = [r["body"] for r in reqs]
        check({"Comment": "case 42", "IsolationType": "Selective"} in bodies
              and any(b.get("ScanType") == "Full" for b in bodies),
              "case-sensitive bodies: %r" % bodies)
        check(any(b["Comment"].startswith("Requested by kagari (run ") for b in bodies),
              "no default comment: %r" % bodies)
        # the already-pending answer is a success in the journal
        dups = effects(journal, "defender.isolate")
        check(dups[1]["status"] == "done" and dups[1]["result"]["already"] is True,
              "duplicate isolate journaled as %r" % dups[1])


def test_defender_wait_action():
    """defender.wait_action polls with journaled action reads and sleeps until a final
    state (Succeeded, Failed) or its timeout (an offline machine stays Pending)."""
    body = """
    local a = assert(defender.isolate(%(ws)s))
    rec("ok", defender.wait_action(a.id, { interval = 0.2, timeout = 10 }))
    local b = assert(defender.av_scan(%(failing)s))
    rec("failed", defender.wait_action(b.id, { interval = 0.2, timeout = 10 }))
    local c = assert(defender.isolate(%(offline)s))
    rec("timeout", defender.wait_action(c.id, { interval = 0.3, timeout = 1 }))
    rec("missing", defender.wait_action("00000000-0000-4000-8000-000000000000", { interval = 1 }))
    try("bad_interval", defender.wait_action, c.id, { interval = 0 })
    try("bad_opts", defender.wait_action, c.id, 5)
    """ % {"ws": lua_str(WS0142[0]), "failing": lua_str(FAILING[0]),
           "offline": lua_str(OFFLINE[0])}
    with ConnEnv("wait", {"wait": body}) as env:
        out, run, journal = env.fire("wait", timeout=60)
        check(expect_ok(out, "ok")["status"] == "Succeeded", "wait ok: %r" % out["ok"])
        check(expect_ok(out, "failed")["status"] == "Failed", "wait failed: %r" % out["failed"])
        check(out["timeout"] == {"ok": False, "e": "timeout"}, "wait timeout: %r" % out["timeout"])
        expect_fail(out, "missing", "404")
        expect_fail(out, "bad_interval", "interval")
        expect_fail(out, "bad_opts", "options")
        kinds = [e["kind"] for e in journal if e["kind"] != "log"]
        check("sleep" in kinds and kinds.count("defender.action") >= 6,
              "polls and sleeps are not journaled: %r" % kinds)
        # the offline wait: polls until 1 s of sleeps, the last sleep cut to the rest
        sleeps = [e["request"]["seconds"] for e in journal if e["kind"] == "sleep"]
        check(abs(sleeps[-1] - 0.1) < 1e-9 and sleeps[-4:-1] == [0.3, 0.3, 0.3],
              "offline wait sleeps: %r" % sleeps)


test_defender_wait_action.TIMEOUT = 90


def test_defender_indicators():
    """defender.add_indicator upserts (type/action names mapped, idempotent) and
    remove_indicator treats a second delete (404) as already done."""
    body = """
    local i = rec("add", defender.add_indicator{ type = "ip", value = "203.0.113.9",
        action = "block", title = "C2", description = "seen in case 42",
        severity = "high", expires = "2099-01-01T00:00:00Z" })
    rec("add_again", defender.add_indicator{ type = "ip", value = "203.0.113.9",
        action = "alert", title = "C2", description = "downgraded" })
    rec("hash", defender.add_indicator{ type = "sha256", action = "allowed",
        value = string.rep("ab", 32) })
    rec("remove", defender.remove_indicator(i.id))
    rec("remove_again", defender.remove_indicator(i.id))
    try("bad_type", defender.add_indicator, { type = "cidr", value = "x", action = "block" })
    try("bad_value", defender.add_indicator, { type = "ip", value = "203.0.113.0/24",
                                               action = "block" })
    try("bad_hash", defender.add_indicator, { type = "sha1", value = "abc", action = "block" })
    try("no_action", defender.add_indicator, { type = "ip", value = "203.0.113.9" })
    """
    with ConnEnv("indicators", {"ind": body}) as env:
        out, run, journal = env.fire("ind")
        i = expect_ok(out, "add")
        check(i["indicatorType"] == "IpAddress" and i["action"] == "Block"
              and i["severity"] == "High", "add_indicator: %r" % i)
        j = expect_ok(out, "add_again")
        check(j["id"] == i["id"] and j["action"] == "Alert", "upsert: %r / %r" % (i, j))
        check(expect_ok(out, "hash")["indicatorType"] == "FileSha256", "hash: %r" % out["hash"])
        check(expect_ok(out, "remove") is True, "remove: %r" % out["remove"])
        check(expect_ok(out, "remove_again") == {"already": True},
              "second remove: %r" % out["remove_again"])
        for k in ("bad_type", "bad_value", "bad_hash", "no_action"):
            expect_fail(out, k)
        c = env.m.counters()["indicators"]
        check((c["added"], c["updated"], c["removed"]) == (2, 1, 1), "counters: %r" % c)
        req = effects(journal, "defender.add_indicator")[0]["request"]["body"]
        check(req == {"indicatorValue": "203.0.113.9", "indicatorType": "IpAddress",
                      "action": "Block", "title": "C2", "description": "seen in case 42",
                      "severity": "High", "expirationTime": "2099-01-01T00:00:00Z"},
              "indicator body: %r" % req)


def test_intune():
    """intune.device (by user, name, Entra device id) and the remote actions: 204 -> true;
    Intune's error text (JSON inside the message) unwrapped."""
    body = """
    local byuser = assert(intune.device{ user = %(alice)s })
    local names = {}
    for i, d in ipairs(byuser) do names[i] = d.deviceName end
    table.sort(names)
    rec("by_user", names)
    rec("by_name", #assert(intune.device{ name = "WS-0142" }))
    rec("by_aad", assert(intune.device{ aad_id = "d3f10000-0000-4000-8000-000000000142" })[1].id)
    rec("lock", intune.remote_lock(%(dev)s))
    rec("sync", intune.sync(%(dev)s))
    rec("retire", intune.retire(%(dev)s))
    rec("wipe", intune.wipe(%(dev)s, { keep_user_data = true }))
    rec("missing", intune.remote_lock("0d1c0000-0000-4000-8000-00000000ffff"))
    try("two_keys", intune.device, { user = "a", name = "b" })
    try("bad_wipe", intune.wipe, %(dev)s, { keep_user_data = "yes" })
    """ % {"alice": lua_str(ALICE[1]), "dev": lua_str(DEVICE_WS0142)}
    with ConnEnv("intune", {"intune": body}) as env:
        out, run, journal = env.fire("intune")
        check(expect_ok(out, "by_user") == ["Alice iPhone", "WS-0142"], "by user: %r" % out)
        check(expect_ok(out, "by_name") == 1, "by name: %r" % out["by_name"])
        check(expect_ok(out, "by_aad") == DEVICE_WS0142, "by aad id: %r" % out["by_aad"])
        for k in ("lock", "sync", "retire", "wipe"):
            check(expect_ok(out, k) is True, "%s: %r" % (k, out[k]))
        e = expect_fail(out, "missing", "intune.remote_lock", "404", "Resource not found")
        check("_version" not in e, "the inner Intune message was not unwrapped: %r" % e)
        expect_fail(out, "two_keys", "exactly one")
        expect_fail(out, "bad_wipe", "keep_user_data")
        c = env.m.counters()["intune"][DEVICE_WS0142]
        check(all(c.get(k) == 1 for k in ("remoteLock", "syncDevice", "retire", "wipe")),
              "device counters: %r" % c)
        w = effects(journal, "intune.wipe")[0]["request"]
        check(w["body"] == {"keepEnrollmentData": False, "keepUserData": True}, "wipe: %r" % w)


def test_http_module():
    """http.request: any status is data ({status, body, json}); the allow list; plain http
    only to loopback; header and body checks raise."""
    body = """
    rec("get", http.request{ url = alert.raw.mock .. "/v1.0/users/alice@example.jp" })
    rec("post", http.request{ method = "post", url = alert.raw.mock .. "/api/indicators",
        headers = { ["X-Trace"] = "kagari" }, body = { indicatorValue = "x" } })
    rec("health", http.request{ url = alert.raw.health })
    rec("head", http.request{ method = "HEAD", url = alert.raw.health })
    rec("not_allowed", http.request{ url = "https://example.com/hook" })
    rec("other_port", http.request{ url = "https://127.0.0.1:1/hook" })
    rec("own", http.request{ url = alert.raw.own })
    rec("own_localhost", http.request{ url = alert.raw.own_localhost })
    try("plain_http", http.request, { url = "http://example.com/" })
    try("userinfo", http.request, { url = "https://u:p@127.0.0.1/" })
    try("crlf", http.request, { url = alert.raw.health, headers = { ["X-A"] = "a\\r\\nB: c" } })
    try("bad_name", http.request, { url = alert.raw.health, headers = { ["X A"] = "a" } })
    try("host_header", http.request, { url = alert.raw.health, headers = { Host = "x" } })
    try("bad_body", http.request, { method = "POST", url = alert.raw.health, body = "not json" })
    try("get_body", http.request, { url = alert.raw.health, body = {} })
    rec("timeout_ok", http.request{ url = alert.raw.health, timeout = "5s" })
    try("timeout", http.request, { url = alert.raw.health, timeout = 0 })
    try("bad_method", http.request, { method = "TRACE", url = alert.raw.health })
    """
    with ConnEnv("http", {"http": body}) as env:
        raw = {"mock": env.m.base_url, "health": env.local.url + "/healthz",
               "own": "http://127.0.0.1:%d/api/v1/alerts" % env.d.port,
               "own_localhost": "http://localhost:%d/healthz" % env.d.port}
        out, run, journal = env.fire("http", raw=raw)
        g = expect_ok(out, "get")
        check(g["status"] == 401 and g["json"]["error"]["code"] == "InvalidAuthenticationToken",
              "a 401 is data for the playbook: %r" % g)
        p = expect_ok(out, "post")
        check(p["status"] == 401 and isinstance(p["body"], str), "post: %r" % p)
        h = expect_ok(out, "health")
        check(h["status"] == 200, "GET /healthz over loopback http: %r" % h)
        check(expect_ok(out, "head")["body"] == "", "HEAD: %r" % out["head"])
        check(out["not_allowed"] == {"ok": False, "e": "host not allowed"},
              "not allowed: %r" % out["not_allowed"])
        check(out["other_port"] == {"ok": False, "e": "host not allowed"},
              "an allowed host on another port: %r" % out["other_port"])
        for k in ("own", "own_localhost"):
            check(out[k] == {"ok": False, "e": "refused: the engine's own listener"},
                  "the engine's own intake: %r" % out[k])
        expect_fail(out, "plain_http", "https")
        expect_fail(out, "userinfo", "user info")
        expect_fail(out, "crlf", "control character")
        expect_fail(out, "bad_name", "header name")
        expect_fail(out, "host_header", "Host")
        expect_fail(out, "bad_body", "JSON")
        expect_fail(out, "get_body", "GET")
        check(expect_ok(out, "timeout_ok")["status"] == 200, "timeout 5s: %r" % out["timeout_ok"])
        expect_fail(out, "timeout", "timeout")
        expect_fail(out, "bad_method", "method")
        post = effects(journal, "http.request")[1]["request"]
        check(post["method"] == "POST" and post["body"] == {"indicatorValue": "x"},
              "journaled POST: %r" % post)
        hits = [e for e in env.m.log_entries(200) if e["path"] == "/api/indicators"]
        check(len(hits) >= 1 and hits[0]["method"] == "POST", "mock saw: %r" % hits)


def test_refused_app_not_asked_on_every_call():
    """An app the token endpoint refuses (an expired secret: invalid_client) is asked
    once: the next calls fail at once with the endpoint's message instead of sending a
    token request each (40 a minute were seen), until the back-off window passes."""
    import mockctl
    body = """
    for i = 1, 6 do rec("u" .. i, graph.user(%s)) end
    """ % lua_str(ALICE[1])
    with ConnEnv("refused-app", {"r": body},
                 client=(mockctl.EXPIRED_CLIENT_ID, mockctl.EXPIRED_CLIENT_SECRET)) as env:
        out, run, journal = env.fire("r", timeout=60)
        for i in range(1, 7):
            expect_fail(out, "u%d" % i, "token", "invalid_client")
        token_requests = [e for e in env.m.log_entries(200) if "/oauth2/" in e["path"]]
        check(len(token_requests) == 1, "token requests: %d" % len(token_requests))
        check(env.m.log_entries(200, "/v1.0/users/") == [], "a call went out without a token")


def test_run_retry_continues_a_failed_run():
    """kagari run retry: a run that failed at a connector call (a 404 the playbook
    asserted on) is queued again; after a reload the daemon continues it from its
    journal: the finished disable_user is not repeated, the failed lookup is made again
    and the run ends done. Only failed runs can be retried."""
    import signal
    body = """
    rec("disable", graph.disable_user(%s))
    local u = assert(graph.user(%s))
    rec("user", u)
    """ % (lua_str(ALICE[1]), lua_str(JIRO[1]))
    with ConnEnv("retry", {"r": body}) as env:
        env.m.fault("/v1.0/users/" + JIRO[1], status=404, count=1)
        out, run, journal = env.fire("r", state="failed")
        check("404" in (run["error"] or ""), "run error: %r" % run["error"])
        p = env.d.cli("run", "show", str(run["id"]), "--tenant", "t1")
        check("stopped   at step #3 (graph.user, failed)" in p.stdout,
              "run show does not say where the run stopped: %r" % p.stdout)
        p = env.d.cli("run", "retry", str(run["id"]), "--tenant", "t1")
        check("queued again" in p.stdout, "retry: %r" % p.stdout)
        env.d.proc.send_signal(signal.SIGHUP)
        run2 = env.d.wait_run_final(run["alert_id"], timeout=30)
        journal = env.d.run_show(run2["id"])["journal"]
        check(run2["id"] == run["id"] and run2["state"] == "done",
              "after the retry: %r" % run2)
        expect_ok(outputs(journal), "user")
        check(env.m.user_counter(ALICE[1], "disable") == 1, "disable_user was repeated")
        kinds = [(e["kind"], e["status"]) for e in effects(journal)]
        check(kinds == [("graph.disable_user", "done"), ("graph.user", "done")],
              "journal: %r" % kinds)
        p = env.d.cli("run", "retry", str(run["id"]), "--tenant", "t1", check_rc=1)
        check("no failed run" in p.stderr, "retry of a done run: %r" % p.stderr)
        p = env.d.cli("run", "retry", "999", check_rc=1)
        check("no failed run 999" in p.stderr, "retry of no run: %r" % p.stderr)


def test_token_refresh_on_401():
    """A token the server no longer accepts (expired at the mock) gets one 401: the
    connector drops it, fetches a new one and retries once, and the call succeeds."""
    body = """
    rec("user", graph.user(%s))
    """ % lua_str(ALICE[1])
    with ConnEnv("refresh", {"tok": body}) as env:
        out, run, journal = env.fire("tok")
        expect_ok(out, "user")
        c0 = env.m.counters()
        env.m.expire_tokens()
        out, run, journal = env.fire("tok")
        expect_ok(out, "user")
        c1 = env.m.counters()
        check(c1["answered_401"] - c0["answered_401"] == 1,
              "expected exactly one 401, got %d" % (c1["answered_401"] - c0["answered_401"]))
        check(c1["tokens"]["issued"] - c0["tokens"]["issued"] == 1,
              "expected one new token, got %d" % (c1["tokens"]["issued"] - c0["tokens"]["issued"]))
        users = [e for e in env.m.log_entries(50, "/v1.0/users/")]
        check([e["status"] for e in users[-2:]] == [401, 200], "retry after 401: %r" % users)


def test_429_retry_after():
    """A 429 with Retry-After: 2 is retried, and the next attempt reaches the mock no
    sooner than two seconds later; a 429 without Retry-After (Identity Protection) is
    retried with backoff."""
    body = """
    rec("user", graph.user(%s))
    rec("risky", idp.risky_user(%s))
    """ % (lua_str(ALICE[1]), lua_str(JIRO[0]))
    with ConnEnv("retry-after", {"ra": body}) as env:
        env.m.fault("/v1.0/users/", status=429, retry_after=2, count=1)
        env.m.fault("/v1.0/identityProtection/", status=429, count=1)
        out, run, journal = env.fire("ra", timeout=60)
        expect_ok(out, "user")
        expect_ok(out, "risky")
        users = env.m.log_entries(50, "/v1.0/users/")
        check([e["status"] for e in users] == [429, 200], "user requests: %r" % users)
        t = log_times(users)
        check(t[1] - t[0] >= 1950, "retried %d ms after a Retry-After of 2 s" % (t[1] - t[0]))
        idp = env.m.log_entries(50, "/v1.0/identityProtection/")
        check([e["status"] for e in idp] == [429, 200], "idp requests: %r" % idp)
        check(len(effects(journal)) == 2 and all(e["status"] == "done" for e in effects(journal)),
              "the retries are not separate journal entries")


test_429_retry_after.TIMEOUT = 90


def test_retry_after_forms_and_maximum():
    """Retry-After as an HTTP-date is honoured like delta-seconds; a wait longer than
    connectors.retry_after_max (or past the run's deadline) fails the call at once with
    "throttled for N s" instead of holding the run silently; throttling is counted."""
    body = """
    rec("date", graph.user(%s))
    rec("long", graph.user(%s))
    """ % (lua_str(ALICE[1]), lua_str(JIRO[1]))
    with ConnEnv("retry-after-forms", {"ra": body}, retry_after_max="30s") as env:
        env.m.fault("/v1.0/users/" + ALICE[1], status=429, retry_after=2, retry_after_date=True,
                    count=1)
        env.m.fault("/v1.0/users/" + JIRO[1], status=429, retry_after=3600, count=1)
        t0 = time.time()
        out, run, journal = env.fire("ra", timeout=60)
        expect_ok(out, "date")
        users = env.m.log_entries(50, "/v1.0/users/" + ALICE[1])
        t = log_times(users)
        check([e["status"] for e in users] == [429, 200] and t[1] - t[0] >= 900,
              "HTTP-date Retry-After: %r" % users)
        expect_fail(out, "long", "throttled for 3600 s", "retry_after_max")
        check(time.time() - t0 < 20, "the long Retry-After was waited for")
        jiro = env.m.log_entries(50, "/v1.0/users/" + JIRO[1])
        check(len(jiro) == 1, "the throttled call was resent: %r" % jiro)
        m = env.d.get("/metrics").body.decode()
        check(re.search(r"^kagari_connector_throttled_total [2-9]", m, re.M) is not None,
              "throttling not counted: %s" % [ln for ln in m.splitlines() if "throttled" in ln])


test_retry_after_forms_and_maximum.TIMEOUT = 90


def test_throttled_state_and_waits_in_journal():
    """While the server makes a call wait (429 with Retry-After: 4), the run shows the
    state "throttled" with the time of the next attempt, in `runs` and `run show`; the
    wait is recorded in the call's journal entry (reason, HTTP status, its start and end),
    and after it the run is done, no longer throttled. A 503 without Retry-After is a
    backoff wait ("retry"), which does not show as throttled."""
    body = """
    rec("user", graph.user(%s))
    rec("jiro", graph.user(%s))
    """ % (lua_str(ALICE[1]), lua_str(JIRO[1]))
    with ConnEnv("throttled-state", {"th": body}) as env:
        env.m.fault("/v1.0/users/" + ALICE[1], status=429, retry_after=4, count=1)
        env.m.fault("/v1.0/users/" + JIRO[1], status=503, count=1)
        aid = env.post("th")
        env.wait_mock_log("/v1.0/users/" + ALICE[1], 1)
        run = wait_for(lambda: (lambda rs: rs[0] if rs and rs[0]["state"] == "throttled"
                                else None)([r for r in env.d.runs() if r["alert_id"] == aid]),
                       3, "the run shown as throttled")
        check(isinstance(run.get("throttled_until"), int)
              and run["throttled_until"] - time.time() * 1000 > 1000,
              "throttled_until: %r" % run)
        text = env.d.cli("run", "show", str(run["id"]), "--tenant", "t1").stdout
        check("state     throttled (the server asked to wait; next attempt at" in text,
              "run show text: %s" % text)
        check("waited 4.0 s (throttled by the server, HTTP 429)" in text,
              "the wait is not shown with its step: %s" % text)
        out, run, journal = env.result(aid, timeout=30)
        check(run["state"] == "done", "run after the wait: %r" % run)
        expect_ok(out, "user")
        expect_ok(out, "jiro")
        calls = effects(journal, "graph.user")
        check(len(calls) == 2, "graph.user entries: %r" % calls)
        w = calls[0].get("waits")
        check(isinstance(w, list) and len(w) == 1 and w[0]["reason"] == "throttled"
              and w[0]["status"] == 429 and 3900 <= w[0]["until"] - w[0]["at"] <= 4100
              and calls[0]["started"] <= w[0]["at"] <= calls[0]["ended"],
              "throttling wait in the journal: %r" % calls[0])
        w = calls[1].get("waits")
        check(isinstance(w, list) and len(w) == 1 and w[0]["reason"] == "retry"
              and w[0]["status"] == 503, "backoff wait in the journal: %r" % calls[1])
        check(all(r["state"] != "throttled" for r in env.d.runs()), "still throttled after")
        m = env.d.get("/metrics").body.decode()
        check(re.search(r'^kagari_effect_waits_total\{reason="throttled"\} 1$', m, re.M)
              and re.search(r'^kagari_effect_waits_total\{reason="retry"\} 1$', m, re.M),
              "waits not counted: %s" % [ln for ln in m.splitlines() if "waits" in ln])


test_throttled_state_and_waits_in_journal.TIMEOUT = 90


def test_500_502_retried_when_safe():
    """A GET answered 500 (or 502) and then 200 succeeds after one retry with backoff; a
    POST that is not safe to repeat and cannot reconcile (http.request) answered 500 is
    not resent: the 500 is data for the playbook."""
    body = """
    rec("u500", graph.user(%s))
    rec("u502", graph.user(%s))
    rec("post", http.request{ method = "POST", url = alert.raw.mock .. "/v1.0/kagari-once",
        body = { x = 1 } })
    """ % (lua_str(ALICE[1]), lua_str(JIRO[1]))
    with ConnEnv("5xx-retry", {"r": body}) as env:
        env.m.fault("/v1.0/users/alice", status=500, count=1)
        env.m.fault("/v1.0/users/jiro", status=502, count=1)
        env.m.fault("/v1.0/kagari-once", method="POST", status=500, count=5)
        out, run, journal = env.fire("r", raw={"mock": env.m.base_url}, timeout=60)
        check(expect_ok(out, "u500")["userPrincipalName"] == ALICE[1], "u500: %r" % out)
        check(expect_ok(out, "u502")["userPrincipalName"] == JIRO[1], "u502: %r" % out)
        for who, st in (("alice", 500), ("jiro", 502)):
            hits = env.m.log_entries(50, "/v1.0/users/" + who)
            check([e["status"] for e in hits] == [st, 200], "%s requests: %r" % (who, hits))
        check(expect_ok(out, "post")["status"] == 500, "post: %r" % out["post"])
        hits = env.m.log_entries(50, "/v1.0/kagari-once")
        check(len(hits) == 1, "a non-idempotent POST answered 500 was resent: %r" % hits)


test_500_502_retried_when_safe.TIMEOUT = 90


def test_junk_answers():
    """A 200 that is not the API's JSON (a proxy's HTML page, cut JSON, 10,000-deep JSON,
    a \\u0000 escape, gzip bytes without Content-Encoding, a coding not asked for) is
    retried and then fails: the playbook gets nil + message and the journal stays valid
    JSON. One junk answer followed by the real one succeeds."""
    kinds = ["html", "truncated", "deep", "nul", "gzip", "br"]
    body = "".join('rec(%s, graph.user(%s))\n' % (lua_str(k), lua_str(ALICE[1]))
                   for k in kinds)
    body += 'rec("once", graph.user(%s))\n' % lua_str(ALICE[1])
    with ConnEnv("junk", {"j": body}, max_attempts=2) as env:
        for k in kinds:
            env.m.fault("/v1.0/users/", malformed=k, count=2)
        env.m.fault("/v1.0/users/", malformed="html", count=1)
        out, run, journal = env.fire("j", timeout=90)  # run_show parsed the journal
        expect_fail(out, "html", "graph.user", "the answer is not JSON (text/html)")
        for k in ("truncated", "deep", "nul", "gzip"):
            expect_fail(out, k, "graph.user", "the answer is not JSON (application/json")
        expect_fail(out, "br", "graph.user", "Content-Encoding br was not asked for")
        check(expect_ok(out, "once")["userPrincipalName"] == ALICE[1], "once: %r" % out["once"])
        results = [e["result"] for e in effects(journal, "graph.user")]
        check(len(results) == 7, "journal: %r" % results)
        check(len(env.m.log_entries(200, "/v1.0/users/")) == 14, "each junk class retried once")


test_junk_answers.TIMEOUT = 120


def test_5xx_storm_opens_circuit():
    """Repeated 500s from Defender: each call fails with nil + message; the tenant's
    circuit for that endpoint opens (logged, in /metrics), after which attempts wait for
    the circuit's trial instead of hammering the API: no two attempts while it is open
    come closer than the cooldown. The engine stays healthy and serves other runs."""
    body = """
    local last
    for i = 1, 6 do
      local m, err = defender.machine(%s)
      last = err
    end
    error("gave up: " .. tostring(last))
    """ % lua_str(WS0142[0])
    other = """
    rec("health", http.request{ url = alert.raw.health })
    """
    with ConnEnv("storm", {"storm": body, "other": other}, max_attempts=2,
                 breaker=(3, "1s")) as env:
        env.m.fault("/api/machines", status=500, count=100)
        out, run, journal = env.fire("storm", state="failed", timeout=60)
        check("HTTP 500" in (run["error"] or ""), "run error: %r" % run["error"])
        errs = [e["result"] for e in effects(journal, "defender.machine")]
        check(len(errs) == 6 and all("HTTP 500" in e for e in errs), "call results: %r" % errs)
        hits = log_times(env.m.log_entries(200, "/api/machines"))
        check(len(hits) >= 6, "every call reached the API in the end: %d" % len(hits))
        gaps = [b - a for a, b in zip(hits[2:], hits[3:])]  # open after the third failure
        check(all(g >= 900 for g in gaps), "attempts while the circuit was open: gaps %r" % gaps)
        log = env.d.log()
        check("event=breaker.open key=\"t1 https://127.0.0.1:" in log, "no breaker.open line")
        check("event=call.breaker_wait tenant=t1" in log, "no breaker_wait line")
        m = env.d.get("/metrics").body.decode()
        check('kagari_breaker_transitions_total{to="open"}' in m
              and "kagari_connector_breaker_waits_total" in m, "breaker metrics missing")
        r = env.d.get("/healthz")
        check(r.status == 200, "healthz after the storm: %r" % r)
        out, run2, _ = env.fire("other", raw={"health": env.local.url + "/healthz"})
        check(expect_ok(out, "health")["status"] == 200, "another run after the storm")


def test_outage_waits_at_open_circuit():
    """An outage shorter than the run's deadline delays a call without losing it: once
    the circuit is open, the next run's call waits for the trial instead of failing, and
    succeeds when the API is back (before, it failed at once with "circuit open" and the
    containment was dropped for good)."""
    body = 'rec("m", defender.machine(%s))' % lua_str(WS0142[0])
    with ConnEnv("outage", {"m": body}, max_attempts=2, breaker=(2, "1s")) as env:
        env.m.fault("/api/machines", status=503, count=2)
        out, _, _ = env.fire("m", timeout=30)
        expect_fail(out, "m", "HTTP 503")  # two failed attempts: the circuit opens
        out, run, journal = env.fire("m", timeout=30)
        v = expect_ok(out, "m")
        check(v["id"] == WS0142[0], "machine: %r" % v)
        e = effects(journal, "defender.machine")[0]
        waits = [w for w in e.get("waits") or [] if w["reason"] == "breaker"]
        check(len(waits) >= 1, "the call did not wait at the open circuit: %r" % e)
        # The trial goes out no sooner than the cool-down after the failure that opened
        # the circuit (a lower bound: a busy host only makes the gap longer).
        hits = env.m.log_entries(50, "/api/machines")
        t = log_times(hits)
        check([h["status"] for h in hits] == [503, 503, 200] and t[2] - t[1] >= 900,
              "requests at the mock: %r" % hits)


test_outage_waits_at_open_circuit.TIMEOUT = 60


def test_breaker_is_per_tenant():
    """One tenant's failing calls open that tenant's circuit only: another tenant calling
    the same endpoint goes straight through."""
    import mockctl
    from mockctl import MockServer
    storm = """
    for i = 1, 3 do defender.isolate(%s, "full", "storm") end
    """ % lua_str(WS0142[0])
    probe = 'rec("m", defender.machine(%s))' % lua_str(WS0142[0])
    with MockServer() as m:
        ms = ("microsoft = { authority = %s, graph = %s, defender = %s, tenant_id = %s, "
              "client_id = %s, client_secret = %s }"
              % (lua_str(m.base_url), lua_str(m.base_url), lua_str(m.base_url),
                 lua_str(mockctl.TENANT), lua_str(mockctl.CLIENT_ID),
                 lua_str(mockctl.CLIENT_SECRET)))
        cfg = ("connectors = { ca_file = %s, max_attempts = 1, breaker_threshold = 2, "
               "breaker_cooldown = \"30s\" }\ntenants = { t1 = { %s }, t2 = { %s } }\n"
               % (lua_str(m.ca_file), ms, ms))
        with Daemon("breaker-tenants", config_extra=cfg) as d:
            d.add_tenant("t2")
            d.write_playbook("storm.lua", playbook("storm", "it.storm", PRELUDE + storm))
            d.write_playbook("probe.lua", playbook("probe", "it.probe", PRELUDE + probe))
            d.start()
            m.fault("/api/machines/%s/isolate" % WS0142[0], status=500, count=100)
            aid = expect_accepted(d.post({"source": "it.storm", "source_id": "s1"}), 1)[0]
            wait_for(lambda: "event=breaker.open key=\"t1 " in d.log() or None, 30,
                     "t1's circuit open")
            bid = expect_accepted(d.post({"source": "it.probe", "source_id": "p1"},
                                         tenant="t2"), 1)[0]
            run = d.wait_run_final(bid, timeout=10, tenant="t2")
            journal = d.run_show(run["id"], tenant="t2")["journal"]
            out = outputs(journal)
            check(run["state"] == "done" and out["m"]["ok"], "t2's call: %r" % out)
            e = effects(journal, "defender.machine")[0]
            check(e["ended"] - e["started"] < 900, "t2 waited at t1's circuit: %r" % e)
            check("call.breaker_wait tenant=t2" not in d.log(), "t2 waited at a circuit")
            d.stop()
            check(aid > 0, "the storm's alert")


test_5xx_storm_opens_circuit.TIMEOUT = 90


def test_dry_run():
    """tenants.t1.dry_run = true: nothing reaches the mock (not even a token request); the
    journal shows every intended request and the playbook gets {dry_run = true}."""
    body = """
    rec("disable", graph.disable_user(%(alice)s))
    rec("isolate", defender.isolate(%(ws)s, "full", "dry"))
    rec("comment", security.comment_alert(%(alert)s, "dry"))
    rec("wipe", intune.wipe(%(dev)s))
    rec("http", http.request{ method = "POST", url = alert.raw.mock .. "/hook", body = { a = 1 } })
    """ % {"alice": lua_str(ALICE[1]), "ws": lua_str(WS0142[0]), "alert": lua_str(ALERT_LSASS),
           "dev": lua_str(DEVICE_WS0142)}
    with ConnEnv("dry", {"dry": body}, dry_run=True) as env:
        out, run, journal = env.fire("dry", raw={"mock": env.m.base_url})
        for k in ("disable", "isolate", "comment", "wipe", "http"):
            v = expect_ok(out, k)
            check(v.get("dry_run") is True and "request" in v, "%s: %r" % (k, v))
        c = env.m.counters()
        check(c["requests_total"] == 0 and c["tokens"]["issued"] == 0,
              "the mock was called in dry-run: %r" % c)
        reqs = {e["kind"]: e["request"] for e in effects(journal)}
        check(reqs["defender.isolate"]["url"].endswith("/api/machines/%s/isolate" % WS0142[0])
              and reqs["defender.isolate"]["body"] == {"Comment": "dry", "IsolationType": "Full"},
              "isolate intent: %r" % reqs["defender.isolate"])
        check(reqs["graph.disable_user"]["body"] == {"accountEnabled": False},
              "disable intent: %r" % reqs["graph.disable_user"])
        check(all(e["status"] == "done" for e in effects(journal)), "dry-run entries not done")


# ---- crash safety ----

CONTAIN = """
    sleep(1)
    rec("disable", graph.disable_user(%(alice)s))
    sleep(1)
    rec("revoke", graph.revoke_sessions(%(alice)s))
    sleep(1)
    rec("isolate", defender.isolate(%(ws)s, "full", "contain"))
    sleep(1)
    rec("done", true)
""" % {"alice": lua_str(ALICE[1]), "ws": lua_str(WS0142[0])}


def _wait_journal(env, alert_id, pred, what, timeout=20):
    def get():
        runs = env.d.runs_of_alert(alert_id)
        if len(runs) != 1:
            return None
        j = env.d.db_journal(runs[0]["id"])
        return j if pred(j) else None
    return wait_for(get, timeout, what)


def test_crash_safety_containment():
    """kill -9 before, during and after each call of disable_user, revoke_sessions and
    isolate (the mock holds a call in flight; the run sleeps between calls): after a
    restart each run completes, the user is disabled and the machine isolated, and the
    isolate request was sent exactly once (in doubt, it is reconciled from the machine's
    actions). An idempotent call caught in flight may be sent again (that is its
    contract: docs/ARCHITECTURE.md "Durable runs"); every other call reaches the mock exactly once."""
    alice_path = "/v1.0/users/%s" % ALICE[1]
    iso_path = "/api/machines/%s/isolate" % WS0142[0]
    kinds = ["graph.disable_user", "graph.revoke_sessions", "defender.isolate"]
    # (point, path held in flight, its method, or: the number of sleeps begun)
    points = [
        ("before", None, None, 1),
        ("during-disable", alice_path, "PATCH", None),
        ("after-disable", None, None, 2),
        ("during-revoke", alice_path + "/revokeSignInSessions", "POST", None),
        ("after-revoke", None, None, 3),
        ("during-isolate", iso_path, "POST", None),
        ("after-isolate", None, None, 4),
    ]
    with ConnEnv("crash", {"contain": CONTAIN}) as env:
        for point, path, method, nsleep in points:
            env.m.reset()
            if path is not None:
                env.m.delay(path, 4000)
            aid = env.post("contain")
            if nsleep is not None:
                _wait_journal(env, aid,
                              lambda j: sum(e["kind"] == "sleep" for e in j) == nsleep
                              and len(effects(j)) == nsleep - 1
                              and all(e["status"] == "done" for e in effects(j)),
                              "the run in sleep %d" % nsleep)
            else:
                def in_flight():
                    es = [e for e in env.m.log_entries(200, path)
                          if e["method"] == method and e["path"] == path]
                    return es or None
                wait_for(in_flight, 20, "the %s call in flight at the mock" % point)
            env.d.kill9()
            if path is not None:
                env.m.delay(path, 0)
            env.d.restart()
            out, run, journal = env.result(aid, timeout=60)
            check(run["state"] == "done", "%s: run %s (%s)" % (point, run["state"], run["error"]))
            check(expect_ok(out, "done") is True, "%s: the run did not finish" % point)
            c = env.m.counters()
            u = c["users"].get(ALICE[1], {})
            mc = c["machines"].get(WS0142[0], {})
            check(env.m.user_state(ALICE[1])["accountEnabled"] is False,
                  "%s: alice not disabled" % point)
            check(mc.get("Isolate") == 1 and mc.get("rejected", 0) == 0,
                  "%s: isolate requests at the mock: %r" % (point, mc))
            want_disable = (1, 2) if point == "during-disable" else (1,)
            want_revoke = (1, 2) if point == "during-revoke" else (1,)
            check(u.get("disable") in want_disable and u.get("revoke") in want_revoke,
                  "%s: alice's counters %r" % (point, u))
            check([e["kind"] for e in effects(journal)] == kinds,
                  "%s: journal effects %r" % (point, [e["kind"] for e in effects(journal)]))
            iso = effects(journal, "defender.isolate")[0]
            actions = env.m.machine_state(WS0142[0])["actions"]
            check(len(actions) == 1 and iso["status"] == "done"
                  and iso["result"]["id"] == actions[0]["id"],
                  "%s: isolate recorded %r, mock has %r" % (point, iso["result"], actions))
            if point == "during-isolate":
                check(re.search(r"call\.reconciled .*kind=defender\.isolate", env.d.log()),
                      "the in-doubt isolate was not reconciled:\n%s" % env.d.log()[-2000:])


test_crash_safety_containment.TIMEOUT = 240


def test_crash_in_doubt_other_effects():
    """Calls that are not safe to repeat, caught in flight by kill -9: comment_alert finds
    its comment on the alert, intune.wipe finds its action in deviceActionResults (both
    done once), and an http POST fails with "left in doubt" rather than posting twice."""
    cases = {
        "comment": ("security.comment_alert",
                    "/v1.0/security/alerts_v2/%s/comments" % ALERT_LSASS,
                    'rec("r", security.comment_alert(%s, "kagari crash test"))'
                    % lua_str(ALERT_LSASS)),
        "wipe": ("intune.wipe", "/v1.0/deviceManagement/managedDevices/%s/wipe" % DEVICE_WS0142,
                 'rec("r", intune.wipe(%s))' % lua_str(DEVICE_WS0142)),
        "post": ("http.request", "/hook-in-doubt",
                 'rec("r", http.request{ method = "POST", url = alert.raw.mock .. '
                 '"/hook-in-doubt", body = { n = 1 } })'),
    }
    pbs = {k: v[2] for k, v in cases.items()}
    with ConnEnv("doubt", pbs) as env:
        for name, (kind, path, _) in cases.items():
            env.m.reset()
            env.m.delay(path, 4000)
            aid = env.post(name, {"mock": env.m.base_url})
            wait_for(lambda: env.m.log_entries(100, path) or None, 20, "%s in flight" % name)
            env.d.kill9()
            env.m.delay(path, 0)
            env.d.restart()
            out, run, journal = env.result(aid, timeout=60)
            check(run["state"] == "done", "%s: run %s (%s)" % (name, run["state"], run["error"]))
            hits = [e for e in env.m.log_entries(200, path) if e["method"] == "POST"]
            check(len(hits) == 1, "%s: %d POSTs reached the mock" % (name, len(hits)))
            if name == "post":
                expect_fail(out, "r", "left in doubt")
            else:
                expect_ok(out, "r")
                check("call.reconciled" in env.d.log(), "%s: not reconciled" % name)


test_crash_in_doubt_other_effects.TIMEOUT = 180


def test_two_runs_isolate_one_machine():
    """Two runs isolating the same machine at once: their requests never overlap (the
    exclusive key), and the second, before sending, finds the first run's isolate action
    and records it: one isolate request reaches the API, one action exists."""
    body = """
    rec("isolate", defender.isolate(%s, "full", "race"))
    """ % lua_str(WS0142[0])
    with ConnEnv("race", {"race": body}) as env:
        path = "/api/machines/%s/isolate" % WS0142[0]
        env.m.delay(path, 1500)
        a1 = env.post("race")
        a2 = env.post("race")
        o1, r1, _ = env.result(a1, timeout=60)
        o2, r2, _ = env.result(a2, timeout=60)
        check(r1["state"] == "done" and r2["state"] == "done", "runs: %r %r" % (r1, r2))
        res = [expect_ok(o1, "isolate"), expect_ok(o2, "isolate")]
        check(res[0].get("id") and res[0].get("id") == res[1].get("id"),
              "both runs should record the one action: %r" % res)
        check("call.reconciled" in env.d.log(), "the second call was not reconciled")
        mc = env.m.counters()["machines"][WS0142[0]]
        check(mc.get("Isolate") == 1, "isolate actions created: %r" % mc)
        hits = [e for e in env.m.log_entries(100, path) if e["method"] == "POST"]
        check(len(hits) == 1, "isolate requests that reached the API: %r" % hits)
        check(len(env.m.machine_state(WS0142[0])["actions"]) == 1, "more than one action")


test_two_runs_isolate_one_machine.TIMEOUT = 90


def test_defender_actions_by_name():
    """A machine action given the computer DNS name (as defender.machine accepts it) is
    sent for the machine id: the name is resolved first by a journaled read, so the
    request, its exclusive key and a reconciliation all name the machine by id. An
    unknown name fails with the read's 404 and sends no action."""
    body = """
    rec("isolate", defender.isolate(%(name)s, "full", "by name"))
    rec("again", defender.isolate(%(name_upper)s, "full", "by name"))
    rec("scan", defender.av_scan(%(name)s, "quick"))
    rec("unknown", defender.isolate("nothing.example.jp"))
    """ % {"name": lua_str(WS0142[1]), "name_upper": lua_str(WS0142[1].upper())}
    with ConnEnv("by-name", {"n": body}) as env:
        out, run, journal = env.fire("n")
        iso = expect_ok(out, "isolate")
        check(iso.get("machineId") == WS0142[0] and iso.get("type") == "Isolate",
              "isolate by name: %r" % iso)
        check(expect_ok(out, "again").get("already") is True, "again: %r" % out["again"])
        check(expect_ok(out, "scan").get("machineId") == WS0142[0], "scan: %r" % out["scan"])
        expect_fail(out, "unknown", "defender.machine", "404")
        kinds = [e["kind"] for e in effects(journal)]
        check(kinds == ["defender.machine", "defender.isolate"] * 2
              + ["defender.machine", "defender.av_scan", "defender.machine"],
              "journal effects: %r" % kinds)
        urls = [e["request"]["url"] for e in effects(journal, "defender.isolate")]
        check(all(u.endswith("/api/machines/%s/isolate" % WS0142[0]) for u in urls),
              "isolate sent by id: %r" % urls)
        mc = env.m.counters()["machines"][WS0142[0]]
        check(mc.get("Isolate") == 1 and mc.get("RunAntiVirusScan") == 1,
              "actions at the mock: %r" % mc)
        posts = [e for e in env.m.log_entries(200, "/api/machines/") if e["method"] == "POST"]
        check(all(e["path"].startswith("/api/machines/%s/" % WS0142[0]) for e in posts),
              "an action was posted by name: %r" % posts)


def test_crash_isolate_by_name():
    """kill -9 while an isolate given the computer DNS name is in flight: after a restart
    the call, in doubt, finds its action among the machine's actions (filtered by the
    machine id the name resolved to) and records it: the isolate reaches the mock
    exactly once and the run finishes."""
    body = """
    rec("isolate", defender.isolate(%s, "full", "contain by name"))
    rec("done", true)
    """ % lua_str(WS0142[1])
    iso_path = "/api/machines/%s/isolate" % WS0142[0]
    with ConnEnv("crash-name", {"c": body}) as env:
        env.m.delay(iso_path, 4000)
        aid = env.post("c")
        wait_for(lambda: [e for e in env.m.log_entries(200, iso_path)
                          if e["method"] == "POST"] or None, 20, "the isolate in flight")
        env.d.kill9()
        env.m.delay(iso_path, 0)
        env.d.restart()
        out, run, journal = env.result(aid, timeout=60)
        check(run["state"] == "done", "run %s (%s)" % (run["state"], run["error"]))
        check(expect_ok(out, "done") is True, "the run did not finish")
        mc = env.m.counters()["machines"].get(WS0142[0], {})
        check(mc.get("Isolate") == 1 and mc.get("rejected", 0) == 0,
              "isolate requests at the mock: %r" % mc)
        hits = [e for e in env.m.log_entries(200, iso_path) if e["method"] == "POST"]
        check(len(hits) == 1, "isolate POSTs: %r" % hits)
        actions = env.m.machine_state(WS0142[0])["actions"]
        iso = effects(journal, "defender.isolate")
        check(len(iso) == 1 and iso[0]["status"] == "done" and len(actions) == 1
              and iso[0]["result"]["id"] == actions[0]["id"],
              "isolate recorded %r, mock has %r" % (iso, actions))
        check(re.search(r"call\.reconciled .*kind=defender\.isolate", env.d.log()),
              "the in-doubt isolate was not reconciled:\n%s" % env.d.log()[-2000:])


test_crash_isolate_by_name.TIMEOUT = 120


def test_http_idempotency_key():
    """http.request with an idempotency_key: the key goes out as Idempotency-Key and into
    the journaled request, and a POST whose answer is lost is resent with the same key
    (the mock sees it twice) and succeeds. Without a key the lost answer fails the call
    with a message that says the request was sent and may have been carried out. Bad
    keys raise."""
    body = """
    rec("keyed", http.request{ method = "POST", url = alert.raw.mock .. "/hook-keyed",
        body = { n = 1 }, idempotency_key = "case-42/isolate-ws-0142" })
    rec("unkeyed", http.request{ method = "POST", url = alert.raw.mock .. "/hook-unkeyed",
        body = { n = 2 } })
    local u = alert.raw.mock .. "/hook-bad"
    try("empty", http.request, { method = "POST", url = u, idempotency_key = "" })
    try("long", http.request, { method = "POST", url = u, idempotency_key = string.rep("k", 256) })
    try("ctl", http.request, { method = "POST", url = u, idempotency_key = "a\\nb" })
    try("utf8", http.request, { method = "POST", url = u, idempotency_key = "caf\\u{e9}" })
    try("space", http.request, { method = "POST", url = u, idempotency_key = " a" })
    try("number", http.request, { method = "POST", url = u, idempotency_key = 42 })
    try("both", http.request, { method = "POST", url = u, idempotency_key = "a",
        headers = { ["idempotency-key"] = "b" } })
    rec("max", http.request{ method = "PUT", url = alert.raw.mock .. "/hook-max",
        idempotency_key = string.rep("k", 255) })
    """
    with ConnEnv("idem", {"k": body}) as env:
        env.m.fault("/hook-keyed", method="POST", drop=True, count=1)
        env.m.fault("/hook-unkeyed", method="POST", drop=True, count=1)
        out, run, journal = env.fire("k", raw={"mock": env.m.base_url}, timeout=60)
        check(isinstance(expect_ok(out, "keyed").get("status"), int), "keyed: %r" % out)
        hits = env.m.log_entries(200, "/hook-keyed")
        check([e["status"] == 0 for e in hits] == [True, False]
              and all(e["idempotency_key"] == "case-42/isolate-ws-0142" for e in hits),
              "keyed POST at the mock: %r" % hits)
        expect_fail(out, "unkeyed", "http.request", "POST request sent",
                    "may have been carried out")
        check(len(env.m.log_entries(200, "/hook-unkeyed")) == 1, "the unkeyed POST was resent")
        for k in ("empty", "long", "ctl", "utf8", "space", "number"):
            expect_fail(out, k, "idempotency_key")
        expect_fail(out, "both", "Idempotency-Key")
        check(len(env.m.log_entries(200, "/hook-bad")) == 0, "a bad key was sent")
        expect_ok(out, "max")
        check(env.m.log_entries(200, "/hook-max")[0]["idempotency_key"] == "k" * 255,
              "255-character key: %r" % env.m.log_entries(200, "/hook-max"))
        reqs = effects(journal, "http.request")
        check(reqs[0]["request"].get("idempotency_key") == "case-42/isolate-ws-0142"
              and reqs[0]["status"] == "done", "keyed journal entry: %r" % reqs[0])
        check("idempotency_key" not in reqs[1]["request"] and reqs[1]["status"] == "failed"
              and "POST request sent" in reqs[1]["result"]
              and "may have been carried out" in reqs[1]["result"],
              "unkeyed journal entry: %r" % reqs[1])


test_http_idempotency_key.TIMEOUT = 90


def test_crash_keyed_post():
    """kill -9 while a POST with an idempotency_key is in flight: after the restart the
    call is resent with the same key (not failed as left in doubt) and the run
    finishes; the journaled request carries the key."""
    body = """
    rec("r", http.request{ method = "POST", url = alert.raw.mock .. "/hook-keyed-doubt",
        body = { n = 1 }, idempotency_key = "kagari-run-key-1" })
    rec("done", true)
    """
    path = "/hook-keyed-doubt"
    with ConnEnv("idem-doubt", {"c": body}) as env:
        env.m.delay(path, 4000)
        aid = env.post("c", {"mock": env.m.base_url})
        wait_for(lambda: env.m.log_entries(100, path) or None, 20, "the POST in flight")
        env.d.kill9()
        env.m.delay(path, 0)
        env.d.restart()
        out, run, journal = env.result(aid, timeout=60)
        check(run["state"] == "done", "run %s (%s)" % (run["state"], run["error"]))
        check(expect_ok(out, "done") is True, "the run did not finish")
        check(isinstance(expect_ok(out, "r").get("status"), int), "r: %r" % out["r"])
        hits = [e for e in env.m.log_entries(200, path) if e["method"] == "POST"]
        check(len(hits) == 2 and all(e["idempotency_key"] == "kagari-run-key-1" for e in hits),
              "POSTs at the mock: %r" % hits)
        reqs = effects(journal, "http.request")
        check(len(reqs) == 1 and reqs[0]["request"]["idempotency_key"] == "kagari-run-key-1"
              and reqs[0]["status"] == "done", "journal: %r" % reqs)


test_crash_keyed_post.TIMEOUT = 120
