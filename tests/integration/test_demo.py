"""make run's demo (scripts/demo.sh) in a scratch copy of the project's files: the
instructions come after the setup and are printed on every run, the token lives in an
owner-only var/intake.token, the shipped playbooks are copied into var/playbooks, and the
README's commands show the demo run's result and the alert that started it. Ctrl-C
stops the engine (drained) and the mock."""

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile

import harness
from harness import check, sanitizer_env, wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


class Demo:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kagari-it-demo-")
        shutil.copytree(os.path.join(ROOT, "playbooks"), os.path.join(self.dir, "playbooks"))
        os.makedirs(os.path.join(self.dir, "docs"))
        shutil.copytree(os.path.join(ROOT, "docs", "examples"),
                        os.path.join(self.dir, "docs", "examples"))
        os.makedirs(os.path.join(self.dir, "scripts"))
        shutil.copy(os.path.join(ROOT, "scripts", "demo.sh"), os.path.join(self.dir, "scripts"))
        self.bin = os.path.join(harness.BUILD, "kagari")
        self.env = dict(sanitizer_env(), KAGARI_DEMO_PORT=str(free_port()),
                        KAGARI_DEMO_MOCK_PORT=str(free_port()),
                        KAGARI_DEMO_API_PORT=str(free_port()))
        self.proc = None
        self.out = os.path.join(self.dir, "out.txt")

    def start(self):
        f = open(self.out, "wb")
        self.proc = subprocess.Popen(["sh", "scripts/demo.sh", self.bin], cwd=self.dir,
                                     stdout=f, stderr=subprocess.STDOUT, env=self.env,
                                     start_new_session=True)
        f.close()
        return wait_for(lambda: "Stop with Ctrl-C" in self.text() and self.text(), 60,
                        "the demo's instructions:\n" + self.text())

    def text(self):
        with open(self.out, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def run(self, cmdline):
        """A command line exactly as the instructions print it."""
        return subprocess.run(cmdline, shell=True, cwd=self.dir, capture_output=True,
                              env=self.env, timeout=60)

    def ctrl_c(self):
        os.killpg(self.proc.pid, signal.SIGINT)
        rc = self.proc.wait(30)
        self.proc = None
        return rc

    def close(self):
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def instruction_lines(text):
    return [ln.strip() for ln in text.splitlines() if ln.strip().startswith(harness.BUILD)]


def test_demo_twice():
    demo = Demo()
    try:
        text = demo.start()
        setup, _, instructions = text.partition("kagari demo:")
        check("created the demo in var/" in setup and "copied the shipped playbooks" in setup,
              "setup lines: %r" % setup)
        check("level=" not in text, "log lines in the demo's terminal output:\n%s" % text)
        tok = os.path.join(demo.dir, "var", "intake.token")
        check(stat.S_IMODE(os.stat(tok).st_mode) == 0o600, "token file mode")
        token = open(tok).read().strip()
        check(re.match(r"^kg_[0-9a-f]{64}$", token), "token file: %r" % token)
        check(token not in text, "the token itself is printed")
        conf = open(os.path.join(demo.dir, "var", "kagari.conf.lua")).read()
        check('playbook_dir = "playbooks"' in conf, "playbook folder: not var/playbooks")
        check(sorted(os.listdir(os.path.join(demo.dir, "var", "playbooks"))) ==
              sorted(os.listdir(os.path.join(demo.dir, "playbooks"))), "playbooks not copied")
        send, runs, show = (instruction_lines(instructions)[i] for i in (0, 1, 2))
        check("alert send" in send and "--token-file var/intake.token" in send, send)
        p = demo.run(send)
        check(p.returncode == 0 and b'"accepted":1' in p.stdout, "send: %r %r" % (p.stdout, p.stderr))
        # The README's two commands: the runs with their results, then the alert.
        out = wait_for(lambda: (lambda o: o if o.count(" done ") == 2 else None)(
            demo.run(runs).stdout.decode()), 20, "two finished runs")
        check('"contained"' in out and '"triaged"' in out, "runs: %r" % out)
        p = demo.run(show)
        out = p.stdout.decode()
        check(p.returncode == 0 and "entra.signin" in out and "jiro.tanaka@example.jp" in out and
              "contain-compromised-user" in out and '"contained"' in out, "alert show: %r" % out)
        # Ctrl-C: the engine drains, the mock stops, nothing is left running
        demo.ctrl_c()
        check(not listening(int(demo.env["KAGARI_DEMO_MOCK_PORT"])), "the mock outlived Ctrl-C")
        log = open(os.path.join(demo.dir, "var", "kagari.log")).read()
        check("event=serve.stopped" in log, "the engine did not stop cleanly:\n%s" % log[-2000:])
        rep = harness.sanitizer_report(log)
        check(rep is None, "sanitizer report: %s" % rep)
        p = demo.run("%s status --config var/kagari.conf.lua" % demo.bin)
        check(p.returncode == 3, "the engine is still running after Ctrl-C")
        # A second run: the same instructions, the same token still works
        os.truncate(demo.out, 0)
        text2 = demo.start()
        check("created the demo" not in text2 and "copied" not in text2, "setup again: %r" % text2)
        check(instruction_lines(text2) == instruction_lines(text), "other instructions:\n%s"
              % text2)
        check(open(tok).read().strip() == token, "the token changed")
        with open(os.path.join(demo.dir, "docs", "examples", "alert2.json"), "w") as f:
            f.write('{"source": "entra.signin", "source_id": "second", "severity": "low",'
                    ' "title": "second run"}')
        p = demo.run(send.replace("alert.json", "alert2.json"))
        check(p.returncode == 0 and b'"accepted":1' in p.stdout, "send again: %r" % p.stdout)
        demo.ctrl_c()
        check(not listening(int(demo.env["KAGARI_DEMO_PORT"])), "the engine outlived Ctrl-C")
    finally:
        demo.close()


test_demo_twice.TIMEOUT = 120
