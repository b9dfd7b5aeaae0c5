tenants = { t1 = { notify = { webhooks = { [1] = { name = "a" }, [3] = {}, x = 1 },
  chain = { "nope", { name = "n\r\nBcc: x", email = "a@b@c" } } } } }
