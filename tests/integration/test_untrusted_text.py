"""Text a playbook controls (log lines, error messages, journal values) reaches the log
and the terminal escaped: no raw control bytes, DEL, C1 controls, U+2028/U+2029 or
invalid UTF-8."""

import json
import subprocess

from harness import Daemon, check, expect_accepted, kagari, playbook, sanitizer_env

# ESC sequences (clear screen, set title), DEL, C1 CSI and NEL, CR, the line and paragraph
# separators and a byte that is not UTF-8.
NASTY = r'"ctl \27[2J\27]0;owned\7 del \127 c1 \u{9b}31m \u{85} cr \r ls \u{2028} ps \u{2029} bad \255 end"'

BODY = "    log.info(%s)\n    error(%s, 0)" % (NASTY, NASTY)


def unsafe_bytes(data, allow=b"\n"):
    """Why data (bytes) could drive a terminal, or None."""
    for b in data:
        if (b < 0x20 and bytes([b]) not in allow) or b == 0x7F:
            return "raw control byte 0x%02x" % b
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return "invalid UTF-8: %s" % e
    for ch in text:
        if 0x80 <= ord(ch) <= 0x9F or ch in "\u2028\u2029":
            return "raw U+%04X" % ord(ch)
    return None


def cli_bytes(d, *args):
    p = subprocess.run([kagari()] + list(args) + ["--config", d.config], capture_output=True,
                       env=sanitizer_env(), timeout=60)
    check(p.returncode == 0, "kagari %s: exit %d: %r" % (" ".join(args), p.returncode, p.stderr))
    return p.stdout


def test_run_show_and_log_escape_control_text():
    with Daemon("untrusted-text") as d:
        d.write_playbook("nasty.lua", playbook("nasty", "it.nasty", BODY))
        d.start()
        aid = expect_accepted(d.post({"source": "it.nasty", "source_id": "n-1"}), 1)[0]
        run = d.wait_run_final(aid, timeout=15)
        check(run["state"] == "failed", "the run did not fail: %r" % run)
        out = cli_bytes(d, "run", "show", str(run["id"]), "--tenant", d.tenant)
        why = unsafe_bytes(out, allow=b"\n\t")
        check(why is None, "run show printed %s: %r" % (why, out))
        check(b"\\x1b[2J" in out and b"\\u009b" in out and b"\\u2028" in out,
              "run show does not show the escapes: %r" % out)
        out = cli_bytes(d, "runs", "--tenant", d.tenant)
        why = unsafe_bytes(out)
        check(why is None, "runs printed %s: %r" % (why, out))
        for args in (("run", "show", str(run["id"]), "--json"), ("runs", "--json")):
            out = cli_bytes(d, *(args + ("--tenant", d.tenant)))
            why = unsafe_bytes(out, allow=b"\n")
            check(why is None, "%s printed %s: %r" % (" ".join(args), why, out))
            json.loads(out.decode().splitlines()[0])  # still JSON, the same text
        shown = json.loads(cli_bytes(d, "run", "show", str(run["id"]), "--json",
                                     "--tenant", d.tenant).decode())
        check("\u009b" in json.dumps(shown["error"]) or "\x9b" in shown["error"],
              "the JSON error lost its text: %r" % shown["error"][:200])
        d.stop()
        with open(d.log_path, "rb") as f:
            log = f.read()
        why = unsafe_bytes(log)
        check(why is None, "the daemon's log has %s" % why)
        check(b"event=playbook.log" in log and b"\\x1b[2J" in log, "no escaped playbook.log line")


def test_playbook_folder_loads_only_regular_files():
    import os
    with Daemon("pbfolder") as d:
        secret = os.path.join(d.dir, "secret.txt")
        with open(secret, "w") as f:
            f.write("api_key = SUPERSECRET-VALUE-42\n")
        outside = os.path.join(d.dir, "outside.lua")
        with open(outside, "w") as f:
            f.write(playbook("outside", "it.pb", '    log.info("outside ran")'))
        os.symlink(secret, os.path.join(d.pbdir, "secret.lua"))
        os.symlink(outside, os.path.join(d.pbdir, "outside.lua"))
        os.symlink(d.dir, os.path.join(d.pbdir, "dir.lua"))
        os.mkfifo(os.path.join(d.pbdir, "fifo.lua"))
        d.write_playbook("good.lua", playbook("good", "it.pb", '    log.info("good ran")'))
        d.start()
        aid = expect_accepted(d.post({"source": "it.pb", "source_id": "p-1"}), 1)[0]
        runs = d.wait_run_final(aid, timeout=15)
        names = sorted(r["playbook"] for r in d.runs_of_alert(aid))
        check(names == ["good"], "runs of the alert: %r" % names)
        d.stop()
        with open(d.log_path, "rb") as f:
            log = f.read()
        check(b"SUPERSECRET" not in log and b"api_key" not in log,
              "a refused file's content reached the log")
        for name in (b"secret.lua", b"outside.lua", b"dir.lua", b"fifo.lua"):
            check(name + b": refused" in log, "%r is not reported as refused" % name)
