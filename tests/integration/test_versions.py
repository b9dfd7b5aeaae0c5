"""Playbook versions: a run keeps the version it started with across a SIGHUP reload,
while new alerts get the new version."""

import re
import signal

from harness import (Daemon, check, expect_accepted, journal_summary, log_step, playbook,
                     sha256_file, wait_for)


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
