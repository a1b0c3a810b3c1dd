-- bin/cozmox, the command line, run as a user would against the mock API:
-- every subcommand, its exit status and exactly what it prints on stdout
-- and stderr.  The interpreter is the one running the specs, so make
-- test-all runs the command on every Lua.
local cozmox = require("cozmox")
local mock = require("support.mock")
local util = require("support.util")

local json = cozmox.json
local root, q = util.root, util.quote

local RUNTIME = (type(jit) == "table" and jit.version) or _VERSION
local DEMO = json.decode(mock.fixture("demo/sessions.json"))
local RILEY = "47e90163-0cde-4317-a117-08b6ab99568f"
local AVA = "7b69f9aa-e231-4973-b414-e1908675b72b"
local MARIA = "70fe0451-8264-41d4-92b0-82b83b97d402"   -- the session make demo shows

local function words(args)
    local out = {}
    for i, a in ipairs(args) do out[i] = q(a) end
    return table.concat(out, " ")
end

-- Run `cozmox ARGS...` (bin/cozmox with the specs' interpreter and module
-- paths); env: a shell prefix ("VAR=value ...", "env -u VAR").  Returns
-- stdout, stderr, exit status.
local function cozmox_cmd(args, env)
    return util.sh(("cd %s && %s %s bin/cozmox %s </dev/null"):format(q(root), env or "", util.lua_bin(), words(args)))
end

