"""The people's API over real HTTPS on loopback: login with password and TOTP (first-login
enrolment, replay refused, recovery codes), cookies and CSRF, lockout, the allow-lists
(IPv4, IPv6, a spoofed X-Forwarded-For, a trusted proxy), every route for every role,
another tenant's ids answering 404 like unknown ones, session expiry, API tokens and
their revocation, and the audit rows all of it leaves."""

import os
import re
import sqlite3
import time

from harness import check, playbook, wait_for
from peopleapi import (PASSWORD, Api, add_user, api_daemon, api_port, audit_rows, hotp,
                       next_code, peek_code, set_api)

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Strict-Transport-Security": "max-age=31536000",
}


def test_login_flow():
    with api_daemon("api-login") as d:
        u = add_user(d, "ana", "t1:analyst")
        d.start()
        api = Api(api_port(d), cafile=d.api_cert)

        r = api.get("/api/v1/me")
        check(r.status == 401 and r.json["error"] == "unauthorized", "no credentials: %r" % r)
        for k, v in SECURITY_HEADERS.items():
            check(r.header(k) == v, "header %s on %r: %r" % (k, r, r.header(k)))

        # First login: the right password and no code show the enrolment once more.
        r = api.login(u, code=False)
        check(r.status == 401 and r.json["error"] == "totp_enrolment_required", "enrol: %r" % r)
        e = r.json["enrolment"]
        check(e["secret"] == u.secret, "enrolment secret")
        check(e["otpauth_uri"].startswith("otpauth://totp/kagari:ana?secret=" + u.secret),
              "uri: %r" % e["otpauth_uri"])
        check(e["qr_svg"].startswith("<svg") and "<path" in e["qr_svg"], "svg")
        # A wrong password shows nothing.
        r = api.login(u, password="wrong password!!", code=False)
        check(r.status == 401 and r.json["error"] == "invalid_credentials" and
              "enrolment" not in r.json, "wrong password: %r" % r)
        # A wrong code.
        r = api.login(u, code="000000" if hotp(u.secret, int(time.time()) // 30) != "000000"
                      else "111111")
        check(r.status == 401 and r.json["error"] == "invalid_credentials", "wrong code: %r" % r)

        code = next_code(u)
        r = api.login(u, code=code)
        check(r.status == 200, "login: %r" % r)
        sc = r.header("Set-Cookie")
        for part in ("__Host-kagari_session=kgs_", "Path=/", "Secure", "HttpOnly",
                     "SameSite=Strict", "Max-Age="):
            check(part in sc, "cookie lacks %s: %s" % (part, sc))
        check("Domain" not in sc, "a __Host- cookie has no Domain")
        check(r.json["user"] == "ana" and len(r.json["csrf_token"]) == 64, "login body: %r" % r)
        first_cookie = api.cookie

        # The same code again, in the same step: refused as a replay.
        other = Api(api.port, cafile=d.api_cert)
        r = other.login(u, code=code)
        check(r.status == 401 and r.json["error"] == "totp_replayed", "replay: %r" % r)

        r = api.get("/api/v1/me")
        check(r.status == 200 and r.json["user"] == "ana" and r.json["auth"] == "session",
              "me: %r" % r)
        check(r.json["roles"] == [{"tenant": "t1", "role": "analyst", "usable": True}],
              "roles: %r" % r.json["roles"])

        # Changes need the CSRF token with the cookie.
        r = api.request("POST", "/api/v1/logout", csrf=False)
        check(r.status == 403 and r.json["error"] == "csrf_failed", "no csrf: %r" % r)
        r = api.request("POST", "/api/v1/logout", headers={"X-CSRF-Token": "0" * 64}, csrf=False)
        check(r.status == 403 and r.json["error"] == "csrf_failed", "wrong csrf: %r" % r)

        # Logging in again with the old cookie ends the old session (rotation).
        r = api.login(u)
        check(r.status == 200 and api.cookie != first_cookie, "second login: %r" % r)
        stale = Api(api.port, cafile=d.api_cert)
        stale.cookie = first_cookie
        r = stale.get("/api/v1/me")
        check(r.status == 401, "the old session still works: %r" % r)

        r = api.request("POST", "/api/v1/logout")
        check(r.status == 204, "logout: %r" % r)
        check("Max-Age=0" in (r.header("Set-Cookie") or ""), "logout clears the cookie")
        kept = Api(api.port, cafile=d.api_cert)
        kept.cookie = "__Host-kagari_session=" + first_cookie.split("=", 1)[1]
        check(kept.get("/api/v1/me").status == 401, "session after logout")

        # A recovery code works once, in place of the TOTP code.
        rc = u.codes[3]
        r = api.login(u, recovery=rc.upper().replace("-", " "))
        check(r.status == 200, "recovery code: %r" % r)
        r = Api(api.port, cafile=d.api_cert).login(u, recovery=rc)
        check(r.status == 401, "a recovery code used twice: %r" % r)

        # Hostile bodies: each a clear 400, the next login still fine.
        for body in (b"{", b"[]", b'{"user": 1, "password": "x"}', b'{"user":"ana"}',
                     b'{"user":"ana","password":"x","totp":"1","recovery_code":"2"}',
                     b'{"user":"' + b"a" * 5000 + b'","password":"x"}',
                     b'{"user":"ana\\u0000","password":"x"}'):
            r = api.request("POST", "/api/v1/login", body)
            check(r.status == 400, "body %r: %r" % (body[:40], r))
        r = api.request("GET", "/api/v1/login")
        check(r.status == 405, "GET login: %r" % r)
        check(api.get("/api/v1/nope").status == 404, "unknown route")

        acts = [(a[2], a[4]) for a in audit_rows(d)]
        for want in (("login", "ok"), ("login", "failed"), ("login.enrolment", "shown"),
                     ("auth.csrf", "refused"), ("logout", "ok"),
                     ("login.recovery_code", "used")):
            check(want in acts, "audit lacks %r: %r" % (want, acts))
        rows = audit_rows(d, "login")
        check(any(r[4] == "failed" and "totp_replayed" in (r[6] or "") for r in rows),
              "the replay is audited: %r" % rows)
        check(all(r[5] == "127.0.0.1" for r in rows), "audit addresses: %r" % rows)
        # The audit table is append-only.
        db = sqlite3.connect(os.path.join(d.data, "control.db"), timeout=10)
        try:
            for sql in ("UPDATE audit SET outcome = 'ok'", "DELETE FROM audit"):
                try:
                    db.execute(sql)
                    db.commit()
                    check(False, "%s was allowed" % sql)
                except sqlite3.DatabaseError as e:
                    check("append-only" in str(e), "%s: %s" % (sql, e))
        finally:
            db.close()
        # No secret at rest in clear: only digests of sessions and recovery codes.
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(d.data, "control.db"), uri=True)
        try:
            hashes = [h for (h,) in db.execute("SELECT hash FROM sessions")]
            check(all(len(h) == 64 and not h.startswith("kgs_") for h in hashes), "sessions")
            check(api.cookie.split("=", 1)[1] not in open(
                os.path.join(d.data, "control.db"), "rb").read().decode("latin-1"),
                "the session token is stored")
            ph, ts = db.execute("SELECT pass_hash, totp_secret FROM users WHERE name = 'ana'"
                                ).fetchone()
            check(ph.startswith("$argon2id$"), "password hash: %s" % ph[:20])
            check(ts.startswith("enc:v1:") and u.secret not in ts,
                  "TOTP secret at rest: %s" % ts[:12])
        finally:
            db.close()
        d.stop()


