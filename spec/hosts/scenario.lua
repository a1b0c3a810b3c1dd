--- The client code every host runs, unchanged: only the `loop` value
--  differs (Neovim and lua5.4 + luv: cozmox.loop.luv(uv); cqueues:
--  cozmox.loop.cqueues(); the C host: its own poll adapter).
--
--   require("hosts.scenario").run(host)
--     host.loop              the adapter
--     host.spawn(fn)         start fn in a new coroutine of the host's loop
--     host.every(s, fn)      call fn every s seconds from the host's loop;
--                            returns stop()
--     host.done(figures)     called once at the end (host: leave its loop)
--     host.name              for the report
--
-- The mock API (scripts/with-mock.sh) provides COZMOX_BASE_URL,
-- COZMOX_TOKEN, COZMOX_TEST_HTTPS_URL and COZMOX_TEST_CA_FILE.  Every
-- figure is measured here and printed by report(); the spec that started
-- the host asserts on them.
local cozmox = require("cozmox")
local now = require("cozmox.core").now

local _M = {}

local BASE = assert(os.getenv("COZMOX_BASE_URL"), "COZMOX_BASE_URL not set (scripts/with-mock.sh)")
local HTTPS = assert(os.getenv("COZMOX_TEST_HTTPS_URL"), "COZMOX_TEST_HTTPS_URL not set")
local CA = assert(os.getenv("COZMOX_TEST_CA_FILE"), "COZMOX_TEST_CA_FILE not set")

--- figures -> "figure key=value" lines (sorted), one string.
function _M.report(name, figures)
    local keys, out = {}, {}
    for k in pairs(figures) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do out[#out + 1] = ("figure %s %s=%s"):format(name, k, tostring(figures[k])) end
    return table.concat(out, "\n") .. "\n"
end

function _M.run(host)
    local loop = host.loop
    local f = {}
    local ticks = 0
    local stop_ticker = host.every(0.05, function() ticks = ticks + 1 end)
    -- The client, the same in every host but for `loop`.
    local api = cozmox.new({ loop = loop, base_url = BASE .. "/fault/by-id", timeout = 10 })

    -- wait in the scenario's own coroutine until cond() holds (through
    -- the adapter, like any coroutine of the host would)
    local function until_true(cond)
        while not cond() do loop.wait({}, 0.01) end
    end

    local function measure(name, fn)
        local t0, k0 = now(), ticks
        fn()
        f[name .. "_elapsed"] = ("%.3f"):format(now() - t0)
        f[name .. "_ticks"] = ticks - k0
    end

    host.spawn(function()
        -- 1. five coroutines, one client, a route answering after 1 s
        measure("concurrent", function()
            local finished, ok = 0, 0
            for i = 1, 5 do
                host.spawn(function()
                    local s, err = api.session.get("delay?ms=1000&n=" .. i)
                    if s and s.id == "delay?ms=1000&n=" .. i then ok = ok + 1
                    else f["concurrent_error_" .. i] = tostring(err) end
                    finished = finished + 1
                end)
            end
            until_true(function() return finished == 5 end)
            f.concurrent_ok = ok
        end)

        -- 2. a stalled route with timeout = 1
        measure("timeout", function()
            local c = cozmox.new({ loop = loop, base_url = BASE .. "/fault/by-id", timeout = 1, max_retries = 0 })
            local s, err = c.session.get("stall?s=5")
            f.timeout_kind = s and "none" or err.kind
            c:close()
        end)

        -- 3. TLS against the mock's HTTPS listener: verified, and refused
        --    without the CA
        measure("tls", function()
            local c = cozmox.new({ loop = loop, base_url = HTTPS, ca_file = CA, timeout = 10 })
            local s, err = c.session.get("demo")
            f.tls_verified = s and s.id == "demo" or tostring(err)
            c:close()
            local bad = cozmox.new({ loop = loop, base_url = HTTPS, ca_path = "/nonexistent", ca_file = "/dev/null",
                timeout = 10, max_retries = 0 })
            local _, err2 = bad.session.get("demo")
            f.tls_untrusted_kind = err2 and err2.kind or "none"
            bad:close()
        end)

        -- 4. get_many on one multi handle: 4 x 300 ms at once
        measure("many", function()
            local ids = {}
            for i = 1, 4 do ids[i] = "delay?ms=300&m=" .. i end
            local results, errs, failed = api.session.get_many(ids, { concurrency = 4 })
            f.many_failed = failed
            f.many_first = results[1] and results[1].id or tostring(errs[1])
        end)

        -- 5. a 429 with Retry-After: 1, retried after a sleep through the
        --    adapter
        measure("retry", function()
            local key = ("k%s%d%d"):format(host.name, os.time(), math.random(1e6)) -- (LuaJIT seeds every state alike)
            local s, err = api.session.get("own-retry-after?retry_after=1&key=" .. key)
            f.retry_ok = s ~= nil or tostring(err)
        end)

        -- 6. outside a coroutine would be: a clear config error (checked
        --    by the specs that can call from the main chunk)
        api:close()
        stop_ticker()
        f.total_ticks = ticks
        host.done(f)
    end)
end

return _M
