"""The people's API behind the portal's Settings and dashboard: a tenant admin adds a user
(a one-time password shown once, TOTP enrolled at the first login) and disables one (the
sessions end at once; a user shared with another tenant only by a platform operator);
hostile names refused; the alert search by user and IP (IPv4 and IPv6, exact, through the
observable index, with a time range, scoped to the tenant); the escalations awaiting
acknowledgement with the contact reached; the containment in force (firewall blocks from
the published lists, disabled accounts and isolated devices from the journal, an undo
lifting one); every change audited and CSRF-protected."""

import json
import shutil
import tempfile

from connhelp import ConnEnv, lua_str
from harness import check, expect_accepted, wait_for
from mockctl import ALICE, PANOS_KEY, WS0142
from peopleapi import (PASSWORD, Api, User, add_user, api_daemon, api_port, audit_rows,
                       hotp, make_cert)
from test_escalation import BASE, chain_block

import time


NEW_PASSWORD = "my own passphrase 2026"


def login_new(port, cafile, name, password):
    """A user made through the API logs in: the one-time password asks for a new one
    (weak ones refused), then the enrolment of TOTP with a new secret; the new password
    and a code of that secret then open a session, and the one-time password is gone."""
    a = Api(port, cafile=cafile)
    u = User(name, None, [])
    r = a.request("POST", "/api/v1/login", {"user": name, "password": password})
    check(r.status == 401 and r.json["error"] == "password_change_required",
          "first login of %s: %r" % (name, r))
    for weak in ("short", name, password):
        r = a.request("POST", "/api/v1/login", {"user": name, "password": password,
                                                "new_password": weak})
        check(r.status == 400 and r.json["error"] == "weak_password", "weak %r: %r" % (weak, r))
    r = a.request("POST", "/api/v1/login", {"user": name, "password": password,
                                            "new_password": NEW_PASSWORD})
    check(r.status == 401 and r.json["error"] == "totp_enrolment_required",
          "enrolment of %s: %r" % (name, r))
    u.secret = r.json["enrolment"]["secret"]
    step = int(time.time()) // 30
    r = a.request("POST", "/api/v1/login", {"user": name, "password": password,
                                            "new_password": NEW_PASSWORD,
                                            "totp": hotp(u.secret, step)})
    check(r.status == 200, "enrolled login of %s: %r" % (name, r))
    a.csrf = r.json["csrf_token"]
    r = Api(port, cafile=cafile).request("POST", "/api/v1/login",
                                          {"user": name, "password": password})
    check(r.status == 401 and r.json["error"] == "invalid_credentials",
          "the one-time password again: %r" % r)
    u.last_step = step
    return a, u


