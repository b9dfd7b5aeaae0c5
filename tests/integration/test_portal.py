"""The portal on the people's API listener: the page and its files over HTTPS with the
security headers on every answer (HSTS, a CSP without inline script, no-sniff, no
framing, a referrer policy), the files byte for byte as in portal/web, revalidation by
ETag, hostile paths (traversal, encodings, other methods) answered 404/405 without
touching the file system, and the API routes the portal reads: alert filters and the
runs an alert started."""

import hashlib
import html.parser
import json
import os
import time

from harness import check, expect_accepted, playbook
from peopleapi import Api, add_user, api_daemon, api_port, audit_rows, next_code

WEB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "portal", "web")


def security_headers(r, what):
    csp = r.header("Content-Security-Policy") or ""
    check("default-src 'self'" in csp and "frame-ancestors 'none'" in csp and
          "script-src 'self'" in csp and "unsafe-inline" not in csp and
          "unsafe-eval" not in csp, "%s: CSP %r" % (what, csp))
    check((r.header("Strict-Transport-Security") or "").startswith("max-age="),
          "%s: no HSTS" % what)
    check(r.header("X-Content-Type-Options") == "nosniff", "%s: no nosniff" % what)
    check(r.header("Referrer-Policy") == "no-referrer", "%s: referrer policy" % what)
    check(r.header("X-Frame-Options") == "DENY", "%s: framing" % what)


class ScriptScan(html.parser.HTMLParser):
    """Every <script> must load a file and hold no code; no on* handler attributes, no
    style attributes, no javascript: URLs."""

    def __init__(self):
        super().__init__()
        self.problems = []
        self.in_script = False
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k, v in attrs:
            if k.startswith("on") or k == "style":
                self.problems.append("%s has %s" % (tag, k))
            if v and v.strip().lower().startswith("javascript:"):
                self.problems.append("%s %s=javascript:" % (tag, k))
        if tag == "script":
            self.scripts += 1
            self.in_script = True
            if not a.get("src"):
                self.problems.append("a script without src")
        if tag == "style":
            self.problems.append("an inline <style>")

    def handle_endtag(self, tag):
        if tag == "script":
            self.in_script = False

    def handle_data(self, data):
        if self.in_script and data.strip():
            self.problems.append("inline script code: %r" % data[:80])


def test_static_files_and_headers():
    d = api_daemon("portal-static")
    with d:
        d.start()
        api = Api(api_port(d), cafile=d.api_cert)
        r = api.get("/")
        check(r.status == 200 and r.header("Content-Type").startswith("text/html"), "/: %r" % r)
        security_headers(r, "/")
        scan = ScriptScan()
        scan.feed(r.body.decode())
        check(scan.scripts >= 1 and not scan.problems, "index.html: %r" % scan.problems)
        with open(os.path.join(WEB, "index.html"), "rb") as f:
            check(r.body == f.read(), "/ is not portal/web/index.html")
        # Every file, as on disk, with its type and ETag; a revalidation gets 304.
        types = {".js": "text/javascript", ".css": "text/css", ".html": "text/html",
                 ".svg": "image/svg+xml"}
        names = sorted(os.listdir(WEB))
        check("app.js" in names and "style.css" in names, "files: %r" % names)
        for name in names:
            with open(os.path.join(WEB, name), "rb") as f:
                data = f.read()
            r = api.get("/assets/" + name)
            check(r.status == 200 and r.body == data, "%s: %r" % (name, r))
            check(r.header("Content-Type").startswith(types[os.path.splitext(name)[1]]),
                  "%s: type %r" % (name, r.header("Content-Type")))
            security_headers(r, name)
            etag = r.header("ETag")
            check(etag == '"%s"' % hashlib.sha256(data).hexdigest()[:16], "%s etag" % name)
            r = api.request("GET", "/assets/" + name, headers={"If-None-Match": etag})
            check(r.status == 304 and not r.body, "%s revalidation: %r" % (name, r))
            security_headers(r, name + " 304")
            if name.endswith(".html"):
                scan = ScriptScan()
                scan.feed(data.decode())
                check(not scan.problems, "%s: %r" % (name, scan.problems))
            if name.endswith(".js"):
                check(b"innerHTML" not in data and b"outerHTML" not in data and
                      b"insertAdjacentHTML" not in data and
                      b"eval(" not in data and b"document.write" not in data,
                      "%s: uses innerHTML, eval or document.write" % name)
        r = api.request("HEAD", "/")
        check(r.status == 200 and not r.body, "HEAD /: %r" % r)
        # The API keeps its own JSON answers and headers.
        r = api.get("/api/v1/me")
        check(r.status == 401 and r.json["error"] == "unauthorized", "me: %r" % r)
        check("default-src 'none'" in r.header("Content-Security-Policy"), "API CSP")
        r = api.get("/api/v1/nothing-here")
        check(r.status == 404 and r.json["error"] == "not_found", "API 404: %r" % r)