test_login_flow.TIMEOUT = 120


def test_lockout():
    with api_daemon("api-lockout") as d:
        u = add_user(d, "bob", "t1:engineer")
        d.start()
        api = Api(api_port(d), cafile=d.api_cert)
        for i in range(5):
            r = api.login(u, password="not the password", code=False)
            check(r.status == 401 and r.json["error"] == "invalid_credentials",
                  "failure %d: %r" % (i + 1, r))
        # Locked now: even the right password and code are refused, with Retry-After.
        r = api.login(u)
        check(r.status == 429 and r.json["error"] == "locked", "locked: %r" % r)
        ra = int(r.header("Retry-After"))
        check(25 <= ra <= 30, "Retry-After %d" % ra)
        rows = audit_rows(d, "login.lockout")
        check(len(rows) == 1 and rows[0][3] == "bob" and '"locked_seconds":30' in rows[0][6],
              "lockout audit: %r" % rows)
        check(any(r[4] == "locked" for r in audit_rows(d, "login")), "refusal while locked")
        # Another user is not held back.
        v = add_user(d, "carol", "t1:analyst")
        check(api.login(v).status == 200, "another user while bob is locked")
        d.cli("user", "unlock", "bob")
        r = api.login(u)
        check(r.status == 200, "after unlock: %r" % r)
        # Unknown and disabled users answer like a wrong password.
        from peopleapi import User
        ghost = User("ghost", u.secret, [])
        r = Api(api.port, cafile=d.api_cert).login(ghost, code="123456")
        check(r.status == 401 and r.json["error"] == "invalid_credentials", "ghost: %r" % r)
        d.cli("user", "disable", "carol")
        r = Api(api.port, cafile=d.api_cert).login(v)
        check(r.status == 401 and r.json["error"] == "invalid_credentials", "disabled: %r" % r)
        m = d.cli("user", "list").stdout
        check("carol" in m and "disabled" in m, "user list: %s" % m)
        # Spraying many accounts from one address: past 20 failures (7 so far) the
        # address is throttled, whoever logs in from it.
        got = None
        for i in range(20):
            r = Api(api.port, cafile=d.api_cert).login(User("spray%d" % i, u.secret, []),
                                                       code="123456")
            if r.status == 429:
                got = i
                break
            check(r.status == 401, "spray %d: %r" % (i, r))
        check(got in (13, 14), "throttled after %r more failures" % got)  # 1 decays per 30 s
        check(r.json["error"] == "too_many_attempts" and int(r.header("Retry-After")) >= 30,
              "throttle: %r %r" % (r, r.header("Retry-After")))
        r = Api(api.port, cafile=d.api_cert).login(u)
        check(r.status == 429, "a valid login from the throttled address: %r" % r)
        check(any(a[4] == "address_throttled" for a in audit_rows(d, "login")), "audited")
        d.stop()


