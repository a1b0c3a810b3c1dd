-- The host examples in examples/ run as written against the mock API:
-- the Neovim command (examples/neovim/cozmox_transcript.lua), the luv and
-- the cqueues scripts.
local hosts = require("hosts.support")
local util = require("support.util")

local function run_example(script, args)
    return util.run(("cd %s && %s lua5.4 examples/%s %s"):format(hosts.q(hosts.root), hosts.env("lua5.4"),
        script, args))
end

describe("host examples #hosts", function()
    it("examples/neovim/cozmox_transcript.lua: :CozmoxTranscript shows the transcript in a buffer", function()
        local text, ok, log = hosts.nvim("spec/hosts/neovim_example.lua",
            "COZMOX_EXAMPLE=" .. hosts.q(hosts.root .. "/examples/neovim/cozmox_transcript.lua"))
        assert(ok, log .. text)
        print("\nneovim example: :CozmoxTranscript returned in " .. text:match("returned_ms=(%S+)") .. " ms; "
            .. text:match("ticks=(%d+)") .. " ticks of a 20 ms timer until the buffer was filled")
        assert.matches("\nSession demo %(active%)\n\n", text)
        assert.matches("\n%[%d%d:%d%d%] [^\n]+: ", text)
        -- the command returned before the answer was there, and soon
        assert.matches("\nearly=false\n", text)
        assert(tonumber(text:match("returned_ms=(%S+)")) < 1000, text)
    end)

    it("examples/luv_sessions.lua fetches sessions at once on libuv's loop", function()
        local out, ok = run_example("luv_sessions.lua", "demo 3f6c2f7e-5a1b-4c2d-9e8f-0a1b2c3d4e5f")
        assert(ok, out)
        assert.matches("demo  active  %d+ messages", out)
        assert.matches("3f6c2f7e%-5a1b%-4c2d%-9e8f%-0a1b2c3d4e5f  active", out)
        assert.matches("\n2 sessions in %d+ ms, timer ticked %d+ times\n", out)
        local _, bad = run_example("luv_sessions.lua", "nope")
        assert.is_falsy(bad)
    end)

    it("examples/cqueues_sessions.lua fetches sessions at once on a cqueue", function()
        local out, ok = run_example("cqueues_sessions.lua", "demo 3f6c2f7e-5a1b-4c2d-9e8f-0a1b2c3d4e5f")
        assert(ok, out)
        assert.matches("demo  active  %d+ messages", out)
        assert.matches("\n2 sessions in %d+ ms\n", out)
    end)
end)
