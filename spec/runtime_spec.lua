-- Behaviour that differs between runtimes, and the opt-in that keeps big
-- integers exact where numbers are doubles (Lua 5.1, LuaJIT).
local cozmox = require("cozmox")
local json = cozmox.json
local mock = require("support.mock")
local util = require("support.util")

local HAS_INTEGERS = math.type ~= nil and math.type(1) == "integer"

describe("numbers on this runtime (" .. ((type(jit) == "table" and jit.version) or _VERSION) .. ")", function()
    it("keeps integers up to 2^53 exact everywhere", function()
        assert.equal(9007199254740992, json.decode("9007199254740992"))
        assert.equal(-9007199254740992, json.decode("-9007199254740992"))
        assert.equal("[9007199254740992]", json.encode(json.decode("[9007199254740992]")))
    end)

    it("beyond 2^53: exact integers on 5.3+, the nearest double on 5.1/LuaJIT", function()
        local v = json.decode("9007199254740993")
        if HAS_INTEGERS then
            assert.equal("integer", math.type(v))
            assert.equal("9007199254740993", tostring(v))
        else
            assert.equal(9007199254740992, v)
        end
    end)
end)

describe("big_integers = \"string\"", function()
    it("turns integer literals beyond +-2^53 into their exact text", function()
        local v = json.decode("[9007199254740992,9007199254740993,-9007199254740993,"
            .. "123456789012345678901234567890,1e30,2.5]",
            { big_integers = "string" })
        assert.equal(9007199254740992, v[1])
        assert.equal("9007199254740993", v[2])
        assert.equal("-9007199254740993", v[3])
        assert.equal("123456789012345678901234567890", v[4])
        assert.equal("number", type(v[5]))
        assert.equal(2.5, v[6])
    end)

    it("works the same when streaming", function()
        local d = json.decoder({ big_integers = "string" })
        assert.is_true(d:feed('{"id": 12345678901'))
        assert.is_true(d:feed('234567890}'))
        assert.equal("12345678901234567890", d:finish().id)
    end)

    it("validates the option", function()
        assert.has_error(function() json.decode("1", { big_integers = "bigint" }) end)
        assert.has_error(function() cozmox.new({ json_big_integers = true }) end)
        assert.has_error(function() cozmox.new({ json_big_integers = "yes" }) end)
    end)

    it("is a client option: json_big_integers", function()
        local c = cozmox.new({ token = mock.token, base_url = mock.base_url, json_big_integers = "string" })
        local v = assert(c:request("GET", "/__file/JSONTestSuite/test_parsing/i_number_too_big_pos_int.json"))
        assert.equal("100000000000000000000", v[1])
        local plain = cozmox.new({ token = mock.token, base_url = mock.base_url })
        local w = assert(plain:request("GET", "/__file/JSONTestSuite/test_parsing/i_number_too_big_pos_int.json"))
        assert.equal(1e20, w[1])
    end)
end)

describe("the module on this runtime", function()
    it("loads, and its curl module reports the libcurl version", function()
        assert.matches("^%d+%.%d+%.%d+", require("cozmox.curl").version)
        assert.matches("^cozmox%-lua/", require("cozmox.client").USER_AGENT)
        assert.is_nil(rawget(_G, "cozmox"))
        assert.is_truthy(util)
    end)
end)

describe("streaming decoder stack headroom", function()
    it("keeps filling an object across feeds made from different coroutines", function()
        -- Regression (fuzzer): after restoring parked values the decoder must
        -- reserve the open container's headroom again; make valgrind / the
        -- fuzzer's guarded allocator catch an overrun here.
        local function members(a, b)
            local t = {}
            for i = a, b do t[#t + 1] = ('"k%d":"v%d"'):format(i, i) end
            return table.concat(t, ",")
        end
        local d = json.decoder()
        assert.is_true(d:feed("{" .. members(1, 64) .. ","))
        coroutine.wrap(function() assert(d:feed(members(65, 127) .. "}")) end)()
        local v = assert(d:finish())
        assert.equal("v127", v.k127)
        assert.equal("v1", v.k1)
    end)
end)
