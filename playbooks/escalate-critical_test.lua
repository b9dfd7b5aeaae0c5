-- escalate-critical_test.lua: the tests of escalate-critical.lua. The test engine's tenant
-- has no http allow list, so the page is refused before any request is made ("host not
-- allowed"), as it is for a tenant whose allow list lacks the paging service.
local t = kagari.test("escalate-critical")

local function critical(extra)
  local a = {
    source = "defender.alert", title = "Ransomware behaviour detected", severity = "critical",
    outcome = "succeeded", observables = { { type = "host", value = "ws0142.example.jp" } },
  }
  for k, v in pairs(extra or {}) do a[k] = v end
  return a
end

-- The paging service is not in the allow list: nothing is sent, the run says so.
t:run(critical())
t:expect_result("page failed")
t:expect_log("error", "^could not page host not allowed$")
t:expect_no_log("warn", "^paged")

-- Attempted attacks page too; blocked ones and lower severities do not.
t:run(critical({ outcome = "attempted" }))
t:expect_result("page failed")
t:run(critical({ outcome = "blocked" }), { triggers = false })
t:run(critical({ severity = "high" }), { triggers = false })
