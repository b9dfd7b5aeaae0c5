"""peopleapi.py: helpers for the people's API tests: a daemon with the api listener over
HTTPS, users made with `kagari user add`, TOTP codes, and a client that keeps its session
cookie and CSRF token."""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import sqlite3
import ssl
import struct
import subprocess
import time

from harness import Daemon, check, run_cli

PASSWORD = "correct horse battery staple"


def make_cert(folder):
    key = os.path.join(folder, "api-key.pem")
    cert = os.path.join(folder, "api-cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1,IP:::1"], check=True, capture_output=True,
                   timeout=60)
    os.chmod(key, 0o600)
    return cert, key


def api_daemon(name, listen="127.0.0.1:0", extra="", tenant="t1"):
    """A daemon whose api block serves HTTPS on listen, with a cheap Argon2id cost."""
    d = Daemon(name, tenant=tenant)
    d.api_cert, d.api_key = make_cert(d.dir)
    set_api(d, listen, extra)
    return d


def set_api(d, listen, extra=""):
    """(Re)write the api block at the end of the configuration."""
    with open(d.config) as f:
        text = f.read()
    text = text.split("\n-- people's API\n")[0]
    text += ("\n-- people's API\napi = { listen = %s, cert_file = %s, key_file = %s,"
             " password_memory = \"1MiB\", password_passes = 1, %s }\n"
             % (json.dumps(listen), json.dumps(d.api_cert), json.dumps(d.api_key), extra))
    with open(d.config, "w") as f:
        f.write(text)


def api_port(d):
    m = re.findall(r"\bapi_port=(\d+)", d.log())
    check(m, "no api_port in the ready line:\n%s" % d.log()[-2000:])
    return int(m[-1])


class User:
    def __init__(self, name, secret, codes):
        self.name = name
        self.secret = secret
        self.codes = codes
        self.last_step = 0


def add_user(d, name, *roles, password=PASSWORD, check_rc=0):
    args = ["user", "add", name, "--config", d.config]
    for r in roles:
        args += ["--role", r]
    p = run_cli(args, input=password + "\n", check_rc=check_rc)
    if check_rc != 0:
        return p
    m = re.search(r"TOTP secret \(shown once\): ([A-Z2-7]+)", p.stdout)
    check(m is not None, "user add printed no secret: %r" % p.stdout)
    codes = re.findall(r"^  ([a-z2-7]{5}-[a-z2-7]{5})$", p.stdout, re.M)
    check(len(codes) == 10, "user add printed %d recovery codes" % len(codes))
    check("otpauth://totp/kagari:%s?secret=%s" % (name, m.group(1)) in p.stdout,
          "no otpauth URI: %r" % p.stdout)
    return User(name, m.group(1), codes)


def hotp(secret, counter):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 15
    v = struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF
    return "%06d" % (v % 1000000)


def peek_code(u):
    """(code, step): a code the server accepts now, of the oldest step in its window
    (current -1..+1) newer than the last one used, waiting for the next step when all
    three are used. Not marked as used."""
    while True:
        cur = int(time.time()) // 30
        step = max(u.last_step + 1, cur - 1)
        if step <= cur + 1:
            return hotp(u.secret, step), step
        time.sleep(0.5)


def next_code(u):
    """The same, marked as used (the caller's login will use it)."""
    code, step = peek_code(u)
    u.last_step = step
    return code


class Api:
    """HTTPS requests to the people's API with a session cookie kept like a browser."""

    def __init__(self, port, host="127.0.0.1", cafile=None):
        self.port = port
        self.host = host
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.cookie = None
        self.csrf = None
        self.token = None

    def request(self, method, path, body=None, headers=None, csrf=True, cookie=True):
        h = dict(headers or {})
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        if cookie and self.cookie:
            h["Cookie"] = self.cookie
        if csrf and self.csrf and method not in ("GET", "HEAD"):
            h["X-CSRF-Token"] = self.csrf
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=30)
        try:
            c.request(method, path, data, h)
            r = c.getresponse()
            raw = r.read()
            headers = r.getheaders()
        finally:
            c.close()
        resp = Resp(r.status, headers, raw)
        sc = resp.header("Set-Cookie")
        if sc:
            m = re.match(r"(__Host-kagari_session=[^;]*)", sc)
            self.cookie = m.group(1) if m and not m.group(1).endswith("=") else None
        return resp

    def login(self, u, password=PASSWORD, code=None, recovery=None):
        body = {"user": u.name, "password": password}
        step = None
        if recovery is not None:
            body["recovery_code"] = recovery
        elif code is not False:
            step = None
            if code is None:
                code, step = peek_code(u)
            body["totp"] = code
        r = self.request("POST", "/api/v1/login", body)
        if r.status == 200:
            self.csrf = r.json["csrf_token"]
            if code and step is not None:
                u.last_step = step
        return r

    def get(self, path):
        return self.request("GET", path)


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return "HTTP %d %r" % (self.status, self.body[:300])


def audit_rows(d, action=None):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(d.data, "control.db"), uri=True,
                         timeout=10)
    try:
        sql = "SELECT tenant, actor, action, target, outcome, address, detail FROM audit"
        args = ()
        if action:
            sql += " WHERE action = ?"
            args = (action,)
        return db.execute(sql + " ORDER BY id", args).fetchall()
    finally:
        db.close()
