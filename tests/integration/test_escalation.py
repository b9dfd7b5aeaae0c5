"""escalate{}: the contact chain against the mock's SMTP server and webhook receivers.
Nobody acknowledges: every contact reached in order with its wait; a CLI or link
acknowledgement stops the chain; GET never acknowledges; tampered, replayed and expired
links are refused; kill -9 mid-chain does not repeat a delivered message."""

import email
import email.policy
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import tempfile
import time
import urllib.parse

from harness import check, wait_for
from connhelp import ConnEnv, expect_ok, lua_str
from peopleapi import Api, add_user, api_port, audit_rows, make_cert

BASE = "https://soc.example.jp"
HOOK_SECRET = "esc-hook-secret-42"

ESCALATE = """
    rec("esc", escalate{ level = "critical", reason = "サインイン成功: 不審なIP",
                         subject = alert.raw.subject or "侵害の疑い" })
"""


def chain_block(m, waits=("2s", "2s", "2s")):
    smtp = m.smtp()
    return ("notify = { smtp = { url = %s, user = \"kagari\", password = \"mail-secret\", "
            "from = \"soc@example.jp\", timeout = \"5s\" }, "
            "webhooks = { { name = \"pager\", kind = \"webhook\", url = %s, secret = %s } }, "
            "chain = { "
            "{ name = \"当番 佐藤\", email = \"duty@example.jp\", wait = %s }, "
            "{ name = \"CISO Tanaka\", email = \"ciso@example.jp\", webhooks = { \"pager\" }, "
            "  wait = %s, lang = \"en\" }, "
            "{ name = \"Director\", email = \"director@example.jp\", wait = %s } } }"
            % (lua_str("smtp://127.0.0.1:%d" % smtp["starttls_port"]),
               lua_str(m.base_url + "/hooks/pager"), lua_str(HOOK_SECRET),
               lua_str(waits[0]), lua_str(waits[1]), lua_str(waits[2])))


def env(name, waits=("2s", "2s", "2s"), clock=False):
    extra = "escalation = { base_url = %s }\n" % lua_str(BASE)
    if clock:
        extra += "testing = { clock = true }\n"
    return ConnEnv(name, {"esc": ESCALATE}, run_timeout="2h", extra_config=extra,
                   tenant_extra=lambda m: chain_block(m, waits))


def rcpt(msg):
    return msg["rcpt"][0].strip("<>")


def body_of(msg):
    p = email.message_from_bytes(msg["data"].encode("utf-8"), policy=email.policy.default)
    return p, p.get_content()


def link_path(msg):
    _, body = body_of(msg)
    m = re.search(re.escape(BASE) + r"(/ack/\S+)", body)
    check(m is not None, "an acknowledge link in the mail: %r" % body)
    return m.group(1)


def ack_request(d, method, path, form=None):
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    try:
        body = urllib.parse.urlencode(form) if form is not None else None
        hdrs = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace"), dict(r.getheaders())
    finally:
        c.close()


def wait_messages(e, n, timeout=30):
    return wait_for(lambda: (lambda ms: ms if len(ms) >= n else None)(e.m.smtp_messages()),
                    timeout, "%d message(s) at the SMTP server" % n)


def esc_row(d, eid):
    rows = d.query("SELECT state, reached, acked, acked_by, acked_via, created FROM escalations"
                   " WHERE id = ?", (eid,))
    check(len(rows) == 1, "escalation %s stored" % eid)
    return dict(zip(("state", "reached", "acked", "acked_by", "acked_via", "created"), rows[0]))


def still(e, n, secs=1.5):
    """After secs of real time, the SMTP server still holds exactly n messages."""
    time.sleep(secs)
    got = len(e.m.smtp_messages())
    check(got == n, "%d message(s) at the SMTP server, expected %d" % (got, n))


