-- Runs examples/neovim/cozmox_transcript.lua as a user would, inside
-- nvim --headless: :CozmoxTranscript demo, then writes the buffer it
-- opened (and how often a 20 ms timer ticked meanwhile) to COZMOX_HOST_OUT.
package.path = os.getenv("COZMOX_LUA_PATH") .. ";" .. package.path
package.cpath = os.getenv("COZMOX_LUA_CPATH") .. ";" .. package.cpath
local out = assert(os.getenv("COZMOX_HOST_OUT"))

local function finish(text, code)
    local f = assert(io.open(out, "w"))
    f:write(text)
    f:close()
    vim.cmd(code == 0 and "qall!" or ("cquit! " .. code))
end

local ticks = 0
local ticker = vim.loop.new_timer()
ticker:start(20, 20, function() ticks = ticks + 1 end)
vim.cmd("luafile " .. os.getenv("COZMOX_EXAMPLE"))
local t0 = vim.loop.hrtime()
vim.cmd("CozmoxTranscript demo")
local returned_ms = (vim.loop.hrtime() - t0) / 1e6 -- the command returns at once,
local function transcript_buffer()                   -- before the buffer exists
    for _, b in ipairs(vim.api.nvim_list_bufs()) do
        if vim.api.nvim_buf_get_name(b):match("cozmox://demo$") then return b end
    end
end
local early = transcript_buffer() ~= nil
local poll = vim.loop.new_timer()
poll:start(10, 10, vim.schedule_wrap(function()
    local b = transcript_buffer()
    if b then
        poll:stop()
        ticker:stop()
        local lines = vim.api.nvim_buf_get_lines(b, 0, -1, false)
        finish(("returned_ms=%.1f\nearly=%s\nticks=%d\n%s\n"):format(returned_ms, tostring(early), ticks,
            table.concat(lines, "\n")), 0)
        return
    end
    if (vim.loop.hrtime() - t0) / 1e9 > 20 then finish("no buffer after 20 s\n", 1) end
end))