def test_admin_adds_and_disables_users():
    with api_daemon("settings-users") as d:
        d.add_tenant("t2")
        adm = add_user(d, "adm", "t1:admin")
        ana = add_user(d, "ana", "t1:analyst")
        aud = add_user(d, "aud", "t1:auditor")
        shared = add_user(d, "shared", "t1:analyst", "t2:analyst")
        other = add_user(d, "adm2", "t2:admin")
        op = add_user(d, "op", "*:operator")
        d.start()
        port = api_port(d)
        c = {}
        for u in (adm, ana, aud, other, op):
            c[u.name] = Api(port, cafile=d.api_cert)
            check(c[u.name].login(u).status == 200, "login %s" % u.name)
        t1 = "/api/v1/tenants/t1"

        # Only an admin (or an operator) adds; another tenant's admin sees no tenant t1.
        for who, want in (("ana", 403), ("aud", 403), ("adm2", 404)):
            r = c[who].request("POST", t1 + "/users", {"user": "x1", "role": "analyst"})
            check(r.status == want, "%s adds a user: %r" % (who, r))
        r = c["adm"].request("POST", t1 + "/users", {"user": "x1", "role": "analyst"},
                             csrf=False)
        check(r.status == 403 and r.json["error"] == "csrf_failed", "no CSRF: %r" % r)
        # Hostile or malformed input: a clear 400, nothing added.
        bad = [{"user": "<img src=x onerror=alert(1)>", "role": "analyst"},
               {"user": "a\nb", "role": "analyst"}, {"user": "", "role": "analyst"},
               {"user": "x" * 65, "role": "analyst"}, {"user": ".hidden", "role": "analyst"},
               {"user": "a b", "role": "analyst"}, {"user": 5, "role": "analyst"},
               {"user": "ok1", "role": "operator"}, {"user": "ok1", "role": "root"},
               {"user": "ok1"}, {"role": "analyst"}, [], "not json", {"user": "é", "role": "admin"}]
        for b in bad:
            r = c["adm"].request("POST", t1 + "/users", b)
            check(r.status == 400, "bad %r: %r" % (b, r))
        check("ok1" not in d.cli("user", "list").stdout, "nothing added by bad input")
        # Added: the one-time password, shown once; TOTP is enrolled at the first login.
        r = c["adm"].request("POST", t1 + "/users", {"user": "newbie@example.jp",
                                                     "role": "analyst"})
        check(r.status == 201 and r.json["role"] == "analyst" and
              len(r.json["password"]) >= 20 and r.json["totp_enrolled"] is False,
              "add: %r" % r)
        pw = r.json["password"]
        r = c["adm"].request("POST", t1 + "/users", {"user": "newbie@example.jp",
                                                     "role": "auditor"})
        check(r.status == 409 and r.json["error"] == "user_exists", "again: %r" % r)
        r = c["op"].request("POST", "/api/v1/tenants/t2/users", {"user": "t2user",
                                                                 "role": "auditor"})
        check(r.status == 201, "operator adds in t2: %r" % r)
        users = c["adm"].get(t1 + "/users").json["users"]
        nb = [u for u in users if u["user"] == "newbie@example.jp"]
        check(len(nb) == 1 and nb[0]["role"] == "analyst" and not nb[0]["totp_enrolled"],
              "listed: %r" % users)
        check(not any(u["user"] == "t2user" for u in users), "t2's user not in t1's list")
        nbc, nbu = login_new(port, d.api_cert, "newbie@example.jp", pw)
        check(nbc.get(t1 + "/alerts").status == 200, "the new analyst reads alerts")
        check(nbc.get("/api/v1/tenants/t2/alerts").status == 404, "but not t2's")
        check(c["adm"].get(t1 + "/users").json["users"] and
              [u for u in c["adm"].get(t1 + "/users").json["users"]
               if u["user"] == "newbie@example.jp"][0]["totp_enrolled"], "enrolled now")

        # Disable: the session ends at once, the login is refused; enable restores it.
        for who, want in (("ana", 403), ("aud", 403), ("adm2", 404)):
            r = c[who].request("POST", t1 + "/users/newbie@example.jp/disabled",
                               {"disabled": True})
            check(r.status == want, "%s disables: %r" % (who, r))
        for b in ({"disabled": "yes"}, {"disabled": 1}, {}, "x"):
            r = c["adm"].request("POST", t1 + "/users/newbie@example.jp/disabled", b)
            check(r.status == 400, "bad %r: %r" % (b, r))
        r = c["adm"].request("POST", t1 + "/users/newbie@example.jp/disabled",
                             {"disabled": True})
        check(r.status == 200 and r.json["disabled"] is True, "disable: %r" % r)
        check(nbc.get("/api/v1/me").status == 401, "the disabled user's session")
        r = Api(port, cafile=d.api_cert).login(nbu, password=NEW_PASSWORD)
        check(r.status == 401, "a disabled user logs in: %r" % r)
        check([u for u in c["adm"].get(t1 + "/users").json["users"]
               if u["user"] == "newbie@example.jp"][0]["disabled"], "listed as disabled")
        r = c["adm"].request("POST", t1 + "/users/newbie@example.jp/disabled",
                             {"disabled": False})
        check(r.status == 200 and r.json["disabled"] is False, "enable: %r" % r)
        time.sleep(1)
        check(Api(port, cafile=d.api_cert).login(nbu, password=NEW_PASSWORD).status == 200,
              "enabled again")
        # Not oneself; not a user of another tenant; a shared user only by an operator.
        r = c["adm"].request("POST", t1 + "/users/adm/disabled", {"disabled": True})
        check(r.status == 403, "self: %r" % r)
        r = c["adm"].request("POST", t1 + "/users/adm2/disabled", {"disabled": True})
        check(r.status == 404, "another tenant's user: %r" % r)
        r = c["adm"].request("POST", t1 + "/users/nobody/disabled", {"disabled": True})
        check(r.status == 404, "unknown: %r" % r)
        r = c["adm"].request("POST", t1 + "/users/shared/disabled", {"disabled": True})
        check(r.status == 409 and r.json["error"] == "shared_user", "shared: %r" % r)
        r = c["op"].request("POST", t1 + "/users/shared/disabled", {"disabled": True})
        check(r.status == 200, "operator disables a shared user: %r" % r)
        check(Api(port, cafile=d.api_cert).login(shared).status == 401, "shared is off")

        acts = [(a[0], a[1], a[2], a[3]) for a in audit_rows(d) if a[4] == "ok"]
        for want in (("t1", "adm", "user.add", "newbie@example.jp"),
                     ("t2", "op", "user.add", "t2user"),
                     ("t1", "adm", "user.disable", "newbie@example.jp"),
                     ("t1", "adm", "user.enable", "newbie@example.jp"),
                     ("t1", "op", "user.disable", "shared")):
            check(want in acts, "audit lacks %r" % (want,))
        check(not any(pw in (a[6] or "") for a in audit_rows(d)), "the password is not audited")
        # The tenant's audit view shows its own rows only.
        rows = c["adm"].get(t1 + "/audit?limit=200").json["audit"]
        check(rows and all(x["tenant"] == "t1" for x in rows) and
              any(x["action"] == "user.add" for x in rows), "t1 audit: %r" % rows[:3])
        check(c["aud"].get(t1 + "/audit").status == 200, "the auditor reads it")
        check(c["ana"].get(t1 + "/audit").status == 403, "the analyst does not")
        d.stop()


