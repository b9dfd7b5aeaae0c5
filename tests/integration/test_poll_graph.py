"""Graph polling (connectors/poll_graph.c) against kagari-mock: security alerts_v2 and
incidents, Identity Protection risk detections, sign-ins; paging, updates of stored
alerts, throttling, token expiry, kill -9 in the middle of a pass, a failing tenant beside
a healthy one, a bad item in a page."""

import json
import os
import time

from harness import Daemon, check, playbook, wait_for
import mockctl
from mockctl import MockServer

SEEDED_ALERTS = 5
SEEDED_INCIDENTS = 3
SEEDED_DETECTIONS = 4


def lua_str(s):
    return json.dumps(s)


def ms_block(m, poll):
    return ("microsoft = { authority = %s, graph = %s, defender = %s, tenant_id = %s, "
            "client_id = %s, client_secret = %s, poll = { backfill = \"3d\", %s } }"
            % (lua_str(m.base_url), lua_str(m.base_url), lua_str(m.base_url),
               lua_str(mockctl.TENANT), lua_str(mockctl.CLIENT_ID),
               lua_str(mockctl.CLIENT_SECRET), poll))


class PollEnv:
    """Mocks (one per tenant) and a daemon whose tenants t1 (and t2...) poll them."""

    def __init__(self, name, poll, tenants=("t1",), playbooks=None, max_attempts=3,
                 before_start=None):
        self.name = name
        self.poll = poll
        self.tenants = tenants
        self.playbooks = playbooks or {}
        self.max_attempts = max_attempts
        self.mocks = {}
        self.d = None
        self.before_start = before_start  # called with the mocks before the daemon starts

    def __enter__(self):
        try:
            for t in self.tenants:
                m = MockServer(tls=True)
                m.__enter__()
                self.mocks[t] = m
            self.m = self.mocks[self.tenants[0]]
            ca = os.path.join(os.path.dirname(self.m.ca_file), "poll-ca-%d.pem" % os.getpid())
            with open(ca, "w") as out:
                for m in self.mocks.values():
                    with open(m.ca_file) as f:
                        out.write(f.read())
            self.ca = ca
            blocks = ", ".join("%s = { %s }" % (t, ms_block(self.mocks[t], self.poll))
                               for t in self.tenants)
            cfg = ("connectors = { ca_file = %s, max_attempts = %d, timeout = \"10s\", "
                   "breaker_threshold = 5, breaker_cooldown = \"2s\" }\n"
                   "tenants = { %s }\n" % (lua_str(ca), self.max_attempts, blocks))
            self.d = Daemon("poll-%s" % self.name, config_extra=cfg)
            for t in self.tenants[1:]:
                self.d.add_tenant(t)
            for name, text in self.playbooks.items():
                self.d.write_playbook("%s.lua" % name, text)
            if self.before_start is not None:
                self.before_start(self.mocks)
            self.d.start()
        except BaseException:
            self._close(None)
            raise
        return self

    def _close(self, etype):
        try:
            if self.d is not None:
                self.d.__exit__(etype, None, None)
        finally:
            for m in self.mocks.values():
                m.__exit__(etype, None, None)

    def __exit__(self, etype, exc, tb):
        try:
            if etype is None and self.d is not None and self.d.proc is not None:
                self.d.stop()
        finally:
            self._close(etype)
        return False

    def count(self, source_like, tenant=None):
        return self.d.query("SELECT count(*) FROM alerts WHERE source LIKE ?", (source_like,),
                            tenant=tenant)[0][0]

    def cursor(self, stream, tenant=None):
        rows = self.d.query("SELECT cursor FROM poll_cursors WHERE stream = ?", (stream,),
                            tenant=tenant)
        return json.loads(rows[0][0]) if rows else None

    def wait_pass(self, stream, n_passes, timeout=60):
        """Wait until the poller has finished n_passes complete passes of stream (summed
        over tenants)."""
        key = 'kagari_poll_passes_total{stream="%s"}' % stream
        wait_for(lambda: self.d.metrics().get(key, 0) >= n_passes, timeout,
                 "%d passes of %s" % (n_passes, stream))

    def passes(self, stream):
        return self.d.metrics().get('kagari_poll_passes_total{stream="%s"}' % stream, 0)


def graph_alerts(d, tenant=None):
    rows = d.query("SELECT source_id, raw, severity FROM alerts WHERE source IN "
                   "('defender.alert', 'mdo.alert') ORDER BY id", tenant=tenant)
    return {r[0]: (json.loads(r[1]), r[2]) for r in rows}


def list_requests(m, path):
    return [e for e in m.log_entries(2000, path) if e["route"] and e["route"].endswith(".list")]


POLL_ALL = 'alerts = "5s", incidents = "5s", risk_detections = "5s", page_size = 2'


