-- lua5.4 + Debian's lua-luv: the shared scenario (spec/hosts/scenario.lua)
-- on libuv's loop, and examples/luv_transcript.lua.
local hosts = require("hosts.support")
local util = require("support.util")

describe("lua5.4 + luv #hosts", function()
    it("never blocks libuv's loop: concurrent requests, timeout, TLS, get_many, retries", function()
        hosts.need("lua5.4", "lua5.4")
        local out, ok = util.run(("cd %s && %s lua5.4 spec/hosts/luv_run.lua"):format(hosts.q(hosts.root),
            hosts.env("lua5.4")))
        assert(ok, out)
        hosts.check("luv", out)
    end)
end)