test_lockout.TIMEOUT = 120


def test_allowlist_v4_v6_and_proxies():
    with api_daemon("api-allow") as d:
        u = add_user(d, "ana", "t1:analyst")
        d.cli("allow", "add", "t1", "192.0.2.0/24")
        bad = d.cli("allow", "add", "t1", "192.0.2.1/24", check_rc=1)
        check("past the /24 prefix" in bad.stderr, "bad CIDR: %s" % bad.stderr)
        d.start()
        api = Api(api_port(d), cafile=d.api_cert)
        # 127.0.0.1 is not on the list: refused before the password is looked at.
        r = api.login(u)
        check(r.status == 403 and r.json["error"] == "address_not_allowed", "v4 refused: %r" % r)
        # A spoofed X-Forwarded-For from an untrusted peer changes nothing.
        r = api.request("POST", "/api/v1/login",
                        {"user": "ana", "password": PASSWORD, "totp": peek_code(u)[0]},
                        headers={"X-Forwarded-For": "192.0.2.7"})
        check(r.status == 403, "spoofed XFF was believed: %r" % r)
        check(any(a[4] == "address_refused" and a[5] == "127.0.0.1"
                  for a in audit_rows(d, "login")), "refusal audited with the real address")

        d.cli("allow", "add", "t1", "127.0.0.1")
        r = api.login(u)
        check(r.status == 200, "v4 allowed: %r" % r)
        # Checked on every request: removing the address ends its access at once.
        d.cli("allow", "remove", "t1", "127.0.0.1")
        r = api.get("/api/v1/tenants/t1/runs")
        check(r.status == 403 and r.json["error"] == "address_not_allowed", "every request: %r" % r)
        d.stop()

        # IPv6: the listener on ::1, the list holding an IPv6 block.
        set_api(d, "[::1]:0")
        d.cli("allow", "add", "t1", "2001:db8::/32")
        d.start()
        api6 = Api(api_port(d), host="::1", cafile=d.api_cert)
        r = api6.login(u)
        check(r.status == 403, "::1 not on the list: %r" % r)
        d.cli("allow", "add", "t1", "::1/128")
        r = api6.login(u)
        check(r.status == 200, "v6 allowed: %r" % r)
        check(api6.get("/api/v1/me").json["address"] == "::1", "address seen")
        d.stop()

        # Behind a trusted proxy: the right-most address it did not add itself counts.
        set_api(d, "127.0.0.1:0", 'trusted_proxies = "127.0.0.1"')
        d.cli("allow", "remove", "t1", "::1/128")
        d.start()
        api = Api(api_port(d), cafile=d.api_cert)
        r = api.request("POST", "/api/v1/login",
                        {"user": "ana", "password": PASSWORD, "totp": next_code(u)},
                        headers={"X-Forwarded-For": "192.0.2.7"})
        check(r.status == 200, "via the trusted proxy: %r" % r)
        check(api.request("GET", "/api/v1/me", headers={"X-Forwarded-For": "192.0.2.7"})
              .json["address"] == "192.0.2.7", "client address via the proxy")
        # The client prepends an allowed address; the proxy appends the real one.
        r = api.request("GET", "/api/v1/me", headers={"X-Forwarded-For": "192.0.2.7, 203.0.113.5"})
        check(r.status == 403, "left-most XFF believed: %r" % r)
        for junk in ("not-an-ip", "192.0.2.7,,", "192.0.2.7, 203.0.113.5 x", ""):
            r = api.request("GET", "/api/v1/me", headers={"X-Forwarded-For": junk})
            check(r.status in (400, 403), "XFF %r: %r" % (junk, r))
        r = api.request("GET", "/api/v1/me", headers={"X-Forwarded-For": "not-an-ip"})
        check(r.status == 400 and r.json["error"] == "bad_forwarded_for", "junk XFF: %r" % r)
        d.stop()


test_allowlist_v4_v6_and_proxies.TIMEOUT = 180


ROLES = ("admin", "engineer", "analyst", "auditor")


