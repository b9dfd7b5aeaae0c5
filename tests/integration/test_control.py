"""Running the daemon without its PID: `kagari status`, `kagari reload` and `kagari stop`
through the control socket in the data folder (owner-only); status of a stopped daemon,
a stale socket after kill -9, hostile clients of the socket."""

import json
import os
import socket
import stat
import subprocess
import time

from harness import Daemon, check, expect_accepted, kagari, playbook, sanitizer_env


def ctl(d, *args, rc=0, timeout=90):
    p = subprocess.run([kagari()] + list(args) + ["--config", d.config], capture_output=True,
                       env=sanitizer_env(), timeout=timeout)
    check(rc is None or p.returncode == rc, "kagari %s: exit %d (want %r)\n%s%s"
          % (" ".join(args), p.returncode, rc, p.stdout.decode(), p.stderr.decode()))
    return p


def status_json(d):
    p = ctl(d, "status", "--json")
    try:
        return json.loads(p.stdout.decode())
    except ValueError:
        check(False, "status --json is not JSON: %r" % p.stdout)


def test_status_stopped_and_running():
    with Daemon("ctl-status") as d:
        d.write_playbook("s.lua", playbook("st", "it.st", '    return "ok"'))
        p = ctl(d, "status", rc=3)
        check(b"not running" in p.stdout, "status before start: %r" % p.stdout)
        check(json.loads(ctl(d, "status", "--json", rc=3).stdout) == {"state": "stopped"},
              "status --json of a stopped daemon")
        d.start()
        sock = os.path.join(d.data, "control.sock")
        mode = stat.S_IMODE(os.stat(sock).st_mode)
        check(stat.S_ISSOCK(os.stat(sock).st_mode) and mode == 0o600,
              "control socket mode %o" % mode)
        st = status_json(d)
        check(st["state"] == "running" and st["pid"] == d.proc.pid, "status: %r" % st)
        check(st["version"] and st["up_since"] and st["playbooks"] == 1, "status: %r" % st)
        check(("port=%d" % d.port) in st["listeners"], "listeners: %r" % st["listeners"])
        check(st["control"] == sock and st["data"] == d.data, "control socket: %r" % st)
        check([t["id"] for t in st["tenants"]] == [d.tenant], "tenants: %r" % st["tenants"])
        aid = expect_accepted(d.post({"source": "it.st", "source_id": "1"}), 1)[0]
        d.wait_run_final(aid)
        st = status_json(d)
        t = st["tenants"][0]
        check(t["runs"]["done"] == 1 and t["runs"]["failed"] == 0 and t["alerts"] == 1,
              "runs by state: %r" % t)
        check(st["last_commit"] is not None and st["runs_ready"] == 0, "status: %r" % st)
        text = ctl(d, "status").stdout.decode()
        for want in ("state       running (pid %d)" % d.proc.pid, "up since", "last commit",
                     "listeners", d.tenant, "queue"):
            check(want in text, "status text lacks %r:\n%s" % (want, text))
        d.stop()
        p = ctl(d, "status", rc=3)
        check(b"not running" in p.stdout, "status after stop: %r" % p.stdout)
        check(not os.path.exists(sock), "the control socket outlived the daemon")


def test_reload_through_control():
    with Daemon("ctl-reload") as d:
        d.write_playbook("a.lua", playbook("rl-a", "it.rl", '    return "a"'))
        d.start()
        d.write_playbook("b.lua", playbook("rl-b", "it.rl", '    return "b"'))
        p = ctl(d, "reload")
        check(b"reloaded: 2 playbooks serving" in p.stdout, "reload: %r" % p.stdout)
        aid = expect_accepted(d.post({"source": "it.rl", "source_id": "1"}), 1)[0]
        for pb in ("rl-a", "rl-b"):
            r = d.wait_run_final(aid, playbook=pb)
            check(r["state"] == "done", "%s after reload: %r" % (pb, r))
        d.write_playbook("c.lua", "return playbook { name = ")
        p = ctl(d, "reload")
        check(b"reloaded: 2 playbooks serving, 1 invalid" in p.stdout, "reload: %r" % p.stdout)
        check("event=serve.reload" in d.log() and "event=playbook.invalid" in d.log(),
              "reload not logged")
        d.stop()
        p = ctl(d, "reload", rc=3)
        check(b"not running" in p.stdout, "reload of a stopped daemon: %r" % p.stdout)


def test_stop_drains_like_sigterm():
    """kagari stop: the daemon exits 0 (sanitizers clean), waiting runs stay in the
    database and finish after the next start; stop waits for the exit."""
    with Daemon("ctl-stop") as d:
        d.write_playbook("w.lua", playbook("wait", "it.w", '    sleep(2)\n    return "slept"'))
        d.start()
        aid = expect_accepted(d.post({"source": "it.w", "source_id": "1"}), 1)[0]
        d.wait_run_state(aid, "waiting", timeout=10)
        proc = d.proc
        p = ctl(d, "stop")
        check(("stopped (pid %d)" % proc.pid).encode() in p.stdout, "stop: %r" % p.stdout)
        check(proc.poll() is not None, "kagari stop returned before the daemon exited")
        d.wait_exit(5)  # exit code 0, no sanitizer report
        check("event=serve.draining by=control" in d.log(), "no drain line:\n%s" % d.log())
        check(d.runs()[0]["state"] == "waiting", "the run was not left to resume: %r" % d.runs())
        p = ctl(d, "stop")
        check(b"not running" in p.stdout, "stop of a stopped daemon: %r" % p.stdout)
        d.restart()
        r = d.wait_run_final(aid, timeout=20)
        check(r["state"] == "done", "after the restart: %r" % r)
        d.stop()


def test_stale_socket_after_kill9():
    with Daemon("ctl-kill9") as d:
        d.start()
        d.kill9()
        sock = os.path.join(d.data, "control.sock")
        check(os.path.exists(sock), "kill -9 should leave the socket file")
        p = ctl(d, "status", rc=3)
        check(b"not running" in p.stdout, "status with a stale socket: %r" % p.stdout)
        d.restart()
        check(status_json(d)["pid"] == d.proc.pid, "status after the restart")
        d.stop()


def test_hostile_control_clients():
    """Unknown verbs get an error, overlong or silent clients are dropped, and none of
    them holds the loop: intake and status keep answering meanwhile."""
    with Daemon("ctl-hostile") as d:
        d.start()
        path = os.path.join(d.data, "control.sock")

        def conn():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(path)
            return s

        def exchange(data):
            s = conn()
            try:
                s.sendall(data)
                out = b""
                while True:
                    try:
                        chunk = s.recv(65536)
                    except ConnectionResetError:
                        return out
                    if not chunk:
                        return out
                    out += chunk
            finally:
                s.close()

        check(b"unknown request" in exchange(b"shutdown-now\n"), "unknown verb")
        check(exchange(b"x" * 500) == b"", "an overlong line was answered")
        check(b"unknown request" in exchange(b"status\x1b[2J\n"), "a verb with junk")
        silent = [conn() for _ in range(5)]
        t0 = time.monotonic()
        st = status_json(d)
        check(st["state"] == "running" and time.monotonic() - t0 < 5,
              "status while silent clients are connected")
        expect_accepted(d.post({"source": "it.x", "source_id": "1"}), 1)
        time.sleep(2.5)  # past the 2 s a client has to send its line
        for s in silent:
            s.settimeout(1)
            check(s.recv(10) == b"", "a silent client was not dropped")
            s.close()
        check(status_json(d)["state"] == "running", "status afterwards")
        d.stop()
