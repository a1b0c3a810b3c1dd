-- cozmox inside nginx (lua-nginx-module, LuaJIT): both transports, the
-- phases, and a single worker serving concurrent requests without
-- blocking.  Starts a real nginx with one worker (spec/nginx/) in front
-- of the mock API.
local cozmox = require("cozmox")
local mock = require("support.mock")
local util = require("support.util")
local socket = require("socket")
local http = require("socket.http")
local ltn12 = require("ltn12")

local root = util.spec_dir:gsub("/spec$", "")
local nginx = {}

local free_port = util.free_port

local function start()
    local out, ok = util.run("make -s -C '" .. root .. "' LUA=luajit")
    assert(ok, "building the C core for LuaJIT failed:\n" .. out)
    local prefix = os.tmpname()
    os.remove(prefix)
    assert(util.run("mkdir -p '" .. prefix .. "/logs'"))
    nginx.prefix, nginx.port = prefix, free_port()
    local conf = util.read(root .. "/spec/nginx/nginx.conf.in")
    local is_root = (util.run("id -u")):match("^0") ~= nil
    conf = conf:gsub("@(%u+_?%u*)@", {
        USER = is_root and "user root;" or "", PREFIX = prefix, ROOT = root,
        CA_FILE = mock.ca_file, PORT = tostring(nginx.port) })
    local f = assert(io.open(prefix .. "/nginx.conf", "w"))
    f:write(conf)
    f:close()
    local pid = util.run(string.format(
        "nginx -p '%s' -c '%s/nginx.conf' -e '%s/error.log' >'%s/stdout.log' 2>&1 & echo $!",
        prefix, prefix, prefix, prefix))
    nginx.pid = tonumber(pid:match("%d+"))
    nginx.url = "http://127.0.0.1:" .. nginx.port
    for _ = 1, 100 do
        local c = socket.tcp()
        c:settimeout(0.1)
        if c:connect("127.0.0.1", nginx.port) then c:close() return end
        c:close()
        socket.sleep(0.05)
    end
    error("nginx did not start:\n" .. (util.run("cat '" .. prefix .. "/error.log'")))
end

local function stop()
    if nginx.pid then
        util.run("kill " .. nginx.pid .. "; for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 " .. nginx.pid
            .. " 2>/dev/null || break; sleep 0.1; done; kill -9 " .. nginx.pid .. " 2>/dev/null")
    end
    if nginx.prefix then util.run("rm -rf '" .. nginx.prefix .. "'") end
end

local function get(path)
    local chunks = {}
    local _, status = http.request({ url = nginx.url .. path, sink = ltn12.sink.table(chunks) })
    local body = table.concat(chunks)
    local ok, v = pcall(require("cjson").decode, body)
    return status, ok and v or body
end

local function error_log()
    return (util.run("cat '" .. nginx.prefix .. "/error.log'"))
end

describe("inside nginx", function()
    setup(start)
    teardown(stop)

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

    it("verifies TLS over cosockets; insecure = true skips it", function()
        -- lua-nginx-module checks host names only, not IP addresses: the
        -- mock's certificate (valid for 127.0.0.1 by IP SAN) is refused,
        -- which shows verification is on.
        local status, v = get("/tls/session/demo")
        assert.equal(502, status)
        assert.is_nil(v.id)
        -- nginx refused the peer; lua-nginx-module 0.10.23 sometimes reports
        -- the failed handshake as success and the first send then fails,
        -- so the kind is "tls" or "network" -- never a session.
        assert.is_truthy(v.kind == "tls" or v.kind == "network", v.kind)
        assert.matches("lua ssl certificate does not match host", error_log(), 1, true)
        local status2, v2 = get("/tlsinsecure/session/demo")
        assert.equal(200, status2, type(v2) == "table" and v2.message or v2)
        assert.equal("demo", v2.id)
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
        local c = cozmox.new({ token = "unused", base_url = nginx.url .. "/nginx/delay" })
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
        local c = cozmox.new({ token = "unused", base_url = nginx.url .. "/curl/delay" })
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
