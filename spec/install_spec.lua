-- Installation: `make install` and the rockspec put a working module and
-- the cozmox command into a Lua tree; the command then works against the
-- mock API whatever LUA_PATH and LUA_CPATH say.  The rockspec lists what
-- the tree holds, and a release made as the README says installs.
local util = require("support.util")

local root, q = util.root, util.quote

-- The tree and build flavour of the interpreter running the specs.
local luajit = type(jit) == "table"
local abi = luajit and "5.1" or _VERSION:match("%d+%.%d+")
local make_flavour = luajit and "LUA=luajit" or ("LUA_VERSION=" .. abi)
local RUNTIME = (luajit and jit.version) or _VERSION
local VERSION = require("cozmox").VERSION

local AVA = "7b69f9aa-e231-4973-b414-e1908675b72b"
local RILEY = "47e90163-0cde-4317-a117-08b6ab99568f"
local MARIA = "70fe0451-8264-41d4-92b0-82b83b97d402"

-- luarocks for the interpreter under test: for LuaJIT, a config that names it.
local function luarocks(args)
    if not luajit then return "luarocks --lua-version=" .. abi .. " " .. args end
    local conf = os.tmpname()
    local f = assert(io.open(conf, "w"))
    f:write('lua_interpreter = "luajit"\nvariables = { LUA_INCDIR = "/usr/include/luajit-2.1" }\n')
    f:close()
    return "LUAROCKS_CONFIG=" .. q(conf) .. " luarocks --lua-version=5.1 " .. args .. "; rc=$?; rm -f " .. q(conf)
        .. "; exit $rc"
end

local function try_tree(tree)
    local cmd = string.format(
        "cd /tmp && LUA_PATH='%s/share/lua/%s/?.lua;%s/share/lua/%s/?/init.lua' LUA_CPATH='%s/lib/lua/%s/?.so' "
        .. "%s -e 'local c = require(\"cozmox\"); print(c.VERSION, c.json.encode(c.json.decode(\"[1,{}]\")), "
        .. "(function(n) for p in package.cpath:gmatch(\"[^;]+\") do local f = p:gsub(\"?\", n) "
        .. "local h = io.open(f) if h then h:close() return f end end end)(\"cozmox/core\"))'",
        tree, abi, tree, abi, tree, abi, util.lua_bin())
    return util.run(cmd)
end

-- The installed command: get, list and export against the mock, from
-- another directory, with LUA_PATH/LUA_CPATH that find nothing (or the
-- modules of another Lua) -- it must find its own tree's.
local function check_command(cozmox)
    local env = "cd /tmp && LUA_PATH='/nonexistent/?.lua' LUA_CPATH='/usr/lib/x86_64-linux-gnu/lua/5.3/?.so' "
    local out, err, code = util.sh(env .. q(cozmox) .. " --version")
    assert.equal(0, code, err)
    assert.equal("cozmox " .. VERSION .. " (" .. RUNTIME .. ")\n", out)
    out, err, code = util.sh(env .. q(cozmox) .. " get " .. MARIA .. " --transcript")
    assert.equal(0, code, err)
    assert.equal("", err)
    assert.matches("^%[00:00%] Riley: Hi, this is Riley from Northwind Fiber%.", out)
    assert.equal(13, select(2, out:gsub("\n", "")))
    out, err, code = util.sh(env .. q(cozmox) .. " list --assistant " .. AVA)
    assert.equal(0, code, err)
    assert.matches("\n3c52e522%-4bcc%-435d%-8e80%-36187a47ac29  2025%-06%-05 13:05  completed  Ava ", out)
    assert.matches("\n2 of 2 sessions, newest first %(page 1 of 1%)\n$", out)
    out, err, code = util.sh(env .. q(cozmox) .. " export --assistant " .. RILEY .. " --page-size 2")
    assert.equal(0, code, err)
    assert.equal("", err)
    local n = 0
    for line in out:gmatch("[^\n]+") do
        n = n + 1
        assert.matches('"assistantId":"' .. RILEY .. '"', line, 1, true)
    end
    assert.equal(3, n)
    out, err, code = util.sh(env .. q(cozmox) .. " get nope")
    assert.equal(1, code)
    assert.equal("", out)
    assert.equal("cozmox: HTTP 404 Not Found: Session not found (GET /session/nope)\n", err)
end