test_admin_adds_and_disables_users.TIMEOUT = 240


def test_alert_search_by_user_and_ip():
    with api_daemon("settings-search") as d:
        d.add_tenant("t2")
        ana = add_user(d, "ana", "t1:analyst")
        d.start()
        c = Api(api_port(d), cafile=d.api_cert)
        check(c.login(ana).status == 200, "login")
        alerts = [
            ("a1", "2026-11-01T00:00:00Z", [{"type": "ip", "value": "203.0.113.7"},
                                            {"type": "user", "value": "alice@example.jp"}]),
            ("a2", "2026-11-02T00:00:00Z", [{"type": "ip", "value": "203.0.113.7",
                                             "role": "src"},
                                            {"type": "ip", "value": "203.0.113.7",
                                             "role": "dst"}]),
            ("a3", "2026-11-03T00:00:00Z", [{"type": "ip", "value": "2001:db8::7"},
                                            {"type": "user", "value": "bob@example.jp"}]),
            # The same text under another type is not an IP match.
            ("a4", "2026-11-04T00:00:00Z", [{"type": "host", "value": "203.0.113.7"}]),
            ("a5", "2026-11-05T00:00:00Z", [{"type": "ip", "value": "203.0.113.70"}]),
        ]
        ids = {}
        for sid, when, obs in alerts:
            ids[sid] = expect_accepted(d.post({"source": "it.search", "source_id": sid,
                                               "time": when, "title": sid,
                                               "observables": obs}), 1)[0]
        expect_accepted(d.post({"source": "it.search", "source_id": "x",
                                "observables": [{"type": "ip", "value": "203.0.113.7"}]},
                               tenant="t2"), 1)
        t1 = "/api/v1/tenants/t1/alerts"

        def found(q):
            r = c.get(t1 + q)
            check(r.status == 200, "%s: %r" % (q, r))
            return [a["id"] for a in r.json["alerts"]]

        check(found("?ip=203.0.113.7") == [ids["a2"], ids["a1"]], "by ip: %r"
              % found("?ip=203.0.113.7"))
        check(found("?ip=2001:db8::7") == [ids["a3"]], "by IPv6")
        check(found("?user=alice@example.jp") == [ids["a1"]], "by user")
        check(found("?user=bob@example.jp&source=it.search") == [ids["a3"]], "user + source")
        check(found("?user=nobody@example.jp") == [], "no such user")
        check(found("?ip=203.0.113.7&since=2026-11-01T12:00:00Z") == [ids["a2"]], "since")
        check(found("?ip=203.0.113.7&until=2026-11-01T12:00:00Z") == [ids["a1"]], "until")
        check(found("?ip=203.0.113.7&limit=1") == [ids["a2"]], "limit")
        nb = c.get(t1 + "?ip=203.0.113.7&limit=1").json.get("next_before")
        check(nb and found("?ip=203.0.113.7&limit=1&before=%d" % nb) == [ids["a1"]],
              "the next page: %r" % nb)
        # Hostile or malformed values: a clear 400 naming the filter.
        for q in ("?ip=203.0.113.999", "?ip=<script>", "?ip=", "?ip=10.0.0.0/8",
                  "?user=", "?user=a%0Ab", "?user=" + "x" * 300,
                  "?user=a&ip=203.0.113.7", "?ip=%ff%fe"):
            r = c.get(t1 + q)
            check(r.status == 400, "%s: %r" % (q, r))
        d.stop()