def test_routes_by_role_and_tenant():
    with api_daemon("api-roles") as d:
        d.add_tenant("t2")
        users = {r: add_user(d, r + "1", "t1:" + r) for r in ROLES}
        users["operator"] = add_user(d, "op", "*:operator")
        users["other"] = add_user(d, "ana2", "t2:analyst")
        d.write_playbook("pb.lua", playbook("it-roles", "it.roles", '    log.info("hi")'))
        d.start()
        r1 = d.post({"source": "it.roles", "source_id": "a1", "title": "<b>t1</b>"})
        check(r1.status == 202, "post t1: %r" % r1)
        for i in range(3):
            check(d.post({"source": "it.roles", "source_id": "b%d" % i, "title": "t2"},
                         tenant="t2").status == 202, "post t2")
        t1_alert = r1.json["ids"][0]
        run = d.wait_run_final(t1_alert)
        port = api_port(d)

        # Each person logs in once and makes a token for the checks that follow.
        clients = {}
        for role, u in users.items():
            a = Api(port, cafile=d.api_cert)
            check(a.login(u).status == 200, "login %s" % role)
            r = a.request("POST", "/api/v1/tokens", {"name": "script", "expires_in_days": 7})
            check(r.status == 201 and r.json["token"].startswith("kgp_"), "token: %r" % r)
            t = Api(port, cafile=d.api_cert)
            t.token = r.json["token"]
            clients[role] = t

        not_found = clients["admin"].get("/api/v1/tenants/nope/alerts")
        check(not_found.status == 404, "unknown tenant: %r" % not_found)
        t1 = "/api/v1/tenants/t1"
        matrix = [
            ("/api/v1/me", {"*": 200}),
            ("/api/v1/tenants", {"*": 200}),
            ("/api/v1/tokens", {"*": 200}),
            (t1 + "/alerts", {"*": 200, "other": 404}),
            (t1 + "/alerts/%d" % t1_alert, {"*": 200, "other": 404}),
            (t1 + "/runs", {"*": 200, "other": 404}),
            (t1 + "/runs/%d" % run["id"], {"*": 200, "other": 404}),
            (t1 + "/audit", {"*": 403, "admin": 200, "auditor": 200, "operator": 200,
                             "other": 404}),
            (t1 + "/users", {"*": 403, "admin": 200, "operator": 200, "other": 404}),
            (t1 + "/allowlist", {"*": 403, "admin": 200, "auditor": 200, "operator": 200,
                                 "other": 404}),
            (t1 + "/approvals", {"*": 200, "other": 404}),
            ("/api/v1/approvals", {"*": 200}),
            (t1 + "/escalations", {"*": 200, "other": 404}),
            (t1 + "/escalations/1", {"*": 404}),
            ("/api/v1/escalations", {"*": 200}),
            ("/api/v1/audit", {"*": 403, "operator": 200}),
            (t1 + "/playbooks", {"*": 200, "other": 404}),
            (t1 + "/playbooks/it-roles", {"*": 200, "other": 404}),
            (t1 + "/playbooks/it-roles/versions/" + run["version"], {"*": 200, "other": 404}),
            (t1 + "/playbooks/it-roles/versions/%s/runs" % run["version"],
             {"*": 200, "other": 404}),
            (t1 + "/dashboard/escalations", {"*": 200, "other": 404}),
            (t1 + "/containment", {"*": 200, "other": 404}),
            (t1 + "/contacts", {"*": 403, "admin": 200, "auditor": 200, "operator": 200,
                                "other": 404}),
        ]
        for path, want in matrix:
            for role, c in clients.items():
                expect = want.get(role, want["*"])
                r = c.get(path)
                check(r.status == expect, "%s as %s: %r (want %d)" % (path, role, r, expect))
                if expect == 404:
                    check(r.body == not_found.body, "%s as %s: a 404 unlike an unknown one: %r"
                          % (path, role, r.body))
        # The routes that change something, with what no role can act on (an unknown
        # playbook, an unknown escalation): the role check answers first.
        changes = [
            (t1 + "/alerts/%d/runs" % t1_alert, {"playbook": "no-such-playbook"},
             {"*": 422, "auditor": 403, "other": 404}),
            (t1 + "/escalations/999/ack", {},
             {"*": 404, "auditor": 403, "engineer": 403}),
            (t1 + "/approvals/999/decision", {"decision": "approve"}, {"*": 404}),
        ]
        for path, body, want in changes:
            for role, c in clients.items():
                expect = want.get(role, want["*"])
                r = c.request("POST", path, body)
                check(r.status == expect, "POST %s as %s: %r (want %d)" % (path, role, r, expect))
                if expect == 404:
                    check(r.body == not_found.body, "POST %s as %s: a 404 unlike an unknown one"
                          % (path, role))
        check(len(d.db_runs()) == 1, "no run started by the refused requests")
        # The one change among the playbook routes: the dry-run switch.
        want = {"admin": 200, "engineer": 200, "operator": 200, "analyst": 403, "auditor": 403,
                "other": 404}
        for role, c in clients.items():
            r = c.request("POST", t1 + "/playbooks/it-roles/dry-run", {"dry_run": None})
            check(r.status == want[role], "dry-run switch as %s: %r (want %d)"
                  % (role, r, want[role]))
            if want[role] == 404:
                check(r.body == not_found.body, "dry-run switch as %s: %r" % (role, r.body))
        # A deployment is for platform operators (an empty body: refused as bad after the
        # role check).
        for role, c in clients.items():
            r = c.request("POST", "/api/v1/playbooks", {})
            want = 400 if role == "operator" else 403
            check(r.status == want, "deploy as %s: %r (want %d)" % (role, r, want))
        # The changes of the Settings page: every role but admin and operator is refused
        # before the body is read (an empty body would be a 400 once allowed).
        settings_changes = [
            ("POST", t1 + "/users", {}),
            ("POST", t1 + "/users/analyst1/disabled", {}),
            ("POST", t1 + "/users/analyst1/role", {}),
            ("POST", t1 + "/users/analyst1/reset-totp", None),
            ("POST", t1 + "/allowlist", {}),
            ("DELETE", t1 + "/allowlist", None),
            ("POST", t1 + "/contacts", {}),
        ]
        for method, path, body in settings_changes:
            for role, c in clients.items():
                expect = {"admin": 400, "operator": 400, "other": 404}.get(role, 403)
                if path.endswith("reset-totp") and expect == 400:
                    continue  # a real reset: done in test_admin_manages_roles_totp_and_allowlist
                r = c.request(method, path, body)
                check(r.status == expect, "%s %s as %s: %r (want %d)"
                      % (method, path, role, r, expect))
        # What the lists hold.
        ts = {r: [t["id"] for t in clients[r].get("/api/v1/tenants").json["tenants"]]
              for r in clients}
        check(ts["analyst"] == ["t1"] and ts["other"] == ["t2"] and ts["operator"] == ["t1", "t2"],
              "tenants: %r" % ts)
        a = clients["analyst"].get(t1 + "/alerts/%d" % t1_alert).json
        check(a["title"] == "<b>t1</b>" and "raw" in a, "alert: %r" % a)
        lst = clients["analyst"].get(t1 + "/alerts").json["alerts"]
        check(len(lst) == 1 and "raw" not in lst[0], "alert list: %r" % lst)
        rs = clients["analyst"].get(t1 + "/runs/%d" % run["id"]).json
        check(rs["state"] == "done" and rs["journal"] and rs["journal"][0]["kind"] == "log",
              "run: %r" % rs)
        users_t1 = clients["admin"].get(t1 + "/users").json["users"]
        check(sorted(u["user"] for u in users_t1) == ["admin1", "analyst1", "auditor1",
                                                      "engineer1"], "users: %r" % users_t1)
        # Another tenant's ids, through a tenant the caller may see: 404 like unknown ids.
        check(clients["analyst"].get(t1 + "/alerts/3").body == not_found.body, "t2's alert 3")
        check(clients["analyst"].get(t1 + "/alerts/99999").body == not_found.body, "unknown")
        for junk in ("0", "-1", "01", "1x", "9" * 30, "%2e%2e"):
            r = clients["analyst"].get(t1 + "/alerts/" + junk)
            check(r.status == 404, "alert id %r: %r" % (junk, r))
        for q in ("?limit=0", "?limit=501", "?limit=x", "?before=-3"):
            check(clients["analyst"].get(t1 + "/alerts" + q).status == 400, "paging %s" % q)
        check(clients["analyst"].get(t1 + "/runs?state=bogus").status == 400, "state filter")
        # The other tenant's view of its own data works.
        check(len(clients["other"].get("/api/v1/tenants/t2/alerts").json["alerts"]) == 3, "t2")
        # Denials are audited with who, where and what.
        rows = [r for r in audit_rows(d, "access")]
        check(any(r[1] == "ana2" and r[4] == "not_found" and r[0] == "t1" for r in rows),
              "cross-tenant access audited: %r" % rows[:5])
        check(any(r[1] == "analyst1" and r[4] == "forbidden" for r in rows), "403 audited")
        d.stop()


