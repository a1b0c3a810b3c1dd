--- bench/bench.lua: every measurement of `make bench`, printed as one table.
--
--   lua5.4 bench/bench.lua DATA_DIR BASE_URL CURL_FLOOR_BIN FRONT_URL
--
-- Run by bench/run.sh, which generates DATA_DIR (bench/gen.lua), starts
-- nginx at BASE_URL (bench/nginx.conf.in) and another in front of it at
-- FRONT_URL (bench/front.conf.in), and compiles bench/curl_floor.c.
-- Environment: BENCH_ROUNDS (default 7), BENCH_N (requests per round,
-- default 2000), BENCH_MACHINE (the machine line).
--
-- Method: one untimed warm-up pass of everything, then BENCH_ROUNDS
-- rounds; in each round every contender of every case runs its share of
-- work in 4 slices, contender after contender, in an order rotated on
-- every slice (see interleave), so drifting machine noise reaches all
-- contenders alike.  Figures are medians over the rounds.  Before
-- each timed section: collectgarbage("collect"); the GC otherwise runs
-- with Lua's defaults for everyone, and every contender drops each
-- decoded value the same way (overwritten by the next iteration).

local data_dir, base_url, floor_bin, front_url = arg[1], arg[2], arg[3], arg[4]
local script_dir = (arg[0]:match("^(.*)/[^/]*$") or ".")
local common = dofile(script_dir .. "/common.lua")
local read, rotated = common.read, common.rotated
assert(data_dir and base_url and floor_bin and front_url,
    "usage: lua5.4 bench/bench.lua DATA_DIR BASE_URL CURL_FLOOR_BIN FRONT_URL")

local ROUNDS = math.tointeger(tonumber(os.getenv("BENCH_ROUNDS") or "7"))
local N = math.tointeger(tonumber(os.getenv("BENCH_N") or "2000"))
assert(ROUNDS and ROUNDS >= 1, "BENCH_ROUNDS must be a positive integer")
assert(N and N >= 1, "BENCH_N must be a positive integer")

local cozmox = require("cozmox")
local core = require("cozmox.core")
local cjson = require("cjson")
local dkjson = require("dkjson")
local http = require("socket.http")
local ltn12 = require("ltn12")

local now, collect = core.now, collectgarbage
local format, concat, sort = string.format, table.concat, table.sort
local ID = "3f6c2f7e-5a1b-4c2d-9e8f-0a1b2c3d4e5f"
local BIG_MESSAGES = 20000
local SLOW_IDS = 50
local SLOW_DELAY = 0.2


