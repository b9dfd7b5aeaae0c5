return playbook{ name="ty", on={}, run=function(alert)
  sleep("5m")
  sleep("5")
  local a, e = defender.isolate("x", "ful", "c")
  local b, e2 = defender.isolate("x", "full")
  local c, e3 = graph.user(nil)
  local d, e4 = graph.user(42)
  local f, e5 = defender.find_machine("host")
  log.info({}, 1, nil)
  return a, b, c, d, f, e, e2, e3, e4, e5
end }
