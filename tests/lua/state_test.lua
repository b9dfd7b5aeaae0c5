-- state_test.lua: the playbooks' memory (state.*) through the real engine: values,
-- expiry, counters in windows, caps, and every kind of bad key.
local t = kagari.test("probe")
t:clock_set("2026-03-01T00:00:00Z")

local function ops(list)
  local r = t:run { source = "test.probe", title = "ops", ops = list }
  return r.result or {}
end

-- Values of every JSON kind come back as they were put.
local values = { "text", 42, 1.5, true, false, { 1, 2, 3 }, { a = { b = { "c" } } },
                 "ユーザー", { list = { { x = 1 }, { y = 2 } } } }
for i, v in ipairs(values) do
  local r = ops { { "put", "v" .. i, v }, { "get", "v" .. i } }
  t:eq(r[1], { ok = true, value = true }, "put value " .. i)
  t:eq(r[2].value, v, "get value " .. i)
end
t:eq(ops { { "get", "never-put" } }[1], { ok = true }, "an absent key gives nil")
t:eq(t:state("v1"), "text", "the store holds the value")

-- Expiry: a ttl, and the default of 30 days.
ops { { "put", "short", "s", { ttl = "10m" } }, { "put", "long", "l" } }
t:clock_advance("9m")
t:eq(ops { { "get", "short" } }[1].value, "s", "before its ttl")
t:clock_advance("2m")
t:eq(ops { { "get", "short" } }[1].value, nil, "after its ttl")
t:eq(t:state("short"), nil, "expired entries are not read")
t:clock_advance("29d")
t:eq(ops { { "get", "long" } }[1].value, "l", "within the default 30 days")
t:clock_advance("2d")
t:eq(ops { { "get", "long" } }[1].value, nil, "after the default 30 days")
ops { { "put", "ttl-num", 1, { ttl = 60 } } }
t:clock_advance("61s")
t:eq(ops { { "get", "ttl-num" } }[1].value, nil, "a ttl in seconds")

-- Counters: within a window, then a new window.
local r = ops { { "incr", "c", { window = "1h" } }, { "incr", "c", { window = "1h" } },
                { "incr", "c", { window = "1h", by = 5 } } }
t:eq({ r[1].value, r[2].value, r[3].value }, { 1, 2, 7 }, "incr counts")
t:clock_advance("59m")
t:eq(ops { { "incr", "c", { window = "1h" } } }[1].value, 8, "still in the window")
t:clock_advance("2m")
t:eq(ops { { "incr", "c", { window = "1h" } } }[1].value, 1, "a new window starts at 1")
t:eq(ops { { "incr", "no-window" } }[1].value, 1, "incr without a window")
t:eq(ops { { "incr", "no-window", { by = -3 } } }[1].value, -2, "incr by a negative step")
r = ops { { "put", "text", "abc" }, { "incr", "text" } }
t:eq(r[2].value, nil, "incr of a text value fails")
t:match(r[2].err, "^state%.incr: key text holds a value that is not an integer$", "its message")
t:eq(ops { { "get", "text" } }[1].value, "abc", "and leaves the value alone")

-- delete
r = ops { { "put", "d", 1 }, { "delete", "d" }, { "delete", "d" }, { "get", "d" } }
t:eq({ r[2].value, r[3].value, r[4].value }, { true, false, nil }, "delete, twice, then get")

-- The value cap: 64 KiB of JSON.
r = ops { { "put", "big", { "rep", "a", 65534 } }, { "put", "big2", { "rep", "a", 65535 } },
          { "get", "big2" } }
t:eq(r[1].value, true, "a value of exactly 65536 bytes of JSON")
t:eq(r[2].value, nil, "one byte more is refused")
t:match(r[2].err, "^state%.put: value of 65537 bytes %(as JSON%) is over the cap of 65536 bytes$",
  "with its size")
t:eq(r[3].value, nil, "and nothing is stored")

-- Keys: odd but valid ones work, each bad kind raises with what is wrong.
local good = { "'; DROP TABLE kv; --", "%_*", "ユーザー:alice@example.jp", " spaced key ",
               { "rep", "k", 256 }, "a/b\\c", "null" }
for i, k in ipairs(good) do
  r = ops { { "put", k, i }, { "get", k } }
  t:eq(r[2].value, i, "valid key " .. i)
end
local bad = {
  { { "nil" }, "key must be a string, not nil" },
  { 42, "key must be a string, not number" },
  { true, "key must be a string, not boolean" },
  { { 1 }, "key must be a string, not table" },
  { "", "key must be 1 to 256 bytes %(it has 0%)" },
  { { "rep", "k", 257 }, "key must be 1 to 256 bytes %(it has 257%)" },
  { { "char", 0x61, 0xff, 0x62 }, "key is not valid UTF%-8 %(byte 2%)" },
  { { "char", 0xc0, 0xaf }, "key is not valid UTF%-8 %(byte 1%)" },
  { { "char", 0x61, 0 }, "key has a control character %(byte 2%)" },
  { "line\nbreak", "key has a control character %(byte 5%)" },
  { { "char", 0x1b, 0x5b, 0x32, 0x4a }, "key has a control character %(byte 1%)" },
  { { "char", 0x7f }, "key has a control character %(byte 1%)" },
}
for i, b in ipairs(bad) do
  for _, fn in ipairs({ "get", "put", "incr", "delete" }) do
    r = ops { fn == "put" and { fn, b[1], 1 } or { fn, b[1] } }
    t:eq(r[1].ok, false, fn .. " with bad key " .. i .. " raises")
    t:match(r[1].err, "state%." .. fn .. ": " .. b[2], fn .. " bad key " .. i .. " message")
  end
end

-- Bad options and values raise.
local misuse = {
  { { "put", "k", { "nil" } }, "value is nil %(use state.delete" },
  { { "put", "k", 1, { ttl = "1x" } }, "ttl must be a duration" },
  { { "put", "k", 1, { ttl = 0 } }, "ttl must be a duration" },
  { { "put", "k", 1, { ttl = "400d" } }, "ttl must be a duration" },
  { { "put", "k", 1, { tll = "1h" } }, "unknown option tll" },
  { { "incr", "k", { window = -1 } }, "window must be a duration" },
  { { "incr", "k", { by = 1.5 } }, "by must be an integer" },
  { { "incr", "k", { by = 2e9 } }, "by must be an integer" },
  { { "incr", "k", { step = 1 } }, "unknown option step" },
}
for i, m in ipairs(misuse) do
  r = ops { m[1] }
  t:eq(r[1].ok, false, "misuse " .. i .. " raises")
  t:match(r[1].err, m[2], "misuse " .. i .. " message")
end

-- Every call is journaled like any effect: nothing reaches a connector.
t:expect_calls({})
