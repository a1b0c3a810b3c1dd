-- Hostile callers and what a call leaves behind: option ranges, base URLs,
-- query values, errors raised at the caller's line, re-entrancy, closing
-- mid-call, memory after a call.  (Hostile servers: spec/matrix_spec.lua,
-- on every transport.)
local cozmox = require("cozmox")
local mock = require("support.mock")
local util = require("support.util")

local client = mock.client
local THIS = "spec/hardening_spec.lua"

-- The error f raises, and whether it points at this file's line `line`.
local function raised_at(f, line)
    local ok, err = pcall(f)
    assert.is_false(ok, "no error raised")
    err = tostring(err)
    return err, err:find(THIS .. ":" .. line .. ":", 1, true) ~= nil
end

describe("bad arguments", function()
    it("are raised at the caller's line, naming the option", function()
        local cases = {
            { function() cozmox.new({ timeout = "10" }) end, "option 'timeout' must be a number, got string" },
            { function() cozmox.new({ timeout = 1e9 }) end, "option 'timeout' must be a number of seconds between" },
            { function() cozmox.new({ timeout = math.huge }) end, "option 'timeout' must be a number of seconds" },
            { function() cozmox.new({ timeout = 0 / 0 }) end, "option 'timeout' must be a number of seconds" },
            { function() cozmox.new({ connect_timeout = 1e12 }) end, "option 'connect_timeout' must be" },
            { function() cozmox.new({ max_response_bytes = 2 ^ 63 }) end,
                "option 'max_response_bytes' must be an integer" },
            { function() cozmox.new({ base_url = "ftp://x" }) end,
                "option 'base_url' must be an http:// or https:// URL" },
            { function() cozmox.new({ token = "a\nb" }) end, "option 'token' must be a non-empty string" },
            { function() cozmox.new({ transport = "pigeon" }) end, "option 'transport' must be \"auto\", \"curl\"" },
            { function() cozmox.new({ max_retries = 1.5 }) end,
                "option 'max_retries' must be an integer between 0 and 100" },
            { function() cozmox.new({ json_big_integers = "bignum" }) end, "option 'json_big_integers' must be" },
            { function() cozmox.new({ tiemout = 1 }) end, "unknown option 'tiemout'" },
        }
        for _, case in ipairs(cases) do
            local line = debug.getinfo(case[1], "S").linedefined
            local err, here = raised_at(case[1], line)
            assert.matches("bad argument #1 to 'new' (" .. case[2], err, 1, true)
            assert(here, "not raised at " .. THIS .. ":" .. line .. ": " .. err)
        end
    end)

    it("request, get and a closed client too", function()
        local c = client()
        local f1 = function() c:request("GET", "/x", { query = { n = 0 / 0 } }) end
        local err, here = raised_at(f1, debug.getinfo(f1, "S").linedefined)
        assert.matches("bad argument #3 to 'request' (query value 'n' must be a finite number)", err, 1, true)
        assert(here, err)
        local f2 = function() c.session.get("") end
        err, here = raised_at(f2, debug.getinfo(f2, "S").linedefined)
        assert(here, err)
        local f3 = function() c.request("GET", "/x") end
        err, here = raised_at(f3, debug.getinfo(f3, "S").linedefined)
        assert.matches("bad argument #1 to 'request' (cozmox.client expected, got string; "
            .. "call it as client:request(...))", err, 1, true)
        assert(here, err)
        c:close()
        local f4 = function() c.session.get("demo") end
        err, here = raised_at(f4, debug.getinfo(f4, "S").linedefined)
        assert.matches("cozmox: the client is closed", err, 1, true)
        assert(here, err)
        local f5 = function() c:request("GET", "/session/demo") end
        err, here = raised_at(f5, debug.getinfo(f5, "S").linedefined)
        assert(here, err)
        local f6 = function() c.session.get_many({ "demo" }) end
        err, here = raised_at(f6, debug.getinfo(f6, "S").linedefined)
        assert(here, err)
        local f7 = function() c.session.list() end
        err, here = raised_at(f7, debug.getinfo(f7, "S").linedefined)
        assert(here, err)
        local f8 = function()
            for _ in c.session.each() do end
        end
        err, here = raised_at(f8, debug.getinfo(f8, "S").linedefined + 1)
        assert.matches("cozmox: the client is closed", err, 1, true)
        assert(here, err)
    end)

    it("base_url: no query, fragment or user info", function()
        for _, url in ipairs({ mock.base_url .. "/#", mock.base_url .. "/api?x=", "http://gw:s3cret@127.0.0.1:9",
            "http://@127.0.0.1", "http://127.0.0.1:99999", "http:///x" }) do
            local ok, err = pcall(cozmox.new, { base_url = url })
            assert.is_false(ok, url)
            assert.matches("option 'base_url'", err, 1, true)
            assert.is_nil(err:find("s3cret", 1, true))
        end
        local c = client({ base_url = mock.base_url .. "/" })
        assert.equal("cozmox.client(" .. mock.base_url .. ")", tostring(c))
    end)
end)

