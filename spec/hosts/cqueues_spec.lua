-- lua5.4 + Debian's lua-cqueues: the shared scenario (spec/hosts/scenario.lua)
-- on a cqueue (spec/hosts/cqueues_run.lua).
local hosts = require("hosts.support")

describe("lua5.4 + cqueues #hosts", function()
    it("never blocks the cqueue: concurrent requests, timeout, TLS, get_many, retries", function()
        hosts.run_lua54("cqueues_run.lua", "cqueues")
    end)
end)
