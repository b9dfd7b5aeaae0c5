"""notify: mail through the mock's SMTP server (STARTTLS and implicit TLS, AUTH, RFC 2047
Japanese subjects, Message-ID/Date, header injection refused, failure then success is
one message), signed webhooks verified by the mock's receiver, Teams and Slack payloads,
templates."""

import base64
import email
import email.header
import email.policy
import hashlib
import hmac
import json

from harness import check, wait_for
from connhelp import ConnEnv, expect_ok, expect_fail, lua_str

HOOK_SECRET = "hook-secret-0123456789"


def notify_block(m, tls="starttls", password="mail-secret", extra=""):
    smtp = m.smtp()
    port = smtp["starttls_port"] if tls == "starttls" else smtp["tls_port"]
    scheme = "smtp" if tls == "starttls" else "smtps"
    return ("notify = { smtp = { url = %s, user = \"kagari\", password = %s, "
            "from = \"soc@example.jp\", from_name = \"篝 SOC\", timeout = \"5s\" }, "
            "webhooks = { "
            "{ name = \"ticketing\", kind = \"webhook\", url = %s, secret = %s }, "
            "{ name = \"wrong\", kind = \"webhook\", url = %s, secret = \"not-the-secret\" }, "
            "{ name = \"soc-teams\", kind = \"teams\", url = %s }, "
            "{ name = \"soc-slack\", kind = \"slack\", url = %s } }%s }"
            % (lua_str("%s://127.0.0.1:%d" % (scheme, port)), lua_str(password),
               lua_str(m.base_url + "/hooks/ticketing"), lua_str(HOOK_SECRET),
               lua_str(m.base_url + "/hooks/wrong"),
               lua_str(m.base_url + "/hooks/teams"), lua_str(m.base_url + "/hooks/slack"),
               extra))


MAIL = """
      rec("mail", notify.email{ to = alert.raw.to or "duty@example.jp",
                                subject = alert.raw.subject, body = alert.raw.body })
"""


def parse(msg):
    return email.message_from_bytes(msg["data"].encode("utf-8"), policy=email.policy.default)


def test_email_japanese_subject_round_trips_starttls():
    subject = "【緊急】不正サインインの疑い — アカウント停止済み (alice@example.jp) " * 2
    body = "本文です。\n二行目\n.dot line\n"
    with ConnEnv("notify-ja", {"mail": MAIL},
                 tenant_extra=lambda m: notify_block(m, "starttls")) as env:
        out, run, journal = env.fire("mail", {"subject": subject, "body": body})
        v = expect_ok(out, "mail")
        msgs = env.m.smtp_messages()
        check(len(msgs) == 1, "one message recorded, got %d" % len(msgs))
        m = msgs[0]
        check(m["tls"] and m["listener"] == "starttls", "sent after STARTTLS: %r" % m)
        check(m["auth"] == "kagari", "authenticated: %r" % m)
        check(m["rcpt"] == ["<duty@example.jp>"], "envelope recipient: %r" % m["rcpt"])
        raw_subject = [l for l in m["data"].split("\r\n") if l.startswith("Subject:")][0]
        check("=?UTF-8?B?" in raw_subject, "subject RFC 2047 encoded: %r" % raw_subject)
        for line in m["data"].split("\r\n\r\n")[0].split("\r\n"):
            check(len(line) <= 78 or not line.startswith(("Subject", " =?")),
                  "encoded header line folded: %r" % line)
        p = parse(m)
        check(str(p["Subject"]) == subject, "subject decodes back: %r" % str(p["Subject"]))
        check(p.get_content() .replace("\r\n", "\n") == body,
              "body decodes back: %r" % p.get_content())
        mid = p["Message-ID"]
        check(mid == v["message_id"] and mid.startswith("<kagari.t1.%d." % run["id"]),
              "Message-ID from run and step: %r vs %r" % (mid, v))
        check(p["Date"] is not None and p["Date"].datetime is not None, "Date header")
        check("篝 SOC" in str(p["From"]) and "soc@example.jp" in str(p["From"]), "From: %r"
              % str(p["From"]))
        e = [x for x in journal if x["kind"] == "notify.email"][0]
        check(e["request"]["message_id"] == mid and e["result"]["accepted"],
              "delivery journaled: %r" % e)


