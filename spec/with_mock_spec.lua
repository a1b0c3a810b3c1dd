-- scripts/with-mock.sh starts the mock whatever the caller's Lua
-- environment: a LUA_PATH without ";;", paths of another Lua (as `luarocks
-- path` prints them), a LUA_INIT that raises.  CMD still gets that
-- environment unchanged, and its exit status.
local util = require("support.util")

local q = util.quote

-- Run `env ENV bash scripts/with-mock.sh sh -c CMD` from another directory;
-- returns its stdout, stderr and exit status.
local function with_mock(env, cmd)
    return util.sh(("cd /tmp && env %s bash %s sh -c %s"):format(env, q(util.root .. "/scripts/with-mock.sh"), q(cmd)))
end

-- What CMD does: ask the mock for a session, then print the Lua variables it got.
local PROBE = 'curl --noproxy "*" -sf -H "Authorization: Bearer $COZMOX_TOKEN" "$COZMOX_BASE_URL/session/demo"'
    .. ' | grep -c \'"id": "demo"\'; printf "%s|%s|%s\\n" "$LUA_PATH" "$LUA_CPATH" "$LUA_INIT"'

describe("scripts/with-mock.sh", function()
    local luarocks_51 = util.run("luarocks --lua-version=5.1 path --lr-path"):gsub("\n$", "")
    local luarocks_51c = util.run("luarocks --lua-version=5.1 path --lr-cpath"):gsub("\n$", "")

    local cases = {
        { "a LUA_PATH and LUA_CPATH without ;;", "/nonexistent/?.lua", "/nonexistent/?.so", "" },
        { "the paths of Lua 5.1 (luarocks path), its C modules first",
            luarocks_51, "/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;" .. luarocks_51c, "" },
        { "a LUA_INIT that raises", "/nonexistent/?.lua", "/nonexistent/?.so", 'error("LUA_INIT ran")' },
    }
    for _, case in ipairs(cases) do
        it("starts the mock with " .. case[1] .. ", and passes them on to CMD", function()
            local env = ("LUA_PATH=%s LUA_CPATH=%s LUA_INIT=%s LUA_INIT_5_4=%s"):format(
                q(case[2]), q(case[3]), q(case[4]), q(case[4]))
            local out, err, code = with_mock(env, PROBE)
            assert.equal(0, code, err)
            assert.equal("", err)
            assert.equal("1\n" .. case[2] .. "|" .. case[3] .. "|" .. case[4] .. "\n", out)
        end)
    end

    it("exits with CMD's status", function()
        local out, err, code = with_mock("LUA_PATH='/nonexistent/?.lua'", "echo ran; exit 7")
        assert.equal(7, code, err)
        assert.equal("ran\n", out)
    end)
end)