def test_first_poll_pages():
    """The first pass of each stream reads everything since the backfill, page by page
    (page_size 2: three pages of alerts, two of incidents, two of risk detections), and
    the cursor ends at the greatest last-update time seen, with no page pending."""
    with PollEnv("first", POLL_ALL) as env:
        wait_for(lambda: env.count("defender.incident") == SEEDED_INCIDENTS and
                 env.count("entra.risk") == SEEDED_DETECTIONS and
                 env.count("%.alert") == SEEDED_ALERTS, 60, "every seeded item")
        env.wait_pass("alerts", 1)
        env.wait_pass("incidents", 1)
        env.wait_pass("risk_detections", 1)
        reqs = list_requests(env.m, "/v1.0/security/alerts_v2")
        first = reqs[:3]
        check(len(reqs) >= 3, "alerts requests: %r" % reqs)
        check("$filter=lastUpdateDateTime" in first[0]["query"] or
              "%24filter=lastUpdateDateTime" in first[0]["query"] or
              "lastUpdateDateTime" in first[0]["query"], "first request: %r" % first[0])
        check(all("skiptoken" in r["query"] for r in first[1:]),
              "the pass follows the next links: %r" % first)
        det = list_requests(env.m, "/v1.0/identityProtection/riskDetections")
        check(len(det) >= 2 and "skiptoken" in det[1]["query"], "risk detections: %r" % det)
        cur = env.cursor("graph.alerts")
        check(cur is not None and "watermark" in cur and "next" not in cur, "cursor: %r" % cur)
        stored = graph_alerts(env.d)
        check(mockctl.ALERT_LSASS in stored, "the seeded alert is stored: %r" % list(stored))
        # The greatest lastUpdateDateTime of the seed is the watermark.
        latest = max(a["lastUpdateDateTime"] for a, _ in stored.values())
        check(abs(to_ms(cur["watermark"]) - to_ms(latest)) < 1000,
              "watermark %s, latest %s" % (cur["watermark"], latest))
        m = env.d.metrics()
        check(m.get('kagari_poll_items_total{stream="alerts",result="new"}') == SEEDED_ALERTS,
              "items metric: %r" % {k: v for k, v in m.items() if "poll" in k})
        check('kagari_poll_lag_seconds{stream="alerts"}' in m, "no lag metric")
        # The operator's view of the cursors.
        out = env.d.cli("poll", "status").stdout
        check("graph.alerts" in out and "graph.risk_detections" in out, "status: %r" % out)


test_first_poll_pages.TIMEOUT = 120


def to_ms(s):
    import harness
    return harness.to_ms(s)


TRIGGER = playbook("on-defender", "defender.alert",
                   '    log.info("seen " .. alert.source_id)')


def test_update_and_new():
    """After the first pass: a new alert is stored once; an alert whose status changed
    (a PATCH at the service) is updated in place, its history keeps the change, and it
    does not start the playbooks again; an update that raises its level does. A token
    that expired between polls is renewed."""
    with PollEnv("update", 'alerts = "5s", page_size = 2', playbooks={"pb": TRIGGER}) as env:
        wait_for(lambda: env.count("%.alert") == SEEDED_ALERTS, 60, "the seeded alerts")
        env.wait_pass("alerts", 1)
        base_runs = len(env.d.db_runs())
        lsass = graph_alerts(env.d)[mockctl.ALERT_LSASS][0]
        check(lsass["status"] != "resolved", "seed: %r" % lsass["status"])
        r = env.m.graph("PATCH", "/v1.0/security/alerts_v2/" + mockctl.ALERT_LSASS,
                        {"status": "resolved", "classification": "truePositive"})
        check(r.status == 200, "PATCH: %r" % r)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        new = dict(lsass, id="da0001112223334460_-9999", title="New poll alert",
                   status="new", severity="low", evidence=[], createdDateTime=now,
                   lastUpdateDateTime=now)
        env.m.control("POST", "/state/alerts", new)
        env.m.expire_tokens()
        passes = env.passes("alerts")
        env.wait_pass("alerts", passes + 1)
        wait_for(lambda: "da0001112223334460_-9999" in graph_alerts(env.d), 30, "the new alert")
        stored = graph_alerts(env.d)
        check(len(stored) == SEEDED_ALERTS + 1, "alerts: %r" % list(stored))
        check(stored[mockctl.ALERT_LSASS][0]["status"] == "resolved",
              "the stored alert was not updated: %r" % stored[mockctl.ALERT_LSASS][0]["status"])
        aid = env.d.query("SELECT id FROM alerts WHERE source_id = ?",
                          (mockctl.ALERT_LSASS,))[0][0]
        ups = env.d.query("SELECT significant, changes, previous FROM alert_updates "
                          "WHERE alert_id = ?", (aid,))
        check(len(ups) == 1, "history: %r" % ups)
        ch = json.loads(ups[0][1])
        check(ch["raw"]["status"] == [lsass["status"], "resolved"], "changes: %r" % ch)
        check(ups[0][0] == 0 and json.loads(ups[0][2])["status"] == lsass["status"],
              "the record before is kept, not significant: %r" % (ups[0],))
        # A reviewer sees the history with the alert.
        shown = json.loads(env.d.cli("alert", "show", str(aid), "--json").stdout)
        check(len(shown["updates"]) == 1 and
              shown["updates"][0]["changes"]["raw"]["status"][1] == "resolved" and
              shown["updates"][0]["significant"] is False, "alert show: %r" % shown["updates"])
        text = env.d.cli("alert", "show", str(aid)).stdout
        check("updates   1" in text and "recorded" in text, "alert show text: %r" % text)
        # One run for the new alert, none for the update.
        wait_for(lambda: len(env.d.db_runs()) == base_runs + 1, 20, "the new alert's run")
        time.sleep(1)
        check(len(env.d.db_runs()) == base_runs + 1, "an update re-ran the playbooks")
        # The token expired: the poll got a 401, renewed the token and went on.
        log = env.m.log_entries(500, "/v1.0/security/alerts_v2")
        check(any(e["status"] == 401 for e in log), "no 401 after the tokens expired")
        # A significant update: its level rises.
        check(stored["da0001112223334460_-9999"][1] == 1, "the new alert is not low")
        env.m.control("POST", "/state/alerts",
                      {"id": "da0001112223334460_-9999", "severity": "high"})
        passes = env.passes("alerts")
        env.wait_pass("alerts", passes + 1)
        nid = env.d.query("SELECT id FROM alerts WHERE source_id = ?",
                          ("da0001112223334460_-9999",))[0][0]
        ups = env.d.query("SELECT significant, changes FROM alert_updates WHERE alert_id = ?",
                          (nid,))
        check(len(ups) == 1, "history of the new alert: %r" % ups)
        check(ups[0][0] == 1 and json.loads(ups[0][1])["severity"] == ["low", "high"],
              "a higher level is significant: %r" % (ups[0],))
        check(env.d.query("SELECT severity FROM alerts WHERE id = ?", (nid,))[0][0] == 3,
              "the stored level did not follow")
        wait_for(lambda: len(env.d.runs_of_alert(nid)) == 2, 20, "the second run")
        m = env.d.metrics()
        check(m.get("kagari_alerts_updated_total", 0) >= 2, "updated metric")
        check(len(graph_alerts(env.d)) == SEEDED_ALERTS + 1, "a duplicate was stored")


