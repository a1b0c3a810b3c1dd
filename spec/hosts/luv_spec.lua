-- lua5.4 + Debian's lua-luv: the shared scenario (spec/hosts/scenario.lua)
-- on libuv's loop (spec/hosts/luv_run.lua).
local hosts = require("hosts.support")

describe("lua5.4 + luv #hosts", function()
    it("never blocks libuv's loop: concurrent requests, timeout, TLS, get_many, retries", function()
        hosts.run_lua54("luv_run.lua", "luv")
    end)
end)
