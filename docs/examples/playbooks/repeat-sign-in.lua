-- repeat-sign-in.lua: a risky sign-in by a user already seen in another alert within
-- the hour is more likely an attack in progress than a one-off: raise its risk, and say
-- why in the run's log. The count of risky sign-ins per user in the hour is kept in the
-- tenant's state, so that a third one in the hour escalates further.
return playbook {
  name = "repeat-sign-in",
  description = "Raise the risk of a risky sign-in when the same user was seen within the hour",
  on = { source = "entra.signin", min_severity = "low" },
  run = function(alert)
    local user = alert:observable("user")
    if not user then
      return { risk = alert.severity, reason = "no user" }
    end

    -- Earlier alerts of this tenant about the same user, newest first.
    local earlier, err = alerts.recent { observable = user, type = "user", since = "1h" }
    if not earlier then
      log.error("cannot read earlier alerts:", err)
      return { risk = alert.severity, reason = "lookup failed" }
    end

    -- Risky sign-ins of this user in a one-hour window (this one included).
    local count = state.incr("signins:" .. user, { window = "1h" })

    local risk, reason = alert.severity, "first alert about " .. user .. " this hour"
    if count >= 3 then
      risk, reason = "critical", count .. " risky sign-ins of " .. user .. " within the hour"
    elseif #earlier > 0 then
      -- One level up: severity_level is 0 (informational) to 4 (critical).
      local levels = { "informational", "low", "medium", "high", "critical" }
      risk = levels[math.min(alert.severity_level + 1, 4) + 1]
      reason = user .. " was seen " .. math.floor(now() - earlier[1].received) ..
        " s ago in " .. earlier[1].source .. ": " .. earlier[1].title
    end
    assert(state.put("last-risk:" .. user, { risk = risk, alert = alert.id }, { ttl = "1d" }))
    if risk ~= alert.severity then
      log.warn("risk raised from", alert.severity, "to", risk .. ":", reason)
    end
    return { risk = risk, reason = reason }
  end,
}