test_routes_by_role_and_tenant.TIMEOUT = 240


def test_session_expiry_and_tokens():
    with api_daemon("api-expiry", extra='session_idle = "2s", session_max = "4s"') as d:
        u = add_user(d, "ana", "t1:analyst")
        v = add_user(d, "bob", "t1:analyst")
        d.start()
        port = api_port(d)
        api = Api(port, cafile=d.api_cert)
        check(api.login(u).status == 200, "login")
        time.sleep(2.6)
        r = api.get("/api/v1/me")
        check(r.status == 401 and r.json["error"] == "session_expired", "idle: %r" % r)
        check(api.login(u).status == 200, "login again")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3.5:  # kept busy: the idle limit never hits
            check(api.get("/api/v1/me").status == 200, "active session")
            time.sleep(0.4)
        time.sleep(0.8)
        r = api.get("/api/v1/me")
        check(r.status == 401 and r.json["error"] == "session_expired", "absolute: %r" % r)
        check(any(a[2] == "auth.session" and a[4] == "expired" for a in audit_rows(d)),
              "expiry audited")

        # Tokens: shown once, hashed at rest, revocable, only by their owner.
        check(api.login(u).status == 200, "login")
        r = api.request("POST", "/api/v1/tokens", {"name": "ci"})
        check(r.status == 201, "token: %r" % r)
        tok, tid = r.json["token"], r.json["id"]
        tc = Api(port, cafile=d.api_cert)
        tc.token = tok
        check(tc.get("/api/v1/me").json["auth"] == "token", "token auth")
        lst = api.get("/api/v1/tokens").json["tokens"]
        check(len(lst) == 1 and "token" not in lst[0] and lst[0]["name"] == "ci", "list: %r" % lst)
        # A token cannot mint tokens, and needs no CSRF for what it may do.
        r = tc.request("POST", "/api/v1/tokens", {"name": "more"})
        check(r.status == 401 and r.json["error"] == "session_required", "token minting: %r" % r)
        for bad in ({"name": ""}, {"name": "x", "expires_in_days": 0},
                    {"name": "x", "expires_in_days": 400}, {"name": "x", "expires_in_days": 1.5},
                    {"name": "x" * 64}):
            check(api.request("POST", "/api/v1/tokens", bad).status == 400, "bad token %r" % bad)
        b = Api(port, cafile=d.api_cert)
        check(b.login(v).status == 200, "bob")
        r = b.request("DELETE", "/api/v1/tokens/%d" % tid)
        check(r.status == 404, "bob revokes ana's token: %r" % r)
        check(tc.get("/api/v1/me").status == 200, "still valid")
        r = tc.request("DELETE", "/api/v1/tokens/%d" % tid)
        check(r.status == 204, "revoke: %r" % r)
        r = tc.get("/api/v1/me")
        check(r.status == 401, "revoked token: %r" % r)
        check(tc.request("DELETE", "/api/v1/tokens/%d" % tid).status == 401, "again")
        check(api.request("DELETE", "/api/v1/tokens/%d" % tid).status == 404, "revoked twice")
        for junk in ("kgp_" + "0" * 64, "kg_abc", "kgp_", "x" * 200):
            j = Api(port, cafile=d.api_cert)
            j.token = junk
            check(j.get("/api/v1/me").status == 401, "junk token %r" % junk[:10])
        # Disabling a user ends their sessions and tokens at once.
        r = api.request("POST", "/api/v1/tokens", {"name": "ci2"})
        tc.token = r.json["token"]
        d.cli("user", "disable", "ana")
        check(api.get("/api/v1/me").status == 401, "session of a disabled user")
        check(tc.get("/api/v1/me").status == 401, "token of a disabled user")
        acts = [(a[2], a[4]) for a in audit_rows(d)]
        for want in (("token.create", "ok"), ("token.revoke", "ok"), ("auth.token", "refused"),
                     ("user.disable", "ok")):
            check(want in acts, "audit lacks %r" % (want,))
        m = d.metrics()
        check(m.get("kagari_api_logins_total", 0) >= 4, "logins metric: %r" %
              {k: v for k, v in m.items() if "api" in k})
        d.stop()