describe("options and results through metatables", function()
    it("options behind __index are read and checked like the others", function()
        local ok, err = pcall(cozmox.new, setmetatable({}, { __index = { timeout = "10" } }))
        assert.is_false(ok)
        assert.matches("option 'timeout' must be a number, got string", err, 1, true)
        local c = cozmox.new(setmetatable({ token = mock.token },
            { __index = { base_url = mock.base_url .. "/fault/by-id", max_retries = 0 } }))
        local _, e2 = c.session.get("status?code=503&key=" .. mock.key("idx"))
        assert.equal(503, e2.status)
        assert.equal(1, e2.attempts)
    end)
end)

describe("query values", function()
    it("are sent exactly: integers, floats as the encoder prints them, no NaN or infinity", function()
        local c = client()
        local query = { a = 1.5, b = 0.1, c = -0.0, d = 1e22, s = "x y", t = true }
        if math.type then
            query.big = 9007199254740993
            query.max = math.maxinteger
        end
        c:request("GET", "/fault/ok", { query = query })
        local uri = mock.last_request().request_uri
        assert.matches("a=1.5&", uri, 1, true)
        assert.matches("b=0.1&", uri, 1, true)
        assert.matches("d=" .. cozmox.escape_segment(cozmox.json.encode(1e22)) .. "&", uri, 1, true)
        assert.matches("s=x%20y&t=true", uri, 1, true)
        if math.type then
            assert.matches("big=9007199254740993&", uri, 1, true)
            assert.matches("max=9223372036854775807&", uri, 1, true)
        end
        for _, bad in ipairs({ 0 / 0, math.huge, -math.huge }) do
            assert.has_error(function() c:request("GET", "/fault/ok", { query = { n = bad } }) end,
                "bad argument #3 to 'request' (query value 'n' must be a finite number)")
        end
    end)
end)

describe("closing the client mid-call", function()
    it("in the sleep before a retry: the call ends with kind closed", function()
        local c
        c = client({ sleep = function() c:close() end })
        local v, err = c:request("GET", "/fault/status", { query = { code = 503, key = mock.key("close") } })
        assert.is_nil(v)
        assert.equal("closed", err.kind)
        assert.equal(1, err.attempts)
        assert.matches("cozmox: client closed: the client was closed during the call", tostring(err), 1, true)
    end)

    it("in on_response with a retry pending: kind closed; after a success: the value", function()
        local c
        c = client({ on_response = function() c:close() end, sleep = function() end })
        local _, err = c:request("GET", "/fault/status", { query = { code = 500, key = mock.key("hook") } })
        assert.equal("closed", err.kind)
        local c2
        c2 = client({ on_response = function() c2:close() end })
        local s = c2.session.get("demo")
        assert.equal("demo", s.id)
        assert.matches("closed", tostring(c2))
    end)

    it("in on_response during get_many: no more requests, no redirect followed, and no new handle", function()
        local c
        local responses = 0
        c = client({ base_url = mock.base_url .. "/fault/by-id", follow_redirects = true,
            on_response = function() responses = responses + 1 c:close() end })
        -- both first answers arrive in one round; the close comes with the
        -- first one's hook, so the second's redirect is never followed
        local results, errors, failed = c.session.get_many({ "ok", "redirect?to=/fault/by-id/session/ok" },
            { concurrency = 1 })
        assert.equal("ok", results[1].id)
        assert.equal(1, failed)
        assert.equal("closed", errors[2].kind)
        assert.equal(1, responses)
        assert.is_nil(c._state.curl.h)
        assert.has_error(function() c.session.get("ok") end, "cozmox: the client is closed")
    end)

    it("get_many: the rest end with kind closed", function()
        local c
        c = client({ base_url = mock.base_url .. "/fault/by-id", sleep = function() c:close() end })
        local results, errors, failed = c.session.get_many({ "ok", "status?code=503&key=" .. mock.key("gm") })
        assert.equal("ok", results[1].id)
        assert.equal("closed", errors[2].kind)
        assert.equal(1, failed)
    end)
end)

