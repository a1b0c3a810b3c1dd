-- Neovim headless (0.7, LuaJIT): the shared scenario (spec/hosts/scenario.lua)
-- in Neovim's own event loop, with the C core built for LuaJIT.
local hosts = require("hosts.support")


describe("Neovim headless #hosts", function()
    it("never blocks Neovim's loop: concurrent requests, timeout, TLS, get_many, retries", function()
        local text, ok, log = hosts.nvim("spec/hosts/neovim_run.lua")
        assert(ok, log .. text)
        hosts.check("neovim", text)
    end)
end)
