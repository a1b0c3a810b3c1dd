-- Every example in examples/ runs against the mock API and prints what it
-- should, so none of them rots.  examples/nginx/ is run in a real nginx
-- (its own, on a free port) with the C core built for nginx's LuaJIT.
local cozmox = require("cozmox")
local mock = require("support.mock")
local util = require("support.util")
local socket = require("socket")

local root, q = util.root, util.quote

-- Run an example with the spec's interpreter; returns stdout, stderr and
-- the exit status.  env: extra "NAME=value" words.
local function run(example, args, env)
    local words = {}
    for i, a in ipairs(args or {}) do words[i] = q(a) end
    return util.sh(("cd %s && %s %s %s %s"):format(q(root), env or "", util.lua_bin(),
        q("examples/" .. example), table.concat(words, " ")))
end

local client = mock.client

local function arm(method, skip, count, status)
    local body, code = mock.get(("/__fail?method=%s&skip=%d&count=%d&status=%d"):format(method, skip, count, status))
    assert(code == 200, body)
end

local function unique(prefix)
    return ("%s-%d-%d"):format(prefix, os.time() % 100000, math.random(100000, 999999))
end

local MESSAGES = {
    { role = "assistant", message = "Hello! How can I help?", time = 1700000000000, secondsFromStart = 0.4 },
    { role = "user", message = "I'd like to move my\nappointment.", time = 1700000003000, secondsFromStart = 3.1 },
    { role = "assistant", message = "Sure: which day suits you?", time = 1700000065000, secondsFromStart = 65 },
}

setup(function() mock.reset() end)
teardown(function() mock.reset() end)

describe("examples/get_session.lua", function()
    it("prints a summary of a session", function()
        local out, err, code = run("get_session.lua", { "demo" })
        assert.equal(0, code, err)
        assert.matches("^Session demo\n", out)
        assert.matches("\nmodel        anthropic / claude%-3%-opus%-20240229\n", out)
        assert.matches("\nmessages     1\n", out)
        local _, err2, code2 = run("get_session.lua", { "nope" })
        assert.equal(1, code2)
        assert.equal("cozmox: HTTP 404 Not Found: Session not found (GET /session/nope)\n", err2)
    end)
end)