describe("re-entrancy", function()
    it("a request started from inside another one (a hook, a finalizer) gets a clear error, never shared state",
        function()
        local c = client()
        assert.equal("demo", c.session.get("demo").id) -- the curl handle exists now
        local h = c._state.curl.h
        local perform = getmetatable(h).__index.perform
        local inner = {}
        -- A call hook sees every function the transfer calls from C: the
        -- decoder's protected feed and the record's builder, called by
        -- perform itself, inside curl's frames.  A request from there must
        -- be refused and leave the outer one alone.
        debug.sethook(function()
            if debug.getinfo(3, "f") and debug.getinfo(3, "f").func == perform and #inner < 20 then
                local ok, e = pcall(c.session.get, "INNER-padded")
                inner[#inner + 1] = ok and "no error" or tostring(e)
            end
        end, "c")
        local s, err = c.session.get("a b/c")
        debug.sethook()
        assert(#inner > 0, "the hook never ran inside the transfer")
        for _, e in ipairs(inner) do assert.matches("already performing a request", e, 1, true) end
        assert.is_nil(err)
        assert.equal("a b/c", s.id)
        assert.equal("demo", c.session.get("demo").id)
    end)

    it("a response sink re-entered while it decodes (a hook, a finalizer) refuses, and nothing breaks", function()
        local core = require("cozmox.core")
        local sink = core.sink(1e8, 1000)
        local doc = util.fixture("session.json")
        local refused, let = 0, 0
        local feed, finish, decoding = sink.feed, sink.finish, false
        for round = 1, 4 do
            -- a call hook fires for the decoder's own protected call, inside
            -- the sink; whatever it does there must be refused
            debug.sethook(function()
                local called = debug.getinfo(2, "f").func
                if not decoding or called == feed or called == finish then return end
                local ok, e = pcall(function()
                    if round % 2 == 0 then sink:finish({}) else sink:begin(200) end
                end)
                if ok then let = let + 1
                elseif tostring(e):find("the sink is in use", 1, true) then refused = refused + 1 end
            end, "c")
            sink:begin(200)
            decoding = true
            local go = sink:feed(doc)
            local r = sink:finish({})
            decoding = false
            debug.sethook()
            assert.is_true(go)
            assert.equal("active", r.value.status)
        end
        assert(refused > 0, "nothing re-entered the sink while it decoded (" .. let .. " calls outside)")
    end)

    it("perform_many refused for a bad request leaves the handle usable at once", function()
        local curl = require("cozmox.curl")
        local h = curl.handle({ connect_timeout = 5, max_response_bytes = 1e6, max_depth = 100 })
        assert.has_error(function() h:perform_many({ { method = "GET", url = {}, timeout = 1,
            connect_timeout = 1 } }) end,
            "bad argument #1 to 'perform_many' (reqs[1].url must be a string without NUL)")
        local r = h:perform({ method = "GET", url = mock.base_url .. "/fault/ok", timeout = 5, connect_timeout = 5 })
        assert.equal(200, r.status)
        h:close()
    end)
end)

describe("libcurl's own memory", function()
    -- libcurl 7.88 keeps a stale pointer into the previous response's
    -- headers on a reused easy handle (curl PR #11103, fixed in 8.1.0); a
    -- folded first header line then makes it read and free memory it no
    -- longer owns.  libcurl is not instrumented by make sanitize, so this
    -- runs under memcheck.
    it("a folded first header after another response does not corrupt libcurl's heap (valgrind)", function()
        local script = os.tmpname()
        local f = assert(io.open(script, "w"))
        f:write([[
            local cozmox = require("cozmox")
            local c = cozmox.new({ base_url = os.getenv("COZMOX_BASE_URL") .. "/fault/by-id", max_retries = 0 })
            for _ = 1, 2 do
                assert(c.session.get("ok"))
                local _, err = c.session.get("raw?head=folded-first")
                print(err and err.kind or "no error")
                local r = c.session.get_many({ "ok", "raw?head=folded-first", "ok" }, { concurrency = 1 })
                assert(r[1] and r[3])
            end
            c:close()
            print("done")
        ]])
        f:close()
        -- under lua5.4 with its own build, whatever runtime runs the specs
        -- (memcheck and LuaJIT do not mix); the libcurl is the same
        local root = util.spec_dir:gsub("/spec$", "")
        local built, bok = util.run("make -s -C " .. util.quote(root) .. " LUA_VERSION=5.4")
        assert(bok, built)
        -- a clean environment: nothing of the runner's (a sanitizer's
        -- preload, another build's paths) may reach the process
        local out, ok = util.run("env -i PATH=/usr/bin:/bin"
            .. " COZMOX_BASE_URL=" .. util.quote(mock.base_url) .. " COZMOX_TOKEN=" .. util.quote(mock.token)
            .. " LUA_PATH=" .. util.quote(root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;")
            .. " LUA_CPATH=" .. util.quote(root .. "/build/lua5.4/?.so;;")
            .. " valgrind -q --error-exitcode=99 --suppressions=" .. util.quote(util.spec_dir .. "/valgrind.supp")
            .. " lua5.4 " .. util.quote(script))
        os.remove(script)
        assert(ok, out)
        assert.matches("done", out, 1, true)
        assert.is_nil(out:find("Invalid", 1, true), out)
    end)
end)

describe("transport functions that misbehave", function()
    it("a status that is not an HTTP status, or a body of another type, is a clear network error", function()
        for _, ret in ipairs({ { "200" }, { 200.5 }, { 1e20 }, { 42 }, { 200, {}, 42 }, { 200, {}, {} } }) do
            local c = cozmox.new({ token = "x", base_url = mock.base_url, max_retries = 0,
                transport = function() return ret[1], ret[2], ret[3] end })
            local s, err = c.session.get("demo")
            assert.is_nil(s)
            assert.equal("network", err.kind)
            assert.matches("the transport function returned a", err.message, 1, true)
        end
    end)
end)

describe("trailers and hidden state", function()
    it("the trailer section of a chunked body is not taken for headers", function()
        local seen
        local c = client({ base_url = mock.base_url .. "/fault/by-id", on_response = function(m) seen = m end })
        assert.equal("raw?head=trailers", c.session.get("raw?head=trailers").id)
        assert.is_nil(seen.headers["x-trailer"])
        assert.is_nil(seen.headers["retry-after"])
        assert.equal("chunked", seen.headers["transfer-encoding"])
    end)

    it("a sink whose user value was replaced refuses clearly", function()
        local sink = require("cozmox.core").sink(1e6, 10)
        if _VERSION == "Lua 5.1" then debug.setfenv(sink, { 5 })
        elseif _VERSION == "Lua 5.2" then debug.setuservalue(sink, { 5 })
        else debug.setuservalue(sink, 5) end
        assert.has_error(function() sink:begin(200) end, "cozmox: the sink has lost its decoder")
    end)
end)

describe("values that look like failures", function()
    it("request returns a JSON false or null as the value, with no error", function()
        local c = client({ base_url = mock.base_url })
        local v, err = c:request("GET", "/__file/JSONTestSuite/test_parsing/y_structure_lonely_false.json")
        assert.is_false(v)
        assert.is_nil(err)
        local n, err2 = c:request("GET", "/__file/JSONTestSuite/test_parsing/y_structure_lonely_null.json")
        assert.equal(cozmox.null, n)
        assert.is_nil(err2)
    end)
end)

describe("memory after a call", function()
    -- #slow: 60 MiB through memcheck would take minutes (make valgrind
    -- skips it; make sanitize runs it with ASan's quarantine off, so that
    -- freed blocks leave the process as they do without ASan).
    it("buffers grown for a 60 MiB string are released when the call ends #slow", function()
        local out, ok = util.run_lua([[
            local cozmox = require("cozmox")
            local function rss()
                for l in io.lines("/proc/self/status") do
                    local v = l:match("^VmRSS:%s+(%d+)")
                    if v then return tonumber(v) / 1024 end
                end
            end
            local c = cozmox.new({ base_url = os.getenv("COZMOX_BASE_URL") .. "/fault/by-id" })
            assert(c.session.get("ok"))
            collectgarbage() collectgarbage()
            local before = rss()
            local s = assert(c.session.get("bigstring?mb=60"))
            assert(#s.s == 60 * 1048576)
            s = nil
            collectgarbage() collectgarbage()
            print(string.format("grew %.1f MiB", rss() - before))
        ]], 'ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=0:allocator_release_to_os_interval_ms=0"')
        assert(ok, out)
        local grew = tonumber(out:match("grew (%-?[%d.]+) MiB"))
        assert(grew and grew < 16, out)
    end)
end)

describe("the token in what a server says", function()
    local errors = require("cozmox.errors")
    local function lower_has(s, token) return s:lower():find(token:lower(), 1, true) ~= nil end

    it("is taken out in any letter case, overlapping occurrences too", function()
        assert.equal("a [REDACTED] b [REDACTED] c [REDACTED]", errors.redact("a TOKEN b token c ToKeN", "tOkEn"))
        assert.equal("[REDACTED]", errors.redact("aaaaaaa", "aaa"))
        assert.equal("50% off [REDACTED]", errors.redact("50% off A.B*C", "a.b*c")) -- pattern bytes are bytes
        assert.equal("cut at [REDACTED]", errors.redact("cut at TOKE", "token", true))
    end)

    it("never spelled again by the mark and the text around it", function()
        for _, case in ipairs({
            { "x ED]abcdefabcdef", "ED]abcdef" },  -- the token starts with the mark's end
            { "[REDAC[REDACTED]", "[redac" },       -- ends with its start
            { "xx[REDACTED]yy", "ACTED" },         -- inside the mark
            { "D]x[R D]x[R", "D]x[R" },            -- across two marks
        }) do
            local out = errors.redact(case[1], case[2], true)
            assert.is_false(lower_has(out, case[2]), ("%q -> %q"):format(case[1], out))
        end
    end)

    it("is taken out of a 20 MB error body in linear time", function()
        local parts = {}
        for i = 1, 400000 do parts[i] = '"v' .. i .. ' Some Text"' end
        parts[#parts + 1] = '"echo: BEARER SECRET_TOKEN_abc"'
        local body = require("cozmox.json").decode('{"message":"bad","items":[' .. table.concat(parts, ",") .. ']}')
        local t0 = os.clock()
        local e = errors.http(400, body, nil, "GET", "/", "secret_token_ABC")
        local dt = os.clock() - t0
        assert.equal("echo: BEARER [REDACTED]", e.body.items[#e.body.items])
        io.stderr:write(("[redacting 400,000 strings: %.2f s] "):format(dt))
        assert(dt < 1.5, ("redacting 400,000 strings took %.2f s"):format(dt))
    end)
end)
