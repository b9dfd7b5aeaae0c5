data_dir = "/srv/kagari"
playbook_dir = "pb"
intake = {
  listen = "[::1]:8443", max_body = "8MiB", max_header = 32768,
  max_conns = 64, header_timeout = 5, body_timeout = "1m", idle_timeout = "2m",
  max_queued_runs = 500, tls = { cert = "c.pem", key = "/k.pem" },
}
runs = { memory = "64MiB", instructions = 5e6, timeout = "2h", slice = "10ms" }
log = { level = "debug", format = "json" }
