-- Neovim headless (0.7, LuaJIT): the shared scenario (spec/hosts/scenario.lua)
-- in Neovim's own event loop, with the C core built for LuaJIT.
local hosts = require("hosts.support")
local util = require("support.util")

local function nvim(script, extra_env)
    local r = hosts.root
    local out = os.tmpname()
    local cmd = ("cd %s && COZMOX_LUA_PATH=%s COZMOX_LUA_CPATH=%s COZMOX_HOST_OUT=%s %s "
        .. "timeout 120 nvim --headless -u NONE -i NONE -c %s </dev/null"):format(hosts.q(r),
        hosts.q(r .. "/lua/?.lua;" .. r .. "/lua/?/init.lua;" .. r .. "/spec/?.lua;" .. r .. "/examples/?.lua"),
        hosts.q(r .. "/build/luajit/?.so"), hosts.q(out), extra_env or "", hosts.q("luafile " .. script))
    local log, ok = util.run(cmd)
    local f = io.open(out)
    local text = f and f:read("*a") or ""
    if f then f:close() end
    os.remove(out)
    return text, ok, log
end
_G.cozmox_nvim_run = nvim -- for the example's spec below

describe("Neovim headless", function()
    setup(function()
        hosts.need("nvim", "neovim")
        local out, ok = util.run(("make -s -C %s LUA=luajit all"):format(hosts.q(hosts.root)))
        assert(ok, "building the C core for LuaJIT failed:\n" .. out)
    end)

    it("never blocks Neovim's loop: concurrent requests, timeout, TLS, get_many, retries", function()
        local text, ok, log = nvim("spec/hosts/neovim_run.lua")
        assert(ok, log .. text)
        hosts.check("neovim", text)
    end)
end)