test_alert_search_by_user_and_ip.TIMEOUT = 120


CONTAIN = """
    local r = alert.raw
    if r.step == "contain" then
      rec("block", panos.block_ip(r.ip, { timeout = 3600 }))
      rec("disable", graph.disable_user(r.upn))
      rec("isolate", defender.isolate(r.device, "full", "contained by kagari"))
      escalate{ level = "critical", reason = "compromise", subject = "侵害 <b>" .. r.upn .. "</b>" }
    else
      rec("unisolate", defender.unisolate(r.device, "released"))
    end
"""


def test_escalations_and_containment_for_the_dashboard():
    certdir = tempfile.mkdtemp(prefix="kagari-settings-")
    try:
        cert, key = make_cert(certdir)
        extra = ("escalation = { base_url = %s }\n"
                 "api = { listen = \"127.0.0.1:0\", cert_file = %s, key_file = %s, "
                 "password_memory = \"1MiB\", password_passes = 1 }\n"
                 % (lua_str(BASE), json.dumps(cert), json.dumps(key)))

        def tenant_extra(m):
            return ("panos = { url = %s, api_key = %s, commit_poll = 0.1 }, %s"
                    % (lua_str(m.base_url), lua_str(PANOS_KEY),
                       chain_block(m, ("20s", "20s", "20s"))))

        with ConnEnv("settings-dash", {"contain": CONTAIN}, run_timeout="10m",
                     extra_config=extra, tenant_extra=tenant_extra) as env:
            d = env.d
            ana = add_user(d, "ana", "t1:analyst")
            c = Api(api_port(d), cafile=cert)
            check(c.login(ana).status == 200, "login")
            t1 = "/api/v1/tenants/t1"
            empty = c.get(t1 + "/containment").json
            check(empty["blocked"] == [] and empty["disabled_accounts"] == [] and
                  empty["isolated_devices"] == [], "nothing contained yet: %r" % empty)
            check(c.get(t1 + "/dashboard/escalations").json["escalations"] == [], "no escalation yet")
            aid = env.post("contain", {"step": "contain", "ip": "198.51.100.23",
                                       "upn": ALICE[1], "device": WS0142[1]})
            d.wait_run_state(aid, ("waiting",))
            esc = wait_for(lambda: (lambda e: e if e and e[0]["last_contact"] else None)(
                c.get(t1 + "/dashboard/escalations").json["escalations"]), 20, "the first contact")
            e = esc[0]
            check(e["state"] == "open" and e["level"] == "critical" and e["contacts"] == 3 and
                  e["reached"] == 0 and e["last_contact_at"] and e["last_contact"] == "当番 佐藤" and e["subject"].startswith("侵害 <b>") and
                  e["age_seconds"] >= 0 and e["created"], "escalation: %r" % e)
            cont = c.get(t1 + "/containment").json
            check([b["value"] for b in cont["blocked"]] == ["198.51.100.23"] and
                  cont["blocked"][0]["list"].startswith("panos.") and cont["blocked"][0]["expires"],
                  "blocked: %r" % cont["blocked"])
            check([x["target"] for x in cont["disabled_accounts"]] == [ALICE[1]],
                  "disabled: %r" % cont["disabled_accounts"])
            check([x["target"] for x in cont["isolated_devices"]] in ([WS0142[0]], [WS0142[1]]),
                  "isolated: %r" % cont["isolated_devices"])
            # Undone by another run: no longer in force.
            out, run, _ = env.fire("contain", {"step": "release", "device": WS0142[1]})
            cont = c.get(t1 + "/containment").json
            check(cont["isolated_devices"] == [] and len(cont["disabled_accounts"]) == 1,
                  "after the release: %r" % cont)
            # Acknowledged: no longer awaiting.
            p = d.cli("escalation", "ack", str(e["id"]), "--tenant", "t1", "--by", "Sato")
            check(p.returncode == 0, "ack: %r" % p.stdout)
            wait_for(lambda: c.get(t1 + "/dashboard/escalations").json["escalations"] == [], 10,
                     "the acknowledged escalation leaves the list")
            check(c.get("/api/v1/tenants/nope/containment").status == 404, "unknown tenant")
    finally:
        shutil.rmtree(certdir, ignore_errors=True)


