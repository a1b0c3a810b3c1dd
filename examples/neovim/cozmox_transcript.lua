--[[
A Neovim command that shows a session's transcript in a new buffer,
without ever freezing the editor while the request runs.

  :luafile examples/neovim/cozmox_transcript.lua   (or put it in your config)
  :CozmoxTranscript <session-id>

The cozmox modules must be on package.path/cpath, with the C core built for
Neovim's LuaJIT (make LUA=luajit); COZMOX_TOKEN (and COZMOX_BASE_URL) come
from the environment.  The request runs in a coroutine; cozmox.loop.luv
suspends it on vim.loop (libuv) and resumes it through vim.schedule, so
the code after the request may call vim.api.
]]
local cozmox = require("cozmox")

-- One client for the editor session, made on first use.
local client
local function api()
    client = client or cozmox.new({ loop = cozmox.loop.luv(vim.loop), timeout = 30 })
    return client
end

local M = {}

--- Fetch session id and open its transcript in a scratch buffer.
--  done(buf | nil, err) is called when finished (optional).
function M.show(id, done)
    coroutine.wrap(function()
        local s, err = api().session.get(id)
        if not s then
            vim.notify("CozmoxTranscript: " .. tostring(err), vim.log.levels.ERROR)
            if done then done(nil, err) end
            return
        end
        local lines = { ("Session %s (%s)"):format(s.id, tostring(s.status)), "" }
        for line in (s:transcript({ timestamps = true }) .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = line end
        vim.cmd("new")
        local buf = vim.api.nvim_get_current_buf()
        vim.api.nvim_buf_set_name(buf, "cozmox://" .. s.id)
        vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
        vim.bo[buf].buftype, vim.bo[buf].modifiable = "nofile", false
        if done then done(buf) end
    end)()
end

vim.api.nvim_create_user_command("CozmoxTranscript", function(cmd) M.show(cmd.args) end,
    { nargs = 1, desc = "Show a cozmox session's transcript in a buffer" })

package.loaded["cozmox_transcript"] = M
return M
