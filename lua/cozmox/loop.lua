--- cozmox.loop: adapters for the host's event loop (the `loop` option of
--  cozmox.new).  Each is loaded on first use.
--
--   cozmox.loop.haproxy()   inside HAProxy (2.6+): services, actions, tasks
local require = require

local _M = {}

function _M.haproxy(...)
    return require("cozmox.loop.haproxy")(...)
end

return _M