test_update_and_new.TIMEOUT = 150


def test_throttled_then_success():
    """429 with Retry-After on the first two pages: the poll waits as asked and then
    stores everything; nothing is lost and nothing is stored twice."""
    m = MockServer(tls=True)
    with m:
        m.fault("/v1.0/security/alerts_v2", status=429, retry_after=1, count=2)
        cfg = ("connectors = { ca_file = %s, max_attempts = 4, timeout = \"10s\" }\n"
               "tenants = { t1 = { %s } }\n"
               % (lua_str(m.ca_file), ms_block(m, 'alerts = "5s", page_size = 2')))
        with Daemon("poll-429", config_extra=cfg) as d:
            d.start()
            t0 = time.time()
            wait_for(lambda: d.query("SELECT count(*) FROM alerts")[0][0] == SEEDED_ALERTS,
                     60, "the alerts after the 429s")
            log = m.log_entries(200, "/v1.0/security/alerts_v2")
            statuses = [e["status"] for e in log]
            check(statuses[:2] == [429, 429] and 200 in statuses, "statuses: %r" % statuses)
            at = [to_ms(e["at"]) for e in log]
            check(at[1] - at[0] >= 900 and at[2] - at[1] >= 900,
                  "Retry-After not honoured: %r" % at[:3])
            check(time.time() - t0 < 30, "too slow")
            d.stop()


test_throttled_then_success.TIMEOUT = 120


def test_junk_pages_and_lost_answers():
    """Graph answers that lie (a 200 with truncated JSON, an HTML page, JSON nested too
    deep) and a connection dropped before the answer each fail their pass, are counted and
    move no cursor; later passes store every alert exactly once. With max_attempts = 1 the
    dropped request is sent once: the transport does not resend it by itself on a fresh
    connection (it used to, so the loss went uncounted); the poller retries the pass at its
    interval."""
    m = MockServer(tls=True)
    with m:
        # The first page request reuses the connection of the token request: the drop
        # is the case libcurl would have resent on its own.
        m.fault("/v1.0/security/alerts_v2", drop=True, count=1)
        cfg = ("connectors = { ca_file = %s, max_attempts = 1, timeout = \"5s\" }\n"
               "tenants = { t1 = { %s } }\n"
               % (lua_str(m.ca_file), ms_block(m, 'alerts = "5s", page_size = 2')))
        with Daemon("poll-junk", config_extra=cfg) as d:
            d.start()
            key = 'kagari_poll_errors_total{stream="alerts"}'
            wait_for(lambda: d.metrics().get(key, 0) >= 1, 30, "the dropped answer counted")
            for junk in ("truncated", "html", "deep"):
                m.fault("/v1.0/security/alerts_v2", malformed=junk, count=1)
            log = m.log_entries(50, "/v1.0/security/alerts_v2")
            check(log and log[0]["status"] == 0, "the first request was not dropped: %r" % log)
            check(len(log) == 1 or to_ms(log[1]["at"]) - to_ms(log[0]["at"]) >= 3000,
                  "the dropped request was resent at once, behind the poller: %r" % log[:2])
            check(d.query("SELECT count(*) FROM poll_cursors")[0][0] == 0,
                  "a cursor moved after the lost answer")
            check(d.query("SELECT count(*) FROM alerts")[0][0] == 0, "alerts stored from nothing")
            check("poll.failed" in d.log() and "closed before any answer" in d.log(),
                  "the lost answer is not logged with its reason")
            wait_for(lambda: d.query("SELECT count(*) FROM alerts")[0][0] == SEEDED_ALERTS,
                     150, "every alert after the junk answers")
            rows = d.query("SELECT source_id, count(*) FROM alerts GROUP BY source_id"
                           " HAVING count(*) > 1")
            check(rows == [], "an alert stored twice: %r" % rows)
            errors = d.metrics().get(key, 0)
            check(errors >= 4, "the drop and the junk answers are counted as errors: %r" % errors)
            log = m.log_entries(200, "/v1.0/security/alerts_v2")
            check([e["status"] for e in log].count(0) == 1, "statuses: %r" % log)
            check(d.get("/healthz").status == 200, "the daemon still serves")
            d.stop()


