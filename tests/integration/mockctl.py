"""mockctl.py: start kagari-mock (the Microsoft identity / Graph / Defender / Intune and
PAN-OS XML API mock, tests/mock) and drive it from integration tests, with the Python
standard library only.

    from mockctl import MockServer, GRAPH_SCOPE, MDE_SCOPE

    with MockServer() as m:                      # TLS with a fresh self-signed cert
        tok = m.token(GRAPH_SCOPE)               # client credentials, default app
        r = m.request("PATCH", "/v1.0/users/alice@example.jp",
                      {"accountEnabled": False}, token=tok)
        assert r.status == 204
        assert m.user_counter("alice@example.jp", "disable") == 1
        m.fault("/v1.0/users", status=429, retry_after=2, count=3)
        ...
    # leaving the block sends SIGTERM and checks exit code 0 and no sanitizer report

The binary is BUILD/kagari-mock where BUILD is harness.BUILD (set by run.py from its
build-dir argument), else $KAGARI_BUILD, else build/san. m.base_url is the one base URL
for the authority, Graph and Defender (https://127.0.0.1:PORT); m.ca_file is the
certificate to trust. The control API is documented in tests/mock/README.md.
"""

import base64
import hashlib
import http.client
import json
import os
import select
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET

try:
    import harness
except ImportError:  # used outside the integration suite
    harness = None

# The built-in seed (tests/mock/mock_seed.c).
TENANT = "8f3c1a2b-0000-4000-8000-000000000001"
TENANT_DOMAIN = "example.jp"
TENANT2 = "8f3c1a2b-0000-4000-8000-000000000002"
CLIENT_ID = "5e1b7a90-0000-4000-8000-00000000f006"
CLIENT_SECRET = "mock-secret-value-1"
EXPIRED_CLIENT_ID = "5e1b7a90-0000-4000-8000-00000000f007"
EXPIRED_CLIENT_SECRET = "mock-expired-secret"
READONLY_CLIENT_ID = "5e1b7a90-0000-4000-8000-00000000f008"
READONLY_CLIENT_SECRET = "mock-secret-readonly"
TENANT2_CLIENT_ID = "5e1b7a90-0000-4000-8000-00000000f009"
TENANT2_CLIENT_SECRET = "mock-secret-value-2"

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
MDE_SCOPE = "https://api.securitycenter.microsoft.com/.default"

ALICE = ("a11ce000-0000-4000-8000-000000000001", "alice@example.jp")
JIRO = ("a11ce000-0000-4000-8000-000000000002", "jiro.tanaka@example.jp")
ADMIN = ("a11ce000-0000-4000-8000-000000000003", "admin.sato@example.jp")  # PATCH -> 403
SYNCED = ("a11ce000-0000-4000-8000-000000000004", "hanako.ito@example.jp")  # PATCH -> 400
DISABLED = ("a11ce000-0000-4000-8000-000000000005", "bob.kato@example.jp")

WS0142 = ("4c2f0e9a1b7d3c5e8f6a0b1c2d3e4f5a6b7c8d9e", "ws-0142.corp.example.jp", "192.0.2.41")
WS0077 = ("9b1e7c3d5f2a4b6c8d0e1f2a3b4c5d6e7f809a1b", "ws-0077.corp.example.jp", "192.0.2.77")
LINUX = ("1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a79880716", "srv-lnx-01.corp.example.jp", "192.0.2.10")
LEGACY = ("e7a1c2d3b4f5061728394a5b6c7d8e9f0a1b2c3d", "ws-legacy-01.corp.example.jp", "192.0.2.90")
OFFLINE = ("5a5a0b0b1c1c2d2d3e3e4f4f5a5a6b6b7c7c8d8d", "ws-0200.corp.example.jp", "192.0.2.200")
FAILING = ("fa11fa11fa11fa11fa11fa11fa11fa11fa11fa11", "ws-0301.corp.example.jp", "192.0.2.31")

DEVICE_WS0142 = "0d1c0000-0000-4000-8000-000000000142"
ALERT_LSASS = "da0001112223334445_-1234567"
INCIDENT = "4711"
INCIDENT_REDIRECTED = "4713"

# PAN-OS XML API (/api/): the seeded admin and its fixed key (see panos_key).
PANOS_USER = "soar-api"
PANOS_PASSWORD = "mock-panos-password"
PANOS_KEY = "LUFRPT1vM2lqWmR2cHEwdzZkL3B2Nzk4ZkNyS0t0TUk9R2poakRuVDV2S2dDWU5OeUlVWmw0Zz09"


