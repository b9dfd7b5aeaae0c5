-- escalator.lua: escalates every alert it gets and returns what escalate{} gave.
return playbook {
  name = "escalator",
  on = { source = "test.escalate" },
  run = function(alert)
    local ack, err = escalate { level = "critical", reason = alert.title,
                                subject = "侵害の疑い: " .. alert.title }
    if ack == nil then return { failed = err } end
    return ack
  end,
}
