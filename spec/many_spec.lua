-- session.get_many: order, mixed outcomes, concurrency, retries.
local cozmox = require("cozmox")
local mock = require("support.mock")

local client = mock.client

describe("session.get_many", function()
    it("returns results and errors with one entry per id, and the failure count", function()
        local c = client({ max_retries = 0 })
        local ids = { "demo", "nope", "a b/c", "..", "also-missing", "3f6c2f7e-5a1b-4c2d-9e8f-0a1b2c3d4e5f" }
        local results, errors, failed = c.session.get_many(ids)
        assert.equal(#ids, #results)
        assert.equal(#ids, #errors)
        assert.equal(2, failed)
        local walked = 0
        for i, s in ipairs(results) do
            walked = walked + 1
            assert.equal(s == false, errors[i] ~= false)
        end
        assert.equal(#ids, walked)
        assert.equal("demo", results[1].id)
        assert.is_false(errors[1])
        assert.is_false(results[2])
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
        local results, errors, failed = client().session.get_many({})
        assert.same({}, results)
        assert.same({}, errors)
        assert.equal(0, failed)
    end)

    -- The mock's /fault/by-id routes: the id names a fault route, and the
    -- session served carries the id.
    local function faults(opts)
        opts = opts or {}
        opts.base_url = mock.base_url .. "/fault/by-id"
        return client(opts)
    end

    it("overlaps requests: 16 ids against a 300 ms route take well under 16 x 300 ms", function()
        local ids = {}
        for i = 1, 16 do ids[i] = "delay?ms=300&i=" .. i end
        local t0 = require("cozmox.core").now()
        local values, errors = faults().session.get_many(ids, { concurrency = 16 })
        local dt = require("cozmox.core").now() - t0
        for i = 1, 16 do assert(values[i], tostring(errors[i])) end
        assert.equal(ids[7], values[7].id)
        assert.is_true(dt < 1.5, "took " .. dt .. " s")
    end)

    it("respects opts.concurrency", function()
        local ids = {}
        for i = 1, 6 do ids[i] = "delay?ms=300&c=" .. i end
        local t0 = require("cozmox.core").now()
        local values = faults().session.get_many(ids, { concurrency = 2 })
        local dt = require("cozmox.core").now() - t0
        assert.equal(ids[6], values[6].id)
        assert.is_true(dt >= 0.85, "6 requests, 2 at a time, 300 ms each took only " .. dt .. " s")
    end)

    it("retries per request and reports attempts", function()
        local sleeps = {}
        local k1, k2 = mock.key("m1"), mock.key("m2")
        local c = faults({ sleep = function(s) sleeps[#sleeps + 1] = s end })
        local values, errors, failed = c.session.get_many({ "503-once?key=" .. k1, "status?code=500&key=" .. k2,
            "ok" }, { concurrency = 4 })
        assert.is_table(values[1])
        assert.equal(2, mock.hits(k1))
        assert.is_false(values[2])
        assert.equal(3, errors[2].attempts)
        assert.equal(3, mock.hits(k2))
        assert.equal("ok", values[3].id)
        assert.equal(1, failed)
        assert.equal(2, #sleeps)
    end)

    it("multiplexes over one connection when the server speaks HTTP/2", function()
        mock.reset()
        local c = client({ base_url = os.getenv("COZMOX_TEST_H2_URL"), ca_file = mock.ca_file })
        local ids = {}
        for i = 1, 20 do ids[i] = "demo" end
        local results, errors, failed = c.session.get_many(ids, { concurrency = 8 })
        assert.equal(0, failed, tostring(errors[1]))
        assert.equal("demo", results[20].id)
        local body = assert(mock.get("/__connections"))
        local count = require("cjson").decode(body).count
        assert.equal(1, count)
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