def test_nobody_acknowledges_every_contact_in_order():
    """Waits of minutes (5m, 15m, 10m), passed with the test clock: each contact is reached
    only when its predecessor's wait is over, in order, and the engine's times show the
    right waits; every step is in the tenant's audit history."""
    with env("esc-order", waits=("5m", "15m", "10m"), clock=True) as e:
        e.m.hook_config("pager", HOOK_SECRET)
        aid = e.post("esc")
        wait_messages(e, 1)
        still(e, 1)
        e.advance_clock(5 * 60 - 20)          # 20 s (less the real time spent) short
        still(e, 1)
        e.advance_clock(21)
        wait_messages(e, 2)
        still(e, 2)
        e.advance_clock(15 * 60 - 20)
        still(e, 2)
        e.advance_clock(21)
        wait_messages(e, 3)
        still(e, 3)
        e.advance_clock(10 * 60 + 1)
        out, run, journal = e.result(aid, timeout=30)
        v = expect_ok(out, "esc")
        check(v["acked"] is False and v["exhausted"], "chain exhausted: %r" % v)
        msgs = e.m.smtp_messages()
        check([rcpt(x) for x in msgs] == ["duty@example.jp", "ciso@example.jp",
                                          "director@example.jp"],
              "contacts reached in order: %r" % [rcpt(x) for x in msgs])
        # The engine's own times (journal, test clock included): each wait lasted its
        # contact's wait, and the next contact's first delivery followed it.
        j = e.d.db_journal(run["id"])
        waits = [x for x in j if x["kind"] == "escalate.wait"]
        check(len(waits) == 3, "three waits: %r" % [x["kind"] for x in j])
        for w, want in zip(waits, (300000, 900000, 600000)):
            took = w["ended"] - w["started"]
            check(want <= took <= want + 30000, "wait of %d ms took %d ms" % (want, took))
        mails = [x for x in j if x["kind"] == "notify.email"]
        check(len(mails) == 3, "three mails journaled")
        for k in range(2):
            gap = mails[k + 1]["started"] - mails[k]["started"]
            want = (300000, 900000)[k]
            check(want <= gap <= want + 30000, "contact %d reached %d ms after contact %d "
                  "(wait %d)" % (k + 2, gap, k + 1, want))
        p0, b0 = body_of(msgs[0])
        check(str(p0["Subject"]).startswith("【緊急】") and "当番 佐藤 様" in b0,
              "Japanese template for the first contact: %r" % str(p0["Subject"]))
        p1, b1 = body_of(msgs[1])
        check(str(p1["Subject"]).startswith("[URGENT]") and "Dear CISO Tanaka" in b1,
              "English template for the second: %r" % str(p1["Subject"]))
        hooks = e.m.hook_received("pager")
        check(len(hooks) == 1 and hooks[0]["signature_ok"], "pager webhook signed: %r" % hooks)
        check(abs(hooks[0]["at_ms"] - msgs[1]["at_ms"]) < 2000, "webhook with contact 2")
        paths = [link_path(x) for x in msgs]
        check(len(set(paths)) == 3, "a link of its own per contact")
        row = esc_row(e.d, v["id"])
        check(row["state"] == "exhausted" and row["reached"] == 3 and row["acked"] is None,
              "stored as exhausted: %r" % row)
        status, page, _ = ack_request(e.d, "GET", paths[0])
        check(status == 200 and "<form" in page, "a late link still shows the page")
        listing = e.d.cli("escalation", "list", "--json").stdout
        rows = json.loads(listing)
        check(rows[0]["state"] == "exhausted" and rows[0]["reached"] == 3,
              "CLI lists it: %r" % rows)
        metrics = e.d.metrics()
        check(metrics.get("kagari_escalations_exhausted_total") == 1
              and metrics.get("kagari_escalations_started_total") == 1
              and metrics.get("kagari_notify_mail_sent_total") == 3, "metrics counted")
        check(metrics.get("kagari_test_clock_shift_seconds", 0) >= 1800, "the shift exported")
        # The tenant's history: started, each contact notified, exhausted; by the engine.
        hist = [r for r in audit_rows(e.d) if r[2].startswith("escalation.")]
        check([(r[0], r[1], r[2]) for r in hist] ==
              [("t1", "engine", "escalation.started")] +
              [("t1", "engine", "escalation.notified")] * 3 +
              [("t1", "engine", "escalation.exhausted")], "audit history: %r" % hist)
        check(all(r[3] == "escalation:%d" % v["id"] for r in hist), "targets: %r" % hist)
        contacts = [json.loads(r[6])["contact"] for r in hist if r[2] == "escalation.notified"]
        check(contacts == [1, 2, 3], "each contact notified once, in order: %r" % contacts)
        check(json.loads(hist[0][6])["level"] == "critical", "started: %r" % (hist[0],))