-- Every file under dir (relative names, sorted).
local function files_under(dir)
    local out = util.run("cd " .. q(dir) .. " && find . -type f | sed 's|^\\./||' | LC_ALL=C sort")
    local list = {}
    for line in out:gmatch("[^\n]+") do list[#list + 1] = line end
    return list
end

-- The rockspec, loaded as luarocks loads it (a chunk setting globals).
local function rockspec(path)
    local env = {}
    local src = util.read(path)
    local chunk
    if setfenv then
        chunk = assert(loadstring(src, "@" .. path))
        setfenv(chunk, env)
    else
        chunk = assert(load(src, "@" .. path, "t", env))
    end
    chunk()
    return env
end

describe("installation", function()
    it("make install PREFIX=... installs modules, core.so and the cozmox command into the standard tree", function()
        local tree = util.tmpdir()
        local out, ok = util.run(string.format("make -s -C %s install PREFIX=%s %s", q(root), q(tree), make_flavour))
        assert(ok, out)
        local res, ok2 = try_tree(tree)
        assert(ok2, res)
        local core = tree .. "/lib/lua/" .. abi .. "/cozmox/core.so"
        assert.matches("^0%.1%.0\t%[1,{}%]\t" .. core:gsub("%p", "%%%0"), res)
        -- exactly: every module of lua/, the core, the command
        local want = { "bin/cozmox", "lib/lua/" .. abi .. "/cozmox/core.so", "lib/lua/" .. abi .. "/cozmox/curl.so" }
        for _, f in ipairs(files_under(root .. "/lua")) do want[#want + 1] = "share/lua/" .. abi .. "/" .. f end
        table.sort(want)
        assert.same(want, files_under(tree))
        -- the command runs with the interpreter it was installed for
        local first = util.read(tree .. "/bin/cozmox"):match("^[^\n]*")
        local interpreter = util.run("command -v " .. q(util.lua_bin())):gsub("\n$", "")
        assert.equal("#!" .. interpreter, first)
        assert.equal("-rwxr-xr-x", util.run("ls -l " .. q(tree .. "/bin/cozmox")):sub(1, 10))
        check_command(tree .. "/bin/cozmox")
        out, ok = util.run(string.format("make -s -C %s uninstall PREFIX=%s %s", q(root), q(tree), make_flavour))
        assert(ok, out)
        assert.same({}, files_under(tree))
        util.run("rm -rf " .. q(tree))
    end)

    it("luarocks make --deps-mode=none builds and installs the rockspec, the command included", function()
        local tree = util.tmpdir()
        local out, err, code = util.sh("cd " .. q(root) .. " && "
            .. luarocks("make --deps-mode=none --tree " .. q(tree) .. " cozmox-" .. VERSION .. "-1.rockspec"))
        assert.equal(0, code, out .. err)
        assert.matches("is now installed", out)
        local res, ok2 = try_tree(tree)
        assert(ok2, res)
        assert.matches("^0%.1%.0\t%[1,{}%]\t", res)
        check_command(tree .. "/bin/cozmox")
        util.run("rm -rf " .. q(tree))
    end)
end)

describe("the rockspec", function()
    local name = "cozmox-" .. VERSION .. "-1.rockspec"
    local spec = rockspec(root .. "/" .. name)

    it("lists every Lua module under lua/ and, for the two C modules, the src/*.c the Makefile builds them from",
        function()
        local want = {}
        for _, f in ipairs(files_under(root .. "/lua")) do
            if f:match("%.lua$") then
                local mod = f:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
                want[mod] = "lua/" .. f
            end
        end
        local have, sources = {}, {}
        for mod, def in pairs(spec.build.modules) do
            if type(def) == "table" then
                sources[mod] = {}
                for _, src in ipairs(def.sources) do sources[mod][#sources[mod] + 1] = src end
                table.sort(sources[mod])
            else
                have[mod] = def
            end
        end
        assert.same(want, have)
        -- the Makefile's split: cozmox.core is src/*.c but CURL_ONLY,
        -- cozmox.curl is src/*.c but CORE_ONLY
        local makefile = util.read(root .. "/Makefile")
        local function list(var)
            local set = {}
            for f in makefile:match("\n" .. var .. "%s*:=%s*([^\n]*)"):gmatch("%S+") do set[f] = true end
            return set
        end
        local curl_only, core_only = list("CURL_ONLY"), list("CORE_ONLY")
        local core_want, curl_want = {}, {}
        for _, f in ipairs(files_under(root .. "/src")) do
            if f:match("%.c$") then
                f = "src/" .. f
                if not curl_only[f] then core_want[#core_want + 1] = f end
                if not core_only[f] then curl_want[#curl_want + 1] = f end
            end
        end
        assert.is_true(#core_want > 0 and #curl_want > 0)
        assert.same({ ["cozmox.core"] = core_want, ["cozmox.curl"] = curl_want }, sources)
    end)

    it("installs every command under bin/, names its version everywhere alike and is lint-clean", function()
        local bins = {}
        for _, f in ipairs(files_under(root .. "/bin")) do bins[f] = "bin/" .. f end
        assert.same(bins, spec.build.install.bin)
        assert.equal("cozmox", spec.package)
        assert.equal(VERSION .. "-1", spec.version)
        assert.equal("v" .. VERSION, spec.source.tag)
        assert.matches("^git%+https://", spec.source.url)
        local out, err, code = util.sh("cd " .. q(root) .. " && luarocks lint " .. q(name))
        assert.equal(0, code, out .. err)
        assert.equal("", out .. err)
    end)

    it("makes a release as the README says: tag, luarocks pack, and the .src.rock installs", function()
        -- A repository holding the tracked files as they are now, standing
        -- in for the project's remote; the rockspec's source points at it.
        local work = util.tmpdir()
        local repo, tree = work .. "/cozmox-lua", work .. "/tree"
        util.copy_checkout(repo)
        local out, err, code = util.sh("cd " .. q(repo) .. " && git init -q && git add -A"
            .. " && git -c user.name=spec -c user.email=spec@example.com commit -qm release"
            .. " && git tag v" .. VERSION)
        assert.equal(0, code, out .. err)
        local text = util.read(repo .. "/" .. name)
        local url = assert(text:match('url = "(git%+https://[^"]+)"'))
        local f = assert(io.open(work .. "/" .. name, "w"))
        f:write((text:gsub(url:gsub("%p", "%%%0"), "git+file://" .. repo)))
        f:close()
        out, err, code = util.sh("cd " .. q(work) .. " && luarocks pack " .. q(name))
        assert.equal(0, code, out .. err)
        local rock = "cozmox-" .. VERSION .. "-1.src.rock"
        assert.matches(rock, out, 1, true)
        local listing = util.run("cd " .. q(work) .. " && unzip -l " .. q(rock))
        assert.matches(" " .. name .. "\n", listing, 1, true)
        out, err, code = util.sh("cd " .. q(work) .. " && "
            .. luarocks("build --deps-mode=none --tree " .. q(tree) .. " " .. q(rock)))
        assert.equal(0, code, out .. err)
        check_command(tree .. "/bin/cozmox")
        util.run("rm -rf " .. q(work))
    end)
end)
