-- repeat-sign-in_test.lua: run with `kagari playbook test docs/examples/playbooks`.
local t = kagari.test("repeat-sign-in")
t:clock_set("2026-04-01T09:00:00Z")

local function signin(user, title)
  return {
    source = "entra.signin", title = title or "Unfamiliar sign-in properties",
    severity = "medium", outcome = "succeeded",
    observables = { { type = "user", value = user }, { type = "ip", value = "203.0.113.7" } },
  }
end

-- The first alert about alice this hour keeps its severity.
t:run(signin("alice@example.jp"))
t:expect_result({ risk = "medium", reason = "first alert about alice@example.jp this hour" })
t:expect_no_log("warn", "risk raised")
t:expect_state("signins:alice@example.jp", 1)

-- Twenty minutes later another one: raised by one level, and the log says why.
t:clock_advance("20m")
t:run(signin("alice@example.jp", "Atypical travel"))
t:expect_result({ risk = "high",
  reason = "alice@example.jp was seen 1200 s ago in entra.signin: Unfamiliar sign-in properties" })
t:expect_log("warn", "risk raised from medium to high")
t:expect_state("last-risk:alice@example.jp", { risk = "high", alert = 2 })

-- Another user is not affected by alice's alerts.
t:run(signin("bob@example.jp"))
t:eq(t:result().risk, "medium", "bob keeps his severity")

-- Two hours later the hour has passed: alice starts again.
t:clock_advance("2h")
t:run(signin("alice@example.jp"))
t:eq(t:result().risk, "medium", "a new hour, a new count")
t:expect_state("signins:alice@example.jp", 1)

-- Three in the hour: critical whatever the earlier alerts say.
t:clock_advance("1m")
t:run(signin("alice@example.jp"))
t:clock_advance("1m")
t:run(signin("alice@example.jp"))
t:expect_result({ risk = "critical", reason = "3 risky sign-ins of alice@example.jp within the hour" })
t:expect_calls({}) -- memory and alerts are the engine's own: no connector is called
