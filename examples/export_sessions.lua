#!/usr/bin/env lua5.4
--[[
Export every session matching filters as JSON Lines (one session per line)
on stdout, with a progress line on stderr.

  COZMOX_TOKEN=... lua5.4 examples/export_sessions.lua [param=value ...] > sessions.jsonl

Params are the API's list params by name, for example
  name=support assistantId=asst_123 createdAtGe=2024-01-01T00:00:00Z
  createdAtLt=1735689600 (epoch seconds) limit=50 (the page size)
Pages are fetched one after the other as the export goes
(client.session.each); a failure half-way stops the export with exit
status 1 and says how many sessions were written.
]]
local cozmox = require("cozmox")

local NUMERIC = { page = true, limit = true }

local params = {}
for _, a in ipairs(arg) do
    local k, v = a:match("^([%w_]+)=(.*)$")
    if not k then
        io.stderr:write("export_sessions.lua: expected param=value, got '", a, "'\n")
        os.exit(2)
    end
    if NUMERIC[k] or (k:match("^%a+At[GL][te]$") and v:match("^%-?%d+%.?%d*$")) then
        v = tonumber(v) or v
    end
    params[k] = v
end

local ok, iter = pcall(cozmox.session.each, params)
if not ok then
    io.stderr:write("export_sessions.lua: ", tostring(iter), "\n")   -- a bad param
    os.exit(2)
end

local written = 0
local done, err = pcall(function()
    for s, n, total in iter do
        io.stdout:write(cozmox.json.encode(s), "\n")
        written = n
        io.stderr:write(("\rexporting sessions: %d/%d"):format(n, total or n))
    end
end)
if written > 0 then io.stderr:write("\n") end
if not done then
    io.stderr:write("export_sessions.lua: ", tostring(err), " (", written, " sessions written)\n")
    os.exit(1)
end
io.stderr:write(("exported %d sessions\n"):format(written))
