-- escalator_test.lua: escalate{} in a playbook test. Its steps (escalate.open, the
-- deliveries, escalate.wait) are answered by the test like connector calls; the chain
-- and the templates are the engine's own.
local contacts = {
  { name = "当番", email = "duty@example.jp", webhooks = {}, wait = 600, lang = "ja" },
  { name = "CISO", email = "ciso@example.jp", webhooks = {}, wait = 900, lang = "en" },
}

-- Nobody at the first contact; the second acknowledges.
local t = kagari.test("escalator")
t:answer("escalate.open", { id = 7, expires = 0, rounds = 1, contacts = contacts })
t:answer("notify.email", { message_id = "<m@example.jp>", accepted = true, attempts = 1 })
t:answer("escalate.wait", { acked = false, id = 7, contact = 1 })
t:answer("escalate.wait", { acked = true, id = 7, by = "Tanaka", via = "link",
                            tta_ms = 700000, contact = 2 })
t:run { source = "test.escalate", title = "sign-in from a known bad IP" }
t:expect_calls({ "escalate.open", "notify.email", "escalate.wait", "notify.email",
                 "escalate.wait" })
local first = t:expect_call("notify.email")
t:eq(first.args[1].to, "duty@example.jp", "the first contact first")
t:match(first.args[1].subject, "^【緊急】侵害の疑い", "in Japanese")
local second = t:expect_call("notify.email")
t:eq(second.args[1].to, "ciso@example.jp", "then the second")
t:match(second.args[1].subject, "^%[URGENT%]", "in English")
t:match(second.args[1].body, "kagari escalation ack 7", "no link configured: the CLI named")
t:expect_result({ acked = true, id = 7, by = "Tanaka", via = "link", tta_ms = 700000,
                  contact = 2 })

-- An acknowledgement during the first wait: nobody else is reached.
local t2 = kagari.test("escalator")
t2:answer("escalate.open", { id = 8, expires = 0, rounds = 1, contacts = contacts })
t2:answer("notify.email", { message_id = "<m@example.jp>", accepted = true, attempts = 1 })
t2:answer("escalate.wait", { acked = true, id = 8, by = "Sato", via = "cli", tta_ms = 5,
                             contact = 1 })
t2:run { source = "test.escalate", title = "x" }
t2:expect_calls({ "escalate.open", "notify.email", "escalate.wait" })

-- No chain for the tenant: escalate returns nil and the message.
local t3 = kagari.test("escalator")
t3:answer("escalate.open", function() return nil, "escalate: this tenant has no contact chain" end)
t3:run { source = "test.escalate", title = "x" }
t3:expect_result({ failed = "escalate: this tenant has no contact chain" })
