-- contain-compromised-user_test.lua: the tests of contain-compromised-user.lua.
local t = kagari.test("contain-compromised-user")

local function signin(user, extra)
  local a = {
    source = "entra.signin", title = "Sign-in with leaked credentials", severity = "high",
    outcome = "succeeded", observables = { { type = "user", value = user, role = "target" } },
  }
  for k, v in pairs(extra or {}) do a[k] = v end
  return a
end

-- Contained: disable first, then revoke, each with the user, and the result says so.
t:answer("graph.disable_user", true)
t:answer("graph.revoke_sessions", true)
t:run(signin("alice@example.jp"))
t:expect_calls({ "graph.disable_user", "graph.revoke_sessions" })
t:expect_call("graph.disable_user", { "alice@example.jp" })
t:expect_call("graph.revoke_sessions", { "alice@example.jp" })
t:expect_result("contained")
t:expect_log("warn", "^contained alice@example%.jp after Sign%-in with leaked credentials$")

-- Disabling refused by the API: nothing else is tried, the error is logged.
t:fail("graph.disable_user",
  "graph.disable_user: HTTP 403 Authorization_RequestDenied: Insufficient privileges")
t:run(signin("bob@example.jp"))
t:expect_calls({ "graph.disable_user" })
t:expect_result("failed")
t:expect_log("error", "could not disable bob@example%.jp .*Authorization_RequestDenied")

-- Throttled while disabling (the engine's retries used up): the same, reported.
t:throttle("graph.disable_user", 30)
t:run(signin("carol@example.jp"))
t:expect_result("failed")
t:expect_log("error", "HTTP 429")

-- Disabled, but revoking timed out: still contained, with a warning.
t:answer("graph.disable_user", true)
t:timeout("graph.revoke_sessions")
t:run(signin("dave@example.jp"))
t:expect_calls({ "graph.disable_user", "graph.revoke_sessions" })
t:expect_result("contained")
t:expect_log("warn", "disabled but could not revoke sessions dave@example%.jp .*timed out")

-- No user in the alert: nothing is called.
t:run(signin("x", { observables = { { type = "ip", value = "203.0.113.9" } } }))
t:expect_calls({})
t:expect_result("skipped")
t:expect_log("warn", "no user observable")

-- The demo alert of the README (a file, as an alert source would send it).
t:answer("graph.disable_user", true)
t:answer("graph.revoke_sessions", true)
t:run("../docs/examples/alert.json")
t:expect_call("graph.disable_user", { "jiro.tanaka@example.jp" })
t:expect_result("contained")

-- Only successful high or critical sign-ins from Entra ID trigger it.
t:run(signin("erin@example.jp", { outcome = "blocked" }), { triggers = false })
t:run(signin("erin@example.jp", { outcome = "attempted" }), { triggers = false })
t:run(signin("erin@example.jp", { severity = "medium" }), { triggers = false })
t:run(signin("erin@example.jp", { source = "defender.alert" }), { triggers = false })
t:run(signin("erin@example.jp", { severity = "critical" }))
t:expect_result("contained")
