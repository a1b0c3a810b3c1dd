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

local matrix = require("support.matrix")
local core = require("cozmox.core")

-- The matrix's servers as seen from here: TLS by name (lua-nginx-module
-- verifies host names, not IP addresses), trust from
-- lua_ssl_trusted_certificate.
local function matrix_env(key)
    local base = os.getenv("COZMOX_BASE_URL")
    local by_name = function(url) return (url:gsub("//127%.0%.0%.1:", "//localhost:")) end
    return { base = base, http = base, https = by_name(os.getenv("COZMOX_TEST_HTTPS_URL")),
        rogue = by_name(os.getenv("COZMOX_TEST_ROGUE_URL")),
            wrong_host = by_name(os.getenv("COZMOX_TEST_WRONG_HOST_URL")),
        refused = ngx.unescape_uri(ngx.var.arg_refused or ""), localhost = by_name(base), key = key,
        token = os.getenv("COZMOX_TOKEN"), proxy = ngx.unescape_uri(ngx.var.arg_proxy or "") }
end

-- /matrix?case=NAME&key=K&refused=URL: one case of the fault matrix over
-- cosockets; the result as JSON.
function _M.matrix()
    local case = matrix.by_name[ngx.unescape_uri(ngx.var.arg_case or "")]
    if not case then return reply(404, { error = "unknown case" }) end
    local result = matrix.run(case, matrix_env(ngx.var.arg_key), function(opts, waits, real_sleep)
        opts.transport = "nginx"
        opts.sleep = function(w)
            waits[#waits + 1] = w
            if real_sleep then ngx.sleep(real_sleep) end
        end
        return cozmox.new(opts)
    end, function(c, id) return c.session.get(id) end, core.now)
    return reply(200, result)
end

-- /dns/<answer|silent|none>?host=H&timeout=T: get a session from the mock
-- by a host name; the outcome and how long it took.
function _M.dns()
    local port = os.getenv("COZMOX_BASE_URL"):match(":(%d+)$")
    local c = cozmox.new({ transport = "nginx", max_retries = tonumber(ngx.var.arg_retries or "0"),
        timeout = tonumber(ngx.var.arg_timeout or "2"), connect_timeout = tonumber(ngx.var.arg_connect or "10"),
        base_url = "http://" .. ngx.var.arg_host .. ":" .. port .. "/fault/by-id" })
    local t0 = core.now()
    local s, err = c.session.get("ok")
    return reply(200, { elapsed = core.now() - t0, id = s and s.id, kind = err and err.kind,
        message = err and tostring(err), code = err and err.curl_code, attempts = err and err.attempts })
end

-- /concurrent?n=N: N light threads share one client, each fetching its own
-- session from a route that first answers 429 with a Retry-After of its
-- own; each must see exactly its own wait and its own body.
local shared_client
function _M.concurrent()
    local n = tonumber(ngx.var.arg_n or "50")
    local waits = {}
    shared_client = shared_client or cozmox.new({ transport = "nginx", max_retry_wait = 60,
        base_url = os.getenv("COZMOX_BASE_URL") .. "/fault/by-id",
        sleep = function(w)
            local co = coroutine.running()
            waits[co] = waits[co] or {}
            waits[co][#waits[co] + 1] = w
            ngx.sleep(0.01)
        end })
    local stamp = tostring(ngx.now()) .. "-" .. tostring(math.random(1e9))
    local threads = {}
    for i = 1, n do
        threads[i] = ngx.thread.spawn(function()
            local id = "own-retry-after?key=" .. stamp .. "-" .. i .. "&retry_after=" .. (i % 7 + 1)
            local s, err = shared_client.session.get(id)
            local co = coroutine.running()
            return { ok = s ~= nil and s.id == id, err = err and tostring(err), waits = waits[co] or {},
                want = i % 7 + 1 }
        end)
    end
    local out = {}
    for i = 1, n do
        local ok, r = ngx.thread.wait(threads[i])
        out[i] = ok and r or { ok = false, err = tostring(r) }
    end
    return reply(200, out)
end

-- /close-while-waiting: one light thread waits out a Retry-After of 3 s
-- (the client's own sleep, ngx.sleep); another closes the client 0.3 s
-- in.  The wait must end with kind closed long before the 3 s.
function _M.close_while_waiting()
    local c = cozmox.new({ transport = "nginx", max_retry_wait = 60,
        base_url = os.getenv("COZMOX_BASE_URL") .. "/fault/by-id" })
    local id = "own-retry-after?key=close-" .. tostring(ngx.now()) .. "-" .. math.random(1e9) .. "&retry_after=3"
    local t0 = ngx.now()
    local waiter = ngx.thread.spawn(function()
        local s, err = c.session.get(id)
        ngx.update_time()
        return { data = s ~= nil, kind = err and err.kind, elapsed = ngx.now() - t0 }
    end)
    ngx.thread.spawn(function()
        ngx.sleep(0.3)
        c:close()
    end)
    local ok, r = ngx.thread.wait(waiter)
    return reply(200, ok and r or { err = tostring(r) })
end

-- access_by_lua: a lookup before the content phase.
function _M.access()
    local s, err = clients.auto.session.get("demo")
    ngx.req.set_header("X-Session", s and s.id or tostring(err))
end

return _M
