local function f(...)
  goto skip
  ::skip::
  for k, v in pairs({...}) do local x <const> = v; local y <close> = nil end
  return f(select(2, ...))
end
local a = { [1] = 1, 2, 3, f = function(self) return self end }
return a:f().x, #a, a[1] // 2, 1 << 3, ~5, "x" .. 1
