--- cozmox.loop.haproxy: the loop adapter for Lua inside HAProxy 2.6+.
--
--   local client = cozmox.new({ loop = cozmox.loop.haproxy() })
--
-- HAProxy's Lua cannot watch a descriptor of its own choosing, so this
-- adapter brings a transport instead of a `wait`: requests go through
-- HAProxy's httpclient (cozmox.transport.haproxy says how and why), and
-- waits between retries are core.msleep, which yields.  Both work where
-- HAProxy lets Lua yield: in services, actions and tasks.  The client
-- may be made while the file is loaded (lua-load, lua-load-per-thread)
-- and shared by all of them.  Raises when not inside HAProxy.
--
-- Calling it wraps core.register_service, core.register_action and
-- core.register_task (once): the functions registered after it are the
-- ones the client may wait in; anywhere else -- a sample fetch, a
-- converter, a coroutine of the caller's own, a function registered
-- before -- a call is a "config" failure before anything is sent
-- (cozmox.transport.haproxy, "where to wait").
local require, type, error, rawget, _G = require, type, error, rawget, _G
local math_floor = math.floor

return function()
    local hap = rawget(_G, "core") -- HAProxy's API, a global there
    if type(hap) ~= "table" or type(hap.httpclient) ~= "function" or type(hap.register_task) ~= "function"
        or type(hap.msleep) ~= "function" then
        error("cozmox.loop.haproxy: not running inside HAProxy 2.6 or later "
            .. "(its core.httpclient, core.register_task and core.msleep are needed)", 2)
    end
    require("cozmox.transport.haproxy").install(hap)
    return {
        name = "haproxy",
        transport = function(settings, secret)
            return require("cozmox.transport.haproxy").new(settings, secret, hap)
        end,
        sleep = function(seconds)
            hap.msleep(math_floor(seconds * 1000 + 0.5))
        end,
    }
end
