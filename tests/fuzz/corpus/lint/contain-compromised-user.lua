-- contain-compromised-user.lua: a sign-in that succeeded and is rated high or critical
-- means the account is likely in an attacker's hands. Disable it and revoke its
-- sessions at once (both calls are safe to repeat), and log what was done, so that
-- the customer can see why the account was suspended.
return playbook {
  name = "contain-compromised-user",
  description = "Disable the account and revoke its sessions after a successful high-risk sign-in",
  on = { source = "entra.signin", min_severity = "high", outcome = "succeeded" },
  run = function(alert)
    local user = alert:observable("user")
    if not user then
      log.warn("no user observable: nothing to contain")
      return "skipped"
    end
    local ok, err = graph.disable_user(user)
    if not ok then
      log.error("could not disable", user, err)
      return "failed"
    end
    local revoked, rerr = graph.revoke_sessions(user)
    if not revoked then
      log.warn("disabled but could not revoke sessions", user, rerr)
    end
    log.warn("contained", user, "after", alert.title)
    return "contained"
  end,
}
