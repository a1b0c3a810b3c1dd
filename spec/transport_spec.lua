-- The transport under faults: retries, timeouts, TLS, limits, hardening,
-- connection sharing and observability, against the mock's fault routes.
local cozmox = require("cozmox")
local core = require("cozmox.core")
local retry = require("cozmox.retry")
local mock = require("support.mock")
local util = require("support.util")

-- A client whose sleeps are recorded instead of slept.
local function client(opts)
    opts = opts or {}
    local sleeps = {}
    opts.token = opts.token or mock.token
    opts.base_url = opts.base_url or mock.base_url
    if opts.sleep == nil then opts.sleep = function(s) sleeps[#sleeps + 1] = s end end
    return cozmox.new(opts), sleeps
end

local run_lua = util.run_lua

local closed_port = util.free_port

describe("retries", function()
    it("retry a 503 with backoff, then succeed", function()
        local c, sleeps = client()
        local key = mock.key("503")
        local v, err = c:request("GET", "/fault/503-once", { query = { key = key } })
        assert.is_nil(err)
        assert.equal("active", v.status)
        assert.equal(2, mock.hits(key))
        assert.equal(1, #sleeps)
        assert.is_true(sleeps[1] >= 0 and sleeps[1] <= 0.5)
    end)

    it("honour Retry-After (delta-seconds) on 429", function()
        local c, sleeps = client()
        local key = mock.key("429")
        local v = c:request("GET", "/fault/429", { query = { n = 2, key = key, retry_after = 3 } })
        assert.is_table(v)
        assert.same({ 3, 3 }, sleeps)
        assert.equal(3, mock.hits(key))
    end)

    it("honour Retry-After as an HTTP-date", function()
        local c, sleeps = client()
        local v = c:request("GET", "/fault/429", { query = { n = 1, key = mock.key("date"), retry_after = 5,
            date = 1 } })
        assert.is_table(v)
        assert.equal(1, #sleeps)
        assert.is_true(sleeps[1] >= 3 and sleeps[1] <= 5, "slept " .. sleeps[1])
    end)

    it("honour X-RateLimit-Reset when there is no Retry-After", function()
        local c, sleeps = client()
        local v = c:request("GET", "/fault/ratelimit", { query = { n = 1, key = mock.key("rl"), reset_in = 4 } })
        assert.is_table(v)
        assert.equal(1, #sleeps)
        assert.is_true(sleeps[1] >= 2 and sleeps[1] <= 4, "slept " .. sleeps[1])
    end)

    it("cap every wait at max_retry_wait", function()
        local c, sleeps = client({ max_retry_wait = 2 })
        assert.is_table(c:request("GET", "/fault/429", { query = { n = 1, key = mock.key("cap"), retry_after = 100 } }))
        assert.same({ 2 }, sleeps)
    end)

    it("give up after max_retries and say how many attempts were made", function()
        local c, sleeps = client()
        local key = mock.key("500")
        local v, err = c:request("GET", "/fault/status", { query = { code = 500, key = key } })
        assert.is_nil(v)
        assert.equal("http", err.kind)
        assert.equal(500, err.status)
        assert.equal(3, err.attempts)
        assert.equal(3, mock.hits(key))
        assert.matches(" after 3 attempts$", tostring(err))
        assert.equal(2, #sleeps)
        assert.is_true(sleeps[1] <= 0.5 and sleeps[2] <= 1.0)
        local c0, sleeps0 = client({ max_retries = 0 })
        local key0 = mock.key("500")
        local _, err0 = c0:request("GET", "/fault/status", { query = { code = 500, key = key0 } })
        assert.equal(1, err0.attempts)
        assert.equal(1, mock.hits(key0))
        assert.equal(0, #sleeps0)
        assert.is_nil(tostring(err0):find("attempts", 1, true))
    end)

    it("retry exactly 408, 429, 500, 502, 503 and 504", function()
        for _, code in ipairs({ 408, 429, 500, 502, 503, 504 }) do
            local c = client()
            local key = mock.key("s" .. code)
            local v = c:request("GET", "/fault/status", { query = { code = code, n = 1, key = key } })
            assert(type(v) == "table", "status " .. code .. " was not retried")
            assert.equal(2, mock.hits(key))
        end
        for _, code in ipairs({ 400, 401, 403, 404, 409, 422, 501 }) do
            local c = client()
            local key = mock.key("s" .. code)
            local v, err = c:request("GET", "/fault/status", { query = { code = code, n = 1, key = key } })
            assert.is_nil(v)
            assert.equal(code, err.status)
            assert.equal(1, mock.hits(key))
        end
    end)

    it("retry PUT and DELETE, but POST and PATCH only when the call opts in", function()
        for _, m in ipairs({ "PUT", "DELETE" }) do
            local c = client()
            local key = mock.key(m)
            assert.is_table(c:request(m, "/fault/503-once", { query = { key = key } }))
            assert.equal(2, mock.hits(key))
        end
        for _, m in ipairs({ "POST", "PATCH" }) do
            local c = client()
            local key = mock.key(m)
            local v, err = c:request(m, "/fault/503-once", { query = { key = key }, body = { a = 1 } })
            assert.is_nil(v)
            assert.equal(503, err.status)
            assert.equal(1, mock.hits(key))
            local key2 = mock.key(m)
            assert.is_table(c:request(m, "/fault/503-once", { query = { key = key2 }, body = { a = 1 }, retry = true }))
            assert.equal(2, mock.hits(key2))
        end
    end)

    it("retry a refused connection, which happens before any response byte", function()
        local c, sleeps = client({ base_url = "http://127.0.0.1:" .. closed_port() })
        local s, err = c.session.get("demo")
        assert.is_nil(s)
        assert.equal("network", err.kind)
        assert.equal(3, err.attempts)
        assert.equal(2, #sleeps)
    end)

    it("never retry once the response has started (reset mid-body)", function()
        local c, sleeps = client()
        local key = mock.key("reset")
        local v, err = c:request("GET", "/fault/reset", { query = { key = key } })
        assert.is_nil(v)
        assert.equal("network", err.kind)
        assert.equal(1, err.attempts)
        assert.equal(1, mock.hits(key))
        assert.equal(0, #sleeps)
    end)

    it("sleep for real with the default C sleep", function()
        local t0 = core.now()
        core.sleep(0.2)
        assert.is_true(core.now() - t0 >= 0.19)
        local c = cozmox.new({ token = mock.token, base_url = mock.base_url, max_retry_wait = 0.3 })
        t0 = core.now()
        assert.is_table(c:request("GET", "/fault/429", { query = { n = 1, key = mock.key("real"), retry_after = 5 } }))
        local dt = core.now() - t0
        assert.is_true(dt >= 0.29 and dt < 3, "took " .. dt)
    end)

    it("parse HTTP-dates and compute backoff within bounds", function()
        assert.equal(784111777, retry.http_date("Sun, 06 Nov 1994 08:49:37 GMT"))
        assert.equal(0, retry.http_date("Thu, 01 Jan 1970 00:00:00 GMT"))
        assert.is_nil(retry.http_date("Sunday, 06-Nov-94 08:49:37 GMT"))
        for attempt = 1, 10 do
            local d = retry.backoff(attempt)
            assert.is_true(d >= 0 and d <= math.min(8, 0.5 * 2 ^ (attempt - 1)))
        end
        local headers = { ["retry-after"] = "7" }
        local function h(n) return headers[n] end
        assert.equal(7, retry.server_wait(429, h))
        assert.equal(7, retry.server_wait(503, h))
        assert.is_nil(retry.server_wait(500, h))
        headers = { ["x-ratelimit-reset"] = "1000" }
        assert.equal(10, retry.server_wait(429, h, 990))
        assert.equal(0, retry.server_wait(429, h, 2000))
    end)
end)

describe("timeouts", function()
    it("a slow response completes within the timeout", function()
        local c = client({ timeout = 10 })
        local v = c:request("GET", "/fault/slow", { query = { ms = 600 } })
        assert.equal("active", v.status)
    end)

    it("a slow response past the timeout: kind timeout, within the limit, not retried", function()
        local c, sleeps = client({ timeout = 0.4 })
        local t0 = core.now()
        local v, err = c:request("GET", "/fault/slow", { query = { ms = 3000 } })
        local dt = core.now() - t0
        assert.is_nil(v)
        assert.equal("timeout", err.kind)
        assert.equal(1, err.attempts) -- the response had started
        assert.equal(0, #sleeps)
        assert.is_true(dt < 1.5, "took " .. dt)
    end)
end)

describe("faults map to kinds, never to partial data", function()
    local cases = {
        { "/fault/reset", "network" },
        { "/fault/short-body", "network" },
        { "/fault/chunked-truncated", "network" },
        { "/fault/chunked-malformed", "network" },
    }
    for _, case in ipairs(cases) do
        it(case[1] .. " -> " .. case[2], function()
            local c = client()
            local v, err = c:request("GET", case[1])
            assert.is_nil(v)
            assert.equal(case[2], err.kind)
            assert.is_number(err.curl_code)
            assert.is_nil(err.status)
        end)
    end

    it("gzip and deflate are requested and decoded", function()
        local c = client()
        for _, route in ipairs({ "/fault/gzip", "/fault/deflate" }) do
            local v = c:request("GET", route)
            assert.equal("active", v.status)
            assert.matches("gzip", mock.last_request().headers["accept-encoding"])
            assert.matches("deflate", mock.last_request().headers["accept-encoding"])
        end
    end)

    it("a body over max_response_bytes after decompression: too_large, aborted early", function()
        local c = client({ max_response_bytes = 1024 * 1024 })
        local v, err = c:request("GET", "/fault/big", { query = { mb = 3 } })
        assert.is_nil(v)
        assert.equal("too_large", err.kind)
        assert.equal(200, err.status)
        local big = client():request("GET", "/fault/big", { query = { mb = 3 } })
        assert.is_table(big)
    end)

    it("a gzip bomb is cut at the limit without ballooning memory", function()
        local out = run_lua([[
            local cozmox = require("cozmox")
            local function hwm()
                for l in io.lines("/proc/self/status") do
                    local kb = l:match("^VmHWM:%s*(%d+)")
                    if kb then return tonumber(kb) end
                end
            end
            local before = hwm()
            local c = cozmox.new({ max_response_bytes = 4 * 1024 * 1024 })
            local t0 = require("cozmox.core").now()
            local v, err = c:request("GET", "/fault/gzip-bomb")
            print(v, err.kind, hwm() - before, require("cozmox.core").now() - t0)
        ]])
        local v, kind, grown_kb, secs = out:match("^(%S+)\t(%S+)\t(%d+)\t(%S+)")
        assert.equal("nil", v, out)
        assert.equal("too_large", kind)
        -- 4 MiB of "[0,0,..." decodes into ~2M Lua integers (~32 MB); the
        -- 200 MB the bomb inflates to is never reached.
        assert.is_true(tonumber(grown_kb) < 100 * 1024, "peak grew by " .. grown_kb .. " kB")
        assert.is_true(tonumber(secs) < 10)
    end)
end)

describe("TLS", function()
    it("verifies the peer by default: an unknown CA is kind tls", function()
        local c = client({ base_url = mock.https_url, max_retries = 0 })
        local v, err = c.session.get("demo")
        assert.is_nil(v)
        assert.equal("tls", err.kind)
        assert.equal(60, err.curl_code)
    end)

    it("trusts the CA given by ca_file", function()
        local c = client({ base_url = mock.https_url, ca_file = mock.ca_file })
        assert.equal("demo", c.session.get("demo").id)
    end)

    it("trusts the CA directory given by ca_path", function()
        local dir = os.tmpname()
        os.remove(dir)
        local out, ok = util.run(string.format("mkdir -p '%s' && cp '%s' '%s/ca.pem' && openssl rehash '%s'",
            dir, mock.ca_file, dir, dir))
        assert(ok, out)
        local c = client({ base_url = mock.https_url, ca_path = dir })
        local v, err = c.session.get("demo")
        util.run("rm -rf '" .. dir .. "'")
        assert.is_nil(err and tostring(err))
        assert.equal("demo", v.id)
    end)

    it("insecure = true skips verification and says so once on stderr", function()
        local out = run_lua([[
            local cozmox = require("cozmox")
            local a = cozmox.new({ base_url = os.getenv("COZMOX_TEST_HTTPS_URL"), insecure = true })
            local b = cozmox.new({ base_url = os.getenv("COZMOX_TEST_HTTPS_URL"), insecure = true })
            print(a.session.get("demo").id, b.session.get("demo").id)
        ]])
        assert.matches("demo\tdemo", out)
        local _, warnings = out:gsub("TLS certificate verification is disabled", "")
        assert.equal(1, warnings)
    end)
end)

describe("hardening", function()
    it("does not follow redirects unless asked", function()
        local c = client({ max_retries = 0 })
        local v, err = c:request("GET", "/fault/redirect", { query = { to = "/session/demo" } })
        assert.is_nil(v)
        assert.equal(302, err.status)
        assert.matches("^cozmox: HTTP 302 Found", tostring(err))
    end)

    it("follows redirects when asked, keeping Authorization on the same host", function()
        local c = client({ follow_redirects = true })
        local v = c:request("GET", "/fault/redirect", { query = { to = "/session/demo" } })
        assert.equal("demo", v.id)
        assert.equal("Bearer " .. mock.token, mock.last_request().headers.authorization)
    end)

    it("never sends Authorization to another host", function()
        local port = mock.base_url:match(":(%d+)$")
        local c = client({ follow_redirects = true })
        local v, err = c:request("GET", "/fault/redirect",
            { query = { to = "http://localhost:" .. port .. "/session/demo" } })
        assert.is_nil(v)
        assert.equal(401, err.status)
        local req = mock.last_request()
        assert.equal("/session/demo", req.request_uri)
        assert.is_nil(req.headers.authorization)
    end)

    it("refuses redirects to schemes other than http and https", function()
        local c = client({ follow_redirects = true })
        local v, err = c:request("GET", "/fault/redirect", { query = { to = "file:///etc/passwd" } })
        assert.is_nil(v)
        assert.equal("network", err.kind)
        assert.equal(1, err.curl_code) -- CURLE_UNSUPPORTED_PROTOCOL
        local v2, err2 = c:request("GET", "/fault/redirect", { query = { to = "ftp://127.0.0.1/x" } })
        assert.is_nil(v2)
        assert.equal(1, err2.curl_code)
    end)

    it("escapes CR, LF and NUL in ids, and refuses them in tokens and headers", function()
        local c = client()
        local _, err = c.session.get("a\r\nX-Evil: 1")
        assert.equal(404, err.status)
        assert.equal("/session/a%0D%0AX-Evil%3A%201", mock.last_request().request_uri)
        assert.is_nil(mock.last_request().headers["x-evil"])
        assert.equal("a%00b", cozmox.escape_segment("a\0b"))
        assert.has_error(function() cozmox.new({ token = "t\0x" }) end)
        assert.has_error(function() c:request("GET", "/x", { headers = { ["X-A"] = "a\0b" } }) end)
        assert.has_error(function() c:request("GET", "/x", { headers = { ["X-A\n"] = "a" } }) end)
    end)

    it("goes through the proxy option", function()
        local c = client({ proxy = mock.base_url, base_url = "http://cozmox.invalid" })
        local s, err = c.session.get("demo")
        assert.is_nil(err)
        assert.equal("demo", s.id)
        -- cozmox.invalid cannot resolve: only the proxy can have answered.
        assert.equal("cozmox.invalid", mock.last_request().headers.host)
    end)

    it("honours the proxy environment variables", function()
        local out = run_lua([[
            local cozmox = require("cozmox")
            local s, err = cozmox.new({ base_url = "http://cozmox.invalid" }).session.get("demo")
            print(s and s.id, err)
        ]], "http_proxy=" .. mock.base_url .. " NO_PROXY= no_proxy=")
        assert.matches("^demo\tnil", out)
    end)
end)

describe("connections", function()
    it("two clients share the connection pool", function()
        local a = client()
        local b = client()
        assert(a.session.get("demo"))
        local first = mock.last_request()
        assert(b.session.get("demo"))
        local second = mock.last_request()
        assert.equal(first.connection, second.connection)
    end)

    it("five clients to five origins keep their five connections between calls", function()
        -- (the pool keeps 5 idle connections, as curl_easy_perform would)
        local h2 = os.getenv("COZMOX_TEST_H2_URL")
        local origins = { mock.base_url, (mock.base_url:gsub("127%.0%.0%.1", "localhost")), mock.https_url,
            (mock.https_url:gsub("127%.0%.0%.1", "localhost")), (assert(h2, "COZMOX_TEST_H2_URL")) }
        local clients, connects = {}, {}
        for i, url in ipairs(origins) do
            clients[i] = client({ base_url = url, ca_file = mock.ca_file,
                on_response = function(meta) connects[#connects + 1] = meta.timings.connect end })
        end
        for round = 1, 3 do
            connects = {}
            for i = 1, #origins do assert(clients[i].session.get("demo")) end
            if round > 1 then
                for i, t in ipairs(connects) do assert.equal(0, t, "client " .. i .. " connected again") end
            end
        end
    end)
end)

describe("observability", function()
    it("on_response receives status, headers, timings and the attempt", function()
        local seen = {}
        local c = client({ on_response = function(meta) seen[#seen + 1] = meta end })
        assert(c.session.get("demo"))
        local m = seen[1]
        assert.equal(200, m.status)
        assert.equal("application/json", m.headers["content-type"])
        assert.equal(1, m.attempt)
        assert.equal("GET", m.method)
        assert.equal("/session/demo", m.path)
        assert.equal("1.1", m.http_version)
        assert.equal("127.0.0.1", m.primary_ip)
        for _, k in ipairs({ "namelookup", "connect", "tls", "first_byte", "total" }) do
            assert.is_number(m.timings[k])
            assert.is_true(m.timings[k] >= 0)
        end
        assert.is_true(m.timings.total >= m.timings.first_byte)
        local key = mock.key("hook")
        c:request("GET", "/fault/503-once", { query = { key = key } })
        assert.equal(503, seen[2].status)
        assert.equal(1, seen[2].attempt)
        assert.equal(200, seen[3].status)
        assert.equal(2, seen[3].attempt)
    end)

    it("COZMOX_DEBUG=1 traces method, path, status, timings and attempts, never the token", function()
        local out = run_lua([[
            local cozmox = require("cozmox")
            cozmox.session.get("demo")
            cozmox.session.get("nope")
            local c = cozmox.new({ max_retry_wait = 0 })
            c:request("GET", "/fault/503-once", { query = { key = tostring(os.time()) .. "dbg" .. math.random(1e9) } })
        ]], "COZMOX_DEBUG=1")
        assert.matches("cozmox: GET /session/demo %-> HTTP 200 %([%d.]+ ms: dns [%d.]+, connect [%d.]+, "
            .. "tls [%d.]+, first byte [%d.]+%) attempt 1/3", out)
        assert.matches("cozmox: GET /session/nope %-> HTTP 404 ", out)
        assert.matches("GET /fault/503%-once%?key=%S+ %-> HTTP 503 .* attempt 1/3, retrying in 0%.00 s", out)
        assert.matches("attempt 2/3\n", out)
        assert.is_nil(out:find(mock.token, 1, true))
    end)
end)

describe("an injected transport function", function()
    local http = require("socket.http")
    local ltn12 = require("ltn12")

    -- What someone with their own HTTP client plugs in: luasocket here.
    local seen
    local function luasocket_transport(req)
        seen = req
        local chunks = {}
        local ok, status, headers = http.request({ url = req.url, method = req.method, headers = req.headers,
            source = req.body and ltn12.source.string(req.body), sink = ltn12.sink.table(chunks) })
        if not ok then return nil, status end
        local i = 0
        return status, headers, function() -- a chunk reader
            i = i + 1
            return chunks[i]
        end
    end

    it("carries the request and decodes the body with the C decoder", function()
        local c = cozmox.new({ token = mock.token, base_url = mock.base_url, transport = luasocket_transport })
        local s, err = c.session.get("demo")
        assert.is_nil(err)
        assert.equal("demo", s.id)
        assert.equal(cozmox.array_mt, getmetatable(s.messages))
        assert.equal("GET", seen.method)
        assert.equal(mock.base_url .. "/session/demo", seen.url)
        assert.equal("Bearer " .. mock.token, seen.headers.Authorization)
        assert.equal("application/json", seen.headers.Accept)
        assert.is_true(seen.timeout > 59 and seen.timeout <= 60, tostring(seen.timeout))
        assert.equal(10, seen.connect_timeout)
    end)

    it("maps errors, limits and retries the same way", function()
        local sleeps = {}
        local c = cozmox.new({ token = mock.token, base_url = mock.base_url, transport = luasocket_transport,
            sleep = function(s) sleeps[#sleeps + 1] = s end })
        local _, err = c.session.get("nope")
        assert.equal("http", err.kind)
        assert.equal(404, err.status)
        local key = mock.key("custom")
        assert.is_table(c:request("GET", "/fault/429", { query = { n = 1, key = key, retry_after = 2 } }))
        assert.same({ 2 }, sleeps)
        local small = cozmox.new({ token = mock.token, base_url = mock.base_url, transport = luasocket_transport,
            max_response_bytes = 100 })
        local _, err2 = small.session.get("demo")
        assert.equal("too_large", err2.kind)
        local _, err3 = c:request("GET", "/__file/JSONTestSuite/test_parsing/n_array_comma_and_number.json")
        assert.equal("decode", err3.kind)
        local broken = cozmox.new({ token = "x", base_url = mock.base_url, max_retries = 0,
            transport = function() return nil, "no route to host" end })
        local _, err4 = broken.session.get("demo")
        assert.equal("network", err4.kind)
        assert.matches("no route to host", err4.message)
    end)

    it("is chosen with transport = and validated", function()
        assert.has_error(function() cozmox.new({ transport = "carrier-pigeon" }) end)
        assert.has_error(function() cozmox.new({ transport = 42 }) end)
        local c = cozmox.new({ token = "x", transport = "nginx", base_url = mock.base_url })
        local _, err = c.session.get("demo")
        assert.equal("config", err.kind)
        assert.matches("the nginx transport cannot run here %(outside nginx%)", err.message)
    end)
end)
