"""connhelp.py: a kagari daemon wired to kagari-mock for the connector tests.

    with ConnEnv("graph", playbooks={"users": BODY}) as env:
        out, run, journal = env.fire("users")
        check(out["user"]["ok"], ...)

Every playbook body gets a prelude defining `rec(key, ...)`: it records the values a
connector call returned (value or nil, message) as a journaled log line "OUT key {json}",
and `try(key, f, ...)`, which records whether f raised. env.fire() posts an alert for the
playbook, waits until its run is final and returns the recorded outputs by key, the run
and its journal. The alert's raw fields reach the playbook as `alert.raw`.
"""

import http.server
import json
import os
import threading
import time

import harness
from harness import Daemon, check, expect_accepted, playbook, wait_for
import mockctl
from mockctl import MockServer

PRELUDE = """
    local function rec(key, ...)
      local v, e = ...
      log.info("OUT " .. key .. " " .. json.encode({ ok = v ~= nil, v = v, e = e }))
      return v, e
    end
    local function try(key, f, ...)
      local ok, err = pcall(f, ...)
      local e = (not ok) and tostring(err) or nil
      log.info("OUT " .. key .. " " .. json.encode({ ok = ok, e = e }))
      return ok, err
    end
"""


def lua_str(s):
    """A Lua string literal (JSON string syntax is valid Lua for these values)."""
    return json.dumps(s)


class LocalHTTP:
    """A plain-http server on loopback for the generic http module's tests: every GET or
    HEAD answers 200 {"status": "ok"} (the engine's own listeners are off limits)."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def _reply(self, body):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "16")
                self.end_headers()
                if body:
                    self.wfile.write(b'{"status": "ok"}')

            def do_GET(self):
                self._reply(True)

            def do_HEAD(self):
                self._reply(False)

            def log_message(self, *args):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.srv.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def tenant_config(m, dry_run=False, allow=None, client_id=None, secret=None, extra=""):
    """The tenants block pointing tenant t1 at mock m; allow defaults to the mock's own
    host and port."""
    if allow is None:
        allow = ("127.0.0.1:%d" % m.port,)
    ms = ("microsoft = { authority = %s, graph = %s, defender = %s, tenant_id = %s, "
          "client_id = %s, client_secret = %s }"
          % (lua_str(m.base_url), lua_str(m.base_url), lua_str(m.base_url),
             lua_str(mockctl.TENANT), lua_str(client_id or mockctl.CLIENT_ID),
             lua_str(secret or mockctl.CLIENT_SECRET)))
    hosts = ", ".join(lua_str(h) for h in allow)
    return ("tenants = { t1 = { dry_run = %s, %s, http = { allow = { %s } }%s } }"
            % ("true" if dry_run else "false", ms, hosts, (", " + extra) if extra else ""))


def outputs(journal):
    """{key: {"ok":, "v":, "e":}} from the journal's OUT log lines (the last one wins)."""
    out = {}
    for e in journal:
        if e["kind"] != "log" or not isinstance(e["request"], dict):
            continue
        msg = e["request"].get("msg", "")
        if msg.startswith("OUT "):
            key, _, rest = msg[4:].partition(" ")
            out[key] = json.loads(rest)
    return out


def effects(journal, kind=None):
    """The journal's connector effects (everything but log/now/sleep), or those of kind."""
    return [e for e in journal
            if e["kind"] not in ("log", "now", "sleep") and (kind is None or e["kind"] == kind)]


def log_times(entries):
    """Request-log "at" values (RFC 3339) as ms since the epoch."""
    return [harness.to_ms(e["at"]) for e in entries]


