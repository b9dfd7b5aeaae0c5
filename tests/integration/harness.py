"""harness.py: drive a real kagari daemon over loopback for the integration tests.

A Daemon lives in its own temporary folder: `kagari init` writes the configuration and
the data folder there, playbooks go to its playbooks/ folder, and every start of
`kagari serve` logs to its own file (serve.N.log) so that each start's ready line and
sanitizer reports can be told apart. Use it as a context manager: whatever happens,
the daemon is killed and the folder removed on exit.

Results are read through the CLI (`kagari runs --json`, `kagari run show --json`) when
the binary supports --json, else straight from the tenant database (read-only); the
polling helpers always read the database, which is cheap.
"""

import calendar
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time

BUILD = None  # build folder holding kagari; set by run.py
KEEP = os.environ.get("KAGARI_IT_KEEP") == "1"  # keep temp folders for debugging

SANITIZER_MARKS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "LeakSanitizer",
    "AddressSanitizer",
    "runtime error",
    "UndefinedBehaviorSanitizer",
)

JOURNAL_STATUS = {0: "started", 1: "done", 2: "failed"}
FINAL_STATES = ("done", "failed", "cancelled")


class TestFailure(AssertionError):
    pass


def check(cond, msg):
    """Assert with a message (plain assert is stripped by python -O)."""
    if not cond:
        raise TestFailure(msg)


def kagari():
    return os.path.join(BUILD, "kagari")


def sanitizer_env():
    """Environment for every kagari process: sanitizer options as tests/run.sh sets
    them (kept when already set), and no inherited KAGARI_* defaults."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env.setdefault(
        "ASAN_OPTIONS",
        "detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=0",
    )
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    env.setdefault(
        "LSAN_OPTIONS",
        "suppressions=%s:print_suppressions=0" % os.path.join(root, "tests", "lsan.supp"),
    )
    env.pop("KAGARI_CONFIG", None)
    for k in ("KAGARI_TOKEN", "KAGARI_API_TOKEN", "KAGARI_USER", "KAGARI_PASSWORD", "KAGARI_TOTP"):
        env.pop(k, None)
    return env


def sanitizer_report(text):
    """The first line of a sanitizer report in text, or None."""
    for line in text.splitlines():
        for mark in SANITIZER_MARKS:
            if mark in line:
                return line
    return None


def run_cli(args, timeout=60, input=None, check_rc=None, env=None):
    """Run `kagari ARGS` (env: more environment variables); fail on a sanitizer report;
    optionally check the exit code. Returns the CompletedProcess (text output)."""
    e = sanitizer_env()
    if env:
        e = dict(e)
        e.update(env)
    p = subprocess.run(
        [kagari()] + list(args),
        input=input,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        env=e,
    )
    rep = sanitizer_report(p.stderr) or sanitizer_report(p.stdout)
    check(rep is None, "kagari %s: sanitizer report: %s\n%s" % (" ".join(args), rep, p.stderr[-4000:]))
    if check_rc is not None:
        check(
            p.returncode == check_rc,
            "kagari %s: exit %d, expected %d\nstdout: %s\nstderr: %s"
            % (" ".join(args), p.returncode, check_rc, p.stdout[-2000:], p.stderr[-2000:]),
        )
    return p


_json_cli = None


def cli_has_json():
    """Does this build's `kagari runs` and `kagari run show` take --json?"""
    global _json_cli
    if _json_cli is None:
        a = run_cli(["runs", "--help"]).stdout
        b = run_cli(["run", "--help"]).stdout
        _json_cli = "--json" in a and "--json" in b
    return _json_cli


def wait_for(pred, timeout, what, interval=0.05):
    """Poll pred() until it returns a true value (returned) or timeout seconds pass."""
    end = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except (OSError, sqlite3.Error, http.client.HTTPException) as e:
            last_exc = e
        if time.monotonic() >= end:
            raise TestFailure(
                "timed out after %.1fs waiting for %s%s"
                % (timeout, what, " (last error: %r)" % last_exc if last_exc else "")
            )
        time.sleep(interval)


