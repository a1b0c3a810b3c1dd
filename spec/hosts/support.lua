--- What the host specs (spec/hosts/*_spec.lua, tagged #hosts) share: run a host
--  program with the in-tree modules, read the figures the shared
--  scenario printed, and check them against the issue's figures.
local util = require("support.util")
local assert = require("luassert")

local _M = {}

_M.root = util.root:sub(1, 1) == "/" and util.root or (os.getenv("PWD") .. "/" .. util.root)
_M.q = util.quote

--- A program the host needs, or a loud failure (never a skip).
function _M.need(cmd, package)
    local _, ok = util.run("command -v " .. cmd)
    assert(ok, cmd .. " is not installed: make test-hosts installs Debian's " .. package
        .. " (scripts/deps.sh with DEPS_EXTRA)")
end

--- "figure host key=value" lines -> { key = value } (numbers as numbers).
function _M.figures(out, host)
    local f = {}
    for k, v in out:gmatch("figure " .. host .. " ([%w_]+)=([^\n]*)") do f[k] = tonumber(v) or v end
    return f
end

--- The checks every host must pass (the issue's figures), with margins
--  for two shared, noisy cores.  Prints the figures.
function _M.check(host, out)
    local f = _M.figures(out, host)
    assert(f.total_ticks, "the " .. host .. " run printed no figures:\n" .. out)
    print(("\n%s: 5 x 1 s requests in %.3f s with %d ticks of a 50 ms timer; timeout after %.3f s (%d ticks); "
        .. "get_many 4 x 300 ms in %.3f s; Retry-After 1 s retried in %.3f s (%d ticks); TLS verified: %s")
        :format(host, f.concurrent_elapsed, f.concurrent_ticks, f.timeout_elapsed, f.timeout_ticks,
            f.many_elapsed, f.retry_elapsed, f.retry_ticks, tostring(f.tls_verified)))
    assert.equal(5, f.concurrent_ok, out)
    assert(f.concurrent_elapsed < 1.6, "5 concurrent 1 s requests took " .. f.concurrent_elapsed .. " s")
    assert(f.concurrent_ticks >= 15, "the timer ticked only " .. f.concurrent_ticks .. " times")
    assert.equal("timeout", f.timeout_kind)
    assert(f.timeout_elapsed >= 0.95 and f.timeout_elapsed < 1.6, "timeout after " .. f.timeout_elapsed .. " s")
    assert(f.timeout_ticks >= 12, "the timer ticked only " .. f.timeout_ticks .. " times during the timeout")
    assert.equal("true", tostring(f.tls_verified))
    assert.equal("tls", f.tls_untrusted_kind)
    assert.equal(0, f.many_failed)
    assert(f.many_elapsed < 0.9, "get_many of 4 x 300 ms took " .. f.many_elapsed .. " s")
    assert.equal("true", tostring(f.retry_ok))
    assert(f.retry_elapsed >= 0.95 and f.retry_ticks >= 12,
        "retry: " .. f.retry_elapsed .. " s, " .. f.retry_ticks .. " ticks")
    return f
end

--- Run a Lua 5.4 host program of spec/hosts/ with the in-tree modules
--  and check the scenario's figures it printed under name.
function _M.run_lua54(script, name)
    local out, ok = _M.exec_lua54(script)
    assert(ok, out)
    return _M.check(name, out)
end

--- Run spec/hosts/<script> under lua5.4 with the in-tree modules: its
--  output and whether it exited 0.
function _M.exec_lua54(script)
    return util.run(("cd %s && %s lua5.4 spec/hosts/%s"):format(_M.q(_M.root), _M.env("lua5.4"), script))
end

--- Environment words for a host process: the in-tree modules and the
--  build of flavour (lua5.4, luajit).
function _M.env(flavour)
    local r = _M.root
    return ("LUA_PATH=%s LUA_CPATH=%s"):format(
        _M.q(r .. "/lua/?.lua;" .. r .. "/lua/?/init.lua;" .. r .. "/spec/?.lua;;"),
        _M.q(r .. "/build/" .. flavour .. "/?.so;;"))
end

--- Run script in nvim --headless -u NONE with the in-tree modules and
--  the C core built for LuaJIT; the script writes what it reports to
--  COZMOX_HOST_OUT.  Returns that text, the exit status, nvim's output.
function _M.nvim(script, extra_env)
    _M.need("nvim", "neovim")
    local r = _M.root
    local built, bok = util.run(("make -s -C %s LUA=luajit all"):format(_M.q(r)))
    assert(bok, "building the C core for LuaJIT failed:\n" .. built)
    local out = os.tmpname()
    local cmd = ("cd %s && COZMOX_LUA_PATH=%s COZMOX_LUA_CPATH=%s COZMOX_HOST_OUT=%s %s "
        .. "timeout 120 nvim --headless -u NONE -i NONE -c %s </dev/null"):format(_M.q(r),
        _M.q(r .. "/lua/?.lua;" .. r .. "/lua/?/init.lua;" .. r .. "/spec/?.lua"),
        _M.q(r .. "/build/luajit/?.so"), _M.q(out), extra_env or "", _M.q("luafile " .. script))
    local log, ok = util.run(cmd)
    local f = io.open(out)
    local text = f and f:read("*a") or ""
    if f then f:close() end
    os.remove(out)
    return text, ok, log
end

return _M
