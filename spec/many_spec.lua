-- session.get_many: order, mixed outcomes, concurrency, retries.
local cozmox = require("cozmox")
local mock = require("support.mock")

local client = mock.client

describe("session.get_many", function()
    it("returns results and errors indexed like ids", function()
        local c = client({ max_retries = 0 })
        local ids = { "demo", "nope", "a b/c", "..", "also-missing", "3f6c2f7e-5a1b-4c2d-9e8f-0a1b2c3d4e5f" }
        local results, errors = c.session.get_many(ids)
        assert.equal("demo", results[1].id)
        assert.is_nil(errors[1])
        assert.is_nil(results[2])
        assert.equal(404, errors[2].status)
        assert.equal("cozmox: HTTP 404 Not Found: Session not found (GET /session/nope)", tostring(errors[2]))
        assert.equal("a b/c", results[3].id)
        assert.equal("..", results[4].id)
        assert.equal(404, errors[5].status)
        assert.equal(ids[6], results[6].id)
        assert.is_true(results[1]:is_active()) -- sessions carry their helpers
        assert.equal(cozmox.array_mt, getmetatable(results[1].messages))
    end)

    it("decodes each response exactly as get does", function()
        local c = client()
        local many = c.session.get_many({ "demo" })
        local one = c.session.get("demo")
        assert.equal(cozmox.json.encode(one), cozmox.json.encode(many[1]))
    end)

    it("handles an empty list", function()
        local results, errors = client().session.get_many({})
        assert.same({}, results)
        assert.same({}, errors)
    end)

    it("overlaps requests: 16 ids against a 300 ms route take well under 16 x 300 ms", function()
        local c2 = client()
        local paths = {}
        for i = 1, 16 do paths[i] = "/fault/delay?ms=300&i=" .. i end
        local t0 = require("cozmox.core").now()
        local values, errors = c2:_get_many(paths, 16)
        local dt = require("cozmox.core").now() - t0
        for i = 1, 16 do assert(values[i], tostring(errors[i])) end
        assert.is_true(dt < 1.5, "took " .. dt .. " s")
    end)

    it("respects opts.concurrency", function()
        local c = client()
        local paths = {}
        for i = 1, 6 do paths[i] = "/fault/delay?ms=300&c=" .. i end
        local t0 = require("cozmox.core").now()
        c:_get_many(paths, 2)
        local dt = require("cozmox.core").now() - t0
        assert.is_true(dt >= 0.85, "6 requests, 2 at a time, 300 ms each took only " .. dt .. " s")
    end)

    it("retries per request and reports attempts", function()
        local sleeps = {}
        local c = client({ sleep = function(s) sleeps[#sleeps + 1] = s end })
        local k1, k2 = mock.key("m1"), mock.key("m2")
        local values, errors = c:_get_many({ "/fault/503-once?key=" .. k1, "/fault/status?code=500&key=" .. k2,
            "/session/demo" }, 4)
        assert.is_table(values[1])
        assert.equal(2, mock.hits(k1))
        assert.is_nil(values[2])
        assert.equal(3, errors[2].attempts)
        assert.equal(3, mock.hits(k2))
        assert.equal("demo", values[3].id)
        assert.equal(2, #sleeps)
    end)

    it("validates its arguments", function()
        local c = client()
        assert.has_error(function() c.session.get_many("demo") end,
            "bad argument #1 to 'get_many' (table of ids expected, got string)")
        assert.has_error(function() c.session.get_many({ "a", "" }) end)
        assert.has_error(function() c.session.get_many({ "a" }, { concurrency = 0 }) end)
        assert.has_error(function() c.session.get_many({ "a" }, { parallel = 2 }) end)
    end)

    it("works on the default client", function()
        local results = cozmox.session.get_many({ "demo", "a b/c" })
        assert.equal("demo", results[1].id)
        assert.equal("a b/c", results[2].id)
    end)
end)
