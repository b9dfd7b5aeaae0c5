"""The test clock of a test build (testing = { clock = true }): off unless configured;
moved forward through the control socket; the timers counted in wall-clock time follow
it at once (a sleep of an hour); the shift survives kill -9 and is what the command line
sees; the daemon says loudly that it is on. The loop's stall (for tests of what goes on
while the loop is busy) is refused as well when the test clock is off."""

import json
import time

from harness import Daemon, check, playbook

SLEEP = """
    sleep(3600)
    log.info("woke")
"""


def test_off_unless_configured():
    with Daemon("clock-off") as d:
        d.start()
        r = d.control("clock +60")
        check("test clock is off" in r.get("error", ""), "refused: %r" % r)
        t0 = time.monotonic()
        r = d.control("stall 2000")
        check("test clock is off" in r.get("error", "") and time.monotonic() - t0 < 1.5,
              "a stall was not refused at once: %r" % r)
        check("testclock.stall" not in d.log(), "a refused stall was logged as done")
        check("test_clock_shift_ms" not in d.control("status"), "no shift in the status")
        check("test clock" not in d.cli("status").stdout, "kagari status says nothing")
        check("testclock.enabled" not in d.log(), "nothing said")
        d.stop()


def test_sleep_follows_and_shift_survives_kill9():
    with Daemon("clock-on", config_extra="testing = { clock = true }\n"
                "runs = { timeout = \"1d\" }\n") as d:
        d.write_playbook("sleepy.lua", playbook("sleepy", "it.sleepy", SLEEP))
        d.start()
        check("testclock.enabled" in d.log() and "level=err" in
              [x for x in d.log().splitlines() if "testclock.enabled" in x][0],
              "the daemon says loudly that the clock can be moved")
        for bad in ("clock -5", "clock 5", "clock +x", "clock + 5", "clock +400d"):
            check("error" in d.control(bad), "%s refused" % bad)
        t0 = time.monotonic()
        for bad in ("stall 0", "stall -5", "stall 10001", "stall 5x", "stall x",
                    "stall 99999999999999999999", "stall "):
            check("error" in d.control(bad), "%s refused" % bad)
        check(time.monotonic() - t0 < 2, "a refused stall stalled the loop")
        check(d.control("stall 5").get("stalled_ms") == 5, "a valid stall answered")
        r = d.post({"source": "it.sleepy", "source_id": "s1"})
        aid = r.json["ids"][0]
        d.wait_run_state(aid, "waiting")
        d.advance_clock(1800)
        time.sleep(1.0)
        check(d.runs_of_alert(aid)[0]["state"] == "waiting", "half an hour: still asleep")
        d.kill9()
        d.restart()
        st = d.control("status")
        check(st.get("test_clock_shift_ms") == 1800000, "the shift kept: %r" % st)
        p = d.cli("status")
        check("test clock  ON, the engine's time is 1800 s ahead" in p.stdout,
              "kagari status says so: %s" % p.stdout)
        d.wait_run_state(aid, "waiting")
        time.sleep(1.0)
        check(d.runs_of_alert(aid)[0]["state"] == "waiting", "after the restart: still asleep")
        d.advance_clock(1801)
        run = d.wait_run_final(aid, timeout=10)
        check(run["state"] == "done", "woke after the hour: %r" % run)
        j = d.db_journal(run["id"])
        s = [x for x in j if x["kind"] == "sleep"][0]
        check(3600000 <= s["ended"] - s["started"] <= 3630000,
              "an hour on the engine's clock: %d" % (s["ended"] - s["started"]))
        out = d.cli("escalation", "list", "--json").stdout
        check(json.loads(out) == [], "the command line runs with the shift: %r" % out)
        m = d.metrics()
        check(m.get("kagari_test_clock_shift_seconds") == 3601, "exported: %r"
              % m.get("kagari_test_clock_shift_seconds"))
        d.stop()


test_sleep_follows_and_shift_survives_kill9.TIMEOUT = 120
