-- lib/soc.lua: helpers shared by the shipped playbooks (require "soc"). Evaluated once per
-- playbook version and read-only afterwards: the tables below are built once, not per run.
local M = {}

-- Accounts a playbook must never disable or isolate on its own (break-glass and service
-- accounts): a person decides for these.
M.protected_users = {
  ["breakglass@example.jp"] = true,
  ["svc-backup@example.jp"] = true,
}

-- Machines whose isolation would stop the institute's work (domain controllers, the
-- research cluster's head node): flagged for an analyst instead.
M.protected_hosts = {
  ["dc01.example.jp"] = true,
  ["dc02.example.jp"] = true,
  ["hpc-head.example.jp"] = true,
}

local levels = { informational = 0, low = 1, medium = 2, high = 3, critical = 4 }

-- Is the alert at least this severe ("high", "critical", ...)?
function M.at_least(alert, level)
  return alert.severity_level >= (levels[level] or 5)
end

-- One line that says what the alert is, for logs, comments and pages.
function M.summary(alert)
  local users = table.concat(alert:values("user"), ",")
  local hosts = table.concat(alert:values("host"), ",")
  return ("[%s/%s] %s (users: %s; hosts: %s)"):format(alert.source, alert.severity,
    alert.title, users ~= "" and users or "-", hosts ~= "" and hosts or "-")
end

return M
