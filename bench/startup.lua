--- bench/startup.lua: what loading cozmox costs a process, per runtime.
--
--   BIN bench/startup.lua BIN SESSION_JSON ROUNDS
--
-- For interpreter BIN (lua5.4, luajit), ROUNDS rounds; in each, 40 fresh
-- processes of each contender, alternating: `BIN -e ''` and `BIN -e
-- 'require("cozmox")'`, wall time of each (fork + exec included, the same
-- for both).  Prints "sample require bare|cozmox SECONDS" per round (the
-- median of its 40), then the resident memory (VmRSS) of a bare process
-- and of one that required cozmox and decoded SESSION_JSON: "rss bare|
-- cozmox KB".  LUA_PATH/LUA_CPATH say where cozmox is.
local bin, session_file, rounds = arg[1], arg[2], tonumber(arg[3] or "7")
local now = require("cozmox.core").now
local format = string.format

local function median(t)
    table.sort(t)
    local n = #t
    if n % 2 == 1 then return t[(n + 1) / 2] end
    return (t[n / 2] + t[n / 2 + 1]) / 2
end

local CODE = {
    bare = "",
    cozmox = 'require("cozmox")',
}

-- A shell command running code with BIN -e (code on one line: the shell
-- would take a backslash-newline of %q as a line continuation).
local function command(code)
    return format("exec %s -e %q", bin, (code:gsub("\n", " ")))
end

local function run(code)
    local t0 = now()
    local p = assert(io.popen(command(code)))
    p:read("*a")
    assert(p:close(), bin .. " failed")
    return now() - t0
end

for _ = 1, 5 do run(CODE.bare) run(CODE.cozmox) end -- warm the page cache
for _ = 1, rounds do
    local t = { bare = {}, cozmox = {} }
    for i = 1, 40 do
        local first, second = "bare", "cozmox"
        if i % 2 == 0 then first, second = second, first end
        t[first][#t[first] + 1] = run(CODE[first])
        t[second][#t[second] + 1] = run(CODE[second])
    end
    print(format("sample require bare %.9f", median(t.bare)))
    print(format("sample require cozmox %.9f", median(t.cozmox)))
end

local RSS = [[
local function rss()
    for l in io.lines("/proc/self/status") do
        local kb = l:match("^VmRSS:%s*(%d+) kB")
        if kb then return kb end
    end
end
]]
local function rss(code)
    local p = assert(io.popen(command(RSS .. code .. "\nio.write(rss())")))
    local out = p:read("*a")
    assert(p:close(), bin .. " failed: " .. out)
    return tonumber(out)
end
print(format("rss bare %d", rss("")))
print(format("rss cozmox %d", rss(format([[
local cozmox = require("cozmox")
local f = assert(io.open(%q, "rb"))
local s = cozmox.json.decode(f:read("*a"))
f:close()
assert(s.id)
]], session_file))))
