-- lua5.4 + Debian's lua-luv: the shared scenario (spec/hosts/scenario.lua)
-- on libuv's loop (spec/hosts/luv_run.lua).
local hosts = require("hosts.support")

describe("lua5.4 + luv #hosts", function()
    it("never blocks libuv's loop: concurrent requests, timeout, TLS, get_many, retries", function()
        hosts.run_lua54("luv_run.lua", "luv")
    end)

    it("a coroutine closed while it drives: the next one takes its descriptors over", function()
        local util = require("support.util")
        local out, ok = util.run(("cd %s && %s lua5.4 spec/hosts/luv_close_run.lua"):format(hosts.q(hosts.root),
            hosts.env("lua5.4")))
        assert(ok, out)
        assert.matches("warm=ok after=delay%?ms=100&v=2", out)
    end)
end)
