-- isolate-defender-device.lua: a high or critical Defender for Endpoint alert whose
-- attack succeeded means the device is likely in an attacker's hands. Find the machine,
-- isolate it from the network (selective: Outlook and Teams keep working, so the user can
-- still be reached), wait for Defender to confirm, and say what was done. Protected hosts
-- are left to an analyst.
local soc = require "soc"

return playbook {
  name = "isolate-defender-device",
  description = "Isolate the device of a successful high-severity Defender alert",
  on = { source = "defender.alert", min_severity = "high", outcome = "succeeded" },
  run = function(alert)
    local host = alert:observable("host")
    if not host then
      log.warn("no host observable: nothing to isolate", soc.summary(alert))
      return "skipped"
    end
    if soc.protected_hosts[host] then
      log.warn("protected host: isolation left to an analyst", host)
      return "needs analyst"
    end
    local machine, err = defender.machine(host)
    if not machine then
      log.error("machine not found", host, err)
      return "failed"
    end
    local action, ierr = defender.isolate(machine.id, "selective",
      "kagari: " .. soc.summary(alert))
    if not action then
      log.error("isolation refused", host, ierr)
      return "failed"
    end
    local done, werr = defender.wait_action(action.id, { timeout = 600 })
    if not done then
      log.warn("isolation requested, not yet confirmed", host, werr)
      return "isolation pending"
    end
    log.warn("isolated", host, done.status)
    return "isolated"
  end,
}
