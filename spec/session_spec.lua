-- The Session resource (list, each, create, update, delete) and the session
-- helpers, end to end against the mock API.
local cozmox = require("cozmox")
local session = require("cozmox.session")
local core = require("cozmox.core")
local mock = require("support.mock")

local json = cozmox.json
local ID = "3f6c2f7e-5a1b-4c2d-9e8f-0a1b2c3d4e5f"
-- The demo sessions of spec/fixtures/demo/sessions.json, newest first
-- (created 2025-06-06 .. 2025-06-02), and their statuses.
local DEMO_DESC = {
    "289afc20-3ca7-4376-862b-a96919eb4957", "3c52e522-4bcc-435d-8e80-36187a47ac29",
    "3194ba09-75e8-4cca-8d7d-36749ddeca23", "4d3136a6-3952-476e-9c51-1c112bfc5211",
    "86bf0f68-b613-4766-8f46-04f8f1b07ae0", "70fe0451-8264-41d4-92b0-82b83b97d402",
}
local DEMO_STATUS_DESC = { "active", "completed", "completed", "completed", "completed", "completed" }
-- Every seeded session, newest first: the demo sessions, then the copies of
-- the API reference's example (all created 2023-11-07T05:31:56Z, so the
-- last seeded comes first).
local SEEDED_DESC = { "ünï/cødé?#&", "..", "a b/c", "demo", ID }
for i = #DEMO_DESC, 1, -1 do table.insert(SEEDED_DESC, 1, DEMO_DESC[i]) end
local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
local ISO_MS = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"

local client = mock.client

-- Arm the mock: after `skip` more /session requests with `method`, the
-- next `count` fail with `status`.
local function arm(method, skip, count, status)
    local body, code = mock.get(("/__fail?method=%s&skip=%d&count=%d&status=%d"):format(method, skip, count, status))
    assert(code == 200, body)
end

local function seq()
    return mock.last_request().seq
end

-- A name no other test uses (at most 40 characters).
local uniq = 0
local function unique(prefix)
    uniq = uniq + 1
    return ("%s-%d-%d"):format(prefix, os.time() % 100000, uniq) .. math.random(1000, 9999)
end

-- n sessions named `name`, created one after the other (a few ms apart, so
-- their createdAt values differ); extra(i) adds fields to the i-th body.
local function create_many(c, name, n, extra)
    local out = {}
    for i = 1, n do
        local body = { name = name }
        if extra then for k, v in pairs(extra(i)) do body[k] = v end end
        out[i] = assert(c.session.create(body))
        core.sleep(0.003)
    end
    return out
end

local function ids(list)
    local out = {}
    for i, s in ipairs(list) do out[i] = s.id end
    return out
end

local function reversed(t)
    local out = {}
    for i = #t, 1, -1 do out[#out + 1] = t[i] end
    return out
end