test_session_expiry_and_tokens.TIMEOUT = 120


def test_cli_user_management():
    with api_daemon("api-cli") as d:
        p = add_user(d, "x", "t1:analyst", password="short", check_rc=1)
        check("12 to 256" in p.stderr, "short password: %s" % p.stderr)
        p = add_user(d, "x", "t1:wizard", check_rc=1)
        check("admin, engineer" in p.stderr, "bad role: %s" % p.stderr)
        p = add_user(d, "x", "nope:analyst", check_rc=1)
        check("unknown tenant nope" in p.stderr, "bad tenant: %s" % p.stderr)
        p = add_user(d, "x", "t1:operator", check_rc=1)
        check("*:operator" in p.stderr, "operator in one tenant: %s" % p.stderr)
        u = add_user(d, "x", "t1:analyst")
        p = add_user(d, "x", "t1:analyst", check_rc=1)
        check("user x exists" in p.stderr, "duplicate: %s" % p.stderr)
        d.cli("user", "role", "x", "t1", "auditor")
        d.start()
        api = Api(api_port(d), cafile=d.api_cert)
        check(api.login(u).status == 200, "login")
        check(api.get("/api/v1/me").json["roles"][0]["role"] == "auditor", "role changed")
        p = d.cli("user", "reset-totp", "x")
        check("TOTP secret (shown once)" in p.stdout and "\u2588" in p.stdout, "reset: %s"
              % p.stdout[:200])
        check(api.get("/api/v1/me").status == 401, "reset-totp ends the sessions")
        # The old secret no longer works; the new one enrols again.
        r = Api(api.port, cafile=d.api_cert).login(u, code=False)
        check(r.status == 401 and r.json["error"] == "totp_enrolment_required", "re-enrol: %r" % r)
        d.stop()


