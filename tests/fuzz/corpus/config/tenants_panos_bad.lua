tenants = { fw = { panos = { url = "https://fw", never_block = { "10.0.0.0/33", [3] = "x",
  "1.2.3.4/8", "::1::", "" }, tag = "a'b", block_timeout = "40d", edl_user = "e" },
  other = { panos = { never_block = "10.0.0.0/8", vsys = "v']" } } } }
