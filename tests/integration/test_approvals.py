"""approve{} end to end: a run parks on an approval, people decide it over the people's
API (role, quorum, one vote each, the auditor and the engineer refused), a rejection,
a timeout applying the default, a decision on a decided or expired approval refused,
an approved run held to the calls it listed, and a restart while waiting."""

import json
import os
import re
import tempfile
import time

from connhelp import ConnEnv, expect_fail, expect_ok, lua_str
from harness import check, run_cli, wait_for
from mockctl import ALICE, JIRO
from peopleapi import PASSWORD, Api, add_user, api_port, audit_rows, make_cert, next_code

BODY = """
    local r = alert.raw
    local d = approve{ title = "Disable " .. r.upn, detail = "risky sign-in",
                       effects = { {"graph.disable_user", r.upn} },
                       approvers = r.n or 1, timeout = r.timeout or "10m",
                       default = r.default or "reject" }
    rec("decision", d)
    if d.approved then
      rec("disable", graph.disable_user(r.upn))
      rec("other", graph.revoke_sessions(r.upn))
    end
"""


class ApprovalEnv(ConnEnv):
    def __init__(self, name):
        self.certdir = tempfile.mkdtemp(prefix="kagari-it-apicert-")
        cert, key = make_cert(self.certdir)
        self.cert = cert
        extra = ('api = { listen = "127.0.0.1:0", cert_file = %s, key_file = %s, '
                 'password_memory = "1MiB", password_passes = 1 }\n'
                 % (json.dumps(cert), json.dumps(key)))
        extra += "testing = { clock = true }\n"
        super().__init__(name, {"appr": BODY}, extra_config=extra, run_timeout="2h")

    def __exit__(self, etype, exc, tb):
        try:
            return super().__exit__(etype, exc, tb)
        finally:
            for f in os.listdir(self.certdir):
                os.remove(os.path.join(self.certdir, f))
            os.rmdir(self.certdir)

    def people(self):
        """Users of every role, logged in; started before the daemon reads them."""
        self.users = {}
        for name, role in (("ana", "analyst"), ("bob", "analyst"), ("cyd", "analyst"),
                           ("aud", "auditor"), ("eng", "engineer")):
            self.users[name] = add_user(self.d, name, "t1:" + role)
        self.api = {}
        for name, u in self.users.items():
            a = Api(api_port(self.d), cafile=self.cert)
            check(a.login(u).status == 200, "login %s" % name)
            self.api[name] = a

    def pending(self, alert_id):
        """Wait for the approval of alert_id's run; returns it."""
        run = wait_for(lambda: [r for r in self.d.db_runs() if r["alert_id"] == alert_id],
                       20, "the run")[0]

        def find():
            r = self.api["ana"].get("/api/v1/approvals")
            return [a for a in r.json["approvals"] if a["run_id"] == run["id"]]
        return wait_for(find, 20, "a pending approval")[0]

    def decide(self, who, appr, decision, comment=None):
        body = {"decision": decision}
        if comment is not None:
            body["comment"] = comment
        return self.api[who].request(
            "POST", "/api/v1/tenants/t1/approvals/%d/decision" % appr["id"], body)