# ---- HTTP ----


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body.decode("utf-8")) if body else None
        except (ValueError, UnicodeDecodeError):
            self.json = None

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return "HTTP %d %r" % (self.status, self.body[:300])


class Client:
    """One keep-alive HTTP/1.1 connection to the intake. Reconnects when the server
    closed it (after a reply with Connection: close, or an idle close noticed when the
    next request is sent)."""

    def __init__(self, port, token=None, timeout=30):
        self.port = port
        self.token = token
        self.timeout = timeout
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, method, path, body=None, headers=None):
        hdrs = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = body.encode("utf-8")
        reused = self.conn is not None
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                r = self.conn.getresponse()
                data = r.read()
                resp = Response(r.status, r.getheaders(), data)
                if r.will_close:
                    self.close()
                return resp
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 1 or not reused:
                    raise
                reused = False
        raise TestFailure("unreachable")

    def post(self, obj=None, raw=None, token="default", content_type="application/json", query="",
             path="/api/v1/alerts"):
        """POST obj as JSON (or raw bytes) to the intake with the client's token."""
        body = raw if raw is not None else json.dumps(obj)
        headers = {}
        tok = self.token if token == "default" else token
        if tok is not None:
            headers["Authorization"] = "Bearer " + tok
        if content_type is not None:
            headers["Content-Type"] = content_type
        return self.request("POST", path + query, body=body, headers=headers)

    def get(self, path):
        return self.request("GET", path)


def expect_accepted(resp, accepted, duplicates=0):
    """Check a 202 reply's counts; return its ids."""
    check(resp.status == 202, "expected 202, got %r" % resp)
    j = resp.json
    check(isinstance(j, dict), "202 body is not a JSON object: %r" % resp)
    check(
        j.get("accepted") == accepted and j.get("duplicates") == duplicates,
        "expected accepted=%d duplicates=%d, got %r" % (accepted, duplicates, j),
    )
    ids = j.get("ids")
    check(isinstance(ids, list) and all(isinstance(i, int) for i in ids),
          "202 ids is not a list of integers: %r" % j)
    check(len(ids) == accepted + duplicates, "expected %d ids, got %r" % (accepted + duplicates, j))
    return ids


def expect_error(resp, status, *words):
    """Check an error reply: the status, a JSON {"error","message"} body (for 400) and
    that the message names each of words (case-insensitive)."""
    check(resp.status == status, "expected %d, got %r" % (status, resp))
    if status == 400 or words:
        j = resp.json
        check(isinstance(j, dict) and isinstance(j.get("error"), str)
              and isinstance(j.get("message"), str),
              "expected a JSON {error, message} body, got %r" % resp)
        for w in words:
            alts = w if isinstance(w, tuple) else (w,)
            check(any(a.lower() in j["message"].lower() for a in alts),
                  "error message does not name %s: %r" % (" or ".join(map(repr, alts)), j["message"]))


# ---- the daemon ----


