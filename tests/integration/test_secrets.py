"""Connector credentials at rest: `kagari init` makes a 0600 key file, `kagari secret
encrypt` turns a secret into an enc:v1 value, the daemon decrypts it at start, and a
tampered value stops the start with a clear error instead of running with garbage."""

import os
import stat

from harness import Daemon, TestFailure, check, run_cli

TENANT_BLOCK = """
tenants = { t1 = { microsoft = {
    tenant_id = "11111111-2222-3333-4444-555555555555",
    client_id = "66666666-7777-8888-9999-000000000000",
    client_secret = "%s",
} } }
"""


def test_secret_encrypt_and_start():
    with Daemon("secrets") as d:
        key = os.path.join(d.dir, "secret.key")
        check(os.path.isfile(key), "kagari init made no secret.key")
        mode = stat.S_IMODE(os.stat(key).st_mode)
        check(mode == 0o600, "secret.key mode %o" % mode)

        p = run_cli(["secret", "encrypt", "--config", d.config], input="client-secret-value-42\n",
                    check_rc=0)
        enc = p.stdout.strip()
        check(enc.startswith("enc:v1:") and "client-secret-value-42" not in enc,
              "encrypt printed %r" % enc)
        again = run_cli(["secret", "encrypt", "--config", d.config],
                        input="client-secret-value-42\n", check_rc=0).stdout.strip()
        check(again != enc, "two encryptions of one secret are identical (no nonce?)")
        run_cli(["secret", "encrypt", "--config", d.config], input="", check_rc=1)

        base = open(d.config).read()
        with open(d.config, "w") as f:
            f.write(base + TENANT_BLOCK % enc)
        d.start()
        check("client-secret-value-42" not in d.log(), "the secret reached the log")
        d.stop()

        # One flipped character: authentication fails, the daemon refuses to start.
        body = enc[len("enc:v1:"):]
        flipped = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
        with open(d.config, "w") as f:
            f.write(base + TENANT_BLOCK % ("enc:v1:" + flipped))
        try:
            d.start(timeout=15)
            check(False, "the daemon started with a tampered secret")
        except TestFailure as e:
            check("exited" in str(e), "unexpected start failure: %s" % e)
        check("serve.failed" in d.log(), "no serve.failed line for the tampered secret")