def test_approve_reject_quorum_timeout():
    with ApprovalEnv("approvals") as env:
        env.people()
        aid = env.post("appr", {"upn": ALICE[1]})
        a = env.pending(aid)
        check(a["title"] == "Disable " + ALICE[1] and a["state"] == "pending" and
              a["effects"] == [["graph.disable_user", ALICE[1]]] and a["role"] == "analyst",
              "approval: %r" % a)
        check(env.d.db_runs()[-1]["state"] == "waiting", "the run waits")
        # Roles that may not decide; a bad body.
        for who in ("aud", "eng"):
            r = env.decide(who, a, "approve")
            check(r.status == 403, "%s decided: %r" % (who, r))
        check(env.decide("ana", a, "maybe").status == 400, "bad decision")
        r = env.decide("ana", a, "approve", "checked with the user's manager")
        check(r.status == 200 and r.json["state"] == "approved", "approve: %r" % r)
        check(r.json["votes"][0]["user"] == "ana", "votes: %r" % r.json["votes"])
        out, run, journal = env.result(aid)
        check(run["state"] == "done", "run: %r" % run)
        d = expect_ok(out, "decision")
        check(d["approved"] is True and d["decision"] == "approved" and not d["timed_out"] and
              d["by"][0]["user"] == "ana" and
              d["comment"] == "checked with the user's manager", "decision: %r" % d)
        check(expect_ok(out, "disable") is True, "the approved call")
        expect_fail(out, "other", "graph.revoke_sessions", "not among the effects approved")
        c = env.m.counters()["users"][ALICE[1]]
        check(c["disable"] == 1 and c["revoke"] == 0, "mock counters: %r" % c)
        # Decided already: refused.
        r = env.decide("bob", a, "reject")
        check(r.status == 409 and "approved already" in r.json["message"], "twice: %r" % r)

        # A rejection: no call made.
        aid = env.post("appr", {"upn": JIRO[1]})
        a = env.pending(aid)
        check(env.decide("bob", a, "reject", "false positive").status == 200, "reject")
        out, run, _ = env.result(aid)
        d = expect_ok(out, "decision")
        check(d["approved"] is False and d["decision"] == "rejected", "rejected: %r" % d)
        check("disable" not in out, "a rejected run called: %r" % out)

        # A quorum of two different people.
        aid = env.post("appr", {"upn": JIRO[1], "n": 2})
        a = env.pending(aid)
        r = env.decide("ana", a, "approve")
        check(r.status == 200 and r.json["state"] == "pending", "one of two: %r" % r)
        r = env.decide("ana", a, "approve")
        check(r.status == 409 and "already" in r.json["message"], "same person twice: %r" % r)
        r = env.decide("bob", a, "approve")
        check(r.status == 200 and r.json["state"] == "approved", "two of two: %r" % r)
        out, run, _ = env.result(aid)
        d = expect_ok(out, "decision")
        check(sorted(v["user"] for v in d["by"]) == ["ana", "bob"], "quorum: %r" % d)

        # Nobody decides: the default applies when the time (15 minutes, passed with the
        # test clock) is up, recorded as such, in the run and in the tenant's history.
        aid = env.post("appr", {"upn": JIRO[1], "timeout": "15m", "default": "reject"})
        a = env.pending(aid)
        env.advance_clock(15 * 60 - 30)
        time.sleep(1.5)
        r = env.api["ana"].get("/api/v1/tenants/t1/approvals/%d" % a["id"])
        check(r.json["state"] == "pending", "30 s before its deadline it still waits: %r" % r)
        env.advance_clock(31)
        out, run, journal = env.result(aid, timeout=20)
        d = expect_ok(out, "decision")
        check(d["timed_out"] is True and d["approved"] is False, "timeout: %r" % d)
        r = env.api["ana"].get("/api/v1/tenants/t1/approvals/%d" % a["id"])
        check(r.json["state"] == "expired" and r.json["votes"] == [], "expired: %r" % r)
        waited = [e for e in env.d.db_journal(run["id"]) if e["kind"] == "approve"][0]
        took = waited["ended"] - waited["started"]
        check(900000 <= took <= 930000, "the approval waited its 15 minutes: %d ms" % took)
        r = env.decide("ana", a, "approve")
        check(r.status == 409 and "expired" in r.json["message"], "after expiry: %r" % r)
        rows = [x for x in audit_rows(env.d, "approval.expired")]
        check(len(rows) == 1 and rows[0][0] == "t1" and rows[0][1] == "engine" and
              rows[0][3] == "approval:%d" % a["id"], "the timeout audited: %r" % rows)
        det = json.loads(rows[0][6])
        check(det["default"] == "reject" and det["decision"] == "rejected" and
              det["run"] == run["id"], "audit detail: %r" % det)
        aid = env.post("appr", {"upn": JIRO[1], "timeout": "5m", "default": "approve"})
        a = env.pending(aid)
        env.advance_clock(5 * 60 + 1)
        out, run, _ = env.result(aid, timeout=20)
        d = expect_ok(out, "decision")
        check(d["timed_out"] is True and d["approved"] is True, "default approve: %r" % d)
        check(expect_ok(out, "disable") is True, "approved by default: the listed call")
        rows = [json.loads(x[6]) for x in audit_rows(env.d, "approval.expired")]
        check(len(rows) == 2 and rows[1]["decision"] == "approved", "audited: %r" % rows)

        # Another tenant's approval id is 404; listings; audit rows.
        r = env.api["ana"].get("/api/v1/tenants/t1/approvals/9999")
        check(r.status == 404, "unknown approval: %r" % r)
        r = env.api["aud"].get("/api/v1/tenants/t1/approvals?state=expired")
        check(r.status == 200 and len(r.json["approvals"]) == 2, "list: %r" % r)
        rows = env.api["ana"].get("/api/v1/approvals").json["approvals"]
        check(rows == [], "nothing pending: %r" % rows)
        env.d.stop()


test_approve_reject_quorum_timeout.TIMEOUT = 180


