"""The intake over HTTPS: with intake.tls set, alerts are accepted over TLS with a
certificate the client verifies, and plain HTTP on that port gets nowhere."""

import http.client
import json
import os
import socket
import ssl
import subprocess

from harness import Daemon, check, expect_accepted, playbook


def make_cert(folder):
    key = os.path.join(folder, "key.pem")
    cert = os.path.join(folder, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    return cert, key


def test_intake_over_tls():
    with Daemon("tls") as d:
        cert, key = make_cert(d.dir)
        with open(d.config, "a") as f:
            f.write('\nintake = { listen = "127.0.0.1:0", tls = { cert = "%s", key = "%s" } }\n'
                    % (cert, key))
        d.write_playbook("tls.lua", playbook("tls-log", "it.tls", '    log.info("over tls")'))
        d.start()
        check("tls=1" in d.log(), "the listener does not say it serves TLS")

        ctx = ssl.create_default_context(cafile=cert)
        c = http.client.HTTPSConnection("127.0.0.1", d.port, context=ctx, timeout=10)
        body = json.dumps({"source": "it.tls", "source_id": "t-1", "title": "over TLS"})
        c.request("POST", "/api/v1/alerts", body,
                  {"Authorization": "Bearer " + d.token, "Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        check(r.status == 202, "HTTPS POST: %d %r" % (r.status, data))
        ids = json.loads(data)["ids"]
        c.close()
        run = d.wait_run_final(ids[0])
        check(run["state"] == "done", "run over TLS: %r" % run)

        # A client that does not trust the certificate is refused by its own check.
        bad = http.client.HTTPSConnection("127.0.0.1", d.port,
                                          context=ssl.create_default_context(), timeout=10)
        try:
            bad.request("GET", "/healthz")
            bad.getresponse()
            check(False, "an unverified certificate was accepted by the default context")
        except ssl.SSLError:
            pass
        finally:
            bad.close()

        # Plain HTTP on the TLS port gets no HTTP answer.
        s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            got = b""
            try:
                got = s.recv(100)
            except (ConnectionResetError, socket.timeout):
                pass
            check(not got.startswith(b"HTTP/1.1 200"), "plain HTTP answered on the TLS port")
        finally:
            s.close()

        # The daemon still serves TLS clients afterwards.
        c = http.client.HTTPSConnection("127.0.0.1", d.port, context=ctx, timeout=10)
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        check(r.status == 200, "healthz over TLS after a plain client: %d" % r.status)
        c.close()
        d.stop()