def panos_key(user, password):
    """The key kagari-mock gives a seeded PAN-OS admin that has no explicit "key":
    base64("-AQ==" + base64(SHA-1(user)) + base64(SHA-256("user:password")[:16]))."""
    u, p = user.encode(), password.encode()
    raw = (b"-AQ==" + base64.b64encode(hashlib.sha1(u).digest())
           + base64.b64encode(hashlib.sha256(u + b":" + p).digest()[:16]))
    return base64.b64encode(raw).decode()


SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error",
                   "UndefinedBehaviorSanitizer")


class MockError(AssertionError):
    pass


def _fail(msg):
    if harness is not None:
        raise harness.TestFailure(msg)
    raise MockError(msg)


def build_dir():
    if harness is not None and getattr(harness, "BUILD", None):
        return harness.BUILD
    return os.path.abspath(os.environ.get("KAGARI_BUILD", "build/san"))


def mock_binary():
    return os.path.join(build_dir(), "kagari-mock")


def _env():
    if harness is not None:
        return harness.sanitizer_env()
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


def make_cert(folder, rsa=False, cn="127.0.0.1"):
    """A self-signed certificate and key made with the openssl CLI: EC P-256 for the TLS
    listener by default, RSA 2048 (rsa=True) for client-assertion signing."""
    key = os.path.join(folder, "%s-key.pem" % ("rsa" if rsa else "tls"))
    cert = os.path.join(folder, "%s-cert.pem" % ("rsa" if rsa else "tls"))
    newkey = ["-newkey", "rsa:2048"] if rsa else [
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    subprocess.run(["openssl", "req", "-x509"] + newkey + [
        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=%s" % cn,
        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    return cert, key


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

    @property
    def xml(self):
        """The body as an XML element (PAN-OS answers), None when it does not parse."""
        try:
            return ET.fromstring(self.body)
        except ET.ParseError:
            return None

    @property
    def error_code(self):
        """error.code of a Graph/MDE error, or error of an AAD error."""
        j = self.json
        if isinstance(j, dict):
            e = j.get("error")
            if isinstance(e, dict):
                return e.get("code")
            return e
        return None

    def __repr__(self):
        return "HTTP %d %r" % (self.status, self.body[:400])


class MockServer:
    """One kagari-mock process in its own temporary folder."""

    def __init__(self, tls=True, seed=None, token_lifetime=None, poll_steps=None, args=(),
                 timeout=30):
        self.tls = tls
        self.seed = seed
        self.token_lifetime = token_lifetime
        self.poll_steps = poll_steps
        self.args = list(args)
        self.timeout = timeout
        self.dir = None
        self.proc = None
        self.port = None
        self.ca_file = None
        self._ctx = None
        self._conn = None
        self._tokens = {}

    # -- lifecycle --

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="kagari-mock-")
        cmd = [mock_binary(), "--listen", "127.0.0.1:0"]
        if self.tls:
            cert, key = make_cert(self.dir)
            self.ca_file = cert
            cmd += ["--tls-cert", cert, "--tls-key", key]
            self._ctx = ssl.create_default_context(cafile=cert)
        if self.seed is not None:
            path = self.seed
            if not isinstance(self.seed, str):
                path = os.path.join(self.dir, "seed.json")
                with open(path, "w") as f:
                    json.dump(self.seed, f)
            cmd += ["--seed", path]
        if self.token_lifetime is not None:
            cmd += ["--token-lifetime", str(self.token_lifetime)]
        if self.poll_steps is not None:
            cmd += ["--poll-steps", str(self.poll_steps)]
        cmd += self.args
        self.log_path = os.path.join(self.dir, "mock.log")
        logf = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=logf, env=_env())
        finally:
            logf.close()
        line = b""
        end = time.monotonic() + self.timeout
        while not line.endswith(b"\n"):
            left = end - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                break
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                ch = os.read(self.proc.stdout.fileno(), 1)
                if not ch:
                    break
                line += ch
        text = line.decode("utf-8", "replace").strip()
        if not text.startswith("mock ready port="):
            self._kill()
            _fail("kagari-mock did not start (%r):\n%s" % (text, self.log()[-3000:]))
        self.port = int(text.split("=", 1)[1])
        return self

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, AttributeError):
            return ""

    def _kill(self):
        if self.proc is not None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
            self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None

    def stop(self, timeout=20):
        """SIGTERM; the exit code must be 0 and stderr free of sanitizer reports."""
        self.close_conn()
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            _fail("kagari-mock did not exit within %ds of SIGTERM" % timeout)
        self.proc.stdout.close()
        self.proc = None
        text = self.log()
        for line in text.splitlines():
            if any(mark in line for mark in SANITIZER_MARKS):
                _fail("sanitizer report from kagari-mock: %s\n%s" % (line, text[-4000:]))
        if rc != 0:
            _fail("kagari-mock exited with %d after SIGTERM:\n%s" % (rc, text[-3000:]))

    def cleanup(self):
        self._kill()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, etype, exc, tb):
        try:
            if etype is None:
                self.stop()
        finally:
            self.cleanup()
        return False

    # -- HTTP --

    @property
    def base_url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def ssl_context(self):
        return self._ctx

    def connect(self, timeout=30):
        if self.tls:
            return http.client.HTTPSConnection("127.0.0.1", self.port, context=self._ctx,
                                               timeout=timeout)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def expect_dropped(self, method, path, body, headers):
        """Send one request on a new connection and check that the mock closes it without
        an answer (a drop fault)."""
        c = self.connect(timeout=10)
        try:
            c.request(method, path, body=body, headers=headers)
            try:
                c.getresponse()
                _fail("a dropped request got an answer")
            except (http.client.RemoteDisconnected, ConnectionResetError, ssl.SSLError):
                pass
        finally:
            c.close()

    def close_conn(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method, path, body=None, token=None, headers=None, form=None,
                keepalive=True, timeout=30):
        """One request. body: dict/list (sent as JSON), str/bytes (sent as is); form: a
        dict sent as application/x-www-form-urlencoded. path may be an absolute URL of
        this mock (an @odata.nextLink). Reuses one keep-alive connection unless
        keepalive=False. Returns a Response."""
        if path.startswith("http://") or path.startswith("https://"):
            u = urllib.parse.urlsplit(path)
            path = u.path + ("?" + u.query if u.query else "")
        hdrs = dict(headers or {})
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            data = body.encode()
        elif body is not None:
            data = body
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        if not keepalive:
            c = self.connect(timeout)
            try:
                c.request(method, path, body=data, headers=hdrs)
                r = c.getresponse()
                return Response(r.status, r.getheaders(), r.read())
            finally:
                c.close()
        for attempt in (0, 1):
            fresh = self._conn is None
            if fresh:
                self._conn = self.connect(timeout)
            try:
                self._conn.request(method, path, body=data, headers=hdrs)
                r = self._conn.getresponse()
                resp = Response(r.status, r.getheaders(), r.read())
                if r.will_close:
                    self.close_conn()
                return resp
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close_conn()
                if fresh or attempt == 1:
                    raise
        raise MockError("unreachable")

    # -- tokens --

    def token_request(self, scope=GRAPH_SCOPE, tenant=TENANT, client_id=CLIENT_ID,
                      secret=CLIENT_SECRET, extra=None):
        form = {"client_id": client_id, "scope": scope, "grant_type": "client_credentials"}
        if secret is not None:
            form["client_secret"] = secret
        form.update(extra or {})
        return self.request("POST", "/%s/oauth2/v2.0/token" % tenant, form=form)

    def token(self, scope=GRAPH_SCOPE, tenant=TENANT, client_id=CLIENT_ID, secret=CLIENT_SECRET,
              cached=True):
        """An access token (cached per scope/tenant/client unless cached=False)."""
        key = (scope, tenant, client_id)
        if cached and key in self._tokens:
            return self._tokens[key]
        r = self.token_request(scope, tenant, client_id, secret)
        if r.status != 200:
            _fail("token request failed: %r" % r)
        self._tokens[key] = r.json["access_token"]
        return r.json["access_token"]

    def graph(self, method, path, body=None, **kw):
        """A Graph call with the default app's token."""
        return self.request(method, path, body, token=self.token(GRAPH_SCOPE), **kw)

    def mde(self, method, path, body=None, **kw):
        """A Defender call with the default app's token."""
        return self.request(method, path, body, token=self.token(MDE_SCOPE), **kw)

    # -- control API --

    def control(self, method, path, body=None):
        r = self.request(method, "/_mock" + path, body)
        if r.status != 200:
            _fail("control %s %s: %r" % (method, path, r))
        return r.json

    def fault(self, path_prefix, **kw):
        """Queue a fault: status=, retry_after=, retry_after_date= (send it as an
        HTTP-date), count=, delay_ms=, drop=, malformed=, method=."""
        body = {"path_prefix": path_prefix}
        body.update(kw)
        return self.control("POST", "/fault", body)

    def delay(self, path_prefix, delay_ms):
        return self.control("POST", "/delay", {"path_prefix": path_prefix, "delay_ms": delay_ms})

    def clear_faults(self):
        return self.control("DELETE", "/faults")

    # -- Azure Blob storage (/blob/<account>/...) --

    def blob_url(self, account):
        """The account URL the poller is configured with (path-style, like the emulator)."""
        return "%s/blob/%s" % (self.base_url, account)

    def blob(self, op, **kw):
        """POST /_mock/blob: op append|put|delete|container|sas|config."""
        body = {"op": op}
        body.update(kw)
        return self.control("POST", "/blob", body)

    def blob_append(self, account, container, blob, data):
        """Append data (str, or bytes of any kind) to the blob, creating it if needed."""
        if isinstance(data, bytes):
            return self.blob("append", account=account, container=container, blob=blob,
                             data_base64=base64.b64encode(data).decode())
        return self.blob("append", account=account, container=container, blob=blob, data=data)

    def blob_sas(self, account, expires_in=3600, permissions="rl"):
        return self.blob("sas", account=account, expires_in=expires_in,
                         permissions=permissions)["sas"]

    def blob_state(self):
        return self.control("GET", "/blob")

    def counters(self):
        return self.control("GET", "/counters")

    def user_counter(self, upn, what):
        return self.counters()["users"].get(upn, {}).get(what, 0)

    def machine_counter(self, machine_id, what):
        return self.counters()["machines"].get(machine_id, {}).get(what, 0)

    def user_state(self, id_or_upn):
        return self.control("GET", "/state/users/" + urllib.parse.quote(id_or_upn))

    def machine_state(self, id_or_name):
        return self.control("GET", "/state/machines/" + urllib.parse.quote(id_or_name))

    def set_machine(self, id_or_name, **kw):
        """offline=bool, action_results={"Isolate": "Failed", "*": "TimeOut"}"""
        return self.control("POST", "/state/machines/" + urllib.parse.quote(id_or_name), kw)

    def state(self, kind, ident):
        return self.control("GET", "/state/%s/%s" % (kind, urllib.parse.quote(ident)))

    def reset(self):
        return self.control("POST", "/reset")

    def expire_tokens(self):
        return self.control("POST", "/expire-tokens")

    def config(self, **kw):
        """duplicate_action=, page_size=, poll_steps=, empty_page=, signins_premium=,
        processing_reads=, indicator_cap=, action_final_status=, token_lifetime=,
        limits_enabled=, limits={"defender_per_min": n, ...}, next_link= (a template of
        the Graph lists' next links with {base}, {path} and {query}; None: the service's
        own). Returns the new config."""
        return self.control("POST", "/config", kw)

    def get_config(self):
        return self.control("GET", "/config")

    # -- PAN-OS --

    def panos(self, params, key=PANOS_KEY, method="POST", headers=None, **kw):
        """A PAN-OS XML API call on /api/: params as a form body (POST) or in the query
        (GET); key, unless None, goes in X-PAN-KEY. Returns a Response (see .xml)."""
        hdrs = dict(headers or {})
        if key is not None:
            hdrs["X-PAN-KEY"] = key
        if method == "GET":
            return self.request("GET", "/api/?" + urllib.parse.urlencode(params), headers=hdrs,
                                **kw)
        return self.request(method, "/api/", form=params, headers=hdrs, **kw)

    def registered_ips(self):
        """The PAN-OS IP->tag registrations: [{"ip", "persistent", "tags": [{"name",
        "timeout", "registered", "expires"}]}]."""
        return self.control("GET", "/state/registeredIps")

    def panos_state(self):
        """The PAN-OS candidate configuration, commit jobs, lock and their counters:
        {"addresses", "groups", "jobs", "dirty", "lock", "counters"}."""
        return self.control("GET", "/state/panos")

    def panos_control(self, **kw):
        """Change the PAN-OS simulation: lock= (an admin name, or None to release),
        fail_next_commit= (job detail lines joined by newlines), commit_polls=,
        start_commit= (an admin whose commit job starts now)."""
        return self.control("POST", "/state/panos", kw)

    def clear_registered_ips(self):
        return self.control("DELETE", "/state/registeredIps")

    def log_entries(self, n=100, path_prefix=None):
        q = "?n=%d" % n
        if path_prefix:
            q += "&path_prefix=" + urllib.parse.quote(path_prefix)
        return self.control("GET", "/log" + q)["value"]

    # -- mail and webhook receivers (tests/mock/mock_smtp.c, mock_hooks.c) --

    def smtp(self):
        """{"starttls_port", "tls_port", "connections", "mode", "messages": [...]}."""
        return self.control("GET", "/smtp")

    def smtp_config(self, **kw):
        """mode= none|refuse|fail|reject|slow, count= (-1: always), delay_ms=, user=,
        password=, clear=True."""
        return self.control("POST", "/smtp", kw)

    def smtp_messages(self):
        return self.smtp()["messages"]

    def set_clock(self, shift_ms):
        """Run the mock's clock shift_ms ahead of the real one (the engine's test clock)."""
        self.control("POST", "/clock", {"shift_ms": shift_ms})

    def hook_config(self, name, secret=None, clear=False):
        return self.control("POST", "/hooks", {"name": name, "secret": secret, "clear": clear})

    def hook_received(self, name):
        return self.control("GET", "/hooks/" + name)["received"]
