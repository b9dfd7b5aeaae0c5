"""Playbook libraries (lib/NAME.lua, require "NAME") in the real daemon: shared by
playbooks, part of their versions across reloads and kill -9, read-only, and a broken
library fails only the playbooks that use it. And the deep lint and the annotations
from the command line."""

import os
import re
import signal

from connhelp import ConnEnv, effects, expect_ok, lua_str
from harness import (Daemon, check, expect_accepted, journal_summary, log_step, playbook,
                     run_cli, wait_for)
from mockctl import ALICE, JIRO

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write_lib(d, name, text):
    libdir = os.path.join(d.pbdir, "lib")
    os.makedirs(libdir, exist_ok=True)
    path = os.path.join(libdir, name + ".lua")
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    return path


def lib_text(tag):
    # A large constant table, built once per version: each run only looks it up.
    return ('local M = { tag = %r, allow = {} }\n'
            'for i = 1, 20000 do M.allow["user" .. i .. "@example.jp"] = true end\n'
            'function M.allowed(u) return M.allow[u] == true end\n'
            'return M\n' % tag)


USES_LIB = '''    local h = require "helpers"
    log.info("first " .. h.tag .. " " .. tostring(h.allowed(alert.source_id)))
    sleep(tonumber(alert.title) or 0)
    log.info("second " .. h.tag)'''


def loaded_version(d, name):
    m = re.findall(r"event=playbook\.loaded\b.*name=%s\b.*version=([0-9a-f]{12})" % name, d.log())
    return m[-1] if m else None


def reload(d):
    n = d.log().count("event=playbooks.loaded")
    d.signal(signal.SIGHUP)
    wait_for(lambda: d.log().count("event=playbooks.loaded") > n, 10, "playbooks.loaded")


def test_library_shared_and_versioned():
    """Two playbooks share a library; editing it makes a new version of both, while a run
    in flight keeps the library it started with."""
    with Daemon("libs") as d:
        write_lib(d, "helpers", lib_text("v1"))
        # 1000 instructions per run: building the library's table takes far more, so the
        # runs pass only because it is built once, outside them.
        for name in ("a", "b"):
            d.write_playbook(name + ".lua", playbook("lib-" + name, "it.lib", USES_LIB)
                             .replace("  run = ", "  instructions = 1000,\n  run = "))
        d.start()
        va1, vb1 = loaded_version(d, "lib-a"), loaded_version(d, "lib-b")
        check(va1 and vb1, "versions not logged:\n%s" % d.log()[-2000:])
        # Many runs, each of them allowed few instructions: the 20000-entry table is not
        # built by the runs.
        ids = []
        for i in range(5):
            ids.append(expect_accepted(d.post({"source": "it.lib", "source_id": "user%d@example.jp"
                                               % (i + 1), "title": "0"}), 1)[0])
        for a in ids:
            for name in ("lib-a", "lib-b"):
                r = d.wait_run_final(a, playbook=name)
                check(r["state"] == "done", "run %r" % r)
        j = d.run_show(d.runs_of_alert(ids[0])[0]["id"])["journal"]
        check(journal_summary(j)[0] == log_step("first v1 true"), "journal %r" % j)

        slow = expect_accepted(d.post({"source": "it.lib", "source_id": "slow",
                                       "title": "2.5"}), 1)[0]
        d.wait_run_state(slow, "waiting", playbook="lib-a", timeout=10)
        write_lib(d, "helpers", lib_text("v2"))
        reload(d)
        va2, vb2 = loaded_version(d, "lib-a"), loaded_version(d, "lib-b")
        check(va2 != va1 and vb2 != vb1,
              "editing the library made no new versions: %s %s -> %s %s" % (va1, vb1, va2, vb2))
        new = expect_accepted(d.post({"source": "it.lib", "source_id": "new", "title": "0"}),
                              1)[0]
        r = d.wait_run_final(new, playbook="lib-a")
        check(r["state"] == "done", "new run %r" % r)
        check(journal_summary(d.run_show(r["id"])["journal"])
              == [log_step("first v2 false"), ("sleep", {"seconds": 0}), log_step("second v2")],
              "new run's journal %r" % d.run_show(r["id"])["journal"])
        r = d.wait_run_final(slow, playbook="lib-a", timeout=15)
        check(r["state"] == "done", "run in flight %r" % r)
        check(journal_summary(d.run_show(r["id"])["journal"])
              == [log_step("first v1 false"), ("sleep", {"seconds": 2.5}), log_step("second v1")],
              "the run in flight changed library: %r" % d.run_show(r["id"])["journal"])
        d.stop()


