"""The kagari command line: help, unknown verbs, playbook lint, alert send, run show."""

import json
import os
import re
import sqlite3

from harness import Daemon, check, playbook, run_cli

VERBS = ["init", "serve", "status", "reload", "stop", "tenant", "alert", "alerts", "runs", "run",
         "playbook", "secret"]

GOOD = playbook("cli-good", "it.cli", '    log.info("cli step " .. alert.title)')
BAD = '''return playbook {
  name = "cli-bad",
  on = { source = "it.cli" ,
  run = function(alert) log.info("x") end
}
'''  # the table on line 3 is never closed: a syntax error reported at line 5 or so

BAD_LINE3 = '''return playbook {
  name = "cli-bad",
  on = { source = = "it.cli" },
  run = function(alert) end,
}
'''


def test_help_and_verbs():
    p = run_cli(["--help"], check_rc=0)
    check("usage" in p.stdout.lower(), "kagari --help: %r" % p.stdout)
    for v in VERBS:
        p = run_cli([v, "--help"], check_rc=0)
        check("usage" in (p.stdout + p.stderr).lower(), "kagari %s --help: %r" % (v, p.stdout))
    p = run_cli(["no-such-verb"])
    check(p.returncode != 0, "an unknown verb exited 0")
    check("no-such-verb" in p.stderr, "an unknown verb is not named: %r" % p.stderr)
    p = run_cli([])
    check(p.returncode != 0, "kagari with no verb exited 0")
    p = run_cli(["runs", "--no-such-option"])
    check(p.returncode != 0, "an unknown option exited 0")


def test_init_refuses_bad_tenant_without_leaving_files():
    import tempfile, shutil
    d = tempfile.mkdtemp(prefix="kagari-it-init-")
    try:
        conf = os.path.join(d, "kagari.conf.lua")
        p = run_cli(["init", "--config", conf, "--tenant", "Bad_Id"], check_rc=1)
        check("invalid tenant id" in p.stderr, "init said: %r" % p.stderr)
        check(os.listdir(d) == [], "init left files behind: %r" % os.listdir(d))
        run_cli(["init", "--config", conf, "--tenant", "good-id", "--listen", "127.0.0.1:0"],
                check_rc=0)
        check(os.path.isfile(conf), "the second init wrote no configuration")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_lint():
    with Daemon("lint") as d:
        good = d.write_playbook("good.lua", GOOD)
        bad = d.write_playbook("bad.lua", BAD_LINE3)
        p = run_cli(["playbook", "lint", good], check_rc=0)
        check("cli-good" in p.stdout, "lint of a good file: %r" % p.stdout)
        p = run_cli(["playbook", "lint", bad])
        out = p.stdout + p.stderr
        check(p.returncode != 0, "lint of a file with a syntax error exited 0: %r" % out)
        check("bad.lua:3:" in out, "lint does not report file:line (bad.lua:3:): %r" % out)
        bad2 = d.write_playbook("bad2.lua", BAD)
        p = run_cli(["playbook", "lint", good, bad2])
        out = p.stdout + p.stderr
        check(p.returncode != 0, "lint of good + bad exited 0: %r" % out)
        check("bad2.lua:" in out, "lint names no file:line for bad2.lua: %r" % out)
        notpb = d.write_playbook("notpb.lua", "return 42\n")
        p = run_cli(["playbook", "lint", notpb])
        check(p.returncode != 0, "lint of a file not returning playbook{} exited 0")
        check("notpb.lua" in p.stdout + p.stderr, "lint does not name notpb.lua: %r"
              % (p.stdout + p.stderr))


