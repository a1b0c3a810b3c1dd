-- A C host embedding Lua as plugin hosts do (spec/c/loop_host.c): two
-- threads, each with its own lua_State and its own poll(2) loop, each
-- running the shared host scenario (spec/hosts/scenario.lua: concurrent
-- requests, a timeout, TLS, get_many, a retry) at the same time, with a
-- loop adapter of its own written against spec/support/scheduler.lua.
-- Built with COZMOX_OOM_CC / COZMOX_OOM_CFLAGS like the OOM host, so
-- `make sanitize` runs it under ASan and UBSan against the sanitized core.
local mock = require("support.mock")
local util = require("support.util")
local hosts = require("hosts.support")

local q = util.quote

describe("a C host with two threads", function()
    it("runs loop-driven requests concurrently in two lua_States, each on its own poll loop", function()
        assert.is_string(mock.base_url)
        local dir = util.core_template()
        local pc = type(jit) == "table" and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
        local bin = os.tmpname()
        local cc = os.getenv("COZMOX_OOM_CC") or "gcc"
        local cflags = os.getenv("COZMOX_OOM_CFLAGS") or ""
        local out, ok = util.run(("%s -std=gnu99 -O1 -g -Wall -Wextra %s -o %s %s "
            .. "$(pkg-config --cflags --libs %s) -lpthread")
            :format(cc, cflags, q(bin), q(util.spec_dir .. "/c/loop_host.c"), pc))
        assert(ok, "compiling spec/c/loop_host.c failed:\n" .. out)
        local r = hosts.root
        local t0 = require("cozmox.core").now()
        local path = r .. "/lua/?.lua;" .. r .. "/lua/?/init.lua;" .. r .. "/spec/?.lua"
        out, ok = util.run(("%s %s %s"):format(q(bin), q(path), q(dir)))
        local elapsed = require("cozmox.core").now() - t0
        os.remove(bin)
        assert(ok, out)
        assert.matches("loop_host: both threads finished", out, 1, true)
        hosts.check("thread1", out)
        hosts.check("thread2", out)
        -- the two scenarios ran at the same time, not one after the other
        print(("C host: both threads' scenarios in %.2f s"):format(elapsed))
        assert(elapsed < 6, "two threads took " .. elapsed .. " s")
    end)
end)
