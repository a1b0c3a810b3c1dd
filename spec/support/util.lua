--- Helpers shared by the specs.
local _M = {}

local math_type = math.type or function(v)
    if type(v) ~= "number" then return nil end
    return "float" -- Lua 5.1/LuaJIT: one number type
end
_M.math_type = math_type

--- Exact structural comparison: same types, same number subtypes (and
--  bit-for-bit equal values, -0.0 vs 0.0 included), same metatables.
--  Returns true, or false and the path of the first difference.
function _M.same(a, b, path)
    path = path or "$"
    local ta, tb = type(a), type(b)
    if ta ~= tb then return false, path .. ": " .. ta .. " vs " .. tb end
    if ta == "number" then
        if math_type(a) ~= math_type(b) then return false, path .. ": number subtype differs" end
        if a ~= a and b ~= b then return true end
        if a ~= b or (a == 0 and 1 / a ~= 1 / b) then
            return false, path .. ": " .. string.format("%.17g vs %.17g", a, b)
        end
        return true
    end
    if ta ~= "table" then
        if a ~= b then return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b) end
        return true
    end
    if getmetatable(a) ~= getmetatable(b) then return false, path .. ": metatables differ" end
    for k, v in pairs(a) do
        local ok, where = _M.same(v, rawget(b, k), path .. "." .. tostring(k))
        if not ok then return false, where end
    end
    for k in pairs(b) do
        if rawget(a, k) == nil then return false, path .. "." .. tostring(k) .. ": missing on the left" end
    end
    return true
end

function _M.read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

--- Directory of this checkout's spec/ folder.
_M.spec_dir = (debug.getinfo(1, "S").source:match("^@(.*)/support/util%.lua$")) or "spec"

function _M.fixture(name)
    return _M.read(_M.spec_dir .. "/fixtures/" .. name)
end

--- Lines printed by a shell command, and its success flag.
function _M.run(cmd)
    local p = assert(io.popen(cmd .. " 2>&1"))
    local out = p:read("*a")
    local ok = p:close()
    return out, ok
end

--- Run a Lua snippet in a fresh interpreter (the one under test, with the
--  in-tree modules); env: "VAR=value ..." prefix.  Returns output, ok.
function _M.run_lua(code, env)
    local f = os.tmpname()
    local h = assert(io.open(f, "w"))
    h:write(code)
    h:close()
    local out, ok = _M.run((env or "") .. " " .. _M.lua_bin() .. " " .. f)
    os.remove(f)
    return out, ok
end

--- A 127.0.0.1 port that was free a moment ago (nothing listens on it).
function _M.free_port()
    local socket = require("socket")
    local srv = assert(socket.bind("127.0.0.1", 0))
    local _, port = srv:getsockname()
    srv:close()
    return port
end

--- Start a helper server script of spec/support/ (lua5.4 SCRIPT ARGS...)
--  in the background; returns its pid once it printed "ready".
function _M.spawn(script, ...)
    local log = os.tmpname()
    local args = {}
    for i, a in ipairs({ ... }) do args[i] = _M.quote(tostring(a)) end
    local cmd = string.format("lua5.4 %s %s >%s 2>&1 & echo $!", _M.quote(_M.spec_dir .. "/support/" .. script),
        table.concat(args, " "), _M.quote(log))
    local pid = tonumber((_M.run(cmd)):match("%d+"))
    for _ = 1, 200 do
        local f = io.open(log)
        local text = f and f:read("*a") or ""
        if f then f:close() end
        if text:find("ready", 1, true) then
            os.remove(log)
            return pid
        end
        require("socket").sleep(0.05)
    end
    local why = _M.run("cat " .. _M.quote(log))
    os.remove(log)
    _M.kill(pid)
    error(script .. " did not start: " .. why)
end

--- Stop a process started by spawn (TERM, then KILL after a second).
function _M.kill(pid)
    if pid then
        _M.run("kill " .. pid .. "; for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 " .. pid
            .. " 2>/dev/null || break; sleep 0.1; done; kill -9 " .. pid .. " 2>/dev/null")
    end
end

--- The interpreter running the specs (for subprocess checks).
--- The package.cpath template (an absolute path with "?") under which
--  this run finds cozmox/core.so: the build the specs use.
function _M.core_template()
    for template in package.cpath:gmatch("[^;]+") do
        local h = io.open((template:gsub("%?", "cozmox/core")))
        if h then
            h:close()
            if template:sub(1, 1) ~= "/" then template = os.getenv("PWD") .. "/" .. template end
            return template
        end
    end
    error("cozmox.core not found on package.cpath", 2)
end

function _M.lua_bin()
    return os.getenv("LUA_BIN") or "lua5.4"
end

--- The checkout's root directory (the parent of spec/).
_M.root = _M.spec_dir:gsub("/spec$", "")
if _M.root == "spec" then _M.root = "." end

--- s as one word for sh, in single quotes.
function _M.quote(s)
    return "'" .. s:gsub("'", "'\\''") .. "'"
end
local quote = _M.quote

--- Run a shell command; returns its stdout, its stderr and its exit status.
function _M.sh(cmd)
    local err = os.tmpname()
    local p = assert(io.popen("(" .. cmd .. ") 2>" .. quote(err) .. "; echo \"<<$?>>\""))
    local text = p:read("*a")
    p:close()
    local stderr = _M.read(err)
    os.remove(err)
    local stdout, code = text:match("^(.*)<<(%d+)>>\n$")
    return stdout, stderr, tonumber(code)
end

--- A new empty directory (remove it with rm -rf when done).
function _M.tmpdir()
    local d = os.tmpname()
    os.remove(d)
    assert(_M.run("mkdir -p " .. quote(d)))
    return d
end

--- Copy the files git tracks, as they are in the working tree, to the new
--  directory dest: what a fresh clone of the current state would hold.
function _M.copy_checkout(dest)
    local out, err, code = _M.sh("mkdir " .. quote(dest) .. " && cd " .. quote(_M.root)
        .. " && git ls-files -z | xargs -0 cp --parents -t " .. quote(dest))
    assert(code == 0, "copying the checkout failed: " .. out .. err)
end

return _M
