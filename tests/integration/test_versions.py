"""Playbook versions: a run keeps the version it started with across a SIGHUP reload,
while new alerts get the new version."""

import os
import re
import signal
import subprocess

from harness import (Daemon, check, expect_accepted, journal_summary, kagari, log_step, playbook,
                     sanitizer_env, sha256_file, wait_for)


def version_text(v, nap):
    return playbook("versioned", "it.version", '''    log.info("text %s " .. alert.source_id)
    sleep(%s)
    log.info("done %s")''' % (v, nap, v))


def test_reload_keeps_running_version():
    with Daemon("versions") as d:
        path = d.write_playbook("versioned.lua", version_text("v1", 2.5))
        hash_v1 = sha256_file(path)
        d.start()
        a1 = expect_accepted(d.post({"source": "it.version", "source_id": "old"}), 1)[0]
        run1 = d.wait_run_state(a1, "waiting", timeout=10)
        path = d.write_playbook("versioned.lua", version_text("v2", 0))
        hash_v2 = sha256_file(path)
        check(hash_v1 != hash_v2, "the two versions hash alike")
        n_loaded = d.log().count("event=playbooks.loaded")
        d.signal(signal.SIGHUP)
        wait_for(lambda: d.log().count("event=playbooks.loaded") > n_loaded, 10,
                 "playbooks.loaded after SIGHUP")
        check(re.search(r"event=playbook\.loaded\b.*name=versioned\b.*version=%s" % hash_v2[:12],
                        d.log()) is not None,
              "the reload did not load version %s:\n%s" % (hash_v2[:12], d.log()[-2000:]))
        a2 = expect_accepted(d.post({"source": "it.version", "source_id": "new"}), 1)[0]
        run2 = d.wait_run_final(a2, timeout=10)
        check(run2["state"] == "done", "new run: %r" % run2)
        run1 = d.wait_run_final(a1, timeout=10)
        check(run1["state"] == "done", "parked run after the reload: %r" % run1)

        old = d.run_show(run1["id"])
        new = d.run_show(run2["id"])
        check(journal_summary(old["journal"])
              == [log_step("text v1 old"), ("sleep", {"seconds": 2.5}), log_step("done v1")],
              "the parked run's journal: %r" % journal_summary(old["journal"]))
        check(journal_summary(new["journal"])
              == [log_step("text v2 new"), ("sleep", {"seconds": 0}), log_step("done v2")],
              "the new run's journal: %r" % journal_summary(new["journal"]))
        check(old["version"].startswith(hash_v1[:12]) and hash_v1.startswith(old["version"]),
              "the parked run's version %r, the file's sha256 was %s" % (old["version"], hash_v1))
        check(new["version"].startswith(hash_v2[:12]) and hash_v2.startswith(new["version"]),
              "the new run's version %r, the file's sha256 is %s" % (new["version"], hash_v2))
        check(d.get("/healthz").status == 200, "healthz after the reload")
        d.stop()


def test_reload_keeps_previous_version_of_broken_file():
    """A reload with a half-saved (broken) playbook file keeps the version that served
    before, instead of silently dropping the playbook."""
    with Daemon("keepprev") as d:
        d.write_playbook("keep.lua", playbook("keep-me", "it.keep", '    log.info("v1 text")'))
        d.start()
        a1 = expect_accepted(d.post({"source": "it.keep", "source_id": "k1"}), 1)[0]
        check(d.wait_run_final(a1)["state"] == "done", "first run")
        with open(os.path.join(d.pbdir, "keep.lua"), "w") as f:
            f.write("return playbook{ name = 'keep-me', on = { source = 'it.keep' },\n")
        d.signal(signal.SIGHUP)
        wait_for(lambda: "playbook.kept_previous" in d.log(), 10, "playbook.kept_previous")
        a2 = expect_accepted(d.post({"source": "it.keep", "source_id": "k2"}), 1)[0]
        r2 = d.wait_run_final(a2)
        check(r2["state"] == "done", "run after the broken reload: %r" % r2)
        j = d.run_show(r2["id"])["journal"]
        check(journal_summary(j) == [log_step("v1 text")], "journal %r" % journal_summary(j))
        d.stop()


def test_one_daemon_per_data_folder():
    """A second serve on the same data folder refuses to start and names the holder."""
    with Daemon("lock") as d:
        d.start()
        p = subprocess.run([kagari(), "serve", "--config", d.config], capture_output=True,
                           text=True, timeout=30, env=sanitizer_env())
        check(p.returncode != 0, "a second serve started on the same data folder")
        check("in use by another kagari serve (pid %d)" % d.proc.pid in p.stderr,
              "second serve said: %r" % p.stderr[-500:])
        r = d.get("/healthz")
        check(r.status == 200, "the first daemon stopped serving: %r" % r)
        d.stop()
