tenants = { a = { http = { allow = { "ok.example", "https://x/", "a b", 7, nil, "c", x = 1 } } },
  b = { http = { allow = "one" } }, c = { http = 1 }, d = { dry_run = "no" } }