test_escalations_and_containment_for_the_dashboard.TIMEOUT = 180


ESCALATE_ONLY = """
    escalate{ level = "high", reason = "test", subject = "chain test" }
"""


def test_contact_chain_edited_over_the_configuration():
    """The contact chain: the configuration's shown as the starting point; an admin saves
    another (checked: hostile or malformed contacts refused); the next escalation walks
    the saved chain; removing it brings the configuration's back; audited."""
    from test_escalation import rcpt
    certdir = tempfile.mkdtemp(prefix="kagari-settings-")
    try:
        cert, key = make_cert(certdir)
        extra = ("escalation = { base_url = %s }\n"
                 "api = { listen = \"127.0.0.1:0\", cert_file = %s, key_file = %s, "
                 "password_memory = \"1MiB\", password_passes = 1 }\n"
                 % (lua_str(BASE), json.dumps(cert), json.dumps(key)))
        with ConnEnv("settings-chain", {"esc": ESCALATE_ONLY}, run_timeout="10m",
                     extra_config=extra,
                     tenant_extra=lambda m: chain_block(m, ("30s", "30s", "30s"))) as env:
            d = env.d
            users = {r: add_user(d, r, "t1:" + r) for r in ("admin", "analyst", "auditor")}
            c = {}
            for r, u in users.items():
                c[r] = Api(api_port(d), cafile=cert)
                check(c[r].login(u).status == 200, "login %s" % r)
            path = "/api/v1/tenants/t1/contacts"
            seed = c["admin"].get(path).json
            check(seed["source"] == "config" and
                  [x["name"] for x in seed["contacts"]] == ["当番 佐藤", "CISO Tanaka", "Director"]
                  and seed["contacts"][1]["webhooks"] == ["pager"] and
                  seed["contacts"][1]["lang"] == "en" and seed["contacts"][0]["wait"] == 30,
                  "the configuration's chain: %r" % seed)
            check(c["auditor"].get(path).status == 200, "the auditor reads it")
            check(c["analyst"].get(path).status == 403, "the analyst does not")
            good = {"contacts": [{"name": "夜間当番 <b>", "email": "night@example.jp", "wait": 20},
                                 {"name": "CISO", "webhooks": ["pager"], "wait": 20,
                                  "lang": "en"}]}
            for who in ("analyst", "auditor"):
                check(c[who].request("POST", path, good).status == 403, "%s saves" % who)
            r = c["admin"].request("POST", path, good, csrf=False)
            check(r.status == 403 and r.json["error"] == "csrf_failed", "no CSRF: %r" % r)
            one = {"name": "x", "email": "x@example.jp", "wait": 60}
            bad = [{}, {"contacts": []}, {"contacts": "x"}, {"contacts": [one] * 21},
                   {"contacts": [dict(one, email="a@b.jp\r\nBcc: evil@example.com")]},
                   {"contacts": [dict(one, email="<script>@x.jp")]},
                   {"contacts": [dict(one, email="nobody")]},
                   {"contacts": [dict(one, email="a@b@c.jp")]},
                   {"contacts": [dict(one, name="")]},
                   {"contacts": [dict(one, name="a\u0000b")]},
                   {"contacts": [dict(one, name="x" * 101)]},
                   {"contacts": [dict(one, wait=0)]}, {"contacts": [dict(one, wait=86401)]},
                   {"contacts": [dict(one, wait="1m")]},
                   {"contacts": [dict(one, lang="fr")]},
                   {"contacts": [dict(one, webhooks=["../x"])]},
                   {"contacts": [dict(one, webhooks=["a"] * 9)]},
                   {"contacts": [dict(one, webhooks="pager")]},
                   {"contacts": [{"name": "x", "wait": 60}]},
                   {"contacts": ["x"]}]
            for b in bad:
                r = c["admin"].request("POST", path, b)
                check(r.status == 400, "bad %r: %r" % (b, r))
            check(c["admin"].get(path).json["source"] == "config", "nothing saved by bad input")
            r = c["admin"].request("POST", path, good)
            check(r.status == 200 and r.json["source"] == "portal" and
                  r.json["updated_by"] == "admin" and
                  [x["name"] for x in r.json["contacts"]] == ["夜間当番 <b>", "CISO"],
                  "saved: %r" % r)
            # The next escalation walks the saved chain.
            aid = env.post("esc")
            msgs = wait_for(lambda: env.m.smtp_messages() or None, 20, "the first mail")
            check(rcpt(msgs[0]) == "night@example.jp", "the saved first contact: %r"
                  % rcpt(msgs[0]))
            esc = wait_for(lambda: (lambda e: e if e and e[0]["last_contact"] else None)(
                c["analyst"].get("/api/v1/tenants/t1/dashboard/escalations").json["escalations"]), 20,
                "the escalation")
            check(esc[0]["contacts"] == 2 and esc[0]["last_contact"] == "夜間当番 <b>",
                  "the escalation: %r" % esc[0])
            # Back to the configuration's chain.
            r = c["admin"].request("DELETE", path)
            check(r.status == 200 and r.json["source"] == "config" and
                  len(r.json["contacts"]) == 3, "reset: %r" % r)
            acts = [(a[0], a[1], a[2]) for a in audit_rows(d) if a[4] == "ok"]
            for want in (("t1", "admin", "contacts.set"), ("t1", "admin", "contacts.reset")):
                check(want in acts, "audit lacks %r" % (want,))
            p = d.cli("escalation", "ack", str(esc[0]["id"]), "--tenant", "t1", "--by", "x")
            check(p.returncode == 0, "ack")
            d.wait_run_final(aid)
    finally:
        shutil.rmtree(certdir, ignore_errors=True)