def test_email_implicit_tls_and_bad_password():
    with ConnEnv("notify-tls", {"mail": MAIL},
                 tenant_extra=lambda m: notify_block(m, "tls")) as env:
        out, _, _ = env.fire("mail", {"subject": "implicit", "body": "x"})
        expect_ok(out, "mail")
        msgs = env.m.smtp_messages()
        check(len(msgs) == 1 and msgs[0]["listener"] == "tls" and msgs[0]["tls"],
              "sent over implicit TLS: %r" % msgs)
    with ConnEnv("notify-badpw", {"mail": MAIL},
                 tenant_extra=lambda m: notify_block(m, "tls", password="wrong")) as env:
        out, _, _ = env.fire("mail", {"subject": "x", "body": "x"})
        expect_fail(out, "mail", "notify.email")
        check(env.m.smtp_messages() == [], "nothing accepted with a wrong password")


def test_email_failure_then_success_is_one_message():
    with ConnEnv("notify-retry", {"mail": MAIL},
                 tenant_extra=lambda m: notify_block(m, "starttls")) as env:
        env.m.smtp_config(mode="fail", count=2)
        out, _, journal = env.fire("mail", {"subject": "retry", "body": "x"})
        v = expect_ok(out, "mail")
        check(v["attempts"] == 3, "two 451s then accepted: %r" % v)
        msgs = env.m.smtp_messages()
        check(len(msgs) == 1, "exactly one message, got %d" % len(msgs))
        env.m.smtp_config(mode="refuse", count=1, clear=True)
        out, _, _ = env.fire("mail", {"subject": "refused once", "body": "x"})
        expect_ok(out, "mail")
        check(len(env.m.smtp_messages()) == 1, "refused connection then one message")
        env.m.smtp_config(mode="reject", count=1, clear=True)
        out, _, _ = env.fire("mail", {"subject": "rejected", "body": "x"})
        expect_fail(out, "mail", "permanent")
        check(env.m.smtp_messages() == [], "a 550 is not retried")
        env.m.smtp_config(mode="slow", delay_ms=1500, clear=True)
        out, _, _ = env.fire("mail", {"subject": "slow", "body": "x"}, timeout=60)
        check(expect_ok(out, "mail")["attempts"] == 1, "a slow server within the timeout")
        check(len(env.m.smtp_messages()) == 1, "slow server: one message")


INJECT = """
      for i, s in ipairs(alert.raw.subjects) do
        try("subj" .. i, notify.email, { to = "a@example.jp", subject = s, body = "b" })
      end
      for i, a in ipairs(alert.raw.addrs) do
        try("addr" .. i, notify.email, { to = a, subject = "s", body = "b" })
      end
"""


def test_email_header_injection_refused():
    subjects = ["x\r\nBcc: victim@example.jp", "x\nBcc: v@example.jp", "x\rX", "a\x01b",
                "tab\there", "x\x7f", "\u2028ok\r"]
    addrs = ["a@example.jp\r\nBcc: v@example.jp", "a@example.jp\n", "<a@example.jp>",
             "a@example.jp, b@example.jp", "noat", "a b@example.jp", "a@b@example.jp", ""]
    with ConnEnv("notify-inject", {"inject": INJECT},
                 tenant_extra=lambda m: notify_block(m)) as env:
        out, _, _ = env.fire("inject", {"subjects": subjects, "addrs": addrs})
        for i in range(len(subjects)):
            check(not out["subj%d" % (i + 1)]["ok"], "subject %r refused" % subjects[i])
        for i in range(len(addrs)):
            check(not out["addr%d" % (i + 1)]["ok"], "address %r refused" % addrs[i])
        check(env.m.smtp_messages() == [], "nothing sent")


BADUTF = """
    rec("mail", notify.email{ to = "a@example.jp", subject = "bad \\xff\\xfe utf-8 \\xe3\\x81",
                              body = "body \\xc0\\xaf end" })
    rec("hook", notify.webhook{ to = "ticketing", title = "t \\xff", text = "x \\xed\\xa0\\x80" })
"""


