#!/usr/bin/env python3
"""run.py: the portal's browser tests. Usage: run.py BUILD_DIR

Starts the real daemon (people's API over HTTPS on loopback, the stateful API mock for
the connector calls), prepares users, tenants, alerts and pending approvals, then runs
tests/browser/portal.mjs: playwright-core driving Debian's chromium headless against the
portal. Ends with "browser: N passed, N failed". Screenshots are kept as artefacts in
BUILD_DIR/browser-artefacts (not committed).

playwright-core is installed (pinned) into BUILD_DIR/../browser by `make test`; chromium
is the Debian package. Either missing is a failure, never a skip."""

import getpass
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.dont_write_bytecode = True

import harness  # noqa: E402
from connhelp import ConnEnv  # noqa: E402
from harness import expect_accepted, wait_for  # noqa: E402
from mockctl import ADMIN, ALICE, JIRO  # noqa: E402
from peopleapi import PASSWORD, Api, add_user, api_port, make_cert, next_code  # noqa: E402
from test_escalation import BASE, chain_block  # noqa: E402

# The approval playbook: the exact call it will make, why, then the call once approved.
APPROVE = """
    local r = alert.raw
    local d = approve{ title = "Disable " .. r.upn, detail = "risky sign-in from " .. r.ip,
                       effects = { {"graph.disable_user", r.upn} }, approvers = 1,
                       timeout = "30m", default = "reject" }
    if d.approved then
      graph.disable_user(r.upn)
    end
"""

# The playbook of the Playbooks section's tests, deployed twice with `kagari playbook
# deploy`: markup in a comment and a string must show as text in its highlighted source.
PBVIEW = """-- Look the account up <img src=x onerror="window.__xss=9"> (portal test)
return playbook {
  name = "pb-view",
  description = "Look up the user of a sign-in",
  on = { source = "it.portal.pbview", min_severity = "low" },
  run = function(alert)
    local note = "<script>window.__xss = 10</script>"
    local u, err = graph.user(%s)
    log.info(%s, note, err)
  end,
}
"""


def pbview_source(version):
    """pb-view's text: the second version uses a library too (lib/pvhelp.lua)."""
    msg = json.dumps("looked up v%d" % version)
    return PBVIEW % (json.dumps(ADMIN[1]), msg + (' .. require("pvhelp").tag' if version == 2
                                                  else ""))


def deploy_pbview(d, version, folder):
    """Deploy version (1 or 2) of pb-view with the CLI; returns the version hash."""
    path = os.path.join(folder, "pb-view.lua")
    if version == 2:
        os.makedirs(os.path.join(d.pbdir, "lib"), exist_ok=True)
        with open(os.path.join(d.pbdir, "lib", "pvhelp.lua"), "w") as f:
            f.write('-- a helper of pb-view\nreturn { tag = "!" }\n')
    with open(path, "w") as f:
        f.write(pbview_source(version))
    p = harness.run_cli(["playbook", "deploy", path, "--config", d.config], check_rc=0)
    assert "reloaded" in p.stdout, p.stdout
    rows = d.query("SELECT version FROM playbook_deploys WHERE name = 'pb-view'"
                   " ORDER BY id DESC LIMIT 1")
    return rows[0][0]


def pbview_run(d, n):
    aid = expect_accepted(d.post({"source": "it.portal.pbview", "source_id": "pv%d" % n,
                                  "severity": "high", "title": "pb-view %d" % n}), 1)[0]
    return d.wait_run_final(aid)["id"]

# Settings and dashboard (settings.mjs): an urgent escalation left waiting, its subject
# holding markup.
ESCALATE = """
    escalate{ level = "critical", reason = "compromise", subject = alert.raw.subject }
"""
ESC_SUBJECT = '侵害の疑い <img src=x onerror="window.__xss=9">'

# Markup in every field a person reads: the title, the raw record, an observable.
XSS = ('<img src=x onerror="window.__xss=1;alert(1)">"><script>window.__xss=2;alert(2)'
       '</script><svg onload=alert(3)>')


