-- The number conversions of src/numconv.c against the C library:
-- spec/c/numcheck.c (see the top of that file) compiled here and run on
-- 200,000 random literals and 200,000 random doubles of every shape, and
-- on every number literal of the JSONTestSuite files.  `make numcheck`
-- runs the same program on 10 million of each.  The program is compiled
-- with COZMOX_OOM_CC / COZMOX_OOM_CFLAGS when set (make sanitize sets
-- them: ASan + UBSan).  About 3 s.
local util = require("support.util")

local function sh_quote(s)
    return "'" .. s:gsub("'", "'\\''") .. "'"
end

describe("number conversion against the C library", function()
    local dir, bin

    setup(function()
        dir = os.tmpname()
        os.remove(dir)
        assert(select(2, util.run("mkdir " .. sh_quote(dir))), "cannot create " .. dir)
        bin = dir .. "/numcheck"
        local src = util.spec_dir .. "/../src"
        local cc = os.getenv("COZMOX_OOM_CC") or "gcc"
        local cflags = os.getenv("COZMOX_OOM_CFLAGS") or ""
        local out, ok = util.run(string.format("%s -std=gnu99 -O2 -g -Wall -Wextra %s -I%s -o %s %s %s -lm",
            cc, cflags, sh_quote(src), sh_quote(bin), sh_quote(util.spec_dir .. "/c/numcheck.c"),
            sh_quote(src .. "/numconv.c")))
        assert(ok, "compiling spec/c/numcheck.c failed:\n" .. out)
    end)

    teardown(function()
        if dir then util.run("rm -rf " .. sh_quote(dir)) end
    end)

    it("parses 200,000 random literals bit-identical to strtod and prints 200,000 doubles shortest", function()
        local out, ok = util.run(sh_quote(bin) .. " 200000 20240601")
        assert(ok, out)
        local lits = out:match("numcheck: (%d+) literals parsed bit%-identical to strtod")
        local dbls = out:match("numcheck: (%d+) doubles printed shortest, closest")
        assert(lits and tonumber(lits) >= 200000, out)
        assert(dbls and tonumber(dbls) >= 200000, out)
    end)

    it("parses every number of the JSONTestSuite files bit-identical to strtod", function()
        local files = {}
        local dir_suite = util.spec_dir .. "/fixtures/JSONTestSuite/test_parsing"
        local p = assert(io.popen("ls " .. sh_quote(dir_suite)))
        for name in p:lines() do
            if name:match("%.json$") then files[#files + 1] = sh_quote(dir_suite .. "/" .. name) end
        end
        p:close()
        assert(#files > 300, "JSONTestSuite files missing")
        local out, ok = util.run(sh_quote(bin) .. " --files " .. table.concat(files, " "))
        assert(ok, out)
        local n = out:match("numcheck: (%d+) literals from %d+ files parsed bit%-identical to strtod")
        assert(n and tonumber(n) > 100, out)
    end)
end)
