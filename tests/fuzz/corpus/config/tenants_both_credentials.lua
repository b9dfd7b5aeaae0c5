tenants = { demo = { microsoft = { tenant_id = "t", client_id = "c", client_secret = "s",
  certificate = "c.pem", private_key = "k.pem" } }, b = { microsoft = { tenant_id = "t" } } }
