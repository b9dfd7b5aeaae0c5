-- triage.lua: the first look at every alert. It records what the alert is about
-- (source, severity, title, outcome, observables) in the run's log, and flags the
-- combination an analyst must see at once: a high-severity alert whose attack
-- succeeded.
return playbook {
  name = "triage",
  description = "Log each alert with its observables; flag successful high-severity attacks",
  on = { min_severity = "informational" },
  run = function(alert)
    local users = alert:values("user")
    local ips = alert:values("ip")
    log.info(("%s [%s] %s outcome=%s users=%s ips=%s"):format(
      alert.source, alert.severity, alert.title, alert.outcome,
      table.concat(users, ","), table.concat(ips, ",")))
    if alert.severity_level >= 3 and alert.outcome == "succeeded" then
      log.warn("likely compromise: " .. alert.title)
    end
    return "triaged"
  end,
}
