"""A playbook can ask for a dry run of its own (playbook{ dry_run = true }): its
connector calls are recorded as "would do" and nothing is sent, also when its run is
resumed from the database after a crash."""

import signal

from connhelp import ConnEnv
from harness import check, expect_accepted, wait_for

DRY_PLAYBOOK = """
return playbook {
  name = "dry-pb",
  on = { source = "it.dry.pb" },
  dry_run = true,
  run = function(alert)
    log.info("before")
    sleep(2)
    local r = graph.disable_user("alice@example.jp")
    log.info("dry", json.encode(r))
  end,
}
"""


def test_playbook_dry_run_survives_restart():
    with ConnEnv("drypb", {}) as env:
        env.d.write_playbook("dry.lua", DRY_PLAYBOOK)
        env.d.signal(signal.SIGHUP)
        wait_for(lambda: "name=dry-pb" in env.d.log(), 10, "dry-pb loaded")
        aid = expect_accepted(env.d.post({"source": "it.dry.pb", "source_id": "d1"}), 1)[0]
        env.d.wait_run_state(aid, ("waiting",), timeout=20)
        env.d.kill9()
        env.d.restart()
        run = env.d.wait_run_final(aid, timeout=30)
        check(run["state"] == "done", "run: %r" % run)
        journal = env.d.run_show(run["id"])["journal"]
        calls = [e for e in journal if e["kind"] == "graph.disable_user"]
        check(len(calls) == 1 and isinstance(calls[0]["result"], dict)
              and calls[0]["result"].get("dry_run") is True,
              "the disable call was not a dry run: %r" % calls)
        c = env.m.counters()
        check(c["requests_total"] == 0, "the mock was called: %r" % c)