class Daemon:
    """One kagari configuration + data folder and the serve process started from it."""

    def __init__(self, name, config_extra="", tenant="t1"):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="kagari-it-%s-" % name)
        self.config = os.path.join(self.dir, "kagari.conf.lua")
        self.data = os.path.join(self.dir, "data")
        self.pbdir = os.path.join(self.dir, "playbooks")
        self.tenant = tenant
        self.tokens = {}
        self.proc = None
        self.port = None
        self.starts = 0
        self.log_path = None
        self.logs = []  # every serve.N.log of this daemon
        self.ready_ms = None  # wall clock when the last start logged serve.ready
        self.preexec = None  # run in the child before exec (limits for fault tests)
        try:
            self._init(config_extra)
        except BaseException:
            if not KEEP:
                shutil.rmtree(self.dir, ignore_errors=True)
            raise

    # -- lifecycle --

    def _init(self, config_extra):
        p = run_cli(["init", "--config", self.config, "--data", "data", "--playbooks", "playbooks",
                     "--listen", "127.0.0.1:0", "--tenant", self.tenant], check_rc=0)
        m = re.search(r"intake token \(shown once\): (kg_[0-9A-Za-z_]+)", p.stdout)
        check(m is not None, "kagari init printed no token: %r" % p.stdout)
        self.tokens[self.tenant] = m.group(1)
        os.makedirs(self.pbdir, exist_ok=True)
        if config_extra:
            with open(self.config, "a") as f:
                f.write("\n-- integration test settings\n" + config_extra + "\n")

    @property
    def token(self):
        return self.tokens[self.tenant]

    def add_tenant(self, tid):
        p = run_cli(["tenant", "add", tid, "--config", self.config], check_rc=0)
        m = re.search(r"intake token \(shown once\): (kg_[0-9A-Za-z_]+)", p.stdout)
        check(m is not None, "kagari tenant add printed no token: %r" % p.stdout)
        self.tokens[tid] = m.group(1)
        return m.group(1)

    def write_playbook(self, filename, text):
        path = os.path.join(self.pbdir, filename)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)  # a reload never sees half a file
        return path

    def start(self, timeout=30):
        check(self.proc is None, "daemon already running")
        self.starts += 1
        self.log_path = os.path.join(self.dir, "serve.%d.log" % self.starts)
        self.logs.append(self.log_path)
        logf = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen([kagari(), "serve", "--config", self.config],
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                         env=sanitizer_env(), preexec_fn=self.preexec)
        finally:
            logf.close()
        end = time.monotonic() + timeout
        while True:
            text = self.log()
            m = re.search(r"event=serve\.ready\b.*", text)
            if m is not None:
                pm = re.search(r"\bport=(\d+)", m.group(0))
                check(pm is not None, "serve.ready line without port=: %r" % m.group(0))
                self.port = int(pm.group(1))
                self.ready_ms = time.time() * 1000
                return self
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                raise TestFailure("kagari serve exited with %d before serve.ready:\n%s"
                                  % (rc, text[-4000:]))
            if time.monotonic() >= end:
                self.kill9()
                raise TestFailure("no serve.ready within %ds:\n%s" % (timeout, text[-4000:]))
            time.sleep(0.02)

    def log(self, path=None):
        """The current (or given) start's log text."""
        try:
            with open(path or self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def all_logs(self):
        return "".join(self.log(p) for p in self.logs)

    def signal(self, sig):
        check(self.proc is not None, "daemon not running")
        self.proc.send_signal(sig)

    def stop(self, timeout=30):
        """SIGTERM, wait: the exit code must be 0 and the log free of sanitizer reports."""
        check(self.proc is not None, "daemon not running")
        self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def wait_exit(self, timeout=30):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise TestFailure("daemon did not exit within %ds of SIGTERM:\n%s"
                              % (timeout, self.log()[-3000:]))
        self.proc = None
        text = self.log()
        rep = sanitizer_report(text)
        check(rep is None, "sanitizer report from the daemon: %s\n%s" % (rep, text[-6000:]))
        check(rc == 0, "daemon exit code %d after SIGTERM, expected 0:\n%s" % (rc, text[-3000:]))
        return rc

    def kill9(self):
        if self.proc is not None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None

    def restart(self, timeout=30):
        """Start again from the same configuration (a new port when listen is :0)."""
        return self.start(timeout)

    def close(self):
        """Kill what is still running and remove the folder (unless KAGARI_IT_KEEP=1).
        Reports a sanitizer finding in any start's log, even after a kill -9."""
        self.kill9()
        text = self.all_logs()
        if not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)
        rep = sanitizer_report(text)
        check(rep is None, "sanitizer report in a daemon log: %s" % rep)

    def __enter__(self):
        return self

    def __exit__(self, etype, exc, tb):
        try:
            self.close()
        except TestFailure as e:
            if etype is None:
                raise
            print("# also: %s" % e)
        if etype is not None and KEEP:
            print("# kept %s" % self.dir)
        return False

    # -- clients --

    def client(self, tenant=None, timeout=30):
        check(self.port is not None, "daemon not started")
        return Client(self.port, self.tokens[tenant or self.tenant], timeout)

    def post(self, obj=None, tenant=None, **kw):
        with self.client(tenant) as c:
            return c.post(obj, **kw)

    def get(self, path):
        with self.client() as c:
            return c.get(path)

    def metrics(self):
        r = self.get("/metrics")
        check(r.status == 200, "/metrics: %r" % r)
        vals = {}
        for line in r.body.decode().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, v = line.rpartition(" ")
            vals[name] = float(v)
        return vals

    def control(self, line, timeout=10):
        """One request on the daemon's control socket; its JSON reply."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(os.path.join(self.data, "control.sock"))
            s.sendall(line.encode() + b"\n")
            out = b""
            while not out.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
        finally:
            s.close()
        return json.loads(out)

    def advance_clock(self, seconds):
        """Move the engine's clock forward (the test clock: testing = { clock = true } in the
        configuration of a test build). Returns the total shift in ms."""
        r = self.control("clock +%g" % seconds)
        check("shift_ms" in r, "the test clock moved: %r" % r)
        return r["shift_ms"]

    def clock_ms(self):
        """The engine's notion of now, in ms (the real clock plus the test clock's shift)."""
        return int(time.time() * 1000) + self.control("clock").get("shift_ms", 0)

    # -- results --

    def cli(self, *args, check_rc=0, timeout=60):
        return run_cli(list(args) + ["--config", self.config], check_rc=check_rc, timeout=timeout)

    def db_path(self, tenant=None):
        return os.path.join(self.data, "tenants", "%s.db" % (tenant or self.tenant))

    def query(self, sql, args=(), tenant=None):
        """Read-only query on the tenant database."""
        path = self.db_path(tenant)
        check(os.path.exists(path), "no database %s" % path)
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def db_runs(self, tenant=None):
        """Runs straight from the database, as dicts like the CLI's."""
        rows = self.query("SELECT id, alert_id, playbook, playbook_hash, state, created, started,"
                          " ended, error FROM runs ORDER BY id", tenant=tenant)
        keys = ("id", "alert_id", "playbook", "version", "state", "created", "started", "ended",
                "error")
        return [dict(zip(keys, r), tenant=tenant or self.tenant) for r in rows]

    def db_journal(self, run_id, tenant=None):
        rows = self.query("SELECT seq, kind, status, request, result, started, ended FROM journal"
                          " WHERE run_id = ? ORDER BY seq", (run_id,), tenant=tenant)
        out = []
        for seq, kind, status, req, res, st, en in rows:
            out.append({"seq": seq, "kind": kind, "status": JOURNAL_STATUS.get(status, status),
                        "request": _maybe_json(req), "result": _maybe_json(res),
                        "started": st, "ended": en})
        return out

    def runs(self, tenant=None):
        """Every run of the tenant, oldest first: `kagari runs --json` when available."""
        t = tenant or self.tenant
        if not cli_has_json():
            return self.db_runs(t)
        p = self.cli("runs", "--tenant", t, "--json", "--limit", "1000000")
        try:
            runs = json.loads(p.stdout)
        except ValueError:
            raise TestFailure("kagari runs --json printed no JSON: %r" % p.stdout[:500])
        check(isinstance(runs, list), "kagari runs --json: not an array: %r" % p.stdout[:300])
        return sorted((_times_to_ms(r) for r in runs), key=lambda r: r["id"])

    def run_show(self, run_id, tenant=None):
        """One run with its journal: `kagari run show --json` when available."""
        t = tenant or self.tenant
        if not cli_has_json():
            runs = [r for r in self.db_runs(t) if r["id"] == run_id]
            check(len(runs) == 1, "no run %d in %s" % (run_id, t))
            r = runs[0]
            r["journal"] = self.db_journal(run_id, t)
            return r
        p = self.cli("run", "show", str(run_id), "--tenant", t, "--json")
        try:
            r = json.loads(p.stdout)
        except ValueError:
            raise TestFailure("kagari run show --json printed no JSON: %r" % p.stdout[:500])
        check(isinstance(r, dict) and isinstance(r.get("journal"), list),
              "kagari run show --json: %r" % p.stdout[:300])
        for e in r["journal"]:
            if isinstance(e.get("status"), int):
                e["status"] = JOURNAL_STATUS.get(e["status"], e["status"])
            _times_to_ms(e)
        return _times_to_ms(r)

    def runs_of_alert(self, alert_id, tenant=None):
        return [r for r in self.db_runs(tenant) if r["alert_id"] == alert_id]

    def wait_run_state(self, alert_id, states, timeout=20, tenant=None, playbook=None):
        """Wait until the alert's (only, or playbook's) run is in one of states."""
        if isinstance(states, str):
            states = (states,)

        def pred():
            rs = self.runs_of_alert(alert_id, tenant)
            if playbook is not None:
                rs = [r for r in rs if r["playbook"] == playbook]
            if len(rs) == 1 and rs[0]["state"] in states:
                return rs[0]
            return None

        try:
            return wait_for(pred, timeout, "run of alert %d in state %s" % (alert_id, "/".join(states)))
        except TestFailure as e:
            raise TestFailure("%s; runs now: %r" % (e, self.runs_of_alert(alert_id, tenant)))

    def wait_run_final(self, alert_id, timeout=20, tenant=None, playbook=None):
        return self.wait_run_state(alert_id, FINAL_STATES, timeout, tenant, playbook)


