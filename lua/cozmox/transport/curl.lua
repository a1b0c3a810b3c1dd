--- cozmox.transport.curl: libcurl, blocking (see cozmox.transport for
--  the contract).
--
-- The C module cozmox.curl -- and with it libcurl and the libraries it
-- links -- is loaded on the first request, not when the client is made:
-- a program that never sends a request through curl never loads it.  One
-- easy handle per client keeps its connection alive between calls; every
-- client of a Lua state shares DNS cache, TLS sessions and connections
-- through curl's share handle.  curl decodes gzip/deflate itself, so its
-- sink sees decoded bytes.
local setmetatable, require = setmetatable, require
local user_agent = require("cozmox.transport").user_agent

local _M = {}

local Curl = {}
Curl.__index = Curl

-- The handle's secret options live here, out of sight of pairs().
local secrets = setmetatable({}, { __mode = "k" })

local curl_module

--- The C module (loaded now if it was not).
function _M.module()
    if not curl_module then curl_module = require("cozmox.curl") end
    return curl_module
end

function _M.new(s, secret)
    local t = setmetatable({ s = s }, Curl)
    secrets[t] = secret
    return t
end

function Curl:_handle()
    local h = self.h
    if h then return h end
    local s, secret = self.s, secrets[self]
    local curl = _M.module()
    h = curl.handle({
        auth = secret and secret.auth, user_agent = user_agent(s, "libcurl/" .. curl.version),
        connect_timeout = s.connect_timeout, max_response_bytes = s.max_response_bytes,
        max_depth = s.max_depth, big_integers = s.json_big_integers,
        ca_file = s.ca_file, ca_path = s.ca_path, proxy = s.proxy, insecure = s.insecure,
    })
    self.h = h
    return h
end

local closed_record = require("cozmox.transport").closed

function Curl:perform(req, want_meta)
    if self.closed then return closed_record() end
    return self:_handle():perform(req, want_meta)
end

function Curl:perform_many(reqs, concurrency, want_meta)
    if self.closed then
        local out = {}
        for i = 1, #reqs do out[i] = closed_record() end
        return out
    end
    return self:_handle():perform_many(reqs, concurrency, want_meta)
end

--- Release the handle; the transport stays closed (it never reopens).
function Curl:close()
    self.closed = true
    local h = self.h
    if h then
        self.h = nil
        h:close()
    end
end

return _M