test_junk_pages_and_lost_answers.TIMEOUT = 200


def test_kill9_mid_pass():
    """kill -9 while a pass is between pages (one alert a page, each page slowed down):
    after the restart the poller resumes from the stored next link, every alert is
    stored exactly once, none is updated or routed twice."""
    def slow(mocks):  # slowed before the first poll, so the kill finds the pass half done
        mocks["t1"].delay("/v1.0/security/alerts_v2", 600)

    with PollEnv("kill", 'alerts = "30s", page_size = 1', playbooks={"pb": TRIGGER},
                 before_start=slow) as env:
        wait_for(lambda: (env.cursor("graph.alerts") or {}).get("next") and
                 env.count("%.alert") >= 2, 60, "a pass half done")
        env.d.kill9()
        stored_before = env.count("%.alert")
        check(stored_before < SEEDED_ALERTS, "the pass ended before the kill")
        cur = env.cursor("graph.alerts")
        n_log = len(env.m.log_entries(2000, "/v1.0/security/alerts_v2"))
        env.m.delay("/v1.0/security/alerts_v2", 0)
        env.d.restart()
        wait_for(lambda: env.count("%.alert") == SEEDED_ALERTS, 60, "every alert after restart")
        env.wait_pass("alerts", 1)
        after = env.m.log_entries(2000, "/v1.0/security/alerts_v2")[n_log:]
        check(after and "skiptoken" in after[0]["query"],
              "the restart did not resume from the next link (%r): %r" % (cur, after[:1]))
        check(env.d.query("SELECT count(*) FROM alert_updates")[0][0] == 0,
              "an item read again was recorded as an update")
        wait_for(lambda: len(env.d.db_runs()) == SEEDED_ALERTS -
                 env.count("mdo.alert"), 30, "one run per alert")
        rows = env.d.query("SELECT alert_id, count(*) FROM runs GROUP BY alert_id "
                           "HAVING count(*) > 1")
        check(rows == [], "an alert was routed twice: %r" % rows)


test_kill9_mid_pass.TIMEOUT = 180


def test_failing_tenant_does_not_hold_back():
    """Two tenants, each with its own Graph: t2's answers 503 to everything, slowly; t1
    keeps polling at its pace and stores what appears; t2's errors are counted."""
    def failing(mocks):
        mocks["t2"].fault("/v1.0/", status=503, count=100000, delay_ms=1500)

    with PollEnv("two", 'alerts = "5s", page_size = 2', tenants=("t1", "t2"),
                 before_start=failing) as env:
        bad = env.mocks["t2"]
        wait_for(lambda: env.count("%.alert", tenant="t1") == SEEDED_ALERTS, 60, "t1's alerts")
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        lsass = graph_alerts(env.d, "t1")[mockctl.ALERT_LSASS][0]
        for i in range(2):
            env.m.control("POST", "/state/alerts",
                          dict(lsass, id="da00011122233344%02d_-1" % (70 + i),
                               createdDateTime=now, lastUpdateDateTime=now))
            wait_for(lambda: env.count("%.alert", tenant="t1") == SEEDED_ALERTS + i + 1, 30,
                     "t1's new alert %d while t2 fails" % i)
        check(env.count("%.alert", tenant="t2") == 0, "t2 stored alerts from a failing API")
        m = env.d.metrics()
        check(m.get('kagari_poll_errors_total{stream="alerts"}', 0) >= 1, "t2's errors")
        check(env.cursor("graph.alerts", tenant="t2") is None, "t2 moved its cursor")
        # t2 recovers: its alerts arrive.
        bad.clear_faults()
        wait_for(lambda: env.count("%.alert", tenant="t2") == SEEDED_ALERTS, 90,
                 "t2's alerts after recovery")


test_failing_tenant_does_not_hold_back.TIMEOUT = 180


def test_bad_item_rejected_alone():
    """A page with an item that cannot be understood (its createdDateTime is no time):
    that item is rejected with its reason (log, metric, the cursor's status), the others
    of the page are stored, and the watermark moves on."""
    with PollEnv("bad", 'alerts = "5s", page_size = 3') as env:
        wait_for(lambda: env.count("%.alert") == SEEDED_ALERTS, 60, "the seeded alerts")
        env.wait_pass("alerts", 1)
        lsass = graph_alerts(env.d)[mockctl.ALERT_LSASS][0]
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        good = dict(lsass, id="da0001112223334480_-1", createdDateTime=now,
                    lastUpdateDateTime=now)
        bad = dict(lsass, id="da0001112223334481_-1", createdDateTime="yesterday at noon",
                   lastUpdateDateTime=now)
        future = dict(lsass, id="da0001112223334482_-1", createdDateTime=now,
                      lastUpdateDateTime="2999-01-01T00:00:00Z")
        env.m.control("POST", "/state/alerts", good)
        env.m.control("POST", "/state/alerts", bad)
        env.m.control("POST", "/state/alerts", future)
        passes = env.passes("alerts")
        env.wait_pass("alerts", passes + 1)
        stored = graph_alerts(env.d)
        check("da0001112223334480_-1" in stored, "the good item of the page is missing")
        check("da0001112223334481_-1" not in stored, "the bad item was stored")
        logs = env.d.log()
        check("poll.rejected" in logs and "da0001112223334481_-1" in logs and
              "createdDateTime" in logs, "no rejection line with the id and the reason")
        cur = env.cursor("graph.alerts")
        check(cur.get("rejected", 0) >= 1 and "createdDateTime" in cur.get("last_reject", ""),
              "cursor: %r" % cur)
        check(to_ms(cur["watermark"]) >= to_ms(now), "the watermark stayed behind: %r" % cur)
        # An item dated far in the future is stored, but does not carry the watermark
        # past our clock (what changes until then would be skipped).
        check("da0001112223334482_-1" in stored, "the future-dated item was not stored")
        check(to_ms(cur["watermark"]) <= time.time() * 1000 + 60000,
              "the watermark jumped ahead: %r" % cur)
        check("poll.future_time" in logs, "no warning about the future time")
        m = env.d.metrics()
        check(m.get('kagari_poll_items_total{stream="alerts",result="rejected"}', 0) >= 1,
              "rejected metric")