test_nobody_acknowledges_every_contact_in_order.TIMEOUT = 120


def test_cli_ack_stops_chain():
    """An acknowledgement from the command line, made four minutes into the first contact's
    wait of ten (test clock): the chain stops there, the time to acknowledge is counted on
    the engine's clock, which the command line shares."""
    with env("esc-cli", waits=("10m", "10m", "10m"), clock=True) as e:
        aid = e.post("esc")
        wait_messages(e, 1)
        e.advance_clock(240)
        run = wait_for(lambda: [r for r in e.d.db_runs() if r["alert_id"] == aid] or None, 10,
                       "the run")[0]
        eid = wait_for(lambda: (e.d.query("SELECT id FROM escalations") or [None])[0], 10,
                       "the escalation row")[0]
        p = e.d.cli("escalation", "ack", str(eid), "--tenant", "t1", "--by", "Sato")
        check("acknowledged" in p.stdout, p.stdout)
        again = e.d.cli("escalation", "ack", str(eid), "--tenant", "t1", "--by", "Sato",
                        check_rc=1)
        check("already" in again.stderr, "a second ack refused: %r" % again.stderr)
        out, run, journal = e.result(aid, timeout=20)
        v = expect_ok(out, "esc")
        check(v["acked"] and v["via"] == "cli" and "Sato" in v["by"] and
              240000 <= v["tta_ms"] <= 270000, "acknowledged via the CLI: %r" % v)
        e.advance_clock(3600)
        still(e, 1)
        check([rcpt(x) for x in e.m.smtp_messages()] == ["duty@example.jp"],
              "nobody else notified after the ack")
        row = esc_row(e.d, eid)
        check(row["state"] == "acked" and row["acked_via"] == "cli", "stored: %r" % row)
        m = e.d.metrics()
        check(m.get("kagari_escalations_acked_total") == 1
              and m.get("kagari_escalation_tta_seconds_count") == 1, "CLI ack counted")
        rows = audit_rows(e.d, "escalation.ack")
        check(len(rows) == 1 and rows[0][0] == "t1" and rows[0][1].startswith("cli:") and
              json.loads(rows[0][6]) == {"via": "cli", "by": "Sato"}, "CLI ack audited: %r" % rows)


