-- block-threat-source.lua: a high or critical threat seen by the firewall (a PAN-OS
-- THREAT log: exploit, spyware, virus, WildFire verdict) comes from an address that
-- should not reach the customer again. Block it on the firewall for a day through
-- User-ID (a Dynamic Address Group matching the tag sits in a deny rule, so no commit
-- is needed) and log what was done. The tenant's guardrails (never_block,
-- max_blocks_per_hour) refuse what must never be blocked; the run says so.
-- The source is the ip observable with role "src" (as the PAN-OS log parser names it;
-- "source" and "attacker" are accepted from other senders). For outbound threats
-- (spyware calling home) the address to block is the destination: copy this playbook
-- and pick role "dst" for those subtypes.
return playbook {
  name = "block-threat-source",
  description = "Block the source address of a high-severity firewall threat for a day",
  on = { source = "panos.threat", min_severity = "high" },
  run = function(alert)
    local src
    for _, o in ipairs(alert:values()) do
      if o.type == "ip" and (o.role == "src" or o.role == "source" or o.role == "attacker") then
        src = o.value
        break
      end
    end
    if not src then
      log.warn("no source address in the alert: nothing to block")
      return "skipped"
    end
    local r, err = panos.block_ip(src, { timeout = 86400 })
    if not r then
      log.error("not blocked", src, err)
      return "refused"
    end
    log.warn("blocked", src, "on the firewall", "(" .. r.status .. ")", "after", alert.title)
    return "blocked"
  end,
}
