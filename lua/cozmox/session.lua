--- cozmox.session: the Session resource, bound to a client.
--
--   client.session.get(id) -> session | nil, err
local core = require("cozmox.core")

local type, error = type, error
local escape_segment = core.escape_segment

local _M = {}

-- The functions every bound resource has, in the order they are documented.
_M.FUNCTIONS = { "get" }

--- Raise the standard "bad argument" error unless id is a non-empty string.
function _M.check_id(id, fname, argn)
    if type(id) ~= "string" or id == "" then
        error(("bad argument #%d to '%s' (non-empty string expected, got %s)"):format(
            argn or 1, fname, type(id) == "string" and "empty string" or type(id)), 3)
    end
end
local check_id = _M.check_id

--- The resource table for client c (functions called with a dot).
function _M.bind(c)
    local res = {}

    --- GET /session/{id}: the session as native Lua tables.
    function res.get(id)
        check_id(id, "get")
        return c:_object("GET", "/session/" .. escape_segment(id))
    end

    return res
end

return _M
