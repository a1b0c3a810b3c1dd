-- cozmox inside nginx (lua-nginx-module, LuaJIT): both transports, the
-- phases, and a single worker serving concurrent requests without
-- blocking.  Starts a real nginx with one worker (spec/nginx/) in front
-- of the mock API.
local cozmox = require("cozmox")
local mock = require("support.mock")
local socket = require("socket")

local support = require("support.nginx")
local util = require("support.util")
local n

local function get(path, timeout)
    return support.get(n, path, timeout)
end

local function error_log()
    return support.error_log(n)
end

describe("inside nginx", function()
    setup(function() n = support.start() end)
    teardown(function() if n then support.stop(n) end end)

    for _, t in ipairs({ "nginx", "curl", "auto" }) do
        it("gets a session through the " .. t .. " transport", function()
            local status, v = get("/" .. t .. "/session/demo")
            assert.equal(200, status, type(v) == "table" and v.message or v)
            assert.equal("demo", v.id)
            assert.equal("active", v.status)
            assert.equal("claude-3-opus-20240229", v.model)
            assert.equal("content", v.phase)
        end)

        it("returns the API's errors through the " .. t .. " transport", function()
            local status, v = get("/" .. t .. "/session/nope")
            assert.equal(404, status)
            assert.equal("http", v.kind)
            assert.equal("cozmox: HTTP 404 Not Found: Session not found (GET /session/nope)", v.message)
        end)
    end

    it("sends the same request over cosockets as over curl", function()
        assert.equal(200, (get("/nginx/session/a%20b%2Fc")))
        local req = mock.last_request()
        assert.equal("/session/a%20b%2Fc", req.request_uri)
        assert.equal("Bearer " .. mock.token, req.headers.authorization)
        assert.equal("application/json", req.headers.accept)
        assert.matches("^cozmox%-lua/", req.headers["user-agent"])
    end)

    it("reuses the worker's connection across requests (cosocket pool)", function()
        get("/nginx/session/demo")
        local a = mock.last_request()
        get("/nginx/session/demo")
        local b = mock.last_request()
        assert.equal(a.connection, b.connection)
    end)

    it("verifies TLS over cosockets: an IP address is refused, every time as kind tls", function()
        -- lua-nginx-module checks host names only, not IP addresses: the
        -- mock's certificate (valid for 127.0.0.1 by IP SAN) is refused
        -- when asked for by IP, which shows verification is on.  It can
        -- report the refusal as a finished handshake on a connection it
        -- then closes; the transport still calls that kind "tls".
        for _ = 1, 20 do
            local status, v = get("/tls/session/demo")
            assert.equal(502, status)
            assert.is_nil(v.id)
            assert.equal("tls", v.kind, v.message)
        end
        assert.matches("lua ssl certificate does not match host", error_log(), 1, true)
        local status2, v2 = get("/tlsinsecure/session/demo")
        assert.equal(200, status2, type(v2) == "table" and v2.message or v2)
        assert.equal("demo", v2.id)
    end)

    -- Each test uses a name of its own: a pooled connection to a name
    -- needs no resolution.
    describe("name resolution", function()
        it("a name through nginx's resolver", function()
            local _, r = get("/dns/answer?host=mock.test")
            assert.equal("ok", r.id, r.message)
        end)

        it("a name that does not exist: network, code 6, not retried", function()
            local _, r = get("/dns/answer?host=nowhere.test&retries=2")
            assert.equal("network", r.kind, r.message)
            assert.equal(6, r.code)
            assert.equal(1, r.attempts)
            assert.is_true(r.elapsed < 1, "took " .. r.elapsed .. " s")
        end)

        it("a silent name server: timeout = 2 ends the call in under 3 s (resolver_timeout is 30 s)", function()
            local _, r = get("/dns/silent?host=silent-a.test&timeout=2&retries=2")
            assert.equal("timeout", r.kind, r.message)
            assert.is_true(r.elapsed >= 1.9 and r.elapsed < 3, "took " .. r.elapsed .. " s")
            io.stderr:write(string.format("[silent name server, timeout = 2: %.2f s] ", r.elapsed))
        end)

        it("a silent name server: connect_timeout = 0.5 bounds resolution + connect", function()
            local _, r = get("/dns/silent?host=silent-b.test&timeout=10&connect=0.5")
            assert.equal("timeout", r.kind, r.message)
            assert.is_true(r.elapsed >= 0.45 and r.elapsed < 1.5, "took " .. r.elapsed .. " s")
        end)

        it("no resolver: a config error that says to add one, at once", function()
            local _, r = get("/dns/none?host=unresolved.test&timeout=10")
            assert.equal("config", r.kind, r.message)
            assert.matches("add a 'resolver' line", r.message, 1, true)
            assert.is_true(r.elapsed < 0.5, "took " .. r.elapsed .. " s")
        end)

        it("localhost and IP addresses need no resolver", function()
            local _, r = get("/dns/none?host=localhost")
            assert.equal("ok", r.id, r.message)
            local _, r2 = get("/dns/none?host=127.0.0.1")
            assert.equal("ok", r2.id, r2.message)
        end)
    end)

    it("50 concurrent requests through one client each see only their own Retry-After and body", function()
        local _, out = get("/concurrent?n=50")
        assert.equal(50, #out)
        for i, r in ipairs(out) do
            assert(r.ok, "request " .. i .. ": " .. tostring(r.err))
            assert.same({ r.want }, r.waits)
        end
    end)

    it("close() from another light thread ends a wait for Retry-After at once, as kind closed", function()
        local _, r = get("/close-while-waiting")
        assert.is_nil(r.err)
        assert.is_false(r.data)
        assert.equal("closed", r.kind)
        assert(r.elapsed >= 0.29 and r.elapsed < 0.5, "the wait ended after " .. r.elapsed .. " s (Retry-After: 3)")
    end)

    it("works in init_worker/ngx.timer and access_by_lua", function()
        local _, timer = get("/timer")
        assert.equal("demo\n", timer)
        local _, access = get("/access")
        assert.equal("demo\n", access)
    end)

    it("refuses the nginx transport where cosockets are unavailable (set_by_lua)", function()
        local _, v = get("/init-phase")
        assert.equal("config\n", v)
    end)

    it("serves 20 concurrent requests on one worker in well under 1 s with cosockets", function()
        local c = cozmox.new({ token = "unused", base_url = n.url .. "/nginx/delay" })
        local ids = {}
        for i = 1, 20 do ids[i] = "s" .. i end
        local t0 = socket.gettime()
        local results, errors = c.session.get_many(ids, { concurrency = 20 })
        local dt = socket.gettime() - t0
        for i = 1, 20 do
            assert(results[i], tostring(errors[i]))
            assert.equal("s" .. i, results[i].id)
        end
        io.stderr:write(string.format("[nginx transport: 20 x 200 ms in %.2f s] ", dt))
        assert.is_true(dt < 0.8, "took " .. dt .. " s")
    end)

    it("blocks the worker with curl: the same 20 requests take about 4 s", function()
        local c = cozmox.new({ token = "unused", base_url = n.url .. "/curl/delay" })
        local ids = {}
        for i = 1, 20 do ids[i] = "s" .. i end
        local t0 = socket.gettime()
        local results = c.session.get_many(ids, { concurrency = 20 })
        local dt = socket.gettime() - t0
        for i = 1, 20 do assert.is_table(results[i]) end
        io.stderr:write(string.format("[curl transport: 20 x 200 ms in %.2f s] ", dt))
        assert.is_true(dt >= 3.5, "took " .. dt .. " s")
    end)

    it("logged no Lua errors", function()
        local log = error_log():gsub("[^\n]*lua ssl certificate does not match host[^\n]*\n?", "")
            :gsub("[^\n]*request: \"GET /tls/session/demo[^\n]*\n?", "")
        assert.is_nil(log:find("[error]", 1, true), log)
        assert.is_nil(log:find("[alert]", 1, true), log)
    end)
end)

describe("the README's nginx.conf", function()
    it("serves a session as written, with only the name server, port and install prefix filled in", function()
        local readme = util.read(support.root .. "/README.md")
        local conf = assert(readme:match("```nginx\n(.-)```"), "no nginx block in the README")
        local tree = util.tmpdir()
        local out, ok = util.run("make -s -C " .. util.quote(support.root) .. " install LUA=luajit PREFIX="
            .. util.quote(tree))
        assert(ok, out)
        util.run("chmod -R a+rX " .. util.quote(tree)) -- nginx's workers run as nobody
        local dns_port = util.free_port()
        local dns = util.spawn("dns.lua", dns_port, "answer", "mock.test=127.0.0.1")
        local port = util.free_port()
        local n_resolver, n_listen, n_prefix
        conf, n_resolver = conf:gsub("resolver 192%.0%.2%.53 ", "resolver 127.0.0.1:" .. dns_port .. " ")
        conf, n_listen = conf:gsub("listen 8080;", "listen 127.0.0.1:" .. port .. ";")
        conf, n_prefix = conf:gsub("/usr/local/", tree .. "/")
        assert.same({ 1, 1, 3 }, { n_resolver, n_listen, n_prefix })
        local f = assert(io.open(tree .. "/nginx.conf", "w"))
        f:write(conf)
        f:close()
        -- the mock by a name, so the resolver line is what finds it
        local base = mock.base_url:gsub("//127%.0%.0%.1:", "//mock.test:")
        local pid = tonumber((util.run(string.format(
            "COZMOX_TOKEN=%s COZMOX_BASE_URL=%s nginx -p %s -c %s/nginx.conf -e %s/error.log "
            .. "-g 'pid %s/nginx.pid; daemon off;' >%s/stdout.log 2>&1 & echo $!",
            util.quote(mock.token), util.quote(base), util.quote(tree), tree, tree, tree, tree))):match("%d+"))
        local served
        for _ = 1, 100 do
            local c = socket.tcp()
            c:settimeout(0.1)
            served = c:connect("127.0.0.1", port)
            c:close()
            if served then break end
            socket.sleep(0.05)
        end
        local http = require("socket.http")
        local body, status = http.request("http://127.0.0.1:" .. port .. "/session/demo")
        local body404, status404 = http.request("http://127.0.0.1:" .. port .. "/session/nope")
        local log = util.read(tree .. "/error.log")
        util.kill(pid)
        util.kill(dns)
        util.run("rm -rf " .. util.quote(tree))
        assert(served, "nginx did not start: " .. log)
        local s = assert(cozmox.new({ token = mock.token }).session.get("demo"))
        assert.equal(200, status, log)
        assert.equal("demo active " .. #s.messages .. " messages\n", body)
        assert.equal(404, status404)
        assert.equal("cozmox: HTTP 404 Not Found: Session not found (GET /session/nope)\n", body404)
        assert.is_nil(log:find("[error]", 1, true), log)
    end)
end)
