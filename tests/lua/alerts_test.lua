-- alerts_test.lua: alerts.recent through the real engine: which earlier alerts it
-- finds (observable value and type, source, time window), in which order, how many.
local t = kagari.test("probe")
t:clock_set("2026-03-01T00:00:00Z")

local function alert(source, title, obs)
  return { source = source, title = title, severity = "high", outcome = "succeeded",
           observables = obs }
end
local function recent(q)
  local r = t:run { source = "test.probe", title = "look", ops = { { "recent", q } } }
  return r.result[1]
end
local function titles(res)
  local out = {}
  for _, a in ipairs(res.value or {}) do out[#out + 1] = a.title end
  return out
end

-- Alerts are admitted only when they trigger the playbook; the probe's own source does.
-- So the earlier alerts are probe alerts too, with the observables under test.
local function add(title, obs, source)
  t:run { source = source or "test.probe", title = title, ops = {}, observables = obs }
end

add("a1", { { type = "user", value = "alice@example.jp" } })
t:clock_advance("10m")
add("a2", { { type = "email", value = "alice@example.jp" } })
t:clock_advance("10m")
add("b1", { { type = "user", value = "bob@example.jp" } })
t:clock_advance("10m")
add("a3", { { type = "ip", value = "203.0.113.1" }, { type = "user", value = "alice@example.jp" } })
t:clock_advance("1m")

t:eq(titles(recent { observable = "alice@example.jp" }), { "a3", "a2", "a1" },
  "by value, newest first, the run's own alert left out")
t:eq(titles(recent { observable = "alice@example.jp", type = "user" }), { "a3", "a1" },
  "by value and type")
t:eq(titles(recent { observable = "alice@example.jp", since = "15m" }), { "a3" },
  "within since")
t:eq(titles(recent { observable = "alice@example.jp", limit = 2 }), { "a3", "a2" }, "limit")
t:eq(titles(recent { observable = "bob@example.jp" }), { "b1" }, "another value")
t:eq(titles(recent { observable = "203.0.113.1" }), { "a3" }, "an ip")
t:eq(titles(recent { observable = "carol@example.jp" }), {}, "nobody")
t:eq(titles(recent { observable = "alice@example.jp", source = "other.source" }), {},
  "source filter")
t:eq(#titles(recent { observable = "alice@example.jp", source = "test.probe" }), 3,
  "source filter that matches")
t:eq(#titles(recent { observable = "alice@example.jp", since = 30 }), 0,
  "since in seconds: only alerts received in the last 30 s")

-- What an earlier alert looks like.
local res = recent { observable = "203.0.113.1" }
local a = res.value[1]
t:eq(a.title, "a3", "title")
t:eq(a.source, "test.probe", "source")
t:eq(a.severity, "informational", "severity")
t:eq(a.outcome, "unknown", "outcome")
t:eq(a.observables[2], { type = "user", value = "alice@example.jp" }, "observables")
t:eq(a.received_iso, "2026-03-01T00:30:00.000Z", "received")
t:eq(a.raw, nil, "no raw record")

-- Misuse raises.
local bad = {
  { {}, "observable %(a value, e.g. a user%) is required" },
  { { observable = "" }, "observable must be 1 to 1024 bytes" },
  { { observable = 5 }, "observable must be a string" },
  { { observable = "x", limit = 0 }, "limit must be an integer from 1 to 100" },
  { { observable = "x", limit = 101 }, "limit must be an integer from 1 to 100" },
  { { observable = "x", since = "forever" }, "since must be a duration" },
  { { observable = "x", sinse = "1h" }, "unknown field sinse" },
  { { observable = { "char", 0x61, 0, 0x62 } }, "observable has a NUL byte" },
  { { observable = "x", type = { "char", 0x75, 0 } }, "type has a NUL byte" },
  { { observable = "x", source = { "rep", "s", 1025 } }, "source must be 1 to 1024 bytes" },
  { { observable = "x", type = 1 }, "type must be a string" },
}
for i, b in ipairs(bad) do
  local r = recent(b[1])
  t:eq(r.ok, false, "bad query " .. i .. " raises")
  t:match(r.err, "alerts%.recent: " .. b[2], "bad query " .. i .. " message")
end