describe("examples/list_sessions.lua", function()
    it("prints a table of the newest sessions", function()
        local c = client()
        local name = unique("list")
        local made = {}
        for i = 1, 3 do
            made[i] = assert(c.session.create({ name = name, messages = i == 2 and MESSAGES or nil,
                status = i == 3 and "completed" or nil }))
            require("cozmox.core").sleep(0.003)
        end
        local out, err, code = run("list_sessions.lua", { "--name", name, "--limit", "2" })
        assert.equal(0, code, err)
        assert.equal("", err)
        local function row(s, msgs)
            return ("%-36s  %-20s  %-9s  %-24s  %5d  %s"):format(s.id, name, s.status, s.createdAt, msgs, "no")
        end
        assert.equal(table.concat({
            ("%-36s  %-20s  %-9s  %-24s  %5s  %s"):format("ID", "NAME", "STATUS", "CREATED", "MSGS", "EXPIRED"),
            row(made[3], 0),
            row(made[2], 3),
            "2 of 3 sessions (page 1)",
        }, "\n") .. "\n", out)
        local req = mock.last_request()
        assert.equal("/session?limit=2&name=" .. cozmox.escape_segment(name) .. "&sortOrder=DESC", req.request_uri)
    end)

    it("shows seeded sessions (expired, names cut to the column) and refuses bad options", function()
        local out, _, code = run("list_sessions.lua", { "--assistant", "<string>", "--limit", "1" })
        assert.equal(0, code)
        assert.matches("\n[^\n]+  <string>              active     2023%-11%-07T05:31:56Z          1  yes\n", out)
        assert.matches("\n1 of 5 sessions %(page 1%)\n$", out)
        -- a UTF-8 id among UUIDs: every column starts at the same code point
        local out5 = run("list_sessions.lua", { "--assistant", "<string>", "--limit", "5" })
        local lines = {}
        for line in out5:gmatch("[^\n]+") do lines[#lines + 1] = line end
        assert.equal(7, #lines)
        assert.equal("ünï/cødé?#&" .. (" "):rep(36 - 11) .. "  <string>", lines[2]:sub(1, #"ünï/cødé?#&" + 25 + 10))
        local function column_of(line, what)
            local at = assert(line:find(what, 1, true), what .. " not in " .. line)
            local _, n = line:sub(1, at - 1):gsub("[^\128-\191]", "")
            return n
        end
        assert.equal(38, column_of(lines[1], "NAME"))
        assert.equal(60, column_of(lines[1], "STATUS"))
        for i = 2, 6 do
            assert.equal(38, column_of(lines[i], "<string>"), lines[i])
            assert.equal(60, column_of(lines[i], "active"), lines[i])
        end
        assert.equal("5 of 5 sessions (page 1)", lines[7])
        local long = assert(client().session.create({ name = "ünïcødé name that is too long to show" }))
        out = run("list_sessions.lua", { "--name", long.name, "--limit", "1" })
        assert.matches(long.id .. "  ünïcødé name that i~  active", out, 1, true)
        local _, err, code2 = run("list_sessions.lua", { "--limit", "0" })
        assert.equal(2, code2)
        assert.matches("bad argument #1 to 'list' (param 'limit' must be a positive integer, got 0)", err, 1, true)
        local _, err3, code3 = run("list_sessions.lua", { "--colour", "red" })
        assert.equal(2, code3)
        assert.matches("unknown option --colour", err3, 1, true)
        local _, err4, code4 = run("list_sessions.lua", {}, "COZMOX_TOKEN=wrong")
        assert.equal(1, code4)
        assert.matches("^list_sessions.lua: cozmox: HTTP 401 Unauthorized: Invalid Key", err4)
    end)
end)

describe("examples/export_sessions.lua", function()
    local name, made
    setup(function()
        local c = client()
        name = unique("export")
        made = {}
        for i = 1, 5 do
            made[i] = assert(c.session.create({ name = name, expirationSeconds = 60 * i, messages = MESSAGES }))
            require("cozmox.core").sleep(0.003)
        end
    end)

    it("writes every matching session as one JSON line, across pages, with progress on stderr", function()
        local start = mock.last_request().seq
        local out, err, code = run("export_sessions.lua", { "name=" .. name, "limit=2", "sortOrder=ASC" })
        assert.equal(0, code, err)
        local lines = {}
        for line in out:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
        assert.equal(5, #lines)
        for i, line in ipairs(lines) do
            local s = cozmox.json.decode(line)
            assert.equal(made[i].id, s.id)
            assert.equal(60 * i, s.expirationSeconds)
            local want = cozmox.json.decode(cozmox.json.encode(made[i]))
            assert.same(want, s)
        end
        assert.equal("\rexporting sessions: 1/5\rexporting sessions: 2/5\rexporting sessions: 3/5"
            .. "\rexporting sessions: 4/5\rexporting sessions: 5/5\nexported 5 sessions\n", err)
        assert.equal(start + 3, mock.last_request().seq)     -- pages of 2: 2 + 2 + 1
    end)

    it("takes dates as ISO 8601 or epoch seconds", function()
        local t3 = assert(made[3]:created_at())
        local out, err, code = run("export_sessions.lua", { "name=" .. name, "createdAtGe=" .. made[3].createdAt,
            "createdAtLt=" .. string.format("%.3f", t3 + 0.001), "sortOrder=ASC" })
        assert.equal(0, code, err)
        assert.equal(made[3].id, cozmox.json.decode(out:match("^[^\n]+")).id)
        assert.equal(1, select(2, out:gsub("\n", "")))
        assert.matches("createdAtLt=" .. cozmox.escape_segment(cozmox.time.format(t3 + 0.001)),
            mock.last_request().request_uri, 1, true)
    end)

    it("stops with status 1 when a page fails half-way, saying how far it got", function()
        arm("GET", 1, 1, 400)          -- the 2nd page; a 400 is not retried
        local out, err, code = run("export_sessions.lua", { "name=" .. name, "limit=2", "sortOrder=ASC" })
        assert.equal(1, code)
        assert.equal(2, select(2, out:gsub("\n", "")))
        assert.equal("\rexporting sessions: 1/5\rexporting sessions: 2/5\n"
            .. "export_sessions.lua: cozmox: HTTP 400 Bad Request (GET /session?limit=2&name="
            .. cozmox.escape_segment(name) .. "&page=2&sortOrder=ASC) (2 sessions written)\n", err)
    end)

    it("refuses bad params with status 2", function()
        local _, err, code = run("export_sessions.lua", { "colour=red" })
        assert.equal(2, code)
        assert.equal("export_sessions.lua: bad argument #1 to 'each' (unknown param 'colour')\n", err)
        local _, err2, code2 = run("export_sessions.lua", { "oops" })
        assert.equal(2, code2)
        assert.equal("export_sessions.lua: expected param=value, got 'oops'\n", err2)
    end)
end)

describe("examples/transcript.lua", function()
    it("prints a readable transcript", function()
        local s = assert(client().session.create({ name = "Move appointment", messages = MESSAGES }))
        local out, err, code = run("transcript.lua", { s.id })
        assert.equal(0, code, err)
        assert.equal("Session " .. s.id .. " \"Move appointment\" (active, 3 messages)\n"
            .. "[00:00] Assistant: Hello! How can I help?\n"
            .. "[00:03] User: I'd like to move my appointment.\n"
            .. "[01:05] Assistant: Sure: which day suits you?\n", out)
        out = run("transcript.lua", { "--plain", s.id })
        assert.equal("Session " .. s.id .. " \"Move appointment\" (active, 3 messages)\n"
            .. "Assistant: Hello! How can I help?\n"
            .. "User: I'd like to move my appointment.\n"
            .. "Assistant: Sure: which day suits you?\n", out)
    end)

    it("handles the seeded session, a session without messages and errors", function()
        local out = run("transcript.lua", { "a b/c" })
        assert.equal("Session a b/c \"<string>\" (active, 1 message)\n[02:03] <string>: <string>\n", out)
        local empty = assert(client().session.create({}))
        out = run("transcript.lua", { empty.id })
        assert.equal("Session " .. empty.id .. " (active, 0 messages)\n", out)
        local _, err, code = run("transcript.lua", { "nope" })
        assert.equal(1, code)
        assert.equal("transcript.lua: cozmox: HTTP 404 Not Found: Session not found (GET /session/nope)\n", err)
        local _, err2, code2 = run("transcript.lua", {})
        assert.equal(2, code2)
        assert.equal("usage: transcript.lua [--plain] <session-id>\n", err2)
    end)
end)

describe("examples/nginx", function()
    local prefix, pid, port

    local function free_port()
        local s = assert(socket.bind("127.0.0.1", 0))
        local _, p = s:getsockname()
        s:close()
        return tonumber(p)
    end

    local function alive()
        return pid ~= nil and util.run("kill -0 " .. pid .. " 2>/dev/null && echo alive") == "alive\n"
    end

    local function stop()
        if not pid then return end
        util.run("kill -TERM " .. pid)
        for _ = 1, 50 do
            if not alive() then break end
            socket.sleep(0.1)
        end
        if alive() then util.run("kill -KILL " .. pid) end
        pid = nil
    end

    -- GET path on the example's nginx: status, body, headers.
    local function get(path)
        local http = require("socket.http")
        local ltn12 = require("ltn12")
        local chunks = {}
        local ok, status, headers = http.request({ url = "http://127.0.0.1:" .. port .. path,
            sink = ltn12.sink.table(chunks) })
        assert(ok, status)
        return status, table.concat(chunks), headers
    end

    setup(function()
        -- the C core for nginx's LuaJIT
        local out, ok = util.run("make -s --no-print-directory -C " .. q(root) .. " LUA=luajit")
        assert(ok, "make LUA=luajit failed (needs libluajit2-5.1-dev):\n" .. out)
        prefix = os.tmpname()
        os.remove(prefix)
        assert(util.run("mkdir -p " .. q(prefix .. "/tmp")))
        local template = util.read(root .. "/examples/nginx/nginx.conf")
        for _ = 1, 5 do
            port = free_port()
            local vars = { PREFIX = prefix, PORT = tostring(port), ROOT = root:match("^/") and root
                or (os.getenv("PWD") .. "/" .. root), USER_LINE = "" }
            if util.run("id -u") == "0\n" then vars.USER_LINE = "user root;" end
            local conf = template:gsub("@([%w_]+)@", function(k)
                return assert(vars[k], "no value for @" .. k .. "@")
            end)
            local f = assert(io.open(prefix .. "/nginx.conf", "w"))
            f:write(conf)
            f:close()
            local p = assert(io.popen(("nginx -p %s -c %s -e %s -g 'daemon off;' </dev/null >%s 2>&1 & echo $!"):format(
                q(prefix), q(prefix .. "/nginx.conf"), q(prefix .. "/error.log"), q(prefix .. "/nginx.out"))))
            pid = tonumber(p:read("*a"))
            p:close()
            for _ = 1, 100 do
                local conn = socket.tcp()
                conn:settimeout(0.2)
                local up = conn:connect("127.0.0.1", port)
                conn:close()
                if up or not alive() then break end
                socket.sleep(0.05)
            end
            if alive() then break end
            pid = nil
            local log = util.read(prefix .. "/error.log") .. util.read(prefix .. "/nginx.out")
            assert(log:find("Address already in use", 1, true), "nginx did not start:\n" .. log)
        end
        assert(pid, "nginx did not start")
    end)

    teardown(function()
        stop()
        if prefix then util.run("rm -rf " .. q(prefix)) end
        mock.reset()
    end)

    it("serves a session's transcript from inside nginx", function()
        local s = assert(client().session.create({ name = "nginx", messages = MESSAGES }))
        local status, body, headers = get("/transcript/" .. s.id)
        assert.equal(200, status, body)
        assert.equal("text/plain; charset=utf-8", headers["content-type"])
        assert.equal("[00:00] assistant: Hello! How can I help?\n"
            .. "[00:03] user: I'd like to move my appointment.\n"
            .. "[01:05] assistant: Sure: which day suits you?\n", body)
        -- the request the handler made: from nginx's LuaJIT, with the token
        local req = mock.last_request()
        assert.equal("/session/" .. s.id, req.request_uri)
        assert.equal("Bearer " .. mock.token, req.headers.authorization)
        assert.matches(" LuaJIT ", req.headers["user-agent"], 1, true)
        status, body = get("/transcript/" .. s.id .. "?timestamps=0")
        assert.equal(200, status)
        assert.equal("assistant: Hello! How can I help?\nuser: I'd like to move my appointment.\n"
            .. "assistant: Sure: which day suits you?\n", body)
    end)

    it("keeps %2F inside the id, answers 404 for unknown sessions and paths, 502 when the API fails", function()
        local status, body = get("/transcript/a%20b%2Fc")
        assert.equal(200, status)
        assert.equal("[02:03] <string>: <string>\n", body)
        assert.equal("/session/a%20b%2Fc", mock.last_request().request_uri)
        status, body = get("/transcript/nope")
        assert.equal(404, status)
        assert.equal("no such session: nope\n", body)
        status, body = get("/elsewhere")
        assert.equal(404, status)
        assert.equal("usage: GET /transcript/<session id>[?timestamps=0]\n", body)
        arm("GET", 0, 1, 400)          -- not retried: the handler answers at once
        status, body = get("/transcript/demo")
        assert.equal(502, status)
        assert.equal("the cozmox API failed (http)\n", body)
        assert.matches("transcript of demo: cozmox: HTTP 400 Bad Request", util.read(prefix .. "/error.log"), 1, true)
        assert.is_true(alive())
    end)
end)
