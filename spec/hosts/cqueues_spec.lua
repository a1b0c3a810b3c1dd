-- lua5.4 + Debian's lua-cqueues: the shared scenario (spec/hosts/scenario.lua)
-- on a cqueue.
local hosts = require("hosts.support")
local util = require("support.util")

describe("lua5.4 + cqueues #hosts", function()
    it("never blocks the cqueue: concurrent requests, timeout, TLS, get_many, retries", function()
        local out, ok = util.run(("cd %s && %s lua5.4 spec/hosts/cqueues_run.lua"):format(hosts.q(hosts.root),
            hosts.env("lua5.4")))
        assert(ok, out)
        hosts.check("cqueues", out)
    end)
end)
