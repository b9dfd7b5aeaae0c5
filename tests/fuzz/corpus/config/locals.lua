local base = "/srv"
data_dir = base .. "/d"
intake = { max_conns = 2 * 512 }
intake.listen = ":80"
_ENV[1] = 2
