tenants = { fw = { panos = { url = "https://192.0.2.1", api_key = "k", tag = "kagari-block",
  never_block = { "10.0.0.0/8", "2001:db8::/32", "192.0.2.53", "::1" }, block_timeout = "1d",
  max_blocks_per_hour = 5, batch_window = 0.5, commit_poll = "2s", vsys = "vsys2",
  edl_user = "edl", edl_password = "p" } } }
