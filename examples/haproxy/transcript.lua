--[[
The service of examples/haproxy/haproxy.cfg: GET /transcript/<id>
answers the session's transcript as text/plain.

  200  the transcript, one line per message ("[mm:ss] role: text";
       ?timestamps=0 drops the times)
  404  no such session (the API said 404)
  405  a method other than GET or HEAD
  502  the API could not be reached or failed (logged)
  500  the client is misconfigured (no COZMOX_TOKEN in HAProxy's environment)

One client, made while HAProxy loads this file, serves every request.
Its loop adapter, cozmox.loop.haproxy(), sends the requests through
HAProxy's own httpclient and waits with core.msleep: waiting for the API
yields, so the thread goes on serving other connections meanwhile (20
requests to an API answering in 200 ms take about 0.2 s, not 4 s).
]]
-- Where the modules are: this checkout's lua/ and the C core built for
-- HAProxy's Lua 5.3 (make LUA_VERSION=5.3).  An installed cozmox
-- (luarocks --lua-version=5.3 install cozmox) is found without these lines.
local root = debug.getinfo(1, "S").source:match("^@(.*)/examples/haproxy/transcript%.lua$")
if root then
    package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
    package.cpath = root .. "/build/lua5.3/?.so;" .. package.cpath
end

local cozmox = require("cozmox")

local client = cozmox.new({ loop = cozmox.loop.haproxy() })

local function reply(applet, status, text)
    applet:set_status(status)
    applet:add_header("content-type", "text/plain; charset=utf-8")
    applet:add_header("content-length", tostring(#text))
    applet:start_response()
    if applet.method ~= "HEAD" then applet:send(text) end
end

local function unescape(s)
    return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

core.register_service("cozmox_transcript", "http", function(applet)
    if applet.method ~= "GET" and applet.method ~= "HEAD" then
        applet:add_header("allow", "GET, HEAD")
        return reply(applet, 405, "method not allowed\n")
    end
    -- applet.path is raw: %2F inside an id stays part of the id.
    local raw = applet.path:match("^/transcript/([^/]+)$")
    if not raw then return reply(applet, 404, "usage: GET /transcript/<session id>[?timestamps=0]\n") end
    local id = unescape(raw)

    local s, err = client.session.get(id)
    if not s then
        if err.kind == "http" and err.status == 404 then
            return reply(applet, 404, "no such session: " .. id .. "\n")
        end
        core.Warning("transcript of " .. id .. ": " .. tostring(err))
        if err.kind == "config" then return reply(applet, 500, "the server is not configured for the API\n") end
        return reply(applet, 502, "the cozmox API failed (" .. err.kind .. ")\n")
    end
    local timestamps = true
    for k, v in (applet.qs or ""):gmatch("([^&=]+)=([^&]*)") do
        if k == "timestamps" and v == "0" then timestamps = false end
    end
    local text = s:transcript({ timestamps = timestamps })
    return reply(applet, 200, text ~= "" and (text .. "\n") or "")
end)
