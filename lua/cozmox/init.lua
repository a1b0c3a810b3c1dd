--- cozmox: the Lua client for the cozmox voice-AI API.
--
--   local cozmox = require("cozmox")
--   local s, err = cozmox.session.get(id)          -- default client (COZMOX_TOKEN)
--   local client = cozmox.new({ token = ..., timeout = 10 })
--   local s2, err2 = client.session.get(id)
local client = require("cozmox.client")
local json = require("cozmox.json")
local errors = require("cozmox.errors")
local session = require("cozmox.session")

local pcall, ipairs, tostring = pcall, ipairs, tostring

local _M = {
    _VERSION = client.VERSION,
    VERSION = client.VERSION,
    json = json,
    time = require("cozmox.time"),
    loop = require("cozmox.loop"),
    null = json.null,
    array_mt = json.array_mt,
    new = client.new,
    is_error = errors.is_error,
    escape_segment = require("cozmox.core").escape_segment,
}

-- The default client is built on first use, from the environment, so
-- that require("cozmox") never fails for a missing token.  A client
-- without a token is not kept: the next call looks again.
local default_client

local function default()
    if default_client then return default_client end
    local ok, c = pcall(client.new)
    if not ok then
        return nil, errors.new({ kind = "config", message = (tostring(c):gsub("^.-cozmox: ", "")) })
    end
    if client.has_token(c) then default_client = c end
    return c
end

--- The default client (created on first use), or nil, err.
_M.default = default

-- cozmox.session.<fn>(...) forwards to the default client's session.<fn>.
local default_session = {}
-- each() hands back an iterator, so a config failure there is raised
-- (as each() raises errors met mid-way) instead of returned.
for _, name in ipairs(session.FUNCTIONS) do
    default_session[name] = function(...)
        local c, err = default()
        if not c then
            if name == "each" then error(err, 2) end
            return nil, err
        end
        return c.session[name](...)
    end
end
_M.session = default_session

return _M
