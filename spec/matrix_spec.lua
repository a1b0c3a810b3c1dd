-- The fault matrix (spec/support/matrix.lua) over every transport: the
-- curl easy handle, curl multi (session.get_many), nginx cosockets inside
-- a real nginx, and a transport function (luasocket).  Same cases, same
-- expected outcomes; where a transport cannot give one, the case says so.
local cozmox = require("cozmox")
local core = require("cozmox.core")
local mock = require("support.mock")
local matrix = require("support.matrix")
local nginx = require("support.nginx")
local util = require("support.util")
local socket = require("socket")

-- The forward proxy of the proxy rows, and what it saw.
-- Started before the file's first test and stopped after its last (also
-- when a filter leaves out the test that checks it stops).
local proxy_port, proxy_log = util.free_port(), os.tmpname()
local proxy_pid
local proxy_url = "http://127.0.0.1:" .. proxy_port
setup(function() proxy_pid = util.spawn("proxy.lua", proxy_port, proxy_log) end)
teardown(function()
    util.kill(proxy_pid)
    proxy_pid = nil
    os.remove(proxy_log)
end)

local function reset_proxy_log()
    local f = assert(io.open(proxy_log, "w"))
    f:close()
end

local function env(key)
    return { proxy = proxy_url, base = mock.base_url, http = mock.base_url, https = mock.https_url,
        rogue = os.getenv("COZMOX_TEST_ROGUE_URL"), wrong_host = os.getenv("COZMOX_TEST_WRONG_HOST_URL"),
        refused = "http://127.0.0.1:" .. util.free_port(), ca_file = mock.ca_file,
        localhost = (mock.base_url:gsub("//127%.0%.0%.1:", "//localhost:")), key = key, token = mock.token }
end

local function recording_sleep(waits, real_sleep)
    return function(w)
        waits[#waits + 1] = w
        if real_sleep then socket.sleep(real_sleep) end
    end
end

-- What someone with luasocket plugs in (spec/support/luasocket_transport.lua).
local luasocket = require("support.luasocket_transport")

-- The loop transport (option loop): each call runs in a coroutine of a
-- small poll loop of its own (spec/support/scheduler.lua).
local scheduler = require("support.scheduler")
local current_loop
local loop_adapter = { wait = function(fds, timeout) return current_loop.adapter.wait(fds, timeout) end }
local function loop_get(c, id)
    local s, err
    current_loop = scheduler.new(scheduler.select_poll)
    current_loop.spawn(function() s, err = c.session.get(id) end)
    current_loop.run()
    return s, err
end

local TRANSPORTS = {
    { name = "curl", get = function(c, id) return c.session.get(id) end,
      opts = function(o) o.transport = "curl" end },
    { name = "curl multi (get_many)", get = function(c, id)
        local results, errors = c.session.get_many({ id })
        return results[1] or nil, errors[1] or nil
      end, opts = function(o) o.transport = "curl" end },
    { name = "transport function (luasocket)", custom = true, get = function(c, id) return c.session.get(id) end,
      opts = function(o) o.transport = luasocket end },
    { name = "loop (curl multi driven by a poll loop)", get = loop_get,
      opts = function(o) o.loop = loop_adapter end },
}

for _, t in ipairs(TRANSPORTS) do
    describe("fault matrix over " .. t.name, function()
        for _, case in ipairs(matrix.cases) do
            local expect = case.expect
            local lenient = t.custom and case.custom == "lenient"
            local plain_http = (case.where or "faults") == "faults" or case.where == "refused"
            if t.custom and type(case.custom) == "table" then expect = case.custom end
            -- luasocket speaks no TLS and knows no proxy: those rows are the
            -- other transports'
            if not (t.custom and (not plain_http or case.proxy)) and (case.only == nil or case.only == t.name) then
                it(case.name .. (lenient and " (HTTP parsing is the function's: no raise, no data)" or ""), function()
                    local run_case = setmetatable({ expect = expect }, { __index = case })
                    reset_proxy_log()
                    local r = matrix.run(run_case, env(mock.key("mx")), function(opts, waits, real_sleep)
                        t.opts(opts)
                        opts.sleep = recording_sleep(waits, real_sleep)
                        return cozmox.new(opts)
                    end, t.get, core.now)
                    r.proxy_log = util.read(proxy_log)
                    if expect.min_elapsed then -- the deadline rows: say the overshoot
                        io.stderr:write(string.format("[%s, %s: %.2f s] ", t.name, case.name, r.elapsed))
                    end
                    if lenient then
                        assert.is_falsy(r.data)
                    else
                        local why = matrix.check(run_case, r)
                        assert(why == nil, why)
                    end
                end)
            end
        end
    end)
end

describe("fault matrix over nginx cosockets", function()
    local n
    setup(function() n = nginx.start() end)
    teardown(function() if n then nginx.stop(n) end end)

    for _, case in ipairs(matrix.cases) do
        if case.only == nil or case.only == "nginx" then it(case.name, function()
            local refused = "http://127.0.0.1:" .. util.free_port()
            reset_proxy_log()
            local status, r = nginx.get(n, "/matrix?case=" .. cozmox.escape_segment(case.name) .. "&key="
                .. mock.key("nx") .. "&refused=" .. cozmox.escape_segment(refused)
                .. "&proxy=" .. cozmox.escape_segment(proxy_url))
            assert.equal(200, status, type(r) == "string" and r or nil)
            r.proxy_log = util.read(proxy_log)
            if case.expect.min_elapsed then
                io.stderr:write(string.format("[cosockets, %s: %.2f s] ", case.name, r.elapsed))
            end
            local why = matrix.check(case, r)
            assert(why == nil, why)
        end) end
    end

    it("logged no Lua errors", function()
        local log = nginx.error_log(n)
        assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
        assert.is_nil(log:find("[alert]", 1, true), log)
    end)
end)

describe("the matrix's proxy", function()
    it("stops", function()
        util.kill(proxy_pid)
        proxy_pid = nil
        os.remove(proxy_log)
        local probe = socket.tcp()
        probe:settimeout(1)
        assert.is_nil(probe:connect("127.0.0.1", proxy_port))
        probe:close()
    end)
end)