local function median(t)
    local c = {}
    for i = 1, #t do c[i] = t[i] end
    sort(c)
    local n = #c
    if n == 0 then return nil end
    if n % 2 == 1 then return c[(n + 1) // 2] end
    return (c[n // 2] + c[n // 2 + 1]) / 2
end

local function minmax(t)
    local lo, hi = math.huge, -math.huge
    for i = 1, #t do
        if t[i] < lo then lo = t[i] end
        if t[i] > hi then hi = t[i] end
    end
    return lo, hi
end


local function progress(msg)
    io.stderr:write("bench: ", msg, "\n")
end

------------------------------------------------------------------------
-- Decode and encode (bench/codec.lua, one process per runtime)
------------------------------------------------------------------------

local DOCS = {
    { key = "a", file = "session.json", label = "(a) example session, compact" },
    { key = "b", file = "big.json", label = "(b) session, 20,000 messages" },
    { key = "c", file = "numbers.json", label = "(c) number-heavy" },
    { key = "d", file = "strings.json", label = "(d) string-heavy, escapes + UTF-8" },
    { key = "e", file = "floats.json", label = "(e) float-heavy, GeoJSON 17 digits" },
    { key = "f", file = "integers.json", label = "(f) integer-heavy, up to 64 bits" },
}
for _, d in ipairs(DOCS) do d.text = read(data_dir .. "/" .. d.file) end

-- CODEC[runtime][op][doc][contender] = { seconds per call, one per round }
local RUNTIMES = {
    { key = "lua5.4", bin = "lua5.4", cpath = os.getenv("BENCH_CPATH_LUA54") },
    { key = "LuaJIT", bin = "luajit", cpath = os.getenv("BENCH_CPATH_LUAJIT") },
}
local CODEC = {}
local function run_codec(rt)
    local cmd = format("LUA_CPATH=%q %s %q %q %d", rt.cpath or "", rt.bin, script_dir .. "/codec.lua", data_dir,
        ROUNDS)
    local p = assert(io.popen(cmd))
    local t = { decode = {}, encode = {} }
    for l in p:lines() do
        local op, doc, who, secs = l:match("^sample (%a+) (%a) (%a+) (%S+)$")
        if op then
            t[op][doc] = t[op][doc] or {}
            local list = t[op][doc][who] or {}
            t[op][doc][who] = list
            list[#list + 1] = tonumber(secs)
        end
    end
    local ok = p:close()
    if not ok or not t.decode.a then error("bench/codec.lua failed on " .. rt.bin) end
    CODEC[rt.key] = t
end

------------------------------------------------------------------------
-- Start-up: require("cozmox") and memory (bench/startup.lua, per runtime)
------------------------------------------------------------------------

local STARTUP = {}
local function run_startup(rt)
    local cmd = format("LUA_CPATH=%q %s %q %s %q %d", rt.cpath or "", rt.bin, script_dir .. "/startup.lua", rt.bin,
        data_dir .. "/session.json", ROUNDS)
    local p = assert(io.popen(cmd))
    local t = { bare = {}, cozmox = {}, rss = {} }
    for l in p:lines() do
        local who, secs = l:match("^sample require (%a+) (%S+)$")
        if who then t[who][#t[who] + 1] = tonumber(secs) end
        local rwho, kb = l:match("^rss (%a+) (%d+)$")
        if rwho then t.rss[rwho] = tonumber(kb) end
    end
    if not p:close() or #t.cozmox == 0 then error("bench/startup.lua failed on " .. rt.bin) end
    STARTUP[rt.key] = t
end

------------------------------------------------------------------------
-- Inside nginx: requests per second with wrk (bench/front.conf.in)
------------------------------------------------------------------------

local WRK_SECONDS = tonumber(os.getenv("BENCH_WRK_SECONDS") or "3")
local NGINX_ROWS = {
    { key = "cozmox", path = "/cozmox", label = "cozmox client.session.get over cosockets" },
    { key = "subrequest", path = "/subrequest", label = "ngx.location.capture + proxy_pass (keep-alive) + lua-cjson" },
}
-- Requests per second of wrk -t1 -c16 on path, and its error count.
local function run_wrk(path)
    local p = assert(io.popen(format("wrk -t1 -c16 -d%ds %q 2>&1", WRK_SECONDS, front_url .. path)))
    local out = p:read("a")
    p:close()
    local rps = tonumber(out:match("Requests/sec:%s*([%d.]+)"))
    if not rps then error("wrk failed: " .. out) end
    local bad = tonumber(out:match("Non%-2xx or 3xx responses:%s*(%d+)") or "0")
    if bad > 0 then error("wrk: " .. bad .. " failed responses on " .. path) end
    return rps
end

------------------------------------------------------------------------
-- End to end
------------------------------------------------------------------------

local client = cozmox.new({ base_url = base_url, token = "bench-token", max_retries = 0 })
local get = client.session.get
local session_len = #DOCS[1].text

local function run_cozmox(n)
    collect("collect")
    local t0 = now()
    for _ = 1, n do
        local s, err = get(ID)
        if not s then error("session.get: " .. tostring(err)) end
    end
    return now() - t0
end

-- luasocket as its users write it: socket.http.request into a table
-- sink (what its simple form does internally), then cjson.decode.
-- socket.http sends "Connection: close" and cannot keep a connection
-- alive, so every request opens a new TCP connection.
local ls_url = base_url .. "/session/" .. ID
local ls_headers = { accept = "application/json", authorization = "Bearer bench-token" }
local http_request, sink_table, cjson_decode = http.request, ltn12.sink.table, cjson.decode
local function ls_get(url)
    local chunks = {}
    local ok, code = http_request({ url = url, headers = ls_headers, sink = sink_table(chunks) })
    if ok == nil or code ~= 200 then error("socket.http: " .. tostring(code)) end
    return cjson_decode(concat(chunks))
end

local function run_luasocket(n)
    collect("collect")
    local t0 = now()
    for _ = 1, n do ls_get(ls_url) end
    return now() - t0
end

-- The floor runs in its own process: start-up and its 50 warm-up
-- requests are outside its timed loop.
local function run_floor(n, warmup)
    local p = assert(io.popen(format("%q %q %d %d", floor_bin, ls_url, n, warmup or 50)))
    local out = p:read("a")
    local ok = p:close()
    local secs, bytes = out:match("^(%S+) (%d+)")
    if not ok or not secs then error("curl_floor failed: " .. out) end
    if tonumber(bytes) ~= session_len then error("curl_floor: body of " .. bytes .. " bytes") end
    return tonumber(secs)
end

------------------------------------------------------------------------
-- Memory (fresh processes, bench/mem.lua)
------------------------------------------------------------------------

local function run_mem(which)
    local cmd = format("lua5.4 %q %s %q %q %d", script_dir .. "/mem.lua", which, base_url .. "/big", ID,
        BIG_MESSAGES)
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    local ok = p:close()
    local peak, start = out:match("^(%d+) (%d+)")
    if not ok or not peak then error("mem.lua " .. which .. " failed: " .. out) end
    return tonumber(peak) / 1024, tonumber(start) / 1024    -- MiB
end

------------------------------------------------------------------------
-- Concurrency
------------------------------------------------------------------------

local slow = cozmox.new({ base_url = base_url .. "/slow", token = "bench-token", max_retries = 0,
    timeout = 30 })
local slow_ids = {}
for i = 1, SLOW_IDS do slow_ids[i] = format("slow-%02d", i) end
local has_get_many = type(slow.session.get_many) == "function"

-- Seconds for one get_many of all ids, or nil, reason.
local function run_get_many(concurrency)
    collect("collect")
    local t0 = now()
    local ok, results, errs = pcall(slow.session.get_many, slow_ids, { concurrency = concurrency })
    local dt = now() - t0
    if not ok then return nil, "raised: " .. tostring(results) end
    local failed, first = 0, nil
    for i = 1, SLOW_IDS do
        local s = type(results) == "table" and results[i]
        if type(s) ~= "table" or type(s.messages) ~= "table" then
            failed = failed + 1
            first = first or tostring(type(errs) == "table" and errs[i] or "no result")
        end
    end
    if failed > 0 then return nil, format("%d of %d failed: %s", failed, SLOW_IDS, first) end
    return dt
end

local function run_sequential_slow()
    collect("collect")
    local t0 = now()
    for i = 1, SLOW_IDS do
        local s, err = slow.session.get(slow_ids[i])
        if not s then error("session.get (slow): " .. tostring(err)) end
    end
    return now() - t0
end

local CONCURRENCY = { 8, SLOW_IDS }

------------------------------------------------------------------------
-- Rounds
------------------------------------------------------------------------

local R = {                      -- per-round samples
    e2e = { cozmox = {}, luasocket = {}, floor = {} },
    mem = { cozmox = {}, luasocket = {} }, mem_start = { cozmox = {}, luasocket = {} },
    many = {}, many_err = {},
}
for _, c in ipairs(CONCURRENCY) do R.many[c] = {} end

local t_start = now()
for _, rt in ipairs(RUNTIMES) do
    progress(format("codec rows on %s (%d rounds)", rt.bin, ROUNDS))
    run_codec(rt)
    progress(format("start-up rows on %s", rt.bin))
    run_startup(rt)
end
progress(format("inside nginx: wrk, %d s per contender and round", WRK_SECONDS))
local RPS = { cozmox = {}, subrequest = {} }
run_wrk("/cozmox") -- warm-up
run_wrk("/subrequest")
for r = 1, ROUNDS do
    for _, row in ipairs(rotated(NGINX_ROWS, r)) do
        RPS[row.key][#RPS[row.key] + 1] = run_wrk(row.path)
    end
end
progress(format("warm-up (rounds: %d, requests per round: %d)", ROUNDS, N))
run_cozmox(50); run_luasocket(50); run_floor(1, 49)
run_mem("cozmox"); run_mem("luasocket")
if has_get_many then run_get_many(SLOW_IDS) end

local E2E = {
    { key = "cozmox", run = run_cozmox },
    { key = "luasocket", run = run_luasocket },
    { key = "floor", run = run_floor },
}

-- One round of a case: each contender's `total` units of work are cut
-- into SLICES slices, run contender after contender (order rotated on
-- every slice), so a burst of noise lands on all of them.  Appends
-- seconds per unit to samples[key].  run(c, k) -> seconds for k units.
local SLICES = 4
local function interleave(contenders, r, total, run, samples)
    local secs, done = {}, {}
    for _, c in ipairs(contenders) do secs[c.key], done[c.key] = 0, 0 end
    for sl = 1, SLICES do
        for _, c in ipairs(rotated(contenders, r + sl)) do
            local all = total(c)
            local k = math.min(all - done[c.key], math.ceil(all / SLICES))
            if k > 0 then
                secs[c.key] = secs[c.key] + run(c, k)
                done[c.key] = done[c.key] + k
            end
        end
    end
    for _, c in ipairs(contenders) do
        local t = samples[c.key]
        t[#t + 1] = secs[c.key] / done[c.key]
    end
end

for r = 1, ROUNDS do
    progress(format("round %d/%d", r, ROUNDS))
    interleave(E2E, r, function() return N end, function(c, k) return c.run(k) end, R.e2e)
    for _, which in ipairs(rotated({ "cozmox", "luasocket" }, r)) do
        local peak, start = run_mem(which)
        local s, s0 = R.mem[which], R.mem_start[which]
        s[#s + 1], s0[#s0 + 1] = peak, start
    end
    if has_get_many then
        for _, c in ipairs(rotated(CONCURRENCY, r)) do
            local dt, why = run_get_many(c)
            if dt then
                local s = R.many[c]
                s[#s + 1] = dt
            else
                R.many_err[c] = R.many_err[c] or why
            end
        end
    end
end
progress(format("%d sequential session.get calls on the %.1f s route", SLOW_IDS, SLOW_DELAY))
local sequential_slow = run_sequential_slow()
local elapsed = now() - t_start

------------------------------------------------------------------------
-- The table
------------------------------------------------------------------------

local out = {}
local function line(...) out[#out + 1] = format(...) end
local function verdict(ok) return ok and "MET" or "NOT MET" end
local function size_str(n)
    if n >= 1e6 then return format("%.2f MB", n / 1e6) end
    return format("%.1f KB", n / 1e3)
end
local function ratio_str(med, lo, hi)
    return format("%5.2fx (%.2f-%.2f)", med, lo, hi)
end

-- per-round ratios of two sample lists (same round, same index)
local function round_ratios(a, b, f)
    local t = {}
    for i = 1, math.min(#a, #b) do t[i] = f(a[i], b[i]) end
    return t
end

local RULE = string.rep("-", 118)
line("cozmox-lua benchmark: %d rounds, medians; contenders interleaved, order rotated slice by slice", ROUNDS)
line("machine: %s, %s, libcurl %s", os.getenv("BENCH_MACHINE") or "?", os.getenv("BENCH_LUA") or _VERSION,
    require("cozmox.curl").version)
line("contenders: cozmox-lua %s (working tree), lua-cjson %s (Debian), %s, %s, nginx %s", cozmox.VERSION,
    cjson._VERSION, dkjson.version, require("socket")._VERSION, os.getenv("BENCH_NGINX") or "?")
line("%s", RULE)
local dec_med = {}
for _, rt in ipairs(RUNTIMES) do
    local t = CODEC[rt.key]
    for _, op in ipairs({ "decode", "encode" }) do
        local target = op == "decode" and 2.5 or 2.0
        line("%-36s %10s  %-17s %-17s %-17s %-20s %s", format("%s on %s (CPU time)", op:upper(), rt.key), "size",
            "cozmox.json", "lua-cjson", op == "decode" and "dkjson (pure Lua)" or "", "cozmox/cjson (range)", "target")
        for _, doc in ipairs(DOCS) do
            local bytes = #doc.text
            local cells, med = {}, {}
            for _, who in ipairs({ "cozmox", "cjson", "dkjson" }) do
                local samples = t[op][doc.key] and t[op][doc.key][who]
                if samples then
                    local m = median(samples)
                    med[who] = m
                    cells[#cells + 1] = format("%7.1f MB/s %s", bytes / m / 1e6,
                        m < 0.01 and format("%.3fms", m * 1e3) or format("%.1fms", m * 1e3))
                else
                    cells[#cells + 1] = ""
                end
            end
            if op == "decode" and rt.key == "lua5.4" then dec_med[doc.key] = med end
            local ratio = med.cjson / med.cozmox
            local lo, hi = minmax(round_ratios(t[op][doc.key].cjson, t[op][doc.key].cozmox,
                function(cj, cz) return cj / cz end))
            line("%-36s %10s  %-17s %-17s %-17s %-20s %s", doc.label, size_str(bytes), cells[1], cells[2], cells[3],
                ratio_str(ratio, lo, hi), format(">= %.1fx  %s", target, verdict(ratio >= target)))
        end
    end
end

line("%s", RULE)
line("START-UP: a fresh process, wall time (fork + exec, median of 40 per round)   bare      "
    .. "require(\"cozmox\")  over bare")
for _, rt in ipairs(RUNTIMES) do
    local t = STARTUP[rt.key]
    local bare, with = median(t.bare), median(t.cozmox)
    local over = round_ratios(t.cozmox, t.bare, function(c, b) return (c - b) * 1e3 end)
    local lo, hi = minmax(over)
    local ms = (with - bare) * 1e3
    line("  %-68s %6.2f ms  %6.2f ms  %5.2f ms (%.2f-%.2f)  target <= 1 ms  %s", format("require on %s", rt.key),
        bare * 1e3, with * 1e3, ms, lo, hi, verdict(ms <= 1))
end
for _, rt in ipairs(RUNTIMES) do
    local rss = STARTUP[rt.key].rss
    local r = rss.cozmox / rss.bare
    line("  %-68s %6.1f MiB %6.1f MiB  %5.2fx              target <= 1.2x  %s",
        format("RSS, bare vs required + decoded (a), %s", rt.key), rss.bare / 1024, rss.cozmox / 1024, r,
        verdict(r <= 1.2))
end
line("  (libcurl is loaded on the first request through curl, not by require: neither row loads it)")

line("%s", RULE)
line("INSIDE NGINX: 1 worker fetching (a) from the benchmark server per request; wrk -t1 -c16, %d s x %d rounds"
    .. "  req/s",
    WRK_SECONDS, ROUNDS)
local rps = { cozmox = median(RPS.cozmox), subrequest = median(RPS.subrequest) }
for _, row in ipairs(NGINX_ROWS) do line("  %-84s %8.0f", row.label, rps[row.key]) end
do
    local r = rps.cozmox / rps.subrequest
    local lo, hi = minmax(round_ratios(RPS.cozmox, RPS.subrequest, function(a, b) return a / b end))
    line("  %-62s %-21s %s", "cozmox / subrequest + lua-cjson", ratio_str(r, lo, hi), "(information)")
    line("  %-62s %-21s %-22s %s", "cozmox / lua-resty-http + lua-cjson", "not measured", "target >= 1.5x",
        "SKIPPED: lua-resty-http has no Debian 12 package and no LuaRocks server is reachable here")
end

line("%s", RULE)
local e2e = {}
for k, s in pairs(R.e2e) do e2e[k] = median(s) end
local dec_a = dec_med.a.cozmox
local floor_plus = e2e.floor + dec_a
line("END TO END: %d sequential GETs of (a) per round, wall time (CLOCK_MONOTONIC)              ms/request", N)
line("  %-84s %8.4f", "cozmox client.session.get, one client, keep-alive", e2e.cozmox * 1e3)
line("  %-84s %8.4f", "libcurl floor: bench/curl_floor.c, one reused easy handle, body discarded",
    e2e.floor * 1e3)
line("  %-84s %8.4f", "floor + cozmox decode of (a) (decode median from the DECODE rows)", floor_plus * 1e3)
line("  %-84s %8.4f", "luasocket socket.http + lua-cjson (new TCP connection per request)",
    e2e.luasocket * 1e3)
do
    local r1 = e2e.cozmox / floor_plus
    local lo1, hi1 = minmax(round_ratios(R.e2e.cozmox, R.e2e.floor, function(cz, fl) return cz / (fl + dec_a) end))
    line("  %-62s %-21s %-22s %s", "session.get / (floor + decode)", ratio_str(r1, lo1, hi1), "target <= 1.2x",
        verdict(r1 <= 1.2))
    local r2 = e2e.luasocket / e2e.cozmox
    local lo2, hi2 = minmax(round_ratios(R.e2e.luasocket, R.e2e.cozmox, function(ls, cz) return ls / cz end))
    line("  %-62s %-21s %-22s %s", "speed-up over luasocket + lua-cjson", ratio_str(r2, lo2, hi2), "target >= 3x",
        verdict(r2 >= 3))
end

line("%s", RULE)
line("MEMORY: peak RSS (VmHWM) of a fresh lua5.4 process fetching + decoding (b)   peak MiB  "
    .. "(RSS before fetch, growth)")
local mem = { cozmox = median(R.mem.cozmox), luasocket = median(R.mem.luasocket) }
for _, m in ipairs({ { "cozmox", "cozmox client.session.get (streaming decode, no body string)" },
    { "luasocket", "luasocket socket.http -> body string -> lua-cjson" } }) do
    local start = median(R.mem_start[m[1]])
    line("  %-75s %8.1f  (%.1f, +%.1f)", m[2], mem[m[1]], start, mem[m[1]] - start)
end
do
    local r = mem.cozmox / mem.luasocket
    local lo, hi = minmax(round_ratios(R.mem.cozmox, R.mem.luasocket, function(a, b) return a / b end))
    line("  %-62s %-21s %-22s %s", "peak: cozmox / luasocket+cjson", ratio_str(r, lo, hi), "target < 1x",
        verdict(r < 1))
    local function growth(w, i) return R.mem[w][i] - R.mem_start[w][i] end
    local g = {}
    for i = 1, math.min(#R.mem.cozmox, #R.mem.luasocket) do g[i] = growth("cozmox", i) / growth("luasocket", i) end
    local glo, ghi = minmax(g)
    line("  %-62s %-21s %s", "growth (peak - RSS before fetch): cozmox / luasocket+cjson", ratio_str(median(g), glo,
        ghi),
        "(information; the RSS before fetch includes loading libcurl and its TLS stack)")
end

line("%s", RULE)
line("CONCURRENCY: %d ids, route answers after %d ms, wall time                                  seconds",
    SLOW_IDS, SLOW_DELAY * 1000)
for _, c in ipairs(CONCURRENCY) do
    local label = format("client.session.get_many(ids, { concurrency = %d })", c)
    local bound = math.ceil(SLOW_IDS / c) * SLOW_DELAY
    if not has_get_many then
        line("  %-62s %s", label, "n/a (get_many missing)")
    elseif #R.many[c] == 0 then
        line("  %-62s n/a (%s)", label, R.many_err[c] or "no result")
    else
        local m = median(R.many[c])
        local waves = math.ceil(SLOW_IDS / c)
        local note = format("lower bound %d wave%s x %.1f s = %.1f s", waves, waves == 1 and "" or "s", SLOW_DELAY,
            bound)
        if R.many_err[c] then note = note .. "; some rounds failed: " .. R.many_err[c] end
        line("  %-62s %8.3f   %-22s %-8s %s", label, m, "target < 1 s", verdict(m < 1), note)
    end
end
line("  %-62s %8.3f   (measured once)", format("%d sequential client.session.get", SLOW_IDS), sequential_slow)

line("%s", RULE)
line("Notes: MB = 10^6 bytes. Ratios are of the medians; (range) = min-max of the same ratio taken round by round.")
line("  Decode/encode (bench/codec.lua, one process per runtime): one call per document, os.clock (process CPU time),")
line("  GC at Lua defaults for all; per round: cozmox and lua-cjson the same count (~16 MB of input, >= 3), dkjson")
line("  ~0.5 MB (>= 1), each contender's share cut into %d slices run contender after contender (order", SLICES)
line("  rotated per slice); end to end likewise. Encode: both encode the value cozmox.json.decode gives; "
    .. "lua-cjson with its defaults prints")
line("  14 significant digits (-65.613616999999977 -> -65.613617), cozmox the shortest text that reads back exactly.")
line("  cozmox decodes integers exactly (Lua integers, 64-bit); lua-cjson returns every number as a float (integers")
line("  beyond 2^53 are rounded); dkjson keeps integers (via tonumber). cozmox and dkjson also give arrays "
    .. "a metatable.")
line("  End to end: same request headers for cozmox and the floor (Accept, Authorization, User-Agent, "
    .. "Accept-Encoding);")
line("  nginx: 1 worker, static file, keep-alive; the floor is its own process (start-up and warm-up untimed).")
line("  Concurrency: get_many with concurrency = c needs at least ceil(50/c) waves of 200 ms: 1.4 s for c = 8,")
line("  so the < 1 s target needs c >= 13. Total bench time %.0f s.", elapsed)

io.write(concat(out, "\n"), "\n")
