-- cozmox.transport.haproxy and cozmox.loop.haproxy against a fake of
-- HAProxy's `core` (what the httpclient answers is scripted), so that every
-- rule -- the request it builds, the answers HAProxy writes itself, the
-- deadline, the refusals -- is pinned on every Lua here; spec/haproxy_spec.lua
-- runs the same code inside the real HAProxy.
local cozmox = require("cozmox")
local transport = require("cozmox.transport.haproxy")
local options = require("cozmox.options")
local util = require("support.util")
local socket = require("socket")
local now = require("cozmox.core").now

-- A fake HAProxy core.  answer(method, args) is what the httpclient
-- answers (a response table; it may raise).  A task runs `rounds`
-- scheduler rounds (msleep calls) after it was registered, or never
-- when rounds is "never" (no coroutine: Lua 5.1 cannot yield across the
-- transport's pcall, which HAProxy's Lua 5.3 can).
local function fake(answer, rounds)
    local hap = { pending = {}, calls = {}, slept = {}, max_in_flight = 0, services = {}, actions = {},
        fetches = {} }
    function hap.get_info() return { Version = "2.6.12-1+deb12u4" } end
    function hap.register_service(name, _, fn) hap.services[name] = fn end
    function hap.register_action(name, _, fn) hap.actions[name] = fn end
    function hap.register_fetches(name, fn) hap.fetches[name] = fn end
    hap.clis = {}
    function hap.register_cli(path, _, fn) hap.clis[table.concat(path, " ")] = fn end
    function hap.register_task(fn)
        hap.pending[#hap.pending + 1] = { fn = fn, rounds = rounds or 0 }
        hap.max_in_flight = math.max(hap.max_in_flight, #hap.pending)
    end
    local function client_method(method)
        return function(_, args)
            hap.calls[#hap.calls + 1] = { method = method, args = args }
            return answer(method, args)
        end
    end
    function hap.httpclient()
        local hc = {}
        for _, m in ipairs({ "get", "head", "put", "post", "delete" }) do hc[m] = client_method(m) end
        return hc
    end
    -- One scheduler round: the tasks whose turn it is run.
    function hap.msleep(ms)
        hap.slept[#hap.slept + 1] = ms
        local left = {}
        for _, task in ipairs(hap.pending) do
            if task.rounds == 0 then
                task.fn()
            else
                if task.rounds ~= "never" then task.rounds = task.rounds - 1 end
                left[#left + 1] = task
            end
        end
        hap.pending = left
        socket.sleep(ms / 1000)
    end
    return hap
end

local function settings(extra)
    local opts = { token = "tok", base_url = "http://127.0.0.1:9" }
    for k, v in pairs(extra or {}) do opts[k] = v end
    local s = options.resolve(opts)
    s.ua_product, s.ua_runtime = "cozmox-lua/test", "Lua"
    return s
end

local function secret() return { auth = "Authorization: Bearer tok" } end

local function request(extra)
    local req = { method = "GET", url = "http://127.0.0.1:9/session/x", timeout = 5, deadline = now() + 5,
        connect_timeout = 5 }
    for k, v in pairs(extra or {}) do req[k] = v end
    return req
end

-- Run fn in a coroutine of its own, as HAProxy runs a service, an action,
-- a task, a sample fetch or a converter; its first two results.
local function resumed(fn)
    local co = coroutine.create(fn)
    local ok, a, b = coroutine.resume(co)
    assert(ok, a)
    assert.equal("dead", coroutine.status(co))
    return a, b
end

-- Register f as a service of hap (after the transport or the adapter was
-- made, which wraps core.register_service) and run it as HAProxy would.
local function in_service(hap, f)
    hap.register_service("spec", "http", f)
    return resumed(hap.services.spec)
end

local function perform(hap, req, s, want_meta)
    local t = transport.new(s or settings(), secret(), hap)
    return in_service(hap, function() return t:perform(req or request(), want_meta) end)
end

local SESSION = '{"id":"x","messages":[]}'

local function ok_answer(body, headers)
    return function()
        return { status = 200, reason = "OK", body = body or SESSION,
            headers = headers or { date = { [0] = "Tue, 01 Dec 2026 09:00:00 GMT" },
                ["content-type"] = { [0] = "application/json" } } }
    end
end

-- HAProxy 2.6's own pages (what its httpclient hands back without a server's answer).
local function page(status, title, text)
    local body = "<html><body><h1>" .. status .. " " .. title .. "</h1>\n" .. text .. "\n</body></html>\n"
    return function()
        return { status = status, reason = title, body = body, headers = { ["content-type"] = { [0] = "text/html" },
            ["cache-control"] = { [0] = "no-cache" }, ["content-length"] = { [0] = tostring(#body) } } }
    end
end

describe("cozmox.transport.haproxy (a fake HAProxy core)", function()
    it("sends what the other transports send, through the httpclient method of that name", function()
        local hap = fake(ok_answer())
        local rec = perform(hap, request({ method = "POST", body = '{"a":1}', headers = { "X-Extra: 1" } }))
        assert.equal(200, rec.status)
        local call = hap.calls[1]
        assert.equal("post", call.method)
        assert.equal("http://127.0.0.1:9/session/x", call.args.url)
        assert.equal('{"a":1}', call.args.body)
        assert.same({
            accept = { "application/json" }, ["user-agent"] = { "cozmox-lua/test HAProxy/2.6.12 Lua" },
            ["accept-encoding"] = { "gzip, deflate" }, authorization = { "Bearer tok" },
            ["content-type"] = { "application/json" }, ["content-length"] = { "7" }, ["x-extra"] = { "1" },
        }, call.args.headers)
        -- HAProxy's server timeout outlasts the deadline (ours bounds the
        -- call); HAProxy resends after it, so for a POST it is long
        assert.is_true(call.args.timeout >= 300000)
        assert.equal(math.floor(call.args.timeout), call.args.timeout)
        perform(hap, request())
        local t = hap.calls[2].args.timeout
        assert.is_true(t > 5000 and t <= 6001, tostring(t))
    end)

    it("leaves Authorization out for a redirect to another origin, sends Content-Length: 0 without a body", function()
        local hap = fake(ok_answer())
        perform(hap, request({ method = "DELETE", no_auth = true }))
        assert.equal("delete", hap.calls[1].method)
        assert.is_nil(hap.calls[1].args.headers.authorization)
        assert.same({ "0" }, hap.calls[1].args.headers["content-length"])
        assert.is_nil(hap.calls[1].args.body)
    end)

    it("fills the result record: status, value, lower-case headers (repeats joined), bytes, meta", function()
        local hap = fake(ok_answer(SESSION, { date = { [0] = "d" }, ["X-Two"] = { [0] = "a", [1] = "b" },
            ["content-length"] = { [0] = tostring(#SESSION) } }))
        local rec = perform(hap, request(), nil, true)
        assert.same({ id = "x", messages = setmetatable({}, cozmox.array_mt) }, rec.value)
        assert.equal("a, b", rec.headers["x-two"])
        assert.equal(#SESSION, rec.bytes)
        assert.is_nil(rec.kind)
        assert.is_true(rec.started)
        assert.equal(200, rec.meta.status)
        assert.equal("127.0.0.1", rec.meta.primary_ip)
        assert.is_true(rec.meta.timings.total >= 0)
    end)

    it("undoes gzip in the response sink and keeps max_response_bytes there", function()
        local gz = util.run("printf '%s' '" .. SESSION .. "' | gzip -c")
        local headers = { date = { [0] = "d" }, ["content-encoding"] = { [0] = "gzip" } }
        local rec = perform(fake(ok_answer(gz, headers)))
        assert.equal("x", rec.value.id)
        local big = util.run("head -c 100000 /dev/zero | tr '\\0' ' ' | gzip -c")
        rec = perform(fake(ok_answer(big, headers)), nil, settings({ max_response_bytes = 1000 }))
        assert.equal("too_large", rec.kind)
    end)

    it("turns HAProxy's own answers into the failures curl would report", function()
        local rec = perform(fake(page(503, "Service Unavailable", "No server is available to handle this request.")))
        assert.same({ "network", 7, false }, { rec.kind, rec.code, rec.started })
        assert.equal("HAProxy's httpclient: could not connect to 127.0.0.1:9 (connection refused or unreachable; "
            .. "HAProxy's log line for <HTTPCLIENT> says which)", rec.message)
        rec = perform(fake(page(503, "Service Unavailable", "No server is available to handle this request.")),
            request({ url = "https://[::1]:8443/session/x" }))
        assert.matches("could not connect to [::1]:8443 (connection refused or unreachable, or a TLS handshake "
            .. "that failed: a certificate not trusted by httpclient.ssl.ca-file or not matching ::1;",
            rec.message, 1, true)
        rec = perform(fake(page(502, "Bad Gateway", "The server returned an invalid or incomplete response.")))
        assert.same({ "network", 8 }, { rec.kind, rec.code })
        rec = perform(fake(page(504, "Gateway Time-out", "The server didn't respond in time.")))
        assert.same({ "timeout", 28 }, { rec.kind, rec.code })
        rec = perform(fake(function()
            return { status = 503, reason = "Service Unavailable", body = "",
                headers = { ["content-length"] = { [0] = "0" } } }
        end), request({ url = "http://api.example.invalid/session/x" }))
        assert.same({ "network", 6 }, { rec.kind, rec.code })
        assert.matches("could not resolve api.example.invalid", rec.message, 1, true)
    end)

    it("names the host in a message as the URL spells it (a scrubber finds a secret there as written)", function()
        local empty503 = function()
            return { status = 503, reason = "Service Unavailable", body = "",
                headers = { ["content-length"] = { [0] = "0" } } }
        end
        local rec = perform(fake(empty503), request({ url = "http://SeCrEtToKeN123.invalid/x" }))
        assert.same({ "network", 6 }, { rec.kind, rec.code })
        assert.matches("^could not resolve SeCrEtToKeN123%.invalid ", rec.message)
        assert.is_nil(rec.message:find("secrettoken123", 1, true))
        rec = perform(fake(page(503, "Service Unavailable", "No server is available to handle this request.")),
            request({ url = "HTTPS://Api.Example.COM:8443/x" }))
        assert.matches("could not connect to Api.Example.COM:8443 (", rec.message, 1, true)
        assert.matches("or not matching Api.Example.COM;", rec.message, 1, true)
        assert.is_nil(rec.message:find("api.example.com", 1, true))
    end)

    it("takes an empty 503 from an IP address for the server's own (HAProxy resolves nothing there)", function()
        for _, url in ipairs({ "http://127.0.0.1:9/session/x", "http://[::1]:9/session/x" }) do
            local rec = perform(fake(function()
                return { status = 503, reason = "Service Unavailable", body = "",
                    headers = { ["content-length"] = { [0] = "0" } } }
            end), request({ url = url }))
            assert.same({ 503, true }, { rec.status, rec.started })
            assert.is_nil(rec.kind)
        end
    end)

    it("gives kind \"memory\" when Lua runs out of memory reading the answer, never raises it", function()
        local hap = fake(function()
            -- what an allocation failing under tune.lua.maxmem raises
            return setmetatable({}, { __index = function() error("not enough memory", 0) end })
        end)
        local t = transport.new(settings(), secret(), hap)
        local ok, rec = in_service(hap, function() return pcall(t.perform, t, request()) end)
        assert.is_true(ok, tostring(rec))
        assert.same({ "memory", 27 }, { rec.kind, rec.code })
        assert.equal("Lua ran out of memory (HAProxy's tune.lua.maxmem)", rec.message)
        -- other errors are bugs: raised
        hap = fake(function() return setmetatable({}, { __index = function() error("bug", 0) end }) end)
        t = transport.new(settings(), secret(), hap)
        local ok2, err = in_service(hap, function() return pcall(t.perform, t, request()) end)
        assert.same({ false, "bug" }, { ok2, err })
    end)

    it("leaves a server's own 502/503 alone (it carries a Date header)", function()
        local rec = perform(fake(function()
            return { status = 503, body = '{"message":"busy"}', headers = { date = { [0] = "d" } } }
        end))
        assert.equal(503, rec.status)
        assert.is_nil(rec.kind)
        assert.equal("busy", rec.value.message)
    end)

    it("reports a body shorter than its Content-Length; HEAD and 204 have none", function()
        local rec = perform(fake(ok_answer('{"id":', { date = { [0] = "d" }, ["content-length"] = { [0] = "100" } })))
        assert.same({ "network", 18, true }, { rec.kind, rec.code, rec.started })
        assert.equal("body shorter than its Content-Length (6 of 100 bytes)", rec.message)
        rec = perform(fake(ok_answer("", { date = { [0] = "d" }, ["content-length"] = { [0] = "100" } })),
            request({ method = "HEAD" }))
        assert.same({ 200, 0 }, { rec.status, rec.bytes })
        assert.is_nil(rec.kind)
        rec = perform(fake(function()
            return { status = 204, body = "", headers = { date = { [0] = "d" }, ["content-length"] = { [0] = "5" } } }
        end))
        assert.same({ 204, 0 }, { rec.status, rec.bytes })
        assert.is_nil(rec.kind)
    end)

    it("ends a request at its deadline whatever the httpclient does", function()
        local hap = fake(ok_answer(), "never")
        local t0 = now()
        local rec = perform(hap, request({ deadline = now() + 0.2, timeout = 0.2 }))
        local dt = now() - t0
        assert.same({ "timeout", 28, false }, { rec.kind, rec.code, rec.started })
        assert.is_true(dt >= 0.2 and dt < 0.6, tostring(dt))
        -- polled with msleep: 1 ms first, doubling to 10 ms
        assert.same({ 1, 2, 4, 8, 10 }, { hap.slept[1], hap.slept[2], hap.slept[3], hap.slept[4], hap.slept[5] })
    end)

    it("turns an error raised by the httpclient into a failure record", function()
        local rec = perform(fake(function() error("not enough memory", 0) end))
        assert.same({ "memory", 27 }, { rec.kind, rec.code })
        rec = perform(fake(function() error("httpclient: cannot start", 0) end))
        assert.same({ "network", 7 }, { rec.kind, rec.code })
        assert.equal("HAProxy's httpclient failed: httpclient: cannot start", rec.message)
    end)

    it("refuses what HAProxy 2.6's httpclient cannot do, as config failures", function()
        local hap = fake(ok_answer())
        local rec = perform(hap, request({ method = "PATCH" }))
        assert.same({ "config", 4 }, { rec.kind, rec.code })
        assert.equal("HAProxy's httpclient cannot send PATCH requests (it has GET, HEAD, PUT, POST and DELETE)",
            rec.message)
        for name, value in pairs({ ca_file = "/x.pem", ca_path = "/x", insecure = true, proxy = "http://p:1" }) do
            rec = perform(hap, request(), settings({ [name] = value }))
            assert.equal("config", rec.kind)
            assert.matches("^option '" .. name .. "' cannot be applied per client inside HAProxy; set it in "
                .. "haproxy.cfg's global section instead", rec.message)
        end
        assert.equal(0, #hap.calls)
    end)

    local CANNOT_WAIT = "cannot wait here: inside HAProxy the client works only in services, actions, tasks "
        .. "and CLI commands registered (core.register_service, core.register_action, core.register_task, "
        .. "core.register_cli) after require(\"cozmox\") -- not while a file is loaded, in a sample fetch or "
        .. "a converter, or in a coroutine of your own (HAProxy cannot resume it)"

    -- A refused call started nothing: no job task, no request.
    local function nothing_started(hap)
        assert.same({ 0, 0 }, { #hap.pending, #hap.calls })
    end

    it("says where it cannot wait: outside a coroutine, as when HAProxy loads a file", function()
        local hap = fake(ok_answer())
        local t = transport.new(settings(), secret(), hap)
        local rec = t:perform(request())
        assert.same({ "config", 4, CANNOT_WAIT }, { rec.kind, rec.code, rec.message })
        nothing_started(hap)
    end)

    it("refuses to wait in a coroutine of the caller's own inside a service, before starting a job", function()
        -- HAProxy cannot resume it: msleep does not yield there, and
        -- register_task + msleep crash HAProxy 2.6
        local hap = fake(ok_answer())
        local t = transport.new(settings(), secret(), hap)
        local rec = in_service(hap, function()
            return resumed(function() return t:perform(request()) end)
        end)
        assert.same({ "config", CANNOT_WAIT }, { rec.kind, rec.message })
        nothing_started(hap)
        -- the same from a task and from an action
        hap.register_task(function()
            rec = resumed(function() return t:perform(request()) end)
        end)
        hap.msleep(0)
        assert.equal(CANNOT_WAIT, rec.message)
        hap.register_action("a", { "http-req" }, function()
            return resumed(function() return t:perform_many({ request(), request() }, 2, false) end)
        end)
        local recs = resumed(hap.actions.a)
        assert.same({ "config", "config" }, { recs[1].kind, recs[2].kind })
        nothing_started(hap)
    end)

    it("refuses to wait in a sample fetch or a converter (HAProxy refuses their yield), before starting a job",
    function()
        local hap = fake(ok_answer())
        local t = transport.new(settings(), secret(), hap)
        hap.register_fetches("cz", function() return t:perform(request()) end)
        local rec = resumed(hap.fetches.cz) -- a coroutine of HAProxy's, yieldable, but not allowed to yield
        assert.same({ "config", CANNOT_WAIT }, { rec.kind, rec.message })
        nothing_started(hap)
    end)

    it("refuses to wait in a function registered before cozmox was required (or the transport made)", function()
        local hap = fake(ok_answer())
        local early
        hap.register_service("early", "http", function() return early:perform(request()) end)
        early = transport.new(settings(), secret(), hap)
        local rec = resumed(hap.services.early)
        assert.equal(CANNOT_WAIT, rec.message)
        nothing_started(hap)
    end)

    it("is made ready by require('cozmox'): a service registered before the adapter, with a lazy client, "
        .. "and a CLI command may wait", function()
        local hap = fake(ok_answer())
        local saved = package.loaded["cozmox"]
        rawset(_G, "core", hap)
        package.loaded["cozmox"] = nil
        local ok, err = pcall(function()
            local cz = require("cozmox")
            local client
            local function get()
                client = client or cz.new({ loop = cz.loop.haproxy(), token = "tok", base_url = "http://127.0.0.1:9" })
                return client.session.get("x")
            end
            hap.register_service("lazy", "http", get)
            hap.register_cli({ "cozmox", "get" }, "a session", get)
            for _, fn in ipairs({ hap.services.lazy, hap.clis["cozmox get"] }) do
                local s, e = resumed(fn)
                assert(s, tostring(e))
                assert.equal("x", s.id)
            end
        end)
        rawset(_G, "core", nil)
        package.loaded["cozmox"] = saved
        assert(ok, err)
    end)

    it("waits in a pcall inside a service but not where Lua cannot yield (a table.sort comparator)", function()
        local hap = fake(ok_answer())
        local t = transport.new(settings(), secret(), hap)
        local ok, rec = in_service(hap, function() return pcall(t.perform, t, request()) end)
        assert.is_true(ok)
        assert.equal(200, rec.status)
        if coroutine.isyieldable then -- Lua 5.3+ (what HAProxy embeds)
            rec = in_service(hap, function()
                local r
                table.sort({ 2, 1 }, function(a, b)
                    r = r or t:perform(request())
                    return a < b
                end)
                return r
            end)
            assert.equal(CANNOT_WAIT, rec.message)
        end
    end)

    it("hands the wrapped functions their arguments and HAProxy their results", function()
        local hap = fake(ok_answer())
        transport.new(settings(), secret(), hap)
        transport.new(settings(), secret(), hap) -- wraps once
        local seen
        hap.register_action("a", { "http-req" }, function(txn, x) seen = { txn, x } return "r1", nil, "r3" end)
        local function pack(...) return { n = select("#", ...), ... } end
        assert.same({ n = 3, "r1", nil, "r3" }, pack(hap.actions.a("txn", "arg")))
        assert.same({ "txn", "arg" }, seen)
    end)

    it("runs perform_many with at most `concurrency` requests in flight", function()
        local hap = fake(function(_, args)
            return { status = 200, body = '{"url":"' .. args.url .. '"}', headers = { date = { [0] = "d" } } }
        end, 3)
        local t = transport.new(settings(), secret(), hap)
        local reqs = {}
        for i = 1, 7 do reqs[i] = request({ url = "http://127.0.0.1:9/session/" .. i }) end
        local recs = in_service(hap, function() return t:perform_many(reqs, 3, false) end)
        for i = 1, 7 do assert.equal("http://127.0.0.1:9/session/" .. i, recs[i].value.url) end
        assert.equal(3, hap.max_in_flight)
        assert.equal(7, #hap.calls)
    end)

    it("once closed, ends the calls waiting (kind \"closed\") and starts nothing more", function()
        local hap = fake(ok_answer(), 5)
        local t = transport.new(settings(), secret(), hap)
        local msleep = hap.msleep
        hap.msleep = function(ms)
            t:close() -- as client:close() from another coroutine
            return msleep(ms)
        end
        local recs = in_service(hap, function() return t:perform_many({ request(), request() }, 1, false) end)
        assert.same({ "closed", "closed" }, { recs[1].kind, recs[2].kind })
        assert.equal(1, hap.max_in_flight) -- the second never started
        local rec = in_service(hap, function() return t:perform(request()) end)
        assert.equal("closed", rec.kind)
        assert.equal(1, hap.max_in_flight)
    end)

    it("does not start a request of perform_many whose deadline has passed", function()
        local hap = fake(ok_answer(), 30)
        local t = transport.new(settings(), secret(), hap)
        local reqs = { request({ deadline = now() + 0.05 }), request({ deadline = now() + 0.05 }) }
        local recs = in_service(hap, function() return t:perform_many(reqs, 1, false) end)
        assert.same({ "timeout", "timeout" }, { recs[1].kind, recs[2].kind })
        assert.equal("the timeout was reached before the request could start", recs[2].message)
        assert.equal(1, hap.max_in_flight)
        assert.equal(0, #hap.calls) -- the first never ran (30 rounds), the second never started
    end)
end)

describe("cozmox.loop.haproxy", function()
    local saved = rawget(_G, "core")
    after_each(function() rawset(_G, "core", saved) end)

    it("raises outside HAProxy", function()
        rawset(_G, "core", nil)
        assert.has_error(function() cozmox.loop.haproxy() end, "cozmox.loop.haproxy: not running inside HAProxy "
            .. "2.6 or later (its core.httpclient, core.register_task and core.msleep are needed)")
    end)

    it("is an adapter whose transport and sleep the client uses", function()
        local busy = 0
        local hap = fake(function()
            busy = busy + 1
            if busy <= 2 then
                return { status = 503, body = '{"message":"busy"}', headers = { date = { [0] = "d" },
                    ["retry-after"] = { [0] = "1" } } }
            end
            return { status = 200, body = SESSION, headers = { date = { [0] = "d" } } }
        end)
        rawset(_G, "core", hap)
        local adapter = cozmox.loop.haproxy()
        assert.equal("haproxy", adapter.name)
        local c = cozmox.new({ loop = adapter, token = "tok", base_url = "http://127.0.0.1:9", max_retries = 2,
            max_retry_wait = 0.25 })
        local s, err = in_service(hap, function() return c.session.get("busy") end)
        assert(s, tostring(err))
        assert.equal("x", s.id)
        assert.equal(3, #hap.calls)
        -- the waits between attempts were core.msleep calls: Retry-After
        -- (1 s) capped by max_retry_wait, in slices of at most 50 ms (so
        -- close() ends them), beside the transport's polls (<= 10 ms)
        local waited = 0
        for _, ms in ipairs(hap.slept) do
            assert(ms <= 50, "a sleep of " .. ms .. " ms")
            if ms > 10 then waited = waited + ms end
        end
        assert(waited >= 420 and waited <= 510, "slept " .. waited .. " ms in all, for 2 waits of 250 ms")
        c:close()
        c:close()
    end)

    it("does not lower-case a secret in a host name: the client's scrubber finds it", function()
        local hap = fake(function(_, args)
            if args.url:find("^http://127") then
                return { status = 302, body = "", headers = { date = { [0] = "d" },
                    location = { [0] = "http://SeCrEtToKeN123.invalid/x" } } }
            end
            return { status = 503, reason = "Service Unavailable", body = "",
                headers = { ["content-length"] = { [0] = "0" } } }
        end)
        rawset(_G, "core", hap)
        local c = cozmox.new({ loop = cozmox.loop.haproxy(), token = "SeCrEtToKeN123", base_url = "http://127.0.0.1:9",
            follow_redirects = true, max_retries = 0 })
        local s, err = in_service(hap, function() return c.session.get("x") end)
        assert.is_nil(s)
        assert.same({ "network", 6 }, { err.kind, err.curl_code })
        assert.matches("could not resolve", err.message, 1, true)
        for _, text in ipairs({ err.message, tostring(err) }) do
            assert.is_nil(text:lower():find("secrettoken123", 1, true), text)
        end
        assert.equal("http://SeCrEtToKeN123.invalid/x", hap.calls[2].args.url)
    end)

    it("wraps core's register functions when made: what is registered after may wait, nothing else", function()
        local hap = fake(ok_answer())
        rawset(_G, "core", hap)
        local before = hap.register_service
        local c = cozmox.new({ loop = cozmox.loop.haproxy(), token = "tok", base_url = "http://127.0.0.1:9" })
        assert.are_not.equal(before, hap.register_service)
        local s = in_service(hap, function() return c.session.get("x") end)
        assert.equal("x", s.id)
        local _, err = in_service(hap, function()
            return resumed(function() return c.session.get("x") end)
        end)
        assert.equal("config", err.kind)
        assert.matches("^cannot wait here", err.message)
        assert.equal(1, #hap.calls)
    end)

    it("is what the loop option takes; other tables are refused", function()
        assert.has_error(function() cozmox.new({ loop = {} }) end, "bad argument #1 to 'new' (option 'loop' must be "
            .. "a loop adapter (a table with a function 'wait' or 'transport', e.g. cozmox.loop.haproxy()))")
        assert.has_error(function() cozmox.new({ loop = "haproxy" }) end,
            "bad argument #1 to 'new' (option 'loop' must be a table, got string)")
    end)
end)