def to_ms(v):
    """A time as the CLI prints it ("2026-01-02T03:04:05.678Z") or as the database keeps
    it (ms since the epoch) -> ms since the epoch (None stays None)."""
    if v is None or isinstance(v, (int, float)):
        return v
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z$", v)
    check(m is not None, "not a UTC time: %r" % v)
    y, mo, d, h, mi, sec = (int(x) for x in m.groups()[:6])
    frac = m.group(7) or "0"
    secs = calendar.timegm((y, mo, d, h, mi, sec, 0, 0, 0))
    return secs * 1000 + int(round(float("0." + frac) * 1000))


def _times_to_ms(obj):
    for k in ("created", "started", "ended", "throttled_until"):
        if k in obj:
            obj[k] = to_ms(obj[k])
    return obj


def _maybe_json(text):
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def journal_summary(journal):
    """[(kind, request)] of a journal, for compact comparisons and messages."""
    return [(e["kind"], e["request"]) for e in journal]


def log_step(msg, level="info"):
    return ("log", {"level": level, "msg": msg})


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def raw_exchange(port, data, timeout=5.0, shut_write=False, source=None):
    """Send raw bytes on a fresh connection and read until the server closes or timeout.
    Returns (bytes read, closed_by_server). A reset counts as closed. source: the local
    address to connect from (another loopback address such as "127.0.0.2" plays another
    client)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    try:
        try:
            s.sendall(data)
            if shut_write:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            s.settimeout(max(0.05, end - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return out, False
            except ConnectionResetError:
                return out, True
            if not chunk:
                return out, True
            out += chunk
        return out, False
    finally:
        s.close()


def parse_status(raw):
    """Status code of a raw HTTP response, or None."""
    m = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    return int(m.group(1)) if m else None


def playbook(name, source, body, extra_on=""):
    """Text of a playbook file triggered by source whose run function is body."""
    return (
        "return playbook {\n"
        "  name = %s,\n"
        "  on = { source = %s%s },\n"
        "  run = function(alert)\n%s\n  end,\n"
        "}\n" % (json.dumps(name), json.dumps(source), extra_on, body)
    )
