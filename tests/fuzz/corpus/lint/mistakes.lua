local h = require "helpers"
local g = graph
return playbook {
  name = "bad",
  on = { source = { "entra.signn", "azure.*", "nope.*" } },
  run = function(alert)
    local user = alert:observabel("user")
    defender.isolate_machine(user)
    graph.disable_user(user)
    g.revoke_sessions(user)
    local ok, err = graph.user(user, "extra")
    if alert.source == "defender.alrt" then return end
    local x = undefined_thing + 1
    sleep()
    defender:isolate(user)
    local name = "helpers"
    require(name)
    log.info(string.fromat("%s", user))
    graph.disable_user(user) -- lint: ignore
  end,
}
