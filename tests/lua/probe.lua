-- probe.lua: runs the calls listed in the alert (raw.ops) and returns what each gave,
-- so that tests can drive state.* and alerts.recent with any arguments. A key or
-- argument (or a field of a table argument) written as {"rep", s, n} is string.rep(s, n); {"char", b...} is
-- string.char(b...); {"nil"} is nil (JSON has no nil in arrays).
local function arg(v)
  if type(v) ~= "table" then return v end
  if v[1] == "rep" then return string.rep(v[2], v[3]) end
  if v[1] == "char" then return string.char(table.unpack(v, 2)) end
  if v[1] == "nil" then return nil end
  local t = {}
  for k, x in pairs(v) do t[k] = arg(x) end -- inside tables too (alerts.recent's query)
  return t
end

return playbook {
  name = "probe",
  on = { source = "test.probe" },
  run = function(alert)
    local out = {}
    for i, op in ipairs(alert.raw.ops) do
      local fn = op[1] == "recent" and alerts.recent or state[op[1]]
      local args = {}
      for j = 2, #op do args[j - 1] = arg(op[j]) end
      local ok, a, b = pcall(fn, table.unpack(args, 1, #op - 1))
      if ok then
        out[i] = { ok = true, value = a, err = b }
      else
        out[i] = { ok = false, err = a }
      end
    end
    return out
  end,
}
