-- Installation: `make install` and the rockspec put a working module into
-- the standard Lua tree.
local util = require("support.util")

local root = util.spec_dir:gsub("/spec$", "")
if root == "spec" then root = "." end

-- The tree and build flavour of the interpreter running the specs.
local abi = type(jit) == "table" and "5.1" or _VERSION:match("%d+%.%d+")
local make_flavour = type(jit) == "table" and "LUA=luajit" or ("LUA_VERSION=" .. abi)

local function try_tree(tree, abi)
    local cmd = string.format(
        "cd /tmp && LUA_PATH='%s/share/lua/%s/?.lua;%s/share/lua/%s/?/init.lua' LUA_CPATH='%s/lib/lua/%s/?.so' "
        .. "%s -e 'local c = require(\"cozmox\"); print(c.VERSION, c.json.encode(c.json.decode(\"[1,{}]\")), "
        .. "(function(n) for p in package.cpath:gmatch(\"[^;]+\") do local f = p:gsub(\"?\", n) "
        .. "local h = io.open(f) if h then h:close() return f end end end)(\"cozmox/core\"))'",
        tree, abi, tree, abi, tree, abi, util.lua_bin())
    return util.run(cmd)
end

describe("installation", function()
    it("make install PREFIX=... installs modules and core.so into the standard tree", function()
        local tree = os.tmpname()
        os.remove(tree)
        local out, ok = util.run(string.format("make -s -C '%s' install PREFIX='%s' %s", root, tree, make_flavour))
        assert(ok, out)
        local v = util.read(tree .. "/share/lua/" .. abi .. "/cozmox/init.lua")
        assert.matches("cozmox", v)
        local res, ok2 = try_tree(tree, abi)
        assert(ok2, res)
        assert.matches("^0%.1%.0\t%[1,{}%]\t" .. (tree .. "/lib/lua/" .. abi .. "/cozmox/core.so"):gsub("%p", "%%%0"), res)
        util.run("rm -rf '" .. tree .. "'")
    end)

    it("luarocks make --deps-mode=none builds and installs the rockspec", function()
        local tree = os.tmpname()
        os.remove(tree)
        local out, ok = util.run(string.format(
            "cd '%s' && luarocks --lua-version=%s make --deps-mode=none --tree '%s' cozmox-*.rockspec", root, abi, tree))
        assert(ok, out)
        assert.matches("is now installed", out)
        local res, ok2 = try_tree(tree, abi)
        assert(ok2, res)
        assert.matches("^0%.1%.0\t%[1,{}%]\t", res)
        util.run("rm -rf '" .. tree .. "'")
    end)
end)