def test_alert_send_and_run_show():
    with Daemon("cli") as d:
        d.write_playbook("good.lua", GOOD)
        d.start()
        f = os.path.join(d.dir, "alert.json")
        with open(f, "w") as fh:
            json.dump({"source": "it.cli", "source_id": "cli-1", "title": "from-cli",
                       "severity": "high"}, fh)
        url = "http://127.0.0.1:%d/api/v1/alerts" % d.port
        p = run_cli(["alert", "send", "--token", d.token, "--url", url, f], check_rc=0)
        check("202" in p.stdout, "alert send output: %r" % p.stdout)
        rows = d.query("SELECT id FROM alerts WHERE source = 'it.cli' AND source_id = 'cli-1'")
        check(len(rows) == 1, "alert sent by the CLI is not stored: %r" % rows)
        aid = rows[0][0]
        # a wrong token fails with a non-zero exit
        p = run_cli(["alert", "send", "--token", "kg_" + "1" * 64, "--url", url, f])
        check(p.returncode != 0, "alert send with a wrong token exited 0: %r" % p.stdout)
        m = re.search(r"request id ([0-9a-f]{8}-[0-9a-f]{8})", p.stderr)
        check(m is not None, "alert send does not name the refused request: %r" % p.stderr)
        check(("request=%s " % m.group(1)) in d.log() and "reason=unauthorized" in d.log(),
              "no intake.rejected line for request %s" % m.group(1))
        # --token-file: the token read from a file (its first line), not the command line
        tf = os.path.join(d.dir, "token")
        with open(tf, "w") as fh:
            fh.write(d.token + "\n")
        p = run_cli(["alert", "send", "--token-file", tf, "--url", url, f], check_rc=0)
        check('"duplicates":1' in p.stdout, "alert send --token-file: %r" % p.stdout)
        with open(tf, "w") as fh:
            fh.write("\n")
        p = run_cli(["alert", "send", "--token-file", tf, "--url", url, f])
        check(p.returncode != 0 and "no token" in p.stderr, "empty token file: %r" % p.stderr)
        p = run_cli(["alert", "send", "--token-file", tf + ".missing", "--url", url, f])
        check(p.returncode != 0 and "token.missing" in p.stderr, "missing file: %r" % p.stderr)
        # records with --source
        f2 = os.path.join(d.dir, "records.json")
        with open(f2, "w") as fh:
            json.dump({"records": [{"source_id": "r-1"}, {"source_id": "r-2"}]}, fh)
        p = run_cli(["alert", "send", "--token", d.token, "--url", url, "--source",
                     "azure.activity", f2], check_rc=0)
        n = d.query("SELECT COUNT(*) FROM alerts WHERE source = 'azure.activity'")[0][0]
        check(n == 2, "alert send --source stored %d records" % n)

        run = d.wait_run_final(aid, timeout=15)
        check(run["state"] == "done", "run of the CLI alert: %r" % run)
        p = d.cli("run", "show", str(run["id"]), "--tenant", d.tenant)
        out = p.stdout
        check("done" in out and "cli-good" in out, "run show: %r" % out)
        check("journal" in out and "log" in out and "cli step from-cli" in out,
              "run show does not print the journal step: %r" % out)
        p = d.cli("run", "show", "999999", "--tenant", d.tenant, check_rc=None)
        check(p.returncode != 0, "run show of an unknown run exited 0")
        p = d.cli("runs", "--state", "done")
        check(str(run["id"]) in p.stdout and "cli-good" in p.stdout,
              "kagari runs --state done: %r" % p.stdout)
        p = d.cli("runs", "--state", "failed")
        check("cli-good" not in p.stdout, "kagari runs --state failed lists a done run: %r"
              % p.stdout)
        d.stop()


def test_tenant_compact_converts_an_old_database_offline():
    with Daemon("compact") as d:
        # a database made by an earlier release: 4 KiB pages
        os.makedirs(os.path.dirname(d.db_path()), exist_ok=True)
        db = sqlite3.connect(d.db_path())
        db.execute("PRAGMA page_size = 4096")
        db.execute("CREATE TABLE kg_before (x)")
        db.commit()
        db.close()
        d.start()
        check(d.query("PRAGMA page_size")[0][0] == 4096, "the old database changed its pages")
        r = d.post({"source": "it.compact", "source_id": "c-1", "title": "before"})
        check(r.status == 202, "POST before compact: %r" % r)
        p = d.cli("tenant", "compact", d.tenant, check_rc=None)
        check(p.returncode != 0 and "in use" in p.stderr,
              "compact while the daemon runs was not refused: %r %r" % (p.stdout, p.stderr))
        check(d.query("PRAGMA page_size")[0][0] == 4096, "a refused compact changed the file")
        d.stop()
        p = d.cli("tenant", "compact", d.tenant)
        check("4096-byte pages" in p.stdout and "-> 16384-byte pages" in p.stdout,
              "compact output: %r" % p.stdout)
        check(d.query("PRAGMA page_size")[0][0] == 16384, "compact left the page size")
        check(d.query("PRAGMA journal_mode")[0][0] == "wal", "compact left WAL mode")
        p = d.cli("tenant", "compact", "nosuch", check_rc=None)
        check(p.returncode != 0 and "unknown tenant" in p.stderr, "unknown tenant: %r" % p.stderr)
        d.start()
        r = d.post({"source": "it.compact", "source_id": "c-2", "title": "after"})
        check(r.status == 202, "POST after compact: %r" % r)
        rows = d.query("SELECT source_id FROM alerts WHERE source = 'it.compact' ORDER BY id")
        check([x[0] for x in rows] == ["c-1", "c-2"], "alerts across the compact: %r" % rows)
