"""`kagari playbook test`: the runner itself. Passing checks pass; a failing check, a
playbook error, an unscripted connector call, a broken test file, an unknown playbook
and an alert that triggers nothing are each reported as a failure with the test file's
line, and make the exit status 1. No daemon and no network are involved."""

import os
import re
import shutil
import tempfile

from harness import check, run_cli

PLAYBOOK = '''return playbook {
  name = "subject",
  on = { source = "t.subject" },
  run = function(alert)
    if alert.title == "boom" then error("boom: " .. alert.title) end
    local u, err = graph.user(alert:observable("user"))
    log.info("user", u and u.displayName or err)
    if u then graph.disable_user(alert:observable("user")) end
    return { name = u and u.displayName, err = err }
  end,
}
'''

DRY = '''return playbook {
  name = "dry", dry_run = true,
  on = { source = "t.dry" },
  run = function(alert)
    local r = defender.isolate("b4b6f9e2c1d0a8f7e6d5c4b3a2f1e0d9c8b7a6f5", "full", "test")
    return r.dry_run and "would isolate" or "isolated"
  end,
}
'''

ALERT = '{ source = "t.subject", title = "x", observables = { { type = "user", value = "alice@x.jp" } } }'


class Folder:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kagari-it-ptest-")
        self.write("subject.lua", PLAYBOOK)
        self.write("dry.lua", DRY)

    def write(self, name, text):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)
        return os.path.join(self.dir, name)

    def run(self, *files):
        p = run_cli(["playbook", "test"] + [os.path.join(self.dir, f) for f in files]
                    if files else ["playbook", "test", self.dir])
        return p.returncode, p.stdout + p.stderr

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


def summary(out):
    m = re.search(r"playbook tests: (\d+) passed, (\d+) failed", out)
    check(m is not None, "no summary line: %r" % out)
    return int(m.group(1)), int(m.group(2))


def test_passing_checks():
    """A test that scripts answers and checks calls, order, arguments, result and log
    passes: exit 0 and every check counted."""
    with Folder() as f:
        f.write("ok_test.lua", '''local t = kagari.test("subject")
t:answer("graph.user", { displayName = "Alice" })
t:answer("graph.disable_user", true)
t:run(%s)
t:expect_calls({ "graph.user", "graph.disable_user" })
t:expect_call("graph.user", { "alice@x.jp" })
t:expect_call("graph.disable_user", { "alice@x.jp" })
t:expect_result({ name = "Alice" })
t:expect_log("info", "^user Alice$")
local c = t:calls()[1]
t:eq({ c.module, c.fn, c.kind, c.request.method }, { "graph", "user", "graph.user", "GET" }, "call record")
t:match(c.request.url, "/users/alice%%%%40x%%.jp", "the request the connector built")
''' % ALERT)
        rc, out = f.run("ok_test.lua")
        check(rc == 0, "exit %d: %s" % (rc, out))
        check(summary(out) == (8, 0), "counts: %s" % out)
        check("ok %s/ok_test.lua (8 checks)" % f.dir in out, "file line: %s" % out)


def test_failing_check_reported():
    """A check that does not hold is 'not ok' with the test file's line and what was
    expected and found; the other checks still run; exit 1."""
    with Folder() as f:
        path = f.write("bad_test.lua", '''local t = kagari.test("subject")
t:answer("graph.user", { displayName = "Alice" })
t:answer("graph.disable_user", true)
t:run(%s)
t:expect_result({ name = "Bob" })
t:expect_call("graph.revoke_sessions")
t:expect_calls({ "graph.disable_user", "graph.user" })
t:expect_log("warn", "nothing")
t:eq(1, 2, "one is two")
t:expect_result({ name = "Alice" })
''' % ALERT)
        rc, out = f.run("bad_test.lua")
        check(rc == 1, "exit %d: %s" % (rc, out))
        check(summary(out) == (2, 5), "counts: %s" % out)
        for line, text in ((5, 'result {"name":"Bob"}, got {"name":"Alice"}'),
                           (6, "call graph.revoke_sessions (in order): not made; calls: "
                               "graph.user, graph.disable_user"),
                           (7, 'calls ["graph.disable_user","graph.user"], made: '
                               '["graph.user","graph.disable_user"]'),
                           (8, 'log warn "nothing": not logged; lines: ["info user Alice"]'),
                           (9, "one is two: got 1, expected 2")):
            check(re.search(r"^not ok \d+ - %s:%d: %s$" % (re.escape(path), line,
                                                            re.escape(text)), out, re.M),
                  "line %d not reported as %r: %s" % (line, text, out))
        check("not ok %s (5 of 7 checks failed)" % path in out, "file summary: %s" % out)


def test_playbook_error_reported():
    """A playbook that raises fails its run: reported at the t:run line with the error
    and the playbook's own line; a test that expects the failure passes."""
    with Folder() as f:
        path = f.write("err_test.lua", '''local t = kagari.test("subject")
t:run { source = "t.subject", title = "boom" }
t:run({ source = "t.subject", title = "boom" }, { fails = true })
t:expect_error("subject:5: boom: boom")
''')
        rc, out = f.run("err_test.lua")
        check(rc == 1, "exit %d: %s" % (rc, out))
        check(summary(out) == (2, 1), "counts: %s" % out)
        check(re.search(r"^not ok 1 - %s:2: run of subject failed: subject:5: boom: boom"
                        % re.escape(path), out, re.M), "error not reported: %s" % out)


