#!/usr/bin/env lua5.4
--[[
Fetch one session and print a short summary of it.

  COZMOX_TOKEN=... lua5.4 examples/get_session.lua <session-id>

Uses the default client: the token comes from COZMOX_TOKEN and the API
from COZMOX_BASE_URL (default https://api.cozmox.ai).  `make demo` runs it
against the local mock API.
]]
local cozmox = require("cozmox")

local id = arg[1]
if not id or id == "" then
    io.stderr:write("usage: get_session.lua <session-id>\n")
    os.exit(2)
end

local s, err = cozmox.session.get(id)
if not s then
    io.stderr:write(tostring(err), "\n")
    os.exit(1)
end

-- A field for display: cozmox.null and absent fields print as "-".
local function show(v)
    if v == nil or v == cozmox.null then return "-" end
    return tostring(v)
end

local function field(label, value)
    print(string.format("%-12s %s", label, show(value)))
end

local assistant = type(s.assistant) == "table" and s.assistant or {}
local model = type(assistant.model) == "table" and assistant.model or {}
local voice = type(assistant.voice) == "table" and assistant.voice or {}
local customer = type(s.customer) == "table" and s.customer or {}
local messages = type(s.messages) == "table" and s.messages or {}

print("Session " .. show(s.id))
field("name", s.name)
field("status", s.status)
field("created", s.createdAt)
field("updated", s.updatedAt)
field("expires in", s.expirationSeconds and (s.expirationSeconds .. " s") or nil)
field("assistant", s.assistantId)
field("model", model.provider and (show(model.provider) .. " / " .. show(model.model)) or nil)
field("voice", voice.provider and (show(voice.provider) .. " / " .. show(voice.voiceId)) or nil)
field("customer", customer.name and (show(customer.name) .. " <" .. show(customer.number) .. ">") or nil)
field("messages", #messages)

for i = 1, math.min(#messages, 5) do
    local m = messages[i]
    local text = m.message or m.content
    if type(text) ~= "string" then text = show(text) end
    if #text > 70 then text = text:sub(1, 67) .. "..." end
    print(string.format("  %2d. %-9s %s", i, show(m.role) .. ":", text))
end
if #messages > 5 then print(string.format("  ... and %d more", #messages - 5)) end
