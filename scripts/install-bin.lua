-- Install the cozmox command for one Lua (run by `make install`):
--
--   LUA scripts/install-bin.lua SRC DST INTERPRETER LUA_LMOD LUA_CMOD
--
-- Writes SRC (bin/cozmox) to DST with its first line "#!INTERPRETER" and
-- the line "local INSTALL_TREE = nil" filled in with the tree's module
-- paths (LUA_LMOD/?.lua, LUA_LMOD/?/init.lua, LUA_CMOD/?.so), so the
-- installed command runs with the Lua it was installed for and finds the
-- modules installed beside it, whatever LUA_PATH says.  Mode 0755.
local src, dst, interpreter, lmod, cmod = arg[1], arg[2], arg[3], arg[4], arg[5]
if not (src and dst and interpreter and lmod and cmod) or interpreter == "" then
    io.stderr:write("usage: lua scripts/install-bin.lua SRC DST INTERPRETER LUA_LMOD LUA_CMOD\n")
    os.exit(2)
end
if not interpreter:match("^/") then
    io.stderr:write("install-bin.lua: the interpreter must be an absolute path, got '", interpreter, "'\n")
    os.exit(2)
end

local f = assert(io.open(src, "rb"))
local text = f:read("*a")
f:close()

local first_line_end = assert(text:find("\n", 1, true), src .. ": no first line")
assert(text:sub(1, 2) == "#!", src .. ": no #! line")
text = "#!" .. interpreter .. text:sub(first_line_end)

local tree = string.format("local INSTALL_TREE = { path = %q, cpath = %q }",
    lmod .. "/?.lua;" .. lmod .. "/?/init.lua", cmod .. "/?.so")
local n
text, n = text:gsub("\nlocal INSTALL_TREE = nil\n", function() return "\n" .. tree .. "\n" end)
assert(n == 1, src .. ": expected one line 'local INSTALL_TREE = nil'")

local tmp = dst .. ".tmp"
f = assert(io.open(tmp, "wb"))
assert(f:write(text))
assert(f:close())
local q = function(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local r = os.execute("chmod 0755 " .. q(tmp) .. " && mv -f " .. q(tmp) .. " " .. q(dst))
if not (r == true or r == 0) then
    os.remove(tmp)
    io.stderr:write("install-bin.lua: could not install ", dst, "\n")
    os.exit(1)
end