test_bad_item_rejected_alone.TIMEOUT = 120


def test_signins_as_events():
    """Sign-in logs, when asked for, are stored as events (searchable), not alerts."""
    with PollEnv("signins", 'signins = "5s", page_size = 3') as env:
        wait_for(lambda: env.d.query("SELECT count(*) FROM events WHERE source = "
                                     "'entra.signin'")[0][0] >= 1, 60, "sign-in events")
        env.wait_pass("signins", 1)
        events = env.d.query("SELECT count(*) FROM events WHERE source = 'entra.signin'")[0][0]
        alerts = env.count("entra.signin")
        check(events + alerts == 8, "sign-ins stored: %d events, %d alerts" % (events, alerts))
        reqs = list_requests(env.m, "/v1.0/auditLogs/signIns")
        check(reqs and "createdDateTime" in reqs[0]["query"], "sign-ins filter: %r" % reqs[:1])


def test_stale_next_link_restarts_pass():
    """A stored next link the service refuses (an expired or altered $skiptoken: 400):
    the pass starts again from the watermark, and the stream goes on."""
    with PollEnv("stale", 'alerts = "5s", page_size = 2') as env:
        wait_for(lambda: env.count("%.alert") == SEEDED_ALERTS, 60, "the seeded alerts")
        env.wait_pass("alerts", 1)
        env.d.stop()
        cur = env.cursor("graph.alerts")
        cur["next"] = "/v1.0/security/alerts_v2?$top=2&$skiptoken=not-a-token"
        import sqlite3
        db = sqlite3.connect(env.d.db_path())
        db.execute("UPDATE poll_cursors SET cursor = ? WHERE stream = 'graph.alerts'",
                   (json.dumps(cur),))
        db.commit()
        db.close()
        env.d.restart()
        wait_for(lambda: "poll.pass_restarted" in env.d.log(), 30, "the pass restarted")
        env.wait_pass("alerts", 1)
        cur2 = env.cursor("graph.alerts")
        check("next" not in cur2 and cur2["watermark"] == cur["watermark"], "cursor: %r" % cur2)
        check(env.count("%.alert") == SEEDED_ALERTS, "alerts changed")


test_stale_next_link_restarts_pass.TIMEOUT = 120


