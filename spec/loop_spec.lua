-- The loop-driven curl transport (cozmox.transport.loop, src/driver.c),
-- run here under the small poll scheduler of spec/support/scheduler.lua
-- over luasocket's select: the adapter contract, many coroutines on one
-- client, the fault matrix at parity with the blocking curl transport,
-- and what happens when coroutines are dropped, the client is closed
-- during a wait, or the collector runs during one.  The real hosts
-- (Neovim, luv, cqueues, a C host) are spec/hosts/ and spec/loop_host_spec.lua.
local cozmox = require("cozmox")
local mock = require("support.mock")
local scheduler = require("support.scheduler")
local now = require("cozmox.core").now

local BY_ID = mock.base_url .. "/fault/by-id"

local function new_sched()
    return scheduler.new(scheduler.select_poll)
end

-- Run fn(sched) in a coroutine of a fresh scheduler until everything ended.
local function run(fn)
    local sched = new_sched()
    local result
    sched.spawn(function() result = { fn(sched) } end)
    sched.run()
    return (table.unpack or unpack)(result)
end

local function loop_client(sched, opts)
    opts = opts or {}
    opts.loop = opts.loop or sched.adapter
    return mock.client(opts)
end

describe("option loop", function()
    it("must be an adapter table with wait or transport, named at the caller's line", function()
        local ok, err = pcall(cozmox.new, { loop = {} })
        assert.is_false(ok)
        assert.matches("bad argument #1 to 'new' %(option 'loop' must be a loop adapter", err)
        local ok2, err2 = pcall(function() local c = cozmox.new({ loop = "luv" }) return c end)
        assert.is_false(ok2)
        assert.matches("loop_spec.lua:%d+: bad argument #1 to 'new' %(option 'loop' must be a table, got string%)",
            err2)
        local ok3, err3 = pcall(cozmox.new, { loop = { wait = function() end }, transport = "curl" })
        assert.is_false(ok3)
        assert.matches("option 'loop' cannot be combined with option 'transport'", err3)
        assert.is_table(cozmox.new({ loop = { wait = function() end }, transport = "auto" }))
    end)

    it("with transport = function(settings, secret) uses that transport for every call", function()
        local seen = {}
        local adapter = { transport = function(s, secret)
            seen.settings, seen.auth = s, secret and secret.auth
            return {
                perform = function(_, req) seen.url = req.url
                    return { status = 200, value = { id = "x" }, code = 0, started = true, headers = {}, bytes = 2 }
                end,
                perform_many = require("cozmox.transport").perform_each,
                close = function() seen.closed = true end,
            }
        end }
        local c = mock.client({ loop = adapter })
        local s = assert(c.session.get("abc"))
        assert.equal("x", s.id)
        assert.equal(mock.base_url .. "/session/abc", seen.url)
        assert.equal("Authorization: Bearer " .. mock.token, seen.auth)
        assert.equal(c.base_url, seen.settings.base_url)
        c:close()
        assert.is_true(seen.closed)
    end)
end)

