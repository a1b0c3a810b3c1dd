-- lua5.4 + Debian's lua-luv: the shared scenario on libuv's loop.
--   lua5.4 spec/hosts/luv_run.lua      (LUA_PATH/LUA_CPATH as in the Makefile)
local uv = require("luv")
local cozmox = require("cozmox")
local scenario = require("hosts.scenario")

local figures
scenario.run({
    name = "luv",
    loop = cozmox.loop.luv(uv),
    spawn = function(fn) coroutine.wrap(fn)() end,
    every = function(s, fn)
        local t = uv.new_timer()
        t:start(s * 1000, s * 1000, fn)
        return function() t:stop() t:close() end
    end,
    done = function(f) figures = f end,
})
uv.run()
io.write(scenario.report("luv", assert(figures, "the scenario did not finish")))
