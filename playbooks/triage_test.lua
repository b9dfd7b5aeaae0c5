-- triage_test.lua: the tests of triage.lua (run by `kagari playbook test playbooks`).
local t = kagari.test("triage")

-- A successful high-severity sign-in: logged with its observables, and flagged.
t:run {
  source = "entra.signin", title = "Sign-in from an anonymous IP", severity = "high",
  outcome = "succeeded",
  observables = {
    { type = "user", value = "alice@example.jp" },
    { type = "ip", value = "203.0.113.7" },
    { type = "ip", value = "198.51.100.2" },
  },
}
t:expect_result("triaged")
t:expect_log("info", "^entra%.signin %[high%] Sign%-in from an anonymous IP outcome=succeeded "
  .. "users=alice@example%.jp ips=203%.0%.113%.7,198%.51%.100%.2$")
t:expect_log("warn", "^likely compromise: Sign%-in from an anonymous IP$")
t:expect_calls({}) -- triage only looks: no connector is called

-- The same alert blocked, or attempted: logged, not flagged.
for _, outcome in ipairs({ "blocked", "attempted", "unknown" }) do
  t:run { source = "entra.signin", title = "Risky sign-in", severity = "critical", outcome = outcome }
  t:expect_result("triaged")
  t:expect_log("info", "outcome=" .. outcome .. " users= ips=$")
  t:expect_no_log("warn", "likely compromise")
end

-- Succeeded but only medium: not flagged (the threshold is high).
t:run { source = "defender.alert", title = "Suspicious PowerShell", severity = "medium",
        outcome = "succeeded", observables = { { type = "host", value = "pc-042" } } }
t:expect_log("info", "^defender%.alert %[medium%]")
t:expect_no_log("warn", "likely compromise")

-- Every severity triggers it, informational included.
t:run { source = "azure.activity", title = "Role assignment", severity = "informational" }
t:expect_result("triaged")
