intake = { max_conns = "many", max_body = {} }
log = "x"