def test_openapi_covers_every_route():
    """docs/openapi.yaml describes every route of the people's API's table, with its
    method, and nothing that does not exist."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    src = open(os.path.join(root, "engine", "api.c")).read()
    routes = set()
    for method, path in re.findall(r'\{\s*"(GET|POST|DELETE)",\s*"(/api/v1/[^"]*)"', src):
        n = [0]

        def name(_m):
            n[0] += 1
            return "{%d}" % n[0]
        routes.add((method.lower(), re.sub(r":", name, path)))
    check(len(routes) >= 15, "routes found: %r" % routes)
    spec = set()
    path = None
    for line in open(os.path.join(root, "docs", "openapi.yaml")):
        m = re.match(r"^  (/api/v1/\S*):\s*$", line)
        if m:
            path = m.group(1)
            continue
        m = re.match(r"^    (get|post|delete):\s*$", line)
        if m and path:
            n = [0]

            def name2(_m):
                n[0] += 1
                return "{%d}" % n[0]
            spec.add((m.group(1), re.sub(r"\{[a-z_]+\}", name2, path)))
    check(routes == spec, "code and openapi.yaml differ: only in code %r, only in the spec %r"
          % (sorted(routes - spec), sorted(spec - routes)))


def test_init_makes_an_api_listener():
    """kagari init --api writes the api block and a self-signed pair the API then serves
    (a client trusting that certificate logs in)."""
    import shutil
    import signal
    import subprocess
    import tempfile
    from harness import kagari, run_cli, sanitizer_env, sanitizer_report
    from peopleapi import User
    d = tempfile.mkdtemp(prefix="kagari-it-init-api-")
    proc = None
    try:
        cfg = os.path.join(d, "kagari.conf.lua")
        p = run_cli(["init", "--config", cfg, "--listen", "127.0.0.1:0", "--tenant", "t1",
                     "--api", "127.0.0.1:0"], check_rc=0)
        check("self-signed certificate" in p.stdout, "init: %s" % p.stdout)
        cert = os.path.join(d, "tls", "api-cert.pem")
        check(os.stat(os.path.join(d, "tls", "api-key.pem")).st_mode & 0o777 == 0o600, "key mode")
        with open(cfg, "a") as f:
            f.write('api.password_memory = "1MiB"\napi.password_passes = 1\n')
        p = run_cli(["user", "add", "ana", "--role", "t1:analyst", "--config", cfg],
                    input=PASSWORD + "\n", check_rc=0)
        u = User("ana", re.search(r"\(shown once\): ([A-Z2-7]+)", p.stdout).group(1), [])
        log = open(os.path.join(d, "serve.log"), "wb")
        proc = subprocess.Popen([kagari(), "serve", "--config", cfg], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, env=sanitizer_env())
        log.close()
        text = wait_for(lambda: (lambda t: t if "api_port=" in t else None)(
            open(os.path.join(d, "serve.log")).read()), 30, "serve.ready")
        port = int(re.search(r"api_port=(\d+)", text).group(1))
        r = Api(port, cafile=cert).login(u)
        check(r.status == 200, "login over the self-signed pair: %r" % r)
        proc.send_signal(signal.SIGTERM)
        check(proc.wait(30) == 0, "serve exit")
        rep = sanitizer_report(open(os.path.join(d, "serve.log")).read())
        check(rep is None, "sanitizer: %s" % rep)
        proc = None
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)


def test_password_hashing_never_blocks_the_loop():
    """Argon2id at its default cost (64 MiB, 3 passes) runs on the worker thread: while
    several logins are being checked, alerts are still acknowledged promptly."""
    import threading
    with api_daemon("api-noblock") as d:
        set_api(d, "127.0.0.1:0", "")
        text = open(d.config).read().replace(' password_memory = "1MiB", password_passes = 1,',
                                             "")
        with open(d.config, "w") as f:
            f.write(text)
        u = add_user(d, "ana", "t1:analyst")
        d.start()
        port = api_port(d)
        t0 = time.monotonic()
        check(Api(port, cafile=d.api_cert).login(u, password="wrong password 1",
                                                code=False).status == 401, "one login")
        one = time.monotonic() - t0
        results = []

        def attempt(i):
            r = Api(port, cafile=d.api_cert).login(u, password="wrong password %d" % i,
                                                   code=False)
            results.append(r.status)
        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        lat = []
        c = d.client()
        while any(t.is_alive() for t in threads):
            s = time.monotonic()
            r = c.post({"source": "it.noblock", "source_id": "n%f" % s})
            lat.append(time.monotonic() - s)
            check(r.status == 202, "alert during logins: %r" % r)
            time.sleep(0.02)
        c.close()
        for t in threads:
            t.join()
        check(results == [401, 401, 401], "logins: %r" % results)
        lat.sort()
        print("# one login %.3fs; %d alerts during 3 logins: median %.1f ms, max %.1f ms"
              % (one, len(lat), 1000 * lat[len(lat) // 2], 1000 * lat[-1]))
        check(len(lat) >= 3, "alerts sent while hashing: %d" % len(lat))
        check(lat[-1] < max(0.25, one / 2), "an alert waited %.3fs (one login takes %.3fs)"
              % (lat[-1], one))
        d.stop()


test_password_hashing_never_blocks_the_loop.TIMEOUT = 120


def test_admin_manages_roles_totp_and_allowlist():
    """A tenant admin changes a role, resets a TOTP secret (the user enrols again at the
    next login; the admin never sees the secret) and edits the allow-list, refused when
    the change would lock the admin out; other roles cannot; all audited."""
    with api_daemon("api-admin") as d:
        d.add_tenant("t2")
        adm = add_user(d, "adm", "t1:admin")
        ana = add_user(d, "ana", "t1:analyst")
        eng = add_user(d, "eng", "t1:engineer")
        other = add_user(d, "adm2", "t2:admin")
        d.start()
        port = api_port(d)
        c = {}
        for u in (adm, ana, eng, other):
            c[u.name] = Api(port, cafile=d.api_cert)
            check(c[u.name].login(u).status == 200, "login %s" % u.name)
        t1 = "/api/v1/tenants/t1"
        # Roles: only admins; not one's own; another tenant's admin sees nothing.
        r = c["eng"].request("POST", t1 + "/users/ana/role", {"role": "auditor"})
        check(r.status == 403, "engineer changes a role: %r" % r)
        r = c["adm2"].request("POST", t1 + "/users/ana/role", {"role": "auditor"})
        check(r.status == 404, "t2's admin on t1: %r" % r)
        r = c["adm"].request("POST", t1 + "/users/adm/role", {"role": "none"})
        check(r.status == 403, "own role: %r" % r)
        r = c["adm"].request("POST", t1 + "/users/ana/role", {"role": "wizard"})
        check(r.status == 400, "bad role: %r" % r)
        r = c["adm"].request("POST", t1 + "/users/nobody/role", {"role": "analyst"})
        check(r.status == 404, "unknown user: %r" % r)
        op = add_user(d, "op", "*:operator")
        c["op"] = Api(port, cafile=d.api_cert)
        check(c["op"].login(op).status == 200, "operator login")
        for path in ("/api/v1/tenants/nope/users/ana/role", "/api/v1/tenants/nope/allowlist"):
            r = c["op"].request("POST", path, {"role": "analyst", "cidr": "10.0.0.0/8"})
            check(r.status == 404, "operator on an unknown tenant %s: %r" % (path, r))
        check("nope" not in d.cli("user", "list").stdout, "no role in an unknown tenant")
        r = c["adm"].request("POST", t1 + "/users/ana/role", {"role": "auditor"})
        check(r.status == 200 and r.json["role"] == "auditor", "role: %r" % r)
        check(c["ana"].get("/api/v1/me").json["roles"][0]["role"] == "auditor", "takes effect")
        check(c["ana"].get(t1 + "/audit").status == 200, "the auditor reads the audit now")
        # TOTP reset: ana's sessions end; her next login shows a new secret to enrol.
        r = c["eng"].request("POST", t1 + "/users/ana/reset-totp")
        check(r.status == 403, "engineer resets: %r" % r)
        r = c["adm"].request("POST", t1 + "/users/adm2/reset-totp")
        check(r.status == 404, "a user of another tenant: %r" % r)
        r = c["adm"].request("POST", t1 + "/users/ana/reset-totp")
        check(r.status == 204 and r.body == b"", "reset: %r" % r)
        check(c["ana"].get("/api/v1/me").status == 401, "ana's session after the reset")
        r = Api(port, cafile=d.api_cert).login(ana, code=False)
        check(r.status == 401 and r.json["error"] == "totp_enrolment_required" and
              r.json["enrolment"]["secret"] != ana.secret, "re-enrolment: %r" % r)
        # Allow-list: a change that would shut the admin out is refused and undone.
        r = c["adm"].request("POST", t1 + "/allowlist", {"cidr": "192.0.2.0/24"})
        check(r.status == 409 and r.json["error"] == "would_lock_you_out", "lockout: %r" % r)
        check(c["adm"].get(t1 + "/allowlist").json["cidrs"] == [], "undone")
        r = c["adm"].request("POST", t1 + "/allowlist", {"cidr": "127.0.0.0/8"})
        check(r.status == 200 and r.json["cidrs"] == ["127.0.0.0/8"], "add: %r" % r)
        r = c["adm"].request("POST", t1 + "/allowlist", {"cidr": "192.0.2.0/24"})
        check(r.status == 200 and sorted(r.json["cidrs"]) == ["127.0.0.0/8", "192.0.2.0/24"],
              "second: %r" % r)
        r = c["adm"].request("DELETE", t1 + "/allowlist?cidr=127.0.0.0%2F8")
        check(r.status == 409, "removing its own block: %r" % r)
        r = c["adm"].request("DELETE", t1 + "/allowlist?cidr=192.0.2.0%2F24")
        check(r.status == 200 and r.json["cidrs"] == ["127.0.0.0/8"], "remove: %r" % r)
        r = c["adm"].request("DELETE", t1 + "/allowlist?cidr=198.51.100.0%2F24")
        check(r.status == 404, "remove an absent entry: %r" % r)
        for bad in ({"cidr": "192.0.2.1/24"}, {"cidr": "nope"}, {"cidr": 5}, {}):
            r = c["adm"].request("POST", t1 + "/allowlist", bad)
            check(r.status == 400, "bad %r: %r" % (bad, r))
        check(c["eng"].request("POST", t1 + "/allowlist", {"cidr": "10.0.0.0/8"}).status == 403,
              "engineer edits the list")
        r = c["adm"].request("POST", t1 + "/allowlist", {"cidr": "10.0.0.0/8"}, csrf=False)
        check(r.status == 403 and r.json["error"] == "csrf_failed", "no CSRF: %r" % r)
        acts = [(a[0], a[2], a[3]) for a in audit_rows(d) if a[4] == "ok"]
        for want in (("t1", "user.role", "ana"), ("t1", "user.reset_totp", "ana"),
                     ("t1", "allowlist.add", "t1"), ("t1", "allowlist.remove", "t1")):
            check(want in acts, "audit lacks %r" % (want,))
        d.stop()