def _cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_backlog_of_many_pages():
    """A backlog of 2,000 alerts (pages of 100): the first pass stores each once, across
    every page, and the daemon's CPU per item is reported."""
    n = 2000

    def seed(mocks):
        m = mocks["t1"]
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
        base = m.state("alerts", mockctl.ALERT_LSASS)
        items = [dict(base, id="bb%016d_-%d" % (i, i), title="Backlog %d" % i,
                      createdDateTime=now, lastUpdateDateTime=now) for i in range(n)]
        for k in range(0, n, 500):
            m.control("POST", "/state/alerts", {"value": items[k:k + 500]})

    with PollEnv("backlog", 'alerts = "60s", page_size = 100', before_start=seed) as env:
        t0 = time.time()
        cpu0 = _cpu_s(env.d.proc.pid)
        env.wait_pass("alerts", 1, timeout=120)
        took = time.time() - t0
        cpu = _cpu_s(env.d.proc.pid) - cpu0
        total = n + SEEDED_ALERTS
        check(env.count("%.alert") == total, "stored %d of %d" % (env.count("%.alert"), total))
        pages = env.d.metrics().get('kagari_poll_pages_total{stream="alerts"}', 0)
        check(pages >= total // 100, "pages: %r" % pages)
        print("# backlog: %d alerts in %d pages in %.2f s (%.0f/s), daemon CPU %.0f us per item"
              % (total, pages, took, total / took, cpu * 1e6 / total))


test_backlog_of_many_pages.TIMEOUT = 240


def test_items_committed_cursor_not():
    """The state a kill -9 leaves between a page's commit and its cursor's: the items are
    stored, the cursor is behind (here: none at all). After the restart the poller reads
    them again: no alert is stored twice, none is recorded as updated, no playbook runs
    again, and the cursor catches up."""
    with PollEnv("behind", 'alerts = "5s", incidents = "5s", page_size = 2',
                 playbooks={"pb": TRIGGER}) as env:
        wait_for(lambda: env.count("%.alert") == SEEDED_ALERTS and
                 env.count("defender.incident") == SEEDED_INCIDENTS, 60, "the seeded items")
        env.wait_pass("alerts", 1)
        env.wait_pass("incidents", 1)
        wait_for(lambda: all(r["state"] in ("done", "failed") for r in env.d.db_runs()), 30,
                 "the runs")
        runs = len(env.d.db_runs())
        cur = env.cursor("graph.alerts")
        env.d.kill9()
        import sqlite3
        db = sqlite3.connect(env.d.db_path())
        db.execute("DELETE FROM poll_cursors")
        db.commit()
        db.close()
        env.d.restart()
        env.wait_pass("alerts", 1)
        env.wait_pass("incidents", 1)
        check(env.count("%.alert") == SEEDED_ALERTS and
              env.count("defender.incident") == SEEDED_INCIDENTS, "an item was stored twice")
        check(env.d.query("SELECT count(*) FROM alert_updates")[0][0] == 0,
              "an item read again was recorded as an update")
        time.sleep(1)
        check(len(env.d.db_runs()) == runs, "a playbook ran again on an item read again")
        check(env.cursor("graph.alerts")["watermark"] == cur["watermark"],
              "the cursor did not catch up: %r" % env.cursor("graph.alerts"))
        m = env.d.metrics()
        check(m.get('kagari_poll_items_total{stream="alerts",result="unchanged"}', 0)
              == SEEDED_ALERTS, "unchanged items: %r" % m)


test_items_committed_cursor_not.TIMEOUT = 150


class Trap:
    """Listeners on origins the poller must never reach (another host of the loopback
    network, another port): each counts every TCP connection and keeps what was sent;
    over TLS (its certificate, for 127.0.0.1 and 127.0.0.2, is one the daemon trusts) it
    completes the handshake, so a request that reached it would show its headers."""

    def __init__(self, folder, addrs):
        import socket
        import ssl
        import subprocess
        import threading
        self.cert = os.path.join(folder, "trap-cert.pem")
        key = os.path.join(folder, "trap-key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out",
                        self.cert, "-days", "2", "-subj", "/CN=trap", "-addext",
                        "subjectAltName=IP:127.0.0.1,IP:127.0.0.2"],
                       check=True, capture_output=True, timeout=60)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(self.cert, key)
        self.socks = []
        for host, port in addrs:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
            s.listen(16)
            s.settimeout(0.2)
            self.socks.append(s)
        self.ports = [s.getsockname()[1] for s in self.socks]
        self.connections = []  # (listener address, bytes received)
        self.stopping = False
        self.threads = [threading.Thread(target=self._serve, args=(s,), daemon=True)
                        for s in self.socks]
        for t in self.threads:
            t.start()

    def _serve(self, sock):
        import socket
        while not self.stopping:
            try:
                conn, _ = sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            data = b""
            try:
                conn.settimeout(2)
                first = conn.recv(1, socket.MSG_PEEK)
                if first == b"\x16":
                    conn = self.ctx.wrap_socket(conn, server_side=True)
                while len(data) < 65536:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                    if b"\r\n\r\n" in data:
                        break
            except Exception:  # a handshake refused by the client, a timeout: recorded
                pass
            finally:
                conn.close()
            self.connections.append((sock.getsockname(), data))

    def close(self):
        self.stopping = True
        for t in self.threads:
            t.join(5)
        for s in self.socks:
            s.close()


def poll_config(m, ca, poll, max_attempts=1):
    return ("connectors = { ca_file = %s, max_attempts = %d, timeout = \"5s\" }\n"
            "tenants = { t1 = { %s } }\n" % (lua_str(ca), max_attempts, ms_block(m, poll)))


# A next link that leaves the tenant's Graph base URL, in each way one may: {M} is the
# mock's port, {T} the trap's; {base}, {path} and {query} are filled by the mock.
HOSTILE_NEXT_LINKS = [
    ("other host", "https://127.0.0.2:{M}{path}?{query}"),
    ("other scheme", "http://127.0.0.1:{M}{path}?{query}"),
    ("other port", "https://127.0.0.1:{T}{path}?{query}"),
    ("userinfo", "{base}@127.0.0.2:{M}{path}?{query}"),
    ("userinfo before the host", "https://kagari:x@127.0.0.1:{M}{path}?{query}"),
    ("percent-encoded host", "https://%31%32%37.0.0.2:{M}{path}?{query}"),
    ("percent-encoded port", "https://127.0.0.1%3A{T}{path}?{query}"),
    ("another list of the API", "{base}/v1.0/users?{query}"),
    ("outside the API prefix", "{base}/_mock/config?{query}"),
    ("dot segments", "{base}{path}/../../../_mock/config?{query}"),
    ("backslash", "{base}\\\\127.0.0.2:{M}{path}?{query}"),
    ("very long", "{base}{path}?{query}&$pad=" + "a" * 20000),
]