def main(argv):
    if len(argv) != 2:
        print("usage: run.py BUILD_DIR", file=sys.stderr)
        return 2
    build = os.path.abspath(argv[1])
    harness.BUILD = build
    pw = os.path.join(os.path.dirname(build), "browser")
    chromium = shutil.which("chromium")
    failures = []
    if not os.path.isdir(os.path.join(pw, "node_modules", "playwright-core")):
        failures.append("playwright-core is not installed in %s (make test installs it)" % pw)
    if chromium is None:
        failures.append("chromium is not installed (make test installs the Debian package)")
    if failures:
        for f in failures:
            print("not ok setup: %s" % f)
        print("browser: 0 passed, 1 failed")
        return 1
    art = os.path.join(build, "browser-artefacts")
    os.makedirs(art, exist_ok=True)
    certdir = tempfile.mkdtemp(prefix="kagari-browser-")
    cert, key = make_cert(certdir)
    extra = ('api = { listen = "127.0.0.1:0", cert_file = %s, key_file = %s, '
             'password_memory = "1MiB", password_passes = 1 }\n'
             'escalation = { base_url = %s }\n'
             % (json.dumps(cert), json.dumps(key), json.dumps(BASE)))
    rc = 1
    try:
        with ConnEnv("browser", {"appr": APPROVE, "esc": ESCALATE}, extra_config=extra,
                     run_timeout="1h",
                     tenant_extra=lambda m: chain_block(m, ("1h", "1h", "1h"))) as env:
            d = env.d
            # A second customer, with an alert of its own.
            d.stop()
            d.add_tenant("t2")
            d.start()
            t2_alert = expect_accepted(d.post({"source": "it.portal.other", "source_id": "o1",
                                               "title": "t2 secret alert"}, tenant="t2"), 1)[0]
            ana = add_user(d, "ana", "t1:analyst")
            aud = add_user(d, "aud", "t1:auditor")
            # The auditor's enrolment is confirmed here; ana enrols in the browser.
            a = Api(api_port(d), cafile=cert)
            code = next_code(aud)
            r = a.login(aud, code=code)
            assert r.status == 200, r
            xss_id = expect_accepted(d.post({
                "source": "it.portal.xss", "source_id": "x1", "title": XSS,
                "severity": "high", "outcome": "succeeded", "time": "2026-12-01T00:30:00Z",
                "observables": [{"type": "url", "value": "javascript:alert(4)",
                                 "role": "<b onmouseover=alert(5)>r</b>"},
                                {"type": "user", "value": XSS}],
                "note": XSS}), 1)[0]
            expect_accepted(d.post([
                {"source": "it.portal.lvl", "source_id": "l1", "severity": "low",
                 "title": "low one"},
                {"source": "it.portal.lvl", "source_id": "l2", "severity": "critical",
                 "title": "critical one"}]), 2)
            # The Playbooks section: an engineer, and pb-view deployed twice (one run of
            # the first version, two of the second).
            eng = add_user(d, "eng", "t1:engineer")
            code = next_code(eng)
            r = Api(api_port(d), cafile=cert).login(eng, code=code)
            assert r.status == 200, r
            pv1 = deploy_pbview(d, 1, certdir)
            pv_runs = [pbview_run(d, 1)]
            pv2 = deploy_pbview(d, 2, certdir)
            pv_runs += [pbview_run(d, 2), pbview_run(d, 3)]
            appr_alert = env.post("appr", {"upn": ALICE[1], "ip": "203.0.113.7"})
            aud_alert = env.post("appr", {"upn": JIRO[1], "ip": "198.51.100.9"})
            for aid in (appr_alert, aud_alert):
                d.wait_run_state(aid, ("waiting",))
            # The settings tests' people: a tenant admin and an analyst, both enrolled.
            adm = add_user(d, "adm", "t1:admin")
            ana2 = add_user(d, "ana2", "t1:analyst")
            for u in (adm, ana2):
                r = Api(api_port(d), cafile=cert).login(u, code=next_code(u))
                assert r.status == 200, r
            esc_alert = env.post("esc", {"subject": ESC_SUBJECT})
            d.wait_run_state(esc_alert, ("waiting",))
            cfg = {
                "url": "https://127.0.0.1:%d" % api_port(d),
                "intake": "http://127.0.0.1:%d/api/v1/alerts" % d.port, "token": d.token,
                "chromium": chromium,
                "artefacts": art,
                "password": PASSWORD,
                "ana": {"name": ana.name, "recovery": ana.codes[0], "recovery2": ana.codes[1]},
                "aud": {"name": aud.name, "secret": aud.secret, "last_step": aud.last_step},
                "xss_title": XSS, "xss_alert": xss_id, "t2_alert": t2_alert,
                "approval_title": "Disable " + ALICE[1], "approval_upn": ALICE[1],
                "approval_alert": appr_alert, "aud_title": "Disable " + JIRO[1],
                "eng": {"name": eng.name, "secret": eng.secret, "last_step": eng.last_step},
                "pbview": {"v1": pv1, "v2": pv2, "runs": pv_runs, "deployer": getpass.getuser(),
                           "source2": pbview_source(2)},
                "adm": {"name": adm.name, "secret": adm.secret, "last_step": adm.last_step},
                "ana2": {"name": ana2.name, "secret": ana2.secret, "last_step": ana2.last_step},
                "esc_subject": ESC_SUBJECT,
            }
            env_vars = dict(os.environ, KAGARI_BROWSER=json.dumps(cfg), PW_DIR=pw)
            # Each script prints "ok"/"not ok" lines and its own count; the sum is the last
            # line, the one the test runner reads.
            passed = failed = 0
            for script in ("portal.mjs", "settings.mjs"):
                p = subprocess.run(["node", os.path.join(HERE, script)], env=env_vars,
                                   timeout=300, stdout=subprocess.PIPE, text=True)
                sys.stdout.write(p.stdout)
                m = re.findall(r"browser: (\d+) passed, (\d+) failed", p.stdout)
                if m:
                    passed += int(m[-1][0])
                    failed += int(m[-1][1])
                if not m or (p.returncode != 0 and int(m[-1][1]) == 0):
                    failed += 1
            rc = 1 if failed else 0
            if rc == 0:
                # The approved call reached the API exactly once; the other was not made.
                c = env.m.counters()["users"]
                if (c.get(ALICE[1], {}).get("disable") != 1 or
                        c.get(JIRO[1], {}).get("disable", 0) != 0):
                    print("not ok mock_counters: %r" % c)
                    failed += 1
                    rc = 1
            print("browser: %d passed, %d failed" % (passed, failed))
    finally:
        shutil.rmtree(certdir, ignore_errors=True)
    return rc


def guarded(argv):
    """main, with a failure of the set-up reported as one failed test."""
    try:
        return main(argv)
    except Exception as e:  # noqa: BLE001 - reported, then counted
        print("not ok setup: %s: %s" % (type(e).__name__, e))
        print("browser: 0 passed, 1 failed")
        return 1


if __name__ == "__main__":
    sys.exit(guarded(sys.argv))
