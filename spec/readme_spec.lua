-- The README works as written:
--  * its Lua examples run against the mock API and print what their
--    "--> ..." comments say;
--  * its shell commands run, as written and in order, in one bash session
--    in a copy of the checkout (the tracked files as they are now) with a
--    fresh HOME and a plain environment -- as a newcomer would type them --
--    and a ```text block right after a ```sh block is exactly what that
--    block prints on stdout.  A block that cannot run here is preceded by
--    "<!-- not run: why -->";
--  * its table of contents links every section.
local util = require("support.util")

local readme = util.read(util.spec_dir .. "/../README.md")
local q = util.quote

-- Every fenced block in order: { lang, code, before = the text since the previous block }.
local fenced = {}
do
    local pos = 1
    while true do
        local s, e, lang, code = readme:find("```(%w*)\n(.-)```\n?", pos)
        if not s then break end
        fenced[#fenced + 1] = { lang = lang, code = code, before = readme:sub(pos, s - 1) }
        pos = e + 1
    end
end

-- The shell blocks: { code, output = expected stdout or nil, skip = reason or nil }.
local shell = {}
for i, b in ipairs(fenced) do
    if b.lang == "sh" then
        local nxt = fenced[i + 1]
        shell[#shell + 1] = {
            code = b.code,
            skip = b.before:match("<!%-%- not run: ([^\n]-) %-%->%s*$"),
            output = nxt and nxt.lang == "text" and nxt.before:match("^%s*$") and nxt.code or nil,
        }
    end
end

local blocks = {}
for code in readme:gmatch("```lua\n(.-)```") do blocks[#blocks + 1] = code end

local function normalize(s)
    return (s:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end

describe("README", function()
    it("has Lua examples", function()
        assert.is_true(#blocks >= 3)
    end)

    it("gives the two commands make demo and make test", function()
        assert.matches("make demo", readme, 1, true)
        assert.matches("make test", readme, 1, true)
    end)

    it("has a table of contents linking every section, and only sections", function()
        local toc = assert(readme:match("\n## Contents\n(.-)\n## "))
        local function slug(title)
            return (title:lower():gsub("[^%w%- ]", ""):gsub(" ", "-"))
        end
        local anchors, sections = {}, {}
        for level, title in readme:gmatch("\n(##+) ([^\n]+)") do
            if title ~= "Contents" then
                anchors[slug(title)] = true
                if level == "##" then sections[#sections + 1] = slug(title) end
            end
        end
        local linked = {}
        for anchor in toc:gmatch("%]%(#([^)]+)%)") do
            assert(anchors[anchor], "the contents link #" .. anchor .. ", which is no heading")
            linked[anchor] = true
        end
        for _, anchor in ipairs(sections) do
            assert(linked[anchor], "section #" .. anchor .. " is not in the contents")
        end
    end)

    it("runs its shell commands as written, each printing what the README shows", function()
        local ran, reasons = {}, {}
        for _, b in ipairs(shell) do
            if b.skip then reasons[#reasons + 1] = b.skip else ran[#ran + 1] = b end
        end
        assert.is_true(#ran >= 10)
        assert.is_true(#reasons <= 3)
        local all = {}
        for _, b in ipairs(ran) do all[#all + 1] = b.code end
        all = table.concat(all, "\n")
        for _, cmd in ipairs({ "make demo", "make install PREFIX=", "luarocks --lua-version=5.4 make",
            "make install LUA_VERSION=5.1", "make install LUA=luajit", "cozmox get", "cozmox list",
            "cozmox export", "cozmox --help" }) do
            assert.matches(cmd, all, 1, true)
        end

        local work = util.tmpdir()
        local copy, home, state = work .. "/cozmox-lua", work .. "/home", work .. "/state"
        util.copy_checkout(copy)
        assert(util.run("mkdir " .. q(home) .. " " .. q(state)))
        local main = { "set -euo pipefail", "cd " .. q(copy) }
        for i, b in ipairs(ran) do
            local f = assert(io.open(state .. "/" .. i .. ".sh", "w"))
            f:write(b.code)
            f:close()
            main[#main + 1] = ("echo %d > %s; . %s > %s 2> %s"):format(i, q(state .. "/current"),
                q(state .. "/" .. i .. ".sh"), q(state .. "/" .. i .. ".out"), q(state .. "/" .. i .. ".err"))
        end
        main[#main + 1] = "echo done > " .. q(state .. "/current")
        local f = assert(io.open(state .. "/main.sh", "w"))
        f:write(table.concat(main, "\n"), "\n")
        f:close()
        local out = util.run("env -i HOME=" .. q(home)
            .. " PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8"
            .. " TMPDIR=" .. q(os.getenv("TMPDIR") or "/tmp") .. " bash " .. q(state .. "/main.sh"))
        local current = util.read(state .. "/current"):gsub("\n$", "")
        if current ~= "done" then
            local n = tonumber(current)
            error("README shell block " .. n .. " failed:\n" .. ran[n].code .. "--- stdout:\n"
                .. util.read(state .. "/" .. n .. ".out") .. "--- stderr:\n" .. util.read(state .. "/" .. n .. ".err")
                .. out)
        end
        local checked = 0
        for i, b in ipairs(ran) do
            if b.output then
                assert.equal(b.output, util.read(state .. "/" .. i .. ".out"),
                    "README shell block " .. i .. ":\n" .. b.code)
                checked = checked + 1
            end
        end
        assert.is_true(checked >= 6)
        util.run("rm -rf " .. q(work))
    end)

    for i, code in ipairs(blocks) do
        it("example " .. i .. " runs and prints what it says", function()
            local f = os.tmpname()
            local h = assert(io.open(f, "w"))
            h:write(code)
            h:close()
            local out, ok = util.run(util.lua_bin() .. " " .. f)
            os.remove(f)
            assert(ok, out)
            local lines = {}
            for line in out:gmatch("[^\n]+") do lines[#lines + 1] = normalize(line) end
            local at = 1
            for expected in code:gmatch("%-%-> ([^\n]+)") do
                expected = normalize(expected)
                while at <= #lines and lines[at] ~= expected do at = at + 1 end
                assert(at <= #lines, "expected output line not found: " .. expected .. "\n--- got:\n" .. out)
                at = at + 1
            end
        end)
    end
end)

describe("README reference", function()
    it("lists every option of cozmox.new, and only those, in its options table", function()
        local block = assert(readme:match("### `cozmox.new%(opts%)`.-\n(| option |.-)\n\n"))
        local listed = {}
        for row in block:gmatch("\n| ([^|]+) |") do
            for name in row:gmatch("`([%w_]+)`") do listed[#listed + 1] = name end
        end
        table.sort(listed)
        local specs = {}
        for _, spec in ipairs(require("cozmox.options").SPECS) do specs[#specs + 1] = spec.name end
        table.sort(specs)
        assert.same(specs, listed)
    end)

    it("names every error kind the code can give", function()
        local block = assert(readme:match("\n| kind | when |\n(.-)\n\n"))
        local kinds = {}
        for kind in block:gmatch('| `"([%w_]+)"` |') do kinds[#kinds + 1] = kind end
        table.sort(kinds)
        assert.same({ "closed", "config", "decode", "http", "memory", "network", "timeout", "tls", "too_large" }, kinds)
    end)
end)
