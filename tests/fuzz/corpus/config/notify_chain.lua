escalation = { base_url = "https://soc.example.jp:8443", link_ttl = "2h" }
tenants = { t1 = { notify = {
  lang = "en",
  smtp = { url = "smtps://mail.example.jp:465", user = "u", password = "p", from = "soc@example.jp", from_name = "篝" },
  webhooks = { { name = "a", kind = "teams", url = "https://h.example.jp/x" },
               { name = "b", kind = "webhook", url = "https://h.example.jp/y", secret = "s" } },
  chain = { { name = "X", email = "x@example.jp", wait = "5m" },
            { name = "Y", webhooks = { "a", "b" }, wait = 60, lang = "ja" } },
  rounds = 3 } } }
