-- escalate-critical.lua: urgent contact (R12). A critical alert whose attack succeeded or
-- was attempted pages the on-call analyst through the paging service's webhook, with a
-- key derived from the alert so that a replay or a retry never pages twice. The
-- service's host must be in the tenant's allow list (tenants.<id>.http.allow).
local soc = require "soc"

local PAGER_URL = "https://pager.example.jp/v1/incidents"

return playbook {
  name = "escalate-critical",
  description = "Page the on-call analyst for a critical alert that succeeded or was attempted",
  on = { min_severity = "critical", outcome = { "succeeded", "attempted" } },
  run = function(alert)
    local resp, err = http.request {
      method = "POST",
      url = PAGER_URL,
      idempotency_key = "kagari-alert-" .. alert.id,
      body = {
        summary = soc.summary(alert),
        severity = alert.severity,
        source = alert.source,
        time = alert.time_iso,
      },
    }
    if not resp then
      log.error("could not page", err)
      return "page failed"
    end
    if resp.status >= 300 then
      log.error("the paging service refused", resp.status, resp.body)
      return "page refused"
    end
    log.warn("paged", soc.summary(alert))
    return "paged"
  end,
}
