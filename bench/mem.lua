--- bench/mem.lua: peak memory of one fetch + decode, in a fresh process.
--
--   lua5.4 bench/mem.lua cozmox|luasocket BASE_URL ID MESSAGES
--
-- Loads only what its contender needs, notes VmRSS, fetches
-- BASE_URL/session/ID and decodes it (cozmox: client.session.get;
-- luasocket: socket.http into a table sink, table.concat, cjson.decode),
-- checks the session has MESSAGES messages, and prints
--   "<peak VmHWM kB> <VmRSS kB before the fetch>"
-- with the decoded session still alive.  The GC runs with Lua's defaults.

local which, base_url, id, want = arg[1], arg[2], arg[3], tonumber(arg[4])

local function status_kb(field)
    local f = assert(io.open("/proc/self/status", "r"))
    local text = f:read("a")
    f:close()
    local kb = text:match(field .. ":%s*(%d+) kB")
    return tonumber((assert(kb, field)))
end

local session
if which == "cozmox" then
    local cozmox = require("cozmox")
    local client = cozmox.new({ base_url = base_url, token = "bench-token", max_retries = 0 })
    -- libcurl is loaded on the first request; load it now, so that "before"
    -- counts it as it counts luasocket's own libraries
    require("cozmox.curl")
    local before = status_kb("VmRSS")
    local err
    session, err = client.session.get(id)
    assert(session, tostring(err))
    assert(#session.messages == want, "wrong message count")
    io.write(status_kb("VmHWM"), " ", before, "\n")
elseif which == "luasocket" then
    local http = require("socket.http")
    local ltn12 = require("ltn12")
    local cjson = require("cjson")
    local before = status_kb("VmRSS")
    local chunks = {}
    local ok, code = http.request({
        url = base_url .. "/session/" .. id,
        headers = { accept = "application/json", authorization = "Bearer bench-token" },
        sink = ltn12.sink.table(chunks),
    })
    assert(ok and code == 200, "luasocket: " .. tostring(code))
    local body = table.concat(chunks)
    chunks = nil -- luacheck: ignore (garbage now, as in socket.http's simple form)
    session = cjson.decode(body)
    assert(#session.messages == want, "wrong message count")
    io.write(status_kb("VmHWM"), " ", before, "\n")
else
    error("usage: lua5.4 bench/mem.lua cozmox|luasocket BASE_URL ID MESSAGES")
end