local function slice(t, a, b)
    local out = {}
    for i = a, b do out[#out + 1] = t[i] end
    return out
end

-- pcall(f, ...) must fail with exactly this message.
local function raises(msg, f, ...)
    local ok, err = pcall(f, ...)
    assert.is_false(ok, "expected an error: " .. msg)
    assert.equal(msg, err)
end

setup(function() mock.reset() end)
teardown(function() mock.reset() end)

describe("session.list", function()
    before_each(function() mock.reset() end)

    it("sends GET /session without a query and returns the API's page", function()
        local c = client()
        local page, err = c.session.list()
        assert.is_nil(err)
        local req = mock.last_request()
        assert.equal("GET", req.method)
        assert.equal("/session", req.request_uri)
        assert.is_nil(req.body)
        assert.same({ itemsPerPage = 100, totalItems = 11, currentPage = 1 }, page.metadata)
        assert.equal(json.array_mt, getmetatable(page.results))
        assert.same(SEEDED_DESC, ids(page.results))
        for i, s in ipairs(page.results) do
            assert.equal(session.mt, getmetatable(s))
            local status = DEMO_STATUS_DESC[i] or "active"
            assert.equal(status, s.status)
            assert.equal(status == "active", s:is_active())
        end
        assert.is_nil(getmetatable(page))
        assert.same(SEEDED_DESC, ids(c.session.list({}).results))
    end)

    it("passes every param by its API name, percent-encoded, in sorted order", function()
        local c = client()
        local page = assert(c.session.list({
            name = "a b&c", assistantId = "as/1", workflowId = "wf 1", page = 2, sortOrder = "ASC", limit = 10,
            createdAtGt = "2024-01-01T00:00:00Z", createdAtLt = "2024-02-01T00:00:00+01:00",
            createdAtGe = "2024-01-01", createdAtLe = "2024-03-01T10:20:30.5Z",
            updatedAtGt = 0, updatedAtLt = 1699335116.25, updatedAtGe = 1699335116,
            updatedAtLe = "2030-01-01T00:00:00Z",
        }))
        assert.equal("/session?assistantId=as%2F1&createdAtGe=2024-01-01&createdAtGt=2024-01-01T00%3A00%3A00Z"
            .. "&createdAtLe=2024-03-01T10%3A20%3A30.5Z&createdAtLt=2024-02-01T00%3A00%3A00%2B01%3A00"
            .. "&limit=10&name=a%20b%26c&page=2&sortOrder=ASC"
            .. "&updatedAtGe=2023-11-07T05%3A31%3A56.000Z&updatedAtGt=1970-01-01T00%3A00%3A00.000Z"
            .. "&updatedAtLe=2030-01-01T00%3A00%3A00Z&updatedAtLt=2023-11-07T05%3A31%3A56.250Z"
            .. "&workflowId=wf%201", mock.last_request().request_uri)
        assert.same({ itemsPerPage = 10, totalItems = 0, currentPage = 2 }, page.metadata)
        assert.equal(0, #page.results)
        assert.equal(json.array_mt, getmetatable(page.results))
    end)

    it("pages over several pages, in both sort orders", function()
        local c = client()
        local name = unique("paging")
        local made = ids(create_many(c, name, 7))
        local asc, desc = {}, {}
        for p = 1, 4 do
            local a = assert(c.session.list({ name = name, limit = 3, page = p, sortOrder = "ASC" }))
            assert.same({ itemsPerPage = 3, totalItems = 7, currentPage = p }, a.metadata)
            for _, s in ipairs(a.results) do asc[#asc + 1] = s.id end
            local d = assert(c.session.list({ name = name, limit = 3, page = p, sortOrder = "DESC" }))
            for _, s in ipairs(d.results) do desc[#desc + 1] = s.id end
            assert.equal(({ 3, 3, 1, 0 })[p], #a.results)
            assert.equal(({ 3, 3, 1, 0 })[p], #d.results)
        end
        assert.same(made, asc)
        assert.same(reversed(made), desc)
        -- DESC is the default, newest first
        assert.same(slice(reversed(made), 1, 3), ids(c.session.list({ name = name, limit = 3 }).results))
    end)

    it("filters by name, assistantId, workflowId and the createdAt/updatedAt bounds", function()
        local c = client()
        local name, asst = unique("filters"), unique("asst")
        local made = create_many(c, name, 6, function(i) return i % 2 == 0 and { assistantId = asst } or {} end)
        local all = ids(made)
        local function listed(params)
            params.name, params.sortOrder = name, "ASC"
            local page = assert(c.session.list(params))
            assert.equal(#page.results, page.metadata.totalItems)
            return ids(page.results)
        end
        assert.same(all, listed({}))
        assert.same({ all[2], all[4], all[6] }, listed({ assistantId = asst }))
        assert.same({}, listed({ workflowId = "wf-none" }))
        local c4 = made[4].createdAt
        assert.same(slice(all, 5, 6), listed({ createdAtGt = c4 }))
        assert.same(slice(all, 4, 6), listed({ createdAtGe = c4 }))
        assert.same(slice(all, 1, 3), listed({ createdAtLt = c4 }))
        assert.same(slice(all, 1, 4), listed({ createdAtLe = c4 }))
        -- epoch seconds are formatted to the same instant (millisecond precision)
        local t4 = assert(made[4]:created_at())
        assert.same(slice(all, 5, 6), listed({ createdAtGt = t4 }))
        assert.same(slice(all, 1, 4), listed({ createdAtLe = t4 }))
        assert.equal("/session?createdAtLe=" .. cozmox.escape_segment(c4) .. "&name=" .. cozmox.escape_segment(name)
            .. "&sortOrder=ASC", mock.last_request().request_uri)
        -- updatedAt: touch the 2nd session last
        core.sleep(0.003)
        local touched = assert(c.session.update(all[2], { status = "completed" }))
        assert.same({ all[2] }, listed({ updatedAtGt = made[6].updatedAt }))
        assert.same({ all[2] }, listed({ updatedAtGe = touched.updatedAt }))
        assert.same({ all[1], all[3], all[4], all[5], all[6] }, listed({ updatedAtLt = touched.updatedAt }))
        assert.same(all, listed({ updatedAtLe = touched.updatedAt, createdAtGe = made[1].createdAt }))
    end)

    it("refuses bad and unknown params before sending anything", function()
        local c = client()
        assert(c.session.list())
        local before = seq()
        local function bad(msg, params) raises("bad argument #1 to 'list' (" .. msg .. ")", c.session.list, params) end
        bad("table expected, got string", "name=x")
        bad("unknown param 'foo'", { foo = 1 })
        bad("unknown param 'sort_order'", { sort_order = "ASC" })
        bad("unknown param '1'", { "x" })
        bad("param 'limit' must be a positive integer, got 0", { limit = 0 })
        bad("param 'limit' must be a positive integer, got -3", { limit = -3 })
        bad("param 'limit' must be a positive integer, got 2.5", { limit = 2.5 })
        bad("param 'limit' must be a positive integer, got \"10\"", { limit = "10" })
        bad("param 'page' must be a positive integer, got 0", { page = 0 })
        bad("param 'sortOrder' must be \"ASC\" or \"DESC\", got \"asc\"", { sortOrder = "asc" })
        bad("param 'sortOrder' must be \"ASC\" or \"DESC\", got boolean", { sortOrder = true })
        bad("param 'name' must be a string, got number", { name = 5 })
        bad("param 'assistantId' must be a non-empty string, got empty string", { assistantId = "" })
        bad("param 'workflowId' must be a non-empty string, got table", { workflowId = {} })
        bad("param 'createdAtGt' must be an ISO 8601 date-time: invalid ISO 8601 date-time 'yesterday': "
            .. "expected YYYY-MM-DD at the start", { createdAtGt = "yesterday" })
        bad("param 'updatedAtLe' must be an ISO 8601 date-time: invalid ISO 8601 date-time "
            .. "'2024-02-30T00:00:00Z': day out of range", { updatedAtLe = "2024-02-30T00:00:00Z" })
        bad("param 'createdAtLt' must be an ISO 8601 string or epoch seconds, got boolean", { createdAtLt = true })
        bad("param 'createdAtGe' must be epoch seconds within years 0000..9999", { createdAtGe = math.huge })
        bad("param 'createdAtGe' must be epoch seconds within years 0000..9999", { createdAtGe = 0 / 0 })
        assert.equal(before, seq())
    end)

    it("returns the API's 400 for what only the server checks", function()
        local c = client()
        local page, err = c.session.list({ limit = 5000 })
        assert.is_nil(page)
        assert.is_true(cozmox.is_error(err))
        assert.equal("http", err.kind)
        assert.equal(400, err.status)
        assert.same({ message = { "limit must not be greater than 1000" }, error = "Bad Request", statusCode = 400 },
            err.body)
        assert.equal("cozmox: HTTP 400 Bad Request: limit must not be greater than 1000 (GET /session?limit=5000)",
            tostring(err))
        -- the server's own checks, past the client's (through client:request)
        local v, err2 = c:request("GET", "/session", { query = { createdAtGt = "soon", page = 0, x = 1 } })
        assert.is_nil(v)
        assert.same({ "createdAtGt must be a valid ISO 8601 date string", "page must not be less than 1",
            "property x should not exist" }, err2.body.message)
        assert.equal("createdAtGt must be a valid ISO 8601 date string; page must not be less than 1; "
            .. "property x should not exist", err2.message)
    end)

    it("reports an answer that is not a page as a decode error", function()
        local c = client({ transport = function()
            return 200, { ["Content-Type"] = "application/json" }, '{"results":{"id":"x"}}'
        end })
        local page, err = c.session.list({ limit = 1 })
        assert.is_nil(page)
        assert.equal("decode", err.kind)
        assert.equal("cozmox: invalid JSON response: expected a list page: an object with a 'results' array "
            .. "(GET /session?limit=1)", tostring(err))
    end)

    it("reports 401 and 5xx answers as errors", function()
        local _, err = client({ token = "wrong" }).session.list()
        assert.equal(401, err.status)
        local c = client()
        arm("GET", 0, 1, 503)
        local p, err2 = client({ max_retries = 0 }).session.list()
        assert.is_nil(p)
        assert.equal(503, err2.status)
        assert(c.session.list())
    end)
end)

describe("session.each", function()
    local c, name, made
    setup(function()
        mock.reset()
        c = client()
        name = unique("each")
        made = ids(create_many(c, name, 7))
    end)

    it("yields every session across pages, fetching each page only when needed", function()
        local it_fn = c.session.each({ name = name, limit = 3, sortOrder = "ASC" })
        local start = seq()
        local got, counts = {}, {}
        for s, n, total in it_fn do
            got[#got + 1] = s.id
            assert.equal(#got, n)
            assert.equal(7, total)
            assert.equal(session.mt, getmetatable(s))
            -- pages are fetched lazily: items 1-3 come from the 1st request, 4-6 the 2nd, 7 the 3rd
            counts[n] = seq() - start
        end
        assert.same(made, got)
        assert.same({ 1, 1, 1, 2, 2, 2, 3 }, counts)
        assert.equal("/session?limit=3&name=" .. cozmox.escape_segment(name) .. "&page=3&sortOrder=ASC",
            mock.last_request().request_uri)
        assert.is_nil(it_fn())   -- stays finished
        assert.equal(start + 3, seq())
    end)

    it("stops on the last page without asking for an empty one", function()
        local start = seq()
        local got = {}
        for s in c.session.each({ name = name, limit = 7 }) do got[#got + 1] = s.id end
        assert.same(reversed(made), got)
        assert.equal(start + 1, seq())
        -- the default limit (100) and order (DESC)
        got = {}
        for s in c.session.each({ name = name }) do got[#got + 1] = s.id end
        assert.same(reversed(made), got)
        assert.equal("/session?name=" .. cozmox.escape_segment(name) .. "&page=1", mock.last_request().request_uri)
    end)

    it("yields nothing for no match, and starts at params.page", function()
        local n = 0
        for _ in c.session.each({ workflowId = "none" }) do n = n + 1 end
        assert.equal(0, n)
        local got = {}
        for s in c.session.each({ name = name, limit = 3, page = 2, sortOrder = "ASC" }) do got[#got + 1] = s.id end
        assert.same(slice(made, 4, 7), got)
    end)

    it("raises the error object when a later page fails", function()
        local c0 = client({ max_retries = 0 })
        local got = {}
        local it_fn = c0.session.each({ name = name, limit = 3, sortOrder = "ASC" })
        arm("GET", 1, 1, 500)
        local ok, err = pcall(function()
            for s in it_fn do got[#got + 1] = s.id end
        end)
        assert.is_false(ok)
        assert.same(slice(made, 1, 3), got)
        assert.is_true(cozmox.is_error(err))
        assert.equal("http", err.kind)
        assert.equal(500, err.status)
        assert.equal("cozmox: HTTP 500 Internal Server Error (GET /session?limit=3&name="
            .. cozmox.escape_segment(name) .. "&page=2&sortOrder=ASC)", tostring(err))
        assert.is_nil(it_fn())   -- finished after the error
    end)

    it("retries a failed page like any GET", function()
        local waits = {}
        local cr = client({ sleep = function(s) waits[#waits + 1] = s end })
        arm("GET", 1, 1, 503)
        local got = {}
        for s in cr.session.each({ name = name, limit = 3, sortOrder = "ASC" }) do got[#got + 1] = s.id end
        assert.same(made, got)
        assert.equal(1, #waits)
    end)

    it("stops on a short page when the API gives no metadata, and refuses a wrong page", function()
        local served = {}
        local function fake(pages)
            return client({ transport = function(req)
                local page = tonumber(req.url:match("[?&]page=(%d+)"))
                served[#served + 1] = req.url:match("/session.*$")
                return 200, { ["Content-Type"] = "application/json" }, pages[page] or '{"results":[]}'
            end })
        end
        local c1 = fake({ '{"results":[{"id":"a"},{"id":"b"}]}', '{"results":[{"id":"c"}]}',
            '{"results":[{"id":"x"}]}' })
        local got = {}
        for s, n, total in c1.session.each({ limit = 2 }) do got[#got + 1] = s.id .. n .. tostring(total) end
        assert.same({ "a1nil", "b2nil", "c3nil" }, got)
        assert.same({ "/session?limit=2&page=1", "/session?limit=2&page=2" }, served)
        local c2 = fake({ '{"results":[{"id":"a"}],"metadata":{"itemsPerPage":1,"totalItems":9,"currentPage":1}}',
            '{"results":[{"id":"a"}],"metadata":{"itemsPerPage":1,"totalItems":9,"currentPage":1}}' })
        got = {}
        local ok, err = pcall(function()
            for s in c2.session.each({ limit = 1 }) do got[#got + 1] = s.id end
        end)
        assert.is_false(ok)
        assert.same({ "a" }, got)
        assert.equal("decode", err.kind)
        assert.equal("asked for page 2, the API answered page 1", err.message)
    end)

    it("checks params when called, before any request", function()
        local before = seq()
        raises("bad argument #1 to 'each' (param 'sortOrder' must be \"ASC\" or \"DESC\", got \"up\")",
            c.session.each, { sortOrder = "up" })
        raises("bad argument #1 to 'each' (unknown param 'size')", c.session.each, { size = 1 })
        assert.equal(before, seq())
    end)
end)

describe("session.create", function()
    before_each(function() mock.reset() end)

    it("POSTs the body and returns the new session with the API's defaults", function()
        local c = client()
        local s, err = c.session.create({ name = "first" })
        assert.is_nil(err)
        local req = mock.last_request()
        assert.equal("POST", req.method)
        assert.equal("/session", req.request_uri)
        assert.equal("application/json", req.headers["content-type"])
        assert.equal('{"name":"first"}', req.body)
        assert.equal(session.mt, getmetatable(s))
        assert.matches(UUID, s.id)
        assert.is_string(s.orgId)
        assert.matches(ISO_MS, s.createdAt)
        assert.equal(s.createdAt, s.updatedAt)
        assert.equal("first", s.name)
        assert.equal("active", s.status)
        assert.equal(86400, s.expirationSeconds)
        if math.type then assert.equal("integer", math.type(s.expirationSeconds)) end
        assert.is_true(math.abs(s:created_at() - os.time()) < 60)
        local again = assert(c.session.get(s.id))
        assert.same(s, again)
        assert.same({ "first" }, (function()
            local names = {}
            for x in c.session.each({ name = "first" }) do names[#names + 1] = x.name end
            return names
        end)())
    end)

    it("sends every body field and gets them back", function()
        local c = client()
        local body = {
            name = "ünïcødé name, forty characters long, ok!", status = "completed", expirationSeconds = 3600,
            assistantId = "asst-1", assistant = { name = "Ava", model = { provider = "anthropic" } },
            messages = { { role = "user", message = "hi", time = 1, secondsFromStart = 0.5 } },
            customer = { number = "+15550001111", name = "Sam" }, phoneNumberId = "pn-1",
            phoneNumber = { twilioPhoneNumber = "+15550002222" },
        }
        local s = assert(c.session.create(body))
        for k, v in pairs(body) do assert.same(v, s[k], k) end
        assert.equal(json.array_mt, getmetatable(s.messages))
        assert.same(body, json.decode(mock.last_request().body))
        -- the caller's table is left as it was
        assert.is_nil(getmetatable(body))
        assert.equal(3600, body.expirationSeconds)
    end)

    it("sends an empty messages table as [] and integral floats as integers", function()
        local c = client()
        local s = assert(c.session.create({ messages = {}, expirationSeconds = 120.0 }))
        assert.matches('"messages":[]', mock.last_request().body, 1, true)
        assert.matches('"expirationSeconds":120[,}]', mock.last_request().body)
        assert.equal(json.array_mt, getmetatable(s.messages))
        assert.equal(0, #s.messages)
        assert.equal(120, s.expirationSeconds)
        assert.is_nil(s.name)
    end)

    it("accepts the bounds and cozmox.null where the API does", function()
        local c = client()
        assert.equal(60, assert(c.session.create({ expirationSeconds = 60 })).expirationSeconds)
        assert.equal(2592000, assert(c.session.create({ expirationSeconds = 2592000 })).expirationSeconds)
        assert.equal(("é"):rep(40), assert(c.session.create({ name = ("é"):rep(40) })).name)
        local s = assert(c.session.create({ name = cozmox.null, assistantId = cozmox.null, status = "completed" }))
        assert.equal('{"assistantId":null,"name":null,"status":"completed"}',
            (mock.last_request().body:gsub('^{(.-)}$', function(inner)
                local parts = {}
                for p in inner:gmatch("[^,]+") do parts[#parts + 1] = p end
                table.sort(parts)
                return "{" .. table.concat(parts, ",") .. "}"
            end)))
        assert.is_nil(s.name)
        assert.equal("completed", s.status)
    end)

    it("refuses bad bodies before sending anything, naming the field", function()
        local c = client()
        assert(c.session.list({ limit = 1 }))
        local before = seq()
        local function bad(msg, body) raises("bad argument #1 to 'create' (" .. msg .. ")", c.session.create, body) end
        bad("table (JSON object) expected, got nil", nil)
        bad("table (JSON object) expected, got \"x\"", "x")
        bad("table (JSON object) expected, got table", { 1, 2 })
        bad("table (JSON object) expected, got table", json.array())
        bad("field names must be strings", { name = "x", [1] = "y" })
        bad("field 'name' must be at most 40 characters, got 41", { name = ("x"):rep(41) })
        bad("field 'name' must be at most 40 characters, got 41", { name = ("é"):rep(41) })
        bad("field 'name' must be a string, got number", { name = 7 })
        bad("field 'status' must be \"active\" or \"completed\", got \"paused\"", { status = "paused" })
        bad("field 'status' must be \"active\" or \"completed\", got null", { status = cozmox.null })
        bad("field 'expirationSeconds' must be an integer in 60..2592000, got 59", { expirationSeconds = 59 })
        bad("field 'expirationSeconds' must be an integer in 60..2592000, got 2592001", { expirationSeconds = 2592001 })
        bad("field 'expirationSeconds' must be an integer in 60..2592000, got 60.5", { expirationSeconds = 60.5 })
        bad("field 'expirationSeconds' must be an integer in 60..2592000, got \"60\"", { expirationSeconds = "60" })
        bad("field 'expirationSeconds' must be an integer in 60..2592000, got null",
            { expirationSeconds = cozmox.null })
        bad("field 'assistantId' must be a string, got boolean", { assistantId = true })
        bad("field 'phoneNumberId' must be a string, got number", { phoneNumberId = 5 })
        bad("field 'assistant' must be a table (JSON object), got \"a\"", { assistant = "a" })
        bad("field 'customer' must be a table (JSON object), got table", { customer = json.array() })
        bad("field 'phoneNumber' must be a table (JSON object), got table", { phoneNumber = { "x" } })
        bad("field 'messages' must be an array (a sequence), got table", { messages = { a = 1 } })
        bad("field 'messages' must be an array (a sequence), got \"hi\"", { messages = "hi" })
        assert.equal(before, seq())
    end)

    it("passes fields it does not know to the API, which answers 400", function()
        local c = client()
        local s, err = c.session.create({ name = "x", colour = "red" })
        assert.is_nil(s)
        assert.equal(400, err.status)
        assert.same({ message = { "property colour should not exist" }, error = "Bad Request", statusCode = 400 },
            err.body)
        assert.equal("cozmox: HTTP 400 Bad Request: property colour should not exist (POST /session)", tostring(err))
    end)

    it("is not retried (POST)", function()
        local waits = {}
        local c = client({ sleep = function(s) waits[#waits + 1] = s end })
        arm("POST", 0, 1, 503)
        local s, err = c.session.create({ name = "once" })
        assert.is_nil(s)
        assert.equal(503, err.status)
        assert.equal(1, err.attempts)
        assert.same({}, waits)
        assert.equal(0, c.session.list({ name = "once" }).metadata.totalItems)
    end)
end)

describe("session.update", function()
    before_each(function() mock.reset() end)

    it("PATCHes the fields given and returns the updated session", function()
        local c = client()
        local s = assert(c.session.create({ name = "before", messages = { { role = "user", message = "a" } } }))
        core.sleep(0.003)
        local u, err = c.session.update(s.id, { name = "after", status = "completed", expirationSeconds = 600,
            customer = { number = "+1555" } })
        assert.is_nil(err)
        local req = mock.last_request()
        assert.equal("PATCH", req.method)
        assert.equal("/session/" .. s.id, req.request_uri)
        assert.same({ name = "after", status = "completed", expirationSeconds = 600, customer = { number = "+1555" } },
            json.decode(req.body))
        assert.equal(session.mt, getmetatable(u))
        assert.equal(s.id, u.id)
        assert.equal("after", u.name)
        assert.equal("completed", u.status)
        assert.is_false(u:is_active())
        assert.equal(600, u.expirationSeconds)
        assert.equal("+1555", u:customer_number())
        assert.same(s.messages, u.messages)
        assert.equal(s.createdAt, u.createdAt)
        assert.is_true(u:updated_at() > s:updated_at())
        assert.same(u, assert(c.session.get(s.id)))
    end)

    it("escapes the id as one path segment", function()
        local c = client()
        local u = assert(c.session.update("a b/c", { name = "slash" }))
        assert.equal("/session/a%20b%2Fc", mock.last_request().request_uri)
        assert.equal("a b/c", u.id)
        assert.equal("slash", u.name)
        assert.equal("assembly-ai", u.assistant.transcriber.provider)
    end)

    it("returns the API's 404 for an unknown id and its 400 for what it refuses", function()
        local c = client()
        local u, err = c.session.update("nope", { name = "x" })
        assert.is_nil(u)
        assert.equal(404, err.status)
        assert.same({ message = "Session not found", error = "Not Found", statusCode = 404 }, err.body)
        assert.equal("cozmox: HTTP 404 Not Found: Session not found (PATCH /session/nope)", tostring(err))
        local u2, err2 = c.session.update("demo", { name = "x", id = "other" })
        assert.is_nil(u2)
        assert.equal(400, err2.status)
        assert.same({ "property id should not exist" }, err2.body.message)
    end)

    it("refuses bad ids and bodies before sending anything", function()
        local c = client()
        assert(c.session.get("demo"))
        local before = seq()
        raises("bad argument #1 to 'update' (non-empty string expected, got empty string)", c.session.update, "", {})
        raises("bad argument #1 to 'update' (non-empty string expected, got nil)", c.session.update, nil, {})
        raises("bad argument #2 to 'update' (table (JSON object) expected, got nil)", c.session.update, "demo")
        raises("bad argument #2 to 'update' (field 'status' must be \"active\" or \"completed\", got \"done\")",
            c.session.update, "demo", { status = "done" })
        raises("bad argument #2 to 'update' (field 'name' must be at most 40 characters, got 50)",
            c.session.update, "demo", { name = ("n"):rep(50) })
        assert.equal(before, seq())
    end)

    it("is not retried (PATCH)", function()
        local waits = {}
        local c = client({ sleep = function(s) waits[#waits + 1] = s end })
        arm("PATCH", 0, 1, 503)
        local u, err = c.session.update("demo", { name = "once" })
        assert.is_nil(u)
        assert.equal(503, err.status)
        assert.equal(1, err.attempts)
        assert.same({}, waits)
        assert.equal("<string>", c.session.get("demo").name)
    end)
end)

describe("session.delete", function()
    before_each(function() mock.reset() end)

    it("DELETEs the session and returns it as it was", function()
        local c = client()
        local s = assert(c.session.create({ name = "doomed" }))
        local d, err = c.session.delete(s.id)
        assert.is_nil(err)
        local req = mock.last_request()
        assert.equal("DELETE", req.method)
        assert.equal("/session/" .. s.id, req.request_uri)
        assert.equal(session.mt, getmetatable(d))
        assert.same(s, d)
        local g, gerr = c.session.get(s.id)
        assert.is_nil(g)
        assert.equal(404, gerr.status)
        local d2, derr = c.session.delete(s.id)
        assert.is_nil(d2)
        assert.equal("cozmox: HTTP 404 Not Found: Session not found (DELETE /session/" .. s.id .. ")", tostring(derr))
        assert.equal(0, c.session.list({ name = "doomed" }).metadata.totalItems)
    end)

    it("escapes the id, and is retried (DELETE is idempotent)", function()
        local waits = {}
        local c = client({ sleep = function(s) waits[#waits + 1] = s end })
        arm("DELETE", 0, 1, 503)
        local d = assert(c.session.delete(".."))
        assert.equal("..", d.id)
        assert.equal("/session/%2E%2E", mock.last_request().request_uri)
        assert.equal(1, #waits)
        assert.equal(404, select(2, c.session.get("..")).status)
    end)

    it("refuses a bad id", function()
        local c = client()
        raises("bad argument #1 to 'delete' (non-empty string expected, got number)", c.session.delete, 1)
        raises("bad argument #1 to 'delete' (non-empty string expected, got empty string)", c.session.delete, "")
    end)
end)

describe("the default client", function()
    before_each(function() mock.reset() end)

    it("forwards every session function", function()
        assert.same({ "get", "get_many", "list", "each", "create", "update", "delete" }, session.FUNCTIONS)
        for _, fname in ipairs(session.FUNCTIONS) do
            assert.is_function(cozmox.session[fname], fname)
        end
        local s = assert(cozmox.session.create({ name = "via default" }))
        assert.equal("via default", cozmox.session.list({ name = "via default" }).results[1].name)
        local n = 0
        for x in cozmox.session.each({ name = "via default" }) do n = n + 1; assert.equal(s.id, x.id) end
        assert.equal(1, n)
        assert.equal("completed", assert(cozmox.session.update(s.id, { status = "completed" })).status)
        assert.equal(s.id, assert(cozmox.session.delete(s.id)).id)
        raises("bad argument #1 to 'list' (unknown param 'x')", cozmox.session.list, { x = 1 })
        raises("bad argument #1 to 'create' (field 'status' must be \"active\" or \"completed\", got \"x\")",
            cozmox.session.create, { status = "x" })
    end)
end)

describe("session helpers", function()
    local wrap = session.wrap

    local function sample()
        return wrap({
            id = "s1", status = "active", createdAt = "2024-03-01T10:00:00.500+01:00",
            updatedAt = "2024-03-01T09:30:00Z",
            expirationSeconds = 3600, assistantId = "asst-9", assistant = { name = "Ava" },
            customer = { number = "+15550001111", name = "Sam" },
            messages = json.array({
                { role = "system", message = "You are Ava.", time = 1709283600000, secondsFromStart = 0 },
                { role = "assistant", message = "Hello! How can I help?", secondsFromStart = 1.2 },
                { role = "user", message = "Where is\nmy order?", secondsFromStart = 65.9 },
                { role = "tool_calls", toolCalls = {} },
                { role = "assistant", content = "It ships today.", secondsFromStart = 3725 },
                { role = "user", message = "Thanks" },
            }),
        })
    end

    it("are methods of a metatable: pairs sees only the API's fields", function()
        local s = assert(client().session.get("demo"))
        assert.equal(session.mt, getmetatable(s))
        for k in pairs(s) do assert.is_nil(session.methods[k], k) end
        assert.is_nil(rawget(s, "transcript"))
        assert.equal("cozmox.session", session.mt.__name)
        -- wrap leaves tables with a metatable alone and returns its argument
        local arr = json.array()
        assert.equal(arr, wrap(arr))
        assert.equal(json.array_mt, getmetatable(arr))
        assert.equal(5, wrap(5))
    end)

    it("is_active follows status", function()
        assert.is_true(sample():is_active())
        assert.is_false(wrap({ status = "completed" }):is_active())
        assert.is_false(wrap({}):is_active())
        assert.is_false(wrap({ status = cozmox.null }):is_active())
    end)

    it("created_at / updated_at read ISO 8601 with fractions and offsets", function()
        local s = sample()
        assert.equal(1709283600.5, s:created_at())
        assert.equal(1709285400, s:updated_at())
        local seeded = assert(client().session.get(ID))
        assert.equal(1699335116, seeded:created_at())
        assert.equal(1699335116, seeded:updated_at())
        local none, err = wrap({}):created_at()
        assert.is_nil(none)
        assert.equal("session has no createdAt", err)
        none, err = wrap({ updatedAt = cozmox.null }):updated_at()
        assert.is_nil(none)
        assert.equal("session has no updatedAt", err)
        none, err = wrap({ createdAt = "2024-13-01T00:00:00Z" }):created_at()
        assert.is_nil(none)
        assert.equal("createdAt: invalid ISO 8601 date-time '2024-13-01T00:00:00Z': month out of range", err)
        none, err = wrap({ createdAt = 5 }):created_at()
        assert.is_nil(none)
        assert.equal("createdAt is not a string", err)
    end)

    it("expires_at / is_expired use createdAt + expirationSeconds (default 86400)", function()
        local s = sample()
        assert.equal(1709283600.5 + 3600, s:expires_at())
        assert.is_false(s:is_expired(1709283600.5 + 3599))
        assert.is_true(s:is_expired(1709283600.5 + 3600))
        assert.is_true(s:is_expired())            -- now (os.time()) is long past 2024-03-01
        assert.equal(86400, wrap({ createdAt = "1970-01-01T00:00:00Z" }):expires_at())
        assert.equal(86400, wrap({ createdAt = "1970-01-01T00:00:00Z", expirationSeconds = cozmox.null }):expires_at())
        local fresh = assert(client().session.create({ name = "fresh", expirationSeconds = 60 }))
        assert.is_false(fresh:is_expired())
        assert.is_true(fresh:is_expired(os.time() + 120))
        local none, err = wrap({}):is_expired(0)
        assert.is_nil(none)
        assert.equal("session has no createdAt", err)
        raises("bad argument #1 to 'is_expired' (epoch seconds expected, got string)", s.is_expired, s, "now")
    end)

    it("messages_by_role and last_message", function()
        local s = sample()
        local users = s:messages_by_role("user")
        assert.equal(json.array_mt, getmetatable(users))
        assert.equal(2, #users)
        assert.equal(s.messages[3], users[1])
        assert.equal("Thanks", users[2].message)
        assert.equal(0, #s:messages_by_role("nobody"))
        assert.equal(0, #wrap({}):messages_by_role("user"))
        assert.equal(s.messages[6], s:last_message())
        assert.is_nil(wrap({ messages = json.array() }):last_message())
        assert.is_nil(wrap({ messages = cozmox.null }):last_message())
        raises("bad argument #1 to 'messages_by_role' (string expected, got nil)", s.messages_by_role, s)
    end)

    it("transcript: one line per message, optional timestamps and labels", function()
        local s = sample()
        assert.equal(table.concat({
            "system: You are Ava.",
            "assistant: Hello! How can I help?",
            "user: Where is my order?",
            "assistant: It ships today.",
            "user: Thanks",
        }, "\n"), s:transcript())
        assert.equal(table.concat({
            "[00:00] system: You are Ava.",
            "[00:01] Agent: Hello! How can I help?",
            "[01:05] Caller: Where is my order?",
            "[1:02:05] Agent: It ships today.",
            "[--:--] Caller: Thanks",
        }, "\n"), s:transcript({ timestamps = true, names = { assistant = "Agent", user = "Caller" } }))
        assert.equal("", wrap({}):transcript())
        assert.equal("unknown: hi", wrap({ messages = { { message = "hi" } } }):transcript())
        raises("bad argument #1 to 'transcript' (unknown option 'stamps')", s.transcript, s, { stamps = true })
        raises("bad argument #1 to 'transcript' (option 'timestamps' must be a boolean, got string)",
            s.transcript, s, { timestamps = "yes" })
        raises("bad argument #1 to 'transcript' (table expected, got string)", s.transcript, s, "x")
        -- the fixture's one message
        assert.equal("[02:03] <string>: <string>",
            assert(client().session.get("demo")):transcript({ timestamps = true }))
    end)

    it("assistant_ref: the assistantId wins, as the API ignores the inline assistant then", function()
        local s = sample()
        local ref, kind = s:assistant_ref()
        assert.equal("asst-9", ref)
        assert.equal("id", kind)
        ref, kind = wrap({ assistant = { name = "Ava" } }):assistant_ref()
        assert.same({ name = "Ava" }, ref)
        assert.equal("inline", kind)
        ref, kind = wrap({ assistantId = cozmox.null, assistant = { name = "Bo" } }):assistant_ref()
        assert.equal("Bo", ref.name)
        assert.equal("inline", kind)
        ref, kind = wrap({ assistantId = "", assistant = { name = "Cy" } }):assistant_ref()
        assert.equal("Cy", ref.name)
        assert.equal("inline", kind)
        assert.is_nil(wrap({}):assistant_ref())
        assert.is_nil(wrap({ assistant = cozmox.null }):assistant_ref())
        local seeded = assert(client().session.get("demo"))
        assert.equal("<string>", (seeded:assistant_ref()))
    end)

    it("customer_number", function()
        assert.equal("+15550001111", sample():customer_number())
        assert.is_nil(wrap({}):customer_number())
        assert.is_nil(wrap({ customer = cozmox.null }):customer_number())
        assert.is_nil(wrap({ customer = { number = cozmox.null } }):customer_number())
        assert.equal("<string>", assert(client().session.get("demo")):customer_number())
    end)

    it("an API field with a helper's name wins over the helper", function()
        local s = wrap({ status = "completed", transcript = "as the API wrote it", is_active = true,
            messages = { { role = "user", message = "hi" } } })
        assert.equal("as the API wrote it", s.transcript)
        assert.is_true(s.is_active)
        -- the helpers stay reachable through session.methods
        assert.equal("user: hi", session.methods.transcript(s))
        assert.is_false(session.methods.is_active(s))
        -- and the helpers read API fields only, never each other's shadows
        assert.equal("user", s:last_message().role)
    end)
end)

describe("the mock's session store", function()
    before_each(function() mock.reset() end)
    after_each(function() mock.reset() end)

    -- A raw request to the mock: status and body text.
    local function raw(method, path, body)
        local http, ltn12 = require("socket.http"), require("ltn12")
        local chunks = {}
        local _, status = http.request({
            url = mock.base_url .. path, method = method, sink = ltn12.sink.table(chunks),
            source = body and ltn12.source.string(body) or nil,
            headers = { authorization = "Bearer " .. mock.token, ["content-type"] = "application/json",
                ["content-length"] = body and #body or nil },
        })
        return status, table.concat(chunks)
    end

    it("composes a new session as text, members in the API's order", function()
        local status, text = raw("POST", "/session",
            '{"messages": [ ], "name": "n\\u00e9", "expirationSeconds": 6e2, "customer": {"number": null}}')
        assert.equal(201, status)
        local id, at = text:match('^{"id":"([%x-]+)","orgId":"[%x-]+","createdAt":"([^"]+)","updatedAt":"([^"]+)"')
        assert.matches(UUID, id)
        assert.matches(ISO_MS, at)
        assert.equal('"name":"n\\u00e9","status":"active","expirationSeconds":6e2,"messages":[ ],'
            .. '"customer":{"number": null}}', text:match('"updatedAt":"[^"]+",(.*)$'))
        assert.equal(text, select(2, raw("GET", "/session/" .. id)))
    end)

    it("updates by splicing values into the stored text, every other byte kept", function()
        local fixture = mock.fixture("session.json")
        local status, text = raw("PATCH", "/session/demo",
            '{"name": "x", "phoneNumberId": null, "status": "completed"}')
        assert.equal(200, status)
        local updated = text:match('"updatedAt": ("[^"]+")')
        assert.matches(ISO_MS, updated:sub(2, -2))
        local want = fixture:gsub('"id": "<string>"', '"id": "demo"', 1)
            :gsub('"updatedAt": "2023%-11%-07T05:31:56Z"', '"updatedAt": ' .. updated, 1)
            :gsub('\n  "name": "<string>"', '\n  "name": "x"', 1)
            :gsub('"status": "active"', '"status": "completed"', 1)
            :gsub('\n  "phoneNumberId": "<string>"', '\n  "phoneNumberId": null', 1)
        assert.equal(want, text)
        -- a member the session lacks is appended before the closing brace
        local s = assert(client().session.create({}))
        local _, t2 = raw("PATCH", "/session/" .. s.id, '{"name":"late"}')
        assert.matches(',"name":"late"}$', t2)
    end)

    it("lists the stored texts as they are", function()
        local _, text = raw("GET", "/session?limit=1&sortOrder=ASC")
        local fixture = mock.fixture("session.json"):gsub('"id": "<string>"', '"id": "' .. ID .. '"', 1)
        assert.equal('{"results":[' .. fixture .. '],"metadata":{"itemsPerPage":1,"totalItems":11,"currentPage":1}}',
            text)
    end)

    it("answers 400 for a body that is not a JSON object, 404 for other methods", function()
        local status, text = raw("POST", "/session", "[1]")
        assert.equal(400, status)
        assert.equal('{"message":"Request body must be a JSON object","error":"Bad Request","statusCode":400}', text)
        status, text = raw("PUT", "/session/demo", "{}")
        assert.equal(404, status)
        assert.equal('{"message":"Cannot PUT /session/demo","error":"Not Found","statusCode":404}', text)
        status = raw("DELETE", "/session")
        assert.equal(404, status)
    end)
end)
