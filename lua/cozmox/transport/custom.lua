--- cozmox.transport.custom: any HTTP client, as a function (see
--  cozmox.transport for the contract).
--
--   transport = function(req) return status, headers, body end
--
-- req = { method, url, headers = { [name] = value }, body, timeout,
-- connect_timeout, deadline, proxy } (timeout: seconds this attempt may
-- still take, deadline the same as a core.now() instant; headers include
-- Accept, User-Agent, Accept-Encoding: identity and, unless a redirect
-- left the origin, Authorization; proxy: the proxy option, for the
-- function to honour).  The function
-- returns the status, the response headers (a table of name = value) and
-- the body: a string, or a function returning the next chunk (nil at the
-- end, or nil, err when the body broke off).  It may return nil, err
-- instead (a message: kind "network").  A gzip or deflate body (said by
-- a Content-Encoding header) is decoded here, like every body, by the
-- response sink; the limits are applied by the sink too.  Raising inside
-- the function is the caller's error and propagates.
local core = require("cozmox.core")
local transport = require("cozmox.transport")

local type, tostring, pairs, ipairs, setmetatable = type, tostring, pairs, ipairs, setmetatable
local str_lower, math_floor = string.lower, math.floor
local new_sink, now = core.sink, core.now
local split_header, failure = transport.split_header, transport.failure

local _M = {}

local Custom = {}
Custom.__index = Custom

local secrets = setmetatable({}, { __mode = "k" })

function _M.new(s, secret, fn)
    local t = setmetatable({ s = s, fn = fn, user_agent = transport.user_agent(s) }, Custom)
    secrets[t] = secret
    return t
end

-- The response headers as the contract's table: lower-case names, string
-- values, repeats (a name given twice in different cases) joined.
local function lower_headers(h)
    local out = {}
    if type(h) ~= "table" then return out end
    for k, v in pairs(h) do
        if type(k) == "string" then
            local name = str_lower(k)
            v = type(v) == "table" and table.concat(v, ", ") or tostring(v)
            out[name] = out[name] and (out[name] .. ", " .. v) or v
        end
    end
    return out
end

function Custom:perform(req, want_meta)
    if self.closed then return transport.closed() end
    local s, secret = self.s, secrets[self]
    local headers = { Accept = "application/json", ["User-Agent"] = self.user_agent,
        ["Accept-Encoding"] = "identity" }
    if secret and not req.no_auth then headers.Authorization = secret.auth:match("^Authorization: (.*)$") end
    if req.body then headers["Content-Type"] = "application/json" end
    for _, line in ipairs(req.headers or {}) do
        local n, v = split_header(line)
        headers[n] = v
    end
    local t0 = now()
    local status, rheaders, body = self.fn({ method = req.method, url = req.url, headers = headers,
        body = req.body, timeout = req.timeout, connect_timeout = req.connect_timeout, deadline = req.deadline,
        proxy = s.proxy })
    if status == nil then
        if rheaders == "timeout" then return failure("timeout", "the transport function timed out", 28, false) end
        return failure("network", type(rheaders) == "string" and rheaders or "the transport function failed", 7, false)
    end
    if type(status) ~= "number" or status ~= math_floor(status) or status < 100 or status > 999 then
        return failure("network", "the transport function returned a status that is not an HTTP status ("
            .. type(status) .. ")", 8, true)
    end
    if body ~= nil and type(body) ~= "string" and type(body) ~= "function" then
        return failure("network", "the transport function returned a body that is neither a string nor a function ("
            .. type(body) .. ")", 8, true)
    end
    local h = lower_headers(rheaders)
    local rec = { status = status, headers = h, code = 0, started = true }
    local sink = new_sink(s.max_response_bytes, s.max_depth, s.json_big_integers)
    sink:begin(status, h["content-encoding"])
    local cut
    if type(body) == "string" then
        sink:feed(body)
    elseif type(body) == "function" then
        while true do
            local chunk, err = body()
            if chunk == nil then
                if err == "timeout" then
                    rec.kind, rec.message, rec.code, cut = "timeout", "the transport function timed out", 28, true
                elseif err then
                    rec.kind, rec.message, rec.code, cut = "network", tostring(err), 56, true
                end
                break
            end
            if not sink:feed(chunk) then break end
            if now() > req.deadline then
                rec.kind, rec.message, rec.code, cut = "timeout", "the response took longer than the timeout", 28, true
                break
            end
        end
    end
    sink:finish(rec, cut)
    if want_meta then
        local total = now() - t0
        rec.meta = { status = status, headers = h, http_version = "", bytes = rec.bytes, primary_ip = "",
            redirects = 0, timings = { namelookup = 0, connect = 0, tls = 0, first_byte = total, total = total } }
    end
    return rec
end

Custom.perform_many = transport.perform_each

function Custom:close()
    self.closed = true
end

return _M