TIMEOUT_KILL = 90


def test_library_survives_kill9():
    """A run resumed after kill -9 uses the library stored with its version, even when the
    file changed or went away meanwhile."""
    with Daemon("libkill") as d:
        write_lib(d, "helpers", lib_text("stored"))
        d.write_playbook("a.lua", playbook("lib-k", "it.libk", USES_LIB))
        d.start()
        a = expect_accepted(d.post({"source": "it.libk", "source_id": "k1", "title": "3"}), 1)[0]
        d.wait_run_state(a, "waiting", timeout=10)
        os.remove(os.path.join(d.pbdir, "lib", "helpers.lua"))
        d.kill9()
        d.restart()
        r = d.wait_run_final(a, timeout=20)
        check(r["state"] == "done", "resumed run %r\n%s" % (r, d.log()[-2000:]))
        check(journal_summary(d.run_show(r["id"])["journal"])
              == [log_step("first stored false"), ("sleep", {"seconds": 3}),
                  log_step("second stored")],
              "resumed run's journal %r" % d.run_show(r["id"])["journal"])
        # The playbook itself no longer loads (its library is gone), and says why.
        check(re.search(r"playbook\.invalid .*helpers", d.log()) is not None,
              "no playbook.invalid for the missing library:\n%s" % d.log()[-2000:])
        d.stop()


test_library_survives_kill9.TIMEOUT = TIMEOUT_KILL


def test_broken_library_fails_only_its_users():
    """Syntax errors, runtime errors, cycles and missing libraries name the file and line
    and leave the playbooks that do not use them serving; a run that tries to change a
    library fails alone."""
    with Daemon("libbad") as d:
        write_lib(d, "syntax", "local x = \nreturn {\n")
        write_lib(d, "ca", 'local b = require "cb"\nreturn {}\n')
        write_lib(d, "cb", 'local a = require "ca"\nreturn {}\n')
        write_lib(d, "ok", "return { list = { 1, 2 } }\n")
        d.write_playbook("s.lua", playbook("uses-syntax", "it.bad", '    require "syntax"'))
        d.write_playbook("c.lua", playbook("uses-cycle", "it.bad", '    require "ca"'))
        d.write_playbook("m.lua", playbook("uses-missing", "it.bad", '    require "nothere"'))
        d.write_playbook("w.lua", playbook("writes-lib", "it.bad",
                                           '    local ok = require "ok"\n    ok.list[3] = 3'))
        d.write_playbook("fine.lua", playbook("fine", "it.bad", '    log.info("fine")'))
        d.start()
        log = d.log()
        for needle in ("lib/syntax.lua:2:", "require cycle: ca -> cb -> ca",
                       "require 'nothere': no library"):
            check(needle in log, "no %r in the log:\n%s" % (needle, log[-3000:]))
        a = expect_accepted(d.post({"source": "it.bad", "source_id": "b1"}), 1)[0]
        runs = {r["playbook"]: r for r in
                (d.wait_run_final(a, playbook=p) for p in ("fine", "writes-lib"))}
        check(runs["fine"]["state"] == "done", "fine: %r" % runs["fine"])
        check(runs["writes-lib"]["state"] == "failed"
              and "read-only" in (runs["writes-lib"].get("error") or ""),
              "writes-lib: %r" % runs["writes-lib"])
        check(len(d.runs_of_alert(a)) == 2, "runs %r" % d.runs_of_alert(a))
        check(d.get("/healthz").status == 200, "healthz")
        d.stop()