def test_invalid_utf8_becomes_replacement_characters():
    with ConnEnv("notify-utf8", {"badutf": BADUTF},
                 tenant_extra=lambda m: notify_block(m)) as env:
        env.m.hook_config("ticketing", HOOK_SECRET)
        out, _, journal = env.fire("badutf")
        expect_ok(out, "mail")
        p = parse(env.m.smtp_messages()[0])
        check(str(p["Subject"]) == "bad \ufffd\ufffd utf-8 \ufffd\ufffd",
              "invalid bytes replaced in the subject: %r" % str(p["Subject"]))
        check("\ufffd" in p.get_content(), "and in the body")
        expect_ok(out, "hook")
        body = json.loads(env.m.hook_received("ticketing")[0]["body"])
        check(body["title"] == "t \ufffd" and "\ufffd" in body["text"],
              "the webhook body is valid JSON: %r" % body)


HOOKS = """
      rec("hook", notify.webhook{ to = "ticketing", title = "t", text = "本文",
                                  data = { severity = "high", n = 3 } })
      rec("wrong", notify.webhook{ to = "wrong", text = "x" })
      rec("teams", notify.teams{ to = "soc-teams", title = "【緊急】", text = "hello",
                                 link = "https://soc.example.jp/x" })
      rec("slack", notify.slack{ to = "soc-slack", title = "T", text = "hello" })
      rec("none", notify.webhook{ to = "nope", text = "x" })
      try("kind", notify.teams, { to = "ticketing", text = "x" })
      local s, b = notify.template("escalation", { subject = "S\\r\\nX", level = "high",
          reason = "r", link = "https://x", contact = "田中" }, "ja")
      rec("tmpl", { s = s, b = b })
      local s2 = notify.template("containment_done", { subject = "S" }, "en")
      rec("tmpl_en", { s = s2 })
"""


def test_webhooks_signed_verified_and_payloads():
    with ConnEnv("notify-hooks", {"hooks": HOOKS}, max_attempts=2,
                 tenant_extra=lambda m: notify_block(m)) as env:
        env.m.hook_config("ticketing", HOOK_SECRET)
        env.m.hook_config("wrong", HOOK_SECRET)
        out, run, journal = env.fire("hooks")
        v = expect_ok(out, "hook")
        got = env.m.hook_received("ticketing")
        check(len(got) == 1 and got[0]["signature_ok"] and got[0]["accepted"],
              "receiver verified the signature: %r" % got)
        body = json.loads(got[0]["body"])
        check(body["data"] == {"severity": "high", "n": 3} and body["text"] == "本文"
              and body["run"] == run["id"] and body["id"] == v["delivery"],
              "generic JSON body: %r" % body)
        ent = [x for x in journal if x["kind"] == "notify.webhook"][0]
        check(ent["request"]["url"] == "notify:ticketing" and "/hooks/" not in json.dumps(journal),
              "the journal names the destination, never its URL: %r" % ent["request"])
        check(got[0]["delivery"] == v["delivery"] == got[0]["idempotency_key"],
              "delivery id sent as header and Idempotency-Key: %r" % got[0])
        mac = hmac.new(HOOK_SECRET.encode(), (got[0]["timestamp"] + ".").encode()
                       + got[0]["body"].encode(), hashlib.sha256).hexdigest()
        check(len(mac) == 64, "signature computable by a receiver")
        expect_fail(out, "wrong", "401")
        bad = env.m.hook_received("wrong")
        check(bad and not bad[0]["signature_ok"] and not bad[0]["accepted"],
              "wrong secret detected by the receiver: %r" % bad)
        expect_ok(out, "teams")
        card = json.loads(env.m.hook_received("teams")[0]["body"])
        att = card["attachments"][0]
        check(att["contentType"] == "application/vnd.microsoft.card.adaptive"
              and att["content"]["type"] == "AdaptiveCard"
              and att["content"]["body"][0]["text"] == "【緊急】"
              and att["content"]["actions"][0]["url"] == "https://soc.example.jp/x",
              "Adaptive Card: %r" % card)
        expect_ok(out, "slack")
        sl = json.loads(env.m.hook_received("slack")[0]["body"])
        check(sl["text"] == "T" and sl["blocks"][1]["text"]["text"] == "hello",
              "Slack blocks: %r" % sl)
        expect_fail(out, "none", "no webhook named nope")
        check(not out["kind"]["ok"] and "webhook destination" in out["kind"]["e"],
              "a teams call to a generic webhook refused: %r" % out["kind"])
        t = expect_ok(out, "tmpl")
        check(t["s"] == "【緊急】S  X" and "田中 様" in t["b"] and "https://x" in t["b"],
              "Japanese escalation template, no line break in the subject: %r" % t)
        check(expect_ok(out, "tmpl_en")["s"] == "[Containment done] S", "English template")