def test_hostile_paths():
    d = api_daemon("portal-paths")
    with d:
        d.start()
        api = Api(api_port(d), cafile=d.api_cert)
        for path in ("/assets/../kagari.conf.lua", "/assets/%2e%2e/%2e%2e/etc/passwd",
                     "/assets/..%2fkagari.conf.lua", "/assets/", "/assets", "/assets/app.js/",
                     "/assets//app.js", "/assets/app.js%00.css", "/assets/APP.JS",
                     "/index.html/..", "/etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                     "/assets/%c0%ae%c0%ae/x", "/<script>alert(1)</script>",
                     "/assets/" + "a" * 4000):
            r = api.get(path)
            check(r.status in (400, 404), "%s: %r" % (path, r))
            check(b"kagari" in r.body or r.status == 400, "%s: body %r" % (path, r.body[:100]))
            check(b"<script>alert" not in r.body, "%s is echoed" % path)
            if r.status == 404:
                security_headers(r, path)
        for method in ("POST", "PUT", "DELETE", "OPTIONS"):
            r = api.request(method, "/", body="{}")
            check(r.status == 405 and "GET" in (r.header("Allow") or ""), "%s /: %r" % (method, r))
            security_headers(r, method)
        # The daemon is still well.
        check(api.get("/").status == 200, "the portal after hostile paths")


FILTER_PB = """
    log.info("seen " .. alert.title)
"""


def test_alert_filters_and_runs_of_an_alert():
    d = api_daemon("portal-filters")
    with d:
        d.write_playbook("seen.lua", playbook("seen", "it.portal.run", FILTER_PB))
        d.start()
        u = add_user(d, "ana", "t1:analyst")
        api = Api(api_port(d), cafile=d.api_cert)
        check(api.login(u).status == 200, "login")
        base = int(time.time()) - 3600
        alerts = [
            {"source": "it.portal.a", "source_id": "1", "severity": "high", "outcome": "succeeded",
             "time": base, "title": "one"},
            {"source": "it.portal.a", "source_id": "2", "severity": "low", "outcome": "blocked",
             "time": base + 600, "title": "two"},
            {"source": "it.portal.b", "source_id": "3", "severity": "high", "outcome": "blocked",
             "time": base + 1200, "title": "three"},
            {"source": "it.portal.run", "source_id": "4", "severity": "critical",
             "time": base + 1800, "title": "four"},
        ]
        ids = expect_accepted(d.post(alerts), 4)

        def titles(q):
            r = api.get("/api/v1/tenants/t1/alerts" + q)
            check(r.status == 200, "%s: %r" % (q, r))
            return [a["title"] for a in r.json["alerts"]]

        def iso(t):
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

        check(titles("?source=it.portal.a") == ["two", "one"], "by source")
        check(titles("?severity=high") == ["three", "one"], "by level")
        check(titles("?severity=high&outcome=blocked") == ["three"], "by level and outcome")
        check(titles("?since=%s&until=%s" % (iso(base + 300), iso(base + 1200))) == ["two"],
              "by time")
        check(titles("?since=%s" % iso(base + 300).replace("Z", "%2B09:00")) ==
              ["four", "three", "two", "one"], "a +09:00 offset is nine hours earlier")
        check(titles("?source=it.portal.a&limit=1") == ["two"], "limit with a filter")
        for q in ("?severity=urgent", "?outcome=maybe", "?source=A%20B", "?since=yesterday",
                  "?until=2026-13-01T00:00:00Z", "?source=" + "a" * 65, "?source=x%00y"):
            r = api.get("/api/v1/tenants/t1/alerts" + q)
            check(r.status == 400 and r.json["error"] == "bad_request", "%s: %r" % (q, r))
        # The alert with a playbook shows its run; the others none.
        d.wait_run_final(ids[3])
        r = api.get("/api/v1/tenants/t1/alerts/%d" % ids[3])
        check(r.status == 200 and len(r.json["runs"]) == 1 and
              r.json["runs"][0]["playbook"] == "seen" and r.json["runs"][0]["state"] == "done" and
              r.json["raw"]["title"] == "four", "alert with its run: %r" % r)
        r = api.get("/api/v1/tenants/t1/alerts/%d" % ids[0])
        check(r.status == 200 and r.json["runs"] == [], "no runs: %r" % r)


