--- cozmox: the Lua client for the cozmox voice-AI API.
--
--   local cozmox = require("cozmox")
--   local s, err = cozmox.session.get(id)          -- default client (COZMOX_TOKEN)
--   local client = cozmox.new({ token = ..., timeout = 10 })
--   local s2, err2 = client.session.get(id)
--
-- require("cozmox") loads only this file and the C codec: the client, its
-- sessions, errors and transports are loaded on first use (and libcurl on
-- the first request through curl), so a program pays for what it uses.
local require, pcall, tostring, setmetatable, rawset, rawget, ipairs, error, type, _G =
    require, pcall, tostring, setmetatable, rawset, rawget, ipairs, error, type, _G
local json = require("cozmox.json")

local VERSION = "0.1.0"

local _M = {
    _VERSION = VERSION,
    VERSION = VERSION,
    json = json,
    null = json.null,
    array_mt = json.array_mt,
    escape_segment = require("cozmox.core").escape_segment,
}

-- Fields loaded on first use: name -> function returning the value.
local LAZY = {
    time = function() return require("cozmox.time") end,
    loop = function() return require("cozmox.loop") end,
    is_error = function() return require("cozmox.errors").is_error end,
}

-- Inside HAProxy (its `core` global), the functions registered from now
-- on are marked as places where the client may wait: see
-- cozmox.transport.haproxy, "where to wait".
do
    local hap = rawget(_G, "core")
    if type(hap) == "table" and type(hap.httpclient) == "function" and type(hap.register_task) == "function" then
        require("cozmox.transport.haproxy").install(hap)
    end
end

setmetatable(_M, { __index = function(t, k)
    local load = LAZY[k]
    if not load then return nil end
    local v = load()
    rawset(t, k, v)
    return v
end })

--- cozmox.new(opts): a client (see cozmox.client).
function _M.new(opts)
    local c = require("cozmox.client").new(opts, 2) -- not a tail call: level 2 is the caller's line
    return c
end

-- The default client is built on first use, from the environment, so
-- that require("cozmox") never fails for a missing token.  A client
-- without a token is not kept: the next call looks again.
local default_client

local function default()
    if default_client then return default_client end
    local client = require("cozmox.client")
    local ok, c = pcall(client.new)
    if not ok then
        return nil, require("cozmox.errors").new({ kind = "config",
            message = (tostring(c):gsub("^.-cozmox: ", "")) })
    end
    if client.has_token(c) then default_client = c end
    return c
end

--- The default client (created on first use), or nil, err.
_M.default = default

-- cozmox.session.<fn>(...) forwards to the default client's session.<fn>;
-- the forwarders are made on first use, for the names session.lua has.
_M.session = setmetatable({}, { __index = function(t, name)
    local known = false
    for _, fn in ipairs(require("cozmox.session").FUNCTIONS) do
        if fn == name then known = true end
    end
    if not known then return nil end
    local forward = function(...)
        local c, err = default()
        if not c then
            -- each() hands back an iterator, so a config failure there is
            -- raised (as each() raises errors met mid-way) instead of returned.
            if name == "each" then error(err, 2) end
            return nil, err
        end
        return c.session[name](...)
    end
    rawset(t, name, forward)
    return forward
end })

return _M
