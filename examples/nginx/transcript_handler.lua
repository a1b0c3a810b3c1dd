--[[
The content handler of examples/nginx/nginx.conf: GET /transcript/<id>
answers the session's transcript as text/plain.

  200  the transcript, one line per message ("[mm:ss] role: text";
       ?timestamps=0 drops the times)
  404  no such session (the API said 404), or no id in the path
  405  a method other than GET or HEAD
  502  the API could not be reached or failed (logged to error.log)
  500  the client is misconfigured (no COZMOX_TOKEN: add `env COZMOX_TOKEN;`)

It uses the default client, created in each worker on its first request
from COZMOX_TOKEN and COZMOX_BASE_URL (nginx.conf passes them with `env`),
and kept for the worker's life, so its connection is reused.

Blocking: the default client's transport is "auto".  In a content
handler like this one it speaks HTTP over nginx's cosockets, so waiting
for the API yields and the worker goes on serving other requests.  Where
libcurl does the request instead (a client made with transport = "curl",
or a phase without cosockets), the call blocks this nginx worker until the
API has answered (bounded by the client's timeout, 60 s by default) and
the worker serves nothing else meanwhile; acceptable for an example, not
for a busy server.  Either way the C core decodes the JSON, which is why
nginx needs it built for its LuaJIT (make LUA=luajit).
]]
local cozmox = require("cozmox")

local ngx = ngx

local _M = {}

local function reply(status, text)
    ngx.status = status
    ngx.header["Content-Type"] = "text/plain; charset=utf-8"
    ngx.say(text)
    return ngx.exit(ngx.HTTP_OK)
end

function _M.handle()
    local method = ngx.req.get_method()
    if method ~= "GET" and method ~= "HEAD" then
        ngx.header["Allow"] = "GET, HEAD"
        return reply(405, "method not allowed")
    end
    -- The raw URI keeps %2F inside the id ($uri would have decoded it).
    local raw = ngx.var.request_uri:match("^/transcript/([^/?]+)")
    if not raw then
        return reply(404, "usage: GET /transcript/<session id>[?timestamps=0]")
    end
    local id = ngx.unescape_uri(raw)

    local s, err = cozmox.session.get(id)
    if not s then
        if err.kind == "http" and err.status == 404 then
            return reply(404, "no such session: " .. id)
        end
        ngx.log(ngx.ERR, "transcript of ", id, ": ", tostring(err))
        if err.kind == "config" then return reply(500, "the server is not configured for the API") end
        return reply(502, "the cozmox API failed (" .. err.kind .. ")")
    end

    local timestamps = ngx.req.get_uri_args().timestamps ~= "0"
    local text = s:transcript({ timestamps = timestamps })
    return reply(200, text)
end

return _M
