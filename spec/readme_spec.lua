-- The README's Lua examples run as written, against the mock API, and
-- print what their "--> ..." comments say.  (Examples for a host that
-- embeds Lua are fenced with ~~~ and run inside that host by its spec:
-- spec/haproxy_spec.lua.)
local util = require("support.util")

local readme = util.read(util.spec_dir .. "/../README.md")

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