def test_next_link_stays_on_graph():
    """A page whose @odata.nextLink leaves the tenant's Graph base URL (another host,
    scheme or port, a userinfo '@' trick, a percent-encoded host, a path outside the
    stream's list, a link of 20 KB...) is refused: the pass fails and is counted
    (kagari_poll_errors_total), its items are not taken, the cursor does not move, and
    nothing reaches the other origin (a listener there sees no connection, so no bearer
    token); once the service links correctly again, the pass completes. A link that only
    writes the scheme in capitals is the same origin, and is followed."""
    m = MockServer(tls=True)
    with m:
        trap = Trap(m.dir, [("127.0.0.1", 0)])
        trap2 = Trap(m.dir, [("127.0.0.2", m.port)])
        ca = os.path.join(m.dir, "next-ca.pem")
        with open(ca, "w") as out, open(m.ca_file) as a, open(trap.cert) as b, \
                open(trap2.cert) as c:
            out.write(a.read() + b.read() + c.read())
        key = 'kagari_poll_errors_total{stream="alerts"}'
        try:
            def hostile(tpl):
                return tpl.replace("{M}", str(m.port)).replace("{T}", str(trap.ports[0]))

            # A daemon that has read a pass: a refused link leaves its cursor as it was.
            with Daemon("poll-next", config_extra=poll_config(
                    m, ca, 'alerts = "5s", page_size = 2')) as d:
                d.start()
                wait_for(lambda: d.metrics().get('kagari_poll_passes_total{stream="alerts"}',
                                                 0) >= 1, 60, "the first pass")
                cur = d.query("SELECT cursor FROM poll_cursors")
                m.config(next_link=hostile(HOSTILE_NEXT_LINKS[2][1]))
                now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                lsass = graph_alerts(d)[mockctl.ALERT_LSASS][0]
                m.control("POST", "/state/alerts", {"value": [
                    dict(lsass, id="da00011122233344%02d_-7" % i, createdDateTime=now,
                         lastUpdateDateTime=now) for i in range(90, 93)]})
                wait_for(lambda: d.metrics().get(key, 0) >= 1, 30, "the refused pass")
                check(d.query("SELECT cursor FROM poll_cursors") == cur,
                      "the cursor moved: %r -> %r" % (cur, d.query("SELECT cursor FROM "
                                                                   "poll_cursors")))
                check(d.query("SELECT count(*) FROM alerts")[0][0] == SEEDED_ALERTS,
                      "items of a refused page were taken")
                check("poll.bad_next_link" in d.log(), "no poll.bad_next_link line")
                m.config(next_link=None)
                wait_for(lambda: d.query("SELECT count(*) FROM alerts")[0][0] ==
                         SEEDED_ALERTS + 3, 60, "the new alerts once links are good again")
                check(d.query("SELECT cursor FROM poll_cursors") != cur, "cursor stuck")
                d.stop()
            # Every way out, each on a fresh daemon: refused at the first page.
            for name, tpl in HOSTILE_NEXT_LINKS:
                m.config(next_link=hostile(tpl))
                n_log = len(m.log_entries(2000, "/"))
                with Daemon("poll-next-%s" % name.replace(" ", "-")[:20],
                            config_extra=poll_config(m, ca, 'alerts = "1h", page_size = 2')) as d:
                    d.start()
                    wait_for(lambda: d.metrics().get(key, 0) >= 1, 30,
                             "the refused pass (%s)" % name)
                    time.sleep(0.3)  # what a follow of the link would have sent
                    check(d.metrics().get('kagari_poll_passes_total{stream="alerts"}', 0) == 0,
                          "%s: a pass completed" % name)
                    check(d.query("SELECT count(*) FROM poll_cursors")[0][0] == 0,
                          "%s: a cursor was written" % name)
                    check(d.query("SELECT count(*) FROM alerts")[0][0] == 0,
                          "%s: items of the refused page were taken" % name)
                    log = d.log()
                    check("poll.bad_next_link" in log and "reason=" in log,
                          "%s: no poll.bad_next_link line with its reason" % name)
                    reqs = [e for e in m.log_entries(2000, "/")[n_log:] if e["route"] != "token"]
                    check(len(reqs) == 1 and reqs[0]["path"] == "/v1.0/security/alerts_v2" and
                          "skiptoken" not in (reqs[0]["query"] or ""),
                          "%s: requests other than the first page: %r" % (name, reqs))
                    check(trap.connections == [] and trap2.connections == [],
                          "%s: the other origin was reached: %r" % (
                              name, trap.connections + trap2.connections))
                    d.stop()
            # The same origin written in capitals is followed: the pass completes.
            m.config(next_link="HTTPS://127.0.0.1:%d{path}?{query}" % m.port)
            with Daemon("poll-next-case", config_extra=poll_config(
                    m, ca, 'alerts = "1h", page_size = 2')) as d:
                d.start()
                wait_for(lambda: d.metrics().get('kagari_poll_passes_total{stream="alerts"}',
                                                 0) >= 1, 60, "the pass over capital links")
                check(d.metrics().get(key, 0) == 0, "a capitalised scheme was refused")
                check(d.query("SELECT count(*) FROM alerts")[0][0] == SEEDED_ALERTS + 3,
                      "not every alert was read")
                d.stop()
            check(trap.connections == [] and trap2.connections == [],
                  "the other origin was reached: %r" % (trap.connections + trap2.connections))
        finally:
            trap.close()
            trap2.close()


test_next_link_stays_on_graph.TIMEOUT = 240


def set_poll(env, poll):
    """Rewrite the poll table of every tenant in the daemon's configuration file."""
    with open(env.d.config) as f:
        text = f.read()
    old = 'poll = { backfill = "3d", %s }' % env.poll
    check(old in text, "the poll table is not in the file")
    with open(env.d.config, "w") as f:
        f.write(text.replace(old, 'poll = { backfill = "3d", %s }' % poll))
    env.poll = poll


def filter_since(entry):
    import re
    import urllib.parse
    q = urllib.parse.unquote(entry["query"] or "")
    mt = re.search(r"(?:lastUpdateDateTime|lastUpdatedDateTime|createdDateTime) ge (\S+Z)", q)
    return to_ms(mt.group(1)) if mt else None