def test_unscripted_call_reported():
    """A connector call the test gave no answer for is a failure naming the call, its
    arguments and how to script it; the playbook gets nil, message and goes on."""
    with Folder() as f:
        path = f.write("unscripted_test.lua", '''local t = kagari.test("subject")
t:run(%s)
t:expect_result({ err = "playbook test: no answer scripted for graph.user" })
''' % ALERT)
        rc, out = f.run("unscripted_test.lua")
        check(rc == 1, "exit %d: %s" % (rc, out))
        check(re.search(r'^not ok 1 - %s:2: unscripted call graph.user \["alice@x.jp"\]: no '
                        r'answer given \(t:answer\("graph.user", \.\.\.\)\)$' % re.escape(path),
                        out, re.M), "unscripted call not reported: %s" % out)
        check(summary(out) == (2, 1), "counts: %s" % out)


def test_broken_tests_reported():
    """A test file with a syntax error or a runtime error, an unknown playbook name, an
    invalid alert, and an alert that triggers nothing: each a failure with its line."""
    with Folder() as f:
        syn = f.write("syntax_test.lua", 'local t = kagari.test("subject")\nt:run(\n')
        rt = f.write("runtime_test.lua", 'local t = kagari.test("subject")\nlocal x = nil\nx.y = 1\n')
        unk = f.write("unknown_test.lua", 'local t = kagari.test("no-such-playbook")\n')
        inv = f.write("invalid_test.lua", '''local t = kagari.test("subject")
t:run { source = "t.subject", severity = "extreme" }
t:run { source = "t.other", title = "x" }
t:run({ source = "t.other", title = "x" }, { triggers = false })
''')
        rc, out = f.run()
        check(rc == 1, "exit %d: %s" % (rc, out))
        check(re.search(r"^not ok \d+ - %s: .*syntax_test.lua:3: unexpected symbol near <eof>"
                        % re.escape(syn), out, re.M), "syntax error: %s" % out)
        check(re.search(r"^not ok \d+ - %s: .*runtime_test.lua:3: attempt to index a nil value"
                        % re.escape(rt), out, re.M), "runtime error: %s" % out)
        check(re.search(r"^not ok \d+ - %s: .*no playbook named 'no-such-playbook' in"
                        % re.escape(unk), out, re.M), "unknown playbook: %s" % out)
        check(re.search(r"^not ok \d+ - %s:2: run of subject: alert: severity: expected one of"
                        % re.escape(inv), out, re.M), "invalid alert: %s" % out)
        check(re.search(r"^not ok \d+ - %s:3: run of subject: the alert does not trigger "
                        r"playbook subject" % re.escape(inv), out, re.M), "no trigger: %s" % out)
        check(summary(out)[1] == 5, "counts: %s" % out)


def test_dry_run_and_clock():
    """A dry-run playbook's outside calls are recorded with dry_run and need no answer
    (the driver's own dry run); now() and sleep() follow the test clock."""
    with Folder() as f:
        f.write("dry_test.lua", '''local t = kagari.test("dry")
t:run { source = "t.dry", title = "x" }
t:expect_result("would isolate")
local c = t:expect_call("defender.isolate", { "b4b6f9e2c1d0a8f7e6d5c4b3a2f1e0d9c8b7a6f5", "full", "test" })
t:eq(c and c.dry_run, true, "recorded as a dry run")
t:eq(c and c.result.request.method, "POST", "with the request that would have been sent")
''')
        f.write("clock.lua", '''return playbook { name = "clock", on = { source = "t.clock" },
  run = function() local a = now(); sleep(90); return now() - a end }
''')
        f.write("clock_test.lua", '''local t = kagari.test("clock")
t:clock_set("2026-01-01T00:00:00Z")
t:run { source = "t.clock" }
t:expect_result(90)
t:eq(t:now(), 1767225690, "the clock moved by the sleep")
t:run({ title = "an alert that names no source" }, { source = "t.clock" })
''')
        rc, out = f.run()
        check(rc == 0, "exit %d: %s" % (rc, out))
        check(summary(out) == (9, 0), "counts: %s" % out)


def test_no_tests_is_a_failure():
    """A folder without any *_test.lua fails rather than pass with nothing checked."""
    d = tempfile.mkdtemp(prefix="kagari-it-ptest-empty-")
    try:
        p = run_cli(["playbook", "test", d])
        out = p.stdout + p.stderr
        check(p.returncode == 1, "exit %d: %s" % (p.returncode, out))
        check("no playbook tests (*_test.lua) in %s" % d in out, out)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_default_folder_from_config():
    """Without a path, the tests of the configuration's playbook folder are run (the
    daemon itself is not started and does not load the test files as playbooks)."""
    from harness import Daemon
    with Daemon("ptest-config") as d:
        d.write_playbook("subject.lua", PLAYBOOK)
        d.write_playbook("subject_test.lua", '''local t = kagari.test("subject")
t:fail("graph.user", "graph.user: HTTP 404 Request_ResourceNotFound: gone")
t:run(%s)
t:expect_result({ err = "graph.user: HTTP 404 Request_ResourceNotFound: gone" })
''' % ALERT)
        p = d.cli("playbook", "test", check_rc=0)
        out = p.stdout + p.stderr
        check(summary(out) == (2, 0), "counts: %s" % out)
        check("subject_test.lua (2 checks)" in out, out)
        d.start()
        check("subject_test" not in d.log() and "playbooks.loaded count=1" in d.log(),
              "the daemon loaded the test file: %s" % d.log())
        d.stop()
