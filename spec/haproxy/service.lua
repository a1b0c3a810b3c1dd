-- The HAProxy side of spec/haproxy_spec.lua: one client made while the
-- file loads, used by a service, an action and a task.
--
--   GET /<anything>/<id>[?base=URL&timeout=S&retries=N&max_bytes=N&op=OP&curl=1]
--     the session <id> through cozmox.new({ loop = cozmox.loop.haproxy() })
--     (curl=1: the curl transport instead);
--     without base: the shared client (base COZMOX_BASE_URL/fault/by-id);
--     answers 200 with JSON: fetch()'s result (below) and "elapsed"
--   /action/<id>   the same from an http-request action
--   /task/         the result of the fetch made by a task at start-up
--   "cozmox get <id>" on the stats socket: the same from a CLI command
--   lua.cozmox_sample(KEY), lua.cozmox_convert: a sample fetch and a
--     converter fetching "delay?ms=300&key=KEY" with the shared client
--     (which cannot wait there)
local root = debug.getinfo(1, "S").source:match("^@(.*)/spec/haproxy/service%.lua$")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. "/build/lua5.3/?.so;" .. package.cpath

local cozmox = require("cozmox")
local now = require("cozmox.core").now

-- A session, or what went wrong.
local function result(s, err)
    if not s then
        return { ok = false, kind = err.kind, message = err.message, status = err.status,
            code = err.curl_code, attempts = err.attempts }
    end
    return { ok = true, id = s.id, name = s.name, status = s.status, messages = #(s.messages or {}) }
end

-- The client code every host runs; ?op=create and ?op=update (POST, PATCH
-- with the id as the name), ?op=many (get_many of ids <id>-1 .. <id>-10,
-- all at once) instead of GET; ?op=co: GET in a coroutine of our own
-- (which HAProxy cannot resume).
local function fetch(client, id, op)
    if op == "co" then
        local co = coroutine.create(function() return result(client.session.get(id)) end)
        local ok, r = coroutine.resume(co)
        if not ok then return { ok = false, raised = tostring(r) } end
        return r or { ok = false, coroutine = coroutine.status(co) }
    end
    if op == "many" then
        local ids = {}
        for i = 1, 10 do ids[i] = id .. "-" .. i end
        local sessions, errs, failed = client.session.get_many(ids, { concurrency = 10 })
        local r = { ok = failed == 0, ids = {} }
        for i = 1, 10 do r.ids[i] = sessions[i] and sessions[i].id or tostring(errs[i]) end
        return r
    end
    if op == "create" then return result(client.session.create({ name = id })) end
    if op == "update" then return result(client.session.update(id, { name = id })) end
    return result(client.session.get(id))
end

local shared = cozmox.new({ loop = cozmox.loop.haproxy(),
    base_url = os.getenv("COZMOX_BASE_URL") .. "/fault/by-id", max_retries = 0 })

local clients = {}
local function client_for(args)
    if not args.base then return shared end
    local key = table.concat({ args.base, args.timeout or "", args.retries or "", args.max_bytes or "",
        args.curl or "" }, " ")
    clients[key] = clients[key] or cozmox.new({ base_url = args.base,
        loop = not args.curl and cozmox.loop.haproxy() or nil, transport = args.curl and "curl" or nil,
        timeout = tonumber(args.timeout), max_retries = tonumber(args.retries) or 0,
        max_response_bytes = tonumber(args.max_bytes) })
    return clients[key]
end

local function unescape(s)
    return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- path, query string -> id, args
local function parse(path, qs)
    local args = {}
    for k, v in (qs or ""):gmatch("([^&=]+)=([^&]*)") do args[unescape(k)] = unescape(v) end
    return unescape(path:match("^/[^/]*/(.*)$") or ""), args
end

local function timed(id, args)
    local t0 = now()
    local r = fetch(client_for(args), id, args.op)
    r.elapsed = now() - t0
    return cozmox.json.encode(r)
end

local function reply(applet, json)
    applet:set_status(200)
    applet:add_header("content-type", "application/json")
    applet:add_header("content-length", tostring(#json))
    applet:start_response()
    applet:send(json)
end

core.register_service("cozmox_fetch", "http", function(applet)
    reply(applet, timed(parse(applet.path, applet.qs)))
end)

core.register_action("cozmox_fetch", { "http-req" }, function(txn)
    txn:set_var("txn.cozmox", timed(parse(txn.sf:path(), txn.sf:query())))
end)

local from_task
core.register_task(function()
    from_task = timed("delay?ms=200", {})
end)

core.register_service("cozmox_task", "http", function(applet)
    while not from_task do core.msleep(10) end
    reply(applet, from_task)
end)

-- "cozmox get <id>" on the stats socket: the result as JSON.
core.register_cli({ "cozmox", "get" }, "cozmox get <id>: fetch a session", function(applet, _, _, id)
    applet:send(timed(id or "ok", {}) .. "\n")
end)

core.register_fetches("cozmox_sample", function(_, key)
    return timed("delay?ms=300&key=" .. key, {})
end)

core.register_converters("cozmox_convert", function(key)
    return timed("delay?ms=300&key=" .. key, {})
end)