def no_overlapping_requests(m, path):
    """Each request of the stream arrived after the answer to the one before was sent."""
    log = list_requests(m, path)
    for a, b in zip(log, log[1:]):
        check(to_ms(b["at"]) >= to_ms(a["at"]) + a["ms"] - 20,
              "two requests of %s at once: %r, %r" % (path, a, b))
    return len(log)


def test_reload_applies_poll_settings():
    """A reload (`kagari reload`, then SIGHUP) applies changed poll settings to the running
    pollers: a longer interval made shorter takes effect at once, a new page size applies
    from the next pass, a stream added starts, a stream removed in the middle of a pass
    completes that pass and then stops; the cursors are kept (the next pass reads from the
    stored watermark, not the backfill) and no stream ever has two requests in flight. A
    file with an error changes nothing and `kagari reload` says so."""
    import signal as sig

    def slow(mocks):  # a pass of incidents takes seconds: a reload lands in its middle
        m = mocks["t1"]
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        base = m.state("incidents", "4711")
        # Recent incidents: every pass reads them again (the overlap), over several pages.
        m.control("POST", "/state/incidents", {"value": [
            dict(base, id=str(4800 + i), displayName="Reload %d" % i, createdDateTime=now,
                 lastUpdateDateTime=now) for i in range(3)]})
        m.delay("/v1.0/security/incidents", 1200)

    alerts, incidents = "/v1.0/security/alerts_v2", "/v1.0/security/incidents"
    with PollEnv("reload", 'alerts = "1h", incidents = "5s", page_size = 2',
                 before_start=slow) as env:
        d, m = env.d, env.m
        env.wait_pass("alerts", 1)
        env.wait_pass("incidents", 1)
        cur_alerts = env.cursor("graph.alerts")
        n_alerts = len(list_requests(m, alerts))
        check(env.count("entra.risk") == 0, "risk detections polled before they were asked for")
        wait_for(lambda: (env.cursor("graph.incidents") or {}).get("next"), 30,
                 "a pass of incidents half done")
        passes = env.passes("incidents")
        set_poll(env, 'alerts = "5s", incidents = "6s", risk_detections = "5s", page_size = 1')
        t0 = time.time()
        out = d.cli("reload").stdout
        check("reloaded" in out, "kagari reload: %r" % out)
        # alerts: 1 hour became 5 s, counted from the end of its last pass: polled at once.
        wait_for(lambda: len(list_requests(m, alerts)) > n_alerts, 15,
                 "an alerts pass soon after the reload")
        check(time.time() - t0 < 10, "the new interval did not apply at once")
        first = list_requests(m, alerts)[n_alerts]
        check("$top=1" in first["query"], "the new page size is not used: %r" % first)
        since = filter_since(first)
        check(since is not None and
              abs(since - (to_ms(cur_alerts["watermark"]) - 300000)) < 2000,
              "the pass after the reload did not start from the stored watermark: %r, %r"
              % (first["query"], cur_alerts))
        # risk detections: a stream added by the reload.
        wait_for(lambda: env.count("entra.risk") == SEEDED_DETECTIONS, 60,
                 "the risk detections of the stream the reload added")
        # incidents: the pass in progress during the reload completed, once.
        env.wait_pass("incidents", passes + 1)
        check("poll.stream_interval" in d.log() and "poll.stream_started" in d.log(),
              "the reload's changes are not logged")
        # SIGHUP in the middle of another pass of incidents: the stream is removed.
        wait_for(lambda: (env.cursor("graph.incidents") or {}).get("next"), 30,
                 "another pass of incidents half done")
        passes = env.passes("incidents")
        set_poll(env, 'alerts = "5s", risk_detections = "5s", page_size = 1')
        d.signal(sig.SIGHUP)
        wait_for(lambda: "poll.stream_stopping" in d.log(), 10, "the removal logged")
        env.wait_pass("incidents", passes + 1, timeout=30)
        cur = env.cursor("graph.incidents")
        check("next" not in cur and "watermark" in cur, "the last pass did not end: %r" % cur)
        wait_for(lambda: "poll.stream_stopped" in d.log(), 10, "the stream stopped")
        n_inc = len(list_requests(m, incidents))
        passes_alerts = env.passes("alerts")
        time.sleep(8)  # past the removed stream's 6 s interval
        check(len(list_requests(m, incidents)) == n_inc, "the removed stream polled again")
        check(env.passes("alerts") > passes_alerts, "the other streams stopped too")
        check(env.count("defender.incident") == SEEDED_INCIDENTS + 3, "incidents stored twice")
        # Never two requests of one stream at once.
        for path in (alerts, incidents, "/v1.0/identityProtection/riskDetections"):
            no_overlapping_requests(m, path)
        # A file with an error: nothing of it is applied, and the operator is told.
        set_poll(env, 'alerts = "2s", risk_detections = "5s", page_size = 1')
        r = d.cli("reload", check_rc=1)
        check("interval" in r.stderr, "kagari reload with a bad file: %r" % r.stderr)
        d.signal(sig.SIGHUP)
        wait_for(lambda: "serve.reload_config_failed" in d.log(), 10,
                 "the daemon's failed reload logged")
        passes_alerts = env.passes("alerts")
        env.wait_pass("alerts", passes_alerts + 1)
        check(env.cursor("graph.alerts")["watermark"] >= cur_alerts["watermark"],
              "the alerts cursor went back")
        check(env.count("%.alert") == SEEDED_ALERTS, "alerts stored twice")


test_reload_applies_poll_settings.TIMEOUT = 180