def test_link_get_shows_post_acknowledges_and_bad_links_refused():
    with env("esc-link", waits=("8s", "8s", "8s")) as e:
        aid = e.post("esc")
        msgs = wait_messages(e, 1)
        path = link_path(msgs[0])
        parts = path.split("/")  # ['', 'ack', tenant, id, contact, expires, mac]
        eid = int(parts[3])
        for _ in range(2):
            status, page, hdrs = ack_request(e.d, "GET", path)
            check(status == 200 and "<form method=\"post\"" in page, "GET shows a form: %d" % status)
            check(hdrs.get("Cache-Control") == "no-store", "not cached: %r" % hdrs)
        check(esc_row(e.d, eid)["acked"] is None, "GET did not acknowledge")
        flip = parts[6][:-1] + ("0" if parts[6][-1] != "0" else "1")
        bad = [
            "/".join(parts[:6] + [flip]),                                  # mac tampered
            "/".join(parts[:3] + [str(eid + 1)] + parts[4:]),              # another escalation
            "/".join(parts[:4] + ["9"] + parts[5:]),                       # another contact
            "/".join(parts[:5] + [str(int(parts[5]) + 3600)] + parts[6:]),  # later expiry
            "/".join(parts[:2] + ["t2"] + parts[3:]),                      # another tenant
            path + "0", path[:-1], "/ack/", "/ack/t1/x/1/2/zz",
            "/".join(parts[:3] + ["9" * 40] + parts[4:]),                  # overflow
            "/".join(parts[:3] + ["-" + parts[3]] + parts[4:]),            # sign
            "/".join(parts[:2] + ["T1"] + parts[3:]),                      # case
            path.upper(), path + "/", "/ack/" + "a" * 5000,
            "/".join(parts[:6] + [parts[6].upper()]),                      # hex case
        ]
        for b in bad:
            status, _, _ = ack_request(e.d, "POST", b, {"by": "Mallory"})
            check(status in (403, 404), "tampered link %s refused: %d" % (b, status))
        check(esc_row(e.d, eid)["acked"] is None, "no tampered link acknowledged")
        key = open(os.path.join(e.d.data, "escalation.key"), "rb").read()
        past = int(time.time()) - 10
        mac = hmac.new(key, ("ack|t1|%d|1|%d" % (eid, past)).encode(), hashlib.sha256).hexdigest()
        status, _, _ = ack_request(e.d, "POST", "/ack/t1/%d/1/%d/%s" % (eid, past, mac))
        check(status == 410, "an expired (correctly signed) link refused: %d" % status)
        status, page, _ = ack_request(e.d, "PUT", path)
        check(status == 405, "only GET and POST: %d" % status)
        status, page, _ = ack_request(e.d, "POST", path, {"by": "佐藤 <script>"})
        check(status == 200 and "Acknowledged" in page and "<script>" not in page,
              "POST acknowledges: %d %s" % (status, page[:200]))
        out, run, _ = e.result(aid, timeout=20)
        v = expect_ok(out, "esc")
        check(v["acked"] and v["via"] == "link" and "佐藤" in v["by"] and v["contact"] == 1,
              "acknowledged via the link: %r" % v)
        status, _, _ = ack_request(e.d, "POST", path, {"by": "again"})
        check(status == 409, "a replayed link refused: %d" % status)
        time.sleep(1)
        check(len(e.m.smtp_messages()) == 1, "the chain stopped at the first contact")
        check(e.d.metrics().get("kagari_escalations_acked_total") == 1, "ack counted")
        rows = audit_rows(e.d, "escalation.ack")
        check(len(rows) == 1 and rows[0][0] == "t1" and rows[0][1] is None and
              json.loads(rows[0][6])["via"] == "link" and "佐藤" in json.loads(rows[0][6])["by"],
              "link ack audited: %r" % rows)


