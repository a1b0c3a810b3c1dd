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

-- Display width of a UTF-8 string: its code points (bytes that are not
-- continuation bytes). Right for Latin, Greek, Cyrillic...; East Asian
-- wide characters take two columns on a terminal and still misalign.
local function width(s)
    local _, n = s:gsub("[^\128-\191]", "")
    return n
end

local function pad(s, n)
    return s .. (" "):rep(n - width(s))
end

-- A field as text: cozmox.null and absent fields show as "-".
local function text(v)
    if v == nil or v == cozmox.null then return "-" end
    return tostring(v)
end

-- Text cut to n code points (the cut marked with "~"), padded to n.
local function cut(v, n)
    local s = text(v)
    if width(s) <= n then return pad(s, n) end
    local chars = {}
    for ch in s:gmatch("[^\128-\191][\128-\191]*") do chars[#chars + 1] = ch end
    return table.concat(chars, "", 1, n - 1) .. "~"
end

-- Ids are never cut (they are what `get` needs): their column is as wide
-- as the widest one.
local id_width = width("ID")
for _, s in ipairs(page.results) do id_width = math.max(id_width, width(text(s.id))) end

local function row(id, name, status, created, messages, expired)
    return table.concat({ pad(id, id_width), cut(name, 20), cut(status, 9), cut(created, 24),
        (" "):rep(5 - width(messages)) .. messages, expired }, "  ")
end

print(row("ID", "NAME", "STATUS", "CREATED", "MSGS", "EXPIRED"))
for _, s in ipairs(page.results) do
    local expired = s:is_expired()
    local messages = type(s.messages) == "table" and #s.messages or 0
    print(row(text(s.id), s.name, s.status, s.createdAt, tostring(messages),
        expired == nil and "?" or (expired and "yes" or "no")))
end
local meta = page.metadata or {}
print(("%d of %d sessions (page %d)"):format(#page.results, meta.totalItems or #page.results, meta.currentPage or 1))