def test_dashboard_summary():
    d = api_daemon("portal-summary")
    with d:
        d.add_tenant("t2")
        d.start()
        u = add_user(d, "ana", "t1:analyst")
        api = Api(api_port(d), cafile=d.api_cert)
        check(api.login(u).status == 200, "login")
        now = int(time.time())
        hour = now - now % 3600
        alerts = [{"source": "it.sum.a", "source_id": str(i), "severity": sev, "time": t}
                  for i, (sev, t) in enumerate([
                      ("high", hour + 1), ("high", hour + 2), ("low", hour - 3600 + 5),
                      ("critical", hour - 5 * 3600), ("low", hour - 30 * 3600)])]
        alerts.append({"source": "it.sum.b", "source_id": "b", "severity": "medium",
                       "time": hour + 3})
        expect_accepted(d.post(alerts), len(alerts))
        expect_accepted(d.post({"source": "it.sum.other", "source_id": "o"}, tenant="t2"), 1)
        r = api.get("/api/v1/tenants/t1/summary")
        check(r.status == 200, "summary: %r" % r)
        s = r.json
        check(s["hours"] == 24 and s["bucket_seconds"] == 3600 and s["total"] == 5,
              "24 h (the 30 h old alert left out): %r" % s)
        by = {b["start"]: b for b in s["levels"]}

        def at(t):
            return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))

        check(by[at(hour)]["high"] == 2 and by[at(hour)]["medium"] == 1 and
              by[at(hour - 3600)]["low"] == 1 and by[at(hour - 5 * 3600)]["critical"] == 1 and
              len(by) == 3, "buckets: %r" % s["levels"])
        check(s["sources"] == [{"source": "it.sum.a", "count": 4},
                               {"source": "it.sum.b", "count": 1}], "sources: %r" % s["sources"])
        check(set(s["runs"]) == {"queued", "running", "waiting", "done", "failed", "cancelled"},
              "runs: %r" % s["runs"])
        r = api.get("/api/v1/tenants/t1/summary?hours=48")
        check(r.json["total"] == 6, "48 h: %r" % r)
        r = api.get("/api/v1/tenants/t1/summary?hours=168")
        check(r.json["bucket_seconds"] == 21600 and r.json["total"] == 6, "a week: %r" % r)
        for q in ("0", "169", "-1", "x", "1e3", "%00"):
            r = api.get("/api/v1/tenants/t1/summary?hours=" + q)
            check(r.status == 400, "hours=%s: %r" % (q, r))
        # Another tenant's counts: the same 404 as an unknown tenant.
        for t in ("t2", "nope"):
            r = api.get("/api/v1/tenants/%s/summary" % t)
            check(r.status == 404 and r.json["error"] == "not_found", "%s: %r" % (t, r))


def test_new_recovery_codes():
    d = api_daemon("portal-recovery")
    with d:
        d.start()
        u = add_user(d, "ana", "t1:analyst")
        api = Api(api_port(d), cafile=d.api_cert)
        check(api.login(u).status == 200, "login")
        path = "/api/v1/me/recovery-codes"
        r = api.request("POST", path, {"totp": "000000"})
        check(r.status == 403 and r.json["error"] == "invalid_code", "wrong code: %r" % r)
        r = api.request("POST", path, {"totp": "000000"}, csrf=False)
        check(r.status == 403 and r.json["error"] == "csrf_failed", "no CSRF: %r" % r)
        for body in ({}, {"totp": 123456}, "[]", "{", {"totp": "1" * 40}):
            r = api.request("POST", path, body)
            check(r.status == 400, "%r: %r" % (body, r))
        code = next_code(u)
        r = api.request("POST", path, {"totp": code})
        check(r.status == 201 and len(r.json["recovery_codes"]) == 10, "new codes: %r" % r)
        new = r.json["recovery_codes"]
        r = api.request("POST", path, {"totp": code})
        check(r.status == 403 and r.json["error"] == "totp_replayed", "replayed: %r" % r)
        # A personal token cannot do it: a session with a fresh code only.
        tok = api.request("POST", "/api/v1/tokens", {"name": "ci"}).json["token"]
        t = Api(api_port(d), cafile=d.api_cert)
        t.token = tok
        r = t.request("POST", path, {"totp": "000000"})
        check(r.status == 401 and r.json["error"] == "session_required", "token: %r" % r)
        # The old codes are gone, the new ones work once.
        check(Api(api_port(d), cafile=d.api_cert).login(u, recovery=u.codes[0]).status == 401,
              "an old code still works")
        check(Api(api_port(d), cafile=d.api_cert).login(u, recovery=new[0]).status == 200,
              "a new code does not work")
        check(Api(api_port(d), cafile=d.api_cert).login(u, recovery=new[0]).status == 401,
              "a new code works twice")
        rows = [x for x in audit_rows(d, "recovery_codes.new")]
        check([x[4] for x in rows] == ["refused", "ok", "refused"] and
              all(x[1] == "ana" and x[3] == "ana" for x in rows), "audit: %r" % rows)


