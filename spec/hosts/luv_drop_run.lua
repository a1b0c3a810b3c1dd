-- lua5.4 + luv: coroutines closed (coroutine.close) while they wait, their
-- polls still registered with libuv.
--   1. A drives a stalled request; B starts 0.3 s later with timeout = 1;
--      A is closed and collected at 0.5 s: B must end by its deadline.
--   2. 40 calls cancelled 20 ms in: their descriptors must not stay open,
--      and close() must release what is left.
local uv = require("luv")
local cozmox = require("cozmox")
local now = require("cozmox.core").now

local base = os.getenv("COZMOX_BASE_URL") .. "/fault/by-id"
local pid = io.open("/proc/self/stat"):read("*n")
local function nfd()
    local n = 0
    for _ in io.popen("ls /proc/" .. pid .. "/fd"):lines() do n = n + 1 end
    return n
end
local function after(ms, fn)
    local t = uv.new_timer()
    t:start(ms, 0, function() t:close() fn() end)
end

local c = cozmox.new({ loop = cozmox.loop.luv(uv), base_url = base, timeout = 1, max_retries = 0 })
coroutine.wrap(function() assert(c.session.get("ok")) end)()
uv.run()

local b_elapsed, b_kind
local a = coroutine.create(function() return c.session.get("stall?s=10&a=1") end)
assert(coroutine.resume(a))
after(300, function()
    coroutine.wrap(function()
        local t0 = now()
        local _, err = c.session.get("stall?s=10&b=1")
        b_elapsed, b_kind = now() - t0, err and err.kind
    end)()
end)
after(500, function()
    assert(coroutine.close(a))
    a = nil
    collectgarbage("collect")
    collectgarbage("collect")
end)
uv.run()

local c2 = cozmox.new({ loop = cozmox.loop.luv(uv), base_url = base, timeout = 5, max_retries = 0 })
local function one(id) coroutine.wrap(function() assert(c2.session.get(id)) end)() uv.run() end
one("ok")
collectgarbage("collect")
local before = nfd()
for i = 1, 40 do
    local co = coroutine.create(function() return c2.session.get("delay?ms=200&i=" .. i) end)
    assert(coroutine.resume(co))
    after(20, function() coroutine.close(co) end) -- the caller gives up on it while it waits
    uv.run()
end
collectgarbage("collect")
collectgarbage("collect")
one("delay?ms=50&after=1")
one("delay?ms=50&after=2")
local later = nfd()
c2:close()
c:close()
collectgarbage("collect")
print(("b_kind=%s b_elapsed=%.3f fds_before=%d fds_after=%d fds_closed=%d"):format(tostring(b_kind), b_elapsed,
    before, later, nfd()))
