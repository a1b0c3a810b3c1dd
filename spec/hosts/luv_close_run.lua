-- lua5.4 + luv: a coroutine closed (coroutine.close) while it drives the
-- client's transfers, its polls still registered with libuv; the next
-- coroutine on the same client needs the same descriptors (libuv refuses
-- a second poll on one) and must get its session.
local uv = require("luv")
local cozmox = require("cozmox")

local base = os.getenv("COZMOX_BASE_URL") .. "/fault/by-id"
local c = cozmox.new({ loop = cozmox.loop.luv(uv), base_url = base, timeout = 5 })
local out = {}
-- warm up: a kept-alive connection the next transfers reuse
coroutine.wrap(function() out.warm = assert(c.session.get("ok")).id end)()
uv.run()
local victim = coroutine.create(function() return c.session.get("delay?ms=300&v=1") end)
assert(coroutine.resume(victim))
local t = uv.new_timer()
t:start(50, 0, function()
    t:close()
    assert(coroutine.close(victim))
    collectgarbage("collect")
    coroutine.wrap(function()
        local s, err = c.session.get("delay?ms=100&v=2")
        out.after = s and s.id or tostring(err)
        c:close()
    end)()
end)
uv.run()
print("warm=" .. tostring(out.warm) .. " after=" .. tostring(out.after))