def test_restart_while_waiting():
    with ApprovalEnv("approvals-restart") as env:
        env.people()
        aid = env.post("appr", {"upn": ALICE[1]})
        a = env.pending(aid)
        env.d.kill9()
        env.d.start()
        port = api_port(env.d)
        for api in env.api.values():
            api.port = port
        b = env.pending(aid)
        check(b["id"] == a["id"], "one approval across the restart: %r %r" % (a, b))
        # Decided from the command line, as bob, through the API with his token.
        url = "https://127.0.0.1:%d" % port
        files = {}
        for who in ("bob", "aud"):
            r = env.api[who].request("POST", "/api/v1/tokens", {"name": "cli"})
            check(r.status == 201, "token: %r" % r)
            files[who] = os.path.join(env.d.dir, who + ".token")
            with open(files[who], "w") as f:
                f.write(r.json["token"] + "\n")
        common = ["--url", url, "--cacert", env.cert]
        p = run_cli(["approvals", "--token-file", files["bob"]] + common, check_rc=0)
        check("Disable " + ALICE[1] in p.stdout and "would: [\"graph.disable_user\"" in p.stdout,
              "kagari approvals: %s" % p.stdout)
        p = run_cli(["approve", str(b["id"]), "--tenant", "t1", "--comment", "ok",
                     "--token-file", files["aud"]] + common, check_rc=1)
        check("403" in p.stderr and "role" in p.stderr, "auditor via CLI: %s" % p.stderr)
        p = run_cli(["approve", str(b["id"]), "--tenant", "t1", "--comment", "ok"] + common,
                    check_rc=1)
        check("no user and no token" in p.stderr, "no token: %s" % p.stderr)
        p = run_cli(["approve", str(b["id"]), "--tenant", "t1", "--comment", "checked",
                     "--token-file", files["bob"]] + common, check_rc=0)
        check("approved (approved)" in p.stdout, "kagari approve: %s" % p.stdout)
        p = run_cli(["approve", str(b["id"]), "--tenant", "t1", "--reject", "--comment", "late",
                     "--token-file", files["bob"]] + common, check_rc=1)
        check("409" in p.stderr, "decided twice via CLI: %s" % p.stderr)
        out, run, journal = env.result(aid)
        check(run["state"] == "done" and expect_ok(out, "decision")["approved"], "run: %r" % run)
        check(env.m.counters()["users"][ALICE[1]]["disable"] == 1, "disabled once")
        kinds = [e["kind"] for e in journal]
        check(kinds.count("approve") == 1, "one approve step: %r" % kinds)
        env.d.stop()


test_restart_while_waiting.TIMEOUT = 120


