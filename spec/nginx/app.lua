-- Handlers of the nginx used by spec/nginx_spec.lua: cozmox loaded inside
-- lua-nginx-module, one client per worker and per transport.
local cozmox = require("cozmox")
local cjson = require("cjson")

local _M = {}
local clients = {}

-- init_worker_by_lua: one client per transport, reused by every request
-- of the worker (connections are pooled per worker).
function _M.init_worker()
    for _, t in ipairs({ "auto", "nginx", "curl" }) do
        clients[t] = cozmox.new({ transport = t, max_retries = 0 })
    end
    -- HTTPS through cosockets: trust comes from lua_ssl_trusted_certificate.
    clients.tls = cozmox.new({ transport = "nginx", max_retries = 0,
        base_url = os.getenv("COZMOX_TEST_HTTPS_URL") })
    clients.tlsinsecure = cozmox.new({ transport = "nginx", max_retries = 0, insecure = true,
        base_url = os.getenv("COZMOX_TEST_HTTPS_URL") })
    -- An ngx.timer context: fetch through the automatic transport.
    ngx.timer.at(0, function(premature)
        if premature then return end
        local s, err = clients.auto.session.get("demo")
        ngx.shared.results:set("timer", s and s.id or tostring(err))
    end)
end

local function reply(status, t)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.print(cjson.encode(t))
end

-- /<transport>/session/<id>: the session (or the error) as JSON.
-- /<transport>/delay/session/<id>: the same after the mock's 200 ms route.
function _M.content()
    local t, delay, id = ngx.var.uri:match("^/([%a]+)/(d?e?l?a?y?)/?session/(.+)$")
    local c = clients[t]
    if not c then return reply(404, { error = "unknown transport" }) end
    local v, err
    if delay ~= "" then
        v, err = c:request("GET", "/fault/delay", { query = { ms = 200 } })
        if v then v.id = id end
    else
        v, err = c.session.get(ngx.unescape_uri(id))
    end
    if not v then
        return reply(err.status or 502, { kind = err.kind, status = err.status, message = tostring(err) })
    end
    return reply(200, { id = v.id, status = v.status, model = v.assistant and v.assistant.model.model,
        transport = t, phase = ngx.get_phase() })
end

-- access_by_lua: a lookup before the content phase.
function _M.access()
    local s, err = clients.auto.session.get("demo")
    ngx.req.set_header("X-Session", s and s.id or tostring(err))
end

return _M