test_contact_chain_edited_over_the_configuration.TIMEOUT = 180


def test_allowlist_lockout_only_when_confirmed():
    """An admin's allow-list change that would cut them off is refused and undone unless
    they confirm it; confirmed, it holds (their next request is refused, audited with
    locked_out) until a platform operator removes it; the operator's own list is apart."""
    with api_daemon("settings-lockout") as d:
        adm = add_user(d, "adm", "t1:admin")
        op = add_user(d, "op", "*:operator")
        d.start()
        port = api_port(d)
        a, o = Api(port, cafile=d.api_cert), Api(port, cafile=d.api_cert)
        check(a.login(adm).status == 200 and o.login(op).status == 200, "logins")
        path = "/api/v1/tenants/t1/allowlist"
        for confirm in ({}, {"confirm_lockout": False}, {"confirm_lockout": "yes"},
                        {"confirm_lockout": 1}):
            body = dict({"cidr": "192.0.2.0/24"}, **confirm)
            r = a.request("POST", path, body)
            check(r.status == 409 and r.json["error"] == "would_lock_you_out",
                  "unconfirmed %r: %r" % (confirm, r))
        check(a.get(path).json["cidrs"] == [], "undone")
        r = a.request("POST", path, {"cidr": "192.0.2.0/24", "confirm_lockout": True},
                      csrf=False)
        check(r.status == 403 and r.json["error"] == "csrf_failed", "CSRF still needed")
        r = a.request("POST", path, {"cidr": "192.0.2.0/24", "confirm_lockout": True})
        check(r.status == 200 and r.json["cidrs"] == ["192.0.2.0/24"], "confirmed: %r" % r)
        r = a.get("/api/v1/tenants/t1/alerts")
        check(r.status == 403 and r.json["error"] == "address_not_allowed", "cut off: %r" % r)
        rows = [x for x in audit_rows(d, "allowlist.add") if x[4] == "ok"]
        check(rows and json.loads(rows[-1][6]).get("locked_out") is True, "audited: %r" % rows)
        # The platform operator (whose list is "*", empty: everywhere) lets them back in.
        r = o.request("DELETE", path + "?cidr=192.0.2.0%2F24")
        check(r.status == 200 and r.json["cidrs"] == [], "operator removes it: %r" % r)
        check(a.get("/api/v1/tenants/t1/alerts").status == 200, "back in")
        # A removal that cuts the admin off needs the confirmation too.
        check(a.request("POST", path, {"cidr": "127.0.0.1/32"}).status == 200, "own address")
        check(a.request("POST", path, {"cidr": "192.0.2.0/24"}).status == 200, "another")
        r = a.request("DELETE", path + "?cidr=127.0.0.1%2F32")
        check(r.status == 409, "unconfirmed removal: %r" % r)
        r = a.request("DELETE", path + "?cidr=127.0.0.1%2F32&confirm_lockout=1")
        check(r.status == 200 and r.json["cidrs"] == ["192.0.2.0/24"], "confirmed: %r" % r)
        check(a.get("/api/v1/tenants/t1/alerts").status == 403, "cut off again")
        d.stop()


test_allowlist_lockout_only_when_confirmed.TIMEOUT = 120
