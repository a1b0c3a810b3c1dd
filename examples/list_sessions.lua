#!/usr/bin/env lua5.4
--[[
Print a table of recent sessions, newest first.

  COZMOX_TOKEN=... lua5.4 examples/list_sessions.lua [--limit N] [--name NAME] [--assistant ID]

One page of at most N sessions (default 10), optionally only those with
the given name or assistantId.  Uses the default client: the token comes
from COZMOX_TOKEN and the API from COZMOX_BASE_URL.
]]
local cozmox = require("cozmox")

local function usage(msg)
    io.stderr:write("list_sessions.lua: ", msg, "\n",
        "usage: list_sessions.lua [--limit N] [--name NAME] [--assistant ID]\n")
    os.exit(2)
end

local params = { limit = 10, sortOrder = "DESC" }
local i = 1
while i <= #arg do
    local opt, value = arg[i], arg[i + 1]
    if value == nil then usage("missing value after " .. opt) end
    if opt == "--limit" then
        params.limit = tonumber(value)
        if not params.limit then usage("--limit needs a number") end
    elseif opt == "--name" then
        params.name = value
    elseif opt == "--assistant" then
        params.assistantId = value
    else
        usage("unknown option " .. opt)
    end
    i = i + 2
end

local ok, page, err = pcall(cozmox.session.list, params)
if not ok then usage(tostring(page)) end        -- a bad --limit, raised by the library
if not page then
    io.stderr:write("list_sessions.lua: ", tostring(err), "\n")
    os.exit(1)
end

-- Cut text to n characters (UTF-8 aware), marking the cut with "~".
local function cut(s, n)
    if s == nil or s == cozmox.null then return "-" end
    s = tostring(s)
    local chars = {}
    for ch in s:gmatch("[^\128-\191][\128-\191]*") do chars[#chars + 1] = ch end
    if #chars <= n then return s .. (" "):rep(n - #chars) end
    return table.concat(chars, "", 1, n - 1) .. "~"
end

local FORMAT = "%-36s  %s  %-9s  %-24s  %5s  %s"
print(FORMAT:format("ID", cut("NAME", 20), "STATUS", "CREATED", "MSGS", "EXPIRED"))
for _, s in ipairs(page.results) do
    local expired = s:is_expired()
    local messages = type(s.messages) == "table" and #s.messages or 0
    print(FORMAT:format(s.id, cut(s.name, 20), cut(s.status, 9), cut(s.createdAt, 24), messages,
        expired == nil and "?" or (expired and "yes" or "no")))
end
local meta = page.metadata or {}
print(("%d of %d sessions (page %d)"):format(#page.results, meta.totalItems or #page.results, meta.currentPage or 1))
