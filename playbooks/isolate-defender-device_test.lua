-- isolate-defender-device_test.lua: the tests of isolate-defender-device.lua (and of the
-- library it shares, lib/soc.lua).
local t = kagari.test("isolate-defender-device")

local function detection(host, extra)
  local a = {
    source = "defender.alert", title = "Credential theft tool on a workstation",
    severity = "high", outcome = "succeeded",
    observables = { { type = "host", value = host, role = "compromised" },
                    { type = "user", value = "jiro.tanaka@example.jp" } },
  }
  for k, v in pairs(extra or {}) do a[k] = v end
  return a
end

-- Isolated: the machine is found, isolated selectively with a comment naming the alert,
-- and the isolation confirmed.
t:answer("defender.machine", { id = "1e5bc9d7e413ddd7902c2932e418702b84d0cc07", computerDnsName = "ws0142.example.jp" })
t:answer("defender.isolate", { id = "act-1", status = "Pending" })
t:answer("defender.wait_action", { id = "act-1", status = "Succeeded" })
t:run(detection("ws0142.example.jp"))
t:expect_calls({ "defender.machine", "defender.isolate", "defender.wait_action" })
t:expect_call("defender.machine", { "ws0142.example.jp" })
t:expect_call("defender.isolate", { "1e5bc9d7e413ddd7902c2932e418702b84d0cc07", "selective",
  "kagari: [defender.alert/high] Credential theft tool on a workstation "
    .. "(users: jiro.tanaka@example.jp; hosts: ws0142.example.jp)" })
t:expect_call("defender.wait_action", { "act-1", { timeout = 600 } })
t:expect_result("isolated")
t:expect_log("warn", "^isolated ws0142%.example%.jp Succeeded$")

-- A protected host (lib/soc.lua): nothing is called, an analyst decides.
t:run(detection("dc01.example.jp"))
t:expect_calls({})
t:expect_result("needs analyst")

-- Defender refuses the isolation: reported, no wait.
t:answer("defender.machine", { id = "1e5bc9d7e413ddd7902c2932e418702b84d0cc07" })
t:fail("defender.isolate", "defender.isolate: HTTP 400 InvalidRequest: machine is offline")
t:run(detection("ws0142.example.jp"))
t:expect_no_call("defender.wait_action")
t:expect_result("failed")
t:expect_log("error", "isolation refused ws0142%.example%.jp .*offline")

-- Not confirmed in time: pending, with a warning.
t:answer("defender.machine", { id = "1e5bc9d7e413ddd7902c2932e418702b84d0cc07" })
t:answer("defender.isolate", { id = "act-2" })
t:fail("defender.wait_action", "timeout")
t:run(detection("ws0142.example.jp"))
t:expect_result("isolation pending")

-- Only successful high or critical Defender alerts trigger it.
t:run(detection("ws0142.example.jp", { outcome = "blocked" }), { triggers = false })
t:run(detection("ws0142.example.jp", { severity = "medium" }), { triggers = false })
t:run(detection("ws0142.example.jp", { source = "entra.signin" }), { triggers = false })