def test_preferences_per_person():
    d = api_daemon("portal-prefs")
    with d:
        d.start()
        ana = add_user(d, "ana", "t1:analyst")
        bob = add_user(d, "bob", "t1:auditor")
        a = Api(api_port(d), cafile=d.api_cert)
        b = Api(api_port(d), cafile=d.api_cert)
        check(a.login(ana).status == 200 and b.login(bob).status == 200, "logins")
        path = "/api/v1/me/preferences"
        r = a.get(path)
        check(r.status == 200 and r.json == {"language": "ja", "time_zone": "Asia/Tokyo"},
              "default: %r" % r)
        r = a.request("POST", path, {"language": "en", "time_zone": "America/Argentina/Buenos_Aires"})
        check(r.status == 200 and r.json["language"] == "en", "set: %r" % r)
        check(a.get(path).json == {"language": "en",
                                   "time_zone": "America/Argentina/Buenos_Aires"}, "kept")
        check(b.get(path).json["language"] == "ja", "another person's are their own")
        r = a.request("POST", path, {"language": "ja", "time_zone": "UTC"}, csrf=False)
        check(r.status == 403 and r.json["error"] == "csrf_failed", "no CSRF: %r" % r)
        for body in ({"language": "fr", "time_zone": "UTC"}, {"language": "ja"},
                     {"language": "ja", "time_zone": "../../etc/passwd"},
                     {"language": "ja", "time_zone": "Asia/Tokyo\"><script>"},
                     {"language": "ja", "time_zone": "/Asia"}, {"language": "ja", "time_zone": ""},
                     {"language": "ja", "time_zone": "A/B/C/D"},
                     {"language": "ja", "time_zone": "x" * 64}, {"language": 1, "time_zone": "UTC"},
                     "[]", "{"):
            r = a.request("POST", path, body)
            check(r.status == 400, "%r: %r" % (body, r))
        check(a.get(path).json["language"] == "en", "a refused change changed nothing")
        rows = audit_rows(d, "preferences")
        check(len(rows) == 1 and rows[0][1] == "ana", "audit: %r" % rows)


def test_filtered_search_reads_a_bounded_window():
    d = api_daemon("portal-window")
    with d:
        with open(d.config, "a") as f:
            f.write('\nintake = { listen = "127.0.0.1:0", tenant_rate = 0 }\n')
        d.start()
        u = add_user(d, "ana", "t1:analyst")
        api = Api(api_port(d), cafile=d.api_cert)
        check(api.login(u).status == 200, "login")
        # The one match is the oldest of 25,000: past the 20,000 ids one request reads.
        expect_accepted(d.post({"source": "it.win.rare", "source_id": "rare", "title": "rare"}), 1)
        for start in range(0, 25000, 5000):
            expect_accepted(d.post([{"source": "it.win.common", "source_id": str(i)}
                                    for i in range(start, start + 5000)]), 5000)
        r = api.get("/api/v1/tenants/t1/alerts?source=it.win.rare")
        check(r.status == 200 and r.json["alerts"] == [] and r.json["next_before"] == 25002 - 20000,
              "the first window: %r" % r)
        r = api.get("/api/v1/tenants/t1/alerts?source=it.win.rare&before=%d" % r.json["next_before"])
        check(r.status == 200 and [a["title"] for a in r.json["alerts"]] == ["rare"] and
              "next_before" not in r.json, "the second window: %r" % r)
        # Without a filter, pages as before; a full filtered page goes on from its last id.
        r = api.get("/api/v1/tenants/t1/alerts?source=it.win.common&limit=3")
        check([a["id"] for a in r.json["alerts"]] == [25001, 25000, 24999] and
              r.json["next_before"] == 24999, "a full page: %r" % r)