ONE_HOOK = """
    rec("hook", notify.webhook{ to = "ticketing", text = "retry me" })
"""


def test_webhook_failure_then_success_is_one_delivery():
    with ConnEnv("notify-hook-retry", {"hook": ONE_HOOK}, max_attempts=4,
                 tenant_extra=lambda m: notify_block(m)) as env:
        env.m.hook_config("ticketing", HOOK_SECRET)
        env.m.fault("/hooks/ticketing", status=503, count=2)
        out, _, journal = env.fire("hook")
        v = expect_ok(out, "hook")
        got = env.m.hook_received("ticketing")
        check(len(got) == 1 and got[0]["accepted"] and not got[0]["duplicate"],
              "one delivery after two 503s: %r" % got)
        sent = env.m.log_entries(100, "/hooks/ticketing")
        keys = {x.get("idempotency_key") for x in sent}
        check(len(sent) == 3 and keys == {v["delivery"]},
              "three attempts, all with the same delivery id: %r" % sent)
        env.m.fault("/hooks/ticketing", status=500, count=10)
        out, _, _ = env.fire("hook")
        expect_fail(out, "hook", "500")


APPROVED_THEN_NOTIFY = """
    local d = approve{ title = "Disable " .. alert.raw.upn, effects = { {"graph.disable_user",
                       alert.raw.upn} }, timeout = "10m" }
    rec("decision", d)
    rec("disable", graph.disable_user(alert.raw.upn))
    rec("mail", notify.email{ to = "duty@example.jp", subject = "無効化しました",
                              body = alert.raw.upn })
    rec("hook", notify.webhook{ to = "ticketing", text = "disabled" })
    rec("other", graph.revoke_sessions(alert.raw.upn))
"""


def test_notifications_are_not_restricted_by_an_approval():
    import tempfile
    from peopleapi import Api, add_user, api_port, make_cert
    from mockctl import ALICE
    certdir = tempfile.mkdtemp(prefix="kagari-it-apicert-")
    cert, key = make_cert(certdir)
    extra = ('api = { listen = "127.0.0.1:0", cert_file = %s, key_file = %s, '
             'password_memory = "1MiB", password_passes = 1 }\n' % (lua_str(cert), lua_str(key)))
    try:
        approved_then_notify(cert, extra)
    finally:
        import shutil
        shutil.rmtree(certdir, ignore_errors=True)


def approved_then_notify(cert, extra):
    from peopleapi import Api, add_user, api_port
    from mockctl import ALICE
    with ConnEnv("notify-approved", {"appr": APPROVED_THEN_NOTIFY}, extra_config=extra,
                 tenant_extra=lambda m: notify_block(m)) as env:
        env.m.hook_config("ticketing", HOOK_SECRET)
        u = add_user(env.d, "ana", "t1:analyst")
        api = Api(api_port(env.d), cafile=cert)
        check(api.login(u).status == 200, "login")
        aid = env.post("appr", {"upn": ALICE[1]})
        appr = wait_for(lambda: api.get("/api/v1/approvals").json["approvals"] or None, 20,
                        "a pending approval")[0]
        r = api.request("POST", "/api/v1/tenants/t1/approvals/%d/decision" % appr["id"],
                        {"decision": "approve"})
        check(r.status == 200, "approved: %r" % r)
        out, run, _ = env.result(aid)
        check(expect_ok(out, "decision")["approved"], "approved")
        expect_ok(out, "disable")
        expect_ok(out, "mail")
        expect_ok(out, "hook")
        expect_fail(out, "other", "not among the effects approved")
        check(len(env.m.smtp_messages()) == 1 and len(env.m.hook_received("ticketing")) == 1,
              "the notifications went out")
