-- Neovim headless (LuaJIT, vim.loop): the shared scenario in Neovim's own
-- event loop.  nvim --headless -u NONE -c "luafile spec/hosts/neovim_run.lua"
-- with COZMOX_LUA_PATH / COZMOX_LUA_CPATH naming the in-tree modules and
-- the LuaJIT build, and COZMOX_HOST_OUT the file the figures go to.
package.path = os.getenv("COZMOX_LUA_PATH") .. ";" .. package.path
package.cpath = os.getenv("COZMOX_LUA_CPATH") .. ";" .. package.cpath
local out = assert(os.getenv("COZMOX_HOST_OUT"), "COZMOX_HOST_OUT not set")

local function finish(text, code)
    local f = assert(io.open(out, "w"))
    f:write(text)
    f:close()
    vim.cmd((code == 0) and "qall!" or "cquit! " .. code)
end

local ok, err = pcall(function()
    local cozmox = require("cozmox")
    local scenario = require("hosts.scenario")
    scenario.run({
        name = "neovim",
        loop = cozmox.loop.luv(vim.loop),
        spawn = function(fn)
            coroutine.wrap(function()
                local ok2, e = pcall(fn)
                if not ok2 then finish("error " .. tostring(e) .. "\n", 1) end
            end)()
        end,
        every = function(s, fn)
            local t = vim.loop.new_timer()
            t:start(s * 1000, s * 1000, fn)
            return function() t:stop() t:close() end
        end,
        done = function(f) vim.schedule(function() finish(scenario.report("neovim", f), 0) end) end,
    })
end)
if not ok then finish("error " .. tostring(err) .. "\n", 1) end
