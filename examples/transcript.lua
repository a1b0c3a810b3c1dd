#!/usr/bin/env lua5.4
--[[
Print a session's conversation as a readable transcript.

  COZMOX_TOKEN=... lua5.4 examples/transcript.lua [--plain] <session-id>

One line per message, "[mm:ss] role: text" (--plain drops the times),
under a header with the session's name, status and message count.
]]
local cozmox = require("cozmox")

local plain, id = false, nil
for _, a in ipairs(arg) do
    if a == "--plain" then plain = true
    elseif id == nil then id = a
    else id = nil; break end
end
if not id or id == "" then
    io.stderr:write("usage: transcript.lua [--plain] <session-id>\n")
    os.exit(2)
end

local s, err = cozmox.session.get(id)
if not s then
    io.stderr:write("transcript.lua: ", tostring(err), "\n")
    os.exit(1)
end

local messages = type(s.messages) == "table" and #s.messages or 0
local name = type(s.name) == "string" and (" \"" .. s.name .. "\"") or ""
print(("Session %s%s (%s, %d message%s)"):format(s.id, name, tostring(s.status), messages,
    messages == 1 and "" or "s"))
local text = s:transcript({ timestamps = not plain, names = { assistant = "Assistant", user = "User" } })
if text ~= "" then print(text) end
