-- Installation: `make install` and the rockspec put a working module into
-- the standard Lua tree.
local util = require("support.util")

local root = util.spec_dir:gsub("/spec$", "")
if root == "spec" then root = "." end

local function try_tree(tree, abi)
    local cmd = string.format(
        "cd /tmp && LUA_PATH='%s/share/lua/%s/?.lua;%s/share/lua/%s/?/init.lua' LUA_CPATH='%s/lib/lua/%s/?.so' "
        .. "%s -e 'local c = require(\"cozmox\"); print(c.VERSION, c.json.encode(c.json.decode(\"[1,{}]\")), "
        .. "package.searchpath(\"cozmox.core\", package.cpath))'",
        tree, abi, tree, abi, tree, abi, util.lua_bin())
    return util.run(cmd)
end

describe("installation", function()
    it("make install PREFIX=... installs modules and core.so into the standard tree", function()
        local tree = os.tmpname()
        os.remove(tree)
        local out, ok = util.run(string.format("make -s -C '%s' install PREFIX='%s'", root, tree))
        assert(ok, out)
        local v = util.read(tree .. "/share/lua/5.4/cozmox/init.lua")
        assert.matches("cozmox", v)
        local res, ok2 = try_tree(tree, "5.4")
        assert(ok2, res)
        assert.matches("^0%.1%.0\t%[1,{}%]\t" .. tree:gsub("%p", "%%%0") .. "/lib/lua/5%.4/cozmox/core%.so", res)
        util.run("rm -rf '" .. tree .. "'")
    end)

    it("luarocks make --deps-mode=none builds and installs the rockspec", function()
        local tree = os.tmpname()
        os.remove(tree)
        local out, ok = util.run(string.format(
            "cd '%s' && luarocks --lua-version=5.4 make --deps-mode=none --tree '%s' cozmox-*.rockspec", root, tree))
        assert(ok, out)
        assert.matches("is now installed", out)
        local res, ok2 = try_tree(tree, "5.4")
        assert(ok2, res)
        assert.matches("^0%.1%.0\t%[1,{}%]\t", res)
        util.run("rm -rf '" .. tree .. "'")
    end)
end)
