#!/usr/bin/env lua5.4
--[[
Fetch several sessions at once on a cqueue (Debian's lua-cqueues), each in
its own coroutine of the cqueue; nothing blocks the controller.

  COZMOX_TOKEN=... lua5.4 examples/cqueues_sessions.lua <id> [<id>...]
]]
local cqueues = require("cqueues")
local cozmox = require("cozmox")

if #arg == 0 then
    io.stderr:write("usage: cqueues_sessions.lua <id> [<id>...]\n")
    os.exit(2)
end

local client = cozmox.new({ loop = cozmox.loop.cqueues() })
local cq = cqueues.new()
local failed = 0
local t0 = cqueues.monotime()

for _, id in ipairs(arg) do
    cq:wrap(function()
        local s, err = client.session.get(id)
        if s then
            local n = type(s.messages) == "table" and #s.messages or 0
            print(("%s  %s  %d messages"):format(s.id, tostring(s.status), n))
        else
            failed = failed + 1
            io.stderr:write("cqueues_sessions.lua: ", tostring(err), "\n")
        end
    end)
end

assert(cq:loop())
client:close()
print(("%d sessions in %d ms"):format(#arg, math.floor((cqueues.monotime() - t0) * 1000 + 0.5)))
os.exit(failed == 0 and 0 or 1)
