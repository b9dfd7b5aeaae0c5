tenants = { demo = { microsoft = { tenant_id = "t", client_id = "c", client_secret = "s",
  graph = "http://graph.microsoft.com//", authority = "https://[::1", defender = "https://h:99999/" } } }
connectors = { proxy = "socks5://u:p@[::1]:1080/x", max_attempts = 21, timeout = "-1s" }