def test_lint_cli_and_annotations():
    """The shipped playbooks lint clean; a folder with mistakes of each class gives
    file:line:col for each and exit 1; annotations are written for editors."""
    p = run_cli(["playbook", "lint", os.path.join(ROOT, "playbooks")])
    check(p.returncode == 0, "the shipped playbooks do not lint clean:\n%s%s"
          % (p.stdout, p.stderr))
    with Daemon("lintdeep") as d:
        write_lib(d, "h", "local n = 0\nlocal M = {}\nfunction M.f() n = n + 1 end\nreturn M\n")
        write_lib(d, "unused", "return { f = function() return graph.usr('x') end }\n")
        d.write_playbook("bad_test.lua", "this is a playbook test, not a playbook\n")
        path = d.write_playbook("bad.lua", '''local h = require "h"
return playbook {
  name = "bad", on = { source = "entra.signn" },
  run = function(alert)
    defender.isolate_machine(alert:observable("host"))
    graph.disable_user("x")
    sleep(1, 2)
    return undefined_global
  end,
}
''')
        p = run_cli(["playbook", "lint", d.pbdir])
        out = p.stdout
        check(p.returncode == 1, "lint exit %d:\n%s" % (p.returncode, out))
        for needle in ("bad.lua:3:34: on.source: 'entra.signn'",
                       "bad.lua:5:14: unknown field 'isolate_machine' of connector 'defender'",
                       "bad.lua:6:11: the result of graph.disable_user is not checked",
                       "bad.lua:7:5: sleep takes 1 argument",
                       "bad.lua:8:12: undeclared global 'undefined_global'",
                       "lib/h.lua:3:16: a library function assigns 'n'",
                       "lib/unused.lua:1:38: unknown field 'usr' of connector 'graph'"):
            check(needle in out, "no %r in:\n%s" % (needle, out))
        check("bad_test.lua" not in out, "lint took a playbook test for a playbook:\n%s" % out)
        p = run_cli(["playbook", "lint", os.path.join(d.pbdir, "lib", "h.lua")])
        check(p.returncode == 1 and "h.lua:3:16: a library function assigns 'n'" in p.stdout,
              "a library file linted alone: %d %s" % (p.returncode, p.stdout))
        p = run_cli(["playbook", "lint", os.path.join(ROOT, "playbooks", "lib", "soc.lua")],
                    check_rc=0)
        check("soc.lua: ok: library" in p.stdout, "a good library: %r" % p.stdout)
        p = run_cli(["playbook", "lint", "--config", d.config])
        check(p.returncode == 1 and "bad.lua:5:14: unknown field 'isolate_machine'" in p.stdout
              and "lib/unused.lua:1:38:" in p.stdout,
              "lint of the configured folder: %d %s" % (p.returncode, p.stdout))
        p = run_cli(["playbook", "lint", "--source", "entra.signn", path])
        check("entra.signn" not in p.stdout, "--source did not add the name:\n%s" % p.stdout)
        p = run_cli(["playbook", "annotations", d.pbdir], check_rc=0)
        with open(os.path.join(d.pbdir, ".luals", "kagari.lua")) as f:
            text = f.read()
        check(text.startswith("---@meta") and "function defender.isolate(" in text,
              "annotations: %r" % text[:300])
        check(os.path.isfile(os.path.join(d.pbdir, ".luarc.json")), "no .luarc.json")


def test_connectors_take_library_tables():
    """A library's read-only tables passed to connectors (a list of ids, headers, a body)
    reach the API as they read: C code sees a plain copy, not an empty table."""
    lib = ('return { vip = { %s, %s }, headers = { ["X-Trace"] = "kagari" },\n'
           '         body = { indicatorValue = "x", tags = { "a", "b" } } }\n'
           % (lua_str(JIRO[0]), lua_str(ALICE[0])))
    body = """
    local soc = require "soc"
    rec("confirm", idp.confirm_compromised(soc.vip))
    rec("post", http.request{ method = "POST", url = alert.raw.mock .. "/api/indicators",
        headers = soc.headers, body = soc.body })
    """
    with ConnEnv("libtables", {"libtables": body}, libs={"soc": lib}) as env:
        out, run, journal = env.fire("libtables", raw={"mock": env.m.base_url}, timeout=60)
        check(expect_ok(out, "confirm") is True, "confirm: %r" % out["confirm"])
        req = effects(journal, "idp.confirm_compromised")[0]["request"]
        check(req["body"] == {"userIds": [JIRO[0], ALICE[0]]}, "confirm body: %r" % req)
        check(expect_ok(out, "post")["status"] in (200, 201, 401), "post: %r" % out["post"])
        post = effects(journal, "http.request")[0]["request"]
        check(post["body"] == {"indicatorValue": "x", "tags": ["a", "b"]},
              "journaled body: %r" % post)


test_connectors_take_library_tables.TIMEOUT = 90
