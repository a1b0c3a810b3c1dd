-- lua5.4 + Debian's lua-cqueues: the shared scenario on a cqueue.
--   lua5.4 spec/hosts/cqueues_run.lua  (LUA_PATH/LUA_CPATH as in the Makefile)
local cqueues = require("cqueues")
local cozmox = require("cozmox")
local scenario = require("hosts.scenario")

local cq = cqueues.new()
local figures
scenario.run({
    name = "cqueues",
    loop = cozmox.loop.cqueues(),
    spawn = function(fn) cq:wrap(fn) end,
    every = function(s, fn)
        local running = true
        cq:wrap(function()
            while running do
                cqueues.sleep(s)
                if running then fn() end
            end
        end)
        return function() running = false end
    end,
    done = function(f) figures = f end,
})
assert(cq:loop())
io.write(scenario.report("cqueues", assert(figures, "the scenario did not finish")))
