#!/usr/bin/env lua5.4
--[[
Fetch several sessions at once on libuv's loop (Debian's lua-luv), while a
timer keeps running: nothing blocks the loop.

  COZMOX_TOKEN=... lua5.4 examples/luv_sessions.lua <id> [<id>...]

Prints one line per session as it arrives, then how long the batch took
and how often a 100 ms timer ticked meanwhile.
]]
local uv = require("luv")
local cozmox = require("cozmox")

if #arg == 0 then
    io.stderr:write("usage: luv_sessions.lua <id> [<id>...]\n")
    os.exit(2)
end

local client = cozmox.new({ loop = cozmox.loop.luv(uv) })
local ticks, left, failed = 0, #arg, 0
local timer = uv.new_timer()
timer:start(100, 100, function() ticks = ticks + 1 end)
local t0 = uv.now()

for _, id in ipairs(arg) do
    coroutine.wrap(function()
        local s, err = client.session.get(id)
        if s then
            local n = type(s.messages) == "table" and #s.messages or 0
            print(("%s  %s  %d messages"):format(s.id, tostring(s.status), n))
        else
            failed = failed + 1
            io.stderr:write("luv_sessions.lua: ", tostring(err), "\n")
        end
        left = left - 1
        if left == 0 then
            timer:stop()
            timer:close()
            client:close()
        end
    end)()
end

uv.run()
print(("%d sessions in %d ms, timer ticked %d times"):format(#arg, uv.now() - t0, ticks))
os.exit(failed == 0 and 0 or 1)