describe("the loop transport", function()
    it("outside a coroutine: a clear config error, no request sent", function()
        local c = loop_client(new_sched())
        local v, err = c.session.get("demo")
        assert.is_nil(v)
        assert.equal("config", err.kind)
        assert.matches("must be called from inside a coroutine", err.message)
        local results, errs, failed = c.session.get_many({ "demo", "demo" })
        assert.equal(2, failed)
        assert.is_false(results[1])
        assert.equal("config", errs[2].kind)
    end)

    it("fetches a session in a coroutine, with meta for on_response", function()
        local metas = {}
        local s, err = run(function(sched)
            local c = loop_client(sched, { on_response = function(m) metas[#metas + 1] = m end })
            return c.session.get("demo")
        end)
        assert.is_nil(err)
        assert.equal("demo", s.id)
        assert.equal(1, #metas)
        assert.equal(200, metas[1].status)
        assert.equal("1.1", metas[1].http_version)
        assert.truthy(metas[1].timings.total > 0)
        assert.matches("^cozmox%-lua/%S+ libcurl/", mock.last_request().headers["user-agent"])
    end)

    it("sends method, body and headers like the blocking transport", function()
        local v, err = run(function(sched)
            return loop_client(sched):request("POST", "/session",
                { body = { name = "loop" }, headers = { ["X-A"] = "b" } })
        end)
        assert.is_nil(err)
        assert.is_table(v)
        local last = mock.last_request()
        assert.equal("POST", last.method)
        assert.equal("b", last.headers["x-a"])
        assert.equal('{"name":"loop"}', last.body)
        assert.equal("application/json", last.headers["content-type"])
    end)

    it("50 coroutines on one client: all correct, at once, no descriptor watched twice", function()
        local t0 = now()
        local got = run(function(sched)
            local c = loop_client(sched, { base_url = BY_ID })
            local out, left = {}, 50
            for i = 1, 50 do
                sched.spawn(function()
                    local key = "k" .. i .. "-" .. math.random(1e9)
                    local s, err = c.session.get("own-retry-after?retry_after=0&key=" .. key)
                    out[i] = s and s.id == "own-retry-after?retry_after=0&key=" .. key or tostring(err)
                    left = left - 1
                end)
            end
            while left > 0 do sched.adapter.wait({}, 0.01) end
            c:close()
            return out
        end)
        local elapsed = now() - t0
        for i = 1, 50 do assert.equal(true, got[i], "request " .. i) end
        print(("\nloop transport: 50 coroutines, each a 429 then its own session, in %.2f s"):format(elapsed))
        assert(elapsed < 5, elapsed)
    end)

    it("HTTP/2: 20 coroutines on one client share one connection, one descriptor watched once", function()
        mock.reset()
        local got = run(function(sched)
            local c = loop_client(sched, { base_url = os.getenv("COZMOX_TEST_H2_URL"), ca_file = mock.ca_file })
            local ok, left, versions = 0, 20, {}
            for _ = 1, 20 do
                sched.spawn(function()
                    local s = c.session.get("demo")
                    if s and s.id == "demo" then ok = ok + 1 end
                    left = left - 1
                end)
            end
            while left > 0 do sched.adapter.wait({}, 0.01) end
            c.session.get_many({ "demo", "demo", "demo" }, { concurrency = 3 })
            local c2 = loop_client(sched, { base_url = os.getenv("COZMOX_TEST_H2_URL"), ca_file = mock.ca_file,
                on_response = function(m) versions[#versions + 1] = m.http_version end })
            assert(c2.session.get("demo"))
            c:close()
            c2:close()
            return { ok = ok, version = versions[1] }
        end)
        assert.equal(20, got.ok)
        assert.equal("2", got.version)
        local body = assert(mock.get("/__connections"))
        local count = require("cjson").decode(body).count
        assert.equal(2, count) -- one per client
    end)

    it("get_many: all transfers on the one multi handle, without blocking", function()
        local t0 = now()
        local ticks = 0
        local results, errs, failed = run(function(sched)
            local on = true
            sched.spawn(function() while on do sched.adapter.wait({}, 0.05) ticks = ticks + 1 end end)
            local c = loop_client(sched, { base_url = BY_ID })
            local ids = {}
            for i = 1, 8 do ids[i] = "delay?ms=500&g=" .. i end
            ids[9] = "status?code=404"
            local r, e, f = c.session.get_many(ids, { concurrency = 8 })
            on = false
            return r, e, f
        end)
        local elapsed = now() - t0
        assert.equal(1, failed)
        assert.equal("delay?ms=500&g=8", results[8].id)
        assert.equal(404, errs[9].status)
        assert(elapsed < 1.4, elapsed)
        assert(ticks >= 8, ticks)
    end)
end)

-- ------------------------------------------------------------ fault matrix

-- Each case: id (a /fault/by-id route), options, what must come out.
-- kind nil: success.  Every case runs over the blocking curl transport and
-- the loop transport; both must give the same outcome.
local function matrix()
    local k = mock.key("m")
    return {
        { "status?code=404", {}, { kind = "http", status = 404, attempts = 1 } },
        { "status?code=500&key=" .. k, { max_retries = 1, max_retry_wait = 0.05 },
          { kind = "http", status = 500, attempts = 2 } },
        { "429?n=1&retry_after=1&key=" .. k, {}, { min_elapsed = 0.95 } },
        { "503-once?key=" .. k, {}, {} },
        { "html502", { max_retries = 0 }, { kind = "http", status = 502, attempts = 1 } },
        { "reset?key=" .. k, { max_retries = 0 }, { kind = "network", attempts = 1 } },
        { "short-body", { max_retries = 0 }, { kind = "network" } },
        { "chunked-truncated", { max_retries = 0 }, { kind = "network" } },
        { "chunked-malformed", { max_retries = 0 }, { kind = "network" } },
        { "stall?s=5", { timeout = 1, max_retries = 0 }, { kind = "timeout", min_elapsed = 0.95, max_elapsed = 1.6 } },
        { "gzip", {}, {} },
        { "deflate", {}, {} },
        { "gzip-only", {}, {} },
        { "big?mb=3", { max_response_bytes = 1024 * 1024 }, { kind = "too_large" } },
        { "raw?head=gzip-truncated", { max_retries = 0 }, { same = true } },
        { "raw?head=length-differ", { max_retries = 0 }, { same = true } },
        { "raw?head=header-1mb", { max_retries = 0 }, { same = true } },
        { "echo-html", { max_retries = 0 }, { kind = "http", status = 502 } },
    }
end

local function outcome(s, err, elapsed)
    return { kind = err and err.kind or nil, status = err and err.status or nil,
        attempts = err and err.attempts or nil, ok = s ~= nil and (s.id ~= nil), elapsed = elapsed }
end

local function check_case(case, got, label)
    local want = case[3]
    local where = label .. " " .. case[1]
    if not want.same then
        assert.equal(want.kind, got.kind, where)
        if want.status then assert.equal(want.status, got.status, where) end
        if want.attempts then assert.equal(want.attempts, got.attempts, where) end
        if not want.kind then assert.is_true(got.ok, where) end
    end
    if want.min_elapsed then assert(got.elapsed >= want.min_elapsed, where .. ": " .. got.elapsed) end
    if want.max_elapsed then assert(got.elapsed < want.max_elapsed, where .. ": " .. got.elapsed) end
end

describe("fault matrix: loop transport at parity with curl", function()
    it("the same kind, status and attempts for every fault route, one at a time and all at once", function()
        local cases = matrix()
        local curl_out = {}
        for i, case in ipairs(cases) do
            local opts = { base_url = BY_ID }
            for kk, v in pairs(case[2]) do opts[kk] = v end
            local c = mock.client(opts)
            local t0 = now()
            local s, err = c.session.get(case[1])
            curl_out[i] = outcome(s, err, now() - t0)
            check_case(case, curl_out[i], "curl")
            c:close()
        end
        -- the same ids again need fresh keys: a new matrix per pass
        for _, pass in ipairs({ "one at a time", "all at once" }) do
            local cases2 = matrix()
            local loop_out = run(function(sched)
                local out, left = {}, #cases2
                for i, case in ipairs(cases2) do
                    local function one()
                        local opts = { base_url = BY_ID, loop = sched.adapter }
                        for kk, v in pairs(case[2]) do opts[kk] = v end
                        local c = mock.client(opts)
                        local t0 = now()
                        local s, err = c.session.get(case[1])
                        out[i] = outcome(s, err, now() - t0)
                        c:close()
                        left = left - 1
                    end
                    if pass == "all at once" then sched.spawn(one) else one() end
                end
                while left > 0 do sched.adapter.wait({}, 0.01) end
                return out
            end)
            for i, case in ipairs(cases2) do
                check_case(case, loop_out[i], "loop (" .. pass .. ")")
                assert.equal(curl_out[i].kind, loop_out[i].kind, pass .. ": " .. case[1])
                assert.equal(curl_out[i].status, loop_out[i].status, pass .. ": " .. case[1])
                assert.equal(curl_out[i].attempts, loop_out[i].attempts, pass .. ": " .. case[1])
            end
        end
    end)

    it("TLS: verified against the mock's CA, kind tls without it", function()
        local ok, err = run(function(sched)
            local good = loop_client(sched, { base_url = mock.https_url, ca_file = mock.ca_file })
            local s, e = good.session.get("demo")
            local bad = loop_client(sched, { base_url = mock.https_url, max_retries = 0 })
            local _, e2 = bad.session.get("demo")
            return s and s.id == "demo" or tostring(e), e2
        end)
        assert.is_true(ok)
        assert.equal("tls", err.kind)
    end)
end)

-- ------------------------------------------------------------ lifetimes

describe("loop transport lifetimes", function()
    it("a client closed while another coroutine waits: that call ends at once as closed", function()
        local t0 = now()
        local err, elapsed = run(function(sched)
            local c = loop_client(sched, { base_url = BY_ID, timeout = 10 })
            local e, at
            sched.spawn(function()
                local _, er = c.session.get("stall?s=8")
                e, at = er, now() - t0
            end)
            sched.spawn(function()
                local _, er = c.session.get("stall?s=8&b=1") -- a second waiter on the same client
                assert.is_table(er)
            end)
            sched.adapter.wait({}, 0.3)
            c:close()
            while not e do sched.adapter.wait({}, 0.01) end
            return e, at
        end)
        assert.equal("closed", err.kind)
        assert.matches("closed", err.message)
        assert(elapsed < 1.5, elapsed)
    end)

    it("a coroutine dropped mid-request (never resumed, collected) leaves the client working", function()
        local t0 = now()
        local s = run(function(sched)
            local c = loop_client(sched, { base_url = BY_ID })
            -- an adapter that loses the coroutines of the first two calls
            local lost = 0
            local wait = sched.adapter.wait
            local dropping = { wait = function(fds, timeout)
                if lost < 2 then
                    lost = lost + 1
                    return coroutine.yield() -- nobody will ever resume it
                end
                return wait(fds, timeout)
            end }
            local c2 = loop_client(sched, { base_url = BY_ID, loop = dropping })
            for i = 1, 2 do
                local co = coroutine.create(function() return c2.session.get("delay?ms=100&d=" .. i) end)
                assert(coroutine.resume(co))
            end
            collectgarbage("collect")
            collectgarbage("collect")
            local r1 = assert(c2.session.get("delay?ms=100&d=3"))
            local r2 = assert(c.session.get("ok"))
            c2:close()
            return r1.id .. " " .. r2.id
        end)
        assert.equal("delay?ms=100&d=3 ok", s)
        assert(now() - t0 < 4, now() - t0)
    end)

    it("a driving coroutine whose host never calls back is replaced by the next one", function()
        local t0 = now()
        local s = run(function(sched)
            local wait = sched.adapter.wait
            local stuck = true
            local adapter = { wait = function(fds, timeout)
                if stuck then stuck = false return coroutine.yield() end -- the first wait never returns
                return wait(fds, timeout)
            end }
            local c = loop_client(sched, { base_url = BY_ID, loop = adapter, timeout = 2 })
            local held = coroutine.create(function() return c.session.get("delay?ms=50&s=1") end)
            assert(coroutine.resume(held)) -- now driving, and stuck for good
            local r = c.session.get("delay?ms=50&s=2")
            return r and r.id
        end)
        assert.equal("delay?ms=50&s=2", s)
        -- found stuck once its wait should have returned (its timeout + 1 s)
        assert(now() - t0 < 2.5, now() - t0)
    end)

    it("the collector during waits, and many clients made and closed: no crash, no leak of descriptors", function()
        local stat = io.open("/proc/self/stat")
        local pid = stat and stat:read("*l"):match("^(%d+)")
        if stat then stat:close() end
        local function open_fds()
            if not pid then return nil end
            local p = io.popen("ls /proc/" .. pid .. "/fd 2>/dev/null | wc -l")
            local n = tonumber(p:read("*a"))
            p:close()
            return n
        end
        local before
        run(function(sched)
            local wait = sched.adapter.wait
            local gc = { wait = function(fds, timeout)
                collectgarbage("collect")
                return wait(fds, timeout)
            end }
            for round = 1, 3 do
                local c = loop_client(sched, { base_url = BY_ID, loop = gc })
                local left = 4
                for i = 1, 4 do
                    sched.spawn(function()
                        assert(c.session.get("delay?ms=20&r=" .. round .. "&i=" .. i))
                        left = left - 1
                    end)
                end
                while left > 0 do wait({}, 0.01) end
                c:close()
                if round == 1 then collectgarbage("collect") before = open_fds() end
            end
        end)
        collectgarbage("collect")
        collectgarbage("collect")
        local after = open_fds()
        if before and after then assert(after <= before + 2, before .. " -> " .. after) end
    end)

    if coroutine.close then
        it("Lua 5.4 coroutine.close on a coroutine waiting for its request", function()
            local s = run(function(sched)
                local c = loop_client(sched, { base_url = BY_ID })
                local wait = sched.adapter.wait
                local victim
                local adapter = { wait = function(fds, timeout)
                    if coroutine.running() == victim then return coroutine.yield() end
                    return wait(fds, timeout)
                end }
                local c2 = loop_client(sched, { base_url = BY_ID, loop = adapter })
                victim = coroutine.create(function() return c2.session.get("delay?ms=200&v=1") end)
                assert(coroutine.resume(victim))
                assert(coroutine.close(victim))
                collectgarbage("collect")
                local r = assert(c2.session.get("delay?ms=50&v=2"))
                local r2 = assert(c.session.get("ok"))
                return r.id .. " " .. r2.id
            end)
            assert.equal("delay?ms=50&v=2 ok", s)
        end)
    end

    it("an adapter whose wait raises: the error comes out of the call, the client still works", function()
        -- (in its own coroutine: PUC Lua 5.1 cannot pcall across a yield)
        local msg, after = run(function(sched)
            local wait = sched.adapter.wait
            local fail = true
            local adapter = { wait = function(fds, timeout)
                if fail then fail = false error("adapter broke") end
                return wait(fds, timeout)
            end }
            local c = loop_client(sched, { base_url = BY_ID, loop = adapter })
            local e = "no error"
            sched.catch(function() c.session.get("delay?ms=10&e=1") end, function(er) e = tostring(er) end)
            local r = c.session.get("delay?ms=10&e=2")
            return e, r and r.id
        end)
        assert.matches("adapter broke", msg)
        assert.equal("delay?ms=10&e=2", after)
    end)
end)

-- ------------------------------------------------------------ adapters, descriptors, deadlines

local function open_fd_count()
    local stat = io.open("/proc/self/stat")
    if not stat then return nil end
    local pid = stat:read("*l"):match("^(%d+)")
    stat:close()
    local p = io.popen("ls /proc/" .. pid .. "/fd 2>/dev/null | wc -l")
    local n = tonumber(p:read("*a"))
    p:close()
    return n
end

describe("loop adapters", function()
    it("cozmox.loop.cqueues and cozmox.loop.luv refuse what is not their module, at the caller's line", function()
        for _, bad in ipairs({ "nope", {}, { poll = function() end } }) do
            local ok, err = pcall(function() local a = cozmox.loop.cqueues(bad) return a end)
            assert.is_false(ok)
            assert.matches("loop_spec.lua:%d+: bad argument #1 to 'cqueues' %(the cqueues module expected", err)
        end
        local uv = { new_poll = function() end, new_timer = function() end }
        local ok, err = pcall(function() local a = cozmox.loop.luv(uv, "later") return a end)
        assert.is_false(ok)
        assert.matches("loop_spec.lua:%d+: bad argument #2 to 'luv' %(a function expected", err)
        local ok2, err2 = pcall(function()
            local c = cozmox.new({ loop = { wait = function() end, sleep = 1 } })
            return c
        end)
        assert.is_false(ok2)
        assert.matches("loop_spec.lua:%d+: bad argument #1 to 'new' %(option 'loop' must be a loop adapter "
            .. "whose 'sleep'", err2)
    end)
end)

describe("loop transport: descriptors and deadlines", function()
    it("out of descriptors: nil, err of kind network, never a raised error; fine again afterwards", function()
        local files = {}
        local results = run(function(sched)
            local c = loop_client(sched, { base_url = BY_ID, max_retries = 0 })
            require("cozmox.transport.curl").module() -- (loading it needs a descriptor)
            -- this process out of descriptors (its client's driver not made yet)
            while true do
                local f = io.open("/dev/null")
                if not f then break end
                files[#files + 1] = f
            end
            local r = {}
            r.ok, r.s, r.err = pcall(c.session.get, "ok")
            r.many_ok, r.many, r.many_errs, r.failed = pcall(c.session.get_many, { "ok", "ok?b=1" })
            for i, f in ipairs(files) do f:close() files[i] = nil end
            r.after = c.session.get("ok")
            c:close()
            return r
        end)
        for _, f in ipairs(files) do f:close() end
        assert.is_true(results.ok, tostring(results.s))
        assert.is_nil(results.s)
        assert.equal("network", results.err.kind)
        assert.matches("descriptor", results.err.message)
        assert.is_true(results.many_ok, tostring(results.many))
        assert.equal(2, results.failed)
        assert.equal("network", results.many_errs[2].kind)
        assert.equal("ok", results.after and results.after.id)
    end)

    -- A drives, its host loses it (never resumed); B starts 0.3 s later
    -- with timeout = 1; at 0.5 s A is dropped and collected.
    it("a waiting call keeps its timeout when the driving coroutine is lost and collected", function()
        local elapsed, err = run(function(sched)
            local wait = sched.adapter.wait
            local lost = {}
            local adapter = { wait = function(fds, timeout)
                if lost[coroutine.running()] then return coroutine.yield() end -- never resumed
                return wait(fds, timeout)
            end }
            local c = loop_client(sched, { base_url = BY_ID, loop = adapter, timeout = 1, max_retries = 0 })
            assert(c.session.get("ok"))
            local a = coroutine.create(function() return c.session.get("stall?s=10&a=1") end)
            lost[a] = true
            assert(coroutine.resume(a))
            wait({}, 0.3)
            local e, t
            sched.spawn(function()
                local t0 = now()
                local _, er = c.session.get("stall?s=10&b=1")
                e, t = er, now() - t0
            end)
            wait({}, 0.2)
            a = nil -- luacheck: ignore 311
            collectgarbage("collect")
            collectgarbage("collect")
            while not e do wait({}, 0.01) end
            c:close()
            return t, e
        end)
        assert.equal("timeout", err.kind)
        print(("\nloop transport: timeout = 1 with the driving coroutine lost: %.3f s"):format(elapsed))
        assert(elapsed < 1.15, elapsed)
    end)

    it("a request on a client whose driving coroutine is stuck (not collected) comes back on time", function()
        local elapsed, s, holder = run(function(sched)
            local wait = sched.adapter.wait
            local stuck = {}
            local adapter = { wait = function(fds, timeout)
                if stuck[coroutine.running()] then return coroutine.yield() end
                return wait(fds, timeout)
            end }
            local c = loop_client(sched, { base_url = BY_ID, loop = adapter, timeout = 5, max_retries = 0 })
            assert(c.session.get("ok"))
            local a = coroutine.create(function() return c.session.get("stall?s=10&a=2") end)
            stuck[a] = true
            assert(coroutine.resume(a))
            wait({}, 0.1)
            local t0 = now()
            local r = c.session.get("delay?ms=300&b=2")
            local t = now() - t0
            c:close()
            return t, r, a
        end)
        assert.is_thread(holder) -- (kept: A is stuck, not gone)
        assert.equal("delay?ms=300&b=2", s and s.id)
        print(("\nloop transport: 300 ms request beside a stuck driving coroutine: %.3f s"):format(elapsed))
        assert(elapsed < 0.8, elapsed)
    end)

    it("cancelled calls do not keep descriptors open, and close() releases the rest", function()
        if not open_fd_count() then return pending("no /proc/self/fd") end
        local counts = run(function(sched)
            local wait = sched.adapter.wait
            local lost = setmetatable({}, { __mode = "k" })
            local adapter = { wait = function(fds, timeout)
                if lost[coroutine.running()] then return coroutine.yield() end
                return wait(fds, timeout)
            end }
            local c = loop_client(sched, { base_url = BY_ID, loop = adapter, timeout = 5 })
            assert(c.session.get("ok"))
            collectgarbage("collect")
            local out = { base = open_fd_count() }
            for i = 1, 30 do
                local co = coroutine.create(function() return c.session.get("delay?ms=200&x=" .. i) end)
                lost[co] = true
                assert(coroutine.resume(co))
                co = nil -- luacheck: ignore 311
                collectgarbage("collect")
                collectgarbage("collect")
            end
            assert(c.session.get("delay?ms=50&after=1"))
            assert(c.session.get("delay?ms=50&after=2"))
            out.after = open_fd_count()
            -- descriptors retired by the last calls, then close()
            local co = coroutine.create(function() return c.session.get("delay?ms=200&last=1") end)
            lost[co] = true
            assert(coroutine.resume(co))
            co = nil -- luacheck: ignore 311
            collectgarbage("collect")
            collectgarbage("collect")
            c:close()
            out.closed = open_fd_count()
            return out
        end)
        print(("\nloop transport: descriptors %d before 30 cancelled calls, %d after, %d after close()")
            :format(counts.base, counts.after, counts.closed))
        assert(counts.after <= counts.base + 2, counts.base .. " -> " .. counts.after)
        assert(counts.closed <= counts.base, counts.base .. " -> " .. counts.closed)
    end)
end)
