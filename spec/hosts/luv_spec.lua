-- lua5.4 + Debian's lua-luv: the shared scenario (spec/hosts/scenario.lua)
-- on libuv's loop (spec/hosts/luv_run.lua).
local hosts = require("hosts.support")

describe("lua5.4 + luv #hosts", function()
    it("never blocks libuv's loop: concurrent requests, timeout, TLS, get_many, retries", function()
        hosts.run_lua54("luv_run.lua", "luv")
    end)

    it("a coroutine closed while it drives: the next one takes its descriptors over", function()
        local out, ok = hosts.exec_lua54("luv_close_run.lua")
        assert(ok, out)
        assert.matches("warm=ok after=delay%?ms=100&v=2", out)
    end)

    it("coroutines closed while they wait: the others keep their deadline, no descriptor is kept", function()
        local out, ok = hosts.exec_lua54("luv_drop_run.lua")
        assert(ok, out)
        io.write("\n", out)
        assert.equal("timeout", out:match("b_kind=(%S+)"), out)
        local elapsed = tonumber(out:match("b_elapsed=(%S+)"))
        assert(elapsed and elapsed < 1.15, out) -- timeout = 1
        local before, later, closed = out:match("fds_before=(%d+) fds_after=(%d+) fds_closed=(%d+)")
        before, later, closed = tonumber(before), tonumber(later), tonumber(closed)
        assert(later <= before + 2, out)
        assert(closed <= before, out)
    end)
end)