def test_requester_never_approves_own_run():
    """A person starts a run on an alert (POST .../alerts/<id>/runs): recorded as its
    requester, on the run and in the audit table; they can never decide its approval,
    through the API or the CLI (logged in with password and code), even with a quorum
    of two, which two other people then make."""
    with ApprovalEnv("approvals-requester") as env:
        env.people()
        # An alert no playbook's trigger takes: only a person starts a run on it.
        r = env.d.post({"source": "it.manual", "source_id": "m-1", "title": "manual",
                        "upn": ALICE[1], "n": 2})
        check(r.status == 202, "alert: %r" % r)
        alert = r.json["ids"][0]
        check(env.d.db_runs() == [], "no run started by a trigger")
        path = "/api/v1/tenants/t1/alerts/%d/runs" % alert
        # Bad input, unknown things, roles that may not start runs.
        for body in ({}, {"playbook": ""}, {"playbook": 3}, {"playbook": "appr", "x": 1}, "[]",
                     "{", {"playbook": "p" * 200}):
            r = env.api["ana"].request("POST", path, body)
            check(r.status == 400, "body %r: %r" % (body, r))
        r = env.api["ana"].request("POST", path, {"playbook": "no-such"})
        check(r.status == 422 and "no-such" in r.json["message"], "unknown playbook: %r" % r)
        r = env.api["ana"].request("POST", "/api/v1/tenants/t1/alerts/9999/runs",
                                   {"playbook": "appr"})
        check(r.status == 404, "unknown alert: %r" % r)
        r = env.api["aud"].request("POST", path, {"playbook": "appr"})
        check(r.status == 403, "an auditor starts no run: %r" % r)
        check(env.d.db_runs() == [], "nothing started by refused requests")
        r = env.api["ana"].request("POST", path, {"playbook": "appr"})
        check(r.status == 201 and r.json["requester"] == "ana", "started: %r" % r)
        run_id = r.json["run_id"]
        a = env.pending(alert)
        check(a["approvers"] == 2, "quorum of two: %r" % a)
        shown = env.api["bob"].get("/api/v1/tenants/t1/runs/%d" % run_id).json
        check(shown["requester"] == "ana", "the run shows its requester: %r" % shown)
        p = env.d.cli("run", "show", str(run_id))
        check(re.search(r"^requester ana$", p.stdout, re.M), "run show: %s" % p.stdout)
        p = env.d.cli("run", "show", str(run_id), "--json")
        check(json.loads(p.stdout)["requester"] == "ana", "run show --json: %s" % p.stdout)
        rows = audit_rows(env.d, "run.start")
        check([(x[1], x[3], x[4]) for x in rows] ==
              [("ana", "alert:%d" % alert, "refused"), ("ana", "run:%d" % run_id, "ok")],
              "run.start audited: %r" % rows)
        check(json.loads(rows[1][6]) == {"playbook": "appr", "alert": alert}, "detail")
        # The requester: refused, by the API and by the CLI, approving or rejecting.
        for decision in ("approve", "reject"):
            r = env.decide("ana", a, decision)
            check(r.status == 403 and "started the run" in r.json["message"],
                  "the requester's %s: %r" % (decision, r))
        url = "https://127.0.0.1:%d" % api_port(env.d)
        common = ["--url", url, "--cacert", env.cert, "--tenant", "t1", "--comment", "mine"]
        u = env.users["ana"]
        p = run_cli(["approve", str(a["id"]), "--user", "ana"] + common, check_rc=1,
                    env={"KAGARI_PASSWORD": PASSWORD, "KAGARI_TOTP": next_code(u)})
        check("403" in p.stderr and "started the run" in p.stderr, "CLI requester: %s" % p.stderr)
        r = env.api["ana"].get("/api/v1/tenants/t1/approvals/%d" % a["id"])
        check(r.json["state"] == "pending" and r.json["votes"] == [], "no vote: %r" % r)
        # Two other people make the quorum: bob through the API, cyd through the CLI,
        # logged in with the password and code read from standard input.
        r = env.decide("bob", a, "approve", "checked")
        check(r.status == 200 and r.json["state"] == "pending", "one of two: %r" % r)
        cyd = env.users["cyd"]
        p = run_cli(["approve", str(a["id"]), "--user", "cyd"] + common[:-1] + ["confirmed"],
                    input="%s\n%s\n" % (PASSWORD, next_code(cyd)), check_rc=0)
        check("approved (approved)" in p.stdout, "kagari approve as cyd: %s" % p.stdout)
        out, run, _ = env.result(alert)
        d = expect_ok(out, "decision")
        check(d["approved"] and sorted(v["user"] for v in d["by"]) == ["bob", "cyd"],
              "quorum by the two others: %r" % d)
        check(expect_ok(out, "disable") is True, "the approved call made")
        rows = audit_rows(env.d, "approval.decision")
        check([(x[1], x[4]) for x in rows] ==
              [("ana", "forbidden"), ("ana", "forbidden"), ("ana", "forbidden"),
               ("bob", "ok"), ("cyd", "ok")], "decisions audited: %r" % rows)
        # The CLI's session is ended when the command ends; a wrong code is refused.
        logins = [x for x in audit_rows(env.d) if x[2] in ("login", "logout") and x[3] == "cyd"]
        check([x[2] for x in logins][-2:] == ["login", "logout"], "CLI logged out: %r" % logins)
        p = run_cli(["approvals", "--user", "cyd", "--url", url, "--cacert", env.cert],
                    input="%s\n000000\n" % PASSWORD, check_rc=1)
        check("401" in p.stderr and "login as cyd" in p.stderr, "wrong code: %s" % p.stderr)
        p = run_cli(["approvals", "--user", "cyd", "--url", url, "--cacert", env.cert],
                    input="%s\n%s\n" % (PASSWORD, cyd.codes[0]), check_rc=0)
        check("ID" in p.stdout, "a recovery code logs in too: %s" % p.stdout)
        rows = audit_rows(env.d, "login.recovery_code")
        check(len(rows) == 1 and rows[0][3] == "cyd", "recovery code used: %r" % rows)
        p = run_cli(["approvals", "--user", "cyd", "--url", url, "--cacert", env.cert],
                    input="%s\n%s\n" % (PASSWORD, cyd.codes[0]), check_rc=1)
        check("401" in p.stderr, "a recovery code works once: %s" % p.stderr)
        p = run_cli(["approve", "1x", "--user", "cyd"] + common, check_rc=1)
        check("a number" in p.stderr and "login" not in p.stderr, "bad id first: %s" % p.stderr)
        p = run_cli(["approvals", "--url", url, "--cacert", env.cert], check_rc=1)
        check("no user and no token" in p.stderr, "no credentials: %s" % p.stderr)
        env.d.stop()


test_requester_never_approves_own_run.TIMEOUT = 180