def test_kill9_mid_chain_does_not_resend():
    """kill -9 six minutes into the first contact's wait of ten (test clock): after the
    restart nothing delivered is sent again, the wait goes on to its first end (four more
    minutes, not ten), and the chain started with the contacts it was started with."""
    with env("esc-kill", waits=("10m", "10m", "2m"), clock=True) as e:
        e.m.hook_config("pager", HOOK_SECRET)
        aid = e.post("esc")
        wait_messages(e, 1)
        time.sleep(1.5)  # the delivery's journal entry is committed
        e.advance_clock(360)
        e.d.kill9()
        # The operator changes the chain meanwhile: the escalation in progress goes on
        # with the chain it started with (recorded), new ones will use the new one.
        with open(e.d.config) as f:
            text = f.read()
        check("director@example.jp" in text, "the chain is in the configuration")
        with open(e.d.config, "w") as f:
            f.write(text.replace("director@example.jp", "deputy@example.jp"))
        e.d.restart()
        still(e, 1)                      # nothing sent again by the replay
        e.advance_clock(240 - 20)
        still(e, 1)                      # 20 s short of the first wait's end
        e.advance_clock(21)
        wait_messages(e, 2)
        e.advance_clock(601)
        wait_messages(e, 3)
        e.advance_clock(121)
        out, run, journal = e.result(aid, timeout=30)
        v = expect_ok(out, "esc")
        check(v["acked"] is False and v["exhausted"], "chain ran to its end: %r" % v)
        msgs = e.m.smtp_messages()
        check([rcpt(x) for x in msgs] == ["duty@example.jp", "ciso@example.jp",
                                          "director@example.jp"],
              "each contact reached once across the restart: %r" % [rcpt(x) for x in msgs])
        mails = [x for x in e.d.db_journal(run["id"]) if x["kind"] == "notify.email"]
        gap = mails[1]["started"] - mails[0]["started"]
        check(600000 <= gap <= 630000, "the first wait resumed, not restarted from zero: %d"
              % gap)
        ids = [body_of(x)[0]["Message-ID"] for x in msgs]
        check(len(set(ids)) == 3, "distinct Message-IDs: %r" % ids)
        check(len(e.m.hook_received("pager")) == 1, "the webhook sent once")
        notified = [json.loads(x[6])["contact"] for x in audit_rows(e.d, "escalation.notified")]
        check(notified == [1, 2, 3], "each contact's notification audited once: %r" % notified)


test_kill9_mid_chain_does_not_resend.TIMEOUT = 120


class EscApiEnv(ConnEnv):
    """The chain of env() with the people's API, its users of every role and a second
    tenant's analyst, each logged in."""

    def __init__(self, name, waits):
        self.certdir = tempfile.mkdtemp(prefix="kagari-it-apicert-")
        self.cert, key = make_cert(self.certdir)
        extra = ("escalation = { base_url = %s }\ntesting = { clock = true }\n"
                 "api = { listen = \"127.0.0.1:0\", cert_file = %s, key_file = %s, "
                 "password_memory = \"1MiB\", password_passes = 1 }\n"
                 % (lua_str(BASE), json.dumps(self.cert), json.dumps(key)))
        super().__init__(name, {"esc": ESCALATE}, run_timeout="2h", extra_config=extra,
                         tenant_extra=lambda m: chain_block(m, waits))

    def __exit__(self, etype, exc, tb):
        try:
            return super().__exit__(etype, exc, tb)
        finally:
            shutil.rmtree(self.certdir, ignore_errors=True)

    def people(self):
        self.d.add_tenant("t2")
        self.api = {}
        for role in ("analyst", "admin", "engineer", "auditor"):
            self.api[role] = self.login(add_user(self.d, role + "1", "t1:" + role))
        self.api["operator"] = self.login(add_user(self.d, "op", "*:operator"))
        self.api["other"] = self.login(add_user(self.d, "ana2", "t2:analyst"))

    def login(self, u):
        a = Api(api_port(self.d), cafile=self.cert)
        check(a.login(u).status == 200, "login %s" % u.name)
        return a