class ConnEnv:
    """A mock (TLS, its own certificate) and a daemon whose tenant t1 uses it."""

    def __init__(self, name, playbooks, dry_run=False, max_attempts=3, timeout="10s",
                 mock_kw=None, allow=None, run_timeout=None, extra_config="",
                 breaker=(5, "30s"), retry_after_max="5m", client=(None, None),
                 tenant_extra=None, libs=None):
        self.name = name
        self.playbooks = playbooks
        self.dry_run = dry_run
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.mock_kw = mock_kw or {}
        self.allow = allow
        self.run_timeout = run_timeout
        self.extra_config = extra_config
        self.breaker = breaker
        self.retry_after_max = retry_after_max
        self.client = client
        self.tenant_extra = tenant_extra  # a function of the mock: more of t1's settings
        self.libs = libs or {}  # lib/NAME.lua files beside the playbooks
        self.m = None
        self.d = None
        self.seq = 0

    def __enter__(self):
        self.m = MockServer(**self.mock_kw)
        self.m.__enter__()
        self.local = LocalHTTP()
        if self.allow is None:
            self.allow = ("127.0.0.1:%d" % self.m.port, "127.0.0.1:%d" % self.local.port)
        try:
            cfg = ("connectors = { ca_file = %s, max_attempts = %d, timeout = %s, "
                   "breaker_threshold = %d, breaker_cooldown = %s, retry_after_max = %s }\n"
                   "%s\n" % (
                       lua_str(self.m.ca_file), self.max_attempts, lua_str(self.timeout),
                       self.breaker[0], lua_str(self.breaker[1]),
                       lua_str(self.retry_after_max),
                       tenant_config(self.m, self.dry_run, self.allow, self.client[0],
                                     self.client[1],
                                     self.tenant_extra(self.m) if self.tenant_extra else "")))
            if self.run_timeout is not None:
                cfg += 'runs = { timeout = %s }\n' % lua_str(self.run_timeout)
            cfg += self.extra_config
            self.d = Daemon("conn-%s" % self.name, config_extra=cfg)
            for name, text in self.libs.items():
                os.makedirs(os.path.join(self.d.pbdir, "lib"), exist_ok=True)
                with open(os.path.join(self.d.pbdir, "lib", name + ".lua"), "w") as f:
                    f.write(text)
            for pb, body in self.playbooks.items():
                self.d.write_playbook("%s.lua" % pb,
                                      playbook(pb, "it.conn.%s" % pb, PRELUDE + body))
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
            self.local.close()
            self.m.__exit__(etype, None, None)

    def __exit__(self, etype, exc, tb):
        try:
            if etype is None and self.d is not None and self.d.proc is not None:
                self.d.stop()
        finally:
            self._close(etype)
        return False

    def post(self, pb, raw=None):
        """Post an alert for playbook pb; returns its id."""
        self.seq += 1
        a = {"source": "it.conn.%s" % pb, "source_id": "%s-%d-%f" % (pb, self.seq, time.time())}
        a.update(raw or {})
        return expect_accepted(self.d.post(a), 1)[0]

    def advance_clock(self, seconds):
        """Move the engine's test clock forward, and the mock's with it."""
        shift = self.d.advance_clock(seconds)
        self.m.set_clock(shift)
        return shift

    def result(self, alert_id, timeout=30):
        run = self.d.wait_run_final(alert_id, timeout=timeout)
        journal = self.d.run_show(run["id"])["journal"]
        return outputs(journal), run, journal

    def fire(self, pb, raw=None, timeout=30, state="done"):
        """Run playbook pb on a new alert; check the run ends in state."""
        out, run, journal = self.result(self.post(pb, raw), timeout)
        if state is not None:
            check(run["state"] == state,
                  "run of %s is %s (%s), expected %s; journal: %s"
                  % (pb, run["state"], run.get("error"), state,
                     json.dumps(harness.journal_summary(journal))[:3000]))
        return out, run, journal

    def wait_mock_log(self, path_prefix, n=1, timeout=20):
        """Wait until the mock's request log holds n requests under path_prefix."""
        return wait_for(lambda: (lambda es: es if len(es) >= n else None)(
            self.m.log_entries(2000, path_prefix)), timeout,
            "%d request(s) to %s at the mock" % (n, path_prefix))


def expect_ok(out, key):
    check(key in out, "no output %r (outputs: %s)" % (key, sorted(out)))
    check(out[key]["ok"], "%s failed: %r" % (key, out[key]))
    return out[key].get("v")


def expect_fail(out, key, *words):
    check(key in out, "no output %r (outputs: %s)" % (key, sorted(out)))
    check(not out[key]["ok"], "%s succeeded, expected a failure: %r" % (key, out[key]))
    e = out[key].get("e") or ""
    for w in words:
        check(w.lower() in e.lower(), "%s: message %r does not name %r" % (key, e, w))
    return e