local function lines_of(s)
    local out = {}
    for line in s:gmatch("([^\n]*)\n") do out[#out + 1] = line end
    return out
end

-- Code points of a UTF-8 string (its display width here).
local function width(s)
    local _, n = s:gsub("[^\128-\191]", "")
    return n
end

-- The cells of a table line (separated by two or more spaces), each with
-- the display columns where it starts and ends.
local function cells(line)
    local out, pos = {}, 1
    while true do
        local s = line:find("%S", pos)
        if not s then return out end
        local e = (line:find("  ", s, true) or #line + 1) - 1
        out[#out + 1] = { text = line:sub(s, e), from = width(line:sub(1, s - 1)), to = width(line:sub(1, e)) }
        pos = e + 1
    end
end

-- Every row of a `cozmox list` table has the header's columns: cells start
-- where the header's do, MSGS (the 6th) ends where its header does.
local function assert_aligned(lines)
    local head = cells(lines[1])
    assert.equal(7, #head)
    for i = 2, #lines - 1 do
        local row = cells(lines[i])
        assert.equal(7, #row, lines[i])
        for c = 1, 7 do
            if c == 6 then
                assert.equal(head[c].to, row[c].to, lines[i])
            else
                assert.equal(head[c].from, row[c].from, lines[i])
            end
        end
    end
end

local function demo(id)
    for _, s in ipairs(DEMO) do
        if s.id == id then return s end
    end
    error("no demo session " .. id)
end

-- The transcript lines of a demo session, computed here from its data.
local function transcript_of(s)
    local names = { assistant = s.assistant.name, user = s.customer.name }
    local out = {}
    for _, m in ipairs(s.messages) do
        local t = math.floor(m.secondsFromStart)
        out[#out + 1] = ("[%02d:%02d] %s: %s"):format(math.floor(t / 60), t % 60, names[m.role], m.message)
    end
    return table.concat(out, "\n") .. "\n"
end

local function arm(method, skip, count, status)
    local body, code = mock.get(("/__fail?method=%s&skip=%d&count=%d&status=%d"):format(method, skip, count, status))
    assert(code == 200, body)
end

local LIST_HEADER = "ID                                    CREATED (UTC)     STATUS     ASSISTANT  CUSTOMER"
    .. "          MSGS  NAME"
local LIST_ROWS = {
    "289afc20-3ca7-4376-862b-a96919eb4957  2025-06-06 09:20  active     Riley      Zoë Lefèvre"
        .. "          8  Moving house: transfer the service",
    "3c52e522-4bcc-435d-8e80-36187a47ac29  2025-06-05 13:05  completed  Ava        Priya Raman"
        .. "         13  Toothache: same-day appointment",
    "3194ba09-75e8-4cca-8d7d-36749ddeca23  2025-06-05 03:30  completed  Milo       Aiko Tanaka"
        .. "         11  Where is order HP-20931?",
    "4d3136a6-3952-476e-9c51-1c112bfc5211  2025-06-04 08:02  completed  Ava        James O'Connor"
        .. "      11  Reschedule cleaning appointment",
    "86bf0f68-b613-4766-8f46-04f8f1b07ae0  2025-06-03 16:41  completed  Riley      Tom Becker"
        .. "          11  Charged twice for May",
    "70fe0451-8264-41d4-92b0-82b83b97d402  2025-06-02 08:14  completed  Riley      María José Núñez"
        .. "    13  Internet down after the storm",
}

before_each(function() mock.reset() end)
teardown(function() mock.reset() end)

describe("cozmox --help / --version / usage", function()
    it("prints the help on stdout for --help, -h and help, and on stderr (status 2) without arguments", function()
        local help, err, code = cozmox_cmd({ "--help" })
        assert.equal(0, code)
        assert.equal("", err)
        assert.matches("^cozmox: sessions of the cozmox voice%-AI API from the command line%.\n", help)
        for _, synopsis in ipairs({ "cozmox get ID [--json | --transcript]",
            "cozmox list [--limit N] [--page N] [--oldest-first] [FILTERS]",
            "cozmox export [--page-size N] [--oldest-first] [FILTERS] > sessions.jsonl",
            "COZMOX_TOKEN", "COZMOX_BASE_URL", "exit status: 0 done, 1 API" }) do
            assert.matches(synopsis, help, 1, true)
        end
        local asks = { { "-h" }, { "help" }, { "get", "--help" }, { "list", "-h" }, { "export", "--help" } }
        for _, args in ipairs(asks) do
            local out, err2, code2 = cozmox_cmd(args)
            assert.equal(0, code2)
            assert.equal("", err2)
            assert.equal(help, out)
        end
        local out, err3, code3 = cozmox_cmd({})
        assert.equal(2, code3)
        assert.equal("", out)
        assert.equal(help, err3)
    end)

    it("prints its version and the Lua it runs on", function()
        local out, err, code = cozmox_cmd({ "--version" })
        assert.equal(0, code)
        assert.equal("", err)
        assert.equal("cozmox " .. cozmox.VERSION .. " (" .. RUNTIME .. ")\n", out)
    end)

    it("refuses unknown commands and bad options with status 2 and one usage line", function()
        local cases = {
            { { "fetch", "x" }, "cozmox: unknown command 'fetch'\nTry 'cozmox --help'.\n" },
            { { "--colour" }, "cozmox: unknown command '--colour'\nTry 'cozmox --help'.\n" },
            { { "get" }, "cozmox get: a session id is needed\n" },
            { { "get", "a", "b" }, "cozmox get: one session id only\n" },
            { { "get", "" }, "cozmox get: the session id must not be empty\n" },
            { { "get", "x", "--json", "--transcript" },
                "cozmox get: --json and --transcript exclude each other\n" },
            { { "get", "x", "--json=yes" },
                "cozmox get: option '--json' takes no value\n" },
            { { "get", "-x" }, "cozmox get: unknown option '-x'\n" },
            { { "list", "--colour", "red" }, "cozmox list: unknown option '--colour'\n" },
            { { "list", "--limit" }, "cozmox list: option '--limit' needs a value\n" },
            { { "list", "--limit", "0" }, "cozmox list: option '--limit' needs a positive integer, got '0'\n" },
            { { "list", "--limit=ten" }, "cozmox list: option '--limit' needs a positive integer, got 'ten'\n" },
            { { "list", "--page", "-1" }, "cozmox list: option '--page' needs a positive integer, got '-1'\n" },
            { { "list", "--limit", "2", "--limit", "3" }, "cozmox list: option '--limit' given twice\n" },
            { { "list", "--since", "2025-13-01" },
                "cozmox list: option '--since': invalid ISO 8601 date-time '2025-13-01': month out of range\n" },
            { { "list", "--until", "yesterday" },
                "cozmox list: option '--until': invalid ISO 8601 date-time 'yesterday': "
                .. "expected YYYY-MM-DD at the start\n" },
            { { "list", "--assistant", "" }, "cozmox list: option '--assistant' needs a non-empty id\n" },
            { { "list", "extra" }, "cozmox list: unexpected argument 'extra'\n" },
            { { "export", "--limit", "5" }, "cozmox export: unknown option '--limit'\n" },
            { { "export", "--page-size", "1.5" },
                "cozmox export: option '--page-size' needs a positive integer, got '1.5'\n" },
        }
        local synopsis = {
            get = "usage: cozmox get ID [--json | --transcript]\n",
            list = "usage: cozmox list [--limit N] [--page N] [--oldest-first] [FILTERS]\n",
            export = "usage: cozmox export [--page-size N] [--oldest-first] [FILTERS] > sessions.jsonl\n",
        }
        assert(mock.client().session.get("demo"))
        local seq = mock.last_request().seq
        for _, case in ipairs(cases) do
            local out, err, code = cozmox_cmd(case[1])
            local want = case[2] .. (synopsis[case[1][1]] or "")
            assert.equal(2, code, table.concat(case[1], " "))
            assert.equal("", out)
            assert.equal(want, err)
        end
        assert.equal(seq, mock.last_request().seq)          -- none of them made a request
    end)
end)

describe("cozmox get", function()
    it("prints a summary and the transcript of a session", function()
        local out, err, code = cozmox_cmd({ "get", MARIA })
        assert.equal(0, code, err)
        assert.equal("", err)
        assert.equal(table.concat({
            "Session 70fe0451-8264-41d4-92b0-82b83b97d402: Internet down after the storm",
            "status     completed",
            "created    2025-06-02 08:14:05 UTC",
            "updated    2025-06-02 08:15:27 UTC",
            "expires    2025-06-03 08:14:05 UTC (expired)",
            "assistant  Riley, 47e90163-0cde-4317-a117-08b6ab99568f",
            "model      openai gpt-4o",
            "voice      11labs paula",
            "customer   María José Núñez, +34612448190",
            "messages   13 (the last at 1:16)",
            "",
        }, "\n") .. "\n" .. transcript_of(demo(MARIA)), out)
        assert.equal("/session/" .. MARIA, mock.last_request().request_uri)
    end)

    it("--transcript prints the transcript only, --json the session as one line of JSON", function()
        for _, s in ipairs(DEMO) do
            local out, err, code = cozmox_cmd({ "get", s.id, "--transcript" })
            assert.equal(0, code, err)
            assert.equal("", err)
            assert.equal(transcript_of(s), out)
            assert.is_true(#s.messages >= 8 and #s.messages <= 15)
            local text
            text, err, code = cozmox_cmd({ "get", "--json", s.id })
            assert.equal(0, code, err)
            assert.equal("", err)
            assert.equal(1, select(2, text:gsub("\n", "")))
            assert.equal("\n", text:sub(-1))
            assert.is_true(util.same(s, json.decode(text)))
        end
    end)

    it("shows '-' for what a session does not have, and keeps odd ids in one path segment", function()
        local bare = assert(mock.client().session.create({}))
        local out, err, code = cozmox_cmd({ "get", bare.id })
        assert.equal(0, code, err)
        local created = cozmox.time.format(math.floor(assert(bare:created_at())), 0):gsub("T", " "):gsub("Z", " UTC")
        local expires = cozmox.time.format(math.floor(assert(bare:expires_at())), 0):gsub("T", " "):gsub("Z", " UTC")
        assert.equal(table.concat({
            "Session " .. bare.id,
            "status     active",
            "created    " .. created,
            "updated    " .. created,
            "expires    " .. expires,
            "assistant  -",
            "model      -",
            "voice      -",
            "customer   -",
            "messages   0",
        }, "\n") .. "\n", out)
        out = cozmox_cmd({ "get", "--transcript", bare.id })
        assert.equal("", out)
        -- ids with a slash, a space, non-ASCII and "?#&"; an id starting with "-" after "--"
        out, err, code = cozmox_cmd({ "get", "ünï/cødé?#&" })
        assert.equal(0, code, err)
        assert.matches("^Session ünï/cødé%?#&: <string>\n", out)
        assert.equal("/session/%C3%BCn%C3%AF%2Fc%C3%B8d%C3%A9%3F%23%26", mock.last_request().request_uri)
        out, err, code = cozmox_cmd({ "get", "--", "-a b/c" })
        assert.equal(1, code)
        assert.equal("", out)
        assert.equal("cozmox: HTTP 404 Not Found: Session not found (GET /session/-a%20b%2Fc)\n", err)
    end)

    it("exits 1 with the error's one line on stderr for API, configuration and network errors", function()
        local cases = {
            { {}, "cozmox: HTTP 404 Not Found: Session not found (GET /session/nope)\n" },
            { "COZMOX_TOKEN=wrong", "cozmox: HTTP 401 Unauthorized: Invalid Key. Hot tip, you may be using the "
                .. "private key instead of the public key, or vice versa. (GET /session/nope)\n" },
            { "env -u COZMOX_TOKEN", "cozmox: configuration error: no API token: set the COZMOX_TOKEN environment "
                .. "variable or pass one with cozmox.new({ token = ... }) (GET /session/nope)\n" },
            { "COZMOX_BASE_URL=ftp://example.com",
                "cozmox: configuration error: COZMOX_BASE_URL must be an http:// or https:// URL\n" },
        }
        for _, case in ipairs(cases) do
            local env = type(case[1]) == "string" and case[1] or nil
            local out, err, code = cozmox_cmd({ "get", "nope" }, env)
            assert.equal(1, code, err)
            assert.equal("", out)
            assert.equal(case[2], err)
        end
        local port = util.free_port()
        local out, err, code = cozmox_cmd({ "get", "nope" }, "COZMOX_BASE_URL=http://127.0.0.1:" .. port)
        assert.equal(1, code)
        assert.equal("", out)
        assert.matches("^cozmox: network error: [^\n]+ %(GET /session/nope%) after 3 attempts\n$", err)
    end)
end)

describe("cozmox list", function()
    it("prints a table of the newest sessions, columns aligned by code points", function()
        local out, err, code = cozmox_cmd({ "list", "--limit", "6" })
        assert.equal(0, code, err)
        assert.equal("", err)
        assert.equal(LIST_HEADER .. "\n" .. table.concat(LIST_ROWS, "\n") .. "\n"
            .. "6 of 11 sessions, newest first (page 1 of 2)\n", out)
        assert.equal("/session?limit=6", mock.last_request().request_uri)
        assert_aligned(lines_of(out))
        -- "Zoë Lefèvre" and "María José Núñez" have more bytes than code points
        assert.is_true(#LIST_ROWS[1] > width(LIST_ROWS[1]))
        assert.is_true(#LIST_ROWS[6] > width(LIST_ROWS[6]))
    end)

    it("filters by assistant, name and creation time, pages and sorts oldest first", function()
        local out, err, code = cozmox_cmd({ "list", "--assistant", AVA })
        assert.equal(0, code, err)
        assert.equal(table.concat({
            "ID                                    CREATED (UTC)     STATUS     ASSISTANT  CUSTOMER        MSGS  NAME",
            "3c52e522-4bcc-435d-8e80-36187a47ac29  2025-06-05 13:05  completed  Ava        Priya Raman       13  "
                .. "Toothache: same-day appointment",
            "4d3136a6-3952-476e-9c51-1c112bfc5211  2025-06-04 08:02  completed  Ava        James O'Connor    11  "
                .. "Reschedule cleaning appointment",
            "2 of 2 sessions, newest first (page 1 of 1)",
        }, "\n") .. "\n", out)
        assert.equal("/session?assistantId=" .. AVA .. "&limit=20", mock.last_request().request_uri)

        out, err, code = cozmox_cmd({ "list", "--since", "2025-06-05", "--until=2025-06-06T00:00:00Z",
            "--oldest-first" })
        assert.equal(0, code, err)
        local lines = lines_of(out)
        assert.equal(4, #lines)
        assert.matches("^3194ba09%-.*  Where is order HP%-20931%?$", lines[2])
        assert.matches("^3c52e522%-.*  Toothache: same%-day appointment$", lines[3])
        assert.equal("2 of 2 sessions, oldest first (page 1 of 1)", lines[4])
        assert.equal("/session?createdAtGe=2025-06-05&createdAtLt=2025-06-06T00%3A00%3A00Z&limit=20&sortOrder=ASC",
            mock.last_request().request_uri)

        out = cozmox_cmd({ "list", "--assistant", RILEY, "--limit=2", "--page=2" })
        assert.equal(LIST_HEADER .. "\n" .. LIST_ROWS[6] .. "\n"
            .. "1 of 3 sessions, newest first (page 2 of 2)\n", out)

        out, err, code = cozmox_cmd({ "list", "--name", "Charged twice for May" })
        assert.equal(0, code, err)
        assert.equal(3, #lines_of(out))
        assert.matches("^86bf0f68%-", lines_of(out)[2])

        out, err, code = cozmox_cmd({ "list", "--name", "no such name" })
        assert.equal(0, code, err)
        assert.equal("", err)
        assert.equal("0 of 0 sessions, newest first (page 1 of 1)\n", out)
    end)

    it("aligns the API reference's copies, a UTF-8 id among them, and shows their placeholders", function()
        local out, err, code = cozmox_cmd({ "list", "--assistant", "<string>" })
        assert.equal(0, code, err)
        assert.equal(table.concat({
            "ID                                    CREATED (UTC)     STATUS  ASSISTANT  CUSTOMER  MSGS  NAME",
            "ünï/cødé?#&                           2023-11-07 05:31  active  <string>   <string>     1  <string>",
            "..                                    2023-11-07 05:31  active  <string>   <string>     1  <string>",
            "a b/c                                 2023-11-07 05:31  active  <string>   <string>     1  <string>",
            "demo                                  2023-11-07 05:31  active  <string>   <string>     1  <string>",
            "3f6c2f7e-5a1b-4c2d-9e8f-0a1b2c3d4e5f  2023-11-07 05:31  active  <string>   <string>     1  <string>",
            "5 of 5 sessions, newest first (page 1 of 1)",
        }, "\n") .. "\n", out)
        assert_aligned(lines_of(out))
    end)

    it("says when a page is past the last one", function()
        local out, err, code = cozmox_cmd({ "list", "--page", "99" })
        assert.equal(0, code, err)
        assert.equal("0 of 11 sessions, newest first (page 99 of 1: past the last page)\n", out)
    end)

    it("exits 1 when stdout cannot be written (a full disk)", function()
        for _, args in ipairs({ { "list" }, { "export" }, { "get", MARIA } }) do
            local out, err, code = util.sh(("cd %s && %s bin/cozmox %s >/dev/full"):format(
                q(root), util.lua_bin(), words(args)))
            assert.equal(1, code, table.concat(args, " "))
            assert.equal("", out)
            assert.matches("^cozmox: cannot write to stdout: [^\n]+\n$", err)
        end
    end)

    it("exits 1 with the API's error on stderr", function()
        local out, err, code = cozmox_cmd({ "list", "--limit", "5000" })
        assert.equal(1, code)
        assert.equal("", out)
        assert.equal("cozmox: HTTP 400 Bad Request: limit must not be greater than 1000"
            .. " (GET /session?limit=5000)\n", err)
    end)
end)

describe("cozmox export", function()
    it("writes every session as JSON Lines, newest first, and nothing on stderr when it is not a terminal", function()
        local out, err, code = cozmox_cmd({ "export" })
        assert.equal(0, code, err)
        assert.equal("", err)
        local lines = lines_of(out)
        assert.equal(11, #lines)
        assert.equal("\n", out:sub(-1))
        local page = assert(mock.client().session.list({}))
        for i, line in ipairs(lines) do
            local s = json.decode(line)                  -- each line is one complete JSON document
            assert.equal(page.results[i].id, s.id)
            assert.is_true(util.same(json.decode(json.encode(page.results[i])), s))
        end
    end)

    it("fetches page by page with filters, oldest first", function()
        assert(mock.client().session.get("demo"))
        local before = mock.last_request().seq
        local out, err, code = cozmox_cmd({ "export", "--assistant", RILEY, "--page-size", "2", "--oldest-first" })
        assert.equal(0, code, err)
        assert.equal("", err)
        local ids = {}
        for _, line in ipairs(lines_of(out)) do ids[#ids + 1] = json.decode(line).id end
        assert.same({ MARIA, "86bf0f68-b613-4766-8f46-04f8f1b07ae0", "289afc20-3ca7-4376-862b-a96919eb4957" }, ids)
        local last = mock.last_request()
        assert.equal(before + 2, last.seq)
        assert.equal("/session?assistantId=" .. RILEY .. "&limit=2&page=2&sortOrder=ASC", last.request_uri)
        out, err, code = cozmox_cmd({ "export", "--since", "2025-06-06" })
        assert.equal(0, code, err)
        assert.equal(1, #lines_of(out))
        assert.equal("Moving house: transfer the service", json.decode(out).name)
    end)

    it("stops with status 1 when a page fails, the lines written so far complete", function()
        arm("GET", 1, 1, 400)                        -- the 2nd page; a 400 is not retried
        local out, err, code = cozmox_cmd({ "export", "--assistant", RILEY, "--page-size", "2" })
        assert.equal(1, code)
        assert.equal("cozmox: HTTP 400 Bad Request (GET /session?assistantId=" .. RILEY .. "&limit=2&page=2)\n", err)
        local lines = lines_of(out)
        assert.equal(2, #lines)
        for _, line in ipairs(lines) do assert.equal(RILEY, json.decode(line).assistantId) end
        local _, err2, code2 = cozmox_cmd({ "export" }, "COZMOX_TOKEN=wrong")
        assert.equal(1, code2)
        assert.matches("^cozmox: HTTP 401 Unauthorized: Invalid Key%. [^\n]+"
            .. " %(GET /session%?limit=100&page=1%)\n$", err2)
    end)

    -- `script` (util-linux) runs the command on a pseudo-terminal.
    local function on_terminal(command)
        local screen, _, code = util.sh(("cd %s && SHELL=/bin/sh script -qec %s /dev/null </dev/null"):format(
            q(root), q(command)))
        return screen, code
    end

    it("shows a progress line when stderr is a terminal and stdout is not", function()
        if not util.run("command -v script || true"):match("%S") then
            error("script (util-linux) is needed for this test")
        end
        local file = os.tmpname()
        local screen, code = on_terminal(util.lua_bin() .. " bin/cozmox export --page-size 4 > " .. q(file))
        assert.equal(0, code, screen)
        local want = {}
        for n = 1, 11 do want[#want + 1] = ("\rexporting: %d of 11 sessions"):format(n) end
        assert.equal(table.concat(want) .. "\r\nexported 11 sessions\r\n", screen)
        local exported = util.read(file)
        os.remove(file)
        assert.equal(11, #lines_of(exported))
        -- both on the terminal: the JSON lines only, no progress between them
        screen, code = on_terminal(util.lua_bin() .. " bin/cozmox export --name 'Charged twice for May'")
        assert.equal(0, code, screen)
        assert.equal("86bf0f68-b613-4766-8f46-04f8f1b07ae0", json.decode((screen:gsub("\r\n$", ""))).id)
        assert.is_nil(screen:find("exporting:", 1, true))
        assert.is_nil(screen:find("exported", 1, true))
    end)
end)
