"""Sandbox escapes and resource attacks, one playbook each: every run fails with an error
that says why, the daemon stays healthy and a benign run afterwards completes."""

import time

from harness import Daemon, FINAL_STATES, check, expect_accepted, log_step, journal_summary, playbook

CONFIG = 'runs = { instructions = 5000000, memory = "64MiB" }'

READ_ONLY = ("read-only", "read only", "readonly", "frozen", "protected", "immutable")

# name -> (run body, substrings the error must contain: each item is a string or a
# tuple of alternatives)
ATTACKS = {
    "load-binary": ('    local f = load(string.char(27) .. "LuaT" .. string.rep("\\0", 60))\n'
                    '    f()', ["undeclared global 'load'"]),
    "string-dump": ('    local s = string.dump(function() return 1 end)\n'
                    '    log.info(#s)', ["dump"]),
    "io-open": ('    local f = io.open("/etc/passwd")\n    log.info(f:read("a"))',
                ["undeclared global 'io'"]),
    "os-execute": ('    os.execute("exit 0")', ["undeclared global 'os'"]),
    # require loads only the playbook's own lib/NAME.lua files, by a name found when the
    # playbook is loaded (a constant one would fail the load): no C module, no path.
    "require": ('    local ffi = require(("f"):rep(2) .. "i")\n    log.info(ffi)',
                ["require 'ffi': no library"]),
    "require-path": ('    local p = require(("../"):rep(3) .. "etc/passwd")\n    log.info(p)',
                     ["not a library name"]),
    "debug-registry": ('    local r = debug.getregistry()\n    log.info(r)',
                       ["undeclared global 'debug'"]),
    "collectgarbage": ('    collectgarbage("stop")', ["undeclared global 'collectgarbage'"]),
    "busy-loop": ('    while true do end', ["instruction"]),
    "pcall-loop": ('    while true do pcall(function() while true do end end) end',
                   ["instruction"]),
    "string-rep": ('    local s = string.rep("x", 2^30)\n    log.info(#s)', ["memory"]),
    "recursion": ('    local function f(n) return f(n + 1) + 1 end\n    f(1)',
                  # the state's memory cap is shared by the concurrent attacks: the
                  # recursion may hit it before Lua's stack limit
                  [("stack overflow", "not enough memory")]),
    "string-setmetatable": ('    setmetatable(string, {})', ["metatable"]),
    "string-assign": ('    string.x = 1\n    log.info(string.x)', [READ_ONLY]),
    "string-rawset": ('    rawset(string, "x", 1)\n    log.info(string.x)', [READ_ONLY]),
    "gc-metamethod": ('    setmetatable({}, {__gc = function() end})', ["__gc"]),
    "string-metatable": ('    getmetatable("").__index = {upper = function() return "pwned" end}',
                         [READ_ONLY]),
    "coroutine": ('    local co = coroutine.create(function() end)',
                  ["undeclared global 'coroutine'"]),
    "concat-bomb": ('    local s = "x"\n    for i = 1, 40 do s = s .. s end\n    log.info(#s)',
                    ["memory"]),
    "pattern-bomb": ('    local s = string.rep("a", 3000)\n'
                     '    log.info(string.find(s, string.rep("a*", 300) .. "b"))',
                     [("pattern", "instruction")]),
}

BENIGN = playbook("benign", "sb.benign", '''    local t = {}
    for i = 1, 1000 do t[i] = string.rep("y", 10) end
    log.info("benign " .. ("ok"):upper() .. " " .. #t .. " " .. tostring(string.x))''')


def test_sandbox_escapes():
    with Daemon("sandbox", CONFIG) as d:
        for name, (body, _) in ATTACKS.items():
            d.write_playbook("%s.lua" % name, playbook("attack-" + name, "sb." + name, body))
        d.write_playbook("benign.lua", BENIGN)
        d.start()
        alert_of = {}
        with d.client() as c:
            for name in ATTACKS:
                alert_of[name] = expect_accepted(
                    c.post({"source": "sb." + name, "source_id": "a-" + name}), 1)[0]

        # all attack runs end within one deadline; collect every problem, then report
        deadline = time.monotonic() + 45
        final = {}
        while time.monotonic() < deadline and len(final) < len(ATTACKS):
            for name, aid in alert_of.items():
                if name in final:
                    continue
                rs = d.runs_of_alert(aid)
                if len(rs) == 1 and rs[0]["state"] in FINAL_STATES:
                    final[name] = rs[0]
            time.sleep(0.1)
        problems = []
        for name, (_, words) in ATTACKS.items():
            r = final.get(name)
            if r is None:
                problems.append("%s: run not finished after 45s (%r)"
                                % (name, d.runs_of_alert(alert_of[name])))
                continue
            err = r["error"] or ""
            if r["state"] != "failed":
                problems.append("%s: run ended %s, expected failed (error %r)"
                                % (name, r["state"], err))
                continue
            for w in words:
                alts = w if isinstance(w, tuple) else (w,)
                if not any(a.lower() in err.lower() for a in alts):
                    problems.append("%s: error does not say %s: %r"
                                    % (name, " or ".join(map(repr, alts)), err[:300]))
        r = d.get("/healthz")
        if r.status != 200:
            problems.append("/healthz after the attacks: %r" % r)
        else:
            aid = expect_accepted(d.post({"source": "sb.benign", "source_id": "after"}), 1)[0]
            run = d.wait_run_final(aid, timeout=20)
            if run["state"] != "done":
                problems.append("benign run after the attacks ended %s: %r"
                                % (run["state"], run["error"]))
            else:
                j = d.run_show(run["id"])["journal"]
                if journal_summary(j) != [log_step("benign OK 1000 nil")]:
                    problems.append("benign run journal %r (globals polluted?)"
                                    % journal_summary(j))
        check(not problems, "%d sandbox problems:\n" % len(problems) + "\n".join(problems))
        d.stop()


test_sandbox_escapes.TIMEOUT = 90
