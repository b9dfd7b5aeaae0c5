local M = {}
local count = 0
M.allow = { "a" }
function M.bump()
  count = count + 1
  leaked = true
  return count
end
function M.isolate(id)
  return defender.isolate_machine(id)
end
return M
