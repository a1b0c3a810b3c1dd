-- cozmox inside HAProxy (Debian 12's haproxy 2.6, Lua 5.3) through the
-- cozmox.loop.haproxy() adapter: a service, an action and a task share one
-- client (spec/haproxy/service.lua); one thread serves concurrent requests
-- without blocking; errors come back as error objects; TLS is verified;
-- also with lua-load-per-thread and 4 threads, and examples/haproxy.
-- Tagged #hosts: `make test-hosts` runs it (it installs haproxy).
local mock = require("support.mock")
local util = require("support.util")
local socket = require("socket")
local cjson = require("cjson")
local transcript = require("support.transcript")

local root = util.spec_dir:gsub("/spec$", "")
if root == "spec" then root = "." end
if not root:match("^/") then root = os.getenv("PWD") .. "/" .. root end

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function escape(s)
    return (s:gsub("[^%w._~-]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- ------------------------------------------------------------ servers

local pki -- a temp dir: the spec's CA, certificates, the CA bundle

local function make_pki()
    if pki then return pki end
    local out, ok = util.run("command -v haproxy && haproxy -v")
    assert(ok, "haproxy is not installed: `make test-hosts` installs it (scripts/deps.sh with DEPS_EXTRA)\n" .. out)
    out, ok = util.run("make -s --no-print-directory -C " .. q(root) .. " LUA_VERSION=5.3")
    assert(ok, "building the C core for HAProxy's Lua 5.3 failed (needs liblua5.3-dev):\n" .. out)
    pki = os.tmpname()
    os.remove(pki)
    local ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    local cmds = {
        "mkdir -p " .. q(pki),
        "cd " .. q(pki),
        -- the spec's CA, trusted by the httpclient (in the bundle)
        "openssl req -x509 " .. ec .. " -keyout ca.key -out ca.pem -days 2 -subj '/CN=cozmox haproxy spec CA'"
            .. " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign",
        -- signed by it: one for 127.0.0.1, one for another name
        "openssl req -new " .. ec .. " -keyout right.key -out right.csr -subj /CN=127.0.0.1",
        "echo subjectAltName=IP:127.0.0.1 > right.ext",
        "openssl x509 -req -in right.csr -CA ca.pem -CAkey ca.key -set_serial 1 -days 2 -extfile right.ext"
            .. " -out right.crt",
        "cat right.crt right.key > rightname.pem",
        "openssl req -new " .. ec .. " -keyout wrong.key -out wrong.csr -subj /CN=wrong.example",
        "echo subjectAltName=DNS:wrong.example > wrong.ext",
        "openssl x509 -req -in wrong.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 2 -extfile wrong.ext"
            .. " -out wrong.crt",
        "cat wrong.crt wrong.key > wrongname.pem",
        -- self-signed, for 127.0.0.1, trusted by nobody
        "openssl req -x509 " .. ec .. " -keyout untrusted.key -out untrusted.crt -days 2 -subj /CN=127.0.0.1"
            .. " -addext subjectAltName=IP:127.0.0.1",
        "cat untrusted.crt untrusted.key > untrusted.pem",
        "cat " .. q(mock.ca_file) .. " ca.pem > ca-bundle.pem",
    }
    out, ok = util.run("(" .. table.concat(cmds, " && ") .. ")")
    assert(ok, "making the spec's certificates failed:\n" .. out)
    return pki
end

local function alive(pid)
    return util.run("kill -0 " .. pid .. " 2>/dev/null && echo alive") == "alive\n"
end

local function wait_port(port, pid)
    for _ = 1, 100 do
        local c = socket.tcp()
        c:settimeout(0.2)
        local up = c:connect("127.0.0.1", port)
        c:close()
        if up then return true end
        if not alive(pid) then return false end
        socket.sleep(0.05)
    end
    return false
end

-- Start HAProxy on a config template; vars fill its @NAME@s (PORT and
-- PREFIX are added).  Returns { port, pid, prefix, vars, url, log(), stop() }.
local function start(template, vars, extra_args)
    for _ = 1, 5 do
        local prefix = os.tmpname()
        os.remove(prefix)
        assert(util.run("mkdir -p " .. q(prefix)))
        local v = { PREFIX = prefix, ROOT = root, PORT = tostring(util.free_port()) }
        for k, x in pairs(vars or {}) do v[k] = x end
        local conf = util.read(template):gsub("@([%w_]+)@", function(k)
            return assert(v[k], "no value for @" .. k .. "@")
        end)
        local f = assert(io.open(prefix .. "/haproxy.cfg", "w"))
        f:write(conf)
        f:close()
        local pid = tonumber((util.run(("haproxy %s -f %s -db </dev/null >%s 2>&1 & echo $!"):format(
            extra_args or "", q(prefix .. "/haproxy.cfg"), q(prefix .. "/haproxy.log")))))
        local server = { port = tonumber(v.PORT), pid = pid, prefix = prefix, vars = v,
            url = "http://127.0.0.1:" .. v.PORT }
        function server.log() return util.read(prefix .. "/haproxy.log") end
        function server.stop()
            util.run("kill " .. pid .. "; for i in $(seq 50); do kill -0 " .. pid
                .. " 2>/dev/null || break; sleep 0.1; done; kill -9 " .. pid .. " 2>/dev/null")
            util.run("rm -rf " .. q(prefix))
        end
        if wait_port(server.port, pid) then return server end
        local log = server.log()
        server.stop()
        assert(log:find("cannot bind", 1, true) or log:find("Address already in use", 1, true),
            "haproxy did not start:\n" .. log)
    end
    error("haproxy did not start: no free port")
end

-- Start HAProxy with spec/haproxy/ (threads, "lua-load" or
-- "lua-load-per-thread", extra command-line arguments).
local function start_spec_haproxy(threads, load, extra_args)
    local dir = make_pki()
    return start(root .. "/spec/haproxy/haproxy.cfg.in", { THREADS = tostring(threads), LOAD = load, PKI = dir,
        UNTRUSTED_PORT = tostring(util.free_port()), RIGHTNAME_PORT = tostring(util.free_port()),
        WRONGNAME_PORT = tostring(util.free_port()), EMPTY503_PORT = tostring(util.free_port()) }, extra_args)
end

-- ------------------------------------------------------------ clients

-- Raw HTTP/1.0 GETs, all sent before any answer is read.  Returns the
-- responses ({ status, body }) and the seconds from first send to last answer.
local function get_all(url, paths)
    local port = tonumber(url:match(":(%d+)$"))
    local conns, out = {}, {}
    local t0 = socket.gettime()
    for i, path in ipairs(paths) do
        local c = socket.tcp()
        c:settimeout(30)
        assert(c:connect("127.0.0.1", port))
        assert(c:send("GET " .. path .. " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"))
        conns[i] = c
    end
    for i, c in ipairs(conns) do
        local data, err = c:receive("*a")
        c:close()
        assert(data, err)
        local status = tonumber(data:match("^HTTP/1%.%d (%d%d%d)"))
        out[i] = { status = status, body = data:match("\r\n\r\n(.*)$") or "" }
    end
    return out, socket.gettime() - t0
end

local function get(url, path)
    local r = get_all(url, { path })[1]
    return r.status, r.body
end

-- The service's answer for a session: fetch()'s result (spec/haproxy/service.lua).
local function fetch(server, id, args, route)
    local query = {}
    for k, v in pairs(args or {}) do query[#query + 1] = k .. "=" .. escape(tostring(v)) end
    table.sort(query)
    local status, body = get(server.url, "/" .. (route or "s") .. "/" .. escape(id)
        .. (#query > 0 and ("?" .. table.concat(query, "&")) or ""))
    assert.equal(200, status, body)
    local ok, v = pcall(cjson.decode, body)
    assert(ok, body)
    return v
end

-- 20 concurrent requests for a session from a route answering after 200 ms.
local function twenty(server, route, args)
    local paths = {}
    for i = 1, 20 do paths[i] = "/" .. route .. "/" .. escape("delay?ms=200&key=c" .. i) .. (args or "") end
    local answers, dt = get_all(server.url, paths)
    for i, a in ipairs(answers) do
        assert.equal(200, a.status, a.body)
        local v = cjson.decode(a.body)
        assert.is_true(v.ok, a.body)
        assert.equal("delay?ms=200&key=c" .. i, v.id)
    end
    return dt
end

-- HAProxy says nothing but its start-up notices (no warning, no alert --
-- none about a stuck or blocked thread, a Lua error or a timeout).
local function assert_quiet_log(server)
    local log = server.log()
    for line in log:gmatch("[^\n]+") do
        assert.is_nil(line:find("%[WARNING%]") or line:find("%[ALERT%]") or line:find("stuck")
            or line:find("watchdog") or line:find("blocked"), "HAProxy logged: " .. line .. "\n" .. log)
    end
end

-- ------------------------------------------------------------ specs

describe("inside HAProxy (lua-load, nbthread 1) #hosts", function()
    local server

    setup(function()
        mock.reset()
        server = start_spec_haproxy(1, "lua-load")
    end)
    teardown(function()
        if server then server.stop() end
    end)

    it("serves 20 concurrent requests from a service in well under 1 s on one thread", function()
        local dt = twenty(server, "s")
        io.stderr:write(string.format("[haproxy service, 1 thread: 20 x 200 ms in %.3f s] ", dt))
        assert.is_true(dt < 1, "took " .. dt .. " s")
    end)

    it("does the same from an http-request action", function()
        local dt = twenty(server, "action")
        io.stderr:write(string.format("[haproxy action, 1 thread: 20 x 200 ms in %.3f s] ", dt))
        assert.is_true(dt < 1, "took " .. dt .. " s")
    end)

    it("waits longer than HAProxy's Lua timeouts (4 s) in an action and a service: only running time counts",
    function()
        local answers = get_all(server.url, { "/action/" .. escape("delay?ms=4500&key=long1"),
            "/s/" .. escape("delay?ms=4500&key=long2") })
        for _, a in ipairs(answers) do
            local v = cjson.decode(a.body)
            assert.is_true(v.ok, a.body)
            assert.is_true(v.elapsed >= 4.5 and v.elapsed < 5.5, tostring(v.elapsed))
        end
    end)

    it("runs get_many's requests at once: 10 x 200 ms in well under 1 s", function()
        local v = fetch(server, "delay?ms=200&key=many", { op = "many" })
        assert.is_true(v.ok, cjson.encode(v))
        for i = 1, 10 do assert.equal("delay?ms=200&key=many-" .. i, v.ids[i]) end
        assert.is_true(v.elapsed >= 0.2 and v.elapsed < 0.6, tostring(v.elapsed))
    end)

    it("fetches from a task started at load time, with the client the service uses", function()
        local v = fetch(server, "", nil, "task")
        assert.is_true(v.ok, cjson.encode(v))
        assert.equal("delay?ms=200", v.id)
        assert.is_true(v.elapsed >= 0.2 and v.elapsed < 1, tostring(v.elapsed))
    end)

    it("sends the token, our User-Agent and asks for gzip", function()
        assert.is_true(fetch(server, "ok").ok)
        local req = mock.last_request()
        assert.equal("/fault/by-id/session/ok", req.request_uri)
        assert.equal("Bearer " .. mock.token, req.headers.authorization)
        assert.equal("application/json", req.headers.accept)
        assert.matches("^cozmox%-lua/%S+ HAProxy/2%.6[%d.]* Lua 5%.3$", req.headers["user-agent"])
        assert.equal("gzip, deflate", req.headers["accept-encoding"])
    end)

    it("creates a session (POST with a JSON body); PATCH gives a config error (HAProxy 2.6 has no PATCH)", function()
        local v = fetch(server, "made in haproxy", { base = mock.base_url, op = "create" })
        assert.is_true(v.ok, cjson.encode(v))
        assert.equal("made in haproxy", v.name)
        local req = mock.last_request()
        assert.equal("POST", req.method)
        assert.equal("application/json", req.headers["content-type"])
        assert.equal(tostring(#req.body), req.headers["content-length"])
        assert.is_nil(req.headers["transfer-encoding"])
        assert.same({ name = "made in haproxy" }, cjson.decode(req.body))
        v = fetch(server, v.id, { base = mock.base_url, op = "update" })
        assert.same({ false, "config" }, { v.ok, v.kind })
        assert.equal("HAProxy's httpclient cannot send PATCH requests (it has GET, HEAD, PUT, POST and DELETE)",
            v.message)
    end)

    it("returns an HTTP 404 as an error object", function()
        local v = fetch(server, "status?code=404")
        assert.same({ ok = false, kind = "http", status = 404, message = "Not Found", attempts = 1 },
            { ok = v.ok, kind = v.kind, status = v.status, message = v.message, attempts = v.attempts })
        v = fetch(server, "nope", { base = mock.base_url })
        assert.equal("http", v.kind)
        assert.equal(404, v.status)
        assert.equal("Session not found", v.message)
    end)

    it("times out a stalled route at the call's timeout, serving other requests meanwhile", function()
        local paths = { "/s/" .. escape("stall?s=5") .. "?timeout=1&base=" .. escape(mock.base_url .. "/fault/by-id") }
        for i = 2, 6 do paths[i] = "/s/" .. escape("delay?ms=100&key=t" .. i) end
        local t0 = socket.gettime()
        local answers = get_all(server.url, paths)
        local v = cjson.decode(answers[1].body)
        assert.same({ ok = false, kind = "timeout", code = 28 }, { ok = v.ok, kind = v.kind, code = v.code })
        assert.is_true(v.elapsed >= 0.99 and v.elapsed < 1.5, tostring(v.elapsed))
        for i = 2, 6 do
            local w = cjson.decode(answers[i].body)
            assert.is_true(w.ok, answers[i].body)
            assert.is_true(w.elapsed < 0.6, tostring(w.elapsed))
        end
        assert.is_true(socket.gettime() - t0 < 2)
    end)

    it("verifies TLS: a trusted certificate for 127.0.0.1 passes; an untrusted one, or one for another name, fails",
    function()
        local ok = fetch(server, "demo", { base = mock.https_url })
        assert.is_true(ok.ok, cjson.encode(ok))
        assert.equal("demo", ok.id)
        -- signed by the spec's CA, which the bundle also trusts
        local right = fetch(server, "x", { base = "https://127.0.0.1:" .. server.vars.RIGHTNAME_PORT })
        assert.is_true(right.ok, cjson.encode(right))
        assert.equal("rightname", right.id)
        for _, name in ipairs({ "UNTRUSTED_PORT", "WRONGNAME_PORT" }) do
            local v = fetch(server, "x", { base = "https://127.0.0.1:" .. server.vars[name], timeout = 10 })
            assert.is_false(v.ok, cjson.encode(v))
            assert.is_nil(v.id)
            assert.equal("network", v.kind)
            assert.equal(7, v.code)
            assert.matches("could not connect to 127.0.0.1:%d+ %(connection refused or unreachable, or a TLS "
                .. "handshake that failed", v.message)
        end
    end)

    it("says why a connection failed as far as HAProxy tells: refused, unresolvable", function()
        local v = fetch(server, "x", { base = "http://127.0.0.1:" .. util.free_port(), timeout = 10 })
        assert.same({ false, "network", 7 }, { v.ok, v.kind, v.code })
        assert.matches("^HAProxy's httpclient: could not connect to 127%.0%.0%.1:%d+ %(connection refused or "
            .. "unreachable; HAProxy's log line for <HTTPCLIENT> says which%)$", v.message)
        v = fetch(server, "x", { base = "http://no-such-host.invalid", timeout = 10 })
        assert.same({ false, "network", 6 }, { v.ok, v.kind, v.code })
        assert.matches("could not resolve no-such-host.invalid", v.message, 1, true)
    end)

    it("decodes gzip and deflate bodies, and stops a gzip bomb at max_response_bytes", function()
        local by_id = mock.base_url .. "/fault/by-id"
        for _, id in ipairs({ "gzip", "deflate" }) do
            local v = fetch(server, id, { base = by_id })
            assert.is_true(v.ok, cjson.encode(v))
            assert.equal(id, v.id)
        end
        local v = fetch(server, "gzip-bomb", { base = by_id, max_bytes = 1024 * 1024, timeout = 20 })
        assert.same({ false, "too_large" }, { v.ok, v.kind })
    end)

    it("ends a body larger than tune.lua.maxmem with a memory error; the client goes on working", function()
        local v = fetch(server, "big?mb=200", { base = mock.base_url .. "/fault/by-id", max_bytes = 1024 * 1024,
            timeout = 30 })
        assert.same({ false, "memory", 27 }, { v.ok, v.kind, v.code })
        assert.equal("HAProxy's httpclient: not enough memory for buffer allocation", v.message)
        assert.is_true(fetch(server, "ok").ok)
    end)

    it("reports a body shorter than its Content-Length, and a malformed response, as network failures", function()
        local v = fetch(server, "short-body", { base = mock.base_url .. "/fault/by-id" })
        assert.same({ false, "network", 18 }, { v.ok, v.kind, v.code })
        assert.matches("^body shorter than its Content%-Length %(1000 of %d+ bytes%)", v.message)
        v = fetch(server, "raw?head=status-none", { base = mock.base_url .. "/fault/by-id" })
        assert.same({ false, "network", 8 }, { v.ok, v.kind, v.code })
        assert.equal("HAProxy's httpclient: the server sent an invalid or incomplete response", v.message)
    end)

    it("refuses to wait in a coroutine of the caller's own, a sample fetch and a converter: a config error, "
        .. "no crash, no request sent", function()
        local v = fetch(server, "delay?ms=300&key=own-co", { op = "co" })
        assert.same({ false, "config" }, { v.ok, v.kind }, cjson.encode(v))
        assert.matches("^cannot wait here: inside HAProxy the client works only in services, actions, tasks "
            .. "and CLI commands", v.message)
        for _, route in ipairs({ "sample", "convert" }) do
            local status, body = get(server.url, "/" .. route .. "/")
            assert.equal(200, status, body)
            v = cjson.decode(body)
            assert.same({ false, "config" }, { v.ok, v.kind }, body)
        end
        socket.sleep(0.5) -- a job started anyway would have reached the mock by now
        local last = mock.last_request()
        for _, key in ipairs({ "own-co", "sample1", "convert1" }) do
            assert.is_nil(last and last.request_uri:find(key, 1, true), last and last.request_uri)
        end
        assert.is_true(alive(server.pid))
        assert.is_true(fetch(server, "ok").ok)
    end)

    it("gets a session from a CLI command (core.register_cli) on the stats socket", function()
        local unix = require("socket.unix")
        local c = assert(unix())
        c:settimeout(5)
        assert(c:connect(server.prefix .. "/cli.sock"))
        assert(c:send("cozmox get delay?ms=200&key=cli\n"))
        local out = c:receive("*a")
        c:close()
        local v = cjson.decode(out:match("^%s*(.-)%s*$"))
        assert.is_true(v.ok, out)
        assert.is_true(v.elapsed >= 0.19 and v.elapsed < 1, tostring(v.elapsed))
    end)

    it("takes an empty 503 from a server at an IP address for the server's answer, not a name not resolved",
    function()
        local v = fetch(server, "x", { base = "http://127.0.0.1:" .. server.vars.EMPTY503_PORT })
        assert.same({ false, "http", 503 }, { v.ok, v.kind, v.status }, cjson.encode(v))
    end)

    it("waits between retries with core.msleep: the thread serves others meanwhile", function()
        local key = "r" .. math.random(1e9)
        local paths = { "/s/" .. escape("own-retry-after?key=" .. key .. "&retry_after=1") .. "?retries=1&base="
            .. escape(mock.base_url .. "/fault/by-id") }
        for i = 2, 6 do paths[i] = "/s/" .. escape("delay?ms=100&key=w" .. i) end
        local answers = get_all(server.url, paths)
        local v = cjson.decode(answers[1].body)
        assert.is_true(v.ok, answers[1].body)
        assert.is_true(v.elapsed >= 0.99 and v.elapsed < 2, tostring(v.elapsed))
        for i = 2, 6 do
            local w = cjson.decode(answers[i].body)
            assert.is_true(w.ok, answers[i].body)
            assert.is_true(w.elapsed < 0.6, tostring(w.elapsed))
        end
    end)

    it("blocks the thread with the curl transport instead: the same 20 requests take about 4 s", function()
        local dt = twenty(server, "s", "?curl=1&base=" .. escape(mock.base_url .. "/fault/by-id"))
        io.stderr:write(string.format("[haproxy, curl transport (blocking), 1 thread: 20 x 200 ms in %.3f s] ", dt))
        assert.is_true(dt >= 3.9, "took " .. dt .. " s")
    end)

    it("logs no warning or alert (no stuck or blocked thread)", function()
        assert_quiet_log(server)
    end)
end)

describe("inside HAProxy (lua-load-per-thread, nbthread 4) #hosts", function()
    local server

    setup(function()
        server = start_spec_haproxy(4, "lua-load-per-thread")
    end)
    teardown(function()
        if server then server.stop() end
    end)

    it("serves 20 concurrent requests from a service and from an action in well under 1 s", function()
        local dt = twenty(server, "s")
        local dt2 = twenty(server, "action")
        io.stderr:write(string.format("[haproxy, lua-load-per-thread, 4 threads: 20 x 200 ms in %.3f s "
            .. "(service), %.3f s (action)] ", dt, dt2))
        assert.is_true(dt < 1, "took " .. dt .. " s")
        assert.is_true(dt2 < 1, "took " .. dt2 .. " s")
    end)

    it("fetches from the tasks, verifies TLS and returns errors", function()
        local v = fetch(server, "", nil, "task")
        assert.is_true(v.ok, cjson.encode(v))
        assert.is_true(fetch(server, "demo", { base = mock.https_url }).ok)
        local bad = fetch(server, "x", { base = "https://127.0.0.1:" .. server.vars.UNTRUSTED_PORT, timeout = 10 })
        assert.same({ false, "network" }, { bad.ok, bad.kind })
        local missing = fetch(server, "status?code=404")
        assert.same({ false, "http", 404 }, { missing.ok, missing.kind, missing.status })
    end)

    it("logs no warning or alert", function()
        assert_quiet_log(server)
    end)
end)

describe("HAProxy reloading (master-worker, SIGUSR2) #hosts", function()
    local server

    setup(function()
        server = start_spec_haproxy(1, "lua-load", "-W")
    end)
    teardown(function()
        if server then server.stop() end
    end)

    it("finishes the calls in flight in the old worker, retries included; the new one serves", function()
        local paths = { "/s/" .. escape("own-retry-after?key=rl" .. math.random(1e9) .. "&retry_after=1")
            .. "?retries=1&base=" .. escape(mock.base_url .. "/fault/by-id") }
        for i = 2, 6 do paths[i] = "/s/" .. escape("delay?ms=1500&key=reload" .. i) end
        local port = server.port
        local conns = {}
        for i, path in ipairs(paths) do
            local c = socket.tcp()
            c:settimeout(30)
            assert(c:connect("127.0.0.1", port))
            assert(c:send("GET " .. path .. " HTTP/1.0\r\n\r\n"))
            conns[i] = c
        end
        socket.sleep(0.4)
        assert(util.run("kill -USR2 " .. server.pid))
        socket.sleep(0.5)
        local after = fetch(server, "delay?ms=200")
        assert.is_true(after.ok, cjson.encode(after))
        for i, c in ipairs(conns) do
            local data = assert(c:receive("*a"))
            c:close()
            local v = cjson.decode(data:match("\r\n\r\n(.*)$"))
            assert.is_true(v.ok, data)
            assert.is_true(v.elapsed >= (i == 1 and 1 or 1.5), tostring(v.elapsed))
        end
        -- the old worker goes away once its calls are done
        for _ = 1, 50 do
            if server.log():find("Former worker %(%d+%) exited with code 0") then break end
            socket.sleep(0.1)
        end
        assert.matches("Former worker %(%d+%) exited with code 0", server.log())
    end)
end)

describe("the README's HAProxy example #hosts", function()
    local server

    setup(function()
        make_pki()
        local readme = util.read(root .. "/README.md")
        local cfg = assert(readme:match("\n### HAProxy\n.-~~~haproxy\n(.-)~~~"), "no haproxy.cfg in the README")
        local lua = assert(readme:match("\n### HAProxy\n.-~~~lua\n(%-%- /etc/haproxy/cozmox%.lua\n.-)~~~"),
            "no HAProxy Lua file in the README")
        local dir = pki .. "/readme"
        assert(util.run("mkdir -p " .. q(dir)))
        -- the module from this checkout instead of an installed one
        local f = assert(io.open(dir .. "/cozmox.lua", "w"))
        f:write(("package.path = %q .. package.path\npackage.cpath = %q .. package.cpath\n"):format(
            root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;", root .. "/build/lua5.3/?.so;"), lua)
        f:close()
        local n1, n2, n3
        cfg, n1 = cfg:gsub("/etc/haproxy/cozmox%.lua", dir .. "/cozmox.lua")
        cfg, n2 = cfg:gsub("bind :8080", "bind 127.0.0.1:@PORT@")
        cfg, n3 = cfg:gsub("/etc/ssl/certs/ca%-certificates%.crt", mock.ca_file)
        assert.same({ 1, 1, 1 }, { n1, n2, n3 })
        f = assert(io.open(dir .. "/haproxy.cfg.in", "w"))
        f:write(cfg)
        f:close()
        server = start(dir .. "/haproxy.cfg.in")
    end)
    teardown(function()
        if server then server.stop() end
    end)

    it("runs as written: a session, or the error object's text", function()
        local status, body = get(server.url, "/session/demo")
        assert.equal(200, status, body)
        assert.same({ id = "demo", status = "active" }, cjson.decode(body))
        status, body = get(server.url, "/session/nope")
        assert.equal(502, status)
        assert.equal("cozmox: HTTP 404 Not Found: Session not found (GET /session/nope)", body)
        assert_quiet_log(server)
    end)
end)

describe("examples/haproxy #hosts", function()
    local server

    setup(function()
        make_pki()
        server = start(root .. "/examples/haproxy/haproxy.cfg", { CA_FILE = mock.ca_file })
    end)
    teardown(function()
        if server then server.stop() end
        mock.reset()
    end)

    it("serves a session's transcript from inside HAProxy", function()
        local s = assert(mock.client().session.create({ name = "haproxy", messages = transcript.MESSAGES }))
        local status, body = get(server.url, "/transcript/" .. s.id)
        assert.equal(200, status, body)
        assert.equal(transcript.TIMED, body)
        local req = mock.last_request()
        assert.equal("/session/" .. s.id, req.request_uri)
        assert.equal("Bearer " .. mock.token, req.headers.authorization)
        status, body = get(server.url, "/transcript/" .. s.id .. "?timestamps=0")
        assert.equal(200, status)
        assert.equal(transcript.PLAIN, body)
    end)

    it("answers 404 for an unknown session and for other paths", function()
        local status, body = get(server.url, "/transcript/nope")
        assert.equal(404, status)
        assert.equal("no such session: nope\n", body)
        status, body = get(server.url, "/elsewhere")
        assert.equal(404, status)
        assert.equal("usage: GET /transcript/<session id>[?timestamps=0]\n", body)
        assert_quiet_log(server)
    end)
end)