def test_api_ack_roles_tenants_and_audit():
    """POST /api/v1/tenants/<t>/escalations/<id>/ack: analysts, admins and operators may
    acknowledge, auditors and engineers may not, another tenant's person gets the 404 of
    an unknown id; the acknowledgement stops the chain at once, through the daemon, and is
    audited; the lists show it."""
    with EscApiEnv("esc-api", ("10m", "10m", "10m")) as e:
        e.people()
        aid = e.post("esc")
        wait_messages(e, 1)
        eid = wait_for(lambda: (e.d.query("SELECT id FROM escalations") or [None])[0], 10,
                       "the escalation row")[0]
        one = "/api/v1/tenants/t1/escalations/%d" % eid
        unknown = e.api["analyst"].get("/api/v1/tenants/t1/escalations/9999")
        check(unknown.status == 404, "unknown id: %r" % unknown)
        for role, c in e.api.items():
            r = c.get(one)
            if role == "other":
                check(r.status == 404 and r.body == unknown.body,
                      "another tenant's person: the 404 of an unknown id: %r" % r)
            else:
                check(r.status == 200 and r.json["state"] == "open" and r.json["reached"] == 0
                      and r.json["acked_by"] is None and r.json["level"] == "critical",
                      "%s reads it: %r" % (role, r))
            queue = c.get("/api/v1/escalations")
            ids = [(x["tenant"], x["id"]) for x in queue.json["escalations"]]
            check(queue.status == 200 and ids == ([] if role == "other" else [("t1", eid)]),
                  "%s's open escalations: %r" % (role, queue))
        lst = e.api["auditor"].get("/api/v1/tenants/t1/escalations?state=open").json
        check([x["id"] for x in lst["escalations"]] == [eid], "list: %r" % lst)
        check(e.api["auditor"].get("/api/v1/tenants/t1/escalations?state=acked").json
              ["escalations"] == [], "none acknowledged yet")
        check(e.api["auditor"].get("/api/v1/tenants/t1/escalations?state=x").status == 400,
              "bad state")
        check(e.api["other"].get("/api/v1/tenants/t1/escalations").status == 404, "t2 on t1")
        ack = one + "/ack"
        for role in ("auditor", "engineer"):
            r = e.api[role].request("POST", ack, {})
            check(r.status == 403, "%s may not acknowledge: %r" % (role, r))
        r = e.api["other"].request("POST", ack, {})
        check(r.status == 404 and r.body == unknown.body, "another tenant's id: %r" % r)
        r = e.api["analyst"].request("POST", "/api/v1/tenants/t1/escalations/9999/ack", {})
        check(r.status == 404, "unknown id: %r" % r)
        for body in ("[]", "{", {"comment": 3}, {"x": 1}, {"comment": "c" * 3000}):
            r = e.api["analyst"].request("POST", ack, body)
            check(r.status == 400, "body %r: %r" % (body, r))
        check(esc_row(e.d, eid)["acked"] is None, "nothing acknowledged by refused requests")
        r = e.api["analyst"].request("POST", ack, {"comment": "on it"})
        check(r.status == 200 and r.json["state"] == "acked" and r.json["acked_by"] == "analyst1"
              and r.json["acked_via"] == "api" and r.json["tta_ms"] >= 0, "acknowledged: %r" % r)
        out, run, _ = e.result(aid, timeout=10)
        v = expect_ok(out, "esc")
        check(v["acked"] and v["via"] == "api" and v["by"] == "analyst1" and v["contact"] == 1,
              "the chain stopped: %r" % v)
        for role in ("admin", "operator"):
            r = e.api[role].request("POST", ack)
            check(r.status == 409 and "analyst1" in r.json["message"], "%s: twice: %r" % (role, r))
        check([x["id"] for x in e.api["analyst"].get("/api/v1/escalations").json["escalations"]]
              == [], "no longer open")
        e.advance_clock(3600)  # past every wait (and every session's idle time)
        still(e, 1)
        rows = audit_rows(e.d, "escalation.ack")
        check([(x[0], x[1], x[4]) for x in rows] ==
              [("t1", "analyst1", "not_found"), ("t1", "analyst1", "ok"),
               ("t1", "admin1", "refused"), ("t1", "op", "refused")], "acks audited: %r" % rows)
        check(json.loads(rows[1][6]) == {"via": "api", "comment": "on it"}, "detail: %r" % rows)
        denied = [(x[1], x[4]) for x in audit_rows(e.d, "access") if x[3] == ack]
        check(sorted(denied) == [("ana2", "not_found"), ("auditor1", "forbidden"),
                                 ("engineer1", "forbidden")], "refusals audited: %r" % denied)
        hist = [x[2] for x in audit_rows(e.d) if x[0] == "t1" and x[1] == "engine"]
        check(hist == ["escalation.started", "escalation.notified"], "history: %r" % hist)
        m = e.d.metrics()
        check(m.get("kagari_escalations_acked_total") == 1, "counted")


test_api_ack_roles_tenants_and_audit.TIMEOUT = 180
